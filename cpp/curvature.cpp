#include "curvature.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common.hpp"
#include "ot.hpp"

namespace geoml {
namespace {

constexpr double kTiny = 1e-7;  // GraphRicciCurvature's EPSILON

/// Neighbourhood measures of every node, CSR-like: supp[ptr[x] .. ptr[x+1]) with the node
/// itself last. O(nnz log deg).
struct Measures {
  std::vector<int64_t> ptr, supp;
  std::vector<double> mass;
};

Measures build_measures(const CsrGraph& g, const OrcOptions& o) {
  Measures M;
  M.ptr.assign(static_cast<size_t>(g.n + 1), 0);
  for (int64_t x = 0; x < g.n; ++x) {
    int64_t deg = g.indptr[x + 1] - g.indptr[x];
    if (o.nbr_topk > 0) deg = std::min(deg, o.nbr_topk);
    M.ptr[x + 1] = M.ptr[x] + deg + 1;
  }
  M.supp.resize(static_cast<size_t>(M.ptr[g.n]));
  M.mass.resize(static_cast<size_t>(M.ptr[g.n]));
  const int nt = resolve_threads(o.n_threads);
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> wn;
#pragma omp for schedule(dynamic, 512)
    for (int64_t x = 0; x < g.n; ++x) {
      wn.clear();
      for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
        wn.push_back({std::pow(o.base, -std::pow(g.weights[e], o.exp_power)), g.indices[e]});
      const int64_t keep = M.ptr[x + 1] - M.ptr[x] - 1;
      if (keep < static_cast<int64_t>(wn.size())) {  // the heaviest (weight, node) pairs
        std::nth_element(wn.begin(), wn.begin() + keep, wn.end(),
                         [](const auto& p, const auto& q) { return p > q; });
        wn.resize(static_cast<size_t>(keep));
        std::sort(wn.begin(), wn.end(),
                  [](const auto& p, const auto& q) { return p.second < q.second; });
      }
      double sum = 0;
      for (const auto& p : wn) sum += p.first;
      int64_t* s = M.supp.data() + M.ptr[x];
      double* ms = M.mass.data() + M.ptr[x];
      const double k = static_cast<double>(wn.size());
      for (size_t i = 0; i < wn.size(); ++i) {
        s[i] = wn[i].second;
        ms[i] = sum > kTiny ? (1.0 - o.alpha) * wn[i].first / sum : (1.0 - o.alpha) / k;
      }
      s[wn.size()] = x;
      ms[wn.size()] = wn.empty() ? 1.0 : o.alpha;
    }
  }
  return M;
}

/// Per-thread scratch, sized for n nodes; `stamp` arrays avoid clearing between uses.
struct Scratch {
  std::vector<int64_t> col;        // node -> column in the target block
  std::vector<uint32_t> col_gen;
  std::vector<double> dist;        // Dijkstra distances
  std::vector<uint32_t> dist_gen;
  std::vector<uint8_t> hop;        // 2-hop marks
  std::vector<uint32_t> hop_gen;
  std::vector<int64_t> bpos;       // target column -> position in the current supp m_y
  std::vector<uint32_t> bpos_gen;
  uint32_t cgen = 0, dgen = 0, hgen = 0, bgen = 0;
  std::vector<int64_t> targets, ball;
  std::vector<std::pair<double, int64_t>> heap;
  std::vector<double> D, C, a, b, f, g, P;
  SinkhornWork sw;
  std::vector<int> ai, bj, perm;
  std::vector<double> C2;
  EmdWorkspace ws;
  explicit Scratch(int64_t n)
      : col(n), col_gen(n, 0), dist(n), dist_gen(n, 0), hop(n), hop_gen(n, 0), bpos(n),
        bpos_gen(n, 0) {}
};

using Row = std::vector<std::pair<int64_t, double>>;

/// Distances from u to every node within 3 hops, unordered. Equal weights (`unit`): the
/// nodes within 2 hops by marking (the rest of the 3-hop ball is at 3 units, implicitly).
/// Otherwise: the 3-hop ball is marked by BFS, then Dijkstra runs until all of it is settled.
void compute_row(const CsrGraph& g, int64_t u, bool equal, double unit, Scratch& s, Row& row) {
  row.clear();
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
  const uint32_t dgen = ++s.dgen;
  using Item = std::pair<double, int64_t>;
  s.heap.clear();
  s.dist[u] = 0;
  s.dist_gen[u] = dgen;
  s.heap.push_back({0.0, u});
  size_t remaining = s.ball.size();
  while (!s.heap.empty() && remaining > 0) {
    std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<Item>());
    const auto [du, x] = s.heap.back();
    s.heap.pop_back();
    if (du > s.dist[x]) continue;
    if (s.hop_gen[x] == gen && s.hop[x] != 255) {
      s.hop[x] = 255;
      row.push_back({x, du});
      --remaining;
    }
    for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e) {
      const int64_t y = g.indices[e];
      const double nd = du + g.weights[e];
      if (s.dist_gen[y] != dgen || nd < s.dist[y]) {
        s.dist_gen[y] = dgen;
        s.dist[y] = nd;
        s.heap.push_back({nd, y});
        std::push_heap(s.heap.begin(), s.heap.end(), std::greater<Item>());
      }
    }
  }
}

