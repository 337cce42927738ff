"""geoml.measures: intrinsic dimension (against scikit-dimension and the DADApy formulas),
von Neumann entropy and effective rank (against dense NumPy and closed forms), diffusion
spectral entropy and mutual information (against dse-dsmi), magnitude."""

import math
import random
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
from geoml import measures as M

# ----------------------------------------------------------------------------- data


def _sphere(n, dim, seed):
    """Uniform sample of the (dim-1)-sphere in R^dim."""
    X = np.random.default_rng(seed).normal(size=(n, dim))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _swiss_roll(n, seed):
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    return np.column_stack([t * np.cos(t), 21 * rng.uniform(size=n), t * np.sin(t)])


def _linear(n, d, D, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, D))
    return X + noise * rng.normal(size=(n, D))


@pytest.fixture(scope="module")
def cloud():
    """A 6-dimensional Gaussian cloud in R^10 with a little full-rank noise, and its kNN."""
    X = _linear(1200, 6, 10, 0, noise=0.05)
    return X, geoml.knn(X, 20)


# ----------------------------------------------------------------------------- formulas


def _mle_formula(dist, k, unbiased=False):
    D = dist[:, :k]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (k - 2 if unbiased else k - 1) / np.log(D[:, -1:] / D).sum(axis=1)


def _dadapy_2nn(mus, mu_fraction, algorithm):
    """DADApy 0.3.4 ``_compute_id_2NN`` (curve_fit of a line through 0 is least squares)."""
    N = mus.shape[0]
    n_eff = int(N * mu_fraction)
    log_mus = np.log(mus)
    x = np.sort(log_mus)[:n_eff]
    if algorithm == "ml":
        return (N - 1) / np.sum(log_mus)
    y = -np.log(1 - np.arange(1, n_eff + 1) / N)
    return float(x @ y / (x @ x))


def _dadapy_gride(mus, n1, n2, eps=1e-13):
    """DADApy 0.3.4 ``_argmax_loglik`` (bisection on the score over [0.001, 1000]) with
    ``_filter_mus``, and ``_fisher_info_scaling``; tighter bisection than its 1e-7 default."""
    mus = mus.copy()
    q3, q2 = np.percentile(mus, [95, 50])
    mus = mus[mus < 20 * (q3 - q2) + q2]
    N = len(mus)

    def neg_dl(d):
        one = 1.0 - mus ** (-d)
        one[one < 2e-16] = 2e-16
        return np.sum(((1 - n2 + n1) / one + n2 - 1.0) * np.log(mus)) - (N - 1) / d

    d0, d1 = 0.001, 1000.0
    l1 = neg_dl(d1)
    while abs(d0 - d1) > eps * d1:
        d2 = (d0 + d1) / 2
        if neg_dl(d2) * l1 > 0:
            d1 = d2
        else:
            d0 = d2
    d = (d0 + d1) / 2
    one = 1.0 - mus ** (-d)
    info = N / d**2 + np.sum((n2 - n1 - 1) * (np.log(mus) / one) ** 2 * mus ** (-d))
    return d, 1 / math.sqrt(info)


def _pca_rule_ref(ev, rule, alpha):
    """scikit-dimension lPCA's rules, written from its source (ev descending)."""
    if rule == "FO":
        return int(np.sum(ev > alpha * ev[0]))
    if rule == "maxgap":
        return int(np.nanargmax(ev[:-1] / ev[1:]) + 1)
    if rule == "ratio":
        c = np.cumsum(ev)
        return int(np.sum(c / c.max() < alpha) + 1)
    if rule == "participation_ratio":
        return ev.sum() ** 2 / (ev**2).sum()
    if rule == "Kaiser":
        return int(np.sum(ev > ev.mean()))
    p = len(ev)
    bs = np.array([sum(1 / (j + 1) for j in range(i, p)) / p for i in range(p)])
    share = ev / ev.sum()
    for i in range(p):
        if bs[i] > share[i]:
            return i
    return 0


# ----------------------------------------------------------------------------- MLE


@pytest.mark.parametrize("k", [5, 20])
@pytest.mark.parametrize("unbiased", [False, True])
def test_mle_formula(cloud, k, unbiased):
    X, nb = cloud
    r = M.intrinsic_dimension(X, "mle", k=k, unbiased=unbiased, local=True, neighbors=nb)
    pw = _mle_formula(nb.distances, k, unbiased)
    np.testing.assert_allclose(r.pointwise, pw, rtol=1e-12)
    assert r.dimension == pytest.approx(1 / np.mean(1 / pw), rel=1e-12)
    assert r.n_used == X.shape[0] and math.isnan(r.stderr)
    for comb, f in (("mean", np.mean), ("median", np.median)):
        v = M.intrinsic_dimension(X, "mle", k=k, unbiased=unbiased, comb=comb, neighbors=nb)
        assert v.dimension == pytest.approx(f(pw), rel=1e-12)


def test_mle_own_knn_equals_precomputed(cloud):
    X, nb = cloud
    a = M.intrinsic_dimension(X, "mle", k=12, local=True)
    b = M.intrinsic_dimension(X, "mle", k=12, local=True, neighbors=nb)
    assert a.dimension == b.dimension
    np.testing.assert_array_equal(a.pointwise, b.pointwise)


def test_precomputed_neighbors_checked_for_every_method():
    """A search that lists each point as its own neighbour was refused with "every point has
    a zero neighbour distance" (MLE) or "fewer than 2 ratios left" (TwoNN, GRIDE), not naming
    the cause; the global local-PCA estimate ignored ``neighbors`` unchecked (any object)."""
    X = np.random.default_rng(3).normal(size=(150, 4))
    own = geoml.knn(X, 10, exclude_self=False)
    for method in ("mle", "twonn", "gride", "lpca"):
        k = 10 if method == "mle" else None
        with pytest.raises(ValueError, match="a point as its own neighbour"):
            M.intrinsic_dimension(X, method, k=k, neighbors=own)
    r = geoml.knn(X, 10)
    with pytest.raises(TypeError, match="neighbors must be a KNNResult"):
        M.intrinsic_dimension(X, "lpca", neighbors=r.distances)
    with pytest.raises(ValueError, match="neighbors must hold"):
        M.intrinsic_dimension(X, "lpca", neighbors=(r.indices[:-1], r.distances[:-1]))
    want = M.intrinsic_dimension(X, "lpca").dimension
    assert M.intrinsic_dimension(X, "lpca", neighbors=r).dimension == want


def test_against_skdim(cloud):
    skdim = pytest.importorskip("skdim")
    X, nb = cloud
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in ({}, {"unbiased": True}):
            ref = skdim.id.MLE(**kw).fit(X, precomputed_knn_arrays=(nb.distances, nb.indices))
            r = M.intrinsic_dimension(X, "mle", k=20, local=True, neighbors=nb, **kw)
            assert r.dimension == pytest.approx(ref.dimension_, rel=1e-8)
            np.testing.assert_allclose(r.pointwise, ref.dimension_pw_, rtol=1e-8)
        for fit, fracs in (("linear", (0.1, 0.3)), ("mle", (0.0, 0.1, 0.3))):
            for df in fracs:
                ref = skdim.id.TwoNN(discard_fraction=df, method=fit).fit(X).dimension_
                r = M.intrinsic_dimension(X, "twonn", fit=fit, discard_fraction=df)
                assert r.dimension == pytest.approx(ref, rel=1e-8)
        for n1, n2 in ((1, 2), (2, 4), (3, 7)):
            ref = skdim.id.GRIDE(n1=n1, n2=n2).fit(X)
            r = M.intrinsic_dimension(X, "gride", n1=n1, n2=n2)
            assert r.dimension == pytest.approx(ref.dimension_, rel=1e-8)
            assert r.stderr == pytest.approx(ref.error_, rel=1e-8)
        for rule, kw in (
            ("FO", {"alphaFO": 0.05}),
            ("FO", {"alphaFO": 0.2}),
            ("ratio", {"alphaRatio": 0.9}),
            ("maxgap", {}),
            ("participation_ratio", {}),
            ("Kaiser", {}),
            ("broken_stick", {}),
        ):
            alpha = kw.get("alphaFO", kw.get("alphaRatio", 0.05))
            ref = skdim.id.lPCA(ver=rule, **kw).fit(X).dimension_
            r = M.intrinsic_dimension(X, "lpca", rule=rule, alpha=alpha, local=True, k=15)
            assert r.dimension == pytest.approx(ref, rel=1e-8)
            loc = [skdim.id.lPCA(ver=rule, **kw).fit(X[i]).dimension_ for i in nb.indices[:60, :15]]
            np.testing.assert_allclose(r.pointwise[:60], loc, rtol=1e-8)


def test_against_dadapy_formulas(cloud):
    X, nb = cloud
    mus = nb.distances[:, 1] / nb.distances[:, 0]
    # DADApy 'base' = linear fit with mu_fraction = 1 - discard_fraction
    for df in (0.1, 0.25):
        r = M.intrinsic_dimension(X, "twonn", fit="linear", discard_fraction=df, neighbors=nb)
        assert r.dimension == pytest.approx(_dadapy_2nn(mus, 1 - df, "base"), rel=1e-8)
    # DADApy 'ml' ignores mu_fraction: equal to discard_fraction = 0
    r = M.intrinsic_dimension(X, "twonn", fit="mle", discard_fraction=0.0, neighbors=nb)
    assert r.dimension == pytest.approx(_dadapy_2nn(mus, 0.9, "ml"), rel=1e-10)
    for n1, n2 in ((1, 2), (2, 4), (4, 8), (3, 10)):
        mu = nb.distances[:, n2 - 1] / nb.distances[:, n1 - 1]
        d, err = _dadapy_gride(mu, n1, n2)
        r = M.intrinsic_dimension(X, "gride", n1=n1, n2=n2, neighbors=nb)
        assert r.dimension == pytest.approx(d, rel=1e-8)
        assert r.stderr == pytest.approx(err, rel=1e-6)


def test_against_dadapy_package():
    dadapy = pytest.importorskip("dadapy")
    X = _linear(800, 4, 8, 3, noise=0.02)
    data = dadapy.Data(X, maxk=16, verbose=False)
    d, _, _ = data.compute_id_2NN(algorithm="base", mu_fraction=0.9)
    assert M.intrinsic_dimension(X, "twonn", discard_fraction=0.1).dimension == pytest.approx(
        d, rel=1e-8
    )
    ids, errs, _ = data.return_id_scaling_gride(range_max=2, d0=0.001, d1=1000, eps=1e-12)
    assert M.intrinsic_dimension(X, "gride").dimension == pytest.approx(ids[0], rel=1e-8)


