// Discrete Ricci curvature drivers (see curvature.hpp): Ollivier-Ricci over edges grouped by
// their first endpoint, and Forman-Ricci. The distance rows are in rows.cpp, the hop-cost OT
// solver in hop_ot.cpp.
#include "curvature/curvature.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "curvature/curvature_internal.hpp"
#include "ot/ot.hpp"

namespace geoml {
namespace {

using namespace curvature_detail;

/// Neighbourhood measures of every node, CSR-like: supp[ptr[x] .. ptr[x+1]) with the node
/// itself last. O(nnz log deg).
struct Measures {
  std::vector<int64_t> ptr, supp;
  std::vector<double> mass;
};

/// The layout of the measures (M.ptr; supp and mass sized), serial: O(n).
void measures_layout(const CsrGraph& g, const OrcOptions& o, Measures& M) {
  M.ptr.assign(static_cast<size_t>(g.n + 1), 0);
  for (int64_t x = 0; x < g.n; ++x) {
    int64_t deg = g.indptr[x + 1] - g.indptr[x];
    if (o.nbr_topk > 0) deg = std::min(deg, o.nbr_topk);
    M.ptr[x + 1] = M.ptr[x] + deg + 1;
  }
  M.supp.resize(static_cast<size_t>(M.ptr[g.n]));
  M.mass.resize(static_cast<size_t>(M.ptr[g.n]));
}

/// Per-thread state of measure_of: the (weight, node) pairs and pow() of the last weight.
struct MeasureWork {
  std::vector<std::pair<double, int64_t>> wn;
  double last_w = std::numeric_limits<double>::quiet_NaN(), last_p = 0;
};

/// The measure of node x (M laid out by measures_layout). O(deg log deg).
void measure_of(const CsrGraph& g, const OrcOptions& o, int64_t x, Measures& M, MeasureWork& mw) {
  auto& wn = mw.wn;
  wn.clear();
  for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e) {
    if (!(g.weights[e] == mw.last_w)) {  // of equal weights (all of them when unweighted)
      mw.last_w = g.weights[e];
      mw.last_p = std::pow(o.base, -std::pow(mw.last_w, o.exp_power));
    }
    wn.push_back({mw.last_p, g.indices[e]});
  }
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

Measures build_measures(const CsrGraph& g, const OrcOptions& o) {
  Measures M;
  measures_layout(g, o, M);
  const int nt = resolve_threads(o.n_threads);
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    MeasureWork mw;
#pragma omp for schedule(dynamic, 512)
    for (int64_t x = 0; x < g.n; ++x) errors.run([&] { measure_of(g, o, x, M, mw); });
  }
  errors.rethrow();
  return M;
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
    if (*p < *q)
      ++p;
    else if (*q < *p)
      ++q;
    else {
      ++c;
      ++p;
      ++q;
    }
  }
  return c;
}

/// method='lower_bound': (1 - alpha) times the Jost-Liu bound of every edge, from degrees and
/// common neighbours (unweighted graphs only; `unit` is the common weight).
void orc_lower_bound(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                     const OrcOptions& o, double unit, double* kappa, double* dist, int* status) {
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
    kappa[e] =
        unit < kTiny ? 0.0 : (1 - o.alpha) * jost_liu(dx, dy, double(common_neighbours(g, x, y)));
  }
}

/// Edge ids grouped by first endpoint (a counting sort): the edges of x are
/// order[start[x] .. start[x + 1]).
struct EdgeGroups {
  std::vector<int64_t> start, order;
  EdgeGroups(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev)
      : start(static_cast<size_t>(g.n + 1), 0), order(static_cast<size_t>(m)) {
    for (int64_t e = 0; e < m; ++e) {
      if (eu[e] < 0 || eu[e] >= g.n || ev[e] < 0 || ev[e] >= g.n)
        throw std::invalid_argument("ollivier_ricci: edge endpoint out of range");
      start[eu[e] + 1]++;
    }
    for (int64_t x = 0; x < g.n; ++x) start[x + 1] += start[x];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t e = 0; e < m; ++e) order[fill[eu[e]]++] = e;
  }
};

/// Weighted graphs (fast_path): equal cost rows and columns are merged only in problems
/// with more rows or columns than this (emd_small's fixed-size simplex takes up to 64 with
/// cost_only; merging the 33..64 ones cost 2 % of the 16-D kNN bench and found nothing).
constexpr int kMergeAbove = 64;

/// What every edge group of one ollivier_ricci call shares (read-only).
struct OrcContext {
  const CsrGraph& g;
  const CsrGraph& rg;  // the graph of the distance rows: g, or g with each node's arcs by
                       // increasing weight when the rows are radius-bounded (weight_sorted)
  const OrcOptions& o;
  const Measures& M;   // target measures (out-neighbours of y)
  const Measures& Ms;  // source measures (in-neighbours of x when directed; else M)
  const EdgeGroups& E;
  const int64_t* ev;
  double unit;
  bool equal, hop;  // hop: unweighted graph, exact OT on hop counts (HopOt)
  const HubMasks& hubs;
  int64_t sk_iter;
  const std::vector<double>& radius;  // weighted graphs: source_radii (else empty)
  double radius_of(int64_t u) const {
    return radius.empty() ? std::numeric_limits<double>::infinity() : radius[u];
  }
};

