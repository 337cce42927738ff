// Linear assignment by Jonker-Volgenant (see ot.hpp): column reduction, reduction transfer,
// augmenting row reduction, then shortest augmenting paths.
//
// Jonker & Volgenant, "A shortest augmenting path algorithm for dense and sparse linear
// assignment problems", Computing 38 (1987). Duals: v (columns); the row dual of an assigned
// row i is implicit, u_i = C[i][x_i] - v[x_i], and every phase keeps it equal to
// min_j (C[i][j] - v[j]) (decreasing a v_j only raises other rows' reduced costs), so the
// Dijkstra on reduced costs C[i][j] - v[j] - u_i >= 0 finds shortest augmenting paths.
// Rectangular problems (m < n after transposing) skip the column reduction and start from
// v = 0: v only decreases on assigned columns, so v_j <= 0 with equality on free columns,
// the optimality conditions of the rectangular problem (the approach of SciPy's solver).
// +inf entries (forbidden pairs) stay +inf in every reduced cost and v stays finite; a row
// or column, or a Dijkstra frontier, with only +inf left means no complete assignment.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/common.hpp"
#include "common/omp_errors.hpp"
#include "common/simd.hpp"
#include "ot/ot.hpp"
#if GEOML_SIMD_X86
#include <immintrin.h>
#endif

namespace geoml {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// immediate re-insertions per augmenting-row-reduction pass, per column
constexpr int64_t kArrBudget = 2;

#define GEOML_KERNEL_INC "ot/assignment_kernel.inc"
#include "common/simd_instantiate.inc"

// Solves m <= n; on success w.x[i] is the column of row i.
bool lap_core(int m, int n, const double* C, AssignmentWork& w) {
  const SimdIsa isa = simd_isa();
  auto& x = w.x;
  auto& y = w.y;
  auto& v = w.v;
  auto& d = w.d;
  auto& pred = w.pred;
  auto& fr = w.free_rows;
  x.assign(m, -1);
  y.assign(n, -1);
  v.assign(n, 0.0);
  d.resize(n);
  pred.resize(n);
  fr.resize(m);
  int numfree = 0;
  if (m == n) {
    // column reduction, streaming the rows: v_j = min_i C_ij, argmin in pred
    std::fill(v.begin(), v.end(), kInf);
    for (int i = 0; i < m; ++i)
      GEOML_SIMD_CALL(isa, col_min_update, n, C + static_cast<int64_t>(i) * n, i, v.data(),
                      pred.data());
    for (int j = 0; j < n; ++j)
      if (!(v[j] < kInf)) return false;  // a column with only forbidden pairs
    auto& matches = w.matches;
    matches.assign(m, 0);
    for (int j = n - 1; j >= 0; --j) {
      const int i = static_cast<int>(pred[j]);
      if (matches[i]++ == 0) {
        x[i] = j;
        y[j] = i;
      }
    }
    // reduction transfer: a row matched once moves its second-best slack onto its column
    for (int i = 0; i < m; ++i) {
      if (matches[i] == 0) {
        fr[numfree++] = i;
      } else if (matches[i] == 1) {
        const int j1 = x[i];
        const double mu =
            GEOML_SIMD_CALL(isa, row_min_except, n, C + static_cast<int64_t>(i) * n, v.data(), j1);
        if (mu < kInf) v[j1] -= mu;
      }
    }
  } else {
    for (int i = 0; i < m; ++i) fr[i] = i;
    numfree = m;
  }

  // Augmenting row reduction, two passes. A displaced row is re-processed at once while the
  // budget lasts (each time its column's v strictly decreases), then left to the next pass
  // or to the shortest-path phase: long chains cost more than the paths that finish them.
  for (int pass = 0; pass < 2 && numfree > 0; ++pass) {
    int k = 0;
    const int prv = numfree;
    numfree = 0;
    int64_t budget = kArrBudget * static_cast<int64_t>(n);
    while (k < prv) {
      const int i = fr[k++];
      double u1, u2;
      int j1, j2;
      GEOML_SIMD_CALL(isa, row_two_min, n, C + static_cast<int64_t>(i) * n, v.data(), &u1, &j1, &u2,
                      &j2);
      if (!(u1 < kInf)) return false;  // a row with only forbidden pairs
      int i0 = y[j1];
      const bool strict = u1 < u2;
      const bool lower = strict && u2 < kInf;
      if (lower) {
        v[j1] -= u2 - u1;
      } else if (!strict && i0 >= 0) {
        j1 = j2;
        i0 = y[j2];
      }
      if (i0 >= 0) x[i0] = -1;
      x[i] = j1;
      y[j1] = i;
      if (i0 >= 0) {
        if (lower && budget-- > 0)
          fr[--k] = i0;
        else
          fr[numfree++] = i0;
      }
    }
  }

  // Shortest augmenting paths (Dijkstra) for the rows still free. d[j]: tentative distance;
  // a scanned column gets d = NaN (no longer relaxed nor a minimum candidate), its final
  // distance kept in `dist` for the dual update. Each step is one vectorised pass over the
  // scanned row, v and d that relaxes and finds the next minimum.
  auto& scanned = w.collist;
  auto& dist = w.t2;
  scanned.resize(n);
  dist.resize(n);
  auto& freem = w.freem;
  freem.resize(n);
  for (int j = 0; j < n; ++j) freem[j] = y[j] < 0 ? -1 : 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int f = 0; f < numfree; ++f) {
    const int f_row = fr[f];
    std::fill(d.begin(), d.end(), kInf);
    double mn;
    int64_t j = GEOML_SIMD_CALL(isa, relax_argmin, n, C + static_cast<int64_t>(f_row) * n, v.data(),
                                0.0, f_row, d.data(), pred.data(), freem.data(), &mn);
    int ns = 0;
    while (true) {
      if (j < 0) return false;  // every remaining distance is +inf: no augmenting path
      if (y[j] < 0) break;      // a free column: shortest augmenting path found
      const int i = y[j];
      scanned[ns] = static_cast<int>(j);
      dist[ns++] = mn;
      d[j] = nan;
      const double* row = C + static_cast<int64_t>(i) * n;
      const double u1 = row[j] - v[j] - mn;
      j = GEOML_SIMD_CALL(isa, relax_argmin, n, row, v.data(), u1, i, d.data(), pred.data(),
                          freem.data(), &mn);
    }
    for (int k = 0; k < ns; ++k) v[scanned[k]] += dist[k] - mn;
    // augment along the path
    int end = static_cast<int>(j), i;
    freem[end] = 0;
    do {
      i = static_cast<int>(pred[end]);
      y[end] = i;
      std::swap(end, x[i]);
    } while (i != f_row);
  }
  return true;
}

}  // namespace