# ----------------------------------------------------------------------------- TwoNN, GRIDE


def test_twonn_formula(cloud):
    X, nb = cloud
    mu = np.sort(nb.distances[:, 1] / nb.distances[:, 0])
    N = mu.size
    for df in (0.0, 0.1, 0.5):
        m = int(N * (1 - df))
        L = np.log(mu[:m])
        want = (m - 1) / (L.sum() + (N - m) * L[-1])
        r = M.intrinsic_dimension(X, "twonn", fit="mle", discard_fraction=df, neighbors=nb)
        assert r.dimension == pytest.approx(want, rel=1e-12)
        assert r.stderr == pytest.approx(want / math.sqrt(m - 2), rel=1e-12)
        assert r.n_used == m


def _pareto_neighbors(n, d, seed):
    """(indices, distances) with r1 = 1 and r2 / r1 ~ Pareto(d): the TwoNN model, exactly."""
    rng = np.random.default_rng(seed)
    mu = (1 - rng.uniform(size=n)) ** (-1.0 / d)
    dist = np.column_stack([np.ones(n), mu])
    idx = np.column_stack([(np.arange(n) + 1) % n, (np.arange(n) + 2) % n])
    return idx, dist


def test_twonn_error_bar_covers_truth():
    """Under the Pareto model the 3-sigma interval covers d in (about) 99.7 % of the draws."""
    d, n = 4.0, 400
    X = np.zeros((n, 2))
    covered = 0
    for seed in range(200):
        r = M.intrinsic_dimension(
            X, "twonn", fit="mle", discard_fraction=0.0, neighbors=_pareto_neighbors(n, d, seed)
        )
        covered += abs(r.dimension - d) <= 3 * r.stderr
    assert covered >= 194


def test_gride_error_bar_covers_truth():
    """GRIDE at (1, 2) on the exact model: same likelihood, Fisher error bar."""
    d, n = 3.0, 300
    X = np.zeros((n, 2))
    covered = 0
    for seed in range(200):
        r = M.intrinsic_dimension(X, "gride", neighbors=_pareto_neighbors(n, d, seed))
        covered += abs(r.dimension - d) <= 3 * r.stderr
    assert covered >= 194


def test_local_ratio_estimators(cloud):
    X, nb = cloud
    k = 10
    L = np.log(nb.distances[:, 1] / nb.distances[:, 0])
    r = M.intrinsic_dimension(X, "twonn", local=True, k=k, neighbors=nb)
    Lh = np.concatenate([L[:, None], L[nb.indices[:, :k]]], axis=1)
    np.testing.assert_allclose(r.pointwise, k / Lh.sum(axis=1), rtol=1e-12)
    # local GRIDE (2, 4): the root of the score on the point's neighbourhood
    g = M.intrinsic_dimension(X, "gride", n1=2, local=True, k=k, neighbors=nb)
    L4 = np.log(nb.distances[:, 3] / nb.distances[:, 1])
    Lg = np.concatenate([L4[:, None], L4[nb.indices[:, :k]]], axis=1)
    for i in range(0, X.shape[0], 97):
        d = g.pointwise[i]
        score = (k) / d + np.sum(Lg[i] / -np.expm1(-d * Lg[i])) - 3 * Lg[i].sum()
        assert abs(score) <= 1e-8 * (k / d)
    # (1, 2) GRIDE is TwoNN's MLE, locally as well
    g12 = M.intrinsic_dimension(X, "gride", local=True, k=k, neighbors=nb)
    np.testing.assert_allclose(g12.pointwise, r.pointwise, rtol=1e-12)


# ----------------------------------------------------------------------------- lPCA


@pytest.mark.parametrize(
    "rule", ["FO", "ratio", "maxgap", "participation_ratio", "Kaiser", "broken_stick"]
)
def test_lpca_rules_formula(cloud, rule):
    X, nb = cloud
    alpha = 0.9 if rule == "ratio" else 0.05
    ev = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2 / (X.shape[0] - 1)
    r = M.intrinsic_dimension(X, "lpca", rule=rule, alpha=alpha, local=True, k=12, neighbors=nb)
    assert r.dimension == pytest.approx(_pca_rule_ref(ev, rule, alpha), rel=1e-10)
    for i in range(0, X.shape[0], 151):
        Y = X[nb.indices[i, :12]]
        e = np.linalg.svd(Y - Y.mean(axis=0), compute_uv=False) ** 2 / 11
        assert r.pointwise[i] == pytest.approx(_pca_rule_ref(e, rule, alpha), rel=1e-10)


@pytest.mark.parametrize(
    "rule", ["FO", "ratio", "maxgap", "participation_ratio", "Kaiser", "broken_stick"]
)
def test_lpca_is_scale_invariant(rule):
    """Every lPCA rule is invariant under X -> s X: data of 1e-170 gave dimension 0 (FO,
    maxgap, Kaiser) or nan (participation ratio), the covariances' squares underflowing,
    and data of 1e160 an overflow; k <= D (fused) and k > D local paths both."""
    X = _linear(400, 3, 6, 0, noise=0.01)
    for cols, k in ((slice(None), 4), (slice(None), 20)):
        ref = M.intrinsic_dimension(X[:, cols], "lpca", rule=rule, local=True, k=k)
        for s in (1e-170, 1e-300, 1e160, 1e300):
            r = M.intrinsic_dimension(X[:, cols] * s, "lpca", rule=rule, local=True, k=k)
            assert r.dimension == pytest.approx(ref.dimension, rel=1e-12)
            assert np.allclose(r.pointwise, ref.pointwise, rtol=1e-12, atol=0)


def test_lpca_broken_stick_of_duplicates_is_quiet():
    """A neighbourhood of identical points has an all-zero spectrum: broken stick gives 0
    for it, as FO does, without NumPy's "invalid value" warning (an error under -W error)."""
    X = np.vstack([np.zeros((30, 4)), _linear(100, 2, 4, 0, noise=0.01)])
    for rule in ("FO", "broken_stick"):
        r = M.intrinsic_dimension(X, "lpca", rule=rule, local=True, k=10)
        assert (r.pointwise[:30] == 0).all()


def test_lpca_wide_neighbourhood():
    """k > D and k < D take the two Gram sides; both give the covariance eigenvalues."""
    X = _linear(300, 3, 5, 1, noise=0.1)
    nb = geoml.knn(X, 8)
    r = M.intrinsic_dimension(X, "lpca", rule="participation_ratio", local=True, k=8)
    for i in (0, 50, 299):
        Y = X[nb.indices[i]]
        e = np.linalg.svd(Y - Y.mean(axis=0), compute_uv=False) ** 2 / 7
        assert r.pointwise[i] == pytest.approx(e.sum() ** 2 / (e**2).sum(), rel=1e-10)
    Xw = _linear(40, 3, 60, 2, noise=0.1)
    g = M.intrinsic_dimension(Xw, "lpca", rule="participation_ratio")
    e = np.linalg.svd(Xw - Xw.mean(axis=0), compute_uv=False) ** 2 / 39
    assert g.dimension == pytest.approx(e.sum() ** 2 / (e**2).sum(), rel=1e-10)


# ----------------------------------------------------------------------------- manifolds


@pytest.fixture(scope="module")
def sphere9():
    X = _sphere(10000, 10, 0)
    return X, geoml.knn(X, 20)


@pytest.mark.parametrize("method,kw", [("twonn", {}), ("twonn", {"fit": "mle"}), ("gride", {})])
def test_nine_sphere(sphere9, method, kw):
    X, nb = sphere9
    r = M.intrinsic_dimension(X, method, neighbors=nb, **kw)
    assert abs(r.dimension - 9) <= 0.5


def test_nine_sphere_mle_bias(sphere9):
    """Levina-Bickel with k = 20 is biased low in 9 dimensions (8.47 at n = 10,000, see the
    design note); pinned here so a change of the estimator shows."""
    X, nb = sphere9
    r = M.intrinsic_dimension(X, "mle", neighbors=nb)
    assert 8.3 <= r.dimension <= 8.7


@pytest.mark.parametrize("method", ["mle", "twonn", "gride"])
def test_swiss_roll(method):
    X = _swiss_roll(4000, 0)
    r = M.intrinsic_dimension(X, method)
    assert abs(r.dimension - 2) <= 0.2
    loc = M.intrinsic_dimension(X, method, local=True, k=20)
    assert abs(np.median(loc.pointwise) - 2) <= 0.2


def test_lpca_local_swiss_roll():
    X = _swiss_roll(3000, 1)
    r = M.intrinsic_dimension(X, "lpca", local=True, k=30)
    assert np.median(r.pointwise) == 2.0


# ----------------------------------------------------------------------------- dtypes, dups


@pytest.mark.parametrize("method", ["mle", "twonn", "gride", "lpca"])
def test_float32(cloud, method):
    X, _ = cloud
    a = M.intrinsic_dimension(X, method, local=True, k=10)
    b = M.intrinsic_dimension(X.astype(np.float32), method, local=True, k=10)
    assert b.dimension == pytest.approx(a.dimension, rel=1e-3)
    assert np.nanmedian(np.abs(b.pointwise - a.pointwise) / a.pointwise) <= 1e-3


def test_duplicates_dropped_with_warning():
    X = _linear(500, 3, 6, 4)
    Xd = np.vstack([X, X[:10]])  # 10 exact duplicates: 20 points at distance 0
    n = Xd.shape[0]
    for method, count, used in (
        ("mle", 20, n - 20),
        ("twonn", 20, int((n - 20) * 0.9)),
        ("gride", 24, None),  # and 4 points whose 2 nearest are a duplicate pair (a tie)
    ):
        with pytest.warns(RuntimeWarning, match=f" {count} point"):
            r = M.intrinsic_dimension(Xd, method, local=True, k=10)
        if used is not None:
            assert r.n_used == used
        assert np.isfinite(r.dimension)
        assert np.isnan(r.pointwise[:10]).all() and np.isnan(r.pointwise[-10:]).all()
    # the MLE of the remaining points is the formula on them
    nb = geoml.knn(Xd, 20)
    pw = _mle_formula(nb.distances, 20)
    with pytest.warns(RuntimeWarning):
        r = M.intrinsic_dimension(Xd, "mle", neighbors=nb)
    ok = nb.distances[:, 0] > 0
    assert r.dimension == pytest.approx(1 / np.mean(1 / pw[ok]), rel=1e-12)


