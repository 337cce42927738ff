// Local PCA spectra (see local_pca.hpp).
#include "measures/local_pca.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "spd/spd.hpp"

namespace geoml {

namespace {

#define GEOML_KERNEL_INC "measures/local_pca_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

constexpr int64_t kGroup = 256;  // points per unit of work: their Gram matrices stay in L2

}  // namespace

template <typename T>
void local_gram_eigvalsh(const T* X, int64_t D, const int64_t* idx, int64_t B, int k, double* w,
                         int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t groups = (B + kGroup - 1) / kGroup;
  const int64_t kk = int64_t(k) * k;
  const double scale = 1.0 / double(k - 1);
  int threads = int(resolve_threads(n_jobs));
  if (threads > groups) threads = int(groups);
  if (threads < 1) threads = 1;
  OmpErrors errors;  // the per-thread blocks; spd_eigh allocates (std::bad_alloc)
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> Y, mean, G;
    const bool ok = errors.run([&] {
      Y.resize(size_t(k) * size_t(D));
      mean.resize(static_cast<size_t>(D));
      G.resize(size_t(kGroup * kk));
    });
#pragma omp for schedule(static)
    for (int64_t c = 0; c < groups; ++c) {
      if (!ok) continue;
      const int64_t b0 = c * kGroup;
      const int64_t count = std::min(kGroup, B - b0);
      for (int64_t q = 0; q < count; ++q) {
        const int64_t* nb = idx + (b0 + q) * k;
        for (int i = 0; i < k; ++i) {
          const T* src = X + nb[i] * D;
          double* dst = Y.data() + size_t(i) * size_t(D);
          for (int64_t j = 0; j < D; ++j) dst[j] = double(src[j]);
        }
        GEOML_SIMD_CALL(isa, centred_gram, k, int(D), Y.data(), mean.data(), scale,
                        G.data() + q * kk);
      }
      // one thread per group of matrices (nested: this call's own region runs serially)
      errors.run([&] {
        spd_eigh<double>(G.data(), count, k, 1e-8, false, w + b0 * k, nullptr, status + b0, 1);
      });
    }
  }
  errors.rethrow();
}

template void local_gram_eigvalsh<float>(const float*, int64_t, const int64_t*, int64_t, int,
                                         double*, int8_t*, int);
template void local_gram_eigvalsh<double>(const double*, int64_t, const int64_t*, int64_t, int,
                                          double*, int8_t*, int);

}  // namespace geoml