/// For every node u, a bound on the distances its row must hold: the costs of the edges
/// (x, y) read it for u in supp m_x (u = x or u -> x) and v in supp m_y (v = y or y -> v),
/// and d(u, v) <= w(u, x) + w(x, y) + w(y, v). So radius(u) = max over such x of
/// w(u, x) + max over the edges (x, y) of (w(x, y) + the longest arc out of y); +inf when some
/// edge (x, y) is not an arc of g (no bound then: the row falls back to the 3-hop ball).
/// `in` is the graph of the arcs u -> x by x (g itself when undirected). O(n + nnz + m log deg).
std::vector<double> source_radii(const CsrGraph& g, const CsrGraph& in, const EdgeGroups& E,
                                 const int64_t* ev, int nt) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> maxw(static_cast<size_t>(g.n), 0.0), radius(static_cast<size_t>(g.n), -inf);
  std::vector<double> bxs(static_cast<size_t>(g.n), 0.0);
  // the longest arcs, then each source's bound bx (its binary searches are the O(m log deg)
  // part): parallel; the scatter to the in-neighbours below stays serial (in order, O(nnz))
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(static)
    for (int64_t y = 0; y < g.n; ++y)
      for (int64_t e = g.indptr[y]; e < g.indptr[y + 1]; ++e)
        maxw[y] = std::max(maxw[y], g.weights[e]);
#pragma omp for schedule(dynamic, 256)
    for (int64_t x = 0; x < g.n; ++x) {
      double bx = 0.0;  // max over the edges (x, y) of w(x, y) + maxw[y]
      for (int64_t q = E.start[x]; q < E.start[x + 1]; ++q) {
        const int64_t y = ev[E.order[q]];
        double wxy = 0.0;
        if (y != x) {
          const int64_t* b = g.indices + g.indptr[x];
          const int64_t* e = g.indices + g.indptr[x + 1];
          const int64_t* it = std::lower_bound(b, e, y);
          wxy = it != e && *it == y ? g.weights[g.indptr[x] + (it - b)] : inf;
        }
        bx = std::max(bx, wxy + maxw[y]);
      }
      bxs[x] = bx;
    }
  }
  for (int64_t x = 0; x < g.n; ++x) {
    if (E.start[x] == E.start[x + 1]) continue;
    const double bx = bxs[x];
    radius[x] = std::max(radius[x], bx);
    for (int64_t e = in.indptr[x]; e < in.indptr[x + 1]; ++e) {
      const int64_t u = in.indices[e];
      radius[u] = std::max(radius[u], in.weights[e] + bx);
    }
  }
  return radius;
}

/// Row x of weight_sorted.
void weight_sort_row(const CsrGraph& g, int64_t x, std::vector<std::pair<double, int64_t>>& arcs,
                     std::vector<int64_t>& idx, std::vector<double>& w) {
  arcs.clear();
  for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
    arcs.push_back({g.weights[e], g.indices[e]});
  std::sort(arcs.begin(), arcs.end());
  for (size_t k = 0; k < arcs.size(); ++k) {
    w[g.indptr[x] + k] = arcs[k].first;
    idx[g.indptr[x] + k] = arcs[k].second;
  }
}

/// g with each node's arcs ordered by (weight, node), in `idx` and `w` (same indptr).
/// O(nnz log deg), parallel over nodes.
CsrGraph weight_sorted(const CsrGraph& g, int nt, std::vector<int64_t>& idx,
                       std::vector<double>& w) {
  const int64_t nnz = g.indptr[g.n];
  idx.resize(static_cast<size_t>(nnz));
  w.resize(static_cast<size_t>(nnz));
  OmpErrors errors;  // a throw inside the region would terminate the process
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> arcs;
#pragma omp for schedule(dynamic, 1024)
    for (int64_t x = 0; x < g.n; ++x) errors.run([&] { weight_sort_row(g, x, arcs, idx, w); });
  }
  errors.rethrow();
  return CsrGraph{g.n, g.indptr, idx.data(), w.data()};
}

/// A copy of g with node v renamed new_id[v] (`order` its inverse: order[k] is the node named
/// k), each row's arcs sorted by the new names, in `ptr`, `idx` and `w`. O(nnz log deg), parallel
/// over nodes.
CsrGraph renamed_layout(const CsrGraph& g, const std::vector<int64_t>& order,
                        std::vector<int64_t>& ptr, std::vector<int64_t>& idx,
                        std::vector<double>& w) {
  const int64_t nnz = g.indptr[g.n];
  ptr.resize(static_cast<size_t>(g.n + 1));
  ptr[0] = 0;
  for (int64_t k = 0; k < g.n; ++k)
    ptr[k + 1] = ptr[k] + (g.indptr[order[k] + 1] - g.indptr[order[k]]);
  idx.resize(static_cast<size_t>(nnz));
  w.resize(static_cast<size_t>(nnz));
  return CsrGraph{g.n, ptr.data(), idx.data(), w.data()};
}

/// Row k of the renamed graph (laid out by renamed_layout).
void rename_row(const CsrGraph& g, const std::vector<int64_t>& order,
                const std::vector<int64_t>& new_id, int64_t k,
                std::vector<std::pair<int64_t, double>>& arcs, std::vector<int64_t>& ptr,
                std::vector<int64_t>& idx, std::vector<double>& w) {
  const int64_t x = order[k];
  arcs.clear();
  for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
    arcs.push_back({new_id[g.indices[e]], g.weights[e]});
  std::sort(arcs.begin(), arcs.end(),
            [](const auto& p, const auto& q) { return p.first < q.first; });
  for (size_t a = 0; a < arcs.size(); ++a) {
    idx[ptr[k] + a] = arcs[a].first;
    w[ptr[k] + a] = arcs[a].second;
  }
}

