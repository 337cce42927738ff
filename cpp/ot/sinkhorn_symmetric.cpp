// Symmetric (doubly-stochastic) scaling P = diag(d) K diag(d): the damped fixed point on a dense
// kernel, a CSR kernel or the Gibbs kernel of a cost (see ot.hpp). The row products reuse the
// dense Sinkhorn kernels (ot_detail::dot_row, exp_row, lse_*) and csr_mm.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/common.hpp"
#include "common/simd.hpp"
#include "common/sparse.hpp"
#include "ot/ot.hpp"
#include "ot/sinkhorn_internal.hpp"

namespace geoml {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kTinyProduct = 1e-280;  // (K v)_i below this: recomputed by log-sum-exp
// the same for a float32 kernel, times n: the entries below FLT_MIN (subnormal or 0) then add
// at most 1e-17 relative to a product
constexpr double kTiny32PerRow = 1.2e-21;
constexpr double kAbsorbLog = 30.0;  // |log d| above this: absorbed into the potentials
constexpr int64_t kParallelMin = int64_t(1) << 20;  // kernel entries below which one thread runs

// One thread for a small kernel (a parallel region per pass costs more than the pass, far
// more on a loaded machine; the dense Sinkhorn's threshold).
int threads_for(int64_t entries, int n_threads) {
  return entries < kParallelMin ? 1 : std::max(1, n_threads);
}

constexpr int kAndersonMem = 6;           // Anderson acceleration: differences kept
constexpr double kAndersonMaxStep = 8.0;  // extrapolations moving log d further: not taken

// The damped fixed point G(l) = (l + log a - log K exp(l)) / 2 (the geometric mean of d and
// a / K d), accelerated by Anderson mixing over the last kAndersonMem iterates (type II, in
// log d, restarted when the marginal error grows or `absorb` changes the variables): for a
// positive semi-definite K the linearised map has its spectrum in [0, 1/2], mostly near 1/2 for
// a smooth kernel, which the mixing removes in a few steps. `mv(v, s)` writes s = K v,
// `exact_log(i, l)` returns log (K exp(l))_i computed without underflow, `absorb(l, big, fb)`
// may fold l into the kernel (big = max |l|, fb = a row needed exact_log) and returns true
// when it did; products (K v)_i <= *tiny are recomputed by exact_log. `s_first` (optional):
// K v for the first iteration, when l starts at 0 on the rows with a_i > 0 (v = 1 there, else 0).
template <class MatVec, class ExactLog, class Absorb>
SymmetricInfo symmetric_loop(int64_t n, const double* a, double tol, int64_t max_iter, double* l,
                             MatVec&& mv, ExactLog&& exact_log, Absorb&& absorb, const double* tiny,
                             const double* s_first = nullptr) {
  SymmetricInfo info;
  double asum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    asum += a[i];
    if (a[i] == 0.0) l[i] = kNegInf;
  }
  std::vector<double> v(n), s(n), ln(n);
  // Anderson mixing of l -> ln on the rows with a_i > 0 (x, gx: l and ln there, 0 elsewhere)
  ot_detail::AndersonMix aa;
  aa.reset(static_cast<int>(n), kAndersonMem);
  std::vector<double> x(n), gx(n);
  double err_prev = std::numeric_limits<double>::infinity();
  for (int64_t it = 0;; ++it) {
    double M = kNegInf;
    for (int64_t i = 0; i < n; ++i) M = std::max(M, l[i]);
    info.n_iter = it;
    if (M == kNegInf) {  // every mass is zero: the zero plan
      info.converged = true;
      return info;
    }
    if (it == 0 && s_first != nullptr) {  // K v for the starting l = 0, formed by the caller
      std::copy(s_first, s_first + n, s.begin());
    } else {
      for (int64_t i = 0; i < n; ++i) v[i] = l[i] == kNegInf ? 0.0 : std::exp(l[i] - M);
      mv(v.data(), s.data());
    }
    double err = 0.0;
    bool fb = false;
    for (int64_t i = 0; i < n; ++i) {
      if (a[i] == 0.0) {
        ln[i] = kNegInf;
        continue;
      }
      double ls;
      if (s[i] > *tiny && s[i] < std::numeric_limits<double>::infinity()) {
        ls = std::log(s[i]) + M;
      } else {
        ls = exact_log(i, l);
        fb = true;
      }
      if (ls == kNegInf) {  // a zero kernel row with positive mass: no scaling exists
        info.zero_row = static_cast<int>(i);
        return info;
      }
      err += std::fabs(std::exp(l[i] + ls) - a[i]);
      ln[i] = 0.5 * (l[i] + std::log(a[i]) - ls);
    }
    info.marginal_error = err;
    if (err <= tol * asum) {
      info.converged = true;
      return info;
    }
    if (it >= max_iter) return info;
    if (!(err < err_prev)) aa.restart();  // no progress: restart the mixing from this iterate
    err_prev = err;
    for (int64_t i = 0; i < n; ++i) {
      x[i] = a[i] == 0.0 ? 0.0 : l[i];
      gx[i] = a[i] == 0.0 ? 0.0 : ln[i];
    }
    // the mixed iterate, or the plain one (no history yet, or an outsized extrapolation)
    const bool mixed = aa.mix(x.data(), gx.data(), kAndersonMaxStep);
    for (int64_t i = 0; i < n; ++i) l[i] = mixed && a[i] != 0.0 ? gx[i] : ln[i];
    double big = 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (a[i] != 0.0) big = std::max(big, std::fabs(l[i]));
    if (absorb(l, big, fb)) {  // new variables: the history no longer applies
      aa.restart();
      err_prev = std::numeric_limits<double>::infinity();
    }
  }
}

