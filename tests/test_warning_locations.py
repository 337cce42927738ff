"""Every family's warnings point at the caller's line (session 29).

A fixed ``stacklevel`` pointed inside geoml when the warning's function was reached through an
estimator or another geoml function, and Python's default filter shows a warning once per
location: a user's second non-converged fit could then go unreported. Each case calls a
representative warning of a family directly and through another public entry point that
uses it, and asserts the warning names this file (``geoml._validation.user_stacklevel``).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
from geoml import spd
from geoml._validation import user_stacklevel


def _ot_problem(n=60, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
    return a / a.sum(), b / b.sum(), rng.uniform(size=(n, n))


def _ot():
    a, b, C = _ot_problem()
    return [
        (RuntimeWarning, "max_iter", lambda: geoml.ot.emd(a, b, C, max_iter=3)),
        (RuntimeWarning, "did not reach", lambda: geoml.ot.sinkhorn(a, b, C, 1e-3, max_iter=2)),
        (
            RuntimeWarning,
            "did not reach",
            lambda: geoml.ot.sinkhorn_unbalanced(a, b, C, 1e-3, rho=1.0, max_iter=2),
        ),
    ]


def _curvature():
    import networkx as nx

    G = nx.karate_club_graph()
    kw = {"method": "sinkhorn", "eps": 1e-3, "max_iter": 2}
    return [
        (RuntimeWarning, "did not converge", lambda: geoml.OllivierRicci(**kw).fit(G)),
        (RuntimeWarning, "did not converge", lambda: geoml.ollivier_ricci(G, **kw)),
    ]


def _spd():
    from tests.test_spd import rand_spd

    rng = np.random.default_rng(0)
    X = np.concatenate([rand_spd(rng, (10,), 8, cond=1e12), rand_spd(rng, (10,), 8)])
    y = np.repeat([0, 1], 10)
    return [
        (spd.ConvergenceWarning, "mean_riemann", lambda: spd.mean_riemann(X[:10])),
        (spd.ConvergenceWarning, "mean_riemann", lambda: spd.MDM().fit(X, y)),
        (spd.ConvergenceWarning, "mean_riemann", lambda: spd.TangentSpace().fit(X[:10])),
    ]


def _lowrank():
    rng = np.random.default_rng(0)
    T = rng.standard_normal((10, 9, 8))
    init = [rng.standard_normal((n, 3)) for n in T.shape]
    kw = {"init": init, "max_iter": 1, "tol": 0.0}
    kw_est = {"init": init[1:], "max_iter": 1, "tol": 0.0}  # the sample mode is not compressed
    return [
        (RuntimeWarning, "did not converge", lambda: geoml.tucker(T, 3, **kw)),
        (RuntimeWarning, "did not converge", lambda: geoml.Tucker(3, **kw_est).fit(T)),
    ]


def _measures():
    M = geoml.measures
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    Xd = np.vstack([X, X[:10]])  # 10 exact duplicates
    Y = np.random.default_rng(8).uniform(size=(500, 2))
    return [
        (RuntimeWarning, "dropped", lambda: M.intrinsic_dimension(Xd, "mle", k=10)),
        (RuntimeWarning, "dropped", lambda: M.intrinsic_dimension(Xd, "mle", local=True, k=10)),
        (
            RuntimeWarning,
            "did not reach rtol",
            lambda: M.magnitude(Y, [1.0, 100.0], method="cg", max_iter=2),
        ),
        (
            RuntimeWarning,
            "did not reach rtol",
            lambda: M.magnitude_dimension(Y, [1.0, 2.0], method="cg", max_iter=1),
        ),
    ]


def _laplacian(n=2000, seed=0):
    from scipy.sparse import csgraph

    X = np.random.default_rng(seed).normal(size=(n, 3))
    W = geoml.knn_graph(X, 5, mode="connectivity")
    W = sp.csr_matrix(W.maximum(W.T))
    return W, sp.csr_matrix(csgraph.laplacian(W, normed=True))


def _spectral():
    W, L = _laplacian()
    kw = {"max_iter": 1, "random_state": 0}
    return [
        (RuntimeWarning, "did not converge", lambda: geoml.eigsh(L, 10, which="SA", **kw)),
        (RuntimeWarning, "did not converge", lambda: geoml.laplacian_eigsh(W, 10, **kw)),
    ]


def _slq():
    rng = np.random.default_rng(0)
    d = rng.uniform(-1, 1, 200)
    d -= d.mean()  # tr A = 0: no relative accuracy is reachable
    Q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    A = (Q * d) @ Q.T
    A = (A + A.T) / 2
    B = rng.standard_normal((300, 300))
    P = B @ B.T / 300 + np.eye(300)
    return [
        (
            RuntimeWarning,
            "did not reach",
            lambda: geoml.trace_function(A, "power", p=1, random_state=0),
        ),
        (  # through geoml.measures (its SLQ estimate of tr(rho log rho))
            RuntimeWarning,
            "did not reach rtol",
            lambda: geoml.measures.von_neumann_entropy(P, method="slq", rtol=1e-9, random_state=0),
        ),
    ]


def _dask():
    pytest.importorskip("dask")
    import dask
    import dask.array as da
    import networkx as nx

    import geoml.dask as gdask

    a, b, C = _ot_problem(6, 1)
    A, B = np.tile(a, (12, 1)), np.tile(b, (12, 1))
    Cs = np.tile(C, (12, 1, 1))
    G = nx.karate_club_graph()
    kw = {"method": "sinkhorn", "eps": 1e-3, "max_iter": 2}

    def threads(fn):
        def call():
            with dask.config.set(scheduler="threads"):
                return fn()

        return call

    return [
        (
            RuntimeWarning,
            "did not reach",
            threads(
                lambda: gdask.sinkhorn_batched(da.from_array(A, chunks=4), B, Cs, 1e-3, max_iter=2)
            ),
        ),
        (  # RicciFlow's fit around the Dask curvatures
            RuntimeWarning,
            "did not converge",
            threads(lambda: gdask.ricci_flow(G, n_iter=1, **kw)),
        ),
    ]


def _feature_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 4))
    est = geoml.Tucker(2).fit(pd.DataFrame(X, columns=list("abcd")))
    return [
        (UserWarning, "does not have valid feature names", lambda: est.transform(X)),
    ]


FAMILIES = {
    "ot": _ot,
    "curvature": _curvature,
    "spd": _spd,
    "lowrank": _lowrank,
    "measures": _measures,
    "spectral": _spectral,
    "slq": _slq,
    "dask": _dask,
    "feature_names": _feature_names,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_warning_points_at_the_caller(family):
    for category, match, call in FAMILIES[family]():
        with pytest.warns(category, match=match) as rec:
            call()
        assert rec[0].filename == __file__, (family, match, rec[0].filename)


def test_a_second_fit_from_another_line_warns_again():
    """Python's default filter shows a warning once per (text, category, location): with the
    location inside geoml, the second non-converged fit below went unreported."""
    rng = np.random.default_rng(0)
    T = rng.standard_normal((10, 9, 8))
    kw = {"init": [rng.standard_normal((n, 3)) for n in T.shape[1:]], "max_iter": 1, "tol": 0.0}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("default")
        geoml.Tucker(3, **kw).fit(T)
        geoml.Tucker(3, **kw).fit(T)
    assert [w.filename for w in rec] == [__file__, __file__]
    assert rec[0].lineno != rec[1].lineno and str(rec[0].message) == str(rec[1].message)


# ------------------------------------------------------------- user_stacklevel's frame walk

_FAKE = """
import warnings

