// Distance rows of Ollivier-Ricci curvature: the 3-hop distances from a node (weighted or
// hop counts), the hub masks, bfs order of the nodes, and the merging of duplicate cost rows
// and columns (see curvature_internal.hpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "curvature/curvature_internal.hpp"

namespace geoml {
namespace curvature_detail {
namespace {

using Item = std::pair<double, int64_t>;  // (tentative distance, node)

/// Indexed 4-ary min-heap on the distance alone, with decrease-key: each node enters once and
/// leaves once (no stale duplicates to pop), `pos[v]` its slot while it is in. Dijkstra's
/// settled distances do not depend on how ties are ordered (a node's distance is the minimum
/// over its relaxations, every one of which is done before it can be the minimum).
struct IndexedHeap {
  std::vector<Item>& h;
  int32_t* pos;
  void place(size_t i, const Item& it) {
    h[i] = it;
    pos[it.second] = static_cast<int32_t>(i);
  }
  void sift_up(size_t i, const Item it) {
    while (i > 0) {
      const size_t p = (i - 1) / 4;
      if (!(it.first < h[p].first)) break;
      place(i, h[p]);
      i = p;
    }
    place(i, it);
  }
  void push(const Item it) {
    h.push_back(it);
    sift_up(h.size() - 1, it);
  }
  void decrease(int64_t v, double d) { sift_up(static_cast<size_t>(pos[v]), {d, v}); }
  Item pop() {
    const Item top = h[0], last = h.back();
    h.pop_back();
    const size_t n = h.size();
    if (n == 0) return top;
    size_t i = 0;
    for (;;) {
      const size_t c = 4 * i + 1;
      if (c >= n) break;
      size_t best = c;
      const size_t e = std::min(c + 4, n);
      for (size_t k = c + 1; k < e; ++k) best = h[k].first < h[best].first ? k : best;
      if (!(h[best].first < last.first)) break;
      place(i, h[best]);
      i = best;
    }
    place(i, last);
    return top;
  }
};

/// Dijkstra's start from u: a new generation of labels, the heap holding u alone.
IndexedHeap dijkstra_start(int64_t u, Scratch& s) {
  ++s.dgen;
  s.heap.clear();
  IndexedHeap H{s.heap, s.hpos.data()};
  s.dist[u] = 0;
  s.dist_gen[u] = s.dgen;
  H.push({0.0, u});
  return H;
}

/// Dijkstra's relaxation of an arc into y with the tentative distance nd: a node not yet
/// reached enters the heap, a lower label decreases its key (a settled y has a label <= nd).
inline void dijkstra_relax(IndexedHeap& H, Scratch& s, int64_t y, double nd) {
  if (s.dist_gen[y] != s.dgen) {
    s.dist_gen[y] = s.dgen;
    s.dist[y] = nd;
    H.push({nd, y});
  } else if (nd < s.dist[y]) {
    s.dist[y] = nd;
    H.decrease(y, nd);
  }
}

/// Distances from u up to `stop` (every node within it, in the order settled): Dijkstra,
/// each node's arcs by increasing weight so that its scan stops at the first one past `stop`.
void bounded_dijkstra(const CsrGraph& g, int64_t u, double stop, Scratch& s, Row& row) {
  row.clear();
  IndexedHeap H = dijkstra_start(u, s);
  while (!s.heap.empty()) {
    const auto [du, x] = H.pop();
    if (du > stop) break;
    row.push_back({x, du});
    for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e) {
      const double nd = du + g.weights[e];
      if (nd > stop) break;  // never settled before the stop, nor the later (longer) arcs
      dijkstra_relax(H, s, g.indices[e], nd);
    }
  }
}

}  // namespace

void compute_row(const CsrGraph& g, int64_t u, bool equal, double unit, double radius, Scratch& s,
                 Row& row) {
  row.clear();
  if (!equal && radius < std::numeric_limits<double>::infinity()) {
    // Every node within the radius (a bound on every distance that will be read, see
    // source_radii), with its distance; each node's arcs are in increasing weight
    // (weight_sorted), so its scan stops at the first arc that leads past the radius. Found
    // by a label-correcting search (FIFO queue, a node queued again when its label drops
    // after its scan): no heap, and on kNN balls each node is queued about once. The labels
    // it ends with are Dijkstra's, bit for bit: each set of labels is made of path lengths
    // summed in path order, and each has d(y) <= fl(d(x) + w) on every arc within the
    // radius, so (rounding being monotone) each is <= the other along the other's paths.
    // Nodes queued more than about twice each (shortest paths of many hops through a large
    // radius) switch to Dijkstra.
    const double stop = radius + radius * 1e-9;  // rounding of the radius's own sums
    if (!(stop >= 0.0)) return;                  // no distance is needed from u
    const uint32_t dgen = ++s.dgen;
    std::vector<int64_t>& q = s.ball;
    auto& found = s.found;  // copied into `row` at its final size
    q.assign(1, u);
    found.assign(1, {u, 0.0});
    s.dist[u] = 0;
    s.dist_gen[u] = dgen;
    s.hpos[u] = 1;
    for (size_t head = 0; head < q.size(); ++head) {
      const int64_t x = q[head];
      s.hpos[x] = 0;
      const double du = s.dist[x];
      for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e) {
        const int64_t y = g.indices[e];
        const double nd = du + g.weights[e];
        if (nd > stop) break;  // nor the later (longer) arcs
        if (s.dist_gen[y] != dgen) {
          s.dist_gen[y] = dgen;
          s.dist[y] = nd;
          s.hpos[y] = 1;
          q.push_back(y);
          found.push_back({y, 0.0});
        } else if (nd < s.dist[y]) {
          s.dist[y] = nd;
          if (!s.hpos[y]) {
            s.hpos[y] = 1;
            q.push_back(y);
            if (q.size() > 2 * found.size() + 64) return bounded_dijkstra(g, u, stop, s, row);
          }
        }
      }
    }
    row.resize(found.size());
    for (size_t k = 0; k < found.size(); ++k) row[k] = {found[k].first, s.dist[found[k].first]};
    return;
  }
  const uint32_t gen = ++s.hgen;
  auto mark = [&](int64_t v, uint8_t h) {
    if (s.hop_gen[v] == gen) return false;
    s.hop_gen[v] = gen;
    s.hop[v] = h;
    return true;
  };
  mark(u, 0);
  size_t lo = 0;
  s.ball.assign(1, u);
  const int depth = equal ? 2 : 3;
  for (int h = 1; h <= depth; ++h) {  // BFS layer by layer
    const size_t hi = s.ball.size();
    for (size_t q = lo; q < hi; ++q) {
      const int64_t x = s.ball[q];
      for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
        if (mark(g.indices[e], static_cast<uint8_t>(h))) s.ball.push_back(g.indices[e]);
    }
    lo = hi;
  }
  if (equal) {
    for (const int64_t v : s.ball) row.push_back({v, unit * s.hop[v]});
    return;
  }
  // Dijkstra until every ball node is settled (recorded once: hop set to 255 when done)
  IndexedHeap H = dijkstra_start(u, s);
  size_t remaining = s.ball.size();
  while (!s.heap.empty() && remaining > 0) {
    const auto [du, x] = H.pop();
    if (s.hop_gen[x] == gen && s.hop[x] != 255) {
      s.hop[x] = 255;
      row.push_back({x, du});
      --remaining;
    }
    for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
      dijkstra_relax(H, s, g.indices[e], du + g.weights[e]);
  }
}