// log sum_j exp(lk_j + l_j) over the given entries, lk_j = log K_ij (entries K_ij > 0 only).
template <class T, class Idx>
double exact_log_row(int64_t len, const T* k, Idx idx, const double* l) {
  double mx = kNegInf;
  for (int64_t p = 0; p < len; ++p)
    if (k[p] > 0 && l[idx(p)] > kNegInf) mx = std::max(mx, std::log(double(k[p])) + l[idx(p)]);
  if (mx == kNegInf) return kNegInf;
  double s = 0.0;
  for (int64_t p = 0; p < len; ++p)
    if (k[p] > 0 && l[idx(p)] > kNegInf) s += std::exp(std::log(double(k[p])) + l[idx(p)] - mx);
  return mx + std::log(s);
}

bool no_absorb(double*, double, bool) {
  return false;
}
constexpr double kTiny64 = kTinyProduct;

}  // namespace

// s = K v for a dense n x n kernel, four rows at a time (each row's dot with the bits of
// dot_row, so any split of the rows over the threads gives the same s).
template <typename T>
void dense_mv(int64_t n, const T* K, const double* v, double* s, int n_threads) {
  const int nn = static_cast<int>(n);
  const int64_t n4 = n / 4;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int64_t q = 0; q < n4; ++q) ot_detail::dot_rows4(nn, K + 4 * q * n, n, v, s + 4 * q);
  for (int64_t i = 4 * n4; i < n; ++i) s[i] = ot_detail::dot_row(nn, K + i * n, v);
}

// A symmetric kernel stored by its upper kTile x kTile tiles (bi <= bj; the diagonal tiles
// whole, the lower tiles never written): each stored entry read once per product, half the
// memory traffic of dense_mv. R (nb n) holds the per-block partial sums R[b n + i] = sum_{j in
// block b} K_ij v_j, each written by the one thread of its tile and summed in a fixed order:
// any thread count gives the same s.
constexpr int64_t kTile = 128;

// The partial sums of the tile (i0.., j0..): its row sums into R[bj n + i] and, off the
// diagonal, its column sums (the mirrored tile's row sums) into R[bi n + j].
template <typename T>
void upper_tile_mv(int64_t n, const T* K, const double* v, int64_t i0, int64_t i1, int64_t j0,
                   int64_t j1, double* R) {
  const int len = static_cast<int>(j1 - j0);
  const bool diag = i0 == j0;
  double* ri = R + (j0 / kTile) * n;
  double* rj = R + (i0 / kTile) * n + j0;
  if (!diag) std::fill(rj, rj + len, 0.0);
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    const T* k = K + i * n + j0;
    ot_detail::dot_rows4(len, k, n, v + j0, ri + i);
    if (!diag) ot_detail::axpy_rows4(len, v + i, k, n, rj);
  }
  for (; i < i1; ++i) {
    const T* k = K + i * n + j0;
    ri[i] = ot_detail::dot_row(len, k, v + j0);
    if (!diag) ot_detail::axpy_row(len, v[i], k, rj);
  }
}

