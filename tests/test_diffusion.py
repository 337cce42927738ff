"""geoml.diffusion: heat-kernel actions (vs SciPy expm / expm_multiply and closed forms)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import expm
from scipy.sparse.linalg import expm_multiply

import geoml


def knn_affinity(n, seed, k=8, dim=3):
    X = np.random.default_rng(seed).standard_normal((n, dim))
    return geoml.knn_graph(X, k, kernel="gaussian")


def relerr(Y, ref):
    """Largest per-column relative 2-norm error."""
    Y = np.asarray(Y, dtype=np.float64).reshape(ref.shape[0], -1)
    ref = ref.reshape(ref.shape[0], -1)
    return float((np.linalg.norm(Y - ref, axis=0) / np.linalg.norm(ref, axis=0)).max())


# ----------------------------------------------------------------------------- heat_kernel


@pytest.mark.parametrize("kind", ["symmetric", "combinatorial", "random_walk"])
@pytest.mark.parametrize("seed", [0, 1])
def test_heat_kernel_vs_expm_multiply(kind, seed):
    W = knn_affinity(300, seed)
    L = geoml.laplacian(W, kind=kind).tocsc()
    X = np.random.default_rng(seed + 10).standard_normal((300, 3))
    times = [0.01, 0.3, 1.0, 10.0, 100.0, 1000.0]
    if kind == "combinatorial":  # lmax ~ 16 here: t = 100 is t lmax / 2 = 800 (and SciPy is slow)
        times = times[:-1]
    Y = geoml.heat_kernel(W, X, times, laplacian=kind, tol=1e-8)
    assert Y.shape == (len(times), 300, 3) and Y.dtype == np.float64
    for j, t in enumerate(times):
        ref = expm_multiply(-t * L, X)
        assert relerr(Y[j], ref) <= 1e-8, (t, relerr(Y[j], ref))


@pytest.mark.parametrize("kind", ["symmetric", "combinatorial", "random_walk"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heat_kernel_vs_dense_expm(kind, seed):
    rng = np.random.default_rng(seed)
    n = 25
    A = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
    W = np.triu(A, 1) + np.triu(A, 1).T
    L = geoml.laplacian(W, kind=kind).toarray()
    x = rng.standard_normal(n)
    for t in (0.05, 2.0, 50.0):
        ref = expm(-t * L) @ x
        y = geoml.heat_kernel(W, x, t, laplacian=kind, tol=1e-10)
        assert y.shape == (n,)
        assert relerr(y, ref) <= 1e-10
    # the whole heat kernel (X = I) at once
    H = geoml.heat_kernel(sp.csr_matrix(W), np.eye(n), 1.5, laplacian=kind, tol=1e-10)
    np.testing.assert_allclose(H, expm(-1.5 * L), rtol=0, atol=1e-10)


def test_heat_kernel_closed_forms():
    n = 40
    # path graph: combinatorial eigenpairs 2 - 2 cos(pi k / n), cos(pi k (j + 1/2) / n)
    W = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], shape=(n, n))
    k = np.arange(n)
    j = np.arange(n)
    lam = 2 - 2 * np.cos(np.pi * k / n)
    U = np.cos(np.pi * np.outer(j + 0.5, k) / n)
    U /= np.linalg.norm(U, axis=0)
    X = np.random.default_rng(0).standard_normal((n, 2))
    for t in (0.1, 3.0, 300.0):
        ref = U @ (np.exp(-t * lam)[:, None] * (U.T @ X))
        assert relerr(geoml.heat_kernel(W, X, t, laplacian="combinatorial"), ref) <= 1e-8
    # cycle graph: eigenvalues 2 - 2 cos(2 pi k / n), Fourier modes (real circulant)
    C = sp.lil_matrix((n, n))
    for i in range(n):
        C[i, (i + 1) % n] = C[(i + 1) % n, i] = 1.0
    x = np.zeros(n)
    x[0] = 1.0
    for t in (0.2, 5.0, 500.0):
        # heat kernel from node 0: (1/n) sum_k exp(-t lam_k) cos(2 pi k j / n)
        lam_c = 2 - 2 * np.cos(2 * np.pi * k / n)
        ref = (np.exp(-t * lam_c)[None, :] * np.cos(2 * np.pi * np.outer(j, k) / n)).sum(1) / n
        for kind in ("combinatorial", "symmetric", "random_walk"):  # 2-regular: L_sym = L / 2
            tt = t if kind == "combinatorial" else 2 * t
            y = geoml.heat_kernel(C.tocsr(), x, tt, laplacian=kind)
            assert relerr(y, ref) <= 1e-8


def test_heat_kernel_times_and_threads():
    W = knn_affinity(400, 3)
    X = np.random.default_rng(1).standard_normal((400, 5))
    times = [0.5, 2.0, 20.0]
    Y = geoml.heat_kernel(W, X, times, n_jobs=2)
    for j, t in enumerate(times):
        assert relerr(Y[j], geoml.heat_kernel(W, X, t)) <= 2e-8
    Y1 = geoml.heat_kernel(W, X, times, n_jobs=1)
    np.testing.assert_array_equal(Y1, Y)  # rows are split over threads: same bits
    # a tuple and an ndarray of times give the same as the list; a 0-d array is a scalar
    np.testing.assert_array_equal(geoml.heat_kernel(W, X, np.array(times), n_jobs=1), Y1)
    assert geoml.heat_kernel(W, X, np.float64(2.0)).shape == (400, 5)


def test_heat_kernel_renumbered_graph(monkeypatch):
    # from _RCM_MIN_N nodes (and large blocks) on the graph is renumbered (RCM) inside; the
    # result is in the caller's order, and the continued series (large t) agrees too
    from geoml.diffusion import _heat

    monkeypatch.setattr(_heat, "_RCM_MIN_BLOCK", 0)
    n = _heat._RCM_MIN_N + 100
    W = knn_affinity(n, 8, k=6)
    L = geoml.laplacian(W).tocsc()
    X = np.random.default_rng(3).standard_normal((n, 2))
    Y = geoml.heat_kernel(W, X, [0.7, 300.0], n_jobs=2)
    assert relerr(Y[0], expm_multiply(-0.7 * L, X)) <= 1e-8
    assert relerr(Y[1], expm_multiply(-300.0 * L, X)) <= 1e-8
    np.testing.assert_array_equal(geoml.heat_kernel(W, X, [0.7, 300.0], n_jobs=1), Y)


def test_heat_kernel_float32():
    W = knn_affinity(200, 4)
    L = geoml.laplacian(W).tocsc()
    X = np.random.default_rng(2).standard_normal((200, 3))
    Y = geoml.heat_kernel(W.astype(np.float32), X.astype(np.float32), 4.0, tol=1e-5)
    assert Y.dtype == np.float32
    assert relerr(Y, expm_multiply(-4.0 * L, X)) <= 1e-5
    # float32 X on a float64 graph also stays float32
    assert geoml.heat_kernel(W, X.astype(np.float32), 1.0).dtype == np.float32


def test_heat_kernel_disconnected_and_isolated():
    # two components and an isolated node: heat stays in its component, mass conserved
    # (combinatorial / random walk) and the isolated node is untouched
    A = sp.block_diag([knn_affinity(30, 5), knn_affinity(20, 6), sp.csr_matrix((1, 1))]).tocsr()
    n = A.shape[0]
    x = np.zeros(n)
    x[0] = 1.0
    x[-1] = 2.0
    y = geoml.heat_kernel(A, x, 1e4, laplacian="combinatorial")
    np.testing.assert_allclose(y[:30], np.full(30, 1 / 30), rtol=1e-7)
    np.testing.assert_allclose(y[30:50], 0.0, atol=1e-12)
    assert y[-1] == pytest.approx(2.0, rel=1e-8)  # tol relative to the column's norm
    for kind in ("symmetric", "random_walk"):
        L = geoml.laplacian(A, kind=kind).toarray()
        X = np.random.default_rng(0).standard_normal((n, 2))
        assert relerr(geoml.heat_kernel(A, X, 3.0, laplacian=kind), expm(-3.0 * L) @ X) <= 1e-8
    # a graph with no edges: exp(-t 0) = I
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(geoml.heat_kernel(sp.csr_matrix((3, 3)), X, [1.0, 2.0])[1], X)


def test_heat_kernel_zero_columns_and_large_t():
    W = knn_affinity(150, 7)
    X = np.zeros((150, 2))
    X[:, 1] = np.random.default_rng(0).standard_normal(150)
    L = geoml.laplacian(W).tocsc()
    Y = geoml.heat_kernel(W, X, 1000.0)
    np.testing.assert_array_equal(Y[:, 0], 0.0)
    assert relerr(Y[:, 1:], expm_multiply(-1000.0 * L, X[:, 1:])) <= 1e-8


def test_heat_kernel_at_large_t_lmax_needs_an_order_like_its_square_root():
    """The Chebyshev order grows like sqrt(t lmax): the combinatorial Laplacian of a graph
    with weighted degrees up to 1.2e5 at t = 10 (t lmax / 2 = 1.2e6) and the symmetric and
    random-walk ones at t = 1e6 need a few thousand orders. All were refused ("needs a
    Chebyshev order above 200000; use a smaller t"): the coefficients' search bound was
    t lmax / 2 + 60 sqrt(t lmax / 2) + 80 (now 60 sqrt(t lmax / 2) + 80, past which they
    are below e^-1800; beyond 200,000 the terms past it bounded by a geometric series).
    Checked against the eigendecomposition, as t grows to 1e6 the result tends to the
    projection on the Laplacian's null space."""
    from scipy.linalg import eigh

    import geoml.diffusion._heat as heat

    W = knn_affinity(80, 3) * 1e4
    X = np.random.default_rng(1).standard_normal((80, 3))
    X[:, 2] = 1.0  # the constant: kept by the combinatorial Laplacian
    for kind, t in (("combinatorial", 10.0), ("symmetric", 1e6), ("random_walk", 1e6)):
        L = geoml.laplacian(W, kind=kind).toarray()
        w, V = np.linalg.eig(L) if kind == "random_walk" else eigh(L)
        w, V = np.maximum(w.real, 0.0), V.real
        ref = V @ (np.exp(-t * w)[:, None] * np.linalg.solve(V, X))
        assert relerr(geoml.heat_kernel(W, X, t, laplacian=kind), ref) <= 1e-8
        lmax = 2.0 * L.diagonal().max() if kind == "combinatorial" else 2.0
        assert t * lmax / 2 >= 5e5 and heat._order_bound(t * lmax / 2) < heat._MAX_ORDER
    # the search bound still covers every target: the orders of smaller t are unchanged
    for a in (1e-3, 1.0, 30.0, 1e3, 1e5):
        for target in (5e-9, 1e-20, float(np.finfo(float).tiny) ** 0.5):
            coef, K, bound = heat._chebyshev_coefficients(np.array([a]), target, 1e3)
            assert bound <= target and heat._order_bound(a) > K
    # past the cap (60 sqrt(a) + 80 > 200,000): the terms beyond it bounded, not dropped
    from scipy.special import ive

    coef, K, bound = heat._chebyshev_coefficients(np.array([1e8]), 5e-9, 1.0)
    true_tail = 2.0 * ive(np.arange(K + 1, K + 400_000), 1e8).sum()
    assert K < heat._MAX_ORDER and true_tail <= bound * (1 + 1e-12) and bound <= 5e-9
    # beyond the cap: refused with the same message
    with pytest.raises(ValueError, match="order above 200000"):
        heat._chebyshev_coefficients(np.array([1e10]), 5e-9, 1.0)


def test_heat_fixed_order_beyond_the_bessel_range_is_refused():
    """heatgeo's fixed order (``order=K``) at t lmax / 2 beyond ~1.07e9, where scipy's
    ``ive`` is NaN: ``heat_geodesic_distances(W, 2e9, order=32)`` returned NaN distances
    without a warning (with the search bound 60 sqrt(a) + 80; before it, the truncation
    estimate allocated an array of t lmax / 2 entries, 10.9 GB here). Refused now; 1e8
    still runs (with its truncation warning)."""
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    W = alpha_decay_graph(np.random.default_rng(0).normal(size=(60, 3)), 8)
    with pytest.raises(ValueError, match="Bessel"):
        heat_geodesic_distances(W, 2e9, order=32)
    with pytest.warns(RuntimeWarning, match="order=32"):
        D = heat_geodesic_distances(W, 1e8, order=32)
    assert np.isfinite(D).all()


@pytest.mark.parametrize("scale", [2.0**-700, 1e-200, 1e200, 1e300])
def test_heat_kernel_is_equivariant_in_the_scale_of_x(scale):
    """exp(-t L) is linear: X of 1e-200 / 1e200 must meet tol relative to each column's own
    decayed norm at large t, as X of unit scale does (the norms' squares underflowed /
    overflowed, so the continuation of the series was skipped: 5e-8 against tol 1e-8 at
    t = 100, and a RuntimeWarning "invalid value" from inf / inf)."""
    W = knn_affinity(300, 0)
    X = np.random.default_rng(1).standard_normal((300, 4))
    L = geoml.laplacian(W).tocsc()
    for t in (100.0, 1000.0):
        ref = expm_multiply(-t * L, X)
        Y = geoml.heat_kernel(W, X * scale, t)
        assert relerr(Y / scale, ref) <= 1e-8
        if scale == 2.0**-700:  # a power of two: the same steps, the same bits
            np.testing.assert_array_equal(Y, geoml.heat_kernel(W, X, t) * scale)
        # one column at that scale beside unit ones: each column to tol of its own norm
        Xm = X.copy()
        Xm[:, 0] *= scale
        Y = geoml.heat_kernel(W, Xm, [t, 1.0])[0]
        Y[:, 0] /= scale
        assert relerr(Y, ref) <= 1e-8


@pytest.mark.parametrize("scale", [1e-320, 2.0**-1060, 1e300])
def test_heat_kernel_symmetric_laplacian_of_extreme_weights(scale):
    """The normalised Laplacian does not depend on the scale of W: subnormal weights (1e-320)
    raised "W's degrees overflow (entries too large)" (1 / d overflowed), as
    geoml.laplacian did before session 28; now the same result as at unit scale, like the
    random-walk kind."""
    W = sp.csr_matrix(knn_affinity(120, 2))
    W.data[:] = 1.0  # exact under any power-of-two scaling, and 1e-320 * 1 is representable
    X = np.random.default_rng(3).standard_normal((120, 2))
    want = geoml.heat_kernel(W, X, 5.0)
    Ws = W * scale
    assert Ws.data.min() > 0
    got = geoml.heat_kernel(Ws, X, 5.0)
    tol = 1e-12 if scale != 1e-320 else 1e-8  # 1e-320 is not a power of two (subnormal)
    assert relerr(got, want) <= tol
    rw = geoml.heat_kernel(Ws, X, 5.0, laplacian="random_walk")
    assert relerr(rw, geoml.heat_kernel(W, X, 5.0, laplacian="random_walk")) <= tol


@pytest.mark.parametrize(
    "t, message",
    [
        (0.0, "t must be > 0"),
        (-1.0, "t must be > 0"),
        ([1.0, -2.0], "t must be > 0"),
        (np.nan, "NaN or infinity"),
        ([1.0, np.inf], "NaN or infinity"),
        ([], "non-empty"),
        ([[1.0]], "1-D"),
    ],
)
def test_heat_kernel_bad_times(t, message):
    W = knn_affinity(20, 0, k=4)
    with pytest.raises(ValueError, match=message):
        geoml.heat_kernel(W, np.ones(20), t)


def test_heat_kernel_bad_input():
    W = knn_affinity(20, 0, k=4)
    x = np.ones(20)
    with pytest.raises(TypeError, match="t must be"):
        geoml.heat_kernel(W, x, True)
    with pytest.raises(TypeError, match="t must be"):
        geoml.heat_kernel(W, x, "1")
    with pytest.raises(ValueError, match="NaN"):
        geoml.heat_kernel(W, np.full(20, np.nan), 1.0)
    with pytest.raises(ValueError, match="rows"):
        geoml.heat_kernel(W, np.ones(19), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        geoml.heat_kernel(W, np.ones((20, 2, 2)), 1.0)
    with pytest.raises(ValueError, match="laplacian="):
        geoml.heat_kernel(W, x, 1.0, laplacian="normalized")
    with pytest.raises(ValueError, match="method="):
        geoml.heat_kernel(W, x, 1.0, method="pade")
    with pytest.raises(ValueError, match="tol"):
        geoml.heat_kernel(W, x, 1.0, tol=0)
    with pytest.raises(ValueError, match="symmetric"):
        geoml.heat_kernel(sp.triu(W).tocsr(), x, 1.0)
    with pytest.raises(ValueError, match="negative"):
        geoml.heat_kernel(-W, x, 1.0)
    with pytest.raises(TypeError, match="sparse"):
        geoml.heat_kernel(W, sp.csr_matrix(np.ones((20, 1))), 1.0)
    with pytest.raises(ValueError, match="smaller t"):
        geoml.heat_kernel(W, x, 1e9, laplacian="combinatorial")


# ----------------------------------------------------------------------------- MDS


def euclid(P):
    return np.sqrt(((P[:, None, :] - P[None, :, :]) ** 2).sum(-1))


def raw_stress(Y, D):
    return float((np.triu(euclid(Y) - D, 1) ** 2).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classical_mds_recovers_euclidean(seed):
    from geoml.diffusion import classical_mds

    rng = np.random.default_rng(seed)
    for n in (30, 300):  # dense LAPACK and Lanczos paths
        P = rng.standard_normal((n, 3)) * [3.0, 2.0, 1.0]
        D = euclid(P)
        Y, w = classical_mds(D, 3, random_state=0)
        np.testing.assert_allclose(euclid(Y), D, atol=1e-8 * D.max())
        # eigenvalues: those of the centred Gram matrix, descending
        Pc = P - P.mean(0)
        np.testing.assert_allclose(w, np.linalg.eigvalsh(Pc.T @ Pc)[::-1], rtol=1e-8)


def test_classical_mds_vs_sklearn():
    manifold = pytest.importorskip("sklearn.manifold")
    if not hasattr(manifold, "ClassicalMDS"):
        pytest.skip("scikit-learn without ClassicalMDS")
    from geoml.diffusion import classical_mds

    rng = np.random.default_rng(3)
    D = euclid(rng.standard_normal((80, 6)))  # not exactly 2-D: truncated spectrum
    Y, _ = classical_mds(D, 2, random_state=0)
    ref = manifold.ClassicalMDS(n_components=2, metric="precomputed").fit_transform(D)
    np.testing.assert_allclose(np.abs(Y), np.abs(ref), atol=1e-8 * np.abs(ref).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smacof_vs_sklearn_same_start(seed):
    manifold = pytest.importorskip("sklearn.manifold")
    from geoml.diffusion import smacof

    rng = np.random.default_rng(seed)
    n = 120
    # non-Euclidean dissimilarities (a noisy 5-D configuration seen in 2-D)
    D = euclid(rng.standard_normal((n, 5))) * rng.uniform(0.8, 1.2, (n, n))
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    Y0 = rng.uniform(size=(n, 2))
    Y, stress, n_iter, conv = smacof(D, Y0, max_iter=300, eps=1e-6)
    Yr, sr, nr = manifold.smacof(
        D,
        metric=True,
        n_components=2,
        init=Y0.copy(),
        n_init=1,
        max_iter=300,
        eps=1e-6,
        return_n_iter=True,
    )
    assert stress == pytest.approx(raw_stress(Y, D), rel=1e-10)
    assert stress <= sr * (1 + 1e-9)  # never above scikit-learn's from the same start
    # same iterates: same number of transforms and the same configuration
    assert n_iter == nr
    np.testing.assert_allclose(Y, Yr, atol=1e-7 * np.abs(Yr).max())
    # float32 dissimilarities: same result to float32 rounding; threads do not matter
    Y32, s32, _, _ = smacof(D.astype(np.float32), Y0, max_iter=300, eps=1e-6, n_jobs=2)
    assert s32 == pytest.approx(stress, rel=1e-4)
    Y1 = smacof(D, Y0, max_iter=50, n_jobs=1)[0]
    np.testing.assert_array_equal(Y1, smacof(D, Y0, max_iter=50, n_jobs=2)[0])


def test_smacof_monotone_and_max_iter():
    from geoml.diffusion import smacof

    rng = np.random.default_rng(5)
    D = euclid(rng.standard_normal((60, 4)))
    Y0 = rng.standard_normal((60, 2))
    stresses = [smacof(D, Y0, max_iter=it, eps=0)[1] for it in range(12)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(stresses))
    Y, s, n_iter, conv = smacof(D, Y0, max_iter=3, eps=0)
    assert n_iter == 3 and not conv
    Y, s, n_iter, conv = smacof(D, Y0, max_iter=0)
    np.testing.assert_array_equal(Y, Y0)
    assert s == pytest.approx(raw_stress(Y0, D))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smacof_relaxed(seed):
    """Over-relaxed SMACOF: the reported stress is its result's, monotone in max_iter, never
    above the plain iterates' (converged from the same start) and in fewer transforms; exact
    on Euclidean data; threads do not matter."""
    from geoml.diffusion import smacof

    rng = np.random.default_rng(seed)
    n = 150
    D = euclid(rng.standard_normal((n, 5))) * rng.uniform(0.8, 1.2, (n, n))
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    Y0 = rng.uniform(size=(n, 2))
    Y, s, it, conv = smacof(D, Y0, max_iter=1000, eps=1e-8)
    Yx, sx, itx, convx = smacof(D, Y0, max_iter=1000, eps=1e-8, relax=True)
    # measured: 185 / 495 / 185 transforms vs 197 / 1000 (not converged) / 392
    assert convx and itx < it
    assert sx == pytest.approx(raw_stress(Yx, D), rel=1e-10)
    assert sx <= s * (1 + 1e-6)
    stresses = [smacof(D, Y0, max_iter=k, eps=0, relax=True)[1] for k in range(15)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(stresses))
    assert stresses[0] <= raw_stress(Y0, D)  # the start's best multiple
    np.testing.assert_array_equal(
        Yx, smacof(D, Y0, max_iter=1000, eps=1e-8, relax=True, n_jobs=2)[0]
    )
    P = rng.standard_normal((80, 2))
    Yp, sp_, _, convp = smacof(euclid(P), rng.standard_normal((80, 2)), relax=True, eps=1e-12)
    assert convp and sp_ <= 1e-10 * (euclid(P) ** 2).sum()  # measured <= 1e-7 (sum 2.5e4)
    with pytest.raises(TypeError, match="relax"):
        smacof(D, Y0, relax="yes")


def test_smacof_threads_and_one_transform():
    """n large enough for several threads (blocks of the upper-triangle pass): the same bits
    for any thread count, and one transform equal to the dense Guttman formula."""
    from geoml.diffusion import smacof

    rng = np.random.default_rng(9)
    n = 400
    D = euclid(rng.standard_normal((n, 4))) * rng.uniform(0.9, 1.1, (n, n))
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    Y0 = rng.standard_normal((n, 3))
    for relax in (False, True):
        Y1 = smacof(D, Y0, max_iter=20, relax=relax, n_jobs=1)[0]
        for nt in (2, 3):
            np.testing.assert_array_equal(Y1, smacof(D, Y0, max_iter=20, relax=relax, n_jobs=nt)[0])
    d = euclid(Y0)
    R = np.divide(D, d, out=np.zeros_like(D), where=d > 0)
    G = (R.sum(1)[:, None] * Y0 - R @ Y0) / n
    Y, s, _, _ = smacof(D, Y0, max_iter=1, eps=0, n_jobs=2)
    np.testing.assert_allclose(Y, G, rtol=1e-12, atol=1e-12 * np.abs(G).max())
    assert s == pytest.approx(raw_stress(G, D), rel=1e-12)


@pytest.mark.parametrize("p", [2, 3])
@pytest.mark.parametrize("n", [37, 64, 201])
def test_smacof_isas_agree(n, p):
    """The AVX-512 pass (1 / d_ij by rsqrt14 and Newton steps, masked tails; with two
    components in one pass over each row) against the generic copy (sqrt and division): one
    transform to the dense Guttman formula and 30 transforms to each other, with coincident
    points (d_ij = 0: ratio 0), float32 and float64 dissimilarities, any thread count."""
    from geoml import _core
    from geoml.diffusion import smacof

    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, p))
    X[5] = X[2]  # a zero distance in the start
    D = euclid(rng.standard_normal((n, 4))) * rng.uniform(0.9, 1.1, (n, n))
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    d = euclid(X)
    R = np.divide(D, d, out=np.zeros_like(D), where=d > 0)
    G = (R.sum(1)[:, None] * X - R @ X) / n
    out = {}
    try:
        for isa in ("generic", "auto"):
            _core.set_simd_isa(isa)
            for dt in (np.float64, np.float32):
                Y, s, _, _ = smacof(D.astype(dt), X, max_iter=1, eps=0, n_jobs=1)
                tol = 1e-6 if dt == np.float32 else 1e-12  # D rounded to float32
                np.testing.assert_allclose(Y, G, rtol=tol, atol=tol * np.abs(G).max())
            for nt in (1, 2):
                out[isa, nt] = smacof(D, X, max_iter=30, eps=0, relax=True, n_jobs=nt)
    finally:
        _core.set_simd_isa("auto")
    np.testing.assert_array_equal(out["auto", 1][0], out["auto", 2][0])
    ref, got = out["generic", 1], out["auto", 1]
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-10 * np.abs(ref[0]).max())
    assert got[1] == pytest.approx(ref[1], rel=1e-10)


def test_mds_estimator():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 4))
    D = euclid(X)
    a = geoml.MDS(n_components=2, random_state=0, n_jobs=1).fit(X)
    b = geoml.MDS(n_components=2, random_state=0, n_jobs=2, dissimilarity="precomputed").fit(D)
    np.testing.assert_allclose(a.embedding_, b.embedding_, atol=1e-8)
    assert a.embedding_.shape == (150, 2) and a.converged_ and a.n_iter_ > 0
    assert a.stress_ == pytest.approx(raw_stress(a.embedding_, D), rel=1e-8)
    # the classical start never has less stress than its SMACOF refinement
    c = geoml.MDS(n_components=2, metric=False).fit(X)
    assert c.n_iter_ == 0 and a.stress_ <= c.stress_
    # random start: uniform [0, 1) from random_state, as scikit-learn
    r1 = geoml.MDS(init="random", random_state=3, max_iter=3000).fit(X)
    r2 = geoml.MDS(init="random", random_state=3, max_iter=3000).fit(X)
    np.testing.assert_array_equal(r1.embedding_, r2.embedding_)
    # a given start
    Y0 = rng.standard_normal((150, 2))
    e = geoml.MDS(init=Y0).fit(X)
    assert e.stress_ <= raw_stress(Y0, D)
    # float32 input works and gives the same embedding to float32 accuracy
    f = geoml.MDS(random_state=0).fit(X.astype(np.float32))
    assert f.stress_ == pytest.approx(a.stress_, rel=1e-3)


