"""Randomized SVD and Tucker decompositions (CPU kernels in ``cpp/lowrank.cpp``).

Where the work goes:

* Mode-n products (TTM), mode-n Gram matrices ``X_(n) X_(n)^T`` and mode-n sketches
  ``X_(n) W`` of dense tensors run in C++ (``cpp/lowrank.cpp``) on the C-ordered tensor seen as
  an (L, I_n, R) array, without forming unfoldings (narrow trailing sizes are gathered in
  bounded blocks). Products to few rows (J <= 32) run in geoml's own OpenMP/SIMD kernels,
  which read the tensor once (OpenBLAS reaches a third of the memory bandwidth on such skinny
  shapes; narrow slabs are packed into cache-sized column blocks); Gram matrices of modes
  up to 512 run in geoml's OpenMP/SIMD kernel (cache-sized column blocks packed into panels,
  4 x 12 register tiles in float64: about 20 % faster than OpenBLAS's SYRK on one core, and
  it uses the second core where SciPy's threaded SYRK barely did), larger ones are one SYRK
  per mode or per wide slab. The
  products ``X_(n) X_(n)^T U`` of HOSVD's certified refinement run in geoml's kernel too
  (``gram_apply``: per cache-sized block, ``P = block^T U`` then ``Z += block P``). The GEMM/SYRK
  calls go to SciPy's own BLAS: the function pointers are taken from
  ``scipy.linalg.cython_blas.__pyx_capi__`` when this module is imported, so geoml needs no
  BLAS at build time and uses the same (threaded) BLAS as SciPy. BLAS is called from one thread
  only, never inside an OpenMP region, so the two never oversubscribe.
* The order of the modes (ST-HOSVD, chains of products) and the choice between a sketch and
  an exact step (``method="randomized"``) follow a time model of these kernels
  (``_ttm_cost``, ``_gram_cost``, ``_sketch_cost``), fitted on AVX2 cores.
* The small symmetric eigenproblems (I_n x I_n Gram matrices, I_n = a mode size) and the small
  SVDs/QRs go to SciPy's LAPACK (``scipy.linalg.eigh``/``svd``/``qr``) from Python: they cost
  O(I_n^3), negligible next to the O(I_n * numel) tensor products, and this keeps LAPACK
  workspace handling out of C++. With integer ranks, the leading eigenvectors come from a few
  steps of subspace iteration instead (O(I_n^2 r_n) each, several times cheaper than
  ``syevr`` at I_n = 200), accepted only when a Davis-Kahan bound certifies the leading
  subspace (``_certified_subspace``): to 1e-8 (float64; 1e-5 float32) from a Gaussian start
  in (ST-)HOSVD (``_eig_top``), to 1e-10 from the previous factor in HOOI (``_eig_warm``);
  otherwise LAPACK.
* :func:`randomized_svd` uses NumPy's BLAS GEMMs for dense input and geoml's OpenMP CSR kernels
  for sparse input (SciPy's sparse-times-dense product is single-threaded). Its tall-skinny
  re-orthonormalisations (CholeskyQR2) run in geoml's OpenMP kernels ``ts_gram``/``ts_matmul``
  (AVX2 when available): threaded BLAS synchronises once per block of the long dimension and
  is many times slower on such shapes when the cores are busy.
"""
from __future__ import annotations

import math
import numbers
import warnings
from itertools import permutations
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from . import _core
from ._validation import (as_float_array, check_int, check_n_jobs, reject_gpu,
                          single_threaded_blas)

__all__ = ["SVDResult", "Tucker", "TuckerTensor", "randomized_svd", "tucker"]


def _install_blas() -> None:
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    _core.lowrank_set_blas(capi["dgemm"], capi["sgemm"], capi["dsyrk"], capi["ssyrk"])


_install_blas()

_METHODS = ("hooi", "hosvd", "st_hosvd", "randomized")
# A^T X for sparse A scatters into one private (n_cols x l) buffer per extra thread while these
# stay below this many bytes; beyond, A^T is formed once in CSR and multiplied row-parallel.
_SCATTER_BYTES = 2**28
# Entries per block of TuckerTensor.rel_error.
_BLOCK_ENTRIES = 2**23


# ---------------------------------------------------------------- small helpers

def _sfx(dtype) -> str:
    return "f32" if dtype == np.float32 else "f64"


def _ttm(X: np.ndarray, n: int, M: np.ndarray, transposed: bool, nj: int) -> np.ndarray:
    """``X x_n M`` (M is J x I_n) or, if ``transposed``, ``X x_n M^T`` (M is I_n x J)."""
    M = np.ascontiguousarray(M, dtype=X.dtype)
    return getattr(_core, "ttm_" + _sfx(X.dtype))(X, n, M, transposed, nj)


def _gram(X: np.ndarray, n: int, nj: int) -> np.ndarray:
    return getattr(_core, "mode_gram_" + _sfx(X.dtype))(X, n, nj)


def _gram_apply(X: np.ndarray, n: int, U: np.ndarray, nj: int) -> np.ndarray:
    """``X_(n) X_(n)^T U`` in float64 without forming the Gram matrix (one read of X)."""
    U = np.ascontiguousarray(U, dtype=X.dtype)
    return getattr(_core, "gram_apply_" + _sfx(X.dtype))(X, n, U, nj)


def _gram_apply_pair(X: np.ndarray, U1: np.ndarray, U2: np.ndarray, nj: int):
    """``_gram_apply`` for the last two modes (U1 for mode N-2, U2 for N-1), one read of X."""
    U1 = np.ascontiguousarray(U1, dtype=X.dtype)
    U2 = np.ascontiguousarray(U2, dtype=X.dtype)
    return getattr(_core, "gram_apply_pair_" + _sfx(X.dtype))(X, U1, U2, nj)


def _sumsq(X: np.ndarray, nj: int) -> float:
    return getattr(_core, "sum_squares_" + _sfx(X.dtype))(np.ascontiguousarray(X), nj)


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a numpy Generator; got {random_state!r}")


def _fix_signs(V: np.ndarray) -> np.ndarray:
    """Flip columns so that each one's largest-magnitude entry is positive (deterministic)."""
    if V.size == 0:
        return V
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1
    return V * signs


