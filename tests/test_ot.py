"""geoml.ot against POT: exact OT (network simplex), Sinkhorn, batched solvers."""

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
from geoml import ot as got

pot = pytest.importorskip("ot")

SHAPES = [(1, 1), (1, 7), (6, 1), (3, 4), (16, 16), (40, 25), (120, 150)]


def _problem(rng, m, n, d=2, zeros=False):
    a = rng.random(m) + 0.05
    b = rng.random(n) + 0.05
    if zeros and m > 2 and n > 2:
        a[rng.choice(m, m // 3, replace=False)] = 0.0
        b[rng.choice(n, n // 3, replace=False)] = 0.0
    a /= a.sum()
    b /= b.sum()
    x, y = rng.normal(size=(m, d)), rng.normal(size=(n, d))
    return a, b, pot.dist(x, y)


def _check_emd(res, a, b, C, ref_cost):
    P = res.plan.toarray() if sp.issparse(res.plan) else res.plan
    assert res.converged
    assert abs(res.cost - ref_cost) <= 1e-9 * max(abs(ref_cost), 1e-300) + 1e-15
    assert np.allclose(P.sum(1), a, atol=1e-12) and np.allclose(P.sum(0), b, atol=1e-12)
    assert (P >= 0).all()
    assert abs((P * C).sum() - res.cost) <= 1e-12 * max(abs(res.cost), 1)
    slack = C - res.f[:, None] - res.g[None, :]
    scale = np.abs(C).max() + 1
    assert slack.min() >= -1e-10 * scale  # dual feasibility
    assert np.abs(slack[P > 0]).max(initial=0) <= 1e-10 * scale  # complementary slackness
    assert abs(a @ res.f + b @ res.g - res.cost) <= 1e-10 * scale  # strong duality


# ------------------------------------------------------------------------------ emd


@pytest.mark.parametrize("m,n", SHAPES)
def test_emd_matches_pot(rng, m, n):
    a, b, C = _problem(rng, m, n)
    res = got.emd(a, b, C)
    _check_emd(res, a, b, C, pot.emd2(a, b, C))


@pytest.mark.parametrize("m,n", [(30, 40), (64, 64)])
def test_emd_zero_mass_bins_sparse_plan(rng, m, n):
    a, b, C = _problem(rng, m, n, zeros=True)
    res = got.emd(a, b, C, sparse=True)
    assert sp.issparse(res.plan) and res.plan.nnz <= m + n - 1
    _check_emd(res, a, b, C, pot.emd2(a, b, C))
    assert not res.plan.toarray()[a == 0].any() and not res.plan.toarray()[:, b == 0].any()


def test_emd_degenerate_inputs(rng):
    # duplicate points, integer-valued cost with many ties and zeros, uniform weights
    x = rng.integers(0, 3, size=(50, 2)).astype(float)
    C = pot.dist(x, x, metric="cityblock")
    res = got.emd(None, None, C)
    _check_emd(res, np.full(50, 0.02), np.full(50, 0.02), C, 0.0)
    # all-zero cost
    res = got.emd(None, None, np.zeros((7, 5)))
    assert res.cost == 0.0 and np.allclose(res.plan.sum(0), 0.2)
    # negative costs are allowed
    a, b, C = _problem(rng, 20, 30)
    _check_emd(got.emd(a, b, C - 5.0), a, b, C - 5.0, pot.emd2(a, b, C - 5.0))


def test_emd_masses_tolerance_and_unnormalised():
    C = np.array([[0.0, 1.0], [1.0, 0.0]])
    res = got.emd([2.0, 2.0], [1.0, 3.0 + 1e-7], C)  # within MASS_RTOL: b rescaled
    assert res.plan.sum() == pytest.approx(4.0, rel=1e-12)
    assert res.cost == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError, match="same total mass"):
        got.emd([0.5, 0.5], [0.5, 0.6], C)


def test_emd_max_iter_warns(rng):
    a, b, C = _problem(rng, 60, 60)
    with pytest.warns(RuntimeWarning, match="max_iter"):
        res = got.emd(a, b, C, max_iter=3)
    assert not res.converged and res.n_iter == 3
    assert (res.plan.sum(1) <= a + 1e-15).all() and (res.plan.sum(0) <= b + 1e-15).all()
    assert res.plan.sum() < 1.0


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(a=[-0.5, 1.5]), "negative"),
        (dict(a=[np.nan, 1.0]), "NaN"),
        (dict(a=[1.0]), "entries"),
        (dict(C=np.ones((2, 3))), "entries"),
        (dict(C=np.array([[0.0, -np.inf], [1.0, 0.0]])), "NaN or -inf"),
        (dict(C=np.array([[0.0, np.nan], [1.0, 0.0]])), "NaN or -inf"),
        (dict(C=np.array([[0.0, np.inf], [np.inf, 0.0]]), b=[0.9, 0.1]), "infeasible"),
        (dict(a=[0.0, 0.0]), "zero total mass"),
        (dict(C=np.ones(4)), "2-D"),
    ],
)
def test_emd_bad_input(bad, match):
    args = dict(a=[0.5, 0.5], b=[0.5, 0.5], C=np.eye(2))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        got.emd(args["a"], args["b"], args["C"])


def test_emd_bad_types():
    with pytest.raises(TypeError):
        got.emd(["x", "y"], None, np.eye(2))
    with pytest.raises(TypeError):
        got.emd(None, None, np.eye(2), max_iter=1.5)


# ------------------------------------------------------------------------------ emd_batched


def _random_batch(rng, B, m, n):
    ms = rng.integers(1, m + 1, size=B)
    ns = rng.integers(1, n + 1, size=B)
    probs = [_problem(rng, int(mi), int(ni)) for mi, ni in zip(ms, ns)]
    return probs


def test_emd_batched_padded_and_ragged(rng):
    probs = _random_batch(rng, 40, 9, 12)
    ref = np.array([pot.emd2(a, b, C) for a, b, C in probs])
    B = len(probs)
    A, Bm, Cp = np.zeros((B, 9)), np.zeros((B, 12)), np.zeros((B, 9, 12))
    amask, bmask = np.zeros((B, 9), bool), np.zeros((B, 12), bool)
    for k, (a, b, C) in enumerate(probs):
        A[k, : len(a)], Bm[k, : len(b)], Cp[k, : len(a), : len(b)] = a, b, C
        amask[k, : len(a)], bmask[k, : len(b)] = True, True
    # zero weights as masks
    res = got.emd_batched(A, Bm, Cp, return_plans=True, n_jobs=2)
    np.testing.assert_allclose(res.cost, ref, rtol=1e-9, atol=1e-15)
    assert res.converged.all() and res.plans.shape == (B, 9, 12)
    for k, (a, b, _C) in enumerate(probs):
        P = res.plans[k, : len(a), : len(b)]
        np.testing.assert_allclose(P.sum(1), a, atol=1e-12)
        np.testing.assert_allclose(P.sum(0), b, atol=1e-12)
        assert not res.plans[k, len(a) :].any() and not res.plans[k, :, len(b) :].any()
    # explicit masks over garbage padding
    A2 = np.where(amask, A, 7.0)
    res2 = got.emd_batched(A2, Bm, Cp, a_mask=amask, b_mask=bmask)
    np.testing.assert_allclose(res2.cost, ref, rtol=1e-9, atol=1e-15)
    # ragged layout
    a_off = np.concatenate([[0], np.cumsum([len(p[0]) for p in probs])])
    b_off = np.concatenate([[0], np.cumsum([len(p[1]) for p in probs])])
    res3 = got.emd_batched(
        np.concatenate([p[0] for p in probs]),
        np.concatenate([p[1] for p in probs]),
        np.concatenate([p[2].ravel() for p in probs]),
        a_offsets=a_off,
        b_offsets=b_off,
        return_plans=True,
    )
    np.testing.assert_allclose(res3.cost, ref, rtol=1e-9, atol=1e-15)
    k = B - 1
    P = res3.plans[-probs[k][2].size :].reshape(probs[k][2].shape)
    np.testing.assert_allclose(P.sum(1), probs[k][0], atol=1e-12)


@pytest.mark.parametrize("kind", ["uniform_ties", "ragged_sizes"])
def test_emd_batched_degenerate_and_mixed_sizes(rng, kind):
    # small problems (<= 1024 arcs) use Dantzig pricing, larger ones block search: both
    # against POT, under heavy degeneracy (uniform weights, integer costs with ties)
    if kind == "uniform_ties":
        B, k = 40, 16
        C = rng.integers(0, 4, size=(B, k, k)).astype(float)
        A = np.full((B, k), 1.0 / k)
        res = got.emd_batched(A, A, C, return_plans=True)
        probs = [(A[i], A[i], C[i]) for i in range(B)]
        plans = list(res.plans)
    else:
        sizes = [(3, 5), (30, 30), (20, 60), (33, 31), (1, 9), (16, 16)]
        probs = [_problem(rng, m, n) for m, n in sizes]
        a_off = np.cumsum([0] + [m for m, _ in sizes])
        b_off = np.cumsum([0] + [n for _, n in sizes])
        res = got.emd_batched(
            np.concatenate([p[0] for p in probs]),
            np.concatenate([p[1] for p in probs]),
            np.concatenate([p[2].ravel() for p in probs]),
            a_offsets=a_off,
            b_offsets=b_off,
            return_plans=True,
        )
        c_off = np.cumsum([0] + [m * n for m, n in sizes])
        plans = [res.plans[c_off[i] : c_off[i + 1]].reshape(sizes[i]) for i in range(len(sizes))]
    assert res.converged.all()
    for (a, b, C), P, c in zip(probs, plans, res.cost):
        ref = pot.emd2(a, b, C)
        assert abs(c - ref) <= 1e-9 * max(ref, 1e-300) + 1e-15
        assert np.allclose(P.sum(1), a, atol=1e-12) and np.allclose(P.sum(0), b, atol=1e-12)
        assert (P >= 0).all() and abs((P * C).sum() - c) <= 1e-12 * max(c, 1)


# Problems with at most 32 rows and 32 columns of positive mass run a fixed-size variant of
# the network simplex, larger ones the general solver: sizes on both sides of that line.
TINY_EDGE = [(32, 32), (33, 32), (32, 33), (5, 29), (31, 2), (1, 32), (32, 1), (17, 4)]


@pytest.mark.parametrize("m,n", TINY_EDGE)
def test_emd_tiny_path_sizes(rng, m, n):
    a, b, C = _problem(rng, m, n)
    _check_emd(got.emd(a, b, C), a, b, C, pot.emd2(a, b, C))  # plan and duals of the tiny tree


def test_emd_batched_tiny_path_zero_bins_and_ties(rng):
    # padded 40 x 36 problems whose zero-mass bins leave <= 32 x 32 live bins (the fixed-size
    # solver on gathered rows/columns) or more (general solver); some with rounded costs
    # (ties, zeros) or uniform weights (degenerate pivots)
    B, m, n = 30, 40, 36
    A, Bm, Cp = np.zeros((B, m)), np.zeros((B, n)), np.zeros((B, m, n))
    for k in range(B):
        a, b, C = _problem(rng, m, n)
        a[rng.choice(m, int(rng.integers(0, 16)), replace=False)] = 0.0
        b[rng.choice(n, int(rng.integers(0, 12)), replace=False)] = 0.0
        if k % 4 == 1:
            a, b = (a > 0).astype(float), (b > 0).astype(float)
        if k % 3 == 0:
            C = np.round(C)
        A[k], Bm[k], Cp[k] = a / a.sum(), b / b.sum(), C
    res = got.emd_batched(A, Bm, Cp, return_plans=True)
    assert res.converged.all()
    live = [((A[k] > 0).sum(), (Bm[k] > 0).sum()) for k in range(B)]
    assert any(mk <= 32 and nk <= 32 for mk, nk in live)
    assert any(mk > 32 or nk > 32 for mk, nk in live)
    for k in range(B):
        ref = pot.emd2(A[k], Bm[k], Cp[k])
        assert abs(res.cost[k] - ref) <= 1e-9 * max(ref, 1e-300) + 1e-15
        P = res.plans[k]
        np.testing.assert_allclose(P.sum(1), A[k], atol=1e-12)
        np.testing.assert_allclose(P.sum(0), Bm[k], atol=1e-12)
        assert (P >= 0).all() and abs((P * Cp[k]).sum() - res.cost[k]) <= 1e-12 * max(ref, 1)


