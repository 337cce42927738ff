"""geoml on Dask: exact kNN graphs over a row-chunked ``dask.array``, batched optimal transport
over problem-chunked arrays, and Ollivier-Ricci curvature and Ricci flow with edges partitioned
into tasks, on any ``distributed.Client`` or Dask's threaded scheduler.

Optional: needs the ``dask`` extra (``pip install geoml[dask]``). Neither ``import geoml`` nor
``import geoml.dask`` imports Dask (each function imports it when called). The tasks call
geoml's own kernels (``_core.knn``, :func:`geoml.ot.emd_batched`,
:func:`geoml.ot.sinkhorn_batched`, the curvature kernel); Dask schedules, moves and retries them
(no scheduler or sockets of our own). Cost model: ``docs/design/scale-out.md``.

Threads: a Dask worker with ``nthreads`` threads runs that many tasks at once, so by default
(``n_jobs=None``) every task uses one OpenMP thread and the worker's threads are filled by tasks,
never oversubscribed. ``n_jobs=-1`` gives each task all of its worker's threads (the worker's
``nthreads`` on a ``distributed`` worker, the machine's cores under the threaded scheduler):
use it with one task per worker at a time, e.g. workers started with ``--nthreads 1`` on
machines whose cores are reserved for them. A positive ``n_jobs`` is used as given.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import (
    aligned,
    check_int,
    check_n_jobs,
    random_seed,
    user_stacklevel,
    validate_random_state,
)
from .neighbors import (
    KNNResult,
    RecallEstimate,
    _check_graph_options,
    _check_magnitude,
    _check_metric,
    _graph_from_neighbors,
)
from .neighbors._knn import (
    _AUTO_MIN_N,
    _F32_DIFF_MAX_D,
    _N_CHECK,
    _check_method,
    _wilson,
    _with_recall,
)
from .ot import BatchedOTResult, BatchedSinkhornResult

__all__ = [
    "emd_batched",
    "emd_batched_points",
    "knn",
    "knn_graph",
    "ollivier_ricci",
    "point_cloud_costs",
    "ricci_flow",
    "sinkhorn_batched",
    "sinkhorn_batched_points",
]


# ---------------------------------------------------------------------------- helpers


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "geoml.dask needs Dask: pip install 'geoml[dask]' (dask[array], distributed)"
        ) from exc
    return dask, da


def _check_task_jobs(n_jobs) -> int | None:
    """Validate ``n_jobs`` on the client (None, -1 or a positive int)."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be None, -1 or a positive int; got {n_jobs!r}")
    n_jobs = int(n_jobs)
    if n_jobs != -1 and n_jobs < 1:
        raise ValueError(f"n_jobs must be None, -1 or a positive int; got {n_jobs}")
    return n_jobs


def _task_threads(n_jobs) -> int:
    """OpenMP threads for one task, resolved where the task runs (see the module docstring)."""
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        try:
            from distributed import get_worker

            return max(1, int(get_worker().state.nthreads))
        except (ImportError, ValueError, AttributeError):
            import os

            return max(1, os.cpu_count() or 1)
    return check_n_jobs(n_jobs)


