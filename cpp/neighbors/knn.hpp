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
/// float64 Euclidean / squared Euclidean searches with d >= 16 and n m >= 2^22 (exact finish)
/// run the kernel on float32 copies with k + 8 candidates per query and keep a row when its
/// k-th exact distance is provably below every dropped candidate's (a rigorous float32 error
/// bound); the other rows are searched again in float64 (docs/design/neighbors.md).
/// float32 Euclidean / squared Euclidean searches with d < 16 (exact finish) are screened the
/// same way by the kernel's difference form sum_t (x_t - y_t)^2 (rounding relative to the
/// distance) with k + 4 candidates: exact, whatever the data's offsets. From d = 16 on the
/// float32 kernel's ranking is not certified (geoml.knn searches a float64 copy there).
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

/// Both directions of an exact kNN between two blocks of points from one pass over their
/// distance tile: the min(k, nb) nearest rows of B to each row of A (`idx_ab`, `dist_ab`, na x
/// min(k, nb)) and the min(k, na) nearest rows of A to each row of B (`idx_ba`, `dist_ba`,
/// nb x min(k, na)); indices are local row numbers of the other block. Each pair of points is
/// scored once (the column side of the micro-kernel, as in knn_search's self query), so the
/// cost is O(na nb d) flops for both lists, half of two knn_search calls. Euclidean scores are
/// on both blocks centred at the mean of their union. The winners' distances are recomputed
/// exactly in double (knn_search's finishing step) and returned in double, rows sorted by
/// (distance, index), so lists from several blocks merge exactly as one search would order
/// them. With `B == nullptr`: knn_search's self query of A (a point excluded from its own
/// list, k <= na - 1) with double distances, into idx_ab / dist_ab only.
/// Memory O((na + nb) (d + k)). Threads: tiles in rounds that share no heap (same result for
/// any thread count). Throws std::invalid_argument on empty blocks or k < 1.
///
/// Optional pruning bounds (two-block query only; nullptr or +inf entries: none):
/// `bound_a[i]` (`bound_b[j]`) is a distance, in the metric's units, that the row's final k-th
/// neighbour is known not to exceed (e.g. its k-th distance within its own block). A candidate
/// enters the row's heap only when its score beats the bound's score plus a worst-case bound on
/// the score's rounding ((d + 8) eps (|x| + max |y|)^2 on the scaled rows), so every candidate
/// at a distance <= the bound is still considered; a row may then get fewer entries than its
/// list width, the rest (-1, +inf). Without it each block pair starts from empty heaps and pays
/// about k (1 + ln(nb / k)) heap insertions per row and side; with it about k.
template <typename T>
void knn_pair_search(const T* A, int64_t na, const T* B, int64_t nb, int64_t d, int64_t k,
                     Metric metric, int n_threads, int64_t* idx_ab, double* dist_ab,
                     int64_t* idx_ba, double* dist_ba, const double* bound_a = nullptr,
                     const double* bound_b = nullptr);

}  // namespace geoml
