"""geoml.PHATE against a dense NumPy PHATE and the phate package (skipped when absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

import geoml
from geoml.diffusion import alpha_decay_graph, knee_point, von_neumann_entropy


def swiss_roll(n, seed=0):
    """(points (n, 3), unrolled coordinates (n, 2): arc length along the spiral, height)."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    h = 21 * rng.random(n)
    arc = 0.5 * (t * np.sqrt(1 + t**2) + np.arcsinh(t))
    return np.column_stack([t * np.cos(t), h, t * np.sin(t)]), np.column_stack([arc, h])


def gen_dla(n_dim=100, n_branch=20, branch_length=100, rand_multiplier=2, seed=37, sigma=4):
    """phate.tree.gen_dla reproduced draw for draw (np.random.seed -> RandomState), plus the
    ground-truth geodesic distances along the noiseless tree (shortest paths through the
    branches' steps and their attachment points)."""
    from scipy.sparse.csgraph import shortest_path

    rs = np.random.RandomState(seed)
    M = np.cumsum(-1 + rand_multiplier * rs.rand(branch_length, n_dim), 0)
    rows, cols = [], []
    for _ in range(n_branch - 1):
        ind = rs.randint(branch_length)
        new = np.cumsum(-1 + rand_multiplier * rs.rand(branch_length, n_dim), 0)
        base = M.shape[0]
        rows.append(base)  # the branch's first point hangs from point `ind`
        cols.append(ind)
        M = np.concatenate([M, new + M[ind, :]])
    n = M.shape[0]
    X = M + rs.normal(0, sigma, M.shape)
    chain = np.arange(n - 1)
    keep = (chain + 1) % branch_length != 0
    r = np.concatenate([chain[keep], rows])
    c = np.concatenate([chain[keep] + 1, cols])
    w = np.linalg.norm(M[r] - M[c], axis=1)
    G = sp.csr_matrix((w, (r, c)), shape=(n, n))
    return X, shortest_path(G, directed=False)


def dense_phate(X, knn, decay, t, gamma=1.0):
    """PHATE's potential distances from dense NumPy (graphtools' kernel, P^t, potential)."""
    Dx = squareform(pdist(X))
    sigma = np.sort(Dx, axis=1)[:, knn]  # knn-th neighbour, self excluded (knn + 1 with self)
    K = np.exp(-((Dx / sigma[:, None]) ** decay))
    K[K < 1e-4] = 0
    K = 0.5 * (K + K.T)
    P = K / K.sum(1, keepdims=True)
    Pt = np.linalg.matrix_power(P, t)
    if gamma == 1:
        pot = -np.log(Pt + 1e-7)
    elif gamma == -1:
        pot = Pt
    else:
        c = (1 - gamma) / 2
        pot = Pt**c / c
    return K, pot, squareform(pdist(pot))


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [1.0, 0.0, -1.0, 0.5])
def test_potential_distances_match_dense_reference(seed, gamma):
    X, _ = swiss_roll(250, seed=seed)
    t = 8 + 4 * seed
    K, pot, D = dense_phate(X, 5, 40.0, t, gamma)
    est = geoml.PHATE(t=t, gamma=gamma, n_landmark=None, random_state=0).fit(X)
    assert est.t_ == t and est.clusters_ is None and est.transitions_ is None
    Kg = est.affinity_matrix_.toarray()
    # geoml's graph is graphtools' (affinities at the 1e-4 threshold aside: none here)
    assert np.abs(Kg - K).max() <= 1e-12
    assert _rel(est.potential_, pot) <= 1e-10
    assert _rel(est.distances_, D) <= 1e-10
    assert est.embedding_.shape == (250, 2)
    if gamma == 1:  # the embedding keeps the log potential distances' ranks
        assert spearmanr(pdist(est.embedding_), squareform(D, checks=False))[0] > 0.9


def test_precomputed_kernel_is_used_as_given():
    X, _ = swiss_roll(200, seed=3)
    K, pot, D = dense_phate(X, 4, 20.0, 10)
    a = geoml.PHATE(t=10, n_landmark=None, affinity="precomputed", random_state=0)
    a.fit(sp.csr_matrix(K))
    assert _rel(a.distances_, D) <= 1e-12
    b = geoml.PHATE(t=10, knn=4, decay=20, n_landmark=None, random_state=0).fit(X)
    np.testing.assert_allclose(b.embedding_, a.embedding_, atol=1e-8)
    c = geoml.PHATE(t=10, n_landmark=None, affinity="precomputed", random_state=0).fit(K)
    np.testing.assert_array_equal(c.embedding_, a.embedding_)


@pytest.mark.parametrize("n, n_landmark", [(150, None), (600, 100)])
def test_precomputed_kernel_of_any_scale(n, n_landmark):
    """PHATE's operators do not depend on the scale of a precomputed kernel: one of 2^-1030
    (subnormal) failed inside LAPACK ("array must not contain infs or NaNs": 1 / d
    overflowed); now every power-of-two scale gives the unit-scale fit bit for bit, and the
    kernel is kept as given. Row sums that overflow float64 are refused."""
    X, _ = swiss_roll(n, seed=4)
    K = (alpha_decay_graph(X, 5) + sp.identity(n)).tocsr()
    ref = geoml.PHATE(affinity="precomputed", n_landmark=n_landmark, random_state=0).fit(K)
    for e in (-1030, -600, 600):
        Ks = sp.csr_matrix((np.ldexp(K.data, e), K.indices, K.indptr), shape=K.shape)
        # (2^-1030 K is subnormal: compare with the unit-scale kernel it holds)
        Kb = sp.csr_matrix((np.ldexp(Ks.data, -e), K.indices, K.indptr), shape=K.shape)
        base = (
            ref
            if e != -1030
            else geoml.PHATE(affinity="precomputed", n_landmark=n_landmark, random_state=0).fit(Kb)
        )
        est = geoml.PHATE(affinity="precomputed", n_landmark=n_landmark, random_state=0)
        est.fit(Ks)
        assert est.t_ == base.t_
        np.testing.assert_array_equal(est.embedding_, base.embedding_)
        assert (est.affinity_matrix_ != Ks).nnz == 0
    with pytest.raises(ValueError, match="row sums overflow"):
        geoml.PHATE(affinity="precomputed").fit(K * 1e308)


def test_von_neumann_entropy_of_sparse_operator_and_bad_input():
    """A sparse P (PHATE's diff_op_ without landmarks) raised NumPy's "setting an array
    element with a sequence"; a negative t_max "negative dimensions are not allowed", a
    non-square P gave a curve. Now the sparse P's curve (phate's, densified) and clear
    errors."""
    X, _ = swiss_roll(150, seed=2)
    ph = geoml.PHATE(knn=5, n_landmark=None, random_state=0).fit(X)
    assert sp.issparse(ph.diff_op_)
    h = von_neumann_entropy(ph.diff_op_, 20)
    np.testing.assert_array_equal(h, von_neumann_entropy(ph.diff_op_.toarray(), 20))
    np.testing.assert_array_equal(h, ph.entropy_[:20])
    with pytest.raises(ValueError, match="t_max"):
        von_neumann_entropy(np.eye(3), -1)
    with pytest.raises(ValueError, match="t_max"):
        von_neumann_entropy(np.eye(3), 0)
    with pytest.raises(ValueError, match="square"):
        von_neumann_entropy(np.ones((3, 4)), 5)
    with pytest.raises(ValueError, match="NaN"):
        von_neumann_entropy(np.full((3, 3), np.nan), 5)


def test_von_neumann_entropy_and_knee():
    # the entropy of the normalised singular values of P^(t+1)
    rng = np.random.default_rng(0)
    A = rng.random((30, 30))
    P = A / A.sum(1, keepdims=True)
    h = von_neumann_entropy(P, 20)
    s = np.linalg.svd(P, compute_uv=False)
    for t in (0, 5, 19):
        p = s ** (t + 1) / np.sum(s ** (t + 1)) + np.finfo(float).eps
        assert abs(h[t] - (-(p * np.log(p)).sum())) <= 1e-12
    assert np.all(np.diff(h) <= 1e-12)
    # a curve of two lines breaks at its corner
    x = np.arange(60.0)
    y = np.where(x < 17, 10 - 0.5 * x, 10 - 0.5 * 17 - 0.01 * (x - 17))
    assert knee_point(y, x) == 17
    assert knee_point(y) == 17
    assert knee_point(y[::-1], x[::-1]) == 17
    with pytest.raises(ValueError, match="at least 3"):
        knee_point([1.0, 2.0])
    # a NaN gave a knee (1.0) silently, an x of another length "argmin of an empty sequence"
    with pytest.raises(ValueError, match="NaN"):
        knee_point([1.0, np.nan, 3.0, 4.0])
    with pytest.raises(ValueError, match="must match"):
        knee_point([1.0, 2.0, 3.0, 4.0], [1.0, 2.0])


def test_auto_t_is_the_knee_of_the_entropy():
    X, _ = swiss_roll(300, seed=4)
    est = geoml.PHATE(n_landmark=None, random_state=0).fit(X)
    P = est.diff_op_.toarray()
    h = von_neumann_entropy(P, 100)
    np.testing.assert_allclose(est.entropy_, h, rtol=1e-12)
    assert est.t_ == knee_point(h, np.arange(100))
    assert 1 <= est.t_ < 100
    _, pot, D = dense_phate(X, 5, 40.0, est.t_)
    assert _rel(est.distances_, D) <= 1e-10


def _graphtools_kernel(X, knn=5, decay=40.0):
    """graphtools' alpha-decay kernel (its exact graph: same formula as the kNN one, no numba)."""
    graphtools = pytest.importorskip("graphtools")
    G = graphtools.Graph(X, knn=knn, decay=decay, thresh=1e-4, graphtype="exact", n_pca=None)
    return sp.csr_matrix(G.kernel)


def _phate_precomputed(phate, K, seed=0, **kw):
    """phate on a precomputed kernel, its BLAS on one thread (a loaded machine's OpenBLAS
    pool slows it tenfold)."""
    from threadpoolctl import threadpool_limits

    ref = phate.PHATE(knn_dist="precomputed_affinity", verbose=0, random_state=seed, **kw)
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore")
        Y = ref.fit_transform(K)
    return ref, Y


def test_agrees_with_phate_package():
    phate = pytest.importorskip("phate")
    X, _ = swiss_roll(400, seed=5)
    K = _graphtools_kernel(X)
    own = geoml.PHATE(n_landmark=None, random_state=0).fit(X)
    assert abs(own.affinity_matrix_ - K).max() <= 1e-12  # geoml's graph is graphtools'
    for gamma in (1, 0):
        ref, _ = _phate_precomputed(phate, K, n_landmark=None, gamma=gamma)
        pot_ref = ref._calculate_potential()
        est = geoml.PHATE(n_landmark=None, gamma=gamma, affinity="precomputed", random_state=0)
        est.fit(K)
        assert est.t_ == ref.optimal_t
        np.testing.assert_allclose(est.diff_op_.toarray(), ref.diff_op, rtol=1e-12)
        assert _rel(est.potential_, pot_ref) <= 1e-6
        assert _rel(est.distances_, squareform(pdist(pot_ref))) <= 1e-6


def _quality(est, X, G):
    return spearmanr(pdist(est.fit(X).embedding_), squareform(G, checks=False))[0]


