// CSR x dense products (see sparse.hpp).
#include "common/sparse.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "common/omp_errors.hpp"
#include "common/simd.hpp"

#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {

// ------------------------- per-ISA kernels of eigsh's filtered check (check_kernel.inc)
namespace {
#define GEOML_KERNEL_INC "common/check_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"
}  // namespace

namespace {
/// y[c0 .. c0 + S) = sum over the row's entries p in [p0, p1) of data[p] X[indices[p], c0 ..]
/// (Add: the sums continue from y's values, in order, instead of starting at 0).
template <int S, bool Add = false, typename T, typename I>
inline void row_panel(I p0, I p1, const I* indices, const T* data, const T* X, int64_t s,
                      int64_t c0, T* y) {
  T acc[S] = {};
  if constexpr (Add)
    for (int c = 0; c < S; ++c) acc[c] = y[c0 + c];
  for (I p = p0; p < p1; ++p) {
    const T a = data[p];
    const T* x = X + static_cast<int64_t>(indices[p]) * s + c0;
    for (int c = 0; c < S; ++c) acc[c] += a * x[c];
  }
  for (int c = 0; c < S; ++c) y[c0 + c] = acc[c];
}

/// The last s - c0 (at most S) columns of a row: one panel of their exact width (none when
/// c0 == s).
template <int S, bool Add = false, typename T, typename I>
inline void row_tail(I p0, I p1, const I* indices, const T* data, const T* X, int64_t s, int64_t c0,
                     T* y) {
  if constexpr (S > 0) {
    if (s - c0 == S)
      row_panel<S, Add>(p0, p1, indices, data, X, s, c0, y);
    else
      row_tail<S - 1, Add>(p0, p1, indices, data, X, s, c0, y);
  }
}

/// y[0 .. s) = the row [p0, p1) of A times X: panels of 8 columns (then the remainder), each
/// accumulated in a local array the compiler keeps in registers. Each column's sum runs over
/// the row's entries in order.
template <bool Add = false, typename T, typename I>
inline void row_block(I p0, I p1, const I* indices, const T* data, const T* X, int64_t s, T* y) {
  const int64_t s8 = s - s % 8;
  for (int64_t c0 = 0; c0 < s8; c0 += 8) row_panel<8, Add>(p0, p1, indices, data, X, s, c0, y);
  row_tail<7, Add>(p0, p1, indices, data, X, s, s8, y);
}
}  // namespace

template <typename Acc, typename T, typename I>
void csr_mm(const CsrRef<T, I>& A, const T* X, int64_t s, T* Y, int n_threads, double alpha,
            const T* B, double beta) {
  const int nt = n_threads > 0 ? n_threads : 1;
  const int64_t n = A.rows;
  const I* indptr = A.indptr;
  const I* indices = A.indices;
  const T* data = A.data;
  if (s == 1 && alpha == 1.0 && B == nullptr) {  // matrix-vector: one dot product per row
#pragma omp parallel for schedule(static, 512) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) {
      Acc acc = 0;
      for (I p = indptr[i]; p < indptr[i + 1]; ++p) acc += Acc(data[p]) * Acc(X[indices[p]]);
      Y[i] = T(acc);
    }
    return;
  }
  if constexpr (std::is_same_v<Acc, T>) {
    if (alpha == 1.0 && B == nullptr) {  // Y = A X, rows accumulated in registers
      // columns in panels of 8 (then the remainder), each accumulated in a local array the
      // compiler keeps in registers: accumulating in Y itself went through a store and a
      // reload per stored entry (Y may alias X), ~4x slower for 4-column blocks. Each
      // column's sum runs over the row's entries in order, as before.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 256)
      for (int64_t i = 0; i < n; ++i)
        row_block(indptr[i], indptr[i + 1], indices, data, X, s, Y + i * s);
      return;
    }
  }
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<Acc> acc;
    const bool ready = errors.run([&] { acc.resize(static_cast<size_t>(s)); });
#pragma omp for schedule(dynamic, 512)
    for (int64_t i = 0; i < n; ++i) {
      if (!ready) continue;
      Acc* a = acc.data();
      for (int64_t c = 0; c < s; ++c) a[c] = 0;
      for (I p = indptr[i]; p < indptr[i + 1]; ++p) {
        const Acc v = data[p];
        const T* x = X + static_cast<int64_t>(indices[p]) * s;
#pragma omp simd
        for (int64_t c = 0; c < s; ++c) a[c] += v * Acc(x[c]);
      }
      T* y = Y + i * s;
      if (B == nullptr) {
#pragma omp simd
        for (int64_t c = 0; c < s; ++c) y[c] = T(alpha * a[c]);
      } else {
        const T* b = B + i * s;
#pragma omp simd
        for (int64_t c = 0; c < s; ++c) y[c] = T(alpha * a[c] + beta * b[c]);
      }
    }
  }
  errors.rethrow();
}

