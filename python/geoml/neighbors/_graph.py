"""kNN graphs: :func:`knn_graph`, :class:`KNNGraph`, affinities and the CSR assembly."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._base import BaseEstimator, GraphMixin, NotFittedError
from .._device import move as _move
from .._device import on_device as _on_device
from .._device import resolve_device
from .._device import xp as _xp
from .._validation import (
    check_int,
    check_n_jobs,
    check_real,
    is_gpu_array,
    truncate_to_samples,
    validate_random_state,
)
from ._knn import (
    _KERNELS,
    KNNResult,
    _check_method,
    _knn_checked,
    _knn_method,
    _symmetrize_mode,
)


def _affinities(dist: np.ndarray, idx: np.ndarray, kernel, sigma, k_sigma, decay) -> np.ndarray:
    """Turn (n, k) neighbour distances into affinities. O(n k), vectorised NumPy."""
    xp = _xp(dist)
    k = dist.shape[1]
    tiny = np.finfo(dist.dtype).tiny
    if kernel == "gaussian":
        if sigma is None:
            sigma = float(xp.median(dist[:, -1]))
        # numbers only ("1.0" and True passed float())
        sigma = check_real(sigma, "sigma", what="a positive number")
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(
                f"sigma must be a positive number; got {sigma} (all neighbours at "
                "distance 0? pass sigma explicitly)"
            )
        with np.errstate(over="ignore"):  # exp(-inf) = 0: the exact limit
            return xp.exp(-((dist / sigma) ** 2) / 2)
    k_sigma = check_int(
        min(7, k)
        if k_sigma is None and kernel == "adaptive"
        else (k if k_sigma is None else k_sigma),
        "k_sigma",
        low=1,
        high=k,
        hint=" (it picks one of the k computed neighbours)",
    )
    s = xp.maximum(dist[:, k_sigma - 1], tiny)  # sigma_i: distance to the k_sigma-th neighbour
    # an exponent that overflows to inf gives the exact limit exp(-inf) = 0: no warning
    if kernel == "adaptive":
        den = s[:, None] * s[idx]
        with np.errstate(over="ignore"):  # sigma_i sigma_j >= tiny: 0 / 0 cannot occur
            w = xp.exp(-(dist**2) / xp.maximum(den, tiny))
        # where sigma_i sigma_j (and dist^2 with it) leaves the normal range, data of scale
        # 1e-160 (float64) or 1e-22 (float32), the same ratio as (d / sigma_i) (d / sigma_j):
        # dist^2 / tiny gave weights exp(0) = 1 or exp(-inf) = 0 (DiffusionMap 66 % off)
        low = den < tiny / np.finfo(dist.dtype).eps
        if bool(low.any()):
            with np.errstate(over="ignore", invalid="ignore"):
                r = (dist[low] / xp.broadcast_to(s[:, None], dist.shape)[low]) * (
                    dist[low] / s[idx][low]
                )
                w[low] = xp.exp(-r)
        return w
    # (None: the default 40, as sigma / k_sigma None are their defaults; graphtools' plain kNN
    # kernel, its decay=None, is mode="connectivity" here)
    decay = 40.0 if decay is None else check_real(decay, "decay", what="a positive number")
    if not np.isfinite(decay) or decay <= 0:
        raise ValueError(f"decay must be a positive number; got {decay}")
    with np.errstate(over="ignore"):
        return xp.exp(-((dist / s[:, None]) ** decay))


def _to_csr(idx: np.ndarray, w: np.ndarray, symmetrize, n_jobs: int) -> sp.csr_matrix:
    n, k = idx.shape
    big = n * k * 2 >= 2**31 - 1
    data, indices, indptr = _core.neighbors_to_csr(
        idx, w, mode=_symmetrize_mode(symmetrize), index64=big, n_jobs=n_jobs
    )
    g = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    g.has_sorted_indices = True
    return g


def _check_graph_options(mode, symmetrize, kernel) -> None:
    if mode not in ("distance", "connectivity"):
        raise ValueError(f"mode={mode!r}; choose 'distance' or 'connectivity'")
    _symmetrize_mode(symmetrize)
    if kernel not in _KERNELS:
        raise ValueError(f"kernel={kernel!r}; choose None, 'gaussian', 'adaptive' or 'alpha_decay'")
    if kernel is not None and mode != "distance":
        raise ValueError("a kernel turns distances into affinities: use mode='distance' with it")


def _graph_from_neighbors(
    result: KNNResult, mode, symmetrize, kernel, sigma, k_sigma, decay, n_jobs: int
) -> sp.csr_matrix:
    idx, dist = result
    if kernel is not None:
        w = _affinities(dist, idx, kernel, sigma, k_sigma, decay).astype(dist.dtype, copy=False)
    elif mode == "connectivity":
        w = _xp(dist).ones_like(dist)
    else:
        w = dist
    if is_gpu_array(idx):
        from .._neighbors_gpu import to_csr_device

        return to_csr_device(idx, w, _symmetrize_mode(symmetrize))
    return _to_csr(idx, w, symmetrize, n_jobs)


def knn_graph(
    X,
    k: int,
    *,
    metric: str = "euclidean",
    mode: str = "distance",
    symmetrize: str | None = "union",
    kernel: str | None = None,
    sigma: float | None = None,
    k_sigma: int | None = None,
    decay: float | None = None,
    n_jobs: int | None = None,
    device: str = "auto",
    verbose: bool = False,
    method: str = "exact",
    target_recall: float = 0.99,
    random_state=None,
) -> sp.csr_matrix:
    """Sparse k-nearest-neighbour graph of the rows of ``X``.

    Builds the directed graph ``W[i, j] = w(i, j)`` for the ``k`` neighbours ``j`` of each
    point ``i`` (exact, or approximate with ``method``; a point is never its own neighbour),
    then combines it with its transpose.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points (see :func:`knn` for accepted dtypes).
    k : int
        Neighbours per point, ``1 <= k <= n_samples - 1``.
    metric : str
        As in :func:`knn`.
    mode : {"distance", "connectivity"}
        Edge values: the distance, or 1.
    symmetrize : {"union", "mutual", "mean", None}
        ``"union"``: ``max(W, W^T)`` (an edge in either direction); ``"mutual"``: ``min`` over
        edges present both ways; ``"mean"``: ``(W + W^T) / 2`` (a missing entry counts as 0);
        None: the directed graph, ``k`` entries per row.
    kernel : {None, "gaussian", "adaptive", "alpha_decay"}
        Turn distances into affinities before symmetrising: ``"gaussian"``:
        ``exp(-d^2 / (2 sigma^2))`` with a fixed ``sigma`` (default: median distance to the k-th
        neighbour); ``"adaptive"`` (self-tuning, Zelnik-Manor & Perona 2004):
        ``exp(-d_ij^2 / (sigma_i sigma_j))`` with ``sigma_i`` the distance from ``i`` to its
        ``k_sigma``-th neighbour (default 7, at most k); ``"alpha_decay"`` (PHATE, Moon et al.
        2019): ``exp(-(d_ij / sigma_i)^decay)`` with ``sigma_i`` as above (default
        ``k_sigma = k``, ``decay = 40``).
    sigma, k_sigma, decay : optional
        Kernel parameters, see ``kernel``; None gives each one's default. For ``decay``
        that is 40: ``kernel="alpha_decay", decay=None`` is the alpha-decay kernel with
        decay 40, *not* graphtools' (and :func:`geoml.diffusion.alpha_decay_graph`'s)
        ``decay=None``, which means no alpha decay: the 0/1 kNN kernel averaged with its
        transpose, here ``kernel=None, mode="connectivity", symmetrize="mean"`` (the graph
        ``alpha_decay_graph(X, k, decay=None)`` returns).
    n_jobs, verbose : optional
        Threads and progress, as in :func:`knn`.
    device : {"auto", "cpu", "cuda"}
        As in :func:`knn`. On the GPU the graph (kernels, symmetrisation, CSR) is assembled on
        the device too; device input gives a ``cupyx.scipy.sparse.csr_matrix``.
    method, target_recall, random_state : optional
        Exact or approximate search, as in :func:`knn`.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Sorted column indices, no diagonal entries, values in the input's float dtype. An edge
        between two identical points in ``"distance"`` mode is stored with value 0 (an explicit
        zero: the edge exists). int32 indices unless the graph needs int64. With ``method``
        ``"nndescent"`` or ``"auto"`` the matrix carries the measured recall as an attribute
        ``recall_`` (:class:`RecallEstimate`).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> G = geoml.knn_graph(X, 1, mode="connectivity")
    >>> G.toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 1., 0.],
           [0., 1., 0., 1.],
           [0., 0., 1., 0.]])
    """
    _check_graph_options(mode, symmetrize, kernel)
    _check_method(method, target_recall)
    validate_random_state(random_state)
    where = resolve_device(device, X)
    gpu_in = is_gpu_array(X)
    X = _on_device(X, where, "X")  # validated once, on the side that computes
    g = _knn_graph_checked(
        X,
        k,
        metric=metric,
        mode=mode,
        symmetrize=symmetrize,
        kernel=kernel,
        sigma=sigma,
        k_sigma=k_sigma,
        decay=decay,
        n_jobs=n_jobs,
        verbose=verbose,
        method=method,
        target_recall=target_recall,
        random_state=random_state,
    )
    recall = getattr(g, "recall_", None)
    g = _move(g, gpu_in)
    if recall is not None:
        g.recall_ = recall
    return g


def _knn_graph_checked(
    X,
    k,
    *,
    metric="euclidean",
    mode="distance",
    symmetrize="union",
    kernel=None,
    sigma=None,
    k_sigma=None,
    decay=None,
    n_jobs=None,
    verbose=False,
    method="exact",
    target_recall=0.99,
    random_state=None,
):
    """:func:`knn_graph` of an array already validated and on the side that computes (see
    :func:`_knn_checked`); the graph stays on that side."""
    _check_graph_options(mode, symmetrize, kernel)
    target = _check_method(method, target_recall)
    res = _knn_method(X, k, None, metric, None, n_jobs, verbose, method, target, random_state)
    g = _graph_from_neighbors(
        res, mode, symmetrize, kernel, sigma, k_sigma, decay, check_n_jobs(n_jobs)
    )
    if hasattr(res, "recall_"):
        g.recall_ = res.recall_
    return g


class KNNGraph(GraphMixin, BaseEstimator):
    """kNN graph as a scikit-learn estimator (``fit_transform`` returns ``graph_``).

    Parameters
    ----------
    n_neighbors : int, default 15
        Neighbours per point. A value ``>= n_samples`` is truncated to ``n_samples - 1`` with
        a ``UserWarning`` (umap-learn's convention; :func:`knn_graph` raises instead).
    metric, mode, symmetrize, kernel, sigma, k_sigma, decay, n_jobs, device, verbose
        As in :func:`knn_graph`. With CuPy input (or ``device="cuda"``) the search and the
        graph run on the GPU; fitted attributes have the type of the fitted ``X`` (CuPy arrays
        and a ``cupyx.scipy.sparse.csr_matrix`` for device input).
    method, target_recall, random_state
        Exact (default) or approximate search of the fitted points, as in :func:`knn`
        (approximate: CPU only); :meth:`kneighbors` of new points is always exact.

    Attributes
    ----------
    n_neighbors_ : int
        Neighbours per point used by the fit: ``min(n_neighbors, n_samples - 1)``.
    indices_ : ndarray of shape (n_samples, ``n_neighbors_``)
        Neighbours of each fitted point (itself excluded), nearest first.
    distances_ : ndarray of shape (n_samples, n_neighbors)
    graph_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
    recall_ : RecallEstimate or None
        Measured recall of the fitted lists (None for ``method="exact"``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> est = geoml.KNNGraph(n_neighbors=5).fit(X)
    >>> est.indices_.shape, est.graph_.shape
    ((100, 5), (100, 100))
    >>> idx, dist = est.kneighbors(X[:2], n_neighbors=1)
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([0, 1], [0.0, 0.0])
    """

    def __init__(
        self,
        n_neighbors: int = 15,
        *,
        metric: str = "euclidean",
        mode: str = "distance",
        symmetrize: str | None = "union",
        kernel: str | None = None,
        sigma: float | None = None,
        k_sigma: int | None = None,
        decay: float | None = None,
        n_jobs: int | None = None,
        device: str = "auto",
        verbose: bool = False,
        method: str = "exact",
        target_recall: float = 0.99,
        random_state=None,
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.mode = mode
        self.symmetrize = symmetrize
        self.kernel = kernel
        self.sigma = sigma
        self.k_sigma = k_sigma
        self.decay = decay
        self.n_jobs = n_jobs
        self.device = device
        self.verbose = verbose
        self.method = method
        self.target_recall = target_recall
        self.random_state = random_state

    def fit(self, X, y=None) -> KNNGraph:
        """Neighbours and graph of ``X``, array-like of shape (n_samples, n_features)."""
        names_in = self._feature_names_of(X)
        _check_graph_options(self.mode, self.symmetrize, self.kernel)
        target = _check_method(self.method, self.target_recall)
        validate_random_state(self.random_state)
        where = resolve_device(self.device, X)
        gpu_in = is_gpu_array(X)
        X = _on_device(X, where, "X")  # validated once, on the side that computes
        k = truncate_to_samples(self.n_neighbors, "n_neighbors", X.shape[0])
        res = _knn_method(
            X,
            k,
            None,
            self.metric,
            None,
            self.n_jobs,
            self.verbose,
            self.method,
            target,
            self.random_state,
        )
        self.recall_ = getattr(res, "recall_", None)
        graph = _graph_from_neighbors(
            res,
            self.mode,
            self.symmetrize,
            self.kernel,
            self.sigma,
            self.k_sigma,
            self.decay,
            check_n_jobs(self.n_jobs),
        )
        self._fit_X, self._fit_gpu_in = X, gpu_in
        self.n_neighbors_ = k
        self.indices_, self.distances_ = _move(res[0], gpu_in), _move(res[1], gpu_in)
        self.graph_ = _move(graph, gpu_in)
        self.n_features_in_ = X.shape[1]
        self._set_feature_names(names_in)
        return self

    def _geoml_tags(self) -> dict:
        return {"transformer_tags.preserves_dtype": ["float64", "float32"]}

    def kneighbors(self, Y=None, n_neighbors: int | None = None) -> KNNResult:
        """Neighbours among the fitted points.

        Parameters
        ----------
        Y : array-like of shape (n_queries, n_features), optional
            New points; None returns the fitted neighbour lists (each point excluded from its
            own list). A point of ``Y`` equal to a fitted point finds it at distance 0. The
            search runs where the fit ran; results have the type of ``Y`` (of the fitted ``X``
            when ``Y`` is None).
        n_neighbors : int, optional
            Default: ``n_neighbors_``, the count used by the fit.

        Returns
        -------
        KNNResult
            ``indices`` (int64) and ``distances`` of shape (n_queries, n_neighbors), nearest
            first: it unpacks as ``indices, distances``, like :func:`geoml.knn`, which is
            the reverse of scikit-learn's ``kneighbors`` (``distances, indices``). Code
            written for scikit-learn should use the named fields or
            :class:`geoml.KNNTransformer`.

        Examples
        --------
        >>> import numpy as np, geoml
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> res = geoml.KNNGraph(n_neighbors=5).fit(X).kneighbors(X[:2])
        >>> res.indices.shape, res.distances.shape
        ((2, 5), (2, 5))
        >>> res.indices[:, 0].tolist()  # each query finds itself first, at distance 0
        [0, 1]
        """
        if not hasattr(self, "_fit_X"):
            raise NotFittedError("this KNNGraph is not fitted yet; call fit(X) first")
        k = self.n_neighbors_ if n_neighbors is None else n_neighbors
        if Y is None:
            if k == self.n_neighbors_:
                return KNNResult(self.indices_, self.distances_)
            res = _knn_checked(self._fit_X, k, None, self.metric, None, self.n_jobs)
            to_gpu = self._fit_gpu_in
        else:
            where = "cuda" if is_gpu_array(self._fit_X) else "cpu"
            to_gpu = is_gpu_array(Y)
            Y = _on_device(Y, where, "Y", allow_empty=True)  # the fitted X was checked by fit
            res = _knn_checked(self._fit_X, k, Y, self.metric, None, self.n_jobs)
        return KNNResult(_move(res[0], to_gpu), _move(res[1], to_gpu))