def _as_dask_rows(X, name: str = "X"):
    """A 2-D float32/float64 dask array chunked by rows only (columns in one chunk)."""
    _, da = _import_dask()
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} must be a dask.array.Array; got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}")
    if any(np.isnan(c) for c in X.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {X.shape}")
    if X.dtype == np.float16 or X.dtype.kind in "biu":
        X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
    elif X.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return X


# ---------------------------------------------------------------------------- kNN


def _seqsum(terms) -> np.ndarray:
    """Sum over the last axis in index order, one float64 add at a time, like the C++ loop
    (NumPy's pairwise ``sum`` rounds differently)."""
    s = np.zeros(terms.shape[:-1])
    for t in range(terms.shape[-1]):
        s += terms[..., t]
    return s


def _exact64(Q: np.ndarray, D: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """Distances of the (m, c) candidates idx (rows of D) to the rows of Q in float64, with
    the formulas and summation order of geoml's finishing step (knn.cpp, exact_distance)."""
    q = Q.astype(np.float64)[:, None, :]
    x = D.astype(np.float64)[idx]
    if metric in ("euclidean", "sqeuclidean"):
        diff = q - x
        s = _seqsum(diff * diff)
        return np.sqrt(s) if metric == "euclidean" else s
    dot = _seqsum(q * x)
    if metric == "inner_product":
        return -dot
    Q64, D64 = Q.astype(np.float64), D.astype(np.float64)
    qn = np.sqrt(_seqsum(Q64 * Q64))[:, None]
    xn = np.sqrt(_seqsum(D64 * D64))[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.minimum(2.0, np.maximum(0.0, 1.0 - dot / (qn * xn)))
    return np.where((qn == 0) | (xn == 0), 1.0, dist)


def _check_tiny(A, where: str) -> None:
    """Overflow check of rows of X (:func:`geoml.neighbors._knn._check_magnitude`), and a
    ``ValueError`` where they are all so small that their squared distances underflow: the
    chunks are searched on their own, so they cannot take :func:`geoml.knn`'s rescaled copy
    (one scale for the whole data) and would give wrong neighbours silently."""
    if _check_magnitude(A, None):
        lim = float(np.sqrt(np.finfo(A.dtype).tiny / np.finfo(A.dtype).eps))
        raise ValueError(
            f"X's entries {where} are all below {lim:.2g} in absolute value: their squared "
            f"distances underflow in {A.dtype}. Multiply X by a power of two (e.g. "
            "X * 2.0**64) and the distances back (divide by it), or use geoml.knn on the "
            "array in memory, which does so itself"
        )


def _check_block(A, a0: int) -> None:
    """NaN/inf and overflow checks of one chunk, in the task (O(c d) against its O(c^2 d))."""
    if not np.isfinite(A).all():
        raise ValueError(f"X contains NaN or infinity (rows {a0} to {a0 + len(A) - 1})")
    _check_tiny(A, f"in rows {a0} to {a0 + len(A) - 1}")


def _empty_part(m: int):
    return np.empty((m, 0), np.int64), np.empty((m, 0), np.float64)


def _wide(A, metric: str):
    """float32 chunks of a Euclidean pair task in float64: the float32 score
    ``||y||^2 - 2 x.y`` (rounding ~``d 2^-24 max ||x - mean||^2``) swaps neighbours of clusters
    far apart (10 clusters 1,000 apart, 3,000 x 2: 567 rows up to 7x too far). The two-chunk
    kernel (``_core.knn_pair`` with B: one tile pass for both chunks' lists, pruned by their
    own k-th distances) has no certified float32 form; :func:`geoml.knn`'s certified float32
    search below 16 features (the difference-form screen), run once per direction, took 2.6x
    the float64 pass's time (4,000 x 4,000, d = 3 to 15, one thread): it loses the pruning.
    The diagonal tasks run that search itself (:func:`_knn_diag`)."""
    if A.dtype == np.float32 and metric in ("euclidean", "sqeuclidean"):
        return A.astype(np.float64)
    return A


def _knn_diag(Q, q0: int, k: int, metric: str, n_jobs):
    """Candidates of the rows [q0, q0 + len(Q)) among themselves (self excluded): global int64
    indices and exact float64 distances, (m, min(k, m - 1))."""
    m = Q.shape[0]
    _check_block(Q, q0)
    # below 16 features a float32 chunk against itself is geoml.knn's own search (knn_pair
    # without B: the certified float32 difference-form screen, no float64 copy; same rows,
    # same exact distances, 1.3-1.5x faster at 4,000 / 10,000 rows); from 16 on float64
    if Q.shape[1] >= _F32_DIFF_MAX_D:
        Q = _wide(Q, metric)
    c = min(k, m - 1)
    if c < 1:
        return _empty_part(m)
    idx, dist, _, _ = _core.knn_pair(
        aligned(Q), None, k=c, metric=_core.Metric[metric], n_jobs=_task_threads(n_jobs)
    )
    return idx + q0, dist


def _kth(part, k: int):
    """A chunk's pruning bounds from its own candidate list: each row's k-th distance within
    its chunk (an upper bound of its final k-th distance), None when the chunk has no more
    than k rows (no bound)."""
    dist = part[1]
    return np.ascontiguousarray(dist[:, k - 1]) if dist.shape[1] == k else None


def _knn_pair(Q, D, q0: int, d0: int, k: int, metric: str, n_jobs, bq=None, bd=None):
    """Both directions between chunks Q (rows [q0, ...)) and D (rows [d0, ...)) from one pass
    over their distance tile: ((Q's candidates among D), (D's candidates among Q)), global
    int64 indices and exact float64 distances, each list of min(k, other chunk's rows).
    ``bq`` / ``bd``: the rows' k-th distances within their own chunks (:func:`_kth`); a
    candidate beyond them (by more than the score's rounding) is not kept, its slot (-1, inf):
    the merge never needs it, and the heaps then see about k insertions per row instead of
    k (1 + ln(chunk / k))."""
    _check_block(Q, q0)
    _check_block(D, d0)
    if len(Q) == 0 or len(D) == 0:  # a chunk without rows: no candidates either way
        return _empty_part(len(Q)), _empty_part(len(D))
    Q, D = _wide(Q, metric), _wide(D, metric)
    iq, dq, id_, dd = _core.knn_pair(
        aligned(Q),
        aligned(D.astype(Q.dtype, copy=False)),
        bq,
        bd,
        k=k,
        metric=_core.Metric[metric],
        n_jobs=_task_threads(n_jobs),
    )
    iq = np.where(iq >= 0, iq + d0, -1)
    id_ = np.where(id_ >= 0, id_ + q0, -1)
    return (iq, dq), (id_, dd)


def _merge(k: int, *parts):
    """Top-k of the union of candidate lists, ordered by (distance, index) like geoml.knn."""
    idx = np.concatenate([p[0] for p in parts], axis=1)
    dist = np.concatenate([p[1] for p in parts], axis=1)
    order = np.lexsort((idx, dist), axis=1)[:, :k]
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _finish(part, k: int, dtype):
    idx, dist = part
    if idx.shape[1] != k or (idx < 0).any():  # pragma: no cover - guarded by the k check
        raise RuntimeError("geoml.dask.knn: fewer candidates than k")
    return np.ascontiguousarray(idx), dist.astype(dtype)


def _ring_client(dask, schedule: str):
    """The ``distributed.Client`` the ring schedule runs on (the current scheduler), or None."""
    if schedule not in ("auto", "ring", "dask"):
        raise ValueError(f"schedule must be 'auto', 'ring' or 'dask'; got {schedule!r}")
    client = None
    if schedule != "dask":
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - the extra installs distributed
            Client = None
        client = getattr(dask.base.get_scheduler(), "__self__", None)
        if Client is None or not isinstance(client, Client):
            client = None
    if schedule == "ring" and client is None:
        raise ValueError(
            "schedule='ring' needs a distributed.Client as the current scheduler "
            "(Client(...) or client.as_current()); use schedule='dask' otherwise"
        )
    return client


def _ring_plan(homes, W: int) -> dict:
    """Worker (position in 0..W-1) of each chunk pair task (i, j), i < j, given each chunk's
    home worker ``homes[i]``. Pairs within a home run there; across homes a and b the pair runs
    on a when b is less than half-way round the ring from a (b - a mod W < W / 2), on b when
    more; exactly half-way (even W), the higher worker takes the pairs whose chunk from the
    lower one is in the first half of that worker's chunks, the lower worker the rest. So a
    worker reads its own chunks and those of the next (W - 1) / 2 workers round the ring (plus,
    for even W, half of one more worker's or all of it), each once; every worker gets the same
    share of pairs when the chunks are spread evenly. Data moved, chunks of equal size:
    about (W - 1) / 2 n d s for odd W, (W / 2 - 1/4) n d s for even W (W = 2: 3/4 n d s),
    against (W - 1) n d s when every worker reads every chunk."""
    P = len(homes)
    groups = [[i for i in range(P) if homes[i] == w] for w in range(W)]
    rank = {i: r for g in groups for r, i in enumerate(g)}
    place = {}
    for i in range(P):
        for j in range(i + 1, P):
            a, b = homes[i], homes[j]
            if a == b:
                place[i, j] = a
                continue
            delta = (b - a) % W
            if 2 * delta < W:
                place[i, j] = a
            elif 2 * delta > W:
                place[i, j] = b
            else:
                lo, hi = min(a, b), max(a, b)
                x = i if a == lo else j
                place[i, j] = hi if 2 * rank[x] < len(groups[lo]) else lo
    return place


def _ring_moves(homes, place, sizes, d: int, itemsize: int, k: int) -> dict:
    """Bytes the ring schedule moves between workers: each chunk to every other worker that
    runs a pair task needing it, once ("data"), with its rows' bounds ("bounds", 8 bytes per
    row); each chunk's candidate lists merged on every worker that made any, then sent home
    once per other worker ("candidates", 16 bytes per row and neighbour)."""
    need = {}
    for (i, j), w in place.items():
        for c in (i, j):
            if homes[c] != w:
                need.setdefault(c, set()).add(w)
    data = sum(len(ws) * sizes[c] * d * itemsize for c, ws in need.items())
    bounds = sum(len(ws) * sizes[c] * 8 for c, ws in need.items())
    cand = sum(len(ws) * sizes[c] * k * 16 for c, ws in need.items())
    return {"data": data, "bounds": bounds, "candidates": cand}


def _who_has(client, keys) -> dict:
    """{key: workers holding it} for task keys (``client.who_has`` takes futures: given keys,
    or objects whose futures it cannot see, such as ``to_delayed`` blocks, it answers
    nothing), asked of the scheduler directly."""
    return dict(client.sync(client.scheduler.who_has, keys=list(keys)))


def _ring_homes(client, blocks):
    """(worker addresses in order, home position of each chunk): where a chunk already is
    (persisted, or read on the workers), else chunk i on worker i W / P (then put there)."""
    workers = sorted(client.scheduler_info()["workers"])
    W, P = len(workers), len(blocks)
    keys = [b.key for b in blocks]
    who = _who_has(client, keys)
    pos = {w: p for p, w in enumerate(workers)}
    homes, there = [], []
    for i, key in enumerate(keys):
        held = sorted(h for h in who.get(key, ()) if h in pos)
        homes.append(pos[held[0]] if held else i * W // P)
        there.append(bool(held))
    return workers, homes, there


def knn(
    X,
    k: int,
    *,
    metric: str = "euclidean",
    n_jobs: int | None = None,
    split_every: int = 4,
    method: str = "exact",
    target_recall: float = 0.99,
    random_state=None,
    partition_size: int | None = None,
    overlap: float = 1.05,
    schedule: str = "auto",
):
    """Exact or approximate k nearest neighbours of the rows of a row-chunked ``dask.array``.

    Exact (``method="exact"``, lazy): one task per unordered pair of row chunks scores the
    pair's distance tile once and updates both chunks' lists (``_core.knn_pair``: the column
    side of geoml's kernel, as in :func:`geoml.knn`'s self query), one task per chunk searches
    the chunk against itself; each chunk's candidate lists are then merged in a tree of fan-in
    ``split_every`` keeping the k best by (distance, index). The candidates' distances are
    recomputed in float64 with :func:`geoml.knn`'s formulas before the merge, so the result
    equals :func:`geoml.knn` (``Y=None``, a point excluded from its own list) on the same data:
    same indices, same distances, ties by index. Both select candidates by a fast score before
    the exact re-computation, so points tied at the k-th distance (or within the score's
    rounding of it) may be kept differently: exact ties give equal distances; a near-tie in
    float32 may give a neighbour that differs in its last digits (never farther than
    geoml.knn's by more than the score's rounding; see docs/design/scale-out.md). float32
    chunks of a Euclidean search are scored in float64, as :func:`geoml.knn` searches them
    from 16 features on (float32 scores, rounded to about ``d 2^-24 max ||x - mean||^2``,
    swapped neighbours of clusters far apart: 10 clusters 1,000 apart, 3,000 x 2, 567 rows
    up to 7x too far); that costs ~1.4x the float32 tiles' time (20,000 x 64) and a float64
    copy of the task's chunks. Below 16 features a chunk against itself runs
    :func:`geoml.knn`'s own certified float32 search (its difference-form screen) without
    the copy; the pairs of chunks stay in float64 (that screen has no two-chunk form with the
    pruning below).
    Each pair task prunes with the two chunks' own k-th distances (from their diagonal tasks):
    a candidate farther than a row's bound cannot be among its k nearest.

    Placement (exact mode, ``schedule``): on a ``distributed.Client`` (the current scheduler),
    ``"auto"`` and ``"ring"`` place the tasks by a ring schedule: each chunk has a home worker
    (where it already is, else chunk i on worker i W / P, put there first), a chunk's diagonal
    task and merges run at home, and the pair of chunks homed on workers a and b runs on a
    when b is less than half-way round the ring from a, else on b, so that a worker reads each
    chunk it needs once and only about half the workers read a given chunk; each worker merges
    the lists it made for a chunk before sending them home. With a client the tasks are
    submitted at once (the result arrays hold futures, as after ``persist``); the placement is
    loose (``allow_other_workers``), so the scheduler moves tasks if a worker dies.
    ``"dask"`` (and the threaded scheduler) leaves placement to Dask, lazily.

    Approximate (``method="nndescent"``, computed at once, results kept on the workers):
    :func:`geoml.knn`'s start, distributed. :func:`geoml.knn`'s 500 checked points are searched
    exactly first; their intrinsic dimension chooses the start as in :func:`geoml.knn`: below
    ``NNDescentOptions.cluster_min_dim`` (10), and for ``X`` of at most 1 GiB,
    :func:`geoml.knn`'s forest and NN-descent run whole in one task (the worker's threads), else
    its clustered start, distributed. Its top split is made on the client (k-means centres
    fitted on its hashed sample of the rows, gathered); each chunk's rows join the list of their
    nearest centre and, when ``d2 <= overlap d1``, of their second (a shuffle of about ``(1 + f)
    n d`` numbers, f the fraction in two lists); the parts of the split go into a few batches
    per worker thread of about equal work, each batch one task that splits each of its parts
    further and searches its lists exactly as :func:`geoml.knn` does (lists of at most 1.5
    ``partition_size`` points, or up to 4 when a split would not be local); each point keeps its
    k best distinct candidates by the search's score over its lists. On a ``distributed.Client``
    the tasks are placed where their data is (loosely). The lists are those of
    :func:`geoml.knn`'s start with the same ``random_state`` (same cells, same kernel); the
    distances are recomputed with :func:`geoml.knn`'s finishing formula (as in the exact mode).
    The recall is measured on :func:`geoml.knn`'s 500 checked points (searched exactly,
    blockwise); below ``target_recall`` a second partition (other k-means seeds) is merged in,
    where :func:`geoml.knn` would first run NN-descent iterations; ``result.recall_`` holds the
    estimate and its 95 % interval, and a ``RuntimeWarning`` is issued if it is still below.
    With at most 4 ``partition_size`` points, or ``metric="inner_product"`` (which the clustered
    start does not cover), :func:`geoml.knn`'s search runs in one task on all of X. Points with
    fewer than k candidates are searched exactly. The same ``random_state`` gives the same graph
    for any chunking of X, number of workers and ``n_jobs`` (the splits and lists depend on
    global row numbers only); rows completed by the exact search may differ at near-ties only,
    as in the exact mode.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked by rows (column chunks are merged). float32/float64 are used as they are,
        float16 becomes float32, integers and booleans float64. NaN/inf raise ``ValueError``
        when computed (each task checks its two chunks), as do entries whose squares overflow.
    k : int
        Neighbours per point, ``1 <= k <= n_samples - 1``. Chunks may hold fewer than k rows.
    metric : {"euclidean", "sqeuclidean", "cosine", "inner_product"}
        As in :func:`geoml.knn`.
    n_jobs : int, optional
        OpenMP threads per task: None (default) one, so a worker's threads each run a task;
        -1 the worker's ``nthreads``; a positive int as given. See the module docstring.
    split_every : int, default 4
        Fan-in of the merge tree (at least 2).
    method : {"exact", "nndescent", "auto"}, default "exact"
        ``"auto"``: exact below 20,000 points, else ``"nndescent"`` (as :func:`geoml.knn`).
    target_recall : float in (0, 1], default 0.99
        Approximate search: the recall under which a ``RuntimeWarning`` is issued (also the
        target of each cell's NN-descent).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Approximate search: seed of the sample, centres, cells' searches and checked points.
    partition_size : int, optional
        Approximate search: points per list of the clustered start (:func:`geoml.knn`'s
        ``cluster_size``; default 8,192).
    overlap : float, default 1.05
        Approximate search: a point joins its second-nearest centre's list too when
        ``d2 <= overlap d1`` (at least 1; as :func:`geoml.knn`). More raises the recall, at the
        cost of more shuffle and more work.
    schedule : {"auto", "ring", "dask"}, default "auto"
        Exact search: task placement (see above). ``"auto"``: the ring schedule when the
        current scheduler is a ``distributed.Client``, else Dask's. ``"ring"`` without a
        client raises ``ValueError``.

    Returns
    -------
    KNNResult or ApproxKNNResult
        ``indices`` (int64) and ``distances`` (X's float dtype), dask arrays of shape
        (n_samples, k) chunked by rows like ``X``; ``.compute()`` or ``dask.compute`` them.
        With ``method="nndescent"`` or ``"auto"``: an :class:`geoml.neighbors.ApproxKNNResult`
        whose ``recall_`` is the measured :class:`geoml.neighbors.RecallEstimate`; an
        approximate search also sets ``partition_``: a dict with ``start`` ("clustered", or
        "one task"), ``lists`` (parts of the top split searched, over all passes),
        ``memberships`` (points sent to them, with repeats), ``passes`` (1 or 2) and
        ``intrinsic_dim`` (of the checked points, which chose the start; NaN if unknown).

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> idx, dist = geoml.dask.knn(da.from_array(X, chunks=30), 5)
    >>> ref = geoml.knn(X, 5)
    >>> bool((idx.compute() == ref.indices).all() and (dist.compute() == ref.distances).all())
    True

    Approximate, with the measured recall:

    >>> rng = np.random.default_rng(0)
    >>> Z = 4 * rng.normal(size=(30, 16))[rng.integers(0, 30, 6000)] + rng.normal(size=(6000, 16))
    >>> res = geoml.dask.knn(da.from_array(Z.astype(np.float32), chunks=2000), 10,
    ...                      method="nndescent", partition_size=500, random_state=0)
    >>> res.indices.shape, res.recall_.reached, res.partition_["start"]
    ((6000, 10), True, 'clustered')
    """
    dask, da = _import_dask()
    X = _as_dask_rows(X)
    _check_metric(metric)
    n = X.shape[0]
    hint = f" (X has {n} points, and a point is not its own neighbour)"
    validate_random_state(random_state)
    k = check_int(k, "k", low=1, high=max(n - 1, 1), hint=hint)
    if n < 2:
        raise ValueError(f"k={k} is too large: X has 1 sample, no neighbour other than itself")
    split_every = check_int(split_every, "split_every", low=2)
    n_jobs = _check_task_jobs(n_jobs)
    target = _check_method(method, target_recall)
    partition_size = (
        _CLUSTER_SIZE
        if partition_size is None
        else check_int(partition_size, "partition_size", low=2)
    )
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float, np.integer, np.floating)):
        raise TypeError(f"overlap must be a number >= 1; got {overlap!r}")
    overlap = float(overlap)
    if not overlap >= 1.0:
        raise ValueError(f"overlap must be a number >= 1; got {overlap!r}")
    if method == "nndescent" or (method == "auto" and n >= _AUTO_MIN_N):
        return _knn_approx(
            dask,
            da,
            X,
            k,
            metric,
            n_jobs,
            split_every,
            target,
            random_state,
            partition_size,
            overlap,
        )

    client = _ring_client(dask, schedule)
    if client is not None and len(client.scheduler_info()["workers"]) > 1:
        out_i, out_d = _knn_ring(dask, da, client, X, k, metric, n_jobs, split_every)
        return _exact_result(da, out_i, out_d, method, n, target)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int).tolist()
    blocks = X.to_delayed().ravel()
    P = len(blocks)
    diag = dask.delayed(_knn_diag, pure=True)
    pair = dask.delayed(_knn_pair, pure=True, nout=2)
    merge = dask.delayed(_merge, pure=True)
    finish = dask.delayed(_finish, pure=True, nout=2)
    # one task per unordered pair of chunks: its tile scored once, both chunks' lists updated
    kth = dask.delayed(_kth, pure=True)
    parts = [[diag(blocks[i], starts[i], k, metric, n_jobs)] for i in range(P)]
    bounds = [kth(parts[i][0], k) for i in range(P)]
    for i in range(P):
        for j in range(i + 1, P):
            ij, ji = pair(
                blocks[i], blocks[j], starts[i], starts[j], k, metric, n_jobs, bounds[i], bounds[j]
            )
            parts[i].append(ij)
            parts[j].append(ji)
    out_i, out_d = [], []
    for qi in range(P):
        parts_q = parts[qi]
        while len(parts_q) > 1:
            parts_q = [
                merge(k, *parts_q[i : i + split_every]) for i in range(0, len(parts_q), split_every)
            ]
        i_, d_ = finish(parts_q[0], k, X.dtype)
        rows = X.chunks[0][qi]
        out_i.append(da.from_delayed(i_, (rows, k), dtype=np.int64))
        out_d.append(da.from_delayed(d_, (rows, k), dtype=X.dtype))
    return _exact_result(da, out_i, out_d, method, n, target)


def _exact_result(da, out_i, out_d, method, n, target):
    res = KNNResult(da.concatenate(out_i, axis=0), da.concatenate(out_d, axis=0))
    if method == "auto":
        return _with_recall(res, RecallEstimate(1.0, 1.0, 1.0, n, target, True, "exact", 0))
    return res


def _knn_ring(dask, da, client, X, k, metric, n_jobs, split_every):
    """The exact search under the ring schedule (:func:`_ring_plan`), submitted at once."""
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int).tolist()
    blocks = list(X.to_delayed().ravel())
    P = len(blocks)
    workers, homes, there = _ring_homes(client, blocks)
    for i in range(P):  # chunks not yet on the cluster are put on their homes first
        if not there[i]:
            blocks[i] = client.persist(
                blocks[i], workers=[workers[homes[i]]], allow_other_workers=True
            )
    place = _ring_plan(homes, len(workers))
    diag = dask.delayed(_knn_diag, pure=True)
    kth = dask.delayed(_kth, pure=True)
    pair = dask.delayed(_knn_pair, pure=True, nout=2)
    merge = dask.delayed(_merge, pure=True)
    finish = dask.delayed(_finish, pure=True, nout=2)

    def on(w):
        return dask.annotate(workers=[workers[w]], allow_other_workers=True)

    # parts[q][w]: chunk q's candidate lists made on worker w
    parts = [{} for _ in range(P)]
    bounds = []
    for i in range(P):
        with on(homes[i]):
            parts[i][homes[i]] = [diag(blocks[i], starts[i], k, metric, n_jobs)]
            bounds.append(kth(parts[i][homes[i]][0], k))
    for (i, j), w in place.items():
        with on(w):
            res = pair(
                blocks[i], blocks[j], starts[i], starts[j], k, metric, n_jobs, bounds[i], bounds[j]
            )
            ij, ji = res[0], res[1]
        parts[i].setdefault(w, []).append(ij)
        parts[j].setdefault(w, []).append(ji)

    def tree(lst):
        while len(lst) > 1:
            lst = [merge(k, *lst[a : a + split_every]) for a in range(0, len(lst), split_every)]
        return lst[0]

    outs = []
    for q in range(P):
        local = []
        for w, lst in sorted(parts[q].items()):
            with on(w):
                local.append(tree(lst))  # merged where made: one list per worker goes home
        with on(homes[q]):
            i_, d_ = finish(tree(local), k, X.dtype)
            outs.append((i_, d_))  # unpacked here: the getitems run at home too
    out_i = [da.from_delayed(o[0], (X.chunks[0][q], k), dtype=np.int64) for q, o in enumerate(outs)]
    out_d = [da.from_delayed(o[1], (X.chunks[0][q], k), dtype=X.dtype) for q, o in enumerate(outs)]
    # submitted now, unoptimised: array optimisation would drop the placement annotations
    out = client.persist(out_i + out_d, optimize_graph=False)
    return out[:P], out[P:]


