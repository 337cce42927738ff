"""Diffusion geometry on graphs: heat-kernel actions and multidimensional scaling.

CPU kernels in ``cpp/diffusion/``; the design and timing notes are in
``docs/design/diffusion.md``.
"""

from __future__ import annotations

from ._heat import heat_kernel
from ._heatgeo import HeatGeo, alpha_decay_graph, heat_geodesic_distances
from ._mds import MDS, classical_mds, smacof

__all__ = [
    "MDS",
    "HeatGeo",
    "alpha_decay_graph",
    "classical_mds",
    "heat_geodesic_distances",
    "heat_kernel",
    "smacof",
]
