// Matrix-free magnitude products (see magnitude.hpp).
#include "measures/magnitude.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"

namespace geoml {

namespace {

#define GEOML_KERNEL_INC "measures/magnitude_kernel.inc"
#define GEOML_KERNEL_AVX512 1
#include "common/simd_instantiate.inc"

constexpr int64_t kRows = 16;   // rows per block (one thread's unit of work)
constexpr int64_t kCols = 512;  // columns per tile: the tile of XT and V stays in L1/L2
// rows per block row of magnitude_matrix's packed storage (and of its box pruning)
constexpr int64_t kFill = 64;

/// X (n, d) as float64 columns: XT[c * n + i] = X[i, c].
template <typename T>
std::vector<double> transposed(const T* X, int64_t n, int64_t d) {
  std::vector<double> xt(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) xt[c * n + i] = static_cast<double>(X[i * d + c]);
  return xt;
}

/// Bounding boxes (lo, hi: d values each) of the consecutive groups of `size` points.
std::vector<double> boxes(const double* XT, int64_t n, int64_t d, int64_t size) {
  const int64_t nb = (n + size - 1) / size;
  std::vector<double> out(static_cast<size_t>(nb * 2 * d));
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t a = b * size, e = std::min(n, a + size);
    for (int64_t c = 0; c < d; ++c) {
      const double* col = XT + c * n;
      double lo = col[a], hi = col[a];
      for (int64_t i = a + 1; i < e; ++i) {
        lo = std::min(lo, col[i]);
        hi = std::max(hi, col[i]);
      }
      out[(b * 2) * d + c] = lo;
      out[(b * 2 + 1) * d + c] = hi;
    }
  }
  return out;
}

/// Smallest distance between two boxes (lo, hi: d values each).
double box_gap(const double* a, const double* b, int64_t d) {
  double s = 0;
  for (int64_t c = 0; c < d; ++c) {
    const double g = std::max({0.0, b[c] - a[d + c], a[c] - b[d + c]});
    s += g * g;
  }
  return std::sqrt(s);
}

}  // namespace

template <typename T>
void magnitude_matvec(const T* X, int64_t n, int64_t d, const double* ts, int64_t m,
                      const double* V, double* out, double cutoff, int n_threads) {
  if (n < 1 || d < 1 || m < 1)
    throw std::invalid_argument("magnitude_matvec: need n >= 1, d >= 1 and m >= 1");
  if (!(cutoff > 0))
    throw std::invalid_argument("magnitude_matvec: cutoff must be positive (inf: no pruning)");
  for (int64_t s = 0; s < m; ++s)
    if (!(ts[s] > 0 && std::isfinite(ts[s])))
      throw std::invalid_argument("magnitude_matvec: scales must be positive and finite");
  const std::vector<double> xt = transposed(X, n, d);
  const double* XT = xt.data();
  const std::vector<double> rbox = boxes(XT, n, d, kRows), cbox = boxes(XT, n, d, kCols);
  const SimdIsa isa = simd_isa();
  const int64_t n_blocks = (n + kRows - 1) / kRows;
  // ~1e6 pair evaluations per thread at least
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n * n / 1000000)));
  OmpErrors errors;  // the per-thread tiles (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> dist, acc;
    std::vector<char> keep;
    const bool ok = errors.run([&] {
      dist.resize(static_cast<size_t>(kCols));
      acc.resize(static_cast<size_t>(kRows * m));
      keep.resize(static_cast<size_t>(m));
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
      if (!ok) continue;
      const int64_t i0 = b * kRows, i1 = std::min(n, i0 + kRows);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j0 = 0; j0 < n; j0 += kCols) {
        // a tile pair whose every term is below exp(-cutoff) for a scale skips that scale
        const double gap = box_gap(&rbox[b * 2 * d], &cbox[(j0 / kCols) * 2 * d], d);
        bool any = false;
        for (int64_t s = 0; s < m; ++s) {
          keep[s] = static_cast<char>(!(ts[s] * gap > cutoff));
          any = any || keep[s];
        }
        if (!any) continue;
        GEOML_SIMD_CALL(isa, magnitude_tile, i0, i1, j0, std::min(n, j0 + kCols), n, d, XT, ts, m,
                        V, keep.data(), dist.data(), acc.data());
      }
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t s = 0; s < m; ++s) out[s * n + i] = acc[(i - i0) * m + s];
    }
  }
  errors.rethrow();
}

namespace {

/// Where block row b (of kFill rows) of the packed upper block triangle starts: the rows of
/// the block rows before it, each from its block's first column on.
int64_t packed_offset(int64_t n, int64_t b) {
  const int64_t full = std::min(b, n / kFill);  // full block rows before b
  int64_t off = kFill * (full * n - kFill * full * (full - 1) / 2);
  if (b > full) off += (n - full * kFill) * (n - full * kFill);  // the last, partial one
  return off;
}

}  // namespace

int64_t magnitude_packed_size(int64_t n) {
  return packed_offset(n, (n + kFill - 1) / kFill);
}

