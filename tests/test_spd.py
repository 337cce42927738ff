"""geoml.spd: the batched symmetric eigensolver and the SPD geometry built on it, against
NumPy/LAPACK, SciPy per matrix, pyRiemann (0.12) and POT where installed, closed forms, and
bad input."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import scipy.linalg as sla

import geoml
from geoml import spd


# ----------------------------------------------------------------------------- data
def rand_spd(rng, shape, n, cond=None, dtype=np.float64):
    """SPD matrices of shape shape + (n, n); eigenvalues log-uniform over [1, cond] (default
    a random well-conditioned spectrum)."""
    B = int(np.prod(shape)) if shape else 1
    Q, _ = np.linalg.qr(rng.standard_normal((B, n, n)))
    if cond is None:
        w = rng.uniform(0.5, 3.0, (B, n))
    else:
        w = np.exp(rng.uniform(0, np.log(cond), (B, n)))
        w[:, 0], w[:, -1] = 1.0, cond
    A = (Q * w[:, None, :]) @ Q.swapaxes(1, 2)
    A = 0.5 * (A + A.swapaxes(1, 2))
    return A.reshape(tuple(shape) + (n, n)).astype(dtype)


def rand_sym(rng, B, n):
    A = rng.standard_normal((B, n, n))
    return 0.5 * (A + A.swapaxes(1, 2))


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300)


# ----------------------------------------------------------------------------- eigensolver
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 22, 33, 64, 70])
@pytest.mark.parametrize("seed", [0, 1])
def test_eigh_random_symmetric(n, seed):
    rng = np.random.default_rng(seed)
    A = rand_sym(rng, 6, n) * 10.0 ** rng.uniform(-3, 3)
    w, V = spd.eigh(A)
    w_np = np.linalg.eigvalsh(A)
    scale = np.abs(A).max(axis=(1, 2))[:, None]
    assert np.all(np.abs(w - w_np) <= 50 * n * 2.2e-16 * scale)
    assert np.all(np.diff(w, axis=1) >= 0)
    R = (V * w[:, None, :]) @ V.swapaxes(1, 2)
    assert np.abs(R - A).max() <= 50 * n * 2.2e-16 * scale.max()
    eye = np.eye(n)
    assert np.abs(V.swapaxes(1, 2) @ V - eye).max() <= 50 * n * 2.2e-16
    # distinct eigenvalues: the vectors are numpy's up to sign
    _, V_np = np.linalg.eigh(A)
    gap = np.min(np.diff(w_np, axis=1), axis=1, initial=np.inf) / scale[:, 0]
    for b in np.flatnonzero(gap > 1e-6):
        C = np.abs(V[b].T @ V_np[b])
        assert np.abs(C - eye).max() < 1e-8


def test_eigh_ill_conditioned_repeated_diagonal():
    rng = np.random.default_rng(3)
    n = 12
    # ill-conditioned SPD (cond 1e12)
    A = rand_spd(rng, (5,), n, cond=1e12)
    w, V = spd.eigh(A)
    assert np.abs(w - np.linalg.eigvalsh(A)).max() <= 200 * n * 2.2e-16 * 1e12
    assert np.abs((V * w[:, None, :]) @ V.swapaxes(1, 2) - A).max() <= 1e-12 * 1e12
    # repeated eigenvalues: reconstruction and orthogonality (vectors are not unique)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.array([1.0] * 4 + [2.0] * 5 + [7.0] * 3)
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    w, V = spd.eigh(A)
    assert np.allclose(w, np.sort(lam), atol=1e-13 * 7)
    assert np.abs(V.T @ V - np.eye(n)).max() < 1e-13
    assert np.abs(V @ np.diag(w) @ V.T - A).max() < 1e-13 * 7
    # diagonal: exact
    d = rng.uniform(-5, 5, n)
    w, V = spd.eigh(np.diag(d))
    assert np.array_equal(w, np.sort(d))
    assert np.array_equal(np.abs(V), np.eye(n)[:, np.argsort(d)])
    # zero matrix and identity
    w, V = spd.eigh(np.zeros((3, 3)))
    assert np.array_equal(w, np.zeros(3)) and np.array_equal(V, np.eye(3))
    w, V = spd.eigh(np.eye(4))
    assert np.array_equal(w, np.ones(4))


def test_eigh_tiny_decoupled_block():
    # a block 1e-160 times the rest: the QL rotations of that block see p^2 + e^2 below the
    # normal range (the hypot path of the rotation, taken where the fast r = sqrt(p^2 + e^2)
    # and 1 / r underflow); the results must stay finite, orthonormal and within LAPACK's and
    # SciPy's tolerances
    rng = np.random.default_rng(11)
    # a block 1e-200 or less: the QL shift's pp = (d[l+1] - d[l]) / (2 e[l]) beyond 1e150,
    # pp^2 + 1 would overflow (sqrt(pp^2 + 1) taken as |pp| there; was refused as overflow)
    cases = ((8, 3, 1e-160), (22, 10, 1e-170), (13, 6, 1e-155))
    cases += ((8, 3, 1e-200), (13, 6, 1e-230), (22, 10, 1e-250), (22, 11, 1e-270))
    for n, k, s in cases:
        A = np.zeros((8, n, n))
        for b in range(8):
            A[b, : n - k, : n - k] = rand_sym(rng, 1, n - k)[0]
            A[b, n - k :, n - k :] = s * rand_sym(rng, 1, k)[0]
            perm = rng.permutation(n)
            A[b] = A[b][np.ix_(perm, perm)]
        w, V = spd.eigh(A)
        assert np.isfinite(w).all() and np.isfinite(V).all()
        w_np = np.linalg.eigvalsh(A)
        scale = np.abs(A).max(axis=(1, 2))[:, None]
        assert np.all(np.abs(w - w_np) <= 50 * n * 2.2e-16 * scale)
        assert np.abs(V.swapaxes(1, 2) @ V - np.eye(n)).max() <= 50 * n * 2.2e-16
        R = (V * w[:, None, :]) @ V.swapaxes(1, 2)
        assert np.abs(R - A).max() <= 50 * n * 2.2e-16 * scale.max()
        # expm (no definiteness required) through the same rotations, against SciPy
        E = spd.expm(A)
        for b in range(8):
            assert np.abs(E[b] - sla.expm(A[b])).max() <= 1e-12 * np.abs(sla.expm(A[b])).max()


# ----------------------------------------------------------------------------- extreme scales
# Every ISA this CPU runs (the kernels are compiled per ISA, picked at run time), one and two
# threads: matrices up to the largest double and blocks down to the subnormal range, against
# SciPy / NumPy per matrix on exactly scaled copies (a power of two: the same matrix).
_ISAS = [
    i
    for i in ("generic", "avx2", "avx512")
    if ["generic", "avx2", "avx512"].index(i)
    <= ["generic", "avx2", "avx512"].index(geoml._core.simd_isa())
]


@pytest.fixture(params=_ISAS)
def any_isa(request):
    geoml._core.set_simd_isa(request.param)
    yield request.param
    geoml._core.set_simd_isa("auto")


def _huge_batch(rng):
    """SPD matrices whose largest entry is 1e300 .. the largest double (22 x 22: a batch that
    runs on two threads; 3 x 3; 1 x 1 at 2^1023, 1.7e308 and the largest double)."""
    top = np.finfo(np.float64).max
    A = rand_spd(rng, (40,), 22, cond=100.0)
    s = np.exp(rng.uniform(np.log(1e300), np.log(top), 40))
    s[:3] = top, 2.0**1023, 1.7e308
    A22 = A / np.abs(A).max(axis=(1, 2), keepdims=True) * s[:, None, None]
    A3 = rand_spd(rng, (5,), 3) * 1e307
    A1 = np.array([top, 2.0**1023, 1.7e308, 1e308])[:, None, None]
    return [A22, A3, A1]


_K = 1000  # A 2^-K: the same matrix at scale ~1e7, for SciPy


@functools.lru_cache(maxsize=1)
def _huge_refs():
    """The batches of _huge_batch and their references (the same for every ISA and n_jobs)."""
    out = []
    for A in _huge_batch(np.random.default_rng(23)):
        n = A.shape[-1]
        As = A * 2.0**-_K
        Bs = As[::-1]
        with np.errstate(over="ignore"):
            w = np.linalg.eigvalsh(As) * 2.0**_K
        S = np.stack([sla.sqrtm(a).real for a in As])
        L = np.stack([sla.logm(a).real for a in As])
        ref = {
            "w": w,
            "sqrtm": S * 2.0 ** (_K / 2),
            "invsqrtm": np.linalg.inv(S) * 2.0 ** (-_K / 2),
            "logm": L + _K * np.log(2.0) * np.eye(n),
            "powm": np.stack([sla.fractional_matrix_power(a, 0.25).real for a in As])
            * 2.0 ** (_K / 4),
            # affine-invariant and log-Euclidean distances are scale-free (A, B scaled alike)
            "riemann": np.array(
                [np.sqrt(np.sum(np.log(sla.eigvalsh(a, b)) ** 2)) for a, b in zip(As, Bs)]
            ),
            "logeuclid": np.linalg.norm(L - L[::-1], axis=(1, 2)),
        }
        out.append((A, ref))
    return out


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_extreme_scale_huge(any_isa, n_jobs):
    k = _K
    ln2 = np.log(2.0)
    for A, ref in _huge_refs():
        fits = np.isfinite(ref["w"]).all(axis=1)  # an eigenvalue beyond the largest double
        assert fits.any()
        w = spd.eigh(A[fits], n_jobs=n_jobs).eigenvalues
        assert rel(w, ref["w"][fits]) < 1e-10
        for b in np.flatnonzero(~fits):
            with pytest.raises(ValueError, match="overflows"):
                spd.eigh(A[b], n_jobs=n_jobs)
        got = {
            "sqrtm": spd.sqrtm(A, n_jobs=n_jobs),
            "invsqrtm": spd.invsqrtm(A, n_jobs=n_jobs),
            "logm": spd.logm(A, n_jobs=n_jobs),
            "powm": spd.powm(A, 0.25, n_jobs=n_jobs),
        }
        for name, G in got.items():
            for b in range(len(A)):
                assert rel(G[b], ref[name][b]) < 1e-10, (name, b)
        for metric in ("riemann", "logeuclid"):
            d = spd.distance(A, A[::-1], metric=metric, n_jobs=n_jobs)
            assert np.all(np.abs(d - ref[metric]) <= 1e-10 * np.maximum(ref[metric], 1.0))
    # an eigenvalue beyond the largest double: eigh overflows (a clear error), the functions
    # whose result is finite are computed, those whose result is not overflow
    A = np.array([[1.7e308, 1e308], [1e308, 1.7e308]])
    with pytest.raises(ValueError, match="overflows"):
        spd.eigh(A, n_jobs=n_jobs)
    As = A * 2.0**-k
    assert rel(spd.sqrtm(A, n_jobs=n_jobs), sla.sqrtm(As).real * 2.0 ** (k / 2)) < 1e-10
    assert rel(spd.logm(A, n_jobs=n_jobs), sla.logm(As).real + k * ln2 * np.eye(2)) < 1e-10
    ref = np.linalg.inv(sla.sqrtm(As).real) * 2.0 ** (-k / 2)
    assert rel(spd.invsqrtm(A, n_jobs=n_jobs), ref) < 1e-10
    for f in (lambda X: spd.expm(X), lambda X: spd.powm(X, 2.0), lambda X: spd.powm(X, 1.0)):
        with pytest.raises(ValueError, match="overflows"):
            f(A)
    # a symmetric matrix at the top of the range that is not positive definite is still refused
    with pytest.raises(ValueError, match="not positive definite"):
        spd.sqrtm(np.array([[1.7e308, 1.7e308], [1.7e308, 1.7e308]]), n_jobs=n_jobs)


@pytest.mark.parametrize("method", ["anderson", "gradient"])
def test_extreme_scale_mean_riemann(method):
    # commuting sets Q diag(x_i) Q^T: the Karcher mean is Q diag(geometric mean) Q^T; at the
    # top and the bottom of the range (the iteration overflowed at the top: a NaN mean or no
    # convergence), and the same iterates as the set scaled by a power of two
    rng = np.random.default_rng(29)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    for lo, hi in ((1e304, 1.7e308), (1e-306, 1e-302)):
        D = np.exp(rng.uniform(np.log(lo), np.log(hi), (6, 5)))
        X = (Q * D[:, None, :]) @ Q.T
        X = 0.5 * X + 0.5 * X.swapaxes(1, 2)
        w = rng.uniform(0.5, 2.0, 6)
        res = spd.mean_riemann(X, weights=w, method=method, tol=1e-12)
        assert res.converged
        g = np.exp((w / w.sum()) @ np.log(D))
        assert rel(res.mean, (Q * g) @ Q.T) < 1e-10
        k = 1000 if hi > 1 else -1000
        ref = spd.mean_riemann(X * 2.0**-k, weights=w, method=method, tol=1e-12)
        assert np.array_equal(res.mean, ref.mean * 2.0**k)


def _tiny_block_batch(rng, n, k, s, spd_blocks):
    A = np.zeros((8, n, n))
    for b in range(8):
        if spd_blocks:
            A[b, : n - k, : n - k] = rand_spd(rng, (), n - k)
            A[b, n - k :, n - k :] = s * rand_spd(rng, (), k)
        else:
            A[b, : n - k, : n - k] = rand_sym(rng, 1, n - k)[0]
            A[b, n - k :, n - k :] = s * rand_sym(rng, 1, k)[0]
        perm = rng.permutation(n)
        A[b] = A[b][np.ix_(perm, perm)]
    return A


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_extreme_scale_tiny(any_isa, n_jobs):
    # blocks 1e-295 .. 1e-306 times the rest (tred2's 1 / scale and the QL's 1 / r of a
    # subnormal overflowed: NaN eigenvalues, refused as "overflows" on one ISA or another)
    for seed, n, k, s, spd_blocks in [
        (1, 13, 6, 1e-295, False),
        (5, 8, 4, 1e-295, True),
        (0, 8, 3, 1e-300, False),
        (3, 8, 4, 1e-306, True),
        (0, 22, 10, 1e-306, False),
        (2, 22, 11, 1e-307, False),
    ]:
        A = _tiny_block_batch(np.random.default_rng(seed), n, k, s, spd_blocks)
        w, V = spd.eigh(A, n_jobs=n_jobs)
        scale = np.abs(A).max(axis=(1, 2))[:, None]
        assert np.all(np.abs(w - np.linalg.eigvalsh(A)) <= 50 * n * 2.2e-16 * scale)
        assert np.abs(V.swapaxes(1, 2) @ V - np.eye(n)).max() <= 50 * n * 2.2e-16
        E = spd.expm(A, n_jobs=n_jobs)
        for b in range(8):
            E_ref = sla.expm(A[b])
            assert np.abs(E[b] - E_ref).max() <= 1e-12 * np.abs(E_ref).max()
        if spd_blocks:  # condition ~1/s: beyond n eps, refused as documented
            with pytest.raises(ValueError, match="not positive definite"):
                spd.sqrtm(A, n_jobs=n_jobs)
    # whole matrices near the bottom of the range (normal and subnormal entries), against
    # SciPy on the same matrices scaled by 2^1000 (exact)
    rng = np.random.default_rng(7)
    for s in (1e-300, 1e-305, 1e-310):
        A = rand_spd(rng, (5,), 4, cond=10.0) * s
        w = spd.eigh(A, n_jobs=n_jobs).eigenvalues
        S = spd.sqrtm(A, n_jobs=n_jobs)
        L = spd.logm(A, n_jobs=n_jobs)
        for b in range(5):
            As = A[b] * 2.0**1000
            assert rel(w[b], np.linalg.eigvalsh(As) * 2.0**-1000) < 1e-10
            assert rel(S[b], sla.sqrtm(As).real * 2.0**-500) < 1e-10
            assert rel(L[b], sla.logm(As).real - 1000 * np.log(2.0) * np.eye(4)) < 1e-10


def test_eigh_float32_and_batch_shape():
    rng = np.random.default_rng(4)
    A = rand_sym(rng, 6, 7).reshape(2, 3, 7, 7)
    w, V = spd.eigh(A.astype(np.float32))
    assert w.dtype == np.float32 and V.dtype == np.float32
    assert w.shape == (2, 3, 7) and V.shape == (2, 3, 7, 7)
    assert np.abs(w - np.linalg.eigvalsh(A)).max() < 1e-5 * np.abs(A).max()


# ----------------------------------------------------------------------------- matrix functions
def _ref_funcs():
    return {
        "sqrtm": lambda a: sla.sqrtm(a).real,
        "invsqrtm": lambda a: np.linalg.inv(sla.sqrtm(a).real),
        "logm": lambda a: sla.logm(a).real,
        "expm": sla.expm,
    }


@pytest.mark.parametrize("name", ["sqrtm", "invsqrtm", "logm", "expm"])
@pytest.mark.parametrize("n", [2, 5, 22, 66])
def test_matrix_functions_vs_scipy(name, n):
    rng = np.random.default_rng(n)
    A = rand_spd(rng, (2, 2), n)
    F = getattr(spd, name)(A)
    ref = _ref_funcs()[name]
    assert F.shape == A.shape and F.dtype == A.dtype
    for idx in np.ndindex(2, 2):
        assert rel(F[idx], ref(A[idx])) < 1e-10


@pytest.mark.parametrize("p", [0.5, -0.5, 2.0, -1.0, 0.3])
def test_powm_vs_scipy(p):
    rng = np.random.default_rng(5)
    A = rand_spd(rng, (4,), 6)
    F = spd.powm(A, p)
    for b in range(4):
        assert rel(F[b], sla.fractional_matrix_power(A[b], p).real) < 1e-10
    assert np.allclose(spd.powm(A, 0.0), np.eye(6))


def test_matrix_functions_closed_forms():
    d = np.array([0.5, 2.0, 3.0])
    D = np.diag(d)
    assert np.allclose(spd.sqrtm(D), np.diag(np.sqrt(d)), rtol=1e-15, atol=0)
    assert np.allclose(spd.logm(D), np.diag(np.log(d)), rtol=1e-15, atol=1e-16)
    assert np.allclose(spd.expm(np.diag(np.log(d))), D, rtol=1e-14, atol=0)
    assert np.array_equal(spd.logm(np.eye(3)), np.zeros((3, 3)))
    rng = np.random.default_rng(6)
    A = rand_spd(rng, (5,), 8)
    assert np.allclose(spd.expm(spd.logm(A)), A, rtol=0, atol=1e-12)
    S = spd.sqrtm(A)
    assert np.allclose(S @ S, A, atol=1e-12)
    assert np.allclose(spd.invsqrtm(A) @ S, np.eye(8), atol=1e-12)
    # expm of a symmetric (indefinite) matrix is fine
    H = rand_sym(rng, 3, 5)
    assert rel(spd.expm(H)[1], sla.expm(H[1])) < 1e-10


def test_matrix_functions_float32():
    rng = np.random.default_rng(7)
    A = rand_spd(rng, (6,), 10)
    F32 = spd.logm(A.astype(np.float32))
    assert F32.dtype == np.float32
    assert np.abs(F32 - spd.logm(A)).max() < 1e-5


def test_ill_conditioned_and_singular():
    rng = np.random.default_rng(8)
    A = rand_spd(rng, (3,), 6, cond=1e10)
    L = spd.logm(A)
    for b in range(3):  # logm's error is relative to ||log A||, bounded by cond * eps
        assert rel(L[b], sla.logm(A[b]).real) < 1e-10 * 1e3
    # singular (rank-deficient covariance) refused with a clear message
    X = rng.standard_normal((4, 2))
    C = X @ X.T
    with pytest.raises(ValueError, match=r"not positive definite.*regularize"):
        spd.sqrtm(C)
    with pytest.raises(ValueError, match="not positive definite"):
        spd.logm(np.zeros((3, 3)))
    # the regularised matrix is accepted
    spd.logm(C + 1e-6 * np.eye(4))


@pytest.mark.parametrize("fn", ["sqrtm", "invsqrtm", "logm", "powm"])
def test_bad_input(fn):
    f = getattr(spd, fn)
    call = (lambda X: f(X, 0.5)) if fn == "powm" else f
    good = np.stack([np.eye(3), 2 * np.eye(3)])
    indef = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match=r"X\[1\] is not positive definite"):
        call(np.stack([np.eye(3), indef]))
    nonsym = np.eye(3)
    nonsym[0, 1] = 0.5
    with pytest.raises(ValueError, match=r"X\[0\] is not symmetric"):
        call(np.stack([nonsym, np.eye(3)]))
    bad = good.copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        call(bad)
    bad[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        call(bad)
    with pytest.raises(ValueError, match="square"):
        call(np.ones((3, 2)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        call(np.ones(3))
    with pytest.raises(TypeError, match="real numbers"):
        call(good.astype(complex))
    # LAPACK path (n > 64) refuses the same way
    with pytest.raises(ValueError, match="not positive definite"):
        call(-np.eye(70))
    nonsym = np.eye(70)
    nonsym[0, 1] = 0.5
    with pytest.raises(ValueError, match="not symmetric"):
        call(nonsym)


def test_expm_overflow_and_powm_p():
    with pytest.raises(ValueError, match="overflows"):
        spd.expm(np.diag([1000.0, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        spd.powm(np.eye(2), np.nan)
    with pytest.raises(TypeError):
        spd.powm(np.eye(2), "a")


def test_empty_batch():
    out = spd.sqrtm(np.zeros((0, 3, 3)))
    assert out.shape == (0, 3, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_n_jobs_identical(dtype):
    rng = np.random.default_rng(9)
    A = rand_spd(rng, (101,), 9, dtype=dtype)
    for name in ("sqrtm", "logm"):
        a = getattr(spd, name)(A, n_jobs=1)
        b = getattr(spd, name)(A, n_jobs=2)
        assert np.array_equal(a, b)
    m1 = spd.mean_riemann(A, n_jobs=1).mean
    m2 = spd.mean_riemann(A, n_jobs=2).mean
    assert np.array_equal(m1, m2)
    d1 = spd.pairwise_distance(A[:20], A[20:30], n_jobs=1)
    d2 = spd.pairwise_distance(A[:20], A[20:30], n_jobs=2)
    assert np.array_equal(d1, d2)
    w1 = spd.mean_wasserstein(A, n_jobs=1).mean
    w2 = spd.mean_wasserstein(A, n_jobs=2).mean
    assert np.array_equal(w1, w2)


# ----------------------------------------------------------------------------- distances
def _pyr():
    return pytest.importorskip("pyriemann")


def test_distance_vs_pyriemann():
    _pyr()
    from pyriemann.geometry.distance import distance as pd
    from pyriemann.geometry.distance import distance_poweuclid

    rng = np.random.default_rng(10)
    A = rand_spd(rng, (7,), 6)
    B = rand_spd(rng, (7,), 6)
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        d = spd.distance(A, B, metric)
        ref = np.array([pd(A[i], B[i], metric=metric) for i in range(7)])
        assert np.allclose(d, ref, rtol=1e-8, atol=0), metric
        d2 = spd.distance(A, B[0], metric, squared=True)  # shared reference
        ref2 = np.array([pd(A[i], B[0], metric=metric, squared=True) for i in range(7)])
        assert np.allclose(d2, ref2, rtol=1e-8, atol=0), metric
    for p in (0.5, -1.0, 2.0, 0.0):
        d = spd.distance(A, B, "euclid", p=p)
        ref = np.array([distance_poweuclid(A[i], B[i], p) for i in range(7)])
        assert np.allclose(d, ref, rtol=1e-8, atol=0), p


def test_pairwise_distance_vs_pyriemann():
    _pyr()
    from pyriemann.geometry.distance import pairwise_distance as ppd

    rng = np.random.default_rng(11)
    X = rand_spd(rng, (6,), 5)
    Y = rand_spd(rng, (4,), 5)
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        D = spd.pairwise_distance(X, Y, metric)
        assert D.shape == (6, 4)
        assert np.allclose(D, ppd(X, Y, metric=metric), rtol=1e-8, atol=1e-12), metric
        D = spd.pairwise_distance(X, metric=metric)
        assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
        assert np.allclose(D, ppd(X, None, metric=metric), rtol=1e-8, atol=1e-12), metric
        assert np.allclose(D[1, 2], spd.distance(X[1], X[2], metric), rtol=1e-10)


def test_distance_vs_pot_and_closed_forms():
    rng = np.random.default_rng(12)
    A = rand_spd(rng, (5,), 4)
    B = rand_spd(rng, (5,), 4)
    ot = pytest.importorskip("ot")
    from ot.gaussian import bures_wasserstein_distance

    z = np.zeros((5, 4))
    ref = bures_wasserstein_distance(z, z, A, B, paired=True)
    assert np.allclose(spd.distance(A, B, "wasserstein"), ref, rtol=1e-8)
    del ot
    # diagonal (commuting) matrices: closed forms
    a, b = rng.uniform(0.5, 3, 4), rng.uniform(0.5, 3, 4)
    Da, Db = np.diag(a), np.diag(b)
    lr = np.linalg.norm(np.log(a) - np.log(b))
    assert np.isclose(spd.distance(Da, Db), lr, rtol=1e-13)
    assert np.isclose(spd.distance(Da, Db, "logeuclid"), lr, rtol=1e-13)
    bw = np.linalg.norm(np.sqrt(a) - np.sqrt(b))
    assert np.isclose(spd.distance(Da, Db, "wasserstein"), bw, rtol=1e-10)
    # power deformation: d(A^p, B^p) / |p|; for commuting matrices riemann is invariant
    for p in (0.5, -2.0, 1.5):
        assert np.isclose(spd.distance(Da, Db, p=p), lr, rtol=1e-12)
        bwp = np.linalg.norm(a ** (p / 2) - b ** (p / 2)) / abs(p)
        assert np.isclose(spd.distance(Da, Db, "wasserstein", p=p), bwp, rtol=1e-10)
    for metric in ("riemann", "wasserstein"):
        p = 0.7
        ref = spd.distance(spd.powm(A, p), spd.powm(B, p), metric) / p
        assert np.allclose(spd.distance(A, B, metric, p=p), ref, rtol=1e-12)
        with pytest.raises(ValueError, match="nonzero"):
            spd.distance(A, B, metric, p=0.0)
    # identity and symmetry, affine invariance
    assert np.allclose(spd.distance(A, A), 0, atol=1e-7)
    assert np.allclose(spd.distance(A, B), spd.distance(B, A), rtol=1e-10)
    G = rng.standard_normal((4, 4))
    assert np.allclose(spd.distance(G @ A @ G.T, G @ B @ G.T), spd.distance(A, B), rtol=1e-8)


def test_distance_errors_and_broadcast():
    rng = np.random.default_rng(13)
    A = rand_spd(rng, (2, 3), 4)
    B = rand_spd(rng, (3,), 4)
    d = spd.distance(A, B)
    assert d.shape == (2, 3)
    assert np.isclose(d[1, 2], spd.distance(A[1, 2], B[2]))
    assert spd.distance(A[0, 0], B[0]).shape == ()
    with pytest.raises(ValueError, match="do not broadcast"):
        spd.distance(A, rand_spd(rng, (4,), 4))
    with pytest.raises(ValueError, match="different sizes"):
        spd.distance(A, np.eye(3))
    with pytest.raises(ValueError, match="not one of"):
        spd.distance(A, B, "bogus")
    with pytest.raises(ValueError, match=r"B\[0\] is not positive definite"):
        spd.distance(A[0, 0], -np.eye(4))
    with pytest.raises(ValueError, match=r"A\[1\] is not positive definite"):
        spd.distance(np.stack([np.eye(4), -np.eye(4)]), np.eye(4))
    with pytest.raises(ValueError, match="not positive definite"):
        spd.pairwise_distance(np.stack([np.eye(4), -np.eye(4)]), np.eye(4)[None])
    with pytest.raises(ValueError, match=r"\(n_x, n, n\)"):
        spd.pairwise_distance(A)


# ----------------------------------------------------------------------------- means


def test_means_vs_pyriemann():
    _pyr()
    from pyriemann.geometry.mean import mean_logeuclid, mean_riemann, mean_wasserstein

    rng = np.random.default_rng(14)
    X = rand_spd(rng, (15,), 5)
    w = rng.uniform(0.1, 1, 15)
    for weights in (None, w):
        res = spd.mean_riemann(X, weights)
        assert res.converged and 0 < res.n_iter <= 50
        assert np.allclose(res.mean, mean_riemann(X, sample_weight=weights), rtol=0, atol=1e-8)
        L = spd.mean_logeuclid(X, weights)
        assert np.allclose(L, mean_logeuclid(X, sample_weight=weights), rtol=0, atol=1e-10)
        res = spd.mean_wasserstein(X, weights, tol=1e-12)
        ref = mean_wasserstein(X, tol=1e-12, maxiter=200, sample_weight=weights)
        assert res.converged
        assert np.allclose(res.mean, ref, rtol=0, atol=1e-8)


def test_bw_barycenter_vs_pot():
    pytest.importorskip("ot")
    from ot.gaussian import bures_wasserstein_barycenter

    rng = np.random.default_rng(15)
    X = rand_spd(rng, (20,), 6)
    w = rng.uniform(0.1, 1, 20)
    w /= w.sum()
    m = np.zeros((20, 6))
    for weights in (None, w):
        # POT's own iterates: same start (POT's mean(w X)), same rule, same tolerance
        ww = np.full(20, 1 / 20) if weights is None else weights
        init = np.mean(X * ww[:, None, None], axis=0)
        _, ref = bures_wasserstein_barycenter(m, X, weights=weights)
        res = spd.mean_wasserstein(X, weights, init=init, method="pot")
        assert res.converged
        assert np.abs(res.mean - ref).max() < 1e-10
        # converged fixed points agree from geoml's default start, and with the default
        # (Alvarez-Esteban) iteration and tolerance from either start, in fewer iterations
        _, ref = bures_wasserstein_barycenter(m, X, weights=weights, eps=1e-13, num_iter=5000)
        res = spd.mean_wasserstein(X, weights, tol=1e-13, method="pot")
        assert np.abs(res.mean - ref).max() < 1e-10
        for start in (None, init):
            fast = spd.mean_wasserstein(X, weights, init=start)
            assert fast.converged and fast.n_iter < res.n_iter / 3
            assert np.abs(fast.mean - ref).max() < 1e-10


@pytest.mark.parametrize("n, cond", [(6, None), (22, 1e3), (22, 1e5)])
@pytest.mark.parametrize("method", ["pot", "alvarez_esteban"])
def test_bw_barycenter_triangular_congruence(n, cond, method):
    """mean_wasserstein's step takes T = sum w (R X R^T)^1/2 with C = R^T R (R lower
    triangular): POT's step is Q^T T Q with Q = R C^-1/2, Alvarez-Esteban's R^-1 T^2 R^-T. The
    iterates of a SciPy transcription of each loop (symmetric square roots per matrix), the
    same iteration count, also on ill-conditioned sets."""
    rng = np.random.default_rng(int(n + (cond or 0)))
    X = rand_spd(rng, (12,), n, cond=cond)
    w = rng.uniform(0.1, 1, 12)
    w /= w.sum()
    C = np.einsum("i,ijk->jk", w, X)
    tol = 1e-9 * np.linalg.norm(C)
    for it in range(1, 3000):  # noqa: B007 (it: the count after the loop)
        C12 = sla.sqrtm(C).real
        Cn = sum(wi * sla.sqrtm(C12 @ Xi @ C12).real for wi, Xi in zip(w, X))
        if method == "alvarez_esteban":
            Cm12 = np.linalg.inv(C12)
            Cn = Cm12 @ Cn @ Cn @ Cm12
        Cn = 0.5 * (Cn + Cn.T)
        if np.linalg.norm(C - Cn) <= tol:
            if method == "alvarez_esteban":
                C = Cn
            break
        C = Cn
    res = spd.mean_wasserstein(X, w, tol=tol, method=method)
    assert res.converged and res.n_iter == it
    assert rel(res.mean, C) < 1e-12 * max(1.0, (cond or 1.0) ** 0.5 * 1e-2)
    if method == "alvarez_esteban":  # 6 / 23 / 46 iterations against POT's 26 / 81 / 332
        assert 3 * it < spd.mean_wasserstein(X, w, tol=tol, method="pot").n_iter


def test_bw_barycenter_too_ill_conditioned_says_why():
    """Five 4 x 4 matrices of condition 1e10 (each SPD: the distance to the identity takes
    them) whose BW barycenter drifts to condition ~1e9: the whitened C^1/2 X_i C^1/2 leave
    float64 (POT's fixed point fails in LAPACK there). The error said "X[1] is not positive
    definite ... regularize it" of a matrix that is (found by the audit); it now says that
    X[1] is, and why the mean cannot go on. A matrix of X that is not SPD keeps its error."""
    rng = np.random.default_rng(5)
    Q = np.linalg.qr(rng.standard_normal((5, 4, 4)))[0]
    w = np.exp(rng.uniform(0, np.log(1e10), (5, 4)))
    w[:, 0], w[:, -1] = 1.0, 1e10
    X = (Q * w[:, None, :]) @ Q.swapaxes(1, 2)
    X = 0.5 * (X + X.swapaxes(1, 2))
    assert np.isfinite(spd.distance(X, np.eye(4))).all()

    # session 30: the Bures-Wasserstein passes take C^1/2 X_i C^1/2 as positive
    # semi-definite (only its square root enters): the barycenter goes on (it raised "X[i] is
    # positive definite, but not numerically once whitened"), its steps stall above tol at this
    # condition (converged False, with the warning), and its fixed-point equation holds to
    # 1e-8 with the default method
    def sqrtm_psd(M):
        lam, V = np.linalg.eigh(0.5 * (M + M.T))
        return (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T

    for method, tol in (("alvarez_esteban", 1e-8), ("pot", 1e-5)):  # (POT's: slower)
        with pytest.warns(spd.ConvergenceWarning, match="1 of 1"):
            res = spd.mean_wasserstein(X, method=method)
        assert not res.converged
        C12 = sqrtm_psd(res.mean)
        F = sum(sqrtm_psd(C12 @ x @ C12) for x in X) / len(X)
        assert np.linalg.norm(F - res.mean) <= tol * np.linalg.norm(res.mean)
    # the distance between two of them: whitened by B = X[0], condition ~1e20 (was "A[1] is
    # not positive definite" too)
    with pytest.raises(ValueError, match=r"A\[1\] is positive definite, but not numerically"):
        spd.distance(X, X[0])
    with pytest.raises(ValueError, match=r"X\[\d\] is positive definite, but not numerically"):
        spd.pairwise_distance(X)
    X[2] = np.diag([1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"X\[2\] is not positive definite"):
        spd.mean_wasserstein(X)


def test_means_closed_forms_and_flags():
    rng = np.random.default_rng(16)
    d = rng.uniform(0.5, 3, (6, 4))
    X = np.stack([np.diag(r) for r in d])
    gm = np.diag(np.exp(np.log(d).mean(0)))
    assert np.allclose(spd.mean_riemann(X).mean, gm, rtol=1e-12)
    assert np.allclose(spd.mean_logeuclid(X), gm, rtol=1e-12)
    bw = np.diag(np.sqrt(d).mean(0) ** 2)
    assert np.allclose(spd.mean_wasserstein(X, tol=1e-12).mean, bw, rtol=1e-10)
    assert np.allclose(spd.mean(X, metric="euclid"), np.diag(d.mean(0)))
    # identity set
    I3 = np.stack([np.eye(3)] * 4)
    assert np.allclose(spd.mean_riemann(I3).mean, np.eye(3))
    # two matrices: the geodesic midpoint A #_{1/2} B
    A, B = rand_spd(rng, (2,), 4)
    A12, Am12 = spd.sqrtm(A), spd.invsqrtm(A)
    mid = A12 @ spd.sqrtm(Am12 @ B @ Am12) @ A12
    assert np.allclose(spd.mean_riemann(np.stack([A, B])).mean, mid, atol=1e-9)
    # non-convergence is flagged and warned
    Y = rand_spd(rng, (10,), 4)
    with pytest.warns(spd.ConvergenceWarning, match="convergence not reached"):
        res = spd.mean_riemann(Y, max_iter=1)
    assert not res.converged and res.n_iter == 1
    with pytest.warns(spd.ConvergenceWarning):
        assert not spd.mean_wasserstein(Y, max_iter=2).converged
    # batched over sets
    Z = rand_spd(rng, (2, 3, 5), 3)
    res = spd.mean_riemann(Z)
    assert res.mean.shape == (2, 3, 3, 3) and res.converged.shape == (2, 3)
    assert np.allclose(res.mean[1, 2], spd.mean_riemann(Z[1, 2]).mean, atol=1e-12)
    assert spd.mean_logeuclid(Z).shape == (2, 3, 3, 3)
    # errors
    with pytest.raises(ValueError, match="weights must have shape"):
        spd.mean_riemann(Y, np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        spd.mean_riemann(Y, -np.ones(10))
    with pytest.raises(ValueError, match="all be zero"):
        spd.mean_riemann(Y, np.zeros(10))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        spd.mean_riemann(np.eye(3))
    with pytest.raises(ValueError, match="not positive definite"):
        spd.mean_riemann(np.stack([np.eye(3), -np.eye(3)]))
    with pytest.raises(ValueError, match="not one of"):
        spd.mean(Y, metric="bogus")


# ----------------------------------------------------------------------------- tangent space


def test_log_euclidean_maps_closed_forms():
    """The log-Euclidean maps: at the identity, ``logm`` and ``expm``; for a diagonal
    reference and diagonal X, ``c_i (log x_i - log c_i)`` (the differential of exp at
    ``log c``); round trips; one reference per matrix as one shared."""
    rng = np.random.default_rng(23)
    X = rand_spd(rng, (5,), 4, cond=1e3)
    I4 = np.eye(4)
    assert rel(spd.log_map(X, I4, "logeuclid"), spd.logm(X)) < 1e-13
    T = spd.log_map(X, I4, "logeuclid")
    assert rel(spd.exp_map(T, I4, "logeuclid"), X) < 1e-12
    c, x = np.array([0.5, 2.0, 3.0, 7.0]), np.array([1.0, 0.1, 30.0, 7.0])
    L = spd.log_map(np.diag(x), np.diag(c), "logeuclid")
    assert rel(L, np.diag(c * (np.log(x) - np.log(c)))) < 1e-14
    C = rand_spd(rng, (), 4, cond=1e2)
    T = spd.log_map(X, C, "logeuclid")
    assert rel(spd.exp_map(T, C, "logeuclid"), X) < 1e-11
    Cs = rand_spd(rng, (5,), 4)
    Ts = spd.log_map(X, Cs, "logeuclid")
    assert rel(Ts[3], spd.log_map(X[3], Cs[3], "logeuclid")) < 1e-14
    assert rel(spd.exp_map(Ts, Cs, "logeuclid")[3], X[3]) < 1e-11
    v = spd.tangent_space(X, C, "logeuclid")
    assert rel(spd.untangent_space(v, C, "logeuclid"), X) < 1e-11


def test_tangent_vs_pyriemann():
    _pyr()
    from pyriemann.geometry import tangentspace as pts

    rng = np.random.default_rng(17)
    X = rand_spd(rng, (6,), 5)
    C = rand_spd(rng, (), 5)
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        L = spd.log_map(X, C, metric)
        assert np.allclose(L, pts.log_map(X, C, metric=metric), atol=1e-10), metric
        E = spd.exp_map(L, C, metric)
        assert np.allclose(E, pts.exp_map(L, C, metric=metric), atol=1e-10), metric
        assert np.allclose(E, X, atol=1e-9), metric
        T = spd.tangent_space(X, C, metric)
        assert np.allclose(T, pts.tangent_space(X, C, metric=metric), atol=1e-10), metric
        assert np.allclose(spd.untangent_space(T, C, metric), X, atol=1e-9)
    L = spd.log_map(X, C, whitened=False)
    assert np.allclose(L, pts.log_map_riemann(X, C, C12=True), atol=1e-10)
    assert np.allclose(
        spd.exp_map(L, C, whitened=False), pts.exp_map_riemann(L, C, Cm12=True), atol=1e-10
    )
    A, B = rand_spd(rng, (2,), 5)
    Tv = spd.log_map(X, A, whitened=False)
    assert np.allclose(
        spd.transport(Tv, A, B), pts.transport(Tv, A, B, metric="riemann"), atol=1e-10
    )
    assert np.allclose(spd.upper(L), pts.upper(L))
    assert np.allclose(spd.unupper(spd.upper(L)), L)


def test_tangent_closed_forms_and_errors():
    rng = np.random.default_rng(18)
    X = rand_spd(rng, (4,), 3)
    # at the identity the affine-invariant log map is logm
    assert np.allclose(spd.log_map(X, np.eye(3)), spd.logm(X), atol=1e-13)
    # the norm of the whitened tangent vector is the Riemannian distance
    C = rand_spd(rng, (), 3)
    assert np.allclose(
        np.linalg.norm(spd.tangent_space(X, C), axis=1), spd.distance(X, C), rtol=1e-10
    )
    # transport to the same point is the identity; per-matrix references
    T = spd.log_map(X, C, whitened=False)
    assert np.allclose(spd.transport(T, C, C), T, atol=1e-12)
    Cs = rand_spd(rng, (4,), 3)
    L = spd.log_map(X, Cs)
    assert np.allclose(L[2], spd.log_map(X[2], Cs[2]), atol=1e-13)
    with pytest.raises(ValueError, match="Cref must have shape"):
        spd.log_map(X, Cs[:2])
    with pytest.raises(ValueError, match="symmetric"):
        spd.exp_map(np.triu(np.ones((3, 3))), C)
    with pytest.raises(ValueError, match="not one of"):
        spd.log_map(X, C, "logchol")
    with pytest.raises(ValueError, match="n \\(n \\+ 1\\) / 2"):
        spd.unupper(np.ones(4))


def _sym_batch(rng, shape, n):
    T = rng.standard_normal(shape + (n, n))
    return T + T.swapaxes(-1, -2)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["riemann", "logeuclid", "euclid"])
def test_transport_vs_pyriemann(seed, metric):
    _pyr()
    from pyriemann.geometry import tangentspace as pts

    rng = np.random.default_rng(seed)
    n = 3 + seed
    A, B = rand_spd(rng, (2,), n, cond=50.0)
    T = _sym_batch(rng, (2, 3), n)
    got = spd.transport(T, A, B, metric)
    assert got.shape == (2, 3, n, n)
    ref = pts.transport(T, A, B, metric=metric)
    assert np.allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def _bw_inner(S, X, Y):
    """The Bures-Wasserstein inner product at S: 1/2 tr(L_S(X) Y), L_S the Lyapunov map."""
    return 0.5 * np.trace(sla.solve_continuous_lyapunov(S, X) @ Y)


def _bw_transport_reference(X, A, B):
    """Independent reference: integrate V' = -Gamma(gamma; gamma', V) along the
    Bures-Wasserstein geodesic with the metric's Christoffel symbol (Han et al., "On
    Riemannian optimization over positive definite matrices with the Bures-Wasserstein
    geometry", NeurIPS 2021) by SciPy's DOP853."""
    from scipy.integrate import solve_ivp

    n = A.shape[0]
    A12 = sla.sqrtm(A).real
    Am12 = np.linalg.inv(A12)
    D = Am12 @ sla.sqrtm(A12 @ B @ A12).real @ Am12 - np.eye(n)

    def christoffel(S, U, V):
        LU = sla.solve_continuous_lyapunov(S, U)
        LV = sla.solve_continuous_lyapunov(S, V)
        G = S @ LV @ LU + LV @ LU @ S - LU @ V - LV @ U
        return 0.5 * (G + G.T)

    def rhs(t, v):
        M = np.eye(n) + t * D
        S, dS = M @ A @ M, D @ A @ M + M @ A @ D
        return -christoffel(S, dS, v.reshape(n, n)).ravel()

    r = solve_ivp(rhs, (0.0, 1.0), X.ravel(), method="DOP853", rtol=1e-12, atol=1e-14)
    return r.y[:, -1].reshape(n, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("commuting", [False, True])
def test_transport_wasserstein_vs_christoffel_ode(seed, commuting):
    rng = np.random.default_rng(100 + seed)
    n = 3 + seed
    if commuting:
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        a, b = rng.uniform(0.3, 4.0, (2, n))
        a[0] = a[1]  # a repeated eigenvalue of A that B splits
        A, B = (Q * a) @ Q.T, (Q * b) @ Q.T
    else:
        A, B = rand_spd(rng, (2,), n, cond=20.0)
    T = _sym_batch(rng, (3,), n)
    got = spd.transport(T, A, B, "wasserstein")
    for i in range(3):
        ref = _bw_transport_reference(T[i], A, B)
        assert np.allclose(got[i], ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max()), i
    # an isometry of the metric, and the way back undoes it
    for i in range(3):
        for j in range(3):
            assert np.isclose(
                _bw_inner(B, got[i], got[j]), _bw_inner(A, T[i], T[j]), rtol=1e-8, atol=1e-10
            )
    assert np.allclose(spd.transport(got, B, A, "wasserstein"), T, atol=1e-8 * np.abs(T).max())


def test_transport_closed_forms_and_errors():
    rng = np.random.default_rng(7)
    A = rand_spd(rng, (), 4)
    T = _sym_batch(rng, (2,), 4)
    for metric in ("riemann", "wasserstein", "logeuclid", "euclid"):
        # transport to the same point is the identity
        assert np.allclose(spd.transport(T, A, A, metric), T, atol=1e-10), metric
    # diagonal points: T_ij sqrt((b_i + b_j) / (a_i + a_j)) exactly
    a, b = rng.uniform(0.5, 2.0, (2, 4))
    G = np.sqrt((b[:, None] + b[None, :]) / (a[:, None] + a[None, :]))
    got = spd.transport(T, np.diag(a), np.diag(b), "wasserstein")
    assert np.allclose(got, T * G, rtol=1e-12, atol=1e-14)
    # float32 in, float32 out
    got32 = spd.transport(
        T.astype(np.float32), A.astype(np.float32), 2 * np.eye(4, dtype=np.float32), "wasserstein"
    )
    assert got32.dtype == np.float32
    with pytest.raises(ValueError, match="not one of"):
        spd.transport(T, A, A, "logchol")
    with pytest.raises(TypeError, match="metric must be a string"):
        spd.transport(T, A, A, 3)
    with pytest.raises(ValueError, match="tol must be"):
        spd.transport(T, A, A, "wasserstein", tol=0.0)
    with pytest.raises(ValueError):
        spd.transport(T, A, -np.eye(4), "wasserstein")
    with pytest.raises(ValueError, match="symmetric"):
        spd.transport(np.triu(np.ones((4, 4))), A, A, "wasserstein")


# ----------------------------------------------------------------------------- covariances
@pytest.mark.parametrize("estimator", ["scm", "lwf", "oas"])
def test_covariances_vs_pyriemann_and_sklearn(estimator):
    rng = np.random.default_rng(19)
    X = rng.standard_normal((5, 4, 30)) * rng.uniform(0.5, 2, (1, 4, 1)) + 3.0
    C = spd.covariances(X, estimator)
    assert C.shape == (5, 4, 4)
    sk = pytest.importorskip("sklearn.covariance")
    for i in range(5):
        if estimator == "scm":
            ref = sk.empirical_covariance(X[i].T)
        else:
            ref = getattr(sk, "ledoit_wolf" if estimator == "lwf" else "oas")(X[i].T)[0]
        assert np.allclose(C[i], ref, rtol=1e-12, atol=1e-14)
    _pyr()
    from pyriemann.geometry.covariance import covariances as pcov

    assert np.allclose(C, pcov(X, estimator=estimator), rtol=1e-10, atol=1e-14)
    # batched, float32, one channel
    C2 = spd.covariances(X.reshape(5, 1, 4, 30).astype(np.float32), estimator)
    assert C2.shape == (5, 1, 4, 4) and C2.dtype == np.float32
    one = spd.covariances(X[:, :1], estimator)
    assert np.allclose(one[:, 0, 0], X[:, 0].var(axis=1))


@pytest.mark.parametrize("estimator", ["scm", "lwf", "oas"])
def test_covariances_are_equivariant_in_the_scale(estimator):
    """covariances(s X) = s^2 covariances(X): the Ledoit-Wolf / OAS shrinkage of data of
    1e-150 was 36 % / 19 % off (the squares of S underflowed), data of 1e150 was refused
    as overflowing, and so was scm's S from 1e160. Trials of different scales in one batch."""
    rng = np.random.default_rng(21)
    X = rng.standard_normal((4, 5, 60)) + rng.standard_normal((4, 5, 1))
    ref = spd.covariances(X, estimator)
    for s in (1e-150, 1e150, 1e-100, 1e100):
        C = spd.covariances(X * s, estimator)
        assert np.allclose(C / s**2, ref, rtol=1e-13, atol=1e-14)  # (s X rounds X)
    mixed = X * np.array([1e-150, 1.0, 1e150, 1e-5])[:, None, None]
    C = spd.covariances(mixed, estimator)
    scale = np.array([1e-300, 1.0, 1e300, 1e-10])[:, None, None]
    assert np.allclose(C / scale, ref, rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="not finite in float32"):
        spd.covariances((X * 1e20).astype(np.float32), estimator)  # 1e40 is inf in float32


def test_augmented_covariance_of_order_one_is_the_covariance():
    """MOABB's AugmentedDataset(order=1) returns the trial unchanged (the paper's order 1 is
    the plain covariance); geoml dropped the last ``lag`` samples (2-9 % off)."""
    X = np.random.default_rng(22).standard_normal((3, 4, 50))
    for lag in (1, 3):
        C = spd.augmented_covariances(X, order=1, lag=lag)
        assert np.array_equal(C, spd.covariances(X))


def test_augmented_covariances():
    rng = np.random.default_rng(20)
    X = rng.standard_normal((3, 2, 40))
    order, lag = 3, 2
    # MOABB's AugmentedDataset embedding, transcribed
    ref_emb = []
    for i in range(3):
        Xp = X[i][:, : -order * lag]
        Xp = np.concatenate(
            [Xp] + [X[i][:, p * lag : -(order - p) * lag] for p in range(1, order)], axis=0
        )
        ref_emb.append(Xp)
    ref = spd.covariances(np.stack(ref_emb))
    C = spd.augmented_covariances(X, order=order, lag=lag)
    assert C.shape == (3, 6, 6)
    assert np.allclose(C, ref, rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="leaves"):
        spd.augmented_covariances(X, order=10, lag=4)
    with pytest.raises(ValueError, match="order"):
        spd.augmented_covariances(X, order=0)
    with pytest.raises(ValueError, match="not one of"):
        spd.covariances(X, "cov")
    with pytest.raises(ValueError, match="NaN"):
        spd.covariances(np.full((1, 2, 5), np.nan))


# ----------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("metric", ["riemann", "logeuclid", "wasserstein"])
def test_mdm_vs_pyriemann(metric):
    _pyr()
    from pyriemann.classification import MDM as PMDM
    from pyriemann.datasets import make_gaussian_blobs

    X, y = make_gaussian_blobs(
        n_matrices=30, n_dim=4, class_sep=1.0, class_disp=0.6, random_state=3
    )
    ours = spd.MDM(metric=metric).fit(X, y)
    theirs = PMDM(metric=metric).fit(X, y)
    tol = 1e-8 if metric != "wasserstein" else 1e-6
    assert np.allclose(ours.covmeans_, theirs.covmeans_, atol=tol)
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    assert np.allclose(ours.transform(X), theirs.transform(X), atol=tol)
    assert np.allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=tol)
    assert ours.score(X, y) > 0.6


