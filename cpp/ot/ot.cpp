// Optimal transport kernels (see ot.hpp).
#include "ot.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "common/common.hpp"
#include "common/simd.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif
#if GEOML_SIMD_X86
// loops compiled for AVX2 and for the baseline, picked at load time; AVX2+FMA kernels
// (called only when simd_isa() says the CPU has them)
#define GEOML_OT_CLONES __attribute__((target_clones("avx2", "default")))
#define GEOML_AVX2 __attribute__((target("avx2,fma")))
#else
#define GEOML_OT_CLONES
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

constexpr double kRcRel = 1e-13;  // relative reduced-cost tolerance for entering arcs
// problems with at most this many arcs use Dantzig pricing (a full scan per pivot)
constexpr int64_t kSmallArcs = 1024;

// Dantzig scan of a dense m x n problem: the arc (i, j) minimising C_ij + h_j - p_i (the
// first one on ties), with that value in *best; -1 and 0 when none is negative. The AVX2
// path takes each row's minimum with two independent min chains (rows overlap in the
// pipeline), keeps the best row, then locates the column in that row alone.
#if GEOML_SIMD_X86
GEOML_AVX2 int64_t dantzig_avx2(int m, int n, const double* C, const double* p, const double* h,
                                double* best_out) {
  const __m256d inf = _mm256_set1_pd(std::numeric_limits<double>::infinity());
  double best = 0.0;
  int bi = -1;
  for (int i = 0; i < m; ++i) {
    const double* Ci = C + static_cast<int64_t>(i) * n;
    const __m256d pi = _mm256_set1_pd(p[i]);
    __m256d m0 = inf, m1 = inf;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      m0 = _mm256_min_pd(
          m0, _mm256_sub_pd(_mm256_add_pd(_mm256_loadu_pd(Ci + j), _mm256_loadu_pd(h + j)), pi));
      m1 = _mm256_min_pd(m1, _mm256_sub_pd(_mm256_add_pd(_mm256_loadu_pd(Ci + j + 4),
                                                         _mm256_loadu_pd(h + j + 4)), pi));
    }
    if (j + 4 <= n) {
      m0 = _mm256_min_pd(
          m0, _mm256_sub_pd(_mm256_add_pd(_mm256_loadu_pd(Ci + j), _mm256_loadu_pd(h + j)), pi));
      j += 4;
    }
    m0 = _mm256_min_pd(m0, m1);
    const __m128d q = _mm_min_pd(_mm256_castpd256_pd128(m0), _mm256_extractf128_pd(m0, 1));
    double rm = _mm_cvtsd_f64(_mm_min_sd(q, _mm_unpackhi_pd(q, q)));
    for (; j < n; ++j) rm = std::min(rm, (Ci[j] + h[j]) - p[i]);
    if (rm < best) {
      best = rm;
      bi = i;
    }
  }
  *best_out = best;
  if (bi < 0) return -1;
  const double* Ci = C + static_cast<int64_t>(bi) * n;
  int j = 0;
  while ((Ci[j] + h[j]) - p[bi] != best) ++j;
  return static_cast<int64_t>(bi) * n + j;
}
#endif

int64_t dantzig_scan(int m, int n, const double* C, const double* p, const double* h,
                     double* best_out) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return dantzig_avx2(m, n, C, p, h, best_out);
