// Algebraic multigrid building blocks for the Laplacian eigensolver: greedy aggregation of a
// sparse graph and block sparse-times-dense products.
#pragma once
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

}  // namespace geoml
