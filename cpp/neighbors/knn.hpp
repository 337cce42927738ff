// Exact k-nearest-neighbour search on the CPU.
#pragma once
#include <cstdint>

#include "common/enums.hpp"

namespace geoml {

/// Exact k nearest neighbours of the m rows of `Q` among the n rows of `X` (both row-major,
/// d columns). If `Q == nullptr` the queries are the rows of X themselves ("self query"):
/// then each pair of points is scored once (upper triangle of the distance matrix, both
/// endpoints updated), which halves the arithmetic, and `exclude_self` drops index i from
/// the neighbours of point i (duplicates of i stay, at distance 0).
///
/// Euclidean scores are computed on data centred at the mean of X, so float32 ranking
/// precision is relative to the spread of the data, not to its distance from the origin.
/// Scores come from a register-blocked micro-kernel (dot products of 6 queries x 2 SIMD
/// vectors of data points) fused with the top-k selection: ||y||^2 - 2 x.y is compared with
/// each query's current k-th best and only the winners touch the heap. The kernel is compiled
/// for AVX-512, AVX2+FMA and baseline and chosen at run time. The k winners' distances are
/// then recomputed directly (difference form, double accumulation) so they are exact, never
/// negative, and 0 for duplicates; rows are sorted by (distance, index).
///
/// Cost O(m n d) flops (about half of that for a self query), memory O((n + m) d + m k):
/// no m x n matrix. Outputs are caller-owned arrays of m * k entries.
/// Requires 1 <= k <= n (k <= n - 1 with exclude_self); throws std::invalid_argument otherwise.
/// `verbose` prints the progress to stderr about every 2 seconds. With `exact_finish` false
/// the finishing step is skipped: rows are sorted by (score, index) and `distances` holds the
/// kernel's scores (ranking values, not distances); used where only the indices matter.
template <typename T>
void knn_search(const T* X, int64_t n, const T* Q, int64_t m, int64_t d, int64_t k, Metric metric,
                bool exclude_self, int n_threads, int64_t* indices, T* distances,
                bool verbose = false, bool exact_finish = true);

}  // namespace geoml