#endif
  double vmin = 0.0;
  int64_t k = -1;
  for (int i = 0; i < m; ++i) {
    const double* Ci = C + static_cast<int64_t>(i) * n;
    for (int j = 0; j < n; ++j) {
      const double r = (Ci[j] + h[j]) - p[i];
      if (r < vmin) {
        vmin = r;
        k = static_cast<int64_t>(i) * n + j;
      }
    }
  }
  *best_out = vmin;
  return k;
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

  // Artificial-root start; false (nothing else done) when some cost is NaN or infinite.
  bool init(const double* a, const double* b, const double* cost) {
    C = cost;
    narcs = static_cast<int64_t>(mm) * nn;
    N = mm + nn + 1;
    R = N - 1;
    double cmax = 0.0;
    bool finite = true;
    for (int64_t k = 0; k < narcs; ++k) {
      const double c = std::fabs(C[k]);
      finite &= c <= std::numeric_limits<double>::max();
      cmax = std::max(cmax, c);
    }
    if (!finite) return false;
    art = (cmax + 1.0) * static_cast<double>(N);
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

// ---------------------------------------------------------------- tiny dense problems
//
// Problems with at most kTinyDim rows and columns (after dropping zero-mass bins; e.g. the
// many 16x16 problems of emd_batched or Ollivier-Ricci curvature) run the same network
// simplex (artificial-root start, the same strongly feasible pivot) on fixed-size arrays
// inside one stack object: no allocation, no indirection through the workspace, all in L1.
// Node ids: sources 0..mm-1, sinks kTinyDim + j, root 2 kTinyDim, so the sink potentials
// h = pot + kTinyDim are contiguous, 32-byte aligned and zero up to the root. The tree is
// kept as parent pointers plus one 64-bit subtree set per node (no thread, no depth).
// The cost is copied into buffers with rows padded to a multiple of the SIMD width (padding
// +inf), so pricing is a vertical min over whole rows, one horizontal reduction per scan:
// in float32 first (AVX2), the candidate re-priced in float64; the exact float64 Dantzig
// scan runs when that candidate does not enter, and certifies optimality.

constexpr int kTinyDim = 32;
constexpr int kTinyRoot = 2 * kTinyDim;
constexpr int kTinyNodes = kTinyRoot + 1;

/// Dantzig scan of a tiny problem: the arc (i, j) minimising (Cp_ij + h_j) - p_i over the
/// mm rows of Cp (stride W), returned in *io, *jo when that minimum is negative; returns the
/// minimum (0 when none is negative). O(mm W).
using TinyScan = double (*)(int mm, int W, const double* Cp, const double* p, const double* h,
                            int* io, int* jo);

double tiny_scan_generic(int mm, int W, const double* Cp, const double* p, const double* h,
                         int* io, int* jo) {
  double best = 0.0;
  for (int i = 0; i < mm; ++i) {
    const double* Ci = Cp + i * W;
    for (int j = 0; j < W; ++j) {
      const double r = (Ci[j] + h[j]) - p[i];
      if (r < best) {
        best = r;
        *io = i;
        *jo = j;
      }
    }
  }
  return best;
}

#if GEOML_SIMD_X86
// Vertical min over rows (NV vectors per row, in named registers: GCC keeps arrays of
// __m256d on the stack), one horizontal reduction; the column from a compare mask over the
// accumulators and the row from a compare pass down that column: no data-dependent branch.
template <int NV>
GEOML_AVX2 double tiny_scan_avx2(int mm, int, const double* Cp, const double* p,
                                 const double* h, int* io, int* jo) {
  constexpr int W = 4 * NV;
  const __m256d zero = _mm256_setzero_pd();
  __m256d h0 = zero, h1 = zero, h2 = zero, h3 = zero, h4 = zero, h5 = zero, h6 = zero,
          h7 = zero;
  __m256d a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero,
          a7 = zero;
#define GEOML_TINY_LANES(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define GEOML_TINY_LOAD_H(v) \
  if constexpr (NV > v) h##v = _mm256_load_pd(h + 4 * v);
  GEOML_TINY_LANES(GEOML_TINY_LOAD_H)
  for (int i = 0; i < mm; ++i) {
    const double* Ci = Cp + i * W;
    const __m256d pi = _mm256_broadcast_sd(p + i);
#define GEOML_TINY_MIN(v)                                                             \
  if constexpr (NV > v)                                                               \
    a##v = _mm256_min_pd(a##v,                                                        \
                         _mm256_sub_pd(_mm256_add_pd(_mm256_load_pd(Ci + 4 * v), h##v), pi));
    GEOML_TINY_LANES(GEOML_TINY_MIN)
  }
  __m256d mn = a0;
#define GEOML_TINY_REDUCE(v) \
  if constexpr (NV > v && v > 0) mn = _mm256_min_pd(mn, a##v);
  GEOML_TINY_LANES(GEOML_TINY_REDUCE)
  const __m128d q = _mm_min_pd(_mm256_castpd256_pd128(mn), _mm256_extractf128_pd(mn, 1));
  const double best = _mm_cvtsd_f64(_mm_min_sd(q, _mm_unpackhi_pd(q, q)));
  if (!(best < 0.0)) return best;
  const __m256d bv = _mm256_set1_pd(best);
  unsigned cols = 0;
#define GEOML_TINY_MASK(v)                                                               \
  if constexpr (NV > v)                                                                  \
    cols |= static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(a##v, bv, _CMP_EQ_OQ))) \
            << (4 * v);
  GEOML_TINY_LANES(GEOML_TINY_MASK)
#undef GEOML_TINY_LANES
#undef GEOML_TINY_LOAD_H
#undef GEOML_TINY_MIN
#undef GEOML_TINY_REDUCE
#undef GEOML_TINY_MASK
  const int j = __builtin_ctz(cols);
  unsigned rows = 0;
  for (int i = 0; i < mm; ++i) rows |= unsigned((Cp[i * W + j] + h[j]) - p[i] == best) << i;
  *io = __builtin_ctz(rows);
  *jo = j;
  return best;
}
#endif

/// The pricing routine for rows of stride W (a multiple of 4, at most kTinyDim).
TinyScan tiny_scan_for(int W) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) {
    static const TinyScan table[kTinyDim / 4] = {
        tiny_scan_avx2<1>, tiny_scan_avx2<2>, tiny_scan_avx2<3>, tiny_scan_avx2<4>,
        tiny_scan_avx2<5>, tiny_scan_avx2<6>, tiny_scan_avx2<7>, tiny_scan_avx2<8>};
    return table[W / 4 - 1];
  }
#endif
  (void)W;
  return tiny_scan_generic;
}

/// Float32 pre-pricing of a tiny problem (AVX2 only): the arc minimising
/// (Cf_ij + hf_j) - pf_i in float over the mm rows of Cf (stride Wf = 8 NV), in *io, *jo
/// when that minimum is negative; returns it. Twice the lanes of the float64 scan and two
/// interleaved row chains; the caller re-prices the chosen arc in float64 and falls back to
/// the exact scan when it is not entering there (and to certify optimality).
using TinyScan32 = float (*)(int mm, const float* Cf, const float* CfT, const float* pf,
                             const float* hf, int* io, int* jo);

#if GEOML_SIMD_X86
template <int NV>
GEOML_AVX2 float tiny_scan32_avx2(int mm, const float* Cf, const float* CfT, const float* pf,
                                  const float* hf, int* io, int* jo) {
  constexpr int W = 8 * NV;
  const __m256 zero = _mm256_setzero_ps();
  __m256 h0 = zero, h1 = zero, h2 = zero, h3 = zero;
  __m256 a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero,
         b3 = zero;
#define GEOML_TINY_LANES(X) X(0) X(1) X(2) X(3)
#define GEOML_TINY_LOAD_H(v) \
  if constexpr (NV > v) h##v = _mm256_load_ps(hf + 8 * v);
  GEOML_TINY_LANES(GEOML_TINY_LOAD_H)
#define GEOML_TINY_MIN(acc, row, pi, v) \
  if constexpr (NV > v)                 \
    acc = _mm256_min_ps(acc, _mm256_sub_ps(_mm256_add_ps(_mm256_load_ps(row + 8 * v), h##v), pi));
#define GEOML_TINY_MIN_A(v) GEOML_TINY_MIN(a##v, C0, p0, v)
#define GEOML_TINY_MIN_B(v) GEOML_TINY_MIN(b##v, C1, p1, v)
  int i = 0;
  for (; i + 2 <= mm; i += 2) {
    const float* C0 = Cf + i * W;
    const float* C1 = C0 + W;
    const __m256 p0 = _mm256_broadcast_ss(pf + i), p1 = _mm256_broadcast_ss(pf + i + 1);
    GEOML_TINY_LANES(GEOML_TINY_MIN_A)
    GEOML_TINY_LANES(GEOML_TINY_MIN_B)
  }
  if (i < mm) {
    const float* C0 = Cf + i * W;
    const __m256 p0 = _mm256_broadcast_ss(pf + i);
    GEOML_TINY_LANES(GEOML_TINY_MIN_A)
  }
#define GEOML_TINY_MERGE(v) \
  if constexpr (NV > v) a##v = _mm256_min_ps(a##v, b##v);
  GEOML_TINY_LANES(GEOML_TINY_MERGE)
  __m256 mn = a0;
#define GEOML_TINY_REDUCE(v) \
  if constexpr (NV > v && v > 0) mn = _mm256_min_ps(mn, a##v);
  GEOML_TINY_LANES(GEOML_TINY_REDUCE)
  __m128 q = _mm_min_ps(_mm256_castps256_ps128(mn), _mm256_extractf128_ps(mn, 1));
  q = _mm_min_ps(q, _mm_movehl_ps(q, q));
  const float best = _mm_cvtss_f32(_mm_min_ss(q, _mm_shuffle_ps(q, q, 1)));
  if (!(best < 0.0f)) return best;
  const __m256 bv = _mm256_set1_ps(best);
  unsigned cols = 0;
#define GEOML_TINY_MASK(v)                                                                 \
  if constexpr (NV > v)                                                                    \
    cols |= static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a##v, bv, _CMP_EQ_OQ))) \
            << (8 * v);
  GEOML_TINY_LANES(GEOML_TINY_MASK)
#undef GEOML_TINY_LANES
#undef GEOML_TINY_LOAD_H
#undef GEOML_TINY_MIN
#undef GEOML_TINY_MIN_A
#undef GEOML_TINY_MIN_B
#undef GEOML_TINY_MERGE
#undef GEOML_TINY_REDUCE
#undef GEOML_TINY_MASK
  const int j = __builtin_ctz(cols);
  const float* Tj = CfT + j * kTinyDim;
  const __m256 hj = _mm256_broadcast_ss(hf + j);
  unsigned rows = 0;
  for (int r = 0; r < mm; r += 8)
    rows |= static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(
                _mm256_sub_ps(_mm256_add_ps(_mm256_load_ps(Tj + r), hj), _mm256_load_ps(pf + r)),
                bv, _CMP_EQ_OQ)))
            << r;
  *io = __builtin_ctz(rows);
  *jo = j;
  return best;
}
#endif

/// The float32 pre-pricing for rows of stride Wf (a multiple of 8, at most kTinyDim), or
/// null without AVX2 (the float64 scan alone is used then).
TinyScan32 tiny_scan32_for(int Wf) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) {
    static const TinyScan32 table[kTinyDim / 8] = {
        tiny_scan32_avx2<1>, tiny_scan32_avx2<2>, tiny_scan32_avx2<3>, tiny_scan32_avx2<4>};
    return table[Wf / 8 - 1];
  }
#endif
  (void)Wf;
  return nullptr;
}

/// The network simplex of `Solver` on a tiny problem, every array in the object (about
/// 20 KB, meant for the stack; nothing is initialised beyond what `init` writes). With at
/// most 64 non-root nodes the tree needs no thread or depth: each node keeps the bit set of
/// its subtree (D, root excluded), so the join of a cycle is the first node above s whose
/// set holds t, the subtree that moves is one word, and its potentials are shifted by
/// walking its bits. A pivot costs O(cycle + moved subtree) with no pointer chasing through
/// the subtree.
struct TinySolver {
  int mm = 0, nn = 0, W = 0;
  int parent[kTinyNodes], pred[kTinyNodes];
  unsigned char up[kTinyNodes];
  uint64_t D[kTinyNodes];  // subtree of each node as a bit set (the root's: all ones)
  double flow[kTinyNodes];
  alignas(32) double pot[kTinyNodes];
  alignas(32) double Cp[kTinyDim * kTinyDim];
  // float32 copies for the pre-pricing: cost (stride Wf = nn rounded up to 8), transposed
  // (rows padded to 8), potentials
  int Wf = 0;
  alignas(32) float Cf[kTinyDim * kTinyDim];
  alignas(32) float CfT[kTinyDim * kTinyDim];
  alignas(32) float potf[kTinyNodes];
  int cs[kTinyNodes], ct[kTinyNodes];  // the cycle's sides (s and t up to the join)

  /// Copies the kept rows/columns of C (m x n) into Cp and builds the artificial-root
  /// tree; returns false when some kept cost is NaN or infinite. O(mm W).
  bool init(int n, const double* a, const double* b, const double* C, const int* rows,
            const int* cols, bool all_cols) {
    W = (nn + 3) & ~3;
    Wf = (nn + 7) & ~7;
    double cmax = 0.0;
    bool finite = true;
    for (int i = 0; i < mm; ++i) {
      const double* Ci = C + static_cast<int64_t>(rows[i]) * n;
      double* Di = Cp + i * W;
      for (int j = 0; j < nn; ++j) {  // one pass: copy, transpose, finiteness and max |c|
        const double c = all_cols ? Ci[j] : Ci[cols[j]];
        Di[j] = c;
        Cf[i * Wf + j] = static_cast<float>(c);
        CfT[j * kTinyDim + i] = static_cast<float>(c);
        finite &= std::fabs(c) <= std::numeric_limits<double>::max();
        cmax = std::max(cmax, std::fabs(c));
      }
      for (int j = nn; j < W; ++j) Di[j] = std::numeric_limits<double>::infinity();
      for (int j = nn; j < Wf; ++j) Cf[i * Wf + j] = std::numeric_limits<float>::infinity();
    }
    if (!finite) return false;
    for (int j = 0; j < nn; ++j)
      for (int i = mm; i < ((mm + 7) & ~7); ++i)
        CfT[j * kTinyDim + i] = std::numeric_limits<float>::infinity();
    const double art = (cmax + 1.0) * static_cast<double>(mm + nn + 1);
    for (int u = mm; u < kTinyRoot; ++u) pot[u] = 0.0;  // padding stays 0
    for (int i = 0; i < mm; ++i) {
      parent[i] = kTinyRoot;
      pred[i] = -1 - i;
      up[i] = 1;
      D[i] = uint64_t(1) << i;
      flow[i] = a[rows[i]];
      pot[i] = art;
    }
    for (int j = 0; j < nn; ++j) {
      const int u = kTinyDim + j;
      parent[u] = kTinyRoot;
      pred[u] = -1 - u;
      up[u] = 0;
      D[u] = uint64_t(1) << u;
      flow[u] = b[cols[j]];
      pot[u] = -art;
    }
    parent[kTinyRoot] = -1;
    D[kTinyRoot] = ~uint64_t(0);
    pot[kTinyRoot] = 0.0;
    for (int u = 0; u < kTinyNodes; ++u) potf[u] = static_cast<float>(pot[u]);
    return true;
  }

  /// One pivot on entering arc (i, j) with reduced cost rc < 0: the pivot of
  /// Solver::pivot (same leaving arc, same new tree).
  void pivot(int ei, int ej, double rc) {
    const int s = ei, t = kTinyDim + ej;
    const uint64_t bs = uint64_t(1) << s, bt = uint64_t(1) << t;
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
    const uint64_t M = D[u_out];
    for (int q = k + 1; q < n_path; ++q) D[path[q]] &= ~M;
    for (int q = 0; q < n_other; ++q) D[other[q]] |= M;
    // re-root M at u_in: reverse the path's arcs; the subtree of path[q] becomes its old one
    // minus path[q-1]'s, plus path[q+1]'s new one
    uint64_t below = 0;
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
    for (uint64_t r = M; r; r &= r - 1) {
      const int x = __builtin_ctzll(r);
      pot[x] += sigma;
      potf[x] = static_cast<float>(pot[x]);
    }
  }
};

/// emd_solve for mm, nn <= kTinyDim (ws.rows/cols/mm/nn already set): solves on a
/// TinySolver, then stores the final tree in ws (pred as compressed arc ids) for
/// emd_plan_*/emd_duals. Returns the cost; *status as emd_solve, or EMD_NONFINITE.
double emd_tiny(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                int64_t max_iter, double mass, int* status) {
  TinySolver S;
  const int mm = ws.mm, nn = ws.nn;
  S.mm = mm;
  S.nn = nn;
  if (!S.init(n, a, b, C, ws.rows.data(), ws.cols.data(), nn == n)) {
    ws.parent.clear();
    if (status) *status = EMD_NONFINITE;
    return std::numeric_limits<double>::quiet_NaN();
  }
  const int W = S.W;
  const TinyScan scan = tiny_scan_for(W);
  const TinyScan32 scan32 = tiny_scan32_for(S.Wf);
  const double* p = S.pot;
  const double* h = S.pot + kTinyDim;
  // float64 reduced cost of arc (i, j) if it may enter (below the relative tolerance), else 0
  auto entering = [&](int i, int j) {
    const double rc = (S.Cp[i * W + j] + h[j]) - p[i];
    const double scale = std::fabs(S.Cp[i * W + j]) + std::fabs(p[i]) + std::fabs(h[j]);
    return rc < -kRcRel * scale ? rc : 0.0;
  };
  int st = EMD_OPTIMAL;
  int64_t piv = 0;
  for (;; ++piv) {
    if (max_iter > 0 && piv >= max_iter) {
      st = EMD_MAX_ITER;
      break;
    }
    int i = 0, j = 0;
    double rc = 0.0;
    if (scan32 && scan32(mm, S.Cf, S.CfT, S.potf, S.potf + kTinyDim, &i, &j) < 0.0f)
      rc = entering(i, j);
    if (rc == 0.0) {  // exact Dantzig scan: no float candidate, or it does not enter
      if (!(scan(mm, W, S.Cp, p, h, &i, &j) < 0.0)) break;
      rc = entering(i, j);
      if (rc == 0.0) break;
    }
    S.pivot(i, j, rc);
  }
  ws.n_pivots = piv;
  // live nodes in emd_solve's numbering (sinks at mm + j, root mm + nn)
  int nodes[2 * kTinyDim];
  for (int i = 0; i < mm; ++i) nodes[i] = i;
  for (int j = 0; j < nn; ++j) nodes[mm + j] = kTinyDim + j;
  // cost over real tree arcs; residual flow on artificial arcs means unequal masses
  double cost = 0.0, art_flow = 0.0;
  for (int u = 0; u < mm + nn; ++u) {
    const int x = nodes[u];
    if (S.pred[x] >= 0)
      cost += S.flow[x] * S.Cp[S.pred[x]];
    else
      art_flow += S.flow[x];
  }
  if (st == EMD_OPTIMAL && art_flow > 1e-9 * mass) st = EMD_INFEASIBLE;
  // exact potentials from the tree, parents first (as emd_solve): children of the root keep
  // theirs, less that of the first one; every other node is its parent's across its arc
  uint64_t done = 0;
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
      done |= uint64_t(1) << x;
    }
  }
  // the tree in emd_solve's numbering
  const int N = mm + nn + 1;
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

double emd_solve(int m, int n, const double* a, const double* b, const double* C,
                 EmdWorkspace& ws, int64_t max_iter, int* status) {
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
    g[j] = v;
  }
  for (int i = 0; i < m; ++i) {
    if (keep_r[i]) continue;
    const double* Ci = C + static_cast<int64_t>(i) * n;
    double v = inf;
    for (int j = 0; j < n; ++j) v = std::min(v, Ci[j] - g[j]);
    f[i] = v;
  }
}

void emd_batched(int64_t B, const double* a, const int64_t* a_off, const double* b,
                 const int64_t* b_off, const double* C, const int64_t* c_off, int64_t max_iter,
                 int n_jobs, double* cost, int* status, double* plans) {
  const int nt = resolve_threads(n_jobs);
#pragma omp parallel num_threads(nt)
  {
    EmdWorkspace ws;
#pragma omp for schedule(dynamic, 16)
    for (int64_t k = 0; k < B; ++k) {
      const int m = static_cast<int>(a_off[k + 1] - a_off[k]);
      const int n = static_cast<int>(b_off[k + 1] - b_off[k]);
      int st = EMD_OPTIMAL;
      cost[k] = emd_solve(m, n, a + a_off[k], b + b_off[k], C + c_off[k], ws, max_iter, &st);
      status[k] = st;
      if (plans) emd_plan_dense(ws, plans + c_off[k]);
    }
  }
}

}  // namespace geoml

