// Approximate kNN graph: random-projection forest start, NN-descent iterations, sampled recall.
#include "nndescent.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "neighbors/exact_distance.hpp"
#include "neighbors/knn.hpp"
#include "spectral/kmeans.hpp"

namespace geoml {
namespace nnd {

#define GEOML_KERNEL_INC "neighbors/nndescent_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

/// splitmix64 finaliser: the counter-based generator behind every random choice (the same
/// draws whatever the thread count or schedule).
inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
/// Asks for the cache lines of a row of d values ahead of use.
template <typename T>
inline void prefetch_row(const T* x, int64_t d) {
  const char* p = reinterpret_cast<const char*>(x);
  const int64_t bytes = d * int64_t(sizeof(T));
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/// The rows perm[p..p+3] of X (their ids and pointers, for dot4); the next four rows are
/// prefetched when they lie before hi.
template <typename T>
inline void rows4(const int32_t* perm, int64_t p, int64_t hi, const T* X, int64_t d, int32_t ids[4],
                  const T* rows[4]) {
  for (int u = 0; u < 4; ++u) {
    ids[u] = perm[p + u];
    rows[u] = X + int64_t(ids[u]) * d;
  }
  if (p + 8 <= hi)
    for (int u = 4; u < 8; ++u) prefetch_row(X + int64_t(perm[p + u]) * d, d);
}

/// CPU time of the process (all threads), for the verbose trace.
inline double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
inline uint64_t hash3(uint64_t a, uint64_t b, uint64_t c) {
  return mix(mix(mix(a) ^ b) ^ c);
}

template <typename T>
using PairFn = T (*)(const T*, const T*, int64_t);
template <typename T>
using Pair4Fn = void (*)(const T*, const T* const*, int64_t, T*);
template <typename T>
using PairF64Fn = double (*)(const T*, const T*, int64_t);

/// Exact distance of a pair (double accumulation), as detail::exact_distance but vectorised
/// (per-ISA kernels with a fixed summation order).
template <typename T>
struct ExactDist {
  const T* X;
  int64_t d;
  Metric metric;
  const double* norms;  // ||x_i|| (cosine only)
  PairF64Fn<T> sq, dot;
  double operator()(int64_t i, int64_t j) const {
    const T* x = X + i * d;
    const T* y = X + j * d;
    switch (metric) {
      case Metric::Euclidean:
        return std::sqrt(sq(x, y, d));
      case Metric::SqEuclidean:
        return sq(x, y, d);
      case Metric::Cosine: {
        if (norms[i] == 0 || norms[j] == 0) return 1.0;
        const double dist = 1.0 - dot(x, y, d) / (norms[i] * norms[j]);
        return std::min(2.0, std::max(0.0, dist));
      }
      case Metric::InnerProduct:
        return -dot(x, y, d);
    }
    return 0.0;
  }
};

/// The score NN-descent ranks by: squared distance, 1 - cos, or -x.y. Symmetric: computed
/// with the smaller index first, so a pair has one score whoever asks.
template <typename T>
struct Scorer {
  const T* X;
  int64_t d;
  Metric metric;
  const T* inv;  // 1 / ||x|| (0 for a zero row), cosine only
  PairFn<T> sq, dot;
  Pair4Fn<T> sq4, dot4;
  /// four() and operator() take labels (the working graph's indices, see Graph): point ord[a]
  /// (null: the labels are the points). rows() and four_rows() take points.
  const int32_t* ord = nullptr;
  int32_t point(int64_t a) const { return ord ? ord[a] : int32_t(a); }
  /// The scores of label a with labels b[0..3], bit-identical to operator() on each pair.
  void four(int64_t a, const int32_t* b, T* out) const {
    const int32_t p = point(a);
    const int32_t q[4] = {point(b[0]), point(b[1]), point(b[2]), point(b[3])};
    const T* rows[4] = {X + int64_t(q[0]) * d, X + int64_t(q[1]) * d, X + int64_t(q[2]) * d,
                        X + int64_t(q[3]) * d};
    four_rows(p, X + int64_t(p) * d, q, rows, out);
  }
  /// four() from copies (points): x is a's row, rows[j] b[j]'s.
  void four_rows(int64_t a, const T* x, const int32_t* b, const T* const* rows, T* out) const {
    switch (metric) {
      case Metric::Euclidean:
      case Metric::SqEuclidean:
        sq4(x, rows, d, out);
        return;
      case Metric::Cosine:
        dot4(x, rows, d, out);
        for (int j = 0; j < 4; ++j) {
          const int64_t lo = std::min<int64_t>(a, b[j]), hi = std::max<int64_t>(a, b[j]);
          out[j] = T(1) - (out[j] * inv[lo]) * inv[hi];
        }
        return;
      case Metric::InnerProduct:
        dot4(X + a * d, rows, d, out);
        for (int j = 0; j < 4; ++j) out[j] = -out[j];
        return;
    }
  }
  /// The score of (a, b) from copies x, y of their rows (the same bits as operator()).
  T rows(int64_t a, int64_t b, const T* x, const T* y) const {
    switch (metric) {
      case Metric::Euclidean:
      case Metric::SqEuclidean:
        return sq(x, y, d);
      case Metric::Cosine:
        return T(1) - (dot(x, y, d) * inv[std::min(a, b)]) * inv[std::max(a, b)];
      case Metric::InnerProduct:
        return -dot(x, y, d);
    }
    return T(0);
  }
  T operator()(int64_t la, int64_t lb) const {
    int64_t a = point(la), b = point(lb);
    if (a > b) std::swap(a, b);
    const T* x = X + a * d;
    const T* y = X + b * d;
    switch (metric) {
      case Metric::Euclidean:
      case Metric::SqEuclidean:
        return sq(x, y, d);
      case Metric::Cosine:
        return T(1) - (dot(x, y, d) * inv[a]) * inv[b];
      case Metric::InnerProduct:
        return -dot(x, y, d);
    }
    return T(0);
  }
};

/// Leaves of at most this many points are searched pair by pair; larger ones by the exact
/// kernel (whose per-call set-up and per-leaf heaps pay off on large leaves).
constexpr int64_t kAllPairsLeaf = 256;

/// The working graph: per point a max-heap of k (score, index) entries ordered by (score,
/// index), empty slots (+inf, -1) at the top; flags 0 old, 1 new, 2 added this iteration.
/// Rows and entries are labels: label l is point key[l] (null: l itself), and ties go by
/// that point, so the content of a row does not depend on the labelling.
template <typename T>
struct Graph {
  int64_t n, k;
  std::vector<int32_t> idx;
  std::vector<T> score;
  std::vector<uint8_t> flag;
  const int32_t* key = nullptr;
  int64_t point(int32_t j) const { return j < 0 || !key ? j : key[j]; }
  bool less(T sa, int32_t ja, T sb, int32_t jb) const {
    return sa < sb || (sa == sb && point(ja) < point(jb));
  }
  Graph(int64_t n_, int64_t k_)
      : n(n_),
        k(k_),
        idx(static_cast<size_t>(n_ * k_), -1),
        score(static_cast<size_t>(n_ * k_), std::numeric_limits<T>::infinity()),
        flag(static_cast<size_t>(n_ * k_), 0) {}
  bool contains(int64_t i, int32_t j) const {
    const int32_t* I = idx.data() + i * k;
    bool f = false;
    for (int64_t t = 0; t < k; ++t) f |= I[t] == j;
    return f;
  }
  bool beats_root(int64_t i, T s, int32_t j) const { return less(s, j, score[i * k], idx[i * k]); }
  /// Offers (s, j) to row i: kept when it beats the row's worst entry and j is not there.
  /// The row's final content is the k smallest distinct entries offered, in any order.
  bool push(int64_t i, T s, int32_t j, uint8_t f) {
    int32_t* I = idx.data() + i * k;
    T* S = score.data() + i * k;
    uint8_t* F = flag.data() + i * k;
    if (!less(s, j, S[0], I[0])) return false;
    for (int64_t t = 0; t < k; ++t)
      if (I[t] == j) return false;
    int64_t c = 0;
    for (;;) {
      const int64_t l = 2 * c + 1;
      if (l >= k) break;
      int64_t b = l;
      if (l + 1 < k && less(S[l], I[l], S[l + 1], I[l + 1])) b = l + 1;
      if (!less(s, j, S[b], I[b])) break;
      S[c] = S[b];
      I[c] = I[b];
      F[c] = F[b];
      c = b;
    }
    S[c] = s;
    I[c] = j;
    F[c] = f;
    return true;
  }
};

/// Candidate lists: per point at most c indices, the c of smallest hashed priority among
/// those offered (a max-heap on priority), empty slots -1. Rows and indices are labels (as in
/// Graph); priorities and ties go by the points key[l].
struct Candidates {
  int64_t c;
  const int32_t* key;
  std::vector<int32_t> idx;
  std::vector<uint16_t> pri;  // priorities of the rows being filled (0xFFFF empty)
  int64_t r0 = 0;             // first row of those
  uint64_t salt = 0;
  /// `rows`: how many rows are filled at a time (the priorities are kept for those only).
  Candidates(int64_t n, int64_t c_, int64_t rows, const int32_t* key_)
      : c(c_),
        key(key_),
        idx(static_cast<size_t>(n * c_), -1),
        pri(static_cast<size_t>(rows * c_), 0xFFFF) {}
  int32_t point(int32_t u) const { return u < 0 ? u : key[u]; }
  uint16_t prio(int64_t v, int32_t u) const {
    const int64_t pv = key[v], pu = key[u];
    const uint64_t a = uint64_t(std::min(pv, pu)), b = uint64_t(std::max(pv, pu));
    return uint16_t(mix(salt ^ ((a << 32) | b)) >> 48);
  }
  /// (priority, point) order; an empty slot (0xFFFF, -1 read as 2^32 - 1) is last.
  bool less(uint16_t pa, int32_t ua, uint16_t pb, int32_t ub) const {
    return pa < pb || (pa == pb && uint32_t(point(ua)) < uint32_t(point(ub)));
  }
  void reset() { std::fill(idx.begin(), idx.end(), -1); }
  void begin_rows(int64_t first) {
    r0 = first;
    std::fill(pri.begin(), pri.end(), uint16_t(0xFFFF));
  }
  void push(int64_t v, int32_t u) {
    int32_t* I = idx.data() + v * c;
    uint16_t* P = pri.data() + (v - r0) * c;
    const uint16_t p = prio(v, u);
    if (!less(p, u, P[0], I[0])) return;
    for (int64_t t = 0; t < c; ++t)
      if (I[t] == u) return;
    int64_t q = 0;
    for (;;) {
      const int64_t l = 2 * q + 1;
      if (l >= c) break;
      int64_t b = l;
      if (l + 1 < c && less(P[l], I[l], P[l + 1], I[l + 1])) b = l + 1;
      if (!less(p, u, P[b], I[b])) break;
      I[q] = I[b];
      P[q] = P[b];
      q = b;
    }
    I[q] = u;
    P[q] = p;
  }
};

/// One random-projection tree over all points: `perm` ends as the points in leaf order,
/// `leaves` as [begin, end) ranges of at most leaf_size points.
template <typename T>
void build_tree(const T* X, int64_t n, int64_t d, Metric metric, int64_t leaf_size, uint64_t seed,
                const T* inv, PairFn<T> dot, Pair4Fn<T> dot4, int nt, std::vector<int32_t>& perm,
                std::vector<int32_t>& scratch, std::vector<std::pair<int64_t, int64_t>>& leaves) {
  for (int64_t i = 0; i < n; ++i) perm[i] = int32_t(i);
  struct Node {
    int64_t lo, hi;
    uint64_t id;
  };
  const bool cosine = metric == Metric::Cosine;
  // The plane half-way between points ia and ib (cosine: their unit vectors) into w; returns
  // its offset (a point x is right of it when w.x - offset > 0, so ia is right, ib left).
  auto plane = [&](int64_t ia, int64_t ib, T* w) -> double {
    const T* xa = X + ia * d;
    const T* xb = X + ib * d;
    double off = 0;
    for (int64_t t = 0; t < d; ++t) {
      if (cosine) {
        w[t] = xa[t] * inv[ia] - xb[t] * inv[ib];
      } else {
        w[t] = xa[t] - xb[t];
        off += 0.5 * (double(xa[t]) * xa[t] - double(xb[t]) * xb[t]);
      }
    }
    return off;
  };
  // Side of point i (w.x = wx) at node `id`: ties by a hash of (node, point).
  auto right_of = [&](T wx, double off, uint64_t id, int32_t i) -> bool {
    const double m = double(wx) - off;
    return m > 0 || (m == 0 && (hash3(seed, id, uint64_t(i)) & 1));
  };
  // The two points of node `id` (size >= 2, from lo) its plane passes between.
  auto pivots = [&](int64_t lo, int64_t size, uint64_t id) -> std::pair<int64_t, int64_t> {
    const uint64_t h = hash3(seed, id, 0x5EED);
    const int64_t a = lo + int64_t(mix(h) % uint64_t(size));
    int64_t b = lo + int64_t(mix(h + 1) % uint64_t(size - 1));
    if (b >= a) ++b;
    return {perm[a], perm[b]};
  };
  // Splits node `nd` in place; returns the position of the first right point.
  auto split = [&](const Node& nd, std::vector<T>& w) -> int64_t {
    const int64_t lo = nd.lo, size = nd.hi - nd.lo;
    const auto [ia, ib] = pivots(lo, size, nd.id);
    const double off = plane(ia, ib, w.data());
    int64_t nl = 0, nr = 0;
    int32_t* R = scratch.data() + lo;
    auto place = [&](int32_t i, T wx) {
      if (right_of(wx, off, nd.id, i))
        R[nr++] = i;
      else
        perm[lo + nl++] = i;
    };
    // Four rows at a time (w's loads shared; the same bits as one dot each). perm[p..p+3] are
    // read before any is overwritten: placed entries never pass the read position.
    int64_t p = lo;
    for (; p + 4 <= nd.hi; p += 4) {
      int32_t ids[4];
      const T* rows[4];
      rows4(perm.data(), p, nd.hi, X, d, ids, rows);
      T wx[4];
      dot4(w.data(), rows, d, wx);
      for (int u = 0; u < 4; ++u) place(ids[u], wx[u]);
    }
    for (; p < nd.hi; ++p) place(perm[p], dot(w.data(), X + int64_t(perm[p]) * d, d));
    std::memcpy(perm.data() + lo + nl, R, static_cast<size_t>(nr) * sizeof(int32_t));
    if (nl == 0 || nr == 0) return lo + size / 2;  // no separating plane: halve
    return lo + nl;
  };
  // Three levels of a node larger than L2 in one pass over its rows (the rows of the levels
  // above L2 come from memory, so one pass instead of three): node `id`'s plane as split()
  // draws it; the planes of its children 2 id + s and grandchildren 4 id + 2 s + t pass
  // between the first two points of a hashed sample of the node that fall in that child
  // (uniform points of the child, as split() would draw them there). Fills the 8 parts'
  // bounds (part g = 4 s + 2 t + u is node 8 id + g); false, with the node untouched, when
  // the sample leaves a child without two points or one part would hold every point.
  constexpr int kSample = 64;
  auto split3 = [&](const Node& nd, std::vector<T>& w, std::vector<uint8_t>& part, int par,
                    int64_t* bounds) -> bool {
    const int64_t lo = nd.lo, size = nd.hi - nd.lo;
    w.resize(static_cast<size_t>(7 * d));
    T* W[7];
    for (int q = 0; q < 7; ++q) W[q] = w.data() + q * d;
    double off[7];
    const auto [ia, ib] = pivots(lo, size, nd.id);
    off[0] = plane(ia, ib, W[0]);
    // The sample (distinct positions, in draw order) and its sides.
    int32_t smp[kSample];
    int ns = 0;
    {
      const uint64_t h = hash3(seed, nd.id, 0x5A3);
      std::vector<int64_t> pos;
      for (int r = 0; r < kSample; ++r) {
        const int64_t q = lo + int64_t(mix(h + uint64_t(r)) % uint64_t(size));
        if (std::find(pos.begin(), pos.end(), q) == pos.end()) pos.push_back(q);
      }
      for (const int64_t q : pos) smp[ns++] = perm[q];
    }
    int grp[kSample];  // child side s, then 2 + 2 s + grandchild side t
    for (int r = 0; r < ns; ++r) {
      const T* x = X + int64_t(smp[r]) * d;
      grp[r] = right_of(dot(W[0], x, d), off[0], nd.id, smp[r]);
    }
    // Plane of group g (children 0, 1 at level 1: W[1 + g]; grandchildren at level 2:
    // W[3 + g]) between its first two sample points.
    auto group_plane = [&](int level, int g, int q) -> bool {
      int found = 0;
      int32_t two[2];
      for (int r = 0; r < ns && found < 2; ++r)
        if (grp[r] == (level == 1 ? g : 2 + g)) two[found++] = smp[r];
      if (found < 2) return false;
      off[q] = plane(two[0], two[1], W[q]);
      return true;
    };
    for (int g = 0; g < 2; ++g)
      if (!group_plane(1, g, 1 + g)) return false;
    for (int r = 0; r < ns; ++r) {
      const int s = grp[r];
      const T* x = X + int64_t(smp[r]) * d;
      grp[r] = 2 + 2 * s + right_of(dot(W[1 + s], x, d), off[1 + s], 2 * nd.id + s, smp[r]);
    }
    for (int g = 0; g < 4; ++g)
      if (!group_plane(2, g, 3 + g)) return false;
    // The pass: each row's three sides while it is in cache (on `par` threads: the nodes
    // of the top levels are split before there are subtrees to share out).
    part.resize(static_cast<size_t>(size));
    auto route = [&](int64_t p, int32_t i, T wx0) {
      const T* x = X + int64_t(i) * d;
      const int s = right_of(wx0, off[0], nd.id, i);
      const int t = right_of(dot(W[1 + s], x, d), off[1 + s], 2 * nd.id + s, i);
      const int g = 2 * s + t;
      const int u = right_of(dot(W[3 + g], x, d), off[3 + g], 4 * nd.id + g, i);
      part[p - lo] = uint8_t(2 * g + u);
    };
    const int64_t blocks = size / 4;
#pragma omp parallel for schedule(static) num_threads(par) if (par > 1)
    for (int64_t bk = 0; bk < blocks; ++bk) {
      const int64_t p = lo + 4 * bk;
      int32_t ids[4];
      const T* rows[4];
      rows4(perm.data(), p, nd.hi, X, d, ids, rows);
      T wx[4];
      dot4(W[0], rows, d, wx);
      for (int u = 0; u < 4; ++u) route(p + u, ids[u], wx[u]);
    }
    for (int64_t p = lo + 4 * blocks; p < nd.hi; ++p)
      route(p, perm[p], dot(W[0], X + int64_t(perm[p]) * d, d));
    int64_t count[8] = {};
    for (int64_t q = 0; q < size; ++q) ++count[part[q]];
    bounds[0] = lo;
    for (int g = 0; g < 8; ++g) {
      if (count[g] == size) return false;
      bounds[g + 1] = bounds[g] + count[g];
    }
    int64_t at[8];
    std::copy(bounds, bounds + 8, at);
    for (int64_t q = lo; q < nd.hi; ++q) scratch[at[part[q - lo]]++] = perm[q];
    std::memcpy(perm.data() + lo, scratch.data() + lo, static_cast<size_t>(size) * sizeof(int32_t));
    return true;
  };
  // Nodes whose rows exceed about half an L2 (1 MiB) take three levels per pass.
  const int64_t big_node = std::max<int64_t>(
      8 * leaf_size, (int64_t(1) << 20) / std::max<int64_t>(1, d * int64_t(sizeof(T))));
  // Splits nd into its children (pushed by `emit` in order): 8 by split3 when it is large, 2.
  auto split_node = [&](const Node& nd, std::vector<T>& w, std::vector<uint8_t>& part, int par,
                        auto&& emit) {
    if (nd.hi - nd.lo > big_node) {
      int64_t bounds[9];
      if (split3(nd, w, part, par, bounds)) {
        for (int g = 0; g < 8; ++g)
          if (bounds[g + 1] > bounds[g]) emit(Node{bounds[g], bounds[g + 1], 8 * nd.id + g});
        return;
      }
    }
    w.resize(static_cast<size_t>(d));
    const int64_t mid = split(nd, w);
    emit(Node{nd.lo, mid, 2 * nd.id});
    emit(Node{mid, nd.hi, 2 * nd.id + 1});
  };
  std::vector<Node> frontier{{0, n, 1}};
  leaves.clear();
  std::vector<T> w0(static_cast<size_t>(d));
  std::vector<uint8_t> part0;
  // Breadth-first on one thread until there are enough nodes to share out.
  while (!frontier.empty() && int64_t(frontier.size()) < 8 * int64_t(nt)) {
    std::vector<Node> next;
    for (const Node& nd : frontier) {
      if (nd.hi - nd.lo <= leaf_size) {
        leaves.push_back({nd.lo, nd.hi});
        continue;
      }
      split_node(nd, w0, part0, nt, [&](const Node& c) { next.push_back(c); });
    }
    frontier.swap(next);
  }
  std::vector<std::vector<std::pair<int64_t, int64_t>>> found(frontier.size());
  OmpErrors errors;  // the scratch, stacks and leaf lists grow inside the loop
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> w;
    std::vector<uint8_t> part;
    std::vector<Node> stack;
    const bool ready = errors.run([&] { w.resize(static_cast<size_t>(d)); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t f = 0; f < int64_t(frontier.size()); ++f) {
      if (!ready) continue;
      errors.run([&] {
        stack.assign(1, frontier[f]);
        while (!stack.empty()) {
          const Node nd = stack.back();
          stack.pop_back();
          if (nd.hi - nd.lo <= leaf_size) {
            found[f].push_back({nd.lo, nd.hi});
            continue;
          }
          split_node(nd, w, part, 1, [&](const Node& c) { stack.push_back(c); });
        }
      });
    }
  }
  errors.rethrow();
  for (auto& v : found) leaves.insert(leaves.end(), v.begin(), v.end());
  std::sort(leaves.begin(), leaves.end());
}

/// Exact (k+1) neighbours of the sampled points, X streamed in chunks (no copy of X):
/// returns each sampled point's true k-th neighbour distance (itself excluded), and in
/// `id_mle` the intrinsic dimension of the data at the scale of the k-th neighbour: the
/// Levina-Bickel maximum-likelihood estimate with MacKay and Ghahramani's pooling,
/// 1 / mean over the points of (1 / (k - 1)) sum_{j<k} log(T_k / T_j), on Euclidean distances
/// T (chords for cosine); points whose T_1 or T_k is 0 (duplicates) are left out. NaN when
/// k < 3, for inner products, or when no point is left. `nbr` (m x k): the k neighbours.
template <typename T>
std::vector<double> sample_truth(const T* X, int64_t n, int64_t d, int64_t k, Metric metric,
                                 const std::vector<int64_t>& sample, int nt, double* id_mle,
                                 std::vector<int64_t>& nbr) {
  const int64_t m = int64_t(sample.size());
  const int64_t kk = std::min(k + 1, n);
  std::vector<T> Q(static_cast<size_t>(m * d));
  for (int64_t s = 0; s < m; ++s)
    std::memcpy(&Q[s * d], X + sample[s] * d, static_cast<size_t>(d) * sizeof(T));
  std::vector<std::vector<std::pair<T, int64_t>>> best(static_cast<size_t>(m));
  // Chunks of 32,768 rows: the exact kernel's copies of a chunk (centred rows, packed panels,
  // 2 x 32,768 d sizeof(T) bytes) stay small next to the graph; smaller chunks pay the
  // per-chunk heap refill and set-up (8,192 rows took twice the CPU time at 200,000 x 128).
  const int64_t chunk = std::max<int64_t>(kk, std::min<int64_t>(n, 32768));
  std::vector<int64_t> ci(static_cast<size_t>(m * kk));
  std::vector<T> cd(static_cast<size_t>(m * kk));
  // float32 Euclidean data is searched in float64 (the certified search): the float32
  // kernel ranks by ||y||^2 - 2 x.y on rows centred at the chunk's mean, whose rounding
  // swapped neighbours of clusters far apart (4 clusters 1,000 apart: the truth's k-th
  // distances too large, recall 0.996 reported for a graph of 0.951). The distances are the
  // same finishing step's, rounded to T as before.
  const bool wide =
      std::is_same_v<T, float> && (metric == Metric::Euclidean || metric == Metric::SqEuclidean);
  std::vector<double> Qw, Cw, cdw;
  if (wide) {
    Qw.assign(Q.begin(), Q.end());
    cdw.resize(static_cast<size_t>(m * kk));
  }
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t c1 = std::min(n, c0 + chunk), kc = std::min(kk, c1 - c0);
    if (wide) {
      Cw.assign(X + c0 * d, X + c1 * d);
      knn_search<double>(Cw.data(), c1 - c0, Qw.data(), m, d, kc, metric, false, nt, ci.data(),
                         cdw.data());
      for (int64_t t = 0; t < m * kc; ++t) cd[t] = T(cdw[t]);
    } else {
      knn_search<T>(X + c0 * d, c1 - c0, Q.data(), m, d, kc, metric, false, nt, ci.data(),
                    cd.data());
    }
    for (int64_t s = 0; s < m; ++s) {
      auto& b = best[s];
      for (int64_t t = 0; t < kc; ++t) b.push_back({cd[s * kc + t], ci[s * kc + t] + c0});
      std::sort(b.begin(), b.end());
      if (int64_t(b.size()) > kk) b.resize(static_cast<size_t>(kk));
    }
  }
  std::vector<double> kth(static_cast<size_t>(m));
  nbr.assign(static_cast<size_t>(m * k), -1);
  for (int64_t s = 0; s < m; ++s) {
    auto& b = best[s];
    auto it =
        std::find_if(b.begin(), b.end(), [&](const auto& e) { return e.second == sample[s]; });
    if (it != b.end())
      b.erase(it);
    else
      b.pop_back();
    kth[s] = double(b[static_cast<size_t>(k - 1)].first);
    for (int64_t t = 0; t < k; ++t) nbr[s * k + t] = b[static_cast<size_t>(t)].second;
  }
  // Euclidean length of a kernel distance (squared for sqeuclidean, 1 - cos for cosine).
  auto length = [&](double v) {
    switch (metric) {
      case Metric::SqEuclidean:
        return std::sqrt(std::max(0.0, v));
      case Metric::Cosine:
        return std::sqrt(std::max(0.0, 2.0 * v));
      default:
        return v;
    }
  };
  double inv_sum = 0;
  int64_t used = 0;
  if (k >= 3 && metric != Metric::InnerProduct) {
    for (int64_t s = 0; s < m; ++s) {
      const auto& b = best[s];
      const double tk = length(double(b[static_cast<size_t>(k - 1)].first));
      const double t1 = length(double(b[0].first));
      if (!(t1 > 0) || !(tk > t1 * (1 + 1e-12)) || !std::isfinite(tk)) continue;
      double acc = 0;
      for (int64_t j = 0; j < k - 1; ++j) acc += std::log(tk / length(double(b[j].first)));
      inv_sum += acc / double(k - 1);
      ++used;
    }
  }
  *id_mle =
      used > 0 && inv_sum > 0 ? double(used) / inv_sum : std::numeric_limits<double>::quiet_NaN();
  return kth;
}

}  // namespace nnd

namespace nnd {

/// Node seed of a list of the clustered start (pass, list id) and the id of its p-th part.
inline uint64_t cluster_node(uint64_t seed, uint64_t pass, uint64_t id) {
  return hash3(seed, 0xC1A5 + pass, id);
}
inline uint64_t cluster_child(uint64_t id, int64_t p) {
  return id * 1000003 + uint64_t(p) + 1;
}

/// Floyd's algorithm on the hashed stream hash3(seed, salt, r): m distinct positions of
/// [0, L), sorted (all of them when m >= L).
inline std::vector<int64_t> floyd_sample(int64_t L, int64_t m, uint64_t seed, uint64_t salt) {
  std::set<int64_t> chosen;
  if (m >= L) {
    for (int64_t i = 0; i < L; ++i) chosen.insert(i);
  } else {
    for (int64_t j = L - m, r = 0; j < L; ++j, ++r) {
      const int64_t t = int64_t(hash3(seed, salt, uint64_t(r)) % uint64_t(j + 1));
      if (!chosen.insert(t).second) chosen.insert(j);
    }
  }
  return std::vector<int64_t>(chosen.begin(), chosen.end());
}

/// Centres of a split of L points into parts of about S: at most 128, at least 2.
inline int64_t split_parts(int64_t L, int64_t S) {
  return std::min<int64_t>(128, std::max<int64_t>(2, (L + S / 2) / S));
}
/// Points of the k-means sample of a split into C parts.
inline int64_t split_sample(int64_t L, int64_t C) {
  return std::min<int64_t>(L, std::max<int64_t>(64 * C, 10000));
}

/// k-means centres (float64, one k-means++ restart, 15 Lloyd steps) of the sample rows
/// (ns x d; unit rows for cosine, scaled by the float 1 / ||x|| as the scores are), in T.
template <typename T>
std::vector<T> split_centres(const T* rows, int64_t ns, int64_t d, int64_t C, Metric metric,
                             uint64_t seed, uint64_t node, int nt) {
  std::vector<double> Xs(static_cast<size_t>(ns * d));
  for (int64_t s = 0; s < ns; ++s) {
    const T* x = rows + s * d;
    double f = 1.0;
    if (metric == Metric::Cosine) {
      double q = 0;
      for (int64_t t = 0; t < d; ++t) q += double(x[t]) * x[t];
      f = q > 0 ? double(T(1.0 / std::sqrt(q))) : 0.0;
    }
    for (int64_t t = 0; t < d; ++t) Xs[s * d + t] = double(x[t]) * f;
  }
  const KMeansResult km = kmeans(Xs.data(), ns, d, C, 1, 15, 0.0, hash3(seed, node, 1), nt);
  std::vector<T> cent(static_cast<size_t>(C * d));
  for (int64_t e = 0; e < C * d; ++e) cent[e] = T(km.centers[e]);
  return cent;
}

/// Nearest centre of each of the m rows Q (first) and its second nearest when d2 <= overlap
/// d1 (second, else -1), by the exact kernel (euclidean, or cosine).
template <typename T>
void split_assign(const T* cent, int64_t C, const T* Q, int64_t m, int64_t d, Metric metric,
                  double overlap, int nt, int32_t* first, int32_t* second) {
  const Metric am = metric == Metric::Cosine ? Metric::Cosine : Metric::Euclidean;
  const int64_t QB = 16384;
  std::vector<int64_t> ai(static_cast<size_t>(std::min(m, QB) * 2));
  std::vector<T> ad(static_cast<size_t>(std::min(m, QB) * 2));
  for (int64_t q0 = 0; q0 < m; q0 += QB) {
    const int64_t q1 = std::min(m, q0 + QB);
    knn_search<T>(cent, C, Q + q0 * d, q1 - q0, d, 2, am, false, nt, ai.data(), ad.data());
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t r = (q - q0) * 2;
      first[q] = int32_t(ai[r]);
      second[q] = double(ad[r + 1]) <= overlap * double(ad[r]) ? int32_t(ai[r + 1]) : -1;
    }
  }
}

/// Lists of one split -> its parts: empty lists dropped, a list holding at least 90 % of the
/// L points (no real split: duplicates, one dominant cluster) cut into consecutive chunks of S.
inline void split_parts_of(std::vector<std::vector<int32_t>>& lists, int64_t L, int64_t S,
                           std::vector<std::vector<int32_t>>& out) {
  for (auto& l : lists) {
    if (l.empty()) continue;
    if (int64_t(l.size()) * 10 >= L * 9) {
      for (int64_t a = 0; a < int64_t(l.size()); a += S)
        out.emplace_back(l.begin() + a, l.begin() + std::min<int64_t>(int64_t(l.size()), a + S));
    } else {
      out.push_back(std::move(l));
    }
  }
}

/// The clustered start of one list of points (all of X in nndescent_graph; one cell of the
/// top split in geoml.dask): split depth-first until a list holds at most 1.5 S points, each
/// list searched by the exact kernel and merged into the heaps G.
template <typename T>
struct ClusterStart {
  const T* X;
  int64_t d, k;
  Metric metric;
  const T* inv;
  const Scorer<T>& score;
  int64_t S;
  double overlap;
  uint64_t seed;
  int nt;
  bool verbose;
  const int32_t* rank = nullptr;  // label of each point in G (null: the point itself)
  bool stop_unlocal = false;      // a split of over 4 S points that is not local ends the start
  mutable bool stopped = false;   // ... and it did: the lists left are not searched

