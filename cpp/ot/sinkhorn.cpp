// Log-domain stabilised Sinkhorn on dense costs: DenseSinkhorn, sinkhorn_dense and the
// batched driver (see ot.hpp). The per-ISA row kernels are in sinkhorn_kernel.inc.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "ot/ot.hpp"
#include "ot/sinkhorn_internal.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {

namespace {

using ot_detail::AndersonMix;
using ot_detail::exp_neg;
using ot_detail::lse_max;
using ot_detail::lse_sum;
using ot_detail::unbalanced_bound;
using ot_detail::unbalanced_kappa;

constexpr double kAbsorb = 50.0;  // scalings leave [e^-50, e^50]: absorb them
const double kHi = std::exp(kAbsorb), kLo = std::exp(-kAbsorb);
// Anderson acceleration of balanced problems (see run()): differences kept, the largest move
// of a log-scaling an extrapolation may make (larger ones are not taken), the smallest kernel
// that mixes; a stage whose best error has not fallen by kAaWindowGain over the last kAaWindow
// iterations goes over to SOR
constexpr int kAaMem = 5, kAaWindow = 20;
constexpr int64_t kAaMinSize = int64_t(1) << 14;
constexpr double kAaMaxStep = 8.0, kAaWindowGain = 0.5;
// SOR: the plain rate is measured from iteration kSorMin on (counted from SOR's start), once
// three consecutive error ratios agree within kSorStable (relative) and are at most
// kSorEarlyMax (slow rates settle late), and at the latest over iterations kSorFrom..kSorTo
constexpr int kSorMin = 4, kSorFrom = 10, kSorTo = 20;
constexpr double kSorStable = 0.005, kSorEarlyMax = 0.8;
constexpr double kTiny = 1e-280;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr int kSweepBlock = 16;  // rows per dynamically scheduled block of the sweep
// kernels with at least this many entries may be stored in float32 (smaller ones are not
// memory-bound)
constexpr int64_t kF32MinSize = int64_t(1) << 16;

// Float32 kernel row: Ki[j] = exp(z_j), z_j = (fi + gc_j - C_ij) ie, computed in float64 and
// rounded (see kernel_row32 in sinkhorn_kernel.inc): exponents above kZ32Hi refuse float32;
// below kZ32Lo the entries are float32 subnormals or 0 (absolute error < kFltMin).
constexpr double kZ32Lo = -87.0, kZ32Hi = 88.0;
constexpr double kFltMin = 1.1754943508222875e-38;  // 2^-126
// With such entries, the scalings are absorbed as soon as max u * max v exceeds
// kFlushShare * tol / (m n kFltMin): the plan's total error from them stays below
// kFlushShare * tol.
constexpr double kFlushShare = 1e-3;

#define GEOML_KERNEL_INC "ot/sinkhorn_kernel.inc"
#define GEOML_KERNEL_AVX512 1  // eight-lane kernel builds (exp-bound)
#include "common/simd_instantiate.inc"

// The row kernels for the ISA simd_isa() chooses (see sinkhorn_kernel.inc).
void kernel_row(int n, double fi, const double* gc, const double* Ci, double ie, double* Ki) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, kernel_row, n, fi, gc, Ci, ie, Ki);
}
int kernel_row32(int n, double fi, const double* gc, const double* Ci, double ie, float* Ki) {
  const SimdIsa isa = simd_isa();
  return GEOML_SIMD_CALL(isa, kernel_row32, n, fi, gc, Ci, ie, Ki);
}
template <class T>
double row_dot(int n, const T* k, const double* v) {
  const SimdIsa isa = simd_isa();
  return GEOML_SIMD_CALL(isa, row_dot<T>, n, k, v);
}
template <class T>
void row_axpy(int n, double u, const T* k, double* acc) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_axpy<T>, n, u, k, acc);
}

// Over-relaxation x^w for x > 0: a binomial series when x is near 1 (exact at x = 1, so the
// fixed point is untouched), pow otherwise.
struct Relax {
  double w = 1.0, c[9] = {};
  void set(double omega) {
    w = omega;
    double ck = 1.0;
    for (int k = 1; k <= 8; ++k) c[k] = (ck *= (omega - (k - 1)) / k);
  }
  double operator()(double x) const {
    const double d = x - 1.0;
    if (!(std::fabs(d) <= 0.125)) return std::pow(x, w);
    double s = c[8];
    for (int k = 7; k >= 1; --k) s = s * d + c[k];
    return 1.0 + s * d;
  }
};

// One sweep of the kernel rows [i0, i1) of a stabilised Sinkhorn iteration: Kv_i = K_i . v,
// the row update of u (balanced: a_i / Kv_i; unbalanced: wr_i (a_i / Kv_i)^lam; relaxed by
// omega), and acc += u_i K_i, so that one pass over K yields K^T u for the column update.
// Rows whose Kv leaves (kTiny, 1e280) keep their u and set *bad. Balanced: adds the row
// error |u_i Kv_i - a_i| of the updated plan to *err; unbalanced: max |log(u_new / u)| to *du.
// Also tracks the range of the new u in *umin / *umax.
struct SweepOut {
  double err = 0.0, du = 0.0, umin = std::numeric_limits<double>::infinity(), umax = 0.0;
  bool bad = false;
};

