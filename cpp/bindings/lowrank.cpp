// Bindings for the low-rank kernels: BLAS installation, tensor products, sparse products.
#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "common/common.hpp"
#include "common/sparse.hpp"
#include "lowrank/lowrank.hpp"

namespace geoml {

namespace {

void* capsule_pointer(py::handle cap, const char* what) {
  if (!PyCapsule_CheckExact(cap.ptr()))
    throw std::invalid_argument(std::string(what) + ": expected a PyCapsule");
  void* p = PyCapsule_GetPointer(cap.ptr(), PyCapsule_GetName(cap.ptr()));
  if (!p) throw py::error_already_set();
  return p;
}

std::vector<int64_t> dims_of(const py::array& X) {
  std::vector<int64_t> d(X.ndim());
  for (py::ssize_t i = 0; i < X.ndim(); ++i) d[i] = X.shape(i);
  return d;
}

int check_mode(const py::array& X, int n) {
  if (X.ndim() < 1 || n < 0 || n >= X.ndim())
    throw std::invalid_argument("mode " + std::to_string(n) + " out of range for a " +
                                std::to_string(X.ndim()) + "-D tensor");
  return n;
}

template <typename T>
py::array_t<T> ttm_py(exact<T> X_in, int n, carray<T> A, bool transposed, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  check_mode(X, n);
  if (A.ndim() != 2) throw std::invalid_argument("the matrix must be 2-D");
  auto dims = dims_of(X);
  const int64_t I = dims[n];
  const int64_t J = transposed ? A.shape(1) : A.shape(0);
  if ((transposed ? A.shape(0) : A.shape(1)) != I)
    throw std::invalid_argument("matrix shape does not match the tensor's mode size");
  std::vector<py::ssize_t> out_shape(dims.begin(), dims.end());
  out_shape[n] = J;
  py::array_t<T> Y(out_shape);
  T* py_ = Y.mutable_data();
  const T* px = X.data();
  const T* pa = A.data();
  {
    py::gil_scoped_release release;
    ttm<T>(px, dims, n, pa, J, transposed, py_, n_jobs);
  }
  return Y;
}

template <typename T>
py::array_t<T> gram_py(exact<T> X_in, int n, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  check_mode(X, n);
  auto dims = dims_of(X);
  const int64_t I = dims[n];
  py::array_t<T> G({I, I});
  T* pg = G.mutable_data();
  const T* px = X.data();
  {
    py::gil_scoped_release release;
    mode_gram<T>(px, dims, n, pg, n_jobs);
  }
  return G;
}

template <typename T>
py::array_t<double> gram_apply_py(exact<T> X_in, int n, carray<T> U, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  check_mode(X, n);
  auto dims = dims_of(X);
  const int64_t I = dims[n];
  if (U.ndim() != 2 || U.shape(0) != I)
    throw std::invalid_argument("U must be 2-D with as many rows as the tensor's mode size");
  const int64_t J = U.shape(1);
  py::array_t<double> Z({I, J});
  double* pz = Z.mutable_data();
  const T* px = X.data();
  const T* pu = U.data();
  {
    py::gil_scoped_release release;
    gram_apply<T>(px, dims, n, pu, J, pz, n_jobs);
  }
  return Z;
}

template <typename T>
py::tuple gram_apply_pair_py(exact<T> X_in, carray<T> U1, carray<T> U2, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  if (X.ndim() < 2) throw std::invalid_argument("X must have at least 2 dimensions");
  auto dims = dims_of(X);
  const int64_t I1 = dims[dims.size() - 2], I2 = dims.back();
  if (U1.ndim() != 2 || U1.shape(0) != I1 || U2.ndim() != 2 || U2.shape(0) != I2)
    throw std::invalid_argument("U1 and U2 must be 2-D with as many rows as the last two modes");
  const int64_t J1 = U1.shape(1), J2 = U2.shape(1);
  py::array_t<double> Z1({I1, J1}), Z2({I2, J2});
  double* p1 = Z1.mutable_data();
  double* p2 = Z2.mutable_data();
  const T* px = X.data();
  const T* pu1 = U1.data();
  const T* pu2 = U2.data();
  {
    py::gil_scoped_release release;
    gram_apply_pair<T>(px, dims, pu1, J1, pu2, J2, p1, p2, n_jobs);
  }
  return py::make_tuple(Z1, Z2);
}

template <typename T>
py::array_t<T> sketch_py(exact<T> X_in, int n, carray<T> W, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  check_mode(X, n);
  auto dims = dims_of(X);
  const int64_t I = dims[n];
  if (W.ndim() != 2 || W.shape(0) * I != X.size())
    throw std::invalid_argument("sketch matrix must have numel(X)/I rows");
  const int64_t s = W.shape(1);
  py::array_t<T> Y({I, s});
  T* py_ = Y.mutable_data();
  const T* px = X.data();
  const T* pw = W.data();
  {
    py::gil_scoped_release release;
    mode_sketch<T>(px, dims, n, pw, s, py_, n_jobs);
  }
  return Y;
}

template <typename T>
double sumsq_py(exact<T> X_in, int n_jobs) {
  const carray<T> X = contiguous(X_in);
  const T* px = X.data();
  const int64_t n = X.size();
  py::gil_scoped_release release;
  return sum_squares<T>(px, n, n_jobs);
}

template <typename T>
py::array_t<double> ts_gram_py(exact<T> Y_in, int n_jobs) {
  const carray<T> Y = contiguous(Y_in);
  if (Y.ndim() != 2) throw std::invalid_argument("Y must be 2-D");
  const int64_t m = Y.shape(0), l = Y.shape(1);
  py::array_t<double> G({l, l});
  double* pg = G.mutable_data();
  const T* py_ = Y.data();
  {
    py::gil_scoped_release release;
    ts_gram<T>(py_, m, l, pg, n_jobs);
  }
  return G;
}

template <typename T>
py::array_t<T> ts_matmul_py(exact<T> Y_in, carray<T> M, int n_jobs) {
  const carray<T> Y = contiguous(Y_in);
  if (Y.ndim() != 2 || M.ndim() != 2 || M.shape(0) != Y.shape(1))
    throw std::invalid_argument("ts_matmul: shapes do not match");
  const int64_t m = Y.shape(0), l = Y.shape(1), c = M.shape(1);
  py::array_t<T> out({m, c});
  T* po = out.mutable_data();
  const T* py_ = Y.data();
  const T* pm = M.data();
  {
    py::gil_scoped_release release;
    ts_matmul<T>(py_, m, l, pm, c, po, n_jobs);
  }
  return out;
}

template <typename T, typename I>
py::array_t<T> csr_mm_py(exact<T> data_in, carray<I> indices, exact<I> indptr_in, carray<T> X,
                         int64_t n_cols, bool transpose, int n_jobs) {
  const carray<T> data = contiguous(data_in);
  const carray<I> indptr = contiguous(indptr_in);
  const int64_t m = indptr.size() - 1;
  if (m < 0 || X.ndim() != 2 || data.size() != indices.size())
    throw std::invalid_argument("malformed CSR matrix or dense operand");
  if (X.shape(0) != (transpose ? m : n_cols))
    throw std::invalid_argument("dense operand has the wrong number of rows");
  const int64_t s = X.shape(1);
  py::array_t<T> Y({transpose ? n_cols : m, s});
  T* py_ = Y.mutable_data();
  const T* pd = data.data();
  const I* pi = indices.data();
  const I* pp = indptr.data();
  const T* px = X.data();
  {
    py::gil_scoped_release release;
    if (transpose)
      csr_t_matmat<T, I>(pd, pi, pp, m, n_cols, px, s, py_, n_jobs);
    else
      csr_matmat<T, I>(pd, pi, pp, m, px, s, py_, n_jobs);
  }
  return Y;
}

/// A CSR matrix given to the Chebyshev kernels, possibly as two column parts (the second's
/// arrays optional: all three or none), validated; `who` names the caller in errors.
template <typename I>
struct SplitCsr {
  carray<double> data, data2;
  carray<I> indptr, indptr2;
  int64_t n = 0;
  bool split = false;
  CsrRef<double, I> A{}, B{};
  /// Stored entries of both parts (the kernels run on one thread below 2^20 / s of them).
  int64_t nnz() const {
    return n > 0 ? int64_t(A.indptr[n]) + (split ? int64_t(B.indptr[n]) : 0) : 0;
  }
};

template <typename I>
SplitCsr<I> split_csr(const char* who, exact<double> data_in, const carray<I>& indices,
                      exact<I> indptr_in, std::optional<exact<double>> data2_in,
                      const std::optional<carray<I>>& indices2,
                      std::optional<exact<I>> indptr2_in) {
  SplitCsr<I> m;
  m.data = contiguous(data_in);
  m.indptr = contiguous(indptr_in);
  m.n = m.indptr.size() - 1;
  if (m.n < 0 || m.data.size() != indices.size())
    throw std::invalid_argument(std::string(who) + ": malformed CSR matrix");
  m.split = data2_in.has_value();
  if (m.split != indices2.has_value() || m.split != indptr2_in.has_value())
    throw std::invalid_argument(std::string(who) +
                                ": give all of data2, indices2, indptr2 or none");
  if (m.split) {
    m.data2 = contiguous(*data2_in);
    m.indptr2 = contiguous(*indptr2_in);
    if (m.indptr2.size() != m.n + 1 || m.data2.size() != indices2->size())
      throw std::invalid_argument(std::string(who) + ": malformed second CSR matrix");
  }
  m.A = {m.n, m.indptr.data(), indices.data(), m.data.data()};
  m.B = {m.n, m.split ? m.indptr2.data() : nullptr, m.split ? indices2->data() : nullptr,
         m.split ? m.data2.data() : nullptr};
  return m;
}

template <typename I>
py::array_t<double> csr_cheb_py(exact<double> data_in, carray<I> indices, exact<I> indptr_in,
                                carray<double> X, carray<double> Z, double s1, double c, double s2,
                                int n_jobs, std::optional<exact<double>> data2_in,
                                std::optional<carray<I>> indices2,
                                std::optional<exact<I>> indptr2_in) {
  const SplitCsr<I> m =
      split_csr("csr_cheb_matmat", data_in, indices, indptr_in, data2_in, indices2, indptr2_in);
  const int64_t n = m.n;
  if (X.ndim() != 2 || X.shape(0) != n || Z.ndim() != 2 || Z.shape(0) != n ||
      Z.shape(1) != X.shape(1))
    throw std::invalid_argument("csr_cheb_matmat: X and Z must be (n, s) for an n x n matrix");
  const int64_t s = X.shape(1);
  py::array_t<double> Y({n, s});
  double* py_ = Y.mutable_data();
  const double* px = X.data();
  const double* pz = Z.data();
  {
    py::gil_scoped_release release;
    // small products on one thread (as csr_matmat: a parallel region costs more below ~1M)
    const int nt = m.nnz() * s >= (int64_t(1) << 20) ? resolve_threads(n_jobs) : 1;
    csr_cheb_mm<I>(m.A, px, s, pz, s1, c, s2, py_, nt, m.split ? &m.B : nullptr);
  }
  return Y;
}

/// A 2-D float64 array with contiguous columns (Fortran order, or a slice of its columns).
struct ColBlock {
  double* ptr;
  int64_t ld;
  int64_t rows, cols;
};

ColBlock col_block(py::handle obj, const char* who, bool write);

template <typename I>
void csr_cheb_filter_py(exact<double> data_in, carray<I> indices, exact<I> indptr_in,
                        py::array_t<double> X, py::handle out, py::array_t<double> work, int degree,
                        double c, double e, int n_jobs, std::optional<exact<double>> data2_in,
                        std::optional<carray<I>> indices2, std::optional<exact<I>> indptr2_in) {
  const SplitCsr<I> m =
      split_csr("csr_cheb_filter", data_in, indices, indptr_in, data2_in, indices2, indptr2_in);
  const int64_t n = m.n;
  if (degree < 1) throw std::invalid_argument("csr_cheb_filter: degree must be >= 1");
  if (X.ndim() != 2 || X.shape(0) != n)
    throw std::invalid_argument("csr_cheb_filter: X must be (n, s) for an n x n matrix");
  const int64_t s = X.shape(1);
  const ColBlock o = col_block(out, "csr_cheb_filter", true);
  if (o.rows != n || o.cols != s)
    throw std::invalid_argument("csr_cheb_filter: out must have X's shape");
  if (!(work.flags() & py::array::c_style) || !work.writeable() || work.size() < 3 * n * s + 24)
    throw std::invalid_argument(
        "csr_cheb_filter: work must be writeable, contiguous, of >= 3 n s + 24 entries");
  const int64_t xr = X.strides(0) / int64_t(sizeof(double)),
                xc = X.strides(1) / int64_t(sizeof(double));
  if (X.strides(0) % int64_t(sizeof(double)) || X.strides(1) % int64_t(sizeof(double)))
    throw std::invalid_argument("csr_cheb_filter: X's strides must be multiples of 8 bytes");
  const double* px = X.data();
  double* pw = work.mutable_data();
  {
    py::gil_scoped_release release;
    const int nt = m.nnz() * s >= (int64_t(1) << 20) ? resolve_threads(n_jobs) : 1;
    csr_cheb_filter<I>(m.A, px, xr, xc, s, degree, c, e, pw, o.ptr, o.ld, nt,
                       m.split ? &m.B : nullptr);
  }
}

ColBlock col_block(py::handle obj, const char* who, bool write) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(who) + ": blocks must be float64 NumPy arrays");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<double>()) || a.ndim() != 2)
    throw py::type_error(std::string(who) + ": blocks must be 2-D float64 arrays");
  if (write && !a.writeable()) throw py::type_error(std::string(who) + ": Y must be writeable");
  const int64_t rows = a.shape(0), cols = a.shape(1), e = sizeof(double);
  const int64_t s0 = a.strides(0), s1 = a.strides(1);
  if (rows > 0 && cols > 0 &&
      ((rows > 1 && s0 != e) || (cols > 1 && (s1 % e != 0 || s1 < rows * e))))
    throw std::invalid_argument(std::string(who) +
                                ": blocks need contiguous columns (Fortran order)");
  const int64_t ld = cols > 1 ? s1 / e : rows;
  return ColBlock{static_cast<double*>(const_cast<void*>(a.data())), ld, rows, cols};
}

