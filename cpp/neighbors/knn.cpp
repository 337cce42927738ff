// Exact k-nearest-neighbour search: packing, scheduling, run-time ISA dispatch, finishing.
#include "knn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "neighbors/exact_distance.hpp"

#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {
namespace detail {

/// Everything the micro-kernel reads and writes. Heaps are max-heaps on (score, index),
/// one of k slots per query; `thr[q]` is the score a candidate must beat (+inf until the
/// heap is full, -inf for padding slots so they are never offered anything).
template <typename T>
struct KnnCtx {
  const T* Q;  // query rows, row-major, leading dimension d
  int64_t d;
  const T* qbias;   // bias of each query when it acts as a data point (self query only)
  const T* panels;  // packed data: panel p at panels + p*d*NR, laid out [t][NR]
  const T* dbias;   // bias of each data point (||y||^2 or 0), +inf on padding
  T alpha;          // -2 for Euclidean scores, -1 for inner products
  int64_t k;
  T* hs;        // heap scores  (queries x k)
  int64_t* hi;  // heap indices (queries x k)
  int64_t* hn;  // heap fill counts
  T* thr;       // admission thresholds
  bool exclude_self;
  // Column side (col_side): heaps of the data points as queries of the row points, capacity
  // ck, one per padded data slot (thresholds -inf on padding). The row heaps in a self query.
  T* chs;
  int64_t* chi;
  int64_t* chn;
  T* cthr;
  int64_t ck;
};

template <typename T>
inline bool heap_less(T sa, int64_t ia, T sb, int64_t ib) {
  return sa < sb || (sa == sb && ia < ib);
}

/// Offers (score, j) to a max-heap of capacity k holding `cnt` items; keeps `thr` equal to
/// the root once the heap is full. O(log k).
template <typename T>
inline void heap_push(T* s, int64_t* id, int64_t& cnt, int64_t k, T score, int64_t j, T& thr) {
  int64_t c;
  if (cnt < k) {
    c = cnt++;
    while (c > 0) {
      const int64_t p = (c - 1) / 2;
      if (!heap_less(s[p], id[p], score, j)) break;
      s[c] = s[p];
      id[c] = id[p];
      c = p;
    }
    s[c] = score;
    id[c] = j;
    if (cnt == k) thr = s[0];
    return;
  }
  c = 0;
  for (;;) {
    const int64_t l = 2 * c + 1;
    if (l >= k) break;
    int64_t b = l;
    if (l + 1 < k && heap_less(s[l], id[l], s[l + 1], id[l + 1])) b = l + 1;
    if (!heap_less(score, j, s[b], id[b])) break;
    s[c] = s[b];
    id[c] = id[b];
    c = b;
  }
  s[c] = score;
  id[c] = j;
  thr = s[0];
}

// ---------------------------------------------------------------- per-ISA kernels
#define GEOML_KERNEL_INC "neighbors/knn_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

/// The integer screen's kernel context (knn_vnni_kernel.inc): rows of int16 coordinates, two
/// per int32 word (dimension 2t in the low half, 2t + 1 in the high half; an odd d padded with
/// a zero), heaps of exact squared distances (uint32) as in KnnCtx. The self query only feeds
/// its column side, whose heaps are the row heaps.
struct KnnI16Ctx {
  const int32_t* Q;       // query rows, d2 words each
  int64_t d2;             // words per row
  const uint32_t* qn;     // |q_i|^2 of each query row
  const int32_t* panels;  // packed data: panel p at panels + p*d2*32, laid out [t][32]
  const uint32_t* dn;     // |q_j|^2 of each data point (0 on padding)
  int64_t n;              // data points (padding lanes are never offered)
  int64_t k;
  uint32_t* hs;  // heap scores (queries x k)
  int64_t* hi;
  int64_t* hn;
  uint32_t* thr;  // UINT32_MAX until a heap is full, 0 on padding (never offered anything)
  bool exclude_self;
};

#if GEOML_SIMD_X86
GEOML_TARGET_AVX512VNNI_BEGIN
namespace vnni {
#include "neighbors/knn_vnni_kernel.inc"
}  // namespace vnni
GEOML_TARGET_END
#endif

template <typename T>
using ProcessFn = void (*)(const KnnCtx<T>&, int64_t, int64_t, int64_t, int64_t, bool, bool);

template <typename T>
ProcessFn<T> kernel_for(SimdIsa isa, bool diff = false) {
  return diff ? GEOML_SIMD_PICK(isa, process_diff<T>) : GEOML_SIMD_PICK(isa, process<T>);
}

/// 64-byte aligned, uninitialised buffer.
template <typename T>
struct Buffer {
  T* ptr = nullptr;
  explicit Buffer(size_t count) {
    size_t bytes = ((count * sizeof(T) + 63) / 64) * 64;
    if (bytes == 0) bytes = 64;
    ptr = static_cast<T*>(::operator new(bytes, std::align_val_t(64)));
  }
  ~Buffer() { ::operator delete(ptr, std::align_val_t(64)); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* get() const { return ptr; }
  T& operator[](size_t i) const { return ptr[i]; }
};

/// Rows of A scaled to unit Euclidean norm (zero rows stay zero).
template <typename T>
std::vector<T> normalized_rows(const T* A, int64_t n, int64_t d, int nt) {
  std::vector<T> out(static_cast<size_t>(n * d));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += double(A[i * d + t]) * double(A[i * d + t]);
    const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
    for (int64_t t = 0; t < d; ++t) out[i * d + t] = T(double(A[i * d + t]) * inv);
  }
  return out;
}

/// Column means of A (n x d), accumulated in double.
template <typename T>
std::vector<double> column_mean(const T* A, int64_t n, int64_t d) {
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) mean[t] += double(A[i * d + t]);
  for (int64_t t = 0; t < d; ++t) mean[t] /= double(n);
  return mean;
}

/// Rows of A minus `mean`.
template <typename T>
std::vector<T> centred_rows(const T* A, int64_t n, int64_t d, const std::vector<double>& mean,
                            int nt) {
  std::vector<T> out(static_cast<size_t>(n * d));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) out[i * d + t] = T(double(A[i * d + t]) - mean[t]);
  return out;
}

/// Euclidean norms of the rows of A, accumulated in double (cosine finishing step).
template <typename T>
std::vector<double> row_norms(const T* A, int64_t rows, int64_t d) {
  std::vector<double> out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += double(A[i * d + t]) * double(A[i * d + t]);
    out[i] = std::sqrt(s);
  }
  return out;
}