# ---------------------------------------------------------------------------- approximate kNN

_CLUSTER_SIZE = 8192  # the clustered start's default list size (nndescent.hpp)
_CHECK_SALT = 0xC4EC  # nndescent_graph's stream of checked points
# nndescent_graph's choice of start: clusters from this intrinsic dimension of the checked
# points (NNDescentOptions.cluster_min_dim), the forest below
_CLUSTER_MIN_DIM = _core.NNDescentOptions().cluster_min_dim
# low-dimensional data goes to geoml.knn's search in one task only up to this size of X (bytes):
# past it the clustered start stays distributed (data that one worker cannot hold, or should not)
_WHOLE_MAX_BYTES = 1 << 30


def _approx_options(seed: int, size: int, overlap: float, target: float) -> dict:
    """Keywords of ``_core.NNDescentOptions`` (a plain dict: the tasks must pickle)."""
    return {
        "target_recall": target,
        "n_check": _N_CHECK,
        "seed": seed,
        "cluster_size": size,
        "overlap": overlap,
    }


def _exact64_self(X: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """:func:`_exact64` of X's rows against their candidates, in blocks of rows (float64
    temporaries of at most ~16 MiB); slots -1 give inf."""
    k = max(idx.shape[1], 1)
    step = max(1, (1 << 21) // (k * X.shape[1]))
    out = [
        _exact64(X[i : i + step], X, np.maximum(idx[i : i + step], 0), metric)
        for i in range(0, len(X), step)
    ]
    dist = np.concatenate(out) if out else np.empty(idx.shape)
    return np.where(idx >= 0, dist, np.inf)


def _whole_graph(k: int, metric: str, opts, n_jobs, *blocks):
    """:func:`geoml.knn`'s approximate search of all of X in one task (few points, or inner
    products, which the clustered start does not cover): (indices, float64 distances by
    geoml.knn's finishing formula), rows sorted by (distance, index)."""
    X = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    _check_block(X, 0)
    X = aligned(X)
    idx = _core.nndescent(
        X,
        k=k,
        metric=_core.Metric[metric],
        options=_core.NNDescentOptions(**opts),
        n_jobs=_task_threads(n_jobs),
    )[0].reshape(len(X), k)
    dist = _exact64_self(X, idx, metric)
    order = np.lexsort((idx, dist), axis=1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _rows_of(whole, a: int, b: int):
    idx, dist = whole
    return idx[a:b], dist[a:b], None, np.flatnonzero(idx[a:b, -1] < 0) + a


def _assign_cells(Q, q0: int, centres, metric: str, overlap: float):
    """The clustered start's top split of one chunk: {list: (global rows, their rows of X)}
    for each row's nearest centre and, when d2 <= overlap d1, its second (rows increasing)."""
    _check_block(Q, q0)
    if len(Q) == 0:
        return {}
    first, second = _core.nndescent_split_assign(
        centres, aligned(Q), metric=_core.Metric[metric], overlap=overlap, n_jobs=1
    )
    rows = np.arange(len(Q))
    two = second >= 0
    lab = np.concatenate([first, second[two]])
    rows = np.concatenate([rows, rows[two]])
    order = np.lexsort((rows, lab))  # by list, then row
    lab, rows = lab[order], rows[order]
    cuts = np.flatnonzero(np.diff(lab)) + 1
    return {
        int(lab[a]): (rows[a:b] + q0, Q[rows[a:b]])
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(rows)], strict=True)
    }


def _counts(groups: dict, C: int) -> np.ndarray:
    out = np.zeros(C, np.int64)
    for c, (g, _) in groups.items():
        out[c] = len(g)
    return out


def _top_parts(counts: np.ndarray, n: int, size: int) -> list:
    """The top split's parts as nndescent_graph forms them: (list, first, end) per part, in
    order; empty lists dropped, a list of at least 90 % of the points cut in chunks of size."""
    parts = []
    for c, cnt in enumerate(counts.tolist()):
        if cnt == 0:
            continue
        if cnt * 10 >= n * 9:
            parts += [(c, a, min(cnt, a + size)) for a in range(0, cnt, size)]
        else:
            parts.append((c, 0, cnt))
    return parts


def _batches(weights: list, B: int) -> list:
    """Parts into at most B batches of about equal weight (longest first onto the lightest
    batch); each batch's parts in increasing order. Deterministic."""
    load, out = [0.0] * B, [[] for _ in range(B)]
    for p in sorted(range(len(weights)), key=lambda p: (-weights[p], p)):
        b = min(range(B), key=lambda b: (load[b], b))
        out[b].append(p)
        load[b] += weights[p]
    return [sorted(o) for o in out if o]


def _bundle(groups: dict, spec) -> list:
    """One chunk's rows for one batch of parts: [(part, global rows, rows of X)] for ``spec``,
    [(part, list, lo, hi)] with [lo, hi) the positions in the chunk's piece of the list."""
    out = []
    for p, c, lo, hi in spec:
        got = groups.get(c)
        if got is not None and lo < hi:
            out.append((p, got[0][lo:hi], got[1][lo:hi]))
    return out


def _cell_batch(k: int, metric: str, opts, pass_: int, parts, starts, n_jobs, *bundles):
    """Parts of the top split, each searched as nndescent_graph's clustered start searches it
    (split further, each list searched exactly), one after the other: per chunk of X, the
    (global rows, global neighbour indices, float64 distances, scores) of its rows over the
    batch's parts (None where none). ``parts``: [(part, list id)]; ``bundles``: the chunks'
    :func:`_bundle` for this batch, in chunk order (so each part's rows are increasing)."""
    rows = {p: [] for p, _ in parts}
    for bundle in bundles:
        for p, g, x in bundle:
            rows[p].append((g, x))
    per_chunk = [[] for _ in starts]
    for p, cid in parts:
        g = np.concatenate([r[0] for r in rows[p]])
        Xc = aligned(np.concatenate([r[1] for r in rows[p]]))
        rows[p] = None  # the part's copy of its rows is the only one kept
        idx, dist, score = _core.nndescent_cell(
            Xc,
            k=k,
            metric=_core.Metric[metric],
            options=_core.NNDescentOptions(**opts),
            pass_=pass_,
            id=cid,
            n_jobs=_task_threads(n_jobs),
        )
        gi = np.where(idx >= 0, g[np.maximum(idx, 0)], -1)
        chunk = np.searchsorted(starts, g, side="right") - 1  # g increasing: chunk too
        cuts = np.flatnonzero(np.diff(chunk)) + 1
        for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(g)], strict=True):
            per_chunk[chunk[s]].append((g[s:e], gi[s:e], dist[s:e], score[s:e]))
    return tuple(
        tuple(np.concatenate([p[f] for p in lst]) for f in range(4)) if lst else None
        for lst in per_chunk
    )


