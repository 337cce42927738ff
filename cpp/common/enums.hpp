// Enums shared by the CPU kernels and the CUDA module (dependency-free: nvcc includes it too).
#pragma once

namespace geoml {

/// kNN distance (cpp/neighbors/knn.hpp, cuda/knn.hpp); bound once as geoml._core.Metric.
enum class Metric : int { Euclidean = 0, SqEuclidean = 1, Cosine = 2, InnerProduct = 3 };

}  // namespace geoml
