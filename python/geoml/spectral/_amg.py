"""Algebraic multigrid hierarchy and the AMG-preconditioned LOBPCG of the Laplacian path."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _core

_AMG_MIN_N = 10000  # graphs with at least this many nodes use LOBPCG + AMG ("auto")
_AMG_MAX_COARSE = 800  # coarsest level solved densely
_AMG_CYCLES = 2  # V-cycles per application of the preconditioner
_AMG_GUARD = 4  # guard vectors in the block (at least; kk // 4 for many pairs)
_AMG_COARSE_ITER = 5  # LOBPCG iterations on each intermediate level
_AMG_MAX_ITER = 200  # LOBPCG iterations on the finest level before falling back to Lanczos


def _spmm(
    A: sp.csr_matrix,
    X: np.ndarray,
    nt: int,
    alpha: float = 1.0,
    B=None,
    beta: float = 0.0,
    out=None,
) -> np.ndarray:
    """alpha A X + beta B (B None: 0; out may be B) by the OpenMP CSR block product in C++."""
    if out is None:
        out = np.empty((A.shape[0], X.shape[1]))
    _core.csr_spmm(
        A.indptr,
        A.indices,
        A.data,
        np.ascontiguousarray(X),
        out,
        alpha=alpha,
        B=B,
        beta=beta,
        n_jobs=nt,
    )
    return out


class _Level:
    """One level of the AMG hierarchy: operator A, Jacobi weights, transfer operators."""

    __slots__ = ("A", "P", "R", "V", "jac", "pinv", "w")


def _amg_hierarchy(A: sp.csr_matrix, b: np.ndarray, nt: int = 0) -> list:
    """Smoothed-aggregation hierarchy of the symmetric positive semi-definite CSR ``A``.

    ``b`` spans the near-null space (``D^1/2 1`` for ``L_sym``). Aggregates come from the
    greedy three-pass aggregation of the matrix graph (C++); the tentative prolongator puts
    ``b`` restricted to each aggregate, normalised, in its column (so the coarse near-null
    vector is the vector of aggregate norms); it is smoothed by one weighted-Jacobi step
    ``P = (I - 4/(3 rho) D^-1 A) P_tent`` (``rho`` estimated by :func:`_spectral_radius`);
    coarse operator ``P^T A P``. Stops at ``_AMG_MAX_COARSE`` nodes (or when aggregation
    stalls); the coarsest level keeps its full eigendecomposition.
    """
    levels = []
    while True:
        lev = _Level()
        lev.A = A
        n = A.shape[0]
        dg = A.diagonal()
        dinv = np.where(dg > 0, 1.0 / np.where(dg > 0, dg, 1.0), 1.0)
        rho = _spectral_radius(A, dinv, nt=nt)
        lev.jac = (4.0 / (3.0 * max(rho, 1e-300))) * dinv
        levels.append(lev)
        if n <= _AMG_MAX_COARSE:
            break
        labels, nagg = _core.aggregate_graph(A.indptr, A.indices, A.data)
        if nagg > 0.7 * n:
            break
        norms = np.sqrt(np.bincount(labels, b * b, minlength=nagg))
        norms[norms == 0] = 1.0
        Pt = sp.csr_matrix((b / norms[labels], labels, np.arange(n + 1)), shape=(n, nagg))
        P = sp.csr_matrix(Pt - sp.diags(lev.jac) @ (A @ Pt))
        R = sp.csr_matrix(P.T)
        Ac = sp.csr_matrix(R @ (A @ P))
        Ac = sp.csr_matrix((Ac + Ac.T) * 0.5)
        for M in (P, R, Ac):
            M.sort_indices()
        lev.P, lev.R = P, R
        A, b = Ac, norms
    last = levels[-1]
    w, V = np.linalg.eigh(last.A.toarray())
    keep = w > 1e-12 * max(float(np.abs(w).max()), 1e-300)
    last.pinv = (V[:, keep] / w[keep]) @ V[:, keep].T
    last.w, last.V = w, V
    return levels


def _spectral_radius(A: sp.csr_matrix, dinv: np.ndarray, steps: int = 15, nt: int = 0) -> float:
    """rho(D^-1 A) by a few power iterations, raised 5% (a lower bound before; tight enough
    for Jacobi weights), capped by the Gershgorin bound. Products by the OpenMP CSR SpMV of
    the Lanczos solver (``nt`` threads; ~1.7x SciPy's on the benchmark graph)."""
    mv = _core.csr_matvec
    n = A.shape[0]
    nt = nt if A.nnz + n >= 200000 else 1  # small levels: a parallel region costs more
    bound = (
        float((mv(A.indptr, A.indices, np.abs(A.data), np.ones(n), n_jobs=nt) * dinv).max())
        if A.nnz
        else 1.0
    )
    x = np.random.default_rng(0).standard_normal(n)
    rho = 0.0
    for _ in range(steps):
        y = dinv * mv(A.indptr, A.indices, A.data, x, n_jobs=nt)
        rho = float(np.linalg.norm(y) / max(np.linalg.norm(x), 1e-300))
        x = y / max(float(np.linalg.norm(y)), 1e-300)
    return max(min(1.05 * rho, bound), 1e-300)


def _amg_cycle(levels: list):
    """The C++ V-cycle (``_core.AmgCycle``, float32) over the hierarchy ``levels``."""
    cyc = _core.AmgCycle()
    for lev in levels[:-1]:
        cyc.add_level(
            lev.A.indptr,
            lev.A.indices,
            lev.A.data,
            lev.jac,
            lev.P.indptr,
            lev.P.indices,
            lev.P.data,
            lev.R.indptr,
            lev.R.indices,
            lev.R.data,
        )
    last = levels[-1]
    pinv = sp.csr_matrix(last.pinv)
    cyc.set_coarse(last.A.indptr, last.A.indices, last.A.data, pinv.indptr, pinv.indices, pinv.data)
    return cyc


def _orthonormalise(U: np.ndarray, nt: int) -> np.ndarray:
    """Orthonormal basis of range(U) by the eigendecomposition of U^T U (SVQB), twice; the
    Gram matrix and the product run in C++ (``_core.block_gram`` / ``block_lincomb``), in
    place while no column is dropped."""
    for _ in range(2):
        s, Q = np.linalg.eigh(_sym(_core.block_gram([U], [U], n_jobs=nt)))
        keep = s > 1e-12 * max(float(s.max()), 1e-300)
        M = Q[:, keep] / np.sqrt(s[keep])
        out = U if M.shape[1] == U.shape[1] else np.empty((U.shape[0], M.shape[1]))
        _core.block_lincomb([U], M, out, n_jobs=nt)
        U = out
    return U


def _lobpcg(A: sp.csr_matrix, X: np.ndarray, T, Z, kw: int, tol: float, max_iter: int, nt: int):
    """LOBPCG (Knyazev 2001) for the smallest eigenpairs of the symmetric CSR matrix A.

    ``X`` (n, m) spans the start space (overwritten when it is a C-contiguous float64
    array: callers pass fresh blocks), ``T(R)`` applies the preconditioner to a block,
    ``Z`` (n, c) orthonormal or None is deflated (the iteration stays orthogonal to it).
    The first ``kw`` columns are wanted (the other ``m - kw`` are guard vectors that speed
    up their convergence); a wanted column stops getting new directions (soft locking)
    once ``||A x - theta x|| <= tol``. The Rayleigh-Ritz step on ``[X, W, P]`` uses the
    Gram matrix of the basis (eigendecomposition, dropping dependent directions), so a
    nearly dependent ``P`` block never breaks it. The n-row blocks are never copied or
    rescaled: the Gram matrices ``[X W P]^T [W P]`` and ``[X W P]^T [AW AP]`` come from one
    pass over the separate blocks (``_core.block_gram``; ``P``'s active columns read in
    place), the unit-norm scaling of the ``W`` and ``P`` columns is applied to the small
    matrices, and the new blocks are linear combinations written into preallocated ones
    (``_core.block_lincomb``), both C++/OpenMP over rows. Done with NumPy on a single-threaded
    BLAS (12 separate Gram products and 6 block products, with W normalised in memory) the
    dense algebra of one iteration took ~2x as long on the benchmark graph (n = 200,000;
    see the module notes). Returns (theta (m,), X (n, m), residual norms (m,), iterations,
    converged, matvec columns).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]

    def project_out(Bs, U):  # U -= B (B^T U) for B = [B_1 ...] with orthonormal columns
        Bs = [B for B in Bs if B is not None and B.shape[1]]
        if Bs:
            G = _core.block_gram(Bs, [U], n_jobs=nt)
            _core.block_lincomb(Bs, -G, U, beta=1.0, n_jobs=nt)
        return U

    X = _orthonormalise(project_out([Z], X), nt)
    m = X.shape[1]
    if m < kw:  # the start space lost rank: not usable (the caller falls back)
        return None, X, None, 0, False, 0
    AX = _spmm(A, X, nt)
    n_mv = m
    lam, C = np.linalg.eigh(_sym(_core.block_gram([X], [AX], n_jobs=nt)))
    _core.block_lincomb([X], C, X, n_jobs=nt)
    _core.block_lincomb([AX], C, AX, n_jobs=nt)
    P = AP = None
    R, awbuf = np.empty((n, m)), np.empty(n * m)
    it = 0
    while True:
        res = _core.block_residual(X, AX, lam, R, n_jobs=nt)  # R = AX - X diag(lam), norms
        act = np.flatnonzero(res[:kw] > tol)
        if act.size == 0 or it == max_iter:
            return lam, X, res, it, act.size == 0, n_mv
        it += 1
        a = act.size
        # the active columns as runs of consecutive ones: column blocks read in place
        runs = [
            slice(int(r[0]), int(r[-1]) + 1)
            for r in np.split(act, np.flatnonzero(np.diff(act) != 1) + 1)
        ]
        cols = runs[0] if len(runs) == 1 else act
        W = project_out([Z, X], T(np.ascontiguousarray(R[:, cols])))
        AW = _spmm(A, W, nt, out=awbuf[: n * a].reshape(n, a))
        n_mv += a
        # Rayleigh-Ritz on the basis [X, W, P] with unit columns in W and P (X^T X = I,
        # X^T A X = diag(lam)): G = [X W P]^T [W P | AW AP] on the unscaled blocks
        B, AB = [W], [AW]
        if P is not None:
            B, AB = B + [P[:, r] for r in runs], AB + [AP[:, r] for r in runs]
        G = _core.block_gram([X, *B], [*B, *AB], n_jobs=nt)
        q = G.shape[1] // 2
        GB, GA = G[:, :q], G[:, q:]
        sc = 1.0 / np.sqrt(np.maximum(np.diag(GB[m:]), 1e-300))
        ss = np.outer(sc, sc)
        GA = np.block([[np.diag(lam), GA[:m] * sc], [(GA[:m] * sc).T, _sym(GA[m:] * ss)]])
        GB = np.block([[np.eye(m), GB[:m] * sc], [(GB[:m] * sc).T, _sym(GB[m:] * ss)]])
        s, Q = np.linalg.eigh(GB)
        keep = s > 1e-12 * s.max()
        M = Q[:, keep] / np.sqrt(s[keep])
        theta, V = np.linalg.eigh(_sym(M.T @ GA @ M))
        C = M @ V[:, :m]
        lam = theta[:m]
        # new blocks in place (P's active columns are views of P: row r of every input is
        # read before row r of the output is written): P = [W P] Cb, X = X Cx + P, and the
        # same for AP, AX (four n x m blocks in all; fresh ones cost page faults)
        if P is None:
            P, AP = np.empty((n, m)), np.empty((n, m))
        Cb = C[m:] * sc[:, None]  # coefficients of the unscaled [W P] columns
        _core.block_lincomb(B, Cb, P, n_jobs=nt)
        _core.block_lincomb([X], C[:m], X, D=P, n_jobs=nt)
        _core.block_lincomb(AB, Cb, AP, n_jobs=nt)
        _core.block_lincomb([AX], C[:m], AX, D=AP, n_jobs=nt)


def _sym(G: np.ndarray) -> np.ndarray:
    return (G + G.T) * 0.5
