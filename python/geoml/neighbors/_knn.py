"""Exact and approximate k-nearest neighbours: :func:`knn`, its results and checks."""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _core
from .._device import move as _move
from .._device import on_device as _on_device
from .._device import resolve_device
from .._device import xp as _xp
from .._results import ExtraFields
from .._validation import (
    as_float_array,
    check_int,
    check_n_jobs,
    is_gpu_array,
    random_seed,
    user_stacklevel,
    validate_random_state,
)

_METHODS = ("exact", "nndescent", "auto")
# "auto" searches exactly below this many points (an exact search there takes under ~2 s on
# 2 cores at d = 128), approximately from there on: see docs/design/neighbors.md.
_AUTO_MIN_N = 20_000
_MAX_ITER = 20  # NN-descent iterations at most (the C++ default)
_N_CHECK = 500  # points whose neighbours are checked exactly by the approximate search

_KERNELS = (None, "gaussian", "adaptive", "alpha_decay")
# float32 Euclidean exact searches below this dimension stay in float32: the C++ search runs
# its certified difference-form screen there (kDiffScreenMaxDim in cpp/neighbors/knn.cpp)
_F32_DIFF_MAX_D = 16


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
    """NN-descent iterations after the random-projection-forest start (with
    ``method="auto"`` and ``method`` ``"exact"``: those of the approximate search that
    stopped short of the target before the exact search replaced it)."""


