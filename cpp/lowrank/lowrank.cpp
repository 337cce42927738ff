// Low-rank decomposition kernels (see lowrank.hpp).
//
// BLAS is SciPy's, reached through function pointers from scipy.linalg.cython_blas (column-major
// Fortran convention). A row-major matrix M (a x b) is the column-major matrix M^T (b x a) with
// leading dimension b; every call below is written in that light. BLAS is only ever called from
// the thread that entered the kernel, never inside an OpenMP region, so SciPy's threaded BLAS
// and geoml's OpenMP never oversubscribe the cores.
#include "lowrank.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "common/sparse.hpp"

namespace geoml {

// ---------------------------------------------------------------- per-ISA tall-skinny kernels
namespace {  // (internal linkage: each family's copies stay its own)
#define GEOML_KERNEL_INC "lowrank/lowrank_kernel.inc"
#include "common/simd_instantiate.inc"
}  // namespace

namespace {

dgemm_fn g_dgemm = nullptr;
sgemm_fn g_sgemm = nullptr;
dsyrk_fn g_dsyrk = nullptr;
ssyrk_fn g_ssyrk = nullptr;

// Slabs go to BLAS one by one only when they are few (<= kDirectL) and wide (>= kDirectR
// trailing entries); otherwise they are gathered into a buffer of at most kGatherElems entries
// first, so a mode costs a handful of large BLAS calls. Each call of a threaded BLAS wakes
// and synchronises its threads, which is costly when the cores are busy.
constexpr int64_t kDirectR = 64;
constexpr int64_t kDirectL = 16;
constexpr int64_t kGatherElems = int64_t(1) << 22;
// Mode-n products with at most kColsMaxJ output rows and slabs at least kColsMinR wide run in
// geoml's own SIMD kernel (`ttm_cols`), over tasks of kColBlock columns of one slab: OpenBLAS
// reaches only a third of the memory bandwidth on such skinny shapes.
constexpr int64_t kColsMinR = 64;
constexpr int64_t kColsMaxJ = 32;
constexpr int64_t kColBlock = 512;
// A Gram matrix is summed slab by slab (one SYRK per slab, no gather) when the slabs are at
// least kDirectR wide and each SYRK does at least this many flops (I^2 R).
constexpr int64_t kSyrkSlabFlops = int64_t(1) << 22;
// Below this many elements of work a loop runs on the calling thread: waking a team costs more
// than it saves (much more on a loaded machine).
constexpr int64_t kParallelMin = int64_t(1) << 16;
constexpr int64_t kSparseParallelMin = int64_t(1) << 20;  // nnz * columns

int to_int(int64_t v) {
  if (v > INT_MAX)
    throw std::runtime_error("a matrix dimension exceeds 2^31-1, the limit of SciPy's BLAS");
  return static_cast<int>(v);
}

void require_blas() {
  if (!g_dgemm || !g_sgemm || !g_dsyrk || !g_ssyrk)
    throw std::runtime_error("geoml: BLAS pointers were not installed (import geoml.lowrank)");
}

// The BLAS calls of both precisions (`f` a SciPy BLAS pointer): dimensions checked to int.
template <typename T, typename Fn>
void gemm_with(Fn f, char ta, char tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  int im = to_int(m), in = to_int(n), ik = to_int(k);
  int ilda = to_int(std::max<int64_t>(lda, 1)), ildb = to_int(std::max<int64_t>(ldb, 1)),
      ildc = to_int(std::max<int64_t>(ldc, 1));
  f(&ta, &tb, &im, &in, &ik, &alpha, const_cast<T*>(A), &ilda, const_cast<T*>(B), &ildb, &beta, C,
    &ildc);
}
template <typename T, typename Fn>
void syrk_with(Fn f, char uplo, char trans, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
               T beta, T* C, int64_t ldc) {
  int in = to_int(n), ik = to_int(k);
  int ilda = to_int(std::max<int64_t>(lda, 1)), ildc = to_int(std::max<int64_t>(ldc, 1));
  f(&uplo, &trans, &in, &ik, &alpha, const_cast<T*>(A), &ilda, &beta, C, &ildc);
}

void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_with(g_dgemm, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_with(g_sgemm, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
void syrk(char uplo, char trans, int64_t n, int64_t k, double alpha, const double* A, int64_t lda,
          double beta, double* C, int64_t ldc) {
  syrk_with(g_dsyrk, uplo, trans, n, k, alpha, A, lda, beta, C, ldc);
}
void syrk(char uplo, char trans, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
          float beta, float* C, int64_t ldc) {
  syrk_with(g_ssyrk, uplo, trans, n, k, alpha, A, lda, beta, C, ldc);
}

/// Largest count of slabs per block such that a block has at most `limit` rows (BLAS int).
int64_t rows_per_block(int64_t L, int64_t width) {
  const int64_t cap = std::max<int64_t>(1, (INT_MAX / 2) / std::max<int64_t>(width, 1));
  return std::min(L, cap);
}

/// Gathers slabs l0 .. l0+lc-1 of the (L, I, R) view into B (I x lc*R, row-major):
/// B[i, c*R + r] = X[l0 + c, i, r].
template <typename T>
void gather(const T* X, int64_t I, int64_t R, int64_t l0, int64_t lc, T* B, int nt) {
  const int64_t K = lc * R;
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2) if (K * I >= kParallelMin)
  for (int64_t c = 0; c < lc; ++c)
    for (int64_t i = 0; i < I; ++i)
      std::memcpy(B + i * K + c * R, X + ((l0 + c) * I + i) * R, sizeof(T) * R);
}

/// Inverse of `gather` for an output of J rows: Y[l0 + c, j, r] = B[j, c*R + r].
template <typename T>
void scatter(const T* B, int64_t J, int64_t R, int64_t l0, int64_t lc, T* Y, int nt) {
  const int64_t K = lc * R;
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2) if (K * J >= kParallelMin)
  for (int64_t c = 0; c < lc; ++c)
    for (int64_t j = 0; j < J; ++j)
      std::memcpy(Y + ((l0 + c) * J + j) * R, B + j * K + c * R, sizeof(T) * R);
}

int64_t gather_slabs(int64_t L, int64_t width, int64_t R) {
  return std::max<int64_t>(1, std::min(L, kGatherElems / std::max<int64_t>(width * R, 1)));
}

constexpr int64_t kApplyBlockElems = int64_t(1) << 15;  // entries of X per packed/apply task

/// Columns per task of the packed kernels: blocks of about kApplyBlockElems entries of X.
int64_t block_width(int64_t I) {
  return std::max<int64_t>(16, kApplyBlockElems / std::max<int64_t>(I, 1) / 16 * 16);
}

/// Packs columns k0 .. k0+kc-1 of the mode-n unfolding X_(n) (I x L*R; column k = l*R + r is
/// X[l, :, r] of the (L, I, R) view) into b (I x kc, row stride ldb). O(I kc) copies.
template <typename T>
void pack_cols(const T* X, int64_t I, int64_t R, int64_t k0, int64_t kc, T* b, int64_t ldb) {
  if (R == 1) {
    for (int64_t c = 0; c < kc; ++c) {
      const T* x = X + (k0 + c) * I;
      for (int64_t i = 0; i < I; ++i) b[i * ldb + c] = x[i];
    }
    return;
  }
  for (int64_t k = k0; k < k0 + kc;) {
    const int64_t l = k / R, r = k % R, len = std::min(R - r, k0 + kc - k);
    for (int64_t i = 0; i < I; ++i)
      std::memcpy(b + i * ldb + (k - k0), X + (l * I + i) * R + r, sizeof(T) * len);
    k += len;
  }
}

/// Column block `t` of the mode-n unfolding X_(n) (L slabs of I x R) for the tasks of
/// `gram_own` and `gram_apply`: with wide slabs (`in_place`, `nbr` blocks of `width` per
/// slab) a column range of one slab read in place (row stride R); else `width` consecutive
/// columns packed into `buf` (I x width, row stride width). Sets `ld` and the column count `kc`.
template <typename T>
const T* column_block(const T* X, int64_t L, int64_t I, int64_t R, int64_t t, int64_t width,
                      bool in_place, int64_t nbr, T* buf, int64_t& ld, int64_t& kc) {
  if (in_place) {
    const int64_t l = t / nbr, r0 = (t % nbr) * width;
    kc = std::min(width, R - r0);
    ld = R;
    return X + l * I * R + r0;
  }
  const int64_t k0 = t * width;
  kc = std::min(width, L * R - k0);
  pack_cols(X, I, R, k0, kc, buf, width);
  ld = width;
  return buf;
}

/// Inverse of `pack_cols` for a J-row output Y (the (L, J, R) view): Y_(n)[:, k0 + c] =
/// b[:, c]. O(J kc) copies.
template <typename T>
void unpack_cols(const T* b, int64_t ldb, int64_t J, int64_t R, int64_t k0, int64_t kc, T* Y) {
  if (R == 1) {
    for (int64_t c = 0; c < kc; ++c) {
      T* y = Y + (k0 + c) * J;
      for (int64_t j = 0; j < J; ++j) y[j] = b[j * ldb + c];
    }
    return;
  }
  for (int64_t k = k0; k < k0 + kc;) {
    const int64_t l = k / R, r = k % R, len = std::min(R - r, k0 + kc - k);
    for (int64_t j = 0; j < J; ++j)
      std::memcpy(Y + (l * J + j) * R + r, b + j * ldb + (k - k0), sizeof(T) * len);
    k += len;
  }
}

}  // namespace

void set_blas(dgemm_fn dgemm, sgemm_fn sgemm, dsyrk_fn dsyrk, ssyrk_fn ssyrk) {
  g_dgemm = dgemm;
  g_sgemm = sgemm;
  g_dsyrk = dsyrk;
  g_ssyrk = ssyrk;
}

bool blas_ready() {
  return g_dgemm && g_sgemm && g_dsyrk && g_ssyrk;
}

ModeView mode_view(const std::vector<int64_t>& dims, int n) {
  if (n < 0 || n >= static_cast<int>(dims.size()))
    throw std::invalid_argument("mode index out of range");
  ModeView v{1, dims[n], 1};
  for (int m = 0; m < n; ++m) v.L *= dims[m];
  for (size_t m = n + 1; m < dims.size(); ++m) v.R *= dims[m];
  return v;
}

template <typename T>
void ttm(const T* X, const std::vector<int64_t>& dims, int n, const T* A, int64_t J,
         bool a_transposed, T* Y, int n_threads) {
  require_blas();
  const auto [L, I, R] = mode_view(dims, n);
  const int nt = resolve_threads(n_threads);
  if (L * R == 0 || J == 0) return;
  if (I == 0) {  // empty contraction: Y = 0
    std::fill(Y, Y + L * J * R, T(0));
    return;
  }
  if (R >= kColsMinR && J <= kColsMaxJ) {
    // Few output rows, wide slabs: geoml's SIMD kernel streams X once, without gathers.
    // Dynamic schedule: on a busy machine a descheduled thread does not hold up the rest.
    const int64_t Jp = (J + 3) / 4 * 4;
    std::vector<T> At(static_cast<size_t>(I * Jp), T(0));
    for (int64_t i = 0; i < I; ++i)
      for (int64_t j = 0; j < J; ++j) At[i * Jp + j] = a_transposed ? A[i * J + j] : A[j * I + i];
    const int64_t nb = (R + kColBlock - 1) / kColBlock, tasks = L * nb;
    const SimdIsa isa = simd_isa();
    const T* at = At.data();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (L * I * R >= kParallelMin)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t l = t / nb, r0 = (t % nb) * kColBlock, r1 = std::min(R, r0 + kColBlock);
      GEOML_SIMD_CALL(isa, ttm_cols<T>, X + l * I * R, I, R, at, J, Jp, r0, r1, Y + l * J * R, R);
    }
    return;
  }
  if (J <= kColsMaxJ && R == 1) {
    // Few output rows, mode-n fibres contiguous: Y (L x J) = X (L x I) A^T row by row.
    std::vector<T> At(static_cast<size_t>(I * J));
    for (int64_t i = 0; i < I; ++i)
      for (int64_t j = 0; j < J; ++j) At[i * J + j] = a_transposed ? A[i * J + j] : A[j * I + i];
    ts_matmul<T>(X, L, I, At.data(), J, Y, nt);
    return;
  }
  if (J <= kColsMaxJ) {
    // Few output rows, narrow slabs: the same kernel as for wide ones on blocks of columns
    // of the unfolding packed into a cache-sized buffer, the result unpacked into Y.
    const int64_t Jp = (J + 3) / 4 * 4;
    std::vector<T> At(static_cast<size_t>(I * Jp), T(0));
    for (int64_t i = 0; i < I; ++i)
      for (int64_t j = 0; j < J; ++j) At[i * Jp + j] = a_transposed ? A[i * J + j] : A[j * I + i];
    const int64_t width = block_width(I), K = L * R, tasks = (K + width - 1) / width;
    const int ntp = L * I * R >= kParallelMin ? static_cast<int>(std::min<int64_t>(nt, tasks)) : 1;
    const SimdIsa isa = simd_isa();
    const T* at = At.data();
    OmpErrors errors;  // the per-thread packed blocks (std::bad_alloc)
#pragma omp parallel num_threads(ntp)
    {
      std::vector<T> bin, bout;
      const bool ok = errors.run([&] {
        bin.resize(static_cast<size_t>(I * width));
        bout.resize(static_cast<size_t>(J * width));
      });
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        if (!ok) continue;
        const int64_t k0 = t * width, kc = std::min(width, K - k0);
        pack_cols(X, I, R, k0, kc, bin.data(), width);
        GEOML_SIMD_CALL(isa, ttm_cols<T>, bin.data(), I, width, at, J, Jp, 0, kc, bout.data(),
                        width);
        unpack_cols(bout.data(), width, J, R, k0, kc, Y);
      }
    }
    errors.rethrow();
    return;
  }
  // A^T (I x J) as a column-major operand: the row-major J x I array A read column-major
  // is A^T ('N', ld I); the row-major I x J array U = A^T read column-major is U^T ('T', ld J).
  const char opAt = a_transposed ? 'T' : 'N';
  const int64_t ldAt = a_transposed ? J : I;
  if (R == 1) {
    // Y (L x J) = X (L x I) A^T; column-major: Y^T (J x L) = A (J x I) X^T (I x L).
    const char opA = a_transposed ? 'N' : 'T';
    const int64_t bl = rows_per_block(L, std::max(I, J));
    for (int64_t l0 = 0; l0 < L; l0 += bl) {
      const int64_t lc = std::min(bl, L - l0);
      gemm(opA, 'N', J, lc, I, T(1), A, ldAt, X + l0 * I, I, T(0), Y + l0 * J, J);
    }
    return;
  }
  if (L == 1 || (R >= kDirectR && L <= kDirectL)) {
    // Per slab: Y_l (J x R) = A X_l; column-major: Y_l^T (R x J) = X_l^T (R x I) A^T.
    for (int64_t l = 0; l < L; ++l)
      gemm('N', opAt, R, J, I, T(1), X + l * I * R, R, A, ldAt, T(0), Y + l * J * R, R);
    return;
  }
  const int64_t bl = gather_slabs(L, std::max(I, J), R);
  std::vector<T> bin(static_cast<size_t>(I * bl * R)), bout(static_cast<size_t>(J * bl * R));
  for (int64_t l0 = 0; l0 < L; l0 += bl) {
    const int64_t lc = std::min(bl, L - l0), K = lc * R;
    gather(X, I, R, l0, lc, bin.data(), nt);
    gemm('N', opAt, K, J, I, T(1), bin.data(), K, A, ldAt, T(0), bout.data(), K);
    scatter(bout.data(), J, R, l0, lc, Y, nt);
  }
}

