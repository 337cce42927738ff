"""geoml.ot.sinkhorn_newton (Sinkhorn-Newton-Sparse) against POT's sinkhorn_log and geoml's
Sinkhorn."""

import warnings

import numpy as np
import pytest

import geoml
from geoml import ot as got
from geoml.ot._solvers import _sinkhorn

pot = pytest.importorskip("ot")


def _problem(rng, m, n, d=2, zeros=False):
    a = rng.random(m) + 0.05
    b = rng.random(n) + 0.05
    if zeros and m > 2 and n > 2:
        a[rng.choice(m, m // 3, replace=False)] = 0.0
        b[rng.choice(n, n // 3, replace=False)] = 0.0
    a /= a.sum()
    b /= b.sum()
    x, y = rng.normal(size=(m, d)), rng.normal(size=(n, d))
    C = pot.dist(x, y)
    return a, b, C / max(C.max(), 1e-12)


def _marg(P, a, b):
    return np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()


def _check(res, a, b, C, eps, tol=1e-9):
    assert res.converged
    assert res.marginal_error <= tol * a.sum() * 1.0001
    assert _marg(res.plan, a, b) <= tol * a.sum() * 1.01 + 1e-15
    assert (res.plan >= 0).all()
    assert res.cost == pytest.approx(float((res.plan * C).sum()), rel=1e-12, abs=1e-300)
    live = np.outer(a > 0, b > 0)
    np.testing.assert_allclose(
        res.plan[live],
        np.exp((res.f[:, None] + res.g[None, :] - C) / eps)[live],
        rtol=1e-9,
        atol=1e-180,
    )
    assert (res.plan[~live] == 0).all()
    # (kernel entries below 1e-200 are stored as 0: plan entries below ~1e-182)
    assert res.n_iter >= res.n_newton >= 0 and res.n_passes >= 1


def test_public_namespace():
    assert geoml.ot.sinkhorn_newton is got.sinkhorn_newton
    assert "sinkhorn_newton" in got.__all__ and "SinkhornNewtonResult" in got.__all__


@pytest.mark.parametrize("m,n", [(1, 1), (1, 6), (5, 1), (7, 9), (40, 30), (120, 90)])
@pytest.mark.parametrize("eps", [1e-1, 1e-2])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_pot_sinkhorn_log(m, n, eps, seed):
    rng = np.random.default_rng(seed)
    a, b, C = _problem(rng, m, n)
    res = got.sinkhorn_newton(a, b, C, eps)
    _check(res, a, b, C, eps)
    Pref = pot.sinkhorn(a, b, C, eps, method="sinkhorn_log", stopThr=1e-14, numItermax=200000)
    ref = float((Pref * C).sum())
    assert res.cost == pytest.approx(ref, rel=1e-9, abs=1e-14)
    np.testing.assert_allclose(res.plan, Pref, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_eps_matches_sinkhorn_float32_path(seed):
    # m n >= 65536: the Newton steps start on a float32 kernel and end on a float64 one
    rng = np.random.default_rng(seed)
    a, b, C = _problem(rng, 300, 240)
    eps = 1e-3
    res = got.sinkhorn_newton(a, b, C, eps)
    _check(res, a, b, C, eps)
    ref = got.sinkhorn(a, b, C, eps, tol=1e-12, max_iter=200000)
    assert ref.converged
    assert res.cost == pytest.approx(ref.cost, rel=1e-9)
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-10)
    # fewer than half the passes over the kernel of SOR Sinkhorn (issue 18's "today's
    # Sinkhorn") at the same tolerance, and fewer than the Anderson-mixed default
    sor = _sinkhorn(a, b, C, eps, -1.0, 200000, 1e-9, None, "auto", None, "t", anderson=False)
    assert sor.converged
    assert res.n_passes * 2 < sor.n_iter
    assert res.n_passes < got.sinkhorn(a, b, C, eps, tol=1e-9, max_iter=200000).n_iter


def test_known_sinkhorn_stall_converges():
    # plain Sinkhorn stalls here at a marginal error ~3e-7 (float64 rounding of its fixed
    # point iteration); the Newton steps reach 1e-9
    a = b = np.array([0.5, 0.5])
    C = np.array([[0.0, 1.49], [1.70, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plain = got.sinkhorn(a, b, C, 0.1)
    res = got.sinkhorn_newton(a, b, C, 0.1)
    _check(res, a, b, C, 0.1)
    # exact solution: P12 = P21 = y with (0.5 - y)^2 / y^2 = exp((C12 + C21) / eps)
    y = 0.5 / (1.0 + np.exp((1.49 + 1.70) / 0.2))
    np.testing.assert_allclose(res.plan, [[0.5 - y, y], [y, 0.5 - y]], rtol=1e-9, atol=1e-12)
    assert res.marginal_error <= plain.marginal_error


@pytest.mark.parametrize("sparsity", [0.0, 1e-6, 1e-2])
def test_sparsity_levels_converge(sparsity):
    rng = np.random.default_rng(3)
    a, b, C = _problem(rng, 80, 70)
    res = got.sinkhorn_newton(a, b, C, 3e-3, sparsity=sparsity)
    _check(res, a, b, C, 3e-3)
    ref = got.sinkhorn(a, b, C, 3e-3, tol=1e-12, max_iter=200000)
    assert res.cost == pytest.approx(ref.cost, rel=1e-9)


def test_degenerate_inputs():
    rng = np.random.default_rng(4)
    # zero-mass bins get zero rows / columns
    a, b, C = _problem(rng, 30, 25, zeros=True)
    res = got.sinkhorn_newton(a, b, C, 1e-2)
    _check(res, a, b, C, 1e-2)
    assert (res.plan[a == 0] == 0).all() and (res.plan[:, b == 0] == 0).all()
    ref = got.sinkhorn(a, b, C, 1e-2, tol=1e-12)
    assert res.cost == pytest.approx(ref.cost, rel=1e-9)
    # identical rows, ties, a constant cost, a single row / column
    C2 = np.tile(rng.random(8), (6, 1))
    a2, b2 = np.full(6, 1 / 6), np.full(8, 1 / 8)
    _check(got.sinkhorn_newton(a2, b2, C2, 1e-2), a2, b2, C2, 1e-2)
    C3 = np.ones((5, 4))
    r3 = got.sinkhorn_newton(None, None, C3, 1e-3)
    np.testing.assert_allclose(r3.plan, np.full((5, 4), 1 / 20), rtol=1e-9)
    r4 = got.sinkhorn_newton(None, [0.2, 0.8], np.array([[0.3, 0.1]]), 1e-2)
    np.testing.assert_allclose(r4.plan, [[0.2, 0.8]], rtol=1e-9)
    # unnormalised equal masses
    a5, b5 = 3 * a2, 3 * b2
    r5 = got.sinkhorn_newton(a5, b5, C2, 1e-2)
    assert r5.converged and _marg(r5.plan, a5, b5) <= 3e-9 * 1.01


def test_forbidden_pairs():
    rng = np.random.default_rng(5)
    a, b, C = _problem(rng, 12, 10)
    C[rng.random(C.shape) < 0.3] = np.inf
    np.fill_diagonal(C[:10, :10], 0.5)
    C[10:, :] = np.where(np.isfinite(C[10:, :]), C[10:, :], 0.7)
    res = got.sinkhorn_newton(a, b, C, 5e-2)
    assert res.converged and (res.plan[~np.isfinite(C)] == 0).all()
    Pref = pot.sinkhorn(a, b, C, 5e-2, method="sinkhorn_log", stopThr=1e-14, numItermax=100000)
    np.testing.assert_allclose(res.plan, Pref, atol=1e-10)
    bad = np.array([[0.0, np.inf], [0.0, np.inf]])
    with pytest.raises(ValueError, match="infeasible"):
        got.sinkhorn_newton([0.5, 0.5], [0.5, 0.5], bad, 0.1)


def test_threads_bit_identical():
    rng = np.random.default_rng(6)
    a, b, C = _problem(rng, 530, 500)  # above the threading threshold, float32 kernel
    r1 = got.sinkhorn_newton(a, b, C, 1e-2, n_jobs=1)
    r2 = got.sinkhorn_newton(a, b, C, 1e-2, n_jobs=2)
    assert r1.converged
    assert np.array_equal(r1.plan, r2.plan) and r1.cost == r2.cost
    assert np.array_equal(r1.f, r2.f) and r1.n_passes == r2.n_passes


@pytest.mark.parametrize("seed", [1, 3])
def test_shifted_uneven_masses_small_eps(seed):
    # clouds shifted apart with masses spread over 1e-6 .. 1e-2 at eps = 1e-3 of the cost
    # range (float32 kernel, float32 CSR Hessian): a start that left rows of tiny mass far from
    # their marginals made the Newton phase take 3x the steps (or overflow); same plan for
    # n_jobs 1 and 2, cost equal to the annealed Sinkhorn's
    rng = np.random.default_rng(seed)
    m, n = 257, 300
    x, y = rng.random((m, 2)), rng.random((n, 2)) + 0.5
    C = ((x[:, None] - y[None]) ** 2).sum(-1)
    C /= C.max()
    a = rng.random(m) ** 3 + 1e-6
    a /= a.sum()
    b = rng.random(n) + 0.01
    b /= b.sum()
    eps = 1e-3
    r1 = got.sinkhorn_newton(a, b, C, eps, n_jobs=1)
    r2 = got.sinkhorn_newton(a, b, C, eps, n_jobs=2)
    assert r1.converged and r1.n_newton <= 40
    assert _marg(r1.plan, a, b) <= 1e-9
    assert np.array_equal(r1.plan, r2.plan) and r1.cost == r2.cost
    ref = got.sinkhorn(a, b, C, eps, tol=1e-11, max_iter=100000)
    assert ref.converged
    assert abs(r1.cost - ref.cost) <= 1e-8 * ref.cost
    np.testing.assert_allclose(r1.plan, ref.plan, atol=1e-10)


def test_not_converged_warns():
    rng = np.random.default_rng(7)
    a, b, C = _problem(rng, 60, 50)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        res = got.sinkhorn_newton(a, b, C, 1e-3, max_iter=1, n_warmup=1)
    assert not res.converged and res.n_newton == 1
    assert res.marginal_error > 1e-9


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(eps=0.0), ValueError, "eps"),
        (dict(eps="x"), TypeError, "eps"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(n_warmup=0), ValueError, "n_warmup"),
        (dict(n_warmup=2.5), TypeError, "n_warmup"),
        (dict(sparsity=1.0), ValueError, "sparsity"),
        (dict(sparsity=-0.1), ValueError, "sparsity"),
        (dict(sparsity="x"), TypeError, "sparsity"),
        (dict(a=[0.5, 0.6, -0.1]), ValueError, "a"),
        (dict(b=[0.5, 0.6]), ValueError, "same total mass"),
        (dict(C=np.ones((3, 3))), ValueError, "entries but the cost matrix needs"),
        (dict(C=np.array([[0, np.nan], [1, 0], [1, 1]])), ValueError, "NaN"),
        (dict(C=np.array([[0, -np.inf], [1, 0], [1, 1]])), ValueError, "-inf"),
    ],
)
def test_bad_input(kw, exc, match):
    args = dict(a=[0.3, 0.3, 0.4], b=[0.5, 0.5], C=np.ones((3, 2)), eps=0.1)
    args.update(kw)
    call = {k: args.pop(k) for k in ("a", "b", "C", "eps")}
    with pytest.raises(exc, match=match):
        got.sinkhorn_newton(call["a"], call["b"], call["C"], call["eps"], **args)


def test_plain_sinkhorn_bit_identical_across_threads():
    # >= 2^20 kernel entries: the fused row sweep runs over row groups fixed by the shape (not
    # per thread), so 1 and 2 threads give the same bits (plan, potentials, sums, iterations)
    rng = np.random.default_rng(8)
    a, b, C = _problem(rng, 1100, 1000)
    r1 = got.sinkhorn(a, b, C, 0.05, n_jobs=1)
    r2 = got.sinkhorn(a, b, C, 0.05, n_jobs=2)
    assert r1.converged
    assert np.array_equal(r1.plan, r2.plan) and np.array_equal(r1.f, r2.f)
    assert r1.cost == r2.cost and r1.marginal_error == r2.marginal_error
    assert r1.n_iter == r2.n_iter


def test_stalled_newton_falls_back_to_sinkhorn_steps():
    # integer costs, eps = 0.05: after the warm-up, rows 1 and 2 hold their mass on the one
    # zero-cost column 2, and every Newton direction (even unsparsified) failed the line
    # search; the solver stopped after 2 steps with marginal error 0.356 (found by the audit)
    C = np.array(
        [
            [4, 2, 8, 1, 3, 6],
            [9, 8, 0, 8, 7, 4],
            [5, 4, 0, 3, 9, 5],
            [0, 5, 6, 8, 5, 2],
            [9, 2, 7, 6, 9, 7],
            [3, 0, 6, 0, 0, 0],
        ],
        dtype=float,
    )
    a = np.full(6, 1 / 6)
    eps = 0.05
    res = got.sinkhorn_newton(a, a, C, eps)
    # converged, and the plan is exp((f_i + g_j - C_ij) / eps) with the right marginals: the
    # unique entropic plan (POT's sinkhorn_log does not reach 1e-9 here in 10^6 iterations)
    _check(res, a, a, C, eps)
    assert res.n_newton < 100
