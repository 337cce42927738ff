// Sparse matrix-vector product on the GPU (CSR), for the Lanczos eigensolver.
#pragma once
#include <cstdint>

namespace geoml::cuda {

/// y = A x for an n-row CSR matrix (indptr: n+1 entries, indices/data: nnz) on `stream`,
/// one warp per row (lanes stride over the row's entries, then a shuffle reduction in T).
/// Device pointers owned by the caller; asynchronous. O(nnz + n).
template <typename T, typename I>
void csr_spmv(int64_t n, const I* indptr, const I* indices, const T* data, const T* x, T* y,
              int device, uintptr_t stream);

}  // namespace geoml::cuda