  /// Splits the points `pts` (more than 1.5 S) into about |pts| / S overlapping lists.
  /// Returns false, leaving `out` empty, when the split is not local: more than half of the
  /// points are nearly as close to a second centre as to their own (no structure at this
  /// scale, as in a Gaussian blob of high intrinsic dimension, whose neighbours a split
  /// scatters over its parts) and the list is small enough (at most 4 S) to search whole.
  bool split(const std::vector<int32_t>& pts, uint64_t node,
             std::vector<std::vector<int32_t>>& out) const {
    const int64_t L = int64_t(pts.size());
    const int64_t C = split_parts(L, S);
    const std::vector<int64_t> pick = floyd_sample(L, split_sample(L, C), seed, node);
    const int64_t ns = int64_t(pick.size());
    std::vector<T> rows(static_cast<size_t>(ns * d));
    for (int64_t s = 0; s < ns; ++s)
      std::memcpy(&rows[s * d], X + int64_t(pts[pick[s]]) * d, static_cast<size_t>(d) * sizeof(T));
    const std::vector<T> cent = split_centres(rows.data(), ns, d, C, metric, seed, node, nt);
    rows.clear();
    rows.shrink_to_fit();
    // Two nearest centres of every point (the exact kernel, queries gathered in blocks).
    std::vector<int32_t> first(static_cast<size_t>(L)), second(static_cast<size_t>(L), -1);
    const int64_t QB = 16384;
    std::vector<T> Q(static_cast<size_t>(std::min(L, QB) * d));
    for (int64_t q0 = 0; q0 < L; q0 += QB) {
      const int64_t q1 = std::min(L, q0 + QB);
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t q = q0; q < q1; ++q)
        std::memcpy(&Q[(q - q0) * d], X + int64_t(pts[q]) * d, static_cast<size_t>(d) * sizeof(T));
      split_assign(cent.data(), C, Q.data(), q1 - q0, d, metric, overlap, nt, &first[q0],
                   &second[q0]);
    }
    int64_t dup = 0;
    for (int64_t q = 0; q < L; ++q) dup += second[q] >= 0;
    if (verbose)
      std::fprintf(stderr, "[geoml] nndescent: split of %lld points into %lld, %.0f%% in two\n",
                   (long long)L, (long long)C, 100.0 * double(dup) / double(L));
    if (2 * dup > L && stop_unlocal && L > 4 * S) {  // (smaller: searched whole, below)
      stopped = true;
      return false;
    }
    if (L <= 4 * S && 2 * dup > L) return false;
    std::vector<std::vector<int32_t>> lists(static_cast<size_t>(C));
    for (int64_t q = 0; q < L; ++q) {  // in order: deterministic lists
      lists[first[q]].push_back(pts[q]);
      if (second[q] >= 0) lists[second[q]].push_back(pts[q]);
    }
    split_parts_of(lists, L, S, out);
    return true;
  }