@pytest.mark.parametrize("isa", ["generic", "auto"])
def test_emd_batched_tiny_path_isa(rng, isa):
    # the fixed-size solver prices in float32 with AVX2 (float64 re-pricing and exact
    # fallback), in float64 alone without: both exact, on uniform and tied problems too
    B, m, n = 60, 16, 12
    A, Bm = rng.random((B, m)) + 0.05, rng.random((B, n)) + 0.05
    A[::3], Bm[::3] = 1.0, 1.0
    A /= A.sum(1, keepdims=True)
    Bm /= Bm.sum(1, keepdims=True)
    Cp = rng.random((B, m, n))
    Cp[1::3] = np.round(4 * Cp[1::3])
    ref = np.array([pot.emd2(A[k], Bm[k], Cp[k]) for k in range(B)])
    geoml._core.set_simd_isa(isa)
    try:
        res = got.emd_batched(A, Bm, Cp)
    finally:
        geoml._core.set_simd_isa("auto")
    np.testing.assert_allclose(res.cost, ref, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("size", [3, 40])
def test_emd_batched_nonfinite_cost_only_where_read(size):
    # costs are read only between bins of positive mass: NaN/inf in zero-weight padding is
    # ignored; elsewhere ValueError naming the problem (fixed-size and general solvers)
    A = np.full((2, size), 1.0 / (size - 1))
    A[0, -1] = 0.0
    A[1] = 1.0 / size
    C = np.ones((2, size, size))
    C[0, -1, :] = np.nan
    C[0, :, -1] = np.inf
    res = got.emd_batched(A, A, C)
    np.testing.assert_allclose(res.cost, [1.0, 1.0])
    C[1, 1, 0] = -np.inf
    with pytest.raises(ValueError, match="problem 1"):
        got.emd_batched(A, A, C)


def test_emd_batched_bad_input():
    A = np.full((2, 3), 1 / 3)
    C = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="padded layout"):
        got.emd_batched(A, A[:1], C)
    with pytest.raises(ValueError, match="same total mass"):
        got.emd_batched(A, A * 2, C)
    with pytest.raises(ValueError, match="both"):
        got.emd_batched(A.ravel(), A.ravel(), C.ravel(), a_offsets=[0, 3, 6])
    with pytest.raises(ValueError, match="sum"):
        got.emd_batched(
            A.ravel(), A.ravel(), C.ravel()[:-1], a_offsets=[0, 3, 6], b_offsets=[0, 3, 6]
        )
    with pytest.raises(ValueError, match=">= 0"):
        got.emd_batched(-A, -A, C)
    with pytest.raises(ValueError, match="bool"):
        got.emd_batched(A, A, C, a_mask=np.ones((2, 3)))
    for bad in (np.nan, np.inf, -np.inf):
        Cb = C.copy()
        Cb[1, 2, 0] = bad
        if bad == np.inf:  # a forbidden pair: emd_batched solves around it
            assert got.emd_batched(A, A, Cb, return_plans=True).plans[1, 2, 0] == 0.0
        else:
            with pytest.raises(ValueError, match="NaN or -inf"):
                got.emd_batched(A, A, Cb)
        if bad == np.inf:  # a forbidden pair: sinkhorn_batched too solves around it
            res = got.sinkhorn_batched(
                A.ravel(),
                A.ravel(),
                Cb.ravel(),
                0.1,
                a_offsets=[0, 3, 6],
                b_offsets=[0, 3, 6],
                return_plans=True,
            )
            assert res.converged.all() and res.plans[9 + 2 * 3] == 0.0
        else:
            with pytest.raises(ValueError, match="NaN or -inf"):
                got.sinkhorn_batched(
                    A.ravel(), A.ravel(), Cb.ravel(), 0.1, a_offsets=[0, 3, 6], b_offsets=[0, 3, 6]
                )
    # huge finite costs whose sum overflows are accepted (the fast finiteness test falls back)
    Ch = np.full((2, 3, 3), 1e308)
    assert got._finite_cost(Ch, 3) is not None
    with pytest.raises(ValueError, match="NaN or infinity"):
        got._finite_cost(np.where(np.eye(3, dtype=bool), np.inf, Ch), 3)


def test_public_namespace():
    assert geoml.ot.emd is got.emd


# ------------------------------------------------------------------------------ sinkhorn


@pytest.mark.parametrize("m,n", [(1, 1), (1, 6), (5, 1), (7, 9), (40, 30), (120, 90)])
@pytest.mark.parametrize("eps", [1e-1, 1e-2])
def test_sinkhorn_matches_pot(rng, m, n, eps):
    a, b, C = _problem(rng, m, n)
    C /= max(C.max(), 1e-12)
    res = got.sinkhorn(a, b, C, eps, tol=1e-10)
    assert res.converged
    ref = pot.sinkhorn2(a, b, C, eps, stopThr=1e-12, numItermax=200000)
    assert res.cost == pytest.approx(float(ref), rel=1e-6, abs=1e-12)
    P = res.plan
    assert res.marginal_error <= 1e-10 * 1.01
    assert np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum() <= 1.01e-10
    np.testing.assert_allclose(
        P, np.exp((res.f[:, None] + res.g[None, :] - C) / eps), rtol=1e-10, atol=1e-300
    )
    Pref = pot.sinkhorn(a, b, C, eps, stopThr=1e-12, numItermax=200000)
    np.testing.assert_allclose(P, Pref, atol=1e-7)


@pytest.mark.parametrize("schedule", ["auto", "none", 0.3])
def test_sinkhorn_small_eps_is_finite(rng, schedule):
    a, b, C = _problem(rng, 60, 50)
    C /= C.max()
    res = got.sinkhorn(a, b, C, 1e-4, tol=1e-8, max_iter=50000, eps_schedule=schedule)
    assert np.isfinite(res.plan).all() and np.isfinite(res.f).all() and np.isfinite(res.g).all()
    assert res.converged and res.marginal_error <= 1.01e-8
    # at eps = 1e-4 the entropic cost is close to the exact one
    assert res.cost == pytest.approx(got.emd(a, b, C).cost, rel=2e-2)


def test_sinkhorn_warm_start_and_degenerate(rng):
    a, b, C = _problem(rng, 30, 20, zeros=True)
    res = got.sinkhorn(a, b, C, 0.05)
    assert res.converged and not res.plan[a == 0].any() and not res.plan[:, b == 0].any()
    keep_a, keep_b = a > 0, b > 0  # POT's sinkhorn needs positive weights
    ref = pot.sinkhorn2(
        a[keep_a], b[keep_b], C[np.ix_(keep_a, keep_b)], 0.05, stopThr=1e-12, numItermax=100000
    )
    assert res.cost == pytest.approx(float(ref), rel=1e-6)
    warm = got.sinkhorn(a, b, C, 0.05, warm_start=(res.f, res.g))
    assert warm.n_iter <= 2 and warm.cost == pytest.approx(res.cost, rel=1e-8)
    # duplicate points and a cost with zeros
    x = rng.integers(0, 2, size=(12, 2)).astype(float)
    C2 = pot.dist(x, x)
    res2 = got.sinkhorn(None, None, C2, 0.01)
    ref2 = pot.sinkhorn2(np.full(12, 1 / 12), np.full(12, 1 / 12), C2, 0.01, stopThr=1e-12)
    assert res2.converged and res2.cost == pytest.approx(float(ref2), rel=1e-6, abs=1e-12)


def test_sinkhorn_threaded_sweep_matches_serial(rng):
    # >= 2^20 kernel entries: the fused row sweep runs on threads with per-thread K^T u sums
    a, b, C = _problem(rng, 1100, 1000)
    C /= C.max()
    r1 = got.sinkhorn(a, b, C, 0.05, n_jobs=1)
    r2 = got.sinkhorn(a, b, C, 0.05, n_jobs=2)
    assert r1.converged and r2.converged
    assert r2.cost == pytest.approx(r1.cost, rel=1e-9)
    np.testing.assert_allclose(r2.plan, r1.plan, rtol=1e-6, atol=1e-14)
    P = r2.plan
    merr = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    assert r2.marginal_error == pytest.approx(merr, rel=1e-6, abs=1e-15)
    assert r2.cost == pytest.approx(float((P * C).sum()), rel=1e-12)


def test_sinkhorn_warm_start_huge_on_zero_mass_bins(rng):
    # zero-mass rows / columns take no part in the solve whatever their warm potentials
    # (huge ones used to overflow the kernel and raise a misleading overflow ValueError)
    a, b, C = _problem(rng, 30, 20, zeros=True)
    ref = got.sinkhorn(a, b, C, 0.05)
    f0, g0 = ref.f.copy(), ref.g.copy()
    f0[a == 0], g0[b == 0] = 1e6, 1e6
    res = got.sinkhorn(a, b, C, 0.05, warm_start=(f0, g0))
    assert res.converged and res.n_iter <= 2
    assert not res.plan[a == 0].any() and not res.plan[:, b == 0].any()
    assert res.cost == pytest.approx(ref.cost, rel=1e-8)
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-10)
    # a cold start from such potentials converges to the same plan
    f0[a > 0], g0[b > 0] = 0.0, 0.0
    res = got.sinkhorn(a, b, C, 0.05, warm_start=(f0, g0))
    assert res.converged and res.cost == pytest.approx(ref.cost, rel=1e-8)


@pytest.mark.parametrize("eps", [0.1, 0.03])
def test_sinkhorn_anderson_iterations_and_pot(eps):
    # Anderson mixing: at eps = 0.1 of the cost range 8 iterations (13 with SOR alone); the
    # same fixed point as POT's log-domain Sinkhorn
    rng = np.random.default_rng(0)
    n = 400
    x, y = rng.random((n, 2)), rng.random((n, 2))
    C = pot.dist(x, y)
    C /= C.max()
    a, b = np.full(n, 1.0 / n), rng.random(n) + 0.1
    b /= b.sum()
    res = got.sinkhorn(a, b, C, eps, tol=1e-10)
    assert res.converged and res.marginal_error <= 1e-10
    assert res.n_iter <= (10 if eps == 0.1 else 20)
    Pref = pot.sinkhorn(a, b, C, eps, method="sinkhorn_log", stopThr=1e-13, numItermax=10000)
    np.testing.assert_allclose(res.plan, Pref, atol=1e-11)
    assert res.cost == pytest.approx(float((Pref * C).sum()), rel=1e-9)


def test_sinkhorn_hard_small_eps_converges_like_sor():
    # nearly degenerate problems where Anderson mixing stalls go over to SOR: the iteration
    # counts stay those of SOR alone (which needed 1887 / 4617 here)
    for seed, cap in ((1, 2500), (4, 6000)):
        rng = np.random.default_rng(seed)
        a, b = rng.random(60) + 0.05, rng.random(50) + 0.05
        a, b = a / a.sum(), b / b.sum()
        x, y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2))
        C = pot.dist(x, y)
        C /= C.max()
        res = got.sinkhorn(a, b, C, 1e-4, tol=1e-8, max_iter=50000)
        assert res.converged and res.n_iter <= cap
    # a kernel that mixes (>= 2^14 entries) where the mixing stalls: restarted with SOR, whose
    # 589 iterations grow by the ones spent
    rng = np.random.default_rng(2)
    x, y = rng.random((300, 5)), rng.random((300, 5))
    C = pot.dist(x, y)
    C /= C.max()
    a, b = rng.random(300) + 0.1, np.full(300, 1 / 300)
    a /= a.sum()
    res = got.sinkhorn(a, b, C, 1e-3, n_jobs=1, max_iter=100000)
    assert res.converged and res.marginal_error <= 1e-9 and res.n_iter <= 800
    P = np.exp((res.f[:, None] + res.g[None, :] - C) / 1e-3)
    np.testing.assert_allclose(res.plan, P, rtol=1e-6, atol=1e-20)  # float32 kernel


