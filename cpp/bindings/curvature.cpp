// Bindings for Ollivier-Ricci and Forman-Ricci curvature.
#include "curvature/curvature.hpp"
#include "bindings.hpp"

namespace geoml {
namespace {

CsrGraph as_graph(const carray<int64_t>& indptr, const carray<int64_t>& indices,
                  const carray<double>& weights) {
  const int64_t n = indptr.shape(0) - 1;
  if (n < 0 || indices.shape(0) != weights.shape(0) || indptr.data()[n] != indices.shape(0))
    throw std::invalid_argument("inconsistent CSR graph arrays");
  return {n, indptr.data(), indices.data(), weights.data()};
}

OrcOptions make_orc_options(double alpha, double base, double exp_power, int64_t nbr_topk,
                            OrcMethod method, double eps, double tol, int64_t max_iter,
                            bool fast_path) {
  OrcOptions o;
  o.alpha = alpha;
  o.base = base;
  o.exp_power = exp_power;
  o.nbr_topk = nbr_topk;
  o.method = method;
  o.eps = eps;
  o.tol = tol;
  o.max_iter = max_iter;
  o.fast_path = fast_path;
  return o;
}

py::tuple ollivier_ricci_py(carray<int64_t> indptr, carray<int64_t> indices, carray<double> weights,
                            carray<int64_t> eu, carray<int64_t> ev, OrcOptions o, int n_jobs) {
  const CsrGraph g = as_graph(indptr, indices, weights);
  const int64_t ne = eu.shape(0);
  if (ev.shape(0) != ne) throw std::invalid_argument("eu and ev differ in length");
  o.n_threads = n_jobs;
  py::array_t<double> kappa(ne), dist(ne);
  py::array_t<int> status(ne);
  double* pk = kappa.mutable_data();
  double* pd = dist.mutable_data();
  int* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    ollivier_ricci(g, ne, eu.data(), ev.data(), o, pk, pd, ps);
  }
  return py::make_tuple(kappa, dist, status);
}

py::tuple ollivier_ricci_directed_py(carray<int64_t> indptr, carray<int64_t> indices,
                                     carray<double> weights, carray<int64_t> in_indptr,
                                     carray<int64_t> in_indices, carray<double> in_weights,
                                     carray<int64_t> eu, carray<int64_t> ev, OrcOptions o,
                                     int n_jobs) {
  const CsrGraph g = as_graph(indptr, indices, weights);
  const CsrGraph gin = as_graph(in_indptr, in_indices, in_weights);
  const int64_t ne = eu.shape(0);
  if (ev.shape(0) != ne) throw std::invalid_argument("eu and ev differ in length");
  o.n_threads = n_jobs;
  py::array_t<double> kappa(ne), dist(ne);
  py::array_t<int> status(ne);
  double* pk = kappa.mutable_data();
  double* pd = dist.mutable_data();
  int* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    ollivier_ricci_directed(g, gin, ne, eu.data(), ev.data(), o, pk, pd, ps);
  }
  return py::make_tuple(kappa, dist, status);
}

py::array_t<double> forman_ricci_py(carray<int64_t> indptr, carray<int64_t> indices,
                                    carray<double> weights, carray<int64_t> eu, carray<int64_t> ev,
                                    bool augmented, int n_jobs) {
  const CsrGraph g = as_graph(indptr, indices, weights);
  const int64_t ne = eu.shape(0);
  if (ev.shape(0) != ne) throw std::invalid_argument("eu and ev differ in length");
  py::array_t<double> out(ne);
  double* po = out.mutable_data();
  {
    py::gil_scoped_release release;
    forman_ricci(g, ne, eu.data(), ev.data(), augmented, n_jobs, po);
  }
  return out;
}

}  // namespace

void bind_curvature(py::module_& m) {
  py::native_enum<OrcMethod>(m, "OrcMethod", "enum.Enum",
                             "Optimal-transport solver of Ollivier-Ricci curvature.")
      .value("exact", OrcMethod::Exact)
      .value("sinkhorn", OrcMethod::Sinkhorn)
      .value("lower_bound", OrcMethod::LowerBound)
      .value("atd", OrcMethod::ATD)
      .finalize();
  const OrcOptions d;
  py::class_<OrcOptions>(m, "OrcOptions", "Ollivier-Ricci hyper-parameters (curvature.hpp).")
      .def(py::init(&make_orc_options), py::kw_only(), py::arg("alpha") = d.alpha,
           py::arg("base") = d.base, py::arg("exp_power") = d.exp_power,
           py::arg("nbr_topk") = d.nbr_topk, py::arg("method") = d.method, py::arg("eps") = d.eps,
           py::arg("tol") = d.tol, py::arg("max_iter") = d.max_iter,
           py::arg("fast_path") = d.fast_path,
           "Options from keywords (the defaults are the C++ ones).")
      .def_readwrite("alpha", &OrcOptions::alpha, "Mass kept on the node itself.")
      .def_readwrite("base", &OrcOptions::base, "Neighbour weight base^(-w^exp_power).")
      .def_readwrite("exp_power", &OrcOptions::exp_power, "Exponent of the edge weight.")
      .def_readwrite("nbr_topk", &OrcOptions::nbr_topk, "Heaviest neighbours kept (0: all).")
      .def_readwrite("method", &OrcOptions::method, "Optimal-transport solver.")
      .def_readwrite("eps", &OrcOptions::eps, "Entropic regularisation (Sinkhorn).")
      .def_readwrite("tol", &OrcOptions::tol, "Sinkhorn L1 marginal error to stop at.")
      .def_readwrite("max_iter", &OrcOptions::max_iter,
                     "Sinkhorn iterations (0: 10000) / simplex pivots (0: no limit).")
      .def_readwrite("fast_path", &OrcOptions::fast_path,
                     "Shared distance rows, no merging of small weighted problems.\n"
                     "False: per-thread row caches and merging (the old path, for tests).");
  m.def("ollivier_ricci", &ollivier_ricci_py, py::arg("indptr"), py::arg("indices"),
        py::arg("weights"), py::arg("eu"), py::arg("ev"), py::kw_only(), py::arg("options"),
        py::arg("n_jobs") = 0,
        "Ollivier-Ricci curvature of the edges (eu, ev) of a CSR graph -> (kappa, dist, status).");
  m.def("ollivier_ricci_directed", &ollivier_ricci_directed_py, py::arg("indptr"),
        py::arg("indices"), py::arg("weights"), py::arg("in_indptr"), py::arg("in_indices"),
        py::arg("in_weights"), py::arg("eu"), py::arg("ev"), py::kw_only(), py::arg("options"),
        py::arg("n_jobs") = 0,
        "Ollivier-Ricci curvature of the arcs (eu, ev) of a directed CSR graph -> (kappa, dist, "
        "status).");
  m.def("forman_ricci", &forman_ricci_py, py::arg("indptr"), py::arg("indices"), py::arg("weights"),
        py::arg("eu"), py::arg("ev"), py::kw_only(), py::arg("augmented"), py::arg("n_jobs") = 0,
        "Forman-Ricci curvature of the edges (eu, ev) of a CSR graph.");
}

}  // namespace geoml
