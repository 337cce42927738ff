// Thick-restart Lanczos for a few extreme eigenpairs of a symmetric operator, CSR/dense
// matrix-vector products and a scaled Chebyshev polynomial filter.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace geoml {

/// y = A x for n-vectors (x and y never alias). Called from the sequential part of the
/// solver only, so it may itself use OpenMP or take a lock (e.g. Python's GIL).
template <typename T>
using MatVec = std::function<void(const T* x, T* y)>;

/// One fused Chebyshev step yc = s1 * (A yb - c yb) - s2 ya (one product with A); optional
/// (an empty function makes the solver use MatVec plus a vector update).
template <typename T>
using ChebStep =
    std::function<void(const T* yb, const T* ya, T* yc, double s1, double c, double s2)>;
// A "team" ChebStep (lanczos's `team_step`) is called by every thread of an OpenMP parallel
// region at once and shares its rows among them (a worksharing loop ending in a barrier), so
// that a whole filter application runs in one parallel region.

enum class Which : int { LA = 0, SA = 1, LM = 2 };

struct LanczosOptions {
  int64_t k = 1;                 ///< eigenpairs wanted
  Which which = Which::LA;       ///< which end of the spectrum
  double tol = 1e-10;            ///< converged: ||A x - theta x|| <= tol * anorm
  int64_t max_iter = 1000;       ///< restart cycles at most
  int64_t ncv = 0;               ///< basis size (0: max(2k + 1, 20) plus deflation, at most n)
  double anorm = 0;              ///< ||A||_2 if known (> 0), else estimated from Ritz values
  int cheb_degree = 0;           ///< > 0: Lanczos on p(A), p a Chebyshev filter (which = LA, or
                                 ///< LM: p damping [-cut, cut]; even degree: LA on p(A), odd:
                                 ///< LM on p(A), so -lambda and lambda stay apart)
  double cheb_lower = -1;        ///< lower end of A's spectrum (filter interval starts here)
  double cheb_upper = 1;         ///< upper end of A's spectrum (p is scaled to p(upper) = 1)
  double cheb_cut = -2;          ///< damped interval [cheb_lower, cheb_cut]; <= cheb_lower: from
                                 ///< the Ritz values of a first unfiltered cycle
  int cheb_prelim = 16;          ///< unfiltered restart cycles before the filter is placed
  bool cheb_auto_lower = false;  ///< raise cheb_lower to the smallest Ritz value of the
                                 ///< unfiltered cycles minus a margin (LA; see lanczos.cpp)
  bool verify = true;            ///< after convergence, one cycle from a fresh random vector to
                                 ///< catch eigenvalues missed through multiplicity (not with the
                                 ///< filter: its callers deflate known multiplicities instead)
  uint64_t seed = 0;
  int n_threads = 0;
};

template <typename T>
struct LanczosResult {
  std::vector<double> eigenvalues;  ///< k values, ascending
  std::vector<T> eigenvectors;      ///< n x k row-major, orthonormal columns
  std::vector<double> residuals;    ///< ||A x - theta x|| (computed, not estimated), k values
  int64_t n_iter = 0;               ///< restart cycles run
  int64_t n_matvec = 0;             ///< products with A
  bool converged = false;
  double anorm = 0;     ///< the ||A|| used in the test
  double cheb_cut = 0;  ///< filter interval [cheb_lower, cheb_cut] (0 if unused)
};

/// Thick-restart Lanczos (Wu & Simon 2000) with full reorthogonalisation (classical
/// Gram-Schmidt after the three-term step, repeated when it cancels, DGKS) and locking of
/// converged Ritz pairs. With cheb_degree > 0 the iteration runs on p(A), p a scaled
/// Chebyshev polynomial damping [cheb_lower, cut] (cut from Ritz values of 16 unfiltered
/// cycles, raised as estimates improve), and pairs are locked on computed A-residuals (of
/// the unit vectors; the solve stops early, the rest unconverged, once the unlocked pairs'
/// residuals have made no progress at the rounding level, <= 100 eps anorm, for 8 cycles);
/// `step`, if given, fuses one recurrence step with the product. `deflate` (n x nd
/// row-major, orthonormal columns, may be null) spans a space that the solver stays
/// orthogonal to. `v0` (n values, may be null) starts the
/// iteration, else a seeded Gaussian vector. `exact`, if given, forms the products of the
/// returned Rayleigh quotients and residuals (the iteration's, locking's included, come from
/// `A`: e.g. A with float32 values, `exact` the float64 A; `converged` then compares the exact
/// residuals with opt.tol). Cost per restart cycle: (ncv - kept) operator products plus
/// O(n ncv^2) for the orthogonalisation; memory O(n ncv). The result owns its memory. Throws
/// std::invalid_argument for inconsistent sizes.
template <typename T>
LanczosResult<T> lanczos(int64_t n, const MatVec<T>& A, const T* v0, const T* deflate, int64_t nd,
                         const LanczosOptions& opt, const ChebStep<T>& step = ChebStep<T>(),
                         const MatVec<T>& exact = MatVec<T>(),
                         const ChebStep<T>& team_step = ChebStep<T>());

