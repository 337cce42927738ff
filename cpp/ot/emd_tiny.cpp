// The network simplex on problems of at most 32 rows and 32 columns, 64 rows and 32 columns
// (cost only; a problem with more columns than rows is solved transposed) or 64 and 64 (see
// emd_solve in ot.hpp): fixed-size arrays on the stack, subtree bit sets, float32 AVX2
// pre-pricing when there are at most 32 columns.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "common/simd.hpp"
#include "ot/emd_internal.hpp"
#include "ot/ot.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {
namespace ot_detail {
namespace {

/// The status of a finished tiny solve: the pivot limit, else mass left on the artificial arcs
/// (above 1e-9 of the total), else optimal.
int tiny_status(bool limit, double art_flow, double mass) {
  return limit ? EMD_MAX_ITER : art_flow > 1e-9 * mass ? EMD_INFEASIBLE : EMD_OPTIMAL;
}

// ---------------------------------------------------------------- tiny dense problems
//
// Problems with at most kTinyDim rows and columns (after dropping zero-mass bins; e.g. the
// many 16x16 problems of emd_batched or Ollivier-Ricci curvature) run the same network
// simplex (artificial-root start, the same strongly feasible pivot) on fixed-size arrays
// inside one stack object: no allocation, no indirection through the workspace, all in L1.
// Node ids: sources 0..mm-1, sinks Rows + j, root Rows + Cols, so the sink potentials
// h = pot + Rows are contiguous, 32-byte aligned and zero up to the root. The tree is
// kept as parent pointers plus one 64-bit subtree set per node (no thread, no depth).
// The cost is copied into buffers with rows padded to a multiple of the SIMD width (padding
// +inf), so pricing is a vertical min over whole rows, one horizontal reduction per scan:
// in float32 first (AVX2), the candidate re-priced in float64; the exact float64 Dantzig
// scan runs when that candidate does not enter, and certifies optimality.

/// Subtree bit sets of a solver for at most Rows rows and Cols columns (Rows + Cols + 1 nodes,
/// the root's bit never used).
template <int Rows, int Cols>
using TinyMask = std::conditional_t<(Rows + Cols <= 64), uint64_t, unsigned __int128>;

/// Index of the lowest set bit of x != 0.
inline int tiny_ctz(uint64_t x) {
  return __builtin_ctzll(x);
}
inline int tiny_ctz(unsigned __int128 x) {
  const uint64_t lo = static_cast<uint64_t>(x);
  return lo ? __builtin_ctzll(lo) : 64 + __builtin_ctzll(static_cast<uint64_t>(x >> 64));
}

/// Dantzig scan of a tiny problem: the arc (i, j) minimising (Cp_ij + h_j) - p_i over the
/// mm rows of Cp (stride W), returned in *io, *jo when that minimum is negative; returns the
/// minimum (0 when none is negative). O(mm W).
using TinyScan = double (*)(int mm, int W, const double* Cp, const double* p, const double* h,
                            int* io, int* jo);

/// Float32 pre-pricing of a tiny problem (AVX2 only): the arc minimising
/// (Cf_ij + hf_j) - pf_i in float over the mm rows of Cf (stride Wf = 8 NV; CfT its transpose,
/// rows of stride ts), in *io, *jo when that minimum is negative; returns it. Twice the lanes of
/// the float64 scan and two interleaved row chains; the caller re-prices the chosen arc in float64
/// and falls back to the exact scan when it is not entering there (and to certify optimality).
using TinyScan32 = float (*)(int mm, const float* Cf, const float* CfT, int ts, const float* pf,
                             const float* hf, int* io, int* jo);

#define GEOML_KERNEL_INC "ot/emd_tiny_kernel.inc"
#include "common/simd_instantiate.inc"

/// The network simplex of `Solver` on a tiny problem, every array in the object (about
/// 20 KB for 32 x 32, 70 KB for 64 x 64; meant for the stack; nothing is initialised beyond
/// what `init` writes). Sinks are nodes Rows + j. With at most Rows + Cols non-root nodes
/// the tree needs no thread or depth: each node keeps the bit set of its subtree (D, root
/// excluded; one or two words), so the join of a cycle is the first node above s whose set holds t,
/// the subtree that moves is one set, and its potentials are shifted by walking its bits. A pivot
/// costs O(cycle + moved subtree) with no pointer chasing through the subtree. The float32
/// pre-pricing is for Cols <= kTinyDim only (`use32`); the wide solver prices in float64 alone, its
/// rows padded to a multiple of 16.
template <int Rows, int Cols>
struct TinySolver {
  using Mask = TinyMask<Rows, Cols>;
  static constexpr int kTinyDim = Rows;  // shadows the namespace constant: the sinks' offset
  static constexpr int kTinyRoot = Rows + Cols;
  static constexpr int kTinyNodes = kTinyRoot + 1;
  static constexpr bool use32 = Cols <= ot_detail::kTinyDim;
  static constexpr int kDim32 = use32 ? Rows * Cols : 1;  // size of the float32 copies
  int mm = 0, nn = 0, W = 0;
  int parent[kTinyNodes], pred[kTinyNodes];
  unsigned char up[kTinyNodes];
  Mask D[kTinyNodes];  // subtree of each node as a bit set (the root's: all ones)
  double flow[kTinyNodes];
  alignas(32) double pot[kTinyNodes];
  alignas(32) double Cp[Rows * Cols];
  // float32 copies for the pre-pricing: cost (stride Wf = nn rounded up to 8), transposed
  // (rows padded to 8), potentials
  int Wf = 0;
  alignas(32) float Cf[kDim32];
  alignas(32) float CfT[kDim32];
  alignas(32) float potf[kTinyNodes];
  int cs[kTinyNodes], ct[kTinyNodes];  // the cycle's sides (s and t up to the join)
  TinyScan scan = nullptr;             // the exact float64 Dantzig scan
  TinyScan32 scan32 = nullptr;         // the float32 pre-pricing (none: the exact scan alone)
  int in_i = 0, in_j = 0;              // the next entering arc, see `price32` and `price`
  double in_rc = 0.0;                  // its float64 reduced cost (0: none yet)