def _merge_cells(k: int, q0: int, m: int, prev, *pieces):
    """Each row's k best distinct candidates by (score, index) over its cells (the heaps of
    nndescent_graph's start: the same set whatever the order of the cells), ordered by
    (distance, index): (indices, float64 distances, scores, rows short of k candidates).
    ``prev``: the lists of an earlier pass, merged in."""
    pieces = [p for p in pieces if p is not None]
    if prev is not None:
        pieces.append((np.arange(q0, q0 + m), prev[0], prev[1], prev[2]))
    if not pieces:  # a chunk without rows
        return np.empty((m, k), np.int64), np.empty((m, k)), np.empty((m, k)), np.empty(0, int)
    rows = np.concatenate([p[0] for p in pieces]) - q0
    I = np.concatenate([p[1] for p in pieces])
    D = np.concatenate([p[2] for p in pieces])
    S = np.concatenate([p[3] for p in pieces])
    idx = np.full((m, k), -1, np.int64)
    dist = np.full((m, k), np.inf)
    score = np.full((m, k), np.inf, S.dtype)
    one = np.bincount(rows, minlength=m)[rows] == 1  # rows in one cell: its list as it is
    idx[rows[one]], dist[rows[one]], score[rows[one]] = I[one], D[one], S[one]
    if not one.all():
        # rows in several cells: their lists side by side, one row of t k candidates each
        big = np.iinfo(np.int64).max  # empty slots: sorted last
        order = np.argsort(rows[~one], kind="stable")
        r = rows[~one][order]
        u, first, cnt = np.unique(r, return_index=True, return_counts=True)
        grp = np.repeat(np.arange(len(u)), cnt)
        slot = np.arange(len(r)) - first[grp]
        t = int(cnt.max())
        cj = np.full((len(u), t, k), big, np.int64)
        cd = np.full((len(u), t, k), np.inf)
        cs = np.full((len(u), t, k), np.inf, S.dtype)
        cj[grp, slot], cd[grp, slot], cs[grp, slot] = I[~one][order], D[~one][order], S[~one][order]
        cj, cd, cs = (a.reshape(len(u), t * k) for a in (cj, cd, cs))
        cj[cj < 0] = big
        o = np.lexsort((cj, cs), axis=1)  # by score, index: a pair's copies are adjacent
        cj, cd, cs = (np.take_along_axis(a, o, 1) for a in (cj, cd, cs))
        dup = np.zeros(cj.shape, bool)
        dup[:, 1:] = (cj[:, 1:] == cj[:, :-1]) & (cj[:, 1:] != big)
        o = np.argsort(dup, axis=1, kind="stable")[:, :k]  # the k best distinct
        cj, cd, cs, dup = (np.take_along_axis(a, o, 1) for a in (cj, cd, cs, dup))
        cj[dup], cd[dup], cs[dup] = big, np.inf, np.inf
        o = np.lexsort((cj, cd), axis=1)  # then by (distance, index)
        cj, cd, cs = (np.take_along_axis(a, o, 1) for a in (cj, cd, cs))
        cj[cj == big] = -1
        idx[u], dist[u], score[u] = cj, cd, cs
    return idx, dist, score, np.flatnonzero(idx[:, -1] < 0) + q0


def _clustered_pass(
    dask, client, X, blocks, starts, k, metric, n_jobs, seed, size, overlap, pass_, prev
):
    """One pass of the clustered start over the chunks: the top split on the client (its
    k-means sample gathered), every chunk's rows assigned to their lists, the parts searched
    in batches of about equal work (8 per worker thread), each chunk's lists merged (with
    ``prev``, an earlier pass's). Tasks: one per chunk (assignment, then merge), one per
    batch, one per (chunk, batch) cutting the chunk's rows for the batch and one per (batch,
    chunk) cutting the batch's lists for the chunk. On a ``distributed.Client`` the
    assignments run where Dask puts them (where the chunks are) and every later task is placed
    (loosely): a chunk's where its assignment is, a batch's on the worker the plan gives it
    (batches dealt out longest first to the least loaded worker per thread). Persisted."""
    n = X.shape[0]
    P = len(blocks)
    geo = _core.Metric[metric]
    node = _core.nndescent_cluster_node(seed, pass_, 1)
    C = _core.nndescent_split_parts(n, size)
    pick = _core.nndescent_floyd(n, _core.nndescent_split_sample(n, C), seed, node)
    rows = X[pick].compute()
    if not np.isfinite(rows).all():
        raise ValueError("X contains NaN or infinity")
    _check_tiny(rows, "in the sampled rows")
    centres = _core.nndescent_split_centres(
        aligned(rows), C=C, metric=geo, seed=seed, node=node, n_jobs=check_n_jobs(None)
    )
    if client is not None:
        info = client.scheduler_info()["workers"]
        workers = sorted(info)
        threads = [max(1, int(info[w].get("nthreads", 1))) for w in workers]

        def on(w):
            return dask.annotate(workers=[workers[w]], allow_other_workers=True)

        def persist(*objs):
            return client.persist(list(objs), optimize_graph=False)
    else:
        import contextlib

        threads = [int(dask.config.get("num_workers", None) or os.cpu_count())]

        def on(w):
            return contextlib.nullcontext()

        def persist(*objs):
            return list(dask.persist(*objs))

    assign = dask.delayed(_assign_cells, pure=True)
    count = dask.delayed(_counts, pure=True)
    # each chunk's assignment where Dask puts it (where the chunk is, or is read): its home
    groups = persist(
        *[assign(B, starts[i], centres, metric, overlap) for i, B in enumerate(blocks)]
    )
    per_chunk = np.array(dask.compute(*[count(g, C) for g in groups]))  # (chunks, lists)
    homes = [0] * P
    if client is not None:
        who = _who_has(client, [g.key for g in groups])
        pos = {w: p for p, w in enumerate(workers)}
        for i, g in enumerate(groups):
            held = sorted(h for h in who.get(g.key, ()) if h in pos)
            homes[i] = pos[held[0]] if held else i * len(workers) // P
    counts = per_chunk.sum(axis=0)
    offsets = np.cumsum(per_chunk, axis=0) - per_chunk  # a chunk's first position in a list
    parts = _top_parts(counts, n, size)
    # work of a part: its lists' exact searches, lists of about `size` points
    weights = [(b - a) * min(b - a, size) for _, a, b in parts]
    batches = _batches(weights, min(len(parts), 8 * sum(threads)))
    # batches to workers, heaviest first onto the least loaded (per thread)
    load = [0.0] * len(threads)
    place = []
    for bt in batches:
        w = min(range(len(threads)), key=lambda w: (load[w] / threads[w], w))
        place.append(w)
        load[w] += sum(weights[p] for p in bt)
    bundle = dask.delayed(_bundle, pure=True)
    cell = dask.delayed(_cell_batch, pure=True)
    item = dask.delayed(_item, pure=True)
    opts = _approx_options(seed, size, overlap, 0.99)
    outs = []
    for bt, w in zip(batches, place, strict=True):
        pieces, has = [], []
        for i, g in enumerate(groups):
            spec = []
            for p in bt:
                c, a, b = parts[p]
                lo, hi = max(a, offsets[i, c]), min(b, offsets[i, c] + per_chunk[i, c])
                if lo < hi:
                    spec.append((p, c, int(lo - offsets[i, c]), int(hi - offsets[i, c])))
            if spec:
                has.append(i)
                with on(homes[i]):
                    pieces.append(bundle(g, spec))
        specs = [(p, _core.nndescent_cluster_child(1, p)) for p in bt]
        with on(w):
            out = cell(k, metric, opts, pass_, specs, np.asarray(starts[:-1]), n_jobs, *pieces)
            # the batch's lists of chunk q's rows: where it has any (its bundle from chunk q)
            outs.append({q: item(out, q) for q in has})
    merge = dask.delayed(_merge_cells, pure=True)
    merged = []
    for q in range(P):
        with on(homes[q]):
            merged.append(
                merge(
                    k,
                    starts[q],
                    X.chunks[0][q],
                    None if prev is None else prev[q],
                    *[o[q] for o in outs if q in o],
                )
            )
    info = {"lists": len(parts), "memberships": int(counts.sum())}
    return persist(*merged), info