// ====================================================================== Sinkhorn

namespace geoml {

namespace {

// exp(x) for x <= 0 (clamped below at -708, where it is ~0): Cody-Waite reduction
// x = k ln2 + r, |r| <= ln2/2, degree-12 Taylor polynomial, 2^k by exponent bits.
// Relative error ~2e-16. Branch-free, so loops over it vectorise.
inline double exp_neg(double x) {
  x = std::max(x, -708.0);
  const double magic = 6755399441055744.0;  // 1.5 * 2^52: round to nearest integer
  const double t = x * 1.4426950408889634 + magic;
  const double k = t - magic;
  const double r = (x - k * 0.6931471805599453) - k * 2.3190468138462996e-17;
  double q = 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  q = q * r + 1.0;
  int64_t tb, mb;
  std::memcpy(&tb, &t, 8);
  std::memcpy(&mb, &magic, 8);
  const int64_t bits = (tb - mb + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, 8);
  return q * scale;
}

#if GEOML_SIMD_X86

// exp_neg on 4 lanes (same algorithm as the scalar version).
GEOML_AVX2 inline __m256d exp_neg4(__m256d x) {
  x = _mm256_max_pd(x, _mm256_set1_pd(-708.0));
  const __m256d magic = _mm256_set1_pd(6755399441055744.0);
  const __m256d t = _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634), magic);
  const __m256d k = _mm256_sub_pd(t, magic);
  __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0.6931471805599453), x);
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(2.3190468138462996e-17), r);
  static const double c[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                               1.0 / 362880.0,    1.0 / 40320.0,    1.0 / 5040.0,
                               1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,
                               1.0 / 6.0,         0.5,              1.0,
                               1.0};
  __m256d q = _mm256_set1_pd(c[0]);
  for (int i = 1; i < 13; ++i) q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(c[i]));
  const __m256i bits = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(magic)),
                       _mm256_set1_epi64x(1023)),
      52);
  return _mm256_mul_pd(q, _mm256_castsi256_pd(bits));
}

