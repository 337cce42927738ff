"""The same ``random_state`` gives the same bits for any thread count: geoml's OpenMP threads
(``n_jobs``) and BLAS's own (``OPENBLAS_NUM_THREADS``, in subprocesses: BLAS reads it once).

A multi-threaded OpenBLAS GEMM (and the LAPACK built on it) splits its work by its thread
count, which on its Haswell kernels (AMD Zen, ``OPENBLAS_CORETYPE=Haswell``) changes the last
bits; the functions below hold BLAS to one thread (threadpoolctl) and run their large
products as fixed blocks on geoml's threads. Per-family n_jobs tests live in the family files
(``test_estimators.py::test_same_seed_same_result_for_one_and_two_threads`` and others); the
cases here are the ones the session-28 sweep found (``CHANGELOG.md``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import geoml

pytest.importorskip("threadpoolctl")

# each case: code that sets `out` (a dict of arrays) from small, BLAS-free inputs
_PRELUDE = """
import sys, numpy as np, scipy.sparse as sp, geoml
from geoml.demo import swiss_roll
rng = np.random.default_rng(0)
Xf = swiss_roll({n}, seed=1)[0]  # float32
X = Xf.astype(np.float64)
"""

_CASES = {
    "randomized_svd dense": (
        1500,
        "A = np.einsum('ik,kj->ij', rng.normal(size=(1500, 30)), rng.normal(size=(30, 800)))\n"
        "out = geoml.randomized_svd(A, 10, random_state=3)._asdict()",
    ),
    "randomized_svd float32": (
        1500,
        "A = np.einsum('ik,kj->ij', rng.normal(size=(1500, 30)), rng.normal(size=(30, 800)))\n"
        "out = geoml.randomized_svd(A.astype(np.float32), 10, random_state=3)._asdict()",
    ),
    "randomized_svd sparse": (
        10,
        "A = sp.random(3000, 1500, density=0.03, random_state=3, format='csr')\n"
        "out = geoml.randomized_svd(A, 10, random_state=3)._asdict()",
    ),
    "diffusion_spectral_entropy exact": (
        1000,
        "out = {'H': geoml.diffusion_spectral_entropy(X, method='exact').value}",
    ),
    "diffusion_spectral_mutual_information": (
        900,
        "out = {'I': geoml.diffusion_spectral_mutual_information(X, np.arange(900) % 3,"
        " discrete=True, random_state=0).value}",
    ),
    "von_neumann_entropy exact": (
        1000,
        "W = geoml.knn_graph(swiss_roll(1000, seed=2)[0], 10, mode='connectivity')\n"
        "out = {'H': geoml.von_neumann_entropy(W, graph=True, method='exact').value}",
    ),
    "phate von_neumann_entropy": (
        10,
        "P = rng.random((300, 300)) + np.eye(300)\nP /= P.sum(1, keepdims=True)\n"
        "from geoml.diffusion import von_neumann_entropy\n"
        "out = {'h': von_neumann_entropy(P, 20)}",
    ),
    "MDS landmarks": (
        2000,
        "m = geoml.MDS(2, landmarks=100, max_iter=50, random_state=4).fit(X)\n"
        "out = {'Y': m.embedding_, 's': m.stress_}",
    ),
    "magnitude cholesky": (
        1000,
        "out = {'w': geoml.measures.weighting_vector(X, t=1.0, method='cholesky')}",
    ),
    "trace_function dense": (
        600,
        "D = np.sqrt(((Xf[:, None] - Xf[None]) ** 2).sum(-1))\n"
        "out = geoml.trace_function(D / D.max(), 'exp', random_state=3)._asdict()",
    ),
}


def _run(case: str, blas: int, tmp_path) -> dict:
    n, body = _CASES[case]
    path = tmp_path / f"out{blas}.npz"
    code = (
        _PRELUDE.format(n=n)
        + body
        + "\nnp.savez(sys.argv[1], **{k: np.asarray(v) for k, v in out.items()"
        " if isinstance(v, (np.ndarray, float, int, np.floating))})\n"
    )
    env = dict(
        os.environ,
        OPENBLAS_NUM_THREADS=str(blas),
        OMP_NUM_THREADS="1",
        GEOML_LOAD_AWARE="0",
        PYTHONWARNINGS="ignore",
    )
    subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True, timeout=120)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_same_bits_for_one_and_two_blas_threads(case, tmp_path):
    """Each case gave other bits with OPENBLAS_NUM_THREADS=1 and 2 before session 28 (the
    sweep's sizes, or smaller ones that still differed)."""
    one, two = _run(case, 1, tmp_path), _run(case, 2, tmp_path)
    assert one.keys() == two.keys() and one
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=f"{case}: {k}")


