// Bindings for the measures family: matrix-free magnitude products.
#include <limits>
#include <stdexcept>

#include "bindings.hpp"
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

}  // namespace

void bind_measures(py::module_& m) {
  def_overloads(
      m, "magnitude_matvec", Floats{}, GEOML_PICK(magnitude_matvec_py), py::arg("X").noconvert(),
      py::arg("ts"), py::arg("V"), py::kw_only(),
      py::arg("cutoff") = std::numeric_limits<double>::infinity(), py::arg("n_jobs") = 0,
      "out[s] = exp(-ts[s] ||x_i - x_j||) @ V[s] by fused tiles; far tiles skipped (cutoff).");
}

}  // namespace geoml
