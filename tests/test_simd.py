"""Every SIMD kernel family under every ISA this CPU runs, compared with the generic path.

geoml compiles its vector kernels once per instruction set (generic, AVX2, AVX-512; see
docs/design/simd.md) and picks one at run time; ``_core.set_simd_isa`` and the
``GEOML_SIMD`` environment variable force a choice. Each test computes a result with the
generic kernels (the reference) and again with every other ISA the CPU supports, and checks
that they agree (to rounding: the vector kernels reassociate sums and fuse multiply-adds).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
import geoml.ot as got
from geoml import _core
from geoml.lowrank import _kernels, _svd
from geoml.spectral import _amg, _lsym

_LEVEL = {"generic": 0, "avx2": 1, "avx512": 2}
_BEST = _core.simd_isa()  # what detection (or GEOML_SIMD) chose, before any test forces one
_VNNI = _core.simd_vnni()  # AVX-512 VNNI on this CPU, under that ISA
ISAS = [isa for isa in ("generic", "avx2", "avx512") if _LEVEL[isa] <= _LEVEL[_BEST]]
VECTOR_ISAS = [isa for isa in ISAS if isa != "generic"] or ["generic"]


@pytest.fixture(autouse=True)
def _restore_isa():
    """Whatever a test forces, the next one starts from automatic detection."""
    yield
    _core.set_simd_isa("auto")


def run_with(isa, fn):
    """fn() with the kernels of `isa`; automatic detection restored afterwards."""
    _core.set_simd_isa(isa)
    try:
        assert _core.simd_isa() == isa
        return fn()
    finally:
        _core.set_simd_isa("auto")


def both(isa, fn):
    """(generic result, result under `isa`)."""
    return run_with("generic", fn), run_with(isa, fn)


@pytest.fixture(params=VECTOR_ISAS)
def isa(request):
    return request.param


def test_isa_list_matches_cpu():
    # set_simd_isa accepts every ISA up to the detected one and refuses the ones above it
    for name in ("generic", "avx2", "avx512"):
        if name in ISAS:
            run_with(name, lambda: None)
        else:
            with pytest.raises(ValueError, match="cannot run"):
                _core.set_simd_isa(name)
    with pytest.raises(ValueError, match="unknown SIMD ISA"):
        _core.set_simd_isa("sse9")
    assert _core.simd_isa() == _BEST


def test_vnni_only_under_avx512():
    # VNNI is a capability of the AVX-512 ISA: never under avx2 / generic, and switchable off
    for name in ISAS:
        assert run_with(name, _core.simd_vnni) == (_VNNI and name == "avx512")
    assert _core.simd_vnni() == _VNNI
    _core.set_simd_vnni(False)
    try:
        assert not _core.simd_vnni()
    finally:
        _core.set_simd_vnni(True)
    assert _core.simd_vnni() == _VNNI
    code = "import geoml._core as c; print(c.simd_isa(), c.simd_vnni())"
    for name in ISAS:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=dict(os.environ, GEOML_SIMD=name),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == [name, str(_VNNI and name == "avx512")]


@pytest.mark.parametrize("name", ISAS + ["auto", "bogus"])
def test_geoml_simd_env_forces_isa(name):
    # GEOML_SIMD is read once, at the first kernel dispatch of the process; an unknown name
    # or one the CPU cannot run falls back to detection
    env = dict(os.environ, GEOML_SIMD=name)
    code = "import geoml._core as c; print(c.simd_isa())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    env.pop("GEOML_SIMD")
    detected = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == (name if name in ISAS else detected)


def test_geoml_simd_env_changes_results_path():
    # a kernel run in a subprocess forced to generic gives the generic result of this process
    rng = np.random.default_rng(0)
    a, b = rng.random(20) + 0.1, rng.random(30) + 0.1
    a, b = a / a.sum(), b / b.sum()
    C = rng.random((20, 30))
    ref = run_with("generic", lambda: got.sinkhorn(a, b, C, 0.05).cost)
    code = (
        "import numpy as np, geoml.ot as got; rng = np.random.default_rng(0); "
        "a, b = rng.random(20) + 0.1, rng.random(30) + 0.1; a, b = a / a.sum(), b / b.sum(); "
        "C = rng.random((20, 30)); import geoml._core as c; assert c.simd_isa() == 'generic'; "
        "print(repr(got.sinkhorn(a, b, C, 0.05).cost))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, GEOML_SIMD="generic"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert float(out) == ref


# ---------------------------------------------------------------- neighbors


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine", "inner_product"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("query", [False, True])
def test_knn(isa, metric, dtype, query):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((257, 19)).astype(dtype)
    Y = rng.standard_normal((61, 19)).astype(dtype) if query else None
    k = 7
    ref, got_ = both(isa, lambda: geoml.knn(X, k, Y=Y, metric=metric, n_jobs=2))
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    scale = float(np.abs(ref.distances).max())
    np.testing.assert_allclose(got_.distances, ref.distances, rtol=rtol, atol=rtol * scale)
    # neighbour sets agree except where the reference itself has a near-tie at the k-th place
    Q = X if Y is None else Y
    for i in range(Q.shape[0]):
        a, b = set(ref.indices[i]), set(got_.indices[i])
        if a != b:
            kth = ref.distances[i, -1]
            assert np.all(
                np.abs(got_.distances[i] - ref.distances[i]) <= 10 * rtol * max(abs(kth), scale)
            )


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "inner_product"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_pair(isa, metric, dtype):
    # both directions of one tile pass (the kernel's column side with separate heaps)
    from geoml import _core

    rng = np.random.default_rng(4)
    A = rng.standard_normal((131, 23)).astype(dtype)
    B = rng.standard_normal((77, 23)).astype(dtype)
    ref, got_ = both(isa, lambda: _core.knn_pair(A, B, k=9, metric=_core.Metric[metric], n_jobs=2))
    for r, g in zip(ref, got_, strict=True):
        if r.dtype == np.int64 and dtype == np.float64:
            np.testing.assert_array_equal(g, r)
        elif r.dtype == np.int64:
            assert (r == g).mean() > 0.99  # float32 near-ties at the k-th place may swap
        else:
            rtol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol * float(np.abs(r).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_graph(isa, dtype):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 8)).astype(dtype)
    ref, got_ = both(isa, lambda: geoml.knn_graph(X, 6, mode="distance", symmetrize="union"))
    assert (ref != 0).nnz == (got_ != 0).nnz
    assert np.array_equal(ref.indptr, got_.indptr) and np.array_equal(ref.indices, got_.indices)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got_.data, ref.data, rtol=rtol)


@pytest.mark.parametrize(
    "metric, dtype",
    [
        ("euclidean", np.float32),
        ("sqeuclidean", np.float64),
        ("cosine", np.float32),
        ("inner_product", np.float64),
    ],
)
def test_nndescent(isa, metric, dtype):
    """The approximate graph's pair scores (nndescent_kernel.inc) under every ISA: the same
    accuracy as generic code, and exact distances for the pairs found."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1200, 37)).astype(dtype)
    ref, got_ = both(
        isa, lambda: geoml.knn(X, 7, metric=metric, method="nndescent", random_state=0)
    )
    assert got_.recall_.reached and ref.recall_.reached
    assert abs(got_.recall_.estimate - ref.recall_.estimate) < 0.01
    same = (ref.indices == got_.indices).all(axis=1)
    assert same.mean() > 0.9
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    scale = float(np.abs(ref.distances).max())
    np.testing.assert_allclose(
        got_.distances[same], ref.distances[same], rtol=rtol, atol=rtol * scale
    )