constexpr int64_t kScreenMinDim = 16;
/// float32 Euclidean searches with exact distances below this dimension run the certified
/// difference-form screen (diff_screen); python/geoml/neighbors/_knn.py searches a float64
/// copy from here on (_F32_DIFF_MAX_D).
constexpr int64_t kDiffScreenMaxDim = 16;
constexpr int64_t kScreenMinPairs = int64_t(1) << 22;
/// Candidates a screen keeps per query beyond k: 4 were enough on every data set tried
/// (clustered, uniform, Gaussian, manifold; 0 rows re-searched), for the float32 screen and
/// the coarser int16 one alike; 8 leave a margin.
constexpr int64_t kScreenExtra = 8;
/// The same for the difference-form screen of float32 data (diff_screen), whose rounding is
/// relative to the distance: with k + 1 a few rows in 20,000 were re-searched on uniform,
/// Gaussian, clustered, far-apart and offset data (d = 2-12, k = 1, 2, 15), with k + 2 none
/// but on integer data (exact ties), with k + 4 none there from d = 8 on; 4 cost ~10 % less
/// time than 8 (fewer heap insertions: they, not the arithmetic, dominate below d = 16).
constexpr int64_t kDiffScreenExtra = 4;

/// Heaps of capacity k per query (unordered max-heaps on (score, index)) left by the kernel.
template <typename T>
struct TileHeaps {
  std::vector<T> hs;
  std::vector<int64_t> hi, hn;
};

/// The tile schedule of the fused kernels: `tile(i0, i1, p0, p1, col_side, diag)` scores the
/// query rows [i0, i1) against the data panels [p0, p1) of NR points (`panel_bytes` each).
/// Self query (`self`, m = n): blocks of 256 points, the diagonal blocks first, then every
/// pair of blocks once, in round-robin rounds whose pairs touch disjoint heaps (no locks).
/// Queries: blocks of 240 rows against L2-sized runs of panels.
template <typename F>
void schedule_tiles(int64_t n, int64_t m, bool self, int NR, int64_t panel_bytes, int nt,
                    bool verbose, F&& tile) {
  const int64_t npanel = (n + NR - 1) / NR;
  Progress progress("knn");
  if (self) {
    // Blocks of BS points; diagonal blocks first, then every pair of blocks once, in
    // round-robin rounds whose pairs touch disjoint heaps (no locks needed).
    const int64_t BS = NR * std::max<int64_t>(1, 256 / NR);
    const int64_t B = (n + BS - 1) / BS;
    const int64_t Bp = B + (B & 1);
    const int64_t ppb = BS / NR;
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < B; ++b)
        tile(b * BS, std::min(n, (b + 1) * BS), b * ppb, std::min(npanel, (b + 1) * ppb), false,
             true);
      for (int64_t r = 0; r + 1 < Bp; ++r) {
        if (verbose && thread_id() == 0) progress.report(r + 1, Bp - 1);
#pragma omp for schedule(dynamic, 1)
        for (int64_t h = 0; h < Bp / 2; ++h) {
          int64_t a, b;
          if (h == 0) {
            a = r;
            b = Bp - 1;
          } else {
            a = (r + h) % (Bp - 1);
            b = (r - h + (Bp - 1)) % (Bp - 1);
          }
          if (a >= B || b >= B) continue;
          if (a > b) std::swap(a, b);
          tile(a * BS, std::min(n, (a + 1) * BS), b * ppb, std::min(npanel, (b + 1) * ppb), true,
               false);
        }
      }
    }
  } else {
    const int64_t QB = 240;
    const int64_t PC = std::max<int64_t>(1, (256 * 1024) / panel_bytes);
    const int64_t nblk = (m + QB - 1) / QB;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < nblk; ++b) {
      if (verbose && thread_id() == 0) progress.report(b + 1, nblk);
      for (int64_t p = 0; p < npanel; p += PC)
        tile(b * QB, std::min(m, (b + 1) * QB), p, std::min(npanel, p + PC), false, false);
    }
  }
  if (verbose) progress.done();
}

/// Packs the n rows of X (n x d) into ceil(n / NR) panels of NR rows (d x NR, column-major,
/// zero-padded) for the fused kernels, and the rows' score biases: ||x||^2 summed in double
/// (euclid) or 0, +inf on the padding rows.
template <typename T>
void pack_panels(const T* X, int64_t n, int64_t d, int NR, bool euclid, int nt, T* panels,
                 T* dbias) {
  const int64_t npanel = (n + NR - 1) / NR;
  const T inf = std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t p = 0; p < npanel; ++p) {
    T* P = panels + p * d * NR;
    for (int l = 0; l < NR; ++l) {
      const int64_t j = p * NR + l;
      if (j < n) {
        const T* x = X + j * d;
        double s = 0;
        for (int64_t t = 0; t < d; ++t) {
          P[t * NR + l] = x[t];
          s += double(x[t]) * double(x[t]);
        }
        dbias[j] = euclid ? T(s) : T(0);
      } else {
        for (int64_t t = 0; t < d; ++t) P[t * NR + l] = T(0);
        dbias[j] = inf;
      }
    }
  }
}

/// Runs the fused kernel over prepared score rows: data Xs (n x d), queries Qs (m x d), or
/// the rows of Xs themselves when Qs is nullptr (self query, each pair scored once). Scores
/// are ||y||^2 - 2 x.y (euclid, biases from double sums), -x.y, or with `diff` the difference
/// form sum_t (x_t - y_t)^2 (knn_kernel.inc; `euclid` is then ignored).
template <typename T>
TileHeaps<T> run_tiles(const T* Xs, int64_t n, const T* Qs, int64_t m, int64_t d, int64_t k,
                       bool euclid, bool exclude_self, int nt, bool verbose, bool diff = false) {
  const bool self = Qs == nullptr;
  if (self) Qs = Xs;
  if (diff) euclid = false;  // biases 0 (+inf on padding), no alpha
  const SimdIsa isa = simd_isa();
  const int NR = 2 * simd_bytes(isa) / static_cast<int>(sizeof(T));
  const ProcessFn<T> process = kernel_for<T>(isa, diff);
  const int64_t npanel = (n + NR - 1) / NR;
  const int64_t npad = npanel * NR;
  const T inf = std::numeric_limits<T>::infinity();

  Buffer<T> dbias(npad), panels(static_cast<size_t>(npanel * d * NR));
  pack_panels(Xs, n, d, NR, euclid, nt, panels.get(), dbias.get());

  const int64_t nq = self ? npad : m;
  TileHeaps<T> out;
  out.hs.resize(static_cast<size_t>(nq * k));
  out.hi.resize(static_cast<size_t>(nq * k));
  out.hn.assign(static_cast<size_t>(nq), 0);
  Buffer<T> thr(nq);
  for (int64_t i = 0; i < nq; ++i) thr[i] = i < m ? inf : -inf;
  KnnCtx<T> ctx{Qs,
                d,
                dbias.get(),
                panels.get(),
                dbias.get(),
                T(euclid ? -2 : -1),
                k,
                out.hs.data(),
                out.hi.data(),
                out.hn.data(),
                thr.get(),
                exclude_self,
                out.hs.data(),
                out.hi.data(),
                out.hn.data(),
                thr.get(),
                k};

  const int64_t panel_bytes = d * NR * static_cast<int64_t>(sizeof(T));
  schedule_tiles(n, m, self, NR, panel_bytes, nt, verbose,
                 [&](int64_t i0, int64_t i1, int64_t p0, int64_t p1, bool col_side, bool diag) {
                   process(ctx, i0, i1, p0, p1, col_side, diag);
                 });
  return out;
}

