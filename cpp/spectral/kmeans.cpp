#include "kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "common/common.hpp"

namespace geoml {

namespace {

inline double sqdist(const double* a, const double* b, int64_t d) {
  double s = 0;
  for (int64_t t = 0; t < d; ++t) {
    const double u = a[t] - b[t];
    s += u * u;
  }
  return s;
}

void kmeanspp(const double* X, int64_t n, int64_t d, int64_t k, std::mt19937_64& gen, double* C,
              int nt) {
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<double> d2(n);
  int64_t first = std::min<int64_t>(n - 1, static_cast<int64_t>(unif(gen) * n));
  std::copy(X + first * d, X + first * d + d, C);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) d2[i] = sqdist(X + i * d, C, d);
  for (int64_t c = 1; c < k; ++c) {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += d2[i];
    int64_t pick = 0;
    if (total > 0) {
      double r = unif(gen) * total, acc = 0;
      pick = n - 1;
      for (int64_t i = 0; i < n; ++i) {
        acc += d2[i];
        if (acc >= r && d2[i] > 0) {
          pick = i;
          break;
        }
      }
    } else {
      pick = std::min<int64_t>(n - 1, static_cast<int64_t>(unif(gen) * n));
    }
    double* cc = C + c * d;
    std::copy(X + pick * d, X + pick * d + d, cc);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) d2[i] = std::min(d2[i], sqdist(X + i * d, cc, d));
  }
}

// Sum of v in index order (one thread): thread-count independent bits.
double ordered_sum(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s;
}

}  // namespace

KMeansResult kmeans(const double* X, int64_t n, int64_t d, int64_t k, int n_init, int max_iter,
                    double tol, uint64_t seed, int n_threads) {
  if (k < 1 || k > n) throw std::invalid_argument("kmeans: need 1 <= n_clusters <= n_samples");
  const int nt = resolve_threads(n_threads);
  std::mt19937_64 gen(seed);
  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  std::vector<double> C(k * d), Cn(k * d);
  std::vector<int64_t> lab(n), cnt(k);
  std::vector<double> dmin(n);
  for (int run = 0; run < std::max(1, n_init); ++run) {
    kmeanspp(X, n, d, k, gen, C.data(), nt);
    std::fill(lab.begin(), lab.end(), -1);
    int64_t it = 0;
    double inertia = 0;
    for (it = 1; it <= std::max(1, max_iter); ++it) {
      int64_t changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed) num_threads(nt)
      for (int64_t i = 0; i < n; ++i) {
        int64_t bi = 0;
        double bd = std::numeric_limits<double>::infinity();
        for (int64_t c = 0; c < k; ++c) {
          const double v = sqdist(X + i * d, C.data() + c * d, d);
          if (v < bd) bd = v, bi = c;
        }
        if (lab[i] != bi) ++changed;
        lab[i] = bi;
        dmin[i] = bd;
      }
      // summed in row order after the region: the same bits for any thread count (an OpenMP
      // reduction adds per-thread partial sums, and n_init's best run is picked by this sum)
      inertia = ordered_sum(dmin);
      if (changed == 0) break;
      std::fill(Cn.begin(), Cn.end(), 0.0);
      std::fill(cnt.begin(), cnt.end(), 0);
      for (int64_t i = 0; i < n; ++i) {
        ++cnt[lab[i]];
        for (int64_t t = 0; t < d; ++t) Cn[lab[i] * d + t] += X[i * d + t];
      }
      for (int64_t c = 0; c < k; ++c) {
        if (cnt[c] == 0) {  // empty: move it to the worst-served point
          const int64_t far = std::max_element(dmin.begin(), dmin.end()) - dmin.begin();
          std::copy(X + far * d, X + far * d + d, Cn.begin() + c * d);
          dmin[far] = 0;
        } else {
          for (int64_t t = 0; t < d; ++t) Cn[c * d + t] /= double(cnt[c]);
        }
      }
      double shift = 0;
      for (int64_t e = 0; e < k * d; ++e) shift += (Cn[e] - C[e]) * (Cn[e] - C[e]);
      std::swap(C, Cn);
      if (shift <= tol) {
        // final assignment to the moved centres
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; ++i) {
          int64_t bi = 0;
          double bd = std::numeric_limits<double>::infinity();
          for (int64_t c = 0; c < k; ++c) {
            const double v = sqdist(X + i * d, C.data() + c * d, d);
            if (v < bd) bd = v, bi = c;
          }
          lab[i] = bi;
          dmin[i] = bd;
        }
        inertia = ordered_sum(dmin);
        break;
      }
    }
    if (inertia < best.inertia) {
      best.inertia = inertia;
      best.labels = lab;
      best.centers = C;
      best.n_iter = std::min<int64_t>(it, max_iter);
    }
  }
  return best;
}

}  // namespace geoml