# ---------------------------------------------------------------- lowrank


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowrank_kernels(isa, dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 9, 140)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12

    def kernels():
        out = []
        for n, J in [(0, 3), (1, 6), (2, 4), (2, 1)]:
            A = rng_a[(n, J)]
            out.append(_kernels._ttm(X, n, A, False, 0))
            out.append(_kernels._ttm(X, n, np.ascontiguousarray(A.T), True, 0))
        for n in range(3):
            out.append(_kernels._gram(X, n, 0))
            out.append(_kernels._gram_apply(X, n, U[n], 0))
        out.extend(_kernels._gram_apply_pair(X, U[1], U[2], 0))
        out.append(np.array([_kernels._sumsq(X, 0)]))
        tall = np.ascontiguousarray(rng_t.astype(dtype))
        out.append(_svd._tall_gram(tall, 0))
        out.append(_svd._tall_matmul(tall, M_t, 0))
        return out

    rng_a = {
        (n, J): rng.standard_normal((J, X.shape[n])).astype(dtype)
        for n, J in [(0, 3), (1, 6), (2, 4), (2, 1)]
    }
    U = [rng.standard_normal((X.shape[n], 5)).astype(dtype) for n in range(3)]
    rng_t = rng.standard_normal((70_001, 6))
    M_t = rng.standard_normal((6, 3)).astype(dtype)
    ref, got_ = both(isa, kernels)
    assert len(ref) == len(got_)
    for r, g in zip(ref, got_):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * float(np.abs(r).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowrank_sketch_and_svd(isa, dtype):
    # the randomized Tucker (mode sketches) and SVD drivers give the same factorisation
    rng = np.random.default_rng(4)
    core = rng.standard_normal((3, 4, 2))
    facs = [np.linalg.qr(rng.standard_normal((s, r)))[0] for s, r in [(30, 3), (25, 4), (40, 2)]]
    T = np.einsum("abc,ia,jb,kc->ijk", core, *facs)
    T = (T + 1e-3 * rng.standard_normal(T.shape)).astype(dtype)
    A = (rng.standard_normal((400, 5)) @ rng.standard_normal((5, 300))).astype(dtype)
    tol = 2e-3 if dtype == np.float32 else 1e-8

    def run():
        t = geoml.tucker(T, (3, 4, 2), method="randomized", random_state=0)
        s = geoml.randomized_svd(A, 5, random_state=0)
        return t.to_tensor(), s.s

    (t_ref, s_ref), (t_got, s_got) = both(isa, run)
    np.testing.assert_allclose(t_got, t_ref, atol=tol * float(np.abs(T).max()))
    np.testing.assert_allclose(s_got, s_ref, rtol=tol)


# ---------------------------------------------------------------- spectral: LOBPCG, multigrid


def test_lobpcg_block_kernels(isa):
    rng = np.random.default_rng(5)
    n = 1031  # not a multiple of any chunk or vector width
    X, Y, W = (rng.standard_normal((n, c)) for c in (5, 3, 4))
    C = rng.standard_normal((5 + 4, 6))
    lam = rng.standard_normal(5)

    def run():
        G = _core.block_gram([X, W], [Y, X], n_jobs=0)
        out = np.zeros((n, 6))
        _core.block_lincomb([X, W], C, out, beta=0.0, D=None, n_jobs=0)
        acc = np.ones((n, 6))
        _core.block_lincomb([X, W], C, acc, beta=2.0, D=acc.copy(), n_jobs=0)
        R = np.empty((n, 5))
        norms = _core.block_residual(X, Y @ rng_m, lam, R, n_jobs=0)
        return G, out, acc, R, np.asarray(norms)

    rng_m = rng.standard_normal((3, 5))
    ref, got_ = both(isa, run)
    np.testing.assert_allclose(
        ref[0], np.hstack([X, W]).T @ np.hstack([Y, X]), rtol=1e-10, atol=1e-10
    )
    for r, g in zip(ref, got_):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12 * float(np.abs(r).max()))


