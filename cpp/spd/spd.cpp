// Batched small symmetric eigensolver and the SPD matrix functions built on it (spd.hpp).
#include "spd/spd.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

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
    const double a = std::fabs(v);
    finite &= a <= std::numeric_limits<double>::max();  // false for NaN and infinity
    amax = a > amax ? a : amax;
  }
  if (!finite) return SpdNotFinite;
  double asym = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) asym = std::max(asym, std::fabs(X[i * n + j] - X[j * n + i]));
  if (asym > sym_tol * amax) return SpdNotSymmetric;
  return SpdOk;
}

constexpr int kLanes = generic::LANES;

// The exponent e of the power of two 2^e by which a matrix whose largest |entry| is s > 0 is
// divided before the reduction: s 2^-e in [0.5, 1), with e clamped to [-1021, 1023] so that
// 2^e and 2^-e are doubles (s 2^-e in [1, 2) from s >= 2^1023 on, below 0.5 for a subnormal
// s). Unclamped, 2^1024 was infinite: every matrix with an entry >= 2^1023 was refused as not
// positive definite, and one of subnormal entries got an infinite 1 / scale.
int scale_exponent(double s) {
  int ex = 0;
  std::frexp(s, &ex);
  return ex < -1021 ? -1021 : ex > 1023 ? 1023 : ex;
}

// Structure-of-arrays scratch for kLanes matrices (eigh_kernel.inc's *_lanes).
struct LaneWork {
  explicit LaneWork(int n)
      : U(size_t(n) * n * kLanes),
        d(size_t(n) * kLanes),
        e(size_t(n) * kLanes),
        M(size_t(n) * n * kLanes),
        T(size_t(n) * n * kLanes),
        F(size_t(n) * n * kLanes),
        f(size_t(n) * kLanes),
        gs(size_t(n) * kLanes),
        hs(size_t(n) * kLanes) {}
  std::vector<double> U, d, e;     // the matrices (then eigenvectors), diagonals, off-diagonals
  std::vector<double> M, T, F, f;  // congruence factors, scratch, f(matrices), f(eigenvalues)
  std::vector<double> gs, hs;      // the rotations of a QL sweep
};

// Eigenvalues (ws[q].d, ascending) and, with vectors, eigenvectors (rows of ws[q].U) of the
// symmetric matrices ws[q].X of the lanes q < count with live[q], in one lane-parallel pass
// (tred2_lanes/tql2_lanes; a lane that is not live holds the identity). Each matrix is first
// scaled by a power of two near its largest entry (exact): no overflow or underflow in the
// rotations; only its upper triangle is read. ok[q] false when QL did not converge. Each
// lane's arithmetic is independent of the others.
void eig_lanes(SimdIsa isa, int n, Work* ws, const bool* live, int count, bool vectors,
               LaneWork& lw, bool* ok) {
  const size_t nl = size_t(n) * kLanes;
  double scale[kLanes];
  bool zero[kLanes];
  for (int q = 0; q < kLanes; ++q) {
    const bool use = q < count && live[q];
    double s = 0.0;
    if (use)
      for (int i = 0; i < n * n; ++i) s = std::max(s, std::fabs(ws[q].X[i]));
    zero[q] = !use || s == 0.0;
    if (zero[q]) {
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) lw.U[i * nl + size_t(j) * kLanes + q] = i == j ? 1.0 : 0.0;
      continue;
    }
    const int ex = scale_exponent(s);
    const double inv = std::ldexp(1.0, -ex);
    scale[q] = std::ldexp(1.0, ex);
    const double* X = ws[q].X.data();
    for (int i = 0; i < n; ++i)
      for (int j = i; j < n; ++j) {
        const double v = X[size_t(i) * n + j] * inv;
        lw.U[i * nl + size_t(j) * kLanes + q] = v;
        lw.U[j * nl + size_t(i) * kLanes + q] = v;
      }
  }
  GEOML_SIMD_CALL(isa, tred2_lanes, n, lw.U.data(), lw.d.data(), lw.e.data(), vectors, lw.gs.data(),
                  lw.hs.data());
  const unsigned bad =
      GEOML_SIMD_CALL(isa, tql2_lanes, n, lw.d.data(), lw.e.data(), vectors ? lw.U.data() : nullptr,
                      lw.gs.data(), lw.hs.data(), true);
  for (int q = 0; q < count; ++q) {
    if (!live[q]) continue;
    Work& w = ws[q];
    ok[q] = true;
    if (zero[q]) {  // the zero matrix: eigenvalues 0, eigenvectors the identity
      std::fill(w.d.begin(), w.d.end(), 0.0);
      if (vectors) {
        std::fill(w.U.begin(), w.U.end(), 0.0);
        for (int i = 0; i < n; ++i) w.U[size_t(i) * n + i] = 1.0;
      }
      continue;
    }
    ok[q] = !((bad >> q) & 1u);
    for (int i = 0; i < n; ++i) w.d[i] = lw.d[size_t(i) * kLanes + q] * scale[q];
    if (vectors)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) w.U[size_t(j) * n + k] = lw.U[j * nl + size_t(k) * kLanes + q];
  }
}

