// Private to cpp/ot/sinkhorn*.cpp: the scalar exponential and the log-sum-exp row kernels
// shared by the dense (sinkhorn.cpp) and point-cloud (sinkhorn_points.cpp) solvers.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

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
  int64_t tb, mb;
  std::memcpy(&tb, &t, 8);
  std::memcpy(&mb, &magic, 8);
  const int64_t bits = (tb - mb + 1023) << 52;
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