/// The finishing step: exact distances (double) of each query's heap entries to the query,
/// rows sorted by (distance, index), written as D; missing entries are (-1, +inf).
template <typename T, typename D>
void finish_rows(const T* Q, const T* X, int64_t m, int64_t d, int64_t k, Metric metric,
                 const std::vector<double>& qnorm, const std::vector<double>& xnorm,
                 const int64_t* hn, const int64_t* hi, int nt, int64_t* indices, D* distances) {
  const D inf = std::numeric_limits<D>::infinity();
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> row;
    const bool ready = errors.run([&] { row.resize(static_cast<size_t>(k)); });
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      if (!ready) continue;
      const int64_t cnt = hn[i];
      for (int64_t s = 0; s < cnt; ++s) {
        const int64_t j = hi[i * k + s];
        const double qn = qnorm.empty() ? 0.0 : qnorm[i];
        const double xn = xnorm.empty() ? 0.0 : xnorm[j];
        row[s] = {exact_distance(Q + i * d, X + j * d, d, metric, qn, xn), j};
      }
      std::sort(row.begin(), row.begin() + cnt);
      for (int64_t s = 0; s < k; ++s) {
        indices[i * k + s] = s < cnt ? row[s].second : -1;
        distances[i * k + s] = s < cnt ? D(row[s].first) : inf;
      }
    }
  }
  errors.rethrow();
}

}  // namespace detail

namespace {

template <typename T, typename D>
void knn_search_impl(const T* X, int64_t n, const T* Qin, int64_t m, int64_t d, int64_t k,
                     Metric metric, bool exclude_self, int n_threads, int64_t* indices,
                     D* distances, bool verbose, bool exact_finish);

}  // namespace

template <typename T>
void knn_search(const T* X, int64_t n, const T* Qin, int64_t m, int64_t d, int64_t k, Metric metric,
                bool exclude_self, int n_threads, int64_t* indices, T* distances, bool verbose,
                bool exact_finish) {
  knn_search_impl<T, T>(X, n, Qin, m, d, k, metric, exclude_self, n_threads, indices, distances,
                        verbose, exact_finish);
}