def test_sinkhorn_scan_in_kernel_build(rng):
    # the check of C runs inside the first kernel build: its range and finiteness as
    # value_range's, the same solve as with the schedule given up front
    a, b, C = _problem(rng, 50, 40)
    C /= C.max()
    f0, g0 = np.zeros(50), np.zeros(40)
    for eps, ratio in ((0.05, 1e-3), (5e-4, 1e-3), (0.05, 0.5)):
        p = geoml._core.SinkhornParams(eps=eps, tol=1e-9, eps_factor=0.125, start_ratio=ratio)
        out = geoml._core.sinkhorn(a, b, C, f0, g0, params=p, scan=True)
        lo, hi, finite = geoml._core.value_range(C.reshape(-1))
        assert out[-1] == (lo, hi, True)
        start = (hi - lo) / 2 if eps < ratio * (hi - lo) else 0.0
        p2 = geoml._core.SinkhornParams(eps=eps, tol=1e-9, eps_factor=0.125, eps_start=start)
        ref = geoml._core.sinkhorn(a, b, C, f0, g0, params=p2)
        assert ref[-1] is None and out[3] == ref[3] and out[6] == ref[6]
        assert np.array_equal(out[0], ref[0]) and np.array_equal(out[1], ref[1])
    # not finite: no solve (Python then takes the checks of _cost_matrix)
    for bad in (np.nan, np.inf, -np.inf):
        Cb = C.copy()
        Cb[7, 3] = bad
        out = geoml._core.sinkhorn(
            a, b, Cb, f0, g0, params=geoml._core.SinkhornParams(eps=0.05), scan=True
        )
        assert out[-1][2] is False and out[3] == 0 and not out[5]
    Cb = C.copy()
    Cb[0, 0], Cb[1, 1] = 1e308, -1e308  # the range overflows
    out = geoml._core.sinkhorn(
        a, b, Cb, f0, g0, params=geoml._core.SinkhornParams(eps=0.05), scan=True
    )
    assert out[-1][2] is False


def test_sinkhorn_auto_schedule_regimes(rng):
    a, b, C = _problem(rng, 50, 40)
    C /= C.max()
    # eps below range/1000: "auto" anneals; same solution as a cold solve at eps
    ann = got.sinkhorn(a, b, C, 5e-4, tol=1e-9, max_iter=100000)
    cold = got.sinkhorn(a, b, C, 5e-4, tol=1e-9, max_iter=100000, eps_schedule="none")
    assert ann.converged and cold.converged
    assert ann.cost == pytest.approx(cold.cost, rel=1e-7)
    np.testing.assert_allclose(ann.plan, cold.plan, atol=1e-8)
    # from a loose tolerance on, "auto" starts cold (the same run as "none")
    loose = got.sinkhorn(a, b, C, 1e-4, tol=0.05)
    loose_cold = got.sinkhorn(a, b, C, 1e-4, tol=0.05, eps_schedule="none")
    assert loose.converged and loose.marginal_error <= 0.05
    assert loose.n_iter == loose_cold.n_iter and loose.cost == loose_cold.cost
    tight = got.sinkhorn(a, b, C, 1e-4, tol=1e-3)
    tight_cold = got.sinkhorn(a, b, C, 1e-4, tol=1e-3, eps_schedule="none")
    assert tight.converged and tight.n_iter != tight_cold.n_iter  # annealed


def test_sinkhorn_max_iter_warns(rng):
    a, b, C = _problem(rng, 40, 40)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        res = got.sinkhorn(a, b, C / C.max(), 1e-3, max_iter=5)
    assert not res.converged and res.n_iter == 5


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(eps=0.0), ValueError, "eps"),
        (dict(eps=-1.0), ValueError, "eps"),
        (dict(eps=np.nan), ValueError, "eps"),
        (dict(eps="x"), TypeError, "eps"),
        (dict(a=[-0.5, 1.5]), ValueError, "negative"),
        (dict(C=np.array([[np.nan, 0.0], [0.0, 0.0]])), ValueError, "NaN"),
        (dict(b=[0.5, 0.5, 0.0]), ValueError, "entries"),
        (dict(b=[0.5, 0.7]), ValueError, "same total mass"),
        (dict(tol=0.0), ValueError, "tol"),
        (dict(eps_schedule="fast"), ValueError, "eps_schedule"),
        (dict(eps_schedule=1.5), ValueError, "eps_schedule"),
        # a list / array reached float(): "float() argument must be a string or a real number"
        (dict(eps_schedule=[1.0, 0.5]), TypeError, "eps_schedule must be 'auto', 'none' or"),
        (dict(eps_schedule=np.array([0.5, 0.1])), TypeError, "eps_schedule must be 'auto'"),
        (dict(warm_start=(np.zeros(3), np.zeros(2))), ValueError, "warm_start"),
    ],
)
def test_sinkhorn_bad_input(kw, exc, match):
    args = dict(a=[0.5, 0.5], b=[0.5, 0.5], C=np.eye(2), eps=0.1)
    args.update(kw)
    a, b, C, eps = args.pop("a"), args.pop("b"), args.pop("C"), args.pop("eps")
    with pytest.raises(exc, match=match):
        got.sinkhorn(a, b, C, eps, **args)


def test_balanced_overflow_message_does_not_speak_of_rho():
    # costs of 1e150 at eps = 0.1: the balanced iteration overflows (the potentials' rounding
    # is far above eps); the message advised shifting C and raising rho, which a balanced
    # problem has not
    rng = np.random.default_rng(0)
    a, b, C = rng.random(7), rng.random(9), rng.random((7, 9)) * 1e150
    a, b = a / a.sum(), b / b.sum()
    for solve in (
        got.sinkhorn,
        lambda a, b, C, e: got.sinkhorn_batched(a[None], b[None], C[None], e),
    ):
        with pytest.raises(ValueError, match="costs are too large for this eps") as info:
            solve(a, b, C, 0.1)
        assert "rho" not in str(info.value)
    with pytest.raises(ValueError, match=r"exp\(-C / \(2 rho\)\)"):  # unbalanced: unchanged
        got.sinkhorn_unbalanced(a, b, -1e3 * C / 1e150, 0.1, 1.0)


def test_batched_mass_mismatch_message_prints_plain_numbers():
    # NumPy 2 scalars' repr leaked into the message: "got np.float64(2.0) and np.float64(1.0)"
    a = np.array([[1.0, 1.0]])
    b = np.array([[0.5, 0.5]])
    for solve in (got.emd_batched, lambda a, b, C: got.sinkhorn_batched(a, b, C, 0.1)):
        with pytest.raises(ValueError, match=r"same total mass .*; got 2\.0 and 1\.0$"):
            solve(a, b, np.zeros((1, 2, 2)))
    assert got.sinkhorn(
        [0.5, 0.5], [0.5, 0.5], np.eye(2), 0.1, eps_schedule=np.float32(0.5)
    ).converged


# ------------------------------------------------------------------------------ unbalanced


@pytest.mark.parametrize("m,n", [(1, 4), (8, 6), (50, 70)])
@pytest.mark.parametrize("eps,rho", [(0.1, 1.0), (0.05, 0.3), (0.02, 2.0)])
def test_sinkhorn_unbalanced_matches_pot(rng, m, n, eps, rho):
    a, b, C = _problem(rng, m, n)
    a, b = 2.0 * a, 0.7 * b  # different masses
    C /= max(C.max(), 1e-12)
    res = got.sinkhorn_unbalanced(a, b, C, eps, rho, tol=1e-13, max_iter=200000)
    Pref = pot.unbalanced.sinkhorn_unbalanced(a, b, C, eps, rho, stopThr=1e-15, numItermax=200000)
    assert res.converged
    np.testing.assert_allclose(res.plan, Pref, rtol=1e-6, atol=1e-12)
    assert res.cost == pytest.approx(float((Pref * C).sum()), rel=1e-6)
    np.testing.assert_allclose(
        res.plan,
        a[:, None] * b[None, :] * np.exp((res.f[:, None] + res.g[None, :] - C) / eps),
        rtol=1e-9,
    )


def _unbalanced_fixed_point(a, b, C, eps, rho, tol=1e-13):
    """Float64 log-domain unbalanced Sinkhorn iterated until its contraction bound
    rho^2 / (eps (2 rho + eps)) * (last change) is below tol: the potentials (f, g)."""
    lam = rho / (rho + eps)
    kappa = (rho / eps) * (rho / (2 * rho + eps))
    la, lb = np.log(a), np.log(b)
    f, g = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(400000):
        fn = -lam * eps * np.logaddexp.reduce((g + eps * lb - C) / eps, axis=1)
        gn = -lam * eps * np.logaddexp.reduce((fn[:, None] + eps * la[:, None] - C) / eps, axis=0)
        d = max(np.abs(fn - f).max(), np.abs(gn - g).max())
        f, g = fn, gn
        if kappa * d <= tol:
            return f, g
    raise AssertionError("reference did not converge")


@pytest.mark.parametrize(
    "eps,rho", [(0.1, 1.0), (1e-2, 1.0), (1e-3, 1.0), (1e-2, 5.0), (1e-2, 0.1)]
)
def test_sinkhorn_unbalanced_certified_stop(eps, rho):
    # The stopping rule is scaled by the contraction rate: at small eps / rho the potentials
    # are within tol of the fixed point (before: the last change was <= tol, so up to
    # tol rho / (2 eps) off, e.g. 5e-7 potentials and 5e-7 relative cost at eps=1e-3, rho=1).
    rng = np.random.default_rng(7)
    m, n = 10, 8
    x, y = rng.random((m, 2)), rng.random((n, 2))
    C = ((x[:, None] - y[None]) ** 2).sum(-1)
    C /= C.max()
    a, b = rng.random(m) + 0.1, 1.5 * (rng.random(n) + 0.1)
    f, g = _unbalanced_fixed_point(a, b, C, eps, rho)
    P = a[:, None] * b[None, :] * np.exp((f[:, None] + g[None, :] - C) / eps)
    tol = 1e-9
    res = got.sinkhorn_unbalanced(a, b, C, eps, rho, tol=tol, max_iter=100000)
    assert res.converged
    np.testing.assert_allclose(res.f, f, rtol=0, atol=1.01 * tol)
    np.testing.assert_allclose(res.g, g, rtol=0, atol=1.01 * tol)
    # plan entries move by at most exp(2 tol / eps) - 1 relative
    np.testing.assert_allclose(res.plan, P, rtol=3 * tol / eps, atol=1e-300)
    assert res.cost == pytest.approx(float((P * C).sum()), rel=3 * tol / eps)
    bat = got.sinkhorn_batched(a[None], b[None], C[None], eps, rho=rho, tol=tol, max_iter=100000)
    assert bat.converged.all() and bat.error[0] <= tol
    assert bat.cost[0] == pytest.approx(float((P * C).sum()), rel=3 * tol / eps)
    if eps >= 1e-2 and rho <= 1.0:
        pot_P = pot.unbalanced.sinkhorn_unbalanced(
            a, b, C, eps, rho, method="sinkhorn_stabilized", stopThr=1e-15, numItermax=200000
        )
        np.testing.assert_allclose(res.plan, pot_P, rtol=3 * tol / eps, atol=1e-300)


def test_sinkhorn_unbalanced_points_certified_stop(rng):
    x, y = rng.random((12, 2)), rng.random((9, 2))
    a, b = np.full(12, 1 / 12), np.full(9, 2 / 9)
    C = ((x[:, None] - y[None]) ** 2).sum(-1)
    eps, rho, tol = 2e-3, 1.0, 1e-9
    f, g = _unbalanced_fixed_point(a, b, C, eps, rho)
    P = a[:, None] * b[None, :] * np.exp((f[:, None] + g[None, :] - C) / eps)
    res = got.sinkhorn_points(x, y, eps, a=a, b=b, rho=rho, tol=tol, max_iter=100000)
    assert res.converged and res.marginal_error <= tol
    np.testing.assert_allclose(res.f, f, rtol=0, atol=1.01 * tol)
    assert res.cost == pytest.approx(float((P * C).sum()), rel=3 * tol / eps)


@pytest.mark.parametrize("eps", [1e-300, 1e-20])
def test_sinkhorn_unbalanced_no_contraction_not_converged(eps):
    # rho / (rho + eps) rounds to 1 (1e-300), or the contraction is far too slow to certify
    # (1e-20): never converged=True on the starting point (before: converged after one
    # iteration, e.g. cost ~1e-307 for the true ~0.6 below).
    a, b, C = [1.0, 1.0], [2.0, 0.5], np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.warns(RuntimeWarning, match="rho / \\(rho \\+ eps\\)"):
        res = got.sinkhorn_unbalanced(a, b, C, eps, 1.0, max_iter=50)
    assert not res.converged
    with pytest.warns(RuntimeWarning, match="did not reach"):
        bat = got.sinkhorn_batched(np.array([a]), np.array([b]), C[None], eps, rho=1.0, max_iter=50)
    assert not bat.converged.any()
    rng = np.random.default_rng(3)
    x, y = rng.random((5, 2)), rng.random((4, 2))
    with pytest.warns(RuntimeWarning, match="did not reach"):
        pts = got.sinkhorn_points(x, y, eps, rho=1.0, max_iter=50)
    assert not pts.converged