template <class T>
void rows_dot4(int n, const T* k, const double* v, double* s) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_dot4<T>, n, k, int64_t(n), v, s);
}
template <class T>
void rows_axpy4(int n, const double* u, const T* k, double* acc) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_axpy4<T>, n, u, k, int64_t(n), acc);
}

// One sweep over rows [i0, i1) of a float64 or float32 kernel, four rows at a time (the dots
// share the loads of v, the updates of acc one load and store; the same bits as row by row).
template <class T>
void sweep_rows(int i0, int i1, int n, const T* K, const double* v, const double* a,
                const double* wr, double lam, bool balanced, const Relax& rx, double* u,
                double* acc, SweepOut& o) {
  for (int i4 = i0; i4 < i1; i4 += 4) {
    const int nr = std::min(4, i1 - i4);
    const T* Kb = K + static_cast<int64_t>(i4) * n;
    double s4[4], un4[4] = {0.0, 0.0, 0.0, 0.0};
    if (nr == 4) rows_dot4(n, Kb, v, s4);
    for (int r = 0; r < nr; ++r) {
      const int i = i4 + r;
      if (!(a[i] > 0)) {
        u[i] = 0.0;
        continue;
      }
      const double s = nr == 4 ? s4[r] : row_dot(n, Kb + static_cast<int64_t>(r) * n, v);
      if (!(s > kTiny && s < 1e280)) {
        o.bad = true;
        continue;
      }
      const double ra = a[i] / s;
      double un = lam == 1.0 ? ra : wr[i] * std::pow(ra, lam);
      if (rx.w != 1.0) un = u[i] * rx(un / u[i]);
      if (balanced)
        o.err += std::fabs(un * s - a[i]);
      else
        o.du = std::max(o.du, std::fabs(std::log(un / u[i])));
      u[i] = un;
      o.umin = std::min(o.umin, un);
      o.umax = std::max(o.umax, un);
      un4[r] = un;
    }
    // (a row without an update is skipped, not added with u = 0: its kernel may hold inf)
    if (nr == 4 && un4[0] != 0.0 && un4[1] != 0.0 && un4[2] != 0.0 && un4[3] != 0.0) {
      rows_axpy4(n, un4, Kb, acc);
    } else {
      for (int r = 0; r < nr; ++r)
        if (un4[r] != 0.0) row_axpy(n, un4[r], Kb + static_cast<int64_t>(r) * n, acc);
    }
  }
}

// Dense stabilised Sinkhorn on one problem (see sinkhorn_dense in ot.hpp).
struct DenseSinkhorn {
  int m, n, nt;
  const double *a, *b, *C;
  double* f;
  double* g;
  double* K;  // kernel, then plan
  SinkhornWork& w;
  double eps = 1.0, lam = 1.0;
  // unbalanced: bound factor of the potential error over the last change (see run())
  double kappa = 1.0;
  bool balanced = true;
  bool anderson = true;  // SinkhornParams::anderson
  Relax rx;  // the over-relaxation of the sweeps (SOR; plain while Anderson mixing runs)
  // The kernel is stored in float32 (in the first half of K's memory: half the traffic of
  // each pass) when the problem is large enough to be memory-bound and every exponent of
  // the kernel keeps exp() a normal float; set by build_kernel. try32: not yet refused at
  // this eps.
  // flushed: some entries of the float32 kernel are below e^kZ32Lo (see kFlushShare).
  bool f32 = false, try32 = false, flushed = false;
  bool pending = false;  // build_kernel ran the next sweep: its result is `pend`
  // non-empty: the next build also scans each row of C (CostScan) into rows[i], and a row
  // with a non-finite entry stops it
  std::vector<ot_detail::Range> rows;
  SweepOut pend;
  std::vector<SweepOut> gout;  // per row group of the sweep
  float* K32() const { return reinterpret_cast<float*>(K); }
  // threads only pay off on large kernels (a parallel region costs microseconds, far more
  // on a loaded machine)
  bool par() const { return nt > 1 && static_cast<int64_t>(m) * n >= (int64_t(1) << 20); }

  DenseSinkhorn(int m_, int n_, const double* a_, const double* b_, const double* C_, double* f_,
                double* g_, double* K_, SinkhornWork& w_, int nt_)
      : m(m_), n(n_), nt(nt_), a(a_), b(b_), C(C_), f(f_), g(g_), K(K_), w(w_) {}

  void set_eps(double e, double rho) {
    eps = e;
    rx.set(1.0);
    try32 = static_cast<int64_t>(m) * n >= kF32MinSize;
    lam = balanced ? 1.0 : rho / (rho + e);
    kappa = balanced ? 1.0 : unbalanced_kappa(e, rho);
    // reference measure a b^T for the unbalanced problem (POT's reg_type="kl")
    for (int i = 0; i < m; ++i) w.ra[i] = (!balanced && a[i] > 0) ? e * std::log(a[i]) : 0.0;
    for (int j = 0; j < n; ++j) w.rb[j] = (!balanced && b[j] > 0) ? e * std::log(b[j]) : 0.0;
  }

