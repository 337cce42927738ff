"""The scikit-learn contract of every public estimator (``geoml._base``), the shared
``random_state`` / ``tol`` helpers, seeded determinism across thread counts, and input
validation done once.

geoml does not import scikit-learn; these tests check the contract against scikit-learn itself.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
import geoml.spd
from geoml import _validation
from geoml._base import BaseEstimator, NotFittedError

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_clustering,
    parametrize_with_checks,
)
from sklearn.utils.validation import check_is_fitted  # noqa: E402

# One instance per public estimator, sized for the small data sets of scikit-learn's checks
# (10 to 60 samples): fewer neighbours than samples, few flow iterations; the defaults of
# every public estimator are added below.
ESTIMATORS = [
    geoml.KNNGraph(n_neighbors=3),
    geoml.LaplacianEigenmap(n_neighbors=5),
    geoml.DiffusionMap(n_neighbors=5),
    geoml.SpectralClustering(n_clusters=3, n_neighbors=5),
    geoml.OllivierRicci(),
    geoml.FormanRicci(),
    geoml.RicciFlow(n_iter=1),
    geoml.RicciCommunities(n_iter=1),
    geoml.Tucker(1),
    geoml.MDM(),
    geoml.TangentSpace(),
    geoml.MDS(max_iter=3000),
    geoml.HeatGeo(n_neighbors=5, max_iter=3000),
    geoml.PHATE(knn=3, max_iter=3000),
    geoml.KNNTransformer(n_neighbors=3),
    geoml.KNNTransformer(n_neighbors=3, mode="connectivity", method="nndescent", random_state=0),
    geoml.KNNGraph(n_neighbors=3, method="nndescent", random_state=0),
]


def _public_estimator_classes() -> list[type]:
    """Every estimator class named in ``geoml.__all__`` or ``geoml.spd.__all__``."""
    out = []
    for mod in (geoml, geoml.spd):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator) and obj not in out:
                out.append(obj)
    return out


def _at_defaults(cls):
    """``cls()`` at its default parameters, as users start (sizes that depend on the data,
    such as ``n_neighbors=15`` on scikit-learn's 10-sample checks, must work from them).
    Tucker has no default rank: ``Tucker(2)``. The Ricci flows keep every default but
    ``n_iter=1`` (their default 20 flow steps of exact optimal transport on the checks'
    100-node complete graphs took 53-59 s of CPU each; no bound on the data's size depends
    on ``n_iter``)."""
    if cls is geoml.Tucker:
        return cls(2)
    if cls in (geoml.RicciFlow, geoml.RicciCommunities):
        return cls(n_iter=1)
    return cls()


PUBLIC_ESTIMATORS = _public_estimator_classes()
# ... and every public estimator at its defaults (not repeated where the list above has it)
ESTIMATORS += [
    est
    for est in map(_at_defaults, PUBLIC_ESTIMATORS)
    if repr(est) not in {repr(e) for e in ESTIMATORS}
]


def test_every_public_estimator_is_checked_at_defaults():
    assert len(PUBLIC_ESTIMATORS) >= 15
    checked = {repr(e) for e in ESTIMATORS}
    assert all(repr(_at_defaults(cls)) in checked for cls in PUBLIC_ESTIMATORS)


def _expected_failed_checks(est) -> dict:
    """scikit-learn's documented ``expected_failed_checks``: one reason per check."""
    out = {}
    return out


with warnings.catch_warnings():  # geoml's estimators are not sklearn.base.BaseEstimator on purpose
    warnings.filterwarnings(
        "ignore", "Estimator .* does not inherit from `sklearn.base", UserWarning
    )
    _with_checks = parametrize_with_checks(
        ESTIMATORS, expected_failed_checks=_expected_failed_checks
    )


@_with_checks
def test_sklearn_check_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "does not inherit BaseEstimator", graphs
        warnings.simplefilter("ignore", RuntimeWarning)  # disconnected / not converged on noise
        check(estimator)


def test_clusterer_checks():
    """scikit-learn runs its clustering checks only on subclasses of its ClusterMixin; run
    them on SpectralClustering explicitly."""
    est = geoml.SpectralClustering(n_neighbors=10)
    assert sklearn.base.is_clusterer(est)
    check_clustering("SpectralClustering", est)
    check_clustering("SpectralClustering", est, readonly_memmap=True)


def test_import_geoml_does_not_import_sklearn():
    code = "import sys, geoml; print('sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False"]


