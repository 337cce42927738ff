#include "curvature.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common.hpp"
#include "ot.hpp"

namespace geoml {
namespace {

constexpr double kTiny = 1e-7;  // GraphRicciCurvature's EPSILON

/// Neighbourhood measures of every node, CSR-like: supp[ptr[x] .. ptr[x+1]) with the node
/// itself last. O(nnz log deg).
struct Measures {
  std::vector<int64_t> ptr, supp;
  std::vector<double> mass;
};

Measures build_measures(const CsrGraph& g, const OrcOptions& o) {
  Measures M;
  M.ptr.assign(static_cast<size_t>(g.n + 1), 0);
  for (int64_t x = 0; x < g.n; ++x) {
    int64_t deg = g.indptr[x + 1] - g.indptr[x];
    if (o.nbr_topk > 0) deg = std::min(deg, o.nbr_topk);
    M.ptr[x + 1] = M.ptr[x] + deg + 1;
  }
  M.supp.resize(static_cast<size_t>(M.ptr[g.n]));
  M.mass.resize(static_cast<size_t>(M.ptr[g.n]));
  const int nt = resolve_threads(o.n_threads);
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<double, int64_t>> wn;
#pragma omp for schedule(dynamic, 512)
    for (int64_t x = 0; x < g.n; ++x) {
      wn.clear();
      for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e)
        wn.push_back({std::pow(o.base, -std::pow(g.weights[e], o.exp_power)), g.indices[e]});
      const int64_t keep = M.ptr[x + 1] - M.ptr[x] - 1;
      if (keep < static_cast<int64_t>(wn.size())) {  // the heaviest (weight, node) pairs
        std::nth_element(wn.begin(), wn.begin() + keep, wn.end(),
                         [](const auto& p, const auto& q) { return p > q; });
        wn.resize(static_cast<size_t>(keep));
        std::sort(wn.begin(), wn.end(),
                  [](const auto& p, const auto& q) { return p.second < q.second; });
      }
      double sum = 0;
      for (const auto& p : wn) sum += p.first;
      int64_t* s = M.supp.data() + M.ptr[x];
      double* ms = M.mass.data() + M.ptr[x];
      const double k = static_cast<double>(wn.size());
      for (size_t i = 0; i < wn.size(); ++i) {
        s[i] = wn[i].second;
        ms[i] = sum > kTiny ? (1.0 - o.alpha) * wn[i].first / sum : (1.0 - o.alpha) / k;
      }
      s[wn.size()] = x;
      ms[wn.size()] = wn.empty() ? 1.0 : o.alpha;
    }
  }
  return M;
}

/// Entropic OT cost <P, C> of the log-domain Sinkhorn plan between a (m) and b (n), all
/// masses > 0. Stops when the L1 error of the row marginals is <= tol. Returns the cost and
/// sets `converged`.
double sinkhorn_cost(int m, int n, const double* a, const double* b, const double* C,
                     double eps, int64_t max_iter, double tol, std::vector<double>& buf,
                     bool& converged) {
  buf.assign(static_cast<size_t>(2 * (m + n)), 0.0);
  double* f = buf.data();
  double* g = f + m;
  double* la = g + n;
  double* lb = la + m;
  for (int i = 0; i < m; ++i) la[i] = std::log(a[i]);
  for (int j = 0; j < n; ++j) lb[j] = std::log(b[j]);
  converged = false;
  for (int64_t it = 0; it < max_iter; ++it) {
    for (int i = 0; i < m; ++i) {  // f_i = eps log a_i - eps LSE_j (g_j - C_ij) / eps
      double mx = -std::numeric_limits<double>::infinity();
      for (int j = 0; j < n; ++j) mx = std::max(mx, (g[j] - C[i * n + j]) / eps);
      double s = 0;
      for (int j = 0; j < n; ++j) s += std::exp((g[j] - C[i * n + j]) / eps - mx);
      f[i] = eps * (la[i] - mx - std::log(s));
    }
    for (int j = 0; j < n; ++j) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < m; ++i) mx = std::max(mx, (f[i] - C[i * n + j]) / eps);
      double s = 0;
      for (int i = 0; i < m; ++i) s += std::exp((f[i] - C[i * n + j]) / eps - mx);
      g[j] = eps * (lb[j] - mx - std::log(s));
    }
    // columns are exact after the g step; check the rows
    double err = 0;
    for (int i = 0; i < m; ++i) {
      double r = 0;
      for (int j = 0; j < n; ++j) r += std::exp((f[i] + g[j] - C[i * n + j]) / eps);
      err += std::fabs(r - a[i]);
    }
    if (err <= tol) {
      converged = true;
      break;
    }
  }
  double cost = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) cost += std::exp((f[i] + g[j] - C[i * n + j]) / eps) * C[i * n + j];
  return cost;
}

