// Bindings for Ollivier-Ricci and Forman-Ricci curvature.
#include "bindings.hpp"
#include "curvature/curvature.hpp"

namespace geoml {
namespace {

CsrGraph as_graph(const carray<int64_t>& indptr, const carray<int64_t>& indices,
                  const carray<double>& weights) {
  const int64_t n = indptr.shape(0) - 1;
  if (n < 0 || indices.shape(0) != weights.shape(0) || indptr.data()[n] != indices.shape(0))
    throw std::invalid_argument("inconsistent CSR graph arrays");
  return {n, indptr.data(), indices.data(), weights.data()};
}

}  // namespace

void bind_curvature(py::module_& m) {
  m.def(
      "ollivier_ricci",
      [](carray<int64_t> indptr, carray<int64_t> indices, carray<double> weights,
         carray<int64_t> eu, carray<int64_t> ev, double alpha, double base, double exp_power,
         int64_t nbr_topk, int method, double eps, double tol, int64_t max_iter, int n_jobs) {
        const CsrGraph g = as_graph(indptr, indices, weights);
        const int64_t ne = eu.shape(0);
        if (ev.shape(0) != ne) throw std::invalid_argument("eu and ev differ in length");
        OrcOptions o;
        o.alpha = alpha;
        o.base = base;
        o.exp_power = exp_power;
        o.nbr_topk = nbr_topk;
        o.method = static_cast<OrcMethod>(method);
        o.eps = eps;
        o.tol = tol;
        o.max_iter = max_iter;
        o.n_threads = n_jobs;
        py::array_t<double> kappa(ne), dist(ne);
        py::array_t<int> status(ne);
        double* pk = kappa.mutable_data();
        double* pd = dist.mutable_data();
        int* ps = status.mutable_data();
        {
          py::gil_scoped_release release;
          ollivier_ricci(g, ne, eu.data(), ev.data(), o, pk, pd, ps);
        }
        return py::make_tuple(kappa, dist, status);
      },
      "ollivier_ricci(indptr, indices, weights, eu, ev, alpha, base, exp_power, nbr_topk, "
      "method, eps, tol, max_iter, n_jobs) -> (kappa, dist, status)");
  m.def(
      "forman_ricci",
      [](carray<int64_t> indptr, carray<int64_t> indices, carray<double> weights,
         carray<int64_t> eu, carray<int64_t> ev, bool augmented, int n_jobs) {
        const CsrGraph g = as_graph(indptr, indices, weights);
        const int64_t ne = eu.shape(0);
        if (ev.shape(0) != ne) throw std::invalid_argument("eu and ev differ in length");
        py::array_t<double> out(ne);
        double* po = out.mutable_data();
        {
          py::gil_scoped_release release;
          forman_ricci(g, ne, eu.data(), ev.data(), augmented, n_jobs, po);
        }
        return out;
      },
      "forman_ricci(indptr, indices, weights, eu, ev, augmented, n_jobs) -> curvature");
}

}  // namespace geoml