@pytest.mark.parametrize("metric", ["riemann", "logeuclid", "wasserstein"])
def test_tangentspace_vs_pyriemann(metric):
    # pyRiemann's TangentSpace(metric=m) takes m for the mean and the map ("logeuclid": the
    # log-Euclidean map; geoml took the affine-invariant map there until the audit)
    _pyr()
    from pyriemann.datasets import make_matrices
    from pyriemann.tangentspace import TangentSpace as PTS

    X = make_matrices(20, 4, "spd", rs=np.random.RandomState(5))
    ours = spd.TangentSpace(metric=metric).fit(X)
    theirs = PTS(metric=metric).fit(X)
    assert np.allclose(ours.reference_, theirs.reference_, atol=1e-8)
    assert np.allclose(ours.transform(X), theirs.transform(X), atol=1e-8)
    assert np.allclose(ours.inverse_transform(ours.transform(X)), X, atol=1e-8)
    up = spd.TangentSpace(metric=metric, tsupdate=True).fit(X)
    assert np.allclose(
        up.transform(X[:5]),
        PTS(metric=metric, tsupdate=True).fit(X).transform(X[:5]),
        atol=1e-8,
    )


def _upper_ref(S):
    """pyRiemann's ``upper`` written out: the upper triangle row by row, off-diagonal entries
    times sqrt(2)."""
    n = S.shape[-1]
    return np.stack(
        [S[..., i, j] * (1.0 if i == j else np.sqrt(2.0)) for i in range(n) for j in range(i, n)],
        axis=-1,
    )