  /// Depth-first from the list `root` (node `root_id`): a list is split until it holds at
  /// most 1.5 S points, then searched; `perm` gets the points as first met in a list (from
  /// position `placed`, `seen` marking them). Returns {lists, memberships, largest list}.
  std::array<int64_t, 3> run(std::vector<int32_t> root, uint64_t root_id, uint64_t pass,
                             Graph<T>& G, int32_t* perm, uint8_t* seen, int64_t& placed) const {
    const int64_t Smax = S + S / 2;  // a list above this is split again
    std::vector<std::vector<int32_t>> stack(1);
    std::vector<uint64_t> ids{root_id};
    stack[0] = std::move(root);
    int64_t n_lists = 0, memberships = 0, Lmax = 0;
    std::vector<T> buf, ld;
    std::vector<int64_t> li;
    while (!stack.empty()) {
      std::vector<int32_t> pts = std::move(stack.back());
      const uint64_t id = ids.back();
      stack.pop_back();
      ids.pop_back();
      const int64_t L = int64_t(pts.size());
      std::vector<std::vector<int32_t>> parts;
      if (L > Smax && split(pts, cluster_node(seed, pass, id), parts)) {
        // pushed in reverse, so the first part is searched first
        for (int64_t p = int64_t(parts.size()) - 1; p >= 0; --p) {
          stack.push_back(std::move(parts[p]));
          ids.push_back(cluster_child(id, p));
        }
        continue;
      }
      if (stopped) break;
      // Join order of the iterations (and the finish): points as first met in a list.
      for (const int32_t i : pts)
        if (!seen[i]) seen[i] = 1, perm[placed++] = i;
      ++n_lists;
      memberships += L;
      Lmax = std::max(Lmax, L);
      if (L < 2) continue;
      const int64_t kk = std::min(k, L - 1);
      buf.resize(static_cast<size_t>(L * d));
      ld.resize(static_cast<size_t>(L * kk));
      li.resize(static_cast<size_t>(L * kk));
      const int32_t* M = pts.data();
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t p = 0; p < L; ++p)
        std::memcpy(&buf[p * d], X + int64_t(M[p]) * d, static_cast<size_t>(d) * sizeof(T));
      knn_search<T>(buf.data(), L, nullptr, 0, d, kk, metric, true, nt, li.data(), ld.data(), false,
                    false);
      // A list's points are distinct: each row of the graph is touched by one thread.
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t p = 0; p < L; ++p) {
        const int64_t i = M[p];
        const int64_t gi = rank ? rank[i] : i;
        for (int64_t t = 0; t < kk; ++t) {
          const int64_t q = li[p * kk + t];
          const int32_t j = M[q], gj = rank ? rank[j] : j;
          const T s = score.rows(i, j, &buf[p * d], &buf[q * d]);
          if (G.beats_root(gi, s, gj)) G.push(gi, s, gj, 1);
        }
      }
    }
    return {n_lists, memberships, Lmax};
  }
};

