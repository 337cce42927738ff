// Exact optimal transport: the network simplex, emd_solve, the plan and duals, and the
// batched driver (see ot.hpp). Problems of at most 32 x 32 go to emd_tiny.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "ot/emd_internal.hpp"
#include "ot/ot.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {

// ====================================================================== network simplex
//
// Transportation problem as a min-cost flow: supply nodes 0..mm-1 (supply a_i), demand nodes
// mm..mm+nn-1 (supply -b_j), root node R = mm+nn. Real arcs i -> mm+j (id i*nn + j, cost
// C_ij, uncapacitated); one artificial arc per node joins it to R (supply node: u -> R,
// demand node: R -> u) with a cost larger than any real path, so the artificial-root tree is
// a feasible start. Arcs are uncapacitated, so a non-tree arc always carries zero flow: flows
// are stored per tree arc, i.e. per node (the arc to its parent).
//
// Potentials: reduced cost of arc s -> t is rc = c - pot[s] + pot[t] (zero on tree arcs,
// pot[R] = 0); the OT duals are f_i = pot[i], g_j = -pot[mm+j].
//
// The tree is stored as parent / pred (arc) / up (arc orientation) / depth plus a preorder
// "thread" (cyclic successor list, with its reverse). A subtree is a contiguous run of the
// thread: from its root while depth stays larger. The tree update re-hangs the cut subtree
// at the entering arc by splicing thread runs along the path from the entering node to the
// node whose arc leaves (O(path) splices), then one walk over the moved subtree fixes depth
// and potentials.

namespace {

using ot_detail::emd_tiny;
using ot_detail::emd_tiny_tall;
using ot_detail::emd_tiny_wide;
using ot_detail::kRcRel;
using ot_detail::kTinyDim;
using ot_detail::kTinyWide;

// problems with at most this many arcs use Dantzig pricing (a full scan per pivot)
constexpr int64_t kSmallArcs = 1024;

#define GEOML_KERNEL_INC "ot/emd_kernel.inc"
#include "common/simd_instantiate.inc"

int64_t dantzig_scan(int m, int n, const double* C, const double* p, const double* h,
                     double* best_out) {
  const SimdIsa isa = simd_isa();
  return GEOML_SIMD_CALL(isa, dantzig_scan, m, n, C, p, h, best_out);
}

struct Solver {
  EmdWorkspace& w;
  int mm, nn, N, R;
  int64_t narcs;
  const double* C;
  double art;

  explicit Solver(EmdWorkspace& ws) : w(ws) {}

  inline int src(int64_t arc) const {
    return arc < narcs ? static_cast<int>(arc / nn) : static_cast<int>(arc - narcs);
  }
  inline int tgt(int64_t arc) const {
    if (arc < narcs) return mm + static_cast<int>(arc % nn);
    return static_cast<int>(arc - narcs) < mm ? R : static_cast<int>(arc - narcs);
  }

  inline void link(int x, int y) {
    w.thread[x] = y;
    w.rev_thread[y] = x;
  }

  // Block search (Grigoriadis): scan arcs cyclically in blocks of `block`; pivot on the most
  // negative reduced cost of the first block that has an acceptable one. Returns -1 at
  // optimality (a full pass found nothing).
  int64_t next_arc = 0;
  int64_t block = 1;
  int64_t find_entering(double& rc_out) {
    const double* pot = w.pot.data();
    const double* potg = pot + mm;
    const unsigned char* tree = w.in_tree.data();
    int64_t scanned = 0;
    int64_t a = next_arc;
    int i = static_cast<int>(a / nn), j = static_cast<int>(a % nn);
    while (scanned < narcs) {
      double best = 0.0;
      int64_t best_arc = -1;
      int64_t todo = std::min(block, narcs - scanned);
      scanned += todo;
      while (todo > 0) {
        const int64_t run = std::min<int64_t>(todo, nn - j);
        const double* Ci = C + static_cast<int64_t>(i) * nn;
        const unsigned char* ti = tree + static_cast<int64_t>(i) * nn;
        const double pi = pot[i];
        const int jend = j + static_cast<int>(run);
        for (int jj = j; jj < jend; ++jj) {
          const double rc = Ci[jj] - pi + potg[jj];
          if (rc < best && !ti[jj]) {
            best = rc;
            best_arc = static_cast<int64_t>(i) * nn + jj;
          }
        }
        todo -= run;
        j = jend;
        if (j == nn) {
          j = 0;
          if (++i == mm) i = 0;
        }
      }
      if (best_arc >= 0) {
        const int s = static_cast<int>(best_arc / nn), t = mm + static_cast<int>(best_arc % nn);
        const double scale = std::fabs(C[best_arc]) + std::fabs(pot[s]) + std::fabs(pot[t]);
        if (best < -kRcRel * scale) {
          next_arc = static_cast<int64_t>(i) * nn + j;
          rc_out = best;
          return best_arc;
        }
      }
    }
    return -1;
  }

