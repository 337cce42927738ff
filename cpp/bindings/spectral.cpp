// Bindings for the Lanczos eigensolver, sparse/dense products and k-means.
#include <climits>
#include <string>
#include <algorithm>
#include <type_traits>

#include "bindings.hpp"
#include "common/common.hpp"
#include "spectral/kmeans.hpp"
#include "spectral/lanczos.hpp"
#include "spectral/lobpcg.hpp"
#include "spectral/multigrid.hpp"

namespace geoml {

/// Runs lanczos() on a CSR matrix (indptr given), a dense matrix (A 2-D), or a Python
/// callable y = f(x) (callback given; called with the GIL held). Returns
/// (eigenvalues, eigenvectors (flat n*k), residuals, n_iter, n_matvec, converged, anorm, cut).
template <typename T>
py::tuple eigsh_py(py::object A, py::object indptr, py::object indices, bool index64,
                   py::object callback, int64_t n, py::object v0, py::object deflate,
                   int64_t k, int which, double tol, int64_t max_iter, int64_t ncv,
                   double anorm, int cheb_degree, double cheb_lower, double cheb_upper,
                   double cheb_cut, bool verify, uint64_t seed, int n_jobs,
                   py::object scale) {
  // Small problems run on fewer threads: a parallel region per vector operation costs more
  // than it saves below ~1e5 flops (and much more on an oversubscribed machine).
  {
    int64_t work = 20 * n;
    if (!callback.is_none()) work = 20 * n;
    else if (!indptr.is_none()) work += py::len(indices);
    else work = n * n;
    const int64_t cap = std::max<int64_t>(1, work / 200000);
    n_jobs = static_cast<int>(std::min<int64_t>(resolve_threads(n_jobs), cap));
  }
  LanczosOptions opt;
  opt.k = k;
  opt.which = static_cast<Which>(which);
  opt.tol = tol;
  opt.max_iter = max_iter;
  opt.ncv = ncv;
  opt.anorm = anorm;
  opt.cheb_degree = cheb_degree;
  opt.cheb_lower = cheb_lower;
  opt.cheb_upper = cheb_upper;
  opt.cheb_cut = cheb_cut;
  opt.verify = verify;
  opt.seed = seed;
  opt.n_threads = n_jobs;
  carray<T> v0a, defa, data;
  carray<int32_t> ip32, ix32;
  carray<int64_t> ip64, ix64;
  const T* pv0 = nullptr;
  const T* pdef = nullptr;
  int64_t nd = 0;
  if (!v0.is_none()) {
    v0a = v0.cast<carray<T>>();
    if (v0a.size() != n) throw std::invalid_argument("v0 must have n entries");
    pv0 = v0a.data();
  }
  if (!deflate.is_none()) {
    defa = deflate.cast<carray<T>>();
    if (defa.ndim() != 2 || defa.shape(0) != n)
      throw std::invalid_argument("deflate must be an (n, nd) array");
    nd = defa.shape(1);
    pdef = defa.data();
  }
  MatVec<T> mv;
  ChebStep<T> step;
  carray<double> sarr;
  std::vector<double> zbuf;
  if (!scale.is_none()) {
    // Unweighted graph: N = S P S from the pattern (indptr, indices) and s.
    sarr = scale.cast<carray<double>>();
    if (sarr.size() != n) throw std::invalid_argument("scale must have n entries");
    const double* ps = sarr.data();
    auto bind_pattern = [&](auto* pp, auto* pi) {
      using I = std::remove_const_t<std::remove_pointer_t<decltype(pp)>>;
      mv = [=, &zbuf](const T* x, T* y) {
        scaled_pattern_matvec<T, I>(n, pp, pi, ps, x, y, zbuf, n_jobs);
      };
      step = [=, &zbuf](const T* yb, const T* ya, T* yc, double s1, double c, double s2) {
        scaled_pattern_cheb_step<T, I>(n, pp, pi, ps, yb, ya, yc, s1, c, s2, zbuf, n_jobs);
      };
    };
    if (index64) {
      ip64 = indptr.cast<carray<int64_t>>();
      ix64 = indices.cast<carray<int64_t>>();
      bind_pattern(ip64.data(), ix64.data());
    } else {
      ip32 = indptr.cast<carray<int32_t>>();
      ix32 = indices.cast<carray<int32_t>>();
      bind_pattern(ip32.data(), ix32.data());
    }
  } else if (!callback.is_none()) {
    mv = [&callback, n](const T* x, T* y) {
      py::gil_scoped_acquire gil;
      py::array_t<T> xa(n);
      std::copy(x, x + n, xa.mutable_data());
      carray<T> r = callback(xa).template cast<carray<T>>();
      if (r.size() != n)
        throw std::invalid_argument("the matvec returned a vector of the wrong size");
      std::copy(r.data(), r.data() + n, y);
    };
  } else if (!indptr.is_none()) {
    data = A.cast<carray<T>>();
    if (index64) {
      ip64 = indptr.cast<carray<int64_t>>();
      ix64 = indices.cast<carray<int64_t>>();
      const int64_t *pp = ip64.data(), *pi = ix64.data();
      const T* pd = data.data();
      mv = [=](const T* x, T* y) { csr_matvec<T, int64_t>(n, pp, pi, pd, x, y, n_jobs); };
    } else {
      ip32 = indptr.cast<carray<int32_t>>();
      ix32 = indices.cast<carray<int32_t>>();
      const int32_t *pp = ip32.data(), *pi = ix32.data();
      const T* pd = data.data();
      mv = [=](const T* x, T* y) { csr_matvec<T, int32_t>(n, pp, pi, pd, x, y, n_jobs); };
    }
  } else {
    data = A.cast<carray<T>>();
    if (data.ndim() != 2 || data.shape(0) != n || data.shape(1) != n)
      throw std::invalid_argument("dense A must be n x n");
    const T* pd = data.data();
    mv = [=](const T* x, T* y) { dense_matvec<T>(n, pd, x, y, n_jobs); };
  }
  LanczosResult<T> res;
  {
    py::gil_scoped_release release;
    res = lanczos<T>(n, mv, pv0, pdef, nd, opt, step);
  }
  return py::make_tuple(to_numpy(std::move(res.eigenvalues)), to_numpy(std::move(res.eigenvectors)),
                        to_numpy(std::move(res.residuals)), res.n_iter, res.n_matvec,
                        res.converged, res.anorm, res.cheb_cut);
}

template <typename T, typename I>
py::array_t<T> csr_matvec_py(carray<I> indptr, carray<I> indices, carray<T> data, carray<T> x,
                             int n_jobs) {
  const int64_t n = indptr.size() - 1;
  py::array_t<T> y(n);
  T* py_ = y.mutable_data();
  const I *pp = indptr.data(), *pi = indices.data();
  const T *pd = data.data(), *px = x.data();
  {
    py::gil_scoped_release release;
    csr_matvec<T, I>(n, pp, pi, pd, px, py_, n_jobs);
  }
  return y;
}

py::tuple kmeans_py(carray<double> X, int64_t k, int n_init, int max_iter, double tol,
                    uint64_t seed, int n_jobs) {
  if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D");
  const int64_t n = X.shape(0), d = X.shape(1);
  KMeansResult r;
  const double* px = X.data();
  {
    py::gil_scoped_release release;
    r = kmeans(px, n, d, k, n_init, max_iter, tol, seed, n_jobs);
  }
  return py::make_tuple(to_numpy(std::move(r.labels)), to_numpy(std::move(r.centers)),
                        r.inertia, r.n_iter);
}

/// Greedy aggregation (multigrid.hpp) of a CSR graph; returns (labels int32 (n,), n_agg).
py::tuple aggregate_py(py::array indptr, py::array indices, py::object data) {
  const int64_t n = indptr.size() - 1;
  std::vector<int32_t> labels(n);
  carray<double> d;
  const double* pd = nullptr;
  if (!data.is_none()) {
    d = data.cast<carray<double>>();
    pd = d.data();
  }
  int64_t nagg;
  if (indptr.dtype().is(py::dtype::of<int64_t>())) {
    carray<int64_t> ip = indptr.cast<carray<int64_t>>(), ix = indices.cast<carray<int64_t>>();
    py::gil_scoped_release release;
    nagg = aggregate_graph<int64_t>(n, ip.data(), ix.data(), pd, labels.data());
  } else {
    carray<int32_t> ip = indptr.cast<carray<int32_t>>(), ix = indices.cast<carray<int32_t>>();
    py::gil_scoped_release release;
    nagg = aggregate_graph<int32_t>(n, ip.data(), ix.data(), pd, labels.data());
  }
  return py::make_tuple(to_numpy(std::move(labels)), nagg);
}

/// RCM order and connected components (multigrid.hpp) of a symmetric CSR pattern; returns
/// (perm int64 (n,), labels int32 (n,), n_components).
py::tuple rcm_components_py(py::array indptr, py::array indices) {
  const int64_t n = indptr.size() - 1;
  std::vector<int64_t> perm(n);
  std::vector<int32_t> labels(n);
  int64_t ncomp;
  if (indptr.dtype().is(py::dtype::of<int64_t>())) {
    carray<int64_t> ip = indptr.cast<carray<int64_t>>(), ix = indices.cast<carray<int64_t>>();
    py::gil_scoped_release release;
    ncomp = rcm_components<int64_t>(n, ip.data(), ix.data(), perm.data(), labels.data());
  } else {
    carray<int32_t> ip = indptr.cast<carray<int32_t>>(), ix = indices.cast<carray<int32_t>>();
    py::gil_scoped_release release;
    ncomp = rcm_components<int32_t>(n, ip.data(), ix.data(), perm.data(), labels.data());
  }
  return py::make_tuple(to_numpy(std::move(perm)), to_numpy(std::move(labels)), ncomp);
}

/// to_numpy for the family's big_vector (multigrid.hpp).
template <typename T>
py::array_t<T> big_to_numpy(big_vector<T>&& v) {
  auto* heap = new big_vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<big_vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, heap->data(), owner);
}

