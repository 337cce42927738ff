// Greedy k-means++ seeding (see kmeanspp.hpp).
#include "diffusion/kmeanspp.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "common/common.hpp"
#include "common/simd.hpp"

namespace geoml {

namespace {

constexpr int64_t KMPP_BLOCK = 64;  // rows per block of the kernel (and of its partial sums)

#define GEOML_KERNEL_INC "diffusion/kmeanspp_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

}  // namespace

std::vector<int64_t> kmeanspp_greedy(const float* X, int64_t m, int64_t d, int64_t k, int64_t first,
                                     const double* u, int64_t trials, int n_threads, int64_t* seeds,
                                     int64_t* count) {
  if (k < 1 || k > m || d < 1 || first < 0 || first >= m || trials < 1)
    throw std::invalid_argument(
        "kmeanspp_greedy: need 1 <= k <= m, d >= 1, 0 <= first < m and trials >= 1");
  // a parallel region per centre only with ~1e5 flops or more per candidate
  const int nt =
      static_cast<int>(std::min<int64_t>({static_cast<int64_t>(resolve_threads(n_threads)), trials,
                                          std::max<int64_t>(1, m * d / 50000)}));
  // X transposed, its rows padded to mp (a multiple of the kernel's 64) with zeros whose
  // closest distance is 0: they add nothing to any sum and are never drawn
  const int64_t nb = (m + KMPP_BLOCK - 1) / KMPP_BLOCK, mp = nb * KMPP_BLOCK;
  std::vector<float> xt(static_cast<size_t>(mp * d), 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < d; ++c) xt[c * mp + i] = X[i * d + c];
  std::vector<float> closest(static_cast<size_t>(mp), 0.0f);
  std::fill(closest.begin(), closest.begin() + m, std::numeric_limits<float>::infinity());
  std::vector<float> cand_out(static_cast<size_t>(trials * mp));
  std::vector<double> bsum(static_cast<size_t>(nb)), cand_bsum(static_cast<size_t>(trials * nb));
  std::vector<double> sums(static_cast<size_t>(trials));
  std::vector<int64_t> cand(static_cast<size_t>(trials)), idx(static_cast<size_t>(k));
  const SimdIsa isa = simd_isa();
  auto publish = [&](int64_t c) {  // centre c chosen: visible to a reader of *count
    if (seeds == nullptr || count == nullptr) return;
    seeds[c] = idx[c];
    __atomic_store_n(count, c + 1, __ATOMIC_RELEASE);
  };
  // the first row where the running sum of closest (block sums, then the rows of the block
  // in order) reaches v; m - 1 when rounding leaves v above the total
  auto search = [&](double v) -> int64_t {
    double run = 0;
    for (int64_t b = 0; b < nb; ++b) {
      if (run + bsum[b] >= v) {
        double r = run;
        const int64_t e = std::min(m, (b + 1) * KMPP_BLOCK);
        for (int64_t i = b * KMPP_BLOCK; i < e; ++i)
          if ((r += double(closest[i])) >= v) return i;
        return e - 1;
      }
      run += bsum[b];
    }
    return m - 1;
  };
  idx[0] = first;
  double pot = GEOML_SIMD_CALL(isa, kmpp_candidate, xt.data(), mp, d, X + first * d, closest.data(),
                               cand_out.data(), bsum.data());
  std::copy(cand_out.begin(), cand_out.begin() + mp, closest.begin());
  publish(0);
  for (int64_t c = 1; c < k; ++c) {
    const double* uc = u + (c - 1) * trials;
    for (int64_t t = 0; t < trials; ++t)
      cand[t] = pot > 0 ? search(uc[t] * pot)
                        : std::min<int64_t>(m - 1, static_cast<int64_t>(uc[t] * double(m)));
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < trials; ++t)
      sums[t] =
          GEOML_SIMD_CALL(isa, kmpp_candidate, xt.data(), mp, d, X + cand[t] * d, closest.data(),
                          cand_out.data() + t * mp, cand_bsum.data() + t * nb);
    const int64_t best = std::min_element(sums.begin(), sums.end()) - sums.begin();
    idx[c] = cand[best];
    pot = sums[best];
    std::copy(cand_out.begin() + best * mp, cand_out.begin() + (best + 1) * mp, closest.begin());
    std::copy(cand_bsum.begin() + best * nb, cand_bsum.begin() + (best + 1) * nb, bsum.begin());
    publish(c);
  }
  return idx;
}

void argmin_shifted(const float* G, int64_t rows, int64_t k, const float* cn, int64_t* lab,
                    float* best) {
  if (k < 1) throw std::invalid_argument("argmin_shifted: need k >= 1");
  GEOML_SIMD_CALL(simd_isa(), argmin_shifted, G, rows, k, cn, lab, best);
}

}  // namespace geoml