/// Per-thread scratch, sized for n nodes; `stamp` arrays avoid clearing between uses.
struct Scratch {
  std::vector<int64_t> col;        // node -> column in the target block
  std::vector<uint32_t> col_gen;
  std::vector<double> dist;        // Dijkstra distances
  std::vector<uint32_t> dist_gen;
  std::vector<uint8_t> hop;        // 2-hop marks
  std::vector<uint32_t> hop_gen;
  uint32_t cgen = 0, dgen = 0, hgen = 0;
  std::vector<int64_t> targets;
  std::vector<double> D, C, a, b, sk;
  std::vector<int> ai, bj;
  EmdWorkspace ws;
  explicit Scratch(int64_t n)
      : col(n), col_gen(n, 0), dist(n), dist_gen(n, 0), hop(n), hop_gen(n, 0) {}
};

/// d(u, t) for all targets t: 2-hop marking when every weight equals `unit`.
void hop_distances(const CsrGraph& g, int64_t u, double unit, Scratch& s, double* row) {
  const uint32_t gen = ++s.hgen;
  for (int64_t e = g.indptr[u]; e < g.indptr[u + 1]; ++e) {
    const int64_t a = g.indices[e];
    s.hop_gen[a] = gen;
    s.hop[a] = 1;
  }
  for (int64_t e = g.indptr[u]; e < g.indptr[u + 1]; ++e) {
    const int64_t a = g.indices[e];
    for (int64_t f = g.indptr[a]; f < g.indptr[a + 1]; ++f) {
      const int64_t b = g.indices[f];
      if (s.hop_gen[b] != gen) {
        s.hop_gen[b] = gen;
        s.hop[b] = 2;
      }
    }
  }
  for (size_t t = 0; t < s.targets.size(); ++t) {
    const int64_t v = s.targets[t];
    const int h = v == u ? 0 : (s.hop_gen[v] == gen ? s.hop[v] : 3);
    row[t] = unit * h;
  }
}

/// d(u, t) for all targets t by Dijkstra, stopped once every target is settled.
void dijkstra_distances(const CsrGraph& g, int64_t u, Scratch& s, double* row) {
  const uint32_t gen = ++s.dgen;
  using Item = std::pair<double, int64_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  s.dist[u] = 0;
  s.dist_gen[u] = gen;
  heap.push({0.0, u});
  // a target is settled when popped with its final distance; count them
  size_t remaining = s.targets.size();
  const uint32_t cgen = s.cgen;
  for (size_t t = 0; t < s.targets.size(); ++t) row[t] = -1.0;
  while (!heap.empty() && remaining > 0) {
    const auto [du, x] = heap.top();
    heap.pop();
    if (du > s.dist[x]) continue;
    if (s.col_gen[x] == cgen && row[s.col[x]] < 0) {
      row[s.col[x]] = du;
      --remaining;
    }
    for (int64_t e = g.indptr[x]; e < g.indptr[x + 1]; ++e) {
      const int64_t y = g.indices[e];
      const double nd = du + g.weights[e];
      if (s.dist_gen[y] != gen || nd < s.dist[y]) {
        s.dist_gen[y] = gen;
        s.dist[y] = nd;
        heap.push({nd, y});
      }
    }
  }
  if (remaining > 0)
    throw std::runtime_error("ollivier_ricci: a neighbourhood target was unreachable");
}

