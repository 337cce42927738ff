#include "curvature.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "ot/ot.hpp"

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
    double last_w = std::numeric_limits<double>::quiet_NaN(), last_p = 0;  // pow() once per run
#pragma omp for schedule(dynamic, 512)
    for (int64_t x = 0; x < g.n; ++x) {
      wn.clear();
      for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e) {
        if (!(g.weights[e] == last_w)) {  // of equal weights (all of them when unweighted)
          last_w = g.weights[e];
          last_p = std::pow(o.base, -std::pow(last_w, o.exp_power));
        }
        wn.push_back({last_p, g.indices[e]});
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
  }
  return M;
}

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

/// Merges equal columns of C (m x n, row-major, entries <= 3) in place, adding their masses
/// b: exact OT is unchanged (see merge_duplicate_rows_cols). Each column is packed 2 bits per
/// entry into ceil(m / 32) words (built row by row, contiguous in the columns) and the columns
/// are grouped with a hash table; the kept columns stay in order. O(m n).
void merge_equal_cols_u8(int m, int& n, double* b, std::vector<uint8_t>& C, MergeWork& w) {
  if (n < 2) return;
  const int kw = (m + 31) / 32;
  const size_t nn = static_cast<size_t>(n);
  w.keys.assign(static_cast<size_t>(kw) * nn, 0);  // word q of column j at keys[q n + j]
  for (int i = 0; i < m; ++i) {
    const uint8_t* Ci = C.data() + i * nn;
    uint64_t* kq = w.keys.data() + (i / 32) * nn;
    const int sh = 2 * (i % 32);
    for (size_t j = 0; j < nn; ++j) kq[j] |= uint64_t(Ci[j]) << sh;
  }
  size_t cap = 4;
  while (cap < 2 * nn) cap *= 2;
  w.tslot.assign(cap, -1);
  w.perm.clear();  // kept columns, in order
  const uint64_t* keys = w.keys.data();
  for (size_t j = 0; j < nn; ++j) {
    uint64_t h = 0;
    for (int q = 0; q < kw; ++q) h = (h ^ keys[q * nn + j]) * 0x9E3779B97F4A7C15ULL;
    size_t t = static_cast<size_t>(h >> 32) & (cap - 1);
    for (; w.tslot[t] >= 0; t = (t + 1) & (cap - 1)) {
      const size_t o = static_cast<size_t>(w.perm[w.tslot[t]]);
      int q = 0;
      while (q < kw && keys[q * nn + j] == keys[q * nn + o]) ++q;
      if (q == kw) break;
    }
    if (w.tslot[t] >= 0) {
      b[w.tslot[t]] += b[j];
      continue;
    }
    w.tslot[t] = static_cast<int>(w.perm.size());
    b[w.perm.size()] = b[j];
    w.perm.push_back(static_cast<int>(j));
  }
  const int k = static_cast<int>(w.perm.size());
  if (k == n) return;
  uint8_t* c = C.data();
  const int* keep = w.perm.data();
  for (int i = 0; i < m; ++i)  // in place: sources never lie before their destinations
    for (int j = 0; j < k; ++j) c[static_cast<size_t>(i) * k + j] = c[i * nn + keep[j]];
  n = k;
}

