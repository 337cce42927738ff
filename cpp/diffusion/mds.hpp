// Metric multidimensional scaling by SMACOF (Guttman transforms) on a dense dissimilarity matrix.
#pragma once
#include <cstdint>

namespace geoml {

/// Result of smacof: the raw stress sum_{i<j} (||x_i - x_j|| - D_ij)^2 of the returned X, the
/// number of Guttman transforms applied and whether the stopping rule was met.
struct SmacofResult {
  double stress = 0;
  int64_t n_iter = 0;
  bool converged = false;
};

/// Metric SMACOF with unit weights (Borg & Groenen, ch. 8): X <- (1/n) B(X) X with
/// B_ij = -D_ij / d_ij (0 where d_ij = ||x_i - x_j|| = 0), B_ii = -sum_{j != i} B_ij, which never
/// increases the stress. D is the dense symmetric (n x n, row-major) dissimilarity matrix (zero
/// diagonal), X the (n x p, row-major) start, overwritten by the result. Stops as
/// scikit-learn's smacof does (same iterates): after the transform k + 1 when
/// (stress_k - stress_{k+1}) < eps * sum_{i<j} d_ij(X_{k+1})^2, or after max_iter transforms.
/// One fused pass over D's upper triangle per transform computes the stress of the current X and
/// its transform (each ratio D_ij / d_ij once for both rows: half the square roots and divisions
/// of a full pass; O(n^2 p) flops, no n x n scratch); memory: (n x p) blocks, up to 32 of them
/// (fixed row blocks' accumulators). OpenMP over row blocks with `n_threads` threads (0: the
/// OpenMP default); sums are reduced in row and block order, so the result does not depend on
/// the thread count. `verbose`: a progress line on stderr every few
/// seconds (common.hpp Progress). `relax`: over-relaxed steps X_{k+1} = 2 G(X_k) - c_k X_k
/// (de Leeuw & Heiser 1980; G the transform, c_k = sum d D / sum d^2 the best scale of X_k, which
/// G ignores), the stress and stopping rule taken of c_k X_k, a step that raises the stress
/// replaced by the plain transform (one more pass), c X returned: fewer transforms (PHATE's
/// tree: 121 instead of 179), not scikit-learn's iterates. Throws std::invalid_argument
/// for n < 1, p < 1 or max_iter < 0.
template <typename T>
SmacofResult smacof(const T* D, int64_t n, int64_t p, double* X, int64_t max_iter, double eps,
                    int n_threads, bool verbose = false, bool relax = false);

/// Places n points against L fixed landmarks: for each point i, `n_iter` Guttman steps of its
/// own stress sum_l (||y_i - z_l|| - D_il)^2 (y_i <- (1/L) sum_l [z_l + D_il (y_i - z_l) /
/// ||y_i - z_l||]), each of which never increases it, stopping early when a step moves y_i by
/// less than 1e-9 of its norm (+ 1e-300). D is (n x L, row-major) the dissimilarities to the
/// landmarks, Z (L x p) their coordinates, Y (n x p) the start, overwritten. O(n L p n_iter)
/// flops, OpenMP over points (independent: the result does not depend on the thread count).
template <typename T>
void smacof_place(const T* D, int64_t n, int64_t L, int64_t p, const double* Z, double* Y,
                  int64_t n_iter, int n_threads);

}  // namespace geoml
