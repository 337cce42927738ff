"""Large-n intrinsic dimension (``neighbors="nndescent"`` / ``"auto"``): the corrected estimate
against the exact-neighbour one, the coverage of its standard error on many seeds, bad input."""

import numpy as np
import pytest

import geoml
from geoml import measures
from geoml.measures import _intrinsic as it
from geoml.measures import _intrinsic_approx as ap


def _exact(D, method):
    if method == "mle":
        return it._mle(D, False, "mle")[0]
    return it._gride_global(np.log(D[:, 1] / D[:, 0]), 1, 2)[0]


def _corrupt(D, kmax, p, rng):
    """Approximate lists as a search that misses neighbours would give them: in a fraction p
    of the rows the 1 to 3 nearest are missed (distances only grow; a biased plug-in)."""
    n, K = D.shape
    shift = np.where(rng.random(n) < p, rng.integers(1, 4, size=n), 0)
    cols = shift[:, None] + np.arange(kmax)[None, :]
    return np.take_along_axis(D, cols, axis=1)


@pytest.fixture(scope="module")
def gauss_knn():
    X = np.random.default_rng(0).normal(size=(3000, 6))
    _, D = geoml.knn(X, 25)
    return np.asarray(D, dtype=np.float64)


@pytest.mark.parametrize("method", ["mle", "gride"])
@pytest.mark.parametrize("p", [0.002, 0.02, 0.3])
def test_difference_estimator_covers_exact(gauss_knn, method, p):
    """+- 3 stderr covers the exact-neighbour estimate on >= 97 % of 100 seeds, from rare
    misses (the floor for few non-zero differences) to 30 % of the rows wrong; and the
    uncorrected estimate is off by more than that where many rows are wrong."""
    D = gauss_knn
    n = D.shape[0]
    kmax = 20 if method == "mle" else 2
    exact = _exact(D[:, :kmax], method)
    z, z_plug = [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        Da = _corrupt(D, kmax, p, rng)
        S = np.sort(rng.choice(n, 200, replace=False))
        if method == "mle":
            v, se = ap.mle_corrected(Da, D[S, :kmax], S, False, "mle")
        else:
            v, se = ap.gride_corrected(Da, D[S, :kmax], S, 1, 2)
        assert se > 0
        z.append(abs(v - exact) / se)
        z_plug.append(abs(_exact(Da, method) - exact) / se)
    assert np.mean(np.array(z) <= 3) >= 0.97
    if p == 0.3:
        assert np.mean(np.array(z_plug) > 3) >= 0.9


@pytest.mark.parametrize("method", ["mle", "gride"])
@pytest.mark.parametrize("m", [100, 1000])
def test_sampled_queries_cover_exact(gauss_knn, method, m):
    """neighbors="sample": +- 3 stderr covers the full exact estimate on >= 97 % of 200 seeds
    of the checked points (and +- 1 stderr on 55-85 %: the stderr is not inflated)."""
    D = gauss_knn
    n = D.shape[0]
    kmax = 20 if method == "mle" else 2
    exact = _exact(D[:, :kmax], method)
    z = []
    for seed in range(200):
        S = np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
        if method == "mle":
            v, se = ap.mle_corrected(None, D[S, :kmax], S, False, "mle", n=n)
        else:
            v, se = ap.gride_corrected(None, D[S, :kmax], S, 1, 2, n=n)
        z.append(abs(v - exact) / se)
    z = np.array(z)
    assert np.mean(z <= 3) >= 0.97
    assert 0.55 <= np.mean(z <= 1) <= 0.85


@pytest.mark.parametrize("method", ["mle", "gride"])
def test_difference_estimator_rare_unseen_misses(gauss_knn, method):
    """A search right everywhere up to rounding except a few rows, none of them checked
    (the worst case for the sample variance, which is then ~0): the floor still covers."""
    D = gauss_knn
    n = D.shape[0]
    kmax = 20 if method == "mle" else 2
    exact = _exact(D[:, :kmax], method)
    rng = np.random.default_rng(5)
    Da = D[:, :kmax] * (1 + 1e-15 * rng.standard_normal((n, kmax)))
    bad = rng.choice(n, 6, replace=False)
    Da[bad] = D[bad, 3 : 3 + kmax]
    S = np.sort(rng.choice(np.setdiff1d(np.arange(n), bad), 200, replace=False))
    f = ap.mle_corrected if method == "mle" else ap.gride_corrected
    args = (False, "mle") if method == "mle" else (1, 2)
    v, se = f(Da, D[S, :kmax], S, *args)
    assert abs(v - exact) > 1e-6 * exact  # the misses moved the estimate
    assert abs(v - exact) <= 3 * se


def test_difference_estimator_mean_comb(gauss_knn):
    D = gauss_knn
    exact = it._mle(D[:, :20], False, "mean")[0]
    hits = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        Da = _corrupt(D, 20, 0.2, rng)
        S = np.sort(rng.choice(D.shape[0], 300, replace=False))
        v, se = ap.mle_corrected(Da, D[S, :20], S, False, "mean")
        hits += abs(v - exact) <= 3 * se
    assert hits >= 58


def test_all_checked_is_exact(gauss_knn):
    """n_check = n: the correction is the exact value and its stderr 0."""
    D = gauss_knn
    rng = np.random.default_rng(1)
    Da = _corrupt(D, 20, 0.3, rng)
    S = np.arange(D.shape[0])
    v, se = ap.mle_corrected(Da, D[:, :20], S, False, "mle")
    assert v == pytest.approx(_exact(D[:, :20], "mle"), rel=1e-12) and se == 0
    v, se = ap.gride_corrected(Da[:, :2], D[:, :2], S, 1, 2)
    assert v == pytest.approx(_exact(D[:, :2], "gride"), rel=1e-10) and se == 0


def _sphere(n, d, seed):
    Z = np.random.default_rng(seed).normal(size=(n, d))
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["mle", "gride"])
def test_nndescent_end_to_end_covers_exact(method):
    """Real NN-descent graphs (low target recall) on a 9-sphere, 12 seeds."""
    X = _sphere(2500, 10, 0)
    exact = measures.intrinsic_dimension(X, method).dimension
    hits = 0
    for seed in range(12):
        r = measures.intrinsic_dimension(
            X, method, neighbors="nndescent", target_recall=0.5, n_check=300, random_state=seed
        )
        assert isinstance(r, measures.ApproxIntrinsicDimension)
        assert r.n_checked == 300 and r.recall_.method == "nndescent"
        assert r.neighbors_stderr > 0 and r.pointwise is None
        hits += abs(r.dimension - exact) <= 3 * r.neighbors_stderr
    assert hits >= 11


