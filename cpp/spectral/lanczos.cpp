#include "lanczos.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "common/sparse.hpp"

#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {

// ------------------------------------------------- per-ISA CSR row sums (Lanczos products)
namespace {
#define GEOML_KERNEL_INC "spectral/spmv_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

template <typename V>
using SpmvRowsFn = void (*)(int64_t, int64_t, const int32_t*, const int32_t*, const V*,
                            const double*, double*);

constexpr int64_t kSpmvChunk = 1024;  // rows per dynamic chunk (and per row-sum buffer)

/// Whether `isa` runs the scalar lanes instead of the gathering copy: a one-off timing (the
/// first call per ISA in the process, ~1 ms) finds them faster, as on CPUs whose gathers are
/// slow (e.g. Intel's Gather Data Sampling microcode mitigation; on the development Xeon the
/// AVX-512 gathers are ~1.5x faster). Both give the same bits, so the choice never changes a
/// result.
bool spmv_use_lanes(SimdIsa isa) {
  if (isa == SimdIsa::Generic) return false;         // the scalar lanes already
  static std::atomic<int> choice[3] = {-1, -1, -1};  // per ISA: -1 not timed, 0 gather, 1 lanes
  std::atomic<int>& ch = choice[static_cast<int>(isa)];
  int c = ch.load(std::memory_order_relaxed);
  if (c < 0) {
    const SpmvRowsFn<double> gather = GEOML_SIMD_PICK(isa, spmv_rows<double>);
    const SpmvRowsFn<double> lanes = GEOML_SIMD_PICK(isa, spmv_rows_lanes<double>);
    // a random sparse matrix: 4096 rows of 20 entries into x of 2^16 values (512 kB)
    constexpr int64_t rows = 4096, per = 20, nx = int64_t(1) << 16;
    std::vector<int32_t> ip(rows + 1), ix(rows * per);
    std::vector<double> a(rows * per), x(nx), out(rows);
    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i <= rows; ++i) ip[i] = static_cast<int32_t>(i * per);
    for (int64_t p = 0; p < rows * per; ++p) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      ix[p] = static_cast<int32_t>((r >> 33) & (nx - 1));
      a[p] = 1.0 + double((r >> 20) & 1023) / 1024;
    }
    for (int64_t j = 0; j < nx; ++j) x[j] = 1.0 / double(j + 1);
    double best[2] = {1e300, 1e300};
    for (int rep = 0; rep < 5; ++rep)
      for (int v = 0; v < 2; ++v) {
        const auto t0 = std::chrono::steady_clock::now();
        (v == 0 ? gather : lanes)(0, rows, ip.data(), ix.data(), a.data(), x.data(), out.data());
        const double dt =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best[v] = std::min(best[v], dt);
      }
    c = best[1] < 0.9 * best[0] ? 1 : 0;  // the gathers unless clearly slower
    ch.store(c, std::memory_order_relaxed);
  }
  return c == 1;
}

/// The row-sum kernel for `isa` and stored values of type V (float64, or float32 read as
/// their exact float64 values).
template <typename V>
SpmvRowsFn<V> spmv_rows_for(SimdIsa isa) {
  if (spmv_use_lanes(isa)) return GEOML_SIMD_PICK(isa, spmv_rows_lanes<V>);
  return GEOML_SIMD_PICK(isa, spmv_rows<V>);
}

/// yc = s1 (A yb - c yb) - s2 ya (plain: yc = A yb) for a CSR matrix with int32 indices,
/// float64 vectors and float64 or float32 values: row sums from the per-ISA kernel (the same
/// bits under every ISA: spmv_kernel.inc), the update here, in baseline code (nothing
/// contracted), rows in dynamic chunks (each row's result is one call's work, so it does not
/// depend on the thread count).
template <typename V>
void csr_rows_d32(int64_t n, const int32_t* ip, const int32_t* ix, const V* a, const double* yb,
                  const double* ya, double* yc, double s1, double c, double s2, bool plain, int nt,
                  bool team = false) {
  const SpmvRowsFn<V> rows = spmv_rows_for<V>(simd_isa());
  const int64_t nchunk = (n + kSpmvChunk - 1) / kSpmvChunk;
  const auto chunk = [&](int64_t ch) {
    double acc[kSpmvChunk];
    const int64_t r0 = ch * kSpmvChunk, r1 = std::min(n, r0 + kSpmvChunk);
    rows(r0, r1, ip, ix, a, yb, acc);
    if (plain) {
      std::copy(acc, acc + (r1 - r0), yc + r0);
    } else {
      for (int64_t i = r0; i < r1; ++i) yc[i] = s1 * (acc[i - r0] - c * yb[i]) - s2 * ya[i];
    }
  };
  if (team) {  // every thread of the enclosing region is here: share the chunks, then a barrier
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < nchunk; ++ch) chunk(ch);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t ch = 0; ch < nchunk; ++ch) chunk(ch);
}
}  // namespace

namespace {
// Householder tridiagonalisation and implicit QL with Wilkinson shifts (the EISPACK
// tred2 / tql2 pair, as in JAMA) of the symmetric n x n row-major `a` (destroyed): eigenvalues
// in w (unsorted), eigenvectors as the columns of z. O(n^3) with about 10 n^3 / 3 flops
// (cyclic Jacobi: ~6 n^3 per sweep and 6-10 sweeps, with strided column rotations). The QL
// rotations run on the rows of the transposed vectors (contiguous). False if an eigenvalue
// took more than 60 iterations (then the caller's Jacobi runs instead).
bool ql_eig(int n, std::vector<double>& a, std::vector<double>& w, std::vector<double>& z) {
  std::vector<double>& V = a;  // tred2 on V = a in place
  std::vector<double> e(n, 0.0);
  w.assign(n, 0.0);
  double* d = w.data();
  const auto at = [&](int i, int j) -> double& { return V[static_cast<size_t>(i) * n + j]; };
  for (int j = 0; j < n; ++j) d[j] = at(n - 1, j);
  for (int i = n - 1; i > 0; --i) {
    double scale = 0.0, h = 0.0;
    for (int k = 0; k < i; ++k) scale += std::fabs(d[k]);
    if (scale == 0.0) {
      e[i] = d[i - 1];
      for (int j = 0; j < i; ++j) {
        d[j] = at(i - 1, j);
        at(i, j) = 0.0;
        at(j, i) = 0.0;
      }
    } else {
      for (int k = 0; k < i; ++k) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      double f = d[i - 1];
      double g = std::sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (int j = 0; j < i; ++j) e[j] = 0.0;
      for (int j = 0; j < i; ++j) {
        f = d[j];
        at(j, i) = f;
        g = e[j] + at(j, j) * f;
        for (int k = j + 1; k <= i - 1; ++k) {
          g += at(k, j) * d[k];
          e[k] += at(k, j) * f;
        }
        e[j] = g;
      }
      f = 0.0;
      for (int j = 0; j < i; ++j) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const double hh = f / (h + h);
      for (int j = 0; j < i; ++j) e[j] -= hh * d[j];
      for (int j = 0; j < i; ++j) {
        f = d[j];
        g = e[j];
        for (int k = j; k <= i - 1; ++k) at(k, j) -= (f * e[k] + g * d[k]);
        d[j] = at(i - 1, j);
        at(i, j) = 0.0;
      }
    }
    d[i] = h;
  }
  for (int i = 0; i < n - 1; ++i) {  // accumulate the transformations
    at(n - 1, i) = at(i, i);
    at(i, i) = 1.0;
    const double h = d[i + 1];
    if (h != 0.0) {
      for (int k = 0; k <= i; ++k) d[k] = at(k, i + 1) / h;
      for (int j = 0; j <= i; ++j) {
        double g = 0.0;
        for (int k = 0; k <= i; ++k) g += at(k, i + 1) * at(k, j);
        for (int k = 0; k <= i; ++k) at(k, j) -= g * d[k];
      }
    }
    for (int k = 0; k <= i; ++k) at(k, i + 1) = 0.0;
  }
  for (int j = 0; j < n; ++j) {
    d[j] = at(n - 1, j);
    at(n - 1, j) = 0.0;
  }
  at(n - 1, n - 1) = 1.0;
  e[0] = 0.0;
  // QL on the rows of U = V^T (row i of U is the column i of V)
  std::vector<double> U(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) U[static_cast<size_t>(j) * n + i] = at(i, j);
  for (int i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0.0;
  double f = 0.0, tst1 = 0.0;
  const double eps = std::numeric_limits<double>::epsilon();
  for (int l = 0; l < n; ++l) {
    tst1 = std::max(tst1, std::fabs(d[l]) + std::fabs(e[l]));
    int m = l;
    while (m < n - 1 && std::fabs(e[m]) > eps * tst1) ++m;
    if (m > l) {
      int iter = 0;
      do {
        if (++iter > 60) return false;
        double g = d[l];
        double p = (d[l + 1] - g) / (2.0 * e[l]);
        double r = std::hypot(p, 1.0);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const double dl1 = d[l + 1];
        double h = g - d[l];
        for (int i = l + 2; i < n; ++i) d[i] -= h;
        f += h;
        p = d[m];
        double c = 1.0, c2 = c, c3 = c, s = 0.0, s2 = 0.0;
        const double el1 = e[l + 1];
        for (int i = m - 1; i >= l; --i) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = std::hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          double* ui = U.data() + static_cast<size_t>(i) * n;
          double* ui1 = ui + n;
          for (int k = 0; k < n; ++k) {
            const double t = ui1[k];
            ui1[k] = s * ui[k] + c * t;
            ui[k] = c * ui[k] - s * t;
          }
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::fabs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0.0;
  }
  z.assign(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      z[static_cast<size_t>(j) * n + i] = U[static_cast<size_t>(i) * n + j];
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(d[i])) return false;
  return true;
}
}  // namespace

// Projected matrices above this order take LAPACK's dsyevd when set_lapack_syevd gave it, else
// ql_eig (Jacobi's strided sweeps cost 67x ARPACK's whole solve at n = 1,000, k = 400); at and
// below, Jacobi (the same bits as before).
constexpr int kJacobiMax = 128;

namespace {
// SciPy's scipy.linalg.cython_lapack dsyevd (LP64 C signature), set from Python (null: none)
using SyevdFn = void (*)(char*, char*, int*, double*, int*, double*, double*, int*, int*, int*,
                         int*);
std::atomic<SyevdFn> g_syevd{nullptr};

// Eigenpairs of the symmetric row-major n x n `a` by dsyevd (divide and conquer): eigenvalues
// ascending in w, eigenvectors as the columns of z (row-major, as jacobi_eig / ql_eig). False
// when no routine was set or it failed (then the caller's ql_eig / Jacobi run).
bool lapack_eig(int n, const std::vector<double>& a, std::vector<double>& w,
                std::vector<double>& z) {
  SyevdFn f = g_syevd.load();
  if (f == nullptr || n < 1) return false;
  std::vector<double> A(a);  // symmetric: its row-major layout is its column-major one
  w.assign(n, 0.0);
  char jobz = 'V', uplo = 'L';
  int nn = n, lda = n, info = 0, lwork = -1, liwork = -1, iwq = 0;
  double wq = 0.0;
  f(&jobz, &uplo, &nn, A.data(), &lda, w.data(), &wq, &lwork, &iwq, &liwork, &info);
  if (info != 0) return false;
  lwork = std::max(1, static_cast<int>(wq));
  liwork = std::max(1, iwq);
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  f(&jobz, &uplo, &nn, A.data(), &lda, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0) return false;
  for (double v : w)
    if (!std::isfinite(v)) return false;
  z.resize(static_cast<size_t>(n) * n);
  for (int p = 0; p < n; ++p)  // column p of LAPACK's column-major A is eigenvector p
    for (int r = 0; r < n; ++r)
      z[static_cast<size_t>(r) * n + p] = A[static_cast<size_t>(p) * n + r];
  return true;
}
}  // namespace

void set_lapack_syevd(std::uintptr_t fn) {
  g_syevd.store(reinterpret_cast<SyevdFn>(fn));
}

void jacobi_eig(int n, std::vector<double>& a, std::vector<double>& w, std::vector<double>& z) {
  z.assign(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) z[static_cast<size_t>(i) * n + i] = 1.0;
  w.assign(n, 0.0);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; ++i) {
      diag += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; ++j) off += a[i * n + j] * a[i * n + j];
    }
    if (off == 0 || off <= 1e-34 * (diag + off)) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int r = 0; r < n; ++r) {
          const double arp = a[r * n + p], arq = a[r * n + q];
          a[r * n + p] = c * arp - s * arq;
          a[r * n + q] = s * arp + c * arq;
        }
        for (int r = 0; r < n; ++r) {
          const double apr = a[p * n + r], aqr = a[q * n + r];
          a[p * n + r] = c * apr - s * aqr;
          a[q * n + r] = s * apr + c * aqr;
        }
        a[p * n + q] = a[q * n + p] = 0;
        for (int r = 0; r < n; ++r) {
          const double zrp = z[r * n + p], zrq = z[r * n + q];
          z[r * n + p] = c * zrp - s * zrq;
          z[r * n + q] = s * zrp + c * zrq;
        }
      }
  }
  for (int i = 0; i < n; ++i) w[i] = a[i * n + i];
}