def test_euclid_estimators():
    """``metric="euclid"``: MDM's class means are the weighted arithmetic means and its
    distances Frobenius norms; TangentSpace maps to ``upper(X - C)`` at the weighted arithmetic
    mean (NumPy written out; geoml raised "not one of" before)."""
    rng = np.random.default_rng(33)
    X = rand_spd(rng, (30,), 4, cond=50.0)
    y = np.repeat([0, 1, 2], 10)
    X[y == 1] *= 2.0
    w = rng.uniform(0.5, 2.0, 30)
    m = spd.MDM(metric="euclid").fit(X, y, sample_weight=w)
    C = np.stack([np.average(X[y == c], axis=0, weights=w[y == c]) for c in (0, 1, 2)])
    np.testing.assert_allclose(m.covmeans_, C, rtol=0, atol=1e-14 * np.abs(C).max())
    D = np.linalg.norm(X[:, None] - C[None], axis=(2, 3))
    np.testing.assert_allclose(m.transform(X), D, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(m.predict(X), D.argmin(1))
    t = spd.TangentSpace(metric="euclid").fit(X, sample_weight=w)
    ref = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(t.reference_, ref, rtol=0, atol=1e-14 * np.abs(ref).max())
    np.testing.assert_allclose(t.transform(X), _upper_ref(X - ref), rtol=0, atol=1e-13)
    np.testing.assert_allclose(t.inverse_transform(t.transform(X)), X, rtol=0, atol=1e-13)
    up = spd.TangentSpace(metric="euclid", tsupdate=True).fit(X)
    np.testing.assert_allclose(up.transform(X[:5]), _upper_ref(X[:5] - X[:5].mean(0)), atol=1e-13)
    # one step Euclidean, the other not (pyRiemann's dicts)
    mixed = spd.MDM(metric={"mean": "euclid", "distance": "riemann"}).fit(X, y)
    C0 = np.stack([X[y == c].mean(0) for c in (0, 1, 2)])
    np.testing.assert_allclose(mixed.covmeans_, C0, rtol=0, atol=1e-14 * np.abs(C0).max())
    np.testing.assert_allclose(
        mixed.transform(X), np.stack([spd.distance(X, c, "riemann") for c in C0], 1), rtol=1e-12
    )
    with pytest.raises(ValueError, match="not one of"):
        spd.MDM(metric="euclidean").fit(X, y)


def test_euclid_estimators_vs_pyriemann():
    """pyRiemann 0.12's MDM(metric="euclid") (mean_euclid, distance_euclid) and
    TangentSpace(metric="euclid") (reference: mean_euclid; tangent_space: upper(X - C)), with
    and without sample weights, and mixed with other metrics in its dicts."""
    _pyr()
    from pyriemann.classification import MDM as PMDM
    from pyriemann.datasets import make_gaussian_blobs, make_matrices
    from pyriemann.tangentspace import TangentSpace as PTS

    rng = np.random.default_rng(7)
    for seed in (3, 4):
        X, y = make_gaussian_blobs(
            n_matrices=30, n_dim=4, class_sep=1.0, class_disp=0.6, random_state=seed
        )
        Xt, _ = make_gaussian_blobs(
            n_matrices=20, n_dim=4, class_sep=1.0, class_disp=0.6, random_state=seed + 10
        )
        for w in (None, rng.uniform(0.5, 2.0, len(y))):
            for metric in (
                "euclid",
                {"mean": "euclid", "distance": "riemann"},
                {"mean": "riemann", "distance": "euclid"},
            ):
                ours = spd.MDM(metric=metric).fit(X, y, sample_weight=w)
                theirs = PMDM(metric=metric).fit(X, y, sample_weight=w)
                # the affine-invariant means are iterated (test_mdm_vs_pyriemann's 1e-8);
                # the arithmetic ones agree to rounding
                tol = 1e-8 if isinstance(metric, dict) and metric["mean"] == "riemann" else 1e-10
                np.testing.assert_allclose(ours.covmeans_, theirs.covmeans_, rtol=0, atol=tol)
                for Z in (X, Xt):
                    np.testing.assert_array_equal(ours.predict(Z), theirs.predict(Z))
                    np.testing.assert_allclose(
                        ours.transform(Z), theirs.transform(Z), rtol=0, atol=tol
                    )
                    np.testing.assert_allclose(
                        ours.predict_proba(Z), theirs.predict_proba(Z), rtol=0, atol=tol
                    )
    for seed in (5, 6):
        X = make_matrices(20, 4, "spd", rs=np.random.RandomState(seed))
        w = rng.uniform(0.5, 2.0, 20)
        for metric in (
            "euclid",
            {"mean": "logeuclid", "map": "euclid"},
            {"mean": "euclid", "map": "riemann"},
        ):
            ours = spd.TangentSpace(metric=metric).fit(X, sample_weight=w)
            theirs = PTS(metric=metric).fit(X, sample_weight=w)
            np.testing.assert_allclose(ours.reference_, theirs.reference_, rtol=0, atol=1e-10)
            np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=0, atol=1e-10)
            T = ours.transform(X)
            np.testing.assert_allclose(
                ours.inverse_transform(T), theirs.inverse_transform(T), rtol=0, atol=1e-10
            )
        up = spd.TangentSpace(metric="euclid", tsupdate=True).fit(X)
        np.testing.assert_allclose(
            up.transform(X[:5]),
            PTS(metric="euclid", tsupdate=True).fit(X).transform(X[:5]),
            rtol=0,
            atol=1e-10,
        )


