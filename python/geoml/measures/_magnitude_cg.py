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
DENSE_BYTES = 2**30  # Z_t is stored in float32 when its n^2 floats fit in this
DENSE_KEPT = 0.5  # ... and the matrix-free product would keep this fraction of tile pairs
_DENSE_MIN = 1024  # below this many points the matrix-free product is as cheap
_INNER_RTOL = 1e-8  # inner solves on the float32 matrix: no further than its accuracy


class CgInfo(NamedTuple):
    n_iter: np.ndarray  # (m,) iterations per scale
    residual: np.ndarray  # (m,) true relative residual ||1 - Z w|| / ||1|| at the end
    converged: np.ndarray  # (m,) bool


def _workers(n_jobs):
    """Python-side threads for n_jobs (0: OpenMP's default, load-aware; -1: all cores)."""
    import os

    from .. import _core

    if n_jobs == 0:
        return max(1, _core.max_threads())
    return (os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)


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
    scale), and a CgInfo. Scales where the stored float32 matrix pays (see ``stored_pays``)
    are solved one at a time by mixed-precision refinement (``_solve_stored``); the others
    together by matrix-free CG, all scales' products fused in one pass over the pairs."""
    n = X.shape[0]
    m = ts.size
    if n == 1:
        return np.ones((1, m)), CgInfo(np.zeros(m, np.int64), np.zeros(m), np.ones(m, bool))
    perm = spatial_order(X)  # nearby points in the same tiles: the products prune far tiles
    X = np.ascontiguousarray(X[perm])
    workers = _workers(n_jobs)
    order, nb = vecchia_pattern(X, min(k, n - 1), np.random.default_rng(seed), workers)
    precs = [Vecchia(X, order, nb, float(t), n_jobs) for t in ts]
    W = np.zeros((m, n))
    R = np.ones((m, n))
    n_iter = np.zeros(m, dtype=np.int64)
    res = np.full(m, np.inf)
    free = []  # scales left to matrix-free CG
    for j in range(m):
        if stored_pays(X, float(ts[j]), cutoff):
            W[j], R[j], n_iter[j], res[j] = _solve_stored(
                X, float(ts[j]), precs[j], rtol, max_iter, n_jobs, cutoff
            )
        if not res[j] <= rtol:  # not tried, or refinement stalled (e.g. near-duplicates)
            free.append(j)
    if free:
        free = np.asarray(free)
        Wf, itf, resf = _solve_matrix_free(
            X,
            ts[free],
            [precs[j] for j in free],
            W[free],
            R[free],
            rtol,
            max_iter - n_iter[free],
            n_jobs,
            cutoff,
        )
        W[free], n_iter[free], res[free] = Wf, n_iter[free] + itf, resf
    converged = res <= 10 * rtol
    out = np.empty((n, m))
    out[perm] = W.T
    return out, CgInfo(n_iter, res, converged)


def _exact_product(X, ts, V, n_jobs, cutoff):
    from .. import _core

    return _core.magnitude_matvec(X, np.ascontiguousarray(ts), V, cutoff=cutoff, n_jobs=n_jobs)


