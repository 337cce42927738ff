"""Randomized SVD of dense, sparse and LinearOperator matrices."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .. import _core
from .._validation import (
    as_float_array,
    as_real,
    blocked_matmul,
    can_hold_blas,
    canonical_csr,
    check_int,
    check_n_jobs,
    check_random_state,
    reject_gpu,
    single_threaded_blas,
)
from ._kernels import _sumsq

# A^T X for sparse A: scattered by geoml's kernel (A's rows in at most 8 fixed blocks, each
# into its own n_cols x l buffer, summed in block order: the same bits for any thread count)
# while two such buffers fit in this many bytes (the kernel's own cap, csr_t_blocks); beyond,
# A^T is formed once in CSR and multiplied row-parallel.
_SCATTER_BYTES = 2**27


class SVDResult(NamedTuple):
    """Truncated SVD ``A ~= U @ diag(s) @ Vt``. Unpacks as ``U, s, Vt = ...``."""

    U: np.ndarray
    """Left singular vectors, shape (n_rows, k), orthonormal columns."""
    s: np.ndarray
    """Singular values, shape (k,), decreasing."""
    Vt: np.ndarray
    """Right singular vectors, shape (k, n_cols), orthonormal rows."""


def _householder(Y: np.ndarray):
    Q, R = sla.qr(Y, mode="economic", overwrite_a=False, check_finite=False)
    return Q, R


def _tall_gram(Y: np.ndarray, nj: int) -> np.ndarray:
    """``Y^T Y`` in float64; geoml's OpenMP kernel for tall ``Y`` (see ``ts_gram``)."""
    if Y.shape[0] * Y.shape[1] < 2**16:
        return np.asarray(Y.T @ Y, dtype=np.float64)
    return _core.ts_gram(Y, n_jobs=nj)


def _tall_matmul(Y: np.ndarray, M: np.ndarray, nj: int) -> np.ndarray:
    """``Y @ M`` for tall ``Y`` and small ``M``, in Y's dtype."""
    M = np.ascontiguousarray(M, dtype=Y.dtype)
    if Y.shape[0] * Y.shape[1] < 2**16:
        return Y @ M
    return _core.ts_matmul(Y, M, n_jobs=nj)


