"""Exact k-nearest neighbours and kNN graphs (CPU kernels in ``cpp/neighbors/``;
GPU kernels in ``cuda/knn.cu`` for CuPy input or ``device="cuda"``, see ``_neighbors_gpu.py``)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import _core
from ._base import BaseEstimator, GraphMixin, NotFittedError
from ._device import move as _move
from ._device import on_device as _on_device
from ._device import resolve_device
from ._device import xp as _xp
from ._validation import (
    as_float_array,
    check_int,
    check_n_jobs,
    is_gpu_array,
    random_seed,
)

__all__ = ["ApproxKNNResult", "KNNGraph", "KNNResult", "RecallEstimate", "knn", "knn_graph"]

_METHODS = ("exact", "nndescent", "auto")
# "auto" searches exactly below this many points (an exact search there takes under ~2 s on
# 2 cores at d = 128), and above it whenever n < _AUTO_EXACT_FLOPS / (d_eff n): see
# docs/design/neighbors.md.
_AUTO_MIN_N = 20_000
_N_CHECK = 500  # points whose neighbours are checked exactly by the approximate search

_KERNELS = (None, "gaussian", "adaptive", "alpha_decay")


class KNNResult(NamedTuple):
    """Neighbours of each query, nearest first. Unpacks as ``indices, distances = ...``."""

    indices: np.ndarray
    """int64 array of shape (n_queries, k): row numbers in the data."""
    distances: np.ndarray
    """Array of shape (n_queries, k) in the input's float dtype."""


@dataclass(frozen=True)
class RecallEstimate:
    """Recall of an approximate neighbour search, measured on points checked exactly.

    ``n_checked`` points (drawn from ``random_state``) are searched exactly; a neighbour in
    their approximate list counts as found when its distance is at most the true k-th
    neighbour distance (so ties and duplicates are not counted as misses). ``estimate`` is
    the mean per-point recall; ``low``/``high`` a 95 % Wilson interval on ``n_checked`` trials
    (conservative: each point's recall is a mean of ``k`` indicators, whose variance is at most
    that of one Bernoulli trial with the same mean). When every point is checked the recall is
    exact and the interval is a point.
    """

    estimate: float
    """Mean recall of the checked points."""
    low: float
    """Lower end of the 95 % interval."""
    high: float
    """Upper end of the 95 % interval."""
    n_checked: int
    """Points checked exactly."""
    target: float
    """The requested ``target_recall``."""
    reached: bool
    """``estimate >= target``. When False a ``RuntimeWarning`` was issued."""
    method: str
    """The search that ran: ``"exact"`` or ``"nndescent"``."""
    n_iter: int = 0
    """NN-descent iterations after the random-projection-forest start."""


