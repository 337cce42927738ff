// Discrete Ricci curvature of graph edges: Ollivier-Ricci (optimal transport between
// neighbourhood measures) and Forman-Ricci (combinatorial).
#pragma once
#include <cstdint>

namespace geoml {

/// Undirected graph in CSR form: both directions stored, neighbours of each node sorted by
/// index, no self-loops, non-negative weights. The caller owns the arrays.
struct CsrGraph {
  int64_t n;
  const int64_t* indptr;   // n + 1
  const int64_t* indices;  // indptr[n]
  const double* weights;   // indptr[n]
};

enum class OrcMethod : int { Exact = 0, Sinkhorn = 1, LowerBound = 2, ATD = 3 };

struct OrcOptions {
  double alpha = 0.5;  // mass kept on the node itself
  double base = 2.718281828459045;
  double exp_power = 2.0;  // neighbour v of x gets weight base^(-w(x, v)^exp_power)
  int64_t nbr_topk = 0;    // keep only the nbr_topk heaviest neighbours (0: all)
  OrcMethod method = OrcMethod::Exact;
  double eps = 0.1;       // entropic regularisation (Sinkhorn), absolute cost units
  double tol = 1e-6;      // Sinkhorn: L1 marginal error to stop at
  int64_t max_iter = 0;   // Sinkhorn iterations (0: 10000) / simplex pivots (0: no limit)
  bool fast_path = true;  // rows computed once and shared by the threads; weighted graphs'
                          // problems of at most 32 x 32 not merged (false: per-thread row
                          // caches, merging everywhere; for testing)
  int n_threads = 0;
};

/// Ollivier-Ricci curvature kappa(x, y) = 1 - W1(m_x, m_y) / d(x, y) of the m edges
/// (eu[e], ev[e]), with m_x = alpha at x and (1 - alpha) spread over the (top-k) neighbours of
/// x in proportion to base^(-w^exp_power) (uniformly if those weights sum to <= 1e-7), and d
/// the shortest-path metric of the weighted graph (GraphRicciCurvature's definition; kappa = 0
/// when d(x, y) < 1e-7).
///
/// Distances: only d(u, v) for u in supp m_x and v in supp m_y are needed, all within 3 hops.
/// Edges are processed grouped by their first endpoint x: a bounded search from each u in
/// supp m_x (2-hop marking when all weights are equal, otherwise Dijkstra stopped once every
/// needed target is settled) fills a |supp m_x| x |targets| block, and each edge's cost
/// matrix is cut from it. Never an n x n matrix: memory O(n + nnz) plus per-thread O(n) and
/// O(deg x deg^2) scratch. With fast_path (the default), x is taken in windows of consecutive
/// BFS positions (8192 with distances, 32768 with hop counts, fewer while the rows exceed 2^24
/// entries): the rows of the window's sources are computed once, in parallel, into one
/// table that the threads share, then its edges are solved in parallel; without it each
/// thread keeps its own FIFO row cache (and computes most rows again). Weighted problems of
/// at most 32 x 32 are then not searched for equal cost rows and columns. OT per edge by the
/// exact network simplex (emd_small), a stabilised Sinkhorn (<P, C> of the entropic plan),
/// GraphRicciCurvature's average transportation distance (ATD: alpha d(x, y) + (1 - alpha) mean of
/// d(u, v) over all neighbours u of x, v of y; nbr_topk ignored), or, for unweighted graphs, the
/// Jost-Liu triangle bound (times 1 - alpha). Exact OT on an unweighted graph (all weights equal)
/// takes a faster, equally exact path: costs are hop counts 0..3 kept as bytes, distances
/// to and through the 32 largest hubs come from bitmasks (rows never expand a hub), equal
/// cost rows and columns are merged, and each problem goes to an integer-cost primal-dual
/// solver (successive shortest paths, then Dinic maximum flows, or single augmenting paths
/// with bitmask sets on small problems; at most 4 phases). OpenMP over
/// nodes. `kappa`, `dist` (d(x, y)) and
/// `status` (0 ok, 1 the OT solver hit its iteration limit) have m entries; any edge order.
/// Throws std::invalid_argument for the lower bound on a graph with unequal weights.
void ollivier_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                    const OrcOptions& opt, double* kappa, double* dist, int* status);

/// Ollivier-Ricci curvature of the m arcs (eu[e] -> ev[e]) of a directed graph, with
/// GraphRicciCurvature's semantics: m_x spreads 1 - alpha over the in-neighbours u of x (in
/// proportion to base^(-w(u, x)^exp_power)), m_y over the out-neighbours v of y, a node with no
/// such neighbour keeps all its mass, and costs are directed shortest-path lengths d(u, v)
/// (every one is reached within 3 arcs: u -> x -> y -> v). `out` is the graph (row x: the arcs
/// x -> v), `in` its transpose (row x: the arcs u -> x with their weights); both sorted, no
/// self-loops. kappa = 1 - W1 / d(x, y), 0 when d(x, y) < 1e-7. Same methods (but
/// lower_bound), cost and memory as ollivier_ricci; no hop-count fast path.
void ollivier_ricci_directed(const CsrGraph& out, const CsrGraph& in, int64_t m, const int64_t* eu,
                             const int64_t* ev, const OrcOptions& opt, double* kappa, double* dist,
                             int* status);

/// Forman-Ricci curvature of the m edges (GraphRicciCurvature's formulas with unit node
/// weights): "1d" F = w_e (2 / w_e - sum_{v ~ x, v != y} 1/sqrt(w_e w_xv) - sum_{v ~ y, v != x}
/// 1/sqrt(w_e w_yv)); "augmented" adds the triangles: F = w_e (t w_e + 2 / w_e - |sum over the
/// non-triangle neighbours as in 1d|) with t the number of triangles on the edge.
/// O(sum over edges of deg(x) + deg(y)), OpenMP over edges.
void forman_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                  bool augmented, int n_threads, double* out);

}  // namespace geoml
