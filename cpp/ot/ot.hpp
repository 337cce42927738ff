// Optimal transport kernels: exact OT by a network simplex, log-domain Sinkhorn (balanced,
// unbalanced, on-the-fly point-cloud costs) and batched drivers over many small problems.
//
// All kernels work in float64 (the dense Sinkhorn kernel may be stored in float32, with
// float64 products and sums, see sinkhorn_dense). Histograms are non-negative; costs are dense
// row-major (m, n) matrices. Nothing here allocates per call in the hot path except the workspaces,
// which are reusable (one per thread).
#pragma once
#include <cstdint>
#include <vector>

namespace geoml {

// ====================================================================== exact OT (EMD)

/// Status codes returned by the exact solver.
enum EmdStatus : int {
  EMD_OPTIMAL = 0,     ///< an optimal basic solution was found
  EMD_MAX_ITER = 1,    ///< the pivot limit was reached: the plan is feasible, maybe not optimal
  EMD_INFEASIBLE = 2,  ///< mass left on artificial arcs: unequal masses, or the forbidden
                       ///< (+inf) arcs leave no feasible plan
  EMD_NONFINITE = 3,   ///< a cost between positive-mass bins is NaN or -inf (cost NaN)
};

/// Reusable memory for the network simplex (`emd_solve`, `emd_small`). Keep one per thread
/// and pass it to every call: after the first call of a given size no allocation happens.
/// After a solve it also holds the optimal spanning tree, read by `emd_plan_*`/`emd_duals`.
struct EmdWorkspace {
  // problem after dropping zero-mass rows/columns: mm x nn, cost copied into `cost`
  int m = 0, n = 0, mm = 0, nn = 0;
  std::vector<int> rows, cols;     // kept row/column indices (size mm, nn)
  std::vector<double> cost;        // mm*nn compressed cost (only when something was dropped)
  const double* C = nullptr;       // the cost actually used (cost.data() or the caller's)
  const double* C_full = nullptr;  // the caller's cost (m x n)
  std::vector<double> ab;          // compressed supplies then demands
  // spanning tree over mm + nn + 1 nodes (the last is the artificial root)
  std::vector<int> parent, pred, thread, rev_thread, depth;
  std::vector<unsigned char> up;       // 1: the tree arc of u points u -> parent[u]
  std::vector<double> pot, flow;       // node potentials; flow on the tree arc of each node
  std::vector<unsigned char> in_tree;  // mm*nn flags for real arcs
  std::vector<int> path, lasts;        // scratch for the tree update
  std::vector<int> saved;              // scratch for the tree update
  int64_t n_pivots = 0;
  /// Set by callers that read only the returned cost: the tiny (<= 32 x 32) solver then
  /// skips exporting its tree and potentials (emd_plan_* / emd_duals see no plan), and
  /// problems of 33 to 64 rows and columns go to its wide variant (two-word subtree sets,
  /// float64 pricing; 2-3x faster than the general simplex there).
  bool cost_only = false;
};

/// Exact optimal transport between histograms `a` (m) and `b` (n) with dense row-major cost
/// `C` (m x n): minimises <P, C> over P >= 0 with P 1 = a, P^T 1 = b, by a primal network
/// simplex (spanning tree stored as parent/thread/depth arrays, artificial-root start;
/// block-search pivoting, or Dantzig's rule, an AVX2 scan of all arcs, when m n <= 1024). Rows with
/// a_i = 0 and columns with b_j = 0 are dropped first. When at most 32 rows and 32 columns remain,
/// a fixed-size variant runs instead (stack arrays, subtree bit sets instead of thread/depth,
/// float32 AVX2 pre-pricing re-checked in float64): same optimum, no allocation. Masses are
/// expected to be equal (the caller checks the tolerance); a residual mismatch stays on artificial
/// arcs and is reported as EMD_INFEASIBLE when larger than 1e-9 * total mass. Only costs between
/// kept rows and columns are read; a NaN or -inf one gives EMD_NONFINITE and a NaN cost. A +inf
/// cost is a forbidden arc (never enters the tree); when the others cannot carry the masses,
/// EMD_INFEASIBLE.
///
/// Complexity: each pivot costs O(sqrt(m n)) to O(m n) for the search plus O(subtree) for
/// the tree update; typically O(m + n) .. O((m + n) log) pivots. Memory O(m n) bytes for arc
/// flags (+ 8 m n bytes when zero-mass bins are dropped) and O(m + n) otherwise, all in `ws`.
/// `max_iter` <= 0 means no limit. Returns the optimal cost <P, C>; `*status` (if non-null)
/// receives an EmdStatus. The caller owns all arrays; `C` must outlive later `emd_plan_*` /
/// `emd_duals` calls on the same workspace. Thread-safe with one workspace per thread.
double emd_solve(int m, int n, const double* a, const double* b, const double* C, EmdWorkspace& ws,
                 int64_t max_iter, int* status);

/// Same as `emd_solve`: the entry point meant for many small problems (e.g. one per graph
/// edge in Ollivier-Ricci curvature). Reuse `ws` across calls to avoid allocations.
inline double emd_small(int m, int n, const double* a, const double* b, const double* C,
                        EmdWorkspace& ws, int64_t max_iter, int* status) {
  return emd_solve(m, n, a, b, C, ws, max_iter, status);
}

/// One problem of `emd_small_costs`: histograms a (m), b (n), row-major cost C (m x n).
struct EmdProblem {
  int m = 0, n = 0;
  const double *a = nullptr, *b = nullptr, *C = nullptr;
};

/// The optimal costs and statuses of `count` independent problems, the same bits as
/// `emd_small` with `ws.cost_only` set returns them one by one, on the calling thread. Problems
/// with positive masses and at most 32 bins a side (then those with 33 to 64 on one side) are
/// solved two at a time on the fixed-size simplex, their pricing scans and pivots interleaved in
/// lock-step (one solve is a chain of latency-bound steps, each waiting on the last: two
/// independent chains overlap in the out-of-order core; 17 % and 7 % less time on the 16-D kNN
/// curvature problems); the others go through `emd_small` on `ws` (whose `cost_only` flag is set
/// here). Writes cost[k], status[k].
void emd_small_costs(int count, const EmdProblem* problems, EmdWorkspace& ws, int64_t max_iter,
                     double* cost, int* status);

/// Writes the dense optimal plan of the last solve in `ws` into `P` (m x n, row-major,
/// zero-filled here). O(m n).
void emd_plan_dense(const EmdWorkspace& ws, double* P);

/// Appends the non-zero entries (row, col, mass) of the last plan; at most m + n - 1 of them.
void emd_plan_sparse(const EmdWorkspace& ws, std::vector<int64_t>& ri, std::vector<int64_t>& ci,
                     std::vector<double>& val);

/// Dual potentials of the last solve: f (m), g (n) with f_i + g_j <= C_ij (up to rounding)
/// and equality where the plan is positive, so that sum a f + sum b g = cost. Dropped
/// zero-mass rows/columns get the c-transform of the other side. O(m n) when bins were
/// dropped, else O(m + n).
void emd_duals(const EmdWorkspace& ws, double* f, double* g);

/// Many independent exact problems in one call, parallel over problems (OpenMP, one
/// workspace per thread). Problem k has histograms a[a_off[k] .. a_off[k+1]),
/// b[b_off[k] .. b_off[k+1]) and a row-major cost block starting at C + c_off[k] of shape
/// m_k x n_k (m_k = a_off[k+1] - a_off[k]). A padded layout (B, m), (B, n), (B, m, n) is the
/// case a_off[k] = k m, b_off[k] = k n, c_off[k] = k m n; zero weights act as masks.
/// Writes cost[k] and status[k]; when `plans` is non-null the plan of problem k is written
/// at plans + c_off[k] (same layout as C). Caller owns every array.
void emd_batched(int64_t B, const double* a, const int64_t* a_off, const double* b,
                 const int64_t* b_off, const double* C, const int64_t* c_off, int64_t max_iter,
                 int n_jobs, double* cost, int* status, double* plans);

}  // namespace geoml