/// What orc_run's BFS renaming prepares for the renamed graph in one parallel pass over the
/// nodes (one region and one barrier instead of three): the renamed graph(s), the out-graph's
/// arcs by (weight, node) for the radius-bounded rows, and the measures (M from the out-graph;
/// Min from the in-graph when directed). Each row is computed by the same code as
/// renamed/weight_sorted/build_measures, so the same bits.
struct Prepared {
  std::vector<int64_t> ptr, idx, ptr_in, idx_in, sorted_idx;
  std::vector<double> w, w_in, sorted_w;
  CsrGraph g2{}, gin2{}, rg{};
  Measures M, Min;
  Prepared(const CsrGraph& g, const CsrGraph* gin, const std::vector<int64_t>& order,
           const std::vector<int64_t>& new_id, const OrcOptions& o, int nt) {
    g2 = renamed_layout(g, order, ptr, idx, w);
    if (gin) gin2 = renamed_layout(*gin, order, ptr_in, idx_in, w_in);
    sorted_idx.resize(idx.size());
    sorted_w.resize(w.size());
    rg = CsrGraph{g.n, g2.indptr, sorted_idx.data(), sorted_w.data()};
    measures_layout(g2, o, M);
    if (gin) measures_layout(gin2, o, Min);
    OmpErrors errors;  // a throw inside the region would terminate the process
#pragma omp parallel num_threads(nt)
    {
      std::vector<std::pair<int64_t, double>> arcs;
      std::vector<std::pair<double, int64_t>> warcs;
      MeasureWork mw, mw_in;
#pragma omp for schedule(dynamic, 512)
      for (int64_t k = 0; k < g.n; ++k)
        errors.run([&] {
          rename_row(g, order, new_id, k, arcs, ptr, idx, w);
          weight_sort_row(g2, k, warcs, sorted_idx, sorted_w);
          measure_of(g2, o, k, M, mw);
          if (gin) {
            rename_row(*gin, order, new_id, k, arcs, ptr_in, idx_in, w_in);
            measure_of(gin2, o, k, Min, mw_in);
          }
        });
    }
    errors.rethrow();
  }
  Prepared(const Prepared&) = delete;  // g2, gin2 and rg point into the vectors
  Prepared& operator=(const Prepared&) = delete;
};

/// s.targets := the union of the supports of every y with an edge (x, y), with their columns
/// in s.col (and s.tcol on the hop path).
void collect_targets(const OrcContext& c, int64_t x, Scratch& s) {
  const uint32_t cgen = ++s.cgen;
  s.targets.clear();
  for (int64_t q = c.E.start[x]; q < c.E.start[x + 1]; ++q) {
    const int64_t y = c.ev[c.E.order[q]];
    for (int64_t t = c.M.ptr[y]; t < c.M.ptr[y + 1]; ++t) {
      const int64_t v = c.M.supp[t];
      if (s.col_gen[v] != cgen) {
        s.col_gen[v] = cgen;
        s.col[v] = static_cast<int64_t>(s.targets.size());
        if (c.hop) s.tcol[v] = static_cast<int32_t>(s.targets.size());
        s.targets.push_back(v);
      }
    }
  }
}

/// Hop counts, target-major (s.Dh[t mx + i] = d(supp m_x [i], targets[t])). Hub u:
/// distances from the masks alone. Otherwise 3 hops, or 2 through a hub, unless u's
/// row (which does not expand hubs) has the target nearer. See HubMasks.
/// d(u, t) = 3 - [near1(t) & hq(u)] - [near12(t) & bit(u)], hq(u) = bit(u) for a hub
/// u, else near1(u): a dense pass per column, then the hub rows (few) of the column.
template <class RowOf>
void hop_block(const OrcContext& c, int64_t x, Scratch& s, RowOf&& row_of) {
  const HubMasks& hubs = c.hubs;
  const int64_t mx = c.Ms.ptr[x + 1] - c.Ms.ptr[x];
  const int64_t nT = static_cast<int64_t>(s.targets.size());
  s.Dh.resize(static_cast<size_t>(mx * nT + 1));  // + 1: where the other nodes are written
  s.hq.resize(static_cast<size_t>(mx));
  s.hub_rows.clear();
  uint32_t any_q = 0, any_hub = 0;
  for (int64_t i = 0; i < mx; ++i) {
    const int64_t u = c.Ms.supp[c.Ms.ptr[x] + i];
    s.hq[i] = hubs.bit[u] ? hubs.bit[u] : hubs.near1[u];
    any_q |= s.hq[i];
    any_hub |= hubs.bit[u];
    if (hubs.bit[u]) s.hub_rows.push_back(static_cast<int32_t>(i));
  }
  const uint32_t* hq = s.hq.data();
  const int64_t mxl = mx;  // a local: the byte stores below could alias a member
  for (int64_t t = 0; t < nT; ++t) {
    const uint32_t n1 = hubs.near1[s.targets[t]];
    uint8_t* Dt = s.Dh.data() + t * mxl;
    if (n1 & any_q)
      for (int64_t i = 0; i < mxl; ++i) Dt[i] = 3 - ((n1 & hq[i]) != 0);
    else
      std::memset(Dt, 3, static_cast<size_t>(mxl));
    const uint32_t n12 = n1 | hubs.near2[s.targets[t]];
    if (n12 & any_hub)
      for (const int32_t i : s.hub_rows) Dt[i] -= (n12 & hq[i]) != 0;
  }
  const uint32_t cgen = s.cgen;
  uint8_t* Dh = s.Dh.data();
  const int64_t trash = mx * nT;
  for (int64_t i = 0; i < mx; ++i) {  // hub rows: d(u, u) = 0; others: scatter u's row
    const int64_t u = c.Ms.supp[c.Ms.ptr[x] + i];
    if (hubs.bit[u]) {
      if (s.col_gen[u] == cgen) Dh[s.col[u] * mx + i] = 0;
      continue;
    }
    for (const uint32_t vh : row_of(u)) {   // the target's entry or the trash byte, by a mask
      const int64_t col = s.tcol[vh >> 2];  // -1: not a target
      const int64_t miss = -static_cast<int64_t>(col < 0);
      Dh[((col * mx + i) & ~miss) | (trash & miss)] = static_cast<uint8_t>(vh & 3);
    }
  }
  for (const int64_t v : s.targets) s.tcol[v] = -1;
}