/// FIFO cache of distance rows, bounded by a total number of entries. Rows of sources that
/// neighbouring x's share are computed once while they stay cached (x is visited in BFS order).
struct RowCache {
  std::vector<int32_t> slot;   // node -> slot, -1 if absent
  std::vector<int64_t> owner;  // slot -> node, -1 if free
  std::vector<Row> rows;
  size_t next = 0, entries = 0, budget;
  RowCache(int64_t n, size_t cap, size_t budget_entries)
      : slot(static_cast<size_t>(n), -1), owner(cap, -1), rows(cap), budget(budget_entries) {}

  template <typename F>
  const Row& get(int64_t u, F&& compute) {
    if (slot[u] >= 0) return rows[slot[u]];
    const size_t k = evict_one();
    compute(u, rows[k]);
    entries += rows[k].size();
    while (entries > budget && rows.size() > 1) {  // keep the budget: drop the oldest others
      if (owner[next] >= 0 && next != k) evict(next);
      next = (next + 1) % rows.size();
      if (next == k) break;
    }
    owner[k] = u;
    slot[u] = static_cast<int32_t>(k);
    return rows[k];
  }

 private:
  void evict(size_t k) {
    slot[owner[k]] = -1;
    owner[k] = -1;
    entries -= rows[k].size();
    Row().swap(rows[k]);
  }
  size_t evict_one() {
    const size_t k = next;
    next = (next + 1) % rows.size();
    if (owner[k] >= 0) evict(k);
    return k;
  }
};

/// Nodes in breadth-first order (component by component), so that consecutive nodes are
/// near each other in the graph.
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

/// Exact OT is unchanged when sources with identical cost rows are merged (their masses
/// added), and likewise for targets with identical cost columns. On hub edges of scale-free
/// graphs (hundreds of neighbours, few distinct distance patterns) this shrinks the problem
/// many times. Rewrites a (m), b (n) and C (m x n, row-major) in place. O(m n log m + m n log n).
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
      for (int j = 0; j < n; ++j) tmp[static_cast<size_t>(j) * m + i] = C[static_cast<size_t>(i) * n + j];
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
        for (int j = 0; j < k; ++j) C[static_cast<size_t>(i) * k + j] = t[static_cast<size_t>(keep[j]) * m + i];
      std::copy(bm.begin(), bm.end(), b.begin());
      n = k;
    }
  }
}

/// Exact OT when one side has two bins: with sources {0, 1} (or targets, by symmetry), the
/// other side's bins are served from source 0 in increasing order of C_0j - C_1j until its mass
/// runs out (an exchange argument shows this greedy plan is optimal). O(k log k).
double two_bin_ot(int m, int n, const double* a, const double* b, const double* C,
                  std::vector<int>& order) {
  const bool rows = m == 2;  // the two-bin side
  const int k = rows ? n : m;
  const double* mass = rows ? b : a;
  auto cost = [&](int side, int j) { return rows ? C[side * n + j] : C[j * n + side]; };
  double cap = rows ? a[0] : b[0];
  order.resize(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int p, int q) {
    return cost(0, p) - cost(1, p) < cost(0, q) - cost(1, q);
  });
  double w = 0;
  for (const int j : order) {
    const double x = std::min(cap, mass[j]);
    cap -= x;
    w += x * cost(0, j) + (mass[j] - x) * cost(1, j);
  }
  return w;
}

