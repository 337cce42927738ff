"""Symmetric (doubly-stochastic) scaling of a kernel (re-exported by :mod:`geoml.ot`)."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._validation import (
    as_float_array,
    as_real,
    canonical_csr,
    check_bool,
    check_n_jobs,
    check_tol,
    reject_gpu,
    user_stacklevel,
)
from ._solvers import _check_eps, _max_iter

__all__ = ["SymmetricScalingResult", "sinkhorn_symmetric"]

SYMMETRY_RTOL = 1e-6
"""``K`` (or ``C``) is accepted as symmetric when ``max |K - K.T| <= SYMMETRY_RTOL * max |K|``."""


KERNEL32_MIN_ENTRIES = 1 << 62
"""With a cost of at least this many entries, the iterations start on a float32 copy of the Gibbs
kernel (half the memory traffic per pass) and finish on the float64 one. Off by default: the
second (float64) kernel build costs more than the cheaper passes save (measured at n = 1,000 to
4,000 on 2 cores: 5-25 % slower); kept for machines where memory bandwidth is scarcer."""


class SymmetricScalingResult(NamedTuple):
    """A symmetric scaling ``P = diag(d) K diag(d)`` (see :func:`sinkhorn_symmetric`)."""

    plan: np.ndarray | sp.csr_matrix | None
    """``P``, shape (n, n): K's dtype (float64 for a cost), CSR for a sparse ``K``; None when
    ``return_plan=False``."""
    scaling: np.ndarray
    """``d``, shape (n,), float64 (``exp(log_scaling)``; may overflow for a cost with tiny eps:
    use ``log_scaling`` then)."""
    log_scaling: np.ndarray
    """``log d``, shape (n,); with a cost, ``P_ij = exp(log d_i + log d_j - C_ij / eps)``."""
    n_iter: int
    """Fixed-point iterations (one pass over the kernel each)."""
    marginal_error: float
    """``|P 1 - a|_1`` of the returned scaling (in float64, before any float32 rounding)."""
    converged: bool
    """True when ``marginal_error <= tol * sum(a)``."""


def _masses(a, n: int) -> np.ndarray:
    if a is None:
        return np.ones(n)
    reject_gpu(a, "a", "geoml.ot")
    a = as_float_array(a, "a", ndim=1, dtype=np.float64)
    if a.shape[0] != n:
        raise ValueError(f"a has {a.shape[0]} entries but the matrix has {n} rows")
    if (a < 0).any():
        raise ValueError("a has negative entries; masses must be >= 0")
    if not a.sum() > 0:
        raise ValueError("a has zero total mass")
    return a


def _scan_dense(K, name: str, *, cost: bool, n_jobs: int = 0) -> tuple[np.ndarray | None, bool]:
    """Finite, (non-negative unless a cost) and symmetric: one tiled pass in C++.

    Returns the row minima for a cost (the kernel's stabilising shift; else None) and whether
    the matrix is exactly symmetric.
    """
    finite, lo, kmax, asym, rowmin = _core.symmetric_scan(
        np.ascontiguousarray(K), n_jobs=n_jobs, rowmin=cost
    )
    _raise_scan((finite, lo, kmax, asym), name, cost=cost)
    return rowmin, asym == 0.0


def _raise_scan(scan, name: str, *, cost: bool) -> None:
    finite, lo, kmax, asym = scan
    if not finite:
        raise ValueError(f"{name} contains NaN or infinity")
    if not cost and lo < 0:
        raise ValueError(f"{name} has negative entries; a kernel must be >= 0")
    if asym > SYMMETRY_RTOL * kmax:
        raise ValueError(
            f"{name} is not symmetric (max |{name} - {name}.T| = {asym:.3g}, "
            f"max |{name}| = {kmax:.3g})"
        )


def _square(shape, name: str) -> int:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {tuple(shape)}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(shape)})")
    return int(shape[0])


def sinkhorn_symmetric(
    K_or_C,
    a=None,
    *,
    eps: float | None = None,
    tol: float = 1e-9,
    max_iter: int | None = None,
    return_plan: bool = True,
    n_jobs: int | None = None,
) -> SymmetricScalingResult:
    """Symmetric Sinkhorn scaling: ``P = diag(d) K diag(d)`` with ``P 1 = P.T 1 = a``.

    Scales a non-negative symmetric kernel ``K`` (dense or sparse), or with ``eps`` the Gibbs
    kernel ``exp(-C / eps)`` of a symmetric cost ``C``, to a symmetric matrix with row (= column)
    sums ``a``: with ``a = 1`` a doubly-stochastic matrix (Sinkhorn-Knopp; the doubly-stochastic
    normalisation of an affinity, the membership of MLC). With ``eps`` the plan is the entropic OT
    plan of ``ot.sinkhorn(a, a, C, eps)``. The damped fixed point
    ``log d <- (log d + log a - log K d) / 2`` is iterated in the log domain with Anderson mixing
    (scalings absorbed into the kernel for a cost), one pass over the kernel per iteration,
    multi-threaded; a cost's input checks and its kernel build share one pass over ``C``.

    Parameters
    ----------
    K_or_C : array of shape (n, n) or scipy sparse matrix
        Without ``eps``: the kernel, float32 or float64 (kept, never copied to float64; a float32
        ``K`` gives a float32 plan), ``>= 0``, symmetric. With ``eps``: a dense finite symmetric
        cost (used in float64).
    a : array of shape (n,), optional
        Row (= column) sums, ``>= 0``. Default ones (doubly stochastic). Use ``np.full(n, 1/n)``
        for POT's uniform histogram.
    eps : float, optional
        Entropic regularisation: scale ``exp(-C / eps)`` instead of ``K``.
    tol : float, default 1e-9
        Stop when ``|P 1 - a|_1 <= tol * sum(a)``.
    max_iter : int, optional
        Iteration limit (default 10000).
    return_plan : bool, default True
        Form ``P`` (dense K or cost: an (n, n) array; sparse: CSR).
    n_jobs : int, optional
        Threads (None or 0: OpenMP's default; -1: all cores). The result does not depend on it.

    Returns
    -------
    SymmetricScalingResult
        ``(plan, scaling, log_scaling, n_iter, marginal_error, converged)``; a
        ``RuntimeWarning`` when ``tol`` is not reached.

    Raises
    ------
    ValueError
        Non-square, non-symmetric, negative (kernel), NaN or infinite input; a row of ``K`` that
        is zero while its mass ``a_i > 0`` (no scaling exists). Rows with ``a_i = 0`` get
        ``d_i = 0`` and a zero row and column in ``P``.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.ot import sinkhorn_symmetric
    >>> K = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> res = sinkhorn_symmetric(K)
    >>> np.round(res.plan, 6)
    array([[0.666667, 0.333333],
           [0.333333, 0.666667]])
    >>> res.converged, np.allclose(res.plan.sum(axis=1), 1.0)
    (True, True)
    """
    reject_gpu(K_or_C, "K_or_C", "geoml.ot")
    tol = check_tol(tol)
    return_plan = check_bool(return_plan, "return_plan")
    max_iter = _max_iter(max_iter, 10000)
    n_jobs = check_n_jobs(n_jobs)
    if eps is not None:
        eps = _check_eps(eps)
        if sp.issparse(K_or_C):
            raise TypeError("C must be dense when eps is given (a sparse cost has no meaning)")
        C = as_float_array(K_or_C, "C", dtype=np.float64, finite=False)
        n = _square(C.shape, "C")
        a = _masses(a, n)
        fused = n * n < KERNEL32_MIN_ENTRIES
        if fused:  # the input checks run in C++ fused with the first kernel build
            rowmin, exact = None, False
        else:
            rowmin, exact = _scan_dense(C, "C", cost=True, n_jobs=n_jobs)
        P, logd, n_iter, err, conv, zero_row, scan = _core.sinkhorn_symmetric_cost(
            C,
            a,
            eps=eps,
            tol=tol,
            max_iter=max_iter,
            n_jobs=n_jobs,
            rowmin=rowmin,
            c_symmetric=exact,
            f32_min_entries=KERNEL32_MIN_ENTRIES,
            check=fused,
            sym_rtol=SYMMETRY_RTOL,
        )
        if fused:
            _raise_scan(scan, "C", cost=True)
        if not return_plan:
            P = None
    elif sp.issparse(K_or_C):
        # (complex: its real part was kept, silently)
        A = canonical_csr(as_real(sp.csr_matrix(K_or_C), "K"))
        n = _square(A.shape, "K")
        data = np.ascontiguousarray(A.data, dtype=np.float64)
        if not np.isfinite(data).all():
            raise ValueError("K contains NaN or infinity")
        if (data < 0).any():
            raise ValueError("K has negative entries; a kernel must be >= 0")
        if data.size:
            diff = A - A.T
            asym = float(abs(diff).max()) if diff.nnz else 0.0
            if asym > SYMMETRY_RTOL * float(np.abs(data).max()):
                raise ValueError(f"K is not symmetric (max |K - K.T| = {asym:.3g})")
        a = _masses(a, n)
        indptr = A.indptr.astype(np.int64)
        indices = A.indices.astype(np.int64)
        logd, n_iter, err, conv, zero_row = _core.sinkhorn_symmetric_csr(
            indptr, indices, data, a, tol=tol, max_iter=max_iter, n_jobs=n_jobs
        )
        P = None
        if return_plan and zero_row < 0:
            rows = np.repeat(np.arange(n), np.diff(indptr))
            with np.errstate(over="ignore"):  # K_ij exp(log d_i + log d_j): finite, no 0 * inf
                vals = data * np.exp(logd[rows] + logd[indices])
            vals[data == 0] = 0.0
            single = A.dtype in (np.float16, np.float32)  # as as_float_array: else float64
            vals = vals.astype(np.float32 if single else np.float64)
            P = sp.csr_matrix((vals, A.indices.copy(), A.indptr.copy()), shape=(n, n))
    else:
        K = as_float_array(K_or_C, "K", finite=False)
        n = _square(K.shape, "K")
        _scan_dense(K, "K", cost=False, n_jobs=n_jobs)
        a = _masses(a, n)
        P, logd, n_iter, err, conv, zero_row = _core.sinkhorn_symmetric(
            K, a, tol=tol, max_iter=max_iter, want_plan=bool(return_plan), n_jobs=n_jobs
        )
    if zero_row >= 0:
        raise ValueError(
            f"row {zero_row} of the kernel is zero (or underflows) while a[{zero_row}] > 0: "
            "no symmetric scaling exists"
        )
    if not conv:
        warnings.warn(
            f"sinkhorn_symmetric did not reach tol={tol:g} in max_iter={max_iter} iterations "
            f"(relative marginal error {err / a.sum():.3g}); raise max_iter"
            + (" or eps" if eps is not None else ""),
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    with np.errstate(over="ignore"):
        scaling = np.exp(logd)
    return SymmetricScalingResult(P, scaling, logd, int(n_iter), float(err), bool(conv))
