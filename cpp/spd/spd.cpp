// Batched small symmetric eigensolver and the SPD matrix functions built on it (spd.hpp).
#include "spd/spd.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/common.hpp"
#include "common/simd.hpp"

namespace geoml {

namespace {

#define GEOML_KERNEL_INC "spd/eigh_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

// Threads for `tasks` matrices of size n: one below ~64 matrices' worth of 16 x 16 work (a
// parallel region costs more than it saves there, much more on a loaded machine), else
// resolve_threads(n_jobs) capped at the task count. Results never depend on it.
int threads_for(int64_t tasks, int n, int n_jobs) {
  const double work = double(tasks) * double(n) * double(n) * double(n);
  if (work < 64.0 * 16 * 16 * 16) return 1;
  const int64_t t = resolve_threads(n_jobs);
  return int(t < tasks ? t : tasks);
}

// Per-thread scratch for one matrix.
struct Work {
  explicit Work(int n) : X(size_t(n) * n), U(size_t(n) * n), T1(size_t(n) * n), d(n), e(n), f(n) {}
  std::vector<double> X, U, T1, d, e, f;
};

// Loads A (T) into X (double), checking finiteness and symmetry.
template <typename T>
int8_t load(const T* A, int n, double sym_tol, double* X) {
  double amax = 0.0;
  bool finite = true;
  for (int i = 0; i < n * n; ++i) {
    const double v = double(A[i]);
    X[i] = v;
    finite &= std::isfinite(v);
    amax = std::max(amax, std::fabs(v));
  }
  if (!finite) return SpdNotFinite;
  double asym = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) asym = std::max(asym, std::fabs(X[i * n + j] - X[j * n + i]));
  if (asym > sym_tol * amax) return SpdNotSymmetric;
  return SpdOk;
}

bool all_finite(int n, const double* X) {
  bool ok = true;
  for (int i = 0; i < n * n; ++i) ok &= std::isfinite(X[i]);
  return ok;
}

// X <- M X M (M symmetric, double), through T1.
void congruence(SimdIsa isa, int n, const double* M, double* X, double* T1) {
  GEOML_SIMD_CALL(isa, matmul, n, M, X, T1);
  GEOML_SIMD_CALL(isa, matmul, n, T1, M, X);
}

// Eigenvalues (w.d, ascending) and, with vectors, eigenvectors (rows of w.U) of the symmetric
// matrix in w.X (destroyed: scaled). False if QL did not converge.
bool eig(SimdIsa isa, int n, Work& w, bool vectors) {
  double s = 0.0;
  for (int i = 0; i < n * n; ++i) s = std::max(s, std::fabs(w.X[i]));
  if (s == 0.0) {
    std::fill(w.d.begin(), w.d.end(), 0.0);
    if (vectors) {
      std::fill(w.U.begin(), w.U.end(), 0.0);
      for (int i = 0; i < n; ++i) w.U[size_t(i) * n + i] = 1.0;
    }
    return true;
  }
  // Scaled by a power of two near the largest entry (exact): no overflow or underflow in the
  // rotations. Only the upper triangle is read (symmetrised by construction).
  int ex = 0;
  std::frexp(s, &ex);
  const double inv = std::ldexp(1.0, -ex);
  s = std::ldexp(1.0, ex);
  for (int i = 0; i < n; ++i)
    for (int j = i; j < n; ++j) {
      const double v = w.X[size_t(i) * n + j] * inv;
      w.U[size_t(i) * n + j] = v;
      w.U[size_t(j) * n + i] = v;
    }
  GEOML_SIMD_CALL(isa, tred2, n, w.U.data(), w.d.data(), w.e.data(), vectors);
  const bool ok =
      GEOML_SIMD_CALL(isa, tql2, n, w.d.data(), w.e.data(), vectors ? w.U.data() : nullptr);
  for (int i = 0; i < n; ++i) w.d[i] *= s;
  return ok;
}

template <typename T>
bool positive(int n, const double* d) {
  const double eps = std::numeric_limits<T>::epsilon();
  return d[0] > 0.0 && d[0] > double(n) * eps * d[n - 1];
}

bool needs_pd(SpdFunc f) {
  return f != SpdFunc::Exp;
}

// w.f = f(w.d); false if a value is not finite.
bool apply(SpdFunc f, double power, int n, Work& w) {
  bool fin = true;
  for (int i = 0; i < n; ++i) {
    const double x = w.d[i];
    double y;
    switch (f) {
      case SpdFunc::Sqrt:
        y = std::sqrt(x);
        break;
      case SpdFunc::InvSqrt:
        y = 1.0 / std::sqrt(x);
        break;
      case SpdFunc::Log:
        y = std::log(x);
        break;
      case SpdFunc::Exp:
        y = std::exp(x);
        break;
      default:
        y = std::pow(x, power);
        break;
    }
    w.f[i] = y;
    fin &= std::isfinite(y);
  }
  return fin;
}

// f(M A M) of one matrix into w.T1 (double); the status.
template <typename T>
int8_t funm_one(SimdIsa isa, const T* A, int n, const double* M, SpdFunc f, double power,
                double sym_tol, Work& w) {
  int8_t st = load(A, n, sym_tol, w.X.data());
  if (st != SpdOk) return st;
  if (M) {
    congruence(isa, n, M, w.X.data(), w.T1.data());
    if (!all_finite(n, w.X.data())) return SpdOverflow;
  }
  if (!eig(isa, n, w, true)) return SpdNotConverged;
  if (needs_pd(f) && !positive<T>(n, w.d.data())) return SpdNotPositive;
  if (!apply(f, power, n, w)) return SpdOverflow;
  GEOML_SIMD_CALL(isa, reconstruct, n, w.U.data(), w.f.data(), w.T1.data());
  return SpdOk;
}

template <typename T>
std::vector<double> to_double(const T* M, int64_t count) {
  std::vector<double> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = double(M[i]);
  return out;
}

}  // namespace