def _wilson(p: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``p`` observed on ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class ApproxKNNResult(KNNResult):
    """A :class:`KNNResult` (unpacks as ``indices, distances``) with the measured
    ``recall_`` (:class:`RecallEstimate`) of the search that produced it."""

    recall_: RecallEstimate


def _with_recall(res: KNNResult, recall: RecallEstimate) -> ApproxKNNResult:
    out = ApproxKNNResult(res.indices, res.distances)
    out.recall_ = recall
    return out


def _check_method(method, target_recall) -> float:
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method={method!r}; choose 'exact', 'nndescent' or 'auto'")
    if isinstance(target_recall, bool) or not isinstance(target_recall, (int, float, np.floating)):
        raise TypeError(f"target_recall must be a number in (0, 1]; got {target_recall!r}")
    target = float(target_recall)
    if not (0.0 < target <= 1.0):
        raise ValueError(f"target_recall must be in (0, 1]; got {target_recall!r}")
    return target


def _auto_is_exact(n: int, d: int) -> bool:
    """``method="auto"``: exact below ``_AUTO_MIN_N`` points, approximate above."""
    return n < _AUTO_MIN_N


def _knn_approx(X, k, metric, target, random_state, n_jobs, verbose) -> ApproxKNNResult:
    """NN-descent graph of validated host X (self query, a point not its own neighbour)."""
    metric, _, k = _knn_checks(X.shape[0], k, False, metric, True)
    _check_magnitude(X, None)
    opts = _core.NNDescentOptions(
        target_recall=target, n_check=_N_CHECK, seed=random_seed(random_state)
    )
    idx, dist, n_iter, n_checked, hits, _ = _core.nndescent(
        X, k=k, metric=metric, options=opts, n_jobs=check_n_jobs(n_jobs), verbose=bool(verbose)
    )
    idx, dist = idx.reshape(X.shape[0], k), dist.reshape(X.shape[0], k)
    est = hits / (n_checked * k) if n_checked else 1.0
    low, high = (est, est) if n_checked >= X.shape[0] else _wilson(est, n_checked)
    rec = RecallEstimate(est, low, high, int(n_checked), target, est >= target, "nndescent", n_iter)
    if not rec.reached:
        warnings.warn(
            f"approximate kNN: measured recall {est:.4f} (95% interval [{low:.4f}, "
            f"{high:.4f}] on {n_checked} points checked exactly) is below "
            f"target_recall={target}; use method='exact' for an exact graph",
            RuntimeWarning,
            stacklevel=3,
        )
    return _with_recall(KNNResult(idx, dist), rec)


def _self_distance(X, metric) -> np.ndarray:
    """Distance of each row of X to itself under ``metric`` (0, or 1 for a zero vector under
    cosine, or ``-||x||^2`` for inner products)."""
    if metric == "inner_product":
        return -np.einsum("ij,ij->i", X, X)
    if metric == "cosine":
        return (~X.any(axis=1)).astype(X.dtype)
    return np.zeros(X.shape[0], dtype=X.dtype)


def _prepend_self(X, res, metric) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) lists -> (n, k + 1) lists that start with the point itself."""
    n = X.shape[0]
    idx = np.concatenate([np.arange(n, dtype=np.int64)[:, None], res[0]], axis=1)
    dist = np.concatenate([_self_distance(X, metric)[:, None], res[1]], axis=1)
    return idx, dist


def _knn_method(X, k, Y, metric, exclude_self, n_jobs, verbose, method, target, random_state):
    """The search ``method`` asks for, on validated X (host or device)."""
    if method == "exact":
        return _knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose)
    approx_ok = Y is None and not is_gpu_array(X)
    if method == "nndescent" and not approx_ok:
        raise ValueError(
            "method='nndescent' builds the kNN graph of the rows of X on the CPU: it needs "
            "Y=None and host (NumPy) data; use method='exact'"
        )
    if method == "auto" and (not approx_ok or _auto_is_exact(X.shape[0], X.shape[1])):
        res = _knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose)
        n = res[0].shape[0]
        return _with_recall(res, RecallEstimate(1.0, 1.0, 1.0, n, target, True, "exact", 0))
    if exclude_self is False:  # the point itself first, then its k - 1 approximate neighbours
        _, _, k = _knn_checks(X.shape[0], k, False, metric, False)
        if metric == "inner_product":
            raise ValueError(
                "exclude_self=False with an approximate method puts each point first, but "
                "under metric='inner_product' a point need not be its own nearest "
                "neighbour; use method='exact'"
            )
        if k == 1:
            n = X.shape[0]
            res = KNNResult(
                *_prepend_self(X, (np.empty((n, 0), np.int64), np.empty((n, 0))), metric)
            )
            return _with_recall(res, RecallEstimate(1.0, 1.0, 1.0, n, target, True, "exact", 0))
        res = _knn_approx(X, k - 1, metric, target, random_state, n_jobs, verbose)
        return _with_recall(KNNResult(*_prepend_self(X, res, metric)), res.recall_)
    return _knn_approx(X, k, metric, target, random_state, n_jobs, verbose)


def _check_metric(metric: str) -> _core.Metric:
    """The bound enum member named by the user's ``metric`` string."""
    names = _core.Metric.__members__
    if not isinstance(metric, str) or metric not in names:
        raise ValueError(f"metric={metric!r} is not supported; choose one of {sorted(names)}")
    return _core.Metric[metric]


