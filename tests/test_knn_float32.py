"""Exact Euclidean kNN of float32 data below d = 16: the certified difference-form screen.

``geoml.knn`` searches float32 Euclidean / squared Euclidean data below d = 16 in float32
(``fl(sum (x_t - y_t)^2)``, k + 8 candidates per row, each row proved exact in float64 or
searched again in float64: ``docs/design/neighbors.md``). Checked against a NumPy float64
brute force, tie-aware, on data where float32 scores of the form ``||y||^2 - 2 x.y`` fail.
"""

import re
from types import SimpleNamespace

import numpy as np
import pytest

import geoml
from geoml import _core


def _distances(X, Q, metric):
    """float64 distances of the float32 rows Q to the rows of X, summed term by term in the
    order of the finishing step (the same bits: float32 differences and squares are exact in
    float64)."""
    X, Q = X.astype(np.float64), Q.astype(np.float64)
    S = np.zeros((len(Q), len(X)))
    for t in range(X.shape[1]):
        diff = Q[:, t][:, None] - X[:, t][None, :]
        S += diff * diff
    return np.sqrt(S) if metric == "euclidean" else S


def _check(X, Y, k, metric, res, rows=None):
    """``res`` lists, for each query row, k neighbours whose float64 distances are the k
    smallest (ties in any order), at those distances rounded to float32, nearest first."""
    Q = X if Y is None else Y
    rows = np.arange(len(Q)) if rows is None else rows
    D = _distances(X, Q[rows], metric)
    if Y is None:
        D[np.arange(len(rows)), rows] = np.inf
    ref = np.sort(D, axis=1)[:, :k]
    idx, dist = res.indices[rows], res.distances[rows]
    assert dist.dtype == np.float32 and idx.shape == (len(rows), k)
    np.testing.assert_array_equal(dist, ref.astype(np.float32))
    np.testing.assert_array_equal(np.take_along_axis(D, idx, axis=1), ref)
    assert all(len(set(r)) == k for r in idx.tolist())