def test_mds_landmarks():
    rng = np.random.default_rng(1)
    P = rng.standard_normal((1000, 2)) * [4.0, 1.0]
    X = np.hstack([P, np.zeros((1000, 3))])  # exactly 2-D data in 5-D
    m = geoml.MDS(n_components=2, landmarks=60, random_state=0, n_jobs=1).fit(X)
    assert m.landmarks_.shape == (60,)
    Y = m.embedding_
    idx = rng.choice(1000, 200, replace=False)
    # Euclidean data: landmark MDS is exact up to the SMACOF tolerance
    np.testing.assert_allclose(euclid(Y[idx]), euclid(P[idx]), atol=1e-3 * 10)
    # explicit landmark indices and precomputed input give the same as features
    lm = np.arange(0, 1000, 25)
    a = geoml.MDS(landmarks=lm, random_state=0).fit(X)
    b = geoml.MDS(landmarks=lm, random_state=0, dissimilarity="precomputed").fit(euclid(X))
    np.testing.assert_allclose(a.embedding_, b.embedding_, atol=1e-6)


def test_mds_precomputed_reads_a_rounding_level_diagonal_as_zero():
    """Distances through the Gram matrix (sqrt(|x|^2 + |y|^2 - 2 x.y)) leave ~1e-8 |x| on the
    diagonal; scikit-learn's MDS ignores the diagonal. geoml reads a diagonal up to 1e-8 of the
    largest entry as 0 (the user's array untouched) and refuses a larger one."""
    manifold = pytest.importorskip("sklearn.manifold")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 4)) + 5.0
    D = euclid(X)
    scale = D.max()
    Dn = D.copy()
    Dn[np.diag_indices(60)] = rng.uniform(0, 1e-9 * scale, 60)
    Dn_before = Dn.copy()
    Y0 = rng.uniform(size=(60, 2))
    for kw in ({"init": "classical"}, {"init": Y0}):
        ref = geoml.MDS(dissimilarity="precomputed", random_state=0, **kw).fit(D)
        got = geoml.MDS(dissimilarity="precomputed", random_state=0, **kw).fit(Dn)
        np.testing.assert_array_equal(got.embedding_, ref.embedding_)
        assert got.stress_ == ref.stress_
    np.testing.assert_array_equal(Dn, Dn_before)
    # scikit-learn from the same start: the same configuration with the noisy diagonal
    Yr = manifold.smacof(Dn, metric=True, init=Y0.copy(), n_init=1, max_iter=300, eps=1e-6)[0]
    Y = geoml.MDS(dissimilarity="precomputed", init=Y0, max_iter=300, eps=1e-6).fit(Dn)
    np.testing.assert_allclose(Y.embedding_, Yr, atol=1e-7 * np.abs(Yr).max())
    Dn[0, 0] = 1e-7 * scale
    with pytest.raises(ValueError, match="non-zero diagonal"):
        geoml.MDS(dissimilarity="precomputed").fit(Dn)