/// Byte b (four 2-bit entries) -> those entries as four bytes, in memory order.
struct Unpack4 {
  uint32_t v[256];
  Unpack4() {
    for (int b = 0; b < 256; ++b) {
      const uint8_t e[4] = {uint8_t(b & 3), uint8_t(b >> 2 & 3), uint8_t(b >> 4 & 3), uint8_t(b >> 6)};
      std::memcpy(&v[b], e, 4);
    }
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
                      double* a, std::vector<uint8_t>& C, MergeWork& w) {
  const int np = (n + 3) / 4, kw = (n + 31) / 32;
  w.planes.resize(static_cast<size_t>(np) * mx);
  for (int q = 0; q < np; ++q) {  // plane q: columns 4q .. 4q + 3 at bits 0, 2, 4, 6
    uint8_t* P = w.planes.data() + q * mx;
    const uint8_t* c0 = D + cols[4 * q] * mx;
    std::copy(c0, c0 + mx, P);
    for (int r = 1; r < 4 && 4 * q + r < n; ++r) {
      const uint8_t* cr = D + cols[4 * q + r] * mx;
      const int sh = 2 * r;
      for (int64_t i = 0; i < mx; ++i) P[i] = static_cast<uint8_t>(P[i] | cr[i] << sh);
    }
  }
  size_t cap = 4;
  while (cap < 2 * static_cast<size_t>(m)) cap *= 2;
  w.tslot.assign(cap, -1);
  w.keys.resize(static_cast<size_t>(m + 1) * kw);
  const uint8_t* planes = w.planes.data();
  int k = 0;
  w.perm.clear();  // source of each kept row
  for (int i = 0; i < m; ++i) {
    const uint8_t* pi = planes + ai[i];
    uint64_t* key = w.keys.data() + static_cast<size_t>(k) * kw;  // a new group's slot
    uint64_t h = 0;
    for (int q = 0; q < kw; ++q) {  // entry j of word q at bits 2 (j - 32 q)
      uint64_t v = 0;
      for (int p = std::min(np, 8 * q + 8) - 1; p >= 8 * q; --p) v = v << 8 | pi[p * mx];
      key[q] = v;
      h = (h ^ v) * 0x9E3779B97F4A7C15ULL;
    }
    size_t t = static_cast<size_t>(h >> 32) & (cap - 1);
    for (; w.tslot[t] >= 0; t = (t + 1) & (cap - 1)) {
      const uint64_t* other = w.keys.data() + static_cast<size_t>(w.tslot[t]) * kw;
      if (kw == 1 ? key[0] == other[0] : std::equal(key, key + kw, other)) break;
    }
    if (w.tslot[t] >= 0) {
      a[w.tslot[t]] += a[i];
      continue;
    }
    w.tslot[t] = k;
    w.perm.push_back(ai[i]);
    a[k++] = a[i];
  }
  // the kept rows from their plane bytes, four entries per table look-up (C has 7 bytes of
  // slack: a row's last word may spill into the next row, written after it; small_hop_ot
  // reads 8 bytes at a time)
  static const Unpack4 lut;
  C.resize(static_cast<size_t>(k) * n + 7);
  for (int r = 0; r < k; ++r) {
    const uint8_t* pr = planes + w.perm[r];
    uint8_t* Cr = C.data() + static_cast<size_t>(r) * n;
    for (int p = 0; p < np; ++p) std::memcpy(Cr + 4 * p, &lut.v[pr[p * mx]], 4);
  }
  return k;
}

/// Exact OT with small non-negative integer costs C (m x n, row-major, entries <= kmax) by the
/// primal-dual method: successive shortest paths in the residual network s -> rows -> cols -> t
/// (a level-synchronous Dijkstra on reduced costs), each followed by a maximum flow (Dinic) on
/// the arcs of zero reduced cost. With integer potentials, a maximum flow on the
/// zero-reduced-cost arcs raises the s-t distance by at least 1, and that distance never
/// exceeds kmax while mass remains (a direct row -> col arc costs <= kmax), so there are at
/// most kmax + 1 phases: for hop-count costs (kmax = 3) at most 4. Amounts are only added,
/// subtracted and compared with 0, and the bottleneck of every augmenting path becomes exactly
/// 0, so the plan is optimal up to rounding of the masses. Masses are expected to be equal (a
/// residue left by rounding is not shipped). Returns <P, C>.
/// Complexity: per phase two dense, vectorisable O(m n) passes (relaxing the rows, marking the
/// zero-cost arcs in one bit per arc), then Dinic on those arcs and on the O(m + n +
/// augmentations) arcs carrying flow. Memory O(m n) in `w` (reused across calls).
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

class HopOt {
 public:
  HopOt(int m, int n, const uint8_t* C, int kmax, HopOtWork& w)
      : m_(m), n_(n), W_((n + 63) / 64), C_(C), kmax_(kmax), w_(w) {}