/// Distances, source-major (s.D[i nT + t] = d(supp m_x [i], targets[t])): one pass over u's
/// cached row writes the entries of the targets (marked by collect_targets in s.col).
template <class RowOf>
void dist_block(const OrcContext& c, int64_t x, Scratch& s, RowOf&& row_of) {
  const int64_t mx = c.Ms.ptr[x + 1] - c.Ms.ptr[x];
  const int64_t nT = static_cast<int64_t>(s.targets.size());
  s.D.resize(static_cast<size_t>(mx * nT + 1));  // + 1: where the other nodes are written
  const uint32_t cgen = s.cgen;
  const uint32_t* col_gen = s.col_gen.data();
  const int64_t* col = s.col.data();
  for (int64_t i = 0; i < mx; ++i) {
    const int64_t u = c.Ms.supp[c.Ms.ptr[x] + i];
    const Row& row = row_of(u);
    double* Di = s.D.data() + i * nT;
    const int64_t trash = (mx - i) * nT;  // the slot past the block, from Di
    int64_t found = 0;
    for (const auto& [v, dv] : row) {  // a row holds a few targets among many: the target's
      // column or the trash slot picked by a mask, not a branch (col[v] is stale, but
      // allocated, for other nodes)
      const int64_t hit = col_gen[v] == cgen;
      const int64_t mask = -hit;
      Di[(col[v] & mask) | (trash & ~mask)] = dv;
      found += hit;
    }
    if (found == nT) continue;
    if (!c.equal) throw std::runtime_error("ollivier_ricci: target outside the distance row");
    // equal weights: the row holds the 2-hop ball, every other target is at 3 units
    const uint32_t dgen = ++s.dgen;
    for (const auto& [v, dv] : row) s.dist_gen[v] = dgen;
    for (int64_t t = 0; t < nT; ++t)
      if (s.dist_gen[s.targets[t]] != dgen) Di[t] = 3 * c.unit;
  }
}

/// What edge_w1 did: the measures are equal (kappa 1), W1 is in *w, or the edge's exact
/// problem was queued in s.pend* (solved by edges_of).
enum class EdgeW1 { Equal, Done, Queued };

