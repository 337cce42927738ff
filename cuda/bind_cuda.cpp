// The geoml._cuda extension module (built only when a CUDA compiler is found).
//
// Same binding contract as geoml._core (cpp/bindings/bindings.hpp): named arguments, one-line
// docs, no inline lambdas, enums bound once. Device pointers, shapes and the stream arrive as
// integers (read from __cuda_array_interface__ in Python), so the element types cannot pick an
// overload: they come as NumPy dtypes (`dtype`, `index_dtype`) and one helper dispatches them.
// The kNN metric is geoml._core.Metric (cpp/common/enums.hpp), registered by importing _core.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
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

template <typename T>
struct tag {
  using type = T;
};

/// f(tag<T>{}) for the dtype `dt` among Ts (e.g. float, double), else a TypeError naming `what`.
template <typename... Ts, typename F>
void with_dtype(const py::dtype& dt, const char* what, F&& f) {
  bool done = false;
  ((!done && dt.is(py::dtype::of<Ts>()) ? (f(tag<Ts>{}), done = true) : false), ...);
  if (!done)
    throw py::type_error(std::string(what) + ": unsupported dtype " +
                         py::str(static_cast<py::handle>(dt)).cast<std::string>());
}

/// The launches are asynchronous on `stream`; see knn.hpp.
void knn_prep_py(KnnPrep kind, uintptr_t inp, uintptr_t out, uintptr_t bias, uintptr_t mean,
                 int64_t rows, int64_t d, int device, uintptr_t stream, py::dtype dtype) {
  with_dtype<float, double>(dtype, "knn_prep", [&](auto t) {
    using T = typename decltype(t)::type;
    py::gil_scoped_release release;
    knn_prep<T>(static_cast<int>(kind), ptr<const T>(inp), ptr<T>(out), ptr<T>(bias),
                ptr<const double>(mean), rows, d, device, stream);
  });
}

void knn_search_py(uintptr_t qs, uintptr_t qorig, int64_t m, uintptr_t xs, uintptr_t xorig,
                   int64_t n, int64_t d, uintptr_t xbias, geoml::Metric metric, int64_t k,
                   bool exclude_self, int splits, uintptr_t ws_scores, uintptr_t ws_index,
                   uintptr_t counts, uintptr_t final_counts, uintptr_t dist, uintptr_t index,
                   int device, uintptr_t stream, py::dtype dtype) {
  with_dtype<float, double>(dtype, "knn_search", [&](auto t) {
    using T = typename decltype(t)::type;
    py::gil_scoped_release release;
    knn_search<T>(ptr<const T>(qs), ptr<const T>(qorig), m, ptr<const T>(xs), ptr<const T>(xorig),
                  n, d, ptr<const T>(xbias), metric, k, exclude_self, splits, ptr<T>(ws_scores),
                  ptr<int64_t>(ws_index), ptr<int>(counts), ptr<int>(final_counts), ptr<T>(dist),
                  ptr<int64_t>(index), device, stream);
  });
}

void csr_spmv_py(int64_t n, uintptr_t indptr, uintptr_t indices, uintptr_t data, uintptr_t x,
                 uintptr_t y, int device, uintptr_t stream, py::dtype dtype,
                 py::dtype index_dtype) {
  with_dtype<float, double>(dtype, "csr_spmv", [&](auto t) {
    using T = typename decltype(t)::type;
    with_dtype<int32_t, int64_t>(index_dtype, "csr_spmv", [&](auto i) {
      using I = typename decltype(i)::type;
      py::gil_scoped_release release;
      csr_spmv<T, I>(n, ptr<const I>(indptr), ptr<const I>(indices), ptr<const T>(data),
                     ptr<const T>(x), ptr<T>(y), device, stream);
    });
  });
}

py::dict device_info_py(int device) {
  DeviceInfo i = device_info(device);
  py::dict d;
  d["name"] = i.name;
  d["compute_capability"] = py::make_tuple(i.major, i.minor);
  d["multiprocessors"] = i.multiprocessors;
  d["total_memory"] = i.total_memory;
  return d;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "geoml's CUDA kernels (private: use the geoml package)";
  py::module_::import("geoml._core");  // registers geoml._core.Metric, used by knn_search
  m.attr("archs") = GEOML_CUDA_ARCHS;
  m.def("device_count", &device_count, "Visible CUDA devices (0 without a driver or device).");
  m.def("runtime_version", &runtime_version, "CUDA runtime version.");
  m.def("driver_version", &driver_version, "CUDA driver version (0 without a driver).");
  m.def("device_info", &device_info_py, py::arg("device"),
        "Name, compute capability, multiprocessors and memory of a device.");
  m.def("selftest", &selftest, py::arg("n") = 1000, py::arg("a") = 2.0f, py::arg("b") = 1.0f,
        py::call_guard<py::gil_scoped_release>(),
        "out[i] = a * i + b computed on the device: proves an architecture of the build runs.");

  py::native_enum<KnnPrep>(m, "KnnPrep", "enum.Enum", "What knn_prep does to the rows.")
      .value("centre", KnnPrep::Centre, "subtract the mean (and write squared norms to bias)")
      .value("normalise", KnnPrep::Normalise, "scale to unit Euclidean norm")
      .finalize();
  m.attr("knn_max_k") = kKnnMaxK;
  m.def("knn_plan", &knn_plan, py::arg("m"), py::arg("n"), py::arg("k"), py::arg("is_double"),
        py::arg("device"), "Data splits for a search (workspace: S*m*k when S > 1).");
  m.def("knn_prep", &knn_prep_py, py::arg("kind"), py::arg("inp"), py::arg("out"), py::arg("bias"),
        py::arg("mean"), py::arg("rows"), py::arg("d"), py::arg("device"), py::arg("stream"),
        py::kw_only(), py::arg("dtype"),
        "Centre or normalise rows x d device rows for scoring (asynchronous on stream).");
  m.def("knn_search", &knn_search_py, py::arg("qs"), py::arg("qorig"), py::arg("m"), py::arg("xs"),
        py::arg("xorig"), py::arg("n"), py::arg("d"), py::arg("xbias"), py::arg("metric"),
        py::arg("k"), py::arg("exclude_self"), py::arg("splits"), py::arg("ws_scores"),
        py::arg("ws_index"), py::arg("counts"), py::arg("final_counts"), py::arg("dist"),
        py::arg("index"), py::arg("device"), py::arg("stream"), py::kw_only(), py::arg("dtype"),
        "Exact kNN of device rows (asynchronous on stream).");
  m.def("csr_spmv", &csr_spmv_py, py::arg("n"), py::arg("indptr"), py::arg("indices"),
        py::arg("data"), py::arg("x"), py::arg("y"), py::arg("device"), py::arg("stream"),
        py::kw_only(), py::arg("dtype"), py::arg("index_dtype"),
        "y = A x for an n-row device CSR matrix (asynchronous on stream).");
}