def _exact_rows_block(S, D, d0: int, k: int, metric: str, n_jobs):
    """Exact candidates of the query rows S among the chunk D (rows [d0, ...)), float64."""
    c = min(k, len(D))
    if c == 0:  # a chunk without rows
        return _empty_part(len(S))
    if D.shape[1] >= _F32_DIFF_MAX_D:
        # float32 Euclidean from 16 features on: the float64 search, as geoml.knn's (the
        # float32 kernel's scores put every one of 300 checked rows of 8 clusters 1e4 apart,
        # d = 16, up to 6.4 too far: the recall's reference and the completed rows); below,
        # _core.knn's own certified float32 search
        D = _wide(D, metric)
    idx, _ = _core.knn(
        aligned(D),
        aligned(S.astype(D.dtype, copy=False)),
        k=c,
        metric=_core.Metric[metric],
        exclude_self=False,
        n_jobs=_task_threads(n_jobs),
    )
    step = max(1, (1 << 21) // (c * S.shape[1]))  # float64 temporaries of at most ~16 MiB
    dist = [_exact64(S[i : i + step], D, idx[i : i + step], metric) for i in range(0, len(S), step)]
    return idx + d0, np.concatenate(dist)


def _exact_rows(
    dask, X, blocks, starts, rows: np.ndarray, k: int, metric: str, n_jobs, split_every
):
    """Exact k nearest neighbours (self excluded) of the given global rows of X, by blockwise
    search over the chunks: (indices, float64 distances) on the client."""
    S = X[rows].compute()  # values of the rows: the same for any chunking
    task = dask.delayed(_exact_rows_block, pure=True)
    merge = dask.delayed(_merge, pure=True)
    parts = [task(S, D, starts[i], k + 1, metric, n_jobs) for i, D in enumerate(blocks)]
    while len(parts) > 1:
        parts = [
            merge(k + 1, *parts[i : i + split_every]) for i in range(0, len(parts), split_every)
        ]
    idx, dist = dask.compute(parts[0])[0]
    # drop the row itself (a duplicate of it at distance 0 may sort before it)
    own = idx == rows[:, None]
    keep = ~own
    keep[~own.any(axis=1), -1] = False  # the row was not in its list: drop the (k+1)-th
    return idx[keep].reshape(len(rows), k), dist[keep].reshape(len(rows), k)


def _patch(part, rows, fix_idx, fix_dist, q0: int, dtype):
    """A chunk's lists with the listed rows replaced by their exact lists, distances in X's
    dtype."""
    idx, dist = part[0], part[1]
    sel = (rows >= q0) & (rows < q0 + len(idx))
    if sel.any():
        idx, dist = idx.copy(), dist.copy()
        idx[rows[sel] - q0] = fix_idx[sel]
        dist[rows[sel] - q0] = fix_dist[sel]
    return idx, dist.astype(dtype)


def _sample_dimension(dist: np.ndarray, k: int, metric: str) -> float:
    """nndescent_graph's intrinsic dimension of the checked points (sample_truth in
    nndescent.cpp): the Levina-Bickel estimate at the k-th neighbour, pooled as
    1 / mean_i[(1 / (k - 1)) sum_{j<k} log(T_k / T_j)] over the points whose T_1 > 0 and
    T_k > T_1, on Euclidean lengths T of the (sorted) distances in X's precision. NaN for
    k < 3, inner products or no point left."""
    if k < 3 or metric == "inner_product" or len(dist) == 0:
        return float("nan")
    T = np.asarray(dist, np.float64)
    if metric == "sqeuclidean":
        T = np.sqrt(np.maximum(0.0, T))
    elif metric == "cosine":
        T = np.sqrt(np.maximum(0.0, 2.0 * T))
    t1, tk = T[:, 0], T[:, k - 1]
    ok = (t1 > 0) & (tk > t1 * (1 + 1e-12)) & np.isfinite(tk)
    if not ok.any():
        return float("nan")
    inv = _seqsum(np.log(tk[ok, None] / T[ok, : k - 1])) / (k - 1)
    inv_sum = float(_seqsum(inv[None, :])[0])
    return float(ok.sum()) / inv_sum if inv_sum > 0 else float("nan")


def _knn_approx(dask, da, X, k, metric, n_jobs, split_every, target, random_state, size, overlap):
    """geoml.knn's approximate search on the chunks. Its checked points are searched exactly
    first; their intrinsic dimension chooses the start as geoml.knn does: at least
    ``_CLUSTER_MIN_DIM`` (or unknown), its clustered start, distributed (the top split on the
    client, the parts searched in batches), with a second pass when the measured recall is
    below the target; below it (X up to ``_WHOLE_MAX_BYTES``), few points (n <= 4 size) or
    inner products, geoml.knn's search in one task (its forest start and NN-descent, the
    worker's threads)."""
    n = X.shape[0]
    seed = random_seed(random_state)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int).tolist()
    blocks = X.to_delayed().ravel()
    n_check = min(n, _N_CHECK)
    checked = _core.nndescent_floyd(n, n_check, seed, _CHECK_SALT)
    ex_idx, ex_dist = _exact_rows(dask, X, blocks, starts, checked, k, metric, n_jobs, split_every)
    kth = ex_dist[:, -1].astype(X.dtype)
    dim = _sample_dimension(ex_dist.astype(X.dtype), k, metric)
    clustered = (
        metric != "inner_product"
        and n > 4 * size
        and not (_CLUSTER_MIN_DIM > 0 and dim < _CLUSTER_MIN_DIM and X.nbytes <= _WHOLE_MAX_BYTES)
    )
    if not clustered:
        opts = _approx_options(seed, size, overlap, target)
        jobs = -1 if n_jobs is None else n_jobs  # the only task: the worker's threads
        whole = dask.delayed(_whole_graph, pure=True)(k, metric, opts, jobs, *blocks)
        take = dask.delayed(_rows_of, pure=True)
        merged = list(
            dask.persist(*[take(whole, starts[q], starts[q + 1]) for q in range(len(blocks))])
        )
        info = {"start": "one task", "lists": 1, "memberships": n, "passes": 1}
    else:
        client = _ring_client(dask, "auto")
        merged, info = _clustered_pass(
            dask, client, X, blocks, starts, k, metric, n_jobs, seed, size, overlap, 0, None
        )
        info = {"start": "clustered", **info, "passes": 1}
    info["intrinsic_dim"] = dim
    item = dask.delayed(_item, pure=True)
    short = np.concatenate(dask.compute(*[item(m, 3) for m in merged]))
    more = np.setdiff1d(short, checked)
    rows = np.union1d(checked, short)
    if more.size:  # rows short of k candidates (lists of fewer than k + 1 points): exact
        m_idx, m_dist = _exact_rows(dask, X, blocks, starts, more, k, metric, n_jobs, split_every)
        # both in the order of rows
        order = np.argsort(np.searchsorted(rows, np.concatenate([checked, more])))
        ex_idx, ex_dist = (
            np.concatenate([ex_idx, m_idx])[order],
            np.concatenate([ex_dist, m_dist])[order],
        )

    def measure(merged, short):
        # recall of the checked points' lists as returned (compared in X's precision); rows
        # short of k candidates get their exact lists: all found
        approx_d = _gather_rows(dask, merged, starts, checked).astype(X.dtype)
        found = np.minimum((approx_d <= kth[:, None]).sum(axis=1), k)
        return int(np.where(np.isin(checked, short), k, found).sum()) / (n_check * k)

    est = measure(merged, short)
    if clustered and est < target:
        # as geoml.knn when its iterations stall: a second partition (other k-means seeds,
        # other cell boundaries) merged in
        merged, second = _clustered_pass(
            dask, client, X, blocks, starts, k, metric, n_jobs, seed, size, overlap, 1, merged
        )
        info.update(
            lists=info["lists"] + second["lists"],
            memberships=info["memberships"] + second["memberships"],
            passes=2,
        )
        short = np.concatenate(dask.compute(*[item(m, 3) for m in merged]))
        extra = np.setdiff1d(short, rows)
        if extra.size:  # pragma: no cover - a second pass only adds candidates
            raise RuntimeError("geoml.dask.knn: a row lost candidates in the second pass")
        est = measure(merged, short)
    low, high = (est, est) if n_check >= n else _wilson(est, n_check)
    fix = np.isin(rows, short)
    patch = dask.delayed(_patch, pure=True, nout=2)
    out_i, out_d = [], []
    for q, m in enumerate(merged):
        i_, d_ = patch(m, rows[fix], ex_idx[fix], ex_dist[fix], starts[q], X.dtype)
        out_i.append(da.from_delayed(i_, (X.chunks[0][q], k), dtype=np.int64))
        out_d.append(da.from_delayed(d_, (X.chunks[0][q], k), dtype=X.dtype))
    rec = RecallEstimate(est, low, high, int(n_check), target, est >= target, "nndescent", 0)
    if not rec.reached:
        warnings.warn(
            f"approximate kNN on Dask: measured recall {est:.4f} (95% interval [{low:.4f}, "
            f"{high:.4f}] on {n_check} points checked exactly) is below "
            f"target_recall={target}; raise overlap or partition_size, or use method='exact'",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    out = _with_recall(KNNResult(da.concatenate(out_i), da.concatenate(out_d)), rec)
    out.partition_ = info
    return out


def _item(t, i: int):
    return t[i]


def _dist_rows(t, r):
    return t[1][r]


def _gather_rows(dask, merged, starts, rows):
    """Distances of the approximate lists of the given global rows (client side)."""
    starts = np.asarray(starts)
    chunk = np.searchsorted(starts, rows, side="right") - 1
    take = dask.delayed(_dist_rows, pure=True)
    parts = [take(merged[q], rows[chunk == q] - starts[q]) for q in np.unique(chunk).tolist()]
    return np.concatenate(dask.compute(*parts))


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
    split_every: int = 4,
    method: str = "exact",
    target_recall: float = 0.99,
    random_state=None,
    partition_size: int | None = None,
    overlap: float = 1.05,
    schedule: str = "auto",
) -> sp.csr_matrix:
    """Sparse kNN graph of the rows of a row-chunked ``dask.array``, gathered on the client.

    The neighbours come from :func:`geoml.dask.knn` (computed with the current Dask scheduler:
    the active ``distributed.Client`` if any, else the threaded one) and the graph is built on
    the client by the code of :func:`geoml.knn_graph`, so the CSR matrix is identical to
    ``geoml.knn_graph(X.compute(), k, ...)``. For graphs too large for the client, keep the
    lazy per-chunk neighbour lists of :func:`geoml.dask.knn` instead.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked by rows.
    k, metric, n_jobs, split_every, method, target_recall
        As in :func:`geoml.dask.knn`.
    random_state, partition_size, overlap, schedule
        As in :func:`geoml.dask.knn`.
    mode, symmetrize, kernel, sigma, k_sigma, decay
        As in :func:`geoml.knn_graph`.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_samples, n_samples)

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> X = np.random.default_rng(0).normal(size=(60, 4))
    >>> G = geoml.dask.knn_graph(da.from_array(X, chunks=25), 4)
    >>> (G != geoml.knn_graph(X, 4)).nnz
    0
    """
    _check_graph_options(mode, symmetrize, kernel)
    res = knn(
        X,
        k,
        metric=metric,
        n_jobs=n_jobs,
        split_every=split_every,
        method=method,
        target_recall=target_recall,
        random_state=random_state,
        partition_size=partition_size,
        overlap=overlap,
        schedule=schedule,
    )
    dask, _ = _import_dask()
    # gathered chunk by chunk and joined on the client: computing the whole arrays would
    # join them in a task on one worker first (the other workers' chunks moved there)
    blocks = [a.to_delayed().ravel().tolist() for a in (res.indices, res.distances)]
    got = dask.compute(*blocks[0], *blocks[1])
    P = len(blocks[0])
    idx, dist = np.concatenate(got[:P]), np.concatenate(got[P:])
    # the CSR build runs on the client, with the client's threads (OpenMP default for None)
    g = _graph_from_neighbors(
        KNNResult(idx, dist), mode, symmetrize, kernel, sigma, k_sigma, decay, check_n_jobs(n_jobs)
    )
    if hasattr(res, "recall_"):
        g.recall_ = res.recall_
    if hasattr(res, "partition_"):
        g.partition_ = res.partition_
    return g


# ---------------------------------------------------------------------------- batched OT


def _as_dask_batch(x, name: str, ndim: int, B: int | None, chunks):
    _, da = _import_dask()
    if not isinstance(x, da.Array):
        x = np.asarray(x)
        if x.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D; got shape {x.shape}")
        if B is not None and x.shape[0] != B:
            raise ValueError(f"{name} has {x.shape[0]} problems but the batch has {B}")
        return da.from_array(x, chunks=(chunks,) + (-1,) * (ndim - 1))
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {x.shape}")
    if B is not None and x.shape[0] != B:
        raise ValueError(f"{name} has {x.shape[0]} problems but a has {B}")
    return x.rechunk((chunks,) + (-1,) * (ndim - 1))


def _batched(solver, a, b, C, masks, solver_kwargs, n_jobs, offsets=None, per_task=None):
    dask, da = _import_dask()
    if offsets is not None and (offsets[0] is not None or offsets[1] is not None):
        return _ragged(dask, da, solver, a, b, C, masks, offsets, solver_kwargs, n_jobs, per_task)
    if per_task is not None:
        raise ValueError("problems_per_task is for the ragged layout (a_offsets/b_offsets)")
    if not isinstance(a, da.Array):
        raise TypeError(f"a must be a dask.array.Array of shape (B, m); got {type(a).__name__}")
    if a.ndim != 2:
        raise ValueError(f"a must be 2-D (B, m) (the padded layout); got shape {a.shape}")
    if any(np.isnan(s) for s in a.shape):
        raise ValueError("a has unknown chunk sizes; call a.compute_chunk_sizes() first")
    n_jobs = _check_task_jobs(n_jobs)
    a = a.rechunk({1: -1})
    B, chunks = a.shape[0], a.chunks[0]
    b = _as_dask_batch(b, "b", 2, B, chunks)
    C = _as_dask_batch(C, "C", 3, B, chunks)
    if C.shape[1:] != (a.shape[1], b.shape[1]):
        raise ValueError(
            f"C has shape {C.shape}; expected (B, m, n) = {(B, a.shape[1], b.shape[1])}"
        )
    am, bm = (None if m is None else _as_dask_batch(m, nm, 2, B, chunks) for m, nm in masks)
    arrays = [x for x in (a, b, C, am, bm) if x is not None]
    delayed = [x.to_delayed().ravel() for x in arrays]
    has = (am is not None, bm is not None)
    task = dask.delayed(_ot_block, pure=True)
    if solver == "sinkhorn_batched":
        stats = [task("stats", *has, solver_kwargs, n_jobs, *b) for b in zip(*delayed, strict=True)]
        solver_kwargs = _with_globals(solver_kwargs, dask.compute(*stats))
    parts = [task(solver, *has, solver_kwargs, n_jobs, *b) for b in zip(*delayed, strict=True)]
    return dask.compute(*parts)  # the tasks do not warn: the caller warns once