template <typename T, typename I>
void csr_matvec(int64_t n, const I* indptr, const I* indices, const T* data, const T* x, T* y,
                int n_threads) {
  if constexpr (std::is_same_v<T, double> && std::is_same_v<I, int32_t>)
    csr_rows_d32(n, indptr, indices, data, x, nullptr, y, 0, 0, 0, true,
                 resolve_threads(n_threads));
  else
    csr_mm<double>(CsrRef<T, I>{n, indptr, indices, data}, x, 1, y, resolve_threads(n_threads));
}

template <typename T, typename I>
void csr_cheb_step(int64_t n, const I* indptr, const I* indices, const T* data, const T* yb,
                   const T* ya, T* yc, double s1, double c, double s2, int n_threads) {
  const int nt = resolve_threads(n_threads);
  if constexpr (std::is_same_v<T, double> && std::is_same_v<I, int32_t>) {
    csr_rows_d32(n, indptr, indices, data, yb, ya, yc, s1, c, s2, false, nt);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (I p = indptr[i]; p < indptr[i + 1]; ++p) acc += double(data[p]) * double(yb[indices[p]]);
    yc[i] = T(s1 * (acc - c * double(yb[i])) - s2 * double(ya[i]));
  }
}

void csr_matvec_f32v(int64_t n, const int32_t* indptr, const int32_t* indices, const float* data,
                     const double* x, double* y, int n_threads) {
  csr_rows_d32(n, indptr, indices, data, x, nullptr, y, 0, 0, 0, true, resolve_threads(n_threads));
}

void csr_cheb_step_f32v(int64_t n, const int32_t* indptr, const int32_t* indices, const float* data,
                        const double* yb, const double* ya, double* yc, double s1, double c,
                        double s2, int n_threads, bool team) {
  csr_rows_d32(n, indptr, indices, data, yb, ya, yc, s1, c, s2, false,
               team ? 1 : resolve_threads(n_threads), team);
}

template <typename T, typename I>
void csr_asymmetry(int64_t n, const I* indptr, const I* indices, const T* data, double& diff,
                   double& amax) {
  // Rows in order; cur[j] walks row j's entries right of its diagonal: when row i reaches a
  // lower entry (i, j), j < i, the entries (j, c) with c < i still ahead of cur[j] had no
  // mirror (row c, visited already, did not claim them), and (j, i), if present, is next.
  for (int64_t i = 0; i < n; ++i)
    if (indptr[i + 1] < indptr[i]) throw std::invalid_argument("malformed CSR arrays");
  std::vector<int64_t> cur(n);
  double dmax = 0, vmax = 0;
  const auto put = [&](T d) { dmax = std::max(dmax, double(std::fabs(d))); };
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pe = indptr[i + 1];
    int64_t p = indptr[i];
    for (; p < pe; ++p) {
      const I j = indices[p];
      if (j < 0 || j >= n) throw std::invalid_argument("CSR column index out of range");
      vmax = std::max(vmax, double(std::fabs(data[p])));
      if (j >= i) break;
      int64_t& c = cur[j];
      const int64_t ce = indptr[j + 1];
      while (c < ce && indices[c] < i) put(data[c++]);  // (j, c) without a mirror
      if (c < ce && indices[c] == i)
        put(T(data[p] - data[c++]));
      else
        put(data[p]);  // (i, j) without a mirror
    }
    if (p < pe && indices[p] == i) ++p;  // the diagonal: a_ii - a_ii = 0
    cur[i] = p;                          // row i's entries right of its diagonal
    for (int64_t q = p; q < pe; ++q) {
      const I j = indices[q];
      if (j < 0 || j >= n) throw std::invalid_argument("CSR column index out of range");
      vmax = std::max(vmax, double(std::fabs(data[q])));
    }
  }
  for (int64_t j = 0; j < n; ++j)  // what no later row claimed
    for (int64_t c = cur[j]; c < static_cast<int64_t>(indptr[j + 1]); ++c) put(data[c]);
  diff = dmax;
  amax = vmax;
}

template <typename T, typename I>
void csr_gershgorin(int64_t n, const I* indptr, const I* indices, const T* data, double& lo,
                    double& up) {
  double l = std::numeric_limits<double>::infinity(), u = -l;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pb = indptr[i], pe = indptr[i + 1];
    if (pe < pb) throw std::invalid_argument("malformed CSR arrays");
    double diag = 0, off = 0;
    for (int64_t p = pb; p < pe; ++p) {
      const I j = indices[p];
      if (j < 0 || j >= n) throw std::invalid_argument("CSR column index out of range");
      if (j == i)
        diag += double(data[p]);
      else
        off += std::fabs(double(data[p]));
    }
    l = std::min(l, diag - off);
    u = std::max(u, diag + off);
  }
  lo = n > 0 ? l : 0.0;
  up = n > 0 ? u : 0.0;
}

bool float32_copy(int64_t m, const double* d, float* d32, double& s2, double& s1, double& e2) {
  const double big = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::min();
  double a2 = 0, a1 = 0, b2 = 0;
  for (int64_t p = 0; p < m; ++p) {
    const double v = d[p], av = std::fabs(v);
    // above float32's range (or NaN), or non-zero below its normal range: no copy (a value
    // within half an ulp above FLT_MAX, which rounds to FLT_MAX, is refused too)
    if (!(av <= big) || (av < tiny && v != 0)) return false;
    const float f = static_cast<float>(v);
    d32[p] = f;
    const double r = v - double(f);
    a2 += v * v;
    a1 += v;
    b2 += r * r;
  }
  s2 = a2, s1 = a1, e2 = b2;
  return true;
}