// Lane q of the structure-of-arrays n x n matrices at U set to the identity.
void set_identity(int n, double* U, int q) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) U[(size_t(i) * n + j) * kLanes + q] = i == j ? 1.0 : 0.0;
}

// Per-thread state of a lane group: one Work per lane plus the SoA scratch.
struct Group {
  explicit Group(int n) : lw(n) {
    ws.reserve(kLanes);
    for (int q = 0; q < kLanes; ++q) ws.emplace_back(n);
  }
  std::vector<Work> ws;
  LaneWork lw;
  bool live[kLanes], ok[kLanes];
  int8_t st[kLanes];
  bool m_ready = false;  // lw.M holds the shared M (the same for every task) in every lane
};

template <typename T>
bool positive(int n, const double* d) {  // d in any order
  const double eps = std::numeric_limits<T>::epsilon();
  double lo = d[0], hi = d[0];
  for (int i = 1; i < n; ++i) {
    lo = d[i] < lo ? d[i] : lo;
    hi = d[i] > hi ? d[i] : hi;
  }
  bool nan = false;
  for (int i = 0; i < n; ++i) nan |= d[i] != d[i];
  return !nan && lo > 0.0 && lo > double(n) * eps * hi;
}

bool needs_pd(SpdFunc f) {
  return f != SpdFunc::Exp;
}

// f(x) for an eigenvalue x = xs 2^ex beyond the largest double (xs the scaled eigenvalue,
// ex <= 1023: x = t 2^1024 with t = xs 2^(ex - 1024) of order 1), as far as f(x) is finite:
// sqrtm, invsqrtm, logm and powm (power < 1) of a matrix near the top of the range.
double apply_huge(SpdFunc f, double power, double xs, int ex) {
  const double t = std::ldexp(xs, ex - 1024);
  switch (f) {
    case SpdFunc::Sqrt:
      return std::ldexp(std::sqrt(t), 512);
    case SpdFunc::InvSqrt:
      return 1.0 / std::ldexp(std::sqrt(t), 512);
    case SpdFunc::Log:
      return std::log(t) + 1024.0 * 0.6931471805599453;
    case SpdFunc::Exp:
      return std::numeric_limits<double>::infinity();
    default:
      return std::pow(t, power) * std::exp2(1024.0 * power);
  }
}

