// Bindings for the diffusion family: Chebyshev heat-kernel actions and SMACOF metric MDS.
#include <algorithm>
#include <stdexcept>

#include "bindings.hpp"
#include "common/common.hpp"
#include "diffusion/heat.hpp"
#include "diffusion/mds.hpp"

namespace geoml {

namespace {

template <typename T, typename I>
py::array_t<T> heat_chebyshev_py(exact<T> data_in, carray<I> indices, carray<I> indptr, carray<T> X,
                                 carray<double> coef, int n_jobs) {
  const carray<T> data = contiguous(data_in);
  const int64_t n = indptr.size() - 1;
  if (n < 1 || data.size() != indices.size())
    throw std::invalid_argument("heat_chebyshev: malformed CSR matrix");
  if (X.ndim() != 2 || X.shape(0) != n)
    throw std::invalid_argument("heat_chebyshev: X must be (n, m) with n the matrix size");
  if (coef.ndim() != 2 || coef.shape(0) < 1 || coef.shape(1) < 1)
    throw std::invalid_argument("heat_chebyshev: coef must be (n_t, K + 1)");
  const int64_t m = X.shape(1);
  const int n_t = static_cast<int>(coef.shape(0));
  const int K = static_cast<int>(coef.shape(1) - 1);
  py::array_t<T> Y({static_cast<int64_t>(n_t), n, m});
  const CsrRef<T, I> S{n, indptr.data(), indices.data(), data.data()};
  T* py_ = Y.mutable_data();
  const T* px = X.data();
  const double* pc = coef.data();
  {
    py::gil_scoped_release release;
    heat_chebyshev<T, I>(S, px, m, pc, n_t, K, py_, n_jobs);
  }
  return Y;
}

template <typename T>
py::tuple smacof_py(exact<T> D_in, carray<double> X0, int64_t max_iter, double eps, bool verbose,
                    int n_jobs) {
  const carray<T> D = contiguous(D_in);
  if (D.ndim() != 2 || D.shape(0) != D.shape(1) || D.shape(0) < 1)
    throw std::invalid_argument("smacof: D must be a non-empty square matrix");
  const int64_t n = D.shape(0);
  if (X0.ndim() != 2 || X0.shape(0) != n || X0.shape(1) < 1)
    throw std::invalid_argument("smacof: X0 must be (n, p) with p >= 1");
  const int64_t p = X0.shape(1);
  py::array_t<double> X({n, p});
  std::copy(X0.data(), X0.data() + n * p, X.mutable_data());
  double* px = X.mutable_data();
  const T* pd = D.data();
  SmacofResult r;
  {
    py::gil_scoped_release release;
    r = smacof<T>(pd, n, p, px, max_iter, eps, n_jobs, verbose);
  }
  return py::make_tuple(X, r.stress, r.n_iter, r.converged);
}

}  // namespace

void bind_diffusion(py::module_& m) {
  def_overloads2(m, "heat_chebyshev", Floats{}, Indices{}, GEOML_PICK2(heat_chebyshev_py),
                 py::arg("data").noconvert(), py::arg("indices"), py::arg("indptr"), py::arg("X"),
                 py::arg("coef"), py::kw_only(), py::arg("n_jobs") = 0,
                 "Chebyshev series sum_k coef[j, k] T_k(S) X for each row j of coef (S in CSR).");
  def_overloads(m, "smacof", Floats{}, GEOML_PICK(smacof_py), py::arg("D").noconvert(),
                py::arg("X0"), py::kw_only(), py::arg("max_iter") = 300, py::arg("eps") = 1e-6,
                py::arg("verbose") = false, py::arg("n_jobs") = 0,
                "Metric SMACOF from X0 on dissimilarities D: (X, stress, n_iter, converged).");
}

}  // namespace geoml