def test_all_duplicates():
    X = np.ones((10, 3))
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="zero neighbour"):
        M.intrinsic_dimension(X, "mle", k=3)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="fewer than 2"):
        M.intrinsic_dimension(X, "twonn")


@pytest.mark.parametrize("D,k", [(6, 12), (40, 12), (12, 12)])
def test_lpca_spectra_against_numpy(D, k):
    """The batched eigensolver behind local PCA against numpy.linalg.eigvalsh of each
    neighbourhood's covariance (float64 and float32 input)."""
    from geoml.measures._intrinsic import _pca_spectra

    rng = np.random.default_rng(D)
    X = rng.normal(size=(300, D)) * np.linspace(3, 0.1, D)
    idx = np.argsort(((X[:, None] - X[None]) ** 2).sum(-1), axis=1)[:, 1 : k + 1]
    want = np.array([np.linalg.eigvalsh(np.cov(X[i].T))[::-1] for i in idx])
    want = np.maximum(want[:, : min(k, D)], 0.0)
    for dt in (np.float64, np.float32):
        got = _pca_spectra(X.astype(dt), idx)
        tol = 1e-12 if dt == np.float64 else 1e-5
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * want.max())


def test_lpca_spectra_chunks_on_threads(monkeypatch):
    """Local PCA's chunks on 1, 2 and 3 threads (small chunks: many of them) give identical
    spectra, equal to numpy.linalg.eigvalsh."""
    from geoml.measures import _intrinsic

    monkeypatch.setattr(_intrinsic, "_CHUNK_ELEMS", 7 * 10 * 5)  # 7 points per chunk
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 5)) * np.linspace(2, 0.2, 5)
    idx = np.argsort(((X[:, None] - X[None]) ** 2).sum(-1), axis=1)[:, 1:11]
    want = np.array([np.linalg.eigvalsh(np.cov(X[i].T))[::-1] for i in idx])
    got = [_intrinsic._pca_spectra(X, idx, n_jobs=j) for j in (1, 2, 3, None)]
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
    np.testing.assert_allclose(got[0], np.maximum(want, 0), rtol=1e-12, atol=1e-12 * want.max())


def test_lpca_fused_kernel_bad_input():
    from geoml import _core

    X = np.random.default_rng(0).normal(size=(10, 4))
    idx = np.zeros((3, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"idx must be in \[0, n\)"):
        _core.local_gram_eigvalsh(X, idx + 10, n_jobs=1)
    with pytest.raises(ValueError, match="idx must be"):
        _core.local_gram_eigvalsh(X, idx[:, :1], n_jobs=1)
    with pytest.raises(ValueError, match="X must be a non-empty"):
        _core.local_gram_eigvalsh(X[:0], idx, n_jobs=1)
    with pytest.raises(TypeError):
        _core.local_gram_eigvalsh(X.astype(np.int32), idx, n_jobs=1)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_lpca_fused_spectra_threads_and_numpy(dt):
    """The fused C++ local-PCA pass (k <= D: gather, centre, k x k Gram, eigenvalues) on 1, 2
    and 3 threads gives identical spectra, equal to numpy.linalg.eigvalsh of each
    neighbourhood's float64 covariance (its top k values); int32 indices, a neighbourhood with
    repeated rows (rank-deficient Gram) and points far from the origin (centring) included."""
    from geoml.measures import _intrinsic

    rng = np.random.default_rng(11)
    X = (rng.normal(size=(700, 24)) * np.linspace(3, 0.01, 24) + 1e3).astype(dt)
    idx = rng.integers(0, 700, size=(700, 9)).astype(np.int32)
    idx[5] = 17  # one point repeated: covariance 0
    idx[6, :4] = idx[6, 4]
    X64 = X.astype(np.float64)
    want = np.array([np.linalg.eigvalsh(np.cov(X64[i].T))[::-1][:9] for i in idx])
    got = [_intrinsic._pca_spectra(X, idx, n_jobs=j) for j in (1, 2, 3, None)]
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
    scale = np.abs(want).max(axis=1, keepdims=True)
    np.testing.assert_allclose(got[0], np.maximum(want, 0), rtol=1e-10, atol=1e-11 * scale.max())
    assert got[0][5].max() <= 1e-12 * scale.max()  # centring of equal rows: rounding only


def test_n_jobs_determinism(cloud):
    X, _ = cloud
    for method in ("mle", "twonn", "gride", "lpca"):
        a = M.intrinsic_dimension(X, method, local=True, k=10, n_jobs=1)
        b = M.intrinsic_dimension(X, method, local=True, k=10, n_jobs=2)
        assert a.dimension == b.dimension
        np.testing.assert_array_equal(a.pointwise, b.pointwise)


# ----------------------------------------------------------------------------- bad input


def test_id_bad_input(cloud):
    X, nb = cloud
    with pytest.raises(ValueError, match="method="):
        M.intrinsic_dimension(X, "foo")
    with pytest.raises(ValueError, match="k=1200 is out of range"):
        M.intrinsic_dimension(X, "mle", k=1200)
    with pytest.raises(ValueError, match="k=1 is out of range"):
        M.intrinsic_dimension(X, "mle", k=1)
    with pytest.raises(TypeError, match="k must be an integer"):
        M.intrinsic_dimension(X, "mle", k=2.5)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.intrinsic_dimension(Xn)
    with pytest.raises(ValueError, match="2-D"):
        M.intrinsic_dimension(X[:, 0])
    with pytest.raises(ValueError, match="at least 3"):
        M.intrinsic_dimension(X[:2])
    with pytest.raises(ValueError, match="discard_fraction"):
        M.intrinsic_dimension(X, "twonn", discard_fraction=1.0)
    with pytest.raises(ValueError, match="discard_fraction > 0"):
        M.intrinsic_dimension(X, "twonn", discard_fraction=0.0)
    with pytest.raises(ValueError, match="fit="):
        M.intrinsic_dimension(X, "twonn", fit="ols")
    with pytest.raises(ValueError, match="n2=1"):
        M.intrinsic_dimension(X, "gride", n1=1, n2=1)
    with pytest.raises(ValueError, match="n2=2000 needs"):
        M.intrinsic_dimension(X, "gride", n1=1, n2=2000)
    with pytest.raises(ValueError, match="rule="):
        M.intrinsic_dimension(X, "lpca", rule="PCA")
    with pytest.raises(ValueError, match="alpha"):
        M.intrinsic_dimension(X, "lpca", alpha=1.5)
    with pytest.raises(ValueError, match="comb="):
        M.intrinsic_dimension(X, "mle", comb="max")
    with pytest.raises(TypeError, match="local"):
        M.intrinsic_dimension(X, "mle", local="yes")
    with pytest.raises(ValueError, match="columns"):
        M.intrinsic_dimension(X, "mle", k=20, neighbors=(nb.indices[:, :5], nb.distances[:, :5]))
    with pytest.raises(ValueError, match="shape"):
        M.intrinsic_dimension(X, "mle", k=5, neighbors=(nb.indices[:10], nb.distances[:10]))
    with pytest.raises(ValueError, match="sorted"):
        M.intrinsic_dimension(X, "mle", k=5, neighbors=(nb.indices, nb.distances[:, ::-1]))
    with pytest.raises(TypeError, match="neighbors"):
        M.intrinsic_dimension(X, "mle", k=5, neighbors=nb.distances)
    with pytest.raises(ValueError, match="n_jobs"):
        M.intrinsic_dimension(X, n_jobs=0)


# ----------------------------------------------------------------------------- entropies


def _vn_dense(A):
    lam = np.linalg.eigvalsh(A)
    p = np.maximum(lam, 0) / np.trace(A)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _cycle(n):
    i = np.arange(n)
    W = sp.coo_matrix((np.ones(n), (i, (i + 1) % n)), shape=(n, n))
    return (W + W.T).tocsr()


@pytest.fixture(scope="module")
def knn_laplacian():
    X = np.random.default_rng(0).normal(size=(600, 3))
    W = geoml.knn_graph(X, 10)
    W = ((W + W.T) / 2).tocsr()
    L = (sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W).tocsr()
    return W, L


def test_von_neumann_exact(knn_laplacian):
    rng = np.random.default_rng(1)
    B = rng.normal(size=(300, 40))
    A = B @ B.T  # PSD, rank 40
    assert M.von_neumann_entropy(A).value == pytest.approx(_vn_dense(A), rel=1e-10)
    assert M.von_neumann_entropy(A, base=2).value == pytest.approx(
        _vn_dense(A) / np.log(2), rel=1e-10
    )
    W, L = knn_laplacian
    r = M.von_neumann_entropy(W, graph=True, method="exact")
    assert r.value == pytest.approx(_vn_dense(L.toarray()), rel=1e-10)
    assert (r.stderr, r.method, r.converged) == (0.0, "exact", True)
    assert M.von_neumann_entropy(L, method="exact").value == pytest.approx(r.value, rel=1e-12)
    assert M.von_neumann_entropy(L.toarray().astype(np.float32)).value == pytest.approx(
        r.value, rel=1e-5
    )


def test_von_neumann_float32_trace_in_float64():
    # a float32 A: eigenvalues of its float64 copy, and its trace in float64 too (the trace
    # was summed in float32: p summed to 1 - 1e-7, the entropy off by ~3e-8), and a sparse
    # float32 A gets float32's PSD tolerance (it was refused: its zero eigenvalues come out
    # as -1e-7 relative); found by the audit
    rng = np.random.default_rng(3)
    B = rng.normal(size=(7, 5))
    A32 = (B @ B.T).astype(np.float32)
    want = _vn_dense(A32.astype(np.float64))
    assert M.von_neumann_entropy(A32).value == pytest.approx(want, rel=1e-12)
    assert M.von_neumann_entropy(sp.csr_matrix(A32)).value == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 10, 257])
def test_von_neumann_closed_forms(n):
    K = np.ones((n, n)) - np.eye(n)  # complete graph: Laplacian spectrum {0, n (n - 1 times)}
    assert M.von_neumann_entropy(K, graph=True).value == pytest.approx(np.log(n - 1), abs=1e-12)
    if n >= 3:  # cycle: 2 - 2 cos(2 pi j / n)
        lam = 2 - 2 * np.cos(2 * np.pi * np.arange(n) / n)
        p = lam[lam > 1e-12] / (2 * n)
        want = -(p * np.log(p)).sum()
        assert M.von_neumann_entropy(_cycle(n), graph=True).value == pytest.approx(want, rel=1e-10)
    # maximally mixed state: log n
    assert M.von_neumann_entropy(np.eye(n) / n).value == pytest.approx(np.log(n), rel=1e-12)