namespace {

/// Whether a float64 Euclidean search is screened in float32 (below these sizes the copies
/// and the wider heaps cost more than the float32 tiles save).
inline bool screen_applies(Metric metric, int64_t n, int64_t m, int64_t d) {
  const bool euclid = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
  return euclid && d >= detail::kScreenMinDim && n * m >= detail::kScreenMinPairs;
}

/// Row order for a screened self query: the rows halved recursively at the median of their
/// projection on the difference of two of them (picked by a hash of the node) down to at most
/// 256, so that a kernel block holds near points and its diagonal tile, searched first, fills
/// each heap with good candidates (far fewer heap insertions in the later tiles). Ties in the
/// projection go by index: the same order for any thread count. U: rows of `d` coordinates
/// (the float32 copy, or the int16 one).
template <typename E>
std::vector<int64_t> locality_order(const E* U, int64_t n, int64_t d) {
  std::vector<int64_t> ord(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ord[i] = i;
  std::vector<std::pair<double, int64_t>> proj(static_cast<size_t>(n));
  std::vector<double> dir(static_cast<size_t>(d));
  struct Node {
    int64_t lo, hi;
    uint64_t id;
  };
  std::vector<Node> stack{{0, n, 1}};
  while (!stack.empty()) {
    const Node nd = stack.back();
    stack.pop_back();
    const int64_t len = nd.hi - nd.lo;
    if (len <= 256) continue;
    uint64_t h = nd.id * 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    const E* a = U + ord[nd.lo + int64_t((h & 0xFFFFFFFFull) % uint64_t(len))] * d;
    const E* b = U + ord[nd.lo + int64_t((h >> 32) % uint64_t(len))] * d;
    for (int64_t t = 0; t < d; ++t) dir[t] = double(a[t]) - double(b[t]);
    for (int64_t r = nd.lo; r < nd.hi; ++r) {
      const E* x = U + ord[r] * d;
      double p = 0;
      for (int64_t t = 0; t < d; ++t) p += dir[t] * double(x[t]);
      proj[r] = {p, ord[r]};
    }
    const int64_t mid = nd.lo + len / 2;
    std::nth_element(proj.begin() + nd.lo, proj.begin() + mid, proj.begin() + nd.hi);
    for (int64_t r = nd.lo; r < nd.hi; ++r) ord[r] = proj[r].second;
    stack.push_back({nd.lo, mid, 2 * nd.id});
    stack.push_back({mid, nd.hi, 2 * nd.id + 1});
  }
  return ord;
}

/// What a screen leaves for the certificate: per kernel row r (query r, or point perm[r] of
/// a self query) its kp candidates `hi` (kernel indices: through perm in a self query), their
/// count `hn`, and `tau[r]`, a lower bound on the true distance from the query to every point
/// the screen dropped (0 when there is none to give).
struct ScreenOut {
  std::vector<int64_t> perm, hi, hn;
  std::vector<double> tau;
};

/// The float32 screen: the fused kernel on fl32((x - mean) sc), sc the power of two that
/// brings the largest centred |coordinate| into [0.5, 1); tau from the rounding analysis of
/// docs/design/neighbors.md ("float64 data: a float32 screen").
inline ScreenOut float_screen(const double* X, int64_t n, const double* Qin, int64_t m, int64_t d,
                              int64_t kp, const std::vector<double>& mean, double amax,
                              bool exclude_self, int nt, bool verbose) {
  using namespace detail;
  const bool self = Qin == nullptr;
  int e2;
  std::frexp(amax, &e2);
  const double sc = std::ldexp(1.0, -e2);  // largest centred |coordinate| * sc in [0.5, 1)
  // float32 copies u = fl32((x - mean) sc) and their squared norms (double sums)
  auto to_f32 = [&](const double* A, int64_t rows, std::vector<float>& U,
                    std::vector<double>& nrm2) {
    U.resize(static_cast<size_t>(rows * d));
    nrm2.resize(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < rows; ++i) {
      double s = 0;
      for (int64_t t = 0; t < d; ++t) {
        const float u = float((A[i * d + t] - mean[t]) * sc);
        U[i * d + t] = u;
        s += double(u) * double(u);
      }
      nrm2[i] = s;
    }
  };
  std::vector<float> Ux, Uq;
  std::vector<double> x2, q2;
  to_f32(X, n, Ux, x2);
  if (!self) to_f32(Qin, m, Uq, q2);
  ScreenOut out;
  if (self) {
    out.perm = locality_order(Ux.data(), n, d);
    std::vector<float> P(Ux.size());
    std::vector<double> p2(x2.size());
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(P.data() + r * d, Ux.data() + out.perm[r] * d, sizeof(float) * size_t(d));
      p2[r] = x2[out.perm[r]];
    }
    Ux.swap(P);
    x2.swap(p2);
  }
  const std::vector<double>& qn2 = self ? x2 : q2;
  TileHeaps<float> h = run_tiles<float>(Ux.data(), n, self ? nullptr : Uq.data(), m, d, kp, true,
                                        exclude_self, nt, verbose);
  Ux = std::vector<float>();
  Uq = std::vector<float>();

  // Error constants (see the design note): unit roundoff u of float32, gamma_d of the kernel's
  // d-term dot products, the squared norms' double sums, and a safety factor on each.
  const double u = std::ldexp(1.0, -24);
  const double dd = double(d);
  const double gd = dd * u / (1 - dd * u);
  const double ub = u + dd * std::ldexp(1.0, -53) / (1 - dd * std::ldexp(1.0, -53));
  const double U = std::sqrt(*std::max_element(x2.begin(), x2.end())) * (1 + 1e-12);
  const double tiny = (dd + 4) * 1e-44;  // float32 / double subnormal rounding, absolute
  out.tau.assign(static_cast<size_t>(m), 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < m; ++r) {
    if (h.hn[r] < kp) continue;
    // A dropped candidate y has score s32(y) >= R, the heap's root. Lower bound on
    // ||u_x - u_y||^2 = |u_y|^2 - 2 u_x.u_y + |u_x|^2, then on ||x - y|| (data rounding).
    const double R = double(h.hs[r * kp]);
    const double ux2 = qn2[r], ux = std::sqrt(ux2) * (1 + 1e-12);
    const double E =
        (U * U * (ub + u * (1 + ub)) + 2 * ux * U * (gd + u * (1 + gd))) * (1 + 1e-12) + tiny;
    double rho2 = R + ux2 - E;
    rho2 -= 1e-12 * (std::abs(R) + ux2 + E);
    if (rho2 > 0) {
      const double tau = std::sqrt(rho2) * (1 - 1e-15) - u * (1 + 1e-6) * (ux + U) - tiny;
      if (tau > 0) out.tau[r] = tau / sc;  // sc a power of two: exact
    }
  }
  out.hi = std::move(h.hi);
  out.hn = std::move(h.hn);
  return out;
}

/// The integer screen (AVX-512 VNNI; docs/design/neighbors.md, "An exact integer screen"):
/// q = round(fl(x - mean) s) in int16 with s = L / zmax (zmax the largest centred row norm of
/// data and queries, L = 32767 - sqrt(d) / 2 - 2, so every |q| <= 32767 and every squared
/// distance |q_i - q_j|^2 < 2^32), scored exactly by knn_vnni_kernel.inc. With h = zmax / L and
/// the residual r_x >= ||(x - mean) - h q_x|| (double, every rounding counted), a dropped y
/// (|q_x - q_y|^2 >= R, the heap's root) has ||x - y|| >= h sqrt(R) - r_x - max_y r_y.
/// Returns false (the float32 screen runs instead) if some |q| would exceed 32767.
inline bool int16_screen(const double* X, int64_t n, const double* Qin, int64_t m, int64_t d,
                         int64_t kp, const std::vector<double>& mean, double zmax,
                         bool exclude_self, int nt, bool verbose, ScreenOut& out) {
#if GEOML_SIMD_X86
  using namespace detail;
  const bool self = Qin == nullptr;
  const int64_t d2 = (d + 1) / 2, dp = 2 * d2;
  const double dd = double(d), u = std::ldexp(1.0, -53);
  const double L = 32767.0 - 0.5 * std::sqrt(dd) - 2.0;
  const double s = L / zmax, h = zmax / L;
  const int64_t qmax2 = int64_t(32767) * 32767;
  // int16 rows (padded to dp with zeros), exact squared norms, residual bounds
  auto quantise = [&](const double* A, int64_t rows, std::vector<int16_t>& Qv,
                      std::vector<uint32_t>& qn, std::vector<double>& res) -> bool {
    Qv.assign(static_cast<size_t>(rows * dp), 0);
    qn.resize(static_cast<size_t>(rows));
    res.resize(static_cast<size_t>(rows));
    int over = 0;
#pragma omp parallel for schedule(static) reduction(| : over) num_threads(nt)
    for (int64_t i = 0; i < rows; ++i) {
      int64_t q2 = 0;
      double se = 0, sz = 0;
      for (int64_t t = 0; t < d; ++t) {
        const double z = A[i * d + t] - mean[t];
        double q = std::nearbyint(z * s);
        if (!(std::abs(q) <= 32767)) {
          over = 1;
          q = 0;
        }
        Qv[i * dp + t] = static_cast<int16_t>(q);
        q2 += int64_t(q) * int64_t(q);
        const double e = z - q * h;
        se += e * e;
        sz += z * z;
      }
      over |= q2 > qmax2 ? 1 : 0;
      qn[i] = static_cast<uint32_t>(q2);
      // |e_t - fl(e_t)| <= u (|z_t| + h |q_t| + |fl e_t|) per coordinate (plus 2^-1075 per
      // operation below the normal range); the double sums' and square roots' rounding
      // is inside the (1 + 2 (d + 8) u) factor.
      res[i] = (std::sqrt(se) + 2 * u * (std::sqrt(sz) + h * std::sqrt(double(q2)))) *
                   (1 + 2 * (dd + 8) * u) +
               (dd + 4) * std::ldexp(1.0, -1070);
    }
    return !over;
  };
  std::vector<int16_t> Qx, Qq;
  std::vector<uint32_t> xn, qn;
  std::vector<double> rx, rq;
  if (!quantise(X, n, Qx, xn, rx)) return false;
  if (!self && !quantise(Qin, m, Qq, qn, rq)) return false;
  const double rmax = *std::max_element(rx.begin(), rx.end());
  if (self) out.perm = locality_order(Qx.data(), n, dp);

  // rows as int32 words (two int16 each, little-endian: dimension 2t in the low half), in
  // kernel order; panels of NR points laid out [t][NR]
  constexpr int NR = 32;
  const int64_t npanel = (n + NR - 1) / NR, npad = npanel * NR;
  std::vector<int32_t> Wq;
  if (!self) {
    Wq.resize(static_cast<size_t>(m * d2));
    std::memcpy(Wq.data(), Qq.data(), sizeof(int32_t) * size_t(m * d2));
    Qq = std::vector<int16_t>();
  }
  std::vector<int32_t> Wx(static_cast<size_t>(n * d2));
  Buffer<uint32_t> dn(npad);
  Buffer<int32_t> panels(static_cast<size_t>(npanel * d2 * NR));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t p = 0; p < npanel; ++p) {
    int32_t* P = panels.get() + p * d2 * NR;
    for (int l = 0; l < NR; ++l) {
      const int64_t j = p * NR + l;
      if (j < n) {
        const int64_t src = self ? out.perm[j] : j;
        std::memcpy(Wx.data() + j * d2, Qx.data() + src * dp, sizeof(int32_t) * size_t(d2));
        for (int64_t t = 0; t < d2; ++t) P[t * NR + l] = Wx[j * d2 + t];
        dn[j] = xn[src];
      } else {
        for (int64_t t = 0; t < d2; ++t) P[t * NR + l] = 0;
        dn[j] = 0;
      }
    }
  }
  Qx = std::vector<int16_t>();
  if (self) Wq.swap(Wx);  // the self query's rows are the data rows
  Wx = std::vector<int32_t>();

