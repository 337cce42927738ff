#include "lobpcg.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"

namespace geoml {

namespace {
#define GEOML_KERNEL_INC "spectral/lobpcg_kernel.inc"
#define GEOML_KERNEL_GENERIC_VBYTES 32
#include "common/simd_instantiate.inc"

using GramFn = void (*)(int64_t, const double*, int64_t, const double*, int64_t, double*);
using CombFn = void (*)(int, const double* const*, int64_t, const double*, int64_t, double* const*);

GramFn gram_kernel() {
  return GEOML_SIMD_PICK(simd_isa(), gram_chunk);
}

CombFn comb_kernel() {
  return GEOML_SIMD_PICK(simd_isa(), comb_rows);
}

int64_t total_cols(const std::vector<RowBlock>& B) {
  int64_t p = 0;
  for (const RowBlock& b : B) p += b.cols;
  return p;
}

/// Threads for a pass of `work` flops: ~2e6 flops (~0.1 ms) per thread at least; below that
/// a parallel region costs more than it saves (much more when the other core is busy).
int threads_for(int n_threads, int64_t work) {
  return static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, work / 2000000)));
}

/// Copies rows [r0, r0 + rows) of the blocks side by side into pk (row length ld; the
/// padding columns beyond the blocks are left as they are).
void pack(const std::vector<RowBlock>& B, int64_t r0, int64_t rows, double* pk, int64_t ld) {
  int64_t off = 0;
  for (const RowBlock& b : B) {
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(pk + r * ld + off, b.ptr + (r0 + r) * b.ld, b.cols * sizeof(double));
    off += b.cols;
  }
}

constexpr int64_t kChunk = 64;  // rows per packed chunk (both blocks stay in L2)

/// Groups of consecutive chunks for a sum over `nchunks` chunks whose bits must not depend
/// on the thread count: at most 32, of at least 4 chunks each (the partial sums cost at most
/// a quarter chunk per chunk).
int64_t fixed_groups(int64_t nchunks) {
  return std::max<int64_t>(1, std::min<int64_t>(32, nchunks / 4));
}
}  // namespace

void block_gram(int64_t n, const std::vector<RowBlock>& U, const std::vector<RowBlock>& V,
                double* G, int n_threads) {
  const int64_t pu = total_cols(U), pv = total_cols(V);
  if (pu == 0 || pv == 0) return;
  const int64_t pu4 = (pu + 3) / 4 * 4, pv8 = (pv + 7) / 8 * 8;
  const GramFn fn = gram_kernel();
  // Chunks in a fixed number of groups (set by n alone, not by the thread count): groups
  // handed out dynamically (a thread that loses its core on a shared machine does not hold
  // the others up), each adding its chunks in order to its own partial Gram; the partials are
  // added in group order, the same bits for any n_jobs.
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const int64_t ng = fixed_groups(nchunks);
  const int nt = static_cast<int>(std::min<int64_t>(threads_for(n_threads, n * pu * pv), ng));
  std::vector<double> part(static_cast<std::size_t>(ng) * pu4 * pv8, 0.0);
  OmpErrors errors;  // the per-thread packed chunks (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> upk, vpk;
    const bool ok = errors.run([&] {
      upk.assign(kChunk * pu4, 0.0);
      vpk.assign(kChunk * pv8, 0.0);
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < ng; ++g) {
      if (!ok) continue;
      double* gt = part.data() + g * pu4 * pv8;
      for (int64_t c = nchunks * g / ng; c < nchunks * (g + 1) / ng; ++c) {
        const int64_t r = c * kChunk, rows = std::min(kChunk, n - r);
        pack(U, r, rows, upk.data(), pu4);
        pack(V, r, rows, vpk.data(), pv8);
        fn(rows, upk.data(), pu4, vpk.data(), pv8, gt);
      }
    }
  }
  errors.rethrow();
  for (int64_t i = 0; i < pu; ++i)
    for (int64_t j = 0; j < pv; ++j) {
      double s = 0;
      for (int64_t g = 0; g < ng; ++g) s += part[(g * pu4 + i) * pv8 + j];
      G[i * pv + j] = s;
    }
}