def test_von_neumann_slq(knn_laplacian):
    W, L = knn_laplacian
    exact = _vn_dense(L.toarray())
    r = M.von_neumann_entropy(W, graph=True, method="slq", rtol=1e-2, random_state=0)
    assert r.method == "slq" and r.converged and r.stderr > 0
    assert abs(r.value - exact) <= 1e-2 * exact
    n = 600
    lam = 2 - 2 * np.cos(2 * np.pi * np.arange(n) / n)
    p = lam[lam > 1e-12] / (2 * n)
    cyc = M.von_neumann_entropy(_cycle(n), graph=True, method="slq", random_state=1)
    assert abs(cyc.value + (p * np.log(p)).sum()) <= 1e-2 * cyc.value


def test_von_neumann_error_bar_covers(knn_laplacian):
    W, L = knn_laplacian
    exact = _vn_dense(L.toarray())
    cover = 0
    for seed in range(30):
        r = M.von_neumann_entropy(W, graph=True, method="slq", n_probes=24, random_state=seed)
        cover += abs(r.value - exact) <= 3 * r.stderr
    assert cover >= 27


def test_von_neumann_deterministic(knn_laplacian):
    W, _ = knn_laplacian
    a = M.von_neumann_entropy(W, graph=True, method="slq", random_state=3, n_jobs=1)
    b = M.von_neumann_entropy(W, graph=True, method="slq", random_state=3, n_jobs=2)
    assert a == b


def test_von_neumann_bad_input():
    with pytest.raises(ValueError, match="square"):
        M.von_neumann_entropy(np.ones((3, 4)))
    with pytest.raises(ValueError, match="symmetric"):
        M.von_neumann_entropy(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        M.von_neumann_entropy(np.diag([1.0, -0.5, 2.0]))
    with pytest.raises(ValueError, match="non-negative"):
        M.von_neumann_entropy(-np.ones((3, 3)), graph=True)
    with pytest.raises(ValueError, match="positive trace"):
        M.von_neumann_entropy(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="method="):
        M.von_neumann_entropy(np.eye(3), method="lanczos")
    with pytest.raises(ValueError, match="NaN"):
        M.von_neumann_entropy(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="base"):
        M.von_neumann_entropy(np.eye(3), base=1)
    with pytest.raises(ValueError, match="rtol"):
        M.von_neumann_entropy(np.eye(3), rtol=0)
    with pytest.raises(TypeError, match="graph"):
        M.von_neumann_entropy(np.eye(3), graph=1)


def test_effective_rank():
    rng = np.random.default_rng(0)
    for shape in ((400, 50), (50, 400), (120, 100)):
        Z = rng.normal(size=shape) * np.exp(-np.arange(shape[1]) / 10)
        s = np.linalg.svd(Z, compute_uv=False)
        p = s / s.sum()
        want = np.exp(-(p * np.log(p)).sum())
        assert M.effective_rank(Z).value == pytest.approx(want, rel=1e-10)
        q = p + 1e-7  # RankMe's epsilon
        assert M.effective_rank(Z, eps=1e-7).value == pytest.approx(
            np.exp(-(q * np.log(q)).sum()), rel=1e-10
        )
        assert M.effective_rank(Z.astype(np.float32)).value == pytest.approx(want, rel=1e-4)
    assert M.effective_rank(np.eye(7)).value == pytest.approx(7, rel=1e-12)
    assert M.effective_rank(np.outer(rng.normal(size=30), rng.normal(size=9))).value == (
        pytest.approx(1, rel=1e-6)
    )
    with pytest.raises(ValueError, match="all zero"):
        M.effective_rank(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="eps"):
        M.effective_rank(np.eye(3), eps=-1)
    with pytest.raises(ValueError, match="2-D"):
        M.effective_rank(np.ones(3))


# ----------------------------------------------------------------------------- DSE / DSMI


def _dse_formula(X, sigma=10.0, t=1):
    """dse-dsmi 1.1's definition, written from its source with dense NumPy."""
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    G = np.exp(-D2 / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    d = 1 / np.sqrt(G.sum(axis=1))
    K = np.diag(d) @ G @ np.diag(d)
    ev = np.abs(np.linalg.eigvalsh(K)) ** t
    p = ev / ev.sum() + np.finfo(float).eps
    return float(-np.sum(p * np.log2(p)))


@pytest.mark.parametrize("sigma,t", [(10.0, 1), (1.0, 1), (3.0, 2), (5.0, 1.5)])
def test_dse_formula(sigma, t):
    X = np.random.default_rng(2).uniform(size=(300, 12))
    r = M.diffusion_spectral_entropy(X, sigma=sigma, t=t, method="exact")
    assert r.value == pytest.approx(_dse_formula(X, sigma, t), rel=1e-10)
    assert (r.method, r.stderr) == ("exact", 0.0)


def test_dse_against_reference():
    dse_dsmi = pytest.importorskip("dse_dsmi")
    X = np.random.RandomState(0).uniform(0, 1, (1000, 256))  # the package's self-test input
    ref = dse_dsmi.diffusion_spectral_entropy(X)
    assert M.diffusion_spectral_entropy(X, method="exact").value == pytest.approx(ref, rel=1e-10)
    X2 = X[:300, :20]
    for sigma, t in ((1.0, 1), (2.0, 3)):
        ref = dse_dsmi.diffusion_spectral_entropy(X2, gaussian_kernel_sigma=sigma, t=t)
        r = M.diffusion_spectral_entropy(X2, sigma=sigma, t=t, method="exact")
        assert r.value == pytest.approx(ref, rel=1e-10)


def test_dse_closed_form():
    """Points far apart against sigma: K = I, every eigenvalue 1, DSE = log2 N."""
    X = 100.0 * np.arange(50, dtype=float)[:, None]
    assert M.diffusion_spectral_entropy(X, sigma=1.0).value == pytest.approx(np.log2(50), rel=1e-12)
    # two far clusters of coincident points: K has eigenvalue 1 twice, the rest 0
    X = np.repeat([[0.0], [1000.0]], 20, axis=0)
    assert M.diffusion_spectral_entropy(X, sigma=1.0).value == pytest.approx(1.0, abs=1e-12)


@pytest.fixture(scope="module")
def dse_data():
    rng = np.random.default_rng(4)
    c = rng.normal(size=(6, 16)) * 3
    X = c[rng.integers(0, 6, 500)] + rng.normal(size=(500, 16))
    return X, M.diffusion_spectral_entropy(X, sigma=2.0, method="exact").value


def test_dse_slq(dse_data):
    X, exact = dse_data
    r = M.diffusion_spectral_entropy(X, sigma=2.0, method="slq", random_state=0)
    assert r.method == "slq" and r.converged
    assert abs(r.value - exact) <= 1e-2 * exact
    r2 = M.diffusion_spectral_entropy(X, sigma=2.0, t=2, method="slq", random_state=0)
    e2 = M.diffusion_spectral_entropy(X, sigma=2.0, t=2, method="exact").value
    assert abs(r2.value - e2) <= 1e-2 * e2


def test_dse_slq_tiled(dse_data, monkeypatch):
    """The matrix-free path (kernel rows recomputed per product) equals the dense one."""
    from geoml.measures import _dse

    X, _ = dse_data
    monkeypatch.setattr(_dse, "_KERNEL_F32", False)
    a = M.diffusion_spectral_entropy(X, sigma=2.0, method="slq", random_state=5, n_probes=16)
    monkeypatch.setattr(_dse, "_DENSE_BYTES", 0)
    monkeypatch.setattr(_dse, "_TILE_ELEMS", 150 * 500)
    b = M.diffusion_spectral_entropy(X, sigma=2.0, method="slq", random_state=5, n_probes=16)
    assert b.value == pytest.approx(a.value, rel=1e-9)


def test_dse_kernel_float32(dse_data, monkeypatch):
    """The float32 kernel storage of the SLQ mode against the float64 kernel."""
    from geoml.measures import _dse

    X, _ = dse_data
    K32, d32 = _dse._kernel32(X, 2.0)
    K64, d64 = _dse._kernel(X, 2.0)
    np.testing.assert_allclose(d32, d64, rtol=1e-12)
    assert np.abs(K32 - K64).max() <= 1e-6 * np.abs(K64).max()
    a = M.diffusion_spectral_entropy(X, sigma=2.0, method="slq", random_state=5, n_probes=16)
    monkeypatch.setattr(_dse, "_KERNEL_F32", False)
    b = M.diffusion_spectral_entropy(X, sigma=2.0, method="slq", random_state=5, n_probes=16)
    assert a.value == pytest.approx(b.value, rel=1e-5)


def test_dse_error_bar_covers(dse_data):
    X, exact = dse_data
    cover = 0
    for seed in range(20):
        r = M.diffusion_spectral_entropy(X, sigma=2.0, method="slq", n_probes=16, random_state=seed)
        cover += abs(r.value - exact) <= 3 * r.stderr
    assert cover >= 18


@pytest.fixture(scope="module")
def dse_uniform():
    """The reference's kind of input (uniform in a cube, sigma = 10): a unit top eigenvalue,
    ~d dominant ones, then a flat bulk (plain Hutchinson needs hundreds of probes)."""
    from geoml._validation import single_threaded_blas
    from geoml.measures import _dse

    X = np.random.default_rng(6).uniform(0, 1, (700, 64))
    with single_threaded_blas():  # one small eigvalsh: threaded LAPACK only loses on 2 cores
        ev = np.abs(np.linalg.eigvalsh(_dse._kernel(X, 10.0)[0]))
    exact = {}
    for t in (1, 2):
        p = ev**t / (ev**t).sum() + np.finfo(float).eps
        exact[t] = float(-np.sum(p * np.log2(p)))
    return X, exact


@pytest.mark.parametrize("t", [1, 2])
def test_dse_slq_deflated(dse_uniform, t):
    X, exact = dse_uniform
    cover = 0
    for seed in range(5):
        r = M.diffusion_spectral_entropy(X, t=t, method="slq", random_state=seed)
        assert r.converged and r.n_probes <= 64
        assert abs(r.value - exact[t]) <= 1e-2 * exact[t]
        cover += abs(r.value - exact[t]) <= 3 * r.stderr
    assert cover >= 4
    # float32 input is computed in float64
    r32 = M.diffusion_spectral_entropy(X.astype(np.float32), t=t, method="slq", random_state=0)
    assert abs(r32.value - exact[t]) <= 1e-2 * exact[t]


def test_dse_top_block_quadrature():
    """The deflated block's two-step block Gauss rule against f on the exact spectrum: with
    Q spanning an exact invariant subspace the rule is exact."""
    from geoml.measures._slq_entropy import _glogg, _top_block

    rng = np.random.default_rng(0)
    n, r = 300, 20
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.concatenate([np.linspace(0.5, 0.1, r), np.zeros(n - r)])
    A = (U * lam) @ U.T

    def matmat(B, out):
        np.matmul(A, B, out=out)

    g = np.abs
    Q, s1, t1, es, et = _top_block(matmat, n, r, rng, g, _glogg(g))
    assert s1 == pytest.approx(lam.sum(), rel=1e-10)
    assert t1 == pytest.approx((lam[:r] * np.log(lam[:r])).sum(), rel=1e-10)
    np.testing.assert_allclose(Q.T @ Q, np.eye(r), atol=1e-12)


def test_slq_orth_fallback():
    """Cholesky QR twice, and Householder QR for a rank-deficient or ill-conditioned block."""
    from geoml.measures._slq_entropy import _orth

    rng = np.random.default_rng(0)
    for Y in (
        rng.normal(size=(200, 12)),
        rng.normal(size=(200, 12)) * np.logspace(0, -12, 12),  # cond 1e12
        np.repeat(rng.normal(size=(200, 1)), 5, axis=1),  # rank 1
    ):
        Q, R = _orth(Y)
        np.testing.assert_allclose(Q.T @ Q, np.eye(Y.shape[1]), atol=1e-10)
        np.testing.assert_allclose(Q @ R, Y, atol=1e-10 * np.abs(Y).max())


def test_dse_knn_kernel():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 6))
    ex = M.diffusion_spectral_entropy(X, sigma=1.0, kernel="knn", n_neighbors=10, method="exact")
    # the kernel written out: symmetrised kNN Gaussian weights, unit diagonal
    D2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    nn = np.argsort(D2 + np.diag(np.full(600, np.inf)), axis=1)[:, :10]
    mask = np.zeros((600, 600), bool)
    mask[np.repeat(np.arange(600), 10), nn.ravel()] = True
    mask |= mask.T
    W = np.where(mask, np.exp(-D2 / 2), 0.0) + np.eye(600)
    d = 1 / np.sqrt(W.sum(1))
    ev = np.abs(np.linalg.eigvalsh(d[:, None] * W * d[None]))
    p = ev / ev.sum() + np.finfo(float).eps
    assert ex.value == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-10)
    assert ex.value != pytest.approx(M.diffusion_spectral_entropy(X, sigma=1.0).value, rel=1e-2)
    cover = 0
    for seed in range(5):
        r = M.diffusion_spectral_entropy(
            X, sigma=1.0, kernel="knn", n_neighbors=10, method="slq", random_state=seed
        )
        assert r.converged and abs(r.value - ex.value) <= 1e-2 * ex.value
        cover += abs(r.value - ex.value) <= 3 * r.stderr
    assert cover >= 4
    a, b = (
        M.diffusion_spectral_entropy(
            X, sigma=1.0, kernel="knn", method="slq", random_state=3, n_jobs=nj
        )
        for nj in (1, 2)
    )
    assert a == b
    with pytest.raises(ValueError, match="kernel="):
        M.diffusion_spectral_entropy(X, kernel="sparse")
    with pytest.raises(ValueError, match="n_neighbors"):
        M.diffusion_spectral_entropy(X, kernel="knn", n_neighbors=0)
    mi = M.diffusion_spectral_mutual_information(
        X, (X[:, 0] > 0).astype(int), sigma=1.0, kernel="knn", n_repetitions=2
    )
    assert np.isfinite(mi.value)


