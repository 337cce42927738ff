// Local PCA spectra: the covariance eigenvalues of every point's neighbourhood, fused.
#pragma once
#include <cstdint>

namespace geoml {

/// Eigenvalues (ascending, B x k, double) of the k x k Gram matrices Yc_b Yc_b^T / (k - 1),
/// Y_b = the rows idx[b, 0..k-1] of X (n x D, row-major) and Yc_b = Y_b minus the mean of its
/// k rows: for k <= D these are the nonzero-able covariance eigenvalues (ddof 1) of the
/// neighbourhood. Gathered, centred and multiplied in double (float32 X widened), one group
/// of 256 points at a time per thread (the Gram matrices stay in cache), the small
/// eigenproblems by geoml.spd's batched solver (spd_eigh: Householder + implicit QL, 16
/// matrices per SIMD lane group). status[b] is spd_eigh's code (SpdOk, SpdNotFinite,
/// SpdNotConverged); the caller redoes the others. OpenMP over the groups; each point's
/// result depends neither on the thread count nor on the other points. Requires 2 <= k,
/// every idx in [0, n) (checked by the caller).
template <typename T>
void local_gram_eigvalsh(const T* X, int64_t D, const int64_t* idx, int64_t B, int k, double* w,
                         int8_t* status, int n_jobs);

}  // namespace geoml
