#include "multigrid.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "common/sparse.hpp"

namespace geoml {

// ---------------------------------------------------------------- per-ISA V-cycle kernels
namespace {
#define GEOML_KERNEL_INC "spectral/multigrid_kernel.inc"
#define GEOML_KERNEL_GENERIC_VBYTES 32
#include "common/simd_instantiate.inc"

enum SpmmMode : int { kSet = 0, kAdd = 1, kResidual = 2, kJacobi = 3 };
using RowsFn = void (*)(int, int64_t, int64_t, const int32_t*, const int32_t*, const float*,
                        int64_t, const float*, const float*, const float*, float*);

RowsFn rows_kernel() {
  return GEOML_SIMD_PICK(simd_isa(), spmm_rows);
}

/// One fused product (see SpmmMode) of CSR M with the row-major block X of row length w;
/// threads capped so that each gets ~1e5 flops at least. Rows go in ~16 contiguous chunks
/// per thread, handed out dynamically: on a shared machine a thread that loses its core
/// no longer holds the others at the end of every product (with one static range per
/// thread, the V-cycles took 3-5x longer whenever the other core was busy).
void product(const CsrF32& M, int mode, int64_t w, const float* X, const float* B, const float* jac,
             float* Y, int n_threads) {
  const RowsFn fn = rows_kernel();
  const int64_t rows = M.rows;
  const int64_t work = (static_cast<int64_t>(M.data.size()) + rows) * w;
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, work / 200000)));
  const int32_t *ip = M.indptr.data(), *ix = M.indices.data();
  const float* a = M.data.data();
  if (nt == 1) {
    fn(mode, 0, rows, ip, ix, a, w, X, B, jac, Y);
    return;
  }
  const int64_t chunk = std::max<int64_t>(256, rows / (16 * nt));
  const int64_t nchunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c)
    fn(mode, c * chunk, std::min(rows, (c + 1) * chunk), ip, ix, a, w, X, B, jac, Y);
}

void check_csr(const CsrF32& M, int64_t cols, const char* what) {
  if (static_cast<int64_t>(M.indptr.size()) != M.rows + 1 || M.indptr[0] != 0 ||
      static_cast<std::size_t>(M.indptr[M.rows]) != M.indices.size() ||
      M.indices.size() != M.data.size())
    throw std::invalid_argument(std::string("AmgCycle: inconsistent CSR arrays for ") + what);
  for (int32_t j : M.indices)
    if (j < 0 || j >= cols)
      throw std::invalid_argument(std::string("AmgCycle: column index out of range in ") + what);
}
}  // namespace

void AmgCycle::add_level(CsrF32 A, std::vector<float> jac, CsrF32 P, CsrF32 R) {
  if (complete_) throw std::invalid_argument("AmgCycle: the coarsest level is already set");
  if (!lv_.empty() && A.rows != lv_.back().R.rows)
    throw std::invalid_argument("AmgCycle: level size does not match the previous R");
  const int64_t nc = R.rows;
  if (static_cast<int64_t>(jac.size()) != A.rows || P.rows != A.rows)
    throw std::invalid_argument("AmgCycle: A, jac and P must have the same number of rows");
  check_csr(A, A.rows, "A");
  check_csr(P, nc, "P");
  check_csr(R, A.rows, "R");
  Level l;
  l.A = std::move(A);
  l.P = std::move(P);
  l.R = std::move(R);
  l.jac = std::move(jac);
  lv_.push_back(std::move(l));
}

void AmgCycle::set_coarse(CsrF32 A, CsrF32 pinv) {
  if (complete_) throw std::invalid_argument("AmgCycle: the coarsest level is already set");
  if (!lv_.empty() && A.rows != lv_.back().R.rows)
    throw std::invalid_argument("AmgCycle: coarsest size does not match the previous R");
  if (pinv.rows != A.rows)
    throw std::invalid_argument("AmgCycle: the pseudo-inverse must be as large as A");
  check_csr(A, A.rows, "A");
  check_csr(pinv, A.rows, "pinv");
  Level l;
  l.A = std::move(A);
  l.P = std::move(pinv);
  lv_.push_back(std::move(l));
  complete_ = true;
}