  // f += eps log u, g += eps log v (positive scalings only), u = v = 1 there.
  void absorb() {
    for (int i = 0; i < m; ++i)
      if (w.u[i] > 0) {
        f[i] += eps * std::log(w.u[i]);
        w.u[i] = 1.0;
      }
    for (int j = 0; j < n; ++j)
      if (w.v[j] > 0) {
        g[j] += eps * std::log(w.v[j]);
        w.v[j] = 1.0;
      }
  }

  // Builds the kernel at the current f, g and eps. With `fuse` (an iteration follows), the row
  // half of that iteration's sweep runs on each block of rows right after it is built, while
  // it is in cache (one pass over the kernel less per build): the same operations in the same
  // order as sweep(), so the same bits; run() then starts from `pend`.
  void build_kernel(bool fuse = false) {
    const double ie = 1.0 / eps;
    // f + ra and g + rb; -inf on zero-mass bins: their kernel rows and columns are 0 (so is
    // their plan), whatever their potentials (a warm start may hold any finite value there)
    double* fr = w.tmp.data();
    for (int i = 0; i < m; ++i) fr[i] = a[i] > 0 ? f[i] + w.ra[i] : kNegInf;
    double* gc = w.gc.data();
    for (int j = 0; j < n; ++j) gc[j] = b[j] > 0 ? g[j] + w.rb[j] : kNegInf;
    // u-update factors exp((lam - 1) f / eps) (unbalanced only)
    for (int i = 0; i < m; ++i) w.wr[i] = lam == 1.0 ? 1.0 : std::exp((lam - 1.0) * f[i] * ie);
    for (int j = 0; j < n; ++j) w.wc[j] = lam == 1.0 ? 1.0 : std::exp((lam - 1.0) * g[j] * ie);
    pending = false;
    f32 = false;
    if (try32) {
      // float32 rows; a row with an exponent above the float range refuses float32 for this
      // eps (the other rows then skip their work) and the kernel is rebuilt below
      if (fuse) w.usave.assign(w.u.begin(), w.u.end());
      std::atomic<bool> low{false};
      float* K32p = K32();
      const bool ok = build_rows(
          [&](int i) {
            if (!scan_row(i)) return false;
            const int code = kernel_row32(n, fr[i], gc, C + static_cast<int64_t>(i) * n, ie,
                                          K32p + static_cast<int64_t>(i) * n);
            if (code == 1) low.store(true, std::memory_order_relaxed);
            return code != 2;
          },
          fuse, static_cast<const float*>(K32p));
      f32 = try32 = ok;
      flushed = f32 && low.load();
      if (!ok && fuse) std::copy(w.usave.begin(), w.usave.end(), w.u.begin());
    }
    if (!f32) {
      build_rows(
          [&](int i) {
            if (!scan_row(i)) return false;
            kernel_row(n, fr[i], gc, C + static_cast<int64_t>(i) * n, ie,
                       K + static_cast<int64_t>(i) * n);
            return true;
          },
          fuse, static_cast<const double*>(K));
    }
  }

  // The scan of row i of C when one is asked for (see `rows`): false when it is not finite.
  bool scan_row(int i) {
    if (rows.empty()) return true;
    rows[i] = ot_detail::range_of(n, C + static_cast<int64_t>(i) * n);
    return rows[i].z == 0.0;
  }

