"""Tests for geoml.eigsh, geoml.laplacian and the spectral estimators (issue 3)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
from scipy.linalg import subspace_angles
from scipy.sparse.linalg import LinearOperator
from scipy.sparse.linalg import eigsh as scipy_eigsh

import geoml
from geoml import spectral
from geoml.demo import swiss_roll
from geoml.spectral import _amg, _laplacian, _lsym


def _sym(rng, n):
    B = rng.normal(size=(n, n))
    return (B + B.T) / 2


def _knn_affinity(rng, n=300, d=3, k=8, components=1):
    """Union-symmetrised 0/1 kNN graph of `components` far-apart Gaussian blobs."""
    X = np.vstack([rng.normal(size=(n // components, d)) + 100 * c for c in range(components)])
    return sp.csr_matrix(geoml.knn_graph(X, k, mode="connectivity"), dtype=np.float64), X


def _reference(w_all, which, k):
    if which == "LA":
        return np.sort(w_all[-k:])
    if which == "SA":
        return np.sort(w_all[:k])
    return np.sort(w_all[np.argsort(-np.abs(w_all), kind="stable")[:k]])


# ----------------------------------------------------------------------------- eigsh


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
@pytest.mark.parametrize("n,k", [(40, 1), (150, 6), (400, 12)])
def test_eigsh_dense_vs_numpy(rng, which, n, k):
    A = _sym(rng, n)
    w_all, V_all = np.linalg.eigh(A)
    res = geoml.eigsh(A, k, which=which, random_state=rng)
    ref = _reference(w_all, which, k)
    np.testing.assert_allclose(res.eigenvalues, ref, rtol=1e-8, atol=1e-8 * np.abs(w_all).max())
    assert res.converged
    assert res.eigenvectors.shape == (n, k)
    np.testing.assert_allclose(res.eigenvectors.T @ res.eigenvectors, np.eye(k), atol=1e-10)
    sel = [int(np.argmin(np.abs(w_all - v))) for v in res.eigenvalues]
    assert np.max(subspace_angles(res.eigenvectors, V_all[:, sel])) < 1e-6
    # computed residuals are what they claim
    R = A @ res.eigenvectors - res.eigenvectors * res.eigenvalues
    np.testing.assert_allclose(np.linalg.norm(R, axis=0), res.residual_norms, atol=1e-12)
    assert np.all(res.residual_norms <= 1e-10 * res.anorm)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-8), (np.float32, 1e-4)])
@pytest.mark.parametrize("which", ["LA", "SA"])
def test_eigsh_sparse_vs_scipy(rng, dtype, rtol, which):
    W, _ = _knn_affinity(rng, n=400)
    L = csgraph.laplacian(W, normed=True).astype(dtype)
    L = sp.csr_matrix(L)
    k = 8
    w_ref, V_ref = scipy_eigsh(L.astype(np.float64), k, which=which, tol=1e-12)
    res = geoml.eigsh(L, k, which=which, random_state=rng)
    assert res.eigenvalues.dtype == res.eigenvectors.dtype == dtype  # as SciPy
    scale = np.abs(w_ref).max()
    np.testing.assert_allclose(res.eigenvalues, np.sort(w_ref), rtol=rtol, atol=rtol * scale)
    # compare subspaces away from (near-)degenerate ends
    ang = subspace_angles(res.eigenvectors.astype(np.float64), V_ref)
    assert np.max(ang) < (1e-6 if dtype == np.float64 else 1e-2)


@pytest.mark.parametrize("fmt", ["csc", "coo", "dense", "operator"])
def test_eigsh_input_kinds(rng, fmt):
    A = _sym(rng, 120)
    w_all = np.linalg.eigvalsh(A)
    if fmt == "dense":
        M = A
    elif fmt == "operator":
        M = LinearOperator(A.shape, matvec=lambda x: A @ x, dtype=np.float64)
    else:
        M = sp.csr_matrix(A).asformat(fmt)
    w, V = geoml.eigsh(M, 4, which="LA", random_state=0)
    np.testing.assert_allclose(w, w_all[-4:], rtol=1e-8)
    assert V.shape == (120, 4)


def test_eigsh_operator_float32_and_errors_from_callback():
    A = np.diag(np.arange(1.0, 51.0)).astype(np.float32)
    op = LinearOperator(A.shape, matvec=lambda x: A @ x, dtype=np.float32)
    res = geoml.eigsh(op, 3, which="LA", random_state=0)
    assert res.eigenvectors.dtype == np.float32
    np.testing.assert_allclose(res.eigenvalues, [48, 49, 50], rtol=1e-4)

    def bad(x):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        geoml.eigsh(LinearOperator((50, 50), matvec=bad, dtype=np.float64), 2)
    with pytest.raises(ValueError, match="NaN"):
        geoml.eigsh(LinearOperator((50, 50), matvec=lambda x: x * np.nan, dtype=np.float64), 2)


def test_eigsh_repeated_eigenvalues(rng):
    # eigenvalue 5 with multiplicity 4 at the top, then a spread spectrum
    n = 200
    vals = np.concatenate([np.full(4, 5.0), np.linspace(0, 3, n - 4)])
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = (Q * vals) @ Q.T
    A = (A + A.T) / 2
    res = geoml.eigsh(A, 6, which="LA", random_state=rng)
    np.testing.assert_allclose(res.eigenvalues, [3 * (n - 6) / (n - 5), 3, 5, 5, 5, 5], rtol=1e-8)
    assert np.max(subspace_angles(res.eigenvectors[:, 2:], Q[:, :4])) < 1e-6


@pytest.mark.parametrize("components", [2, 4])
def test_eigsh_disconnected_laplacian_zero_multiplicity(rng, components):
    W, _ = _knn_affinity(rng, n=240, components=components)
    assert csgraph.connected_components(W)[0] == components
    L = sp.csr_matrix(csgraph.laplacian(W, normed=True))
    k = components + 3
    res = geoml.eigsh(L, k, which="SA", random_state=rng)
    w_all = np.linalg.eigvalsh(L.toarray())
    np.testing.assert_allclose(res.eigenvalues, w_all[:k], atol=1e-9)
    assert np.sum(np.abs(res.eigenvalues) < 1e-9) == components
    # the Laplacian path puts the null space in exactly
    lam, U, _, conv, info = _lsym._lsym_smallest(W, k, random_state=0)
    assert info["components"] == components and conv
    np.testing.assert_allclose(lam, w_all[:k], atol=1e-9)


def test_eigsh_chebyshev_filter_path_matches_plain(rng):
    W, _ = _knn_affinity(rng, n=500, k=6)
    lam0, U0, *_ = _lsym._lsym_smallest(W, 10, cheb_degree=0, random_state=0)
    lam1, U1, *_ = _lsym._lsym_smallest(W, 10, cheb_degree=12, random_state=0)
    w_all = np.linalg.eigvalsh(geoml.laplacian(W).toarray())
    np.testing.assert_allclose(lam0, w_all[:10], atol=1e-9)
    np.testing.assert_allclose(lam1, w_all[:10], atol=1e-9)
    assert np.max(subspace_angles(U0, U1)) < 1e-5


# ----------------------------------------------------------------------------- LOBPCG + AMG


def _isolate(W, nodes):
    """W with every edge of `nodes` removed (they become isolated nodes)."""
    W = sp.lil_matrix(W)
    for i in nodes:
        W[i, :] = 0
        W[:, i] = 0
    return sp.csr_matrix(W)


@pytest.mark.parametrize("n,d,knn,k", [(1000, 3, 8, 10), (1200, 2, 6, 16), (800, 5, 10, 6)])
def test_lsym_lobpcg_amg_matches_dense(rng, monkeypatch, n, d, knn, k):
    # a small coarsest level, so that the graph gets several levels
    monkeypatch.setattr(_amg, "_AMG_MAX_COARSE", 60)
    W, _ = _knn_affinity(rng, n=n, d=d, k=knn)
    w_all, V_all = np.linalg.eigh(geoml.laplacian(W).toarray())
    lam, U, _, conv, info = _lsym._lsym_smallest(W, k, method="lobpcg-amg", random_state=0)
    assert conv and info["method"] == "lobpcg-amg" and info["n_iter"] > 0
    np.testing.assert_allclose(lam, w_all[:k], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-10)
    L = geoml.laplacian(W)
    assert np.linalg.norm(L @ U - U * lam, axis=0).max() <= 1e-9
    # subspace comparison away from (near-)repeated eigenvalues at the cut
    j = k if w_all[k] - w_all[k - 1] > 1e-6 else k - 1
    assert np.max(subspace_angles(U[:, :j], V_all[:, :j])) < 1e-6


def test_lsym_lobpcg_amg_weighted_graph(rng, monkeypatch):
    # kernel weights spanning three decades: aggregation follows the strongest edges
    monkeypatch.setattr(_amg, "_AMG_MAX_COARSE", 80)
    W, _ = _knn_affinity(rng, n=900, d=3, k=8)
    W = sp.triu(W, 1).tocsr()
    W.data = 10.0 ** rng.uniform(-3, 0, W.nnz)
    W = sp.csr_matrix(W + W.T)
    w_all = np.linalg.eigvalsh(geoml.laplacian(W).toarray())
    lam, U, _, conv, info = _lsym._lsym_smallest(W, 8, method="lobpcg-amg", random_state=2)
    assert conv and info["method"] == "lobpcg-amg"
    np.testing.assert_allclose(lam, w_all[:8], rtol=1e-8, atol=1e-12)


def test_lsym_lobpcg_amg_hierarchy_levels(rng, monkeypatch):
    monkeypatch.setattr(_amg, "_AMG_MAX_COARSE", 60)
    W, _ = _knn_affinity(rng, n=1500, d=2, k=6)
    L = geoml.laplacian(W)
    b = np.sqrt(np.asarray(W.sum(axis=1)).ravel())
    levels = _amg._amg_hierarchy(L, b)
    sizes = [lev.A.shape[0] for lev in levels]
    assert len(levels) >= 3 and sizes == sorted(sizes, reverse=True) and sizes[-1] <= 60
    for lev in levels[:-1]:
        # smoothing keeps the near-null vector in range(P): b = P c for the aggregate norms c
        P = lev.P.toarray()
        c, *_ = np.linalg.lstsq(P, b, rcond=None)
        np.testing.assert_allclose(P @ c, b, atol=1e-10)
        np.testing.assert_allclose(lev.R.toarray(), P.T)
        b = c
        np.testing.assert_allclose(levels[levels.index(lev) + 1].A @ b, 0, atol=1e-10)
    w = levels[-1].w
    assert abs(w[0]) < 1e-10 < w[1]


@pytest.mark.parametrize("components", [2, 3])
def test_lsym_lobpcg_amg_disconnected_and_isolated(rng, monkeypatch, components):
    monkeypatch.setattr(_amg, "_AMG_MAX_COARSE", 50)
    W, _ = _knn_affinity(rng, n=600, components=components)
    W = _isolate(W, [5, 17])
    ncomp = csgraph.connected_components(W)[0]
    assert ncomp == components + 2
    k = ncomp + 5
    w_all = np.linalg.eigvalsh(geoml.laplacian(W).toarray())
    lam, U, _, conv, info = _lsym._lsym_smallest(W, k, method="lobpcg-amg", random_state=1)
    assert conv and info["components"] == ncomp and info["method"] == "lobpcg-amg"
    assert np.sum(lam < 1e-12) == ncomp
    np.testing.assert_allclose(lam, w_all[:k], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-10)
    # isolated nodes: e_i in the null space, nothing of them elsewhere
    assert np.allclose(np.abs(U[[5, 17], ncomp:]), 0, atol=1e-10)


def test_lsym_lobpcg_amg_k_near_n(rng):
    W, _ = _knn_affinity(rng, n=120, k=6)
    w_all = np.linalg.eigvalsh(geoml.laplacian(W).toarray())
    k = 118
    lam, U, _, conv, info = _lsym._lsym_smallest(W, k, method="lobpcg-amg", random_state=0)
    assert conv and info["method"] == "lobpcg-amg"
    np.testing.assert_allclose(lam, w_all[:k], rtol=1e-8, atol=1e-12)


def test_lsym_method_auto_and_fallback(rng, monkeypatch):
    W, _ = _knn_affinity(rng, n=800, k=8)
    w_all = np.linalg.eigvalsh(geoml.laplacian(W).toarray())
    monkeypatch.setattr(_lsym, "_AMG_MIN_N", 10**9)
    assert _lsym._lsym_smallest(W, 5, random_state=0)[4]["method"] == "lanczos"
    monkeypatch.setattr(_lsym, "_AMG_MIN_N", 500)
    monkeypatch.setattr(_amg, "_AMG_MAX_COARSE", 100)
    lam, *_, info = _lsym._lsym_smallest(W, 5, random_state=0)
    assert info["method"] == "lobpcg-amg"
    np.testing.assert_allclose(lam, w_all[:5], rtol=1e-8, atol=1e-12)
    # LOBPCG stopped after one iteration: Lanczos takes over, same answer
    monkeypatch.setattr(_lsym, "_AMG_MAX_ITER", 1)
    lam, *_, info = _lsym._lsym_smallest(W, 5, random_state=0)
    assert info["method"] == "lanczos"
    np.testing.assert_allclose(lam, w_all[:5], rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="method"):
        _lsym._lsym_smallest(W, 5, method="amg")


def test_amg_kernels_vs_scipy(rng):
    W, _ = _knn_affinity(rng, n=700, k=7)
    labels, nagg = geoml._core.aggregate_graph(W.indptr, W.indices, W.data)
    assert labels.shape == (700,) and labels.min() == 0 and labels.max() == nagg - 1
    assert np.all(np.bincount(labels) > 0) and nagg < 700 / 3
    # every aggregate is connected in the graph
    for a in range(0, nagg, 7):
        idx = np.flatnonzero(labels == a)
        assert csgraph.connected_components(W[idx][:, idx])[0] == 1
    X = rng.normal(size=(700, 5))
    B = rng.normal(size=(700, 5))
    Y = np.empty((700, 5))
    geoml._core.csr_spmm(W.indptr, W.indices, W.data, X, Y, alpha=2.0, B=B, beta=-0.5)
    np.testing.assert_allclose(Y, 2.0 * (W @ X) - 0.5 * B, rtol=1e-12, atol=1e-12)
    geoml._core.csr_spmm(W.indptr, W.indices, W.data, X, Y, B=Y, beta=1.0)  # in place
    np.testing.assert_allclose(Y, 3.0 * (W @ X) - 0.5 * B, rtol=1e-12, atol=1e-12)
    geoml._core.csr_spmm(
        W.indptr.astype(np.int64),
        W.indices.astype(np.int64),
        W.data,
        X,
        Y,
        alpha=1.0,
        B=None,
        beta=0.0,
        n_jobs=1,
    )
    np.testing.assert_allclose(Y, W @ X, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 1001])
def test_block_gram_vs_numpy(rng, n):
    """[U_1 ... U_a]^T [V_1 ... V_b] against NumPy float64, odd widths, strided views."""
    for cu, cv in [((1,), (1,)), ((3, 5), (8,)), ((19, 19, 7), (19, 4, 19, 4))]:
        U = [rng.normal(size=(n, c)) for c in cu]
        V = [rng.normal(size=(n, c)) for c in cv]
        ref = np.hstack(U).T @ np.hstack(V)
        for nt in (1, 2):
            G = geoml._core.block_gram(U, V, n_jobs=nt)
            assert G.shape == ref.shape
            np.testing.assert_allclose(G, ref, rtol=1e-12, atol=1e-12 * max(n, 1))
    P = rng.normal(size=(n, 12))
    views = [P[:, 1:4], P[:, 7:8], P[:, 9:]]  # column runs of one block, read in place
    np.testing.assert_allclose(
        geoml._core.block_gram(views, [P], n_jobs=2),
        np.hstack(views).T @ P,
        rtol=1e-12,
        atol=1e-12 * max(n, 1),
    )


@pytest.mark.parametrize("n", [0, 1, 2, 3, 64, 1001])
def test_block_lincomb_vs_numpy(rng, n):
    """Y = beta Y + [B_1 ... B_a] C + D against NumPy, in place and on column views."""
    for cb, q in [((1,), 1), ((3, 5), 7), ((19, 19, 7), 19), ((40,), 21)]:
        B = [rng.normal(size=(n, c)) for c in cb]
        C = rng.normal(size=(sum(cb), q))
        Y0, D = rng.normal(size=(n, q)), rng.normal(size=(n, q))
        for beta, add in [(0.0, None), (1.0, None), (-0.5, D)]:
            Y = Y0.copy()
            geoml._core.block_lincomb(B, C, Y, beta=beta, D=add, n_jobs=2)
            ref = beta * Y0 + np.hstack(B) @ C + (0 if add is None else D)
            np.testing.assert_allclose(Y, ref, rtol=1e-12, atol=1e-12)
    X = rng.normal(size=(n, 9))
    C = rng.normal(size=(9, 9))
    ref = X @ C
    geoml._core.block_lincomb([X], C, X, beta=0.0, D=None, n_jobs=1)  # in place
    np.testing.assert_allclose(X, ref, rtol=1e-12, atol=1e-12)
    P = rng.normal(size=(n, 12))
    Y = np.full((n, 12), np.nan)
    geoml._core.block_lincomb([P[:, :3], P[:, 5:9]], C[:7, :4], Y[:, 2:6], n_jobs=2)
    np.testing.assert_allclose(
        Y[:, 2:6], np.hstack([P[:, :3], P[:, 5:9]]) @ C[:7, :4], rtol=1e-12, atol=1e-12
    )
    assert np.isnan(Y[:, :2]).all() and np.isnan(Y[:, 6:]).all()  # beta = 0: Y not read


@pytest.mark.parametrize("n", [0, 1, 5, 1023, 1025, 3000])
def test_block_residual_vs_numpy(rng, n):
    for m in (1, 7, 19):
        X, AX = rng.normal(size=(n, m)), rng.normal(size=(n, m))
        lam = rng.normal(size=m)
        R = np.full((n, m), np.nan)
        norms = geoml._core.block_residual(X, AX, lam, R, n_jobs=2)
        ref = AX - X * lam
        np.testing.assert_allclose(R, ref, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(norms, np.linalg.norm(ref, axis=0), rtol=1e-12, atol=1e-300)
    P = rng.normal(size=(n, 10))  # column views of wider blocks
    norms = geoml._core.block_residual(P[:, :4], P[:, 4:8], np.arange(4.0), P[:, 6:10], n_jobs=1)
    np.testing.assert_allclose(norms, np.linalg.norm(P[:, 6:10], axis=0), rtol=1e-12)


def test_block_kernels_same_bits_for_any_thread_count(rng):
    """block_gram and block_residual add their row chunks in groups fixed by n, not by the
    thread count or the schedule."""
    U = [rng.normal(size=(20_000, c)) for c in (19, 11)]  # n pu pv >= 4e6: threaded
    X, AX = rng.normal(size=(150_000, 10)), rng.normal(size=(150_000, 10))
    lam = rng.normal(size=10)
    G1 = geoml._core.block_gram(U, U, n_jobs=1)
    R1 = np.empty_like(X)
    n1 = geoml._core.block_residual(X, AX, lam, R1, n_jobs=1)
    for _ in range(3):
        np.testing.assert_array_equal(geoml._core.block_gram(U, U, n_jobs=2), G1)
        R2 = np.empty_like(X)
        np.testing.assert_array_equal(geoml._core.block_residual(X, AX, lam, R2, n_jobs=2), n1)
        np.testing.assert_array_equal(R2, R1)
    ref = np.hstack(U).T @ np.hstack(U)
    np.testing.assert_allclose(G1, ref, rtol=1e-12, atol=1e-12 * len(U[0]))
    np.testing.assert_allclose(n1, np.linalg.norm(AX - X * lam, axis=0), rtol=1e-12)


def test_spectral_embedding_lobpcg_same_bits_for_any_thread_count(rng, monkeypatch):
    monkeypatch.setattr(_lsym, "_AMG_MIN_N", 500)
    W, _ = _knn_affinity(rng, n=6000, k=8)
    E1 = geoml.spectral_embedding(W, 12, random_state=0, n_jobs=1)
    assert _lsym._lsym_smallest(W, 13, random_state=0)[4]["method"] == "lobpcg-amg"
    for _ in range(2):
        np.testing.assert_array_equal(geoml.spectral_embedding(W, 12, random_state=0, n_jobs=2), E1)


def test_block_kernels_bad_input(rng):
    X = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="rows"):
        geoml._core.block_gram([X], [X[:5]], n_jobs=1)
    with pytest.raises(TypeError, match="float64"):
        geoml._core.block_gram([X.astype(np.float32)], [X], n_jobs=1)
    with pytest.raises(ValueError, match="contiguous rows"):
        geoml._core.block_gram([X], [np.asfortranarray(X)], n_jobs=1)
    with pytest.raises(ValueError, match="one block"):
        geoml._core.block_gram([], [X], n_jobs=1)
    with pytest.raises(ValueError, match="C must be"):
        geoml._core.block_lincomb([X], np.ones((2, 3)), np.empty((10, 3)), n_jobs=1)
    with pytest.raises(ValueError, match="D must be"):
        geoml._core.block_lincomb(
            [X], np.ones((3, 3)), np.empty((10, 3)), D=np.ones((10, 2)), n_jobs=1
        )
    Y = np.empty((10, 3))
    Y.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        geoml._core.block_lincomb([X], np.ones((3, 3)), Y, n_jobs=1)
    with pytest.raises(TypeError, match="writeable"):
        geoml._core.block_residual(X, X, np.ones(3), Y, n_jobs=1)
    with pytest.raises(ValueError, match="lam"):
        geoml._core.block_residual(X, X, np.ones(2), np.empty((10, 3)), n_jobs=1)
    with pytest.raises(ValueError, match="rows"):
        geoml._core.block_residual(X, X[:4], np.ones(3), np.empty((10, 3)), n_jobs=1)


def _bandwidth(M):
    C = M.tocoo()
    return int(np.abs(C.row - C.col).max())


@pytest.mark.parametrize("index64", [False, True])
def test_rcm_components_vs_scipy(rng, index64):
    W, _ = _knn_affinity(rng, n=600, k=6, components=3)
    W = sp.block_diag([W, sp.csr_matrix((2, 2))], format="csr")  # + 2 isolated nodes
    ip, ix = (
        (W.indptr.astype(np.int64), W.indices.astype(np.int64))
        if index64
        else (W.indptr, W.indices)
    )
    perm, labels, ncomp = geoml._core.rcm_components(ip, ix)
    ref_n, ref_labels = csgraph.connected_components(W, directed=False)
    assert ncomp == ref_n == 5
    np.testing.assert_array_equal(np.sort(perm), np.arange(W.shape[0]))
    # the same partition (labels may be numbered differently)
    pairs = set(zip(labels.tolist(), ref_labels.tolist()))
    assert len(pairs) == ncomp
    # an RCM order: as narrow a band as SciPy's, far narrower than the data order
    ref_perm = csgraph.reverse_cuthill_mckee(W, symmetric_mode=True)
    bw = _bandwidth(W[perm][:, perm])
    assert bw <= 1.5 * _bandwidth(W[ref_perm][:, ref_perm]) and bw < _bandwidth(W) / 3


def test_permuted_lsym_vs_laplacian(rng):
    W, _ = _knn_affinity(rng, n=400, k=5, components=2)
    W.data = rng.uniform(0.5, 2.0, W.nnz)
    W = sp.csr_matrix((W + W.T) / 2)
    W = sp.block_diag([W, sp.csr_matrix((1, 1))], format="csr")  # an isolated node
    n = W.shape[0]
    # a hub joined to 100 nodes (a row longer than the insertion-sort limit of 64)
    hub = sp.csr_matrix((np.ones(100), (np.zeros(100, int), np.arange(1, 101))), shape=(n, n))
    W = sp.csr_matrix(W + hub + hub.T)
    d = np.asarray(W.sum(axis=1)).ravel()
    perm = rng.permutation(n)
    # the second one has self-loops (folded into the diagonal)
    for A in (W, sp.csr_matrix(W + sp.diags(np.r_[rng.uniform(0, 1, n - 1), 0.0]))):
        dd = np.asarray(A.sum(axis=1)).ravel()
        ip, ix, val = geoml._core.permuted_lsym(A.indptr, A.indices, A.data, dd, perm, n_jobs=2)
        L = sp.csr_matrix((val, ix, ip), shape=(n, n))
        assert L.has_sorted_indices
        s = np.where(dd > 0, 1 / np.sqrt(np.where(dd > 0, dd, 1)), 0.0)
        ref = (sp.diags((dd > 0).astype(float)) - sp.diags(s) @ A @ sp.diags(s)).tocsr()
        ref = ref[perm][:, perm]
        assert abs(L - ref).max() < 1e-15
        assert L[np.flatnonzero(perm == n - 1)[0]].nnz == 0  # the isolated node: empty row
    np.testing.assert_allclose(
        _laplacian._null_space(geoml._core.rcm_components(W.indptr, W.indices)[1], 3, d).T
        @ (spectral.laplacian(W) @ np.eye(n)),
        0,
        atol=1e-12,
    )


def test_eigsh_result_object_and_reproducible(rng):
    A = sp.diags(np.arange(1.0, 301.0)).tocsr()
    r1 = geoml.eigsh(A, 5, which="SA", random_state=7)
    r2 = geoml.eigsh(A, 5, which="SA", random_state=7)
    np.testing.assert_array_equal(r1.eigenvectors, r2.eigenvectors)
    w, V = r1
    assert w is r1.eigenvalues and V is r1.eigenvectors
    assert isinstance(r1.n_iter, int) and r1.n_iter >= 1 and r1.converged
    assert r1.residual_norms.shape == (5,)
    v0 = np.ones(300)
    r3 = geoml.eigsh(A, 5, which="SA", v0=v0, tol=1e-6)
    np.testing.assert_allclose(r3.eigenvalues, [1, 2, 3, 4, 5], rtol=1e-6)


def test_eigsh_not_converged_warns(rng):
    W, _ = _knn_affinity(rng, n=2000, k=5)
    L = sp.csr_matrix(csgraph.laplacian(W, normed=True))
    with pytest.warns(RuntimeWarning, match="did not converge"):
        res = geoml.eigsh(L, 10, which="SA", max_iter=1, random_state=0)
    assert not res.converged
    assert res.eigenvalues.shape == (10,)
    assert np.any(res.residual_norms > 1e-10 * res.anorm)


def test_eigsh_bad_input():
    A = np.eye(10)
    with pytest.raises(ValueError, match="square"):
        geoml.eigsh(np.ones((4, 5)), 1)
    with pytest.raises(ValueError, match="square"):
        geoml.eigsh(sp.csr_matrix(np.ones((4, 5))), 1)
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.eigsh(np.triu(np.ones((6, 6))), 1)
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.eigsh(sp.csr_matrix(np.triu(np.ones((6, 6)))), 1)
    with pytest.raises(ValueError, match="k=10"):
        geoml.eigsh(A, 10)
    with pytest.raises(ValueError, match="k=0"):
        geoml.eigsh(A, 0)
    with pytest.raises(TypeError, match="k must be an integer"):
        geoml.eigsh(A, 2.5)
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        geoml.eigsh(bad, 1)
    with pytest.raises(ValueError, match="NaN"):
        geoml.eigsh(sp.csr_matrix(bad), 1)
    with pytest.raises(ValueError, match="which"):
        geoml.eigsh(A, 1, which="BE")
    with pytest.raises(ValueError, match="v0"):
        geoml.eigsh(A, 1, v0=np.ones(3))
    with pytest.raises(ValueError, match="tol"):
        geoml.eigsh(A, 1, tol=-1)
    with pytest.raises(TypeError, match="real"):
        geoml.eigsh(A.astype(complex), 1)
    with pytest.raises(ValueError, match="n >= 2"):
        geoml.eigsh(np.ones((1, 1)), 1)


# ----------------------------------------------------------------------------- laplacian


@pytest.mark.parametrize("kind,normed", [("symmetric", True), ("combinatorial", False)])
def test_laplacian_vs_scipy(rng, kind, normed):
    n = 60
    W = sp.random(n, n, density=0.1, random_state=np.random.RandomState(int(rng.integers(99))))
    W = sp.csr_matrix(W + W.T)
    W.setdiag(0)
    W.eliminate_zeros()
    L, d = geoml.laplacian(W, kind=kind, return_diag=True)
    ref = csgraph.laplacian(W.toarray(), normed=normed)
    np.testing.assert_allclose(L.toarray(), ref, atol=1e-12)
    np.testing.assert_allclose(d, np.asarray(W.sum(axis=1)).ravel())
    assert sp.isspmatrix_csr(L)


def test_laplacian_random_walk_and_isolated_nodes():
    W = np.zeros((5, 5))
    W[0, 1] = W[1, 0] = 2.0
    W[1, 2] = W[2, 1] = 1.0
    # nodes 3 and 4 are isolated
    d = W.sum(axis=1)
    Lrw = geoml.laplacian(sp.csr_matrix(W), kind="random_walk").toarray()
    expect = np.zeros((5, 5))
    expect[:3, :3] = np.eye(3) - W[:3, :3] / d[:3, None]
    np.testing.assert_allclose(Lrw, expect)
    Ls = geoml.laplacian(W, kind="symmetric").toarray()
    np.testing.assert_allclose(Ls, csgraph.laplacian(W, normed=True), atol=1e-14)
    assert np.all(Ls[3:] == 0) and np.all(Ls[:, 3:] == 0)
    Lc = geoml.laplacian(W, kind="combinatorial").toarray()
    assert np.all(Lc[3:] == 0)
    # zero has multiplicity = number of components (3) in every kind
    for L in (Lrw, Ls, Lc):
        assert np.sum(np.abs(np.linalg.eigvals(L)) < 1e-12) == 3
    # self-loops are ignored
    W2 = W + np.eye(5)
    np.testing.assert_allclose(geoml.laplacian(W2).toarray(), Ls)
    # float32 stays float32
    assert geoml.laplacian(sp.csr_matrix(W, dtype=np.float32)).dtype == np.float32


def test_laplacian_bad_input():
    with pytest.raises(ValueError, match="kind"):
        geoml.laplacian(np.eye(3), kind="normalized")
    with pytest.raises(ValueError, match="negative"):
        geoml.laplacian(sp.csr_matrix(-np.ones((3, 3))))
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.laplacian(sp.csr_matrix(np.triu(np.ones((3, 3)))))
    with pytest.raises(ValueError, match="square"):
        geoml.laplacian(sp.csr_matrix(np.ones((3, 4))))
    with pytest.raises(ValueError, match="NaN"):
        geoml.laplacian(sp.csr_matrix(np.full((3, 3), np.nan)))


# ----------------------------------------------------------------------------- estimators


def _match_up_to_sign(A, B, atol):
    for j in range(A.shape[1]):
        a, b = A[:, j], B[:, j]
        s = np.sign(a @ b) or 1.0
        np.testing.assert_allclose(a, s * b, atol=atol * np.abs(b).max())


def test_laplacian_eigenmap_matches_sklearn(rng):
    from sklearn.manifold import spectral_embedding

    X = swiss_roll(800, seed=int(rng.integers(1000)), dtype=np.float64)[0]
    emb = geoml.LaplacianEigenmap(n_components=3, n_neighbors=10, random_state=0)
    Y = emb.fit_transform(X)
    W = emb.affinity_matrix_
    ref = spectral_embedding(W, n_components=3, drop_first=True, random_state=0, eigen_tol=1e-12)
    assert Y.shape == (800, 3)
    _match_up_to_sign(Y, ref, atol=1e-5)
    w_all = np.linalg.eigvalsh(geoml.laplacian(W).toarray())
    np.testing.assert_allclose(emb.eigenvalues_, w_all[1:4], atol=1e-9)
    assert emb.n_components_found_ == 1


@pytest.mark.parametrize("affinity", ["adaptive", "precomputed"])
def test_laplacian_eigenmap_affinities(rng, affinity):
    from sklearn.manifold import spectral_embedding

    X = rng.normal(size=(300, 4))
    if affinity == "precomputed":
        X = geoml.knn_graph(X, 8, kernel="gaussian")
        W = X
    else:
        W = geoml.knn_graph(X, 12, kernel="adaptive")
    emb = geoml.LaplacianEigenmap(2, n_neighbors=12, affinity=affinity, random_state=0).fit(X)
    ref = spectral_embedding(W, n_components=2, random_state=0, eigen_tol=1e-12)
    _match_up_to_sign(emb.embedding_, ref, atol=1e-5)


def _same_fit(a, b):
    """Two fitted spectral estimators with bit-identical results."""
    for name in ("embedding_", "eigenvalues_", "labels_"):
        if hasattr(a, name):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    Wa, Wb = a.affinity_matrix_, b.affinity_matrix_
    assert Wa.dtype == Wb.dtype
    for f in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(Wa, f), getattr(Wb, f), err_msg=f)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimators_dense_precomputed_affinity(seed):
    """A dense ``affinity="precomputed"`` matrix is accepted (it was a TypeError) as
    scikit-learn's ``SpectralEmbedding``/``SpectralClustering`` and geoml's HeatGeo/PHATE
    accept it: the same results, bit for bit, as the same matrix given sparse (diagonal
    included, float32 kept), the caller's array untouched, and the subspace / labels of
    scikit-learn's estimators on the same dense affinity."""
    from sklearn.base import clone
    from sklearn.cluster import SpectralClustering as SkSC
    from sklearn.datasets import make_blobs
    from sklearn.manifold import SpectralEmbedding
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    W = geoml.knn_graph(rng.normal(size=(240, 3)), 10, kernel="gaussian").tocsr()
    W = sp.csr_matrix(W + sp.diags(np.full(240, 0.5)))  # a diagonal, ignored on both paths
    D = W.toarray()
    D0 = D.copy()
    for dtype, tol in ((np.float64, None), (np.float32, 1e-6)):
        Wd, Dd = W.astype(dtype), D.astype(dtype)
        for est in (
            geoml.LaplacianEigenmap(2, affinity="precomputed", tol=tol, random_state=seed),
            geoml.DiffusionMap(2, affinity="precomputed", alpha=0.5, tol=tol, random_state=seed),
            geoml.SpectralClustering(3, affinity="precomputed", tol=tol, random_state=seed),
        ):
            _same_fit(clone(est).fit(Dd), clone(est).fit(Wd))
    np.testing.assert_array_equal(D, D0)
    le = geoml.LaplacianEigenmap(2, affinity="precomputed", random_state=seed).fit(D)
    ref = SpectralEmbedding(2, affinity="precomputed", random_state=seed).fit(D).embedding_
    assert np.max(subspace_angles(le.embedding_, ref)) < 1e-6
    # DiffusionMap against the dense eigendecomposition of the same kernel (alpha = 0.5)
    dm = geoml.DiffusionMap(2, affinity="precomputed", alpha=0.5, random_state=seed).fit(D)
    K = D - np.diag(np.diag(D))
    q = K.sum(1)
    Ka = K / np.sqrt(np.outer(q, q))
    d = Ka.sum(1)
    mu, U = np.linalg.eigh(Ka / np.sqrt(np.outer(d, d)))
    mu, U = mu[::-1], U[:, ::-1]
    psi = U / np.sqrt(d)[:, None] * np.sqrt(d.sum())
    np.testing.assert_allclose(dm.eigenvalues_, mu[1:3], rtol=1e-9)
    _match_up_to_sign(dm.embedding_, psi[:, 1:3] * mu[1:3], atol=1e-6)
    # SpectralClustering: scikit-learn's labels on the same dense affinity of three blobs
    X, _ = make_blobs(n_samples=240, centers=3, cluster_std=0.7, random_state=seed)
    B = geoml.knn_graph(X, 10, kernel="gaussian").toarray()
    sc = geoml.SpectralClustering(3, affinity="precomputed", random_state=seed).fit(B)
    with warnings.catch_warnings():  # scikit-learn's, on blobs far apart
        warnings.filterwarnings("ignore", "Graph is not fully connected", UserWarning)
        sk = SkSC(3, affinity="precomputed", random_state=seed).fit(B).labels_
    assert adjusted_rand_score(sk, sc.labels_) == 1.0
    _same_fit(sc, clone(sc).fit(sp.csr_matrix(B)))