namespace {
// Mode sizes up to which geoml's Gram kernel runs instead of SYRK: on one core it is about
// 20 % faster than OpenBLAS's SYRK (200^3 float64 tensor: 0.050 vs 0.065 s, about 85 % of
// DGEMM's flop rate), has no thread synchronisation inside BLAS and uses the second core
// (SciPy's threaded SYRK gained 1.3x on 2 idle cores, and lost several times on busy ones). Beyond,
// each column block is too narrow for its tiles.
constexpr int64_t kOwnGramMaxI = 512;

/// Groups of consecutive tasks for a sum over `tasks` whose bits must not depend on the thread
/// count (1 when the sum runs serially anyway, `serial`): each group adds its tasks in order
/// to its own partial sum of `size` doubles, the partials are added in group order. A power
/// of two (groups split evenly over 2, 4, 8 threads), at most 32 and 2^20 doubles of partials
/// (32 partial Gram matrices of 300 x 300 made a 60 x 200 x 300 Gram matrix 1.3x slower).
int64_t fixed_groups(int64_t tasks, int64_t size, bool serial) {
  if (serial) return 1;
  const int64_t most =
      std::min<int64_t>({tasks, 32, (int64_t(1) << 20) / std::max<int64_t>(1, size)});
  int64_t ng = 1;
  while (2 * ng <= most) ng *= 2;
  return ng;
}

// Mode sizes up to which `gram_own` takes dot products along the columns (`gram_cols`):
// with one or two panels, the panel tiles waste most of their lanes (I = 20: 1.6x slower).
constexpr int64_t kDotGramMaxI = 24;

/// Gram matrix in geoml's SIMD loops over OpenMP tasks of one cache-sized block of columns
/// of the unfolding each (dynamic schedule, one double accumulator per thread). Each block
/// (wide slabs read in place, narrow ones, R < 64, gathered first; for R = 1, rows of X) is
/// packed into panels (`gram_pack`, `gram_pack_t`), then multiplied by register tiles
/// (`gram_panels`); up to kDotGramMaxI rows, blocks (R = 1 transposed) go to `gram_cols`.
template <typename T>
void gram_own(const T* X, int64_t L, int64_t I, int64_t R, T* G, int n_threads) {
  const int64_t width = block_width(I);
  const bool in_place = R >= kColsMinR;
  const bool dots = I <= kDotGramMaxI;
  const int64_t nbr = (R + width - 1) / width;  // blocks per slab (in place)
  const int64_t K = L * R;
  const int64_t tasks = in_place ? L * nbr : (K + width - 1) / width;
  const int64_t ng = fixed_groups(tasks, I * I, I * I * K < kParallelMin * 16);
  const int nt = static_cast<int>(std::min<int64_t>(resolve_threads(n_threads), ng));
  const SimdIsa isa = simd_isa();
  // panels of either ISA: at most I + NBmax rows of `width` entries, NBmax = 3 * 32 / sizeof(T)
  const int64_t nb_max = 3 * 32 / static_cast<int64_t>(sizeof(T));
  const size_t panel_size = static_cast<size_t>(dots ? 0 : (I + nb_max) * width);
  const bool rows = R == 1 && !dots;  // the unfolding's columns are rows of X, packed as such
  // the groups' partial Gram matrices, each cleared by the thread that fills it
  std::unique_ptr<double[]> acc(new double[static_cast<size_t>(ng) * I * I]);
  OmpErrors errors;  // the per-thread blocks and panels (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> buf, panels, zero;
    const bool ok = errors.run([&] {
      buf.resize(in_place || rows ? 0 : static_cast<size_t>(I * width));
      panels.resize(panel_size);
      zero.assign(static_cast<size_t>(nb_max * width), T(0));
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < ng; ++g) {
      if (!ok) continue;
      double* z = acc.get() + static_cast<size_t>(g) * I * I;
      std::fill(z, z + I * I, 0.0);
      for (int64_t t = tasks * g / ng; t < tasks * (g + 1) / ng; ++t) {
        int64_t ld = I, kc = std::min(width, K - t * width);
        const T* blk = rows ? X + t * width * I
                            : column_block(X, L, I, R, t, width, in_place, nbr, buf.data(), ld, kc);
        GEOML_SIMD_CALL(isa, gram_block<T>, blk, I, ld, kc, dots, rows, panels.data(), zero.data(),
                        z);
      }
    }
  }
  errors.rethrow();
  // the partials added in group order, rows of G in parallel (each read contiguously)
  double* z = acc.get();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
  for (int64_t a = 0; a < I; ++a) {
    for (int64_t g = 1; g < ng; ++g) {
      const double* zg = z + static_cast<size_t>(g) * I * I;
      for (int64_t b = a; b < I; ++b) z[a * I + b] += zg[a * I + b];
    }
    for (int64_t b = a; b < I; ++b) G[a * I + b] = G[b * I + a] = static_cast<T>(z[a * I + b]);
  }
}
}  // namespace

