// Bindings for the Lanczos eigensolver, sparse/dense products and k-means.
#include <algorithm>
#include <climits>
#include <string>
#include <type_traits>

#include "bindings.hpp"
#include "common/common.hpp"
#include "spectral/kmeans.hpp"
#include "spectral/lanczos.hpp"
#include "spectral/lobpcg.hpp"
#include "spectral/multigrid.hpp"

namespace geoml {

namespace {

/// Small problems run on fewer threads: a parallel region per vector operation costs more than
/// it saves below ~1e5 flops (and much more on an oversubscribed machine). `work`: flops of one
/// Lanczos step.
int capped_threads(int n_jobs, int64_t work) {
  const int64_t cap = std::max<int64_t>(1, work / 200000);
  return static_cast<int>(std::min<int64_t>(resolve_threads(n_jobs), cap));
}

LanczosOptions make_lanczos_options(int64_t k, Which which, double tol, int64_t max_iter,
                                    int64_t ncv, double anorm, int cheb_degree, double cheb_lower,
                                    double cheb_upper, double cheb_cut, int cheb_prelim,
                                    bool cheb_auto_lower, bool verify, uint64_t seed) {
  LanczosOptions o;
  o.k = k;
  o.which = which;
  o.tol = tol;
  o.max_iter = max_iter;
  o.ncv = ncv;
  o.anorm = anorm;
  o.cheb_degree = cheb_degree;
  o.cheb_lower = cheb_lower;
  o.cheb_upper = cheb_upper;
  o.cheb_cut = cheb_cut;
  o.cheb_prelim = cheb_prelim;
  o.cheb_auto_lower = cheb_auto_lower;
  o.verify = verify;
  o.seed = seed;
  return o;
}

/// The part every eigsh_* entry shares: v0 / deflate checks, the solve without the GIL, and
/// the result tuple (eigenvalues, eigenvectors (flat n*k), residuals, n_iter, n_matvec,
/// converged, anorm, cheb_cut). `opt.n_threads` is already set.
template <typename T>
py::tuple run_lanczos(int64_t n, const MatVec<T>& mv, const ChebStep<T>& step, const py::object& v0,
                      const py::object& deflate, const LanczosOptions& opt,
                      const MatVec<T>& exact = MatVec<T>(),
                      const ChebStep<T>& team_step = ChebStep<T>()) {
  carray<T> v0a, defa;
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
  LanczosResult<T> res;
  {
    py::gil_scoped_release release;
    res = lanczos<T>(n, mv, pv0, pdef, nd, opt, step, exact, team_step);
  }
  return py::make_tuple(to_numpy(std::move(res.eigenvalues)), to_numpy(std::move(res.eigenvectors)),
                        to_numpy(std::move(res.residuals)), res.n_iter, res.n_matvec, res.converged,
                        res.anorm, res.cheb_cut);
}

/// lanczos() on a dense n x n matrix A.
template <typename T>
py::tuple eigsh_dense_py(exact<T> A_in, LanczosOptions opt, py::object v0, py::object deflate,
                         int n_jobs) {
  const carray<T> A = contiguous(A_in);
  if (A.ndim() != 2 || A.shape(0) != A.shape(1))
    throw std::invalid_argument("dense A must be n x n");
  const int64_t n = A.shape(0);
  const int nt = opt.n_threads = capped_threads(n_jobs, n * n);
  const T* pd = A.data();
  MatVec<T> mv = [=](const T* x, T* y) { dense_matvec<T>(n, pd, x, y, nt); };
  return run_lanczos<T>(n, mv, ChebStep<T>(), v0, deflate, opt);
}

/// lanczos() on a CSR matrix (data, indptr, indices); n = len(indptr) - 1.
template <typename T, typename I>
py::tuple eigsh_csr_py(exact<T> data_in, exact<I> indptr_in, carray<I> indices, LanczosOptions opt,
                       py::object v0, py::object deflate, int n_jobs) {
  const carray<T> data = contiguous(data_in);
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t n = indptr.size() - 1;
  if (n < 0 || data.size() != indices.size()) throw std::invalid_argument("malformed CSR arrays");
  const int nt = opt.n_threads = capped_threads(n_jobs, 20 * n + indices.size());
  const I *pp = indptr.data(), *pi = indices.data();
  const T* pd = data.data();
  MatVec<T> mv = [=](const T* x, T* y) { csr_matvec<T, I>(n, pp, pi, pd, x, y, nt); };
  ChebStep<T> step = [=](const T* yb, const T* ya, T* yc, double s1, double c, double s2) {
    csr_cheb_step<T, I>(n, pp, pi, pd, yb, ya, yc, s1, c, s2, nt);
  };
  return run_lanczos<T>(n, mv, step, v0, deflate, opt);
}

/// lanczos() (float64 vectors) on a CSR matrix whose iteration products (locking included)
/// use float32 copies of its values (`data32`, each the float32 rounding of `data`); the
/// returned Rayleigh quotients and residuals use the float64 values `data`.
py::tuple eigsh_csr_f32v_py(carray<double> data, carray<float> data32, exact<int32_t> indptr_in,
                            carray<int32_t> indices, LanczosOptions opt, py::object v0,
                            int n_jobs) {
  const carray<int32_t> indptr = contiguous(indptr_in);
  const int64_t n = indptr.size() - 1;
  if (n < 0 || data.size() != indices.size() || data32.size() != indices.size())
    throw std::invalid_argument("malformed CSR arrays");
  const int nt = opt.n_threads = capped_threads(n_jobs, 20 * n + indices.size());
  const int32_t *pp = indptr.data(), *pi = indices.data();
  const double* pd = data.data();
  const float* pf = data32.data();
  MatVec<double> mv = [=](const double* x, double* y) { csr_matvec_f32v(n, pp, pi, pf, x, y, nt); };
  ChebStep<double> step = [=](const double* yb, const double* ya, double* yc, double s1, double c,
                              double s2) {
    csr_cheb_step_f32v(n, pp, pi, pf, yb, ya, yc, s1, c, s2, nt);
  };
  MatVec<double> exact = [=](const double* x, double* y) {
    csr_matvec<double, int32_t>(n, pp, pi, pd, x, y, nt);
  };
  ChebStep<double> team = [=](const double* yb, const double* ya, double* yc, double s1, double c,
                              double s2) {
    csr_cheb_step_f32v(n, pp, pi, pf, yb, ya, yc, s1, c, s2, nt, true);
  };
  return run_lanczos<double>(n, mv, step, v0, py::none(), opt, exact, team);
}

/// lanczos() (float64) on N = S P S for an unweighted graph: the CSR pattern P (indptr,
/// indices) and s = diag(S) (`scale`, n values).
template <typename I>
py::tuple eigsh_scaled_pattern_py(exact<I> indptr_in, carray<I> indices, carray<double> scale,
                                  LanczosOptions opt, py::object v0, py::object deflate,
                                  int n_jobs) {
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t n = indptr.size() - 1;
  if (n < 0 || scale.size() != n) throw std::invalid_argument("scale must have n entries");
  const int nt = opt.n_threads = capped_threads(n_jobs, 20 * n + indices.size());
  const I *pp = indptr.data(), *pi = indices.data();
  const double* ps = scale.data();
  std::vector<double> zbuf;
  MatVec<double> mv = [=, &zbuf](const double* x, double* y) {
    scaled_pattern_matvec<double, I>(n, pp, pi, ps, x, y, zbuf, nt);
  };
  ChebStep<double> step = [=, &zbuf](const double* yb, const double* ya, double* yc, double s1,
                                     double c, double s2) {
    scaled_pattern_cheb_step<double, I>(n, pp, pi, ps, yb, ya, yc, s1, c, s2, zbuf, nt);
  };
  return run_lanczos<double>(n, mv, step, v0, deflate, opt);
}

/// lanczos() on a Python callable y = matvec(x) (length-n arrays of `dtype`, float32 or
/// float64; called with the GIL held).
template <typename T>
py::tuple eigsh_callback_t(py::function matvec, int64_t n, LanczosOptions opt, py::object v0,
                           py::object deflate, int n_jobs) {
  opt.n_threads = capped_threads(n_jobs, 20 * n);
  MatVec<T> mv = [&matvec, n](const T* x, T* y) {
    py::gil_scoped_acquire gil;
    py::array_t<T> xa(n);
    std::copy(x, x + n, xa.mutable_data());
    carray<T> r = matvec(xa).template cast<carray<T>>();
    if (r.size() != n)
      throw std::invalid_argument("the matvec returned a vector of the wrong size");
    std::copy(r.data(), r.data() + n, y);
  };
  return run_lanczos<T>(n, mv, ChebStep<T>(), v0, deflate, opt);
}

py::tuple eigsh_callback_py(py::function matvec, int64_t n, py::dtype dtype, LanczosOptions opt,
                            py::object v0, py::object deflate, int n_jobs) {
  if (dtype.is(py::dtype::of<double>()))
    return eigsh_callback_t<double>(matvec, n, opt, v0, deflate, n_jobs);
  if (dtype.is(py::dtype::of<float>()))
    return eigsh_callback_t<float>(matvec, n, opt, v0, deflate, n_jobs);
  throw py::type_error("eigsh_callback: dtype must be float32 or float64");
}

template <typename T, typename I>
py::array_t<T> csr_matvec_py(exact<I> indptr_in, carray<I> indices, exact<T> data_in, carray<T> x,
                             int n_jobs) {
  const carray<I> indptr = contiguous(indptr_in);
  const carray<T> data = contiguous(data_in);
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

/// Throws unless (indptr, indices) with `nnz` values is a whole CSR matrix: indptr[0] = 0 and
/// indptr[n] = len(indices) = nnz (the kernels below read every row).
template <typename I>
void check_full_csr(const carray<I>& indptr, const carray<I>& indices, int64_t nnz) {
  const int64_t n = indptr.size() - 1;
  if (n < 0 || nnz != indices.size() || static_cast<int64_t>(indptr.data()[n]) != indices.size() ||
      indptr.data()[0] != 0)
    throw std::invalid_argument("malformed CSR arrays");
}

template <typename T, typename I>
py::tuple csr_asymmetry_py(exact<I> indptr_in, carray<I> indices, exact<T> data_in) {
  const carray<I> indptr = contiguous(indptr_in);
  const carray<T> data = contiguous(data_in);
  const int64_t n = indptr.size() - 1;
  check_full_csr(indptr, indices, data.size());
  const I *pp = indptr.data(), *pi = indices.data();
  const T* pd = data.data();
  double diff = 0, amax = 0;
  {
    py::gil_scoped_release release;
    csr_asymmetry<T, I>(n, pp, pi, pd, diff, amax);
  }
  return py::make_tuple(diff, amax);
}

template <typename T, typename I>
py::tuple csr_gershgorin_py(exact<I> indptr_in, carray<I> indices, exact<T> data_in) {
  const carray<I> indptr = contiguous(indptr_in);
  const carray<T> data = contiguous(data_in);
  const int64_t n = indptr.size() - 1;
  check_full_csr(indptr, indices, data.size());
  double lo = 0, up = 0;
  {
    py::gil_scoped_release release;
    csr_gershgorin<T, I>(n, indptr.data(), indices.data(), data.data(), lo, up);
  }
  return py::make_tuple(lo, up);
}

py::object float32_copy_py(exact<double> data_in) {
  const carray<double> data = contiguous(data_in);
  const int64_t m = data.size();
  py::array_t<float> d32(m);
  double s2 = 0, s1 = 0, e2 = 0;
  bool ok;
  {
    py::gil_scoped_release release;
    ok = float32_copy(m, data.data(), d32.mutable_data(), s2, s1, e2);
  }
  if (!ok) return py::none();
  return py::make_tuple(d32, s2, s1, e2);
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
  return py::make_tuple(to_numpy(std::move(r.labels)), to_numpy(std::move(r.centers)), r.inertia,
                        r.n_iter);
}

/// Greedy aggregation (multigrid.hpp) of a CSR graph; returns (labels int32 (n,), n_agg).
template <typename I>
py::tuple aggregate_py(exact<I> indptr_in, carray<I> indices, py::object data) {
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t n = indptr.size() - 1;
  std::vector<int32_t> labels(n);
  carray<double> d;
  const double* pd = nullptr;
  if (!data.is_none()) {
    d = data.cast<carray<double>>();
    pd = d.data();
  }
  int64_t nagg;
  {
    py::gil_scoped_release release;
    nagg = aggregate_graph<I>(n, indptr.data(), indices.data(), pd, labels.data());
  }
  return py::make_tuple(to_numpy(std::move(labels)), nagg);
}

/// RCM order and connected components (multigrid.hpp) of a symmetric CSR pattern; returns
/// (perm int64 (n,), labels int32 (n,), n_components).
template <typename I>
py::tuple rcm_components_py(exact<I> indptr_in, carray<I> indices) {
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t n = indptr.size() - 1;
  std::vector<int64_t> perm(n);
  std::vector<int32_t> labels(n);
  int64_t ncomp;
  {
    py::gil_scoped_release release;
    ncomp = rcm_components<I>(n, indptr.data(), indices.data(), perm.data(), labels.data());
  }
  return py::make_tuple(to_numpy(std::move(perm)), to_numpy(std::move(labels)), ncomp);
}

/// L_sym of a symmetric CSR affinity renumbered by perm (multigrid.hpp); returns the CSR
/// arrays (indptr int64, indices int64, data float64).
template <typename I>
py::tuple permuted_lsym_py(exact<I> indptr_in, carray<I> indices, carray<double> data,
                           carray<double> d, carray<int64_t> perm, int n_jobs) {
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t n = indptr.size() - 1;
  if (d.size() != n || perm.size() != n || data.size() != indices.size())
    throw std::invalid_argument("permuted_lsym: inconsistent array sizes");
  big_vector<int64_t> ptr(n + 1), idx;
  big_vector<double> val;
  const double *pd = data.data(), *pdeg = d.data();
  const int64_t* pp = perm.data();
  {
    py::gil_scoped_release release;
    permuted_lsym<I>(n, indptr.data(), indices.data(), pd, pdeg, pp, ptr.data(), idx, val, n_jobs);
  }
  return py::make_tuple(to_numpy(std::move(ptr)), to_numpy(std::move(idx)),
                        to_numpy(std::move(val)));
}

/// Y = alpha * A X + beta * B (B None: 0; B may be Y) for CSR A (rows = len(indptr) - 1)
/// and C-contiguous float64 blocks X (cols, m), B and Y (rows, m); Y is written in place.
template <typename I>
void csr_spmm_py(exact<I> indptr_in, carray<I> indices, carray<double> data, carray<double> X,
                 py::array_t<double> Y, double alpha, py::object B, double beta, int n_jobs) {
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t rows = indptr.size() - 1;
  if (X.ndim() != 2 || Y.ndim() != 2 || Y.shape(0) != rows || Y.shape(1) != X.shape(1))
    throw std::invalid_argument("csr_spmm: X must be (cols, m) and Y (rows, m)");
  if (!(Y.flags() & py::array::c_style) || !Y.writeable())
    throw std::invalid_argument("csr_spmm: Y must be a writeable C-contiguous float64 array");
  const int64_t m = X.shape(1);
  // Small products run on fewer threads (as in eigsh): ~1e5 flops per thread at least.
  n_jobs = capped_threads(n_jobs, (indices.size() + rows) * m);
  double* py_ = Y.mutable_data();
  const double *pd = data.data(), *px = X.data();
  carray<double> barr;
  const double* pb = nullptr;
  if (!B.is_none()) {
    if (B.ptr() == Y.ptr()) {
      pb = py_;
    } else {
      barr = B.cast<carray<double>>();
      if (barr.ndim() != 2 || barr.shape(0) != rows || barr.shape(1) != m)
        throw std::invalid_argument("csr_spmm: B must be (rows, m)");
      pb = barr.data();
    }
  }
  py::gil_scoped_release release;
  csr_spmm<I>(rows, indptr.data(), indices.data(), pd, m, px, alpha, pb, beta, py_, n_jobs);
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
                                std::to_string(rows) + " rows; got " + std::to_string(a.shape(0)));
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

void amg_add_level(AmgCycle& self, carray<int64_t> a_ptr, carray<int64_t> a_idx,
                   carray<float> a_val, carray<float> jac, carray<int64_t> p_ptr,
                   carray<int64_t> p_idx, carray<float> p_val, carray<int64_t> r_ptr,
                   carray<int64_t> r_idx, carray<float> r_val) {
  self.add_level(csr_f32(a_ptr, a_idx, a_val),
                 std::vector<float>(jac.data(), jac.data() + jac.size()),
                 csr_f32(p_ptr, p_idx, p_val), csr_f32(r_ptr, r_idx, r_val));
}

void amg_set_coarse(AmgCycle& self, carray<int64_t> a_ptr, carray<int64_t> a_idx,
                    carray<float> a_val, carray<int64_t> p_ptr, carray<int64_t> p_idx,
                    carray<float> p_val) {
  self.set_coarse(csr_f32(a_ptr, a_idx, a_val), csr_f32(p_ptr, p_idx, p_val));
}

py::array_t<double> amg_apply(AmgCycle& self, int64_t level, carray<double> B, int cycles,
                              int n_jobs) {
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
}

}  // namespace

void bind_spectral(py::module_& m) {
  py::native_enum<Which>(m, "Which", "enum.Enum", "Which end of the spectrum eigsh computes.")
      .value("LA", Which::LA, "largest algebraic")
      .value("SA", Which::SA, "smallest algebraic")
      .value("LM", Which::LM, "largest magnitude")
      .finalize();
  const LanczosOptions d;
  py::class_<LanczosOptions>(m, "LanczosOptions", "Lanczos eigensolver options (lanczos.hpp).")
      .def(py::init(&make_lanczos_options), py::kw_only(), py::arg("k") = d.k,
           py::arg("which") = d.which, py::arg("tol") = d.tol, py::arg("max_iter") = d.max_iter,
           py::arg("ncv") = d.ncv, py::arg("anorm") = d.anorm,
           py::arg("cheb_degree") = d.cheb_degree, py::arg("cheb_lower") = d.cheb_lower,
           py::arg("cheb_upper") = d.cheb_upper, py::arg("cheb_cut") = d.cheb_cut,
           py::arg("cheb_prelim") = d.cheb_prelim, py::arg("cheb_auto_lower") = d.cheb_auto_lower,
           py::arg("verify") = d.verify, py::arg("seed") = d.seed,
           "Options from keywords (the defaults are the C++ ones).")
      .def_readwrite("k", &LanczosOptions::k, "Eigenpairs wanted.")
      .def_readwrite("which", &LanczosOptions::which, "Which end of the spectrum.")
      .def_readwrite("tol", &LanczosOptions::tol, "Converged: ||A x - theta x|| <= tol ||A||.")
      .def_readwrite("max_iter", &LanczosOptions::max_iter, "Restart cycles at most.")
      .def_readwrite("ncv", &LanczosOptions::ncv, "Basis size (0: max(2k + 1, 20), at most n).")
      .def_readwrite("anorm", &LanczosOptions::anorm, "||A||_2 if known (> 0), else estimated.")
      .def_readwrite("cheb_degree", &LanczosOptions::cheb_degree,
                     "> 0: Lanczos on a Chebyshev filter p(A) of this degree (LA, LM if even).")
      .def_readwrite("cheb_lower", &LanczosOptions::cheb_lower, "Lower end of A's spectrum.")
      .def_readwrite("cheb_upper", &LanczosOptions::cheb_upper, "Upper end of A's spectrum.")
      .def_readwrite("cheb_cut", &LanczosOptions::cheb_cut,
                     "Damped interval [cheb_lower, cheb_cut]; <= cheb_lower: from Ritz values.")
      .def_readwrite("cheb_prelim", &LanczosOptions::cheb_prelim,
                     "Unfiltered restart cycles before the filter is placed.")
      .def_readwrite("cheb_auto_lower", &LanczosOptions::cheb_auto_lower,
                     "Raise cheb_lower to the smallest unfiltered Ritz value less a margin.")
      .def_readwrite("verify", &LanczosOptions::verify,
                     "One more cycle from a fresh vector to catch missed multiplicities.")
      .def_readwrite("seed", &LanczosOptions::seed, "Seed of the random start vectors.");
  m.def(
      "set_lapack_syevd", [](std::uintptr_t address) { set_lapack_syevd(address); },
      py::arg("address"), "dsyevd of SciPy's cython_lapack (0: none) for Lanczos' Rayleigh-Ritz.");
  def_overloads(m, "eigsh_dense", Floats{}, GEOML_PICK(eigsh_dense_py), py::arg("A").noconvert(),
                py::kw_only(), py::arg("options"), py::arg("v0") = py::none(),
                py::arg("deflate") = py::none(), py::arg("n_jobs") = 0,
                "Lanczos on a dense symmetric matrix -> (w, V, res, n_iter, n_mv, conv, anorm, "
                "cut).");
  def_overloads2(m, "eigsh_csr", Floats{}, Indices{}, GEOML_PICK2(eigsh_csr_py),
                 py::arg("data").noconvert(), py::arg("indptr").noconvert(), py::arg("indices"),
                 py::kw_only(), py::arg("options"), py::arg("v0") = py::none(),
                 py::arg("deflate") = py::none(), py::arg("n_jobs") = 0,
                 "Lanczos on a symmetric CSR matrix -> (w, V, res, n_iter, n_mv, conv, anorm, "
                 "cut).");
  m.def("eigsh_csr_f32v", &eigsh_csr_f32v_py, py::arg("data"), py::arg("data32"),
        py::arg("indptr").noconvert(), py::arg("indices"), py::kw_only(), py::arg("options"),
        py::arg("v0") = py::none(), py::arg("n_jobs") = 0,
        "eigsh_csr (int32) with float32 values in the solve's products -> as eigsh_csr.");
  def_overloads(m, "eigsh_scaled_pattern", Indices{}, GEOML_PICK(eigsh_scaled_pattern_py),
                py::arg("indptr").noconvert(), py::arg("indices"), py::arg("scale"), py::kw_only(),
                py::arg("options"), py::arg("v0") = py::none(), py::arg("deflate") = py::none(),
                py::arg("n_jobs") = 0,
                "float64 Lanczos on diag(scale) P diag(scale), P a CSR pattern -> as eigsh_csr.");
  m.def("eigsh_callback", &eigsh_callback_py, py::arg("matvec"), py::kw_only(), py::arg("n"),
        py::arg("dtype"), py::arg("options"), py::arg("v0") = py::none(),
        py::arg("deflate") = py::none(), py::arg("n_jobs") = 0,
        "Lanczos on a Python matvec(x) of float32/float64 vectors -> as eigsh_csr.");
  def_overloads2(m, "csr_matvec", Floats{}, Indices{}, GEOML_PICK2(csr_matvec_py),
                 py::arg("indptr").noconvert(), py::arg("indices"), py::arg("data").noconvert(),
                 py::arg("x"), py::kw_only(), py::arg("n_jobs") = 0,
                 "y = A x for a CSR matrix A (the Lanczos solver's SpMV).");
  def_overloads2(m, "csr_asymmetry", Floats{}, Indices{}, GEOML_PICK2(csr_asymmetry_py),
                 py::arg("indptr").noconvert(), py::arg("indices"), py::arg("data").noconvert(),
                 "(max |A - A.T|, max |A|) of a square CSR matrix with sorted, unique indices.");
  def_overloads2(m, "csr_gershgorin", Floats{}, Indices{}, GEOML_PICK2(csr_gershgorin_py),
                 py::arg("indptr").noconvert(), py::arg("indices"), py::arg("data").noconvert(),
                 "Gershgorin's (lower, upper) bounds of a symmetric CSR matrix's spectrum.");
  m.def("float32_copy", &float32_copy_py, py::arg("data").noconvert(),
        "(float32 copy, sum d^2, sum d, sum (d - d32)^2) of float64 values, or None.");
  m.def("kmeans", &kmeans_py, py::arg("X"), py::kw_only(), py::arg("k"), py::arg("n_init"),
        py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_jobs") = 0,
        "k-means++ / Lloyd on float64 rows -> (labels, centers, inertia, n_iter).");
  def_overloads(m, "aggregate_graph", Indices{}, GEOML_PICK(aggregate_py),
                py::arg("indptr").noconvert(), py::arg("indices"), py::arg("data") = py::none(),
                "Greedy aggregation of a CSR graph -> (labels, n_agg).");
  def_overloads(m, "rcm_components", Indices{}, GEOML_PICK(rcm_components_py),
                py::arg("indptr").noconvert(), py::arg("indices"),
                "RCM order and connected components of a CSR pattern -> (perm, labels, n).");
  def_overloads(m, "permuted_lsym", Indices{}, GEOML_PICK(permuted_lsym_py),
                py::arg("indptr").noconvert(), py::arg("indices"), py::arg("data"), py::arg("d"),
                py::arg("perm"), py::kw_only(), py::arg("n_jobs") = 0,
                "L_sym of a CSR affinity renumbered by perm -> (indptr, indices, data).");
  def_overloads(m, "csr_spmm", Indices{}, GEOML_PICK(csr_spmm_py), py::arg("indptr").noconvert(),
                py::arg("indices"), py::arg("data"), py::arg("X"), py::arg("Y").noconvert(),
                py::kw_only(), py::arg("alpha") = 1.0, py::arg("B") = py::none(),
                py::arg("beta") = 0.0, py::arg("n_jobs") = 0,
                "Y = alpha A X + beta B in place, A CSR (B may be Y).");
  m.def("block_gram", &block_gram_py, py::arg("U"), py::arg("V"), py::kw_only(),
        py::arg("n_jobs") = 0,
        "[U_1 ... U_a]^T [V_1 ... V_b] for lists of float64 (n, *) blocks with contiguous rows.");
  m.def("block_lincomb", &block_lincomb_py, py::arg("B"), py::arg("C"), py::arg("Y"), py::kw_only(),
        py::arg("beta") = 0.0, py::arg("D") = py::none(), py::arg("n_jobs") = 0,
        "Y = beta Y + [B_1 ... B_a] C + D in place (Y may be one of the B).");
  m.def("block_residual", &block_residual_py, py::arg("X"), py::arg("AX"), py::arg("lam"),
        py::arg("R"), py::kw_only(), py::arg("n_jobs") = 0,
        "R = AX - X diag(lam) in place -> the column norms of R.");
  py::class_<AmgCycle>(m, "AmgCycle",
                       "float32 smoothed-aggregation V-cycles; levels added finest first (CSR).")
      .def(py::init<>(), "An empty hierarchy.")
      .def("add_level", &amg_add_level, py::arg("a_ptr"), py::arg("a_idx"), py::arg("a_val"),
           py::arg("jac"), py::arg("p_ptr"), py::arg("p_idx"), py::arg("p_val"), py::arg("r_ptr"),
           py::arg("r_idx"), py::arg("r_val"),
           "Append a level: operator A, Jacobi weights, prolongation P, restriction R.")
      .def("set_coarse", &amg_set_coarse, py::arg("a_ptr"), py::arg("a_idx"), py::arg("a_val"),
           py::arg("p_ptr"), py::arg("p_idx"), py::arg("p_val"),
           "Set the coarsest operator A and its pseudo-inverse P.")
      .def_property_readonly("n_levels", &AmgCycle::n_levels, "Levels added so far.")
      .def("apply", &amg_apply, py::arg("level"), py::arg("B"), py::kw_only(), py::arg("cycles"),
           py::arg("n_jobs") = 0,
           "cycles V-cycles for A_level X = B from X = 0 (float64 (rows, m) blocks).");
}

}  // namespace geoml