/// Jost & Liu (2014) lower bound of the non-lazy curvature from degrees and triangles.
double jost_liu(double dx, double dy, double tri) {
  const double lo = std::min(dx, dy), hi = std::max(dx, dy);
  auto pos = [](double v) { return v > 0 ? v : 0.0; };
  return -pos(1 - 1 / dx - 1 / dy - tri / lo) - pos(1 - 1 / dx - 1 / dy - tri / hi) + tri / hi;
}

int64_t common_neighbours(const CsrGraph& g, int64_t x, int64_t y) {
  const int64_t *p = g.indices + g.indptr[x], *pe = g.indices + g.indptr[x + 1];
  const int64_t *q = g.indices + g.indptr[y], *qe = g.indices + g.indptr[y + 1];
  int64_t c = 0;
  while (p < pe && q < qe) {
    if (*p < *q) ++p;
    else if (*q < *p) ++q;
    else { ++c; ++p; ++q; }
  }
  return c;
}

}  // namespace

void ollivier_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                    const OrcOptions& o, double* kappa, double* dist, int* status) {
  const int64_t nnz = g.indptr[g.n];
  double unit = nnz ? g.weights[0] : 1.0;
  bool equal = true;
  for (int64_t e = 0; e < nnz && equal; ++e) equal = g.weights[e] == unit;
  if (o.method == OrcMethod::LowerBound) {
    if (!equal)
      throw std::invalid_argument(
          "method='lower_bound' (Jost-Liu) needs an unweighted graph (all weights equal)");
    if (o.nbr_topk > 0)
      for (int64_t x = 0; x < g.n; ++x)
        if (g.indptr[x + 1] - g.indptr[x] > o.nbr_topk)
          throw std::invalid_argument("method='lower_bound' needs nbr_topk >= the max degree");
    const int nt = resolve_threads(o.n_threads);
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt)
    for (int64_t e = 0; e < m; ++e) {
      const int64_t x = eu[e], y = ev[e];
      const double dx = double(g.indptr[x + 1] - g.indptr[x]);
      const double dy = double(g.indptr[y + 1] - g.indptr[y]);
      dist[e] = unit;
      status[e] = 0;
      kappa[e] = unit < kTiny ? 0.0
                              : (1 - o.alpha) * jost_liu(dx, dy, double(common_neighbours(g, x, y)));
    }
    return;
  }

  const Measures M = build_measures(g, o);
  // Group the edges by first endpoint: order[] lists edge ids, grouped, via a counting sort.
  std::vector<int64_t> start(static_cast<size_t>(g.n + 1), 0), order(static_cast<size_t>(m));
  for (int64_t e = 0; e < m; ++e) {
    if (eu[e] < 0 || eu[e] >= g.n || ev[e] < 0 || ev[e] >= g.n)
      throw std::invalid_argument("ollivier_ricci: edge endpoint out of range");
    start[eu[e] + 1]++;
  }
  for (int64_t x = 0; x < g.n; ++x) start[x + 1] += start[x];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t e = 0; e < m; ++e) order[fill[eu[e]]++] = e;
  }

  const int nt = resolve_threads(o.n_threads);
  const int64_t sk_iter = o.max_iter > 0 ? o.max_iter : 1000;