def _eig_desc(G: np.ndarray, r: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the symmetric ``G`` by decreasing eigenvalue (LAPACK ``syevr``, in float64).

    With ``r`` only the leading ``r`` pairs are computed; with None all of them.
    """
    G = np.array(G, dtype=np.float64)
    dim = G.shape[0]
    if r is None or r >= dim:
        w, V = sla.eigh(G, overwrite_a=True, check_finite=False)
    else:
        w, V = sla.eigh(G, subset_by_index=[dim - r, dim - 1], overwrite_a=True,
                        check_finite=False, driver="evr")
    return w[::-1], _fix_signs(V[:, ::-1])


def _certified_subspace(apply, Q: np.ndarray, trace: float, max_steps: int,
                        tol: float, GQ: np.ndarray | None = None) -> np.ndarray | None:
    """Leading ``r = Q.shape[1]`` eigenvectors of a symmetric PSD ``G`` from a close start.

    ``apply(Q)`` returns ``G @ Q`` (float64); ``trace`` is ``trace(G)``. Subspace iteration with
    Rayleigh-Ritz from the orthonormal ``Q``, in float64: each step costs one ``apply`` on r
    columns. After step k, with Ritz values ``theta_1 >= ... >= theta_r`` and Ritz vectors U,
    ``mu = trace - sum(theta)`` bounds lambda_{r+1} from above (Ky Fan: the r largest
    eigenvalues sum to at least ``sum(theta)``, and G is PSD) and ``theta_r <= lambda_r``
    (interlacing), so the Davis-Kahan sin-theta theorem gives
    ``s = ||G U - U Theta||_F / (theta_r - mu) >= ||sin Theta(U, E)||_F``, E the exact leading
    subspace. One power step shrinks tangents by ``lambda_{r+1} / lambda_r <= mu / theta_r``,
    so ``t = (mu / theta_r) s / sqrt(1 - s^2)`` bounds the angles of ``span(G U)`` (available as
    ``Z C``, no extra product). Returns U when ``s <= tol``, an orthonormal basis of ``G U``
    (QR, columns in Ritz order) when ``t <= tol``, and None when neither holds after
    ``max_steps`` further steps (the caller then forms G and runs LAPACK). The bounds hold up
    to the rounding of the products. ``GQ``, when given, is ``G @ Q`` for the start ``Q``
    (computed by the caller together with another product).
    """
    Q = np.asarray(Q, dtype=np.float64)
    for step in range(max_steps + 1):
        Z = GQ if step == 0 and GQ is not None else apply(Q)
        H = Q.T @ Z
        theta, C = np.linalg.eigh(0.5 * (H + H.T))
        theta, C = theta[::-1], C[:, ::-1]
        U, GU = Q @ C, Z @ C
        mu = max(trace - float(np.sum(theta)), 0.0)
        gap = theta[-1] - mu
        if gap > 0:
            s = float(np.linalg.norm(GU - U * theta)) / gap
            if s <= tol:
                return _fix_signs(U)
            if s < 1 and mu / theta[-1] * s / math.sqrt(1.0 - s * s) <= tol:
                return _fix_signs(np.linalg.qr(GU)[0])
        if step < max_steps:
            Q = np.linalg.qr(GU)[0]
    return None


def _eig_warm(G: np.ndarray, U0: np.ndarray, max_steps: int = 3) -> np.ndarray | None:
    """Leading ``U0.shape[1]`` eigenvectors of the explicit symmetric PSD ``G`` (a HOOI Gram
    matrix) from the previous factor ``U0``: :func:`_certified_subspace` with ``G @ Q``
    products, O(I^2 r) per step instead of the O(I^3) of a full eigensolver, certified to
    1e-10; None when that fails (the caller then runs LAPACK)."""
    G = np.asarray(G, dtype=np.float64)
    return _certified_subspace(lambda Q: G @ Q, U0, float(np.trace(G)), max_steps, 1e-10)


def _eig_top(G: np.ndarray, r: int, tol: float) -> np.ndarray:
    """Leading ``r`` eigenvectors of the explicit symmetric PSD ``G`` (I x I), certified to
    ``tol`` (``||sin Theta||_F`` to the exact subspace, :func:`_certified_subspace`) by up to
    five steps of subspace iteration from a fixed Gaussian start, O(I^2 r) each; LAPACK
    (:func:`_eig_desc`, O(I^3)) when the spectrum has no gap that makes this converge, or when
    ``I < 64`` (LAPACK is as fast there). HOSVD's Gram matrices of noisy low-rank tensors have
    a wide gap after ``r``: two or three steps, several times cheaper than ``syevr``."""
    dim = G.shape[0]
    if dim >= 64 and r < dim:
        G = np.asarray(G, dtype=np.float64)
        Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((dim, r)))[0]
        V = _certified_subspace(lambda Q: G @ Q, Q0, float(np.trace(G)), 4, tol)
        if V is not None:
            return V
    return _eig_desc(G, r)[1][:, :r]


def _select_rank(eigvals: np.ndarray, budget: float) -> int:
    """Smallest rank whose discarded eigenvalues sum to at most ``budget`` (at least 1)."""
    lam = np.maximum(eigvals, 0.0)
    tail = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # tail[r] = sum(lam[r:])
    ok = np.nonzero(tail <= budget)[0]
    return max(1, int(ok[0])) if ok.size else lam.size


def _layout(shape, m: int) -> tuple[float, float, float]:
    """(L, R, numel) of ``shape`` seen around mode m as an (L, I_m, R) array."""
    L = float(math.prod(shape[:m]))
    R = float(math.prod(shape[m + 1:]))
    return L, R, L * shape[m] * R


def _gathers(L: float, R: float) -> bool:
    """Whether the BLAS paths of the C++ kernels gather slabs (see ``ttm`` in C++)."""
    return R > 1 and L > 1 and not (R >= 64 and L <= 16)


def _ttm_cost(shape, m: int, J: int) -> float:
    """Model of the time of ``_ttm`` along mode m (size I -> J) of a tensor of ``shape``, in
    flop units: 2 J flops per input entry, 24 per entry read or written, and 64 more per entry
    when BLAS runs on gathered slabs (J > 32 output rows, narrow trailing size 1 < R < 64
    with many slabs; geoml's kernel for J <= 32 packs cache-sized blocks at little cost; see
    ``ttm`` in C++). Fitted to single-core timings on AVX2 (Zen)
    cores, float32 and float64, like the models below."""
    L, R, size = _layout(shape, m)
    out = size / max(shape[m], 1) * J
    gathered = _gathers(L, R) and J > 32
    return 2.0 * J * size + (24.0 + (64.0 if gathered else 0.0)) * (size + out)


def _gram_cost(shape, m: int) -> float:
    """Model of ``_gram`` (I_m flops per entry at BLAS speed: geoml's kernel up to I_m = 512,
    SYRK with gathered slabs beyond) in the same units."""
    L, R, size = _layout(shape, m)
    gathered = shape[m] > 512 and _gathers(L, R)
    return size * (shape[m] + 24.0 + (64.0 if gathered else 0.0))


def _apply_cost(shape, m: int, r: int) -> float:
    """Model of ``_gram_apply`` on r columns (geoml's SIMD loops, X read once), same units."""
    return _layout(shape, m)[2] * (4.0 * r + 24.0)


def _sketch_cost(shape, m: int, s: int) -> float:
    """Model of a mode-m sketch ``X_(m) W`` with s columns (BLAS, at a quarter of its peak on
    such skinny shapes) in the same units."""
    L, R, size = _layout(shape, m)
    return size * (4.0 * s + 24.0 + (64.0 if _gathers(L, R) else 0.0))


def _contract_all(X: np.ndarray, mats: dict[int, np.ndarray], transposed: bool,
                  nj: int) -> np.ndarray:
    """Apply ``X x_m M_m^T`` (transposed) or ``X x_m M_m`` for all m in ``mats``.

    The order of the products is the cheapest by the model of :func:`_ttm_cost` (all orders
    for up to 6 modes; beyond, greedily by the largest shrink or smallest growth).
    """
    def new_size(m):
        return mats[m].shape[1] if transposed else mats[m].shape[0]

    if len(mats) <= 6:
        def cost(order):
            shape, total = list(X.shape), 0.0
            for m in order:
                total += _ttm_cost(shape, m, new_size(m))
                shape[m] = new_size(m)
            return total

        todo = min(permutations(mats), key=cost)
    else:
        todo = sorted(mats, key=lambda m: new_size(m) / max(X.shape[m], 1))
    for m in todo:
        X = _ttm(X, m, mats[m], transposed, nj)
    return X


def _st_step_cost(shape, m: int, r: int) -> float:
    """Modelled time of one exact ST-HOSVD step on mode m: Gram matrix + product to rank r."""
    return _gram_cost(shape, m) + _ttm_cost(shape, m, r)


def _sketch_cols(I: int, r: int, rest: int, p: int) -> int:
    return min(r + p, I, rest)


def _rand_step(shape, m: int, r: int, p: int, q: int) -> tuple[bool, float]:
    """(use a sketch?, modelled time) of one randomized step on mode m: the sketch, q power
    iterations (a product and a sketch each), the final product to s columns, the exact step
    on its small result and the Gaussian draws; the sketch is used only when that beats the
    exact step."""
    I = shape[m]
    rest = math.prod(shape) // max(I, 1)
    s = _sketch_cols(I, r, rest, p)
    exact = _st_step_cost(shape, m, r)
    if s >= I or r >= rest:
        return False, exact
    small = list(shape)
    small[m] = s
    sketch = ((q + 1) * (_sketch_cost(shape, m, s) + _ttm_cost(shape, m, s))
              + _st_step_cost(tuple(small), m, r) + 60.0 * rest * s)
    return (True, sketch) if sketch < exact else (False, exact)


def _mode_order(shape, ranks: dict[int, int] | None, modes: list[int], step_cost=None
                ) -> list[int]:
    """Order in which (ST-)HOSVD processes ``modes``: the cheapest by a time model.

    ``step_cost(shape, m, r)`` is the modelled time of processing mode m of a tensor of
    ``shape`` to rank r (default: exact ST-HOSVD step); mode m then has size r.
    All orders are tried for up to 6 modes; beyond that (or when ranks are unknown) modes
    go by increasing size, as in Vannieuwenhoven et al.
    """
    if ranks is None or len(modes) > 6:
        return sorted(modes, key=lambda m: shape[m])
    step_cost = step_cost or _st_step_cost

    def cost(order):
        cur, total = list(shape), 0.0
        for m in order:
            total += step_cost(tuple(cur), m, ranks[m])
            cur[m] = ranks[m]
        return total

    return list(min(permutations(modes), key=cost))


# ---------------------------------------------------------------- randomized SVD

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
    return getattr(_core, "ts_gram_" + _sfx(Y.dtype))(np.ascontiguousarray(Y), nj)


def _tall_matmul(Y: np.ndarray, M: np.ndarray, nj: int) -> np.ndarray:
    """``Y @ M`` for tall ``Y`` and small ``M``, in Y's dtype."""
    M = np.ascontiguousarray(M, dtype=Y.dtype)
    if Y.shape[0] * Y.shape[1] < 2**16:
        return Y @ M
    return getattr(_core, "ts_matmul_" + _sfx(Y.dtype))(np.ascontiguousarray(Y), M, nj)


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
    for p in range(2):
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
        kind = A.dtype.kind
        if kind not in "fiub":
            raise TypeError(f"A must hold real numbers; got dtype {A.dtype}")
        dtype = A.dtype if A.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        C = sp.csr_matrix(A, dtype=dtype)  # copies only if needed
        if not C.has_canonical_format:
            C = C.copy()
            C.sum_duplicates()
        if not np.isfinite(C.data).all():
            raise ValueError("A contains NaN or infinity")
        m, n = C.shape
        itype = np.int64 if C.indptr.dtype == np.int64 or C.indices.dtype == np.int64 else np.int32
        data = np.ascontiguousarray(C.data)
        ind = np.ascontiguousarray(C.indices, dtype=itype)
        ptr = np.ascontiguousarray(C.indptr, dtype=itype)
        fn = getattr(_core, f"csr_matmat_{_sfx(dtype)}_{'i64' if itype == np.int64 else 'i32'}")
        state = {}

        def matmat(X):
            return fn(data, ind, ptr, n, np.ascontiguousarray(X, dtype=dtype), False, n_jobs)

        def rmatmat(X):
            X = np.ascontiguousarray(X, dtype=dtype)
            threads = _core.max_threads() if n_jobs in (0, -1) else n_jobs
            if n * X.shape[1] * dtype.itemsize * max(threads - 1, 0) <= _SCATTER_BYTES:
                return fn(data, ind, ptr, n, X, True, n_jobs)  # private buffers are small
            if "T" not in state:  # else transpose once and run row-parallel
                T = C.T.tocsr()
                state["T"] = (np.ascontiguousarray(T.data),
                              np.ascontiguousarray(T.indices, dtype=itype),
                              np.ascontiguousarray(T.indptr, dtype=itype))
            d, i, p = state["T"]
            return fn(d, i, p, m, X, False, n_jobs)

        return (m, n), dtype, matmat, rmatmat, _sumsq(data, n_jobs)
    reject_gpu(A, "A", "randomized_svd")
    A = as_float_array(A, "A")

    def matmat(X):
        return A @ X

    def rmatmat(X):
        return A.T @ X

    return A.shape, A.dtype, matmat, rmatmat, _sumsq(A, n_jobs)


def randomized_svd(A, k: int, *, n_oversamples: int = 10, n_iter="auto", random_state=None,
                   n_jobs: int | None = None) -> SVDResult:
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
        OpenMP threads of the sparse products. Dense products run in SciPy/NumPy's BLAS, whose
        threads are set by that library (e.g. with threadpoolctl).

    Returns
    -------
    SVDResult
        ``U`` (m, k), ``s`` (k,) decreasing, ``Vt`` (k, n), in the input's float dtype; each
        row of ``Vt`` has its largest-magnitude entry positive (``U`` follows).

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
    k = check_int(k, "k", low=1, high=min(m, n), hint=f" (A has shape {(m, n)})")
    p = check_int(n_oversamples, "n_oversamples", low=0)
    auto = isinstance(n_iter, str)
    if auto:
        if n_iter != "auto":
            raise ValueError(f"n_iter={n_iter!r}; use 'auto' or a non-negative integer")
        max_iter = 7 if k < 0.1 * min(m, n) else 4
    else:
        max_iter = check_int(n_iter, "n_iter", low=0)
    rng = _rng(random_state)
    ell = min(k + p, m, n)

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

class TuckerTensor:
    """A tensor in Tucker form ``core x_0 U_0 x_1 U_1 ... x_{N-1} U_{N-1}``.

    Unpacks as ``core, factors = tt`` (like TensorLy's ``TuckerTensor``).

    Attributes
    ----------
    core : ndarray of shape (r_0, ..., r_{N-1})
    factors : list of N ndarrays, factor n of shape (I_n, r_n) with orthonormal columns
    converged : bool
        False when HOOI stopped at ``max_iter`` before meeting ``tol``; True otherwise.
    n_iter : int
        HOOI sweeps done (0 for the one-pass methods).
    """

    __slots__ = ("core", "factors", "converged", "n_iter")

    def __init__(self, core: np.ndarray, factors: list[np.ndarray], *, converged: bool = True,
                 n_iter: int = 0):
        self.core = core
        self.factors = list(factors)
        self.converged = bool(converged)
        self.n_iter = int(n_iter)

    def __iter__(self):
        return iter((self.core, self.factors))

    def __repr__(self) -> str:
        return (f"TuckerTensor(shape={self.shape}, rank={self.rank}, "
                f"compression_ratio={self.compression_ratio:.4g})")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the full tensor, ``(I_0, ..., I_{N-1})``."""
        return tuple(U.shape[0] for U in self.factors)

    @property
    def rank(self) -> tuple[int, ...]:
        """Multilinear rank, the core's shape."""
        return tuple(self.core.shape)

    @property
    def compression_ratio(self) -> float:
        """Entries of the full tensor / entries stored (core + factors); > 1 means smaller."""
        stored = self.core.size + sum(U.size for U in self.factors)
        return float(np.prod(self.shape)) / max(stored, 1)

    def to_tensor(self, n_jobs: int | None = None) -> np.ndarray:
        """The full tensor, shape ``shape``, same dtype as the core. O(prod(I) * max(r))."""
        nj = check_n_jobs(n_jobs)
        return _contract_all(np.ascontiguousarray(self.core), dict(enumerate(self.factors)),
                             False, nj)

    def rel_error(self, T, n_jobs: int | None = None) -> float:
        """``||T - to_tensor()||_F / ||T||_F`` computed explicitly (0 if ``T`` is all zeros).

        Works through blocks of mode-0 slices, reconstructed and compared in float64, so memory
        stays O(block) beyond ``T`` itself.
        """
        nj = check_n_jobs(n_jobs)
        T = np.asarray(T)
        if T.shape != self.shape:
            raise ValueError(f"T has shape {T.shape}, the Tucker tensor {self.shape}")
        core = np.ascontiguousarray(self.core, dtype=np.float64)
        rest = {n: np.asarray(U, dtype=np.float64) for n, U in enumerate(self.factors) if n > 0}
        U0 = np.asarray(self.factors[0], dtype=np.float64)
        step = max(1, _BLOCK_ENTRIES // max(T[0].size, 1))
        nt = nd = 0.0
        for i0 in range(0, T.shape[0], step):
            blk = _contract_all(_ttm(core, 0, U0[i0:i0 + step], False, nj), rest, False, nj)
            t = np.ascontiguousarray(T[i0:i0 + step], dtype=np.float64)
            nt += _sumsq(t, nj)
            nd += _sumsq(np.subtract(t, blk), nj)
        return float(np.sqrt(nd / nt)) if nt > 0 else float(np.sqrt(nd))


def _check_tensor(T, name="T", nj: int = 0) -> tuple[np.ndarray, float]:
    """-> (C-contiguous float32/float64 tensor with ndim >= 2, its squared norm in float64).

    NaN/inf are detected through the squared norm (one pass that is needed anyway).
    """
    reject_gpu(T, name, "tucker")
    arr = T if isinstance(T, np.ndarray) else np.asarray(T)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions; got shape {arr.shape}")
    arr = as_float_array(arr, name, ndim=arr.ndim, finite=False)
    norm2 = _sumsq(arr, nj)
    if not np.isfinite(norm2):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
        raise ValueError(f"the norm of {name} overflows float64; rescale it")
    return arr, norm2


def _check_ranks(ranks, shape, modes: list[int]) -> tuple[dict[int, int] | None, float | None]:
    """-> ({mode: rank}, None) for integer ranks, (None, eps) for a target relative error."""
    if isinstance(ranks, numbers.Real) and not isinstance(ranks, (numbers.Integral, bool)):
        eps = float(ranks)
        if not (0.0 < eps < 1.0):
            raise ValueError(f"ranks={ranks!r}: a float is a target relative error and must "
                             "lie in (0, 1); pass integers for fixed ranks")
        return None, eps
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        ranks = [ranks] * len(modes)
    if isinstance(ranks, (str, bytes)):
        raise TypeError(f"ranks must be an int, a sequence of ints or a float in (0, 1); "
                        f"got {ranks!r}")
    try:
        ranks = list(ranks)
    except TypeError:
        raise TypeError(f"ranks must be an int, a sequence of ints or a float in (0, 1); "
                        f"got {ranks!r}") from None
    if len(ranks) != len(modes):
        raise ValueError(f"ranks has {len(ranks)} entries but {len(modes)} modes are decomposed "
                         f"(tensor shape {tuple(shape)})")
    out = {}
    for m, r in zip(modes, ranks):
        out[m] = check_int(r, f"rank of mode {m}", low=1, high=shape[m],
                           hint=f" (mode {m} has size {shape[m]}; a rank cannot exceed it)")
    return out, None


# Certified accuracy (||sin Theta||_F to the exact leading subspace) at which HOSVD accepts a
# factor from a Gram-free refinement, and of the eigenvectors of the explicit Gram matrices in
# (ST-)HOSVD (`_eig_top`); float32 data (and its exact-Gram HOSVD) is no finer.
_HOSVD_TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-5}


def _hosvd(T, ranks, eps, modes, nj, normT2):
    """Truncated HOSVD: factor n spans the leading eigenvectors of T's mode-n Gram matrix.

    With a target error (``eps``) every Gram matrix is formed (rank selection needs all its
    eigenvalues). With integer ranks, the modes are visited in ST-HOSVD order: the first
    factor comes from T's Gram matrix; every later one starts from the ST-HOSVD factor (the
    Gram matrix of T already projected on the earlier factors, which differs from T's by the
    PSD Gram matrix of the discarded part) and is refined by one product with T's Gram matrix
    (``_gram_apply``, 4 r flops per entry against I_n for forming it), two if the time model
    says they cost under a third of the Gram matrix, accepted only when
    :func:`_certified_subspace` certifies it to ``_HOSVD_TOL``; otherwise (flat spectrum,
    no gap) T's Gram matrix is formed after all. The refinement is skipped where the time
    model says one product costs over half as much as the Gram matrix. When the last two
    modes are refined last and their slabs are wide (>= 64) and cache-sized, their first
    products come from one pass over T (``_gram_apply_pair``; the start of the last mode is
    then the ST-HOSVD factor from the other's unrefined start). The leading
    eigenvectors of the explicit Gram matrices (the first mode's, the starts, the fallbacks)
    come from :func:`_eig_top`, certified to the same tolerance.
    """
    if eps is not None:
        budget = eps * eps * normT2 / len(modes)
        factors = {}
        for n in modes:
            lam, V = _eig_desc(_gram(T, n, nj), None)
            factors[n] = np.ascontiguousarray(V[:, :_select_rank(lam, budget)], dtype=T.dtype)
        return _contract_all(T, factors, True, nj), factors, None
    tol = _HOSVD_TOL[T.dtype]
    order = _mode_order(T.shape, ranks, modes)
    # steps such that the products, plus the Gram matrix if they fail, cost < 1.5 Gram
    steps = {n: int(_gram_cost(T.shape, n) // max(_apply_cost(T.shape, n, ranks[n]), 1.0)) - 1
             for n in order}
    N = T.ndim
    # the last two modes refined last, both with wide, cache-sized slabs: one pass for both
    pair = (len(order) > 2 and set(order[-2:]) == {N - 2, N - 1}
            and min(steps[N - 2], steps[N - 1]) >= 1 and T.shape[-1] >= 64
            and T.shape[-2] * T.shape[-1] * T.itemsize <= 1 << 19)
    Y, factors, starts, GQ = T, {}, {}, {}
    for n in order:
        r = ranks[n]
        V = None
        if Y is not T and steps[n] >= 1:
            start = starts.pop(n, None)
            if start is None:
                start = _eig_top(_gram(Y, n, nj), r, tol)
                if pair and n == order[-2]:  # ST-HOSVD start of the other, then both products
                    m = order[-1]
                    starts[m] = _eig_top(_gram(_ttm(Y, n, start, True, nj), m, nj), ranks[m],
                                         tol)
                    U1, U2 = (start, starts[m]) if n == N - 2 else (starts[m], start)
                    GQ = dict(zip((N - 2, N - 1), _gram_apply_pair(T, U1, U2, nj)))
            V = _certified_subspace(lambda Q: _gram_apply(T, n, Q, nj), start, normT2,
                                    min(steps[n], 2) - 1, tol, GQ.pop(n, None))
        if V is None:
            V = _eig_top(_gram(T, n, nj), r, tol)
        factors[n] = np.ascontiguousarray(V, dtype=T.dtype)
        Y = _ttm(Y, n, factors[n], True, nj)
    return Y, factors, None


def _st_hosvd(T, ranks, eps, modes, nj, normT2):
    budget = None if eps is None else eps * eps * normT2 / len(modes)
    Y, factors, order, inter = T, {}, _mode_order(T.shape, ranks, modes), []
    for n in order:
        inter.append(Y)
        G = _gram(Y, n, nj)
        if eps is None:
            V = _eig_top(G, ranks[n], _HOSVD_TOL[T.dtype])
        else:
            lam, V = _eig_desc(G, None)
            V = V[:, :_select_rank(lam, budget)]
        factors[n] = np.ascontiguousarray(V, dtype=T.dtype)
        Y = _ttm(Y, n, factors[n], True, nj)
    return Y, factors, (order, inter)


def _randomized(T, ranks, modes, nj, rng, n_oversamples, n_power_iter):
    """Randomized sequentially truncated HOSVD (Minster, Saibaba & Kilmer 2020, R-STHOSVD).

    Each mode's subspace comes from a Gaussian sketch of the current (already shrunk) tensor,
    refined by power iterations; a mode where sketching would cost more than the exact step
    (small I_n compared with r_n + n_oversamples) takes the exact ST-HOSVD step instead.
    """
    Y, factors = T, {}
    sketch = getattr(_core, "mode_sketch_" + _sfx(T.dtype))
    p, q = n_oversamples, n_power_iter

    def step_cost(shape, m, r):
        return _rand_step(shape, m, r, p, q)[1]

    order, inter = _mode_order(T.shape, ranks, modes, step_cost), []
    for n in order:
        inter.append(Y)
        In, r = Y.shape[n], ranks[n]
        rest = Y.size // In
        if not _rand_step(Y.shape, n, r, p, q)[0]:
            factors[n] = np.ascontiguousarray(_eig_top(_gram(Y, n, nj), r, _HOSVD_TOL[T.dtype]),
                                              dtype=T.dtype)
            Y = _ttm(Y, n, factors[n], True, nj)
            continue
        s = _sketch_cols(In, r, rest, p)
        W = rng.standard_normal((rest, s), dtype=np.float32)  # float32 draws are faster
        Q = _orth(sketch(Y, n, W.astype(T.dtype, copy=False), nj), nj)[0]
        for _ in range(q):
            B = _ttm(Y, n, Q, True, nj)  # Y x_n Q^T; its mode-n unfolding is Q^T Y_(n)
            Bt = np.ascontiguousarray(np.moveaxis(B, n, -1).reshape(rest, s))
            Q = _orth(sketch(Y, n, Bt, nj), nj)[0]  # Y_(n) Y_(n)^T Q
        B = _ttm(Y, n, Q, True, nj)
        _, V = _eig_desc(_gram(B, n, nj), r)
        U = Q @ V[:, :r]
        flip = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(r)])  # sign convention
        flip[flip == 0] = 1
        Vr = np.ascontiguousarray(V[:, :r] * flip, dtype=T.dtype)
        factors[n] = np.ascontiguousarray(U * flip, dtype=T.dtype)
        Y = _ttm(B, n, Vr, True, nj)
    return Y, factors, (order, inter)


def _hooi(T, factors, core, plan, modes, nj, normT2, max_iter, tol):
    """Higher-order orthogonal iteration from ``factors``; returns core, factors, conv, sweeps.

    A sweep updates every mode once; mode n's factor is the leading left singular subspace
    of ``(T x_{m != n} U_m^T)_(n)``, from that small tensor's mode-n Gram matrix. ``core``
    (or None) is the initial core: its error is the reference for the first sweep.

    Sweeps are arranged so the full tensor is read as few times as possible. With ``plan =
    (order, inter)`` from a sequentially truncated start (``inter[j]`` = the tensor before
    mode ``order[j]`` was truncated), the first sweep runs in reverse ``order``: the update of
    ``order[j]`` needs ``inter[j]`` contracted with the modes updated since, so only the last
    update reads ``T``. Later sweeps share ``T x_{m0} U_{m0}^T`` between all modes after the
    first one ``m0`` (the mode whose product with ``T`` is cheapest): two reads of ``T`` per
    sweep.
    """
    factors = dict(factors)
    ranks = {n: factors[n].shape[1] for n in modes}
    normT = np.sqrt(normT2)

    def rel_err(c):
        return np.sqrt(max(normT2 - _sumsq(c, nj), 0.0)) / normT if normT > 0 else 0.0

    def update(Y, n):
        G = _gram(Y, n, nj)
        V = _eig_warm(G, factors[n])  # the previous factor is a close start
        if V is None:
            V = _eig_desc(G, ranks[n])[1]
        factors[n] = np.ascontiguousarray(V[:, :ranks[n]], dtype=T.dtype)

    err_prev = None if core is None else rel_err(core)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        if it == 1 and plan is not None:
            order, inter = plan
            for j in range(len(order) - 1, -1, -1):
                Y = _contract_all(inter[j], {m: factors[m] for m in order[j + 1:]}, True, nj)
                update(Y, order[j])
            last = order[0]
        else:
            first = min(modes, key=lambda m: _ttm_cost(T.shape, m, ranks[m]))
            Z = T
            sweep = [first] + [m for m in modes if m != first]
            for idx, n in enumerate(sweep):
                others = {m: factors[m] for m in modes if m != n and (idx == 0 or m != first)}
                Y = _contract_all(Z, others, True, nj)
                update(Y, n)
                if idx == 0 and len(modes) > 1:
                    Z = _ttm(T, n, factors[n], True, nj)
            last = sweep[-1]
        core = _ttm(Y, last, factors[last], True, nj)
        err = rel_err(core)
        if err_prev is not None and err_prev - err < tol:  # also stops on a rounding increase
            converged = True
            break
        err_prev = err
    return core, factors, converged, it


def _default_tol(dtype) -> float:
    return 1e-8 if dtype == np.float64 else 1e-5


def _decompose(T, normT2, ranks, modes, **kw):
    """Shared driver of :func:`tucker` and :class:`Tucker`: factors for ``modes`` only. The
    tensor kernels are OpenMP; BLAS/LAPACK calls between them run on one thread."""
    with single_threaded_blas():
        return _decompose_run(T, normT2, ranks, modes, **kw)


def _decompose_run(T, normT2, ranks, modes, *, method, init, max_iter, tol, n_oversamples,
                   n_power_iter, random_state, nj):
    if method not in _METHODS:
        raise ValueError(f"method={method!r}; choose one of {list(_METHODS)}")
    rk, eps = _check_ranks(ranks, T.shape, modes)
    if eps is not None and method == "randomized":
        raise ValueError("a target relative error (float ranks) is supported by 'st_hosvd', "
                         "'hosvd' and 'hooi'; give integer ranks to method='randomized'")
    if init is not None and method != "hooi":
        raise ValueError(f"init only applies to method='hooi' (got method={method!r})")
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = _default_tol(T.dtype) if tol is None else float(tol)
    if not tol >= 0:
        raise ValueError(f"tol must be a non-negative number; got {tol}")
    n_oversamples = check_int(n_oversamples, "n_oversamples", low=0)
    n_power_iter = check_int(n_power_iter, "n_power_iter", low=0)
    rng = _rng(random_state)

    start = method if method != "hooi" else ("st_hosvd" if init is None else init)
    if isinstance(start, str):
        if start not in ("hosvd", "st_hosvd", "randomized"):
            raise ValueError(f"init={init!r}; choose 'st_hosvd', 'hosvd', 'randomized' or a "
                             "list of factor matrices")
        if start == "randomized" and eps is not None:
            raise ValueError("init='randomized' needs integer ranks")
        if start == "hosvd":
            core, factors, plan = _hosvd(T, rk, eps, modes, nj, normT2)
        elif start == "st_hosvd":
            core, factors, plan = _st_hosvd(T, rk, eps, modes, nj, normT2)
        else:
            core, factors, plan = _randomized(T, rk, modes, nj, rng, n_oversamples,
                                              n_power_iter)
    else:
        if eps is not None:
            raise ValueError("explicit init factors need integer ranks")
        init = list(init)
        if len(init) != len(modes):
            raise ValueError(f"init has {len(init)} factor matrices; {len(modes)} are needed")
        factors = {}
        for n, U in zip(modes, init):
            U = as_float_array(U, f"init[{n}]", dtype=T.dtype)
            if U.shape != (T.shape[n], rk[n]):
                raise ValueError(f"init[{n}] has shape {U.shape}; expected {(T.shape[n], rk[n])}")
            factors[n] = np.ascontiguousarray(_householder(U)[0], dtype=T.dtype)
        core, plan = None, None
    converged, sweeps = True, 0
    if method == "hooi":
        core, factors, converged, sweeps = _hooi(T, factors, core, plan, modes, nj, normT2,
                                                 max_iter, tol)
        if not converged:
            warnings.warn(f"HOOI did not converge in max_iter={max_iter} sweeps (tol={tol:g}); "
                          "raise max_iter or tol", RuntimeWarning, stacklevel=3)
    return core, factors, converged, sweeps


def tucker(T, ranks, *, method: str = "hooi", init=None, max_iter: int = 100,
           tol: float | None = None, n_oversamples: int = 5, n_power_iter: int = 1,
           random_state=None, n_jobs: int | None = None) -> TuckerTensor:
    """Tucker decomposition ``T ~= core x_0 U_0 x_1 U_1 ... x_{N-1} U_{N-1}``.

    Parameters
    ----------
    T : array-like of shape (I_0, ..., I_{N-1}), N >= 2
        Dense tensor; float32 and float64 are kept (other numbers become float64).
        NaN/inf raise ``ValueError``.
    ranks : int, sequence of N ints, or float in (0, 1)
        Multilinear rank ``(r_0, ..., r_{N-1})`` with ``1 <= r_n <= I_n`` (an int is used for
        every mode). A float ``eps`` is a target relative error instead: ranks are chosen
        mode by mode so that ``||T - T_hat||_F <= eps ||T||_F`` (Vannieuwenhoven, Vandebril &
        Meerbergen 2012): each mode may discard eigenvalues of its Gram matrix summing to
        ``eps^2 ||T||^2 / N``, and the errors of the modes add up. With ``"st_hosvd"`` the
        Gram matrices are those of the already-truncated tensor; ``"hooi"`` starts from that
        ST-HOSVD and can only lower the error; ``"randomized"`` needs integer ranks.
    method : {"hooi", "hosvd", "st_hosvd", "randomized"}, default "hooi"
        ``"hosvd"``: each factor = leading eigenvectors of the full tensor's mode-n Gram
        matrix. ``"st_hosvd"``: sequentially truncated HOSVD, each factor from the already
        shrunk tensor (cheaper, usually as accurate). ``"randomized"``: ST-HOSVD with each
        mode's subspace from a Gaussian sketch ``Y_(n) Omega`` of ``r_n + n_oversamples``
        columns and ``n_power_iter`` power iterations (Minster, Saibaba & Kilmer 2020).
        A mode where the sketch's passes over the tensor would cost more than the exact
        step (Gram matrix + product; e.g. every mode of a 200^3 tensor at rank 10) takes the
        exact step. ``"hooi"``: higher-order orthogonal iteration started from ``init``,
        stopped when the fit ``1 - ||T - T_hat|| / ||T||`` changes by less than ``tol``
        between sweeps (one sweep when the start is already converged).
        Modes are processed in the order of least work (a time model of the kernels).
    init : {"st_hosvd", "hosvd", "randomized"} or sequence of N arrays, optional
        Start of HOOI (default ``"st_hosvd"``); arrays of shape (I_n, r_n) are
        orthonormalised. Only for ``method="hooi"``.
    max_iter : int, default 100
        Maximum HOOI sweeps. Stopping there emits a ``RuntimeWarning`` and sets
        ``converged=False``.
    tol : float, optional
        HOOI stopping threshold on the change of the fit; default 1e-8 (float64) or 1e-5
        (float32).
    n_oversamples, n_power_iter : int, default 5 and 1
        Sketch oversampling and power iterations of ``"randomized"`` (also as HOOI's init).
    random_state : None, int or numpy.random.Generator
        Seed of the randomized sketches.
    n_jobs : int, optional
        OpenMP threads of the tensor kernels (mode products, Gram matrices, sketches). The
        remaining BLAS/LAPACK calls (SYRK of modes over 512, small eigenproblems) run on one
        thread during the call when threadpoolctl is installed: an idle OpenBLAS pool spinning
        next to the OpenMP threads made HOOI on a 200^3 tensor 2x slower on 2 cores.

    Returns
    -------
    TuckerTensor
        ``core`` of shape (r_0, ..., r_{N-1}) and ``factors`` (I_n x r_n, orthonormal
        columns, each column's largest entry positive), in T's dtype; ``to_tensor()``,
        ``rel_error(T)``, ``compression_ratio``, and ``converged``/``n_iter`` for HOOI.

    References
    ----------
    L. De Lathauwer, B. De Moor, J. Vandewalle, "On the best rank-1 and rank-(R1,...,RN)
    approximation of higher-order tensors", SIAM J. Matrix Anal. Appl. 21 (2000).
    N. Vannieuwenhoven, R. Vandebril, K. Meerbergen, "A new truncation strategy for the higher-
    order singular value decomposition", SIAM J. Sci. Comput. 34 (2012).
    R. Minster, A. K. Saibaba, M. E. Kilmer, "Randomized algorithms for low-rank tensor
    decompositions in the Tucker format", SIAM J. Math. Data Sci. 2 (2020).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> G = rng.normal(size=(2, 3, 2))
    >>> U = [np.linalg.qr(rng.normal(size=(n, r)))[0] for n, r in [(10, 2), (8, 3), (6, 2)]]
    >>> T = np.einsum("abc,ia,jb,kc->ijk", G, *U)  # multilinear rank (2, 3, 2)
    >>> tt = geoml.tucker(T, (2, 3, 2))
    >>> tt.core.shape, [f.shape for f in tt.factors]
    ((2, 3, 2), [(10, 2), (8, 3), (6, 2)])
    >>> tt.rel_error(T) < 1e-12
    True
    >>> geoml.tucker(T, 1e-6, method="st_hosvd").rank
    (2, 3, 2)
    """
    nj = check_n_jobs(n_jobs)
    T, normT2 = _check_tensor(T, "T", nj)
    modes = list(range(T.ndim))
    core, factors, converged, sweeps = _decompose(
        T, normT2, ranks, modes, method=method, init=init, max_iter=max_iter, tol=tol,
        n_oversamples=n_oversamples, n_power_iter=n_power_iter, random_state=random_state,
        nj=nj)
    return TuckerTensor(core, [factors[n] for n in modes], converged=converged, n_iter=sweeps)


class Tucker:
    """Tucker compression of samples (scikit-learn-style estimator).

    The first axis of the data indexes samples and is not compressed; each sample is an
    (N-1)-way array (a matrix, a cube, ...). ``fit`` computes orthonormal factors
    ``U_1, ..., U_{N-1}`` for the sample modes (a partial Tucker decomposition, as TensorLy's
    ``partial_tucker`` over modes 1..N-1). ``transform`` projects samples, new ones included,
    onto these factors: ``Z = X x_1 U_1^T ... x_{N-1} U_{N-1}^T``, one small core of shape
    ``(r_1, ..., r_{N-1})`` per sample, the best approximation of each sample within the
    fitted subspaces. ``inverse_transform`` maps cores back: ``Z x_1 U_1 ... x_{N-1} U_{N-1}``.
    With 2-D data this is an uncentred PCA.

    Parameters
    ----------
    ranks : int, sequence of N-1 ints, or float in (0, 1)
        Ranks of the sample modes, or a target relative error (see :func:`tucker`).
    method, init, max_iter, tol, n_oversamples, n_power_iter, random_state, n_jobs
        As in :func:`tucker`.

    Attributes
    ----------
    factors_ : list of N-1 ndarrays, factor n of shape (I_n, r_n)
    ranks_ : tuple of int
    rel_error_ : float
        Relative reconstruction error on the training data.
    converged_ : bool
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.normal(size=(8, 2)), rng.normal(size=(6, 3))
    >>> X = np.einsum("ia,sab,jb->sij", A, rng.normal(size=(50, 2, 3)), B)  # 50 samples, 8 x 6
    >>> est = geoml.Tucker((2, 3)).fit(X)
    >>> Z = est.transform(X[:5])
    >>> Z.shape
    (5, 2, 3)
    >>> bool(np.allclose(est.inverse_transform(Z), X[:5]))
    True
    """

    def __init__(self, ranks, *, method: str = "hooi", init=None, max_iter: int = 100,
                 tol: float | None = None, n_oversamples: int = 5, n_power_iter: int = 1,
                 random_state=None, n_jobs: int | None = None):
        self.ranks = ranks
        self.method = method
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.n_oversamples = n_oversamples
        self.n_power_iter = n_power_iter
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y=None) -> "Tucker":
        """Fit factors to ``X`` of shape (n_samples, I_1, ..., I_{N-1})."""
        nj = check_n_jobs(self.n_jobs)
        X, normX2 = _check_tensor(X, "X", nj)
        modes = list(range(1, X.ndim))
        core, factors, converged, sweeps = _decompose(
            X, normX2, self.ranks, modes, method=self.method, init=self.init, max_iter=self.max_iter,
            tol=self.tol, n_oversamples=self.n_oversamples, n_power_iter=self.n_power_iter,
            random_state=self.random_state, nj=nj)
        self.factors_ = [factors[n] for n in modes]
        self.ranks_ = tuple(U.shape[1] for U in self.factors_)
        err2 = max(normX2 - _sumsq(core, nj), 0.0)
        self.rel_error_ = float(np.sqrt(err2 / normX2)) if normX2 > 0 else 0.0
        self.converged_ = converged
        self.n_iter_ = sweeps
        self._sample_shape = X.shape[1:]
        self._dtype = X.dtype
        return self

    def _check_fitted(self):
        if not hasattr(self, "factors_"):
            raise RuntimeError("this Tucker estimator is not fitted yet; call fit first")

    def transform(self, X) -> np.ndarray:
        """Project samples: (n_samples, I_1, ...) -> cores (n_samples, r_1, ..., r_{N-1})."""
        self._check_fitted()
        X = _check_tensor(X, "X")[0]
        if X.shape[1:] != self._sample_shape:
            raise ValueError(f"X has sample shape {X.shape[1:]}; the estimator was fitted on "
                             f"{self._sample_shape}")
        nj = check_n_jobs(self.n_jobs)
        return _contract_all(X, dict(enumerate(self.factors_, start=1)), True, nj)

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit, then transform ``X``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> np.ndarray:
        """Cores (n_samples, r_1, ..., r_{N-1}) -> reconstructed samples (n_samples, I_1, ...)."""
        self._check_fitted()
        Z = _check_tensor(Z, "Z")[0]
        if Z.shape[1:] != self.ranks_:
            raise ValueError(f"Z has core shape {Z.shape[1:]}; expected {self.ranks_}")
        nj = check_n_jobs(self.n_jobs)
        return _contract_all(Z, dict(enumerate(self.factors_, start=1)), False, nj)