RAGGED_TASK_ENTRIES = 1 << 22  # default ragged grouping: about 32 MB of float64 costs per task


def _ragged(dask, da, solver, a, b, C, masks, offsets, solver_kwargs, n_jobs, per_task):
    """Ragged layout: problems grouped into tasks of ``per_task`` problems (default: groups
    of about :data:`RAGGED_TASK_ENTRIES` cost entries); each task gets its slices of the 1-D
    ``a``, ``b``, ``C`` (NumPy or Dask arrays) and rebased offsets."""
    from .ot._solvers import _ragged_offsets, _ragged_sizes

    if masks[0][0] is not None or masks[1][0] is not None:
        raise ValueError("a_mask/b_mask are for the padded layout, not with offsets")
    if offsets[0] is None or offsets[1] is None:
        raise ValueError("the ragged layout needs both a_offsets and b_offsets")
    a_off, b_off = _ragged_offsets(offsets[0], offsets[1])
    arrays = []
    for x, name in ((a, "a"), (b, "b"), (C, "C")):
        if not isinstance(x, da.Array):
            x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"ragged {name} must be 1-D; got shape {x.shape}")
        if np.isnan(x.shape[0]):
            raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
        arrays.append(x)
    a, b, C = arrays
    ms, ns = _ragged_sizes(a_off, b_off, a.shape[0], b.shape[0])
    c_off = np.concatenate([[0], np.cumsum(ms * ns)])
    if C.shape[0] != c_off[-1]:
        raise ValueError(
            f"ragged C must hold sum(m_k * n_k) = {int(c_off[-1])} values; got {C.shape[0]}"
        )
    nprob = len(ms)
    if per_task is None:  # cut where the running cost size crosses a multiple of the target
        cuts = np.searchsorted(
            c_off, np.arange(RAGGED_TASK_ENTRIES, c_off[-1], RAGGED_TASK_ENTRIES)
        )
        bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, nprob), [nprob]]))
    else:
        per_task = check_int(per_task, "problems_per_task", low=1)
        bounds = np.unique(np.concatenate([np.arange(0, nprob, per_task), [nprob]]))
    n_jobs = _check_task_jobs(n_jobs)
    task = dask.delayed(_ragged_block, pure=True)
    groups = []
    for k0, k1 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        sl = [
            x[o[k0] : o[k1]] for x, o in ((a, a_off), (b, b_off), (C, c_off))
        ]  # lazy slices of Dask input; views of NumPy input
        groups.append((*sl, a_off[k0 : k1 + 1] - a_off[k0], b_off[k0 : k1 + 1] - b_off[k0]))
    if solver == "sinkhorn_batched":
        stats = [task("stats", solver_kwargs, n_jobs, *g) for g in groups]
        solver_kwargs = _with_globals(solver_kwargs, dask.compute(*stats))
    parts = [task(solver, solver_kwargs, n_jobs, *g) for g in groups]
    return dask.compute(*parts)  # the tasks do not warn: the caller warns once


def _ragged_block(solver, kwargs, n_jobs, a, b, C, a_off, b_off):
    a, b, C = aligned(np.asarray(a)), aligned(np.asarray(b)), aligned(np.asarray(C))
    return _solve(solver, kwargs, n_jobs, a, b, C, a_offsets=a_off, b_offsets=b_off)


def _ot_block(solver, has_am, has_bm, kwargs, n_jobs, a, b, C, *masks):
    a, b, C = aligned(a), aligned(b), aligned(C)  # unpickled blocks may sit at odd offsets
    masks = list(masks)
    am = masks.pop(0) if has_am else None
    bm = masks.pop(0) if has_bm else None
    return _solve(solver, kwargs, n_jobs, a, b, C, a_mask=am, b_mask=bm)


def _solve(solver, kwargs, n_jobs, a, b, C, **layout):
    """One task's problems: ``"emd_batched"``, ``"sinkhorn_batched"`` (with the batch-wide
    cost range and mass of :func:`_with_globals`), or ``"stats"`` (the chunk's part of them)."""
    if solver == "stats":
        return _sinkhorn_stats(a, b, C, balanced=kwargs["rho"] is None, **layout)
    if solver == "sinkhorn_batched":
        return _sinkhorn_fixed(a, b, C, n_jobs=_task_threads(n_jobs), **kwargs, **layout)
    return _emd_fixed(a, b, C, n_jobs=_task_threads(n_jobs), **kwargs, **layout)


def _emd_fixed(
    a,
    b,
    C,
    *,
    return_plans,
    max_iter,
    n_jobs,
    a_mask=None,
    b_mask=None,
    a_offsets=None,
    b_offsets=None,
):
    """:func:`geoml.ot.emd_batched` on part of a batch without its warning: the converged flags
    travel in the result and the client warns once (:func:`_gather_ot`). A task must not touch
    the process-wide warning filters (``warnings.catch_warnings`` is not thread-safe: under
    the threaded scheduler it would race with the other tasks and the caller's own threads)."""
    from .ot._solvers import _emd_batched_quiet

    return _emd_batched_quiet(
        a,
        b,
        C,
        a_mask,
        b_mask,
        a_offsets,
        b_offsets,
        return_plans,
        max_iter,
        n_jobs,
        where=" of the task",
    )


def _sinkhorn_kwargs(eps, rho, return_plans, max_iter, tol, eps_schedule) -> dict:
    """The task keyword arguments of the batched Sinkhorn entry points (eps checked once)."""
    from .ot._solvers import _check_eps

    return {
        "eps": _check_eps(eps),
        "rho": rho,
        "return_plans": bool(return_plans),
        "max_iter": max_iter,
        "tol": tol,
        "eps_schedule": eps_schedule,
    }


def _sinkhorn_stats(a, b, C, *, balanced, a_mask=None, b_mask=None, a_offsets=None, b_offsets=None):
    """(min C, max C, smallest problem mass of a) of one task's problems, computed as
    :func:`geoml.ot.sinkhorn_batched` computes them for the whole batch."""
    from .ot._solvers import _batched_layout

    fa, a_off, _, _, fC, _, _, _ = _batched_layout(
        a, b, C, a_mask, b_mask, a_offsets, b_offsets, balance=balanced, scan_cost=False
    )
    lo, hi, finite = _core.value_range(fC, n_jobs=1)
    if not finite:
        raise ValueError("C contains NaN or infinity")
    return float(lo), float(hi), float(np.add.reduceat(fa, a_off[:-1]).min())


def _with_globals(kwargs: dict, stats) -> dict:
    """Sinkhorn's batch-wide inputs: its eps annealing starts from the range of all costs and
    its tolerance scales with the smallest problem mass, so each task must get the whole
    batch's values (a chunk's own would change its results)."""
    lo = min(s[0] for s in stats)
    hi = max(s[1] for s in stats)
    return {**kwargs, "crange": hi - lo, "mass": min(s[2] for s in stats)}


def _sinkhorn_fixed(
    a,
    b,
    C,
    *,
    eps,
    rho,
    return_plans,
    max_iter,
    tol,
    eps_schedule,
    crange,
    mass,
    n_jobs,
    a_mask=None,
    b_mask=None,
    a_offsets=None,
    b_offsets=None,
):
    """:func:`geoml.ot.sinkhorn_batched` on part of a batch, with the whole batch's cost range
    and smallest mass (same steps, no warning: the caller issues one)."""
    from .ot import BatchedSinkhornResult
    from .ot._solvers import _batched_layout, _batched_params, _check_representable

    balanced = rho is None
    fa, a_off, fb, b_off, fC, c_off, plan_shape, _ = _batched_layout(
        a, b, C, a_mask, b_mask, a_offsets, b_offsets, balance=balanced, scan_cost=False
    )
    params = _batched_params(rho, eps, tol, max_iter, eps_schedule, crange, mass)[0]
    cost, err, n_iter, conv, plans = _core.sinkhorn_batched(
        fa, a_off, fb, b_off, fC, c_off, params=params, want_plans=bool(return_plans), n_jobs=n_jobs
    )
    if plans is not None:
        plans = plans.reshape(plan_shape)
    _check_representable(cost, "sinkhorn_batched")
    return BatchedSinkhornResult(cost, conv, n_iter, err, plans)


def _concat(results, field: str):
    vals = [getattr(r, field) for r in results]
    return None if vals[0] is None else np.concatenate(vals, axis=0)