namespace geoml {

// ====================================================================== Sinkhorn

/// Smallest (*lo) and largest (*hi) of the n values x; returns false when some value is NaN
/// or infinite (lo/hi then cover the finite ones). One vectorised pass, parallel over
/// chunks (n_jobs as resolve_threads). Used to validate a cost and size eps schedules.
bool value_range(int64_t n, const double* x, int n_jobs, double* lo, double* hi);

/// Parameters of the entropic solvers.
struct SinkhornParams {
  double eps = 1e-2;         ///< final entropic regularisation (> 0)
  double rho = -1.0;         ///< marginal KL relaxation (Chizat et al.); < 0 means balanced
  int64_t max_iter = 10000;  ///< total scaling iterations over all eps stages
  double tol = 1e-9;         ///< balanced: L1 marginal error; unbalanced: potential error bound
  double eps_start = 0.0;    ///< first eps of the annealing schedule (<= eps: no annealing)
  double eps_factor = 0.5;   ///< eps ratio between consecutive stages, in (0, 1)
  double stage_tol = 1e-3;   ///< relative tolerance that ends an intermediate stage
  int n_threads = 1;         ///< OpenMP threads inside one solve
  /// With a CostScan (sinkhorn_dense): anneal from (max C - min C) / 2 when eps is below
  /// start_ratio (max C - min C), decided after the scan (eps_start is then ignored)
  double start_ratio = 0.0;
  /// Balanced dense solves: Anderson mixing of the column update (else SOR from the start, the
  /// iteration of geoml <= 0.1 kept for comparisons)
  bool anderson = true;
};

/// The input check of C that sinkhorn_dense can run inside its first kernel build (each row
/// scanned while it is in cache, instead of a separate pass over C).
struct CostScan {
  double lo = 0.0, hi = 0.0;  ///< min and max of C (valid when finite)
  bool finite = false;        ///< every entry finite (else, or if hi - lo overflows, no solve)
};

/// What a Sinkhorn solve reports.
struct SinkhornInfo {
  int64_t n_iter = 0;  ///< scaling iterations (all stages)
  double err = 0.0;    ///< final stopping quantity (see SinkhornParams::tol)
  bool converged = false;
  double cost = 0.0;            ///< <P, C> of the returned plan (sinkhorn_dense)
  double marginal_error = 0.0;  ///< |P 1 - a|_1 + |P^T 1 - b|_1 of it (sinkhorn_dense)
};

/// Reusable scratch memory for `sinkhorn_dense` (one per thread).
struct SinkhornWork {
  std::vector<double> u, v, Ktu, ra, rb, wr, wc, tmp, gc;
  std::vector<double> gold;   // g before an exact column update
  std::vector<double> usave;  // u before a fused build that may be refused
  std::vector<double> part;   // per-thread partial sums of K^T u
  std::vector<float> row32;   // one float32 kernel row (widening the plan)
};

/// Entropic OT between histograms a (m) and b (n) with dense cost C (m x n, row-major):
/// minimises <P, C> + eps KL(P | ref) (balanced: P 1 = a, P^T 1 = b; ref = 1) or, with
/// rho > 0, <P, C> + eps KL(P | a b^T) + rho KL(P 1 | a) + rho KL(P^T 1 | b) (POT's
/// reg_type="kl"). Stabilised scaling on a kernel K = exp((f + g - C) / eps) whose potentials
/// f, g absorb the scalings whenever these leave [e^-50, e^50] (and rows/columns that
/// underflow get an exact log-sum-exp update), so nothing overflows for any eps > 0. One
/// iteration is one pass over K: each row's scaling is updated and its share of K^T u
/// accumulated at once (threads: dynamic row blocks, per-thread partial sums), then the
/// columns are updated; balanced problems are accelerated by Anderson mixing of log v, or
/// over-relaxed (SOR, from the measured plain rate) once the mixing stalls. eps is annealed
/// geometrically from eps_start. The returned info carries <P, C> and the L1 marginal error.
/// In/out: f (m), g (n) hold a warm start on entry (zeros: none) and the dual potentials on
/// exit, with P_ij = exp((f_i + g_j - C_ij) / eps) in the balanced case. `P` (m x n) receives
/// the plan; it is also the kernel's storage during the solve: in float32 (first half of P)
/// when m n >= 2^16 and no exponent of a kernel build exceeds 88, else float64; iterations
/// then stream half the bytes. Exponents below -87 give float32 subnormals or 0 (absolute
/// error < 2^-126); while there are such entries the scalings are absorbed once max u max v
/// could make their share of the plan exceed 1e-3 tol. The plan is widened in place. Zero-mass
/// bins get zero rows / columns. O(m n) per iteration, O(m n) exps per stage; memory: P plus O(m +
/// n) in `w`.
/// With `scan`: C is checked during the first kernel build; when some entry is not finite or
/// the range overflows, it returns after that build (n_iter 0, not converged, P unspecified).
SinkhornInfo sinkhorn_dense(int m, int n, const double* a, const double* b, const double* C,
                            const SinkhornParams& p, double* f, double* g, double* P,
                            SinkhornWork& w, CostScan* scan = nullptr);

/// Parameters of `sinkhorn_newton_dense`.
struct NewtonParams {
  double eps = 1e-2;        ///< entropic regularisation (> 0)
  double tol = 1e-9;        ///< L1 marginal error to reach (absolute)
  int64_t max_iter = 1000;  ///< Newton steps (float32 and float64 phases together)
  int64_t n_warmup = 3;     ///< Sinkhorn iterations before the Newton steps
  double sparsity = 1e-6;   ///< keep plan entries >= sparsity * their row's mass in the Hessian
  int n_threads = 1;        ///< OpenMP threads
};

/// What `sinkhorn_newton_dense` reports.
struct NewtonInfo {
  int64_t n_warmup = 0;  ///< Sinkhorn warm-up iterations
  int64_t n_newton = 0;  ///< Newton steps
  int64_t n_cg = 0;      ///< conjugate-gradient iterations over all steps
  int64_t n_passes = 0;  ///< passes over the m x n kernel (builds, sweeps, evaluations, plan)
  double err = 0.0;      ///< L1 marginal error at the last step
  double cost = 0.0;     ///< <P, C> of the returned plan
  double marginal_error = 0.0;  ///< |P 1 - a|_1 + |P^T 1 - b|_1 of the returned plan
  bool converged = false;
  bool used_float32 = false;  ///< the Newton steps started on a float32 kernel
};

/// Sinkhorn-Newton-Sparse (Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao & Ying,
/// ICLR 2024) for the balanced problem of `sinkhorn_dense`: n_warmup Sinkhorn iterations
/// (`sinkhorn_dense`; if they reach tol, that is the result), then Newton steps on the dual
/// phi(al, be) = a.al + b.be - sum_ij u_i K_ij v_j (u = e^al, v = e^be, K = exp((f + g - C) /
/// eps)). The Hessian [diag r, P; P^T, diag c] (r, c: the plan's row / column sums) is
/// sparsified by keeping P_ij >= sparsity * r_i (found in the same pass that forms r and c);
/// the direction solves it by Jacobi-preconditioned CG on its Schur complement
/// diag c - Ps^T diag(1/r) Ps (Ps in float32 CSR scaled to a largest entry of 1; each product
/// one fused pass over it) to the relative residual min(0.1, max(sqrt(err / mass),
/// 0.1 tol / err)) (inexact Newton, no more accurate than the step to tol needs); a backtracking
/// Armijo line search (halving; where the objective's change is below its rounding, a smaller
/// marginal error decides) sets the step. A full step near the solution (err <= 1e-4 mass) that
/// contracts the error less than 2x lowers the threshold 100x (down to 1e-14: the dropped entries
/// carried needed coupling); a failed line search retries at 1e-14. Each line-search trial is one
/// pass over K that yields the objective, the gradient and the sparsified plan of the trial point,
/// so an accepted full step costs one pass. Scalings beyond e^20 are absorbed into f, g (kernel
/// rebuilt). The kernel is float32 (in the first half of P) when m n >= 2^16 and no exponent
/// exceeds 88 (exponents below -87 stored as 0; in float64, entries below 1e-200); once tol is met
/// there, the kernel is rebuilt in float64 and the steps continue to tol, so the returned plan is
/// float64-exact. Sums run over row groups fixed by the shape: the result does not depend on the
/// thread count. Zero-mass bins get zero rows / columns. Memory: P plus O(nnz + (m + n) * 64).
NewtonInfo sinkhorn_newton_dense(int m, int n, const double* a, const double* b, const double* C,
                                 const NewtonParams& p, double* f, double* g, double* P);

/// Many independent dense Sinkhorn problems (same ragged/padded layout as `emd_batched`),
/// parallel over problems. Writes cost[k] = <P_k, C_k>, err[k], n_iter[k], converged[k]
/// and, when `plans` is non-null, each plan at plans + c_off[k]. p.n_threads is ignored
/// (each problem runs on one thread; n_jobs threads run problems).
void sinkhorn_batched(int64_t B, const double* a, const int64_t* a_off, const double* b,
                      const int64_t* b_off, const double* C, const int64_t* c_off,
                      const SinkhornParams& p, int n_jobs, double* cost, double* err,
                      int64_t* n_iter, unsigned char* converged, double* plans);

/// Entropic OT between point clouds x (m x d) and y (n x d) with cost |x_i - y_j|^p
/// (p = 1 or 2; p = 2 is the squared distance) computed on the fly: log-domain Sinkhorn with
/// annealing, memory O(m + n). In/out f (m), g (n) as in `sinkhorn_dense`. On exit `cost`
/// holds <P, C>. O(m n d) per iteration; parallel over rows (p.n_threads).
SinkhornInfo sinkhorn_points(int m, int n, int d, const double* x, const double* y, const double* a,
                             const double* b, int power, const SinkhornParams& p, double* f,
                             double* g, double* cost);

}  // namespace geoml