def test_sinkhorn_unbalanced_bad_input():
    with pytest.raises(ValueError, match="rho"):
        got.sinkhorn_unbalanced([1.0], [2.0], np.zeros((1, 1)), 0.1, 0.0)
    with pytest.raises(ValueError, match="eps"):
        got.sinkhorn_unbalanced([1.0], [2.0], np.zeros((1, 1)), -0.1, 1.0)


# ------------------------------------------------------------------------------ points


@pytest.mark.parametrize("p", [1, 2])
def test_sinkhorn_points_matches_dense(rng, p):
    x, y = rng.normal(size=(70, 3)), rng.normal(size=(50, 3)) + 0.5
    a, b = rng.random(70) + 0.1, rng.random(50) + 0.1
    a, b = a / a.sum(), b / b.sum()
    C = pot.dist(x, y, metric="sqeuclidean" if p == 2 else "euclidean")
    eps = 0.05 * C.max()
    res = got.sinkhorn_points(x, y, eps, a=a, b=b, p=p, tol=1e-10)
    ref = pot.sinkhorn2(a, b, C, eps, stopThr=1e-12, numItermax=100000)
    assert res.converged and res.marginal_error <= 1e-10
    assert res.cost == pytest.approx(float(ref), rel=1e-6)
    P = np.exp((res.f[:, None] + res.g[None, :] - C) / eps)
    np.testing.assert_allclose(P.sum(0), b, atol=1e-12)
    np.testing.assert_allclose(P.sum(1), a, atol=1e-9)


@pytest.mark.parametrize("rho", [None, 1.0])
def test_sinkhorn_points_same_bits_for_any_thread_count(rng, rho):
    """The marginal error and the cost add their row terms in row order: the same bits for
    any thread count and schedule."""
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + 0.5
    a, b = rng.random(300) + 0.1, rng.random(200) + 0.1
    a, b = a / a.sum(), b / b.sum()
    if rho is not None:
        b = 1.5 * b
    r1 = got.sinkhorn_points(x, y, 0.5, a=a, b=b, rho=rho, n_jobs=1)
    assert r1.converged
    for _ in range(5):
        r2 = got.sinkhorn_points(x, y, 0.5, a=a, b=b, rho=rho, n_jobs=2)
        assert (r2.cost, r2.n_iter, r2.marginal_error) == (r1.cost, r1.n_iter, r1.marginal_error)
        np.testing.assert_array_equal(r2.f, r1.f)
        np.testing.assert_array_equal(r2.g, r1.g)


def test_sinkhorn_points_unbalanced_and_bad_input(rng):
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(30, 2))
    a, b = np.full(20, 0.1), np.full(30, 0.02)
    res = got.sinkhorn_points(x, y, 0.1, a=a, b=b, rho=1.0, tol=1e-12)
    Pref = pot.unbalanced.sinkhorn_unbalanced(
        a, b, pot.dist(x, y), 0.1, 1.0, stopThr=1e-15, numItermax=100000
    )
    assert res.converged
    assert res.cost == pytest.approx(float((Pref * pot.dist(x, y)).sum()), rel=1e-6)
    with pytest.raises(ValueError, match="dimension"):
        got.sinkhorn_points(x, y[:, :1], 0.1)
    with pytest.raises(ValueError, match="p=3"):
        got.sinkhorn_points(x, y, 0.1, p=3)
    with pytest.raises(ValueError, match="eps"):
        got.sinkhorn_points(x, y, 0.0)
    with pytest.raises(ValueError, match="same total mass"):
        got.sinkhorn_points(x, y, 0.1, a=a, b=b)


# ------------------------------------------------------------------------------ batched


@pytest.mark.parametrize("rho", [None, 0.5])
def test_sinkhorn_batched_matches_single(rng, rho):
    probs = _random_batch(rng, 30, 8, 10)
    B = len(probs)
    A, Bm, Cp = np.zeros((B, 8)), np.zeros((B, 10)), np.zeros((B, 8, 10))
    for k, (a, b, C) in enumerate(probs):
        A[k, : len(a)], Bm[k, : len(b)], Cp[k, : len(a), : len(b)] = a, b, C
    eps = 0.05
    if rho is None:
        ref = np.array(
            [
                float(pot.sinkhorn2(a, b, C, eps, stopThr=1e-13, numItermax=100000))
                for a, b, C in probs
            ]
        )
    else:
        ref = np.array(
            [
                (
                    pot.unbalanced.sinkhorn_unbalanced(
                        a, b, C, eps, rho, stopThr=1e-15, numItermax=100000
                    )
                    * C
                ).sum()
                for a, b, C in probs
            ]
        )
    res = got.sinkhorn_batched(A, Bm, Cp, eps, rho=rho, tol=1e-11, return_plans=True, n_jobs=2)
    assert res.converged.all()
    np.testing.assert_allclose(res.cost, ref, rtol=1e-6, atol=1e-12)
    a_off = np.concatenate([[0], np.cumsum([len(p[0]) for p in probs])])
    b_off = np.concatenate([[0], np.cumsum([len(p[1]) for p in probs])])
    res2 = got.sinkhorn_batched(
        np.concatenate([p[0] for p in probs]),
        np.concatenate([p[1] for p in probs]),
        np.concatenate([p[2].ravel() for p in probs]),
        eps,
        rho=rho,
        a_offsets=a_off,
        b_offsets=b_off,
        tol=1e-11,
    )
    np.testing.assert_allclose(res2.cost, ref, rtol=1e-6, atol=1e-12)
    if rho is None:
        for k, (a, b, _C) in enumerate(probs):
            P = res.plans[k, : len(a), : len(b)]
            assert np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum() <= 1e-10


def _north_west_support(a, b):
    """Support of the north-west corner plan of (a, b): a feasible plan, so forbidding only
    other pairs keeps the problem feasible."""
    a, b = a.copy(), b.copy()
    sup = np.zeros((len(a), len(b)), dtype=bool)
    i = j = 0
    while i < len(a) and j < len(b):
        sup[i, j] = True
        t = min(a[i], b[j])
        a[i] -= t
        b[j] -= t
        if a[i] <= b[j]:
            i += 1
        else:
            j += 1
    return sup


def _brute_entropic_cost(a, b, C, eps):
    """Entropic OT cost <P, C> by dense float64 log-domain Sinkhorn in NumPy (an independent
    reference; +inf costs are forbidden pairs: their kernel entries are exactly 0)."""
    f, g = np.zeros(len(a)), np.zeros(len(b))
    la, lb = np.log(a), np.log(b)
    for _ in range(200000):
        with np.errstate(divide="ignore"):
            Z = (f[:, None] + g[None, :] - C) / eps
        f = f + eps * (la - np.logaddexp.reduce(Z, axis=1))
        Z = (f[:, None] + g[None, :] - C) / eps
        g = g + eps * (lb - np.logaddexp.reduce(Z, axis=0))
        P = np.exp((f[:, None] + g[None, :] - C) / eps)
        if np.abs(P.sum(1) - a).sum() < 1e-13:
            break
    return float(np.where(P > 0, P * np.where(np.isfinite(C), C, 0.0), 0.0).sum()), P


def _unbalanced_log_ref(a, b, C, eps, rho, iters=400):
    """Log-domain unbalanced Sinkhorn (POT's reg_type="kl") in NumPy: the potentials."""
    lam = rho / (rho + eps)
    f, g = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(iters):
        f = -lam * eps * np.logaddexp.reduce((g + eps * np.log(b) - C) / eps, axis=1)
        g = (
            -lam
            * eps
            * np.logaddexp.reduce((f[:, None] + eps * np.log(a)[:, None] - C) / eps, axis=0)
        )
    return f, g