def _symmetrize_mode(symmetrize: str | None) -> _core.Symmetrize:
    """The bound enum member of the user's ``symmetrize`` ('union', 'mutual', 'mean' or None)."""
    if symmetrize is None:
        return _core.Symmetrize.none
    if (
        not isinstance(symmetrize, str)
        or symmetrize == "none"
        or symmetrize not in _core.Symmetrize.__members__
    ):
        raise ValueError(f"symmetrize={symmetrize!r}; choose 'union', 'mutual', 'mean' or None")
    return _core.Symmetrize[symmetrize]


def _knn_checks(n: int, k, has_y: bool, metric: str, exclude_self):
    """Validated (metric, exclude_self, k) for a search among n points."""
    metric = _check_metric(metric)
    if exclude_self is None:
        exclude_self = not has_y
    elif exclude_self and has_y:
        raise ValueError("exclude_self=True needs Y=None (queries are the rows of X)")
    kmax = n - 1 if exclude_self else n
    own = ", and a point is not its own neighbour" if exclude_self else ""
    hint = (
        f" (X has {n} points{own})"
        if kmax >= 1
        else f" (X has {n} sample: no neighbour other than itself)"
    )
    k = check_int(k, "k", low=1, high=kmax, hint=hint)
    return metric, bool(exclude_self), k


def _check_magnitude(X, Y) -> None:
    """Scores are ||x||^2 + ||y||^2 - 2 x.y (or x.y): each must stay finite in X's dtype."""
    bound = float(np.sqrt(np.finfo(X.dtype).max / (4 * max(X.shape[1], 1))))
    for A, name in ((X, "X"), (Y, "Y")):
        # max(|A|) as max(max A, -min A): no temporary the size of the data
        if A is not None and A.size and not max(float(A.max()), -float(A.min())) <= bound:
            raise ValueError(
                f"{name} has entries beyond {bound:.3g} in absolute value: squared "
                f"distances would overflow {X.dtype}; rescale the data"
            )


def _same_features_and_dtype(X, Y):
    if Y.ndim != 2 or Y.shape[1] != X.shape[1]:
        raise ValueError(f"Y has {Y.shape[1]} features but X has {X.shape[1]}")
    if Y.dtype != X.dtype:
        wide = np.promote_types(X.dtype, Y.dtype)
        X, Y = X.astype(wide, copy=False), Y.astype(wide, copy=False)
    return X, Y


def _knn_elsewhere(X, k, Y, metric, exclude_self, n_jobs, where: str) -> KNNResult:
    """kNN of device input, or of host input with device="cuda"; results follow X's type."""
    gpu_in = is_gpu_array(X)
    Xw = _on_device(X, where, "X")
    Yw = None if Y is None else _on_device(Y, where, "Y", allow_empty=True)
    res = _knn_checked(Xw, k, Yw, metric, exclude_self, n_jobs)
    return KNNResult(_move(res[0], gpu_in), _move(res[1], gpu_in))