/// W1(m_x, m_y) of edge e = (x, y) in *w, from the block of x in `s` (hop counts in units, or
/// distances), and its OT status in *st (0 ok, 1 iteration limit); an exact problem for the
/// network simplex is queued instead. The measures' common mass is cancelled first for exact OT.
EdgeW1 edge_w1(const OrcContext& c, int64_t x, int64_t y, int64_t e, uint32_t rgen, Scratch& s,
               double* w, int* st) {
  const Measures& M = c.M;
  const OrcOptions& o = c.o;
  const int64_t mx = c.Ms.ptr[x + 1] - c.Ms.ptr[x];
  const int64_t nT = static_cast<int64_t>(s.targets.size());
  const double* ax = c.Ms.mass.data() + c.Ms.ptr[x];
  *st = 0;
  // Exact W1 depends only on m_x - m_y: cancel the mass both measures put on the same
  // node (x, y, common neighbours), which shrinks the problem. (Not for Sinkhorn, whose
  // entropic plan is not translation invariant.) Then drop empty bins.
  // Why: let c = min(m_x, m_y) pointwise. (<=) A plan of the cancelled problem plus c kept in
  // place (d(z, z) = 0) is a plan of the original of the same cost. (>=) Among the optimal
  // plans (a compact set) take P with the largest diagonal sum. If at some node z mass q
  // leaves z (to w) while mass p arrives at z (from u), sending t = min(p, q) from u to w
  // directly and keeping t at z changes the cost by t (d(u, w) - d(u, z) - d(z, w)) <= 0
  // (triangle inequality) and grows the diagonal by t: impossible. So no node both sends
  // and receives, i.e. P(z, z) = c(z) at every z, and P minus its diagonal is a plan of
  // the cancelled problem of the same cost. The costs here are shortest-path lengths of the
  // graph (Dijkstra rows bounded by radii that cover every needed distance, or hop counts
  // within the 3-hop ball), so d(z, z) = 0, d >= 0 and the triangle inequality hold, also
  // for directed paths (the argument never uses symmetry) and zero-length edges; this is
  // also what GraphRicciCurvature's costs are (exact pairwise shortest paths), so the
  // uncancelled POT problems it solves have the same W1 (tests/test_curvature_weighted.py
  // checks both the identity and the curvature against POT on the uncancelled problems).
  const int64_t my = M.ptr[y + 1] - M.ptr[y];
  const int64_t* sy = M.supp.data() + M.ptr[y];
  const double* by = M.mass.data() + M.ptr[y];
  if (o.method == OrcMethod::ATD) {
    // GraphRicciCurvature's average transportation distance: alpha d(x, y) plus (1 - alpha)
    // times the mean of d(u, v) over the neighbours u of x and v of y (all of them, uniform
    // weights: the supports here are built with every neighbour). A node without neighbours
    // (directed graphs) stands for itself.
    const int64_t nu = std::max<int64_t>(mx - 1, 1), nv = std::max<int64_t>(my - 1, 1);
    const int64_t u0 = mx > 1 ? 0 : mx - 1, v0 = my > 1 ? 0 : my - 1;
    double sum = 0;
    for (int64_t i = u0; i < u0 + nu; ++i)
      for (int64_t j = v0; j < v0 + nv; ++j) sum += s.D[i * nT + s.col[sy[j]]];
    *w = o.alpha * s.D[(mx - 1) * nT + s.col[y]] + (1.0 - o.alpha) * sum / double(nu * nv);
    return EdgeW1::Done;
  }
  s.a.assign(ax, ax + mx);
  s.b.assign(by, by + my);
  for (int64_t j = 0; j < my && o.method == OrcMethod::Exact; ++j) {  // the shorter side
    const int64_t v = sy[j];
    if (s.rpos_gen[v] != rgen) continue;
    const int32_t i = s.rpos[v];
    const double common = std::min(s.a[i], s.b[j]);
    s.a[i] -= common;
    s.b[j] -= common;
  }
  s.ai.clear();
  s.bj.clear();
  for (int64_t i = 0; i < mx; ++i)
    if (s.a[i] > 0) s.ai.push_back(int(i));
  for (int64_t j = 0; j < my; ++j)
    if (s.b[j] > 0) s.bj.push_back(int(j));
  int mm = int(s.ai.size());
  const int nn = int(s.bj.size());
  double sa = 0, sb = 0;
  for (int i = 0; i < mm; ++i) sa += (s.a[i] = s.a[s.ai[i]]);
  for (int j = 0; j < nn; ++j) sb += (s.b[j] = s.b[s.bj[j]]);
  if (mm == 0 || nn == 0 || std::min(sa, sb) <= 1e-14) return EdgeW1::Equal;  // equal measures
  for (int j = 0; j < nn; ++j) s.b[j] *= sa / sb;  // equal totals despite rounding
  if (c.hop) {
    s.perm.resize(nn);
    for (int j = 0; j < nn; ++j) s.perm[j] = static_cast<int>(s.col[sy[s.bj[j]]]);
    mm = gather_merge_rows(mx, mm, nn, s.Dh.data(), s.ai.data(), s.perm.data(), s.a.data(), s.C8,
                           s.mw);
    *w = c.unit * hop_w1(mm, nn, s);
    return EdgeW1::Done;
  }
  s.C.resize(static_cast<size_t>(mm * nn));
  s.perm.resize(nn);  // the block columns of the kept targets
  for (int j = 0; j < nn; ++j) s.perm[j] = static_cast<int>(s.col[sy[s.bj[j]]]);
  for (int i = 0; i < mm; ++i) {
    const double* Di = s.D.data() + static_cast<int64_t>(s.ai[i]) * nT;
    double* Ci = s.C.data() + static_cast<int64_t>(i) * nn;
    for (int j = 0; j < nn; ++j) Ci[j] = Di[s.perm[j]];
  }
  double wv = 0;
  if (o.method == OrcMethod::Exact) {
    int mr = mm, nr = nn;
    // Weighted graphs rarely have equal cost rows or columns: on the problems the tiny
    // network simplex takes (at most 64 x 64) searching for them costs more than it saves.
    if (!o.fast_path || mr > kMergeAbove || nr > kMergeAbove)
      merge_duplicate_rows_cols(mr, nr, s.a, s.b, s.C, s.perm, s.C2);
    if (mr == 1 || nr == 1) {  // one source or one target: the plan is forced
      wv = 0;
      for (int t = 0; t < mr * nr; ++t) wv += (mr == 1 ? s.b[t] : s.a[t]) * s.C[t];
    } else if (mr == 2 || nr == 2) {
      wv = two_bin_ot(mr, nr, s.a.data(), s.b.data(), s.C.data(), s.perm);
    } else {  // queued: edges_of solves them two at a time
      s.pend_edge.push_back(e);
      s.pend_off.push_back(s.pend_buf.size());
      s.pend.push_back({mr, nr, nullptr, nullptr, nullptr});
      s.pend_buf.insert(s.pend_buf.end(), s.a.begin(), s.a.begin() + mr);
      s.pend_buf.insert(s.pend_buf.end(), s.b.begin(), s.b.begin() + nr);
      s.pend_buf.insert(s.pend_buf.end(), s.C.begin(), s.C.begin() + mr * nr);
      return EdgeW1::Queued;
    }
  } else {  // <P, C> of the entropic plan, eps annealed down from the cost scale
    double cmax = 0;
    for (const double cv : s.C) cmax = std::max(cmax, cv);
    SinkhornParams sp;
    sp.eps = o.eps;
    sp.eps_start = cmax > o.eps ? cmax : 0.0;
    sp.tol = o.tol;
    sp.max_iter = c.sk_iter;
    s.f.assign(mm, 0.0);
    s.g.assign(nn, 0.0);
    s.P.resize(static_cast<size_t>(mm * nn));
    const SinkhornInfo info = sinkhorn_dense(mm, nn, s.a.data(), s.b.data(), s.C.data(), sp,
                                             s.f.data(), s.g.data(), s.P.data(), s.sw);
    wv = 0;
    for (int64_t t = 0; t < int64_t(mm) * nn; ++t) wv += s.P[t] * s.C[t];
    *st = info.converged ? 0 : 1;
    if (!info.converged) {
      // Sinkhorn mixes very slowly where the kernel nearly splits into blocks (costs of a
      // few eps between them: 2e5 iterations can leave 1e-8 of marginal error on a 3 x 3
      // problem): Newton steps on the dual from where it stopped (sinkhorn_newton_dense, at
      // most max_iter of them) reach tol in a few; kept only if they do.
      NewtonParams np_;
      np_.eps = o.eps;
      np_.tol = o.tol;
      np_.max_iter = c.sk_iter;
      np_.n_warmup = 1;
      std::vector<double> f2(s.f), g2(s.g), P2(s.P.size());
      const NewtonInfo ni = sinkhorn_newton_dense(mm, nn, s.a.data(), s.b.data(), s.C.data(), np_,
                                                  f2.data(), g2.data(), P2.data());
      if (ni.converged) {
        wv = 0;
        for (int64_t t = 0; t < int64_t(mm) * nn; ++t) wv += P2[t] * s.C[t];
        *st = 0;
      }
    }
  }
  *w = wv;
  return EdgeW1::Done;
}

