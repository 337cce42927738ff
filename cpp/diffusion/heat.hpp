// Heat-kernel actions exp(-t L) X on a graph by Chebyshev expansion, for several times at once.
#pragma once
#include <cstdint>

#include "common/sparse.hpp"

namespace geoml {

/// Chebyshev series Y_j = sum_{k=0..K} coef[j, k] T_k(S) X for n_t sets of coefficients at once
/// (one per diffusion time), where S is a CSR matrix (n x n) whose spectrum lies in [-1, 1]
/// (the Laplacian mapped there: S = (2 / lmax) L - I) and T_k the Chebyshev polynomials,
/// built by the three-term recurrence T_{k+1} = 2 S T_k - T_{k-1} with csr_mm (one pass over
/// S for all m columns per order). X is row-major (n x m); coef is row-major (n_t x (K + 1));
/// Y is row-major (n_t x n x m). Rows accumulate in double (Acc) inside csr_mm; the recurrence
/// states are kept in T. Cost: K products of S with an (n x m) block (O(K nnz m) flops) plus
/// O(K n_t n m) for the sums; memory: two (n x m) blocks of T beyond X and Y. OpenMP over rows
/// with `n_threads` threads (0: the OpenMP default; fewer when the product is small: ~1e5
/// flops per thread at least); the result does not depend on the thread count. Throws
/// std::invalid_argument when K < 0 or n_t < 1.
template <typename T, typename I>
void heat_chebyshev(const CsrRef<T, I>& S, const T* X, int64_t m, const double* coef, int n_t,
                    int K, T* Y, int n_threads);

}  // namespace geoml
