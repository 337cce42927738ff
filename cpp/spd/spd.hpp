// Batched functions of small symmetric / SPD matrices: eigendecomposition, spectral matrix
// functions f(M A M^T), eigenvalues of congruent pairs and weighted sums of matrix functions.
//
// Every routine takes a batch of B row-major n x n matrices (T = float or double), computes in
// double (Householder tridiagonalisation + implicit QL on 32 matrices at once, one per SIMD
// lane, cpp/spd/eigh_kernel.inc, O(n^3) per matrix, ~260 n^2 doubles of scratch per thread) and
// writes one status code per matrix (SpdStatus); they never throw for bad matrix values, the
// caller turns the codes into errors. OpenMP runs over groups of 32 matrices fixed by their
// index; per-matrix results depend neither on the thread count nor on the other matrices of a
// group, and the weighted sum adds fixed chunks of the batch in a fixed order (same bits for
// any n_jobs).
#pragma once
#include <cstdint>

namespace geoml {

/// The scalar function applied to the eigenvalues.
enum class SpdFunc : int { Sqrt = 0, InvSqrt = 1, Log = 2, Exp = 3, Power = 4 };

/// Per-matrix outcome. A matrix is refused as NotPositiveDefinite when its smallest eigenvalue
/// is not above n * eps(T) * its largest (numerically singular or indefinite).
enum SpdStatus : int8_t {
  SpdOk = 0,
  SpdNotFinite = 1,     // NaN or infinity in the input
  SpdNotSymmetric = 2,  // max |a_ij - a_ji| > sym_tol * max |a_ij|
  SpdNotPositive = 3,   // not (numerically) positive definite, for functions that need it
  SpdNotConverged = 4,  // the QL iteration needed more than 60 steps for an eigenvalue
  SpdOverflow = 5,      // an intermediate M A M or a value f(eigenvalue) is not finite
};

/// Eigenvalues w (B x n, ascending) and, with `vectors`, eigenvectors V (B x n x n, columns as
/// numpy.linalg.eigh) of symmetric matrices A. No definiteness check.
template <typename T>
void spd_eigh(const T* A, int64_t B, int n, double sym_tol, bool vectors, T* w, T* V,
              int8_t* status, int n_jobs);

/// out_b = f(M_b A_b M_b) for symmetric M (M null: identity; m_stride 0: one M for all, else
/// n*n). Sqrt, InvSqrt, Log and Power need positive definite M A M.
template <typename T>
void spd_funm(const T* A, int64_t B, int n, const T* M, int64_t m_stride, SpdFunc f, double power,
              double sym_tol, T* out, int8_t* status, int n_jobs);

/// Eigenvalues (ascending) of M_k A_b M_k for symmetric M, or of M_k A_b M_k^T for lower
/// triangular M with `lower` (its upper part is not read; a Cholesky factor's inverse: the
/// congruence costs less than half), which must be positive definite: with `outer` every pair
/// (b, k), w of shape (B, K, n); else pair b with k = b (K == B) or with the single M (K == 1),
/// w of shape (B, n). With `log_sq` (not null) the eigenvalues are not written (w unused) but
/// log_sq[t] = sum_i log(w_ti)^2 per task t (the squared affine-invariant distance; NaN where
/// status is not 0), in float64, summed in the lanes in the order QL leaves them.
template <typename T>
void spd_eigvalsh_pairs(const T* A, int64_t B, int n, const T* M, int64_t K, bool outer, bool lower,
                        double sym_tol, T* w, int8_t* status, int n_jobs, double* log_sq = nullptr);

/// out (n x n, double) = sum_b wts[b] f(M A_b M) (M null: identity; M shared by all b), or
/// with `lower` sum_b wts[b] f(M A_b M^T) for lower-triangular M (upper part not read).
template <typename T>
void spd_funm_wsum(const T* A, int64_t B, int n, const T* M, const double* wts, SpdFunc f,
                   double power, bool lower, double sym_tol, double* out, int8_t* status,
                   int n_jobs);

}  // namespace geoml
