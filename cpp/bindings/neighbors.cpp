// Bindings of the neighbors family: exact kNN search, graph assembly from neighbour lists.
#include "bindings.hpp"
#include "neighbors/graph.hpp"
#include "neighbors/knn.hpp"
#include "neighbors/nndescent.hpp"

namespace geoml {
namespace {

template <typename T>
py::tuple knn_py(exact<T> X_in, py::object Y, int64_t k, Metric metric, bool exclude_self,
                 int n_jobs, bool verbose) {
  const carray<T> X = contiguous(X_in);
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
    knn_search<T>(px, n, Q, m, d, k, metric, exclude_self, n_jobs, pi, pd, verbose);
  }
  return py::make_tuple(idx, dist);
}

/// A knn_pair pruning bound: None, or a 1-D float64 array of `rows` entries.
carray<double> pair_bound(const py::object& obj, int64_t rows, const char* name) {
  if (obj.is_none()) return carray<double>();
  carray<double> b = obj.cast<carray<double>>();
  if (b.ndim() != 1 || b.shape(0) != rows)
    throw std::invalid_argument(std::string("knn_pair: ") + name + " must be 1-D with " +
                                std::to_string(rows) + " entries (one per row)");
  return b;
}

/// Both directions of an exact kNN between blocks A and B from one tile pass (knn_pair_search)
/// -> (idx_ab, dist_ab, idx_ba, dist_ba), float64 distances; B None: the self query of A
/// (exclude_self) -> (idx, dist, None, None). bound_a / bound_b: optional per-row distance
/// bounds (knn_pair_search's pruning; two-block query only).
template <typename T>
py::tuple knn_pair_py(exact<T> A_in, py::object B_obj, py::object bound_a, py::object bound_b,
                      int64_t k, Metric metric, int n_jobs) {
  const carray<T> A = contiguous(A_in);
  if (A.ndim() != 2) throw std::invalid_argument("A must be 2-D");
  const int64_t na = A.shape(0), d = A.shape(1);
  const T* pa = A.data();
  if (B_obj.is_none()) {
    if (!bound_a.is_none() || !bound_b.is_none())
      throw std::invalid_argument("knn_pair: bounds are for the two-block query (B given)");
    if (k < 1 || k > na - 1)
      throw std::invalid_argument("knn_pair: k=" + std::to_string(k) + " must be in [1, " +
                                  std::to_string(na - 1) + "]");
    py::array_t<int64_t> idx({na, k});
    py::array_t<double> dist({na, k});
    int64_t* pi = idx.mutable_data();
    double* pd = dist.mutable_data();
    {
      py::gil_scoped_release release;
      knn_pair_search<T>(pa, na, nullptr, 0, d, k, metric, n_jobs, pi, pd, nullptr, nullptr);
    }
    return py::make_tuple(idx, dist, py::none(), py::none());
  }
  const carray<T> B = B_obj.cast<carray<T>>();
  if (B.ndim() != 2 || B.shape(1) != d)
    throw std::invalid_argument("B must be 2-D with the same number of columns as A");
  const int64_t nb = B.shape(0);
  if (na < 1 || nb < 1 || k < 1) throw std::invalid_argument("knn_pair: empty block or k < 1");
  const int64_t kab = std::min(k, nb), kba = std::min(k, na);
  py::array_t<int64_t> iab({na, kab}), iba({nb, kba});
  py::array_t<double> dab({na, kab}), dba({nb, kba});
  int64_t *p1 = iab.mutable_data(), *p3 = iba.mutable_data();
  double *p2 = dab.mutable_data(), *p4 = dba.mutable_data();
  const T* pb = B.data();
  const carray<double> ba = pair_bound(bound_a, na, "bound_a");
  const carray<double> bb = pair_bound(bound_b, nb, "bound_b");
  const double* pba = bound_a.is_none() ? nullptr : ba.data();
  const double* pbb = bound_b.is_none() ? nullptr : bb.data();
  {
    py::gil_scoped_release release;
    knn_pair_search<T>(pa, na, pb, nb, d, k, metric, n_jobs, p1, p2, p3, p4, pba, pbb);
  }
  return py::make_tuple(iab, dab, iba, dba);
}

template <typename T, typename I>
py::tuple csr_py(const carray<int64_t>& idx, const carray<T>& w, Symmetrize mode, int n_jobs) {
  const int64_t n = idx.shape(0), k = idx.shape(1);
  Csr<T, I> g;
  {
    py::gil_scoped_release release;
    g = neighbors_to_csr<T, I>(n, k, idx.data(), w.data(), mode, n_jobs);
  }
  return py::make_tuple(to_numpy(std::move(g.data)), to_numpy(std::move(g.indices)),
                        to_numpy(std::move(g.indptr)));
}

/// neighbors_to_csr with the index dtype chosen by `index64` (int64 when the graph needs it).
template <typename T>
py::tuple neighbors_to_csr_py(carray<int64_t> idx, exact<T> w_in, Symmetrize mode, bool index64,
                              int n_jobs) {
  const carray<T> w = contiguous(w_in);
  if (idx.ndim() != 2 || w.ndim() != 2 || idx.shape(0) != w.shape(0) || idx.shape(1) != w.shape(1))
    throw std::invalid_argument("indices and weights must be 2-D arrays of the same shape");
  return index64 ? csr_py<T, int64_t>(idx, w, mode, n_jobs)
                 : csr_py<T, int32_t>(idx, w, mode, n_jobs);
}

NNDescentOptions make_nndescent_options(int64_t n_trees, int64_t leaf_size, int64_t max_iter,
                                        int64_t max_extra_trees, int64_t max_candidates,
                                        double delta, double target_recall, int64_t n_check,
                                        uint64_t seed, bool clusters, int64_t cluster_size,
                                        double overlap, double cluster_min_dim, bool relabel,
                                        int64_t adaptive_trees, double iter_budget) {
  NNDescentOptions o;
  o.iter_budget = iter_budget;
  o.adaptive_trees = adaptive_trees;
  o.relabel = relabel;
  o.cluster_min_dim = cluster_min_dim;
  o.clusters = clusters;
  o.cluster_size = cluster_size;
  o.overlap = overlap;
  o.max_extra_trees = max_extra_trees;
  o.n_trees = n_trees;
  o.leaf_size = leaf_size;
  o.max_iter = max_iter;
  o.max_candidates = max_candidates;
  o.delta = delta;
  o.target_recall = target_recall;
  o.n_check = n_check;
  o.seed = seed;
  return o;
}

/// nndescent_graph of the rows of X -> (indices, distances (flat n * k), n_iter, n_checked,
/// hits, last_changes).
template <typename T>
py::tuple nndescent_py(exact<T> X_in, int64_t k, Metric metric, const NNDescentOptions& options,
                       int n_jobs, bool verbose) {
  const carray<T> X = contiguous(X_in);
  if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D");
  const int64_t n = X.shape(0), d = X.shape(1);
  const T* px = X.data();
  NNDescentInfo info;
  std::vector<int64_t> idx;
  std::vector<T> dist;
  {
    py::gil_scoped_release release;
    nndescent_graph<T>(px, n, d, k, metric, options, n_jobs, idx, dist, &info, verbose);
  }
  return py::make_tuple(to_numpy(std::move(idx)), to_numpy(std::move(dist)), info.n_iter,
                        info.n_checked, info.hits, info.last_changes);
}

/// Top-split centres of the clustered start from its sample rows -> (C, d) array in T.
template <typename T>
py::array_t<T> nndescent_split_centres_py(exact<T> rows_in, int64_t C, Metric metric, uint64_t seed,
                                          uint64_t node, int n_jobs) {
  const carray<T> rows = contiguous(rows_in);
  if (rows.ndim() != 2) throw std::invalid_argument("rows must be 2-D");
  const int64_t ns = rows.shape(0), d = rows.shape(1);
  std::vector<T> cent;
  {
    py::gil_scoped_release release;
    cent = nndescent_split_centres<T>(rows.data(), ns, d, C, metric, seed, node, n_jobs);
  }
  py::array_t<T> out({C, d});
  std::copy(cent.begin(), cent.end(), out.mutable_data());
  return out;
}

/// Nearest centre of each row of Q and the second (or -1) -> (first, second), int32.
template <typename T>
py::tuple nndescent_split_assign_py(exact<T> cent_in, exact<T> Q_in, Metric metric, double overlap,
                                    int n_jobs) {
  const carray<T> cent = contiguous(cent_in);
  const carray<T> Q = contiguous(Q_in);
  if (cent.ndim() != 2 || Q.ndim() != 2 || cent.shape(1) != Q.shape(1))
    throw std::invalid_argument("centres and Q must be 2-D with the same number of columns");
  const int64_t C = cent.shape(0), m = Q.shape(0), d = Q.shape(1);
  py::array_t<int32_t> first(m), second(m);
  int32_t* pf = first.mutable_data();
  int32_t* ps = second.mutable_data();
  const T* pc = cent.data();
  const T* pq = Q.data();
  {
    py::gil_scoped_release release;
    nndescent_split_assign<T>(pc, C, pq, m, d, metric, overlap, n_jobs, pf, ps);
  }
  return py::make_tuple(first, second);
}

/// Clustered start of one cell -> (local indices int64, float64 distances, scores in T),
/// each (L, k).
template <typename T>
py::tuple nndescent_cell_py(exact<T> X_in, int64_t k, Metric metric,
                            const NNDescentOptions& options, uint64_t pass, uint64_t id,
                            int n_jobs) {
  const carray<T> X = contiguous(X_in);
  if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D");
  const int64_t L = X.shape(0), d = X.shape(1);
  py::array_t<int64_t> idx({L, k});
  py::array_t<double> dist({L, k});
  py::array_t<T> score({L, k});
  int64_t* pi = idx.mutable_data();
  double* pd = dist.mutable_data();
  T* ps = score.mutable_data();
  const T* px = X.data();
  {
    py::gil_scoped_release release;
    nndescent_cell<T>(px, L, d, k, metric, options, pass, id, n_jobs, pi, pd, ps);
  }
  return py::make_tuple(idx, dist, score);
}

}  // namespace