  double solve(const double* a, const double* b) {
    const size_t mn = static_cast<size_t>(m_) * n_;
    w_.sup.assign(a, a + m_);
    w_.dem.assign(b, b + n_);
    w_.PT.assign(mn, 0.0);
    w_.listed.assign(mn, 0);
    w_.fl.resize(mn);
    w_.fcnt.assign(n_, 0);
    w_.pr.assign(m_, 0);
    w_.pc.assign(n_, 0);
    w_.dr.resize(m_);
    w_.dc.resize(n_);
    w_.done.resize(n_);
    w_.lr.resize(m_);
    w_.lc.resize(n_);
    w_.cc.resize(n_);
    w_.adm.resize(static_cast<size_t>(m_) * W_);
    w_.cur.resize(static_cast<size_t>(m_) * W_);
    w_.todo.resize(W_);
    w_.eq.assign(static_cast<size_t>(W_) * 64, 0);  // flags past n stay 0
    // First phase without a search: every row has supply and zero potential, so column j is
    // at distance min_i C_ij and the nearest demand at D = min C; potentials: pc = D.
    int cmin = kmax_;
    for (size_t t = 0; t < mn; ++t) cmin = std::min<int>(cmin, C_[t]);
    std::fill(w_.pc.begin(), w_.pc.end(), static_cast<int16_t>(cmin));
    int pt = cmin;  // potential of the sink = length of the current shortest augmenting paths
    for (int phase = 0; phase <= kmax_; ++phase) {
      if (phase > 0) {
        const int D = pt <= kmax_ ? shortest_paths(kmax_ - pt) : -1;
        if (D < 0) break;  // no supply or no demand left (up to rounding)
        pt += D;
      }
      list_admissible();
      bool left = true;
      while (left && levels()) {
        blocking_flow();
        left = std::any_of(w_.sup.begin(), w_.sup.end(), [](double v) { return v > 0; });
      }
      if (!left) break;  // everything shipped
    }
    double w = 0;
    for (int j = 0; j < n_; ++j) {
      const double* p = w_.PT.data() + static_cast<size_t>(j) * m_;
      const int* f = w_.fl.data() + static_cast<size_t>(j) * m_;
      for (int k = 0; k < w_.fcnt[j]; ++k)
        if (p[f[k]] > 0) w += p[f[k]] * C_[static_cast<size_t>(f[k]) * n_ + j];
    }
    return w;
  }

 private:
  int m_, n_, W_;  // W_: 64-bit words per row of the arc bitsets
  const uint8_t* C_;
  int kmax_;
  HopOtWork& w_;
  int sink_level_ = 0;
  static constexpr int16_t kInf = 0x3fff;

  void relax_row(int i, int L) {  // dc = min(dc, L + reduced cost of i -> j), all j
    const uint8_t* ci = C_ + static_cast<size_t>(i) * n_;
    const int16_t base = static_cast<int16_t>(L + w_.pr[i]);
    const int16_t* pc = w_.pc.data();
    int16_t* dc = w_.dc.data();
    for (int j = 0; j < n_; ++j) {
      const int16_t v = static_cast<int16_t>(base + ci[j] - pc[j]);
      dc[j] = v < dc[j] ? v : dc[j];
    }
  }

  /// Shortest reduced distances from the rows with supply, level by level (0..limit): rows
  /// of level L relax every column (dense, vectorised); columns reaching L pass L on to the
  /// rows they hold flow from (reduced cost 0). Returns the distance D of the nearest column
  /// with demand (-1 if none within `limit`) and raises every potential by min(distance, D).
  /// Demand columns all have the sink's potential (an invariant: they start at 0 and each
  /// phase raises them by D), so j -> t has reduced cost 0.
  int shortest_paths(int limit) {
    auto& dr = w_.dr;
    auto& dc = w_.dc;
    auto& qu = w_.queue;
    std::fill(dr.begin(), dr.end(), kInf);
    std::fill(dc.begin(), dc.end(), kInf);
    std::fill(w_.done.begin(), w_.done.end(), 0);
    for (int i = 0; i < m_; ++i)
      if (w_.sup[i] > 0) {
        dr[i] = 0;
        relax_row(i, 0);
      }
    int D = -1;
    for (int L = 0; L <= limit && D < 0; ++L) {
      for (;;) {
        qu.clear();
        for (int j = 0; j < n_ && D < 0; ++j) {
          if (dc[j] != L || w_.done[j]) continue;
          w_.done[j] = 1;
          if (w_.dem[j] > 0) {
            D = L;
            break;
          }
          const double* p = w_.PT.data() + static_cast<size_t>(j) * m_;
          const int* f = w_.fl.data() + static_cast<size_t>(j) * m_;
          for (int k = 0; k < w_.fcnt[j]; ++k) {
            const int i = f[k];
            if (p[i] > 0 && dr[i] > L) {  // residual arc j -> i, reduced cost 0
              dr[i] = static_cast<int16_t>(L);
              qu.push_back(i);
            }
          }
        }
        if (D >= 0 || qu.empty()) break;
        for (const int i : qu) relax_row(i, L);
      }
    }
    if (D < 0) return -1;
    for (int i = 0; i < m_; ++i) w_.pr[i] = static_cast<int16_t>(w_.pr[i] + std::min<int>(dr[i], D));
    for (int j = 0; j < n_; ++j) w_.pc[j] = static_cast<int16_t>(w_.pc[j] + std::min<int>(dc[j], D));
    return D;
  }

