"""Exact k-nearest neighbours and kNN graphs (CPU kernels in ``cpp/neighbors/``;
GPU kernels in ``cuda/knn.cu`` for CuPy input or ``device="cuda"``, see ``_neighbors_gpu.py``)."""

from __future__ import annotations

from .. import _core  # noqa: F401  (tests patch geoml.neighbors._core)
from ._graph import (
    KNNGraph,
    _check_graph_options,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    _graph_from_neighbors,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    _knn_graph_checked,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    _to_csr,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    knn_graph,
)
from ._knn import (
    ApproxKNNResult,
    KNNResult,
    RecallEstimate,
    _check_magnitude,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    _check_metric,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    _knn_checked,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    _symmetrize_mode,  # noqa: F401  (used by geoml.dask, geoml.spectral, tests)
    knn,
)
from ._transformer import KNNTransformer

__all__ = [
    "ApproxKNNResult",
    "KNNGraph",
    "KNNResult",
    "KNNTransformer",
    "RecallEstimate",
    "knn",
    "knn_graph",
]
