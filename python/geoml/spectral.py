"""Lanczos eigensolver, graph Laplacians and spectral embeddings.

CPU kernels in ``cpp/lanczos.cpp``, ``cpp/multigrid.cpp`` and ``cpp/kmeans.cpp``.

How the smallest eigenpairs of a normalised Laplacian are found
---------------------------------------------------------------
``L = I - N`` with ``N = D^-1/2 W D^-1/2``, so the smallest eigenpairs of ``L`` are the largest of
``N``, whose spectrum lies in ``[-1, 1]`` (so ``||N|| = 1`` is known exactly). The null space of
``L`` is known in closed form: one vector ``D^1/2 1_C`` per connected component ``C`` (``e_i``
for an isolated node). geoml finds the components, puts those vectors in the solution directly
(so a disconnected graph gets exactly as many zero eigenvalues as it has components) and runs
thick-restart Lanczos for the largest remaining eigenpairs of ``N``, kept orthogonal to the
null space. Plain "SA" Lanczos on ``L`` is never used (the wanted end of ``L`` sits next to 0
while ``||L||`` is up to 2, and shift-invert is avoided because factorising kNN-graph
Laplacians fills in badly in high dimension).

The eigenvalues wanted are tightly clustered next to 1 (swiss roll, n = 200,000, 10-NN: the
16th smallest eigenvalue of ``L`` is 2.7e-4 while the spectrum reaches ~1.5), so plain
Lanczos needs hundreds of restart cycles, each reorthogonalising against the whole basis.
geoml therefore runs Lanczos on ``p(N)``, ``p`` a Chebyshev polynomial of degree 16 that is
bounded by 1 on ``[-1, cut]`` and grows fast above ``cut``: the wanted eigenvalues are spread
apart and the basis work per product drops ~16-fold. ``cut`` starts at a Ritz value after 16
cheap unfiltered cycles (a lower bound on the 18th eigenvalue by interlacing, so no wanted
eigenvalue is damped) and is raised while the iteration runs. Convergence is judged on the
true residuals ``||N u - (u.N u) u||``. Measured single-threaded on the swiss roll
(residual <= 1e-6, both runs in one process on a shared 2-core machine): n = 20,000: plain
1322 products in 117 cycles / 1.9 s, degree 16 1947 in 22 cycles / 0.86 s; n = 100,000: plain
4677 products in 422 cycles / 58 s, degree 16 4151 in 32 cycles / 24 s (degree 32: 4617
products, about 1.3x slower than 16). Unweighted (0/1) graphs use ``N = S P S`` with the
sparsity pattern ``P`` alone
(4 bytes per stored entry instead of 12).

Large graphs: LOBPCG preconditioned by algebraic multigrid
----------------------------------------------------------
Polynomial methods (Lanczos, Chebyshev) cannot do much better on large manifold graphs: the
gaps between the wanted eigenvalues are ~1e-5 of the spectrum's width. From
``_AMG_MIN_N = 10,000`` nodes on, the estimators (:class:`LaplacianEigenmap`,
:class:`SpectralClustering`, :class:`DiffusionMap`) therefore solve for the smallest
eigenpairs of ``L_sym`` itself with LOBPCG (Knyazev 2001) preconditioned by smoothed-
aggregation AMG (Vanek, Mandel & Brezina 1996) built from the graph:

* nodes are renumbered by reverse Cuthill-McKee (kNN graphs come in data order; banded, the
  block products run ~10x faster: 0.30 s -> 0.03 s for 22 vectors at n = 200,000); the
  order and the connected components come from one C++ breadth-first sweep
  (``_core.rcm_components``, 30 ms where SciPy's ``connected_components`` and
  ``reverse_cuthill_mckee`` took 150 + 100 ms) and ``L_sym`` is built renumbered in C++
  (``_core.permuted_lsym``, ~80 ms; permuting ``W`` alone took 60-70 ms in SciPy);
* levels: greedy aggregation (C++), tentative prolongator carrying ``b = D^1/2 1`` (the null
  vector of ``L_sym``, so ``P^T L P`` keeps an exact null vector), one weighted-Jacobi
  smoothing step of the prolongator, Galerkin coarse operators, down to <= 800 nodes
  (200,000 -> 12,700 -> 660 on the benchmark swiss roll);
* preconditioner: two symmetric V(1,1)-cycles, Jacobi smoothing with weight
  ``4 / (3 rho(D^-1 A))``, ``rho`` from 15 power iterations (with the Gershgorin bound 2
  instead, the V-cycle is under-damped: 11 fine-level LOBPCG iterations instead of 6),
  run in C++ in float32 (``_core.AmgCycle``: one call per application, every product one
  fused OpenMP pass over a CSR matrix with the block row in AVX2 registers; the Jacobi step
  ``x + w D^-1 (b - A x)`` fused with its product). The preconditioner need not be
  accurate: same iteration counts as float64, and on the benchmark swiss roll the two
  V-cycles cost ~2 block products with ``L`` instead of ~10 (NumPy/SciPy version);
* start: eigenvectors of the coarsest level (dense), carried up level by level with 5
  LOBPCG iterations per intermediate level (cascadic); on the finest level the null space
  is deflated exactly and LOBPCG runs with ``k + max(4, k / 4)`` vectors (the extra ones are
  guards and do not need to converge) and soft locking of converged pairs, until every
  wanted residual ``||L u - lambda u||`` is at most ``tol``;
* block products and aggregation are C++/OpenMP, and so is the dense algebra on the n-row
  blocks (``_core.block_gram``: the Gram matrices ``[X W P]^T [W P | AW AP]`` of the
  Rayleigh-Ritz step in one pass over the blocks; ``_core.block_lincomb``: projections and
  block updates, in place); only the small Rayleigh-Ritz eigenproblems are NumPy/LAPACK,
  with BLAS held to one thread during the solve (through threadpoolctl when it is
  installed): OpenBLAS threads spinning next to the OpenMP ones made the solve 2-5x slower
  on a 2-core machine. The block kernels do not call BLAS: 4 x 8 tiles in AVX2 registers
  reach 13-17 GFLOP/s per core on these 20-60 column blocks, where the 12 separate NumPy
  products on one BLAS thread took ~2x as long and could not use the second core without
  the spinning pools above.

If LOBPCG has not converged after ``_AMG_MAX_ITER`` iterations, the Lanczos path takes over.
Measured on the benchmark swiss roll (n = 200,000, 10-NN, 16 pairs, residual <= 1e-6, shared
2-core machine): 6 fine-level iterations, 222 block-vector products, 1.6-2.3 s wall on 2
threads (3.2-3.8 s with the dense algebra in NumPy, same conditions; single-threaded
3.0-3.6 s CPU against 5.1-5.3 s), where the filtered Lanczos above takes 6393 products and
~40 s, and SciPy's shift-invert ``eigsh`` ~12-30 s depending on the load (see
``bench/bench_eigsh.py``). Of ~1.9 s, the hierarchy is ~0.37 s, the block combinations
~0.33 s, the V-cycles ~0.3 s, the Gram matrices ~0.25 s, the sparse block products
~0.17 s, the residuals ~0.05 s and the rest (ordering, Laplacian, copies into the
float32 hierarchy, small eigenproblems) ~0.35 s. First
calls in a process pay for page faults: on the dev VM a fault on a 4 KiB page costs ~5 us
(80 MB first touched: ~100 ms, ~20 ms with NumPy's huge pages), so the C++ side allocates
its large arrays on transparent huge pages as NumPy does (``HugePageAllocator`` in
``multigrid.hpp``) and LOBPCG updates its blocks in place. When the other core is busy,
every OpenMP product waits for the thread that lost its core; the products hand out
chunks of rows dynamically so that the running thread takes over the work, but runs on a
loaded machine still vary by 2-3x.
"""
from __future__ import annotations