def test_mds_bad_input():
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match="n_components"):
        geoml.MDS(n_components=20).fit(X)
    with pytest.raises(ValueError, match="init="):
        geoml.MDS(init="pca").fit(X)
    with pytest.raises(ValueError, match="init must have shape"):
        geoml.MDS(init=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match="dissimilarity="):
        geoml.MDS(dissimilarity="cosine").fit(X)
    with pytest.raises(ValueError, match="square"):
        geoml.MDS(dissimilarity="precomputed").fit(X)
    D = euclid(X)
    D[0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        geoml.MDS(dissimilarity="precomputed").fit(D)
    with pytest.raises(ValueError, match="negative"):
        geoml.MDS(dissimilarity="precomputed").fit(-euclid(X))
    with pytest.raises(ValueError, match="diagonal"):
        geoml.MDS(dissimilarity="precomputed").fit(euclid(X) + 1.0)
    with pytest.raises(TypeError, match="sparse"):
        geoml.MDS(dissimilarity="precomputed").fit(sp.csr_matrix(euclid(X)))
    with pytest.raises(ValueError, match="NaN"):
        geoml.MDS().fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="landmarks"):
        geoml.MDS(landmarks=[0, 0, 1]).fit(X)
    with pytest.raises(ValueError, match="landmarks"):
        geoml.MDS(landmarks=2).fit(X)
    with pytest.raises(TypeError, match="landmarks"):
        geoml.MDS(landmarks=[0.5, 1.0, 2.0]).fit(X)
    with pytest.raises(TypeError, match="metric"):
        geoml.MDS(metric="yes").fit(X)
    with pytest.warns(RuntimeWarning, match="max_iter"):
        geoml.MDS(max_iter=1, init="random", random_state=0).fit(X)