namespace geoml {

// ====================================================================== linear assignment

/// Reusable memory for `linear_assignment` (one per thread): after the first call of a given
/// size no allocation happens.
struct AssignmentWork {
  std::vector<int> x, y, collist, free_rows, matches;
  std::vector<int64_t> pred, freem;
  std::vector<double> v, d, t2;
  std::vector<double> t;  // transposed cost when there are more rows than columns
};

/// Status codes of `linear_assignment`.
enum AssignmentStatus : int {
  ASSIGN_OPTIMAL = 0,     ///< an optimal assignment was found
  ASSIGN_INFEASIBLE = 1,  ///< the +inf (forbidden) entries leave no complete assignment
};

/// Minimum-cost assignment of the dense row-major cost `C` (m x n): min(m, n) pairs
/// (row_ind[k], col_ind[k]), rows distinct and increasing, columns distinct, minimising the
/// sum of C over the pairs (SciPy's linear_sum_assignment convention). `+inf` entries are
/// forbidden pairs; NaN and -inf must be rejected by the caller. Jonker-Volgenant: column
/// reduction with reduction transfer (square problems), two augmenting-row-reduction passes,
/// then shortest augmenting paths (Dijkstra on reduced costs) for the rows still free; more
/// rows than columns are solved on the transpose (copied into `w.t`). Writes `*cost` (the sum
/// over the pairs, in row order) and returns an AssignmentStatus (row_ind/col_ind undefined
/// when infeasible). O(n^3) worst case, typically far less; memory O(m + n) (+ m n when m > n).
int linear_assignment(int m, int n, const double* C, int64_t* row_ind, int64_t* col_ind,
                      double* cost, AssignmentWork& w);

/// Many independent assignment problems, parallel over problems (OpenMP, one workspace per
/// thread, dynamic schedule). Problem k has shape ms[k] x ns[k], its row-major cost at
/// C + c_off[k], and writes min(ms[k], ns[k]) pairs at row_ind + k_off[k], col_ind + k_off[k].
/// Writes cost[k] and status[k]. Caller owns every array.
void linear_assignment_batched(int64_t B, const double* C, const int64_t* c_off, const int64_t* ms,
                               const int64_t* ns, const int64_t* k_off, int n_jobs,
                               int64_t* row_ind, int64_t* col_ind, double* cost, int* status);

}  // namespace geoml