template <typename T>
void mode_gram(const T* X, const std::vector<int64_t>& dims, int n, T* G, int n_threads) {
  require_blas();
  const auto [L, I, R] = mode_view(dims, n);
  const int nt = resolve_threads(n_threads);
  std::fill(G, G + I * I, T(0));
  if (I == 0 || L * R == 0) return;
  if (I <= kOwnGramMaxI) {
    gram_own(X, L, I, R, G, n_threads);
    return;
  }
  // G is filled column-major upper = row-major lower, then mirrored.
  if (R == 1) {
    // X (L x I) row-major is X^T column-major; G = X^T X = (X^T)(X^T)^T: SYRK 'N'.
    const int64_t bl = rows_per_block(L, I);
    for (int64_t l0 = 0; l0 < L; l0 += bl) {
      const int64_t lc = std::min(bl, L - l0);
      syrk('U', 'N', I, lc, T(1), X + l0 * I, I, T(1), G, I);
    }
  } else if (L == 1 || (R >= kDirectR && (L <= kDirectL || I * I * R >= kSyrkSlabFlops))) {
    // X_l (I x R) row-major is X_l^T (R x I) column-major; G += X_l X_l^T: SYRK 'T'.
    for (int64_t l = 0; l < L; ++l) syrk('U', 'T', I, R, T(1), X + l * I * R, R, T(1), G, I);
  } else {
    const int64_t bl = gather_slabs(L, I, R);
    std::vector<T> bin(static_cast<size_t>(I * bl * R));
    for (int64_t l0 = 0; l0 < L; l0 += bl) {
      const int64_t lc = std::min(bl, L - l0), K = lc * R;
      gather(X, I, R, l0, lc, bin.data(), nt);
      syrk('U', 'T', I, K, T(1), bin.data(), K, T(1), G, I);
    }
  }
  for (int64_t a = 0; a < I; ++a)
    for (int64_t b = a + 1; b < I; ++b) G[a * I + b] = G[b * I + a];
}