# ----------------------------------------------------------------------------- parameters


def test_get_params_set_params_and_repr():
    est = geoml.LaplacianEigenmap(n_components=3, random_state=0)
    params = est.get_params()
    assert params["n_components"] == 3 and params["random_state"] == 0
    assert sorted(params) == sorted(
        [
            "n_components",
            "n_neighbors",
            "affinity",
            "kernel",
            "drop_first",
            "tol",
            "random_state",
            "n_jobs",
            "device",
        ]
    )
    assert repr(est) == "LaplacianEigenmap(n_components=3, random_state=0)"
    assert repr(geoml.KNNGraph()) == "KNNGraph()"
    assert est.set_params(n_neighbors=7, tol=1e-6) is est
    assert est.n_neighbors == 7 and est.tol == 1e-6
    with pytest.raises(ValueError, match=r"Invalid parameter 'n_neigbors'.*Valid parameters"):
        est.set_params(n_neigbors=7)
    long = geoml.RicciFlow(
        n_iter=3,
        step=0.5,
        delta=1e-3,
        alpha=0.25,
        method="sinkhorn",
        eps=0.5,
        tol=1e-4,
        nbr_topk=10,
        max_iter=100,
        n_jobs=1,
    )
    text = repr(long)
    assert text.startswith("RicciFlow(n_iter=3,") and "\n" in text
    assert all(len(line) <= 88 for line in text.splitlines())
    assert eval(text, {"RicciFlow": geoml.RicciFlow}).get_params() == long.get_params()


def test_nested_params_and_clone():
    pipe = make_pipeline(StandardScaler(), geoml.SpectralClustering(2, n_neighbors=5))
    pipe.set_params(spectralclustering__n_clusters=3)
    assert pipe.get_params()["spectralclustering__n_clusters"] == 3
    est = geoml.RicciCommunities(flow_params={"alpha": 0.3})
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert twin.flow_params == est.flow_params and twin.flow_params is not est.flow_params
    fitted = geoml.KNNGraph(n_neighbors=2).fit(np.eye(4))
    assert not hasattr(clone(fitted), "graph_")


def test_not_fitted_error():
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    assert geoml.NotFittedError is NotFittedError
    for est in ESTIMATORS:
        with pytest.raises(sklearn.exceptions.NotFittedError):
            check_is_fitted(est)
    with pytest.raises(NotFittedError, match="not fitted"):
        geoml.KNNGraph().kneighbors()
    with pytest.raises(RuntimeError, match="not fitted"):  # Tucker's error before the base
        geoml.Tucker(1).transform(np.ones((2, 2)))
    with pytest.raises(NotFittedError):
        geoml.Tucker(1).transform(np.ones((2, 2)))
    est = geoml.FormanRicci().fit(np.array([[0, 1], [1, 2]]))
    check_is_fitted(est)
    assert est.n_features_in_ == 2


# ----------------------------------------------------------------------------- pipelines


def _blobs(n=90, seed=0, gap=6.0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [gap, 0.0], [0.0, gap]])
    y = np.repeat(np.arange(3), n // 3)
    return centers[y] + rng.normal(scale=0.5, size=(n, 2)), y


def test_pipeline_scaler_then_embedding_and_graph():
    X, _ = _blobs(gap=2.0)  # overlapping blobs: a connected kNN graph
    X = X * [1.0, 100.0]  # scaling matters for the kNN graph
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("embed", geoml.LaplacianEigenmap(n_neighbors=8, random_state=0)),
        ]
    )
    Y = pipe.fit_transform(X)
    ref = geoml.LaplacianEigenmap(n_neighbors=8, random_state=0).fit_transform(
        StandardScaler().fit_transform(X)
    )
    np.testing.assert_allclose(Y, ref)
    G = make_pipeline(StandardScaler(), geoml.KNNGraph(n_neighbors=4)).fit_transform(X)
    assert sp.issparse(G) and G.shape == (90, 90)
    ref_graph = geoml.knn_graph(StandardScaler().fit_transform(X), 4)
    assert (ref_graph != G).nnz == 0
    labels = make_pipeline(
        StandardScaler(), geoml.SpectralClustering(3, n_neighbors=8, random_state=0)
    ).fit_predict(X)
    assert labels.shape == (90,)