import numpy as np

from geoml._validation import user_stacklevel


def warn():
    warnings.warn("from geoml", UserWarning, stacklevel=user_stacklevel())


def inner():
    warn()


@np.errstate(over="ignore")
def decorated():
    inner()


def call_back(fn):
    return fn()
"""


@pytest.fixture(scope="module")
def fake():
    """A module whose code lives in geoml's directory (as geoml's own frames do)."""
    from geoml import _validation

    ns = {"__name__": "geoml._fake_for_tests"}
    exec(compile(_FAKE, _validation._PACKAGE_DIR + "_fake_for_tests.py", "exec"), ns)
    return ns


def _where(fn):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn()
    assert len(rec) == 1
    return rec[0].filename, rec[0].lineno


def test_user_stacklevel_skips_geoml_and_pass_through_frames(fake):
    assert _where(fake["warn"])[0] == __file__
    assert _where(fake["inner"])[0] == __file__
    # np.errstate as a decorator adds a NumPy frame between geoml's
    assert _where(fake["decorated"])[0] == __file__
    # a user callback called by geoml: its own line is the user's
    line = _where(lambda: fake["call_back"](fake["inner"]))
    assert line[0] == __file__


def test_user_stacklevel_in_threads_and_doctests(fake):
    # a user thread: the user's function is found
    got = []

    def run():
        got.append(_where(fake["decorated"])[0])

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert got == [__file__]
    # a pool running geoml's function directly: the pool's frame, never geoml's
    from concurrent.futures import ThreadPoolExecutor

    from geoml import _validation

    with ThreadPoolExecutor(1) as ex:
        where = ex.submit(_where, fake["inner"]).result()[0]
    assert where == __file__
    with ThreadPoolExecutor(1) as ex, warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ex.submit(fake["inner"]).result()
    assert len(rec) == 1 and not rec[0].filename.startswith(_validation._PACKAGE_DIR)
    # a doctest example: its own pseudo-file
    code = compile("inner()\n", "<doctest geoml.fake[0]>", "exec")
    assert _where(lambda: exec(code, {"inner": fake["inner"]}))[0] == "<doctest geoml.fake[0]>"


def test_user_stacklevel_counts_levels():
    def f():
        return user_stacklevel()

    assert f() == 1  # called from outside geoml: the warning's own line
