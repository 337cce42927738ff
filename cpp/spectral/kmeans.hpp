// k-means clustering (Lloyd's iterations, k-means++ seeding, several restarts).
#pragma once
#include <cstdint>
#include <vector>

namespace geoml {

struct KMeansResult {
  std::vector<int64_t> labels;  ///< n cluster indices in [0, k)
  std::vector<double> centers;  ///< k x d row-major
  double inertia = 0;           ///< sum of squared distances to the assigned centre
  int64_t n_iter = 0;           ///< Lloyd iterations of the best restart
};

/// k-means on the rows of X (n x d row-major, float64): `n_init` restarts, each seeded by
/// k-means++ (Arthur & Vassilvitskii 2007) and refined by Lloyd's iterations until no label
/// changes, the centres move by less than tol (squared, summed), or max_iter; the restart with
/// the smallest inertia wins. An emptied cluster takes the point farthest from its centre.
/// Cost O(n_init max_iter n k d), parallel over points; memory O(n + k d). Result owns its
/// memory. Throws std::invalid_argument for k < 1 or k > n.
KMeansResult kmeans(const double* X, int64_t n, int64_t d, int64_t k, int n_init, int max_iter,
                    double tol, uint64_t seed, int n_threads);

}  // namespace geoml