// s_i = sum_b R[b n + i], b in order.
void sum_blocks(int64_t n, const double* R, double* s, int n_threads) {
  const int64_t nb = (n + kTile - 1) / kTile;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double t = 0.0;
    for (int64_t b = 0; b < nb; ++b) t += R[b * n + i];
    s[i] = t;
  }
}

// s = K v for a kernel stored by its upper tiles; R: nb n scratch.
template <typename T>
void upper_mv(int64_t n, const T* K, const double* v, double* s, int n_threads, double* R) {
  const int64_t nb = (n + kTile - 1) / kTile;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
  for (int64_t bi = 0; bi < nb; ++bi) {
    const int64_t i0 = bi * kTile, i1 = std::min(n, i0 + kTile);
    for (int64_t bj = bi; bj < nb; ++bj)
      upper_tile_mv(n, K, v, i0, i1, bj * kTile, std::min(n, bj * kTile + kTile), R);
  }
  sum_blocks(n, R, s, n_threads);
}

template <typename T>
SymmetricInfo sinkhorn_symmetric_dense(int64_t n, const T* K, const double* a, double tol,
                                       int64_t max_iter, int n_threads, double* logd, T* P) {
  n_threads = threads_for(n * n, n_threads);
  const int nn = static_cast<int>(n);
  auto mv = [&](const double* v, double* s) { dense_mv(n, K, v, s, n_threads); };
  auto exact = [&](int64_t i, const double* l) {
    return exact_log_row(n, K + i * n, [](int64_t p) { return p; }, l);
  };
  SymmetricInfo info = symmetric_loop(n, a, tol, max_iter, logd, mv, exact, no_absorb, &kTiny64);
  if (P != nullptr && info.zero_row < 0) {
    // d_i K_ij d_j; when some |log d| is large (a diverging, non-scalable K) as
    // K_ij exp(log d_i + log d_j), which stays finite where the product of d's would not
    double big = 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (logd[i] > kNegInf) big = std::max(big, std::fabs(logd[i]));
    std::vector<double> d(n);
    for (int64_t i = 0; i < n; ++i) d[i] = std::exp(logd[i]);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T* Ki = K + i * n;
      T* Pi = P + i * n;
      const double di = d[i];
      if (big < 300.0) {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) Pi[j] = static_cast<T>(di * double(Ki[j]) * d[j]);
      } else {
        for (int64_t j = 0; j < n; ++j)
          Pi[j] = Ki[j] == 0 ? T(0) : static_cast<T>(double(Ki[j]) * std::exp(logd[i] + logd[j]));
      }
    }
  }
  return info;
}

template SymmetricInfo sinkhorn_symmetric_dense<double>(int64_t, const double*, const double*,
                                                        double, int64_t, int, double*, double*);
template SymmetricInfo sinkhorn_symmetric_dense<float>(int64_t, const float*, const double*, double,
                                                       int64_t, int, double*, float*);

SymmetricInfo sinkhorn_symmetric_csr(int64_t n, const int64_t* indptr, const int64_t* indices,
                                     const double* data, const double* a, double tol,
                                     int64_t max_iter, int n_threads, double* logd) {
  n_threads = threads_for(indptr[n], n_threads);
  const CsrRef<double, int64_t> A{n, indptr, indices, data};
  auto mv = [&](const double* v, double* s) { csr_mm<double>(A, v, 1, s, n_threads); };
  auto exact = [&](int64_t i, const double* l) {
    const int64_t p0 = indptr[i];
    return exact_log_row(
        indptr[i + 1] - p0, data + p0, [&](int64_t p) { return indices[p0 + p]; }, l);
  };
  return symmetric_loop(n, a, tol, max_iter, logd, mv, exact, no_absorb, &kTiny64);
}

// Running input checks of a tile pair (M_ij and M_ji for i in [i0, i1), j in [j0, j1); the
// upper triangle only on a diagonal tile); row minima into rm (n) when non-null.
struct ScanAcc {
  double mn = std::numeric_limits<double>::infinity(), mx = 0.0, asym = 0.0;
  bool finite = true;
};

