// Bindings for optimal transport (exact network simplex, Sinkhorn, batched drivers).
#include "ot/ot.hpp"
#include "bindings.hpp"
#include "common/common.hpp"

namespace geoml {

namespace {

/// A float64 array of `size` values for the padded plans (and its data in `data`) when
/// `want` is set, else None (and `data` stays null).
py::object optional_plans(bool want, py::ssize_t size, double*& data) {
  if (!want) return py::none();
  py::array_t<double> P(size);
  data = P.mutable_data();
  return P;
}

py::tuple emd_py(carray<double> a, carray<double> b, carray<double> C, int64_t max_iter,
                 bool sparse) {
  const int m = static_cast<int>(a.shape(0)), n = static_cast<int>(b.shape(0));
  if (C.ndim() != 2 || C.shape(0) != m || C.shape(1) != n)
    throw std::invalid_argument("C must have shape (len(a), len(b))");
  EmdWorkspace ws;
  int status = 0;
  double cost;
  py::array_t<double> f(m), g(n);
  {
    py::gil_scoped_release release;
    cost = emd_solve(m, n, a.data(), b.data(), C.data(), ws, max_iter, &status);
    emd_duals(ws, f.mutable_data(), g.mutable_data());
  }
  py::object plan;
  if (sparse) {
    std::vector<int64_t> ri, ci;
    std::vector<double> val;
    emd_plan_sparse(ws, ri, ci, val);
    plan =
        py::make_tuple(to_numpy(std::move(ri)), to_numpy(std::move(ci)), to_numpy(std::move(val)));
  } else {
    py::array_t<double> P({m, n});
    double* pp = P.mutable_data();
    {
      py::gil_scoped_release release;
      emd_plan_dense(ws, pp);
    }
    plan = P;
  }
  return py::make_tuple(cost, status, ws.n_pivots, plan, f, g);
}

py::tuple emd_batched_py(carray<double> a, carray<int64_t> a_off, carray<double> b,
                         carray<int64_t> b_off, carray<double> C, carray<int64_t> c_off,
                         int64_t max_iter, bool want_plans, int n_jobs) {
  const int64_t B = c_off.shape(0);
  if (a_off.shape(0) != B + 1 || b_off.shape(0) != B + 1)
    throw std::invalid_argument("offsets must have B + 1 entries");
  py::array_t<double> cost(B);
  py::array_t<int> status(B);
  double* pp = nullptr;
  py::object plans = optional_plans(want_plans, C.size(), pp);
  double* pc = cost.mutable_data();
  int* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    emd_batched(B, a.data(), a_off.data(), b.data(), b_off.data(), C.data(), c_off.data(), max_iter,
                n_jobs, pc, ps, pp);
  }
  return py::make_tuple(cost, status, plans);
}

SinkhornParams make_params(double eps, double rho, int64_t max_iter, double tol, double eps_start,
                           double eps_factor, double stage_tol, double start_ratio, bool anderson) {
  SinkhornParams p;
  p.start_ratio = start_ratio;
  p.anderson = anderson;
  p.eps = eps;
  p.rho = rho;
  p.max_iter = max_iter;
  p.tol = tol;
  p.eps_start = eps_start;
  p.eps_factor = eps_factor;
  p.stage_tol = stage_tol;
  return p;
}

py::tuple sinkhorn_py(carray<double> a, carray<double> b, carray<double> C, carray<double> f0,
                      carray<double> g0, SinkhornParams p, int n_jobs, bool scan) {
  const int m = static_cast<int>(a.shape(0)), n = static_cast<int>(b.shape(0));
  if (C.ndim() != 2 || C.shape(0) != m || C.shape(1) != n)
    throw std::invalid_argument("C must have shape (len(a), len(b))");
  p.n_threads = resolve_threads(n_jobs);
  py::array_t<double> f(m), g(n), P({m, n});
  std::copy(f0.data(), f0.data() + m, f.mutable_data());
  std::copy(g0.data(), g0.data() + n, g.mutable_data());
  double* pf = f.mutable_data();
  double* pg = g.mutable_data();
  double* pp = P.mutable_data();
  SinkhornInfo info;
  CostScan cs;
  {
    py::gil_scoped_release release;
    SinkhornWork w;
    info =
        sinkhorn_dense(m, n, a.data(), b.data(), C.data(), p, pf, pg, pp, w, scan ? &cs : nullptr);
  }
  py::object sc = py::none();
  if (scan) sc = py::make_tuple(cs.lo, cs.hi, cs.finite);
  return py::make_tuple(P, f, g, info.n_iter, info.err, info.converged, info.cost,
                        info.marginal_error, sc);
}

py::tuple sinkhorn_newton_py(carray<double> a, carray<double> b, carray<double> C, double eps,
                             double tol, int64_t max_iter, int64_t n_warmup, double sparsity,
                             int n_jobs) {
  const int m = static_cast<int>(a.shape(0)), n = static_cast<int>(b.shape(0));
  if (C.ndim() != 2 || C.shape(0) != m || C.shape(1) != n)
    throw std::invalid_argument("C must have shape (len(a), len(b))");
  NewtonParams p;
  p.eps = eps;
  p.tol = tol;
  p.max_iter = max_iter;
  p.n_warmup = n_warmup;
  p.sparsity = sparsity;
  p.n_threads = resolve_threads(n_jobs);
  py::array_t<double> f(m), g(n), P({m, n});
  double* pf = f.mutable_data();
  double* pg = g.mutable_data();
  double* pp = P.mutable_data();
  std::fill(pf, pf + m, 0.0);
  std::fill(pg, pg + n, 0.0);
  NewtonInfo info;
  {
    py::gil_scoped_release release;
    info = sinkhorn_newton_dense(m, n, a.data(), b.data(), C.data(), p, pf, pg, pp);
  }
  return py::make_tuple(P, f, g, info.n_warmup, info.n_newton, info.n_cg, info.n_passes, info.err,
                        info.converged, info.cost, info.marginal_error, info.used_float32);
}

py::tuple sinkhorn_points_py(carray<double> x, carray<double> y, carray<double> a, carray<double> b,
                             int power, SinkhornParams p, int n_jobs) {
  const int m = static_cast<int>(x.shape(0)), n = static_cast<int>(y.shape(0));
  const int d = static_cast<int>(x.shape(1));
  if (y.shape(1) != d || a.shape(0) != m || b.shape(0) != n)
    throw std::invalid_argument("sinkhorn_points: inconsistent shapes");
  p.n_threads = resolve_threads(n_jobs);
  py::array_t<double> f(m), g(n);
  double* pf = f.mutable_data();
  double* pg = g.mutable_data();
  std::fill(pf, pf + m, 0.0);
  std::fill(pg, pg + n, 0.0);
  double cost = 0.0;
  SinkhornInfo info;
  {
    py::gil_scoped_release release;
    info =
        sinkhorn_points(m, n, d, x.data(), y.data(), a.data(), b.data(), power, p, pf, pg, &cost);
  }
  return py::make_tuple(cost, f, g, info.n_iter, info.err, info.converged);
}

py::tuple sinkhorn_batched_py(carray<double> a, carray<int64_t> a_off, carray<double> b,
                              carray<int64_t> b_off, carray<double> C, carray<int64_t> c_off,
                              SinkhornParams p, bool want_plans, int n_jobs) {
  const int64_t B = c_off.shape(0);
  if (a_off.shape(0) != B + 1 || b_off.shape(0) != B + 1)
    throw std::invalid_argument("offsets must have B + 1 entries");
  p.n_threads = 1;  // one thread per problem: n_jobs runs problems in parallel
  py::array_t<double> cost(B), err(B);
  py::array_t<int64_t> iters(B);
  py::array_t<bool> conv(B);
  double* pp = nullptr;
  py::object plans = optional_plans(want_plans, C.size(), pp);
  double* pc = cost.mutable_data();
  double* pe = err.mutable_data();
  int64_t* pi = iters.mutable_data();
  auto* pv = reinterpret_cast<unsigned char*>(conv.mutable_data());
  {
    py::gil_scoped_release release;
    sinkhorn_batched(B, a.data(), a_off.data(), b.data(), b_off.data(), C.data(), c_off.data(), p,
                     n_jobs, pc, pe, pi, pv, pp);
  }
  return py::make_tuple(cost, err, iters, conv, plans);
}

py::tuple value_range_py(carray<double> x, int n_jobs) {
  double lo, hi;
  bool finite;
  {
    py::gil_scoped_release release;
    finite = value_range(static_cast<int64_t>(x.size()), x.data(), n_jobs, &lo, &hi);
  }
  return py::make_tuple(lo, hi, finite);
}

py::tuple linear_assignment_py(carray<double> C) {
  if (C.ndim() != 2) throw std::invalid_argument("C must be 2-D");
  const int m = static_cast<int>(C.shape(0)), n = static_cast<int>(C.shape(1));
  const int k = std::min(m, n);
  py::array_t<int64_t> ri(k), ci(k);
  int64_t* pr = ri.mutable_data();
  int64_t* pc = ci.mutable_data();
  double cost = 0.0;
  int status;
  {
    py::gil_scoped_release release;
    AssignmentWork w;
    status = linear_assignment(m, n, C.data(), pr, pc, &cost, w);
  }
  return py::make_tuple(ri, ci, cost, status);
}

py::tuple linear_assignment_batched_py(carray<double> C, carray<int64_t> c_off, carray<int64_t> ms,
                                       carray<int64_t> ns, carray<int64_t> k_off, int n_jobs) {
  const int64_t B = c_off.shape(0);
  if (ms.shape(0) != B || ns.shape(0) != B || k_off.shape(0) != B + 1)
    throw std::invalid_argument("c_off, ms, ns need B entries and k_off B + 1");
  const int64_t K = k_off.data()[B];
  py::array_t<int64_t> ri(K), ci(K);
  py::array_t<double> cost(B);
  py::array_t<int> status(B);
  int64_t* pr = ri.mutable_data();
  int64_t* pc = ci.mutable_data();
  double* pcost = cost.mutable_data();
  int* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    linear_assignment_batched(B, C.data(), c_off.data(), ms.data(), ns.data(), k_off.data(), n_jobs,
                              pr, pc, pcost, ps);
  }
  return py::make_tuple(ri, ci, cost, status);
}