void compute_hop_row(const CsrGraph& g, int64_t u, const uint32_t* hub, Scratch& s, HopRow& row) {
  row.clear();
  const uint32_t gen = ++s.hgen;
  s.hop_gen[u] = gen;
  row.push_back(static_cast<uint32_t>(u) << 2);
  for (int64_t e = g.indptr[u]; e < g.indptr[u + 1]; ++e) {
    const int64_t v = g.indices[e];
    s.hop_gen[v] = gen;
    row.push_back(static_cast<uint32_t>(v) << 2 | 1);
  }
  const size_t n1 = row.size();
  for (size_t q = 1; q < n1; ++q) {
    const int64_t w = row[q] >> 2;
    if (hub[w]) continue;
    for (int64_t e = g.indptr[w]; e < g.indptr[w + 1]; ++e) {
      const int64_t v = g.indices[e];
      if (s.hop_gen[v] == gen) continue;
      s.hop_gen[v] = gen;
      row.push_back(static_cast<uint32_t>(v) << 2 | 2);
    }
  }
}

HubMasks::HubMasks(const CsrGraph& g, bool enabled, int nt) {
  if (!enabled) return;
  bit.assign(g.n, 0);
  near1.assign(g.n, 0);
  near2.assign(g.n, 0);
  std::vector<int64_t> big;
  for (int64_t v = 0; v < g.n; ++v)
    if (g.indptr[v + 1] - g.indptr[v] > kHubDegree) big.push_back(v);
  auto deg = [&](int64_t v) { return g.indptr[v + 1] - g.indptr[v]; };
  const size_t k = std::min<size_t>(big.size(), 32);
  std::partial_sort(big.begin(), big.begin() + k, big.end(), [&](int64_t p, int64_t q) {
    return deg(p) != deg(q) ? deg(p) > deg(q) : p < q;
  });
  for (size_t h = 0; h < k; ++h) bit[big[h]] = uint32_t(1) << h;
  if (k == 0) return;
  for (std::vector<uint32_t>* out : {&near1, &near2}) {
    const uint32_t* in = out == &near1 ? bit.data() : near1.data();
    uint32_t* o = out->data();
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt)
    for (int64_t v = 0; v < g.n; ++v) {
      uint32_t acc = 0;
      for (int64_t e = g.indptr[v]; e < g.indptr[v + 1]; ++e) acc |= in[g.indices[e]];
      o[v] = acc;
    }
  }
}