void AmgCycle::vcycle(std::size_t i, int64_t w, bool zero, int nt) {
  Level& L = lv_[i];
  if (i + 1 == lv_.size()) {  // coarsest: x = pinv b (or x += pinv (b - A x))
    if (zero) {
      product(L.P, kSet, w, L.b.data(), nullptr, nullptr, L.x.data(), nt);
    } else {
      product(L.A, kResidual, w, L.x.data(), L.b.data(), nullptr, L.r.data(), nt);
      product(L.P, kAdd, w, L.r.data(), nullptr, nullptr, L.x.data(), nt);
    }
    return;
  }
  if (zero) {  // pre-smoothing from 0: x = jac b
    const int64_t n = L.A.rows;
    float* x = L.x.data();
    const float* b = L.b.data();
    const float* jac = L.jac.data();
    const int ntl = static_cast<int>(
        std::min<int64_t>(resolve_threads(nt), std::max<int64_t>(1, n * w / 200000)));
#pragma omp parallel for num_threads(ntl) schedule(static)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < w; ++c) x[r * w + c] = jac[r] * b[r * w + c];
  } else {
    product(L.A, kJacobi, w, L.x.data(), L.b.data(), L.jac.data(), L.t.data(), nt);
    std::swap(L.x, L.t);
  }
  Level& C = lv_[i + 1];
  product(L.A, kResidual, w, L.x.data(), L.b.data(), nullptr, L.r.data(), nt);
  product(L.R, kSet, w, L.r.data(), nullptr, nullptr, C.b.data(), nt);
  vcycle(i + 1, w, true, nt);
  product(L.P, kAdd, w, C.x.data(), nullptr, nullptr, L.x.data(), nt);
  product(L.A, kJacobi, w, L.x.data(), L.b.data(), L.jac.data(), L.t.data(), nt);
  std::swap(L.x, L.t);
}

void AmgCycle::apply(int64_t level, int64_t m, const double* B, double* X, int cycles,
                     int n_threads) {
  if (!complete_) throw std::invalid_argument("AmgCycle: the coarsest level is not set");
  if (level < 0 || level >= n_levels()) throw std::invalid_argument("AmgCycle: level out of range");
  if (m < 1 || cycles < 1) throw std::invalid_argument("AmgCycle: m and cycles must be >= 1");
  const int64_t w = (m + 7) / 8 * 8;
  for (std::size_t i = level; i < lv_.size(); ++i) {
    const size_t sz = static_cast<std::size_t>(lv_[i].A.rows * w);
    for (auto* v : {&lv_[i].b, &lv_[i].x, &lv_[i].t, &lv_[i].r})
      if (v->size() != sz) v->assign(sz, 0.0f);
  }
  Level& L = lv_[level];
  const int64_t n = L.A.rows;
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n * w / 200000)));
  float* b = L.b.data();
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < m; ++c) b[r * w + c] = static_cast<float>(B[r * m + c]);
    for (int64_t c = m; c < w; ++c) b[r * w + c] = 0.0f;
  }
  vcycle(level, w, true, n_threads);
  for (int c = 1; c < cycles; ++c) vcycle(level, w, false, n_threads);
  const float* x = L.x.data();
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < m; ++c) X[r * m + c] = x[r * w + c];
}

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
int64_t rcm_components(int64_t n, const I* indptr, const I* indices, int64_t* perm,
                       int32_t* labels) {
  // seeds by increasing degree, ties by index: counting sort on the degree
  std::vector<int64_t> deg(n), seeds(n);
  int64_t max_deg = 0;
  for (int64_t v = 0; v < n; ++v) {
    deg[v] = static_cast<int64_t>(indptr[v + 1] - indptr[v]);
    max_deg = std::max(max_deg, deg[v]);
  }
  std::vector<int64_t> start(max_deg + 2, 0);
  for (int64_t v = 0; v < n; ++v) ++start[deg[v] + 1];
  for (int64_t k = 0; k <= max_deg; ++k) start[k + 1] += start[k];
  for (int64_t v = 0; v < n; ++v) seeds[start[deg[v]]++] = v;
  for (int64_t v = 0; v < n; ++v) labels[v] = -1;
  int32_t ncomp = 0;
  int64_t tail = 0;  // perm[0 .. tail) is the visiting order so far (also the BFS queue)
  for (int64_t si = 0; si < n; ++si) {
    const int64_t seed = seeds[si];
    if (labels[seed] >= 0) continue;
    const int32_t c = ncomp++;
    labels[seed] = c;
    int64_t head = tail;
    perm[tail++] = seed;
    while (head < tail) {
      const int64_t v = perm[head++];
      const int64_t first = tail;
      for (I p = indptr[v]; p < indptr[v + 1]; ++p) {
        const int64_t u = static_cast<int64_t>(indices[p]);
        if (labels[u] < 0) {
          labels[u] = c;
          perm[tail++] = u;
        }
      }
      // stable insertion sort of the new nodes by degree (neighbour lists are short)
      for (int64_t i = first + 1; i < tail; ++i) {
        const int64_t u = perm[i];
        int64_t j = i;
        for (; j > first && deg[perm[j - 1]] > deg[u]; --j) perm[j] = perm[j - 1];
        perm[j] = u;
      }
    }
  }
  std::reverse(perm, perm + n);
  return ncomp;
}