  // Kernel rows by `row(i)` (false: refused; the other rows then skip their work), with the
  // fused sweep of build_kernel when `fuse`. Returns whether no row refused.
  template <class T, class Row>
  bool build_rows(Row&& row, bool fuse, const T* Kt) {
    std::atomic<bool> ok{true};
    if (!fuse) {
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, kSweepBlock)
      for (int i = 0; i < m; ++i)
        if (ok.load(std::memory_order_relaxed) && !row(i))
          ok.store(false, std::memory_order_relaxed);
      return ok.load();
    }
    const int G = groups();
    if (G > 1) w.part.resize(static_cast<size_t>(G) * n);
    gout.assign(G, SweepOut());
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, 1)
    for (int q = 0; q < G; ++q) {
      double* acc = G == 1 ? w.Ktu.data() : w.part.data() + static_cast<int64_t>(q) * n;
      std::fill(acc, acc + n, 0.0);
      const int i0 = static_cast<int>(static_cast<int64_t>(m) * q / G);
      const int i1 = static_cast<int>(static_cast<int64_t>(m) * (q + 1) / G);
      for (int r0 = i0; r0 < i1; r0 += kSweepBlock) {
        const int r1 = std::min(i1, r0 + kSweepBlock);
        for (int i = r0; i < r1; ++i)
          if (ok.load(std::memory_order_relaxed) && !row(i))
            ok.store(false, std::memory_order_relaxed);
        if (!ok.load(std::memory_order_relaxed)) break;
        sweep_rows(r0, r1, n, Kt, w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(), acc,
                   gout[q]);
      }
    }
    if (!ok.load()) return false;
    pend = reduce_groups(G);
    pending = true;
    return true;
  }

  // Exact log-domain update of all row potentials (u = v = 1 assumed): used when a row of
  // the kernel underflows. f_i = lam (eps log a_i - ra_i - eps LSE_j((g_j + rb_j - C_ij)/eps)).
  void exact_rows() {
    const double ie = 1.0 / eps;
    double* gc = w.gc.data();  // zero-mass columns (v = 0) left out
    for (int j = 0; j < n; ++j) gc[j] = b[j] > 0 ? g[j] + w.rb[j] : kNegInf;
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, kSweepBlock)
    for (int i = 0; i < m; ++i) {
      if (!(a[i] > 0)) continue;
      const double* Ci = C + static_cast<int64_t>(i) * n;
      const double mx = lse_max(n, gc, Ci);
      const double s = lse_sum(n, gc, Ci, mx, ie, nullptr);
      f[i] = lam * (eps * std::log(a[i]) - w.ra[i] - mx - eps * std::log(s));
    }
  }
  void exact_cols() {
    const double ie = 1.0 / eps;
    std::vector<double>& mx = w.tmp;
    std::vector<double>& s = w.gc;
    for (int j = 0; j < n; ++j) {
      mx[j] = -std::numeric_limits<double>::infinity();
      s[j] = 0.0;
    }
    for (int i = 0; i < m; ++i) {
      const double* Ci = C + static_cast<int64_t>(i) * n;
      if (!(a[i] > 0)) continue;  // zero-mass rows (u = 0) left out
      const double fi = f[i] + w.ra[i];
      for (int j = 0; j < n; ++j) mx[j] = std::max(mx[j], fi - Ci[j]);
    }
    for (int i = 0; i < m; ++i) {
      const double* Ci = C + static_cast<int64_t>(i) * n;
      if (!(a[i] > 0)) continue;
      const double fi = f[i] + w.ra[i];
      for (int j = 0; j < n; ++j) s[j] += exp_neg((fi - Ci[j] - mx[j]) * ie);
    }
    for (int j = 0; j < n; ++j)
      if (b[j] > 0) g[j] = lam * (eps * std::log(b[j]) - w.rb[j] - mx[j] - eps * std::log(s[j]));
  }

  // out = K^T u
  void matvec_t(const double* u, double* out) {
    if (f32)
      matvec_t_impl(K32(), u, out);
    else
      matvec_t_impl(K, u, out);
  }
  template <class KT>
  void matvec_t_impl(const KT* K, const double* u, double* out) {
    if (!par()) {
      std::fill(out, out + n, 0.0);
      for (int i = 0; i < m; ++i) {
        const KT* Ki = K + static_cast<int64_t>(i) * n;
        const double ui = u[i];
        if (ui == 0.0) continue;
        for (int j = 0; j < n; ++j) out[j] += Ki[j] * ui;
      }
      return;
    }
#pragma omp parallel num_threads(nt)
    {
      const int T = thread_count(), t = thread_id();
      const int j0 = static_cast<int>(static_cast<int64_t>(n) * t / T);
      const int j1 = static_cast<int>(static_cast<int64_t>(n) * (t + 1) / T);
      std::fill(out + j0, out + j1, 0.0);
      for (int i = 0; i < m; ++i) {
        const KT* Ki = K + static_cast<int64_t>(i) * n;
        const double ui = u[i];
        if (ui == 0.0) continue;
        for (int j = j0; j < j1; ++j) out[j] += Ki[j] * ui;
      }
    }
  }

  // Row groups of the sweep, fixed by the shape (not by the thread count): each group sums its
  // rows' K^T u share into its own vector and the groups are added in order, so the result is
  // the same for any number of threads. One group (a plain row loop) for small kernels.
  int groups() const {
    if (static_cast<int64_t>(m) * n < (int64_t(1) << 20)) return 1;
    return std::max(1, std::min(32, m / kSweepBlock));
  }

  // Row half of an iteration fused with K^T u (one pass over K): Ktu receives K^T u_new.
  SweepOut sweep() {
    double* Ktu = w.Ktu.data();
    const int G = groups();
    if (G == 1) {
      SweepOut o;
      std::fill(Ktu, Ktu + n, 0.0);
      if (f32)
        sweep_rows(0, m, n, K32(), w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(), Ktu,
                   o);
      else
        sweep_rows(0, m, n, K, w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(), Ktu, o);
      return o;
    }
    w.part.resize(static_cast<size_t>(G) * n);
    gout.assign(G, SweepOut());
    // dynamic over groups: a thread that the OS pauses delays only its current group
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, 1)
    for (int q = 0; q < G; ++q) {
      double* acc = w.part.data() + static_cast<int64_t>(q) * n;
      std::fill(acc, acc + n, 0.0);
      const int i0 = static_cast<int>(static_cast<int64_t>(m) * q / G);
      const int i1 = static_cast<int>(static_cast<int64_t>(m) * (q + 1) / G);
      if (f32)
        sweep_rows(i0, i1, n, K32(), w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(), acc,
                   gout[q]);
      else
        sweep_rows(i0, i1, n, K, w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(), acc,
                   gout[q]);
    }
    return reduce_groups(G);
  }

  // The groups' sweep results added in group order; K^T u from their partial sums (G > 1;
  // with one group the sweep wrote K^T u itself).
  SweepOut reduce_groups(int G) {
    if (G == 1) return gout[0];
    SweepOut o;
    for (int q = 0; q < G; ++q) {
      o.err += gout[q].err;
      o.du = std::max(o.du, gout[q].du);
      o.umin = std::min(o.umin, gout[q].umin);
      o.umax = std::max(o.umax, gout[q].umax);
      o.bad = o.bad || gout[q].bad;
    }
    double* Ktu = w.Ktu.data();
#pragma omp parallel for num_threads(nt) if (par()) schedule(static)
    for (int j = 0; j < n; ++j) {
      double s = 0.0;
      for (int q = 0; q < G; ++q) s += w.part[static_cast<int64_t>(q) * n + j];
      Ktu[j] = s;
    }
    return o;
  }

  // Runs iterations at the current eps until err <= tol or the budget is spent.
  // Returns the last err; adds to *iters. On return the plan is diag(u) K diag(v).
  //
  // Each iteration is one pass over K (rows updated, K^T u accumulated) and a column update.
  // Balanced: err is the L1 marginal error of the plan after the row update (rows exact, so
  // the column error). Unbalanced: eps * the largest change of
  // log u and log v.
  //
  // Balanced problems are accelerated by Anderson mixing (type II) of the column update
  // x <- G(x), x = log v, over the last kAaMem iterates (Walker & Ni 2011; the symmetric
  // scaling's loop does the same): the mixed x minimises the linearised residual over the span
  // of the stored differences. The history restarts when the error does not decrease, when the
  // variables change (absorption, log-domain updates), and when an extrapolation would move
  // some log v_j by more than kAaMaxStep (the plain step is then taken). At eps = 0.1 of the
  // cost range it needs 8 iterations where SOR needs 13. On slow, nearly degenerate problems
  // (small eps, few bins) it stalls, and SOR run on from its iterates converged up to 5x slower
  // than from the stage's start: a stage whose best error has not halved over the last
  // kAaWindow iterations restarts from its first potentials with SOR (the iterations spent
  // count). Kernels below kAaMinSize entries use SOR from the start.
  //
  // SOR: Sinkhorn is a two-block Gauss-Seidel in the dual, so with the asymptotic error
  // contraction r measured once the error ratio has settled (three consecutive ratios within
  // kSorStable and below kSorEarlyMax, from kSorMin iterations on; else over iterations
  // kSorFrom..kSorTo), omega = 2 / (1 + sqrt(1 - r)) (Young's formula; see Thibault et al.
  // 2017, Lehmann et al. 2021): u <- u^(1-omega) (a / K v)^omega. If the error grows tenfold
  // above its best, relaxation is switched off for the stage.
  double run(double tol, int64_t budget, int64_t* iters) {
    double err = std::numeric_limits<double>::infinity();
    double err_prev = std::numeric_limits<double>::infinity();
    double best = std::numeric_limits<double>::infinity();
    double bests[kAaWindow];  // the best error of the last kAaWindow iterations (a ring)
    // Anderson (until it stalls) on kernels of at least kAaMinSize entries, else SOR (the
    // mixing costs O((m + n) kAaMem) per iteration: as much as a pass over a small kernel)
    bool mixing = anderson && balanced && static_cast<int64_t>(m) * n >= kAaMinSize;
    std::vector<double> f0, g0;  // the stage's start, for the switch to SOR
    AndersonMix aa;
    if (mixing) {
      f0.assign(f, f + m);
      g0.assign(g, g + n);
      aa.reset(n, kAaMem);
    }
    int64_t it0 = 0;                                     // SOR's first iteration
    double err10 = 0.0, prev = 0.0, q1 = 0.0, q2 = 0.0;  // SOR: last error, two ratios before
    bool sor_done = !balanced;
    std::vector<double> x(mixing ? n : 0), gx(mixing ? n : 0);  // log v, log G(v)
    double* u = w.u.data();
    double* v = w.v.data();
    double* Ktu = w.Ktu.data();
    const double flush_uv = kFlushShare * tol / (static_cast<double>(m) * n * kFltMin);
    // lam rounds to 1: the iteration no longer contracts towards the unbalanced fixed point
    // (it would stop at once on a meaningless point); report no convergence
    if (!balanced && !(kappa < std::numeric_limits<double>::infinity())) return err;
    for (int64_t it = 0; it < budget; ++it) {
      SweepOut o = pending ? pend : sweep();  // pending: the sweep ran in build_kernel
      pending = false;
      // Potential changes of the exact log-domain updates below, in units of eps (the
      // unbalanced stopping quantity: a row or column whose kernel underflows even after its
      // exact update, e.g. a plan entry below 1e-308, keeps iterating in the log domain).
      double dg = 0.0;
      if (o.bad) {  // a row underflowed: exact log-domain rows, fresh kernel, K^T u
        absorb();
        std::copy(f, f + m, w.tmp.begin());
        exact_rows();
        o.du = 0.0;
        for (int i = 0; i < m; ++i)
          if (a[i] > 0) o.du = std::max(o.du, std::fabs(f[i] - w.tmp[i]) / eps);
        build_kernel();
        matvec_t(u, Ktu);
        o.err = 0.0;
        o.umin = o.umax = 1.0;
      }
      bool bad = false;
      for (int j = 0; j < n; ++j)
        if (b[j] > 0 && !(Ktu[j] > kTiny && Ktu[j] < 1e280)) bad = true;
      if (bad) {
        absorb();
        w.gold.assign(g, g + n);
        exact_cols();
        for (int j = 0; j < n; ++j)
          if (b[j] > 0) dg = std::max(dg, std::fabs(g[j] - w.gold[j]) / eps);
        build_kernel();
        matvec_t(u, Ktu);
      }
      ++*iters;
      double vmin = std::numeric_limits<double>::infinity(), vmax = 0.0;
      if (balanced) {
        // marginal error of diag(u) K diag(v) before the column update
        err = o.err;
        for (int j = 0; j < n; ++j) err += std::fabs(v[j] * Ktu[j] - b[j]);
        if (err <= tol) return err;
        if (mixing) {
          if (!(err < err_prev)) aa.restart();  // no progress: restart the mixing here
          err_prev = err;
          const double best_now = std::min(err, it > 0 ? bests[(it - 1) % kAaWindow] : err);
          const double best_then = it >= kAaWindow ? bests[it % kAaWindow] : 0.0;
          bests[it % kAaWindow] = best_now;
          if (it >= kAaWindow && best_now > kAaWindowGain * best_then) {
            // over to SOR, from the stage's start (SOR measured on the iterates the mixing
            // leaves converged far slower): these iterations are spent
            mixing = false;
            std::copy(f0.begin(), f0.end(), f);
            std::copy(g0.begin(), g0.end(), g);
            for (int i = 0; i < m; ++i) u[i] = a[i] > 0 ? 1.0 : 0.0;
            for (int j = 0; j < n; ++j) v[j] = b[j] > 0 ? 1.0 : 0.0;
            build_kernel(it + 1 < budget);
            it0 = it + 1;
            best = std::numeric_limits<double>::infinity();
            continue;
          }
        }
        if (!mixing && !sor_done) {
          const int64_t k = it - it0;
          const double q = k > 0 ? err / prev : 0.0;
          double r = -1.0;
          if (k >= kSorMin && q <= kSorEarlyMax &&
              std::max({q, q1, q2}) <= (1.0 + kSorStable) * std::min({q, q1, q2}))
            r = std::cbrt(q * q1 * q2);
          if (k == kSorFrom) err10 = err;
          if (k == kSorTo) r = std::pow(err / err10, 1.0 / (kSorTo - kSorFrom));
          if (r >= 0.0) {
            if (r < 1.0 && r > 0.0) rx.set(std::min(1.9, 2.0 / (1.0 + std::sqrt(1.0 - r))));
            sor_done = true;
          }
          q2 = q1;
          q1 = q;
          prev = err;
        }
        if (rx.w > 1.0 && err > 10.0 * best) rx.set(1.0);
        best = std::min(best, err);
      }
      double dv = 0.0;
      for (int j = 0; j < n; ++j) {
        if (!(b[j] > 0)) {
          v[j] = 0.0;
          continue;
        }
        if (bad && !(Ktu[j] > kTiny && Ktu[j] < 1e280)) {
          // still out of range after the exact column update: g_j already holds it (v_j = 1)
          vmin = std::min(vmin, v[j]);
          vmax = std::max(vmax, v[j]);
          continue;
        }
        const double r = b[j] / Ktu[j];
        double vn = lam == 1.0 ? r : w.wc[j] * std::pow(r, lam);
        if (rx.w != 1.0) vn = v[j] * rx(vn / v[j]);
        if (!balanced) dv = std::max(dv, std::fabs(std::log(vn / v[j])));
        if (mixing) {  // the plain step in log v (mixed below)
          x[j] = std::log(v[j]);
          gx[j] = std::log(vn);
        }
        v[j] = vn;
        vmin = std::min(vmin, vn);
        vmax = std::max(vmax, vn);
      }
      if (mixing) {
        if (bad || o.bad) {  // variables changed by the log-domain updates
          aa.restart();
        } else if (aa.mix(x.data(), gx.data(), kAaMaxStep)) {
          vmin = std::numeric_limits<double>::infinity();
          vmax = 0.0;
          for (int j = 0; j < n; ++j) {
            if (!(b[j] > 0)) continue;
            v[j] = std::exp(gx[j]);
            vmin = std::min(vmin, v[j]);
            vmax = std::max(vmax, v[j]);
          }
        }
      }
      if (!balanced) {
        // certified potential error (see unbalanced_bound)
        double pmax = 0.0;
        for (int i = 0; i < m; ++i)
          if (a[i] > 0) pmax = std::max(pmax, std::fabs(f[i]));
        for (int j = 0; j < n; ++j)
          if (b[j] > 0) pmax = std::max(pmax, std::fabs(g[j]));
        err = unbalanced_bound(eps * std::max({o.du, dv, dg}), kappa, pmax + kAbsorb * eps);
        if (err <= tol) return err;
      }
      if (o.umin < kLo || o.umax > kHi || vmin < kLo || vmax > kHi ||
          (flushed && o.umax * vmax > flush_uv)) {
        absorb();
        aa.restart();
        build_kernel(it + 1 < budget);
      }
    }
    return err;
  }

  // P = diag(u) K diag(v) in place; returns <P, C> and writes the L1 marginal error.
  // A float32 kernel is widened in place, in phases of rows [lo, hi) with lo = ceil(hi / 2)
  // from hi = m down: the float64 plan rows of a phase cover float32 rows [2 lo, 2 hi), all
  // read in earlier phases, and each row is copied out before it is overwritten. Row sums and
  // costs are kept per row; the column sums are accumulated per row group of the sweep (fixed
  // by the shape: each group's rows in a fixed order) while the rows are written, and the
  // groups added in order, so nothing depends on the thread count.
  double finish(double* merr) {
    const int T = par() ? nt : 1;
    const int G = groups();
    w.part.assign(static_cast<size_t>(G) * n, 0.0);  // column sums per row group
    if (f32) w.row32.resize(static_cast<size_t>(T) * n);
    std::vector<double> rcost(m, 0.0), rsum(m, 0.0), csum(n, 0.0);
    const double* v = w.v.data();
#pragma omp parallel num_threads(T) if (T > 1)
    {
      const int t = thread_id();
      float* buf = f32 ? w.row32.data() + static_cast<int64_t>(t) * n : nullptr;
      for (int hi = m; hi > 0;) {
        const int lo = !f32 ? 0 : (hi == 1 ? 0 : (hi + 1) / 2);
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < G; ++q) {
          double* cs = w.part.data() + static_cast<int64_t>(q) * n;
          const int g0 = std::max(lo, static_cast<int>(static_cast<int64_t>(m) * q / G));
          const int g1 = std::min(hi, static_cast<int>(static_cast<int64_t>(m) * (q + 1) / G));
          int i = g0;
          // four rows at a time; float64 row i covers float32 rows 2i and 2i + 1 >= hi (read
          // in earlier phases), so only row 0 overwrites its own float32 row (copied first)
          for (; i + 4 <= g1 && (!f32 || i > 0); i += 4) {
            const int64_t off = static_cast<int64_t>(i) * n;
            if (f32)
              plan_rows4(n, K32() + off, w.u.data() + i, v, C + off, K + off, cs, &rsum[i],
                         &rcost[i]);
            else
              plan_rows4(n, K + off, w.u.data() + i, v, C + off, K + off, cs, &rsum[i], &rcost[i]);
          }
          for (; i < g1; ++i) {
            double* Pi = K + static_cast<int64_t>(i) * n;
            const double* Ci = C + static_cast<int64_t>(i) * n;
            if (f32) {
              std::memcpy(buf, K32() + static_cast<int64_t>(i) * n, sizeof(float) * n);
              plan_row(n, buf, w.u[i], v, Ci, Pi, cs, &rsum[i], &rcost[i]);
            } else {
              plan_row(n, Pi, w.u[i], v, Ci, Pi, cs, &rsum[i], &rcost[i]);
            }
          }
        }
        hi = lo;
      }
#pragma omp for schedule(static)
      for (int j = 0; j < n; ++j) {
        double s = 0.0;
        for (int q = 0; q < G; ++q) s += w.part[static_cast<int64_t>(q) * n + j];
        csum[j] = s;
      }
    }
    f32 = false;
    double cost = 0.0, err = 0.0;
    for (int i = 0; i < m; ++i) {
      cost += rcost[i];
      err += std::fabs(rsum[i] - a[i]);
    }
    for (int j = 0; j < n; ++j) err += std::fabs(csum[j] - b[j]);
    *merr = err;
    return cost;
  }
  template <class T>
  static void plan_rows4(int n, const T* K4, const double* u4, const double* v, const double* C4,
                         double* P4, double* cs, double* rs_out, double* c_out) {
    const SimdIsa isa = simd_isa();
    GEOML_SIMD_CALL(isa, plan_row4<T>, n, K4, int64_t(n), u4, v, C4, P4, cs, rs_out, c_out);
  }
  template <class T>
  static void plan_row(int n, const T* Ki, double ui, const double* v, const double* Ci, double* Pi,
                       double* cs, double* rs_out, double* c_out) {
    const SimdIsa isa = simd_isa();
    GEOML_SIMD_CALL(isa, plan_row<T>, n, Ki, ui, v, Ci, Pi, cs, rs_out, c_out);
  }
};

}  // namespace

