"""Lanczos eigensolver, graph Laplacians, spectral embeddings and stochastic Lanczos quadrature.

CPU kernels in ``cpp/spectral/`` (Lanczos, LOBPCG block kernels, multigrid, k-means); the design
and timing notes are in ``docs/design/eigensolver.md``.
"""

from __future__ import annotations

from ._eigsh import EigshResult, eigsh
from ._embedding import laplacian_eigsh, spectral_embedding
from ._estimators import DiffusionMap, LaplacianEigenmap, SpectralClustering
from ._laplacian import laplacian
from ._slq import SpectralDensity, TraceEstimate, spectral_density, trace_function

__all__ = [
    "DiffusionMap",
    "EigshResult",
    "LaplacianEigenmap",
    "SpectralClustering",
    "SpectralDensity",
    "TraceEstimate",
    "eigsh",
    "laplacian",
    "laplacian_eigsh",
    "spectral_density",
    "spectral_embedding",
    "trace_function",
]
