// Bindings for the measures family: matrix-free magnitude products.
#include <limits>
#include <stdexcept>

#include "bindings.hpp"
#include "measures/local_pca.hpp"
#include "measures/magnitude.hpp"

namespace geoml {

namespace {

template <typename T>
py::array_t<double> magnitude_matvec_py(exact<T> X_in, carray<double> ts, carray<double> V,
                                        double cutoff, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  if (X.ndim() != 2 || X.shape(0) < 1 || X.shape(1) < 1)
    throw std::invalid_argument("magnitude_matvec: X must be a non-empty (n, d) array");
  const int64_t n = X.shape(0), d = X.shape(1);
  if (ts.ndim() != 1 || ts.shape(0) < 1)
    throw std::invalid_argument("magnitude_matvec: ts must be a non-empty 1-D array");
  const int64_t m = ts.shape(0);
  if (V.ndim() != 2 || V.shape(0) != m || V.shape(1) != n)
    throw std::invalid_argument("magnitude_matvec: V must be (len(ts), n)");
  py::array_t<double> out({m, n});
  const T* px = X.data();
  const double* pt = ts.data();
  const double* pv = V.data();
  double* po = out.mutable_data();
  {
    py::gil_scoped_release release;
    magnitude_matvec<T>(px, n, d, pt, m, pv, po, cutoff, n_jobs);
  }
  return out;
}

template <typename T>
py::array_t<float> magnitude_matrix_py(exact<T> X_in, double t, double cutoff, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  if (X.ndim() != 2 || X.shape(0) < 1 || X.shape(1) < 1)
    throw std::invalid_argument("magnitude_matrix: X must be a non-empty (n, d) array");
  const int64_t n = X.shape(0), d = X.shape(1);
  py::array_t<float> out(magnitude_packed_size(n));
  const T* px = X.data();
  float* po = out.mutable_data();
  {
    py::gil_scoped_release release;
    magnitude_matrix<T>(px, n, d, t, po, cutoff, n_jobs);
  }
  return out;
}

py::array_t<double> stored_matvec_py(carray<float> Z, carray<double> v, int n_jobs) {
  if (v.ndim() != 1 || v.shape(0) < 1)
    throw std::invalid_argument("stored_matvec: v must be a non-empty 1-D array");
  const int64_t n = v.shape(0);
  if (Z.ndim() != 1 || Z.shape(0) != magnitude_packed_size(n))
    throw std::invalid_argument(
        "stored_matvec: Z must be magnitude_matrix's packed storage for len(v) points");
  py::array_t<double> out({n});
  const float* pz = Z.data();
  const double* pv = v.data();
  double* po = out.mutable_data();
  {
    py::gil_scoped_release release;
    stored_matvec(pz, n, pv, po, n_jobs);
  }
  return out;
}

py::tuple vecchia_factor_py(carray<double> X, carray<int64_t> nb, double t, double ridge,
                            int n_jobs) {
  if (X.ndim() != 2 || X.shape(0) < 1 || X.shape(1) < 1)
    throw std::invalid_argument("vecchia_factor: X must be a non-empty (n, d) array");
  const int64_t n = X.shape(0), d = X.shape(1);
  if (nb.ndim() != 2 || nb.shape(0) != n || nb.shape(1) < 1)
    throw std::invalid_argument("vecchia_factor: nb must be (n, k) with k >= 1");
  const int64_t k = nb.shape(1);
  py::array_t<double> B({n, k});
  py::array_t<double> dvar({n});
  const double* px = X.data();
  const int64_t* pn = nb.data();
  double* pb = B.mutable_data();
  double* pd = dvar.mutable_data();
  {
    py::gil_scoped_release release;
    vecchia_factor(px, n, d, pn, k, t, ridge, pb, pd, n_jobs);
  }
  return py::make_tuple(B, dvar);
}

template <typename T>
py::tuple local_gram_eigvalsh_py(exact<T> X_in, carray<int64_t> idx, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  if (X.ndim() != 2 || X.shape(0) < 1 || X.shape(1) < 1)
    throw std::invalid_argument("local_gram_eigvalsh: X must be a non-empty (n, d) array");
  if (idx.ndim() != 2 || idx.shape(1) < 2)
    throw std::invalid_argument("local_gram_eigvalsh: idx must be (B, k) with k >= 2");
  const int64_t n = X.shape(0), d = X.shape(1), B = idx.shape(0);
  const int k = static_cast<int>(idx.shape(1));
  const int64_t* pi = idx.data();
  for (int64_t i = 0; i < B * k; ++i)
    if (pi[i] < 0 || pi[i] >= n)
      throw std::invalid_argument("local_gram_eigvalsh: idx must be in [0, n)");
  py::array_t<double> w({B, int64_t(k)});
  py::array_t<int8_t> status({B});
  const T* px = X.data();
  double* pw = w.mutable_data();
  int8_t* ps = status.mutable_data();
  {
    py::gil_scoped_release release;
    local_gram_eigvalsh<T>(px, d, pi, B, k, pw, ps, n_jobs);
  }
  return py::make_tuple(w, status);
}

}  // namespace

void bind_measures(py::module_& m) {
  def_overloads(
      m, "magnitude_matvec", Floats{}, GEOML_PICK(magnitude_matvec_py), py::arg("X").noconvert(),
      py::arg("ts"), py::arg("V"), py::kw_only(),
      py::arg("cutoff") = std::numeric_limits<double>::infinity(), py::arg("n_jobs") = 0,
      "out[s] = exp(-ts[s] ||x_i - x_j||) @ V[s] by fused tiles; far tiles skipped (cutoff).");
  def_overloads(m, "magnitude_matrix", Floats{}, GEOML_PICK(magnitude_matrix_py),
                py::arg("X").noconvert(), py::arg("t"), py::kw_only(),
                py::arg("cutoff") = std::numeric_limits<double>::infinity(), py::arg("n_jobs") = 0,
                "float32 exp(-t ||x_i - x_j||) (from float64): upper block triangle, packed.");
  m.def("stored_matvec", &stored_matvec_py, py::arg("Z"), py::arg("v"), py::kw_only(),
        py::arg("n_jobs") = 0,
        "Z @ v for magnitude_matrix's packed symmetric float32 Z, float64 v, sums in float64.");
  m.def("vecchia_factor", &vecchia_factor_py, py::arg("X"), py::arg("nb"), py::arg("t"),
        py::kw_only(), py::arg("ridge") = 0.0, py::arg("n_jobs") = 0,
        "Vecchia factor of exp(-t ||x_i - x_j||): (B (n, k) regressions on nb, dvar (n,)).");
  def_overloads(
      m, "local_gram_eigvalsh", Floats{}, GEOML_PICK(local_gram_eigvalsh_py),
      py::arg("X").noconvert(), py::arg("idx"), py::kw_only(), py::arg("n_jobs") = 0,
      "Eigenvalues (ascending) of the centred Gram / (k - 1) of each X[idx[b]]; status codes.");
}

}  // namespace geoml
