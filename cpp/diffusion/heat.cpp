// Chebyshev heat-kernel actions (see heat.hpp).
#include "diffusion/heat.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/common.hpp"

namespace geoml {

namespace {

/// Y_j (+)= c_j * Tk for every time j in one pass over the rows (first: Y_j = c_j Tk).
template <typename T>
void accumulate(const T* Tk, int64_t n, int64_t m, const double* coef, int n_t, int stride, int k,
                T* Y, bool first, int nt) {
  const int64_t size = n * m;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < n; ++r) {
    const T* x = Tk + r * m;
    for (int j = 0; j < n_t; ++j) {
      const double c = coef[static_cast<int64_t>(j) * stride + k];
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

}  // namespace

template <typename T, typename I>
void heat_chebyshev(const CsrRef<T, I>& S, const T* X, int64_t m, const double* coef, int n_t,
                    int K, T* Y, int n_threads) {
  if (K < 0 || n_t < 1) throw std::invalid_argument("heat_chebyshev: need K >= 0 and n_t >= 1");
  const int64_t n = S.rows;
  // small products run on fewer threads (a parallel region costs more than it saves below
  // ~1e5 flops, much more on a busy machine): ~1e5 flops per thread at least
  const int64_t work = (static_cast<int64_t>(S.indptr[n]) + n * (n_t + 2)) * m;
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, work / 100000)));
  const int stride = K + 1;
  accumulate<T>(X, n, m, coef, n_t, stride, 0, Y, true, nt);
  if (K == 0) return;
  std::vector<T> a(static_cast<size_t>(n * m)), b(static_cast<size_t>(n * m));
  T* prev = a.data();                      // T_{k-1}
  T* cur = b.data();                       // T_k
  csr_mm<double, T, I>(S, X, m, cur, nt);  // T_1 = S X
  accumulate<T>(cur, n, m, coef, n_t, stride, 1, Y, false, nt);
  // T_0 = X is kept as the caller's array; copy it once into prev for the in-place update
  {
    const int64_t size = n * m;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < size; ++i) prev[i] = X[i];
  }
  for (int k = 2; k <= K; ++k) {
    csr_mm<double, T, I>(S, cur, m, prev, nt, 2.0, prev, -1.0);  // prev = 2 S cur - prev
    accumulate<T>(prev, n, m, coef, n_t, stride, k, Y, false, nt);
    std::swap(prev, cur);
  }
}

#define GEOML_HEAT(T, I)                                                                         \
  template void heat_chebyshev<T, I>(const CsrRef<T, I>&, const T*, int64_t, const double*, int, \
                                     int, T*, int);
GEOML_HEAT(float, int32_t)
GEOML_HEAT(float, int64_t)
GEOML_HEAT(double, int32_t)
GEOML_HEAT(double, int64_t)
#undef GEOML_HEAT

}  // namespace geoml
