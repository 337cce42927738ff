"""Matrix-free weighting vectors: conjugate gradients on ``Z_t = exp(-t ||x - y||)``, whose
products are fused distance tiles in C++ (no n x n matrix), preconditioned by a Vecchia
(sparse inverse Cholesky) approximation of ``Z_t^-1`` on nearby earlier points."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

NEIGHBORS = 30  # conditioning set of the Vecchia preconditioner
CUTOFF = 42.0  # products skip tile pairs whose terms are all below exp(-42) = 5.7e-19
_RIDGE = 1e-12  # added to the conditioning blocks (the preconditioner only; CG solves Z w = 1)
_CHUNK_BYTES = 2**28  # block matrices built this many bytes at a time


class CgInfo(NamedTuple):
    n_iter: np.ndarray  # (m,) iterations per scale
    residual: np.ndarray  # (m,) true relative residual ||1 - Z w|| / ||1|| at the end
    converged: np.ndarray  # (m,) bool


def spatial_order(X, leaf=16):
    """A permutation putting nearby points next to each other: recursive bisection at the
    median of the widest coordinate, down to groups of ``leaf``."""
    n = X.shape[0]
    order = np.arange(n)
    stack = [(0, n)]
    while stack:
        a, b = stack.pop()
        if b - a <= leaf:
            continue
        pts = X[order[a:b]]
        axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
        half = (b - a) // 2
        part = np.argpartition(pts[:, axis], half)
        order[a:b] = order[a:b][part]
        stack.append((a, a + half))
        stack.append((a + half, b))
    return order


def weights_cg(X, ts, *, rtol, max_iter, n_jobs, k=NEIGHBORS, seed=0, cutoff=CUTOFF):
    """Weighting vectors (n, m) for the scales ``ts`` by preconditioned CG (one system per
    scale, all scales' products fused in one pass over the pairs), and a CgInfo."""
    from .. import _core

    n = X.shape[0]
    m = ts.size
    if n == 1:
        return np.ones((1, m)), CgInfo(np.zeros(m, np.int64), np.zeros(m), np.ones(m, bool))
    perm = spatial_order(X)  # nearby points in the same tiles: the products prune far tiles
    X = np.ascontiguousarray(X[perm])
    order, nb = vecchia_pattern(X, min(k, n - 1), np.random.default_rng(seed))
    precs = [Vecchia(X, order, nb, float(t)) for t in ts]

    def apply_prec(R, act):
        out = np.empty_like(R)
        for r, a in enumerate(act):
            out[r] = precs[a](R[r : r + 1])[0]
        return out

    def matvec(V, act):
        return _core.magnitude_matvec(
            X, np.ascontiguousarray(ts[act]), V, cutoff=cutoff, n_jobs=n_jobs
        )

    bnorm = math.sqrt(n)
    W = np.zeros((m, n))
    R = np.ones((m, n))
    act = np.arange(m)
    Zr = apply_prec(R, act)
    P = Zr.copy()
    rz = np.einsum("ij,ij->i", R, Zr)
    n_iter = np.zeros(m, dtype=np.int64)
    it = 0
    while act.size and it < max_iter:
        it += 1
        AP = matvec(np.ascontiguousarray(P[act]), act)
        pAp = np.einsum("ij,ij->i", P[act], AP)
        alpha = rz[act] / pAp
        W[act] += alpha[:, None] * P[act]
        R[act] -= alpha[:, None] * AP
        n_iter[act] = it
        rn = np.linalg.norm(R[act], axis=1)
        done = (rn <= rtol * bnorm) | ~(pAp > 0)
        keep = act[~done]
        if keep.size:
            Zk = apply_prec(R[keep], keep)
            rz_new = np.einsum("ij,ij->i", R[keep], Zk)
            beta = rz_new / rz[keep]
            P[keep] = Zk + beta[:, None] * P[keep]
            rz[keep] = rz_new
        act = keep
    # the recurrence's residual drifts from the true one: check the true residual
    true_r = np.ones((m, n)) - matvec(W, np.arange(m))
    res = np.linalg.norm(true_r, axis=1) / bnorm
    converged = res <= 10 * rtol
    out = np.empty((n, m))
    out[perm] = W.T
    return out, CgInfo(n_iter, res, converged)


def vecchia_pattern(X, k, rng):
    """A random ordering of the points and, for each position p of it, up to k earlier
    positions near it (the k nearest among the positions before p's doubling chunk
    [a, 2a); all earlier positions in the first chunk), -1 padded: the sparsity of a Vecchia
    (sparse inverse Cholesky) factor."""
    from scipy.spatial import cKDTree

    n = X.shape[0]
    order = rng.permutation(n)
    Xo = X[order]
    nb = np.full((n, k), -1, dtype=np.int64)
    a = min(n, k + 1)
    for p in range(1, a):
        nb[p, :p] = np.arange(p)
    while a < n:
        b = min(n, 2 * a)
        q = min(b, 3 * k)
        _, idx = cKDTree(Xo[:b]).query(Xo[a:b], k=q)
        idx = idx.reshape(b - a, q)
        ok = idx < np.arange(a, b)[:, None]  # earlier positions only, nearest first
        rank = np.cumsum(ok, axis=1) - 1
        keep = ok & (rank < k)
        r, c = np.nonzero(keep)
        nb[a + r, rank[r, c]] = idx[r, c]
        a = b
    return order, nb


class Vecchia:
    """``P^-1 = (I - B)^T D^-1 (I - B)``: the Vecchia approximation of ``Z^-1`` (each point
    regressed on its conditioning set: ``b_p = Z_cc^-1 Z_cp``, ``d_p = 1 - Z_pc b_p``), in
    the random ordering of vecchia_pattern; symmetric positive definite by construction."""

    def __init__(self, X, order, nb, t):
        import scipy.sparse as sp

        n, k = nb.shape
        Xo = X[order]
        self.order = order
        rows, cols, vals = [], [], []
        dvar = np.empty(n)
        step = max(1, _CHUNK_BYTES // (8 * k * k * max(X.shape[1], 2)))
        eye = np.eye(k)
        for s in range(0, n, step):
            e = min(n, s + step)
            idx = nb[s:e]
            pad = idx < 0
            C = Xo[np.where(pad, 0, idx)]  # (c, k, d)
            xi = Xo[s:e]
            Zcc = np.zeros((e - s, k, k))
            dci = np.zeros((e - s, k))
            for c in range(C.shape[2]):  # exact differences, one coordinate at a time
                Cc = np.ascontiguousarray(C[:, :, c])
                diff = Cc[:, :, None] - Cc[:, None, :]
                diff *= diff
                Zcc += diff
                dc = Cc - xi[:, None, c]
                dci += dc * dc
            np.sqrt(Zcc, out=Zcc)
            Zcc *= -t
            np.exp(Zcc, out=Zcc)
            Zcc[pad[:, :, None] | pad[:, None, :]] = 0.0
            Zcc += pad[:, :, None] * eye
            Zcc += _RIDGE * eye  # keeps the small solves regular (near-duplicate points)
            zci = np.exp(-t * np.sqrt(dci))
            zci[pad] = 0.0
            bb = np.linalg.solve(Zcc, zci[:, :, None])[:, :, 0]
            dvar[s:e] = 1.0 - np.einsum("ck,ck->c", zci, bb)
            r = np.broadcast_to(np.arange(s, e)[:, None], idx.shape)
            rows.append(r[~pad])
            cols.append(idx[~pad])
            vals.append(bb[~pad])
        self.dinv = 1.0 / np.maximum(dvar, 1e-14)
        B = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        self.B = B
        self.BT = B.T.tocsr()

    def __call__(self, R):
        Ro = R[:, self.order].T  # (n, m)
        Y = Ro - self.B @ Ro
        Y *= self.dinv[:, None]
        Z = Y - self.BT @ Y
        out = np.empty_like(R)
        out[:, self.order] = Z.T
        return out