  /// Copies the kept rows/columns of C (m x n) into Cp (transposed when `trans`: the solver's
  /// rows are then C's kept columns, with supplies from b, and its columns C's kept rows, with
  /// demands from a) and builds the artificial-root tree; returns false when some kept cost is
  /// NaN or infinite. O(mm W).
  bool init(int n, const double* a, const double* b, const double* C, const int* rows,
            const int* cols, bool all_cols, bool trans) {
    W = use32 ? (nn + 3) & ~3 : (nn + 15) & ~15;
    Wf = (nn + 7) & ~7;
    double cmax = 0.0;
    bool finite = true;
    for (int i = 0; i < mm; ++i) {
      const double* Ci = C + (trans ? cols[i] : static_cast<int64_t>(rows[i]) * n);
      double* Di = Cp + i * W;
      for (int j = 0; j < nn; ++j) {  // one pass: copy, transpose, finiteness and max |c|
        const double c = trans      ? Ci[static_cast<int64_t>(rows[j]) * n]
                         : all_cols ? Ci[j]
                                    : Ci[cols[j]];
        Di[j] = c;
        if constexpr (use32) {
          Cf[i * Wf + j] = static_cast<float>(c);
          CfT[j * kTinyDim + i] = static_cast<float>(c);
        }
        finite &= c > -std::numeric_limits<double>::infinity();  // NaN, -inf; +inf: forbidden
        cmax = std::max(cmax, c < std::numeric_limits<double>::infinity() ? std::fabs(c) : 0.0);
      }
      for (int j = nn; j < W; ++j) Di[j] = std::numeric_limits<double>::infinity();
      if constexpr (use32)
        for (int j = nn; j < Wf; ++j) Cf[i * Wf + j] = std::numeric_limits<float>::infinity();
    }
    if (!finite) return false;
    if constexpr (use32)
      for (int j = 0; j < nn; ++j)
        for (int i = mm; i < ((mm + 7) & ~7); ++i)
          CfT[j * kTinyDim + i] = std::numeric_limits<float>::infinity();
    const double art = ot_detail::artificial_cost(cmax, mm + nn + 1);
    for (int u = mm; u < kTinyRoot; ++u) pot[u] = 0.0;  // padding stays 0
    for (int i = 0; i < mm; ++i) {
      parent[i] = kTinyRoot;
      pred[i] = -1 - i;
      up[i] = 1;
      D[i] = Mask(1) << i;
      flow[i] = trans ? b[cols[i]] : a[rows[i]];
      pot[i] = art;
    }
    for (int j = 0; j < nn; ++j) {
      const int u = kTinyDim + j;
      parent[u] = kTinyRoot;
      pred[u] = -1 - u;
      up[u] = 0;
      D[u] = Mask(1) << u;
      flow[u] = trans ? a[rows[j]] : b[cols[j]];
      pot[u] = -art;
    }
    parent[kTinyRoot] = -1;
    D[kTinyRoot] = ~Mask(0);
    pot[kTinyRoot] = 0.0;
    if constexpr (use32)
      for (int u = 0; u < kTinyNodes; ++u) potf[u] = static_cast<float>(pot[u]);
    const SimdIsa isa = simd_isa();
    scan =
        use32 ? GEOML_SIMD_CALL(isa, tiny_scan_for, W) : GEOML_SIMD_CALL(isa, tiny_scan_wide_for);
    scan32 = use32 ? GEOML_SIMD_CALL(isa, tiny_scan32_for, Wf) : nullptr;
    return true;
  }