// max_j (h_j - c_j); sum_j exp((h_j - c_j - mx) ie) and sum_j of that times c_j.
GEOML_AVX2 double lse_max_avx2(int n, const double* h, const double* c) {
  __m256d m4 = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
  int j = 0;
  for (; j + 4 <= n; j += 4)
    m4 = _mm256_max_pd(m4, _mm256_sub_pd(_mm256_loadu_pd(h + j), _mm256_loadu_pd(c + j)));
  alignas(32) double t[4];
  _mm256_store_pd(t, m4);
  double mx = std::max(std::max(t[0], t[1]), std::max(t[2], t[3]));
  for (; j < n; ++j) mx = std::max(mx, h[j] - c[j]);
  return mx;
}
GEOML_AVX2 double lse_sum_avx2(int n, const double* h, const double* c, double mx, double ie,
                               double* wsum) {
  const __m256d vmx = _mm256_set1_pd(mx), vie = _mm256_set1_pd(ie);
  __m256d s4 = _mm256_setzero_pd(), w4 = _mm256_setzero_pd();
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const __m256d cj = _mm256_loadu_pd(c + j);
    const __m256d z = _mm256_mul_pd(_mm256_sub_pd(_mm256_sub_pd(_mm256_loadu_pd(h + j), cj), vmx), vie);
    const __m256d e = exp_neg4(z);
    s4 = _mm256_add_pd(s4, e);
    if (wsum) w4 = _mm256_fmadd_pd(e, cj, w4);
  }
  alignas(32) double t[4], u[4];
  _mm256_store_pd(t, s4);
  _mm256_store_pd(u, w4);
  double s = (t[0] + t[1]) + (t[2] + t[3]), w = (u[0] + u[1]) + (u[2] + u[3]);
  for (; j < n; ++j) {
    const double e = exp_neg((h[j] - c[j] - mx) * ie);
    s += e;
    w += e * c[j];
  }
  if (wsum) *wsum = w;
  return s;
}
#endif

double lse_max(int n, const double* h, const double* c) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return lse_max_avx2(n, h, c);
#endif
  double mx = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < n; ++j) mx = std::max(mx, h[j] - c[j]);
  return mx;
}
double lse_sum(int n, const double* h, const double* c, double mx, double ie, double* wsum) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return lse_sum_avx2(n, h, c, mx, ie, wsum);
#endif
  double s = 0.0, w = 0.0;
  for (int j = 0; j < n; ++j) {
    const double e = exp_neg((h[j] - c[j] - mx) * ie);
    s += e;
    w += e * c[j];
  }
  if (wsum) *wsum = w;
  return s;
}

constexpr double kAbsorb = 50.0;           // scalings leave [e^-50, e^50]: absorb them
const double kHi = std::exp(kAbsorb), kLo = std::exp(-kAbsorb);
// the plain rate is measured from iteration kSorMin on, once three consecutive error ratios
// agree within kSorStable (relative) and are at most kSorEarlyMax (slow rates settle late),
// and at the latest over iterations kSorFrom..kSorTo
constexpr int kSorMin = 4, kSorFrom = 10, kSorTo = 20;
constexpr double kSorStable = 0.005, kSorEarlyMax = 0.8;
constexpr double kTiny = 1e-280;
constexpr int kSweepBlock = 16;  // rows per dynamically scheduled block of the sweep
// kernels with at least this many entries may be stored in float32 (smaller ones are not
// memory-bound)
constexpr int64_t kF32MinSize = int64_t(1) << 16;

// K_ij = exp((fi + gc_j - C_ij) * ie) for one row (j < n).
#if GEOML_SIMD_X86
GEOML_AVX2 void kernel_row_avx2(int n, double fi, const double* gc, const double* Ci, double ie,
                                double* Ki) {
  const __m256d vf = _mm256_set1_pd(fi), vie = _mm256_set1_pd(ie), zero = _mm256_setzero_pd();
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const __m256d z = _mm256_mul_pd(
        _mm256_sub_pd(_mm256_add_pd(vf, _mm256_loadu_pd(gc + j)), _mm256_loadu_pd(Ci + j)), vie);
    if (_mm256_movemask_pd(_mm256_cmp_pd(z, zero, _CMP_GT_OQ))) {
      for (int t = j; t < j + 4; ++t) {
        const double zt = (fi + gc[t] - Ci[t]) * ie;
        Ki[t] = zt <= 0.0 ? exp_neg(zt) : std::exp(zt);
      }
    } else {
      _mm256_storeu_pd(Ki + j, exp_neg4(z));
    }
  }
  for (; j < n; ++j) {
    const double z = (fi + gc[j] - Ci[j]) * ie;
    Ki[j] = z <= 0.0 ? exp_neg(z) : std::exp(z);
  }
}
#endif
void kernel_row(int n, double fi, const double* gc, const double* Ci, double ie, double* Ki) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return kernel_row_avx2(n, fi, gc, Ci, ie, Ki);
#endif
  for (int j = 0; j < n; ++j) {
    const double z = (fi + gc[j] - Ci[j]) * ie;
    Ki[j] = z <= 0.0 ? exp_neg(z) : std::exp(z);
  }
}

// Float32 kernel row: Ki[j] = exp(z_j), z_j = (fi + gc_j - C_ij) ie, computed in float64 and
// rounded. Returns false (row content then unspecified) when some z_j leaves
// [kZ32Lo, kZ32Hi], where exp(z) would not be a normal float.
constexpr double kZ32Lo = -87.0, kZ32Hi = 88.0;
#if GEOML_SIMD_X86
GEOML_AVX2 bool kernel_row32_avx2(int n, double fi, const double* gc, const double* Ci, double ie,
                                  float* Ki) {
  const __m256d vf = _mm256_set1_pd(fi), vie = _mm256_set1_pd(ie), zero = _mm256_setzero_pd();
  __m256d zlo = _mm256_set1_pd(std::numeric_limits<double>::infinity());
  __m256d zhi = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const __m256d z = _mm256_mul_pd(
        _mm256_sub_pd(_mm256_add_pd(vf, _mm256_loadu_pd(gc + j)), _mm256_loadu_pd(Ci + j)), vie);
    zlo = _mm256_min_pd(zlo, z);
    zhi = _mm256_max_pd(zhi, z);
    if (_mm256_movemask_pd(_mm256_cmp_pd(z, zero, _CMP_GT_OQ))) {
      for (int t = j; t < j + 4; ++t) {
        const double zt = (fi + gc[t] - Ci[t]) * ie;
        Ki[t] = static_cast<float>(zt <= 0.0 ? exp_neg(zt) : std::exp(std::min(zt, kZ32Hi)));
      }
    } else {
      _mm_storeu_ps(Ki + j, _mm256_cvtpd_ps(exp_neg4(z)));
    }
  }
  alignas(32) double lo[4], hi[4];
  _mm256_store_pd(lo, zlo);
  _mm256_store_pd(hi, zhi);
  double zmin = std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3]));
  double zmax = std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3]));
  for (; j < n; ++j) {
    const double z = (fi + gc[j] - Ci[j]) * ie;
    zmin = std::min(zmin, z);
    zmax = std::max(zmax, z);
    Ki[j] = static_cast<float>(z <= 0.0 ? exp_neg(z) : std::exp(std::min(z, kZ32Hi)));
  }
  return zmin >= kZ32Lo && zmax <= kZ32Hi;
}
#endif
bool kernel_row32(int n, double fi, const double* gc, const double* Ci, double ie, float* Ki) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return kernel_row32_avx2(n, fi, gc, Ci, ie, Ki);
#endif
  bool ok = true;
  for (int j = 0; j < n; ++j) {
    const double z = (fi + gc[j] - Ci[j]) * ie;
    ok = ok && z >= kZ32Lo && z <= kZ32Hi;
    Ki[j] = static_cast<float>(z <= 0.0 ? exp_neg(z) : std::exp(std::min(z, kZ32Hi)));
  }
  return ok;
}

// Over-relaxation x^w for x > 0: a binomial series when x is near 1 (exact at x = 1, so the
// fixed point is untouched), pow otherwise.
struct Relax {
  double w = 1.0, c[9] = {};
  void set(double omega) {
    w = omega;
    double ck = 1.0;
    for (int k = 1; k <= 8; ++k) c[k] = (ck *= (omega - (k - 1)) / k);
  }
  double operator()(double x) const {
    const double d = x - 1.0;
    if (!(std::fabs(d) <= 0.125)) return std::pow(x, w);
    double s = c[8];
    for (int k = 7; k >= 1; --k) s = s * d + c[k];
    return 1.0 + s * d;
  }
};

