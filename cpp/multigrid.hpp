// Algebraic multigrid building blocks for the Laplacian eigensolver: greedy aggregation of a
// sparse graph, block sparse-times-dense products and float32 V-cycles.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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
  std::vector<int32_t> indptr, indices;
  std::vector<float> data;
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
    std::vector<float> b, x, t, r;  // work blocks (rhs, iterate, next iterate, residual)
  };
  std::vector<Level> lv_;
  bool complete_ = false;
  void vcycle(std::size_t i, int64_t w, bool zero, int n_threads);
};

}  // namespace geoml
