"""Tucker decompositions: HOOI, HOSVD, ST-HOSVD and randomized."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import _core
from .._base import BaseEstimator, FeaturesOutMixin, NotFittedError, not_fitted_error
from .._validation import (
    as_float_array,
    as_real,
    check_int,
    check_n_jobs,
    check_random_state,
    check_real,
    reject_gpu,
    single_threaded_blas,
    user_stacklevel,
)
from ._cost_model import (
    _apply_cost,
    _contract_all,
    _gram_cost,
    _mode_order,
    _rand_step,
    _sketch_cols,
    _ttm_cost,
)
from ._kernels import _gram, _gram_apply, _gram_apply_pair, _sumsq, _ttm
from ._subspace import _certified_subspace, _eig_desc, _eig_top, _eig_warm, _select_rank
from ._svd import _MAX_POWER_ITER, _householder, _orth

_METHODS = ("hooi", "hosvd", "st_hosvd", "randomized")
# Entries per block of TuckerTensor.rel_error.
_BLOCK_ENTRIES = 2**23


class TuckerTensor:
    """A tensor in Tucker form ``core x_0 U_0 x_1 U_1 ...x_{N-1} U_{N-1}``.

    Unpacks as ``core, factors = tt`` and indexes as ``tt[0]``, ``tt[1]``, ``len(tt) == 2``
    (like TensorLy's ``TuckerTensor``).

    Attributes
    ----------
    core : ndarray of shape (r_0, ..., r_{N-1})
    factors : list of N ndarrays, factor n of shape (I_n, r_n) with orthonormal columns
    converged : bool
        False when HOOI stopped at ``max_iter`` before meeting ``tol``; True otherwise.
    n_iter : int
        HOOI sweeps done (0 for the one-pass methods).
    """

    __slots__ = ("converged", "core", "factors", "n_iter")

    def __init__(
        self,
        core: np.ndarray,
        factors: list[np.ndarray],
        *,
        converged: bool = True,
        n_iter: int = 0,
    ):
        core = as_real(np.asarray(core), "core")
        factors = [as_real(np.asarray(U), f"factors[{n}]") for n, U in enumerate(factors)]
        for name, a in [("core", core)] + [(f"factors[{n}]", U) for n, U in enumerate(factors)]:
            if not np.isfinite(a).all():
                raise ValueError(f"{name} contains NaN or infinity")
        if (
            core.ndim < 1
            or len(factors) != core.ndim
            or any(U.ndim != 2 or U.shape[1] != r for U, r in zip(factors, core.shape))
        ):
            raise ValueError(
                f"a core of shape {core.shape} needs {core.ndim} >= 1 factor matrices "
                "of shapes (I_n, r_n) with r_n = core.shape[n]; got shapes "
                f"{[U.shape for U in factors]}"
            )
        if core.dtype not in (np.float32, np.float64):  # to_tensor computes in the core's dtype
            core = core.astype(np.float32 if core.dtype == np.float16 else np.float64)
        self.core = core
        self.factors = factors
        self.converged = bool(converged)
        self.n_iter = int(n_iter)

    def __iter__(self):
        return iter((self.core, self.factors))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index):
        return (self.core, self.factors)[index]

    def __repr__(self) -> str:
        return (
            f"TuckerTensor(shape={self.shape}, rank={self.rank}, "
            f"compression_ratio={self.compression_ratio:.4g})"
        )

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
        out = _contract_all(
            np.ascontiguousarray(self.core), dict(enumerate(self.factors)), False, nj
        )
        if not np.isfinite(out).all():  # only for factors far from orthonormal
            raise ValueError(f"the full tensor overflows {out.dtype}: are the factors orthonormal?")
        return out

    def rel_error(self, T, n_jobs: int | None = None) -> float:
        """``||T - to_tensor()||_F / ||T||_F`` computed explicitly (0 if ``T`` is all zeros).

        Works through blocks of mode-0 slices, reconstructed and compared in float64, so memory
        stays O(block) beyond ``T`` itself.
        """
        nj = check_n_jobs(n_jobs)
        T = as_real(np.asarray(T), "T")
        if T.shape != self.shape:
            raise ValueError(f"T has shape {T.shape}, the Tucker tensor {self.shape}")
        core = np.ascontiguousarray(self.core, dtype=np.float64)
        rest = {n: np.asarray(U, dtype=np.float64) for n, U in enumerate(self.factors) if n > 0}
        U0 = np.asarray(self.factors[0], dtype=np.float64)
        step = max(1, _BLOCK_ENTRIES // max(math.prod(T.shape[1:]), 1))

        def sums(e):  # ||T||^2 and ||T - T_hat||^2 of T and the core scaled by 2^-e
            nt = nd = 0.0
            c = np.ldexp(core, -e) if e else core
            for i0 in range(0, T.shape[0], step):
                blk = _contract_all(_ttm(c, 0, U0[i0 : i0 + step], False, nj), rest, False, nj)
                t = np.ascontiguousarray(T[i0 : i0 + step], dtype=np.float64)
                if e:
                    t = np.ldexp(t, -e)
                nt += _sumsq(t, nj)
                nd += _sumsq(np.subtract(t, blk), nj)
            return nt, nd

        nt, nd = sums(0)
        if not (2.0**-900 <= nt < np.inf) and np.isfinite(T).all() and T.any():
            # squares under- or overflowed (T of 1e-200: error 0 or nan): the ratio of T 2^-e
            nt, nd = sums(int(np.frexp(float(np.abs(T).max()))[1]))
        if not (np.isfinite(nt) and np.isfinite(nd)):
            raise ValueError("T contains NaN or infinity, or its norm overflows float64")
        return float(np.sqrt(nd / nt)) if nt > 0 else float(np.sqrt(nd))


def _check_tensor(T, name="T", nj: int = 0) -> tuple[np.ndarray, float]:
    """-> (C-contiguous float32/float64 tensor with ndim >= 2, its squared norm in float64).

    NaN/inf are detected through the squared norm (one pass that is needed anyway).
    """
    reject_gpu(T, name, "tucker")
    if hasattr(T, "toarray") and not isinstance(T, np.ndarray):
        raise TypeError(f"{name} is a sparse matrix; a dense array is expected here")
    arr = T if isinstance(T, np.ndarray) else np.asarray(T)
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have at least 2 dimensions; got shape {arr.shape}. "
            f"Reshape your data, e.g. {name}.reshape(1, -1) for one sample"
        )
    arr = as_float_array(arr, name, ndim=arr.ndim, finite=False)
    norm2 = _sumsq(arr, nj)
    if not np.isfinite(norm2) and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr, norm2  # (inf for a finite tensor whose squares overflow: see _unit_scale)


# Squared norms within which a tensor is decomposed as it is (its Gram matrices, in its
# dtype, neither underflow nor overflow); others are decomposed scaled by a power of two.
_NORM2_RANGE = {np.dtype(np.float64): 2.0**500, np.dtype(np.float32): 2.0**100}


def _unit_scale(T, norm2, nj: int) -> tuple[np.ndarray, float, int]:
    """``(T 2^-e, its squared norm, e)``: ``e = 0`` (T itself) when ``norm2`` lies in the
    dtype's range, else the exponent of ``max |T|``. Tucker factors are scale-invariant and
    the core scales with T, so the decomposition of ``T 2^-e`` (exact) is T's; the Gram
    matrices of a float64 tensor of 1e-200 underflowed (nan), of 1e-150 lost 1 % of the
    fit, and a float32 tensor of 1e-25 / 1e25 got wrong ranks or an IndexError."""
    r = _NORM2_RANGE[T.dtype]
    if 1.0 / r <= norm2 <= r:
        return T, norm2, 0
    big = float(np.abs(T).max())
    if big == 0.0:
        return T, norm2, 0
    e = int(np.frexp(big)[1])
    Ts = np.ldexp(T, -e).astype(T.dtype, copy=False)
    return Ts, _sumsq(Ts, nj), e


def _check_ranks(ranks, shape, modes: list[int]) -> tuple[dict[int, int] | None, float | None]:
    """-> ({mode: rank}, None) for integer ranks, (None, eps) for a target relative error."""
    if isinstance(ranks, numbers.Real) and not isinstance(ranks, (numbers.Integral, bool)):
        eps = float(ranks)
        if not (0.0 < eps < 1.0):
            raise ValueError(
                f"ranks={ranks!r}: a float is a target relative error and must "
                "lie in (0, 1); pass integers for fixed ranks"
            )
        return None, eps
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        ranks = [ranks] * len(modes)
    if isinstance(ranks, (str, bytes)):
        raise TypeError(
            f"ranks must be an int, a sequence of ints or a float in (0, 1); got {ranks!r}"
        )
    try:
        ranks = list(ranks)
    except TypeError:
        raise TypeError(
            f"ranks must be an int, a sequence of ints or a float in (0, 1); got {ranks!r}"
        ) from None
    if len(ranks) != len(modes):
        raise ValueError(
            f"ranks has {len(ranks)} entries but {len(modes)} modes are decomposed "
            f"(tensor shape {tuple(shape)})"
        )
    # samples x features (Tucker on 2-D data): say it in scikit-learn's words too
    features = len(shape) == 2 and list(modes) == [1]
    out = {}
    for m, r in zip(modes, ranks):
        what = f": n_features={shape[m]}" if features else ""
        out[m] = check_int(
            r,
            f"rank of mode {m}",
            low=1,
            high=shape[m],
            hint=f" (mode {m} has size {shape[m]}{what}; a rank cannot exceed it)",
        )
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
            factors[n] = np.ascontiguousarray(V[:, : _select_rank(lam, budget)], dtype=T.dtype)
        return _contract_all(T, factors, True, nj), factors, None
    tol = _HOSVD_TOL[T.dtype]
    order = _mode_order(T.shape, ranks, modes)
    # steps such that the products, plus the Gram matrix if they fail, cost < 1.5 Gram
    steps = {
        n: int(_gram_cost(T.shape, n) // max(_apply_cost(T.shape, n, ranks[n]), 1.0)) - 1
        for n in order
    }
    N = T.ndim
    # the last two modes refined last, both with wide, cache-sized slabs: one pass for both
    pair = (
        len(order) > 2
        and set(order[-2:]) == {N - 2, N - 1}
        and min(steps[N - 2], steps[N - 1]) >= 1
        and T.shape[-1] >= 64
        and T.shape[-2] * T.shape[-1] * T.itemsize <= 1 << 19
    )
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
                    starts[m] = _eig_top(_gram(_ttm(Y, n, start, True, nj), m, nj), ranks[m], tol)
                    U1, U2 = (start, starts[m]) if n == N - 2 else (starts[m], start)
                    GQ = dict(zip((N - 2, N - 1), _gram_apply_pair(T, U1, U2, nj)))
            V = _certified_subspace(
                lambda Q: _gram_apply(T, n, Q, nj),
                start,
                normT2,
                min(steps[n], 2) - 1,
                tol,
                GQ.pop(n, None),
            )
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
            V = V[:, : _select_rank(lam, budget)]
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
    p, q = n_oversamples, n_power_iter

    def step_cost(shape, m, r):
        return _rand_step(shape, m, r, p, q)[1]

    order, inter = _mode_order(T.shape, ranks, modes, step_cost), []
    for n in order:
        inter.append(Y)
        In, r = Y.shape[n], ranks[n]
        rest = Y.size // In
        if not _rand_step(Y.shape, n, r, p, q)[0]:
            factors[n] = np.ascontiguousarray(
                _eig_top(_gram(Y, n, nj), r, _HOSVD_TOL[T.dtype]), dtype=T.dtype
            )
            Y = _ttm(Y, n, factors[n], True, nj)
            continue
        s = _sketch_cols(In, r, rest, p)
        W = rng.standard_normal((rest, s), dtype=np.float32)  # float32 draws are faster
        Q = _orth(_core.mode_sketch(Y, n, W.astype(T.dtype, copy=False), n_jobs=nj), nj)[0]
        for _ in range(q):
            B = _ttm(Y, n, Q, True, nj)  # Y x_n Q^T; its mode-n unfolding is Q^T Y_(n)
            Bt = np.ascontiguousarray(np.moveaxis(B, n, -1).reshape(rest, s))
            Q = _orth(_core.mode_sketch(Y, n, Bt, n_jobs=nj), nj)[0]  # Y_(n) Y_(n)^T Q
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
        factors[n] = np.ascontiguousarray(V[:, : ranks[n]], dtype=T.dtype)

    err_prev = None if core is None else rel_err(core)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        if it == 1 and plan is not None:
            order, inter = plan
            for j in range(len(order) - 1, -1, -1):
                Y = _contract_all(inter[j], {m: factors[m] for m in order[j + 1 :]}, True, nj)
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


def _decompose_run(
    T,
    normT2,
    ranks,
    modes,
    *,
    method,
    init,
    max_iter,
    tol,
    n_oversamples,
    n_power_iter,
    random_state,
    nj,
):
    if method not in _METHODS:
        raise ValueError(f"method={method!r}; choose one of {list(_METHODS)}")
    rk, eps = _check_ranks(ranks, T.shape, modes)
    if eps is not None and method == "randomized":
        raise ValueError(
            "a target relative error (float ranks) is supported by 'st_hosvd', "
            "'hosvd' and 'hooi'; give integer ranks to method='randomized'"
        )
    if init is not None and method != "hooi":
        raise ValueError(f"init only applies to method='hooi' (got method={method!r})")
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = _default_tol(T.dtype) if tol is None else check_real(tol, "tol")
    if not tol >= 0:
        raise ValueError(f"tol must be a non-negative number; got {tol}")
    n_oversamples = check_int(n_oversamples, "n_oversamples", low=0)
    n_power_iter = check_int(
        n_power_iter,
        "n_power_iter",
        low=0,
        high=_MAX_POWER_ITER,
        hint=" (power iterations beyond a few dozen gain nothing)",
    )
    rng = check_random_state(random_state)

    start = method if method != "hooi" else ("st_hosvd" if init is None else init)
    if isinstance(start, str):
        if start not in ("hosvd", "st_hosvd", "randomized"):
            raise ValueError(
                f"init={init!r}; choose 'st_hosvd', 'hosvd', 'randomized' or a "
                "list of factor matrices"
            )
        if start == "randomized" and eps is not None:
            raise ValueError("init='randomized' needs integer ranks")
        if start == "hosvd":
            core, factors, plan = _hosvd(T, rk, eps, modes, nj, normT2)
        elif start == "st_hosvd":
            core, factors, plan = _st_hosvd(T, rk, eps, modes, nj, normT2)
        else:
            core, factors, plan = _randomized(T, rk, modes, nj, rng, n_oversamples, n_power_iter)
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
        core, factors, converged, sweeps = _hooi(
            T, factors, core, plan, modes, nj, normT2, max_iter, tol
        )
        if not converged:
            warnings.warn(
                f"HOOI did not converge in max_iter={max_iter} sweeps (tol={tol:g}); "
                "raise max_iter or tol",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
    return core, factors, converged, sweeps


def tucker(
    T,
    ranks,
    *,
    method: str = "hooi",
    init=None,
    max_iter: int = 100,
    tol: float | None = None,
    n_oversamples: int = 5,
    n_power_iter: int = 1,
    random_state=None,
    n_jobs: int | None = None,
) -> TuckerTensor:
    """Tucker decomposition ``T ~= core x_0 U_0 x_1 U_1 ...x_{N-1} U_{N-1}``.

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
    T, normT2, e = _unit_scale(T, normT2, nj)
    modes = list(range(T.ndim))
    core, factors, converged, sweeps = _decompose(
        T,
        normT2,
        ranks,
        modes,
        method=method,
        init=init,
        max_iter=max_iter,
        tol=tol,
        n_oversamples=n_oversamples,
        n_power_iter=n_power_iter,
        random_state=random_state,
        nj=nj,
    )
    if e:
        core = np.ldexp(core, e).astype(core.dtype, copy=False)
    return TuckerTensor(core, [factors[n] for n in modes], converged=converged, n_iter=sweeps)


class _TuckerNotFittedError(NotFittedError, RuntimeError):
    """:class:`geoml.NotFittedError` that is also the ``RuntimeError`` ``Tucker`` raised before
    it had one."""


class Tucker(FeaturesOutMixin, BaseEstimator):
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
    n_features_in_ : int
        Values per sample, ``I_1 * ... * I_{N-1}`` (``n_features`` for 2-D data).

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

    _transformer = True

    def __init__(
        self,
        ranks,
        *,
        method: str = "hooi",
        init=None,
        max_iter: int = 100,
        tol: float | None = None,
        n_oversamples: int = 5,
        n_power_iter: int = 1,
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.ranks = ranks
        self.method = method
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.n_oversamples = n_oversamples
        self.n_power_iter = n_power_iter
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y=None) -> Tucker:
        """Fit factors to ``X`` of shape (n_samples, I_1, ..., I_{N-1})."""
        names_in = self._feature_names_of(X)
        nj = check_n_jobs(self.n_jobs)
        X, normX2 = _check_tensor(X, "X", nj)
        X, normX2, _ = _unit_scale(X, normX2, nj)  # factors and rel_error_ scale-invariant
        modes = list(range(1, X.ndim))
        core, factors, converged, sweeps = _decompose(
            X,
            normX2,
            self.ranks,
            modes,
            method=self.method,
            init=self.init,
            max_iter=self.max_iter,
            tol=self.tol,
            n_oversamples=self.n_oversamples,
            n_power_iter=self.n_power_iter,
            random_state=self.random_state,
            nj=nj,
        )
        self.factors_ = [factors[n] for n in modes]
        self.ranks_ = tuple(U.shape[1] for U in self.factors_)
        err2 = max(normX2 - _sumsq(core, nj), 0.0)
        self.rel_error_ = float(np.sqrt(err2 / normX2)) if normX2 > 0 else 0.0
        self.converged_ = converged
        self.n_iter_ = sweeps
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self._sample_shape = X.shape[1:]
        self._dtype = X.dtype
        self._set_feature_names(names_in)
        return self

    def _geoml_tags(self) -> dict:
        return {"transformer_tags.preserves_dtype": ["float64", "float32"]}

    def _check_fitted(self):
        if not hasattr(self, "factors_"):
            raise _TuckerNotFittedError("this Tucker estimator is not fitted yet; call fit first")

    def transform(self, X) -> np.ndarray:
        """Project samples: (n_samples, I_1, ...) -> cores (n_samples, r_1, ..., r_{N-1})."""
        X_in = X
        self._check_feature_names_in(X)
        self._check_fitted()
        X = _check_tensor(X, "X")[0]
        if X.shape[1:] != self._sample_shape:
            extra = ""
            if X.ndim == 2 and len(self._sample_shape) == 1:  # scikit-learn's words for it
                extra = (
                    f" (X has {X.shape[1]} features, but Tucker is expecting "
                    f"{self._sample_shape[0]} features as input)"
                )
            raise ValueError(
                f"X has sample shape {X.shape[1:]}; the estimator was fitted on "
                f"{self._sample_shape}{extra}"
            )
        nj = check_n_jobs(self.n_jobs)
        return self._wrap_output(
            _contract_all(X, dict(enumerate(self.factors_, start=1)), True, nj), X_in
        )

    @property
    def _n_features_out(self) -> int:
        """Values per core, ``r_1 * ... * r_{N-1}`` (the output's width for 2-D data)."""
        if not hasattr(self, "factors_"):
            raise not_fitted_error(self)
        return int(np.prod(self.ranks_))

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