def _wilson(p: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``p`` observed on ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class ApproxKNNResult(ExtraFields, KNNResult):
    """A :class:`KNNResult` (unpacks as ``indices, distances``) with the measured
    ``recall_`` (:class:`RecallEstimate`) of the search that produced it (kept by
    ``_replace``, ``copy`` and ``pickle``)."""

    recall_: RecallEstimate


def _with_recall(res: KNNResult, recall: RecallEstimate) -> ApproxKNNResult:
    out = ApproxKNNResult(res.indices, res.distances)
    out.recall_ = recall
    return out


def _exact_recall(res: KNNResult, target: float, n_iter: int = 0) -> ApproxKNNResult:
    """An exact search's result as ``method="auto"`` returns it (recall 1, ``"exact"``;
    ``n_iter`` NN-descent iterations paid before it)."""
    n = res[0].shape[0]
    return _with_recall(res, RecallEstimate(1.0, 1.0, 1.0, n, target, True, "exact", n_iter))


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


def _auto_budget(n: int, d: int) -> float:
    """The exact search's cost in NN-descent iterations, for ``method="auto"``: below 2 the
    exact search runs; up to ``_MAX_ITER`` NN-descent runs with that budget (it stops when
    the iterations its recall still needs, at the last one's rate, would pass it) and the
    exact search replaces a graph short of the target; above, NN-descent alone. Cost model
    (2-core AMD EPYC, float32, k = 15, session 29): an iteration about ``n`` x 10 us at any d,
    the exact search about ``n^2 (0.3 + 0.0115 d)`` ns. On data of high intrinsic dimension
    (Gaussian, 16-128-D, n up to 100,000) NN-descent was slower than the exact search and
    stalled at recall 0.58-0.99. Under a budget NN-descent also stops before any iteration
    when the clustered start's first split finds no structure (the cells would overlap and
    cost about an exact search), or when the forest's first split (high intrinsic dimension)
    holds so few of the checked points' neighbours in their leaves that even the best-mixing
    iterations would need more than one and more than half the budget (session 31: Gaussian
    20,000 x 128 paid 4 trees and an iteration, 1.5-2x the exact search), and does not stop
    at a stall the second partition repairs. A function of the shape only (and the rules of
    the sampled recall, the split's counts and the first tree's leaves only): the same graph
    for any thread count."""
    return n * (0.3 + 0.0115 * d) / 1e4


def _knn_approx(
    X, k, metric, target, random_state, n_jobs, verbose, budget=0.0, warn=True
) -> ApproxKNNResult:
    """NN-descent graph of validated host X (self query, a point not its own neighbour);
    with ``warn`` a ``RuntimeWarning`` when the target recall is not reached."""
    metric, _, k = _knn_checks(X.shape[0], k, False, metric, True)
    shift = _check_magnitude(X, None, metric)
    opts = _core.NNDescentOptions(
        target_recall=target, n_check=_N_CHECK, seed=random_seed(random_state), iter_budget=budget
    )
    idx, dist, n_iter, n_checked, hits, _ = _core.nndescent(
        _scaled(X, shift),
        k=k,
        metric=metric,
        options=opts,
        n_jobs=check_n_jobs(n_jobs),
        verbose=bool(verbose),
    )
    idx, dist = idx.reshape(X.shape[0], k), dist.reshape(X.shape[0], k)
    dist = _unscaled_distances(dist, metric, shift)
    est = hits / (n_checked * k) if n_checked else 1.0
    low, high = (est, est) if n_checked >= X.shape[0] else _wilson(est, n_checked)
    rec = RecallEstimate(est, low, high, int(n_checked), target, est >= target, "nndescent", n_iter)
    if warn and not rec.reached:
        warnings.warn(
            f"approximate kNN: measured recall {est:.4f} (95% interval [{low:.4f}, "
            f"{high:.4f}] on {n_checked} points checked exactly) is below "
            f"target_recall={target}; use method='exact' for an exact graph",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
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
    # "auto" searches exactly wherever the approximate search cannot serve the call: queries Y,
    # device data, small n, and a point first in its own list under inner products (where it
    # need not be its own nearest neighbour: method="nndescent" refuses that below)
    self_first_ip = exclude_self is False and metric == "inner_product"
    small = method == "auto" and approx_ok and _auto_is_exact(X.shape[0], X.shape[1])
    if method == "auto" and (
        not approx_ok or self_first_ip or (small and exclude_self is not False)
    ):
        return _exact_recall(_knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose), target)

    def search(kk):  # the kk neighbours of each point other than itself
        n_iter = 0  # NN-descent iterations paid before an exact search
        if method == "nndescent":
            return _knn_approx(X, kk, metric, target, random_state, n_jobs, verbose)
        # "auto" (below its exact threshold: exact, each point first, the layout below), else
        # NN-descent while it reaches the target within an exact search's cost
        budget = 0.0 if small else _auto_budget(*X.shape)
        if budget > _MAX_ITER:
            return _knn_approx(X, kk, metric, target, random_state, n_jobs, verbose)
        if budget >= 2:
            res = _knn_approx(X, kk, metric, target, random_state, n_jobs, verbose, budget, False)
            if res.recall_.reached:
                return res
            n_iter = res.recall_.n_iter
            if verbose:
                print(
                    f"[geoml] knn: method='auto': recall {res.recall_.estimate:.4f} after "
                    f"{n_iter} NN-descent iterations, the target not within about the exact "
                    "search's cost; exact search instead",
                    file=sys.stderr,
                    flush=True,
                )
        ex = _knn_checked(X, kk, None, metric, True, n_jobs, verbose)
        return _exact_recall(ex, target, n_iter)

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
                *_prepend_self(X, (np.empty((n, 0), np.int64), np.empty((n, 0), X.dtype)), metric)
            )
            return _exact_recall(res, target)
        res = search(k - 1)
        return _with_recall(KNNResult(*_prepend_self(X, res, metric)), res.recall_)
    return search(k)


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
    elif not isinstance(exclude_self, (bool, np.bool_)):
        raise TypeError(f"exclude_self must be None or a bool; got {exclude_self!r}")
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


def _check_magnitude(X, Y, metric=None) -> int:
    """Scores are ||x||^2 + ||y||^2 - 2 x.y (or x.y): each must stay finite in X's dtype.

    Returns the power of two ``s`` to scale X and Y by (:func:`_scaled`) so that those scores
    do not underflow: 0 for ordinary data, ``-frexp(max |entry|)[1]`` when every entry is
    below ``sqrt(tiny / eps)`` of the dtype (``3e-16`` in float32, ``1.5e-146`` in float64),
    where the squares lose their digits in the subnormal range (float32 data at 1e-22 gave
    3/4 of the neighbours wrong, silently). Entries so large that the scores overflow raise
    ``ValueError``, except under ``metric="cosine"``, which does not depend on the scale:
    such data is searched scaled down by a power of two (scikit-learn's cosine takes data
    of 1e200). NumPy or CuPy arrays (one read-back each)."""
    info = np.finfo(X.dtype)
    bound = float(np.sqrt(info.max / (4 * max(X.shape[1], 1))))
    cosine = metric is not None and (metric == _core.Metric.cosine or metric == "cosine")
    amax = 0.0
    for A, name in ((X, "X"), (Y, "Y")):
        # max(|A|) as max(max A, -min A): no temporary the size of the data
        if A is not None and A.size:
            a = float(_xp(A).maximum(A.max(), -A.min()))
            if not a <= bound and not (cosine and np.isfinite(a)):
                raise ValueError(
                    f"{name} has entries beyond {bound:.3g} in absolute value: squared "
                    f"distances would overflow {X.dtype}; rescale the data"
                )
            amax = max(amax, a)
    if 0.0 < amax < float(np.sqrt(info.tiny / info.eps)) or amax > bound:
        return -int(np.frexp(amax)[1])
    return 0


