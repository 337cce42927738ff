// Private to cpp/ot/sinkhorn*.cpp: the scalar exponential and the log-sum-exp row kernels
// shared by the dense (sinkhorn.cpp) and point-cloud (sinkhorn_points.cpp) solvers.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace geoml {
namespace ot_detail {

// exp(x) for x <= 0 (clamped below at -708, where it is ~0): Cody-Waite reduction
// x = k ln2 + r, |r| <= ln2/2, degree-12 Taylor polynomial, 2^k by exponent bits.
// Relative error ~2e-16. Branch-free, so loops over it vectorise.
inline double exp_neg(double x) {
  if (x == -std::numeric_limits<double>::infinity()) return 0.0;  // a forbidden (+inf) pair
  x = std::max(x, -708.0);
  const double magic = 6755399441055744.0;  // 1.5 * 2^52: round to nearest integer
  const double t = x * 1.4426950408889634 + magic;
  const double k = t - magic;
  const double r = (x - k * 0.6931471805599453) - k * 2.3190468138462996e-17;
  double q = 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  q = q * r + 1.0;
  // (unsigned: the same bits for every x above, and no undefined shift or overflow where x
  // is NaN, whose NaN result comes from q)
  uint64_t tb, mb;
  std::memcpy(&tb, &t, 8);
  std::memcpy(&mb, &magic, 8);
  const uint64_t bits = (tb - mb + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, 8);
  return q * scale;
}

// Unbalanced stopping rule. Each half step f = lam T(g) (T 1-Lipschitz in the sup norm,
// lam = rho / (rho + eps)) contracts by lam, so a full iteration by lam^2 and the potentials'
// distance to the fixed point is at most kappa times their last change, kappa = lam^2 /
// (1 - lam^2) = (rho / eps) (rho / (2 rho + eps)) (written so that it does not round or
// overflow early). Infinite when lam rounds to 1: the iteration then no longer contracts.
inline double unbalanced_kappa(double eps, double rho) {
  if (!(rho / (rho + eps) < 1.0)) return std::numeric_limits<double>::infinity();
  return (rho / eps) * (rho / (2.0 * rho + eps));
}

// The certified bound kappa * max(change, rounding allowance): a change at or below the
// resolution (2 ulp) of potentials of magnitude `scale` (a float64 fixed point that the
// contraction may no longer pull, e.g. a change of exactly 0) certifies nothing below kappa
// times that resolution.
inline double unbalanced_bound(double change, double kappa, double scale) {
  const double floor = 2.0 * std::numeric_limits<double>::epsilon() * scale;
  return kappa * (std::max(change, floor) + std::numeric_limits<double>::min());
}

// Solves the small SPD system A x = b (m x m, row-major, A overwritten) by Cholesky; false when
// A is not numerically positive definite.
inline bool small_spd_solve(int m, double* A, double* b) {
  for (int j = 0; j < m; ++j) {
    double d = A[j * m + j];
    for (int k = 0; k < j; ++k) d -= A[j * m + k] * A[j * m + k];
    if (!(d > 0.0)) return false;
    d = std::sqrt(d);
    A[j * m + j] = d;
    for (int i = j + 1; i < m; ++i) {
      double s = A[i * m + j];
      for (int k = 0; k < j; ++k) s -= A[i * m + k] * A[j * m + k];
      A[i * m + j] = s / d;
    }
  }
  for (int i = 0; i < m; ++i) {
    double s = b[i];
    for (int k = 0; k < i; ++k) s -= A[i * m + k] * b[k];
    b[i] = s / A[i * m + i];
  }
  for (int i = m - 1; i >= 0; --i) {
    double s = b[i];
    for (int k = i + 1; k < m; ++k) s -= A[k * m + i] * b[k];
    b[i] = s / A[i * m + i];
  }
  return true;
}

// Type-II Anderson mixing of a fixed-point iteration x <- G(x) in R^n over the last `mem`
// iterates: mix(x, gx) replaces gx = G(x) by gx - dG gamma, gamma = argmin |r - dR gamma|
// (r = gx - x; dR, dG: differences of consecutive residuals and images; normal equations,
// lightly regularised). Entries with x = gx = 0 on every call stay 0. Serial, fixed order:
// the same bits for any thread count.
struct AndersonMix {
  static constexpr int kMaxMem = 8;
  int n = 0, mem = 0, hist = 0, head = 0;
  bool have_prev = false;
  std::vector<double> dR, dG, rprev, gprev;
  void reset(int n_, int mem_) {
    n = n_;
    mem = std::min(mem_, kMaxMem);
    dR.assign(static_cast<size_t>(n) * mem, 0.0);
    dG.assign(static_cast<size_t>(n) * mem, 0.0);
    rprev.assign(n, 0.0);
    gprev.assign(n, 0.0);
    restart();
  }
  void restart() {
    hist = head = 0;
    have_prev = false;
  }
  // Records the step x -> gx and overwrites gx with the mixed iterate; false (gx kept) when
  // there is no history yet, the system is singular, or the mixing would move some entry by
  // more than max_step (then the history restarts).
  bool mix(const double* x, double* gx, double max_step) {
    if (have_prev) {
      double* cR = dR.data() + static_cast<size_t>(head) * n;
      double* cG = dG.data() + static_cast<size_t>(head) * n;
      for (int j = 0; j < n; ++j) {
        cR[j] = (gx[j] - x[j]) - rprev[j];
        cG[j] = gx[j] - gprev[j];
      }
      head = (head + 1) % mem;
      hist = std::min(hist + 1, mem);
    }
    for (int j = 0; j < n; ++j) {
      rprev[j] = gx[j] - x[j];
      gprev[j] = gx[j];
    }
    have_prev = true;
    if (hist == 0) return false;
    double A[kMaxMem * kMaxMem], c[kMaxMem];
    double tr = 0.0;
    for (int p = 0; p < hist; ++p) {
      const double* cp = dR.data() + static_cast<size_t>(p) * n;
      for (int q = 0; q <= p; ++q) {
        const double* cq = dR.data() + static_cast<size_t>(q) * n;
        double s = 0.0;
        for (int j = 0; j < n; ++j) s += cp[j] * cq[j];
        A[p * hist + q] = A[q * hist + p] = s;
      }
      double s = 0.0;
      for (int j = 0; j < n; ++j) s += cp[j] * rprev[j];
      c[p] = s;
      tr += A[p * hist + p];
    }
    for (int p = 0; p < hist; ++p) A[p * hist + p] += 1e-12 * tr + 1e-300;
    double step = 0.0;
    if (small_spd_solve(hist, A, c)) {
      for (int j = 0; j < n; ++j) {
        double dx = 0.0;
        for (int p = 0; p < hist; ++p) dx += dG[static_cast<size_t>(p) * n + j] * c[p];
        step = std::max(step, std::fabs(dx));
      }
    }
    if (!(step > 0.0 && step <= max_step)) {
      restart();
      return false;
    }
    for (int j = 0; j < n; ++j) {
      double dx = 0.0;
      for (int p = 0; p < hist; ++p) dx += dG[static_cast<size_t>(p) * n + j] * c[p];
      gx[j] -= dx;
    }
    return true;
  }
};

/// min, max and sum of x * 0 (NaN iff some value is not finite) over a range.
struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, z = 0.0;
};
Range range_of(int64_t n, const double* x);