namespace ot_detail {

double lse_max(int n, const double* h, const double* c) {
  const SimdIsa isa = simd_isa();
  return GEOML_SIMD_CALL(isa, lse_max, n, h, c);
}

double lse_sum(int n, const double* h, const double* c, double mx, double ie, double* wsum) {
  const SimdIsa isa = simd_isa();
  return GEOML_SIMD_CALL(isa, lse_sum, n, h, c, mx, ie, wsum);
}

double dot_row(int n, const double* k, const double* v) {
  return row_dot<double>(n, k, v);
}
double dot_row(int n, const float* k, const double* v) {
  return row_dot<float>(n, k, v);
}
void dot_rows4(int n, const double* k, int64_t ld, const double* v, double* s) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_dot4<double>, n, k, ld, v, s);
}
void dot_rows4(int n, const float* k, int64_t ld, const double* v, double* s) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_dot4<float>, n, k, ld, v, s);
}
void axpy_rows4(int n, const double* u, const double* k, int64_t ld, double* acc) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_axpy4<double>, n, u, k, ld, acc);
}
void axpy_rows4(int n, const double* u, const float* k, int64_t ld, double* acc) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, row_axpy4<float>, n, u, k, ld, acc);
}
void axpy_row(int n, double u, const double* k, double* acc) {
  row_axpy<double>(n, u, k, acc);
}
void axpy_row(int n, double u, const float* k, double* acc) {
  row_axpy<float>(n, u, k, acc);
}
void exp_row(int n, double fi, const double* gc, const double* Ci, double ie, double* Ki) {
  kernel_row(n, fi, gc, Ci, ie, Ki);
}
void exp_row32(int n, double fi, const double* gc, const double* Ci, double ie, float* Ki) {
  kernel_row32(n, fi, gc, Ci, ie, Ki);
}

}  // namespace ot_detail

