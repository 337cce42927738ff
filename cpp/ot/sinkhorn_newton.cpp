// Sinkhorn-Newton-Sparse (Tang et al., ICLR 2024) on dense costs: sinkhorn_newton_dense (see
// ot.hpp). Sinkhorn warm-up (sinkhorn_dense), then Newton steps on the dual with a Hessian
// sparsified to the largest plan entries (selected without branches in the pass that computes
// the plan's row and column sums, stored as a float32 CSR), solved by Jacobi-preconditioned
// conjugate gradients on its Schur complement (one fused pass over the CSR per product,
// inexact-Newton forcing terms that stop at what the step to tol needs), and a backtracking
// line search.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"

#include "ot/ot.hpp"
#include "ot/sinkhorn_internal.hpp"

namespace geoml {

namespace {

using ot_detail::axpy_row;
using ot_detail::dot_row;
using ot_detail::exp_row;
using ot_detail::exp_row32;

// |log scaling| above which the scalings are absorbed into the potentials and the kernel
// rebuilt. A float32 kernel stores exponents below kZLo as 0: such an entry stands for at most
// exp(kZLo + 2 kAbsorb) ~ 4e-21 of plan mass, and the last steps always run on a float64 kernel.
constexpr double kAbsorb = 20.0;
constexpr double kZLo = -87.0, kZHi = 88.0;
constexpr int kMaxHalvings = 40;
// float64 kernel entries below this are stored as 0: with scalings within e^20 they stand for
// less than 1e-182 of plan mass, and products with them would be subnormal
constexpr double kTinyK = 1e-200;
// smallest relative threshold the adaptive sparsification goes down to (unless 0 is asked)
constexpr double kMinSparsity = 1e-14;  // line search: step 2^-40 at the least

struct Newton {
  int m, n, nt;
  const double *a, *b, *C;
  double eps, sparsity;
  double* f;
  double* g;
  double* K;  // kernel storage (float32 in the first half when f32), then the plan
  bool f32 = false;
  int G;   // fixed row groups (by shape): sums do not depend on the thread count
  int Gc;  // fixed row groups of the CG products (min(G, 16))
  int64_t passes = 0;
  // scalings exp(al), exp(be) of the kernel built from f, g; row / column sums of the plan
  std::vector<double> al, be, u, v, r, c;
  std::vector<double> al2, be2, u2, v2, r2, c2;  // line-search trial
  std::vector<double> part;                      // G x n partial column sums
  // sparsified plan: per group entries (column, value) in row order, per row counts
  std::vector<std::vector<int>> gidx, gidx2;
  std::vector<std::vector<double>> gval, gval2;
  std::vector<int64_t> cnt, cnt2;
  // CSR / CSC of the sparsified plan of the current point
  std::vector<int64_t> rp;
  std::vector<int> ci;
  std::vector<float> rv;  // values times sc, in float32 (the CG products are memory-bound)
  double sc = 1.0;
  std::vector<double> cgacc;  // Gc x n partial column sums of the CG products

  float* K32() const { return reinterpret_cast<float*>(K); }
  bool par() const { return nt > 1 && static_cast<int64_t>(m) * n >= (int64_t(1) << 18); }
  int g_lo(int q) const { return static_cast<int>(static_cast<int64_t>(m) * q / G); }
  // the CG products' row groups: fewer (their partial column sums are added per product)
  int c_lo(int q) const { return static_cast<int>(static_cast<int64_t>(m) * q / Gc); }

  Newton(int m_, int n_, const double* a_, const double* b_, const double* C_, double eps_,
         double sp_, double* f_, double* g_, double* K_, int nt_)
      : m(m_), n(n_), nt(nt_), a(a_), b(b_), C(C_), eps(eps_), sparsity(sp_), f(f_), g(g_), K(K_) {
    G = m >= 256 ? std::min(64, m / 32) : 1;
    Gc = std::min(G, 16);
    for (auto* x : {&al, &u, &r, &al2, &u2, &r2}) x->assign(m, 0.0);
    for (auto* x : {&be, &v, &c, &be2, &v2, &c2}) x->assign(n, 0.0);
    part.assign(static_cast<size_t>(G) * n, 0.0);
    gidx.resize(G);
    gval.resize(G);
    gidx2.resize(G);
    gval2.resize(G);
    cnt.assign(m, 0);
    cnt2.assign(m, 0);
  }