def test_grid_search_spectral_clustering():
    X, y = _blobs()

    def ari(est, X_, y_):
        """Adjusted Rand index of the clustering of the held-out fold (transductive)."""
        return adjusted_rand_score(y_, clone(est).fit_predict(X_))

    search = GridSearchCV(
        geoml.SpectralClustering(n_neighbors=8, random_state=0),
        {"n_clusters": [2, 3, 4]},
        scoring=ari,
        cv=KFold(3, shuffle=True, random_state=0),
    )
    search.fit(X, y)
    assert search.best_params_ == {"n_clusters": 3}
    assert search.best_score_ > 0.9
    assert search.best_estimator_.labels_.shape == (90,)


# ----------------------------------------------------------------------------- random_state


def test_check_random_state():
    g = np.random.default_rng(3)
    assert _validation.check_random_state(g) is g
    a = _validation.check_random_state(5).standard_normal(4)
    np.testing.assert_array_equal(a, np.random.default_rng(5).standard_normal(4))
    b = _validation.check_random_state(np.random.RandomState(1)).standard_normal(4)
    c = _validation.check_random_state(np.random.RandomState(1)).standard_normal(4)
    np.testing.assert_array_equal(b, c)
    assert isinstance(_validation.check_random_state(None), np.random.Generator)
    assert isinstance(_validation.check_random_state(np.int64(2)), np.random.Generator)
    for bad in (True, 1.5, "0", [1]):
        with pytest.raises(TypeError, match="random_state must be None, an int"):
            _validation.check_random_state(bad)
    # NumPy's own message ("expected non-negative integer") did not name the parameter
    negative = r"random_state must be None, an int >= 0.*negative seed"
    for bad in (-1, np.int64(-5)):
        with pytest.raises(ValueError, match=negative):
            _validation.check_random_state(bad)
        with pytest.raises(ValueError, match=negative):
            geoml.knn(np.eye(5), 2, method="nndescent", random_state=bad)
    # one seed, one stream: the C++ seed is the first draw of the same Generator
    assert _validation.random_seed(7) == int(np.random.default_rng(7).integers(2**63))
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    assert _validation.random_seed(g1) == int(g2.integers(2**63))


def test_cpu_and_gpu_paths_share_the_seed():
    """The GPU eigensolver module derives its seed with the shared helper, as the CPU path."""
    from geoml.spectral import _eigsh, _gpu_lanczos, _lsym

    for mod in (_eigsh, _gpu_lanczos, _lsym):
        assert mod.random_seed is _validation.random_seed
        assert not hasattr(mod, "_seed")
    # the GPU algorithm run on the host (xp=numpy): one seed, one result
    A = sp.random(60, 60, density=0.2, random_state=1, format="csr")
    W = (A + A.T).tocsr()
    lam1, V1, *_ = _gpu_lanczos.lsym_smallest(
        W, 3, tol=1e-10, seed=_validation.random_seed(0), xp=np
    )
    lam2, V2, *_ = _gpu_lanczos.lsym_smallest(
        W, 3, tol=1e-10, seed=_validation.random_seed(0), xp=np
    )
    np.testing.assert_array_equal(V1, V2)
    np.testing.assert_array_equal(lam1, lam2)


def test_check_tol():
    # the spectral CPU solver: None -> default; 0 (SciPy's "machine precision") -> 100 eps;
    # other values raised to 10 eps
    from geoml.ot import _check_tol as ot_tol
    from geoml.spectral._eigsh import _check_tol as spectral_tol

    assert spectral_tol(None, np.float64) == 1e-10
    assert spectral_tol(None, np.float32) == 1e-5
    assert spectral_tol(0, np.float64) == 100 * np.finfo(np.float64).eps
    assert spectral_tol(0, np.float32) == 100 * np.finfo(np.float32).eps
    assert spectral_tol(1e-20, np.float64) == 10 * np.finfo(np.float64).eps
    assert spectral_tol(1e-14, np.float64) == 1e-14
    with pytest.raises(ValueError, match="non-negative"):
        spectral_tol(-1e-3, np.float64)
    with pytest.raises(ValueError, match="non-negative"):
        spectral_tol(np.nan, np.float64)
    # optimal transport: > 0, no clamp
    assert ot_tol(1e-20) == 1e-20
    for bad in (0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="positive"):
            ot_tol(bad)
    with pytest.raises(TypeError, match="tol must be a number"):
        ot_tol(None)
    # the shared helper's GPU-eigsh settings: > 0, default, clamp
    assert _validation.check_tol(None, default=1e-5, dtype=np.float32) == 1e-5
    assert _validation.check_tol(1e-30, dtype=np.float32) == 10 * float(np.finfo(np.float32).eps)
    with pytest.raises(ValueError, match="positive"):
        _validation.check_tol(0.0, default=1e-10, dtype=np.float64)


