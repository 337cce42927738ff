"""Ollivier-Ricci curvature on weighted kNN graphs: the shared-row path (OrcOptions.fast_path,
the default) against GraphRicciCurvature ("OTD") and against the per-thread-cache path, across
windows and thread counts (unweighted graphs too)."""

import logging

import numpy as np
import pytest

import geoml
from geoml import _core
from geoml.curvature import _as_graph

nx = pytest.importorskip("networkx")
grc_mod = pytest.importorskip("GraphRicciCurvature.OllivierRicci")
logging.getLogger("GraphRicciCurvature").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings("ignore:Input histogram consists of integer:UserWarning")


def clustered(n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(max(n // 40, 2), d))
    lab = rng.integers(0, len(centres), size=n)
    return centres[lab] + rng.uniform(0.5, 1.5, size=len(centres))[lab, None] * rng.normal(
        size=(n, d)
    )


def knn_distance_graph(n, d, seed, k=6):
    A = geoml.knn_graph(clustered(n, d, seed), k, mode="distance", symmetrize="union")
    return A.astype(np.float64)


def to_nx(A, directed):
    C = A.tocoo()
    G = nx.DiGraph() if directed else nx.Graph()
    G.add_nodes_from(range(A.shape[0]))
    G.add_weighted_edges_from(zip(C.row.tolist(), C.col.tolist(), C.data.tolist()))
    return G


def core_curvature(A, alpha=0.5, fast=True, n_jobs=1, directed=False, converged=True, **kw):
    """_core.ollivier_ricci on every edge, with the fast path forced on or off."""
    g = _as_graph(to_nx(A, True), directed_ok=True) if directed else _as_graph(A)
    o = _core.OrcOptions(alpha=alpha, fast_path=fast, **kw)
    e = g.edges
    if g.directed:
        out = _core.ollivier_ricci_directed(
            *g.dicsr(), e[:, 0].copy(), e[:, 1].copy(), options=o, n_jobs=n_jobs
        )
    else:
        indptr, indices, w = g.csr()
        out = _core.ollivier_ricci(
            indptr, indices, w, e[:, 0].copy(), e[:, 1].copy(), options=o, n_jobs=n_jobs
        )
    kappa, dist, status = out
    if converged:
        assert (status == 0).all()
    return (g, kappa, dist, status) if not converged else (g, kappa, dist)


def grc_kappa(A, g, alpha, directed=False):
    G = to_nx(A, directed)
    o = grc_mod.OllivierRicci(G, alpha=alpha, method="OTD", proc=1, verbose="ERROR")
    o.compute_ricci_curvature()
    nodes = g.nodes if g.nodes is not None else range(g.n)
    return np.array([o.G[nodes[i]][nodes[j]]["ricciCurvature"] for i, j in g.edges])


@pytest.mark.parametrize("d", [2, 8, 32])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("fast", [True, False])
def test_weighted_knn_matches_graphriccicurvature(d, alpha, fast):
    A = knn_distance_graph(70, d, seed=d)
    g, kappa, _ = core_curvature(A, alpha=alpha, fast=fast)
    np.testing.assert_allclose(kappa, grc_kappa(A, g, alpha), atol=1e-6, rtol=0)


def test_directed_weighted_matches_graphriccicurvature_both_paths():
    A = geoml.knn_graph(clustered(60, 4, 3), 5, mode="distance", symmetrize=None)
    A = A.astype(np.float64)
    g, k_fast, _ = core_curvature(A, alpha=0.4, fast=True, directed=True)
    _, k_slow, _ = core_curvature(A, alpha=0.4, fast=False, directed=True)
    np.testing.assert_allclose(k_fast, k_slow, atol=1e-12, rtol=0)
    np.testing.assert_allclose(k_fast, grc_kappa(A, g, 0.4, directed=True), atol=1e-6, rtol=0)


@pytest.mark.parametrize("weighted", [True, False])
def test_fast_path_equals_general_path_across_windows_and_threads(weighted):
    # more windows than one (8192 BFS positions with distances, 32768 with hop counts),
    # several components, an isolated node, and 1 or 2 threads: the same curvature as the
    # per-thread caches, bit for bit across thread counts
    n = 9000 if weighted else 33000
    X = clustered(n, 2, seed=5)
    A = geoml.knn_graph(X, 3, mode="distance" if weighted else "connectivity", symmetrize="union")
    A = A.astype(np.float64).tolil()
    A[n - 1, :] = 0  # an isolated node
    A[:, n - 1] = 0
    A = A.tocsr()
    A.eliminate_zeros()
    g, k1, d1 = core_curvature(A, fast=True, n_jobs=1)
    _, k2, d2 = core_curvature(A, fast=True, n_jobs=2)
    _, k0, d0 = core_curvature(A, fast=False, n_jobs=2)
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_allclose(k1, k0, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(d1, d0)
    assert np.isfinite(k1).all()


def test_fast_path_sinkhorn_atd_and_topk_match_general_path():
    A = knn_distance_graph(300, 5, seed=11)
    for kw in (
        {"method": _core.OrcMethod.atd},
        {"method": _core.OrcMethod.sinkhorn, "eps": 0.05},
        {"nbr_topk": 3},
        {"exp_power": 1.0, "base": 2.0},
    ):
        _, k_fast, _, s_fast = core_curvature(A, fast=True, converged=False, **kw)
        _, k_slow, _, s_slow = core_curvature(A, fast=False, converged=False, **kw)
        np.testing.assert_allclose(k_fast, k_slow, atol=1e-12, rtol=0, err_msg=str(kw))
        np.testing.assert_array_equal(s_fast, s_slow)


def test_estimator_on_a_weighted_cycle_with_a_pendant_edge():
    # the public estimator (fast path by default): equal weights on the cycle, but a pendant
    # edge of another length makes the graph weighted (no hop-count path)
    G = nx.cycle_graph(9)
    for u, v in G.edges():
        G[u][v]["weight"] = 2.5
    G.add_edge(0, 100, weight=1.7)  # a pendant edge makes the weights unequal
    orc = geoml.OllivierRicci(alpha=0.5).fit(G)
    H = grc_mod.OllivierRicci(G, alpha=0.5, method="OTD", proc=1, verbose="ERROR")
    H.compute_ricci_curvature()
    ref = np.array([H.G[orc.nodes_[i]][orc.nodes_[j]]["ricciCurvature"] for i, j in orc.edges_])
    np.testing.assert_allclose(orc.curvature_, ref, atol=1e-6, rtol=0)
