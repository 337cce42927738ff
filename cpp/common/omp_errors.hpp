// Exceptions out of OpenMP parallel regions (see CONTRIBUTING.md, "Threads").
#pragma once
#include <atomic>
#include <exception>

namespace geoml {

/// An exception that escapes an OpenMP parallel region calls std::terminate (no unwinding
/// across the region's end): a std::bad_alloc from a per-thread scratch vector, or a throw
/// in a called helper, would kill the user's Python process. Every parallel region that can
/// throw therefore runs its throwing parts through one OmpErrors declared before it:
///
///     OmpErrors errors;
///     #pragma omp parallel num_threads(nt)
///     {
///       std::vector<double> buf;                                 // no allocation yet
///       const bool ok = errors.run([&] { buf.resize(n); });      // per-thread setup
///       #pragma omp for schedule(dynamic, 1)
///       for (int64_t b = 0; b < nb; ++b) {
///         if (!ok) continue;                                     // skip work, not the loop
///         errors.run([&] { ...work that can throw... });         // `continue` -> `return`
///       }
///     }
///     errors.rethrow();  // the first exception, on the calling thread (pybind11 maps it)
///
/// `run` keeps the first exception and skips its callable once any thread has failed; it
/// returns whether the callable ran to completion. Never skip synchronisation with it: a
/// thread that failed must still reach every barrier, `omp for` and `omp single` of the
/// region (a try/catch around a worksharing construct deadlocks the other threads), so guard
/// the per-iteration work or the per-thread setup, not the construct. Guard at the row or
/// chunk level, never around an innermost SIMD loop (the happy path of `try` costs nothing,
/// a lambda per element may). Bodies that cannot throw need no guard: they only skip their
/// work (`if (!ok) continue;`) when their thread's setup failed.
class OmpErrors {
 public:
  template <typename F>
  bool run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return false;
    try {
      f();
      return true;
    } catch (...) {
#pragma omp critical(geoml_omp_errors)
      {
        if (!first_) first_ = std::current_exception();
      }
      failed_.store(true, std::memory_order_relaxed);
      return false;
    }
  }
  /// Rethrows the first exception kept, if any; call after the region, on the calling thread.
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::exception_ptr first_;
  std::atomic<bool> failed_{false};
};

}  // namespace geoml
