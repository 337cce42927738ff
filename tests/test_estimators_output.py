"""scikit-learn's output container and feature-name contract on every geoml estimator:
``get_feature_names_out``, ``set_output`` (pandas, polars) and ``feature_names_in_``, against
scikit-learn's own checks. Needs pandas (in the ``test`` extra); the estimators are
``test_estimators.ESTIMATORS``."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
import geoml.spd

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
from sklearn.base import clone  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import estimator_checks as _ec  # noqa: E402
from test_estimators import ESTIMATORS  # noqa: E402

# scikit-learn runs these only in its own test suite (not in check_estimator): run them on
# every estimator; the output ones on every estimator with get_feature_names_out.
_NAME_CHECKS = ["check_dataframe_column_names_consistency"]
_OUTPUT_CHECKS = [
    "check_get_feature_names_out_error",
    "check_transformer_get_feature_names_out",
    "check_transformer_get_feature_names_out_pandas",
    "check_set_output_transform",
    "check_set_output_transform_pandas",
    "check_global_output_transform_pandas",
    "check_set_output_transform_polars",
    "check_global_set_output_transform_polars",
]


def _extra_checks():
    for est in ESTIMATORS:
        names = _NAME_CHECKS + (_OUTPUT_CHECKS if hasattr(est, "get_feature_names_out") else [])
        for check in names:
            yield pytest.param(est, check, id=f"{est!r}-{check}")


@pytest.mark.parametrize(("estimator", "check"), list(_extra_checks()))
def test_sklearn_output_and_feature_name_checks(estimator, check):
    if "polars" in check:
        pytest.importorskip("polars")
    with warnings.catch_warnings():
        # "does not inherit", disconnected graphs, truncated counts; never a feature-name one
        warnings.simplefilter("ignore", UserWarning)
        if "set_output" not in check and "output_transform" not in check:
            # the set_output checks fit on a DataFrame and transform an array (and the
            # reverse): the feature-name warnings are expected there, as for scikit-learn's
            warnings.filterwarnings("error", ".*feature names", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # disconnected / not converged on noise
        getattr(_ec, check)(type(estimator).__name__, estimator)


def _two_groups(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[: n // 2] += 1.0
    y = (np.arange(n) < n // 2).astype(int)
    return X, y


# (estimator, output width on _two_groups(): X is (40, 5), two classes)
_DENSE_TRANSFORMERS = [
    (geoml.LaplacianEigenmap(n_components=3, n_neighbors=8, random_state=0), 3),
    (geoml.DiffusionMap(n_components=3, n_neighbors=8, random_state=0), 3),
    (geoml.MDS(n_components=2, random_state=0), 2),
    (geoml.HeatGeo(n_components=2, n_neighbors=8, random_state=0), 2),
    (geoml.PHATE(n_components=2, knn=5, random_state=0), 2),
    (geoml.Tucker(3, random_state=0), 3),
    (geoml.MDM(), 2),
    (geoml.TangentSpace(), 15),
]


def _fit_transform(est, X, y):
    return est.fit_transform(X, y) if isinstance(est, geoml.MDM) else est.fit_transform(X)


@pytest.mark.parametrize(("est", "width"), _DENSE_TRANSFORMERS, ids=lambda e: repr(e))
def test_feature_names_out_and_pandas_output(est, width):
    X, y = _two_groups()
    ref = _fit_transform(clone(est), X, y)
    assert ref.shape == (40, width)
    fitted = clone(est)
    _fit_transform(fitted, X, y)
    prefix = type(est).__name__.lower()
    names = fitted.get_feature_names_out()
    assert names.dtype == object and list(names) == [f"{prefix}{i}" for i in range(width)]
    # local set_output, ndarray and DataFrame input: same values, the input's index kept
    index = [f"r{i}" for i in range(40)]
    df_in = pd.DataFrame(X, columns=[f"c{i}" for i in range(5)], index=index)
    for data, want_index in ((X, list(range(40))), (df_in, index)):
        out = _fit_transform(clone(est).set_output(transform="pandas"), data, y)
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(names) and list(out.index) == want_index
        np.testing.assert_array_equal(out.to_numpy(), ref)
    # global configuration
    with sklearn.config_context(transform_output="pandas"):
        out = _fit_transform(clone(est), X, y)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    np.testing.assert_array_equal(out.to_numpy(), ref)
    # without any configuration: the ndarray, unchanged
    assert isinstance(_fit_transform(clone(est), X, y), np.ndarray)
    # in a Pipeline after StandardScaler
    pipe = make_pipeline(StandardScaler(), clone(est)).set_output(transform="pandas")
    out = pipe.fit_transform(X, y)
    ref_pipe = _fit_transform(clone(est), StandardScaler().fit_transform(X), y)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    np.testing.assert_array_equal(out.to_numpy(), ref_pipe)
    np.testing.assert_array_equal(pipe.get_feature_names_out(), names)
    # transform on new-style input returns the same container
    if hasattr(est, "transform"):
        fitted = clone(est).set_output(transform="pandas")
        _fit_transform(fitted, X, y)
        out = fitted.transform(X[:7])
        assert isinstance(out, pd.DataFrame) and out.shape == (7, width)


def test_pandas_output_values_of_transform_on_new_points():
    X, y = _two_groups()
    for est in (geoml.MDM(), geoml.TangentSpace(), geoml.Tucker(3), geoml.PHATE(knn=5)):
        plain = clone(est).fit(X, y)
        framed = clone(est).fit(X, y).set_output(transform="pandas")
        out = framed.transform(X[3:9] + 0.1)
        assert isinstance(out, pd.DataFrame)
        np.testing.assert_array_equal(out.to_numpy(), plain.transform(X[3:9] + 0.1))
        np.testing.assert_array_equal(out.columns, plain.get_feature_names_out())
    # MDM's predict and predict_proba are unchanged by the output container
    plain, framed = geoml.MDM().fit(X, y), geoml.MDM().fit(X, y).set_output(transform="pandas")
    np.testing.assert_array_equal(framed.predict(X), plain.predict(X))
    np.testing.assert_array_equal(framed.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize(
    "est", [geoml.KNNGraph(n_neighbors=3), geoml.KNNTransformer(n_neighbors=3)], ids=repr
)
def test_sparse_graph_outputs_follow_kneighbors_transformer(est):
    """As scikit-learn's KNeighborsTransformer: one name per fitted sample, and a DataFrame
    output is a ValueError (sparse)."""
    from sklearn.neighbors import KNeighborsTransformer

    X, _ = _two_groups(n=12)
    G = clone(est).fit_transform(X)
    names = clone(est).fit(X).get_feature_names_out()
    prefix = type(est).__name__.lower()
    assert list(names) == [f"{prefix}{i}" for i in range(12)] and len(names) == G.shape[1]
    ref = KNeighborsTransformer(n_neighbors=3).fit(X).get_feature_names_out()
    assert len(ref) == len(names)
    for transformer in (clone(est).set_output(transform="pandas"), KNeighborsTransformer()):
        transformer.set_output(transform="pandas")
        with pytest.raises(ValueError, match="sparse"):
            transformer.fit_transform(X)
    with sklearn.config_context(transform_output="default"):
        assert sp.issparse(clone(est).set_output(transform="default").fit_transform(X))


def test_set_output_validates_and_none_keeps():
    est = geoml.MDS()
    assert est.set_output() is est and not hasattr(est, "_sklearn_output_config")
    with pytest.raises(ValueError, match="transform must be"):
        est.set_output(transform="arrow")
    est.set_output(transform="pandas")
    assert clone(est)._sklearn_output_config == {"transform": "pandas"}


def test_tucker_pandas_output_needs_2d_cores():
    X = np.random.default_rng(0).normal(size=(10, 4, 3))
    est = geoml.Tucker((2, 2)).set_output(transform="pandas")
    with pytest.raises(ValueError, match="needs a 2-D result"):
        est.fit_transform(X)
    assert clone(est).set_output(transform="default").fit_transform(X).shape == (10, 2, 2)


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_feature_names_in_stored_and_checked(est):
    X, y = _two_groups()
    tags = sklearn.utils.get_tags(est)
    if tags.input_tags.pairwise:
        X = np.abs(X @ X.T)
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # truncated neighbour counts
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = clone(est).fit(df, y)
    assert fitted.feature_names_in_.dtype == object
    assert list(fitted.feature_names_in_) == cols
    # refitting on an array removes the names; int column names store none
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        assert not hasattr(clone(fitted).fit(X, y), "feature_names_in_")
        assert not hasattr(clone(est).fit(pd.DataFrame(X), y), "feature_names_in_")
        twice = clone(est).fit(df, y).fit(X, y)
    assert not hasattr(twice, "feature_names_in_")
    methods = [m for m in ("transform", "predict", "predict_proba", "score") if hasattr(est, m)]
    for m in methods:

        def call(model, data, m=m):
            return getattr(model, m)(data, y) if m == "score" else getattr(model, m)(data)

        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            call(fitted, df)  # same names: no warning
        with pytest.warns(UserWarning, match="X does not have valid feature names, but") as rec:
            call(fitted, X)
        assert len(rec) == 1 and rec[0].filename == __file__  # points at the caller
        with pytest.warns(UserWarning, match="X has feature names, but .* fitted without") as rec:
            call(twice, df)
        assert len(rec) == 1 and rec[0].filename == __file__
        with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- g0"):
            call(fitted, df.set_axis([f"g{i}" for i in range(X.shape[1])], axis=1))
        with pytest.raises(ValueError, match="must be in the same order"):
            call(fitted, df[cols[::-1]])


def test_mixed_column_names_are_a_type_error_and_failed_fit_keeps_names():
    X, _ = _two_groups()
    df = pd.DataFrame(X, columns=["a", 1, "c", "d", "e"])
    with pytest.raises(TypeError, match="Feature names are only supported if all input"):
        geoml.MDS().fit(df)
    est = geoml.MDS(n_components=2).fit(pd.DataFrame(X, columns=list("abcde")))
    bad = pd.DataFrame(np.full((3, 2), np.nan), columns=["x", "y"])
    with pytest.raises(ValueError):
        est.fit(bad)
    assert list(est.feature_names_in_) == list("abcde")
    fresh = geoml.MDS()
    with pytest.raises(ValueError):
        fresh.fit(bad)
    assert not hasattr(fresh, "feature_names_in_")


def test_import_geoml_does_not_import_pandas():
    code = "import sys, geoml, geoml.spd; print('pandas' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False"]