#define GEOML_KERNEL_INC "ot/symmetric_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

// The input-check tile (see symmetric_kernel.inc) of the ISA simd_isa() chooses.
template <typename T>
void scan_tile(int64_t n, const T* M, int64_t i0, int64_t i1, int64_t j0, int64_t j1, bool diag,
               ScanAcc& acc, double* rm) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, scan_tile<T>, n, M, i0, i1, j0, j1, diag, acc, rm);
}

// Merges per-thread accumulators and row minima (exact operations: the result does not depend
// on the thread count).
SymmetricScan merge_scan(int64_t n, const std::vector<ScanAcc>& accs,
                         const std::vector<double>& rmins, double* rowmin) {
  SymmetricScan out;
  out.min = std::numeric_limits<double>::infinity();
  for (const ScanAcc& c : accs) {
    out.finite = out.finite && c.finite;
    out.min = std::min(out.min, c.mn);
    out.absmax = std::max(out.absmax, c.mx);
    out.asym = std::max(out.asym, c.asym);
  }
  if (rowmin != nullptr) {
    const size_t T = accs.size();
    for (int64_t i = 0; i < n; ++i) {
      double m = std::numeric_limits<double>::infinity();
      for (size_t t = 0; t < T; ++t) m = std::min(m, rmins[t * size_t(n) + size_t(i)]);
      rowmin[i] = m;
    }
  }
  return out;
}

// K_ij = exp((f_i + f_j - C_ij) ie) into K (float32 or float64), and s = K v (n) in the same
// pass. With C == C.T exactly, the exponentials of the upper tiles only, stored by their upper
// tiles (see upper_mv; R: its scratch) with half the exps; else every row.
template <typename T>
void build_gibbs(int64_t n, const double* f, const double* C, double ie, bool c_symmetric,
                 int n_threads, T* K, const double* v, double* s, double* R,
                 ScanAcc* accs = nullptr, double* rmins = nullptr) {
  auto row = [&](int len, int64_t i, int64_t j0) {
    if constexpr (std::is_same_v<T, float>)
      ot_detail::exp_row32(len, f[i], f + j0, C + i * n + j0, ie, K + i * n + j0);
    else
      ot_detail::exp_row(len, f[i], f + j0, C + i * n + j0, ie, K + i * n + j0);
  };
  if (!c_symmetric) {
    const int nn = static_cast<int>(n);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      row(nn, i, 0);
      s[i] = ot_detail::dot_row(nn, K + i * n, v);
    }
    return;
  }
  // 128 x 128 tiles: their row segments (1 KiB) are long enough for the hardware prefetchers
  // (10 % faster than 64 x 64 at n = 2,000), and a tile of C and K stays in L2
  const int64_t nb = (n + kTile - 1) / kTile;
#pragma omp parallel num_threads(n_threads)
  {
    const int tid = thread_id();
#pragma omp for schedule(dynamic, 1)
    for (int64_t bi = 0; bi < nb; ++bi) {
      const int64_t i0 = bi * kTile, i1 = std::min(n, i0 + kTile);
      for (int64_t bj = bi; bj < nb; ++bj) {
        const int64_t j0 = bj * kTile, j1 = std::min(n, j0 + kTile);
        const int len = static_cast<int>(j1 - j0);
        if (accs != nullptr)  // the input checks of this tile pair, while it is in cache
          scan_tile(n, C, i0, i1, j0, j1, bj == bi, accs[tid], rmins + size_t(tid) * size_t(n));
        for (int64_t i = i0; i < i1; ++i) row(len, i, j0);
        if (bj == bi)  // the diagonal tile: its lower triangle from its upper one
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = i + 1; j < j1; ++j) K[j * n + i] = K[i * n + j];
        upper_tile_mv(n, K, v, i0, i1, j0, j1, R);
      }
    }
  }
  sum_blocks(n, R, s, n_threads);
}