/// Products with N = S P S for a 0/1 sparsity pattern P (CSR indptr/indices, no values)
/// and a diagonal S = diag(s): the normalised adjacency of an unweighted graph, reading 4
/// bytes per stored entry instead of 12. y = N x, and the fused Chebyshev step.
template <typename T, typename I>
void scaled_pattern_matvec(int64_t n, const I* indptr, const I* indices, const double* s,
                           const T* x, T* y, std::vector<double>& z, int n_threads);
template <typename T, typename I>
void scaled_pattern_cheb_step(int64_t n, const I* indptr, const I* indices, const double* s,
                              const T* yb, const T* ya, T* yc, double s1, double c, double s2,
                              std::vector<double>& z, int n_threads);

/// y = A x for a CSR matrix (n rows), parallel over rows with OpenMP; O(nnz). float64 with
/// int32 indices: row sums from the per-ISA kernel (spmv_kernel.inc: AVX-512 gathers, one
/// fixed summation order, so the same bits under every ISA and thread count).
template <typename T, typename I>
void csr_matvec(int64_t n, const I* indptr, const I* indices, const T* data, const T* x, T* y,
                int n_threads);

/// One fused Chebyshev step yc = s1 * (A yb - c yb) - s2 ya for a CSR matrix (one pass over
/// A and the three vectors; rows in dynamic chunks, so the result is thread-count independent;
/// float64 / int32: the row sums of csr_matvec).
template <typename T, typename I>
void csr_cheb_step(int64_t n, const I* indptr, const I* indices, const T* data, const T* yb,
                   const T* ya, T* yc, double s1, double c, double s2, int n_threads);

/// csr_matvec and csr_cheb_step with float32 stored values and float64 vectors (int32
/// indices): each value enters as its exact float64 value, so the results are the bits of the
/// float64 products on the rounded matrix (8 bytes per stored entry instead of 12).
void csr_matvec_f32v(int64_t n, const int32_t* indptr, const int32_t* indices, const float* data,
                     const double* x, double* y, int n_threads);
/// `team`: called by every thread of an enclosing parallel region (see ChebStep), n_threads
/// unused.
void csr_cheb_step_f32v(int64_t n, const int32_t* indptr, const int32_t* indices, const float* data,
                        const double* yb, const double* ya, double* yc, double s1, double c,
                        double s2, int n_threads, bool team = false);

/// max |A - A^T| (diff) and max |A| (amax) over the stored entries of an n x n CSR matrix
/// whose rows hold sorted column indices without duplicates (SciPy's canonical format), as
/// SciPy's abs(A - A.T).max() and abs(A).max() (a_ij - a_ji formed in T; an absent entry is 0),
/// in one serial pass over the rows with a cursor per row (no transpose): O(nnz + n) time, n
/// extra values. Throws std::invalid_argument for a column index outside [0, n) or a
/// decreasing indptr.
template <typename T, typename I>
void csr_asymmetry(int64_t n, const I* indptr, const I* indices, const T* data, double& diff,
                   double& amax);

/// Gershgorin's bounds of the spectrum of a symmetric n x n CSR matrix: lo = min_i (a_ii -
/// r_i), up = max_i (a_ii + r_i), r_i the sum of |a_ij| over row i's off-diagonal entries
/// (summed in row order, in double; duplicates of the diagonal are added to it). One serial
/// pass: the same bits on any thread count. Throws std::invalid_argument for a column index
/// outside [0, n) or a decreasing indptr.
template <typename T, typename I>
void csr_gershgorin(int64_t n, const I* indptr, const I* indices, const T* data, double& lo,
                    double& up);

/// The float32 copy of m float64 values (round to nearest) for the filtered solve's products,
/// with sums over the values in order: s2 = sum d^2, s1 = sum d, e2 = sum (d - float(d))^2.
/// Returns false (and stops) at the first value above float32's largest (or NaN) or non-zero
/// below its smallest normal. One serial pass (the same bits on any thread count).
bool float32_copy(int64_t m, const double* d, float* d32, double& s2, double& s1, double& e2);

/// y = A x for a dense row-major n x n matrix, parallel over rows; O(n^2).
template <typename T>
void dense_matvec(int64_t n, const T* A, const T* x, T* y, int n_threads);

/// Eigen-decomposition of a dense symmetric n x n matrix (row-major, destroyed) by cyclic
/// Jacobi rotations: eigenvalues in w (unsorted), eigenvectors as the columns of Z (row-major
/// n x n). O(n^3) per sweep; used for the small projected matrices of the solver.
void jacobi_eig(int n, std::vector<double>& a, std::vector<double>& w, std::vector<double>& z);
// The dsyevd of scipy.linalg.cython_lapack (its address; 0: none) for the Rayleigh-Ritz step of
// projected matrices above order 128.
void set_lapack_syevd(std::uintptr_t fn);

}  // namespace geoml