import functools
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from . import _core, _gpu
from ._validation import (as_float_array, check_int, check_n_jobs, is_gpu_array, reject_gpu,
                          single_threaded_blas)
from .neighbors import _move, _on_device, _xp, knn_graph

__all__ = ["DiffusionMap", "EigshResult", "LaplacianEigenmap", "SpectralClustering", "eigsh",
           "laplacian"]

_WHICH = {"LA": 0, "SA": 1, "LM": 2}
_KINDS = ("symmetric", "combinatorial", "random_walk")
_AFFINITIES = ("knn", "adaptive", "precomputed")
# Degree of the Chebyshev filter used for the smallest eigenpairs of normalised Laplacians
# (0 = plain Lanczos on N); chosen from the measurements in the module docstring.
_CHEB_DEGREE = 16


@dataclass
class EigshResult:
    """Eigenpairs from :func:`eigsh`. Unpacks as ``w, V = result``.

    Attributes
    ----------
    eigenvalues : ndarray of shape (k,)
        Ascending.
    eigenvectors : ndarray of shape (n, k)
        Orthonormal columns; column ``i`` belongs to ``eigenvalues[i]``.
    n_iter : int
        Restart cycles run.
    residual_norms : ndarray of shape (k,)
        ``||A v - lambda v||`` computed (not estimated) for each returned pair.
    converged : bool
        True when every residual is at most ``tol * anorm``.
    n_matvec : int
        Products with ``A``.
    anorm : float
        The estimate of ``||A||_2`` used in the convergence test.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_iter: int
    residual_norms: np.ndarray
    converged: bool
    n_matvec: int = 0
    anorm: float = 0.0

    def __iter__(self):
        yield self.eigenvalues
        yield self.eigenvectors


def _seed(random_state) -> int:
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2 ** 63))
    if random_state is None or isinstance(random_state, numbers.Integral):
        return int(np.random.default_rng(random_state).integers(2 ** 63))
    raise TypeError(f"random_state must be None, an int or a numpy Generator; got {random_state!r}")


def _default_tol(dtype) -> float:
    return 1e-10 if dtype == np.float64 else 1e-5


def _check_tol(tol, dtype) -> float:
    if tol is None:
        return _default_tol(dtype)
    tol = float(tol)
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a non-negative number; got {tol}")
    return max(tol, 10 * float(np.finfo(dtype).eps))


def _symmetry_error(A) -> float:
    """max |A - A^T| / max |A| (0 for a zero matrix)."""
    if sp.issparse(A):
        diff = abs(A - A.T)
        num = diff.max() if diff.nnz else 0.0
        den = abs(A).max() if A.nnz else 0.0
    else:
        num = np.abs(A - A.T).max()
        den = np.abs(A).max()
    return float(num / den) if den > 0 else 0.0


def _as_csr(A, name: str, dtype=None) -> sp.csr_matrix:
    """Square CSR copy-if-needed with float32/float64 data, duplicates summed; checks NaN/inf."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square; got shape {A.shape}")
    if A.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got dtype {A.dtype}")
    if dtype is None:
        dtype = np.float32 if A.dtype == np.float32 else np.float64
    A = sp.csr_matrix(A, dtype=dtype)
    A.sum_duplicates()
    if not np.isfinite(A.data).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return A