  const int64_t nq = self ? npad : m;
  std::vector<uint32_t> hs(static_cast<size_t>(nq * kp));
  out.hi.resize(static_cast<size_t>(nq * kp));
  out.hn.assign(static_cast<size_t>(nq), 0);
  Buffer<uint32_t> thr(nq);
  for (int64_t i = 0; i < nq; ++i) thr[i] = i < m ? ~uint32_t(0) : 0;
  KnnI16Ctx ctx{Wq.data(),
                d2,
                self ? dn.get() : qn.data(),
                panels.get(),
                dn.get(),
                n,
                kp,
                hs.data(),
                out.hi.data(),
                out.hn.data(),
                thr.get(),
                exclude_self};
  schedule_tiles(n, m, self, NR, d2 * NR * int64_t(sizeof(int32_t)), nt, verbose,
                 [&](int64_t i0, int64_t i1, int64_t p0, int64_t p1, bool col_side, bool diag) {
                   vnni::process_i16(ctx, i0, i1, p0, p1, col_side, diag);
                 });

  out.tau.assign(static_cast<size_t>(m), 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < m; ++r) {
    if (out.hn[r] < kp) continue;
    const double rr = self ? rx[out.perm[r]] : rq[r];
    const double tau =
        (h * std::sqrt(double(hs[r * kp])) * (1 - 1e-15) - (rr + rmax) * (1 + 1e-15)) * (1 - 1e-15);
    if (tau > 0) out.tau[r] = tau;
  }
  return true;
#else
  (void)X, (void)n, (void)Qin, (void)m, (void)d, (void)kp, (void)mean, (void)zmax;
  (void)exclude_self, (void)nt, (void)verbose, (void)out;
  return false;
#endif
}

/// The float32 screen of float32 data below d = 16 (docs/design/neighbors.md, "float32 data
/// below d = 16: a difference-form screen"): the fused kernel's difference form
/// fl(sum_t fl(x_t - y_t)^2) on the data as it is (no centring, no scaling, no copy but the
/// self query's ordered one), whose rounding is relative to the distance itself.
///
/// Bound (u = 2^-24, gamma_d = d u / (1 - d u), D^2 = sum_t (x_t - y_t)^2 exactly): each
/// difference e_t = fl(x_t - y_t) = (x_t - y_t)(1 + eps_t), |eps_t| <= u (a difference of two
/// float32 numbers that underflows is exact), so sum_t e_t^2 <= (1 + u)^2 D^2. The kernel sums
/// the d squares with FMAs or products and additions, in some order: each square passes
/// through at most d roundings, fl(a op b) = (a op b)(1 + eta) + zeta with |eta| <= u and
/// |zeta| <= 2^-150 (half the smallest subnormal, only for a product or FMA that underflows),
/// so the score S <= (1 + gamma_d) sum_t e_t^2 + 2 d 2^-150. A point the screen dropped has
/// S >= R, the heap's root (the kernel's admission test is strict and thresholds only fall),
/// hence D^2 >= (R - 2 d 2^-150) / ((1 + gamma_d) (1 + u)^2): tau^2 below. No overflow
/// (knn's magnitude check keeps |x_t| <= sqrt(FLT_MAX / 4d)); a root that is not finite gives
/// no bound, and the row is searched again.
inline ScreenOut diff_screen(const float* X, int64_t n, const float* Qin, int64_t m, int64_t d,
                             int64_t kp, bool exclude_self, int nt, bool verbose) {
  using namespace detail;
  const bool self = Qin == nullptr;
  ScreenOut out;
  std::vector<float> P;
  if (self) {
    out.perm = locality_order(X, n, d);
    P.resize(static_cast<size_t>(n * d));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(P.data() + r * d, X + out.perm[r] * d, sizeof(float) * size_t(d));
  }
  TileHeaps<float> h = run_tiles<float>(self ? P.data() : X, n, self ? nullptr : Qin, m, d, kp,
                                        true, exclude_self, nt, verbose, true);
  P = std::vector<float>();
  const double u = std::ldexp(1.0, -24), dd = double(d);
  const double gd = dd * u / (1 - dd * u);
  // the growth factor, with 1e-12 for the double arithmetic of the bound itself
  const double grow = (1 + gd) * (1 + u) * (1 + u) * (1 + 1e-12);
  const double tiny = 2 * dd * std::ldexp(1.0, -150);
  out.tau.assign(static_cast<size_t>(m), 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < m; ++r) {
    if (h.hn[r] < kp) continue;
    const double R = double(h.hs[r * kp]);
    if (!(R < std::numeric_limits<double>::infinity())) continue;
    const double b = (R - tiny) / grow * (1 - 1e-15);
    // sqrt and the certificate's squaring each round by 2^-53 at most: tau^2 <= b
    if (b > 0) out.tau[r] = std::sqrt(b) * (1 - 1e-15);
  }
  out.hi = std::move(h.hi);
  out.hn = std::move(h.hn);
  return out;
}