template <typename T>
py::tuple sinkhorn_symmetric_py(exact<T> K_in, carray<double> a, double tol, int64_t max_iter,
                                bool want_plan, int n_jobs) {
  const carray<T> K = contiguous(K_in);
  const int64_t n = a.shape(0);
  if (K.ndim() != 2 || K.shape(0) != n || K.shape(1) != n)
    throw std::invalid_argument("K must have shape (len(a), len(a))");
  const int nt = resolve_threads(n_jobs);
  py::array_t<double> logd(n);
  double* pl = logd.mutable_data();
  std::fill(pl, pl + n, 0.0);
  py::object plan = py::none();
  T* pp = nullptr;
  if (want_plan) {
    py::array_t<T> P({n, n});
    pp = P.mutable_data();
    plan = P;
  }
  const T* pk = K.data();
  SymmetricInfo info;
  {
    py::gil_scoped_release release;
    info = sinkhorn_symmetric_dense<T>(n, pk, a.data(), tol, max_iter, nt, pl, pp);
  }
  return py::make_tuple(plan, logd, info.n_iter, info.marginal_error, info.converged,
                        info.zero_row);
}

py::tuple sinkhorn_symmetric_csr_py(carray<int64_t> indptr, carray<int64_t> indices,
                                    carray<double> data, carray<double> a, double tol,
                                    int64_t max_iter, int n_jobs) {
  const int64_t n = a.shape(0);
  if (indptr.shape(0) != n + 1 || indices.shape(0) != data.shape(0))
    throw std::invalid_argument("malformed CSR matrix");
  const int nt = resolve_threads(n_jobs);
  py::array_t<double> logd(n);
  double* pl = logd.mutable_data();
  std::fill(pl, pl + n, 0.0);
  SymmetricInfo info;
  {
    py::gil_scoped_release release;
    info = sinkhorn_symmetric_csr(n, indptr.data(), indices.data(), data.data(), a.data(), tol,
                                  max_iter, nt, pl);
  }
  return py::make_tuple(logd, info.n_iter, info.marginal_error, info.converged, info.zero_row);
}

