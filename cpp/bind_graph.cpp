// Bindings for sparse graph assembly from neighbour lists.
#include "bindings.hpp"
#include "graph.hpp"

namespace geoml {

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

void bind_graph(py::module_& m) {
  const char* doc = "neighbors_to_csr(indices, weights, mode, n_jobs) -> (data, indices, indptr)";
  m.def("neighbors_to_csr_f32_i32", &csr_py<float, int32_t>, doc);
  m.def("neighbors_to_csr_f64_i32", &csr_py<double, int32_t>, doc);
  m.def("neighbors_to_csr_f32_i64", &csr_py<float, int64_t>, doc);
  m.def("neighbors_to_csr_f64_i64", &csr_py<double, int64_t>, doc);
}

}  // namespace geoml
