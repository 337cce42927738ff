"""Discrete Ricci curvature of graphs: Ollivier-Ricci, Forman-Ricci, Ricci flow and
Ricci-flow communities (CPU kernels in ``cpp/curvature/``, OT by ``cpp/ot/``).

Graphs are accepted as a networkx ``Graph``, a SciPy sparse symmetric weight matrix (a stored
zero is an edge of length 0, as networkx's ``from_scipy_sparse_array`` reads it; call
``eliminate_zeros()`` to drop such entries), a dense square weight matrix (zeros: no edge; an
array with 2 or 3 columns is always read as an edge list, so pass a 2- or 3-node adjacency as a
sparse matrix), or an edge list; results are per-edge
arrays aligned with ``edges_`` (pairs ``i < j`` of node positions), plus helpers that write
GraphRicciCurvature's attribute names back onto a networkx graph.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .. import _core
from .._base import BaseEstimator
from .._validation import (
    as_real,
    check_int,
    check_n_jobs,
    check_real,
    finite_sum,
    reject_gpu,
    user_stacklevel,
)

__all__ = [
    "FormanRicci",
    "OllivierRicci",
    "RicciCommunities",
    "RicciFlow",
    "forman_ricci",
    "ollivier_ricci",
    "ricci_communities",
]


@dataclass
class _Graph:
    """Simple graph: n nodes, edges (m, 2) with i < j (undirected) or arcs i -> j sorted
    (``directed``), weights (m,), node labels."""

    n: int
    edges: np.ndarray
    weights: np.ndarray
    nodes: list | None = None  # networkx node labels, by position
    # (indptr, indices, self.weights in CSR order) and CSR entry -> edge id, built when needed
    _csr: tuple | None = field(default=None, repr=False)
    _eid: np.ndarray | None = field(default=None, repr=False)
    directed: bool = False

    def dicsr(self, weights=None):
        """Directed graph: (indptr, indices, weights) of the out-CSR (the sorted arcs) followed
        by the same of the in-CSR (row v: the arcs u -> v), int64/float64."""
        w = np.ascontiguousarray(self.weights if weights is None else weights, dtype=np.float64)
        if self._csr is None:
            e, n = self.edges, self.n
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(e[:, 0], minlength=n), out=indptr[1:])
            perm = np.lexsort((e[:, 0], e[:, 1]))
            in_indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(e[:, 1], minlength=n), out=in_indptr[1:])
            self._eid = perm
            self._csr = (
                indptr,
                np.ascontiguousarray(e[:, 1]),
                in_indptr,
                np.ascontiguousarray(e[perm, 0]),
            )
        indptr, indices, in_indptr, in_indices = self._csr
        return indptr, indices, w, in_indptr, in_indices, np.ascontiguousarray(w[self._eid])

    def csr(self, weights=None):
        """(indptr, indices, weights) of the symmetric CSR, neighbours sorted (int64/float64).
        The structure is computed once; later calls (Ricci flow) only gather the weights."""
        n = max(self.n, 1)
        if self._csr is None:
            m = len(self.edges)
            rows = np.concatenate([self.edges[:, 0], self.edges[:, 1]])
            cols = np.concatenate([self.edges[:, 1], self.edges[:, 0]])
            order = np.argsort(rows * n + cols)
            indptr = np.zeros(self.n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=self.n), out=indptr[1:])
            self._eid = order % max(m, 1)
            self._csr = (
                indptr,
                np.ascontiguousarray(cols[order]),
                np.ascontiguousarray(self.weights[self._eid], dtype=np.float64),
            )
        if weights is None:
            return self._csr
        indptr, cols, _ = self._csr
        if self._eid is None:  # (r, c) with r < c is the next edge; its transpose the same
            rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(indptr))
            up = rows < cols
            ids = np.arange(len(self.edges))
            self._eid = np.empty(len(cols), dtype=np.int64)
            self._eid[up] = ids
            self._eid[np.argsort(cols * n + rows)[up]] = ids
        return indptr, cols, np.ascontiguousarray(weights[self._eid], dtype=np.float64)


def _edge_weights(adj, weight: str, count: int, select=None, grc: bool = False) -> np.ndarray:
    """``adj[u][v].get(weight, 1.0)`` for every (u, v) in adjacency order (only those whose
    entry of the booleans ``select`` is true, if given), as float64. Plain dicts (networkx's
    default) go through ``dict.get`` itself (C-level calls, about twice as fast as a method
    caller); other mappings through their own ``get``. Values other than exact floats and
    ints are checked by :func:`_weight_values` (``grc``: GraphRicciCurvature's rule)."""

    def pick(datas):
        return datas if select is None else itertools.compress(datas, select)

    vals = None
    if all(type(d) is dict for d in itertools.islice(adj.values(), 1)):
        try:
            datas = pick(itertools.chain.from_iterable(map(dict.values, adj.values())))
            vals = list(map(dict.get, datas, itertools.repeat(weight), itertools.repeat(1.0)))
        except TypeError:  # an attribute mapping that is not a dict
            pass
    if vals is None:
        datas = pick(
            itertools.chain.from_iterable(map(operator.methodcaller("values"), adj.values()))
        )
        vals = list(map(operator.methodcaller("get", weight, 1.0), datas))
    if not set(map(type, vals)) <= {float, int}:
        vals = _weight_values(vals, adj, weight, select, grc)
    return np.fromiter(vals, dtype=np.float64, count=count)


def _weight_values(vals: list, adj, weight: str, select, grc: bool) -> list:
    """``vals`` as floats, or a ``TypeError`` naming the first edge whose weight is not a real
    number: an ``int``, ``float``, ``bool``, ``fractions.Fraction`` or NumPy real scalar (a
    string such as "1.5", None, a complex number, ... are refused; NumPy would read "1.5" as
    1.5 and None as NaN). ``grc``: GraphRicciCurvature's rule instead (what ``math.exp``
    takes: anything ``float()`` converts, strings excepted), for the compat class."""
    out = []
    for i, x in enumerate(vals):
        try:
            if isinstance(x, (str, bytes, bytearray)) or not (
                grc or isinstance(x, (numbers.Real, np.bool_))
            ):
                raise TypeError
            out.append(float(x))
        except (TypeError, ValueError):
            pairs = ((u, v) for u, nbrs in adj.items() for v in nbrs)
            if select is not None:
                pairs = itertools.compress(pairs, select)
            u, v = next(itertools.islice(pairs, i, None))
            what = (
                "must be real numbers, as GraphRicciCurvature requires (what float() "
                "converts, strings excepted)"
                if grc
                else "must be real numbers: int, float, bool, fractions.Fraction or NumPy "
                "real scalars"
            )
            raise TypeError(
                f"edge ({u!r}, {v!r}) has {weight}={x!r} of type {type(x).__name__}; edge "
                f"weights {what}"
            ) from None
    return out


def _as_graph(G, weight: str = "weight", directed_ok: bool = False, grc: bool = False) -> _Graph:
    """Normalise the accepted graph inputs; self-loops are dropped (documented). A networkx
    DiGraph is read as a directed graph when ``directed_ok``, else refused. ``grc``: a
    networkx weight is read by GraphRicciCurvature's rule (the compat class)."""
    reject_gpu(G, "G", "Ricci curvature")
    nodes = None
    if hasattr(G, "is_directed") and hasattr(G, "edges"):  # networkx
        if G.is_multigraph():
            kind = "nx.DiGraph(G)" if G.is_directed() else "nx.Graph(G)"
            raise ValueError(f"G is a multigraph; collapse parallel edges first ({kind})")
        if G.is_directed():
            if not directed_ok:
                raise ValueError(
                    "G is directed; this Ricci computation is defined for undirected "
                    "graphs: pass G.to_undirected()"
                )
            return _as_digraph(G, weight, grc)
        # read the adjacency dicts directly (both directions; keep i < j): several times faster
        # than G.edges(data=True); networkx's plain dict-of-dicts when there is one (the
        # AdjacencyView wrapper costs a Python call per item)
        adj = G._adj if isinstance(getattr(G, "_adj", None), dict) else G.adj
        nodes = list(adj)
        n = len(nodes)
        # nodes 0..n-1, plain dicts, float or int weights: one C-level pass reads the degrees,
        # neighbours and the weights of the entries (u, v), u < v (same values as the loops below)
        plain = None
        if type(adj) is dict and type(weight) is str and weight:
            plain = _core.nx_adjacency(adj, weight)
        if plain is not None:
            deg, cols, w_all, has_data = plain
            # the symmetric CSR in one C++ pass (rows sorted, twins matched, each edge's
            # weight, read at (u, v), u < v, copied to (v, u)): the same arrays as the steps
            # below, which remain for the adjacencies it refuses (not symmetric)
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(deg, out=indptr[1:])
            sym = _core.symmetric_csr(indptr, cols, w_all)
            if sym is not None:
                indptr, cols, w, e, we = sym
                _check_weights(we)
                return _Graph(n, e, we, nodes, _csr=(indptr, cols, w))
        else:
            deg = np.fromiter(map(len, adj.values()), dtype=np.int64, count=n)
            nbr = itertools.chain.from_iterable(adj.values())
            if nodes == list(range(n)) and set(map(type, nodes)) <= {int}:  # not bool, not 1.0
                cols = np.fromiter(nbr, dtype=np.int64, count=int(deg.sum()))
            else:
                pos = {v: k for k, v in enumerate(nodes)}
                cols = np.fromiter(map(pos.__getitem__, nbr), dtype=np.int64, count=int(deg.sum()))
            has_data = any(map(any, map(operator.methodcaller("values"), adj.values())))
        # the CSR comes straight from the adjacency: sort each row, then the entries with
        # row < col are the edges, already in lexicographic order
        rows = np.repeat(np.arange(n, dtype=np.int64), deg)
        keys = rows * max(n, 1) + cols
        order = np.argsort(keys, kind="stable")  # keys unique, ~sorted
        if has_data:  # some edge has attributes; C-level loops, no frame per edge
            # each edge's attributes read once, at (u, v) with u < v (networkx shares one dict
            # between (u, v) and (v, u)); the entry (v, u) takes that weight: sorted by their
            # twin's key, the lower entries pair up with the upper ones in CSR order when the
            # adjacency is symmetric, as networkx's is
            r, c = rows[order], cols[order]
            hi, lo = order[r < c], order[r > c]
            twin = cols[lo] * max(n, 1) + rows[lo]
            by_twin = np.argsort(twin)
            if len(hi) == len(lo) and np.array_equal(twin[by_twin], keys[hi]):
                up = rows < cols
                if plain is not None:
                    w = w_all
                else:
                    w = np.empty(len(cols))
                    w[up] = _edge_weights(adj, weight, len(hi), up.tolist(), grc)
                w[lo[by_twin]] = w[hi]
            else:  # an adjacency that is not symmetric: every entry read
                w = _edge_weights(adj, weight, len(cols), grc=grc)
        else:  # no edge attributes at all (e.g. generated graphs): hop counts
            w = np.ones(len(cols))
        cols, w = cols[order], w[order]
        if (rows == cols).any():  # self-loops dropped
            keep = rows != cols
            rows, cols, w = rows[keep], cols[keep], w[keep]
        _check_weights(w)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        up = rows < cols
        return _Graph(
            n, np.column_stack([rows[up], cols[up]]), w[up], nodes, _csr=(indptr, cols, w)
        )
    if not sp.issparse(G) and not hasattr(G, "edges"):
        arr = as_real(
            np.asarray(G),
            "G",
            "G must be a networkx Graph, a SciPy sparse symmetric matrix, a square (n, "
            "n) adjacency array, or an edge list of shape (m, 2) or (m, 3) (u, v[, "
            f"weight]); got {type(G).__name__} of dtype {np.asarray(G).dtype}",
        )
        G = arr
        if arr.ndim != 2:
            raise ValueError(
                f"G as an array must be 2-D (an edge list or a square adjacency); "
                f"got shape {arr.shape}"
            )
        if arr.shape[1] not in (2, 3):  # not an edge list: a dense adjacency, kept as sparse
            if arr.shape[0] != arr.shape[1]:
                zero = (
                    f"; it has 0 feature(s) (shape={arr.shape}) while a minimum of 2 is required."
                    if arr.shape[1] == 0
                    else ""
                )
                raise ValueError(
                    "G as an array must be an (m, 2) or (m, 3) edge list or a "
                    f"square (n, n) adjacency; got shape {arr.shape}{zero}"
                )
            arr = arr.astype(np.float64)
            if not np.isfinite(arr).all():
                raise ValueError("the adjacency G contains NaN or infinity")
            scale = np.abs(arr).max() if arr.size else 0.0
            if arr.size and np.abs(arr - arr.T).max() > 1e-8 * scale:
                raise ValueError(
                    "the adjacency G is not symmetric; pass (G + G.T) / 2 or "
                    "np.maximum(G, G.T) to symmetrise it"
                )
            G = sp.csr_matrix((arr + arr.T) / 2)  # zeros are no edge; rounding-level asymmetry
        elif (
            arr.shape[0] == arr.shape[1]
            and np.array_equal(arr, arr.T)
            and not np.diagonal(arr).any()
            and not (arr.shape[0] == 2 and arr[0, 1] == 1)  # (both readings: one 0-1 edge)
        ):
            warnings.warn(
                f"G is a {arr.shape[0]} x {arr.shape[1]} array that looks like an adjacency "
                "matrix (symmetric, zero diagonal), but an array with 2 or 3 columns is read "
                f"as an edge list (u, v[, weight]) of {arr.shape[0]} edges; pass "
                "scipy.sparse.csr_matrix(G) for an adjacency",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    if sp.issparse(G):
        if G.ndim != 2 or G.shape[0] != G.shape[1]:
            raise ValueError(f"a sparse adjacency must be square; got shape {G.shape}")
        if G.format == "csr" and G.has_canonical_format:  # sorted, no duplicates (kNN graphs)
            as_real(G, "G", f"sparse adjacency must hold real weights; got {G.dtype}")
            return _csr_graph(G)
        A = sp.coo_matrix(G)
        as_real(A, "G", f"sparse adjacency must hold real weights; got {A.dtype}")
        n = A.shape[0]
        keep = A.row != A.col
        r, c, v = A.row[keep].astype(np.int64), A.col[keep].astype(np.int64), A.data[keep]
        v = v.astype(np.float64)
        if not np.isfinite(v).all():  # (before the symmetry test: NaN != NaN failed it)
            raise ValueError("the adjacency G contains NaN or infinity")
        upper = sp.coo_matrix((v[r < c], (r[r < c], c[r < c])), shape=(n, n)).tocsr()
        lower = sp.coo_matrix((v[r > c], (c[r > c], r[r > c])), shape=(n, n)).tocsr()
        # compare structure (explicit zeros count as edges) and values
        su = sp.coo_matrix((np.ones((r < c).sum()), (r[r < c], c[r < c])), shape=(n, n)).tocsr()
        sl = sp.coo_matrix((np.ones((r > c).sum()), (c[r > c], r[r > c])), shape=(n, n)).tocsr()
        if (su != sl).nnz or (upper != lower).nnz:
            raise ValueError(
                "the sparse adjacency is not symmetric; pass (A + A.T) / 2 or "
                "A.maximum(A.T) to symmetrise it"
            )
        su = su.tocoo()
        e = np.column_stack([su.row, su.col]).astype(np.int64)
        w = np.asarray(upper[su.row, su.col]).ravel() if len(su.row) else np.zeros(0)
    else:
        arr = np.asarray(G)
        if arr.dtype.kind not in "fiu":
            raise TypeError(
                f"an edge list must hold numbers (u, v[, weight]); got dtype {arr.dtype}"
            )
        if not np.isfinite(arr[:, :2]).all():
            raise ValueError("edge list node ids contain NaN or infinity")
        if arr.shape[0] and ((arr[:, :2] < 0).any() or (arr[:, :2] != np.round(arr[:, :2])).any()):
            raise ValueError("edge list node ids must be non-negative integers")
        ij = arr[:, :2].astype(np.int64)
        w = arr[:, 2].astype(np.float64) if arr.shape[1] == 3 else np.ones(len(arr))
        keep = ij[:, 0] != ij[:, 1]
        ij, w = np.sort(ij[keep], axis=1), w[keep]
        n = int(ij.max()) + 1 if len(ij) else 0
        key = ij[:, 0] * max(n, 1) + ij[:, 1]
        uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
        if len(uniq) < len(key) and not np.array_equal(w, w[first][inv]):
            raise ValueError("the edge list repeats an edge with different weights")
        e, w = ij[first], w[first]
    if len(e):
        e = np.sort(e, axis=1)
        order = np.lexsort((e[:, 1], e[:, 0]))
        e, w = np.ascontiguousarray(e[order]), np.ascontiguousarray(w[order], dtype=np.float64)
    _check_weights(w)
    return _Graph(n, e.reshape(-1, 2), w.astype(np.float64), nodes)


def _csr_graph(A) -> _Graph:
    """A canonical CSR adjacency (sorted indices, no duplicates) as a graph, by one O(nnz) C++
    pass (``_core.symmetric_csr``): the diagonal dropped, the symmetry (structure, explicit
    zeros included, and values) checked twin by twin, and the symmetric CSR kept for the
    kernel. The same graph, bit for bit, as the general sparse path: each edge's weight is its
    upper-triangle entry, in both directions of the CSR."""
    n = A.shape[0]
    data = A.data.astype(np.float64, copy=False)
    if not np.isfinite(data).all():  # (before the symmetry test: NaN != NaN failed it)
        diag = np.repeat(np.arange(n), np.diff(A.indptr)) == A.indices
        if not np.isfinite(data[~diag]).all():  # a NaN on the diagonal is dropped with it
            raise ValueError("the adjacency G contains NaN or infinity")
    sym = _core.symmetric_csr(A.indptr, A.indices, data, sorted=True, check_values=True)
    if sym is None:
        raise ValueError(
            "the sparse adjacency is not symmetric; pass (A + A.T) / 2 or "
            "A.maximum(A.T) to symmetrise it"
        )
    indptr, cols, w, e, we = sym
    _check_weights(we)
    return _Graph(n, e, we, None, _csr=(indptr, cols, w))


def _as_digraph(G, weight: str, grc: bool = False) -> _Graph:
    """A networkx DiGraph as sorted arcs (i -> j by node position); self-loops dropped."""
    adj = G._succ if isinstance(getattr(G, "_succ", None), dict) else G.succ
    nodes = list(adj)
    n = len(nodes)
    deg = np.fromiter(map(len, adj.values()), dtype=np.int64, count=n)
    pos = {v: k for k, v in enumerate(nodes)}
    nbr = itertools.chain.from_iterable(adj.values())
    cols = np.fromiter(map(pos.__getitem__, nbr), dtype=np.int64, count=int(deg.sum()))
    w = _edge_weights(adj, weight, len(cols), grc=grc)
    rows = np.repeat(np.arange(n, dtype=np.int64), deg)
    order = np.argsort(rows * max(n, 1) + cols, kind="stable")
    rows, cols, w = rows[order], cols[order], w[order]
    keep = rows != cols  # self-loops dropped
    rows, cols, w = rows[keep], cols[keep], w[keep]
    _check_weights(w)
    return _Graph(
        n,
        np.column_stack([rows, cols]).reshape(-1, 2),
        np.ascontiguousarray(w),
        nodes,
        directed=True,
    )


def _fit_graph(G, weight: str, directed_ok: bool = False) -> _Graph:
    """``_as_graph`` for an estimator's ``fit``: a graph with no node at all is refused there
    (the functions return empty results for it)."""
    g = _as_graph(G, weight, directed_ok)
    if g.n == 0:
        raise ValueError(
            "G has no nodes (an empty edge list or a 0 x 0 adjacency): there is nothing to fit"
        )
    return g


def _check_weights(w: np.ndarray):
    if not np.isfinite(w).all():
        raise ValueError("edge weights contain NaN or infinity")
    if (w < 0).any():
        raise ValueError(
            "Negative values in data: edge weights must be non-negative (they are lengths)"
        )


def _node_average(n: int, edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of `values` over the edges at each node; 0 at isolated nodes."""
    s = np.bincount(edges[:, 0], values, n) + np.bincount(edges[:, 1], values, n)
    deg = np.bincount(edges[:, 0], minlength=n) + np.bincount(edges[:, 1], minlength=n)
    return np.divide(s, deg, out=np.zeros(n), where=deg > 0)


def _write_networkx(G, graph: _Graph, edge_values, node_values, name: str):
    """Copy of G (or a new nx.Graph) with `name` on edges and on non-isolated nodes."""
    import networkx as nx

    H = G.copy() if G is not None else (nx.DiGraph() if graph.directed else nx.Graph())
    labels = graph.nodes if graph.nodes is not None else list(range(graph.n))
    if G is None:
        H.add_nodes_from(labels)
        H.add_weighted_edges_from(
            (labels[i], labels[j], w)
            for (i, j), w in zip(graph.edges.tolist(), graph.weights.tolist())
        )
    for (i, j), v in zip(graph.edges.tolist(), edge_values.tolist()):
        H[labels[i]][labels[j]][name] = v
    deg = np.bincount(graph.edges.ravel(), minlength=graph.n)
    for k, v in enumerate(node_values.tolist()):
        if deg[k]:
            H.nodes[labels[k]][name] = v
    return H


def _check_real(value, name: str, *, low=None, high=None, low_open=False, finite=True) -> float:
    """A real parameter as a float: ``TypeError`` unless a real number (a str, bool, None or
    complex: ``alpha="0.5"`` was accepted, ``float`` reading the string), ``ValueError``
    unless finite (``tol=inf`` was accepted; +inf allowed with ``finite=False``) and within
    ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    v = check_real(value, name, what="a real number")
    bad = math.isnan(v) or (math.isinf(v) and (finite or v < 0))
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or v > high
    if bad:
        if low is not None and high is not None:
            where = f"in [{low:g}, {high:g}]"
        elif low is not None:
            where = f"{'>' if low_open else '>='} {low:g}" + (" and finite" if finite else "")
        else:
            where = "finite"
        raise ValueError(f"{name}={value!r} must be {where}")
    return v


def _check_length_range(est, graph: _Graph, w: np.ndarray) -> None:
    """``ValueError`` for lengths so long that the kernel's sums of them overflow float64:
    the distances it needs are paths of up to 3 edges, the network simplex's artificial
    potentials ~``2 (2 d + 3)`` times the largest cost (``d`` the largest degree), ATD's mean
    sums up to ``d^2`` distances. Such graphs (lengths within ~1e3 of float64's largest,
    e.g. the karate club's lengths times 1e307) gave silently infinite ATD curvatures and
    exact ones off by ~2 with a misleading "did not converge; raise max_iter" warning
    (GraphRicciCurvature's OTD is off there too). An O(1) test clears ordinary lengths; the
    degrees are counted only near the limit. Equal weights with ``"exact"`` (hop counts
    times the length) and ``"lower_bound"`` only need ``3 w`` finite."""
    if not len(w):
        return
    big = np.finfo(np.float64).max
    top = float(w.max())
    m = float(len(w))
    if top * 3.0 * max(4.0 * m + 7.0, m * m) * 2.0 <= big:  # (m bounds every degree)
        return
    equal = top == float(w.min())
    if est.method == "lower_bound" or (est.method == "exact" and equal):
        factor = 3.0
    else:
        e = graph.edges
        if graph.directed:
            deg = max(np.bincount(e[:, 0]).max(), np.bincount(e[:, 1]).max())
        else:
            deg = np.bincount(e.ravel()).max()
        deg = float(deg)
        factor = 3.0 * (deg * deg if est.method == "atd" else 2.0 * (2.0 * deg + 3.0) + 1.0)
    if top * factor <= big:
        return
    raise ValueError(
        f"edge lengths up to {top:g} are too long: the curvature kernel's sums of them "
        f"(3-edge paths{', over neighbour pairs' if est.method == 'atd' else ''}) overflow "
        f"float64 beyond {big / factor:.3g}; divide the lengths by a constant c (the "
        "curvature is unchanged when exp_power = 0; otherwise also pass base ** "
        "(c ** exp_power), which keeps the neighbour weights)"
    )


def _check_neighbour_weights(est, graph: _Graph, w: np.ndarray) -> None:
    """``ValueError`` where a neighbour weight ``base ** -(w ** exp_power)`` of the measures,
    or a node's sum of them, is not a finite float64 (``base < 1`` with long edges, e.g.
    ``base=1e-300`` and a length of 2, ``base=0.5`` with ``exp_power=2000``, or
    ``exp_power < 0`` with ``base < 1`` and a length of 0): the kernel's masses were then NaN
    or not normalised and the curvature came out wrong, silently (1 on such edges, where
    GraphRicciCurvature raises ``OverflowError`` / ``ZeroDivisionError``). The weight is
    monotonic in the length, so the largest one comes from the shortest or the longest
    edge: one bound (the edge count, which bounds every degree, times the largest weight)
    clears ordinary graphs after two reductions over the lengths; the per-node sums only when
    that bound overflows. ``est``: the estimator
    (``method``, ``base``, ``exp_power``, ``nbr_topk``); ATD and the lower bound do not
    weigh the neighbours."""
    _check_length_range(est, graph, w)
    if not len(w) or est.method not in ("exact", "sinkhorn"):
        return
    base, power, nbr_topk = float(est.base), float(est.exp_power), est.nbr_topk
    big = np.finfo(np.float64).max
    with np.errstate(all="ignore"):
        ends = np.power(base, -np.power(np.array([w.min(), w.max()]), power))
        if np.isfinite(ends).all() and len(w) * ends.max() <= big:  # (m bounds a degree)
            return
        pw = np.power(base, -np.power(w, power))
    bad = ~np.isfinite(pw)
    if not bad.any():  # finite weights: a node's sum (over its nbr_topk heaviest) overflows?
        # (a directed graph: the out-neighbours of u and the in-neighbours of v apart)
        e, off = graph.edges, graph.n if graph.directed else 0
        nodes = np.concatenate([e[:, 0], e[:, 1] + off])
        vals = np.concatenate([pw, pw])
        order = np.lexsort((-vals, nodes))
        nodes, vals = nodes[order], vals[order]
        start = np.searchsorted(nodes, nodes, side="left")
        keep = np.arange(len(nodes)) - start < (nbr_topk or len(nodes))
        with np.errstate(over="ignore"):
            sums = np.bincount(nodes[keep], vals[keep], minlength=graph.n + off)
        if np.isfinite(sums).all():
            return
        node = int(np.flatnonzero(~np.isfinite(sums))[0]) % graph.n
        where = f"the neighbour weights of node {graph.nodes[node] if graph.nodes else node!r} sum"
    else:
        i, j = graph.edges[int(np.flatnonzero(bad)[0])].tolist()
        u, v = (graph.nodes[i], graph.nodes[j]) if graph.nodes else (i, j)
        where = f"the neighbour weight of edge ({u!r}, {v!r}) (length {w[bad][0]:g}) is"
    raise ValueError(
        f"{where} beyond float64: base ** -(length ** exp_power) with base={base:g}, "
        f"exp_power={power:g} overflows (or is 0 ** negative); rescale the lengths or "
        "choose base / exp_power (GraphRicciCurvature raises OverflowError there too)"
    )


class _GraphEstimator(BaseEstimator):
    """A curvature estimator: ``fit(G)`` takes a graph. For scikit-learn its input is pairwise
    (a square adjacency, sparse or dense) with non-negative entries."""

    def _geoml_tags(self) -> dict:
        return {
            "input_tags.pairwise": True,
            "input_tags.sparse": True,
            "input_tags.positive_only": True,
        }

    def _set_n_features(self, G) -> None:
        """``n_features_in_``: columns of an array or sparse input (none for networkx)."""
        if hasattr(G, "is_directed"):
            return
        shape = G.shape if hasattr(G, "shape") else np.shape(G)
        self.n_features_in_ = int(shape[1])


class _OrcParams(_GraphEstimator):
    """Shared Ollivier-Ricci hyper-parameters and the kernel call."""

    # the end of the OT solver's non-convergence warning: the parameter the user can set
    # (RicciCommunities runs its RicciFlow with "raise flow_params['max_iter']")
    _advice = "raise max_iter"
    # where the per-edge solver status is kept (OllivierRicci's converged_; RicciFlow's
    # converged_ is the flow's own stopping rule)
    _status_note = ""

    def _check_params(self):
        methods = _core.OrcMethod.__members__
        if not isinstance(self.method, str) or self.method not in methods:
            raise ValueError(f"method={self.method!r}; choose one of {sorted(methods)}")
        # (each a real number: TypeError for a str, bool or None; tol=inf was accepted)
        _check_real(self.alpha, "alpha", low=0.0, high=1.0)
        _check_real(self.base, "base", low=0.0, low_open=True)
        _check_real(self.exp_power, "exp_power")
        _check_real(self.eps, "eps", low=0.0, low_open=True)
        _check_real(self.tol, "tol", low=0.0, low_open=True)
        if self.nbr_topk is not None:
            check_int(self.nbr_topk, "nbr_topk", low=1)
        if self.max_iter is not None:
            check_int(self.max_iter, "max_iter", low=1)

    def _curvature(
        self,
        graph: _Graph,
        weights: np.ndarray | None = None,
        edges=None,
        advice: str | None = None,
    ):
        """Kernel call on ``graph`` with its own weights (None) or with ``weights`` (m,), on
        its edges or on ``edges`` (k, 2), a subset of them (positions); ``advice`` ends the
        non-convergence warning (None: ``self._advice``)."""
        advice = self._advice if advice is None else advice
        options = _core.OrcOptions(
            alpha=float(self.alpha),
            base=float(self.base),
            exp_power=float(self.exp_power),
            nbr_topk=int(self.nbr_topk or 0),
            method=_core.OrcMethod[self.method],
            eps=float(self.eps),
            tol=float(self.tol),
            max_iter=int(self.max_iter or 0),
        )
        if edges is None:
            edges = graph.edges
        _check_neighbour_weights(self, graph, graph.weights if weights is None else weights)
        if graph.directed:
            kappa, dist, status = _core.ollivier_ricci_directed(
                *graph.dicsr(weights),
                edges[:, 0].copy(),
                edges[:, 1].copy(),
                options=options,
                n_jobs=check_n_jobs(self.n_jobs),
            )
        else:
            indptr, indices, w = graph.csr(weights)
            kappa, dist, status = _core.ollivier_ricci(
                indptr,
                indices,
                w,
                edges[:, 0].copy(),
                edges[:, 1].copy(),
                options=options,
                n_jobs=check_n_jobs(self.n_jobs),
            )
        bad = int((status != 0).sum())
        if bad:
            warnings.warn(
                f"the optimal-transport solver did not converge on {bad} of "
                f"{len(status)} edges{self._status_note}; {advice}",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        return kappa, dist, status == 0


class OllivierRicci(_OrcParams):
    """Ollivier-Ricci curvature of every edge of a graph.

    ``kappa(x, y) = 1 - W1(m_x, m_y) / d(x, y)`` where ``m_x`` keeps mass ``alpha`` on ``x`` and
    spreads ``1 - alpha`` over the neighbours ``v`` of ``x`` in proportion to
    ``base ** -(w(x, v) ** exp_power)`` (uniformly if these sum to less than 1e-7), ``d`` is the
    shortest-path metric of the weighted graph (hop count when unweighted) and ``W1`` the
    optimal-transport cost under ``d`` (Ollivier 2009; the measure and conventions of
    GraphRicciCurvature, Ni et al. 2015/2019, whose ``method="OTD"`` results it reproduces).
    Two of those conventions are absolute, as GraphRicciCurvature's ``EPSILON``: an edge
    with ``d(x, y) < 1e-7`` gets curvature 0, and the 1e-7 floor above. So the curvature is
    not invariant under scaling the lengths: express them in units where edges are well
    above 1e-7 (edge lengths of 1e-8, e.g. kNN distances of data at scale 1e-8, give 0 on
    every edge, as GraphRicciCurvature does).

    Only distances between the two neighbourhoods of each edge are computed (at most 3 hops,
    by 2-hop marking when all weights are equal, else Dijkstra stopped at the last needed
    target): never an all-pairs matrix. Memory O(n + m) plus per-thread O(n) scratch. One OT
    problem per edge, all solved in C++ in one call, parallel over nodes with OpenMP. On
    unweighted graphs (all weights equal) ``method="exact"`` uses integer hop costs, bitmasks
    for the paths through hubs and an exact integer-cost min-cost-flow solver (the same
    curvature, several times faster on scale-free graphs).

    Parameters
    ----------
    alpha : float, default 0.5
        Mass kept at the node (laziness), in [0, 1].
    method : {"exact", "sinkhorn", "atd", "lower_bound"}
        ``"exact"``: network simplex (exact W1). ``"sinkhorn"``: ``<P, C>`` of the entropic
        plan with regularisation ``eps`` (GraphRicciCurvature's "Sinkhorn" uses 0.1), by
        geoml's stabilised Sinkhorn (``geoml.ot``) with eps annealed from the cost scale.
        Entropic OT converges slowly when eps is small against the costs and some masses
        are tiny (weighted graphs), or when the kernel nearly splits into blocks: a problem
        that Sinkhorn leaves above ``tol`` after ``max_iter`` iterations gets Newton steps on
        the dual from where it stopped (as :func:`geoml.ot.sinkhorn_newton`, at most
        ``max_iter``), kept when they reach ``tol``; watch ``converged_`` (False only where
        both fail, with a warning). ``"atd"``: GraphRicciCurvature's
        average transportation distance ``alpha d(x, y) + (1 - alpha) mean d(u, v)`` over all
        neighbours ``u`` of ``x`` and ``v`` of ``y`` (uniform, ``nbr_topk`` and the weights
        ``base ** -(w ** exp_power)`` do not enter; a node without neighbours, possible in a
        directed graph, stands for itself where GraphRicciCurvature divides by zero).
        ``"lower_bound"``: Jost & Liu's (2014) triangle bound on the non-lazy curvature times
        ``1 - alpha`` (a lower bound of the lazy curvature by concavity in alpha, Bourne et al.
        2018); unweighted graphs only, O(deg) per edge.
    eps : float, default 0.1
        Entropic regularisation for ``"sinkhorn"`` in cost units.
    tol : float, default 1e-6
        ``"sinkhorn"`` stops when the L1 error of the plan's marginals is below ``tol``.
    exp_power, base : float
        Neighbour weights ``base ** -(w ** exp_power)``; defaults 2 and e. A weight, or a
        node's sum of them, beyond float64 (``base < 1`` with long edges) is a
        ``ValueError`` (GraphRicciCurvature raises ``OverflowError``).
    weight : str, default "weight"
        networkx edge attribute holding lengths (missing: 1): real numbers (int, float, bool,
        ``fractions.Fraction``, NumPy real scalars), anything else a ``TypeError``. Lengths
        so long that the kernel's sums of them overflow float64 (beyond the largest double
        over ``3 (4 d + 7)``, ``d`` the largest degree; ATD: over ``3 d^2``) are a
        ``ValueError``.
    nbr_topk : int, optional
        Keep only the ``nbr_topk`` heaviest neighbours in each measure (GraphRicciCurvature
        default 3000; None: all).
    max_iter : int, optional
        Simplex pivots (None: no limit) or Sinkhorn iterations (None: 10000; the same cap
        again for the Newton steps that follow a Sinkhorn short of ``tol``).
    n_jobs : int, optional
        Threads (None: OpenMP default).

    Attributes
    ----------
    edges_ : ndarray of shape (m, 2)
        Edge endpoints as node positions, ``i < j``, sorted (directed: arcs ``i -> j``).
    weights_ : ndarray of shape (m,)
        Edge lengths used.
    curvature_ : ndarray of shape (m,)
    node_curvature_ : ndarray of shape (n,)
        Mean curvature of the edges at each node (0 at isolated nodes).
    distances_ : ndarray of shape (m,)
        ``d(x, y)`` used as denominator (shorter than the edge when a cheaper path exists).
    converged_ : ndarray of shape (m,), bool
        False where the OT solver hit ``max_iter`` (a warning is raised too).
    nodes_ : list
        Node labels by position (networkx input) or ``range(n)``.
    n_features_in_ : int
        Columns of an array or sparse ``G`` (absent for a networkx graph).

    Notes
    -----
    Self-loops are dropped; multigraphs are refused (collapse them first); edges of weight 0
    have curvature 0 (GraphRicciCurvature's convention); isolated nodes and several connected
    components need no special handling.

    A networkx ``DiGraph`` is read as a directed graph with GraphRicciCurvature's semantics:
    for the arc ``x -> y``, ``m_x`` spreads ``1 - alpha`` over the in-neighbours ``u`` of ``x``
    (weights ``base ** -(w(u, x) ** exp_power)``), ``m_y`` over the out-neighbours of ``y``, a
    node with no such neighbour keeps all its mass, and ``d`` is the directed shortest-path
    length. ``edges_`` are then the arcs ``(i, j)`` (sorted; both ``(i, j)`` and ``(j, i)``
    when both exist) and ``node_curvature_`` the mean over the arcs into and out of each node.
    ``method="lower_bound"`` is for undirected graphs only. These are the measures of
    GraphRicciCurvature 0.6.1's code (``_distribute_densities``: predecessors of the source,
    successors of the target), which its directed test values need; issue 19's wording "out-
    neighbours of the source, in-neighbours of the target" is the reverse, which gives 0.5,
    0.5, 0.75, 0.5 on the arcs (0, 1), (1, 2), (1, 3), (2, 3) of its test digraph (edges 0-1,
    1-2, 2-3, 1-3, 3-1) instead of -0.5, 0, 0.5, 0.5, and no finite value on (3, 1) (no
    directed path from 1 to 0) instead of 0.75.

    Examples
    --------
    >>> import networkx as nx, geoml
    >>> G = nx.karate_club_graph()
    >>> nx.set_edge_attributes(G, 1.0, "weight")  # the classic, unweighted club
    >>> orc = geoml.OllivierRicci(alpha=0.5).fit(G)
    >>> orc.curvature_.shape, round(float(orc.curvature_[0]), 6)  # edge (0, 1)
    ((78,), 0.111111)
    """

    _status_note = " (see converged_)"

    def __init__(
        self,
        alpha: float = 0.5,
        method: str = "exact",
        *,
        eps: float = 0.1,
        tol: float = 1e-6,
        exp_power: float = 2,
        base: float = math.e,
        weight: str = "weight",
        nbr_topk: int | None = None,
        max_iter: int | None = None,
        n_jobs: int | None = None,
    ):
        self.alpha = alpha
        self.method = method
        self.eps = eps
        self.tol = tol
        self.exp_power = exp_power
        self.base = base
        self.weight = weight
        self.nbr_topk = nbr_topk
        self.max_iter = max_iter
        self.n_jobs = n_jobs

    def fit(self, G, y=None) -> OllivierRicci:
        """Compute the curvature of every edge of ``G`` (networkx Graph, sparse or dense
        symmetric matrix of shape (n, n), or edge list of shape (m, 2) / (m, 3); see the module
        notes)."""
        names_in = self._feature_names_of(G)
        self._check_params()
        self._graph = _fit_graph(G, self.weight, directed_ok=True)
        self.edges_, self.weights_ = self._graph.edges, self._graph.weights
        self.curvature_, self.distances_, self.converged_ = self._curvature(self._graph)
        self.node_curvature_ = _node_average(self._graph.n, self.edges_, self.curvature_)
        self.nodes_ = (
            self._graph.nodes if self._graph.nodes is not None else list(range(self._graph.n))
        )
        self._set_n_features(G)
        self._set_feature_names(names_in)
        return self

    def to_networkx(self, G=None):
        """A networkx graph (a copy of ``G`` if given) with GraphRicciCurvature's
        ``"ricciCurvature"`` attribute on every edge and every non-isolated node (the node
        values are ``node_curvature_``: on a directed graph the mean over the arcs into and out
        of the node, not GraphRicciCurvature's sum over the out-arcs divided by the in + out
        degree; :class:`geoml.curvature.compat.OllivierRicci` writes GraphRicciCurvature's)."""
        return _write_networkx(
            G, self._graph, self.curvature_, self.node_curvature_, "ricciCurvature"
        )


def ollivier_ricci(G, alpha: float = 0.5, method: str = "exact", **kwargs) -> np.ndarray:
    """Ollivier-Ricci curvature of each edge, shape (m,), aligned with the sorted edge list
    ``OllivierRicci(...).fit(G).edges_``. See :class:`OllivierRicci` for the parameters.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> cycle = np.array([[i, (i + 1) % 6] for i in range(6)])
    >>> geoml.ollivier_ricci(cycle, alpha=0.0).round(6).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    return OllivierRicci(alpha=alpha, method=method, **kwargs).fit(G).curvature_


class FormanRicci(_GraphEstimator):
    """Forman-Ricci curvature of every edge (Forman 2003; Sreejith et al. 2016), with
    GraphRicciCurvature's formulas and unit node weights.

    ``"1d"``: ``F(x, y) = w (2 / w - sum_{v ~ x, v != y} 1 / sqrt(w w_xv) - sum_{v ~ y, v != x}
    1 / sqrt(w w_yv))``. ``"augmented"`` counts the t triangles on the edge as faces:
    ``F = w (t w + 2 / w - |same sums over the non-triangle neighbours|)``.

    Parameters
    ----------
    method : {"augmented", "1d"}
    weight : str
        networkx edge attribute (missing: 1), as in :class:`OllivierRicci`.
    n_jobs : int, optional

    Attributes
    ----------
    edges_, weights_, curvature_, node_curvature_, nodes_, n_features_in_
        As in :class:`OllivierRicci`.

    Examples
    --------
    >>> import networkx as nx, geoml
    >>> G = nx.karate_club_graph()
    >>> nx.set_edge_attributes(G, 1.0, "weight")
    >>> frc = geoml.FormanRicci().fit(G)
    >>> float(frc.curvature_[1])  # edge (0, 2)
    -7.0
    """

    def __init__(
        self, method: str = "augmented", *, weight: str = "weight", n_jobs: int | None = None
    ):
        self.method = method
        self.weight = weight
        self.n_jobs = n_jobs

    def fit(self, G, y=None) -> FormanRicci:
        """Compute the curvature of every edge of ``G`` (same inputs as OllivierRicci)."""
        names_in = self._feature_names_of(G)
        if self.method not in ("augmented", "1d"):
            raise ValueError(f"method={self.method!r}; choose 'augmented' or '1d'")
        self._graph = g = _fit_graph(G, self.weight)
        if (g.weights == 0).any():
            raise ValueError("Forman curvature divides by edge weights: a weight is 0")
        indptr, indices, w = g.csr()
        self.edges_, self.weights_ = g.edges, g.weights
        self.curvature_ = _core.forman_ricci(
            indptr,
            indices,
            w,
            g.edges[:, 0].copy(),
            g.edges[:, 1].copy(),
            augmented=self.method == "augmented",
            n_jobs=check_n_jobs(self.n_jobs),
        )
        if not np.isfinite(self.curvature_).all():  # w * (t w + 2 / w - ...) out of range
            raise ValueError(
                "Forman curvature overflows float64 for these edge weights (they "
                f"span [{g.weights.min():g}, {g.weights.max():g}]); rescale them"
            )
        self.node_curvature_ = _node_average(g.n, g.edges, self.curvature_)
        self.nodes_ = g.nodes if g.nodes is not None else list(range(g.n))
        self._set_n_features(G)
        self._set_feature_names(names_in)
        return self

    def to_networkx(self, G=None):
        """networkx graph with GraphRicciCurvature's ``"formanCurvature"`` attributes."""
        return _write_networkx(
            G, self._graph, self.curvature_, self.node_curvature_, "formanCurvature"
        )


def forman_ricci(G, method: str = "augmented", **kwargs) -> np.ndarray:
    """Forman-Ricci curvature of each edge, shape (m,) (see :class:`FormanRicci`)."""
    return FormanRicci(method=method, **kwargs).fit(G).curvature_


class RicciFlow(_OrcParams):
    """Discrete Ricci flow of edge lengths (Ni et al. 2019):
    ``w <- w - step * kappa * w``, then lengths rescaled so that they sum to the number of
    edges (GraphRicciCurvature's normalisation, applied here to the whole graph: every
    connected component is kept, none is silently dropped), then curvature recomputed.
    Stops after ``n_iter`` iterations or when ``max(kappa) - min(kappa) < delta``.

    Parameters
    ----------
    n_iter : int, default 20
    step : float, default 1.0
        Lengths must stay non-negative: ``step * kappa <= 1`` on every edge, a ``ValueError``
        otherwise (lower ``step``).
    delta : float, default 1e-4
    surgery : (callable, int), optional
        ``(func, every)``: after iterations ``i % every == 0`` (``i > 0``),
        ``weights = func(edges, weights, curvature)`` (same shape; return lengths).
    alpha, method, eps, tol, exp_power, base, weight, nbr_topk, max_iter, n_jobs
        As in :class:`OllivierRicci`.
    verbose : bool
        Print one line per iteration to stderr.

    Attributes
    ----------
    edges_ : ndarray of shape (m, 2)
    weights_ : ndarray of shape (m,)
        Lengths after the flow.
    curvature_ : ndarray of shape (m,)
        Curvature under the final lengths.
    original_curvature_ : ndarray of shape (m,)
    curvature_history_ : ndarray of shape ``(n_iter_ + 1, m)``
    n_iter_ : int
    converged_ : bool
        True when the curvature spread fell below ``delta``.

    Examples
    --------
    >>> import networkx as nx, geoml
    >>> flow = geoml.RicciFlow(n_iter=3).fit(nx.karate_club_graph())
    >>> flow.curvature_history_.shape, round(float(flow.weights_.sum()), 6)
    ((4, 78), 78.0)
    """

    def __init__(
        self,
        n_iter: int = 20,
        step: float = 1.0,
        delta: float = 1e-4,
        surgery=None,
        *,
        alpha: float = 0.5,
        method: str = "exact",
        eps: float = 0.1,
        tol: float = 1e-6,
        exp_power: float = 2,
        base: float = math.e,
        weight: str = "weight",
        nbr_topk: int | None = None,
        max_iter: int | None = None,
        n_jobs: int | None = None,
        verbose: bool = False,
    ):
        self.n_iter = n_iter
        self.step = step
        self.delta = delta
        self.surgery = surgery
        self.alpha = alpha
        self.method = method
        self.eps = eps
        self.tol = tol
        self.exp_power = exp_power
        self.base = base
        self.weight = weight
        self.nbr_topk = nbr_topk
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, G, y=None) -> RicciFlow:
        """Run the flow on ``G`` (same inputs as OllivierRicci)."""
        names_in = self._feature_names_of(G)
        self._check_params()
        if self.method == "lower_bound":
            raise ValueError("the flow makes the graph weighted: use method='exact' or 'sinkhorn'")
        n_iter = check_int(self.n_iter, "n_iter", low=0)
        # (step=inf: the flow's own "negative or not finite" lengths error, at iteration 1)
        _check_real(self.step, "step", low=0.0, low_open=True, finite=False)
        _check_real(self.delta, "delta", low=0.0)
        if self.surgery is not None and (
            not isinstance(self.surgery, (tuple, list))
            or len(self.surgery) != 2
            or not callable(self.surgery[0])
        ):
            raise ValueError("surgery must be a (callable, every) pair")
        every = None if self.surgery is None else check_int(self.surgery[1], "surgery[1]", low=1)
        self._graph = g = _fit_graph(G, self.weight)
        m = len(g.edges)
        w = g.weights.copy()
        t0 = time.perf_counter()
        kappa, _, _ = self._curvature(g, w)
        history = [kappa]
        self.converged_ = False
        it = 0
        for it in range(1, n_iter + 1):
            w = w - float(self.step) * kappa * w
            if not np.isfinite(w).all() or (w < 0).any():
                # step * kappa > 1 on some edge: a negative length, on which the kernel's
                # Dijkstra failed ("target outside the distance row") or, every length
                # negative, returned curvature 0 everywhere, silently
                raise ValueError(
                    f"the Ricci flow made edge lengths negative or not finite at iteration {it} "
                    "(w <- w - "
                    f"step * kappa * w with step={self.step} and kappa up to "
                    f"{float(kappa.max()):.3g}: step * kappa > 1); lower step"
                )
            # (finite lengths whose sum overflows: w * (m / inf) made every length 0 and the
            # curvature 0 on every edge, silently)
            w, total = finite_sum(w)
            if m and total > 0:
                w *= m / total
            kappa, _, _ = self._curvature(g, w)
            history.append(kappa)
            spread = float(kappa.max() - kappa.min()) if m else 0.0
            if self.verbose:
                print(
                    f"[RicciFlow] iteration {it}/{n_iter}: curvature spread {spread:.3g}, "
                    f"{time.perf_counter() - t0:.1f} s",
                    file=sys.stderr,
                )
            if spread < self.delta:
                self.converged_ = True
                break
            if every is not None and it % every == 0:
                w = np.asarray(self.surgery[0](g.edges, w, kappa), dtype=np.float64)
                if w.shape != (m,) or not np.isfinite(w).all() or (w < 0).any():
                    raise ValueError("surgery must return m finite non-negative lengths")
        self.edges_, self.weights_ = g.edges, w
        self.curvature_ = kappa
        self.original_curvature_ = history[0]
        self.curvature_history_ = np.array(history).reshape(len(history), m)
        self.n_iter_ = it if n_iter else 0
        self.nodes_ = g.nodes if g.nodes is not None else list(range(g.n))
        self._set_n_features(G)
        self._set_feature_names(names_in)
        return self

    def to_networkx(self, G=None):
        """networkx graph with the flowed lengths in ``weight`` plus ``"ricciCurvature"`` and
        ``"original_RC"`` edge attributes, as GraphRicciCurvature's flow writes them."""
        H = _write_networkx(
            G,
            self._graph,
            self.curvature_,
            _node_average(self._graph.n, self.edges_, self.curvature_),
            "ricciCurvature",
        )
        for (i, j), w, k0 in zip(
            self.edges_.tolist(), self.weights_.tolist(), self.original_curvature_.tolist()
        ):
            H[self.nodes_[i]][self.nodes_[j]][self.weight] = w
            H[self.nodes_[i]][self.nodes_[j]]["original_RC"] = k0
        return H


_MAX_CUTS = 1e6  # RicciCommunities: more cutoffs than this would not end in useful time


def _modularity(n: int, edges: np.ndarray, w: np.ndarray, labels: np.ndarray) -> float:
    """Newman modularity of `labels` on the weighted undirected graph (edges, w)."""
    two_m = 2.0 * w.sum()
    if two_m == 0:
        return 0.0
    same = labels[edges[:, 0]] == labels[edges[:, 1]]
    inside = 2.0 * w[same].sum()
    strength = np.bincount(edges[:, 0], w, n) + np.bincount(edges[:, 1], w, n)
    tot = np.bincount(labels, strength)
    return float(inside / two_m - ((tot / two_m) ** 2).sum())


class RicciCommunities(_GraphEstimator):
    """Community detection by Ricci flow (Ni et al. 2019): flow the edge lengths, then cut
    the edges longer than a cutoff; the communities are the connected components. Cutoffs are
    swept from the longest flowed edge down in steps of ``cutoff_step`` and the cut with the
    highest modularity on the original graph is kept.

    This rule is not GraphRicciCurvature's ``ricci_community`` (which keeps the smallest
    cutoff where the modularity of the cut graph, weighted by the flowed lengths, drops by
    more than ``drop_threshold``), and the two can differ: on the unweighted karate club after
    10 iterations it cuts at 1.233 into 5 communities, this rule at 1.783 into 4 (adjusted
    Rand index 0.93 between them). For GraphRicciCurvature's cuts and clusterings use
    :meth:`geoml.curvature.compat.OllivierRicci.ricci_community`.

    Parameters
    ----------
    n_iter : int, default 20
        Ricci-flow iterations.
    cutoff_step : float, default 0.025
    flow_params : dict, optional
        Further :class:`RicciFlow` parameters (``alpha``, ``step``, ``method``, ...); the
        iterations are ``n_iter`` above (``"n_iter"`` here, or GraphRicciCurvature's
        ``"iterations"``, is a ``ValueError``).
    n_jobs : int, optional
    verbose : bool

    Attributes
    ----------
    labels_ : ndarray of shape (n,)
        Community of each node (isolated nodes are their own community).
    modularity_ : float
    cutoff_ : float
    flow_ : RicciFlow
        The fitted flow.

    Examples
    --------
    >>> import networkx as nx, geoml
    >>> rc = geoml.RicciCommunities(n_iter=10).fit(nx.karate_club_graph())
    >>> len(set(rc.labels_.tolist())) >= 2, rc.modularity_ > 0.3
    (True, True)
    """

    def __init__(
        self,
        n_iter: int = 20,
        *,
        cutoff_step: float = 0.025,
        flow_params: dict | None = None,
        n_jobs: int | None = None,
        verbose: bool = False,
    ):
        self.n_iter = n_iter
        self.cutoff_step = cutoff_step
        self.flow_params = flow_params
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _flow_params(self) -> dict:
        """``flow_params`` checked: a dict of :class:`RicciFlow` parameters other than
        ``n_iter`` (``flow_params={"n_iter": 5}`` failed with Python's "got multiple values
        for keyword argument 'n_iter'"); ``n_jobs`` and ``verbose`` default to this
        estimator's."""
        if self.flow_params is None:
            params = {}
        elif isinstance(self.flow_params, dict):
            params = dict(self.flow_params)
        else:
            raise TypeError(f"flow_params must be a dict; got {type(self.flow_params).__name__}")
        for key in ("n_iter", "iterations"):  # (iterations: GraphRicciCurvature's name)
            if key in params:
                raise ValueError(
                    f"flow_params must not hold {key!r}: pass the number of Ricci-flow "
                    "iterations as RicciCommunities(n_iter=...)"
                )
        allowed = set(RicciFlow._get_param_names()) - {"n_iter"}
        unknown = sorted(map(str, set(params) - allowed))
        if unknown:
            raise ValueError(
                f"flow_params: unknown RicciFlow parameter(s) {', '.join(unknown)}; "
                f"choose from {', '.join(sorted(allowed))}"
            )
        params.setdefault("n_jobs", self.n_jobs)
        params.setdefault("verbose", self.verbose)
        return params

    def fit(self, G, y=None) -> RicciCommunities:
        """Flow ``G`` and choose the communities (same inputs as OllivierRicci)."""
        names_in = self._feature_names_of(G)
        step = _check_real(self.cutoff_step, "cutoff_step", low=0.0, low_open=True)
        params = self._flow_params()
        flow = RicciFlow(n_iter=self.n_iter, **params)
        flow._advice = "raise flow_params['max_iter']"  # (RicciCommunities has no max_iter)
        try:
            flow.fit(G)
        finally:
            del flow._advice  # (flow_ refitted by the user advises its own max_iter)
        g = flow._graph
        w = flow.weights_
        best = (-np.inf, None, None)
        if len(w):
            n_cuts = (w.max() - w.min()) / step
            if n_cuts > _MAX_CUTS:
                raise ValueError(
                    f"cutoff_step={step:g} sweeps {n_cuts:.3g} cutoffs over the "
                    f"flowed lengths [{w.min():g}, {w.max():g}] (at most "
                    f"{_MAX_CUTS:g}); raise cutoff_step"
                )
            for cut in np.arange(w.max(), w.min() - step, -step):
                keep = w <= cut
                A = sp.coo_matrix(
                    (np.ones(int(keep.sum())), (g.edges[keep, 0], g.edges[keep, 1])),
                    shape=(g.n, g.n),
                )
                _, labels = connected_components(A, directed=False)
                q = _modularity(g.n, g.edges, g.weights, labels)
                if q > best[0] + 1e-12:
                    best = (q, float(cut), labels)
        if best[2] is None:
            best = (0.0, 0.0, np.arange(g.n))
        self.modularity_, self.cutoff_, self.labels_ = best
        self.labels_ = np.asarray(self.labels_, dtype=np.int64)
        self.flow_ = flow
        self._set_n_features(G)
        self._set_feature_names(names_in)
        return self


def ricci_communities(G, n_iter: int = 20, **kwargs) -> np.ndarray:
    """Community labels of shape (n,) by Ricci flow (see :class:`RicciCommunities`)."""
    return RicciCommunities(n_iter=n_iter, **kwargs).fit(G).labels_
