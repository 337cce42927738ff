"""Randomized SVD and Tucker decompositions.

CPU kernels in ``cpp/lowrank/``; the design and timing notes are in ``docs/design/lowrank.md``.
"""

from __future__ import annotations

from ._svd import SVDResult, randomized_svd
from ._tucker import Tucker, TuckerTensor, tucker

__all__ = ["SVDResult", "Tucker", "TuckerTensor", "randomized_svd", "tucker"]
