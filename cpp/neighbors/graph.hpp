// Sparse graphs from neighbour lists.
#pragma once
#include <cstdint>
#include <vector>

namespace geoml {

enum class Symmetrize : int { None = 0, Union = 1, Mutual = 2, Mean = 3 };

/// CSR arrays of a graph with n nodes.
template <typename T, typename I>
struct Csr {
  std::vector<I> indptr, indices;
  std::vector<T> data;
};

/// Builds the n x n CSR matrix W with W[i, idx[i, t]] = w[i, t] (n x k row-major lists; an
/// index < 0 is skipped), then combines it with its transpose:
///   None: W;  Union: max(W, W^T);  Mutual: min(W, W^T) on edges present both ways;
///   Mean: (W + W^T) / 2 (a missing entry counts as 0).
/// Column indices are sorted in every row; self-loops (idx[i, t] == i) are dropped.
/// Cost O(n k log k), parallel over rows; memory O(n k). Throws std::invalid_argument for
/// an index >= n.
template <typename T, typename I>
Csr<T, I> neighbors_to_csr(int64_t n, int64_t k, const int64_t* idx, const T* w, Symmetrize mode,
                           int n_threads);

}  // namespace geoml
