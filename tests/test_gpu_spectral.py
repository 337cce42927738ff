"""Spectral estimators on the GPU: ``LaplacianEigenmap``, ``DiffusionMap`` and
``SpectralClustering`` on CuPy input or ``device="cuda"`` (marker ``gpu``), against the CPU path.

Tests without the marker run the device Laplacian solver
(``spectral._gpu_lanczos.lsym_smallest``) with
NumPy on the host against ``numpy.linalg.eigh``, and check the device argument everywhere.
"""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse import csgraph

import geoml
from geoml import _gpu
from geoml.spectral._gpu_lanczos import lsym_smallest

ESTIMATORS = [geoml.LaplacianEigenmap, geoml.DiffusionMap, geoml.SpectralClustering]


def random_graph(n, seed, *, blocks=1, isolated=0, weighted=True):
    """Symmetric affinity: ``blocks`` disjoint random graphs plus ``isolated`` lone nodes."""
    g = np.random.default_rng(seed)
    parts = []
    for b in range(blocks):
        m = n // blocks
        A = sp.random(m, m, density=min(1.0, 6 / m), random_state=seed + b, format="csr")
        A.data = g.uniform(0.1, 1.0, A.nnz) if weighted else np.ones(A.nnz)
        A = A + A.T + sp.diags(np.ones(m - 1), 1) + sp.diags(np.ones(m - 1), -1)  # connected
        parts.append(A)
    parts.append(sp.csr_matrix((isolated, isolated)))
    W = sp.block_diag(parts, format="csr")
    W.setdiag(0)
    W.eliminate_zeros()
    return W


def dense_lsym(W):
    d = np.asarray(W.sum(1)).ravel()
    s = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    return np.diag((d > 0).astype(float)) - s[:, None] * W.toarray() * s[None]


def max_principal_angle(U, V):
    Qu, _ = np.linalg.qr(U)
    Qv, _ = np.linalg.qr(V)
    return float(np.max(scipy.linalg.subspace_angles(Qu, Qv)))


@pytest.mark.parametrize("blocks,isolated,k", [(1, 0, 6), (3, 2, 8), (2, 3, 4), (1, 0, 1)])
def test_host_lsym_smallest_matches_eigh(rng, blocks, isolated, k):
    n = int(rng.integers(120, 200))
    W = random_graph(n, int(rng.integers(1000)), blocks=blocks, isolated=isolated)
    ref_w, ref_V = np.linalg.eigh(dense_lsym(W))
    lam, U, d, conv, info = lsym_smallest(W, k, tol=1e-12, seed=0, xp=np)
    assert conv and info["components"] == blocks + isolated
    np.testing.assert_allclose(d, np.asarray(W.sum(1)).ravel())
    np.testing.assert_allclose(lam, ref_w[:k], atol=1e-9)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-8)
    L = dense_lsym(W)
    assert np.abs(L @ U - U * lam).max() < 1e-8
    if ref_w[k] - ref_w[k - 1] > 1e-6:  # the subspace is well defined
        assert max_principal_angle(U, ref_V[:, :k]) < 1e-6


def test_host_lsym_smallest_all_null_and_too_many():
    W = random_graph(60, 1, blocks=3, isolated=2)
    lam, U, *_ = lsym_smallest(W, 4, tol=1e-12, seed=0, xp=np)
    np.testing.assert_array_equal(lam, np.zeros(4))
    assert np.abs(dense_lsym(W) @ U).max() < 1e-12
    _, lab = csgraph.connected_components(W, directed=False)
    for j in range(4):  # each null vector lives on one component
        assert len(set(lab[np.abs(U[:, j]) > 0])) == 1
    with pytest.raises(ValueError, match="only 7 nodes"):
        lsym_smallest(random_graph(6, 0, isolated=1), 7, tol=1e-10, seed=0, xp=np)


def test_host_lsym_smallest_not_converged_warns():
    W = random_graph(400, 3)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        *_, conv, _ = lsym_smallest(W, 10, tol=1e-14, seed=0, max_iter=1, xp=np)
    assert conv is False


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_device_argument_validated(Est):
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="device"):
        Est(device="gpu").fit(X)
    if not _gpu.available():
        with pytest.raises(RuntimeError, match="GPU"):
            Est(device="cuda").fit(X)


def test_laplacian_rejects_device_sparse_clearly():
    class FakeDeviceCSR:  # what the check sees of a cupyx.scipy.sparse matrix
        pass

    FakeDeviceCSR.__module__ = "cupyx.scipy.sparse._csr"
    with pytest.raises(TypeError, match="GPU"):
        geoml.laplacian(FakeDeviceCSR())


# ----------------------------------------------------------------------------- on the device


def cupy_modules():
    import cupy as cp
    import cupyx.scipy.sparse as csp

    return cp, csp


def swiss(n, seed):
    g = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * g.random(n))
    return np.column_stack([t * np.cos(t), 20 * g.random(n), t * np.sin(t)])


