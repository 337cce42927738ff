// CSR SpMV kernel (see spmv.hpp).
#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>

#include "check.hpp"
#include "spmv.hpp"

namespace geoml::cuda {
namespace {

template <typename T, typename I>
__global__ void csr_spmv_kernel(int64_t n, const I* __restrict__ indptr,
                                const I* __restrict__ indices, const T* __restrict__ data,
                                const T* __restrict__ x, T* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (row >= n) return;  // warp-uniform: blockDim is a multiple of 32
  const int64_t beg = indptr[row], end = indptr[row + 1];
  T s = T(0);
  for (int64_t e = beg + lane; e < end; e += 32) s += data[e] * x[indices[e]];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) y[row] = s;
}

}  // namespace

template <typename T, typename I>
void csr_spmv(int64_t n, const I* indptr, const I* indices, const T* data, const T* x, T* y,
              int device, uintptr_t stream) {
  if (n <= 0) return;
  int prev = -1;
  GEOML_CUDA_CHECK(cudaGetDevice(&prev));
  if (prev != device) GEOML_CUDA_CHECK(cudaSetDevice(device));
  constexpr int threads = 256;  // 8 rows per block
  const int64_t blocks = (n + threads / 32 - 1) / (threads / 32);
  if (blocks > INT_MAX) throw std::invalid_argument("csr_spmv: too many rows for one grid");
  csr_spmv_kernel<T, I>
      <<<static_cast<unsigned>(blocks), threads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
          n, indptr, indices, data, x, y);
  const cudaError_t launch = cudaGetLastError();
  if (prev != device) cudaSetDevice(prev);
  GEOML_CUDA_CHECK(launch);
}

template void csr_spmv<float, int32_t>(int64_t, const int32_t*, const int32_t*, const float*,
                                       const float*, float*, int, uintptr_t);
template void csr_spmv<double, int32_t>(int64_t, const int32_t*, const int32_t*, const double*,
                                        const double*, double*, int, uintptr_t);
template void csr_spmv<float, int64_t>(int64_t, const int64_t*, const int64_t*, const float*,
                                       const float*, float*, int, uintptr_t);
template void csr_spmv<double, int64_t>(int64_t, const int64_t*, const int64_t*, const double*,
                                        const double*, double*, int, uintptr_t);

}  // namespace geoml::cuda