SinkhornInfo sinkhorn_dense(int m, int n, const double* a, const double* b, const double* C,
                            const SinkhornParams& p, double* f, double* g, double* P,
                            SinkhornWork& w, CostScan* scan) {
  SinkhornInfo info;
  if (m <= 0 || n <= 0) return info;
  w.u.assign(m, 1.0);
  w.v.assign(n, 1.0);
  w.Ktu.resize(n);
  w.ra.resize(m);
  w.rb.resize(n);
  w.wr.resize(m);
  w.wc.resize(n);
  w.tmp.resize(std::max(m, n));
  w.gc.resize(n);
  for (int i = 0; i < m; ++i)
    if (!(a[i] > 0)) w.u[i] = 0.0;
  for (int j = 0; j < n; ++j)
    if (!(b[j] > 0)) w.v[j] = 0.0;
  DenseSinkhorn S(m, n, a, b, C, f, g, P, w, std::max(1, p.n_threads));
  S.balanced = !(p.rho > 0);
  S.anderson = p.anderson;
  double mass = 0.0;
  for (int i = 0; i < m; ++i) mass += a[i];
  int64_t iters = 0;
  double err = 0.0;
  // annealing schedule eps_start, eps_start q, ... (while > eps), then eps
  double e = !scan && p.eps_start > p.eps ? p.eps_start : p.eps;
  bool ran_last = false;  // the budget may run out in an intermediate stage: not converged
  if (scan) S.rows.assign(m, ot_detail::Range());
  for (;;) {
    const bool last = !(e > p.eps);
    if (last) e = p.eps;
    S.absorb();
    S.set_eps(e, p.rho);
    const int64_t budget = p.max_iter - iters;
    S.build_kernel(budget > 0);
    if (!S.rows.empty()) {  // the first build scanned C (rows merged in order)
      ot_detail::Range r;
      for (const ot_detail::Range& q : S.rows) {
        r.lo = std::min(r.lo, q.lo);
        r.hi = std::max(r.hi, q.hi);
        r.z += q.z;
      }
      S.rows.clear();
      scan->lo = r.lo;
      scan->hi = r.hi;
      scan->finite = r.z == 0.0 && std::isfinite(r.hi - r.lo);
      if (!scan->finite) return info;
      const double range = r.hi - r.lo;
      if (p.eps < p.start_ratio * range) {  // annealing after all: start again from range / 2
        e = range / 2;
        S.pending = false;
        for (int i = 0; i < m; ++i) w.u[i] = a[i] > 0 ? 1.0 : 0.0;
        continue;
      }
    }
    const double tol = last ? p.tol : std::max(p.tol, p.stage_tol * (S.balanced ? mass : e));
    if (budget <= 0) break;
    err = S.run(tol, budget, &iters);
    ran_last = last;
    if (last) break;
    e *= p.eps_factor;
  }
  info.n_iter = iters;
  info.err = err;
  info.cost = S.finish(&info.marginal_error);
  // balanced: the returned plan itself must meet tol (the in-loop error can miss a column
  // rebuilt in the log domain, e.g. a mass of 1e-304)
  info.converged = ran_last && err <= p.tol && (!S.balanced || info.marginal_error <= p.tol);
  S.absorb();
  return info;
}