# ----------------------------------------------------------------------------- HeatGeo


def swiss_roll(n, seed=0):
    """(points (n, 3), unrolled coordinates (n, 2): arc length along the spiral, height)."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    h = 21 * rng.random(n)
    arc = 0.5 * (t * np.sqrt(1 + t**2) + np.arcsinh(t))
    return np.column_stack([t * np.cos(t), h, t * np.sin(t)]), np.column_stack([arc, h])


def dense_heat_geodesics(W, t, rho=0.0, eig=None):
    """HeatGeo's formula from a dense eigendecomposition (independent of geoml's kernels);
    ``eig``: the (w, V) of L_sym if already known."""
    if eig is None:
        W = np.asarray(W.todense() if sp.issparse(W) else W, dtype=np.float64)
        np.fill_diagonal(W, 0)
        d = W.sum(1)
        s = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
        L = np.diag((d > 0).astype(float)) - s[:, None] * W * s[None, :]
        eig = np.linalg.eigh(L)
    w, V = eig
    H = np.maximum((V * np.exp(-t * w)) @ V.T, 0)
    S = -4 * t * np.log(H + 1e-16)
    h = np.diag(H)
    S += rho * 4 * t * np.log(0.5 * (h[:, None] + h[None, :]) + 1e-16)
    D = np.sqrt(np.maximum(S, 0))
    np.fill_diagonal(D, 0)
    return D


@pytest.mark.parametrize("seed", [0, 1])
def test_heat_geodesics_vs_dense_formula(seed):
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    X, _ = swiss_roll(200, seed=seed)
    W = alpha_decay_graph(X, 10)
    Wd = W.toarray()
    d = Wd.sum(1)
    L = np.eye(200) - Wd / np.sqrt(np.outer(d, d))
    eig = np.linalg.eigh(L)
    for t in (1.0, 10.0):
        for rho in (0.0, 0.5, 1.0):
            D = heat_geodesic_distances(W, t, harnack_regularization=rho, n_jobs=1)
            ref = dense_heat_geodesics(W, t, rho, eig=eig)
            assert D.shape == (200, 200)
            np.testing.assert_array_equal(D, D.T)
            np.testing.assert_array_equal(np.diag(D), 0)
            assert np.linalg.norm(D - ref) <= 1e-6 * np.linalg.norm(ref)
            # entrywise where the heat is well above the rounding of either computation
            # (1e-16 absolute: near 1e-12, log H of both carries ~1e-4 relative noise)
            ok = ref < np.sqrt(-4 * t * np.log(1e-10))
            np.testing.assert_allclose(D[ok], ref[ok], rtol=1e-6, atol=0)


def test_heat_geodesics_landmarks_are_columns():
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    X, _ = swiss_roll(300, seed=4)
    W = alpha_decay_graph(X, 8)
    full = heat_geodesic_distances(W, 5.0)
    lm = np.array([3, 50, 51, 299])
    part = heat_geodesic_distances(W, 5.0, landmarks=lm)
    assert part.shape == (300, 4)
    np.testing.assert_allclose(part, full[:, lm], rtol=1e-9, atol=1e-9)


def test_heat_geodesics_at_small_t_match_a_dense_transcription():
    """Heat values near the 1e-16 floor, whose logarithm the distances take, were only
    accurate to ``tol / 2`` of a unit column (3e-17): at t = 0.1 and 1 the distances were
    1e-4 and 3e-5 relative off a dense ``expm`` transcription (heatgeo's own order-32
    expansion: 6e-14). Also through the landmark path and the estimator."""
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    rng = np.random.default_rng(5)
    S = rng.normal(size=(300, 3))
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    W = alpha_decay_graph(S, 5)
    Wd = W.toarray()
    d = Wd.sum(axis=1)
    L = np.eye(300) - Wd / np.sqrt(np.outer(d, d))
    cols = np.arange(0, 300, 7)
    for t in (0.1, 1.0, 3.0):
        H = np.maximum(expm(-t * L), 0.0)
        H = 0.5 * (H + H.T)
        ref = np.sqrt(np.maximum(-4 * t * np.log(H + 1e-16), 0.0))
        np.fill_diagonal(ref, 0.0)
        D = heat_geodesic_distances(W, t)
        assert np.linalg.norm(D - ref) <= 1e-8 * np.linalg.norm(ref), t
        Dl = heat_geodesic_distances(W, t, landmarks=cols)
        R = ref[:, cols]
        assert np.linalg.norm(Dl - R) <= 1e-8 * np.linalg.norm(R), t
    hg = geoml.HeatGeo(affinity="precomputed", t=0.1, mds="classical").fit(W)
    np.testing.assert_array_equal(hg.distances_, heat_geodesic_distances(W, 0.1))


def _heatgeo():
    """heatgeo's ``embedding`` module (skips without it, graphtools or pygsp); heatgeo imports
    s_gd2 at module level, unused by these tests: a stub where it is not installed."""
    import sys
    import types

    pytest.importorskip("graphtools")
    pytest.importorskip("pygsp")
    try:
        import s_gd2  # noqa: F401
    except ImportError:
        sys.modules["s_gd2"] = types.ModuleType("s_gd2")
    return pytest.importorskip("heatgeo.embedding")


def test_heat_geodesics_vs_heatgeo():
    """heatgeo's HeatGeo distance on its own graph (knn=10, decay=40, tau=10, Chebyshev
    order 32, normalised Laplacian) to 1e-6 relative; skipped without heatgeo."""
    he = _heatgeo()
    from geoml.diffusion import heat_geodesic_distances

    X, _ = swiss_roll(400, seed=1)
    ref = he.HeatGeo(knn=10)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="PCA"):
        ref.fit(X)
    ref.metric_computation(X)
    W = ref.graph.W
    D = heat_geodesic_distances(W, 10.0)
    off = ~np.eye(400, dtype=bool)  # heatgeo's diagonal is sqrt(-4 t log H_ii), unused there
    R = ref.dist
    assert np.linalg.norm((D - R)[off]) <= 1e-6 * np.linalg.norm(R[off])
    np.testing.assert_allclose(D[off], R[off], rtol=1e-6)
    # geoml's alpha-decay graph is graphtools' up to affinities at the 1e-4 threshold
    from geoml.diffusion import alpha_decay_graph

    G = alpha_decay_graph(X, 10)
    assert abs(G - W).max() <= 2e-4
    assert abs(G.nnz - W.nnz) <= 0.01 * W.nnz


def test_heat_geodesics_with_heatgeos_fixed_order():
    """``order=K`` is heatgeo's ``order`` (``filter_method="mar"``: the series of order K on
    [0, lmax], lmax by ARPACK): heatgeo's distances reproduced where its series has not
    converged (t = 40 at order 16 / 32, t = 1 at order 8), with a warning saying the series
    is truncated above tol; order=None is converged there instead. Skipped without heatgeo
    for the comparison; the other checks need only SciPy."""
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    X, _ = swiss_roll(300, seed=2)
    W = alpha_decay_graph(X, 8)
    off = ~np.eye(300, dtype=bool)
    # a large fixed order converges to the default's result; landmarks are its columns
    D0 = heat_geodesic_distances(W, 5.0)
    D = heat_geodesic_distances(W, 5.0, order=120)
    np.testing.assert_allclose(D[off], D0[off], rtol=1e-10)
    lm = np.array([3, 50, 299])
    np.testing.assert_allclose(
        heat_geodesic_distances(W, 5.0, order=120, landmarks=lm), D[:, lm], rtol=1e-12, atol=0
    )
    with pytest.warns(RuntimeWarning, match="order=8: the Chebyshev series .* truncated"):
        D8 = heat_geodesic_distances(W, 5.0, order=8)
    assert np.linalg.norm((D8 - D0)[off]) > 1e-3 * np.linalg.norm(D0[off])
    for bad, err in ((0, ValueError), (-3, ValueError), (2.5, TypeError), ("32", TypeError)):
        with pytest.raises(err, match="order"):
            heat_geodesic_distances(W, 5.0, order=bad)
        with pytest.raises(err, match="order"):
            geoml.HeatGeo(order=bad, mds="classical").fit(X)
    # the estimator passes it on (with and without landmarks)
    with pytest.warns(RuntimeWarning, match="order=8"):
        hg = geoml.HeatGeo(n_neighbors=8, t=5.0, order=8, mds="classical").fit(X)
    np.testing.assert_allclose(hg.distances_, D8, rtol=1e-12, atol=1e-12)
    assert geoml.HeatGeo(order=8).get_params()["order"] == 8
    he = _heatgeo()
    Xr, _ = swiss_roll(400, seed=1)
    off = ~np.eye(400, dtype=bool)
    for tau, order in ((40, 32), (40, 16), (1, 8), (5, 64)):
        ref = he.HeatGeo(knn=10, tau=tau, order=order)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.fit(Xr)
            ref.metric_computation(Xr)
        R = ref.dist
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "order=", RuntimeWarning)
            D = heat_geodesic_distances(ref.graph.W, float(tau), order=order)
        np.testing.assert_allclose(D[off], R[off], rtol=1e-10)


def test_heatgeo_estimator():
    X, U = swiss_roll(400, seed=2)
    a = geoml.HeatGeo(n_neighbors=10, random_state=0, n_jobs=1).fit(X)
    assert a.embedding_.shape == (400, 2) and a.distances_.shape == (400, 400)
    W = a.affinity_matrix_
    b = geoml.HeatGeo(affinity="precomputed", random_state=0, n_jobs=2).fit(W)
    np.testing.assert_allclose(b.embedding_, a.embedding_, atol=1e-8)
    from geoml.diffusion import heat_geodesic_distances

    np.testing.assert_array_equal(a.distances_, heat_geodesic_distances(W, 10.0))
    # the embedding keeps the geometry of the unrolled roll
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    rho = spearmanr(pdist(a.embedding_), pdist(U))[0]
    raw = spearmanr(pdist(X), pdist(U))[0]  # 0.36: the roll's 3-D distances
    assert rho > raw + 0.3  # measured 0.717 (Isomap, 10 neighbours: 0.635)
    # landmarks: an (n, L) block only, points placed by triangulation
    c = geoml.HeatGeo(n_landmarks=120, random_state=0, n_jobs=1).fit(X)
    assert c.distances_.shape == (400, 120) and c.landmarks_.shape == (120,)
    np.testing.assert_allclose(c.distances_, a.distances_[:, c.landmarks_], rtol=1e-9, atol=1e-9)
    rho_c = spearmanr(pdist(c.embedding_), pdist(U))[0]
    assert rho_c > raw + 0.2  # measured 0.629 with 120 landmarks
    d = geoml.HeatGeo(mds="classical", random_state=0, n_jobs=1).fit(X)
    assert d.embedding_.shape == (400, 2) and d.stress_ >= a.stress_


def test_heatgeo_disconnected_graph_warns_and_caps():
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    X1, _ = swiss_roll(60, seed=1)
    X2, _ = swiss_roll(40, seed=2)
    W = sp.block_diag([alpha_decay_graph(X1, 6), alpha_decay_graph(X2, 6)]).tocsr()
    with pytest.warns(RuntimeWarning, match="2 connected components"):
        D = heat_geodesic_distances(W, 3.0)
    cap = np.sqrt(-4 * 3.0 * np.log(1e-16))
    np.testing.assert_allclose(D[:60, 60:], cap, rtol=1e-12)
    assert D[:60, :60].max() < cap
    with pytest.warns(RuntimeWarning, match="connected components"):
        geoml.HeatGeo(affinity="precomputed", random_state=0).fit(W)


def test_heatgeo_bad_input():
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    X, _ = swiss_roll(50)
    W = alpha_decay_graph(X, 5)
    with pytest.raises(ValueError, match="t must be > 0"):
        heat_geodesic_distances(W, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        heat_geodesic_distances(W, np.nan)
    with pytest.raises(ValueError, match="single number"):
        heat_geodesic_distances(W, [1.0, 2.0])
    with pytest.raises(ValueError, match="harnack"):
        heat_geodesic_distances(W, 1.0, harnack_regularization=1.5)
    with pytest.raises(ValueError, match="harnack"):
        heat_geodesic_distances(W, 1.0, harnack_regularization=0.5, landmarks=np.arange(5))
    with pytest.raises(ValueError, match="landmarks"):
        heat_geodesic_distances(W, 1.0, landmarks=np.array([0, 50]))
    with pytest.warns(UserWarning, match="n_neighbors=50 is larger than the dataset size"):
        assert geoml.HeatGeo(n_neighbors=50, mds="classical").fit(X).n_neighbors_ == 49
    with pytest.raises(ValueError, match="n_neighbors"):
        alpha_decay_graph(X, 50)
    with pytest.raises(ValueError, match="decay"):
        alpha_decay_graph(X, 5, decay=-1)
    with pytest.raises(ValueError, match="mds="):
        geoml.HeatGeo(mds="sgd").fit(X)
    with pytest.raises(ValueError, match="affinity="):
        geoml.HeatGeo(affinity="knn").fit(X)
    with pytest.raises(ValueError, match="t must be > 0"):
        geoml.HeatGeo(t=-1).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        geoml.HeatGeo().fit(np.full((20, 3), np.nan))
    with pytest.raises(ValueError, match="n_landmarks"):
        geoml.HeatGeo(n_landmarks=2).fit(X)


def test_heatgeo_landmark_distances_blocked_and_float32(monkeypatch):
    """Landmark heat-geodesic columns in several column blocks equal the one-block result;
    past the size threshold HeatGeo keeps them in float32 (single-precision agreement)."""
    import geoml.diffusion._heatgeo as hg
    from geoml.diffusion import alpha_decay_graph, heat_geodesic_distances

    X, _ = swiss_roll(300, seed=5)
    W = alpha_decay_graph(X, 8)
    lm = np.r_[0, 7, 30, 31, 100, 250, 299, np.arange(110, 230, 10)]  # 19 landmarks
    one = heat_geodesic_distances(W, 5.0, landmarks=lm)
    monkeypatch.setattr(hg, "_BLOCK_ENTRIES", 1)  # blocks of 8 columns: 3 blocks
    many = heat_geodesic_distances(W, 5.0, landmarks=lm)
    np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12)
    a = geoml.HeatGeo(n_landmarks=40, t=5.0, random_state=0, n_jobs=1).fit(X)
    assert a.distances_.dtype == np.float64
    monkeypatch.setattr(hg, "_F32_ENTRIES", 1)
    b = geoml.HeatGeo(n_landmarks=40, t=5.0, random_state=0, n_jobs=1).fit(X)
    assert b.distances_.dtype == np.float32
    np.testing.assert_array_equal(a.landmarks_, b.landmarks_)
    np.testing.assert_allclose(b.distances_, a.distances_, rtol=1e-6, atol=1e-6)
    scale = np.abs(a.embedding_).max()
    assert np.abs(b.embedding_ - a.embedding_).max() <= 1e-3 * scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_heat_symmetric_map_and_permutation_match_laplacian(dtype):
    """The direct L_sym - I of heat_kernel (isolated nodes and self-loops included) equals the
    Chebyshev map of geoml.laplacian entry for entry, and the CSR renumbering equals
    SciPy's A[perm][:, perm] with sorted indices."""
    from geoml.diffusion._heat import _permute, _spectral_map, _symmetric_shifted

    A = sp.random(300, 300, density=0.004, random_state=1, dtype=dtype)
    W = sp.csr_matrix(A + A.T + sp.diags(np.r_[np.ones(10), np.zeros(290)]).astype(dtype))
    S, d = _symmetric_shifted(W)
    assert (d == 0).sum() > 10 and S.dtype == dtype and S.has_sorted_indices
    R = _spectral_map(geoml.laplacian(W), 2.0, dtype)
    assert S.nnz == R.nnz and abs(S - R).max() == 0
    perm = np.random.default_rng(0).permutation(300)
    P = _permute(S, perm)
    assert P.has_sorted_indices and abs(P - S[perm][:, perm]).max() == 0


