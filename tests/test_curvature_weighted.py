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


def test_pivot_limit_flags_the_queued_exact_problems_for_any_thread_count():
    # the exact problems of a source's edges are solved together, two at a time: a pivot limit
    # must flag each one that hits it (and only those), whatever the thread count
    A = knn_distance_graph(1500, 8, seed=3)
    _, k_ref, _ = core_curvature(A, n_jobs=1)
    _, k_big, _ = core_curvature(A, n_jobs=2, max_iter=10**6)
    np.testing.assert_array_equal(k_ref, k_big)
    _, k1, _, s1 = core_curvature(A, n_jobs=1, converged=False, max_iter=3)
    _, k2, _, s2 = core_curvature(A, n_jobs=2, converged=False, max_iter=3)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(k1, k2)
    assert 0 < (s1 != 0).sum() < len(s1)
    ok = s1 == 0  # within the limit: the same optimum
    np.testing.assert_array_equal(k1[ok], k_ref[ok])


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


def _reference_kappa(W, pairs, alpha=0.5, directed=False):
    """Independent reference: all-pairs shortest paths (SciPy), the measures of the definition
    and exact W1 by POT, pair by pair."""
    ot = pytest.importorskip("ot")
    from scipy.sparse.csgraph import shortest_path

    W = W.tocsr()
    dist = shortest_path(W, directed=directed)
    WT = W.T.tocsr()

    def measure(x, rowsrc):
        r = rowsrc[x]
        nb, w = r.indices, r.data
        if len(nb) == 0:
            return np.array([x]), np.array([1.0])
        p = np.exp(-(w**2))
        p = (1 - alpha) * (p / p.sum() if p.sum() > 1e-7 else np.full(len(nb), 1 / len(nb)))
        return np.append(nb, x), np.append(p, alpha)

    out = []
    for x, y in pairs:
        sx, ax = measure(x, WT if directed else W)
        sy, by = measure(y, W)
        w1 = ot.emd2(ax, by, dist[np.ix_(sx, sy)])
        out.append(0.0 if dist[x, y] < 1e-7 else 1 - w1 / dist[x, y])
    return np.array(out)


def _core_pairs(W, pairs, n_jobs=1, fast=True, directed=False):
    W = W.tocsr()
    W.sort_indices()
    e = np.asarray(pairs, dtype=np.int64)
    o = _core.OrcOptions(alpha=0.5, fast_path=fast)
    if directed:
        WT = W.T.tocsr()
        WT.sort_indices()
        kappa, dist, status = _core.ollivier_ricci_directed(
            W.indptr.astype(np.int64),
            W.indices.astype(np.int64),
            W.data.astype(np.float64),
            WT.indptr.astype(np.int64),
            WT.indices.astype(np.int64),
            WT.data.astype(np.float64),
            e[:, 0].copy(),
            e[:, 1].copy(),
            options=o,
            n_jobs=n_jobs,
        )
    else:
        kappa, dist, status = _core.ollivier_ricci(
            W.indptr.astype(np.int64),
            W.indices.astype(np.int64),
            W.data.astype(np.float64),
            e[:, 0].copy(),
            e[:, 1].copy(),
            options=o,
            n_jobs=n_jobs,
        )
    assert (status == 0).all()
    return kappa