namespace geoml {

// ====================================================================== symmetric scaling

/// What a symmetric (doubly-stochastic) scaling reports.
struct SymmetricInfo {
  int64_t n_iter = 0;           ///< fixed-point iterations (one pass over K each)
  double marginal_error = 0.0;  ///< |P 1 - a|_1 of the returned scaling
  bool converged = false;       ///< marginal_error <= tol * sum(a)
  int zero_row = -1;            ///< a row with a_i > 0 whose kernel row is zero (then nothing ran)
};

/// Symmetric scaling of a dense non-negative symmetric kernel K (n x n, row-major, float32 or
/// float64): finds d > 0 with d_i (K d)_i = a_i by the damped fixed point
/// log d <- (log d + log a - log K d) / 2 (the geometric mean of d and a / K d), which converges
/// for symmetric K with total support (rate at most 1/2 per pass for positive semi-definite K),
/// accelerated by Anderson mixing over the last 6 iterates (restarted when the error grows).
/// The scaling is kept as log d (in/out `logd`: warm start on entry, zeros for none) and K d is
/// formed from exp(log d - max log d), so d never overflows; a row whose product underflows is
/// recomputed exactly by a log-sum-exp over log K_ij + log d_j. Rows with a_i = 0 get
/// log d_i = -inf. Stops when |d (K d) - a|_1 <= tol sum(a) (measured in the same pass).
/// Writes the plan P_ij = d_i K_ij d_j into `P` (n x n, T) when non-null. One pass over K per
/// iteration, parallel over rows (static, so the result does not depend on the thread count);
/// memory O(n) beyond K and P.
template <typename T>
SymmetricInfo sinkhorn_symmetric_dense(int64_t n, const T* K, const double* a, double tol,
                                       int64_t max_iter, int n_threads, double* logd, T* P);

/// Same on a CSR kernel (float64 values, int64 indices; rows = columns = n), through csr_mm.
/// Writes no plan (the caller scales the values). O(nnz) per iteration.
SymmetricInfo sinkhorn_symmetric_csr(int64_t n, const int64_t* indptr, const int64_t* indices,
                                     const double* data, const double* a, double tol,
                                     int64_t max_iter, int n_threads, double* logd);

/// What symmetric_scan finds in a dense square matrix M (n x n, row-major).
struct SymmetricScan {
  bool finite = true;   ///< no NaN or infinity
  double min = 0.0;     ///< min_ij M_ij (meaningful when finite)
  double absmax = 0.0;  ///< max_ij |M_ij|
  double asym = 0.0;    ///< max_ij |M_ij - M_ji|
};

/// Same on the Gibbs kernel exp(-C / eps) of a symmetric cost C (n x n, float64): the kernel
/// exp((f_i + f_j - C_ij) / eps) is stored in `P` (float64, n x n) and the scaling absorbed into
/// f whenever |log d| exceeds 30 or a row underflows (then rebuilt: n^2 exps), so any eps > 0
/// works. On exit P holds the plan and `logd` (n) the full log-scaling (f / eps + log d), with
/// P_ij = exp(logd_i + logd_j - C_ij / eps). `rowmin` (n, optional): min_j C_ij, known from a
/// symmetric_scan (else one more pass over C); `c_symmetric`: C == C.T exactly (then half the
/// kernel's exponentials, mirrored). From `f32_min_entries` kernel entries on, the iterations
/// run on a float32 copy of the kernel first (half the memory traffic), then finish on the
/// float64 one (the returned plan and its marginal error are float64's). With `scan`, the input
/// checks of symmetric_scan (row minima included) run fused with the first kernel build, and
/// nothing more when C is not finite or max |C - C.T| > sym_rtol max |C| (the caller raises).
SymmetricInfo sinkhorn_symmetric_cost(int64_t n, const double* C, double eps, const double* a,
                                      double tol, int64_t max_iter, int n_threads, double* logd,
                                      double* P, const double* rowmin = nullptr,
                                      bool c_symmetric = false, int64_t f32_min_entries = 1 << 20,
                                      SymmetricScan* scan = nullptr, double sym_rtol = 0.0);

/// One tiled pass over M (each entry read once, as M_ij or as M_ji) for the input checks of the
/// symmetric scaling; parallel over tile rows, the result does not depend on the thread count.
/// Writes min_j M_ij into `rowmin` (n) when non-null.
template <typename T>
SymmetricScan symmetric_scan(int64_t n, const T* M, int n_threads, double* rowmin = nullptr);

}  // namespace geoml