def test_dse_knn_entropy_step_rule():
    """The kNN kernel's Lanczos stop on the entropy's own move (step_rule="entropy"): fewer
    steps than the totals rule, within 1 % of the dense eigenvalues of the same kernel, and
    its error bar (sampling + truncation indicator) covers them on most seeds."""
    from geoml.measures import _dse
    from geoml.measures._slq_entropy import slq_entropy
    from geoml.spectral._slq import _csr_block_product

    X = np.random.default_rng(4).normal(size=(2500, 8))
    K, deg, _ = _dse._knn_kernel(X, 1.0, 15, np.random.default_rng(0), None)
    ev = np.abs(np.linalg.eigvalsh(K.toarray()))
    p = ev / ev.sum()
    exact = -(p * np.log(p)).sum()
    v = np.sqrt(deg) / np.linalg.norm(np.sqrt(deg))

    def matmat(B, out):
        _csr_block_product(K, np.ascontiguousarray(B), out, 1)
        out -= np.outer(v, v @ B)

    cover, fewer = 0, 0
    for seed in range(12):
        kw = dict(S_extra=1.0, T_extra=0.0, random_state=seed)
        H, se, _, steps, ok = slq_entropy(matmat, 2500, np.abs, step_rule="entropy", **kw)
        _, _, _, steps_tot, _ = slq_entropy(matmat, 2500, np.abs, **kw)
        assert ok and abs(H - exact) <= 1e-2 * exact
        cover += abs(H - exact) <= 3 * se
        fewer += steps < steps_tot
    assert cover >= 11 and fewer >= 10


def test_dse_knn_reports_recall(monkeypatch):
    """kernel="knn" returns the search's RecallEstimate in ``recall_``: exact below 20,000
    points, and the approximate search's own (here a missed target) passed through."""
    import geoml.neighbors as nbrs

    X = np.random.default_rng(2).normal(size=(400, 5))
    r = M.diffusion_spectral_entropy(X, sigma=1.0, kernel="knn", method="slq", random_state=0)
    assert isinstance(r, M.KNNSpectralMeasure) and r.recall_.reached
    assert r.recall_.estimate == 1.0
    real = nbrs.knn
    low = geoml.RecallEstimate(0.2, 0.15, 0.25, 500, 0.99, False, "nndescent", 8)

    class Fake:
        def __init__(self, res):
            self.indices, self.distances, self.recall_ = res.indices, res.distances, low

    def fake_knn(X, k, **kw):
        return Fake(real(X, k))

    monkeypatch.setattr(nbrs, "knn", fake_knn)
    for method in ("slq", "exact"):
        r2 = M.diffusion_spectral_entropy(X, sigma=1.0, kernel="knn", method=method)
        assert r2.recall_ is low and not r2.recall_.reached


def test_dse_slq_deterministic(dse_uniform):
    X, _ = dse_uniform
    a = M.diffusion_spectral_entropy(X, method="slq", random_state=2, n_jobs=1)
    b = M.diffusion_spectral_entropy(X, method="slq", random_state=2, n_jobs=2)
    assert a == b


def test_dsmi_formula():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 150)
    X = rng.normal(size=(150, 5)) + 2.0 * y[:, None]
    r = M.diffusion_spectral_mutual_information(X, y, sigma=3.0, n_repetitions=3, random_state=7)
    want = 0.0
    for c in np.unique(y):
        cnt = int((y == c).sum())
        rnd = random.Random(7)
        reps = [_dse_formula(X[np.array(rnd.sample(range(150), k=cnt))], 3.0) for _ in range(3)]
        want += cnt / 150 * (np.mean(reps) - _dse_formula(X[y == c], 3.0))
    assert r.value == pytest.approx(want, rel=1e-10)
    np.testing.assert_array_equal(r.labels, y)