/// The rows' norms for cosine (empty vectors for other metrics): ||x_i|| in float64 for the
/// exact distances and 1 / ||x_i|| (0 for a zero row) for the scores; the same bits for any
/// thread count (one serial sum per row).
template <typename T>
void cosine_norms(const T* X, int64_t n, int64_t d, Metric metric, int nt, std::vector<T>& inv,
                  std::vector<double>& norms) {
  if (metric != Metric::Cosine) return;
  inv.resize(static_cast<size_t>(n));
  norms.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += double(X[i * d + t]) * X[i * d + t];
    norms[i] = std::sqrt(s);
    inv[i] = s > 0 ? T(1.0 / norms[i]) : T(0);
  }
}

/// The scorer with this ISA's pair kernels.
template <typename T>
Scorer<T> make_scorer(const T* X, int64_t d, Metric metric, const T* inv, SimdIsa isa) {
  return Scorer<T>{X,
                   d,
                   metric,
                   inv,
                   GEOML_SIMD_PICK(isa, pair_sqdist<T>),
                   GEOML_SIMD_PICK(isa, pair_dot<T>),
                   GEOML_SIMD_PICK(isa, pair_sqdist4<T>),
                   GEOML_SIMD_PICK(isa, pair_dot4<T>)};
}

}  // namespace nnd