  double big() const {
    double x = 0.0;
    for (int i = 0; i < m; ++i) x = std::max(x, std::fabs(al[i]));
    for (int j = 0; j < n; ++j) x = std::max(x, std::fabs(be[j]));
    return x;
  }

  // f += eps al, g += eps be on bins of positive mass; al = be = 0, u = v = 1 there.
  void absorb() {
    for (int i = 0; i < m; ++i) {
      if (a[i] > 0) f[i] += eps * al[i];
      al[i] = 0.0;
      u[i] = a[i] > 0 ? 1.0 : 0.0;
    }
    for (int j = 0; j < n; ++j) {
      if (b[j] > 0) g[j] += eps * be[j];
      be[j] = 0.0;
      v[j] = b[j] > 0 ? 1.0 : 0.0;
    }
  }

  // K_ij = exp((f_i + g_j - C_ij) / eps), in float32 when want32 and no exponent exceeds kZHi
  // (exponents below kZLo stored as 0). Returns whether float32 was used.
  bool build(bool want32) {
    ++passes;
    const double ie = 1.0 / eps;
    std::vector<double> gz(n);
    for (int j = 0; j < n; ++j) gz[j] = b[j] > 0 ? g[j] : -std::numeric_limits<double>::infinity();
    f32 = false;
    if (want32) {
      // exponents above kZHi overflow the float kernel (fall back to float64); below kZLo
      // (subnormal floats, slow in the passes) stored as 0
      const float lo = static_cast<float>(std::exp(kZLo));
      const float hi = static_cast<float>(std::exp(kZHi));
      int ok = 1;
#pragma omp parallel for num_threads(nt) if (par()) schedule(static) reduction(min : ok)
      for (int i = 0; i < m; ++i) {
        float* Ki = K32() + static_cast<int64_t>(i) * n;
        if (!(a[i] > 0)) {
          std::fill(Ki, Ki + n, 0.0f);
          continue;
        }
        exp_row32(n, f[i], gz.data(), C + static_cast<int64_t>(i) * n, ie, Ki);
        int over = 0;
        for (int j = 0; j < n; ++j) {
          const float k = Ki[j];
          over |= k >= hi ? 1 : 0;
          Ki[j] = k < lo ? 0.0f : k;
        }
        if (over) ok = 0;
      }
      if (ok) return f32 = true;
    }
#pragma omp parallel for num_threads(nt) if (par()) schedule(static)
    for (int i = 0; i < m; ++i) {
      double* Ki = K + static_cast<int64_t>(i) * n;
      if (!(a[i] > 0)) {
        std::fill(Ki, Ki + n, 0.0);
        continue;
      }
      exp_row(n, f[i], gz.data(), C + static_cast<int64_t>(i) * n, ie, Ki);
      for (int j = 0; j < n; ++j)  // no subnormal products in the passes (they are slow)
        if (Ki[j] < kTinyK) Ki[j] = 0.0;
    }
    return false;
  }

