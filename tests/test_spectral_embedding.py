"""geoml.laplacian_eigsh, the Laplacian route of geoml.eigsh(which="SA") and
geoml.spectral_embedding (against scikit-learn's spectral_embedding with ARPACK)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import subspace_angles
from scipy.sparse.csgraph import laplacian as csgraph_laplacian

import geoml
from geoml.spectral import _embedding


def swiss_roll(n, seed, noise=0.05):
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    h = 10 * rng.random(n)
    X = np.column_stack([t * np.cos(t), h, t * np.sin(t)])
    return X + noise * rng.standard_normal(X.shape)


def knn_adjacency(X, k, weighted=False):
    """Union-symmetrised kNN graph (0/1, or Gaussian weights), as sklearn's SpectralEmbedding
    builds it."""
    from scipy.spatial import cKDTree

    n = X.shape[0]
    dist, idx = cKDTree(X).query(X, k + 1)
    rows = np.repeat(np.arange(n), k)
    if weighted:
        s = np.median(dist[:, 1:])
        vals = np.exp(-((dist[:, 1:].ravel() / s) ** 2))
    else:
        vals = np.ones(n * k)
    A = sp.csr_matrix((vals, (rows, idx[:, 1:].ravel())), shape=(n, n))
    return sp.csr_matrix(A.maximum(A.T))


def components_graph(sizes, seed, k=8, weighted=False):
    blocks = [knn_adjacency(swiss_roll(m, seed + i), k, weighted) for i, m in enumerate(sizes)]
    return sp.csr_matrix(sp.block_diag(blocks))


def max_angle(U, V):
    return float(np.max(subspace_angles(U, V)))


def sk_embedding(A, **kw):
    manifold = pytest.importorskip("sklearn.manifold")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return manifold.spectral_embedding(A, eigen_solver="arpack", eigen_tol=0.0, **kw)


# ----------------------------------------------------------------------------- laplacian_eigsh
def dense_laplacian(W, kind):
    Wd = W.toarray()
    np.fill_diagonal(Wd, 0)
    d = Wd.sum(1)
    if kind == "combinatorial":
        return np.diag(d) - Wd, d
    if kind == "symmetric":
        return csgraph_laplacian(Wd, normed=True), d
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    return np.diag((d > 0).astype(float)) - inv[:, None] * Wd, d


@pytest.mark.parametrize("kind", ["symmetric", "combinatorial", "random_walk"])
@pytest.mark.parametrize("method", ["auto", "lobpcg-amg", "lanczos"])
@pytest.mark.parametrize(
    ("sizes", "seed", "weighted"),
    [((300,), 0, True), ((150, 120, 90), 2, False), ((200, 60), 3, True)],
)
def test_laplacian_eigsh_matches_eigh(kind, method, sizes, seed, weighted):
    W = components_graph(sizes, seed, weighted=weighted)
    c = len(sizes)
    k = c + 4
    L, d = dense_laplacian(W, kind)
    if kind == "random_walk":  # L_rw = D^-1 L_comb: the generalised problem L_comb v = w D v
        from scipy.linalg import eigh

        ref_w, ref_V = eigh(np.diag(d) - W.toarray(), np.diag(d))
    else:
        ref_w, ref_V = np.linalg.eigh(L)
    out = geoml.laplacian_eigsh(W, k, kind=kind, method=method, random_state=seed)
    w, V = out
    scale = d.max() if kind == "combinatorial" else 1.0
    assert out.converged
    assert V.shape == (W.shape[0], k) and w.shape == (k,)
    np.testing.assert_array_equal(w[:c], 0.0)  # exactly c zeros, one per component
    assert w[c] > 1e-6 * scale
    np.testing.assert_allclose(w, ref_w[:k], atol=1e-9 * scale)
    # residuals, computed here with the dense Laplacian
    R = L @ V - V * w
    np.testing.assert_allclose(np.linalg.norm(R, axis=0), out.residual_norms, atol=1e-12 * scale)
    assert np.linalg.norm(R, axis=0).max() <= 1e-9 * scale
    # the null space: every component's indicator is in span(V[:, :c])
    labels = np.repeat(np.arange(c), sizes)
    ind = (labels[:, None] == np.arange(c)).astype(float)
    if kind == "symmetric":
        ind *= np.sqrt(d)[:, None]
    assert max_angle(V[:, :c], ind) < 1e-10
    # the whole subspace (eigenvalues well separated from the (k+1)-th)
    assert max_angle(V, ref_V[:, :k]) < 1e-6
    if kind == "random_walk":
        np.testing.assert_allclose(V.T @ (d[:, None] * V), np.eye(k), atol=1e-10)
    else:
        np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_estimators_float32_weights_converge(seed):
    """A float32 weighted affinity given to the estimators (which keep float32): the degrees
    are summed in float64 (SciPy sums float32 in float32, whose rounding put the null vector
    off the operator's and stalled the Lanczos solve at residual ~1e-9 for 1,000 restart
    cycles against tol 1e-10), so the fit converges as on the same values in float64."""
    from sklearn.datasets import make_swiss_roll

    X, _ = make_swiss_roll(1500, random_state=seed)
    K = geoml.knn_graph(X, 10, mode="connectivity")
    K = sp.csr_matrix(((K + K.T) > 0).astype(np.float32))
    q = np.asarray(K.sum(axis=1)).ravel() ** -1.0  # DiffusionMap's alpha = 1 normalisation
    W = sp.csr_matrix(K.multiply(q[:, None] * q[None, :]), dtype=np.float32)  # symmetric
    W64 = W.astype(np.float64)  # the same values
    ref = np.linalg.eigvalsh(dense_laplacian(W64, "symmetric")[0])[:3]
    fits = [
        geoml.LaplacianEigenmap(2, affinity="precomputed", random_state=seed).fit(A)
        for A in (W, W64)
    ]
    np.testing.assert_allclose(fits[0].eigenvalues_, ref[1:], atol=1e-9)
    np.testing.assert_allclose(fits[0].eigenvalues_, fits[1].eigenvalues_, atol=1e-12)


def test_diffusion_map_float32_affinity_converges():
    """DiffusionMap on a float32 precomputed affinity (alpha-scaled, so weighted): no
    non-convergence warning (the test suite turns warnings into errors) and the eigenvalues
    of the same values in float64 to float32's rounding (its alpha-scaled affinity is rounded
    to float32)."""
    W = components_graph((400,), 3, weighted=True).astype(np.float32)
    e32 = geoml.DiffusionMap(affinity="precomputed", random_state=0).fit(W)
    e64 = geoml.DiffusionMap(affinity="precomputed", random_state=0).fit(W.astype(np.float64))
    np.testing.assert_allclose(e32.eigenvalues_, e64.eigenvalues_, rtol=0, atol=1e-6)


def test_laplacian_eigsh_isolated_nodes_and_many_components():
    W = components_graph((80, 70), 4).tolil()
    W = sp.block_diag([W, sp.csr_matrix((3, 3)), W]).tocsr()  # 4 + 3 isolated = 7 components
    for kind in ("symmetric", "combinatorial", "random_walk"):
        for method in ("auto", "lobpcg-amg", "lanczos"):
            w, V = geoml.laplacian_eigsh(W, 9, kind=kind, method=method, random_state=0)
            np.testing.assert_array_equal(w[:7], 0.0)
            L, d = dense_laplacian(W, kind)
            assert np.abs(L @ V - V * w).max() < 1e-9 * (d.max() if kind == "combinatorial" else 1)
    w, V = geoml.laplacian_eigsh(W, 5, kind="symmetric", random_state=0)  # k < c
    np.testing.assert_array_equal(w, 0.0)


@pytest.mark.parametrize("kind", ["symmetric", "random_walk", "combinatorial"])
@pytest.mark.parametrize("copies", [2, 3])
def test_laplacian_eigsh_repeated_nonzero_eigenvalues(kind, copies):
    """Identical components repeat every non-zero eigenvalue: all copies are returned (the
    deflated check after the Lanczos solve; before it, the normalised kinds returned the
    smallest non-zero eigenvalue once, with converged=True)."""
    rng = np.random.default_rng(1)
    G = knn_adjacency(rng.standard_normal((150, 3)), 8, weighted=True)
    W = sp.block_diag([G] * copies, format="csr")
    L, d = dense_laplacian(W, kind)
    ref = np.sort(np.linalg.eigvals(L).real) if kind == "random_walk" else np.linalg.eigvalsh(L)
    k = 2 * copies
    for seed in range(3):
        out = geoml.laplacian_eigsh(W, k, kind=kind, random_state=seed)
        assert out.converged
        np.testing.assert_allclose(out.eigenvalues, ref[:k], atol=1e-8)
        assert out.check_passed is not False  # None: LOBPCG + AMG (block), not checked
        assert np.abs(L @ out.eigenvectors - out.eigenvectors * out.eigenvalues).max() < 1e-8 * (
            d.max() if kind == "combinatorial" else 1
        )


def knn_inverse_distance(X, k):
    """Union-symmetrised kNN graph with weights 1 / distance."""
    from scipy.spatial import cKDTree

    n = X.shape[0]
    dist, idx = cKDTree(X).query(X, k + 1)
    rows = np.repeat(np.arange(n), k)
    A = sp.csr_matrix((1.0 / dist[:, 1:].ravel(), (rows, idx[:, 1:].ravel())), shape=(n, n))
    return sp.csr_matrix(A.maximum(A.T))


def assert_matches_eigh(w, V, L, scale, rtol=1e-10, max_angle_=1e-6):
    """Eigenvalues to ``rtol * scale`` of dense float64 ``eigh``, and for every eigenvalue
    whose copies all lie among the k returned (groups closer than 1e-8 scale), the subspace
    angles between the returned and the exact eigenspace."""
    from scipy.linalg import eigh

    lam, U = eigh(L)
    k = w.size
    np.testing.assert_allclose(w, lam[:k], rtol=0, atol=rtol * scale)
    i = 0
    while i < k:
        j = i
        while lam[j + 1] - lam[j] < 1e-8 * scale:
            j += 1
        if j < k:
            assert max_angle(V[:, i : j + 1], U[:, i : j + 1]) < max_angle_, (i, j)
        i = j + 1


@pytest.mark.parametrize("weights", ["gaussian", "inverse"])
@pytest.mark.parametrize("copies", [2, 3, 4])
@pytest.mark.parametrize("extra", [3, 6])
def test_laplacian_eigsh_identical_copies_converge(weights, copies, extra):
    """Copies of one weighted 8-NN graph repeat every eigenvalue ``copies`` times. The
    filtered Lanczos solve sees one copy at first; the others appear later, after pairs
    less wanted than them were locked. Before session 26 the solver then stopped as soon as
    it had locked k pairs and returned the partly converged copies (``converged=False``
    after 14-15 restart cycles whatever ``max_iter``; e.g. 1/d weights, 3 copies, k = 9,
    seed 8), and its filter's cut could land above a wanted copy. Every copy converges."""
    X = swiss_roll(150, 1)
    G = knn_adjacency(X, 8, weighted=True) if weights == "gaussian" else knn_inverse_distance(X, 8)
    W = sp.block_diag([G] * copies, format="csr")
    L, _ = dense_laplacian(W, "symmetric")
    k = copies + extra
    for seed in range(10):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            out = geoml.laplacian_eigsh(W, k, tol=1e-10, random_state=seed, max_iter=5000)
        assert out.converged and out.residual_norms.max() <= 1e-10
        assert_matches_eigh(out.eigenvalues, out.eigenvectors, L, 1.0)