def _shifts(X, Y, metric) -> tuple[int, int]:
    """The powers of two X and Y are searched scaled by: :func:`_check_magnitude`'s one for
    both, but under cosine (which depends on neither array's scale) each array's own: one
    scale for X of 1e200 and Y of 1e-100 would send Y's squares below float64's range."""
    if not (metric == _core.Metric.cosine or metric == "cosine") or Y is None:
        s = _check_magnitude(X, Y, metric)
        return s, s
    return _check_magnitude(X, None, metric), _check_magnitude(Y, None, metric)


def _scaled(A, shift: int):
    """``A * 2^shift`` (exact; NumPy or CuPy), A itself for shift 0 or None."""
    if A is None or shift == 0:
        return A
    return _xp(A).ldexp(A, shift).astype(A.dtype, copy=False)


def _unscaled_distances(dist, metric, shift: int):
    """Distances of data scaled by ``2^shift`` back to the data's scale (exact): euclidean
    scales as the data, squared distances and inner products as its square, cosine not."""
    if shift == 0 or metric == _core.Metric.cosine or metric == "cosine":
        return dist
    p = 1 if metric in (_core.Metric.euclidean, "euclidean") else 2
    return _xp(dist).ldexp(dist, -p * shift).astype(dist.dtype, copy=False)


def _same_features_and_dtype(X, Y):
    if Y.ndim != 2 or Y.shape[1] != X.shape[1]:
        raise ValueError(f"Y has {Y.shape[1]} features but X has {X.shape[1]}")
    if Y.dtype != X.dtype:
        wide = np.promote_types(X.dtype, Y.dtype)
        X, Y = X.astype(wide, copy=False), Y.astype(wide, copy=False)
    return X, Y


def _host_inputs(X, Y, metric, exclude_self):
    """X and Y of :func:`knn` on the host, validated (``as_float_array``), with the metric and
    ``exclude_self`` checked before Y is read."""
    X = as_float_array(X, "X")
    _check_metric(metric)
    if exclude_self and Y is not None:
        raise ValueError("exclude_self=True needs Y=None (queries are the rows of X)")
    if Y is not None:
        Y = as_float_array(Y, "Y", allow_empty=True)
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
        integer and boolean input becomes float64. The exact Euclidean and squared Euclidean
        search of float32 data is certified exact row by row (float32 scores
        ``||y||^2 - 2 x.y`` alone, rounded to about ``d 2^-24 max ||x - mean||^2``, swapped
        neighbours of clusters far apart): below 16 features a float32 screen by
        ``sum (x - y)^2``, whose rounding is relative to the distance, rows it cannot prove
        searched again in float64; from 16 on the float64 search of a float64 copy
        (``8 (n + m) d`` bytes more). Distances are returned in float32, the same as those
        of the float64 search of the float64 copy (the GPU search and
        :func:`geoml.dask.knn` score float32 in float64). NaN/inf raise
        ``ValueError``, and so do entries so large that squared distances overflow (but
        under ``metric="cosine"``, which does not depend on the scale: such data is searched
        scaled down by a power of two); data so small that they would underflow (every
        entry below ``3e-16`` in float32, ``1.5e-146`` in float64) is searched on a copy
        scaled by a power of two, the distances scaled back.
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
        stay, at distance 0. With ``method="nndescent"`` or ``"auto"`` and False, each list
        starts with the point itself (also where ``"auto"`` searches exactly: with
        ``method="exact"`` a duplicate of lower index comes first, ties being by index), then
        its ``k - 1`` nearest (approximate) neighbours (under ``metric="inner_product"``,
        where a point need not be its own nearest, ``"nndescent"`` refuses False and
        ``"auto"`` is the exact search): the layout UMAP's
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
        points, when ``Y`` is given, or with ``exclude_self=False`` under
        ``metric="inner_product"``; else, while a model of both costs from the shape of ``X``
        says the exact search costs less than 20 NN-descent iterations (below about 110,000
        points at d = 128, 410,000 at d = 16), the exact search where it costs less than two
        iterations, and otherwise ``"nndescent"`` replaced by the exact search when its recall
        is not on course to ``target_recall`` within about the exact search's cost (data of
        high intrinsic dimension, where NN-descent is slow and stalls); beyond, ``"nndescent"``.
        ``result.recall_.method`` says which graph it is.
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
        (n_queries, k)), each row sorted by increasing distance, ties by index. Which of
        several points tied at the k-th distance are kept is up to the search (not always
        those of lowest index, and a query ``Y`` may keep other ones than the self query),
        the same for any ``n_jobs``. With ``method="nndescent"`` or ``"auto"``: an
        :class:`ApproxKNNResult`, which also carries ``recall_`` (:class:`RecallEstimate`:
        estimate, 95 % interval, whether the target was reached, the method that ran).

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
    validate_random_state(random_state)
    if method != "exact":
        if is_gpu_array(X) or resolve_device(device, X, Y) == "cuda":
            if method == "nndescent":
                raise ValueError("method='nndescent' runs on the CPU; use device='cpu'")
        else:
            X, Y = _host_inputs(X, Y, metric, exclude_self)
            if Y is not None:
                X, Y = _same_features_and_dtype(X, Y)
            return _knn_method(
                X, k, Y, metric, exclude_self, n_jobs, verbose, method, target, random_state
            )
    where = resolve_device(device, X, Y)
    if where == "cuda" or is_gpu_array(X):
        return _knn_elsewhere(X, k, Y, metric, exclude_self, n_jobs, where)
    X, Y = _host_inputs(X, Y, metric, exclude_self)
    return _knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose)


