// Algebraic multigrid building blocks for the Laplacian eigensolver: greedy aggregation of a
// sparse graph, block sparse-times-dense products and float32 V-cycles.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/memory.hpp"

namespace geoml {

/// Greedy aggregation of the graph with CSR pattern (indptr, indices) on n nodes (the
/// standard three passes of smoothed aggregation, Vanek, Mandel & Brezina 1996): pass 1 makes
/// every node whose neighbours are all free the root of an aggregate {node} + neighbours;
/// pass 2 attaches each remaining node to the aggregate of the neighbour it is most strongly
/// connected to (largest |data|; data may be null: all weights 1); pass 3 groups what is left
/// (nodes without aggregated neighbours, e.g. isolated ones) with their free neighbours.
/// Writes the aggregate of each node to `labels` (n values) and returns the number of
/// aggregates. O(nnz), sequential (the passes depend on visiting order).
template <typename I>
int64_t aggregate_graph(int64_t n, const I* indptr, const I* indices, const double* data,
                        int32_t* labels);

/// Reverse Cuthill-McKee ordering and connected components of the undirected graph with
/// symmetric CSR pattern (indptr, indices) on n nodes, from one breadth-first sweep: seeds are
/// taken in order of increasing degree (ties by index), each search numbers one component and
/// appends the newly reached neighbours of a node in order of increasing degree; the visiting
/// order reversed is the RCM order (as scipy.sparse.csgraph.reverse_cuthill_mckee builds it).
/// Writes perm (n values: perm[i] = the node placed at position i) and labels (component of
/// each node, numbered in order of discovery); returns the number of components.
/// O(nnz + n), sequential.
template <typename I>
int64_t rcm_components(int64_t n, const I* indptr, const I* indices, int64_t* perm,
                       int32_t* labels);

/// The normalised Laplacian L = I - S W S (S = diag(s), s_v = 1 / sqrt(d_v); rows and
/// columns of isolated nodes, d_v = 0, are zero) of the symmetric CSR affinity W with degrees
/// d, with rows and columns renumbered: row i of the result is node perm[i]. The diagonal is
/// stored for every non-isolated node (self-loops of W are folded into it) and the columns of
/// each row are sorted. Returns the CSR arrays in out_indptr (n + 1 values, owned by the
/// caller) and out_indices / out_data (resized here). W is read in its own row order (each
/// row written, unsorted, to its new place), then each new row is sorted; OpenMP over rows;
/// O(nnz * max row length) at worst (insertion sort up to 64 entries per row, else std::sort).
template <typename I>
void permuted_lsym(int64_t n, const I* indptr, const I* indices, const double* data,
                   const double* d, const int64_t* perm, int64_t* out_indptr,
                   big_vector<int64_t>& out_indices, big_vector<double>& out_data, int n_threads);

/// Y = alpha * A X + beta * B for a CSR matrix A (rows x cols) and row-major dense blocks
/// X (cols x m), B and Y (rows x m); B may be null (then Y = alpha A X) or equal to Y (in
/// place). Parallel over rows with OpenMP; O(nnz m).
template <typename I>
void csr_spmm(int64_t rows, const I* indptr, const I* indices, const double* data, int64_t m,
              const double* X, double alpha, const double* B, double beta, double* Y,
              int n_threads);

/// CSR matrix with float32 values and int32 indices, owning its arrays.
struct CsrF32 {
  int64_t rows = 0;
  big_vector<int32_t> indptr, indices;
  big_vector<float> data;
};

/// Symmetric V(1,1)-cycles of a smoothed-aggregation hierarchy, applied to blocks of vectors
/// in float32 (a preconditioner need not be accurate; float32 halves the memory traffic and
/// doubles the SIMD width). Level i holds A_i, the weighted-Jacobi weights jac_i
/// (omega / diag(A_i)), the prolongator P_i (n_i x n_{i+1}) and R_i = P_i^T; the coarsest
/// level holds A and a dense pseudo-inverse stored as CSR. Every product is one fused pass
/// over a CSR matrix (Y = A X, Y += A X, r = B - A X, or the Jacobi step
/// X + jac (B - A X)) with the block's row in SIMD registers (AVX2+FMA when the CPU has it,
/// chosen at run time), OpenMP over rows. The object owns copies of the operators and
/// work blocks of n_i x round_up(m, 8) floats per level (kept between calls).
class AmgCycle {
 public:
  /// Appends a level (A square with rows = jac.size(); P: rows(A) x rows of the next
  /// level; R = P^T). Throws std::invalid_argument on inconsistent sizes.
  void add_level(CsrF32 A, std::vector<float> jac, CsrF32 P, CsrF32 R);
  /// Sets the coarsest level: its operator and pseudo-inverse (both rows x rows).
  void set_coarse(CsrF32 A, CsrF32 pinv);
  int64_t n_levels() const { return static_cast<int64_t>(lv_.size()); }
  int64_t rows(int64_t level) const { return lv_.at(level).A.rows; }
  /// X = `cycles` V-cycles for A_level X = B from X = 0; B and X are row-major float64
  /// blocks of rows(level) x m. O(cycles * m * sum of the levels' nnz).
  void apply(int64_t level, int64_t m, const double* B, double* X, int cycles, int n_threads);

 private:
  struct Level {
    CsrF32 A, P, R;  // coarsest level: P is the dense pseudo-inverse, R empty
    std::vector<float> jac;
    big_vector<float> b, x, t, r;  // work blocks (rhs, iterate, next iterate, residual)
  };
  std::vector<Level> lv_;
  bool complete_ = false;
  void vcycle(std::size_t i, int64_t w, bool zero, int n_threads);
};

}  // namespace geoml
