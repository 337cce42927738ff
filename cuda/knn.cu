// Exact kNN on the GPU: row preparation, fused tile-score + top-k selection, split merge, exact
// finishing sort. See knn.hpp for the contract.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "check.hpp"
#include "knn.hpp"

namespace geoml::cuda {
namespace {

template <typename T>
__device__ __forceinline__ T pos_inf();
template <>
__device__ __forceinline__ float pos_inf<float>() {
  return CUDART_INF_F;
}
template <>
__device__ __forceinline__ double pos_inf<double>() {
  return CUDART_INF;
}

/// Sum over the 32 lanes of a warp; every lane gets the total. All lanes must call it.
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Makes `device` current for the lifetime of the guard and restores the previous one.
struct DeviceGuard {
  int prev = -1;
  explicit DeviceGuard(int device) {
    GEOML_CUDA_CHECK(cudaGetDevice(&prev));
    if (prev != device) GEOML_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur != prev) cudaSetDevice(prev);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
};

inline cudaStream_t as_stream(uintptr_t s) {
  return reinterpret_cast<cudaStream_t>(s);
}

inline unsigned grid_1d(int64_t items, int64_t per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  if (blocks > INT_MAX) throw std::invalid_argument("knn (GPU): problem too large for one grid");
  return static_cast<unsigned>(blocks);
}

// ---------------------------------------------------------------- preparation

/// One warp per row: kind 0 centres (and writes the squared norm of the centred row to bias),
/// kind 1 scales to unit norm.
template <typename T>
__global__ void prep_kernel(int kind, const T* __restrict__ in, T* __restrict__ out,
                            T* __restrict__ bias, const double* __restrict__ mean, int64_t rows,
                            int64_t d) {
  const int lane = threadIdx.x & 31;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (row >= rows) return;  // warp-uniform: blockDim is a multiple of 32
  const T* x = in + row * d;
  T* y = out + row * d;
  double s = 0;
  if (kind == 0) {
    for (int64_t t = lane; t < d; t += 32) {
      const T v = static_cast<T>(static_cast<double>(x[t]) - mean[t]);
      y[t] = v;
      s += static_cast<double>(v) * static_cast<double>(v);
    }
    s = warp_sum(s);
    if (bias != nullptr && lane == 0) bias[row] = static_cast<T>(s);
  } else {
    for (int64_t t = lane; t < d; t += 32)
      s += static_cast<double>(x[t]) * static_cast<double>(x[t]);
    s = warp_sum(s);
    const double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
    for (int64_t t = lane; t < d; t += 32) y[t] = static_cast<T>(static_cast<double>(x[t]) * inv);
  }
}

// ---------------------------------------------------------------- heaps

template <typename T>
__device__ __forceinline__ bool heap_less(T sa, int64_t ia, T sb, int64_t ib) {
  return sa < sb || (sa == sb && ia < ib);
}

/// Offers (score, j) to the max-heap (s, id) on (score, index) of capacity k holding `cnt`
/// items: kept iff it is among the k smallest pairs seen. O(log k) global-memory steps.
template <typename T>
__device__ void heap_push(T* s, int64_t* id, int& cnt, int64_t k, T score, int64_t j) {
  if (cnt < k) {
    int64_t c = cnt++;
    while (c > 0) {
      const int64_t p = (c - 1) / 2;
      if (!heap_less(s[p], id[p], score, j)) break;
      s[c] = s[p];
      id[c] = id[p];
      c = p;
    }
    s[c] = score;
    id[c] = j;
    return;
  }
  if (!heap_less(score, j, s[0], id[0])) return;
  int64_t c = 0;
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
}

// ---------------------------------------------------------------- fused score + select

/// out[0..N) = p[0..N) from shared memory in 16-byte loads (p 16-byte aligned).
template <int N>
__device__ __forceinline__ void load_run(const float* p, float (&out)[N]) {
  static_assert(N % 4 == 0, "");
#pragma unroll
  for (int v = 0; v < N / 4; ++v) {
    const float4 t = reinterpret_cast<const float4*>(p)[v];
    out[4 * v] = t.x;
    out[4 * v + 1] = t.y;
    out[4 * v + 2] = t.z;
    out[4 * v + 3] = t.w;
  }
}
template <int N>
__device__ __forceinline__ void load_run(const double* p, double (&out)[N]) {
  static_assert(N % 2 == 0, "");
#pragma unroll
  for (int v = 0; v < N / 2; ++v) {
    const double2 t = reinterpret_cast<const double2*>(p)[v];
    out[2 * v] = t.x;
    out[2 * v + 1] = t.y;
  }
}

/// Tile configuration: BM queries x BN points per block, BK features per shared-memory step,
/// each thread owning TM x TN scores (rows ty*TM + i, columns tx*TN + j), read from shared
/// memory as 16-byte vectors. PAD keeps the transposed tile stores conflict-free and the rows
/// of the tiles 16-byte aligned.
template <typename T, int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_, PAD = 4;
  static constexpr int RT = BM / TM, CT = BN / TN, NT = RT * CT;
  static constexpr int MIN_BLOCKS = 2;  // caps registers so two blocks share an SM
  static_assert(BM % TM == 0 && BN % TN == 0, "tile must divide");
  static_assert(NT >= BM, "one thread per query row is needed for the flush");
  static_assert(BN <= 256, "candidate columns are stored as uint8");
  static_assert((TM * sizeof(T)) % 16 == 0 && (TN * sizeof(T)) % 16 == 0 &&
                    ((BM + PAD) * sizeof(T)) % 16 == 0 && ((BN + PAD) * sizeof(T)) % 16 == 0,
                "vector shared-memory loads need 16-byte aligned runs");
  // shared memory layout (bytes): T arrays first, then int counts, then uint8 columns
  static constexpr size_t n_t =
      size_t(BK) * (BM + PAD) + size_t(BK) * (BN + PAD) + size_t(BM) * BN + BN + BM;
  static constexpr size_t smem = n_t * sizeof(T) + sizeof(int) * BM + size_t(BM) * BN;
};

using TileF32Big = Tile<float, 128, 128, 8, 8, 8>;
using TileF32 = Tile<float, 64, 64, 8, 4, 4>;
using TileF64 = Tile<double, 64, 64, 8, 4, 4>;

/// Grid (ceil(m / BM), S). Block (bx, s) scores queries [bx*BM, bx*BM + BM) against the data
/// tiles of split s and keeps, per query, the k smallest (score, index) pairs in the heap at
/// hs/hi + (s*m + q)*k, its fill count in hn[s*m + q].
template <typename C, typename T>
__global__ void __launch_bounds__(C::NT, C::MIN_BLOCKS)
    select_kernel(const T* __restrict__ Q, int64_t m, const T* __restrict__ X, int64_t n, int64_t d,
                  const T* __restrict__ xbias, T alpha, int64_t k, bool exclude_self,
                  int64_t tiles_per_split, T* __restrict__ hs, int64_t* __restrict__ hi,
                  int* __restrict__ hn) {
  constexpr int BM = C::BM, BN = C::BN, BK = C::BK, TM = C::TM, TN = C::TN;
  constexpr int CT = C::CT, NT = C::NT, LDA = BM + C::PAD, LDB = BN + C::PAD;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* As = reinterpret_cast<T*>(smem_raw);       // [BK][LDA]: query tile, transposed
  T* Bs = As + BK * LDA;                        // [BK][LDB]: data tile, transposed
  T* bufS = Bs + BK * LDB;                      // [BM][BN]: candidate scores of each query row
  T* xb = bufS + BM * BN;                       // [BN]: bias of the tile's points
  T* thr = xb + BN;                             // [BM]: admission threshold of each row
  int* cnt = reinterpret_cast<int*>(thr + BM);  // [BM] candidates
  unsigned char* bufC = reinterpret_cast<unsigned char*>(cnt + BM);  // [BM][BN] columns

  const int tid = threadIdx.x;
  const int tx = tid % CT, ty = tid / CT;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t split = blockIdx.y;
  const int64_t jbeg = split * tiles_per_split * BN;
  const int64_t jlim = jbeg + tiles_per_split * BN;
  const int64_t jend = jlim < n ? jlim : n;
  const T inf = pos_inf<T>();

  // Thread tid < BM owns the heap of query row tid.
  const int64_t my_q = i0 + tid;
  const bool owner = tid < BM && my_q < m;
  T* my_s = owner ? hs + (split * m + my_q) * k : nullptr;
  int64_t* my_i = owner ? hi + (split * m + my_q) * k : nullptr;
  int my_cnt = 0;
  if (tid < BM) {
    thr[tid] = owner ? inf : -inf;  // -inf: padding rows admit nothing
    cnt[tid] = 0;
  }
  __syncthreads();

  for (int64_t j0 = jbeg; j0 < jend; j0 += BN) {
    for (int c = tid; c < BN; c += NT)
      xb[c] = (j0 + c < jend) ? (xbias != nullptr ? xbias[j0 + c] : T(0)) : inf;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    for (int64_t t0 = 0; t0 < d; t0 += BK) {
      for (int e = tid; e < BM * BK; e += NT) {
        const int r = e / BK, c = e % BK;
        const int64_t gi = i0 + r, gt = t0 + c;
        As[c * LDA + r] = (gi < m && gt < d) ? Q[gi * d + gt] : T(0);
      }
      for (int e = tid; e < BN * BK; e += NT) {
        const int r = e / BK, c = e % BK;
        const int64_t gj = j0 + r, gt = t0 + c;
        Bs[c * LDB + r] = (gj < jend && gt < d) ? X[gj * d + gt] : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        T a[TM], b[TN];
        load_run(As + kk * LDA + ty * TM, a);
        load_run(Bs + kk * LDB + tx * TN, b);
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
      }
      __syncthreads();
    }

    // Offer every score at or below the row's threshold (ties are settled by index in the
    // heap). A row receives at most BN candidates per tile: the buffer cannot overflow.
    // Local tests: column c is a data point iff c < nvalid; (row r, column c) is the pair
    // (i0 + r, j0 + c), a self pair iff c - r == i0 - j0.
    const int nvalid = static_cast<int>(jend - j0 < BN ? jend - j0 : BN);
    const int64_t dlt = i0 - j0;
    const bool may_self = exclude_self && dlt > -BM && dlt < BN;  // c - r spans (-BM, BN)
    const int dself = may_self ? static_cast<int>(dlt) : 0;
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int r = ty * TM + i;
      const T th = thr[r];
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int c = tx * TN + j;
        const T s = xb[c] + alpha * acc[i][j];
        if (s <= th && c < nvalid && !(may_self && c - r == dself)) {
          const int slot = atomicAdd(&cnt[r], 1);
          bufS[r * BN + slot] = s;
          bufC[r * BN + slot] = static_cast<unsigned char>(c);
        }
      }
    }
    __syncthreads();
    if (owner) {
      const int nc = cnt[tid];
      for (int e = 0; e < nc; ++e)
        heap_push(my_s, my_i, my_cnt, k, bufS[tid * BN + e], j0 + bufC[tid * BN + e]);
      if (my_cnt == k) thr[tid] = my_s[0];
    }
    if (tid < BM) cnt[tid] = 0;
    __syncthreads();
  }
  if (owner) hn[split * m + my_q] = my_cnt;
}