  /// The forward arcs of zero reduced cost (fixed during the phase's maximum flow), one bit
  /// each: a vectorisable pass writes a row's 0/1 flags, a multiply gathers 8 flags to a byte.
  void list_admissible() {
    uint8_t* eq = w_.eq.data();
    const int16_t* pc = w_.pc.data();
    const int n = n_;  // a local: stores through eq (bytes) could alias the members
    for (int i = 0; i < m_; ++i) {
      const uint8_t* ci = C_ + static_cast<size_t>(i) * n;
      const int16_t target = static_cast<int16_t>(-w_.pr[i]);
      for (int j = 0; j < n; ++j) eq[j] = static_cast<int16_t>(ci[j] - pc[j]) == target;
      uint64_t* row = w_.adm.data() + static_cast<size_t>(i) * W_;
      for (int w = 0; w < W_; ++w) {
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) {  // byte t of x is flag t (0/1): bit t lands at 56 + t
          uint64_t x;
          std::memcpy(&x, eq + 64 * w + 8 * k, 8);
          if (x) bits |= ((x * 0x0102040810204080ULL) >> 56) << (8 * k);  // little-endian
        }
        row[w] = bits;
      }
    }
  }

  /// BFS levels on the admissible arcs (rows with supply at level 0, rows at even and
  /// columns at odd levels); false when no column with demand is reachable. Drops flow-list
  /// entries whose flow has returned to 0.
  bool levels() {
    auto& lr = w_.lr;
    auto& lc = w_.lc;
    auto& qu = w_.queue;
    std::fill(lr.begin(), lr.end(), -1);
    std::fill(lc.begin(), lc.end(), -1);
    uint64_t* todo = w_.todo.data();
    std::fill(todo, todo + W_, ~uint64_t(0));
    if (n_ % 64) todo[W_ - 1] = (uint64_t(1) << (n_ % 64)) - 1;
    qu.clear();
    for (int i = 0; i < m_; ++i)
      if (w_.sup[i] > 0) {
        lr[i] = 0;
        qu.push_back(i);
      }
    for (size_t q = 0; q < qu.size(); ++q) {
      const int node = qu[q];
      if (node < m_) {
        const uint64_t* row = w_.adm.data() + static_cast<size_t>(node) * W_;
        for (int w = 0; w < W_; ++w) {
          uint64_t reach = row[w] & todo[w];
          todo[w] &= ~reach;
          for (; reach; reach &= reach - 1) {
            const int j = 64 * w + ctz64(reach);
            lc[j] = lr[node] + 1;
            qu.push_back(m_ + j);
          }
        }
      } else {
        const int j = node - m_;
        if (w_.dem[j] > 0) {  // the first sink: its level bounds every augmenting path
          sink_level_ = lc[j];
          return true;
        }
        const double* p = w_.PT.data() + static_cast<size_t>(j) * m_;
        uint8_t* in = w_.listed.data() + static_cast<size_t>(j) * m_;
        int* f = w_.fl.data() + static_cast<size_t>(j) * m_;
        int keep = 0;
        for (int k = 0; k < w_.fcnt[j]; ++k) {
          const int i = f[k];
          if (!(p[i] > 0)) {
            in[i] = 0;
            continue;
          }
          f[keep++] = i;
          if (lr[i] < 0) {
            lr[i] = lc[j] + 1;
            qu.push_back(i);
          }
        }
        w_.fcnt[j] = keep;
      }
    }
    return false;
  }

  void blocking_flow() {
    std::copy(w_.adm.begin(), w_.adm.end(), w_.cur.begin());
    std::fill(w_.cc.begin(), w_.cc.end(), 0);
    for (int i = 0; i < m_; ++i)
      while (w_.lr[i] == 0 && w_.sup[i] > 0) {
        const double f = push_row(i, w_.sup[i]);
        if (f == 0) break;
        w_.sup[i] -= f;
      }
  }

  // Augmenting path search along increasing levels; returns the amount pushed (the minimum
  // residual on the path), already applied below the caller.
  double push_row(int i, double lim) {
    const int next = w_.lr[i] + 1;
    uint64_t* cur = w_.cur.data() + static_cast<size_t>(i) * W_;
    for (int w = 0; w < W_; ++w)
      for (uint64_t& r = cur[w]; r; r &= r - 1) {  // an arc that carried flow stays current
        const int j = 64 * w + ctz64(r);
        if (w_.lc[j] != next) continue;
        const double f = push_col(j, lim);
        if (f > 0) {
          const size_t t = static_cast<size_t>(j) * m_ + i;
          w_.PT[t] += f;
          if (!w_.listed[t]) {
            w_.listed[t] = 1;
            w_.fl[static_cast<size_t>(j) * m_ + w_.fcnt[j]++] = i;
          }
          return f;
        }
      }
    w_.lr[i] = -1;  // dead end for this round
    return 0;
  }

