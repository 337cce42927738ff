// Bindings for the diffusion family: Chebyshev heat-kernel actions, SMACOF metric MDS and
// PHATE's k-means++ landmark seeding.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "bindings.hpp"
#include "common/common.hpp"
#include "diffusion/heat.hpp"
#include "diffusion/kmeanspp.hpp"
#include "diffusion/mds.hpp"

namespace geoml {

namespace {

/// A writeable C-contiguous (size)-element array of T from Python (an output), else throws.
template <typename T>
T* output(py::array_t<T>& a, int64_t size, const char* what) {
  if (!(a.flags() & py::array::c_style) || !a.writeable() || a.size() != size)
    throw std::invalid_argument(std::string("heat_chebyshev: ") + what +
                                " must be a writeable C-contiguous array of the right size");
  return a.mutable_data();
}

template <typename T, typename I>
void heat_chebyshev_py(exact<T> data_in, carray<I> indices, carray<I> indptr, carray<T> X,
                       carray<double> coef, py::array_t<T> Y, py::array_t<T> buf0,
                       py::array_t<T> buf1, int64_t k_begin, int64_t k_end, int n_jobs) {
  const carray<T> data = contiguous(data_in);
  const int64_t n = indptr.size() - 1;
  if (n < 1 || data.size() != indices.size())
    throw std::invalid_argument("heat_chebyshev: malformed CSR matrix");
  if (X.ndim() != 2 || X.shape(0) != n)
    throw std::invalid_argument("heat_chebyshev: X must be (n, m) with n the matrix size");
  if (coef.ndim() != 2 || coef.shape(0) < 1 || coef.shape(1) <= k_end || k_begin < 0 ||
      k_end < k_begin)
    throw std::invalid_argument(
        "heat_chebyshev: coef must be (n_t, K + 1) with 0 <= k_begin <= k_end <= K");
  const int64_t m = X.shape(1);
  const int n_t = static_cast<int>(coef.shape(0));
  T* py_ = output(Y, n_t * n * m, "Y");
  T* pb0 = output(buf0, n * m, "buf0");
  T* pb1 = output(buf1, n * m, "buf1");
  const CsrRef<T, I> S{n, indptr.data(), indices.data(), data.data()};
  const T* px = X.data();
  const double* pc = coef.data();
  const int64_t stride = coef.shape(1);
  py::gil_scoped_release release;
  heat_chebyshev<T, I>(S, px, m, pc, n_t, stride, k_begin, k_end, py_, pb0, pb1, n_jobs);
}

template <typename T>
py::tuple smacof_py(exact<T> D_in, carray<double> X0, int64_t max_iter, double eps, bool verbose,
                    int n_jobs, bool relax) {
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
    r = smacof<T>(pd, n, p, px, max_iter, eps, n_jobs, verbose, relax);
  }
  return py::make_tuple(X, r.stress, r.n_iter, r.converged);
}

template <typename T>
py::array_t<double> smacof_place_py(exact<T> D_in, carray<double> Z, carray<double> Y0,
                                    int64_t n_iter, int n_jobs) {
  const carray<T> D = contiguous(D_in);
  if (D.ndim() != 2 || Z.ndim() != 2 || Y0.ndim() != 2 || D.shape(1) != Z.shape(0) ||
      Y0.shape(0) != D.shape(0) || Y0.shape(1) != Z.shape(1) || Z.shape(0) < 1 || Z.shape(1) < 1)
    throw std::invalid_argument("smacof_place: need D (n, L), Z (L, p) and Y0 (n, p)");
  const int64_t n = D.shape(0), L = D.shape(1), p = Z.shape(1);
  py::array_t<double> Y({n, p});
  std::copy(Y0.data(), Y0.data() + n * p, Y.mutable_data());
  double* py_ = Y.mutable_data();
  const T* pd = D.data();
  const double* pz = Z.data();
  {
    py::gil_scoped_release release;
    smacof_place<T>(pd, n, L, p, pz, py_, n_iter, n_jobs);
  }
  return Y;
}

/// Greedy k-means++ seeds (kmeanspp.hpp) of float32 rows from `first` and the (k - 1, trials)
/// uniforms u; returns k row indices (int64). With `seeds` (int64, (k,)) and `count` (int64,
/// (1,)), writable and C-contiguous, the seeds are also stored there as they are chosen and
/// count[0] is their number so far (for a reader in another thread while this call runs).
py::array_t<int64_t> kmeanspp_py(carray<float> X, int64_t first, carray<double> u, int n_jobs,
                                 py::object seeds, py::object count) {
  if (X.ndim() != 2 || u.ndim() != 2)
    throw std::invalid_argument("kmeanspp: X must be (m, d) and u (k - 1, trials)");
  const int64_t m = X.shape(0), d = X.shape(1), k = u.shape(0) + 1, trials = u.shape(1);
  if (seeds.is_none() != count.is_none())
    throw std::invalid_argument("kmeanspp: give both seeds and count, or neither");
  int64_t* ps = nullptr;
  int64_t* pc = nullptr;
  if (!seeds.is_none()) {
    auto out = [](py::object o, int64_t len, const char* name) {
      if (!py::isinstance<py::array_t<int64_t>>(o))
        throw std::invalid_argument(std::string("kmeanspp: ") + name + " must be an int64 array");
      auto a = py::reinterpret_borrow<py::array_t<int64_t>>(o);
      if (a.ndim() != 1 || a.shape(0) != len || !a.writeable() || !(a.flags() & py::array::c_style))
        throw std::invalid_argument(std::string("kmeanspp: ") + name +
                                    " must be writable, contiguous, of shape (" +
                                    std::to_string(len) + ",)");
      return a.mutable_data();
    };
    ps = out(seeds, k, "seeds");
    pc = out(count, 1, "count");
    *pc = 0;
  }
  const float* px = X.data();
  const double* pu = u.data();
  std::vector<int64_t> idx;
  {
    py::gil_scoped_release release;
    idx = kmeanspp_greedy(px, m, d, k, first, pu, trials, n_jobs, ps, pc);
  }
  return to_numpy(std::move(idx));
}

/// argmin_shifted (kmeanspp.hpp) of the float32 scores G (b, k) and cn (k,) into lab (int64)
/// and best (float32), both (b,), writable and contiguous.
void argmin_shifted_py(carray<float> G, carray<float> cn, py::array_t<int64_t> lab,
                       py::array_t<float> best) {
  if (G.ndim() != 2 || cn.ndim() != 1 || cn.shape(0) != G.shape(1) || G.shape(1) < 1 ||
      lab.ndim() != 1 || best.ndim() != 1 || lab.shape(0) != G.shape(0) ||
      best.shape(0) != G.shape(0) || !lab.writeable() || !best.writeable() ||
      !(lab.flags() & py::array::c_style) || !(best.flags() & py::array::c_style))
    throw std::invalid_argument(
        "argmin_shifted: need G (b, k), k >= 1, cn (k,), and writable contiguous lab and best "
        "(b,)");
  const int64_t b = G.shape(0), k = G.shape(1);
  const float* pg = G.data();
  const float* pc = cn.data();
  int64_t* pl = lab.mutable_data();
  float* pb = best.mutable_data();
  py::gil_scoped_release release;
  argmin_shifted(pg, b, k, pc, pl, pb);
}

}  // namespace