def knn(
    X,
    k: int,
    *,
    Y=None,
    metric: str = "euclidean",
    exclude_self: bool | None = None,
    n_jobs: int | None = None,
    device: str = "auto",
    verbose: bool = False,
    method: str = "exact",
    target_recall: float = 0.99,
    random_state=None,
) -> KNNResult:
    """Exact or approximate k nearest neighbours.

    For every query (row of ``Y``, or of ``X`` when ``Y`` is None) find the ``k`` rows of ``X``
    with the smallest distance. Scores come from a tiled, SIMD micro-kernel
    (``||x||^2 + ||y||^2 - 2 x.y``) fused with a per-row top-k selection, parallel with OpenMP,
    in memory O((n + m) d + m k); the winners' distances are then recomputed exactly, so they are
    never negative and exact duplicates are at distance 0. When ``Y`` is None each pair is scored
    once (half the arithmetic).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data points. float32 and float64 are used as they are; float16 becomes float32;
        integer and boolean input becomes float64. NaN/inf raise ``ValueError``.
    k : int
        Number of neighbours, ``1 <= k <= n_samples`` (``k <= n_samples - 1`` when a point is
        excluded from its own list).
    Y : array-like of shape (n_queries, n_features), optional
        Query points. Default: the rows of ``X``. If ``X`` and ``Y`` differ in dtype both are
        converted to the wider one.
    metric : {"euclidean", "sqeuclidean", "cosine", "inner_product"}
        ``"euclidean"`` gives true distances, ``"sqeuclidean"`` their squares, ``"cosine"``
        gives ``1 - cos(x, y)`` (a zero vector is at distance 1 from everything),
        ``"inner_product"`` ranks by the largest ``x.y`` and reports ``-x.y``.
    exclude_self : bool, optional
        Drop point ``i`` from its own neighbour list. Default: True when ``Y`` is None, else
        False (and it may only be True when ``Y`` is None). Other points identical to ``i``
        stay, at distance 0. With an approximate ``method`` and False, each list starts with
        the point itself, then its ``k - 1`` approximate neighbours: the layout UMAP's
        ``precomputed_knn`` takes, ``umap.UMAP(n_neighbors=15, precomputed_knn=geoml.knn(X,
        15, exclude_self=False, method="auto"))``.
    n_jobs : int, optional
        Threads. None: OpenMP's default (``OMP_NUM_THREADS``, else all cores); -1: all cores.
        Ignored on the GPU.
    device : {"auto", "cpu", "cuda"}
        Where to compute. ``"auto"`` follows the input: CuPy arrays (or any
        ``__cuda_array_interface__`` array) run on the GPU, on CuPy's current stream. ``"cuda"``
        sends NumPy input to the GPU, ``"cpu"`` brings device input to the host. Results have
        the type of ``X`` (NumPy or CuPy) wherever they were computed. The GPU search (tiled
        score kernel fused with a per-query top-k, then the same exact re-computation and
        sort) accepts ``k <= 2048``; X and Y must both be host or both be device arrays.
    verbose : bool, default False
        Print progress (percentage, elapsed and remaining time) to stderr every 2 seconds
        (CPU search).
    method : {"exact", "nndescent", "auto"}, default "exact"
        ``"nndescent"``: approximate kNN graph of the rows of ``X`` (``Y`` None, CPU):
        random-projection-forest start whose leaves are searched exactly, then NN-descent
        iterations until the measured recall reaches ``target_recall``; the same graph for any
        ``n_jobs``, no JIT compilation, memory within ``X`` plus ``2.5 n k 12`` bytes for
        float32 (see ``docs/design/neighbors.md``). ``"auto"``: exact for fewer than 20,000
        points or when ``Y`` is given, else ``"nndescent"``.
    target_recall : float in (0, 1], default 0.99
        Recall the approximate search iterates towards (measured on 500 points searched
        exactly). If it is not reached, a ``RuntimeWarning`` is issued and
        ``result.recall_.reached`` is False.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Seed of the approximate search (trees, candidate sampling, checked points). With a
        fixed value the result is identical for every ``n_jobs``.

    Returns
    -------
    KNNResult or ApproxKNNResult
        ``indices`` (int64, shape (n_queries, k)) and ``distances`` (input float dtype, shape
        (n_queries, k)), each row sorted by increasing distance, ties by index. With
        ``method="nndescent"`` or ``"auto"``: an :class:`ApproxKNNResult`, which also carries
        ``recall_`` (:class:`RecallEstimate`: estimate, 95 % interval, whether the target
        was reached, the method that ran).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    >>> idx, dist = geoml.knn(X, 2)
    >>> idx
    array([[1, 2],
           [0, 2],
           [0, 1],
           [2, 1]])
    >>> dist[0]
    array([1., 2.])

    Approximate search with its measured recall:

    >>> Z = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    >>> res = geoml.knn(Z, 10, method="nndescent", random_state=0)
    >>> res.indices.shape, res.recall_.reached, res.recall_.estimate >= 0.99
    ((3000, 10), True, True)
    """
    target = _check_method(method, target_recall)
    if method != "exact":
        if is_gpu_array(X) or resolve_device(device, X, Y) == "cuda":
            if method == "nndescent":
                raise ValueError("method='nndescent' runs on the CPU; use device='cpu'")
        else:
            X = as_float_array(X, "X")
            _check_metric(metric)
            if exclude_self and Y is not None:
                raise ValueError("exclude_self=True needs Y=None (queries are the rows of X)")
            if Y is not None:
                Y = as_float_array(Y, "Y", allow_empty=True)
                X, Y = _same_features_and_dtype(X, Y)
            return _knn_method(
                X, k, Y, metric, exclude_self, n_jobs, verbose, method, target, random_state
            )
    where = resolve_device(device, X, Y)
    if where == "cuda" or is_gpu_array(X):
        return _knn_elsewhere(X, k, Y, metric, exclude_self, n_jobs, where)
    X = as_float_array(X, "X")
    _check_metric(metric)
    if exclude_self and Y is not None:
        raise ValueError("exclude_self=True needs Y=None (queries are the rows of X)")
    if Y is not None:
        Y = as_float_array(Y, "Y", allow_empty=True)
    return _knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose)