def _detour_graph(n, seed):
    """A weighted graph whose shortest paths take many hops: a ring of short edges plus long
    chords, so that neighbours' distances run far beyond 3 hops (the radius bound must not
    cut them) and every node's row is bounded by a different radius."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    i = np.arange(n)
    rows = [i, i]
    cols = [(i + 1) % n, (i + rng.integers(3, n // 2, size=n)) % n]
    vals = [rng.uniform(0.01, 0.1, size=n), rng.uniform(0.2, 3.0, size=n)]
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    keep = lo != hi
    U = sp.coo_matrix((v[keep], (lo[keep], hi[keep])), shape=(n, n)).tocsr()  # i < j
    U.sum_duplicates()
    U.data[rng.random(U.nnz) < 0.05] = 0.0  # a few zero-length edges (explicit zeros)
    U = U.tocoo()
    return sp.coo_matrix(
        (
            np.concatenate([U.data, U.data]),
            (np.concatenate([U.row, U.col]), np.concatenate([U.col, U.row])),
        ),
        shape=(n, n),
    ).tocsr()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_radius_bounded_rows_match_an_independent_reference(seed):
    # rows are Dijkstra searches stopped past a per-node radius (w(u,x) + w(x,y) + longest
    # edge at y): on graphs whose shortest paths take many hops and on a kNN graph, every edge,
    # a subset of edges (other radii), 1 and 2 threads and the per-thread-cache path agree
    # with SciPy's shortest paths + POT's exact W1
    for A in (_detour_graph(60, seed), knn_distance_graph(80, 3, seed=seed)):
        C = sp_triu_pairs(A)
        ref = _reference_kappa(A, C)
        k1 = _core_pairs(A, C, n_jobs=1)
        k2 = _core_pairs(A, C, n_jobs=2)
        k0 = _core_pairs(A, C, fast=False)
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_allclose(k1, ref, atol=1e-9, rtol=0)
        np.testing.assert_allclose(k0, ref, atol=1e-9, rtol=0)
        sub = C[::7]
        np.testing.assert_allclose(_core_pairs(A, sub), k1[::7], atol=1e-12, rtol=0)


@pytest.mark.parametrize("heavy", [False, True])
def test_label_correcting_rows_and_their_dijkstra_fallback_match_an_independent_reference(heavy):
    # the radius-bounded rows come from a FIFO label-correcting search, which requeues a node
    # whose distance drops after its scan: on a grid with uniform lengths a few are requeued;
    # with heavy-tailed lengths (cubes of exponentials) the radii cover most of the grid, the
    # search requeues nodes many times and almost every row switches to Dijkstra. Both against
    # SciPy's shortest paths + POT's exact W1; both paths, 1 and 2 threads
    import scipy.sparse as sp

    rng = np.random.default_rng(11)
    k = 20
    idx = np.arange(k * k).reshape(k, k)
    lo = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    hi = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    w = rng.exponential(1.0, size=len(lo)) ** 3 if heavy else rng.uniform(0.5, 1.5, len(lo))
    A = sp.coo_matrix((np.r_[w, w], (np.r_[lo, hi], np.r_[hi, lo])), shape=(k * k, k * k)).tocsr()
    C = sp_triu_pairs(A)
    ref = _reference_kappa(A, C)
    k1 = _core_pairs(A, C)  # (curvatures down to -1e3 with heavy tails: relative tolerance)
    np.testing.assert_allclose(k1, ref, atol=1e-12, rtol=1e-12)
    np.testing.assert_array_equal(_core_pairs(A, C, n_jobs=2), k1)
    np.testing.assert_allclose(_core_pairs(A, C, fast=False), ref, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("seed", [5, 6])
def test_weight_sorted_rows_with_tied_and_zero_lengths_match_an_independent_reference(seed):
    # the radius-bounded rows scan each node's arcs by increasing length and stop at the first
    # one past the radius: lengths from {0, 0.5, 1, 1.5} (many ties, zero-length edges) on a
    # random graph, against SciPy's shortest paths + POT's exact W1; both paths, 1 and 2 threads
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = 120
    r, c = rng.integers(0, n, size=5 * n), rng.integers(0, n, size=5 * n)
    keep = r != c
    lo, hi = np.minimum(r, c)[keep], np.maximum(r, c)[keep]
    U = sp.coo_matrix((np.ones(len(lo)), (lo, hi)), shape=(n, n)).tocsr()
    U.data[:] = rng.integers(0, 4, size=U.nnz) * 0.5  # explicit zeros stay edges
    U = U.tocoo()
    A = sp.coo_matrix(
        (np.concatenate([U.data, U.data]), (np.r_[U.row, U.col], np.r_[U.col, U.row])),
        shape=(n, n),
    ).tocsr()
    assert (A.data == 0).any()
    C = np.column_stack([U.row, U.col]).astype(np.int64)
    C = C[np.lexsort((C[:, 1], C[:, 0]))]
    ref = _reference_kappa(A, C)
    k1 = _core_pairs(A, C)
    np.testing.assert_allclose(k1, ref, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(_core_pairs(A, C, n_jobs=2), k1)
    np.testing.assert_allclose(_core_pairs(A, C, fast=False), ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_hub_problems_of_33_to_64_bins_match_an_independent_reference(seed):
    # hubs of degree 20 to 70 on a sparse ring with chords: their edges' OT problems (after
    # the common-mass cancellation) have up to 32 bins (the tiny simplex), 33 to 64 on one or
    # both sides (its wide variant, cost-only) and more (the general simplex); hub-hub edges
    # too. Against SciPy's shortest paths + POT's exact W1, 1 and 2 threads, both paths.
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = 160
    r = list(range(n)) + list(rng.integers(0, n, size=n // 2))
    c = [(i + 1) % n for i in range(n)] + list(rng.integers(0, n, size=n // 2))
    hubs = [0, 40, 80, 120, 20, 100]
    for h, d in zip(hubs, [20, 34, 45, 58, 63, 70]):
        nb = rng.choice(np.setdiff1d(np.arange(n), [h]), size=d, replace=False)
        r += [h] * d
        c += nb.tolist()
    r += [0, 40, 80, 120]
    c += [40, 80, 120, 20]
    A = sp.coo_matrix((rng.uniform(0.3, 2.0, size=len(r)), (r, c)), shape=(n, n)).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    A = A.maximum(A.T).tocsr()
    C = sp_triu_pairs(A)
    deg = np.diff(A.indptr)
    assert ((deg[C[:, 0]] > 33) & (deg[C[:, 0]] < 64)).any()
    assert (np.minimum(deg[C[:, 0]], deg[C[:, 1]]) > 33).any()
    ref = _reference_kappa(A, C)
    k1 = _core_pairs(A, C, n_jobs=1)
    np.testing.assert_allclose(k1, ref, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(_core_pairs(A, C, n_jobs=2), k1)
    np.testing.assert_allclose(_core_pairs(A, C, fast=False), ref, atol=1e-9, rtol=0)
    _core.set_simd_isa("generic")  # the scalar pricing of the wide solver too
    try:
        kg = _core_pairs(A, C)
    finally:
        _core.set_simd_isa("auto")
    np.testing.assert_allclose(kg, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("seed", [2, 3])
def test_tall_problems_both_orientations_match_an_independent_reference(seed):
    # hubs of degree 33 to 64 whose neighbours have small degrees: an edge (hub, leaf) is an OT
    # problem of 33-64 rows and at most 32 columns (the cost-only tall simplex with float32
    # pricing), (leaf, hub) the same transposed (solved as its transpose). Against SciPy's
    # shortest paths + POT's exact W1, with the float32 (AVX2) and the scalar pricing.
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = 300
    r = list(range(n)) + list(rng.integers(0, n, size=n // 3))
    c = [(i + 1) % n for i in range(n)] + list(rng.integers(0, n, size=n // 3))
    for h, d in zip([0, 75, 150, 225], [33, 40, 52, 63]):
        nb = rng.choice(np.setdiff1d(np.arange(n), [0, 75, 150, 225]), size=d, replace=False)
        r += [h] * d
        c += nb.tolist()
    A = sp.coo_matrix((rng.uniform(0.3, 2.0, size=len(r)), (r, c)), shape=(n, n)).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    A = A.maximum(A.T).tocsr()
    C = sp_triu_pairs(A)
    deg = np.diff(A.indptr)
    lo, hi = np.minimum(deg[C[:, 0]], deg[C[:, 1]]), np.maximum(deg[C[:, 0]], deg[C[:, 1]])
    assert ((hi >= 34) & (lo <= 20)).sum() >= 100
    pairs = np.vstack([C, C[:, ::-1]])  # both orientations of every edge
    ref = _reference_kappa(A, C)
    ref = np.concatenate([ref, ref])
    k1 = _core_pairs(A, pairs, n_jobs=1)
    np.testing.assert_allclose(k1, ref, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(_core_pairs(A, pairs, n_jobs=2), k1)
    _core.set_simd_isa("generic")
    try:
        kg = _core_pairs(A, pairs)
    finally:
        _core.set_simd_isa("auto")
    np.testing.assert_allclose(kg, ref, atol=1e-12, rtol=0)


def sp_triu_pairs(A):
    import scipy.sparse as sp

    U = sp.triu(A.tocsr(), 1).tocoo()
    return np.column_stack([U.row, U.col]).astype(np.int64)


def test_radius_bounded_rows_directed_match_an_independent_reference():
    import scipy.sparse as sp

    A = _detour_graph(50, 4)
    rng = np.random.default_rng(4)
    D = sp.triu(A, 1).tocsr() + sp.tril(A, -1).multiply(rng.random(A.shape) < 0.5).tocsr()
    D = D.tocsr()
    arcs = np.column_stack(D.nonzero()).astype(np.int64)
    arcs = arcs[np.lexsort((arcs[:, 1], arcs[:, 0]))]
    ref = _reference_kappa(D, arcs, directed=True)
    k1 = _core_pairs(D, arcs, directed=True)
    np.testing.assert_allclose(k1, ref, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(_core_pairs(D, arcs, n_jobs=2, directed=True), k1)


@pytest.mark.parametrize("seed", [0, 1])
def test_nodes_renamed_in_bfs_order_give_the_same_curvature_under_any_labelling(seed):
    # weighted graphs run on a copy with the nodes renamed in BFS order (results in the edges'
    # order): a random relabelling of the same graph (several components, tied and zero lengths,
    # edges listed in a shuffled order and from either end), undirected and directed, gives the
    # same curvatures, which match SciPy's shortest paths + POT's exact W1; 1 and 2 threads
    # bit for bit, and both paths
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    parts = [_detour_graph(40, seed), knn_distance_graph(60, 3, seed=seed)]
    A = sp.block_diag(parts).tocsr()  # two components
    A.data = np.round(A.data * 4) / 4  # ties, and some zero lengths
    n = A.shape[0]
    pairs = sp_triu_pairs(A)
    pairs = pairs[rng.permutation(len(pairs))]
    flip = rng.random(len(pairs)) < 0.5
    pairs[flip] = pairs[flip][:, ::-1]
    perm = rng.permutation(n)  # node v is named perm[v] in the relabelled graph

    def relabel(M):  # explicit zeros (zero-length edges) kept
        M = M.tocoo()
        return sp.csr_matrix((M.data, (perm[M.row], perm[M.col])), shape=M.shape)

    B = relabel(A)
    ref = _reference_kappa(A, pairs)
    k1 = _core_pairs(A, pairs)
    np.testing.assert_allclose(k1, ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(_core_pairs(B, perm[pairs]), k1, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(_core_pairs(A, pairs, n_jobs=2), k1)
    np.testing.assert_allclose(_core_pairs(A, pairs, fast=False), ref, atol=1e-12, rtol=0)
    D = (sp.triu(A, 1) + sp.tril(A, -1).multiply(rng.random(A.shape) < 0.5)).tocsr()
    arcs = np.column_stack(D.nonzero()).astype(np.int64)
    arcs = arcs[rng.permutation(len(arcs))]
    DB = relabel(D)
    ref_d = _reference_kappa(D, arcs, directed=True)
    kd = _core_pairs(D, arcs, directed=True)
    np.testing.assert_allclose(kd, ref_d, atol=1e-12, rtol=0)
    np.testing.assert_allclose(_core_pairs(DB, perm[arcs], directed=True), kd, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(_core_pairs(D, arcs, n_jobs=2, directed=True), kd)


def test_renaming_keeps_the_range_check_of_edge_endpoints():
    A = knn_distance_graph(30, 2, seed=0).tocsr()
    A.sort_indices()
    for bad in (-1, 30):
        with pytest.raises(ValueError, match="out of range"):
            _core.ollivier_ricci(
                A.indptr.astype(np.int64),
                A.indices.astype(np.int64),
                A.data.astype(np.float64),
                np.array([0, 1], np.int64),
                np.array([1, bad], np.int64),
                options=_core.OrcOptions(),
                n_jobs=1,
            )


def test_pairs_that_are_not_edges_fall_back_to_the_3_hop_ball():
    # a pair (x, y) that is not an edge gives no radius bound: the rows of x's sources are
    # then the full 3-hop balls (a wheel: every needed pair is within 2 hops through the hub)
    import scipy.sparse as sp

    n = 12
    rng = np.random.default_rng(7)
    rim = np.arange(1, n)
    r = np.concatenate([rim, rim])
    c = np.concatenate([np.zeros(n - 1, dtype=int), rim % (n - 1) + 1])
    A = sp.coo_matrix((rng.uniform(0.5, 2.0, size=len(r)), (r, c)), shape=(n, n)).tocsr()
    A = A.maximum(A.T).tocsr()
    pairs = np.vstack([sp_triu_pairs(A), [[1, 5], [2, 8]]]).astype(np.int64)
    ref = _reference_kappa(A, pairs)
    np.testing.assert_allclose(_core_pairs(A, pairs), ref, atol=1e-9, rtol=0)
    np.testing.assert_allclose(_core_pairs(A, pairs, fast=False), ref, atol=1e-9, rtol=0)


_FAR_PAIR_SCRIPT = """
import numpy as np, scipy.sparse as sp
from geoml import _core
n = 8
r = np.arange(n - 1)
A = sp.coo_matrix((np.linspace(1, 2, n - 1), (r, r + 1)), shape=(n, n))
A = (A + A.T).tocsr()
A.sort_indices()
for fast in (True, False):
    for n_jobs in (1, 2):
        o = _core.OrcOptions()
        o.fast_path = fast
        try:
            _core.ollivier_ricci(A.indptr.astype(np.int64), A.indices.astype(np.int64), A.data,
                                 np.array([0, 0], np.int64), np.array([1, 7], np.int64),
                                 options=o, n_jobs=n_jobs)
        except RuntimeError as e:
            assert "outside the distance row" in str(e), e
        else:
            raise AssertionError("no error")
