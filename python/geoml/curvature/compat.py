"""Drop-in replacement for GraphRicciCurvature's ``OllivierRicci`` class, on geoml's kernels.

Code written for GraphRicciCurvature runs unchanged after one import change::

    from geoml.curvature.compat import OllivierRicci  # was GraphRicciCurvature.OllivierRicci

    orc = OllivierRicci(G, alpha=0.5, method="OTD")
    orc.compute_ricci_curvature()  # "ricciCurvature" on orc.G's edges and nodes
    orc.compute_ricci_flow(iterations=10)  # flowed lengths in "weight", "original_RC"
    cutoff, clustering = orc.ricci_community()

Same arguments, same attributes written on the same networkx graph (``orc.G``, a copy of
``G`` with self-loops removed and weight 1 on every edge when no edge has ``weight``), same
return values, same semantics for directed graphs (``DiGraph``), for Ricci flow (on the
largest connected component, rescaled to sum to the number of edges, surgery every ``k``
iterations) and for the community search (modularity drops over flowed-length cutoffs).
``proc`` sets geoml's thread count; ``chunksize``, ``cache_maxsize``, ``shortest_path`` are
accepted and ignored (geoml never forms an all-pairs matrix).

Differences, all documented: ``method="OTDSinkhornMix"`` (the default) and ``"OTD"`` are both
exact (GraphRicciCurvature switches to Sinkhorn when both neighbourhoods exceed 2000 nodes);
``"Sinkhorn"`` is geoml's stabilised Sinkhorn at GraphRicciCurvature's ``eps = 0.1`` run to a
1e-9 marginal error, with Newton steps on the dual where Sinkhorn mixes too slowly for that
(a kernel that nearly splits into blocks: on GraphRicciCurvature's directed test graph the arc
(3, 1) needs millions of Sinkhorn iterations), so every edge gets the converged entropic value
and an edge that still misses 1e-9 is a ``RuntimeWarning``, never silent (GraphRicciCurvature's
POT call stops at 1000 iterations, POT's default, short of convergence on weighted graphs, on
that arc and on many edges of unweighted graphs, where POT warns: curvatures up to ~4e-3 off
the converged entropic value on random weighted graphs of 3 to 14 nodes, up to 1.4e-4 on 20
of the 40 edges of a 5 x 5 grid and 1.1e-4 on 5 of the 80 edges of a Watts-Strogatz graph,
which geoml matches to 5e-9 (POT's log-domain Sinkhorn run to a 1e-13 marginal error); geoml
does not copy that stopping rule, whose result is an unconverged iterate that no other solver
reproduces: compare ``"Sinkhorn"`` with GraphRicciCurvature only where its POT calls
converge); with
``alpha=0`` GraphRicciCurvature's ``"Sinkhorn"`` is not usable (POT's ``sinkhorn`` divides by
the zero mass left on the node: curvatures near 1 with POT's "numerical errors" warning),
geoml's is the entropic value there too;
``"ATD"`` on a directed graph's node without in- (out-) neighbours uses the node itself where
GraphRicciCurvature divides by zero;
``compute_ricci_curvature_edges`` refuses pairs that are not edges of the graph (ValueError),
``ricci_community`` raises ValueError where GraphRicciCurvature's asserts fail, and a
``MultiGraph`` / ``MultiDiGraph`` is refused when constructed (ValueError: collapse its parallel
edges first; GraphRicciCurvature fails on it too, with a TypeError or ValueError from
networkx, except in ``compute_ricci_curvature_edges``); edges without the ``weight`` attribute
on a graph where others have it are of length 1 (GraphRicciCurvature raises ``KeyError``), and a
graph without edges (nodes only, or only self-loops) gets no curvature, where
GraphRicciCurvature's ``compute_ricci_curvature`` fails ("Chunksize must be 1+"); lengths within
~1e3 of float64's largest, whose sums overflow in geoml's kernel, are a ``ValueError`` (see
``geoml.OllivierRicci``'s ``weight``; GraphRicciCurvature's OTD is wrong there, its ATD right).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .._validation import check_int, finite_sum
from . import OllivierRicci as _OllivierRicci
from . import _as_graph, _check_real

__all__ = ["OllivierRicci"]

logger = logging.getLogger("geoml.curvature.compat")

_METHODS = {
    "OTD": "exact",
    "OTDSinkhornMix": "exact",
    "ATD": "atd",
    "Sinkhorn": "sinkhorn",
}
_LEVELS = {"INFO": logging.INFO, "TRACE": logging.DEBUG + 5, "DEBUG": logging.DEBUG}
# the end of the kernel's non-convergence warning ("Sinkhorn": neither Sinkhorn nor the Newton
# steps after it reached 1e-9; the compat class has no max_iter to raise)
_ADVICE = (
    "their curvature is that of the last iterate (GraphRicciCurvature's own POT call stops "
    "short as well there, with POT's warning)"
)


def _identity_surgery(G, *args, **kwargs):
    return G


class OllivierRicci:
    """GraphRicciCurvature's ``OllivierRicci`` (0.6.1) on geoml's kernels: same constructor,
    methods, return values and networkx attributes (see the module notes for the few
    documented differences).

    Parameters
    ----------
    G : networkx.Graph or networkx.DiGraph
        Copied into ``self.G``.
    weight : str, default "weight"
    alpha : float, default 0.5
    method : {"OTD", "ATD", "Sinkhorn", "OTDSinkhornMix"}
    base, exp_power : float
        Neighbour weights ``base ** -(w ** exp_power)``; defaults e and 2.
    proc : int, optional
        Threads (default: all).
    chunksize, shortest_path, cache_maxsize
        Accepted for compatibility; ignored.
    nbr_topk : int, default 3000
    verbose : {"INFO", "TRACE", "DEBUG", "ERROR"}
        Level of the ``geoml.curvature.compat`` logger.

    Examples
    --------
    >>> import networkx as nx
    >>> from geoml.curvature.compat import OllivierRicci
    >>> K = nx.karate_club_graph()
    >>> nx.set_edge_attributes(K, 1.0, "weight")  # the classic, unweighted club
    >>> orc = OllivierRicci(K, alpha=0.5, method="OTD")
    >>> G = orc.compute_ricci_curvature()
    >>> round(G[0][1]["ricciCurvature"], 6)
    0.111111
    >>> cutoff, clustering = orc.ricci_community()  # after 10 Ricci-flow iterations
    >>> len(set(clustering.values())) >= 2
    True
    """

    def __init__(
        self,
        G,
        weight="weight",
        alpha=0.5,
        method="OTDSinkhornMix",
        base=math.e,
        exp_power=2,
        proc=None,
        chunksize=None,
        shortest_path="all_pairs",
        cache_maxsize=1000000,
        nbr_topk=3000,
        verbose="ERROR",
    ):
        import networkx as nx

        if not (hasattr(G, "is_directed") and hasattr(G, "edges")):
            raise TypeError(f"G must be a networkx Graph or DiGraph; got {type(G).__name__}")
        if method not in _METHODS:
            raise ValueError(f"method={method!r}; choose one of {sorted(_METHODS)}")
        if G.is_multigraph():
            kind = "nx.DiGraph(G)" if G.is_directed() else "nx.Graph(G)"
            raise ValueError(f"G is a multigraph; collapse parallel edges first ({kind})")
        self.G = G.copy()
        self.alpha = alpha
        self.weight = weight
        self.method = method
        self.base = base
        self.exp_power = exp_power
        self.proc = proc
        self.chunksize = chunksize
        self.cache_maxsize = cache_maxsize
        self.shortest_path = shortest_path
        self.nbr_topk = nbr_topk
        self.set_verbose(verbose)
        self.lengths = {}
        self.densities = {}
        if not nx.get_edge_attributes(self.G, weight):
            for v1, v2 in self.G.edges():
                self.G[v1][v2][weight] = 1.0
        self.G.remove_edges_from(list(nx.selfloop_edges(self.G)))

    def set_verbose(self, verbose):
        """Set the level of the ``geoml.curvature.compat`` logger ("ERROR" by default)."""
        logger.setLevel(_LEVELS.get(verbose, logging.ERROR))

    # ------------------------------------------------------------------ curvature
    def _estimator(self):
        kw = {}
        if self.method == "Sinkhorn":
            kw = {"eps": 0.1, "tol": 1e-9, "max_iter": 1_000_000}
        return _OllivierRicci(
            alpha=self.alpha,
            method=_METHODS[self.method],
            exp_power=self.exp_power,
            base=self.base,
            weight=self.weight,
            nbr_topk=self.nbr_topk,
            n_jobs=self.proc,
            **kw,
        )

    def _kernel(self, G, edge_list=None):
        """(graph, edges as positions (k, 2), curvature (k,)) of G on edge_list or all edges."""
        est = self._estimator()
        est._check_params()
        g = _as_graph(G, self.weight, directed_ok=True, grc=True)
        if edge_list:
            pos = {v: k for k, v in enumerate(g.nodes)}
            try:
                e = np.array([(pos[u], pos[v]) for u, v in edge_list], dtype=np.int64)
            except KeyError as err:
                raise ValueError(f"edge_list names a node not in G: {err.args[0]!r}") from None
            e = e.reshape(-1, 2)
            for (i, j), (u, v) in zip(e.tolist(), edge_list):
                if not G.has_edge(u, v) or i == j:
                    raise ValueError(f"edge_list: ({u!r}, {v!r}) is not an edge of G")
        else:
            e = g.edges
        kappa, _, _ = (
            est._curvature(g, edges=e, advice=_ADVICE) if len(e) else (np.zeros(0), None, None)
        )
        return g, e, kappa

    def compute_ricci_curvature_edges(self, edge_list=None):
        """Ricci curvature of the edges in ``edge_list`` (all edges of ``self.G`` when empty or
        None) as a dict ``{(u, v): curvature}``, keyed as given (or as ``G.edges()``). An
        iterator (a generator, ``zip``) is read once, as GraphRicciCurvature does."""
        if edge_list is not None and not hasattr(edge_list, "__len__"):
            edge_list = list(edge_list)
            if not edge_list:  # GraphRicciCurvature: a (truthy) empty iterator, no edge
                return {}
        g, e, kappa = self._kernel(self.G, edge_list)
        if edge_list:
            return {(u, v): float(k) for (u, v), k in zip(edge_list, kappa)}
        value = _edge_lookup(g, kappa)
        return {(u, v): value(u, v) for u, v in self.G.edges()}

    def compute_ricci_curvature(self):
        """Write ``"ricciCurvature"`` on every edge of ``self.G`` and, on every node of
        non-zero degree, the sum over its edges (out-arcs of a DiGraph) divided by its degree
        (GraphRicciCurvature's node curvature); returns ``self.G``."""
        g, _, kappa = self._kernel(self.G)
        _write_curvature(self.G, g, kappa)
        return self.G

    # ------------------------------------------------------------------ flow
    def compute_ricci_flow(
        self, iterations=10, step=1, delta=1e-4, surgery=(_identity_surgery, 100)
    ):
        """Ricci flow ``w <- w - step * kappa * w`` of the edge lengths, rescaled to sum to the
        number of edges, for ``iterations`` steps or until ``max - min`` curvature < ``delta``;
        ``surgery = (func, k)`` calls ``G = func(G, weight)`` after iterations ``i % k == 0``,
        ``i > 0``. Runs on the largest connected component when ``G`` is not connected (and
        ``self.G`` becomes it). Writes the flowed lengths in ``weight``, ``"ricciCurvature"``
        and ``"original_RC"``; returns ``self.G``."""
        import networkx as nx

        # (GraphRicciCurvature does not check them; a str or inf failed later, or not at all)
        check_int(iterations, "iterations", low=0)
        step = _check_real(step, "step", low=0.0, low_open=True)  # (inf: a NaN warning first)
        delta = _check_real(delta, "delta", low=0.0)
        G = self.G
        if G.is_directed():

            class DirectedFlowError(ValueError, nx.NetworkXNotImplemented):
                pass

            raise DirectedFlowError(
                "not implemented for directed type: Ricci flow needs nx.is_connected "
                "(GraphRicciCurvature raises the same); pass G.to_undirected()"
            )
        if G.number_of_nodes() == 0:

            class NullGraphError(ValueError, nx.NetworkXPointlessConcept):
                pass

            raise NullGraphError("Connectivity is undefined for the null graph.")
        if not nx.is_connected(G):
            logger.info("Not connected graph detected, compute on the largest connected component.")
            G = nx.Graph(G.subgraph(max(nx.connected_components(G), key=len)))
        normalized_weight = float(G.number_of_edges())
        if nx.get_edge_attributes(G, "original_RC"):
            logger.info("original_RC detected, continue to refine the ricci flow.")
            g = _as_graph(G, self.weight, grc=True)
            kappa = _edge_values(G, g, "ricciCurvature")
        else:
            g, _, kappa = self._kernel(G)
            _write_curvature(G, g, kappa)
            nx.set_edge_attributes(G, nx.get_edge_attributes(G, "ricciCurvature"), "original_RC")
        w = g.weights.copy()
        fresh = False
        surgery_func, do_surgery = surgery
        est = self._estimator()
        for i in range(iterations):
            w = w - step * kappa * w
            w, total = finite_sum(w)  # (finite lengths whose sum overflows: scaled first)
            if not len(w) or not np.isfinite(w).all() or not total > 0 or (w < 0).any():
                raise ValueError(
                    "Ricci flow needs edges of positive total length and lengths that stay "
                    f"non-negative (step={step}): {len(w)} edges, total {total:g}"
                )
            w = w * (normalized_weight / total)
            logger.info(" === Ricci flow iteration %d === ", i)
            kappa, _, _ = est._curvature(g, w, advice=_ADVICE)
            fresh = True  # not yet written onto G
            diff = float(kappa.max() - kappa.min()) if len(kappa) else 0.0
            if diff < delta:
                break
            if i != 0 and i % do_surgery == 0:
                _write_weights(G, g, w, self.weight)
                _write_curvature(G, g, kappa)
                fresh = False  # the node values stay those of the graph before surgery
                G = surgery_func(G, self.weight)
                normalized_weight = float(G.number_of_edges())
                g = _as_graph(G, self.weight, grc=True)
                w = g.weights.copy()
                kappa = _edge_values(G, g, "ricciCurvature")
        if fresh:
            _write_weights(G, g, w, self.weight)
            _write_curvature(G, g, kappa)
        self.G = G
        return self.G

    # ------------------------------------------------------------------ communities
    def ricci_community(self, cutoff_step=0.025, drop_threshold=0.01):
        """The last of :meth:`ricci_community_all_possible_clusterings`: ``(cutoff,
        {node: community})``."""
        cc = self.ricci_community_all_possible_clusterings(
            cutoff_step=cutoff_step, drop_threshold=drop_threshold
        )
        if not cc:
            raise ValueError("No clustering found!")
        return cc[-1]

    def ricci_community_all_possible_clusterings(self, cutoff_step=0.025, drop_threshold=0.01):
        """Cutoffs of the flowed lengths where the modularity of the cut graph's components
        (on the cut graph, with the flowed lengths as weights) drops by more than
        ``drop_threshold`` (relative) as the cutoff rises from 1 in steps of ``cutoff_step``,
        largest first as GraphRicciCurvature lists them, each with its clustering
        ``{node: component}``: a list of ``(cutoff, clustering)``, smallest cutoff last. Runs
        :meth:`compute_ricci_flow` first when no ``"original_RC"`` is on ``self.G``."""
        import networkx as nx

        cutoff_step = _check_real(cutoff_step, "cutoff_step", low=0.0, low_open=True)
        drop_threshold = _check_real(drop_threshold, "drop_threshold", low=0.0)
        if not nx.get_edge_attributes(self.G, "original_RC"):
            self.compute_ricci_flow()
        g = _as_graph(self.G, self.weight, grc=True)
        w = g.weights
        if not len(w):
            raise ValueError("No edge weight detected, abort.")
        cuts = _rf_metric_cutoff(g, w, cutoff_step, drop_threshold)
        if not cuts:
            raise ValueError("No cutoff point found!")
        cc = []
        for cut in cuts[::-1]:
            labels = _components(g, w <= cut)
            cc.append((cut, {g.nodes[k]: int(c) for k, c in enumerate(labels)}))
        return cc


# ---------------------------------------------------------------------- helpers
def _edge_lookup(g, values):
    """(u, v) labels -> value of that edge of g (either orientation when undirected)."""
    pos = {v: k for k, v in enumerate(g.nodes)}
    n = max(g.n, 1)
    key = g.edges[:, 0] * n + g.edges[:, 1]
    table = dict(zip(key.tolist(), np.asarray(values, dtype=np.float64).tolist()))

    def value(u, v):
        i, j = pos[u], pos[v]
        if not g.directed and i > j:
            i, j = j, i
        return table[i * n + j]

    return value


def _edge_values(G, g, name):
    """The attribute ``name`` of g's edges in G, aligned with g.edges."""
    nodes = g.nodes
    return np.array([G[nodes[i]][nodes[j]][name] for i, j in g.edges.tolist()], dtype=np.float64)


def _write_weights(G, g, w, weight):
    nodes = g.nodes
    for (i, j), x in zip(g.edges.tolist(), np.asarray(w).tolist()):
        G[nodes[i]][nodes[j]][weight] = x


def _write_curvature(G, g, kappa):
    """GraphRicciCurvature's attributes: kappa on the edges; on each node of non-zero degree,
    the sum over its edges (DiGraph: its out-arcs) divided by its degree (in + out)."""
    nodes = g.nodes
    kappa = np.asarray(kappa, dtype=np.float64)
    for (i, j), k in zip(g.edges.tolist(), kappa.tolist()):
        G[nodes[i]][nodes[j]]["ricciCurvature"] = k
    e = g.edges
    deg = np.bincount(e[:, 0], minlength=g.n) + np.bincount(e[:, 1], minlength=g.n)
    total = np.bincount(e[:, 0], kappa, g.n)
    if not g.directed:
        total = total + np.bincount(e[:, 1], kappa, g.n)
    for k in np.flatnonzero(deg).tolist():
        G.nodes[nodes[k]]["ricciCurvature"] = float(total[k] / deg[k])


def _components(g, keep):
    """Labels of the connected components of g restricted to the edges `keep`, numbered in
    order of their first node (networkx's connected_components order)."""
    e = g.edges[keep]
    A = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(g.n, g.n))
    _, labels = connected_components(A, directed=False)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]