def test_estimators_take_pyriemanns_metric_dicts():
    """pyRiemann's MDM takes ``metric={"mean": ..., "distance": ...}`` (its documented
    "typical usecase": log-Euclidean means, affine-invariant distances) and TangentSpace
    ``{"mean": ..., "map": ...}``; geoml raised ``TypeError: metric must be a string``."""
    rng = np.random.default_rng(32)
    X = rand_spd(rng, (24,), 4, cond=30.0)
    y = np.repeat(["a", "b", "c"], 8)
    X[y == "b"] *= 3.0
    m = spd.MDM(metric={"mean": "logeuclid", "distance": "riemann"}).fit(X, y)
    for k, c in enumerate(m.classes_):
        assert np.allclose(m.covmeans_[k], spd.mean_logeuclid(X[y == c]), rtol=1e-12)
    D = np.stack([spd.distance(X, C, "riemann") for C in m.covmeans_], axis=1)
    assert np.allclose(m.transform(X), D, rtol=1e-12)
    assert np.array_equal(m.predict(X), m.classes_[D.argmin(1)])
    # a dict naming one metric twice is that metric
    same = spd.MDM(metric={"mean": "wasserstein", "distance": "wasserstein"}).fit(X, y)
    assert np.allclose(
        same.transform(X), spd.MDM(metric="wasserstein").fit(X, y).transform(X), rtol=1e-12
    )
    t = spd.TangentSpace(metric={"mean": "logeuclid", "map": "riemann"}).fit(X)
    ref = spd.mean_logeuclid(X)
    assert np.allclose(t.reference_, ref, rtol=1e-12)
    assert np.allclose(t.transform(X), spd.tangent_space(X, ref, "riemann"), rtol=1e-10)
    assert np.allclose(t.inverse_transform(t.transform(X)), X, rtol=1e-10)
    up = spd.TangentSpace(metric={"mean": "riemann", "map": "logeuclid"}, tsupdate=True).fit(X)
    got = up.transform(X[:6])
    assert np.allclose(got, spd.tangent_space(X[:6], spd.mean_riemann(X[:6]).mean, "logeuclid"))
    for bad, err, match in (
        ({"mean": "logeuclid"}, ValueError, "keys"),
        ({"mean": "riemann", "distance": "riemann", "map": "riemann"}, ValueError, "unknown"),
        ({"mean": "riemann", "distance": "logchol"}, ValueError, "not one of"),
        (["riemann"], TypeError, "string or a dict"),
    ):
        with pytest.raises(err, match=match):
            spd.MDM(metric=bad).fit(X, y)
    with pytest.raises(ValueError, match="keys"):
        spd.TangentSpace(metric={"mean": "riemann", "distance": "riemann"}).fit(X)
    try:
        from pyriemann.classification import MDM as PMDM
        from pyriemann.tangentspace import TangentSpace as PTS
    except ImportError:
        return
    p = PMDM(metric={"mean": "logeuclid", "distance": "riemann"}).fit(X, y)
    assert np.allclose(m.covmeans_, p.covmeans_, atol=1e-12)
    assert np.allclose(m.transform(X), p.transform(X), atol=1e-10)
    assert np.array_equal(m.predict(X), p.predict(X))
    pt = PTS(metric={"mean": "logeuclid", "map": "riemann"}).fit(X)
    assert np.allclose(t.transform(X), pt.transform(X), atol=1e-10)