def _knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose=False) -> KNNResult:
    """:func:`knn` of arrays already validated (``as_float_array`` or its device twin) and on
    the side that computes: NumPy on the CPU, CuPy on the GPU. No second NaN scan of X or Y;
    the parameters are checked here, with :func:`knn`'s messages."""
    if is_gpu_array(X):
        from ._neighbors_gpu import knn_device

        check_n_jobs(n_jobs)
        metric, exclude_self, k = _knn_checks(X.shape[0], k, Y is not None, metric, exclude_self)
        if Y is not None:
            X, Y = _same_features_and_dtype(X, Y)
        return KNNResult(*knn_device(X, Y, k, metric, exclude_self))
    _check_metric(metric)
    if exclude_self and Y is not None:
        raise ValueError("exclude_self=True needs Y=None (queries are the rows of X)")
    if Y is not None:
        X, Y = _same_features_and_dtype(X, Y)
    metric, exclude_self, k = _knn_checks(X.shape[0], k, Y is not None, metric, exclude_self)
    _check_magnitude(X, Y)
    idx, dist = _core.knn(
        X,
        Y,
        k=k,
        metric=metric,
        exclude_self=exclude_self,
        n_jobs=check_n_jobs(n_jobs),
        verbose=bool(verbose),
    )
    return KNNResult(idx, dist)