def _modularity(g, keep, w, labels):
    """python-louvain's modularity of `labels` on the graph of the edges `keep` with weights
    w (what GraphRicciCurvature scores each cut with)."""
    e, we = g.edges[keep], w[keep]
    links = we.sum()
    if links == 0:
        raise ValueError("A graph without link has an undefined modularity")
    same = labels[e[:, 0]] == labels[e[:, 1]]
    inc = np.bincount(labels[e[same, 0]], we[same], labels.max() + 1)
    strength = np.bincount(e[:, 0], we, g.n) + np.bincount(e[:, 1], we, g.n)
    deg = np.bincount(labels, strength, labels.max() + 1)
    return float((inc / links - (deg / (2.0 * links)) ** 2).sum())


def _rf_metric_cutoff(g, w, cutoff_step, drop_threshold):
    """GraphRicciCurvature's get_rf_metric_cutoff on arrays."""
    cutoff_range = np.arange(w.max(), 1, -cutoff_step)
    modularity = []
    for cutoff in cutoff_range:
        keep = w <= cutoff
        modularity.append(_modularity(g, keep, w, _components(g, keep)))
    good_cuts = []
    if not modularity:
        return good_cuts
    mod_last = modularity[-1]
    for i in range(len(modularity) - 1, 0, -1):
        mod_now = modularity[i]
        if mod_last > mod_now > 1e-4 and abs(mod_last - mod_now) / mod_last > drop_threshold:
            good_cuts.append(float(cutoff_range[i + 1]))
        mod_last = mod_now
    return good_cuts