  double push_col(int j, double lim) {
    if (w_.lc[j] == sink_level_) {
      if (!(w_.dem[j] > 0)) return 0;
      const double f = std::min(lim, w_.dem[j]);
      w_.dem[j] -= f;
      return f;
    }
    const int next = w_.lc[j] + 1;
    double* p = w_.PT.data() + static_cast<size_t>(j) * m_;
    const int* f = w_.fl.data() + static_cast<size_t>(j) * m_;
    // rows appended to this list during the round sit at lower levels: never taken here
    for (int& k = w_.cc[j]; k < w_.fcnt[j]; ++k) {
      const int i = f[k];
      if (w_.lr[i] != next || !(p[i] > 0)) continue;
      const double g = push_row(i, std::min(lim, p[i]));
      if (g > 0) {
        p[i] -= g;
        return g;
      }
    }
    w_.lc[j] = -1;
    return 0;
  }
};

/// Problems small_hop_ot takes: at most kSmallHop rows and columns (one 64-bit mask per set)
/// and kSmallHopEntries entries (measured on BA(5000, 4): from 64 to 512 entries it beats
/// both the network simplex and HopOt; above, HopOt's blocking flows win).
constexpr int kSmallHop = 64;
constexpr int kSmallHopEntries = 256;

/// Exact OT with hop costs C (m x n, row-major, entries <= 3), m, n <= kSmallHop: the
/// primal-dual method of HopOt (at most 4 phases of a level-synchronous shortest-path search
/// on reduced costs, then a maximum flow on the arcs of zero reduced cost) with every set a
/// 64-bit mask and the small arrays on the stack, and one BFS augmenting path at a time
/// instead of Dinic's rounds. Masses as in HopOt: equal totals, a residue left by rounding is
/// not shipped. C must have 7 readable bytes past its m n entries. Returns <P, C>; `plan` is
/// scratch. O(m n) per phase plus O(m n) per
/// augmentation.
double small_hop_ot(int m, int n, const double* a, const double* b, const uint8_t* C,
                    std::vector<double>& plan) {
  // Potentials stay in [0, 3] (each phase raises them by at most its D, and the D add up to
  // the sink's potential <= 3), so reduced costs lie in [-3, 6] and searched distances in
  // [0, 3]: bytes, 16 to an SSE2 register.
  constexpr int kMax = kSmallHop;
  constexpr int8_t kInf = 100;
  double sup[kMax], dem[kMax];
  int8_t pr[kMax], pc[kMax], dr[kMax], dc[kMax];
  int parC[kMax], parR[kMax];
  uint64_t flo[kMax];  // per column: the rows shipping to it (P > 0)
  uint64_t adm[kMax];  // per row: the columns of zero reduced cost
  int queue[kMax];
  plan.resize(static_cast<size_t>(m) * n);  // P[i n + j] is set where flo[j] has bit i
  double* P = plan.data();
  std::fill_n(pr, m, int8_t(0));
  std::fill_n(pc, kMax, int8_t(0));  // all of it: read 8 columns at a time
  std::fill_n(flo, n, uint64_t(0));
  uint64_t has_sup = 0, has_dem = 0;  // rows with supply, columns with demand left
  for (int i = 0; i < m; ++i) {
    sup[i] = a[i];
    has_sup |= uint64_t(sup[i] > 0) << i;
  }
  for (int j = 0; j < n; ++j) {
    dem[j] = b[j];
    has_dem |= uint64_t(dem[j] > 0) << j;
  }
  for (int pt = 0; pt <= 3;) {
    // shortest reduced distances from the rows with supply, level by level up to 3 - pt
    uint64_t seenR = 0, doneC = 0;
    std::fill_n(dc, n, kInf);
    auto relax = [&, n](int i, int L) {
      const uint8_t* ci = C + i * n;
      const int8_t base = static_cast<int8_t>(L + pr[i]);
      for (int j = 0; j < n; ++j) {
        const int8_t v = static_cast<int8_t>(base + ci[j] - pc[j]);
        dc[j] = v < dc[j] ? v : dc[j];
      }
    };
    std::fill_n(dr, m, kInf);
    for (uint64_t r = has_sup; r; r &= r - 1) {
      const int i = ctz64(r);
      dr[i] = 0;
      relax(i, 0);
    }
    seenR = has_sup;
    int D = -1;
    for (int L = 0; L <= 3 - pt && D < 0; ++L) {
      for (bool grew = true; grew && D < 0;) {
        grew = false;
        for (int j = 0; j < n && D < 0; ++j) {
          if (dc[j] != L || (doneC >> j & 1)) continue;
          doneC |= uint64_t(1) << j;
          if (has_dem >> j & 1) {
            D = L;
            break;
          }
          for (uint64_t r = flo[j] & ~seenR; r; r &= r - 1) {  // reverse arcs, reduced cost 0
            const int i = ctz64(r);
            seenR |= uint64_t(1) << i;
            dr[i] = static_cast<int8_t>(L);
            relax(i, L);
            grew = true;
          }
        }
      }
    }
    if (D < 0) break;  // no supply or no demand left (up to rounding)
    for (int i = 0; i < m; ++i) pr[i] = static_cast<int8_t>(pr[i] + std::min<int>(dr[i], D));
    for (int j = 0; j < n; ++j) pc[j] = static_cast<int8_t>(pc[j] + std::min<int>(dc[j], D));
    pt += D;
    constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    const uint64_t tail = n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
    for (int i = 0; i < m; ++i) {  // 8 columns per word: bytes C_ij + pr_i == pc_j, to bits
      const uint8_t* ci = C + i * n;
      const uint64_t t = kOnes * static_cast<uint8_t>(pr[i]);
      uint64_t row = 0;
      for (int k = 0; 8 * k < n; ++k) {
        uint64_t c, p;
        std::memcpy(&c, ci + 8 * k, 8);  // past the row: the next row or C's slack
        std::memcpy(&p, pc + 8 * k, 8);
        const uint64_t z = (c + t) ^ p;  // bytes <= 7, no carries: 0 where equal
        const uint64_t ne = (z + (kHigh - kOnes)) & kHigh;  // high bit where z != 0
        row |= ((((ne ^ kHigh) >> 7) * 0x0102040810204080ULL) >> 56) << (8 * k);
      }
      adm[i] = row & tail;
    }
    for (;;) {  // augment along BFS paths of admissible and reverse arcs until none is left
      const uint64_t roots = has_sup;
      uint64_t visC = 0, visR = roots;
      int head = 0, tail = 0, found = -1;
      for (uint64_t r = roots; r; r &= r - 1) queue[tail++] = ctz64(r);
      while (head < tail && found < 0) {
        const int i = queue[head++];
        const uint64_t nb = adm[i] & ~visC;
        visC |= nb;
        for (uint64_t r = nb; r; r &= r - 1) {
          const int j = ctz64(r);
          parC[j] = i;
          if (has_dem >> j & 1) {
            found = j;
            break;
          }
          const uint64_t rows = flo[j] & ~visR;
          visR |= rows;
          for (uint64_t q = rows; q; q &= q - 1) {
            parR[ctz64(q)] = j;
            queue[tail++] = ctz64(q);
          }
        }
      }
      if (found < 0) break;
      double f = dem[found];  // bottleneck: the demand, the reverse arcs, the root's supply
      int i = parC[found];
      while (!(roots >> i & 1)) {
        f = std::min(f, P[i * n + parR[i]]);
        i = parC[parR[i]];
      }
      f = std::min(f, sup[i]);
      dem[found] -= f;
      if (!(dem[found] > 0)) has_dem &= ~(uint64_t(1) << found);
      for (int j = found;;) {
        const int r = parC[j];
        P[r * n + j] = (flo[j] >> r & 1) ? P[r * n + j] + f : f;
        flo[j] |= uint64_t(1) << r;
        if (roots >> r & 1) {
          sup[r] -= f;
          if (!(sup[r] > 0)) has_sup &= ~(uint64_t(1) << r);
          break;
        }
        j = parR[r];
        P[r * n + j] -= f;
        if (!(P[r * n + j] > 0)) flo[j] &= ~(uint64_t(1) << r);
      }
    }
  }
  double w = 0;
  for (int j = 0; j < n; ++j)
    for (uint64_t r = flo[j]; r; r &= r - 1) w += P[ctz64(r) * n + j] * C[ctz64(r) * n + j];
  return w;
}