py::tuple sinkhorn_symmetric_cost_py(carray<double> C, carray<double> a, double eps, double tol,
                                     int64_t max_iter, int n_jobs, py::object rowmin,
                                     bool c_symmetric, int64_t f32_min_entries, bool check,
                                     double sym_rtol) {
  const int64_t n = a.shape(0);
  if (C.ndim() != 2 || C.shape(0) != n || C.shape(1) != n)
    throw std::invalid_argument("C must have shape (len(a), len(a))");
  carray<double> rm;
  const double* prm = nullptr;
  if (!rowmin.is_none()) {
    rm = rowmin.cast<carray<double>>();
    if (rm.ndim() != 1 || rm.shape(0) != n)
      throw std::invalid_argument("rowmin must have shape (len(a),)");
    prm = rm.data();
  }
  const int nt = resolve_threads(n_jobs);
  py::array_t<double> logd(n), P({n, n});
  double* pl = logd.mutable_data();
  double* pp = P.mutable_data();
  SymmetricScan scan;
  SymmetricInfo info;
  {
    py::gil_scoped_release release;
    info = sinkhorn_symmetric_cost(n, C.data(), eps, a.data(), tol, max_iter, nt, pl, pp, prm,
                                   c_symmetric, f32_min_entries, check ? &scan : nullptr, sym_rtol);
  }
  py::object sc = py::none();
  if (check) sc = py::make_tuple(scan.finite, scan.min, scan.absmax, scan.asym);
  return py::make_tuple(P, logd, info.n_iter, info.marginal_error, info.converged, info.zero_row,
                        sc);
}