/// Jost & Liu (2014) lower bound of the non-lazy curvature from degrees and triangles.
double jost_liu(double dx, double dy, double tri) {
  const double lo = std::min(dx, dy), hi = std::max(dx, dy);
  auto pos = [](double v) { return v > 0 ? v : 0.0; };
  return -pos(1 - 1 / dx - 1 / dy - tri / lo) - pos(1 - 1 / dx - 1 / dy - tri / hi) + tri / hi;
}

int64_t common_neighbours(const CsrGraph& g, int64_t x, int64_t y) {
  const int64_t *p = g.indices + g.indptr[x], *pe = g.indices + g.indptr[x + 1];
  const int64_t *q = g.indices + g.indptr[y], *qe = g.indices + g.indptr[y + 1];
  int64_t c = 0;
  while (p < pe && q < qe) {
    if (*p < *q) ++p;
    else if (*q < *p) ++q;
    else { ++c; ++p; ++q; }
  }
  return c;
}

}  // namespace

void ollivier_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                    const OrcOptions& o, double* kappa, double* dist, int* status) {
  const int64_t nnz = g.indptr[g.n];
  double unit = nnz ? g.weights[0] : 1.0;
  bool equal = true;
  for (int64_t e = 0; e < nnz && equal; ++e) equal = g.weights[e] == unit;
  if (o.method == OrcMethod::LowerBound) {
    if (!equal)
      throw std::invalid_argument(
          "method='lower_bound' (Jost-Liu) needs an unweighted graph (all weights equal)");
    if (o.nbr_topk > 0)
      for (int64_t x = 0; x < g.n; ++x)
        if (g.indptr[x + 1] - g.indptr[x] > o.nbr_topk)
          throw std::invalid_argument("method='lower_bound' needs nbr_topk >= the max degree");
    const int nt = resolve_threads(o.n_threads);
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt)
    for (int64_t e = 0; e < m; ++e) {
      const int64_t x = eu[e], y = ev[e];
      const double dx = double(g.indptr[x + 1] - g.indptr[x]);
      const double dy = double(g.indptr[y + 1] - g.indptr[y]);
      dist[e] = unit;
      status[e] = 0;
      kappa[e] = unit < kTiny ? 0.0
                              : (1 - o.alpha) * jost_liu(dx, dy, double(common_neighbours(g, x, y)));
    }
    return;
  }

  const Measures M = build_measures(g, o);
  // Group the edges by first endpoint: order[] lists edge ids, grouped, via a counting sort.
  std::vector<int64_t> start(static_cast<size_t>(g.n + 1), 0), order(static_cast<size_t>(m));
  for (int64_t e = 0; e < m; ++e) {
    if (eu[e] < 0 || eu[e] >= g.n || ev[e] < 0 || ev[e] >= g.n)
      throw std::invalid_argument("ollivier_ricci: edge endpoint out of range");
    start[eu[e] + 1]++;
  }
  for (int64_t x = 0; x < g.n; ++x) start[x + 1] += start[x];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t e = 0; e < m; ++e) order[fill[eu[e]]++] = e;
  }

  const int nt = resolve_threads(o.n_threads);
  const int64_t sk_iter = o.max_iter > 0 ? o.max_iter : 10000;
  const std::vector<int64_t> visit = bfs_order(g);
  const size_t cache_rows = static_cast<size_t>(std::min<int64_t>(g.n, 16384));