def test_estimators_dense_precomputed_affinity_bad_input():
    """A dense precomputed affinity is validated as a sparse one is."""
    rng = np.random.default_rng(0)
    A = rng.random((20, 20))
    A = A + A.T
    asym = A.copy()
    asym[0, 1] += 1.0
    neg = A.copy()
    neg[2, 3] = neg[3, 2] = -1.0
    nan = A.copy()
    nan[4, 5] = nan[5, 4] = np.nan
    for cls in (geoml.LaplacianEigenmap, geoml.DiffusionMap, geoml.SpectralClustering):
        est = cls(2, affinity="precomputed")
        with pytest.raises(ValueError, match="square"):
            est.fit(A[:, :5])
        with pytest.raises(ValueError, match="not symmetric"):
            est.fit(asym)
        with pytest.raises(ValueError, match="negative"):
            est.fit(neg)
        with pytest.raises(ValueError, match="NaN"):
            est.fit(nan)
        with pytest.raises(TypeError, match="real numbers"):
            est.fit(A.astype(complex))
        with pytest.raises(TypeError, match="affinity matrix"):
            est.fit(None)
        # a list of lists is an array-like too, as for scikit-learn
        np.testing.assert_array_equal(
            cls(2, affinity="precomputed", random_state=0).fit(A.tolist()).affinity_matrix_.data,
            cls(2, affinity="precomputed", random_state=0)
            .fit(sp.csr_matrix(A))
            .affinity_matrix_.data,
        )