template <typename T>
void dense_matvec(int64_t n, const T* A, const T* x, T* y, int n_threads) {
  const int nt = resolve_threads(n_threads);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    const T* r = A + i * n;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; ++j) s += double(r[j]) * double(x[j]);
    y[i] = T(s);
  }
}

// One pass of the pattern matrix scaled on both sides, S P S with S = diag(s): z = s * x, then
// out(i, sum of z over row i's pattern) for every row (the caller applies the outer scale).
template <typename I, typename In, typename Out>
void scaled_pattern_pass(int64_t n, const I* indptr, const I* indices, const double* s, const In* x,
                         std::vector<double>& z, int n_threads, Out out) {
  const int nt = resolve_threads(n_threads);
  z.resize(n);
  double* zp = z.data();
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) zp[i] = s[i] * double(x[i]);
#pragma omp for schedule(static, 512)
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0;
      for (I p = indptr[i]; p < indptr[i + 1]; ++p) acc += zp[indices[p]];
      out(i, acc);
    }
  }
}

template <typename T, typename I>
void scaled_pattern_matvec(int64_t n, const I* indptr, const I* indices, const double* s,
                           const T* x, T* y, std::vector<double>& z, int n_threads) {
  scaled_pattern_pass(n, indptr, indices, s, x, z, n_threads,
                      [&](int64_t i, double acc) { y[i] = T(s[i] * acc); });
}

template <typename T, typename I>
void scaled_pattern_cheb_step(int64_t n, const I* indptr, const I* indices, const double* s,
                              const T* yb, const T* ya, T* yc, double s1, double c, double s2,
                              std::vector<double>& z, int n_threads) {
  scaled_pattern_pass(n, indptr, indices, s, yb, z, n_threads, [&](int64_t i, double acc) {
    yc[i] = T(s1 * (s[i] * acc - c * double(yb[i])) - s2 * double(ya[i]));
  });
}

namespace {

// Reductions over the n rows go by fixed chunks of kRedChunk rows: each chunk's partial sum
// is stored in its slot and the slots are added in chunk order, so every sum (and so the
// whole iteration) is the same for any number of threads.
constexpr int64_t kRedChunk = 2048;

// Residuals at most this many eps times ||A|| are at float rounding level (the level eigsh's
// warnings and its deflated check, _eigsh_block._ROUNDING_LEVEL, call rounding), and the
// restart cycles in a row without progress there after which the filtered solve stops
// (LanczosSolver::note_stall).
constexpr double kRoundingLevel = 100;
constexpr int kStallCycles = 8;
// recut: the least gap, relative to the distance to the most wanted value, between the new cut
// and the Ritz value ranked just above it (a cut inside a near-cluster, session 33)
constexpr double kRecutGap = 2e-2;

inline int64_t n_chunks(int64_t n) {
  return (n + kRedChunk - 1) / kRedChunk;
}

/// sum over rows i of f(i) -> R values (f writes its terms into acc[0..R)), thread-count
/// independent.
template <int R, typename F>
void det_sum(int64_t n, int nt, F f, double* out) {
  const int64_t nc = n_chunks(n);
  std::vector<double> part(static_cast<size_t>(nc) * R, 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t c = 0; c < nc; ++c) {
    double acc[R] = {};
    const int64_t e = std::min(n, (c + 1) * kRedChunk);
    for (int64_t i = c * kRedChunk; i < e; ++i) f(i, acc);
    for (int r = 0; r < R; ++r) part[static_cast<size_t>(c) * R + r] = acc[r];
  }
  for (int r = 0; r < R; ++r) out[r] = 0;
  for (int64_t c = 0; c < nc; ++c)
    for (int r = 0; r < R; ++r) out[r] += part[static_cast<size_t>(c) * R + r];
}

template <typename T>
double dot(int64_t n, const T* x, const T* y, int nt) {
  double s = 0;
  det_sum<1>(n, nt, [&](int64_t i, double* a) { a[0] += double(x[i]) * double(y[i]); }, &s);
  return s;
}

/// ||w - th x|| (w = A x: the residual norm of the Ritz pair (th, x)), summed as det_sum sums.
template <typename T>
double ritz_residual(int64_t n, const T* x, const T* w, double th, int nt) {
  double r2 = 0;
  det_sum<1>(
      n, nt,
      [&](int64_t i, double* a) {
        const double d = double(w[i]) - th * double(x[i]);
        a[0] += d * d;
      },
      &r2);
  return std::sqrt(r2);
}

/// Lanczos' three-term step w -= alpha x + bprev xprev, done by cgs_pass's first sweep (each
/// row updated just before the sweep reads it); nref2 = ||w||^2 after it, summed by chunks in
/// chunk order as det_sum sums.
template <typename T>
struct ThreeTerm {
  const T* x;
  const T* xprev;
  double alpha, bprev;
  double nref2 = 0;
};

/// One classical Gram-Schmidt pass of w against columns [0, jj) of the row-major basis V
/// (leading dimension ld): h = V^T w, w -= V h. Returns ||w|| afterwards. Reads V twice.
/// Both sweeps go by tiles of 4 rows (then the rest of the chunk one row at a time): the
/// coefficient sweep loads and stores each partial sum of h once per 4 rows instead of once
/// per row, and the update sweep runs 4 rows' dot products side by side (one row's was a
/// single dependent chain of additions); every sum is formed in the same order as row by
/// row, so the results are bit-identical (1.4-1.8x faster for a cache-resident basis).
/// Per-chunk partial sums are added in chunk order: the same for any thread count.
/// `pend` >= 0: column `pend` (< jj) of V is not stored yet; the coefficient sweep stores
/// src[i] there as it reaches row i (the row's cache lines are loaded for the sweep anyway: the
/// new Lanczos vector written as a separate strided pass cost ~5% of a filtered solve).
/// `tt`: the three-term step before the sweep (see ThreeTerm).
template <typename T>
double cgs_pass(int64_t n, T* V, int64_t ld, int64_t jj, T* w, std::vector<double>& h, int nt,
                int64_t pend = -1, const T* src = nullptr, ThreeTerm<T>* tt = nullptr) {
  h.assign(jj, 0.0);
  const int64_t nc = n_chunks(n);
  if (jj > 0) {
    std::vector<double> part(static_cast<size_t>(nc) * jj, 0.0), npart(nc, 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t c = 0; c < nc; ++c) {
      double* hp = part.data() + static_cast<size_t>(c) * jj;
      const int64_t i0 = c * kRedChunk, e = std::min(n, (c + 1) * kRedChunk);
      double nacc = 0;
      const auto upd = [&](int64_t i) {
        const double v =
            double(w[i]) - tt->alpha * double(tt->x[i]) - tt->bprev * double(tt->xprev[i]);
        w[i] = T(v);
        nacc += v * v;
      };
      int64_t i = i0;
      for (; i + 4 <= e; i += 4) {
        if (tt)
          for (int64_t r = 0; r < 4; ++r) upd(i + r);
        const double w0 = w[i], w1 = w[i + 1], w2 = w[i + 2], w3 = w[i + 3];
        T *r0 = V + i * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        if (pend >= 0) {
          r0[pend] = src[i], r1[pend] = src[i + 1];
          r2[pend] = src[i + 2], r3[pend] = src[i + 3];
        }
#pragma omp simd
        for (int64_t l = 0; l < jj; ++l) {
          double a = hp[l] + double(r0[l]) * w0;
          a += double(r1[l]) * w1;
          a += double(r2[l]) * w2;
          hp[l] = a + double(r3[l]) * w3;
        }
      }
      for (; i < e; ++i) {
        if (tt) upd(i);
        const double wi = w[i];
        T* r = V + i * ld;
        if (pend >= 0) r[pend] = src[i];
#pragma omp simd
        for (int64_t l = 0; l < jj; ++l) hp[l] += double(r[l]) * wi;
      }
      npart[c] = nacc;
    }
    for (int64_t c = 0; c < nc; ++c)
      for (int64_t l = 0; l < jj; ++l) h[l] += part[static_cast<size_t>(c) * jj + l];
    if (tt) {
      tt->nref2 = 0;
      for (int64_t c = 0; c < nc; ++c) tt->nref2 += npart[c];
    }
  }
  const double* hh = h.data();
  std::vector<double> part(nc, 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t c = 0; c < nc; ++c) {
    const int64_t i0 = c * kRedChunk, e = std::min(n, (c + 1) * kRedChunk);
    double acc = 0;
    int64_t i = i0;
    for (; i + 4 <= e; i += 4) {
      const T *r0 = V + i * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t l = 0; l < jj; ++l) {
        s0 += double(r0[l]) * hh[l];
        s1 += double(r1[l]) * hh[l];
        s2 += double(r2[l]) * hh[l];
        s3 += double(r3[l]) * hh[l];
      }
      const double s[4] = {s0, s1, s2, s3};
      for (int r = 0; r < 4; ++r) {
        const double v = double(w[i + r]) - s[r];
        w[i + r] = T(v);
        acc += v * v;
      }
    }
    for (; i < e; ++i) {
      const T* r = V + i * ld;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < jj; ++l) s += double(r[l]) * hh[l];
      const double v = double(w[i]) - s;
      w[i] = T(v);
      acc += v * v;
    }
    part[c] = acc;
  }
  double nrm2 = 0;
  for (int64_t c = 0; c < nc; ++c) nrm2 += part[c];
  return std::sqrt(nrm2);
}