#pragma omp parallel num_threads(nt)
  {
    Scratch s(g.n);
    RowCache cache(g.n, std::max<size_t>(cache_rows, 1), size_t(1) << 23);
    auto fill_row = [&](int64_t u, Row& row) { compute_row(g, u, equal, unit, s, row); };
#pragma omp for schedule(dynamic, 4)
    for (int64_t pos = 0; pos < g.n; ++pos) {
      const int64_t x = visit[pos];
      if (start[x] == start[x + 1]) continue;
      // targets: union of the supports of every y with an edge (x, y)
      const uint32_t cgen = ++s.cgen;
      s.targets.clear();
      for (int64_t q = start[x]; q < start[x + 1]; ++q) {
        const int64_t y = ev[order[q]];
        for (int64_t t = M.ptr[y]; t < M.ptr[y + 1]; ++t) {
          const int64_t v = M.supp[t];
          if (s.col_gen[v] != cgen) {
            s.col_gen[v] = cgen;
            s.col[v] = static_cast<int64_t>(s.targets.size());
            s.targets.push_back(v);
          }
        }
      }
      const int64_t mx = M.ptr[x + 1] - M.ptr[x];
      const int64_t nT = static_cast<int64_t>(s.targets.size());
      s.D.resize(static_cast<size_t>(mx * nT));
      for (int64_t i = 0; i < mx; ++i) {  // scatter u's cached row, gather the targets
        const Row& row = cache.get(M.supp[M.ptr[x] + i], fill_row);
        const uint32_t dgen = ++s.dgen;
        for (const auto& [v, dv] : row) {
          s.dist_gen[v] = dgen;
          s.dist[v] = dv;
        }
        double* Di = s.D.data() + i * nT;
        for (int64_t t = 0; t < nT; ++t) {
          const int64_t v = s.targets[t];
          if (s.dist_gen[v] == dgen) Di[t] = s.dist[v];
          else if (equal) Di[t] = 3 * unit;
          else throw std::runtime_error("ollivier_ricci: target outside the 3-hop ball");
        }
      }
      const double* ax = M.mass.data() + M.ptr[x];
      for (int64_t q = start[x]; q < start[x + 1]; ++q) {
        const int64_t e = order[q], y = ev[e];
        const double dxy = s.D[(mx - 1) * nT + s.col[y]];  // x is last in its support
        dist[e] = dxy;
        status[e] = 0;
        if (x == y || dxy < kTiny) {
          kappa[e] = 0.0;
          continue;
        }
        // Exact W1 depends only on m_x - m_y: cancel the mass both measures put on the same
        // node (x, y, common neighbours), which shrinks the problem. (Not for Sinkhorn, whose
        // entropic plan is not translation invariant.) Then drop empty bins.
        const int64_t my = M.ptr[y + 1] - M.ptr[y];
        const int64_t* sy = M.supp.data() + M.ptr[y];
        const double* by = M.mass.data() + M.ptr[y];
        s.a.assign(ax, ax + mx);
        s.b.assign(by, by + my);
        const uint32_t bgen = ++s.bgen;
        for (int64_t j = 0; j < my; ++j) {
          const int64_t c = s.col[sy[j]];
          s.bpos_gen[c] = bgen;
          s.bpos[c] = j;
        }
        for (int64_t i = 0; i < mx && o.method == OrcMethod::Exact; ++i) {
          const int64_t u = M.supp[M.ptr[x] + i];
          if (s.col_gen[u] != cgen) continue;
          const int64_t c = s.col[u];
          if (s.bpos_gen[c] != bgen) continue;
          const double common = std::min(s.a[i], s.b[s.bpos[c]]);
          s.a[i] -= common;
          s.b[s.bpos[c]] -= common;
        }
        s.ai.clear();
        s.bj.clear();
        for (int64_t i = 0; i < mx; ++i) if (s.a[i] > 0) s.ai.push_back(int(i));
        for (int64_t j = 0; j < my; ++j) if (s.b[j] > 0) s.bj.push_back(int(j));
        const int mm = int(s.ai.size()), nn = int(s.bj.size());
        double sa = 0, sb = 0;
        for (int i = 0; i < mm; ++i) sa += (s.a[i] = s.a[s.ai[i]]);
        for (int j = 0; j < nn; ++j) sb += (s.b[j] = s.b[s.bj[j]]);
        if (mm == 0 || nn == 0 || std::min(sa, sb) <= 1e-14) {  // equal measures
          kappa[e] = 1.0;
          continue;
        }
        for (int j = 0; j < nn; ++j) s.b[j] *= sa / sb;  // equal totals despite rounding
        s.C.resize(static_cast<size_t>(mm * nn));
        for (int i = 0; i < mm; ++i)
          for (int j = 0; j < nn; ++j)
            s.C[i * nn + j] = s.D[s.ai[i] * nT + s.col[sy[s.bj[j]]]];
        double w;
        if (o.method == OrcMethod::Exact) {
          int st = 0;
          int mr = mm, nr = nn;
          merge_duplicate_rows_cols(mr, nr, s.a, s.b, s.C, s.perm, s.C2);
          if (mr == 1 || nr == 1) {  // one source or one target: the plan is forced
            w = 0;
            for (int t = 0; t < mr * nr; ++t) w += (mr == 1 ? s.b[t] : s.a[t]) * s.C[t];
          } else if (mr == 2 || nr == 2) {
            w = two_bin_ot(mr, nr, s.a.data(), s.b.data(), s.C.data(), s.perm);
          } else {
            w = emd_small(mr, nr, s.a.data(), s.b.data(), s.C.data(), s.ws, o.max_iter, &st);
          }
          status[e] = st == EMD_OPTIMAL ? 0 : 1;
        } else {  // <P, C> of the entropic plan, eps annealed down from the cost scale
          double cmax = 0;
          for (const double c : s.C) cmax = std::max(cmax, c);
          SinkhornParams sp;
          sp.eps = o.eps;
          sp.eps_start = cmax > o.eps ? cmax : 0.0;
          sp.tol = o.tol;
          sp.max_iter = sk_iter;
          s.f.assign(mm, 0.0);
          s.g.assign(nn, 0.0);
          s.P.resize(static_cast<size_t>(mm * nn));
          const SinkhornInfo info = sinkhorn_dense(mm, nn, s.a.data(), s.b.data(), s.C.data(), sp,
                                                   s.f.data(), s.g.data(), s.P.data(), s.sw);
          w = 0;
          for (int64_t t = 0; t < int64_t(mm) * nn; ++t) w += s.P[t] * s.C[t];
          status[e] = info.converged ? 0 : 1;
        }
        kappa[e] = 1.0 - w / dxy;
      }
    }
  }
}

