"""The GPU Lanczos solver (python/geoml/spectral/_gpu_lanczos.py) and the CSR SpMV kernel.

The solver is written against an array module: tests without the ``gpu`` marker run it with
NumPy on the host (same code path as on the device, minus CuPy), ``gpu`` tests run it with CuPy
and the geoml._cuda SpMV kernel and compare with float64 references.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from geoml.spectral._gpu_lanczos import lanczos


def laplacian_like(n, seed, dtype=np.float64):
    """Symmetric sparse test matrix: normalised adjacency of a random sparse graph plus a
    diagonal, with a spread spectrum and a few clustered eigenvalues."""
    g = np.random.default_rng(seed)
    W = sp.random(n, n, density=8 / n, random_state=seed, format="csr")
    W = W + W.T
    d = np.asarray(W.sum(1)).ravel() + 1.0
    Dm = sp.diags(1 / np.sqrt(d))
    A = Dm @ W @ Dm + sp.diags(g.uniform(0, 0.1, n))
    return sp.csr_matrix(A, dtype=dtype)


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
@pytest.mark.parametrize("k", [1, 5])
def test_host_lanczos_matches_eigh(rng, which, k):
    n = 300
    A = laplacian_like(n, int(rng.integers(1000)))
    ref = np.linalg.eigvalsh(A.toarray())
    key = {"LA": -ref, "SA": ref, "LM": -np.abs(ref)}[which]
    want = np.sort(ref[np.argsort(key, kind="stable")[:k]])
    w, V, n_iter, res, conv, n_mv, anorm = lanczos(
        lambda x: A @ x, n, k, which=which, tol=1e-10, seed=1, xp=np
    )
    assert conv and n_iter >= 1 and n_mv > 0
    np.testing.assert_allclose(w, want, rtol=1e-8, atol=1e-9)
    assert V.shape == (n, k)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-8)
    R = A @ V - V * w
    np.testing.assert_allclose(np.linalg.norm(R, axis=0), res, rtol=1e-6, atol=1e-12)
    assert (res <= 1e-10 * anorm * 10).all()
    assert anorm == pytest.approx(np.abs(ref).max(), rel=1e-6)


def test_host_lanczos_float32_and_restarts():
    n = 400
    A = laplacian_like(n, 7, np.float32)
    ref = np.linalg.eigvalsh(A.toarray().astype(np.float64))
    w, V, n_iter, res, conv, _, _ = lanczos(
        lambda x: A @ x, n, 4, which="LA", tol=1e-5, ncv=10, seed=3, xp=np, dtype=np.float32
    )
    assert conv and n_iter > 1  # ncv=10 forces thick restarts
    assert V.dtype == np.float32
    np.testing.assert_allclose(w, ref[-4:], rtol=1e-4, atol=1e-5)


def test_host_lanczos_invariant_subspace_and_small_n():
    A = sp.diags(np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0]), format="csr")  # repeated eigenvalues
    w, V, _, res, conv, _, _ = lanczos(lambda x: A @ x, 6, 2, which="SA", tol=1e-12, seed=0, xp=np)
    assert conv
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-10)
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-10)


def test_host_lanczos_not_converged_flag():
    A = laplacian_like(500, 2)
    out = lanczos(lambda x: A @ x, 500, 6, which="SA", tol=1e-14, max_iter=1, ncv=8, seed=0, xp=np)
    assert out[4] is False and out[2] == 1


def test_host_lanczos_bad_arguments():
    A = sp.eye(5, format="csr")
    with pytest.raises(ValueError, match="which"):
        lanczos(lambda x: A @ x, 5, 1, which="BE", xp=np)
    with pytest.raises(ValueError, match="k=5"):
        lanczos(lambda x: A @ x, 5, 5, xp=np)


def _planted(n, vals, seed):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    A = (Q * vals) @ Q.T
    return (A + A.T) / 2


@pytest.mark.parametrize("mult", [2, 3, 5, 8])
@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_host_lanczos_deflated_check_finds_multiplicity(mult, which):
    """The GPU eigsh's check (check_lanczos_result: the CPU solver's deflated block check,
    array-module generic) run with NumPy: single-vector Lanczos returns one copy of an
    eigenvalue planted ``mult`` times; the check adds the others, with true residuals."""
    from geoml.spectral._gpu_lanczos import check_lanczos_result

    n = 90
    rng = np.random.default_rng(mult)
    vals = rng.uniform(-1, 1, n)
    vals[:mult] = {"LA": 3.0, "SA": -3.0, "LM": -3.0}[which]
    if which == "LM":
        vals[mult] = 2.5
    A = _planted(n, vals, mult)
    k = mult + 2
    ref = np.linalg.eigvalsh(A)
    key = {"LA": -ref, "SA": ref, "LM": -np.abs(ref)}[which]
    want = np.sort(ref[np.argsort(key, kind="stable")[:k]])
    tol = 1e-10
    lanczos_found = []
    for seed in range(3):
        out = lanczos(lambda x: A @ x, n, k, which=which, tol=tol, seed=seed, xp=np)
        n_found = int(np.sum(np.abs(np.abs(out[0]) - 3.0) < 1e-8))
        lanczos_found.append(n_found)
        (w, V, _, res, conv, n_mv, anorm), report = check_lanczos_result(
            out, lambda X: A @ X, n, k, which, tol, seed, 4, 20, 1000
        )
        assert report.passed and conv
        assert report.n_added >= mult - n_found  # what Lanczos missed was added
        assert n_mv > out[5] and report.miss_gap < np.inf
        np.testing.assert_allclose(w, want, atol=1e-9)
        np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-9)
        R = A @ V - V * w
        np.testing.assert_allclose(np.linalg.norm(R, axis=0), res, rtol=1e-6, atol=1e-12)
        assert (res <= tol * anorm).all()
    if mult == 8:  # the case the check is for: Lanczos alone missed copies
        assert min(lanczos_found) < mult


def test_host_lanczos_check_skipped_when_out_of_restarts():
    from geoml.spectral._gpu_lanczos import check_lanczos_result

    A = laplacian_like(500, 2)
    out = lanczos(lambda x: A @ x, 500, 6, which="SA", tol=1e-14, max_iter=1, ncv=8, seed=0, xp=np)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        out2, report = check_lanczos_result(out, lambda X: A @ X, 500, 6, "SA", 1e-14, 0, 4, 20, 1)
    assert report is None and out2 is out and out2[4] is False


# ------------------------------------------------------------------ device tests
def cupy_modules():
    import cupy
    import cupyx.scipy.sparse as csp

    return cupy, csp


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index64", [False, True])
def test_gpu_spmv_kernel(dtype, index64):
    cp, csp = cupy_modules()
    from geoml import _gpu

    mod = _gpu.cuda_module()
    A = laplacian_like(1000, 3, dtype)
    A.indices = A.indices.astype(np.int64 if index64 else np.int32)
    A.indptr = A.indptr.astype(np.int64 if index64 else np.int32)
    x = np.random.default_rng(0).normal(size=1000).astype(dtype)
    d = {
        k: cp.asarray(v)
        for k, v in {"indptr": A.indptr, "indices": A.indices, "data": A.data, "x": x}.items()
    }
    y = cp.empty(1000, dtype=dtype)
    p = _gpu.device_pointer
    mod.csr_spmv(
        1000,
        p(d["indptr"]),
        p(d["indices"]),
        p(d["data"]),
        p(d["x"]),
        p(y),
        0,
        cp.cuda.get_current_stream().ptr,
        dtype=np.dtype(dtype),
        index_dtype=A.indptr.dtype,
    )
    np.testing.assert_allclose(
        y.get(), A @ x, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6
    )


@pytest.mark.gpu
@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_gpu_eigsh_sparse_float64(which):
    cp, csp = cupy_modules()
    from geoml.spectral._gpu_lanczos import eigsh

    A = laplacian_like(2000, 5)
    ref = np.linalg.eigvalsh(A.toarray())
    key = {"LA": -ref, "SA": ref, "LM": -np.abs(ref)}[which]
    want = np.sort(ref[np.argsort(key, kind="stable")[:6]])
    w, V, n_iter, res, conv, n_mv, anorm = eigsh(csp.csr_matrix(A), 6, which=which, random_state=0)
    assert conv and isinstance(V, cp.ndarray)
    np.testing.assert_allclose(w.get(), want, rtol=1e-6, atol=1e-9)
    Vh = V.get()
    np.testing.assert_allclose(Vh.T @ Vh, np.eye(6), atol=1e-8)
    assert (res.get() <= 1e-9 * anorm).all()


@pytest.mark.gpu
def test_gpu_eigsh_dense_and_float32():
    cp, csp = cupy_modules()
    from geoml.spectral._gpu_lanczos import eigsh

    A = laplacian_like(500, 9)
    ref = np.linalg.eigvalsh(A.toarray())
    w, V, *_ = eigsh(cp.asarray(A.toarray()), 3, which="LA", random_state=1)
    np.testing.assert_allclose(w.get(), ref[-3:], rtol=1e-6)
    w, V, _, _, conv, _, _ = eigsh(csp.csr_matrix(A.astype(np.float32)), 3, random_state=1)
    assert conv and V.dtype == np.float32
    np.testing.assert_allclose(w.get(), ref[-3:], rtol=1e-4)


@pytest.mark.gpu
def test_gpu_eigsh_bad_input():
    cp, csp = cupy_modules()
    from geoml.spectral._gpu_lanczos import eigsh

    with pytest.raises(ValueError, match="symmetric"):
        eigsh(cp.asarray(np.triu(np.ones((5, 5)))), 1)
    with pytest.raises(ValueError, match="square"):
        eigsh(cp.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="which"):
        eigsh(cp.eye(4), 1, which="XX")
    with pytest.raises(TypeError, match="CuPy"):
        eigsh(np.eye(4), 1)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        out = eigsh(
            csp.csr_matrix(laplacian_like(800, 1)), 6, which="SA", tol=1e-14, max_iter=1, ncv=8
        )
    assert out[4] is False


@pytest.mark.gpu
def test_public_eigsh_dispatches_to_gpu_and_matches_cpu():
    cp, csp = cupy_modules()
    import geoml

    A = laplacian_like(1500, 3)
    cpu = geoml.eigsh(A, 5, which="LA", random_state=0)
    gpu = geoml.eigsh(csp.csr_matrix(A), 5, which="LA", random_state=0)
    assert isinstance(gpu.eigenvalues, cp.ndarray) and gpu.converged
    np.testing.assert_allclose(gpu.eigenvalues.get(), cpu.eigenvalues, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("sparse", [False, True])
def test_gpu_eigsh_multiplicity_check(sparse):
    """geoml.eigsh on the device runs the deflated block check: every copy of an eigenvalue
    planted 5 times is returned (single-vector Lanczos alone sees one)."""
    cp, csp = cupy_modules()
    import geoml

    n = 200
    vals = np.random.default_rng(0).uniform(-1, 1, n)
    vals[:5] = 3.0
    A = _planted(n, vals, 1)
    Ad = csp.csr_matrix(cp.asarray(A)) if sparse else cp.asarray(A)
    for seed in range(3):
        r = geoml.eigsh(Ad, 7, which="LA", tol=1e-10, random_state=seed)
        assert r.converged and r.check_passed
        assert isinstance(r.eigenvectors, cp.ndarray)
        np.testing.assert_allclose(r.eigenvalues.get(), np.linalg.eigvalsh(A)[-7:], atol=1e-9)
        assert int(np.sum(np.abs(r.eigenvalues.get() - 3.0) < 1e-8)) == 5
