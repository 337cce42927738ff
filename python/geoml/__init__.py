"""geoml: compiled geometric machine learning.

kNN graphs, graph Laplacians and spectral embeddings, optimal transport, Ricci curvature and
low-rank decompositions, with C++/OpenMP kernels on the CPU and optional CUDA kernels. Importing
geoml never imports CuPy nor touches a GPU.
"""

from __future__ import annotations

from . import _core, measures, ot, spd
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
from .diffusion import MDS, PHATE, HeatGeo, heat_geodesic_distances, heat_kernel
from .lowrank import SVDResult, Tucker, TuckerTensor, randomized_svd, tucker
from .measures import (
    diffusion_spectral_entropy,
    diffusion_spectral_mutual_information,
    effective_rank,
    intrinsic_dimension,
    magnitude,
    von_neumann_entropy,
)
from .neighbors import (
    ApproxKNNResult,
    KNNGraph,
    KNNResult,
    KNNTransformer,
    RecallEstimate,
    knn,
    knn_graph,
)
from .spd import MDM, TangentSpace
from .spectral import (
    DiffusionMap,
    EigshResult,
    LaplacianEigenmap,
    SpectralClustering,
    SpectralDensity,
    TraceEstimate,
    eigsh,
    laplacian,
    laplacian_eigsh,
    spectral_density,
    spectral_embedding,
    trace_function,
)

__version__: str = _core.__version__

__all__ = [
    "MDM",
    "MDS",
    "PHATE",
    "ApproxKNNResult",
    "DiffusionMap",
    "EigshResult",
    "FormanRicci",
    "HeatGeo",
    "KNNGraph",
    "KNNResult",
    "KNNTransformer",
    "LaplacianEigenmap",
    "NotFittedError",
    "OllivierRicci",
    "RecallEstimate",
    "RicciCommunities",
    "RicciFlow",
    "SVDResult",
    "SpectralClustering",
    "SpectralDensity",
    "TangentSpace",
    "TraceEstimate",
    "Tucker",
    "TuckerTensor",
    "__version__",
    "diffusion_spectral_entropy",
    "diffusion_spectral_mutual_information",
    "effective_rank",
    "eigsh",
    "forman_ricci",
    "heat_geodesic_distances",
    "heat_kernel",
    "intrinsic_dimension",
    "knn",
    "knn_graph",
    "laplacian",
    "laplacian_eigsh",
    "magnitude",
    "measures",
    "ollivier_ricci",
    "ot",
    "randomized_svd",
    "ricci_communities",
    "show_config",
    "spd",
    "spectral_density",
    "spectral_embedding",
    "trace_function",
    "tucker",
    "von_neumann_entropy",
]
