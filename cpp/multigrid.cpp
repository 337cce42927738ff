#include "multigrid.hpp"

#include <cmath>
#include <vector>

#include "common.hpp"

namespace geoml {

template <typename I>
int64_t aggregate_graph(int64_t n, const I* indptr, const I* indices, const double* data,
                        int32_t* labels) {
  for (int64_t i = 0; i < n; ++i) labels[i] = -1;
  int32_t nagg = 0;
  // pass 1: roots with all neighbours free
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] >= 0) continue;
    bool free = true;
    bool any = false;
    for (I p = indptr[i]; p < indptr[i + 1]; ++p) {
      if (indices[p] == i) continue;
      any = true;
      if (labels[indices[p]] >= 0) {
        free = false;
        break;
      }
    }
    if (!free || !any) continue;
    labels[i] = nagg;
    for (I p = indptr[i]; p < indptr[i + 1]; ++p) labels[indices[p]] = nagg;
    ++nagg;
  }
  // pass 2: join the strongest aggregated neighbour (from pass 1 only)
  std::vector<int32_t> pass1(labels, labels + n);
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] >= 0) continue;
    double best = -1;
    int32_t lab = -1;
    for (I p = indptr[i]; p < indptr[i + 1]; ++p) {
      const int32_t l = pass1[indices[p]];
      if (l < 0 || indices[p] == i) continue;
      const double w = data ? std::fabs(data[p]) : 1.0;
      if (w > best) {
        best = w;
        lab = l;
      }
    }
    labels[i] = lab;
  }
  // pass 3: leftovers with their free neighbours
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] >= 0) continue;
    labels[i] = nagg;
    for (I p = indptr[i]; p < indptr[i + 1]; ++p)
      if (labels[indices[p]] < 0) labels[indices[p]] = nagg;
    ++nagg;
  }
  return nagg;
}

template <typename I>
void csr_spmm(int64_t rows, const I* indptr, const I* indices, const double* data, int64_t m,
              const double* X, double alpha, const double* B, double beta, double* Y,
              int n_threads) {
  const int nt = resolve_threads(n_threads);
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> acc(m);
#pragma omp for schedule(dynamic, 512)
    for (int64_t i = 0; i < rows; ++i) {
      double* a = acc.data();
      for (int64_t c = 0; c < m; ++c) a[c] = 0;
      for (I p = indptr[i]; p < indptr[i + 1]; ++p) {
        const double v = data[p];
        const double* x = X + static_cast<int64_t>(indices[p]) * m;
#pragma omp simd
        for (int64_t c = 0; c < m; ++c) a[c] += v * x[c];
      }
      double* y = Y + i * m;
      if (B == nullptr) {
#pragma omp simd
        for (int64_t c = 0; c < m; ++c) y[c] = alpha * a[c];
      } else {
        const double* b = B + i * m;
#pragma omp simd
        for (int64_t c = 0; c < m; ++c) y[c] = alpha * a[c] + beta * b[c];
      }
    }
  }
}

template int64_t aggregate_graph<int32_t>(int64_t, const int32_t*, const int32_t*,
                                          const double*, int32_t*);
template int64_t aggregate_graph<int64_t>(int64_t, const int64_t*, const int64_t*,
                                          const double*, int32_t*);
template void csr_spmm<int32_t>(int64_t, const int32_t*, const int32_t*, const double*, int64_t,
                                const double*, double, const double*, double, double*, int);
template void csr_spmm<int64_t>(int64_t, const int64_t*, const int64_t*, const double*, int64_t,
                                const double*, double, const double*, double, double*, int);

}  // namespace geoml