template <typename T>
void nndescent_graph(const T* X, int64_t n, int64_t d, int64_t k, Metric metric,
                     const NNDescentOptions& opt, int n_threads, std::vector<int64_t>& indices,
                     std::vector<T>& distances, NNDescentInfo* info, bool verbose) {
  using namespace nnd;
  if (n < 2 || d < 1) throw std::invalid_argument("nndescent: need at least 2 points");
  if (n >= (int64_t(1) << 31) - 1)
    throw std::invalid_argument("nndescent: at most 2^31 - 2 points");
  if (k < 1 || k > n - 1)
    throw std::invalid_argument("nndescent: k=" + std::to_string(k) + " must be in [1, " +
                                std::to_string(n - 1) + "]");
  if (opt.n_trees < 0 || opt.leaf_size < 0 || opt.max_iter < 0 || opt.max_candidates < 0 ||
      opt.max_extra_trees < 0 || opt.adaptive_trees < 0 || opt.n_check < 0 || !(opt.delta >= 0) ||
      !(opt.iter_budget >= 0))
    throw std::invalid_argument("nndescent: negative option");
  if (opt.cluster_size < 0) throw std::invalid_argument("nndescent: negative cluster_size");
  if (!(opt.overlap >= 1.0)) throw std::invalid_argument("nndescent: overlap must be >= 1");
  if (!(opt.cluster_min_dim >= 0))
    throw std::invalid_argument("nndescent: cluster_min_dim must be >= 0");
  const int nt = resolve_threads(n_threads);
  const SimdIsa isa = simd_isa();
  const PairFn<T> dot = GEOML_SIMD_PICK(isa, pair_dot<T>);
  const Pair4Fn<T> dot4 = GEOML_SIMD_PICK(isa, pair_dot4<T>);
  const PairF64Fn<T> sq64 = GEOML_SIMD_PICK(isa, pair_sqdist_f64<T>);
  const PairF64Fn<T> dot64 = GEOML_SIMD_PICK(isa, pair_dot_f64<T>);
  const uint64_t seed = opt.seed;
  // Forest defaults (set once the intrinsic dimension is known, below).
  int64_t leaf_size = 0, n_trees = 0;
  const int64_t c = opt.max_candidates > 0
                        ? opt.max_candidates
                        : std::min<int64_t>(60, std::max<int64_t>(k, std::min<int64_t>(20, 2 * k)));
  const double eps = std::numeric_limits<T>::epsilon();
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&]() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double c0 = cpu_seconds();
  auto cpu = [&]() { return cpu_seconds() - c0; };

  std::vector<T> inv;         // 1 / ||x_i|| for the scores (cosine)
  std::vector<double> norms;  // ||x_i|| for the exact distances (cosine)
  cosine_norms(X, n, d, metric, nt, inv, norms);
  Scorer<T> score = make_scorer(X, d, metric, inv.data(), isa);
  const ExactDist<T> exact{X, d, metric, norms.data(), sq64, dot64};
  // Labels of the working graph (Graph): point ord[l] is label l, rank its inverse; the
  // identity until the first tree (or the iterations) relabels the points (relabel, below).
  std::vector<int32_t> ord(static_cast<size_t>(n)), rank(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ord[i] = rank[i] = int32_t(i);
  score.ord = ord.data();

  // The checked sample (Floyd's algorithm on the hashed stream) and its exact k-th distances.
  const int64_t m = std::min(opt.n_check, n);
  std::vector<int64_t> sample;
  {
    std::set<int64_t> chosen;
    if (m == n) {
      for (int64_t i = 0; i < n; ++i) chosen.insert(i);
    } else {
      for (int64_t j = n - m, r = 0; j < n; ++j, ++r) {
        const int64_t t = int64_t(hash3(seed, 0xC4EC, uint64_t(r)) % uint64_t(j + 1));
        if (!chosen.insert(t).second) chosen.insert(j);
      }
    }
    sample.assign(chosen.begin(), chosen.end());
  }
  std::vector<double> kth;
  std::vector<int64_t> truth;  // the sampled points' k true neighbours (m x k)
  double id_mle = std::numeric_limits<double>::quiet_NaN();
  if (m > 0) kth = sample_truth(X, n, d, k, metric, sample, nt, &id_mle, truth);
  info->intrinsic_dim = id_mle;
  if (verbose)
    std::fprintf(
        stderr,
        "[geoml] nndescent: %lld points checked exactly (intrinsic dimension %.1f), %.1f s "
        "(cpu %.1f s)\n",
        (long long)m, id_mle, elapsed(), cpu());

  Graph<T> G(n, k);
  G.key = ord.data();
  auto measure = [&]() -> double {
    int64_t hits = 0;
#pragma omp parallel for schedule(static) reduction(+ : hits) num_threads(nt)
    for (int64_t s = 0; s < m; ++s) {
      const int64_t i = sample[s], li = rank[i];
      // Ties within rounding count as hits. A Euclidean distance's rounding is relative to
      // itself; a cosine distance 1 - cos's is absolute (cos is rounded near 1: about
      // sqrt(d) / 2 eps on parallel rows), so a perfect graph of rank-1 data (every distance 0
      // or 2) measured 0.92 against a truth whose k-th distances were exactly 0.
      const double tol = metric == Metric::Cosine
                             ? eps * (8 * (std::abs(kth[s]) + 1) + std::sqrt(double(d)))
                             : 8 * eps * std::abs(kth[s]);
      for (int64_t t = 0; t < k; ++t) {
        const int64_t lj = G.idx[li * k + t];
        if (lj < 0) continue;
        const int64_t j = ord[lj];
        // The same function as the truth's finishing step (knn_search), so a true k-th
        // neighbour's distance matches kth to the bit.
        const double dist =
            detail::exact_distance(X + i * d, X + j * d, d, metric, norms.empty() ? 0.0 : norms[i],
                                   norms.empty() ? 0.0 : norms[j]);
        if (dist <= kth[s] + tol) ++hits;
      }
    }
    info->hits = hits;
    info->n_checked = m;
    info->recall = m > 0 ? double(hits) / (double(m) * double(k)) : 1.0;
    return info->recall;
  };

  // 1. Random-projection forest; every leaf searched exactly.
  std::vector<int32_t> perm(static_cast<size_t>(n)), scratch(static_cast<size_t>(n));
  std::vector<std::pair<int64_t, int64_t>> leaves;
  // Relabel the points in join order (perm: the leaf order of the last tree, or the
  // clusters' order): a point's candidates and leaf mates are mostly its neighbours in that
  // order, so their graph rows, candidate lists and reverse entries lie in a narrow band of
  // memory instead of all over it (X is still read in place, through ord). Ties and
  // priorities go by the points, so the graph is the same whatever the labels. Then labels
  // are the positions in the join order and ord that order; the tree's perm and scratch are
  // freed unless keep_tree (a later tree or partition allocates them again).
  bool in_join_order = false;
  auto relabel = [&](bool keep_tree) {
    if (!opt.relabel) return;
    if (!in_join_order) {
      in_join_order = true;
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t l = 0; l < n; ++l) rank[perm[l]] = int32_t(l);
      scratch.resize(static_cast<size_t>(n));
      std::vector<int32_t>& to = scratch;  // old label -> new label
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t r = 0; r < n; ++r) to[r] = rank[ord[r]];
      std::copy(perm.begin(), perm.end(), ord.begin());  // (G, score and the lists point at ord)
      Graph<T> H(n, k);
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t r = 0; r < n; ++r) {
        const int64_t l = to[r];
        for (int64_t t = 0; t < k; ++t) {
          const int32_t j = G.idx[r * k + t];
          H.idx[l * k + t] = j < 0 ? j : to[j];
          H.score[l * k + t] = G.score[r * k + t];
          H.flag[l * k + t] = G.flag[r * k + t];
        }
      }
      std::swap(G.idx, H.idx);
      std::swap(G.score, H.score);
      std::swap(G.flag, H.flag);
    }
    if (!keep_tree) {
      std::vector<int32_t>().swap(perm);
      std::vector<int32_t>().swap(scratch);
    }
  };
  // The point joined at position pos, and its label.
  auto joined = [&](int64_t pos) -> int64_t { return perm.empty() ? ord[pos] : perm[pos]; };
  auto joined_label = [&](int64_t pos) -> int64_t { return perm.empty() ? pos : rank[perm[pos]]; };
  // Under iter_budget, the forest of high intrinsic dimension (large leaves) stops after the
  // first tree's split, before any leaf is searched, when that split predicts a start that
  // NN-descent cannot take to the target within the budget (see forest_stops, below).
  bool start_stopped = false;
  std::function<bool()> forest_stops;
  auto add_tree = [&](int64_t tr) {
    const double cpu_tree = cpu();
    perm.resize(static_cast<size_t>(n));
    scratch.resize(static_cast<size_t>(n));
    build_tree(X, n, d, metric, leaf_size, hash3(seed, 0x7EE, uint64_t(tr)), inv.data(), dot, dot4,
               nt, perm, scratch, leaves);
    in_join_order = false;
    if (tr == 0 && forest_stops && forest_stops()) {
      start_stopped = true;
      std::vector<int32_t>().swap(perm);  // labels stay the identity: no leaf was searched
      std::vector<int32_t>().swap(scratch);
      return;
    }
    const double cpu_split = cpu() - cpu_tree;
    // The first tree's leaves are ranges of labels (their heaps side by side); the later
    // trees' leaf mates are mostly near in its order.
    if (tr == 0) relabel(true);
    OmpErrors errors;  // the exact kernel's lists grow inside the loop (and it allocates)
#pragma omp parallel num_threads(nt)
    {
      std::vector<T> buf;
      std::vector<T> ld;
      std::vector<int64_t> li;
      std::vector<int32_t> lab;  // the leaf's points' labels in G
      const bool ready = errors.run([&] {
        buf.resize(static_cast<size_t>(leaf_size * d));
        lab.resize(static_cast<size_t>(leaf_size));
      });
#pragma omp for schedule(dynamic, 4)
      for (int64_t l = 0; l < int64_t(leaves.size()); ++l) {
        if (!ready) continue;
        errors.run([&] {
          const int64_t lo = leaves[l].first, L = leaves[l].second - lo;
          if (L < 2) return;
          for (int64_t p = 0; p < L; ++p) {
            std::memcpy(&buf[p * d], X + int64_t(perm[lo + p]) * d,
                        static_cast<size_t>(d) * sizeof(T));
            lab[p] = rank[perm[lo + p]];
          }
          // The next small leaf of this thread's chunk of 4: its rows and heap roots asked for
          // ahead (-8% CPU in the leaves at 10^6 x 128, X beyond L3; the same lists).
          if ((l + 1) % 4 != 0 && l + 1 < int64_t(leaves.size()) &&
              leaves[l + 1].second - leaves[l + 1].first <= kAllPairsLeaf)
            for (int64_t p = leaves[l + 1].first; p < leaves[l + 1].second; ++p) {
              const int64_t i = perm[p], li = rank[i];
              prefetch_row(X + i * d, d);
              __builtin_prefetch(&G.score[li * k], 0, 3);
              __builtin_prefetch(&G.idx[li * k], 0, 3);
            }
          const int32_t* M = perm.data() + lo;
          if (L > kAllPairsLeaf) {  // the exact kernel's kk nearest of each row, offered
            const int64_t kk = std::min(k, L - 1);
            ld.resize(static_cast<size_t>(L * kk));
            li.resize(static_cast<size_t>(L * kk));
            knn_search<T>(buf.data(), L, nullptr, 0, d, kk, metric, true, 1, li.data(), ld.data(),
                          false, false);
            for (int64_t p = 0; p < L; ++p) {
              for (int64_t t = 0; t < kk; ++t) {
                const int64_t q = li[p * kk + t];
                const T s = score.rows(M[p], M[q], &buf[p * d], &buf[q * d]);  // rows in cache
                if (G.beats_root(lab[p], s, lab[q])) G.push(lab[p], s, lab[q], 1);
              }
            }
            return;
          }
          // Small leaf: every pair scored (four at a time, rows in cache) and offered to both
          // endpoints, kept only when it beats the row's worst entry (most offers stop at that
          // comparison once the first tree has filled the lists): no per-leaf heaps.
          int32_t ids[4];
          const T* rows[4];
          T s4[4];
          auto offer = [&](int64_t p, int64_t q, T s) {  // positions in the leaf
            const int32_t i = lab[p], j = lab[q];
            if (G.beats_root(i, s, j)) G.push(i, s, j, 1);
            if (G.beats_root(j, s, i)) G.push(j, s, i, 1);
          };
          for (int64_t p = 0; p + 1 < L; ++p) {
            const int32_t i = M[p];
            const T* x = &buf[p * d];
            int64_t q = p + 1;
            for (; q + 4 <= L; q += 4) {
              for (int u = 0; u < 4; ++u) ids[u] = M[q + u], rows[u] = &buf[(q + u) * d];
              score.four_rows(i, x, ids, rows, s4);
              for (int u = 0; u < 4; ++u) offer(p, q + u, s4[u]);
            }
            for (; q < L; ++q) offer(p, q, score.rows(i, M[q], x, &buf[q * d]));
          }
        });
      }
    }
    errors.rethrow();
    if (verbose) {
      double pairs = 0;  // distance evaluations of the tree's leaves
      for (const auto& lf : leaves)
        pairs += 0.5 * double(lf.second - lf.first) * double(lf.second - lf.first - 1);
      std::fprintf(stderr,
                   "[geoml] nndescent: tree %lld (%lld leaves, %.0f pairs per point), %.1f s (cpu "
                   "%.1f s: splits %.2f s, leaves %.2f s)\n",
                   (long long)tr, (long long)leaves.size(), pairs / double(n), elapsed(), cpu(),
                   cpu_split, cpu() - cpu_tree - cpu_split);
    }
  };
  // 1'. Or overlapping clusters searched exactly: k-means on a sample, each point in its
  // nearest cluster and, when nearly as close (d2 <= overlap d1), in its second; every cluster
  // searched by the exact kernel (all threads), its lists merged into the heaps.
  // From 4 clusters' worth of points (below, the forest and one exact search cost alike).
  const int64_t S = opt.cluster_size > 0 ? opt.cluster_size : 8192;
  // ... when the sample's intrinsic dimension is at least cluster_min_dim (or unknown): on
  // data of low intrinsic dimension NN-descent mixes fast, and the forest's small leaves are a
  // cheaper start than cells of cluster_size points, most of whose points lie near a boundary.
  const bool low_dim = opt.cluster_min_dim > 0 && id_mle < opt.cluster_min_dim;
  const bool use_clusters =
      opt.clusters && metric != Metric::InnerProduct && n >= 4 * S && !low_dim;
  // Forest defaults (docs/design/neighbors.md). Measured low intrinsic dimension: many trees
  // of small leaves, searched pair by pair (at 200,000 x 128 on the bench's 8-D manifold, 12
  // trees of 64-point leaves start at recall 0.86 against 0.76 for 4 of 512, for less work,
  // and one NN-descent iteration instead of two reaches 0.98). Otherwise (tuned at 50,000 x
  // 128): a few trees of large leaves, each searched by the exact kernel.
  leaf_size = std::max<int64_t>(
      k + 1, opt.leaf_size > 0 ? opt.leaf_size : std::max<int64_t>(low_dim ? 64 : 512, 4 * k));
  n_trees = opt.n_trees > 0 ? opt.n_trees : low_dim ? 12 : 4;
  // Under iter_budget (a caller that has a cheaper exact search), the first partition stops
  // at a split that is not local: the overlapping cells of data without structure at the
  // cells' scale cost about an exact search before NN-descent starts (Gaussian or a few large
  // blobs, 50,000 x 64: the start 2.0-2.7 s against the exact search's 3 s), and
  // NN-descent's iterations there are slow (15 to reach 0.984). Decided on the split's
  // counts only: the same for any thread count.
  auto add_clusters = [&](uint64_t pass) {
    std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
    int64_t placed = 0;
    std::vector<int32_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[i] = int32_t(i);
    perm.resize(static_cast<size_t>(n));
    const ClusterStart<T> cs{X,
                             d,
                             k,
                             metric,
                             inv.data(),
                             score,
                             S,
                             opt.overlap,
                             seed,
                             nt,
                             verbose,
                             rank.data(),
                             pass == 0 && opt.iter_budget > 0};
    const auto st = cs.run(std::move(all), 1, pass, G, perm.data(), seen.data(), placed);
    in_join_order = false;
    start_stopped = cs.stopped;
    if (verbose && cs.stopped)
      std::fprintf(stderr,
                   "[geoml] nndescent: no structure at the cells' scale (iter_budget): start "
                   "stopped\n");
    if (verbose)
      std::fprintf(stderr,
                   "[geoml] nndescent: %lld clusters searched (%lld memberships, largest %lld), "
                   "%.1f s (cpu %.1f s)\n",
                   (long long)st[0], (long long)st[1], (long long)st[2], elapsed(), cpu());
  };
  // One NN-descent iteration from a start of sampled recall s leaves a miss rate of about
  // kIterMiss (1 - s)^kIterPow of the checked points (the 8-D manifold, where NN-descent mixes
  // best: see the trees added below).
  constexpr double kIterMiss = 0.215, kIterPow = 1.33;
  if (!use_clusters && opt.iter_budget > 0 && !low_dim && m > 0) {
    // The forest's locality test (under iter_budget, intrinsic dimension at least
    // cluster_min_dim or unknown): a leaf is searched exactly, so the first tree's start recall
    // is the share of the checked points' true neighbours in their own leaf, counted from the
    // split and the checked sample's exact lists alone (m k look-ups), and n_trees
    // independent trees predict a start of 1 - (1 - r1)^n_trees. The iterations the target
    // needs from there at the mixing of the 8-D manifold (kIterMiss) are a lower bound: at
    // this intrinsic dimension the forest's start 0.83-0.87 on 20 blobs in 64-128 D (20,000
    // points) took 5-7 iterations and a stall, 0.70 on 12-D manifold data stalled at 0.988, and
    // Gaussian 0.16-0.33 stalled at 0.46-0.60, against 1-3 predicted. So the forest stops,
    // before any leaf is searched, when that lower bound is more than one iteration and more
    // than half the budget. Gaussian 20,000 x 128: 4 trees and an iteration were 1.5-2x the
    // exact search. Counted on the exact lists and a thread-independent tree: the same stop
    // for any thread count.
    forest_stops = [&]() {
      int32_t* leaf_of = scratch.data();  // each point's leaf (build_tree's scratch is free)
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t l = 0; l < int64_t(leaves.size()); ++l)
        for (int64_t p = leaves[l].first; p < leaves[l].second; ++p) leaf_of[perm[p]] = int32_t(l);
      int64_t hits = 0;
      for (int64_t s = 0; s < m; ++s)
        for (int64_t t = 0; t < k; ++t) hits += leaf_of[truth[s * k + t]] == leaf_of[sample[s]];
      const double r1 = double(hits) / (double(m) * double(k));
      const double start = 1 - std::pow(1 - r1, double(n_trees));
      int64_t need = 0;  // optimistic iterations from the predicted start
      for (double miss = 1 - start; miss > 1 - opt.target_recall && need < opt.max_iter; ++need)
        miss = kIterMiss * std::pow(miss, kIterPow);
      const bool stop = double(need) > std::max(1.0, 0.5 * opt.iter_budget);
      if (verbose)
        std::fprintf(stderr,
                     "[geoml] nndescent: first tree's leaves hold %.3f of the checked "
                     "neighbours: start about %.3f after %lld trees, at least %lld iterations "
                     "(budget %.2f)%s\n",
                     r1, start, (long long)n_trees, (long long)need, opt.iter_budget,
                     stop ? ": no locality at the leaves' scale, start stopped" : "");
      return stop;
    };
  }
  if (use_clusters) {
    add_clusters(0);
  } else {
    // Trees added one at a time (at most adaptive_trees) while the start's sampled recall is
    // short of what one iteration brings to the target, when the trees that would take it
    // there are few (extrapolated from the last tree's gain): a tree costs about a quarter of
    // an iteration. Measured on the 8-D manifold (10^5-10^6 x 128, k = 15, leaves of 64): one
    // iteration leaves a miss rate of about 0.20 (1 - start)^1.33 of the checked points
    // (log residuals 0.07, folded into kIterMiss). Decided on the sampled recall only, so the
    // same trees for any thread count; a wrong guess costs time, never recall (the target
    // still drives the iterations).
    const bool grow = low_dim && opt.adaptive_trees > 0 && opt.max_iter > 0 && m > 0 && n_trees > 0;
    double prev = 0;  // sampled recall before the last tree
    for (int64_t tr = 0; tr < n_trees && !start_stopped; ++tr) {
      if (grow && tr > 0 && tr == n_trees - 1) prev = measure();
      add_tree(tr);
    }
    if (grow && !start_stopped) {
      const double want = std::pow((1 - opt.target_recall) / kIterMiss, 1 / kIterPow);
      double rec = measure();
      int64_t added = 0;
      while (rec < opt.target_recall && 1 - rec > want) {
        const double r = std::clamp((1 - rec) / (1 - prev), 0.5, 0.97);
        if (double(added) + std::ceil(std::log(want / (1 - rec)) / std::log(r)) >
            double(opt.adaptive_trees))
          break;
        add_tree(n_trees + added++);
        prev = rec;
        rec = measure();
        if (verbose)
          std::fprintf(stderr,
                       "[geoml] nndescent: tree %lld added, recall %.4f (one iteration to the "
                       "target wants %.4f)\n",
                       (long long)(n_trees + added - 1), rec, 1 - want);
      }
      n_trees += added;
    }
  }
  // Rows the forest left short (tiny leaves): hashed random points. After a stopped start
  // (its rows empty, the graph a placeholder for the caller's exact search), the next k
  // points, whose rows are read in order (Gaussian 20,000 x 128: 5 ms against 30 ms).
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t l = 0; l < n; ++l) {
    const int64_t i = ord[l];
    for (int64_t r = 0; G.idx[l * k] < 0; ++r) {
      int64_t j = start_stopped ? (i + 1 + r) % n
                  : r < 64 * k  ? int64_t(hash3(seed, uint64_t(i), uint64_t(r)) % uint64_t(n))
                                : (r - 64 * k) % n;
      if (j == i) continue;
      G.push(l, score(l, rank[j]), rank[j], 1);
    }
  }
  double rec = measure();
  if (verbose)
    std::fprintf(stderr, "[geoml] nndescent: start, recall %.4f, %.1f s (cpu %.1f s)\n", rec,
                 elapsed(), cpu());

  // 2. NN-descent.
  info->n_iter = 0;
  info->last_changes = 0;
  double prev_rec = rec;  // the sampled recall before the last iteration
  if (rec < opt.target_recall && opt.max_iter > 0 && !start_stopped) {
    relabel(false);  // labels in the join order of the iterations
    const int64_t chunk_rows = (n + 7) / 8;
    Candidates newc(n, c, chunk_rows, ord.data()), oldc(n, c, chunk_rows, ord.data());
    const int64_t BLOCK = 4096;  // bounds the update buffers: at most BLOCK c^2 entries
    struct Update {
      int32_t a, b;
      T s;
    };
    std::vector<std::vector<Update>> buffers(static_cast<size_t>(nt));
    std::vector<std::vector<int32_t>> partners(static_cast<size_t>(nt));
    int64_t extra_trees = 0, extra_passes = 0;
    for (int64_t it = 1; it <= opt.max_iter; ++it) {
      const double cpu_iter = cpu();
      newc.reset();
      oldc.reset();
      newc.salt = hash3(seed, uint64_t(it), 1);
      oldc.salt = hash3(seed, uint64_t(it), 2);
      // Candidates: forward and reverse neighbours, an eighth of the rows at a time (so the
      // priorities take n c / 2 bytes), each thread filling its own rows of it.
      for (int64_t r0 = 0; r0 < n; r0 += chunk_rows) {
        const int64_t r1 = std::min(n, r0 + chunk_rows);
        newc.begin_rows(r0);
        oldc.begin_rows(r0);
#pragma omp parallel num_threads(nt)
        {
          const int tid = thread_id(), T_ = thread_count();
          const int64_t lo = r0 + (r1 - r0) * tid / T_, hi = r0 + (r1 - r0) * (tid + 1) / T_;
          // Forward: the thread's own rows. Reverse: every entry naming one of them (one
          // unsigned compare per entry: this scan of the graph runs once per eighth). A list
          // keeps the c smallest distinct offers whatever their order.
          for (int64_t v = lo; v < hi; ++v)
            for (int64_t t = 0; t < k; ++t) {
              const int32_t u = G.idx[v * k + t];
              if (u >= 0) (G.flag[v * k + t] ? newc : oldc).push(v, u);
            }
          const uint64_t span = uint64_t(hi - lo);
          for (int64_t v = 0; v < n; ++v) {
            const int32_t* I = G.idx.data() + v * k;
            for (int64_t t = 0; t < k; ++t)
              if (uint64_t(int64_t(I[t]) - lo) < span)
                (G.flag[v * k + t] ? newc : oldc).push(I[t], int32_t(v));
          }
        }
      }
      // Sampled new entries become old.
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t v = 0; v < n; ++v)
        for (int64_t t = 0; t < k; ++t) {
          if (!G.flag[v * k + t]) continue;
          const int32_t u = G.idx[v * k + t];
          for (int64_t q = 0; q < c; ++q)
            if (newc.idx[v * c + q] == u) {
              G.flag[v * k + t] = 0;
              break;
            }
        }
      // Distance evaluations of this iteration's joins (verbose only).
      double pairs = 0;
      if (verbose) {
#pragma omp parallel for schedule(static) reduction(+ : pairs) num_threads(nt)
        for (int64_t v = 0; v < n; ++v) {
          double a = 0, b = 0;
          for (int64_t q = 0; q < c; ++q) {
            a += newc.idx[v * c + q] >= 0;
            b += oldc.idx[v * c + q] >= 0;
          }
          pairs += 0.5 * a * (a - 1) + a * b;
        }
      }
      const double cpu_cand = cpu() - cpu_iter;
      // Local joins, block by block.
      for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        const int64_t b1 = std::min(n, b0 + BLOCK);
        OmpErrors errors;
#pragma omp parallel num_threads(nt)
        {
          std::vector<Update>& out = buffers[static_cast<size_t>(thread_id())];
          out.clear();
          // A row's pairs are scored four at a time (a's loads shared, the same bits as one
          // by one); an update is kept when it beats an endpoint's worst entry and is not in
          // that list already (as the graph stood before the block).
          std::vector<int32_t>& part = partners[static_cast<size_t>(thread_id())];
          auto emit = [&](int32_t a, int32_t b, T s) {
            if ((G.beats_root(a, s, b) && !G.contains(a, b)) ||
                (G.beats_root(b, s, a) && !G.contains(b, a)))
              out.push_back({a, b, s});
          };
#pragma omp for schedule(dynamic, 64)
          for (int64_t pos = b0; pos < b1; ++pos) {
            errors.run([&] {                        // the update buffer and the partners grow
              const int64_t v = joined_label(pos);  // leaf order: neighbouring rows in cache
              const int32_t* N = &newc.idx[v * c];
              const int32_t* O = &oldc.idx[v * c];
              // At 10^6 x 128 X is larger than the L3 cache: the next point's candidate rows
              // and heap roots, and the candidate lists of the one after, are asked for ahead
              // (joins -12-16% CPU there; the same graph).
              if (pos + 2 < n) {
                const int64_t v2 = joined_label(pos + 2), v1 = joined_label(pos + 1);
                __builtin_prefetch(&newc.idx[v2 * c], 0, 3);
                __builtin_prefetch(&oldc.idx[v2 * c], 0, 3);
                for (const int32_t* C1 : {&newc.idx[v1 * c], &oldc.idx[v1 * c]})
                  for (int64_t q = 0; q < c; ++q)
                    if (C1[q] >= 0) {
                      prefetch_row(X + int64_t(ord[C1[q]]) * d, d);
                      __builtin_prefetch(&G.score[int64_t(C1[q]) * k], 0, 3);
                      __builtin_prefetch(&G.idx[int64_t(C1[q]) * k], 0, 3);
                    }
              }
              for (int64_t p = 0; p < c; ++p) {
                const int32_t a = N[p];
                if (a < 0) continue;
                part.clear();
                for (int64_t q = p + 1; q < c; ++q)
                  if (N[q] >= 0 && N[q] != a) part.push_back(N[q]);
                for (int64_t q = 0; q < c; ++q)
                  if (O[q] >= 0 && O[q] != a) part.push_back(O[q]);
                const int64_t np = int64_t(part.size());
                T s4[4];
                int64_t q = 0;
                for (; q + 4 <= np; q += 4) {
                  score.four(a, &part[q], s4);
                  for (int j = 0; j < 4; ++j) emit(a, part[q + j], s4[j]);
                }
                for (; q < np; ++q) emit(a, part[q], score(a, part[q]));
              }
            });
          }
          // (implicit barrier) apply: each thread owns a range of rows.
          const int tid = thread_id(), T_ = thread_count();
          const int64_t lo = n * tid / T_, hi = n * (tid + 1) / T_;
          for (int w = 0; w < T_; ++w)
            for (const Update& u : buffers[static_cast<size_t>(w)]) {
              if (u.a >= lo && u.a < hi) G.push(u.a, u.s, u.b, 2);
              if (u.b >= lo && u.b < hi) G.push(u.b, u.s, u.a, 2);
            }
        }
        errors.rethrow();
      }
      int64_t changes = 0;
