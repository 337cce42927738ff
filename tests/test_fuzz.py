"""Property-based fuzzing of every public entry point of geoml and geoml.ot (hypothesis).

Inputs range over shapes (1 x 1, empty, very thin, very wide), dtypes (float16/32/64, ints,
bool, object, complex, big-endian), memory layouts (Fortran, strided, reversed, read-only),
values (NaN, inf, 1e300, 1e-300, duplicates, zeros) and parameters at and past their bounds
(see tests/strategies.py). The property: a call either returns a correct result (finite; on
small valid input equal to a simple NumPy/SciPy reference) or raises ValueError/TypeError with a
message; it never crashes (the process would die here), hangs (a watchdog ends the run with a
traceback), returns NaN silently, warns from NumPy or raises another exception type.

Profiles (tests/conftest.py): HYPOTHESIS_PROFILE=ci (default, 30 examples a test), quick,
fuzz (1000 examples a test, for a long local search).
"""

import math
import sys
import warnings

import numpy as np
import pytest
import scipy.linalg as sp_linalg
import scipy.sparse as sp

pytest.importorskip("hypothesis")
import strategies
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment, linprog
from scipy.sparse.csgraph import connected_components, shortest_path
from scipy.sparse.csgraph import laplacian as csgraph_laplacian
from strategies import (
    BAD_INTS,
    arrays,
    assert_finite,
    attempt,
    float_values,
    is_valid_float,
    nice_arrays,
    rejected,
    shapes_2d,
    to_sparse,
    with_layout,
)

import geoml
from geoml import ot


@pytest.fixture(autouse=True, scope="module")
def _hang_report(request):
    """Hang reports (strategies.attempt's watchdog) go to the stderr that pytest does not
    capture (the descriptor its faulthandler plugin keeps), so that they are seen."""
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        strategies.HANG_FILE = request.config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        strategies.HANG_FILE = sys.__stderr__
    yield


# Parameters: valid values most of the time (so that results get checked), bad ones often.
N_JOBS = st.sampled_from([None] * 6 + [1, 2, -1, 0, -2, 10**6, 2**40, 1.5, "2"])
SMALL_INT = st.one_of(
    st.integers(1, 6), st.integers(1, 6), st.integers(-2, 12), st.sampled_from(BAD_INTS)
)
# Iteration budgets: bad values, but no huge ones (max_iter=2**31 with eps=1e-300 is a valid
# request for two billion iterations, not a hang)
BUDGET = st.one_of(
    st.integers(1, 6), st.integers(1, 6), st.sampled_from([0, -1, 1.5, True, "3", np.int64(2)])
)
POS_FLOAT = st.one_of(
    st.floats(1e-3, 10),
    st.floats(1e-3, 10),
    st.sampled_from([0.0, -1.0, 1e-300, 1e300, math.inf, math.nan, None, "x"]),
)
SEEDS = st.one_of(
    st.none(), st.integers(0, 2**32), st.integers(0, 9), st.sampled_from([-1, 1.5, "seed"])
)


def f64(x):
    return np.asarray(x).astype(np.float64)


def tol_for(*arrs):
    """Comparison tolerance: float32 (or float16) input computes in float32."""
    single = any(np.asarray(a).dtype in (np.float16, np.float32) for a in arrs if a is not None)
    return 2e-3 if single else 1e-7


# ---------------------------------------------------------------------------- neighbours


def brute(X, Y, metric):
    """Full float64 distance matrix (n_queries, n_data) (as tests/test_neighbors.py)."""
    if metric in ("euclidean", "sqeuclidean"):
        D = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        return np.sqrt(D) if metric == "euclidean" else D
    if metric == "cosine":
        nx, ny = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            C = 1 - (Y @ X.T) / np.outer(ny, nx)
        C[~np.isfinite(C) | (np.outer(ny, nx) == 0)] = 1.0
        return np.clip(C, 0, 2)
    return -(Y @ X.T)


METRIC = st.sampled_from(
    ["euclidean"] * 3 + ["sqeuclidean", "cosine", "inner_product", "manhattan", None]
)


def check_knn(X, Y, k, metric, exclude_self, out):
    idx, dist = out
    Xf = f64(X)
    Q = Xf if Y is None else f64(Y)
    assert idx.shape == dist.shape == (Q.shape[0], k)
    assert idx.dtype == np.int64
    assert ((idx >= 0) & (idx < Xf.shape[0])).all()
    assert_finite(dist, "distances")
    D = brute(Xf, Q, metric)
    if exclude_self:
        assert (idx != np.arange(len(Q))[:, None]).all(), "a point is its own neighbour"
        np.fill_diagonal(D, np.inf)
    rows = np.arange(len(Q))[:, None]
    scale = 1.0 + np.abs(D[np.isfinite(D)]).max(initial=0.0)
    rtol = tol_for(X, Y) * 10
    np.testing.assert_allclose(dist, D[rows, idx], atol=rtol * scale, rtol=0)
    np.testing.assert_allclose(dist, np.sort(D, axis=1)[:, :k], atol=rtol * scale, rtol=0)
    assert (np.diff(dist, axis=1) >= -rtol * scale).all(), "neighbours not sorted"


@given(
    X=arrays(shapes_2d()),
    k=SMALL_INT,
    metric=METRIC,
    exclude_self=st.sampled_from([None, True, False]),
    n_jobs=N_JOBS,
    data=st.data(),
)
def test_knn(X, k, metric, exclude_self, n_jobs, data):
    Y = None
    if data.draw(st.booleans(), "with Y"):
        d = X.shape[1] if X.ndim == 2 and data.draw(st.booleans(), "same d") else 2
        Y = data.draw(arrays(st.tuples(st.integers(0, 5), st.just(d))), "Y")
    out = attempt(geoml.knn, X, k, Y=Y, metric=metric, exclude_self=exclude_self, n_jobs=n_jobs)
    note(f"result {out!r}")
    if rejected(out):
        return
    excl = (Y is None) if exclude_self is None else exclude_self
    check_knn(X, Y, k, metric, excl, out)