def _orth(Y: np.ndarray, nj: int = 0, *, passes: int = 2):
    """(Q, R) with ``Y = Q R``, Q orthonormal (m x l), R upper triangular, for a tall ``Y``.

    CholeskyQR2 (Fukaya et al. 2014): ``R = chol(Y^T Y)``, ``Y <- Y R^-1``, twice; several
    times faster than Householder QR on tall matrices and as accurate when
    ``cond(Y) < ~1 / (100 sqrt(eps))``. The tall products run in geoml's OpenMP kernels
    (``ts_gram``, ``ts_matmul``): SciPy's threaded BLAS handles such shapes badly. With
    ``passes=1`` the second pass is skipped when the first was well conditioned (a basis for
    the next power iteration needs no more). Worse-conditioned or rank-deficient ``Y`` (e.g.
    the sketch of an exactly low-rank matrix) falls back to Householder QR (LAPACK ``geqrf``).
    """
    if Y.shape[1] == 0 or Y.shape[0] < Y.shape[1]:
        return _householder(Y)
    eps = np.finfo(Y.dtype).eps
    limit = 100 * np.sqrt(eps)
    Q, Rtot = Y, None
    for _ in range(2):
        G = _tall_gram(Q, nj)
        try:
            R = sla.cholesky(G, lower=False, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return _householder(Y)
        d = np.abs(np.diag(R))
        if not np.isfinite(d).all() or d.min() <= limit * d.max():
            return _householder(Y)
        Rinv, info = sla.lapack.dtrtri(R, lower=0)
        if info != 0:
            return _householder(Y)
        Q = _tall_matmul(Q, Rinv, nj)
        Rtot = R if Rtot is None else R @ Rtot
        if passes == 1 and eps * (d.max() / d.min()) ** 2 <= 1e-6:
            break  # orthogonality error ~ eps cond^2 is small enough for an iterate
    return Q, Rtot.astype(Y.dtype, copy=False)


def _as_operator(A, n_jobs: int):
    """(shape, dtype, matmat, rmatmat, squared Frobenius norm or None) for the input kinds."""
    if isinstance(A, LinearOperator):
        dtype = np.dtype(A.dtype) if A.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        if np.dtype(A.dtype).kind == "c":
            raise TypeError("complex LinearOperators are not supported; real input is expected")

        def matmat(X):
            return np.ascontiguousarray(A.matmat(X), dtype=dtype)

        def rmatmat(X):
            return np.ascontiguousarray(A.rmatmat(X), dtype=dtype)

        return A.shape, dtype, matmat, rmatmat, None
    if sp.issparse(A):
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D; got shape {A.shape}")
        as_real(A, "A")
        dtype = A.dtype if A.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        C = canonical_csr(sp.csr_matrix(A, dtype=dtype))  # copies only if needed
        if not np.isfinite(C.data).all():
            raise ValueError("A contains NaN or infinity")
        m, n = C.shape
        itype = np.int64 if C.indptr.dtype == np.int64 or C.indices.dtype == np.int64 else np.int32
        data = np.ascontiguousarray(C.data)
        ind = np.ascontiguousarray(C.indices, dtype=itype)
        ptr = np.ascontiguousarray(C.indptr, dtype=itype)
        state = {}

        def matmat(X):
            X = np.ascontiguousarray(X, dtype=dtype)
            return _core.csr_matmat(data, ind, ptr, X, n_cols=n, n_jobs=n_jobs)

        def rmatmat(X):
            X = np.ascontiguousarray(X, dtype=dtype)
            if n * X.shape[1] * X.dtype.itemsize <= _SCATTER_BYTES:
                return _core.csr_matmat(data, ind, ptr, X, n_cols=n, transpose=True, n_jobs=n_jobs)
            if "T" not in state:  # else transpose once and run row-parallel
                T = C.T.tocsr()
                state["T"] = (
                    np.ascontiguousarray(T.data),
                    np.ascontiguousarray(T.indices, dtype=itype),
                    np.ascontiguousarray(T.indptr, dtype=itype),
                )
            d, i, p = state["T"]
            return _core.csr_matmat(d, i, p, X, n_cols=m, n_jobs=n_jobs)

        return (m, n), dtype, matmat, rmatmat, _sumsq(data, n_jobs)
    reject_gpu(A, "A", "randomized_svd")
    A = as_float_array(A, "A")
    matmat, rmatmat = _dense_products(A, n_jobs)
    return A.shape, A.dtype, matmat, rmatmat, _sumsq(A, n_jobs)


def _dense_products(A: np.ndarray, nj: int):
    """``(matmat, rmatmat)``: ``A @ X`` and ``A.T @ X`` for a dense ``A``.

    With threadpoolctl installed (BLAS held to one thread by :func:`randomized_svd`) each
    product is a set of one-thread GEMMs over fixed blocks of rows of ``A`` (columns for
    ``A.T @ X``) on ``nj`` threads (:func:`geoml._validation.blocked_matmul`): a
    multi-threaded OpenBLAS GEMM splits its work by its thread count, which on its Haswell
    kernels changes the bits, so the result followed BLAS's thread count (1e-13 relative on
    a 1,500 x 800 matrix, float32 4e-6). Without threadpoolctl: one BLAS GEMM each, whose
    bits follow BLAS's threads."""
    if not can_hold_blas():
        return (lambda X: A @ X), (lambda X: A.T @ X)
    return (lambda X: blocked_matmul(A, X, nj)), (
        lambda X: blocked_matmul(A, X, nj, transpose=True)
    )


_MAX_POWER_ITER = 1000  # an explicit n_iter = 2**31 would run (hang) for hours


def randomized_svd(
    A,
    k: int,
    *,
    n_oversamples: int = 10,
    n_iter="auto",
    random_state=None,
    n_jobs: int | None = None,
) -> SVDResult:
    """Truncated SVD by randomized subspace iteration (Halko, Martinsson & Tropp 2011).

    Draws a Gaussian test matrix ``Omega`` (n_cols x l, ``l = k + n_oversamples``), forms an
    orthonormal basis ``Q`` of ``A @ Omega``, refines it by power iterations
    ``Q <- orth(A @ orth(A.T @ Q))`` (each product re-orthonormalised by a QR, so small singular
    values are not lost to rounding), then takes the SVD of the small ``Q.T @ A``.
    Only products with ``A`` and ``A.T`` are needed: 2 + 2 * (power iterations) of them.

    Parameters
    ----------
    A : array-like, scipy.sparse matrix or scipy.sparse.linalg.LinearOperator, shape (m, n)
        Real input. Dense float32/float64 arrays are used as they are (other numbers become
        float64); sparse matrices go through geoml's multi-threaded CSR products (any format,
        converted to CSR once); a LinearOperator needs ``matmat`` and ``rmatmat``.
        NaN/inf raise ``ValueError`` (not checked for a LinearOperator).
    k : int
        Number of singular triplets, ``1 <= k <= min(m, n)``.
    n_oversamples : int, default 10
        Extra sketch columns (``l = min(k + n_oversamples, m, n)``).
    n_iter : int or "auto", default "auto"
        Power iterations. An int runs exactly that many. ``"auto"`` runs at most 7 (4 when
        ``k >= 0.1 * min(m, n)``, the caps scikit-learn uses) and stops early once they stop
        helping: after at least one, it stops when the captured energy
        ``E = sum_{i<=k} s_i(Q^T A)^2`` (free, as ``A.T @ Q`` is computed anyway) grew by less
        than ``1e-4`` times the residual ``||A||_F^2 - E`` (so the approximation error
        ``sqrt(||A||_F^2 - E)`` moves by < 0.005 %), or when the gains still to come, bounded
        by a geometric series of ratio ``(s_l / s_k)^2`` (the sketch's own estimate of the
        spectral gap), are that small; for a LinearOperator, whose norm is unknown, the
        threshold is ``1e-7 E``.
    random_state : None, int or numpy.random.Generator
        Seed of the Gaussian test matrix.
    n_jobs : int, optional
        Threads (None: geoml's default count; -1: all cores) of the sparse products (geoml's
        OpenMP kernels) and, when threadpoolctl is installed, of the dense products (fixed
        blocks of rows, each a one-thread BLAS GEMM, BLAS held to one thread during the call).

    Returns
    -------
    SVDResult
        ``U`` (m, k), ``s`` (k,) decreasing, ``Vt`` (k, n), in the input's float dtype; each
        row of ``Vt`` has its largest-magnitude entry positive (``U`` follows).

    Notes
    -----
    The same ``random_state`` gives the same bits for any ``n_jobs`` and any BLAS thread
    count (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``) when threadpoolctl is installed;
    without it the dense products and the small factorizations run in BLAS's own threads,
    whose split changes the last bits (1e-13 relative). A LinearOperator's products are the
    operator's own, and BLAS is left to its own threads around them (its bits may follow
    BLAS's thread count).

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness: probabilistic
    algorithms for constructing approximate matrix decompositions", SIAM Review 53 (2011).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 100))  # rank 5
    >>> U, s, Vt = geoml.randomized_svd(A, 5, random_state=0)
    >>> U.shape, s.shape, Vt.shape
    ((200, 5), (5,), (5, 100))
    >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:5]))
    True
    """
    nj = check_n_jobs(n_jobs)
    (m, n), dtype, matmat, rmatmat, norm2 = _as_operator(A, nj)
    if m == 0 or n == 0:
        raise ValueError(f"A is empty (shape {(m, n)})")
    if norm2 is not None and not norm2 <= 1e-8 * float(np.finfo(dtype).max):
        # the sketch's Gram matrices hold ~ l ||A||_F^2 and would overflow
        raise ValueError(
            f"the squared norm of A ({norm2:.3g}) is too close to the {dtype} range; rescale A"
        )
    k = check_int(k, "k", low=1, high=min(m, n), hint=f" (A has shape {(m, n)})")
    p = check_int(n_oversamples, "n_oversamples", low=0)
    auto = isinstance(n_iter, str)
    if auto:
        if n_iter != "auto":
            raise ValueError(f"n_iter={n_iter!r}; use 'auto' or a non-negative integer")
        max_iter = 7 if k < 0.1 * min(m, n) else 4
    else:
        max_iter = check_int(
            n_iter,
            "n_iter",
            low=0,
            high=_MAX_POWER_ITER,
            hint=" (power iterations beyond a few dozen gain nothing)",
        )
    rng = check_random_state(random_state)
    ell = min(k + p, m, n)
    # BLAS on one thread throughout (the dense products run as fixed one-thread blocks on
    # geoml's threads, see _dense_products; the small QR, Cholesky, SVD and Gram products
    # are a few ell x ell to m x ell): the same bits for any thread count. Not around a
    # LinearOperator's own products, which may rely on BLAS's threads.
    hold = contextlib.nullcontext() if isinstance(A, LinearOperator) else single_threaded_blas()
    with hold:
        return _rsvd(matmat, rmatmat, norm2, m, n, k, ell, max_iter, auto, rng, dtype, nj)


def _rsvd(matmat, rmatmat, norm2, m, n, k, ell, max_iter, auto, rng, dtype, nj):
    """The iteration of :func:`randomized_svd` on validated arguments."""
    Omega = rng.standard_normal((n, ell), dtype=np.float64).astype(dtype, copy=False)
    Q = _orth(matmat(Omega), nj)[0]
    Z = rmatmat(Q)  # Z = A^T Q = (Q^T A)^T
    e_prev = None
    for _ in range(max_iter):
        if auto:
            ev = np.linalg.eigvalsh(_tall_gram(Z, nj))[::-1]  # s_i^2
            e = float(np.sum(ev[:k]))
            if e_prev is not None:
                floor = (norm2 - e) if norm2 is not None else 1e-3 * e
                thr = 1e-4 * max(floor, 1e-10 * e)
                gain = e - e_prev
                # gains shrink at least like rho = (s_l / s_k)^2 per iteration
                rho = max(ev[ell - 1], 0.0) / ev[k - 1] if ev[k - 1] > 0 else 1.0
                if gain <= thr or (rho < 1 and gain * rho / (1 - rho) <= thr):
                    break
            e_prev = e
        Q = _orth(matmat(_orth(Z, nj, passes=1)[0]), nj)[0]
        Z = rmatmat(Q)
    # Z = A^T Q = Qz Rz, Rz = Ur diag(s) Vrt, so Q^T A = Z^T = Vrt^T diag(s) (Qz Ur)^T
    Qz, Rz = _orth(Z, nj)
    Ur, s, Vrt = sla.svd(np.asarray(Rz, dtype=np.float64), check_finite=False)
    U = _tall_matmul(Q, Vrt[:k].T, nj)
    Vt = _tall_matmul(Qz, Ur[:, :k], nj).T
    idx = np.argmax(np.abs(Vt), axis=1)  # sign convention: each Vt row's largest entry > 0
    signs = np.sign(Vt[np.arange(k), idx])
    signs[signs == 0] = 1
    U = np.ascontiguousarray(U * signs, dtype=dtype)
    Vt = np.ascontiguousarray(Vt * signs[:, None], dtype=dtype)
    return SVDResult(U, np.ascontiguousarray(s[:k], dtype=dtype), Vt)


# ---------------------------------------------------------------- Tucker
