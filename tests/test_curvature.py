"""Ricci curvature against GraphRicciCurvature (method "OTD"), closed forms, and edge cases."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
from geoml import curvature as gc

nx = pytest.importorskip("networkx")
grc_mod = pytest.importorskip("GraphRicciCurvature.OllivierRicci")
frc_mod = pytest.importorskip("GraphRicciCurvature.FormanRicci")
logging.getLogger("GraphRicciCurvature").setLevel(logging.ERROR)
# GraphRicciCurvature hands POT the integer histogram [1] for a node without (in-/out-)
# neighbours, and POT warns about it (geoml never sees POT)
pytestmark = pytest.mark.filterwarnings("ignore:Input histogram consists of integer:UserWarning")


def grc_curvature(G, **kw):
    o = grc_mod.OllivierRicci(G, method="OTD", proc=1, verbose="ERROR", **kw)
    o.compute_ricci_curvature()
    return o.G


def edge_values(H, est, name="ricciCurvature"):
    return np.array([H[est.nodes_[i]][est.nodes_[j]][name] for i, j in est.edges_])


def weighted(G, seed):
    G = G.copy()
    rng = np.random.default_rng(seed)
    for u, v in G.edges():
        G[u][v]["weight"] = float(rng.uniform(0.2, 3.0))
    return G


GRAPHS = {
    "karate": lambda s: nx.karate_club_graph(),
    "lesmis": lambda s: nx.les_miserables_graph(),  # weighted (co-occurrence counts)
    "florentine": lambda s: nx.florentine_families_graph(),
    "regular": lambda s: nx.random_regular_graph(4, 40, seed=s),
    "ba": lambda s: nx.barabasi_albert_graph(120, 3, seed=s),
    "ba_weighted": lambda s: weighted(nx.barabasi_albert_graph(80, 2, seed=s), s),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.8])
def test_matches_graphriccicurvature_otd(name, alpha):
    G = GRAPHS[name](int(alpha * 10))
    H = grc_curvature(G, alpha=alpha)
    orc = geoml.OllivierRicci(alpha=alpha).fit(G)
    np.testing.assert_allclose(orc.curvature_, edge_values(H, orc), atol=1e-6, rtol=0)
    assert orc.converged_.all()
    # node curvature and the networkx drop-in attributes
    out = orc.to_networkx(G)
    for v in G.nodes():
        if G.degree(v):
            assert out.nodes[v]["ricciCurvature"] == pytest.approx(
                H.nodes[v]["ricciCurvature"], abs=1e-6
            )
    for u, v in G.edges():
        assert out[u][v]["ricciCurvature"] == pytest.approx(H[u][v]["ricciCurvature"], abs=1e-6)


def test_exp_power_base_and_topk_match():
    G = weighted(nx.barabasi_albert_graph(60, 3, seed=4), 4)
    H = grc_curvature(G, alpha=0.3, exp_power=1, base=2.0, nbr_topk=3)
    orc = geoml.OllivierRicci(alpha=0.3, exp_power=1, base=2.0, nbr_topk=3).fit(G)
    np.testing.assert_allclose(orc.curvature_, edge_values(H, orc), atol=1e-6)


@pytest.mark.parametrize("n", [3, 5, 8])
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.9])
def test_complete_graph_closed_form(n, alpha):
    # m_x and m_y differ only at x and y: W1 = |alpha - (1 - alpha) / (n - 1)|
    kappa = geoml.ollivier_ricci(nx.complete_graph(n), alpha=alpha)
    np.testing.assert_allclose(kappa, 1 - abs(alpha - (1 - alpha) / (n - 1)), atol=1e-12)


@pytest.mark.parametrize("n", [6, 7, 12])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_cycle_closed_form(n, alpha):
    # locally a line: W1 = 1 for every laziness, so kappa = 0
    np.testing.assert_allclose(geoml.ollivier_ricci(nx.cycle_graph(n), alpha=alpha), 0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tree_closed_form(seed):
    # non-lazy curvature of a tree edge: -2 (1 - 1/d_x - 1/d_y)_+ (Jost & Liu 2014, sharp on trees)
    T = (
        nx.random_labeled_tree(40, seed=seed)
        if hasattr(nx, "random_labeled_tree")
        else nx.random_tree(40, seed=seed)
    )
    orc = geoml.OllivierRicci(alpha=0.0).fit(T)
    deg = np.array([T.degree(v) for v in orc.nodes_], dtype=float)
    dx, dy = deg[orc.edges_[:, 0]], deg[orc.edges_[:, 1]]
    np.testing.assert_allclose(orc.curvature_, -2 * np.maximum(0, 1 - 1 / dx - 1 / dy), atol=1e-12)
    lb = geoml.OllivierRicci(alpha=0.0, method="lower_bound").fit(T)
    np.testing.assert_allclose(lb.curvature_, orc.curvature_, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_lower_bound_is_a_lower_bound(alpha):
    for G in (
        nx.Graph(list(nx.karate_club_graph().edges())),  # drop karate's weights
        nx.barabasi_albert_graph(150, 3, seed=2),
        nx.random_regular_graph(5, 30, seed=1),
    ):
        exact = geoml.OllivierRicci(alpha=alpha).fit(G).curvature_
        lb = geoml.OllivierRicci(alpha=alpha, method="lower_bound").fit(G).curvature_
        assert np.all(lb <= exact + 1e-12)
        assert np.corrcoef(lb, exact)[0, 1] > 0.5  # and informative
    with pytest.raises(ValueError, match="unweighted"):
        geoml.OllivierRicci(method="lower_bound").fit(weighted(nx.karate_club_graph(), 0))


def test_sinkhorn_close_to_exact_and_to_grc():
    G = nx.karate_club_graph()
    nx.set_edge_attributes(G, 1.0, "weight")  # hop distances: well-conditioned entropic OT
    exact = geoml.OllivierRicci().fit(G).curvature_
    sk = geoml.OllivierRicci(method="sinkhorn", eps=0.01).fit(G)
    assert sk.converged_.all()
    np.testing.assert_allclose(sk.curvature_, exact, atol=0.02)
    # an exact coupling costs at least W1; the plan meets its marginals to tol=1e-6 (costs <= 3)
    assert np.all(sk.curvature_ <= exact + 1e-5)
    o = grc_mod.OllivierRicci(G, method="Sinkhorn", proc=1, verbose="ERROR")
    o.compute_ricci_curvature()
    coarse = geoml.OllivierRicci(method="sinkhorn", eps=0.1, tol=1e-9).fit(G)
    assert coarse.converged_.all()
    # POT's sinkhorn2 (GraphRicciCurvature's "Sinkhorn") stops at 1000 iterations: 1e-4 apart
    # on one edge; the others agree to 1e-6
    diff = np.abs(coarse.curvature_ - edge_values(o.G, coarse))
    assert diff.max() < 1e-3 and np.sum(diff > 1e-6) <= 2


def test_input_forms_agree_and_edge_cases():
    G = nx.barabasi_albert_graph(50, 2, seed=1)
    ref = geoml.OllivierRicci().fit(G)
    A = nx.to_scipy_sparse_array(G, nodelist=range(50), format="csr")
    np.testing.assert_allclose(geoml.OllivierRicci().fit(A).curvature_, ref.curvature_)
    edges = np.array(list(G.edges()))
    np.testing.assert_allclose(geoml.ollivier_ricci(edges), ref.curvature_)
    np.testing.assert_allclose(
        geoml.ollivier_ricci(np.column_stack([edges, np.ones(len(edges))])), ref.curvature_
    )
    # self-loops are dropped
    H = G.copy()
    H.add_edge(3, 3)
    np.testing.assert_allclose(geoml.OllivierRicci().fit(H).curvature_, ref.curvature_)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_networkx_csr_and_reweighting_match_edge_list(seed):
    # the networkx reader builds the CSR from the adjacency (own code path): same structure,
    # weights, and CSR gather of new weights (Ricci flow) as the edge-list reader
    rng = np.random.default_rng(seed)
    G = nx.gnm_random_graph(40, 120, seed=seed)
    for u, v in G.edges():
        G[u][v]["weight"] = float(rng.uniform(0.5, 2))
    G.add_edge(5, 5, weight=1.0)  # dropped
    G.add_node(99)  # isolated
    labels = rng.permutation(len(G))  # node order and labels unrelated to positions
    H = nx.relabel_nodes(G, {v: f"n{labels[k]}" for k, v in enumerate(G)})
    g = gc._as_graph(H)
    pos = {v: k for k, v in enumerate(g.nodes)}
    el = np.array([[pos[u], pos[v], d["weight"]] for u, v, d in H.edges(data=True) if u != v])
    ref = gc._as_graph(el)
    if ref.n < g.n:  # trailing isolated nodes are invisible to an edge list
        ref.n = g.n
    np.testing.assert_array_equal(g.edges, ref.edges)
    np.testing.assert_array_equal(g.weights, ref.weights)
    w2 = rng.uniform(1, 3, len(g.edges))
    for a, b in zip(g.csr(), ref.csr()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(g.csr(w2), ref.csr(w2)):
        np.testing.assert_array_equal(a, b)
    A = sp.csr_matrix((g.csr(w2)[2], g.csr()[1], g.csr()[0]), shape=(g.n, g.n))
    assert (A != A.T).nnz == 0
    np.testing.assert_array_equal(A[g.edges[:, 0], g.edges[:, 1]].A1, w2)


def test_networkx_reader_weights_once_per_edge_and_asymmetric_fallback():
    # the reader takes each edge's weight from (u, v), u < v, and gives it to (v, u) too; edges
    # without the attribute weigh 1; an adjacency that is not symmetric (no networkx Graph is)
    # has every entry read, as before
    G = nx.Graph()
    G.add_edge("b", "a", weight=2.5)
    G.add_edge("a", "c")  # no weight: 1
    G.add_edge("c", "d", weight=0.25)
    G.add_edge("d", "d", weight=9.0)  # self-loop: dropped
    g = gc._as_graph(G)
    assert g.nodes == ["b", "a", "c", "d"]
    np.testing.assert_array_equal(g.edges, [[0, 1], [1, 2], [2, 3]])
    np.testing.assert_array_equal(g.weights, [2.5, 1.0, 0.25])
    A = sp.csr_matrix((g.csr()[2], g.csr()[1], g.csr()[0]), shape=(4, 4))
    np.testing.assert_array_equal(A.toarray(), A.toarray().T)
    np.testing.assert_array_equal(A.toarray()[[0, 1, 2], [1, 2, 3]], [2.5, 1.0, 0.25])

    class OneWay:  # duck-typed graph whose adjacency lists (0, 1) and (0, 2) one way only
        adj = {0: {1: {"weight": 2.0}, 2: {"weight": 3.0}}, 1: {}, 2: {0: {"weight": 3.0}}}

        def is_directed(self):
            return False

        def is_multigraph(self):
            return False

        def edges(self):
            return []

    h = gc._as_graph(OneWay())
    np.testing.assert_array_equal(h.edges, [[0, 1], [0, 2]])
    np.testing.assert_array_equal(h.weights, [2.0, 3.0])
    np.testing.assert_array_equal(h.csr()[2], [2.0, 3.0, 3.0])


@pytest.mark.parametrize("seed", [0, 1])
def test_networkx_c_reader_matches_python_reader(seed, monkeypatch):
    # the C-level read of a plain adjacency (nodes 0..n-1, float/int weights) gives the same
    # graph, bit for bit, as the Python loops; other inputs fall back to those loops
    rng = np.random.default_rng(seed)
    G = nx.gnm_random_graph(60, 200, seed=seed)
    for k, (u, v) in enumerate(G.edges()):
        if k % 4 == 0:
            G[u][v]["weight"] = int(rng.integers(1, 5))
        elif k % 4 == 1:
            G[u][v]["weight"] = float(rng.uniform(0.1, 3))
        elif k % 4 == 2:
            G[u][v]["other"] = 1.5  # attributes, but no weight: 1
    G.add_edge(0, 1, weight=2**60 + 1)  # an int that float() rounds
    G.add_edge(7, 7, weight=3.0)  # self-loop, dropped
    G.add_node(60)  # isolated
    variants = {"plain": G}
    (a, b), (c, d) = list(G.edges())[3], list(G.edges())[9]
    B = G.copy()
    B[a][b]["weight"] = True  # bool: not an exact int, Python path
    N = G.copy()
    N[c][d]["weight"] = np.float64(0.7)  # NumPy scalar: Python path
    R = nx.Graph()
    R.add_nodes_from(reversed(range(61)))  # nodes not in the order 0..n-1
    R.add_edges_from(G.edges(data=True))
    Z = nx.Graph()
    Z.add_nodes_from(range(61))
    Z.add_edges_from(G.edges())  # no attributes at all
    variants.update(bool=B, numpy=N, reversed=R, bare=Z)

    class LowerOnly:  # not symmetric: the only attribute sits on an entry (v, u), v > u
        adj = {0: {1: {}}, 1: {0: {"weight": 4.0}, 2: {}}, 2: {}}

        def is_directed(self):
            return False

        def is_multigraph(self):
            return False

        def edges(self):
            return []

    variants["lower"] = LowerOnly()
    assert gc._core.nx_adjacency(G._adj, "weight") is not None
    assert gc._core.nx_adjacency(Z._adj, "weight") is not None
    for name in ("bool", "numpy", "reversed"):
        assert gc._core.nx_adjacency(variants[name]._adj, "weight") is None, name
    got = {k: gc._as_graph(H) for k, H in variants.items()}
    np.testing.assert_array_equal(got["lower"].csr()[2], [1.0, 4.0, 1.0])
    monkeypatch.setattr(gc._core, "nx_adjacency", lambda adj, weight: None)
    for k, H in variants.items():
        ref = gc._as_graph(H)
        np.testing.assert_array_equal(got[k].edges, ref.edges, err_msg=k)
        np.testing.assert_array_equal(got[k].weights, ref.weights, err_msg=k)
        for a, b in zip(got[k].csr(), ref.csr()):
            np.testing.assert_array_equal(a, b, err_msg=k)
    assert got["plain"].weights[0] == float(2**60 + 1)
    np.testing.assert_array_equal(got["bare"].weights, 1.0)


def test_nx_adjacency_runs_no_python_code():
    # a hash lookup of "weight" would call the __eq__ of a key hashing like it: Python code that
    # could free the objects the reader holds as borrowed references (here it replaces every
    # other edge dict; CPython's dict free list hands their memory to the new dicts). Edge dicts
    # with a key other than an exact str go to the Python path, which gives the same graph.
    adj = {u: {} for u in range(4)}
    ran = []

    class Replaces:
        def __hash__(self):
            return hash("weight")

        def __eq__(self, other):
            if not ran:
                ran.append(True)
                for u in adj:
                    for v in list(adj[u]):
                        if {u, v} != {0, 1}:
                            adj[u][v] = {"weight": 1000.0 + u + v}
            return False

    for u, v in [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]:
        adj[u][v] = {"weight": u + v + 0.5}
        adj[v][u] = {"weight": u + v + 0.5}
    assert gc._core.nx_adjacency(adj, "weight") is not None
    for key in (Replaces(), 7, ("weight",)):
        adj[0][1] = {key: 1}
        assert gc._core.nx_adjacency(adj, "weight") is None
    assert not ran
    adj[0][1] = {"other": 2.0, "weight": 4.0}  # str keys: found wherever "weight" sits
    deg, cols, w, any_data = gc._core.nx_adjacency(adj, "weight")
    assert any_data
    np.testing.assert_array_equal(deg, [3, 2, 3, 2])
    np.testing.assert_array_equal(cols, [1, 2, 3, 0, 2, 0, 1, 3, 0, 2])
    upper = cols > np.repeat(np.arange(4), deg)
    np.testing.assert_array_equal(w[upper], [4.0, 2.5, 3.5, 3.5, 5.5])
    assert np.isnan(w[~upper]).all()

    class Str(str):
        pass

    assert gc._core.nx_adjacency(adj, Str("weight")) is None


def test_disconnected_isolated_and_zero_weight():
    G = nx.disjoint_union(nx.karate_club_graph(), nx.cycle_graph(7))
    G.add_node("isolated")
    orc = geoml.OllivierRicci().fit(G)
    H = grc_curvature(nx.Graph(G.subgraph(range(34))))
    np.testing.assert_allclose(
        orc.curvature_[:78],
        edge_values(H, geoml.OllivierRicci().fit(nx.karate_club_graph())),
        atol=1e-6,
    )
    np.testing.assert_allclose(orc.curvature_[78:], 0, atol=1e-12)
    assert orc.node_curvature_[-1] == 0 and len(orc.node_curvature_) == 42
    assert "ricciCurvature" not in orc.to_networkx(G).nodes["isolated"]
    # an edge of length 0: curvature 0 (GraphRicciCurvature's convention), others finite
    Z = weighted(nx.karate_club_graph(), 3)
    Z[0][1]["weight"] = 0.0
    orc = geoml.OllivierRicci().fit(Z)
    k = dict(zip(map(tuple, orc.edges_.tolist()), orc.curvature_))
    assert k[(0, 1)] == 0 and np.isfinite(orc.curvature_).all()
    np.testing.assert_allclose(orc.curvature_, edge_values(grc_curvature(Z), orc), atol=1e-6)


def test_bad_input():
    # directed graphs: Ollivier-Ricci curvature only (GraphRicciCurvature's flow needs
    # nx.is_connected, undefined for them)
    for cls in (geoml.FormanRicci, geoml.RicciFlow, geoml.RicciCommunities):
        with pytest.raises(ValueError, match="G is directed"):
            cls().fit(nx.DiGraph([(0, 1), (1, 2)]))
    with pytest.raises(ValueError, match="undirected graphs only"):
        geoml.OllivierRicci(method="lower_bound").fit(nx.DiGraph([(0, 1), (1, 2)]))
    with pytest.raises(ValueError, match="multigraph"):
        geoml.OllivierRicci().fit(nx.MultiGraph([(0, 1), (0, 1)]))
    with pytest.raises(ValueError, match=r"multigraph.*nx\.DiGraph"):
        geoml.OllivierRicci().fit(nx.MultiDiGraph([(0, 1), (0, 1)]))
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.OllivierRicci().fit(sp.csr_matrix(np.array([[0, 1.0], [0, 0]])))
    with pytest.raises(ValueError, match="square"):
        geoml.OllivierRicci().fit(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="non-negative"):
        geoml.OllivierRicci().fit(np.array([[0, 1, -1.0]]))
    with pytest.raises(ValueError, match="NaN"):
        geoml.OllivierRicci().fit(np.array([[0, 1, np.nan]]))
    with pytest.raises(ValueError, match="different weights"):
        geoml.OllivierRicci().fit(np.array([[0, 1, 1.0], [1, 0, 2.0]]))
    with pytest.raises(TypeError, match="edge list"):
        geoml.OllivierRicci().fit("karate")
    with pytest.raises(ValueError, match="alpha"):
        geoml.OllivierRicci(alpha=1.5).fit(nx.path_graph(3))
    with pytest.raises(ValueError, match="method"):
        geoml.OllivierRicci(method="ATD").fit(nx.path_graph(3))
    with pytest.raises(ValueError, match="eps"):
        geoml.OllivierRicci(method="sinkhorn", eps=0).fit(nx.path_graph(3))


def test_non_convergence_warns():
    with pytest.warns(RuntimeWarning, match="did not converge"):
        orc = geoml.OllivierRicci(method="sinkhorn", eps=1e-3, max_iter=2).fit(
            nx.karate_club_graph()
        )
    assert not orc.converged_.all()


@pytest.mark.parametrize("method", ["augmented", "1d"])
def test_forman_matches_graphriccicurvature(method):
    for G in (
        nx.karate_club_graph(),
        weighted(nx.barabasi_albert_graph(60, 3, seed=0), 1),
        nx.les_miserables_graph(),
    ):
        f = frc_mod.FormanRicci(G, method=method)
        f.compute_ricci_curvature()
        est = geoml.FormanRicci(method=method).fit(G)
        np.testing.assert_allclose(
            est.curvature_, edge_values(f.G, est, "formanCurvature"), atol=1e-9
        )
        out = est.to_networkx(G)
        for v in G.nodes():
            assert out.nodes[v]["formanCurvature"] == pytest.approx(
                f.G.nodes[v]["formanCurvature"], abs=1e-9
            )
    with pytest.raises(ValueError, match="method"):
        geoml.FormanRicci(method="balanced").fit(nx.path_graph(3))


def test_ricci_flow_matches_graphriccicurvature():
    G = nx.karate_club_graph()
    for u, v in G.edges():
        G[u][v]["weight"] = 1.0
    o = grc_mod.OllivierRicci(G, method="OTD", proc=1, verbose="ERROR")
    o.compute_ricci_flow(iterations=4)
    flow = geoml.RicciFlow(n_iter=4, delta=0).fit(G)
    np.testing.assert_allclose(flow.weights_, edge_values(o.G, flow, "weight"), atol=1e-6)
    np.testing.assert_allclose(flow.curvature_, edge_values(o.G, flow), atol=1e-6)
    np.testing.assert_allclose(
        flow.original_curvature_, edge_values(o.G, flow, "original_RC"), atol=1e-6
    )
    assert flow.curvature_history_.shape == (5, 78) and flow.n_iter_ == 4
    H = flow.to_networkx(G)
    assert H[0][1]["weight"] == pytest.approx(o.G[0][1]["weight"], abs=1e-6)


def test_ricci_flow_keeps_every_component_and_stops_on_delta(capsys):
    G = nx.disjoint_union(nx.karate_club_graph(), nx.complete_graph(5))
    flow = geoml.RicciFlow(n_iter=3, verbose=True).fit(G)
    assert len(flow.weights_) == 78 + 10
    assert flow.weights_.sum() == pytest.approx(88)
    assert "iteration 1/3" in capsys.readouterr().err
    flat = geoml.RicciFlow(n_iter=50, delta=1e-3).fit(nx.complete_graph(6))
    assert flat.converged_ and flat.n_iter_ == 1  # constant curvature: spread 0 at once
    calls = []

    def surgery(edges, w, k):
        calls.append(len(w))
        return w

    geoml.RicciFlow(n_iter=4, delta=0, surgery=(surgery, 2)).fit(nx.karate_club_graph())
    assert calls == [78, 78]
    with pytest.raises(ValueError, match="weighted"):
        geoml.RicciFlow(method="lower_bound").fit(nx.karate_club_graph())


def test_communities_at_least_as_good_as_graphriccicurvature():
    ari = pytest.importorskip("sklearn.metrics").adjusted_rand_score
    G = nx.stochastic_block_model(
        [30, 30, 30], [[0.35, 0.02, 0.02], [0.02, 0.35, 0.02], [0.02, 0.02, 0.35]], seed=3
    )
    truth = np.repeat([0, 1, 2], 30)
    o = grc_mod.OllivierRicci(G, method="OTD", proc=1, verbose="ERROR")
    o.compute_ricci_flow(iterations=20)
    _, cc = o.ricci_community()
    theirs = ari(truth, [cc[v] for v in G.nodes()])
    rc = geoml.RicciCommunities(n_iter=20).fit(G)
    assert ari(truth, rc.labels_) >= theirs - 1e-12
    assert ari(truth, rc.labels_) == 1.0
    K = nx.karate_club_graph()  # the classic, unweighted club
    nx.set_edge_attributes(K, 1.0, "weight")
    club = [K.nodes[v]["club"] == "Mr. Hi" for v in K.nodes()]
    o = grc_mod.OllivierRicci(K, method="OTD", proc=1, verbose="ERROR")
    o.compute_ricci_flow(iterations=20)
    _, cc = o.ricci_community()
    labels = geoml.ricci_communities(K, n_iter=20)
    assert ari(club, labels) >= ari(club, [cc[v] for v in K.nodes()]) - 1e-12
    assert gc._modularity(34, geoml.FormanRicci().fit(K).edges_, np.ones(78), labels) > 0.3


# ---- unweighted graphs: the hop-count fast path (integer primal-dual OT, hub bitmasks) ----


def _hub_graph(seed):
    """36 hubs of degree > 32 (more than the 32 that get bitmasks), joined to each other
    sparsely and to random leaves that also link among themselves: hub-hub, hub-leaf and
    leaf-leaf edges, 2-hop paths through hubs and through non-hubs."""
    rng = np.random.default_rng(seed)
    G = nx.Graph()
    n_hub, n_leaf = 36, 250
    for h in range(n_hub):
        for v in rng.choice(n_leaf, size=int(rng.integers(33, 42)), replace=False):
            G.add_edge(h, n_hub + int(v))
        for h2 in rng.choice(n_hub, size=2, replace=False):
            if h2 != h:
                G.add_edge(h, int(h2))
    for _ in range(200):
        u, v = rng.integers(n_hub, n_hub + n_leaf, size=2)
        if u != v:
            G.add_edge(int(u), int(v))
    return G


def _reference_orc(G, alpha, topk=None):
    """Independent Ollivier-Ricci of an unweighted graph: hop distances from SciPy's BFS,
    GraphRicciCurvature's measures, POT's exact emd2 (the ties of nbr_topk are not exercised:
    all neighbours have the same weight, so topk is left out here)."""
    ot = pytest.importorskip("ot")
    from scipy.sparse.csgraph import shortest_path

    nodes = list(G.nodes())
    pos = {v: k for k, v in enumerate(nodes)}
    A = nx.to_scipy_sparse_array(G, nodelist=nodes, weight=None, format="csr")
    A = sp.csr_matrix(
        (A.data.astype(float), A.indices.astype(np.int32), A.indptr.astype(np.int32)), shape=A.shape
    )
    D = shortest_path(A, unweighted=True)
    out = {}
    for u, v in G.edges():
        x, y = pos[u], pos[v]
        sx = [pos[w] for w in G[u]] + [x]
        sy = [pos[w] for w in G[v]] + [y]
        a = np.r_[np.full(len(sx) - 1, (1 - alpha) / (len(sx) - 1)), alpha]
        b = np.r_[np.full(len(sy) - 1, (1 - alpha) / (len(sy) - 1)), alpha]
        out[(x, y)] = out[(y, x)] = 1 - ot.emd2(a, b, D[np.ix_(sx, sy)])
    return out


@pytest.mark.parametrize(
    "name", ["hubs", "ba_big_hubs", "er", "star_pair", "grid", "powerlaw_cluster", "dense_er"]
)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9])
def test_unweighted_fast_path_matches_exact_reference(name, alpha):
    seed = int(alpha * 10)
    G = {
        "hubs": lambda: _hub_graph(seed),
        "ba_big_hubs": lambda: nx.barabasi_albert_graph(600, 2, seed=seed),
        "er": lambda: nx.gnp_random_graph(150, 0.06, seed=seed),
        # OT problems of every size around the solvers' thresholds (small_hop_ot up to
        # 64 x 64 / 256 entries, HopOt above, greedy with two bins on a side)
        "powerlaw_cluster": lambda: nx.powerlaw_cluster_graph(400, 3, 0.5, seed=seed),
        "dense_er": lambda: nx.gnp_random_graph(70, 0.45, seed=seed),
        # two hubs of degree 60 sharing 20 leaves, plus a ring through the rest
        "star_pair": lambda: nx.compose_all(
            [
                nx.star_graph(60),
                nx.relabel_nodes(nx.star_graph(60), lambda v: 100 + v if v > 20 or v == 0 else v),
                nx.cycle_graph(range(21, 61)),
                nx.Graph([(0, 100)]),
            ]
        ),
        "grid": lambda: nx.grid_2d_graph(9, 7),
    }[name]()
    orc = geoml.OllivierRicci(alpha=alpha).fit(G)
    ref = _reference_orc(G, alpha)
    want = np.array([ref[(i, j)] for i, j in orc.edges_])
    np.testing.assert_allclose(orc.curvature_, want, atol=1e-12, rtol=0)
    assert orc.converged_.all()


def test_unweighted_fast_path_scale_and_graphriccicurvature():
    # equal weights w != 1: the same curvature as hop counts (uniform measures, d scales by w)
    G = _hub_graph(3)
    hop = geoml.OllivierRicci(alpha=0.5).fit(G).curvature_
    H = G.copy()
    nx.set_edge_attributes(H, 2.5, "weight")
    np.testing.assert_allclose(geoml.OllivierRicci(alpha=0.5).fit(H).curvature_, hop, atol=1e-12)
    # and GraphRicciCurvature on a hub graph, with a truncated neighbourhood too
    K = nx.barabasi_albert_graph(300, 2, seed=5)
    for kw in ({"alpha": 0.5}, {"alpha": 0.2, "nbr_topk": 40}):
        orc = geoml.OllivierRicci(**kw).fit(K)
        np.testing.assert_allclose(
            orc.curvature_, edge_values(grc_curvature(K, **kw), orc), atol=1e-6, rtol=0
        )


@pytest.mark.parametrize(
    "cls", [geoml.OllivierRicci, geoml.FormanRicci, geoml.RicciFlow, geoml.RicciCommunities]
)
def test_estimators_refuse_a_graph_without_nodes(cls):
    for G in (np.zeros((0, 2)), np.zeros((0, 3)), sp.csr_matrix((0, 0))):
        with pytest.raises(ValueError, match="no nodes"):
            cls().fit(G)
    # an edgeless graph with nodes is fine: no edge, so no curvature (and singleton communities)
    est = cls().fit(sp.csr_matrix((4, 4)))
    if isinstance(est, geoml.RicciCommunities):
        assert sorted(est.labels_.tolist()) == [0, 1, 2, 3]
    else:
        assert len(est.edges_) == 0


# ---- directed graphs (GraphRicciCurvature's semantics) ----


def grc(G, method="OTD", **kw):
    return grc_mod.OllivierRicci(G, method=method, proc=1, verbose="ERROR", **kw)


def random_digraph(n, p, seed, weighted_arcs):
    G = nx.gnp_random_graph(n, p, seed=seed, directed=True)
    rng = np.random.default_rng(seed)
    for u, v in G.edges():
        G[u][v]["weight"] = float(rng.uniform(0.2, 3.0)) if weighted_arcs else 1.0
    return G


def test_directed_published_values():
    # GraphRicciCurvature's own test: in-neighbours of the source, out-neighbours of the target
    G = nx.DiGraph([(0, 1), (1, 2), (2, 3), (1, 3), (3, 1)])
    expected = {(0, 1): -0.5, (1, 2): 0.0, (2, 3): 0.5, (1, 3): 0.5, (3, 1): 0.75}
    orc = geoml.OllivierRicci().fit(G)
    got = {(orc.nodes_[i], orc.nodes_[j]): k for (i, j), k in zip(orc.edges_, orc.curvature_)}
    assert got.keys() == expected.keys()
    for e, k in expected.items():
        assert got[e] == pytest.approx(k, abs=1e-9)
    H = grc(G)
    H.compute_ricci_curvature()
    for (u, v), k in expected.items():
        assert H.G[u][v]["ricciCurvature"] == pytest.approx(k, abs=1e-6)
    out = orc.to_networkx()
    assert out.is_directed() and out[3][1]["ricciCurvature"] == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted_arcs", [False, True])
def test_directed_matches_graphriccicurvature(seed, weighted_arcs):
    G = random_digraph(22, 0.15, seed, weighted_arcs)
    G.add_edge(5, 5)  # a self-loop: dropped by both
    for kw in ({"alpha": 0.0}, {"alpha": 0.5}, {"alpha": 0.8, "exp_power": 1, "base": 2.0}):
        o = grc(G, **kw)
        o.compute_ricci_curvature()
        orc = geoml.OllivierRicci(**kw).fit(G)
        assert len(orc.edges_) == G.number_of_edges() - 1
        np.testing.assert_allclose(orc.curvature_, edge_values(o.G, orc), atol=1e-6, rtol=0)
        assert orc.converged_.all()
    # nbr_topk keeps the heaviest in-/out-neighbours, as GraphRicciCurvature's heaps do
    o = grc(G, alpha=0.3, nbr_topk=2)
    o.compute_ricci_curvature()
    orc = geoml.OllivierRicci(alpha=0.3, nbr_topk=2).fit(G)
    np.testing.assert_allclose(orc.curvature_, edge_values(o.G, orc), atol=1e-6, rtol=0)


@pytest.mark.parametrize("n", [5, 8])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_directed_cycle_closed_form(n, alpha):
    # arc x -> x+1: m_x = alpha at x, 1 - alpha at x-1; m_y = alpha at x+1, 1 - alpha at x+2;
    # every path runs forward, so any plan costs alpha * 1 + (1 - alpha) * 3
    G = nx.DiGraph()
    nx.add_cycle(G, range(n), weight=1.7)
    orc = geoml.OllivierRicci(alpha=alpha).fit(G)
    np.testing.assert_allclose(orc.curvature_, 1 - (3 - 2 * alpha), atol=1e-12)
    np.testing.assert_allclose(orc.distances_, 1.7)


def test_directed_edge_cases():
    # a source without in-neighbours / a target without out-neighbours keeps all its mass;
    # a zero-length arc has curvature 0; two components; isolated nodes
    G = nx.DiGraph()
    G.add_nodes_from(range(9))
    G.add_weighted_edges_from(
        [(0, 1, 1.0), (1, 2, 0.0), (2, 3, 2.0), (3, 1, 1.0), (5, 6, 1.0), (6, 7, 0.5), (7, 5, 1)]
    )
    orc = geoml.OllivierRicci(alpha=0.4).fit(G)
    o = grc(G, alpha=0.4)
    o.compute_ricci_curvature()
    np.testing.assert_allclose(orc.curvature_, edge_values(o.G, orc), atol=1e-6)
    k = dict(zip(map(tuple, orc.edges_.tolist()), orc.curvature_))
    assert k[(1, 2)] == 0
    D = random_digraph(40, 0.1, 3, True)
    for method in ("exact", "sinkhorn", "atd"):
        one = geoml.OllivierRicci(method=method, n_jobs=1).fit(D).curvature_
        two = geoml.OllivierRicci(method=method, n_jobs=2).fit(D).curvature_
        np.testing.assert_array_equal(one, two)


# ---- the rest of GraphRicciCurvature's surface, and the drop-in class ----

compat = pytest.importorskip("geoml.curvature.compat")


def karate():
    K = nx.karate_club_graph()
    nx.set_edge_attributes(K, 1.0, "weight")
    return K


def assert_same_graph(ours, theirs, names=("ricciCurvature",), atol=1e-6):
    assert set(ours.nodes()) == set(theirs.nodes())
    assert set(map(frozenset, ours.edges())) == set(map(frozenset, theirs.edges()))
    for u, v in theirs.edges():
        for name in names:
            assert ours[u][v][name] == pytest.approx(theirs[u][v][name], abs=atol), (u, v, name)
    for v in theirs.nodes():
        assert ("ricciCurvature" in ours.nodes[v]) == ("ricciCurvature" in theirs.nodes[v])
        if "ricciCurvature" in theirs.nodes[v]:
            assert ours.nodes[v]["ricciCurvature"] == pytest.approx(
                theirs.nodes[v]["ricciCurvature"], abs=atol
            )


GRAPHS2 = {
    "karate": lambda: nx.karate_club_graph(),  # weighted (interaction counts)
    "ba_weighted": lambda: weighted(nx.barabasi_albert_graph(40, 2, seed=1), 1),
    "digraph": lambda: random_digraph(20, 0.15, 4, True),
    "digraph_unweighted": lambda: nx.gnp_random_graph(20, 0.15, seed=5, directed=True),
}


def sinkhorn_reference(G, alpha, max_iter):
    """GraphRicciCurvature's "Sinkhorn" curvature {(u, v): kappa} by POT's sinkhorn2 (eps 0.1)
    with max_iter iterations (GraphRicciCurvature: 1000), on scipy shortest paths."""
    ot = pytest.importorskip("ot")
    from scipy.sparse.csgraph import shortest_path

    nodes = list(G)
    pos = {v: k for k, v in enumerate(nodes)}
    A = sp.csr_matrix(nx.to_scipy_sparse_array(G, nodelist=nodes, weight="weight"))
    A.indices, A.indptr = A.indices.astype(np.int32), A.indptr.astype(np.int32)
    D = shortest_path(A, directed=G.is_directed())
    directed = G.is_directed()

    def measure(x, into):
        nb = list(G.predecessors(x) if into else G.successors(x)) if directed else list(G[x])
        if not nb:
            return [pos[x]], np.array([1.0])
        w = [
            G[u][x].get("weight", 1) if into and directed else G[x][u].get("weight", 1) for u in nb
        ]
        p = np.exp(-(np.array(w) ** 2))
        p = p / p.sum()
        return [pos[u] for u in nb] + [pos[x]], np.concatenate([(1 - alpha) * p, [alpha]])

    out = {}
    for x, y in G.edges():
        (sx, mx), (sy, my) = measure(x, True), measure(y, False)
        w1 = ot.sinkhorn2(mx, my, D[np.ix_(sx, sy)], 0.1, numItermax=max_iter, stopThr=1e-12)
        out[(x, y)] = 1 - float(w1) / D[pos[x], pos[y]]
    return out


# geoml.ot's Sinkhorn stalls at a marginal error ~1.6e-7 on the 2 x 2 problems of reciprocal
# arcs (nearly diagonal kernels; POT converges); since session 28 the Newton steps that follow
# a stalled Sinkhorn converge them, so no warning is expected (this suite's warnings are errors)
@pytest.mark.parametrize("name", sorted(GRAPHS2))
@pytest.mark.parametrize("method", ["OTD", "ATD", "Sinkhorn", "OTDSinkhornMix"])
def test_compat_curvature_matches_graphriccicurvature(name, method):
    G = GRAPHS2[name]()
    if method == "ATD" and G.is_directed():  # GraphRicciCurvature divides by 0 at sources
        G = G.subgraph(max(nx.strongly_connected_components(G), key=len)).copy()
    for alpha in (0.0, 0.5) if method != "Sinkhorn" else (0.5,):
        kw = {"alpha": alpha, "method": method}
        theirs = grc(G, **kw)
        ours = compat.OllivierRicci(G, proc=1, **kw)
        theirs.compute_ricci_curvature()
        assert ours.compute_ricci_curvature() is ours.G
        if method != "Sinkhorn":
            assert_same_graph(ours.G, theirs.G)
            continue
        # GraphRicciCurvature's POT call stops at 1000 iterations, short of convergence on
        # weighted graphs: it is POT at 1000 iterations, geoml the converged entropic value.
        # (On hop costs, plain Sinkhorn mixes too slowly for a converged reference: 2e5
        # iterations leave marginal errors of 7e-7, so the unweighted digraph is not compared.)
        if name in ("digraph_unweighted", "karate"):  # karate: slow in Python, see ba_weighted
            continue
        short, full = sinkhorn_reference(G, alpha, 1000), sinkhorn_reference(G, alpha, 2 * 10**4)
        for (u, v), k in full.items():
            assert theirs.G[u][v]["ricciCurvature"] == pytest.approx(short[(u, v)], abs=1e-7)
            assert ours.G[u][v]["ricciCurvature"] == pytest.approx(k, abs=1e-6)


def test_compat_edge_subset_exp_power_base_topk():
    G = weighted(nx.barabasi_albert_graph(40, 3, seed=2), 2)
    edges = [(v, u) for u, v in list(G.edges())[::5]]  # either orientation
    for kw in ({"exp_power": 1, "base": 2.0}, {"alpha": 0.2, "nbr_topk": 2, "exp_power": 0}):
        theirs = grc(G, method="OTD", **kw).compute_ricci_curvature_edges(edges)
        ours = compat.OllivierRicci(G, method="OTD", **kw).compute_ricci_curvature_edges(edges)
        assert list(ours) == list(theirs)
        np.testing.assert_allclose(list(ours.values()), list(theirs.values()), atol=1e-6)
    # an iterator (generator, zip) is read once: it gave {} (consumed by the lookup of its
    # nodes before the results were keyed by it; found by the audit)
    ours = compat.OllivierRicci(G, method="OTD").compute_ricci_curvature_edges(iter(edges))
    theirs = grc(G, method="OTD").compute_ricci_curvature_edges(iter(edges))
    assert list(ours) == list(theirs) == edges
    np.testing.assert_allclose(list(ours.values()), list(theirs.values()), atol=1e-6)
    assert compat.OllivierRicci(G).compute_ricci_curvature_edges(iter([])) == {}
    # empty list or None: every edge, keyed as G.edges()
    full = compat.OllivierRicci(G).compute_ricci_curvature_edges([])
    assert list(full) == list(G.edges())
    assert compat.OllivierRicci(G).compute_ricci_curvature_edges() == full
    D = random_digraph(20, 0.15, 6, True)
    arcs = list(D.edges())[::3]
    one_way = next((u, v) for u, v in D.edges() if not D.has_edge(v, u))
    theirs = grc(D).compute_ricci_curvature_edges(arcs)
    ours = compat.OllivierRicci(D, method="OTD").compute_ricci_curvature_edges(arcs)
    np.testing.assert_allclose(list(ours.values()), list(theirs.values()), atol=1e-6)
    with pytest.raises(ValueError, match="not an edge"):
        compat.OllivierRicci(G).compute_ricci_curvature_edges([(0, 0)])
    with pytest.raises(ValueError, match="not an edge"):
        compat.OllivierRicci(D).compute_ricci_curvature_edges([one_way, one_way[::-1]])


def test_compat_flow_with_surgery_matches_graphriccicurvature():
    def surgery(G, weight):  # cut the longest edges, as Ni et al. do between flow rounds
        cut = sorted(d[weight] for _, _, d in G.edges(data=True))[-3]
        G.remove_edges_from([(u, v) for u, v, d in G.edges(data=True) if d[weight] > cut])
        return G

    for G, kw in (
        (karate(), {"iterations": 4}),
        (nx.karate_club_graph(), {"iterations": 5, "surgery": (surgery, 2)}),
        (nx.disjoint_union(karate(), nx.path_graph(3)), {"iterations": 3, "step": 0.5}),
    ):
        theirs = grc(G)
        ours = compat.OllivierRicci(G, method="OTD")
        theirs.compute_ricci_flow(**kw)
        assert ours.compute_ricci_flow(**kw) is ours.G
        assert_same_graph(ours.G, theirs.G, ("weight", "ricciCurvature", "original_RC"))
        # a second call refines from original_RC, as GraphRicciCurvature does
        theirs.compute_ricci_flow(iterations=1)
        ours.compute_ricci_flow(iterations=1)
        assert_same_graph(ours.G, theirs.G, ("weight", "ricciCurvature", "original_RC"))
    with pytest.raises(nx.NetworkXNotImplemented):
        compat.OllivierRicci(nx.DiGraph([(0, 1), (1, 0)])).compute_ricci_flow()


def test_compat_communities_match_graphriccicurvature():
    for G, it in ((karate(), 10), (nx.karate_club_graph(), 12)):
        theirs = grc(G)
        theirs.compute_ricci_flow(iterations=it)
        ours = compat.OllivierRicci(G, method="OTD")
        ours.compute_ricci_flow(iterations=it)
        for kw in ({}, {"cutoff_step": 0.05, "drop_threshold": 0.02}):
            cc_t = theirs.ricci_community_all_possible_clusterings(**kw)
            cc_o = ours.ricci_community_all_possible_clusterings(**kw)
            assert len(cc_o) == len(cc_t) >= 1
            for (cut_o, lab_o), (cut_t, lab_t) in zip(cc_o, cc_t):
                assert cut_o == pytest.approx(cut_t, abs=1e-9)
                assert lab_o == lab_t
            cut, lab = ours.ricci_community(**kw)
            assert (cut, lab) == cc_o[-1]
    # no flow yet: the default flow runs first (as GraphRicciCurvature)
    cut, lab = compat.OllivierRicci(karate(), method="OTD").ricci_community()
    assert len(set(lab.values())) >= 2 and cut > 1


def test_compat_bad_input():
    with pytest.raises(TypeError, match="networkx"):
        compat.OllivierRicci(np.ones((3, 3)))
    with pytest.raises(ValueError, match="method"):
        compat.OllivierRicci(nx.path_graph(3), method="otd")
    with pytest.raises(ValueError, match="alpha"):
        compat.OllivierRicci(nx.path_graph(3), alpha=2).compute_ricci_curvature()
    with pytest.raises(ValueError, match="not in G"):
        compat.OllivierRicci(nx.path_graph(3)).compute_ricci_curvature_edges([(0, 7)])
    with pytest.raises(ValueError, match="No cutoff point found"):
        compat.OllivierRicci(nx.complete_graph(5)).ricci_community()
    # a multigraph: a clear error when constructed (an unweighted one failed in networkx's
    # AtlasView, "does not support item assignment", as in GraphRicciCurvature)
    for M in (nx.MultiGraph([(0, 1), (0, 1), (1, 2)]), nx.MultiDiGraph([(0, 1), (1, 0)])):
        with pytest.raises(ValueError, match="multigraph"):
            compat.OllivierRicci(M)
    # self-loops removed, weight 1 put on every edge when none has one (GraphRicciCurvature)
    G = nx.path_graph(3)
    G.add_edge(1, 1)
    o = compat.OllivierRicci(G)
    assert nx.number_of_selfloops(o.G) == 0 and o.G[0][1]["weight"] == 1.0
    assert nx.number_of_selfloops(G) == 1 and "weight" not in G[0][1]


@pytest.mark.parametrize("method", ["atd", "sinkhorn"])
def test_methods_on_the_estimator(method):
    G = weighted(nx.barabasi_albert_graph(30, 2, seed=3), 3)
    orc = geoml.OllivierRicci(alpha=0.3, method=method, tol=1e-9, max_iter=10**6).fit(G)
    if method == "atd":
        theirs = grc(G, method="ATD", alpha=0.3)
        theirs.compute_ricci_curvature()
        ref = edge_values(theirs.G, orc)
    else:  # the converged entropic value (GraphRicciCurvature stops POT at 1000 iterations)
        full = sinkhorn_reference(G, 0.3, 10**5)
        ref = [full[orc.nodes_[i], orc.nodes_[j]] for i, j in orc.edges_]
    np.testing.assert_allclose(orc.curvature_, ref, atol=1e-6)
    # ATD on a complete graph: alpha d + (1 - alpha) mean over the (n - 1)^2 pairs
    n, a = 6, 0.3
    atd = geoml.ollivier_ricci(nx.complete_graph(n), alpha=a, method="atd")
    mean = ((n - 1) ** 2 - (n - 2)) / (n - 1) ** 2  # all pairs at distance 1 but u = v
    np.testing.assert_allclose(atd, 1 - (a + (1 - a) * mean), atol=1e-12)


def test_small_square_array_that_looks_like_an_adjacency_warns():
    # a 3 x 3 (or 2 x 2) array is read as an edge list; a symmetric one with a zero
    # diagonal is most likely an adjacency matrix: warned, and the sparse form gives the
    # triangle's three edges (a complete graph of 3 nodes: curvature as K_3's)
    tri = np.ones((3, 3)) - np.eye(3)
    with pytest.warns(UserWarning, match="looks like an adjacency"):
        gc.ollivier_ricci(tri)
    with pytest.warns(UserWarning, match="looks like an adjacency"):
        gc.ollivier_ricci(np.array([[0.0, 2.0], [2.0, 0.0]]))
    kappa = gc.ollivier_ricci(sp.csr_matrix(tri))
    assert kappa.shape == (3,)
    nx = pytest.importorskip("networkx")
    np.testing.assert_allclose(kappa, gc.ollivier_ricci(nx.complete_graph(3)), atol=1e-14)
    # an ordinary weighted edge list of three edges does not warn
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gc.ollivier_ricci(np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 1.5], [0.0, 2.0, 1.0]]))
        # nor the one 2 x 2 array both readings agree on (the edge 0-1, weight 1)
        gc.ollivier_ricci(np.array([[0.0, 1.0], [1.0, 0.0]]))


def test_networkx_weight_types():
    """A networkx weight that is not a real number (the string "1.5", None, a complex number,
    a list) is a TypeError naming the edge: it was read as 1.5, as NaN ("NaN or infinity") or
    failed in float(). The native API takes int, float, bool, Fraction and NumPy real scalars;
    the compat class copies GraphRicciCurvature 0.6.1 (a TypeError for each refused value,
    and Decimal and 0-d arrays accepted, as math.exp takes them), on the same values."""
    import decimal
    import fractions
    import warnings

    accepted = [
        1.5,
        2,
        True,
        np.float32(1.5),
        np.int64(2),
        np.bool_(True),
        fractions.Fraction(3, 2),
    ]
    grc_only = [decimal.Decimal("1.5"), np.array(1.5)]
    refused = ["1.5", b"1", None, 1 + 0j, [1.5]]
    for relabel in (False, True):  # the C++ reader of a plain adjacency, and the Python one
        for x in accepted + grc_only + refused:
            G = nx.cycle_graph(6)
            nx.set_edge_attributes(G, 1.0, "weight")
            G[2][3]["weight"] = x
            name = (lambda v: f"n{v}") if relabel else (lambda v: v)
            G = nx.relabel_nodes(G, name)
            edge = rf"edge \({name(2)!r}, {name(3)!r}\)"
            ok = any(x is y for y in accepted)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GraphRicciCurvature's own
                try:
                    ref = grc_mod.OllivierRicci(G, method="OTD", proc=1).compute_ricci_curvature()
                except TypeError:
                    ref = None
            assert (ref is None) == any(x is y for y in refused), repr(x)
            if ref is None:
                with pytest.raises(TypeError, match=edge + ".*GraphRicciCurvature"):
                    compat.OllivierRicci(G, method="OTD").compute_ricci_curvature()
            else:
                ours = compat.OllivierRicci(G, method="OTD").compute_ricci_curvature()
                assert_same_graph(ours, ref)
            if ok:
                kappa = gc.ollivier_ricci(G)
                G[name(2)][name(3)]["weight"] = float(x)
                np.testing.assert_array_equal(kappa, gc.ollivier_ricci(G))
            else:
                for call in (gc.ollivier_ricci, lambda H: geoml.OllivierRicci().fit(H)):
                    with pytest.raises(TypeError, match=edge + ".*NumPy real scalars"):
                        call(G)
    D = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
    nx.set_edge_attributes(D, 1.0, "weight")
    D[1][2]["weight"] = "2"
    with pytest.raises(TypeError, match=r"edge \(1, 2\) has weight='2' of type str"):
        compat.OllivierRicci(D).compute_ricci_curvature()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_sparse_adjacency_nan_is_named(bad):
    """A NaN/inf weight in a sparse adjacency is reported as such, as for a dense one (it
    was "the sparse adjacency is not symmetric": NaN != NaN failed the symmetry test)."""
    M = np.ones((4, 4)) - np.eye(4)
    M[0, 2] = M[2, 0] = 2.0
    A = sp.csr_matrix(M)
    A.data[A.data == 2.0] = bad
    for G in (A, A.toarray()):
        with pytest.raises(ValueError, match="contains NaN or infinity"):
            geoml.OllivierRicci().fit(G)
        with pytest.raises(ValueError, match="contains NaN or infinity"):
            geoml.forman_ricci(G)


# ---- session 28: the symmetric CSR in one C++ pass, and Sinkhorn's Newton fallback ----


def _graph_bytes(g):
    """Every array of a _Graph (edges, weights, symmetric CSR) as bytes: -0.0 != 0.0 here."""
    arrays = (g.edges, g.weights, *g.csr())
    return [(a.dtype.str, a.shape, a.tobytes()) for a in arrays]


def _sparse_cases():
    rng = np.random.default_rng(4)
    knn = geoml.knn_graph(rng.normal(size=(300, 5)), 6, mode="distance").astype(np.float64)
    loops = sp.csr_matrix(knn + sp.diags(rng.uniform(0.5, 1, 300)))
    nan_diag = loops.copy()
    nan_diag.setdiag(np.nan)
    # explicit zeros of both signs (edges of length 0), the upper one -0.0 on one edge
    r = np.array([0, 1, 1, 2, 2, 3, 0, 3])
    c = np.array([1, 0, 2, 1, 3, 2, 3, 0])
    v = np.array([-0.0, 0.0, 1.0, 1.0, 0.0, -0.0, 2.0, 2.0])
    zeros = sp.csr_matrix((v, (r, c)), shape=(5, 5))
    B = sp.random(40, 40, density=0.2, random_state=2, format="csr")
    ints = sp.csr_matrix((B + B.T) * 10).astype(np.int32)
    return {
        "knn": knn,
        "loops": loops,
        "nan_diag": nan_diag,
        "zeros": zeros,
        "float32": knn.astype(np.float32),
        "int32": ints,
        "bool": (ints > 5).astype(bool).tocsr(),
        "csr_array": sp.csr_array(knn),
        "int64_index": sp.csr_matrix((knn.data, knn.indices.astype(np.int64), knn.indptr)),
        "empty": sp.csr_matrix((3, 3)),
        "no_nodes": sp.csr_matrix((0, 0)),
    }


@pytest.mark.parametrize("name", sorted(_sparse_cases()))
def test_canonical_csr_fast_path_is_the_general_path_bit_for_bit(name):
    A = _sparse_cases()[name]
    assert A.format == "csr" and A.has_canonical_format
    fast, general = gc._as_graph(A), gc._as_graph(A.tocoo())  # COO: the general path
    assert _graph_bytes(fast) == _graph_bytes(general)
    if name == "zeros":  # the upper entry's -0.0 on both directions, as the general path
        assert np.signbit(fast.csr()[2]).sum() == 2
    if A.shape[0] and A.nnz:
        w = np.arange(len(fast.edges), dtype=np.float64) + 0.5  # Ricci flow's re-weighting
        assert fast.csr(w)[2].tobytes() == general.csr(w)[2].tobytes()


def test_canonical_csr_fast_path_refusals_match_general_path():
    M = np.zeros((4, 4))
    M[0, 1] = M[1, 0] = 1.0
    M[1, 2] = M[2, 1] = 2.0
    bad = {}
    V = M.copy()
    V[2, 1] = 2.5  # values differ
    bad["values"] = sp.csr_matrix(V)
    S = sp.lil_matrix(M)
    S[2, 3] = 1.0  # an entry without its twin
    bad["structure"] = sp.csr_matrix(S)
    Z = sp.csr_matrix(M)  # an explicit zero (an edge of length 0) without its twin
    Z = sp.csr_matrix((np.append(Z.data, 0.0), np.append(Z.indices, 3), [0, 1, 3, 5, 5]), (4, 4))
    bad["explicit_zero"] = Z
    for name, A in bad.items():
        assert A.has_canonical_format, name
        for G in (A, A.tocoo()):
            with pytest.raises(ValueError, match="not symmetric"):
                gc._as_graph(G)
    N = sp.csr_matrix(M)
    N.data[0] = np.nan  # off the diagonal: named, before the symmetry test
    for G in (N, N.tocoo()):
        with pytest.raises(ValueError, match="NaN or infinity"):
            gc._as_graph(G)
    neg = sp.csr_matrix(-M)
    for G in (neg, neg.tocoo()):
        with pytest.raises(ValueError, match="Negative"):
            gc._as_graph(G)


def _symmetric_csr_reference(indptr, cols, w):
    """NumPy: rows sorted, diagonal dropped, each (v, u), v > u, given w of (u, v)."""
    n = len(indptr) - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    keep = rows != cols
    rows, cols, w = rows[keep], cols[keep], w[keep]
    order = np.lexsort((cols, rows))
    rows, cols, w = rows[order], cols[order], w[order]
    up = rows < cols
    upper = {(int(r), int(c)): x for r, c, x in zip(rows[up], cols[up], w[up])}
    w = np.array([upper[(min(r, c), max(r, c))] for r, c in zip(rows.tolist(), cols.tolist())])
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=ptr[1:])
    return ptr, cols, w, np.column_stack([rows[up], cols[up]]), w[up]


@pytest.mark.parametrize("seed", range(4))
def test_symmetric_csr_against_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 60
    dense = rng.random((n, n)) < (0.1 if seed < 2 else 0.9)  # rows of > 32 entries: std::sort
    dense = dense | dense.T
    if seed % 2:
        np.fill_diagonal(dense, True)  # self-loops, dropped
    rows, cols = np.nonzero(dense)
    w = np.where(rows < cols, rng.uniform(0.1, 2, len(rows)), np.nan)  # lower entries unread
    split = np.split(np.arange(len(rows)), np.cumsum(dense.sum(1))[:-1])
    perm = np.concatenate([p[rng.permutation(len(p))] for p in split])
    cols, w = cols[perm], w[perm]  # each row shuffled
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(dense.sum(1), out=indptr[1:])
    got = gc._core.symmetric_csr(indptr, cols, w)
    ref = _symmetric_csr_reference(indptr, cols, w)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    # not symmetric: one entry (u, v) removed (its twin stays), or a row holding v twice
    u = int(np.flatnonzero(np.diff(indptr) > 1)[0])
    drop = np.ones(len(cols), bool)
    drop[indptr[u]] = False
    ptr2 = indptr.copy()
    ptr2[u + 1 :] -= 1
    if cols[indptr[u]] != u:
        assert gc._core.symmetric_csr(ptr2, cols[drop], w[drop]) is None
    dup = cols.copy()
    dup[indptr[u] + 1] = dup[indptr[u]]
    assert gc._core.symmetric_csr(indptr, dup, w) is None
    with pytest.raises(ValueError, match="out of range"):
        gc._core.symmetric_csr(indptr, np.full_like(cols, n), w)


def _entropic_ot_reference(a, b, C, eps):
    """<P, C> of the entropic plan (NumPy float64, independent of geoml.ot): 200 log-domain
    Sinkhorn sweeps, then Newton's method on the dual (g fixed to 0 on the last column) with
    backtracking, to a marginal error at rounding level."""
    m, n = C.shape

    def plan(f, g):
        return np.exp((f[:, None] + np.append(g, 0.0)[None, :] - C) / eps)

    def dual(f, g):
        return a @ f + b[:-1] @ g - eps * plan(f, g).sum()

    f, g = np.zeros(m), np.zeros(n)
    for _ in range(200):
        f = eps * (np.log(a) - np.log(np.exp((g[None, :] - C) / eps).sum(1)))
        g = eps * (np.log(b) - np.log(np.exp((f[:, None] - C) / eps).sum(0)))
    f, g = f + g[-1], g[:-1] - g[-1]
    for _ in range(100):
        P = plan(f, g)
        r, c = a - P.sum(1), (b - P.sum(0))[:-1]
        if np.abs(r).sum() + np.abs(c).sum() < 1e-15:
            break
        H = np.block([[np.diag(P.sum(1)), P[:, :-1]], [P[:, :-1].T, np.diag(P.sum(0)[:-1])]])
        step = np.linalg.solve(H / eps, np.concatenate([r, c]))
        t, base = 1.0, dual(f, g)
        while dual(f + t * step[:m], g + t * step[m:]) < base and t > 1e-12:
            t /= 2
        f, g = f + t * step[:m], g + t * step[m:]
    assert np.abs(plan(f, g).sum(1) - a).sum() < 1e-12
    return float((plan(f, g) * C).sum())


def test_compat_sinkhorn_converges_on_the_directed_test_graph():
    # GraphRicciCurvature's directed test graph: on the arc (3, 1) the entropic problem (eps
    # 0.1, costs [[1, 1, 0], [0, 1, 2], [2, 0, 1]], masses (1/4, 1/4, 1/2)) has a kernel that
    # nearly splits into blocks, and Sinkhorn needs millions of iterations for 1e-9 (POT's,
    # which GraphRicciCurvature runs for 1000, stops at 6.6e-8 and warns): it was a
    # RuntimeWarning from geoml (an error under this suite's filterwarnings), and the
    # Newton fallback now converges it
    G = nx.DiGraph([(0, 1), (1, 2), (2, 3), (1, 3), (3, 1)])
    ours = compat.OllivierRicci(G, method="Sinkhorn", proc=1).compute_ricci_curvature()
    theirs = grc(G, method="Sinkhorn")
    theirs.compute_ricci_curvature()  # (POT warns on (3, 1), in GraphRicciCurvature's workers)
    # every arc against the converged entropic value (d = 1 on each; measures: the source's
    # in-neighbours then itself, the target's out-neighbours then itself, sorted by node);
    # GraphRicciCurvature's 1000 POT iterations are 2e-4 short of it on (2, 3)
    half, quarter = np.array([0.5, 0.5]), np.array([0.25, 0.25, 0.5])
    problems = {  # arc: (a, b, C)
        (0, 1): (np.array([1.0]), quarter, np.array([[2.0, 2.0, 1.0]])),
        (1, 2): (quarter, half, np.array([[2.0, 2.0], [0.0, 2.0], [1.0, 1.0]])),
        (2, 3): (half, half, np.array([[0.0, 1.0], [2.0, 1.0]])),
        (1, 3): (quarter, half, np.array([[1.0, 2.0], [1.0, 0.0], [0.0, 1.0]])),
        (3, 1): (quarter, quarter, np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])),
    }
    ref = {arc: 1.0 - _entropic_ot_reference(a, b, C, 0.1) for arc, (a, b, C) in problems.items()}
    for (u, v), k in ref.items():
        assert ours[u][v]["ricciCurvature"] == pytest.approx(k, abs=1e-9), (u, v)
        assert theirs.G[u][v]["ricciCurvature"] == pytest.approx(k, abs=3e-4), (u, v)
    assert ours[3][1]["ricciCurvature"] == pytest.approx(ref[3, 1], abs=1e-12)
    est = geoml.OllivierRicci(method="sinkhorn", eps=0.1, tol=1e-9, max_iter=10**6).fit(G)
    assert est.converged_.all()
    k31 = est.curvature_[[tuple(e) for e in est.edges_.tolist()].index((3, 1))]
    assert k31 == pytest.approx(ref[3, 1], abs=1e-12)


def test_compat_sinkhorn_is_the_converged_value_on_an_unweighted_grid():
    """The compat notes' claim (session 32: they said GraphRicciCurvature's "Sinkhorn" falls
    short only on weighted graphs and on its directed test arc): on the unweighted 5 x 5 grid,
    POT's 1000 iterations stop short on 20 of the 40 edges (1e-4 off), geoml's curvature is
    the converged entropic value on every edge."""
    G = nx.Graph(nx.grid_2d_graph(5, 5))
    alpha = 0.5
    ours = compat.OllivierRicci(G, method="Sinkhorn", alpha=alpha, proc=1)
    kappa = ours.compute_ricci_curvature_edges()
    dist = dict(nx.all_pairs_shortest_path_length(G))

    def measure(x):
        nbrs = list(G.neighbors(x))
        return np.append(np.full(len(nbrs), (1 - alpha) / len(nbrs)), alpha), nbrs + [x]

    ref = {}
    for u, v in G.edges():
        (a, su), (b, sv) = measure(u), measure(v)
        C = np.array([[dist[p][q] for q in sv] for p in su], dtype=float)
        ref[u, v] = 1.0 - _entropic_ot_reference(a, b, C, 0.1)
        assert kappa[u, v] == pytest.approx(ref[u, v], abs=1e-8), (u, v)
    theirs = grc(G, method="Sinkhorn", alpha=alpha).compute_ricci_curvature_edges()
    off = np.array([abs(theirs[e] - ref[e]) for e in ref])
    assert off.max() < 1e-3 and (off > 1e-5).sum() >= 10  # POT's unconverged iterates


def test_ricci_flow_refuses_negative_lengths_and_bad_surgery():
    """``RicciFlow`` with ``step * kappa > 1`` on some edge made that length negative: the
    kernel's Dijkstra failed with "RuntimeError: ollivier_ricci: target outside the distance
    row" (karate, step 1.5), or, every length negative (K6, step 2), the flow returned
    negative lengths with curvature 0 everywhere, silently; the compat class already refused
    it. A surgery period of 0 was a ZeroDivisionError, -1 and 1.5 were accepted."""
    for G, step in ((nx.karate_club_graph(), 1.5), (nx.complete_graph(6), 2.0)):
        with pytest.raises(ValueError, match=r"edge lengths negative .*lower step"):
            geoml.RicciFlow(n_iter=3, step=step).fit(G)
    with pytest.raises(ValueError, match="negative or not finite"):
        geoml.RicciFlow(n_iter=3, step=np.inf).fit(nx.karate_club_graph())
    ok = geoml.RicciFlow(n_iter=3, step=1.5).fit(nx.complete_graph(6))  # kappa 0.6: fine
    assert (ok.weights_ > 0).all()

    def keep(edges, w, k):
        return w

    for every, err in ((0, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(err, match=r"surgery\[1\]"):
            geoml.RicciFlow(n_iter=3, surgery=(keep, every)).fit(nx.karate_club_graph())
    with pytest.raises(ValueError, match=r"\(callable, every\) pair"):
        geoml.RicciFlow(n_iter=3, surgery=keep).fit(nx.karate_club_graph())


def test_numeric_parameters_are_checked():
    """``OllivierRicci(tol=inf)`` and ``alpha="0.5"`` (read by ``float``) were accepted, as
    were ``RicciFlow(delta="x")`` (a TypeError in the comparison, after a whole curvature
    pass) and the compat flow's ``step=inf``: every real parameter of the curvature
    estimators is a real number (TypeError) in its range and finite (ValueError)."""
    G = nx.path_graph(4)
    ref = geoml.OllivierRicci().fit(G).curvature_
    bad_type = [("alpha", "0.5"), ("alpha", True), ("alpha", None), ("tol", "1e-6")]
    bad_type += [("eps", "0.1"), ("base", "2"), ("exp_power", 1j), ("exp_power", "2")]
    for name, value in bad_type:
        with pytest.raises(TypeError, match=f"^{name} must be a real number"):
            geoml.OllivierRicci(**{name: value}).fit(G)
    bad_value = [("tol", np.inf), ("tol", 0.0), ("eps", np.nan), ("eps", np.inf)]
    bad_value += [("alpha", -0.1), ("alpha", np.nan), ("base", np.inf), ("base", 0)]
    bad_value += [("exp_power", np.inf), ("exp_power", -np.inf)]
    for name, value in bad_value:
        with pytest.raises(ValueError, match=f"^{name}="):
            geoml.OllivierRicci(**{name: value}).fit(G)
    # NumPy scalars and 0-d arrays are numbers
    for alpha in (np.float32(0.5), np.array(0.5), np.int64(0)):
        got = geoml.OllivierRicci(alpha=alpha).fit(G).curvature_
        want = geoml.OllivierRicci(alpha=float(alpha)).fit(G).curvature_
        assert np.array_equal(got, want)
    assert np.array_equal(geoml.OllivierRicci(alpha=0.5).fit(G).curvature_, ref)
    for est, kw, exc in [
        (geoml.RicciFlow, {"step": "1"}, TypeError),
        (geoml.RicciFlow, {"step": -1.0}, ValueError),
        (geoml.RicciFlow, {"step": np.nan}, ValueError),
        (geoml.RicciFlow, {"delta": "x"}, TypeError),
        (geoml.RicciFlow, {"delta": -1.0}, ValueError),
        (geoml.RicciFlow, {"delta": np.inf}, ValueError),
        (geoml.RicciFlow, {"tol": np.inf}, ValueError),
        (geoml.RicciCommunities, {"cutoff_step": "0.1"}, TypeError),
        (geoml.RicciCommunities, {"cutoff_step": np.inf}, ValueError),
    ]:
        with pytest.raises(exc, match=f"^{next(iter(kw))}"):
            est(n_iter=1, **kw).fit(G)
    orc = compat.OllivierRicci(nx.karate_club_graph())
    for kw, exc in [
        ({"step": np.nan}, ValueError),
        ({"step": "1"}, TypeError),
        ({"delta": "x"}, TypeError),
        ({"iterations": 2.5}, TypeError),
        ({"iterations": -1}, ValueError),
    ]:
        with pytest.raises(exc, match=f"^{next(iter(kw))}"):
            orc.compute_ricci_flow(**kw)
    for kw, exc in [({"cutoff_step": "0.1"}, TypeError), ({"drop_threshold": -1}, ValueError)]:
        with pytest.raises(exc, match=f"^{next(iter(kw))}"):
            orc.ricci_community(**kw)
    # step=inf: RicciFlow's own check of the lengths, as before (see
    # test_ricci_flow_refuses_negative_lengths_and_bad_surgery); the compat flow's check
    # came after a NumPy "invalid value" warning (inf * 0)
    with pytest.raises(ValueError, match=r"^step=inf must be > 0 and finite"):
        orc.compute_ricci_flow(step=np.inf)


def test_ricci_communities_flow_params_n_iter():
    """``RicciCommunities(flow_params={"n_iter": 5})`` failed with Python's "got multiple
    values for keyword argument 'n_iter'"; an unknown key with "unexpected keyword
    argument". Both are a ValueError naming the parameter to use now."""
    G = nx.karate_club_graph()
    for key in ("n_iter", "iterations"):  # (iterations: GraphRicciCurvature's name)
        with pytest.raises(ValueError, match=r"RicciCommunities\(n_iter=\.\.\.\)"):
            geoml.RicciCommunities(flow_params={key: 5}).fit(G)
    with pytest.raises(ValueError, match=r"unknown RicciFlow parameter.* stepp"):
        geoml.RicciCommunities(flow_params={"stepp": 0.5}).fit(G)
    with pytest.raises(TypeError, match="flow_params must be a dict"):
        geoml.RicciCommunities(flow_params=[("alpha", 0.5)]).fit(G)
    rc = geoml.RicciCommunities(n_iter=3, flow_params={"alpha": 0.3, "n_jobs": 1}).fit(G)
    flow = geoml.RicciFlow(n_iter=3, alpha=0.3, n_jobs=1).fit(G)
    assert rc.flow_.n_iter_ == 3 and rc.flow_.get_params()["n_jobs"] == 1
    assert np.array_equal(rc.flow_.weights_, flow.weights_)