def test_laplacian_eigsh_tol_below_rounding_says_so():
    """tol = 1e-17 (raised to 10 eps) is below what float64 reaches on this graph (residuals
    2-4e-15): the result is flagged and the warning says why and which tol to ask for.
    (``tol=0`` means 100 eps since session 30: SciPy's "machine precision".)"""
    from geoml.spectral._eigsh import _rounding_note

    X = swiss_roll(150, 1)
    W = sp.block_diag([knn_inverse_distance(X, 8)] * 2, format="csr")
    flagged = 0
    for seed in (0, 3):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            out = geoml.laplacian_eigsh(W, 8, tol=1e-17, random_state=seed)
        assert out.residual_norms.max() <= 100 * np.finfo(float).eps
        if not out.converged:
            flagged += 1
            assert any("rounding level" in str(w.message) for w in got), got
            assert any("ask for tol >= " in str(w.message) for w in got), got
    assert flagged  # (the same bits on every ISA and thread count: both seeds here)
    assert "raise max_iter" in _rounding_note(1e-9, 1.0)
    assert "float32 rounding level" in _rounding_note(1e-6, 2.0, np.float32)


@pytest.mark.parametrize("copies", [2, 3])
def test_eigsh_and_embedding_identical_copies(copies):
    """The same copies-graphs through the general ``eigsh`` ("SA" on the weighted normalised
    Laplacian, which takes the general path) and ``spectral_embedding``."""
    X = swiss_roll(150, 1)
    W = sp.block_diag([knn_inverse_distance(X, 8)] * copies, format="csr")
    L, d = dense_laplacian(W, "symmetric")
    k = copies + 6
    for seed in range(5):
        out = geoml.eigsh(sp.csr_matrix(L), k, which="SA", tol=1e-10, random_state=seed)
        assert out.converged and out.check_passed
        assert_matches_eigh(out.eigenvalues, out.eigenvectors, L, 2.0)
    with pytest.warns(UserWarning, match="not fully connected"):
        Y = geoml.spectral_embedding(W, k, drop_first=False, random_state=0)
    assert_matches_eigh(np.linalg.eigvalsh(L)[:k], np.linalg.qr(Y * np.sqrt(d)[:, None])[0], L, 1.0)