/// Exact float64 Euclidean search screened in a cheaper arithmetic (docs/design/neighbors.md,
/// "float64 data: a float32 screen" and "An exact integer screen"): exact int16 scores where
/// simd_vnni() holds, float32 otherwise. The kernel keeps kp > k candidates per query; their
/// distances are recomputed in double (the finishing step) and a row is kept when its k-th
/// exact distance is below a rigorous lower bound on the exact distance of every candidate the
/// screen dropped. The other rows are searched again by the float64 kernel (as the unscreened
/// path does), so every row is the k smallest (distance, index) pairs. Returns false, having
/// written nothing, on constant or non-finite data.
template <typename T, typename D>
bool screened_search(const T* X, int64_t n, const T* Qin, int64_t m, int64_t d, int64_t k,
                     Metric metric, bool exclude_self, int nt, int64_t* indices, D* distances,
                     bool verbose) {
  using namespace detail;
  const bool self = Qin == nullptr;
  const T* Qr = self ? X : Qin;
  const std::vector<double> mean = column_mean(X, n, d);
  double amax = 0, zmax2 = 0;
  int bad = 0;
  for (int side = 0; side < (self ? 1 : 2); ++side) {
    const T* A = side == 0 ? X : Qin;
    const int64_t rows = side == 0 ? n : m;
#pragma omp parallel for schedule(static) reduction(max : amax, zmax2) reduction(| : bad) \
    num_threads(nt)
    for (int64_t i = 0; i < rows; ++i) {
      double z2 = 0;
      for (int64_t t = 0; t < d; ++t) {
        const double v = std::abs(A[i * d + t] - mean[t]);
        bad |= std::isfinite(v) ? 0 : 1;
        amax = std::max(amax, v);
        z2 += v * v;
      }
      zmax2 = std::max(zmax2, z2);
    }
  }
  constexpr bool f32 = std::is_same_v<T, float>;
  // (float32 data: constant data is screened too, every row then re-searched unless all
  // points are candidates)
  if (bad || (!f32 && amax == 0)) return false;
  const int64_t kmax = n - (exclude_self ? 1 : 0);
  const int64_t kp = std::min(kmax, k + (f32 ? detail::kDiffScreenExtra : detail::kScreenExtra));
  ScreenOut sc;
  bool int_screen = false;
  if constexpr (f32) {
    sc = diff_screen(X, n, Qin, m, d, kp, exclude_self, nt, verbose);
  } else {
    // the integer screen away from the ends of the double range (its residuals stay normal
    // numbers far from overflow); zmax only sets its scale (it checks every |q| itself)
    const double zmax = std::sqrt(zmax2);
    int_screen = simd_vnni() && zmax > std::ldexp(1.0, -500) && zmax < std::ldexp(1.0, 500) &&
                 int16_screen(X, n, Qin, m, d, kp, mean, zmax, exclude_self, nt, verbose, sc);
    if (!int_screen) sc = float_screen(X, n, Qin, m, d, kp, mean, amax, exclude_self, nt, verbose);
  }

  const double dd = double(d);
  const double shrink = 1 - (dd + 8) * std::ldexp(1.0, -52);
  const D dinf = std::numeric_limits<D>::infinity();
  std::vector<char> ok(static_cast<size_t>(m));
  OmpErrors errors;
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> row;
    const bool ready = errors.run([&] { row.resize(static_cast<size_t>(kp)); });
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      if (!ready) continue;
      const int64_t i = self ? sc.perm[r] : r;
      const int64_t cnt = sc.hn[r];
      for (int64_t s = 0; s < cnt; ++s) {
        const int64_t j = self ? sc.perm[sc.hi[r * kp + s]] : sc.hi[r * kp + s];
        row[s] = {exact_distance(Qr + i * d, X + j * d, d, metric, 0.0, 0.0), j};
      }
      std::partial_sort(row.begin(), row.begin() + k, row.begin() + cnt);
      // every eligible point was kept: nothing to certify (a heap that is not full but holds
      // fewer than every eligible point refused scores of +inf: a float32 difference-form
      // score that overflowed, which proves nothing; searched again)
      bool good = cnt == kmax;
      if (!good && sc.tau[r] > 0) {
        // The finishing step's double sum for a dropped point is at least tau^2 less its
        // rounding (gamma_{d+2}); subnormal differences add at most 2^-1075 each.
        const double rr = sc.tau[r] * sc.tau[r];
        const double a2 = rr * shrink - (dd + 4) * std::ldexp(1.0, -1070);
        if (rr >= std::numeric_limits<double>::min() && a2 > 0 &&
            a2 < std::numeric_limits<double>::infinity()) {
          const double A = metric == Metric::Euclidean ? std::sqrt(a2) : a2;
          good = row[k - 1].first < A;
        }
      }
      ok[i] = good;
      if (!good) continue;
      for (int64_t s = 0; s < k; ++s) {
        indices[i * k + s] = row[s].second;
        distances[i * k + s] = D(row[s].first);
      }
    }
  }
  errors.rethrow();
  sc = ScreenOut();

  // Rows not certified: the float64 kernel on the centred rows, as the unscreened search
  // scores them (k + 1 candidates among all points and the query's own index dropped, which
  // is the k-list that excludes it).
  std::vector<int64_t> redo;
  for (int64_t i = 0; i < m; ++i)
    if (!ok[i]) redo.push_back(i);
  if (verbose)
    std::fprintf(stderr, "knn: %s screen (%lld candidates), %lld of %lld rows re-searched\n",
                 f32          ? "float32 difference-form"
                 : int_screen ? "int16 (VNNI)"
                              : "float32",
                 static_cast<long long>(kp), static_cast<long long>(redo.size()),
                 static_cast<long long>(m));
  if (redo.empty()) return true;
  const int64_t mr = static_cast<int64_t>(redo.size());
  // (float32 data: the float64 rows the unscreened search of its float64 copy scores)
  std::vector<double> Xc(static_cast<size_t>(n * d));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) Xc[i * d + t] = double(X[i * d + t]) - mean[t];
  std::vector<double> Qc(static_cast<size_t>(mr * d));
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t t = 0; t < d; ++t) Qc[r * d + t] = double(Qr[redo[r] * d + t]) - mean[t];
  const int64_t kf = k + (exclude_self ? 1 : 0);
  TileHeaps<double> f =
      run_tiles<double>(Xc.data(), n, Qc.data(), mr, d, kf, true, false, nt, false);
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> row;
    const bool ready = errors.run([&] { row.resize(static_cast<size_t>(kf)); });