/// Per-thread scratch, sized for n nodes; `stamp` arrays avoid clearing between uses.
struct Scratch {
  std::vector<int64_t> col;        // node -> column in the target block
  std::vector<uint32_t> col_gen;
  std::vector<int32_t> tcol;       // hop path: node -> column in the target block, -1 if none
  std::vector<double> dist;        // Dijkstra distances
  std::vector<uint32_t> dist_gen;
  std::vector<uint8_t> hop;        // 2-hop marks
  std::vector<uint32_t> hop_gen;
  std::vector<int32_t> rpos;       // node -> position in the current supp m_x
  std::vector<uint32_t> rpos_gen;
  uint32_t cgen = 0, dgen = 0, hgen = 0, rgen = 0;
  std::vector<int64_t> targets, ball;
  std::vector<std::pair<double, int64_t>> heap;
  std::vector<double> D, C, a, b, f, g, P;
  SinkhornWork sw;
  std::vector<int> ai, bj, perm;
  std::vector<double> C2;
  EmdWorkspace ws;
  std::vector<uint8_t> Dh, C8;  // hop counts (unweighted graphs); Dh target-major
  std::vector<uint32_t> hq;           // hub masks of the sources (see the hop block)
  std::vector<int32_t> hub_rows;      // the sources that are hubs
  MergeWork mw;
  HopOtWork hw;
  explicit Scratch(int64_t n)
      : col(n), col_gen(n, 0), tcol(n, -1), dist(n), dist_gen(n, 0), hop(n), hop_gen(n, 0), rpos(n),
        rpos_gen(n, 0) {}
};

