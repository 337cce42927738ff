// Low-rank decomposition kernels: mode-n products and Gram matrices of dense tensors (through
// SciPy's BLAS) and OpenMP sparse-times-dense products for randomized SVD.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace geoml {

// Fortran BLAS signatures, as exported (LP64, 32-bit int) by scipy.linalg.cython_blas.
using dgemm_fn = void (*)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*,
                          double*, double*, int*);
using sgemm_fn = void (*)(char*, char*, int*, int*, int*, float*, float*, int*, float*, int*,
                          float*, float*, int*);
using dsyrk_fn = void (*)(char*, char*, int*, int*, double*, double*, int*, double*, double*, int*);
using ssyrk_fn = void (*)(char*, char*, int*, int*, float*, float*, int*, float*, float*, int*);

/// Installs the BLAS routines used by the tensor kernels. The pointers come from SciPy's
/// `cython_blas` capsules (taken in Python at import); geoml never links a BLAS itself.
void set_blas(dgemm_fn dgemm, sgemm_fn sgemm, dsyrk_fn dsyrk, ssyrk_fn ssyrk);
bool blas_ready();

/// Sizes of a C-ordered tensor seen around mode n: L = prod(dims[:n]), I = dims[n],
/// R = prod(dims[n+1:]); the tensor is then an (L, I, R) array.
struct ModeView {
  int64_t L, I, R;
};
ModeView mode_view(const std::vector<int64_t>& dims, int n);

/// Mode-n product Y = X x_n A for a C-ordered tensor X of shape `dims`: Y has shape `dims`
/// with dims[n] replaced by J, and Y_(n) = A X_(n). A is the J x I matrix given row-major, or,
/// if `a_transposed`, given as its transpose U = A^T (I x J, row-major), so Y = X x_n U^T.
/// With few output rows (J <= 32), geoml's SIMD kernels run over OpenMP tasks, reading X once
/// (skinny shapes where OpenBLAS is far from the memory bandwidth, and single-threaded while
/// Tucker holds BLAS to one thread): wide slabs (R >= 64) in tasks of 512 columns of one
/// slab, in place; R = 1 row by row (`ts_matmul`); other narrow slabs in cache-sized blocks of
/// columns of the unfolding, packed and unpacked around the same kernel. Otherwise through
/// BLAS: no unfolding is formed when R = 1
/// (one GEMM) or when there are few wide slabs (L <= 16, R >= 64: one GEMM per mode-n slab);
/// else slabs are gathered into a bounded buffer (4M entries) so that each GEMM is large and
/// BLAS is called a handful of times per mode. BLAS is called from the calling thread only
/// (it threads itself); the gathers use OpenMP.
/// Cost 2 J * numel(X) flops. Y is caller-owned, numel(X) / I * J entries.
template <typename T>
void ttm(const T* X, const std::vector<int64_t>& dims, int n, const T* A, int64_t J,
         bool a_transposed, T* Y, int n_threads);

/// Mode-n Gram matrix G = X_(n) X_(n)^T (I x I, symmetric, both triangles written). For
/// I <= 512 in geoml's SIMD loops over OpenMP tasks of one cache-sized column block each
/// (wide slabs read in place, narrow ones packed), one double accumulator per thread, summed
/// in double across blocks. Larger I by SYRK on slabs: one SYRK per slab when slabs are wide
/// (R >= 64) and either few or big enough (I^2 R >= 4M flops), else on gathered blocks as in
/// `ttm`. Cost I^2 * numel(X) flops (I^2 numel / 2 multiply-adds); the SIMD path keeps
/// O(threads * I^2) doubles. G is caller-owned, I*I entries.
template <typename T>
void mode_gram(const T* X, const std::vector<int64_t>& dims, int n, T* G, int n_threads);

/// Z = X_(n) X_(n)^T U (I x J, row-major, double) for U (I x J, row-major, J small), i.e. the
/// mode-n Gram matrix applied to U without forming it, reading X once: per cache-sized block
/// of columns of the unfolding (of one slab, in place, when R >= 64; rows of X when R = 1; else
/// packed), P = block^T U and then Z += block P (P transposed, broadcast tiles without
/// horizontal sums), in geoml's SIMD loops over OpenMP tasks (dynamic schedule), one double
/// accumulator per thread. No BLAS.
/// Cost 4 J * numel(X) flops, O(threads * I * J) extra memory. Z is caller-owned.
template <typename T>
void gram_apply(const T* X, const std::vector<int64_t>& dims, int n, const T* U, int64_t J,
                double* Z, int n_threads);