template <typename T>
void gram_apply(const T* X, const std::vector<int64_t>& dims, int n, const T* U, int64_t J,
                double* Z, int n_threads) {
  const auto [L, I, R] = mode_view(dims, n);
  std::fill(Z, Z + I * J, 0.0);
  if (I == 0 || J == 0 || L * R == 0) return;
  const int64_t Jp = (J + 3) / 4 * 4;
  const SimdIsa isa = simd_isa();
  const int64_t width = block_width(I);
  // Tasks of `width` columns of the unfolding: of one slab, read in place, for wide slabs
  // (R >= kColsMinR); for R = 1, `width` rows of X (`rows_apply`); else packed first (a slab
  // of a few columns would leave the SIMD tiles idle). Per block, P = block^T U (`ttm_cols`,
  // Jp x width) is transposed into Pt (width x Jq, Jq a multiple of the widest SIMD vector,
  // zeros beyond J) for Z += block Pt (`rows_times`).
  const bool in_place = R >= kColsMinR;
  const int64_t nbr = in_place ? (R + width - 1) / width : 1;
  const int64_t tasks = in_place ? L * nbr : (L * R + width - 1) / width;
  constexpr int64_t Wmax = 32 / sizeof(T);
  const int64_t Jq = (Jp + Wmax - 1) / Wmax * Wmax;
  const int64_t ng = fixed_groups(tasks, I * Jq, L * I * R * J < kParallelMin * 16);
  const int nt = static_cast<int>(std::min<int64_t>(resolve_threads(n_threads), ng));
  std::vector<T> At(static_cast<size_t>(I * Jp), T(0));  // U padded to Jp columns
  for (int64_t i = 0; i < I; ++i)
    for (int64_t j = 0; j < J; ++j) At[i * Jp + j] = U[i * J + j];
  std::vector<T> Uq(static_cast<size_t>(R == 1 ? I * Jq : 0), T(0));  // U padded to Jq
  for (int64_t i = 0; i < I && R == 1; ++i)
    for (int64_t j = 0; j < J; ++j) Uq[i * Jq + j] = U[i * J + j];
  std::vector<double> acc(static_cast<size_t>(ng) * I * Jq, 0.0);
  OmpErrors errors;  // the per-thread blocks (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> P, Pt, buf, Ya, Yb;
    std::vector<double> rows;
    const bool ok = errors.run([&] {
      P.assign(static_cast<size_t>(width * Jp), T(0));  // rows >= J stay zero
      Pt.assign(static_cast<size_t>(width * Jq), T(0));
      buf.resize(in_place || R == 1 ? 0 : static_cast<size_t>(I * width));
      rows.resize(static_cast<size_t>(R == 1 ? width * Jq : 0));
      Ya.assign(static_cast<size_t>(R == 1 ? width * Jp : 0), T(0));
      Yb.resize(static_cast<size_t>(R == 1 ? J * I : 0));
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < ng; ++g) {
      if (!ok) continue;
      double* z = acc.data() + static_cast<size_t>(g) * I * Jq;
      for (int64_t t = tasks * g / ng; t < tasks * (g + 1) / ng; ++t) {
        if (R == 1) {
          const T* M = X + t * width * I;
          const int64_t kc = std::min(width, L - t * width);
          GEOML_SIMD_CALL(isa, rows_apply<T>, M, kc, I, J, Jp, Uq.data(), Jq, rows.data(),
                          Ya.data(), Yb.data(), z);
          continue;
        }
        int64_t ld, rc;
        const T* x = column_block(X, L, I, R, t, width, in_place, nbr, buf.data(), ld, rc);
        GEOML_SIMD_CALL(isa, cols_apply<T>, x, I, ld, rc, At.data(), J, Jp, Jq, P.data(), width,
                        Pt.data(), z);
      }
    }
  }
  errors.rethrow();
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t j = 0; j < J; ++j)
        Z[i * J + j] += acc[(static_cast<size_t>(g) * I + i) * Jq + j];
}