  // One pass over K at scalings (uu, vv): rr = row sums, cc = column sums of the plan
  // diag(uu) K diag(vv), and the entries P_ij >= sparsity * rr_i (per group, row order).
  template <class KT>
  void eval_impl(const KT* Kp, const std::vector<double>& uu, const std::vector<double>& vv,
                 std::vector<double>& rr, std::vector<double>& cc,
                 std::vector<std::vector<int>>& gi, std::vector<std::vector<double>>& gv,
                 std::vector<int64_t>& ct) {
    const double* vp = vv.data();
    OmpErrors errors;  // the scratch rows and each group's kept entries (std::bad_alloc)
#pragma omp parallel num_threads(nt) if (par())
    {
      std::vector<int> sidx;
      std::vector<double> sval;
      const bool ok = errors.run([&] {
        sidx.resize(n);
        sval.resize(n);
      });
#pragma omp for schedule(dynamic, 1)
      for (int q = 0; q < G; ++q) {
        if (!ok) continue;
        double* acc = part.data() + static_cast<int64_t>(q) * n;
        std::fill(acc, acc + n, 0.0);
        gi[q].clear();
        gv[q].clear();
        for (int i = g_lo(q); i < g_lo(q + 1); ++i) {
          const double ui = uu[i];
          ct[i] = 0;
          if (!(ui > 0)) {
            rr[i] = 0.0;
            continue;
          }
          const KT* Ki = Kp + static_cast<int64_t>(i) * n;
          const double s = dot_row(n, Ki, vp);
          rr[i] = ui * s;
          axpy_row(n, ui, Ki, acc);
          // entries K_ij v_j >= sparsity * s (and > 0), compacted without branches
          const double thr = std::max(sparsity * s, std::numeric_limits<double>::min());
          int k = 0;
          int* si = sidx.data();
          double* sv = sval.data();
          for (int j = 0; j < n; ++j) {
            const double kv = static_cast<double>(Ki[j]) * vp[j];
            si[k] = j;
            sv[k] = ui * kv;
            k += kv >= thr ? 1 : 0;
          }
          const bool kept = errors.run([&] {
            gi[q].insert(gi[q].end(), si, si + k);
            gv[q].insert(gv[q].end(), sv, sv + k);
          });
          if (!kept) break;
          ct[i] = k;
        }
      }
    }
    errors.rethrow();
#pragma omp parallel for num_threads(nt) if (par()) schedule(static)
    for (int j = 0; j < n; ++j) {
      double s = 0.0;
      for (int q = 0; q < G; ++q) s += part[static_cast<int64_t>(q) * n + j];
      cc[j] = vv[j] * s;
    }
  }
  void eval(const std::vector<double>& uu, const std::vector<double>& vv, std::vector<double>& rr,
            std::vector<double>& cc, std::vector<std::vector<int>>& gi,
            std::vector<std::vector<double>>& gv, std::vector<int64_t>& ct) {
    ++passes;
    if (f32)
      eval_impl(K32(), uu, vv, rr, cc, gi, gv, ct);
    else
      eval_impl(static_cast<const double*>(K), uu, vv, rr, cc, gi, gv, ct);
  }

  // dual objective (over eps, up to a constant; maximised): a.al + b.be - sum P
  double phi(const std::vector<double>& x, const std::vector<double>& y,
             const std::vector<double>& rr) const {
    double s = 0.0;
    for (int i = 0; i < m; ++i)
      if (a[i] > 0) s += a[i] * x[i] - rr[i];
    for (int j = 0; j < n; ++j)
      if (b[j] > 0) s += b[j] * y[j];
    return s;
  }
  double err_of(const std::vector<double>& rr, const std::vector<double>& cc) const {
    double e = 0.0;
    for (int i = 0; i < m; ++i) e += std::fabs(rr[i] - a[i]);
    for (int j = 0; j < n; ++j) e += std::fabs(cc[j] - b[j]);
    return e;
  }

  // CSR of the sparsified plan of the current point.
  void assemble() {
    rp.assign(m + 1, 0);
    for (int i = 0; i < m; ++i) rp[i + 1] = rp[i] + cnt[i];
    const int64_t nnz = rp[m];
    ci.resize(nnz);
    rv.resize(nnz);
    // values stored as float32 scaled to a largest value of 1 (no float overflow; entries
    // below ~1e-38 of the largest become 0, i.e. are sparsified away)
    double vmax = 0.0;
    for (int q = 0; q < G; ++q)
      for (double x : gval[q]) vmax = std::max(vmax, x);
    sc = vmax > 0 ? 1.0 / vmax : 1.0;
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, 1)
    for (int q = 0; q < G; ++q) {
      const int64_t o = rp[g_lo(q)];
      std::copy(gidx[q].begin(), gidx[q].end(), ci.begin() + o);
      const double scq = sc;
      std::transform(gval[q].begin(), gval[q].end(), rv.begin() + o,
                     [scq](double x) { return static_cast<float>(x * scq); });
    }
  }