void forman_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                  bool augmented, int n_threads, double* out) {
  const int nt = resolve_threads(n_threads);
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt)
  for (int64_t e = 0; e < m; ++e) {
    const int64_t x = eu[e], y = ev[e];
    // weight of (x, y): binary search in x's sorted neighbours
    const int64_t* bx = g.indices + g.indptr[x];
    const int64_t* ex = g.indices + g.indptr[x + 1];
    const int64_t* it = std::lower_bound(bx, ex, y);
    const double we = g.weights[g.indptr[x] + (it - bx)];
    // merge the two sorted neighbour lists: triangles vs the rest
    double rest = 0;
    int64_t tri = 0;
    int64_t p = g.indptr[x], pe = g.indptr[x + 1], q = g.indptr[y], qe = g.indptr[y + 1];
    while (p < pe || q < qe) {
      const int64_t a = p < pe ? g.indices[p] : std::numeric_limits<int64_t>::max();
      const int64_t b = q < qe ? g.indices[q] : std::numeric_limits<int64_t>::max();
      if (a == b) {
        if (augmented) {
          ++tri;
        } else {
          rest += 1.0 / std::sqrt(we * g.weights[p]) + 1.0 / std::sqrt(we * g.weights[q]);
        }
        ++p;
        ++q;
      } else if (a < b) {
        if (a != y) rest += 1.0 / std::sqrt(we * g.weights[p]);
        ++p;
      } else {
        if (b != x) rest += 1.0 / std::sqrt(we * g.weights[q]);
        ++q;
      }
    }
    out[e] = augmented ? we * (double(tri) * we + 2.0 / we - std::fabs(rest))
                       : we * (2.0 / we - rest);
  }
}

}  // namespace geoml
