// Approximate k-nearest-neighbour graph: random-projection forest + NN-descent (CPU).
#pragma once
#include <cstdint>
#include <vector>

#include "common/enums.hpp"

namespace geoml {

/// Options of nndescent_graph (bound as geoml._core.NNDescentOptions).
struct NNDescentOptions {
  int64_t n_trees = 0;          ///< random-projection trees of the start (0: 4; 12 when the
                                ///< intrinsic dimension is below cluster_min_dim)
  int64_t leaf_size = 0;        ///< largest leaf, searched exactly (0: max(512, 4 k); max(64, 4 k)
                                ///< when the intrinsic dimension is below cluster_min_dim)
  int64_t max_iter = 20;        ///< NN-descent iterations at most
  int64_t max_extra_trees = 8;  ///< trees added when the iterations stall below the target
  int64_t adaptive_trees = 2;   ///< trees the start may add (low intrinsic dimension) while its
                                ///< recall is short of what one iteration repairs (0: none)
  int64_t max_candidates = 0;   ///< candidates per point and iteration (0: see nndescent.cpp)
  double delta = 0.001;         ///< stop when fewer than delta * n * k entries changed
  double target_recall = 0.99;  ///< stop when the sampled recall reaches it
  double iter_budget = 0;       ///< stop short of the target (0: never) once the iterations
                                ///< it needs, at the last one's rate, would pass this many,
                                ///< or before any when the clustered start's first partition
                                ///< meets a split that is not local, or the forest's first
                                ///< split (high intrinsic dimension) predicts a start too far
                                ///< from the target for half the budget (no structure)
  int64_t n_check = 500;        ///< points whose neighbours are checked exactly (<= n)
  bool clusters = true;         ///< start from overlapping k-means clusters (n >= 4 cluster_size,
                                ///< not inner_product); else the forest
  int64_t cluster_size = 0;     ///< points per cluster of that start (0: 8,192)
  double overlap = 1.05;        ///< a point joins its 2nd cluster when d2 <= overlap * d1
  double cluster_min_dim = 10;  ///< clusters only when the sampled intrinsic dimension is at
                                ///< least this (0: whatever it is); below, the forest
  bool relabel = true;          ///< index the graph by join-order position (the same graph)
  uint64_t seed = 0;
};

/// What nndescent_graph did: the sampled recall after each phase (forest, then each
/// iteration) and the sample itself.
struct NNDescentInfo {
  int64_t n_iter = 0;        ///< NN-descent iterations run
  int64_t n_checked = 0;     ///< points checked exactly
  int64_t hits = 0;          ///< true neighbours found in the checked points' lists
  double recall = 0;         ///< hits / (n_checked k)
  int64_t last_changes = 0;  ///< entries changed by the last iteration
  double intrinsic_dim = 0;  ///< MLE on the checked points' exact neighbours (NaN: none)
};

/// Approximate k nearest neighbours of every row of X (n x d, row-major) among the others
/// (a point is never its own neighbour; exact duplicates are neighbours at distance 0).
///
/// 1. Start: `n_trees` random-projection trees (split by the hyperplane half-way between two
///    random points, cosine on unit rows) with leaves of at most `leaf_size` points; each
///    leaf is searched exactly, the leaf results merged into bounded per-point heaps: leaves
///    of more than 256 points by knn_search (the exact kernel: SIMD, all metrics), smaller
///    ones pair by pair (the NN-descent scores, four at a time), each pair offered to both
///    endpoints' heaps only when it beats their worst entry. When the intrinsic dimension
///    (below) is under `cluster_min_dim`, the defaults are 12 trees of at most max(64, 4 k)
///    points (else 4 of max(512, 4 k)).
///    From 4 cluster_size points (not for inner products), when the intrinsic dimension
///    measured on the checked sample (step 3's exact neighbours; Levina-Bickel MLE) is at least
///    `cluster_min_dim` (or unknown), the start is instead overlapping
///    clusters searched exactly (as cuVS all_neighbors): k-means on a hashed sample (at most
///    128 centres per split), each point in its nearest cluster and also in its second when
///    d2 <= overlap d1, clusters above 1.5 cluster_size split again (cut into chunks when
///    k-means cannot split them; searched whole, up to 4 cluster_size, when the split is not
///    local: more than half of the points in two parts, as in a blob of high intrinsic
///    dimension), each cluster searched by knn_search with all threads and merged into the
///    heaps; docs/design/neighbors.md.
/// 2. NN-descent (Dong, Moses & Li 2011, as in pynndescent): each iteration samples up to
///    `max_candidates` new and old forward and reverse neighbours of every point (by hashed
///    16-bit priorities, kept for an eighth of the rows at a time) and scores every pair of
///    candidates of a point ("local join"), a candidate against the others four at a time (per-ISA
///    1x4 kernels, bit-identical to the pair kernel). Points are joined in leaf order of the last
///    tree (neighbouring rows stay in cache), in fixed blocks (4,096 points): a block's
///    updates are generated against the graph as it stood before the block (a pair already in
///    an endpoint's list is not offered to it), then applied in parallel by target rows;
///    heaps are ordered by (score, index), so the result of applying a set of updates does not
///    depend on their order, and the graph is the same for any thread count. With `relabel`
///    the graph and candidate lists are indexed by labels, the points' positions in the join
///    order (set when the first tree is built and whenever the join order changes), so that a
///    point's neighbours' rows lie near its own in memory; ties and priorities go by the points,
///    so the graph is the same with or without it.
/// 3. Accuracy: `n_check` points drawn from the seed are searched exactly (X streamed in
///    chunks); after the start and after each iteration their recall is measured (a
///    neighbour counts when its exact distance is at most the true k-th distance, so ties and
///    duplicates are not penalised); the iterations stop once it reaches `target_recall` or
///    after `max_iter`. When an iteration changes fewer than `delta * n * k` entries below
///    the target, one more tree's leaves are merged in (at most `max_extra_trees`; from a
///    clustered start, first one more clustered partition with other k-means seeds, the
///    candidate lists freed meanwhile) and the iterations go on; they stop when the trees are
///    spent.
/// Distances are then recomputed exactly (double accumulation, vectorised) and rows sorted by
/// (distance, index), as in knn_search.
///
/// Memory beyond X: the working graph, n k (5 + sizeof(T)) bytes (int32 index, score, flag),
/// with, during the iterations, the candidate lists (2 n c 4 bytes, c = max_candidates, plus
/// n c / 2 for their priorities) and, at the end, the outputs (n k (8 + sizeof(T)), allocated once
/// the candidates are freed); n 8 for one tree and n 8 for the labels (n 12 more for cosine
/// norms), O(threads leaf_size d + 65536 d) scratch; a relabelling copies the graph (when the
/// candidate lists are not allocated). The peak is the larger of the two phases;
/// docs/design/neighbors.md has the formula. Requires n < 2^31 and 1 <= k <= n - 1. Throws
/// std::invalid_argument otherwise.
template <typename T>
void nndescent_graph(const T* X, int64_t n, int64_t d, int64_t k, Metric metric,
                     const NNDescentOptions& opt, int n_threads, std::vector<int64_t>& indices,
                     std::vector<T>& distances, NNDescentInfo* info, bool verbose = false);

/// Pieces of the clustered start, for running it distributed (geoml.dask): the top split
/// made by the caller (sample positions, centres, each point's one or two cells), each of its
/// parts searched by nndescent_cell, which splits further exactly as nndescent_graph does, so
/// that merging the cells' lists by (score, index) gives nndescent_graph's start.
/// m distinct positions of [0, L) by Floyd's algorithm on the stream hash3(seed, salt, r).
std::vector<int64_t> nndescent_floyd(int64_t L, int64_t m, uint64_t seed, uint64_t salt);
/// Seed of list `id` of pass `pass` (the top list is id 1) and the id of its p-th part.
uint64_t nndescent_cluster_node(uint64_t seed, uint64_t pass, uint64_t id);
uint64_t nndescent_cluster_child(uint64_t id, int64_t p);
/// Centres of a split of L points into lists of about S points, and its k-means sample size.
int64_t nndescent_split_parts(int64_t L, int64_t S);
int64_t nndescent_split_sample(int64_t L, int64_t C);
/// k-means centres (C x d, in T) of a split from its sample rows (ns x d, in sample order).
template <typename T>
std::vector<T> nndescent_split_centres(const T* rows, int64_t ns, int64_t d, int64_t C,
                                       Metric metric, uint64_t seed, uint64_t node, int n_threads);
/// Nearest centre of each row of Q, and the second when d2 <= overlap d1 (else -1).
template <typename T>
void nndescent_split_assign(const T* centres, int64_t C, const T* Q, int64_t m, int64_t d,
                            Metric metric, double overlap, int n_threads, int32_t* first,
                            int32_t* second);
/// The clustered start of one list X (L x d, rows in increasing global index) of node `id`,
/// pass `pass` (opt: seed, cluster_size, overlap): (L x k) local indices, exact float64
/// distances and scores, rows sorted by (distance, index); slots past a row's list (-1, inf).
template <typename T>
void nndescent_cell(const T* X, int64_t L, int64_t d, int64_t k, Metric metric,
                    const NNDescentOptions& opt, uint64_t pass, uint64_t id, int n_threads,
                    int64_t* indices, double* distances, T* scores);

}  // namespace geoml
