"""Heat-geodesic distances and embeddings (HeatGeo, Huguet et al. 2023)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._base import BaseEstimator, EmbeddingMixin, NotFittedError
from .._validation import (
    as_float_array,
    check_int,
    check_n_jobs,
    check_random_state,
    check_real,
    check_tol,
    random_seed,
    reject_gpu,
    single_threaded_blas,
    truncate_to_samples,
    user_stacklevel,
    validate_random_state,
)
from ..spectral._laplacian import _affinity_csr
from ._heat import _MAX_ORDER, _check_times, _heat_action, heat_kernel
from ._mds import MDS, _place, say

# HeatGeo's floor inside the logarithm (heatgeo: np.log(H + 1e-16)): distances saturate at
# sqrt(-4 t log 1e-16) where the heat kernel is below it (far or disconnected pairs).
_LOG_FLOOR = 1e-16
# graphtools' kernel threshold: alpha-decay affinities below it are dropped
_KERNEL_THRESH = 1e-4


def _check_decay(decay) -> float | None:
    """The kernel decay of graphtools: a positive number, or None (graphtools' plain kNN
    kernel, no alpha decay); ``TypeError`` for anything else, ``ValueError`` out of range."""
    if decay is None:
        return None
    value = check_real(decay, "decay", what="a positive number or None (the plain kNN kernel)")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"decay must be a positive number or None; got {decay!r}")
    return value


def alpha_decay_graph(
    X,
    n_neighbors: int = 10,
    decay: float | None = 40.0,
    *,
    method: str = "exact",
    random_state=None,
    n_jobs=None,
):
    """PHATE / graphtools alpha-decay affinity graph (the graph HeatGeo and PHATE build).

    ``K_ij = exp(-(d_ij / sigma_i)^decay)`` with ``sigma_i`` the distance from ``i`` to its
    ``n_neighbors``-th neighbour (``graphtools``' ``knn``, which counts the point itself as
    well: ``knn + 1`` with self), kept where ``K_ij >= 1e-4`` (the neighbour search widens until
    every row's kernel has dropped below that, as graphtools does), then ``W = (K + K^T) / 2``
    without self-loops. Built on :func:`geoml.knn_graph` (exact neighbours; graphtools' PCA
    to 40 dimensions is not applied).

    ``decay=None`` is graphtools' (and phate's, heatgeo's) kernel without alpha decay: the
    0/1 kNN kernel ``K_ij = 1`` for ``j`` among the ``n_neighbors`` nearest neighbours of
    ``i`` (graphtools' ``kneighbors_graph`` of ``knn + 1`` points with the point itself),
    no bandwidth and no threshold, then ``W = (K + K^T) / 2`` without self-loops (entries 1
    for mutual neighbours, 1/2 for one-sided ones): ``knn_graph(X, n_neighbors,
    mode="connectivity", symmetrize="mean")``. This is not :func:`geoml.knn_graph`'s
    ``decay=None``, which there means its default (``kernel="alpha_decay", decay=None`` is
    the alpha-decay kernel with decay 40).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_neighbors : int
        ``1 <= n_neighbors < n_samples``.
    decay : float or None
        Kernel decay (alpha), > 0; None: the plain kNN kernel (see above).
    method : str, default "exact"
        Neighbour search of :func:`geoml.knn_graph` ("exact", "auto", "nndescent", ...).
    random_state : optional
        Seed of an approximate search.
    n_jobs : int, optional

    Returns
    -------
    W : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Symmetric, zero diagonal, in X's float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.diffusion import alpha_decay_graph
    >>> X = np.random.default_rng(0).standard_normal((100, 3))
    >>> W = alpha_decay_graph(X, 5)
    >>> W.shape, bool(abs(W - W.T).max() == 0), bool(W.diagonal().max() == 0)
    ((100, 100), True, True)
    """
    from ..neighbors import knn_graph

    X = as_float_array(X, "X")
    n = X.shape[0]
    k = check_int(n_neighbors, "n_neighbors", low=1, high=n - 1, hint=f" ({n} samples)")
    decay = _check_decay(decay)
    validate_random_state(random_state)
    if decay is None:
        return _knn_kernel_graph(X, k, method, random_state, n_jobs)
    ks = min(n - 1, 3 * k)
    if method == "exact":
        K = _alpha_decay_exact(X, k, ks, decay, n_jobs)
    while method != "exact":
        K = knn_graph(
            X,
            ks,
            symmetrize=None,
            kernel="alpha_decay",
            k_sigma=k,
            decay=decay,
            n_jobs=n_jobs,
            method=method,
            random_state=random_state,
        )
        if K.nnz == n * ks:
            last = K.data.reshape(n, ks).min(axis=1)  # the farthest neighbour's affinity
        else:  # an approximate search may leave rows short
            last = np.ones(n)
            rows = np.flatnonzero(np.diff(K.indptr))
            last[rows] = np.minimum.reduceat(K.data, K.indptr[rows])
        if ks == n - 1 or (last < _KERNEL_THRESH).all():
            break
        ks = min(n - 1, 2 * ks)
    K.data[K.data < _KERNEL_THRESH] = 0
    K.eliminate_zeros()
    W = ((K + K.T) * 0.5).tocsr()
    W.sort_indices()
    return W


def _knn_kernel_graph(X, k: int, method: str, random_state, n_jobs) -> sp.csr_matrix:
    """graphtools' kernel with ``decay=None``: the 0/1 kNN kernel ``K`` (``k`` neighbours
    per row, the point itself excluded), ``(K + K^T) / 2``, zero diagonal, X's dtype."""
    from ..neighbors import knn_graph

    if method != "exact":  # knn_graph's "mean" symmetrisation is (K + K^T) / 2
        W = knn_graph(
            X,
            k,
            mode="connectivity",
            symmetrize="mean",
            n_jobs=n_jobs,
            method=method,
            random_state=random_state,
        )
        return W.astype(X.dtype, copy=False)
    n = X.shape[0]
    idx, _ = _knn_exact(X, k, n_jobs)  # the exact neighbours of the alpha-decay path
    data = np.ones(idx.size, dtype=X.dtype)
    K = sp.csr_matrix((data, idx.ravel(), np.arange(0, idx.size + 1, k)), shape=(n, n))
    W = ((K + K.T) * 0.5).tocsr().astype(X.dtype, copy=False)
    W.sort_indices()
    return W


# Fraction of rows that must widen for alpha_decay_graph to search all rows again
_WIDEN_ALL = 0.4
# Up to this many features the exact neighbours come from a k-d tree (SciPy's cKDTree)
_KDTREE_DIMS = 3
# The brute-force search of alpha_decay_graph starts at this many neighbours (at least)
_BRUTE_START = 32


def _uses_kdtree(X) -> bool:
    return X.shape[1] <= _KDTREE_DIMS and X.shape[0] >= 1000 and X.dtype == np.float64


def _knn_exact(X, k: int, n_jobs):
    """Exact ``k`` nearest neighbours of every row of X, itself excluded: geoml's brute-force
    search, or for data of at most ``_KDTREE_DIMS`` features SciPy's k-d tree (the swiss roll
    at n = 20,000: 0.06 s instead of 0.34 s, one thread), whose distances are the exact
    Euclidean ones as well; ties in another order (both exact)."""
    from ..neighbors import knn

    n = X.shape[0]
    if not _uses_kdtree(X):
        return knn(X, k, n_jobs=n_jobs)
    from scipy.spatial import cKDTree

    nt = check_n_jobs(n_jobs)
    dist, idx = cKDTree(X).query(X, k + 1, workers=nt if nt > 0 else max(1, _core.max_threads()))
    rows = np.arange(n)[:, None]
    keep = idx != rows
    keep[keep.all(axis=1), -1] = False  # self not among them (duplicates): drop the last
    idx = idx[keep].reshape(n, k).astype(np.int64)
    dist = dist[keep].reshape(n, k)
    return idx, dist


def _alpha_decay_values(dist, sigma, decay: float) -> np.ndarray:
    """The alpha-decay affinities ``exp(-(dist / sigma)^decay)`` of a block of neighbour
    distances, ``sigma`` one bandwidth per row (an overflow of the power gives 0)."""
    with np.errstate(over="ignore"):
        return np.exp(-((dist / sigma[:, None]) ** decay))


def _alpha_decay_exact(X, k: int, ks: int, decay: float, n_jobs) -> sp.csr_matrix:
    """The directed alpha-decay kernel (n, n) of the exact ``ks`` nearest neighbours, widened
    row by row: only the rows whose farthest kept neighbour still has an affinity
    ``>= 1e-4`` are searched again, with twice the neighbours (graphtools widens the same
    rows by a radius search), where a global widening repeats the whole search (three
    searches to 60 neighbours on phate's 100-dimensional tree)."""
    from ..neighbors import knn

    n = X.shape[0]
    if not _uses_kdtree(X):
        # the brute-force search costs about the same for any k up to 32 (the score tiles,
        # not the top-k heaps, take the time: 1.04 s for 15 neighbours, 1.08 s for 30 on
        # the 100-d DLA tree at n = 20,000), and the kept entries (kernel >= 1e-4) do not
        # depend on where the search starts: start at 32 neighbours, which spares the tree
        # its second search (58 % of its rows need more than 15)
        ks = max(ks, min(n - 1, _BRUTE_START))
    idx, dist = _knn_exact(X, ks, n_jobs)
    sigma = np.maximum(dist[:, k - 1], np.finfo(dist.dtype).tiny)

    def kernel(dd, rows):
        return _alpha_decay_values(dd, sigma[rows], decay)

    val = kernel(dist, slice(None))
    row_idx, row_val = [idx], [val]  # per round: the rows' neighbours and affinities
    rows_of = [np.arange(n)]
    bad = np.flatnonzero(val[:, -1] >= _KERNEL_THRESH)
    while bad.size and ks < n - 1:
        ks = min(n - 1, 2 * ks)
        if bad.size >= _WIDEN_ALL * n:
            # most rows widen: one search of all rows, each pair scored once, costs less
            # than a query search of the bad rows (which scores every pair): 58 % of the
            # n = 20,000 DLA tree's rows widen from 15 to 30 neighbours, 1.36 s as queries,
            # 1.08 s as one full search (one thread)
            i2, d2 = _knn_exact(X, ks, n_jobs)
            i2, d2 = i2[bad], d2[bad]
        else:
            i2, d2 = knn(X, ks + 1, Y=X[bad], exclude_self=False, n_jobs=n_jobs)
            keep = i2 != bad[:, None]
            keep[keep.all(axis=1), -1] = False  # self not among them (duplicates): drop last
            i2 = i2[keep].reshape(bad.size, ks)
            d2 = d2[keep].reshape(bad.size, ks)
        v2 = kernel(d2, bad)
        row_idx.append(i2)
        row_val.append(v2)
        rows_of.append(bad)
        bad = bad[v2[:, -1] >= _KERNEL_THRESH]
    # every row from its last (widest) round
    last = np.zeros(n, dtype=np.int64)
    for r, rows in enumerate(rows_of):
        last[rows] = r
    counts = np.array([row_idx[r].shape[1] for r in range(len(rows_of))])[last]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    itype = np.int32 if max(n, int(indptr[-1])) < 2**31 - 1 else np.int64
    indptr = indptr.astype(itype)
    indices = np.empty(indptr[-1], dtype=itype)
    data = np.empty(indptr[-1], dtype=dist.dtype)
    for r, rows in enumerate(rows_of):
        sel = rows[last[rows] == r]
        if not sel.size:
            continue
        pos = np.searchsorted(rows, sel)
        w = row_idx[r].shape[1]
        at = (indptr[sel][:, None] + np.arange(w)[None, :]).ravel()
        indices[at] = row_idx[r][pos].ravel()
        data[at] = row_val[r][pos].ravel()
    K = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    K.sort_indices()
    return K


def _alpha_decay_to_data(X, Y, k: int, decay: float | None, n_jobs):
    """graphtools' ``extend_to_data``: the transitions (m, n) from new points ``Y`` to the
    fitted points ``X``, and the fitted point equal to each row of ``Y`` (-1 where none).

    The kernel of :func:`alpha_decay_graph` from the new side: ``K_yj = exp(-(d_yj /
    sigma_y)^decay)`` with ``sigma_y`` the distance from ``y`` to its ``k``-th nearest fitted
    point (nothing excluded: ``y`` is not among them), the exact neighbours searched wider row
    by row until every row's farthest kept affinity is below 1e-4, entries below 1e-4
    dropped, then each row divided by its sum (no symmetrisation: the fitted points' rows are
    not changed). Every row keeps its nearest neighbour (affinity ``>= exp(-1)``). ``Y`` in
    ``X``'s dtype; the transitions are float64. Memory O(m k) besides the search's.
    ``decay=None`` (graphtools' plain kNN kernel): ``1 / k`` on each row's ``k`` nearest
    fitted points (graphtools' ``kneighbors_graph`` of ``knn`` points, l1-normalised)."""
    from ..neighbors import knn

    n, m = X.shape[0], Y.shape[0]
    ks = k if decay is None else min(n, max(3 * k, _BRUTE_START))
    idx, dist = knn(X, ks, Y=Y, exclude_self=False, n_jobs=n_jobs)
    sigma = np.maximum(dist[:, k - 1], np.finfo(dist.dtype).tiny)
    # an exact duplicate is at distance 0 (the distances are recomputed exactly); the
    # lowest such index among the first search's neighbours (all of them unless more than
    # ks fitted points are equal), confirmed element by element (a tiny difference may
    # square to 0)
    zero = dist == 0
    same = np.where(zero, idx, n).min(axis=1)
    has = np.flatnonzero(same < n)
    same[same == n] = -1
    if has.size:
        ok = (Y[has] == X[same[has]]).all(axis=1)
        same[has[~ok]] = -1
    if decay is None:
        T = sp.csr_matrix(
            (np.full(m * k, 1.0 / k), idx.ravel(), np.arange(0, m * k + 1, k)), shape=(m, n)
        )
        T.sum_duplicates()
        T.sort_indices()
        return T, same
    val = _alpha_decay_values(dist, sigma, decay)
    rows_of, row_idx, row_val = [np.arange(m)], [idx], [val]
    bad = np.flatnonzero(val[:, -1] >= _KERNEL_THRESH)
    while bad.size and ks < n:
        ks = min(n, 2 * ks)
        i2, d2 = knn(X, ks, Y=Y[bad], exclude_self=False, n_jobs=n_jobs)
        v2 = _alpha_decay_values(d2, sigma[bad], decay)
        rows_of.append(bad)
        row_idx.append(i2)
        row_val.append(v2)
        bad = bad[v2[:, -1] >= _KERNEL_THRESH]
    last = np.zeros(m, dtype=np.int64)  # every row from its last (widest) round
    for r, rows in enumerate(rows_of):
        last[rows] = r
    ri, ci, vi = [], [], []
    for r, rows in enumerate(rows_of):
        pos = np.flatnonzero(last[rows] == r)
        if not pos.size:
            continue
        w = row_idx[r].shape[1]
        ri.append(np.repeat(rows[pos], w))
        ci.append(row_idx[r][pos].ravel())
        vi.append(row_val[r][pos].ravel().astype(np.float64))
    r_, c_, v_ = (np.concatenate(a) for a in (ri, ci, vi))
    keep = v_ >= _KERNEL_THRESH
    T = sp.csr_matrix((v_[keep], (r_[keep], c_[keep])), shape=(m, n))
    T.sum_duplicates()
    T.sort_indices()
    T = sp.csr_matrix(sp.diags(1.0 / np.asarray(T.sum(axis=1)).ravel()) @ T)
    return T, same


def _transform_new(est, X, name: str, check_affinity, n_jobs, basis) -> np.ndarray:
    """``transform`` of PHATE and HeatGeo (see their docstrings): the fitted data (the same
    shape and values) gives a copy of ``embedding_``; other data points the transitions of
    :func:`_alpha_decay_to_data` (the fit's ``k`` and ``decay``) times ``basis()`` (m, c), a
    row equal to a fitted point that point's ``embedding_`` row. A precomputed affinity
    transforms the fitted one only."""
    if not hasattr(est, "_fit_data"):
        raise NotFittedError(f"this {name} is not fitted yet; call fit(X) first")
    reject_gpu(X, "X", name)
    fit_X, k, decay = est._fit_data
    if fit_X is None:  # affinity="precomputed"
        A = check_affinity(X)
        W = est.affinity_matrix_
        if A.shape == W.shape and (A != W).nnz == 0:
            return est.embedding_.copy()
        raise ValueError(
            f"{name} was fitted on a precomputed affinity matrix: transform accepts that "
            f"matrix only (shape {W.shape}); new points have no affinities to the fitted ones. "
            "Fit on the data points (affinity='alpha_decay') to transform new points"
        )
    Y = np.asarray(X) if not hasattr(X, "ndim") else X
    if getattr(Y, "ndim", 2) == 1:
        raise ValueError(
            f"X must be a 2-D array; got shape {Y.shape}. Reshape your data, e.g. "
            "X.reshape(1, -1) for one sample"
        )
    Y = as_float_array(X, "X")
    if Y.shape[1] != fit_X.shape[1]:
        raise ValueError(
            f"X has {Y.shape[1]} features, but {name} is expecting {fit_X.shape[1]} features "
            "as input"
        )
    if Y.shape == fit_X.shape and np.array_equal(Y, fit_X):
        return est.embedding_.copy()
    T, same = _alpha_decay_to_data(fit_X, Y.astype(fit_X.dtype, copy=False), k, decay, n_jobs)
    out = np.ascontiguousarray(T @ basis(), dtype=np.float64)
    rows = np.flatnonzero(same >= 0)
    out[rows] = est.embedding_[same[rows]]
    return out


def _owned(Xf: np.ndarray, X) -> np.ndarray:
    """The validated data ``Xf`` as the estimator keeps it for ``transform``: a copy where it
    may share memory with the caller's ``X`` (a change to the caller's array after ``fit``
    must not change what ``transform`` compares and searches)."""
    if isinstance(X, (list, tuple)):  # converted: nothing shared
        return Xf
    try:
        shared = np.may_share_memory(Xf, np.asarray(X))
    except Exception:  # anything odd: copy
        shared = True
    return Xf.copy() if shared else Xf


def _input_graph(X, precomputed: bool, name: str, check_affinity, build, n_components):
    """The graph set-up PHATE and HeatGeo share: ``X`` is the (n, n) affinity matrix
    (``precomputed``: validated by ``check_affinity(X)``) or data points (``build(X)`` builds
    the graph); at least 2 samples; ``n_components`` checked against them. Returns
    (graph, n_features, n_components)."""
    if precomputed:
        W = check_affinity(X)
    else:
        X = as_float_array(X, "X")
        if X.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 samples; got n_samples = {X.shape[0]}")
        W = build(X)
    n = W.shape[0]
    if n < 2:
        raise ValueError(f"{name} needs at least 2 samples; got n_samples = {n}")
    k = check_int(n_components, "n_components", low=1, high=n - 1, hint=f" ({n} samples)")
    return W, (W.shape[1] if precomputed else X.shape[1]), k


def _components(W: sp.csr_matrix) -> int:
    ip = W.indptr
    ix = W.indices.astype(ip.dtype, copy=False)
    return int(_core.rcm_components(ip, ix)[2])


def _check_geodesic(t, harnack_regularization, landmarks: bool) -> tuple[float, float]:
    """(t, rho) of heat_geodesic_distances, checked."""
    times, scalar = _check_times(t)
    if not scalar:
        raise ValueError("t must be a single number here")
    rho = check_real(harnack_regularization, "harnack_regularization", what="a number in [0, 1]")
    if not np.isfinite(rho) or not 0 <= rho <= 1:
        raise ValueError(f"harnack_regularization={harnack_regularization!r} must lie in [0, 1]")
    if landmarks and rho != 0:
        raise ValueError("harnack_regularization must be 0 with landmarks")
    return float(times[0]), rho


def _check_landmarks(landmarks, n: int) -> np.ndarray:
    """``landmarks`` as a non-empty 1-D integer array of node indices in [0, n)."""
    cols = np.asarray(landmarks)
    if cols.ndim != 1 or cols.dtype.kind not in "iu" or cols.size == 0:
        raise TypeError("landmarks must be a non-empty 1-D array of indices")
    if cols.min() < 0 or cols.max() >= n:
        raise ValueError(f"landmarks must lie in [0, {n})")
    return cols


def heat_geodesic_distances(
    W,
    t: float = 10.0,
    *,
    harnack_regularization: float = 0.0,
    landmarks=None,
    tol: float = 1e-14,
    order: int | None = None,
    n_jobs=None,
):
    """Heat-geodesic distances on a graph (Varadhan's formula, as in HeatGeo).

    ``d_ij = sqrt(max(0, -4 t log(H_ij + 1e-16) + rho 4 t log((H_ii + H_jj) / 2 + 1e-16)))``
    with ``H = exp(-t L)`` the heat kernel of the symmetric normalised Laplacian of ``W``
    (:func:`heat_kernel`, Chebyshev, ``tol``; negative round-off entries set to 0) and ``rho``
    the Harnack regularisation (heatgeo's ``harnack_regul``; 0 by default, as there). This is
    heatgeo's ``HeatGeo`` distance with its defaults (``scale_factor=1``, no
    ``log_normalize``, one time), except that the diagonal is 0 (heatgeo leaves
    ``sqrt(4 t (rho - 1) log H_ii)`` there, which its MDS ignores) and ``H`` is symmetrised.
    The heat kernel is applied to the identity columns of the wanted points only: with
    ``landmarks`` the cost is one Chebyshev run on ``len(landmarks)`` columns and the result
    is ``(n, len(landmarks))``; nothing ``n x n`` is formed.

    Pairs in different connected components have ``H_ij = 0``: their distance is the cap
    ``sqrt(-4 t log 1e-16) = sqrt(147.4 t)`` (the same cap as far pairs whose heat is below
    1e-16), and a ``RuntimeWarning`` says how many components there are.

    Parameters
    ----------
    W : sparse matrix or array-like of shape (n, n)
        Symmetric non-negative affinities (e.g. :func:`alpha_decay_graph`).
    t : float
        Diffusion time, > 0.
    harnack_regularization : float
        ``rho`` above, in [0, 1]; must be 0 with ``landmarks`` (the diagonal ``H_ii`` of every
        point would be needed).
    landmarks : array of int, optional
        Column points (default: all).
    tol : float
        Heat-kernel accuracy (see :func:`heat_kernel`). The logarithm turns absolute errors
        in small heat values into large distance errors, hence the tight default, and the
        series is also continued until its truncation is below ``1e-6 tol`` absolute per
        unit column (1e-20 by default, 1e-4 of the 1e-16 floor; about 20 % more products
        than ``tol`` alone): the distances then agree with a dense ``scipy.linalg.expm``
        transcription to ~1e-9 relative for ``t`` from 0.1 up (``tol`` alone: 1e-4 at
        ``t = 0.1``, 3e-5 at ``t = 1``), and with heatgeo's where its order-32 expansion has
        converged (``t <= 10``; at ``t = 40`` heatgeo's is 7e-6 off).
    order : int, optional
        None (default): the Chebyshev order is the smallest that meets ``tol``. An int:
        heatgeo's ``order`` (its ``filter_method="mar"``): the series of that fixed order on
        ``[0, lmax]``, ``lmax`` the largest eigenvalue of the Laplacian (ARPACK, as heatgeo),
        so heatgeo's distances are reproduced at any ``t`` (order 32 at ``t = 40``: 7e-6
        off the exact ones, as heatgeo's); a ``RuntimeWarning`` when that order truncates
        the series above ``tol``.
    n_jobs : int, optional

    Returns
    -------
    D : ndarray of shape (n, n) or (n, len(landmarks))
        float64; symmetric with a zero diagonal without landmarks.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from geoml.diffusion import heat_geodesic_distances
    >>> W = sp.diags([np.ones(9), np.ones(9)], [-1, 1], shape=(10, 10))  # path graph
    >>> D = heat_geodesic_distances(W, t=2.0)
    >>> bool(np.all(np.diff(D[0]) > 0))  # farther along the path, farther away
    True
    """
    reject_gpu(W, "W", "heat_geodesic_distances")
    W = _affinity_csr(W)
    n = W.shape[0]
    t, rho = _check_geodesic(t, harnack_regularization, False)
    order = _check_order(order)
    if landmarks is None:
        cols = None
        E = np.eye(n)
    else:
        cols = _check_landmarks(landmarks, n)
        _check_geodesic(t, rho, True)
        E = None
    ncomp = _components(W)
    if ncomp > 1:
        warnings.warn(
            f"the graph has {ncomp} connected components: heat-geodesic distances between them "
            f"are the cap sqrt(-4 t log 1e-16) = {np.sqrt(-4 * t * np.log(_LOG_FLOOR)):.4g}",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    if cols is not None:
        return _landmark_distances(W, t, cols, tol, n_jobs, np.float64, order)
    Wd = W.astype(np.float64)
    H = _heat_action(Wd, E, t, "symmetric", "auto", tol, n_jobs, _floor(tol), order)
    np.maximum(H, 0.0, out=H)
    if cols is None:
        H = 0.5 * (H + H.T)
    S = np.log(H + _LOG_FLOOR)
    S *= -4.0 * t
    if rho != 0:
        h = np.diagonal(H).copy()
        S += rho * 4.0 * t * np.log(0.5 * (h[:, None] + h[None, :]) + _LOG_FLOOR)
    np.maximum(S, 0.0, out=S)
    D = np.sqrt(S, out=S)
    if cols is None:
        np.fill_diagonal(D, 0.0)
    else:
        D[cols, np.arange(cols.size)] = 0.0
    return D


# Landmark heat columns are computed in blocks of at most this many (n x block) float64
# entries (512 MiB per block array; the Chebyshev run holds about six of them): 3 blocks at
# n = 100,000 with 2,000 landmarks, so the per-call set-up (Laplacian, renumbering) stays small.
_BLOCK_ENTRIES = 1 << 26


# HeatGeo keeps its (n, n_landmarks) distances in float32 from this many entries on
_F32_ENTRIES = 1 << 27


def _floor(tol) -> float:
    """Absolute accuracy (per unit column) of the heat values whose logarithm the distances
    take: ``1e-6 tol`` (1e-20 at the default ``tol``, 1e-4 of the 1e-16 floor). With ``tol``
    alone (``tol / 2`` of the column's norm) heat values near the floor were off by 3e-17:
    distances 1e-4 (t = 0.1) and 3e-5 (t = 1) relative off the exact ones in the 2-norm,
    where heatgeo's expansion agreed with ``scipy.linalg.expm`` to 6e-14."""
    return 1e-6 * check_tol(tol)


def _check_order(order) -> int | None:
    """None, or heatgeo's fixed Chebyshev order: an int in [1, 200,000]."""
    if order is None:
        return None
    return check_int(order, "order", low=1, high=_MAX_ORDER, hint=" (or None: from tol)")


def _landmark_distances(W, t: float, cols, tol: float, n_jobs, dtype, order=None) -> np.ndarray:
    """Heat-geodesic distances (n, len(cols)) to the landmark columns, Varadhan's formula
    without the Harnack term, computed in column blocks and written into a ``dtype`` output.

    Memory: the output ``n L`` entries of ``dtype`` (4 bytes each for float32) plus about six
    float64 ``(n, b)`` blocks of the Chebyshev run (the unit columns, the result, two
    recurrence buffers, the reordered copies), ``b = max(8, 2^26 / n)`` columns: about
    ``4 n L + 6 * 8 * 2^26`` bytes = 8 GB + 3.2 GB at n = 10^6, L = 2,000 (float32), where
    one float64 run on all columns would hold ~6 * 16 GB."""
    n = W.shape[0]
    Wd = W.astype(np.float64)
    out = np.empty((n, cols.size), dtype=dtype)
    block = int(max(8, _BLOCK_ENTRIES // n))
    for s in range(0, cols.size, block):
        c = cols[s : s + block]
        E = np.zeros((n, c.size))
        E[c, np.arange(c.size)] = 1.0
        H = _heat_action(Wd, E, t, "symmetric", "auto", tol, n_jobs, _floor(tol), order)
        del E
        np.maximum(H, 0.0, out=H)
        H += _LOG_FLOOR
        S = np.log(H, out=H)
        S *= -4.0 * t
        np.maximum(S, 0.0, out=S)
        S = np.sqrt(S, out=S)
        S[c, np.arange(c.size)] = 0.0
        out[:, s : s + c.size] = S
    return out


def _kneedle(x, y, S: float = 0.5):
    """kneed's ``KneeLocator(x, y, S, curve="concave", direction="increasing").knee``
    (offline Kneedle, no smoothing): the first local maximum of the normalised difference
    curve ``y_n - x_n`` after which the curve drops below its threshold
    ``max - S * mean(diff(x_n))`` (detection paused after a local minimum until the next
    maximum). None if there is none."""
    from scipy.signal import argrelextrema

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    xn = (x - x.min()) / (x.max() - x.min())
    yn = (y - y.min()) / (y.max() - y.min())
    yd = yn - xn
    maxima = argrelextrema(yd, np.greater_equal)[0]
    minima = argrelextrema(yd, np.less_equal)[0]
    if not maxima.size:
        return None
    tmx = yd[maxima] - S * np.abs(np.diff(xn).mean())
    mi = 0
    active = True
    threshold = 0.0
    threshold_index = 0
    for i in range(int(maxima[0]), x.size - 1):
        if (maxima == i).any():
            threshold = tmx[mi]
            threshold_index = i
            mi += 1
            active = True
        if (minima == i).any():
            threshold = 0.0
            active = False
        if active and yd[i + 1] < threshold:
            return float(x[threshold_index])
    return None


def heat_entropy_time(
    W, *, t_max: float = 200.0, n_t: int = 10, landmarks=None, tol: float = 1e-8, n_jobs=None
):
    """heatgeo's automatic diffusion time (``tau="auto"``): the knee of the heat kernel's
    entropy ``E(t) = -sum_ij H_ij log(H_ij + 1e-10)`` (``H = exp(-t L_sym)``, negative
    round-off set to 0) over ``t = linspace(0.05, t_max, n_t)``, found by Kneedle
    (``S=0.5``, concave, increasing), as heatgeo's ``get_optimal_heat`` (its HeatGeo passes
    ``tau_max=200``, ``n_tau=10``). The columns of ``H`` are computed in blocks of 256 (all
    times from one Chebyshev run per block, at most 256 MiB at once), never ``n x n``; with
    ``landmarks`` only the columns of (at most 256 of) them are summed (scaled by
    ``n / columns``; the knee does not depend on the scale).

    Parameters
    ----------
    W : sparse matrix or array-like of shape (n, n)
        Symmetric non-negative affinities.
    t_max : float
    n_t : int
        Candidate times (>= 3).
    landmarks : array of int, optional
    tol : float
        Heat-kernel accuracy.
    n_jobs : int, optional

    Returns
    -------
    t : float or None
        The knee (None if the curve has none).
    times : ndarray of shape (n_t,)
    entropy : ndarray of shape (n_t,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from geoml.diffusion import heat_entropy_time
    >>> W = sp.diags([np.ones(99), np.ones(99)], [-1, 1], shape=(100, 100))  # path graph
    >>> t, times, h = heat_entropy_time(W, t_max=50.0)
    >>> bool(t in times), h.shape
    (True, (10,))
    """
    W = _affinity_csr(W)
    n = W.shape[0]
    t_max = check_real(t_max, "t_max", what="a number > 0.05")
    if not np.isfinite(t_max) or t_max <= 0.05:
        raise ValueError(f"t_max must be a number > 0.05; got {t_max!r}")
    n_t = check_int(n_t, "n_t", low=3)
    times = np.linspace(0.05, t_max, n_t)
    if landmarks is None:
        cols = np.arange(n)
    else:  # an estimate from (at most 256 of) the landmarks' columns
        cols = _check_landmarks(landmarks, n)
        cols = cols[np.linspace(0, cols.size - 1, min(cols.size, 256)).astype(np.int64)]
    Wd = W.astype(np.float64)
    ent = np.zeros(n_t)
    block = int(max(1, min(256, 2**25 // (n * n_t))))  # (n_t, n, block) float64: <= 256 MiB
    for s in range(0, cols.size, block):
        c = cols[s : s + block]
        E = np.zeros((n, c.size))
        E[c, np.arange(c.size)] = 1.0
        H = heat_kernel(Wd, E, times, laplacian="symmetric", tol=tol, n_jobs=n_jobs)
        np.maximum(H, 0.0, out=H)
        ent -= (H * np.log(H + 1e-10)).sum(axis=(1, 2))
    ent *= n / cols.size
    return _kneedle(times, ent, 0.5), times, ent


class HeatGeo(EmbeddingMixin, BaseEstimator):
    """HeatGeo embedding (Huguet et al., "A Heat Diffusion Perspective on Geodesic Preserving
    Dimensionality Reduction", NeurIPS 2023).

    Alpha-decay kNN graph (:func:`alpha_decay_graph`, heatgeo's default graph) ->
    heat-geodesic distances (:func:`heat_geodesic_distances`: heat kernel of the normalised
    Laplacian by Chebyshev, Varadhan's formula with the Harnack term) -> metric MDS
    (:class:`MDS`: classical start, SMACOF). heatgeo's defaults: ``knn`` (no default there;
    10 here), ``decay=40``, ``tau=10``, ``harnack_regul=0``; its MDS solver is s_gd2's SGD
    (not a dependency here), geoml's is SMACOF from the classical embedding. heatgeo's
    ``order`` (a fixed Chebyshev order, 32 by default) is ``order``; geoml's default (None)
    is the smallest order that meets ``tol`` (:func:`heat_geodesic_distances`), so the heat
    kernel is converged at every ``t`` (heatgeo's order 32 is at ``t <= 10``; at ``t = 40``
    its distances are 7e-6 relative off a dense ``scipy.linalg.expm`` transcription,
    geoml's 1e-13).

    With ``n_landmarks`` only the heat kernel columns of the landmarks are computed (an
    ``n x n_landmarks`` block), the landmarks are embedded by MDS and every point is placed
    by landmark-MDS triangulation from its heat-geodesic distances to them: O(n L) memory.

    ``fit_transform(X)`` returns ``embedding_``; :meth:`transform` places new points by
    phate's out-of-sample rule (their alpha-decay affinities to the fitted points, divided by
    their sum, times ``embedding_``). For ``transform`` the fitted data is kept (a copy where
    it may share memory with the caller's array: ``n_samples * n_features`` floats, less
    than the ``n x n`` distances without landmarks).

    Parameters
    ----------
    n_components : int, default 2
    n_neighbors : int, default 10
        heatgeo's ``knn``. A value ``>= n_samples`` is truncated to ``n_samples - 1`` with a
        ``UserWarning`` (umap-learn's convention; :func:`alpha_decay_graph` raises instead).
    decay : float or None, default 40
        Alpha-decay exponent; None: the plain 0/1 kNN kernel (heatgeo passes ``decay`` to
        graphtools, where None means no alpha decay; see :func:`alpha_decay_graph`).
    t : float or "auto", default 10
        Diffusion time (heatgeo's ``tau``); "auto": heatgeo's choice, the knee of the heat
        kernel's entropy over ``linspace(0.05, 200, 10)`` (:func:`heat_entropy_time`; with
        landmarks from their columns only).
    harnack_regularization : float in [0, 1], default 0
        heatgeo's ``harnack_regul`` (must be 0 with landmarks).
    n_landmarks : int, optional
        Landmarks drawn uniformly from ``random_state``; None: all points (an ``n x n``
        distance matrix). More than ``n_samples`` is truncated to ``n_samples`` (every point a
        landmark) with a ``UserWarning``.
    mds : {"smacof", "classical"}, default "smacof"
    affinity : {"alpha_decay", "precomputed"}, default "alpha_decay"
        "precomputed": ``X`` is the (n, n) symmetric affinity matrix (sparse or dense).
    tol : float, default 1e-14
        Heat-kernel accuracy (see :func:`heat_geodesic_distances`).
    order : int, optional
        None (default): the Chebyshev order is chosen from ``tol``. An int: heatgeo's fixed
        ``order`` on its interval (heatgeo's distances reproduced, truncation included; a
        ``RuntimeWarning`` when it is above ``tol``; see :func:`heat_geodesic_distances`).
    max_iter : int, default 300
        SMACOF transforms.
    random_state, n_jobs : optional
    verbose : int, default 0
        Stage messages on stderr.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        float64 for float32 input too (as scikit-learn's embeddings; ``fit_transform``
        and ``transform`` return it, or its rows, in that dtype).
    distances_ : ndarray of shape (n_samples, n_samples) or (n_samples, n_landmarks)
        float64; float32 with landmarks from ``n_samples * n_landmarks >= 2^27`` on (computed
        in column blocks: about ``4 n L`` bytes plus 3.2 GB of Chebyshev buffers, 11.2 GB at
        n = 10^6 and 2,000 landmarks, where float64 columns all at once held ~96 GB).
    affinity_matrix_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
    landmarks_ : ndarray of int or None
    n_neighbors_ : int or None
        Neighbours per point used (``n_neighbors`` truncated); None for a precomputed
        affinity.
    t_ : float
        The diffusion time used.
    entropy_ : ndarray of shape (10,) or None
        The entropy curve of ``t="auto"``.
    stress_ : float
        Raw MDS stress (of the landmarks with ``n_landmarks``).
    n_iter_ : int
        SMACOF transforms run (0 with ``mds="classical"``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> t = np.linspace(0, 4, 300)
    >>> X = np.column_stack([t, np.sin(t)])
    >>> hg = geoml.HeatGeo(n_neighbors=10, random_state=0)
    >>> emb = hg.fit_transform(X)
    >>> emb.shape
    (300, 2)
    >>> bool((hg.transform(X) == emb).all())  # the fitted data: embedding_
    True
    >>> hg.transform(X[:5] + 0.01).shape  # new points: interpolated from their neighbours
    (5, 2)
    """

    def __init__(
        self,
        n_components: int = 2,
        n_neighbors: int = 10,
        *,
        decay: float | None = 40.0,
        t=10.0,
        harnack_regularization: float = 0.0,
        n_landmarks: int | None = None,
        mds: str = "smacof",
        affinity: str = "alpha_decay",
        tol: float = 1e-14,
        order: int | None = None,
        max_iter: int = 300,
        random_state=None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.decay = decay
        self.t = t
        self.harnack_regularization = harnack_regularization
        self.n_landmarks = n_landmarks
        self.mds = mds
        self.affinity = affinity
        self.tol = tol
        self.order = order
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _say(self, msg: str) -> None:
        say(self.verbose, "HeatGeo", msg)

    def fit(self, X, y=None) -> HeatGeo:
        """Fit on ``X`` of shape (n_samples, n_features), or the (n, n) affinity matrix with
        ``affinity="precomputed"``."""
        names_in = self._feature_names_of(X)
        if self.affinity not in ("alpha_decay", "precomputed"):
            raise ValueError(f"affinity={self.affinity!r}; choose 'alpha_decay' or 'precomputed'")
        if self.mds not in ("smacof", "classical"):
            raise ValueError(f"mds={self.mds!r}; choose 'smacof' or 'classical'")
        reject_gpu(X, "X", "HeatGeo")
        nt = check_n_jobs(self.n_jobs)
        check_tol(self.tol)
        order = _check_order(self.order)
        decay = _check_decay(self.decay)
        rng = check_random_state(self.random_state)

        n_neighbors = None  # set by build: None for a precomputed affinity
        fit_X = None  # the validated data (for transform); None for a precomputed affinity

        def build(Xf):
            nonlocal n_neighbors, fit_X
            fit_X = Xf
            self._say(f"{'kNN' if decay is None else 'alpha-decay'} graph of {Xf.shape[0]} points")
            n_neighbors = truncate_to_samples(self.n_neighbors, "n_neighbors", Xf.shape[0])
            return alpha_decay_graph(Xf, n_neighbors, decay, n_jobs=self.n_jobs)

        W, n_features, k = _input_graph(
            X,
            self.affinity == "precomputed",
            "HeatGeo",
            lambda A: _affinity_csr(A, "X"),
            build,
            self.n_components,
        )
        n = W.shape[0]
        if self.n_landmarks is None:
            lm = None
        else:
            check_int(self.n_landmarks, "n_landmarks", low=k + 1, hint=" (> n_components)")
            m = truncate_to_samples(self.n_landmarks, "n_landmarks", n, high=n, what="X.shape[0]")
            lm = np.sort(rng.choice(n, size=m, replace=False))
        t, self.entropy_ = self.t, None
        if isinstance(t, str):
            if t != "auto":
                raise ValueError(f"t={t!r}; give a positive number or 'auto'")
            self._say("automatic t: heat-kernel entropy over 10 times")
            t, _, self.entropy_ = heat_entropy_time(W, landmarks=lm, n_jobs=self.n_jobs)
            if t is None:
                warnings.warn(
                    "the heat-kernel entropy has no knee: using t = 10 (heatgeo's default)",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
                t = 10.0
            self._say(f"t = {t:.4g}")
        self._say("heat-geodesic distances")
        if lm is None:
            D = heat_geodesic_distances(
                W,
                t,
                harnack_regularization=self.harnack_regularization,
                landmarks=lm,
                tol=self.tol,
                order=order,
                n_jobs=self.n_jobs,
            )
        else:
            t = _check_geodesic(t, self.harnack_regularization, True)[0]
            ncomp = _components(W)
            if ncomp > 1:
                warnings.warn(
                    f"the graph has {ncomp} connected components: heat-geodesic distances "
                    "between them are the cap sqrt(-4 t log 1e-16) = "
                    f"{np.sqrt(-4 * float(t) * np.log(_LOG_FLOOR)):.4g}",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
            # (n, L) distances in column blocks; float32 from 2^27 entries (1 GiB as float64)
            big = n * lm.size >= _F32_ENTRIES
            D = _landmark_distances(
                W, t, lm, self.tol, self.n_jobs, np.float32 if big else np.float64, order
            )
        mds = MDS(
            k,
            metric=self.mds == "smacof",
            max_iter=self.max_iter,
            dissimilarity="precomputed",
            random_state=random_seed(rng),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        # BLAS on one thread (the GEMMs of the classical start and the landmark placement): a
        # multi-threaded OpenBLAS GEMM splits its work by the thread count, and on its Haswell
        # kernels (AMD Zen) that changed the embedding's last bits between 1 and 2 threads
        with single_threaded_blas():
            if lm is None:
                mds.fit(D)
                Y, stress, n_iter = mds.embedding_, mds.stress_, mds.n_iter_
            else:
                D_ll = D[lm].astype(np.float64)
                D_ll = 0.5 * (D_ll + D_ll.T)
                np.fill_diagonal(D_ll, 0.0)
                mrng = check_random_state(mds.random_state)
                Y_l, stress, n_iter, _ = mds._embed(
                    D_ll, k, self.max_iter, 1e-6, mrng, random_seed(mrng), nt
                )
                self._say(f"placing {n} points from {lm.size} landmarks")
                Y = _place(lambda s, e: D[s:e] ** 2, n, lm, D_ll, Y_l, n_jobs=nt)
        self.embedding_ = np.ascontiguousarray(Y)
        self.distances_ = D
        self.affinity_matrix_ = W
        self.landmarks_ = lm
        self.n_neighbors_ = n_neighbors
        self.t_ = float(t)
        self.stress_ = float(stress)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = n_features
        self._fit_data = (
            None if fit_X is None else _owned(fit_X, X),
            n_neighbors,
            decay,
        )
        self._set_feature_names(names_in)
        return self

    def transform(self, X) -> np.ndarray:
        """Embed ``X`` of shape (m, n_features): the fitted data gives ``embedding_``, new
        points are interpolated from the fitted points' embedding.

        ``X`` equal to the data given to ``fit`` (same shape and values) returns a copy of
        ``embedding_`` (so ``fit(X).transform(X)`` equals ``fit_transform(X)``). Other points
        are placed as phate places new data (graphtools' ``extend_to_data`` and
        ``interpolate``): each point's alpha-decay affinities to the fitted points (the
        fit's ``n_neighbors`` and ``decay``, the bandwidth its distance to its
        ``n_neighbors``-th nearest fitted point, exact neighbours), divided by their sum,
        times ``embedding_``; a row equal to a fitted point gets that point's row of
        ``embedding_`` (the lowest index among equal fitted points), so every row is
        transformed on its own (a subset or a permutation of ``X`` transforms to the same
        rows). The interpolation is a weighted mean of neighbours' positions: a new point
        lies inside their convex hull, and a point near a fitted one lands near, not on,
        that point's position. No warning (phate warns that a fitted PHATE should not
        transform new data; here it is a documented method, as in scikit-learn's
        transformers).

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            With ``affinity="precomputed"`` only the fitted affinity matrix is accepted
            (``ValueError`` otherwise: new points have no affinities to the fitted ones).

        Returns
        -------
        Y : ndarray of shape (m, n_components)
            float64.
        """
        X_in = X
        self._check_feature_names_in(X)
        out = _transform_new(
            self,
            X,
            "HeatGeo",
            lambda A: _affinity_csr(A, "X"),
            self.n_jobs,
            lambda: self.embedding_,
        )
        return self._wrap_output(out, X_in)

    def _geoml_tags(self) -> dict:
        return {"input_tags.pairwise": self.affinity == "precomputed"}
