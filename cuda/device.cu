#include "check.hpp"
#include "device.hpp"

namespace geoml::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver/no device" error
    return 0;
  }
  return n;
}

DeviceInfo device_info(int device) {
  cudaDeviceProp p;
  GEOML_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return {p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem};
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

__global__ void affine_kernel(float* out, int n, float a, float b) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a * static_cast<float>(i) + b;
}

std::vector<float> selftest(int n, float a, float b) {
  std::vector<float> host(static_cast<size_t>(n));
  if (n <= 0) return host;
  float* dev = nullptr;
  GEOML_CUDA_CHECK(cudaMalloc(&dev, sizeof(float) * n));
  affine_kernel<<<(n + 255) / 256, 256>>>(dev, n, a, b);
  cudaError_t launch = cudaGetLastError();
  cudaError_t copy = cudaMemcpy(host.data(), dev, sizeof(float) * n, cudaMemcpyDeviceToHost);
  cudaFree(dev);
  GEOML_CUDA_CHECK(launch);
  GEOML_CUDA_CHECK(copy);
  return host;
}

}  // namespace geoml::cuda