def test_landmarks_swiss_roll_and_tree():
    X, U = swiss_roll(3000, seed=0)
    G = squareform(pdist(U))
    est = geoml.PHATE(n_landmark=300, random_state=0)
    rho = _quality(est, X, G)
    assert est.potential_.shape == (300, 300) and est.distances_.shape == (300, 300)
    assert est.diff_op_.shape == (300, 300)
    assert sp.issparse(est.transitions_) and est.transitions_.shape == (3000, 300)
    np.testing.assert_allclose(np.asarray(est.transitions_.sum(1)).ravel(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(est.diff_op_.sum(1), 1.0, rtol=1e-12)
    assert est.clusters_.shape == (3000,) and np.unique(est.clusters_).size == 300
    # every point lies in its cluster's support: the transitions reach its own landmark
    T = est.transitions_.toarray()
    assert (T[np.arange(3000), est.clusters_] > 0).all()
    assert rho > 0.8  # measured 0.856 (without landmarks, every 3rd point: 0.730)
    Xt, Gt = gen_dla(n_branch=10, branch_length=100)
    rho_t = _quality(geoml.PHATE(n_landmark=200, random_state=0), Xt, Gt)
    rho_r = spearmanr(
        pdist(np.random.default_rng(0).random((1000, 2))), squareform(Gt, checks=False)
    )[0]
    assert rho_t > 0.5 and abs(rho_r) < 0.1  # measured 0.664


@pytest.mark.parametrize("data", ["swiss roll", "tree"])
def test_landmarks_match_phate_quality(data):
    """Spearman to ground truth with landmarks, geoml vs phate on the same kernel. Both pick
    t from the knee of their landmark operator's entropy, which moves with the clusters
    (t = 28..71 over seeds on this roll, for either tool), so the means over seeds are
    compared (measured, 5 seeds: roll 0.930 vs phate 0.943, tree 0.478 vs 0.471)."""
    phate = pytest.importorskip("phate")
    if data == "swiss roll":
        X, U = swiss_roll(1500, seed=1)
        G = pdist(U)
    else:
        X, Gt = gen_dla(n_branch=10, branch_length=150)
        G = squareform(Gt, checks=False)
    K = _graphtools_kernel(X)
    r, r_ref = [], []
    for seed in range(3):
        _, Yr = _phate_precomputed(phate, K, seed, n_landmark=150)
        r_ref.append(spearmanr(pdist(Yr), G)[0])
        est = geoml.PHATE(n_landmark=150, affinity="precomputed", random_state=seed).fit(K)
        r.append(spearmanr(pdist(est.embedding_), G)[0])
    assert np.mean(r) >= np.mean(r_ref) - 0.03, (r, r_ref)


def test_float32_and_determinism():
    X, _ = swiss_roll(600, seed=6)
    a = geoml.PHATE(n_landmark=100, random_state=3, n_jobs=1).fit(X)
    b = geoml.PHATE(n_landmark=100, random_state=3, n_jobs=2).fit(X)
    np.testing.assert_array_equal(a.clusters_, b.clusters_)
    assert a.t_ == b.t_
    # with landmarks BLAS runs on one thread and the large GEMMs in fixed row blocks on
    # n_jobs threads: the same bits for any thread count
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    # k-means fitted on a subsample (more than 50 points per landmark), then all assigned
    Xs, _ = swiss_roll(1500, seed=1)
    g = geoml.PHATE(n_landmark=20, random_state=1, n_jobs=1).fit(Xs)
    h = geoml.PHATE(n_landmark=20, random_state=1, n_jobs=2).fit(Xs)
    assert g.t_ == h.t_ and np.unique(g.clusters_).size == 20
    np.testing.assert_array_equal(g.embedding_, h.embedding_)
    # without landmarks too (BLAS held to one thread, the GEMMs in fixed row blocks), with
    # a given t and with t from the entropy (the dense SVD)
    for t in (10, "auto"):
        e = geoml.PHATE(n_landmark=None, t=t, random_state=3, n_jobs=1).fit(X)
        f = geoml.PHATE(n_landmark=None, t=t, random_state=3, n_jobs=2).fit(X)
        assert e.t_ == f.t_
        np.testing.assert_array_equal(e.embedding_, f.embedding_)
    c = geoml.PHATE(n_landmark=None, t=10, random_state=0).fit(X.astype(np.float32))
    d = geoml.PHATE(n_landmark=None, t=10, random_state=0).fit(X)
    assert c.embedding_.dtype == np.float64
    assert _rel(c.distances_, d.distances_) <= 1e-3


def test_smacof_non_convergence_warns():
    """PHATE's SMACOF stopping at max_iter before convergence is not hidden."""
    X, _ = swiss_roll(300, seed=2)
    with pytest.warns(RuntimeWarning, match="SMACOF did not meet"):
        geoml.PHATE(n_landmark=None, t=10, max_iter=2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = geoml.PHATE(n_landmark=None, t=10, random_state=0).fit(X)
    # over-relaxed SMACOF: a stress minimum at least as low as the plain iterates'
    from geoml.diffusion import smacof

    Y0 = geoml.diffusion.classical_mds(est.distances_, 2, random_state=0)[0]
    assert est.stress_ <= smacof(est.distances_, Y0)[1] * (1 + 1e-6)


def test_verbose_and_disconnected(capsys):
    X, _ = swiss_roll(200, seed=7)
    Y = np.vstack([X, X + 1000.0])
    with pytest.warns(RuntimeWarning, match="2 connected components"):
        est = geoml.PHATE(n_landmark=None, t=5, verbose=1, random_state=0).fit(Y)
    assert np.isfinite(est.embedding_).all()
    err = capsys.readouterr().err
    assert "[geoml] PHATE" in err and "MDS" in err


@pytest.mark.parametrize(
    "kw, X, exc, match",
    [
        ({"t": 0}, None, ValueError, "t"),
        ({"t": "sometimes"}, None, ValueError, "auto"),
        ({"t": 2.5}, None, TypeError, "t"),
        ({"gamma": 2.0}, None, ValueError, "gamma"),
        ({"gamma": "log"}, None, TypeError, "gamma"),
        ({"knn": 0}, None, ValueError, r"knn=0 is out of range"),
        ({"decay": -1.0}, None, ValueError, "decay"),
        ({"mds": "sgd"}, None, ValueError, "mds"),
        ({"affinity": "cosine"}, None, ValueError, "affinity"),
        ({"n_landmark": 1}, None, ValueError, "n_landmark"),
        ({"n_components": 50}, None, ValueError, "n_components"),
        ({}, "nan", ValueError, "NaN"),
        ({"affinity": "precomputed"}, "asym", ValueError, "symmetric"),
        ({"affinity": "precomputed"}, "neg", ValueError, "negative"),
        ({"affinity": "precomputed"}, "zero", ValueError, "zero"),
        ({"affinity": "precomputed"}, "rect", ValueError, "square"),
    ],
)
def test_bad_input(kw, X, exc, match):
    base = np.random.default_rng(0).standard_normal((40, 3))
    if X is None:
        X = base
    elif X == "nan":
        X = base.copy()
        X[3, 1] = np.nan
    else:
        K = np.abs(np.random.default_rng(1).random((10, 10)))
        K = K + K.T
        if X == "asym":
            K[0, 1] += 1.0
        elif X == "neg":
            K[0, 1] = K[1, 0] = -1.0
        elif X == "zero":
            K[2, :] = K[:, 2] = 0.0
        elif X == "rect":
            K = K[:, :9]
        X = K
    with pytest.raises(exc, match=match):
        geoml.PHATE(**kw).fit(X)


def test_knn_above_the_data_is_truncated():
    """knn >= n_samples: n_samples - 1 with a warning (graphtools and umap-learn do the same);
    the kernel function itself still refuses it."""
    X = np.random.default_rng(0).standard_normal((40, 3))
    with pytest.warns(UserWarning, match=r"knn=50 is larger than the dataset size \(40 samples\)"):
        est = geoml.PHATE(knn=50, t=5, random_state=0).fit(X)
    assert est.knn_ == 39
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = geoml.PHATE(knn=39, t=5, random_state=0).fit(X)
    np.testing.assert_array_equal(est.embedding_, ref.embedding_)
    with pytest.raises(ValueError, match="n_neighbors=50 is out of range"):
        alpha_decay_graph(X, 50)


# ----------------------------------------------------------------------------- HeatGeo t="auto"


def test_kneedle_matches_kneed():
    from geoml.diffusion._heatgeo import _kneedle

    x = np.linspace(0.05, 200, 10)
    curves = [np.log1p(x), 1 - np.exp(-x / 30), np.sqrt(x), np.minimum(x, 50.0) + 0.01 * x]
    expect = [None] * len(curves)
    try:
        import kneed
    except ImportError:
        kneed = None
    for i, y in enumerate(curves):
        k = _kneedle(x, y, 0.5)
        assert k is None or k in x
        if kneed is not None:
            expect[i] = kneed.KneeLocator(x, y, S=0.5, curve="concave").knee
            assert k == expect[i]
    # a curve that bends once, hard, bends there
    assert _kneedle(x, np.minimum(x, x[3])) == x[3]
    assert _kneedle(x, x) is None  # a line has no knee
    assert _kneedle(x, np.ones_like(x)) is None


def test_heatgeo_auto_t():
    from geoml.diffusion import heat_entropy_time, heat_kernel
    from geoml.diffusion._heatgeo import _kneedle

    X, _ = swiss_roll(300, seed=8)
    a = geoml.HeatGeo(n_neighbors=10, t="auto", random_state=0).fit(X)
    W = a.affinity_matrix_
    # the entropy of the full heat kernel, from one dense run per time
    times = np.linspace(0.05, 200, 10)
    H = heat_kernel(W, np.eye(300), times, tol=1e-10)
    H = np.maximum(H, 0)
    ent = -(H * np.log(H + 1e-10)).sum(axis=(1, 2))
    np.testing.assert_allclose(a.entropy_, ent, rtol=1e-8)
    assert a.t_ == _kneedle(times, ent, 0.5) and a.t_ in times
    b = geoml.HeatGeo(n_neighbors=10, t=a.t_, random_state=0).fit(X)
    np.testing.assert_array_equal(a.distances_, b.distances_)
    # landmarks: the entropy of their columns only, no n x n array
    t_l, _, ent_l = heat_entropy_time(W, landmarks=np.arange(0, 300, 3))
    assert ent_l.shape == (10,) and t_l in times
    c = geoml.HeatGeo(n_neighbors=10, t="auto", n_landmarks=100, random_state=0).fit(X)
    assert c.distances_.shape == (300, 100) and c.t_ in times
    with pytest.raises(ValueError, match="auto"):
        geoml.HeatGeo(t="soon").fit(X)
    with pytest.raises(ValueError, match="n_t"):
        heat_entropy_time(W, n_t=2)


def test_heatgeo_auto_t_matches_heatgeo():
    """heatgeo's tau="auto" on its own graph: the same knee, the same entropy there (heatgeo's
    order-32 Chebyshev vs geoml's tol-driven order); skipped without heatgeo."""
    import sys
    import types

    pytest.importorskip("graphtools")
    pytest.importorskip("pygsp")
    pytest.importorskip("kneed")
    try:
        import s_gd2  # noqa: F401  (heatgeo imports it at module level; unused here)
    except ImportError:
        sys.modules["s_gd2"] = types.ModuleType("s_gd2")
    he = pytest.importorskip("heatgeo.embedding")
    from geoml.diffusion import heat_entropy_time

    X, _ = swiss_roll(400, seed=1)
    ref = he.HeatGeo(knn=10, tau="auto")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X)
        ref.metric_computation(X)
    t, times, ent = heat_entropy_time(ref.graph.W)
    assert t == pytest.approx(float(ref.opt_tau[0]), rel=1e-12)
    np.testing.assert_allclose(ent[times == t], ref.entro_H, rtol=1e-6)


# ------------------------------------------------------------------- fast landmark-path pieces


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_singular_values_and_entropy_match_dense_svd(seed):
    """The landmark operator's entropy from the sparse P P^T equals phate's dense-SVD curve
    (same knee), on a random sparse row-stochastic operator and on a PHATE landmark one."""
    from geoml.diffusion._phate import _entropy_curve, _sparse_singular_values

    rng = np.random.default_rng(seed)
    A = sp.random(300, 300, density=0.03, random_state=seed) + sp.identity(300)
    A = sp.csr_matrix(A + A.T)
    P = sp.csr_matrix(sp.diags(1.0 / np.asarray(A.sum(1)).ravel()) @ A)
    s = np.linalg.svd(P.toarray(), compute_uv=False)
    np.testing.assert_allclose(_sparse_singular_values(P), s, atol=1e-7 * s[0])
    X, _ = swiss_roll(1500, seed=seed)
    est = geoml.PHATE(n_landmark=150, random_state=int(rng.integers(100))).fit(X)
    op = est.diff_op_
    h = von_neumann_entropy(op, 100)
    h2 = _entropy_curve(_sparse_singular_values(sp.csr_matrix(op)), 100)
    np.testing.assert_allclose(h2, h, rtol=1e-10)
    np.testing.assert_allclose(est.entropy_, h, rtol=1e-10)
    assert est.t_ == knee_point(h, np.arange(100))


@pytest.mark.parametrize("n", [1, 2, 5, 64, 257, 700])
def test_eigvalsh_two_stage_matches_numpy(n):
    """LAPACK's two-stage solver through ctypes (where NumPy's or SciPy's LAPACK exports it)
    gives numpy.linalg.eigvalsh's eigenvalues to 1e-12 of the largest, on random symmetric
    matrices, a clustered spectrum and a PHATE-like P P^T, without touching its input."""
    from geoml._lapack import _two_stage, eigvalsh_two_stage
    from geoml.diffusion._phate import _eigvalsh, _gram

    if _two_stage() is None:
        pytest.skip("this LAPACK exports no dsyevd_2stage (numpy.linalg.eigvalsh is used)")
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, n))
    Q = np.linalg.qr(X)[0]
    A = sp.random(n, n, density=min(1.0, 8 / n), random_state=n) + sp.identity(n)
    A = sp.csr_matrix(A + A.T)
    P = sp.csr_matrix(sp.diags(1.0 / np.asarray(A.sum(1)).ravel()) @ A)
    clustered = (Q * np.repeat([1.0, 1 + 1e-9, -2.0], -(-n // 3))[:n]) @ Q.T
    for G in (X + X.T, X @ X.T, 0.5 * (clustered + clustered.T), _gram(P)):
        G0 = G.copy()
        ref = np.linalg.eigvalsh(G)
        w = eigvalsh_two_stage(G)
        np.testing.assert_array_equal(G, G0)
        assert w.shape == (n,) and np.all(np.diff(w) >= 0)
        assert np.abs(w - ref).max() <= 1e-12 * np.abs(ref).max()
        np.testing.assert_array_equal(_eigvalsh(G0), w)  # (G0 is its workspace)
    assert eigvalsh_two_stage(np.zeros((0, 0))) is None


def test_two_stage_from_each_library(monkeypatch):
    """The routines found through NumPy's LAPACK module (ILP64 OpenBLAS in the wheels) and
    through SciPy's (LP64) both give numpy's eigenvalues (integers passed as zero-padded
    64-bit values read right by either width)."""
    from geoml import _lapack

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 200))
    G = X + X.T
    ref = np.linalg.eigvalsh(G)
    AB = np.zeros((200, 1))
    AB[:, 0] = np.diagonal(G)
    found = 0
    for path in _lapack._modules():
        monkeypatch.setattr(_lapack, "_modules", lambda path=path: [path])
        monkeypatch.setattr(_lapack, "_TWO_STAGE", [])
        if _lapack._two_stage() is None:
            continue
        found += 1
        assert np.abs(_lapack.eigvalsh_two_stage(G) - ref).max() <= 1e-12 * np.abs(ref).max()
        if _lapack._two_stage()["dsytrd_sb2st"] is not None:  # a diagonal band: kd = 0
            np.testing.assert_allclose(_lapack.eigvalsh_band(AB.copy()), np.sort(AB[:, 0]))
    if not found:
        pytest.skip("no LAPACK here exports dsyevd_2stage")


@pytest.mark.parametrize("n", [2, 3, 50, 300, 700])
def test_eigvalsh_band_matches_numpy(n):
    """The band route (dsytrd_sb2st then dsterf on the upper band) gives numpy's eigenvalues
    to 1e-12 of the largest, for bandwidths from 1 to n - 1 and on a PHATE-like P P^T in
    reverse Cuthill-McKee order (:func:`_gram_solver`, both routes)."""
    from geoml import _lapack
    from geoml.diffusion import _phate

    found = _lapack._two_stage()
    if found is None or found["dsytrd_sb2st"] is None:
        pytest.skip("this LAPACK exports no dsytrd_sb2st")
    rng = np.random.default_rng(n)
    for kd in sorted({1, min(n - 1, 3), min(n - 1, 64), n - 1}):
        A = rng.standard_normal((n, n))
        A = A + A.T
        i, j = np.indices((n, n))
        A[np.abs(i - j) > kd] = 0
        AB = np.zeros((n, kd + 1))
        for dd in range(kd + 1):
            AB[dd:, kd - dd] = np.diagonal(A, dd)
        ref = np.linalg.eigvalsh(A)
        w = _lapack.eigvalsh_band(AB)
        assert w.shape == (n,) and np.all(np.diff(w) >= 0)
        assert np.abs(w - ref).max() <= 1e-12 * np.abs(ref).max()
    A = sp.random(n, n, density=min(1.0, 4 / n), random_state=n) + sp.identity(n)
    A = sp.csr_matrix(A + A.T)
    P = sp.csr_matrix(sp.diags(1.0 / np.asarray(A.sum(1)).ravel()) @ A)
    ref = np.linalg.eigvalsh(P @ P.T.toarray())
    for div in (1, 10**9):  # every band narrow enough / none
        _phate._BAND_DIV, old = div, _phate._BAND_DIV
        try:
            w = _phate._gram_solver(P)()
        finally:
            _phate._BAND_DIV = old
        assert np.abs(w - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize("n", [3, 40, 500])
def test_band_order(n):
    """_band_order: a permutation and its bandwidth; never wider than SciPy's reverse
    Cuthill-McKee order; a shuffled path gets bandwidth 1; a disconnected pattern gets
    SciPy's order."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    from geoml.diffusion._phate import _band_order

    rng = np.random.default_rng(n)

    def check(S, expect=None):
        S = sp.csr_matrix(S)
        S.sort_indices()
        C = S.tocoo()
        kd, inv = _band_order(S, C.row, C.col)
        assert np.array_equal(np.sort(inv), np.arange(S.shape[0]))
        assert kd == np.abs(inv[C.row] - inv[C.col]).max(initial=0)
        rcm = reverse_cuthill_mckee(S, symmetric_mode=True)
        ri = np.empty_like(rcm)
        ri[rcm] = np.arange(S.shape[0])
        assert kd <= np.abs(ri[C.row] - ri[C.col]).max(initial=0)
        if expect is not None:
            assert kd == expect
        return inv

    shuffle = rng.permutation(n)
    path = sp.diags([np.ones(n - 1), np.ones(n), np.ones(n - 1)], [-1, 0, 1])
    check(path.tocsr()[shuffle][:, shuffle], 1)
    w = min(n, 7)
    g = sp.kron(sp.identity(n), path.tocsr()[:w, :w]) + sp.kron(
        sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1]), sp.identity(w)
    )
    sh = rng.permutation(n * w)
    check(sp.csr_matrix(g)[sh][:, sh])
    A = sp.random(n, n, density=min(1.0, 3 / n), random_state=n) + sp.identity(n)
    check(A + A.T)
    two = sp.block_diag([A + A.T, A + A.T])  # two components: SciPy's order
    assert np.array_equal(
        check(two), np.argsort(reverse_cuthill_mckee(sp.csr_matrix(two), symmetric_mode=True))
    )


@pytest.mark.parametrize("n", [1, 2, 127, 128, 129, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sym_helpers_match_numpy(n, dtype):
    """_from_lower and _sym_mean give the NumPy passes they replace bit for bit: the full
    matrix from SYRK's upper triangle (C + C^T with the diagonal restored) and
    Y += Y.T; Y *= 0.5."""
    from scipy.linalg import blas

    from geoml.diffusion._phate import _from_lower, _sym_mean

    rng = np.random.default_rng(n)
    Y = rng.random((n, n)).astype(dtype)
    Y = np.ascontiguousarray(Y @ Y.T)
    syrk = blas.ssyrk if dtype == np.float32 else blas.dsyrk
    C = syrk(1.0, Y.T, trans=0, lower=0)
    ref = np.add(C, C.T, order="C")
    np.fill_diagonal(ref, np.diagonal(C))
    Z = _from_lower(C.T)
    assert Z.flags.c_contiguous and Z.dtype == dtype and np.array_equal(Z, ref)
    Y = rng.random((n, n)).astype(dtype)
    ref = Y.copy()
    ref += ref.T
    ref *= 0.5
    _sym_mean(Y)
    assert np.array_equal(Y, ref)


@pytest.mark.parametrize("gamma", [1.0, -1.0, 0.5])
def test_potential_row_halves(gamma):
    """The potential of r^-1/2 A^t r^1/2 and the potential distances by row halves on two
    threads: the same bits as on one, and the one-pass NumPy values."""
    from geoml.diffusion._phate import _conjugate_potential, _potential, _potential_distances

    rng = np.random.default_rng(3)
    At = rng.random((301, 301)).astype(np.float32) ** 8
    rs = rng.random(301) + 0.5
    ref = At.astype(np.float64)
    ref /= rs[:, None]
    ref *= rs[None, :]
    ref = _potential(ref, gamma)
    pots = [_conjugate_potential(At, rs, gamma, nt) for nt in (1, 2)]
    assert np.array_equal(pots[0], ref) and np.array_equal(pots[1], ref)
    (D1, B1), (D2, B2) = (_potential_distances(ref, nt) for nt in (1, 2))
    assert np.array_equal(D1, D2) and np.array_equal(B1, B2)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("data", ["roll", "tree"])
def test_phate_eigenvalue_routes_agree(seed, data, monkeypatch):
    """The landmark entropy's eigenvalues by the band route, by dsyevd_2stage or by
    numpy.linalg.eigvalsh (the fallback where the routines are absent) give the same t and
    the same embedding, bit for bit, and entropy curves within 1e-12, on one and two
    threads."""
    from geoml import _lapack
    from geoml.diffusion import _phate

    if _lapack._two_stage() is None:
        pytest.skip("this LAPACK exports no dsyevd_2stage")
    X = swiss_roll(3000, seed=seed)[0] if data == "roll" else gen_dla(branch_length=150)[0]
    fits = {}
    for route in ("band", "two-stage", "fallback"):
        monkeypatch.setattr(_lapack, "_TWO_STAGE", [None] if route == "fallback" else [])
        monkeypatch.setattr(_phate, "_BAND_DIV", 1 if route == "band" else 10**9)
        for nj in (1, 2):
            fits[route, nj] = geoml.PHATE(n_landmark=300, random_state=seed, n_jobs=nj).fit(X)
    ref = fits["fallback", 1]
    for est in fits.values():
        assert est.t_ == ref.t_
        np.testing.assert_array_equal(est.embedding_, ref.embedding_)
        np.testing.assert_allclose(est.entropy_, ref.entropy_, rtol=1e-12)
    for route in ("band", "two-stage"):
        np.testing.assert_array_equal(fits[route, 2].entropy_, fits[route, 1].entropy_)


@pytest.mark.parametrize("case", ["tree", "duplicates", "float32", "wide"])
def test_alpha_decay_row_widening_matches_global(case):
    """alpha_decay_graph widens only the rows that need more neighbours: the same graph as
    widening the whole search (the approximate-search path) and graphtools' kernel."""
    from geoml.diffusion import alpha_decay_graph
    from geoml.neighbors import knn_graph

    if case == "tree":
        X, _ = gen_dla(n_branch=6, branch_length=100)
    elif case == "duplicates":
        X = np.repeat(np.random.default_rng(0).standard_normal((200, 5)), 2, axis=0)
    elif case == "float32":
        X = gen_dla(n_branch=4, branch_length=100)[0].astype(np.float32)
    else:
        X = np.random.default_rng(1).standard_normal((15, 40))
    n, k = X.shape[0], 5
    ks = min(n - 1, 3 * k)
    while True:  # widen the whole search until every row has decayed below 1e-4
        K = knn_graph(X, ks, symmetrize=None, kernel="alpha_decay", k_sigma=k, decay=40.0)
        if ks == n - 1 or (K.data.reshape(n, ks).min(axis=1) < 1e-4).all():
            break
        ks = min(n - 1, 2 * ks)
    K.data[K.data < 1e-4] = 0
    K.eliminate_zeros()
    ref = ((K + K.T) * 0.5).tocsr()
    W = alpha_decay_graph(X, k, 40.0)
    assert W.dtype == X.dtype and W.nnz == ref.nnz
    assert abs(W - ref).max() == 0


@pytest.mark.parametrize("case", ["tree", "duplicates", "roll"])
def test_alpha_decay_search_paths_give_the_same_graph(case, monkeypatch):
    """The widening by one search of all rows (taken when many rows widen) and by a query
    search of the widened rows only give the same graph; data of at most 3 features through
    SciPy's k-d tree give the brute-force search's graph."""
    import geoml.diffusion._heatgeo as hg
    from geoml.diffusion import alpha_decay_graph

    if case == "tree":
        X, _ = gen_dla(n_branch=8, branch_length=150)
    elif case == "duplicates":
        X = np.repeat(np.random.default_rng(2).standard_normal((600, 3)), 2, axis=0)
    else:
        X = swiss_roll(3000, seed=3)[0]
    calls = []
    orig = hg._knn_exact

    def spy(*a):
        calls.append(a[1])
        return orig(*a)

    monkeypatch.setattr(hg, "_knn_exact", spy)
    monkeypatch.setattr(hg, "_WIDEN_ALL", 0.0)  # every widening by a full search
    W_all = alpha_decay_graph(X, 5, 40.0)
    if case == "tree":
        assert len(calls) >= 2  # rows did widen, by the full search
    monkeypatch.setattr(hg, "_WIDEN_ALL", 2.0)  # never: query searches of the bad rows
    W_bad = alpha_decay_graph(X, 5, 40.0)
    assert W_all.nnz == W_bad.nnz and abs(W_all - W_bad).max() == 0
    monkeypatch.setattr(hg, "_KDTREE_DIMS", 0)  # brute force for every dimension
    W_bf = alpha_decay_graph(X, 5, 40.0)
    assert W_bf.nnz == W_bad.nnz
    assert (W_bf.indices == W_bad.indices).all() and (W_bf.indptr == W_bad.indptr).all()
    np.testing.assert_allclose(W_bad.data, W_bf.data, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("t", [1, 2, 3, 7, 16, 50, 99])
def test_sym_power_matches_numpy(t):
    """Powers of a symmetric sparse matrix by SYRK squaring: float64 to rounding, float32 to
    single precision (entries below 1e-18 flushed), the same for any thread count."""
    from geoml.diffusion._phate import _sym_power

    A = sp.random(200, 200, density=0.05, random_state=t) + sp.identity(200)
    A = sp.csr_matrix(A + A.T)
    r = np.asarray(A.sum(1)).ravel() ** -0.5
    S = sp.csr_matrix(sp.diags(r) @ A @ sp.diags(r))  # spectrum in [-1, 1]
    R = np.linalg.matrix_power(S.toarray(), t)
    Y = _sym_power(S, t, 1)
    assert Y.dtype == np.float64 and Y.flags.c_contiguous
    assert np.abs(Y - R).max() <= 1e-13
    np.testing.assert_array_equal(Y, Y.T)
    np.testing.assert_array_equal(Y, _sym_power(S, t, 2))
    Y32 = _sym_power(S, t, 1, np.float32)
    assert Y32.dtype == np.float32
    assert np.abs(Y32 - R).max() <= 1e-5 * np.abs(R).max()
    with pytest.raises(ValueError, match="t must be"):
        _sym_power(S, 0, 1)


def test_skip_square():
    """The tiles' GEMMs of _skip_square give Y Y^T of a banded symmetric Y (a zero block
    inside) to float32 rounding against float64, exactly symmetric and zero beyond the
    band's reach, those of _skip_matmul X Y (the same bits on 1 and 2 threads); None when
    the tiles would cost more than _SKIP_FRAC of a SYRK / GEMM."""
    from geoml.diffusion._phate import _skip_matmul, _skip_square

    rng = np.random.default_rng(0)
    n = 700
    i, j = np.indices((n, n))
    Y = np.where(np.abs(i - j) <= 20, rng.random((n, n)), 0.0)
    Y[300:350] = 0.0
    Y[:, 300:350] = 0.0
    Y = (Y + Y.T).astype(np.float32)
    R = Y.astype(np.float64) @ Y.astype(np.float64)
    for b in (32, 64, 100, 128):
        Z = _skip_square(Y, b)
        assert Z.dtype == np.float32 and Z.flags.c_contiguous
        np.testing.assert_array_equal(Z, Z.T)
        assert np.abs(Z - R).max() <= 1e-6 * np.abs(R).max()
        assert (Z[R == 0] == 0).all()
    assert _skip_square(np.ones((300, 300), np.float32), 32) is None
    # the product of two such matrices (another band), on 1 and 2 threads
    X = np.where(np.abs(i - j) <= 45, rng.random((n, n)), 0.0)
    X = (X + X.T).astype(np.float32)
    R = X.astype(np.float64) @ Y.astype(np.float64)
    for b in (32, 100):
        Z = _skip_matmul(X, Y, 1, b)
        assert Z.dtype == np.float32 and Z.flags.c_contiguous
        assert np.abs(Z - R).max() <= 1e-6 * np.abs(R).max()
        assert (Z[R == 0] == 0).all()
        np.testing.assert_array_equal(Z, _skip_matmul(X, Y, 2, b))
    assert (
        _skip_matmul(np.ones((300, 300), np.float32), np.ones((300, 300), np.float32), 2, 32)
        is None
    )


@pytest.mark.parametrize("t, flops", [(98, None), (200, None), (63, 0.01)])
def test_sym_powers_skipped_tiles(monkeypatch, t, flops):
    """float32 powers of a shuffled ring (squared and multiplied in reverse Cuthill-McKee
    order, where they are banded: the tiles of _skip_square and _skip_matmul) match float64
    NumPy in the input's order, exactly symmetric, the same bits on 1 and 2 threads
    (``flops``: sparse factors densified for the tiles' product, _SPARSE_FLOPS)."""
    import geoml.diffusion._phate as ph

    if flops is not None:
        monkeypatch.setattr(ph, "_SPARSE_FLOPS", flops)

    used, sq, mm = {}, ph._skip_square, ph._skip_matmul

    def tiles(kind, Z):
        used[kind] = used.get(kind, False) or Z is not None
        return Z

    monkeypatch.setattr(ph, "_skip_square", lambda Y: tiles("square", sq(Y, 32)))
    monkeypatch.setattr(ph, "_skip_matmul", lambda X, Y, nt: tiles("product", mm(X, Y, nt, 32)))
    n = 1200
    rng = np.random.default_rng(t)
    p = rng.permutation(n)
    i = np.arange(n)
    rows = np.concatenate([i, i, i])
    cols = np.concatenate([i, (i + 1) % n, (i + 2) % n])
    A = sp.csr_matrix((rng.random(rows.size) + 0.1, (p[rows], p[cols])), shape=(n, n))
    A = sp.csr_matrix(A + A.T)
    r = np.asarray(A.sum(1)).ravel() ** -0.5
    S = sp.csr_matrix(sp.diags(r) @ A @ sp.diags(r))
    R = np.linalg.matrix_power(S.toarray(), t)
    Y = ph._sym_power(S, t, 1, np.float32)
    assert used == ({"product": True} if flops else {"square": True, "product": True})
    assert Y.dtype == np.float32 and Y.flags.c_contiguous
    assert np.abs(Y - R).max() <= 1e-5 * np.abs(R).max()
    np.testing.assert_array_equal(Y, Y.T)
    np.testing.assert_array_equal(Y, ph._SymPowers(S, 2, np.float32, 2).power(t))


@pytest.mark.parametrize("t", [3, 21, 54, 68, 98])
def test_sym_powers_speculated_and_beside_the_entropy(t):
    """The squarings grown before t is known (beside the entropy's eigenvalue solve) give
    the same A^t, bit for bit, as the powers grown for that t alone; the singular values from
    the worker thread are the sequential ones."""
    from threadpoolctl import threadpool_limits

    from geoml.diffusion._phate import (
        _landmark_singular_values,
        _sparse_singular_values,
        _spmm,
        _spmm_cols,
        _SymPowers,
    )

    n = 320  # a ring with 2 neighbours a side: local low powers, sparse then dense squarings
    i = np.arange(n)
    rows = np.concatenate([i, i, i])
    cols = np.concatenate([i, (i + 1) % n, (i + 2) % n])
    rng = np.random.default_rng(t)
    A = sp.csr_matrix((rng.random(rows.size) + 0.1, (rows, cols)), shape=(n, n))
    A = sp.csr_matrix(A + A.T)
    r = np.asarray(A.sum(1)).ravel() ** -0.5
    S = sp.csr_matrix(sp.diags(r) @ A @ sp.diags(r))
    P = sp.csr_matrix(sp.diags(1.0 / np.asarray(A.sum(1)).ravel()) @ A)
    R = np.linalg.matrix_power(S.toarray(), t)
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        # BLAS on one thread, as in the fit: a multi-threaded OpenBLAS SYRK / GEMM splits
        # the work by the thread count, and its Haswell float32 kernels then give other bits
        with threadpool_limits(1, user_api="blas"):
            ref = _SymPowers(S, 1, dtype).power(t)
        assert np.abs(ref - R).max() <= tol * np.abs(R).max()
        pw = _SymPowers(S, 2, dtype)
        with threadpool_limits(1, user_api="blas"):
            s_ref = _sparse_singular_values(P)
        s = _landmark_singular_values(P, pw, 100, 2)
        np.testing.assert_array_equal(s, s_ref)
        with threadpool_limits(1, user_api="blas"):
            pw.grow(6)  # (the squarings beside the worker stop when it is done)
            Y = pw.power(t)
        assert sp.issparse(pw.pw[2]) and not sp.issparse(pw.pw[6])
        assert Y.dtype == dtype and Y.flags.c_contiguous
        np.testing.assert_array_equal(Y, ref)
        np.testing.assert_array_equal(Y, Y.T)
        # the column-blocked sparse product is the plain one, bit for bit
        Sd = sp.csr_matrix(S, dtype=dtype)
        np.testing.assert_array_equal(_spmm_cols(Sd, Y, 2, block=64), _spmm(Sd, Y, 1))


@pytest.mark.parametrize("invariant", [None, False])
@pytest.mark.parametrize("tiles", [False, True])
def test_sym_powers_products_begun_ahead(monkeypatch, tiles, invariant):
    """Products of dense squarings begun before t is known (_SymPowers.speculate, stopped
    after any number of row blocks) give A^t bit for bit as computed without them, on 1 and
    2 threads, to float32 rounding of float64 NumPy; the row blocks of _RowsProduct are
    _matmul_rows' bits (one GEMM's where the BLAS is split-invariant), also with the halves
    that a BLAS without that property gets (``invariant=False``: forced)."""
    from threadpoolctl import threadpool_limits

    import geoml.diffusion._phate as ph

    if not tiles:
        monkeypatch.setattr(ph, "_SKIP_FRAC", 0.0)  # the dense products as full GEMMs
    if invariant is not None:
        monkeypatch.setattr(ph, "_SPLIT_INVARIANT", {np.dtype(np.float32).str: invariant})
    rng = np.random.default_rng(3)
    n = 900  # a shuffled ring with 3 neighbours a side: A^16 and above dense
    p = rng.permutation(n)
    i = np.arange(n)
    rows = np.concatenate([i, i, i, i])
    cols = np.concatenate([i, (i + 1) % n, (i + 2) % n, (i + 3) % n])
    A = sp.csr_matrix((rng.random(rows.size) + 0.1, (p[rows], p[cols])), shape=(n, n))
    A = sp.csr_matrix(A + A.T)
    r = np.asarray(A.sum(1)).ravel() ** -0.5
    S = sp.csr_matrix(sp.diags(r) @ A @ sp.diags(r))
    X = rng.random((n, n)).astype(np.float32)
    Y = rng.random((n, n)).astype(np.float32)
    with threadpool_limits(1, user_api="blas"):  # (as in the fit: BLAS on one thread)
        Z = ph._matmul_rows(X, Y, 1)
        np.testing.assert_array_equal(ph._matmul_rows(X, Y, 2), Z)
        assert np.abs(Z - X.astype(np.float64) @ Y).max() <= 1e-6 * np.abs(Z).max()
        if ph._rows_split_invariant(np.float32):
            np.testing.assert_array_equal(Z, X @ Y)
        for steps in (0, 1, 2, 3):
            for nt in (1, 2):
                prod = ph._RowsProduct(X, Y)
                for _ in range(steps):
                    if not prod.step():
                        break
                np.testing.assert_array_equal(prod.finish(nt), Z)
                assert not prod.step()
    for t in (54, 83):
        with threadpool_limits(1, user_api="blas"):
            ref = ph._SymPowers(S, 1, np.float32).power(t)
        R = np.linalg.matrix_power(S.toarray(), t)
        assert np.abs(ref - R).max() <= 1e-5 * np.abs(R).max()
        for nt in (1, 2):
            for budget in (0, 2, 100):
                pw = ph._SymPowers(S, nt, np.float32, nt)
                calls = []  # stop() true from its call number budget + 1 on

                def stop(calls=calls, budget=budget):
                    calls.append(0)
                    return len(calls) > budget

                with threadpool_limits(1, user_api="blas"):
                    pw.grow(6)
                    pw.speculate(stop, 98)
                    if budget:
                        assert pw.ahead and all(len(k) == 2 for k in pw.ahead)
                    np.testing.assert_array_equal(pw.power(t), ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_phate_potential_is_log_of_operator_power(seed):
    """The potential equals -log(P^t + 1e-7) of the stored operator: to rounding without
    landmarks (float64 SYRK powers of the symmetric conjugate), to single precision with
    them (float32 powers)."""
    X, _ = swiss_roll(500, seed=seed)
    for n_lm, tol in ((None, 1e-10), (120, 1e-4)):
        est = geoml.PHATE(n_landmark=n_lm, random_state=seed, t=20).fit(X)
        P = est.diff_op_.toarray() if sp.issparse(est.diff_op_) else est.diff_op_
        ref = -np.log(np.linalg.matrix_power(P, 20) + 1e-7)
        assert np.abs(est.potential_ - ref).max() <= tol


def test_kmeans_assign_is_nearest_centre():
    from geoml.diffusion._phate import _assign

    rng = np.random.default_rng(0)
    F = rng.standard_normal((3001, 7)).astype(np.float32)
    C = rng.standard_normal((50, 7)).astype(np.float32)
    D = ((F.astype(np.float64)[:, None] - C[None].astype(np.float64)) ** 2).sum(-1)
    srt = np.sort(D, axis=1)
    clear = srt[:, 1] - srt[:, 0] > 1e-4  # rows whose nearest centre is not a float32 tie
    for block in (1, 256, 1024, 5000):
        lab = _assign(F, C, block)
        np.testing.assert_array_equal(lab[clear], D.argmin(1)[clear])


def test_kmeans_reassign_after_moved_centres_matches_full_assignment():
    """Lloyd's step that scores only the moved centres (and the rows whose own centre moved
    against all) gives the full assignment's labels and scores, ties included."""
    from geoml.diffusion._phate import _centre_terms, _nearest, _reassign

    rng = np.random.default_rng(1)
    # integer-valued data: many exact score ties between centres
    F = rng.integers(-3, 4, (2000, 5)).astype(np.float32)
    C = rng.integers(-3, 4, (60, 5)).astype(np.float32)
    lab, best = _nearest(F, *_centre_terms(C, F.dtype)[::-1])
    for step in range(4):
        moved = np.sort(rng.choice(60, size=[1, 7, 30, 59][step], replace=False))
        C = C.copy()
        C[moved] += rng.integers(-1, 2, (moved.size, 5)).astype(np.float32)
        got = _reassign(F, C, lab, best, moved)
        lab, best = _nearest(F, *_centre_terms(C, F.dtype)[::-1])
        np.testing.assert_array_equal(got[0], lab)
        np.testing.assert_array_equal(got[1], best)
        D = ((F[:, None].astype(np.float64) - C[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(lab, D.argmin(1))  # exact in float32 here


def _blobs(rng, k, per, dim, spread):
    """``k`` clusters of ``per`` float32 points around random centres, the centres after
    one Lloyd update from random members (a second step's problem)."""
    mu = rng.standard_normal((k, dim))
    F = (np.repeat(mu, per, axis=0) + spread * rng.standard_normal((k * per, dim))).astype(
        np.float32
    )
    C = F[rng.choice(F.shape[0], k, replace=False)]
    return F, C


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_pruned_assignment_matches_full(seed):
    """The pruned Lloyd assignment (each row scored only against the centres within
    ``2 u + tau`` of its previous centre) gives the full assignment's labels: on clustered
    data (most rows pruned, a few far ones scored against all centres), on integer data with
    exact score ties (the lower index wins, the same scores), and on data without clusters
    (the fallback); the same bits on one and two threads; the nearest centre of a float64
    reference wherever it is not a float32 near-tie."""
    from geoml.diffusion._phate import _centre_terms, _nearest, _nearest_pruned

    rng = np.random.default_rng(seed)
    cases = [
        _blobs(rng, 300, 12, 20, 0.05),  # clustered: pruning does the work
        _blobs(rng, 300, 12, 20, 0.3),  # overlapping clusters
        (rng.standard_normal((1500, 30)).astype(np.float32),) * 2,  # no clusters: fallback
    ]
    cases[2] = (cases[2][0], cases[2][0][rng.choice(1500, 200, replace=False)])
    Fi = rng.integers(-3, 4, (2000, 5)).astype(np.float32)  # exact scores, many ties
    cases.append((Fi, rng.integers(-3, 4, (60, 5)).astype(np.float32)))
    for F, C0 in cases:
        lab0 = _nearest(F, *_centre_terms(C0, F.dtype)[::-1])[0]
        # one Lloyd update: the centres move, the previous labels are the pruning's start
        C = np.array([F[lab0 == j].mean(0) if (lab0 == j).any() else C0[j] for j in range(len(C0))])
        C = C.astype(np.float32)
        ref = _nearest(F, *_centre_terms(C, F.dtype)[::-1])
        for block in (1024, 97):
            got = _nearest_pruned(F, C, lab0, block=block)
            np.testing.assert_array_equal(got[0], ref[0])
            two = _nearest_pruned(F, C, lab0, block=block, nt=2)
            np.testing.assert_array_equal(two[0], got[0])
            np.testing.assert_array_equal(two[1], got[1])
        if F is Fi:  # integer data: every score exact, so the same scores too
            np.testing.assert_array_equal(got[1], ref[1])
        D = ((F[:, None].astype(np.float64) - C[None].astype(np.float64)) ** 2).sum(-1)
        srt = np.sort(D, axis=1)
        clear = srt[:, 1] - srt[:, 0] > 1e-4 * (1 + srt[:, 0])
        assert clear.mean() > 0.5
        np.testing.assert_array_equal(got[0][clear], D.argmin(1)[clear])


def test_kmeans_pruned_assignment_scores_far_rows_against_all():
    """A row whose previous centre is far (its radius covers most centres) and centres that
    moved across each other: still the full assignment's labels."""
    from geoml.diffusion._phate import _centre_terms, _nearest, _nearest_pruned

    rng = np.random.default_rng(5)
    F, C = _blobs(rng, 200, 10, 8, 0.02)
    lab = _nearest(F, *_centre_terms(C, F.dtype)[::-1])[0]
    lab[:40] = rng.integers(0, 200, 40)  # stale labels: far from their rows
    C2 = C.copy()
    C2[:10] = C[10:20]  # centres swapped: the rows' previous centres moved far
    C2[10:20] = C[:10]
    ref = _nearest(F, *_centre_terms(C2, F.dtype)[::-1])[0]
    np.testing.assert_array_equal(_nearest_pruned(F, C2, lab)[0], ref)
    assert (ref != lab).sum() >= 100


def _kmeanspp_reference(X, first, u):
    """Greedy k-means++ in float64 NumPy from the same draws (as scikit-learn's)."""
    X = X.astype(np.float64)
    m = X.shape[0]
    closest = ((X - X[first]) ** 2).sum(1)
    idx = [first]
    for uc in u:
        pot = closest.sum()
        if pot > 0:
            cand = np.minimum(np.searchsorted(np.cumsum(closest), uc * pot), m - 1)
        else:
            cand = np.minimum((uc * m).astype(np.int64), m - 1)
        D = np.minimum(((X[cand][:, None, :] - X[None]) ** 2).sum(-1), closest)
        best = int(np.argmin(D.sum(1)))
        idx.append(int(cand[best]))
        closest = D[best]
    return np.array(idx)


@pytest.mark.parametrize("m, d, k", [(1000, 5, 40), (64, 3, 64), (130, 16, 7), (1, 2, 1)])
def test_kmeanspp_matches_reference_and_threads(m, d, k):
    """The C++ greedy k-means++ seeds equal a float64 NumPy reference given the same draws
    (integer coordinates: every distance and sum exact in both), for any thread count and from
    a thread pool (the same bits: fixed block sums)."""
    from concurrent.futures import ThreadPoolExecutor

    from geoml import _core

    rng = np.random.default_rng(m + d + k)
    X = rng.integers(-50, 50, (m, d)).astype(np.float32)
    first = int(rng.integers(m))
    u = rng.random((k - 1, 2 + int(np.log(k))))
    ref = _kmeanspp_reference(X, first, u)
    for isa in ("generic", "avx2", "auto"):  # every ISA copy (those the CPU has)
        try:
            _core.set_simd_isa(isa)
            got = _core.kmeanspp(X, first=first, u=u, n_jobs=1)
        except (RuntimeError, ValueError):
            continue  # an ISA this CPU lacks
        finally:
            _core.set_simd_isa("auto")
        np.testing.assert_array_equal(got, ref)
    for nt in (2, 3):
        np.testing.assert_array_equal(_core.kmeanspp(X, first=first, u=u, n_jobs=nt), ref)
    with ThreadPoolExecutor(3) as ex:
        outs = list(ex.map(lambda nt: _core.kmeanspp(X, first=first, u=u, n_jobs=nt), [1, 2, 2]))
    for o in outs:
        np.testing.assert_array_equal(o, ref)


def test_kmeanspp_duplicates_and_bad_input():
    from geoml import _core

    X = np.zeros((100, 4), np.float32)  # all distances 0: candidates drawn uniformly
    u = np.random.default_rng(0).random((9, 4))
    idx = _core.kmeanspp(X, first=3, u=u, n_jobs=1)
    np.testing.assert_array_equal(idx, _kmeanspp_reference(X, 3, u))
    with pytest.raises(ValueError, match="1 <= k <= m"):
        _core.kmeanspp(X[:5], first=0, u=u, n_jobs=1)  # k = 10 > m = 5
    with pytest.raises(ValueError, match="first < m"):
        _core.kmeanspp(X, first=100, u=u, n_jobs=1)
    with pytest.raises(ValueError, match="trials >= 1"):
        _core.kmeanspp(X, first=0, u=np.empty((9, 0)), n_jobs=1)


@pytest.mark.parametrize("k", [1, 5, 16, 17, 40, 333])
def test_argmin_shifted_matches_numpy(k):
    """``_core.argmin_shifted`` (one pass: shift, argmin, minimum) gives NumPy's
    ``g += cn; argmin; gather`` on every ISA copy: first index on ties (integer scores, many
    ties), infinities, and the first NaN where a row has one."""
    from geoml import _core

    rng = np.random.default_rng(k)
    G = rng.integers(-4, 5, (97, k)).astype(np.float32)
    cn = rng.integers(0, 3, k).astype(np.float32)
    G[3] = np.inf
    G[5, k // 2] = -np.inf
    G[7, k - 1] = np.nan
    G[8, :: max(1, k // 3)] = np.nan
    cn_inf = cn.copy()
    cn_inf[0] = np.inf  # -inf + inf = nan in row 5 when k // 2 == 0
    for c in (cn, cn_inf):
        with np.errstate(invalid="ignore"):
            g = G + c
        ref_lab = np.argmin(g, axis=1)
        ref_best = g[np.arange(97), ref_lab]
        for isa in ("generic", "avx2", "auto"):
            try:
                _core.set_simd_isa(isa)
                lab, best = np.empty(97, np.int64), np.empty(97, np.float32)
                _core.argmin_shifted(G, c, lab, best)
            except (RuntimeError, ValueError):
                continue  # an ISA this CPU lacks
            finally:
                _core.set_simd_isa("auto")
            np.testing.assert_array_equal(lab, ref_lab)
            np.testing.assert_array_equal(best, ref_best)
    with pytest.raises(ValueError, match="argmin_shifted"):
        _core.argmin_shifted(G, cn[:-1], np.empty(97, np.int64), np.empty(97, np.float32))
    with pytest.raises(ValueError, match="argmin_shifted"):
        _core.argmin_shifted(G, cn, np.empty(96, np.int64), np.empty(97, np.float32))


def test_kmeanspp_progress_buffers():
    """With ``seeds`` and ``count`` the seeding stores every seed as it is chosen and their
    number; both or neither, of the right shape."""
    from geoml import _core

    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 6)).astype(np.float32)
    u = rng.random((39, 5))
    ref = _core.kmeanspp(X, first=7, u=u, n_jobs=1)
    buf, count = np.full(40, -1, np.int64), np.full(1, -5, np.int64)
    got = _core.kmeanspp(X, first=7, u=u, n_jobs=2, seeds=buf, count=count)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(buf, ref)
    assert count[0] == 40
    with pytest.raises(ValueError, match="both seeds and count"):
        _core.kmeanspp(X, first=7, u=u, seeds=buf)
    with pytest.raises(ValueError, match="seeds must be"):
        _core.kmeanspp(X, first=7, u=u, seeds=buf[:-1], count=count)
    with pytest.raises(ValueError, match="count must be"):
        _core.kmeanspp(X, first=7, u=u, seeds=buf, count=count.astype(np.int32))


@pytest.mark.parametrize("chunk", [64, 128, 1024])
def test_nearest_as_seeded_matches_one_assignment(chunk):
    """The first Lloyd assignment scored block by block while the seeding runs (in a worker)
    gives the labels and scores of one assignment against all centres, ties included."""
    from concurrent.futures import ThreadPoolExecutor

    from geoml.diffusion._phate import _centre_terms, _kmeanspp, _nearest, _nearest_as_seeded

    rng = np.random.default_rng(chunk)
    S = rng.integers(-3, 4, (3000, 12)).astype(np.float32)  # many exact score ties
    cand = S[rng.choice(3000, 900, replace=False)]
    proj = cand @ rng.standard_normal((12, 4)).astype(np.float32)
    for pool_nt in (1, 2):
        buf, count = np.zeros(300, np.int64), np.zeros(1, np.int64)
        with ThreadPoolExecutor(1) as ex:
            fut = ex.submit(_kmeanspp, proj, 300, np.random.default_rng(1), 1, buf, count)
            lab, best, seeds = _nearest_as_seeded(S, cand, buf, pool_nt, fut, count, chunk)
        np.testing.assert_array_equal(seeds, _kmeanspp(proj, 300, np.random.default_rng(1)))
        cn, C2 = _centre_terms(cand[seeds], S.dtype)
        ref_lab, ref_best = _nearest(S, C2, cn)  # (integer scores: exact in any order)
        np.testing.assert_array_equal(lab, ref_lab)
        np.testing.assert_array_equal(best, ref_best)
        # the seeds known in advance (one thread's path): the same blocks, the same bits
        lab1, best1, _ = _nearest_as_seeded(S, cand, seeds, 1, chunk=chunk)
        np.testing.assert_array_equal(lab1, lab)
        np.testing.assert_array_equal(best1, best)


@pytest.mark.parametrize("n", [1, 2, 7, 1001])
def test_tgram_halves_match_numpy(n):
    """``Y^T Y`` and ``Y^T Z`` as the sum of the row halves' products: within rounding of
    NumPy's, ``Y^T Y`` exactly symmetric, the same bits on one and two threads."""
    from geoml.diffusion._phate import _tgram

    rng = np.random.default_rng(n)
    Y, Z = rng.standard_normal((n, 13)), rng.standard_normal((n, 13))
    for other in (None, Z):
        ref = Y.T @ (Y if other is None else other)
        got = _tgram(Y, other, pool_nt=1)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))
        np.testing.assert_array_equal(_tgram(Y, other, pool_nt=2), got)
    G = _tgram(Y)
    np.testing.assert_array_equal(G, G.T)


def test_spectral_features_rcm_order_matches_data_order():
    """The landmark features computed in RCM order equal the same subspace iteration in the
    data order (pairwise feature distances to float32 rounding), bit for bit on 1 and 2
    threads."""
    from geoml.diffusion._phate import _orth, _phate_kernel, _spectral_features

    X, _ = swiss_roll(1200, seed=3)
    K = _phate_kernel(X, 5, 40)
    d = np.asarray(K.sum(1)).ravel()
    F = _spectral_features(K, d, 20, np.random.default_rng(7), 1)
    # reference: the same steps in the data order
    rng = np.random.default_rng(7)
    r = d**-0.5
    A = sp.csr_matrix(sp.diags(r) @ K @ sp.diags(r))
    Q = _orth(A @ rng.standard_normal((1200, 30)))
    for _ in range(7):
        Q = _orth(A @ (A @ Q))
    w, U = np.linalg.eigh(Q.T @ (A @ Q))
    V = Q @ U[:, np.argsort(-np.abs(w))[:20]]
    R = (K @ V) / d[:, None]
    assert F.shape == (1200, 20) and F.dtype == np.float32
    DF, DR = pdist(F.astype(np.float64)), pdist(R)
    assert np.abs(DF - DR).max() <= 1e-5 * DR.max()
    # the tall GEMMs as row halves on a pool: the same bits as on one thread
    F2 = _spectral_features(K, d, 20, np.random.default_rng(7), 2, pool_nt=2)
    np.testing.assert_array_equal(F2, F)


@pytest.mark.parametrize("sample, k", [(50, 60), (2, 60), (50, 600)])  # all rows / a
# subsample (n > sample k) / centres in several blocks of the first assignment (_SEED_CHUNK)
def test_kmeans_seeds_from_lazy_features(sample, k):
    """The features' rows computed on their own equal the full computation's, bit for bit,
    and k-means seeded from them beside the rest (two threads) gives the labels and the
    generator state of k-means on the full array, on one and two threads."""
    from geoml.diffusion._phate import _kmeans, _phate_kernel, _spectral_features

    X, _ = swiss_roll(1500, seed=4)
    K = _phate_kernel(X, 5, 40)
    d = np.asarray(K.sum(1)).ravel()
    lazy = _spectral_features(K, d, 20, np.random.default_rng(7), 2, lazy=True)
    F = lazy.full()
    ix = np.random.default_rng(0).choice(1500, 300, replace=False)
    np.testing.assert_array_equal(lazy.rows(ix), F[ix])
    ref_rng = np.random.default_rng(5)
    ref = _kmeans(F, k, ref_rng, sample=sample, nt=1, pool_nt=1)
    for nt in (1, 2):
        rng = np.random.default_rng(5)
        np.testing.assert_array_equal(_kmeans(lazy, k, rng, sample=sample, nt=nt, pool_nt=nt), ref)
        assert rng.bit_generator.state == ref_rng.bit_generator.state


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classical_start_matches_classical_mds(seed):
    """PHATE's classical MDS start by block subspace iteration equals classical_mds (Lanczos)
    on Euclidean row distances, and gives up (None: classical_mds runs) when the spectrum is
    too flat to converge in its iterations."""
    from scipy.spatial.distance import cdist

    from geoml.diffusion import classical_mds
    from geoml.diffusion._phate import _classical_start

    rng = np.random.default_rng(seed)
    P = rng.standard_normal((400, 30)) * np.geomspace(5.0, 0.05, 30)
    D = cdist(P, P)
    Y, w = classical_mds(D, 2, random_state=0)
    Y2, w2 = _classical_start(D, 2, np.random.default_rng(seed))
    np.testing.assert_allclose(w2, w, rtol=1e-12)
    np.testing.assert_allclose(Y2, Y, atol=1e-8 * np.abs(Y).max())
    flat = rng.standard_normal((400, 60))  # eigenvalues within a few per cent of each other
    assert _classical_start(cdist(flat, flat), 2, rng, max_iter=5) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_potential_distances_and_centred_gram(seed):
    """PHATE's distances between potential rows and the Gram matrix of the centred rows (its
    classical start's -1/2 J D^2 J) from one GEMM: cdist and the double centring of D^2,
    exactly symmetric with a zero diagonal; the start from that Gram equals the start from D."""
    from scipy.spatial.distance import cdist

    from geoml.diffusion._phate import _classical_start, _potential_distances

    rng = np.random.default_rng(seed)
    P = 10.0 + rng.standard_normal((300, 40)) * np.geomspace(5.0, 0.05, 40)
    D, B = _potential_distances(P)
    ref = cdist(P, P)
    np.testing.assert_allclose(D, ref, rtol=1e-10, atol=1e-12 * ref.max())
    assert np.array_equal(D, D.T) and np.array_equal(B, B.T) and not np.diagonal(D).any()
    J = np.eye(300) - 1.0 / 300
    np.testing.assert_allclose(B, -0.5 * J @ (ref**2) @ J, atol=1e-10 * np.abs(B).max())
    Y, w = _classical_start(ref, 2, np.random.default_rng(0))
    Y2, w2 = _classical_start(D, 2, np.random.default_rng(0), B=B)
    np.testing.assert_allclose(w2, w, rtol=1e-12)
    np.testing.assert_allclose(Y2, Y, atol=1e-8 * np.abs(Y).max())
    # the float32 copy SMACOF iterates on with landmarks: D rounded, in the same pass
    D2, B2, D32 = _potential_distances(P, 2, f32=True)
    np.testing.assert_array_equal(D2, D)
    np.testing.assert_array_equal(B2, B)
    assert D32.dtype == np.float32
    np.testing.assert_array_equal(D32, D.astype(np.float32))


def test_smacof_on_float32_distances_reports_float64_stress():
    """SMACOF iterating on the float32-rounded dissimilarities (PHATE with landmarks) ends
    within float32 accuracy of the float64 run, and the stress it reports is the float64
    dissimilarities' (a NumPy reference); a landmark fit's stress is at most its classical
    start's."""
    from geoml.diffusion._phate import _classical_start

    rng = np.random.default_rng(3)
    X = rng.standard_normal((250, 5)) * [4.0, 2.0, 1.0, 0.5, 0.25]
    D = squareform(pdist(X))
    Y0 = _classical_start(D, 2, np.random.default_rng(0))[0]
    mds = geoml.MDS(2, init=Y0, dissimilarity="precomputed")
    args = (D, 2, 300, 1e-6, np.random.default_rng(0), 0, 1)
    Ya, sa, _, ca = mds._embed(*args, relax=True)
    Yb, sb, _, cb = mds._embed(*args, relax=True, D_iter=D.astype(np.float32))
    assert ca and cb
    d = pdist(Yb)
    assert sb == pytest.approx(float(((d - squareform(D, checks=False)) ** 2).sum()), rel=1e-12)
    assert sb == pytest.approx(sa, rel=1e-6)
    np.testing.assert_allclose(Yb, Ya, atol=1e-4 * np.abs(Ya).max())
    Xl, _ = swiss_roll(1500, seed=1)
    est = geoml.PHATE(n_landmark=100, random_state=0).fit(Xl)
    Dl = est.distances_
    Yc = _classical_start(Dl, 2, np.random.default_rng(0))[0]
    assert est.stress_ <= float(((pdist(Yc) - squareform(Dl, checks=False)) ** 2).sum())


# transform: out-of-sample points ------------------------------------------------------------


def _graphtools_transitions(monkeypatch, X, Y, knn, decay, graphtype):
    """graphtools' ``extend_to_data`` (its NumPy float64 kernel: the numba one rounds the
    scaled distances to float32)."""
    graphtools = pytest.importorskip("graphtools")
    monkeypatch.setattr(pytest.importorskip("graphtools.graphs"), "NUMBA_AVAILABLE", False)
    G = graphtools.Graph(
        X, knn=knn, decay=decay, thresh=1e-4, n_pca=None, graphtype=graphtype, random_state=0
    )
    T = sp.csr_matrix(G.extend_to_data(Y))
    T.eliminate_zeros()
    return T


@pytest.mark.parametrize(
    ("seed", "knn", "decay", "graphtype"),
    [(0, 5, 40.0, "knn"), (1, 3, 40.0, "exact"), (2, 10, 40.0, "knn"), (3, 5, 4.0, "exact")],
)
def test_transitions_match_graphtools_extend_to_data(monkeypatch, seed, knn, decay, graphtype):
    """The out-of-sample transitions are graphtools' (same kernel, bandwidths, 1e-4 threshold,
    l1 rows); decay=4 keeps wide rows (the search widens)."""
    from geoml.diffusion._heatgeo import _alpha_decay_to_data

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 4))
    Y = np.vstack([rng.standard_normal((40, 4)), X[:5] + 1e-3, 3 * rng.standard_normal((5, 4))])
    T_ref = _graphtools_transitions(monkeypatch, X, Y, knn, decay, graphtype)
    T, same = _alpha_decay_to_data(X, Y, knn, decay, None)
    assert T.shape == (Y.shape[0], X.shape[0]) and T.dtype == np.float64
    assert (T != 0).nnz == T_ref.nnz and abs((T != 0) - (T_ref != 0)).nnz == 0
    assert abs(T - T_ref).max() <= 1e-12
    np.testing.assert_allclose(np.asarray(T.sum(axis=1)).ravel(), 1.0, rtol=1e-12)
    if decay == 4.0:
        assert T.getnnz(axis=1).max() > max(3 * knn, 32)  # rows wider than the first search
    assert (same == -1).all()
    # rows equal to fitted points are found (the lowest index among duplicates)
    Xd = np.vstack([X, X[7]])
    _, same = _alpha_decay_to_data(Xd, np.vstack([X[[3, 7]], Y[:1]]), knn, decay, None)
    assert same.tolist() == [3, 7, -1]


@pytest.mark.parametrize("n_landmark", [None, 60])
def test_transform_new_points_match_graphtools_interpolate(monkeypatch, n_landmark):
    """PHATE.transform of new points is phate's: graphtools' transitions times the embedding
    (without landmarks), or the transitions summed per landmark times the landmarks'
    embedding (phate's LandmarkGraph.extend_to_data + interpolate)."""
    X, _ = swiss_roll(300, seed=1)
    rng = np.random.default_rng(2)
    Y = X[rng.choice(300, 30, replace=False)] + 0.3 * rng.standard_normal((30, 3))
    est = geoml.PHATE(knn=5, n_landmark=n_landmark, random_state=0).fit(X)
    T = _graphtools_transitions(monkeypatch, X, Y, 5, 40.0, "knn")
    if n_landmark is None:
        ref = T @ est.embedding_
    else:
        assert est.clusters_ is not None
        m = int(est.clusters_.max()) + 1
        C = sp.csr_matrix((np.ones(300), (np.arange(300), est.clusters_)), shape=(300, m))
        pnm = (T @ C).toarray()
        pnm /= pnm.sum(axis=1, keepdims=True)
        # the landmarks' embedding, recovered from embedding_ = transitions_ @ Y_m
        Y_m = np.linalg.lstsq(est.transitions_.toarray(), est.embedding_, rcond=None)[0]
        ref = pnm @ Y_m
    Z = est.transform(Y)
    assert Z.shape == (30, 2) and Z.dtype == np.float64
    np.testing.assert_allclose(Z, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_transform_fitted_data_and_rows():
    """transform(fitted X) is a copy of embedding_ (= fit_transform); rows equal to fitted
    points get their rows (subsets and permutations agree); new points near a fitted point
    land near its neighbours' positions; deterministic."""
    X, _ = swiss_roll(300, seed=3)
    est = geoml.PHATE(knn=5, n_landmark=None, random_state=0)
    E = est.fit_transform(X.copy())
    Z = est.transform(X)
    assert np.array_equal(Z, E) and Z is not est.embedding_
    Z[0] = 1e9  # a copy: embedding_ unchanged
    assert est.embedding_[0, 0] != 1e9
    assert np.array_equal(est.transform(X.tolist()), E)
    assert np.array_equal(est.transform(X[[5, 2, 9]]), E[[5, 2, 9]])
    perm = np.random.default_rng(0).permutation(300)
    assert np.array_equal(est.transform(X[perm]), E[perm])
    # a point between a fitted point and its nearest neighbour lands near both: within the
    # embedded radius of the point's 5 nearest neighbours (measured: median 0.21 of it)
    D = squareform(pdist(X))
    np.fill_diagonal(D, np.inf)
    Y = 0.5 * (X + X[D.argmin(axis=1)])
    Z = est.transform(Y)
    gap = np.linalg.norm(Z - E, axis=1)
    rad = np.linalg.norm(E[np.argsort(D, axis=1)[:, :5]] - E[:, None], axis=2).max(axis=1)
    assert (gap <= rad).all() and np.median(gap / rad) < 0.4
    assert np.array_equal(est.transform(Y), Z)  # deterministic
    for nj in (1, 2):  # the same bits for any thread count
        assert np.array_equal(est.set_params(n_jobs=nj).transform(Y), Z)
    # far from the data: still inside the embedding's bounding box (a weighted mean)
    far = est.transform(X[:3] + 50.0)
    assert (far >= E.min(axis=0) - 1e-12).all() and (far <= E.max(axis=0) + 1e-12).all()


def test_transform_float32():
    X, _ = swiss_roll(300, seed=4)
    Y = X[:20] + 0.1
    e64 = geoml.PHATE(knn=5, n_landmark=None, random_state=0).fit(X)
    e32 = geoml.PHATE(knn=5, n_landmark=None, random_state=0).fit(X.astype(np.float32))
    assert np.array_equal(e32.transform(X.astype(np.float32)), e32.embedding_)
    Z32 = e32.transform(Y.astype(np.float32))
    assert Z32.dtype == np.float64
    # float32 data, float64 queries: the queries in the fitted dtype
    np.testing.assert_array_equal(e32.transform(Y), Z32)
    np.testing.assert_allclose(Z32, e64.transform(Y), atol=1e-3 * np.ptp(e64.embedding_))


def test_transform_bad_input_and_precomputed():
    X, _ = swiss_roll(200, seed=5)
    est = geoml.PHATE(knn=5, n_landmark=None, random_state=0)
    with pytest.raises(geoml.NotFittedError, match="not fitted"):
        est.transform(X)
    est.fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but PHATE is expecting 3"):
        est.transform(X[:, :2])
    Y = X[:4].copy()
    Y[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(Y)
    with pytest.raises(ValueError, match="2-D"):
        est.transform(X[0])
    with pytest.raises(TypeError, match="sparse"):
        est.transform(sp.csr_matrix(X))
    # the fit's data stays the fit's: changing the caller's array after fit changes nothing
    X2 = X.copy()
    est2 = geoml.PHATE(knn=5, n_landmark=None, random_state=0).fit(X2)
    X2 += 1.0
    assert np.array_equal(est2.transform(X), est.embedding_)
    # a precomputed kernel: the fitted one only
    K = alpha_decay_graph(X, 5) + sp.identity(200, format="csr")
    pre = geoml.PHATE(affinity="precomputed", n_landmark=None, random_state=0).fit(K)
    assert np.array_equal(pre.transform(K), pre.embedding_)
    assert np.array_equal(pre.transform(K.toarray()), pre.embedding_)
    with pytest.raises(ValueError, match="precomputed affinity matrix: transform accepts"):
        pre.transform(K * 2.0)
    with pytest.raises(ValueError, match="square"):
        pre.transform(K[:10])


def test_phate_landmarks_on_duplicate_points_fit():
    """k-means stops when no centre moved (duplicate points can trade identical centres
    while no centre moves): PHATE(knn=1, n_landmark=5) on 6 points with duplicates raised an
    internal ValueError from the empty rescoring of the moved centres for most seeds."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(6, 3))
        X[rng.integers(0, 6, 2)] = X[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (tiny-data warnings are not the subject)
            Y = geoml.PHATE(knn=1, n_landmark=5, random_state=seed).fit_transform(X)
        assert Y.shape == (6, 2) and np.isfinite(Y).all()


def test_phate_landmarks_of_few_distinct_points():
    """Data with fewer distinct points than n_components + 1 gives k-means fewer distinct
    landmarks than that: m landmarks span m - 1 dimensions, the other columns are 0 (with a
    warning), as without landmarks. PHATE(n_landmark=10) of 50 equal points raised
    "n_components=2 is out of range [1, 1] (there are 1 points)" from the landmarks' MDS
    (and of 2 distinct points "[1, 1] (there are 2 points)"), where n_landmark=None embeds
    them."""
    for X, m in ((np.ones((50, 3)), 1), (np.repeat(np.eye(3)[:2], 25, axis=0), 2)):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "the graph has 2 connected", RuntimeWarning)
            with pytest.warns(RuntimeWarning, match=f"found {m} distinct landmark"):
                est = geoml.PHATE(n_components=3, n_landmark=10, random_state=0).fit(X)
        Y = est.embedding_
        assert Y.shape == (50, 3) and np.isfinite(Y).all()
        assert est.potential_.shape == (m, m)
        assert (Y[:, m - 1 :] == 0).all()  # the columns beyond the landmarks' span
        if m == 2:  # the two groups apart, each at one place
            first, second = Y[0], Y[-1]
            assert (Y[:25] == first).all() and (Y[25:] == second).all()
            assert abs(first[0] - second[0]) > 0
        else:
            assert (Y == 0).all() and est.stress_ == 0 and est.n_iter_ == 0
        assert est.transform(X[:3] + 0.1).shape == (3, 3)
    # as many distinct landmarks as the components need: no warning, the embedding unchanged
    X = np.repeat(np.eye(3), 20, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "the graph has 3 connected", RuntimeWarning)
        Y = geoml.PHATE(n_components=2, n_landmark=10, random_state=0).fit_transform(X)
    assert Y.shape == (60, 2) and np.isfinite(Y).all() and (np.abs(Y).max(axis=0) > 0).all()


# decay=None: phate's kernel without alpha decay -----------------------------------------


def test_decay_none_matches_phate_package():
    """PHATE(decay=None) is phate's: graphtools' plain kNN kernel (``kneighbors_graph`` of
    knn + 1 points with the point itself, (K + K^T) / 2: 1 on the diagonal and between
    mutual neighbours, 1/2 between one-sided ones), the same t, potential and distances to
    1e-6 relative; new points get 1/knn on their knn nearest fitted points (graphtools'
    extend_to_data). It raised "decay must be a positive number; got None"."""
    phate = pytest.importorskip("phate")
    from threadpoolctl import threadpool_limits

    X, _ = swiss_roll(400, seed=5)
    ref = phate.PHATE(decay=None, knn=5, n_landmark=None, n_pca=None, verbose=0, random_state=0)
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore")
        ref.fit_transform(X)
    K_ref = sp.csr_matrix(ref.graph.kernel)
    assert set(np.unique(K_ref.data)) == {0.5, 1.0}  # the 0/1 kernel, symmetrised
    est = geoml.PHATE(decay=None, knn=5, n_landmark=None, random_state=0).fit(X)
    K = est.affinity_matrix_
    assert K.nnz == K_ref.nnz and abs(K - K_ref).max() == 0
    np.testing.assert_allclose(est.diff_op_.toarray(), ref.diff_op, rtol=1e-12)
    assert est.t_ == ref.optimal_t
    pot_ref = ref._calculate_potential()
    assert _rel(est.potential_, pot_ref) <= 1e-6
    assert _rel(est.distances_, squareform(pdist(pot_ref))) <= 1e-6
    # new points: graphtools' transitions of the kNN graph (1/knn on knn neighbours)
    rng = np.random.default_rng(3)
    Y = X[rng.choice(400, 20, replace=False)] + 0.3 * rng.standard_normal((20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T_ref = sp.csr_matrix(ref.graph.extend_to_data(Y))
    T_ref = sp.csr_matrix(T_ref.multiply(1.0 / np.asarray(T_ref.sum(axis=1))))
    assert T_ref.getnnz(axis=1).tolist() == [5] * 20
    np.testing.assert_allclose(est.transform(Y), T_ref @ est.embedding_, rtol=1e-12, atol=1e-12)
    # with landmarks it runs on the same kernel
    lm = geoml.PHATE(decay=None, knn=5, n_landmark=60, random_state=0).fit(X)
    assert abs(lm.affinity_matrix_ - K_ref).max() == 0 and lm.embedding_.shape == (400, 2)


@pytest.mark.parametrize("knn", [1, 4, 12])
def test_decay_none_graph_is_graphtools_knn_kernel(knn):
    """alpha_decay_graph(decay=None) is graphtools' kNNGraph kernel with decay=None, less its
    unit diagonal (heatgeo's pygsp graph); HeatGeo(decay=None) builds it."""
    graphtools = pytest.importorskip("graphtools")
    X = np.random.default_rng(knn).standard_normal((150, 4))
    G = graphtools.Graph(X, knn=knn, decay=None, n_pca=None, random_state=0)
    K_ref = sp.csr_matrix(G.kernel)
    assert (K_ref.diagonal() == 1).all()
    W_ref = sp.csr_matrix(K_ref - sp.identity(150, format="csr"))
    W_ref.eliminate_zeros()
    for X_in in (X, X.astype(np.float32)):
        W = alpha_decay_graph(X_in, knn, None)
        assert W.dtype == X_in.dtype and W.diagonal().max() == 0
        assert W.nnz == W_ref.nnz and abs(W - W_ref).max() == 0
    # an approximate search on this small set finds the exact neighbours
    W = alpha_decay_graph(X, knn, None, method="nndescent", random_state=0)
    assert abs(W - W_ref).max() == 0
    with warnings.catch_warnings():  # (knn = 1: several components, warned)
        warnings.filterwarnings("ignore", "the graph has", RuntimeWarning)
        hg = geoml.HeatGeo(n_neighbors=knn, decay=None, mds="classical", random_state=0).fit(X)
    assert abs(hg.affinity_matrix_ - W_ref).max() == 0
    Z = hg.transform(X[:5] + 0.05)  # 1/knn on the knn nearest fitted points
    from geoml import knn as nearest

    idx, _ = nearest(X, knn, Y=X[:5] + 0.05, exclude_self=False)
    np.testing.assert_allclose(Z, hg.embedding_[idx].mean(axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", ["abc", "40", [40], 1j, True])
def test_non_numeric_decay_t_max_and_harnack_say_so(bad):
    """A non-numeric decay / t_max / harnack_regularization: a TypeError naming the parameter
    (float() said "could not convert string to float: 'abc'", or accepted "40")."""
    from geoml.diffusion import heat_entropy_time, heat_geodesic_distances

    X = np.random.default_rng(0).standard_normal((40, 3))
    W = alpha_decay_graph(X, 5)
    for call in (
        lambda: geoml.PHATE(decay=bad).fit(X),
        lambda: geoml.HeatGeo(decay=bad).fit(X),
        lambda: alpha_decay_graph(X, 5, bad),
        lambda: geoml.knn_graph(X, 5, kernel="alpha_decay", decay=bad),
    ):
        with pytest.raises(TypeError, match="decay must be a positive number"):
            call()
    with pytest.raises(TypeError, match=r"t_max must be a number > 0.05"):
        heat_entropy_time(W, t_max=bad)
    with pytest.raises(TypeError, match=r"harnack_regularization must be a number in \[0, 1\]"):
        heat_geodesic_distances(W, 1.0, harnack_regularization=bad)
    with pytest.raises(TypeError, match=r"harnack_regularization must be a number in \[0, 1\]"):
        geoml.HeatGeo(harnack_regularization=bad).fit(X)
    with pytest.raises(TypeError, match="t_max must be an integer"):
        geoml.PHATE(t_max=bad).fit(X)
    # numbers of any real type still work; None is accepted only where it has a meaning
    assert alpha_decay_graph(X, 5, np.float32(40)).nnz == W.nnz
    assert heat_entropy_time(W, t_max=np.int64(20))[1][-1] == 20.0
    with pytest.raises(TypeError, match="harnack_regularization"):
        heat_geodesic_distances(W, 1.0, harnack_regularization=None)


@pytest.mark.parametrize("bad", ["0.5", True, None, np.bool_(True), 1j])
def test_non_numeric_times_alpha_and_sigma_say_so(bad):
    """Diffusion times, DiffusionMap's alpha / t and the Gaussian kernel's sigma take numbers
    only: a TypeError naming the parameter. Before, ``float()`` accepted "0.5" and True
    (``knn_graph(kernel="gaussian", sigma=True)`` was sigma = 1, ``DiffusionMap(alpha="0.5")``
    alpha = 0.5), None got float()'s own message, and a sequence of times holding a bool, a
    string or None was converted (``heat_kernel(W, X, [True, 2.0])`` ran t = 1;
    ``HeatGeo(t=None)`` said "t contains NaN or infinity")."""
    from geoml.diffusion import heat_geodesic_distances

    X = np.random.default_rng(0).standard_normal((40, 3))
    W = alpha_decay_graph(X, 5)
    msg = "must be a (positive |non-negative )?number"
    calls = [
        lambda: geoml.DiffusionMap(alpha=bad).fit(X),
        lambda: geoml.DiffusionMap(t=bad).fit(X),
        lambda: geoml.heat_kernel(W, X, [1.0, bad]),
        lambda: heat_geodesic_distances(W, [bad]),
        lambda: geoml.HeatGeo(t=[bad, 2.0]).fit(X),
    ]
    if bad is not None:  # (None: sigma's default, the median k-th distance)
        calls += [
            lambda: geoml.knn_graph(X, 5, kernel="gaussian", sigma=bad),
            lambda: geoml.KNNGraph(5, kernel="gaussian", sigma=bad).fit(X),
        ]
    calls.append(lambda: geoml.heat_kernel(W, X, bad))
    if not isinstance(bad, str):  # (HeatGeo: a string other than "auto" is a ValueError)
        calls.append(lambda: geoml.HeatGeo(t=bad).fit(X))
    for call in calls:
        with pytest.raises(TypeError, match=msg):
            call()
    # numbers of any real type still work
    Y = geoml.heat_kernel(W, X, np.array([np.float32(0.5), 2]))
    np.testing.assert_array_equal(Y[1], geoml.heat_kernel(W, X, 2))
    np.testing.assert_array_equal(Y, geoml.heat_kernel(W, X, [np.float64(0.5), 2]))
    G = geoml.knn_graph(X, 5, kernel="gaussian", sigma=np.float32(0.5))
    assert abs(G - geoml.knn_graph(X, 5, kernel="gaussian", sigma=0.5)).max() == 0
    a = geoml.DiffusionMap(alpha=np.float64(0.5), t=np.int64(2), random_state=0).fit(X)
    b = geoml.DiffusionMap(alpha=0.5, t=2, random_state=0).fit(X)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