def test_dsmi_random_state_numpy_int_and_negative():
    """A NumPy integer seed was refused by ``random.Random`` ("The only supported seed types
    are: None, int, ..."); a negative one reached NumPy's message without the name."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    X = rng.normal(size=(80, 3)) + y[:, None]
    ref = M.diffusion_spectral_mutual_information(X, y, n_repetitions=2, random_state=7)
    for seed in (np.int64(7), np.int32(7), np.uint8(7)):
        r = M.diffusion_spectral_mutual_information(X, y, n_repetitions=2, random_state=seed)
        assert r.value == ref.value
    negative = r"random_state must be None, an int >= 0.*negative seed -1"
    with pytest.raises(ValueError, match=negative):
        M.diffusion_spectral_mutual_information(X, y, random_state=-1)


def test_dsmi_of_string_labels():
    """Class names (a 1-D string array) are discrete labels: with the default ``discrete``
    they were read as a continuous reference and refused ("y must hold real numbers")."""
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 120)
    X = rng.normal(size=(120, 4)) + 2.0 * y[:, None]
    ref = M.diffusion_spectral_mutual_information(X, y, sigma=3.0, random_state=1)
    names = np.array(["left", "right", "rest"])[y]
    r = M.diffusion_spectral_mutual_information(X, names, sigma=3.0, random_state=1)
    assert r.value == pytest.approx(ref.value, rel=1e-12)  # (summed in another order)
    np.testing.assert_array_equal(r.labels, names)


def test_dsmi_against_reference():
    dse_dsmi = pytest.importorskip("dse_dsmi")
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    ref, _ = dse_dsmi.diffusion_spectral_mutual_information(X, y)
    r = M.diffusion_spectral_mutual_information(X, y, method="exact")
    assert r.value == pytest.approx(ref, rel=1e-10, abs=1e-12)
    # a continuous scalar: equal-width bins
    z = np.random.default_rng(0).uniform(-1, 1, (X.shape[0], 1))[:500]
    ref, bins = dse_dsmi.diffusion_spectral_mutual_information(X[:500], z)
    r = M.diffusion_spectral_mutual_information(X[:500], z)
    np.testing.assert_array_equal(r.labels, np.asarray(bins).ravel())
    assert r.value == pytest.approx(ref, rel=1e-10, abs=1e-12)


def test_dse_bad_input():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="sigma"):
        M.diffusion_spectral_entropy(X, sigma=0)
    with pytest.raises(ValueError, match="t="):
        M.diffusion_spectral_entropy(X, t=-1)
    with pytest.raises(TypeError, match="sigma"):
        M.diffusion_spectral_entropy(X, sigma="a")
    with pytest.raises(ValueError, match="method="):
        M.diffusion_spectral_entropy(X, method="cheb")
    with pytest.raises(ValueError, match="NaN"):
        M.diffusion_spectral_entropy(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="samples"):
        M.diffusion_spectral_mutual_information(X, np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="overflow"):
        M.diffusion_spectral_entropy(np.array([[1e160], [0.0]]), sigma=1.0)
    with pytest.raises(ValueError, match="overflow"):
        M.diffusion_spectral_entropy(np.array([[1.0], [0.0]]), sigma=1e-300)
    with pytest.raises(ValueError, match="n_repetitions"):
        M.diffusion_spectral_mutual_information(X, np.zeros(20, dtype=int), n_repetitions=0)


# ----------------------------------------------------------------------------- magnitude


def _dense_weights(X, t):
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    return np.linalg.solve(np.exp(-t * D), np.ones(len(X)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_magnitude_against_solve(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(150 + 50 * seed, 3 + seed))
    ts = [0.3, 1.0, 4.0]
    W = M.weighting_vector(X, ts)
    for j, t in enumerate(ts):
        ref = _dense_weights(X, t)
        np.testing.assert_allclose(W[:, j], ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())
        assert M.magnitude(X, t) == pytest.approx(ref.sum(), rel=1e-8)
    np.testing.assert_allclose(M.magnitude(X, ts), W.sum(axis=0), rtol=1e-12)
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    assert M.magnitude(D, 1.0, metric="precomputed") == pytest.approx(
        M.magnitude(X, 1.0), rel=1e-10
    )
    assert M.magnitude(X.astype(np.float32), 1.0) == pytest.approx(M.magnitude(X, 1.0), rel=1e-4)


@pytest.mark.parametrize("t", [0.01, 0.7, 5.0])
def test_magnitude_closed_forms(t):
    X = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert M.magnitude(X, t) == pytest.approx(2 / (1 + np.exp(-5 * t)), rel=1e-12)
    n, step = 40, 0.25
    line = step * np.arange(n, dtype=float)[:, None]
    assert M.magnitude(line, t) == pytest.approx(1 + (n - 1) * np.tanh(t * step / 2), rel=1e-9)
    q = np.exp(-t * step)
    w = M.weighting_vector(line, t)
    assert w[0] == pytest.approx(1 / (1 + q), rel=1e-9)
    np.testing.assert_allclose(w[1:-1], (1 - q) / (1 + q), rtol=1e-7)
    assert M.magnitude(np.zeros((1, 3)), t) == pytest.approx(1.0)


def test_magnitude_dimension():
    line = np.linspace(0, 1, 300)[:, None]
    ts = np.array([30.0, 60.0, 120.0])
    prof = M.magnitude_dimension(line, ts)
    h = np.log(2)
    want = np.log(M.magnitude(line, ts * np.exp(h))) - np.log(M.magnitude(line, ts / np.exp(h)))
    np.testing.assert_allclose(prof, want / (2 * h), rtol=1e-12)
    assert np.all(np.abs(prof - 1) < 0.1)
    sq = np.random.default_rng(0).uniform(size=(600, 2))
    # a finite sample of the unit square: the profile rises towards 2, then falls to 0
    prof = M.magnitude_dimension(sq, [10.0, 20.0, 160.0], h=0.1)
    assert 1.45 < prof[:2].max() <= 2.05 and prof[2] < 0.5


def test_magnitude_against_magnipy():
    pytest.importorskip("torch")
    compute = pytest.importorskip("magnipy.magnitude.compute")
    X = np.random.default_rng(3).normal(size=(200, 4))
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    ts = np.array([0.1, 0.5, 1.0, 3.0])
    ref = compute.compute_magnitude_from_distances(D, ts, method="cholesky")
    np.testing.assert_allclose(M.magnitude(X, ts), ref, rtol=1e-8)


def test_magnitude_scales_are_numbers():
    """t="1" was converted by NumPy (an array result for a string), [True, 2.0] read as
    [1, 2], a 2-D t flattened, a 0-d array treated as a sequence; messages printed NumPy 2
    scalar reprs ("got np.float64(0.0)")."""
    X = np.random.default_rng(0).normal(size=(12, 2))
    ref = M.magnitude(X, 1.0)
    for bad in ("1", b"1", [True, 2.0], [1.0, "2"], np.array(["1"]), None):
        with pytest.raises(TypeError, match="t must be a positive number or a sequence"):
            M.magnitude(X, bad)
    with pytest.raises(TypeError, match="ts must be a positive number or a sequence"):
        M.magnitude_dimension(X, ["0.5", "1"])
    with pytest.raises(ValueError, match="t must be a number or a 1-D sequence"):
        M.magnitude(X, [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"positive finite scales; got 0\.0$"):
        M.magnitude(X, np.float64(0.0))
    with pytest.raises(ValueError, match=r"t must be > 0; got 0\.0$"):
        geoml.heat_kernel(geoml.knn_graph(X, 3), X, np.float64(0.0))
    for t in (np.array(1.0), np.float32(1.0), np.int64(1)):
        got = M.magnitude(X, t)
        assert isinstance(got, float) and got == pytest.approx(ref, rel=1e-6)
    np.testing.assert_array_equal(M.magnitude(X, (1.0, 2.0)), M.magnitude(X, [1.0, 2.0]))


def test_magnitude_bad_input():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="positive finite"):
        M.magnitude(X, 0.0)
    with pytest.raises(ValueError, match="positive finite"):
        M.magnitude(X, [1.0, np.nan])
    with pytest.raises(TypeError, match="positive number"):
        M.magnitude(X, True)
    with pytest.raises(ValueError, match="metric="):
        M.magnitude(X, 1.0, metric="cosine")
    with pytest.raises(ValueError, match="square"):
        M.magnitude(X, 1.0, metric="precomputed")
    with pytest.raises(ValueError, match="zero diagonal"):
        M.magnitude(np.ones((3, 3)), 1.0, metric="precomputed")
    with pytest.raises(ValueError, match="not positive definite"):
        M.magnitude(np.vstack([X, X[:1]]), 1.0)  # a duplicate point
    with pytest.raises(ValueError, match="NaN"):
        M.magnitude(np.full((3, 2), np.nan), 1.0)
    with pytest.raises(ValueError, match="overflow"):
        M.magnitude(np.array([[1e200], [-1e200]]), 1e-300)
    # t d beyond float64: the similarity is exp(-inf) = 0 and the magnitude n
    assert M.magnitude(np.array([[1e150], [-1e150]]), 1e300) == 2.0
    with pytest.raises(ValueError, match="increasing"):
        M.magnitude_dimension(X, [2.0, 1.0])


# ------------------------------------------------------------- magnitude: matrix-free CG


def _dense_Z(X, t):
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    return np.exp(-t * D)


@pytest.mark.parametrize("n,d", [(1, 3), (2, 1), (37, 4), (500, 3), (700, 10)])
def test_magnitude_matvec_against_dense(n, d):
    from geoml import _core

    rng = np.random.default_rng(n + d)
    X = rng.normal(size=(n, d))
    ts = np.array([1e-3, 0.4, 3.0, 1e3])
    V = rng.normal(size=(ts.size, n))
    out = _core.magnitude_matvec(X, ts, V, n_jobs=1)
    for s, t in enumerate(ts):
        ref = _dense_Z(X, t) @ V[s]
        np.testing.assert_allclose(out[s], ref, rtol=0, atol=1e-13 * np.abs(V[s]).sum())
    out32 = _core.magnitude_matvec(X.astype(np.float32), ts, V, n_jobs=1)
    np.testing.assert_allclose(
        out32, _core.magnitude_matvec(X.astype(np.float32).astype(float), ts, V), rtol=1e-14
    )
    if n >= 500:
        # pruning of far tile pairs (points in spatial order): every dropped term is below
        # exp(-cutoff); beyond 708 only exact zeros go, bit for bit
        from geoml.measures._magnitude_cg import spatial_order

        Xs = np.ascontiguousarray(X[spatial_order(X)])
        full = _core.magnitude_matvec(Xs, ts, V)
        np.testing.assert_array_equal(_core.magnitude_matvec(Xs, ts, V, cutoff=710.0), full)
        cut = _core.magnitude_matvec(Xs, ts, V, cutoff=8.0)
        bound = np.exp(-8.0) * np.abs(V).sum(axis=1) + 1e-13 * np.abs(V).sum(axis=1)
        assert (np.abs(cut - full).max(axis=1) <= bound).all()
        with pytest.raises(ValueError, match="cutoff"):
            _core.magnitude_matvec(Xs, ts, V, cutoff=0.0)
    if n == 700:  # tiles are skipped where they can be: 2000 points along a segment
        Y = np.sort(rng.uniform(0, 100, size=2000))[:, None]
        W = rng.normal(size=(2, 2000))
        t2 = np.array([0.1, 1.0])
        full = _core.magnitude_matvec(Y, t2, W)
        ref = np.stack([_dense_Z(Y, t) @ W[s] for s, t in enumerate(t2)])
        np.testing.assert_allclose(full, ref, rtol=0, atol=1e-13 * np.abs(W).sum())
        cut = _core.magnitude_matvec(Y, t2, W, cutoff=8.0)
        diff = np.abs(cut - full).max(axis=1)
        assert (diff <= (np.exp(-8.0) + 1e-13) * np.abs(W).sum(axis=1)).all()
        assert diff[1] > 0
    # far apart: exp(-t d) underflows to exactly 0; the diagonal stays 1
    Y = np.array([[0.0], [1e5]])
    np.testing.assert_array_equal(
        _core.magnitude_matvec(Y, np.array([1.0]), np.array([[2.0, 3.0]])), [[2.0, 3.0]]
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_magnitude_cg_against_solve(seed):
    rng = np.random.default_rng(seed)
    n, d = [(300, 2), (350, 3), (250, 5)][seed]
    X = rng.uniform(size=(n, d))
    ts = np.array([3.0, 10.0, 40.0, 200.0])
    r = M.weighting_vector(X, ts, method="cg", return_info=True)
    assert r.method == "cg" and r.converged and (r.residual <= 1e-9).all()
    assert (r.n_iter >= 1).all() and (r.n_iter <= 60).all()
    for j, t in enumerate(ts):
        Z = _dense_Z(X, t)
        ref = np.linalg.solve(Z, np.ones(n))
        np.testing.assert_allclose(r.weights[:, j], ref, rtol=0, atol=1e-8 * np.abs(ref).max())
        assert r.value[j] == pytest.approx(ref.sum(), rel=1e-8)
        # the residual reported is the true one
        assert r.residual[j] == pytest.approx(
            np.linalg.norm(1 - Z @ r.weights[:, j]) / np.sqrt(n), rel=1e-3, abs=1e-15
        )
    np.testing.assert_allclose(
        M.magnitude(X, ts, method="cg"),
        M.magnitude(X, ts, method="cholesky"),
        rtol=1e-8,
    )


def test_magnitude_cg_small_scales():
    # small t: Z is ill-conditioned (cond ~ 1e9 here); the magnitude still agrees, since its
    # error is bounded by ||w|| ||1 - Z w||
    X = np.random.default_rng(5).uniform(size=(800, 2))
    for t in (0.05, 1.0):
        r = M.magnitude(X, t, method="cg", return_info=True)
        assert r.converged and r.n_iter[0] <= 60
        assert r.value == pytest.approx(M.magnitude(X, t, method="cholesky"), rel=1e-8)


@pytest.mark.parametrize("t", [0.01, 0.7, 5.0])
def test_magnitude_cg_closed_forms(t):
    X = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert M.magnitude(X, t, method="cg") == pytest.approx(2 / (1 + np.exp(-5 * t)), rel=1e-10)
    n, step = 300, 0.25
    line = step * np.arange(n, dtype=float)[:, None]
    assert M.magnitude(line, t, method="cg") == pytest.approx(
        1 + (n - 1) * np.tanh(t * step / 2), rel=1e-9
    )
    q = np.exp(-t * step)
    w = M.weighting_vector(line, t, method="cg")
    assert w[0] == pytest.approx(1 / (1 + q), rel=1e-7)
    np.testing.assert_allclose(w[1:-1], (1 - q) / (1 + q), rtol=1e-6)
    assert M.magnitude(np.zeros((1, 3)), t, method="cg") == 1.0


def test_magnitude_cg_threads_and_dtype():
    X = np.random.default_rng(7).normal(size=(900, 3))
    a = M.weighting_vector(X, [0.5, 2.0], method="cg", n_jobs=1)
    b = M.weighting_vector(X, [0.5, 2.0], method="cg", n_jobs=2)
    np.testing.assert_array_equal(a, b)
    # float32 points are widened once: the same solve as on their float64 copy
    c = M.weighting_vector(X.astype(np.float32), [0.5, 2.0], method="cg")
    d = M.weighting_vector(X.astype(np.float32).astype(float), [0.5, 2.0], method="cg")
    np.testing.assert_array_equal(c, d)


def test_magnitude_stored_same_bits_off_the_main_thread():
    # the stored path (packed float32 Z_t, its symmetric product, the C++ Vecchia factor) from
    # worker threads, with other buffers in between: the same bits as on the main thread
    from concurrent.futures import ThreadPoolExecutor

    X = np.random.default_rng(12).uniform(size=(2100, 2))
    ref = M.weighting_vector(X, 3.0, method="cg", n_jobs=2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outs = list(pool.map(lambda j: M.weighting_vector(X, 3.0, method="cg", n_jobs=j), [1, 2]))
    for out in outs:
        np.testing.assert_array_equal(out, ref)


def test_magnitude_cg_not_converged_warns():
    X = np.random.default_rng(8).uniform(size=(500, 2))
    with pytest.warns(RuntimeWarning, match="did not reach rtol"):
        r = M.magnitude(X, [1.0, 100.0], method="cg", max_iter=2, return_info=True)
    assert not r.converged and (r.n_iter == 2).all() and r.residual.max() > 1e-9
    with pytest.warns(RuntimeWarning, match="did not reach rtol"):
        M.magnitude_dimension(X, [1.0, 2.0], method="cg", max_iter=1)


def _unpack_stored(Zp, n):
    """The full n x n matrix from magnitude_matrix's packed upper block triangle (block rows
    of 64, each row from its block's first column), mirrored."""
    Z = np.full((n, n), np.nan, dtype=np.float32)
    off = 0
    for i0 in range(0, n, 64):
        R, w = min(64, n - i0), n - i0
        Z[i0 : i0 + R, i0:] = Zp[off : off + R * w].reshape(R, w)
        off += R * w
    assert off == Zp.size
    bi = np.arange(n) // 64
    below = bi[:, None] > bi[None, :]  # below the diagonal blocks: not stored
    assert np.isnan(Z[below]).all() and not np.isnan(Z[~below]).any()
    Z[below] = Z.T[below]
    return Z