  // Newton direction (p, q): [diag r, Ps; Ps^T, diag c] (p; q) = (a - r; b - c), by PCG on
  // the Schur complement S = diag c - Ps^T diag(1/r) Ps for q (Jacobi preconditioner), to the
  // relative residual eta. S x is one pass over the CSR of Ps: each row's (Ps x)_i / r_i, then
  // its scatter into Ps^T, in G fixed row groups (partial sums added in group order, so the
  // result does not depend on the thread count). Returns the CG iterations.
  int64_t direction(double eta, int64_t max_cg, std::vector<double>& p, std::vector<double>& q) {
    std::vector<double> ir(m, 0.0), ga(m, 0.0), y(m), Mi(n, 0.0);
    for (int i = 0; i < m; ++i)
      if (a[i] > 0 && r[i] > 0) {
        ir[i] = 1.0 / r[i];
        ga[i] = a[i] - r[i];
      }
    cgacc.resize(static_cast<size_t>(Gc) * n);
    // Ps = rv / sc: the Schur products use the row weights (1 / r_i) / sc^2
    std::vector<double> w2(m), irs(m);
    for (int i = 0; i < m; ++i) {
      irs[i] = ir[i] / sc;
      w2[i] = irs[i] / sc;
    }
    // out = Ps^T (w * (Ps x)) when sq is false; the diagonal sum_i Ps_ij^2 w_i when sq is true
    auto schur = [&](const double* x, const double* w, bool sq, double* out) {
#pragma omp parallel num_threads(nt) if (par())
      {
#pragma omp for schedule(dynamic, 1)
        for (int qg = 0; qg < Gc; ++qg) {
          double* acc = cgacc.data() + static_cast<int64_t>(qg) * n;
          std::fill(acc, acc + n, 0.0);
          for (int i = c_lo(qg); i < c_lo(qg + 1); ++i) {
            const int64_t k0 = rp[i], k1 = rp[i + 1];
            if (sq) {
              for (int64_t k = k0; k < k1; ++k) {
                const double rk = rv[k];
                acc[ci[k]] += rk * rk * w[i];
              }
              continue;
            }
            double s = 0.0;
            for (int64_t k = k0; k < k1; ++k) s += rv[k] * x[ci[k]];
            s *= w[i];
            for (int64_t k = k0; k < k1; ++k) acc[ci[k]] += rv[k] * s;
          }
        }
#pragma omp for schedule(static)
        for (int j = 0; j < n; ++j) {
          double t = 0.0;
          for (int qg = 0; qg < Gc; ++qg) t += cgacc[static_cast<int64_t>(qg) * n + j];
          out[j] = t;
        }
      }
    };
    auto rows = [&](const std::vector<double>& x, std::vector<double>& out) {  // ir * (Ps x)
#pragma omp parallel for num_threads(nt) if (par()) schedule(static)
      for (int i = 0; i < m; ++i) {
        double s = 0.0;
        for (int64_t k = rp[i]; k < rp[i + 1]; ++k) s += rv[k] * x[ci[k]];
        out[i] = irs[i] * s;
      }
    };
    // rhs = gb - Ps^T (ga / r)
    std::vector<double> res(n), z(n), d(n), Sd(n), t(m);
    for (int i = 0; i < m; ++i) t[i] = ga[i] * irs[i];  // (rv t = Ps^T (ga / r))
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, 1)
    for (int qg = 0; qg < Gc; ++qg) {
      double* acc = cgacc.data() + static_cast<int64_t>(qg) * n;
      std::fill(acc, acc + n, 0.0);
      for (int i = c_lo(qg); i < c_lo(qg + 1); ++i)
        for (int64_t k = rp[i]; k < rp[i + 1]; ++k) acc[ci[k]] += rv[k] * t[i];
    }
    for (int j = 0; j < n; ++j) {
      double s = 0.0;
      for (int qg = 0; qg < Gc; ++qg) s += cgacc[static_cast<int64_t>(qg) * n + j];
      res[j] = b[j] > 0 ? (b[j] - c[j]) - s : 0.0;
    }
    schur(nullptr, w2.data(), true, Sd.data());
    for (int j = 0; j < n; ++j) {
      const double dj = c[j] - Sd[j];
      Mi[j] = (b[j] > 0 && dj > 0) ? 1.0 / dj : (b[j] > 0 && c[j] > 0 ? 1.0 / c[j] : 0.0);
    }
    q.assign(n, 0.0);
    double r0 = 0.0;
    for (int j = 0; j < n; ++j) r0 += res[j] * res[j];
    r0 = std::sqrt(r0);
    int64_t it = 0;
    if (r0 > 0) {
      double rz = 0.0;
      for (int j = 0; j < n; ++j) {
        z[j] = Mi[j] * res[j];
        d[j] = z[j];
        rz += res[j] * z[j];
      }
      while (it < max_cg) {
        schur(d.data(), w2.data(), false, Sd.data());
        double dSd = 0.0;
        for (int j = 0; j < n; ++j) {
          Sd[j] = c[j] * d[j] - Sd[j];
          dSd += d[j] * Sd[j];
        }
        ++it;
        if (!(dSd > 0)) break;
        const double al_ = rz / dSd;
        double rn = 0.0;
        for (int j = 0; j < n; ++j) {
          q[j] += al_ * d[j];
          res[j] -= al_ * Sd[j];
          rn += res[j] * res[j];
        }
        if (std::sqrt(rn) <= eta * r0) break;
        double rz2 = 0.0;
        for (int j = 0; j < n; ++j) {
          z[j] = Mi[j] * res[j];
          rz2 += res[j] * z[j];
        }
        const double beta = rz2 / rz;
        rz = rz2;
        for (int j = 0; j < n; ++j) d[j] = z[j] + beta * d[j];
      }
    }
    // p = (ga - Ps q) / r
    rows(q, y);
    p.assign(m, 0.0);
    for (int i = 0; i < m; ++i) p[i] = ga[i] * ir[i] - y[i];
    return it;
  }