// One sweep of the kernel rows [i0, i1) of a stabilised Sinkhorn iteration: Kv_i = K_i . v,
// the row update of u (balanced: a_i / Kv_i; unbalanced: wr_i (a_i / Kv_i)^lam; relaxed by
// omega), and acc += u_i K_i, so that one pass over K yields K^T u for the column update.
// Rows whose Kv leaves (kTiny, 1e280) keep their u and set *bad. Balanced: adds the row
// error |u_i Kv_i - a_i| of the updated plan to *err; unbalanced: max |log(u_new / u)| to *du.
// Also tracks the range of the new u in *umin / *umax.
struct SweepOut {
  double err = 0.0, du = 0.0, umin = std::numeric_limits<double>::infinity(), umax = 0.0;
  bool bad = false;
};
// Row kernels of the sweep: K_i . v and acc += u K_i, for float64 and float32 kernel rows
// (products and sums in float64). The AVX2 versions keep four independent accumulators.
#if GEOML_SIMD_X86
GEOML_AVX2 inline __m256d load4(const double* p) { return _mm256_loadu_pd(p); }
GEOML_AVX2 inline __m256d load4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
template <class T>
GEOML_AVX2 double row_dot_avx2(int n, const T* k, const double* v) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    s0 = _mm256_fmadd_pd(load4(k + j), _mm256_loadu_pd(v + j), s0);
    s1 = _mm256_fmadd_pd(load4(k + j + 4), _mm256_loadu_pd(v + j + 4), s1);
    s2 = _mm256_fmadd_pd(load4(k + j + 8), _mm256_loadu_pd(v + j + 8), s2);
    s3 = _mm256_fmadd_pd(load4(k + j + 12), _mm256_loadu_pd(v + j + 12), s3);
  }
  for (; j + 4 <= n; j += 4) s0 = _mm256_fmadd_pd(load4(k + j), _mm256_loadu_pd(v + j), s0);
  s0 = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
  alignas(32) double t[4];
  _mm256_store_pd(t, s0);
  double s = (t[0] + t[1]) + (t[2] + t[3]);
  for (; j < n; ++j) s += k[j] * v[j];
  return s;
}
template <class T>
GEOML_AVX2 void row_axpy_avx2(int n, double u, const T* k, double* acc) {
  const __m256d vu = _mm256_set1_pd(u);
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    _mm256_storeu_pd(acc + j, _mm256_fmadd_pd(vu, load4(k + j), _mm256_loadu_pd(acc + j)));
    _mm256_storeu_pd(acc + j + 4,
                     _mm256_fmadd_pd(vu, load4(k + j + 4), _mm256_loadu_pd(acc + j + 4)));
  }
  for (; j < n; ++j) acc[j] += u * k[j];
}
#endif
template <class T>
double row_dot(int n, const T* k, const double* v) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return row_dot_avx2(n, k, v);
#endif
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < n; ++j) s += k[j] * v[j];
  return s;
}
template <class T>
void row_axpy(int n, double u, const T* k, double* acc) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return row_axpy_avx2(n, u, k, acc);
#endif
#pragma omp simd
  for (int j = 0; j < n; ++j) acc[j] += u * k[j];
}

// One sweep over rows [i0, i1) of a float64 or float32 kernel.
template <class T>
void sweep_rows(int i0, int i1, int n, const T* K, const double* v, const double* a,
                const double* wr, double lam, bool balanced, const Relax& rx, double* u,
                double* acc, SweepOut& o) {
  for (int i = i0; i < i1; ++i) {
    if (!(a[i] > 0)) {
      u[i] = 0.0;
      continue;
    }
    const T* Ki = K + static_cast<int64_t>(i) * n;
    const double s = row_dot(n, Ki, v);
    if (!(s > kTiny && s < 1e280)) {
      o.bad = true;
      continue;
    }
    const double r = a[i] / s;
    double un = lam == 1.0 ? r : wr[i] * std::pow(r, lam);
    if (rx.w != 1.0) un = u[i] * rx(un / u[i]);
    if (balanced)
      o.err += std::fabs(un * s - a[i]);
    else
      o.du = std::max(o.du, std::fabs(std::log(un / u[i])));
    u[i] = un;
    o.umin = std::min(o.umin, un);
    o.umax = std::max(o.umax, un);
    row_axpy(n, un, Ki, acc);
  }
}

// One plan row P_ij = K_ij u v_j (Pi may alias Ki when both are float64): adds P_ij to
// cs[j], writes the row sum and sum_j P_ij C_ij.
#if GEOML_SIMD_X86
template <class T>
GEOML_AVX2 void plan_row_avx2(int n, const T* Ki, double ui, const double* v, const double* Ci,
                              double* Pi, double* cs, double* rs_out, double* c_out) {
  const __m256d vu = _mm256_set1_pd(ui);
  __m256d rs4 = _mm256_setzero_pd(), c4 = rs4;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const __m256d p = _mm256_mul_pd(_mm256_mul_pd(load4(Ki + j), vu), _mm256_loadu_pd(v + j));
    _mm256_storeu_pd(Pi + j, p);
    rs4 = _mm256_add_pd(rs4, p);
    c4 = _mm256_fmadd_pd(p, _mm256_loadu_pd(Ci + j), c4);
    _mm256_storeu_pd(cs + j, _mm256_add_pd(_mm256_loadu_pd(cs + j), p));
  }
  alignas(32) double r[4], c[4];
  _mm256_store_pd(r, rs4);
  _mm256_store_pd(c, c4);
  double rs = (r[0] + r[1]) + (r[2] + r[3]), cc = (c[0] + c[1]) + (c[2] + c[3]);
  for (; j < n; ++j) {
    const double p = Ki[j] * ui * v[j];
    Pi[j] = p;
    rs += p;
    cc += p * Ci[j];
    cs[j] += p;
  }
  *rs_out = rs;
  *c_out = cc;
}
#endif

// Dense stabilised Sinkhorn on one problem (see sinkhorn_dense in ot.hpp).
struct DenseSinkhorn {
  int m, n, nt;
  const double *a, *b, *C;
  double* f;
  double* g;
  double* K;  // kernel, then plan
  SinkhornWork& w;
  double eps = 1.0, lam = 1.0;
  bool balanced = true, use_sor = true;
  // The kernel is stored in float32 (in the first half of K's memory: half the traffic of
  // each pass) when the problem is large enough to be memory-bound and every exponent of
  // the kernel keeps exp() a normal float; set by build_kernel. try32: not yet refused at
  // this eps.
  bool f32 = false, try32 = false;
  float* K32() const { return reinterpret_cast<float*>(K); }
  // threads only pay off on large kernels (a parallel region costs microseconds, far more
  // on a loaded machine)
  bool par() const { return nt > 1 && static_cast<int64_t>(m) * n >= (int64_t(1) << 20); }

  DenseSinkhorn(int m_, int n_, const double* a_, const double* b_, const double* C_, double* f_,
                double* g_, double* K_, SinkhornWork& w_, int nt_)
      : m(m_), n(n_), nt(nt_), a(a_), b(b_), C(C_), f(f_), g(g_), K(K_), w(w_) {}

  void set_eps(double e, double rho) {
    eps = e;
    try32 = static_cast<int64_t>(m) * n >= kF32MinSize;
    lam = balanced ? 1.0 : rho / (rho + e);
    // reference measure a b^T for the unbalanced problem (POT's reg_type="kl")
    for (int i = 0; i < m; ++i) w.ra[i] = (!balanced && a[i] > 0) ? e * std::log(a[i]) : 0.0;
    for (int j = 0; j < n; ++j) w.rb[j] = (!balanced && b[j] > 0) ? e * std::log(b[j]) : 0.0;
  }

  // f += eps log u, g += eps log v (positive scalings only), u = v = 1 there.
  void absorb() {
    for (int i = 0; i < m; ++i)
      if (w.u[i] > 0) {
        f[i] += eps * std::log(w.u[i]);
        w.u[i] = 1.0;
      }
    for (int j = 0; j < n; ++j)
      if (w.v[j] > 0) {
        g[j] += eps * std::log(w.v[j]);
        w.v[j] = 1.0;
      }
  }

