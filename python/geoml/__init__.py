"""geoml: compiled geometric machine learning.

kNN graphs, graph Laplacians and spectral embeddings, optimal transport, Ricci curvature and
low-rank decompositions, with C++/OpenMP kernels on the CPU and optional CUDA kernels. Importing
geoml never imports CuPy nor touches a GPU.
"""
from __future__ import annotations

from . import _core
from ._config import show_config
from . import ot
from .curvature import (FormanRicci, OllivierRicci, RicciCommunities, RicciFlow, forman_ricci,
                        ollivier_ricci, ricci_communities)
from .neighbors import KNNGraph, KNNResult, knn, knn_graph

__version__: str = _core.__version__

__all__ = ["KNNGraph", "KNNResult", "__version__", "knn", "knn_graph", "ot", "show_config"]