template <typename T>
py::tuple symmetric_scan_py(exact<T> M_in, int n_jobs, bool rowmin) {
  const carray<T> M = contiguous(M_in);
  if (M.ndim() != 2 || M.shape(0) != M.shape(1))
    throw std::invalid_argument("M must be a square (n, n) matrix");
  const int nt = resolve_threads(n_jobs);
  const int64_t n = M.shape(0);
  py::object rm = py::none();
  double* prm = nullptr;
  if (rowmin) {
    py::array_t<double> r(n);
    prm = r.mutable_data();
    rm = r;
  }
  SymmetricScan r;
  {
    py::gil_scoped_release release;
    r = symmetric_scan<T>(n, M.data(), nt, prm);
  }
  return py::make_tuple(r.finite, r.min, r.absmax, r.asym, rm);
}

}  // namespace

void bind_ot(py::module_& m) {
  const SinkhornParams d;
  py::class_<SinkhornParams>(m, "SinkhornParams", "Sinkhorn solver parameters (ot.hpp).")
      .def(py::init(&make_params), py::kw_only(), py::arg("eps") = d.eps, py::arg("rho") = d.rho,
           py::arg("max_iter") = d.max_iter, py::arg("tol") = d.tol,
           py::arg("eps_start") = d.eps_start, py::arg("eps_factor") = d.eps_factor,
           py::arg("stage_tol") = d.stage_tol, py::arg("start_ratio") = d.start_ratio,
           py::arg("anderson") = d.anderson,
           "Parameters from keywords (the defaults are the C++ ones).")
      .def_readwrite("eps", &SinkhornParams::eps, "Final entropic regularisation (> 0).")
      .def_readwrite("rho", &SinkhornParams::rho, "Marginal KL relaxation; < 0: balanced.")
      .def_readwrite("max_iter", &SinkhornParams::max_iter, "Scaling iterations, all stages.")
      .def_readwrite("tol", &SinkhornParams::tol,
                     "Balanced: L1 marginal error; unbalanced: certified potential error.")
      .def_readwrite("eps_start", &SinkhornParams::eps_start,
                     "First eps of the annealing schedule (<= eps: no annealing).")
      .def_readwrite("start_ratio", &SinkhornParams::start_ratio,
                     "With scan=True: anneal from (max C - min C) / 2 when eps < start_ratio "
                     "(max C - min C).")
      .def_readwrite("anderson", &SinkhornParams::anderson,
                     "Anderson mixing of the column update (False: SOR, as geoml <= 0.1).")
      .def_readwrite("eps_factor", &SinkhornParams::eps_factor,
                     "eps ratio between consecutive stages, in (0, 1).")
      .def_readwrite("stage_tol", &SinkhornParams::stage_tol,
                     "Relative tolerance that ends an intermediate stage.");
  m.def("value_range", &value_range_py, py::arg("x"), py::kw_only(), py::arg("n_jobs") = 0,
        "(min, max, all finite) of a float64 array.");
  m.def("emd", &emd_py, py::arg("a"), py::arg("b"), py::arg("C"), py::kw_only(),
        py::arg("max_iter"), py::arg("sparse") = false,
        "Exact OT by the network simplex -> (cost, status, n_pivots, plan, f, g).");
  m.def("emd_batched", &emd_batched_py, py::arg("a"), py::arg("a_off"), py::arg("b"),
        py::arg("b_off"), py::arg("C"), py::arg("c_off"), py::kw_only(), py::arg("max_iter"),
        py::arg("want_plans") = false, py::arg("n_jobs") = 0,
        "Exact OT of B packed problems -> (cost, status, plans or None).");
  m.def("sinkhorn", &sinkhorn_py, py::arg("a"), py::arg("b"), py::arg("C"), py::arg("f0"),
        py::arg("g0"), py::kw_only(), py::arg("params"), py::arg("n_jobs") = 0,
        py::arg("scan") = false,
        "Entropic OT with a dense cost -> (P, f, g, n_iter, err, converged, cost,\n"
        "marginal_error, scan): scan = (min C, max C, all finite and range finite) with\n"
        "scan=True (C checked in the first kernel build; no solve unless finite), else None.");
  m.def("sinkhorn_newton", &sinkhorn_newton_py, py::arg("a"), py::arg("b"), py::arg("C"),
        py::kw_only(), py::arg("eps"), py::arg("tol"), py::arg("max_iter"), py::arg("n_warmup"),
        py::arg("sparsity"), py::arg("n_jobs") = 0,
        "SNS, dense cost -> (P, f, g, n_warmup, n_newton, n_cg, n_passes, err, conv, "
        "cost, merr, f32).");
  m.def("sinkhorn_points", &sinkhorn_points_py, py::arg("x"), py::arg("y"), py::arg("a"),
        py::arg("b"), py::kw_only(), py::arg("power"), py::arg("params"), py::arg("n_jobs") = 0,
        "Entropic OT between point clouds, cost |x - y|^power -> (cost, f, g, n_iter, err, "
        "converged).");
  m.def("sinkhorn_batched", &sinkhorn_batched_py, py::arg("a"), py::arg("a_off"), py::arg("b"),
        py::arg("b_off"), py::arg("C"), py::arg("c_off"), py::kw_only(), py::arg("params"),
        py::arg("want_plans") = false, py::arg("n_jobs") = 0,
        "Entropic OT of B packed problems -> (cost, err, n_iter, converged, plans or None).");
  m.def("linear_assignment", &linear_assignment_py, py::arg("C"),
        "Minimum-cost assignment (+inf forbidden) -> (row_ind, col_ind, cost, status).");
  m.def("linear_assignment_batched", &linear_assignment_batched_py, py::arg("C"), py::arg("c_off"),
        py::arg("ms"), py::arg("ns"), py::arg("k_off"), py::kw_only(), py::arg("n_jobs") = 0,
        "Minimum-cost assignments of B packed problems -> (row_ind, col_ind, cost, status).");
  def_overloads(m, "sinkhorn_symmetric", Floats{}, GEOML_PICK(sinkhorn_symmetric_py),
                py::arg("K").noconvert(), py::arg("a"), py::kw_only(), py::arg("tol"),
                py::arg("max_iter"), py::arg("want_plan") = true, py::arg("n_jobs") = 0,
                "Symmetric scaling of K -> (P or None, log d, n_iter, marginal_error, "
                "converged, zero_row).");
  m.def("sinkhorn_symmetric_csr", &sinkhorn_symmetric_csr_py, py::arg("indptr"), py::arg("indices"),
        py::arg("data"), py::arg("a"), py::kw_only(), py::arg("tol"), py::arg("max_iter"),
        py::arg("n_jobs") = 0,
        "Symmetric scaling of a CSR kernel -> (log d, n_iter, marginal_error, converged, "
        "zero_row).");
  def_overloads(m, "symmetric_scan", Floats{}, GEOML_PICK(symmetric_scan_py),
                py::arg("M").noconvert(), py::kw_only(), py::arg("n_jobs") = 0,
                py::arg("rowmin") = false,
                "One pass over a square matrix -> (all finite, min, max |M|, max |M - M.T|, "
                "row minima or None).");
  m.def("sinkhorn_symmetric_cost", &sinkhorn_symmetric_cost_py, py::arg("C"), py::arg("a"),
        py::kw_only(), py::arg("eps"), py::arg("tol"), py::arg("max_iter"), py::arg("n_jobs") = 0,
        py::arg("rowmin") = py::none(), py::arg("c_symmetric") = false,
        py::arg("f32_min_entries") = int64_t(1) << 20, py::arg("check") = false,
        py::arg("sym_rtol") = 0.0,
        "Symmetric scaling of exp(-C / eps) -> (P, log d, n_iter, marginal_error, converged,\n"
        "zero_row, scan): scan is (finite, min, max |C|, max |C - C.T|) with check, else None.");
}

}  // namespace geoml