def test_laplacian_eigenmap_disconnected_warns(rng):
    _, X = _knn_affinity(rng, n=200, components=2)
    with pytest.warns(UserWarning, match="2 connected components"):
        emb = geoml.LaplacianEigenmap(2, n_neighbors=5, random_state=0).fit(X)
    assert emb.n_components_found_ == 2
    assert emb.eigenvalues_[0] == 0


def test_diffusion_map_disconnected_warns(rng):
    """On a disconnected graph the eigenvalue 1 of the Markov matrix is repeated and the
    first diffusion coordinates are component indicators: DiffusionMap warns, as
    LaplacianEigenmap does (it was silent), and its pairs are still eigenpairs of P."""
    _, X = _knn_affinity(rng, n=200, components=2)
    with pytest.warns(UserWarning, match="2 connected components"):
        dm = geoml.DiffusionMap(2, n_neighbors=5, random_state=0).fit(X)
    K = dm.affinity_matrix_.toarray()
    q = K.sum(1)
    Ka = K / np.outer(q, q)
    P = Ka / Ka.sum(1)[:, None]
    mu = np.linalg.eigvalsh(Ka / np.sqrt(np.outer(Ka.sum(1), Ka.sum(1))))[::-1]
    np.testing.assert_allclose(dm.eigenvalues_, mu[1:3], atol=1e-10)
    assert dm.eigenvalues_[0] == pytest.approx(1.0, abs=1e-10)
    Y = dm.embedding_
    np.testing.assert_allclose(P @ Y, Y * dm.eigenvalues_, atol=1e-7 * np.abs(Y).max())
    # connected: no warning
    geoml.DiffusionMap(2, n_neighbors=10, random_state=0).fit(X[:100])


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("scale", [1e-160, 2.0**-1000, 1e200, 1e300])
def test_diffusion_map_of_a_precomputed_affinity_at_any_scale(rng, alpha, scale):
    """The diffusion map does not depend on the scale of the affinity, but the
    alpha-normalised kernel does (as q^(1 - 2 alpha)): an affinity of 1e-160 raised
    "lanczos: no start vector orthogonal to the deflation space", one of 1e200 gave a wrong
    embedding with a warning of 250 connected components (alpha = 1)."""
    X = rng.normal(size=(250, 3))
    K = geoml.DiffusionMap(n_neighbors=10).fit(X).affinity_matrix_
    kw = dict(n_components=3, alpha=alpha, affinity="precomputed", random_state=0)
    ref = geoml.DiffusionMap(**kw).fit(K)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "connected components" warning
        dm = geoml.DiffusionMap(**kw).fit(K * scale)
    np.testing.assert_allclose(dm.eigenvalues_, ref.eigenvalues_, rtol=1e-10)
    _match_up_to_sign(dm.embedding_, ref.embedding_, atol=1e-8)
    assert (dm.affinity_matrix_ != K * scale).nnz == 0


