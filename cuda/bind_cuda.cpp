// The geoml._cuda extension module (built only when a CUDA compiler is found).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "device.hpp"
#include "knn.hpp"
#include "spmv.hpp"

namespace py = pybind11;
using namespace geoml::cuda;

namespace {

template <typename T>
T* ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

/// Device pointers, shapes and the stream arrive as integers (read from
/// __cuda_array_interface__ in Python); the launches are asynchronous on that stream.
template <typename T>
void bind_knn_dtype(py::module_& m, const char* suffix) {
  m.def((std::string("knn_prep_") + suffix).c_str(),
        [](int kind, uintptr_t in, uintptr_t out, uintptr_t bias, uintptr_t mean, int64_t rows,
           int64_t d, int device, uintptr_t stream) {
          knn_prep<T>(kind, ptr<const T>(in), ptr<T>(out), ptr<T>(bias), ptr<const double>(mean),
                      rows, d, device, stream);
        },
        py::arg("kind"), py::arg("inp"), py::arg("out"), py::arg("bias"), py::arg("mean"),
        py::arg("rows"), py::arg("d"), py::arg("device"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def((std::string("knn_search_") + suffix).c_str(),
        [](uintptr_t qs, uintptr_t qorig, int64_t mq, uintptr_t xs, uintptr_t xorig, int64_t n,
           int64_t d, uintptr_t xbias, int metric, int64_t k, bool exclude_self, int splits,
           uintptr_t ws_scores, uintptr_t ws_index, uintptr_t counts, uintptr_t final_counts,
           uintptr_t dist, uintptr_t index, int device, uintptr_t stream) {
          if (metric < 0 || metric > 3) throw std::invalid_argument("knn (GPU): bad metric code");
          knn_search<T>(ptr<const T>(qs), ptr<const T>(qorig), mq, ptr<const T>(xs),
                        ptr<const T>(xorig), n, d, ptr<const T>(xbias), static_cast<Metric>(metric),
                        k, exclude_self, splits, ptr<T>(ws_scores), ptr<int64_t>(ws_index),
                        ptr<int>(counts), ptr<int>(final_counts), ptr<T>(dist),
                        ptr<int64_t>(index), device, stream);
        },
        py::arg("qs"), py::arg("qorig"), py::arg("m"), py::arg("xs"), py::arg("xorig"),
        py::arg("n"), py::arg("d"), py::arg("xbias"), py::arg("metric"), py::arg("k"),
        py::arg("exclude_self"), py::arg("splits"), py::arg("ws_scores"), py::arg("ws_index"),
        py::arg("counts"), py::arg("final_counts"), py::arg("dist"), py::arg("index"),
        py::arg("device"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}

template <typename T, typename I>
void bind_spmv(py::module_& m, const char* name) {
  m.def(name,
        [](int64_t n, uintptr_t indptr, uintptr_t indices, uintptr_t data, uintptr_t x,
           uintptr_t y, int device, uintptr_t stream) {
          csr_spmv<T, I>(n, ptr<const I>(indptr), ptr<const I>(indices), ptr<const T>(data),
                         ptr<const T>(x), ptr<T>(y), device, stream);
        },
        py::arg("n"), py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("x"),
        py::arg("y"), py::arg("device"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace

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

  m.attr("knn_max_k") = kKnnMaxK;
  m.def("knn_plan", &knn_plan, py::arg("m"), py::arg("n"), py::arg("k"), py::arg("is_double"),
        py::arg("device"), "Data splits for a search (workspace: S*m*k when S > 1).");
  bind_knn_dtype<float>(m, "f32");
  bind_knn_dtype<double>(m, "f64");
  bind_spmv<float, int32_t>(m, "csr_spmv_f32_i32");
  bind_spmv<double, int32_t>(m, "csr_spmv_f64_i32");
  bind_spmv<float, int64_t>(m, "csr_spmv_f32_i64");
  bind_spmv<double, int64_t>(m, "csr_spmv_f64_i64");
}