def test_check_tol_takes_numbers_only():
    """``check_tol`` called ``float()``, which reads numeric strings: ``tol="1e-6"`` passed.
    Numbers only (bool, None and strings are a TypeError, as ``check_int`` does); NumPy
    scalars and 0-d arrays are numbers. The same for geoml.ot's ``eps`` and tucker's tol."""
    check = _validation.check_tol
    for ok in (1e-6, 1, np.float32(1e-6), np.float64(1e-6), np.int64(1), np.array(1e-6)):
        assert check(ok) == float(ok)
        assert type(check(ok)) is float
    assert check(np.array(0.0, dtype=np.float32), allow_zero=True) == 0.0
    for bad in (
        "1e-6",
        "0.1",
        b"1e-6",
        True,
        False,
        np.bool_(True),
        None,
        1e-6j,
        [1e-6],
        np.array([1e-6]),
        np.array("1e-6"),
        np.array(True),
    ):
        with pytest.raises(TypeError, match="tol must be a number"):
            check(bad)
    with pytest.raises(TypeError, match="tol must be a number"):  # no default: None is bad
        check(None, default=None)
    with pytest.raises(ValueError, match="positive"):  # a number out of range: ValueError
        check(np.array(-1.0))
    # entry points that go through it, and the similar checks
    a = np.full(3, 1 / 3)
    C = np.ones((3, 3)) - np.eye(3)
    with pytest.raises(TypeError, match="tol must be a number"):
        geoml.ot.sinkhorn(a, a, C, 0.1, tol="1e-6")
    with pytest.raises(TypeError, match="eps must be a number"):
        geoml.ot.sinkhorn(a, a, C, "0.1")
    with pytest.raises(TypeError, match="tol must be a number"):
        geoml.tucker(np.ones((3, 3, 3)), 2, tol="1e-6")
    with pytest.raises(TypeError, match="tol must be a number"):
        geoml.eigsh(np.diag(np.arange(1.0, 6.0)), 2, tol="1e-6")
    assert geoml.ot.sinkhorn(a, a, C, np.float32(0.1), tol=np.array(1e-6)).converged


# ----------------------------------------------------------------------------- determinism


def _assert_same(a, b):
    if sp.issparse(a):
        assert (a != b).nnz == 0
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


def _fit_attrs(est, X, names):
    est.fit(X)
    return [getattr(est, n) for n in names]


@pytest.mark.parametrize(
    "make, names",
    [
        (
            lambda nj: geoml.LaplacianEigenmap(3, n_neighbors=8, random_state=4, n_jobs=nj),
            ["embedding_", "eigenvalues_", "affinity_matrix_"],
        ),
        (
            lambda nj: geoml.DiffusionMap(3, n_neighbors=8, random_state=4, n_jobs=nj),
            ["embedding_", "eigenvalues_"],
        ),
        (
            lambda nj: geoml.SpectralClustering(3, n_neighbors=8, random_state=4, n_jobs=nj),
            ["labels_", "embedding_", "inertia_"],
        ),
        (
            lambda nj: geoml.MDS(2, random_state=4, n_jobs=nj, landmarks=60),
            ["embedding_", "stress_", "landmarks_"],
        ),
        (
            lambda nj: geoml.HeatGeo(2, 8, random_state=4, n_jobs=nj, n_landmarks=50),
            ["embedding_", "distances_", "landmarks_"],
        ),
        (
            lambda nj: geoml.PHATE(2, knn=5, n_landmark=40, random_state=4, n_jobs=nj),
            ["embedding_", "distances_", "clusters_", "t_"],
        ),
        (
            lambda nj: geoml.KNNGraph(6, method="nndescent", random_state=4, n_jobs=nj),
            ["indices_", "distances_", "graph_"],
        ),
    ],
)
def test_same_seed_same_result_for_one_and_two_threads(make, names):
    X, _ = _blobs(150, seed=2, gap=2.5)
    one = _fit_attrs(make(1), X, names)
    two = _fit_attrs(make(2), X, names)
    again = _fit_attrs(make(2), X, names)
    for a, b, c in zip(one, two, again):
        _assert_same(a, b)
        _assert_same(b, c)


