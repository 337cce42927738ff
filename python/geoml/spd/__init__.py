"""Geometry of symmetric positive-definite (SPD) matrices, batched.

Every function takes batches over leading axes (``(..., n, n)``) in float32 or float64 and
runs geoml's batched symmetric eigensolver (C++/OpenMP, ``n <= 64``; LAPACK above):

- matrix functions: :func:`eigh`, :func:`sqrtm`, :func:`invsqrtm`, :func:`logm`,
  :func:`expm`, :func:`powm`;
- distances: :func:`distance`, :func:`pairwise_distance` (affine-invariant, log-Euclidean,
  Bures-Wasserstein, Euclidean, with power deformation);
- means: :func:`mean_riemann`, :func:`mean_logeuclid`, :func:`mean_wasserstein` (the
  Bures-Wasserstein barycenter), :func:`mean`;
- tangent spaces: :func:`log_map`, :func:`exp_map`, :func:`transport`,
  :func:`tangent_space`, :func:`untangent_space`, :func:`upper`, :func:`unupper`;
- covariance features: :func:`covariances`, :func:`augmented_covariances`;
- estimators: :class:`MDM`, :class:`TangentSpace`.

Conventions follow pyRiemann (0.12) and POT's ``ot.gaussian``; docs/design/spd.md has the
algorithms and the checks. Results are those of a backward-stable eigendecomposition: the
functions that amplify small eigenvalues (``invsqrtm``, ``logm``, negative powers, the
affine-invariant and log-Euclidean distances) lose about ``eps * cond(X)`` relative on
ill-conditioned input, as any eigendecomposition does (LAPACK's ``eigh`` alike).
"""

from __future__ import annotations

from ._covariance import augmented_covariances, covariances
from ._distance import distance, pairwise_distance
from ._estimators import MDM, TangentSpace
from ._functions import EighResult, eigh, expm, invsqrtm, logm, powm, sqrtm
from ._mean import (
    ConvergenceWarning,
    MeanResult,
    mean,
    mean_logeuclid,
    mean_riemann,
    mean_wasserstein,
)
from ._tangent import exp_map, log_map, tangent_space, transport, untangent_space, unupper, upper

__all__ = [
    "MDM",
    "ConvergenceWarning",
    "EighResult",
    "MeanResult",
    "TangentSpace",
    "augmented_covariances",
    "covariances",
    "distance",
    "eigh",
    "exp_map",
    "expm",
    "invsqrtm",
    "log_map",
    "logm",
    "mean",
    "mean_logeuclid",
    "mean_riemann",
    "mean_wasserstein",
    "pairwise_distance",
    "powm",
    "sqrtm",
    "tangent_space",
    "transport",
    "untangent_space",
    "unupper",
    "upper",
]
