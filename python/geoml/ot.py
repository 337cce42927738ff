"""Optimal transport: exact network simplex, log-domain Sinkhorn, batched small problems.

CPU kernels in ``cpp/ot.cpp`` (float64 throughout). Histograms are non-negative 1-D arrays,
costs dense ``(m, n)`` matrices; ``a=None`` / ``b=None`` mean uniform weights ``1/m``, ``1/n``.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import as_float_array, check_int, check_n_jobs, reject_gpu

__all__ = ["BatchedOTResult", "EMDResult", "MASS_RTOL", "emd", "emd_batched"]

MASS_RTOL = 1e-6
"""Relative tolerance on ``|sum(a) - sum(b)| / max(sum(a), sum(b))`` for balanced problems.

Within it, ``b`` is rescaled to the mass of ``a`` before solving; beyond it ``ValueError``."""


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


def _cost_matrix(C) -> np.ndarray:
    reject_gpu(C, "C", "geoml.ot")
    return as_float_array(C, "C", ndim=2, dtype=np.float64)


def _balance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Check equal masses within MASS_RTOL; return b rescaled to the mass of a."""
    sa, sb = float(a.sum()), float(b.sum())
    if abs(sa - sb) > MASS_RTOL * max(sa, sb):
        raise ValueError(f"a and b must have the same total mass (relative tolerance "
                         f"{MASS_RTOL:g}); got sum(a)={sa!r}, sum(b)={sb!r}. Normalise them, "
                         "or use sinkhorn_unbalanced")
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
    arcs), the spanning tree stored as parent/thread/depth arrays, an artificial-root start
    and the strongly-feasible leaving-arc rule (no cycling). Zero-mass bins are dropped before
    solving. Time is typically a few seconds for m = n = 5000; memory is
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
        Cost matrix (any finite real values).
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
    C = _cost_matrix(C)
    m, n = C.shape
    a = _histogram(a, m, "a")
    b = _balance(a, _histogram(b, n, "b"))
    cost, status, n_piv, plan, f, g = _core.emd(a, b, C, _max_iter(max_iter), bool(sparse))
    if status == 2:  # residual mass on artificial arcs: cannot happen after _balance
        raise RuntimeError("emd: masses could not be balanced (internal error)")
    converged = status == 0
    if not converged:
        warnings.warn(f"emd stopped after max_iter={max_iter} pivots before optimality; the "
                      "plan is partial and not optimal", RuntimeWarning, stacklevel=2)
    if sparse:
        ri, ci, val = plan
        plan = sp.csr_matrix((val, (ri, ci)), shape=(m, n))
    return EMDResult(plan, float(cost), f, g, int(n_piv), converged)


def _batched_layout(a, b, C, a_mask, b_mask, a_offsets, b_offsets, *, balance: bool):
    """Validate batched input; return flat a, a_off, b, b_off, C, c_off and the plan shape."""
    for x, name in ((a, "a"), (b, "b"), (C, "C")):
        reject_gpu(x, name, "geoml.ot batched solvers")
    if (a_offsets is None) != (b_offsets is None):
        raise ValueError("give both a_offsets and b_offsets (ragged layout) or neither (padded)")
    if a_offsets is None:
        C = as_float_array(C, "C", ndim=3, dtype=np.float64)
        B, m, n = C.shape
        a = as_float_array(a, "a", ndim=2, dtype=np.float64)
        b = as_float_array(b, "b", ndim=2, dtype=np.float64)
        if a.shape != (B, m) or b.shape != (B, n):
            raise ValueError(f"padded layout needs a (B, m), b (B, n), C (B, m, n); got "
                             f"a {a.shape}, b {b.shape}, C {C.shape}")
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
        C = as_float_array(C, "C", ndim=1, dtype=np.float64)
        a_off = np.ascontiguousarray(a_offsets, dtype=np.int64)
        b_off = np.ascontiguousarray(b_offsets, dtype=np.int64)
        if a_off.ndim != 1 or a_off.shape != b_off.shape or a_off.shape[0] < 2:
            raise ValueError("a_offsets and b_offsets must be 1-D of the same length B + 1 >= 2")
        if a_off[0] != 0 or b_off[0] != 0 or a_off[-1] != a.shape[0] or b_off[-1] != b.shape[0]:
            raise ValueError("offsets must start at 0 and end at len(a) / len(b)")
        ms, ns = np.diff(a_off), np.diff(b_off)
        if (ms <= 0).any() or (ns <= 0).any():
            raise ValueError("offsets must be strictly increasing (every problem non-empty)")
        sizes = ms * ns
        c_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if C.shape[0] != int(sizes.sum()):
            raise ValueError(f"ragged C must hold sum(m_k * n_k) = {int(sizes.sum())} values "
                             f"(each problem's (m_k, n_k) block row-major); got {C.shape[0]}")
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
            raise ValueError(f"problem {k}: a and b must have the same total mass (relative "
                             f"tolerance {MASS_RTOL:g}); got {sa[k]!r} and {sb[k]!r}")
        scale = sa / sb
        if (scale != 1).any():
            b = b * (np.repeat(scale, np.diff(b_off)) if a_offsets is not None
                     else scale[:, None])
    return (np.ascontiguousarray(a.ravel()), a_off, np.ascontiguousarray(b.ravel()), b_off,
            np.ascontiguousarray(C.ravel()), c_off, plan_shape)


def emd_batched(a, b, C, *, a_mask=None, b_mask=None, a_offsets=None, b_offsets=None,
                return_plans: bool = False, max_iter: int | None = None,
                n_jobs: int | None = None) -> BatchedOTResult:
    """Many independent exact OT problems in one call, parallel over problems (OpenMP).

    Each problem is solved by the network simplex of :func:`emd` with a per-thread reusable
    workspace (no allocation per problem once warm).

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
    fa, a_off, fb, b_off, fC, c_off, plan_shape = _batched_layout(
        a, b, C, a_mask, b_mask, a_offsets, b_offsets, balance=True)
    cost, status, plans = _core.emd_batched(fa, a_off, fb, b_off, fC, c_off,
                                            _max_iter(max_iter), bool(return_plans),
                                            check_n_jobs(n_jobs))
    converged = status == 0
    if not converged.all():
        warnings.warn(f"emd_batched: {int((~converged).sum())} problem(s) hit max_iter="
                      f"{max_iter} before optimality", RuntimeWarning, stacklevel=2)
    if plans is not None:
        plans = plans.reshape(plan_shape)
    return BatchedOTResult(cost, converged, plans)