/// W1, in hops, of the compacted problem of one edge held in `s`: masses s.a (mm) and s.b
/// (nn), hop costs s.C8 (mm x nn) whose equal rows are already merged (gather_merge_rows).
/// Equal columns are merged first when there are more than 16 (hub edges of scale-free graphs
/// shrink many times), then the plan is forced (one bin on a side), greedy (two bins on a
/// side), by small_hop_ot (small problems) or by HopOt. Overwrites s.a, s.b, s.C8 (and s.P).
double hop_w1(int mm, int nn, Scratch& s) {
  // Few columns: merging costs more than it saves the solvers (measured on BA(5000, 4) and a
  // 10-NN graph: 3% and 2% fewer instructions when only more than 16 columns are merged).
  if (nn > 16) merge_equal_cols_u8(mm, nn, s.b.data(), s.C8, s.mw);
  if (mm == 1 || nn == 1) {  // one source or one target: the plan is forced
    double w = 0;
    for (int t = 0; t < mm * nn; ++t) w += (mm == 1 ? s.b[t] : s.a[t]) * s.C8[t];
    return w;
  }
  if (mm == 2 || nn == 2) return two_bin_ot(mm, nn, s.a.data(), s.b.data(), s.C8.data(), s.perm);
  if (mm <= kSmallHop && nn <= kSmallHop && mm * nn <= kSmallHopEntries)
    return small_hop_ot(mm, nn, s.a.data(), s.b.data(), s.C8.data(), s.P);
  return HopOt(mm, nn, s.C8.data(), 3, s.hw).solve(s.a.data(), s.b.data());
}

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