template <typename T>
void gram_apply_pair(const T* X, const std::vector<int64_t>& dims, const T* U1, int64_t J1,
                     const T* U2, int64_t J2, double* Z1, double* Z2, int n_threads) {
  const int N = static_cast<int>(dims.size());
  if (N < 2) throw std::invalid_argument("gram_apply_pair needs at least 2 modes");
  const int64_t I1 = dims[N - 2], I2 = dims[N - 1], L = mode_view(dims, N - 2).L;
  std::fill(Z1, Z1 + I1 * J1, 0.0);
  std::fill(Z2, Z2 + I2 * J2, 0.0);
  if (L * I1 * I2 == 0 || J1 == 0 || J2 == 0) return;
  constexpr int64_t Wmax = 32 / sizeof(T);
  const int64_t Jp1 = (J1 + 3) / 4 * 4, Jq1 = (Jp1 + Wmax - 1) / Wmax * Wmax;
  const int64_t Jp2 = (J2 + 3) / 4 * 4, Jq2 = (Jp2 + Wmax - 1) / Wmax * Wmax;
  std::vector<T> At1(static_cast<size_t>(I1 * Jp1), T(0)), Uq2(static_cast<size_t>(I2 * Jq2), T(0));
  for (int64_t i = 0; i < I1; ++i)
    for (int64_t j = 0; j < J1; ++j) At1[i * Jp1 + j] = U1[i * J1 + j];
  for (int64_t i = 0; i < I2; ++i)
    for (int64_t j = 0; j < J2; ++j) Uq2[i * Jq2 + j] = U2[i * J2 + j];
  const int64_t ng =
      fixed_groups(L, I1 * Jq1 + I2 * Jq2, L * I1 * I2 * (J1 + J2) < kParallelMin * 16);
  const int nt = static_cast<int>(std::min<int64_t>(resolve_threads(n_threads), ng));
  const SimdIsa isa = simd_isa();
  std::vector<double> acc1(static_cast<size_t>(ng) * I1 * Jq1, 0.0);
  std::vector<double> acc2(static_cast<size_t>(ng) * I2 * Jq2, 0.0);
  OmpErrors errors;  // the per-thread blocks (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> P, Pt, Ya, Yb;
    std::vector<double> rows;
    const bool ok = errors.run([&] {
      P.resize(static_cast<size_t>(Jp1 * I2));
      Pt.assign(static_cast<size_t>(I2 * Jq1), T(0));
      rows.resize(static_cast<size_t>(I1 * Jq2));
      Ya.assign(static_cast<size_t>(I1 * Jp2), T(0));
      Yb.resize(static_cast<size_t>(J2 * I2));
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < ng; ++g) {
      if (!ok) continue;
      double* z1 = acc1.data() + static_cast<size_t>(g) * I1 * Jq1;
      double* z2 = acc2.data() + static_cast<size_t>(g) * I2 * Jq2;
      for (int64_t l = L * g / ng; l < L * (g + 1) / ng; ++l) {
        const T* S = X + l * I1 * I2;
        GEOML_SIMD_CALL(isa, cols_apply<T>, S, I1, I2, I2, At1.data(), J1, Jp1, Jq1, P.data(), I2,
                        Pt.data(), z1);
        GEOML_SIMD_CALL(isa, rows_apply<T>, S, I1, I2, J2, Jp2, Uq2.data(), Jq2, rows.data(),
                        Ya.data(), Yb.data(), z2);
      }
    }
  }
  errors.rethrow();
  for (int64_t g = 0; g < ng; ++g) {
    const double* a1 = acc1.data() + static_cast<size_t>(g) * I1 * Jq1;
    const double* a2 = acc2.data() + static_cast<size_t>(g) * I2 * Jq2;
    for (int64_t i = 0; i < I1; ++i)
      for (int64_t j = 0; j < J1; ++j) Z1[i * J1 + j] += a1[i * Jq1 + j];
    for (int64_t i = 0; i < I2; ++i)
      for (int64_t j = 0; j < J2; ++j) Z2[i * J2 + j] += a2[i * Jq2 + j];
  }
}