def test_labels_identical_across_thread_counts():
    X, _ = _blobs(150, seed=5)
    a = geoml.SpectralClustering(3, n_neighbors=8, random_state=1, n_jobs=1).fit_predict(X)
    b = geoml.SpectralClustering(3, n_neighbors=8, random_state=1, n_jobs=2).fit_predict(X)
    np.testing.assert_array_equal(a, b)


def test_solvers_same_seed_same_result_for_one_and_two_threads():
    rng = np.random.default_rng(0)
    A = sp.random(300, 300, density=0.03, random_state=2, format="csr")
    A = (A + A.T).tocsr()
    for which in ("LA", "SA"):
        r1 = geoml.eigsh(A, 4, which=which, random_state=3, n_jobs=1)
        r2 = geoml.eigsh(A, 4, which=which, random_state=3, n_jobs=2)
        np.testing.assert_allclose(r1.eigenvalues, r2.eigenvalues, rtol=1e-10)
        np.testing.assert_allclose(
            np.abs(r1.eigenvectors.T @ r2.eigenvectors), np.eye(4), atol=1e-6
        )
        assert r1.n_iter == r2.n_iter
    M = rng.normal(size=(120, 40)) @ rng.normal(size=(40, 80))
    s1 = geoml.randomized_svd(M, 5, random_state=3, n_jobs=1)
    s2 = geoml.randomized_svd(M, 5, random_state=3, n_jobs=2)
    for a, b in zip(s1, s2):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    G, U1, U2, U3 = (
        rng.normal(size=(3, 4, 5)),
        rng.normal(size=(20, 3)),
        rng.normal(size=(18, 4)),
        rng.normal(size=(16, 5)),
    )
    T = np.einsum("abc,ia,jb,kc->ijk", G, U1, U2, U3) + 1e-3 * rng.normal(size=(20, 18, 16))
    for method in ("hooi", "randomized"):
        t1 = geoml.tucker(T, (3, 4, 5), method=method, random_state=3, n_jobs=1)
        t2 = geoml.tucker(T, (3, 4, 5), method=method, random_state=3, n_jobs=2)
        np.testing.assert_allclose(t1.core, t2.core, rtol=1e-9, atol=1e-10)
    e1 = geoml.Tucker((3, 4), random_state=3, n_jobs=1).fit(T)
    e2 = geoml.Tucker((3, 4), random_state=3, n_jobs=2).fit(T)
    for U1, U2 in zip(e1.factors_, e2.factors_):
        np.testing.assert_allclose(U1, U2, rtol=1e-9, atol=1e-10)


def test_amg_eigensolver_same_seed_same_result_for_one_and_two_threads():
    """The LOBPCG + AMG path (large graphs) seeds its padding vectors from random_state."""
    from geoml.spectral._lsym import _lsym_smallest

    X, _ = _blobs(600, seed=3)
    W = sp.csr_matrix(geoml.knn_graph(X, 10, mode="connectivity"), dtype=np.float64)
    out = [_lsym_smallest(W, 4, random_state=5, n_jobs=nj, method="lobpcg-amg") for nj in (1, 2)]
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.abs(out[0][1].T @ out[1][1]), np.eye(4), atol=1e-6)


# ----------------------------------------------------------------------------- validate once


@pytest.fixture
def nan_scans(monkeypatch):
    """Counts the NaN/inf scans of the data (``as_float_array`` calls with finite=True)."""
    import geoml._device
    import geoml.neighbors

    calls = []
    real = _validation.as_float_array

    def counting(X, name="X", **kw):
        if kw.get("finite", True):
            calls.append(name)
        return real(X, name, **kw)

    for mod in (geoml._device, geoml.neighbors._knn, geoml.neighbors._transformer):
        monkeypatch.setattr(mod, "as_float_array", counting)
    return calls