@pytest.mark.parametrize("alpha,t", [(0.0, 1), (0.5, 2), (1.0, 3)])
def test_diffusion_map_vs_dense(rng, alpha, t):
    X = rng.normal(size=(250, 3))
    dm = geoml.DiffusionMap(n_components=3, n_neighbors=10, alpha=alpha, t=t, random_state=0)
    Y = dm.fit_transform(X)
    K = dm.affinity_matrix_.toarray()
    q = K.sum(1)
    Ka = K / np.outer(q**alpha, q**alpha)
    d = Ka.sum(1)
    S = Ka / np.sqrt(np.outer(d, d))
    mu, U = np.linalg.eigh(S)
    mu, U = mu[::-1], U[:, ::-1]
    psi = U / np.sqrt(d)[:, None] * np.sqrt(d.sum())
    np.testing.assert_allclose(dm.eigenvalues_, mu[1:4], rtol=1e-9)
    _match_up_to_sign(Y, psi[:, 1:4] * mu[1:4] ** t, atol=1e-6)
    # psi_0 is constant 1 and the Markov matrix has the right eigenpairs
    P = Ka / d[:, None]
    psi1 = Y[:, 0] / mu[1] ** t
    np.testing.assert_allclose(P @ psi1, mu[1] * psi1, atol=1e-7 * np.abs(psi1).max())


