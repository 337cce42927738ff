// Private to cpp/ot/emd*.cpp: what the network simplex (emd.cpp) and its fixed-size variant
// for tiny problems (emd_tiny.cpp) share.
#pragma once
#include <cstdint>

#include "ot/ot.hpp"

namespace geoml {
namespace ot_detail {

constexpr double kRcRel = 1e-13;  // relative reduced-cost tolerance for entering arcs

/// Cost of the artificial arcs of the artificial-root start, for N nodes and largest finite
/// |C_ij| = cmax: above every real path (at most N cmax), and of the costs' own scale. The
/// potentials carry it, and the entering tolerance is relative to them: an absolute floor
/// (the former (cmax + 1) N) made that tolerance absolute for costs far below 1, so plans
/// of costs of 1e-6 or less stopped short of optimal. Unchanged from cmax >= 1 on.
inline double artificial_cost(double cmax, int N) {
  return (cmax >= 1.0 ? cmax + 1.0 : cmax > 0.0 ? 2.0 * cmax : 1.0) * static_cast<double>(N);
}

/// Problems with at most this many rows and columns (after dropping zero-mass bins) go to
/// emd_tiny.
constexpr int kTinyDim = 32;

/// emd_solve for mm, nn <= kTinyDim (ws.rows/cols/mm/nn already set): solves on a
/// TinySolver, then stores the final tree in ws (pred as compressed arc ids) for
/// emd_plan_*/emd_duals. Returns the cost; *status as emd_solve, or EMD_NONFINITE.
double emd_tiny(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                int64_t max_iter, double mass, int* status);

/// The same solver for at most kTinyWide rows and columns (two-word subtree sets, float64
/// pricing only); emd_solve takes it for problems above kTinyDim when `ws.cost_only` is set.
constexpr int kTinyWide = 64;
double emd_tiny_wide(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                     int64_t max_iter, double mass, int* status);

/// The cost-only solver for at most kTinyWide rows and kTinyDim columns, float32 pre-pricing
/// as emd_tiny; a problem with more columns than kTinyDim (and at most kTinyDim rows) is solved
/// transposed (same cost). emd_solve takes it, with `ws.cost_only`, for problems of 33 to 64
/// bins on one side and at most 32 on the other (the edges of kNN hubs in Ollivier-Ricci
/// curvature): the float64 pricing of emd_tiny_wide scans twice the bytes.
double emd_tiny_tall(int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                     int64_t max_iter, double mass, int* status);

}  // namespace ot_detail
}  // namespace geoml