  // Dantzig pricing: the most negative reduced cost over all arcs (small problems, where a
  // full scan costs about as much as one tree update). Tree arcs have rc ~ 0 and never pass
  // the tolerance. Returns -1 at optimality.
  int64_t find_entering_dantzig(double& rc_out) {
    const double* pot = w.pot.data();
    double best;
    const int64_t best_arc = dantzig_scan(mm, nn, C, pot, pot + mm, &best);
    if (best_arc < 0) return -1;
    const int s = static_cast<int>(best_arc / nn), t = mm + static_cast<int>(best_arc % nn);
    const double scale = std::fabs(C[best_arc]) + std::fabs(pot[s]) + std::fabs(pot[t]);
    if (!(best < -kRcRel * scale)) return -1;
    rc_out = best;
    return best_arc;
  }

  // Artificial-root start; false (nothing else done) when some cost is NaN or -inf. A +inf
  // cost is a forbidden arc: its reduced cost is +inf, so it never enters the tree, and the
  // artificial cost only has to exceed the paths of finite arcs.
  bool init(const double* a, const double* b, const double* cost) {
    C = cost;
    narcs = static_cast<int64_t>(mm) * nn;
    N = mm + nn + 1;
    R = N - 1;
    double cmax = 0.0;
    bool valid = true;
    const double inf = std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < narcs; ++k) {
      const double c = C[k];
      valid &= c > -inf;  // false for NaN and -inf
      cmax = std::max(cmax, c < inf ? std::fabs(c) : 0.0);
    }
    if (!valid) return false;
    art = ot_detail::artificial_cost(cmax, N);
    w.parent.resize(N);
    w.pred.resize(N);
    w.thread.resize(N);
    w.rev_thread.resize(N);
    w.depth.resize(N);
    w.up.resize(N);
    w.pot.resize(N);
    w.flow.resize(N);
    w.in_tree.assign(narcs, 0);
    for (int u = 0; u < N - 1; ++u) {
      w.parent[u] = R;
      w.pred[u] = static_cast<int>(-1 - u);  // artificial arc of u (negative ids)
      w.depth[u] = 1;
      if (u < mm) {
        w.up[u] = 1;
        w.flow[u] = a[u];
        w.pot[u] = art;
      } else {
        w.up[u] = 0;
        w.flow[u] = b[u - mm];
        w.pot[u] = -art;
      }
    }
    w.parent[R] = -1;
    w.pred[R] = 0;
    w.depth[R] = 0;
    w.pot[R] = 0.0;
    w.flow[R] = 0.0;
    w.up[R] = 0;
    for (int u = 0; u < N; ++u) link(u, u + 1 == N ? 0 : u + 1);
    link(R, 0);
    block = std::max<int64_t>(static_cast<int64_t>(std::sqrt(static_cast<double>(narcs))), 10);
    block = std::min(block, narcs);
    next_arc = 0;
    return true;
  }