def _affinities(dist: np.ndarray, idx: np.ndarray, kernel, sigma, k_sigma, decay) -> np.ndarray:
    """Turn (n, k) neighbour distances into affinities. O(n k), vectorised NumPy."""
    xp = _xp(dist)
    k = dist.shape[1]
    tiny = np.finfo(dist.dtype).tiny
    if kernel == "gaussian":
        if sigma is None:
            sigma = float(xp.median(dist[:, -1]))
        sigma = float(sigma)
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
        with np.errstate(over="ignore"):  # sigma_i sigma_j >= tiny: 0 / 0 cannot occur
            return xp.exp(-(dist**2) / xp.maximum(s[:, None] * s[idx], tiny))
    decay = 40.0 if decay is None else float(decay)
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
        from ._neighbors_gpu import to_csr_device

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
        Kernel parameters, see ``kernel``.
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
        Neighbours per point.
    metric, mode, symmetrize, kernel, sigma, k_sigma, decay, n_jobs, device, verbose
        As in :func:`knn_graph`. With CuPy input (or ``device="cuda"``) the search and the
        graph run on the GPU; fitted attributes have the type of the fitted ``X`` (CuPy arrays
        and a ``cupyx.scipy.sparse.csr_matrix`` for device input).
    method, target_recall, random_state
        Exact (default) or approximate search of the fitted points, as in :func:`knn`
        (approximate: CPU only); :meth:`kneighbors` of new points is always exact.

    Attributes
    ----------
    indices_ : ndarray of shape (n_samples, n_neighbors)
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
        _check_graph_options(self.mode, self.symmetrize, self.kernel)
        target = _check_method(self.method, self.target_recall)
        where = resolve_device(self.device, X)
        gpu_in = is_gpu_array(X)
        X = _on_device(X, where, "X")  # validated once, on the side that computes
        res = _knn_method(
            X,
            self.n_neighbors,
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
        self.indices_, self.distances_ = _move(res[0], gpu_in), _move(res[1], gpu_in)
        self.graph_ = _move(graph, gpu_in)
        self.n_features_in_ = X.shape[1]
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
            Default: the fitted ``n_neighbors``.
        """
        if not hasattr(self, "_fit_X"):
            raise NotFittedError("this KNNGraph is not fitted yet; call fit(X) first")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if Y is None:
            if k == self.n_neighbors:
                return KNNResult(self.indices_, self.distances_)
            res = _knn_checked(self._fit_X, k, None, self.metric, None, self.n_jobs)
            to_gpu = self._fit_gpu_in
        else:
            where = "cuda" if is_gpu_array(self._fit_X) else "cpu"
            to_gpu = is_gpu_array(Y)
            Y = _on_device(Y, where, "Y", allow_empty=True)  # the fitted X was checked by fit
            res = _knn_checked(self._fit_X, k, Y, self.metric, None, self.n_jobs)
        return KNNResult(_move(res[0], to_gpu), _move(res[1], to_gpu))


class KNNTransformer(BaseEstimator):
    """Sparse kNN graph of the samples, with scikit-learn's ``KNeighborsTransformer`` contract.

    A drop-in neighbours backend for estimators that take a precomputed sparse graph:
    ``Isomap(metric="precomputed")``, ``TSNE(metric="precomputed")``,
    ``SpectralEmbedding(affinity="precomputed_nearest_neighbors")``, ``DBSCAN``, UMAP
    (``precomputed_knn``) and scanpy (``sc.pp.neighbors(adata, transformer=...)``).
    ``transform(X)`` gives row ``i`` the ``n_neighbors`` nearest fitted samples of ``X[i]``
    (one more in ``"distance"`` mode, as scikit-learn: a fitted sample is its own first
    neighbour at an explicit distance 0); rows are sorted by distance.

    Parameters
    ----------
    n_neighbors : int, default 5
        Neighbours per sample (plus the sample itself in ``"distance"`` mode).
    mode : {"distance", "connectivity"}, default "distance"
        Stored values: distances, or ones.
    metric : {"euclidean", "sqeuclidean", "cosine", "inner_product"}, default "euclidean"
        As in :func:`knn`.
    method : {"auto", "exact", "nndescent"}, default "auto"
        Search of ``fit_transform(X)``, as in :func:`knn`: ``"nndescent"`` (or ``"auto"``
        from 20,000 samples) builds the approximate graph of ``X`` and adds each sample as its
        own neighbour; otherwise, and for ``transform`` of new data, the search is exact.
    target_recall, random_state, n_jobs :
        As in :func:`knn`.

    Attributes
    ----------
    n_samples_fit_ : int
    n_features_in_ : int
    recall_ : RecallEstimate or None
        Recall of the last ``fit_transform`` (exact searches: 1).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> G = geoml.KNNTransformer(n_neighbors=1).fit_transform(X)
    >>> G.toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 0., 0.],
           [0., 2., 0., 0.],
           [0., 0., 4., 0.]])
    >>> G.nnz  # the explicit zeros of the diagonal count
    8
    """

    _transformer = True

    def __init__(
        self,
        n_neighbors: int = 5,
        *,
        mode: str = "distance",
        metric: str = "euclidean",
        method: str = "auto",
        target_recall: float = 0.99,
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.metric = metric
        self.method = method
        self.target_recall = target_recall
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self) -> float:
        if self.mode not in ("distance", "connectivity"):
            raise ValueError(f"mode={self.mode!r}; choose 'distance' or 'connectivity'")
        _check_metric(self.metric)
        check_n_jobs(self.n_jobs)
        check_int(self.n_neighbors, "n_neighbors", low=1)
        return _check_method(self.method, self.target_recall)

    def _k(self) -> int:
        """Neighbours per row, scikit-learn's way: one more in distance mode."""
        k = self.n_neighbors + (self.mode == "distance")
        if k > self.n_samples_fit_:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} needs {k} fitted samples in {self.mode!r} "
                f"mode (the sample itself is its first neighbour); got n_samples_fit="
                f"{self.n_samples_fit_}"
            )
        return k

    def fit(self, X, y=None) -> KNNTransformer:
        """Store the samples, array-like of shape (n_samples, n_features)."""
        self._check_params()
        X = as_float_array(X, "X")
        self._fit_X = X
        self.n_samples_fit_, self.n_features_in_ = X.shape
        self.recall_ = None
        return self

    def _graph(self, idx: np.ndarray, dist: np.ndarray) -> sp.csr_matrix:
        m, k = idx.shape
        data = dist.ravel() if self.mode == "distance" else np.ones(m * k)
        indptr = np.arange(0, m * k + 1, k, dtype=np.int64)
        return sp.csr_matrix((data, idx.ravel(), indptr), shape=(m, self.n_samples_fit_))

    def transform(self, X) -> sp.csr_matrix:
        """Graph of shape (n_queries, n_samples_fit): row ``i`` holds the nearest fitted
        samples of ``X[i]`` (exact search), sorted by distance."""
        if not hasattr(self, "_fit_X"):
            raise NotFittedError("this KNNTransformer is not fitted yet; call fit(X) first")
        Y = np.asarray(X) if not hasattr(X, "ndim") else X
        if Y.ndim == 1:
            raise ValueError(
                f"X must be a 2-D array; got shape {Y.shape}. Reshape your data, e.g. "
                "X.reshape(1, -1) for one sample"
            )
        Y = as_float_array(X, "X")
        if Y.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Y.shape[1]} features, but KNNTransformer is expecting "
                f"{self.n_features_in_} features as input"
            )
        k = self._k()
        Xf, Y = _same_features_and_dtype(self._fit_X, Y)
        idx, dist = _knn_checked(Xf, k, Y, self.metric, False, self.n_jobs)
        return self._graph(idx, dist)

    def fit_transform(self, X, y=None) -> sp.csr_matrix:
        """``fit(X).transform(X)``; with an approximate ``method`` the graph of ``X`` comes from
        NN-descent, each sample first in its own row at distance 0."""
        target = self._check_params()
        X = as_float_array(X, "X")
        n = X.shape[0]
        approx = self.method == "nndescent" or (
            self.method == "auto" and not _auto_is_exact(n, X.shape[1])
        )
        if not approx:
            out = self.fit(X).transform(X)
            self.recall_ = RecallEstimate(1.0, 1.0, 1.0, n, target, True, "exact", 0)
            return out
        self.fit(X)
        res = _knn_method(
            X,
            self._k(),
            None,
            self.metric,
            False,
            self.n_jobs,
            False,
            "nndescent",
            target,
            self.random_state,
        )
        idx, dist = res
        rec = res.recall_
        self.recall_ = rec
        return self._graph(idx, dist)