int linear_assignment(int m, int n, const double* C, int64_t* row_ind, int64_t* col_ind,
                      double* cost, AssignmentWork& w) {
  *cost = 0.0;
  if (m == 0 || n == 0) return ASSIGN_OPTIMAL;
  if (m <= n) {
    if (!lap_core(m, n, C, w)) return ASSIGN_INFEASIBLE;
    double s = 0.0;
    for (int i = 0; i < m; ++i) {
      row_ind[i] = i;
      col_ind[i] = w.x[i];
      s += C[static_cast<int64_t>(i) * n + w.x[i]];
    }
    *cost = s;
    return ASSIGN_OPTIMAL;
  }
  // more rows than columns: solve the transpose (n x m)
  w.t.resize(static_cast<size_t>(m) * n);
  double* t = w.t.data();
  constexpr int kb = 32;
  for (int i0 = 0; i0 < m; i0 += kb)
    for (int j0 = 0; j0 < n; j0 += kb)
      for (int i = i0; i < std::min(m, i0 + kb); ++i)
        for (int j = j0; j < std::min(n, j0 + kb); ++j)
          t[static_cast<int64_t>(j) * m + i] = C[static_cast<int64_t>(i) * n + j];
  if (!lap_core(n, m, t, w)) return ASSIGN_INFEASIBLE;
  // w.x[j] = row of column j; list the pairs by increasing row
  auto& byrow = w.collist;
  byrow.assign(m, -1);
  for (int j = 0; j < n; ++j) byrow[w.x[j]] = j;
  int k = 0;
  double s = 0.0;
  for (int i = 0; i < m; ++i)
    if (byrow[i] >= 0) {
      row_ind[k] = i;
      col_ind[k] = byrow[i];
      s += C[static_cast<int64_t>(i) * n + byrow[i]];
      ++k;
    }
  *cost = s;
  return ASSIGN_OPTIMAL;
}

void linear_assignment_batched(int64_t B, const double* C, const int64_t* c_off, const int64_t* ms,
                               const int64_t* ns, const int64_t* k_off, int n_jobs,
                               int64_t* row_ind, int64_t* col_ind, double* cost, int* status) {
  const int nt =
      static_cast<int>(std::min<int64_t>(resolve_threads(n_jobs), std::max<int64_t>(B, 1)));
  OmpErrors errors;  // the workspace grows per problem (std::bad_alloc)
#pragma omp parallel num_threads(nt)
  {
    AssignmentWork w;
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < B; ++k)
      errors.run([&] {
        status[k] =
            linear_assignment(static_cast<int>(ms[k]), static_cast<int>(ns[k]), C + c_off[k],
                              row_ind + k_off[k], col_ind + k_off[k], cost + k, w);
      });
  }
  errors.rethrow();
}

}  // namespace geoml