SymmetricInfo sinkhorn_symmetric_cost(int64_t n, const double* C, double eps, const double* a,
                                      double tol, int64_t max_iter, int n_threads, double* logd,
                                      double* P, const double* rowmin, bool c_symmetric,
                                      int64_t f32_min_entries, SymmetricScan* scan,
                                      double sym_rtol) {
  n_threads = threads_for(n * n, n_threads);
  const int nn = static_cast<int>(n);
  const double ie = 1.0 / eps;
  // f_i = min_j C_ij / 2 makes every exponent f_i + f_j - C_ij <= 0 at the start (C symmetric)
  std::vector<double> f(n), h(n);
  // the kernels are built with their first product K v, v = 1 on the rows with a_i > 0
  std::vector<double> mask(n), s0(n);
  for (int64_t i = 0; i < n; ++i) mask[i] = a[i] == 0.0 ? 0.0 : 1.0;
  std::vector<double> R(size_t((n + kTile - 1) / kTile) * size_t(n));  // upper_mv's scratch
  SymmetricInfo info;
  if (scan != nullptr) {
    // The input checks fused with a first (upper-tile) build with f = 0, which stands whenever
    // C is exactly symmetric with zero row minima (a cost with a zero diagonal); else rebuilt.
    std::vector<ScanAcc> accs(n_threads);
    std::vector<double> rmins(size_t(n_threads) * size_t(n),
                              std::numeric_limits<double>::infinity());
    build_gibbs(n, f.data(), C, ie, true, n_threads, P, mask.data(), s0.data(), R.data(),
                accs.data(), rmins.data());
    *scan = merge_scan(n, accs, rmins, h.data());
    if (!scan->finite || scan->asym > sym_rtol * scan->absmax) return info;  // caller raises
    bool rebuild = scan->asym != 0.0;
    c_symmetric = !rebuild;
    for (int64_t i = 0; i < n; ++i) {
      f[i] = 0.5 * h[i];
      rebuild = rebuild || f[i] != 0.0;
    }
    if (rebuild)
      build_gibbs(n, f.data(), C, ie, c_symmetric, n_threads, P, mask.data(), s0.data(), R.data());
    f32_min_entries = std::numeric_limits<int64_t>::max();
  } else if (rowmin != nullptr) {
    for (int64_t i = 0; i < n; ++i) f[i] = 0.5 * rowmin[i];
  } else {
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const double* Ci = C + i * n;
      double mn = Ci[0];
      for (int64_t j = 1; j < n; ++j) mn = std::min(mn, Ci[j]);
      f[i] = 0.5 * mn;
    }
  }
  // The kernel lives in float32 (half the memory traffic per pass; products below
  // n kTiny32PerRow are recomputed exactly) until the first absorption or convergence, then in
  // float64 in P (any eps > 0; the returned plan and its marginal error are float64's).
  std::unique_ptr<float[]> K32;
  double tiny = kTinyProduct;
  auto build = [&]() {
    build_gibbs(n, f.data(), C, ie, c_symmetric, n_threads, P, mask.data(), s0.data(), R.data());
  };
  if (n * n >= f32_min_entries) {
    K32.reset(new float[size_t(n) * size_t(n)]);
    tiny = std::max(kTinyProduct, double(n) * kTiny32PerRow);
    build_gibbs(n, f.data(), C, ie, c_symmetric, n_threads, K32.get(), mask.data(), s0.data(),
                R.data());
  } else if (scan == nullptr) {
    build();
  }
  auto mv = [&](const double* v, double* s) {
    if (K32 && c_symmetric)
      upper_mv(n, K32.get(), v, s, n_threads, R.data());
    else if (K32)
      dense_mv(n, K32.get(), v, s, n_threads);
    else if (c_symmetric)
      upper_mv(n, P, v, s, n_threads, R.data());
    else
      dense_mv(n, P, v, s, n_threads);
  };
  auto exact = [&](int64_t i, const double* l) {
    for (int64_t j = 0; j < n; ++j) h[j] = l[j] == kNegInf ? kNegInf : f[j] + eps * l[j];
    const double mx = ot_detail::lse_max(nn, h.data(), C + i * n);
    if (mx == kNegInf) return kNegInf;
    return (f[i] + mx) * ie +
           std::log(ot_detail::lse_sum(nn, h.data(), C + i * n, mx, ie, nullptr));
  };
  auto absorb = [&](double* l, double big, bool fb) {
    if (big <= kAbsorbLog && !fb) return false;
    for (int64_t i = 0; i < n; ++i) {
      if (l[i] == kNegInf) continue;
      f[i] += eps * l[i];
      l[i] = 0.0;
    }
    K32.reset();
    tiny = kTinyProduct;
    build();
    return true;
  };
  for (int64_t i = 0; i < n; ++i) logd[i] = 0.0;
  info = symmetric_loop(n, a, tol, max_iter, logd, mv, exact, absorb, &tiny, s0.data());
  if (info.zero_row >= 0) return info;
  if (K32) {
    // The float32 phase has converged (or run out of iterations): the scaling folded into f,
    // the float64 kernel = the float64 plan built from it, and the same loop continues on it
    // (the first pass measures the plan's marginal error in float64; the rounding of the
    // float32 kernel leaves ~1e-9 relative, which a few more passes remove if tol asks).
    absorb(logd, std::numeric_limits<double>::infinity(), true);
    const int64_t n32 = info.n_iter;
    info = symmetric_loop(n, a, tol, std::max<int64_t>(0, max_iter - n32), logd, mv, exact, absorb,
                          &tiny, s0.data());
    info.n_iter += n32;
    if (info.zero_row >= 0) return info;
  }
  bool identity = true;  // d = 1: P already holds the plan (or its upper tiles)
  for (int64_t i = 0; i < n; ++i) identity = identity && logd[i] == 0.0;
  std::vector<double> d(n);
  for (int64_t i = 0; i < n; ++i) d[i] = std::exp(logd[i]);
  const SimdIsa isa = simd_isa();
  if (c_symmetric) {
    // the plan's upper tiles in place, each mirrored into its lower tile while in cache (an
    // exactly symmetric plan)
    const int64_t nb = (n + kTile - 1) / kTile;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int64_t bi = 0; bi < nb; ++bi) {
      const int64_t i0 = bi * kTile, i1 = std::min(n, i0 + kTile);
      for (int64_t bj = bi; bj < nb; ++bj) {
        const int64_t j0 = bj * kTile, j1 = std::min(n, j0 + kTile);
        if (!identity)
          for (int64_t i = i0; i < i1; ++i)
            GEOML_SIMD_CALL(isa, scale_row, j1 - j0, d[i], d.data() + j0, P + i * n + j0);
        for (int64_t j = j0; j < j1; ++j)  // (a diagonal tile: its strict upper triangle)
          for (int64_t i = i0; i < std::min(i1, j); ++i) P[j * n + i] = P[i * n + j];
      }
    }
  } else if (!identity) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) GEOML_SIMD_CALL(isa, scale_row, n, d[i], d.data(), P + i * n);
  }
  for (int64_t i = 0; i < n; ++i) logd[i] = logd[i] == kNegInf ? kNegInf : f[i] * ie + logd[i];
  return info;
}