def eigsh(A, k: int = 6, *, which: str = "LA", tol: float | None = None,
          max_iter: int | None = None, ncv: int | None = None, v0=None, random_state=None,
          n_jobs: int | None = None) -> EigshResult:
    """A few extreme eigenpairs of a real symmetric matrix by thick-restart Lanczos.

    Thick-restart Lanczos (Wu & Simon 2000) with full reorthogonalisation (classical
    Gram-Schmidt after each three-term step, repeated when it cancels) and locking of
    converged pairs, in C++; products with a sparse matrix run as an OpenMP CSR SpMV, with a
    dense one as an OpenMP GEMV. A pair ``(lambda, v)`` is converged when
    ``||A v - lambda v|| <= tol * ||A||``, where ``||A||`` is estimated by the largest
    magnitude of all Ritz values seen (Lanczos finds both ends of the spectrum first, so this
    lower bound on ``||A||_2`` is accurate to a few digits after the first cycle). Pairs are
    locked on the Lanczos residual estimate; the returned ``residual_norms`` are recomputed
    with ``A``. After the wanted pairs converge, one more cycle from a fresh random vector
    orthogonal to them checks that no eigenvalue was missed (single-vector Lanczos sees only
    one vector of a repeated eigenvalue per start vector); if one was, it is added.

    Parameters
    ----------
    A : sparse matrix, ndarray or scipy.sparse.linalg.LinearOperator of shape (n, n)
        Symmetric. Sparse (any format) and dense input must be symmetric to within
        ``1e-8`` relative (else ``ValueError``; symmetrise with ``(A + A.T) / 2``). A
        ``LinearOperator`` is trusted to be symmetric; its ``matvec`` is called from the
        solver with the GIL held. float32 stays float32, everything else becomes float64.
        A CuPy array or ``cupyx.scipy.sparse`` matrix runs the same algorithm on the GPU (CSR
        SpMV kernel from ``geoml._cuda``, Lanczos vectors on the device, CuPy's current
        stream; no locking or missed-eigenvalue check there) and returns CuPy arrays.
    k : int
        Number of eigenpairs, ``1 <= k < n``.
    which : {"LA", "SA", "LM"}
        Largest algebraic, smallest algebraic, or largest magnitude eigenvalues.
    tol : float, optional
        Relative residual tolerance. Default ``1e-10`` (float64) or ``1e-5`` (float32); values
        below ``10 * eps`` of the dtype are raised to it.
    max_iter : int, optional
        Restart cycles at most (default 1000). When they run out the best pairs found are
        returned with ``converged=False`` and a ``RuntimeWarning``.
    ncv : int, optional
        Lanczos basis size, ``k + 2 <= ncv <= n`` (default ``max(2 k + 1, 20)``). Memory is
        ``n * ncv`` values.
    v0 : array-like of shape (n,), optional
        Start vector (default: Gaussian from ``random_state``).
    random_state : int, numpy.random.Generator or None
        Seeds the start vector and the vectors drawn after an invariant subspace is found.
    n_jobs : int, optional
        Threads (None: OpenMP default; -1: all cores).

    Returns
    -------
    EigshResult
        ``eigenvalues`` (k,) ascending, ``eigenvectors`` (n, k) orthonormal, ``n_iter``,
        ``residual_norms`` (k,), ``converged``; unpacks as ``w, V``.

    References
    ----------
    K. Wu and H. Simon, "Thick-restart Lanczos method for large symmetric eigenvalue
    problems", SIAM J. Matrix Anal. Appl. 22(2), 2000.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> A = sp.diags([np.arange(1.0, 101.0)], [0], format="csr")
    >>> w, V = geoml.eigsh(A, 3, which="SA", random_state=0)
    >>> np.round(w, 10)
    array([1., 2., 3.])
    >>> V.shape
    (100, 3)
    """
    if is_gpu_array(A) or type(A).__module__.startswith("cupyx."):
        from . import _spectral_gpu  # CuPy arrays / cupyx sparse: Lanczos on the device

        return EigshResult(*_spectral_gpu.eigsh(A, k, which=which, tol=tol, max_iter=max_iter,
                                                ncv=ncv, v0=v0, random_state=random_state))
    if which not in _WHICH:
        raise ValueError(f"which={which!r}; choose 'LA', 'SA' or 'LM'")
    callback = indptr = indices = None
    index64 = False
    if isinstance(A, LinearOperator):
        if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square; got shape {A.shape}")
        n = A.shape[0]
        dtype = np.float32 if A.dtype == np.float32 else np.float64
        if np.dtype(A.dtype).kind == "c":
            raise TypeError("complex LinearOperators are not supported (real symmetric only)")
        op = A

        def callback(x):
            y = np.asarray(op.matvec(x)).reshape(-1)
            if y.shape != (n,):
                raise ValueError(f"A.matvec returned shape {y.shape}; expected ({n},)")
            if not np.isfinite(y).all():
                raise ValueError("A.matvec returned NaN or infinity")
            return y.astype(dtype, copy=False)

        data = None
    elif sp.issparse(A):
        A = _as_csr(A, "A")
        n = A.shape[0]
        dtype = A.dtype.type
        if _symmetry_error(A) > 1e-8:
            raise ValueError("A is not symmetric (max |A - A.T| > 1e-8 max |A|); eigsh needs a "
                             "symmetric matrix: pass (A + A.T) / 2")
        data, indptr, indices = A.data, A.indptr, A.indices
        index64 = indptr.dtype == np.int64
        if not index64:
            indptr, indices = indptr.astype(np.int32), indices.astype(np.int32)
    else:
        data = as_float_array(A, "A")
        if data.shape[0] != data.shape[1]:
            raise ValueError(f"A must be square; got shape {data.shape}")
        n = data.shape[0]
        dtype = data.dtype.type
        if _symmetry_error(data) > 1e-8:
            raise ValueError("A is not symmetric (max |A - A.T| > 1e-8 max |A|); eigsh needs a "
                             "symmetric matrix: pass (A + A.T) / 2")
    if n < 2:
        raise ValueError(f"A is {n} x {n}; eigsh needs n >= 2 (use numpy.linalg.eigh)")
    k = check_int(k, "k", low=1, high=n - 1,
                  hint=f" (A is {n} x {n}; for all eigenpairs use numpy.linalg.eigh)")
    tol = _check_tol(tol, dtype)
    max_iter = 1000 if max_iter is None else check_int(max_iter, "max_iter", low=1)
    ncv = 0 if ncv is None else check_int(ncv, "ncv", low=k + 2, high=n)
    if v0 is not None:
        v0 = as_float_array(v0, "v0", ndim=1, dtype=dtype)
        if v0.shape[0] != n:
            raise ValueError(f"v0 has {v0.shape[0]} entries; A has {n} rows")
    fn = _core.eigsh_f32 if dtype == np.float32 else _core.eigsh_f64
    w, V, res, n_iter, n_mv, conv, anorm, _ = fn(
        data, indptr, indices, index64, callback, n, v0, None, k, _WHICH[which], tol, max_iter,
        ncv, 0.0, 0, -1.0, 1.0, -2.0, True, _seed(random_state), check_n_jobs(n_jobs), None)
    out = EigshResult(w, V.reshape(n, k), int(n_iter), res, bool(conv), int(n_mv), float(anorm))
    if not out.converged:
        warnings.warn(f"eigsh did not converge in {n_iter} restart cycles: largest residual "
                      f"{res.max():.3g} > tol * ||A|| = {tol * anorm:.3g}; raise max_iter or "
                      "ncv, or loosen tol", RuntimeWarning, stacklevel=2)
    return out


# ----------------------------------------------------------------------------- Laplacians

def _affinity_csr(W, name: str = "W") -> sp.csr_matrix:
    """Validated symmetric, non-negative CSR affinity without diagonal entries."""
    reject_gpu(W, name, "laplacian")
    if not sp.issparse(W):
        W = np.asarray(W)
        if W.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold real numbers; got dtype {W.dtype}")
        if W.ndim != 2:
            raise ValueError(f"{name} must be a 2-D square matrix; got shape {W.shape}")
    W = _as_csr(W, name)
    if W.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if W.nnz and W.data.min() < 0:
        raise ValueError(f"{name} has negative entries; affinities must be >= 0")
    if _symmetry_error(W) > 1e-8:
        raise ValueError(f"{name} is not symmetric; symmetrise it first, e.g. "
                         f"{name}.maximum({name}.T) or ({name} + {name}.T) / 2")
    if W.diagonal().any():
        W = sp.csr_matrix(W - sp.diags(W.diagonal()))
    W.eliminate_zeros()
    return W


def laplacian(W, kind: str = "symmetric", return_diag: bool = False):
    """Graph Laplacian of a symmetric affinity matrix.

    ``"combinatorial"``: ``L = D - W``; ``"symmetric"``: ``L = I - D^-1/2 W D^-1/2``;
    ``"random_walk"``: ``L = I - D^-1 W``, with ``D = diag(d)``, ``d_i = sum_j W_ij``.
    Diagonal entries of ``W`` (self-loops) are ignored. An isolated node (``d_i = 0``) gets
    an all-zero row and column in every kind (so ``L_ii = 0``, as in SciPy): it is a
    connected component of its own and contributes one zero eigenvalue, so the multiplicity
    of the eigenvalue 0 always equals the number of connected components. O(nnz).

    Parameters
    ----------
    W : sparse matrix or array-like of shape (n, n)
        Symmetric (to 1e-8 relative) non-negative affinities, no NaN/inf.
    kind : {"symmetric", "combinatorial", "random_walk"}
    return_diag : bool
        Also return the degrees ``d``.

    Returns
    -------
    L : scipy.sparse.csr_matrix of shape (n, n)
        float32 if ``W`` is float32, else float64.
    d : ndarray of shape (n,)
        Degrees (only with ``return_diag=True``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    >>> geoml.laplacian(W, kind="combinatorial").toarray()
    array([[ 1., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  1.]])
    """
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r}; choose 'symmetric', 'combinatorial' or 'random_walk'")
    W = _affinity_csr(W)
    d = np.asarray(W.sum(axis=1), dtype=np.float64).ravel()
    iso = d == 0
    if kind == "combinatorial":
        L = sp.diags(d.astype(W.dtype), format="csr") - W
    else:
        dinv = np.where(iso, 0.0, 1.0 / np.where(iso, 1.0, d))
        if kind == "symmetric":
            s = np.sqrt(dinv)
            M = sp.diags(s) @ W @ sp.diags(s)
        else:
            M = sp.diags(dinv) @ W
        L = sp.diags((~iso).astype(np.float64)) - M
    L = sp.csr_matrix(L, dtype=W.dtype)
    L.sort_indices()
    return (L, d) if return_diag else L