  void build_kernel() {
    const double ie = 1.0 / eps;
    double* fr = w.tmp.data();  // f + ra
    for (int i = 0; i < m; ++i) fr[i] = f[i] + w.ra[i];
    double* gc = w.gc.data();  // g + rb
    for (int j = 0; j < n; ++j) gc[j] = g[j] + w.rb[j];
    f32 = false;
    if (try32) {
      // float32 rows; a row whose exponents leave the normal float range refuses float32
      // for this eps (the other rows then skip their work) and the kernel is rebuilt below
      std::atomic<bool> ok{true};
      float* K32p = K32();
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, kSweepBlock)
      for (int i = 0; i < m; ++i)
        if (ok.load(std::memory_order_relaxed) &&
            !kernel_row32(n, fr[i], gc, C + static_cast<int64_t>(i) * n, ie,
                          K32p + static_cast<int64_t>(i) * n))
          ok.store(false, std::memory_order_relaxed);
      f32 = try32 = ok.load();
    }
    if (!f32) {
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, kSweepBlock)
      for (int i = 0; i < m; ++i)
        kernel_row(n, fr[i], gc, C + static_cast<int64_t>(i) * n, ie,
                   K + static_cast<int64_t>(i) * n);
    }
    // u-update factors exp((lam - 1) f / eps) (unbalanced only)
    for (int i = 0; i < m; ++i) w.wr[i] = lam == 1.0 ? 1.0 : std::exp((lam - 1.0) * f[i] * ie);
    for (int j = 0; j < n; ++j) w.wc[j] = lam == 1.0 ? 1.0 : std::exp((lam - 1.0) * g[j] * ie);
  }

  // Exact log-domain update of all row potentials (u = v = 1 assumed): used when a row of
  // the kernel underflows. f_i = lam (eps log a_i - ra_i - eps LSE_j((g_j + rb_j - C_ij)/eps)).
  void exact_rows() {
    const double ie = 1.0 / eps;
    double* gc = w.gc.data();
    for (int j = 0; j < n; ++j) gc[j] = g[j] + w.rb[j];
#pragma omp parallel for num_threads(nt) if (par()) schedule(dynamic, kSweepBlock)
    for (int i = 0; i < m; ++i) {
      if (!(a[i] > 0)) continue;
      const double* Ci = C + static_cast<int64_t>(i) * n;
      const double mx = lse_max(n, gc, Ci);
      const double s = lse_sum(n, gc, Ci, mx, ie, nullptr);
      f[i] = lam * (eps * std::log(a[i]) - w.ra[i] - mx - eps * std::log(s));
    }
  }
  void exact_cols() {
    const double ie = 1.0 / eps;
    std::vector<double>& mx = w.tmp;
    std::vector<double>& s = w.gc;
    for (int j = 0; j < n; ++j) {
      mx[j] = -std::numeric_limits<double>::infinity();
      s[j] = 0.0;
    }
    for (int i = 0; i < m; ++i) {
      const double* Ci = C + static_cast<int64_t>(i) * n;
      const double fi = f[i] + w.ra[i];
      for (int j = 0; j < n; ++j) mx[j] = std::max(mx[j], fi - Ci[j]);
    }
    for (int i = 0; i < m; ++i) {
      const double* Ci = C + static_cast<int64_t>(i) * n;
      const double fi = f[i] + w.ra[i];
      for (int j = 0; j < n; ++j) s[j] += exp_neg((fi - Ci[j] - mx[j]) * ie);
    }
    for (int j = 0; j < n; ++j)
      if (b[j] > 0) g[j] = lam * (eps * std::log(b[j]) - w.rb[j] - mx[j] - eps * std::log(s[j]));
  }

  // out = K^T u
  void matvec_t(const double* u, double* out) {
    if (f32)
      matvec_t_impl(K32(), u, out);
    else
      matvec_t_impl(K, u, out);
  }
  template <class KT>
  void matvec_t_impl(const KT* K, const double* u, double* out) {
    if (!par()) {
      std::fill(out, out + n, 0.0);
      for (int i = 0; i < m; ++i) {
        const KT* Ki = K + static_cast<int64_t>(i) * n;
        const double ui = u[i];
        if (ui == 0.0) continue;
        for (int j = 0; j < n; ++j) out[j] += Ki[j] * ui;
      }
      return;
    }
#pragma omp parallel num_threads(nt)
    {
      const int T = thread_count(), t = thread_id();
      const int j0 = static_cast<int>(static_cast<int64_t>(n) * t / T);
      const int j1 = static_cast<int>(static_cast<int64_t>(n) * (t + 1) / T);
      std::fill(out + j0, out + j1, 0.0);
      for (int i = 0; i < m; ++i) {
        const KT* Ki = K + static_cast<int64_t>(i) * n;
        const double ui = u[i];
        if (ui == 0.0) continue;
        for (int j = j0; j < j1; ++j) out[j] += Ki[j] * ui;
      }
    }
  }

  // Row half of an iteration fused with K^T u (one pass over K): Ktu receives K^T u_new.
  SweepOut sweep(const Relax& rx) {
    double* Ktu = w.Ktu.data();
    if (!par()) {
      SweepOut o;
      std::fill(Ktu, Ktu + n, 0.0);
      if (f32)
        sweep_rows(0, m, n, K32(), w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(),
                   Ktu, o);
      else
        sweep_rows(0, m, n, K, w.v.data(), a, w.wr.data(), lam, balanced, rx, w.u.data(), Ktu,
                   o);
      return o;
    }
    SweepOut o;
    w.part.resize(static_cast<size_t>(nt) * n);
#pragma omp parallel num_threads(nt)
    {
      const int T = thread_count(), t = thread_id();
      double* acc = w.part.data() + static_cast<int64_t>(t) * n;
      std::fill(acc, acc + n, 0.0);
      SweepOut mine;
      // dynamic blocks of rows: a thread that the OS pauses delays only its current block
#pragma omp for schedule(dynamic, kSweepBlock) nowait
      for (int i0 = 0; i0 < m; i0 += kSweepBlock)
        if (f32)
          sweep_rows(i0, std::min(m, i0 + kSweepBlock), n, K32(), w.v.data(), a, w.wr.data(),
                     lam, balanced, rx, w.u.data(), acc, mine);
        else
          sweep_rows(i0, std::min(m, i0 + kSweepBlock), n, K, w.v.data(), a, w.wr.data(), lam,
                     balanced, rx, w.u.data(), acc, mine);
#pragma omp critical
      {
        o.err += mine.err;
        o.du = std::max(o.du, mine.du);
        o.umin = std::min(o.umin, mine.umin);
        o.umax = std::max(o.umax, mine.umax);
        o.bad = o.bad || mine.bad;
      }
#pragma omp barrier
#pragma omp for schedule(dynamic, 256)
      for (int j = 0; j < n; ++j) {
        double s = 0.0;
        for (int q = 0; q < T; ++q) s += w.part[static_cast<int64_t>(q) * n + j];
        Ktu[j] = s;
      }
    }
    return o;
  }

  // Runs iterations at the current eps until err <= tol or the budget is spent.
  // Returns the last err; adds to *iters. On return the plan is diag(u) K diag(v).
  //
  // Each iteration is one pass over K (rows updated, K^T u accumulated) and a column update.
  // Balanced: err is the L1 marginal error of the plan after the row update (rows exact
  // unless relaxed, so mostly the column error). Unbalanced: eps * the largest change of
  // log u and log v.
  //
  // Balanced problems use over-relaxation (SOR) once the plain rate is known: Sinkhorn is a
  // two-block Gauss-Seidel in the dual, so with the asymptotic error contraction r measured
  // once the error ratio has settled (three consecutive ratios within kSorStable and below
  // kSorEarlyMax, from iteration kSorMin; else over iterations kSorFrom..kSorTo) in a
  // stage, omega = 2 / (1 + sqrt(1 - r)) (Young's
  // formula; see Thibault et al. 2017, Lehmann et al. 2021): u <- u^(1-omega)
  // (a / K v)^omega. If the error grows tenfold above its best, relaxation is switched off
  // for the stage.
  double run(double tol, int64_t budget, int64_t* iters) {
    double err = std::numeric_limits<double>::infinity();
    double err10 = 0.0, best = std::numeric_limits<double>::infinity();
    double prev = 0.0, q1 = 0.0, q2 = 0.0;  // last error and the two ratios before
    Relax rx;
    bool sor_done = !balanced || !use_sor;
    double* u = w.u.data();
    double* v = w.v.data();
    double* Ktu = w.Ktu.data();
    for (int64_t it = 0; it < budget; ++it) {
      SweepOut o = sweep(rx);
      if (o.bad) {  // a row underflowed: exact log-domain rows, fresh kernel, K^T u
        absorb();
        exact_rows();
        build_kernel();
        matvec_t(u, Ktu);
        o.err = 0.0;
        o.du = std::numeric_limits<double>::infinity();
        o.umin = o.umax = 1.0;
      }
      bool bad = false;
      for (int j = 0; j < n; ++j)
        if (b[j] > 0 && !(Ktu[j] > kTiny && Ktu[j] < 1e280)) bad = true;
      if (bad) {
        absorb();
        exact_cols();
        build_kernel();
        matvec_t(u, Ktu);
      }
      ++*iters;
      double vmin = std::numeric_limits<double>::infinity(), vmax = 0.0;
      if (balanced) {
        // marginal error of diag(u) K diag(v) before the column update
        err = o.err;
        for (int j = 0; j < n; ++j) err += std::fabs(v[j] * Ktu[j] - b[j]);
        if (err <= tol) return err;
        if (!sor_done) {
          const double q = it > 0 ? err / prev : 0.0;
          double r = -1.0;
          if (it >= kSorMin && q <= kSorEarlyMax &&
              std::max({q, q1, q2}) <= (1.0 + kSorStable) * std::min({q, q1, q2}))
            r = std::cbrt(q * q1 * q2);
          if (it == kSorFrom) err10 = err;
          if (it == kSorTo) r = std::pow(err / err10, 1.0 / (kSorTo - kSorFrom));
          if (r >= 0.0) {
            if (r < 1.0 && r > 0.0) rx.set(std::min(1.9, 2.0 / (1.0 + std::sqrt(1.0 - r))));
            sor_done = true;
          }
          q2 = q1;
          q1 = q;
          prev = err;
        }
        if (rx.w > 1.0 && err > 10.0 * best) rx.set(1.0);
        best = std::min(best, err);
      }
      double dv = 0.0;
      for (int j = 0; j < n; ++j) {
        if (!(b[j] > 0)) {
          v[j] = 0.0;
          continue;
        }
        const double r = b[j] / Ktu[j];
        double vn = lam == 1.0 ? r : w.wc[j] * std::pow(r, lam);
        if (rx.w != 1.0) vn = v[j] * rx(vn / v[j]);
        if (!balanced) dv = std::max(dv, std::fabs(std::log(vn / v[j])));
        v[j] = vn;
        vmin = std::min(vmin, vn);
        vmax = std::max(vmax, vn);
      }
      if (!balanced) {
        err = eps * std::max(o.du, dv);
        if (err <= tol) return err;
      }
      if (o.umin < kLo || o.umax > kHi || vmin < kLo || vmax > kHi) {
        absorb();
        build_kernel();
      }
    }
    return err;
  }

  // P = diag(u) K diag(v) in place; returns <P, C> and writes the L1 marginal error.
  // A float32 kernel is widened in place, in phases of rows [lo, hi) with lo = ceil(hi / 2)
  // from hi = m down: the float64 plan rows of a phase cover float32 rows [2 lo, 2 hi), all
  // read in earlier phases, and each row is copied out before it is overwritten; rows of a
  // phase run in parallel (static schedule: the sums do not depend on timing).
  double finish(double* merr) {
    const int T = par() ? nt : 1;
    w.part.assign(static_cast<size_t>(T) * n, 0.0);  // per-thread column sums
    if (f32) w.row32.resize(static_cast<size_t>(T) * n);
    std::vector<double> tcost(T, 0.0), terr(T, 0.0);
    const double* v = w.v.data();
#pragma omp parallel num_threads(T) if (T > 1)
    {
      const int t = thread_id();
      double* cs = w.part.data() + static_cast<int64_t>(t) * n;
      float* buf = f32 ? w.row32.data() + static_cast<int64_t>(t) * n : nullptr;
      double cost = 0.0, rerr = 0.0;
      for (int hi = m; hi > 0;) {
        const int lo = !f32 ? 0 : (hi == 1 ? 0 : (hi + 1) / 2);
#pragma omp for schedule(static)
        for (int i = lo; i < hi; ++i) {
          double* Pi = K + static_cast<int64_t>(i) * n;
          const double* Ci = C + static_cast<int64_t>(i) * n;
          double rs, c;
          if (f32) {
            std::memcpy(buf, K32() + static_cast<int64_t>(i) * n, sizeof(float) * n);
            plan_row(n, buf, w.u[i], v, Ci, Pi, cs, &rs, &c);
          } else {
            plan_row(n, Pi, w.u[i], v, Ci, Pi, cs, &rs, &c);
          }
          cost += c;
          rerr += std::fabs(rs - a[i]);
        }
        hi = lo;
      }
      tcost[t] = cost;
      terr[t] = rerr;
    }
    f32 = false;
    double cost = 0.0, rerr = 0.0, cerr = 0.0;
    for (int t = 0; t < T; ++t) {
      cost += tcost[t];
      rerr += terr[t];
    }
    for (int j = 0; j < n; ++j) {
      double c = 0.0;
      for (int t = 0; t < T; ++t) c += w.part[static_cast<int64_t>(t) * n + j];
      cerr += std::fabs(c - b[j]);
    }
    *merr = rerr + cerr;
    return cost;
  }
  template <class T>
  static void plan_row(int n, const T* Ki, double ui, const double* v, const double* Ci,
                       double* Pi, double* cs, double* rs_out, double* c_out) {
#if GEOML_SIMD_X86
    if (simd_isa() != SimdIsa::Generic) return plan_row_avx2(n, Ki, ui, v, Ci, Pi, cs, rs_out, c_out);
#endif
    double rs = 0.0, c = 0.0;
#pragma omp simd reduction(+ : rs, c)
    for (int j = 0; j < n; ++j) {
      const double p = Ki[j] * ui * v[j];
      Pi[j] = p;
      rs += p;
      c += p * Ci[j];
      cs[j] += p;
    }
    *rs_out = rs;
    *c_out = c;
  }
};

}  // namespace