@pytest.mark.parametrize("method", ["mle", "gride"])
def test_sample_end_to_end(method):
    X = _sphere(3000, 10, 1)
    exact = measures.intrinsic_dimension(X, method).dimension
    hits = 0
    for seed in range(10):
        r = measures.intrinsic_dimension(
            X, method, neighbors="sample", n_check=500, random_state=seed
        )
        assert r.n_checked == 500 and r.recall_.method == "exact" and r.neighbors_stderr > 0
        hits += abs(r.dimension - exact) <= 3 * r.neighbors_stderr
    assert hits >= 9
    r = measures.intrinsic_dimension(X, method, neighbors="sample", n_check=3000)
    assert r.dimension == pytest.approx(exact, rel=1e-10) and r.neighbors_stderr == 0


def test_float32_and_threads_reproducible():
    X = _sphere(2000, 6, 3).astype(np.float32)
    a = measures.intrinsic_dimension(X, "mle", neighbors="nndescent", random_state=4, n_jobs=1)
    b = measures.intrinsic_dimension(X, "mle", neighbors="nndescent", random_state=4, n_jobs=2)
    assert a.dimension == b.dimension and a.neighbors_stderr == b.neighbors_stderr
    exact = measures.intrinsic_dimension(X, "mle").dimension
    assert abs(a.dimension - exact) <= 3 * a.neighbors_stderr + 1e-6 * exact


def test_auto_small_n_is_exact():
    X = _sphere(1500, 5, 2)
    for method, kw in (("mle", {}), ("gride", {}), ("twonn", {}), ("mle", {"local": True})):
        r = measures.intrinsic_dimension(X, method, neighbors="auto", **kw)
        e = measures.intrinsic_dimension(X, method, **kw)
        assert isinstance(r, measures.ApproxIntrinsicDimension)
        assert (r.dimension == e.dimension and r.stderr == e.stderr) or np.isnan(e.stderr)
        assert r.neighbors_stderr == 0 and r.recall_.method == "exact"
        if kw:
            np.testing.assert_array_equal(r.pointwise, e.pointwise)
    assert measures.intrinsic_dimension(X, neighbors="exact") == measures.intrinsic_dimension(X)


def test_auto_large_n_switches(monkeypatch):
    monkeypatch.setattr(it, "_AUTO_APPROX_N", 1000)
    X = _sphere(1500, 5, 2)
    r = measures.intrinsic_dimension(X, "gride", neighbors="auto", random_state=0, n_check=200)
    s = measures.intrinsic_dimension(X, "gride", neighbors="sample", random_state=0, n_check=200)
    assert r == s and r.n_checked == 200 and r.neighbors_stderr > 0
    t = measures.intrinsic_dimension(X, "twonn", neighbors="auto")  # no correction: exact
    assert t.recall_.method == "exact"


def test_bad_input():
    X = _sphere(300, 4, 0)
    with pytest.raises(ValueError, match="neighbors="):
        measures.intrinsic_dimension(X, neighbors="approx")
    for kw in (
        {"method": "twonn"},
        {"method": "lpca"},
        {"local": True},
        {"comb": "median"},
    ):
        for mode in ("nndescent", "sample"):
            with pytest.raises(ValueError, match=f"neighbors='{mode}' is for"):
                measures.intrinsic_dimension(X, neighbors=mode, **kw)
    with pytest.raises(ValueError, match="target_recall"):
        measures.intrinsic_dimension(X, neighbors="nndescent", target_recall=0.0)
    with pytest.raises(TypeError, match="target_recall"):
        measures.intrinsic_dimension(X, neighbors="nndescent", target_recall="high")
    with pytest.raises(ValueError, match="n_check"):
        measures.intrinsic_dimension(X, neighbors="nndescent", n_check=1)
    with pytest.raises(TypeError, match="n_check"):
        measures.intrinsic_dimension(X, neighbors="nndescent", n_check=2.5)
    with pytest.raises(ValueError, match="n2="):
        measures.intrinsic_dimension(X[:5], "gride", neighbors="nndescent", n1=2, n2=5)
    with pytest.raises(ValueError, match="k="):
        measures.intrinsic_dimension(X, neighbors="nndescent", k=300)


def test_exact_rows_removes_self_with_duplicates():
    X = np.repeat(np.random.default_rng(0).normal(size=(50, 3)), 2, axis=0)
    S = np.array([0, 7, 99])
    D, idx = ap.exact_rows(X, S, 4, None)
    assert not (idx == S[:, None]).any()
    assert (D[:, 0] == 0).all()  # the duplicate stays, at distance 0
    ref_i, ref_d = geoml.knn(X, 4)
    np.testing.assert_allclose(D, ref_d[S], atol=1e-12)