void sinkhorn_batched(int64_t B, const double* a, const int64_t* a_off, const double* b,
                      const int64_t* b_off, const double* C, const int64_t* c_off,
                      const SinkhornParams& p, int n_jobs, double* cost, double* err,
                      int64_t* n_iter, unsigned char* converged, double* plans) {
  const int nt = resolve_threads(n_jobs);
  SinkhornParams q = p;
  q.n_threads = 1;
  OmpErrors errors;  // the per-thread buffers grow per problem (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    SinkhornWork w;
    std::vector<double> f, g, P;
#pragma omp for schedule(dynamic, 16)
    for (int64_t k = 0; k < B; ++k)
      errors.run([&] {
        const int m = static_cast<int>(a_off[k + 1] - a_off[k]);
        const int n = static_cast<int>(b_off[k + 1] - b_off[k]);
        f.assign(m, 0.0);
        g.assign(n, 0.0);
        double* Pk = plans ? plans + c_off[k] : (P.resize(static_cast<size_t>(m) * n), P.data());
        const SinkhornInfo info = sinkhorn_dense(m, n, a + a_off[k], b + b_off[k], C + c_off[k], q,
                                                 f.data(), g.data(), Pk, w);
        cost[k] = info.cost;
        err[k] = info.err;
        n_iter[k] = info.n_iter;
        converged[k] = info.converged;
      });
  }
  errors.rethrow();
}

}  // namespace geoml