@pytest.mark.parametrize("n,d", [(1, 2), (37, 4), (64, 2), (200, 1), (1100, 3), (2100, 2)])
def test_magnitude_matrix_and_f32_product(n, d):
    # the stored float32 similarity (each entry exp in float64, rounded once; the upper block
    # triangle packed) and its float64-accumulated symmetric product; n not a multiple of 64;
    # n = 2100: both kernels run on 2 threads (n^2 / 2e6 >= 2)
    from geoml import _core

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, d))
    for t in (0.3, 5.0):
        Zp = _core.magnitude_matrix(X, t)
        assert Zp.dtype == np.float32 and Zp.ndim == 1
        Z = _unpack_stored(Zp, n)
        ref = _dense_Z(X, t)
        np.testing.assert_allclose(Z, ref, rtol=6e-8, atol=1e-300)
        np.testing.assert_array_equal(Z, Z.T)  # the diagonal blocks are stored in full
        assert (np.diagonal(Z) == 1).all()
        np.testing.assert_array_equal(_core.magnitude_matrix(X, t, n_jobs=1), Zp)
        v = rng.normal(size=n)
        out = _core.stored_matvec(Zp, v, n_jobs=1)
        np.testing.assert_allclose(out, Z.astype(float) @ v, rtol=1e-12, atol=1e-12 * n)
        np.testing.assert_array_equal(_core.stored_matvec(Zp, v, n_jobs=2), out)
        # the same bits wherever the buffers lie (explicit fma on fixed lanes)
        Zs = np.empty(Zp.size + 3, np.float32)[3:]
        Zs[:] = Zp
        vs = np.empty(n + 1)[1:]
        vs[:] = v
        np.testing.assert_array_equal(_core.stored_matvec(Zs, vs, n_jobs=2), out)
    # far 64-point blocks are zeros, everything kept is the same value
    from geoml.measures._magnitude_cg import spatial_order

    Xs = np.ascontiguousarray(X[spatial_order(X)])
    full = _core.magnitude_matrix(Xs, 20.0)
    cut = _core.magnitude_matrix(Xs, 20.0, cutoff=8.0)
    kept = cut != 0
    np.testing.assert_array_equal(cut[kept], full[kept])
    assert (full[~kept] <= np.exp(-8.0)).all()
    with pytest.raises(ValueError, match="cutoff"):
        _core.magnitude_matrix(Xs, 1.0, cutoff=0.0)
    with pytest.raises(ValueError, match="scale"):
        _core.magnitude_matrix(Xs, -1.0)
    with pytest.raises(ValueError, match="packed"):
        _core.stored_matvec(np.ones((2, 3), np.float32), np.ones(3))
    with pytest.raises(ValueError, match="packed"):
        _core.stored_matvec(np.ones(8, np.float32), np.ones(3))


def _stored_calls(monkeypatch):
    from geoml.measures import _magnitude_cg

    calls = []
    real = _magnitude_cg._solve_stored

    def spy(*args, **kw):
        out = real(*args, **kw)
        calls.append(out[3])  # the true residual it reached
        return out

    monkeypatch.setattr(_magnitude_cg, "_solve_stored", spy)
    return calls


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_magnitude_stored_float32_against_solve(seed, monkeypatch):
    # n >= 1024 at small and mid scales: Z_t stored in float32, inner CG on it, float64
    # residuals; the answer still meets 1e-8 against a float64 dense solve
    calls = _stored_calls(monkeypatch)
    rng = np.random.default_rng(seed)
    n, d = [(1300, 2), (1100, 3), (1050, 6)][seed]
    X = rng.uniform(size=(n, d)) if seed != 1 else rng.normal(size=(n, d))
    ts = np.array([0.05, 1.0, 10.0])
    r = M.weighting_vector(X, ts, method="cg", return_info=True)
    assert r.method == "cg" and r.converged and (r.residual <= 1e-10).all()
    assert len(calls) == 3 and max(calls) <= 1e-10  # all three took the stored path
    for j, t in enumerate(ts):
        Z = _dense_Z(X, t)
        ref = np.linalg.solve(Z, np.ones(n))
        assert r.value[j] == pytest.approx(ref.sum(), rel=1e-8)
        np.testing.assert_allclose(r.weights[:, j], ref, rtol=0, atol=1e-7 * np.abs(ref).max())
        assert r.residual[j] == pytest.approx(
            np.linalg.norm(1 - Z @ r.weights[:, j]) / np.sqrt(n), rel=1e-3, abs=1e-15
        )
    # the same for any thread count
    a = M.weighting_vector(X, ts[1], method="cg", n_jobs=1)
    np.testing.assert_array_equal(a, M.weighting_vector(X, ts[1], method="cg", n_jobs=2))
    # a large scale leaves the stored path (the matrix-free product prunes most pairs), and
    # so do too few points or too many for DENSE_BYTES
    from geoml.measures._magnitude_cg import DENSE_BYTES, spatial_order, stored_pays

    Y = np.random.default_rng(3).uniform(size=(8000, 2))
    Y = Y[spatial_order(Y)]
    assert stored_pays(Y, 1.0) and not stored_pays(Y, 2000.0)
    assert not stored_pays(Y[:1000], 1.0)
    monkeypatch.setattr("geoml.measures._magnitude_cg.DENSE_BYTES", 4 * 7999**2)
    assert not stored_pays(Y, 1.0)
    assert DENSE_BYTES >= 4 * 10_000**2


def test_magnitude_stored_near_duplicates(monkeypatch):
    # pairs 1e-7 apart: Z_t is nearly singular and its float32 copy too coarse for refinement
    # (or even indefinite); the stall is detected and matrix-free CG finishes the solve
    calls = _stored_calls(monkeypatch)
    rng = np.random.default_rng(11)
    X = rng.uniform(size=(1100, 2))
    X[1::2] = X[0::2] + 1e-7 * rng.normal(size=(550, 2))
    r = M.magnitude(X, 5.0, method="cg", return_info=True)
    assert len(calls) == 1
    Z = _dense_Z(X, 5.0)
    ref = np.linalg.solve(Z, np.ones(X.shape[0])).sum()
    assert r.converged and r.residual[0] <= 1e-9
    assert r.value == pytest.approx(ref, rel=1e-8)
    # a few near-duplicates among distinct points
    Y = rng.uniform(size=(1200, 3))
    Y[:20] = Y[20:40] + 1e-9
    r = M.magnitude(Y, [0.5, 4.0], method="cg", return_info=True)
    want = [np.linalg.solve(_dense_Z(Y, t), np.ones(1200)).sum() for t in (0.5, 4.0)]
    assert r.converged
    np.testing.assert_allclose(r.value, want, rtol=1e-8)


