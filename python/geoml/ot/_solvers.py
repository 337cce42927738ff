"""Exact network simplex, log-domain Sinkhorn and their batched drivers (re-exported by
:mod:`geoml.ot`)."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._validation import (
    as_float_array,
    check_bool,
    check_int,
    check_n_jobs,
    check_real,
    check_tol,
    reject_gpu,
    user_stacklevel,
)

__all__ = [
    "MASS_RTOL",
    "BatchedOTResult",
    "BatchedSinkhornResult",
    "EMDResult",
    "PointsSinkhornResult",
    "SinkhornResult",
    "emd",
    "emd_batched",
    "sinkhorn",
    "sinkhorn_batched",
    "sinkhorn_points",
    "sinkhorn_unbalanced",
]

MASS_RTOL = 1e-6
"""Relative tolerance on ``|sum(a) - sum(b)| / max(sum(a), sum(b))`` for balanced problems.

Within it, ``b`` is rescaled to the mass of ``a`` before solving; beyond it ``ValueError``."""

_EMD_NONFINITE = 3  # EmdStatus::EMD_NONFINITE of the C++ solver (a NaN/inf cost was read)


class EMDResult(NamedTuple):
    """Exact optimal transport solution (see :func:`emd`)."""

    plan: np.ndarray | sp.csr_matrix
    """Optimal plan, shape (m, n): dense float64, or CSR with at most m + n - 1 entries."""
    cost: float
    """Optimal cost ``<plan, C>``."""
    f: np.ndarray
    """Row dual potentials, shape (m,)."""
    g: np.ndarray
    """Column dual potentials, shape (n,): ``f_i + g_j <= C_ij``, equality on the support."""
    n_iter: int
    """Number of simplex pivots."""
    converged: bool
    """False when ``max_iter`` stopped the solver before optimality."""


class BatchedOTResult(NamedTuple):
    """Solutions of many independent problems (see :func:`emd_batched`)."""

    cost: np.ndarray
    """Per-problem cost, shape (B,)."""
    converged: np.ndarray
    """Per-problem flag, bool array of shape (B,)."""
    plans: np.ndarray | None
    """Plans when requested: shape (B, m, n) for padded input, or flat like ``C`` for ragged
    input; else None."""


# ---------------------------------------------------------------------------- validation


def _histogram(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    reject_gpu(w, name, "geoml.ot")
    w = as_float_array(w, name, ndim=1, dtype=np.float64)
    if w.shape[0] != n:
        raise ValueError(f"{name} has {w.shape[0]} entries but the cost matrix needs {n}")
    if (w < 0).any():
        raise ValueError(f"{name} has negative entries; masses must be >= 0")
    if not w.sum() > 0:
        raise ValueError(f"{name} has zero total mass")
    return w


def _as_offsets(x, name: str) -> np.ndarray:
    """Ragged-layout offsets as int64: integers, or floats with integral values in range."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not (
            np.isfinite(arr).all()
            and (arr == np.round(arr)).all()
            and (np.abs(arr) < 2.0**62).all()
        ):
            raise ValueError(
                f"{name} must hold integer offsets; got {arr.dtype} values that are "
                "not integers in range"
            )
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer offsets; got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _finite_cost(
    C, ndim: int, scan: bool = True, allow_inf: bool = False
) -> tuple[np.ndarray, float | None]:
    """C as C-contiguous float64 with ``ndim`` dimensions, NaN/inf rejected, and its range
    ``max(C) - min(C)`` (one C++ pass does both); ``scan=False`` skips that pass (range
    None, NaN/inf left to the caller's kernel). ``allow_inf``: ``+inf`` (a forbidden pair)
    is accepted and the range is that of the finite entries."""
    C = as_float_array(C, "C", ndim=ndim, dtype=np.float64, finite=False)
    if not scan:
        return C, None
    lo, hi, finite = _core.value_range(C.reshape(-1), n_jobs=0)
    if not finite:
        if not allow_inf:
            raise ValueError("C contains NaN or infinity")
        if np.isnan(C).any() or (-np.inf == C).any():
            raise ValueError("C contains NaN or -inf (+inf marks a forbidden pair)")
        return C, (hi - lo if np.isfinite(hi - lo) else 0.0)
    return C, (hi - lo if C.size else 0.0)


def _cost_matrix(C) -> tuple[np.ndarray, float, bool]:
    """C as C-contiguous float64, NaN and -inf rejected; the range of its finite entries; and
    whether it has +inf entries (forbidden pairs). One C++ pass, a second only with inf."""
    reject_gpu(C, "C", "geoml.ot")
    C = as_float_array(C, "C", ndim=2, dtype=np.float64, finite=False)
    lo, hi, finite = _core.value_range(C.reshape(-1), n_jobs=0)
    if not finite and (np.isnan(C).any() or (-np.inf == C).any()):
        raise ValueError("C contains NaN or -inf (+inf marks a forbidden pair)")
    crange = hi - lo if np.isfinite(hi - lo) else 0.0  # only +inf entries: no finite range
    return C, crange, not finite


def _check_support(a, b, C, what: str) -> None:
    """Every bin of positive mass needs an allowed (finite-cost) pair with a bin of positive
    mass on the other side, else ValueError (the entropic solvers would divide by zero)."""
    allowed = np.isfinite(C)
    ka, kb = a > 0, b > 0
    rows = allowed[np.ix_(ka, kb)].any(1)
    cols = allowed[np.ix_(ka, kb)].any(0)
    if not (rows.all() and cols.all()):
        side, k = (
            ("row", np.flatnonzero(ka)[~rows][0])
            if not rows.all()
            else (
                "column",
                np.flatnonzero(kb)[~cols][0],
            )
        )
        raise ValueError(
            f"{what}: infeasible problem, {side} {int(k)} has positive mass but only "
            "forbidden (+inf) costs to the bins of positive mass"
        )


def _feasible(a, b, C) -> bool:
    """Whether the forbidden (+inf) pairs of C leave a plan with marginals a, b: an exact
    solve with costs 0 (allowed) / +inf (only run after an entropic solve failed)."""
    C01 = np.where(np.isfinite(C), 0.0, np.inf)
    status = _core.emd(a, b * (a.sum() / b.sum()), C01, max_iter=0, sparse=True)[1]
    return status != 2


def _infeasible(what: str) -> ValueError:
    return ValueError(
        f"{what}: infeasible problem, the forbidden (+inf) pairs of C leave no transport plan "
        "with marginals a and b"
    )