template <typename T>
void mode_sketch(const T* X, const std::vector<int64_t>& dims, int n, const T* W, int64_t s, T* Y,
                 int n_threads) {
  require_blas();
  const auto [L, I, R] = mode_view(dims, n);
  const int nt = resolve_threads(n_threads);
  std::fill(Y, Y + I * s, T(0));
  if (I == 0 || s == 0 || L * R == 0) return;
  // Column-major: Y^T (s x I) += W_blk^T (s x K) X_blk^T (K x I).
  if (R == 1) {
    const int64_t bl = rows_per_block(L, std::max(I, s));
    for (int64_t l0 = 0; l0 < L; l0 += bl) {
      const int64_t lc = std::min(bl, L - l0);
      gemm('N', 'T', s, I, lc, T(1), W + l0 * s, s, X + l0 * I, I, T(1), Y, s);
    }
  } else if (L == 1 || (R >= kDirectR && L <= kDirectL)) {
    for (int64_t l = 0; l < L; ++l)
      gemm('N', 'N', s, I, R, T(1), W + l * R * s, s, X + l * I * R, R, T(1), Y, s);
  } else {
    const int64_t bl = gather_slabs(L, I, R);
    std::vector<T> bin(static_cast<size_t>(I * bl * R));
    for (int64_t l0 = 0; l0 < L; l0 += bl) {
      const int64_t lc = std::min(bl, L - l0), K = lc * R;
      gather(X, I, R, l0, lc, bin.data(), nt);
      gemm('N', 'N', s, I, K, T(1), W + l0 * R * s, s, bin.data(), K, T(1), Y, s);
    }
  }
}

