// Sparse (CSR) times dense products shared by the kernel families: the Lanczos matvec
// (csr_matvec), the randomized range finder (csr_matmat) and the multigrid setup products
// (csr_spmm) are thin wrappers of csr_mm, which keeps each one's loop as a specialisation.
#pragma once
#include <cstdint>

namespace geoml {

/// A CSR matrix with `rows` rows: row i holds data[p], column indices[p], for p in
/// [indptr[i], indptr[i + 1]). Views the caller's arrays.
template <typename T, typename I>
struct CsrRef {
  int64_t rows;
  const I* indptr;
  const I* indices;
  const T* data;
};

/// Y = alpha A X + beta B for a CSR matrix A (rows x cols) and row-major dense blocks X
/// (cols x s), B and Y (rows x s); B may be null (then Y = alpha A X) or equal to Y (in
/// place). Each row is accumulated in `Acc` (double, or T itself), then rounded to T; no extra
/// memory beyond one row of Acc per thread. OpenMP over rows with exactly `n_threads`
/// threads (the caller caps them). Three loops, chosen by the arguments:
///   - s == 1, alpha == 1, no B: one dot product per row (static chunks of 512 rows);
///   - alpha == 1, no B, Acc == T: rows accumulated in Y directly (dynamic chunks of 256);
///   - otherwise: rows accumulated in a thread-local buffer, then scaled (dynamic, 512).
/// O(nnz s) flops.
template <typename Acc, typename T, typename I>
void csr_mm(const CsrRef<T, I>& A, const T* X, int64_t s, T* Y, int n_threads, double alpha = 1.0,
            const T* B = nullptr, double beta = 0.0);

/// One Chebyshev step on a block: Y = s1 (A X - c X) - s2 Z for a square CSR matrix A and
/// row-major blocks X, Z and Y (rows x s; Y must not alias X or Z). Each row of A X is
/// accumulated as in csr_mm (the same sums), then combined elementwise (this file is built for
/// the baseline ISA, without FMA, so nothing is contracted: the same bits for any thread count
/// and any buffer alignment). OpenMP over rows with exactly `n_threads` threads.
/// With B, the matrix is A + B, every row's entries of A before B's (a CSR matrix split at a
/// column, sorted indices): A X for all rows, then B's entries continue each row's sums (the
/// same sums, in the same order, as one pass over A + B); the rows of X that one pass reads
/// (A's, then B's columns) are half of X: a block that does not fit in L2 splits into two that do.
/// Exception: s == 4 (eigsh's filtered check) runs the per-ISA rows of check_kernel.inc (four
/// fused lanes per row, same bits under every ISA and thread count), whose sums differ in the
/// last bits from csr_mm's; with B, a row's sum is A's part (four lanes) + B's (four lanes).
template <typename I>
void csr_cheb_mm(const CsrRef<double, I>& A, const double* X, int64_t s, const double* Z, double s1,
                 double c, double s2, double* Y, int n_threads,
                 const CsrRef<double, I>* B = nullptr);

/// out = P(A) X for the Chebyshev filter P(t) = T_degree((t - c) / e) (degree >= 1): the
/// three-term recurrence y_1 = (A y_0 - c y_0) / e, y_{j+1} = 2 (A y_j - c y_j) / e - y_{j-1}
/// from y_0 = X, each step csr_cheb_mm's (the same bits as `degree` calls of it). X[i, k] at
/// X + i xr + k xc (any layout); out column-major (column k at out + k ldo); W: scratch of
/// 3 n s + 24 doubles, 8-byte aligned (the recurrence's row-major blocks, each placed on a
/// 64-byte boundary: no row of a 4-column block straddles two cache lines). For s == 4, one
/// parallel region (the steps separated by barriers) and the last step written straight into
/// out.
template <typename I>
void csr_cheb_filter(const CsrRef<double, I>& A, const double* X, int64_t xr, int64_t xc, int64_t s,
                     int degree, double c, double e, double* W, double* out, int64_t ldo,
                     int n_threads, const CsrRef<double, I>* B = nullptr);

/// Tall-skinny dense algebra of eigsh's filtered check on column-major blocks (column j of A
/// at A + j lda, n rows each). Both split the rows into fixed chunks of kTallChunk rows, so
/// the result does not depend on the thread count (n_threads threads, exactly).
constexpr int64_t kTallChunk = 512;

/// G = A^T B (p x q, row-major) for A n x p and B n x q: every chunk's p x q partial sums
/// (each over the chunk's rows in 8 lanes of fused multiply-adds, row r in lane r mod 8, the
/// lanes added in one fixed tree: check_kernel.inc, per ISA, the same bits under each), then
/// the partials added in chunk order.
void tall_gram(int64_t n, const double* A, int64_t lda, int64_t p, const double* B, int64_t ldb,
               int64_t q, double* G, int n_threads);

/// Y -= A M in place for Y n x q, A n x p and M p x q (row-major): each entry's sum over j
/// of A[i, j] M[j, c] in order of j (fused multiply-adds, per ISA), then subtracted
/// (row-parallel: no reduction across rows).
void tall_sub(int64_t n, double* Y, int64_t ldy, int64_t q, const double* A, int64_t lda, int64_t p,
              const double* M, int n_threads);

}  // namespace geoml