def _huge_cost_scale(C: np.ndarray) -> float:
    """The power of two that brings the largest finite ``|C_ij|`` into [0.5, 1) when it is
    above 1, else 1.0. The network simplex's potentials hold sums of up to ``m + n`` costs
    plus an artificial cost of that size: beyond ~1e305 / (m + n) they overflow and the
    solve ends with mass on the artificial arcs (status 2). Exact optimal transport is
    linear in C, so such a problem is solved on ``C * scale`` (exact) and scaled back."""
    finite = np.isfinite(C)
    big = float(np.abs(C, where=finite, out=np.zeros_like(C)).max()) if C.size else 0.0
    e = int(np.frexp(big)[1]) if big > 0 else 0
    return 2.0**-e if e > 0 else 1.0


_MASS_RANGE = 2.0**64


def _mass_scale(mass: float) -> float:
    """The power of two that brings a balanced problem's total mass into [0.5, 1) when it
    lies outside ``[2^-64, 2^64]``, else 1.0. Balanced entropic OT is homogeneous of degree
    1 in the masses (the plan scales with them, the potentials shift by ``eps log s``), but
    the solvers' kernels are not: masses of 1e300 stopped after one iteration 63 % off, and
    of 1e-300 (1e-200 for the Newton solver) missed the tolerance or returned a zero plan."""
    if 1.0 / _MASS_RANGE <= mass <= _MASS_RANGE:
        return 1.0
    return 2.0 ** -int(np.frexp(mass)[1])