def test_knn_graph_estimator_validates_x_once(nan_scans):
    X, _ = _blobs(60)
    est = geoml.KNNGraph(n_neighbors=4).fit(X)
    assert nan_scans == ["X"]
    nan_scans.clear()
    est.kneighbors(X[:5], n_neighbors=2)
    assert nan_scans == ["Y"]  # the fitted X is not scanned again
    nan_scans.clear()
    est.kneighbors(n_neighbors=2)
    assert nan_scans == []
    nan_scans.clear()
    geoml.knn_graph(X, 4)
    assert nan_scans == ["X"]


@pytest.mark.parametrize(
    "est",
    [
        geoml.LaplacianEigenmap(n_neighbors=5, random_state=0),
        geoml.DiffusionMap(n_neighbors=5, random_state=0),
        geoml.SpectralClustering(3, n_neighbors=5, random_state=0),
    ],
)
def test_spectral_estimators_validate_x_once(est, nan_scans):
    X, _ = _blobs(60, gap=2.0)
    est.fit(X)
    assert nan_scans == ["X"]


# name -> (estimator with neighbour count k, the parameter (fitted as "<parameter>_"), result)
_NEIGHBOUR_COUNTS = {
    "KNNGraph": (lambda k: geoml.KNNGraph(k), "n_neighbors", lambda e, X: e.graph_),
    "KNNTransformer": (
        lambda k: geoml.KNNTransformer(k),
        "n_neighbors",
        lambda e, X: e.transform(X),
    ),
    "LaplacianEigenmap": (
        lambda k: geoml.LaplacianEigenmap(n_neighbors=k, random_state=0),
        "n_neighbors",
        lambda e, X: e.embedding_,
    ),
    "DiffusionMap": (
        lambda k: geoml.DiffusionMap(n_neighbors=k, random_state=0),
        "n_neighbors",
        lambda e, X: e.embedding_,
    ),
    "SpectralClustering": (
        lambda k: geoml.SpectralClustering(2, n_neighbors=k, random_state=0),
        "n_neighbors",
        lambda e, X: e.labels_,
    ),
    "HeatGeo": (
        lambda k: geoml.HeatGeo(n_neighbors=k, random_state=0),
        "n_neighbors",
        lambda e, X: e.embedding_,
    ),
    "PHATE": (lambda k: geoml.PHATE(knn=k, random_state=0), "knn", lambda e, X: e.embedding_),
}


@pytest.mark.parametrize("name", sorted(_NEIGHBOUR_COUNTS))
def test_neighbour_count_above_the_data_is_truncated_with_a_warning(name):
    """An estimator's neighbour count >= n_samples becomes n_samples - 1 with a UserWarning
    (umap-learn's convention), recorded in the fitted attribute: the same fit as with
    n_samples - 1 given. X is validated first: NaN is reported as NaN, not as a count."""
    make, param, result = _NEIGHBOUR_COUNTS[name]
    X = np.random.default_rng(3).normal(size=(12, 3))
    msg = (
        rf"{param}=40 is larger than the dataset size \(12 samples\); "
        r"truncating to X\.shape\[0\] - 1 = 11"
    )
    with pytest.warns(UserWarning, match=msg) as caught:
        est = make(40).fit(X)
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n_samples - 1 itself: no warning
        ref = make(11).fit(X)
    assert getattr(est, param + "_") == getattr(ref, param + "_") == 11
    a, b = result(est, X), result(ref, X)
    if sp.issparse(a):
        a, b = a.toarray(), b.toarray()
    np.testing.assert_array_equal(a, b)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make(40).fit(bad)
    with pytest.raises(ValueError, match="out of range"):  # the count itself is still checked
        make(0).fit(X)