namespace {
/// Inside a parallel region: one 4-column step (cheb_rows4; with B, A's part of every row, a
/// barrier, then B's part continuing it).
template <typename I>
void cheb_step4(SimdIsa isa, const CsrRef<double, I>& A, const CsrRef<double, I>* B,
                const double* X, const double* Z, double s1, double c, double s2, double* Y,
                int64_t yr, int64_t yc) {
  const int64_t n = A.rows;
#pragma omp for schedule(dynamic, 1)
  for (int64_t r0 = 0; r0 < n; r0 += 256)
    GEOML_SIMD_CALL(isa, cheb_rows4<I>, r0, std::min<int64_t>(r0 + 256, n), A.indptr, A.indices,
                    A.data, X, Z, s1, c, s2, Y, yr, yc, B != nullptr ? 1 : 0);
  if (B == nullptr) return;
#pragma omp for schedule(dynamic, 1)
  for (int64_t r0 = 0; r0 < n; r0 += 256)
    GEOML_SIMD_CALL(isa, cheb_rows4<I>, r0, std::min<int64_t>(r0 + 256, n), B->indptr, B->indices,
                    B->data, X, Z, s1, c, s2, Y, yr, yc, 2);
}
}  // namespace

template <typename I>
void csr_cheb_mm(const CsrRef<double, I>& A, const double* X, int64_t s, const double* Z, double s1,
                 double c, double s2, double* Y, int n_threads, const CsrRef<double, I>* B) {
  const int nt = n_threads > 0 ? n_threads : 1;
  const int64_t n = A.rows;
  if (s == 4) {  // the check's block: per-ISA rows (check_kernel.inc)
    const SimdIsa isa = simd_isa();
#pragma omp parallel num_threads(nt)
    cheb_step4(isa, A, B, X, Z, s1, c, s2, Y, 4, 1);
    return;
  }
  if (B != nullptr) {  // A's part of every row first (all rows), B's part continues the sums
#pragma omp parallel for num_threads(nt) schedule(dynamic, 256)
    for (int64_t i = 0; i < n; ++i)
      row_block(A.indptr[i], A.indptr[i + 1], A.indices, A.data, X, s, Y + i * s);
  }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 256)
  for (int64_t i = 0; i < n; ++i) {
    double* y = Y + i * s;
    if (B != nullptr)
      row_block<true>(B->indptr[i], B->indptr[i + 1], B->indices, B->data, X, s, y);
    else
      row_block(A.indptr[i], A.indptr[i + 1], A.indices, A.data, X, s, y);
    const double* x = X + i * s;
    const double* z = Z + i * s;
    for (int64_t j = 0; j < s; ++j) y[j] = s1 * (y[j] - c * x[j]) - s2 * z[j];
  }
}
template <typename I>
void csr_cheb_filter(const CsrRef<double, I>& A, const double* X, int64_t xr, int64_t xc, int64_t s,
                     int degree, double c, double e, double* W, double* out, int64_t ldo,
                     int n_threads, const CsrRef<double, I>* B) {
  const int nt = n_threads > 0 ? n_threads : 1;
  const int64_t n = A.rows, ns = (A.rows * s + 7) / 8 * 8;  // blocks on 64-byte boundaries
  W += (8 - reinterpret_cast<uintptr_t>(W) / sizeof(double) % 8) % 8;
  double* buf[3] = {W, W + ns, W + 2 * ns};
  if (s == 4) {  // one parallel region: the steps of cheb_rows4, barriers between
    const SimdIsa isa = simd_isa();
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < 4; ++k) buf[0][i * 4 + k] = X[i * xr + k * xc];
      for (int step = 0; step < degree; ++step) {
        // y_{step+1} = s1 (A y_step - c y_step) - s2 y_{step-1} (y_{-1} = y_0 with s2 = 0)
        const double* y1 = buf[step % 3];
        const double* y0 = step > 0 ? buf[(step + 2) % 3] : y1;
        const double s1 = (step > 0 ? 2.0 : 1.0) / e, s2 = step > 0 ? 1.0 : 0.0;
        const bool last = step == degree - 1;
        double* y = last ? out : buf[(step + 1) % 3];
        const int64_t yr = last ? 1 : 4, yc = last ? ldo : 1;
        cheb_step4(isa, A, B, y1, y0, s1, c, s2, y, yr, yc);
      }
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < s; ++k) buf[0][i * s + k] = X[i * xr + k * xc];
  for (int step = 0; step < degree; ++step) {
    const double* y1 = buf[step % 3];
    const double* y0 = step > 0 ? buf[(step + 2) % 3] : y1;
    csr_cheb_mm<I>(A, y1, s, y0, (step > 0 ? 2.0 : 1.0) / e, c, step > 0 ? 1.0 : 0.0,
                   buf[(step + 1) % 3], nt, B);
  }
  const double* y = buf[degree % 3];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < s; ++k) out[i + k * ldo] = y[i * s + k];
}
template void csr_cheb_filter<int32_t>(const CsrRef<double, int32_t>&, const double*, int64_t,
                                       int64_t, int64_t, int, double, double, double*, double*,
                                       int64_t, int, const CsrRef<double, int32_t>*);