def test_laplacian_eigsh_bad_input():
    W = components_graph((50,), 0)
    with pytest.raises(ValueError, match="kind='normalized'"):
        geoml.laplacian_eigsh(W, 3, kind="normalized")
    with pytest.raises(ValueError, match="method='arpack'"):
        geoml.laplacian_eigsh(W, 3, method="arpack")
    with pytest.raises(ValueError, match="k=50"):
        geoml.laplacian_eigsh(W, 50)
    with pytest.raises(TypeError, match="k"):
        geoml.laplacian_eigsh(W, 2.5)
    with pytest.raises(ValueError, match="negative entries"):
        geoml.laplacian_eigsh(-W, 3)
    with pytest.raises(ValueError, match="not symmetric"):
        geoml.laplacian_eigsh(sp.triu(W, format="csr"), 3)
    with pytest.raises(ValueError, match="n >= 2"):
        geoml.laplacian_eigsh(sp.csr_matrix((1, 1)), 1)


@pytest.mark.parametrize("method", ["lobpcg-amg", "lanczos"])
def test_laplacian_eigsh_deterministic_across_threads(method):
    W = components_graph((500, 200), 5, weighted=True)
    outs = [
        geoml.laplacian_eigsh(W, 6, kind="combinatorial", method=method, random_state=3, n_jobs=nt)
        for nt in (1, 2)
    ]
    np.testing.assert_array_equal(outs[0].eigenvalues, outs[1].eigenvalues)
    np.testing.assert_array_equal(outs[0].eigenvectors, outs[1].eigenvectors)