/// L_sym of a symmetric CSR affinity renumbered by perm (multigrid.hpp); returns the CSR
/// arrays (indptr int64, indices int64, data float64).
py::tuple permuted_lsym_py(py::array indptr, py::array indices, carray<double> data,
                           carray<double> d, carray<int64_t> perm, int n_jobs) {
  const int64_t n = indptr.size() - 1;
  if (d.size() != n || perm.size() != n || data.size() != py::len(indices))
    throw std::invalid_argument("permuted_lsym: inconsistent array sizes");
  big_vector<int64_t> ptr(n + 1), idx;
  big_vector<double> val;
  const double *pd = data.data(), *pdeg = d.data();
  const int64_t* pp = perm.data();
  if (indptr.dtype().is(py::dtype::of<int64_t>())) {
    carray<int64_t> ip = indptr.cast<carray<int64_t>>(), ix = indices.cast<carray<int64_t>>();
    py::gil_scoped_release release;
    permuted_lsym<int64_t>(n, ip.data(), ix.data(), pd, pdeg, pp, ptr.data(), idx, val, n_jobs);
  } else {
    carray<int32_t> ip = indptr.cast<carray<int32_t>>(), ix = indices.cast<carray<int32_t>>();
    py::gil_scoped_release release;
    permuted_lsym<int32_t>(n, ip.data(), ix.data(), pd, pdeg, pp, ptr.data(), idx, val, n_jobs);
  }
  return py::make_tuple(big_to_numpy(std::move(ptr)), big_to_numpy(std::move(idx)),
                        big_to_numpy(std::move(val)));
}

