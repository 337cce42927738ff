// Exact k-nearest-neighbour search on the GPU.
#pragma once
#include <cstdint>

#include "common/enums.hpp"

namespace geoml::cuda {

/// Largest k the GPU search accepts (the finishing sort keeps k (distance, index) pairs of one
/// query in shared memory).
constexpr int64_t kKnnMaxK = 2048;

/// The CPU kernels' metric (cpp/common/enums.hpp), bound once as geoml._core.Metric.
using geoml::Metric;

/// What knn_prep does to the rows (its `kind` argument); bound as geoml._cuda.KnnPrep.
enum class KnnPrep : int { Centre = 0, Normalise = 1 };

/// Number of data splits S the search of m queries among n points will use on `device` (each
/// split scans a contiguous range of data tiles for every query, so small query sets still
/// fill the GPU). The caller allocates the workspace for S: when S > 1, S*m*k scores and
/// indices; always S*m heap counts. Workspace is kept under 1 GiB.
int knn_plan(int64_t m, int64_t n, int64_t k, bool is_double, int device);

/// Prepares rows for scoring, on `stream` (asynchronous, nothing synchronised):
///   kind 0: out = T(in - mean) (mean: d doubles) and, if bias != nullptr,
///           bias[i] = T(sum_t out[i,t]^2) (double accumulation);
///   kind 1: out = rows of `in` scaled to unit Euclidean norm (zero rows stay zero).
/// `in` and `out` are rows x d, row-major, device pointers owned by the caller. O(rows d).
template <typename T>
void knn_prep(int kind, const T* in, T* out, T* bias, const double* mean, int64_t rows, int64_t d,
              int device, uintptr_t stream);

/// Exact k nearest neighbours of the m rows of Qs among the n rows of Xs, on `stream`.
///
/// Qs/Xs are the prepared (centred, normalised or raw) rows that are scored as
/// xbias[j] + alpha * <q, x_j> (alpha = -2 for Euclidean metrics, -1 otherwise; xbias may be
/// nullptr for 0); Qorig/Xorig are the user's rows, used to recompute the winners' distances
/// exactly (double accumulation). A register-blocked tile kernel computes BM x BN scores per
/// block and offers those at or below each query's current k-th best to a per-query candidate
/// buffer in shared memory; after every tile one thread per query pushes its candidates into
/// that query's max-heap on (score, index), held in global memory. With S > 1 splits the
/// per-split heaps live in the workspace (ws_scores, ws_index: S*m*k) and are merged per query.
/// A final kernel (one warp per query) recomputes the exact distances of the k winners and
/// sorts them by (distance, index) with a bitonic sort in shared memory.
///
/// Outputs `dist` and `index` (m x k, caller-owned) double as the heap storage. `counts` holds
/// S*m ints, `final_counts` m ints (used only when S > 1). With `exclude_self` (Qs == Xs and
/// m == n) point i is not a neighbour of itself. Cost O(m n d) flops, memory O(S m k) beyond
/// the inputs. Requires 1 <= k <= min(kKnnMaxK, n) (caller validates).
template <typename T>
void knn_search(const T* Qs, const T* Qorig, int64_t m, const T* Xs, const T* Xorig, int64_t n,
                int64_t d, const T* xbias, Metric metric, int64_t k, bool exclude_self, int splits,
                T* ws_scores, int64_t* ws_index, int* counts, int* final_counts, T* dist,
                int64_t* index, int device, uintptr_t stream);

}  // namespace geoml::cuda