template <typename I>
void permuted_lsym(int64_t n, const I* indptr, const I* indices, const double* data,
                   const double* d, const int64_t* perm, int64_t* out_indptr,
                   big_vector<int64_t>& out_indices, big_vector<double>& out_data, int n_threads) {
  const int nt = resolve_threads(n_threads);
  struct Node {
    int64_t pos;  // new index
    double s;     // 1 / sqrt(d), 0 for an isolated node
  };
  std::vector<Node> node(n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    node[perm[i]].pos = i;
    node[i].s = d[i] > 0 ? 1.0 / std::sqrt(d[i]) : 0.0;
  }
  // row lengths: the entries without self-loops, plus the diagonal for a non-isolated node
  big_vector<int64_t> len(n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t v = 0; v < n; ++v) {
    int64_t l = d[v] > 0 ? 1 : 0;
    for (I p = indptr[v]; p < indptr[v + 1]; ++p) l += static_cast<int64_t>(indices[p]) != v;
    len[v] = l;
  }
  out_indptr[0] = 0;
  for (int64_t i = 0; i < n; ++i) out_indptr[i + 1] = out_indptr[i] + len[perm[i]];
  out_indices.resize(out_indptr[n]);
  out_data.resize(out_indptr[n]);
  int64_t* oi = out_indices.data();
  double* od = out_data.data();
  // pass 1, reading W in its own row order (sequential; the rows of a kNN graph in data order
  // are scattered across the new order, and reading them in the new order cost ~3x more):
  // each row is written, unsorted, to its place in the new order
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t v = 0; v < n; ++v) {
    const double sv = node[v].s;
    double diag = d[v] > 0 ? 1.0 : 0.0;
    int64_t q = out_indptr[node[v].pos];
    for (I p = indptr[v]; p < indptr[v + 1]; ++p) {
      const int64_t u = static_cast<int64_t>(indices[p]);
      const Node& nu = node[u];
      const double x = -sv * data[p] * nu.s;
      if (u == v) {
        diag += x;
      } else {
        oi[q] = nu.pos;
        od[q++] = x;
      }
    }
    if (d[v] > 0) {
      oi[q] = node[v].pos;
      od[q] = diag;
    }
  }
  // pass 2, in the new order: sort the columns of each row (insertion sort for the short rows
  // of kNN graphs, std::sort beyond 64 entries)
  OmpErrors errors;  // the long rows' buffer (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<int64_t, double>> long_row;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t q0 = out_indptr[i], q = out_indptr[i + 1];
      if (q - q0 > 64) {
        errors.run([&] {
          long_row.clear();
          for (int64_t j = q0; j < q; ++j) long_row.emplace_back(oi[j], od[j]);
          std::sort(long_row.begin(), long_row.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
          for (int64_t j = q0; j < q; ++j) {
            oi[j] = long_row[j - q0].first;
            od[j] = long_row[j - q0].second;
          }
        });
        continue;
      }
      for (int64_t j = q0 + 1; j < q; ++j) {
        const int64_t c = oi[j];
        const double x = od[j];
        int64_t k = j;
        for (; k > q0 && oi[k - 1] > c; --k) {
          oi[k] = oi[k - 1];
          od[k] = od[k - 1];
        }
        oi[k] = c;
        od[k] = x;
      }
    }
  }
  errors.rethrow();
}

template <typename I>
void csr_spmm(int64_t rows, const I* indptr, const I* indices, const double* data, int64_t m,
              const double* X, double alpha, const double* B, double beta, double* Y,
              int n_threads) {
  csr_mm<double>(CsrRef<double, I>{rows, indptr, indices, data}, X, m, Y,
                 resolve_threads(n_threads), alpha, B, beta);
}

template int64_t aggregate_graph<int32_t>(int64_t, const int32_t*, const int32_t*, const double*,
                                          int32_t*);
template int64_t aggregate_graph<int64_t>(int64_t, const int64_t*, const int64_t*, const double*,
                                          int32_t*);
template int64_t rcm_components<int32_t>(int64_t, const int32_t*, const int32_t*, int64_t*,
                                         int32_t*);
template int64_t rcm_components<int64_t>(int64_t, const int64_t*, const int64_t*, int64_t*,
                                         int32_t*);
template void permuted_lsym<int32_t>(int64_t, const int32_t*, const int32_t*, const double*,
                                     const double*, const int64_t*, int64_t*, big_vector<int64_t>&,
                                     big_vector<double>&, int);
template void permuted_lsym<int64_t>(int64_t, const int64_t*, const int64_t*, const double*,
                                     const double*, const int64_t*, int64_t*, big_vector<int64_t>&,
                                     big_vector<double>&, int);
template void csr_spmm<int32_t>(int64_t, const int32_t*, const int32_t*, const double*, int64_t,
                                const double*, double, const double*, double, double*, int);
template void csr_spmm<int64_t>(int64_t, const int64_t*, const int64_t*, const double*, int64_t,
                                const double*, double, const double*, double, double*, int);

}  // namespace geoml