template void csr_cheb_filter<int64_t>(const CsrRef<double, int64_t>&, const double*, int64_t,
                                       int64_t, int64_t, int, double, double, double*, double*,
                                       int64_t, int, const CsrRef<double, int64_t>*);

template void csr_cheb_mm<int32_t>(const CsrRef<double, int32_t>&, const double*, int64_t,
                                   const double*, double, double, double, double*, int,
                                   const CsrRef<double, int32_t>*);
template void csr_cheb_mm<int64_t>(const CsrRef<double, int64_t>&, const double*, int64_t,
                                   const double*, double, double, double, double*, int,
                                   const CsrRef<double, int64_t>*);

void tall_gram(int64_t n, const double* A, int64_t lda, int64_t p, const double* B, int64_t ldb,
               int64_t q, double* G, int n_threads) {
  if (p == 0 || q == 0) return;
  const int64_t nchunks = (n + kTallChunk - 1) / kTallChunk;
  const int64_t pq = p * q;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(nchunks, 1) * pq), 0.0);
  const int nt = n_threads > 0 ? n_threads : 1;
  const SimdIsa isa = simd_isa();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t ch = 0; ch < nchunks; ++ch) {
    const int64_t r0 = ch * kTallChunk;
    GEOML_SIMD_CALL(isa, tall_gram_chunk, std::min(kTallChunk, n - r0), A + r0, lda, p, B + r0, ldb,
                    q, part.data() + ch * pq);
  }
  for (int64_t e = 0; e < pq; ++e) {
    double s = 0.0;
    for (int64_t ch = 0; ch < nchunks; ++ch) s += part[ch * pq + e];
    G[e] = s;
  }
}

void tall_sub(int64_t n, double* Y, int64_t ldy, int64_t q, const double* A, int64_t lda, int64_t p,
              const double* M, int n_threads) {
  if (q == 0 || n == 0) return;
  const int64_t nchunks = (n + kTallChunk - 1) / kTallChunk;
  const int nt = n_threads > 0 ? n_threads : 1;
  const SimdIsa isa = simd_isa();
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> acc;
    const bool ok = errors.run([&] { acc.resize(static_cast<size_t>(q * kTallChunk)); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < nchunks; ++ch) {
      if (!ok) continue;
      const int64_t r0 = ch * kTallChunk;
      GEOML_SIMD_CALL(isa, tall_sub_chunk, std::min(kTallChunk, n - r0), Y + r0, ldy, q, A + r0,
                      lda, p, M, acc.data(), kTallChunk);
    }
  }
  errors.rethrow();
}

#define GEOML_CSR_MM(Acc, T, I)                                                            \
  template void csr_mm<Acc, T, I>(const CsrRef<T, I>&, const T*, int64_t, T*, int, double, \
                                  const T*, double);
GEOML_CSR_MM(float, float, int32_t)
GEOML_CSR_MM(float, float, int64_t)
GEOML_CSR_MM(double, float, int32_t)
GEOML_CSR_MM(double, float, int64_t)
GEOML_CSR_MM(double, double, int32_t)
GEOML_CSR_MM(double, double, int64_t)
#undef GEOML_CSR_MM

}  // namespace geoml