def _balance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Check equal masses within MASS_RTOL; return b rescaled to the mass of a."""
    sa, sb = float(a.sum()), float(b.sum())
    if abs(sa - sb) > MASS_RTOL * max(sa, sb):
        raise ValueError(
            f"a and b must have the same total mass (relative tolerance "
            f"{MASS_RTOL:g}); got sum(a)={sa!r}, sum(b)={sb!r}. Normalise them, "
            "or use sinkhorn_unbalanced"
        )
    return b if sa == sb else b * (sa / sb)


def _max_iter(max_iter, default: int = 0) -> int:
    if max_iter is None:
        return default
    return check_int(max_iter, "max_iter", low=1)


# ---------------------------------------------------------------------------- exact OT


def emd(a, b, C, *, max_iter: int | None = None, sparse: bool = False) -> EMDResult:
    """Exact optimal transport (earth mover's distance) by a network simplex.

    Solves ``min <P, C>`` over ``P >= 0`` with ``P 1 = a`` and ``P^T 1 = b``. The solver is a
    primal network simplex written for geoml: block-search pivoting (blocks of ``sqrt(m n)``
    arcs; for small problems, ``m n <= 1024``, Dantzig's most-negative reduced cost over all
    arcs, a vectorised scan), the spanning tree stored as parent/thread/depth arrays, an
    artificial-root start and the strongly-feasible leaving-arc rule (no cycling). Zero-mass bins
    are dropped before solving. Time is typically a few seconds for m = n = 5000; memory is
    O(m n) bytes plus O(m + n) (and one float64 copy of C when bins are dropped).

    Parameters
    ----------
    a : array-like of shape (m,) or None
        Source histogram, ``>= 0``. None: uniform ``1/m``.
    b : array-like of shape (n,) or None
        Target histogram, ``>= 0``. None: uniform ``1/n``. Its total must equal ``sum(a)``
        within the relative tolerance :data:`MASS_RTOL` (1e-6); within it ``b`` is rescaled
        to ``sum(a)``, beyond it ``ValueError``.
    C : array-like of shape (m, n)
        Cost matrix: finite real values, or ``+inf`` for a forbidden pair (it never carries
        mass; POT's ``ot.emd`` refuses it). When the allowed pairs cannot carry the masses,
        ``ValueError`` ("infeasible problem"). NaN and ``-inf`` raise ``ValueError``.
    max_iter : int, optional
        Limit on simplex pivots. Default: none (the method always terminates). When it is
        reached a ``RuntimeWarning`` is issued, ``converged`` is False and the result is the
        simplex's current basis: ``plan`` may move less than the full mass (``P 1 <= a``) and
        is not optimal.
    sparse : bool
        Return the plan as a ``scipy.sparse.csr_matrix`` (at most ``m + n - 1`` non-zeros)
        instead of a dense array.

    Returns
    -------
    EMDResult
        ``plan``, ``cost`` (float), dual potentials ``f`` (m,), ``g`` (n,) with
        ``f_i + g_j <= C_ij`` and equality where the plan is positive (so
        ``a @ f + b @ g == cost``), ``n_iter`` (pivots), ``converged``.

    References
    ----------
    Ahuja, Magnanti & Orlin, *Network Flows*, ch. 11 (1993); Kelly & O'Neill, "The minimum
    cost flow problem and the network simplex solution method" (1991).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = geoml.ot.emd([0.5, 0.5], [0.25, 0.75], C)
    >>> float(res.cost)
    0.25
    >>> res.plan
    array([[0.25, 0.25],
           [0.  , 0.5 ]])
    """
    sparse = check_bool(sparse, "sparse")
    C, _, forbidden = _cost_matrix(C)
    m, n = C.shape
    a = _histogram(a, m, "a")
    b = _balance(a, _histogram(b, n, "b"))
    cost, status, n_piv, plan, f, g = _core.emd(
        a, b, C, max_iter=_max_iter(max_iter), sparse=bool(sparse)
    )
    if status == 2 and (scale := _huge_cost_scale(C)) != 1.0:
        # potentials overflowed (costs near float64's limit): solve C * 2^-e, scale back
        # (also with forbidden pairs, +inf either way: such a problem was "infeasible")
        cost, status, n_piv, plan, f, g = _core.emd(
            a, b, C * scale, max_iter=_max_iter(max_iter), sparse=bool(sparse)
        )
        if status != 2:  # (still 2: infeasible, raised below)
            cost, f, g = cost / scale, f / scale, g / scale
    if status == 2:  # residual mass on artificial arcs: only forbidden pairs cause it
        if forbidden:
            raise _infeasible("emd")
        raise RuntimeError("emd: masses could not be balanced (internal error)")
    converged = status == 0
    if not converged:
        warnings.warn(
            f"emd stopped after max_iter={max_iter} pivots before optimality; the "
            "plan is partial and not optimal",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    if sparse:
        ri, ci, val = plan
        plan = sp.csr_matrix((val, (ri, ci)), shape=(m, n))
    return EMDResult(plan, float(cost), f, g, int(n_piv), converged)


def _batched_problem(fa, a_off, fb, b_off, fC, c_off, k: int):
    """Problem k of a flat batched layout: a (m,), b (n,), C (m, n) (views)."""
    ak, bk = fa[a_off[k] : a_off[k + 1]], fb[b_off[k] : b_off[k + 1]]
    Ck = fC[c_off[k] : c_off[k] + ak.size * bk.size].reshape(ak.size, bk.size)
    return ak, bk, Ck


def _ragged_offsets(a_offsets, b_offsets) -> tuple[np.ndarray, np.ndarray]:
    """The ragged layout's offsets as int64 arrays, checked for shape."""
    a_off, b_off = _as_offsets(a_offsets, "a_offsets"), _as_offsets(b_offsets, "b_offsets")
    if a_off.ndim != 1 or a_off.shape != b_off.shape or a_off.shape[0] < 2:
        raise ValueError("a_offsets and b_offsets must be 1-D of the same length B + 1 >= 2")
    return a_off, b_off


def _ragged_sizes(a_off, b_off, len_a: int, len_b: int) -> tuple[np.ndarray, np.ndarray]:
    """The problems' sizes (m_k), (n_k) of ragged offsets into ``a`` and ``b`` of lengths
    ``len_a`` and ``len_b``, checked (from 0 to the end, every problem non-empty)."""
    if a_off[0] != 0 or b_off[0] != 0 or a_off[-1] != len_a or b_off[-1] != len_b:
        raise ValueError("offsets must start at 0 and end at len(a) / len(b)")
    ms, ns = np.diff(a_off), np.diff(b_off)
    if (ms <= 0).any() or (ns <= 0).any():
        raise ValueError("offsets must be strictly increasing (every problem non-empty)")
    return ms, ns


def _batched_layout(
    a,
    b,
    C,
    a_mask,
    b_mask,
    a_offsets,
    b_offsets,
    *,
    balance: bool,
    scan_cost: bool = True,
    allow_inf: bool = False,
):
    """Validate batched input; return flat a, a_off, b, b_off, C, c_off, the plan shape and
    the range of all costs. With ``scan_cost=False`` C is not read here (range None): the
    caller's kernel must reject NaN/inf itself (emd_batched does, per problem, while it
    copies each cost block)."""
    for x, name in ((a, "a"), (b, "b"), (C, "C")):
        reject_gpu(x, name, "geoml.ot batched solvers")
    if (a_offsets is None) != (b_offsets is None):
        raise ValueError("give both a_offsets and b_offsets (ragged layout) or neither (padded)")
    if a_offsets is None:
        C, crange = _finite_cost(C, 3, scan_cost, allow_inf)
        B, m, n = C.shape
        a = as_float_array(a, "a", ndim=2, dtype=np.float64)
        b = as_float_array(b, "b", ndim=2, dtype=np.float64)
        if a.shape != (B, m) or b.shape != (B, n):
            raise ValueError(
                f"padded layout needs a (B, m), b (B, n), C (B, m, n); got "
                f"a {a.shape}, b {b.shape}, C {C.shape}"
            )
        for mask, w, name in ((a_mask, a, "a_mask"), (b_mask, b, "b_mask")):
            if mask is not None:
                mask = np.asarray(mask)
                if mask.shape != w.shape or mask.dtype != bool:
                    raise ValueError(f"{name} must be a bool array of shape {w.shape}")
        if a_mask is not None:
            a = np.where(a_mask, a, 0.0)
        if b_mask is not None:
            b = np.where(b_mask, b, 0.0)
        a_off = np.arange(B + 1, dtype=np.int64) * m
        b_off = np.arange(B + 1, dtype=np.int64) * n
        c_off = np.arange(B, dtype=np.int64) * (m * n)
        plan_shape = (B, m, n)
    else:
        if a_mask is not None or b_mask is not None:
            raise ValueError("masks apply to the padded layout only; the ragged layout has none")
        a = as_float_array(a, "a", ndim=1, dtype=np.float64)
        b = as_float_array(b, "b", ndim=1, dtype=np.float64)
        C, crange = _finite_cost(C, 1, scan_cost, allow_inf)
        a_off, b_off = _ragged_offsets(a_offsets, b_offsets)
        ms, ns = _ragged_sizes(a_off, b_off, a.shape[0], b.shape[0])
        sizes = ms * ns
        c_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if C.shape[0] != int(sizes.sum()):
            raise ValueError(
                f"ragged C must hold sum(m_k * n_k) = {int(sizes.sum())} values "
                f"(each problem's (m_k, n_k) block row-major); got {C.shape[0]}"
            )
        plan_shape = C.shape
    if (a < 0).any() or (b < 0).any():
        raise ValueError("a and b must be >= 0 (masses)")
    if a_offsets is None:
        sa, sb = a.sum(1), b.sum(1)
    else:
        sa, sb = np.add.reduceat(a, a_off[:-1]), np.add.reduceat(b, b_off[:-1])
    if (sa <= 0).any() or (sb <= 0).any():
        k = int(np.flatnonzero((sa <= 0) | (sb <= 0))[0])
        raise ValueError(f"problem {k} has zero total mass in a or b")
    if balance:
        bad = np.abs(sa - sb) > MASS_RTOL * np.maximum(sa, sb)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"problem {k}: a and b must have the same total mass (relative "
                f"tolerance {MASS_RTOL:g}); got {float(sa[k])!r} and {float(sb[k])!r}"
            )
        scale = sa / sb
        if (scale != 1).any():
            b = b * (np.repeat(scale, np.diff(b_off)) if a_offsets is not None else scale[:, None])
    return (
        np.ascontiguousarray(a.ravel()),
        a_off,
        np.ascontiguousarray(b.ravel()),
        b_off,
        np.ascontiguousarray(C.ravel()),
        c_off,
        plan_shape,
        crange,
    )


def emd_batched(
    a,
    b,
    C,
    *,
    a_mask=None,
    b_mask=None,
    a_offsets=None,
    b_offsets=None,
    return_plans: bool = False,
    max_iter: int | None = None,
    n_jobs: int | None = None,
) -> BatchedOTResult:
    """Many independent exact OT problems in one call, parallel over problems (OpenMP).

    Each problem is solved by the network simplex of :func:`emd` with a per-thread reusable
    workspace (no allocation per problem once warm); problems with at most 32 rows and 32
    columns of positive mass run a fixed-size variant of it (stack arrays, AVX2 pricing).
    Only the costs between bins of positive mass are read: NaN or ``-inf`` there raises
    ``ValueError``, ``+inf`` is a forbidden pair as in :func:`emd` (an infeasible problem
    raises ``ValueError`` naming it), and padding entries are ignored whatever they hold.

    Parameters
    ----------
    a, b, C : array-like
        **Padded layout** (default): ``a`` of shape (B, m), ``b`` (B, n), ``C`` (B, m, n).
        Problems smaller than (m, n) are padded with zero weights (or masked, below): zero
        weight bins are ignored exactly. **Ragged layout** (with ``a_offsets``/``b_offsets``):
        ``a`` and ``b`` are the 1-D concatenations of the histograms, problem ``k`` using
        ``a[a_offsets[k]:a_offsets[k+1]]`` (size m_k) and likewise for ``b``; ``C`` is 1-D,
        the concatenation of each problem's (m_k, n_k) block in row-major order.
        Every problem needs equal masses in ``a`` and ``b`` (relative tolerance
        :data:`MASS_RTOL`).
    a_mask, b_mask : bool array-like of shape (B, m) / (B, n), optional
        Padded layout only: False marks padding (weight treated as 0).
    a_offsets, b_offsets : array-like of int, shape (B + 1,), optional
        Ragged layout: start offsets of each problem, beginning at 0 and ending at
        ``len(a)`` / ``len(b)``.
    return_plans : bool
        Also return the optimal plans (same layout as ``C``).
    max_iter : int, optional
        Pivot limit per problem (default: none).
    n_jobs : int, optional
        Threads. None: OpenMP default; -1: all cores.

    Returns
    -------
    BatchedOTResult
        ``cost`` (B,), ``converged`` (B,), ``plans`` ((B, m, n) padded / flat ragged, or None).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> a = np.array([[0.5, 0.5], [1.0, 0.0]])
    >>> b = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> C = np.array([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 2.0], [3.0, 0.0]]])
    >>> geoml.ot.emd_batched(a, b, C).cost
    array([0., 1.])
    """
    res = _emd_batched_quiet(
        a, b, C, a_mask, b_mask, a_offsets, b_offsets, return_plans, max_iter, n_jobs
    )
    if not res.converged.all():
        warnings.warn(
            f"emd_batched: {int((~res.converged).sum())} problem(s) hit max_iter="
            f"{max_iter} before optimality",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return res


def _emd_batched_quiet(
    a, b, C, a_mask, b_mask, a_offsets, b_offsets, return_plans, max_iter, n_jobs, where=""
) -> BatchedOTResult:
    """:func:`emd_batched` without its max_iter warning (the caller warns: geoml.dask's tasks
    return the flags and the client warns once, as warning filters are not thread-safe);
    ``where`` qualifies the problem number in error messages."""
    # C is not scanned for NaN/inf here: the kernel checks each cost block as it copies it
    # (status 3), saving a pass over the largest input
    fa, a_off, fb, b_off, fC, c_off, plan_shape, _ = _batched_layout(
        a, b, C, a_mask, b_mask, a_offsets, b_offsets, balance=True, scan_cost=False
    )
    cost, status, plans = _core.emd_batched(
        fa,
        a_off,
        fb,
        b_off,
        fC,
        c_off,
        max_iter=_max_iter(max_iter),
        want_plans=bool(return_plans),
        n_jobs=check_n_jobs(n_jobs),
    )
    bad = status == _EMD_NONFINITE
    if bad.any():
        raise ValueError(
            f"C contains NaN or -inf (problem {int(np.flatnonzero(bad)[0])}{where}, "
            "between bins of positive mass; +inf marks a forbidden pair)"
        )
    for k in np.flatnonzero(status == 2):  # costs near float64's limit: as in emd
        ak, bk, Ck = _batched_problem(fa, a_off, fb, b_off, fC, c_off, int(k))
        Ck = Ck[np.ix_(ak > 0, bk > 0)]  # only these costs are read (padding may be NaN)
        if (scale := _huge_cost_scale(Ck)) == 1.0:  # (+inf, a forbidden pair, stays +inf)
            continue
        block = fC[c_off[k] : c_off[k] + ak.size * bk.size].reshape(ak.size, bk.size)
        with np.errstate(invalid="ignore"):  # NaN padding (dropped bins) stays NaN
            block = block * scale
        ck, status[k], _, plan, _, _ = _core.emd(
            ak, bk, block, max_iter=_max_iter(max_iter), sparse=False
        )
        cost[k] = ck / scale
        if plans is not None:
            plans[c_off[k] : c_off[k] + plan.size] = plan.reshape(-1)
    bad = status == 2
    if bad.any():
        raise _infeasible(f"emd_batched (problem {int(np.flatnonzero(bad)[0])}{where})")
    if plans is not None:
        plans = plans.reshape(plan_shape)
    return BatchedOTResult(cost, status == 0, plans)


# ---------------------------------------------------------------------------- Sinkhorn


class SinkhornResult(NamedTuple):
    """Entropic OT solution (see :func:`sinkhorn`, :func:`sinkhorn_unbalanced`)."""

    plan: np.ndarray
    """Transport plan, shape (m, n)."""
    cost: float
    """Transport cost ``<plan, C>`` (without the entropy term)."""
    f: np.ndarray
    """Row potentials, shape (m,)."""
    g: np.ndarray
    """Column potentials, shape (n,)."""
    n_iter: int
    """Scaling iterations over all eps stages."""
    marginal_error: float
    """``||plan 1 - a||_1 + ||plan^T 1 - b||_1`` (for the unbalanced problem: how far the
    relaxed marginals are from a and b, not an error)."""
    converged: bool
    """Whether the stopping criterion was met within ``max_iter``."""


class PointsSinkhornResult(NamedTuple):
    """Entropic OT between point clouds (see :func:`sinkhorn_points`); no plan is formed."""

    cost: float
    """Transport cost ``<P, C>``."""
    f: np.ndarray
    """Potentials on x, shape (m,)."""
    g: np.ndarray
    """Potentials on y, shape (n,)."""
    n_iter: int
    marginal_error: float
    """L1 marginal error of the implicit plan (balanced); otherwise the certified bound on the
    potentials' distance to the fixed point (see :func:`sinkhorn_unbalanced`)."""
    converged: bool


class BatchedSinkhornResult(NamedTuple):
    """Solutions of many small entropic problems (see :func:`sinkhorn_batched`)."""

    cost: np.ndarray
    """Per-problem ``<P_k, C_k>``, shape (B,)."""
    converged: np.ndarray
    """Per-problem flag, bool (B,)."""
    n_iter: np.ndarray
    """Per-problem iterations, int64 (B,)."""
    error: np.ndarray
    """Per-problem final stopping quantity (L1 marginal error when balanced), (B,)."""
    plans: np.ndarray | None
    """Plans when requested (layout of ``C``), else None."""


def _check_eps(eps, name="eps") -> float:
    eps = check_real(eps, name)  # a number: "1e-3" (float() reads it) is a TypeError
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {eps!r}")
    return eps


def _check_tol(tol) -> float:
    return check_tol(tol)


STAGE_TOL = 1e-2
"""Relative marginal error that ends an intermediate annealing stage."""

LOOSE_TOL = 1e-2
"""Relative tolerance from which ``eps_schedule="auto"`` skips annealing (a cold start then
reaches the tolerance in a few iterations, cheaper than one kernel per stage)."""


def _schedule(
    eps_schedule, eps: float, cost_range, warm: bool, loose: bool = False
) -> tuple[float, float]:
    """(eps_start, factor) for the C++ annealing loop; eps_start <= eps means none."""
    if not np.isfinite(cost_range):
        raise ValueError(
            "the cost range overflows float64 (costs too large for this p); "
            "rescale the points or the cost"
        )
    ratio, factor = _schedule_rule(eps_schedule, warm, loose)
    return (cost_range / 2 if eps < ratio * cost_range else 0.0), factor


def _schedule_rule(eps_schedule, warm: bool, loose: bool = False) -> tuple[float, float]:
    """(ratio, factor): anneal from ``cost_range / 2`` by ``factor`` when
    ``eps < ratio * cost_range`` (ratio 0: never)."""
    if isinstance(eps_schedule, str):
        if eps_schedule == "none":
            return 0.0, 0.5
        if eps_schedule != "auto":
            raise ValueError(
                f"eps_schedule={eps_schedule!r}; use 'auto', 'none' or a factor in (0, 1)"
            )
        return (0.0, 0.5) if warm or loose else (1e-3, 0.125)
    if isinstance(eps_schedule, bool) or not isinstance(eps_schedule, numbers.Real):
        raise TypeError(
            f"eps_schedule must be 'auto', 'none' or a factor in (0, 1); got {eps_schedule!r}"
        )
    factor = float(eps_schedule)
    if not 0 < factor < 1:
        raise ValueError(
            f"eps_schedule as a number is the eps ratio between stages and must "
            f"be in (0, 1); got {factor}"
        )
    return 0.5, factor


def _warm(warm_start, m: int, n: int):
    if warm_start is None:
        return np.zeros(m), np.zeros(n)
    try:
        f0, g0 = warm_start
    except (TypeError, ValueError):
        raise ValueError("warm_start must be a pair (f, g) of potentials") from None
    f0 = as_float_array(f0, "warm_start f", ndim=1, dtype=np.float64)
    g0 = as_float_array(g0, "warm_start g", ndim=1, dtype=np.float64)
    if f0.shape[0] != m or g0.shape[0] != n:
        raise ValueError(f"warm_start potentials must have shapes ({m},) and ({n},)")
    return f0, g0


def _check_representable(cost, what: str, balanced: bool = False) -> None:
    """An unbalanced plan's mass grows like exp(-min C / (2 rho)): past float64 it is inf/NaN.
    A balanced plan's cannot; its cost is not finite when the potentials' rounding (about
    ``eps_machine max |C|``) exceeds ``eps`` by hundreds (costs of 1e150 at eps = 0.1)."""
    if not np.isfinite(cost).all():
        if balanced:
            raise ValueError(
                f"{what}: the iteration overflowed float64: the costs are too large for this "
                "eps (the potentials' rounding, ~1e-16 max |C|, exceeds eps many times); "
                "raise eps or rescale C"
            )
        raise ValueError(
            f"{what}: the solution overflows float64 (plan mass exp(-C / (2 rho)) "
            "for costs far below 0); shift C to be >= 0 or raise rho and eps"
        )


def _unbalanced_hint(eps: float, rho: float) -> str:
    """Why an unbalanced solve may not converge: its contraction rate rho / (rho + eps)."""
    if rho < 0:
        return ""
    if not rho / (rho + eps) < 1.0:
        return (
            f"; at eps / rho = {eps / rho:.3g} the unbalanced contraction factor "
            "rho / (rho + eps) rounds to 1, so the iteration cannot converge: raise eps"
        )
    return (
        f"; the unbalanced iteration contracts by rho / (rho + eps) = {rho / (rho + eps):.6g} "
        f"per half step (about {np.log(1e9) * (rho + eps) / (2 * eps):.3g} iterations "
        "per 9 digits)"
    )


def _sinkhorn(
    a, b, C, eps, rho, max_iter, tol, warm_start, eps_schedule, n_jobs, what, anderson=True
):
    # anderson=False: SOR from the start, the iteration of geoml <= 0.1 (bench/tests compare
    # sinkhorn_newton with it)
    reject_gpu(C, "C", "geoml.ot")
    C = as_float_array(C, "C", ndim=2, dtype=np.float64, finite=False)
    m, n = C.shape
    a = _histogram(a, m, "a")
    b = _histogram(b, n, "b")
    if rho < 0:
        b = _balance(a, b)
    eps = _check_eps(eps)
    tol = _check_tol(tol)
    max_iter = _max_iter(max_iter)
    f0, g0 = _warm(warm_start, m, n)
    # balanced: solved at unit mass when the mass is extreme (exact powers of two)
    mscale = _mass_scale(float(a.sum())) if rho < 0 else 1.0
    if mscale != 1.0:
        a, b, shift = a * mscale, b * mscale, eps * math.log(mscale)
        f0 = f0 + shift
    warm, loose = warm_start is not None, rho < 0 and tol >= LOOSE_TOL
    ratio, factor = _schedule_rule(eps_schedule, warm, loose)
    mass = float(a.sum())
    abs_tol = tol * mass if rho < 0 else tol
    params = _core.SinkhornParams(
        eps=eps,
        rho=rho,
        max_iter=max_iter,
        tol=abs_tol,
        eps_factor=factor,
        stage_tol=STAGE_TOL,
        start_ratio=ratio,
        anderson=anderson,
    )
    n_jobs = check_n_jobs(n_jobs)
    # C is checked inside the first kernel build (no separate pass over it); the annealing
    # rule is applied there too. Not finite (+inf forbidden pairs, or bad input): the checks
    # of _cost_matrix, then the solve with the schedule from its range.
    P, f, g, n_iter, err, conv, cost, merr, scan = _core.sinkhorn(
        a, b, C, f0, g0, params=params, n_jobs=n_jobs, scan=True
    )
    forbidden = False
    if not scan[2]:
        C, crange, forbidden = _cost_matrix(C)
        if forbidden:
            _check_support(a, b, C, what)
        params.eps_start = _schedule(eps_schedule, eps, crange, warm, loose)[0]
        params.start_ratio = 0.0
        P, f, g, n_iter, err, conv, cost, merr, _ = _core.sinkhorn(
            a, b, C, f0, g0, params=params, n_jobs=n_jobs
        )
    if mscale != 1.0:
        P, cost, merr, f = P / mscale, cost / mscale, merr / mscale, f - shift
    _check_representable(cost, what, rho < 0)
    if not conv and forbidden and rho < 0 and not _feasible(a, b, C):
        raise _infeasible(what)
    if not conv:
        warnings.warn(
            f"{what} did not reach tol={tol:g} in max_iter={max_iter} iterations "
            f"(last error {err / (mass if rho < 0 else 1):.3g}); raise max_iter or "
            f"eps{_unbalanced_hint(eps, rho)}",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return SinkhornResult(P, float(cost), f, g, int(n_iter), float(merr), bool(conv))


def sinkhorn(
    a,
    b,
    C,
    eps: float,
    *,
    max_iter: int = 10000,
    tol: float = 1e-9,
    warm_start=None,
    eps_schedule="auto",
    n_jobs: int | None = None,
) -> SinkhornResult:
    """Entropic optimal transport by a stabilised (log-domain) Sinkhorn with eps annealing.

    Solves ``min <P, C> + eps * KL(P | 1)`` over ``P >= 0`` with ``P 1 = a``, ``P^T 1 = b``.
    Iterations work on a kernel ``exp((f + g - C) / eps)`` whose potentials absorb the
    scalings as soon as these leave ``[e^-50, e^50]``; a row or column that underflows gets an
    exact log-sum-exp update. So no overflow, underflow-to-NaN or division by zero occurs for
    any ``eps > 0`` (checked down to 1e-4 of the cost range). One iteration is a single pass
    over the kernel (each row's scaling is updated and its contribution to ``K^T u``
    accumulated at once), then the column update. The column potentials are accelerated by
    Anderson mixing of the last 5 iterates (8 iterations instead of 13 at ``eps = 0.1`` of the
    cost range); where the mixing stalls (best error not halved in 20 iterations) the stage
    restarts over-relaxed with Young's optimal factor estimated from the observed convergence
    rate (as do kernels below 2^14 entries); for very small ``eps`` the iteration is also
    annealed (see ``eps_schedule``). When ``m n >= 65536`` and no kernel exponent
    ``(f_i + g_j - C_ij) / eps`` exceeds 88, the kernel is stored in float32 inside the
    plan's memory, halving the memory traffic of each iteration (entries below ``e^-87`` are
    float32 subnormals or 0, an absolute error below 1.2e-38; the scalings are then absorbed
    early enough that these errors stay below 1e-3 of ``tol`` in the plan); products and sums
    stay float64, so the result is the exact Sinkhorn fixed point of the rounded kernel: costs
    agree with a float64 solve to ~1e-7 relative and the reported marginal error is that of
    the returned plan. O(m n) per iteration; memory: the
    plan (m, n) plus O(m + n).

    Parameters
    ----------
    a, b : array-like of shape (m,) / (n,), or None
        Histograms ``>= 0`` with equal totals (relative tolerance :data:`MASS_RTOL`; ``b`` is
        rescaled to ``sum(a)``). None: uniform.
    C : array-like of shape (m, n)
        Cost matrix: finite values, or ``+inf`` for a forbidden pair (kernel entry exactly 0,
        as in POT's ``sinkhorn_log``). A bin of positive mass with only forbidden pairs
        raises ``ValueError`` at once; other infeasible patterns are detected when the
        iterations fail to converge (an exact feasibility check then raises ``ValueError``).
        NaN and ``-inf`` raise ``ValueError``.
    eps : float
        Entropic regularisation, > 0, in the units of ``C``.
    max_iter : int
        Iteration budget over all eps stages.
    tol : float
        Stop when the L1 marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1 <= tol * sum(a)``.
    warm_start : (f, g), optional
        Initial potentials, e.g. from a previous solve at a nearby eps (disables the automatic
        annealing).
    eps_schedule : "auto", "none" or float
        ``"auto"``: anneal from ``(max C - min C) / 2`` by factors of 8 when ``eps`` is below
        1/1000 of the cost range, there is no warm start and ``tol`` is below 1e-2 (above
        that, the accelerated iteration converges as fast from a cold start); ``"none"``:
        solve at ``eps`` only; a float in (0, 1): anneal with that ratio between stages.
    n_jobs : int, optional
        Threads. None: OpenMP default; -1: all cores.

    Returns
    -------
    SinkhornResult
        ``plan`` (m, n) ``= exp((f_i + g_j - C_ij) / eps)``, ``cost = <plan, C>``, ``f``,
        ``g``, ``n_iter``, ``marginal_error``, ``converged``. Non-convergence also issues a
        ``RuntimeWarning``.

    References
    ----------
    Cuturi, "Sinkhorn distances", NeurIPS 2013; Schmitzer, "Stabilized sparse scaling
    algorithms for entropy regularized transport problems", SIAM J. Sci. Comput. 2019;
    Thibault, Chizat, Dossal & Papadakis, "Overrelaxed Sinkhorn-Knopp algorithm for regularized
    optimal transport", 2017; Walker & Ni, "Anderson acceleration for fixed-point
    iterations", SIAM J. Numer. Anal. 2011.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = geoml.ot.sinkhorn([0.5, 0.5], [0.5, 0.5], C, eps=0.1)
    >>> np.round(res.plan, 4)
    array([[0.5, 0. ],
           [0. , 0.5]])
    >>> res.converged
    True
    """
    return _sinkhorn(
        a, b, C, eps, -1.0, max_iter, tol, warm_start, eps_schedule, n_jobs, "sinkhorn"
    )


def sinkhorn_unbalanced(
    a,
    b,
    C,
    eps: float,
    rho: float,
    *,
    max_iter: int = 10000,
    tol: float = 1e-9,
    warm_start=None,
    eps_schedule="none",
    n_jobs: int | None = None,
) -> SinkhornResult:
    """Unbalanced entropic OT with KL-relaxed marginals (Chizat et al. 2018).

    Solves ``min <P, C> + eps KL(P | a b^T) + rho KL(P 1 | a) + rho KL(P^T 1 | b)`` (POT's
    ``sinkhorn_unbalanced`` with ``reg=eps, reg_m=rho, reg_type="kl"``) by the stabilised
    scaling iterations ``u = (a / K v)^(rho / (rho + eps))`` of :func:`sinkhorn`. Masses of
    ``a`` and ``b`` may differ.

    Parameters
    ----------
    a, b : array-like of shape (m,) / (n,), or None
        Non-negative measures (any totals). None: uniform with mass 1.
    C : array-like of shape (m, n)
        Cost matrix (``+inf``: forbidden pair, as in :func:`sinkhorn`).
    eps : float
        Entropic regularisation, > 0.
    rho : float
        Marginal relaxation strength, > 0 (``rho -> inf`` approaches :func:`sinkhorn`).
    max_iter, warm_start, eps_schedule, n_jobs
        As in :func:`sinkhorn` (annealing is off by default here).
    tol : float
        Stop when the potentials are certified within ``tol`` (sup norm, units of ``C``) of
        the fixed point: each half step contracts by ``lam = rho / (rho + eps)``, so the
        distance is at most ``lam^2 / (1 - lam^2) = rho^2 / (eps (2 rho + eps))`` times the
        last iteration's change (never less than that factor times a rounding allowance of
        2 ulp of the potentials). Small ``eps / rho`` thus needs about
        ``(rho / eps) log(1 / tol) / 2`` iterations; where ``lam`` rounds to 1
        (``eps / rho < ~1e-16``) the iteration cannot converge and is not run
        (``converged=False``, ``RuntimeWarning``).

    Returns
    -------
    SinkhornResult
        As in :func:`sinkhorn`; ``marginal_error`` is the L1 gap between the plan's marginals
        and ``a``, ``b`` (expected to be non-zero). ``f``, ``g``: ``eps * log`` of the scalings,
        so that ``plan = a_i b_j exp((f_i + g_j - C_ij) / eps)``.

    References
    ----------
    Chizat, Peyré, Schmitzer & Vialard, "Scaling algorithms for unbalanced optimal transport
    problems", Math. Comp. 2018.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = geoml.ot.sinkhorn_unbalanced([1.0, 1.0], [2.0, 0.5], C, eps=0.05, rho=1.0)
    >>> np.round(res.plan.sum(1), 3), res.converged
    (array([1.424, 0.703]), True)
    """
    rho = _check_eps(rho, "rho")
    return _sinkhorn(
        a, b, C, eps, rho, max_iter, tol, warm_start, eps_schedule, n_jobs, "sinkhorn_unbalanced"
    )


def sinkhorn_points(
    x,
    y,
    eps: float,
    *,
    a=None,
    b=None,
    p: int = 2,
    rho: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    eps_schedule="auto",
    n_jobs: int | None = None,
) -> PointsSinkhornResult:
    """Entropic OT between point clouds with the cost computed on the fly (memory O(m + n)).

    Cost ``C_ij = |x_i - y_j|^p`` (``p=2``: squared Euclidean, ``p=1``: Euclidean) is never
    stored: each log-domain half step recomputes a row of costs into an O(n) per-thread buffer
    and takes its log-sum-exp with a vectorised exponential (AVX2 when available), parallel
    over rows. This is the GeomLoss-style "online" path for large clouds; the time is
    O(m n d) per iteration. eps is annealed as in :func:`sinkhorn`.

    Parameters
    ----------
    x : array-like of shape (m, d)
    y : array-like of shape (n, d)
        Point clouds (float64 is used).
    eps : float
        Entropic regularisation, > 0, in the units of the cost.
    a, b : array-like of shape (m,) / (n,), optional
        Weights ``>= 0`` (default uniform); equal totals unless ``rho`` is given.
    p : {1, 2}
        Exponent of the Euclidean distance in the cost.
    rho : float, optional
        Marginal KL relaxation as in :func:`sinkhorn_unbalanced`; None: balanced.
    max_iter : int
        Iteration budget (all stages).
    tol : float
        Balanced: stop at L1 marginal error ``<= tol * sum(a)``; unbalanced: at a certified
        potential error ``<= tol`` (see :func:`sinkhorn_unbalanced`).
    eps_schedule : "auto", "none" or float
        As in :func:`sinkhorn`, with the cost range estimated as the squared (p=2) or plain
        diameter of the bounding box of both clouds.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    PointsSinkhornResult
        ``cost`` (``<P, C>``), potentials ``f`` (m,), ``g`` (n,) with
        ``P_ij = exp((f_i + g_j - C_ij) / eps)`` (balanced), ``n_iter``, ``marginal_error``,
        ``converged``.

    References
    ----------
    Feydy et al., "Interpolating between optimal transport and MMD using Sinkhorn
    divergences", AISTATS 2019 (GeomLoss).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> x = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> res = geoml.ot.sinkhorn_points(x, x + [0.0, 1.0], eps=0.01)
    >>> round(res.cost, 6), res.converged
    (1.0, True)
    """
    for v, name in ((x, "x"), (y, "y")):
        reject_gpu(v, name, "sinkhorn_points")
    x = as_float_array(x, "x", ndim=2, dtype=np.float64)
    y = as_float_array(y, "y", ndim=2, dtype=np.float64)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension; got {x.shape[1]} and {y.shape[1]}")
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"p={p!r}: only p=1 (Euclidean) and p=2 (squared Euclidean) are supported")
    m, n = x.shape[0], y.shape[0]
    a = _histogram(a, m, "a")
    b = _histogram(b, n, "b")
    if rho is None:
        rho = -1.0
        b = _balance(a, b)
    else:
        rho = _check_eps(rho, "rho")
    eps = _check_eps(eps)
    tol = _check_tol(tol)
    max_iter = _max_iter(max_iter)
    lo = np.minimum(x.min(0), y.min(0))
    hi = np.maximum(x.max(0), y.max(0))
    diam = float(np.linalg.norm(hi - lo))
    start, factor = _schedule(eps_schedule, eps, diam**p, False, rho < 0 and tol >= LOOSE_TOL)
    mass = float(a.sum())
    abs_tol = tol * mass if rho < 0 else tol
    params = _core.SinkhornParams(
        eps=eps,
        rho=rho,
        max_iter=max_iter,
        tol=abs_tol,
        eps_start=start,
        eps_factor=factor,
        stage_tol=STAGE_TOL,
    )
    cost, f, g, n_iter, err, conv = _core.sinkhorn_points(
        x, y, a, b, power=int(p), params=params, n_jobs=check_n_jobs(n_jobs)
    )
    if not conv:
        warnings.warn(
            f"sinkhorn_points did not reach tol={tol:g} in max_iter={max_iter} "
            f"iterations (last error {err / (mass if rho < 0 else 1):.3g})"
            f"{_unbalanced_hint(eps, rho)}",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    _check_representable(cost, "sinkhorn_points", rho < 0)
    return PointsSinkhornResult(float(cost), f, g, int(n_iter), float(err), bool(conv))


def _batched_params(rho, eps, tol, max_iter, eps_schedule, crange, masses):
    """The checked parameters of :func:`sinkhorn_batched` (``rho`` None: balanced) as
    ``(params, rho, eps, tol, max_iter)``; ``crange`` is the cost range of the whole batch and
    ``masses`` its problems' masses of ``a`` (or their minimum)."""
    balanced = rho is None
    rho = -1.0 if balanced else _check_eps(rho, "rho")
    eps = _check_eps(eps)
    tol = _check_tol(tol)
    max_iter = _max_iter(max_iter)
    start, factor = _schedule(eps_schedule, eps, crange, False, balanced and tol >= LOOSE_TOL)
    # the C++ tolerance is absolute: problems are scaled to unit mass there by tol * mass
    scale = float(np.min(masses)) if balanced else 1.0
    params = _core.SinkhornParams(
        eps=eps,
        rho=rho,
        max_iter=max_iter,
        tol=tol * scale,
        eps_start=start,
        eps_factor=factor,
        stage_tol=STAGE_TOL,
    )
    return params, rho, eps, tol, max_iter


def sinkhorn_batched(
    a,
    b,
    C,
    eps: float,
    *,
    rho: float | None = None,
    a_mask=None,
    b_mask=None,
    a_offsets=None,
    b_offsets=None,
    return_plans: bool = False,
    max_iter: int = 10000,
    tol: float = 1e-9,
    eps_schedule="auto",
    n_jobs: int | None = None,
) -> BatchedSinkhornResult:
    """Many independent small entropic OT problems in one call, parallel over problems.

    Each problem is solved by the stabilised Sinkhorn of :func:`sinkhorn` (or
    :func:`sinkhorn_unbalanced` when ``rho`` is given) on one thread; OpenMP runs problems in
    parallel. Layouts (padded with masks, or ragged with offsets) are those of
    :func:`emd_batched`; zero-weight bins are ignored.

    Parameters
    ----------
    a, b, C, a_mask, b_mask, a_offsets, b_offsets, return_plans
        As in :func:`emd_batched`; costs may also be ``+inf`` (a forbidden pair, as in
        :func:`sinkhorn`). A problem whose forbidden pairs leave no plan with its marginals
        raises ``ValueError``.
    eps : float
        Entropic regularisation, > 0 (the same for all problems).
    rho : float, optional
        Marginal relaxation (unbalanced problems); None: balanced, masses must match.
    max_iter, tol, eps_schedule
        Per problem, as in :func:`sinkhorn` (tol is scaled by the smallest problem mass). The
        annealing start is half the largest cost range over all problems.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    BatchedSinkhornResult
        ``cost`` (B,), ``converged`` (B,), ``n_iter`` (B,), ``error`` (B,), ``plans``.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> a = np.full((3, 2), 0.5)
    >>> C = np.stack([np.array([[0.0, 1.0], [1.0, 0.0]])] * 3)
    >>> np.round(geoml.ot.sinkhorn_batched(a, a, C, eps=0.05).cost, 6)
    array([0., 0., 0.])
    """
    balanced = rho is None
    fa, a_off, fb, b_off, fC, c_off, plan_shape, crange = _batched_layout(
        a, b, C, a_mask, b_mask, a_offsets, b_offsets, balance=balanced, allow_inf=True
    )
    # problems with forbidden (+inf) pairs: each needs an allowed pair per bin of mass
    forbidden = np.zeros(len(c_off), dtype=bool)
    if fC.size and not _core.value_range(fC, n_jobs=0)[2]:  # (one SIMD pass, no temporary)
        forbidden = np.logical_or.reduceat(np.isposinf(fC), c_off)
        for k in np.flatnonzero(forbidden):
            ak, bk, Ck = _batched_problem(fa, a_off, fb, b_off, fC, c_off, int(k))
            _check_support(ak, bk, Ck, f"sinkhorn_batched (problem {int(k)})")
    masses = np.add.reduceat(fa, a_off[:-1])
    # balanced problems of extreme mass are solved at unit mass (see _mass_scale)
    mscale = np.ones(len(masses))
    far = (masses < 1.0 / _MASS_RANGE) | (masses > _MASS_RANGE)
    if balanced and far.any():
        mscale[far] = np.ldexp(1.0, -np.frexp(masses[far])[1])
    rescaled = (mscale != 1.0).any()
    if rescaled:
        fa = fa * np.repeat(mscale, np.diff(a_off))
        fb = fb * np.repeat(mscale, np.diff(b_off))
        masses = masses * mscale
    params, rho, eps, tol, max_iter = _batched_params(
        rho, eps, tol, max_iter, eps_schedule, crange, masses
    )
    cost, err, n_iter, conv, plans = _core.sinkhorn_batched(
        fa,
        a_off,
        fb,
        b_off,
        fC,
        c_off,
        params=params,
        want_plans=bool(return_plans),
        n_jobs=check_n_jobs(n_jobs),
    )
    if rescaled:
        cost, err = cost / mscale, err / mscale
        if plans is not None:
            plans = plans / np.repeat(mscale, np.diff(a_off) * np.diff(b_off))
    if balanced:
        for k in np.flatnonzero(forbidden & ~conv):
            ak, bk, Ck = _batched_problem(fa, a_off, fb, b_off, fC, c_off, int(k))
            if not _feasible(ak, bk, Ck):
                raise _infeasible(f"sinkhorn_batched (problem {int(k)})")
    _check_representable(cost, "sinkhorn_batched", rho < 0)  # (refused: no warning first)
    if not conv.all():
        warnings.warn(
            f"sinkhorn_batched: {int((~conv).sum())} problem(s) did not reach "
            f"tol={tol:g} in max_iter={max_iter} iterations{_unbalanced_hint(eps, rho)}",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    if plans is not None:
        plans = plans.reshape(plan_shape)
    return BatchedSinkhornResult(cost, conv, n_iter, err, plans)