/// `gram_apply` for the last two modes at once, reading X once: Z1 = X_(N-2) X_(N-2)^T U1
/// (I1 x J1) and Z2 = X_(N-1) X_(N-1)^T U2 (I2 x J2). Per slab S (I1 x I2, the tensor seen as
/// (L, I1, I2)), Z1 += S (S^T U1) and Z2 += S^T (S U2), the slab read from cache after its
/// first product (the caller keeps slabs cache-sized). OpenMP over slabs. Same cost as the
/// two calls of `gram_apply`; Z1, Z2 caller-owned, double.
template <typename T>
void gram_apply_pair(const T* X, const std::vector<int64_t>& dims, const T* U1, int64_t J1,
                     const T* U2, int64_t J2, double* Z1, double* Z2, int n_threads);

/// Mode-n sketch Y = X_(n) W (I x s) where W has numel(X)/I rows, indexed by the other modes
/// in C order (row l*R + r for the (L, I, R) view), and s columns, row-major.
/// Cost 2 s * numel(X) flops. Y is caller-owned, I*s entries.
template <typename T>
void mode_sketch(const T* X, const std::vector<int64_t>& dims, int n, const T* W, int64_t s, T* Y,
                 int n_threads);

/// Sum of squares of n entries, accumulated in double (16 lanes, AVX2 when available), OpenMP
/// over chunks. O(n), memory-bound.
template <typename T>
double sum_squares(const T* x, int64_t n, int n_threads);

/// G = Y^T Y (l x l, row-major, double) for a tall row-major Y (m x l, l small): OpenMP over
/// blocks of 4096 rows, each summed by a vectorised (AVX2+FMA when available) rank-4-update
/// loop in T, the block sums accumulated in double. O(m l^2) flops, O(threads l^2) memory.
/// Hand-written rather than BLAS: SciPy's threaded BLAS synchronises its threads once per
/// block of the long dimension, which on a loaded machine makes these tall-skinny products
/// many times slower than one thread.
template <typename T>
void ts_gram(const T* Y, int64_t m, int64_t l, double* G, int n_threads);

/// out (m x c) = Y (m x l) M (l x c), all row-major, l and c small; OpenMP over row blocks.
/// O(m l c) flops.
template <typename T>
void ts_matmul(const T* Y, int64_t m, int64_t l, const T* M, int64_t c, T* out, int n_threads);

/// Y = A X for a CSR matrix A (m rows; indptr has m+1 entries) and a dense row-major X with
/// s columns; Y (m x s, row-major) is caller-owned. Rows are split across OpenMP threads.
/// O(nnz * s) flops, no extra memory.
template <typename T, typename I>
void csr_matmat(const T* data, const I* indices, const I* indptr, int64_t m, const T* X, int64_t s,
                T* Y, int n_threads);

/// Blocks of rows of csr_t_matmat: up to 8 (16 were 18 % slower on the bench's 10^6 x 10^4
/// product: more buffers to clear and add), at most m, and at most as many n x s buffers
/// of `item`-byte entries as fit in 256 MB (at least 1). Depends on the sizes only.
inline int64_t csr_t_blocks(int64_t m, int64_t n, int64_t s, int64_t item) {
  const int64_t bytes = std::max<int64_t>(1, n * s * item);
  return std::max<int64_t>(1, std::min<int64_t>({8, m, (int64_t(1) << 28) / bytes}));
}

/// Y = A^T X for a CSR matrix A (m x n) and dense row-major X (m x s); Y (n x s) is
/// caller-owned. A's rows in csr_t_blocks(m, n, s) fixed blocks, each scattered into its own
/// n x s buffer, the buffers summed in block order (the same bits for any thread count):
/// O(nnz * s) flops, O(blocks * n * s) extra memory.
template <typename T, typename I>
void csr_t_matmat(const T* data, const I* indices, const I* indptr, int64_t m, int64_t n,
                  const T* X, int64_t s, T* Y, int n_threads);

}  // namespace geoml