print("raised")
"""


def test_error_inside_the_parallel_region_raises_instead_of_aborting():
    # a pair 7 hops apart on a path is beyond the 3-hop ball its rows fall back to: the kernel
    # throws inside its OpenMP region, which used to terminate the process (SIGABRT); it is
    # now rethrown after the region as a RuntimeError. Run in a child process so that the old
    # behaviour fails this test instead of killing the test run.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _FAR_PAIR_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "raised"


# ---------------------------------------------------------------- common-mass cancellation
# The exact path solves W1(m_x - c, m_y - c) with c = min(m_x, m_y) pointwise instead of
# W1(m_x, m_y): equal for a metric cost (see edge_w1 in cpp/curvature/curvature.cpp). These
# tests check the identity itself with POT, and geoml against POT's emd on the uncancelled
# problems on graphs where much of the mass is common.


@pytest.mark.parametrize("seed", range(6))
def test_cancellation_identity_holds_for_a_metric_and_can_fail_without_one(seed):
    ot = pytest.importorskip("ot")
    from scipy.sparse.csgraph import shortest_path

    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 12))
    # shortest paths of a random graph with integer lengths (ties) and some zero lengths
    L = rng.integers(0, 4, size=(n, n)).astype(float)
    L = np.triu(L, 1)
    L[np.triu(rng.random((n, n)) < 0.4, 1)] = 0.0  # no edge (dense input: 0 is no edge)
    L = L + L.T
    L[np.arange(n - 1), np.arange(1, n)] = L[np.arange(1, n), np.arange(n - 1)] = 1.0  # a path
    D = shortest_path(L, directed=False)
    mu, nu = rng.random(n), rng.random(n)
    mu[rng.random(n) < 0.3] = 0.0
    nu[rng.random(n) < 0.3] = 0.0
    mu, nu = mu / mu.sum(), nu / nu.sum()
    common = np.minimum(mu, nu)
    full = ot.emd2(mu, nu, D)
    a, b = mu - common, nu - common
    ia, ib = a > 0, b > 0
    assert not (ia & ib).any()  # the cancelled supports are disjoint
    reduced = ot.emd2(a[ia], b[ib] * a.sum() / b.sum(), D[np.ix_(ia, ib)]) if ia.any() else 0.0
    assert abs(full - reduced) <= 1e-12
    # a cost that is not a metric (a truncated one breaks the triangle inequality): the
    # identity is not a general fact about OT, and is only used on shortest-path costs
    if seed == 0:
        C = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 1.0], [3.0, 1.0, 0.0]])  # d(0,2) > 2
        m1, m2 = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
        assert ot.emd2(m1, m2, C) == pytest.approx(1.0)  # keeps the middle mass: 0.5 * 2
        assert ot.emd2(np.array([1.0]), np.array([1.0]), C[:1, 2:]) == pytest.approx(3.0)


def _overlap_graph(n, seed, zero_frac=0.1):
    """A dense weighted graph with many triangles (common neighbours), integer lengths (ties
    between costs) and some zero-length edges."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    A = np.triu(rng.integers(1, 4, size=(n, n)).astype(float) * (rng.random((n, n)) < 0.5), 1)
    A[np.arange(n - 1), np.arange(1, n)] = 1.0 + (rng.random(n - 1) < 0.5)  # connected
    Z = np.triu(rng.random((n, n)) < zero_frac, 1) & (A > 0)
    U = sp.coo_matrix(A)
    data = np.where(Z[U.row, U.col], 0.0, U.data)  # explicit zeros: zero-length edges
    return sp.coo_matrix(
        (np.r_[data, data], (np.r_[U.row, U.col], np.r_[U.col, U.row])), shape=(n, n)
    ).tocsr()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.95])
