"""geoml: compiled geometric machine learning.

kNN graphs, graph Laplacians and spectral embeddings, optimal transport, Ricci curvature and
low-rank decompositions, with C++/OpenMP kernels on the CPU and optional CUDA kernels. Importing
geoml never imports CuPy nor touches a GPU.
"""

from __future__ import annotations

from . import _core, ot
from ._base import NotFittedError
from ._config import show_config
from .curvature import (
    FormanRicci,
    OllivierRicci,
    RicciCommunities,
    RicciFlow,
    forman_ricci,
    ollivier_ricci,
    ricci_communities,
)
from .lowrank import SVDResult, Tucker, TuckerTensor, randomized_svd, tucker
from .neighbors import (
    ApproxKNNResult,
    KNNGraph,
    KNNResult,
    KNNTransformer,
    RecallEstimate,
    knn,
    knn_graph,
)
from .spectral import (
    DiffusionMap,
    EigshResult,
    LaplacianEigenmap,
    SpectralClustering,
    SpectralDensity,
    TraceEstimate,
    eigsh,
    laplacian,
    spectral_density,
    trace_function,
)

__version__: str = _core.__version__

__all__ = [
    "ApproxKNNResult",
    # spectral
    "DiffusionMap",
    "EigshResult",
    # curvature
    "FormanRicci",
    # neighbours and graphs
    "KNNGraph",
    "KNNResult",
    "KNNTransformer",
    "LaplacianEigenmap",
    "NotFittedError",
    "OllivierRicci",
    "RecallEstimate",
    "RicciCommunities",
    "RicciFlow",
    # low rank
    "SVDResult",
    "SpectralClustering",
    "SpectralDensity",
    "TraceEstimate",
    "Tucker",
    "TuckerTensor",
    "__version__",
    "eigsh",
    "forman_ricci",
    "knn",
    "knn_graph",
    "laplacian",
    "ollivier_ricci",
    # optimal transport: the geoml.ot module (sinkhorn, emd, batched solvers, ...)
    "ot",
    "randomized_svd",
    "ricci_communities",
    "show_config",
    "spectral_density",
    "trace_function",
    "tucker",
]