std::vector<int64_t> bfs_order(const CsrGraph& g) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(g.n));
  std::vector<uint8_t> seen(static_cast<size_t>(g.n), 0);
  for (int64_t r = 0; r < g.n; ++r) {
    if (seen[r]) continue;
    seen[r] = 1;
    size_t q = order.size();
    order.push_back(r);
    for (; q < order.size(); ++q) {
      const int64_t x = order[q];
      for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
        if (!seen[g.indices[e]]) {
          seen[g.indices[e]] = 1;
          order.push_back(g.indices[e]);
        }
    }
  }
  return order;
}
void merge_duplicate_rows_cols(int& m, int& n, std::vector<double>& a, std::vector<double>& b,
                               std::vector<double>& C, std::vector<int>& perm,
                               std::vector<double>& tmp) {
  if (m > 1) {  // rows
    perm.resize(m);
    std::iota(perm.begin(), perm.end(), 0);
    const double* c = C.data();
    const int nc = n;
    std::sort(perm.begin(), perm.end(), [&](int p, int q) {
      return std::lexicographical_compare(c + p * nc, c + (p + 1) * nc, c + q * nc,
                                          c + (q + 1) * nc);
    });
    int k = 0;
    tmp.resize(static_cast<size_t>(m) * n);
    std::vector<double> am(static_cast<size_t>(m));
    for (int t = 0; t < m; ++t) {
      const int r = perm[t];
      if (k > 0 && std::equal(c + r * nc, c + (r + 1) * nc, tmp.data() + (k - 1) * nc)) {
        am[k - 1] += a[r];
        continue;
      }
      std::copy(c + r * nc, c + (r + 1) * nc, tmp.data() + k * nc);
      am[k++] = a[r];
    }
    if (k < m) {
      m = k;
      std::copy(am.begin(), am.begin() + k, a.begin());
      std::copy(tmp.begin(), tmp.begin() + static_cast<size_t>(k) * n, C.begin());
    }
  }
  if (n > 1) {  // columns: compare column vectors through the transpose
    tmp.resize(static_cast<size_t>(m) * n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j)
        tmp[static_cast<size_t>(j) * m + i] = C[static_cast<size_t>(i) * n + j];
    perm.resize(n);
    std::iota(perm.begin(), perm.end(), 0);
    const double* t = tmp.data();
    const int mr = m;
    std::sort(perm.begin(), perm.end(), [&](int p, int q) {
      return std::lexicographical_compare(t + p * mr, t + (p + 1) * mr, t + q * mr,
                                          t + (q + 1) * mr);
    });
    std::vector<int> keep;
    std::vector<double> bm;
    keep.reserve(n);
    bm.reserve(n);
    for (int q = 0; q < n; ++q) {
      const int col = perm[q];
      if (!keep.empty() && std::equal(t + col * mr, t + (col + 1) * mr, t + keep.back() * mr)) {
        bm.back() += b[col];
        continue;
      }
      keep.push_back(col);
      bm.push_back(b[col]);
    }
    const int k = static_cast<int>(keep.size());
    if (k < n) {
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < k; ++j)
          C[static_cast<size_t>(i) * k + j] = t[static_cast<size_t>(keep[j]) * m + i];
      std::copy(bm.begin(), bm.end(), b.begin());
      n = k;
    }
  }
}

}  // namespace curvature_detail
}  // namespace geoml