def test_to_networkx_writes_python_floats():
    """``OllivierRicci().to_networkx()`` without a graph wrote NumPy float64 weights (the
    curvature attributes were already Python floats)."""
    A = np.array([[0, 1, 2.0], [1, 2, 0.5], [2, 0, 1.5]])
    for est in (geoml.OllivierRicci(), geoml.FormanRicci(), geoml.RicciFlow(n_iter=1)):
        H = est.fit(A).to_networkx()
        for _, _, d in H.edges(data=True):
            assert all(type(v) is float for v in d.values()), d
        for _, d in H.nodes(data=True):
            assert all(type(v) is float for v in d.values()), d
    H = geoml.OllivierRicci().fit(A).to_networkx()
    assert sorted(w for *_, w in H.edges(data="weight")) == [0.5, 1.5, 2.0]


def test_ricci_communities_advises_flow_params_max_iter():
    """RicciCommunities has no max_iter (it is in flow_params): the OT solver's
    non-convergence warning of its flow said "raise max_iter"; RicciFlow says so (it has
    max_iter) without pointing at converged_ (the flow's own stopping rule there); OllivierRicci
    points at its per-edge converged_."""
    import networkx as nx

    G = nx.karate_club_graph()
    short = {"method": "sinkhorn", "max_iter": 1, "tol": 1e-12}
    cases = [
        (geoml.RicciCommunities(n_iter=2, flow_params=short), "; raise flow_params['max_iter']"),
        (geoml.RicciFlow(n_iter=2, **short), " edges; raise max_iter"),
        (geoml.OllivierRicci(**short), "(see converged_); raise max_iter"),
    ]
    for est, end in cases:
        with pytest.warns(RuntimeWarning) as got:
            est.fit(G)
        msgs = {str(w.message) for w in got}
        assert msgs and all(m.endswith(end) for m in msgs), (type(est).__name__, msgs)
    flow = cases[0][0].flow_
    assert "_advice" not in vars(flow)  # a refit of flow_ advises its own max_iter