  // One pivot on entering real arc e with reduced cost rc < 0.
  void pivot(int64_t e, double rc) {
    const int s = static_cast<int>(e / nn), t = mm + static_cast<int>(e % nn);
    int* parent = w.parent.data();
    int* depth = w.depth.data();
    // join node of the cycle
    int u = s, v = t;
    while (u != v) {
      if (depth[u] > depth[v]) {
        u = parent[u];
      } else if (depth[v] > depth[u]) {
        v = parent[v];
      } else {
        u = parent[u];
        v = parent[v];
      }
    }
    const int join = u;
    // leaving arc: the last blocking arc met when walking the cycle join -> s -> t -> join
    // (strongly feasible trees: no cycling)
    double delta = std::numeric_limits<double>::infinity();
    int u_out = -1, side = 0;
    for (int x = s; x != join; x = parent[x]) {
      if (w.up[x] && w.flow[x] < delta) {
        delta = w.flow[x];
        u_out = x;
        side = 1;
      }
    }
    for (int x = t; x != join; x = parent[x]) {
      if (!w.up[x] && w.flow[x] <= delta) {
        delta = w.flow[x];
        u_out = x;
        side = 2;
      }
    }
    if (u_out < 0) throw std::runtime_error("emd: unbounded cycle (internal error)");
    if (delta > 0.0) {
      for (int x = s; x != join; x = parent[x]) w.flow[x] += w.up[x] ? -delta : delta;
      for (int x = t; x != join; x = parent[x]) w.flow[x] += w.up[x] ? delta : -delta;
    }
    const int u_in = side == 1 ? s : t;
    const int v_in = side == 1 ? t : s;
    const double sigma = side == 1 ? rc : -rc;
    // path u_in = p0 -> ... -> pk = u_out
    std::vector<int>& path = w.path;
    std::vector<int>& lasts = w.lasts;
    path.clear();
    for (int x = u_in;; x = parent[x]) {
      path.push_back(x);
      if (x == u_out) break;
    }
    const int k = static_cast<int>(path.size()) - 1;
    lasts.resize(k + 1);
    int last = path[0];
    for (int i = 0; i <= k; ++i) {
      const int di = depth[path[i]];
      while (depth[w.thread[last]] > di) last = w.thread[last];
      lasts[i] = last;
    }
    // save the old thread links needed for the splice
    std::vector<int>& sv = w.saved;
    sv.resize(3 * static_cast<size_t>(k + 1));
    for (int i = 1; i <= k; ++i) {
      sv[3 * i] = w.thread[path[i]];
      sv[3 * i + 1] = w.rev_thread[path[i - 1]];
      sv[3 * i + 2] = w.thread[lasts[i - 1]];
    }
    // cut the subtree of u_out out of the thread
    {
      const int prev = w.rev_thread[u_out], next = w.thread[lasts[k]];
      link(prev, next);
    }
    // re-order it as a preorder rooted at u_in
    int tail = lasts[0];
    for (int i = 1; i <= k; ++i) {
      link(tail, path[i]);
      tail = path[i];
      if (sv[3 * i] != path[i - 1]) {
        link(tail, sv[3 * i]);
        tail = sv[3 * i + 1];
      }
      if (lasts[i - 1] != lasts[i]) {
        link(tail, sv[3 * i + 2]);
        tail = lasts[i];
      }
    }
    // hang it under v_in
    {
      const int next = w.thread[v_in];
      link(v_in, path[0]);
      link(tail, next);
    }
    // reverse the path's tree arcs
    const int out_arc = w.pred[u_out];
    if (out_arc >= 0) w.in_tree[out_arc] = 0;
    for (int i = k; i >= 1; --i) {
      parent[path[i]] = path[i - 1];
      w.pred[path[i]] = w.pred[path[i - 1]];
      w.up[path[i]] = !w.up[path[i - 1]];
      w.flow[path[i]] = w.flow[path[i - 1]];
    }
    parent[u_in] = v_in;
    w.pred[u_in] = static_cast<int>(e);
    w.up[u_in] = side == 1 ? 1 : 0;
    w.flow[u_in] = delta;
    w.in_tree[e] = 1;
    // depth and potentials over the moved subtree (preorder: parents first)
    for (int x = u_in;; x = w.thread[x]) {
      depth[x] = depth[parent[x]] + 1;
      w.pot[x] += sigma;
      if (x == tail) break;
    }
  }
};

}  // namespace