def test_counts_truncated_or_refused_consistently():
    """KNNTransformer's connectivity mode counts the sample itself (up to n_samples); landmark
    counts above n_samples make every point a landmark (warned); a count that would change the
    output's shape (n_components, n_clusters, Tucker ranks) stays a ValueError."""
    X = np.random.default_rng(4).normal(size=(12, 3))
    est = geoml.KNNTransformer(12, mode="connectivity").fit(X)  # 12 = n_samples: allowed
    assert est.n_neighbors_ == 12
    with pytest.warns(UserWarning, match=r"truncating to X\.shape\[0\] = 12"):
        est = geoml.KNNTransformer(13, mode="connectivity").fit(X)
    assert est.n_neighbors_ == 12 and est.transform(X).nnz == 144
    with pytest.warns(UserWarning, match=r"landmarks=30 is larger than the dataset size"):
        mds = geoml.MDS(landmarks=30, random_state=0).fit(X)
    np.testing.assert_array_equal(mds.landmarks_, np.arange(12))
    with pytest.warns(UserWarning, match=r"n_landmarks=30 is larger than the dataset size"):
        hg = geoml.HeatGeo(n_neighbors=5, n_landmarks=30, random_state=0).fit(X)
    np.testing.assert_array_equal(hg.landmarks_, np.arange(12))
    with pytest.raises(ValueError, match=r"n_components=12 is out of range"):
        geoml.LaplacianEigenmap(n_components=12, n_neighbors=5).fit(X)
    with pytest.raises(ValueError, match=r"n_components=12 is out of range"):
        geoml.MDS(n_components=12).fit(X)
    with pytest.raises(ValueError, match=r"n_clusters=12 is out of range"):
        geoml.SpectralClustering(12, n_neighbors=5).fit(X)
    with pytest.raises(ValueError, match=r"n_features=1; a rank cannot exceed it"):
        geoml.Tucker(2).fit(X[:, :1])
    # PHATE's n_landmark is a threshold, as in phate: no landmarks at or below it, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert geoml.PHATE(n_landmark=30, random_state=0).fit(X).clusters_ is None


def test_parameters_of_the_wrong_type_are_refused_by_name():
    """None for n_components reached ``None + 1`` (TypeError about NoneType); drop_first and
    tsupdate were read by their truth value ('no' was True); an unknown kernel was ignored
    by the adaptive affinity; PHATE's verbose=None reached int(None)."""
    X = np.random.default_rng(4).normal(size=(40, 3))
    with pytest.raises(TypeError, match="n_components must be an integer; got None"):
        geoml.LaplacianEigenmap(n_components=None).fit(X)
    with pytest.raises(TypeError, match="n_components must be an integer; got None"):
        geoml.DiffusionMap(n_components=None).fit(X)
    for bad in ("no", None, 1):
        with pytest.raises(TypeError, match="drop_first must be a bool"):
            geoml.LaplacianEigenmap(drop_first=bad).fit(X)
    for est in (geoml.DiffusionMap, geoml.LaplacianEigenmap, geoml.SpectralClustering):
        with pytest.raises(ValueError, match="kernel='gauss'; choose None"):
            est(affinity="adaptive", kernel="gauss").fit(X)
    for bad in (None, "1", [1]):
        with pytest.raises(TypeError, match="verbose must be an int or a bool"):
            geoml.PHATE(verbose=bad).fit(X)
    C = geoml.spd.covariances(np.random.default_rng(5).normal(size=(6, 3, 20)))
    for bad in ("no", None, 1.0):
        with pytest.raises(TypeError, match="tsupdate must be a bool"):
            geoml.spd.TangentSpace(tsupdate=bad).fit(C)
    # NumPy scalars of the right kind are accepted
    Y = geoml.LaplacianEigenmap(np.int64(2), drop_first=np.bool_(True), random_state=0)
    np.testing.assert_array_equal(
        Y.fit_transform(X), geoml.LaplacianEigenmap(2, random_state=0).fit_transform(X)
    )
    T = geoml.spd.TangentSpace(tsupdate=np.bool_(True)).fit(C).transform(C)
    np.testing.assert_array_equal(T, geoml.spd.TangentSpace(tsupdate=True).fit(C).transform(C))


