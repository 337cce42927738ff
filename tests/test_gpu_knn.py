"""kNN and kNN graphs on the GPU (marker ``gpu``) against the CPU path and float64 references.

Tests without the marker check the device dispatch and the graph-assembly logic on the host, so
they run everywhere; ``gpu`` tests need CuPy, geoml._cuda and a visible device.
"""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
from geoml import _gpu
from geoml._neighbors_gpu import csr_arrays
from geoml.neighbors import _symmetrize_mode, _to_csr

METRICS = ["euclidean", "sqeuclidean", "cosine", "inner_product"]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def reference(X, Y, k, metric, exclude_self):
    """Sorted k smallest float64 distances of each query, by brute force."""
    Xd = X.astype(np.float64)
    Yd = Xd if Y is None else Y.astype(np.float64)
    if metric in ("euclidean", "sqeuclidean"):
        mu = Xd.mean(axis=0)  # centred expansion: float64-exact enough, no (m, n, d) tensor
        Xc, Yc = Xd - mu, Yd - mu
        D = np.maximum((Yc**2).sum(1)[:, None] + (Xc**2).sum(1)[None] - 2 * Yc @ Xc.T, 0)
        if metric == "euclidean":
            D = np.sqrt(D)
    elif metric == "cosine":
        nx = np.linalg.norm(Xd, axis=1)
        ny = np.linalg.norm(Yd, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            D = 1.0 - (Yd @ Xd.T) / (ny[:, None] * nx[None])
        D = np.where((ny[:, None] == 0) | (nx[None] == 0), 1.0, np.clip(D, 0.0, 2.0))
    else:
        D = -(Yd @ Xd.T)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, :k], D


def check_result(idx, dist, X, Y, k, metric, exclude_self, rtol):
    exact, D = reference(X, Y, k, metric, exclude_self)
    m = exact.shape[0]
    assert idx.shape == dist.shape == (m, k)
    assert idx.dtype == np.int64 and dist.dtype == X.dtype
    # the reported distances are the k smallest, to rtol (+ a small absolute floor near 0)
    scale = np.abs(exact).max() if exact.size else 1.0
    np.testing.assert_allclose(dist, exact, rtol=rtol, atol=rtol * 1e-2 * scale)
    # and they belong to the reported indices
    np.testing.assert_allclose(
        np.take_along_axis(D, idx, axis=1), dist, rtol=rtol, atol=rtol * 1e-2 * scale
    )
    for row in idx:
        assert len(set(row.tolist())) == k
    if exclude_self:
        assert not (idx == np.arange(m)[:, None]).any()
    # rows sorted by (distance, index)
    d64 = dist.astype(np.float64)
    assert (np.diff(d64, axis=1) >= 0).all()
    same = np.diff(d64, axis=1) == 0
    assert (np.diff(idx, axis=1)[same] > 0).all()


# ------------------------------------------------------------------ host-side checks
def test_device_argument_validated():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="device="):
        geoml.knn(X, 1, device="gpu")
    with pytest.raises(ValueError, match="device="):
        geoml.knn_graph(X, 1, device="tpu")
    with pytest.raises(ValueError, match="device="):
        geoml.KNNGraph(1, device=None).fit(X)


def test_mixing_host_and_device_arrays_is_a_typeerror():
    class FakeDevice:
        __cuda_array_interface__ = {
            "shape": (3, 2),
            "typestr": "<f4",
            "data": (0, False),
            "version": 3,
        }

    with pytest.raises(TypeError, match="mix"):
        geoml.knn(np.zeros((3, 2)), 1, Y=FakeDevice())


def test_device_pointer_reads_the_interface():
    class Fake:
        def __init__(self, shape, typestr, strides):
            self.__cuda_array_interface__ = {
                "shape": shape,
                "typestr": typestr,
                "data": (4096, False),
                "strides": strides,
                "version": 3,
            }

    assert _gpu.device_pointer(Fake((3, 2), "<f4", None), "float32") == 4096
    assert _gpu.device_pointer(Fake((3, 2), "<f8", (16, 8)), "float64") == 4096
    assert _gpu.device_pointer(Fake((1, 5), "<f4", (999, 4))) == 4096  # extent-1 stride ignored
    with pytest.raises(ValueError, match="C-contiguous"):
        _gpu.device_pointer(Fake((3, 2), "<f4", (4, 12)))
    with pytest.raises(TypeError, match="expected float64"):
        _gpu.device_pointer(Fake((3, 2), "<f4", None), "float64")
    with pytest.raises(TypeError, match="unsupported"):
        _gpu.device_pointer(Fake((3,), "|b1", None))