void bind_diffusion(py::module_& m) {
  def_overloads2(m, "heat_chebyshev", Floats{}, Indices{}, GEOML_PICK2(heat_chebyshev_py),
                 py::arg("data").noconvert(), py::arg("indices"), py::arg("indptr"), py::arg("X"),
                 py::arg("coef"), py::arg("Y").noconvert(), py::arg("buf0").noconvert(),
                 py::arg("buf1").noconvert(), py::kw_only(), py::arg("k_begin"), py::arg("k_end"),
                 py::arg("n_jobs") = 0,
                 "Terms k_begin..k_end of sum_k coef[j, k] T_k(S) X into Y (state in buf0/1).");
  def_overloads(m, "smacof", Floats{}, GEOML_PICK(smacof_py), py::arg("D").noconvert(),
                py::arg("X0"), py::kw_only(), py::arg("max_iter") = 300, py::arg("eps") = 1e-6,
                py::arg("verbose") = false, py::arg("n_jobs") = 0, py::arg("relax") = false,
                "Metric SMACOF from X0 on dissimilarities D: (X, stress, n_iter, converged).");
  def_overloads(m, "smacof_place", Floats{}, GEOML_PICK(smacof_place_py), py::arg("D").noconvert(),
                py::arg("Z"), py::arg("Y0"), py::kw_only(), py::arg("n_iter") = 30,
                py::arg("n_jobs") = 0,
                "Guttman steps placing points (dissimilarities D to landmarks Z) from Y0.");
  m.def("kmeanspp", &kmeanspp_py, py::arg("X"), py::kw_only(), py::arg("first"), py::arg("u"),
        py::arg("n_jobs") = 0, py::arg("seeds") = py::none(), py::arg("count") = py::none(),
        "Greedy k-means++ seeds of float32 rows -> indices (k,); progress into seeds, count.");
  m.def("argmin_shifted", &argmin_shifted_py, py::arg("G"), py::arg("cn"),
        py::arg("lab").noconvert(), py::arg("best").noconvert(),
        "Per row of G: the first argmin of G[r] + cn into lab[r], the minimum into best[r].");
}

}  // namespace geoml
