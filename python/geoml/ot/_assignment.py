"""Linear assignment (minimum-cost bipartite matching), one problem or many at once."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _core
from .._validation import as_float_array, check_bool, check_n_jobs, reject_gpu

_ASSIGN_INFEASIBLE = 1  # AssignmentStatus::ASSIGN_INFEASIBLE of the C++ solver


class LinearAssignmentResult(NamedTuple):
    """An optimal assignment (see :func:`linear_assignment`); unpacks like SciPy's pair."""

    row_ind: np.ndarray
    """Rows of the assigned pairs, int64 of shape (min(m, n),), increasing."""
    col_ind: np.ndarray
    """Columns of the assigned pairs, int64 of shape (min(m, n),)."""


class BatchedAssignmentResult(NamedTuple):
    """Optimal assignments of many problems (see :func:`linear_assignment_batched`)."""

    row_ind: np.ndarray | list[np.ndarray]
    """Stack input: int64 array of shape (B, min(m, n)); list input: one array per problem."""
    col_ind: np.ndarray | list[np.ndarray]
    """Same layout as ``row_ind``."""
    cost: np.ndarray
    """Per-problem optimal cost ``C_k[row_ind_k, col_ind_k].sum()``, shape (B,)."""


# Reduced costs C_ij - v_j move across the whole cost range: costs are scaled by a power of
# two (exact) when their magnitude could overflow float64 there.
_SAFE_MAX = 2.0**960


def _assignment_cost(C, name: str, maximize: bool, ndim: int) -> tuple[np.ndarray, float]:
    """C as C-contiguous float64 (negated when maximising), NaN and the infinity of the
    wrong sign refused (forbidden pairs become +inf), and the power-of-two factor it was
    scaled by (1.0 unless its finite entries reach 2**960)."""
    reject_gpu(C, name, "geoml.ot.linear_assignment")
    C = as_float_array(C, name, ndim=ndim, dtype=np.float64, allow_empty=True, finite=False)
    scale = 1.0
    if C.size:
        lo, hi = C.min(), C.max()  # NaN propagates into both
        if np.isnan(lo) or np.isnan(hi):
            raise ValueError(f"{name} contains NaN")
        if hi == np.inf if maximize else lo == -np.inf:
            sign, use = ("+", "maximize=True: -inf") if maximize else ("-", "+inf")
            raise ValueError(f"{name} contains {sign}inf; forbidden pairs are marked with {use}")
        if maximize:
            C = -C
            lo, hi = -hi, -lo
        if hi == np.inf:
            hi = np.max(C, where=np.isfinite(C), initial=lo)
        big = max(abs(lo), abs(hi))
        if big >= _SAFE_MAX:
            scale = 2.0 ** -(int(np.frexp(big)[1]) - 900)
            C = C * scale
    return C, scale


def _infeasible(where: str = "") -> ValueError:
    return ValueError(
        f"cost matrix is infeasible{where}: every complete assignment uses a forbidden "
        "(infinite) entry"
    )


def linear_assignment(C, maximize: bool = False) -> LinearAssignmentResult:
    """Minimum-cost (or maximum-weight) assignment, like ``scipy.optimize.linear_sum_assignment``.

    Finds ``min(m, n)`` pairs ``(row_ind[k], col_ind[k])``, rows and columns each used at most
    once (every row when ``m <= n``, every column otherwise), minimising
    ``C[row_ind, col_ind].sum()``. The solver is Jonker-Volgenant in C++: column reduction
    with reduction transfer (square problems), two augmenting-row-reduction passes, then
    shortest augmenting paths (Dijkstra on reduced costs, AVX2 row scans) for the rows still
    free; a problem with more rows than columns is solved on its transpose. Worst case
    O(n^3) time; memory O(m + n) (plus one copy of C when ``m > n`` or ``maximize``).

    Parameters
    ----------
    C : array-like of shape (m, n)
        Cost matrix (converted to float64). ``+inf`` marks a forbidden pair (``-inf`` with
        ``maximize=True``); NaN, and the infinity of the other sign, raise ``ValueError``.
    maximize : bool
        Maximise the sum instead.

    Returns
    -------
    LinearAssignmentResult
        ``(row_ind, col_ind)``, int64 arrays of length ``min(m, n)`` with ``row_ind``
        increasing: SciPy's output convention (it unpacks the same way). When the optimum is
        unique it is SciPy's assignment; ties may be broken differently (same cost).

    Raises
    ------
    ValueError
        When no complete assignment avoids the forbidden entries ("cost matrix is
        infeasible"), or for NaN / wrong-sign infinities or a non-2-D ``C``.

    References
    ----------
    Jonker & Volgenant, "A shortest augmenting path algorithm for dense and sparse linear
    assignment problems", Computing 38 (1987); Crouse, "On implementing 2D rectangular
    assignment algorithms", IEEE Trans. Aerospace and Electronic Systems 52 (2016).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> C = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    >>> row_ind, col_ind = geoml.ot.linear_assignment(C)
    >>> col_ind
    array([1, 0, 2])
    >>> float(C[row_ind, col_ind].sum())
    5.0
    >>> geoml.ot.linear_assignment([[1.0, np.inf], [np.inf, 2.0]]).col_ind
    array([0, 1])
    """
    C, _ = _assignment_cost(C, "C", check_bool(maximize, "maximize"), 2)
    row_ind, col_ind, _, status = _core.linear_assignment(C)
    if status == _ASSIGN_INFEASIBLE:
        raise _infeasible()
    return LinearAssignmentResult(row_ind, col_ind)