/// kappa, dist and status of the edges of x, from the block of x in `s` (hop counts or
/// distances).
void edges_of(const OrcContext& c, int64_t x, Scratch& s, double* kappa, double* dist,
              int* status) {
  const Measures& Ms = c.Ms;
  const EdgeGroups& E = c.E;
  const int64_t mx = Ms.ptr[x + 1] - Ms.ptr[x];
  const int64_t nT = static_cast<int64_t>(s.targets.size());
  const uint32_t rgen = ++s.rgen;  // positions in supp m_x, for the cancellation
  s.pend.clear();                  // the queue of exact problems (see edge_w1)
  s.pend_edge.clear();
  s.pend_off.clear();
  s.pend_buf.clear();
  for (int64_t i = 0; i < mx; ++i) {
    s.rpos_gen[Ms.supp[Ms.ptr[x] + i]] = rgen;
    s.rpos[Ms.supp[Ms.ptr[x] + i]] = static_cast<int32_t>(i);
  }
  for (int64_t q = E.start[x]; q < E.start[x + 1]; ++q) {
    const int64_t e = E.order[q], y = c.ev[e];
    const double dxy = c.hop ? c.unit * s.Dh[s.col[y] * mx + mx - 1]  // x is last in its support
                             : s.D[(mx - 1) * nT + s.col[y]];
    dist[e] = dxy;
    status[e] = 0;
    if (x == y || dxy < kTiny) {
      kappa[e] = 0.0;
      continue;
    }
    double w = 0.0;
    const EdgeW1 r = edge_w1(c, x, y, e, rgen, s, &w, &status[e]);
    if (r != EdgeW1::Queued) kappa[e] = r == EdgeW1::Done ? 1.0 - w / dxy : 1.0;
  }
  const int np = static_cast<int>(s.pend.size());
  if (np == 0) return;
  for (int k = 0; k < np; ++k) {
    EmdProblem& p = s.pend[k];
    p.a = s.pend_buf.data() + s.pend_off[k];
    p.b = p.a + p.m;
    p.C = p.b + p.n;
  }
  s.pend_cost.resize(np);
  s.pend_status.resize(np);
  emd_small_costs(np, s.pend.data(), s.ws, c.o.max_iter, s.pend_cost.data(), s.pend_status.data());
  for (int k = 0; k < np; ++k) {
    const int64_t e = s.pend_edge[k];
    kappa[e] = 1.0 - s.pend_cost[k] / dist[e];
    status[e] = s.pend_status[k] == EMD_OPTIMAL ? 0 : 1;
  }
}