@pytest.mark.gpu
@pytest.mark.parametrize("affinity", ["knn", "adaptive"])
def test_gpu_laplacian_eigenmap_matches_cpu(affinity):
    cp, csp = cupy_modules()
    X = swiss(1500, 0)
    cpu = geoml.LaplacianEigenmap(4, n_neighbors=10, affinity=affinity, random_state=0).fit(X)
    gpu = geoml.LaplacianEigenmap(4, n_neighbors=10, affinity=affinity, random_state=0).fit(
        cp.asarray(X)
    )
    assert isinstance(gpu.embedding_, cp.ndarray) and isinstance(gpu.eigenvalues_, cp.ndarray)
    assert csp.issparse(gpu.affinity_matrix_)
    assert abs(gpu.affinity_matrix_.get() - cpu.affinity_matrix_).max() < 1e-5
    np.testing.assert_allclose(gpu.eigenvalues_.get(), cpu.eigenvalues_, rtol=1e-6, atol=1e-9)
    assert max_principal_angle(gpu.embedding_.get(), cpu.embedding_) < 1e-4


@pytest.mark.gpu
def test_gpu_device_argument_moves_and_keeps_types():
    cp, _ = cupy_modules()
    X = swiss(800, 1)
    cpu = geoml.LaplacianEigenmap(3, n_neighbors=8, random_state=0).fit(X)
    on_dev = geoml.LaplacianEigenmap(3, n_neighbors=8, random_state=0, device="cuda").fit(X)
    assert isinstance(on_dev.embedding_, np.ndarray) and sp.issparse(on_dev.affinity_matrix_)
    np.testing.assert_allclose(on_dev.eigenvalues_, cpu.eigenvalues_, rtol=1e-6, atol=1e-9)
    back = geoml.LaplacianEigenmap(3, n_neighbors=8, random_state=0, device="cpu").fit(
        cp.asarray(X)
    )
    assert isinstance(back.embedding_, cp.ndarray)
    np.testing.assert_allclose(back.embedding_.get(), cpu.embedding_)


@pytest.mark.gpu
def test_gpu_precomputed_disconnected_with_isolated_nodes():
    cp, csp = cupy_modules()
    W = random_graph(300, 5, blocks=3, isolated=2)
    ref = np.linalg.eigvalsh(dense_lsym(W))
    with pytest.warns(UserWarning, match="connected components"):
        emb = geoml.LaplacianEigenmap(
            7, affinity="precomputed", drop_first=False, random_state=0
        ).fit(csp.csr_matrix(W))
    lam = emb.eigenvalues_.get()
    np.testing.assert_array_equal(lam[:5], np.zeros(5))
    np.testing.assert_allclose(lam, ref[:7], atol=1e-8)
    with pytest.raises(ValueError, match="symmetric"):
        geoml.LaplacianEigenmap(affinity="precomputed").fit(csp.csr_matrix(sp.triu(W)))
    bad = W.copy()
    bad.data[0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        geoml.LaplacianEigenmap(affinity="precomputed").fit(csp.csr_matrix(bad))


@pytest.mark.gpu
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_gpu_diffusion_map_matches_cpu(alpha):
    cp, _ = cupy_modules()
    X = swiss(1200, 2)
    cpu = geoml.DiffusionMap(3, n_neighbors=12, alpha=alpha, t=2, random_state=0).fit(X)
    gpu = geoml.DiffusionMap(3, n_neighbors=12, alpha=alpha, t=2, random_state=0).fit(cp.asarray(X))
    np.testing.assert_allclose(gpu.eigenvalues_.get(), cpu.eigenvalues_, rtol=1e-6)
    assert max_principal_angle(gpu.embedding_.get(), cpu.embedding_) < 1e-4
    # same scaling: columns agree up to sign
    G, C = gpu.embedding_.get(), cpu.embedding_
    np.testing.assert_allclose(np.abs(G).sum(0), np.abs(C).sum(0), rtol=1e-4)


@pytest.mark.gpu
def test_gpu_spectral_clustering_blobs_and_circles():
    cp, _ = cupy_modules()
    from sklearn.datasets import make_circles
    from sklearn.metrics import adjusted_rand_score

    g = np.random.default_rng(0)
    X = np.vstack([g.normal(c, 0.3, (100, 2)) for c in (0, 5, 10)])
    y = np.repeat([0, 1, 2], 100)
    lab = geoml.SpectralClustering(3, n_neighbors=8, random_state=0).fit(cp.asarray(X)).labels_
    assert isinstance(lab, cp.ndarray)
    assert adjusted_rand_score(y, lab.get()) == 1.0
    Xc, yc = make_circles(600, factor=0.4, noise=0.03, random_state=0)
    lab = geoml.SpectralClustering(2, n_neighbors=10, random_state=0, device="cuda").fit(Xc).labels_
    assert adjusted_rand_score(yc, lab) == 1.0