  /// float64 reduced cost of arc (i, j) if it may enter (below the relative tolerance), else 0.
  double entering(int i, int j) const {
    const double* h = pot + kTinyDim;
    const double rc = (Cp[i * W + j] + h[j]) - pot[i];
    const double scale = std::fabs(Cp[i * W + j]) + std::fabs(pot[i]) + std::fabs(h[j]);
    return rc < -kRcRel * scale ? rc : 0.0;
  }

  /// First half of the pricing: the float32 candidate in (in_i, in_j), its float64 reduced
  /// cost in in_rc when it enters (else 0).
  void price32() {
    in_rc = 0.0;
    if (scan32 && scan32(mm, Cf, CfT, kTinyDim, potf, potf + kTinyDim, &in_i, &in_j) < 0.0f)
      in_rc = entering(in_i, in_j);
  }

  /// Second half: when the candidate does not enter, the exact Dantzig scan's arc. Returns
  /// false when no arc enters (the tree is optimal); else (in_i, in_j, in_rc) is the next pivot's.
  bool price() {
    if (in_rc != 0.0) return true;
    if (!(scan(mm, W, Cp, pot, pot + kTinyDim, &in_i, &in_j) < 0.0)) return false;
    in_rc = entering(in_i, in_j);
    return in_rc != 0.0;
  }

  /// The cost over the real tree arcs (sources, then sinks); the flow left on artificial arcs
  /// in *art_flow.
  double tree_cost(double* art_flow) const {
    double cost = 0.0, art = 0.0;
    for (int u = 0; u < mm + nn; ++u) {
      const int x = u < mm ? u : kTinyDim + u - mm;
      if (pred[x] >= 0)
        cost += flow[x] * Cp[pred[x]];
      else
        art += flow[x];
    }
    *art_flow = art;
    return cost;
  }