/// max_j (h_j - c_j) over j < n (the AVX2 copy when simd_isa() allows it).
double lse_max(int n, const double* h, const double* c);

/// sum_j exp((h_j - c_j - mx) ie), and in *wsum (optional) sum_j of that times c_j.
double lse_sum(int n, const double* h, const double* c, double mx, double ie, double* wsum);

/// sum_j k_j v_j in float64 (float32 or float64 kernel row; the dense Sinkhorn sweep's kernel).
double dot_row(int n, const double* k, const double* v);
double dot_row(int n, const float* k, const double* v);

/// s[r] = k_r . v for the four rows k_r = k + r ld (r < 4), each with the bits of dot_row
/// (the eight-lane copy shares each load of v between the rows).
void dot_rows4(int n, const double* k, int64_t ld, const double* v, double* s);
void dot_rows4(int n, const float* k, int64_t ld, const double* v, double* s);

/// acc_j += u[r] k_rj for r = 0..3 in that order, k_r = k + r ld (the bits of four axpy_row
/// calls; every u[r] k_rj finite).
void axpy_rows4(int n, const double* u, const double* k, int64_t ld, double* acc);
void axpy_rows4(int n, const double* u, const float* k, int64_t ld, double* acc);

/// acc_j += u k_j for j < n (float32 or float64 kernel row; the fused K^T u of a sweep).
void axpy_row(int n, double u, const double* k, double* acc);
void axpy_row(int n, double u, const float* k, double* acc);

/// Ki[j] = exp((fi + gc_j - C_ij) ie) for j < n (the dense Sinkhorn kernel build).
void exp_row(int n, double fi, const double* gc, const double* Ci, double ie, double* Ki);

/// Ki[j] = float(exp((fi + gc_j - C_ij) ie)) for j < n, the exponential in float64 (the float32
/// kernel build). Exponents above 88 give float(exp(88)); below -87, subnormals or 0.
void exp_row32(int n, double fi, const double* gc, const double* Ci, double ie, float* Ki);

}  // namespace ot_detail
}  // namespace geoml