double emd_solve(int m, int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                 int64_t max_iter, int* status) {
  if (m < 0 || n < 0) throw std::invalid_argument("emd: negative size");
  if (static_cast<int64_t>(m) * n >= (int64_t(1) << 31) - 1)
    throw std::invalid_argument("emd: m * n must be below 2^31");
  ws.m = m;
  ws.n = n;
  ws.C_full = C;
  ws.rows.clear();
  ws.cols.clear();
  double sa = 0.0, sb = 0.0;
  for (int i = 0; i < m; ++i)
    if (a[i] > 0) {
      ws.rows.push_back(i);
      sa += a[i];
    }
  for (int j = 0; j < n; ++j)
    if (b[j] > 0) {
      ws.cols.push_back(j);
      sb += b[j];
    }
  ws.mm = static_cast<int>(ws.rows.size());
  ws.nn = static_cast<int>(ws.cols.size());
  ws.n_pivots = 0;
  if (ws.mm == 0 || ws.nn == 0) {
    // nothing to move (or all mass on one side only: infeasible unless both are empty)
    ws.C = C;
    if (status) *status = (ws.mm == 0 && ws.nn == 0) ? EMD_OPTIMAL : EMD_INFEASIBLE;
    ws.parent.clear();
    return 0.0;
  }
  const int mm = ws.mm, nn = ws.nn;
  if (mm <= kTinyDim && nn <= kTinyDim)
    return emd_tiny(n, a, b, C, ws, max_iter, std::max(sa, sb), status);
  if (ws.cost_only && std::min(mm, nn) <= kTinyDim && std::max(mm, nn) <= kTinyWide)
    return emd_tiny_tall(n, a, b, C, ws, max_iter, std::max(sa, sb), status);
  if (ws.cost_only && mm <= kTinyWide && nn <= kTinyWide)
    return emd_tiny_wide(n, a, b, C, ws, max_iter, std::max(sa, sb), status);
  // compressed supplies/demands; cost view (copy only when something was dropped)
  ws.flow.resize(mm + nn + 1);
  std::vector<double>& ab = ws.ab;
  ab.resize(static_cast<size_t>(mm + nn));
  for (int i = 0; i < mm; ++i) ab[i] = a[ws.rows[i]];
  for (int j = 0; j < nn; ++j) ab[mm + j] = b[ws.cols[j]];
  if (mm == m && nn == n) {
    ws.C = C;
  } else {
    ws.cost.resize(static_cast<size_t>(mm) * nn);
    for (int i = 0; i < mm; ++i) {
      const double* Ci = C + static_cast<int64_t>(ws.rows[i]) * n;
      double* Di = ws.cost.data() + static_cast<int64_t>(i) * nn;
      for (int j = 0; j < nn; ++j) Di[j] = Ci[ws.cols[j]];
    }
    ws.C = ws.cost.data();
  }
  Solver S(ws);
  S.mm = mm;
  S.nn = nn;
  const bool small = static_cast<int64_t>(mm) * nn <= kSmallArcs;
  if (!S.init(ab.data(), ab.data() + mm, ws.C)) {
    ws.parent.clear();
    if (status) *status = EMD_NONFINITE;
    return std::numeric_limits<double>::quiet_NaN();
  }
  int st = EMD_OPTIMAL;
  for (;;) {
    if (max_iter > 0 && ws.n_pivots >= max_iter) {
      st = EMD_MAX_ITER;
      break;
    }
    double rc;
    const int64_t e = small ? S.find_entering_dantzig(rc) : S.find_entering(rc);
    if (e < 0) break;
    S.pivot(e, rc);
    ++ws.n_pivots;
  }
  // cost over real tree arcs; residual flow on artificial arcs means unequal masses
  double cost = 0.0, art_flow = 0.0;
  for (int u = 0; u < mm + nn; ++u) {
    const int arc = ws.pred[u];
    if (arc >= 0)
      cost += ws.flow[u] * ws.C[arc];
    else
      art_flow += ws.flow[u];
  }
  if (st == EMD_OPTIMAL && art_flow > 1e-9 * std::max(sa, sb)) st = EMD_INFEASIBLE;
  // Recompute potentials from the tree in one preorder pass (removes the rounding that the
  // pivots accumulated). Each subtree of the root keeps its offset, shifted so that the
  // first one starts at zero: the large artificial cost cancels out of the duals.
  {
    const int R = mm + nn;
    const double shift = ws.pot[ws.thread[R]];
    for (int x = ws.thread[R]; x != R; x = ws.thread[x]) {
      const int p = ws.parent[x];
      if (p == R) {
        ws.pot[x] -= shift;
      } else {
        const double c = ws.C[ws.pred[x]];
        ws.pot[x] = ws.up[x] ? ws.pot[p] + c : ws.pot[p] - c;
      }
    }
  }
  if (status) *status = st;
  return cost;
}