namespace {
// min, max and sum of x * 0 (NaN iff some value is not finite) over x[0 .. n)
struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, z = 0.0;
};
#if GEOML_SIMD_X86
GEOML_AVX2 Range range_avx2(int64_t n, const double* x) {
  __m256d l0 = _mm256_set1_pd(std::numeric_limits<double>::infinity()), l1 = l0;
  __m256d h0 = _mm256_set1_pd(-std::numeric_limits<double>::infinity()), h1 = h0;
  __m256d z0 = _mm256_setzero_pd(), zero = z0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d a = _mm256_loadu_pd(x + i), b = _mm256_loadu_pd(x + i + 4);
    l0 = _mm256_min_pd(a, l0);  // (NaN lanes keep the old value)
    l1 = _mm256_min_pd(b, l1);
    h0 = _mm256_max_pd(a, h0);
    h1 = _mm256_max_pd(b, h1);
    z0 = _mm256_add_pd(z0, _mm256_add_pd(_mm256_mul_pd(a, zero), _mm256_mul_pd(b, zero)));
  }
  alignas(32) double L[4], H[4], Z[4];
  _mm256_store_pd(L, _mm256_min_pd(l0, l1));
  _mm256_store_pd(H, _mm256_max_pd(h0, h1));
  _mm256_store_pd(Z, z0);
  Range r;
  for (int k = 0; k < 4; ++k) {
    r.lo = std::min(r.lo, L[k]);
    r.hi = std::max(r.hi, H[k]);
    r.z += Z[k];
  }
  for (; i < n; ++i) {
    r.lo = std::min(r.lo, x[i]);
    r.hi = std::max(r.hi, x[i]);
    r.z += x[i] * 0.0;
  }
  return r;
}
#endif
Range range_of(int64_t n, const double* x) {
#if GEOML_SIMD_X86
  if (simd_isa() != SimdIsa::Generic) return range_avx2(n, x);
#endif
  Range r;
  for (int64_t i = 0; i < n; ++i) {
    r.lo = std::min(r.lo, x[i]);
    r.hi = std::max(r.hi, x[i]);
    r.z += x[i] * 0.0;
  }
  return r;
}
}  // namespace

bool value_range(int64_t n, const double* x, int n_jobs, double* lo, double* hi) {
  const int nt = n >= (int64_t(1) << 18) ? resolve_threads(n_jobs) : 1;
  Range all;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int T = thread_count(), t = thread_id();
    const Range r = range_of(n * (t + 1) / T - n * t / T, x + n * t / T);
#pragma omp critical
    {
      all.lo = std::min(all.lo, r.lo);
      all.hi = std::max(all.hi, r.hi);
      all.z += r.z;
    }
  }
  *lo = all.lo;
  *hi = all.hi;
  return all.z == 0.0;
}

SinkhornInfo sinkhorn_dense(int m, int n, const double* a, const double* b, const double* C,
                            const SinkhornParams& p, double* f, double* g, double* P,
                            SinkhornWork& w) {
  SinkhornInfo info;
  if (m <= 0 || n <= 0) return info;
  w.u.assign(m, 1.0);
  w.v.assign(n, 1.0);
  w.Ktu.resize(n);
  w.ra.resize(m);
  w.rb.resize(n);
  w.wr.resize(m);
  w.wc.resize(n);
  w.tmp.resize(std::max(m, n));
  w.gc.resize(n);
  for (int i = 0; i < m; ++i)
    if (!(a[i] > 0)) w.u[i] = 0.0;
  for (int j = 0; j < n; ++j)
    if (!(b[j] > 0)) w.v[j] = 0.0;
  DenseSinkhorn S(m, n, a, b, C, f, g, P, w, std::max(1, p.n_threads));
  S.balanced = !(p.rho > 0);
  double mass = 0.0;
  for (int i = 0; i < m; ++i) mass += a[i];
  int64_t iters = 0;
  double err = 0.0;
  // annealing schedule eps_start, eps_start q, ... (while > eps), then eps
  double e = p.eps_start > p.eps ? p.eps_start : p.eps;
  bool ran_last = false;  // the budget may run out in an intermediate stage: not converged
  for (;;) {
    const bool last = !(e > p.eps);
    if (last) e = p.eps;
    S.absorb();
    S.set_eps(e, p.rho);
    S.build_kernel();
    const double tol = last ? p.tol : std::max(p.tol, p.stage_tol * (S.balanced ? mass : e));
    const int64_t budget = p.max_iter - iters;
    if (budget <= 0) break;
    err = S.run(tol, budget, &iters);
    ran_last = last;
    if (last) break;
    e *= p.eps_factor;
  }
  info.n_iter = iters;
  info.err = err;
  info.cost = S.finish(&info.marginal_error);
  // balanced: the returned plan itself must meet tol (the in-loop error can miss a column
  // rebuilt in the log domain, e.g. a mass of 1e-304)
  info.converged = ran_last && err <= p.tol && (!S.balanced || info.marginal_error <= p.tol);
  S.absorb();
  return info;
}

