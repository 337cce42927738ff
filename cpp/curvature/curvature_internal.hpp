// Private to cpp/curvature/: what the Ollivier-Ricci driver (curvature.cpp), the distance
// rows (rows.cpp) and the integer hop-cost OT solver (hop_ot.cpp) share.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "common/omp_errors.hpp"
#include "curvature/curvature.hpp"
#include "ot/ot.hpp"

namespace geoml {
namespace curvature_detail {

constexpr double kTiny = 1e-7;  // GraphRicciCurvature's EPSILON

/// Exact OT when one side has two bins: with sources {0, 1} (or targets, by symmetry), the
/// other side's bins are served from source 0 in increasing order of C_0j - C_1j until its mass
/// runs out (an exchange argument shows this greedy plan is optimal). O(k log k).
template <typename Cost>
double two_bin_ot(int m, int n, const double* a, const double* b, const Cost* C,
                  std::vector<int>& order) {
  const bool rows = m == 2;  // the two-bin side
  const int k = rows ? n : m;
  const double* mass = rows ? b : a;
  auto cost = [&](int side, int j) -> double { return rows ? C[side * n + j] : C[j * n + side]; };
  double cap = rows ? a[0] : b[0];
  order.resize(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int p, int q) { return cost(0, p) - cost(1, p) < cost(0, q) - cost(1, q); });
  double w = 0;
  for (const int j : order) {
    const double x = std::min(cap, mass[j]);
    cap -= x;
    w += x * cost(0, j) + (mass[j] - x) * cost(1, j);
  }
  return w;
}

/// Index of the lowest set bit of x != 0.
inline int ctz64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#else
  int k = 0;
  while (!(x & 1)) {
    x >>= 1;
    ++k;
  }
  return k;
#endif
}

/// Scratch of merge_equal_cols_u8 and gather_merge_rows.
struct MergeWork {
  std::vector<int> perm;
  std::vector<uint64_t> keys;
  std::vector<uint8_t> planes;
  std::vector<int> tslot;
};

/// Reusable memory of HopOt, the integer-cost primal-dual OT solver (hop_ot.cpp).
struct HopOtWork {
  std::vector<double> sup, dem, PT;  // residual supplies, demands; plan, column-major (n x m)
  std::vector<uint8_t> listed;       // (j, i) is in column j's flow list
  std::vector<int> fl, fcnt;         // per column j: fl[j m ..] rows whose flow may be > 0
  std::vector<int16_t> pr, pc;       // integer potentials of rows and columns
  std::vector<int16_t> dr, dc;       // Dijkstra distances
  std::vector<uint8_t> done;         // Dijkstra: column settled
  std::vector<int> lr, lc;           // BFS levels (-1: none / dead end)
  std::vector<int> cc;               // Dinic current-arc positions of the columns' flow lists
  std::vector<uint64_t> adm, cur;    // zero-reduced-cost arcs row -> col of the phase, and the
                                     // arcs not yet tried in the round: W words per row
  std::vector<uint64_t> todo;        // BFS: columns not reached yet (W words)
  std::vector<uint8_t> eq;           // one row's zero-reduced-cost flags, W * 64 bytes
  std::vector<int> queue;
};

/// Per-thread scratch, sized for n nodes; `stamp` arrays avoid clearing between uses.
struct Scratch {
  std::vector<int64_t> col;  // node -> column in the target block
  std::vector<uint32_t> col_gen;
  std::vector<int32_t> tcol;  // hop path: node -> column in the target block, -1 if none
  std::vector<double> dist;   // Dijkstra distances
  std::vector<uint32_t> dist_gen;
  std::vector<uint8_t> hop;  // 2-hop marks
  std::vector<uint32_t> hop_gen;
  std::vector<int32_t> rpos;  // node -> position in the current supp m_x
  std::vector<uint32_t> rpos_gen;
  uint32_t cgen = 0, dgen = 0, hgen = 0, rgen = 0;
  std::vector<int64_t> targets, ball;
  std::vector<std::pair<int64_t, double>> found;  // a distance row being built
  std::vector<std::pair<double, int64_t>> heap;
  std::vector<int32_t> hpos;  // Dijkstra: node -> slot in `heap` while it is in; the
                              // label-correcting rows: 1 while the node is queued
  std::vector<double> D, C, a, b, f, g, P;
  SinkhornWork sw;
  std::vector<int> ai, bj, perm;
  std::vector<double> C2;
  EmdWorkspace ws;
  // the exact problems of one source's edges, solved together by emd_small_costs (two at a
  // time, interleaved): their edges, and each one's a, b, C packed at its offset in pend_buf
  std::vector<int64_t> pend_edge;
  std::vector<size_t> pend_off;
  std::vector<double> pend_buf, pend_cost;
  std::vector<EmdProblem> pend;
  std::vector<int> pend_status;
  std::vector<uint8_t> Dh, C8;    // hop counts (unweighted graphs); Dh target-major
  std::vector<uint32_t> hq;       // hub masks of the sources (see the hop block)
  std::vector<int32_t> hub_rows;  // the sources that are hubs
  MergeWork mw;
  HopOtWork hw;
  explicit Scratch(int64_t n)
      : col(n),
        col_gen(n, 0),
        tcol(n, -1),
        dist(n),
        dist_gen(n, 0),
        hop(n),
        hop_gen(n, 0),
        rpos(n),
        rpos_gen(n, 0),
        hpos(n) {
    ws.cost_only = true;  // only W1 is read
  }
};

