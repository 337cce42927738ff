// Error checking for CUDA runtime calls and kernel launches.
#pragma once
#include <cuda_runtime.h>

#include <new>
#include <stdexcept>
#include <string>

namespace geoml::cuda {

/// Throws std::bad_alloc for out-of-memory (MemoryError in Python), std::runtime_error with
/// file:line and the CUDA message otherwise.
inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  if (err == cudaErrorMemoryAllocation) throw std::bad_alloc();
  throw std::runtime_error(std::string("CUDA error at ") + file + ":" + std::to_string(line) +
                           " in " + what + ": " + cudaGetErrorString(err));
}

}  // namespace geoml::cuda

#define GEOML_CUDA_CHECK(call) ::geoml::cuda::check((call), #call, __FILE__, __LINE__)
/// After a kernel launch: reports launch-configuration errors at the launch site.
#define GEOML_CUDA_CHECK_LAUNCH() GEOML_CUDA_CHECK(cudaGetLastError())