// w.f = f(w.d); false if a value is not finite. On entry w.f holds the scaled eigenvalues
// (w.d = w.f 2^ex), used where an eigenvalue overflowed in w.d.
bool apply(SpdFunc f, double power, int n, Work& w, int ex) {
  bool fin = true;
  for (int i = 0; i < n; ++i) {
    const double x = w.d[i];
    double y;
    if (x == std::numeric_limits<double>::infinity()) {
      y = apply_huge(f, power, w.f[i], ex);
      w.f[i] = y;
      fin &= std::isfinite(y);
      continue;
    }
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

// f(M_b A_b M_b) for the tasks b = b0 + q, q < count (A_b at src(b), M_b at mat(b): null for
// none), all in the lanes of g.lw: load, congruence (congruence_lanes), scaling by a power of
// two per lane, tred2/tql2, and with `vectors` f of the eigenvalues and the reconstruction
// (reconstruct_lanes) into g.lw.F (entry i of lane q at F[i kLanes + q]); without vectors only
// the eigenvalues (g.ws[q].d, ascending unless !sort) and the definiteness check (with vectors
// the eigenvalues are left unsorted: the reconstruction does not need the order). Statuses in
// g.st.
template <typename T, typename SrcOf, typename MatOf>
void funm_group(SimdIsa isa, int64_t b0, int count, int n, SrcOf src, MatOf mat, bool with_m,
                bool shared_m, SpdFunc f, double power, double sym_tol, bool vectors, Group& g,
                bool m_lower = false, bool sort = true) {
  LaneWork& lw = g.lw;
  const size_t nn = size_t(n) * n;
  bool has_m = false;
  double* U = lw.U.data();
  double* Ml = lw.M.data();
  alignas(64) double amax[kLanes], asym[kLanes];
  const T* Aq[kLanes];
  for (int q = 0; q < kLanes; ++q) {
    amax[q] = asym[q] = 0.0;
    Aq[q] = q < count ? src(b0 + q) : nullptr;
    if (q >= count) set_identity(n, U, q);
  }
  // the inputs, as they are, into the lanes: eight entries of every matrix at a time, so the
  // lines of U being written (8 x 128 bytes) stay in L1 (a whole matrix at a time went through
  // the 62 KB of U once per lane, each store a miss)
  // (the lanes' 32 input streams, 64 bytes of each at a time, are more than the hardware
  // prefetchers follow: each stream is prefetched 512 bytes ahead; past a matrix's end that is
  // the next matrix or nothing, a prefetch never faults)
  // (whole chunks of eight unrolled: the copy loop's bounds, alias check and branch cost more
  // than its eight moves)
  const size_t nn8 = nn / 8 * 8;
  for (size_t i0 = 0; i0 < nn; i0 += 8) {
    const size_t i1 = std::min(nn, i0 + 8);
    for (int q = 0; q < count; ++q) {
      const T* __restrict A = Aq[q] + i0;
      double* __restrict u = U + i0 * kLanes + q;
      __builtin_prefetch(reinterpret_cast<const char*>(A) + 512);
      if (i0 < nn8) {
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) u[size_t(i) * kLanes] = double(A[i]);
      } else {
        for (size_t i = 0; i < i1 - i0; ++i) u[i * kLanes] = double(A[i]);
      }
    }
  }
  // largest |entry| per lane, all lanes at once (independent chains: one per lane, instead of
  // one matrix's serial max chain); a NaN or infinity makes it non-finite for good
  // (this pass and the symmetry check, mirror and scaling below: per-ISA lane loops of
  // eigh_kernel.inc, at the vector width of the machine instead of the baseline's SSE2)
  const double big = std::numeric_limits<double>::max();
  GEOML_SIMD_CALL(isa, absmax_lanes, nn, U, big, amax);
  for (int q = 0; q < kLanes; ++q) {
    g.live[q] = q < count && amax[q] <= big;
    if (q < count) g.st[q] = g.live[q] ? SpdOk : SpdNotFinite;
    if (q < count && !g.live[q]) set_identity(n, U, q);
  }
  GEOML_SIMD_CALL(isa, asym_lanes, n, U, asym);  // symmetry, all lanes: max |a_ij - a_ji|
  for (int q = 0; q < kLanes; ++q)
    if (g.live[q] && asym[q] > sym_tol * amax[q]) {
      g.st[q] = SpdNotSymmetric;
      g.live[q] = false;
      set_identity(n, U, q);
    }
  GEOML_SIMD_CALL(isa, mirror_lanes, n, U);  // only the upper triangle is read: mirrored
  for (int q = 0; q < kLanes; ++q) {
    const double* m = g.live[q] && with_m ? mat(b0 + q) : nullptr;
    has_m |= m != nullptr;
    if (shared_m) continue;  // filled once below
    if (m)
      for (size_t i = 0; i < nn; ++i) Ml[i * kLanes + q] = m[i];
    else if (with_m)
      set_identity(n, Ml, q);
  }
  if (shared_m && has_m && !g.m_ready) {  // complete the shared M in every lane, once
    const double* m = mat(b0);
    for (int q = 0; q < kLanes; ++q)
      for (size_t i = 0; i < nn; ++i) lw.M[i * kLanes + q] = m[i];
    g.m_ready = true;
  }
  if (has_m) {
    if (m_lower)  // M lower triangular: M A M^T
      GEOML_SIMD_CALL(isa, congruence_lower_lanes, n, lw.M.data(), lw.U.data(), lw.T.data(),
                      lw.F.data(), shared_m ? mat(b0) : nullptr);
    else
      GEOML_SIMD_CALL(isa, congruence_lanes, n, lw.M.data(), lw.U.data(), lw.T.data(), lw.F.data());
    std::swap(lw.U, lw.F);
  }
  // per lane: finite (after the congruence), largest entry, scaling by a power of two
  alignas(64) double inv[kLanes], scale[kLanes];
  int sexp[kLanes];
  bool zero[kLanes];
  for (int q = 0; q < kLanes; ++q) amax[q] = 0.0;
  GEOML_SIMD_CALL(isa, absmax_lanes, nn, lw.U.data(), big, amax);  // NaN / inf propagate
  for (int q = 0; q < kLanes; ++q) {
    inv[q] = 1.0;
    scale[q] = 1.0;
    sexp[q] = 0;
    zero[q] = false;
    if (!g.live[q]) continue;
    if (!(amax[q] <= big)) {  // M A M overflowed (the input itself was checked finite)
      g.st[q] = SpdOverflow;
      g.live[q] = false;
      continue;
    }
    zero[q] = amax[q] == 0.0;
    if (zero[q]) continue;
    sexp[q] = scale_exponent(amax[q]);
    inv[q] = std::ldexp(1.0, -sexp[q]);
    scale[q] = std::ldexp(1.0, sexp[q]);
  }
  GEOML_SIMD_CALL(isa, scale_lanes, nn, lw.U.data(), inv);
  for (int q = 0; q < kLanes; ++q)  // lanes without a matrix (or a zero one) hold the identity
    if (!g.live[q] || zero[q]) set_identity(n, lw.U.data(), q);
  GEOML_SIMD_CALL(isa, tred2_lanes, n, lw.U.data(), lw.d.data(), lw.e.data(), vectors, lw.gs.data(),
                  lw.hs.data());
  const unsigned bad =
      GEOML_SIMD_CALL(isa, tql2_lanes, n, lw.d.data(), lw.e.data(), vectors ? lw.U.data() : nullptr,
                      lw.gs.data(), lw.hs.data(), !vectors && sort);
  for (int q = 0; q < kLanes; ++q) {
    double* fl = lw.f.data();
    for (int i = 0; i < n; ++i) fl[size_t(i) * kLanes + q] = 0.0;  // no contribution
    if (!g.live[q]) continue;
    Work& w = g.ws[q];
    if (zero[q]) {  // the zero matrix: eigenvalues 0, eigenvectors the identity
      std::fill(w.d.begin(), w.d.end(), 0.0);
      if (vectors) set_identity(n, lw.U.data(), q);
    } else {
      if ((bad >> q) & 1u) {
        g.st[q] = SpdNotConverged;
        continue;
      }
      for (int i = 0; i < n; ++i) {
        w.f[i] = lw.d[size_t(i) * kLanes + q];
        w.d[i] = w.f[i] * scale[q];
      }
    }
    // definiteness on the scaled eigenvalues (the same test, exact: a power of two), which
    // overflow in w.d where the largest is beyond the largest double
    if (needs_pd(f) && !positive<T>(n, zero[q] ? w.d.data() : w.f.data())) {
      g.st[q] = SpdNotPositive;
      continue;
    }
    if (!vectors) continue;
    if (!apply(f, power, n, w, sexp[q])) {
      g.st[q] = SpdOverflow;
      continue;
    }
    for (int i = 0; i < n; ++i) fl[size_t(i) * kLanes + q] = w.f[i];
  }
  if (vectors)
    GEOML_SIMD_CALL(isa, reconstruct_lanes, n, lw.U.data(), lw.f.data(), lw.T.data(), lw.F.data());
}

// memcpy(dst, src, bytes), with non-temporal stores (SSE2, the x86-64 baseline) for dst's
// 64-byte-aligned interior: a large output written once is not read first (a normal store
// reads each line before writing it) and does not evict the working set from the caches.
void stream_copy(void* dst, const void* src, size_t bytes) {
#if GEOML_SIMD_X86
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const size_t head = std::min(bytes, (64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63);
  std::memcpy(d, s, head);
  d += head;
  s += head;
  bytes -= head;
  const size_t body = bytes & ~size_t(63);
  for (size_t i = 0; i < body; i += 64)
    for (size_t j = 0; j < 64; j += 16)
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + j),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + j)));
  std::memcpy(d + body, s + body, bytes - body);
  _mm_sfence();  // the streamed lines are visible before the caller moves on