/// Y = alpha * A X + beta * B (B None: 0; B may be Y) for CSR A (rows = len(indptr) - 1)
/// and C-contiguous float64 blocks X (cols, m), B and Y (rows, m); Y is written in place.
void csr_spmm_py(py::array indptr, py::array indices, carray<double> data, carray<double> X,
                 double alpha, py::object B, double beta, py::array_t<double> Y, int n_jobs) {
  const int64_t rows = indptr.size() - 1;
  if (X.ndim() != 2 || Y.ndim() != 2 || Y.shape(0) != rows || Y.shape(1) != X.shape(1))
    throw std::invalid_argument("csr_spmm: X must be (cols, m) and Y (rows, m)");
  if (!(Y.flags() & py::array::c_style) || !Y.writeable())
    throw std::invalid_argument("csr_spmm: Y must be a writeable C-contiguous float64 array");
  const int64_t m = X.shape(1);
  // Small products run on fewer threads (as in eigsh_py): ~1e5 flops per thread at least.
  n_jobs = static_cast<int>(std::min<int64_t>(
      resolve_threads(n_jobs), std::max<int64_t>(1, (py::len(indices) + rows) * m / 200000)));
  double* py_ = Y.mutable_data();
  const double *pd = data.data(), *px = X.data();
  carray<double> barr;
  const double* pb = nullptr;
  if (!B.is_none()) {
    py::array_t<double> braw = B.cast<py::array_t<double>>();
    if (braw.ptr() == Y.ptr()) {
      pb = py_;
    } else {
      barr = B.cast<carray<double>>();
      if (barr.ndim() != 2 || barr.shape(0) != rows || barr.shape(1) != m)
        throw std::invalid_argument("csr_spmm: B must be (rows, m)");
      pb = barr.data();
    }
  }
  if (indptr.dtype().is(py::dtype::of<int64_t>())) {
    carray<int64_t> ip = indptr.cast<carray<int64_t>>(), ix = indices.cast<carray<int64_t>>();
    py::gil_scoped_release release;
    csr_spmm<int64_t>(rows, ip.data(), ix.data(), pd, m, px, alpha, pb, beta, py_, n_jobs);
  } else {
    carray<int32_t> ip = indptr.cast<carray<int32_t>>(), ix = indices.cast<carray<int32_t>>();
    py::gil_scoped_release release;
    csr_spmm<int32_t>(rows, ip.data(), ix.data(), pd, m, px, alpha, pb, beta, py_, n_jobs);
  }
}