void emd_plan_dense(const EmdWorkspace& ws, double* P) {
  std::fill(P, P + static_cast<int64_t>(ws.m) * ws.n, 0.0);
  if (ws.parent.empty()) return;
  for (int u = 0; u < ws.mm + ws.nn; ++u) {
    const int arc = ws.pred[u];
    if (arc >= 0 && ws.flow[u] > 0) {
      const int i = ws.rows[arc / ws.nn], j = ws.cols[arc % ws.nn];
      P[static_cast<int64_t>(i) * ws.n + j] += ws.flow[u];
    }
  }
}

void emd_plan_sparse(const EmdWorkspace& ws, std::vector<int64_t>& ri, std::vector<int64_t>& ci,
                     std::vector<double>& val) {
  if (ws.parent.empty()) return;
  for (int u = 0; u < ws.mm + ws.nn; ++u) {
    const int arc = ws.pred[u];
    if (arc >= 0 && ws.flow[u] > 0) {
      ri.push_back(ws.rows[arc / ws.nn]);
      ci.push_back(ws.cols[arc % ws.nn]);
      val.push_back(ws.flow[u]);
    }
  }
}

void emd_duals(const EmdWorkspace& ws, double* f, double* g) {
  const int m = ws.m, n = ws.n, mm = ws.mm, nn = ws.nn;
  if (ws.parent.empty()) {
    std::fill(f, f + m, 0.0);
    std::fill(g, g + n, 0.0);
    return;
  }
  // (emd_solve already removed the artificial offset; any shift f + c, g - c is as good)
  const double shift = 0.0;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<char> keep_r(m, 0), keep_c(n, 0);
  for (int i = 0; i < mm; ++i) {
    f[ws.rows[i]] = ws.pot[i] - shift;
    keep_r[ws.rows[i]] = 1;
  }
  for (int j = 0; j < nn; ++j) {
    g[ws.cols[j]] = -ws.pot[mm + j] + shift;
    keep_c[ws.cols[j]] = 1;
  }
  // c-transforms for dropped bins: g_j = min over kept rows of C_ij - f_i, then
  // f_i = min over all columns of C_ij - g_j: feasible, and these bins carry no mass
  if (mm == m && nn == n) return;
  const double* C = ws.C_full;
  for (int j = 0; j < n; ++j) {
    if (keep_c[j]) continue;
    double v = inf;
    for (int i = 0; i < mm; ++i) {
      const int r = ws.rows[i];
      v = std::min(v, C[static_cast<int64_t>(r) * n + j] - f[r]);
    }
    g[j] = v < inf ? v : 0.0;  // only forbidden (+inf) arcs: any finite value is feasible
  }
  for (int i = 0; i < m; ++i) {
    if (keep_r[i]) continue;
    const double* Ci = C + static_cast<int64_t>(i) * n;
    double v = inf;
    for (int j = 0; j < n; ++j) v = std::min(v, Ci[j] - g[j]);
    f[i] = v < inf ? v : 0.0;
  }
}

void emd_batched(int64_t B, const double* a, const int64_t* a_off, const double* b,
                 const int64_t* b_off, const double* C, const int64_t* c_off, int64_t max_iter,
                 int n_jobs, double* cost, int* status, double* plans) {
  const int nt = resolve_threads(n_jobs);
  OmpErrors errors;  // emd_solve allocates and throws on bad sizes
#pragma omp parallel num_threads(nt)
  {
    EmdWorkspace ws;
#pragma omp for schedule(dynamic, 16)
    for (int64_t k = 0; k < B; ++k)
      errors.run([&] {
        const int m = static_cast<int>(a_off[k + 1] - a_off[k]);
        const int n = static_cast<int>(b_off[k + 1] - b_off[k]);
        int st = EMD_OPTIMAL;
        cost[k] = emd_solve(m, n, a + a_off[k], b + b_off[k], C + c_off[k], ws, max_iter, &st);
        status[k] = st;
        if (plans) emd_plan_dense(ws, plans + c_off[k]);
      });
  }
  errors.rethrow();
}

}  // namespace geoml