/// One thread per query: the k smallest (score, index) pairs of the S split heaps, as a heap
/// in (hs, hi) + q*k with its count in out_cnt[q].
template <typename T>
__global__ void merge_kernel(const T* __restrict__ ws, const int64_t* __restrict__ wi,
                             const int* __restrict__ wn, int64_t m, int64_t k, int splits,
                             T* __restrict__ hs, int64_t* __restrict__ hi,
                             int* __restrict__ out_cnt) {
  const int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= m) return;
  int cnt = 0;
  T* s = hs + q * k;
  int64_t* id = hi + q * k;
  for (int sp = 0; sp < splits; ++sp) {
    const int64_t base = (sp * m + q) * k;
    const int c = wn[sp * m + q];
    for (int e = 0; e < c; ++e) heap_push(s, id, cnt, k, ws[base + e], wi[base + e]);
  }
  out_cnt[q] = cnt;
}

// ---------------------------------------------------------------- exact finish

/// One warp per query: exact distances (double) of the cnt[q] winners held in index[q, :],
/// sorted by (distance, index) with a bitonic sort over P >= k slots of shared memory;
/// writes dist/index rows (missing slots: -1 and +inf).
template <typename T>
__global__ void finish_kernel(const T* __restrict__ Qorig, const T* __restrict__ Xorig, int64_t m,
                              int64_t d, int64_t k, int P, int metric, const int* __restrict__ cnt,
                              T* __restrict__ dist, int64_t* __restrict__ index) {
  extern __shared__ __align__(16) unsigned char fsm_raw[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t q = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (q >= m) return;  // warp-uniform; the kernel uses no block-wide barrier
  double* key = reinterpret_cast<double*>(fsm_raw) + static_cast<size_t>(warp) * 2 * P;
  long long* val = reinterpret_cast<long long*>(key + P);
  const T* qr = Qorig + q * d;
  const Metric met = static_cast<Metric>(metric);

  double qq = 0;
  if (met == Metric::Cosine) {
    for (int64_t t = lane; t < d; t += 32)
      qq += static_cast<double>(qr[t]) * static_cast<double>(qr[t]);
    qq = warp_sum(qq);
  }
  const double qn = sqrt(qq);
  const int c = cnt[q];
  for (int e = 0; e < c; ++e) {
    const int64_t j = index[q * k + e];
    const T* xr = Xorig + j * d;
    double acc = 0, xx = 0;
    if (met == Metric::Euclidean || met == Metric::SqEuclidean) {
      for (int64_t t = lane; t < d; t += 32) {
        const double diff = static_cast<double>(qr[t]) - static_cast<double>(xr[t]);
        acc += diff * diff;
      }
    } else {
      for (int64_t t = lane; t < d; t += 32) {
        const double xv = static_cast<double>(xr[t]);
        acc += static_cast<double>(qr[t]) * xv;
        xx += xv * xv;
      }
    }
    acc = warp_sum(acc);
    if (met == Metric::Cosine) xx = warp_sum(xx);
    if (lane == 0) {
      double v;
      switch (met) {
        case Metric::Euclidean:
          v = sqrt(acc);
          break;
        case Metric::SqEuclidean:
          v = acc;
          break;
        case Metric::Cosine: {
          const double xn = sqrt(xx);
          v = (qn == 0 || xn == 0) ? 1.0 : fmin(2.0, fmax(0.0, 1.0 - acc / (qn * xn)));
          break;
        }
        default:
          v = -acc;
          break;
      }
      key[e] = v;
      val[e] = j;
    }
  }
  for (int e = c + lane; e < P; e += 32) {
    key[e] = CUDART_INF;
    val[e] = LLONG_MAX;
  }
  __syncwarp();
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = lane; i < P / 2; i += 32) {
        const int lo = (i / stride) * 2 * stride + (i % stride);
        const int hi = lo + stride;
        const bool up = (lo & size) == 0;
        const double ka = key[lo], kb = key[hi];
        const long long va = val[lo], vb = val[hi];
        const bool gt = ka > kb || (ka == kb && va > vb);
        if (gt == up) {
          key[lo] = kb;
          key[hi] = ka;
          val[lo] = vb;
          val[hi] = va;
        }
      }
      __syncwarp();
    }
  }
  const T inf = pos_inf<T>();
  for (int64_t e = lane; e < k; e += 32) {
    const bool ok = e < c;
    index[q * k + e] = ok ? static_cast<int64_t>(val[e]) : int64_t(-1);
    dist[q * k + e] = ok ? static_cast<T>(key[e]) : inf;
  }
}

