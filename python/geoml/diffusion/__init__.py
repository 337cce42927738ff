"""Diffusion geometry on graphs: heat-kernel actions, multidimensional scaling, HeatGeo
and PHATE.

CPU kernels in ``cpp/diffusion/``; the design and timing notes are in
``docs/design/diffusion.md``.
"""

from __future__ import annotations

from ._heat import heat_kernel
from ._heatgeo import (
    HeatGeo,
    alpha_decay_graph,
    heat_entropy_time,
    heat_geodesic_distances,
)
from ._mds import MDS, classical_mds, smacof
from ._phate import PHATE, knee_point, von_neumann_entropy

__all__ = [
    "MDS",
    "PHATE",
    "HeatGeo",
    "alpha_decay_graph",
    "classical_mds",
    "heat_entropy_time",
    "heat_geodesic_distances",
    "heat_kernel",
    "knee_point",
    "smacof",
    "von_neumann_entropy",
]