@pytest.mark.parametrize("eps, rho", [(1e-300, 1e-300), (1e-3, 1e-300), (1e-300, 1e-299)])
def test_sinkhorn_unbalanced_underflowing_plan(eps, rho):
    # Every kernel entry underflows (plan entries far below 1e-308): the rows and columns are
    # updated in the log domain each iteration, and the stopping quantity (the potentials'
    # change) must still become finite and reach tol; it stayed inf before (regression).
    res = got.sinkhorn_batched(
        [1.0], [1.0], [1.0], eps, rho=rho, a_offsets=[0, 1], b_offsets=[0, 1]
    )
    assert res.converged.all() and np.isfinite(res.error).all() and res.error[0] <= 1e-9
    assert 0.0 <= res.cost[0] <= 1e-300
    rng = np.random.default_rng(5)
    a, b, C = rng.random(2) + 0.5, rng.random(3) + 0.5, rng.random((2, 3)) + 0.5
    r = got.sinkhorn_unbalanced(a, b, C, eps, rho, tol=1e-13)
    assert r.converged and np.isfinite(r.f).all() and np.isfinite(r.g).all()
    f, g = _unbalanced_log_ref(a, b, C, eps, rho)
    np.testing.assert_allclose(r.f, f, rtol=0, atol=1e-11)
    np.testing.assert_allclose(r.g, g, rtol=0, atol=1e-11)
    rb = got.sinkhorn_batched(a[None], b[None], C[None], eps, rho=rho, tol=1e-13)
    assert rb.converged.all() and rb.error[0] <= 1e-13
    assert rb.cost[0] == pytest.approx(r.cost, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sinkhorn_batched_forbidden_pairs(seed):
    rng = np.random.default_rng(seed)
    B, m, n, eps = 6, 5, 4, 0.1
    A = rng.random((B, m)) + 0.1
    A /= A.sum(1, keepdims=True)
    Bm = rng.random((B, n)) + 0.1
    Bm /= Bm.sum(1, keepdims=True)
    C = rng.random((B, m, n))
    for k in range(B):  # forbid about a third of the pairs, never the north-west corner plan's
        forbid = rng.random((m, n)) < 0.35
        forbid[_north_west_support(A[k], Bm[k])] = False
        C[k][forbid] = np.inf
    res = got.sinkhorn_batched(A, Bm, C, eps, tol=1e-11, return_plans=True, n_jobs=1)
    res2 = got.sinkhorn_batched(A, Bm, C, eps, tol=1e-11, return_plans=True, n_jobs=2)
    assert res.converged.all()
    np.testing.assert_array_equal(res.plans, res2.plans)
    np.testing.assert_array_equal(res.cost, res2.cost)
    for k in range(B):
        P = res.plans[k]
        assert (P[np.isinf(C[k])] == 0).all()
        ref_cost, ref_P = _brute_entropic_cost(A[k], Bm[k], C[k], eps)
        np.testing.assert_allclose(res.cost[k], ref_cost, rtol=1e-8)
        np.testing.assert_allclose(P, ref_P, atol=1e-9)
        pot_P = pot.sinkhorn(A[k], Bm[k], C[k], eps, method="sinkhorn_log", stopThr=1e-13)
        np.testing.assert_allclose(P, pot_P, atol=1e-8)
        single = got.sinkhorn(A[k], Bm[k], C[k], eps, tol=1e-11)
        np.testing.assert_allclose(res.cost[k], single.cost, rtol=1e-9)
    # ragged layout, unbalanced too
    ao = np.arange(B + 1) * m
    bo = np.arange(B + 1) * n
    rag = got.sinkhorn_batched(
        A.ravel(), Bm.ravel(), C.ravel(), eps, a_offsets=ao, b_offsets=bo, tol=1e-11
    )
    np.testing.assert_allclose(rag.cost, res.cost, rtol=1e-12)
    unb = got.sinkhorn_batched(A, Bm, C, eps, rho=0.5, return_plans=True)
    for k in range(B):
        assert (unb.plans[k][np.isinf(C[k])] == 0).all()
        ref = got.sinkhorn_unbalanced(A[k], Bm[k], C[k], eps, 0.5).cost
        np.testing.assert_allclose(unb.cost[k], ref, rtol=1e-7)


def test_sinkhorn_batched_forbidden_infeasible():
    A = np.full((2, 2), 0.5)
    C = np.zeros((2, 2, 2))
    C[1, 0, :] = np.inf  # problem 1: row 0 has only forbidden pairs
    with pytest.raises(ValueError, match=r"problem 1\).*infeasible.*row 0"):
        got.sinkhorn_batched(A, A, C, 0.1)
    C = np.zeros((2, 2, 2))
    C[0] = [[0.0, np.inf], [np.inf, 0.0]]  # problem 0: feasible only for a == b
    Bm = np.array([[0.9, 0.1], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"problem 0\).*infeasible.*no transport plan"):
        got.sinkhorn_batched(A, Bm, C, 0.1, max_iter=2000)
    # zero-mass bins may have only forbidden pairs (never read)
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    C = np.zeros((2, 2, 2))
    C[0, 1, :] = np.inf
    res = got.sinkhorn_batched(a, a, C, 0.1, return_plans=True)
    assert res.converged.all() and res.plans[0, 1].sum() == 0.0


def test_sinkhorn_batched_bad_input():
    A = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="eps"):
        got.sinkhorn_batched(A, A, np.zeros((2, 3, 3)), 0.0)
    with pytest.raises(ValueError, match="same total mass"):
        got.sinkhorn_batched(A, 2 * A, np.zeros((2, 3, 3)), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        got.sinkhorn_batched(A, A, np.full((2, 3, 3), np.nan), 0.1)


@pytest.mark.parametrize("eps", [0.1, 0.03])
def test_sinkhorn_float32_kernel_matches_pot(rng, eps):
    # m n >= 2^16 and exponents within float32's normal range: the kernel is stored in
    # float32 (sums in float64); cost, plan and marginals must still match float64 POT
    m, n = 300, 260
    a, b, C = _problem(rng, m, n)
    C /= C.max()
    res = got.sinkhorn(a, b, C, eps, tol=1e-10)
    ref = pot.sinkhorn(a, b, C, eps, stopThr=1e-14, numItermax=100000)
    assert res.converged
    assert res.cost == pytest.approx(float((ref * C).sum()), rel=1e-6)
    np.testing.assert_allclose(res.plan, ref, rtol=1e-5, atol=1e-12)
    P = res.plan
    assert np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum() <= 1e-10
    assert res.marginal_error <= 1e-10
    # the dual potentials describe the returned plan
    Pf = np.exp((res.f[:, None] + res.g[None, :] - C) / eps)
    np.testing.assert_allclose(Pf, P, rtol=1e-6, atol=1e-14)
    # threaded and serial runs agree
    res1 = got.sinkhorn(a, b, C, eps, tol=1e-10, n_jobs=1)
    assert res1.cost == pytest.approx(res.cost, rel=1e-12)


@pytest.mark.parametrize("warm", [False, True])
def test_sinkhorn_float32_kernel_flushed_entries(rng, warm):
    # m n >= 2^16 and exponents below -87 (C / eps up to 200): those kernel entries are float32
    # subnormals or 0; the plan must still match float64 POT (log-domain), and the potentials
    # describe it. warm: a start whose row scalings grow to ~e^48 (plan error bound: absorbed)
    m, n = 300, 263
    a, b, C = _problem(rng, m, n)
    C /= C.max()
    eps = 0.005
    ws = (np.full(m, -48 * eps), np.zeros(n)) if warm else None
    res = got.sinkhorn(a, b, C, eps, tol=1e-10, warm_start=ws)
    ref = pot.bregman.sinkhorn_log(a, b, C, eps, stopThr=1e-14, numItermax=100000)
    assert res.converged
    assert res.cost == pytest.approx(float((ref * C).sum()), rel=1e-6)
    np.testing.assert_allclose(res.plan, ref, rtol=1e-5, atol=1e-12)
    P = res.plan
    merr = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    assert merr <= 1e-10 and res.marginal_error == pytest.approx(merr, rel=1e-6, abs=1e-15)
    Pf = np.exp((res.f[:, None] + res.g[None, :] - C) / eps)
    np.testing.assert_allclose(Pf, P, rtol=1e-5, atol=1e-14)


def test_sinkhorn_float32_kernel_flushed_zero_masses_and_one_row(rng):
    # the flushed float32 kernel with zero-mass rows / columns (zero rows and columns in the
    # plan), and a single row of 70,000 columns (the plan is b itself)
    m, n = 300, 263
    a, b, C = _problem(rng, m, n)
    C /= C.max()
    a[::7] = 0.0
    b[::5] = 0.0
    b *= a.sum() / b.sum()
    res = got.sinkhorn(a, b, C, 0.005, tol=1e-10)
    ka, kb = a > 0, b > 0
    ref = pot.bregman.sinkhorn_log(a[ka], b[kb], C[np.ix_(ka, kb)], 0.005, stopThr=1e-14)
    assert res.converged
    assert not res.plan[~ka].any() and not res.plan[:, ~kb].any()
    np.testing.assert_allclose(res.plan[np.ix_(ka, kb)], ref, rtol=1e-5, atol=1e-12)
    b1 = rng.random(70_000) + 0.1
    b1 /= b1.sum()
    C1 = rng.random((1, 70_000))
    r1 = got.sinkhorn([1.0], b1, C1, 1e-3, tol=1e-10)
    assert r1.converged and r1.marginal_error <= 1e-10
    np.testing.assert_allclose(r1.plan[0], b1, rtol=1e-9)


def test_sinkhorn_threaded_flushed_kernel_identical():
    # >= 2^20 entries, float32 kernel with flushed entries (eps 1e-2 of the cost range):
    # threads change nothing, to the bit (fixed row groups for K^T u and the plan's column sums)
    a, b, C = _problem(np.random.default_rng(3), 1100, 1000)
    C /= C.max()
    r1 = got.sinkhorn(a, b, C, 0.01, tol=1e-9, n_jobs=1)
    r2 = got.sinkhorn(a, b, C, 0.01, tol=1e-9, n_jobs=2)
    assert r1.converged and r2.converged
    assert r1.n_iter == r2.n_iter and r1.cost == r2.cost
    assert r1.marginal_error == r2.marginal_error
    assert np.array_equal(r1.plan, r2.plan) and np.array_equal(r1.f, r2.f)
    ref = pot.sinkhorn(a, b, C, 0.01, stopThr=1e-10)  # float64, no underflow at this eps
    assert r1.cost == pytest.approx(float((ref * C).sum()), rel=1e-6)
    P = r2.plan
    merr = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    assert r2.marginal_error == pytest.approx(merr, rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m, n", [(303, 263), (258, 271), (5, 20000)])
def test_sinkhorn_four_row_sweep_zero_rows_and_tails(seed, m, n):
    # the sweep runs four kernel rows at a time (shared loads of v, one update of K^T u per
    # four rows): zero-mass rows inside and at the ends of the blocks, a last block of 1-3
    # rows, row lengths with 8- and 4-lane and scalar tails; against POT's float64 log-domain
    # Sinkhorn and the plan's own marginals
    rng = np.random.default_rng(seed)
    a, b, C = _problem(rng, m, n)
    C /= C.max()
    # the first and last rows, three of one block (or of the last one), random others
    a[[0, min(5, m - 3), min(6, m - 2), min(7, m - 1), m - 1]] = 0.0
    a[rng.random(m) < 0.1] = 0.0
    a[1] = max(a[1], 1e-3)
    a /= a.sum()
    eps = 0.05
    res = got.sinkhorn(a, b, C, eps, tol=1e-10)
    ka = a > 0
    ref = pot.bregman.sinkhorn_log(a[ka], b, C[ka], eps, stopThr=1e-14, numItermax=100000)
    assert res.converged
    assert not res.plan[~ka].any()
    np.testing.assert_allclose(res.plan[ka], ref, rtol=1e-5, atol=1e-12)
    assert res.cost == pytest.approx(float((ref * C[ka]).sum()), rel=1e-6)
    P = res.plan
    merr = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    assert merr <= 1e-10 and res.marginal_error == pytest.approx(merr, rel=1e-6, abs=1e-15)


def test_sinkhorn_four_row_sweep_threads_identical_zero_rows():
    # >= 2^20 entries (row groups on threads, the fused build-and-sweep), zero-mass rows that
    # break four-row blocks: 1 and 2 threads give the same bits
    rng = np.random.default_rng(7)
    a, b, C = _problem(rng, 1101, 1003)
    C /= C.max()
    a[[2, 3, 17, 64, 1100]] = 0.0
    a /= a.sum()
    r1 = got.sinkhorn(a, b, C, 0.1, tol=1e-10, n_jobs=1)
    r2 = got.sinkhorn(a, b, C, 0.1, tol=1e-10, n_jobs=2)
    assert r1.converged and r2.converged
    assert r1.n_iter == r2.n_iter and r1.cost == r2.cost
    assert np.array_equal(r1.plan, r2.plan) and np.array_equal(r1.g, r2.g)
    ka = a > 0
    ref = pot.sinkhorn(a[ka], b, C[ka], 0.1, stopThr=1e-14, numItermax=100000)
    np.testing.assert_allclose(r1.plan[ka], ref, rtol=1e-5, atol=1e-12)


def test_sinkhorn_batched_bits_do_not_depend_on_the_calling_thread():
    # Small problems (plan rows shorter than a vector: the kernels' scalar tails) solved on
    # OpenMP workers and on Python threads, whose buffers lie elsewhere in the heap: the same
    # bits as one thread on the main thread. (GCC vectorised a tail behind a run-time alias
    # check with its products rounded apart from the sum: 1 ulp in 5-15 % of the calls.)
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    B, m, n = 23, 6, 5
    a = rng.dirichlet(np.ones(m), B)
    b = rng.dirichlet(np.ones(n), B)
    C = rng.random((B, m, n))
    ref = got.sinkhorn_batched(a, b, C, 0.05, n_jobs=1)

    def solve(k):
        s = slice(k % 3, B)
        return s, got.sinkhorn_batched(a[s], b[s], C[s], 0.05, n_jobs=1 + k % 2)

    with ThreadPoolExecutor(4) as pool:
        for s, res in pool.map(solve, range(120)):
            assert np.array_equal(res.cost, ref.cost[s])
            assert np.array_equal(res.n_iter, ref.n_iter[s])


@pytest.mark.parametrize("n", [1, 3, 7, 1000, (1 << 18) + 5])
def test_value_range_matches_numpy(rng, n):
    # SIMD tails (n not a multiple of 4) and the threaded path (n >= 2^18)
    from geoml import _core

    x = rng.normal(size=n) * 10 - 3
    lo, hi, finite = _core.value_range(x, n_jobs=0)
    assert (lo, hi, finite) == (x.min(), x.max(), True)
    x[n // 2] = np.nan
    assert not _core.value_range(x, n_jobs=0)[2]


def test_value_range_rejects_nonfinite():
    C = np.ones((300, 300))
    C[123, 45] = -np.inf
    with pytest.raises(ValueError, match="NaN or -inf"):
        got.sinkhorn(None, None, C, 0.1)
    C[123, 45] = np.nan
    with pytest.raises(ValueError, match="NaN or -inf"):
        got.emd(None, None, C)
    C[123, 45] = np.inf  # a forbidden pair
    assert got.sinkhorn(None, None, C, 0.1).plan[123, 45] == 0.0


# ---------------------------------------------------------------------------- assignment

lsa = pytest.importorskip("scipy.optimize").linear_sum_assignment


def _brute_force(C):
    """Optimal cost of a tiny problem by enumerating every assignment (inf: forbidden)."""
    import itertools

    m, n = C.shape
    if m > n:
        return _brute_force(C.T)
    best = np.inf
    for cols in itertools.permutations(range(n), m):
        best = min(best, C[np.arange(m), list(cols)].sum())
    return best


def _check_assignment(C, res, maximize=False):
    r, c = res
    m, n = C.shape
    k = min(m, n)
    assert r.dtype == np.int64 and c.dtype == np.int64 and r.shape == c.shape == (k,)
    assert (np.diff(r) > 0).all() and len(set(c.tolist())) == k
    assert r.min(initial=0) >= 0 and r.max(initial=0) < max(m, 1)
    assert c.min(initial=0) >= 0 and c.max(initial=0) < max(n, 1)
    ref_r, ref_c = lsa(C, maximize=maximize)
    ref = C[ref_r, ref_c].sum()
    got_cost = C[r, c].sum()
    assert np.isfinite(got_cost)
    scale = np.abs(C[np.isfinite(C)]).max(initial=1.0) * max(k, 1)
    assert abs(got_cost - ref) <= 1e-12 * scale
    return ref_r, ref_c


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 5), (5, 1), (3, 3), (4, 7), (7, 4), (30, 30), (50, 80), (80, 50), (200, 200)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_assignment_vs_scipy(shape, seed):
    rng = np.random.default_rng(seed)
    C = rng.random(shape)
    res = got.linear_assignment(C)
    ref_r, ref_c = _check_assignment(C, res)
    # continuous random costs: the optimum is unique, so the pairs are SciPy's
    assert np.array_equal(res.row_ind, ref_r) and np.array_equal(res.col_ind, ref_c)
    res = got.linear_assignment(C, maximize=True)
    ref_r, ref_c = _check_assignment(C, res, maximize=True)
    assert np.array_equal(res.col_ind, ref_c)


@pytest.mark.parametrize("shape", [(150, 150), (90, 160), (160, 90)])
@pytest.mark.parametrize("levels", [2, 5, 50])
def test_linear_assignment_many_ties_vs_scipy(shape, levels):
    rng = np.random.default_rng(levels)
    C = rng.integers(0, levels, size=shape).astype(float)
    for maximize in (False, True):
        res = got.linear_assignment(C, maximize=maximize)
        _check_assignment(C, res, maximize=maximize)
        r, c = lsa(C, maximize=maximize)
        assert C[res].sum() == C[r, c].sum()  # integers: exact


@pytest.mark.parametrize("seed", range(6))
def test_linear_assignment_brute_force_and_ties(seed):
    rng = np.random.default_rng(seed)
    for shape in [(2, 2), (3, 3), (4, 4), (5, 5), (3, 5), (5, 3), (6, 6)]:
        for kind in ("int", "ties", "rows", "neg"):
            if kind == "int":
                C = rng.integers(0, 4, size=shape).astype(float)  # many ties
            elif kind == "ties":
                C = np.ones(shape)
            elif kind == "rows":
                C = np.tile(rng.integers(0, 3, size=shape[1]), (shape[0], 1)).astype(float)
            else:
                C = rng.normal(size=shape) * 1e3
            res = got.linear_assignment(C)
            _check_assignment(C, res)
            assert C[res].sum() == pytest.approx(_brute_force(C), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_linear_assignment_forbidden_pairs(seed):
    rng = np.random.default_rng(seed)
    for shape in [(4, 4), (5, 5), (3, 6), (6, 3), (60, 60), (40, 70)]:
        C = rng.random(shape)
        C[rng.random(shape) < 0.5] = np.inf
        feasible = np.isfinite(lsa_or_none(C))
        if feasible:
            res = got.linear_assignment(C)
            _check_assignment(C, res)
            if max(shape) <= 6:
                assert C[res].sum() == pytest.approx(_brute_force(C), rel=1e-12)
            # maximize: forbidden pairs are -inf
            res = got.linear_assignment(-C, maximize=True)
            assert (-C)[res].sum() == pytest.approx(-C[lsa(C)].sum(), rel=1e-12)
        else:
            with pytest.raises(ValueError, match="infeasible"):
                got.linear_assignment(C)


def lsa_or_none(C):
    """SciPy's optimal cost, inf when it says the problem is infeasible."""
    try:
        r, c = lsa(C)
    except ValueError:
        return np.inf
    return C[r, c].sum()


def test_linear_assignment_degenerate_and_bad_input():
    # empty, like SciPy
    for shape in [(0, 0), (0, 3), (3, 0)]:
        r, c = got.linear_assignment(np.zeros(shape))
        assert r.shape == c.shape == (0,)
    # one row / one column
    C = np.array([[3.0, 1.0, 2.0]])
    assert got.linear_assignment(C).col_ind.tolist() == [1]
    assert got.linear_assignment(C.T).row_ind.tolist() == [1]
    # integer and float32 input
    Ci = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    assert got.linear_assignment(Ci).col_ind.tolist() == [1, 0, 2]
    assert got.linear_assignment(Ci.astype(np.float32)).col_ind.tolist() == [1, 0, 2]
    # infeasible: a row, a column, or a Hall violation
    with pytest.raises(ValueError, match="cost matrix is infeasible"):
        got.linear_assignment([[np.inf, np.inf], [1.0, 2.0]])
    with pytest.raises(ValueError, match="cost matrix is infeasible"):
        got.linear_assignment([[np.inf, 1.0], [np.inf, 2.0]])
    with pytest.raises(ValueError, match="cost matrix is infeasible"):
        got.linear_assignment([[1.0, np.inf, np.inf], [2.0, np.inf, np.inf], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="cost matrix is infeasible"):
        got.linear_assignment([[np.inf, np.inf, 1.0], [np.inf, np.inf, 2.0]])
    with pytest.raises(ValueError, match="contains NaN"):
        got.linear_assignment([[np.nan, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"contains -inf"):
        got.linear_assignment([[-np.inf, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"contains \+inf"):
        got.linear_assignment([[np.inf, 1.0], [1.0, 2.0]], maximize=True)
    with pytest.raises(ValueError, match="2-D"):
        got.linear_assignment(np.zeros(3))
    with pytest.raises(TypeError):
        got.linear_assignment(np.array([["a", "b"]]))


def test_linear_assignment_batched():
    rng = np.random.default_rng(5)
    Cs = rng.random((7, 12, 9))
    Cs[2, 3, :] = np.inf  # a row that cannot be used: fine with more rows than columns
    res1 = got.linear_assignment_batched(Cs, n_jobs=1)
    res2 = got.linear_assignment_batched(Cs, n_jobs=2)
    assert res1.row_ind.shape == res1.col_ind.shape == (7, 9)
    for k in range(7):
        r, c = got.linear_assignment(Cs[k])
        assert np.array_equal(res1.row_ind[k], r) and np.array_equal(res1.col_ind[k], c)
        assert res1.cost[k] == Cs[k][r, c].sum()
        _check_assignment(Cs[k], (r, c))
    for x, y in zip(res1, res2):
        assert np.array_equal(x, y)
    # a list of different sizes, maximize
    mats = [rng.random(s) for s in [(1, 1), (5, 3), (3, 5), (20, 20), (2, 8)]]
    res = got.linear_assignment_batched(mats, maximize=True, n_jobs=2)
    assert len(res.row_ind) == len(res.col_ind) == 5
    for k, M in enumerate(mats):
        r, c = lsa(M, maximize=True)
        assert np.array_equal(res.row_ind[k], r) and np.array_equal(res.col_ind[k], c)
        assert res.cost[k] == pytest.approx(M[r, c].sum(), rel=1e-14)
    assert got.linear_assignment_batched([]).cost.shape == (0,)
    assert got.linear_assignment_batched(np.zeros((0, 3, 3))).row_ind.shape == (0, 3)
    bad = [rng.random((3, 3)), np.full((2, 2), np.inf)]
    with pytest.raises(ValueError, match=r"infeasible \(problem 1\)"):
        got.linear_assignment_batched(bad)
    with pytest.raises(ValueError, match=r"Cs\[0\] contains NaN"):
        got.linear_assignment_batched([np.full((2, 2), np.nan)])
    with pytest.raises(ValueError, match="3-D"):
        got.linear_assignment_batched(np.zeros((3, 3)))


# ---------------------------------------------------------------------------- forbidden pairs


def _forbidden_problem(rng, m, n, frac=0.4):
    """A feasible problem with a fraction of +inf costs (a band around the diagonal kept)."""
    a, b, C = _problem(rng, m, n)
    mask = rng.random((m, n)) < frac
    ii, jj = np.meshgrid(np.arange(m) / m, np.arange(n) / n, indexing="ij")
    mask &= np.abs(ii - jj) > 0.25
    C[mask] = np.inf
    return a, b, C


def _lp_cost(a, b, C):
    """Exact OT cost by HiGHS with the +inf pairs' flow fixed at 0 (None: infeasible)."""
    from scipy.optimize import linprog

    m, n = C.shape
    allowed = np.isfinite(C)
    A_eq = np.vstack([np.kron(np.eye(m), np.ones(n)), np.kron(np.ones(m), np.eye(n))])
    res = linprog(
        np.where(allowed, C, 0.0).ravel(),
        A_eq=A_eq,
        b_eq=np.concatenate([a, b]),
        bounds=[(0, None) if ok else (0, 0) for ok in allowed.ravel()],
        method="highs",
    )
    return res.fun if res.status == 0 else None


@pytest.mark.parametrize("shape", [(5, 7), (20, 20), (40, 33)])
@pytest.mark.parametrize("seed", [0, 1])
def test_emd_forbidden_pairs(shape, seed):
    rng = np.random.default_rng(seed)
    a, b, C = _forbidden_problem(rng, *shape)
    ref = _lp_cost(a, b, C)
    res = got.emd(a, b, C)
    assert res.converged and (res.plan[~np.isfinite(C)] == 0).all()
    assert res.cost == pytest.approx(ref, rel=1e-9)
    # POT refuses +inf; with a large finite cost instead its optimum is the same
    big = np.where(np.isfinite(C), C, 1e3)
    assert res.cost == pytest.approx(float((pot.emd(a, b, big) * big).sum()), rel=1e-9)
    slack = C - res.f[:, None] - res.g[None, :]
    assert slack.min() >= -1e-10 and np.isfinite(res.f).all() and np.isfinite(res.g).all()
    assert abs(a @ res.f + b @ res.g - res.cost) <= 1e-10
    # zero-mass bins, sparse plan, batched (padded and ragged)
    a0 = a.copy()
    a0[0] = 0.0
    a0 /= a0.sum()
    assert got.emd(a0, b, C, sparse=True).cost == pytest.approx(_lp_cost(a0, b, C), rel=1e-9)
    out = got.emd_batched(np.stack([a, a]), np.stack([b, b]), np.stack([C, C]))
    np.testing.assert_allclose(out.cost, [ref, ref], rtol=1e-9)


def test_emd_forbidden_infeasible_and_bad_input():
    C = np.array([[1.0, np.inf], [np.inf, np.inf]])  # row 1 has only forbidden pairs
    with pytest.raises(ValueError, match="infeasible"):
        got.emd([0.5, 0.5], [0.5, 0.5], C)
    # Hall violation: two rows of mass 0.4 each can only use column 0 (mass 0.5)
    C = np.array([[0.0, np.inf, np.inf], [1.0, np.inf, np.inf], [2.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="infeasible"):
        got.emd([0.4, 0.4, 0.2], [0.5, 0.25, 0.25], C)
    # the same masses fit when row 1 may also use columns 1 and 2
    C[1, 1:] = 3.0
    assert got.emd([0.4, 0.4, 0.2], [0.5, 0.25, 0.25], C).converged
    with pytest.raises(ValueError, match="NaN or -inf"):
        got.emd(None, None, np.array([[0.0, -np.inf], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN or -inf"):
        got.emd(None, None, np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"problem 1\): infeasible"):
        got.emd_batched(
            np.full((2, 2), 0.5),
            np.full((2, 2), 0.5),
            np.stack([np.eye(2), np.full((2, 2), np.inf)]),
        )
    # zero-mass bins may be forbidden everywhere
    res = got.emd([1.0, 0.0], [1.0, 0.0], np.array([[0.0, np.inf], [np.inf, np.inf]]))
    assert res.cost == 0.0 and np.isfinite(res.f).all() and np.isfinite(res.g).all()


@pytest.mark.parametrize("shape", [(6, 9), (30, 30), (300, 260)])  # 300 x 260: float32 kernel
@pytest.mark.parametrize("eps", [0.05, 0.01])
def test_sinkhorn_forbidden_pairs_vs_pot(shape, eps):
    rng = np.random.default_rng(3)
    a, b, C = _forbidden_problem(rng, *shape)
    C /= np.max(C[np.isfinite(C)])
    res = got.sinkhorn(a, b, C, eps, tol=1e-10)
    assert res.converged and (res.plan[~np.isfinite(C)] == 0).all()
    P = pot.sinkhorn(a, b, C, eps, method="sinkhorn_log", stopThr=1e-13, numItermax=200000)
    ref = float((P * np.where(np.isfinite(C), C, 0.0)).sum())
    assert res.cost == pytest.approx(ref, rel=1e-7)
    np.testing.assert_allclose(res.plan, P, atol=1e-8 * P.max())
    for n_jobs in (1, 2):
        again = got.sinkhorn(a, b, C, eps, tol=1e-10, n_jobs=n_jobs)
        assert again.cost == pytest.approx(res.cost, rel=1e-12)
    # the unbalanced solver takes them too (no mass on forbidden pairs)
    un = got.sinkhorn_unbalanced(a, b, C, eps, 1.0)
    assert np.isfinite(un.cost) and (un.plan[~np.isfinite(C)] == 0).all()


def test_sinkhorn_forbidden_infeasible():
    C = np.array([[0.0, 1.0], [np.inf, np.inf]])
    with pytest.raises(ValueError, match="row 1 has positive mass but only forbidden"):
        got.sinkhorn([0.5, 0.5], [0.5, 0.5], C, 0.1)
    with pytest.raises(ValueError, match="column 1 has positive mass"):
        got.sinkhorn([0.5, 0.5], [0.5, 0.5], C.T.copy(), 0.1)
    # a Hall violation: the iterations cannot converge; the exact check then says why
    C = np.array([[0.0, np.inf, np.inf], [1.0, np.inf, np.inf], [2.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="infeasible"):
        got.sinkhorn([0.4, 0.4, 0.2], [0.5, 0.25, 0.25], C, 0.1, max_iter=200)
    with pytest.raises(ValueError, match="NaN or -inf"):
        got.sinkhorn(None, None, np.array([[0.0, -np.inf], [1.0, 0.0]]), 0.1)
    # zero-mass rows may be forbidden everywhere
    res = got.sinkhorn([1.0, 0.0], [0.5, 0.5], np.array([[0.0, 1.0], [np.inf, np.inf]]), 0.1)
    assert res.converged and res.plan[1].sum() == 0.0


# ---------------------------------------------------------------------------- symmetric scaling


def _sym_problem(seed, n, d=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    C = pot.dist(x, x)
    C /= max(C.max(), 1.0)
    a = rng.uniform(0.5, 1.5, n)
    return C, a / a.sum()


@pytest.mark.parametrize("seed,n,eps", [(0, 1, 0.1), (1, 7, 0.5), (2, 60, 0.1), (3, 150, 0.02)])
def test_sinkhorn_symmetric_cost_matches_pot(seed, n, eps):
    C, a = _sym_problem(seed, n)
    ref = pot.sinkhorn(a, a, C, eps, stopThr=1e-14, numItermax=100000)
    ref_log = pot.bregman.sinkhorn_log(a, a, C, eps, stopThr=1e-14, numItermax=100000)
    res = got.sinkhorn_symmetric(C, a, eps=eps, tol=1e-12)
    assert res.converged and res.plan.dtype == np.float64
    assert np.abs(res.plan - ref).max() <= 1e-8 * a.max()
    assert np.abs(res.plan - ref_log).max() <= 1e-8 * a.max()
    assert np.allclose(res.plan.sum(1), a, rtol=0, atol=1e-12)
    assert np.array_equal(res.plan, res.plan.T) or np.abs(res.plan - res.plan.T).max() < 1e-16
    assert res.marginal_error <= 1e-12
    # P = exp(log d_i + log d_j - C / eps)
    P = np.exp(res.log_scaling[:, None] + res.log_scaling[None, :] - C / eps)
    assert np.allclose(P, res.plan, rtol=1e-10, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed,n,eps", [(4, 40, 0.2), (5, 120, 0.05)])
def test_sinkhorn_symmetric_kernel_matches_pot(seed, n, eps, dtype):
    C, a = _sym_problem(seed, n)
    K = np.exp(-C / eps).astype(dtype)
    ref = pot.sinkhorn(a, a, C, eps, stopThr=1e-14, numItermax=100000)
    res = got.sinkhorn_symmetric(K, a, tol=1e-12)
    assert res.converged and res.plan.dtype == dtype
    if dtype == np.float64:
        assert np.abs(res.plan - ref).max() <= 1e-8 * a.max()
    else:  # the scaling of the float32 kernel, exact in float64; the plan rounded to float32
        ref32 = pot.sinkhorn(a, a, -eps * np.log(K.astype(np.float64)), eps, stopThr=1e-14)
        assert np.abs(res.plan - ref32).max() <= 1e-6 * a.max()
        P = res.scaling[:, None] * K.astype(np.float64) * res.scaling[None, :]
        assert np.abs(P.sum(1) - a).sum() <= 1e-12
    # the same plan from the cost form
    resc = got.sinkhorn_symmetric(C, a, eps=eps, tol=1e-12)
    if dtype == np.float64:
        assert np.abs(res.plan - resc.plan).max() <= 1e-12 * a.max()


def test_sinkhorn_symmetric_default_mass_is_doubly_stochastic():
    C, _ = _sym_problem(6, 50)
    res = got.sinkhorn_symmetric(np.exp(-C / 0.1))
    assert res.converged
    assert np.allclose(res.plan.sum(0), 1.0, atol=1e-9) and np.allclose(
        res.plan.sum(1), 1, atol=1e-9
    )


def test_sinkhorn_symmetric_small_eps_log_stable():
    C, a = _sym_problem(7, 80, d=2)
    for eps in (1e-3, 1e-4):  # exp(-C / eps) underflows: the cost form absorbs the scaling
        res = got.sinkhorn_symmetric(C, a, eps=eps, tol=1e-10, max_iter=20000)
        assert res.converged and np.isfinite(res.plan).all()
        assert np.abs(res.plan.sum(1) - a).sum() <= 1e-9
        # Gibbs form with these marginals characterises the entropic plan (POT's log-domain
        # Sinkhorn needs > 2e5 iterations here): rebuild it from log d in NumPy
        L = res.log_scaling[:, None] + res.log_scaling[None, :] - C / eps
        P = np.exp(L)
        assert np.allclose(P, res.plan, rtol=1e-9, atol=1e-300)
        assert np.abs(P.sum(1) - a).sum() <= 1e-9 and np.abs(P.sum(0) - a).sum() <= 1e-9


def test_sinkhorn_symmetric_closed_form():
    # a doubly-stochastic K: d = 1 from the first pass
    rng = np.random.default_rng(8)
    n = 30
    perms = [np.eye(n)[rng.permutation(n)] for _ in range(3)]
    K = sum(p + p.T for p in perms) / 6
    res = got.sinkhorn_symmetric(K)
    assert res.converged and res.n_iter == 0
    assert np.array_equal(res.scaling, np.ones(n)) and np.array_equal(res.plan, K)
    # a constant kernel c with masses a: d_i = a_i / sqrt(c sum(a))
    a = rng.uniform(0.1, 1.0, n)
    res = got.sinkhorn_symmetric(np.full((n, n), 3.0), a, tol=1e-13)
    assert np.allclose(res.scaling, a / np.sqrt(3.0 * a.sum()), rtol=1e-10)


def test_sinkhorn_symmetric_refuses_complex_sparse_kernel():
    # a sparse complex K had its real part taken (NumPy's ComplexWarning only), where a dense
    # one is refused
    K = sp.random(15, 15, density=0.4, random_state=1)
    K = ((K + K.T) * (1 + 1j)).astype(np.complex128)
    for fmt in (sp.csr_matrix, sp.coo_array):
        with pytest.raises(TypeError, match="K must hold real numbers; got dtype complex128"):
            got.sinkhorn_symmetric(fmt(K))
    with pytest.raises(TypeError, match="must hold real numbers; got dtype complex128"):
        got.sinkhorn_symmetric(K.toarray())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sinkhorn_symmetric_sparse_matches_dense(dtype):
    C, a = _sym_problem(9, 90)
    K = np.exp(-C / 0.05)
    K[K < 0.2] = 0.0
    K = K.astype(dtype)
    dense = got.sinkhorn_symmetric(K, a, tol=1e-12)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        res = got.sinkhorn_symmetric(fmt(K), a, tol=1e-12)
        assert res.converged and sp.issparse(res.plan) and res.plan.dtype == dtype
        assert np.allclose(res.scaling, dense.scaling, rtol=1e-9)
        assert np.abs(res.plan.toarray() - dense.plan).max() <= 1e-6 * a.max()
    assert got.sinkhorn_symmetric(sp.csr_matrix(K), a, return_plan=False).plan is None


def test_sinkhorn_symmetric_zero_mass_and_zero_rows():
    C, a = _sym_problem(10, 20)
    K = np.exp(-C / 0.1)
    a[[3, 7]] = 0.0
    for X, kw in ((K, {}), (C, {"eps": 0.1}), (sp.csr_matrix(K), {})):
        res = got.sinkhorn_symmetric(X, a, tol=1e-12, **kw)
        P = res.plan.toarray() if sp.issparse(res.plan) else res.plan
        assert res.converged and (res.scaling[[3, 7]] == 0).all()
        assert not P[[3, 7]].any() and not P[:, [3, 7]].any()
        assert np.allclose(P.sum(1), a, atol=1e-12)
    # a zero kernel row with zero mass is fine, with positive mass an error
    K[5] = K[:, 5] = 0.0
    a[5] = 0.0
    assert got.sinkhorn_symmetric(K, a).converged
    a[5] = 0.1
    with pytest.raises(ValueError, match="row 5 of the kernel is zero"):
        got.sinkhorn_symmetric(K, a)
    with pytest.raises(ValueError, match="row 5 of the kernel is zero"):
        got.sinkhorn_symmetric(sp.csr_matrix(K), a)


def test_sinkhorn_symmetric_bad_input():
    C, a = _sym_problem(11, 10)
    K = np.exp(-C)
    with pytest.raises(ValueError, match="negative entries"):
        got.sinkhorn_symmetric(K - 0.5)
    with pytest.raises(ValueError, match="negative entries"):
        got.sinkhorn_symmetric(sp.csr_matrix(K - 0.5))
    for bad in (np.nan, np.inf):
        K2 = K.copy()
        K2[2, 3] = K2[3, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            got.sinkhorn_symmetric(K2)
        with pytest.raises(ValueError, match="NaN or infinity"):
            got.sinkhorn_symmetric(np.log(K2 + 1), eps=0.1)
    K2 = K.copy()
    K2[0, 1] += 0.1
    with pytest.raises(ValueError, match="not symmetric"):
        got.sinkhorn_symmetric(K2)
    with pytest.raises(ValueError, match="not symmetric"):
        got.sinkhorn_symmetric(sp.csr_matrix(K2))
    with pytest.raises(ValueError, match="not symmetric"):
        got.sinkhorn_symmetric(C + np.triu(C), eps=0.1)
    with pytest.raises(ValueError, match="square"):
        got.sinkhorn_symmetric(K[:, :5])
    with pytest.raises(ValueError, match="2-D"):
        got.sinkhorn_symmetric(K[0])
    with pytest.raises(ValueError, match="a has 3 entries"):
        got.sinkhorn_symmetric(K, a[:3])
    with pytest.raises(ValueError, match="a has negative"):
        got.sinkhorn_symmetric(K, -a)
    with pytest.raises(ValueError, match="eps must be"):
        got.sinkhorn_symmetric(C, eps=-1.0)
    with pytest.raises(TypeError, match="dense"):
        got.sinkhorn_symmetric(sp.csr_matrix(C), eps=0.1)
    with pytest.raises(ValueError, match="tol"):
        got.sinkhorn_symmetric(K, tol=0)


def test_sinkhorn_symmetric_not_converged_warns():
    C, a = _sym_problem(12, 50)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        res = got.sinkhorn_symmetric(C, a, eps=0.01, max_iter=2, tol=1e-14)
    assert not res.converged and res.n_iter == 2 and res.marginal_error > 0


def test_sinkhorn_symmetric_n_jobs_identical():
    C, a = _sym_problem(13, 1100)  # threads from 2^20 kernel entries on
    K = np.exp(-C / 0.05)
    for X, kw in ((K, {}), (K.astype(np.float32), {}), (C, {"eps": 0.05}), (sp.csr_matrix(K), {})):
        r1 = got.sinkhorn_symmetric(X, a, n_jobs=1, **kw)
        r2 = got.sinkhorn_symmetric(X, a, n_jobs=2, **kw)
        assert r1.n_iter == r2.n_iter and np.array_equal(r1.log_scaling, r2.log_scaling)
        P1 = r1.plan.toarray() if sp.issparse(r1.plan) else r1.plan
        P2 = r2.plan.toarray() if sp.issparse(r2.plan) else r2.plan
        assert np.array_equal(P1, P2)


@pytest.mark.parametrize(
    "n,zero,f32", [(131, None, False), (259, 0, False), (259, 3, True), (1031, 1030, False)]
)
def test_sinkhorn_symmetric_upper_tiles_ragged(monkeypatch, n, zero, f32):
    # an exactly symmetric cost: the kernel stored and multiplied by its upper 128 x 128 tiles,
    # the plan mirrored from them; n neither a multiple of the tile nor of the 4-row groups
    # (1031: threads from 2^20 entries on), a zero-mass row in the first / last tile; f32: the
    # float32-kernel phase (upper tiles too) forced
    import geoml.ot._symmetric as sym

    if f32:
        monkeypatch.setattr(sym, "KERNEL32_MIN_ENTRIES", 0)
    C, a = _sym_problem(40 + n, n, d=2)
    C = np.minimum(C, C.T)
    if zero is not None:
        a[zero] = 0.0
        a /= a.sum()
    r1 = got.sinkhorn_symmetric(C, a, eps=0.1, tol=1e-11, n_jobs=1)
    r2 = got.sinkhorn_symmetric(C, a, eps=0.1, tol=1e-11, n_jobs=2)
    assert r1.converged and r1.n_iter == r2.n_iter
    assert np.array_equal(r1.plan, r2.plan) and np.array_equal(r1.log_scaling, r2.log_scaling)
    P = r1.plan
    assert np.array_equal(P, P.T)
    assert np.abs(P.sum(1) - a).sum() <= 1e-11
    L = r1.log_scaling[:, None] + r1.log_scaling[None, :] - C / 0.1
    assert np.allclose(np.exp(L), P, rtol=1e-10, atol=0)
    m = a > 0
    ref = pot.sinkhorn(a[m], a[m], C[m][:, m], 0.1, stopThr=1e-13, numItermax=100000)
    assert np.abs(P[m][:, m] - ref).max() <= 1e-8 * a.max()
    if zero is not None:
        assert not P[zero].any() and not P[:, zero].any()


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_sinkhorn_symmetric_upper_tiles_isa(isa):
    # the upper-tile products, input scan and plan on each ISA's kernels (n = 2 x 128 + 11):
    # the same plan as the default ISA's to rounding
    from geoml import _core

    if isa != "generic" and _core.simd_isa() == "generic":
        pytest.skip("no AVX2")
    C, a = _sym_problem(50, 267, d=2)
    C = np.minimum(C, C.T)
    ref = got.sinkhorn_symmetric(C, a, eps=0.1, tol=1e-11)
    _core.set_simd_isa(isa)
    try:
        res = got.sinkhorn_symmetric(C, a, eps=0.1, tol=1e-11)
    finally:
        _core.set_simd_isa("auto")
    assert res.converged and np.array_equal(res.plan, res.plan.T)
    assert np.abs(res.plan - ref.plan).max() <= 1e-12 * a.max()
    L = res.log_scaling[:, None] + res.log_scaling[None, :] - C / 0.1
    assert np.allclose(np.exp(L), res.plan, rtol=1e-10, atol=0)


@pytest.mark.parametrize("sparse", [False, True])
def test_sinkhorn_symmetric_no_scaling_exists_warns(sparse):
    # [[0, 1], [1, 0]] has P_12 = P_21: row sums (1/3, 2/3) are impossible; d diverges
    K = np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        res = got.sinkhorn_symmetric(sp.csr_matrix(K) if sparse else K, [1 / 3, 2 / 3])
    P = res.plan.toarray() if sparse else res.plan
    assert not res.converged and np.isfinite(P).all() and P[0, 0] == P[1, 1] == 0
    assert abs(res.marginal_error - 1 / 3) < 1e-9


@pytest.mark.parametrize(
    "seed,n,eps,exact_sym",
    [(20, 90, 0.1, True), (21, 130, 0.02, True), (22, 70, 0.05, False), (23, 65, 1e-3, True)],
)
def test_sinkhorn_symmetric_float32_phase(monkeypatch, seed, n, eps, exact_sym):
    # the float32-kernel phase (large costs) forced at small n: same plan as POT / a NumPy
    # float64 Gibbs form, marginal error measured in float64 on the returned plan
    import geoml.ot._symmetric as sym

    C, a = _sym_problem(seed, n, d=2)
    if not exact_sym:  # within the symmetry tolerance but not exactly symmetric
        C = C + 1e-9 * np.random.default_rng(seed).random(C.shape)
        assert not np.array_equal(C, C.T)
    a[seed % n] = 0.0
    a /= a.sum()
    ref = got.sinkhorn_symmetric(C, a, eps=eps, tol=1e-11, max_iter=20000)
    monkeypatch.setattr(sym, "KERNEL32_MIN_ENTRIES", 0)
    for tol in (1e-9, 1e-11):
        r1 = got.sinkhorn_symmetric(C, a, eps=eps, tol=tol, max_iter=20000, n_jobs=1)
        r2 = got.sinkhorn_symmetric(C, a, eps=eps, tol=tol, max_iter=20000, n_jobs=2)
        assert r1.converged and r1.n_iter == r2.n_iter
        assert np.array_equal(r1.plan, r2.plan) and np.array_equal(r1.log_scaling, r2.log_scaling)
        P = r1.plan
        err = np.abs(P.sum(1) - a).sum()
        assert err <= tol and abs(err - r1.marginal_error) <= 1e-3 * tol
        assert not P[seed % n].any() and not P[:, seed % n].any()
        L = r1.log_scaling[:, None] + r1.log_scaling[None, :] - C / eps
        assert np.allclose(np.exp(L), P, rtol=1e-10, atol=1e-300)
        assert np.abs(P - ref.plan).max() <= 1e-6 * a.max()  # both near the same fixed point
    if eps >= 0.02:
        m = a > 0  # POT on the rows with mass (the others are zero in P)
        pref = pot.sinkhorn(a[m], a[m], C[m][:, m], eps, stopThr=1e-14, numItermax=100000)
        assert np.abs(r1.plan[m][:, m] - pref).max() <= 1e-8 * a.max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 5, 64, 130])
def test_symmetric_scan_matches_numpy(dtype, n):
    from geoml import _core

    rng = np.random.default_rng(n)
    M = rng.normal(size=(n, n)).astype(dtype)
    M = M + M.T
    M[n // 2, n // 3] += dtype(0.25)  # one asymmetric pair
    for nj in (1, 2):
        finite, lo, kmax, asym, rowmin = _core.symmetric_scan(M, n_jobs=nj, rowmin=True)
        M64 = M.astype(np.float64)
        assert finite and lo == M64.min() and kmax == np.abs(M64).max()
        assert asym == np.abs(M64 - M64.T).max()
        assert np.array_equal(rowmin, M64.min(1))
        assert _core.symmetric_scan(M, n_jobs=nj)[4] is None
    M[n - 1, 0] = np.nan
    assert not _core.symmetric_scan(M)[0]
    M[n - 1, 0] = np.inf
    assert not _core.symmetric_scan(M)[0]


@pytest.mark.parametrize("case", ["zero_diag", "offset", "near_sym"])
def test_sinkhorn_symmetric_fused_checks_match_separate(case):
    # the cost path's input checks fused with the first kernel build (kept when C is exactly
    # symmetric with zero row minima, else rebuilt): bitwise the separate-scan result
    from geoml import _core

    rng = np.random.default_rng(30)
    x = rng.random((150, 2))
    C = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)  # exactly symmetric, zero diagonal
    if case == "offset":
        C = C + 0.3 + np.add.outer(x[:, 0], x[:, 0])
    elif case == "near_sym":
        C = C + 1e-9 * rng.random(C.shape)
    a = rng.uniform(0.5, 1.5, 150)
    a /= a.sum()
    res = got.sinkhorn_symmetric(C, a, eps=0.05, tol=1e-11)
    _, _, _, asym, rowmin = _core.symmetric_scan(C, rowmin=True)
    P, logd, n_iter, err, conv, zr, scan = _core.sinkhorn_symmetric_cost(
        C, a, eps=0.05, tol=1e-11, max_iter=10000, rowmin=rowmin, c_symmetric=asym == 0.0
    )
    assert scan is None and conv and res.converged and res.n_iter == n_iter
    assert np.array_equal(res.plan, P) and np.array_equal(res.log_scaling, logd)
    L = logd[:, None] + logd[None, :] - C / 0.05
    assert np.allclose(np.exp(L), P, rtol=1e-10, atol=0)
    assert np.abs(P.sum(1) - a).sum() <= 1e-11


# ------------------------------------------------------------------ extreme scales (audit)


@pytest.mark.parametrize("m,n", [(7, 5), (40, 30), (20, 60), (300, 200)])
def test_emd_is_equivariant_in_the_cost_scale(rng, m, n):
    """Exact OT is linear in C: squared distances of points at scale 1e-3 (costs ~1e-6) gave
    plans 0.7 % above the optimum at m = n = 1000, costs of 1e-12 far more (the artificial
    cost's absolute floor made the relative reduced-cost tolerance absolute), and costs of
    1e307 raised "internal error" (the potentials overflowed)."""
    a, b, C = _problem(rng, m, n)
    C = C / C.max()
    ref = got.emd(a, b, C)
    for s in [2.0**-20, 2.0**-40, 1e-100, 1e-300, 1e300, 1e307]:
        res = got.emd(a, b, C * s)
        _check_emd(res, a, b, C * s, ref.cost * s)
        assert abs(res.cost / s - ref.cost) <= 1e-12 * ref.cost
        batched = got.emd_batched(a[None], b[None], (C * s)[None], return_plans=True)
        assert abs(batched.cost[0] / s - ref.cost) <= 1e-12 * ref.cost
        assert abs((batched.plans[0] * C).sum() - ref.cost) <= 1e-12 * ref.cost


@pytest.mark.parametrize("s", [1e-300, 1e-200, 1e200, 1e300])
def test_balanced_sinkhorn_is_equivariant_in_the_mass(rng, s):
    """Balanced entropic OT is homogeneous in the masses: masses of 1e300 stopped after one
    iteration 63 % off, of 1e-300 missed tol, and sinkhorn_newton returned a zero plan from
    1e-200 (each with a warning telling to raise max_iter)."""
    a, b, C = _problem(rng, 30, 20)
    eps = 0.05
    for solve in (got.sinkhorn, got.sinkhorn_newton):
        ref = solve(a, b, C, eps)
        res = solve(a * s, b * s, C, eps)
        assert res.converged
        assert abs(res.cost / s - ref.cost) <= 1e-12 * ref.cost
        assert np.allclose(res.plan / s, ref.plan, rtol=1e-9, atol=1e-12)
        plan = np.exp((res.f[:, None] + res.g[None, :] - C) / eps)
        assert np.allclose(plan / s, ref.plan, rtol=1e-9, atol=1e-12)
        assert res.marginal_error <= 1e-9 * s
    ref = got.sinkhorn_batched(np.stack([a, a]), np.stack([b, b]), np.stack([C, C]), eps)
    res = got.sinkhorn_batched(
        np.stack([a, a * s]), np.stack([b, b * s]), np.stack([C, C]), eps, return_plans=True
    )
    assert res.converged.all()
    # (the batch's absolute tol is scaled by its smallest mass: not the same iterations)
    assert np.allclose(res.cost / [1.0, s], ref.cost, rtol=1e-8, atol=0)
    assert np.allclose(res.plans[1] / s, res.plans[0], rtol=1e-6, atol=1e-9)


def test_emd_with_forbidden_pairs_and_costs_near_the_float64_limit():
    """The re-solve on ``C`` scaled by a power of two (session 28: potentials overflowed for
    costs near 1e307) was skipped when ``C`` also had +inf (forbidden) entries, so a feasible
    problem with costs of 1e307 was reported "infeasible" (``emd`` and ``emd_batched``). A
    truly infeasible one still is, without an overflow warning from the scaling back."""
    rng = np.random.default_rng(29)
    a, b = np.full(4, 0.25), np.full(5, 0.2)
    U = rng.uniform(0, 1, (4, 5))
    U[0, 0] = U[2, 3] = np.inf
    ref = got.emd(a, b, U)
    for s in (1e300, 1e307, 2.0**1020):
        res = got.emd(a, b, U * s)
        assert res.converged
        assert np.isclose(res.cost, ref.cost * s, rtol=1e-14)
        assert np.array_equal(res.plan, ref.plan)
        assert np.allclose(res.f / s, ref.f, rtol=1e-12, atol=1e-12)
        bat = got.emd_batched(np.stack([a, a]), np.stack([b, b]), np.stack([U * s, U]))
        assert bat.converged.all() and bat.cost[1] == ref.cost
        assert np.isclose(bat.cost[0], ref.cost * s, rtol=1e-14)
    bad = np.full((2, 2), np.inf)
    bad[:, 0] = 1e307  # column 1 is forbidden from every row
    with pytest.raises(ValueError, match="infeasible"):
        got.emd([0.5, 0.5], [0.5, 0.5], bad)
    with pytest.raises(ValueError, match=r"infeasible"):
        got.emd_batched(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), bad[None])