// ---------------------------------------------------------------- host side

enum class Config { F32Big, F32, F64 };

Config choose_config(bool is_double, int device) {
  if (is_double) return Config::F64;
  int optin = 0;
  GEOML_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return static_cast<size_t>(optin) >= TileF32Big::smem ? Config::F32Big : Config::F32;
}

void tile_shape(Config c, int& bm, int& bn) {
  switch (c) {
    case Config::F32Big:
      bm = TileF32Big::BM;
      bn = TileF32Big::BN;
      return;
    case Config::F32:
      bm = TileF32::BM;
      bn = TileF32::BN;
      return;
    case Config::F64:
      bm = TileF64::BM;
      bn = TileF64::BN;
      return;
  }
}

template <typename C, typename T>
void launch_select(const T* Q, int64_t m, const T* X, int64_t n, int64_t d, const T* xbias, T alpha,
                   int64_t k, bool exclude_self, int64_t tps, int splits, T* hs, int64_t* hi,
                   int* hn, cudaStream_t stream) {
  if (C::smem > 48 * 1024)
    GEOML_CUDA_CHECK(cudaFuncSetAttribute(select_kernel<C, T>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(C::smem)));
  const dim3 grid(grid_1d(m, C::BM), static_cast<unsigned>(splits));
  select_kernel<C, T><<<grid, C::NT, C::smem, stream>>>(Q, m, X, n, d, xbias, alpha, k,
                                                        exclude_self, tps, hs, hi, hn);
  GEOML_CUDA_CHECK_LAUNCH();
}

}  // namespace