#else
  std::memcpy(dst, src, bytes);
#endif
}

// True when every value is finite once cast to T (float32 output of a float64 computation).
template <typename T>
bool fits(const double* x, int64_t count) {
  const double big = double(std::numeric_limits<T>::max());
  bool ok = true;
  for (int64_t i = 0; i < count; ++i) ok &= std::fabs(x[i]) <= big;
  return ok;
}

template <typename T>
std::vector<double> to_double(const T* M, int64_t count) {
  std::vector<double> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = double(M[i]);
  return out;
}

// body(g, scratch, c) for c = 0 .. items - 1, in parallel on threads_for(tasks, n, n_jobs)
// threads, each with its own Group of n x n workspaces and `scratch` doubles of its own (both
// allocated in the guard: OmpErrors).
template <typename Body>
void for_items(int64_t items, int64_t tasks, int n, int n_jobs, int64_t scratch, Body body) {
  OmpErrors errors;
#pragma omp parallel num_threads(threads_for(tasks, n, n_jobs))
  {
    std::unique_ptr<Group> gp;
    std::vector<double> extra;
    const bool ok = errors.run([&] {
      gp = std::make_unique<Group>(n);
      extra.resize(size_t(scratch));
    });
#pragma omp for schedule(static)
    for (int64_t c = 0; c < items; ++c) {
      if (!ok) continue;
      body(*gp, extra.data(), c);
    }
  }
  errors.rethrow();
}

}  // namespace

