"""Heat-kernel actions exp(-t L) X by Chebyshev expansion (C++ kernel ``_core.heat_chebyshev``)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import ive

from .. import _core
from .._validation import as_float_array, check_n_jobs, check_tol, reject_gpu, user_stacklevel
from ..spectral._laplacian import _KINDS, _affinity_csr, _degrees, _normalised_shift
from ..spectral._laplacian import laplacian as _laplacian_matrix

# Chebyshev orders above this are refused (t * lmax / 2 of ~10^9 and more at tol = 1e-8):
# use a smaller t or fewer edges; the order grows like sqrt(t * lmax) for large t.
_MAX_ORDER = 200_000


def _order_bound(a: float) -> int:
    """An order past which the Chebyshev coefficients ``2 ive(k, a)`` of ``exp(-a (x + 1))``
    are negligible: ``60 sqrt(a) + 80``. For large ``a`` they fall like ``exp(-k^2 / (2 a))``
    (``k = 60 sqrt(a)``: ``e^-1800``), for ``k > a`` faster: the smallest target,
    ``sqrt(tiny)`` with a factor 10^3, is met at order 86 of 140 for ``a = 1``, 868 of 1,977
    for ``a = 1000``, 8,459 of 19,053 for ``a = 10^5``. (The bound was ``a + 60 sqrt(a) + 80``,
    ``a`` too large: the symmetric Laplacian at ``t = 10^6`` or the combinatorial one of a
    graph with weighted degrees of 5 x 10^4 at ``t = 10`` were refused as needing an order
    above 200,000 where a few thousand did; the orders of the calls it served are the
    same.)"""
    return int(60.0 * np.sqrt(a) + 80)


# From this many nodes the graph is renumbered in reverse Cuthill-McKee order first (the rows of
# the (n, m) block that the product gathers then stay in cache; see docs/design/diffusion.md).
_RCM_MIN_N = 2048
_RCM_MIN_BLOCK = 1 << 19  # (n * m entries: smaller blocks stay in cache in any order)


def _check_times(t) -> tuple[np.ndarray, bool]:
    """(times as a float64 array (n_t,), whether t was a scalar); ValueError/TypeError if not
    finite and > 0."""
    scalar = isinstance(t, numbers.Real) or (isinstance(t, np.ndarray) and t.ndim == 0)
    bad = TypeError(f"t must be a positive number or a sequence of them; got {t!r}")
    if isinstance(t, (bool, np.bool_, str, bytes)) or t is None:
        raise bad
    try:
        # numbers only: a sequence of bools, strings or None converted to float quietly
        # ([True, 2.0], ["1", 2]; None became NaN: "t contains NaN or infinity")
        raw = t if isinstance(t, np.ndarray) else np.asarray(t, dtype=object)
        if raw.dtype.kind not in "iuf" and not all(_is_real(v) for v in raw.ravel()):
            raise bad
        times = np.atleast_1d(raw.astype(np.float64))
    except (TypeError, ValueError):
        raise bad from None
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"t must be a number or a non-empty 1-D sequence; got shape {times.shape}")
    if not np.isfinite(times).all():
        raise ValueError("t contains NaN or infinity")
    if (times <= 0).any():
        raise ValueError(f"t must be > 0; got {float(times[times <= 0][0])!r}")
    return times, scalar


def _is_real(v) -> bool:
    """Whether ``v`` is a real number (not a bool): an element of a sequence of times."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _norm_shifts(A: np.ndarray, norms: np.ndarray) -> np.ndarray | None:
    """Per column ``j`` the power of two ``s_j`` that brings its largest magnitude into
    ``[2^-400, 2^400]`` (0 where it is there, or the column is 0): the squares of
    ``2^s_j A[:, j]`` then neither underflow nor overflow float64 (:func:`_col_norms`).
    Only the columns whose plain ``norms`` (0 after an underflow, inf after an overflow)
    lie outside that range are looked at. None when every ``s_j`` is 0 (ordinary data)."""
    cand = np.flatnonzero(~((norms >= 2.0**-400) & (norms <= 2.0**400)))
    if not cand.size:
        return None
    B = A[:, cand]
    cmax = np.maximum(B.max(axis=0), -B.min(axis=0)).astype(np.float64)
    out = (cmax > 0) & ((cmax < 2.0**-400) | (cmax > 2.0**400))
    if not out.any():
        return None
    shifts = np.zeros(A.shape[1], dtype=np.int64)
    shifts[cand[out]] = -np.frexp(cmax[out])[1]
    return shifts