def test_spectral_clustering_blobs():
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    for seed in range(3):
        X, y = make_blobs(
            n_samples=600, centers=5, cluster_std=0.6, random_state=seed, center_box=(-20, 20)
        )
        sc = geoml.SpectralClustering(5, n_neighbors=10, random_state=seed).fit(X)
        assert adjusted_rand_score(y, sc.labels_) == 1.0
        assert sc.labels_.dtype == np.int64 and sc.embedding_.shape == (600, 5)


def test_spectral_clustering_circles():
    from sklearn.datasets import make_circles
    from sklearn.metrics import adjusted_rand_score

    for seed in range(3):
        X, y = make_circles(n_samples=800, factor=0.4, noise=0.04, random_state=seed)
        lab = geoml.SpectralClustering(2, n_neighbors=10, random_state=seed).fit_predict(X)
        assert adjusted_rand_score(y, lab) == 1.0


def test_kmeans_core_matches_sklearn_inertia(rng):
    from sklearn.cluster import KMeans

    X = np.vstack([rng.normal(size=(100, 3)) + 6 * c for c in range(4)])
    lab, centers, inertia, _ = geoml._core.kmeans(
        X, k=4, n_init=5, max_iter=300, tol=1e-8, seed=0, n_jobs=0
    )
    ref = KMeans(4, n_init=5, random_state=0).fit(X)
    np.testing.assert_allclose(inertia, ref.inertia_, rtol=1e-6)
    np.testing.assert_allclose(inertia, ((X - centers.reshape(4, 3)[lab]) ** 2).sum(), rtol=1e-10)


