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
/// choice order. With `seeds` and `count` (both or neither), each centre's index is also stored
/// in seeds[c] as it is chosen, then c + 1 in *count (a release store), so another thread can
/// use the seeds chosen so far (acquire loads of *count) while the rest are being chosen.
/// Throws std::invalid_argument unless 1 <= k <= m, d >= 1, 0 <= first < m and trials >= 1.
std::vector<int64_t> kmeanspp_greedy(const float* X, int64_t m, int64_t d, int64_t k, int64_t first,
                                     const double* u, int64_t trials, int n_threads,
                                     int64_t* seeds = nullptr, int64_t* count = nullptr);

/// Lloyd's assignment step from the scores: lab[r] = the first j minimising G[r, j] + cn[j]
/// (float32 sums; the first NaN where a sum is NaN) and best[r] that minimum, for the rows x k
/// row-major G, in one pass (NumPy's `G += cn; argmin(G, axis=1)` and the gather of the
/// minima, the same values). Throws std::invalid_argument unless k >= 1.
void argmin_shifted(const float* G, int64_t rows, int64_t k, const float* cn, int64_t* lab,
                    float* best);

}  // namespace geoml
