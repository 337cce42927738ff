// Bindings for Ollivier-Ricci and Forman-Ricci curvature.
#include "curvature/curvature.hpp"
#include "bindings.hpp"

#include <limits>
#include <vector>

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

/// networkx's dict-of-dicts adjacency (Graph._adj) read in one C-level pass, when it is the plain
/// form: nodes 0..n-1 (exact ints, in that order), exact-int neighbour keys, exact-dict edge
/// data, weights exact floats or ints. Returns (deg, cols, w, any_data): each node's degree, the
/// neighbours in adjacency order, data.get(weight, 1.0) (ints as float(i)) of every entry (u, v)
/// with u < v (NaN at the others: networkx shares one dict between (u, v) and (v, u), and the
/// caller copies the weights across when the adjacency is symmetric), and whether some entry has
/// attributes (its dict is not empty; the caller passes no empty `weight`, whose dicts would not
/// count as attributes there); None for anything else (the caller's Python path reads it then). The
/// loads are cache misses (scattered Python objects): each node's entries are collected first and
/// their objects prefetched, so that the misses overlap. No Python code runs between the reads
/// (edge dicts with keys other than exact str take the Python path), so the borrowed references
/// stay valid.
py::object nx_adjacency_py(const py::dict& adj, const py::str& weight) {
  PyObject* a = adj.ptr();
  PyObject* key = weight.ptr();
  if (!PyUnicode_CheckExact(key)) return py::none();
  const Py_ssize_t n = PyDict_Size(a);
  py::array_t<int64_t> deg(n);
  int64_t* pd = deg.mutable_data();
  Py_ssize_t pos = 0, k = 0, total = 0;
  PyObject *u, *nbrs;
  while (PyDict_Next(a, &pos, &u, &nbrs)) {
    if (!PyLong_CheckExact(u) || PyLong_AsSsize_t(u) != k || !PyDict_CheckExact(nbrs)) {
      PyErr_Clear();  // a huge int key
      return py::none();
    }
    pd[k++] = PyDict_Size(nbrs);
    total += pd[k - 1];
  }
  py::array_t<int64_t> cols(total);
  py::array_t<double> w(total);
  int64_t* pc = cols.mutable_data();
  double* pw = w.mutable_data();
  bool any_data = false;
  Py_ssize_t t = 0;
  std::vector<PyObject*> vs, ds;
  pos = 0;
  for (Py_ssize_t iu = 0; PyDict_Next(a, &pos, &u, &nbrs); ++iu) {
    if (iu >= n || PyDict_Size(nbrs) != pd[iu] || t + pd[iu] > total) return py::none();
    vs.clear();
    ds.clear();
    Py_ssize_t q = 0;
    PyObject *v, *data;
    while (PyDict_Next(nbrs, &q, &v, &data)) {
      __builtin_prefetch(v);
      __builtin_prefetch(data);
      vs.push_back(v);
      ds.push_back(data);
    }
    for (size_t j = 0; j < vs.size(); ++j, ++t) {
      if (!PyLong_CheckExact(vs[j])) return py::none();
      const Py_ssize_t iv = PyLong_AsSsize_t(vs[j]);
      if (iv < 0 || iv >= n) {  // not a node (or a huge int)
        PyErr_Clear();
        return py::none();
      }
      pc[t] = iv;
      pw[t] = std::numeric_limits<double>::quiet_NaN();
      data = ds[j];
      if (iv <= iu && any_data) continue;
      if (!PyDict_CheckExact(data)) return py::none();
      any_data = any_data || PyDict_Size(data) > 0;
      if (iv <= iu) continue;
      // The weight by a walk over the (one- or two-entry) dict, not a hash lookup: a lookup
      // compares colliding keys by their __eq__, Python code that could change the adjacency
      // while its objects are held here as borrowed references. Comparing exact str keys runs
      // none; any other key sends the caller to its Python path.
      PyObject *x = nullptr, *dk, *dv;
      for (Py_ssize_t r = 0; PyDict_Next(data, &r, &dk, &dv);) {
        if (dk != key && !PyUnicode_CheckExact(dk)) return py::none();
        if (dk == key || PyUnicode_Compare(dk, key) == 0) {
          x = dv;
          break;
        }
      }
      if (x == nullptr) {
        pw[t] = 1.0;
      } else if (PyFloat_CheckExact(x)) {
        pw[t] = PyFloat_AS_DOUBLE(x);
      } else if (PyLong_CheckExact(x)) {
        const double xv = PyLong_AsDouble(x);  // correctly rounded, as float(x)
        if (xv == -1.0 && PyErr_Occurred()) {  // too large: the Python path raises
          PyErr_Clear();
          return py::none();
        }
        pw[t] = xv;
      } else {
        return py::none();
      }
    }
  }
  if (t != total) return py::none();
  return py::make_tuple(deg, cols, w, any_data);
}

/// (kappa, dist, status) of the edges (eu[i], ev[i]), filled by `kernel(ne, kappa, dist,
/// status)` without the GIL.
template <typename F>
py::tuple orc_edges(const carray<int64_t>& eu, const carray<int64_t>& ev, F&& kernel) {
  const int64_t ne = eu.shape(0);
  if (ev.shape(0) != ne) throw std::invalid_argument("eu and ev differ in length");
  py::array_t<double> kappa(ne), dist(ne);
  py::array_t<int> status(ne);
  double* pk = kappa.mutable_data();
  double* pd = dist.mutable_data();
  int* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(ne, pk, pd, ps);
  }
  return py::make_tuple(kappa, dist, status);
}

py::tuple ollivier_ricci_py(carray<int64_t> indptr, carray<int64_t> indices, carray<double> weights,
                            carray<int64_t> eu, carray<int64_t> ev, OrcOptions o, int n_jobs) {
  const CsrGraph g = as_graph(indptr, indices, weights);
  o.n_threads = n_jobs;
  return orc_edges(eu, ev, [&](int64_t ne, double* pk, double* pd, int* ps) {
    ollivier_ricci(g, ne, eu.data(), ev.data(), o, pk, pd, ps);
  });
}

py::tuple ollivier_ricci_directed_py(carray<int64_t> indptr, carray<int64_t> indices,
                                     carray<double> weights, carray<int64_t> in_indptr,
                                     carray<int64_t> in_indices, carray<double> in_weights,
                                     carray<int64_t> eu, carray<int64_t> ev, OrcOptions o,
                                     int n_jobs) {
  const CsrGraph g = as_graph(indptr, indices, weights);
  const CsrGraph gin = as_graph(in_indptr, in_indices, in_weights);
  o.n_threads = n_jobs;
  return orc_edges(eu, ev, [&](int64_t ne, double* pk, double* pd, int* ps) {
    ollivier_ricci_directed(g, gin, ne, eu.data(), ev.data(), o, pk, pd, ps);
  });
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
  m.def("nx_adjacency", &nx_adjacency_py, py::arg("adj"), py::arg("weight"),
        "networkx's plain adjacency dict -> (deg, cols, weights, any_data), or None.");
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