def test_bool_flags_refuse_what_is_not_a_bool():
    """Flags read by their truth value: maximize="no" maximised, sparse="no" returned a
    sparse plan, squared="no" squared distances, unbiased=None meant False, and so on."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(30, 3))
    W = geoml.knn_graph(X, 4)
    C = geoml.spd.covariances(rng.normal(size=(4, 2, 20)))
    calls = {
        "exclude_self": lambda v: geoml.knn(X, 3, exclude_self=v),
        "return_diag": lambda v: geoml.laplacian(W, return_diag=v),
        "sparse": lambda v: geoml.ot.emd(None, None, np.ones((3, 3)), sparse=v),
        "maximize": lambda v: geoml.ot.linear_assignment(np.eye(3), maximize=v),
        "unbiased": lambda v: geoml.intrinsic_dimension(X, unbiased=v),
        "squared": lambda v: geoml.spd.distance(C, C[0], squared=v),
        "return_plan": lambda v: geoml.ot.sinkhorn_symmetric(np.ones((3, 3)), return_plan=v),
        "whitened": lambda v: geoml.spd.log_map(C, C[0], whitened=v),
    }
    calls["maximize "] = lambda v: geoml.ot.linear_assignment_batched(np.eye(3)[None], v)
    calls["squared "] = lambda v: geoml.spd.pairwise_distance(C, squared=v)
    calls["whitened "] = lambda v: geoml.spd.exp_map(np.zeros((2, 2)), C[0], whitened=v)
    for name, call in calls.items():
        for bad in ("no", 1, 0.0) + ((None,) if name != "exclude_self" else ()):
            with pytest.raises(TypeError, match=f"{name.strip()} must be "):
                call(bad)
        a, b = call(np.bool_(True)), call(True)
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)


def test_validate_once_keeps_messages():
    X = np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="NaN"):
        geoml.KNNGraph(n_neighbors=1).fit(X)
    est = geoml.KNNGraph(n_neighbors=1).fit(np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        est.kneighbors(X)
    with pytest.raises(ValueError, match="Y has 3 features but X has 2"):
        geoml.KNNGraph(n_neighbors=1).fit(np.eye(3, 2)).kneighbors(np.eye(3))
    # the estimator truncates n_neighbors >= n_samples (with a warning), the function raises
    with pytest.warns(UserWarning, match=r"n_neighbors=5 is larger than the dataset size"):
        est = geoml.KNNGraph(n_neighbors=5).fit(np.eye(3))
    assert est.n_neighbors_ == 2 and est.indices_.shape == (3, 2)
    with pytest.raises(ValueError, match=r"k=5 is out of range \[1, 2\]"):
        geoml.knn_graph(np.eye(3), 5)
    with pytest.raises(ValueError, match="metric"):
        geoml.KNNGraph(n_neighbors=1, metric="l1").fit(np.eye(3))


def test_curvature_dense_adjacency_matches_sparse():
    import networkx as nx

    G = nx.karate_club_graph()
    A = nx.to_scipy_sparse_array(G, weight=None, format="csr")
    dense = A.toarray()
    a = geoml.OllivierRicci().fit(A)
    b = geoml.OllivierRicci().fit(dense)
    np.testing.assert_array_equal(a.edges_, b.edges_)
    np.testing.assert_allclose(a.curvature_, b.curvature_)
    assert b.n_features_in_ == 34
    np.testing.assert_allclose(
        geoml.FormanRicci().fit(dense).curvature_, geoml.FormanRicci().fit(A).curvature_
    )
    with pytest.raises(ValueError, match="square"):
        geoml.OllivierRicci().fit(np.ones((5, 4)))
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.OllivierRicci().fit(np.triu(dense))
    with pytest.raises(ValueError, match="NaN"):
        geoml.OllivierRicci().fit(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        geoml.OllivierRicci().fit(np.ones(4))


def test_spd_estimators_identical_for_one_and_two_threads():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((40, 5, 20))
    X = geoml.spd.covariances(A, "lwf")
    y = np.repeat([0, 1], 20)
    X[y == 1] *= 1.5
    for metric in ("riemann", "logeuclid", "wasserstein"):
        m1 = geoml.MDM(metric=metric, n_jobs=1).fit(X, y)
        m2 = geoml.MDM(metric=metric, n_jobs=2).fit(X, y)
        assert np.array_equal(m1.covmeans_, m2.covmeans_)
        assert np.array_equal(m1.transform(X), m2.transform(X))
        t1 = geoml.TangentSpace(metric=metric, n_jobs=1).fit_transform(X)
        t2 = geoml.TangentSpace(metric=metric, n_jobs=2).fit_transform(X)
        assert np.array_equal(t1, t2)