#pragma omp parallel num_threads(nt)
  {
    Scratch s(g.n);
#pragma omp for schedule(dynamic, 16)
    for (int64_t x = 0; x < g.n; ++x) {
      if (start[x] == start[x + 1]) continue;
      // targets: union of the supports of every y with an edge (x, y)
      const uint32_t cgen = ++s.cgen;
      s.targets.clear();
      for (int64_t q = start[x]; q < start[x + 1]; ++q) {
        const int64_t y = ev[order[q]];
        for (int64_t t = M.ptr[y]; t < M.ptr[y + 1]; ++t) {
          const int64_t v = M.supp[t];
          if (s.col_gen[v] != cgen) {
            s.col_gen[v] = cgen;
            s.col[v] = static_cast<int64_t>(s.targets.size());
            s.targets.push_back(v);
          }
        }
      }
      const int64_t mx = M.ptr[x + 1] - M.ptr[x];
      const int64_t nT = static_cast<int64_t>(s.targets.size());
      s.D.resize(static_cast<size_t>(mx * nT));
      for (int64_t i = 0; i < mx; ++i) {
        const int64_t u = M.supp[M.ptr[x] + i];
        if (equal) hop_distances(g, u, unit, s, s.D.data() + i * nT);
        else dijkstra_distances(g, u, s, s.D.data() + i * nT);
      }
      const double* ax = M.mass.data() + M.ptr[x];
      for (int64_t q = start[x]; q < start[x + 1]; ++q) {
        const int64_t e = order[q], y = ev[e];
        const double dxy = s.D[(mx - 1) * nT + s.col[y]];  // x is last in its support
        dist[e] = dxy;
        status[e] = 0;
        if (x == y || dxy < kTiny) {
          kappa[e] = 0.0;
          continue;
        }
        // cost block with zero-mass bins dropped (alpha = 0 or 1)
        const int64_t my = M.ptr[y + 1] - M.ptr[y];
        const double* by = M.mass.data() + M.ptr[y];
        s.ai.clear();
        s.bj.clear();
        for (int64_t i = 0; i < mx; ++i) if (ax[i] > 0) s.ai.push_back(int(i));
        for (int64_t j = 0; j < my; ++j) if (by[j] > 0) s.bj.push_back(int(j));
        const int mm = int(s.ai.size()), nn = int(s.bj.size());
        s.C.resize(static_cast<size_t>(mm * nn));
        s.a.resize(mm);
        s.b.resize(nn);
        for (int i = 0; i < mm; ++i) s.a[i] = ax[s.ai[i]];
        for (int j = 0; j < nn; ++j) s.b[j] = by[s.bj[j]];
        for (int i = 0; i < mm; ++i)
          for (int j = 0; j < nn; ++j)
            s.C[i * nn + j] = s.D[s.ai[i] * nT + s.col[M.supp[M.ptr[y] + s.bj[j]]]];
        double w;
        if (o.method == OrcMethod::Exact) {
          int st = 0;
          w = emd_small(mm, nn, s.a.data(), s.b.data(), s.C.data(), s.ws, o.max_iter, &st);
          status[e] = st == EMD_OPTIMAL ? 0 : 1;
        } else {
          bool conv = false;
          w = sinkhorn_cost(mm, nn, s.a.data(), s.b.data(), s.C.data(), o.eps, sk_iter, 1e-9,
                            s.sk, conv);
          status[e] = conv ? 0 : 1;
        }
        kappa[e] = 1.0 - w / dxy;
      }
    }
  }
}

void forman_ricci(const CsrGraph& g, int64_t m, const int64_t* eu, const int64_t* ev,
                  bool augmented, int n_threads, double* out) {
  const int nt = resolve_threads(n_threads);
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt)
  for (int64_t e = 0; e < m; ++e) {
    const int64_t x = eu[e], y = ev[e];
    // weight of (x, y): binary search in x's sorted neighbours
    const int64_t* bx = g.indices + g.indptr[x];
    const int64_t* ex = g.indices + g.indptr[x + 1];
    const int64_t* it = std::lower_bound(bx, ex, y);
    const double we = g.weights[g.indptr[x] + (it - bx)];
    // merge the two sorted neighbour lists: triangles vs the rest
    double rest = 0;
    int64_t tri = 0;
    int64_t p = g.indptr[x], pe = g.indptr[x + 1], q = g.indptr[y], qe = g.indptr[y + 1];
    while (p < pe || q < qe) {
      const int64_t a = p < pe ? g.indices[p] : std::numeric_limits<int64_t>::max();
      const int64_t b = q < qe ? g.indices[q] : std::numeric_limits<int64_t>::max();
      if (a == b) {
        if (augmented) {
          ++tri;
        } else {
          rest += 1.0 / std::sqrt(we * g.weights[p]) + 1.0 / std::sqrt(we * g.weights[q]);
        }
        ++p;
        ++q;
      } else if (a < b) {
        if (a != y) rest += 1.0 / std::sqrt(we * g.weights[p]);
        ++p;
      } else {
        if (b != x) rest += 1.0 / std::sqrt(we * g.weights[q]);
        ++q;
      }
    }
    out[e] = augmented ? we * (double(tri) * we + 2.0 / we - std::fabs(rest))
                       : we * (2.0 / we - rest);
  }
}

}  // namespace geoml