template <typename T>
void spd_eigh(const T* A, int64_t B, int n, double sym_tol, bool vectors, T* w, T* V,
              int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
#pragma omp parallel num_threads(threads_for(B, n, n_jobs))
  {
    Work ws(n);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      int8_t st = load(A + b * nn, n, sym_tol, ws.X.data());
      if (st == SpdOk && !eig(isa, n, ws, vectors)) st = SpdNotConverged;
      status[b] = st;
      T* wb = w + b * n;
      if (st != SpdOk) {
        for (int i = 0; i < n; ++i) wb[i] = std::numeric_limits<T>::quiet_NaN();
        if (vectors)
          for (int64_t i = 0; i < nn; ++i) V[b * nn + i] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      for (int i = 0; i < n; ++i) wb[i] = T(ws.d[i]);
      if (vectors) {
        T* vb = V + b * nn;
        for (int j = 0; j < n; ++j)
          for (int k = 0; k < n; ++k) vb[k * n + j] = T(ws.U[size_t(j) * n + k]);
      }
    }
  }
}

template <typename T>
void spd_funm(const T* A, int64_t B, int n, const T* M, int64_t m_stride, SpdFunc f, double power,
              double sym_tol, T* out, int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  std::vector<double> Mshared;
  if (M && m_stride == 0) Mshared = to_double(M, nn);
#pragma omp parallel num_threads(threads_for(B, n, n_jobs))
  {
    Work ws(n);
    std::vector<double> Mb(M && m_stride ? nn : 0);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      const double* Md = nullptr;
      if (M && m_stride == 0) {
        Md = Mshared.data();
      } else if (M) {
        for (int64_t i = 0; i < nn; ++i) Mb[i] = double(M[b * m_stride + i]);
        Md = Mb.data();
      }
      const int8_t st = funm_one(isa, A + b * nn, n, Md, f, power, sym_tol, ws);
      status[b] = st;
      T* ob = out + b * nn;
      for (int64_t i = 0; i < nn; ++i)
        ob[i] = st == SpdOk ? T(ws.T1[i]) : std::numeric_limits<T>::quiet_NaN();
    }
  }
}

template <typename T>
void spd_eigvalsh_pairs(const T* A, int64_t B, int n, const T* M, int64_t K, bool outer,
                        double sym_tol, T* w, int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  const std::vector<double> Md = to_double(M, K * nn);
  const int64_t tasks = outer ? B * K : B;
#pragma omp parallel num_threads(threads_for(tasks, n, n_jobs))
  {
    Work ws(n);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = outer ? t / K : t;
      const int64_t k = outer ? t % K : (K == 1 ? 0 : t);
      int8_t st = load(A + b * nn, n, sym_tol, ws.X.data());
      if (st == SpdOk) {
        congruence(isa, n, Md.data() + k * nn, ws.X.data(), ws.T1.data());
        if (!all_finite(n, ws.X.data()))
          st = SpdOverflow;
        else if (!eig(isa, n, ws, false))
          st = SpdNotConverged;
        else if (!positive<T>(n, ws.d.data()))
          st = SpdNotPositive;
      }
      status[t] = st;
      for (int i = 0; i < n; ++i)
        w[t * n + i] = st == SpdOk ? T(ws.d[i]) : std::numeric_limits<T>::quiet_NaN();
    }
  }
}

template <typename T>
void spd_funm_wsum(const T* A, int64_t B, int n, const T* M, const double* wts, SpdFunc f,
                   double power, double sym_tol, double* out, int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  constexpr int64_t kChunk = 32;  // fixed: the sum's order does not depend on the threads
  const int64_t chunks = (B + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks * nn, 0.0);
  std::vector<double> Md;
  if (M) Md = to_double(M, nn);
#pragma omp parallel num_threads(threads_for(B, n, n_jobs))
  {
    Work ws(n);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      double* acc = partial.data() + c * nn;
      const int64_t b1 = std::min(B, (c + 1) * kChunk);
      for (int64_t b = c * kChunk; b < b1; ++b) {
        const int8_t st =
            funm_one(isa, A + b * nn, n, M ? Md.data() : nullptr, f, power, sym_tol, ws);
        status[b] = st;
        if (st != SpdOk) continue;
        const double wb = wts[b];
        for (int64_t i = 0; i < nn; ++i) acc[i] += wb * ws.T1[i];
      }
    }
  }
  std::fill(out, out + nn, 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t i = 0; i < nn; ++i) out[i] += partial[c * nn + i];
}

#define GEOML_SPD_INSTANTIATE(T)                                                                   \
  template void spd_eigh<T>(const T*, int64_t, int, double, bool, T*, T*, int8_t*, int);           \
  template void spd_funm<T>(const T*, int64_t, int, const T*, int64_t, SpdFunc, double, double,    \
                            T*, int8_t*, int);                                                     \
  template void spd_eigvalsh_pairs<T>(const T*, int64_t, int, const T*, int64_t, bool, double, T*, \
                                      int8_t*, int);                                               \
  template void spd_funm_wsum<T>(const T*, int64_t, int, const T*, const double*, SpdFunc, double, \
                                 double, double*, int8_t*, int);
GEOML_SPD_INSTANTIATE(float)
GEOML_SPD_INSTANTIATE(double)

}  // namespace geoml