# ----------------------------------------------------------------------------- eigsh route
def _spy(monkeypatch):
    calls = []
    real = _embedding._laplacian_eigsh  # the routes' call (laplacian_eigsh's work)

    def spy(*args, **kwargs):
        calls.append(kwargs.get("kind"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_embedding, "_laplacian_eigsh", spy)
    return calls


@pytest.mark.parametrize(
    ("kind", "weighted", "dtype"),
    [
        ("combinatorial", True, np.float64),
        ("combinatorial", False, np.float64),
        ("symmetric", False, np.float64),
        ("combinatorial", True, np.float32),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_eigsh_laplacian_route_equals_general_path(monkeypatch, kind, weighted, dtype, seed):
    W = knn_adjacency(swiss_roll(600, seed), 8, weighted)
    L = geoml.laplacian(W, kind=kind).astype(dtype)
    calls = _spy(monkeypatch)
    k = 6
    routed = geoml.eigsh(L, k, which="SA", random_state=seed)
    assert calls == [kind]
    general = geoml.eigsh(L, k, which="SA", ncv=30, random_state=seed)  # ncv: general path
    assert calls == [kind]
    assert routed.converged and general.converged
    assert routed.eigenvalues.dtype == general.eigenvalues.dtype == dtype
    assert routed.eigenvectors.dtype == general.eigenvectors.dtype == dtype
    assert routed.residual_norms.dtype == general.residual_norms.dtype
    anorm = general.anorm
    tol = 1e-4 if dtype == np.float32 else 1e-8
    np.testing.assert_allclose(routed.eigenvalues, general.eigenvalues, atol=tol * anorm)
    assert max_angle(routed.eigenvectors.astype(float), general.eigenvectors.astype(float)) < (
        1e-3 if dtype == np.float32 else 1e-6
    )
    Ld = L.toarray().astype(float)
    R = Ld @ routed.eigenvectors - routed.eigenvectors * routed.eigenvalues
    assert np.linalg.norm(R, axis=0).max() <= (1e-4 if dtype == np.float32 else 1e-9) * anorm


@pytest.mark.parametrize("kind", ["combinatorial", "symmetric"])
def test_eigsh_laplacian_route_disconnected(monkeypatch, kind):
    W = components_graph((200, 150, 100, 50), 7)
    L = geoml.laplacian(W, kind=kind)
    calls = _spy(monkeypatch)
    w, V = geoml.eigsh(L, 6, which="SA", random_state=0)
    assert calls == [kind]
    np.testing.assert_array_equal(w[:4], 0.0)  # all four zeros
    ref = np.linalg.eigvalsh(L.toarray())
    np.testing.assert_allclose(w, ref[:6], atol=1e-9)


def test_eigsh_laplacian_route_not_taken(monkeypatch):
    W = knn_adjacency(swiss_roll(300, 0), 8, weighted=True)
    calls = _spy(monkeypatch)
    Lsym_weighted = geoml.laplacian(W, kind="symmetric")  # weighted: degrees unknown
    shifted = geoml.laplacian(W, kind="combinatorial") + sp.identity(300)  # row sums 1
    signed = sp.csr_matrix(abs(geoml.laplacian(W, kind="combinatorial")))  # positive off-diag
    for A in (Lsym_weighted, shifted, signed):
        geoml.eigsh(A, 4, which="SA", random_state=0)
        geoml.eigsh(A, 4, which="LA", random_state=0)
    geoml.eigsh(geoml.laplacian(W, kind="combinatorial"), 4, which="LA", random_state=0)
    assert calls == []
    for A in (Lsym_weighted, shifted, signed):
        assert _embedding._laplacian_structure(sp.csr_matrix(A)) is None


# ----------------------------------------------------------------------------- spectral_embedding
@pytest.mark.parametrize("norm_laplacian", [True, False])
@pytest.mark.parametrize("drop_first", [True, False])
@pytest.mark.parametrize(
    ("n", "knn", "weighted", "n_components", "seed"),
    [(300, 8, False, 4, 0), (500, 10, True, 6, 1), (800, 6, False, 3, 2), (900, 10, True, 8, 3)],
)
def test_spectral_embedding_matches_sklearn(
    norm_laplacian, drop_first, n, knn, weighted, n_components, seed
):
    A = knn_adjacency(swiss_roll(n, seed), knn, weighted)
    kw = dict(n_components=n_components, norm_laplacian=norm_laplacian, drop_first=drop_first)
    ref = sk_embedding(A, random_state=seed, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Y = geoml.spectral_embedding(A, random_state=seed, **kw)
    assert Y.shape == ref.shape == (n, n_components)
    assert max_angle(Y, ref) <= 1e-6
    # simple eigenvalues: the same columns, signs included
    scale = np.abs(ref).max(axis=0)
    assert np.abs(Y - ref).max(axis=0).max() / scale.min() <= 1e-5


def test_spectral_embedding_dense_and_sparse_input():
    A = knn_adjacency(swiss_roll(250, 4), 8, weighted=True)
    ref = sk_embedding(A.toarray(), n_components=3, random_state=0)
    for inp in (A, A.toarray(), A.tocoo(), A.tocsc(), A.astype(np.float32).toarray()):
        Y = geoml.spectral_embedding(inp, n_components=3, random_state=0)
        assert max_angle(Y, ref) <= (1e-5 if inp.dtype == np.float32 else 1e-6)


def test_spectral_embedding_keeps_float32_as_sklearn():
    """The output dtype is scikit-learn's: float32 for float32 input (computed in float64,
    then rounded), float64 for float64 and integer input; the values are those of the same
    weights in float64."""
    A = knn_adjacency(swiss_roll(200, 5), 8, weighted=True)
    inputs = {
        "float32 sparse": A.astype(np.float32),
        "float32 dense": A.astype(np.float32).toarray(),
        "float64 dense": A.toarray(),
        "int64 sparse": (A > 0).astype(np.int64),
        "int64 dense": (A > 0).astype(np.int64).toarray(),
    }
    for name, inp in inputs.items():
        ref = sk_embedding(inp, n_components=3, random_state=0)
        Y = geoml.spectral_embedding(inp, n_components=3, random_state=0)
        assert Y.dtype == ref.dtype, name
        assert Y.flags.c_contiguous
        assert max_angle(Y, ref) <= (1e-5 if Y.dtype == np.float32 else 1e-6), name
        Y64 = geoml.spectral_embedding(inp.astype(np.float64), n_components=3, random_state=0)
        np.testing.assert_array_equal(Y, Y64.astype(Y.dtype))
    assert Y.dtype == np.float64 and ref.dtype == np.float64  # integers: float64


@pytest.mark.parametrize("norm_laplacian", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectral_embedding_disconnected(norm_laplacian, seed):
    """c = 3 components. drop_first=False: the whole span of the first 6 columns (the 3 null
    vectors and the next 3) agrees with scikit-learn's. drop_first=True: scikit-learn drops one
    null vector of ARPACK's choosing, so what is compared is the span of the columns together
    with the component indicators (the null space is known)."""
    sizes = (300, 200, 150)
    A = components_graph(sizes, 10 * seed, weighted=seed == 1)
    labels = np.repeat(np.arange(3), sizes)
    ind = (labels[:, None] == np.arange(3)).astype(float)
    if not norm_laplacian:
        ind /= np.sqrt(ind.sum(0))
    for drop_first in (False, True):
        kw = dict(n_components=6, norm_laplacian=norm_laplacian, drop_first=drop_first)
        ref = sk_embedding(A, random_state=seed, **kw)
        with pytest.warns(UserWarning, match="Graph is not fully connected"):
            Y = geoml.spectral_embedding(A, random_state=seed, **kw)
        if drop_first:
            assert max_angle(np.hstack([ind, Y]), np.hstack([ind, ref])) <= 1e-6
            assert max_angle(Y[:, :2], ind) <= 1e-10  # geoml's two null columns: exact
        else:
            assert max_angle(Y, ref) <= 1e-6
            assert max_angle(Y[:, :3], ind) <= 1e-10
            # the first 3 columns are component indicators (D^-1/2 D^1/2 1_C / ||D^1/2 1_C||,
            # or 1_C / sqrt|C|), positive by the sign convention
            for j in range(3):
                on = Y[:, j] != 0
                assert on.sum() in sizes and np.ptp(Y[on, j]) <= 1e-12 * Y[on, j].max()


@pytest.mark.parametrize("norm_laplacian", [True, False])
def test_spectral_embedding_identical_components(norm_laplacian):
    """Identical components repeat every eigenvalue: the embedding spans the eigenvectors of
    the smallest eigenvalues counted with multiplicity, as scikit-learn's (before the check,
    the normalised embedding held the third-smallest distinct eigenvalue's vector instead)."""
    rng = np.random.default_rng(1)
    G = knn_adjacency(rng.standard_normal((150, 3)), 8, weighted=True)
    W = sp.block_diag([G] * 3, format="csr")
    kind = "symmetric" if norm_laplacian else "combinatorial"
    L, d = dense_laplacian(W, kind)
    ref = np.linalg.eigvalsh(L)[:6]
    for seed in range(2):
        with pytest.warns(UserWarning, match="not fully connected"):
            Y = geoml.spectral_embedding(
                W, 6, norm_laplacian=norm_laplacian, drop_first=False, random_state=seed
            )
        U = np.linalg.qr(Y * np.sqrt(d)[:, None] if norm_laplacian else Y)[0]
        np.testing.assert_allclose(np.linalg.eigvalsh(U.T @ L @ U), ref, atol=1e-8 * d.max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Ysk = sk_embedding(W, n_components=6, norm_laplacian=norm_laplacian, drop_first=False)
        assert max_angle(Y, Ysk) < 1e-5


def test_spectral_embedding_isolated_node():
    """scikit-learn sets the normalised Laplacian's diagonal to 1: an isolated node is an
    eigenpair (1, e_i), ranked among the others by its eigenvalue."""
    path = sp.diags([np.ones(5), np.ones(5)], [-1, 1], format="csr")  # 6 nodes
    A = sp.block_diag([path, sp.csr_matrix((1, 1))], format="csr")
    for norm in (True, False):
        ref = sk_embedding(A, n_components=5, norm_laplacian=norm, drop_first=False, random_state=0)
        with pytest.warns(UserWarning, match="not fully connected"):
            Y = geoml.spectral_embedding(A, 5, norm_laplacian=norm, drop_first=False)
        assert max_angle(Y, ref) <= 1e-6
    A = knn_adjacency(swiss_roll(300, 1), 8)
    A = sp.block_diag([A, sp.csr_matrix((2, 2))], format="csr")
    ref = sk_embedding(A, n_components=4, random_state=0)
    with pytest.warns(UserWarning, match="not fully connected"):
        Y = geoml.spectral_embedding(A, 4, random_state=0)
    assert max_angle(Y, ref) <= 1e-6


def test_spectral_embedding_self_loops_and_asymmetry():
    A = knn_adjacency(swiss_roll(300, 2), 8, weighted=True)
    loops = sp.csr_matrix(A + sp.diags(np.linspace(0.5, 2, 300)))  # ignored, as in sklearn
    np.testing.assert_allclose(
        geoml.spectral_embedding(loops, 3, random_state=0),
        geoml.spectral_embedding(A, 3, random_state=0),
        atol=1e-9,
    )
    B = sp.triu(A, format="csr") * 2  # (B + B.T) / 2 == A
    with pytest.warns(UserWarning, match="Array is not symmetric"):
        Y = geoml.spectral_embedding(B, 3, random_state=0)
    np.testing.assert_allclose(Y, geoml.spectral_embedding(A, 3, random_state=0), atol=1e-9)


def test_spectral_embedding_deterministic_across_threads():
    A = knn_adjacency(swiss_roll(12000, 0), 8)  # the LOBPCG + AMG path (>= 10,000 nodes)
    Ys = [geoml.spectral_embedding(A, 4, random_state=5, n_jobs=nt) for nt in (1, 2)]
    np.testing.assert_array_equal(Ys[0], Ys[1])
    A = knn_adjacency(swiss_roll(2000, 1), 8)  # Lanczos
    Ys = [geoml.spectral_embedding(A, 4, random_state=5, n_jobs=nt) for nt in (1, 2)]
    np.testing.assert_array_equal(Ys[0], Ys[1])


def test_spectral_embedding_bad_input():
    A = knn_adjacency(swiss_roll(100, 0), 6)
    with pytest.raises(ValueError, match="n_components=0"):
        geoml.spectral_embedding(A, 0)
    with pytest.raises(ValueError, match="n_components=99"):
        geoml.spectral_embedding(A, 99)  # + drop_first = 100 = n
    geoml.spectral_embedding(A, 99, drop_first=False, random_state=0)  # k = n - 1: fine
    # two nodes leave no component once the first is dropped: a message that says so
    P2 = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="needs n >= 3"):
        geoml.spectral_embedding(P2, 1)
    E = geoml.spectral_embedding(P2, 1, drop_first=False)
    np.testing.assert_allclose(np.abs(E), np.sqrt(0.5), atol=1e-12)
    with pytest.raises(TypeError, match="n_components"):
        geoml.spectral_embedding(A, 2.0)
    with pytest.raises(ValueError, match="negative entries"):
        geoml.spectral_embedding(-A, 2)
    B = A.toarray()
    B[0, 1] = B[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        geoml.spectral_embedding(B, 2)
    with pytest.raises(ValueError, match="square"):
        geoml.spectral_embedding(np.ones((4, 5)), 2)
    with pytest.raises(ValueError, match="2-D"):
        geoml.spectral_embedding(np.ones(5), 2)
    with pytest.raises(TypeError, match="adjacency must be"):
        geoml.spectral_embedding("graph", 2)
    with pytest.raises(TypeError, match="real"):
        geoml.spectral_embedding(A.toarray() * 1j, 2)
    with pytest.raises(TypeError, match="norm_laplacian must be a bool"):
        geoml.spectral_embedding(A, 2, norm_laplacian="yes")
    with pytest.raises(TypeError, match="drop_first must be a bool"):
        geoml.spectral_embedding(A, 2, drop_first=1)
    with pytest.raises(ValueError, match="at least 2 nodes"):
        geoml.spectral_embedding(np.ones((1, 1)), 1)


# ----------------------------------------------------------------------------- load-aware threads
def test_idle_cores_caps_default_threads():
    import os
    import subprocess
    import sys

    n = geoml._core.idle_cores()
    assert 1 <= n <= (os.cpu_count() or 1)
    assert 1 <= geoml._core.max_threads() <= (os.cpu_count() or 1)  # capped by idle cores
    code = "import geoml; print(geoml._core.idle_cores(), geoml._core.max_threads())"
    env = {**os.environ, "GEOML_LOAD_AWARE": "0", "OMP_NUM_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    idle, threads = map(int, out.stdout.split())
    if geoml._core.openmp:
        if hasattr(os, "sched_getaffinity"):
            assert idle == len(os.sched_getaffinity(0))  # all the cores when turned off
        assert threads == 3  # OMP_NUM_THREADS honoured as before, no cap when turned off
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split()[1] == "1"


@pytest.mark.parametrize("scale", [1e160, 1e200, 1e300, 1e-300])
def test_combinatorial_laplacian_huge_and_tiny_weights(scale):
    """Weights near float64's limits: ``laplacian_eigsh(kind="combinatorial")`` (Lanczos
    with its check, and the default solver) and ``eigsh(L, which="SA")`` return finite,
    correct residuals and ``converged=True`` without warnings. Before, the residuals'
    squares overflowed from weights ~1e155 (``inf`` residuals; ``eigsh`` on the Laplacian
    route then failed its check with ``converged=False``) and underflowed to 0 at 1e-300."""
    X = swiss_roll(300, 0)
    W = knn_adjacency(X, 8, weighted=True)
    L1 = csgraph_laplacian(W).toarray()
    lam = np.linalg.eigvalsh(L1)[:4]
    Ws = sp.csr_matrix(W * scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = [
            geoml.laplacian_eigsh(Ws, 4, kind="combinatorial", random_state=0),
            geoml.laplacian_eigsh(Ws, 4, kind="combinatorial", method="lanczos", random_state=0),
            geoml.eigsh(sp.csr_matrix(csgraph_laplacian(Ws)), 4, which="SA", random_state=0),
        ]
    for out in outs:
        assert out.converged
        np.testing.assert_allclose(out.eigenvalues / scale, lam, rtol=0, atol=1e-9 * lam[-1])
        R = L1 @ out.eigenvectors - out.eigenvectors * (out.eigenvalues / scale)
        ref = np.linalg.norm(R, axis=0)  # at unit scale
        np.testing.assert_allclose(out.residual_norms / scale, ref, rtol=1e-6, atol=1e-14)
        assert np.all(out.residual_norms <= 1e-10 * out.anorm)


@pytest.mark.parametrize("kind", ["symmetric", "random_walk"])
@pytest.mark.parametrize("scale", [1e-320, 1e-310, 1e-200, 1e200])
def test_normalised_laplacian_subnormal_and_huge_weights(kind, scale):
    """The normalised Laplacians do not depend on the scale of W. Subnormal weights (all
    1e-320) overflowed ``1 / d`` (a RuntimeWarning) and gave NaN eigenvalues reported as
    ``converged=True``, and ``geoml.laplacian`` NaN entries; now both are solved / formed
    from W scaled by an even power of two: the unit-scale eigenvalues and operator."""
    X = swiss_roll(300, 0)
    W = knn_adjacency(X, 8, weighted=False)
    ref = geoml.laplacian_eigsh(W, 4, kind=kind, random_state=0)
    L0 = geoml.laplacian(W, kind).toarray()
    Ws = sp.csr_matrix(W * scale)  # exact for 1 * scale: every weight the same value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = geoml.laplacian_eigsh(Ws, 4, kind=kind, random_state=0)
        L = geoml.laplacian(Ws, kind).toarray()
    assert out.converged and np.isfinite(out.eigenvalues).all()
    np.testing.assert_allclose(out.eigenvalues, ref.eigenvalues, rtol=0, atol=1e-9)
    np.testing.assert_allclose(L, L0, rtol=0, atol=1e-15)
    V = out.eigenvectors
    if kind == "random_walk":  # D-orthonormal with W's own degrees: V^T D V = I
        d = np.asarray(Ws.sum(axis=1)).ravel()
        G = (V * (d / scale)[:, None]).T @ (V * scale)
        np.testing.assert_allclose(G, np.eye(4), atol=1e-9)
    else:
        assert np.linalg.norm(L0 @ V - V * out.eigenvalues, axis=0).max() < 1e-8


def test_normalised_laplacian_degrees_beyond_float64_refused():
    """Degrees from 2 down to 2e-320 (two subnormal edges): no scale fits both, so the
    normalised Laplacian cannot be formed in float64: a ValueError saying so (before: NaN
    eigenvalues with converged=True, NaN entries in ``laplacian``)."""
    n = 60
    i = np.arange(n)
    w = np.ones(n)
    w[:2] = 1e-320
    W = sp.csr_matrix((w, (i, (i + 1) % n)), shape=(n, n))
    W = (W + W.T).tocsr()
    W[1, 2] = W[2, 1] = 1e-320  # node 1's both edges subnormal
    for f in (
        lambda: geoml.laplacian_eigsh(W, 3, random_state=0),
        lambda: geoml.laplacian(W, "random_walk"),
    ):
        with pytest.raises(ValueError, match=r"degrees .* span .* too wide a range"):
            f()
    out = geoml.laplacian_eigsh(W, 3, kind="combinatorial", random_state=0)
    assert out.converged and np.isfinite(out.eigenvalues).all()


def _cycle(n):
    i = np.arange(n)
    rows, cols = np.r_[i, i], np.r_[(i + 1) % n, (i - 1) % n]
    return sp.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n))


@pytest.mark.slow
def test_laplacian_route_more_than_half_the_nodes_above_4000():
    """k > n / 2 on a recognised Laplacian above 4,000 nodes (``1 <= k < n`` is documented):
    it was refused ("use numpy.linalg.eigh"); now the dense solver, as below 4,000 nodes.
    The path graph's eigenvalues are known in closed form: ``2 - 2 cos(pi j / n)`` for
    ``D - W``, ``1 - cos(pi j / (n - 1))`` for the normalised Laplacian."""
    n, k = 4001, 2200
    i = np.arange(n - 1)
    P = sp.csr_matrix((np.ones(2 * (n - 1)), (np.r_[i, i + 1], np.r_[i + 1, i])), shape=(n, n))
    L = sp.csr_matrix(csgraph_laplacian(P))
    out = geoml.eigsh(L, k, which="SA", random_state=0)
    assert out.converged and out.check_passed
    np.testing.assert_allclose(
        out.eigenvalues, 2 - 2 * np.cos(np.pi * np.arange(k) / n), atol=1e-12
    )
    V = out.eigenvectors
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-12)
    assert np.linalg.norm(L @ V - V * out.eigenvalues, axis=0).max() <= 1e-10 * 4
    sym = geoml.laplacian_eigsh(P, k, random_state=0)
    assert sym.converged
    np.testing.assert_allclose(
        sym.eigenvalues, 1 - np.cos(np.pi * np.arange(k) / (n - 1)), atol=1e-12
    )


def test_embedding_check_warning_names_no_converged_field(monkeypatch):
    """spectral_embedding returns an array: when the deflated block check fails its warning
    must not mention a ``converged`` field (it said "converged=False", eigsh's text), and it
    points at the caller. The check is made to fail by giving it no cycles to converge what
    it finds (a cycle graph: every non-zero eigenvalue is double, and the single-vector
    Lanczos solve returns one copy of each)."""
    from geoml.spectral import _eigsh_block

    real = _eigsh_block.deflated_check
    monkeypatch.setattr(
        _eigsh_block, "deflated_check", lambda *a, **kw: real(*a, **{**kw, "max_cycles": 0})
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Y = geoml.spectral_embedding(_cycle(301), n_components=4, random_state=0)
        out = geoml.laplacian_eigsh(_cycle(301), 5, random_state=0)
    assert Y.shape == (301, 4) and not out.converged and out.check_passed is False
    msgs = [(str(w.message), w.filename) for w in caught if w.category is RuntimeWarning]
    assert len(msgs) == 2, msgs
    assert msgs[0][0].startswith("spectral_embedding: the deflated block check")
    assert "converged" not in msgs[0][0].replace("did not converge", "")
    assert msgs[0][1] == __file__
    assert "converged=False" in msgs[1][0]  # laplacian_eigsh's result has the field


@pytest.mark.parametrize("scale", [2.0**-1030, 1e-310, 1e300])
def test_spectral_estimators_on_subnormal_and_huge_affinities(scale):
    """LaplacianEigenmap, SpectralClustering and spectral_embedding on an ordinary weighted
    kNN affinity times ``scale``: the unit-scale results (L_sym does not depend on the scale;
    the embeddings ``U D^-1/2`` scale as ``scale^-1/2`` by their definition, scikit-learn's,
    and are compared scaled back; the unnormalised embedding is orthonormal eigenvectors,
    the same at any scale; laplacian_eigsh's combinatorial eigenvalues scale with W). With
    subnormal weights ``1 / sqrt(d)`` overflowed: a RuntimeWarning, NaN residuals and a
    non-convergence warning, a wrong embedding."""
    W = knn_adjacency(swiss_roll(2000, 3), 10, weighted=True)
    Ws = sp.csr_matrix((W.data * scale, W.indices, W.indptr), W.shape)
    root = np.sqrt(scale)

    def fit_all(A):
        le = geoml.LaplacianEigenmap(3, affinity="precomputed", random_state=0).fit(A)
        sc = geoml.SpectralClustering(4, affinity="precomputed", random_state=0).fit(A)
        se = geoml.spectral_embedding(A, n_components=3, random_state=0)
        su = geoml.spectral_embedding(A, n_components=3, norm_laplacian=False, random_state=0)
        lc = geoml.laplacian_eigsh(A, 4, kind="combinatorial", random_state=0)
        return le, sc, se, su, lc

    le1, sc1, se1, su1, lc1 = fit_all(W)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        le, sc, se, su, lc = fit_all(Ws)
    np.testing.assert_allclose(le.eigenvalues_, le1.eigenvalues_, rtol=0, atol=1e-9)
    assert np.isfinite(le.embedding_).all() and np.isfinite(se).all()
    for Y, Y1, r in ((le.embedding_, le1.embedding_, root), (se, se1, root), (su, su1, 1.0)):
        np.testing.assert_allclose(Y * r, Y1, rtol=0, atol=1e-7 * np.abs(Y1).max())
    np.testing.assert_array_equal(sc.labels_, sc1.labels_)
    with np.errstate(over="ignore"):
        expect = np.float64(sc1.inertia_) / scale  # the embedding's scale squared
    assert sc.inertia_ == (pytest.approx(expect, rel=1e-6) if np.isfinite(expect) else np.inf)
    assert lc.converged
    np.testing.assert_allclose(lc.eigenvalues / scale, lc1.eigenvalues, rtol=1e-9, atol=1e-12)


def test_estimators_without_max_iter_do_not_advise_it(monkeypatch):
    """LaplacianEigenmap, DiffusionMap and SpectralClustering have no ``max_iter`` for their
    eigensolver (SpectralClustering's is k-means'): a Lanczos solve that stops short (here
    forced to one restart cycle) advised "raise max_iter"; now "loosen tol", the one
    parameter they take. spectral_embedding already said so; laplacian_eigsh (which has
    ``max_iter``) still advises it."""
    orig = {name: getattr(geoml._core, name) for name in ("eigsh_csr", "eigsh_scaled_pattern")}

    def one_cycle(f):
        def run(*args, options, **kw):
            options.max_iter = 1
            return f(*args, options=options, **kw)

        return run

    for name, f in orig.items():
        monkeypatch.setattr(geoml._core, name, one_cycle(f))
    X = swiss_roll(1500, 0)
    for est in (
        geoml.LaplacianEigenmap(8, 10, kernel="gaussian", tol=1e-12, random_state=0),
        geoml.DiffusionMap(8, 10, tol=1e-12, random_state=0),
        geoml.SpectralClustering(8, 10, tol=1e-12, random_state=0),
    ):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            est.fit(X)
        msgs = [str(w.message) for w in got if "did not converge" in str(w.message)]
        assert msgs, (type(est).__name__, [str(w.message) for w in got])
        assert all("max_iter" not in m and m.endswith("; loosen tol") for m in msgs), msgs
    W = knn_inverse_distance(X, 10)
    with pytest.warns(RuntimeWarning, match="raise max_iter, or loosen tol"):
        geoml.laplacian_eigsh(W, 8, tol=1e-12, method="lanczos", random_state=0)