template <typename T>
void spd_eigh(const T* A, int64_t B, int n, double sym_tol, bool vectors, T* w, T* V,
              int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  const int64_t groups = (B + kLanes - 1) / kLanes;
  for_items(groups, B, n, n_jobs, 0, [&](Group& g, double*, int64_t c) {
    const int64_t b0 = c * kLanes;
    const int count = int(std::min<int64_t>(kLanes, B - b0));
    for (int q = 0; q < count; ++q) {
      g.st[q] = load(A + (b0 + q) * nn, n, sym_tol, g.ws[q].X.data());
      g.live[q] = g.st[q] == SpdOk;
    }
    eig_lanes(isa, n, g.ws.data(), g.live, count, vectors, g.lw, g.ok);
    for (int q = 0; q < count; ++q) {
      const int64_t b = b0 + q;
      int8_t st = g.st[q];
      if (st == SpdOk && !g.ok[q]) st = SpdNotConverged;
      if (st == SpdOk && !fits<T>(g.ws[q].d.data(), n)) st = SpdOverflow;
      status[b] = st;
      T* wb = w + b * n;
      if (st != SpdOk) {
        for (int i = 0; i < n; ++i) wb[i] = std::numeric_limits<T>::quiet_NaN();
        if (vectors)
          for (int64_t i = 0; i < nn; ++i) V[b * nn + i] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      const Work& ws = g.ws[q];
      for (int i = 0; i < n; ++i) wb[i] = T(ws.d[i]);
      if (vectors) {
        T* vb = V + b * nn;
        for (int j = 0; j < n; ++j)
          for (int k = 0; k < n; ++k) vb[k * n + j] = T(ws.U[size_t(j) * n + k]);
      }
    }
  });
}

template <typename T>
void spd_funm(const T* A, int64_t B, int n, const T* M, int64_t m_stride, SpdFunc f, double power,
              double sym_tol, T* out, int8_t* status, int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  std::vector<double> Mshared;
  if (M && m_stride == 0) Mshared = to_double(M, nn);
  const bool shared = M && m_stride == 0;
  const int64_t groups = (B + kLanes - 1) / kLanes;
  auto src = [&](int64_t b) { return A + b * nn; };
  auto group = [&](Group& g, double* Mb, int64_t c) {  // Mb: the scratch, one M per lane
    auto mat = [&](int64_t b) -> const double* {
      if (!M) return nullptr;
      if (m_stride == 0) return Mshared.data();
      double* m = Mb + (b % kLanes) * nn;
      for (int64_t i = 0; i < nn; ++i) m[i] = double(M[b * m_stride + i]);
      return m;
    };
    const int64_t b0 = c * kLanes;
    const int count = int(std::min<int64_t>(kLanes, B - b0));
    funm_group<T>(isa, b0, count, n, src, mat, M != nullptr, shared, f, power, sym_tol, true, g);
    // out of the lanes: the largest |entry| per lane for all lanes at once (a value that
    // is not finite in T sticks), then eight entries of every matrix at a time (the lines
    // of F being read stay in L1, as in the load)
    const double* F = g.lw.F.data();  // entry i of lane q at F[i kLanes + q]
    const double big = double(std::numeric_limits<T>::max());
    alignas(64) double mx[kLanes];
    for (int q = 0; q < kLanes; ++q) mx[q] = 0.0;
    GEOML_SIMD_CALL(isa, absmax_lanes, size_t(nn), F, big, mx);
    for (int q = 0; q < count; ++q)
      if (g.st[q] == SpdOk && !(mx[q] <= big)) g.st[q] = SpdOverflow;  // not finite in T
    // into the group's contiguous output block, assembled in the scratch (in cache) and then
    // streamed out (stream_copy: the block's lines are written whole, never read)
    T* blk = reinterpret_cast<T*>(Mb + (M && m_stride ? kLanes * nn : 0));
    for (int64_t i0 = 0; i0 < nn; i0 += 8) {
      const int64_t i1 = std::min(nn, i0 + 8);
      for (int q = 0; q < count; ++q) {
        T* ob = blk + q * nn;
        for (int64_t i = i0; i < i1; ++i) ob[i] = T(F[i * kLanes + q]);
      }
    }
    for (int q = 0; q < count; ++q) {
      status[b0 + q] = g.st[q];
      if (g.st[q] != SpdOk)
        std::fill(blk + q * nn, blk + (q + 1) * nn, std::numeric_limits<T>::quiet_NaN());
    }
    stream_copy(out + b0 * nn, blk, size_t(count) * size_t(nn) * sizeof(T));
  };
  for_items(groups, B, n, n_jobs, (M && m_stride ? 2 : 1) * kLanes * nn, group);
}

template <typename T>
void spd_eigvalsh_pairs(const T* A, int64_t B, int n, const T* M, int64_t K, bool outer, bool lower,
                        double sym_tol, T* w, int8_t* status, int n_jobs, double* log_sq) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  const std::vector<double> Md = to_double(M, K * nn);
  const int64_t tasks = outer ? B * K : B;
  const int64_t groups = (tasks + kLanes - 1) / kLanes;
  auto src = [&](int64_t t) { return A + (outer ? t / K : t) * nn; };
  auto mat = [&](int64_t t) { return Md.data() + (outer ? t % K : (K == 1 ? 0 : t)) * nn; };
  for_items(groups, tasks, n, n_jobs, 0, [&](Group& g, double*, int64_t c) {
    const int64_t t0 = c * kLanes;
    const int count = int(std::min<int64_t>(kLanes, tasks - t0));
    funm_group<T>(isa, t0, count, n, src, mat, true, !outer && K == 1, SpdFunc::Sqrt, 1.0, sym_tol,
                  false, g, lower, log_sq == nullptr);
    if (log_sq) {  // sum_i log(w_i)^2 per task, in the lanes (the order of the w_i is QL's)
      double* x = g.lw.F.data();  // free after funm_group without vectors
      alignas(64) double sums[kLanes];
      for (int q = 0; q < kLanes; ++q) {
        const bool use = q < count && g.st[q] == SpdOk;
        for (int i = 0; i < n; ++i) x[size_t(i) * kLanes + q] = use ? g.ws[q].d[i] : 1.0;
      }
      GEOML_SIMD_CALL(isa, log_sq_lanes, n, x, sums);
      for (int q = 0; q < count; ++q) {
        status[t0 + q] = g.st[q];
        log_sq[t0 + q] = g.st[q] == SpdOk ? sums[q] : std::numeric_limits<double>::quiet_NaN();
      }
      return;
    }
    for (int q = 0; q < count; ++q) {
      int8_t st = g.st[q];
      if (st == SpdOk && !fits<T>(g.ws[q].d.data(), n)) st = SpdOverflow;
      status[t0 + q] = st;
      for (int i = 0; i < n; ++i)
        w[(t0 + q) * n + i] = st == SpdOk ? T(g.ws[q].d[i]) : std::numeric_limits<T>::quiet_NaN();
    }
  });
}