#pragma omp for schedule(static)
    for (int64_t r = 0; r < mr; ++r) {
      if (!ready) continue;
      const int64_t i = redo[r];
      const int64_t* hi = f.hi.data() + r * kf;
      int64_t drop = -1;  // heap slot left out: the query itself, else the root (largest)
      if (exclude_self) {
        drop = 0;
        for (int64_t s = 0; s < kf; ++s)
          if (hi[s] == i) drop = s;
      }
      int64_t c = 0;
      for (int64_t s = 0; s < f.hn[r]; ++s)
        if (s != drop)
          row[c++] = {exact_distance(Qr + i * d, X + hi[s] * d, d, metric, 0.0, 0.0), hi[s]};
      std::sort(row.begin(), row.begin() + c);
      for (int64_t s = 0; s < k; ++s) {
        indices[i * k + s] = s < c ? row[s].second : -1;
        distances[i * k + s] = s < c ? D(row[s].first) : dinf;
      }
    }
  }
  errors.rethrow();
  return true;
}

template <typename T, typename D>
void knn_search_impl(const T* X, int64_t n, const T* Qin, int64_t m, int64_t d, int64_t k,
                     Metric metric, bool exclude_self, int n_threads, int64_t* indices,
                     D* distances, bool verbose, bool exact_finish) {
  using namespace detail;
  const bool self = (Qin == nullptr);
  if (self) m = n;
  if (!self) exclude_self = false;
  if (n < 1 || d < 1 || m < 0) throw std::invalid_argument("knn: empty data");
  const int64_t kmax = n - (exclude_self ? 1 : 0);
  if (k < 1 || k > kmax)
    throw std::invalid_argument("knn: k=" + std::to_string(k) + " must be in [1, " +
                                std::to_string(kmax) + "]");
  if (m == 0) return;
  const int nt = resolve_threads(n_threads);
  if constexpr (std::is_same_v<T, double>) {
    if (exact_finish && screen_applies(metric, n, m, d) &&
        screened_search(X, n, self ? nullptr : Qin, m, d, k, metric, exclude_self, nt, indices,
                        distances, verbose))
      return;
  } else {
    // float32 Euclidean below d = 16: the certified difference-form screen (exact); from
    // d = 16 on the float32 kernel below, whose scores ||y||^2 - 2 x.y on centred rows are
    // not certified (geoml.knn searches a float64 copy there)
    const bool euclid = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
    if (exact_finish && euclid && d < kDiffScreenMaxDim &&
        screened_search(X, n, self ? nullptr : Qin, m, d, k, metric, exclude_self, nt, indices,
                        distances, verbose))
      return;
  }

  // Scores: Euclidean metrics use ||y||^2 - 2 x.y on data centred at the mean of X (the
  // translation keeps distances and stops float32 cancellation when the data sit far from
  // the origin); cosine uses -x.y on unit rows; inner product -x.y.
  const bool euclid = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
  std::vector<T> Xn, Qn;
  const T* Xs = X;
  const T* Qs = self ? X : Qin;
  if (metric == Metric::Cosine || euclid) {
    std::vector<double> mean;
    if (euclid) mean = column_mean(X, n, d);
    Xn = euclid ? centred_rows(X, n, d, mean, nt) : normalized_rows(X, n, d, nt);
    Xs = Xn.data();
    if (self) {
      Qs = Xs;
    } else {
      Qn = euclid ? centred_rows(Qin, m, d, mean, nt) : normalized_rows(Qin, m, d, nt);
      Qs = Qn.data();
    }
  }
  TileHeaps<T> heaps =
      run_tiles<T>(Xs, n, self ? nullptr : Qs, m, d, k, euclid, exclude_self, nt, verbose);
  const T* hs = heaps.hs.data();
  const int64_t* hi = heaps.hi.data();
  const int64_t* hn = heaps.hn.data();
  const T inf = std::numeric_limits<T>::infinity();

  if (!exact_finish) {
    OmpErrors errors;
#pragma omp parallel num_threads(nt)
    {
      std::vector<std::pair<T, int64_t>> row;
      const bool ready = errors.run([&] { row.resize(static_cast<size_t>(k)); });
#pragma omp for schedule(static)
      for (int64_t i = 0; i < m; ++i) {
        if (!ready) continue;
        const int64_t cnt = hn[i];
        for (int64_t s = 0; s < cnt; ++s) row[s] = {hs[i * k + s], hi[i * k + s]};
        std::sort(row.begin(), row.begin() + cnt);
        for (int64_t s = 0; s < k; ++s) {
          indices[i * k + s] = s < cnt ? row[s].second : -1;
          distances[i * k + s] = s < cnt ? D(row[s].first) : D(inf);
        }
      }
    }
    errors.rethrow();
    return;
  }

  // Finish: exact distances of the k winners, sorted by (distance, index).
  std::vector<double> xnorm, qnorm;
  if (metric == Metric::Cosine) {
    xnorm = row_norms(X, n, d);
    qnorm = self ? xnorm : row_norms(Qin, m, d);
  }
  finish_rows(self ? X : Qin, X, m, d, k, metric, qnorm, xnorm, hn, hi, nt, indices, distances);
}

}  // namespace