/// Rows shared by the threads (RowT: Row, distances, or HopRow, hop counts): the nodes x are
/// taken in windows of consecutive BFS positions; the rows of every source the window needs
/// (but hubs on the hop path, which need none) are computed first, in parallel, each once,
/// into one table, then the window's edges are solved in parallel reading them. Rows the
/// window did not use are dropped afterwards (the next window, nearby in BFS order, needs
/// mostly the same sources). With per-thread caches, threads working on neighbouring x's
/// would each compute most rows.
template <class RowT>
void orc_shared_rows(const OrcContext& c, const std::vector<int64_t>& visit, int nt, double* kappa,
                     double* dist, int* status) {
  constexpr bool hop = std::is_same_v<RowT, HopRow>;
  const CsrGraph& g = c.g;
  const Measures& Ms = c.Ms;
  const EdgeGroups& E = c.E;
  std::vector<RowT> rows(static_cast<size_t>(g.n));
  std::vector<int64_t> last(static_cast<size_t>(g.n), -1);  // last window that needed the row
  std::vector<int64_t> live, need, keep;                    // nodes with a row; to compute
  std::vector<std::unique_ptr<Scratch>> scratch(static_cast<size_t>(nt));
  // Windows: large, as each costs two barriers (with spinning threads, expensive on a busy
  // machine; measured on 10-NN graphs: 32768 nodes for hop rows, 8192 for distance rows),
  // but halved while the live rows hold more than 2^24 entries (doubled back below 2^22).
  const int64_t win_max = hop ? 32768 : 8192, win_min = std::max<int64_t>(256, int64_t(nt) * 64);
  int64_t win = std::max(win_max, win_min);
  constexpr size_t kBudget = size_t(1) << 24;
  for (int64_t p0 = 0, p1 = 0, wi = 0; p0 < g.n; p0 = p1, ++wi) {
    p1 = std::min(g.n, p0 + win);
    need.clear();
    for (int64_t pos = p0; pos < p1; ++pos) {
      const int64_t x = visit[pos];
      if (E.start[x] == E.start[x + 1]) continue;
      for (int64_t t = Ms.ptr[x]; t < Ms.ptr[x + 1]; ++t) {
        const int64_t u = Ms.supp[t];
        if (last[u] == wi || (hop && c.hubs.bit[u])) continue;
        if (last[u] < 0) need.push_back(u);  // no row yet
        last[u] = wi;
      }
    }
    const int64_t nneed = static_cast<int64_t>(need.size());
    OmpErrors errors;  // a throw inside the region would terminate the process
#pragma omp parallel num_threads(nt)
    {
      std::unique_ptr<Scratch>& sp = scratch[static_cast<size_t>(thread_id())];
      errors.run([&] {
        if (!sp) sp = std::make_unique<Scratch>(g.n);
      });
#pragma omp for schedule(dynamic, 16)
      for (int64_t k = 0; k < nneed; ++k)
        errors.run([&] {
          if constexpr (hop)
            compute_hop_row(g, need[k], c.hubs.bit.data(), *sp, rows[need[k]]);
          else
            compute_row(c.rg, need[k], c.equal, c.unit, c.radius_of(need[k]), *sp, rows[need[k]]);
        });
#pragma omp for schedule(dynamic, 1)
      for (int64_t pos = p0; pos < p1; ++pos)
        errors.run([&] {
          const int64_t x = visit[pos];
          if (E.start[x] == E.start[x + 1]) return;
          Scratch& s = *sp;
          collect_targets(c, x, s);
          if constexpr (hop)
            hop_block(c, x, s, [&](int64_t u) -> const HopRow& { return rows[u]; });
          else
            dist_block(c, x, s, [&](int64_t u) -> const Row& { return rows[u]; });
          edges_of(c, x, s, kappa, dist, status);
        });
    }
    errors.rethrow();
    keep.clear();  // drop the rows this window did not need
    size_t entries = 0;
    for (const int64_t u : live) {
      if (last[u] == wi) {
        keep.push_back(u);
        entries += rows[u].size();
      } else {
        RowT().swap(rows[u]);
        last[u] = -1;
      }
    }
    for (const int64_t u : need) {
      keep.push_back(u);
      entries += rows[u].size();
    }
    live.swap(keep);
    if (entries > kBudget)
      win = std::max(win / 2, win_min);
    else if (entries < kBudget / 4)
      win = std::min(win * 2, std::max(win_max, win_min));
  }
}

}  // namespace