def _data(kind, rng, n, d):
    if kind == "gauss":
        X = rng.normal(size=(n, d))
    elif kind == "uniform":
        X = rng.uniform(size=(n, d))
    elif kind == "far_clusters":  # 10 unit clusters 1,000 x N(0, 1) apart
        X = rng.normal(size=(n, d)) + 1000 * rng.normal(size=(10, d))[rng.integers(0, 10, n)]
    elif kind == "blobs":  # sklearn make_blobs(cluster_std=0.1): centres in [-10, 10]
        X = rng.normal(size=(n, d)) * 0.1 + rng.uniform(-10, 10, (10, d))[rng.integers(0, 10, n)]
    elif kind == "offset":  # far from the origin
        X = rng.normal(size=(n, d)) + 1e4
    elif kind == "duplicates":  # 30 copies of each point: exact ties at distance 0
        X = np.repeat(rng.normal(size=(n // 30 + 1, d)), 30, axis=0)[:n][rng.permutation(n)]
    elif kind == "lattice":  # integers: many different points at exactly the same distance
        X = rng.integers(0, 4, size=(n, d)) + 1e3
    elif kind == "wide":  # coordinates of very different scales
        X = rng.normal(size=(n, d)) * np.logspace(-20, 5, d)
    elif kind == "tiny":  # searched scaled by a power of two
        X = rng.normal(size=(n, d)) * 1e-30
    elif kind == "huge":  # squared differences near float32's overflow
        X = rng.normal(size=(n, d)) * (1e18 / np.sqrt(d))
    else:
        raise AssertionError(kind)
    return X.astype(np.float32)


KINDS = [
    "gauss",
    "uniform",
    "far_clusters",
    "blobs",
    "offset",
    "duplicates",
    "lattice",
    "wide",
    "tiny",
    "huge",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [1, 2, 3, 8, 15])
def test_float32_low_d_is_exact(kind, d):
    rng = np.random.default_rng(KINDS.index(kind) * 100 + d)
    n = 1500
    X = _data(kind, rng, n, d)
    rows = rng.choice(n, 300, replace=False)
    for metric in ("euclidean", "sqeuclidean"):
        for k in (1, 15):
            _check(X, None, k, metric, geoml.knn(X, k, metric=metric), rows)
    # separate queries (near the data, and the data points themselves: distance 0 first)
    Y = np.concatenate([X[rows[:150]], _data(kind, rng, 150, d)])
    _check(X, Y, 10, "euclidean", geoml.knn(X, 10, Y=Y))
    # with the point itself in its list
    res = geoml.knn(X, 5, exclude_self=False)
    D = _distances(X, X[rows], "euclidean")
    np.testing.assert_array_equal(
        np.take_along_axis(D, res.indices[rows], axis=1), np.sort(D, axis=1)[:, :5]
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [2, 3, 4, 8, 12])
def test_float32_low_d_seeds_and_shapes(seed, d):
    rng = np.random.default_rng(seed * 10 + d)
    n = int(rng.integers(400, 1300))
    X = _data(["gauss", "far_clusters", "blobs"][seed], rng, n, d)
    rows = rng.choice(n, 100, replace=False)
    for k in (1, 3, 17):
        _check(X, None, k, "euclidean", geoml.knn(X, k), rows)
    m = 300  # k near n: every point (or all but a few) a candidate
    for k in (m - 9, m - 1):
        _check(X[:m], None, k, "euclidean", geoml.knn(X[:m], k), rows[rows < m])
    Y = _data("gauss", rng, 97, d)
    _check(X, Y, 1, "sqeuclidean", geoml.knn(X, 1, Y=Y, metric="sqeuclidean"))
    _check(X[:m], Y, m, "sqeuclidean", geoml.knn(X[:m], m, Y=Y, metric="sqeuclidean"))


def test_float32_low_d_tiny_inputs():
    rng = np.random.default_rng(5)
    for n, d, k in ((2, 1, 1), (3, 2, 2), (7, 3, 1), (33, 5, 32), (65, 2, 8)):
        X = rng.normal(size=(n, d)).astype(np.float32)
        _check(X, None, k, "euclidean", geoml.knn(X, k))
        _check(X, X[:1], k, "euclidean", geoml.knn(X, k, Y=X[:1]))
    idx, dist = geoml.knn(X, 3, Y=np.empty((0, 2), np.float32))
    assert idx.shape == (0, 3) and dist.dtype == np.float32


def test_float32_screen_certificate_is_needed(capfd):
    """Points on the unit circle (float32-rounded) are at distances from the origin that
    float32 does not resolve (they differ by ~1e-8, the float32 scores take a handful of
    values), so the float32 screen's k + 8 candidates miss some of the true k nearest: only
    the certificate (which then fails) and the float64 search again make the result exact.
    Skipping the certificate gives wrong neighbours here."""
    rng = np.random.default_rng(0)
    theta = rng.uniform(0, 2 * np.pi, 400)
    C = np.stack([np.cos(theta), np.sin(theta)], axis=1).astype(np.float32)
    r2 = (C.astype(np.float64) ** 2).sum(1)
    assert len(np.unique(r2)) > 300 and np.ptp(r2) < 1e-6  # distinct, below float32's step
    X = np.concatenate([np.zeros((1, 2), np.float32), C])
    origin = np.zeros((1, 2), np.float32)
    for k in (1, 15, 40):
        res = geoml.knn(C, k, Y=origin, verbose=True)
        err = capfd.readouterr().err
        # (with the certificate skipped 11 of the 15 and 25 of the 40 neighbours were wrong)
        _check(C, origin, k, "euclidean", res)
        assert "float32 difference-form screen" in err
        assert "1 of 1 rows re-searched" in err, err
        # the self query: point 0 (the origin) has the circle as its neighbours
        res = geoml.knn(X, k, verbose=True)
        err = capfd.readouterr().err
        _check(X, None, k, "euclidean", res)
        assert int(re.search(r"(\d+) of 401 rows re-searched", err)[1]) >= 1
    # more than 8 duplicates: exact ties at distance 0 beyond the candidates (all re-searched)
    Xd = np.repeat(rng.normal(size=(20, 3)), 30, axis=0).astype(np.float32)
    res = geoml.knn(Xd, 5, verbose=True)
    assert "600 of 600 rows re-searched" in capfd.readouterr().err
    _check(Xd, None, 5, "euclidean", res)


def test_float32_screen_reports_no_rows_on_ordinary_data(capfd):
    rng = np.random.default_rng(3)
    for kind in ("uniform", "far_clusters", "blobs"):
        X = _data(kind, rng, 3000, 3)
        res = geoml.knn(X, 15, verbose=True)
        assert "float32 difference-form screen (19 candidates), 0 of 3000 rows" in (
            capfd.readouterr().err
        )
        _check(X, None, 15, "euclidean", res, rng.choice(3000, 300, replace=False))
    # from d = 16 on float32 data is searched by the float64 search (its own screens)
    geoml.knn(_data("gauss", rng, 3000, 16), 15, verbose=True)
    assert "difference-form" not in capfd.readouterr().err


@pytest.mark.parametrize("kind", ["gauss", "far_clusters", "duplicates"])
def test_float32_screen_every_simd_kernel(isa, kind):
    rng = np.random.default_rng(7)
    X = _data(kind, rng, 2070, 3)  # a partial last panel and block
    rows = rng.choice(len(X), 300, replace=False)
    _check(X, None, 9, "euclidean", geoml.knn(X, 9), rows)
    Y = _data(kind, rng, 301, 3)
    _check(X, Y, 9, "euclidean", geoml.knn(X, 9, Y=Y))


def test_float32_screen_threads_and_float64_search_agree():
    """The same bits for 1 and 2 threads, and the same distances (and neighbours, up to exact
    ties) as the float64 search of the float64 copy."""
    rng = np.random.default_rng(11)
    for kind, d in (("blobs", 8), ("far_clusters", 2), ("lattice", 3), ("uniform", 12)):
        X = _data(kind, rng, 4000, d)
        a = geoml.knn(X, 15, n_jobs=1)
        b = geoml.knn(X, 15, n_jobs=2)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.distances, b.distances)
        w = geoml.knn(X.astype(np.float64), 15)
        np.testing.assert_array_equal(a.distances, w.distances.astype(np.float32))
        if kind != "lattice":  # no exact ties
            np.testing.assert_array_equal(a.indices, w.indices)
        Y = _data(kind, rng, 500, d)
        q = geoml.knn(X, 15, Y=Y, n_jobs=2)
        w = geoml.knn(X.astype(np.float64), 15, Y=Y.astype(np.float64))
        np.testing.assert_array_equal(q.distances, w.distances.astype(np.float32))


def test_float32_screen_matches_sklearn_blobs():
    from sklearn.datasets import make_blobs
    from sklearn.neighbors import NearestNeighbors

    X = make_blobs(5000, n_features=8, centers=10, cluster_std=0.1, random_state=0)[0]
    X = X.astype(np.float32)
    res = geoml.knn(X, 10)
    idx, dist = res
    X64 = X.astype(np.float64)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(X64).kneighbors()
    np.testing.assert_allclose(dist, ref_dist[:, :10], rtol=1e-6)
    D = np.sqrt(((X64[:, None, :] - X64[idx]) ** 2).sum(-1))
    # (scikit-learn's float64 distances ||x||^2 - 2 x.y + ||y||^2 are 1e-11 off here)
    np.testing.assert_allclose(D, ref_dist[:, :10], rtol=1e-9)
    _check(X, None, 10, "euclidean", res, np.arange(0, 5000, 7))


def test_float32_screen_overflowing_scores_are_searched_again(capfd):
    """Past ``knn``'s magnitude check (here the C++ search directly) float32 difference-form
    scores overflow to +inf: such points are never admitted to a heap, which then holds
    fewer than the eligible points. Those rows prove nothing and are searched in float64."""
    X = np.array([[0.0, 0.0], [1e20, 0.0], [-1e20, 3.0], [2.0, 1e20], [1.0, 1.0]], np.float32)
    for k in (1, 4):
        idx, dist = _core.knn(
            X, None, k=k, metric=_core.Metric.euclidean, exclude_self=True, n_jobs=1, verbose=True
        )
        assert "difference-form" in capfd.readouterr().err
        _check(X, None, k, "euclidean", SimpleNamespace(indices=idx, distances=dist))