#pragma omp parallel for schedule(static) reduction(+ : changes) num_threads(nt)
      for (int64_t e = 0; e < n * k; ++e)
        if (G.flag[e] == 2) {
          G.flag[e] = 1;
          ++changes;
        }
      info->n_iter = it;
      info->last_changes = changes;
      rec = measure();
      if (verbose)
        std::fprintf(
            stderr,
            "[geoml] nndescent: iteration %lld, %lld changes, %.0f pairs per point, recall %.4f, "
            "%.1f s (cpu %.1f s: candidates %.2f s, joins and check %.2f s)\n",
            (long long)it, (long long)changes, pairs / double(n), rec, elapsed(), cpu(), cpu_cand,
            cpu() - cpu_iter - cpu_cand);
      if (rec >= opt.target_recall) break;
      const bool stalled = double(changes) <= opt.delta * double(n) * double(k);
      if (opt.iter_budget > 0 && !(stalled && use_clusters && extra_passes < 1)) {
        // The iterations the target needs at this one's rate (miss shrunk by f): past the
        // budget (a caller's cost model: the exact search is cheaper), stop here. Decided on
        // the sampled recall only: the same stop for any thread count. Not when the
        // iterations stall from a clustered start: the second partition below repairs the
        // cells' boundaries (100,000 x 128 in 100 blobs: recall 0.955 after the start and
        // one iteration of 595 changes, 0.99 after the partition; the exact search costs
        // three times as much).
        const double f = (1 - rec) / (1 - prev_rec);
        const double left = f < 1 ? std::log((1 - opt.target_recall) / (1 - rec)) / std::log(f)
                                  : std::numeric_limits<double>::infinity();
        if (double(it) + left > opt.iter_budget) break;
      }
      if (stalled) {
        // Converged below the target: from a clustered start, one second partition (other
        // k-means seeds: other cell boundaries), then trees. The candidate lists (refilled by
        // every iteration) are freed meanwhile: the pass's lists and labels, or the
        // relabelling's copy of the graph, take their place within the memory bound.
        const bool pass = use_clusters && extra_passes < 1;
        if (!pass && extra_trees >= opt.max_extra_trees) break;
        newc = Candidates(0, c, 0, ord.data());
        oldc = Candidates(0, c, 0, ord.data());
        if (pass)
          add_clusters(uint64_t(++extra_passes));
        else
          add_tree(n_trees + extra_trees++);
        rec = measure();
        if (rec >= opt.target_recall) break;
        relabel(false);  // in the new join order
        newc = Candidates(n, c, chunk_rows, ord.data());
        oldc = Candidates(n, c, chunk_rows, ord.data());
      }
      prev_rec = rec;
    }
  }

  // 3. Exact distances of the winners, rows sorted by (distance, index).
  const double cpu_fin = cpu();
  indices.resize(static_cast<size_t>(n * k));
  distances.resize(static_cast<size_t>(n * k));
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> row;
    const bool ready = errors.run([&] { row.resize(static_cast<size_t>(k)); });