/// Cuts an edge's hop-cost matrix out of the target block and merges its equal rows: row i
/// is (D[cols[j] mx + ai[i]])_j, j < n, with D target-major (mx sources per target, entries
/// <= 3). The columns are first packed four to a byte, 2 bits each, for all mx sources
/// (vectorised passes over contiguous bytes); a row's bytes then form ceil(n / 32) words that
/// are grouped with a hash table, and the masses a (m) of equal rows are added. The kept rows
/// (first of each group, in order) are written to C (k x n) and their masses to a[0 .. k);
/// returns k. O(m n / 4 + mx n / 16) time, O(mx n / 4) bytes in `w`.
int gather_merge_rows(int64_t mx, int m, int n, const uint8_t* D, const int* ai, const int* cols,
                      double* a, std::vector<uint8_t>& C, MergeWork& w);

/// W1, in hops, of the compacted problem of one edge held in `s`: masses s.a (mm) and s.b
/// (nn), hop costs s.C8 (mm x nn) whose equal rows are already merged (gather_merge_rows).
/// Equal columns are merged first when there are more than 16 (hub edges of scale-free graphs
/// shrink many times), then the plan is forced (one bin on a side), greedy (two bins on a
/// side), by small_hop_ot (small problems) or by HopOt. Overwrites s.a, s.b, s.C8 (and s.P).
double hop_w1(int mm, int nn, Scratch& s);

using Row = std::vector<std::pair<int64_t, double>>;

/// Distances from u, unordered. Equal weights (`unit`): the nodes within 2 hops by marking
/// (the rest of the 3-hop ball is at 3 units, implicitly). Otherwise, with a finite `radius`
/// (a bound on every distance from u that will be read): every node within the radius, by a
/// label-correcting search (Dijkstra's distances bit for bit; Dijkstra itself when the search
/// requeues too many nodes; g must list each node's arcs by increasing weight: a node's scan
/// stops at the first arc past the radius); with an infinite one:
/// the 3-hop ball is marked by BFS, then Dijkstra runs until all of it is settled (only the ball is
/// kept).
void compute_row(const CsrGraph& g, int64_t u, bool equal, double unit, double radius, Scratch& s,
                 Row& row);

/// Hop-count row of u, packed (v << 2 | hops): u, its neighbours and the neighbours of its
/// non-hub neighbours (`hub` flags the hubs; see HubMasks), i.e. the 2-hop ball of u except
/// what is reached through a hub only. Unordered; O(size of that ball).
using HopRow = std::vector<uint32_t>;
void compute_hop_row(const CsrGraph& g, int64_t u, const uint32_t* hub, Scratch& s, HopRow& row);

/// Hop distances through hubs without touching their long adjacency lists. The (up to) 32
/// nodes of highest degree above `kHubDegree` get one bit each: bit[v] is v's bit (0 for a
/// non-hub), near1[v] the OR of bit over N(v) (the hubs adjacent to v), near2[v] the OR of
/// near1 over N(v) (the hubs within 2 hops of v, through any node). Then, for u != v:
/// a hub u has d(u, v) = 1 iff bit[u] & near1[v], else 2 iff bit[u] & near2[v]; and two nodes
/// u, v at distance 2 through a hub share a bit of near1. So the distance rows of non-hubs
/// need not expand hubs (2-hop balls stay small in scale-free graphs) and hubs need no row.
/// O(n log n + nnz) time, 3 n words (nothing when not `enabled`). 32-bit masks keep the
/// loops over them vectorisable with SSE2.
struct HubMasks {
  static constexpr int64_t kHubDegree = 32;
  std::vector<uint32_t> bit, near1, near2;
  HubMasks(const CsrGraph& g, bool enabled, int nt);
};

/// FIFO cache of distance rows, bounded by a total number of entries. Rows of sources that
/// neighbouring x's share are computed once while they stay cached (x is visited in BFS order).
template <class Row>
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
std::vector<int64_t> bfs_order(const CsrGraph& g);

/// Exact OT is unchanged when sources with identical cost rows are merged (their masses
/// added), and likewise for targets with identical cost columns. On hub edges of scale-free
/// graphs (hundreds of neighbours, few distinct distance patterns) this shrinks the problem
/// many times. Rewrites a (m), b (n) and C (m x n, row-major) in place. O(m n log m + m n log n).
void merge_duplicate_rows_cols(int& m, int& n, std::vector<double>& a, std::vector<double>& b,
                               std::vector<double>& C, std::vector<int>& perm,
                               std::vector<double>& tmp);

}  // namespace curvature_detail
}  // namespace geoml
