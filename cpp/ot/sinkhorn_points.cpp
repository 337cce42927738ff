// Sinkhorn between point clouds with costs computed on the fly (sinkhorn_points), and the
// value_range scan (see ot.hpp). The per-ISA kernels are in points_kernel.inc.
#include <algorithm>
#include <cmath>
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

using ot_detail::exp_neg;
using ot_detail::lse_max;
using ot_detail::lse_sum;
using ot_detail::unbalanced_bound;
using ot_detail::unbalanced_kappa;

using ot_detail::Range;

#define GEOML_KERNEL_INC "ot/points_kernel.inc"
#include "common/simd_instantiate.inc"

void point_costs(int n, int d, const double* x, const double* Yt, int power, double* buf) {
  const SimdIsa isa = simd_isa();
  GEOML_SIMD_CALL(isa, point_costs, n, d, x, Yt, power, buf);
}

}  // namespace

namespace ot_detail {
Range range_of(int64_t n, const double* x) {
  const SimdIsa isa = simd_isa();
  return GEOML_SIMD_CALL(isa, range_of, n, x);
}
}  // namespace ot_detail

bool value_range(int64_t n, const double* x, int n_jobs, double* lo, double* hi) {
  const int nt = n >= (int64_t(1) << 18) ? resolve_threads(n_jobs) : 1;
  Range all;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int T = thread_count(), t = thread_id();
    const Range r = ot_detail::range_of(n * (t + 1) / T - n * t / T, x + n * t / T);
#pragma omp critical
    {
      all.lo = std::min(all.lo, r.lo);
      all.hi = std::max(all.hi, r.hi);
      all.z += r.z;
    }
  }
  *lo = all.lo;
  *hi = all.hi;
  return all.z == 0.0;
}

namespace {

// One log-sum-exp row of the point-cloud kernel: LSE over j of (h_j - c(x, y_j)) / eps,
// times eps. *wcost (optional) receives sum_j e_j c_j / sum_j e_j (the row's mean cost).
double points_lse(int n, int d, const double* x, const double* Yt, const double* h, int power,
                  double eps, double* buf, double* wcost) {
  point_costs(n, d, x, Yt, power, buf);
  const double mx = lse_max(n, h, buf);
  double w = 0.0;
  const double s = lse_sum(n, h, buf, mx, 1.0 / eps, wcost ? &w : nullptr);
  if (wcost) *wcost = w / s;
  return mx + eps * std::log(s);
}

// Half step: f_i = lam (eps log w_i - r_i - LSE_j(h_j - c_ij)) over rows of X (m x d)
// against Y (n x d) with column offsets h (n). Balanced: returns sum_i |row mass - w_i| of
// the current plan (before the update). Unbalanced: returns max |f_new - f_old|.
double points_half(int m, int n, int d, const double* X, const double* Yt, const double* w,
                   const double* h, const double* r, double* f, int power, double eps, double lam,
                   bool balanced, int nt) {
  double err = 0.0;
  // balanced: each row's |mass error| kept apart and added in row order after the loop, the
  // same bits for any thread count and schedule
  std::vector<double> row_err(balanced ? m : 0);
  OmpErrors errors;  // the per-thread cost row (std::bad_alloc)
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<double> buf;
    const bool ok = errors.run([&] { buf.resize(n); });
    double dmax = 0.0;
#pragma omp for schedule(dynamic, 8)
    for (int i = 0; i < m; ++i) {
      if (balanced) row_err[i] = 0.0;
      if (!ok || !(w[i] > 0)) continue;
      const double lse =
          points_lse(n, d, X + static_cast<int64_t>(i) * d, Yt, h, power, eps, buf.data(), nullptr);
      const double fn = lam * (eps * std::log(w[i]) - r[i] - lse);
      if (balanced) {
        // current row mass: exp((f_i + r_i + lse) / eps) = w_i exp((f_i - fn) / eps)
        const double z = (f[i] - fn) / eps;
        row_err[i] = std::fabs(w[i] * (z <= 0 ? exp_neg(z) : std::exp(z)) - w[i]);
      } else {
        dmax = std::max(dmax, std::fabs(fn - f[i]));
      }
      f[i] = fn;
    }
    if (!balanced) {
#pragma omp critical
      err = std::max(err, dmax);
    }
  }
  errors.rethrow();
  for (const double e : row_err) err += e;
  return err;
}

}  // namespace