def test_magnitude_auto_and_profile(monkeypatch):
    from geoml.measures import _magnitude

    X = np.random.default_rng(9).uniform(size=(300, 2))
    assert M.magnitude(X, 4.0, return_info=True).method == "cholesky"
    monkeypatch.setattr(_magnitude, "_AUTO_CG", 100)
    r = M.magnitude(X, 4.0, return_info=True)
    assert r.method == "cg" and r.converged
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    assert M.magnitude(D, 4.0, metric="precomputed", return_info=True).method == "cholesky"
    ts = [5.0, 10.0, 20.0]
    np.testing.assert_allclose(
        M.magnitude_dimension(X, ts, method="cg"),
        M.magnitude_dimension(X, ts, method="cholesky"),
        rtol=1e-7,
    )


def test_magnitude_cg_bad_input():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="method="):
        M.magnitude(X, 1.0, method="lu")
    with pytest.raises(ValueError, match="metric='euclidean'"):
        M.magnitude(np.zeros((3, 3)), 1.0, metric="precomputed", method="cg")
    with pytest.raises(ValueError, match="duplicate"):
        M.magnitude(np.vstack([X, X[:1]]), 1.0, method="cg")
    with pytest.raises(ValueError, match="overflow"):
        M.magnitude(np.array([[1e200], [-1e200]]), 1.0, method="cg")
    with pytest.raises(ValueError, match="rtol"):
        M.magnitude(X, 1.0, method="cg", rtol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        M.magnitude(X, 1.0, method="cg", max_iter=0)
    with pytest.raises(TypeError, match="return_info"):
        M.magnitude(X, 1.0, return_info="yes")
    with pytest.raises(ValueError, match="n_jobs"):
        M.magnitude(X, 1.0, method="cg", n_jobs=0)
    with pytest.raises(ValueError, match="NaN"):
        M.magnitude(np.full((3, 2), np.nan), 1.0, method="cg")
    from geoml import _core

    with pytest.raises(TypeError):
        _core.magnitude_matvec(np.zeros((3, 2), dtype=np.int64), np.ones(1), np.ones((1, 3)))
    with pytest.raises(ValueError, match="len"):
        _core.magnitude_matvec(np.zeros((3, 2)), np.ones(2), np.ones((1, 3)))
    with pytest.raises(ValueError, match="positive"):
        _core.magnitude_matvec(np.zeros((3, 2)), np.array([-1.0]), np.ones((1, 3)))


def test_vecchia_pattern_and_preconditioner():
    from geoml.measures._magnitude_cg import Vecchia, vecchia_pattern

    X = np.random.default_rng(11).uniform(size=(400, 2))
    k = 8
    order, nb = vecchia_pattern(X, k, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(order), np.arange(400))
    Xo = X[order]
    full = 0
    for p in range(400):
        got = nb[p][nb[p] >= 0]
        assert (got < p).all() and len(set(got.tolist())) == got.size
        d = np.linalg.norm(Xo[:p] - Xo[p], axis=1)
        if got.size == min(p, k):  # the nearest earlier points (ties aside)
            full += 1
            want = np.sort(d)[got.size - 1] if p else 0.0
            assert p == 0 or d[got].max() <= want + 1e-15
    assert full >= 390
    # the preconditioner is symmetric positive definite and P Z is well conditioned
    t = 10.0
    P = Vecchia(X, order, nb, t)
    E = np.eye(400)
    Pm = np.stack([P(E[i : i + 1])[0] for i in range(400)])
    np.testing.assert_allclose(Pm, Pm.T, atol=1e-10 * np.abs(Pm).max())
    assert np.linalg.eigvalsh(Pm).min() > 0
    Z = _dense_Z(X, t)
    ev = np.linalg.eigvals(Pm @ Z).real
    assert np.linalg.cond(Z) > 1e3 and ev.max() / ev.min() < 4  # 1.9 here


@pytest.mark.parametrize("d", [1, 2, 5])
def test_vecchia_factor_against_solve(d):
    # C++ regressions b_p = (Z_cc + ridge I)^-1 Z_cp, d_p = 1 - Z_pc b_p against NumPy, -1
    # padding anywhere in a row, thread-count independent
    from geoml import _core
    from geoml.measures._magnitude_cg import vecchia_pattern

    rng = np.random.default_rng(d)
    n, k, t, ridge = 300, 7, 4.0, 1e-12
    X = rng.normal(size=(n, d))
    _, nb = vecchia_pattern(X, k, rng)
    nb[5, [0, 3]] = -1  # holes inside a row
    Bm, dvar = _core.vecchia_factor(X, nb, t, ridge=ridge, n_jobs=1)
    for p in range(n):
        c = nb[p][nb[p] >= 0]
        Zcc = np.exp(-t * np.linalg.norm(X[c][:, None] - X[c][None], axis=2))
        z = np.exp(-t * np.linalg.norm(X[c] - X[p], axis=1))
        b = np.linalg.solve(Zcc + ridge * np.eye(c.size), z)
        np.testing.assert_allclose(Bm[p][nb[p] >= 0], b, rtol=1e-9, atol=1e-12)
        assert (Bm[p][nb[p] < 0] == 0).all()
        assert dvar[p] == pytest.approx(1 - z @ b, rel=1e-9, abs=1e-14)
    B2, d2 = _core.vecchia_factor(X, nb, t, ridge=ridge, n_jobs=2)
    np.testing.assert_array_equal(B2, Bm)
    np.testing.assert_array_equal(d2, dvar)


def test_vecchia_factor_duplicates_and_bad_input():
    from geoml import _core

    # point 2 duplicates point 0: without a ridge, conditioning on {0, 1, 2} keeps 0 and 1
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.5, 0.5]])
    nb = np.array([[-1, -1, -1], [0, -1, -1], [0, 1, -1], [0, 1, 2]])
    Bm, dvar = _core.vecchia_factor(X, nb, 1.0)
    assert Bm[3, 2] == 0 and np.isfinite(Bm).all()
    Bk, dk = _core.vecchia_factor(X, np.array([[-1, -1], [0, -1], [0, 1], [0, 1]]), 1.0)
    np.testing.assert_allclose(Bm[3, :2], Bk[3], rtol=1e-12)
    assert dvar[3] == pytest.approx(dk[3], rel=1e-12)
    assert dvar[2] == pytest.approx(0.0, abs=1e-14)  # a duplicate is predicted exactly
    # with a ridge the duplicate stays (the ridge keeps Z_cc regular): finite, d_p > 0
    Br, dr = _core.vecchia_factor(X, nb, 1.0, ridge=1e-12)
    assert np.isfinite(Br).all() and (dr[1:] > 0).all()
    with pytest.raises(ValueError, match="nb"):
        _core.vecchia_factor(X, np.full((4, 2), 4), 1.0)
    with pytest.raises(ValueError, match="scale"):
        _core.vecchia_factor(X, nb, 0.0)
    with pytest.raises(ValueError, match="ridge"):
        _core.vecchia_factor(X, nb, 1.0, ridge=-1.0)


def test_von_neumann_and_effective_rank_of_huge_matrices():
    # tr(1e306 I_1000) overflowed: rho = 0 and the entropy 0; sum(s) of 1e308 I_5 overflowed:
    # effective rank 1 (silently, with NumPy's overflow warning)
    for method in ("exact", "slq"):
        h = geoml.von_neumann_entropy(np.eye(1000) * 1e306, method=method, random_state=0)
        assert h.value == pytest.approx(math.log(1000), rel=1e-12)
    rng = np.random.default_rng(0)
    W = sp.random(300, 300, density=0.05, random_state=1)
    W = (W + W.T).tocsr()
    ref = geoml.von_neumann_entropy(W, graph=True, method="exact").value
    big = geoml.von_neumann_entropy(W * 2.0**1020, graph=True, method="exact").value
    assert big == pytest.approx(ref, rel=1e-12)
    Z = rng.standard_normal((40, 6))
    ref = geoml.effective_rank(Z).value
    assert geoml.effective_rank(Z * 2.0**1018).value == pytest.approx(ref, rel=1e-12)
    assert geoml.effective_rank(np.eye(20, 5) * 1e308).value == pytest.approx(5.0, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("graph", [True, False])
def test_von_neumann_entropy_leaves_uncanonical_csr_input_intact(dtype, graph):
    # sp.csr_matrix(A, dtype=float64) shares indptr (and indices, and data for float64) with a
    # CSR A, and A.max() / abs(A) sum its duplicates in place: a CSR with repeated entries was
    # left with indptr[-1] = nnz / 2 < len(data) (a corrupt matrix), unsorted rows reordered
    W = sp.random(40, 40, density=0.2, random_state=3)
    W = (W + W.T + sp.eye(40) * (0 if graph else 40)).tocoo()
    r, c = np.concatenate([W.row, W.row]), np.concatenate([W.col, W.col])
    v = np.concatenate([W.data, W.data]).astype(dtype) / 2
    order = np.lexsort((-c, r))  # every row's columns descending, each entry twice
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=40))])
    A = sp.csr_matrix((v[order], c[order], indptr), shape=(40, 40))
    assert not A.has_canonical_format
    before = (A.data.copy(), A.indices.copy(), A.indptr.copy())
    h = geoml.von_neumann_entropy(A, graph=graph, method="exact")
    for got, want in zip((A.data, A.indices, A.indptr), before):
        np.testing.assert_array_equal(got, want)
    ref = geoml.von_neumann_entropy(A.toarray().astype(np.float64), graph=graph, method="exact")
    assert h.value == pytest.approx(ref.value, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_von_neumann_entropy_refuses_complex_sparse_input():
    # sp.csr_matrix(A, dtype=float64) kept the real part of complex weights (only NumPy's
    # ComplexWarning), where a dense complex A is refused
    W = sp.random(20, 20, density=0.3, random_state=0)
    W = (W + W.T).astype(np.complex128) * (1 + 1j)
    for graph in (True, False):
        with pytest.raises(TypeError, match="A must hold real numbers; got dtype complex128"):
            geoml.von_neumann_entropy(W, graph=graph)