template <typename T>
double sum_squares(const T* x, int64_t n, int n_threads) {
  constexpr int64_t kChunk = int64_t(1) << 14;  // entries per task
  const int64_t nc = (n + kChunk - 1) / kChunk;
  const int nt = n >= kParallelMin ? resolve_threads(n_threads) : 1;
  const SimdIsa isa = simd_isa();
  // chunk sums added in chunk order: the same bits for any thread count
  std::vector<double> part(static_cast<size_t>(nc));
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < nc; ++c) {
    const int64_t i0 = c * kChunk, i1 = std::min(n, i0 + kChunk);
    part[c] = GEOML_SIMD_CALL(isa, sumsq_range<T>, x, i0, i1);
  }
  double acc = 0.0;
  for (const double v : part) acc += v;
  return acc;
}

template <typename T, typename I>
void csr_matmat(const T* data, const I* indices, const I* indptr, int64_t m, const T* X, int64_t s,
                T* Y, int n_threads) {
  const int nt = indptr[m] * s >= kSparseParallelMin ? resolve_threads(n_threads) : 1;
  csr_mm<T>(CsrRef<T, I>{m, indptr, indices, data}, X, s, Y, nt);
}

template <typename T, typename I>
void csr_t_matmat(const T* data, const I* indices, const I* indptr, int64_t m, int64_t n,
                  const T* X, int64_t s, T* Y, int n_threads) {
  // A's rows in a fixed number of contiguous blocks (set by the sizes, never by the thread
  // count), each scattered in row order into its own buffer (block 0 into Y), the buffers then
  // added in block order: the same bits for any n_jobs. (Per-thread buffers, as before, summed
  // in a thread-count order: other bits for other n_jobs.)
  const int64_t size = n * s;
  const int64_t nb = csr_t_blocks(m, n, s, sizeof(T));
  const int nt = indptr[m] * s >= kSparseParallelMin
                     ? static_cast<int>(
                           std::max<int64_t>(1, std::min<int64_t>(resolve_threads(n_threads), nb)))
                     : 1;
  std::vector<T> extra(static_cast<size_t>((nb - 1) * size));  // zero-initialised
  std::fill(Y, Y + size, T(0));
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(static, 1)
    for (int64_t b = 0; b < nb; ++b) {
      T* out = b == 0 ? Y : extra.data() + (b - 1) * size;
      for (int64_t i = m * b / nb; i < m * (b + 1) / nb; ++i) {
        const T* x = X + i * s;
        for (int64_t p = indptr[i]; p < indptr[i + 1]; ++p) {
          const T a = data[p];
          T* y = out + static_cast<int64_t>(indices[p]) * s;
          for (int64_t c = 0; c < s; ++c) y[c] += a * x[c];
        }
      }
    }
    // (implicit barrier: every block's buffer is complete)
#pragma omp for schedule(static)
    for (int64_t e = 0; e < size; ++e) {
      T acc = Y[e];
      for (int64_t b = 0; b < nb - 1; ++b) acc += extra[static_cast<size_t>(b * size + e)];
      Y[e] = acc;
    }
  }
}