namespace {

/// The Ollivier-Ricci driver: `g` gives the distances and the target measures (neighbours of
/// y); `gin` (directed graphs: the transpose of g) the source measures, or nullptr (undirected:
/// the neighbours of x in g).
void orc_run(const CsrGraph& g, const CsrGraph* gin, int64_t m, const int64_t* eu,
             const int64_t* ev, const OrcOptions& o_in, double* kappa, double* dist, int* status,
             const Prepared* prep = nullptr) {
  const bool in_bfs_order = prep != nullptr;  // g renamed in BFS order, set-up in prep
  OrcOptions o = o_in;
  if (o.method == OrcMethod::ATD) o.nbr_topk = 0;  // ATD averages over every neighbour
  const int64_t nnz = g.indptr[g.n];
  double unit = nnz ? g.weights[0] : 1.0;
  bool equal = true;
  for (int64_t e = 0; e < nnz && equal; ++e) equal = g.weights[e] == unit;
  if (o.method == OrcMethod::LowerBound) {
    if (gin) throw std::invalid_argument("method='lower_bound' is for undirected graphs only");
    if (!equal)
      throw std::invalid_argument(
          "method='lower_bound' (Jost-Liu) needs an unweighted graph (all weights equal)");
    orc_lower_bound(g, m, eu, ev, o, unit, kappa, dist, status);
    return;
  }

  const int nt = resolve_threads(o.n_threads);
  if (!equal && !in_bfs_order) {
    // Weighted graphs: the nodes renamed in BFS order (edges and results keep their order), so
    // that the nodes a source's rows, blocks and problems touch lie near each other in every
    // per-node array. Not when nbr_topk cuts a neighbourhood: its ties are broken by name.
    bool topk_cuts = false;
    for (int64_t x = 0; x < g.n && o.nbr_topk > 0; ++x)
      topk_cuts |= g.indptr[x + 1] - g.indptr[x] > o.nbr_topk ||
                   (gin && gin->indptr[x + 1] - gin->indptr[x] > o.nbr_topk);
    if (!topk_cuts) {
      for (int64_t e = 0; e < m; ++e)
        if (eu[e] < 0 || eu[e] >= g.n || ev[e] < 0 || ev[e] >= g.n)
          throw std::invalid_argument("ollivier_ricci: edge endpoint out of range");
      const std::vector<int64_t> order = bfs_order(g);
      std::vector<int64_t> new_id(static_cast<size_t>(g.n));
      for (int64_t k = 0; k < g.n; ++k) new_id[order[k]] = k;
      std::vector<int64_t> eu2(static_cast<size_t>(m)), ev2(static_cast<size_t>(m));
      const Prepared prep(g, gin, order, new_id, o, nt);
      for (int64_t e = 0; e < m; ++e) {
        eu2[e] = new_id[eu[e]];
        ev2[e] = new_id[ev[e]];
      }
      orc_run(prep.g2, gin ? &prep.gin2 : nullptr, m, eu2.data(), ev2.data(), o_in, kappa, dist,
              status, &prep);
      return;
    }
  }

  const Measures M_own = prep ? Measures() : build_measures(g, o);
  const Measures Min_own = gin && !prep ? build_measures(*gin, o) : Measures();
  const Measures& M = prep ? prep->M : M_own;
  const Measures& Ms = gin ? (prep ? prep->Min : Min_own) : M;
  const EdgeGroups E(g, m, eu, ev);
  std::vector<int64_t> visit(static_cast<size_t>(in_bfs_order ? g.n : 0));
  if (in_bfs_order)
    std::iota(visit.begin(), visit.end(), int64_t(0));
  else
    visit = bfs_order(g);
  // Unweighted graphs (all weights equal) with exact OT: costs are hop counts in {0..3}, kept as
  // bytes, and each OT problem goes to the integer primal-dual solver (HopOt).
  const bool hop = o.method == OrcMethod::Exact && equal && !gin && g.n < (int64_t(1) << 30);
  const HubMasks hubs(g, hop, nt);
  const std::vector<double> radius =
      equal || hop ? std::vector<double>() : source_radii(g, gin ? *gin : g, E, ev, nt);
  // radius-bounded rows scan each node's arcs by increasing weight and stop at the first one
  // past the radius (see compute_row)
  std::vector<int64_t> sorted_idx;
  std::vector<double> sorted_w;
  const CsrGraph rg =
      radius.empty() ? g : (prep ? prep->rg : weight_sorted(g, nt, sorted_idx, sorted_w));
  const OrcContext c{
      g, rg, o, M, Ms, E, ev, unit, equal, hop, hubs, o.max_iter > 0 ? o.max_iter : 10000, radius};
  if (o.fast_path) {
    if (hop)
      orc_shared_rows<HopRow>(c, visit, nt, kappa, dist, status);
    else
      orc_shared_rows<Row>(c, visit, nt, kappa, dist, status);
    return;
  }
  const size_t cache_rows = static_cast<size_t>(std::min<int64_t>(g.n, 16384));
  OmpErrors errors;  // a throw inside the region would terminate the process
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(nt)
  errors.run([&] {
    Scratch s(g.n);
    // one of the two caches is used: hop rows (packed) or distance rows
    RowCache<Row> cache(hop ? 0 : g.n, hop ? 1 : std::max<size_t>(cache_rows, 1), size_t(1) << 23);
    RowCache<HopRow> hcache(hop ? g.n : 0, hop ? std::max<size_t>(cache_rows, 1) : 1,
                            size_t(1) << 24);
    auto fill_row = [&](int64_t u, Row& row) {
      compute_row(c.rg, u, equal, unit, c.radius_of(u), s, row);
    };
    auto fill_hop_row = [&](int64_t u, HopRow& row) {
      compute_hop_row(g, u, hubs.bit.data(), s, row);
    };
    // no worksharing construct here: a thread that failed above may leave early (every
    // thread takes positions from the shared counter until none is left)
    for (int64_t pos; (pos = next.fetch_add(1, std::memory_order_relaxed)) < g.n;) {
      const int64_t x = visit[pos];
      if (E.start[x] == E.start[x + 1]) continue;
      collect_targets(c, x, s);
      if (hop)
        hop_block(c, x, s, [&](int64_t u) -> const HopRow& { return hcache.get(u, fill_hop_row); });
      else
        dist_block(c, x, s, [&](int64_t u) -> const Row& { return cache.get(u, fill_row); });
      edges_of(c, x, s, kappa, dist, status);
    }
  });
  errors.rethrow();
}

}  // namespace

void ollivier_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                    const OrcOptions& o, double* kappa, double* dist, int* status) {
  orc_run(g, nullptr, m, eu, ev, o, kappa, dist, status);
}

void ollivier_ricci_directed(const CsrGraph& out, const CsrGraph& in, int64_t m, const int64_t* eu,
                             const int64_t* ev, const OrcOptions& o, double* kappa, double* dist,
                             int* status) {
  if (in.n != out.n || in.indptr[in.n] != out.indptr[out.n])
    throw std::invalid_argument("ollivier_ricci_directed: the two CSR graphs differ in size");
  orc_run(out, &in, m, eu, ev, o, kappa, dist, status);
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
    out[e] =
        augmented ? we * (double(tri) * we + 2.0 / we - std::fabs(rest)) : we * (2.0 / we - rest);
  }
}

}  // namespace geoml
