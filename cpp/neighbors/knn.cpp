// Exact k-nearest-neighbour search: packing, scheduling, run-time ISA dispatch, finishing.
#include "knn.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/common.hpp"
#include "common/simd.hpp"
#include "neighbors/exact_distance.hpp"

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

template <typename T>
using ProcessFn = void (*)(const KnnCtx<T>&, int64_t, int64_t, int64_t, int64_t, bool, bool);

template <typename T>
ProcessFn<T> kernel_for(SimdIsa isa) {
  return GEOML_SIMD_PICK(isa, process<T>);
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

/// The finishing step: exact distances (double) of each query's heap entries to the query,
/// rows sorted by (distance, index), written as D; missing entries are (-1, +inf).
template <typename T, typename D>
void finish_rows(const T* Q, const T* X, int64_t m, int64_t d, int64_t k, Metric metric,
                 const std::vector<double>& qnorm, const std::vector<double>& xnorm,
                 const int64_t* hn, const int64_t* hi, int nt, int64_t* indices, D* distances) {
  const D inf = std::numeric_limits<D>::infinity();
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> row(static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
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
  const SimdIsa isa = simd_isa();
  const int NR = 2 * simd_bytes(isa) / static_cast<int>(sizeof(T));
  const ProcessFn<T> process = kernel_for<T>(isa);

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
  const int64_t npanel = (n + NR - 1) / NR;
  const int64_t npad = npanel * NR;
  const T inf = std::numeric_limits<T>::infinity();

  Buffer<T> dbias(npad), panels(static_cast<size_t>(npanel * d * NR));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t p = 0; p < npanel; ++p) {
    T* P = panels.get() + p * d * NR;
    for (int l = 0; l < NR; ++l) {
      const int64_t j = p * NR + l;
      if (j < n) {
        const T* x = Xs + j * d;
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

  const int64_t nq = self ? npad : m;
  Buffer<T> hs(static_cast<size_t>(nq * k)), thr(nq);
  Buffer<int64_t> hi(static_cast<size_t>(nq * k)), hn(nq);
  for (int64_t i = 0; i < nq; ++i) {
    thr[i] = i < m ? inf : -inf;
    hn[i] = 0;
  }
  Progress progress("knn");
  KnnCtx<T> ctx{Qs,
                d,
                dbias.get(),
                panels.get(),
                dbias.get(),
                T(euclid ? -2 : -1),
                k,
                hs.get(),
                hi.get(),
                hn.get(),
                thr.get(),
                exclude_self,
                hs.get(),
                hi.get(),
                hn.get(),
                thr.get(),
                k};

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
        process(ctx, b * BS, std::min(n, (b + 1) * BS), b * ppb, std::min(npanel, (b + 1) * ppb),
                false, true);
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
          process(ctx, a * BS, std::min(n, (a + 1) * BS), b * ppb, std::min(npanel, (b + 1) * ppb),
                  true, false);
        }
      }
    }
  } else {
    const int64_t QB = 240;
    const int64_t panel_bytes = d * NR * static_cast<int64_t>(sizeof(T));
    const int64_t PC = std::max<int64_t>(1, (256 * 1024) / panel_bytes);
    const int64_t nblk = (m + QB - 1) / QB;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < nblk; ++b) {
      if (verbose && thread_id() == 0) progress.report(b + 1, nblk);
      for (int64_t p = 0; p < npanel; p += PC)
        process(ctx, b * QB, std::min(m, (b + 1) * QB), p, std::min(npanel, p + PC), false, false);
    }
  }
  if (verbose) progress.done();

  if (!exact_finish) {
#pragma omp parallel num_threads(nt)
    {
      std::vector<std::pair<T, int64_t>> row(static_cast<size_t>(k));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < m; ++i) {
        const int64_t cnt = hn[i];
        for (int64_t s = 0; s < cnt; ++s) row[s] = {hs[i * k + s], hi[i * k + s]};
        std::sort(row.begin(), row.begin() + cnt);
        for (int64_t s = 0; s < k; ++s) {
          indices[i * k + s] = s < cnt ? row[s].second : -1;
          distances[i * k + s] = s < cnt ? D(row[s].first) : D(inf);
        }
      }
    }
    return;
  }

  // Finish: exact distances of the k winners, sorted by (distance, index).
  std::vector<double> xnorm, qnorm;
  if (metric == Metric::Cosine) {
    xnorm = row_norms(X, n, d);
    qnorm = self ? xnorm : row_norms(Qin, m, d);
  }
  finish_rows(self ? X : Qin, X, m, d, k, metric, qnorm, xnorm, hn.get(), hi.get(), nt, indices,
              distances);
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
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t p = 0; p < npanel; ++p) {
    T* P = panels.get() + p * d * NR;
    for (int l = 0; l < NR; ++l) {
      const int64_t j = p * NR + l;
      if (j < nb) {
        const T* x = Bs + j * d;
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