def test_mds_of_identical_points_converges_without_warning():
    """All dissimilarities 0 (identical points): stress 0 is the exact minimum, reported as
    converged without the SMACOF warning (the relative decrease test never accepted it: a
    spurious "did not meet eps ... raise max_iter" from MDS and PHATE)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = geoml.MDS(random_state=0).fit(np.ones((30, 3)))
        assert m.converged_ and m.stress_ == 0.0
        np.testing.assert_array_equal(m.embedding_, 0.0)
        m = geoml.MDS(dissimilarity="precomputed", init="random", random_state=0)
        assert m.fit(np.zeros((5, 5))).converged_
        assert np.ptp(m.embedding_, axis=0).max() == 0.0
        Y = geoml.PHATE(random_state=0).fit_transform(np.ones((30, 3)))
        np.testing.assert_array_equal(Y, 0.0)
    # a start that collapsed to a point under non-zero dissimilarities is no minimum
    X = np.random.default_rng(0).standard_normal((10, 2))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    with pytest.warns(RuntimeWarning, match="did not meet eps"):
        m = geoml.MDS(dissimilarity="precomputed", init=np.zeros((10, 2))).fit(D)
    assert not m.converged_


@pytest.mark.parametrize("e", [-532, -700, -1000])
def test_mds_of_tiny_coordinates_is_equivariant(e):
    """MDS(2^e X) = 2^e MDS(X) (classical and SMACOF, landmarks, precomputed) for
    coordinates so small that their squares are subnormal. Before, 1e-160 coordinates gave
    an embedding 7 % off and 1e-170 ones stress 0 and a wrong embedding, silently (large
    ones were already refused)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    for kw, A in (
        ({}, X),
        ({"landmarks": 40}, X),
        ({"metric": False}, X),
        ({"dissimilarity": "precomputed"}, D),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (50 transforms: eps=0 unmet)
            ref = geoml.MDS(random_state=0, max_iter=50, eps=0, **kw).fit(A)
            got = geoml.MDS(random_state=0, max_iter=50, eps=0, **kw).fit(np.ldexp(A, e))
        np.testing.assert_allclose(np.ldexp(got.embedding_, -e), ref.embedding_, atol=1e-10)
        if e == -532:  # stress, eigenvalues ~2^-1050, ~2^-1057: subnormal (24, 17 bits)
            np.testing.assert_allclose(np.ldexp(got.stress_, -2 * e), ref.stress_, rtol=1e-6)
            if ref.eigenvalues_ is not None:
                np.testing.assert_allclose(
                    np.ldexp(got.eigenvalues_, -2 * e), ref.eigenvalues_, rtol=1e-4
                )


@pytest.mark.parametrize("landmarks", [None, 40])
def test_mds_given_start_at_tiny_scale_and_metric_false(landmarks):
    """A given ``init`` is in the units of X: MDS(2^e X, init=2^e Y0) = 2^e MDS(X, init=Y0)
    for coordinates so small that MDS works on X scaled up (e = -600), after 0, 3 and 300
    transforms, and with features or precomputed dissimilarities. Before, only X was scaled:
    the start stayed at 1e-181 beside dissimilarities of 1 (its squares underflow) and the
    embedding came back 0, silently. And ``metric=False`` is the classical embedding whatever
    ``init`` (it returned the start itself: random points from ``init="random"``, with
    ``converged_=True``)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 5))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    nm = 80 if landmarks is None else landmarks
    Y0 = rng.standard_normal((nm, 2))
    e = -600
    for pre, A in ((False, X), (True, D)):
        kw = {"dissimilarity": "precomputed"} if pre else {}
        for max_iter in (0, 3, 300):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # (0 and 3 transforms)
                ref = geoml.MDS(
                    init=Y0, max_iter=max_iter, landmarks=landmarks, random_state=0, **kw
                )
                ref.fit(A)
                got = geoml.MDS(
                    init=np.ldexp(Y0, e),
                    max_iter=max_iter,
                    landmarks=landmarks,
                    random_state=0,
                    **kw,
                )
                got.fit(np.ldexp(A, e))
            assert np.abs(ref.embedding_).max() > 0.1
            np.testing.assert_allclose(
                np.ldexp(got.embedding_, -e), ref.embedding_, rtol=0, atol=1e-9
            )
    # metric=False: the classical embedding, whatever the start
    ref = geoml.MDS(metric=False, landmarks=landmarks, random_state=0).fit(X)
    for init in ("random", Y0):
        got = geoml.MDS(metric=False, init=init, landmarks=landmarks, random_state=0).fit(X)
        np.testing.assert_array_equal(got.embedding_, ref.embedding_)
        assert got.stress_ == ref.stress_ and got.eigenvalues_ is not None
        got = geoml.MDS(metric=False, init=init, landmarks=landmarks, random_state=0)
        got.fit(np.ldexp(X, e))
        np.testing.assert_allclose(np.ldexp(got.embedding_, -e), ref.embedding_, atol=1e-10)


@pytest.mark.parametrize("n_landmarks", [None, 80])
def test_heatgeo_transform(monkeypatch, n_landmarks):
    """HeatGeo.transform: the fitted data gives embedding_ (a copy; fit_transform's); rows
    equal to fitted points their rows; new points graphtools' transitions (NumPy kernel)
    times embedding_, near their neighbours' positions; float32; deterministic."""
    X, _ = swiss_roll(300, seed=6)
    est = geoml.HeatGeo(n_neighbors=8, n_landmarks=n_landmarks, random_state=0)
    E = est.fit_transform(X)
    Z = est.transform(X)
    assert np.array_equal(Z, E) and Z is not est.embedding_
    assert np.array_equal(est.transform(X[[4, 1, 8]]), E[[4, 1, 8]])
    rng = np.random.default_rng(1)
    Y = X[rng.choice(300, 25, replace=False)] + 0.2 * rng.standard_normal((25, 3))
    Zy = est.transform(Y)
    assert Zy.shape == (25, 2) and Zy.dtype == np.float64
    assert np.array_equal(est.transform(Y), Zy)
    graphtools = pytest.importorskip("graphtools")
    monkeypatch.setattr(pytest.importorskip("graphtools.graphs"), "NUMBA_AVAILABLE", False)
    G = graphtools.Graph(X, knn=8, decay=40, thresh=1e-4, n_pca=None, random_state=0)
    ref = G.interpolate(E, G.extend_to_data(Y))
    np.testing.assert_allclose(Zy, ref, rtol=1e-9, atol=1e-9 * np.abs(E).max())
    # midpoints of fitted points and their nearest neighbours land near them: within the
    # embedded radius of the point's 8 nearest neighbours (measured: median 0.24 of it; a
    # random fitted point is ~5 radii away)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(D, np.inf)
    gap = np.linalg.norm(est.transform(0.5 * (X + X[D.argmin(axis=1)])) - E, axis=1)
    rad = np.linalg.norm(E[np.argsort(D, axis=1)[:, :8]] - E[:, None], axis=2).max(axis=1)
    assert (gap <= rad).all() and np.median(gap / rad) < 0.4
    # float32 data: the same graph to rounding, queries in the fitted dtype
    e32 = geoml.HeatGeo(n_neighbors=8, n_landmarks=n_landmarks, random_state=0)
    e32.fit(X.astype(np.float32))
    assert np.array_equal(e32.transform(X.astype(np.float32)), e32.embedding_)
    np.testing.assert_array_equal(e32.transform(Y), e32.transform(Y.astype(np.float32)))


def test_heatgeo_transform_bad_input_and_precomputed():
    from geoml.diffusion import alpha_decay_graph

    X, _ = swiss_roll(100, seed=7)
    est = geoml.HeatGeo(n_neighbors=6, random_state=0)
    with pytest.raises(geoml.NotFittedError, match="HeatGeo is not fitted"):
        est.transform(X)
    est.fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but HeatGeo is expecting 3"):
        est.transform(np.ones((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        est.transform(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="Reshape your data"):
        est.transform(X[0])
    W = alpha_decay_graph(X, 6)
    pre = geoml.HeatGeo(affinity="precomputed", random_state=0).fit(W)
    assert np.array_equal(pre.transform(W), pre.embedding_)
    with pytest.raises(ValueError, match="fitted on a precomputed affinity matrix"):
        pre.transform(W[:50, :50])
    with pytest.raises(ValueError, match="square"):
        pre.transform(W[:10])


@pytest.mark.parametrize("n_landmarks", [None, 150])
def test_heatgeo_same_bits_for_any_blas_and_thread_count(n_landmarks):
    """HeatGeo's embedding is the same bits with 1 and 2 threads, whatever BLAS's own thread
    count (its GEMMs run on one BLAS thread: a multi-threaded OpenBLAS GEMM splits its work by
    the thread count, which changes the bits on its Haswell kernels)."""
    from threadpoolctl import threadpool_limits

    X, _ = swiss_roll(1200, seed=3)
    out = []
    for nt in (1, 2):
        with threadpool_limits(nt, user_api="blas"):
            est = geoml.HeatGeo(n_landmarks=n_landmarks, random_state=0, n_jobs=nt).fit(X)
        out.append(est.embedding_)
    np.testing.assert_array_equal(out[0], out[1])


def test_mds_landmark_index_errors_say_what_is_wrong():
    """Given landmark indices: a repeated index, one out of range and too few each get their
    own message (before, one message for all: "must hold at least n_components + 1 = 3
    distinct indices in [0, 40)", misleading for [0, 1, 1, 2, 3], which holds 4)."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match=r"landmarks repeats index 1 \(2 times.*np\.unique"):
        geoml.MDS(landmarks=[0, 1, 1, 2, 3]).fit(X)
    with pytest.raises(ValueError, match=r"outside \[0, 40\).*e\.g\. 40; landmarks must be"):
        geoml.MDS(landmarks=[0, 1, 40]).fit(X)
    with pytest.raises(ValueError, match=r"outside \[0, 40\).*e\.g\. -1"):
        geoml.MDS(landmarks=np.array([-1, 2, 3])).fit(X)
    with pytest.raises(
        ValueError, match=r"holds 2 index\(es\) but n_components=2 needs at least 3"
    ):
        geoml.MDS(landmarks=[0, 1]).fit(X)
    assert geoml.MDS(landmarks=[5, 0, 1, 2]).fit(X).embedding_.shape == (40, 2)


def test_diffusion_warnings_point_at_the_caller():
    """Every warning of PHATE, HeatGeo, MDS and heat_geodesic_distances names the caller's
    line, through fit and fit_transform (the components warnings, SMACOF's non-convergence
    and the truncations named geoml's own files: Python's default filter then showed them
    once per session, whatever the data of later fits)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Xd = np.vstack([X[:20], X[20:] + 100])  # two components
    calls = [
        lambda: geoml.PHATE(knn=3, random_state=0).fit(Xd),
        lambda: geoml.PHATE(knn=50, random_state=0).fit_transform(X),
        lambda: geoml.PHATE(max_iter=1, random_state=0).fit(X),
        lambda: geoml.PHATE(gamma=0.995, random_state=0).fit_transform(X),
        lambda: geoml.MDS(landmarks=50, random_state=0).fit(X),
        lambda: geoml.MDS(max_iter=1, init="random", random_state=0).fit(X),
        lambda: geoml.MDS(max_iter=1, init="random", random_state=0).fit_transform(X),
        lambda: geoml.HeatGeo(max_iter=1, random_state=0).fit(X),
        lambda: geoml.HeatGeo(max_iter=1, n_landmarks=10, random_state=0).fit_transform(X),
        lambda: geoml.HeatGeo(n_neighbors=3, random_state=0).fit(Xd),
        lambda: geoml.HeatGeo(n_neighbors=3, n_landmarks=10, random_state=0).fit(Xd),
        lambda: geoml.HeatGeo(n_neighbors=50, random_state=0).fit_transform(X),
        lambda: geoml.DiffusionMap(n_neighbors=3, random_state=0).fit_transform(Xd),
        lambda: geoml.diffusion.heat_geodesic_distances(geoml.knn_graph(Xd, 3)),
    ]
    for call in calls:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            call()
        assert rec and all(w.filename == __file__ for w in rec), [
            (w.filename, str(w.message)[:60]) for w in rec
        ]


def test_classical_mds_replaces_a_lanczos_solve_that_stops_short(monkeypatch):
    """classical_mds (and MDS's start) has no max_iter, ncv or tol: a Lanczos solve that ran
    out of restarts warned "eigsh did not converge ...; raise max_iter or ncv, or loosen tol"
    and returned its pairs. B is in memory: the dense eigendecomposition replaces it, with no
    warning (forced here: one short cycle reported as out of restarts, so no check runs)."""
    from geoml.diffusion import classical_mds

    P = np.random.default_rng(0).standard_normal((400, 60))
    D = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
    B = D**2
    B -= B.mean(axis=0)[None, :]
    B -= B.mean(axis=1)[:, None]
    B *= -0.5
    w_ref = np.linalg.eigvalsh(0.5 * (B + B.T))[::-1][:4]
    orig = geoml._core.eigsh_dense

    def out_of_restarts(*args, options, **kw):
        options.max_iter, options.ncv = 1, 6
        out = list(orig(*args, options=options, **kw))
        out[3] = 10**9  # n_iter: past any max_iter
        return tuple(out)

    monkeypatch.setattr(geoml._core, "eigsh_dense", out_of_restarts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Y, w = classical_mds(D, 4, random_state=0)
    np.testing.assert_allclose(w, w_ref, rtol=1e-10)
    D2 = np.sqrt(((Y[:, None] - Y[None]) ** 2).sum(-1))
    Y_ref, _ = classical_mds(D, 4, random_state=0)  # (still patched: the same dense result)
    np.testing.assert_array_equal(Y, Y_ref)
    monkeypatch.undo()
    Y_l, w_l = classical_mds(D, 4, random_state=0)  # the Lanczos result, unpatched
    np.testing.assert_allclose(w, w_l, rtol=1e-9)
    np.testing.assert_allclose(D2, np.sqrt(((Y_l[:, None] - Y_l[None]) ** 2).sum(-1)), atol=1e-6)
