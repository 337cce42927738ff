// Device queries and a self-test kernel for geoml._cuda.
#pragma once
#include <string>
#include <vector>

namespace geoml::cuda {

/// Number of visible CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();

struct DeviceInfo {
  std::string name;
  int major, minor, multiprocessors;
  size_t total_memory;
};
DeviceInfo device_info(int device);

int runtime_version();
/// 0 when no driver is installed.
int driver_version();

/// Runs a kernel writing out[i] = a * i + b for i < n on the device and copies it back:
/// proves the build's architectures include one this GPU can run.
std::vector<float> selftest(int n, float a, float b);

}  // namespace geoml::cuda
