// Bindings for optimal transport (exact network simplex, Sinkhorn, batched drivers).
#include "bindings.hpp"
#include "ot.hpp"

namespace geoml {

namespace {

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
    plan = py::make_tuple(to_numpy(std::move(ri)), to_numpy(std::move(ci)),
                          to_numpy(std::move(val)));
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
  py::object plans = py::none();
  double* pp = nullptr;
  if (want_plans) {
    py::array_t<double> P(C.size());
    pp = P.mutable_data();
    plans = P;
  }
  double* pc = cost.mutable_data();
  int* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    emd_batched(B, a.data(), a_off.data(), b.data(), b_off.data(), C.data(), c_off.data(),
                max_iter, n_jobs, pc, ps, pp);
  }
  return py::make_tuple(cost, status, plans);
}

}  // namespace

void bind_ot(py::module_& m) {
  m.def("emd", &emd_py, py::arg("a"), py::arg("b"), py::arg("C"), py::arg("max_iter"),
        py::arg("sparse"));
  m.def("emd_batched", &emd_batched_py, py::arg("a"), py::arg("a_off"), py::arg("b"),
        py::arg("b_off"), py::arg("C"), py::arg("c_off"), py::arg("max_iter"),
        py::arg("want_plans"), py::arg("n_jobs"));
}

}  // namespace geoml
