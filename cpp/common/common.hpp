// Shared helpers for geoml's C++ kernels: threading and small utilities.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace geoml {

/// Cores not busy with other processes right now, in [1, cores available to the process]:
/// the cores minus the tasks running on the machine that are not this process's (Linux:
/// the running count of /proc/loadavg minus this process's running threads, read from
/// /proc/self/task; refreshed at most every 50 ms, ~50 us a refresh). Elsewhere, or with
/// GEOML_LOAD_AWARE=0 in the environment, all the cores. See docs/design/eigensolver.md
/// ("Under load"): a kernel whose OpenMP thread loses its core to another process stalls
/// at every barrier, so the default thread count never exceeds the idle cores.
int idle_cores();

/// `want` capped by idle_cores(); `want` itself with GEOML_LOAD_AWARE=0 or off Linux.
int load_capped(int want);

/// Number of OpenMP threads to use for a call. `n_jobs` follows scikit-learn:
/// <= 0 or None (passed as 0) means "the OpenMP default" (OMP_NUM_THREADS, else all
/// cores); -1 means all cores; a positive value is used as is. The two defaults are capped
/// by idle_cores() (a busy machine gets fewer threads; results do not depend on the count).
inline int resolve_threads(int n_jobs) {
#ifdef _OPENMP
  if (n_jobs > 0) return n_jobs;
  const int want = n_jobs == -1 ? omp_get_num_procs() : omp_get_max_threads();
  return want <= 1 ? 1 : load_capped(want);
#else
  (void)n_jobs;
  return 1;
#endif
}

inline int max_threads() {
  return resolve_threads(0);
}

/// Thread id inside a parallel region (0 without OpenMP).
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Threads of the enclosing parallel region (1 without OpenMP).
inline int thread_count() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
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

/// Progress line on stderr for long kernels, at most one every 2 seconds (or every
/// GEOML_PROGRESS_SECONDS). Call report() from one thread only (plain stderr writes, no GIL).
class Progress {
 public:
  explicit Progress(const char* what)
      : what_(what), every_(interval()), start_(clock::now()), last_(start_) {}
  void report(int64_t done, int64_t total) {
    const auto now = clock::now();
    if (std::chrono::duration<double>(now - last_).count() < every_) return;
    last_ = now;
    const double el = std::chrono::duration<double>(now - start_).count();
    const double frac = total > 0 ? double(done) / double(total) : 1.0;
    std::fprintf(stderr, "[geoml] %s: %5.1f%%, %.0f s elapsed, ~%.0f s left\n", what_, 100.0 * frac,
                 el, frac > 0 ? el * (1.0 - frac) / frac : 0.0);
    std::fflush(stderr);
  }
  void done() {
    const double el = std::chrono::duration<double>(clock::now() - start_).count();
    if (el >= every_) {
      std::fprintf(stderr, "[geoml] %s: done in %.1f s\n", what_, el);
      std::fflush(stderr);
    }
  }

 private:
  static double interval() {
    const char* env = std::getenv("GEOML_PROGRESS_SECONDS");
    return env && *env ? std::atof(env) : 2.0;
  }
  using clock = std::chrono::steady_clock;
  const char* what_;
  double every_;
  clock::time_point start_, last_;
};

}  // namespace geoml