int knn_plan(int64_t m, int64_t n, int64_t k, bool is_double, int device) {
  if (m <= 0 || n <= 0 || k <= 0) return 1;
  DeviceGuard guard(device);
  int bm, bn;
  tile_shape(choose_config(is_double, device), bm, bn);
  int sms = 0;
  GEOML_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t qblocks = (m + bm - 1) / bm;
  const int64_t ntiles = (n + bn - 1) / bn;
  const int64_t want = 4 * static_cast<int64_t>(std::max(sms, 1));  // blocks to fill the GPU
  int64_t s = (want + qblocks - 1) / qblocks;
  s = std::min<int64_t>(s, 64);
  s = std::min<int64_t>(s, std::max<int64_t>(1, ntiles / 4));  // at least 4 tiles per split
  const int64_t per_split = m * k * static_cast<int64_t>((is_double ? 8 : 4) + 8);
  s = std::min<int64_t>(s,
                        std::max<int64_t>(1, (int64_t(1) << 30) / std::max<int64_t>(per_split, 1)));
  return static_cast<int>(std::max<int64_t>(s, 1));
}

template <typename T>
void knn_prep(int kind, const T* in, T* out, T* bias, const double* mean, int64_t rows, int64_t d,
              int device, uintptr_t stream) {
  if (rows <= 0 || d <= 0) return;
  if (kind != 0 && kind != 1) throw std::invalid_argument("knn_prep: kind must be 0 or 1");
  if (kind == 0 && mean == nullptr) throw std::invalid_argument("knn_prep: centring needs a mean");
  DeviceGuard guard(device);
  constexpr int threads = 256;  // 8 rows per block
  prep_kernel<T><<<grid_1d(rows, threads / 32), threads, 0, as_stream(stream)>>>(
      kind, in, out, bias, mean, rows, d);
  GEOML_CUDA_CHECK_LAUNCH();
}