def _col_norms(A: np.ndarray, shifts: np.ndarray | None = None) -> np.ndarray:
    """2-norms of the columns of an (n, m) block, in float64 without an (n, m) temporary;
    with ``shifts`` (:func:`_norm_shifts`) those of ``2^shifts[j] A[:, j]`` (exact): the
    columns with ``shifts[j] != 0`` are copied scaled."""
    if A.dtype == np.float64:
        norms = np.sqrt(np.einsum("ij,ij->j", A, A))
    else:
        s = np.zeros(A.shape[1])
        for i in range(0, A.shape[0], 65536):
            B = A[i : i + 65536].astype(np.float64)
            s += np.einsum("ij,ij->j", B, B)
        norms = np.sqrt(s)
    if shifts is not None:
        cols = np.flatnonzero(shifts)
        B = np.ldexp(A[:, cols].astype(np.float64), shifts[cols])
        norms[cols] = np.sqrt(np.einsum("ij,ij->j", B, B))
    return norms


def _chebyshev_coefficients(a: np.ndarray, target: float, factor: float):
    """Coefficients (n_t, K + 1) of exp(-a (x + 1)) = sum_k c_k T_k(x) on [-1, 1] for each
    a_j, truncated at the smallest K with factor * sum_{k > K} |c_k| <= target for every j
    (c_0 = ive(0, a), c_k = 2 (-1)^k ive(k, a), ive the scaled Bessel function
    I_k(a) e^{-a}). Returns (coef, K, bound: the largest truncation bound)."""
    amax = float(a.max())
    kmax = _order_bound(amax)
    capped = kmax > _MAX_ORDER
    kmax = min(kmax, _MAX_ORDER)
    k = np.arange(kmax + 1)
    C = ive(k[None, :], a[:, None])  # (n_t, kmax + 1)
    C[:, 1:] *= 2.0
    # tail[j, K] = sum_{k > K} |c_jk|
    tail = np.cumsum(C[:, ::-1], axis=1)[:, ::-1]
    tail = np.concatenate([tail[:, 1:], np.zeros((a.size, 1))], axis=1)
    if capped and not np.isfinite(C).all():  # (scipy's ive is NaN from a ~ 1.1e9 on)
        raise ValueError(
            f"t * lmax / 2 = {amax:.3g} needs a Chebyshev order above {_MAX_ORDER}; use a smaller t"
        )
    if capped:  # the terms past kmax, bounded by a geometric series: the ratio
        # I_{k+1}(a) / I_k(a) decreases with k, so every later ratio is below this one
        nxt = 2.0 * ive(kmax + 1, a)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(C[:, kmax] > 0, nxt / C[:, kmax], 0.0)
        tail += np.where(nxt > 0, nxt / (1.0 - r), 0.0)[:, None]
    ok = (factor * tail <= target).all(axis=0)
    if capped and not ok.any():
        raise ValueError(
            f"t * lmax / 2 = {amax:.3g} needs a Chebyshev order above {_MAX_ORDER}; use a smaller t"
        )
    K = int(np.argmax(ok)) if ok.any() else kmax
    C[:, 1::2] *= -1.0
    return np.ascontiguousarray(C[:, : K + 1]), K, float(factor * tail[:, K].max())


