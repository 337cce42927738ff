// The geoml._cuda extension module (built only when a CUDA compiler is found).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "device.hpp"

namespace py = pybind11;
using namespace geoml::cuda;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "geoml's CUDA kernels (private: use the geoml package)";
  m.attr("archs") = GEOML_CUDA_ARCHS;
  m.def("device_count", &device_count);
  m.def("runtime_version", &runtime_version);
  m.def("driver_version", &driver_version);
  m.def("device_info", [](int dev) {
    DeviceInfo i = device_info(dev);
    py::dict d;
    d["name"] = i.name;
    d["compute_capability"] = py::make_tuple(i.major, i.minor);
    d["multiprocessors"] = i.multiprocessors;
    d["total_memory"] = i.total_memory;
    return d;
  });
  m.def("selftest", &selftest, py::arg("n") = 1000, py::arg("a") = 2.0f, py::arg("b") = 1.0f,
        py::call_guard<py::gil_scoped_release>());
}