template <typename T>
void magnitude_matrix(const T* X, int64_t n, int64_t d, double t, float* Z, double cutoff,
                      int n_threads) {
  if (n < 1 || d < 1) throw std::invalid_argument("magnitude_matrix: need n >= 1 and d >= 1");
  if (!(cutoff > 0))
    throw std::invalid_argument("magnitude_matrix: cutoff must be positive (inf: no pruning)");
  if (!(t > 0 && std::isfinite(t)))
    throw std::invalid_argument("magnitude_matrix: the scale must be positive and finite");
  const std::vector<double> xt = transposed(X, n, d);
  const double* XT = xt.data();
  const std::vector<double> box = boxes(XT, n, d, kFill);
  const SimdIsa isa = simd_isa();
  const int64_t n_blocks = (n + kFill - 1) / kFill;
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n * n / 2000000)));
  // block row b: its rows from column i0 on, written straight into the packed storage
  OmpErrors errors;  // the per-thread distance row (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    std::vector<double> dist;
    const bool ok = errors.run([&] { dist.resize(static_cast<size_t>(kCols)); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
      if (!ok) continue;
      const int64_t i0 = b * kFill, i1 = std::min(n, i0 + kFill), R = i1 - i0, ld = n - i0;
      float* Zb = Z + packed_offset(n, b);
      for (int64_t j0 = i0; j0 < n; j0 += kCols) {
        const int64_t j1 = std::min(n, j0 + kCols);
        // column blocks of kFill points inside the tile: far ones are zeros (below exp(-cutoff))
        bool any_far = false;
        for (int64_t c0 = j0; c0 < j1; c0 += kFill)
          any_far = any_far || t * box_gap(&box[b * 2 * d], &box[(c0 / kFill) * 2 * d], d) > cutoff;
        if (!any_far) {
          GEOML_SIMD_CALL(isa, magnitude_fill_tile, i0, i1, j0, j1, n, d, XT, t, dist.data(),
                          Zb + (j0 - i0), ld);
          continue;
        }
        for (int64_t c0 = j0; c0 < j1; c0 += kFill) {
          const int64_t c1 = std::min(j1, c0 + kFill);
          if (t * box_gap(&box[b * 2 * d], &box[(c0 / kFill) * 2 * d], d) > cutoff) {
            for (int64_t r = 0; r < R; ++r)
              std::fill(Zb + r * ld + (c0 - i0), Zb + r * ld + (c1 - i0), 0.0f);
          } else {
            GEOML_SIMD_CALL(isa, magnitude_fill_tile, i0, i1, c0, c1, n, d, XT, t, dist.data(),
                            Zb + (c0 - i0), ld);
          }
        }
      }
    }
  }
  errors.rethrow();
}

void stored_matvec(const float* Z, int64_t n, const double* v, double* out, int n_threads) {
  if (n < 1) throw std::invalid_argument("stored_matvec: need n >= 1");
  const int64_t n_blocks = (n + kFill - 1) / kFill;
  const SimdIsa isa = simd_isa();
  // groups of consecutive block rows with about equal shares of the stored entries, each with
  // its own accumulator of the mirror image: a function of n alone (the sums do not depend on
  // the thread count)
  const int64_t n_groups = std::min<int64_t>(n_blocks, 32);
  const int64_t total = packed_offset(n, n_blocks);
  std::vector<int64_t> first(static_cast<size_t>(n_groups + 1));
  for (int64_t g = 0, b = 0; g <= n_groups; ++g) {
    const int64_t goal = g == n_groups ? total : total / n_groups * g;
    while (b < n_blocks && packed_offset(n, b) < goal) ++b;
    first[g] = g == n_groups ? n_blocks : b;
  }
  std::vector<double> acc(static_cast<size_t>(n_groups * n), 0.0);
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n * n / 2000000)));
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < n_groups; ++g)
      for (int64_t b = first[g]; b < first[g + 1]; ++b) {
        const int64_t i0 = b * kFill, i1 = std::min(n, i0 + kFill);
        GEOML_SIMD_CALL(isa, f32_symv_rows, Z + packed_offset(n, b), n - i0, i0, i1, n, v, out + i0,
                        &acc[g * n]);
      }
    // out[i] += the mirror images of the groups above row i, in group order
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b)
      for (int64_t g = 0; g < n_groups; ++g) {
        const int64_t i0 = b * kFill, i1 = std::min(n, i0 + kFill);
        if (first[g] >= b) break;  // groups from block row b on add nothing to its rows
        const double* a = &acc[g * n];
        for (int64_t i = i0; i < i1; ++i) out[i] += a[i];
      }
  }
}