def test_neighbour_weights_beyond_float64_are_refused():
    """The measures' neighbour weights ``base ** -(w ** exp_power)`` overflowed float64 with
    ``base < 1`` and long edges (``base=1e-300``: a length of 1.5; ``base=0.5`` with
    ``exp_power=2000``), or were ``0 ** negative`` (``exp_power=-1``, ``base=0.5``, a length
    of 0): the kernel's masses became NaN and the curvature came out wrong, silently (1 on
    such edges, exact and Sinkhorn disagreeing), where GraphRicciCurvature raises
    ``OverflowError`` / ``ZeroDivisionError``. A ``ValueError`` now, from every estimator
    (flow and compat class included); so is a node whose finite weights sum beyond float64
    (over its ``nbr_topk`` heaviest only: with ``nbr_topk=2`` the same graph runs, and equal
    lengths give the uniform measure, the curvature of ``base=e``). ATD does not use the
    weights; ordinary settings are unchanged."""
    from geoml.curvature.compat import OllivierRicci as Compat

    G = nx.Graph()
    G.add_weighted_edges_from([(0, 1, 0.0), (1, 2, 1.0), (2, 3, 2.0), (3, 0, 1.5), (0, 2, 1.0)])
    for kw in (
        {"base": 1e-300, "exp_power": 2},
        {"base": 0.5, "exp_power": 2000},
        {"base": 0.5, "exp_power": -1},
    ):
        for method in ("exact", "sinkhorn"):
            with pytest.raises(ValueError, match="beyond float64"):
                geoml.OllivierRicci(method=method, **kw).fit(G)
        with pytest.raises(ValueError, match="beyond float64"):
            geoml.OllivierRicci(**kw).fit(G.to_directed())
        with pytest.raises(ValueError, match="beyond float64"):
            geoml.RicciFlow(n_iter=2, **kw).fit(G)
        with pytest.raises(ValueError, match="beyond float64"):
            Compat(G, method="OTD", **kw).compute_ricci_curvature()
        geoml.OllivierRicci(method="atd", **kw).fit(G)  # (no weights in ATD)
        try:
            import geoml.dask as gd

            gd._import_dask()
        except ImportError:
            continue
        with pytest.raises(ValueError, match="beyond float64"):
            gd.ollivier_ricci(G, **kw)
        with pytest.raises(ValueError, match="beyond float64"):
            gd.ricci_flow(G, n_iter=2, **kw)
    # finite weights (6.3e307 each) whose sum at the hub of a 3-star overflows
    S = nx.star_graph(3)
    nx.set_edge_attributes(S, 1.026, "weight")
    with pytest.raises(ValueError, match="neighbour weights of node 0 sum beyond float64"):
        geoml.OllivierRicci(base=1e-300, exp_power=1).fit(S)
    k = geoml.OllivierRicci(base=1e-300, exp_power=1, nbr_topk=2).fit(S).curvature_
    ref = geoml.OllivierRicci(nbr_topk=2).fit(S).curvature_
    np.testing.assert_allclose(k, ref, rtol=0, atol=1e-15)
    # ordinary settings: the same values as before (GraphRicciCurvature's)
    ok = geoml.OllivierRicci(base=0.5, exp_power=2).fit(G).curvature_
    ref = grc_mod.OllivierRicci(G, base=0.5, exp_power=2, method="OTD", proc=1)
    ref = ref.compute_ricci_curvature_edges()
    want = [
        ref[(u, v)] if (u, v) in ref else ref[(v, u)]
        for u, v in geoml.OllivierRicci().fit(G).edges_.tolist()
    ]
    np.testing.assert_allclose(ok, want, atol=1e-12)


