// The exact OT solver of Ollivier-Ricci curvature on unweighted graphs: costs are hop counts
// 0..3 kept as bytes; equal rows and columns are merged, then a primal-dual method with
// integer potentials (HopOt, or small_hop_ot on bit masks) solves the problem.
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
      const uint8_t e[4] = {uint8_t(b & 3), uint8_t(b >> 2 & 3), uint8_t(b >> 4 & 3),
                            uint8_t(b >> 6)};
      std::memcpy(&v[b], e, 4);
    }
  }
};

}  // namespace

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

namespace {

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
    for (int i = 0; i < m_; ++i)
      w_.pr[i] = static_cast<int16_t>(w_.pr[i] + std::min<int>(dr[i], D));
    for (int j = 0; j < n_; ++j)
      w_.pc[j] = static_cast<int16_t>(w_.pc[j] + std::min<int>(dc[j], D));
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
        const uint64_t z = (c + t) ^ p;                     // bytes <= 7, no carries: 0 where equal
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

}  // namespace

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

}  // namespace curvature_detail
}  // namespace geoml
