"""Measures of data geometry: intrinsic dimension, spectral entropies and effective rank,
diffusion spectral entropy and mutual information, and metric-space magnitude."""

from __future__ import annotations

from ._dse import (
    DiffusionMutualInformation,
    KNNSpectralMeasure,
    diffusion_spectral_entropy,
    diffusion_spectral_mutual_information,
)
from ._entropy import SpectralMeasure, effective_rank, von_neumann_entropy
from ._intrinsic import ApproxIntrinsicDimension, IntrinsicDimension, intrinsic_dimension
from ._magnitude import MagnitudeResult, magnitude, magnitude_dimension, weighting_vector

__all__ = [
    "ApproxIntrinsicDimension",
    "DiffusionMutualInformation",
    "IntrinsicDimension",
    "KNNSpectralMeasure",
    "MagnitudeResult",
    "SpectralMeasure",
    "diffusion_spectral_entropy",
    "diffusion_spectral_mutual_information",
    "effective_rank",
    "intrinsic_dimension",
    "magnitude",
    "magnitude_dimension",
    "von_neumann_entropy",
    "weighting_vector",
]
