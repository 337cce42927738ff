// Dense block kernels for the LOBPCG eigensolver (python/geoml/spectral/_amg.py): Gram matrices
// and linear combinations of tall, skinny row-major blocks, one OpenMP pass over the rows.
#pragma once
#include <cstdint>
#include <vector>

namespace geoml {

/// A read-only block of `rows` x cols float64 values: row r starts at ptr + r * ld
/// (ld >= cols; unit stride along a row). The caller owns the memory.
struct RowBlock {
  const double* ptr;
  int64_t ld;
  int64_t cols;
};

/// G = [U_1 ... U_a]^T [V_1 ... V_b] over n rows: G is pu x pv row-major (pu, pv the total
/// column counts), written (not accumulated) into memory owned by the caller. The blocks are
/// read once, in chunks of rows packed into per-thread buffers; the Gram of a chunk runs as
/// 4 x 8 register tiles (AVX2+FMA when the CPU has it, chosen at run time). OpenMP over
/// row chunks (dynamic) with per-thread partial Grams summed at the end (threads capped so
/// that each gets ~2e6 flops). O(n pu pv) flops, O(threads pu pv) extra memory.
void block_gram(int64_t n, const std::vector<RowBlock>& U, const std::vector<RowBlock>& V,
                double* G, int n_threads);

/// Y = beta Y + [B_1 ... B_a] C + D over n rows: C is p x q row-major (p the total column
/// count of the blocks), Y is n x q with row stride ldy, D (may be null) a block of n x q.
/// With beta == 0, Y is not read. Row r of Y is written after row r of every input is read,
/// so Y may be one of the B (in place, same layout). OpenMP over pairs of rows (dynamic);
/// O(n p q).
void block_lincomb(int64_t n, const std::vector<RowBlock>& B, const double* C, int64_t q,
                   double beta, const RowBlock* D, double* Y, int64_t ldy, int n_threads);

/// R = AX - X diag(lam) for n x m blocks (rows at stride ld_x, ld_ax, ld_r) and the column
/// norms of R into norms (m values, owned by the caller), in one pass. OpenMP over row
/// chunks (dynamic) with per-thread partial sums of squares; O(n m).
void block_residual(int64_t n, int64_t m, const double* X, int64_t ld_x, const double* AX,
                    int64_t ld_ax, const double* lam, double* R, int64_t ld_r, double* norms,
                    int n_threads);

}  // namespace geoml