void sinkhorn_batched(int64_t B, const double* a, const int64_t* a_off, const double* b,
                      const int64_t* b_off, const double* C, const int64_t* c_off,
                      const SinkhornParams& p, int n_jobs, double* cost, double* err,
                      int64_t* n_iter, unsigned char* converged, double* plans) {
  const int nt = resolve_threads(n_jobs);
  SinkhornParams q = p;
  q.n_threads = 1;
#pragma omp parallel num_threads(nt)
  {
    SinkhornWork w;
    std::vector<double> f, g, P;
#pragma omp for schedule(dynamic, 16)
    for (int64_t k = 0; k < B; ++k) {
      const int m = static_cast<int>(a_off[k + 1] - a_off[k]);
      const int n = static_cast<int>(b_off[k + 1] - b_off[k]);
      f.assign(m, 0.0);
      g.assign(n, 0.0);
      double* Pk = plans ? plans + c_off[k] : (P.resize(static_cast<size_t>(m) * n), P.data());
      const SinkhornInfo info = sinkhorn_dense(m, n, a + a_off[k], b + b_off[k], C + c_off[k],
                                               q, f.data(), g.data(), Pk, w);
      cost[k] = info.cost;
      err[k] = info.err;
      n_iter[k] = info.n_iter;
      converged[k] = info.converged;
    }
  }
}

namespace {

// Squared (power 2) or plain (power 1) distances from x to every column of Yt (d x n).
GEOML_OT_CLONES
void point_costs(int n, int d, const double* x, const double* Yt, int power, double* buf) {
  {
    const double x0 = x[0];
    for (int j = 0; j < n; ++j) {
      const double t = x0 - Yt[j];
      buf[j] = t * t;
    }
  }
  for (int k = 1; k < d; ++k) {
    const double xk = x[k];
    const double* yk = Yt + static_cast<int64_t>(k) * n;
    for (int j = 0; j < n; ++j) {
      const double t = xk - yk[j];
      buf[j] += t * t;
    }
  }
  if (power == 1)
    for (int j = 0; j < n; ++j) buf[j] = std::sqrt(buf[j]);
}

// One log-sum-exp row of the point-cloud kernel: LSE over j of (h_j - c(x, y_j)) / eps,
// times eps. *wcost (optional) receives sum_j e_j c_j / sum_j e_j (the row's mean cost).
double points_lse(int n, int d, const double* x, const double* Yt, const double* h, int power,
                  double eps, double* buf, double* wcost) {
  point_costs(n, d, x, Yt, power, buf);
  const double mx = lse_max(n, h, buf);
  double w = 0.0;
  const double s = lse_sum(n, h, buf, mx, 1.0 / eps, wcost ? &w : nullptr);
  if (wcost) *wcost = w / s;
  return mx + eps * std::log(s);
}

// Half step: f_i = lam (eps log w_i - r_i - LSE_j(h_j - c_ij)) over rows of X (m x d)
// against Y (n x d) with column offsets h (n). Balanced: returns sum_i |row mass - w_i| of
// the current plan (before the update). Unbalanced: returns max |f_new - f_old|.
double points_half(int m, int n, int d, const double* X, const double* Yt, const double* w,
                   const double* h, const double* r, double* f, int power, double eps,
                   double lam, bool balanced, int nt) {
  double err = 0.0;
#pragma omp parallel num_threads(nt) reduction(+ : err) if (nt > 1)
  {
    std::vector<double> buf(n);
    double dmax = 0.0;
#pragma omp for schedule(dynamic, 8)
    for (int i = 0; i < m; ++i) {
      if (!(w[i] > 0)) continue;
      const double lse = points_lse(n, d, X + static_cast<int64_t>(i) * d, Yt, h, power, eps,
                                    buf.data(), nullptr);
      const double fn = lam * (eps * std::log(w[i]) - r[i] - lse);
      if (balanced) {
        // current row mass: exp((f_i + r_i + lse) / eps) = w_i exp((f_i - fn) / eps)
        const double z = (f[i] - fn) / eps;
        err += std::fabs(w[i] * (z <= 0 ? exp_neg(z) : std::exp(z)) - w[i]);
      } else {
        dmax = std::max(dmax, std::fabs(fn - f[i]));
      }
      f[i] = fn;
    }
    if (!balanced) {
#pragma omp critical
      err = std::max(err, dmax);
    }
  }
  return err;
}

}  // namespace

SinkhornInfo sinkhorn_points(int m, int n, int d, const double* x, const double* y,
                             const double* a, const double* b, int power,
                             const SinkhornParams& p, double* f, double* g, double* cost) {
  SinkhornInfo info;
  const int nt = std::max(1, p.n_threads);
  const bool balanced = !(p.rho > 0);
  double mass = 0.0;
  for (int i = 0; i < m; ++i) mass += a[i];
  std::vector<double> ra(m, 0.0), rb(n, 0.0), h(std::max(m, n));
  std::vector<double> xt(static_cast<size_t>(m) * d), yt(static_cast<size_t>(n) * d);
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < d; ++k) xt[static_cast<size_t>(k) * m + i] = x[static_cast<size_t>(i) * d + k];
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < d; ++k) yt[static_cast<size_t>(k) * n + j] = y[static_cast<size_t>(j) * d + k];
  std::vector<double> sched;
  if (p.eps_start > p.eps)
    for (double e = p.eps_start; e > p.eps; e *= p.eps_factor) sched.push_back(e);
  sched.push_back(p.eps);
  int64_t iters = 0;
  double err = std::numeric_limits<double>::infinity();
  double eps = p.eps, lam = 1.0;
  bool ran_last = false;  // the budget may run out in an intermediate stage: not converged
  for (size_t s = 0; s < sched.size() && iters < p.max_iter; ++s) {
    eps = sched[s];
    ran_last = s + 1 == sched.size();
    lam = balanced ? 1.0 : p.rho / (p.rho + eps);
    for (int i = 0; i < m; ++i) ra[i] = (!balanced && a[i] > 0) ? eps * std::log(a[i]) : 0.0;
    for (int j = 0; j < n; ++j) rb[j] = (!balanced && b[j] > 0) ? eps * std::log(b[j]) : 0.0;
    const bool last = s + 1 == sched.size();
    const double tol = last ? p.tol : std::max(p.tol, p.stage_tol * (balanced ? mass : eps));
    for (; iters < p.max_iter; ++iters) {
      for (int i = 0; i < m; ++i) h[i] = f[i] + ra[i];
      double eg = points_half(n, m, d, y, xt.data(), b, h.data(), rb.data(), g, power, eps,
                              lam, balanced, nt);
      for (int j = 0; j < n; ++j) h[j] = g[j] + rb[j];
      double ef = points_half(m, n, d, x, yt.data(), a, h.data(), ra.data(), f, power, eps,
                              lam, balanced, nt);
      // balanced: after the g-step columns are exact, so ef is the plan's marginal error
      err = balanced ? ef : std::max(ef, eg);
      if (err <= tol) {
        ++iters;
        break;
      }
    }
  }
  info.n_iter = iters;
  info.err = err;
  info.converged = ran_last && err <= p.tol;
  // transport cost <P, C> with P_ij = exp((f_i + ra_i + g_j + rb_j - c_ij) / eps)
  double total = 0.0;
  for (int j = 0; j < n; ++j) h[j] = g[j] + rb[j];
#pragma omp parallel num_threads(nt) reduction(+ : total) if (nt > 1)
  {
    std::vector<double> buf(n);
#pragma omp for schedule(dynamic, 8)
    for (int i = 0; i < m; ++i) {
      if (!(a[i] > 0)) continue;
      double wc = 0.0;
      const double lse = points_lse(n, d, x + static_cast<int64_t>(i) * d, yt.data(), h.data(),
                                    power, eps, buf.data(), &wc);
      const double z = (f[i] + ra[i] + lse) / eps;  // log of row mass
      total += (z <= 0 ? exp_neg(z) : std::exp(z)) * wc;
    }
  }
  *cost = total;
  return info;
}

}  // namespace geoml