def test_kmeans_inertia_same_bits_for_any_thread_count():
    """SpectralClustering's k-means inertia was an OpenMP reduction (per-thread partial sums:
    2.3e-15 relative between 1 and 2 threads at n = 2,000), and it picks the best of the
    ``n_init`` runs; now summed in row order."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 1.0, size=(700, 4)) for c in (0.0, 4.0, 8.0)])
    kw = {"k": 3, "n_init": 3, "max_iter": 100, "tol": 1e-10, "seed": 5}
    out = [geoml._core.kmeans(X, **kw, n_jobs=nj) for nj in (1, 2, 3)]
    for o in out[1:]:
        np.testing.assert_array_equal(o[0], out[0][0])
        np.testing.assert_array_equal(o[1], out[0][1])
        assert o[2] == out[0][2]
    C = np.asarray(out[0][1]).reshape(3, -1)
    d = ((X - C[out[0][0]]) ** 2).sum(axis=1)
    np.testing.assert_allclose(out[0][2], d.sum(), rtol=1e-12)


def test_trace_function_dense_same_bits_for_any_n_jobs():
    """Dense SLQ products held BLAS to n_jobs threads: other bits for n_jobs=1 and 2 (2e-6
    relative); now one-thread GEMMs over fixed row blocks."""
    rng = np.random.default_rng(1)
    B = rng.normal(size=(700, 700))
    A = (B + B.T) / 80.0
    r = [geoml.trace_function(A, "exp", random_state=3, n_jobs=nj) for nj in (1, 2)]
    assert r[0].value == r[1].value and r[0].stderr == r[1].stderr
    np.testing.assert_array_equal(r[0].samples, r[1].samples)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_matmul(transpose, dtype):
    """The fixed-block product against NumPy's, the same bits for 1, 2 and 3 threads, with
    a block boundary inside and a ragged last block."""
    from geoml._validation import BLOCK_ROWS, blocked_matmul, single_threaded_blas

    rng = np.random.default_rng(2)
    A = rng.normal(size=(2 * BLOCK_ROWS + 37, 300)).astype(dtype)
    X = rng.normal(size=(A.shape[1] if not transpose else A.shape[0], 7)).astype(dtype)
    ref = (A.T if transpose else A).astype(np.float64) @ X.astype(np.float64)
    with single_threaded_blas():
        got = [blocked_matmul(A, X, nt, transpose=transpose) for nt in (1, 2, 3)]
    assert got[0].dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(got[0], ref, rtol=tol, atol=tol * np.abs(ref).max())
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
    out = np.empty_like(got[0])
    with single_threaded_blas():
        assert blocked_matmul(A, X, 2, transpose=transpose, out=out) is out
    np.testing.assert_array_equal(out, got[0])


def test_randomized_svd_sparse_transpose_same_bits_for_any_n_jobs():
    """A^T X of a sparse A above the serial size: the multi-threaded scatter summed
    per-thread buffers (other bits for other n_jobs); now the transposed CSR, row-parallel."""
    A = sp.random(4000, 2000, density=0.03, random_state=4, format="csr")
    r = [geoml.randomized_svd(A, 8, n_iter=2, random_state=1, n_jobs=nj) for nj in (1, 2, 3)]
    for o in r[1:]:
        for a, b in zip(o, r[0]):
            np.testing.assert_array_equal(a, b)