def test_estimators_2d_input_is_nearest_centroid():
    rng = np.random.default_rng(21)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    m = spd.MDM().fit(X, y)
    cent = np.stack([X[y == k].mean(0) for k in (0, 1)])
    d = np.linalg.norm(X[:, None] - cent[None], axis=2)
    assert np.allclose(m.transform(X), d, atol=1e-9)
    assert np.array_equal(m.predict(X), np.argmin(d, axis=1))
    with pytest.raises(ValueError, match="X has 2 features, but MDM is expecting 3"):
        m.predict(X[:, :2])
    with pytest.raises(ValueError, match="Unknown label type"):
        spd.MDM().fit(X, rng.standard_normal(40))
    with pytest.raises(ValueError, match="y to be passed"):
        spd.MDM().fit(X, None)
    with pytest.raises(geoml.NotFittedError):
        spd.MDM().predict(X)
    T = spd.TangentSpace().fit(X)
    assert T.transform(X).shape == (40, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spd.MDM(n_jobs=2).fit(X, y)


def test_lane_groups_do_not_mix():
    """The eigensolver runs 32 matrices per SIMD group: a matrix's result must not depend on its
    neighbours in the group, on the batch size, on the thread count, or on a bad matrix (NaN,
    asymmetric, zero) sharing its group."""
    from geoml.spd import _linalg

    rng = np.random.default_rng(23)
    X = rand_spd(rng, (19,), 6, cond=1e4)
    S = spd.sqrtm(X, n_jobs=1)
    Y = rand_spd(rng, (601,), 8)  # enough work for two threads
    assert np.array_equal(spd.logm(Y, n_jobs=1), spd.logm(Y, n_jobs=2))
    assert np.array_equal(spd.logm(Y[300:309]), spd.logm(Y, n_jobs=2)[300:309])
    for i in (0, 7, 8, 18):
        assert np.array_equal(S[i], spd.sqrtm(X[i]))
    assert np.array_equal(S[5:13], spd.sqrtm(X[5:13]))
    assert np.array_equal(spd.distance(X, X[3]), spd.distance(X[::-1], X[3])[::-1])
    bad = X.copy()
    bad[1, 0, 0] = np.nan
    bad[2, 0, 1] += 1.0  # not symmetric
    bad[3] = 0.0
    w, V, status = _linalg.eigh_batch(bad, vectors=True, n_jobs=1)
    assert list(status[:4]) == [0, 1, 2, 0]
    assert np.array_equal(w[3], np.zeros(6)) and np.array_equal(V[3], np.eye(6))
    w0, V0, _ = _linalg.eigh_batch(X, vectors=True, n_jobs=1)
    keep = [0] + list(range(4, 19))
    assert np.array_equal(w[keep], w0[keep]) and np.array_equal(V[keep], V0[keep])
    wr = np.linalg.eigvalsh(X)
    assert np.allclose(w0, wr, rtol=1e-12, atol=1e-12 * np.abs(wr).max())


@pytest.mark.parametrize("n", [5, 22, 70])  # 70: the NumPy path (n > 64)
def test_distance_triangular_congruence(n):
    """The affine-invariant distance to one reference (and pairwise) takes the eigenvalues of
    L^-1 A L^-T (B = L L^T): the same as those of B^-1/2 A B^-1/2 and SciPy's generalised
    eigenvalues, per matrix; an indefinite matrix gets no factor (the symmetric path)."""
    from geoml.spd import _linalg

    rng = np.random.default_rng(n)
    A = rand_spd(rng, (20,), n, cond=1e3)
    B = rand_spd(rng, (1,), n, cond=1e2)
    Li = _linalg.inv_cholesky(B)
    assert np.array_equal(Li, np.tril(Li))
    assert np.abs(Li[0] @ B[0] @ Li[0].T - np.eye(n)).max() < 1e-12
    w_lo, s_lo = _linalg.eigvalsh_pairs(A, Li, lower=True)
    w_sym, s_sym = _linalg.eigvalsh_pairs(A, spd.invsqrtm(B))
    assert not s_lo.any() and not s_sym.any()
    for b in range(len(A)):
        wr = sla.eigvalsh(A[b], B[0])
        assert np.abs(w_lo[b] - wr).max() <= 1e-12 * wr.max()
    assert np.abs(w_lo - w_sym).max() <= 1e-12 * np.abs(w_sym).max()
    d = spd.distance(A, B[0])
    ref = np.array([np.sqrt(np.sum(np.log(sla.eigvalsh(a, B[0])) ** 2)) for a in A])
    assert rel(d, ref) < 1e-12
    assert np.array_equal(spd.distance(A, B[0], n_jobs=1), spd.distance(A, B[0], n_jobs=2))
    if n == 22:  # enough work for two threads (small batches run on one)
        A2 = rand_spd(rng, (150,), n)
        d1 = spd.distance(A2, B[0], n_jobs=1)
        assert np.array_equal(d1, spd.distance(A2, B[0], n_jobs=2))
        assert np.array_equal(d1[37:90], spd.distance(A2[37:90], B[0], n_jobs=2))
        P1 = spd.pairwise_distance(A2[:30], A2[30:40], n_jobs=1)
        assert np.array_equal(P1, spd.pairwise_distance(A2[:30], A2[30:40], n_jobs=2))
    P = spd.pairwise_distance(A[:6], A[6:10])
    refP = [[np.sqrt(np.sum(np.log(sla.eigvalsh(x, y)) ** 2)) for y in A[6:10]] for x in A[:6]]
    assert rel(P, np.array(refP)) < 1e-10  # SciPy itself: ~2e-12 here (cond 1e3 both sides)
    # float32 input: computed in float64 from the float32 values
    d32 = spd.distance(A.astype(np.float32), B[0].astype(np.float32))
    assert d32.dtype == np.float32 and rel(d32, ref) < 1e-4
    bad = np.diag(np.r_[1.0, -1.0, np.ones(n - 2)])[None]
    assert _linalg.inv_cholesky(bad) is None


@pytest.mark.parametrize("n", [5, 22])
def test_distance_paired_batch_ill_conditioned(n):
    """A batch of B (one per A) takes the triangular congruence as one reference does: on
    commuting pairs of condition 1e6 (closed form sqrt(sum log(a_i / b_i)^2), exact to
    ~1e-10 from the rounding of A and B) the symmetric B^-1/2 A B^-1/2 was 2.6e-8 off
    (found by the audit); the same values as the per-pair single-reference path."""
    rng = np.random.default_rng(300 + n)
    nb = 40
    Q, _ = np.linalg.qr(rng.standard_normal((nb, n, n)))
    a = np.exp(rng.uniform(0, np.log(1e6), (nb, n)))
    b = np.exp(rng.uniform(0, np.log(1e6), (nb, n)))
    A = (Q * a[:, None]) @ Q.swapaxes(1, 2)
    B = (Q * b[:, None]) @ Q.swapaxes(1, 2)
    A, B = 0.5 * (A + A.swapaxes(1, 2)), 0.5 * (B + B.swapaxes(1, 2))
    ref = np.sqrt((np.log(a / b) ** 2).sum(axis=1))
    d = spd.distance(A, B)
    assert np.max(np.abs(d - ref) / ref) < 2e-9
    one = np.array([spd.distance(A[k], B[k]) for k in range(nb)])
    assert rel(d, one) < 1e-12
    assert np.array_equal(spd.distance(A, B, n_jobs=1), spd.distance(A, B, n_jobs=2))
    bad = B.copy()
    bad[3] = np.diag(np.r_[1.0, -1.0, np.ones(n - 2)])
    with pytest.raises(ValueError, match=r"B\[3\] is not positive definite"):
        spd.distance(A, bad)


@pytest.mark.parametrize("n", [1, 5, 22, 70])  # 70: the NumPy path (n > 64)
def test_eigvalsh_pairs_log_sq(n):
    """The distances' sum(log(w)^2) in the kernel (log_sq=True: the AVX-512 copy's own vector
    log): equal to NumPy's sum over the eigenvalues of the same pairs to rounding (paired,
    shared and outer M, lower and symmetric), NaN with the same status where a matrix is
    refused, the same bits for one and two threads; 1 x 1 matrices over the whole exponent
    range against np.log per value."""
    from geoml.spd import _linalg

    rng = np.random.default_rng(70 + n)
    nb = 97 if n <= 64 else 12
    A = rand_spd(rng, (nb,), n, cond=1e4) * np.exp(rng.uniform(-20, 20, (nb, 1, 1)))
    A[5] = np.diag(np.r_[1.0, -1.0, np.ones(n - 2)] if n > 1 else [-1.0])  # not PD
    A[9, 0, 0] = np.nan
    B = rand_spd(rng, (3,), n, cond=1e2)
    Li = _linalg.inv_cholesky(B[:1])
    cases = [
        dict(M=Li, lower=True),
        dict(M=spd.invsqrtm(B[:1])),
        dict(M=spd.invsqrtm(B), outer=True),
        dict(M=np.linalg.inv(np.linalg.cholesky(B)), lower=True, outer=True),
    ]
    for kw in cases if n <= 64 else cases[:2]:
        w, s = _linalg.eigvalsh_pairs(A, **kw)
        d2, s2 = _linalg.eigvalsh_pairs(A, log_sq=True, **kw)
        assert d2.dtype == np.float64 and d2.shape == s2.shape == s.shape
        sb = s.reshape(len(A), -1)  # outer: (b, k) pairs, b major
        assert np.array_equal(s, s2) and (sb[5] == 3).all() and (sb[9] == 1).all()
        ok = s == 0
        assert np.isnan(d2[~ok]).all()
        ref = np.sum(np.log(w[ok]) ** 2, axis=-1)
        assert rel(d2[ok], ref) < 1e-14
        d2b, _ = _linalg.eigvalsh_pairs(A, log_sq=True, n_jobs=2, **kw)
        assert np.array_equal(d2, d2b, equal_nan=True)
    if n == 1:  # the log itself, eigenvalue by eigenvalue
        x = np.concatenate(
            [np.exp(rng.uniform(-700, 700, 5000)), rng.uniform(0.5, 2.0, 5000), [1.0, 2.0, 0.5]]
        )
        d2, s = _linalg.eigvalsh_pairs(x[:, None, None], np.ones((1, 1, 1)), log_sq=True)
        assert not s.any() and d2[-3] == 0.0
        lx = np.abs(np.log(x))
        assert np.all(np.abs(np.sqrt(d2) - lx) <= 4e-16 * lx)


def test_mean_riemann_cholesky_iterates():
    """mean_riemann iterates with the iterate's Cholesky factor (M <- L exp(nu J') L^T, J' the
    mean log of L^-1 X L^-T): the same iterates as pyRiemann's symmetric square roots, here
    against a NumPy transcription of its loop (eigh per matrix), same iteration count; the
    same bits for one and two threads."""

    def fun(A, f):
        w, V = np.linalg.eigh(A)
        return (V * f(w)[..., None, :]) @ V.swapaxes(-1, -2)

    rng = np.random.default_rng(31)
    n = 22
    X = rng.standard_normal((300, n, 4 * n))
    C = X @ X.swapaxes(1, 2) / (4 * n) + 0.1 * np.eye(n)
    C = 0.5 * (C + C.swapaxes(1, 2))
    M = C.mean(axis=0)
    nu, tau, it = 1.0, np.finfo(np.float64).max, 0
    for it in range(1, 51):  # noqa: B007
        M12, Mm12 = fun(M, np.sqrt), fun(M, lambda x: 1 / np.sqrt(x))
        J = np.mean(fun(Mm12 @ C @ Mm12, np.log), axis=0)
        M = M12 @ fun(nu * J, np.exp) @ M12
        crit = np.linalg.norm(J)
        h = nu * crit
        nu, tau = (0.95 * nu, h) if h < tau else (0.5 * nu, tau)
        if crit <= 1e-8 or nu <= 1e-8:
            break
    res = spd.mean_riemann(C, method="gradient", n_jobs=1)
    assert res.converged and res.n_iter == it
    assert rel(res.mean, M) < 1e-12
    assert np.array_equal(res.mean, spd.mean_riemann(C, method="gradient", n_jobs=2).mean)
    # the default (Anderson-accelerated fixed point): the same mean in fewer batch passes
    fast = spd.mean_riemann(C, n_jobs=1)
    assert fast.converged and fast.n_iter < it
    assert np.abs(fast.mean - M).max() < 1e-9
    assert np.array_equal(fast.mean, spd.mean_riemann(C, n_jobs=2).mean)


def karcher_residual(M, X):
    """``||mean_i log(M^-1/2 X_i M^-1/2)||_F`` in NumPy (eigh per matrix)."""
    lam, V = np.linalg.eigh(M)
    Mm12 = (V / np.sqrt(lam)) @ V.T
    mu, W = np.linalg.eigh(Mm12 @ X @ Mm12)
    return np.linalg.norm(np.mean((W * np.log(mu)[:, None, :]) @ W.swapaxes(1, 2), axis=0))


@pytest.mark.parametrize("seed", [0, 3, 5, 19, 23, 46])
def test_mean_riemann_anderson_spread_sets(seed):
    """The accelerated Karcher iteration on spread sets (condition up to 1e6, scales e^+-4:
    combined iterates that are dropped, halved steps): converged, and the returned mean
    satisfies the Karcher condition sum w log(M^-1/2 X M^-1/2) = 0 to tol, checked in NumPy;
    pyRiemann's descent does not always converge on these."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 12)), int(rng.integers(2, 40))
    X = rand_spd(rng, (m,), n, cond=[None, 1e2, 1e4, 1e6][seed % 4])
    if seed % 5 == 0:
        X = X * np.exp(rng.uniform(-4, 4, m))[:, None, None]
    res = spd.mean_riemann(X, max_iter=100)
    assert res.converged
    assert karcher_residual(res.mean, X) < 1e-8
    with pytest.raises(ValueError, match="method"):
        spd.mean_riemann(X, method="newton")
    with pytest.raises(ValueError, match="method"):
        spd.mean_wasserstein(X, method="newton")


@pytest.mark.parametrize("seed", [263, 275, 277])
def test_mean_riemann_anderson_leaves_domain(seed):
    """Condition 1e8 and scales e^+-8: a plain step with nu = 1 lands on an iterate that
    whitens some X_i to a matrix that is not numerically definite (the kernel refuses it);
    the iteration goes back to its last accepted point with a halved step and converges
    (pyRiemann's descent does not within 300 iterations on 263 and 277)."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    X = rand_spd(rng, (m,), n, cond=1e8) * np.exp(rng.uniform(-8, 8, m))[:, None, None]
    res = spd.mean_riemann(X, max_iter=100)
    assert res.converged
    assert karcher_residual(res.mean, X) < 1e-8


def test_means_large_n_symmetric_path():
    """n > 64 (LAPACK, symmetric square roots): the default iterations (Anderson-accelerated
    Karcher, Alvarez-Esteban's BW) agree with pyRiemann's descent and POT's fixed point run
    tight, in fewer iterations."""
    rng = np.random.default_rng(41)
    G = rng.standard_normal((4, 66, 66)) / np.sqrt(66)
    X = np.eye(66) + 0.4 * (G + G.swapaxes(1, 2)) / 2
    g = spd.mean_riemann(X, method="gradient", tol=1e-11)
    a = spd.mean_riemann(X, tol=1e-11)
    assert a.converged and a.n_iter <= g.n_iter and rel(a.mean, g.mean) < 1e-9
    p = spd.mean_wasserstein(X, method="pot", tol=1e-11)
    b = spd.mean_wasserstein(X, tol=1e-12)
    assert b.converged and b.n_iter < p.n_iter and rel(b.mean, p.mean) < 1e-10


def mixed_group(rng, n=22):
    """Matrices whose QL runs take very different paths, to share one SIMD group (32 lanes):
    the identity, a diagonal with ties, repeated eigenvalues in a random basis, an
    ill-conditioned matrix, block-diagonal ones (the tridiagonal splits: m < n - 1 for some l)
    and EEG-like covariances."""
    mats = [np.eye(n), np.diag(np.repeat([1.0, 2.0, 5.0], [n // 3, n // 3, n - 2 * (n // 3)]))]
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.repeat([1.0, 3.0], [n // 2, n - n // 2])
    mats.append(0.5 * ((Q * lam) @ Q.T + ((Q * lam) @ Q.T).T))
    mats.append(rand_spd(rng, (), n, cond=1e10))
    blk = np.zeros((n, n))
    h = n // 2
    blk[:h, :h] = rand_spd(rng, (), h)
    blk[h:, h:] = rand_spd(rng, (), n - h)
    mats.append(blk)
    mats.append(np.diag(rng.uniform(1, 2, n)))
    X = rng.standard_normal((13, n, 4 * n))
    C = X @ X.swapaxes(1, 2) / (4 * n) + 0.1 * np.eye(n)
    mats.extend(0.5 * (C + C.swapaxes(1, 2)))
    return np.stack(mats)


@pytest.mark.parametrize("seed", [0, 1])
def test_per_lane_deflation_mixed_group(seed):
    """The QL deflates each lane on its own (its own l, m and iteration count): every matrix
    of a group mixing fast and slow QL runs gets exactly its solo result (any position, any
    thread count) and agrees with SciPy per matrix."""
    rng = np.random.default_rng(seed)
    A = mixed_group(rng)
    perm = rng.permutation(len(A))
    w, V = spd.eigh(A, n_jobs=1)
    S = spd.sqrtm(A, n_jobs=1)
    L = spd.logm(A, n_jobs=2)
    D = spd.distance(A, A[-1])
    assert np.array_equal(spd.sqrtm(A[perm], n_jobs=2), S[perm])
    assert np.array_equal(spd.distance(A[perm], A[-1]), D[perm])
    for i in range(len(A)):
        wi, Vi = spd.eigh(A[i])
        assert np.array_equal(wi, w[i]) and np.array_equal(Vi, V[i])
        assert np.array_equal(spd.sqrtm(A[i]), S[i])
        assert np.array_equal(spd.logm(A[i]), L[i])
        wr = sla.eigvalsh(A[i])
        cond = wr[-1] / wr[0]
        assert np.abs(w[i] - wr).max() <= 50 * 22 * 2.2e-16 * wr[-1]
        assert np.abs(V[i].T @ V[i] - np.eye(22)).max() < 1e-13
        tol = 1e-10 * max(1.0, cond * 1e-6)
        assert rel(S[i], sla.sqrtm(A[i]).real) < tol
        assert rel(L[i], sla.logm(A[i]).real) < tol
        if i >= 6:  # well conditioned: the distance against SciPy's generalised eigenvalues
            d = np.sqrt(np.sum(np.log(sla.eigvalsh(A[i], A[-1])) ** 2))
            assert abs(D[i] - d) <= 1e-10 * max(d, 1.0)


@pytest.mark.parametrize("n", [3, 70])  # the C++ kernel and the NumPy path (n > 64)
def test_float32_overflow_is_an_error(n):
    """exp(100) fits float64 but not float32: float32 expm of such a matrix is refused, never
    returned as inf."""
    X = np.full((n, n), 100.0 / n, dtype=np.float32)  # eigenvalue 100, entries >= e^100 / 70
    with pytest.raises(ValueError, match="overflows"):
        spd.expm(X)
    assert np.isfinite(spd.expm(X.astype(np.float64))).all()
    assert np.isfinite(spd.expm(X / 2)).all()  # exp(50) fits float32


def test_lane_group_boundaries():
    """Batches spanning several lane groups (32 matrices each), a partial last group and the
    mean's fixed 64-matrix chunks: every matrix gets exactly its solo result, agrees with SciPy,
    and the mean is the same for one and two threads."""
    rng = np.random.default_rng(31)
    A = np.concatenate([mixed_group(rng), mixed_group(rng), mixed_group(rng), mixed_group(rng)])
    A = A[rng.permutation(len(A))][:70]
    S = spd.sqrtm(A, n_jobs=2)
    w, V = spd.eigh(A, n_jobs=2)
    D = spd.distance(A, A[5])
    for i in (0, 15, 16, 31, 32, 33, 63, 64, 69):
        assert np.array_equal(spd.sqrtm(A[i]), S[i])
        wi, Vi = spd.eigh(A[i])
        assert np.array_equal(wi, w[i]) and np.array_equal(Vi, V[i])
        assert np.array_equal(spd.distance(A[i : i + 1], A[5]), D[i : i + 1])
        wr = sla.eigvalsh(A[i])
        assert np.abs(w[i] - wr).max() <= 50 * 22 * 2.2e-16 * wr[-1]
    X = rng.standard_normal((70, 22, 88))
    C = X @ X.swapaxes(1, 2) / 88 + 0.1 * np.eye(22)
    C = 0.5 * (C + C.swapaxes(1, 2))
    m1 = spd.mean_riemann(C, n_jobs=1)
    assert m1.converged
    assert np.array_equal(m1.mean, spd.mean_riemann(C, n_jobs=2).mean)
    assert np.array_equal(spd.mean_logeuclid(C, n_jobs=1), spd.mean_logeuclid(C, n_jobs=2))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 22, 33])
def test_eigenvalues_only_sorted_like_eigh(n):
    """The eigenvalue-only path sorts all lanes at once (odd-even transposition): ascending,
    bit-identical to the eigenvalues of the path with vectors (the same tridiagonal and QL
    chain, sorted by selection), ties and repeated eigenvalues included, and SciPy's per
    matrix; the distance to a reference (eigenvalues of the congruence) as SciPy's."""
    from geoml.spd import _linalg

    rng = np.random.default_rng(40 + n)
    mats = [np.eye(n), np.diag(np.repeat([2.0, 1.0], [n // 2, n - n // 2]))]
    mats += list(rand_spd(rng, (40,), n, cond=1e6))
    A = np.stack(mats)[rng.permutation(len(mats))]
    w0, _, st0 = _linalg.eigh_batch(A, vectors=False, n_jobs=2)
    w1, _, st1 = _linalg.eigh_batch(A, vectors=True, n_jobs=1)
    assert not st0.any() and not st1.any()
    assert np.array_equal(w0, w1)
    assert np.all(np.diff(w0, axis=-1) >= 0)
    for a, w in zip(A, w0):
        wr = sla.eigvalsh(a)
        assert np.abs(w - wr).max() <= 50 * n * 2.2e-16 * wr[-1]
    X = rand_spd(rng, (40,), n)  # well conditioned: SciPy's generalised eigenvalues as reference
    d = spd.distance(X, X[3])
    ref = [np.sqrt(np.sum(np.log(sla.eigvalsh(x, X[3])) ** 2)) for x in X]
    assert rel(d, np.array(ref)) < 1e-12


def test_mean_iterate_functions_through_lapack():
    """The means' one-matrix steps (``_mean._single``: the iterate's square roots, the
    exponential of the step) run through LAPACK, not a 32-lane group: the lane kernel's and
    SciPy's values, an exactly symmetric result, and the same checks and messages."""
    from geoml.spd import _mean

    rng = np.random.default_rng(41)
    funcs = {"sqrt": spd.sqrtm, "invsqrt": spd.invsqrtm, "log": spd.logm, "exp": spd.expm}
    for n, cond in ((1, None), (5, None), (22, 1e4)):
        A = rand_spd(rng, (), n, cond=cond)
        for func, lanes in funcs.items():
            if func == "exp" and cond is not None:
                continue  # exp(1e4) overflows
            F = _mean._single(A, func)
            assert F.dtype == np.float64 and np.array_equal(F, F.T)
            assert rel(F, lanes(A)) < 1e-12
        assert rel(_mean._single(A, "sqrt"), sla.sqrtm(A).real) < 1e-12
        assert rel(_mean._single(A, "power", 0.3), sla.fractional_matrix_power(A, 0.3).real) < 1e-12
    S = rand_sym(rng, 1, 6)[0]
    assert rel(_mean._single(S, "exp"), sla.expm(S)) < 1e-12
    with pytest.raises(ValueError, match="mean is not positive definite"):
        _mean._single(S - 10 * np.eye(6), "sqrt")
    with pytest.raises(ValueError, match="mean contains NaN"):
        _mean._single(np.full((3, 3), np.nan), "log")
    with pytest.raises(ValueError, match="mean overflows"):
        _mean._single(1e3 * np.eye(3), "exp")


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-160, 1e160, 1e250])
@pytest.mark.parametrize("metric", ["euclid", "wasserstein"])
def test_distances_of_tiny_and_huge_matrices(metric, scale):
    """Euclidean and Bures-Wasserstein distances are homogeneous (degree 1 and 1/2): the
    same matrices scaled by 1e-300 ... 1e250 give the unit-scale distances times ``s`` and
    ``sqrt(s)`` (``distance`` and ``pairwise_distance``). Before, the squares left float64:
    the Euclidean distance of 1e-200 matrices was 0 (silently), of 1e-160 ones 1e-5 off,
    the Bures-Wasserstein one raised "not numerically once whitened", and both raised an
    overflow from 1e155 on, where the distances themselves are finite."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 4, 4)))
    X = np.einsum("bij,bj,bkj->bik", Q, np.exp(rng.uniform(0, 2, (6, 4))), Q)
    q = 1.0 if metric == "euclid" else 0.5
    f = scale**q
    ref = spd.distance(X[:4], X[4], metric=metric)
    got = spd.distance(X[:4] * scale, X[4] * scale, metric=metric)
    np.testing.assert_allclose(got / f, ref, rtol=1e-12)
    got = spd.distance(X[:3] * scale, X[3:] * scale, metric=metric)  # a batch of B
    np.testing.assert_allclose(got / f, spd.distance(X[:3], X[3:], metric=metric), rtol=1e-12)
    ref = spd.pairwise_distance(X[:4], X[4:], metric=metric)
    got = spd.pairwise_distance(X[:4] * scale, X[4:] * scale, metric=metric)
    np.testing.assert_allclose(got / f, ref, rtol=1e-12)
    ref = spd.pairwise_distance(X, metric=metric)
    got = spd.pairwise_distance(X * scale, metric=metric)
    np.testing.assert_allclose(got / f, ref, rtol=1e-12, atol=1e-14 * ref.max())
    assert np.all(np.diag(got) == 0)
    if metric == "euclid":  # the squares where they are in range
        sq = spd.distance(X[:4] * 1e-150, X[4] * 1e-150, metric=metric, squared=True)
        ref = spd.distance(X[:4], X[4], metric=metric, squared=True)
        np.testing.assert_allclose(sq / 1e-300, ref, rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-12, 1e-10, 1e200, 1e300])
def test_bw_barycenter_of_small_and_huge_covariances(scale):
    """The Bures-Wasserstein barycenter is equivariant: ``mean(s X) = s mean(X)`` to
    1e-9 relative at covariance scales from 1e-300 to 1e300. Before, the default absolute
    tol 1e-10 stopped covariances of scale 1e-10 (EEG in volts) after 2 steps 0.3 % off
    (1.5 % at 1e-12) with converged=True, 1e-200 matrices were refused ("not numerically
    once whitened") and 1e200 ones overflowed."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 8, 8)))
    X = np.einsum("bij,bj,bkj->bik", Q, np.exp(rng.uniform(0, np.log(100), (20, 8))), Q)
    w = rng.random(20)
    for weights in (None, w):
        ref = spd.mean_wasserstein(X, weights, tol=1e-13)
        got = spd.mean_wasserstein(X * scale, weights)
        assert got.converged
        rel = np.abs(got.mean / scale - ref.mean).max() / np.abs(ref.mean).max()
        assert rel <= 1e-9
    got = spd.mean(np.stack([X, X[::-1]]) * scale, metric="wasserstein")  # two sets
    ref = spd.mean_wasserstein(X, tol=1e-13).mean
    assert np.abs(got / scale - ref).max() / np.abs(ref).max() <= 1e-9


@pytest.mark.parametrize("metric", ["riemann", "wasserstein"])
def test_mean_names_the_nan_matrix(metric):
    """A NaN in one input matrix of the Karcher / BW mean names that matrix (it said "mean
    contains NaN or infinity": the start, a weighted sum, carried it), as the log-Euclidean
    mean and the distances do; in a batch of sets, by set and position."""
    rng = np.random.default_rng(0)
    S = rng.standard_normal((6, 3, 3))
    S = S @ S.transpose(0, 2, 1) + np.eye(3)
    bad = S.copy()
    bad[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[2\] contains NaN or infinity"):
        spd.mean(bad, metric=metric)
    with pytest.raises(ValueError, match=r"X\[1, 2\] contains NaN or infinity"):
        spd.mean(np.stack([S, bad]), metric=metric)


def test_estimators_name_the_input_form_they_were_fitted_on():
    """One 4 x 4 matrix given to an MDM fitted on 4 x 4 matrices was read as 2-D input and
    refused with "X has 4 features, but MDM is expecting 4 features"."""
    rng = np.random.default_rng(23)
    A = rng.standard_normal((10, 4, 8))
    X = A @ A.transpose(0, 2, 1) / 8
    y = np.arange(10) % 2
    for est in (spd.MDM().fit(X, y), spd.TangentSpace().fit(X)):
        with pytest.raises(ValueError, match=r"fitted on SPD matrices .*C\[None\]"):
            est.transform(X[0])
    with pytest.raises(ValueError, match="fitted on 2-D input"):
        spd.MDM().fit(rng.standard_normal((10, 3)), y).predict(X[:, :3, :3])


def test_bw_maps_and_estimators_at_small_and_large_scales():
    """The BW log / exp maps are homogeneous of degree 1 and the BW mean equivariant: the
    maps of 1e-200 matrices were refused ("X[0] is not positive definite": C^1/2 X C^1/2
    underflowed), and MDM / TangentSpace(metric="wasserstein") took their class means with an
    absolute tol of 1e-10, so covariances of 1e-20 gave tangent vectors 0.1 % off."""
    rng = np.random.default_rng(24)
    A = rng.standard_normal((12, 4, 20))
    X = A @ A.transpose(0, 2, 1) / 20
    T0 = spd.log_map(X[1], X[0], metric="wasserstein")
    E0 = spd.exp_map(T0, X[0], metric="wasserstein")
    ts0 = spd.TangentSpace(metric="wasserstein").fit(X).transform(X)
    y = np.arange(12) % 2
    d0 = spd.MDM(metric="wasserstein").fit(X, y).transform(X)
    for s in (1e-300, 1e-200, 1e-20, 1e200):
        T = spd.log_map(X[1] * s, X[0] * s, metric="wasserstein")
        assert np.allclose(T / s, T0, rtol=1e-12, atol=1e-12 * np.abs(T0).max())
        E = spd.exp_map(T0 * s, X[0] * s, metric="wasserstein")
        assert np.allclose(E / s, E0, rtol=1e-12, atol=1e-12 * np.abs(E0).max())
        ts = spd.TangentSpace(metric="wasserstein").fit(X * s).transform(X * s)
        assert np.allclose(ts / s, ts0, rtol=1e-8, atol=1e-8 * np.abs(ts0).max())
        d = spd.MDM(metric="wasserstein").fit(X * s, y).transform(X * s)
        assert np.allclose(d / np.sqrt(s), d0, rtol=1e-8, atol=0)


# ----------------------------------------------------------------------------- session 29 audit
@pytest.mark.parametrize("n", [3, 70])
def test_empty_batches_of_pairs_sets_and_vectors(n):
    """Empty batches give empty results, as the matrix functions do: ``distance`` of an empty
    paired batch ("riemann", "wasserstein") raised the kernel's "M must have shape (K, n, n)",
    ``pairwise_distance`` with an empty set ("logeuclid", "euclid") "cannot reshape array of
    size 0", the means of ``(0, m, n, n)`` an IndexError (``np.stack([])``), and the BW
    transport of no vector between non-commuting points a reshape error."""
    rng = np.random.default_rng(29)
    X = rand_spd(rng, (4,), n)
    E = X[:0]
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        for p in (1.0, 0.5):
            d = spd.distance(E, E, metric, p=p)
            assert d.shape == (0,) and d.dtype == np.float64
        assert spd.distance(E.reshape(0, 2, n, n), E.reshape(0, 2, n, n), metric).shape == (0, 2)
        assert spd.distance(E.astype(np.float32), E.astype(np.float32), metric).dtype == np.float32
        assert spd.pairwise_distance(E, X, metric).shape == (0, 4)
        assert spd.pairwise_distance(X, E, metric).shape == (4, 0)
        assert spd.pairwise_distance(E, None, metric).shape == (0, 0)
    for f in (spd.mean_riemann, spd.mean_wasserstein):
        res = f(np.zeros((0, 3, n, n)))
        assert res.mean.shape == (0, n, n)
        assert res.n_iter.shape == (0,) and res.n_iter.dtype == np.int64
        assert res.converged.shape == (0,) and res.converged.dtype == bool
        res = f(np.zeros((2, 0, 3, n, n), dtype=np.float32))
        assert res.mean.shape == (2, 0, n, n) and res.mean.dtype == np.float32
        assert res.converged.shape == (2, 0)
    assert spd.mean_logeuclid(np.zeros((0, 3, n, n))).shape == (0, n, n)
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        assert spd.mean(np.zeros((0, 3, n, n)), metric=metric).shape == (0, n, n)
    A, B = X[0], X[1]
    assert np.linalg.norm(A @ B - B @ A) > 1e-3  # the integrated (non-commuting) BW case
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        assert spd.transport(np.zeros((0, n, n)), A, B, metric).shape == (0, n, n)
        assert spd.transport(np.zeros((2, 0, n, n)), A, B, metric).shape == (2, 0, n, n)


@pytest.mark.parametrize("f", [spd.mean_riemann, spd.mean_wasserstein])
def test_mean_init_is_checked_as_init(f):
    """An ``init`` that is not SPD, not finite or not symmetric is refused as ``init``: it was
    reported as the iterate ("mean is not positive definite", "mean contains NaN")."""
    X = rand_spd(np.random.default_rng(30), (5,), 4)
    with pytest.raises(ValueError, match=r"^init is not positive definite"):
        f(X, init=-np.eye(4))
    with pytest.raises(ValueError, match=r"^init contains NaN or infinity"):
        f(X, init=np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match=r"^init is not symmetric"):
        f(X, init=np.triu(np.ones((4, 4))) + np.eye(4))
    ref = f(X).mean
    for init in (np.eye(4), np.eye(4, dtype=np.float32), X[0]):
        assert rel(f(X, init=init).mean, ref) < 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("metric", ["riemann", "logeuclid", "wasserstein", "euclid"])
def test_means_name_the_matrix_in_a_batch_of_sets(metric, dtype):
    """The means of a batch of sets named a matrix that is not SPD by its index within its
    set ("X[1]" for X[1, 1]; float32: by its flat index, "X[4]"), as NaN was already named
    ("X[1, 1]"); now by its index in X."""
    X = rand_spd(np.random.default_rng(31), (2, 3), 4, dtype=dtype)
    X[1, 1] = -np.eye(4)
    with pytest.raises(ValueError, match=r"^X\[1, 1\] is not positive definite"):
        spd.mean(X, metric=metric)
    with pytest.raises(ValueError, match=r"^X\[0, 1, 1\] is not positive definite"):
        spd.mean(X[None], metric=metric)
    with pytest.raises(ValueError, match=r"^X\[1\] is not positive definite"):
        spd.mean(X[1], metric=metric)


@pytest.mark.parametrize("metric", ["riemann", "logeuclid", "wasserstein"])
def test_mdm_names_the_bad_matrix_by_its_index_in_x(metric):
    """``MDM.fit`` named a matrix that is not SPD by its index within its class (``X[3]`` for
    ``X[7]`` of the second class) and ``predict`` / ``transform`` / ``predict_proba`` as
    ``A[i]`` (the argument name of ``distance``); both now say ``X[7]``."""
    rng = np.random.default_rng(32)
    X = rand_spd(rng, (12,), 4)
    y = np.array(["a", "b"] * 6)
    bad = X.copy()
    bad[7] = -np.eye(4)
    msg = r"^X\[7\] is not positive definite"
    with pytest.raises(ValueError, match=msg):
        spd.MDM(metric=metric).fit(bad, y)
    mdm = spd.MDM(metric=metric).fit(X, y)
    for method in (mdm.predict, mdm.transform, mdm.predict_proba):
        with pytest.raises(ValueError, match=msg):
            method(bad)
    with pytest.raises(ValueError, match="the sample weights of a class are all zero"):
        spd.MDM(metric=metric).fit(X, y, sample_weight=(y == "a").astype(float))


def test_estimators_warn_when_a_mean_does_not_converge():
    """``MDM`` and ``TangentSpace`` silenced the ConvergenceWarning of their means (a class
    of condition-1e12 matrices: the Karcher mean stops at ||J|| ~ 1e-6 after 50 iterations,
    8e-7 from the converged mean), where pyRiemann warns; the means' warnings pointed at
    NumPy's errstate wrapper instead of the caller."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rand_spd(rng, (10,), 8, cond=1e12), rand_spd(rng, (10,), 8)])
    y = np.repeat([0, 1], 10)
    with pytest.warns(spd.ConvergenceWarning, match="mean_riemann") as rec:
        spd.mean_riemann(X[:10])
    assert rec[0].filename == __file__
    with pytest.warns(spd.ConvergenceWarning) as rec:
        spd.mean_wasserstein(X[:10], max_iter=2)
    assert rec[0].filename == __file__
    with pytest.warns(spd.ConvergenceWarning, match="mean_riemann"):
        spd.MDM().fit(X, y)
    with pytest.warns(spd.ConvergenceWarning, match="mean_riemann"):
        spd.TangentSpace().fit(X[:10])
    with warnings.catch_warnings():  # well-conditioned classes: quiet
        warnings.simplefilter("error")
        spd.MDM().fit(X[10:], y[10:] + np.arange(10) % 2)


@pytest.mark.parametrize("estimator", ["scm", "lwf", "oas"])
def test_covariances_that_underflow_are_refused(estimator):
    """The covariance of float64 data of 1e-200 (1e-400) or of float32 data of 1e-20 is not
    representable: zero (or subnormal) matrices were returned, silently, where an overflow is
    a ValueError. A channel that varies but whose variance is below the smallest normal
    number now is one too; constant channels (variance 0) and ordinary scales are unchanged."""
    X = np.random.default_rng(33).standard_normal((4, 5, 30))
    for Xs in (X * 1e-200, X * 1e-160, (X * 1e-20).astype(np.float32)):
        with pytest.raises(ValueError, match=r"^covariances underflows: .* of X\[0\]"):
            spd.covariances(Xs, estimator)
    mixed = X.copy()
    mixed[2] *= 1e-200
    with pytest.raises(ValueError, match=r"of X\[2\] is below the smallest normal float64"):
        spd.covariances(mixed, estimator)
    with pytest.raises(ValueError, match=r"of X\[1, 0\]"):
        spd.covariances(mixed.reshape(2, 2, 5, 30), estimator)
    with pytest.raises(ValueError, match="underflows"):
        spd.augmented_covariances(X * 1e-200, order=2, estimator=estimator)
    ref = spd.covariances(X, estimator)
    assert np.allclose(spd.covariances(X * 1e-150, estimator) / 1e-300, ref, rtol=1e-13)
    assert np.allclose(spd.covariances((X * 1e-15).astype(np.float32), estimator) / 1e-30, ref)
    C = spd.covariances(np.concatenate([X[:, :2], np.zeros((4, 1, 30))], axis=1), estimator)
    assert C.shape == (4, 3, 3) and np.isfinite(C).all()  # a constant channel: no error
    assert np.array_equal(spd.covariances(np.ones((2, 3, 10)), estimator), np.zeros((2, 3, 3)))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 8, 9, 22, 63, 64, 65])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_q_accumulation_block_boundaries(any_isa, n, dtype):
    """tred2's Q accumulated 4 reflectors at a time (compact WY; JAMA's loop above n = 64):
    sizes at and around the block boundaries (n - 1 reflectors: 0, 1, 2, 3 = a block - 1, a
    block, a block + 1, ...) on every ISA, float64 and float32: eigenvectors orthonormal and
    reconstructing the matrix, sqrtm and logm against SciPy per matrix, every matrix's result
    the same alone, in a 37-matrix batch (two lane groups) and on one or two threads."""
    rng = np.random.default_rng(n)
    A = rand_spd(rng, (37,), n, cond=1e3)
    A[3] = np.eye(n)  # every reflector h = 0 (the identity's columns are zero below)
    A = A.astype(dtype)
    Ad = A.astype(np.float64)
    tol = 1e-10 if dtype == np.float64 else 2e-6
    w, V = spd.eigh(A, n_jobs=2)
    Vd = V.astype(np.float64)
    assert np.abs(Vd.swapaxes(1, 2) @ Vd - np.eye(n)).max() <= (
        50 * n * 2.2e-16 if dtype == np.float64 else tol
    )
    R = (Vd * w.astype(np.float64)[:, None, :]) @ Vd.swapaxes(1, 2)
    assert np.abs(R - Ad).max() <= tol * np.abs(Ad).max()
    S = spd.sqrtm(A, n_jobs=2)
    Lg = spd.logm(A, n_jobs=2)
    for b in range(0, len(A), 4):  # SciPy on 10 of them
        Sr = np.real(sla.sqrtm(Ad[b]))
        assert rel(S[b].astype(np.float64), Sr) <= tol
        Lr = np.real(sla.logm(Ad[b]))
        assert np.abs(Lg[b].astype(np.float64) - Lr).max() <= tol * max(np.abs(Lr).max(), 1.0)
    assert np.array_equal(spd.sqrtm(A, n_jobs=1), S)
    assert np.array_equal(spd.logm(A, n_jobs=1), Lg)
    for b in (0, 3, 31, 32, 36):
        assert np.array_equal(spd.sqrtm(A[b]), S[b])
        wb, Vb = spd.eigh(A[b])
        assert np.array_equal(wb, w[b]) and np.array_equal(Vb, V[b])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 3, 22])
def test_funm_output_block_refused_lanes(n, dtype):
    """_core.spd_funm writes each lane group's outputs as one contiguous block (assembled in
    the scratch, then streamed out): three groups (70 matrices, the last partial) with
    refused matrices in several lanes (not symmetric, not finite, not positive definite) give
    those statuses and NaN there, and every other matrix the same bits as alone and its
    SciPy square root; one and two threads."""
    from geoml import _core

    rng = np.random.default_rng(n)
    A = rand_spd(rng, (70,), n, cond=1e2).astype(dtype)
    A[5] = -np.eye(n, dtype=dtype)  # not positive definite
    A[33, 0, 0] = np.nan
    if n > 1:
        A[40, 0, n - 1] += 1  # not symmetric
    A[69] = -A[69]
    bad = [5, 33, 69] + ([40] if n > 1 else [])
    none = np.empty((0, n, n), dtype=dtype)
    for n_jobs in (1, 2):
        F, st = _core.spd_funm(A, none, func=_core.SpdFunc["sqrt"], n_jobs=n_jobs)
        assert F.dtype == dtype and F.shape == A.shape and F.flags.c_contiguous
        ok = np.ones(len(A), dtype=bool)
        ok[bad] = False
        assert (st[~ok] != 0).all() and (st[ok] == 0).all()
        assert np.isnan(F[~ok]).all()
        for b in np.flatnonzero(ok):
            Fb, sb = _core.spd_funm(A[b : b + 1], none, func=_core.SpdFunc["sqrt"])
            assert sb[0] == 0 and np.array_equal(Fb[0], F[b])
        Sr = np.stack([np.real(sla.sqrtm(a)) for a in A[ok].astype(np.float64)])
        tol = 1e-12 if dtype == np.float64 else 2e-6
        assert rel(F[ok].astype(np.float64), Sr) <= tol


def _audit_spd(n, m, cond, seed):
    """The audit's generator: eigenvalues log-uniform over [1, cond], random eigenvectors."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((m, n, n)))[0]
    w = np.exp(rng.uniform(0, np.log(cond), (m, n)))
    return (Q * w[..., None, :]) @ Q.swapaxes(-1, -2)


@pytest.mark.parametrize("cond", [1e8, 1e10])
def test_mean_wasserstein_stops_at_the_rounding_floor(cond):
    """On ill-conditioned sets the BW fixed point's steps stall at rounding noise (~0.1 eps
    sqrt(cond) ||C||) above the floor 10 n eps ||C||: converged=False after 1000 iterations
    and a ConvergenceWarning on a mean converged to rounding (condition 1e8: 7 of 12 seeds,
    1e10: 11 of 12). The stall is recognised and certified now; the mean is the same (within
    the noise) as the one 1000 iterations reached, and within 1e-10 of POT's."""
    sets = [_audit_spd(6, 20, cond, seed) for seed in range(12)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning
        res = [spd.mean_wasserstein(X) for X in sets]
    assert all(r.converged for r in res)
    assert max(int(r.n_iter) for r in res) < 300
    # batched over sets: the same iterates per set
    batch = spd.mean_wasserstein(np.stack(sets[:4]))
    assert batch.converged.all()
    assert np.array_equal(batch.mean, np.stack([r.mean for r in res[:4]]))
    # a certified stall is no licence for a short run: stopped by max_iter still warns
    with pytest.warns(spd.ConvergenceWarning):
        assert not spd.mean_wasserstein(sets[0], max_iter=20).converged
    ot = pytest.importorskip("ot")
    # (POT runs all num_iter, its eps not reached; cond 1e10 needs 20000: one set, 3 s)
    k, num_iter = (3, 2000) if cond == 1e8 else (1, 20000)
    for X, r in zip(sets[:k], res[:k]):
        ref = ot.gaussian.bures_wasserstein_barycenter(
            np.zeros((20, 6)), X, num_iter=num_iter, eps=1e-15
        )[1]
        assert np.linalg.norm(r.mean - ref) <= 1e-10 * np.linalg.norm(ref)


@pytest.mark.parametrize("estimator", ["scm", "lwf", "oas"])
def test_covariances_of_an_empty_batch(estimator):
    """``covariances`` of shape (0, c, t) raised "X is empty" while the matrix functions
    accept empty batches: an empty batch of trials gives an empty batch of (c, c) matrices
    (augmented_covariances likewise); no channel or too few samples stay errors."""
    for dt in (np.float64, np.float32):
        for shape in [(0, 3, 10), (2, 0, 3, 10), (0, 1, 10)]:
            out = spd.covariances(np.zeros(shape, dt), estimator)
            assert out.shape == shape[:-1] + (shape[-2],) and out.dtype == dt
        out = spd.augmented_covariances(np.zeros((0, 3, 10), dt), 3, 2, estimator)
        assert out.shape == (0, 9, 9) and out.dtype == dt
    # the empty result composes with the matrix functions' empty batches
    assert spd.logm(spd.covariances(np.zeros((0, 4, 20)), estimator)).shape == (0, 4, 4)
    for shape, msg in [((3, 0, 10), "empty"), ((0, 3, 1), "2 time samples"), ((0,), "shape")]:
        with pytest.raises(ValueError, match=msg):
            spd.covariances(np.zeros(shape), estimator)
    with pytest.raises(ValueError, match="leaves 0 samples"):
        spd.augmented_covariances(np.zeros((0, 3, 6)), 3, 2, estimator)


def test_mean_riemann_gradient_retreats_from_iterates_outside_the_domain():
    """Sets of condition ~1e12 (eigenvalues log-uniform) where pyRiemann's gradient descent
    runs: geoml's gradient method raised "X[i] is positive definite, but not numerically once
    whitened" at its third or fourth iterate (the step overshoots to an iterate of condition
    ~1e6, where the whitened X_i pass 1 / (n eps)); the Anderson method goes back with nu
    halved there. The whitening check is right (that logarithm has no correct digit); the
    gradient method now retreats the same way: every set gives a mean, within 1e-5 of
    Anderson's and of pyRiemann's (none reaches tol = 1e-8 at this condition: a
    ConvergenceWarning, converged False)."""
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((4, 10, 8, 8)))[0]
    X = (Q * np.exp(rng.uniform(0, np.log(1e12), (4, 10, 1, 8)))) @ Q.swapaxes(-1, -2)
    with pytest.warns(spd.ConvergenceWarning, match="4 of 4"):
        g = spd.mean_riemann(X, method="gradient", max_iter=300)
    with pytest.warns(spd.ConvergenceWarning, match="4 of 4"):
        a = spd.mean_riemann(X, method="anderson", max_iter=300)
    assert not g.converged.any() and not a.converged.any()
    for s in range(4):
        # the Riemannian gradient at the mean is small, and the two means agree
        assert np.linalg.norm(spd.log_map(X[s], g.mean[s]).mean(axis=0)) < 1e-5
        assert float(spd.distance(g.mean[s], a.mean[s])) < 1e-5
    # a start outside the domain is still the input's error
    with pytest.raises(ValueError, match="not numerically once whitened"):
        spd.mean_riemann(X[0], method="gradient", init=np.diag(np.logspace(0, 12, 8)))
    try:
        from pyriemann.geometry.mean import mean_riemann as pyr_mean
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (its own convergence warning)
        refs = [pyr_mean(X[s]) for s in range(4)]
    for s in range(4):
        assert float(spd.distance(g.mean[s], refs[s])) < 1e-5


def test_estimator_means_do_not_advise_max_iter(monkeypatch):
    """MDM and TangentSpace have no max_iter or tol: a class / reference mean that stopped
    short (forced here) warned "increase max_iter or tol"; now it names the estimator and
    says the mean is the last iterate. mean_riemann itself still advises its parameters."""
    import geoml.spd._mean as mean_mod

    orig = mean_mod._karcher_anderson
    monkeypatch.setattr(mean_mod, "_karcher_anderson", lambda *a: (*orig(*a)[:2], False))
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 4, 4))
    X = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(4)
    y = np.repeat([0, 1], 10)
    for est in (spd.MDM(), spd.TangentSpace(), spd.TangentSpace(tsupdate=True)):
        with pytest.warns(spd.ConvergenceWarning) as got:
            est.fit(X, y)
            if getattr(est, "tsupdate", False):
                est.transform(X)
        name = type(est).__name__
        for w in got:
            msg = str(w.message)
            assert "max_iter" in msg and f"{name} has no max_iter or tol" in msg, msg
            assert "increase" not in msg, msg
    with pytest.warns(spd.ConvergenceWarning, match="increase max_iter or tol"):
        spd.mean_riemann(X)


def test_bures_wasserstein_takes_ill_conditioned_pairs_as_semi_definite():
    """The Bures-Wasserstein passes whiten by a square root (``B^1/2 A B^1/2``) and take only
    the square root of that positive semi-definite product; they refused it where the
    condition numbers of ``A`` and ``B`` multiply beyond 1 / eps (the affine-invariant rule,
    which takes its logarithm): ``distance(A, A, "wasserstein")`` of ``A = diag(1, 1e-8)``,
    ``pairwise_distance(X, metric="wasserstein")`` of any set holding one matrix of
    condition ~1e8 (its pair with itself), ``log_map`` (as "X[0] is not positive definite"
    of an SPD X), ``mean_wasserstein`` and ``MDM(metric="wasserstein")`` of sets of condition
    1e9, all of which pyRiemann and POT compute. Checked against the closed forms of
    commuting matrices (``Q diag(a) Q^T``: the distance ``||sqrt(a) - sqrt(b)||``, the map
    ``Q diag(2 sqrt(a c) - 2 c) Q^T``, the barycenter ``Q diag((sum w sqrt(a))^2) Q^T``);
    input that is not SPD keeps its own error."""
    rng = np.random.default_rng(7)
    n = 5
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    spec = np.exp(rng.uniform(np.log(1e-9), 0, (6, n)))
    spec[:, 0], spec[:, -1] = 1e-9, 1.0  # condition 1e9: products up to 1e18
    X = (Q * spec[:, None, :]) @ Q.T
    X = 0.5 * (X + X.swapaxes(-1, -2))
    root = np.sqrt(spec)
    D = np.linalg.norm(root[:, None, :] - root[None, :, :], axis=-1)
    A = np.diag([1.0, 1e-8])
    assert float(spd.distance(A, A, "wasserstein")) == pytest.approx(0.0, abs=1e-7)
    tr = np.trace(X, axis1=-2, axis2=-1)
    # the trace formula's rounding (pyRiemann's and POT's): the roots of the products'
    # eigenvalues near 0 are accurate to sqrt(eps ||B^1/2 A B^1/2||) each, on the squares
    D2, atol = D**2, 4 * n * np.sqrt(np.finfo(float).eps) * tr.max()
    sq = {"metric": "wasserstein", "squared": True}
    np.testing.assert_allclose(spd.distance(X, X[0], **sq), D2[:, 0], atol=atol)
    np.testing.assert_allclose(spd.distance(X, X[::-1], **sq), D2[:, ::-1].diagonal(), atol=atol)
    np.testing.assert_allclose(spd.pairwise_distance(X, **sq), D2, atol=atol)
    np.testing.assert_allclose(spd.pairwise_distance(X, X[:2], **sq), D2[:, :2], atol=atol)
    L = spd.log_map(X, X[1], "wasserstein")
    Lref = (Q * (2 * np.sqrt(spec * spec[1]) - 2 * spec[1])[:, None, :]) @ Q.T
    np.testing.assert_allclose(L, Lref, atol=1e-7 * tr.max())
    np.testing.assert_allclose(spd.log_map(X, X, "wasserstein"), 0.0, atol=1e-7 * tr.max())

    # a mean: random sets of condition 3e8 whose iterates whiten some X_i beyond 1 / eps
    # (refused before: "X[i] is positive definite, but not numerically once whitened");
    # the barycenter's fixed-point equation holds to 1e-8 (where the steps stall above tol:
    # converged False, with the warning)
    def sqrtm_psd(M):
        lam, V = np.linalg.eigh(0.5 * (M + M.T))
        return (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T

    for seed in (8, 14):
        Qs = np.linalg.qr(np.random.default_rng(seed).standard_normal((6, 4, 4)))[0]
        S = (Qs * np.logspace(0, -8.5, 4)) @ Qs.swapaxes(-1, -2)
        S = 0.5 * (S + S.swapaxes(-1, -2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", spd.ConvergenceWarning)
            C = spd.mean_wasserstein(S).mean
            Dm = spd.MDM(metric="wasserstein").fit(S, [0, 0, 0, 1, 1, 1]).transform(S)
        C12 = sqrtm_psd(C)
        F = sum(sqrtm_psd(C12 @ x @ C12) for x in S) / len(S)
        assert np.linalg.norm(F - C) <= 1e-8 * np.linalg.norm(C)
        assert Dm.shape == (6, 2) and np.isfinite(Dm).all()
    # input that is not SPD: its own error, not a semi-definite product
    bad = X.copy()
    bad[2] = Q @ np.diag([-1e-3] + [1.0] * (n - 1)) @ Q.T
    with pytest.raises(ValueError, match=r"A\[2\] is not positive definite"):
        spd.distance(bad, X[0], "wasserstein")
    with pytest.raises(ValueError, match=r"X\[2\] is not positive definite"):
        spd.pairwise_distance(bad, metric="wasserstein")
    with pytest.raises(ValueError, match=r"X\[2\] is not positive definite"):
        spd.log_map(bad, X[0], "wasserstein")
    S[2] = (Qs[2] * np.array([1.0, 0.5, 0.1, -1e-6])) @ Qs[2].T  # (the mean stays SPD)
    with pytest.raises(ValueError, match=r"X\[2\] is not positive definite"):
        spd.mean_wasserstein(S)


def test_real_parameters_are_checked_as_numbers():
    """``p`` (``powm``, ``distance``, ``pairwise_distance``) was read by ``float``: ``p="2"``
    and ``p=[2.0]`` were taken as 2; ``transport``'s ``tol`` refused ``np.float32(1e-8)`` and
    took ``True``; ``MDM`` / ``TangentSpace`` read ``sample_weight=["1", ...]`` as numbers
    (the means' ``weights`` refuse strings). Now, as the Ricci estimators' parameters
    (session 29): a real number (NumPy scalars and 0-d arrays included), else a
    ``TypeError``."""
    rng = np.random.default_rng(3)
    X = rand_spd(rng, (6,), 3)
    T = rand_sym(rng, 2, 3)
    for bad in ("2", [2.0], np.array([2.0]), True, None, 1j):
        with pytest.raises(TypeError, match="p must be a real number"):
            spd.powm(X, bad)
        with pytest.raises(TypeError, match="p must be a real number"):
            spd.distance(X, X[0], "wasserstein", p=bad)
        with pytest.raises(TypeError, match="p must be a real number"):
            spd.pairwise_distance(X, metric="riemann", p=bad)
    for good in (np.float32(0.5), np.array(0.5), np.int64(2)):
        assert rel(spd.powm(X, good), spd.powm(X, float(good))) == 0
    for bad in ("1e-8", True, None):
        with pytest.raises(TypeError, match="tol must be a real number"):
            spd.transport(T, X[0], X[1], "wasserstein", tol=bad)
    with pytest.raises(ValueError, match=r"tol must be a number in \(0, 1\)"):
        spd.transport(T, X[0], X[1], "wasserstein", tol=float("nan"))
    out = spd.transport(T, X[0], X[1], "wasserstein", tol=np.float32(1e-8))
    assert rel(out, spd.transport(T, X[0], X[1], "wasserstein", tol=1e-8)) < 1e-7
    y = [0, 1, 0, 1, 0, 1]
    for est in (spd.MDM(), spd.TangentSpace()):
        with pytest.raises(TypeError, match="sample_weight must hold real numbers"):
            est.fit(X, y, sample_weight=["1"] * 6)
        est.fit(X, y, sample_weight=[True] * 6)  # (bool and int weights: numbers)
        est.fit(X, y, sample_weight=np.arange(1, 7))


def test_bures_wasserstein_distance_of_nearby_matrices():
    """The trace formula ``tr A + tr B - 2 tr(B^1/2 A B^1/2)^1/2`` (pyRiemann's and POT's)
    cancels for nearby matrices: its squared distance is off by ~``n eps tr``, so ``B = A +
    1e-6 E`` got a distance 3 % off, ``1e-8 E`` 100 % (0, or twice it), ``1e-10 E`` 1000x,
    silently. Squared distances below ``1e-4 (tr A + tr B)`` are now recomputed by the polar
    form ``||A^1/2 - B^1/2 W||_F`` (``W`` the polar factor of ``B^1/2 A^1/2``). Against the
    closed form of commuting pairs (``||(b - a) / (sqrt(a) + sqrt(b))||``), in ``distance``
    (one reference, a batch of references, squared), ``pairwise_distance`` (``Y`` given and
    not) and the power-deformed distance; pairs far apart keep the trace formula (the same
    values)."""
    rng = np.random.default_rng(11)
    n = 6
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    a = np.exp(rng.uniform(0, np.log(1e4), n))
    deltas = np.array([1e-3, 1e-5, 1e-6, 1e-7, 1e-8])
    b = a * (1 + deltas[:, None] * rng.uniform(0.5, 1.0, (len(deltas), n)))
    spec = np.vstack([a, b])
    X = (Q * spec[:, None, :]) @ Q.T
    X = 0.5 * (X + X.swapaxes(-1, -2))
    ra, rb = np.sqrt(a), np.sqrt(b)
    ref = np.linalg.norm((b - a) / (ra + rb), axis=1)
    got = spd.distance(X[1:], X[0], "wasserstein")
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    np.testing.assert_allclose(spd.distance(X[0], X[1:], "wasserstein"), ref, rtol=1e-6)
    np.testing.assert_allclose(
        spd.distance(X[1:], X[0], "wasserstein", squared=True), ref**2, rtol=2e-6
    )
    P = spd.pairwise_distance(X, metric="wasserstein")
    np.testing.assert_allclose(P[0, 1:], ref, rtol=1e-6)
    np.testing.assert_allclose(P[1:, 0], ref, rtol=1e-6)
    np.testing.assert_allclose(
        spd.pairwise_distance(X[1:], X[:1], "wasserstein")[:, 0], ref, rtol=1e-6
    )
    # power-deformed (p = 2: ||A - B||_F / 2 for commuting pairs)
    refp = np.linalg.norm(b - a, axis=1) / 2
    np.testing.assert_allclose(spd.distance(X[1:], X[0], "wasserstein", p=2.0), refp, rtol=1e-6)
    # far pairs: the trace formula, untouched
    far = rand_spd(rng, (4,), n)
    D = spd.pairwise_distance(far, metric="wasserstein")
    B12 = sla.sqrtm(far[0])
    for i in range(1, 4):
        w = np.linalg.eigvalsh(B12 @ far[i] @ B12)
        d2 = np.trace(far[i]) + np.trace(far[0]) - 2 * np.sqrt(w).sum()
        assert abs(D[i, 0] - np.sqrt(d2)) <= 1e-12 * np.sqrt(d2)


def test_bw_transport_of_ill_conditioned_points_warns_when_not_an_isometry():
    """The integrated Bures-Wasserstein transport (non-commuting points) doubles its step
    count until two runs agree to ``tol``: that measures the discretisation, not the rounding
    that ill-conditioned points amplify. Between two 4 x 4 points of condition 1e8 the
    squared BW norms of the transported vectors changed by ~5 % (an exact parallel transport
    keeps them), with no warning. A ``RuntimeWarning`` now says so (squared norms checked
    against the closed form ``sum X'_ij^2 / (2 (s_i + s_j))``, tolerance 1e-6);
    well-conditioned points transport quietly, isometric to 1e-9."""
    rng = np.random.default_rng(4)
    n = 4

    def norm2(S, X):
        s, U = np.linalg.eigh(S)
        Xt = U.T @ X @ U
        return 0.5 * np.sum(Xt**2 / (s[:, None] + s[None, :]), axis=(-2, -1))

    T = rand_sym(rng, 3, n)
    A, B = rand_spd(rng, (), n, cond=10.0), rand_spd(rng, (), n, cond=10.0)
    out = spd.transport(T, A, B, "wasserstein")  # (filterwarnings=error: no warning)
    np.testing.assert_allclose(norm2(B, out), norm2(A, T), rtol=1e-9)
    Q = np.linalg.qr(rng.standard_normal((2, n, n)))[0]
    A, B = (Q * np.logspace(0, -8, n)) @ Q.swapaxes(-1, -2)
    A, B = 0.5 * (A + A.T), 0.5 * (B + B.T)
    with pytest.warns(RuntimeWarning, match="changes a tangent vector's squared norm"):
        out = spd.transport(T, A, B, "wasserstein")
    assert np.max(np.abs(norm2(B, out) / norm2(A, T) - 1)) > 1e-6  # (what it warns of)


def test_bures_wasserstein_distance_of_duplicates_is_zero():
    """Pairs of equal matrices (duplicates in a set) are near pairs of the polar recomputation
    (``test_bures_wasserstein_distance_of_nearby_matrices``) whose distance is exactly 0: no
    SVD for them, and ``distance`` / ``pairwise_distance`` with ``Y`` given return 0 there
    (the trace formula left ~1e-8 sqrt(tr))."""
    rng = np.random.default_rng(12)
    X = rand_spd(rng, (5,), 7, cond=1e3)
    Xd = np.concatenate([X, X[::-1]])
    P = spd.pairwise_distance(Xd, Xd.copy(), metric="wasserstein")
    assert np.all(P.diagonal() == 0) and np.all(P[np.arange(5), 9 - np.arange(5)] == 0)
    np.testing.assert_allclose(
        P, spd.pairwise_distance(Xd, metric="wasserstein"), rtol=1e-12, atol=1e-300
    )
    assert np.all(spd.distance(Xd, Xd.copy(), "wasserstein") == 0)
    assert np.all(spd.distance(X[2], X[2:3], "wasserstein") == 0)


@pytest.mark.parametrize("scale", [1e308, 8.9e307])
def test_mean_weights_whose_sum_overflows(scale):
    """Finite weights whose sum overflows (two of 1e308) are the weights scaled down: they
    were normalised by an infinite sum, to zeros, and the means came out as the identity
    (log-Euclidean), the zero matrix (Euclidean) or "mean is not positive definite"
    (affine-invariant, Bures-Wasserstein, and MDM / TangentSpace with such sample weights)."""
    rng = np.random.default_rng(31)
    X = rand_spd(rng, (5,), 3, cond=10.0)
    w = rng.uniform(0.5, 1.0, 5)
    with np.errstate(over="ignore"):
        assert not np.isfinite((w * scale).sum())
    for metric in ("riemann", "logeuclid", "wasserstein", "euclid"):
        np.testing.assert_allclose(
            spd.mean(X, w * scale, metric=metric), spd.mean(X, w, metric=metric), rtol=1e-12
        )
    y = np.array([0, 1, 0, 1, 1])
    for metric in ("riemann", "logeuclid", "wasserstein"):
        big = spd.MDM(metric=metric).fit(X, y, sample_weight=w * scale)
        np.testing.assert_allclose(
            big.covmeans_, spd.MDM(metric=metric).fit(X, y, sample_weight=w).covmeans_, rtol=1e-12
        )
        assert big.score(X, y, sample_weight=w * scale) == pytest.approx(
            big.score(X, y, sample_weight=w), rel=1e-12
        )
        ts = spd.TangentSpace(metric=metric).fit(X, sample_weight=w * scale).transform(X)
        ref = spd.TangentSpace(metric=metric).fit(X, sample_weight=w).transform(X)
        np.testing.assert_allclose(ts, ref, rtol=1e-10, atol=1e-12)
