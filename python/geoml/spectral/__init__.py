"""Lanczos eigensolver, graph Laplacians and spectral embeddings.

CPU kernels in ``cpp/spectral/`` (Lanczos, LOBPCG block kernels, multigrid, k-means); the design
and timing notes are in ``docs/design/eigensolver.md``.
"""

from __future__ import annotations

from ._eigsh import EigshResult, eigsh
from ._estimators import DiffusionMap, LaplacianEigenmap, SpectralClustering
from ._laplacian import laplacian

__all__ = ["DiffusionMap", "EigshResult", "LaplacianEigenmap", "SpectralClustering", "eigsh",
           "laplacian"]