// Sort key: smaller = more wanted.
inline double want_key(Which which, double theta) {
  switch (which) {
    case Which::LA:
      return -theta;
    case Which::SA:
      return theta;
    default:
      return -std::fabs(theta);
  }
}

/// The state of one lanczos() call: the basis V (n x (m + 1), row-major), the projected
/// matrix Tm, the filter, the locked and kept Ritz pairs. run() does restart cycles of
/// expand (Lanczos steps up to m), rayleigh_ritz, then either the first explicit restart
/// with the filter placed (prelim_restart) or a thick restart (restart, lock, recut,
/// check_done); finish() computes the final Rayleigh quotients and residuals.
template <typename T>
struct LanczosSolver {
  const int64_t n;
  const MatVec<T>& A;
  const LanczosOptions& opt;
  const ChebStep<T>& step;
  const MatVec<T>& exact;        // the final Rayleigh quotients' and residuals' products (or A)
  const ChebStep<T>& team_step;  // `step` for every thread of a parallel region (or empty)
  const int nt;
  const int64_t k, nd;
  const bool filt;
  const double eps, tol;
  Which wsel;  // the end wanted of the iteration operator (LA on p(A) once the filter is on)
  int64_t m = 0, ld = 0;

  std::vector<T> V;
  std::vector<double> Tm;
  std::vector<T> x, w, xprev, ya, yb, yc, tmp;
  std::vector<double> h, h2;
  std::mt19937_64 gen;
  std::normal_distribution<double> gauss;
  int64_t n_matvec = 0;

  // Chebyshev filter p(t) = T_d(l(t)) / T_d(l(upper)), l(t) = (t - c) / e, damping
  // [cheb_lower, cut]; evaluated with the scaled three-term recurrence (no overflow).
  bool use_filter = false;
  double fc = 0, fe = 1, flu = 1, cut = 0;
  double flo = -1, fup = 1;  // the filter's interval [flo, cut] (LM: [-cut, cut]) and top
  double th_min = std::numeric_limits<double>::infinity();  // smallest unfiltered Ritz value
  double th_max = -std::numeric_limits<double>::infinity();
  double th_min_est = 0;  // its residual estimate
  int recuts = 0;
  // stagnation at the rounding level (filtered solve: locking on computed residuals)
  int stall = 0;         // restart cycles in a row without progress at the rounding level
  double stall_ref = 0;  // the smallest unconverged residual when that streak began
  bool stalled = false;  // stall reached kStallCycles: check_done stops

  int64_t nl = 0, p = 0, kint = 0, iter = 0;
  double anorm = 0;
  bool fixed_norm = false;
  std::vector<double> lockA, lockMu;  // per locked column: A value, op value
  std::vector<double> keptA;          // A value per kept active column
  std::vector<double> keptMu;         // op value (Ritz value) per kept active column
  bool verifying = false, prelim = false, done = false;

  // the current cycle: active block [a0, mcur), its Ritz pairs (theta, Y) by `order`
  int64_t a0 = 0, mcur = 0, ma = 0;
  double beta_m = 0, scale = 1;
  std::vector<double> Ta, theta, Y;
  std::vector<int64_t> order;

  LanczosSolver(int64_t n_, const MatVec<T>& A_, const LanczosOptions& opt_,
                const ChebStep<T>& step_, const MatVec<T>& exact_, const ChebStep<T>& team_,
                int64_t nd_)
      : n(n_),
        A(A_),
        opt(opt_),
        step(step_),
        exact(exact_),
        team_step(team_),
        nt(resolve_threads(opt_.n_threads)),
        k(opt_.k),
        nd(nd_),
        filt(opt_.cheb_degree > 0),
        eps(std::numeric_limits<T>::epsilon()),
        tol(opt_.tol),
        wsel(opt_.which) {
    if (n < 1 || k < 1 || nd < 0 || nd + k > n)
      throw std::invalid_argument("lanczos: need 1 <= k and k + n_deflate <= n (n=" +
                                  std::to_string(n) + ", k=" + std::to_string(k) + ")");
    if (filt && !(opt.which == Which::LA || opt.which == Which::LM))
      throw std::invalid_argument("lanczos: the Chebyshev filter needs which=LA or LM");
    flo = opt.cheb_lower;
    fup = opt.cheb_upper;
    m = opt.ncv > 0 ? nd + opt.ncv : nd + std::max<int64_t>(2 * k + 1, 20);
    m = std::min(std::max(m, nd + k + 2), n);
    ld = m + 1;
    V.assign(static_cast<size_t>(n) * ld, T(0));
    Tm.assign(static_cast<size_t>(ld) * ld, 0.0);
    x.resize(n);
    w.resize(n);
    xprev.resize(n);
    gen.seed(opt.seed);
    kint = k;
    anorm = opt.anorm > 0 ? opt.anorm : 0;
    fixed_norm = opt.anorm > 0;
    prelim = filt;
  }

  double& TT(int64_t i, int64_t j) { return Tm[i * ld + j]; }