def _gather_ot(results, name: str, max_iter: int, tol: float | None = None):
    """The tasks' batched results as one (EMD when ``tol`` is None, else Sinkhorn), with the
    single-machine function's warning when a problem did not converge."""
    if tol is None:
        fields, why = ("cost", "converged", "plans"), f"hit max_iter={max_iter} before optimality"
        out = BatchedOTResult(*(_concat(results, f) for f in fields))
    else:
        fields = ("cost", "converged", "n_iter", "error", "plans")
        why = f"did not reach tol={tol:g} in max_iter={max_iter} iterations"
        out = BatchedSinkhornResult(*(_concat(results, f) for f in fields))
    if not out.converged.all():
        warnings.warn(
            f"{name}: {int((~out.converged).sum())} problem(s) {why}",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return out


def emd_batched(
    a,
    b,
    C,
    *,
    a_mask=None,
    b_mask=None,
    a_offsets=None,
    b_offsets=None,
    return_plans: bool = False,
    max_iter: int | None = None,
    n_jobs: int | None = None,
    problems_per_task: int | None = None,
) -> BatchedOTResult:
    """:func:`geoml.ot.emd_batched` on Dask: problems chunked along the batch axis, one task per
    chunk, each running geoml's batched network simplex; results gathered on the client.

    Problems are independent, so the result equals ``geoml.ot.emd_batched`` on the computed
    arrays, bit for bit, in both layouts.

    Parameters
    ----------
    a : dask.array.Array of shape (B, m), or 1-D (ragged)
        Source histograms. Padded layout: its row chunks set the tasks. Ragged layout (with
        ``a_offsets``/``b_offsets``, as :func:`geoml.ot.emd_batched`): ``a``, ``b`` and ``C``
        are 1-D NumPy or Dask arrays, and the problems are grouped into tasks by
        ``problems_per_task``.
    b : array-like or dask.array.Array of shape (B, n), or 1-D (ragged)
    C : array-like or dask.array.Array of shape (B, m, n), or 1-D (ragged)
        Padded: rechunked to ``a``'s problem chunks when needed.
    a_mask, b_mask : array-like or dask.array.Array of shape (B, m) / (B, n), optional
        Padded layout only.
    a_offsets, b_offsets : array-like of int, shape (B + 1,), optional
        Ragged layout: problem ``k`` uses ``a[a_offsets[k]:a_offsets[k+1]]`` and likewise
        for ``b``; its (m_k, n_k) costs follow in ``C``, row-major.
    return_plans, max_iter
        As in :func:`geoml.ot.emd_batched`.
    n_jobs : int, optional
        OpenMP threads per task (see the module docstring).
    problems_per_task : int, optional
        Ragged layout: problems per task (default: groups of about 4M cost entries, 32 MB).

    Returns
    -------
    BatchedOTResult
        NumPy arrays, as :func:`geoml.ot.emd_batched`. Problems that hit ``max_iter`` raise one
        ``RuntimeWarning`` on the client.

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.dirichlet(np.ones(4), 10), rng.dirichlet(np.ones(5), 10)
    >>> C = rng.random((10, 4, 5))
    >>> res = geoml.dask.emd_batched(da.from_array(a, chunks=3), b, C)
    >>> bool((res.cost == geoml.ot.emd_batched(a, b, C).cost).all())
    True
    """
    kw = {"return_plans": bool(return_plans), "max_iter": max_iter}
    results = _batched(
        "emd_batched",
        a,
        b,
        C,
        ((a_mask, "a_mask"), (b_mask, "b_mask")),
        kw,
        n_jobs,
        (a_offsets, b_offsets),
        problems_per_task,
    )
    return _gather_ot(results, "emd_batched", max_iter)


def sinkhorn_batched(
    a,
    b,
    C,
    eps: float,
    *,
    rho: float | None = None,
    a_mask=None,
    b_mask=None,
    a_offsets=None,
    b_offsets=None,
    return_plans: bool = False,
    max_iter: int = 10000,
    tol: float = 1e-9,
    eps_schedule="auto",
    n_jobs: int | None = None,
    problems_per_task: int | None = None,
) -> BatchedSinkhornResult:
    """:func:`geoml.ot.sinkhorn_batched` on Dask: problems chunked along the batch axis, one task
    per chunk; results gathered on the client and equal to ``geoml.ot.sinkhorn_batched`` on the
    computed arrays, bit for bit (each problem runs on one thread either way).

    Parameters
    ----------
    a : dask.array.Array of shape (B, m)
        Source histograms; its row chunks set the tasks.
    b : array-like or dask.array.Array of shape (B, n)
    C : array-like or dask.array.Array of shape (B, m, n)
    eps, rho, a_mask, b_mask, return_plans, max_iter, tol, eps_schedule
        As in :func:`geoml.ot.sinkhorn_batched`.
    a_offsets, b_offsets, problems_per_task
        The ragged layout, as in :func:`emd_batched`.
    n_jobs : int, optional
        OpenMP threads per task (see the module docstring).

    Returns
    -------
    BatchedSinkhornResult
        NumPy arrays; one ``RuntimeWarning`` on the client if some problems did not converge.

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.dirichlet(np.ones(4), 10), rng.dirichlet(np.ones(5), 10)
    >>> C = rng.random((10, 4, 5))
    >>> res = geoml.dask.sinkhorn_batched(da.from_array(a, chunks=4), b, C, 0.1)
    >>> bool((res.cost == geoml.ot.sinkhorn_batched(a, b, C, 0.1).cost).all())
    True
    """
    kw = _sinkhorn_kwargs(eps, rho, return_plans, max_iter, tol, eps_schedule)
    results = _batched(
        "sinkhorn_batched",
        a,
        b,
        C,
        ((a_mask, "a_mask"), (b_mask, "b_mask")),
        kw,
        n_jobs,
        (a_offsets, b_offsets),
        problems_per_task,
    )
    return _gather_ot(results, "sinkhorn_batched", max_iter, tol)


def point_cloud_costs(x, y, p: int = 2) -> np.ndarray:
    """Costs ``C[b, i, j] = |x[b, i] - y[b, j]|^p`` of batched point-cloud pairs, in float64:
    what :func:`emd_batched_points` and :func:`sinkhorn_batched_points` compute in each task
    (so that, given these costs, :func:`geoml.ot.emd_batched` returns the same result).

    Parameters
    ----------
    x : array-like of shape (B, m, d)
    y : array-like of shape (B, n, d)
    p : {1, 2}, default 2
        Exponent of the Euclidean distance, as in :func:`geoml.ot.sinkhorn_points`
        (2: squared Euclidean, 1: Euclidean).

    Returns
    -------
    ndarray of shape (B, m, n), float64

    Examples
    --------
    >>> import numpy as np, geoml.dask
    >>> geoml.dask.point_cloud_costs(np.zeros((1, 1, 2)), np.ones((1, 2, 2)))
    array([[[2., 2.]]])
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    _check_p(p)
    # |x|^2 + |y|^2 - 2 x.y would cancel; the difference form is exact for duplicates
    C = np.zeros((x.shape[0], x.shape[1], y.shape[1]))
    for t in range(x.shape[2]):  # one float64 add per coordinate, in index order
        diff = x[:, :, None, t] - y[:, None, :, t]
        C += diff * diff
    return np.sqrt(C) if p == 1 else C


def _check_p(p) -> int:
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p={p!r}: only p=1 (Euclidean) and p=2 (squared Euclidean) are supported")
    return int(p)


def _points_block(solver, kwargs, p, n_jobs, x, y, a, b):
    for v, name in ((x, "x"), (y, "y")):
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or infinity")
    C = point_cloud_costs(x, y, p)
    if a is None:
        a = np.full(x.shape[:2], 1.0 / x.shape[1])
    if b is None:
        b = np.full(y.shape[:2], 1.0 / y.shape[1])
    return _solve(solver, kwargs, n_jobs, aligned(np.asarray(a)), aligned(np.asarray(b)), C)


def _batched_points(solver, x, y, a, b, p, solver_kwargs, n_jobs):
    dask, da = _import_dask()
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array of shape (B, m, d); got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (B, m, d); got shape {x.shape}")
    if any(np.isnan(s) for s in x.shape):
        raise ValueError("x has unknown chunk sizes; call x.compute_chunk_sizes() first")
    if 0 in x.shape:
        raise ValueError(f"x is empty: shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"x must hold real numbers; got dtype {x.dtype}")
    p = _check_p(p)
    n_jobs = _check_task_jobs(n_jobs)
    x = x.rechunk({1: -1, 2: -1})
    B, chunks = x.shape[0], x.chunks[0]
    y = _as_dask_batch(y, "y", 3, B, chunks)
    if y.shape[2] != x.shape[2] or y.shape[1] == 0:
        raise ValueError(f"y has shape {y.shape}; expected (B, n, d) with d = {x.shape[2]}")
    if y.dtype.kind not in "fiub":
        raise TypeError(f"y must hold real numbers; got dtype {y.dtype}")
    ws = []
    for w, name, m in ((a, "a", x.shape[1]), (b, "b", y.shape[1])):
        if w is not None:
            w = _as_dask_batch(w, name, 2, B, chunks)
            if w.shape[1] != m:
                raise ValueError(f"{name} has shape {w.shape}; expected {(B, m)}")
            w = w.to_delayed().ravel()
        ws.append(w)
    xs, ys = x.to_delayed().ravel(), y.to_delayed().ravel()
    task = dask.delayed(_points_block, pure=True)
    blocks = [
        (xs[i], ys[i], None if ws[0] is None else ws[0][i], None if ws[1] is None else ws[1][i])
        for i in range(len(xs))
    ]
    if solver == "sinkhorn_batched":
        stats = [task("stats", solver_kwargs, p, n_jobs, *blk) for blk in blocks]
        solver_kwargs = _with_globals(solver_kwargs, dask.compute(*stats))
    parts = [task(solver, solver_kwargs, p, n_jobs, *blk) for blk in blocks]
    return dask.compute(*parts)  # the tasks do not warn: the caller warns once


def emd_batched_points(
    x,
    y,
    *,
    a=None,
    b=None,
    p: int = 2,
    return_plans: bool = False,
    max_iter: int | None = None,
    n_jobs: int | None = None,
) -> BatchedOTResult:
    """Exact OT between batched point-cloud pairs on Dask, the costs computed in each task.

    Problem ``k`` moves the weights ``a[k]`` on the points ``x[k]`` to ``b[k]`` on ``y[k]``
    at cost ``|x_i - y_j|^p``. Each task computes its problems' costs
    (:func:`point_cloud_costs`) and runs :func:`geoml.ot.emd_batched`: only the clouds
    (``B (m + n) d`` numbers, not ``B m n`` costs) travel to the workers, and the result equals
    ``geoml.ot.emd_batched(a, b, point_cloud_costs(x, y, p))`` bit for bit.

    Parameters
    ----------
    x : dask.array.Array of shape (B, m, d)
        Source clouds; its chunks along the batch axis set the tasks.
    y : array-like or dask.array.Array of shape (B, n, d)
        Target clouds (rechunked to ``x``'s problem chunks).
    a, b : array-like or dask.array.Array of shape (B, m) / (B, n), optional
        Weights (default uniform, ``1/m`` and ``1/n``); as in :func:`geoml.ot.emd_batched`.
    p : {1, 2}, default 2
        Cost exponent: 2 squared Euclidean, 1 Euclidean (as :func:`geoml.ot.sinkhorn_points`).
    return_plans, max_iter
        As in :func:`geoml.ot.emd_batched`.
    n_jobs : int, optional
        OpenMP threads per task (see the module docstring).

    Returns
    -------
    BatchedOTResult
        NumPy arrays, gathered on the client. One ``RuntimeWarning`` if problems hit
        ``max_iter``; NaN/inf in a task's clouds raise ``ValueError`` when computed.

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(10, 4, 2)), rng.normal(size=(10, 5, 2))
    >>> res = geoml.dask.emd_batched_points(da.from_array(x, chunks=3), y)
    >>> C = geoml.dask.point_cloud_costs(x, y)
    >>> ref = geoml.ot.emd_batched(np.full((10, 4), 0.25), np.full((10, 5), 0.2), C)
    >>> bool((res.cost == ref.cost).all())
    True
    """
    kw = {"return_plans": bool(return_plans), "max_iter": max_iter}
    results = _batched_points("emd_batched", x, y, a, b, p, kw, n_jobs)
    return _gather_ot(results, "emd_batched_points", max_iter)


def sinkhorn_batched_points(
    x,
    y,
    eps: float,
    *,
    a=None,
    b=None,
    p: int = 2,
    rho: float | None = None,
    return_plans: bool = False,
    max_iter: int = 10000,
    tol: float = 1e-9,
    eps_schedule="auto",
    n_jobs: int | None = None,
) -> BatchedSinkhornResult:
    """Entropic OT between batched point-cloud pairs on Dask, the costs computed in each task;
    equal, bit for bit, to ``geoml.ot.sinkhorn_batched(a, b, point_cloud_costs(x, y, p), eps)``.

    Parameters
    ----------
    x : dask.array.Array of shape (B, m, d)
    y : array-like or dask.array.Array of shape (B, n, d)
    eps : float
        As in :func:`geoml.ot.sinkhorn_batched`, in the units of the cost.
    a, b, p, n_jobs
        As in :func:`emd_batched_points`.
    rho, return_plans, max_iter, tol, eps_schedule
        As in :func:`geoml.ot.sinkhorn_batched`.

    Returns
    -------
    BatchedSinkhornResult
        NumPy arrays; one ``RuntimeWarning`` on the client if some problems did not converge.

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(10, 4, 2)), rng.normal(size=(10, 4, 2))
    >>> res = geoml.dask.sinkhorn_batched_points(da.from_array(x, chunks=4), y, 1.0)
    >>> w = np.full((10, 4), 0.25)
    >>> ref = geoml.ot.sinkhorn_batched(w, w, geoml.dask.point_cloud_costs(x, y), 1.0)
    >>> bool((res.cost == ref.cost).all())
    True
    """
    kw = _sinkhorn_kwargs(eps, rho, return_plans, max_iter, tol, eps_schedule)
    results = _batched_points("sinkhorn_batched", x, y, a, b, p, kw, n_jobs)
    return _gather_ot(results, "sinkhorn_batched_points", max_iter, tol)


# ---------------------------------------------------------------------------- Ollivier-Ricci


def _active_client(dask):
    """The ``distributed.Client`` that ``dask.compute`` will use now, or None (threaded or
    other local scheduler, e.g. under ``dask.config.set(scheduler="threads")``)."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    get = dask.base.get_scheduler()
    return client if getattr(get, "__self__", None) is client else None