def test_import_geoml_does_not_import_cupy():
    code = "import sys, geoml; geoml.knn([[0.0], [1.0]], 1); print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("symmetrize", [None, "union", "mutual", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_graph_assembly_logic_matches_cpu(rng, symmetrize, dtype):
    """The device CSR assembly (run here with NumPy as the array module) equals the C++ one."""
    n, k = 60, 5
    idx = np.stack([rng.choice(n, size=k, replace=False) for _ in range(n)]).astype(np.int64)
    idx[3, 1] = 3  # a self-loop: dropped
    idx[4, 0] = -1  # a missing neighbour: skipped
    w = rng.uniform(0, 1, size=(n, k)).astype(dtype)
    w[5, 2] = 0  # explicit zero kept
    ref = _to_csr(idx, w, symmetrize, 1)
    data, indices, indptr = csr_arrays(idx, w, _symmetrize_mode(symmetrize), np)
    assert data.dtype == dtype and indices.dtype == ref.indices.dtype
    np.testing.assert_array_equal(indptr, ref.indptr)
    np.testing.assert_array_equal(indices, ref.indices)
    np.testing.assert_array_equal(data, ref.data)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("metric", METRICS)
def test_parity_over_devices(rng, device, metric):
    X = rng.normal(size=(300, 7)).astype(np.float32)
    idx, dist = geoml.knn(X, 6, metric=metric, device=device)
    assert isinstance(idx, np.ndarray) and isinstance(dist, np.ndarray)
    check_result(idx, dist, X, None, 6, metric, True, 1e-5)


# ------------------------------------------------------------------ device tests
def cp():
    import cupy

    return cupy


SHAPES = [  # (n, m or None for self, d, k): n never a multiple of a tile (64 / 128)
    (37, None, 1, 1),
    (300, None, 3, 5),
    (1000, None, 1000, 10),
    (2500, None, 17, 15),
    (1500, None, 8, 1024),
    (20000, 9, 32, 15),  # few queries: the data is split across blocks and merged
    (777, 130, 2, 7),
]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}-m{}-d{}-k{}".format(*s))
@pytest.mark.parametrize("metric", METRICS)
def test_gpu_knn_matches_float64_reference(shape, metric):
    n, m, d, k = shape
    g = np.random.default_rng(n + d + k)
    X = (g.normal(size=(n, d)) + 3.0).astype(np.float32)  # off-centre: exercises centring
    Y = None if m is None else (g.normal(size=(m, d)) + 3.0).astype(np.float32)
    c = cp()
    idx, dist = geoml.knn(c.asarray(X), k, Y=None if Y is None else c.asarray(Y), metric=metric)
    assert isinstance(idx, c.ndarray) and isinstance(dist, c.ndarray)
    check_result(idx.get(), dist.get(), X, Y, k, metric, Y is None, 1e-5)
    # the CPU path gives the same distances
    ci, cd = geoml.knn(X, k, Y=Y, metric=metric, device="cpu")
    np.testing.assert_allclose(dist.get(), cd, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(cd).max()))


@pytest.mark.gpu
@pytest.mark.parametrize("metric", METRICS)
def test_gpu_float64(rng, metric):
    X = rng.normal(size=(700, 12))
    c = cp()
    idx, dist = geoml.knn(c.asarray(X), 9, metric=metric)
    assert dist.dtype == np.float64
    check_result(idx.get(), dist.get(), X, None, 9, metric, True, 1e-12)
    ci, cd = geoml.knn(X, 9, metric=metric)
    np.testing.assert_array_equal(idx.get(), ci)


@pytest.mark.gpu
def test_gpu_float32_of_clusters_far_apart_is_exact():
    """float32 Euclidean data is searched in float64 on the device too (float32 scores of
    clusters 1,000 apart swapped neighbours on the CPU kernel): same lists as the CPU path."""
    g = np.random.default_rng(7)
    C = 1000.0 * np.arange(4)[:, None] * np.ones(3)
    X = np.concatenate([C[i] + g.normal(size=(300, 3)) for i in range(4)]).astype(np.float32)
    c = cp()
    for metric in ("euclidean", "sqeuclidean"):
        idx, dist = geoml.knn(c.asarray(X), 6, metric=metric)
        assert dist.dtype == np.float32
        ci, cd = geoml.knn(X, 6, metric=metric, device="cpu")
        np.testing.assert_array_equal(idx.get(), ci)
        np.testing.assert_allclose(dist.get(), cd, rtol=1e-6)


