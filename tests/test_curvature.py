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
    with pytest.raises(ValueError, match="directed"):
        geoml.OllivierRicci().fit(nx.DiGraph([(0, 1), (1, 2)]))
    with pytest.raises(ValueError, match="multigraph"):
        geoml.OllivierRicci().fit(nx.MultiGraph([(0, 1), (0, 1)]))
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