def _normalized_adjacency(W: sp.csr_matrix):
    """N = D^-1/2 W D^-1/2 (zero rows for isolated nodes) and d."""
    d = np.asarray(W.sum(axis=1), dtype=np.float64).ravel()
    s = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    N = W.tocsr(copy=True).astype(np.float64)
    N.data *= np.repeat(s, np.diff(N.indptr)) * s[N.indices]
    return N, d


def _scale_both(W, s):
    """CSR matrix ``s_i W_ij s_j`` for a SciPy or cupyx ``W`` and ``s`` on the same side."""
    C = W.tocoo()
    return type(C)((C.data * s[C.row] * s[C.col], (C.row, C.col)), shape=W.shape).tocsr()


def _null_space(labels: np.ndarray, ncomp: int, d: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n, ncomp) of the null space of L_sym: D^1/2 1_C per component C
    (``labels``: the component of each node)."""
    # a component is either one isolated node (its vector is e_i) or all its nodes have d > 0
    v = np.where(d > 0, np.sqrt(d), 1.0)
    norms = np.sqrt(np.bincount(labels, v * v, minlength=ncomp))
    Z = np.zeros((d.shape[0], ncomp))
    Z[np.arange(d.shape[0]), labels] = v / norms[labels]
    return Z


# ----------------------------------------------------------------------------- LOBPCG + AMG
# Smallest eigenpairs of L_sym on large graphs: LOBPCG preconditioned by smoothed-aggregation
# algebraic multigrid built from the graph, started from the eigenvectors of the coarsest
# graph carried up level by level (see the module notes for the measurements).

_AMG_MIN_N = 10000      # graphs with at least this many nodes use LOBPCG + AMG ("auto")
_AMG_MAX_COARSE = 800   # coarsest level solved densely
_AMG_CYCLES = 2         # V-cycles per application of the preconditioner
_AMG_GUARD = 4          # guard vectors in the block (at least; kk // 4 for many pairs)
_AMG_COARSE_ITER = 5    # LOBPCG iterations on each intermediate level
_AMG_MAX_ITER = 200     # LOBPCG iterations on the finest level before falling back to Lanczos


def _spmm(A: sp.csr_matrix, X: np.ndarray, nt: int, alpha: float = 1.0, B=None,
          beta: float = 0.0, out=None) -> np.ndarray:
    """alpha A X + beta B (B None: 0; out may be B) by the OpenMP CSR block product in C++."""
    if out is None:
        out = np.empty((A.shape[0], X.shape[1]))
    _core.csr_spmm(A.indptr, A.indices, A.data, np.ascontiguousarray(X), alpha, B, beta, out,
                   nt)
    return out


class _Level:
    """One level of the AMG hierarchy: operator A, Jacobi weights, transfer operators."""

    __slots__ = ("A", "jac", "P", "R", "pinv", "w", "V")


def _amg_hierarchy(A: sp.csr_matrix, b: np.ndarray, nt: int = 0) -> list:
    """Smoothed-aggregation hierarchy of the symmetric positive semi-definite CSR ``A``.

    ``b`` spans the near-null space (``D^1/2 1`` for ``L_sym``). Aggregates come from the
    greedy three-pass aggregation of the matrix graph (C++); the tentative prolongator puts
    ``b`` restricted to each aggregate, normalised, in its column (so the coarse near-null
    vector is the vector of aggregate norms); it is smoothed by one weighted-Jacobi step
    ``P = (I - 4/(3 rho) D^-1 A) P_tent`` (``rho`` estimated by :func:`_spectral_radius`);
    coarse operator ``P^T A P``. Stops at ``_AMG_MAX_COARSE`` nodes (or when aggregation
    stalls); the coarsest level keeps its full eigendecomposition.
    """
    levels = []
    while True:
        lev = _Level()
        lev.A = A
        n = A.shape[0]
        dg = A.diagonal()
        dinv = np.where(dg > 0, 1.0 / np.where(dg > 0, dg, 1.0), 1.0)
        rho = _spectral_radius(A, dinv, nt=nt)
        lev.jac = (4.0 / (3.0 * max(rho, 1e-300))) * dinv
        levels.append(lev)
        if n <= _AMG_MAX_COARSE:
            break
        labels, nagg = _core.aggregate_graph(A.indptr, A.indices, A.data)
        if nagg > 0.7 * n:
            break
        norms = np.sqrt(np.bincount(labels, b * b, minlength=nagg))
        norms[norms == 0] = 1.0
        Pt = sp.csr_matrix((b / norms[labels], labels, np.arange(n + 1)), shape=(n, nagg))
        P = sp.csr_matrix(Pt - sp.diags(lev.jac) @ (A @ Pt))
        R = sp.csr_matrix(P.T)
        Ac = sp.csr_matrix(R @ (A @ P))
        Ac = sp.csr_matrix((Ac + Ac.T) * 0.5)
        for M in (P, R, Ac):
            M.sort_indices()
        lev.P, lev.R = P, R
        A, b = Ac, norms
    last = levels[-1]
    w, V = np.linalg.eigh(last.A.toarray())
    keep = w > 1e-12 * max(float(np.abs(w).max()), 1e-300)
    last.pinv = (V[:, keep] / w[keep]) @ V[:, keep].T
    last.w, last.V = w, V
    return levels


def _spectral_radius(A: sp.csr_matrix, dinv: np.ndarray, steps: int = 15, nt: int = 0) -> float:
    """rho(D^-1 A) by a few power iterations, raised 5% (a lower bound before; tight enough
    for Jacobi weights), capped by the Gershgorin bound. Products by the OpenMP CSR SpMV of
    the Lanczos solver (``nt`` threads; ~1.7x SciPy's on the benchmark graph)."""
    mv = _core.csr_matvec_f64_i64 if A.indptr.dtype == np.int64 else _core.csr_matvec_f64_i32
    n = A.shape[0]
    nt = nt if A.nnz + n >= 200000 else 1  # small levels: a parallel region costs more
    bound = (float((mv(A.indptr, A.indices, np.abs(A.data), np.ones(n), nt) * dinv).max())
             if A.nnz else 1.0)
    x = np.random.default_rng(0).standard_normal(n)
    rho = 0.0
    for _ in range(steps):
        y = dinv * mv(A.indptr, A.indices, A.data, x, nt)
        rho = float(np.linalg.norm(y) / max(np.linalg.norm(x), 1e-300))
        x = y / max(float(np.linalg.norm(y)), 1e-300)
    return max(min(1.05 * rho, bound), 1e-300)


def _amg_cycle(levels: list):
    """The C++ V-cycle (``_core.AmgCycle``, float32) over the hierarchy ``levels``."""
    cyc = _core.AmgCycle()
    for lev in levels[:-1]:
        cyc.add_level(lev.A.indptr, lev.A.indices, lev.A.data, lev.jac, lev.P.indptr,
                      lev.P.indices, lev.P.data, lev.R.indptr, lev.R.indices, lev.R.data)
    last = levels[-1]
    pinv = sp.csr_matrix(last.pinv)
    cyc.set_coarse(last.A.indptr, last.A.indices, last.A.data, pinv.indptr, pinv.indices,
                   pinv.data)
    return cyc


def _orthonormalise(U: np.ndarray, nt: int) -> np.ndarray:
    """Orthonormal basis of range(U) by the eigendecomposition of U^T U (SVQB), twice; the
    Gram matrix and the product run in C++ (``_core.block_gram`` / ``block_lincomb``), in
    place while no column is dropped."""
    for _ in range(2):
        s, Q = np.linalg.eigh(_sym(_core.block_gram([U], [U], nt)))
        keep = s > 1e-12 * max(float(s.max()), 1e-300)
        M = Q[:, keep] / np.sqrt(s[keep])
        out = U if M.shape[1] == U.shape[1] else np.empty((U.shape[0], M.shape[1]))
        _core.block_lincomb([U], M, out, 0.0, None, nt)
        U = out
    return U


def _lobpcg(A: sp.csr_matrix, X: np.ndarray, T, Z, kw: int, tol: float, max_iter: int,
            nt: int):
    """LOBPCG (Knyazev 2001) for the smallest eigenpairs of the symmetric CSR matrix A.

    ``X`` (n, m) spans the start space (overwritten when it is a C-contiguous float64
    array: callers pass fresh blocks), ``T(R)`` applies the preconditioner to a block,
    ``Z`` (n, c) orthonormal or None is deflated (the iteration stays orthogonal to it).
    The first ``kw`` columns are wanted (the other ``m - kw`` are guard vectors that speed
    up their convergence); a wanted column stops getting new directions (soft locking)
    once ``||A x - theta x|| <= tol``. The Rayleigh-Ritz step on ``[X, W, P]`` uses the
    Gram matrix of the basis (eigendecomposition, dropping dependent directions), so a
    nearly dependent ``P`` block never breaks it. The n-row blocks are never copied or
    rescaled: the Gram matrices ``[X W P]^T [W P]`` and ``[X W P]^T [AW AP]`` come from one
    pass over the separate blocks (``_core.block_gram``; ``P``'s active columns read in
    place), the unit-norm scaling of the ``W`` and ``P`` columns is applied to the small
    matrices, and the new blocks are linear combinations written into preallocated ones
    (``_core.block_lincomb``), both C++/OpenMP over rows. Done with NumPy on a single-threaded
    BLAS (12 separate Gram products and 6 block products, with W normalised in memory) the
    dense algebra of one iteration took ~2x as long on the benchmark graph (n = 200,000;
    see the module notes). Returns (theta (m,), X (n, m), residual norms (m,), iterations,
    converged, matvec columns).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]

    def project_out(Bs, U):  # U -= B (B^T U) for B = [B_1 ...] with orthonormal columns
        Bs = [B for B in Bs if B is not None and B.shape[1]]
        if Bs:
            _core.block_lincomb(Bs, -_core.block_gram(Bs, [U], nt), U, 1.0, None, nt)
        return U

    X = _orthonormalise(project_out([Z], X), nt)
    m = X.shape[1]
    if m < kw:  # the start space lost rank: not usable (the caller falls back)
        return None, X, None, 0, False, 0
    AX = _spmm(A, X, nt)
    n_mv = m
    lam, C = np.linalg.eigh(_sym(_core.block_gram([X], [AX], nt)))
    _core.block_lincomb([X], C, X, 0.0, None, nt)
    _core.block_lincomb([AX], C, AX, 0.0, None, nt)
    P = AP = None
    R, awbuf = np.empty((n, m)), np.empty(n * m)
    it = 0
    while True:
        res = _core.block_residual(X, AX, lam, R, nt)  # R = AX - X diag(lam), norms
        act = np.flatnonzero(res[:kw] > tol)
        if act.size == 0 or it == max_iter:
            return lam, X, res, it, act.size == 0, n_mv
        it += 1
        a = act.size
        # the active columns as runs of consecutive ones: column blocks read in place
        runs = [slice(int(r[0]), int(r[-1]) + 1)
                for r in np.split(act, np.flatnonzero(np.diff(act) != 1) + 1)]
        cols = runs[0] if len(runs) == 1 else act
        W = project_out([Z, X], T(np.ascontiguousarray(R[:, cols])))
        AW = _spmm(A, W, nt, out=awbuf[:n * a].reshape(n, a))
        n_mv += a
        # Rayleigh-Ritz on the basis [X, W, P] with unit columns in W and P (X^T X = I,
        # X^T A X = diag(lam)): G = [X W P]^T [W P | AW AP] on the unscaled blocks
        B, AB = [W], [AW]
        if P is not None:
            B, AB = B + [P[:, r] for r in runs], AB + [AP[:, r] for r in runs]
        G = _core.block_gram([X, *B], [*B, *AB], nt)
        q = G.shape[1] // 2
        GB, GA = G[:, :q], G[:, q:]
        sc = 1.0 / np.sqrt(np.maximum(np.diag(GB[m:]), 1e-300))
        ss = np.outer(sc, sc)
        GA = np.block([[np.diag(lam), GA[:m] * sc], [(GA[:m] * sc).T, _sym(GA[m:] * ss)]])
        GB = np.block([[np.eye(m), GB[:m] * sc], [(GB[:m] * sc).T, _sym(GB[m:] * ss)]])
        s, Q = np.linalg.eigh(GB)
        keep = s > 1e-12 * s.max()
        M = Q[:, keep] / np.sqrt(s[keep])
        theta, V = np.linalg.eigh(_sym(M.T @ GA @ M))
        C = M @ V[:, :m]
        lam = theta[:m]
        # new blocks in place (P's active columns are views of P: row r of every input is
        # read before row r of the output is written): P = [W P] Cb, X = X Cx + P, and the
        # same for AP, AX (four n x m blocks in all; fresh ones cost page faults)
        if P is None:
            P, AP = np.empty((n, m)), np.empty((n, m))
        Cb = C[m:] * sc[:, None]  # coefficients of the unscaled [W P] columns
        _core.block_lincomb(B, Cb, P, 0.0, None, nt)
        _core.block_lincomb([X], C[:m], X, 0.0, P, nt)
        _core.block_lincomb(AB, Cb, AP, 0.0, None, nt)
        _core.block_lincomb([AX], C[:m], AX, 0.0, AP, nt)


def _sym(G: np.ndarray) -> np.ndarray:
    return (G + G.T) * 0.5


def _lsym_smallest_amg(W: sp.csr_matrix, d: np.ndarray, Z: np.ndarray, perm: np.ndarray,
                       kk: int, tol: float, max_iter: int, seed: int, nt: int):
    """The kk smallest non-null eigenpairs of L_sym by multilevel LOBPCG + AMG.

    Nodes are renumbered by the reverse Cuthill-McKee order ``perm`` first (block products
    on a kNN graph in data order are bound by cache misses; banded, they run ~10x faster);
    ``L_sym`` is built renumbered in one C++ pass (``_core.permuted_lsym``). Returns
    (eigenvalues (kk,), eigenvectors (n, kk), residuals (kk,), iterations, matvecs,
    converged).
    """
    with single_threaded_blas():
        return _lsym_smallest_amg_run(W, d, Z, perm, kk, tol, max_iter, seed, nt)


def _lsym_smallest_amg_run(W, d, Z, perm, kk, tol, max_iter, seed, nt):
    n = W.shape[0]
    dp, Zp = d[perm], Z[perm]
    ip, ix, val = _core.permuted_lsym(W.indptr, W.indices, W.data, d, perm, nt)
    L = sp.csr_matrix((val, ix, ip), shape=(n, n))  # L_sym renumbered, sorted columns
    b = np.where(dp > 0, np.sqrt(dp), 1.0)
    levels = _amg_hierarchy(L, b, nt)
    ncomp = Z.shape[1]
    m = min(kk + max(_AMG_GUARD, kk // 4), n - ncomp)
    X = levels[-1].V[:, :m + ncomp]  # all of them if the coarsest level is that small
    cyc = _amg_cycle(levels)
    rng = np.random.default_rng(seed)
    n_mv = 0
    for i in range(len(levels) - 2, -1, -1):
        X = _spmm(levels[i].P, X, nt)
        if X.shape[1] < m + ncomp:  # pad with random vectors
            X = np.hstack([X, rng.standard_normal((X.shape[0], m + ncomp - X.shape[1]))])
        T = functools.partial(cyc.apply, i, cycles=_AMG_CYCLES, n_jobs=nt)
        if i > 0:
            _, X, _, _, _, mv = _lobpcg(levels[i].A, X, T, None, X.shape[1], 0.0,
                                        _AMG_COARSE_ITER, nt)
        else:
            lam, X, res, n_iter, conv, mv = _lobpcg(L, X, T, Zp, kk, tol, max_iter, nt)
        n_mv += mv
    if len(levels) == 1:  # small graph: one level, start from its exact eigenvectors
        X = np.hstack([X, rng.standard_normal((n, max(0, m + ncomp - X.shape[1])))])
        T = functools.partial(cyc.apply, 0, cycles=_AMG_CYCLES, n_jobs=nt)
        lam, X, res, n_iter, conv, n_mv = _lobpcg(L, X, T, Zp, kk, tol, max_iter, nt)
    if not conv:
        return None, None, None, n_iter, n_mv, False
    V = np.empty((n, kk))
    V[perm] = X[:, :kk]
    return lam[:kk], V, res[:kk], n_iter, n_mv, True


def _lsym_smallest(W: sp.csr_matrix, k: int, *, tol=None, random_state=None, n_jobs=None,
                   cheb_degree: int | None = None, cheb_cut: float = -2.0,
                   max_iter: int = 1000, method: str = "auto"):
    """k smallest eigenpairs of L_sym = I - N, null space put in exactly.

    ``method``: ``"lanczos"`` (largest of N by filtered thick-restart Lanczos),
    ``"lobpcg-amg"`` (multilevel LOBPCG + AMG; falls back to Lanczos if it does not
    converge in ``_AMG_MAX_ITER`` iterations) or ``"auto"`` (LOBPCG + AMG from
    ``_AMG_MIN_N`` nodes on). Returns (eigenvalues ascending (k,), eigenvectors (n, k), d,
    converged, info dict). A ``cupyx.scipy.sparse`` ``W`` runs on the GPU
    (``_spectral_gpu.lsym_smallest``, Lanczos whatever ``method``).
    """
    if method not in ("auto", "lanczos", "lobpcg-amg"):
        raise ValueError(f"method={method!r}; choose 'auto', 'lanczos' or 'lobpcg-amg'")
    if _on_gpu(W):
        from . import _spectral_gpu

        return _spectral_gpu.lsym_smallest(W, k, tol=_check_tol(tol, np.float64),
                                           seed=_seed(random_state), max_iter=max_iter)
    n = W.shape[0]
    d = np.asarray(W.sum(axis=1), dtype=np.float64).ravel()
    # RCM order (for the LOBPCG path) and components in one C++ sweep
    perm, labels, ncomp = _core.rcm_components(W.indptr, W.indices)
    Z = _null_space(labels, ncomp, d)
    info = {"components": ncomp, "n_matvec": 0, "n_iter": 0}
    if ncomp >= k:
        return np.zeros(k), Z[:, :k], d, True, info
    kk = k - ncomp
    if kk > n - ncomp - 1:
        raise ValueError(f"{k} eigenpairs requested but the graph has only {n} nodes "
                         f"(and {ncomp} components)")
    tol = _check_tol(tol, np.float64)
    if method == "lobpcg-amg" or (method == "auto" and n >= _AMG_MIN_N):
        w, V, res, n_iter, n_mv, conv = _lsym_smallest_amg(
            W, d, Z, perm, kk, tol, _AMG_MAX_ITER, _seed(random_state), check_n_jobs(n_jobs))
        if conv:
            info.update(n_matvec=int(n_mv), n_iter=int(n_iter), residuals=res,
                        method="lobpcg-amg")
            return np.concatenate([np.zeros(ncomp), w]), np.hstack([Z, V]), d, True, info
    info["method"] = "lanczos"
    N, _ = _normalized_adjacency(W)
    deg = _CHEB_DEGREE if cheb_degree is None else int(cheb_degree)
    N.sort_indices()
    index64 = N.indptr.dtype == np.int64
    ip, ix = (N.indptr, N.indices) if index64 else (N.indptr.astype(np.int32),
                                                    N.indices.astype(np.int32))
    scale = None
    if W.nnz and np.all(W.data == W.data[0]):
        # unweighted graph: N = S P S with the pattern P and s = 1 / sqrt(row counts)
        cnt = np.diff(N.indptr).astype(np.float64)
        scale = np.where(cnt > 0, 1.0 / np.sqrt(np.where(cnt > 0, cnt, 1.0)), 0.0)
    w, V, res, n_iter, n_mv, conv, anorm, cut = _core.eigsh_f64(
        N.data, ip, ix, index64, None, n, None, np.ascontiguousarray(Z), kk, 0, tol, max_iter, 0,
        1.0, deg, -1.0, 1.0, cheb_cut, False, _seed(random_state), check_n_jobs(n_jobs), scale)
    info.update(n_matvec=int(n_mv), n_iter=int(n_iter), residuals=res, cheb_cut=float(cut))
    V = V.reshape(n, kk)
    lam = np.concatenate([np.zeros(ncomp), 1.0 - w[::-1]])
    vecs = np.hstack([Z, V[:, ::-1]])
    if not conv:
        warnings.warn(f"the Laplacian eigensolver did not converge in {n_iter} restart cycles "
                      f"(largest residual {res.max():.3g}, tol {tol:.3g})", RuntimeWarning,
                      stacklevel=3)
    return lam, vecs, d, bool(conv), info


def _sign_flip(U):
    """Make the largest-|.| entry of each column positive (as scikit-learn does)."""
    xp = _xp(U)
    idx = xp.argmax(xp.abs(U), axis=0)
    signs = xp.sign(U[idx, xp.arange(U.shape[1])])
    signs[signs == 0] = 1
    return U * signs


# ----------------------------------------------------------------------------- estimators

def _on_gpu(X) -> bool:
    """True for CuPy arrays and ``cupyx.scipy.sparse`` matrices (never imports CuPy)."""
    return is_gpu_array(X) or type(X).__module__.startswith("cupyx.")


def _compute_side(device, X, who: str):
    """``(gpu_in, where)``: whether ``X`` is on the device, and where the fit runs."""
    if device not in _gpu.DEVICES:
        raise ValueError(f"device={device!r}; choose 'auto', 'cpu' or 'cuda'")
    gpu_in = _on_gpu(X)
    where = ("cuda" if gpu_in else "cpu") if device == "auto" else device
    if where == "cuda":
        _gpu.require_cuda(who)
    return gpu_in, where


def _build_affinity(X, affinity: str, n_neighbors: int, kernel, n_jobs, where: str):
    """Validated float64 CSR affinity on the compute side ``where`` (SciPy or cupyx)."""
    if affinity not in _AFFINITIES:
        raise ValueError(f"affinity={affinity!r}; choose 'knn', 'adaptive' or 'precomputed'")
    if affinity == "precomputed":
        if not (sp.issparse(X) or type(X).__module__.startswith("cupyx.")):
            raise TypeError(f"affinity='precomputed' needs a sparse (n, n) affinity matrix; "
                            f"got {type(X).__name__}")
        X = _move(X, where == "cuda")
        if where == "cuda":
            from . import _spectral_gpu

            return _spectral_gpu.affinity_csr(X, "X")
        return _affinity_csr(X, "X")
    X = _on_device(X, where, "X")
    n = X.shape[0]
    if n < 3:
        raise ValueError(f"X has {n} samples; at least 3 are needed")
    k = check_int(n_neighbors, "n_neighbors", low=1, high=n - 1,
                  hint=f" (X has {n} samples)")
    if affinity == "adaptive":
        G = knn_graph(X, k, kernel="adaptive", n_jobs=n_jobs)
    elif kernel is None:
        G = knn_graph(X, k, mode="connectivity", n_jobs=n_jobs)
    else:
        G = knn_graph(X, k, kernel=kernel, n_jobs=n_jobs)
    return G.astype(np.float64) if where == "cuda" else sp.csr_matrix(G, dtype=np.float64)


class LaplacianEigenmap:
    """Laplacian eigenmap (Belkin & Niyogi 2003) with the normalised Laplacian.

    Builds an affinity graph, finds the ``n_components (+1)`` smallest eigenpairs of
    ``L_sym = I - D^-1/2 W D^-1/2`` (below 10,000 nodes as the largest of
    ``D^-1/2 W D^-1/2`` by Lanczos, from 10,000 on by LOBPCG with an algebraic-multigrid
    preconditioner; see the module notes) and returns ``D^-1/2 u`` for each eigenvector
    ``u``, i.e. the eigenvectors of the random-walk Laplacian, each with its
    largest-magnitude entry made positive. This is what
    ``sklearn.manifold.spectral_embedding`` computes on the same graph (up to sign).

    Parameters
    ----------
    n_components : int, default 2
    n_neighbors : int, default 15
        Neighbours per point of the kNN graph (ignored for ``"precomputed"``).
    affinity : {"knn", "adaptive", "precomputed"}
        ``"knn"``: union-symmetrised kNN graph, 0/1 weights (or ``kernel`` weights);
        ``"adaptive"``: self-tuning Gaussian kernel on the kNN graph
        (``knn_graph(kernel="adaptive")``); ``"precomputed"``: ``X`` is a sparse symmetric
        affinity matrix.
    kernel : {None, "gaussian", "adaptive", "alpha_decay"}
        Edge weights for ``affinity="knn"`` (see :func:`geoml.knn_graph`); None: 0/1.
    drop_first : bool, default True
        Drop the trivial eigenvector (constant on a connected graph).
    tol : float, optional
        Eigensolver tolerance (relative residual, default 1e-10).
    random_state : int, Generator or None
    n_jobs : int, optional
    device : {"auto", "cpu", "cuda"}
        ``"auto"``: run on the GPU for CuPy ``X`` (or a ``cupyx.scipy.sparse`` affinity),
        else on the CPU; ``"cuda"`` sends NumPy/SciPy input to the GPU (kNN graph, then
        Lanczos with the basis on the device, see :func:`geoml.eigsh`), ``"cpu"`` brings
        device input to the host. Fitted attributes have the family of ``X`` (CuPy/cupyx for
        device input). The GPU solver has no Chebyshev filter (plain Lanczos on ``N``).

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of ``L_sym`` for the embedding's columns, ascending.
    affinity_matrix_ : scipy.sparse.csr_matrix
    n_components_found_ : int
        Connected components of the graph.

    Notes
    -----
    A disconnected graph gets a ``UserWarning`` (its first eigenvectors are component
    indicators; a precomputed graph with more components than ``n_components`` embeds
    poorly).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> t = np.linspace(0, 3, 200)
    >>> X = np.column_stack([np.cos(t), np.sin(t)])
    >>> emb = geoml.LaplacianEigenmap(n_components=1, n_neighbors=5, random_state=0)
    >>> Y = emb.fit_transform(X)
    >>> Y.shape
    (200, 1)
    >>> bool(abs(np.corrcoef(Y[:, 0], t)[0, 1]) > 0.95)
    True
    """

    def __init__(self, n_components: int = 2, n_neighbors: int = 15, *, affinity: str = "knn",
                 kernel: str | None = None, drop_first: bool = True, tol: float | None = None,
                 random_state=None, n_jobs: int | None = None, device: str = "auto"):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.affinity = affinity
        self.kernel = kernel
        self.drop_first = drop_first
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def _embed(self, W, n_components, drop_first, warn):
        n = W.shape[0]
        k = n_components + int(bool(drop_first))
        check_int(n_components, "n_components", low=1, high=n - 1 - int(bool(drop_first)),
                  hint=f" (the graph has {n} nodes)")
        lam, U, d, _, info = _lsym_smallest(W, k, tol=self.tol, random_state=self.random_state,
                                            n_jobs=self.n_jobs)
        if warn and info["components"] > 1:
            warnings.warn(f"the affinity graph has {info['components']} connected components; "
                          "the embedding separates them rather than describing each one",
                          UserWarning, stacklevel=3)
        xp = _xp(U)
        s = xp.where(d > 0, 1.0 / xp.sqrt(xp.where(d > 0, d, 1.0)), 1.0)
        Y = _sign_flip(U * s[:, None])
        if drop_first:
            Y, lam = Y[:, 1:], lam[1:]
        return Y, lam, info

    def fit(self, X, y=None) -> "LaplacianEigenmap":
        """Fit on ``X`` of shape (n_samples, n_features) (or the (n, n) sparse affinity)."""
        gpu_in, where = _compute_side(self.device, X, "LaplacianEigenmap")
        W = _build_affinity(X, self.affinity, self.n_neighbors, self.kernel, self.n_jobs, where)
        Y, lam, info = self._embed(W, self.n_components, self.drop_first, True)
        self.affinity_matrix_ = _move(W, gpu_in)
        self.embedding_, self.eigenvalues_ = _move(Y, gpu_in), _move(lam, gpu_in)
        self.n_components_found_ = info["components"]
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit and return ``embedding_`` of shape (n_samples, n_components)."""
        return self.fit(X).embedding_


class DiffusionMap:
    """Diffusion map (Coifman & Lafon 2006).

    With kernel ``K`` (the kNN affinity), ``q = K 1``, the alpha-normalised kernel
    ``K_a = Q^-alpha K Q^-alpha``, ``d = K_a 1`` and the Markov matrix ``P = D^-1 K_a``, the
    embedding is ``psi_i * lambda_i^t`` for the right eigenvectors ``psi_i`` of ``P`` with the
    ``n_components`` largest eigenvalues after the trivial ``lambda_0 = 1``. The eigenpairs
    come from the symmetric ``S = D^-1/2 K_a D^-1/2`` (``psi = D^-1/2 u``, scaled so that
    ``psi_0 = 1``, i.e. ``sum_j d_j psi_i(j)^2 = sum_j d_j``), by the Laplacian solver.
    ``alpha = 0`` is the classical normalised graph Laplacian, ``0.5`` Fokker-Planck,
    ``1`` Laplace-Beltrami (density-independent).

    Parameters
    ----------
    n_components : int, default 2
    n_neighbors : int, default 15
    alpha : float in [0, 1], default 1.0
    t : int or float >= 0, default 1
        Diffusion time.
    affinity : {"adaptive", "knn", "precomputed"}, default "adaptive"
        As in :class:`LaplacianEigenmap`; the default is the self-tuning Gaussian kernel.
    kernel : str, optional
        Edge weights for ``affinity="knn"`` (default "gaussian").
    tol, random_state, n_jobs, device
        As in :class:`LaplacianEigenmap`.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of ``P``, descending.
    affinity_matrix_ : scipy.sparse.csr_matrix

    Examples
    --------
    >>> import numpy as np, geoml
    >>> t = np.linspace(0, 3, 200)
    >>> X = np.column_stack([np.cos(t), np.sin(t)])
    >>> dm = geoml.DiffusionMap(n_components=2, n_neighbors=10, random_state=0).fit(X)
    >>> dm.embedding_.shape, bool(dm.eigenvalues_[0] < 1)
    ((200, 2), True)
    """

    def __init__(self, n_components: int = 2, n_neighbors: int = 15, *, alpha: float = 1.0,
                 t: float = 1, affinity: str = "adaptive", kernel: str | None = "gaussian",
                 tol: float | None = None, random_state=None, n_jobs: int | None = None,
                 device: str = "auto"):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.t = t
        self.affinity = affinity
        self.kernel = kernel
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def fit(self, X, y=None) -> "DiffusionMap":
        """Fit on ``X`` of shape (n_samples, n_features) (or the (n, n) sparse affinity)."""
        alpha = float(self.alpha)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha={self.alpha} must lie in [0, 1]")
        t = float(self.t)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"t={self.t} must be a non-negative number")
        gpu_in, where = _compute_side(self.device, X, "DiffusionMap")
        K = _build_affinity(X, self.affinity, self.n_neighbors, self.kernel, self.n_jobs, where)
        n = K.shape[0]
        check_int(self.n_components, "n_components", low=1, high=n - 2,
                  hint=f" (the graph has {n} nodes)")
        xp = _xp(K.data)
        q = xp.asarray(K.sum(axis=1)).ravel()
        qa = xp.where(q > 0, xp.where(q > 0, q, 1.0) ** -alpha, 0.0)
        Ka = _scale_both(K, qa)
        lam, U, d, _, _ = _lsym_smallest(Ka, self.n_components + 1, tol=self.tol,
                                         random_state=self.random_state, n_jobs=self.n_jobs)
        mu = 1.0 - lam[1:]  # eigenvalues of P after the trivial 1, descending
        s = xp.where(d > 0, 1.0 / xp.sqrt(xp.where(d > 0, d, 1.0)), 1.0)
        psi = _sign_flip(U * s[:, None]) * xp.sqrt(d.sum())
        scale = xp.asarray(np.sign(mu) * np.abs(mu) ** t)
        self.affinity_matrix_ = _move(K, gpu_in)
        self.eigenvalues_ = _move(mu, gpu_in)
        self.embedding_ = _move(psi[:, 1:] * scale, gpu_in)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit and return ``embedding_`` of shape (n_samples, n_components)."""
        return self.fit(X).embedding_


class SpectralClustering:
    """Spectral clustering (Ng, Jordan & Weiss 2001; Shi & Malik 2000).

    Embeds the points with the ``n_clusters`` smallest eigenvectors of the normalised Laplacian
    of a kNN affinity graph (``D^-1/2 u``, as :class:`LaplacianEigenmap` with
    ``drop_first=False``, like scikit-learn), then runs k-means in C++ (k-means++ seeding,
    ``n_init`` restarts, the lowest inertia wins).

    Parameters
    ----------
    n_clusters : int
    n_neighbors : int, default 15
    affinity : {"knn", "adaptive", "precomputed"}, default "knn"
    kernel : str, optional
        Edge weights for ``affinity="knn"`` (None: 0/1).
    n_init : int, default 10
        k-means restarts.
    max_iter : int, default 300
        Lloyd iterations per restart.
    tol : float, optional
        Eigensolver tolerance.
    random_state : int, Generator or None
    n_jobs : int, optional
    device : {"auto", "cpu", "cuda"}
        As in :class:`LaplacianEigenmap`; on the GPU the graph and the eigenvectors are
        computed on the device and k-means runs on the host (``n x n_clusters`` values copied).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), int64
    embedding_ : ndarray of shape (n_samples, n_clusters)
    eigenvalues_ : ndarray of shape (n_clusters,)
    affinity_matrix_ : scipy.sparse.csr_matrix
    inertia_ : float
        k-means inertia in the embedding.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.3, (50, 2)), rng.normal(5, 0.3, (50, 2))])
    >>> lab = geoml.SpectralClustering(2, n_neighbors=5, random_state=0).fit(X).labels_
    >>> bool(len(set(lab[:50])) == 1 and len(set(lab[50:])) == 1 and lab[0] != lab[50])
    True
    """

    def __init__(self, n_clusters: int = 8, n_neighbors: int = 15, *, affinity: str = "knn",
                 kernel: str | None = None, n_init: int = 10, max_iter: int = 300,
                 tol: float | None = None, random_state=None, n_jobs: int | None = None,
                 device: str = "auto"):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.affinity = affinity
        self.kernel = kernel
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def fit(self, X, y=None) -> "SpectralClustering":
        """Cluster ``X`` of shape (n_samples, n_features) (or the (n, n) sparse affinity)."""
        gpu_in, where = _compute_side(self.device, X, "SpectralClustering")
        W = _build_affinity(X, self.affinity, self.n_neighbors, self.kernel, self.n_jobs, where)
        n = W.shape[0]
        k = check_int(self.n_clusters, "n_clusters", low=2, high=n - 1,
                      hint=f" (the graph has {n} nodes)")
        n_init = check_int(self.n_init, "n_init", low=1)
        max_iter = check_int(self.max_iter, "max_iter", low=1)
        rng = np.random.default_rng(_seed(self.random_state))
        emb = LaplacianEigenmap(k, affinity="precomputed", drop_first=False, tol=self.tol,
                                random_state=rng, n_jobs=self.n_jobs)
        Y, lam, _ = emb._embed(W, k, False, False)
        Y = np.ascontiguousarray(_move(Y, False), dtype=np.float64)  # k-means runs on the host
        ktol = 1e-4 * float(np.mean(np.var(Y, axis=0)))
        labels, centers, inertia, _ = _core.kmeans(Y, k, n_init, max_iter, ktol,
                                                   _seed(rng), check_n_jobs(self.n_jobs))
        self.affinity_matrix_ = _move(W, gpu_in)
        self.embedding_ = _move(Y, gpu_in)
        self.eigenvalues_ = _move(lam, gpu_in)
        self.labels_ = _move(labels, gpu_in)
        self.inertia_ = float(inertia)
        return self

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X).labels_