@given(
    X=arrays(shapes_2d()),
    k=SMALL_INT,
    metric=METRIC,
    exclude_self=st.sampled_from([None, True, False]),
    method=st.sampled_from(["nndescent", "nndescent", "auto", "exact", "hnsw", None]),
    target=st.one_of(st.floats(0.5, 1.0), st.sampled_from([0.0, 1.5, math.nan, "x", True])),
    seed=SEEDS,
    n_jobs=N_JOBS,
)
def test_knn_approximate(X, k, metric, exclude_self, method, target, seed, n_jobs):
    out = attempt(
        geoml.knn,
        X,
        k,
        metric=metric,
        exclude_self=exclude_self,
        method=method,
        target_recall=target,
        random_state=seed,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    # a few points: one exactly searched leaf, every point checked -> the exact lists
    check_knn(X, None, k, metric, exclude_self is not False, out)
    if method != "exact":
        r = out.recall_
        assert 0 <= r.low <= r.estimate <= r.high <= 1 and r.n_checked == X.shape[0]
        assert r.reached == (r.estimate >= r.target)


@given(
    X=arrays(shapes_2d()),
    n_neighbors=SMALL_INT,
    mode=st.sampled_from(["distance", "connectivity", "bogus"]),
    metric=METRIC,
    method=st.sampled_from(["nndescent", "auto", "exact", "hnsw"]),
    seed=SEEDS,
)
def test_knn_transformer(X, n_neighbors, mode, metric, method, seed):
    est = geoml.KNNTransformer(
        n_neighbors, mode=mode, metric=metric, method=method, random_state=seed
    )
    out = attempt(est.fit_transform, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    n = X.shape[0]
    # a count above the samples is truncated (with a warning), the sample itself included
    assert est.n_neighbors_ == min(n_neighbors, n - (mode == "distance"))
    k = est.n_neighbors_ + (mode == "distance")
    assert sp.issparse(out) and out.shape == (n, n) and out.nnz == n * k
    assert (out.indptr == np.arange(0, n * k + 1, k)).all()
    if mode == "connectivity":
        assert (out.data == 1).all()
    else:
        idx = out.indices.reshape(n, k).astype(np.int64)  # SciPy may store int32
        check_knn(X, X, k, metric, False, (idx, out.data.reshape(n, k)))


@given(
    X=arrays(shapes_2d(10)),
    k=SMALL_INT,
    metric=METRIC,
    mode=st.sampled_from(["distance", "connectivity", "bogus"]),
    symmetrize=st.sampled_from(["union", "mutual", "mean", None, "max"]),
    kernel=st.sampled_from([None, None, "gaussian", "adaptive", "alpha_decay", "rbf"]),
    sigma=st.one_of(st.none(), POS_FLOAT),
    k_sigma=st.one_of(st.none(), SMALL_INT),
    decay=st.one_of(st.none(), POS_FLOAT),
    n_jobs=N_JOBS,
)
def test_knn_graph(X, k, metric, mode, symmetrize, kernel, sigma, k_sigma, decay, n_jobs):
    out = attempt(
        geoml.knn_graph,
        X,
        k,
        metric=metric,
        mode=mode,
        symmetrize=symmetrize,
        kernel=kernel,
        sigma=sigma,
        k_sigma=k_sigma,
        decay=decay,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    n = X.shape[0]
    assert sp.issparse(out) and out.shape == (n, n)
    assert_finite(out, "graph")
    assert not out.diagonal().any()
    if symmetrize is not None:
        assert abs(out - out.T).max() <= 1e-6 * (1 + abs(out).max())
    if kernel is not None:
        assert (out.data >= 0).all() and (out.data <= 1 + 1e-6).all()
    elif mode == "connectivity":  # "mean": an edge present one way only counts 1/2
        assert np.isin(out.data, [0.5, 1] if symmetrize == "mean" else [1]).all()
    if symmetrize is None:
        assert (np.diff(out.indptr) == k).all()
        if kernel is None and mode == "distance":
            idx, dist = geoml.knn(X, k, metric=metric)
            G = out.toarray()
            np.testing.assert_array_equal(G[np.arange(n)[:, None], idx], dist)


@given(
    X=arrays(shapes_2d(10)),
    n_neighbors=SMALL_INT,
    q=st.one_of(st.none(), SMALL_INT),
    kernel=st.sampled_from([None, "gaussian", "adaptive"]),
    data=st.data(),
)
def test_knn_graph_estimator(X, n_neighbors, q, kernel, data):
    est = geoml.KNNGraph(n_neighbors, kernel=kernel)
    out = attempt(est.fit, X)
    if rejected(out):
        return
    assert_finite(est.graph_, "graph_")
    assert est.n_neighbors_ == min(n_neighbors, X.shape[0] - 1)  # truncated, with a warning
    assert est.indices_.shape == (X.shape[0], est.n_neighbors_)
    Y = None
    if data.draw(st.booleans(), "with Y"):
        d = X.shape[1] if data.draw(st.booleans(), "same d") else X.shape[1] + 1
        Y = data.draw(arrays(st.tuples(st.integers(0, 5), st.just(d))), "Y")
    res = attempt(est.kneighbors, Y, q)
    if rejected(res):
        return
    k = est.n_neighbors_ if q is None else q
    check_knn(X, Y, k, "euclidean", Y is None, res)


# ---------------------------------------------------------------------------- spectral


@st.composite
def symmetric_matrices(draw, max_n=9):
    """Square (mostly symmetric) matrices: dense in any dtype/layout, or sparse."""
    n = draw(st.sampled_from([0, 1, 2, 3]) | st.integers(2, max_n))
    M = draw(arrays((n, n)))
    if draw(st.integers(0, 4)) and M.dtype.kind in "fiub" and M.dtype != np.float16:
        with np.errstate(all="ignore"):
            M = with_layout((M + M.T) / 2 if M.dtype.kind == "f" else M + M.T, "C")
    if draw(st.booleans()) and M.dtype.kind in "fiub":
        M = to_sparse(draw(st.sampled_from([sp.csr_matrix, sp.csc_matrix, sp.coo_matrix])), M)
    return M


def dense(A):
    return f64(A.toarray() if sp.issparse(A) else A)


@given(
    A=symmetric_matrices(),
    k=SMALL_INT,
    which=st.sampled_from(["LA", "SA", "LM", "BE"]),
    tol=st.one_of(st.none(), st.sampled_from([0.0, 1e-300, 1e-3, -1.0, math.nan, math.inf])),
    max_iter=st.one_of(st.none(), BUDGET),
    ncv=st.one_of(st.none(), SMALL_INT),
    v0_kind=st.sampled_from([None, None, "random", "zeros", "nan", "short"]),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_eigsh(A, k, which, tol, max_iter, ncv, v0_kind, random_state, n_jobs):
    n = A.shape[0]
    v0 = {
        None: None,
        "random": np.random.default_rng(0).normal(size=n),
        "zeros": np.zeros(n),
        "nan": np.full(n, np.nan),
        "short": np.ones(n + 1),
    }[v0_kind]
    out = attempt(
        geoml.eigsh,
        A,
        k,
        which=which,
        tol=tol,
        max_iter=max_iter,
        ncv=ncv,
        v0=v0,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    w, V = out
    assert w.shape == (k,) and V.shape == (n, k)
    assert_finite(w, "eigenvalues")
    assert_finite(V, "eigenvectors")
    assert_finite(out.residual_norms, "residual_norms")
    if not out.converged:
        return
    D = dense(A)
    ref = np.linalg.eigh(D)[0]
    anorm = max(np.abs(ref).max(), 1e-300)
    eps = 1e-6  # float32 input too: its eigenvalues are float32 roundings of float64 ones
    want = {"LA": ref[-k:], "SA": ref[:k]}.get(which)
    if want is None:  # LM: compare magnitudes
        np.testing.assert_allclose(np.sort(np.abs(w)), np.sort(np.abs(ref))[-k:], atol=eps * anorm)
    else:
        np.testing.assert_allclose(np.sort(w), want, atol=eps * anorm)
    np.testing.assert_allclose(V.T.astype(np.float64) @ V, np.eye(k), atol=eps * 10)
    assert np.linalg.norm((D @ V - V * w) / anorm, axis=0).max() <= eps * 10


@st.composite
def affinities(draw, max_n=8):
    """Affinity matrices: symmetric non-negative (mostly), dense or sparse, any dtype."""
    n = draw(st.sampled_from([0, 1, 2]) | st.integers(2, max_n))
    M = draw(arrays((n, n)))
    if draw(st.integers(0, 4)) and M.dtype.kind in "fiub":
        with np.errstate(all="ignore"):
            M = np.abs(M.astype(np.float64))
            M = with_layout(np.maximum(M, M.T), draw(st.sampled_from(["C", "F", "readonly"])))
            if draw(st.booleans()):
                M = M.astype(np.float32)
    if draw(st.booleans()) and M.dtype.kind in "fiub":
        M = to_sparse(draw(st.sampled_from([sp.csr_matrix, sp.csc_matrix, sp.coo_matrix])), M)
    return M


@given(
    W=affinities(),
    kind=st.sampled_from(["symmetric", "combinatorial", "random_walk", "normalized"]),
    return_diag=st.booleans(),
)
def test_laplacian(W, kind, return_diag):
    out = attempt(geoml.laplacian, W, kind=kind, return_diag=return_diag)
    note(f"result {out!r}")
    if rejected(out):
        return
    L, d = out if return_diag else (out, None)
    assert_finite(L, "L")
    assert_finite(d, "degrees")
    Wd = dense(W)
    np.fill_diagonal(Wd, 0)
    deg = Wd.sum(1)
    if kind == "random_walk":
        inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        ref = np.diag((deg > 0).astype(float)) - inv[:, None] * Wd
    else:
        ref = csgraph_laplacian(Wd, normed=kind == "symmetric")
    scale = 1e-3 if L.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(L.toarray(), ref, atol=scale * (1 + np.abs(ref).max()))
    if d is not None:
        np.testing.assert_allclose(d, deg, rtol=scale)


SPECTRAL_PARAMS = dict(
    n_neighbors=SMALL_INT,
    tol=st.one_of(st.none(), st.sampled_from([0.0, 1e-3, -1.0, math.nan])),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)


def spectral_input(draw):
    """X (points) or, with affinity="precomputed", a sparse affinity."""
    if draw(st.integers(0, 3)) == 0:
        return draw(affinities(12)), "precomputed"
    X = draw(
        arrays(st.tuples(st.sampled_from([0, 1, 2, 3]) | st.integers(4, 25), st.integers(0, 4)))
    )
    return X, draw(st.sampled_from(["knn", "adaptive", "bogus"]))


def lsym_eigenvalues(W):
    """Eigenvalues of the symmetric normalised Laplacian of the affinity, ascending."""
    return np.linalg.eigvalsh(csgraph_laplacian(dense(W), normed=True))


@given(
    data=st.data(),
    n_components=SMALL_INT,
    drop_first=st.booleans(),
    kernel=st.sampled_from([None, "gaussian", "adaptive"]),
    **SPECTRAL_PARAMS,
)
def test_laplacian_eigenmap(
    data, n_components, drop_first, kernel, n_neighbors, tol, random_state, n_jobs
):
    X, affinity = spectral_input(data.draw)
    est = geoml.LaplacianEigenmap(
        n_components,
        n_neighbors,
        affinity=affinity,
        kernel=kernel,
        drop_first=drop_first,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    n = est.affinity_matrix_.shape[0]
    assert est.embedding_.shape == (n, n_components)
    assert_finite(est.embedding_, "embedding_")
    assert_finite(est.eigenvalues_, "eigenvalues_")
    ref = lsym_eigenvalues(est.affinity_matrix_)
    want = ref[int(drop_first) : int(drop_first) + n_components]
    np.testing.assert_allclose(est.eigenvalues_, want, atol=1e-5)


@given(
    data=st.data(),
    n_components=SMALL_INT,
    alpha=st.one_of(st.floats(0, 1), st.sampled_from([-0.5, 2.0, math.nan])),
    t=st.one_of(st.floats(0, 5), st.sampled_from([-1.0, math.inf, math.nan])),
    kernel=st.sampled_from([None, "gaussian", "adaptive"]),
    **SPECTRAL_PARAMS,
)
def test_diffusion_map(
    data, n_components, alpha, t, kernel, n_neighbors, tol, random_state, n_jobs
):
    X, affinity = spectral_input(data.draw)
    est = geoml.DiffusionMap(
        n_components,
        n_neighbors,
        alpha=alpha,
        t=t,
        affinity=affinity,
        kernel=kernel,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    n = est.affinity_matrix_.shape[0]
    assert est.embedding_.shape == (n, n_components)
    assert_finite(est.embedding_, "embedding_")
    assert_finite(est.eigenvalues_, "eigenvalues_")
    assert (np.abs(est.eigenvalues_) <= 1 + 1e-6).all()
    assert (np.diff(est.eigenvalues_) <= 1e-6).all(), "eigenvalues_ not descending"


@given(
    W=affinities(12),
    k=SMALL_INT,
    kind=st.sampled_from(["symmetric", "combinatorial", "random_walk", "normalized"]),
    method=st.sampled_from(["auto", "auto", "lobpcg-amg", "lanczos", "arpack"]),
    tol=st.one_of(st.none(), st.sampled_from([0.0, 1e-3, -1.0, math.nan])),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_laplacian_eigsh(W, k, kind, method, tol, random_state, n_jobs):
    out = attempt(
        geoml.laplacian_eigsh,
        W,
        k,
        kind=kind,
        method=method,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    w, V = out
    n = W.shape[0]
    assert w.shape == (k,) and V.shape == (n, k)
    assert_finite(w, "eigenvalues")
    assert_finite(V, "eigenvectors")
    Wd = dense(W)
    np.fill_diagonal(Wd, 0)
    deg = Wd.sum(1)
    if kind == "combinatorial":
        ref = np.linalg.eigvalsh(np.diag(deg) - Wd)
        scale = max(deg.max(), 1e-300)
    else:
        ref = lsym_eigenvalues(W)
        scale = 1.0
    ncomp = connected_components(sp.csr_matrix(Wd != 0))[0]
    assert np.sum(w == 0) == min(k, ncomp)
    np.testing.assert_allclose(w / scale, ref[:k] / scale, atol=1e-6)


@given(
    W=affinities(12),
    n_components=SMALL_INT,
    norm_laplacian=st.sampled_from([True, False, "yes"]),
    drop_first=st.booleans(),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_spectral_embedding(W, n_components, norm_laplacian, drop_first, random_state, n_jobs):
    out = attempt(
        geoml.spectral_embedding,
        W,
        n_components,
        norm_laplacian=norm_laplacian,
        drop_first=drop_first,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert out.shape == (W.shape[0], n_components)
    assert_finite(out, "embedding")
    # every column's largest-magnitude entry is positive (scikit-learn's sign convention)
    idx = np.abs(out).argmax(axis=0)
    assert (out[idx, np.arange(n_components)] >= 0).all()


@given(
    data=st.data(),
    n_clusters=SMALL_INT,
    n_init=BUDGET,
    max_iter=BUDGET,
    kernel=st.sampled_from([None, "gaussian"]),
    **SPECTRAL_PARAMS,
)
def test_spectral_clustering(
    data, n_clusters, n_init, max_iter, kernel, n_neighbors, tol, random_state, n_jobs
):
    X, affinity = spectral_input(data.draw)
    est = geoml.SpectralClustering(
        n_clusters,
        n_neighbors,
        affinity=affinity,
        kernel=kernel,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    n = est.affinity_matrix_.shape[0]
    assert est.labels_.shape == (n,)
    assert ((est.labels_ >= 0) & (est.labels_ < n_clusters)).all()
    assert_finite(est.embedding_, "embedding_")
    assert math.isfinite(est.inertia_) and est.inertia_ >= 0
    ref = lsym_eigenvalues(est.affinity_matrix_)[:n_clusters]
    np.testing.assert_allclose(est.eigenvalues_, ref, atol=1e-5)


# ---------------------------------------------------------------------------- optimal transport


@st.composite
def histograms(draw, n):
    """None (uniform), or a weight vector of length n (sometimes the wrong one)."""
    if draw(st.integers(0, 4)) == 0:
        return None
    length = n if draw(st.integers(0, 6)) else draw(st.integers(0, n + 2))
    kind = draw(st.sampled_from(["prob", "prob", "prob", "any"]))
    if kind == "any":
        return draw(arrays((length,)))
    w = draw(float_values((length,), "nice"))
    w = np.abs(w)
    if w.sum() > 0:
        w = w / w.sum()
    return with_layout(w, draw(st.sampled_from(["C", "strided", "readonly"])))


@st.composite
def ot_problem(draw, max_side=6):
    m, n = draw(
        st.sampled_from([(1, 1), (0, 2), (2, 0)])
        | st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    )
    C = draw(arrays((m, n)))
    return draw(histograms(m)), draw(histograms(n)), C


def uniform_like(w, n):
    w = np.full(n, 1.0 / n) if w is None else f64(w)
    return w


def emd_reference(a, b, C):
    """Optimal cost by linear programming (HiGHS), b rescaled to the mass of a; +inf costs are
    forbidden pairs (flow fixed at 0). None when that leaves no feasible plan."""
    m, n = C.shape
    b = b * (a.sum() / b.sum())
    A_eq = np.vstack([np.kron(np.eye(m), np.ones(n)), np.kron(np.ones(m), np.eye(n))])
    allowed = np.isfinite(C)
    Cz = np.where(allowed, C, 0.0)
    lo = Cz.min()  # HiGHS takes costs above ~1e15 for infinite: solve the shifted, scaled problem
    s = max((Cz - lo).max(), 1.0)
    res = linprog(
        ((Cz - lo) / s).ravel(),
        A_eq=A_eq,
        b_eq=np.concatenate([a, b]),
        bounds=[(0, None) if ok else (0, 0) for ok in allowed.ravel()],
        method="highs",
    )
    if res.status == 2 and not allowed.all():
        return None
    assert res.status == 0, res.message
    return res.fun * s + lo * a.sum()


@given(prob=ot_problem(), max_iter=st.one_of(st.none(), BUDGET), sparse=st.booleans())
def test_emd(prob, max_iter, sparse):
    a, b, C = prob
    out = attempt(ot.emd, a, b, C, max_iter=max_iter, sparse=sparse)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out.cost, "cost")
    assert_finite((out.f, out.g), "duals")
    P = out.plan.toarray() if sparse else out.plan
    assert_finite(P, "plan")
    assert (P >= 0).all()
    if not out.converged:
        return
    Cf = f64(C)
    m, n = Cf.shape
    af, bf = uniform_like(a, m), uniform_like(b, n)
    scale = (1 + np.abs(Cf[np.isfinite(Cf)]).max(initial=0.0)) * af.sum()
    np.testing.assert_allclose(P.sum(1), af, atol=1e-9 * af.sum())
    np.testing.assert_allclose(P.sum(0), bf * af.sum() / bf.sum(), atol=1e-9 * af.sum())
    assert not (P > 0)[~np.isfinite(Cf)].any(), "mass on a forbidden (+inf) pair"
    ref = emd_reference(af, bf, Cf)
    assert ref is not None, "an infeasible problem (forbidden pairs) was accepted"
    assert abs(out.cost - ref) <= 1e-7 * scale
    assert abs(af @ out.f + (bf * af.sum() / bf.sum()) @ out.g - out.cost) <= 1e-7 * scale
    if a is None and b is None and m == n:  # uniform square: an assignment problem
        r, c = linear_sum_assignment(Cf)
        assert abs(out.cost - Cf[r, c].mean()) <= 1e-9 * scale


@st.composite
def batched_problem(draw):
    """(a, b, C, kwargs) in the padded (with masks) or ragged layout, sometimes malformed."""
    B = draw(st.integers(0, 4) | st.just(1))
    if draw(st.booleans()):  # padded
        m, n = draw(st.integers(0, 4)), draw(st.integers(0, 4))
        C = draw(arrays((B, m, n)))
        a = np.abs(draw(float_values((B, m), "nice")))
        b = np.abs(draw(float_values((B, n), "nice")))
        kw = {}
        if draw(st.booleans()):
            kw["a_mask"] = draw(arrays((B, m), dtypes=(np.bool_, np.int8)))
        if draw(st.booleans()):
            a = draw(arrays((B, m)))
        else:
            with np.errstate(all="ignore"):
                sa, sb = a.sum(1, keepdims=True), b.sum(1, keepdims=True)
                a = np.where(sa > 0, a / np.where(sa > 0, sa, 1), a)
                b = np.where(sb > 0, b / np.where(sb > 0, sb, 1), b)
        return a, b, C, kw
    ms = draw(st.lists(st.integers(0, 3), min_size=B, max_size=B))
    ns = draw(st.lists(st.integers(0, 3), min_size=B, max_size=B))
    a_off = np.concatenate([[0], np.cumsum(ms)]).astype(np.int64)
    b_off = np.concatenate([[0], np.cumsum(ns)]).astype(np.int64)
    a = np.concatenate([np.full(k, 1.0 / k) for k in ms if k] or [np.zeros(0)])
    b = np.concatenate([np.full(k, 1.0 / k) for k in ns if k] or [np.zeros(0)])
    size = int(np.dot(ms, ns)) + draw(st.sampled_from([0, 0, 0, 1, -1]))
    C = draw(arrays((max(size, 0),)))
    if draw(st.integers(0, 5)) == 0:
        a_off = draw(arrays((len(a_off),), dtypes=(np.int64, np.float64, np.int8)))
    return a, b, C, dict(a_offsets=a_off, b_offsets=b_off)


def split_problems(a, b, C, kw):
    """Per-problem (a_k, b_k, C_k) of a batched call that was accepted."""
    if "a_offsets" in kw:
        ao, bo = np.asarray(kw["a_offsets"], np.int64), np.asarray(kw["b_offsets"], np.int64)
        out, c0 = [], 0
        for k in range(len(ao) - 1):
            ak, bk = f64(a)[ao[k] : ao[k + 1]], f64(b)[bo[k] : bo[k + 1]]
            size = len(ak) * len(bk)
            out.append((ak, bk, f64(C)[c0 : c0 + size].reshape(len(ak), len(bk))))
            c0 += size
        return out
    a = f64(a)
    if "a_mask" in kw:
        a = np.where(np.asarray(kw["a_mask"]), a, 0.0)
    return [(a[k], f64(b)[k], f64(C)[k]) for k in range(len(a))]


def restrict(a, b, C):
    """Drop zero-mass bins (their costs are never read)."""
    i, j = a > 0, b > 0
    return a[i], b[j], C[np.ix_(i, j)]


@given(
    prob=batched_problem(),
    return_plans=st.booleans(),
    max_iter=st.one_of(st.none(), BUDGET),
    n_jobs=N_JOBS,
)
def test_emd_batched(prob, return_plans, max_iter, n_jobs):
    a, b, C, kw = prob
    out = attempt(
        ot.emd_batched, a, b, C, return_plans=return_plans, max_iter=max_iter, n_jobs=n_jobs, **kw
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out.cost, "cost")
    assert_finite(out.plans, "plans")
    for k, (ak, bk, Ck) in enumerate(split_problems(a, b, C, kw)):
        if not out.converged[k]:
            continue
        ak, bk, Ck = restrict(ak, bk, Ck)
        ref = ot.emd(ak, bk, Ck).cost
        finite = np.abs(Ck[np.isfinite(Ck)]).max(initial=0)
        assert abs(out.cost[k] - ref) <= 1e-9 * (1 + finite) * ak.sum()


EPS = st.one_of(
    st.floats(1e-2, 10),
    st.floats(1e-2, 10),
    st.sampled_from([0.0, -1.0, 1e-300, 1e300, math.nan, math.inf, "x", None]),
)
TOL = st.one_of(
    st.sampled_from([1e-9, 1e-6, 1e-3]),
    st.sampled_from([1e-9, 1e-6, 1e-3]),
    st.sampled_from([0.0, -1.0, 1e300, math.nan, math.inf, "x"]),
)
SCHEDULE = st.sampled_from(["auto"] * 4 + ["none", 0.5, 0.0, 1.0, -0.5, math.nan, "fast"])


@given(
    prob=ot_problem(),
    eps=EPS,
    tol=TOL,
    max_iter=BUDGET | st.just(10000),
    schedule=SCHEDULE,
    warm=st.sampled_from([None, "zeros", "bad", "nan"]),
    n_jobs=N_JOBS,
)
def test_sinkhorn(prob, eps, tol, max_iter, schedule, warm, n_jobs):
    a, b, C = prob
    m, n = np.shape(C)
    warm_start = {
        None: None,
        "zeros": (np.zeros(m), np.zeros(n)),
        "bad": (np.zeros(m + 1),),
        "nan": (np.full(m, np.nan), np.zeros(n)),
    }[warm]
    out = attempt(
        ot.sinkhorn,
        a,
        b,
        C,
        eps,
        max_iter=max_iter,
        tol=tol,
        warm_start=warm_start,
        eps_schedule=schedule,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out, "SinkhornResult")
    assert (out.plan >= 0).all()
    if out.converged:
        af, bf = uniform_like(a, m), uniform_like(b, n)
        err = (
            np.abs(out.plan.sum(1) - af).sum()
            + np.abs(out.plan.sum(0) - bf * af.sum() / bf.sum()).sum()
        )
        assert err <= max(tol, 1e-12) * af.sum() * 1.01 + 1e-12
        assert not (out.plan > 0)[~np.isfinite(f64(C))].any(), "mass on a forbidden pair"
        ref = emd_reference(af, bf, f64(C))
        Cfin = np.abs(f64(C)[np.isfinite(f64(C))]).max(initial=0.0)
        if ref is not None:  # (a loose tol can "converge" on an infeasible pattern)
            assert out.cost >= ref - (1 + Cfin) * (err + 1e-7)


@given(
    prob=ot_problem(),
    eps=EPS,
    tol=TOL,
    max_iter=BUDGET | st.just(1000),
    n_warmup=st.sampled_from([1, 3, 20, 0, -1, 2.5]),
    sparsity=st.sampled_from([0.0, 1e-6, 0.5, 1.0, -1.0, math.nan, "x"]),
    n_jobs=N_JOBS,
)
def test_sinkhorn_newton(prob, eps, tol, max_iter, n_warmup, sparsity, n_jobs):
    a, b, C = prob
    m, n = np.shape(C)
    out = attempt(
        ot.sinkhorn_newton,
        a,
        b,
        C,
        eps,
        max_iter=max_iter,
        tol=tol,
        n_warmup=n_warmup,
        sparsity=sparsity,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out, "SinkhornNewtonResult")
    assert (out.plan >= 0).all()
    if out.converged:
        af, bf = uniform_like(a, m), uniform_like(b, n)
        err = (
            np.abs(out.plan.sum(1) - af).sum()
            + np.abs(out.plan.sum(0) - bf * af.sum() / bf.sum()).sum()
        )
        assert err <= max(tol, 1e-12) * af.sum() * 1.01 + 1e-12
        assert not (out.plan > 0)[~np.isfinite(f64(C))].any(), "mass on a forbidden pair"


@given(
    prob=ot_problem(), eps=EPS, rho=EPS, tol=TOL, max_iter=BUDGET | st.just(10000), n_jobs=N_JOBS
)
def test_sinkhorn_unbalanced(prob, eps, rho, tol, max_iter, n_jobs):
    a, b, C = prob
    out = attempt(
        ot.sinkhorn_unbalanced, a, b, C, eps, rho, max_iter=max_iter, tol=tol, n_jobs=n_jobs
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out, "SinkhornResult")
    assert (out.plan >= 0).all()


@given(
    xy=st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 3))
    .flatmap(lambda s: st.tuples(arrays((s[0], s[2])), arrays((s[1], s[2] if s[0] % 3 else 2))))
    .flatmap(lambda xy: st.tuples(st.just(xy), histograms(len(xy[0])), histograms(len(xy[1])))),
    eps=EPS,
    p=st.sampled_from([1, 2, 2, 3, 0, True, 2.0]),
    rho=st.one_of(st.none(), st.none(), EPS),
    tol=TOL,
    max_iter=BUDGET | st.just(1000),
    schedule=SCHEDULE,
    n_jobs=N_JOBS,
)
def test_sinkhorn_points(xy, eps, p, rho, tol, max_iter, schedule, n_jobs):
    (x, y), a, b = xy
    out = attempt(
        ot.sinkhorn_points,
        x,
        y,
        eps,
        a=a,
        b=b,
        p=p,
        rho=rho,
        tol=tol,
        max_iter=max_iter,
        eps_schedule=schedule,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out, "PointsSinkhornResult")
    if rho is None and out.converged and tol == 1e-9:  # same problem as a dense sinkhorn
        X, Y = f64(x), f64(y)
        C = np.sqrt(((X[:, None] - Y[None]) ** 2).sum(-1)) ** p
        ref = ot.sinkhorn(a, b, C, eps, tol=tol, max_iter=100000)
        assert abs(out.cost - ref.cost) <= 1e-5 * (1 + abs(ref.cost))


@given(
    prob=batched_problem(),
    eps=EPS,
    rho=st.one_of(st.none(), st.none(), EPS),
    tol=TOL,
    max_iter=BUDGET | st.just(10000),
    schedule=SCHEDULE,
    return_plans=st.booleans(),
    n_jobs=N_JOBS,
    forbid=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
)
def test_sinkhorn_batched(prob, eps, rho, tol, max_iter, schedule, return_plans, n_jobs, forbid):
    a, b, C, kw = prob
    if forbid is not None and isinstance(C, np.ndarray) and C.dtype.kind == "f" and C.size:
        C = C.copy()  # forbidden (+inf) pairs, maybe leaving a problem infeasible
        C[np.random.default_rng(forbid).random(C.shape) < 0.3] = np.inf
    out = attempt(
        ot.sinkhorn_batched,
        a,
        b,
        C,
        eps,
        rho=rho,
        tol=tol,
        max_iter=max_iter,
        eps_schedule=schedule,
        return_plans=return_plans,
        n_jobs=n_jobs,
        **kw,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out.cost, "cost")
    assert_finite(out.error, "error")
    assert_finite(out.plans, "plans")
    if out.plans is not None:
        assert not (out.plans > 0)[np.isposinf(f64(C))].any(), "mass on a forbidden pair"
    if rho is None and tol == 1e-9 and isinstance(eps, float) and eps >= 0.05:
        for k, (ak, bk, Ck) in enumerate(split_problems(a, b, C, kw)):
            if out.converged[k]:
                ak, bk, Ck = restrict(ak, bk, Ck)
                ref = ot.sinkhorn(
                    ak, bk, Ck, eps, tol=1e-12, max_iter=100000, eps_schedule="none"
                ).cost
                assert abs(out.cost[k] - ref) <= 1e-6 * (1 + abs(ref))


# ---------------------------------------------------------------------------- curvature


@st.composite
def graphs(draw, max_n=8):
    """(G in one of the accepted forms, n, edges (i < j), weights) or a malformed G."""
    n = draw(st.integers(0, max_n))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=14)) if pairs else []
    edges = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    kind = draw(st.sampled_from(["unit", "unit", "nice", "wild"]))
    w = (
        np.ones(len(edges))
        if kind == "unit"
        else np.abs(draw(float_values((len(edges),), "nice"))) / 10
        if kind == "nice"
        else draw(float_values((len(edges),), "wild"))
    )
    form = draw(
        st.sampled_from(["edges"] * 3 + ["sparse"] * 2 + ["networkx"] * 2 + ["array", "bad"])
    )
    if form == "edges":
        G = np.column_stack([edges, w]) if kind != "unit" else edges
        if draw(st.booleans()):
            with np.errstate(all="ignore"):
                G = draw(
                    st.sampled_from(
                        [
                            lambda g: g.astype(np.int8),
                            lambda g: g.astype(object),
                            lambda g: g[:, ::-1],
                            np.asfortranarray,
                        ]
                    )
                )(G)
    elif form == "sparse":
        A = sp.coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(n, n))
        G = draw(st.sampled_from([sp.csr_matrix, sp.csc_matrix, sp.coo_matrix]))(A + A.T)
    elif form == "networkx":
        nx = pytest.importorskip("networkx")
        G = nx.Graph()
        G.add_nodes_from(range(n))
        G.add_weighted_edges_from((int(i), int(j), float(x)) for (i, j), x in zip(edges, w))
    elif form == "array":  # a dense matrix is not an accepted form
        G = np.zeros((n, n))
    else:
        G = draw(arrays(shapes_2d()))
    return G, n, edges, w


def orc_reference(n, edges, w, alpha, base, exp_power):
    """Ollivier-Ricci curvature by linear programming on shortest-path costs (w > 0)."""
    A = sp.coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    A = A + A.T
    D = shortest_path(A, directed=False)
    nbrs = [A.indices[A.indptr[i] : A.indptr[i + 1]] for i in range(n)]

    def measure(x):
        wx = np.asarray(A[x, nbrs[x]].todense()).ravel()
        p = base ** -(wx**exp_power)
        p = p / p.sum() if p.sum() >= 1e-7 else np.full(len(wx), 1.0 / len(wx))
        return np.concatenate([[x], nbrs[x]]), np.concatenate([[alpha], (1 - alpha) * p])

    out = []
    for x, y in edges:
        (sx, mx), (sy, my) = measure(x), measure(y)
        out.append(1 - emd_reference(mx, my, D[np.ix_(sx, sy)]) / D[x, y])
    return np.array(out)


ORC_PARAMS = dict(
    alpha=st.one_of(
        st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.sampled_from([-0.1, 1.5, math.nan])
    ),
    method=st.sampled_from(["exact"] * 4 + ["sinkhorn", "sinkhorn", "lower_bound", "fast"]),
    eps=EPS,
    tol=TOL,
    exp_power=st.sampled_from([2, 2, 2, 2, 1, 0, math.inf, math.nan, -1.0]),
    base=st.sampled_from([math.e] * 4 + [2.0, 0.0, -1.0, math.inf, math.nan]),
    nbr_topk=st.one_of(st.none(), st.none(), SMALL_INT),
    max_iter=st.one_of(st.none(), st.none(), BUDGET),
    n_jobs=N_JOBS,
)


@given(graph=graphs(), **ORC_PARAMS)
def test_ollivier_ricci(
    graph, alpha, method, eps, tol, exp_power, base, nbr_topk, max_iter, n_jobs
):
    G, n, edges, w = graph
    est = geoml.OllivierRicci(
        alpha,
        method,
        eps=eps,
        tol=tol,
        exp_power=exp_power,
        base=base,
        nbr_topk=nbr_topk,
        max_iter=max_iter,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, G)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert est.curvature_.shape == (len(est.edges_),)
    assert_finite(est.curvature_, "curvature_")
    assert_finite(est.node_curvature_, "node_curvature_")
    assert_finite(est.distances_, "distances_")
    if (
        method == "exact"
        and est.converged_.all()
        and nbr_topk is None
        and len(edges)
        and (est.weights_ > 0).all()
        and np.array_equal(est.edges_, edges)
    ):
        ref = orc_reference(n, edges, est.weights_, float(alpha), float(base), float(exp_power))
        np.testing.assert_allclose(est.curvature_, ref, atol=1e-7)
    assert_finite(
        attempt(
            geoml.ollivier_ricci,
            G,
            alpha,
            method,
            eps=eps,
            tol=tol,
            exp_power=exp_power,
            base=base,
            nbr_topk=nbr_topk,
            max_iter=max_iter,
            n_jobs=n_jobs,
        )
    )


@given(graph=graphs(), method=st.sampled_from(["augmented", "1d", "2d"]), n_jobs=N_JOBS)
def test_forman_ricci(graph, method, n_jobs):
    G, n, edges, w = graph
    est = geoml.FormanRicci(method, n_jobs=n_jobs)
    out = attempt(est.fit, G)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(est.curvature_, "curvature_")
    assert_finite(est.node_curvature_, "node_curvature_")
    if method == "1d":  # F = w (2 / w - sum_x 1 / sqrt(w w_xv) - sum_y 1 / sqrt(w w_yv))
        E, W = est.edges_, est.weights_
        nb = {}
        for (i, j), x in zip(E.tolist(), W):
            nb.setdefault(i, {})[j] = x
            nb.setdefault(j, {})[i] = x
        ref = [
            x
            * (
                2 / x
                - sum(1 / np.sqrt(x * v) for u, v in nb[i].items() if u != j)
                - sum(1 / np.sqrt(x * v) for u, v in nb[j].items() if u != i)
            )
            for (i, j), x in zip(E.tolist(), W)
        ]
        np.testing.assert_allclose(est.curvature_, ref, rtol=1e-9, atol=1e-9)


@given(
    graph=graphs(6),
    n_iter=SMALL_INT,
    step=POS_FLOAT,
    delta=st.sampled_from([1e-4, 0.0, -1.0, math.nan]),
    **ORC_PARAMS,
)
def test_ricci_flow(
    graph, n_iter, step, delta, alpha, method, eps, tol, exp_power, base, nbr_topk, max_iter, n_jobs
):
    G, n, edges, w = graph
    est = geoml.RicciFlow(
        min(n_iter, 3) if isinstance(n_iter, int) else n_iter,
        step,
        delta,
        alpha=alpha,
        method=method,
        eps=eps,
        tol=tol,
        exp_power=exp_power,
        base=base,
        nbr_topk=nbr_topk,
        max_iter=max_iter,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, G)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(est.weights_, "weights_")
    assert_finite(est.curvature_history_, "curvature_history_")
    assert (est.weights_ >= 0).all()


@given(
    graph=graphs(6),
    n_iter=st.integers(0, 2) | st.sampled_from([-1, 1.5]),
    cutoff_step=st.one_of(st.just(0.025), POS_FLOAT),
    flow_params=st.sampled_from([None, {"method": "sinkhorn"}, {"step": -1.0}, {"bogus": 1}]),
)
def test_ricci_communities(graph, n_iter, cutoff_step, flow_params):
    G, n, edges, w = graph
    est = geoml.RicciCommunities(n_iter, cutoff_step=cutoff_step, flow_params=flow_params)
    out = attempt(est.fit, G)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert est.labels_.shape == (len(est.flow_.nodes_),)
    assert math.isfinite(est.modularity_) and math.isfinite(est.cutoff_)
    assert_finite(
        attempt(
            geoml.ricci_communities, G, n_iter, cutoff_step=cutoff_step, flow_params=flow_params
        )
    )


@st.composite
def digraphs(draw, max_n=7):
    """(networkx DiGraph, n, arcs (sorted), weights); arcs may be reciprocal, self-loops."""
    nx = pytest.importorskip("networkx")
    n = draw(st.integers(0, max_n))
    pairs = [(i, j) for i in range(n) for j in range(n)]
    arcs = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=16)) if pairs else []
    kind = draw(st.sampled_from(["unit", "nice", "wild"]))
    w = (
        np.ones(len(arcs))
        if kind == "unit"
        else np.abs(draw(float_values((len(arcs),), "nice"))) / 10
        if kind == "nice"
        else draw(float_values((len(arcs),), "wild"))
    )
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_weighted_edges_from((int(i), int(j), float(x)) for (i, j), x in zip(arcs, w))
    return G, n


def orc_directed_reference(G, alpha, base, exp_power):
    """GraphRicciCurvature's directed Ollivier-Ricci curvature by LP (weights > 0): in-
    neighbours of the source, out-neighbours of the target, directed shortest paths."""
    n = G.number_of_nodes()
    arcs = sorted((u, v) for u, v in G.edges() if u != v)
    W = {(u, v): G[u][v]["weight"] for u, v in arcs}
    A = sp.coo_matrix(
        ([W[a] for a in arcs], ([a[0] for a in arcs], [a[1] for a in arcs])), shape=(n, n)
    ).tocsr()
    D = shortest_path(A, directed=True)

    def measure(x, into):
        nb = sorted({u for u, v in arcs if v == x} if into else {v for u, v in arcs if u == x})
        if not nb:
            return np.array([x]), np.array([1.0])
        p = np.array([base ** -(W[(u, x) if into else (x, u)] ** exp_power) for u in nb])
        p = p / p.sum() if p.sum() > 1e-7 else np.full(len(nb), 1.0 / len(nb))
        return np.array([x, *nb]), np.concatenate([[alpha], (1 - alpha) * p])

    out = []
    for x, y in arcs:
        if D[x, y] < 1e-7:  # GraphRicciCurvature: curvature 0 below its EPSILON distance
            out.append(0.0)
            continue
        (sx, mx), (sy, my) = measure(x, True), measure(y, False)
        out.append(1 - emd_reference(mx, my, D[np.ix_(sx, sy)]) / D[x, y])
    return np.array(out)


@given(
    graph=digraphs(),
    alpha=ORC_PARAMS["alpha"],
    method=st.sampled_from(["exact"] * 3 + ["sinkhorn", "atd", "lower_bound"]),
    exp_power=ORC_PARAMS["exp_power"],
    base=ORC_PARAMS["base"],
    n_jobs=N_JOBS,
)
def test_ollivier_ricci_directed(graph, alpha, method, exp_power, base, n_jobs):
    G, n = graph
    est = geoml.OllivierRicci(alpha, method, exp_power=exp_power, base=base, n_jobs=n_jobs)
    out = attempt(est.fit, G)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert est.curvature_.shape == (len(est.edges_),)
    assert_finite(est.curvature_, "curvature_")
    assert_finite(est.node_curvature_, "node_curvature_")
    if method == "exact" and len(est.edges_) and (est.weights_ > 0).all():
        ref = orc_directed_reference(G, float(alpha), float(base), float(exp_power))
        np.testing.assert_allclose(est.curvature_, ref, atol=1e-7)


@given(
    graph=st.one_of(digraphs(), graphs(6).map(lambda g: g[0])),
    alpha=ORC_PARAMS["alpha"],
    method=st.sampled_from(["OTD", "ATD", "Sinkhorn", "OTDSinkhornMix", "exact"]),
    iterations=st.integers(0, 2),
    edge_subset=st.booleans(),
)
def test_compat_ollivier_ricci(graph, alpha, method, iterations, edge_subset):
    from geoml.curvature.compat import OllivierRicci

    G = graph[0] if isinstance(graph, tuple) else graph
    orc = attempt(OllivierRicci, G, alpha=alpha, method=method, proc=1)
    note(f"result {orc!r}")
    if rejected(orc):
        return
    edges = list(orc.G.edges())[::2] if edge_subset else None
    out = attempt(orc.compute_ricci_curvature_edges, edges)
    if rejected(out):
        return
    assert_finite(np.array(list(out.values()), dtype=float), "curvature")
    out = attempt(orc.compute_ricci_flow, iterations)
    if rejected(out):
        return
    for _, _, d in out.edges(data=True):
        assert math.isfinite(d["ricciCurvature"]) and d["weight"] >= 0
    attempt(orc.ricci_community)


# ---------------------------------------------------------------------------- low rank


@given(
    A=st.one_of(
        arrays(shapes_2d(10)),
        arrays(shapes_2d(10)).map(
            lambda M: (
                to_sparse(sp.csr_matrix, M)
                if M.dtype.kind in "fiub" and M.dtype != np.float16
                else M
            )
        ),
    ),
    k=SMALL_INT,
    n_oversamples=SMALL_INT,
    n_iter=st.one_of(st.just("auto"), SMALL_INT, st.just("many"), st.just(2**31)),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_randomized_svd(A, k, n_oversamples, n_iter, random_state, n_jobs):
    out = attempt(
        geoml.randomized_svd,
        A,
        k,
        n_oversamples=n_oversamples,
        n_iter=n_iter,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    U, s, Vt = out
    m, n = A.shape
    assert U.shape == (m, k) and s.shape == (k,) and Vt.shape == (k, n)
    assert_finite(out, "SVDResult")
    D = dense(A)
    ref = np.linalg.svd(D, compute_uv=False)
    smax = max(ref.max(initial=0), 1e-300)
    eps = 1e-3 if s.dtype == np.float32 else 1e-8
    assert (np.diff(s) <= eps * smax).all()
    if k + n_oversamples >= min(m, n):  # the sketch spans everything: exact
        np.testing.assert_allclose(s, ref[:k], atol=eps * smax)
    else:
        assert (s <= ref[:k] + eps * smax).all()
    np.testing.assert_allclose(Vt.astype(np.float64) @ Vt.T, np.eye(k), atol=eps * 10)


def tensor_shapes():
    return st.lists(st.integers(0, 4) | st.integers(1, 4), min_size=0, max_size=4).map(tuple)


RANKS = st.one_of(
    st.integers(-1, 4),
    st.lists(st.integers(0, 4), max_size=4).map(tuple),
    st.sampled_from([0.5, 1e-6, 0.0, 1.0, 1.5, math.nan, "2", None, True]),
)
METHOD = st.sampled_from(["hooi", "hosvd", "st_hosvd", "randomized", "parafac"])


@given(
    T=arrays(tensor_shapes()),
    ranks=RANKS,
    method=METHOD,
    init=st.sampled_from([None, None, "hosvd", "st_hosvd", "randomized", "bogus", "list"]),
    max_iter=BUDGET | st.just(100),
    tol=st.one_of(st.none(), st.sampled_from([0.0, 1e-3, -1.0, math.nan])),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_tucker(T, ranks, method, init, max_iter, tol, random_state, n_jobs):
    if init == "list":
        init = [np.eye(s, 1) for s in T.shape]
    out = attempt(
        geoml.tucker,
        T,
        ranks,
        method=method,
        init=init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out.core, "core")
    assert_finite(out.factors, "factors")
    assert out.shape == T.shape
    for U in out.factors:
        assert U.ndim == 2 and U.shape[1] <= U.shape[0]
        np.testing.assert_allclose(U.T.astype(np.float64) @ U, np.eye(U.shape[1]), atol=1e-3)
    Tf = f64(T)
    full = out.to_tensor().astype(np.float64)
    nrm = np.linalg.norm(Tf)
    explicit = np.linalg.norm(Tf - full) / nrm if nrm > 0 else np.linalg.norm(full)
    err = attempt(out.rel_error, T)
    assert not rejected(err) and abs(err - explicit) <= 1e-3 * (1 + explicit)
    if out.rank == T.shape:  # full multilinear rank: exact
        assert explicit <= (1e-3 if out.core.dtype == np.float32 else 1e-8)


@given(X=arrays(tensor_shapes()), ranks=RANKS, method=METHOD, data=st.data())
def test_tucker_estimator(X, ranks, method, data):
    est = geoml.Tucker(ranks, method=method)
    out = attempt(est.fit, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert math.isfinite(est.rel_error_)
    shape = data.draw(st.sampled_from([X.shape, X.shape[:1] + X.shape[2:], (0,) + X.shape[1:]]))
    Y = data.draw(arrays(shape))
    Z = attempt(est.transform, Y)
    if rejected(Z):
        return
    assert Z.shape == Y.shape[:1] + est.ranks_
    assert_finite(Z, "transform")
    back = attempt(est.inverse_transform, Z)
    assert not rejected(back) and back.shape == Y.shape
    assert_finite(back, "inverse_transform")
    bad = attempt(est.inverse_transform, data.draw(arrays(shapes_2d())))
    assert rejected(bad) or bad.shape[1:] == Y.shape[1:]


@given(core=arrays(tensor_shapes()), data=st.data())
def test_tucker_tensor(core, data):
    shape = tuple(s + data.draw(st.integers(-1, 2)) for s in core.shape)
    factors = [data.draw(arrays((max(i, 0), r))) for i, r in zip(shape, core.shape)]
    tt = attempt(geoml.TuckerTensor, core, factors)
    if rejected(tt):
        return
    full = attempt(tt.to_tensor)
    if rejected(full):
        return
    assert full.shape == tt.shape
    assert_finite(full, "to_tensor")
    err = attempt(tt.rel_error, data.draw(arrays(data.draw(st.sampled_from([tt.shape, (2, 2)])))))
    if not rejected(err):
        assert math.isfinite(err) and err >= 0


def test_show_config(capsys):
    geoml.show_config()
    assert "geoml" in capsys.readouterr().out


def test_strategies_cover_the_edges():
    """The strategies reach the inputs they promise (a fuzz test that cannot fail is a defect)."""
    assert is_valid_float(np.ones(3)) and not is_valid_float(np.array([np.nan]))
    assert not is_valid_float(np.array(["a"], dtype=object))
    for layout in ("C", "F", "strided", "reversed", "readonly"):
        x = with_layout(np.arange(6.0).reshape(2, 3), layout)
        np.testing.assert_array_equal(x, np.arange(6.0).reshape(2, 3))
    assert not with_layout(np.ones((2, 3)), "strided").flags.c_contiguous
    assert not with_layout(np.ones((2, 3)), "readonly").flags.writeable
    assert with_layout(np.ones((2, 3)), "reversed").strides[0] < 0
    assert rejected(attempt(geoml.knn, np.ones((3, 2)), 0))
    with pytest.raises(ZeroDivisionError):  # other exception types are failures
        attempt(lambda: 1 / 0)
    with pytest.raises(AssertionError, match="overflow"):  # and so are NumPy's warnings
        attempt(lambda: np.float64(1e308) * 10)
    with pytest.raises(AssertionError):
        assert_finite(np.array([1.0, np.nan]))


# ---------------------------------------------------------------------------- valid input only
# The tests above spend most examples on malformed input; these draw only valid input (any
# float dtype and layout, duplicates and ties included) so that every example is checked
# against its reference.


def points(min_n=4, max_n=20):
    return st.tuples(st.integers(min_n, max_n), st.integers(1, 4)).flatmap(nice_arrays)


@given(X=points(6, 20), data=st.data())
def test_spectral_estimators_valid(X, data):
    n = X.shape[0]
    k = data.draw(st.integers(2, min(8, n - 1)), "n_neighbors")
    c = data.draw(st.integers(1, min(3, n - 3)), "n_components")
    seed = data.draw(st.integers(0, 100), "seed")
    le = attempt(geoml.LaplacianEigenmap(c, k, random_state=seed).fit, X)
    assert not rejected(le), le
    ref = lsym_eigenvalues(le.affinity_matrix_)
    assert_finite(le.embedding_, "embedding_")
    np.testing.assert_allclose(le.eigenvalues_, ref[1 : c + 1], atol=1e-5)
    dm = attempt(geoml.DiffusionMap(c, k, random_state=seed).fit, X)
    assert not rejected(dm), dm
    assert_finite(dm.embedding_, "embedding_")
    assert (np.abs(dm.eigenvalues_) <= 1 + 1e-6).all()
    sc = attempt(geoml.SpectralClustering(c + 1, k, random_state=seed).fit, X)
    assert not rejected(sc), sc
    np.testing.assert_allclose(
        sc.eigenvalues_, lsym_eigenvalues(sc.affinity_matrix_)[: c + 1], atol=1e-5
    )
    assert set(np.unique(sc.labels_)) <= set(range(c + 1))


@given(n=st.integers(2, 9), data=st.data())
def test_eigsh_valid(n, data):
    M = data.draw(nice_arrays((n, n)), "M")
    A = (f64(M) + f64(M).T) / 2
    if M.dtype == np.float32:
        A = A.astype(np.float32)
    k = data.draw(st.integers(1, n - 1), "k")
    which = data.draw(st.sampled_from(["LA", "SA", "LM"]), "which")
    out = attempt(geoml.eigsh, A, k, which=which, random_state=0)
    assert not rejected(out), out
    assert_finite(out, "EigshResult")
    if out.converged:
        ref = np.linalg.eigh(f64(A))[0]
        anorm = max(np.abs(ref).max(), 1e-300)
        # the solver's guarantee: ||A v - theta v|| <= tol ||A|| (tol 1e-10 in float64, 1e-5 in
        # float32), and each Ritz value lies within its residual norm of an eigenvalue of A
        tol = 1e-5 if A.dtype == np.float32 else 1e-10
        rnd = 50 * np.finfo(A.dtype).eps * anorm
        assert np.all(out.residual_norms <= tol * anorm * 1.01 + rnd), out.residual_norms
        want = {"LA": ref[-k:], "SA": ref[:k]}.get(which)
        got = np.sort(out.eigenvalues)
        if want is None:
            got, want = np.sort(np.abs(got)), np.sort(np.abs(ref))[-k:]
        np.testing.assert_allclose(got, want, rtol=0, atol=float(out.residual_norms.max()) + rnd)


@st.composite
def valid_ot(draw, max_side=5):
    m, n = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    C = draw(nice_arrays((m, n)))
    a = draw(st.lists(st.floats(0.01, 1), min_size=m, max_size=m).map(np.array))
    b = draw(st.lists(st.floats(0.01, 1), min_size=n, max_size=n).map(np.array))
    return a / a.sum(), b / b.sum(), C


@given(
    probs=st.lists(valid_ot(4), min_size=1, max_size=4),
    eps=st.floats(0.05, 5),
    n_jobs=st.sampled_from([None, 1, 2]),
)
def test_batched_valid(probs, eps, n_jobs):
    """Ragged batches of valid problems against the single-problem solvers."""
    a = np.concatenate([p[0] for p in probs])
    b = np.concatenate([p[1] for p in probs])
    C = np.concatenate([f64(p[2]).ravel() for p in probs])
    a_off = np.cumsum([0] + [len(p[0]) for p in probs])
    b_off = np.cumsum([0] + [len(p[1]) for p in probs])
    out = attempt(ot.emd_batched, a, b, C, a_offsets=a_off, b_offsets=b_off, n_jobs=n_jobs)
    assert not rejected(out), out
    sk = attempt(ot.sinkhorn_batched, a, b, C, eps, a_offsets=a_off, b_offsets=b_off, n_jobs=n_jobs)
    assert not rejected(sk), sk
    for k, (ak, bk, Ck) in enumerate(probs):
        Ck = f64(Ck)
        scale = 1 + np.abs(Ck).max()
        assert abs(out.cost[k] - emd_reference(ak, bk, Ck)) <= 1e-9 * scale
        with warnings.catch_warnings():  # the reference's own non-convergence: ref.converged
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = ot.sinkhorn(ak, bk, Ck, eps, tol=1e-12, max_iter=100000)
        if sk.converged[k] and ref.converged:
            assert abs(sk.cost[k] - ref.cost) <= 1e-6 * scale


@given(
    m=st.integers(1, 6),
    n=st.integers(1, 6),
    d=st.integers(1, 3),
    eps=st.floats(0.05, 5),
    p=st.sampled_from([1, 2]),
    data=st.data(),
)
def test_sinkhorn_points_valid(m, n, d, eps, p, data):
    x, y = data.draw(nice_arrays((m, d)), "x"), data.draw(nice_arrays((n, d)), "y")
    x, y = f64(x) / 10, f64(y) / 10  # costs of order 1..100: eps / cost not absurdly small
    out = attempt(ot.sinkhorn_points, x, y, eps, p=p, tol=1e-9, max_iter=100000)
    assert not rejected(out), out
    assert_finite(out, "PointsSinkhornResult")
    C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)) ** p
    ref = attempt(ot.sinkhorn, None, None, C, eps, tol=1e-9, max_iter=100000)
    if out.converged and ref.converged:
        assert abs(out.cost - ref.cost) <= 1e-5 * (1 + abs(ref.cost))


@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=3).map(tuple),
    method=st.sampled_from(["hooi", "hosvd", "st_hosvd", "randomized"]),
    data=st.data(),
)
def test_tucker_valid(shape, method, data):
    T = data.draw(nice_arrays(shape), "T")
    ranks = tuple(data.draw(st.integers(1, s), f"rank {i}") for i, s in enumerate(shape))
    out = attempt(geoml.tucker, T, ranks, method=method, random_state=0)
    assert not rejected(out), out
    assert out.rank == ranks and out.shape == shape
    Tf = f64(T)
    nrm = np.linalg.norm(Tf)
    err = np.linalg.norm(Tf - f64(out.to_tensor()))
    assert abs(out.rel_error(T) - (err / nrm if nrm > 0 else err)) <= 1e-3 * (1 + err)
    if ranks == shape:
        assert err <= (1e-3 if out.core.dtype == np.float32 else 1e-8) * (1 + nrm)
    est = attempt(geoml.Tucker(ranks[1:], method=method, random_state=0).fit, T)
    assert not rejected(est), est
    Z = est.transform(T)
    assert Z.shape == shape[:1] + ranks[1:]
    assert_finite(est.inverse_transform(Z), "inverse_transform")


@given(n=st.integers(2, 8), data=st.data())
def test_ollivier_ricci_valid(n, data):
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    edges = np.array(
        sorted(
            data.draw(
                st.lists(st.sampled_from(pairs), unique=True, min_size=1, max_size=14), "edges"
            )
        ),
        dtype=np.int64,
    )
    unit = data.draw(st.booleans(), "unit weights")
    w = (
        np.ones(len(edges))
        if unit
        else np.array(
            data.draw(st.lists(st.floats(0.1, 3), min_size=len(edges), max_size=len(edges)), "w")
        )
    )
    alpha = data.draw(st.floats(0, 1), "alpha")
    G = np.column_stack([edges, w])
    est = attempt(geoml.OllivierRicci(alpha).fit, G)
    assert not rejected(est), est
    ref = orc_reference(int(edges.max()) + 1, edges, w, alpha, math.e, 2.0)
    np.testing.assert_allclose(est.curvature_, ref, atol=1e-7)
    frc = attempt(geoml.FormanRicci("1d").fit, G)
    assert not rejected(frc) and np.isfinite(frc.curvature_).all()


# ---------------------------------------------------------------------------- assignment


@st.composite
def assignment_costs(draw, max_side=6):
    m, n = draw(
        st.sampled_from([(1, 1), (0, 2), (2, 0), (0, 0)])
        | st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    )
    C = draw(arrays((m, n)))
    if draw(st.booleans()) and C.size and C.dtype.kind == "f":  # forbidden pairs
        C = np.array(C)
        C[draw(hnp.arrays(bool, C.shape))] = np.inf
    return C


def brute_assignment(C, maximize):
    """Best objective over every assignment of a tiny problem (inf when none is allowed)."""
    import itertools

    C = -C if maximize else C
    if C.shape[0] > C.shape[1]:
        C = C.T
    m, n = C.shape
    best = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        for cols in itertools.permutations(range(n), m):
            best = min(best, C[np.arange(m), list(cols)].sum())
    return -best if maximize else best


def check_assignment(C, out, maximize):
    r, c = out
    Cf = f64(C)
    m, n = Cf.shape
    k = min(m, n)
    assert r.shape == c.shape == (k,) and r.dtype == c.dtype == np.int64
    assert len(set(r.tolist())) == k == len(set(c.tolist()))
    assert (np.diff(r) > 0).all()
    with np.errstate(invalid="ignore", over="ignore"):
        got_cost = Cf[r, c].sum()
    ref = brute_assignment(Cf, maximize)
    if np.isfinite(ref):
        scale = 1 + np.abs(Cf[np.isfinite(Cf)]).max(initial=0.0) * max(k, 1)
        assert abs(got_cost - ref) <= 1e-12 * scale
    return got_cost


def assignment_input_ok(C, maximize):
    """Whether geoml must accept C: real values, no NaN, no infinity of the wrong sign, and an
    assignment that avoids the forbidden entries."""
    arr = np.asarray(C)
    if arr.dtype.kind not in "fiub":
        return None  # complex / object: refused or converted, either is fine
    Cf = f64(arr)
    if np.isnan(Cf).any() or ((Cf == np.inf) if maximize else (Cf == -np.inf)).any():
        return False
    allowed = np.isfinite(Cf)
    if 0 in Cf.shape:
        return True
    return bool(np.isfinite(brute_assignment(np.where(allowed, 0.0, np.inf), False)))


@given(C=assignment_costs(), maximize=st.booleans())
def test_linear_assignment(C, maximize):
    out = attempt(ot.linear_assignment, C, maximize=maximize)
    note(f"result {out!r}")
    ok = assignment_input_ok(C, maximize)
    if ok is None:
        return
    assert rejected(out) != ok, "accepted bad input or refused a feasible problem"
    if ok:
        check_assignment(C, out, maximize)
        if np.isfinite(f64(C)).all() and np.abs(f64(C)).max(initial=0) < 1e100:
            r, c = linear_sum_assignment(f64(C), maximize=maximize)
            ref = f64(C)[r, c].sum()
            scale = 1 + np.abs(f64(C)).max(initial=0.0) * len(r)
            assert abs(f64(C)[out].sum() - ref) <= 1e-12 * scale


@given(
    Cs=st.lists(assignment_costs(), min_size=0, max_size=4),
    maximize=st.booleans(),
    n_jobs=N_JOBS,
)
def test_linear_assignment_batched(Cs, maximize, n_jobs):
    out = attempt(ot.linear_assignment_batched, Cs, maximize=maximize, n_jobs=n_jobs)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert out.cost.shape == (len(Cs),)
    for k, C in enumerate(Cs):
        got_cost = check_assignment(C, (out.row_ind[k], out.col_ind[k]), maximize)
        if np.isfinite(got_cost):
            assert out.cost[k] == pytest.approx(got_cost, rel=1e-12, abs=1e-300)


# ---------------------------------------------------------------------------- measures


@given(
    X=arrays(shapes_2d(12)),
    method=st.sampled_from(["mle", "twonn", "gride", "lpca", "foo"]),
    k=st.one_of(st.none(), SMALL_INT),
    local=st.sampled_from([False, True, 1]),
    n_jobs=N_JOBS,
)
def test_intrinsic_dimension(X, method, k, local, n_jobs):
    out = attempt(geoml.intrinsic_dimension, X, method, k=k, local=local, n_jobs=n_jobs)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert np.isfinite(out.dimension), out
    assert not out.dimension < 0
    if local:
        assert out.pointwise.shape == (np.asarray(X).shape[0],)
        assert not (out.pointwise < 0).any()
    else:
        assert out.pointwise is None


@given(
    X=arrays(shapes_2d(12)),
    method=st.sampled_from(["mle", "gride", "twonn"]),
    neighbors=st.sampled_from(["sample", "nndescent", "auto", "exact", "bogus"]),
    n_check=st.one_of(st.none(), SMALL_INT),
    seed=SEEDS,
)
def test_intrinsic_dimension_large_n_modes(X, method, neighbors, n_check, seed):
    out = attempt(
        geoml.intrinsic_dimension,
        X,
        method,
        neighbors=neighbors,
        n_check=n_check,
        random_state=seed,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    assert np.isfinite(out.dimension) and not out.dimension < 0, out
    if neighbors != "exact":
        assert np.isfinite(out.neighbors_stderr) and out.neighbors_stderr >= 0


@given(
    A=arrays(st.sampled_from([(1, 1), (2, 2), (3, 3), (5, 5), (2, 3), (0, 0)])),
    graph=st.booleans(),
    method=st.sampled_from(["exact", "slq", "auto", "x"]),
    seed=SEEDS,
)
def test_von_neumann_entropy(A, graph, method, seed):
    if is_valid_float(A) and A.ndim == 2 and A.shape[0] == A.shape[1]:
        A = np.asarray(A, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            A = A @ A.T if not graph else np.abs(A + A.T)  # inf/NaN from overflow: refused
    out = attempt(geoml.von_neumann_entropy, A, graph=graph, method=method, random_state=seed)
    note(f"result {out!r}")
    if rejected(out):
        return
    n = np.asarray(A).shape[0]
    assert_finite(out.value)
    if out.method == "exact":
        assert -1e-12 <= out.value <= math.log(n) + 1e-9


@given(
    X=arrays(shapes_2d()),
    sigma=POS_FLOAT,
    t=st.sampled_from([1, 2, 0.5, 0, -1, "1"]),
    method=st.sampled_from(["exact", "auto", "slq", "x"]),
    kernel=st.sampled_from(["dense", "knn", "sparse"]),
)
def test_diffusion_spectral_entropy(X, sigma, t, method, kernel):
    out = attempt(
        geoml.diffusion_spectral_entropy,
        X,
        sigma=sigma,
        t=t,
        method=method,
        kernel=kernel,
        random_state=0,
    )
    note(f"result {out!r}")
    if rejected(out):
        return
    n = np.asarray(X).shape[0]
    assert_finite(out.value)
    if out.method == "exact":
        assert -1e-9 <= out.value <= math.log2(n) + 1e-9


@given(X=arrays(shapes_2d()), t=POS_FLOAT, metric=st.sampled_from(["euclidean", "cosine"]))
def test_magnitude(X, t, metric):
    out = attempt(geoml.magnitude, X, t, metric=metric)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out)
    n = np.asarray(X).shape[0]
    assert out > 0 and out <= n * (1 + 1e-6)


@given(X=arrays(shapes_2d()), t=POS_FLOAT, max_iter=st.sampled_from([1, 50, 1000]))
def test_magnitude_cg(X, t, max_iter):
    out = attempt(geoml.magnitude, X, t, method="cg", max_iter=max_iter, return_info=True)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert out.method == "cg" and out.n_iter[0] <= max_iter
    if out.converged:
        assert_finite(out.value)
        n = np.asarray(X).shape[0]
        assert out.value > 0 and out.value <= n * (1 + 1e-6)


# ----------------------------------------------------------------------------- geoml.spd
SPD_SHAPES = st.sampled_from(
    [(1, 1), (2, 2), (3, 3), (0, 2, 2), (2, 3, 3), (1, 4, 4), (3,), (2, 3), (2, 2, 3)]
)


def _spd_from(M):
    """A valid SPD batch from any finite square batch: M M^T + I."""
    Mf = f64(M)
    return Mf @ Mf.swapaxes(-1, -2) + np.eye(Mf.shape[-1])


@given(X=arrays(SPD_SHAPES), sym=st.booleans(), data=st.data())
def test_spd_matrix_functions(X, sym, data):
    if sym and X.ndim >= 2 and X.shape[-1] == X.shape[-2] and X.dtype.kind in "fiub":
        X = (X + X.swapaxes(-1, -2)) / 2
    name = data.draw(st.sampled_from(["sqrtm", "invsqrtm", "logm", "expm", "eigh"]))
    out = attempt(getattr(geoml.spd, name), X)
    note(f"{name} -> {out!r}")
    assert_finite(out, name)
    if not rejected(out) and name != "eigh":
        assert out.shape == X.shape
    p = data.draw(st.sampled_from([0.5, -1.0, 2.0, float("nan"), float("inf"), "2", None]))
    assert_finite(attempt(geoml.spd.powm, X, p), "powm")


@given(n=st.integers(1, 5), b=st.integers(1, 3), data=st.data())
def test_spd_valid(n, b, data):
    M = data.draw(nice_arrays((b, n, n)), "M")
    A = _spd_from(M)
    if M.dtype == np.float32:
        A = A.astype(np.float32)
    tol = 1e-3 if A.dtype == np.float32 else 1e-9
    for name, ref in (
        ("sqrtm", lambda a: np.real(sp_linalg.sqrtm(a))),
        ("logm", lambda a: np.real(sp_linalg.logm(a))),
    ):
        out = attempt(getattr(geoml.spd, name), A)
        assert not rejected(out), out
        for i in range(b):
            want = ref(f64(A[i]))
            assert np.abs(out[i] - want).max() <= tol * max(1.0, np.abs(want).max())
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        # d(A, A) is the square root of rounding noise: bound the squared distance
        d = attempt(geoml.spd.distance, A, A[0], metric, squared=True)
        assert not rejected(d), d
        assert_finite(d, "distance")
        assert d.shape == (b,) and abs(float(d[0])) <= 100 * tol * max(1.0, np.abs(f64(A)).max())
    res = attempt(geoml.spd.mean_riemann, A)
    assert not rejected(res), res
    assert_finite(res.mean, "mean_riemann")
    L = attempt(geoml.spd.log_map, A, A[0])
    assert not rejected(L) and np.abs(f64(L[0])).max() <= 10 * tol


@given(X=arrays(SPD_SHAPES), Y=arrays(SPD_SHAPES), data=st.data())
def test_spd_distances_and_means(X, Y, data):
    metric = data.draw(st.sampled_from(["riemann", "logeuclid", "wasserstein", "euclid", "bogus"]))
    assert_finite(attempt(geoml.spd.distance, X, Y, metric), "distance")
    assert_finite(attempt(geoml.spd.pairwise_distance, X, Y, metric), "pairwise_distance")
    for fn in (geoml.spd.mean_riemann, geoml.spd.mean_wasserstein):
        out = attempt(fn, X, max_iter=3)
        if not rejected(out):
            assert_finite(out.mean, fn.__name__)
    assert_finite(attempt(geoml.spd.mean_logeuclid, X), "mean_logeuclid")
    assert_finite(attempt(geoml.spd.log_map, X, Y), "log_map")
    assert_finite(attempt(geoml.spd.exp_map, X, Y), "exp_map")
    assert_finite(
        attempt(geoml.spd.covariances, X, data.draw(st.sampled_from(["scm", "lwf", "oas"]))),
        "covariances",
    )
    assert_finite(attempt(geoml.spd.augmented_covariances, X, order=2, lag=1), "augmented")


@given(X=arrays(SPD_SHAPES), data=st.data())
def test_spd_estimators(X, data):
    y = np.arange(X.shape[0]) % 2 if X.ndim >= 1 else None
    est = data.draw(st.sampled_from([geoml.MDM(), geoml.TangentSpace()]))
    out = attempt(est.fit, X, y)
    if rejected(out):
        return
    assert_finite(attempt(est.transform, X), "transform")


# ----------------------------------------------------------------------------- diffusion

TIMES = st.one_of(
    st.floats(1e-3, 30),
    st.floats(1e-3, 30),
    st.lists(st.floats(1e-3, 30), min_size=1, max_size=3),
    st.sampled_from([0.0, -1.0, math.nan, math.inf, [], [1.0, -1.0], "1", True, None]),
)


@given(
    W=affinities(),
    kind=st.sampled_from(["symmetric", "combinatorial", "random_walk", "normalized"]),
    t=TIMES,
    m=st.sampled_from([None, 1, 3]),
    n_jobs=N_JOBS,
)
def test_heat_kernel(W, kind, t, m, n_jobs):
    from scipy.linalg import expm

    n = W.shape[0] if getattr(W, "ndim", 0) == 2 else 0
    rng = np.random.default_rng(0)
    X = rng.standard_normal(n) if m is None else rng.standard_normal((n, m))
    out = attempt(geoml.heat_kernel, W, X, t, laplacian=kind, n_jobs=n_jobs)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(out)
    L = geoml.laplacian(W, kind=kind).toarray().astype(np.float64)
    times = np.atleast_1d(np.asarray(t, dtype=np.float64))
    Y = np.asarray(out, dtype=np.float64).reshape(times.size, n, -1)
    for j, tj in enumerate(times):
        ref = expm(-tj * L) @ X.reshape(n, -1)
        err = np.linalg.norm(Y[j] - ref, axis=0)
        # tol 1e-8 per column relative to its norm (random_walk: times sqrt(dmax / dmin)) plus
        # rounding of the order-K recurrence in the affinity dtype
        tol = 1e-8 if L.dtype == np.float64 and W.dtype != np.float32 else 1e-5
        assert (err <= 1e-5 * np.linalg.norm(ref, axis=0) + tol * np.linalg.norm(X)).all()


@given(
    X=arrays(shapes_2d(12)),
    k=SMALL_INT,
    init=st.sampled_from(["classical", "classical", "random", "pca"]),
    metric=st.sampled_from([True, True, False, "yes"]),
    landmarks=st.sampled_from([None, None, 4, 7, [0, 1, 2], 1.5]),
    max_iter=BUDGET,
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_mds(X, k, init, metric, landmarks, max_iter, random_state, n_jobs):
    est = geoml.MDS(
        k,
        metric=metric,
        init=init,
        landmarks=landmarks,
        max_iter=max_iter,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(est.embedding_, "embedding_")
    assert est.embedding_.shape == (X.shape[0], k)
    assert np.isfinite(est.stress_) and est.stress_ >= 0


@given(
    X=arrays(shapes_2d(30)),
    knn=SMALL_INT,
    t=st.sampled_from(["auto", "auto", 1, 5, 0, -1, 2.5, "x", None]),
    gamma=st.sampled_from([1, 1, 0, -1, 0.5, 2, math.nan, "log"]),
    n_landmark=st.sampled_from([None, 2000, 2000, 5, 8, 0, 1.5]),
    random_state=SEEDS,
    n_jobs=N_JOBS,
)
def test_phate(X, knn, t, gamma, n_landmark, random_state, n_jobs):
    est = geoml.PHATE(
        2,
        knn=knn,
        t=t,
        gamma=gamma,
        n_landmark=n_landmark,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    out = attempt(est.fit, X)
    note(f"result {out!r}")
    if rejected(out):
        return
    assert_finite(est.embedding_, "embedding_")
    assert est.embedding_.shape == (X.shape[0], 2)
    assert est.t_ >= 1
    E = est.embedding_
    assert np.array_equal(attempt(est.transform, X), E)
    # new points: weighted means of the fitted points' positions (of the landmarks' with them)
    placed = attempt(est.transform, 0.5 * X[::-1])
    note(f"transform {placed!r}")
    if not rejected(placed):
        assert_finite(placed, "transform")
        assert placed.shape == E.shape
        B = E if est.clusters_ is None else est._landmark_embedding
        pad = 1e-9 * max(1.0, float(np.abs(B).max()))
        lo = np.minimum(B.min(axis=0), E.min(axis=0)) - pad  # rows equal to fitted points: E
        hi = np.maximum(B.max(axis=0), E.max(axis=0)) + pad
        assert (placed >= lo).all() and (placed <= hi).all()


@given(
    data=st.data(),
    n=st.integers(0, 6),
    square=st.integers(0, 8),
    symmetric=st.integers(0, 4),
    sparse=st.sampled_from([None, None, sp.csr_matrix, sp.coo_matrix]),
    eps=st.one_of(st.none(), st.none(), EPS),
    tol=TOL,
    max_iter=BUDGET | st.just(10000),
    n_jobs=N_JOBS,
)
def test_sinkhorn_symmetric(data, n, square, symmetric, sparse, eps, tol, max_iter, n_jobs):
    shape = (n, n if square else n + 1)
    M = data.draw(nice_arrays(shape) if data.draw(st.integers(0, 2)) else arrays(shape))
    if symmetric and square and n:
        with np.errstate(all="ignore"):
            M = np.abs(M) + np.abs(M).T  # a valid kernel (or cost) most of the time
    if sparse is not None and M.dtype.kind in "fiu":
        M = to_sparse(sparse, M)
    a = data.draw(histograms(n))
    out = attempt(ot.sinkhorn_symmetric, M, a, eps=eps, tol=tol, max_iter=max_iter, n_jobs=n_jobs)
    note(f"result {out!r}")
    if rejected(out):
        return
    P = out.plan.toarray() if sp.issparse(out.plan) else out.plan
    assert_finite(P, "plan")
    assert (P >= 0).all()
    assert np.abs(f64(P) - f64(P).T).max() <= 1e-6 * max(f64(P).max(), 1e-300) * 10
    if out.converged:
        af = np.ones(n) if a is None else f64(a)
        err = np.abs(f64(P).sum(1) - af).sum()
        single = P.dtype == np.float32
        assert err <= max(tol, 1e-12) * af.sum() * 1.01 + (1e-5 * af.sum() if single else 1e-12)