template <typename T>
void spd_funm_wsum(const T* A, int64_t B, int n, const T* M, const double* wts, SpdFunc f,
                   double power, bool lower, double sym_tol, double* out, int8_t* status,
                   int n_jobs) {
  const SimdIsa isa = simd_isa();
  const int64_t nn = int64_t(n) * n;
  // fixed: the sum's order depends neither on the threads nor on kLanes
  constexpr int64_t kChunk = 64;
  static_assert(kChunk % kLanes == 0, "a chunk holds whole lane groups");
  const int64_t chunks = (B + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks * nn, 0.0);
  std::vector<double> Md;
  if (M) Md = to_double(M, nn);
  const bool shared = true;  // one M (or none) for every matrix
  auto src = [&](int64_t b) { return A + b * nn; };
  auto mat = [&](int64_t) -> const double* { return M ? Md.data() : nullptr; };
  for_items(chunks, B, n, n_jobs, 0, [&](Group& g, double*, int64_t c) {
    double* acc = partial.data() + c * nn;
    const int64_t b1 = std::min(B, (c + 1) * kChunk);
    for (int64_t b0 = c * kChunk; b0 < b1; b0 += kLanes) {
      const int count = int(std::min<int64_t>(kLanes, b1 - b0));
      funm_group<T>(isa, b0, count, n, src, mat, M != nullptr, shared, f, power, sym_tol, true, g,
                    lower && M != nullptr);
      for (int q = 0; q < count; ++q) status[b0 + q] = g.st[q];
      // acc += w_q F_q, lane after lane for every entry (the same order of additions as one
      // matrix at a time), eight entries at a time: eight independent sums, and the lines
      // of F being read stay in L1
      const double* F = g.lw.F.data();
      for (int64_t i0 = 0; i0 < nn; i0 += 8) {
        const int64_t i1 = std::min(nn, i0 + 8);
        for (int q = 0; q < count; ++q) {
          if (g.st[q] != SpdOk) continue;
          const double wb = wts[b0 + q];
          for (int64_t i = i0; i < i1; ++i) acc[i] += wb * F[i * kLanes + q];
        }
      }
    }
  });
  std::fill(out, out + nn, 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t i = 0; i < nn; ++i) out[i] += partial[c * nn + i];
}

#define GEOML_SPD_INSTANTIATE(T)                                                                   \
  template void spd_eigh<T>(const T*, int64_t, int, double, bool, T*, T*, int8_t*, int);           \
  template void spd_funm<T>(const T*, int64_t, int, const T*, int64_t, SpdFunc, double, double,    \
                            T*, int8_t*, int);                                                     \
  template void spd_eigvalsh_pairs<T>(const T*, int64_t, int, const T*, int64_t, bool, bool,       \
                                      double, T*, int8_t*, int, double*);                          \
  template void spd_funm_wsum<T>(const T*, int64_t, int, const T*, const double*, SpdFunc, double, \
                                 bool, double, double*, int8_t*, int);
GEOML_SPD_INSTANTIATE(float)
GEOML_SPD_INSTANTIATE(double)

}  // namespace geoml