  void col_get(int64_t c, T* out) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) out[i] = V[i * ld + c];
  }
  void col_set(int64_t c, const T* in, double s) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) V[i * ld + c] = T(double(in[i]) * s);
  }
  void applyA(const T* in, T* out) {
    A(in, out);
    ++n_matvec;
  }
  /// Clears the projected matrix from row/column b on.
  void clear_tail(int64_t b) {
    for (int64_t i = b; i < ld; ++i)
      for (int64_t j = b; j < ld; ++j) TT(i, j) = 0;
  }

  /// out = p(A) in (or A in without the filter). The recurrence rotates through three work
  /// vectors, reading `in` and writing its last term into `out` (no copies); with a fused
  /// step, the first term s (A in - c in) is a step with s2 = 0.
  void op(const T* in, T* out) {
    if (!use_filter) {
      applyA(in, out);
      return;
    }
    ya.resize(n), yb.resize(n), yc.resize(n);
    T* const bufs[3] = {ya.data(), yb.data(), yc.data()};
    const auto spare = [&](const T* a, const T* b) {
      for (T* q : bufs)
        if (q != a && q != b) return q;
      return bufs[0];  // not reached: three buffers, two excluded
    };
    const int deg = opt.cheb_degree;
    if (team_step) {
      // the whole application in one parallel region: each product is the team's worksharing
      // loop (its barrier orders them); every thread follows the same buffers and scalars
#pragma omp parallel num_threads(nt)
      {
        T* qb = deg == 1 ? out : spare(nullptr, nullptr);
        team_step(in, in, qb, 1.0 / (fe * flu), fc, 0.0);
        const T* qa = in;
        double rprev = 1.0 / flu;
        for (int d = 1; d < deg; ++d) {
          const double r = 1.0 / (2 * flu - rprev);
          T* qc = d + 1 == deg ? out : spare(qa, qb);
          team_step(qb, qa, qc, 2 * r / fe, fc, rprev * r);
          qa = qb;
          qb = qc;
          rprev = r;
        }
      }
      n_matvec += deg;
      return;
    }
    T* pb = deg == 1 ? out : spare(nullptr, nullptr);
    {
      const double s = 1.0 / (fe * flu);
      if (step) {
        step(in, in, pb, s, fc, 0.0);
        ++n_matvec;
      } else {
        tmp.resize(n);
        applyA(in, tmp.data());
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; ++i) pb[i] = T((double(tmp[i]) - fc * double(in[i])) * s);
      }
    }
    const T* pa = in;
    double rprev = 1.0 / flu;
    for (int d = 1; d < deg; ++d) {
      const double r = 1.0 / (2 * flu - rprev);
      const double s1 = 2 * r / fe, s2 = rprev * r;
      T* pc = d + 1 == deg ? out : spare(pa, pb);
      if (step) {
        step(pb, pa, pc, s1, fc, s2);
        ++n_matvec;
      } else {
        tmp.resize(n);
        applyA(pb, tmp.data());
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; ++i)
          pc[i] = T(s1 * (double(tmp[i]) - fc * double(pb[i])) - s2 * double(pa[i]));
      }
      pa = pb;
      pb = pc;
      rprev = r;
    }
  }

  void set_filter(double c) {
    if (opt.which == Which::LM) {  // T_d(t / c): damps [-c, c], |p| grows at both ends
      fc = 0, fe = c, flu = fup / c;
      return;
    }
    fc = (c + flo) / 2, fe = (c - flo) / 2, flu = (fup - fc) / fe;
  }
  /// The t > cut with p(t) = mu (p is increasing there); cut itself if mu is too small.
  double filter_inverse(double mu) const {
    const double g = opt.cheb_degree * std::acosh(flu);
    const double logT = g + std::log1p(std::exp(-2 * g)) - std::log(2.0);  // log T_d(flu)
    if (!(mu > 0)) return cut;
    const double logy = std::log(mu) + logT;
    if (logy <= 0) return cut;
    const double ay = logy > 20 ? logy + std::log(2.0) : std::acosh(std::exp(logy));
    return fc + fe * std::cosh(ay / opt.cheb_degree);
  }

  /// A random unit vector orthogonal to columns [0, jj); false if none can be found.
  bool random_orth(int64_t jj, T* out) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      for (int64_t i = 0; i < n; ++i) out[i] = T(gauss(gen));
      const double n0 = std::sqrt(dot(n, out, out, nt));
      cgs_pass(n, V.data(), ld, jj, out, h, nt);
      const double n1 = cgs_pass(n, V.data(), ld, jj, out, h, nt);
      if (n1 > 1e-3 * n0) {
        for (int64_t i = 0; i < n; ++i) out[i] = T(double(out[i]) / n1);
        return true;
      }
    }
    return false;
  }

  /// Deflation space and the start vector.
  void start(const T* v0, const T* deflate) {
    for (int64_t c = 0; c < nd; ++c)
      for (int64_t i = 0; i < n; ++i) V[i * ld + c] = deflate[i * nd + c];
    bool ok = false;
    if (v0) {
      std::copy(v0, v0 + n, x.begin());
      const double n0 = std::sqrt(dot(n, x.data(), x.data(), nt));
      cgs_pass(n, V.data(), ld, nd, x.data(), h, nt);
      const double n1 = cgs_pass(n, V.data(), ld, nd, x.data(), h, nt);
      if (n0 > 0 && n1 > 1e-8 * n0) {
        col_set(nd, x.data(), 1.0 / n1);
        ok = true;
      }
    }
    if (!ok) {
      if (!random_orth(nd, x.data()))
        throw std::runtime_error("lanczos: no start vector orthogonal to the deflation space");
      col_set(nd, x.data(), 1.0);
    }
  }

  /// Lanczos steps from column a0 + p to m (fewer when the basis spans the whole space:
  /// mcur < m); beta_m couples the last column to the next.
  void expand() {
    mcur = m;
    beta_m = 0;
    int64_t pend = -1;  // a column of V not stored yet (its values are x)
    col_get(a0 + p, x.data());
    for (int64_t j = a0 + p; j < m; ++j) {
      op(x.data(), w.data());
      double sums[2];
      det_sum<2>(
          n, nt,
          [&](int64_t i, double* a) {
            const double wi = w[i];
            a[0] += wi * wi;
            a[1] += wi * double(x[i]);
          },
          sums);
      const double nop2 = sums[0];
      double alpha = sums[1];
      const double nop = std::sqrt(nop2);
      const bool has_prev = j > a0 + p;
      const double bprev = has_prev ? TT(j, j - 1) : 0.0;
      // the three-term step and the storing of column j (x, pending since the last step) are
      // done by the first sweep of the Gram-Schmidt pass
      ThreeTerm<T> tt{x.data(), xprev.data(), alpha, bprev};
      double nrm = cgs_pass(n, V.data(), ld, j + 1, w.data(), h, nt, pend, x.data(), &tt);
      const double nref2 = tt.nref2;
      pend = -1;
      alpha += h[j];
      if (nrm < 0.7071 * std::sqrt(nref2)) {
        nrm = cgs_pass(n, V.data(), ld, j + 1, w.data(), h2, nt);
        alpha += h2[j];
      }
      TT(j, j) = alpha;
      double beta = nrm;
      if (!(nrm > 100 * eps * nop)) {  // invariant subspace (or A x = 0): continue elsewhere
        beta = 0;
        if (!random_orth(j + 1, w.data())) {
          mcur = j + 1;  // the basis spans the whole space: every Ritz pair is exact
          break;
        }
        nrm = 1;
      }
      if (j + 1 < m)
        TT(j + 1, j) = TT(j, j + 1) = beta;
      else
        beta_m = beta;
      std::swap(xprev, x);
      {
        const double sc = 1.0 / nrm;
        T* xp = x.data();
        const T* wp = w.data();
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; ++i) xp[i] = T(double(wp[i]) * sc);
      }
      pend = j + 1;  // V's column j + 1 is x: stored by the next step's first sweep
    }
    if (pend >= 0) {
      T* Vp = V.data() + pend;
      const T* xp = x.data();
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t i = 0; i < n; ++i) Vp[i * ld] = xp[i];
    }
    if (mcur < m) beta_m = 0;
  }

  /// Rayleigh-Ritz on the active block [a0, mcur): theta, Y, and `order` (most wanted
  /// first); updates anorm and the convergence scale.
  void rayleigh_ritz() {
    ma = mcur - a0;
    Ta.assign(static_cast<size_t>(ma) * ma, 0.0);
    for (int64_t i = 0; i < ma; ++i)
      for (int64_t j = 0; j < ma; ++j) Ta[i * ma + j] = TT(a0 + i, a0 + j);
    bool done = false;
    if (ma > kJacobiMax) done = lapack_eig(static_cast<int>(ma), Ta, theta, Y);
    if (ma > kJacobiMax && !done) {
      std::vector<double> Tq(Ta);
      done = ql_eig(static_cast<int>(ma), Tq, theta, Y);
    }
    if (!done) jacobi_eig(static_cast<int>(ma), Ta, theta, Y);
    order.resize(ma);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return want_key(wsel, theta[a]) < want_key(wsel, theta[b]);
    });
    if (!fixed_norm && !use_filter)
      for (int64_t i = 0; i < ma; ++i) anorm = std::max(anorm, std::fabs(theta[i]));
    if (prelim)
      for (int64_t i = 0; i < ma; ++i) {
        if (theta[i] < th_min) th_min = theta[i], th_min_est = est(i);
        th_max = std::max(th_max, theta[i]);
      }
    scale = use_filter ? 1.0 : std::max(anorm, std::numeric_limits<double>::min());
  }

  /// Lanczos residual estimate of Ritz pair i.
  double est(int64_t i) const { return std::fabs(beta_m * Y[(ma - 1) * ma + i]); }

  /// After a verification cycle: did the fresh start find something more wanted than the
  /// worst locked pair? Then one more pair is to converge (false); else stop (true).
  bool verified() {
    double worst = -std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < nl; ++t) worst = std::max(worst, want_key(wsel, lockMu[t]));
    verifying = false;
    if (want_key(wsel, theta[order[0]]) < worst - tol * scale && kint + 2 < m - nd) {
      ++kint;  // yes: one more pair to converge, then verify again
      return false;
    }
    return true;
  }

  /// The (nl + j)-th smallest of the locked pairs' want_keys (of their A values) and `key`,
  /// the want_keys of the active Ritz values' A values (or lower bounds), ascending. Each
  /// active Ritz value is at most as wanted as an eigenvalue of A orthogonal to the locked
  /// vectors (to their residuals), so by interlacing the (nl + j)-th of the union is at most
  /// as wanted as the (nl + j + 1)-th eigenvalue of A: a bound that holds whatever was
  /// locked. It is key[j] itself when every locked pair is at least as wanted as key[j];
  /// lower when a less wanted pair was locked, e.g. before a further copy of a repeated
  /// eigenvalue showed up (a single-vector start sees it only once rounding brings it in),
  /// where key[j] bounds nothing.
  double union_bound(const std::vector<double>& key, int64_t j) const {
    std::vector<double> all(key);
    for (int64_t t = 0; t < nl; ++t) all.push_back(want_key(opt.which, lockA[t]));
    std::nth_element(all.begin(), all.begin() + (nl + j), all.end());
    return all[nl + j];
  }

  /// Places the filter's damped interval [cheb_lower, cut] below the Ritz value after the
  /// first unwanted one: a lower bound on that eigenvalue (Cauchy interlacing; with the
  /// locked pairs counted in, union_bound), so every wanted eigenvalue lies above the cut.
  /// (Problems that converge within the unfiltered cycles never get here.) Then restarts
  /// explicitly from the sum of the wanted Ritz vectors.
  void prelim_restart(int64_t needed) {
    const int64_t qk = std::min(ma - 1, needed + 1);
    const bool lm = opt.which == Which::LM;
    if (opt.cheb_auto_lower && !lm && th_min < th_max) {
      // the smallest Ritz value of the unfiltered cycles, less three residual estimates
      // and 1% of the spread seen: not a proven bound, but an eigenvalue just below it is
      // amplified far less than the wanted ones (|T_d| grows slowly next to -1), and the
      // deflated check after the solve catches anything the filter made the solver miss
      flo = std::max(opt.cheb_lower, th_min - 3 * th_min_est - 0.01 * (th_max - th_min));
    }
    if (opt.cheb_cut > opt.cheb_lower) {
      cut = opt.cheb_cut;
    } else {
      // theta[order[qk]], or lower where a locked pair is less wanted (union_bound)
      std::vector<double> key(static_cast<size_t>(ma));
      for (int64_t i = 0; i < ma; ++i) key[i] = want_key(opt.which, theta[order[i]]);
      cut = -union_bound(key, qk);
    }
    if (lm) cut = std::fabs(cut);
    const double lo = lm ? -fup : flo, up = fup;
    if (cut > lo && cut < up && (!lm || cut > 0)) {
      set_filter(cut);
      use_filter = true;
      // the wanted eigenvalues are the largest of p(A) (LM, odd degree: the largest |p(A)|)
      wsel = lm && opt.cheb_degree % 2 ? Which::LM : Which::LA;
    }
    prelim = false;
    std::vector<double> y(ma, 0.0);
    for (int64_t c = 0; c < needed; ++c)
      for (int64_t l = 0; l < ma; ++l) y[l] += Y[l * ma + order[c]];
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t l = 0; l < ma; ++l) s += double(V[i * ld + a0 + l]) * y[l];
      x[i] = T(s);
    }
    const double nx = cgs_pass(n, V.data(), ld, a0, x.data(), h, nt);
    if (nx > 0)
      col_set(a0, x.data(), 1.0 / nx);
    else if (random_orth(a0, x.data()))
      col_set(a0, x.data(), 1.0);
    clear_tail(a0);
    p = 0;
  }

  /// Thick restart: the active block becomes its q most wanted Ritz vectors (then v_m);
  /// returns q. (Keeping a third of the unwanted part: measured on kNN-graph Laplacians,
  /// fewer products than keeping half, as ARPACK-like schemes do.)
  int64_t restart(int64_t needed) {
    const int64_t q = std::max<int64_t>(
        needed, std::min(ma - 1, needed + std::max<int64_t>(1, (ma - needed) / 3)));
    const int64_t qq = std::min(q, ma);
    // V[i, a0 + c] = sum_l V[i, a0 + l] Y[l, order[c]] for c < qq: tiles of 4 rows x 8
    // columns accumulated in registers, each coefficient row of Yt (zero-padded to a multiple
    // of 8 columns) loaded once for 4 rows (one dot product per row and column before: 2x
    // slower, ~25% of the solve at k = 50). Each entry sums over l in order, so a row's
    // result does not depend on the thread count.
    constexpr int64_t kR = 4, kC = 8;
    const int64_t q8 = (qq + kC - 1) / kC * kC;
    std::vector<double> Yt(static_cast<size_t>(ma) * q8, 0.0);
    for (int64_t l = 0; l < ma; ++l)
      for (int64_t c = 0; c < qq; ++c) Yt[l * q8 + c] = Y[l * ma + order[c]];
    const double* yt = Yt.data();
    const int64_t nb = (n + kR - 1) / kR;
    // the 4-row products in the per-ISA copy (spmv_kernel.inc: the same bits on every ISA)
    const auto rows4 = GEOML_SIMD_PICK(simd_isa(), restart_rows4);
    OmpErrors errors;
#pragma omp parallel num_threads(nt)
    {
      std::vector<double> vin, out;
      const bool ready = errors.run([&] {
        vin.resize(static_cast<size_t>(kR) * ma);
        out.resize(static_cast<size_t>(kR) * q8);
      });
#pragma omp for schedule(static)
      for (int64_t b = 0; b < nb; ++b) {
        if (!ready) continue;
        const int64_t i0 = b * kR, rb = std::min(kR, n - i0);
        for (int64_t r = 0; r < kR; ++r)
          for (int64_t l = 0; l < ma; ++l)
            vin[r * ma + l] = r < rb ? double(V[(i0 + r) * ld + a0 + l]) : 0.0;
        rows4(vin.data(), ma, yt, q8, out.data());
        for (int64_t r = 0; r < rb; ++r) {
          T* row = V.data() + (i0 + r) * ld + a0;
          const T vm = V[(i0 + r) * ld + m];
          for (int64_t c = 0; c < qq; ++c) row[c] = T(out[r * q8 + c]);
          if (qq < ma) row[qq] = (mcur == m) ? vm : T(0);
        }
      }
    }
    errors.rethrow();
    return q;
  }

  /// Stagnation at the rounding level (filtered solve, whose locking uses computed residuals,
  /// which cannot fall below float rounding, ~1-50 eps ||A|| on a random matrix: a tol under
  /// it ran every restart cycle, max_iter = 1000 up to ~190 s, before returning converged =
  /// False). A cycle makes no progress when it locks nothing while every wanted pair still
  /// unlocked had its residual computed (its Lanczos estimate no longer skips the product)
  /// and at most kRoundingLevel eps ||A||, and the smallest of those residuals is not 10%
  /// below what it was when the streak began; after kStallCycles such cycles in a row the
  /// solve stops (check_done) and returns its pairs, the rest unconverged. Measured: such
  /// residuals are frozen (the same digits every cycle, the Ritz vectors no longer move). A
  /// pair still converging (its residual 10% lower, even over several cycles, or above the
  /// rounding level, or its product skipped) restarts the streak, so tolerances the matrix's
  /// rounding allows converge as before; from tol >= kRoundingLevel eps an unlocked pair is
  /// above the rounding level by definition and this never stops.
  void note_stall(int64_t needed, const std::vector<double>& res, const std::vector<char>& conv) {
    const double level = kRoundingLevel * eps * std::max(anorm, 1e-300);
    bool flat = needed > 0;  // no pair locked, every unlocked one at the rounding level
    double rmin = std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < needed && flat; ++c) {
      flat = !conv[c] && res[c] <= level;
      rmin = std::min(rmin, res[c]);
    }
    if (!flat) {
      stall = 0;
    } else if (stall == 0 || rmin < 0.9 * stall_ref) {
      stall = 1;  // a new streak (or progress: 10% lower), from this residual
      stall_ref = rmin;
    } else if (++stall >= kStallCycles) {
      stalled = true;
    }
  }

  /// Convergence of the wanted Ritz pairs among the q kept, from the Lanczos estimate or
  /// (filtered) computed; converged ones are locked (moved first, stable), the rest kept
  /// active; rebuilds the projected matrix of the kept block.
  void lock(int64_t needed, int64_t q) {
    std::vector<double> thA(needed), res(needed);
    std::vector<char> conv(needed, 0);
    // ||p(A) u - theta_p u|| <= Lip(p) ||A u - rho u|| for any unit u (expand u in the
    // eigenvectors), so a pair whose p-residual estimate exceeds Lip(p) times the locking
    // tolerance cannot pass the A-residual test: its product is skipped. Lip(p) over the
    // spectrum is p'(top) for the top t of the spectrum (|p'| <= d^2 / (e T_d(flu)) <= p'(t)
    // on the damped part); a factor 4 covers the estimates' rounding and eigenvalues just
    // outside the interval. t: Gershgorin's upper bound, or 1.05 times the largest |Ritz
    // value| seen when that is lower (p' grows like t^(d-1): at Gershgorin's bound of a
    // random matrix, about twice its norm, p' is 130-190x its value at the true top). A Ritz
    // value short of the true top only makes the test tighter than proven: a converged pair
    // skipped is locked a cycle later.
    double skip_above = std::numeric_limits<double>::infinity();
    if (use_filter) {
      const double dd = opt.cheb_degree;
      const double a = std::acosh(std::max(flu, 1.0 + 1e-12));
      const double top = anorm > 0 ? std::min(fup, 1.05 * anorm) : fup;
      const double at = std::acosh(std::min(std::max((top - fc) / fe, 1.0), std::cosh(a)));
      // p'(t) = d U_{d-1}(l(t)) / (e T_d(flu)) = d sinh(d at) / (e sinh(at) cosh(d a)),
      // sinh(d at) / cosh(d a) in exponentials (no overflow)
      const double r =
          std::exp(dd * (at - a)) * (1 - std::exp(-2 * dd * at)) / (1 + std::exp(-2 * dd * a));
      const double lip = at > 1e-6
                             ? dd * r / (fe * std::sinh(at))
                             : dd * dd * 2 * std::exp(-dd * a) / (fe * (1 + std::exp(-2 * dd * a)));
      skip_above = 4 * lip * tol * std::max(anorm, 1e-300);
    }
    for (int64_t c = 0; c < needed; ++c) {
      if (use_filter && est(order[c]) > skip_above) {
        // not converged; ranked last if returned after max_iter (as unwanted kept vectors)
        thA[c] = opt.which == Which::LM ? 0.0 : -std::numeric_limits<double>::infinity();
        res[c] = std::numeric_limits<double>::infinity();
      } else if (use_filter) {
        col_get(a0 + c, x.data());
        applyA(x.data(), w.data());
        // the Rayleigh quotient and residual of the unit vector x / ||x||, as finish() returns
        // it: the kept Ritz vectors' norms drift from 1 by tens of eps over the restarts (55-77
        // eps measured, frozen once a pair has converged), and ||A x - (x'A x) x|| counted
        // |lambda| (||x||^2 - 1) / 2 (25-37 eps ||A||) as residual: pairs at 1-10 eps were
        // never locked at tol = 20 eps, and Lanczos ran every restart cycle
        double xx_xw[2];
        det_sum<2>(
            n, nt,
            [&](int64_t i, double* a) {
              a[0] += double(x[i]) * double(x[i]);
              a[1] += double(x[i]) * double(w[i]);
            },
            xx_xw);
        const double xx = xx_xw[0] > 0 ? xx_xw[0] : 1.0;
        const double th = xx_xw[1] / xx;
        thA[c] = th;
        res[c] = ritz_residual(n, x.data(), w.data(), th, nt) / std::sqrt(xx);
        if (!fixed_norm) anorm = std::max(anorm, std::fabs(th));
      } else {
        thA[c] = theta[order[c]];
        res[c] = est(order[c]);
      }
    }
    const double lock_tol = (use_filter ? 1.0 : 0.5) * tol * std::max(anorm, 1e-300);
    for (int64_t c = 0; c < needed; ++c) conv[c] = res[c] <= lock_tol;
    if (use_filter) note_stall(needed, res, conv);
    // Locked first (stable), then the rest.
    std::vector<int64_t> perm;
    for (int64_t c = 0; c < needed; ++c)
      if (conv[c]) perm.push_back(c);
    const int64_t nconv = static_cast<int64_t>(perm.size());
    for (int64_t c = 0; c < q; ++c)
      if (c >= needed || !conv[c]) perm.push_back(c);
    if (nconv > 0) {
      OmpErrors errors;
#pragma omp parallel num_threads(nt)
      {
        std::vector<T> row;
        const bool ready = errors.run([&] { row.resize(static_cast<size_t>(q)); });
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
          if (!ready) continue;
          T* r = V.data() + i * ld + a0;
          for (int64_t c = 0; c < q; ++c) row[c] = r[perm[c]];
          std::copy(row.begin(), row.end(), r);
        }
      }
      errors.rethrow();
    }
    clear_tail(a0);
    for (int64_t c = 0; c < q; ++c) {
      const int64_t oc = order[perm[c]];
      TT(a0 + c, a0 + c) = theta[oc];
      if (c >= nconv && q < ma)
        TT(a0 + q, a0 + c) = TT(a0 + c, a0 + q) = beta_m * Y[(ma - 1) * ma + oc];
    }
    for (int64_t c = 0; c < nconv; ++c) {
      lockA.push_back(thA[perm[c]]);
      lockMu.push_back(theta[order[perm[c]]]);
    }
    nl += nconv;
    p = q - nconv;
    keptA.assign(p, 0.0);
    keptMu.assign(p, 0.0);
    for (int64_t c = 0; c < p; ++c) {
      const int64_t pc = perm[nconv + c];
      keptMu[c] = theta[order[pc]];
      keptA[c] = pc < needed ? thA[pc]
                 : use_filter
                     ? (opt.which == Which::LM ? 0.0 : -std::numeric_limits<double>::infinity())
                     : theta[order[pc]];
    }
  }

  /// Purges the locked pairs beyond the k most wanted (by their A values; the first locked
  /// of equal ones kept): k converged pairs more wanted than them are locked, so finish()
  /// never returns them, and as deflation they only take room the active basis needs. They
  /// come about when a further copy of a repeated eigenvalue shows up late (grow_missed,
  /// verified): a single-vector start sees each distinct eigenvalue once, so the first k
  /// pairs locked reach far down a clustered spectrum, and with every copy found later one
  /// more such pair stayed locked until the basis was full of them (the active part down to
  /// a few columns, each cycle a few products: max_iter ran out, or the solve stopped with
  /// copies unconverged). The locked columns after them, the active ones and the next
  /// Lanczos vector move down (each row on its own: the same bits for any thread count), and
  /// the projected matrix with them; kint drops by the number purged. A purged eigenvector
  /// is orthogonal to the active block and comes back only through rounding, less wanted
  /// than the k locked (so never grown for by grow_missed). Without such a miss nl <= k and
  /// nothing changes.
  void purge() {
    if (nl <= k) return;
    std::vector<int64_t> rank(static_cast<size_t>(nl));
    std::iota(rank.begin(), rank.end(), 0);
    std::stable_sort(rank.begin(), rank.end(), [&](int64_t a, int64_t b) {
      return want_key(opt.which, lockA[a]) < want_key(opt.which, lockA[b]);
    });
    std::vector<char> keep(static_cast<size_t>(nl), 0);
    for (int64_t r = 0; r < k; ++r) keep[rank[r]] = 1;
    // the columns from nd on that stay, in order: kept locked pairs, active block, v_next
    const int64_t top = std::min(nd + nl + p + 1, ld);
    std::vector<int64_t> src;
    std::vector<double> la, lm;
    for (int64_t t = 0; t < nl; ++t)
      if (keep[t]) {
        src.push_back(nd + t);
        la.push_back(lockA[t]);
        lm.push_back(lockMu[t]);
      }
    for (int64_t c = nd + nl; c < top; ++c) src.push_back(c);
    const int64_t ns = static_cast<int64_t>(src.size());
    // src[j] >= nd + j: an in-place forward copy within each row
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) {
      T* r = V.data() + i * ld;
      for (int64_t j = 0; j < ns; ++j) r[nd + j] = r[src[j]];
    }
    std::vector<double> Tn(static_cast<size_t>(ns) * ns);
    for (int64_t a = 0; a < ns; ++a)
      for (int64_t b = 0; b < ns; ++b) Tn[a * ns + b] = TT(src[a], src[b]);
    clear_tail(nd);
    for (int64_t a = 0; a < ns; ++a)
      for (int64_t b = 0; b < ns; ++b) TT(nd + a, nd + b) = Tn[a * ns + b];
    const int64_t purged = nl - k;
    lockA.swap(la);
    lockMu.swap(lm);
    nl = k;
    kint -= purged;
  }

  /// Moves the filter's cut up to the A-eigenvalue estimate of the first Ritz value not
  /// kept (a lower bound on the eigenvalue of that index with the locked pairs counted in,
  /// union_bound, so never above a wanted one) when that at least halves the distance to
  /// the top, and restarts the active part explicitly from the sum of its kept Ritz vectors
  /// (locked pairs stay valid).
  void recut(int64_t needed, int64_t q) {
    if (!(use_filter && nl < kint && q < ma && mcur == m && recuts < 30)) return;
    // filter_inverse of theta[order[min(q, needed + 1)]], or lower (union_bound)
    std::vector<double> key(static_cast<size_t>(ma));
    for (int64_t i = 0; i < ma; ++i) key[i] = -lower_bound_of(theta[order[i]]);
    const double lam = -union_bound(key, std::min(q, needed + 1));
    const double up = fup;
    if (!(lam > cut && up - lam < 0.25 * (up - cut))) return;
    // Not into a (near-)cluster: the active Ritz value ranked just above the new cut (index
    // j - 1: the first one not wanted, which the cut leaves above it as a buffer; its lower
    // bound) must lie at least kRecutGap (top - lam) above it, top the most wanted value known
    // (locked, or the active bound), else the cut stays. A cut just below the wanted values
    // (between near-copies of a split cluster, or a hair under it) maps them onto the top
    // of the damped band: the wanted ones no longer stand out of the damped spectrum and
    // the cluster is never resolved (six 300-node cycles, weights 1 +- 1e-3, k = 24: the
    // recut put the cut 1e-7 - 6e-6 under the wanted part of a 12-fold cluster 1.7e-7 wide,
    // and the solve ran 1,000 cycles, 210k products, unconverged; with the cut kept, 33-94
    // cycles). Gaps measured there: 5e-6 - 9.5e-3 of (top - lam) for the refused cuts, 0.06 -
    // 0.47 for the accepted ones; the bench matrices' recuts are all accepted.
    const int64_t jw = std::max<int64_t>(0, std::min(q, needed + 1) - 1);
    double top = lower_bound_of(theta[order[0]]);
    for (int64_t t = 0; t < nl; ++t) {
      const double v = opt.which == Which::LM ? std::fabs(lockA[t]) : lockA[t];
      top = std::max(top, v);
    }
    if (!(lower_bound_of(theta[order[jw]]) - lam >= kRecutGap * (top - lam))) return;
    cut = lam;
    set_filter(cut);
    ++recuts;
    const int64_t b0 = nd + nl;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t c = 0; c < p; ++c) s += double(V[i * ld + b0 + c]);
      x[i] = T(s);
    }
    cgs_pass(n, V.data(), ld, b0, x.data(), h, nt);
    const double nx = cgs_pass(n, V.data(), ld, b0, x.data(), h, nt);
    if (nx > 0)
      col_set(b0, x.data(), 1.0 / nx);
    else if (random_orth(b0, x.data()))
      col_set(b0, x.data(), 1.0);
    clear_tail(b0);
    p = 0;
    keptA.clear();
    keptMu.clear();
  }

  /// Sets `done` when nothing more is to gain, or starts a verification cycle once every
  /// wanted pair is locked.
  void check_done() {
    if (stalled) {
      // residuals stagnating at the rounding level (note_stall): nothing more to gain
      done = true;
    } else if (mcur < m && nl < kint) {
      // Whole space spanned but (numerically) not converged: nothing more to gain.
      done = true;
    } else if (nl >= kint && grow_missed()) {
      // a kept Ritz value beats the k-th locked pair: converge it too (next cycles)
    } else if (nl >= kint) {
      if (opt.verify && !filt && kint + 2 < m - nd && nd + nl + 2 < n) {
        verifying = true;  // next cycle: fresh random start orthogonal to the locked pairs
        p = 0;
        if (!random_orth(nd + nl, x.data())) {
          done = true;
        } else {
          col_set(nd + nl, x.data(), 1.0);
          clear_tail(nd + nl);
        }
      } else {
        done = true;
      }
    }
  }

  /// The A value a Ritz value mu of the filtered operator stands for: the t beyond the cut
  /// with p(t) = mu (LM: |t| for |mu|), a lower bound on the (magnitude of the) eigenvalue
  /// it approaches; when mu lies in the damped band, no bound: the least wanted value (LA:
  /// -inf, LM: 0).
  double lower_bound_of(double mu) const {
    const bool lm = opt.which == Which::LM;
    const double t = filter_inverse(lm ? std::fabs(mu) : mu);
    return t > cut ? t : lm ? 0.0 : -std::numeric_limits<double>::infinity();
  }
  /// The A value a kept active column's Ritz value stands for (itself without the filter).
  double kept_value(int64_t c) const { return use_filter ? lower_bound_of(keptMu[c]) : keptMu[c]; }
  /// want_key of the k-th most wanted locked pair (A values); +inf with fewer than k locked.
  double kth_locked_key() const {
    if (nl < k) return std::numeric_limits<double>::infinity();
    std::vector<double> key(static_cast<size_t>(nl));
    for (int64_t t = 0; t < nl; ++t) key[t] = want_key(opt.which, lockA[t]);
    std::nth_element(key.begin(), key.begin() + (k - 1), key.end());
    return key[k - 1];
  }
  /// Is kept column c more wanted than the k-th locked pair by more than tol ||A||? Its
  /// Ritz value is (to the locked pairs' residuals) a lower bound on an eigenvalue of A
  /// orthogonal to the locked vectors, so such an eigenvalue was passed over: a further copy
  /// of a repeated eigenvalue, which a single-vector start sees once and only later, after
  /// rounding has brought it into the basis, while less wanted pairs were locked meanwhile.
  bool kept_beats(int64_t c, double kth) const {
    return want_key(opt.which, kept_value(c)) < kth - tol * std::max(anorm, 1e-300);
  }
  /// Once every wanted pair is locked: if kept active Ritz values beat the k-th locked pair,
  /// raises kint by their number (room in the basis permitting) so that they are converged
  /// and locked too; finish() returns the k most wanted. Returns whether kint grew.
  bool grow_missed() {
    const int64_t cap = m - nd - 3;  // kint + 2 < m - nd: the basis keeps room to iterate
    if (nl >= cap || p == 0) return false;
    const double kth = kth_locked_key();
    int64_t cnt = 0;
    for (int64_t c = 0; c < p; ++c) cnt += kept_beats(c, kth) ? 1 : 0;
    if (cnt == 0) return false;
    kint = std::min(nl + cnt, cap);
    return true;
  }

  /// Candidates (locked pairs, then kept active Ritz vectors when max_iter ran out), the k
  /// most wanted with final Rayleigh quotients and computed residuals, ascending.
  LanczosResult<T> finish() {
    std::vector<int64_t> cand_col;
    std::vector<double> cand_val;
    for (int64_t t = 0; t < nl; ++t) {
      cand_col.push_back(nd + t);
      cand_val.push_back(lockA[t]);
    }
    // kept active vectors: when fewer than k pairs are locked (max_iter ran out), or when
    // one beats the k-th locked pair (no room left to converge it): returned unconverged
    // (and so flagged) rather than silently passed over
    const double kth = kth_locked_key();
    if (!verifying)
      for (int64_t c = 0; c < p && c < static_cast<int64_t>(keptA.size()); ++c) {
        if (nl >= k && !kept_beats(c, kth)) continue;
        cand_col.push_back(nd + nl + c);
        // (ranked by the more wanted of the computed A value, if any, and the bound)
        const double kv = nl >= k ? kept_value(c) : keptA[c];
        cand_val.push_back(want_key(opt.which, kv) < want_key(opt.which, keptA[c]) ? kv : keptA[c]);
      }
    std::vector<int64_t> idx(cand_col.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      return want_key(opt.which, cand_val[a]) < want_key(opt.which, cand_val[b]);
    });
    if (static_cast<int64_t>(idx.size()) < k)
      throw std::runtime_error("lanczos: fewer Ritz vectors than requested (internal error)");
    idx.resize(k);

    LanczosResult<T> out;
    std::vector<double> vals(k), resid(k);
    std::vector<T> vecs(static_cast<size_t>(n) * k);
    for (int64_t c = 0; c < k; ++c) {
      col_get(cand_col[idx[c]], x.data());
      const double nx = std::sqrt(dot(n, x.data(), x.data(), nt));
      if (nx > 0)
        for (int64_t i = 0; i < n; ++i) x[i] = T(double(x[i]) / nx);
      if (exact) {
        exact(x.data(), w.data());
        ++n_matvec;
      } else {
        applyA(x.data(), w.data());
      }
      const double th = dot(n, x.data(), w.data(), nt);
      vals[c] = th;
      resid[c] = ritz_residual(n, x.data(), w.data(), th, nt);
      if (!fixed_norm) anorm = std::max(anorm, std::fabs(th));
      for (int64_t i = 0; i < n; ++i) vecs[i * k + c] = x[i];
    }
    std::vector<int64_t> asc(k);
    std::iota(asc.begin(), asc.end(), 0);
    std::stable_sort(asc.begin(), asc.end(),
                     [&](int64_t a, int64_t b) { return vals[a] < vals[b]; });
    out.eigenvalues.resize(k);
    out.residuals.resize(k);
    out.eigenvectors.resize(static_cast<size_t>(n) * k);
    bool ok = true;
    for (int64_t c = 0; c < k; ++c) {
      out.eigenvalues[c] = vals[asc[c]];
      out.residuals[c] = resid[asc[c]];
      ok = ok && resid[asc[c]] <= tol * anorm;
      for (int64_t i = 0; i < n; ++i) out.eigenvectors[i * k + c] = vecs[i * k + asc[c]];
    }
    out.converged = ok;
    out.n_iter = iter;
    out.n_matvec = n_matvec;
    out.anorm = anorm;
    out.cheb_cut = use_filter ? cut : 0;
    return out;
  }

  LanczosResult<T> run(const T* v0, const T* deflate) {
    start(v0, deflate);
    for (iter = 0; iter < opt.max_iter && !done; ++iter) {
      a0 = nd + nl;
      expand();
      rayleigh_ritz();
      if (verifying && verified()) {
        done = true;
        break;
      }
      const int64_t needed = kint - nl;
      // the explicit restarts (the filter's placement, a recut) keep one vector of the
      // active part: never on the last cycle, whose kept Ritz vectors finish() returns
      // (max_iter = cheb_prelim raised "fewer Ritz vectors than requested")
      const bool last = iter + 1 >= opt.max_iter;
      if (prelim && iter + 1 >= opt.cheb_prelim && !last) {
        prelim_restart(needed);
        continue;
      }
      const int64_t q = restart(needed);
      lock(needed, q);
      purge();
      if (!last) recut(needed, q);
      check_done();
    }
    return finish();
  }
};

}  // namespace