/// Copies a SciPy CSR matrix (indptr, indices, data; rows = len(indptr) - 1) into a CsrF32.
CsrF32 csr_f32(carray<int64_t> indptr, carray<int64_t> indices, carray<float> data) {
  if (indptr.ndim() != 1 || indptr.size() < 1 || indices.size() != data.size())
    throw std::invalid_argument("AmgCycle: malformed CSR arrays");
  if (indices.size() > INT32_MAX)
    throw std::invalid_argument("AmgCycle: more than 2^31 - 1 stored entries");
  CsrF32 M;
  M.rows = indptr.size() - 1;
  M.indptr.assign(indptr.data(), indptr.data() + indptr.size());
  M.indices.assign(indices.data(), indices.data() + indices.size());
  M.data.assign(data.data(), data.data() + data.size());
  return M;
}

/// A RowBlock viewing a 2-D float64 array with unit column stride and `rows` rows (any row
/// stride, e.g. a slice of columns); anything else is a TypeError / ValueError.
RowBlock row_block(py::handle obj, int64_t rows, const char* who) {
  if (!py::isinstance<py::array_t<double>>(obj))
    throw py::type_error(std::string(who) + ": blocks must be float64 NumPy arrays");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<double>()) || a.ndim() != 2)
    throw py::type_error(std::string(who) + ": blocks must be 2-D float64 arrays");
  if (a.shape(0) != rows)
    throw std::invalid_argument(std::string(who) + ": every block must have " +
                                std::to_string(rows) + " rows; got " +
                                std::to_string(a.shape(0)));
  const int64_t cols = a.shape(1);
  const int64_t s0 = a.strides(0), s1 = a.strides(1);
  if (rows == 0 || cols == 0) return RowBlock{static_cast<const double*>(a.data()), cols, cols};
  if ((cols > 1 && s1 != static_cast<int64_t>(sizeof(double))) || s0 < 0 ||
      s0 % static_cast<int64_t>(sizeof(double)) != 0 ||
      (rows > 1 && s0 < cols * static_cast<int64_t>(sizeof(double))))
    throw std::invalid_argument(std::string(who) +
                                ": blocks need contiguous rows (unit column stride)");
  return RowBlock{static_cast<const double*>(a.data()), s0 / static_cast<int64_t>(sizeof(double)),
                  cols};
}

std::vector<RowBlock> row_blocks(py::sequence seq, int64_t rows, const char* who) {
  std::vector<RowBlock> out;
  for (py::handle h : seq) out.push_back(row_block(h, rows, who));
  return out;
}