  /// One pivot on entering arc (i, j) with reduced cost rc < 0: the pivot of
  /// Solver::pivot (same leaving arc, same new tree).
  void pivot(int ei, int ej, double rc) {
    const int s = ei, t = kTinyDim + ej;
    const Mask bs = Mask(1) << s, bt = Mask(1) << t;
    // leaving arc: the last blocking arc met when walking the cycle join -> s -> t -> join,
    // i.e. the first minimum on the s side unless the t side's last minimum is <= it;
    // found while walking up to the join
    double ds = std::numeric_limits<double>::infinity(), dt = ds;
    int os = -1, ot = -1, ns = 0, nt = 0;
    for (int x = s; !(D[x] & bt); x = parent[x]) {
      const bool c = up[x] && flow[x] < ds;
      ds = c ? flow[x] : ds;
      os = c ? ns : os;
      cs[ns++] = x;
    }
    for (int x = t; !(D[x] & bs); x = parent[x]) {
      const bool c = !up[x] && flow[x] <= dt;
      dt = c ? flow[x] : dt;
      ot = c ? nt : ot;
      ct[nt++] = x;
    }
    const int side = (ot >= 0 && dt <= ds) ? 2 : 1;
    const double delta = side == 2 ? dt : ds;
    if (side == 1 && os < 0) throw std::runtime_error("emd: unbounded cycle (internal error)");
    if (delta > 0.0) {
      for (int q = 0; q < ns; ++q) flow[cs[q]] += up[cs[q]] ? -delta : delta;
      for (int q = 0; q < nt; ++q) flow[ct[q]] += up[ct[q]] ? delta : -delta;
    }
    // path u_in = path[0] -> ... -> path[k] = u_out: a prefix of one side; the rest of that
    // side loses the moved subtree M, the whole other side (from v_in up) gains it
    const int* path = side == 1 ? cs : ct;
    const int* other = side == 1 ? ct : cs;
    const int k = side == 1 ? os : ot;
    const int n_path = side == 1 ? ns : nt, n_other = side == 1 ? nt : ns;
    const int u_in = path[0], u_out = path[k];
    const int v_in = side == 1 ? t : s;
    const double sigma = side == 1 ? rc : -rc;
    const Mask M = D[u_out];
    for (int q = k + 1; q < n_path; ++q) D[path[q]] &= ~M;
    for (int q = 0; q < n_other; ++q) D[other[q]] |= M;
    // re-root M at u_in: reverse the path's arcs; the subtree of path[q] becomes its old one
    // minus path[q-1]'s, plus path[q+1]'s new one
    Mask below = 0;
    for (int q = k; q >= 1; --q) {
      const int x = path[q], y = path[q - 1];
      below |= D[x] & ~D[y];
      D[x] = below;
      parent[x] = y;
      pred[x] = pred[y];
      up[x] = !up[y];
      flow[x] = flow[y];
    }
    D[u_in] = M;
    parent[u_in] = v_in;
    pred[u_in] = ei * W + ej;
    up[u_in] = side == 1 ? 1 : 0;
    flow[u_in] = delta;
    for (Mask r = M; r; r &= r - 1) {
      const int x = tiny_ctz(r);
      pot[x] += sigma;
      if constexpr (use32) potf[x] = static_cast<float>(pot[x]);
    }
  }
};

/// `trans` (cost only, see emd_tiny_tall): solves the transposed problem (same cost),
/// ws.nn x ws.mm.
template <int Rows, int Cols>
double emd_tiny_dim(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                    int64_t max_iter, double mass, int* status, bool trans = false) {
  using Solver = TinySolver<Rows, Cols>;
  using Mask = typename Solver::Mask;
  constexpr int kTinyDim = Rows, kTinyRoot = Solver::kTinyRoot, kTinyNodes = Solver::kTinyNodes;
  Solver S;
  const int mm = trans ? ws.nn : ws.mm, nn = trans ? ws.mm : ws.nn;
  S.mm = mm;
  S.nn = nn;
  if (!S.init(n, a, b, C, ws.rows.data(), ws.cols.data(), nn == n, trans)) {
    ws.parent.clear();
    if (status) *status = EMD_NONFINITE;
    return std::numeric_limits<double>::quiet_NaN();
  }
  bool limit = false;
  int64_t piv = 0;
  for (;; ++piv) {
    if (max_iter > 0 && piv >= max_iter) {
      limit = true;
      break;
    }
    S.price32();
    if (!S.price()) break;
    S.pivot(S.in_i, S.in_j, S.in_rc);
  }
  ws.n_pivots = piv;
  double art_flow = 0.0;
  const double cost = S.tree_cost(&art_flow);
  // live nodes in emd_solve's numbering (sinks at mm + j, root mm + nn)
  int nodes[kTinyRoot];
  for (int i = 0; i < mm; ++i) nodes[i] = i;
  for (int j = 0; j < nn; ++j) nodes[mm + j] = kTinyDim + j;
  const int st = tiny_status(limit, art_flow, mass);
  if (ws.cost_only) {
    ws.parent.clear();
    if (status) *status = st;
    return cost;
  }
  // exact potentials from the tree, parents first (as emd_solve): children of the root keep
  // theirs, less that of the first one; every other node is its parent's across its arc
  Mask done = 0;
  double shift = 0.0;
  bool first = true;
  int stack[kTinyNodes];
  for (int u = 0; u < mm + nn; ++u) {
    int depth = 0;
    for (int x = nodes[u]; x != kTinyRoot && !((done >> x) & 1); x = S.parent[x])
      stack[depth++] = x;
    while (depth > 0) {
      const int x = stack[--depth], q = S.parent[x];
      if (q == kTinyRoot) {
        if (first) shift = S.pot[x];
        first = false;
        S.pot[x] -= shift;
      } else {
        const double c = S.Cp[S.pred[x]];
        S.pot[x] = S.up[x] ? S.pot[q] + c : S.pot[q] - c;
      }
      done |= Mask(1) << x;
    }
  }
  // the tree in emd_solve's numbering
  const int W = S.W, N = mm + nn + 1;
  ws.parent.resize(N);
  ws.pred.resize(N);
  ws.flow.resize(N);
  ws.pot.resize(N);
  ws.up.resize(N);
  for (int u = 0; u < mm + nn; ++u) {
    const int x = nodes[u], e = S.pred[x], q = S.parent[x];
    ws.parent[u] = q == kTinyRoot ? mm + nn : q < kTinyDim ? q : mm + q - kTinyDim;
    ws.pred[u] = e >= 0 ? (e / W) * nn + e % W : -1 - u;
    ws.flow[u] = S.flow[x];
    ws.pot[u] = S.pot[x];
    ws.up[u] = S.up[x];
  }
  ws.parent[N - 1] = -1;
  ws.pred[N - 1] = 0;
  ws.flow[N - 1] = 0.0;
  ws.pot[N - 1] = 0.0;
  ws.up[N - 1] = 0;
  ws.C = nullptr;
  if (status) *status = st;
  return cost;
}

}  // namespace

double emd_tiny(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                int64_t max_iter, double mass, int* status) {
  return emd_tiny_dim<kTinyDim, kTinyDim>(n, a, b, C, ws, max_iter, mass, status);
}

double emd_tiny_wide(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                     int64_t max_iter, double mass, int* status) {
  return emd_tiny_dim<kTinyWide, kTinyWide>(n, a, b, C, ws, max_iter, mass, status);
}

double emd_tiny_tall(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                     int64_t max_iter, double mass, int* status) {
  // the transposed solve leaves no tree in emd_solve's numbering: cost only
  if (!ws.cost_only) throw std::logic_error("emd_tiny_tall: for cost-only solves");
  return emd_tiny_dim<kTinyWide, kTinyDim>(n, a, b, C, ws, max_iter, mass, status,
                                           ws.nn > kTinyDim);
}

}  // namespace ot_detail

