// Matrix-free products with the magnitude similarity matrices Z_t = exp(-t ||x_i - x_j||).
#pragma once
#include <cstdint>

namespace geoml {

/// out_s = Z_{t_s} v_s for each scale s of `ts` (m of them): Z_t[i, j] = exp(-t ||x_i - x_j||)
/// (Euclidean), computed tile by tile inside the product (no n x n matrix). X is (n x d,
/// row-major), V and out are (m x n, row-major: one row per scale). Distances and sums in
/// float64 (float32 X is widened once); exp by a vectorised polynomial (<= 2 ulp; exp(x) for
/// x < -708 is taken as 0, an absolute error below 3e-308). Pruning: rows go by blocks of 16
/// and columns by tiles of 512 consecutive points; a (block, tile) pair whose bounding boxes
/// are at least `cutoff / t_s` apart skips scale s (every term it drops is below
/// exp(-cutoff), so the product changes by at most exp(-cutoff) ||v_s||_1; `cutoff` = inf
/// never prunes; cutoff > 708 drops only exact zeros). Order the points spatially for the
/// pruning to bite. Cost: up to n^2 (d + m) flops-ish (one distance per pair shared by all
/// scales); memory: X transposed in float64 (n d doubles) and a few tiles per thread. OpenMP
/// over row blocks with `n_threads` threads (0: default); each output entry is summed by one
/// thread in a fixed order, so the result does not depend on the thread count. Throws
/// std::invalid_argument for n < 1, d < 1, m < 1, a scale that is not positive and finite or
/// cutoff <= 0.
template <typename T>
void magnitude_matvec(const T* X, int64_t n, int64_t d, const double* ts, int64_t m,
                      const double* V, double* out, double cutoff, int n_threads);

/// Z[i, j] = float(exp(-t ||x_i - x_j||)) in float32, each entry computed in float64 (as
/// magnitude_matvec) and rounded once, stored as the upper block triangle (Z is symmetric):
/// the rows go by blocks of 64 (block row b: rows [64 b, min(n, 64 b + 64))), and each row i
/// of block row b holds Z[i, j] for j in [64 b, n) (its diagonal block in full), the block rows
/// one after the other, magnitude_packed_size(n) floats at Z (about n^2 / 2). Entries of
/// (64-point, 64-point) block pairs whose bounding boxes are at least cutoff / t apart are 0
/// (all below exp(-cutoff)). OpenMP over block rows; the values do not depend on the thread
/// count. Throws std::invalid_argument for n < 1, d < 1, a scale that is not positive and
/// finite, or cutoff <= 0.
template <typename T>
void magnitude_matrix(const T* X, int64_t n, int64_t d, double t, float* Z, double cutoff,
                      int n_threads);

/// Floats of magnitude_matrix's packed storage for n points: sum over its block rows of their
/// rows times n minus their first row.
int64_t magnitude_packed_size(int64_t n);

/// out = Z v for the symmetric n x n float32 Z stored as magnitude_matrix writes it, float64
/// v: each stored entry read once for Z[i, j] v[j] and Z[j, i] v[i]; products and sums in
/// float64 by explicit fma on fixed lanes, the mirror images gathered by up to 32 fixed groups
/// of block rows and added in group order (the result does not depend on the thread count or
/// the ISA). Memory: n doubles per group.
void stored_matvec(const float* Z, int64_t n, const double* v, double* out, int n_threads);

/// Vecchia (sparse inverse Cholesky) factor of Z_t = exp(-t ||x_i - x_j||) for the points X
/// (n x d, row-major, float64) in their conditioning order: for each point p and its
/// conditioning set c = the entries of nb[p] (n x k, row-major) that are >= 0, the regression
/// b_p = (Z_cc + ridge I)^-1 Z_cp by Cholesky and d_p = 1 - Z_pc b_p. B[p, j] = b_p for the
/// entries j of c in nb's order, 0 where nb[p, j] < 0; dvar[p] = d_p. A neighbour whose
/// Cholesky pivot falls to ridge / 2 or below (a near-duplicate of the earlier ones, to
/// working accuracy) is left out of c (its b entry 0). Distances summed over coordinates in
/// order, exp by std::exp. OpenMP over points with `n_threads` threads (0: default); each
/// point's values are computed by one thread alone (the result does not depend on the thread
/// count). Throws std::invalid_argument for n < 1, d < 1, k < 1, a scale that is not positive
/// and finite, ridge < 0 or an entry of nb outside [-1, n).
void vecchia_factor(const double* X, int64_t n, int64_t d, const int64_t* nb, int64_t k, double t,
                    double ridge, double* B, double* dvar, int n_threads);

}  // namespace geoml