py::array_t<double> tall_gram_py(py::handle A, py::handle B, int n_jobs) {
  const ColBlock a = col_block(A, "tall_gram", false), b = col_block(B, "tall_gram", false);
  if (a.rows != b.rows) throw std::invalid_argument("tall_gram: A and B need the same rows");
  py::array_t<double> G({a.cols, b.cols});
  double* g = G.mutable_data();
  {
    py::gil_scoped_release release;
    const int nt = a.rows * a.cols * b.cols >= (int64_t(1) << 18) ? resolve_threads(n_jobs) : 1;
    tall_gram(a.rows, a.ptr, a.ld, a.cols, b.ptr, b.ld, b.cols, g, nt);
  }
  return G;
}

void tall_sub_py(py::handle Y, py::handle A, carray<double> M, int n_jobs) {
  const ColBlock y = col_block(Y, "tall_sub", true), a = col_block(A, "tall_sub", false);
  if (a.rows != y.rows || M.ndim() != 2 || M.shape(0) != a.cols || M.shape(1) != y.cols)
    throw std::invalid_argument("tall_sub: Y (n, q), A (n, p) and M (p, q) do not match");
  const double* m = M.data();
  py::gil_scoped_release release;
  const int nt = y.rows * (a.cols + 1) * y.cols >= (int64_t(1) << 18) ? resolve_threads(n_jobs) : 1;
  tall_sub(y.rows, y.ptr, y.ld, y.cols, a.ptr, a.ld, a.cols, m, nt);
}

