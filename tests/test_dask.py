"""geoml.dask against the single-machine functions: kNN on several chunkings, batched OT, on the
threaded scheduler and on a real distributed.LocalCluster (2 worker processes x 1 thread)."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import geoml

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
gdask = pytest.importorskip("geoml.dask")

METRICS = ["euclidean", "sqeuclidean", "cosine", "inner_product"]


def test_import_geoml_does_not_import_dask():
    # neither does geoml.dask itself: Dask is imported by its functions when called
    code = (
        "import sys, geoml, geoml.dask; "
        "print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(autouse=True)
def _clusters_at_any_dimension(monkeypatch):
    """The approximate tests exercise the distributed clustered start on small, often
    low-dimensional data, where geoml.knn (and geoml.dask.knn) would choose the forest: the
    clusters from any intrinsic dimension, unless a test sets it back
    (test_knn_approx_start_chosen_by_dimension)."""
    monkeypatch.setattr(gdask, "_CLUSTER_MIN_DIM", 0.0)


@pytest.fixture(scope="module")
def client():
    if os.environ.get("GEOML_SANITIZED"):
        # .ci/sanitize preloads ASan/UBSan into every process; the spawned worker processes of
        # a LocalCluster die there (the plain CI step runs these tests; the threaded-scheduler
        # tests below run under the sanitizers)
        pytest.skip("LocalCluster worker processes are not run under the sanitizers")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never a clash on 8787,
        silence_logs=40,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _data(n, d, dtype, seed, ties=False):
    rng = np.random.default_rng(seed)
    if ties:  # small integer grid: many exact ties in distance
        return rng.integers(0, 3, size=(n, d)).astype(dtype)
    return rng.normal(size=(n, d)).astype(dtype)


CHUNKINGS = [
    ((57,), 5),  # one chunk
    ((20, 20, 17), 5),
    ((3, 30, 1, 2, 21), 5),  # uneven, chunks smaller than k and of one row
    ((10, 10, 10, 10, 10, 7), 12),  # every chunk smaller than k
]


def _check_knn(X, chunks, k, metric):
    """Equal to geoml.knn: the same distances, the same indices. Where a row's k-th distance
    is an exact tie with a point left out (d = 1 under cosine: every distance is 0 or 2),
    which tied points are kept is up to the search (geoml.knn's documented rule): there the
    indices before the k-th distance are equal, and the others distinct non-self points at
    the reported distance (the distances are recomputed exactly from the indices)."""
    ref = geoml.knn(X, k, metric=metric)
    idx, dist = gdask.knn(da.from_array(X, chunks=(chunks, -1)), k, metric=metric)
    idx, dist = dask.compute(idx, dist)
    assert idx.dtype == np.int64 and dist.dtype == X.dtype
    np.testing.assert_array_equal(dist, ref.distances)
    if k < len(X) - 1:
        nxt = geoml.knn(X, k + 1, metric=metric).distances[:, k]
        tied = nxt == ref.distances[:, -1]  # the (k+1)-th ties the k-th: a free choice
    else:
        tied = np.zeros(len(X), bool)
    np.testing.assert_array_equal(idx[~tied], ref.indices[~tied])
    before = (dist < dist[:, -1:]) & tied[:, None]
    np.testing.assert_array_equal(idx[before], ref.indices[before])
    assert (idx != np.arange(len(X))[:, None]).all()
    assert all(len(set(r)) == k for r in idx.tolist())
    if tied.any():  # the kept tied points are at the reported distance (a float64 reference)
        Z = X.astype(np.float64)
        if metric == "cosine":
            U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
            at = 1.0 - U @ U.T
        elif metric == "inner_product":
            at = -(Z @ Z.T)
        else:
            at = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(axis=2)
            at = np.sqrt(at) if metric == "euclidean" else at
        got = np.take_along_axis(at, idx, 1)[tied]
        np.testing.assert_allclose(got, dist[tied], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("chunks,k", CHUNKINGS)
def test_knn_threaded_equals_geoml(chunks, k, metric, dtype):
    with dask.config.set(scheduler="threads"):
        for seed in (0, 1):
            _check_knn(_data(57, 6 + 11 * seed, dtype, seed), chunks, k, metric)  # d=6, 17


def test_knn_float32_of_clusters_far_apart_is_exact():
    """float32 chunks are scored in float64, as geoml.knn searches them: float32 scores
    (||y||^2 - 2 x.y, rounded to ~d 2^-24 max ||x - mean||^2) swapped neighbours of clusters
    far apart (10 clusters 1,000 apart: hundreds of rows up to 7x too far)."""
    rng = np.random.default_rng(0)
    C = rng.uniform(-1, 1, (10, 2)) * 1000
    X = (C[rng.integers(0, 10, 3000)] + rng.normal(size=(3000, 2))).astype(np.float32)
    for metric in ("euclidean", "sqeuclidean"):
        ref = _brute(X, 10, metric)
        idx, dist = dask.compute(*gdask.knn(da.from_array(X, chunks=(700, -1)), 10, metric=metric))
        assert dist.dtype == np.float32
        np.testing.assert_array_equal(idx, ref[0])
        np.testing.assert_allclose(dist, ref[1], rtol=1e-6)
        g = geoml.knn(X, 10, metric=metric)
        np.testing.assert_array_equal(idx, g.indices)
        np.testing.assert_array_equal(dist, g.distances)


@pytest.mark.parametrize("d", [2, 3, 8, 15, 16, 17])
def test_knn_float32_clusters_1e4_apart_equals_geoml(d):
    """float32 clusters 1e4 apart, on both sides of geoml.knn's switch at d = 16 (below: its
    certified float32 difference-form search, which the diagonal tasks now run themselves;
    from 16 on: the float64 search of a float64 copy): geoml.dask.knn gives geoml.knn's
    indices and distances bit for bit, for several chunkings and under both metrics, and
    plain float32 scores (the two-chunk kernel on the float32 chunks) get the data wrong."""
    rng = np.random.default_rng(d)
    C = rng.uniform(-1, 1, (8, d)) * 1e4
    X = (C[rng.integers(0, 8, 1500)] + rng.normal(size=(1500, d))).astype(np.float32)
    k = 6
    for metric in ("euclidean", "sqeuclidean"):
        g = geoml.knn(X, k, metric=metric)
        ref = _brute(X, k, metric)
        np.testing.assert_array_equal(g.indices, ref[0])  # the reference is itself right
        for chunks in ((400, -1), (1500, -1), (230, -1)):
            idx, dist = dask.compute(*gdask.knn(da.from_array(X, chunks=chunks), k, metric=metric))
            assert dist.dtype == np.float32
            np.testing.assert_array_equal(idx, g.indices)
            np.testing.assert_array_equal(dist, g.distances)
    # the data defeats plain float32 scoring: the float32 two-chunk kernel's lists of the
    # first 750 rows among the last 750 differ from the float64 kernel's
    E = geoml._core.Metric["euclidean"]
    A, B = np.ascontiguousarray(X[:750]), np.ascontiguousarray(X[750:])
    i32 = geoml._core.knn_pair(A, B, k=k, metric=E)[0]
    i64 = geoml._core.knn_pair(A.astype(np.float64), B.astype(np.float64), k=k, metric=E)[0]
    assert (i32 != i64).any(axis=1).sum() >= 500


def test_knn_nndescent_float32_reference_rows_are_exact():
    """The approximate mode's exact rows (the recall's 500 checked points, and rows short of k
    candidates) of float32 data from 16 features on are searched in float64, as geoml.knn
    does: the float32 kernel put all 300 rows of 8 clusters 1e4 apart up to 6.4 too far
    (d = 16, 17), so the recall was measured against neighbours too far away: 1.0
    [0.992, 1.0], "reached", for a graph of true recall 0.974 (d = 17)."""
    for d in (8, 16, 17):
        rng = np.random.default_rng(d)
        C = rng.uniform(-1, 1, (8, d)) * 1e4
        X = (C[rng.integers(0, 8, 3000)] + rng.normal(size=(3000, d))).astype(np.float32)
        S = X[:300]
        idx, dist = gdask._exact_rows_block(S, X, 0, 7, "euclidean", 1)
        g = geoml.knn(X, 7, Y=S)
        np.testing.assert_array_equal(idx, g.indices)
        np.testing.assert_array_equal(dist.astype(np.float32), g.distances)
    # public: the measured recall's interval holds the graph's true recall (below the
    # target here: the clustered start of lists of ~100 points, one warning)
    with pytest.warns(RuntimeWarning, match="measured recall"):
        res = gdask.knn(
            da.from_array(X, chunks=(1000, -1)),
            10,
            method="nndescent",
            partition_size=100,
            target_recall=0.9,
            random_state=0,
        )
    idx = res[0].compute()
    true = geoml.knn(X, 10).indices
    recall = np.mean([len(np.intersect1d(a, b)) for a, b in zip(idx, true)]) / 10
    assert res.recall_.low <= recall <= res.recall_.high


def _brute(X, k, metric):
    """(index, distance) by (distance, index) in float64, self excluded: exact on grid data."""
    X = X.astype(np.float64)
    if metric == "inner_product":
        D = -(X @ X.T)
    else:
        D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
        D = np.sqrt(D) if metric == "euclidean" else D
    np.fill_diagonal(D, np.inf)
    J = np.broadcast_to(np.arange(len(X)), D.shape)
    order = np.lexsort((J, D), axis=1)[:, :k]
    return order, np.take_along_axis(D, order, 1)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "inner_product"])
def test_knn_ties_broken_by_index(metric):
    # Small integer grid: many duplicates and exactly equal distances. Both order their winners
    # by (distance, index), but which of the points tied at the k-th distance are kept depends
    # on the candidate scores' rounding (in geoml.knn as in each block). So: distances equal to
    # geoml.knn's and to the brute force; indices equal to geoml.knn's before the k-th distance;
    # every index a distinct non-self point at its reported distance.
    X = _data(80, 3, np.float64, 3, ties=True)
    with dask.config.set(scheduler="threads"):
        for chunks, k in [((80,), 7), ((13, 40, 27), 7), ((5,) * 16, 9)]:
            ref = geoml.knn(X, k, metric=metric)
            bi, bd = _brute(X, k, metric)
            idx, dist = dask.compute(
                *gdask.knn(da.from_array(X, chunks=(chunks, -1)), k, metric=metric)
            )
            np.testing.assert_array_equal(dist, bd)
            np.testing.assert_array_equal(dist, ref.distances)
            rows = np.arange(len(X))[:, None]
            assert (idx != rows).all()
            assert all(len(set(r)) == k for r in idx.tolist())
            full = _brute(X, len(X) - 1, metric)
            at = np.empty_like(X[:, 0], shape=(len(X), len(X)))
            np.put_along_axis(at, full[0], full[1], 1)
            np.testing.assert_array_equal(np.take_along_axis(at, idx, 1), dist)
            np.testing.assert_array_equal(idx[dist < dist[:, -1:]], bi[dist < dist[:, -1:]])
            below = dist < dist[:, -1:]
            assert below.sum() > len(X)  # the comparison below covers many entries
            np.testing.assert_array_equal(idx[below], ref.indices[below])


def test_knn_split_every_and_n_jobs():
    X = _data(90, 5, np.float64, 4)
    ref = geoml.knn(X, 6)
    with dask.config.set(scheduler="threads"):
        for split_every, n_jobs in [(2, None), (3, 2), (8, -1)]:
            idx, dist = gdask.knn(
                da.from_array(X, chunks=11), 6, split_every=split_every, n_jobs=n_jobs
            )
            np.testing.assert_array_equal(idx.compute(), ref.indices)
            np.testing.assert_array_equal(dist.compute(), ref.distances)


def test_knn_graph_threaded_equals_geoml():
    X = _data(70, 4, np.float32, 5)
    with dask.config.set(scheduler="threads"):
        for kw in [{}, {"mode": "connectivity"}, {"symmetrize": None}, {"kernel": "gaussian"}]:
            G = gdask.knn_graph(da.from_array(X, chunks=((30, 25, 15), -1)), 5, **kw)
            R = geoml.knn_graph(X, 5, **kw)
            np.testing.assert_array_equal(G.indptr, R.indptr)
            np.testing.assert_array_equal(G.indices, R.indices)
            np.testing.assert_array_equal(G.data, R.data)


def test_knn_integer_and_column_chunked_input():
    X = np.random.default_rng(6).integers(-1000, 1000, size=(40, 6))  # no ties
    ref = geoml.knn(X, 4)
    with dask.config.set(scheduler="threads"):
        idx, dist = gdask.knn(da.from_array(X, chunks=(15, 4)), 4)
        np.testing.assert_array_equal(idx.compute(), ref.indices)
        np.testing.assert_array_equal(dist.compute(), ref.distances)


def test_knn_bad_input():
    X = da.from_array(_data(10, 2, np.float64, 0), chunks=4)
    with pytest.raises(TypeError, match=r"dask\.array"):
        gdask.knn(np.zeros((10, 2)), 2)
    with pytest.raises(ValueError, match="2-D"):
        gdask.knn(da.zeros(10, chunks=5), 2)
    with pytest.raises(ValueError, match="empty"):
        gdask.knn(da.zeros((0, 3), chunks=5), 2)
    with pytest.raises(ValueError, match="k"):
        gdask.knn(X, 10)
    with pytest.raises(ValueError, match="k"):
        gdask.knn(X, 0)
    with pytest.raises(ValueError, match="1 sample"):
        gdask.knn(da.zeros((1, 3), chunks=1), 1)
    with pytest.raises(ValueError, match="metric"):
        gdask.knn(X, 2, metric="manhattan")
    with pytest.raises(TypeError, match="real numbers"):
        gdask.knn(X.astype(complex), 2)
    with pytest.raises(ValueError, match="n_jobs"):
        gdask.knn(X, 2, n_jobs=0)
    with pytest.raises(TypeError, match="n_jobs"):
        gdask.knn(X, 2, n_jobs=1.5)
    with pytest.raises(ValueError, match="split_every"):
        gdask.knn(X, 2, split_every=1)
    with pytest.raises(ValueError, match="symmetrize"):
        gdask.knn_graph(X, 2, symmetrize="bogus")
    bad = _data(10, 2, np.float64, 0)
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        dask.compute(*gdask.knn(da.from_array(bad, chunks=4), 2), scheduler="sync")
    bad[7, 1] = 1e300
    with pytest.raises(ValueError, match="overflow"):
        dask.compute(*gdask.knn(da.from_array(bad, chunks=4), 2), scheduler="sync")
    # data so small that the squared distances underflow: refused (geoml.knn rescales the
    # array in memory; the chunks, searched on their own, would give wrong neighbours)
    for tiny in (_data(10, 2, np.float64, 0) * 1e-170, _data(10, 2, np.float32, 0) * 1e-22):
        with pytest.raises(ValueError, match="underflow"):
            dask.compute(*gdask.knn(da.from_array(tiny, chunks=4), 2), scheduler="sync")
    zeros = da.zeros((10, 2), chunks=4)  # exact zeros are exact: searched
    assert dask.compute(*gdask.knn(zeros, 2), scheduler="sync")[1].max() == 0
    unknown = da.from_array(np.zeros((10, 2)), chunks=4)
    unknown = unknown[unknown[:, 0] == 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        gdask.knn(unknown, 2)


def _ot_data(B, m, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.dirichlet(np.ones(m), B)
    b = rng.dirichlet(np.ones(n), B)
    C = rng.random((B, m, n))
    am = rng.random((B, m)) < 0.8
    am[:, 0] = True
    a = np.where(am, a, 0.0)
    a /= a.sum(axis=1, keepdims=True)  # the mass of a is on its mask
    return a, b, C, am


@pytest.mark.parametrize("chunks", [23, 5, (1, 10, 12)])
def test_emd_sinkhorn_batched_threaded(chunks):
    a, b, C, am = _ot_data(23, 6, 5, 7)
    with dask.config.set(scheduler="threads"):
        for kw in [{}, {"a_mask": am, "return_plans": True}]:
            res = gdask.emd_batched(da.from_array(a, chunks=(chunks, -1)), b, C, **kw)
            ref = geoml.ot.emd_batched(a, b, C, **kw)
            for x, y in zip(res, ref, strict=True):
                np.testing.assert_array_equal(x, y)
            res = gdask.sinkhorn_batched(
                da.from_array(a, chunks=(chunks, -1)), da.from_array(b, chunks=7), C, 0.05, **kw
            )
            ref = geoml.ot.sinkhorn_batched(a, b, C, 0.05, **kw)
            for x, y in zip(res, ref, strict=True):
                np.testing.assert_array_equal(x, y)


def test_batched_warns_once_on_the_client():
    a, b, C, _ = _ot_data(12, 6, 6, 8)
    with (
        dask.config.set(scheduler="threads"),
        pytest.warns(RuntimeWarning, match="did not reach") as rec,
    ):
        res = gdask.sinkhorn_batched(da.from_array(a, chunks=4), b, C, 1e-3, max_iter=2)
    assert len(rec) == 1 and not res.converged.any()


def test_emd_tasks_leave_the_warning_filters_alone(monkeypatch):
    """EMD tasks on the threaded scheduler: no task touches the process-wide warning filters
    (``warnings.catch_warnings`` is not thread-safe), the flags come back in the result and
    the client warns once, as geoml.ot.emd_batched does."""
    import threading

    calls = []
    real = warnings.catch_warnings

    def spy(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    a, b, C, _ = _ot_data(40, 7, 7, 9)
    with pytest.warns(RuntimeWarning, match="hit max_iter"):
        ref = geoml.ot.emd_batched(a, b, C, max_iter=2)
    for layout in ("padded", "ragged", "points"):
        monkeypatch.setattr(warnings, "catch_warnings", spy)
        filters = list(warnings.filters)
        with (
            dask.config.set(scheduler="threads", num_workers=4),
            pytest.warns(RuntimeWarning, match="hit max_iter") as rec,
        ):
            if layout == "padded":
                got = gdask.emd_batched(da.from_array(a, chunks=3), b, C, max_iter=2)
            elif layout == "ragged":
                off = np.arange(0, 7 * 41, 7)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ref = geoml.ot.emd_batched(
                        a.ravel(), b.ravel(), C.ravel(), a_offsets=off, b_offsets=off, max_iter=2
                    )
                got = gdask.emd_batched(
                    a.ravel(),
                    b.ravel(),
                    C.ravel(),
                    a_offsets=off,
                    b_offsets=off,
                    max_iter=2,
                    problems_per_task=3,
                )
            else:
                x = np.random.default_rng(1).normal(size=(40, 7, 2))
                y = np.random.default_rng(2).normal(size=(40, 7, 2))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ref = geoml.ot.emd_batched(a, b, gdask.point_cloud_costs(x, y), max_iter=2)
                got = gdask.emd_batched_points(da.from_array(x, chunks=3), y, a=a, b=b, max_iter=2)
        monkeypatch.setattr(warnings, "catch_warnings", real)
        # pytest.warns itself enters catch_warnings on the main thread; no task did
        assert all(calls), f"{layout}: a task entered warnings.catch_warnings"
        calls.clear()
        n_bad = int((~ref.converged).sum())
        name = "emd_batched_points" if layout == "points" else "emd_batched"
        assert n_bad > 0 and len(rec) == 1
        assert str(rec[0].message) == f"{name}: {n_bad} problem(s) hit max_iter=2 before optimality"
        np.testing.assert_array_equal(got.cost, ref.cost)
        np.testing.assert_array_equal(got.converged, ref.converged)
        assert warnings.filters == filters


def _ragged_problems(seed, B=13):
    rng = np.random.default_rng(seed)
    ms, ns = rng.integers(1, 7, B), rng.integers(1, 6, B)
    a = np.concatenate([rng.dirichlet(np.ones(m)) for m in ms])
    b = np.concatenate([rng.dirichlet(np.ones(n)) for n in ns])
    C = rng.random(int((ms * ns).sum()))
    off = lambda s: np.concatenate([[0], np.cumsum(s)])  # noqa: E731
    return a, b, C, off(ms), off(ns)


@pytest.mark.parametrize("per_task", [None, 1, 4, 100])
@pytest.mark.parametrize("lazy", [False, True])
def test_ragged_batched_threaded(per_task, lazy):
    a, b, C, ao, bo = _ragged_problems(3)
    ref_e = geoml.ot.emd_batched(a, b, C, a_offsets=ao, b_offsets=bo, return_plans=True)
    ref_s = geoml.ot.sinkhorn_batched(a, b, C, 0.1, a_offsets=ao, b_offsets=bo)
    if lazy:
        a, b, C = (da.from_array(x, chunks=7) for x in (a, b, C))
    kw = {"a_offsets": ao, "b_offsets": bo, "problems_per_task": per_task}
    with dask.config.set(scheduler="threads"):
        got = gdask.emd_batched(a, b, C, return_plans=True, **kw)
        got_s = gdask.sinkhorn_batched(a, b, C, 0.1, **kw)
    for field in ("cost", "converged", "plans"):
        np.testing.assert_array_equal(getattr(got, field), getattr(ref_e, field))
    for field in ("cost", "converged", "n_iter", "error"):
        np.testing.assert_array_equal(getattr(got_s, field), getattr(ref_s, field))


def test_ragged_batched_bad_input():
    a, b, C, ao, bo = _ragged_problems(4)
    with dask.config.set(scheduler="threads"):
        with pytest.raises(ValueError, match="both a_offsets and b_offsets"):
            gdask.emd_batched(a, b, C, a_offsets=ao)
        with pytest.raises(ValueError, match="must hold sum"):
            gdask.emd_batched(a, b, C[:-1], a_offsets=ao, b_offsets=bo)
        with pytest.raises(ValueError, match="start at 0"):
            gdask.emd_batched(a, b, C, a_offsets=ao + 1, b_offsets=bo)
        with pytest.raises(ValueError, match="problems_per_task"):
            gdask.emd_batched(a, b, C, a_offsets=ao, b_offsets=bo, problems_per_task=0)
        with pytest.raises(ValueError, match="padded layout"):
            gdask.emd_batched(a, b, C, a_offsets=ao, b_offsets=bo, a_mask=np.ones(len(a), bool))
        with pytest.raises(ValueError, match="ragged layout"):
            A = da.from_array(np.full((4, 3), 1 / 3), chunks=2)
            gdask.emd_batched(A, A, np.zeros((4, 3, 3)), problems_per_task=2)
        with pytest.raises(ValueError, match="1-D"):
            gdask.emd_batched(a[:, None], b, C, a_offsets=ao, b_offsets=bo)


def test_batched_bad_input():
    a, b, C, _ = _ot_data(6, 3, 4, 9)
    A = da.from_array(a, chunks=2)
    with pytest.raises(TypeError, match=r"dask\.array"):
        gdask.emd_batched(a, b, C)
    with pytest.raises(ValueError, match="2-D"):
        gdask.emd_batched(da.from_array(C, chunks=2), b, C)
    with pytest.raises(ValueError, match="problems"):
        gdask.emd_batched(A, da.from_array(b[:5], chunks=2), C)
    with pytest.raises(ValueError, match="C has shape"):
        gdask.emd_batched(A, b, C[:, :2])
    with pytest.raises(ValueError, match="eps"):
        gdask.sinkhorn_batched(A, b, C, -1.0)


@pytest.mark.parametrize("W", [2, 3, 4, 5])
def test_ring_plan_reads_each_chunk_once_per_worker_and_balances(W):
    """The ring schedule: a pair runs on one of its chunks' homes; a worker reads only the
    chunks of the next (W - 1) / 2 workers round the ring (half of one more for even W),
    each once; with even chunk counts every worker gets the same pair work."""
    for P in (W, 2 * W, 4 * W, 3 * W + 1, 1):
        homes = [i * W // P for i in range(P)]
        place = gdask._ring_plan(homes, W)
        assert sorted(place) == [(i, j) for i in range(P) for j in range(i + 1, P)]
        reads = {w: set() for w in range(W)}
        for (i, j), w in place.items():
            assert w in (homes[i], homes[j])
            reads[w] |= {c for c in (i, j) if homes[c] != w}
        fetched = sum(len(r) for r in reads.values())
        g = P // W
        if P % W == 0 and g > 0:
            work = [sum(1 for w in place.values() if w == v) for v in range(W)]
            if W % 2 or g % 2 == 0:  # (even W: the half-way pairs split in halves of g)
                assert len(set(work)) == 1, work
            else:
                assert max(work) - min(work) <= g, work
            if W % 2:
                assert fetched == (W - 1) // 2 * P
            else:  # W / 2 - 1 whole groups, plus ceil(g / 2) + g chunks per half-way pair
                tie = (g + 1) // 2 + (g if g > 1 else 0)
                assert fetched == (W // 2 - 1) * P + (W // 2) * tie
            if W > 2 or g > 1:
                assert fetched < (W - 1) * P  # less than every worker reading every chunk
        sizes = [10] * P
        mv = gdask._ring_moves(homes, place, sizes, 4, 8, 3)
        assert mv["data"] == fetched * 10 * 4 * 8 and mv["candidates"] == fetched * 10 * 3 * 16


def test_ring_schedule_on_the_cluster(client):
    """schedule='ring' (the default 'auto' on a client) and 'dask' give geoml.knn's result;
    the ring moves the data and candidate lists its plan predicts (Dask's work stealing may
    move a task off its worker when the other is idle: at most one chunk more per task); the
    ring needs a client; a bad schedule is refused."""
    X = _data(900, 6, np.float64, 31)
    ref = geoml.knn(X, 8)
    Xd = client.persist(da.from_array(X, chunks=(150, -1)))
    for schedule in ("auto", "ring", "dask"):
        idx, dist = client.compute(gdask.knn(Xd, 8, schedule=schedule), sync=True)
        np.testing.assert_array_equal(idx, ref.indices)
        np.testing.assert_array_equal(dist, ref.distances)
    G = gdask.knn_graph(da.from_array(X, chunks=(250, -1)), 8, schedule="ring")
    assert (geoml.knn_graph(X, 8) != G).nnz == 0
    with dask.config.set(scheduler="threads"), pytest.raises(ValueError, match="needs a"):
        gdask.knn(Xd, 8, schedule="ring")
    with pytest.raises(ValueError, match="schedule must be"):
        gdask.knn(Xd, 8, schedule="broadcast")


def test_distributed_cluster_equals_geoml(client):
    assert len(client.scheduler_info()["workers"]) == 2
    X = _data(120, 8, np.float32, 11)
    for metric in ("euclidean", "cosine"):
        Xd = da.from_array(X, chunks=(17, -1))
        idx, dist = client.compute(gdask.knn(Xd, 9, metric=metric), sync=True)
        ref = geoml.knn(X, 9, metric=metric)
        np.testing.assert_array_equal(idx, ref.indices)
        np.testing.assert_array_equal(dist, ref.distances)
    G = gdask.knn_graph(da.from_array(X, chunks=40), 5, n_jobs=-1)
    R = geoml.knn_graph(X, 5)
    assert (G != R).nnz == 0 and np.array_equal(G.data, R.data)
    a, b, C, am = _ot_data(40, 5, 6, 12)
    res = gdask.emd_batched(da.from_array(a, chunks=9), b, C, a_mask=am, return_plans=True)
    ref = geoml.ot.emd_batched(a, b, C, a_mask=am, return_plans=True)
    for x, y in zip(res, ref, strict=True):
        np.testing.assert_array_equal(x, y)
    res = gdask.sinkhorn_batched(da.from_array(a, chunks=13), b, C, 0.1)
    ref = geoml.ot.sinkhorn_batched(a, b, C, 0.1)
    for x, y in zip(res, ref, strict=True):
        np.testing.assert_array_equal(x, y)


def test_doctests(monkeypatch):
    """The examples as a user runs them: the start chosen from the intrinsic dimension (the
    autouse fixture's clusters at any dimension made the approximate example print
    'clustered' here, where a user got 'one task' from its 8-D data)."""
    import doctest

    real = geoml._core.NNDescentOptions().cluster_min_dim
    monkeypatch.setattr(gdask, "_CLUSTER_MIN_DIM", real)
    with dask.config.set(scheduler="threads"):
        result = doctest.testmod(gdask, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def _graphs():
    nx = pytest.importorskip("networkx")
    G1 = nx.karate_club_graph()
    nx.set_edge_attributes(G1, 1.0, "weight")
    rng = np.random.default_rng(13)
    G2 = nx.gnm_random_graph(60, 200, seed=13)
    for u, v in G2.edges:
        G2[u][v]["weight"] = float(rng.uniform(0.5, 2.0))
    G3 = nx.gnp_random_graph(40, 0.1, seed=14, directed=True)
    return [G1, G2, G3]


@pytest.mark.parametrize("method", ["exact", "sinkhorn"])
def test_ollivier_ricci_threaded_equals_geoml(method):
    with dask.config.set(scheduler="threads"):
        for G in _graphs():
            with warnings.catch_warnings(record=True) as w_ref:
                warnings.simplefilter("always")
                ref = geoml.ollivier_ricci(G, alpha=0.3, method=method)
            for chunk in (None, 1000, 17, 1):
                with warnings.catch_warnings(record=True) as w_got:
                    warnings.simplefilter("always")
                    got = gdask.ollivier_ricci(G, alpha=0.3, method=method, edge_chunk=chunk)
                np.testing.assert_array_equal(got, ref)
                # the same non-convergence warning (sinkhorn), once, on the client
                assert [str(w.message)[:40] for w in w_got] == [str(w.message)[:40] for w in w_ref]


def test_ollivier_ricci_auto_chunks_in_graph_order():
    """Default chunking: several tasks once the graph has enough edges, edges grouped by the
    graph order of their source (not the sorted order), curvature in the sorted order."""
    from geoml.curvature import _fit_graph
    from geoml.dask import _OrcOnDask

    X = np.random.default_rng(3).random((3000, 2))
    A = geoml.knn_graph(X, 8)
    A = ((A + A.T) > 0).astype(float)
    graph = _fit_graph(A, "weight")
    with dask.config.set(scheduler="threads", num_workers=2):
        run = _OrcOnDask(dask, graph, {}, None, None)
        # 13,896 edges, 2 threads: 8 tasks would hold fewer than the 10,000-edge minimum
        assert len(run.ranges) == 2 and run.order is not None
        assert not np.array_equal(run.order, np.arange(len(run.order)))
        np.testing.assert_array_equal(gdask.ollivier_ricci(A), geoml.ollivier_ricci(A))


def test_ollivier_ricci_bad_input():
    G = np.array([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="alpha"):
        gdask.ollivier_ricci(G, alpha=2.0)
    with pytest.raises(ValueError, match="method"):
        gdask.ollivier_ricci(G, method="bogus")
    with pytest.raises(ValueError, match="edge_chunk"):
        gdask.ollivier_ricci(G, edge_chunk=0)
    with pytest.raises(ValueError, match="no nodes"):
        gdask.ollivier_ricci(np.zeros((0, 2), dtype=int))


def test_ollivier_ricci_distributed(client):
    for G in _graphs():
        ref = geoml.ollivier_ricci(G)
        np.testing.assert_array_equal(gdask.ollivier_ricci(G, edge_chunk=50), ref)


def _flow_surgery(edges, w, kappa):
    return np.where(kappa < -0.2, w * 1.5, w)


@pytest.mark.parametrize("method", ["exact", "sinkhorn"])
def test_ricci_flow_threaded_equals_geoml(method):
    G1, G2, _ = _graphs()
    with dask.config.set(scheduler="threads"):
        for G, surgery in ((G1, None), (G2, (_flow_surgery, 2))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # sinkhorn's max_iter notes
                ref = geoml.RicciFlow(n_iter=4, surgery=surgery, method=method).fit(G)
                for chunk in (1000, 23):
                    got = gdask.ricci_flow(
                        G, n_iter=4, surgery=surgery, method=method, edge_chunk=chunk
                    )
                    assert isinstance(got, geoml.RicciFlow)
                    np.testing.assert_array_equal(got.weights_, ref.weights_)
                    np.testing.assert_array_equal(got.curvature_history_, ref.curvature_history_)
                    assert got.n_iter_ == ref.n_iter_ and got.converged_ == ref.converged_
    # the flow's networkx export works on the returned estimator
    H = got.to_networkx(G2)
    assert set(H.edges) == set(G2.edges)


def test_ricci_flow_bad_input():
    _, _, G3 = _graphs()
    with dask.config.set(scheduler="threads"):
        with pytest.raises(ValueError, match="edge_chunk"):
            gdask.ricci_flow(np.array([[0, 1], [1, 2]]), edge_chunk=0)
        with pytest.raises(ValueError, match="step"):
            gdask.ricci_flow(np.array([[0, 1], [1, 2]]), step=0.0)
        with pytest.raises(ValueError, match="directed"):
            gdask.ricci_flow(G3)


def test_ricci_flow_distributed(client):
    G1, G2, _ = _graphs()
    for G in (G1, G2):
        ref = geoml.RicciFlow(n_iter=3).fit(G)
        got = gdask.ricci_flow(G, n_iter=3, edge_chunk=40)
        np.testing.assert_array_equal(got.weights_, ref.weights_)
        np.testing.assert_array_equal(got.curvature_, ref.curvature_)


def test_knn_random_chunkings_hypothesis():
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies

    @hyp.settings(max_examples=60, deadline=None, derandomize=True)
    @hyp.given(
        n=st.integers(2, 40),
        d=st.integers(1, 5),
        data=st.data(),
        metric=st.sampled_from(METRICS),
        dtype=st.sampled_from([np.float32, np.float64]),
        seed=st.integers(0, 2**16),
    )
    def check(n, d, data, metric, dtype, seed):
        k = data.draw(st.integers(1, n - 1), label="k")
        cuts = data.draw(st.sets(st.integers(1, n - 1), max_size=6), label="cuts")
        edges = [0, *sorted(cuts), n]
        chunks = tuple(np.diff(edges).tolist())
        with dask.config.set(scheduler="sync"):
            _check_knn(_data(n, d, dtype, seed), chunks, k, metric)

    check()


def test_worker_killed_mid_run(client):
    # One worker process is killed (SIGKILL) while the kNN graph is being computed: Dask
    # reruns its tasks elsewhere (the nanny starts a new process) and the result is unchanged.
    import os
    import signal

    X = _data(600, 9, np.float64, 21)
    ref = geoml.knn(X, 7)
    futs = client.compute(list(gdask.knn(da.from_array(X, chunks=50), 7)))
    nanny = next(iter(client.cluster.workers.values()))
    victim = nanny.worker_address
    assert not all(f.done() for f in futs)  # killed mid-run, not after
    os.kill(nanny.process.pid, signal.SIGKILL)
    idx, dist = client.gather(futs)
    np.testing.assert_array_equal(idx, ref.indices)
    np.testing.assert_array_equal(dist, ref.distances)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]  # that process is gone


def test_knn_wide_rows():
    # wide rows and a large k: two 300-row chunks, one pair task and two diagonal tasks
    X = _data(600, 300, np.float64, 22)
    ref = geoml.knn(X, 40)
    with dask.config.set(scheduler="threads"):
        idx, dist = dask.compute(*gdask.knn(da.from_array(X, chunks=300), 40))
    np.testing.assert_array_equal(idx, ref.indices)
    np.testing.assert_array_equal(dist, ref.distances)


def test_ragged_batched_distributed(client):
    a, b, C, ao, bo = _ragged_problems(5, B=30)
    ref = geoml.ot.emd_batched(a, b, C, a_offsets=ao, b_offsets=bo, return_plans=True)
    got = gdask.emd_batched(
        da.from_array(a, chunks=20),
        b,
        C,
        a_offsets=ao,
        b_offsets=bo,
        return_plans=True,
        problems_per_task=7,
    )
    np.testing.assert_array_equal(got.cost, ref.cost)
    np.testing.assert_array_equal(got.plans, ref.plans)


# ---------------------------------------------------------------- one tile, both directions


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", METRICS)
def test_knn_pair_binding_both_directions(metric, dtype):
    # _core.knn_pair(A, B) = (knn of A's rows among B, knn of B's rows among A) from one pass,
    # float64 distances; against geoml.knn with Y (exact distances recomputed here in float64)
    from geoml import _core

    rng = np.random.default_rng(7)
    for na, nb, k in [(37, 50, 6), (5, 90, 8), (300, 2, 4), (1, 1, 1), (130, 260, 20)]:
        A = rng.normal(size=(na, 7)).astype(dtype)
        B = rng.normal(size=(nb, 7)).astype(dtype)
        outs = [_core.knn_pair(A, B, k=k, metric=_core.Metric[metric], n_jobs=j) for j in (1, 2)]
        for x, y in zip(*outs, strict=True):  # any thread count, same result
            np.testing.assert_array_equal(x, y)
        iab, dab, iba, dba = outs[0]
        assert iab.shape == (na, min(k, nb)) and iba.shape == (nb, min(k, na))
        assert dab.dtype == np.float64 and dba.dtype == np.float64
        for Q, D, idx, dist in ((A, B, iab, dab), (B, A, iba, dba)):
            ref = geoml.knn(D, idx.shape[1], Y=Q, metric=metric)
            np.testing.assert_array_equal(idx, ref.indices)
            np.testing.assert_array_equal(dist.astype(dtype), ref.distances)
            np.testing.assert_array_equal(dist, gdask._exact64(Q, D, idx, metric))
    # B=None: the self query with float64 distances
    X = rng.normal(size=(60, 5)).astype(dtype)
    idx, dist, none1, none2 = _core.knn_pair(X, None, k=7, metric=_core.Metric[metric])
    assert none1 is None and none2 is None
    ref = geoml.knn(X, 7, metric=metric)
    np.testing.assert_array_equal(idx, ref.indices)
    np.testing.assert_array_equal(dist.astype(dtype), ref.distances)
    with pytest.raises(ValueError, match="k=8 must be in"):
        _core.knn_pair(X[:8], None, k=8, metric=_core.Metric[metric])
    with pytest.raises(ValueError, match="columns"):
        _core.knn_pair(X, X[:, :3], k=2, metric=_core.Metric[metric])
    with pytest.raises(TypeError):
        _core.knn_pair(X.astype(np.float16), None, k=2, metric=_core.Metric[metric])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", METRICS)
def test_knn_pair_bounds_prune_only_beyond_the_bound(metric, dtype):
    """knn_pair(A, B, bound_a, bound_b): each row's list is the unpruned list without the
    candidates beyond the row's bound (kept ones in the same order, (-1, inf) after them),
    every candidate at a distance <= the bound kept; +inf bounds change nothing."""
    from geoml import _core

    rng = np.random.default_rng(11)
    M = _core.Metric[metric]
    for na, nb, k, shift in [(70, 90, 6, 0.0), (40, 25, 9, 50.0), (3, 80, 5, 0.0)]:
        A = (rng.normal(size=(na, 6)) + shift).astype(dtype)
        B = (rng.normal(size=(nb, 6)) + shift).astype(dtype)
        iab, dab, iba, dba = _core.knn_pair(A, B, k=k, metric=M)
        inf_a, inf_b = np.full(na, np.inf), np.full(nb, np.inf)
        for x, y in zip(_core.knn_pair(A, B, inf_a, inf_b, k=k, metric=M), (iab, dab, iba, dba)):
            np.testing.assert_array_equal(x, y)
        # bounds: each row's 2nd-best distance (or a random one of its list)
        col = rng.integers(0, 2, size=na) * (iab.shape[1] - 1) // 2
        ba = dab[np.arange(na), col].copy()
        bb = dba[:, min(1, iba.shape[1] - 1)].copy()
        got = _core.knn_pair(A, B, ba, bb, k=k, metric=M)
        for idx, dist, ref_i, ref_d, bound in (
            (got[0], got[1], iab, dab, ba),
            (got[2], got[3], iba, dba, bb),
        ):
            assert idx.shape == ref_i.shape
            for r in range(len(idx)):
                kept = idx[r] >= 0
                q = int(kept.sum())
                assert kept[:q].all() and np.isinf(dist[r, q:]).all()
                # the kept entries: the unpruned list's, in order (a prefix of it)
                np.testing.assert_array_equal(idx[r, :q], ref_i[r, :q])
                np.testing.assert_array_equal(dist[r, :q], ref_d[r, :q])
                # everything at or within the bound kept
                assert q >= int((ref_d[r] <= bound[r]).sum())
        assert (got[0] < 0).any() and (got[2] < 0).any()  # the bounds did prune
    with pytest.raises(ValueError, match=f"bound_a must be 1-D with {len(A)} entries"):
        _core.knn_pair(A, B, np.zeros(len(A) + 1), k=2, metric=M)
    with pytest.raises(ValueError, match=f"bound_b must be 1-D with {len(B)} entries"):
        _core.knn_pair(A, B, None, np.zeros((len(B), 1)), k=2, metric=M)
    with pytest.raises(ValueError, match="two-block"):
        _core.knn_pair(A, None, np.zeros(len(A)), k=1, metric=M)


# ---------------------------------------------------------------- approximate kNN


def _clustered(n, d, n_clusters, seed):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, n_clusters, size=n)
    return (4 * rng.normal(size=(n_clusters, d))[lab] + rng.normal(size=(n, d))).astype(np.float32)


def _recall(idx, X, k, metric="euclidean"):
    """True recall of the lists idx: a neighbour counts when at most the k-th exact distance."""
    ref = geoml.knn(X, k, metric=metric)
    dist = gdask._exact64(X, X, idx, metric).astype(X.dtype)  # compared in X's precision
    return float(np.minimum((dist <= ref.distances[:, -1:]).sum(1), k).mean() / k)


def test_knn_approx_recall_and_chunking_independent():
    X = _clustered(3000, 12, n_clusters=20, seed=3)
    k = 10
    with dask.config.set(scheduler="threads"):
        outs = []
        for chunks, n_jobs in [(1000, None), ((700, 1500, 3, 797), 2), (3000, -1)]:
            res = gdask.knn(
                da.from_array(X, chunks=(chunks, -1)),
                k,
                method="nndescent",
                partition_size=600,
                random_state=5,
                n_jobs=n_jobs,
            )
            outs.append((dask.compute(res.indices, res.distances), res.recall_))
    (idx, dist), rec = outs[0]
    for (i2, d2), r2 in outs[1:]:  # same random_state: the same graph for any chunking
        np.testing.assert_array_equal(i2, idx)
        np.testing.assert_array_equal(d2, dist)
        assert r2 == rec
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (3000, k)
    assert (idx != np.arange(3000)[:, None]).all() and (idx >= 0).all()
    assert all(len(set(r)) == k for r in idx.tolist())  # distinct neighbours
    np.testing.assert_array_equal(dist, gdask._exact64(X, X, idx, "euclidean").astype(np.float32))
    assert (np.diff(dist, axis=1) >= 0).all()
    true = _recall(idx, X, k)
    assert rec.method == "nndescent" and rec.n_checked == 500 and rec.target == 0.99
    assert rec.low <= rec.estimate <= rec.high and rec.reached == (rec.estimate >= 0.99)
    assert rec.low - 0.02 <= true <= rec.high + 0.02
    assert true > 0.95


def test_knn_approx_every_point_checked_and_warns():
    # n <= 500: every point is checked, the estimate is the true recall; overlap=1 with tiny
    # cells on uniform data is below target: a warning, recall_.reached False
    X = np.random.default_rng(8).random((400, 10))
    with dask.config.set(scheduler="threads"):
        with pytest.warns(RuntimeWarning, match="below target_recall"):
            res = gdask.knn(
                da.from_array(X, chunks=150),
                8,
                method="nndescent",
                partition_size=40,
                overlap=1,
                random_state=0,
            )
        idx = res.indices.compute()
    rec = res.recall_
    assert not rec.reached and rec.n_checked == 400 and rec.low == rec.estimate == rec.high
    assert rec.estimate == pytest.approx(_recall(idx, X, 8), abs=1e-12)


def test_knn_approx_small_cells_completed_exactly():
    # cells smaller than k + 1: the rows short of k candidates are searched exactly
    X = _data(200, 4, np.float64, 9)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = gdask.knn(
            da.from_array(X, chunks=((7, 100, 93), -1)),
            12,
            method="nndescent",
            partition_size=5,
            overlap=1,
            random_state=1,
        )
        idx, dist = dask.compute(res.indices, res.distances)
    assert (idx >= 0).all() and np.isfinite(dist).all()
    assert (idx != np.arange(200)[:, None]).all()
    np.testing.assert_array_equal(dist, gdask._exact64(X, X, idx, "euclidean"))


def test_knn_approx_auto_and_graph():
    X = _data(300, 5, np.float32, 10)
    with dask.config.set(scheduler="threads"):
        res = gdask.knn(da.from_array(X, chunks=100), 6, method="auto")
        assert res.recall_.method == "exact" and res.recall_.estimate == 1.0
        np.testing.assert_array_equal(res.indices.compute(), geoml.knn(X, 6).indices)
        G = gdask.knn_graph(
            da.from_array(X, chunks=100), 6, method="nndescent", partition_size=100, random_state=2
        )
    assert G.shape == (300, 300) and G.recall_.n_checked == 300
    R = geoml.knn_graph(X, 6)
    assert (G != R).nnz <= 0.05 * R.nnz  # nearly the exact graph


def test_knn_approx_bad_input():
    X = da.from_array(_data(30, 2, np.float64, 0), chunks=10)
    with pytest.raises(ValueError, match="method"):
        gdask.knn(X, 2, method="hnsw")
    with pytest.raises(ValueError, match="target_recall"):
        gdask.knn(X, 2, method="nndescent", target_recall=1.5)
    with pytest.raises(ValueError, match="partition_size"):
        gdask.knn(X, 2, method="nndescent", partition_size=1)
    with pytest.raises(ValueError, match="overlap"):
        gdask.knn(X, 2, method="nndescent", overlap=0)
    bad = _data(30, 2, np.float64, 0)
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        gdask.knn(da.from_array(bad, chunks=10), 2, method="nndescent", partition_size=5)
    tiny = _data(30, 2, np.float64, 0) * 1e-170
    with pytest.raises(ValueError, match="underflow"):
        gdask.knn(da.from_array(tiny, chunks=10), 2, method="nndescent", partition_size=5)


def _single_start(X, k, metric, random_state, size, overlap=1.05):
    """geoml.knn's clustered start alone (no NN-descent iteration), with geoml.knn's seed."""
    from geoml._validation import random_seed

    opts = geoml._core.NNDescentOptions(
        seed=random_seed(random_state), cluster_size=size, overlap=overlap, max_iter=0, n_check=0
    )
    idx, dist = geoml._core.nndescent(X, k=k, metric=geoml._core.Metric[metric], options=opts)[:2]
    return idx.reshape(len(X), k), dist.reshape(len(X), k)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_approx_is_single_machine_start(metric, dtype):
    # the distributed clustered start: the same lists as geoml.knn's start with the same seed
    # (top split on the client, parts split further in the tasks), for any chunking; the
    # distances by geoml.knn's finishing formula
    X = _clustered(6000, 8, n_clusters=12, seed=21).astype(dtype)
    k, size = 9, 400
    ref_i, ref_d = _single_start(X, k, metric, 4, size)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outs = []
        for chunks in [(6000,), (1000,) * 6, (1, 2500, 77, 3422)]:
            res = gdask.knn(
                da.from_array(X, chunks=(chunks, -1)),
                k,
                metric=metric,
                method="nndescent",
                partition_size=size,
                target_recall=0.5,  # one pass: the start alone
                random_state=4,
            )
            outs.append(dask.compute(res.indices, res.distances))
    assert res.partition_["start"] == "clustered" and res.partition_["passes"] == 1
    assert res.partition_["lists"] >= 10 and res.partition_["memberships"] > 6000
    idx, dist = outs[0]
    for i2, d2 in outs[1:]:
        np.testing.assert_array_equal(i2, idx)
        np.testing.assert_array_equal(d2, dist)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(ref_i, axis=1))
    np.testing.assert_array_equal(dist, gdask._exact64(X, X, idx, metric).astype(dtype))
    np.testing.assert_allclose(dist, ref_d, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert res.recall_.estimate == pytest.approx(_recall(idx, X, k, metric), abs=0.02)


def test_knn_approx_dominant_list_cut():
    # a list holding >= 90 % of the points (one dense clump) is cut into consecutive parts of
    # partition_size, as geoml.knn cuts it; each part task gets only its own rows
    rng = np.random.default_rng(24)
    X = np.concatenate([1e-3 * rng.normal(size=(2900, 4)), 10 * rng.normal(size=(100, 4))])
    X = X[rng.permutation(3000)]
    k, size = 5, 200
    ref_i, _ = _single_start(X, k, "euclidean", 8, size)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outs = []
        for chunks in [(3000,), (700, 1, 1299, 1000)]:
            res = gdask.knn(
                da.from_array(X, chunks=(chunks, -1)),
                k,
                method="nndescent",
                partition_size=size,
                target_recall=0.01,
                random_state=8,
            )
            outs.append(res.indices.compute())
    assert res.partition_["lists"] >= 2700 // size
    np.testing.assert_array_equal(outs[1], outs[0])
    clump = np.abs(X).max(axis=1) < 1
    got = outs[0]
    np.testing.assert_array_equal(np.sort(got[clump], axis=1), np.sort(ref_i[clump], axis=1))
    # far points in lists of fewer than k + 1: searched exactly here (geoml.knn fills them
    # with random points), never worse
    d_got = gdask._exact64(X, X, got, "euclidean")
    d_ref = gdask._exact64(X, X, ref_i, "euclidean")
    assert (np.sort(d_got, axis=1) <= np.sort(d_ref, axis=1) + 1e-12).all()


def test_knn_approx_second_pass():
    # below the target after the start: a second partition is merged in; every row's list
    # is then at least as good, and still the same for any chunking
    X = np.random.default_rng(5).random((3000, 6))
    kw = {"method": "nndescent", "partition_size": 300, "overlap": 1.0, "random_state": 7}
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        one = gdask.knn(da.from_array(X, chunks=1000), 10, target_recall=0.01, **kw)
        two = [gdask.knn(da.from_array(X, chunks=c), 10, **kw) for c in (1000, 777)]
        d1 = one.distances.compute()
        i2, d2 = dask.compute(two[0].indices, two[0].distances)
    assert one.partition_["passes"] == 1 and two[0].partition_["passes"] == 2
    assert two[0].partition_["lists"] > one.partition_["lists"]
    np.testing.assert_array_equal(two[1].indices.compute(), i2)
    assert (d2 <= d1 * (1 + 1e-12)).all()
    assert two[0].recall_.estimate > one.recall_.estimate
    assert two[0].recall_.estimate == pytest.approx(_recall(i2, X, 10), abs=0.05)


def test_knn_approx_one_task_below_four_lists():
    # at most 4 partition_size points (or inner products): geoml.knn's search in one task
    X = _data(700, 5, np.float64, 22)
    with dask.config.set(scheduler="threads"):
        res = gdask.knn(
            da.from_array(X, chunks=300), 6, method="nndescent", partition_size=200, random_state=1
        )
        idx = res.indices.compute()
    ref = geoml.knn(X, 6, method="nndescent", random_state=1)
    assert res.partition_["start"] == "one task"
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(ref.indices, axis=1))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the recall is not the point here
def test_knn_approx_worker_killed_mid_run(client):
    # a worker process killed while the parts of the clustered start are being searched:
    # Dask reruns the lost tasks (the persisted pieces included) and the graph is unchanged
    import os
    import signal
    import threading
    import time

    X = _clustered(12000, 8, n_clusters=15, seed=23)
    kw = {"method": "nndescent", "partition_size": 500, "random_state": 6}
    with dask.config.set(scheduler="threads"):
        ref = gdask.knn(da.from_array(X, chunks=(3000, -1)), 6, **kw)
        ref_i = ref.indices.compute()
    out = {}

    def run():
        with client.as_current():
            res = gdask.knn(da.from_array(X, chunks=(1500, -1)), 6, **kw)
            out["idx"] = client.compute(res.indices, sync=True)

    th = threading.Thread(target=run)
    th.start()

    def started():  # the chunks' assignments are held on the workers, or a part is running
        keys = [k for ks in client.processing().values() for k in ks] + list(client.who_has())
        return any("_cell" in str(k) or "_assign_cells" in str(k) for k in keys)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not started():
        time.sleep(0.005)
    nanny = next(iter(client.cluster.workers.values()))
    alive = th.is_alive()
    os.kill(nanny.process.pid, signal.SIGKILL)
    th.join(120)
    assert alive and not th.is_alive()  # killed mid-run, and the run completed
    np.testing.assert_array_equal(out["idx"], ref_i)
    client.wait_for_workers(2, timeout=60)


def test_knn_chunk_without_rows(client):
    # a chunk of 0 rows (e.g. after filtering) is no error, and changes nothing
    X = _clustered(6000, 8, n_clusters=30, seed=25).astype(np.float64)
    Xd = da.from_array(X, chunks=((2500, 0, 3500), -1))
    kw = {"method": "nndescent", "partition_size": 500, "random_state": 0}
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = gdask.knn(da.from_array(X, chunks=(6000, -1)), 5, **kw).indices.compute()
        np.testing.assert_array_equal(gdask.knn(Xd, 5, **kw).indices.compute(), ref)
        exact = geoml.knn(X[:600], 5)
        small = da.from_array(X[:600], chunks=((300, 0, 300), -1))
        np.testing.assert_array_equal(gdask.knn(small, 5).indices.compute(), exact.indices)
    got = client.compute(gdask.knn(small, 5).indices, sync=True)  # the ring schedule
    np.testing.assert_array_equal(got, exact.indices)


def test_knn_approx_overlap_checked():
    X = da.from_array(_data(30, 2, np.float64, 0), chunks=10)
    with pytest.raises(ValueError, match="overlap"):
        gdask.knn(X, 2, method="nndescent", overlap=0.99)
    with pytest.raises(TypeError, match="overlap"):
        gdask.knn(X, 2, method="nndescent", overlap="1")


# ---------------------------------------------------------------- point-cloud pairs


def _clouds(B, m, n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, m, d)), rng.normal(size=(B, n, d)) + 0.5


def test_point_cloud_costs_reference():
    x, y = _clouds(3, 4, 5, 3, 0)
    C = gdask.point_cloud_costs(x, y)
    ref = ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(C, ref, rtol=1e-14)
    np.testing.assert_allclose(gdask.point_cloud_costs(x, y, p=1), np.sqrt(ref), rtol=1e-14)
    assert (gdask.point_cloud_costs(x, x)[:, range(4), range(4)] == 0).all()


@pytest.mark.parametrize("chunks", [(17,), (5, 5, 7), (1,) * 17])
@pytest.mark.parametrize("p", [1, 2])
def test_batched_points_equal_precomputed_costs(chunks, p):
    B, m, n = 17, 4, 6
    x, y = _clouds(B, m, n, 3, 1)
    rng = np.random.default_rng(2)
    a, b = rng.dirichlet(np.ones(m), B), rng.dirichlet(np.ones(n), B)
    C = gdask.point_cloud_costs(x, y, p)
    X = da.from_array(x, chunks=(chunks, -1, -1))
    with dask.config.set(scheduler="threads"):
        got = gdask.emd_batched_points(X, y, a=a, b=b, p=p, return_plans=True)
        ref = geoml.ot.emd_batched(a, b, C, return_plans=True)
        for u, v in zip(got, ref, strict=True):
            np.testing.assert_array_equal(u, v)
        got = gdask.sinkhorn_batched_points(
            X, da.from_array(y, chunks=5), 0.5, a=da.from_array(a, chunks=3), p=p
        )
        ref = geoml.ot.sinkhorn_batched(a, np.full((B, n), 1 / n), C, 0.5)
        for u, v in zip(got, ref, strict=True):
            np.testing.assert_array_equal(u, v)
        got = gdask.emd_batched_points(X, y, p=p)  # uniform weights
        ref = geoml.ot.emd_batched(np.full((B, m), 1 / m), np.full((B, n), 1 / n), C)
        np.testing.assert_array_equal(got.cost, ref.cost)


def test_batched_points_bad_input():
    x, y = _clouds(6, 3, 4, 2, 3)
    X = da.from_array(x, chunks=2)
    with pytest.raises(TypeError, match=r"dask\.array"):
        gdask.emd_batched_points(x, y)
    with pytest.raises(ValueError, match="3-D"):
        gdask.emd_batched_points(X[:, :, 0], y)
    with pytest.raises(ValueError, match="expected \\(B, n, d\\)"):
        gdask.emd_batched_points(X, y[:, :, :1])
    with pytest.raises(ValueError, match="problems"):
        gdask.emd_batched_points(X, y[:4])
    with pytest.raises(ValueError, match="p=3"):
        gdask.sinkhorn_batched_points(X, y, 0.1, p=3)
    with pytest.raises(ValueError, match="a has shape"):
        gdask.emd_batched_points(X, y, a=np.ones((6, 4)))
    with pytest.raises(ValueError, match="eps"):
        gdask.sinkhorn_batched_points(X, y, 0.0)
    bad = x.copy()
    bad[4, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        gdask.emd_batched_points(da.from_array(bad, chunks=2), y)
    with pytest.raises(ValueError, match="same total mass"):
        gdask.emd_batched_points(X, y, a=np.ones((6, 3)))


def test_approx_and_points_distributed(client):
    X = _clustered(2000, 8, n_clusters=10, seed=4)
    kw = {"method": "nndescent", "partition_size": 400, "random_state": 3}
    res = gdask.knn(da.from_array(X, chunks=(300, -1)), 7, **kw)
    idx, dist = client.compute([res.indices, res.distances], sync=True)
    with dask.config.set(scheduler="threads"):
        ref = gdask.knn(da.from_array(X, chunks=(2000, -1)), 7, **kw)
        np.testing.assert_array_equal(idx, ref.indices.compute())
        np.testing.assert_array_equal(dist, ref.distances.compute())
    assert res.recall_ == ref.recall_
    x, y = _clouds(20, 5, 5, 2, 5)
    got = gdask.sinkhorn_batched_points(da.from_array(x, chunks=6), y, 0.5)
    w = np.full((20, 5), 0.2)
    ref = geoml.ot.sinkhorn_batched(w, w, gdask.point_cloud_costs(x, y), 0.5)
    np.testing.assert_array_equal(got.cost, ref.cost)


def test_sinkhorn_batch_wide_schedule_and_mass():
    # eps far below the cost range: Sinkhorn anneals eps from the range of ALL costs, and its
    # tolerance scales with the smallest mass of the batch; a chunk's own values would change
    # its results, so every task gets the whole batch's (bit-equal for any chunking)
    rng = np.random.default_rng(13)
    B = 12
    a = rng.dirichlet(np.ones(5), B) * np.linspace(1, 3, B)[:, None]
    b = rng.dirichlet(np.ones(5), B) * np.linspace(1, 3, B)[:, None]
    C = rng.random((B, 5, 5)) * np.linspace(1, 50, B)[:, None, None]
    ref = geoml.ot.sinkhorn_batched(a, b, C, 0.01)
    with dask.config.set(scheduler="threads"):
        got = gdask.sinkhorn_batched(da.from_array(a, chunks=3), b, C, 0.01)
        for u, v in zip(got, ref, strict=True):
            np.testing.assert_array_equal(u, v)
        off = np.arange(B + 1) * 5
        rag = (a.ravel(), b.ravel(), C.ravel(), 0.01)
        ref_r = geoml.ot.sinkhorn_batched(*rag, a_offsets=off, b_offsets=off)
        got = gdask.sinkhorn_batched(*rag, a_offsets=off, b_offsets=off, problems_per_task=5)
        for u, v in zip(got, ref_r, strict=True):
            np.testing.assert_array_equal(u, v)
        x, y = _clouds(B, 5, 5, 2, 14)
        x *= np.linspace(1, 8, B)[:, None, None]
        Cp = gdask.point_cloud_costs(x, y)
        assert np.ptp(Cp) / 1000 > 0.2  # annealed from the range of all costs
        ref = geoml.ot.sinkhorn_batched(a, b, Cp, 0.2)
        got = gdask.sinkhorn_batched_points(da.from_array(x, chunks=4), y, 0.2, a=a, b=b)
        for u, v in zip(got, ref, strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("metric", METRICS)
def test_knn_approx_metrics(metric):
    X = _data(500, 6, np.float64, 15)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inner products: recall may be low
        res = gdask.knn(
            da.from_array(X, chunks=170),
            5,
            metric=metric,
            method="nndescent",
            partition_size=150,
            random_state=0,
        )
        idx, dist = dask.compute(res.indices, res.distances)
    assert (idx != np.arange(500)[:, None]).all() and (idx >= 0).all()
    np.testing.assert_array_equal(dist, gdask._exact64(X, X, idx, metric))
    assert res.recall_.estimate == pytest.approx(_recall(idx, X, 5, metric), abs=1e-12)
    if metric != "inner_product":
        assert res.recall_.reached


def test_knn_approx_short_rows_counted_as_found():
    # every point checked (n <= 500) and many rows completed exactly: the estimate is the
    # recall of the returned lists
    X = _data(120, 3, np.float64, 16)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = gdask.knn(
            da.from_array(X, chunks=50),
            9,
            method="nndescent",
            partition_size=4,
            overlap=1,
            random_state=2,
        )
        idx = res.indices.compute()
    assert res.recall_.estimate == pytest.approx(_recall(idx, X, 9), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_cells_reference(seed):
    # each row's k best distinct candidates by (score, index) over its pieces, ordered by
    # (distance, index), against a per-row Python reference; rows in one to five pieces
    # (overlap, and a second pass merged in), lists padded with -1, ties in score and distance
    rng = np.random.default_rng(seed)
    m, k, q0 = 300, 6, 1000
    score_of = rng.integers(0, 40, size=(m, 80)).astype(np.float32)  # ties on purpose
    dist_of = score_of.astype(np.float64) + rng.integers(0, 3, size=(m, 80)) / 4

    def piece(rows):
        idx = np.stack([rng.choice(80, size=k, replace=False) for _ in rows])
        idx[rng.random(idx.shape) < 0.1] = -1
        r = rows - q0
        d = np.where(idx >= 0, dist_of[r[:, None], np.maximum(idx, 0)], np.inf)
        sc = np.where(idx >= 0, score_of[r[:, None], np.maximum(idx, 0)], np.inf)
        # as a cell returns them: by (distance, index), empty slots last
        o = np.lexsort((np.where(idx >= 0, idx, 99), d), axis=1)
        idx, d, sc = (np.take_along_axis(a, o, 1) for a in (idx, d, sc))
        return rows, idx.astype(np.int64), d, sc.astype(np.float32)

    pieces = [
        piece(np.sort(rng.choice(np.arange(q0, q0 + m), size=s, replace=False)))
        for s in (300, 120, 60, 30, 5)
    ]
    idx, dist, score, short = gdask._merge_cells(k, q0, m, None, *pieces, None)
    for r in range(m):
        cand = {}
        for rows, I, D, S in pieces:
            at = np.flatnonzero(rows == r + q0)
            for t in range(k) if at.size else ():
                j = int(I[at[0], t])
                if j >= 0:
                    cand[j] = (float(S[at[0], t]), float(D[at[0], t]))
        best = sorted(cand, key=lambda j: (cand[j][0], j))[:k]
        best = sorted(best, key=lambda j: (cand[j][1], j))
        want = best + [-1] * (k - len(best))
        assert idx[r].tolist() == want
        assert dist[r].tolist() == [cand[j][1] for j in best] + [np.inf] * (k - len(best))
        assert score[r].tolist() == [cand[j][0] for j in best] + [np.inf] * (k - len(best))
    np.testing.assert_array_equal(short, np.flatnonzero(idx[:, -1] < 0) + q0)


def test_knn_approx_start_chosen_by_dimension(monkeypatch):
    # as geoml.knn: the checked points' intrinsic dimension chooses the start; below
    # cluster_min_dim (low-dimensional data) geoml.knn's forest and NN-descent run in one task
    # (the same graph as geoml.knn), from it the clustered start is distributed
    monkeypatch.setattr(gdask, "_CLUSTER_MIN_DIM", geoml._core.NNDescentOptions().cluster_min_dim)
    rng = np.random.default_rng(30)
    low = rng.random((5000, 3)) @ rng.normal(size=(3, 12))  # a 3-D subspace of R^12
    high = _clustered(5000, 40, n_clusters=5, seed=31)
    kw = {"method": "nndescent", "partition_size": 500, "random_state": 3}
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = gdask.knn(da.from_array(low, chunks=(1500, -1)), 8, **kw)
        idx, dist = dask.compute(res.indices, res.distances)
        res2 = gdask.knn(da.from_array(high, chunks=(1500, -1)), 8, **kw)
    assert res.partition_["start"] == "one task" and res.partition_["intrinsic_dim"] < 4
    ref = geoml.knn(low, 8, method="nndescent", random_state=3)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(ref.indices, axis=1))
    np.testing.assert_array_equal(dist, gdask._exact64(low, low, idx, "euclidean"))
    assert res2.partition_["start"] == "clustered" and res2.partition_["intrinsic_dim"] > 10
    # low-dimensional data larger than one task should hold: the clustered start, distributed
    monkeypatch.setattr(gdask, "_WHOLE_MAX_BYTES", low.nbytes - 1)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res3 = gdask.knn(da.from_array(low, chunks=(1500, -1)), 8, **kw)
        idx3 = res3.indices.compute()
    assert res3.partition_["start"] == "clustered" and res3.partition_["intrinsic_dim"] < 4
    assert _recall(idx3, low, 8) > 0.9


def test_sample_dimension_reference():
    # the Levina-Bickel estimate pooled as geoml.knn pools it (MacKay-Ghahramani), with a
    # point of zero distances left out; lengths of squared and cosine distances
    rng = np.random.default_rng(2)
    k = 6
    T = np.sort(rng.random((50, k)) + 0.01, axis=1)
    T[3] = 0.0  # a duplicate: left out
    inv = [np.mean(np.log(T[i, -1] / T[i, :-1])) for i in range(50) if i != 3]
    want = 1 / np.mean(inv)
    assert gdask._sample_dimension(T, k, "euclidean") == pytest.approx(want, rel=1e-12)
    assert gdask._sample_dimension(T**2, k, "sqeuclidean") == pytest.approx(want, rel=1e-12)
    assert gdask._sample_dimension(T**2 / 2, k, "cosine") == pytest.approx(want, rel=1e-12)
    assert np.isnan(gdask._sample_dimension(T, 2, "euclidean"))
    assert np.isnan(gdask._sample_dimension(T, k, "inner_product"))
    # uniform points in a 5-D cube: about 5
    X = rng.random((4000, 5))
    d = np.sort(np.linalg.norm(X[:300, None] - X[None], axis=2), axis=1)[:, 1 : 10 + 1]
    assert 4 < gdask._sample_dimension(d, 10, "euclidean") < 6


def test_ring_homes_finds_persisted_chunks(client):
    # chunks already on the cluster are found where they are (client.who_has must be given
    # the objects: given their keys it finds no futures and answers nothing)
    X = client.persist(da.from_array(_data(400, 3, np.float64, 40), chunks=(100, -1)))
    distributed.wait(X)
    blocks = list(X.to_delayed().ravel())
    workers, homes, there = gdask._ring_homes(client, blocks)
    who = client.who_has(X)
    assert all(there)
    for b, h in zip(blocks, homes, strict=True):
        assert workers[h] in who[b.key]
