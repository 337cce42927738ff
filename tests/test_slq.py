"""Stochastic Lanczos quadrature (trace_function, spectral_density) and the tuple protocol of
result types that stand in for SciPy/TensorLy tuples."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import geoml

N = 2000


def _xlogx(x):
    x = np.maximum(x, 0.0)
    return x * np.log(np.where(x > 0, x, 1.0))


_EXACT = {
    "log": np.log,
    "exp": np.exp,
    "xlogx": _xlogx,
    "sqrt": lambda x: np.sqrt(np.maximum(x, 0)),
    "inv": lambda x: 1.0 / x,
}


def _exact(lam, f, p=None):
    if callable(f):
        return float(f(lam).sum())
    if f == "power":
        return float((lam**p).sum())
    return float(_EXACT[f](lam).sum())


@pytest.fixture(scope="module")
def mats():
    """(matrix, exact eigenvalues) for a kNN-graph Laplacian + I, a normalised adjacency, the
    symmetric normalised Laplacian and a dense random SPD matrix, n = 2,000."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 5))
    W = geoml.knn_graph(X, 10, kernel="gaussian")
    L = (geoml.laplacian(W, kind="combinatorial") + sp.eye(N)).tocsr()
    Ls = geoml.laplacian(W, kind="symmetric")
    S = (sp.eye(N) - Ls).tocsr()
    G = rng.standard_normal((N, N)) / np.sqrt(N)
    spd = G @ G.T + np.eye(N)
    spd = (spd + spd.T) / 2
    out = {}
    for name, A in {"L+I": L, "Lsym": Ls, "spd": spd}.items():
        dense = A.toarray() if sp.issparse(A) else A
        out[name] = (A, np.linalg.eigvalsh(dense))
    out["S"] = (S, np.sort(1.0 - out["Lsym"][1]))
    return out


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    "name,f,p",
    [
        ("L+I", "log", None),
        ("L+I", "xlogx", None),
        ("L+I", "power", 2),
        ("L+I", "power", 0.5),
        ("L+I", "inv", None),
        ("L+I", lambda x: np.exp(-0.5 * x), None),
        ("spd", "log", None),
        ("spd", "exp", None),
        ("spd", "xlogx", None),
        ("spd", "power", 3),
        ("S", "exp", None),
        ("S", "power", 2),
    ],
)
def test_trace_function_matches_eigvalsh(mats, name, f, p):
    A, lam = mats[name]
    exact = _exact(lam, f, p)
    est = geoml.trace_function(A, f, p=p, random_state=1)
    assert est.converged
    assert abs(est.value - exact) <= 1e-2 * abs(exact), (est.value, exact)
    assert est.samples.shape == (est.n_probes,)
    assert est.bounds[0] >= lam[0] - 1e-8 * abs(lam).max()
    assert est.bounds[1] <= lam[-1] + 1e-8 * abs(lam).max()


def test_von_neumann_entropy(mats):
    """-tr(rho log rho) for the density matrix rho = Lsym / tr Lsym (PSD, one zero eigenvalue)."""
    A, lam = mats["Lsym"]
    t = lam.sum()
    exact = -_xlogx(lam / t).sum()
    est = geoml.trace_function(A / t, "xlogx", random_state=3)
    assert abs(-est.value - exact) <= 1e-2 * exact


@pytest.mark.parametrize(
    "name,f,probes", [("L+I", "log", "rademacher"), ("L+I", "log", "gaussian")]
)
def test_stderr_is_calibrated(mats, name, f, probes):
    """The reported standard error covers the exact value: at least 16 of 20 seeds within
    2.5 standard errors (a t-interval with 15 degrees of freedom: 97.5 %)."""
    A, lam = mats[name]
    exact = _exact(lam, f)
    z = []
    for seed in range(20):
        est = geoml.trace_function(A, f, probes=probes, n_probes=16, random_state=seed)
        z.append((est.value - exact) / est.stderr)
    inside = int(np.sum(np.abs(z) <= 2.5))
    assert inside >= 16, np.round(z, 2)
    assert np.std(z) > 0.3  # the errors are not negligible next to stderr (it is not inflated)