def _fixed_order_coefficients(a: np.ndarray, order: int) -> np.ndarray:
    """The coefficients (n_t, order + 1) of :func:`_chebyshev_coefficients` up to ``order``
    (heatgeo's ``compute_chebychev_coeff_all``: ``2 ive(k, -a)``, the first halved)."""
    k = np.arange(order + 1)
    C = ive(k[None, :], a[:, None])
    _check_bessel(C, float(a.max()))
    C[:, 1:] *= 2.0
    C[:, 1::2] *= -1.0
    return np.ascontiguousarray(C)


def _check_bessel(C: np.ndarray, a: float) -> None:
    """ValueError where scipy's ``ive`` gave NaN (from ``a = t lmax / 2`` ~ 1.07e9 on): the
    fixed-order series returned NaN heat values silently (``heat_geodesic_distances(W, 2e9,
    order=32)``: every distance NaN, no warning)."""
    if not np.isfinite(C).all():
        raise ValueError(
            f"t * lmax / 2 = {a:.3g} is beyond the Bessel function evaluation (about 1e9); "
            "use a smaller t"
        )


def _fixed_order_truncation(a: float, order: int) -> float:
    """``sum_{k > order} |c_k|`` of the series of ``exp(-a (x + 1))`` on ``[-1, 1]`` (``a = t
    lmax / 2``): the truncation of the order-``order`` heat kernel, relative to a column's
    norm."""
    kmax = max(order + 1, _order_bound(a))
    k = np.arange(order + 1, kmax + 1)
    c = ive(k, a)
    _check_bessel(c, a)
    return float(2.0 * c.sum())


def _largest_eigenvalue(L: sp.csr_matrix) -> float:
    """The largest eigenvalue of the symmetric normalised Laplacian ``L`` by ARPACK (heatgeo's
    ``eigsh(L, k=1)``), from a seeded start (the same value every call)."""
    from scipy.sparse.linalg import eigsh

    n = L.shape[0]
    if n <= 2:
        return float(np.linalg.eigvalsh(L.toarray()).max())
    v0 = np.random.default_rng(0).uniform(0.5, 1.5, n)
    return float(eigsh(L.astype(np.float64), k=1, which="LA", v0=v0, return_eigenvectors=False)[0])


def _symmetric_shifted(W) -> tuple[sp.csr_matrix, np.ndarray]:
    """(L_sym - I, d) in W's dtype with sorted indices, in one pass over W's entries: the
    off-diagonal ``-(s_i W_ij) s_j``, ``s = sqrt(1 / d)`` (the products of
    :func:`geoml.laplacian`), and ``-1`` on the diagonal of isolated nodes (``L_ii = 0``
    there); the Chebyshev map ``(2 / lmax) L - I`` with ``lmax = 2`` without the Laplacian's
    sparse products and sums."""
    Wc = _affinity_csr(W)  # validated, no diagonal
    n = Wc.shape[0]
    d = _degrees(Wc)
    iso = d == 0
    # degrees out of [2^-400, 2^400]: the same operator from W / 4^e (subnormal weights:
    # 1 / d overflowed to inf, and the "degrees overflow" error followed), as geoml.laplacian
    shift = _normalised_shift(d, "symmetric")
    ds = np.ldexp(d, -shift) if shift else d
    sc = np.sqrt(np.where(iso, 0.0, 1.0 / np.where(iso, 1.0, ds)))
    rows = np.repeat(np.arange(n), np.diff(Wc.indptr))
    w = Wc.data.astype(np.float64)
    data = sc[rows] * (np.ldexp(w, -shift) if shift else w)  # scaled first: exact
    data *= sc[Wc.indices]
    np.negative(data, out=data)
    S = sp.csr_matrix((data.astype(Wc.dtype), Wc.indices, Wc.indptr), shape=(n, n))
    if iso.any():
        S = sp.csr_matrix(S - sp.diags(iso.astype(Wc.dtype), format="csr"), dtype=Wc.dtype)
    S.sort_indices()
    return S, d