/// block_gram(U, V, n_jobs) -> [U_1 ... U_a]^T [V_1 ... V_b] (lists of (n, *) blocks).
py::array_t<double> block_gram_py(py::sequence U, py::sequence V, int n_jobs) {
  if (py::len(U) == 0 || py::len(V) == 0)
    throw std::invalid_argument("block_gram: U and V need one block at least");
  py::object first = U[0];
  if (!py::isinstance<py::array>(first) || py::reinterpret_borrow<py::array>(first).ndim() != 2)
    throw py::type_error("block_gram: blocks must be 2-D float64 arrays");
  const int64_t n = py::reinterpret_borrow<py::array>(first).shape(0);
  const std::vector<RowBlock> ub = row_blocks(U, n, "block_gram"),
                              vb = row_blocks(V, n, "block_gram");
  int64_t pu = 0, pv = 0;
  for (const RowBlock& b : ub) pu += b.cols;
  for (const RowBlock& b : vb) pv += b.cols;
  py::array_t<double> G({pu, pv});
  double* g = G.mutable_data();
  std::fill(g, g + pu * pv, 0.0);
  {
    py::gil_scoped_release release;
    block_gram(n, ub, vb, g, n_jobs);
  }
  return G;
}

/// block_lincomb(B, C, Y, beta, D, n_jobs): Y = beta Y + [B_1 ... B_a] C + D in place.
void block_lincomb_py(py::sequence B, carray<double> C, py::array Y, double beta, py::object D,
                      int n_jobs) {
  if (!Y.dtype().is(py::dtype::of<double>()) || Y.ndim() != 2 || !Y.writeable())
    throw py::type_error("block_lincomb: Y must be a writeable 2-D float64 array");
  const int64_t n = Y.shape(0), q = Y.shape(1);
  RowBlock yb = row_block(Y, n, "block_lincomb");
  const std::vector<RowBlock> bb = row_blocks(B, n, "block_lincomb");
  int64_t p = 0;
  for (const RowBlock& b : bb) p += b.cols;
  if (C.ndim() != 2 || C.shape(0) != p || C.shape(1) != q)
    throw std::invalid_argument("block_lincomb: C must be (total columns of B, columns of Y)");
  RowBlock db{nullptr, 0, 0};
  if (!D.is_none()) {
    db = row_block(D, n, "block_lincomb");
    if (db.cols != q) throw std::invalid_argument("block_lincomb: D must be shaped like Y");
  }
  double* y = static_cast<double*>(Y.mutable_data());
  py::gil_scoped_release release;
  block_lincomb(n, bb, C.data(), q, beta, D.is_none() ? nullptr : &db, y, yb.ld, n_jobs);
}

/// block_residual(X, AX, lam, R, n_jobs) -> norms: R = AX - X diag(lam) in place, and the
/// column norms of R.
py::array_t<double> block_residual_py(py::array X, py::array AX, carray<double> lam, py::array R,
                                      int n_jobs) {
  if (!py::isinstance<py::array_t<double>>(X) || X.ndim() != 2)
    throw py::type_error("block_residual: X must be a 2-D float64 array");
  const int64_t n = X.shape(0), m = X.shape(1);
  const RowBlock xb = row_block(X, n, "block_residual"), ab = row_block(AX, n, "block_residual");
  if (!R.writeable()) throw py::type_error("block_residual: R must be writeable");
  const RowBlock rb = row_block(R, n, "block_residual");
  if (ab.cols != m || rb.cols != m || lam.ndim() != 1 || lam.shape(0) != m)
    throw std::invalid_argument("block_residual: X, AX, R must be (n, m) and lam (m,)");
  py::array_t<double> norms(m);
  double* r = static_cast<double*>(R.mutable_data());
  double* out = norms.mutable_data();
  {
    py::gil_scoped_release release;
    block_residual(n, m, xb.ptr, xb.ld, ab.ptr, ab.ld, lam.data(), r, rb.ld, out, n_jobs);
  }
  return norms;
}