def test_gaussian_probes(mats):
    A, lam = mats["L+I"]
    est = geoml.trace_function(A, "log", probes="gaussian", random_state=0)
    assert abs(est.value - np.log(lam).sum()) <= 1e-2 * np.log(lam).sum()


# ----------------------------------------------------------------------------- closed forms


def test_identity_is_exact():
    n = 1000
    for f, val in [("log", 0.0), ("exp", np.e), ("sqrt", 1.0), ("inv", 1.0), ("xlogx", 0.0)]:
        est = geoml.trace_function(sp.eye(n, format="csr"), f, random_state=0)
        assert est.value == pytest.approx(n * val, abs=1e-9)
        assert est.stderr == 0.0 and est.n_steps == 1 and est.converged
    est = geoml.trace_function(np.eye(50), "power", p=7, random_state=0)
    assert est.value == pytest.approx(50.0, rel=1e-13)


def test_diagonal_rademacher_is_exact():
    d = np.linspace(0.1, 5.0, 700)
    exact = np.log(d).sum()
    for A in (sp.diags(d, format="csr"), np.diag(d), aslinearoperator(sp.diags(d))):
        est = geoml.trace_function(A, "log", random_state=2)
        assert abs(est.value - exact) <= 1e-5 * abs(exact)
        assert est.stderr <= 1e-9 * abs(exact)


def _cycle(n):
    i = np.arange(n)
    W = sp.csr_matrix((np.ones(n), (i, (i + 1) % n)), shape=(n, n))
    return W + W.T


def test_complete_graph_and_cycle():
    n = 600
    K = sp.csr_matrix(np.ones((n, n)) - np.eye(n))
    LK = geoml.laplacian(K, kind="combinatorial")  # eigenvalues 0 and n (n - 1 times)
    est = geoml.trace_function(LK + sp.eye(n), "log", random_state=0)
    exact = (n - 1) * np.log(n + 1.0)
    assert abs(est.value - exact) <= 1e-2 * exact
    assert abs(est.value - exact) <= 4 * est.stderr + 1e-9 * exact
    assert est.n_steps <= 3  # two distinct eigenvalues: the Krylov space ends after 2 steps
    LC = geoml.laplacian(_cycle(n), kind="combinatorial")
    lam = 2 - 2 * np.cos(2 * np.pi * np.arange(n) / n)
    for f in ("sqrt", "xlogx", lambda x: np.exp(-x)):
        est = geoml.trace_function(LC, f, random_state=1)
        exact = _exact(lam, f)
        assert abs(est.value - exact) <= 1e-2 * abs(exact), (f, est.value, exact)


