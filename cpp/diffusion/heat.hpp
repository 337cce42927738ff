// Heat-kernel actions exp(-t L) X on a graph by Chebyshev expansion, for several times at once.
#pragma once
#include <cstdint>

#include "common/sparse.hpp"

namespace geoml {

/// Terms k_begin..k_end of the Chebyshev series Y_j = sum_k coef[j, k] T_k(S) X for n_t sets of
/// coefficients at once (one per diffusion time), where S is a CSR matrix (n x n) whose
/// spectrum lies in [-1, 1] (the Laplacian mapped there: S = (2 / lmax) L - I) and T_k the
/// Chebyshev polynomials, built by the three-term recurrence T_{k+1} = 2 S T_k - T_{k-1} (one
/// pass over S for all m columns per order, the row loop a per-ISA kernel: heat_kernel.inc),
/// in place: T_k lives in buf[k % 2]
/// (buf0, buf1: caller's (n x m) blocks), so a later call with k_begin = previous k_end + 1
/// continues the series (the order can be raised without starting again). k_begin == 0
/// initialises Y_j = coef[j, 0] X and buf0 = X; otherwise Y and the buffers must hold the
/// state the previous call left. X is row-major (n x m); coef is row-major (n_t x stride) with
/// stride > k_end; Y is row-major (n_t x n x m). Rows accumulate in double; the
/// recurrence states are kept in T. Cost: one product of S with an (n x m) block per order
/// (O(nnz m) flops) plus O(n_t n m) for the sums. OpenMP over rows with `n_threads` threads
/// (0: the OpenMP default; fewer when the product is small: ~1e5 flops per thread at least);
/// the result does not depend on the thread count. Throws std::invalid_argument for
/// 0 > k_begin, k_end < k_begin, stride <= k_end or n_t < 1.
template <typename T, typename I>
void heat_chebyshev(const CsrRef<T, I>& S, const T* X, int64_t m, const double* coef, int n_t,
                    int64_t stride, int64_t k_begin, int64_t k_end, T* Y, T* buf0, T* buf1,
                    int n_threads);

}  // namespace geoml
