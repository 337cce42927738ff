"""Sinkhorn-Newton-Sparse (re-exported by :mod:`geoml.ot`)."""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from .. import _core
from .._validation import check_int, check_n_jobs, user_stacklevel
from ._solvers import (
    _balance,
    _check_eps,
    _check_support,
    _check_tol,
    _cost_matrix,
    _feasible,
    _histogram,
    _infeasible,
    _mass_scale,
    _max_iter,
)

__all__ = ["SinkhornNewtonResult", "sinkhorn_newton"]


class SinkhornNewtonResult(NamedTuple):
    """Entropic OT solution by :func:`sinkhorn_newton`."""

    plan: np.ndarray
    """Transport plan, shape (m, n)."""
    cost: float
    """Transport cost ``<plan, C>`` (without the entropy term)."""
    f: np.ndarray
    """Row potentials, shape (m,): ``plan = exp((f_i + g_j - C_ij) / eps)``."""
    g: np.ndarray
    """Column potentials, shape (n,)."""
    n_iter: int
    """Sinkhorn warm-up iterations plus Newton steps."""
    n_newton: int
    """Newton steps."""
    n_cg: int
    """Conjugate-gradient iterations over all Newton steps (sparse products, O(nnz) each)."""
    n_passes: int
    """Passes over the ``(m, n)`` kernel: kernel builds, warm-up iterations, line-search
    evaluations and the plan (the unit of cost shared with :func:`sinkhorn`, whose
    iterations are one pass each)."""
    marginal_error: float
    """``||plan 1 - a||_1 + ||plan^T 1 - b||_1`` of the returned plan."""
    converged: bool
    """Whether ``marginal_error <= tol * sum(a)`` within ``max_iter`` Newton steps."""


def sinkhorn_newton(
    a,
    b,
    C,
    eps: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-9,
    n_warmup: int = 3,
    sparsity: float = 1e-6,
    n_jobs: int | None = None,
) -> SinkhornNewtonResult:
    """Entropic optimal transport by Sinkhorn-Newton-Sparse (SNS).

    Solves the problem of :func:`sinkhorn` (``min <P, C> + eps KL(P | 1)``, ``P 1 = a``,
    ``P^T 1 = b``) by the algorithm of Tang et al. (ICLR 2024): ``n_warmup`` Sinkhorn
    iterations, then Newton steps on the dual. The dual Hessian ``[diag r, P; P^T, diag c]``
    (``r``, ``c``: the plan's row and column sums) is sparsified by keeping the entries
    ``P_ij >= sparsity * r_i``; the Newton system is solved inexactly by preconditioned
    conjugate gradients on its Schur complement, and a backtracking line search sets the
    step. Each Newton step with a full step costs one pass over the ``(m, n)`` kernel (the
    trial point's objective, gradient and sparsified plan come from the same pass), against
    one pass per Sinkhorn iteration; at small ``eps`` (below ~1e-2 of the cost range) it
    converges in tens of passes where Sinkhorn needs thousands. Large kernels
    (``m n >= 65536``) are stored in float32 for the bulk of the steps, then rebuilt in float64
    for the last ones, so the returned plan meets ``tol`` in float64. The result does not
    depend on the thread count. O(m n) per pass plus O(nnz) per CG iteration; memory: the plan
    plus the sparsified Hessian.

    Parameters
    ----------
    a, b : array-like of shape (m,) / (n,), or None
        Histograms ``>= 0`` with equal totals (as in :func:`sinkhorn`). None: uniform.
    C : array-like of shape (m, n)
        Cost matrix: finite values, or ``+inf`` for a forbidden pair (as in :func:`sinkhorn`).
    eps : float
        Entropic regularisation, > 0, in the units of ``C``.
    max_iter : int
        Newton-step budget.
    tol : float
        Stop when the L1 marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1 <= tol * sum(a)``.
    n_warmup : int
        Sinkhorn iterations before the Newton steps (>= 1; the paper's N1).
    sparsity : float
        Relative threshold of the Hessian's sparsification, in [0, 1): 0 keeps every positive
        entry (exact Newton, dense CG products); larger values give sparser, cheaper CG
        iterations and a slower (linear) final rate. When a full Newton step near the solution
        contracts the marginal error less than 2x (the dropped entries carried needed
        coupling), the threshold is lowered 100x, down to 1e-14.
    n_jobs : int, optional
        Threads. None: OpenMP default; -1: all cores.

    Returns
    -------
    SinkhornNewtonResult
        ``plan``, ``cost``, ``f``, ``g``, ``n_iter``, ``n_newton``, ``n_cg``, ``n_passes``,
        ``marginal_error``, ``converged``. Non-convergence also issues a ``RuntimeWarning``.

    References
    ----------
    Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao & Ying, "Accelerating Sinkhorn
    algorithm with sparse Newton iterations", ICLR 2024.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> C = np.array([[0.0, 1.49], [1.70, 0.0]])
    >>> res = geoml.ot.sinkhorn_newton([0.5, 0.5], [0.5, 0.5], C, eps=0.1)
    >>> np.round(res.plan, 4)
    array([[0.5, 0. ],
           [0. , 0.5]])
    >>> res.converged, res.marginal_error <= 1e-9
    (True, True)
    """
    what = "sinkhorn_newton"
    C, _, forbidden = _cost_matrix(C)
    m, n = C.shape
    a = _histogram(a, m, "a")
    b = _balance(a, _histogram(b, n, "b"))
    if forbidden:
        _check_support(a, b, C, what)
    eps = _check_eps(eps)
    tol = _check_tol(tol)
    max_iter = _max_iter(max_iter)
    n_warmup = check_int(n_warmup, "n_warmup", low=1)
    try:
        sparsity = float(sparsity)
    except (TypeError, ValueError):
        raise TypeError(f"sparsity must be a number in [0, 1); got {sparsity!r}") from None
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity!r}")
    # solved at unit mass when the mass is extreme (exact powers of two; see _mass_scale)
    mscale = _mass_scale(float(a.sum()))
    if mscale != 1.0:
        a, b = a * mscale, b * mscale
    mass = float(a.sum())
    out = _core.sinkhorn_newton(
        a,
        b,
        C,
        eps=eps,
        tol=tol * mass,
        max_iter=max_iter,
        n_warmup=n_warmup,
        sparsity=sparsity,
        n_jobs=check_n_jobs(n_jobs),
    )
    P, f, g, n_warm, n_newton, n_cg, n_passes, err, conv, cost, merr, _ = out
    if mscale != 1.0:
        P, cost, merr = P / mscale, cost / mscale, merr / mscale
        f = f - eps * math.log(mscale)
    if not conv and forbidden and not _feasible(a, b, C):
        raise _infeasible(what)
    if not conv:
        where = (
            f"in max_iter={max_iter} Newton steps"
            if n_newton >= max_iter
            else f"(stopped after {n_newton} Newton steps: no step raised the dual)"
        )
        warnings.warn(
            f"{what} did not reach tol={tol:g} {where} "
            f"(marginal error {merr / mass if mass > 0 else merr:.3g}); raise max_iter or "
            "n_warmup, or lower sparsity",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return SinkhornNewtonResult(
        P,
        float(cost),
        f,
        g,
        int(n_warm + n_newton),
        int(n_newton),
        int(n_cg),
        int(n_passes),
        float(merr),
        bool(conv),
    )