def test_domain_errors(mats):
    A, _ = mats["Lsym"]
    with pytest.raises(ValueError, match="positive definite"):
        geoml.trace_function(A, "log", random_state=0)  # singular
    S, _ = mats["S"]
    with pytest.raises(ValueError, match="positive definite"):
        geoml.trace_function(S, "inv", random_state=0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        geoml.trace_function(S, "sqrt", random_state=0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        geoml.trace_function(S, "power", p=1.5, random_state=0)
    with pytest.raises(ValueError, match="positive definite"):
        geoml.trace_function(-sp.eye(30), "power", p=-1, random_state=0)
    with pytest.raises(ValueError, match="not finite"):
        geoml.trace_function(S, lambda x: np.log(x), random_state=0)
    # PSD with an exact zero eigenvalue is fine for xlogx / sqrt / integer powers
    geoml.trace_function(A, "sqrt", random_state=0)
    geoml.trace_function(S, "power", p=3, n_probes=4, random_state=0)


# ----------------------------------------------------------------------------- behaviour


def test_deterministic_over_threads_and_inputs(mats):
    L, _ = mats["L+I"]
    a = geoml.trace_function(L, "log", random_state=5, n_jobs=1)
    b = geoml.trace_function(L, "log", random_state=5, n_jobs=2)
    assert a.value == b.value and a.n_probes == b.n_probes
    np.testing.assert_array_equal(a.samples, b.samples)
    c = geoml.trace_function(aslinearoperator(L), "log", random_state=5)
    assert c.value == pytest.approx(a.value, rel=1e-10)
    d = geoml.trace_function(L.astype(np.float32), "log", random_state=5)
    assert d.value == pytest.approx(a.value, rel=1e-4)
    e = geoml.trace_function(L.toarray(), "log", random_state=5, n_jobs=1)
    assert e.value == pytest.approx(a.value, rel=1e-10)
    f = geoml.trace_function(L, "log", random_state=np.random.default_rng(5))
    assert f.value == pytest.approx(a.value, rel=1e-1)
    assert geoml.trace_function(L, "log", random_state=6).value != a.value


def test_fixed_probes_and_steps(mats):
    L, lam = mats["L+I"]
    est = geoml.trace_function(L, "log", n_probes=70, n_steps=12, random_state=0)
    assert est.n_probes == 70 and est.n_steps == 12
    assert abs(est.value - np.log(lam).sum()) <= 1e-2 * np.log(lam).sum()
    one = geoml.trace_function(L, "log", n_probes=1, random_state=0)
    assert one.n_probes == 1 and np.isnan(one.stderr)


def test_fixed_n_steps_too_few_is_flagged(mats):
    """A fixed ``n_steps`` too small for the quadrature: the truncation error is not in
    ``stderr``, so ``converged`` must say it (session 32 audit: ``tr L^-1`` of a kNN-graph
    Laplacian with ``n_steps=2`` was 18 % off with ``converged=True``, a 0.3 % stderr and no
    warning; ``spectral_density`` with 2 steps had a KS distance of 0.17, ``converged=True``).
    The rule is the adaptive one, made once after the last step."""
    L, lam = mats["L+I"]
    exact = float((1.0 / lam).sum())
    with pytest.warns(RuntimeWarning, match="had not settled after n_steps=3"):
        few = geoml.trace_function(L, "inv", n_steps=3, random_state=0)
    assert not few.converged and few.n_steps == 3
    assert abs(few.value - exact) > 1e-2 * exact  # (what the flag is for)
    assert abs(few.value - exact) > 3 * few.stderr
    enough = geoml.trace_function(L, "inv", n_steps=60, random_state=0)
    assert enough.converged and abs(enough.value - exact) <= 1e-2 * exact
    with pytest.warns(RuntimeWarning, match="had not settled after n_steps=1"):
        assert not geoml.trace_function(L, "log", n_steps=1, random_state=0).converged
    # a Krylov space that ends within n_steps is exact: converged (2 I: after one step)
    two = geoml.trace_function(2.0 * sp.eye(50, format="csr"), "inv", n_steps=1)
    assert two.converged and two.value == pytest.approx(25.0, rel=1e-14)
    A, _ = mats["S"]
    with pytest.warns(RuntimeWarning, match="had not settled after n_steps=2"):
        sd = geoml.spectral_density(A, n_steps=2, random_state=0)
    assert not sd.converged


def test_probe_cap_warns():
    rng = np.random.default_rng(0)
    d = rng.uniform(-1, 1, 200)
    d -= d.mean()  # tr A = 0: no relative accuracy is reachable
    Q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    A = (Q * d) @ Q.T
    with pytest.warns(RuntimeWarning, match="did not reach"):
        est = geoml.trace_function((A + A.T) / 2, "power", p=1, random_state=0)
    assert not est.converged and est.n_probes == 512


def test_huge_values_do_not_crash():
    """tr exp(A) with eigenvalues up to 400 / 700 (samples near 1e174 / 1e304): the
    standard error's squares overflowed and the probe count crashed with OverflowError; now
    an estimate against eigvalsh (flagged: the probe cap is hit). Past float64's range
    (eigenvalues above ~709) a clear ValueError instead of nan."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    for top in (400.0, 700.0):
        lam = np.linspace(0.0, top, 300)
        A = (Q * lam) @ Q.T
        with pytest.warns(RuntimeWarning, match="did not reach"):
            est = geoml.trace_function((A + A.T) / 2, "exp", random_state=0)
        exact = np.exp(lam).sum()
        assert np.isfinite(est.value) and np.isfinite(est.stderr)
        assert abs(est.value - exact) <= 0.1 * exact
        assert abs(est.value - exact) <= 4 * est.stderr
    for top in (708.0, 720.0):
        lam = np.linspace(0.0, top, 300)
        A = (Q * lam) @ Q.T
        with pytest.raises(ValueError, match="overflows float64"):
            geoml.trace_function((A + A.T) / 2, "exp", random_state=0)


def test_bad_input():
    A = sp.eye(20, format="csr")
    with pytest.raises(ValueError, match="square"):
        geoml.trace_function(sp.random(20, 10, format="csr"), "log")
    with pytest.raises(ValueError, match="square"):
        geoml.trace_function(np.ones((3, 4)), "log")
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.trace_function(sp.csr_matrix(np.triu(np.ones((5, 5)))), "exp")
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.trace_function(np.triu(np.ones((5, 5))), "exp")
    bad = np.eye(5)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        geoml.trace_function(bad, "exp")
    with pytest.raises(ValueError, match="NaN"):
        geoml.trace_function(sp.csr_matrix(bad), "exp")
    with pytest.raises(ValueError, match="not supported"):
        geoml.trace_function(A, "cosh")
    with pytest.raises(TypeError, match="callable"):
        geoml.trace_function(A, 3)
    with pytest.raises(ValueError, match="exponent"):
        geoml.trace_function(A, "power")
    with pytest.raises(ValueError, match="only used"):
        geoml.trace_function(A, "log", p=2)
    for rtol in (0, 1, -0.1, np.nan):
        with pytest.raises(ValueError, match="rtol"):
            geoml.trace_function(A, "log", rtol=rtol)
    with pytest.raises(TypeError, match="rtol"):
        geoml.trace_function(A, "log", rtol="0.1")
    with pytest.raises(ValueError, match="n_probes"):
        geoml.trace_function(A, "log", n_probes=0)
    with pytest.raises(TypeError, match="n_steps"):
        geoml.trace_function(A, "log", n_steps=2.5)
    with pytest.raises(ValueError, match="probes"):
        geoml.trace_function(A, "log", probes="sphere")
    with pytest.raises(TypeError, match="random_state"):
        geoml.trace_function(A, "log", random_state="x")
    with pytest.raises(ValueError, match="n_jobs"):
        geoml.trace_function(A, "log", n_jobs=0)
    with pytest.raises(TypeError, match="real"):
        geoml.trace_function(np.eye(3, dtype=complex), "log")
    lo = LinearOperator((6, 6), matvec=lambda x: np.ones(5), dtype=np.float64)  # wrong shape
    with pytest.raises(ValueError):
        geoml.trace_function(lo, "log")
    nan = LinearOperator((6, 6), matvec=lambda x: np.full(6, np.nan), dtype=np.float64)
    with pytest.raises(ValueError, match="NaN"):
        geoml.trace_function(nan, "log")
    for kw in ({"bins": 0}, {"bins": [1.0]}, {"bins": [2.0, 1.0]}, {"sigma": -1.0}, {"sigma": 0.0}):
        with pytest.raises(ValueError):
            geoml.spectral_density(A, **kw)
    with pytest.raises(TypeError):
        geoml.spectral_density(A, bins="auto")


# ----------------------------------------------------------------------------- density


def _ks(sd, lam):
    n = lam.size
    pts = np.concatenate([lam, sd.nodes])
    right = np.abs(np.searchsorted(lam, pts, "right") / n - sd.cdf(pts)).max()
    left = np.abs(np.searchsorted(lam, pts, "left") / n - sd.cdf(pts - 1e-12)).max()
    return max(right, left)


@pytest.mark.parametrize("scale", [1e-13, 1e-150])
def test_spectral_density_of_small_eigenvalues(mats, scale):
    """A spectrum of small magnitude keeps its own bins (an absolute width test put the
    whole spectrum of ``1e-13 L`` into one bin of [-0.5, 0.5]); the same histogram as for
    ``L``, scaled."""
    A, lam = mats["Lsym"]
    ref = geoml.spectral_density(A, bins=20, random_state=0)
    sd = geoml.spectral_density(A * scale, bins=20, random_state=0)
    np.testing.assert_allclose(sd.edges, ref.edges * scale, rtol=1e-6, atol=1e-9 * scale)
    exact, _ = np.histogram(lam * scale, bins=sd.edges)
    mass = np.cumsum(sd.density * np.diff(sd.edges))
    assert np.abs(mass - np.cumsum(exact) / lam.size).max() <= 0.03


def test_spectral_density_ks(mats):
    A, lam = mats["Lsym"]
    sd = geoml.spectral_density(A, random_state=0)
    assert sd.converged
    assert _ks(sd, lam) <= 0.02
    width = np.diff(sd.edges)
    assert sd.edges.shape == (101,) and sd.centers.shape == sd.density.shape == (100,)
    assert np.sum(sd.density * width) == pytest.approx(1.0, abs=1e-12)
    assert sd.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(sd.density >= 0)
    # histogram mass per bin matches the exact histogram to about the KS distance
    exact, _ = np.histogram(lam, bins=sd.edges)
    assert np.abs(np.cumsum(sd.density * width) - np.cumsum(exact) / lam.size).max() <= 0.02
    sm = geoml.spectral_density(A, sigma=0.02, random_state=0)
    assert np.sum(sm.density * np.diff(sm.edges)) == pytest.approx(1.0, abs=1e-3)
    assert sm.edges[0] < lam[0] - 0.05 and sm.edges[-1] > lam[-1] + 0.05


def test_spectral_density_atoms_and_edges():
    d = np.repeat([-1.0, 0.5, 2.0], [100, 300, 600])
    sd = geoml.spectral_density(
        sp.diags(d, format="csr"), bins=[-2.0, 0.0, 1.0, 3.0], random_state=0
    )
    np.testing.assert_allclose(sd.density * np.diff(sd.edges), [0.1, 0.3, 0.6], atol=1e-12)
    np.testing.assert_allclose(
        sd.cdf([-1.5, -0.99, 0.49, 0.51, 2.01]), [0, 0.1, 0.1, 0.4, 1.0], atol=1e-12
    )
    one = geoml.spectral_density(np.eye(30), bins=3, random_state=0)
    assert one.edges[0] < 1.0 < one.edges[-1] and one.density.sum() > 0


def test_spectral_density_deterministic(mats):
    A, _ = mats["S"]
    # (30 steps leave Ritz weights above the adaptive rule's: flagged, session 32)
    with pytest.warns(RuntimeWarning, match="had not settled after n_steps=30"):
        a = geoml.spectral_density(A, n_probes=8, n_steps=30, random_state=4, n_jobs=1)
    with pytest.warns(RuntimeWarning, match="had not settled after n_steps=30"):
        b = geoml.spectral_density(A, n_probes=8, n_steps=30, random_state=4, n_jobs=2)
    assert not a.converged and not b.converged
    np.testing.assert_array_equal(a.density, b.density)
    assert a.n_probes == 8 and a.n_steps == 30


@pytest.mark.parametrize("scale", [2.0**-700, 1e-200, 1e200, 1e300])
@pytest.mark.parametrize("kind", ["sparse", "dense", "operator"])
def test_slq_of_tiny_and_huge_matrices(scale, kind):
    # the squares in beta overflowed (1e200 A: beta = inf) or underflowed (1e-200 A: beta = 0),
    # a false breakdown after one step: tr A^-1 4 % off and a one-atom density, silently
    rng = np.random.default_rng(3)
    lam = np.linspace(1.0, 2.0, 300)
    Q = np.linalg.qr(rng.standard_normal((300, 300)))[0]
    base = {"sparse": sp.diags(lam, format="csr"), "dense": (Q * lam) @ Q.T}
    B = base["sparse" if kind == "operator" else kind]
    A = B * scale
    if kind == "dense":
        A = (A + A.T) / 2
    if kind == "operator":
        A = aslinearoperator(A)
    rtol = 1e-2 if kind == "dense" else 1e-3  # (Rademacher probes are exact for diagonals)
    for f in ("inv", "log", "power"):
        p = 1 if f == "power" else None
        est = geoml.trace_function(A, f, p=p, rtol=rtol, n_steps=40, random_state=0)
        exact = _exact(lam * scale, f, p)
        assert est.n_steps == 40 and est.converged
        assert abs(est.value - exact) <= rtol * abs(exact), (f, est.value, exact)
    # the unscaled problem's recurrences for a power-of-two scale (LAPACK's tridiagonal
    # eigensolver scales by other factors: equal to rounding, not bitwise)
    if scale == 2.0**-700 and kind == "dense":
        a = geoml.trace_function(A, "inv", n_probes=8, n_steps=20, random_state=1)
        b = geoml.trace_function(B, "inv", n_probes=8, n_steps=20, random_state=1)
        np.testing.assert_allclose(a.samples, np.ldexp(b.samples, 700), rtol=1e-12)
    sd = geoml.spectral_density(A, bins=4, random_state=0)
    mass = sd.density * np.diff(sd.edges)
    np.testing.assert_allclose(sd.edges[[0, -1]] / scale, [1.0, 2.0], rtol=1e-3)
    np.testing.assert_allclose(mass, 0.25, atol=0.02)


def test_complex_valued_f_is_refused():
    # the imaginary parts were dropped with NumPy's ComplexWarning only: a real, wrong trace
    A = sp.diags(np.linspace(-1.0, 1.0, 200), format="csr")
    with pytest.raises(ValueError, match="complex value"):
        geoml.trace_function(A, np.emath.sqrt, random_state=0)
    B = sp.diags(np.linspace(1.0, 2.0, 200), format="csr")  # complex dtype, real values: fine
    est = geoml.trace_function(B, lambda x: np.exp(x) + 0j, random_state=0)
    assert est.value == pytest.approx(np.exp(np.linspace(1.0, 2.0, 200)).sum(), rel=1e-10)


# ----------------------------------------------------------------------------- tuple results


def test_eigsh_result_is_a_pair():
    A = sp.diags(np.arange(1.0, 41.0), format="csr")
    res = geoml.eigsh(A, 3, which="LA", random_state=0)
    w, V = res
    assert len(res) == 2
    assert res[0] is res.eigenvalues and res[1] is res.eigenvectors and res[-1] is V
    assert res[-2] is w
    np.testing.assert_allclose(res[0], [38.0, 39.0, 40.0])
    assert [x.shape for x in res[:]] == [(3,), (40, 3)]
    with pytest.raises(IndexError):
        res[2]
    assert res.converged and res.residual_norms.shape == (3,)


def test_tucker_tensor_is_a_pair():
    rng = np.random.default_rng(0)
    tt = geoml.tucker(rng.standard_normal((6, 5, 4)), (2, 2, 2))
    core, factors = tt
    assert len(tt) == 2 and tt[0] is tt.core and tt[1] is tt.factors and tt[-1] is tt.factors
    assert core.shape == (2, 2, 2) and len(factors) == 3


def test_other_results_are_named_tuples():
    X = np.random.default_rng(0).standard_normal((30, 3))
    res = geoml.knn(X, 3)
    assert isinstance(res, tuple) and len(res) == 2 and res[0] is res.indices
    svd = geoml.randomized_svd(X, 2, random_state=0)
    assert isinstance(svd, tuple) and len(svd) == 3 and svd[1] is svd.s and svd[-1] is svd.Vt
    est = geoml.trace_function(np.eye(4), "exp", random_state=0)
    assert isinstance(est, tuple) and est[0] == est.value


@pytest.mark.slow
def test_quadrature_survives_stemr_failure():
    # LAPACK's stemr (eigh_tridiagonal) failed with LinAlgError "did not converge (LAPACK
    # info=22)" on a ghost-clustered tridiagonal matrix of 235 Lanczos steps (second probe
    # block): tr A^-1 of a positive definite kNN-graph Laplacian of condition 1e6 crashed at
    # default settings. The dense symmetric solver takes over; the result is honest (not
    # converged, with the warning).
    from sklearn.neighbors import kneighbors_graph

    n = 2000
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 4)) * [1.0, 1.0, 0.3, 0.1]
    G = kneighbors_graph(X, 8, mode="distance")
    G = G.maximum(G.T)
    G.data = np.exp(-(G.data**2) / np.median(G.data) ** 2)
    d = np.asarray(G.sum(axis=1)).ravel()
    L = sp.diags(d) - G
    A = (L / abs(L).sum(axis=1).max() + 1e-6 * sp.eye(n)).tocsr()
    with pytest.warns(RuntimeWarning, match="did not reach rtol"):
        est = geoml.trace_function(A, "inv", random_state=0)
    assert np.isfinite(est.value) and est.value > 0
    assert not est.converged
