// Bindings for exact kNN search.
#include "bindings.hpp"
#include "knn.hpp"

namespace geoml {

template <typename T>
py::tuple knn_py(carray<T> X, py::object Y, int64_t k, int metric, bool exclude_self,
                 int n_jobs, bool verbose) {
  if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D");
  const int64_t n = X.shape(0), d = X.shape(1);
  carray<T> Yarr;
  const T* Q = nullptr;
  int64_t m = n;
  if (!Y.is_none()) {
    Yarr = Y.cast<carray<T>>();
    if (Yarr.ndim() != 2 || Yarr.shape(1) != d)
      throw std::invalid_argument("Y must be 2-D with the same number of columns as X");
    m = Yarr.shape(0);
    Q = Yarr.data();
  }
  py::array_t<int64_t> idx({m, k});
  py::array_t<T> dist({m, k});
  int64_t* pi = idx.mutable_data();
  T* pd = dist.mutable_data();
  const T* px = X.data();
  {
    py::gil_scoped_release release;
    knn_search<T>(px, n, Q, m, d, k, static_cast<Metric>(metric), exclude_self, n_jobs, pi,
                  pd, verbose);
  }
  return py::make_tuple(idx, dist);
}

void bind_knn(py::module_& m) {
  m.def("knn_f32", &knn_py<float>, py::arg("X"), py::arg("Y"), py::arg("k"),
        py::arg("metric"), py::arg("exclude_self"), py::arg("n_jobs"),
        py::arg("verbose") = false);
  m.def("knn_f64", &knn_py<double>, py::arg("X"), py::arg("Y"), py::arg("k"),
        py::arg("metric"), py::arg("exclude_self"), py::arg("n_jobs"),
        py::arg("verbose") = false);
}

}  // namespace geoml