#pragma omp for schedule(static)
    for (int64_t pos = 0; pos < n; ++pos) {
      if (!ready) continue;
      const int64_t i = joined(pos), li = joined_label(pos);  // leaf order, for the cache
      // the next row's and its neighbours' rows asked for ahead (X beyond L3 at 10^6 x 128:
      // -40% CPU in this step there), the neighbour list of the one after
      if (pos + 2 < n) {
        __builtin_prefetch(&G.idx[joined_label(pos + 2) * k], 0, 3);
        const int64_t i1 = joined(pos + 1), l1 = joined_label(pos + 1);
        prefetch_row(X + i1 * d, d);
        for (int64_t t = 0; t < k; ++t) prefetch_row(X + int64_t(ord[G.idx[l1 * k + t]]) * d, d);
      }
      for (int64_t t = 0; t < k; ++t) {
        const int64_t j = ord[G.idx[li * k + t]];
        row[t] = {exact(i, j), j};
      }
      std::sort(row.begin(), row.end());
      for (int64_t t = 0; t < k; ++t) {
        indices[i * k + t] = row[t].second;
        distances[i * k + t] = T(row[t].first);
      }
    }
  }
  errors.rethrow();
  if (verbose)
    std::fprintf(stderr, "[geoml] nndescent: exact distances, %.1f s (cpu %.2f s)\n", elapsed(),
                 cpu() - cpu_fin);
}