def test_estimators_bad_input(rng):
    X = rng.normal(size=(50, 3))
    with pytest.raises(ValueError, match="affinity"):
        geoml.LaplacianEigenmap(affinity="rbf").fit(X)
    with pytest.raises(ValueError, match="square"):
        geoml.LaplacianEigenmap(affinity="precomputed").fit(X)
    with pytest.warns(UserWarning, match="n_neighbors=50 is larger than the dataset size"):
        assert geoml.LaplacianEigenmap(n_neighbors=50).fit(X).n_neighbors_ == 49
    with pytest.raises(ValueError, match="n_components"):
        geoml.LaplacianEigenmap(n_components=49, n_neighbors=5).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        geoml.LaplacianEigenmap().fit(np.full((20, 2), np.nan))
    with pytest.raises(ValueError, match="alpha"):
        geoml.DiffusionMap(alpha=2).fit(X)
    with pytest.raises(ValueError, match="t="):
        geoml.DiffusionMap(t=-1).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        geoml.SpectralClustering(0).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        geoml.SpectralClustering(len(X)).fit(X)
    with pytest.raises(ValueError, match="n_init"):
        geoml.SpectralClustering(2, n_neighbors=5, n_init=0).fit(X)


def test_demo_eigenmap_stage(tmp_path, capsys):
    from geoml.demo import run_demo

    out = tmp_path / "eigenmap.png"
    stats = run_demo(n=600, k=10, seed=0, plot=str(out))
    assert stats["eigenmap_roll_corr"] > 0.9
    assert len(stats["eigenmap_eigenvalues"]) == 2
    assert "[LaplacianEigenmap]" in capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not out.exists()
    else:
        assert out.stat().st_size > 0