template <typename T>
LanczosResult<T> lanczos(int64_t n, const MatVec<T>& A, const T* v0, const T* deflate, int64_t nd,
                         const LanczosOptions& opt, const ChebStep<T>& step, const MatVec<T>& exact,
                         const ChebStep<T>& team_step) {
  return LanczosSolver<T>(n, A, opt, step, exact, team_step, nd).run(v0, deflate);
}

template LanczosResult<float> lanczos<float>(int64_t, const MatVec<float>&, const float*,
                                             const float*, int64_t, const LanczosOptions&,
                                             const ChebStep<float>&, const MatVec<float>&,
                                             const ChebStep<float>&);
template LanczosResult<double> lanczos<double>(int64_t, const MatVec<double>&, const double*,
                                               const double*, int64_t, const LanczosOptions&,
                                               const ChebStep<double>&, const MatVec<double>&,
                                               const ChebStep<double>&);
template void csr_matvec<float, int32_t>(int64_t, const int32_t*, const int32_t*, const float*,
                                         const float*, float*, int);
template void csr_matvec<double, int32_t>(int64_t, const int32_t*, const int32_t*, const double*,
                                          const double*, double*, int);
template void csr_matvec<float, int64_t>(int64_t, const int64_t*, const int64_t*, const float*,
                                         const float*, float*, int);
