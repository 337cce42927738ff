"""Diffusion geometry on graphs: heat-kernel actions and multidimensional scaling.

CPU kernels in ``cpp/diffusion/``; the design and timing notes are in
``docs/design/diffusion.md``.
"""

from __future__ import annotations

from ._heat import heat_kernel
from ._mds import MDS, classical_mds, smacof

__all__ = ["MDS", "classical_mds", "heat_kernel", "smacof"]