def _orc_block(shared, lengths, lo: int, hi: int, options: dict, n_jobs):
    arrays, directed, src, dst = shared
    if lengths is not None:  # undirected: (indptr, indices) sent once, the lengths per call
        arrays = (*arrays, lengths)
    arrays = tuple(aligned(a) for a in arrays)  # unpickled arrays may sit at odd offsets
    src, dst = aligned(src[lo:hi]), aligned(dst[lo:hi])
    opts = dict(options)
    opts["method"] = _core.OrcMethod[opts["method"]]
    kernel = _core.ollivier_ricci_directed if directed else _core.ollivier_ricci
    return kernel(*arrays, src, dst, options=_core.OrcOptions(**opts), n_jobs=_task_threads(n_jobs))


def _orc_options(est) -> dict:
    return {
        "alpha": float(est.alpha),
        "base": float(est.base),
        "exp_power": float(est.exp_power),
        "nbr_topk": int(est.nbr_topk or 0),
        "method": est.method,
        "eps": float(est.eps),
        "tol": float(est.tol),
        "max_iter": int(est.max_iter or 0),
    }


class _OrcOnDask:
    """The curvature kernel over edge chunks as Dask tasks. The graph's structure (CSR and
    edge list) is sent to the workers once, at construction (``client.scatter(...,
    broadcast=True)`` on a ``distributed.Client``, one shared object of the task graph on
    the threaded scheduler); each call sends only the edge lengths (undirected graphs), so a
    Ricci flow moves ``8 nnz`` bytes per worker per iteration."""

    def __init__(self, dask, graph, options: dict, edge_chunk: int | None, n_jobs):
        self.dask, self.options, self.n_jobs = dask, options, n_jobs
        self.client = _active_client(dask)
        self.directed = graph.directed
        arrays = graph.dicsr() if graph.directed else graph.csr()[:2]
        src, dst = graph.edges[:, 0], graph.edges[:, 1]
        self.m = m = len(src)
        if edge_chunk is None:
            # Each task prepares the whole graph once (measures, BFS order: O(nnz)), so few
            # large tasks: four per thread of the cluster (or of the threaded scheduler), for
            # balance. 101 tasks of 100,000 edges on a 10M-edge graph spent more time in that
            # preparation than in the curvature (2 workers: 2.3x the single-machine time).
            if self.client is not None:
                threads = sum(self.client.nthreads().values())
            else:
                threads = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
            edge_chunk = max(10_000, -(-m // (4 * max(threads, 1))))
        self.ranges = [(lo, min(lo + edge_chunk, m)) for lo in range(0, m, edge_chunk)]
        # Chunks of edges that are close in the graph share their neighbourhoods' distance
        # rows (computed once per task): order the edges by the reverse Cuthill-McKee position
        # of their source. Measured on a 600k-edge 10-NN graph in 6 / 12 chunks: 34 % / 65 %
        # more work than one task in the sorted edge order, 4 % / 12 % in this one.
        self.order = None
        if len(self.ranges) > 1:
            from scipy.sparse.csgraph import reverse_cuthill_mckee

            n = graph.n
            structure = sp.csr_matrix(
                (np.ones(len(arrays[1]), dtype=np.int8), arrays[1], arrays[0]), shape=(n, n)
            )
            position = np.empty(n, dtype=np.int64)
            position[reverse_cuthill_mckee(structure, symmetric_mode=not graph.directed)] = (
                np.arange(n)
            )
            self.order = np.argsort(position[src], kind="stable")
            src, dst = src[self.order], dst[self.order]
        src, dst = np.ascontiguousarray(src), np.ascontiguousarray(dst)
        self.shared = self._send((arrays, graph.directed, src, dst))

    def _send(self, obj):
        if self.client is not None:
            return self.client.scatter([obj], broadcast=True)[0]  # one object, not several
        return self.dask.delayed(obj, traverse=False)

    def __call__(self, csr_lengths=None):
        """Curvatures of all edges (sorted edge order) and the solver status per edge."""
        if self.m == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int32)
        lengths = None if self.directed else self._send(csr_lengths)
        task = self.dask.delayed(_orc_block, pure=True)
        parts = [
            task(self.shared, lengths, lo, hi, self.options, self.n_jobs) for lo, hi in self.ranges
        ]
        results = self.dask.compute(*parts)
        kappa = np.concatenate([r[0] for r in results])
        status = np.concatenate([r[2] for r in results])
        if self.order is not None:  # back to the sorted edge order
            kappa[self.order], status[self.order] = kappa.copy(), status.copy()
        bad = int((status != 0).sum())
        if bad:
            warnings.warn(
                f"the optimal-transport solver did not converge on {bad} of "
                f"{len(status)} edges; raise max_iter",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        return kappa, status


def ollivier_ricci(
    G,
    alpha: float = 0.5,
    method: str = "exact",
    *,
    edge_chunk: int | None = None,
    n_jobs: int | None = None,
    **kwargs,
) -> np.ndarray:
    """:func:`geoml.ollivier_ricci` on Dask: the edges partitioned into tasks of ``edge_chunk``
    edges, the CSR graph sent to the workers once.

    With an active ``distributed.Client`` the graph is scattered to every worker once
    (``client.scatter(..., broadcast=True)``); on the threaded scheduler it is one shared
    object of the task graph. Each task runs geoml's curvature kernel on its edges (distances
    only between the two neighbourhoods of each edge, no all-pairs matrix), so the curvatures
    equal ``geoml.ollivier_ricci(G, ...)``, bit for bit, in the same (sorted) edge order.

    Parameters
    ----------
    G : networkx.Graph or DiGraph, sparse or dense (n, n) matrix, or (m, 2) / (m, 3) edges
        As in :class:`geoml.OllivierRicci` (read on the client; directed graphs too).
    alpha, method
        As in :class:`geoml.OllivierRicci`.
    edge_chunk : int, optional
        Edges per task. Default: four tasks per thread of the cluster (of the threaded
        scheduler without a client), at least 10,000 edges each: each task reads the whole
        graph once, so small tasks repeat that work.
    n_jobs : int, optional
        OpenMP threads per task (see the module docstring).
    **kwargs
        Other :class:`geoml.OllivierRicci` parameters (``eps``, ``tol``, ``exp_power``,
        ``base``, ``weight``, ``nbr_topk``, ``max_iter``).

    Returns
    -------
    ndarray of shape (m,)
        Curvature of each edge, aligned with ``geoml.OllivierRicci(...).fit(G).edges_``. Edges
        whose OT solver hit ``max_iter`` raise one ``RuntimeWarning`` on the client.

    Examples
    --------
    >>> import numpy as np, geoml, geoml.dask
    >>> cycle = np.array([[i, (i + 1) % 6] for i in range(6)])
    >>> bool((geoml.dask.ollivier_ricci(cycle, edge_chunk=4) == geoml.ollivier_ricci(cycle)).all())
    True
    """
    from .curvature import OllivierRicci, _check_neighbour_weights, _fit_graph

    dask, _ = _import_dask()
    if "n_jobs" in kwargs:  # pragma: no cover - keyword-only above
        raise TypeError("n_jobs is given once")
    est = OllivierRicci(alpha=alpha, method=method, **kwargs)
    est._check_params()
    if edge_chunk is not None:
        edge_chunk = check_int(edge_chunk, "edge_chunk", low=1)
    n_jobs = _check_task_jobs(n_jobs)
    graph = _fit_graph(G, est.weight, directed_ok=True)
    _check_neighbour_weights(est, graph, graph.weights)  # (base ** -(w ** p) beyond float64)
    if len(graph.edges) == 0:
        return np.zeros(0)
    run = _OrcOnDask(dask, graph, _orc_options(est), edge_chunk, n_jobs)
    return run(None if graph.directed else graph.csr()[2])[0]


def ricci_flow(
    G,
    n_iter: int = 20,
    step: float = 1.0,
    delta: float = 1e-4,
    surgery=None,
    *,
    edge_chunk: int | None = None,
    n_jobs: int | None = None,
    **kwargs,
):
    """:class:`geoml.RicciFlow` with every curvature evaluation on Dask.

    The flow's loop (length update, normalisation, surgery, stopping rule) runs on the
    client, exactly as :class:`geoml.RicciFlow`; each iteration's curvature runs as
    :func:`ollivier_ricci`'s tasks. The graph's structure goes to the workers once, and each
    iteration sends only the new edge lengths (8 bytes per CSR entry per worker), so the
    result equals ``geoml.RicciFlow(...).fit(G)`` bit for bit.

    Parameters
    ----------
    G : networkx.Graph, sparse or dense (n, n) matrix, or (m, 2) / (m, 3) edges
        An undirected graph, as for :class:`geoml.RicciFlow`.
    n_iter, step, delta, surgery
        As in :class:`geoml.RicciFlow`.
    edge_chunk : int, optional
        Edges per task. Default: four tasks per thread of the cluster (of the threaded
        scheduler without a client), at least 10,000 edges each: each task reads the whole
        graph once, so small tasks repeat that work.
    n_jobs : int, optional
        OpenMP threads per task (see the module docstring).
    **kwargs
        Other :class:`geoml.RicciFlow` parameters (``alpha``, ``method``, ``eps``, ``tol``,
        ``exp_power``, ``base``, ``weight``, ``nbr_topk``, ``max_iter``, ``verbose``).

    Returns
    -------
    geoml.RicciFlow
        The fitted flow (``weights_``, ``curvature_``, ``curvature_history_``, ...).

    Examples
    --------
    >>> import numpy as np, geoml, geoml.dask
    >>> cycle = np.array([[i, (i + 1) % 6] for i in range(6)] + [[0, 3]])
    >>> flow = geoml.dask.ricci_flow(cycle, n_iter=2, edge_chunk=3)
    >>> bool((flow.weights_ == geoml.RicciFlow(n_iter=2).fit(cycle).weights_).all())
    True
    """
    from .curvature import RicciFlow, _check_neighbour_weights

    dask, _ = _import_dask()
    if "n_jobs" in kwargs:  # pragma: no cover - keyword-only above
        raise TypeError("n_jobs is given once")
    if edge_chunk is not None:
        edge_chunk = check_int(edge_chunk, "edge_chunk", low=1)
    n_jobs = _check_task_jobs(n_jobs)

    class _DaskRicciFlow(RicciFlow):
        _run = None

        def _curvature(self, graph, weights=None, edges=None):
            _check_neighbour_weights(self, graph, graph.weights if weights is None else weights)
            if self._run is None:
                self._run = _OrcOnDask(dask, graph, _orc_options(self), edge_chunk, n_jobs)
            kappa, status = self._run(graph.csr(weights)[2])
            return kappa, None, status == 0

    flow = _DaskRicciFlow(n_iter, step, delta, surgery, **kwargs).fit(G)
    plain = RicciFlow(n_iter, step, delta, surgery, **kwargs)
    plain.__dict__.update({k: v for k, v in flow.__dict__.items() if k != "_run"})
    return plain