template void csr_matvec<double, int64_t>(int64_t, const int64_t*, const int64_t*, const double*,
                                          const double*, double*, int);
#define GEOML_CHEB(T, I)                                                                           \
  template void csr_cheb_step<T, I>(int64_t, const I*, const I*, const T*, const T*, const T*, T*, \
                                    double, double, double, int);
GEOML_CHEB(float, int32_t)
GEOML_CHEB(float, int64_t)
GEOML_CHEB(double, int32_t)
GEOML_CHEB(double, int64_t)
#undef GEOML_CHEB
#define GEOML_ASYM(T, I) \
  template void csr_asymmetry<T, I>(int64_t, const I*, const I*, const T*, double&, double&);
GEOML_ASYM(float, int32_t)
GEOML_ASYM(float, int64_t)
GEOML_ASYM(double, int32_t)
GEOML_ASYM(double, int64_t)
#undef GEOML_ASYM
#define GEOML_GERSH(T, I) \
  template void csr_gershgorin<T, I>(int64_t, const I*, const I*, const T*, double&, double&);
GEOML_GERSH(float, int32_t)
GEOML_GERSH(float, int64_t)
GEOML_GERSH(double, int32_t)
GEOML_GERSH(double, int64_t)
#undef GEOML_GERSH
#define GEOML_PATTERN(T, I)                                                                       \
  template void scaled_pattern_matvec<T, I>(int64_t, const I*, const I*, const double*, const T*, \
                                            T*, std::vector<double>&, int);                       \
  template void scaled_pattern_cheb_step<T, I>(int64_t, const I*, const I*, const double*,        \
                                               const T*, const T*, T*, double, double, double,    \
                                               std::vector<double>&, int);
GEOML_PATTERN(float, int32_t)
GEOML_PATTERN(float, int64_t)
GEOML_PATTERN(double, int32_t)
GEOML_PATTERN(double, int64_t)
#undef GEOML_PATTERN
template void dense_matvec<float>(int64_t, const float*, const float*, float*, int);
template void dense_matvec<double>(int64_t, const double*, const double*, double*, int);

}  // namespace geoml