void vecchia_factor(const double* X, int64_t n, int64_t d, const int64_t* nb, int64_t k, double t,
                    double ridge, double* B, double* dvar, int n_threads) {
  if (n < 1 || d < 1 || k < 1)
    throw std::invalid_argument("vecchia_factor: need n >= 1, d >= 1 and k >= 1");
  if (!(t > 0 && std::isfinite(t)))
    throw std::invalid_argument("vecchia_factor: the scale must be positive and finite");
  if (!(ridge >= 0)) throw std::invalid_argument("vecchia_factor: ridge must be >= 0");
  for (int64_t i = 0; i < n * k; ++i)
    if (nb[i] < -1 || nb[i] >= n)
      throw std::invalid_argument("vecchia_factor: nb entries must be in [-1, n)");
  const int nt = static_cast<int>(
      std::min<int64_t>(resolve_threads(n_threads), std::max<int64_t>(1, n / 256)));
  // plain products and sums: this file is compiled for the baseline ISA (on x86-64 without
  // FMA, so nothing is contracted; std::fma would be a library call)
  OmpErrors errors;  // the per-thread factors (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    // per point: U (m x m, row-major upper triangle, stride k) = Z_cc + ridge I, overwritten by
    // its right-looking Cholesky factor (Z_cc + ridge I = U^T U; contiguous rank-1 updates);
    // GT (d x k): the set's coordinates by coordinate; z: Z_cp, then y = U^-T Z_cp; pos: the
    // places in nb's row of the set; kept: whether each pivot was kept
    std::vector<double> U, GT, z, y, b;
    std::vector<int64_t> pos;
    std::vector<char> kept;
    const bool ok = errors.run([&] {
      U.resize(static_cast<size_t>(k * k));
      GT.resize(static_cast<size_t>(d * k));
      z.resize(static_cast<size_t>(k));
      y.resize(static_cast<size_t>(k));
      b.resize(static_cast<size_t>(k));
      pos.resize(static_cast<size_t>(k));
      kept.resize(static_cast<size_t>(k));
    });
#pragma omp for schedule(dynamic, 64)
    for (int64_t p = 0; p < n; ++p) {
      if (!ok) continue;
      const int64_t* row = nb + p * k;
      double* bp = B + p * k;
      const double* xp = X + p * d;
      int64_t m = 0;
      for (int64_t j = 0; j < k; ++j) {
        bp[j] = 0.0;
        if (row[j] < 0) continue;
        for (int64_t c = 0; c < d; ++c) GT[c * k + m] = X[row[j] * d + c];
        pos[m++] = j;
      }
      // kernel entries: squared distances summed over the coordinates in order, then exp
      for (int64_t a = 0; a < m; ++a) {
        double* ua = &U[a * k];
        double za = 0;
        for (int64_t q = a; q < m; ++q) ua[q] = 0.0;
        for (int64_t c = 0; c < d; ++c) {
          const double* g = &GT[c * k];
          const double ga = g[a];
          for (int64_t q = a + 1; q < m; ++q) {
            const double e = ga - g[q];
            ua[q] += e * e;
          }
          const double e = ga - xp[c];
          za += e * e;
        }
        for (int64_t q = a + 1; q < m; ++q) ua[q] = std::exp(-t * std::sqrt(ua[q]));
        ua[a] = 1.0 + ridge;
        z[a] = std::exp(-t * std::sqrt(za));
      }
      // right-looking Cholesky; a pivot at ridge / 2 or below leaves its neighbour out
      for (int64_t l = 0; l < m; ++l) {
        double* ul = &U[l * k];
        kept[l] = ul[l] > 0.5 * ridge;
        if (!kept[l]) continue;
        const double sq = std::sqrt(ul[l]);
        ul[l] = sq;
        for (int64_t q = l + 1; q < m; ++q) ul[q] /= sq;
        for (int64_t i = l + 1; i < m; ++i) {
          double* ui = &U[i * k];
          const double u = ul[i];
          for (int64_t q = i; q < m; ++q) ui[q] -= u * ul[q];
        }
      }
      // y = U^-T z (by columns), b = U^-1 y, d = 1 - z . b = 1 - |y|^2
      double yy = 0;
      for (int64_t l = 0; l < m; ++l) {
        if (!kept[l]) {
          y[l] = 0.0;
          continue;
        }
        const double* ul = &U[l * k];
        y[l] = z[l] / ul[l];
        yy += y[l] * y[l];
        for (int64_t q = l + 1; q < m; ++q) z[q] -= ul[q] * y[l];
      }
      for (int64_t l = m - 1; l >= 0; --l) {
        if (!kept[l]) {
          b[l] = 0.0;
          continue;
        }
        const double* ul = &U[l * k];
        double s = y[l];
        for (int64_t q = l + 1; q < m; ++q) s -= ul[q] * b[q];
        b[l] = s / ul[l];
      }
      for (int64_t l = 0; l < m; ++l) bp[pos[l]] = b[l];
      dvar[p] = 1.0 - yy;
    }
  }
  errors.rethrow();
}

template void magnitude_matrix<double>(const double*, int64_t, int64_t, double, float*, double,
                                       int);
template void magnitude_matrix<float>(const float*, int64_t, int64_t, double, float*, double, int);

template void magnitude_matvec<double>(const double*, int64_t, int64_t, const double*, int64_t,
                                       const double*, double*, double, int);
template void magnitude_matvec<float>(const float*, int64_t, int64_t, const double*, int64_t,
                                      const double*, double*, double, int);

}  // namespace geoml