def _grid_laplacian(side):
    """L_sym of a side x side grid graph with random weights, and its adjacency."""
    rng = np.random.default_rng(6)
    n = side * side
    idx = np.arange(n).reshape(side, side)
    rows = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    cols = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    w = rng.random(rows.size) + 0.5
    W = sp.csr_matrix((np.r_[w, w], (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n))
    W.sort_indices()
    d = np.asarray(W.sum(axis=1)).ravel()
    Dm = sp.diags(1 / np.sqrt(d))
    L = sp.csr_matrix(sp.identity(n) - Dm @ W @ Dm)
    L.sort_indices()
    return L, W, np.sqrt(d)


def test_multigrid_and_csr_products(isa):
    L, _, b = _grid_laplacian(40)
    rng = np.random.default_rng(7)
    X = rng.standard_normal((L.shape[0], 6))
    T = rng.standard_normal((L.shape[0], 3))

    def run():
        Y = _amg._spmm(L, X, 0)
        Z = _amg._spmm(L, X, 0, alpha=0.5, B=Y, beta=-2.0)
        v = _amg._spmm(L, X[:, :1], 0)
        levels = _amg._amg_hierarchy(L, b, 0)
        cyc = _amg._amg_cycle(levels)
        P = cyc.apply(0, np.ascontiguousarray(X), cycles=2, n_jobs=0)
        Q = _amg._orthonormalise(X.copy(), 0)  # a basis of range(X): compare projections
        return Y, Z, v, np.asarray(P), Q @ (Q.T @ T), len(levels)

    ref, got_ = both(isa, run)
    assert ref[5] == got_[5] >= 2  # a real hierarchy: the V-cycle kernels ran
    np.testing.assert_allclose(ref[0], L @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref[1], 0.5 * (L @ X) - 2.0 * (L @ X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref[2], L @ X[:, :1], rtol=1e-12, atol=1e-12)
    for r, g, tol in zip(ref[:5], got_[:5], (1e-13, 1e-13, 1e-13, 1e-4, 1e-10)):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * float(np.abs(r).max()))


def test_lobpcg_amg_eigensolver(isa):
    # the whole multilevel LOBPCG + AMG path (block kernels, float32 V-cycles, CSR products)
    _, W, _ = _grid_laplacian(40)

    def run():
        lam, V, _, conv, _ = _lsym._lsym_smallest(
            W, 5, method="lobpcg-amg", random_state=0, tol=1e-8
        )
        assert conv
        return lam, V

    (l_ref, V_ref), (l_got, V_got) = both(isa, run)
    np.testing.assert_allclose(l_got, l_ref, rtol=1e-6, atol=1e-9)
    L = sp.identity(W.shape[0]) - sp.diags(
        1 / np.sqrt(np.asarray(W.sum(1)).ravel())
    ) @ W @ sp.diags(1 / np.sqrt(np.asarray(W.sum(1)).ravel()))
    for V, lam in ((V_ref, l_ref), (V_got, l_got)):
        np.testing.assert_allclose(L @ V, V * lam, atol=1e-6)


def test_lanczos_eigsh(isa):
    _, W, _ = _grid_laplacian(20)
    ref, got_ = both(isa, lambda: geoml.eigsh(W, 4, random_state=0).eigenvalues)
    np.testing.assert_allclose(got_, ref, rtol=1e-10)


def test_lanczos_csr_products_same_bits(isa):
    # the Lanczos solver's float64 / int32 CSR products (spectral/spmv_kernel.inc: AVX-512
    # gathers, AVX2 gathers, scalar lanes) sum every row in one fixed order, and the thick
    # restart's 4-row products (restart_rows4) are built without contraction: the same bits
    # under every ISA; rows of 0..40 entries cover the 8-lane tails
    rng = np.random.default_rng(3)
    n = 5000
    counts = rng.integers(0, 21, n)
    rows = np.repeat(np.arange(n), counts)
    cols = rng.integers(0, n, rows.size)
    A = sp.csr_matrix((rng.uniform(-1, 1, rows.size), (rows, cols)), shape=(n, n))
    A = sp.csr_matrix(A + A.T)
    A.sort_indices()
    ip, ix = A.indptr.astype(np.int32), A.indices.astype(np.int32)
    x = rng.standard_normal(n)

    def run():
        y = _core.csr_matvec(ip, ix, A.data, x)
        r = geoml.eigsh(A, 4, which="LA", tol=1e-9, random_state=0)  # filtered path: n >= 4000
        return y, r.eigenvalues, r.eigenvectors

    ref, got_ = both(isa, run)
    np.testing.assert_allclose(ref[0], A @ x, rtol=1e-13, atol=1e-13)
    for r, g in zip(ref, got_):
        np.testing.assert_array_equal(g, r)


def test_tall_kernels_same_bits(isa):
    # eigsh's filtered check: A^T B in 8 fused lanes and Y -= A M in fused multiply-adds (the
    # AVX-512, AVX2 and scalar copies of common/tall_kernel.inc): the same bits under every
    # ISA; 1..7 leftover rows cover the lane tails
    rng = np.random.default_rng(5)
    for n in (3, 517, 2051):
        A = np.asfortranarray(rng.standard_normal((n, 13)))[:, :11]
        B = np.asfortranarray(rng.standard_normal((n, 4)))
        M = rng.standard_normal((11, 4))

        def run(A=A, B=B, M=M):
            Y = B.copy(order="F")
            _core.tall_sub(Y, A, M, n_jobs=2)
            return _core.tall_gram(A, B, n_jobs=2), Y

        ref, got_ = both(isa, run)
        np.testing.assert_allclose(ref[0], A.T @ B, rtol=1e-12, atol=1e-12)
        for r, g in zip(ref, got_):
            np.testing.assert_array_equal(g, r)


def test_cheb_block_step_same_bits(isa):
    # the filtered check's 4-column Chebyshev step (check_kernel.inc: AVX-512, AVX2, scalar
    # lanes): the same bits under every ISA; rows of 0..40 entries cover the lane tails
    from geoml.spectral import _eigsh

    rng = np.random.default_rng(6)
    n = 3000
    counts = rng.integers(0, 21, n)
    rows = np.repeat(np.arange(n), counts)
    A = sp.csr_matrix(
        (rng.uniform(-1, 1, rows.size), (rows, rng.integers(0, n, rows.size))), shape=(n, n)
    )
    A = sp.csr_matrix(A + A.T)
    A.sort_indices()
    X, Z = rng.standard_normal((n, 4)), rng.standard_normal((n, 4))

    def run():
        out = np.empty((n, 4), order="F")
        work = np.empty(3 * n * 4 + 24)
        _core.csr_cheb_filter(A.data, A.indices, A.indptr, X, out, work, degree=4, c=0.3, e=1.5)
        Y = _core.csr_cheb_matmat(A.data, A.indices, A.indptr, X, Z, s1=0.7, c=0.3, s2=1.0)
        # the matrix in two column halves: the split 4-lane rows (first part, then the second)
        Ys = _core.csr_cheb_matmat(*h[0], X, Z, s1=0.7, c=0.3, s2=1.0, n_jobs=2, **h[1])
        return Y, out, Ys

    h = _eigsh._column_halves(A.data, A.indices, A.indptr, n, 10**6)
    (ref, fref, sref), (got_, fgot, sgot) = both(isa, run)
    np.testing.assert_array_equal(sgot, sref)
    np.testing.assert_allclose(sref, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    want = 0.7 * (A @ X - 0.3 * X) - Z
    np.testing.assert_allclose(ref, want, rtol=0, atol=1e-13 * np.abs(want).max())
    np.testing.assert_array_equal(got_, ref)
    np.testing.assert_array_equal(fgot, fref)  # the filter in one call (cheb_rows4's steps)


def test_lanczos_float32_value_products_same_bits(isa, monkeypatch):
    # the filtered solve with float32 stored values (spmv_kernel.inc's float32 loads: AVX-512,
    # AVX2, scalar lanes) gives the same bits under every ISA
    from geoml.spectral import _eigsh

    calls = []
    real = _core.eigsh_csr_f32v
    monkeypatch.setattr(
        _eigsh._core, "eigsh_csr_f32v", lambda *a, **kw: calls.append(1) or real(*a, **kw)
    )
    rng = np.random.default_rng(4)
    n = 5000
    counts = rng.integers(0, 41, n)
    rows = np.repeat(np.arange(n), counts)
    cols = rng.integers(0, n, rows.size)
    A = sp.csr_matrix((rng.uniform(0, 1, rows.size), (rows, cols)), shape=(n, n))
    A = sp.csr_matrix(A + A.T)

    def run():
        r = geoml.eigsh(A, 4, which="LA", tol=1e-8, random_state=0)
        return r.eigenvalues, r.eigenvectors

    ref, got_ = both(isa, run)
    assert len(calls) == 2
    for r, g in zip(ref, got_):
        np.testing.assert_array_equal(g, r)


# ---------------------------------------------------------------- optimal transport


def _hist(rng, n):
    h = rng.random(n) + 0.05
    return h / h.sum()


@pytest.mark.parametrize("m, n", [(7, 5), (16, 12), (32, 29), (40, 20), (120, 90)])
def test_emd(isa, m, n):
    # <= 32 x 32: the fixed-size solver (float32 pre-pricing with AVX2); m n <= 1024: the
    # Dantzig scan; larger: block search
    rng = np.random.default_rng(8)
    a, b, C = _hist(rng, m), _hist(rng, n), rng.random((m, n))
    ref, got_ = both(isa, lambda: got.emd(a, b, C))
    assert got_.cost == pytest.approx(ref.cost, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(got_.plan, ref.plan, atol=1e-12)


def test_emd_batched_tiny_ties(isa):
    rng = np.random.default_rng(9)
    B, m, n = 40, 16, 12
    A = np.vstack([_hist(rng, m) for _ in range(B)])
    Bm = np.vstack([_hist(rng, n) for _ in range(B)])
    C = np.round(4 * rng.random((B, m, n)))  # many ties
    ref, got_ = both(isa, lambda: got.emd_batched(A, Bm, C).cost)
    np.testing.assert_allclose(got_, ref, rtol=1e-12, atol=1e-15)


# 300 x 260 / 263: float32 kernel rows (eight-lane blocks, a four-lane and scalar tails); eps
# 0.005: entries below e^-87 (float32 subnormals or 0)
# 303 rows: four-row sweep blocks and a last block of three rows
@pytest.mark.parametrize(
    "m, n, eps", [(9, 13, 0.02), (300, 260, 0.02), (300, 263, 0.005), (303, 263, 0.02)]
)
def test_sinkhorn_dense(isa, m, n, eps):
    rng = np.random.default_rng(10)
    a, b, C = _hist(rng, m), _hist(rng, n), rng.random((m, n))
    ref, got_ = both(isa, lambda: got.sinkhorn(a, b, C, eps, tol=1e-10))
    assert ref.converged and got_.converged
    assert got_.cost == pytest.approx(ref.cost, rel=1e-8)
    np.testing.assert_allclose(got_.plan, ref.plan, atol=1e-8 * float(ref.plan.max()))
    ref_u, got_u = both(isa, lambda: got.sinkhorn_unbalanced(a, b, C, 0.05, 1.0).cost)
    assert got_u == pytest.approx(ref_u, rel=1e-8)


def test_sinkhorn_batched(isa):
    rng = np.random.default_rng(11)
    B, m, n = 12, 10, 14
    A = np.vstack([_hist(rng, m) for _ in range(B)])
    Bm = np.vstack([_hist(rng, n) for _ in range(B)])
    C = rng.random((B, m, n))
    ref, got_ = both(isa, lambda: got.sinkhorn_batched(A, Bm, C, 0.05, return_plans=True))
    np.testing.assert_allclose(got_.cost, ref.cost, rtol=1e-8)
    np.testing.assert_allclose(got_.plans, ref.plans, atol=1e-9)


@pytest.mark.parametrize("p", [1, 2])
def test_sinkhorn_points(isa, p):
    # point-cloud costs computed on the fly, log-sum-exp rows
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((61, 3)), rng.standard_normal((47, 3)) + 0.5
    ref, got_ = both(isa, lambda: got.sinkhorn_points(x, y, 0.1, p=p, tol=1e-9))
    assert got_.cost == pytest.approx(ref.cost, rel=1e-8)
    np.testing.assert_allclose(got_.f, ref.f, atol=1e-8)
    np.testing.assert_allclose(got_.g, ref.g, atol=1e-8)


def test_value_range(isa):
    rng = np.random.default_rng(13)
    x = rng.standard_normal(1003)
    ref, got_ = both(isa, lambda: tuple(_core.value_range(x, n_jobs=0)))
    assert ref == got_ == (x.min(), x.max(), True)
    x[500] = np.inf
    assert run_with(isa, lambda: tuple(_core.value_range(x, n_jobs=0)))[2] is False


@pytest.mark.parametrize("shape", [(1, 1), (7, 7), (33, 33), (130, 130), (45, 101), (101, 45)])
def test_linear_assignment(isa, shape):
    # Jonker-Volgenant row scans (two smallest reduced costs, column minima, the fused
    # Dijkstra relaxation): every ISA returns the same pairs, ties and forbidden pairs included
    rng = np.random.default_rng(14)
    for C in (rng.random(shape), np.round(3 * rng.random(shape))):
        C[rng.random(shape) < 0.2] = np.inf
        C[:, 0] = 1.0  # keep it feasible
        C[0, :] = 1.0
        ref, got_ = both(isa, lambda C=C: got.linear_assignment(C))
        assert np.array_equal(ref.row_ind, got_.row_ind)
        assert np.array_equal(ref.col_ind, got_.col_ind)
        res = both(isa, lambda C=C: got.linear_assignment_batched([C, C.T], n_jobs=2).cost)
        np.testing.assert_array_equal(res[0], res[1])


# ---------------------------------------------------------------- curvature


@pytest.mark.parametrize("method", ["exact", "sinkhorn"])
@pytest.mark.parametrize("weighted", [False, True])
def test_ollivier_ricci(isa, method, weighted):
    nx = pytest.importorskip("networkx")
    G = nx.karate_club_graph()
    rng = np.random.default_rng(14)
    for u, v in G.edges:
        G[u][v]["weight"] = float(rng.integers(1, 4)) if weighted else 1.0
    ref, got_ = both(isa, lambda: geoml.OllivierRicci(method=method).fit(G).curvature_)
    np.testing.assert_allclose(got_, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spd_eigensolver_and_functions(isa, dtype):
    rng = np.random.default_rng(11)
    n = 13
    M = rng.standard_normal((40, n, 2 * n))
    A = (M @ M.swapaxes(1, 2) / (2 * n) + 0.1 * np.eye(n)).astype(dtype)
    B = A[:5]

    def run():
        w, V = geoml.spd.eigh(A)
        return (
            w,
            np.abs(V),
            geoml.spd.sqrtm(A),
            geoml.spd.logm(A),
            geoml.spd.distance(A, A[0]),
            geoml.spd.pairwise_distance(B, metric="wasserstein"),
            geoml.spd.mean_riemann(A).mean,
        )

    ref, got = both(isa, run)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * np.abs(r).max())


def test_spd_per_lane_deflation(isa):
    """The per-lane QL (each lane its own l, m, iterations) and the column-wise rotation of
    the eigenvector rows, on a group mixing fast and slow QL runs (identity, ties, repeated
    eigenvalues, cond 1e6, a split tridiagonal, covariances): every ISA as generic."""
    rng = np.random.default_rng(12)
    n = 22
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    rep = (Q * np.repeat([1.0, 3.0], n // 2)) @ Q.T
    ill = (Q * np.logspace(0, 6, n)) @ Q.T
    blk = np.zeros((n, n))
    blk[:11, :11] = np.eye(11) * 2 + 0.1
    blk[11:, 11:] = np.diag(np.arange(1.0, 12.0))
    X = rng.standard_normal((14, n, 4 * n))
    C = X @ X.swapaxes(1, 2) / (4 * n) + 0.1 * np.eye(n)
    mats = [np.eye(n), np.diag(np.repeat([1.0, 2.0], n // 2)), rep, ill, blk, *C]
    A = np.stack([0.5 * (m + m.T) for m in mats])

    def run():
        w, V = geoml.spd.eigh(A)
        return (
            w,
            geoml.spd.sqrtm(A),
            geoml.spd.logm(A),
            geoml.spd.distance(A[5:], A[-1]),  # the triangular congruence
            geoml.spd.pairwise_distance(A[5:9], A[9:12]),
        )

    ref, got = both(isa, run)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())


def test_spd_extreme_scales(isa):
    """Matrices at the top of the float64 range (largest entries 1e300 .. the largest double)
    and with blocks 1e-295 .. 1e-306 times the rest: every ISA as generic (the references are
    in test_spd.py::test_extreme_scale_*)."""
    rng = np.random.default_rng(13)
    n = 8
    Q, _ = np.linalg.qr(rng.standard_normal((40, n, n)))
    H = (Q * rng.uniform(1.0, 10.0, (40, 1, n))) @ Q.swapaxes(1, 2)
    H = 0.5 * H + 0.5 * H.swapaxes(1, 2)
    top = np.exp(rng.uniform(np.log(1e300), np.log(np.finfo(np.float64).max), 40))
    H = H / np.abs(H).max(axis=(1, 2), keepdims=True) * top[:, None, None]
    T = np.zeros((40, n, n))
    for b in range(40):
        k = 3 + b % 3
        X = rng.standard_normal((n, n))
        T[b, : n - k, : n - k] = (X + X.T)[: n - k, : n - k]
        T[b, n - k :, n - k :] = 10.0 ** -rng.uniform(295, 306) * (X + X.T)[n - k :, n - k :]
        perm = rng.permutation(n)
        T[b] = T[b][np.ix_(perm, perm)]
    T = 0.5 * (T + T.swapaxes(1, 2))

    def run():
        return (
            geoml.spd.sqrtm(H),
            geoml.spd.logm(H),
            geoml.spd.distance(H, H[::-1]),
            geoml.spd.eigh(T).eigenvalues,
            geoml.spd.expm(T),
        )

    ref, got = both(isa, run)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smacof_place(isa, dtype):
    from geoml import _core

    rng = np.random.default_rng(1)
    Z = rng.standard_normal((70, 2))
    P = rng.standard_normal((300, 2))
    D = np.sqrt(((P[:, None] - Z[None]) ** 2).sum(-1)) * (1 + 0.1 * rng.random((300, 70)))
    D = np.ascontiguousarray(D, dtype=dtype)
    Y0 = P + 0.1 * rng.standard_normal(P.shape)
    ref, got = both(isa, lambda: _core.smacof_place(D, Z, Y0.copy(), n_iter=30, n_jobs=2))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
    assert not np.allclose(ref, Y0, atol=1e-3)  # the steps moved the points


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smacof(isa, dtype):
    from geoml.diffusion import smacof

    rng = np.random.default_rng(0)
    P = rng.standard_normal((150, 4))
    D = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1)).astype(dtype)
    Y0 = rng.standard_normal((150, 3))
    ref, got = both(isa, lambda: smacof(D, Y0, max_iter=40, eps=0.0, n_jobs=2))
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-9, atol=1e-9)
    assert got[1] == pytest.approx(ref[1], rel=1e-9)
    assert got[2] == ref[2] == 40


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_magnitude_matvec(isa, dtype):
    # fused distance / exp / product tiles (n not a multiple of the 16-row block or the
    # 512-column tile), and the CG solve built on them
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1037, 5)).astype(dtype)
    ts = np.array([1e-3, 0.5, 4.0, 800.0])
    V = rng.standard_normal((4, 1037))
    ref, got = both(isa, lambda: _core.magnitude_matvec(X, ts, V, n_jobs=2))
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    Y = rng.uniform(size=(600, 2))
    ref, got = both(isa, lambda: geoml.magnitude(Y, [2.0, 30.0], method="cg"))
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_magnitude_matrix_f32(isa):
    # the stored float32 similarity and its float64-accumulated product
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1037, 3))
    Z, got = both(isa, lambda: _core.magnitude_matrix(X, 0.7, n_jobs=2))
    np.testing.assert_allclose(got, Z, rtol=2.5e-7)
    v = rng.standard_normal(1037)
    ref, got = both(isa, lambda: _core.stored_matvec(Z, v, n_jobs=2))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_local_gram_eigvalsh(isa, dtype):
    # the fused local-PCA pass (centred k x k Gram per gathered neighbourhood, then the
    # batched eigensolver): k not a multiple of the 4-column step, D not of the vector width
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((900, 37)) * np.linspace(2, 0.1, 37) + 3).astype(dtype)
    idx = rng.integers(0, 900, size=(900, 11))
    ref, got = both(isa, lambda: _core.local_gram_eigvalsh(X, idx, n_jobs=2))
    assert (ref[1] == 0).all() and (got[1] == 0).all()
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12 * np.abs(ref[0]).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_heat_chebyshev(isa, dtype):
    """The Chebyshev heat-kernel row kernel (diffusion/heat_kernel.inc) per ISA vs generic,
    several times from one run, a column count that is not a multiple of the vector width."""
    import scipy.sparse as sp

    import geoml

    rng = np.random.default_rng(3)
    A = sp.random(400, 400, density=0.02, random_state=3)
    W = sp.csr_matrix(A + A.T)
    X = rng.standard_normal((400, 13)).astype(dtype)
    ref, got = both(isa, lambda: geoml.heat_kernel(W, X, [0.3, 2.0], tol=1e-5, n_jobs=2))
    assert got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert not np.allclose(ref[1], X, atol=1e-2)  # the heat moved


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [5, 64, 130])
def test_symmetric_scan(isa, dtype, n):
    # the input-check tiles of sinkhorn_symmetric (min, max, |M - M.T|, NaN, row minima): exact
    # operations, so every ISA gives the generic bits
    rng = np.random.default_rng(13)
    M = rng.normal(size=(n, n)).astype(dtype)
    M = M + M.T
    M[n // 2, n // 3] += dtype(0.25)
    ref, got_ = both(isa, lambda: _core.symmetric_scan(M, n_jobs=1, rowmin=True))
    assert ref[:4] == got_[:4] and np.array_equal(ref[4], got_[4])
    M[n - 1, n // 2] = np.nan
    ref, got_ = both(isa, lambda: _core.symmetric_scan(M, n_jobs=1))
    assert not ref[0] and not got_[0]


def test_sinkhorn_symmetric(isa):
    # fused checks and kernel build, plan rows scaled by the ISA's kernel
    rng = np.random.default_rng(14)
    x = rng.random((150, 2))
    C = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    a = rng.uniform(0.5, 1.5, 150)
    a /= a.sum()
    ref, got_ = both(isa, lambda: got.sinkhorn_symmetric(C, a, eps=0.05, tol=1e-11))
    assert ref.converged and got_.converged
    np.testing.assert_allclose(got_.plan, ref.plan, rtol=1e-9, atol=0)
    np.testing.assert_allclose(got_.log_scaling, ref.log_scaling, rtol=0, atol=1e-9)