void bind_spectral(py::module_& m) {
  const char* doc =
      "eigsh(A, indptr, indices, index64, callback, n, v0, deflate, k, which, tol, max_iter, "
      "ncv, anorm, cheb_degree, cheb_lower, cheb_upper, cheb_cut, verify, seed, n_jobs, scale) -> "
      "(w, V, res, "
      "n_iter, n_matvec, converged, anorm, cheb_cut)";
  m.def("eigsh_f32", &eigsh_py<float>, doc);
  m.def("eigsh_f64", &eigsh_py<double>, doc);
  m.def("csr_matvec_f32_i32", &csr_matvec_py<float, int32_t>);
  m.def("csr_matvec_f64_i32", &csr_matvec_py<double, int32_t>);
  m.def("csr_matvec_f32_i64", &csr_matvec_py<float, int64_t>);
  m.def("csr_matvec_f64_i64", &csr_matvec_py<double, int64_t>);
  m.def("kmeans", &kmeans_py, "kmeans(X, k, n_init, max_iter, tol, seed, n_jobs) -> "
                              "(labels, centers, inertia, n_iter)");
  m.def("aggregate_graph", &aggregate_py,
        "aggregate_graph(indptr, indices, data) -> (labels, n_agg)");
  m.def("rcm_components", &rcm_components_py,
        "rcm_components(indptr, indices) -> (perm, labels, n_components)");
  m.def("permuted_lsym", &permuted_lsym_py,
        "permuted_lsym(indptr, indices, data, d, perm, n_jobs) -> (indptr, indices, data)");
  m.def("block_gram", &block_gram_py, py::arg("U"), py::arg("V"), py::arg("n_jobs") = 0,
        "block_gram(U, V, n_jobs) -> G: [U_1 ... U_a]^T [V_1 ... V_b] for lists of float64 "
        "(n, *) blocks with contiguous rows");
  m.def("block_lincomb", &block_lincomb_py, py::arg("B"), py::arg("C"), py::arg("Y"),
        py::arg("beta") = 0.0, py::arg("D") = py::none(), py::arg("n_jobs") = 0,
        "block_lincomb(B, C, Y, beta, D, n_jobs): Y = beta Y + [B_1 ... B_a] C + D in place "
        "(Y may be one of the B)");
  m.def("block_residual", &block_residual_py, py::arg("X"), py::arg("AX"), py::arg("lam"),
        py::arg("R"), py::arg("n_jobs") = 0,
        "block_residual(X, AX, lam, R, n_jobs) -> norms: R = AX - X diag(lam) in place and "
        "the column norms of R");
  m.def("csr_spmm", &csr_spmm_py,
        "csr_spmm(indptr, indices, data, X, alpha, B, beta, Y, n_jobs): Y = alpha A X + beta B "
        "in place");
  py::class_<AmgCycle>(m, "AmgCycle",
                       "float32 smoothed-aggregation V-cycles (multigrid.hpp); levels are added "
                       "finest first as SciPy CSR arrays")
      .def(py::init<>())
      .def("add_level",
           [](AmgCycle& self, carray<int64_t> a_ptr, carray<int64_t> a_idx, carray<float> a_val,
              carray<float> jac, carray<int64_t> p_ptr, carray<int64_t> p_idx,
              carray<float> p_val, carray<int64_t> r_ptr, carray<int64_t> r_idx,
              carray<float> r_val) {
             self.add_level(csr_f32(a_ptr, a_idx, a_val),
                            std::vector<float>(jac.data(), jac.data() + jac.size()),
                            csr_f32(p_ptr, p_idx, p_val), csr_f32(r_ptr, r_idx, r_val));
           })
      .def("set_coarse",
           [](AmgCycle& self, carray<int64_t> a_ptr, carray<int64_t> a_idx, carray<float> a_val,
              carray<int64_t> p_ptr, carray<int64_t> p_idx, carray<float> p_val) {
             self.set_coarse(csr_f32(a_ptr, a_idx, a_val), csr_f32(p_ptr, p_idx, p_val));
           })
      .def_property_readonly("n_levels", &AmgCycle::n_levels)
      .def("apply",
           [](AmgCycle& self, int64_t level, carray<double> B, int cycles, int n_jobs) {
             if (B.ndim() != 2 || B.shape(0) != self.rows(level))
               throw std::invalid_argument("AmgCycle.apply: B must be (rows of the level, m)");
             const int64_t rows = B.shape(0), m = B.shape(1);
             py::array_t<double> X({rows, m});
             double* px = X.mutable_data();
             const double* pb = B.data();
             {
               py::gil_scoped_release release;
               self.apply(level, m, pb, px, cycles, n_jobs);
             }
             return X;
           },
           py::arg("level"), py::arg("B"), py::arg("cycles"), py::arg("n_jobs"),
           "apply(level, B, cycles, n_jobs) -> X: cycles V-cycles for A_level X = B from X = 0 "
           "(float64 (rows, m) blocks in and out)");
}

}  // namespace geoml
