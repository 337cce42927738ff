// Greedy k-means++ seeding on float32 rows (PHATE's landmark clustering).
#pragma once
#include <cstdint>
#include <vector>

namespace geoml {

/// Greedy k-means++ seeds (scikit-learn's `_kmeans_plusplus`, as MiniBatchKMeans seeds phate's
/// landmarks) of the rows of X (m x d, row-major float32): row `first`, then per centre c >= 1
/// `trials` candidate rows drawn with probability proportional to their squared distance to the
/// closest centre so far (candidate t: the first row where the running sum of those distances
/// reaches u[(c - 1) trials + t] times their total, u uniform in [0, 1); uniformly by u when
/// the total is 0), keeping the candidate that lowers the summed squared distances most.
/// Distances in float32 (each square summed in coordinate order), sums in float64 in a fixed
/// order; the candidates of one centre are spread over threads, each summed by one thread: the
/// result does not depend on the thread count. Cost O(k trials m d). Returns k row indices in
/// choice order. Throws std::invalid_argument unless 1 <= k <= m, d >= 1, 0 <= first < m and
/// trials >= 1.
std::vector<int64_t> kmeanspp_greedy(const float* X, int64_t m, int64_t d, int64_t k, int64_t first,
                                     const double* u, int64_t trials, int n_threads);

}  // namespace geoml
