// Shared helpers for geoml's C++ kernels: threading and small utilities.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace geoml {

/// Number of OpenMP threads to use for a call. `n_jobs` follows scikit-learn:
/// <= 0 or None (passed as 0) means "the OpenMP default" (OMP_NUM_THREADS, else all
/// cores); -1 means all cores; a positive value is used as is.
inline int resolve_threads(int n_jobs) {
#ifdef _OPENMP
  if (n_jobs > 0) return n_jobs;
  if (n_jobs == -1) return omp_get_num_procs();
  return omp_get_max_threads();
#else
  (void)n_jobs;
  return 1;
#endif
}

inline int max_threads() { return resolve_threads(0); }

/// Thread id inside a parallel region (0 without OpenMP).
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Compiler name and version baked in at build time.
inline std::string compiler_string() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
  return "msvc " + std::to_string(_MSC_VER);
#else
  return "unknown";
#endif
}

}  // namespace geoml
