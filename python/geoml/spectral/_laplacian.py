"""Graph Laplacians, normalised adjacencies and their closed-form null spaces."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .._validation import (
    as_real,
    check_bool,
    reject_gpu,
)
from ._eigsh import _as_csr, _symmetry_error, _unshared

_KINDS = ("symmetric", "combinatorial", "random_walk")


def _affinity_csr(W, name: str = "W") -> sp.csr_matrix:
    """Validated symmetric, non-negative CSR affinity without diagonal entries."""
    reject_gpu(W, name, "laplacian")
    if not sp.issparse(W):
        W = as_real(np.asarray(W), name)
        if W.ndim != 2:
            raise ValueError(f"{name} must be a 2-D square matrix; got shape {W.shape}")
    W0, W = W, _as_csr(W, name)
    if W.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if W.nnz and W.data.min() < 0:
        raise ValueError(f"{name} has negative entries; affinities must be >= 0")
    if _symmetry_error(W) > 1e-8:
        raise ValueError(
            f"{name} is not symmetric; symmetrise it first, e.g. "
            f"{name}.maximum({name}.T) or ({name} + {name}.T) / 2"
        )
    if W.diagonal().any():
        W = sp.csr_matrix(W - sp.diags(W.diagonal()))
    if W.nnz and not W.data.all():
        W = _unshared(W, W0)  # in place below: not on the caller's arrays
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
        Degrees (only with ``return_diag=True``), for every kind (SciPy's
        ``csgraph.laplacian(normed=True, return_diag=True)`` returns their square roots,
        with 1 for an isolated node).

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
    return_diag = check_bool(return_diag, "return_diag")
    W = _affinity_csr(W)
    d = d_out = _degrees(W)
    iso = d == 0
    if kind == "combinatorial":
        L = sp.diags(d.astype(W.dtype), format="csr") - W
    else:
        shift = _normalised_shift(d, kind)
        if shift:  # the same operator from W / 4^e (degrees out of [2^-400, 2^400])
            W = sp.csr_matrix((np.ldexp(W.data, -shift), W.indices, W.indptr), W.shape)
            d = np.ldexp(d, -shift)
        dinv = np.where(iso, 0.0, 1.0 / np.where(iso, 1.0, d))
        if kind == "symmetric":
            s = np.sqrt(dinv)
            M = sp.diags(s) @ W @ sp.diags(s)
        else:
            M = sp.diags(dinv) @ W
        L = sp.diags((~iso).astype(np.float64)) - M
    L = sp.csr_matrix(L, dtype=W.dtype)
    L.sort_indices()
    return (L, d_out) if return_diag else L


def _even_shift(dmax: float) -> int:
    """0 for a largest degree ``dmax`` within ``[2^-400, 2^400]`` (or not positive), else the
    even power of two ``2e`` about ``log2 dmax``: operators that do not depend on the scale
    of W are formed from ``W / 2^(2e)``, whose ``d^-1/2`` scale exactly."""
    if not dmax > 0 or 2.0**-400 <= dmax <= 2.0**400:
        return 0
    return 2 * (int(np.frexp(dmax)[1]) // 2)


def _normalised_shift(d: np.ndarray, kind: str) -> int:
    """The even power of two ``2e`` by which a normalised Laplacian (which does not depend on
    the scale of W) is formed from ``W / 2^(2e)``: 0 for degrees within ``[2^-400, 2^400]``,
    else about ``log2 max(d)`` (subnormal weights: ``1 / d`` overflowed to inf, and NaN
    entries or eigenvalues followed). ValueError when the degrees span a range that no
    scale fits (``1 / d`` of the smallest positive degree would still overflow)."""
    dmax = float(d.max(initial=0.0))
    if not dmax > 0:
        return 0
    shift = _even_shift(dmax)
    dpos = float(d[d > 0].min())
    if math.ldexp(dpos, -shift) < 2.0**-1000:
        raise ValueError(
            f"the degrees (row sums of W) span {dpos:.3g} to {dmax:.3g}: too wide a range for "
            f"the {kind} Laplacian in float64 (1 / d overflows at the smallest); raise the "
            "smallest weights, drop the nearly isolated nodes, or use kind='combinatorial'"
        )
    return shift


def _degrees(W) -> np.ndarray:
    """Row sums of ``W`` (SciPy sparse or NumPy, shape (n, n)) accumulated in float64, shape
    (n,). SciPy and NumPy sum float32 values in float32: their rounding (~1e-7 relative) put
    the null vector ``D^1/2 1`` off the float64 operator's and stalled a Laplacian solve at
    residual ~1e-9 (1,000 restart cycles against tol 1e-10)."""
    if W.dtype != np.float64:
        W = W.astype(np.float64)
    return np.asarray(W.sum(axis=1)).ravel()


def _normalized_adjacency(W: sp.csr_matrix):
    """N = D^-1/2 W D^-1/2 (zero rows for isolated nodes) and d."""
    d = _degrees(W)
    s = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    N = W.tocsr(copy=True).astype(np.float64)
    N.data *= np.repeat(s, np.diff(N.indptr)) * s[N.indices]
    return N, d


def _scale_both(W, s):
    """CSR matrix ``s_i W_ij s_j`` for a SciPy or cupyx ``W`` and ``s`` on the same side,
    exactly symmetric for a symmetric ``W``: ``s_i s_j`` first (``(W_ij s_i) s_j`` rounds apart
    from ``(W_ji s_j) s_i``: in float32 an asymmetry of ~1e-7 stalled the Lanczos solve)."""
    C = W.tocoo()
    return type(C)((C.data * (s[C.row] * s[C.col]), (C.row, C.col)), shape=W.shape).tocsr()


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