def _permute(A: sp.csr_matrix, perm: np.ndarray) -> sp.csr_matrix:
    """``A[perm][:, perm]``: the rows gathered, the column indices renumbered and sorted
    (no CSC round trip)."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size, dtype=perm.dtype)
    B = sp.csr_matrix(A[perm])
    B.indices = inv[B.indices].astype(B.indices.dtype, copy=False)
    B.has_sorted_indices = False
    B.sort_indices()
    return B


def _index_dtype(S: sp.csr_matrix) -> sp.csr_matrix:
    """S with sorted indices and one index dtype (int32 while it fits)."""
    S.sum_duplicates()
    S.sort_indices()
    idx = np.int64 if S.nnz > np.iinfo(np.int32).max // 2 else np.int32
    S.indptr = S.indptr.astype(idx, copy=False)
    S.indices = S.indices.astype(idx, copy=False)
    return S


def _spectral_map(L: sp.csr_matrix, lmax: float, dtype) -> sp.csr_matrix:
    """S = (2 / lmax) L - I in CSR with sorted indices and one index dtype."""
    n = L.shape[0]
    L = L.astype(dtype, copy=False)  # scaled in the working precision, not in W's
    S = sp.csr_matrix((2.0 / lmax) * L - sp.identity(n, format="csr", dtype=dtype), dtype=dtype)
    return _index_dtype(S)


def heat_kernel(
    W,
    X,
    t,
    *,
    laplacian: str = "symmetric",
    method: str = "auto",
    tol: float = 1e-8,
    n_jobs: int | None = None,
):
    """Heat-kernel action ``exp(-t L) X`` on a graph, for one or several diffusion times.

    ``L`` is the graph Laplacian of the affinity matrix ``W`` (any kind
    :func:`geoml.laplacian` builds). The exponential is expanded in Chebyshev polynomials
    of ``L`` mapped to [-1, 1] by its spectral bound ``lmax`` (2 for the normalised
    Laplacians, ``2 max_i d_i`` for the combinatorial one), with coefficients from the
    scaled Bessel functions; the order is the smallest whose truncation bound meets ``tol``
    (it grows like ``sqrt(t lmax log(1/tol))`` for large ``t``). All columns of ``X`` go
    through one sparse-times-dense product per order (C++/OpenMP), and all times share the
    same products. O(K nnz(W) m) work for order K, two (n, m) blocks of memory besides the
    output.

    Accuracy: each column of the result is within ``tol`` of the exact one relative to its
    own 2-norm (plus rounding). The order is chosen for ``tol * ||X[:, j]||`` first; when
    the result is less than half of ``X`` (large ``t``: only the slow modes survive) the
    series is continued (no work repeated) to the order for ``tol * ||Y[:, j]||``. For
    ``laplacian="random_walk"`` (not symmetric) the bound carries the factor
    ``sqrt(max d / min d)``. The rounding of the recurrence grows with the order, about
    ``K eps ||X[:, j]||`` for order ``K`` (``K`` ~ ``t lmax / 2`` for large ``t``), so relative
    to a decayed ``||Y[:, j]||`` it can exceed ``tol`` in float32: on a 200-node kNN graph
    (symmetric Laplacian, float32 ``X``) the error was 2e-5 at ``t = 100`` and 6e-4 at
    ``t = 1000`` whatever ``tol``; pass float64 ``X`` for tighter results at large ``t``.

    Parameters
    ----------
    W : sparse matrix or array-like of shape (n, n)
        Symmetric non-negative affinities (diagonal ignored), as for :func:`geoml.laplacian`.
    X : array-like of shape (n,) or (n, m)
        Initial heat (float32 is kept: the products run in float32 with float64 row sums,
        see the rounding note above; float16 becomes float32, as in :func:`geoml.knn`;
        anything else runs in float64).
    t : float or sequence of float
        Diffusion time(s), each finite and > 0.
    laplacian : {"symmetric", "combinatorial", "random_walk"}
    method : {"auto", "chebyshev"}
        ``"auto"`` is the Chebyshev expansion (the only method so far).
    tol : float
        Relative accuracy (2-norm, per column); at least ``10 eps`` of the dtype.
    n_jobs : int or None
        OpenMP threads (None: OMP_NUM_THREADS, else all cores; -1: all cores). The result
        does not depend on it.

    Returns
    -------
    Y : ndarray of shape X.shape, or ``(len(t), *X.shape)`` when ``t`` is a sequence
        ``exp(-t L) X`` (``Y[j] = exp(-t[j] L) X``), in the working dtype: float32 for
        float32 and float16 ``X``, else float64.

    Raises
    ------
    ValueError
        ``t <= 0``, NaN/inf in ``t``, ``X`` or ``W``, shapes that do not match, an unknown
        ``laplacian`` or ``method``, or ``t lmax / 2`` so large that the Chebyshev order would
        pass 200,000 (it grows like ``sqrt(t lmax)``: ``t lmax / 2`` from about 10^9 at
        ``tol = 1e-8``, from 5 x 10^7 for a result decayed to 1e-150 of ``X``; e.g. the
        combinatorial Laplacian of a graph with degrees of 10^7 at ``t = 1000``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> W = sp.diags([np.ones(4), np.ones(4)], [-1, 1], shape=(5, 5))  # path graph
    >>> x = np.array([1.0, 0, 0, 0, 0])
    >>> y = geoml.heat_kernel(W, x, 2.0, laplacian="combinatorial")
    >>> from scipy.linalg import expm
    >>> L = geoml.laplacian(W, kind="combinatorial").toarray()
    >>> ref = expm(-2.0 * L) @ x
    >>> bool(np.linalg.norm(y - ref) <= 1e-8 * np.linalg.norm(ref))
    True
    >>> geoml.heat_kernel(W, x, [0.5, 1.0]).shape
    (2, 5)
    """
    return _heat_action(W, X, t, laplacian, method, tol, n_jobs)


def _heat_action(W, X, t, laplacian, method, tol, n_jobs, floor: float = 0.0, order=None):
    """:func:`heat_kernel`; with ``floor`` the series is also truncated at ``floor`` times
    each column's norm at most (absolute accuracy of small entries, below what ``tol``'s
    ``10 eps`` minimum gives: :func:`heat_geodesic_distances` takes their logarithm).

    ``order`` (an int; symmetric Laplacian only): heatgeo's ``filter_method="mar"`` instead,
    the series of that fixed order on ``[0, lmax]`` with ``lmax`` the largest eigenvalue of
    ``L`` (ARPACK, as heatgeo), a ``RuntimeWarning`` when its truncation is above ``tol``."""
    if laplacian not in _KINDS:
        raise ValueError(
            f"laplacian={laplacian!r}; choose 'symmetric', 'combinatorial' or 'random_walk'"
        )
    if method not in ("auto", "chebyshev"):
        raise ValueError(f"method={method!r}; choose 'auto' or 'chebyshev'")
    reject_gpu(W, "W", "heat_kernel")
    reject_gpu(X, "X", "heat_kernel")
    times, scalar_t = _check_times(t)
    Xa = np.asarray(X) if not sp.issparse(X) else X
    if sp.issparse(Xa):
        raise TypeError("X is a sparse matrix; pass a dense array (X.toarray())")
    if Xa.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D (n,) or 2-D (n, m); got shape {Xa.shape}")
    vector = Xa.ndim == 1
    X2 = as_float_array(Xa.reshape(-1, 1) if vector else Xa, "X")
    dtype = X2.dtype.type
    tol = check_tol(tol, dtype=dtype)
    nt = check_n_jobs(n_jobs)
    if order is not None:  # heatgeo's interval: [0, lmax of L_sym]
        L, d = _laplacian_matrix(W, kind="symmetric", return_diag=True)  # validates W
    elif laplacian == "symmetric":  # S = L_sym - I directly (the map below, lmax = 2)
        L, d = _symmetric_shifted(W)  # validates W
    else:
        L, d = _laplacian_matrix(W, kind=laplacian, return_diag=True)  # validates W
    n = L.shape[0]
    if X2.shape[0] != n:
        raise ValueError(f"X has {X2.shape[0]} rows but W is {n} x {n}")
    if not (np.isfinite(d).all() and np.isfinite(L.data).all()):
        raise ValueError("W's degrees overflow (entries too large): rescale W")
    factor = 1.0
    if order is not None:
        lmax = _largest_eigenvalue(L) if (d > 0).any() else 0.0
    elif laplacian == "combinatorial":
        lmax = 2.0 * float(d.max())  # Gershgorin
    else:
        lmax = 2.0 if (d > 0).any() else 0.0
        if laplacian == "random_walk" and (d > 0).any():
            dp = d[d > 0]
            factor = float(np.sqrt(dp.max() / dp.min()))
    out_shape = ((times.size,) if not scalar_t else ()) + ((n,) if vector else X2.shape)
    if lmax == 0.0:  # no edges: L = 0
        Y = np.broadcast_to(X2, (times.size, *X2.shape)).copy()
        return Y.reshape(out_shape)
    perm = None
    if n >= _RCM_MIN_N and n * X2.shape[1] >= _RCM_MIN_BLOCK:
        # banded order: the block rows gathered by the product stay in cache
        perm = _core.rcm_components(L.indptr, L.indices)[0]
        L = _permute(L, perm)
        X2 = np.ascontiguousarray(X2[perm])
    if laplacian == "symmetric" and order is None:
        S = _index_dtype(sp.csr_matrix(L, dtype=dtype))
    else:
        S = _spectral_map(L, lmax, dtype)
    a = times * (lmax / 2.0)
    # the norms of columns of 1e-200 or 1e200 taken scaled by a power of two (their squares
    # underflowed or overflowed: the decay test below skipped them, and at large t such a
    # column missed tol relative to its own norm); Y's columns by the same powers
    xnorm = _col_norms(X2)
    shifts = _norm_shifts(X2, xnorm)
    if shifts is not None:
        xnorm = _col_norms(X2, shifts)
    live = xnorm > 0
    # first: truncation <= tol / 2 * ||X||, enough while ||Y|| >= ||X|| / 2
    first = 0.5 * tol if floor <= 0 else min(0.5 * tol, floor)
    if order is None:
        coef, K, _ = _chebyshev_coefficients(a, first, factor)
    else:
        coef, K = _fixed_order_coefficients(a, order), order
        trunc = _fixed_order_truncation(float(a.max()), order)
        if trunc > tol:
            warnings.warn(
                f"order={order}: the Chebyshev series of exp(-t L) is truncated at "
                f"{trunc:.2g} of each column's norm (t = {float(times.max()):.4g}, lmax = "
                f"{lmax:.4g}), above tol={tol:g}; order=None chooses the order from tol",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
    Y = np.empty((times.size, *X2.shape), dtype=dtype)
    buf0, buf1 = np.empty_like(X2), np.empty_like(X2)
    args = (S.data, S.indices, S.indptr, X2)
    _core.heat_chebyshev(*args, coef, Y, buf0, buf1, k_begin=0, k_end=K, n_jobs=nt)
    if live.any() and order is None:
        ynorm = np.stack([_col_norms(Yj, shifts) for Yj in Y])  # (n_t, m)
        ratio = float((ynorm[:, live] / xnorm[live]).min())
        if ratio < 0.5:
            # the result decayed (large t): continue the series to truncation
            # <= tol / 2 * ||Y|| (never below what the dtype can resolve)
            target = max(0.5 * tol * ratio, float(np.finfo(dtype).tiny) ** 0.5)
            target = target if floor <= 0 else min(target, floor)
            coef2, K2, _ = _chebyshev_coefficients(a, target, factor)
            if K2 > K:
                _core.heat_chebyshev(
                    *args, coef2, Y, buf0, buf1, k_begin=K + 1, k_end=K2, n_jobs=nt
                )
    if perm is not None:  # back to the caller's order: a gather by the inverse permutation
        inv = np.empty_like(perm)
        inv[perm] = np.arange(perm.size, dtype=perm.dtype)
        Y = np.take(Y, inv, axis=1)
    return Y.reshape(out_shape)