namespace {

/// How emd_small_costs solves problem p: 0 on the 32 x 32 solver, 1 on the 64 x 32 one
/// (transposed when the columns are the wide side), 2 through emd_small (zero-mass bins, or
/// larger); the masses' sums in *sa, *sb (for kinds 0 and 1).
int small_kind(const EmdProblem& p, double* sa, double* sb) {
  using ot_detail::kTinyDim, ot_detail::kTinyWide;
  if (p.m < 1 || p.n < 1 || std::min(p.m, p.n) > kTinyDim || std::max(p.m, p.n) > kTinyWide)
    return 2;
  *sa = *sb = 0.0;
  for (int i = 0; i < p.m; ++i) {
    if (!(p.a[i] > 0)) return 2;
    *sa += p.a[i];
  }
  for (int j = 0; j < p.n; ++j) {
    if (!(p.b[j] > 0)) return 2;
    *sb += p.b[j];
  }
  return std::max(p.m, p.n) <= kTinyDim ? 0 : 1;
}

/// The problems of one kind of emd_small_costs (0: Rows = Cols = 32, 1: Rows = 64, Cols = 32;
/// kind 2's on the way in the second pass), two at a time in lock-step.
template <int Rows, int Cols>
void costs_in_pairs(int count, const EmdProblem* P, EmdWorkspace& ws, int64_t max_iter,
                    double* cost, int* status) {
  using Solver = ot_detail::TinySolver<Rows, Cols>;
  constexpr int kind = Rows == Cols ? 0 : 1;
  static constexpr auto iota = [] {
    std::array<int, Rows> r{};
    for (int i = 0; i < Rows; ++i) r[i] = i;
    return r;
  }();
  Solver S0, S1;  // two slots, each holding one problem in flight (k: its index, -1 none)
  int k0 = -1, k1 = -1, next = 0;
  int64_t piv0 = 0, piv1 = 0;
  double mass0 = 0.0, mass1 = 0.0;
  // the next problem of this kind into S (its index in k)
  auto load = [&](Solver& S, int& k, int64_t& piv, double& mass) {
    for (k = -1; k < 0 && next < count; ++next) {
      const EmdProblem& p = P[next];
      double sa = 0.0, sb = 0.0;
      const int kn = small_kind(p, &sa, &sb);
      if (kn != kind) {
        if (kind == 1 && kn == 2)  // emd_solve's own path
          cost[next] = emd_small(p.m, p.n, p.a, p.b, p.C, ws, max_iter, &status[next]);
        continue;
      }
      const bool trans = p.n > Cols;
      S.mm = trans ? p.n : p.m;
      S.nn = trans ? p.m : p.n;
      if (!S.init(p.n, p.a, p.b, p.C, iota.data(), iota.data(), !trans, trans)) {
        cost[next] = std::numeric_limits<double>::quiet_NaN();
        status[next] = EMD_NONFINITE;
        continue;
      }
      k = next;
      piv = 0;
      mass = std::max(sa, sb);
    }
  };
  // the pivot limit or optimality reached: the result of problem k
  auto finish = [&](const Solver& S, int k, bool limit, double mass) {
    double art_flow = 0.0;
    cost[k] = S.tree_cost(&art_flow);
    status[k] = ot_detail::tiny_status(limit, art_flow, mass);
  };
  load(S0, k0, piv0, mass0);
  load(S1, k1, piv1, mass1);
  while (k0 >= 0 || k1 >= 0) {
    const bool lim0 = k0 >= 0 && max_iter > 0 && piv0 >= max_iter;
    const bool lim1 = k1 >= 0 && max_iter > 0 && piv1 >= max_iter;
    const bool on0 = k0 >= 0 && !lim0, on1 = k1 >= 0 && !lim1;
    if (on0) S0.price32();  // both float32 scans first: independent, they overlap
    if (on1) S1.price32();
    const bool go0 = on0 && S0.price(), go1 = on1 && S1.price();
    if (go0) {
      S0.pivot(S0.in_i, S0.in_j, S0.in_rc);
      ++piv0;
    }
    if (go1) {
      S1.pivot(S1.in_i, S1.in_j, S1.in_rc);
      ++piv1;
    }
    if (k0 >= 0 && !go0) {
      finish(S0, k0, lim0, mass0);
      load(S0, k0, piv0, mass0);
    }
    if (k1 >= 0 && !go1) {
      finish(S1, k1, lim1, mass1);
      load(S1, k1, piv1, mass1);
    }
  }
}

}  // namespace

void emd_small_costs(int count, const EmdProblem* P, EmdWorkspace& ws, int64_t max_iter,
                     double* cost, int* status) {
  ws.cost_only = true;
  costs_in_pairs<ot_detail::kTinyDim, ot_detail::kTinyDim>(count, P, ws, max_iter, cost, status);
  costs_in_pairs<ot_detail::kTinyWide, ot_detail::kTinyDim>(count, P, ws, max_iter, cost, status);
}

}  // namespace geoml