template <typename T>
void knn_pair_search(const T* A, int64_t na, const T* B, int64_t nb, int64_t d, int64_t k,
                     Metric metric, int n_threads, int64_t* idx_ab, double* dist_ab,
                     int64_t* idx_ba, double* dist_ba, const double* bound_a,
                     const double* bound_b) {
  using namespace detail;
  if (B == nullptr) {
    knn_search_impl<T, double>(A, na, nullptr, na, d, k, metric, true, n_threads, idx_ab, dist_ab,
                               false, true);
    return;
  }
  if (na < 1 || nb < 1 || d < 1) throw std::invalid_argument("knn_pair: empty block");
  if (k < 1) throw std::invalid_argument("knn_pair: k must be at least 1");
  const int64_t kab = std::min(k, nb), kba = std::min(k, na);
  const int nt = resolve_threads(n_threads);
  const SimdIsa isa = simd_isa();
  const int NR = 2 * simd_bytes(isa) / static_cast<int>(sizeof(T));
  const ProcessFn<T> process = kernel_for<T>(isa);

  // Scores as in knn_search, on both blocks centred at the mean of their union (Euclidean),
  // on unit rows (cosine), or raw (inner product).
  const bool euclid = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
  std::vector<T> An, Bn;
  const T* As = A;
  const T* Bs = B;
  if (euclid) {
    std::vector<double> mean = column_mean(A, na, d), mb = column_mean(B, nb, d);
    for (int64_t t = 0; t < d; ++t)
      mean[t] = (mean[t] * double(na) + mb[t] * double(nb)) / double(na + nb);
    An = centred_rows(A, na, d, mean, nt);
    Bn = centred_rows(B, nb, d, mean, nt);
  } else if (metric == Metric::Cosine) {
    An = normalized_rows(A, na, d, nt);
    Bn = normalized_rows(B, nb, d, nt);
  }
  if (!An.empty()) {
    As = An.data();
    Bs = Bn.data();
  }
  const int64_t npanel = (nb + NR - 1) / NR;
  const int64_t npad = npanel * NR;
  const T inf = std::numeric_limits<T>::infinity();
  Buffer<T> dbias(npad), qbias(na), panels(static_cast<size_t>(npanel * d * NR));
  pack_panels(Bs, nb, d, NR, euclid, nt, panels.get(), dbias.get());
  // squared norms of the scaled rows (the pruning bounds' rounding allowance)
  std::vector<double> a2(static_cast<size_t>(na)), b2(static_cast<size_t>(nb));
  for (int64_t i = 0; i < na; ++i) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += double(As[i * d + t]) * double(As[i * d + t]);
    a2[i] = s;
    qbias[i] = T(euclid ? s : 0.0);
  }
  for (int64_t j = 0; j < nb; ++j) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += double(Bs[j * d + t]) * double(Bs[j * d + t]);
    b2[j] = s;
  }
  Buffer<T> hs(static_cast<size_t>(na * kab)), thr(na);
  Buffer<int64_t> hi(static_cast<size_t>(na * kab)), hn(na);
  Buffer<T> chs(static_cast<size_t>(npad * kba)), cthr(npad);
  Buffer<int64_t> chi(static_cast<size_t>(npad * kba)), chn(npad);
  // A distance bound D of a row x as a score threshold: the score of a candidate y is
  // ||x - y||^2 - ||x||^2 (Euclidean, centred rows), dist - 1 (cosine, unit rows) or dist
  // (inner product), plus (d + 8) eps (|x| + max |y|)^2, above the score's worst rounding.
  const double eps = double(std::numeric_limits<T>::epsilon());
  auto threshold = [&](const double* bound, int64_t i, const std::vector<double>& own,
                       double other_max) -> T {
    if (bound == nullptr || !(bound[i] < std::numeric_limits<double>::infinity())) return inf;
    const double D = bound[i];
    double s;
    if (metric == Metric::Euclidean)
      s = D * D - own[i];
    else if (metric == Metric::SqEuclidean)
      s = D - own[i];
    else if (metric == Metric::Cosine)
      s = D - 1.0;
    else
      s = D;
    const double r = std::sqrt(own[i]) + other_max;
    s += double(d + 8) * eps * r * r;
    const T st = T(s);
    return double(st) < s ? std::nextafter(st, inf) : st;
  };
  const double amax = std::sqrt(*std::max_element(a2.begin(), a2.end()));
  const double bmax = std::sqrt(*std::max_element(b2.begin(), b2.end()));
  for (int64_t i = 0; i < na; ++i) {
    thr[i] = threshold(bound_a, i, a2, bmax);
    hn[i] = 0;
  }
  for (int64_t j = 0; j < npad; ++j) {
    cthr[j] = j < nb ? threshold(bound_b, j, b2, amax) : -inf;
    chn[j] = 0;
  }
  KnnCtx<T> ctx{As,        d,         qbias.get(), panels.get(), dbias.get(), T(euclid ? -2 : -1),
                kab,       hs.get(),  hi.get(),    hn.get(),     thr.get(),   false,
                chs.get(), chi.get(), chn.get(),   cthr.get(),   kba};

  // Tiles of QB query rows x PB panels, in rounds whose tiles share no row block and no
  // panel block (a Latin square: tile (q, (q + r) mod R) in round r), so that no two threads
  // touch the same heap; the heaps' (score, index) order makes the result order-independent.
  const int64_t QB = 240, PB = std::max<int64_t>(1, 256 / NR);
  const int64_t nQ = (na + QB - 1) / QB, nP = (npanel + PB - 1) / PB;
  const int64_t R = std::max(nQ, nP);
#pragma omp parallel num_threads(nt)
  for (int64_t r = 0; r < R; ++r) {
#pragma omp for schedule(dynamic, 1)
    for (int64_t q = 0; q < nQ; ++q) {
      const int64_t p = (q + r) % R;
      if (p >= nP) continue;
      process(ctx, q * QB, std::min(na, (q + 1) * QB), p * PB, std::min(npanel, (p + 1) * PB), true,
              false);
    }
  }

  std::vector<double> an, bn;
  if (metric == Metric::Cosine) {
    an = row_norms(A, na, d);
    bn = row_norms(B, nb, d);
  }
  finish_rows(A, B, na, d, kab, metric, an, bn, hn.get(), hi.get(), nt, idx_ab, dist_ab);
  finish_rows(B, A, nb, d, kba, metric, bn, an, chn.get(), chi.get(), nt, idx_ba, dist_ba);
}

template void knn_search<float>(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                                Metric, bool, int, int64_t*, float*, bool, bool);
template void knn_search<double>(const double*, int64_t, const double*, int64_t, int64_t, int64_t,
                                 Metric, bool, int, int64_t*, double*, bool, bool);
template void knn_pair_search<float>(const float*, int64_t, const float*, int64_t, int64_t, int64_t,
                                     Metric, int, int64_t*, double*, int64_t*, double*,
                                     const double*, const double*);
template void knn_pair_search<double>(const double*, int64_t, const double*, int64_t, int64_t,
                                      int64_t, Metric, int, int64_t*, double*, int64_t*, double*,
                                      const double*, const double*);

}  // namespace geoml