def _knn_checked(X, k, Y, metric, exclude_self, n_jobs, verbose=False) -> KNNResult:
    """:func:`knn` of arrays already validated (``as_float_array`` or its device twin) and on
    the side that computes: NumPy on the CPU, CuPy on the GPU. No second NaN scan of X or Y;
    the parameters are checked here, with :func:`knn`'s messages."""
    if is_gpu_array(X):
        from .._neighbors_gpu import knn_device

        check_n_jobs(n_jobs)
        metric, exclude_self, k = _knn_checks(X.shape[0], k, Y is not None, metric, exclude_self)
        if Y is not None:
            X, Y = _same_features_and_dtype(X, Y)
        # the CPU path's guard: overflow refused, data whose squared distances underflow
        # searched scaled by a power of two, distances scaled back (exact)
        shift, y_shift = _shifts(X, Y, metric)
        idx, dist = knn_device(_scaled(X, shift), _scaled(Y, y_shift), k, metric, exclude_self)
        return KNNResult(idx, _unscaled_distances(dist, metric, shift))
    _check_metric(metric)
    if exclude_self and Y is not None:
        raise ValueError("exclude_self=True needs Y=None (queries are the rows of X)")
    if Y is not None:
        X, Y = _same_features_and_dtype(X, Y)
    metric, exclude_self, k = _knn_checks(X.shape[0], k, Y is not None, metric, exclude_self)
    shift, y_shift = _shifts(X, Y, metric)
    Xs, Ys = _scaled(X, shift), _scaled(Y, y_shift)
    # float32 Euclidean data from d = 16 on: the float32 kernel ranks by ||y||^2 - 2 x.y on
    # centred rows, whose rounding (about d 2^-24 max ||x - mean||^2) swapped neighbours of
    # clusters far apart (make_blobs(cluster_std=0.1): 1 % of the rows; clusters 1,000 apart:
    # the 1-NN 50x too far); the float64 search is certified exact row by row (same cost from
    # d = 16). Below, the float32 search itself is certified (a difference-form screen whose
    # rounding is relative to the distance, rows without a proof searched in float64)
    wide = (
        X.dtype == np.float32
        and X.shape[1] >= _F32_DIFF_MAX_D
        and metric in (_core.Metric.euclidean, _core.Metric.sqeuclidean)
    )
    if wide:
        Xs = Xs.astype(np.float64)
        Ys = None if Ys is None else Ys.astype(np.float64)
    idx, dist = _core.knn(
        Xs,
        Ys,
        k=k,
        metric=metric,
        exclude_self=exclude_self,
        n_jobs=check_n_jobs(n_jobs),
        verbose=bool(verbose),
    )
    dist = _unscaled_distances(dist, metric, shift)
    return KNNResult(idx, dist.astype(np.float32) if wide else dist)