def linear_assignment_batched(
    Cs, maximize: bool = False, *, n_jobs: int | None = None
) -> BatchedAssignmentResult:
    """Many independent assignment problems in one call, parallel over problems (OpenMP).

    Each problem is solved by the Jonker-Volgenant solver of :func:`linear_assignment` with a
    per-thread reusable workspace; threads take problems dynamically, so problems of
    different sizes balance. The result does not depend on ``n_jobs``.

    Parameters
    ----------
    Cs : array-like of shape (B, m, n), or a sequence of 2-D array-likes
        A stack of cost matrices of one shape, or a list of matrices of different shapes.
        Conventions for ``inf``, NaN and ``maximize`` as in :func:`linear_assignment`.
    maximize : bool
        Maximise every problem's sum instead.
    n_jobs : int, optional
        Threads. None: OpenMP default; -1: all cores.

    Returns
    -------
    BatchedAssignmentResult
        ``row_ind``, ``col_ind``: for a stack, int64 arrays of shape (B, min(m, n)); for a
        list, lists of B arrays (problem k's pair as :func:`linear_assignment` returns it);
        ``cost`` (B,): each optimal sum of ``C_k`` over its pairs (of the original costs, also
        with ``maximize=True``).

    Raises
    ------
    ValueError
        Naming the first problem that has no complete assignment avoiding forbidden entries,
        or that holds NaN / a wrong-sign infinity.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> Cs = np.array([[[1.0, 2.0], [3.0, 0.0]], [[0.0, 1.0], [1.0, 5.0]]])
    >>> res = geoml.ot.linear_assignment_batched(Cs)
    >>> res.col_ind
    array([[0, 1],
           [1, 0]])
    >>> res.cost
    array([1., 2.])
    """
    maximize = check_bool(maximize, "maximize")
    n_jobs = check_n_jobs(n_jobs)
    reject_gpu(Cs, "Cs", "geoml.ot.linear_assignment_batched")
    stacked = isinstance(Cs, np.ndarray) or not isinstance(Cs, (list, tuple))
    if stacked:
        C, scale = _assignment_cost(Cs, "Cs", maximize, 3)
        scales = np.full(C.shape[0], scale)
        B, m, n = C.shape
        ms = np.full(B, m, dtype=np.int64)
        ns = np.full(B, n, dtype=np.int64)
        flat = C.reshape(-1)
    else:
        mats, scales = [], []
        for k, c in enumerate(Cs):
            c, scale = _assignment_cost(c, f"Cs[{k}]", maximize, 2)
            mats.append(c)
            scales.append(scale)
        scales = np.array(scales, dtype=np.float64)
        B = len(mats)
        ms = np.array([c.shape[0] for c in mats], dtype=np.int64)
        ns = np.array([c.shape[1] for c in mats], dtype=np.int64)
        flat = np.concatenate([c.reshape(-1) for c in mats]) if B else np.zeros(0)
    sizes = ms * ns
    c_off = np.zeros(B, dtype=np.int64)
    if B > 1:
        c_off[1:] = np.cumsum(sizes)[:-1]
    k_off = np.zeros(B + 1, dtype=np.int64)
    k_off[1:] = np.cumsum(np.minimum(ms, ns))
    ri, ci, cost, status = _core.linear_assignment_batched(
        flat, c_off, ms, ns, k_off, n_jobs=n_jobs
    )
    bad = np.flatnonzero(status == _ASSIGN_INFEASIBLE)
    if bad.size:
        raise _infeasible(f" (problem {int(bad[0])})")
    cost = cost / scales  # powers of two: exact
    if maximize:
        cost = -cost
    if stacked:
        k = int(min(m, n))
        return BatchedAssignmentResult(ri.reshape(B, k), ci.reshape(B, k), cost)
    return BatchedAssignmentResult(
        [ri[k_off[k] : k_off[k + 1]] for k in range(B)],
        [ci[k_off[k] : k_off[k + 1]] for k in range(B)],
        cost,
    )
