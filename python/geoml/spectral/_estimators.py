"""Spectral estimators: Laplacian eigenmaps, diffusion maps and spectral clustering."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._base import BaseEstimator, ClusterMixin, EmbeddingMixin
from .._device import compute_side as _compute_side
from .._device import move as _move
from .._device import on_device as _on_device
from .._device import xp as _xp
from .._validation import (
    check_bool,
    check_int,
    check_n_jobs,
    check_real,
    is_gpu_array,
    random_seed,
    truncate_to_samples,
    user_stacklevel,
)
from ..neighbors import _knn_graph_checked
from ..neighbors._knn import _KERNELS
from ._embedding import _checked
from ._laplacian import _affinity_csr, _even_shift, _normalised_shift, _scale_both
from ._lsym import _lsym_smallest, _sign_flip

_AFFINITIES = ("knn", "adaptive", "precomputed")


def _build_affinity(X, affinity: str, n_neighbors: int, kernel, n_jobs, where: str):
    """Validated float64 CSR affinity on the compute side ``where`` (SciPy or cupyx), the
    number of features of ``X`` (``n_features_in_``: ``n`` for a precomputed affinity) and the
    neighbours per point used (``n_neighbors_``: ``n_neighbors`` truncated to
    ``n_samples - 1`` with a warning; None for a precomputed affinity)."""
    if affinity not in _AFFINITIES:
        raise ValueError(f"affinity={affinity!r}; choose 'knn', 'adaptive' or 'precomputed'")
    if kernel not in _KERNELS:  # (checked for every affinity, as the other parameters)
        raise ValueError(f"kernel={kernel!r}; choose None, 'gaussian', 'adaptive' or 'alpha_decay'")
    if affinity == "precomputed":
        if not (sp.issparse(X) or type(X).__module__.startswith("cupyx.")):
            if is_gpu_array(X):
                raise TypeError(
                    "affinity='precomputed' takes a dense CuPy array neither on the GPU nor "
                    "the CPU; pass cupyx.scipy.sparse.csr_matrix(X) or X.get()"
                )
            if isinstance(X, (str, bytes)) or X is None:
                raise TypeError(
                    "affinity='precomputed' needs an (n, n) affinity matrix (sparse or dense "
                    f"array); got {type(X).__name__}"
                )
            # dense: validated and stored as the CSR matrix of its non-zeros, the same
            # matrix (bit for bit) as the same affinity given sparse
            X = _affinity_csr(X, "X")
            if where != "cuda":
                return X, X.shape[1], None
        X = _move(X, where == "cuda")
        if where == "cuda":
            from . import _gpu_lanczos as _spectral_gpu

            return _spectral_gpu.affinity_csr(X, "X"), X.shape[1], None
        return _affinity_csr(X, "X"), X.shape[1], None
    X = _on_device(X, where, "X")  # validated once: the kNN graph below does not scan X again
    n = X.shape[0]
    if n < 3:
        raise ValueError(f"X has {n} samples; at least 3 are needed")
    k = truncate_to_samples(n_neighbors, "n_neighbors", n)
    if affinity == "adaptive":
        G = _knn_graph_checked(X, k, kernel="adaptive", n_jobs=n_jobs)
    elif kernel is None:
        G = _knn_graph_checked(X, k, mode="connectivity", n_jobs=n_jobs)
    else:
        G = _knn_graph_checked(X, k, kernel=kernel, n_jobs=n_jobs)
    G = G.astype(np.float64) if where == "cuda" else sp.csr_matrix(G, dtype=np.float64)
    return G, X.shape[1], k


def _spectral_tags(est) -> dict:
    """scikit-learn tags of the spectral estimators: with ``affinity="precomputed"`` the input
    is an (n, n) affinity matrix, sparse or dense, else dense points."""
    if est.affinity == "precomputed":
        return {"input_tags.pairwise": True, "input_tags.sparse": True}
    return {}


class LaplacianEigenmap(EmbeddingMixin, BaseEstimator):
    """Laplacian eigenmap (Belkin & Niyogi 2003) with the normalised Laplacian.

    Builds an affinity graph, finds the ``n_components (+1)`` smallest eigenpairs of
    ``L_sym = I - D^-1/2 W D^-1/2`` (below 10,000 nodes as the largest of
    ``D^-1/2 W D^-1/2`` by Lanczos, from 10,000 on by LOBPCG with an algebraic-multigrid
    preconditioner; see the module notes) and returns ``D^-1/2 u`` for each eigenvector
    ``u``, i.e. the eigenvectors of the random-walk Laplacian, each with its
    largest-magnitude entry made positive. This is what
    ``sklearn.manifold.spectral_embedding`` computes on the same graph (up to sign).

    Parameters
    ----------
    n_components : int, default 2
    n_neighbors : int, default 15
        Neighbours per point of the kNN graph (ignored for ``"precomputed"``). A value
        ``>= n_samples`` is truncated to ``n_samples - 1`` with a ``UserWarning`` (umap-learn's
        convention).
    affinity : {"knn", "adaptive", "precomputed"}
        ``"knn"``: union-symmetrised kNN graph, 0/1 weights (or ``kernel`` weights);
        ``"adaptive"``: self-tuning Gaussian kernel on the kNN graph
        (``knn_graph(kernel="adaptive")``); ``"precomputed"``: ``X`` is the (n, n)
        symmetric (to 1e-8 relative) non-negative affinity matrix, SciPy sparse or a dense
        array (stored as the CSR matrix of its non-zeros: the same result as the same matrix
        given sparse), or a ``cupyx.scipy.sparse`` one on the GPU; its diagonal is ignored.
    kernel : {None, "gaussian", "adaptive", "alpha_decay"}
        Edge weights for ``affinity="knn"`` (see :func:`geoml.knn_graph`); None: 0/1.
    drop_first : bool, default True
        Drop the trivial eigenvector (constant on a connected graph).
    tol : float, optional
        Eigensolver tolerance (relative residual, default 1e-10).
    random_state : int, Generator or None
    n_jobs : int, optional
    device : {"auto", "cpu", "cuda"}
        ``"auto"``: run on the GPU for CuPy ``X`` (or a ``cupyx.scipy.sparse`` affinity),
        else on the CPU; ``"cuda"`` sends NumPy/SciPy input to the GPU (kNN graph, then
        Lanczos with the basis on the device, see :func:`geoml.eigsh`), ``"cpu"`` brings
        device input to the host. Fitted attributes have the family of ``X`` (CuPy/cupyx for
        device input). The GPU solver has no Chebyshev filter (plain Lanczos on ``N``).

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of ``L_sym`` for the embedding's columns, ascending.
    affinity_matrix_ : scipy.sparse.csr_matrix
    n_components_found_ : int
        Connected components of the graph.
    n_neighbors_ : int or None
        Neighbours per point used (``n_neighbors`` truncated); None for a precomputed
        affinity.
    n_features_in_ : int
        Columns of ``X`` (``n_samples`` for a precomputed affinity).

    Notes
    -----
    A disconnected graph gets a ``UserWarning`` (its first eigenvectors are component
    indicators; a precomputed graph with more components than ``n_components`` embeds
    poorly). An isolated node (a zero row of a precomputed affinity) is such a component,
    with eigenvalue 0 (SciPy's normalised Laplacian); :func:`geoml.spectral_embedding`
    follows scikit-learn instead, which gives it the eigenvalue 1 (Laplacian diagonal set to
    1), so the two differ on graphs with isolated nodes.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> t = np.linspace(0, 3, 200)
    >>> X = np.column_stack([np.cos(t), np.sin(t)])
    >>> emb = geoml.LaplacianEigenmap(n_components=1, n_neighbors=5, random_state=0)
    >>> Y = emb.fit_transform(X)
    >>> Y.shape
    (200, 1)
    >>> bool(abs(np.corrcoef(Y[:, 0], t)[0, 1]) > 0.95)
    True
    """

    def __init__(
        self,
        n_components: int = 2,
        n_neighbors: int = 15,
        *,
        affinity: str = "knn",
        kernel: str | None = None,
        drop_first: bool = True,
        tol: float | None = None,
        random_state=None,
        n_jobs: int | None = None,
        device: str = "auto",
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.affinity = affinity
        self.kernel = kernel
        self.drop_first = drop_first
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def _embed(self, W, n_components, drop_first, warn):
        n = W.shape[0]
        drop_first = check_bool(drop_first, "drop_first")
        check_int(
            n_components,
            "n_components",
            low=1,
            high=n - 1 - int(drop_first),
            hint=f" (the graph has {n} nodes)",
        )
        k = int(n_components) + int(drop_first)
        solve = {"tol": self.tol, "random_state": self.random_state, "n_jobs": self.n_jobs}
        # L_sym does not depend on the scale of W: degrees out of [2^-400, 2^400] (subnormal
        # weights: 1 / sqrt(d) overflowed, NaN residuals and no convergence) are solved for W
        # scaled by an even power of two (exact); the embedding U D^-1/2 scaled back below
        xp = _xp(W.data)
        deg = _move(xp.asarray(W.sum(axis=1)).ravel(), False)  # (n floats to the host)
        shift = _normalised_shift(np.asarray(deg, dtype=np.float64), "symmetric")
        if shift:
            W = type(W)((xp.ldexp(W.data, -shift), W.indices, W.indptr), shape=W.shape)
        got = _lsym_smallest(W, k, **solve, advice="")  # (no max_iter here: "loosen tol")
        lam, U, d, _, info = _checked(W, k, "symmetric", got, **solve, who=type(self).__name__)
        if warn and info["components"] > 1:
            warnings.warn(
                f"the affinity graph has {info['components']} connected components; "
                "the embedding separates them rather than describing each one",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        xp = _xp(U)
        s = xp.where(d > 0, 1.0 / xp.sqrt(xp.where(d > 0, d, 1.0)), 1.0)
        if shift:  # D^-1/2 with W's own degrees: (d / 2^shift)^-1/2 / 2^(shift / 2)
            s = xp.where(d > 0, xp.ldexp(s, -(shift // 2)), s)
        Y = _sign_flip(U * s[:, None])
        if drop_first:
            Y, lam = Y[:, 1:], lam[1:]
        info["shift"] = shift
        return Y, lam, info

    def fit(self, X, y=None) -> LaplacianEigenmap:
        """Fit on ``X`` of shape (n_samples, n_features) (or the (n, n) affinity)."""
        names_in = self._feature_names_of(X)
        gpu_in, where = _compute_side(self.device, X, "LaplacianEigenmap")
        W, n_features, n_neighbors = _build_affinity(
            X, self.affinity, self.n_neighbors, self.kernel, self.n_jobs, where
        )
        Y, lam, info = self._embed(W, self.n_components, self.drop_first, True)
        self.affinity_matrix_ = _move(W, gpu_in)
        self.embedding_, self.eigenvalues_ = _move(Y, gpu_in), _move(lam, gpu_in)
        self.n_components_found_ = info["components"]
        self.n_neighbors_ = n_neighbors
        self.n_features_in_ = n_features
        self._set_feature_names(names_in)
        return self

    def _geoml_tags(self) -> dict:
        return _spectral_tags(self)


class DiffusionMap(EmbeddingMixin, BaseEstimator):
    """Diffusion map (Coifman & Lafon 2006).

    With kernel ``K`` (the kNN affinity), ``q = K 1``, the alpha-normalised kernel
    ``K_a = Q^-alpha K Q^-alpha``, ``d = K_a 1`` and the Markov matrix ``P = D^-1 K_a``, the
    embedding is ``psi_i * lambda_i^t`` for the right eigenvectors ``psi_i`` of ``P`` with the
    ``n_components`` largest eigenvalues after the trivial ``lambda_0 = 1``. The eigenpairs
    come from the symmetric ``S = D^-1/2 K_a D^-1/2`` (``psi = D^-1/2 u``, scaled so that
    ``psi_0 = 1``, i.e. ``sum_j d_j psi_i(j)^2 = sum_j d_j``), by the Laplacian solver.
    ``alpha = 0`` is the classical normalised graph Laplacian, ``0.5`` Fokker-Planck,
    ``1`` Laplace-Beltrami (density-independent).

    A disconnected graph gets a ``UserWarning``, as in :class:`LaplacianEigenmap`: the
    eigenvalue 1 is then repeated (once per connected component), the dropped eigenvector
    and the first columns of the embedding are component indicators (constant on each
    component), and ``psi_0`` is not the constant 1.

    Parameters
    ----------
    n_components : int, default 2
    n_neighbors : int, default 15
        As in :class:`LaplacianEigenmap` (truncated to ``n_samples - 1`` with a warning).
    alpha : float in [0, 1], default 1.0
    t : int or float >= 0, default 1
        Diffusion time.
    affinity : {"adaptive", "knn", "precomputed"}, default "adaptive"
        As in :class:`LaplacianEigenmap`; the default is the self-tuning Gaussian kernel.
    kernel : str, optional
        Edge weights for ``affinity="knn"`` (default "gaussian").
    tol, random_state, n_jobs, device
        As in :class:`LaplacianEigenmap`.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of ``P``, descending.
    affinity_matrix_ : scipy.sparse.csr_matrix
    n_neighbors_ : int or None
        Neighbours per point used (``n_neighbors`` truncated); None for a precomputed
        affinity.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> t = np.linspace(0, 3, 200)
    >>> X = np.column_stack([np.cos(t), np.sin(t)])
    >>> dm = geoml.DiffusionMap(n_components=2, n_neighbors=10, random_state=0).fit(X)
    >>> dm.embedding_.shape, bool(dm.eigenvalues_[0] < 1)
    ((200, 2), True)
    """

    def __init__(
        self,
        n_components: int = 2,
        n_neighbors: int = 15,
        *,
        alpha: float = 1.0,
        t: float = 1,
        affinity: str = "adaptive",
        kernel: str | None = "gaussian",
        tol: float | None = None,
        random_state=None,
        n_jobs: int | None = None,
        device: str = "auto",
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.t = t
        self.affinity = affinity
        self.kernel = kernel
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def fit(self, X, y=None) -> DiffusionMap:
        """Fit on ``X`` of shape (n_samples, n_features) (or the (n, n) affinity)."""
        names_in = self._feature_names_of(X)
        # numbers only ("0.5" and True passed float(), None said float()'s own message)
        alpha = check_real(self.alpha, "alpha", what="a number in [0, 1]")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha={self.alpha} must lie in [0, 1]")
        t = check_real(self.t, "t", what="a non-negative number")
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"t={self.t} must be a non-negative number")
        gpu_in, where = _compute_side(self.device, X, "DiffusionMap")
        K, n_features, n_neighbors = _build_affinity(
            X, self.affinity, self.n_neighbors, self.kernel, self.n_jobs, where
        )
        n = K.shape[0]
        check_int(
            self.n_components, "n_components", low=1, high=n - 2, hint=f" (the graph has {n} nodes)"
        )
        xp = _xp(K.data)
        q = xp.asarray(K.sum(axis=1)).ravel()
        Kw = K
        # the embedding does not depend on the scale of K, but K_a does (as q^(1 - 2 alpha)):
        # an affinity of 1e-160 failed in the Lanczos solve ("no start vector orthogonal to
        # the deflation space"), one of 1e200 gave a wrong embedding with a warning of n
        # components. Such a K is used scaled by an even power of two (exact)
        e = _even_shift(float(q.max()))
        if e:
            Kw = type(K)((xp.ldexp(K.data, -e), K.indices, K.indptr), shape=K.shape)
            q = xp.ldexp(q, -e)
        qa = xp.where(q > 0, xp.where(q > 0, q, 1.0) ** -alpha, 0.0)
        Ka = _scale_both(Kw, qa)
        solve = {"tol": self.tol, "random_state": self.random_state, "n_jobs": self.n_jobs}
        got = _lsym_smallest(Ka, self.n_components + 1, **solve, advice="")  # (no max_iter)
        lam, U, d, _, info = _checked(
            Ka, self.n_components + 1, "symmetric", got, **solve, who=type(self).__name__
        )
        if info["components"] > 1:
            warnings.warn(
                f"the affinity graph has {info['components']} connected components: the "
                "eigenvalue 1 is repeated and the first diffusion coordinates are component "
                "indicators rather than coordinates within each one",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        mu = 1.0 - lam[1:]  # eigenvalues of P after the trivial 1, descending
        s = xp.where(d > 0, 1.0 / xp.sqrt(xp.where(d > 0, d, 1.0)), 1.0)
        psi = _sign_flip(U * s[:, None]) * xp.sqrt(d.sum())
        scale = xp.asarray(np.sign(mu) * np.abs(mu) ** t)
        self.affinity_matrix_ = _move(K, gpu_in)
        self.eigenvalues_ = _move(mu, gpu_in)
        self.embedding_ = _move(psi[:, 1:] * scale, gpu_in)
        self.n_neighbors_ = n_neighbors
        self.n_features_in_ = n_features
        self._set_feature_names(names_in)
        return self

    def _geoml_tags(self) -> dict:
        return _spectral_tags(self)


class SpectralClustering(ClusterMixin, BaseEstimator):
    """Spectral clustering (Ng, Jordan & Weiss 2001; Shi & Malik 2000).

    Embeds the points with the ``n_clusters`` smallest eigenvectors of the normalised Laplacian
    of a kNN affinity graph (``D^-1/2 u``, as :class:`LaplacianEigenmap` with
    ``drop_first=False``, like scikit-learn), then runs k-means in C++ (k-means++ seeding,
    ``n_init`` restarts, the lowest inertia wins).

    Parameters
    ----------
    n_clusters : int, default 8
        Number of clusters, 1 <= n_clusters < n_samples (1 puts every point in cluster 0, as
        scikit-learn does).
    n_neighbors : int, default 15
        As in :class:`LaplacianEigenmap` (truncated to ``n_samples - 1`` with a warning).
    affinity : {"knn", "adaptive", "precomputed"}, default "knn"
    kernel : str, optional
        Edge weights for ``affinity="knn"`` (None: 0/1).
    n_init : int, default 10
        k-means restarts.
    max_iter : int, default 300
        Lloyd iterations per restart.
    tol : float, optional
        Eigensolver tolerance.
    random_state : int, Generator or None
    n_jobs : int, optional
    device : {"auto", "cpu", "cuda"}
        As in :class:`LaplacianEigenmap`; on the GPU the graph and the eigenvectors are
        computed on the device and k-means runs on the host (``n x n_clusters`` values copied).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), int64
    embedding_ : ndarray of shape (n_samples, n_clusters)
    eigenvalues_ : ndarray of shape (n_clusters,)
    affinity_matrix_ : scipy.sparse.csr_matrix
    inertia_ : float
        k-means inertia (sum of squared distances to the cluster centres) of
        ``embedding_``. The embedding ``D^-1/2 u`` scales as ``c^-1/2`` when the affinity is
        scaled by ``c`` (scikit-learn's definition), so the inertia scales as ``1 / c``: it is
        the value of this embedding, not a scale-free one, and where that leaves float64 it
        is inf (subnormal affinities, ``c`` ~ 2^-1030: an embedding of ~2^515) or 0 (``c``
        beyond ~2^1000). k-means itself runs on the embedding of the affinity scaled by a
        power of two (exact): the same clusters, ``labels_`` as for the unscaled affinity.
        Compare inertias of one affinity (e.g. across ``n_clusters``), or rescale the
        affinity to a unit-order scale first.
    n_neighbors_ : int or None
        Neighbours per point used (``n_neighbors`` truncated); None for a precomputed
        affinity.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.3, (50, 2)), rng.normal(5, 0.3, (50, 2))])
    >>> lab = geoml.SpectralClustering(2, n_neighbors=5, random_state=0).fit(X).labels_
    >>> bool(len(set(lab[:50])) == 1 and len(set(lab[50:])) == 1 and lab[0] != lab[50])
    True
    """

    def __init__(
        self,
        n_clusters: int = 8,
        n_neighbors: int = 15,
        *,
        affinity: str = "knn",
        kernel: str | None = None,
        n_init: int = 10,
        max_iter: int = 300,
        tol: float | None = None,
        random_state=None,
        n_jobs: int | None = None,
        device: str = "auto",
    ):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.affinity = affinity
        self.kernel = kernel
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def fit(self, X, y=None) -> SpectralClustering:
        """Cluster ``X`` of shape (n_samples, n_features) (or the (n, n) affinity)."""
        names_in = self._feature_names_of(X)
        gpu_in, where = _compute_side(self.device, X, "SpectralClustering")
        W, n_features, n_neighbors = _build_affinity(
            X, self.affinity, self.n_neighbors, self.kernel, self.n_jobs, where
        )
        n = W.shape[0]
        k = check_int(
            self.n_clusters, "n_clusters", low=1, high=n - 1, hint=f" (the graph has {n} nodes)"
        )
        n_init = check_int(self.n_init, "n_init", low=1)
        max_iter = check_int(self.max_iter, "max_iter", low=1)
        rng = np.random.default_rng(random_seed(self.random_state))
        emb = LaplacianEigenmap(
            k,
            affinity="precomputed",
            drop_first=False,
            tol=self.tol,
            random_state=rng,
            n_jobs=self.n_jobs,
        )
        Y, lam, info = emb._embed(W, k, False, False)
        Y = np.ascontiguousarray(_move(Y, False), dtype=np.float64)  # k-means runs on the host
        # k-means on the embedding of W / 2^shift (the affinity _embed solved for; subnormal
        # weights: Y of 2^515, whose squares overflow), the same clusters (exact scaling)
        shift = info["shift"]
        Yk = np.ldexp(Y, shift // 2) if shift else Y
        ktol = 1e-4 * float(np.mean(np.var(Yk, axis=0)))
        labels, centers, inertia, _ = _core.kmeans(
            Yk,
            k=k,
            n_init=n_init,
            max_iter=max_iter,
            tol=ktol,
            seed=random_seed(rng),
            n_jobs=check_n_jobs(self.n_jobs),
        )
        self.affinity_matrix_ = _move(W, gpu_in)
        self.embedding_ = _move(Y, gpu_in)
        self.eigenvalues_ = _move(lam, gpu_in)
        self.labels_ = _move(labels, gpu_in)
        with np.errstate(over="ignore"):  # (inf where it is beyond float64)
            self.inertia_ = float(np.ldexp(inertia, -shift))
        self.n_neighbors_ = n_neighbors
        self.n_features_in_ = n_features
        self._set_feature_names(names_in)
        return self

    def _geoml_tags(self) -> dict:
        return _spectral_tags(self)
