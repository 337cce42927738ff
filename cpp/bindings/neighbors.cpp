// Bindings of the neighbors family: exact kNN search and sparse graph assembly from neighbour lists.
#include "bindings.hpp"
#include "neighbors/graph.hpp"
#include "neighbors/knn.hpp"

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



template <typename T, typename I>
py::tuple csr_py(carray<int64_t> idx, carray<T> w, int mode, int n_jobs) {
  if (idx.ndim() != 2 || w.ndim() != 2 || idx.shape(0) != w.shape(0) ||
      idx.shape(1) != w.shape(1))
    throw std::invalid_argument("indices and weights must be 2-D arrays of the same shape");
  const int64_t n = idx.shape(0), k = idx.shape(1);
  Csr<T, I> g;
  {
    py::gil_scoped_release release;
    g = neighbors_to_csr<T, I>(n, k, idx.data(), w.data(), static_cast<Symmetrize>(mode),
                               n_jobs);
  }
  return py::make_tuple(to_numpy(std::move(g.data)), to_numpy(std::move(g.indices)),
                        to_numpy(std::move(g.indptr)));
}

static void bind_graph(py::module_& m) {
  const char* doc = "neighbors_to_csr(indices, weights, mode, n_jobs) -> (data, indices, indptr)";
  m.def("neighbors_to_csr_f32_i32", &csr_py<float, int32_t>, doc);
  m.def("neighbors_to_csr_f64_i32", &csr_py<double, int32_t>, doc);
  m.def("neighbors_to_csr_f32_i64", &csr_py<float, int64_t>, doc);
  m.def("neighbors_to_csr_f64_i64", &csr_py<double, int64_t>, doc);
}

void bind_neighbors(py::module_& m) {
  bind_graph(m);
  m.def("knn_f32", &knn_py<float>, py::arg("X"), py::arg("Y"), py::arg("k"),
        py::arg("metric"), py::arg("exclude_self"), py::arg("n_jobs"),
        py::arg("verbose") = false);
  m.def("knn_f64", &knn_py<double>, py::arg("X"), py::arg("Y"), py::arg("k"),
        py::arg("metric"), py::arg("exclude_self"), py::arg("n_jobs"),
        py::arg("verbose") = false);
}

}  // namespace geoml
