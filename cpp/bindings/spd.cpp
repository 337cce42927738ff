// Bindings for the batched SPD matrix kernels (spd/spd.hpp).
#include <string>

#include "bindings.hpp"
#include "spd/spd.hpp"

namespace geoml {

namespace {

// (B, n) of a (B, n, n) batch; ValueError otherwise.
std::pair<int64_t, int> batch_shape(const py::array& A, const char* name) {
  if (A.ndim() != 3 || A.shape(1) != A.shape(2))
    throw std::invalid_argument(std::string(name) + " must have shape (B, n, n)");
  return {A.shape(0), static_cast<int>(A.shape(1))};
}

template <typename T>
py::tuple eigh_py(exact<T> A_in, bool vectors, double sym_tol, int n_jobs) {
  const carray<T> A = contiguous(A_in);
  const auto [B, n] = batch_shape(A, "A");
  py::array_t<T> w({B, int64_t(n)});
  py::array_t<T> V(vectors ? std::vector<int64_t>{B, n, n} : std::vector<int64_t>{0, n, n});
  py::array_t<int8_t> status({B});
  const T* pa = A.data();
  T* pw = w.mutable_data();
  T* pv = V.mutable_data();
  int8_t* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    spd_eigh<T>(pa, B, n, sym_tol, vectors, pw, pv, ps, n_jobs);
  }
  return py::make_tuple(w, V, status);
}

template <typename T>
py::tuple funm_py(exact<T> A_in, carray<T> M, SpdFunc func, double power, double sym_tol,
                  int n_jobs) {
  const carray<T> A = contiguous(A_in);
  const auto [B, n] = batch_shape(A, "A");
  const auto [K, nm] = batch_shape(M, "M");
  if (K != 0 && (nm != n || (K != 1 && K != B)))
    throw std::invalid_argument("M must have shape (0, n, n), (1, n, n) or (B, n, n)");
  py::array_t<T> out({B, int64_t(n), int64_t(n)});
  py::array_t<int8_t> status({B});
  const T* pa = A.data();
  const T* pm = K ? M.data() : nullptr;
  const int64_t stride = K > 1 ? int64_t(n) * n : 0;
  T* po = out.mutable_data();
  int8_t* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    spd_funm<T>(pa, B, n, pm, stride, func, power, sym_tol, po, ps, n_jobs);
  }
  return py::make_tuple(out, status);
}

template <typename T>
py::tuple eigvalsh_pairs_py(exact<T> A_in, carray<T> M, bool outer, bool lower, double sym_tol,
                            int n_jobs, bool log_sq) {
  const carray<T> A = contiguous(A_in);
  const auto [B, n] = batch_shape(A, "A");
  const auto [K, nm] = batch_shape(M, "M");
  if (nm != n || K == 0 || (!outer && K != 1 && K != B))
    throw std::invalid_argument("M must have shape (K, n, n), K = 1 or B unless outer");
  const int64_t tasks = outer ? B * K : B;
  py::array_t<int8_t> status({tasks});
  const T* pa = A.data();
  const T* pm = M.data();
  int8_t* ps = status.mutable_data();
  if (log_sq) {
    py::array_t<double> d2({tasks});
    double* pd = d2.mutable_data();
    {
      py::gil_scoped_release release;
      spd_eigvalsh_pairs<T>(pa, B, n, pm, K, outer, lower, sym_tol, nullptr, ps, n_jobs, pd);
    }
    return py::make_tuple(d2, status);
  }
  py::array_t<T> w({tasks, int64_t(n)});
  T* pw = w.mutable_data();
  {
    py::gil_scoped_release release;
    spd_eigvalsh_pairs<T>(pa, B, n, pm, K, outer, lower, sym_tol, pw, ps, n_jobs);
  }
  return py::make_tuple(w, status);
}

template <typename T>
py::tuple funm_wsum_py(exact<T> A_in, carray<T> M, carray<double> weights, SpdFunc func,
                       double power, bool lower, double sym_tol, int n_jobs) {
  const carray<T> A = contiguous(A_in);
  const auto [B, n] = batch_shape(A, "A");
  const auto [K, nm] = batch_shape(M, "M");
  if (K > 1 || (K == 1 && nm != n))
    throw std::invalid_argument("M must have shape (0, n, n) or (1, n, n)");
  if (weights.ndim() != 1 || weights.shape(0) != B)
    throw std::invalid_argument("weights must have shape (B,)");
  py::array_t<double> out({int64_t(n), int64_t(n)});
  py::array_t<int8_t> status({B});
  const T* pa = A.data();
  const T* pm = K ? M.data() : nullptr;
  const double* pw = weights.data();
  double* po = out.mutable_data();
  int8_t* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    spd_funm_wsum<T>(pa, B, n, pm, pw, func, power, lower, sym_tol, po, ps, n_jobs);
  }
  return py::make_tuple(out, status);
}

}  // namespace

void bind_spd(py::module_& m) {
  py::native_enum<SpdFunc>(m, "SpdFunc", "enum.Enum",
                           "Scalar function applied to the eigenvalues of a symmetric matrix.")
      .value("sqrt", SpdFunc::Sqrt)
      .value("invsqrt", SpdFunc::InvSqrt)
      .value("log", SpdFunc::Log)
      .value("exp", SpdFunc::Exp)
      .value("power", SpdFunc::Power)
      .finalize();
  def_overloads(m, "spd_eigh", Floats{}, GEOML_PICK(eigh_py), py::arg("A").noconvert(),
                py::kw_only(), py::arg("vectors") = true, py::arg("sym_tol") = 1e-8,
                py::arg("n_jobs") = 0,
                "Eigenvalues, eigenvectors and status codes of a (B, n, n) symmetric batch.");
  def_overloads(m, "spd_funm", Floats{}, GEOML_PICK(funm_py), py::arg("A").noconvert(),
                py::arg("M"), py::kw_only(), py::arg("func"), py::arg("power") = 1.0,
                py::arg("sym_tol") = 1e-8, py::arg("n_jobs") = 0,
                "f(M A M) per matrix of a (B, n, n) batch, and status codes.");
  def_overloads(m, "spd_eigvalsh_pairs", Floats{}, GEOML_PICK(eigvalsh_pairs_py),
                py::arg("A").noconvert(), py::arg("M"), py::kw_only(), py::arg("outer") = false,
                py::arg("lower") = false, py::arg("sym_tol") = 1e-8, py::arg("n_jobs") = 0,
                py::arg("log_sq") = false,
                "Eigenvalues of M_k A_b M_k (lower: M_k A_b M_k^T) per pair (log_sq: their\n"
                "sum of log(w)^2 in float64), and status codes.");
  def_overloads(m, "spd_funm_wsum", Floats{}, GEOML_PICK(funm_wsum_py), py::arg("A").noconvert(),
                py::arg("M"), py::arg("weights"), py::kw_only(), py::arg("func"),
                py::arg("power") = 1.0, py::arg("lower") = false, py::arg("sym_tol") = 1e-8,
                py::arg("n_jobs") = 0,
                "sum_b weights[b] f(M A_b M) (lower: M A_b M^T), float64, and status codes.");
}

}  // namespace geoml
