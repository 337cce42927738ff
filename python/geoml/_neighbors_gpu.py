"""GPU path of :func:`geoml.knn`, :func:`geoml.knn_graph` and :class:`geoml.KNNGraph`.

Imported by :mod:`geoml.neighbors` only when an input is a CuPy array or ``device="cuda"``:
``import geoml`` never imports this module nor CuPy. Kernels come from ``geoml._cuda``
(``cuda/knn.cu``) and run on CuPy's current stream; nothing here synchronises except the
NaN/inf check of the input (one boolean read back) and the copies back to the host when NumPy
input was sent to the GPU with ``device="cuda"``. Buffers are CuPy arrays (CuPy's memory pool,
stream-ordered reuse), so an out-of-memory error is CuPy's ``OutOfMemoryError`` (a
``MemoryError``).
"""

from __future__ import annotations

import numpy as np

from . import _core, _gpu
from ._validation import as_float_array, is_gpu_array

__all__ = ["as_device_float_array", "csr_arrays", "knn_device", "to_csr_device"]


def as_device_float_array(X, name: str, cp, *, allow_empty: bool = False):
    """``X`` as a C-contiguous float32/float64 CuPy array, with the CPU path's dtype rules.

    Host input goes through :func:`geoml._validation.as_float_array` and is copied to the
    current device; device input (CuPy, or anything with ``__cuda_array_interface__``, taken
    zero-copy) keeps float32/float64, float16 becomes float32, integers/booleans float64.
    """
    if not is_gpu_array(X):
        return cp.asarray(as_float_array(X, name, allow_empty=allow_empty))
    if hasattr(X, "toarray"):
        raise TypeError(f"{name} is a sparse matrix; a dense array is expected here")
    arr = cp.asarray(X)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.dtype in (np.float32, np.float64):
        dtype = arr.dtype
    elif arr.dtype == np.float16:
        dtype = np.float32
    else:
        dtype = np.float64
    arr = cp.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one element is needed")
    if arr.size and not bool(cp.isfinite(arr).all()):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def knn_device(X, Y, k: int, metric: _core.Metric, exclude_self: bool):
    """Exact kNN of validated, same-dtype, C-contiguous CuPy arrays; ``(indices, distances)``.

    Euclidean metrics score ``||y||^2 - 2 x.y`` on data centred at the mean of X (as the CPU
    path; float32 data in float64, as the CPU path), cosine ``-x.y`` on unit rows, inner
    product ``-x.y``; the k winners' distances are recomputed exactly from the original rows
    and sorted by (distance, index).
    """
    cp, mod = _gpu.require_cuda("knn")
    kmax = int(mod.knn_max_k)
    if k > kmax:
        raise ValueError(
            f"k={k} exceeds the GPU search's limit of {kmax} neighbours; use "
            "device='cpu' for larger k"
        )
    euclid = metric in (_core.Metric.euclidean, _core.Metric.sqeuclidean)
    if X.dtype == np.float32 and euclid:
        # float32 scores (rounded to ~d 2^-24 max ||x - mean||^2) swap neighbours of clusters
        # far apart: searched in float64 as the CPU path does, distances returned in float32
        Y64 = None if Y is None else Y.astype(cp.float64)
        idx, dist = knn_device(X.astype(cp.float64), Y64, k, metric, exclude_self)
        return idx, dist.astype(cp.float32)
    ptr = _gpu.device_pointer
    dt = X.dtype
    is64 = dt == np.float64
    centre, normalise = mod.KnnPrep.centre, mod.KnnPrep.normalise
    dev = X.device.id
    with cp.cuda.Device(dev):
        stream = cp.cuda.get_current_stream().ptr
        n, d = X.shape
        Q = X if Y is None else Y
        m = Q.shape[0]
        idx = cp.empty((m, k), dtype=cp.int64)
        dist = cp.empty((m, k), dtype=dt)
        if m == 0:
            return idx, dist
        Xs, Qs, xbias = X, Q, None
        if euclid:
            # centre at the mean of X; bias = ||x - mean||^2
            mean = X.mean(axis=0, dtype=cp.float64)
            Xs, xbias = cp.empty_like(X), cp.empty(n, dtype=dt)
            mod.knn_prep(
                centre,
                ptr(X, dt),
                ptr(Xs, dt),
                ptr(xbias, dt),
                ptr(mean, "float64"),
                n,
                d,
                dev,
                stream,
                dtype=dt,
            )
            if Y is not None:
                Qs = cp.empty_like(Y)
                mod.knn_prep(
                    centre,
                    ptr(Y, dt),
                    ptr(Qs, dt),
                    0,
                    ptr(mean, "float64"),
                    m,
                    d,
                    dev,
                    stream,
                    dtype=dt,
                )
        elif metric == _core.Metric.cosine:  # unit rows
            Xs = cp.empty_like(X)
            mod.knn_prep(normalise, ptr(X, dt), ptr(Xs, dt), 0, 0, n, d, dev, stream, dtype=dt)
            if Y is not None:
                Qs = cp.empty_like(Y)
                mod.knn_prep(normalise, ptr(Y, dt), ptr(Qs, dt), 0, 0, m, d, dev, stream, dtype=dt)
        if Y is None:
            Qs = Xs
        splits = mod.knn_plan(m, n, k, bool(is64), dev)
        counts = cp.empty(splits * m, dtype=cp.int32)
        ws_s = ws_i = fin = None
        if splits > 1:
            ws_s = cp.empty(splits * m * k, dtype=dt)
            ws_i = cp.empty(splits * m * k, dtype=cp.int64)
            fin = cp.empty(m, dtype=cp.int32)
        mod.knn_search(
            ptr(Qs, dt),
            ptr(Q, dt),
            m,
            ptr(Xs, dt),
            ptr(X, dt),
            n,
            d,
            0 if xbias is None else ptr(xbias, dt),
            metric,
            k,
            bool(exclude_self),
            splits,
            0 if ws_s is None else ptr(ws_s, dt),
            0 if ws_i is None else ptr(ws_i, "int64"),
            ptr(counts, "int32"),
            0 if fin is None else ptr(fin, "int32"),
            ptr(dist, dt),
            ptr(idx, "int64"),
            dev,
            stream,
            dtype=dt,
        )
    return idx, dist


