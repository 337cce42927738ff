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

import warnings

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import aligned, check_int, check_n_jobs
from .neighbors import (
    KNNResult,
    _check_graph_options,
    _check_magnitude,
    _check_metric,
    _graph_from_neighbors,
)
from .ot import BatchedOTResult, BatchedSinkhornResult

__all__ = ["emd_batched", "knn", "knn_graph", "ollivier_ricci", "ricci_flow", "sinkhorn_batched"]


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


def _knn_block(Q, D, q0: int, d0: int, k: int, metric: str, n_jobs):
    """Candidates among data rows [d0, d0 + len(D)) for query rows [q0, q0 + len(Q)):
    global int64 indices and float64 distances, (m, c) with c <= k; self excluded when the
    block is diagonal (q0 == d0)."""
    m, n = Q.shape[0], D.shape[0]
    diag = q0 == d0
    for A, a0 in ((Q, q0), (D, d0)):  # O(c d) against the task's O(c^2 d)
        if not np.isfinite(A).all():
            raise ValueError(f"X contains NaN or infinity (rows {a0} to {a0 + len(A) - 1})")
        _check_magnitude(A, None)
    c = min(k, n - 1 if diag else n)
    if c < 1:
        return np.empty((m, 0), np.int64), np.empty((m, 0), np.float64)
    D = aligned(D)
    idx, _ = _core.knn(
        D,
        None if diag else aligned(Q.astype(D.dtype, copy=False)),
        k=c,
        metric=_core.Metric[metric],
        exclude_self=diag,
        n_jobs=_task_threads(n_jobs),
        verbose=False,
    )
    step = max(1, (1 << 21) // (c * Q.shape[1]))  # float64 temporaries of at most ~16 MiB
    dist = np.concatenate(
        [_exact64(Q[i : i + step], D, idx[i : i + step], metric) for i in range(0, m, step)]
    )
    return idx + d0, dist


def _merge(k: int, *parts):
    """Top-k of the union of candidate lists, ordered by (distance, index) like geoml.knn."""
    idx = np.concatenate([p[0] for p in parts], axis=1)
    dist = np.concatenate([p[1] for p in parts], axis=1)
    order = np.lexsort((idx, dist), axis=1)[:, :k]
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _finish(part, k: int, dtype):
    idx, dist = part
    if idx.shape[1] != k:  # pragma: no cover - guarded by the k check on the client
        raise RuntimeError("geoml.dask.knn: fewer candidates than k")
    return np.ascontiguousarray(idx), dist.astype(dtype)


def knn(X, k: int, *, metric: str = "euclidean", n_jobs: int | None = None, split_every: int = 4):
    """Exact k nearest neighbours of the rows of a row-chunked ``dask.array``, lazily.

    Every (query chunk, data chunk) pair is one task running geoml's kernel
    (:func:`geoml.knn`'s ``_core.knn``) on that pair; each query chunk's candidate lists are
    then merged in a tree of fan-in ``split_every`` keeping the k best by (distance, index).
    Distances are recomputed in float64 with :func:`geoml.knn`'s formulas before the merge,
    so the result equals :func:`geoml.knn` (``Y=None``, a point excluded from its own list)
    on the same data: same indices, same distances, ties by index. Both select candidates by a
    fast score before the exact re-computation, so points tied at the k-th distance (or within
    the score's rounding of it) may be kept differently: exact ties give equal distances; a
    near-tie in float32 may give a neighbour that differs in its last digits (on clustered
    float32 data, 20,000 x 32, k = 15: 5 rows, each at the k-th neighbour, never farther than
    geoml.knn's; see docs/design/scale-out.md).

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

    Returns
    -------
    KNNResult
        ``indices`` (int64) and ``distances`` (X's float dtype), dask arrays of shape
        (n_samples, k) chunked by rows like ``X``; ``.compute()`` or ``dask.compute`` them.

    Examples
    --------
    >>> import numpy as np, dask.array as da, geoml, geoml.dask
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> idx, dist = geoml.dask.knn(da.from_array(X, chunks=30), 5)
    >>> ref = geoml.knn(X, 5)
    >>> bool((idx.compute() == ref.indices).all() and (dist.compute() == ref.distances).all())
    True
    """
    dask, da = _import_dask()
    X = _as_dask_rows(X)
    _check_metric(metric)
    n = X.shape[0]
    hint = f" (X has {n} points, and a point is not its own neighbour)"
    k = check_int(k, "k", low=1, high=max(n - 1, 1), hint=hint)
    if n < 2:
        raise ValueError(f"k={k} is too large: X has 1 sample, no neighbour other than itself")
    split_every = check_int(split_every, "split_every", low=2)
    n_jobs = _check_task_jobs(n_jobs)

    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    blocks = X.to_delayed().ravel()
    block = dask.delayed(_knn_block, pure=True)
    merge = dask.delayed(_merge, pure=True)
    finish = dask.delayed(_finish, pure=True, nout=2)
    out_i, out_d = [], []
    for qi, Q in enumerate(blocks):
        parts = [
            block(Q, D, int(starts[qi]), int(starts[di]), k, metric, n_jobs)
            for di, D in enumerate(blocks)
        ]
        while len(parts) > 1:
            parts = [
                merge(k, *parts[i : i + split_every]) for i in range(0, len(parts), split_every)
            ]
        i_, d_ = finish(parts[0], k, X.dtype)
        rows = X.chunks[0][qi]
        out_i.append(da.from_delayed(i_, (rows, k), dtype=np.int64))
        out_d.append(da.from_delayed(d_, (rows, k), dtype=X.dtype))
    return KNNResult(da.concatenate(out_i, axis=0), da.concatenate(out_d, axis=0))


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
    k, metric, n_jobs, split_every
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
    idx, dist = knn(X, k, metric=metric, n_jobs=n_jobs, split_every=split_every)
    dask, _ = _import_dask()
    idx, dist = dask.compute(idx, dist)
    # the CSR build runs on the client, with the client's threads (OpenMP default for None)
    return _graph_from_neighbors(
        KNNResult(idx, dist), mode, symmetrize, kernel, sigma, k_sigma, decay, check_n_jobs(n_jobs)
    )


# ---------------------------------------------------------------------------- batched OT


def _as_dask_batch(x, name: str, ndim: int, B: int | None, chunks):
    _, da = _import_dask()
    if not isinstance(x, da.Array):
        x = np.asarray(x)
        if x.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D; got shape {x.shape}")
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
    task = dask.delayed(_ot_block, pure=True)
    parts = [
        task(solver, am is not None, bm is not None, solver_kwargs, n_jobs, *blocks)
        for blocks in zip(*delayed, strict=True)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # re-issued once below
        results = dask.compute(*parts)
    return results


RAGGED_TASK_ENTRIES = 1 << 22  # default ragged grouping: about 32 MB of float64 costs per task


def _ragged(dask, da, solver, a, b, C, masks, offsets, solver_kwargs, n_jobs, per_task):
    """Ragged layout: problems grouped into tasks of ``per_task`` problems (default: groups
    of about :data:`RAGGED_TASK_ENTRIES` cost entries); each task gets its slices of the 1-D
    ``a``, ``b``, ``C`` (NumPy or Dask arrays) and rebased offsets."""
    from .ot._solvers import _as_offsets

    if masks[0][0] is not None or masks[1][0] is not None:
        raise ValueError("a_mask/b_mask are for the padded layout, not with offsets")
    if offsets[0] is None or offsets[1] is None:
        raise ValueError("the ragged layout needs both a_offsets and b_offsets")
    a_off, b_off = _as_offsets(offsets[0], "a_offsets"), _as_offsets(offsets[1], "b_offsets")
    if a_off.ndim != 1 or a_off.shape != b_off.shape or a_off.shape[0] < 2:
        raise ValueError("a_offsets and b_offsets must be 1-D of the same length B + 1 >= 2")
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
    if a_off[0] != 0 or b_off[0] != 0 or a_off[-1] != a.shape[0] or b_off[-1] != b.shape[0]:
        raise ValueError("offsets must start at 0 and end at len(a) / len(b)")
    ms, ns = np.diff(a_off), np.diff(b_off)
    if (ms <= 0).any() or (ns <= 0).any():
        raise ValueError("offsets must be strictly increasing (every problem non-empty)")
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
    parts = []
    for k0, k1 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        sl = [
            x[o[k0] : o[k1]] for x, o in ((a, a_off), (b, b_off), (C, c_off))
        ]  # lazy slices of Dask input; views of NumPy input
        parts.append(
            task(
                solver,
                solver_kwargs,
                n_jobs,
                *sl,
                a_off[k0 : k1 + 1] - a_off[k0],
                b_off[k0 : k1 + 1] - b_off[k0],
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # re-issued once by the caller
        return dask.compute(*parts)


def _ragged_block(solver, kwargs, n_jobs, a, b, C, a_off, b_off):
    from . import ot

    a, b, C = aligned(np.asarray(a)), aligned(np.asarray(b)), aligned(np.asarray(C))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(ot, solver)(
            a, b, C, a_offsets=a_off, b_offsets=b_off, n_jobs=_task_threads(n_jobs), **kwargs
        )


def _ot_block(solver, has_am, has_bm, kwargs, n_jobs, a, b, C, *masks):
    from . import ot

    a, b, C = aligned(a), aligned(b), aligned(C)  # unpickled blocks may sit at odd offsets
    masks = list(masks)
    am = masks.pop(0) if has_am else None
    bm = masks.pop(0) if has_bm else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(ot, solver)(
            a, b, C, a_mask=am, b_mask=bm, n_jobs=_task_threads(n_jobs), **kwargs
        )


def _concat(results, field: str):
    vals = [getattr(r, field) for r in results]
    return None if vals[0] is None else np.concatenate(vals, axis=0)


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
    out = BatchedOTResult(
        _concat(results, "cost"), _concat(results, "converged"), _concat(results, "plans")
    )
    if not out.converged.all():
        warnings.warn(
            f"emd_batched: {int((~out.converged).sum())} problem(s) hit max_iter="
            f"{max_iter} before optimality",
            RuntimeWarning,
            stacklevel=2,
        )
    return out


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
    from .ot._solvers import _check_eps

    kw = {
        "eps": _check_eps(eps),
        "rho": rho,
        "return_plans": bool(return_plans),
        "max_iter": max_iter,
        "tol": tol,
        "eps_schedule": eps_schedule,
    }
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
    out = BatchedSinkhornResult(
        _concat(results, "cost"),
        _concat(results, "converged"),
        _concat(results, "n_iter"),
        _concat(results, "error"),
        _concat(results, "plans"),
    )
    if not out.converged.all():
        warnings.warn(
            f"sinkhorn_batched: {int((~out.converged).sum())} problem(s) did not reach "
            f"tol={tol:g} in max_iter={max_iter} iterations",
            RuntimeWarning,
            stacklevel=2,
        )
    return out


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

    def __init__(self, dask, graph, options: dict, edge_chunk: int, n_jobs):
        self.dask, self.options, self.n_jobs = dask, options, n_jobs
        self.client = _active_client(dask)
        self.directed = graph.directed
        arrays = graph.dicsr() if graph.directed else graph.csr()[:2]
        src = np.ascontiguousarray(graph.edges[:, 0])
        dst = np.ascontiguousarray(graph.edges[:, 1])
        self.m = m = len(src)
        self.ranges = [(lo, min(lo + edge_chunk, m)) for lo in range(0, m, edge_chunk)]
        self.shared = self._send((arrays, graph.directed, src, dst))

    def _send(self, obj):
        if self.client is not None:
            return self.client.scatter([obj], broadcast=True)[0]  # one object, not several
        return self.dask.delayed(obj, traverse=False)

    def __call__(self, csr_lengths=None, stacklevel: int = 3):
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
        bad = int((status != 0).sum())
        if bad:
            warnings.warn(
                f"the optimal-transport solver did not converge on {bad} of "
                f"{len(status)} edges; raise max_iter",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        return kappa, status


def ollivier_ricci(
    G,
    alpha: float = 0.5,
    method: str = "exact",
    *,
    edge_chunk: int = 100_000,
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
    edge_chunk : int, default 100000
        Edges per task.
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
    from .curvature import OllivierRicci, _fit_graph

    dask, _ = _import_dask()
    if "n_jobs" in kwargs:  # pragma: no cover - keyword-only above
        raise TypeError("n_jobs is given once")
    est = OllivierRicci(alpha=alpha, method=method, **kwargs)
    est._check_params()
    edge_chunk = check_int(edge_chunk, "edge_chunk", low=1)
    n_jobs = _check_task_jobs(n_jobs)
    graph = _fit_graph(G, est.weight, directed_ok=True)
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
    edge_chunk: int = 100_000,
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
    edge_chunk : int, default 100000
        Edges per task.
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
    from .curvature import RicciFlow

    dask, _ = _import_dask()
    if "n_jobs" in kwargs:  # pragma: no cover - keyword-only above
        raise TypeError("n_jobs is given once")
    edge_chunk = check_int(edge_chunk, "edge_chunk", low=1)
    n_jobs = _check_task_jobs(n_jobs)

    class _DaskRicciFlow(RicciFlow):
        _run = None

        def _curvature(self, graph, weights=None, edges=None):
            if self._run is None:
                self._run = _OrcOnDask(dask, graph, _orc_options(self), edge_chunk, n_jobs)
            kappa, status = self._run(graph.csr(weights)[2], stacklevel=4)
            return kappa, None, status == 0

    flow = _DaskRicciFlow(n_iter, step, delta, surgery, **kwargs).fit(G)
    plain = RicciFlow(n_iter, step, delta, surgery, **kwargs)
    plain.__dict__.update({k: v for k, v in flow.__dict__.items() if k != "_run"})
    return plain