template void nndescent_graph<float>(const float*, int64_t, int64_t, int64_t, Metric,
                                     const NNDescentOptions&, int, std::vector<int64_t>&,
                                     std::vector<float>&, NNDescentInfo*, bool);
template void nndescent_graph<double>(const double*, int64_t, int64_t, int64_t, Metric,
                                      const NNDescentOptions&, int, std::vector<int64_t>&,
                                      std::vector<double>&, NNDescentInfo*, bool);

std::vector<int64_t> nndescent_floyd(int64_t L, int64_t m, uint64_t seed, uint64_t salt) {
  return nnd::floyd_sample(L, m, seed, salt);
}
uint64_t nndescent_cluster_node(uint64_t seed, uint64_t pass, uint64_t id) {
  return nnd::cluster_node(seed, pass, id);
}
uint64_t nndescent_cluster_child(uint64_t id, int64_t p) {
  return nnd::cluster_child(id, p);
}
int64_t nndescent_split_parts(int64_t L, int64_t S) {
  return nnd::split_parts(L, S);
}
int64_t nndescent_split_sample(int64_t L, int64_t C) {
  return nnd::split_sample(L, C);
}

template <typename T>
std::vector<T> nndescent_split_centres(const T* rows, int64_t ns, int64_t d, int64_t C,
                                       Metric metric, uint64_t seed, uint64_t node, int n_threads) {
  if (C < 1 || ns < C) throw std::invalid_argument("nndescent_split_centres: need ns >= C >= 1");
  return nnd::split_centres(rows, ns, d, C, metric, seed, node, resolve_threads(n_threads));
}

template <typename T>
void nndescent_split_assign(const T* centres, int64_t C, const T* Q, int64_t m, int64_t d,
                            Metric metric, double overlap, int n_threads, int32_t* first,
                            int32_t* second) {
  if (C < 2) throw std::invalid_argument("nndescent_split_assign: need at least 2 centres");
  if (!(overlap >= 1.0)) throw std::invalid_argument("nndescent: overlap must be >= 1");
  nnd::split_assign(centres, C, Q, m, d, metric, overlap, resolve_threads(n_threads), first,
                    second);
}

template <typename T>
void nndescent_cell(const T* X, int64_t L, int64_t d, int64_t k, Metric metric,
                    const NNDescentOptions& opt, uint64_t pass, uint64_t id, int n_threads,
                    int64_t* indices, double* distances, T* scores) {
  using namespace nnd;
  if (L < 1 || d < 1 || k < 1) throw std::invalid_argument("nndescent_cell: empty cell or k < 1");
  if (L >= (int64_t(1) << 31) - 1)
    throw std::invalid_argument("nndescent_cell: at most 2^31 - 2 points");
  if (metric == Metric::InnerProduct)
    throw std::invalid_argument("nndescent_cell: the clustered start has no inner_product");
  if (opt.cluster_size < 0) throw std::invalid_argument("nndescent: negative cluster_size");
  if (!(opt.overlap >= 1.0)) throw std::invalid_argument("nndescent: overlap must be >= 1");
  const int nt = resolve_threads(n_threads);
  const SimdIsa isa = simd_isa();
  std::vector<T> inv;  // as nndescent_graph: the same bits per row
  std::vector<double> norms;
  cosine_norms(X, L, d, metric, nt, inv, norms);
  const Scorer<T> score = make_scorer(X, d, metric, inv.data(), isa);
  const int64_t S = opt.cluster_size > 0 ? opt.cluster_size : 8192;
  Graph<T> G(L, k);
  std::vector<int32_t> perm(static_cast<size_t>(L)), all(static_cast<size_t>(L));
  std::vector<uint8_t> seen(static_cast<size_t>(L), 0);
  for (int64_t i = 0; i < L; ++i) all[i] = int32_t(i);
  int64_t placed = 0;
  const ClusterStart<T> cs{X, d, k, metric, inv.data(), score, S, opt.overlap, opt.seed, nt, false};
  cs.run(std::move(all), id, pass, G, perm.data(), seen.data(), placed);
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::tuple<double, int64_t, T>> row;  // (distance, index, score)
#pragma omp for schedule(static)
    for (int64_t i = 0; i < L; ++i) {
      errors.run([&] {  // the row list grows
        row.clear();
        for (int64_t t = 0; t < k; ++t) {
          const int64_t j = G.idx[i * k + t];
          if (j < 0) continue;
          // knn_search's finishing formula (serial double sums): geoml.knn's distances
          const double dist = detail::exact_distance(X + i * d, X + j * d, d, metric,
                                                     norms.empty() ? 0.0 : norms[i],
                                                     norms.empty() ? 0.0 : norms[j]);
          row.emplace_back(dist, j, G.score[i * k + t]);
        }
        std::sort(row.begin(), row.end());
        for (int64_t t = 0; t < k; ++t) {
          const bool has = t < int64_t(row.size());
          indices[i * k + t] = has ? std::get<1>(row[t]) : -1;
          distances[i * k + t] =
              has ? std::get<0>(row[t]) : std::numeric_limits<double>::infinity();
          scores[i * k + t] = has ? std::get<2>(row[t]) : std::numeric_limits<T>::infinity();
        }
      });
    }
  }
  errors.rethrow();
}

#define GEOML_NND_PIECES(T)                                                                       \
  template std::vector<T> nndescent_split_centres<T>(const T*, int64_t, int64_t, int64_t, Metric, \
                                                     uint64_t, uint64_t, int);                    \
  template void nndescent_split_assign<T>(const T*, int64_t, const T*, int64_t, int64_t, Metric,  \
                                          double, int, int32_t*, int32_t*);                       \
  template void nndescent_cell<T>(const T*, int64_t, int64_t, int64_t, Metric,                    \
                                  const NNDescentOptions&, uint64_t, uint64_t, int, int64_t*,     \
                                  double*, T*);
GEOML_NND_PIECES(float)
GEOML_NND_PIECES(double)
#undef GEOML_NND_PIECES

}  // namespace geoml