def csr_arrays(idx, w, mode: _core.Symmetrize, xp):
    """``(data, indices, indptr)`` of the kNN graph with the CPU path's semantics.

    ``W[i, idx[i, t]] = w[i, t]`` (negative indices and self-loops dropped), combined with its
    transpose as ``mode`` says: none, union ``max(W, W^T)``, mutual ``min`` on edges present both
    ways, mean ``(W + W^T) / 2`` with a missing entry counted as 0. Explicit zeros (edges between
    identical points) are kept; column indices are sorted. Sorts and scans of the array module
    ``xp`` (CuPy on the device; NumPy gives the same arrays on the host, which the CPU test suite
    uses to check this logic): O(n k log(n k)) work. int32 indices unless the graph needs int64.
    """
    n, k = idx.shape
    rows = xp.repeat(xp.arange(n, dtype=xp.int64), k)
    cols = idx.ravel()
    vals = w.ravel()
    keep = (cols >= 0) & (cols != rows)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if mode == _core.Symmetrize.none:
        order = xp.argsort(rows * n + cols)
        r, c, v = rows[order], cols[order], vals[order]
    else:
        side = xp.concatenate([xp.zeros(rows.size, xp.int64), xp.ones(rows.size, xp.int64)])
        r = xp.concatenate([rows, cols])
        c = xp.concatenate([cols, rows])
        v = xp.concatenate([vals, vals])
        order = xp.argsort((r * n + c) * 2 + side)  # (row, col, side): each pair side 0 first
        r, c, v = r[order], c[order], v[order]
        rc = r * n + c
        first = xp.ones(rc.size, dtype=bool)
        first[1:] = rc[1:] != rc[:-1]
        pair = xp.zeros(rc.size, dtype=bool)  # a group holds at most one entry per side
        pair[:-1] = rc[:-1] == rc[1:]
        zero = v.dtype.type(0)
        other = xp.where(pair, xp.roll(v, -1), zero)
        if mode == _core.Symmetrize.union:
            val, kept = xp.where(pair, xp.maximum(v, other), v), first
        elif mode == _core.Symmetrize.mutual:
            val, kept = xp.minimum(v, other), first & pair
        else:
            val, kept = (v + other) / v.dtype.type(2), first
        r, c, v = r[kept], c[kept], val[kept].astype(w.dtype, copy=False)
    index_dtype = xp.int64 if n * k * 2 >= 2**31 - 1 else xp.int32
    indptr = xp.zeros(n + 1, dtype=index_dtype)
    if r.size:
        indptr[1:] = xp.cumsum(xp.bincount(r, minlength=n))
    return v, c.astype(index_dtype), indptr


def to_csr_device(idx, w, mode: _core.Symmetrize):
    """``cupyx.scipy.sparse.csr_matrix`` of the kNN graph of device neighbour lists (see
    :func:`csr_arrays`)."""
    cp, _ = _gpu.require_cuda("knn_graph")
    import cupyx.scipy.sparse as csp

    n = idx.shape[0]
    return csp.csr_matrix(csr_arrays(idx, w, mode, cp), shape=(n, n))