  // Exact scaling of the rows (or columns, whichever marginal is further off) of the current
  // point to their masses; false when no scaling changes.
  bool sinkhorn_half_step() {
    double er = 0.0, ec = 0.0;
    for (int i = 0; i < m; ++i) er += std::fabs(r[i] - a[i]);
    for (int j = 0; j < n; ++j) ec += std::fabs(c[j] - b[j]);
    const bool rows = er >= ec;
    const int len = rows ? m : n;
    const double* w = rows ? a : b;
    std::vector<double>& s = rows ? r : c;
    std::vector<double>& lg = rows ? al : be;
    std::vector<double>& ex = rows ? u : v;
    bool moved = false;
    for (int i = 0; i < len; ++i) {
      if (!(w[i] > 0 && s[i] > 0)) continue;
      const double d = std::log(w[i] / s[i]);
      if (d == 0.0 || !std::isfinite(d)) continue;
      lg[i] += d;
      ex[i] = std::exp(lg[i]);
      moved = true;
    }
    return moved;
  }

  // Newton steps from the current kernel until err <= tol or max_iter steps in all; adds to
  // *steps, *cg. Returns the last error.
  double run(double tol, double mass, int64_t max_iter, int64_t* steps, int64_t* cg) {
    eval(u, v, r, c, gidx, gval, cnt);
    double F = phi(al, be, r);
    double err = err_of(r, c);
    std::vector<double> p, q;
    while (err > tol && *steps < max_iter) {
      assemble();
      const double err_prev = err;
      // forcing term: superlinear (sqrt of the relative error), but no more accurate than
      // the step needs to reach tol (a tenth of tol / err)
      const double eta = std::min(0.1, std::max(std::sqrt(err / mass), 0.1 * tol / err));
      *cg += direction(eta, std::max<int64_t>(1000, 4 * static_cast<int64_t>(n)), p, q);
      ++*steps;
      double slope = 0.0;
      for (int i = 0; i < m; ++i)
        if (a[i] > 0) slope += (a[i] - r[i]) * p[i];
      for (int j = 0; j < n; ++j)
        if (b[j] > 0) slope += (b[j] - c[j]) * q[j];
      if (!(slope > 0) || !std::isfinite(slope)) {  // not an ascent direction: Sinkhorn-like
        slope = 0.0;
        for (int i = 0; i < m; ++i) {
          p[i] = (a[i] > 0 && r[i] > 0) ? std::log(a[i] / r[i]) : 0.0;
          slope += (a[i] - r[i]) * p[i];
        }
        for (int j = 0; j < n; ++j) {
          q[j] = (b[j] > 0 && c[j] > 0) ? std::log(b[j] / c[j]) : 0.0;
          slope += (b[j] - c[j]) * q[j];
        }
      }
      double t = 1.0;
      bool ok = false;
      for (int h = 0; h <= kMaxHalvings; ++h, t *= 0.5) {
        for (int i = 0; i < m; ++i) {
          al2[i] = a[i] > 0 ? al[i] + t * p[i] : 0.0;
          u2[i] = a[i] > 0 ? std::exp(al2[i]) : 0.0;
        }
        for (int j = 0; j < n; ++j) {
          be2[j] = b[j] > 0 ? be[j] + t * q[j] : 0.0;
          v2[j] = b[j] > 0 ? std::exp(be2[j]) : 0.0;
        }
        eval(u2, v2, r2, c2, gidx2, gval2, cnt2);
        const double F2 = phi(al2, be2, r2);
        const double e2 = err_of(r2, c2);
        // Armijo; where the objective's change is below its rounding, a smaller marginal
        // error decides
        const double noise = 1e-12 * (std::fabs(F) + mass);
        if ((F2 >= F + 1e-4 * t * slope) ||
            (std::fabs(F2 - F) <= noise && e2 < err && std::isfinite(e2))) {
          ok = std::isfinite(F2) && std::isfinite(e2);
          if (ok) {
            F = F2;
            err = e2;
          }
          break;
        }
      }
      if (!ok) {
        if (sparsity > kMinSparsity) {
          sparsity = kMinSparsity;  // the sparsified direction failed: retry with (nearly) all
          eval(u, v, r, c, gidx, gval, cnt);
          continue;
        }
        // the (nearly) exact direction failed too (e.g. rows whose mass sits on one shared
        // column, the entries that would move it dropped): one exact Sinkhorn half-step on
        // the side with the larger error (block coordinate ascent, never lowers the dual),
        // then Newton again; stop when it moves nothing
        if (!sinkhorn_half_step()) break;
        eval(u, v, r, c, gidx, gval, cnt);
        F = phi(al, be, r);
        err = err_of(r, c);
        if (big() > kAbsorb) {
          absorb();
          build(f32);
          F = phi(al, be, r);
        }
        continue;
      }
      // a full step near the solution that contracts the error less than 2x: the dropped
      // entries matter (e.g. they carry the only coupling between blocks of the plan); keep
      // 100x smaller ones from now on (down to kMinSparsity)
      if (t == 1.0 && err <= 1e-4 * mass && err > 0.5 * err_prev && sparsity > kMinSparsity)
        sparsity = std::max(kMinSparsity, sparsity * 0.01);
      al.swap(al2);
      be.swap(be2);
      u.swap(u2);
      v.swap(v2);
      r.swap(r2);
      c.swap(c2);
      gidx.swap(gidx2);
      gval.swap(gval2);
      cnt.swap(cnt2);
      if (big() > kAbsorb) {  // the plan is unchanged: only the kernel is rebuilt
        absorb();
        build(f32);
        F = phi(al, be, r);
      }
    }
    return err;
  }