@pytest.mark.gpu
def test_gpu_duplicates_ties_and_self():
    X = np.repeat(np.arange(10, dtype=np.float32)[:, None], 3, axis=0)  # each value 3 times
    c = cp()
    idx, dist = geoml.knn(c.asarray(X), 2)
    idx, dist = idx.get(), dist.get()
    np.testing.assert_array_equal(dist, 0.0)
    for i in range(30):
        group = [j for j in range(3 * (i // 3), 3 * (i // 3) + 3) if j != i]
        assert idx[i].tolist() == group
    idx, dist = geoml.knn(c.asarray(X), 1, exclude_self=False)
    np.testing.assert_array_equal(dist.get(), 0.0)
    assert (idx.get()[:, 0] == 3 * (np.arange(30) // 3)).all()  # smallest index first


@pytest.mark.gpu
def test_gpu_device_moves_and_types(rng):
    c = cp()
    X = rng.normal(size=(200, 5)).astype(np.float32)
    ref = geoml.knn(X, 4)
    idx, dist = geoml.knn(X, 4, device="cuda")  # host in, host out
    assert isinstance(idx, np.ndarray)
    np.testing.assert_allclose(dist, ref.distances, rtol=1e-5)
    idx, dist = geoml.knn(c.asarray(X), 4, device="cpu")  # device in, device out, CPU compute
    assert isinstance(idx, c.ndarray)
    np.testing.assert_array_equal(idx.get(), ref.indices)
    # non-contiguous, float16 and integer device input
    Xw = c.asarray(np.hstack([X, X]))[:, ::2]
    np.testing.assert_allclose(geoml.knn(Xw, 4).distances.get(), ref.distances, rtol=1e-5)
    assert geoml.knn(c.asarray(X).astype(c.float16), 4).distances.dtype == np.float32
    assert geoml.knn(c.arange(20).reshape(10, 2), 2).distances.dtype == np.float64
    # empty queries
    idx, dist = geoml.knn(c.asarray(X), 3, Y=c.zeros((0, 5), c.float32))
    assert idx.shape == (0, 3)


@pytest.mark.gpu
def test_gpu_runs_on_the_current_stream(rng):
    c = cp()
    X = rng.normal(size=(3000, 16)).astype(np.float32)
    ref = geoml.knn(X, 8)
    s = c.cuda.Stream(non_blocking=True)
    with s:
        Xd = c.asarray(X)
        idx, dist = geoml.knn(Xd, 8)
        out = dist.get(stream=s)
    np.testing.assert_allclose(out, ref.distances, rtol=1e-5)


@pytest.mark.gpu
def test_gpu_bad_input():
    c = cp()
    X = c.zeros((10, 2), c.float32)
    with pytest.raises(ValueError, match="GPU search's limit"):
        geoml.knn(c.zeros((3000, 2), c.float32), 2049)
    with pytest.raises(ValueError, match="out of range"):
        geoml.knn(X, 10)
    bad = X.copy()
    bad[1, 1] = c.nan
    with pytest.raises(ValueError, match="NaN"):
        geoml.knn(bad, 1)
    with pytest.raises(ValueError, match="features"):
        geoml.knn(X, 1, Y=c.zeros((2, 3), c.float32))
    with pytest.raises(TypeError, match="mix"):
        geoml.knn(X, 1, Y=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="metric"):
        geoml.knn(X, 1, metric="manhattan")


@pytest.mark.gpu
@pytest.mark.parametrize("symmetrize", [None, "union", "mutual", "mean"])
@pytest.mark.parametrize("kernel", [None, "gaussian", "adaptive", "alpha_decay"])
def test_gpu_graph_matches_cpu(rng, symmetrize, kernel):
    import cupyx.scipy.sparse as csp

    c = cp()
    X = rng.normal(size=(400, 6))  # float64: no near-tie flips between the two paths
    G = geoml.knn_graph(c.asarray(X), 7, symmetrize=symmetrize, kernel=kernel)
    R = geoml.knn_graph(X, 7, symmetrize=symmetrize, kernel=kernel)
    assert isinstance(G, csp.csr_matrix)
    H = G.get()
    np.testing.assert_array_equal(H.indptr, R.indptr)
    np.testing.assert_array_equal(H.indices, R.indices)
    np.testing.assert_allclose(H.data, R.data, rtol=1e-10)
    Hh = geoml.knn_graph(X, 7, symmetrize=symmetrize, kernel=kernel, device="cuda")
    assert sp.issparse(Hh)
    np.testing.assert_allclose(Hh.toarray(), R.toarray(), rtol=1e-10)


@pytest.mark.gpu
def test_gpu_knngraph_estimator(rng):
    import cupyx.scipy.sparse as csp

    c = cp()
    X = rng.normal(size=(500, 4))
    est = geoml.KNNGraph(n_neighbors=6).fit(c.asarray(X))
    ref = geoml.KNNGraph(n_neighbors=6).fit(X)
    assert isinstance(est.indices_, c.ndarray) and isinstance(est.graph_, csp.csr_matrix)
    np.testing.assert_array_equal(est.indices_.get(), ref.indices_)
    np.testing.assert_allclose(est.graph_.get().toarray(), ref.graph_.toarray(), rtol=1e-12)
    Yq = rng.normal(size=(5, 4))
    i1, d1 = est.kneighbors(c.asarray(Yq), n_neighbors=3)
    i2, d2 = ref.kneighbors(Yq, n_neighbors=3)
    np.testing.assert_array_equal(i1.get(), i2)
    i3, _ = est.kneighbors(n_neighbors=2)
    assert isinstance(i3, c.ndarray) and i3.shape == (500, 2)
    host = geoml.KNNGraph(n_neighbors=6, device="cuda").fit(X)
    assert isinstance(host.indices_, np.ndarray) and sp.issparse(host.graph_)
    np.testing.assert_array_equal(host.indices_, ref.indices_)


@pytest.mark.gpu
def test_show_config_reports_gpu(capsys):
    geoml.show_config()
    out = capsys.readouterr().out
    for key in ("cuda_runtime", "cuda_driver", "cuda_archs", "gpus"):
        assert key in out
    assert "none visible" not in out
