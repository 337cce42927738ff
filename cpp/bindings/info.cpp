// Build and run-time information (geoml.show_config).
#include <string>

#include "bindings.hpp"
#include "common/common.hpp"
#include "common/simd.hpp"

namespace geoml {
namespace {

std::string simd_isa_py() {
  return simd_isa_name(simd_isa());
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
}

}  // namespace geoml