SinkhornInfo sinkhorn_points(int m, int n, int d, const double* x, const double* y, const double* a,
                             const double* b, int power, const SinkhornParams& p, double* f,
                             double* g, double* cost) {
  SinkhornInfo info;
  const int nt = std::max(1, p.n_threads);
  const bool balanced = !(p.rho > 0);
  double mass = 0.0;
  for (int i = 0; i < m; ++i) mass += a[i];
  std::vector<double> ra(m, 0.0), rb(n, 0.0), h(std::max(m, n));
  std::vector<double> xt(static_cast<size_t>(m) * d), yt(static_cast<size_t>(n) * d);
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < d; ++k)
      xt[static_cast<size_t>(k) * m + i] = x[static_cast<size_t>(i) * d + k];
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < d; ++k)
      yt[static_cast<size_t>(k) * n + j] = y[static_cast<size_t>(j) * d + k];
  std::vector<double> sched;
  if (p.eps_start > p.eps)
    // finite start, at most 4096 stages: never an endless schedule (the Python layer refuses
    // an infinite cost range before it gets here)
    for (double e = p.eps_start; e > p.eps && std::isfinite(e) && sched.size() < 4096;
         e *= p.eps_factor)
      sched.push_back(e);
  sched.push_back(p.eps);
  int64_t iters = 0;
  double err = std::numeric_limits<double>::infinity();
  double eps = p.eps, lam = 1.0;
  bool ran_last = false;  // the budget may run out in an intermediate stage: not converged
  for (size_t s = 0; s < sched.size() && iters < p.max_iter; ++s) {
    eps = sched[s];
    ran_last = s + 1 == sched.size();
    lam = balanced ? 1.0 : p.rho / (p.rho + eps);
    const double kappa = balanced ? 1.0 : unbalanced_kappa(eps, p.rho);
    for (int i = 0; i < m; ++i) ra[i] = (!balanced && a[i] > 0) ? eps * std::log(a[i]) : 0.0;
    for (int j = 0; j < n; ++j) rb[j] = (!balanced && b[j] > 0) ? eps * std::log(b[j]) : 0.0;
    const bool last = s + 1 == sched.size();
    const double tol = last ? p.tol : std::max(p.tol, p.stage_tol * (balanced ? mass : eps));
    // lam rounds to 1: no contraction towards the unbalanced fixed point (see sinkhorn.cpp)
    if (!balanced && !(kappa < std::numeric_limits<double>::infinity())) {
      err = std::numeric_limits<double>::infinity();
      break;
    }
    for (; iters < p.max_iter; ++iters) {
      for (int i = 0; i < m; ++i) h[i] = f[i] + ra[i];
      double eg = points_half(n, m, d, y, xt.data(), b, h.data(), rb.data(), g, power, eps, lam,
                              balanced, nt);
      for (int j = 0; j < n; ++j) h[j] = g[j] + rb[j];
      double ef = points_half(m, n, d, x, yt.data(), a, h.data(), ra.data(), f, power, eps, lam,
                              balanced, nt);
      // balanced: after the g-step columns are exact, so ef is the plan's marginal error;
      // unbalanced: the certified potential error (see unbalanced_bound)
      if (balanced) {
        err = ef;
      } else {
        double pmax = 0.0;
        for (int i = 0; i < m; ++i)
          if (a[i] > 0) pmax = std::max(pmax, std::fabs(f[i]));
        for (int j = 0; j < n; ++j)
          if (b[j] > 0) pmax = std::max(pmax, std::fabs(g[j]));
        err = unbalanced_bound(std::max(ef, eg), kappa, pmax);
      }
      if (err <= tol) {
        ++iters;
        break;
      }
    }
  }
  info.n_iter = iters;
  info.err = err;
  info.converged = ran_last && err <= p.tol;
  // transport cost <P, C> with P_ij = exp((f_i + ra_i + g_j + rb_j - c_ij) / eps)
  // (each row's term kept apart and added in row order: the same bits for any thread count)
  for (int j = 0; j < n; ++j) h[j] = g[j] + rb[j];
  std::vector<double> row_cost(m, 0.0);
  OmpErrors errors;  // the per-thread cost row (std::bad_alloc)
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<double> buf;
    const bool ok = errors.run([&] { buf.resize(n); });
#pragma omp for schedule(dynamic, 8)
    for (int i = 0; i < m; ++i) {
      if (!ok || !(a[i] > 0)) continue;
      double wc = 0.0;
      const double lse = points_lse(n, d, x + static_cast<int64_t>(i) * d, yt.data(), h.data(),
                                    power, eps, buf.data(), &wc);
      const double z = (f[i] + ra[i] + lse) / eps;  // log of row mass
      row_cost[i] = (z <= 0 ? exp_neg(z) : std::exp(z)) * wc;
    }
  }
  errors.rethrow();
  double total = 0.0;
  for (const double c : row_cost) total += c;
  *cost = total;
  return info;
}

}  // namespace geoml