void set_blas_py(py::handle dgemm, py::handle sgemm, py::handle dsyrk, py::handle ssyrk) {
  set_blas(reinterpret_cast<dgemm_fn>(capsule_pointer(dgemm, "dgemm")),
           reinterpret_cast<sgemm_fn>(capsule_pointer(sgemm, "sgemm")),
           reinterpret_cast<dsyrk_fn>(capsule_pointer(dsyrk, "dsyrk")),
           reinterpret_cast<ssyrk_fn>(capsule_pointer(ssyrk, "ssyrk")));
}

}  // namespace

void bind_lowrank(py::module_& m) {
  m.def("lowrank_set_blas", &set_blas_py, py::arg("dgemm"), py::arg("sgemm"), py::arg("dsyrk"),
        py::arg("ssyrk"),
        "Install BLAS routines from scipy.linalg.cython_blas.__pyx_capi__ capsules.");
  m.def("lowrank_blas_ready", &blas_ready, "Whether lowrank_set_blas has installed BLAS.");
  def_overloads(m, "ttm", Floats{}, GEOML_PICK(ttm_py), py::arg("X").noconvert(), py::arg("n"),
                py::arg("A"), py::kw_only(), py::arg("transposed") = false, py::arg("n_jobs") = 0,
                "Mode-n product X x_n A (A^T if transposed).");
  def_overloads(m, "mode_gram", Floats{}, GEOML_PICK(gram_py), py::arg("X").noconvert(),
                py::arg("n"), py::kw_only(), py::arg("n_jobs") = 0,
                "Gram matrix X_(n) X_(n)^T of the mode-n unfolding.");
  def_overloads(m, "gram_apply", Floats{}, GEOML_PICK(gram_apply_py), py::arg("X").noconvert(),
                py::arg("n"), py::arg("U"), py::kw_only(), py::arg("n_jobs") = 0,
                "X_(n) X_(n)^T U in float64 without forming the Gram matrix.");
  def_overloads(m, "gram_apply_pair", Floats{}, GEOML_PICK(gram_apply_pair_py),
                py::arg("X").noconvert(), py::arg("U1"), py::arg("U2"), py::kw_only(),
                py::arg("n_jobs") = 0,
                "(Gram of mode N-2 times U1, Gram of mode N-1 times U2), one read of X.");
  def_overloads(m, "mode_sketch", Floats{}, GEOML_PICK(sketch_py), py::arg("X").noconvert(),
                py::arg("n"), py::arg("W"), py::kw_only(), py::arg("n_jobs") = 0,
                "Sketch X_(n) W of the mode-n unfolding.");
  def_overloads(m, "ts_gram", Floats{}, GEOML_PICK(ts_gram_py), py::arg("Y").noconvert(),
                py::kw_only(), py::arg("n_jobs") = 0, "Y^T Y (float64) of a tall matrix.");
  def_overloads(m, "ts_matmul", Floats{}, GEOML_PICK(ts_matmul_py), py::arg("Y").noconvert(),
                py::arg("M"), py::kw_only(), py::arg("n_jobs") = 0,
                "Y M for a tall Y and a small M, in Y's dtype.");
  def_overloads(m, "sum_squares", Floats{}, GEOML_PICK(sumsq_py), py::arg("X").noconvert(),
                py::kw_only(), py::arg("n_jobs") = 0, "Sum of squares of X (float64).");
  def_overloads(
      m, "csr_cheb_matmat", Indices{},
      [](auto i) { return &csr_cheb_py<typename decltype(i)::type>; }, py::arg("data").noconvert(),
      py::arg("indices"), py::arg("indptr").noconvert(), py::arg("X"), py::arg("Z"), py::kw_only(),
      py::arg("s1"), py::arg("c"), py::arg("s2"), py::arg("n_jobs") = 0,
      py::arg("data2").noconvert() = py::none(), py::arg("indices2") = py::none(),
      py::arg("indptr2").noconvert() = py::none(),
      "s1 (A X - c X) - s2 Z, square float64 CSR A; data2, ...: A's later columns (same sums).");
  def_overloads(
      m, "csr_cheb_filter", Indices{},
      [](auto i) { return &csr_cheb_filter_py<typename decltype(i)::type>; },
      py::arg("data").noconvert(), py::arg("indices"), py::arg("indptr").noconvert(),
      py::arg("X").noconvert(), py::arg("out"), py::arg("work").noconvert(), py::kw_only(),
      py::arg("degree"), py::arg("c"), py::arg("e"), py::arg("n_jobs") = 0,
      py::arg("data2").noconvert() = py::none(), py::arg("indices2") = py::none(),
      py::arg("indptr2").noconvert() = py::none(),
      "out = T_degree((A - c) / e) X, csr_cheb_matmat's steps; work: 3 n s + 24 float64.");
  m.def("tall_gram", &tall_gram_py, py::arg("A"), py::arg("B"), py::kw_only(),
        py::arg("n_jobs") = 0,
        "A^T B, float64 blocks with contiguous columns (the same bits for any n_jobs).");
  m.def("tall_sub", &tall_sub_py, py::arg("Y"), py::arg("A"), py::arg("M"), py::kw_only(),
        py::arg("n_jobs") = 0,
        "Y -= A M in place for float64 blocks with contiguous columns (row-parallel).");
  def_overloads2(m, "csr_matmat", Floats{}, Indices{}, GEOML_PICK2(csr_mm_py),
                 py::arg("data").noconvert(), py::arg("indices"), py::arg("indptr").noconvert(),
                 py::arg("X"), py::kw_only(), py::arg("n_cols"), py::arg("transpose") = false,
                 py::arg("n_jobs") = 0,
                 "A X (A^T X if transpose) for a CSR matrix A with n_cols columns.");
}

}  // namespace geoml