  // P_ij = u_i K_ij v_j (float64 kernel) in place; returns <P, C>, writes the L1 marginal error.
  double finish(double* merr) {
    ++passes;
    std::vector<double> rc(G, 0.0), rs(m, 0.0);
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, 1)
    for (int qg = 0; qg < G; ++qg) {
      double* acc = part.data() + static_cast<int64_t>(qg) * n;
      std::fill(acc, acc + n, 0.0);
      double cost = 0.0;
      for (int i = g_lo(qg); i < g_lo(qg + 1); ++i) {
        double* Pi = K + static_cast<int64_t>(i) * n;
        const double* Ci = C + static_cast<int64_t>(i) * n;
        const double ui = u[i];
        double s = 0.0;
        for (int j = 0; j < n; ++j) {
          const double pij = ui * Pi[j] * v[j];
          Pi[j] = pij;
          s += pij;
          acc[j] += pij;
          if (pij > 0) cost += pij * Ci[j];
        }
        rs[i] = s;
      }
      rc[qg] = cost;
    }
    double cost = 0.0, e = 0.0;
    for (int qg = 0; qg < G; ++qg) cost += rc[qg];
    for (int i = 0; i < m; ++i) e += std::fabs(rs[i] - a[i]);
    for (int j = 0; j < n; ++j) {
      double s = 0.0;
      for (int qg = 0; qg < G; ++qg) s += part[static_cast<int64_t>(qg) * n + j];
      e += std::fabs(s - b[j]);
    }
    *merr = e;
    return cost;
  }
};

}  // namespace