namespace {
constexpr int64_t kTsBlock = 4096;  // rows per task
}  // namespace

template <typename T>
void ts_gram(const T* Y, int64_t m, int64_t l, double* G, int n_threads) {
  const int64_t nb = (m + kTsBlock - 1) / kTsBlock;
  const int nt = m * l * l >= kParallelMin * 16
                     ? static_cast<int>(std::min<int64_t>(resolve_threads(n_threads), nb))
                     : 1;
  const SimdIsa isa = simd_isa();
  // Blocks are summed in a fixed number of groups (set by m and l, not by the thread count),
  // each in block order, and the groups in group order: the same bits for any n_jobs.
  const int64_t ng = std::max<int64_t>(
      1, std::min<int64_t>({nb, 32, (int64_t(1) << 22) / std::max<int64_t>(1, l * l)}));
  std::vector<double> sums(static_cast<size_t>(ng * l * l), 0.0);
  OmpErrors errors;  // the per-thread partial Gram (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> part;
    const bool ok = errors.run([&] { part.resize(static_cast<size_t>(l * l)); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < ng; ++g) {
      if (!ok) continue;
      double* acc = sums.data() + g * l * l;
      for (int64_t b = nb * g / ng; b < nb * (g + 1) / ng; ++b) {
        const int64_t i0 = b * kTsBlock, i1 = std::min(m, i0 + kTsBlock);
        GEOML_SIMD_CALL(isa, ts_gram_rows<T>, Y, i0, i1, l, part.data());
        for (int64_t e = 0; e < l * l; ++e) acc[e] += part[e];
      }
    }
  }
  errors.rethrow();
  std::fill(G, G + l * l, 0.0);
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t e = 0; e < l * l; ++e) G[e] += sums[g * l * l + e];
}

template <typename T>
void ts_matmul(const T* Y, int64_t m, int64_t l, const T* M, int64_t c, T* out, int n_threads) {
  const int64_t nb = (m + kTsBlock - 1) / kTsBlock;
  const int nt = m * l * c >= kParallelMin * 16
                     ? static_cast<int>(std::min<int64_t>(resolve_threads(n_threads), nb))
                     : 1;
  const SimdIsa isa = simd_isa();
  const int64_t cp = (c + 15) / 16 * 16;  // M padded to whole tiles of 2 vectors
  std::vector<T> Mp(static_cast<size_t>(l * cp), T(0));
  for (int64_t a = 0; a < l; ++a) std::copy(M + a * c, M + (a + 1) * c, Mp.data() + a * cp);
  const T* pm = Mp.data();
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i0 = b * kTsBlock, i1 = std::min(m, i0 + kTsBlock);
    GEOML_SIMD_CALL(isa, ts_matmul_rows<T>, Y, i0, i1, l, pm, c, cp, out);
  }
}

#define GEOML_LOWRANK_DENSE(T)                                                                    \
  template void ttm<T>(const T*, const std::vector<int64_t>&, int, const T*, int64_t, bool, T*,   \
                       int);                                                                      \
  template void mode_gram<T>(const T*, const std::vector<int64_t>&, int, T*, int);                \
  template void gram_apply<T>(const T*, const std::vector<int64_t>&, int, const T*, int64_t,      \
                              double*, int);                                                      \
  template void gram_apply_pair<T>(const T*, const std::vector<int64_t>&, const T*, int64_t,      \
                                   const T*, int64_t, double*, double*, int);                     \
  template void mode_sketch<T>(const T*, const std::vector<int64_t>&, int, const T*, int64_t, T*, \
                               int);                                                              \
  template double sum_squares<T>(const T*, int64_t, int);                                         \
  template void ts_gram<T>(const T*, int64_t, int64_t, double*, int);                             \
  template void ts_matmul<T>(const T*, int64_t, int64_t, const T*, int64_t, T*, int);
GEOML_LOWRANK_DENSE(float)
GEOML_LOWRANK_DENSE(double)

#define GEOML_LOWRANK_SPARSE(T, I)                                                             \
  template void csr_matmat<T, I>(const T*, const I*, const I*, int64_t, const T*, int64_t, T*, \
                                 int);                                                         \
  template void csr_t_matmat<T, I>(const T*, const I*, const I*, int64_t, int64_t, const T*,   \
                                   int64_t, T*, int);
GEOML_LOWRANK_SPARSE(float, int32_t)
GEOML_LOWRANK_SPARSE(double, int32_t)
GEOML_LOWRANK_SPARSE(float, int64_t)
GEOML_LOWRANK_SPARSE(double, int64_t)

}  // namespace geoml
