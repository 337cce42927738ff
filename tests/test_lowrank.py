"""Tests of geoml.lowrank against NumPy float64 references, TensorLy and scikit-learn."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

import geoml
from geoml.lowrank import _cost_model, _kernels, _subspace, _svd, _tucker

METHODS = ["hooi", "hosvd", "st_hosvd", "randomized"]


# ---------------------------------------------------------------- references


def unfold(T, n):
    """Mode-n unfolding (I_n x prod(others)), NumPy reference."""
    return np.moveaxis(T, n, 0).reshape(T.shape[n], -1)


def mode_dot(T, M, n):
    """T x_n M with M of shape (J, I_n), NumPy reference."""
    return np.moveaxis(np.tensordot(M, T, axes=(1, n)), 0, n)


def reconstruct(core, factors):
    X = np.asarray(core, dtype=np.float64)
    for n, U in enumerate(factors):
        X = mode_dot(X, np.asarray(U, dtype=np.float64), n)
    return X


def projector(U):
    U = np.asarray(U, dtype=np.float64)
    return U @ U.T


def low_rank_tensor(rng, shape, ranks, noise=0.0):
    core = rng.standard_normal(ranks)
    T = core
    for n, (I, r) in enumerate(zip(shape, ranks)):
        T = mode_dot(T, np.linalg.qr(rng.standard_normal((I, r)))[0], n)
    T /= np.linalg.norm(T)
    if noise:
        E = rng.standard_normal(shape)
        T = T + noise * E / np.linalg.norm(E)
    return T


def numpy_st_hosvd(T, ranks):
    Y, factors = T, [None] * T.ndim
    for n in range(T.ndim):
        U = np.linalg.svd(unfold(Y, n), full_matrices=False)[0][:, : ranks[n]]
        factors[n] = U
        Y = mode_dot(Y, U.T, n)
    return Y, factors


def rel_err(T, core, factors):
    return np.linalg.norm(T - reconstruct(core, factors)) / np.linalg.norm(T)


SHAPES = [((12, 9, 7), (3, 4, 2)), ((8, 6, 5, 4), (2, 3, 2, 2)), ((15, 6), (3, 3))]


# ---------------------------------------------------------------- C++ kernels


@pytest.mark.parametrize(
    "shape",
    [
        (3, 5, 7),
        (4, 6, 70, 2),
        (1, 9, 100),
        (50, 4, 3, 5),
        (7, 130),
        (20, 3, 70),
        (2, 5, 1100),
        (20, 100, 420),
        (2, 520, 70),
        (3, 530, 20),
        (600, 200, 40),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("J", [3, 17, 33])
def test_kernels_match_numpy(shape, dtype, J):
    # covers the kernel paths: R == 1, geoml's SIMD product (R >= 64, J <= 32; 4-row tiles
    # with J = 3 and 17, column tails, several 512-column tasks for (2, 5, 1100); R == 1 and
    # packed blocks of narrow slabs, split across slabs for (3, 530, 20)), BLAS slab by
    # slab (L == 1 or R >= 64 with J = 33) and gathered blocks (1 < R < 64, several blocks for
    # the last shape); Gram matrices in geoml's kernel (I <= 512: slabs in place for R >= 64,
    # packed blocks otherwise, R == 1 transposed) and by SYRK (I > 512: R == 1 for
    # (2, 5, 1100), one SYRK per slab for (2, 520, 70), on gathered blocks for (3, 530, 20))
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape).astype(dtype)
    X64 = X.astype(np.float64)
    tol = 1e-10 if dtype == np.float64 else 1e-3
    # the last shape's mode 1 needs two gathered blocks; its other modes add nothing new
    if J != 3 and X.size > 10**6:
        return  # gathered blocks: same path as J = 3
    for n in [1] if X.size > 10**6 else range(len(shape)):
        In = shape[n]
        A = rng.standard_normal((J, In)).astype(dtype)
        ref = mode_dot(X64, A.astype(np.float64), n)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(_kernels._ttm(X, n, A, False, 0), ref, atol=tol * scale)
        np.testing.assert_allclose(_kernels._ttm(X, n, A.T.copy(), True, 0), ref, atol=tol * scale)
        if J != 3:
            continue  # the Gram matrix and the sketch do not depend on J
        G = _kernels._gram(X, n, 0)
        Gref = unfold(X64, n) @ unfold(X64, n).T
        np.testing.assert_allclose(G, Gref, atol=tol * np.abs(Gref).max())
        assert np.array_equal(G, G.T)
        W = rng.standard_normal((X.size // In, 4)).astype(dtype)
        S = geoml._core.mode_sketch(X, n, W, n_jobs=0)
        Sref = np.moveaxis(X64, n, -1).reshape(-1, In).T @ W.astype(np.float64)
        np.testing.assert_allclose(S, Sref, atol=tol * np.abs(Sref).max())
        # Gram matrix times a few columns (SIMD tiles of 1, 2 and 3 vectors, row tails; R == 1
        # without packing)
        for c in (1, 5, 9, 21) if X.size < 10**6 else ():
            U = rng.standard_normal((In, c)).astype(dtype)
            Zref = Gref @ U.astype(np.float64)
            np.testing.assert_allclose(
                _kernels._gram_apply(X, n, U, 0), Zref, atol=tol * np.abs(Zref).max()
            )
    if X.size < 10**6:  # both trailing modes at once (slabs of the last two modes)
        N = len(shape)
        U1 = rng.standard_normal((shape[-2], 9)).astype(dtype)
        U2 = rng.standard_normal((shape[-1], J)).astype(dtype)
        Z1, Z2 = _kernels._gram_apply_pair(X, U1, U2, 0)
        for Z, n, U in ((Z1, N - 2, U1), (Z2, N - 1, U2)):
            Zref = unfold(X64, n) @ (unfold(X64, n).T @ U.astype(np.float64))
            np.testing.assert_allclose(Z, Zref, atol=tol * np.abs(Zref).max())
    assert _kernels._sumsq(X, 0) == pytest.approx(float(np.sum(X64**2)), rel=1e-6)


# ---------------------------------------------------------------- tucker


@pytest.mark.parametrize("shape,ranks", SHAPES)
@pytest.mark.parametrize("method", METHODS)
def test_tucker_against_numpy_reference(rng, shape, ranks, method):
    T = low_rank_tensor(rng, shape, ranks, noise=0.05)
    tt = geoml.tucker(T, ranks, method=method, random_state=0)
    core, factors = tt
    assert core.shape == tuple(ranks) and core.dtype == np.float64
    for U, I, r in zip(factors, shape, ranks):
        assert U.shape == (I, r)
        np.testing.assert_allclose(U.T @ U, np.eye(r), atol=1e-12)
    # the core is the projection of T on the factors (optimal for fixed factors)
    proj = T
    for n, U in enumerate(factors):
        proj = mode_dot(proj, U.T, n)
    np.testing.assert_allclose(core, proj, atol=1e-12)
    np.testing.assert_allclose(tt.to_tensor(), reconstruct(core, factors), atol=1e-12)
    err = rel_err(T, core, factors)
    assert tt.rel_error(T) == pytest.approx(err, rel=1e-10)
    # quasi-optimal: as good as the NumPy ST-HOSVD reference up to a tiny margin
    ref_core, ref_factors = numpy_st_hosvd(T, ranks)
    ref = rel_err(T, ref_core, ref_factors)
    assert err <= ref * (1 + 1e-3) + 1e-12
    # the signal subspaces are recovered
    for n, U in enumerate(factors):
        np.testing.assert_allclose(projector(U), projector(ref_factors[n]), atol=0.05)


@pytest.mark.parametrize("shape,ranks", SHAPES)
def test_hosvd_and_st_hosvd_factors_are_singular_vectors(rng, shape, ranks):
    T = low_rank_tensor(rng, shape, ranks, noise=0.2)
    hosvd = geoml.tucker(T, ranks, method="hosvd")
    for n, U in enumerate(hosvd.factors):
        V = np.linalg.svd(unfold(T, n), full_matrices=False)[0][:, : ranks[n]]
        np.testing.assert_allclose(projector(U), projector(V), atol=1e-8)
    st = geoml.tucker(T, ranks, method="st_hosvd")
    ref_core, ref_factors = numpy_st_hosvd(T, ranks)
    # geoml may process modes in another order; the error matches the reference's order only
    # when that order is the same, so compare errors loosely and subspaces of the first mode
    assert st.rel_error(T) == pytest.approx(rel_err(T, ref_core, ref_factors), rel=0.05)


def exact_hosvd_factor(T, n, r):
    """Leading r eigenvectors of T's mode-n Gram matrix (LAPACK, float64), geoml's signs."""
    A = unfold(np.asarray(T, dtype=np.float64), n)
    return _subspace._eig_desc(A @ A.T, r)[1][:, :r]


def sin_angle(U, V):
    """Sine of the largest principal angle between the column spaces of U and V."""
    U = np.asarray(U, dtype=np.float64)
    return np.linalg.norm(U - V @ (V.T @ U), 2)


def spy_certified(monkeypatch):
    """Records whether each certified refinement of HOSVD (products with T's Gram matrix, called
    from ``_hosvd``; not the explicit small Gram matrices of ``_eig_top``) was accepted (True)
    or fell back (False)."""
    calls, orig = [], _subspace._certified_subspace

    def spy(*args, **kwargs):
        out = orig(*args, **kwargs)
        if sys._getframe(1).f_code.co_name == "_hosvd":
            calls.append(out is not None)
        return out

    monkeypatch.setattr(_tucker, "_certified_subspace", spy)
    return calls


def spy_pair(monkeypatch):
    """Counts the calls of ``_gram_apply_pair`` (both trailing modes refined in one pass)."""
    calls, orig = [], _kernels._gram_apply_pair
    monkeypatch.setattr(_tucker, "_gram_apply_pair", lambda *a: (calls.append(1), orig(*a))[1])
    return calls


@pytest.mark.parametrize(
    "shape,ranks",
    [
        ((30, 25, 20), (3, 3, 3)),
        ((40, 30), (3, 3)),
        ((10, 12, 9, 20), (2, 3, 2, 2)),
        ((7, 26, 64), (1, 2, 2)),
        ((9, 30, 64), (2, 3, 3)),
        ((12, 10, 30, 64), (2, 2, 3, 3)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hosvd_certified_refinement_equals_exact_gram(rng, monkeypatch, shape, ranks, dtype):
    # the refinement is forced on every mode after the first (cost model bypassed); with a gap
    # it must be accepted and give the exact-Gram HOSVD's factors; the two trailing modes are
    # refined in one pass when their slabs are wide (>= 64) and processed last
    monkeypatch.setattr(_tucker, "_apply_cost", lambda shape, m, r: 0.0)
    calls, pair = spy_certified(monkeypatch), spy_pair(monkeypatch)
    T = low_rank_tensor(rng, shape, ranks, noise=0.01).astype(dtype)
    order = _cost_model._mode_order(shape, dict(enumerate(ranks)), list(range(len(shape))))
    tt = geoml.tucker(T, ranks, method="hosvd")
    assert calls and all(calls) and len(calls) == len(shape) - 1
    N = len(shape)
    assert len(pair) == (N > 2 and shape[-1] >= 64 and set(order[-2:]) == {N - 2, N - 1})
    if shape in ((9, 30, 64), (12, 10, 30, 64)):
        assert pair == [1]
    tol = 1e-8 if dtype == np.float64 else 1e-4
    for n, U in enumerate(tt.factors):
        V = exact_hosvd_factor(T, n, ranks[n])
        assert sin_angle(U, V) < tol
        np.testing.assert_allclose(U, V, atol=100 * tol)  # same vectors, same signs
    core = T.astype(np.float64)
    for n, U in enumerate(tt.factors):
        core = mode_dot(core, U.T.astype(np.float64), n)
    np.testing.assert_allclose(tt.core, core, atol=10 * tol)


def test_hosvd_refinement_by_cost_model(rng, monkeypatch):
    # large enough modes take the refinement unforced; results as above
    calls = spy_certified(monkeypatch)
    ranks = (3, 2, 3)
    T = low_rank_tensor(rng, (90, 80, 70), ranks, noise=0.01)
    tt = geoml.tucker(T, ranks, method="hosvd")
    assert calls == [True, True]
    for n, U in enumerate(tt.factors):
        assert sin_angle(U, exact_hosvd_factor(T, n, ranks[n])) < 1e-8


@pytest.mark.parametrize("dim,r", [(64, 5), (150, 12), (80, 79)])
def test_eig_top_certified_or_lapack(rng, monkeypatch, dim, r):
    # explicit Gram matrices: subspace iteration when the gap certifies it, else LAPACK; the
    # same leading eigenvectors (and signs) as LAPACK either way
    lapack = []
    orig = _subspace._eig_desc
    monkeypatch.setattr(_subspace, "_eig_desc", lambda G, k: (lapack.append(1), orig(G, k))[1])
    Q = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    lam = np.concatenate([np.geomspace(10, 1, r), 1e-4 * rng.random(dim - r)])
    G = (Q * lam) @ Q.T
    V = _subspace._eig_top(G, r, 1e-8)
    ref = orig(G, r)[1][:, :r]
    assert sin_angle(V, ref) < 1e-8
    np.testing.assert_allclose(V, ref, atol=1e-5)  # same vectors, same signs
    assert lapack == []
    # flat spectrum (no gap after r): LAPACK
    G = (Q * np.linspace(1.0, 0.9, dim)) @ Q.T
    V = _subspace._eig_top(G, r, 1e-8)
    assert lapack == [1]
    np.testing.assert_allclose(V, orig(G, r)[1][:, :r])
    # small matrices go straight to LAPACK
    Gs = G[:40, :40]
    _subspace._eig_top(Gs, 3, 1e-8)
    assert lapack == [1, 1]


@pytest.mark.parametrize(
    "shape,ranks", [((30, 25, 20), (3, 3, 3)), ((9, 8, 7), (9, 8, 7)), ((9, 30, 64), (2, 3, 3))]
)
def test_hosvd_no_gap_falls_back_to_exact_gram(rng, monkeypatch, shape, ranks):
    # pure noise (no gap after r) or an exactly rank-deficient full-rank request cannot be
    # certified: every refinement must fall back to the Gram matrix, with the same factors
    # (also after the products of both trailing modes in one pass, for the last shape)
    monkeypatch.setattr(_tucker, "_apply_cost", lambda shape, m, r: 0.0)
    calls, pair = spy_certified(monkeypatch), spy_pair(monkeypatch)
    if ranks == shape:  # full rank of a tensor whose mode-1 and -2 ranks are only 2
        T = low_rank_tensor(rng, shape, (9, 2, 2))
    else:
        T = rng.standard_normal(shape)
    tt = geoml.tucker(T, ranks, method="hosvd")
    assert calls and not any(calls)
    assert len(pair) == (shape[-1] >= 64)
    if ranks != shape:
        for n, U in enumerate(tt.factors):
            assert sin_angle(U, exact_hosvd_factor(T, n, ranks[n])) < 1e-8
    else:
        assert tt.rel_error(T) < 1e-12


@pytest.mark.parametrize(
    "shape,ranks",
    SHAPES + [((10, 9, 8), (10, 9, 8)), ((7, 6, 5), (1, 1, 1)), ((9, 4, 6, 3), (1, 1, 1, 1))],
)
def test_hooi_against_tensorly(rng, shape, ranks):
    tl_tucker = pytest.importorskip("tensorly.decomposition").tucker
    T = low_rank_tensor(rng, shape, ranks, noise=0.1)
    tt = geoml.tucker(T, ranks, method="hooi")
    core_tl, factors_tl = tl_tucker(T, rank=list(ranks), init="svd", tol=1e-10, n_iter_max=500)
    e_geoml, e_tl = tt.rel_error(T), rel_err(T, core_tl, factors_tl)
    assert tt.converged
    assert e_geoml <= e_tl + 1e-6
    assert e_geoml == pytest.approx(e_tl, rel=1e-3, abs=1e-12)


def test_tensorly_random_init_error_reached(rng):
    tl_tucker = pytest.importorskip("tensorly.decomposition").tucker
    T = low_rank_tensor(rng, (30, 25, 20), (4, 3, 5), noise=0.01)
    core_tl, factors_tl = tl_tucker(T, rank=[4, 3, 5], init="random", random_state=0)
    e_tl = rel_err(T, core_tl, factors_tl)
    for method in METHODS:
        assert geoml.tucker(T, (4, 3, 5), method=method, random_state=1).rel_error(T) <= e_tl * (
            1 + 1e-4
        )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_exact_recovery(rng, method, dtype, tol):
    for shape, ranks in SHAPES:
        T = low_rank_tensor(rng, shape, ranks).astype(dtype)
        tt = geoml.tucker(T, ranks, method=method, random_state=0)
        assert tt.core.dtype == dtype and all(U.dtype == dtype for U in tt.factors)
        assert tt.to_tensor().dtype == dtype
        assert tt.rel_error(T) < tol
        for U in tt.factors:
            np.testing.assert_allclose(
                U.T.astype(np.float64) @ U, np.eye(U.shape[1]), atol=10 * tol
            )


@pytest.mark.parametrize("method", METHODS)
def test_full_rank_and_rank_one(rng, method):
    T = rng.standard_normal((6, 5, 4))
    full = geoml.tucker(T, (6, 5, 4), method=method, random_state=0)
    assert full.rel_error(T) < 1e-12
    assert full.compression_ratio == pytest.approx(120 / (120 + 36 + 25 + 16))
    one = geoml.tucker(T, 1, method=method, random_state=0)
    assert one.rank == (1, 1, 1)
    # rank 1: the error equals sqrt(1 - (sigma / ||T||)^2) with sigma = |core|
    assert one.rel_error(T) == pytest.approx(
        np.sqrt(1 - (one.core.item() / np.linalg.norm(T)) ** 2), rel=1e-8
    )
    if method == "hooi":
        tl_tucker = pytest.importorskip("tensorly.decomposition").tucker
        c, f = tl_tucker(T, rank=[1, 1, 1], init="svd", tol=1e-12, n_iter_max=1000)
        assert one.rel_error(T) <= rel_err(T, c, f) + 1e-6


def test_float32_matches_float64(rng):
    T = low_rank_tensor(rng, (20, 15, 10), (3, 3, 2), noise=0.05)
    e64 = geoml.tucker(T, (3, 3, 2)).rel_error(T)
    tt32 = geoml.tucker(T.astype(np.float32), (3, 3, 2))
    assert tt32.core.dtype == np.float32
    assert tt32.rel_error(T.astype(np.float32)) == pytest.approx(e64, rel=1e-4)


def test_target_error_rank_selection(rng):
    shape, ranks = (14, 12, 10, 6), (3, 4, 2, 3)
    T = low_rank_tensor(rng, shape, ranks, noise=1e-6)
    for method in ["st_hosvd", "hosvd", "hooi"]:
        tt = geoml.tucker(T, 1e-3, method=method)
        assert tt.rank == ranks  # the true ranks: smaller ones miss signal, larger not needed
        assert tt.rel_error(T) <= 1e-3
    T = low_rank_tensor(rng, (15, 12, 10), (5, 5, 5), noise=0.3)
    for eps in [0.05, 0.2, 0.5]:
        tt = geoml.tucker(T, eps, method="st_hosvd")
        assert tt.rel_error(T) <= eps
        # minimal: dropping one more component of any mode would break the per-mode budget
        assert tt.compression_ratio > 1 or eps < 0.1


def test_hooi_init_options_and_nonconvergence(rng):
    T = low_rank_tensor(rng, (10, 9, 8), (3, 3, 3), noise=0.3)
    ref = geoml.tucker(T, 3).rel_error(T)
    for init in ["hosvd", "st_hosvd", "randomized"]:
        assert geoml.tucker(T, 3, init=init, random_state=0).rel_error(T) == pytest.approx(
            ref, rel=1e-4
        )
    init = [rng.standard_normal((n, 3)) for n in T.shape]
    assert geoml.tucker(T, 3, init=init, max_iter=500).rel_error(T) <= ref * (1 + 1e-2)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        tt = geoml.tucker(T, 3, init=init, max_iter=1, tol=0.0)
    assert not tt.converged and tt.n_iter == 1


def test_randomized_is_reproducible(rng):
    T = low_rank_tensor(rng, (30, 20, 25), (3, 2, 4), noise=0.2)
    a = geoml.tucker(T, (3, 2, 4), method="randomized", random_state=5)
    b = geoml.tucker(T, (3, 2, 4), method="randomized", random_state=5)
    np.testing.assert_array_equal(a.core, b.core)


def test_gram_apply_pair_bad_shapes():
    # the kernel's own checks (the Python layer only calls it with matching factors)
    X = np.zeros((3, 4, 5))
    f = geoml._core.gram_apply_pair
    with pytest.raises(ValueError, match="last two modes"):
        f(X, np.zeros((5, 2)), np.zeros((5, 2)), n_jobs=0)  # U1 needs 4 rows
    with pytest.raises(ValueError, match="last two modes"):
        f(X, np.zeros((4, 2)), np.zeros(5), n_jobs=0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        f(np.zeros(5), np.zeros((5, 2)), np.zeros((5, 2)), n_jobs=0)
    # no columns: empty and zero products
    Z1, Z2 = f(X, np.zeros((4, 0)), np.ones((5, 1)), n_jobs=0)
    assert Z1.shape == (4, 0) and Z2.shape == (5, 1) and not Z2.any()


def test_tucker_bad_input(rng):
    T = rng.standard_normal((5, 4, 3))
    with pytest.raises(ValueError, match="cannot exceed"):
        geoml.tucker(T, (2, 5, 2))
    with pytest.raises(ValueError, match="cannot exceed"):
        geoml.tucker(T, 6)
    with pytest.raises(ValueError, match="out of range"):
        geoml.tucker(T, (0, 2, 2))
    with pytest.raises(ValueError, match="3 modes"):
        geoml.tucker(T, (2, 2))
    bad = T.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        geoml.tucker(bad, 2)
    bad[1, 2, 0] = -np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        geoml.Tucker(2).fit(bad)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        geoml.tucker(np.ones(5), 1)
    with pytest.raises(ValueError, match="method"):
        geoml.tucker(T, 2, method="cp")
    with pytest.raises(ValueError, match="init only applies"):
        geoml.tucker(T, 2, method="hosvd", init="hosvd")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        geoml.tucker(T, 1.5)
    with pytest.raises(ValueError, match="integer ranks"):
        geoml.tucker(T, 0.1, method="randomized")
    with pytest.raises(ValueError, match="expected"):
        geoml.tucker(T, 2, init=[np.ones((5, 2)), np.ones((4, 3)), np.ones((3, 2))])
    with pytest.raises(TypeError):
        geoml.tucker(T, "2")
    with pytest.raises(ValueError, match="shape"):
        geoml.tucker(T, 2).rel_error(T[:4])


def test_rel_error_in_blocks(rng, monkeypatch):
    T = low_rank_tensor(rng, (9, 5, 4), (2, 2, 2), noise=0.1).astype(np.float32)
    tt = geoml.tucker(T, 2)
    whole = tt.rel_error(T)
    monkeypatch.setattr(_tucker, "_BLOCK_ENTRIES", 40)  # two mode-0 slices per block
    assert tt.rel_error(T) == pytest.approx(whole, rel=1e-12)
    assert whole == pytest.approx(rel_err(T.astype(np.float64), tt.core, tt.factors), rel=1e-5)


def test_zero_tensor():
    tt = geoml.tucker(np.zeros((4, 3, 2)), (2, 2, 1))
    assert np.all(tt.core == 0) and tt.rel_error(np.zeros((4, 3, 2))) == 0.0


# ---------------------------------------------------------------- Tucker estimator


def test_tucker_estimator_against_partial_tucker(rng):
    partial_tucker = pytest.importorskip("tensorly.decomposition").partial_tucker
    A, B = (
        np.linalg.qr(rng.standard_normal((9, 3)))[0],
        np.linalg.qr(rng.standard_normal((7, 2)))[0],
    )
    X = np.einsum("ia,sab,jb->sij", A, rng.standard_normal((40, 3, 2)), B)
    X += 0.05 * rng.standard_normal(X.shape)
    est = geoml.Tucker((3, 2)).fit(X)
    (core_tl, factors_tl), _ = partial_tucker(
        X, [3, 2], modes=[1, 2], init="svd", tol=1e-10, n_iter_max=500
    )
    for U, V in zip(est.factors_, factors_tl):
        np.testing.assert_allclose(projector(U), projector(V), atol=1e-6)
    Z = est.transform(X)
    assert Z.shape == (40, 3, 2)
    np.testing.assert_allclose(Z, np.einsum("sij,ia,jb->sab", X, *est.factors_), atol=1e-12)
    Xhat = est.inverse_transform(Z)
    err = np.linalg.norm(X - Xhat) / np.linalg.norm(X)
    assert est.rel_error_ == pytest.approx(err, rel=1e-8)
    rec_tl = np.einsum("sab,ia,jb->sij", core_tl, *factors_tl)
    assert err == pytest.approx(np.linalg.norm(X - rec_tl) / np.linalg.norm(X), rel=1e-6)
    # new samples from the same subspaces are reproduced exactly
    new = np.einsum("ia,sab,jb->sij", A, rng.standard_normal((5, 3, 2)), B)
    back = est.inverse_transform(est.transform(new))
    assert np.linalg.norm(back - new) < 0.05 * np.linalg.norm(new)
    np.testing.assert_allclose(est.fit_transform(X), Z, atol=1e-12)


def test_tucker_estimator_2d_is_uncentred_pca(rng):
    X = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 8)) + 0.01 * rng.standard_normal(
        (50, 8)
    )
    est = geoml.Tucker(3, method="st_hosvd").fit(X)
    V = np.linalg.svd(X, full_matrices=False)[2][:3].T
    np.testing.assert_allclose(projector(est.factors_[0]), projector(V), atol=1e-8)


def test_tucker_estimator_errors(rng):
    est = geoml.Tucker((2, 2))
    with pytest.raises(RuntimeError, match="not fitted"):
        est.transform(np.ones((3, 4, 4)))
    est.fit(rng.standard_normal((10, 4, 5)))
    assert est.ranks_ == (2, 2)
    with pytest.raises(ValueError, match="sample shape"):
        est.transform(np.ones((3, 5, 4)))
    with pytest.raises(ValueError, match="core shape"):
        est.inverse_transform(np.ones((3, 3, 2)))
    with pytest.raises(ValueError, match="cannot exceed"):
        geoml.Tucker((2, 6)).fit(rng.standard_normal((10, 4, 5)))


# ---------------------------------------------------------------- randomized_svd


def low_rank_matrix(rng, m, n, r, noise=0.0):
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    s = np.geomspace(10, 1, r)
    A = (U * s) @ V.T
    if noise:
        A += noise * rng.standard_normal((m, n))
    return A


def check_svd(A, res, k):
    U, s, Vt = res
    assert U.shape == (A.shape[0], k) and s.shape == (k,) and Vt.shape == (k, A.shape[1])
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-10)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(k), atol=1e-10)
    assert np.all(np.diff(s) <= 0)


@pytest.mark.parametrize("m,n,r,k", [(300, 80, 5, 5), (80, 300, 7, 10), (120, 120, 20, 20)])
def test_randomized_svd_exact_low_rank(rng, m, n, r, k):
    A = low_rank_matrix(rng, m, n, r)
    s_ref = np.linalg.svd(A, compute_uv=False)[:k]
    for Ain in [A, sp.csr_matrix(A), aslinearoperator(A)]:
        res = geoml.randomized_svd(Ain, k, random_state=0)
        check_svd(A, res, k)
        np.testing.assert_allclose(res.s, s_ref, atol=1e-6)
        np.testing.assert_allclose((res.U * res.s) @ res.Vt, A, atol=1e-8)


def test_randomized_svd_noisy_matches_optimum_and_sklearn(rng):
    extmath = pytest.importorskip("sklearn.utils.extmath")
    A = low_rank_matrix(rng, 400, 150, 10, noise=0.01)
    k = 10
    s_all = np.linalg.svd(A, compute_uv=False)
    best = np.sqrt(np.sum(s_all[k:] ** 2))
    U, s, Vt = geoml.randomized_svd(A, k, random_state=0)
    err = np.linalg.norm(A - (U * s) @ Vt)
    Us, ss, Vts = extmath.randomized_svd(A, k, random_state=0)
    err_sk = np.linalg.norm(A - (Us * ss) @ Vts)
    assert err <= best * (1 + 1e-4)
    assert err <= err_sk * (1 + 1e-4)
    np.testing.assert_allclose(s, s_all[:k], rtol=1e-4)
    # fixed iteration counts work too
    for q in [0, 1, 5]:
        U, s, Vt = geoml.randomized_svd(A, k, n_iter=q, random_state=0)
        check_svd(A, (U, s, Vt), k)
        assert np.linalg.norm(A - (U * s) @ Vt) <= best * (1.5 if q == 0 else 1.01)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_randomized_svd_sparse(rng, fmt, dtype):
    # a sparse matrix of exact rank 6: product of two sparse factors
    L = sp.random(500, 6, density=0.3, random_state=rng, format="csr")
    R = sp.random(6, 200, density=0.3, random_state=rng, format="csr")
    A = (L @ R).asformat(fmt).astype(dtype)
    Ad = A.toarray().astype(np.float64)
    s_ref = np.linalg.svd(Ad, compute_uv=False)[:6]
    U, s, Vt = geoml.randomized_svd(A, 6, random_state=0)
    assert U.dtype == dtype
    tol = 1e-6 * s_ref[0] if dtype == np.float64 else 1e-4 * s_ref[0]
    np.testing.assert_allclose(s, s_ref, atol=tol)
    np.testing.assert_allclose((U * s) @ Vt, Ad, atol=tol)


def test_randomized_svd_sparse_paths_agree(rng, monkeypatch):
    A = sp.random(300, 120, density=0.05, random_state=rng, format="csr")
    A64 = sp.csr_matrix(
        (A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64)), shape=A.shape
    )
    ref = geoml.randomized_svd(A.toarray(), 8, n_iter=3, random_state=0)
    a = geoml.randomized_svd(A, 8, n_iter=3, random_state=0)
    b = geoml.randomized_svd(A64, 8, n_iter=3, random_state=0)
    monkeypatch.setattr(_svd, "_SCATTER_BYTES", -1)  # force the explicit-transpose path
    c = geoml.randomized_svd(A, 8, n_iter=3, random_state=0, n_jobs=2)
    for res in (a, b, c):
        np.testing.assert_allclose(res.s, ref.s, rtol=1e-10)
        np.testing.assert_allclose(res.U, ref.U, atol=1e-8)


def test_sparse_products_against_scipy(rng):
    A = sp.random(700, 90, density=0.03, random_state=rng, format="csr")
    X, Y = rng.standard_normal((90, 5)), rng.standard_normal((700, 5))
    for nj in [1, 2, 3]:
        f = geoml._core.csr_matmat
        np.testing.assert_allclose(
            f(A.data, A.indices, A.indptr, X, n_cols=90, n_jobs=nj), A @ X, atol=1e-12
        )
        np.testing.assert_allclose(
            f(A.data, A.indices, A.indptr, Y, n_cols=90, transpose=True, n_jobs=nj),
            A.T @ Y,
            atol=1e-12,
        )
    # A^T Y: fixed row blocks summed in block order, the same bits for any thread count
    # (per-thread buffers were summed in a thread-count order)
    big = sp.random(20_000, 300, density=0.05, random_state=rng, format="csr")
    Z = rng.standard_normal((20_000, 12))
    outs = [
        geoml._core.csr_matmat(
            big.data, big.indices, big.indptr, Z, n_cols=300, transpose=True, n_jobs=nj
        )
        for nj in (1, 2, 3)
    ]
    np.testing.assert_allclose(outs[0], big.T @ Z, rtol=1e-12, atol=1e-10)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def test_randomized_svd_reproducible_and_float32(rng):
    A = low_rank_matrix(rng, 100, 60, 4, noise=0.01)
    a = geoml.randomized_svd(A, 4, random_state=3)
    b = geoml.randomized_svd(A, 4, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a.U, b.U)
    c = geoml.randomized_svd(A.astype(np.float32), 4, random_state=3)
    assert c.U.dtype == np.float32
    np.testing.assert_allclose(c.s, a.s, rtol=1e-4)


def test_randomized_svd_bad_input(rng):
    A = rng.standard_normal((10, 6))
    with pytest.raises(ValueError, match="out of range"):
        geoml.randomized_svd(A, 7)
    with pytest.raises(ValueError, match="out of range"):
        geoml.randomized_svd(A, 0)
    bad = A.copy()
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        geoml.randomized_svd(bad, 2)
    S = sp.csr_matrix(A)
    S.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        geoml.randomized_svd(S, 2)
    with pytest.raises(ValueError, match="n_iter"):
        geoml.randomized_svd(A, 2, n_iter="many")
    with pytest.raises(ValueError, match="out of range"):
        geoml.randomized_svd(A, 2, n_oversamples=-1)
    with pytest.raises(ValueError, match="2-D"):
        geoml.randomized_svd(np.ones(5), 1)
    with pytest.raises(TypeError, match="random_state"):
        geoml.randomized_svd(A, 2, random_state="seed")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_randomized_sketch_path(dtype):
    # a large mode, small ranks: mode 0 goes through the Gaussian sketch (the time model
    # prefers the exact step for the other, smaller modes)
    rng = np.random.default_rng(7)
    shape, ranks = (400, 60, 50), (2, 3, 2)
    assert _cost_model._rand_step(shape, 0, 2, 5, 1)[0]
    assert not _cost_model._rand_step(shape, 1, 3, 5, 1)[0]
    T = low_rank_tensor(rng, shape, ranks, noise=0.01).astype(dtype)
    tt = geoml.tucker(T, ranks, method="randomized", random_state=0)
    st = geoml.tucker(T, ranks, method="st_hosvd")
    assert tt.rel_error(T) == pytest.approx(st.rel_error(T), rel=1e-4)
    for U in tt.factors:
        np.testing.assert_allclose(U.T.astype(np.float64) @ U, np.eye(U.shape[1]), atol=1e-5)
    exact = low_rank_tensor(rng, shape, ranks).astype(dtype)
    assert geoml.tucker(
        exact, ranks, method="randomized", n_power_iter=0, random_state=1
    ).rel_error(exact) < (1e-10 if dtype == np.float64 else 1e-5)


def test_warm_eigensolver_matches_lapack(rng):
    # a clear gap: from a perturbed start the certified subspace equals LAPACK's
    I, r = 60, 4
    V = np.linalg.qr(rng.standard_normal((I, I)))[0]
    lam = np.concatenate([[9.0, 7.0, 5.0, 3.0], rng.uniform(0, 1e-3, I - r)])
    G = (V * lam) @ V.T
    U0 = np.linalg.qr(V[:, :r] + 1e-3 * rng.standard_normal((I, r)))[0]
    U = _subspace._eig_warm(G, U0)
    assert U is not None
    ref = _subspace._eig_desc(G, r)[1]
    np.testing.assert_allclose(U, ref, atol=1e-9)  # same vectors, same sign convention
    # a flat spectrum cannot be certified: None, and HOOI falls back to LAPACK
    assert _subspace._eig_warm(np.eye(I) + 1e-3 * np.diag(np.arange(I)), U0) is None
    # a start orthogonal to the leading subspace does not converge in the allotted steps
    assert _subspace._eig_warm(G, V[:, r : 2 * r]) is None
    # a tiny tail: U's own bound misses the tolerance, but one free power step (G U) meets it
    lam_t = np.concatenate([lam[:r], np.full(I - r, 1e-9)])
    Gt = (V * lam_t) @ V.T
    U0 = np.linalg.qr(V[:, :r] + 1e-5 * rng.standard_normal((I, r)))[0]
    calls = []
    U = _subspace._certified_subspace(
        lambda Q: (calls.append(1), Gt @ Q)[1], U0, float(np.trace(Gt)), 0, 1e-10
    )
    assert U is not None and len(calls) == 1
    assert sin_angle(U, V[:, :r]) < 1e-10
    np.testing.assert_allclose(U, _subspace._eig_desc(Gt, r)[1], atol=1e-9)
    # with the same start, the first-order bound alone (no free step: huge tail) fails
    assert _subspace._certified_subspace(lambda Q: G @ Q, U0, float(np.trace(G)), 0, 1e-10) is None


@pytest.mark.parametrize(
    "isa", [i for i in ("avx2", "generic") if i == "generic" or geoml._core.simd_isa() != "generic"]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_simd_kernels_every_isa(isa, dtype):
    # geoml's own SIMD loops (product to few rows, sum of squares) on each compiled ISA
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 7, 133)).astype(dtype)
    X64 = X.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    geoml._core.set_simd_isa(isa)
    try:
        for n, J in [(0, 5), (1, 6), (1, 1)]:
            A = rng.standard_normal((J, X.shape[n])).astype(dtype)
            ref = mode_dot(X64, A.astype(np.float64), n)
            np.testing.assert_allclose(
                _kernels._ttm(X, n, A, False, 0), ref, atol=tol * np.abs(ref).max()
            )
        for n in range(3):  # Gram matrix (times columns): slab blocks (n < 2), rows (n = 2)
            U = rng.standard_normal((X.shape[n], 6)).astype(dtype)
            G = unfold(X64, n) @ unfold(X64, n).T
            np.testing.assert_allclose(
                _kernels._gram_apply(X, n, U, 0),
                G @ U.astype(np.float64),
                atol=tol * np.abs(G @ U).max(),
            )
            np.testing.assert_allclose(_kernels._gram(X, n, 0), G, atol=tol * np.abs(G).max())
        x = rng.standard_normal(40_003).astype(dtype)
        assert _kernels._sumsq(x, 0) == pytest.approx(
            float(np.sum(x.astype(np.float64) ** 2)), rel=1e-12
        )
    finally:
        geoml._core.set_simd_isa("auto")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ts_gram_same_bits_for_any_thread_count(rng, dtype):
    """Y^T Y sums its row blocks in groups fixed by the shape, not by the thread count."""
    from geoml import _core

    Y = rng.normal(size=(3 * 4096 + 17, 12)).astype(dtype)  # m l^2 >= 2^20: the threaded path
    G1 = _core.ts_gram(Y, n_jobs=1)
    G2 = _core.ts_gram(Y, n_jobs=2)
    np.testing.assert_array_equal(G1, G2)
    ref = Y.astype(np.float64).T @ Y.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12  # float32 rows are summed in float32 per block
    np.testing.assert_allclose(G1, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_kernels_same_bits_for_any_thread_count(rng, dtype):
    """The Gram matrix (times columns) and the sum of squares add their task partials in
    groups fixed by the shape, not by the thread count or the schedule."""
    from geoml import _core

    X = rng.standard_normal((40, 30, 200)).astype(dtype)  # threaded paths for every mode

    def run(nj):
        out = [_core.sum_squares(X, n_jobs=nj)]
        for n in range(3):  # slabs in place (n = 0, 1), rows (n = 2)
            U = np.ascontiguousarray(rng_u[n])
            out += [_core.mode_gram(X, n, n_jobs=nj), _core.gram_apply(X, n, U, n_jobs=nj)]
        out += list(_core.gram_apply_pair(X, rng_u[1], rng_u[2], n_jobs=nj))
        return out

    rng_u = [rng.standard_normal((s, 5)).astype(dtype) for s in X.shape]
    ref = run(1)
    for _ in range(3):
        for a, b in zip(ref, run(2)):
            np.testing.assert_array_equal(a, b)
    X64 = X.astype(np.float64)
    assert ref[0] == pytest.approx(float(np.sum(X64**2)), rel=1e-12)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for n in range(3):
        G = unfold(X64, n) @ unfold(X64, n).T
        np.testing.assert_allclose(ref[1 + 2 * n], G, atol=tol * np.abs(G).max())


@pytest.mark.parametrize("method", METHODS)
def test_tucker_same_bits_for_any_thread_count(rng, method):
    T = low_rank_tensor(rng, (40, 30, 200), (4, 3, 5), noise=0.05)
    c1, f1 = geoml.tucker(T, (4, 3, 5), method=method, random_state=0, n_jobs=1)
    for _ in range(3):
        c2, f2 = geoml.tucker(T, (4, 3, 5), method=method, random_state=0, n_jobs=2)
        np.testing.assert_array_equal(c1, c2)
        for a, b in zip(f1, f2):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["hooi", "hosvd", "st_hosvd", "randomized"])
def test_tucker_is_equivariant_in_the_scale(dtype, method):
    """Tucker factors do not depend on the scale of T and the core scales with it: float64
    tensors of 1e-200 gave nan (their Gram matrices underflowed), of 1e-150 a 1 % worse fit,
    of 1e300 a refusal; float32 tensors of 1e-25 / 1e25 wrong ranks or an IndexError; and
    ``rel_error`` of a 1e-200 tensor was 0 (its squared norm underflowed)."""
    rng = np.random.default_rng(5)
    T = rng.standard_normal((6, 5, 4)).astype(dtype)
    scales = [1e-300, 1e-200, 1e-150, 1e150, 1e300] if dtype == np.float64 else [1e-25, 1e25]
    tol = 1e-12 if dtype == np.float64 else 1e-5
    ref = geoml.tucker(T, (2, 2, 2), method=method, random_state=0)
    ref_rank = geoml.tucker(T, 0.5, method="hosvd" if method == "randomized" else method).rank
    ref_est = geoml.Tucker((2, 2), method=method, random_state=0).fit(T)
    for s in scales:
        Ts = T * dtype(s)
        tt = geoml.tucker(Ts, (2, 2, 2), method=method, random_state=0)
        assert tt.core.dtype == dtype
        assert np.allclose(tt.core.astype(np.float64) / s, ref.core, rtol=tol, atol=tol)
        assert tt.rel_error(Ts) == pytest.approx(ref.rel_error(T), rel=tol)
        eps_method = "hosvd" if method == "randomized" else method
        assert geoml.tucker(Ts, 0.5, method=eps_method).rank == ref_rank
        est = geoml.Tucker((2, 2), method=method, random_state=0).fit(Ts)
        assert est.rel_error_ == pytest.approx(ref_est.rel_error_, rel=tol)