def test_cancelled_problems_match_pot_on_the_uncancelled_ones(seed, alpha):
    A = _overlap_graph(14 + 3 * seed, seed)
    C = sp_triu_pairs(A)
    ref = _reference_kappa(A, C, alpha=alpha)
    o = dict(alpha=alpha)
    for n_jobs, fast in ((1, True), (2, True), (1, False)):
        g, kappa, dist = core_curvature(A, n_jobs=n_jobs, fast=fast, **o)
        e = g.edges
        k = dict(zip(map(tuple, e.tolist()), kappa))
        got = np.array([k[(int(x), int(y))] for x, y in C])
        np.testing.assert_allclose(got, ref, atol=1e-12, rtol=0)


def test_all_mass_in_common_and_one_point_supports():
    import scipy.sparse as sp

    # exp_power = 0: every neighbour gets the same weight whatever its length, so on a
    # complete graph with alpha = 1 / n both measures are uniform over all n nodes: all the
    # mass cancels, W1 = 0 and kappa = 1 exactly (on unequal lengths: the weighted path)
    n = 6
    rng = np.random.default_rng(3)
    L = np.triu(rng.uniform(0.5, 2.0, size=(n, n)), 1)
    A = sp.csr_matrix(L + L.T)
    g, kappa, dist = core_curvature(A, alpha=1.0 / n, exp_power=0.0)
    np.testing.assert_array_equal(kappa, np.ones(len(kappa)))
    # a weighted path 0 - 1 - 2 with alpha = 0: m_0 and m_2 are point masses on node 1
    # (one-point supports)
    P = sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 2.0], [0, 2.0, 0]]))
    g, kappa, dist = core_curvature(P, alpha=0.0)
    ref = _reference_kappa(P, g.edges, alpha=0.0)
    np.testing.assert_allclose(kappa, ref, atol=1e-15, rtol=0)
    # a single zero-length edge: kappa 0 by convention (d(x, y) < 1e-7)
    Z = sp.csr_matrix(
        (np.array([0.0, 1.0, 0.0, 1.0, 1.0, 1.0]), ([0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1])),
        shape=(3, 3),
    )  # a triangle whose edge (0, 1) has length 0 (an explicit zero)
    g, kappa, dist = core_curvature(Z, alpha=0.5)
    e = g.edges.tolist()
    assert kappa[e.index([0, 1])] == 0.0 and dist[e.index([0, 1])] == 0.0
    np.testing.assert_allclose(kappa, _reference_kappa(Z, g.edges), atol=1e-12, rtol=0)
