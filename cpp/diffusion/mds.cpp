// SMACOF metric MDS (see mds.hpp).
#include "diffusion/mds.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {

namespace {

#define GEOML_KERNEL_INC "diffusion/mds_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

/// One pass: per row, the stress, squared-distance and product terms over j > i and (when Y is
/// not null) the Guttman transform Y = (1/n) B(X) X, by the ISA's copy of smacof_row
/// (mds_kernel.inc) on the upper triangle: each ratio r_ij (a square root and a division) once
/// for both rows. Rows go round-robin to nb <= 32 fixed blocks (balanced triangle work), each
/// block with its own p x n accumulator of the lower-triangle halves, summed into Y in block
/// order: the result does not depend on the thread count. XT is X transposed (p x n).
template <typename T>
void guttman_pass(const T* D, int64_t n, int64_t p, const double* X, const double* XT, double* Y,
                  double* rs, double* rd, double* rw, std::vector<double>& acc, int nt) {
  const int64_t nb = std::min<int64_t>(n, 32);
  if (Y != nullptr) acc.assign(static_cast<size_t>(nb * p * n), 0.0);
  const SimdIsa isa = simd_isa();
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> dist;
    const bool ok = errors.run([&] { dist.resize(static_cast<size_t>(n)); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nb; ++b) {
      if (!ok) continue;
      double* A = Y != nullptr ? acc.data() + b * p * n : nullptr;
      for (int64_t i = b; i < n; i += nb)
        GEOML_SIMD_CALL(isa, smacof_row<T>, D + i * n, i, n, p, X + i * p, XT, dist.data(),
                        Y != nullptr ? Y + i * p : nullptr, A, rs + i, rd + i, rw + i);
    }
    if (Y != nullptr) {
      const double inv = 1.0 / double(n);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < p; ++c) {
          double y = Y[i * p + c];
          for (int64_t b = 0; b < nb; ++b) y += acc[(b * p + c) * n + i];
          Y[i * p + c] = inv * y;
        }
    }
  }
  errors.rethrow();
}

void transpose(const double* X, int64_t n, int64_t p, double* XT) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < p; ++c) XT[c * n + i] = X[i * p + c];
}

double ordered_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

template <typename T>
SmacofResult smacof(const T* D, int64_t n, int64_t p, double* X, int64_t max_iter, double eps,
                    int n_threads, bool verbose, bool relax) {
  if (n < 1 || p < 1 || max_iter < 0)
    throw std::invalid_argument("smacof: need n >= 1, p >= 1 and max_iter >= 0");
  // small problems on fewer threads: ~1e5 flops per thread and transform at least
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n * n * p / 100000)));
  const size_t np = static_cast<size_t>(n * p);
  std::vector<double> rs(static_cast<size_t>(n)), rd(static_cast<size_t>(n)),
      rw(static_cast<size_t>(n));
  std::vector<double> buf(np), xt(np), prev(relax ? np : 0), acc;
  double* cur = X;  // X_k
  double* next = buf.data();
  SmacofResult res;
  Progress progress("smacof");
  double old_stress = 0, scale = 1;
  // stress of X_k (relax: of its best multiple c X_k) and, below max_iter, its transform
  // into next; returns (stress, the sum of squared distances of the configuration it is of)
  auto pass = [&](bool transform) {
    transpose(cur, n, p, xt.data());
    guttman_pass<T>(D, n, p, cur, xt.data(), transform ? next : nullptr, rs.data(), rd.data(),
                    rw.data(), acc, nt);
    const double s = ordered_sum(rs), q = ordered_sum(rd), w = ordered_sum(rw);
    if (!relax || q <= 0) return std::make_pair(s, q);
    // stress(c X) = c^2 q - 2 c w + sum D^2 is least at c = w / q, where it is
    // s - (q - w)^2 / q (the transform does not depend on the scale: B(cX) cX = B(X) X)
    scale = w / q;
    return std::make_pair(std::max(0.0, s - (q - w) * (q - w) / q), scale * scale * q);
  };
  for (int64_t k = 0; k <= max_iter; ++k) {
    auto [stress, ssd] = pass(k < max_iter);
    if (relax && k >= 1 && stress > old_stress) {
      // the relaxed step went uphill: take the plain transform of X_{k-1} instead (its
      // stress is at most X_{k-1}'s: the majorisation guarantee)
      std::copy(prev.begin(), prev.end(), cur);
      std::tie(stress, ssd) = pass(k < max_iter);
    }
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
    if (relax) {
      // over-relaxed step X_{k+1} = 2 G(X_k) - c X_k (de Leeuw & Heiser 1980), the scale
      // factored out: the transform G(X_k) kept for a rejected step
      std::copy(next, next + np, prev.begin());
      for (size_t i = 0; i < np; ++i) cur[i] = 2.0 * next[i] - scale * cur[i];
    } else {
      std::swap(cur, next);
    }
  }
  if (verbose) progress.done();
  if (relax)
    for (size_t i = 0; i < np; ++i) cur[i] *= scale;
  if (cur != X)
    for (size_t i = 0; i < np; ++i) X[i] = cur[i];
  return res;
}

template <typename T>
void smacof_place(const T* D, int64_t n, int64_t L, int64_t p, const double* Z, double* Y,
                  int64_t n_iter, int n_threads) {
  if (n < 0 || L < 1 || p < 1 || n_iter < 0)
    throw std::invalid_argument("smacof_place: need L >= 1, p >= 1 and n_iter >= 0");
  const int nt = static_cast<int>(std::min<int64_t>(
      resolve_threads(n_threads), std::max<int64_t>(1, n * L * p * n_iter / 100000)));
  std::vector<double> zt(static_cast<size_t>(L * p)), colsum(static_cast<size_t>(p), 0.0);
  transpose(Z, L, p, zt.data());
  for (int64_t c = 0; c < p; ++c)
    for (int64_t l = 0; l < L; ++l) colsum[c] += zt[c * L + l];
  const SimdIsa isa = simd_isa();
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> dist, ynew;
    const bool ok = errors.run([&] {
      dist.resize(static_cast<size_t>(L));
      ynew.resize(static_cast<size_t>(p));
    });
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; ++i) {
      if (!ok) continue;
      GEOML_SIMD_CALL(isa, place_row<T>, D + i * L, L, p, zt.data(), colsum.data(), Y + i * p,
                      n_iter, dist.data(), ynew.data());
    }
  }
  errors.rethrow();
}

template void smacof_place<float>(const float*, int64_t, int64_t, int64_t, const double*, double*,
                                  int64_t, int);
template void smacof_place<double>(const double*, int64_t, int64_t, int64_t, const double*, double*,
                                   int64_t, int);

template SmacofResult smacof<float>(const float*, int64_t, int64_t, double*, int64_t, double, int,
                                    bool, bool);
template SmacofResult smacof<double>(const double*, int64_t, int64_t, double*, int64_t, double, int,
                                     bool, bool);

}  // namespace geoml