def test_lengths_whose_sums_overflow_are_refused_and_flows_normalise_them():
    """Lengths near float64's largest: the kernel's sums of them (3-edge paths, the network
    simplex's artificial potentials, ATD's mean over neighbour pairs) overflowed, and the
    curvature came out infinite with no warning (ATD) or off by ~2 with a "did not converge;
    raise max_iter" warning (exact) on the karate club's lengths times 1e307 / 8: a
    ``ValueError`` now, from every estimator. Lengths just below stay exact (scale invariance
    with ``exp_power=0``), also with equal lengths at 2^1022 (hop counts). A flow whose
    finite lengths sum beyond float64 normalised them to 0 (curvature 0 everywhere,
    silently): now the same flow as at unit scale."""
    from geoml.curvature.compat import OllivierRicci as Compat

    K = nx.karate_club_graph()  # lengths 1..7

    def scaled(G, s):
        H = G.copy()
        for u, v in H.edges():
            H[u][v]["weight"] = H[u][v].get("weight", 1.0) * s
        return H

    for method in ("exact", "atd", "sinkhorn"):
        for G in (K, K.to_directed()):
            with pytest.raises(ValueError, match="too long"):
                geoml.OllivierRicci(method=method, exp_power=0).fit(scaled(G, 1e307 / 8))
    with pytest.raises(ValueError, match="too long"):
        geoml.RicciFlow(n_iter=1, exp_power=0).fit(scaled(K, 1e307 / 8))
    with pytest.raises(ValueError, match="too long"):
        Compat(scaled(K, 1e307 / 8), method="ATD").compute_ricci_curvature()
    for method in ("exact", "atd"):
        ref = geoml.OllivierRicci(method=method, exp_power=0).fit(K).curvature_
        got = geoml.OllivierRicci(method=method, exp_power=0).fit(scaled(K, 1e305 / 8))
        np.testing.assert_allclose(got.curvature_, ref, rtol=0, atol=1e-13)
    U = nx.Graph(list(K.edges()))
    ref = geoml.OllivierRicci().fit(U).curvature_
    got = geoml.OllivierRicci().fit(scaled(U, 2.0**1022)).curvature_  # equal: hop counts
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)

    C = nx.cycle_graph(300)
    C.add_edges_from([(0, 150), (50, 200)])
    rng = np.random.default_rng(31)
    for u, v in C.edges():
        C[u][v]["weight"] = float(rng.uniform(1.0, 2.0))
    big = scaled(C, 1e306)  # each length finite and allowed; their sum is not
    f0 = geoml.RicciFlow(n_iter=3, exp_power=0).fit(C)
    f1 = geoml.RicciFlow(n_iter=3, exp_power=0).fit(big)
    np.testing.assert_allclose(f1.weights_, f0.weights_, rtol=1e-13)
    np.testing.assert_allclose(f1.curvature_, f0.curvature_, rtol=0, atol=1e-13)
    o0, o1 = Compat(C, exp_power=0), Compat(big, exp_power=0)
    o0.compute_ricci_flow(iterations=3)
    o1.compute_ricci_flow(iterations=3)
    for u, v in C.edges():
        assert o1.G[u][v]["weight"] == pytest.approx(o0.G[u][v]["weight"], rel=1e-13)