/// Hop-count row of u, packed (v << 2 | hops): u, its neighbours and the neighbours of its
/// non-hub neighbours (`hub` flags the hubs; see HubMasks), i.e. the 2-hop ball of u except
/// what is reached through a hub only. Unordered; O(size of that ball).
using HopRow = std::vector<uint32_t>;
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
  HubMasks(const CsrGraph& g, bool enabled, int nt) {
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
  // Unweighted graphs (all weights equal) with exact OT: costs are hop counts in {0..3}, kept as
  // bytes, and each OT problem goes to the integer primal-dual solver (HopOt).
  const bool hop = o.method == OrcMethod::Exact && equal && g.n < (int64_t(1) << 30);
  const HubMasks hubs(g, hop, nt);
  const size_t cache_rows = static_cast<size_t>(std::min<int64_t>(g.n, 16384));
#pragma omp parallel num_threads(nt)
  {
    Scratch s(g.n);
    // one of the two caches is used: hop rows (packed) or distance rows
    RowCache<Row> cache(hop ? 0 : g.n, hop ? 1 : std::max<size_t>(cache_rows, 1), size_t(1) << 23);
    RowCache<HopRow> hcache(hop ? g.n : 0, hop ? std::max<size_t>(cache_rows, 1) : 1,
                            size_t(1) << 24);
    auto fill_row = [&](int64_t u, Row& row) { compute_row(g, u, equal, unit, s, row); };
    auto fill_hop_row = [&](int64_t u, HopRow& row) {
      compute_hop_row(g, u, hubs.bit.data(), s, row);
    };
#pragma omp for schedule(dynamic, 1)
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
            if (hop) s.tcol[v] = static_cast<int32_t>(s.targets.size());
            s.targets.push_back(v);
          }
        }
      }
      const int64_t mx = M.ptr[x + 1] - M.ptr[x];
      const int64_t nT = static_cast<int64_t>(s.targets.size());
      (hop ? s.Dh.resize(static_cast<size_t>(mx * nT)) : s.D.resize(static_cast<size_t>(mx * nT)));
      if (hop) {
        // Hop counts, target-major (Dh[t mx + i] = d(supp m_x [i], targets[t])). Hub u:
        // distances from the masks alone. Otherwise 3 hops, or 2 through a hub, unless u's
        // row (which does not expand hubs) has the target nearer. See HubMasks.
        // d(u, t) = 3 - [near1(t) & hq(u)] - [near12(t) & bit(u)], hq(u) = bit(u) for a hub
        // u, else near1(u): a dense pass per column, then the hub rows (few) of the column
        s.hq.resize(static_cast<size_t>(mx));
        s.hub_rows.clear();
        uint32_t any_q = 0, any_hub = 0;
        for (int64_t i = 0; i < mx; ++i) {
          const int64_t u = M.supp[M.ptr[x] + i];
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
        for (int64_t i = 0; i < mx; ++i) {  // hub rows: d(u, u) = 0; others: scatter u's row
          const int64_t u = M.supp[M.ptr[x] + i];
          if (hubs.bit[u]) {
            if (s.col_gen[u] == cgen) s.Dh[s.col[u] * mx + i] = 0;
            continue;
          }
          for (const uint32_t vh : hcache.get(u, fill_hop_row)) {
            const int32_t c = s.tcol[vh >> 2];
            if (c >= 0) s.Dh[c * mx + i] = static_cast<uint8_t>(vh & 3);
          }
        }
      }
      for (int64_t i = 0; i < mx && !hop; ++i) {  // scatter u's cached row, gather the targets
        const int64_t u = M.supp[M.ptr[x] + i];
        const Row& row = cache.get(u, fill_row);
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
      if (hop)
        for (const int64_t v : s.targets) s.tcol[v] = -1;
      const double* ax = M.mass.data() + M.ptr[x];
      const uint32_t rgen = ++s.rgen;  // positions in supp m_x, for the cancellation below
      for (int64_t i = 0; i < mx; ++i) {
        s.rpos_gen[M.supp[M.ptr[x] + i]] = rgen;
        s.rpos[M.supp[M.ptr[x] + i]] = static_cast<int32_t>(i);
      }
      for (int64_t q = start[x]; q < start[x + 1]; ++q) {
        const int64_t e = order[q], y = ev[e];
        const double dxy = hop ? unit * s.Dh[s.col[y] * mx + mx - 1]  // x is last in its support
                               : s.D[(mx - 1) * nT + s.col[y]];
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
        for (int64_t i = 0; i < mx; ++i) if (s.a[i] > 0) s.ai.push_back(int(i));
        for (int64_t j = 0; j < my; ++j) if (s.b[j] > 0) s.bj.push_back(int(j));
        int mm = int(s.ai.size());
        const int nn = int(s.bj.size());
        double sa = 0, sb = 0;
        for (int i = 0; i < mm; ++i) sa += (s.a[i] = s.a[s.ai[i]]);
        for (int j = 0; j < nn; ++j) sb += (s.b[j] = s.b[s.bj[j]]);
        if (mm == 0 || nn == 0 || std::min(sa, sb) <= 1e-14) {  // equal measures
          kappa[e] = 1.0;
          continue;
        }
        for (int j = 0; j < nn; ++j) s.b[j] *= sa / sb;  // equal totals despite rounding
        if (hop) {
          s.perm.resize(nn);
          for (int j = 0; j < nn; ++j) s.perm[j] = static_cast<int>(s.col[sy[s.bj[j]]]);
          mm = gather_merge_rows(mx, mm, nn, s.Dh.data(), s.ai.data(), s.perm.data(), s.a.data(),
                                 s.C8, s.mw);
          kappa[e] = 1.0 - unit * hop_w1(mm, nn, s) / dxy;
          continue;
        }
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