def stored_pays(X, t, cutoff=CUTOFF):
    """Whether the float32 similarity matrix is stored for scale t: it fits ``DENSE_BYTES`` and
    the matrix-free product would prune less than ``1 - DENSE_KEPT`` of the tile pairs (its
    float32 products, reading n^2 floats, then beat recomputing the kept pairs)."""
    n, d = X.shape
    if n < _DENSE_MIN or 4 * n * n > DENSE_BYTES:
        return False

    # the (16-row block, 512-column tile) pairs the C++ product keeps (same boxes, same test)
    def boxes(size):
        nb = -(-n // size)
        pad = nb * size - n
        Y = np.concatenate([X, np.repeat(X[-1:], pad, axis=0)]).reshape(nb, size, d)
        return Y.min(axis=1), Y.max(axis=1)

    rlo, rhi = boxes(16)
    clo, chi = boxes(512)
    gap = np.maximum(0.0, np.maximum(clo[None] - rhi[:, None], rlo[:, None] - chi[None]))
    kept = np.mean(t * np.sqrt(np.einsum("ijc,ijc->ij", gap, gap)) <= cutoff)
    return kept >= DENSE_KEPT


def _pcg(matvec, prec, r, tol, max_iter):
    """Preconditioned CG for ``A d = r`` from 0 until ``||r - A d|| <= tol``: (d, iterations)."""
    d = np.zeros_like(r)
    z = prec(r[None])[0]
    p = z.copy()
    rz = r @ z
    r = r.copy()
    it = 0
    while it < max_iter and np.linalg.norm(r) > tol:
        ap = matvec(p)
        pap = p @ ap
        if not pap > 0:  # breakdown (A not positive definite to working accuracy)
            break
        it += 1
        alpha = rz / pap
        d += alpha * p
        r -= alpha * ap
        z = prec(r[None])[0]
        rz_new = r @ z
        p *= rz_new / rz
        p += z
        rz = rz_new
    return d, it


def _solve_stored(X, t, prec, rtol, max_iter, n_jobs, cutoff):
    """Mixed-precision iterative refinement for one scale: ``Z_t`` stored once in float32
    (``_core.magnitude_matrix``), inner Vecchia-preconditioned CG on it (float32 entries,
    float64 vectors and sums), outer residuals ``1 - Z_t w`` by the float64 matrix-free product.
    Each refinement multiplies the error by about ``||Z32^-1 (Z - Z32)||`` (1e-7 at mid scales,
    1e-3 at t = 0.05 on the unit square, cond(Z) ~ 1e9): two to five outer products. Returns
    (w, r, iterations, true relative residual, inf unless converged); a stall (near-duplicate
    points: float32 too coarse for Z) leaves the rest to matrix-free CG."""
    from .. import _core

    n = X.shape[0]
    Z = _core.magnitude_matrix(X, t, cutoff=cutoff, n_jobs=n_jobs)

    def inner(v):
        return _core.stored_matvec(Z, v, n_jobs=n_jobs)

    bnorm = math.sqrt(n)
    goal = rtol * bnorm
    w = np.zeros(n)
    r = np.ones(n)
    rn = bnorm
    it = 0
    step = np.inf  # size of the last correction (max norm)
    ok = False
    while it < max_iter:
        # to the float32 matrix's accuracy at first; then below rtol, and by at least 100x
        # (a residual already below rtol can still hide an error: see the stop rule)
        tol = max(_INNER_RTOL * rn, min(0.5 * goal, 0.01 * rn))
        dw, k = _pcg(inner, prec, r, tol, max_iter - it)
        it += k
        w += dw
        r = 1.0 - _exact_product(X, np.array([t]), w[None], n_jobs, cutoff)[0]
        rn = float(np.linalg.norm(r))
        new_step = float(np.abs(dw).max())
        if k == 0:  # inner breakdown (Z32 not positive definite to working accuracy)
            break
        if step == np.inf:  # first cycle: no estimate of the error yet
            step = new_step
            continue
        rate = new_step / step if step > 0 else np.inf  # error contraction per refinement
        if not rate < 0.5:  # stalled: float32 too coarse for this Z
            break
        step = new_step
        # done when the residual meets rtol and the error left (~ rate * last step) is below
        # rtol of the weights: a small residual alone can hide an error along Z's smallest
        # eigenvectors (cond(Z) up to 1e9 at small t)
        if rn <= goal and rate * step <= rtol * float(np.abs(w).max()):
            ok = True
            break
    return w, r, it, rn / bnorm if ok else np.inf


def _solve_matrix_free(X, ts, precs, W, R, rtol, max_iter, n_jobs, cutoff):
    """Matrix-free preconditioned CG from ``W`` (residuals ``R = 1 - Z W``), the products of
    all scales fused; at most ``max_iter[j]`` iterations for scale j. Returns (W, iterations,
    true relative residuals)."""
    n = X.shape[0]
    m = ts.size

    def apply_prec(Rs, act):
        out = np.empty_like(Rs)
        for r, a in enumerate(act):
            out[r] = precs[a](Rs[r : r + 1])[0]
        return out

    bnorm = math.sqrt(n)
    W = W.copy()
    R = R.copy()
    act = np.nonzero(max_iter > 0)[0]
    Zr = apply_prec(R, np.arange(m))
    P = Zr.copy()
    rz = np.einsum("ij,ij->i", R, Zr)
    n_iter = np.zeros(m, dtype=np.int64)
    it = 0
    while act.size:
        it += 1
        AP = _exact_product(X, ts[act], np.ascontiguousarray(P[act]), n_jobs, cutoff)
        pAp = np.einsum("ij,ij->i", P[act], AP)
        alpha = rz[act] / pAp
        W[act] += alpha[:, None] * P[act]
        R[act] -= alpha[:, None] * AP
        n_iter[act] = it
        rn = np.linalg.norm(R[act], axis=1)
        done = (rn <= rtol * bnorm) | ~(pAp > 0) | (it >= max_iter[act])
        keep = act[~done]
        if keep.size:
            Zk = apply_prec(R[keep], keep)
            rz_new = np.einsum("ij,ij->i", R[keep], Zk)
            beta = rz_new / rz[keep]
            P[keep] = Zk + beta[:, None] * P[keep]
            rz[keep] = rz_new
        act = keep
    # the recurrence's residual drifts from the true one: check the true residual
    R = np.ones((m, n)) - _exact_product(X, ts, W, n_jobs, cutoff)
    return W, n_iter, np.linalg.norm(R, axis=1) / bnorm


def vecchia_pattern(X, k, rng, workers=1):
    """A random ordering of the points and, for each position p of it, up to k earlier
    positions near it (the k nearest among the positions before p's doubling chunk
    [a, 2a); all earlier positions in the first chunk), -1 padded: the sparsity of a Vecchia
    (sparse inverse Cholesky) factor. ``workers``: threads of the kd-tree queries."""
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
        _, idx = cKDTree(Xo[:b]).query(Xo[a:b], k=q, workers=workers)
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
    the random ordering of vecchia_pattern; symmetric positive definite by construction.
    The regressions: ``_core.vecchia_factor`` (C++, OpenMP over points, GIL released)."""

    def __init__(self, X, order, nb, t, n_jobs=0):
        import scipy.sparse as sp

        from .. import _core

        n = nb.shape[0]
        self.order = order
        Xo = np.ascontiguousarray(X[order], dtype=np.float64)
        vals, dvar = _core.vecchia_factor(Xo, nb, t, ridge=_RIDGE, n_jobs=n_jobs)
        keep = nb >= 0
        self.dinv = 1.0 / np.maximum(dvar, 1e-14)
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        B = sp.csr_matrix((vals[keep], nb[keep], indptr), shape=(n, n))
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
