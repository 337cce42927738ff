#include "graph.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/common.hpp"

namespace geoml {

template <typename T, typename I>
Csr<T, I> neighbors_to_csr(int64_t n, int64_t k, const int64_t* idx, const T* w, Symmetrize mode,
                           int n_threads) {
  const int nt = resolve_threads(n_threads);
  for (int64_t e = 0; e < n * k; ++e)
    if (idx[e] >= n)
      throw std::invalid_argument("neighbour index " + std::to_string(idx[e]) +
                                  " out of range for " + std::to_string(n) + " nodes");

  // Candidate entries of each row: its own out-edges (side 0) and, unless mode is None,
  // the reversed in-edges (side 1). Bucketed by row with a counting sort.
  struct Entry {
    int64_t col;
    T val;
    int side;
  };
  const bool sym = mode != Symmetrize::None;
  std::vector<int64_t> start(static_cast<size_t>(n + 1), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < k; ++t) {
      const int64_t j = idx[i * k + t];
      if (j < 0 || j == i) continue;
      start[i + 1]++;
      if (sym) start[j + 1]++;
    }
  for (int64_t i = 0; i < n; ++i) start[i + 1] += start[i];
  std::vector<Entry> buf(static_cast<size_t>(start[n]));
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < k; ++t) {
        const int64_t j = idx[i * k + t];
        if (j < 0 || j == i) continue;
        const T v = w[i * k + t];
        buf[fill[i]++] = {j, v, 0};
        if (sym) buf[fill[j]++] = {i, v, 1};
      }
  }

  // Sort each row by column and merge the two sides in place; count what survives.
  std::vector<int64_t> kept(static_cast<size_t>(n), 0);
#pragma omp parallel for schedule(dynamic, 256) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    Entry* b = buf.data() + start[i];
    Entry* e = buf.data() + start[i + 1];
    std::sort(b, e, [](const Entry& x, const Entry& y) {
      return x.col < y.col || (x.col == y.col && x.side < y.side);
    });
    int64_t out = 0;
    for (Entry* p = b; p < e;) {
      const bool pair = (p + 1 < e) && p[1].col == p->col;
      const T a = p->val;
      const T c = pair ? p[1].val : T(0);
      bool keep = true;
      T v = a;
      switch (mode) {
        case Symmetrize::None:
          break;
        case Symmetrize::Union:
          v = pair ? std::max(a, c) : a;
          break;
        case Symmetrize::Mutual:
          keep = pair;
          v = std::min(a, c);
          break;
        case Symmetrize::Mean:
          v = (a + c) / T(2);
          break;
      }
      if (keep) b[out++] = {p->col, v, 0};
      p += pair ? 2 : 1;
    }
    kept[i] = out;
  }

  Csr<T, I> g;
  g.indptr.assign(static_cast<size_t>(n + 1), I(0));
  for (int64_t i = 0; i < n; ++i) g.indptr[i + 1] = g.indptr[i] + I(kept[i]);
  const int64_t nnz = static_cast<int64_t>(g.indptr[n]);
  g.indices.resize(static_cast<size_t>(nnz));
  g.data.resize(static_cast<size_t>(nnz));
#pragma omp parallel for schedule(dynamic, 256) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    const Entry* b = buf.data() + start[i];
    const int64_t o = static_cast<int64_t>(g.indptr[i]);
    for (int64_t t = 0; t < kept[i]; ++t) {
      g.indices[o + t] = I(b[t].col);
      g.data[o + t] = b[t].val;
    }
  }
  return g;
}

template Csr<float, int32_t> neighbors_to_csr(int64_t, int64_t, const int64_t*, const float*,
                                              Symmetrize, int);
template Csr<double, int32_t> neighbors_to_csr(int64_t, int64_t, const int64_t*, const double*,
                                               Symmetrize, int);
template Csr<float, int64_t> neighbors_to_csr(int64_t, int64_t, const int64_t*, const float*,
                                              Symmetrize, int);
template Csr<double, int64_t> neighbors_to_csr(int64_t, int64_t, const int64_t*, const double*,
                                               Symmetrize, int);

}  // namespace geoml