NewtonInfo sinkhorn_newton_dense(int m, int n, const double* a, const double* b, const double* C,
                                 const NewtonParams& p, double* f, double* g, double* P) {
  NewtonInfo info;
  if (m <= 0 || n <= 0) return info;
  const int nt = std::max(1, p.n_threads);
  double mass = 0.0;
  for (int i = 0; i < m; ++i) mass += a[i];
  // warm-up: plain (over-relaxed) Sinkhorn iterations at eps
  SinkhornParams sp;
  sp.eps = p.eps;
  sp.tol = p.tol;
  sp.max_iter = std::max<int64_t>(1, p.n_warmup);
  sp.eps_start = 0.0;
  sp.n_threads = nt;
  {
    SinkhornWork w;
    const SinkhornInfo si = sinkhorn_dense(m, n, a, b, C, sp, f, g, P, w);
    info.n_warmup = si.n_iter;
    info.n_passes = si.n_iter + 2;  // kernel build, iterations, plan
    if (si.converged) {
      info.converged = true;
      info.err = si.err;
      info.cost = si.cost;
      info.marginal_error = si.marginal_error;
      return info;
    }
  }
  Newton N(m, n, a, b, C, p.eps, p.sparsity, f, g, P, nt);
  N.absorb();
  // float32 kernel for the bulk of the steps on large problems, float64 for the last ones
  const bool want32 = static_cast<int64_t>(m) * n >= (int64_t(1) << 16);
  N.build(want32);
  info.used_float32 = N.f32;
  int64_t steps = 0, cg = 0;
  double err = N.run(p.tol, mass, p.max_iter, &steps, &cg);
  if (N.f32) {
    N.absorb();
    N.build(false);
    err = N.run(p.tol, mass, p.max_iter, &steps, &cg);
  }
  info.n_newton = steps;
  info.n_cg = cg;
  info.err = err;
  info.cost = N.finish(&info.marginal_error);
  info.n_passes += N.passes;
  info.converged = err <= p.tol && info.marginal_error <= p.tol;
  // potentials of the returned plan: P_ij = exp((f_i + g_j - C_ij) / eps)
  for (int i = 0; i < m; ++i)
    if (a[i] > 0) f[i] += p.eps * N.al[i];
  for (int j = 0; j < n; ++j)
    if (b[j] > 0) g[j] += p.eps * N.be[j];
  return info;
}

}  // namespace geoml