template <typename T>
SymmetricScan symmetric_scan(int64_t n, const T* M, int n_threads, double* rowmin) {
  n_threads = threads_for(n * n, n_threads);
  constexpr int64_t B = 128;  // two 128 x 128 float64 tiles: 256 KiB (L2)
  const int64_t nb = (n + B - 1) / B;
  std::vector<ScanAcc> accs(n_threads);
  // per-thread row minima (a tile updates the rows of both of its blocks)
  std::vector<double> rmins(rowmin != nullptr ? size_t(n_threads) * size_t(n) : 0,
                            std::numeric_limits<double>::infinity());
#pragma omp parallel num_threads(n_threads)
  {
    const int tid = thread_id();
    double* rm = rowmin != nullptr ? rmins.data() + size_t(tid) * size_t(n) : nullptr;
#pragma omp for schedule(dynamic, 1)
    for (int64_t bi = 0; bi < nb; ++bi) {
      const int64_t i0 = bi * B, i1 = std::min(n, i0 + B);
      for (int64_t bj = bi; bj < nb; ++bj)
        scan_tile(n, M, i0, i1, bj * B, std::min(n, bj * B + B), bj == bi, accs[tid], rm);
    }
  }
  return merge_scan(n, accs, rmins, rowmin);
}

template SymmetricScan symmetric_scan<double>(int64_t, const double*, int, double*);
template SymmetricScan symmetric_scan<float>(int64_t, const float*, int, double*);

}  // namespace geoml