def _vcycle_ref(levels, i, B):
    """float64 NumPy V(1,1)-cycle from X = 0 (the reference for _core.AmgCycle)."""
    lev = levels[i]
    if i == len(levels) - 1:
        return lev.pinv @ B
    X = lev.jac[:, None] * B
    Xc = _vcycle_ref(levels, i + 1, lev.R @ (B - lev.A @ X))
    X = X + lev.P @ Xc
    return X + lev.jac[:, None] * (B - lev.A @ X)


@pytest.mark.parametrize("m", [1, 5, 8, 19, 37])
def test_amg_cycle_matches_float64_reference(rng, monkeypatch, m):
    monkeypatch.setattr(_amg, "_AMG_MAX_COARSE", 60)
    W, _ = _knn_affinity(rng, n=1500, d=2, k=6)
    L = geoml.laplacian(W)
    b = np.sqrt(np.asarray(W.sum(axis=1)).ravel())
    levels = _amg._amg_hierarchy(L, b)
    assert len(levels) >= 3
    cyc = _amg._amg_cycle(levels)
    assert cyc.n_levels == len(levels)
    for start in (0, 1, len(levels) - 1):
        B = rng.normal(size=(levels[start].A.shape[0], m))
        ref = _vcycle_ref(levels, start, B)
        X = cyc.apply(start, B, cycles=1, n_jobs=0)
        np.testing.assert_allclose(X, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
        # two cycles: X1 + cycle(B - A X1)
        ref2 = ref + _vcycle_ref(levels, start, B - levels[start].A @ ref)
        X2 = cyc.apply(start, B, cycles=2, n_jobs=1)
        np.testing.assert_allclose(X2, ref2, rtol=0, atol=1e-4 * np.abs(ref2).max())
    with pytest.raises(ValueError, match="B must be"):
        cyc.apply(0, np.ones((7, 2)), cycles=1, n_jobs=0)
    with pytest.raises(ValueError, match="cycles"):
        cyc.apply(0, np.ones((levels[0].A.shape[0], 2)), cycles=0, n_jobs=0)


def test_spectral_clustering_one_cluster():
    # scikit-learn's SpectralClustering accepts n_clusters=1 (its estimator checks use it):
    # every point in cluster 0; the embedding is the trivial eigenvector (eigenvalue 0), which
    # in the embedding's D^-1/2 scaling is constant.
    X, _ = swiss_roll(300, noise=0.0)
    sc = geoml.SpectralClustering(1, n_neighbors=8, random_state=0).fit(X)
    assert sc.labels_.shape == (300,) and not sc.labels_.any()
    assert sc.embedding_.shape == (300, 1)
    np.testing.assert_allclose(sc.eigenvalues_, [0.0], atol=1e-8)
    e = sc.embedding_[:, 0]
    np.testing.assert_allclose(e, np.full(300, e[0]), rtol=1e-10)
    assert abs(e[0]) > 0


def test_estimators_identical_components_repeated_eigenvalues():
    """LaplacianEigenmap and DiffusionMap on a graph of three identical components: every
    eigenvalue is repeated three times, and all copies are found (the deflated check after
    the Lanczos solver; before it, the smallest non-zero one came once, then the next ones)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 3))
    G = geoml.knn_graph(X, 8, mode="connectivity")
    W = sp.block_diag([G] * 3, format="csr")
    ref = np.linalg.eigvalsh(csgraph.laplacian(W.toarray(), normed=True))
    for seed in range(2):
        with pytest.warns(UserWarning, match="components"):
            le = geoml.LaplacianEigenmap(5, affinity="precomputed", random_state=seed).fit(W)
        np.testing.assert_allclose(le.eigenvalues_, ref[1:6], atol=1e-8)
        with pytest.warns(UserWarning, match="3 connected components"):
            dm = geoml.DiffusionMap(5, affinity="precomputed", alpha=0.0, random_state=seed)
            dm.fit(W)
        np.testing.assert_allclose(dm.eigenvalues_, 1.0 - ref[1:6], atol=1e-8)


@pytest.mark.parametrize("layout", ["duplicates", "explicit_zeros", "unsorted"])
def test_sparse_input_left_as_it_was(layout):
    """A non-canonical CSR input (duplicate entries, explicit zeros, unsorted columns) is not
    modified: before, ``sum_duplicates`` / ``eliminate_zeros`` ran on arrays shared with the
    caller's matrix, which was left with ``indptr[-1] < len(data)`` (``A.tocoo()`` then read
    uninitialised memory); the results equal those of the canonical matrix."""
    rng = np.random.default_rng(0)
    G = geoml.knn_graph(rng.standard_normal((60, 2)), 5, mode="connectivity")
    coo = G.tocoo()
    r, c, v = coo.row, coo.col, coo.data
    if layout == "duplicates":
        r, c, v = np.r_[r, r], np.r_[c, c], np.r_[v / 2, v / 2]
    elif layout == "explicit_zeros":
        i, j = np.arange(60), (np.arange(60) + 29) % 60
        keep = G[i, j].A1 == 0
        r, c, v = (
            np.r_[r, i[keep], j[keep]],
            np.r_[c, j[keep], i[keep]],
            np.r_[v, 0 * i[keep], 0 * i[keep]],
        )
    order = np.lexsort((-c, r))  # columns descending within each row
    indptr = np.r_[0, np.cumsum(np.bincount(r, minlength=60))].astype(np.int32)
    x = rng.standard_normal(60)
    calls = {
        "eigsh": lambda A: geoml.eigsh(A, 3, random_state=0)[0],
        "laplacian": lambda A: geoml.laplacian(A).toarray(),
        "laplacian_eigsh": lambda A: geoml.laplacian_eigsh(A, 4, random_state=0)[0],
        "spectral_embedding": lambda A: geoml.spectral_embedding(A, 2, random_state=0),
        "heat_kernel": lambda A: geoml.heat_kernel(A, x, 1.0),
        "trace_function": lambda A: (
            # (12 steps: 8 left the quadrature unsettled, flagged since session 32)
            geoml.trace_function(A, "exp", n_probes=8, n_steps=12, random_state=0).value
        ),
        "LaplacianEigenmap": lambda A: (
            geoml.LaplacianEigenmap(2, affinity="precomputed", random_state=0).fit(A).embedding_
        ),
        "PHATE": lambda A: (
            geoml.PHATE(affinity="precomputed", n_landmark=None, random_state=0).fit(A).distances_
        ),
        "sinkhorn_symmetric": lambda A: geoml.ot.sinkhorn_symmetric(A, return_plan=False).scaling,
    }
    for name, call in calls.items():
        A = sp.csr_matrix(
            (v[order].copy(), c[order].astype(np.int32), indptr.copy()), shape=(60, 60)
        )
        before = [a.copy() for a in (A.data, A.indices, A.indptr)]
        got = call(A)
        for a, b in zip((A.data, A.indices, A.indptr), before):
            np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_allclose(got, call(sp.csr_matrix(G)), atol=1e-10, err_msg=name)