void block_lincomb(int64_t n, const std::vector<RowBlock>& B, const double* C, int64_t q,
                   double beta, const RowBlock* D, double* Y, int64_t ldy, int n_threads) {
  const int64_t p = total_cols(B);
  if (q == 0) return;
  const int64_t q4 = (q + 3) / 4 * 4;
  std::vector<double> cpk(std::max<int64_t>(p, 1) * q4, 0.0);  // C with rows padded to q4
  for (int64_t k = 0; k < p; ++k) std::memcpy(&cpk[k * q4], C + k * q, q * sizeof(double));
  const int nt = threads_for(n_threads, n * (p + 1) * q);
  const CombFn fn = comb_kernel();
  const int64_t pairs = (n + 1) / 2;  // rows go by pairs (see comb_rows)
  OmpErrors errors;                   // the per-thread row pairs (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> brow, out;
    const bool ok = errors.run([&] {
      brow.resize(2 * std::max<int64_t>(p, 1));
      out.resize(2 * q4);
    });
    const double* bp[2] = {brow.data(), brow.data() + std::max<int64_t>(p, 1)};
    double* op[2] = {out.data(), out.data() + q4};
#pragma omp for schedule(dynamic, 512)
    for (int64_t i = 0; i < pairs; ++i) {
      if (!ok) continue;
      const int64_t r0 = 2 * i;
      const int rows = static_cast<int>(std::min<int64_t>(2, n - r0));
      for (int j = 0; j < rows; ++j) {
        double* b = brow.data() + j * std::max<int64_t>(p, 1);
        for (const RowBlock& blk : B) {
          const double* src = blk.ptr + (r0 + j) * blk.ld;
          for (int64_t c = 0; c < blk.cols; ++c) b[c] = src[c];
          b += blk.cols;
        }
      }
      fn(rows, bp, p, cpk.data(), q4, op);
      for (int j = 0; j < rows; ++j) {
        double* o = op[j];
        double* y = Y + (r0 + j) * ldy;
        if (beta != 0.0)
          for (int64_t c = 0; c < q; ++c) o[c] += beta * y[c];
        if (D != nullptr) {
          const double* d = D->ptr + (r0 + j) * D->ld;
          for (int64_t c = 0; c < q; ++c) o[c] += d[c];
        }
        for (int64_t c = 0; c < q; ++c) y[c] = o[c];
      }
    }
  }
  errors.rethrow();
}

void block_residual(int64_t n, int64_t m, const double* X, int64_t ld_x, const double* AX,
                    int64_t ld_ax, const double* lam, double* R, int64_t ld_r, double* norms,
                    int n_threads) {
  // squared norms per chunk group fixed by n (m sums each: up to one group per chunk), added
  // in group order as in block_gram
  const int64_t chunk = 1024, nchunks = (n + chunk - 1) / chunk;
  const int64_t ng = std::max<int64_t>(1, std::min<int64_t>(32, nchunks));
  const int nt = static_cast<int>(std::min<int64_t>(threads_for(n_threads, 3 * n * m), ng));
  std::vector<double> part(static_cast<std::size_t>(ng) * m, 0.0);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t g = 0; g < ng; ++g) {
    double* sq = part.data() + g * m;
    for (int64_t c = nchunks * g / ng; c < nchunks * (g + 1) / ng; ++c) {
      for (int64_t r = c * chunk; r < std::min(n, (c + 1) * chunk); ++r) {
        const double *x = X + r * ld_x, *ax = AX + r * ld_ax;
        double* rr = R + r * ld_r;
#pragma omp simd
        for (int64_t j = 0; j < m; ++j) {
          const double v = ax[j] - x[j] * lam[j];
          rr[j] = v;
          sq[j] += v * v;
        }
      }
    }
  }
  for (int64_t j = 0; j < m; ++j) {
    double s = 0;
    for (int64_t g = 0; g < ng; ++g) s += part[g * m + j];
    norms[j] = std::sqrt(s);
  }
}

}  // namespace geoml
