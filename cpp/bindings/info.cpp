// Build and run-time information (geoml.show_config), and a test-only probe of OmpErrors.
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"

namespace geoml {
namespace {

std::string simd_isa_py() {
  return simd_isa_name(simd_isa());
}

// A guarded region shaped like the kernels' (per-thread setup, two worksharing loops): `where`
// = "setup" throws std::bad_alloc in the last thread's setup, "loop" a std::runtime_error in
// one iteration of the first loop, "none" nothing. Returns the iterations run (2 n).
int64_t omp_error_probe(int n_jobs, const std::string& where) {
  if (where != "none" && where != "setup" && where != "loop")
    throw std::invalid_argument("_omp_error_probe: where must be 'none', 'setup' or 'loop'");
  const int nt = resolve_threads(n_jobs);
  const int64_t n = 1000;
  std::vector<int64_t> hits(static_cast<size_t>(2 * n), 0);
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<int64_t> scratch;
    const bool ok = errors.run([&] {
      if (where == "setup" && thread_id() == thread_count() - 1) throw std::bad_alloc();
      scratch.assign(8, 1);
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      if (!ok) continue;
      errors.run([&] {
        if (where == "loop" && i == n / 2)
          throw std::runtime_error("_omp_error_probe: a throw in iteration " + std::to_string(i));
        hits[static_cast<size_t>(i)] = scratch[0];
      });
    }
    // the threads that failed still reach this loop and its barrier (no deadlock)
#pragma omp for schedule(static)
    for (int64_t i = n; i < 2 * n; ++i)
      if (ok) hits[static_cast<size_t>(i)] = scratch[0];
  }
  errors.rethrow();
  int64_t total = 0;
  for (const int64_t h : hits) total += h;
  return total;
}

}  // namespace

void bind_info(py::module_& m) {
  m.attr("__version__") = GEOML_VERSION;
  m.def("compiler", &compiler_string, "Compiler that built the module.");
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  m.def("max_threads", &max_threads, "OpenMP threads a kernel uses by default.");
  m.def("idle_cores", &idle_cores,
        "Cores not busy with other processes now (caps the default thread count).");
  m.def("simd_isa", &simd_isa_py, "SIMD instruction set the kernels dispatch to on this CPU.");
  m.def("set_simd_isa", &set_simd_isa, py::arg("name"),
        "Force 'avx512', 'avx2' or 'generic' kernels ('auto' restores detection).");
  m.def("simd_vnni", &simd_vnni,
        "Whether kernels use AVX-512 VNNI (AVX-512 in force, the CPU has it, not switched off).");
  m.def("set_simd_vnni", &set_simd_vnni, py::arg("allow"),
        "False: no AVX-512 VNNI kernels (the AVX-512 ones instead); True: restores detection.");
  m.def("_omp_error_probe", &omp_error_probe, py::arg("n_jobs"), py::arg("where"),
        py::call_guard<py::gil_scoped_release>(),
        "Test only: a throw in one thread of a region guarded by OmpErrors (where: see info.cpp).");
}

}  // namespace geoml