template <typename T>
void knn_search(const T* Qs, const T* Qorig, int64_t m, const T* Xs, const T* Xorig, int64_t n,
                int64_t d, const T* xbias, Metric metric, int64_t k, bool exclude_self, int splits,
                T* ws_scores, int64_t* ws_index, int* counts, int* final_counts, T* dist,
                int64_t* index, int device, uintptr_t stream) {
  if (m <= 0) return;
  if (n <= 0 || d <= 0) throw std::invalid_argument("knn (GPU): empty data");
  if (k < 1 || k > kKnnMaxK || k > n)
    throw std::invalid_argument("knn (GPU): k=" + std::to_string(k) + " must be in [1, " +
                                std::to_string(std::min(n, kKnnMaxK)) + "]");
  if (exclude_self && (Qs != Xs || m != n))
    throw std::invalid_argument("knn (GPU): exclude_self needs the queries to be the data");
  if (splits < 1) throw std::invalid_argument("knn (GPU): splits must be >= 1");
  if (splits > 1 && (ws_scores == nullptr || ws_index == nullptr || final_counts == nullptr))
    throw std::invalid_argument("knn (GPU): splits > 1 needs the workspace");
  DeviceGuard guard(device);
  cudaStream_t st = as_stream(stream);
  const Config cfg = choose_config(sizeof(T) == 8, device);
  int bm, bn;
  tile_shape(cfg, bm, bn);
  const int64_t ntiles = (n + bn - 1) / bn;
  const int64_t tps = (ntiles + splits - 1) / splits;
  const int s_eff = static_cast<int>((ntiles + tps - 1) / tps);  // every split non-empty
  const T alpha = (metric == Metric::Euclidean || metric == Metric::SqEuclidean) ? T(-2) : T(-1);
  T* hs = s_eff > 1 ? ws_scores : dist;
  int64_t* hi = s_eff > 1 ? ws_index : index;

  if constexpr (sizeof(T) == 4) {
    if (cfg == Config::F32Big)
      launch_select<TileF32Big>(Qs, m, Xs, n, d, xbias, alpha, k, exclude_self, tps, s_eff, hs, hi,
                                counts, st);
    else
      launch_select<TileF32>(Qs, m, Xs, n, d, xbias, alpha, k, exclude_self, tps, s_eff, hs, hi,
                             counts, st);
  } else {
    launch_select<TileF64>(Qs, m, Xs, n, d, xbias, alpha, k, exclude_self, tps, s_eff, hs, hi,
                           counts, st);
  }

  const int* fin = counts;
  if (s_eff > 1) {
    constexpr int threads = 128;
    merge_kernel<T><<<grid_1d(m, threads), threads, 0, st>>>(ws_scores, ws_index, counts, m, k,
                                                             s_eff, dist, index, final_counts);
    GEOML_CUDA_CHECK_LAUNCH();
    fin = final_counts;
  }

  int P = 1;
  while (P < k) P <<= 1;
  const size_t per_warp = static_cast<size_t>(P) * (sizeof(double) + sizeof(long long));
  const int warps =
      static_cast<int>(std::max<size_t>(1, std::min<size_t>(8, (32 * 1024) / per_warp)));
  finish_kernel<T><<<grid_1d(m, warps), 32 * warps, per_warp * warps, st>>>(
      Qorig, Xorig, m, d, k, P, static_cast<int>(metric), fin, dist, index);
  GEOML_CUDA_CHECK_LAUNCH();
}

template void knn_prep<float>(int, const float*, float*, float*, const double*, int64_t, int64_t,
                              int, uintptr_t);
template void knn_prep<double>(int, const double*, double*, double*, const double*, int64_t,
                               int64_t, int, uintptr_t);
template void knn_search<float>(const float*, const float*, int64_t, const float*, const float*,
                                int64_t, int64_t, const float*, Metric, int64_t, bool, int, float*,
                                int64_t*, int*, int*, float*, int64_t*, int, uintptr_t);
template void knn_search<double>(const double*, const double*, int64_t, const double*,
                                 const double*, int64_t, int64_t, const double*, Metric, int64_t,
                                 bool, int, double*, int64_t*, int*, int*, double*, int64_t*, int,
                                 uintptr_t);

}  // namespace geoml::cuda
