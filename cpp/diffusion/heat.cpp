// Chebyshev heat-kernel actions (see heat.hpp).
#include "diffusion/heat.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"

namespace geoml {

namespace {

#define GEOML_KERNEL_INC "diffusion/heat_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

/// Y_j (+)= coef[j, k] * Tk for every time j in one pass over the rows (first: Y_j = c Tk).
template <typename T>
void accumulate(const T* Tk, int64_t n, int64_t m, const double* coef, int n_t, int64_t stride,
                int64_t k, T* Y, bool first, int nt) {
  const int64_t size = n * m;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < n; ++r) {
    const T* x = Tk + r * m;
    for (int j = 0; j < n_t; ++j) {
      const double c = coef[j * stride + k];
      T* y = Y + j * size + r * m;
      if (first) {
#pragma omp simd
        for (int64_t q = 0; q < m; ++q) y[q] = T(c * double(x[q]));
      } else {
#pragma omp simd
        for (int64_t q = 0; q < m; ++q) y[q] = T(double(y[q]) + c * double(x[q]));
      }
    }
  }
}

/// One Chebyshev order fused with its sums, row by row while the row is in cache:
/// next = S cur (k == 1) or 2 S cur - prev (prev may equal next: row i of prev is read before
/// row i of next is written), then Y_j += coef[j, k] next for every time j. The same roundings
/// as csr_mm (double row accumulator) followed by accumulate(): a pass over the (n x m) block
/// fewer per order.
template <typename T, typename I>
void cheb_order(const CsrRef<T, I>& S, const T* cur, const T* prev, T* next, int64_t m,
                const double* coef, int n_t, int64_t stride, int64_t k, T* Y, int nt) {
  const int64_t n = S.rows;
  const int64_t size = n * m;
  const I* indptr = S.indptr;
  const I* indices = S.indices;
  const T* data = S.data;
  const SimdIsa isa = simd_isa();
  std::vector<double> cj(static_cast<size_t>(n_t));
  for (int j = 0; j < n_t; ++j) cj[static_cast<size_t>(j)] = coef[j * stride + k];
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> acc;
    const bool ok = errors.run([&] { acc.resize(static_cast<size_t>(m)); });
#pragma omp for schedule(dynamic, 512)
    for (int64_t i = 0; i < n; ++i) {
      if (!ok) continue;
      const int64_t b = static_cast<int64_t>(indptr[i]);
      GEOML_SIMD_CALL(isa, cheb_row, indices + b, data + b, static_cast<int64_t>(indptr[i + 1]) - b,
                      cur, prev != nullptr ? prev + i * m : nullptr, next + i * m, m, cj.data(),
                      n_t, Y + i * m, size, acc.data());
    }
  }
  errors.rethrow();
}

}  // namespace

template <typename T, typename I>
void heat_chebyshev(const CsrRef<T, I>& S, const T* X, int64_t m, const double* coef, int n_t,
                    int64_t stride, int64_t k_begin, int64_t k_end, T* Y, T* buf0, T* buf1,
                    int n_threads) {
  if (k_begin < 0 || k_end < k_begin || stride <= k_end || n_t < 1)
    throw std::invalid_argument("heat_chebyshev: need 0 <= k_begin <= k_end < stride, n_t >= 1");
  const int64_t n = S.rows;
  // small products run on fewer threads (a parallel region costs more than it saves below
  // ~1e5 flops, much more on a busy machine): ~1e5 flops per thread at least
  const int64_t work = (static_cast<int64_t>(S.indptr[n]) + n * (n_t + 2)) * m;
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, work / 100000)));
  T* buf[2] = {buf0, buf1};
  int64_t k = k_begin;
  if (k == 0) {
    accumulate<T>(X, n, m, coef, n_t, stride, 0, Y, true, nt);
    const int64_t size = n * m;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < size; ++i) buf0[i] = X[i];
    ++k;
  }
  if (k == 1 && k <= k_end) {
    cheb_order<T, I>(S, buf0, nullptr, buf1, m, coef, n_t, stride, 1, Y, nt);  // T_1 = S X
    ++k;
  }
  for (; k <= k_end; ++k) {
    T* next = buf[k & 1];  // holds T_{k-2}, becomes T_k
    cheb_order<T, I>(S, buf[(k - 1) & 1], next, next, m, coef, n_t, stride, k, Y, nt);
  }
}

#define GEOML_HEAT(T, I)                                                                         \
  template void heat_chebyshev<T, I>(const CsrRef<T, I>&, const T*, int64_t, const double*, int, \
                                     int64_t, int64_t, int64_t, T*, T*, T*, int);
GEOML_HEAT(float, int32_t)
GEOML_HEAT(float, int64_t)
GEOML_HEAT(double, int32_t)
GEOML_HEAT(double, int64_t)
#undef GEOML_HEAT

}  // namespace geoml