void bind_neighbors(py::module_& m) {
  py::native_enum<Metric>(m, "Metric", "enum.Enum",
                          "kNN distance (members named as geoml's metric strings).")
      .value("euclidean", Metric::Euclidean)
      .value("sqeuclidean", Metric::SqEuclidean)
      .value("cosine", Metric::Cosine)
      .value("inner_product", Metric::InnerProduct)
      .finalize();
  py::native_enum<Symmetrize>(m, "Symmetrize", "enum.Enum",
                              "How a kNN graph is combined with its transpose.")
      .value("none", Symmetrize::None)
      .value("union", Symmetrize::Union)
      .value("mutual", Symmetrize::Mutual)
      .value("mean", Symmetrize::Mean)
      .finalize();
  def_overloads(m, "knn", Floats{}, GEOML_PICK(knn_py), py::arg("X").noconvert(),
                py::arg("Y") = py::none(), py::kw_only(), py::arg("k"), py::arg("metric"),
                py::arg("exclude_self"), py::arg("n_jobs") = 0, py::arg("verbose") = false,
                "Exact k nearest neighbours of the rows of Y (None: of X, among X) -> (indices, "
                "distances).");
  def_overloads(m, "knn_pair", Floats{}, GEOML_PICK(knn_pair_py), py::arg("A").noconvert(),
                py::arg("B") = py::none(), py::arg("bound_a") = py::none(),
                py::arg("bound_b") = py::none(), py::kw_only(), py::arg("k"), py::arg("metric"),
                py::arg("n_jobs") = 0,
                "Exact kNN of A among B and B among A, one tile pass -> (iab, dab, iba, dba).");
  const NNDescentOptions nd;
  py::class_<NNDescentOptions>(m, "NNDescentOptions",
                               "Approximate kNN graph options (nndescent.hpp).")
      .def(py::init(&make_nndescent_options), py::kw_only(), py::arg("n_trees") = nd.n_trees,
           py::arg("leaf_size") = nd.leaf_size, py::arg("max_iter") = nd.max_iter,
           py::arg("max_extra_trees") = nd.max_extra_trees,
           py::arg("max_candidates") = nd.max_candidates, py::arg("delta") = nd.delta,
           py::arg("target_recall") = nd.target_recall, py::arg("n_check") = nd.n_check,
           py::arg("seed") = nd.seed, py::arg("clusters") = nd.clusters,
           py::arg("cluster_size") = nd.cluster_size, py::arg("overlap") = nd.overlap,
           py::arg("cluster_min_dim") = nd.cluster_min_dim, py::arg("relabel") = nd.relabel,
           py::arg("adaptive_trees") = nd.adaptive_trees, py::arg("iter_budget") = nd.iter_budget,
           "Options from keywords (the defaults are the C++ ones).")
      .def_readwrite("n_trees", &NNDescentOptions::n_trees,
                     "Random-projection trees of the start (0: automatic, 4; 12 below "
                     "cluster_min_dim).")
      .def_readwrite("leaf_size", &NNDescentOptions::leaf_size,
                     "Largest leaf, searched exactly (0: max(512, 4 k); max(64, 4 k) at low "
                     "dimension).")
      .def_readwrite("max_iter", &NNDescentOptions::max_iter, "NN-descent iterations at most.")
      .def_readwrite("max_extra_trees", &NNDescentOptions::max_extra_trees,
                     "Trees added when the iterations stall below the target.")
      .def_readwrite(
          "iter_budget", &NNDescentOptions::iter_budget,
          "Give up (0: never) past this many iterations, or at a start without structure.")
      .def_readwrite("adaptive_trees", &NNDescentOptions::adaptive_trees,
                     "Trees added to a start one iteration cannot repair (0: none).")
      .def_readwrite("max_candidates", &NNDescentOptions::max_candidates,
                     "Candidates per point and iteration (0: automatic).")
      .def_readwrite("delta", &NNDescentOptions::delta,
                     "Stop when fewer than delta * n * k entries changed.")
      .def_readwrite("target_recall", &NNDescentOptions::target_recall,
                     "Stop when the sampled recall reaches it.")
      .def_readwrite("n_check", &NNDescentOptions::n_check,
                     "Points whose neighbours are checked exactly.")
      .def_readwrite("seed", &NNDescentOptions::seed, "Seed of every random choice.")
      .def_readwrite("clusters", &NNDescentOptions::clusters,
                     "Start from overlapping k-means clusters searched exactly.")
      .def_readwrite("cluster_size", &NNDescentOptions::cluster_size,
                     "Points per cluster of that start (0: automatic).")
      .def_readwrite("overlap", &NNDescentOptions::overlap,
                     "A point joins its second cluster when d2 <= overlap * d1.")
      .def_readwrite("cluster_min_dim", &NNDescentOptions::cluster_min_dim,
                     "Clusters only from this sampled intrinsic dimension (0: always).")
      .def_readwrite("relabel", &NNDescentOptions::relabel,
                     "Index the graph by join-order position (locality; the same graph).");
  def_overloads(
      m, "nndescent", Floats{}, GEOML_PICK(nndescent_py), py::arg("X").noconvert(), py::kw_only(),
      py::arg("k"), py::arg("metric"), py::arg("options"), py::arg("n_jobs") = 0,
      py::arg("verbose") = false,
      "NN-descent kNN graph of X -> (indices, distances, n_iter, n_checked, hits, changes).");
  m.def(
      "nndescent_floyd",
      [](int64_t L, int64_t m_, uint64_t seed, uint64_t salt) {
        if (L < 0 || m_ < 0) throw std::invalid_argument("nndescent_floyd: negative size");
        return to_numpy(nndescent_floyd(L, m_, seed, salt));
      },
      py::arg("L"), py::arg("m"), py::arg("seed"), py::arg("salt"),
      "m distinct sorted positions of [0, L) drawn as the approximate search draws them.");
  m.def("nndescent_cluster_node", &nndescent_cluster_node, py::arg("seed"), py::arg("pass_"),
        py::arg("id"), "Seed of a list of the clustered start (pass, id).");
  m.def("nndescent_cluster_child", &nndescent_cluster_child, py::arg("id"), py::arg("p"),
        "Id of the p-th part of a list of the clustered start.");
  m.def("nndescent_split_parts", &nndescent_split_parts, py::arg("L"), py::arg("S"),
        "Centres of a split of L points of the clustered start (lists of about S).");
  m.def("nndescent_split_sample", &nndescent_split_sample, py::arg("L"), py::arg("C"),
        "k-means sample size of a split of L points into C parts.");
  def_overloads(m, "nndescent_split_centres", Floats{}, GEOML_PICK(nndescent_split_centres_py),
                py::arg("rows").noconvert(), py::kw_only(), py::arg("C"), py::arg("metric"),
                py::arg("seed"), py::arg("node"), py::arg("n_jobs") = 0,
                "k-means centres of a split of the clustered start from its sample rows.");
  def_overloads(m, "nndescent_split_assign", Floats{}, GEOML_PICK(nndescent_split_assign_py),
                py::arg("centres").noconvert(), py::arg("Q").noconvert(), py::kw_only(),
                py::arg("metric"), py::arg("overlap"), py::arg("n_jobs") = 0,
                "Nearest and (within overlap) second-nearest centre -> (first, second).");
  def_overloads(m, "nndescent_cell", Floats{}, GEOML_PICK(nndescent_cell_py),
                py::arg("X").noconvert(), py::kw_only(), py::arg("k"), py::arg("metric"),
                py::arg("options"), py::arg("pass_"), py::arg("id"), py::arg("n_jobs") = 0,
                "Clustered start of one cell -> (local indices, distances, scores).");
  def_overloads(m, "neighbors_to_csr", Floats{}, GEOML_PICK(neighbors_to_csr_py),
                py::arg("indices"), py::arg("weights").noconvert(), py::kw_only(), py::arg("mode"),
                py::arg("index64") = false, py::arg("n_jobs") = 0,
                "Sparse kNN graph from (n, k) neighbour lists -> CSR (data, indices, indptr).");
}

}  // namespace geoml
