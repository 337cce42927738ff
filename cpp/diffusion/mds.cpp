// SMACOF metric MDS (see mds.hpp).
#include "diffusion/mds.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/common.hpp"

namespace geoml {

namespace {

/// One pass: for every row i, the stress terms sum_{j > i} (d_ij - D_ij)^2 and the squared
/// distances sum_{j > i} d_ij^2 of X (into rs[i], rd[i]) and, when Y is not null, the Guttman
/// transform row Y_i = (1/n) sum_j r_ij (x_i - x_j), r_ij = D_ij / d_ij.
template <typename T>
void guttman_pass(const T* D, int64_t n, int64_t p, const double* X, double* Y, double* rs,
                  double* rd, int nt) {
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> acc(static_cast<size_t>(p));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      const double* xi = X + i * p;
      const T* Di = D + i * n;
      double s = 0, q = 0, rsum = 0;
      for (int64_t c = 0; c < p; ++c) acc[c] = 0;
      for (int64_t j = 0; j < n; ++j) {
        const double* xj = X + j * p;
        double d2 = 0;
        for (int64_t c = 0; c < p; ++c) {
          const double e = xi[c] - xj[c];
          d2 += e * e;
        }
        const double d = std::sqrt(d2);
        const double delta = double(Di[j]);
        if (j > i) {
          const double e = d - delta;
          s += e * e;
          q += d2;
        }
        if (Y != nullptr && d > 0 && j != i) {
          const double r = delta / d;
          rsum += r;
          for (int64_t c = 0; c < p; ++c) acc[c] += r * xj[c];
        }
      }
      rs[i] = s;
      rd[i] = q;
      if (Y != nullptr) {
        double* yi = Y + i * p;
        const double inv = 1.0 / double(n);
        for (int64_t c = 0; c < p; ++c) yi[c] = inv * (rsum * xi[c] - acc[c]);
      }
    }
  }
}

double ordered_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

template <typename T>
SmacofResult smacof(const T* D, int64_t n, int64_t p, double* X, int64_t max_iter, double eps,
                    int n_threads, bool verbose) {
  if (n < 1 || p < 1 || max_iter < 0)
    throw std::invalid_argument("smacof: need n >= 1, p >= 1 and max_iter >= 0");
  // small problems on fewer threads: ~1e5 flops per thread and transform at least
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n * n * p / 100000)));
  std::vector<double> rs(static_cast<size_t>(n)), rd(static_cast<size_t>(n));
  std::vector<double> buf(static_cast<size_t>(n * p));
  double* cur = X;  // X_k
  double* next = buf.data();
  SmacofResult res;
  Progress progress("smacof");
  double old_stress = 0;
  for (int64_t k = 0; k <= max_iter; ++k) {
    // stress of X_k (and, below max_iter, X_{k+1} = transform of X_k)
    guttman_pass<T>(D, n, p, cur, k < max_iter ? next : nullptr, rs.data(), rd.data(), nt);
    const double stress = ordered_sum(rs);
    const double ssd = ordered_sum(rd);
    res.stress = stress;
    res.n_iter = k;
    if (verbose) progress.report(k, max_iter);
    // as scikit-learn: the stress of the start is not compared (k >= 2)
    if (k >= 2 && (old_stress - stress) < eps * ssd) {
      res.converged = true;
      break;
    }
    if (k == max_iter) break;
    old_stress = stress;
    std::swap(cur, next);
  }
  if (verbose) progress.done();
  if (cur != X)
    for (int64_t i = 0; i < n * p; ++i) X[i] = cur[i];
  return res;
}

template SmacofResult smacof<float>(const float*, int64_t, int64_t, double*, int64_t, double, int,
                                    bool);
template SmacofResult smacof<double>(const double*, int64_t, int64_t, double*, int64_t, double, int,
                                     bool);

}  // namespace geoml
