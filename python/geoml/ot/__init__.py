"""Optimal transport: exact network simplex, log-domain Sinkhorn, batched small problems,
linear assignment.

CPU kernels in ``cpp/ot/`` (float64 throughout). Histograms are non-negative 1-D arrays,
costs dense ``(m, n)`` matrices; ``a=None`` / ``b=None`` mean uniform weights ``1/m``, ``1/n``.
"""

from __future__ import annotations

from ._assignment import (
    BatchedAssignmentResult,
    LinearAssignmentResult,
    linear_assignment,
    linear_assignment_batched,
)
from ._newton import SinkhornNewtonResult, sinkhorn_newton
from ._solvers import (
    MASS_RTOL,
    BatchedOTResult,
    BatchedSinkhornResult,
    EMDResult,
    PointsSinkhornResult,
    SinkhornResult,
    _check_tol,  # noqa: F401  (shared with geoml's estimators' checks)
    _finite_cost,  # noqa: F401
    emd,
    emd_batched,
    sinkhorn,
    sinkhorn_batched,
    sinkhorn_points,
    sinkhorn_unbalanced,
)
from ._symmetric import SymmetricScalingResult, sinkhorn_symmetric

__all__ = [
    "MASS_RTOL",
    "BatchedAssignmentResult",
    "BatchedOTResult",
    "BatchedSinkhornResult",
    "EMDResult",
    "LinearAssignmentResult",
    "PointsSinkhornResult",
    "SinkhornNewtonResult",
    "SinkhornResult",
    "SymmetricScalingResult",
    "emd",
    "emd_batched",
    "linear_assignment",
    "linear_assignment_batched",
    "sinkhorn",
    "sinkhorn_batched",
    "sinkhorn_newton",
    "sinkhorn_points",
    "sinkhorn_symmetric",
    "sinkhorn_unbalanced",
]
