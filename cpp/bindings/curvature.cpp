// Bindings for Ollivier-Ricci and Forman-Ricci curvature.
#include "curvature/curvature.hpp"
#include "bindings.hpp"

#include <algorithm>
#include <limits>
#include <utility>
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

/// An adjacency in CSR form (rows of `cols` in any order unless `sorted`; no repeated entry in
/// a row) as the symmetric CSR the kernels read, in one O(nnz) pass (rows of up to 32 entries
/// sorted by insertion, longer ones by std::sort): each row's entries by increasing column, the
/// diagonal dropped, every entry (v, u), v > u, given the value of its twin (u, v) (so `w`'s
/// values below the diagonal are not read unless `check_values`). The twins are matched by one
/// cursor per row, which walks its upper entries in order as the rows below reach them. Returns
/// (indptr, cols, w, edges, edge_w): edges (m, 2) the entries (u, v), u < v, in lexicographic
/// order, and their values; or None when the structure is not symmetric or, with
/// `check_values`, an entry differs from its twin (compared with ==; the caller checks NaN).
py::object symmetric_csr_py(carray<int64_t> indptr, carray<int64_t> cols, carray<double> w,
                            bool sorted, bool check_values) {
  const int64_t n = indptr.shape(0) - 1;
  const int64_t* ip = indptr.data();
  if (n < 0 || ip[0] != 0 || ip[n] != cols.shape(0) || w.shape(0) != cols.shape(0))
    throw std::invalid_argument("symmetric_csr: inconsistent CSR arrays");
  for (int64_t u = 0; u < n; ++u)
    if (ip[u + 1] < ip[u]) throw std::invalid_argument("symmetric_csr: indptr decreases");
  const int64_t* pc = cols.data();
  const double* pw = w.data();
  for (int64_t t = 0; t < ip[n]; ++t)
    if (pc[t] < 0 || pc[t] >= n) throw std::invalid_argument("symmetric_csr: column out of range");
  int64_t nnz = 0, m = 0;
  py::array_t<int64_t> optr(n + 1);
  int64_t* op = optr.mutable_data();
  // pass 1: sizes (diagonal dropped)
  op[0] = 0;
  for (int64_t u = 0; u < n; ++u) {
    int64_t k = 0, up = 0;
    for (int64_t t = ip[u]; t < ip[u + 1]; ++t) {
      k += pc[t] != u;
      up += pc[t] > u;
    }
    op[u + 1] = op[u] + k;
    m += up;
  }
  nnz = op[n];
  py::array_t<int64_t> ocols(nnz), edges(std::vector<py::ssize_t>{m, 2});
  py::array_t<double> ow(nnz), ew(m);
  int64_t* oc = ocols.mutable_data();
  double* ox = ow.mutable_data();
  int64_t* pe = edges.mutable_data();
  double* px = ew.mutable_data();
  bool ok = true;
  {
    py::gil_scoped_release release;
    std::vector<int64_t> cursor(static_cast<size_t>(n));
    std::vector<std::pair<int64_t, double>> row;
    int64_t ne = 0;
    for (int64_t u = 0; u < n && ok; ++u) {
      int64_t* c = oc + op[u];
      double* x = ox + op[u];
      const int64_t len = op[u + 1] - op[u];
      if (sorted) {
        int64_t k = 0;
        for (int64_t t = ip[u]; t < ip[u + 1]; ++t)
          if (pc[t] != u) {
            c[k] = pc[t];
            x[k++] = pw[t];
          }
        for (int64_t k2 = 1; k2 < len && ok; ++k2) ok = c[k2 - 1] < c[k2];
      } else {
        row.clear();
        for (int64_t t = ip[u]; t < ip[u + 1]; ++t)
          if (pc[t] != u) row.push_back({pc[t], pw[t]});
        if (row.size() <= 32) {
          for (size_t i = 1; i < row.size(); ++i)
            for (size_t j = i; j > 0 && row[j].first < row[j - 1].first; --j)
              std::swap(row[j], row[j - 1]);
        } else {
          std::sort(row.begin(), row.end(),
                    [](const auto& p, const auto& q) { return p.first < q.first; });
        }
        for (int64_t k = 0; k < len; ++k) {
          c[k] = row[k].first;
          x[k] = row[k].second;
          ok = ok && (k == 0 || c[k - 1] < c[k]);  // a repeated entry: not a simple graph
        }
      }
      int64_t k = 0;
      for (; k < len && c[k] < u && ok; ++k) {  // (u, v), v < u: the twin at v's cursor
        const int64_t v = c[k], q = cursor[v];
        if (q >= op[v + 1] || oc[q] != u || (check_values && !(ox[q] == x[k]))) {
          ok = false;
          break;
        }
        x[k] = ox[q];
        cursor[v] = q + 1;
      }
      if (!ok) break;
      cursor[u] = op[u] + k;  // the upper entries of u, met by the rows below in this order
      for (; k < len; ++k) {
        pe[2 * ne] = u;
        pe[2 * ne + 1] = c[k];
        px[ne++] = x[k];
      }
    }
    for (int64_t v = 0; v < n && ok; ++v) ok = cursor[v] == op[v + 1];  // every twin met
  }
  if (!ok) return py::none();
  return py::make_tuple(optr, ocols, ow, edges, ew);
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
  m.def("symmetric_csr", &symmetric_csr_py, py::arg("indptr"), py::arg("cols"), py::arg("w"),
        py::kw_only(), py::arg("sorted") = false, py::arg("check_values") = false,
        "Adjacency CSR -> (indptr, cols, w, edges, edge_w) of its symmetric CSR, or None.\n"
        "Rows sorted, diagonal dropped, upper values mirrored; None when not symmetric.");
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
