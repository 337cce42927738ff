"""Smallest eigenpairs of a normalised graph Laplacian: Lanczos, AMG/LOBPCG or the GPU path."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._device import xp as _xp
from .._validation import (
    check_n_jobs,
    is_device_object,
    random_seed,
    single_threaded_blas,
    user_stacklevel,
)
from ._amg import (
    _AMG_COARSE_ITER,
    _AMG_CYCLES,
    _AMG_GUARD,
    _AMG_MAX_ITER,
    _AMG_MIN_N,
    _amg_cycle,
    _amg_hierarchy,
    _lobpcg,
    _spmm,
)
from ._eigsh import _check_tol, _early_stop_advice, _rounding_note
from ._laplacian import _degrees, _normalized_adjacency, _null_space

# Degree of the Chebyshev filter used for the smallest eigenpairs of normalised Laplacians
# (0 = plain Lanczos on N); chosen from the measurements in the module docstring.
_CHEB_DEGREE = 16


def _lsym_smallest_amg(
    W: sp.csr_matrix,
    d: np.ndarray,
    Z: np.ndarray,
    perm: np.ndarray,
    kk: int,
    tol: float,
    max_iter: int,
    seed: int,
    nt: int,
):
    """The kk smallest non-null eigenpairs of L_sym by multilevel LOBPCG + AMG.

    Nodes are renumbered by the reverse Cuthill-McKee order ``perm`` first (block products
    on a kNN graph in data order are bound by cache misses; banded, they run ~10x faster);
    ``L_sym`` is built renumbered in one C++ pass (``_core.permuted_lsym``). Returns
    (eigenvalues (kk,), eigenvectors (n, kk), residuals (kk,), iterations, matvecs,
    converged).
    """
    with single_threaded_blas():
        return _lsym_smallest_amg_run(W, d, Z, perm, kk, tol, max_iter, seed, nt)


def _lsym_smallest_amg_run(W, d, Z, perm, kk, tol, max_iter, seed, nt):
    n = W.shape[0]
    dp = d[perm]
    ip, ix, val = _core.permuted_lsym(W.indptr, W.indices, W.data, d, perm, n_jobs=nt)
    L = sp.csr_matrix((val, ix, ip), shape=(n, n))  # L_sym renumbered, sorted columns
    b = np.where(dp > 0, np.sqrt(dp), 1.0)
    return _amg_lobpcg_run(L, b, Z, perm, kk, tol, max_iter, seed, nt)


def _amg_lobpcg_run(L, b, Z, perm, kk, tol, max_iter, seed, nt):
    """The kk smallest eigenpairs of the renumbered Laplacian ``L`` (CSR, sorted) orthogonal
    to its null space ``Z`` (in the original order) by multilevel LOBPCG + AMG built with the
    near-null vector ``b`` (renumbered); the eigenvectors come back in the original order.
    Shared by the symmetric normalised (``b = D^1/2 1``) and combinatorial (``b = 1``)
    Laplacians."""
    n = L.shape[0]
    Zp = Z[perm]
    levels = _amg_hierarchy(L, b, nt)
    ncomp = Z.shape[1]
    m = min(kk + max(_AMG_GUARD, kk // 4), n - ncomp)
    X = levels[-1].V[:, : m + ncomp]  # all of them if the coarsest level is that small
    cyc = _amg_cycle(levels)
    rng = np.random.default_rng(seed)
    n_mv = 0
    for i in range(len(levels) - 2, -1, -1):
        X = _spmm(levels[i].P, X, nt)
        if X.shape[1] < m + ncomp:  # pad with random vectors
            X = np.hstack([X, rng.standard_normal((X.shape[0], m + ncomp - X.shape[1]))])
        T = functools.partial(cyc.apply, i, cycles=_AMG_CYCLES, n_jobs=nt)
        if i > 0:
            _, X, _, _, _, mv = _lobpcg(
                levels[i].A, X, T, None, X.shape[1], 0.0, _AMG_COARSE_ITER, nt
            )
        else:
            lam, X, res, n_iter, conv, mv = _lobpcg(L, X, T, Zp, kk, tol, max_iter, nt)
        n_mv += mv
    if len(levels) == 1:  # small graph: one level, start from its exact eigenvectors
        X = np.hstack([X, rng.standard_normal((n, max(0, m + ncomp - X.shape[1])))])
        T = functools.partial(cyc.apply, 0, cycles=_AMG_CYCLES, n_jobs=nt)
        lam, X, res, n_iter, conv, n_mv = _lobpcg(L, X, T, Zp, kk, tol, max_iter, nt)
    if not conv:
        return None, None, None, n_iter, n_mv, False
    V = np.empty((n, kk))
    V[perm] = X[:, :kk]
    return lam[:kk], V, res[:kk], n_iter, n_mv, True


def _lsym_smallest(
    W: sp.csr_matrix,
    k: int,
    *,
    tol=None,
    random_state=None,
    n_jobs=None,
    cheb_degree: int | None = None,
    cheb_cut: float = -2.0,
    max_iter: int = 1000,
    method: str = "auto",
    advice: str = "raise max_iter",
):
    """k smallest eigenpairs of L_sym = I - N, null space put in exactly.

    ``method``: ``"lanczos"`` (largest of N by filtered thick-restart Lanczos),
    ``"lobpcg-amg"`` (multilevel LOBPCG + AMG; falls back to Lanczos if it does not
    converge in ``_AMG_MAX_ITER`` iterations) or ``"auto"`` (LOBPCG + AMG from
    ``_AMG_MIN_N`` nodes on). Returns (eigenvalues ascending (k,), eigenvectors (n, k), d,
    converged, info dict). A ``cupyx.scipy.sparse`` ``W`` runs on the GPU
    (``_gpu_lanczos.lsym_smallest``, Lanczos whatever ``method``). ``advice``: the
    non-convergence warning's advice (``_rounding_note``; ``""`` without ``max_iter``).
    """
    if method not in ("auto", "lanczos", "lobpcg-amg"):
        raise ValueError(f"method={method!r}; choose 'auto', 'lanczos' or 'lobpcg-amg'")
    if is_device_object(W):
        from . import _gpu_lanczos as _spectral_gpu

        return _spectral_gpu.lsym_smallest(
            W, k, tol=_check_tol(tol, np.float64), seed=random_seed(random_state), max_iter=max_iter
        )
    n = W.shape[0]
    if W.nnz and not W.data.all():  # a zero-weight edge (e.g. an underflowed kernel) is no edge:
        W = W.copy()  # the components must agree with the degrees
        W.eliminate_zeros()
    d = _degrees(W)
    # RCM order (for the LOBPCG path) and components in one C++ sweep
    perm, labels, ncomp = _core.rcm_components(W.indptr, W.indices)
    Z = _null_space(labels, ncomp, d)
    info = {"components": ncomp, "n_matvec": 0, "n_iter": 0}
    if ncomp >= k:
        return np.zeros(k), Z[:, :k], d, True, info
    kk = k - ncomp
    if kk > n - ncomp - 1:
        raise ValueError(
            f"{k} eigenpairs requested but the graph has only {n} nodes (and {ncomp} components)"
        )
    tol = _check_tol(tol, np.float64)
    if method == "lobpcg-amg" or (method == "auto" and n >= _AMG_MIN_N):
        w, V, res, n_iter, n_mv, conv = _lsym_smallest_amg(
            W, d, Z, perm, kk, tol, _AMG_MAX_ITER, random_seed(random_state), check_n_jobs(n_jobs)
        )
        if conv:
            info.update(n_matvec=int(n_mv), n_iter=int(n_iter), residuals=res, method="lobpcg-amg")
            return np.concatenate([np.zeros(ncomp), w]), np.hstack([Z, V]), d, True, info
    info["method"] = "lanczos"
    N, _ = _normalized_adjacency(W)
    deg = _CHEB_DEGREE if cheb_degree is None else int(cheb_degree)
    N.sort_indices()
    index64 = N.indptr.dtype == np.int64
    ip, ix = (
        (N.indptr, N.indices)
        if index64
        else (N.indptr.astype(np.int32), N.indices.astype(np.int32))
    )
    options = _core.LanczosOptions(
        k=kk,
        which=_core.Which.LA,
        tol=tol,
        max_iter=max_iter,
        anorm=1.0,
        cheb_degree=deg,
        cheb_cut=cheb_cut,
        verify=False,
        seed=random_seed(random_state),
    )
    solve = {"options": options, "deflate": np.ascontiguousarray(Z), "n_jobs": check_n_jobs(n_jobs)}
    if W.nnz and np.all(W.data == W.data[0]):
        # unweighted graph: N = S P S with the pattern P and s = 1 / sqrt(row counts)
        cnt = np.diff(N.indptr).astype(np.float64)
        scale = np.where(cnt > 0, 1.0 / np.sqrt(np.where(cnt > 0, cnt, 1.0)), 0.0)
        run = functools.partial(_core.eigsh_scaled_pattern, ip, ix, scale)
    else:
        run = functools.partial(_core.eigsh_csr, N.data, ip, ix)
    out = run(**solve)
    # A cluster of equal eigenvalues wider than the basis's room cut by the k-th (identical
    # components: 6 disjoint 300-node cycles, every eigenvalue 12-fold, k = 24) fills the
    # basis with locked pairs while copies that beat the k-th are still unconverged: the
    # solve stops before max_iter, flagged. Once more with twice the basis (the products
    # of both runs are counted).
    room = min(2 * max(2 * kk + 1, 20), n - ncomp)
    if not out[5] and out[3] < max_iter and room > max(2 * kk + 1, 20):
        options.ncv = room
        retry = run(**solve)
        retry = retry[:4] + (retry[4] + out[4],) + retry[5:]
        out = retry if retry[5] or retry[2].max() < out[2].max() else out
    w, V, res, n_iter, n_mv, conv, anorm, cut = out
    info.update(n_matvec=int(n_mv), n_iter=int(n_iter), residuals=res, cheb_cut=float(cut))
    V = V.reshape(n, kk)
    lam = np.concatenate([np.zeros(ncomp), 1.0 - w[::-1]])
    vecs = np.hstack([Z, V[:, ::-1]])
    if not conv:
        warnings.warn(
            f"the Laplacian eigensolver did not converge in {n_iter} restart cycles "
            f"(largest residual {res.max():.3g}, tol {tol:.3g})"
            + _rounding_note(
                float(res.max()),
                1.0,
                advice=_early_stop_advice(int(n_iter), options.max_iter, advice),
            ),
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return lam, vecs, d, bool(conv), info


def _sign_flip(U):
    """Make the largest-|.| entry of each column positive (as scikit-learn does)."""
    xp = _xp(U)
    idx = xp.argmax(xp.abs(U), axis=0)
    signs = xp.sign(U[idx, xp.arange(U.shape[1])])
    signs[signs == 0] = 1
    return U * signs


# ----------------------------------------------------------------------------- estimators
