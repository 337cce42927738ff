"""Multidimensional scaling: classical (Torgerson), metric SMACOF (C++) and landmark MDS."""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._base import BaseEstimator, EmbeddingMixin
from .._validation import (
    as_float_array,
    check_int,
    check_n_jobs,
    check_random_state,
    check_tol,
    random_seed,
    reject_gpu,
    single_threaded_blas,
    truncate_to_samples,
    user_stacklevel,
    validate_random_state,
)

# Below this many points classical MDS uses a dense eigendecomposition (LAPACK) instead of
# Lanczos: the Lanczos basis would be as large as the matrix.
_DENSE_EIG_MAX = 200
# Larger coordinates or dissimilarities are refused: their squares (distances, stress)
# overflow float64.
_MAX_ABS = 1e150
# Smaller ones (all of them) are scaled up by a power of two in MDS.fit (MDS is equivariant):
# their squares lose their digits in float64's subnormal range (1e-160 coordinates: an
# embedding 7 % off, 1e-170: stress 0 and a wrong embedding, silently).
_MIN_ABS = 1e-140


def say(verbose, name: str, msg: str, t0: float | None = None) -> None:
    """One progress line on stderr when ``verbose``: ``[geoml] name: msg``, with the seconds
    since ``t0`` (``time.perf_counter()``) after the name when given (the diffusion
    estimators' ``verbose`` output)."""
    if verbose:
        head = name if t0 is None else f"{name} {time.perf_counter() - t0:8.2f}s"
        print(f"[geoml] {head}: {msg}", file=sys.stderr, flush=True)


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(A), len(B)) in float64, clipped at 0."""
    A = A.astype(np.float64, copy=False)
    B = B.astype(np.float64, copy=False)
    G = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    np.maximum(G, 0.0, out=G)
    return G


def _check_dissimilarities(D, name: str = "D") -> np.ndarray:
    """A dense, square, symmetric, non-negative, finite dissimilarity matrix (float32/64).

    Asymmetry and a diagonal up to ``1e-8`` of the largest entry (rounding) are accepted; such
    a diagonal is set to 0 on a copy."""
    if sp.issparse(D):
        raise TypeError(
            f"{name} is a sparse matrix; MDS needs every dissimilarity: pass a dense array"
        )
    D = as_float_array(D, name)
    if D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {D.shape}")
    if (D < 0).any():
        raise ValueError(f"{name} has negative entries; dissimilarities must be >= 0")
    scale = float(np.abs(D).max()) if D.size else 0.0
    if scale > _MAX_ABS:
        raise ValueError(f"{name} has entries above {_MAX_ABS:g}: rescale it (squares overflow)")
    if np.abs(D - D.T).max() > 1e-8 * max(scale, 1e-300):
        raise ValueError(f"{name} is not symmetric; pass (D + D.T) / 2")
    diag = np.abs(np.diagonal(D))
    if diag.any():
        # a diagonal at rounding level (distances from a Gram matrix: sqrt(|x|^2 + |x|^2 -
        # 2 x.x) is ~1e-8 |x|, not 0) is read as 0, on a copy; a real one is refused
        top = float(diag.max())
        if top > 1e-8 * scale:
            raise ValueError(
                f"{name} has a non-zero diagonal (largest {top:.3g}, {top / scale:.2g} of the"
                " largest entry); the dissimilarity of a point to itself must be 0"
            )
        D = D.copy()
        np.fill_diagonal(D, 0)
    return D


def classical_mds(D, n_components: int = 2, *, random_state=None, n_jobs=None):
    """Classical (Torgerson) MDS of a dissimilarity matrix.

    The embedding is ``V_k sqrt(lambda_k)`` for the ``n_components`` largest eigenpairs of the
    double-centred ``B = -1/2 J D^2 J`` (``J = I - 11^T / n``), by :func:`geoml.eigsh`
    (Lanczos; a dense LAPACK eigendecomposition below 200 points, and in place of a Lanczos
    solve that did not converge or whose check failed: ``B`` is in memory, so the result is
    exact either way, at O(n^3) time in that rare case). Negative eigenvalues (a
    non-Euclidean ``D``) give zero columns. O(n^2) memory.

    Parameters
    ----------
    D : array-like of shape (n, n)
        Symmetric non-negative dissimilarities with a zero diagonal (up to ``1e-8`` of the
        largest entry, read as 0).
    n_components : int
        ``1 <= n_components < n``.
    random_state : None, int or Generator
        Seeds the Lanczos start vector.
    n_jobs : int, optional
        Threads for the Lanczos products.

    Returns
    -------
    Y : ndarray of shape (n, n_components)
        float64, columns by decreasing eigenvalue, each column's largest-magnitude entry
        positive.
    eigenvalues : ndarray of shape (n_components,)
        The eigenvalues of ``B``, descending.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.diffusion import classical_mds
    >>> P = np.random.default_rng(0).standard_normal((50, 2))
    >>> D = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
    >>> Y, w = classical_mds(D, 2, random_state=0)
    >>> D2 = np.sqrt(((Y[:, None] - Y[None]) ** 2).sum(-1))
    >>> bool(np.allclose(D2, D))
    True
    """
    D = _check_dissimilarities(D)
    n = D.shape[0]
    validate_random_state(random_state)
    k = check_int(
        n_components, "n_components", low=1, high=max(1, n - 1), hint=f" (there are {n} points)"
    )
    if n < 2:
        raise ValueError("classical MDS needs at least 2 points")
    B = D.astype(np.float64) ** 2
    B -= B.mean(axis=0)[None, :]
    B -= B.mean(axis=1)[:, None]
    B *= -0.5
    B = 0.5 * (B + B.T)
    res = None
    if n > _DENSE_EIG_MAX and k < n - 1:
        from ..spectral._eigsh import _eigsh

        # (no warning: classical_mds has no max_iter / ncv / tol to advise; a Lanczos solve
        # that did not converge, or whose check failed, is replaced by the dense one below)
        res = _eigsh(B, k, which="LA", random_state=random_state, n_jobs=n_jobs, warn=False)
        if not res.converged:  # (False too where the check failed)
            res = None
        else:
            w, V = res.eigenvalues[::-1], res.eigenvectors[:, ::-1]
    if res is None:
        w, V = np.linalg.eigh(B)
        w, V = w[::-1][:k], V[:, ::-1][:, :k]
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(k)])
    signs[signs == 0] = 1
    Y = V * signs * np.sqrt(np.maximum(w, 0.0))
    return np.ascontiguousarray(Y), np.asarray(w, dtype=np.float64)


def smacof(
    D, init, *, max_iter: int = 300, eps: float = 1e-6, relax=False, n_jobs=None, verbose=False
):
    """Metric MDS by SMACOF (Guttman transforms) from a given start.

    Minimises the raw stress ``sum_{i<j} (||y_i - y_j|| - D_ij)^2`` by majorisation: every
    transform ``Y <- B(Y) Y / n`` never increases it. Same iterates and stopping rule as
    ``sklearn.manifold.smacof(metric=True, n_init=1)`` from the same ``init`` (stop when the
    stress decrease is below ``eps`` times the sum of squared embedded distances), except that
    a pair at distance 0 contributes no term (scikit-learn divides by 1e-5 there). C++, one
    fused O(n^2 p) pass over ``D`` per transform, OpenMP over rows.

    Parameters
    ----------
    D : array-like of shape (n, n)
        Symmetric non-negative dissimilarities with a zero diagonal (up to ``1e-8`` of the
        largest entry, read as 0; float32 is kept).
    init : array-like of shape (n, p)
        Start configuration.
    max_iter : int
        Transforms at most.
    eps : float
        Relative stress decrease at which to stop.
    relax : bool
        Over-relaxed steps ``Y <- 2 G(Y) - c Y`` (de Leeuw & Heiser 1980; ``G`` the
        transform, ``c = sum d D / sum d^2`` the stress-minimising scale of ``Y``, which ``G``
        ignores), the stress and the stopping rule taken of ``c Y``, a step that raises the
        stress replaced by the plain transform; ``c Y`` is returned. Fewer transforms (on
        PHATE's n = 20,000 DLA tree 121 instead of 179, to a lower stress), but not
        scikit-learn's iterates.
    n_jobs : int, optional
        Threads; the result does not depend on it.
    verbose : bool
        Progress lines on stderr.

    Returns
    -------
    Y : ndarray of shape (n, p)
        float64.
    stress : float
        Raw stress of ``Y``.
    n_iter : int
        Transforms applied.
    converged : bool
        Whether the stopping rule was met before ``max_iter``.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.diffusion import smacof
    >>> P = np.random.default_rng(0).standard_normal((40, 2))
    >>> D = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
    >>> Y0 = P + 0.1 * np.random.default_rng(1).standard_normal(P.shape)
    >>> Y, stress, n_iter, converged = smacof(D, Y0)
    >>> D0 = np.sqrt(((Y0[:, None] - Y0[None]) ** 2).sum(-1))
    >>> bool(stress < 0.1 * (np.triu(D0 - D) ** 2).sum()), converged
    (True, True)
    """
    D = _check_dissimilarities(D)
    X0 = as_float_array(init, "init", dtype=np.float64)
    if X0.shape[0] != D.shape[0]:
        raise ValueError(f"init has {X0.shape[0]} rows but D is {D.shape[0]} x {D.shape[0]}")
    max_iter = check_int(max_iter, "max_iter", low=0)
    eps = check_tol(eps, "eps", allow_zero=True)
    if not isinstance(relax, (bool, np.bool_)):
        raise TypeError(f"relax must be True or False; got {relax!r}")
    Y, stress, n_iter, conv = _core.smacof(
        D,
        X0,
        max_iter=max_iter,
        eps=eps,
        verbose=bool(verbose),
        n_jobs=check_n_jobs(n_jobs),
        relax=bool(relax),
    )
    # stress 0 is the exact minimum (all dissimilarities 0: identical points), which the
    # relative decrease test never accepts
    return Y, float(stress), int(n_iter), bool(conv) or float(stress) == 0.0


def _place(
    sq_block, n: int, lm, D_ll, Y_l, block: int = 16384, refine: int = 30, n_jobs: int = 0
) -> np.ndarray:
    """Landmark-MDS placement of n points: triangulation (de Silva & Tenenbaum 2004),
    ``y_a = mean + pinv(Y_l - mean) (-1/2) (delta_a^2 - mean_l D_ll^2)``, with
    ``sq_block(s, e)`` the squared dissimilarities (e - s, L) of points s..e-1 to the
    landmarks, then ``refine`` Guttman steps of each point's own stress to the fixed landmarks,
    ``sum_l (||y_a - y_l|| - delta_al)^2`` (exact for Euclidean data, where triangulation
    already is; for other dissimilarities triangulation alone can fold the embedding). The
    landmarks keep their coordinates ``Y_l``."""
    mean = Y_l.mean(axis=0)
    P = np.linalg.pinv(Y_l - mean)  # (k, L)
    d2_mean = (D_ll.astype(np.float64) ** 2).mean(axis=0)  # (L,)
    out = np.empty((n, Y_l.shape[1]))
    Y_l = np.ascontiguousarray(Y_l, dtype=np.float64)
    for s in range(0, n, block):
        e = min(n, s + block)
        d2 = np.asarray(sq_block(s, e), dtype=np.float64)
        y = -0.5 * (d2 - d2_mean) @ P.T + mean
        if refine:
            y = _core.smacof_place(np.sqrt(d2), Y_l, y, n_iter=refine, n_jobs=n_jobs)
        out[s:e] = y
    out[lm] = Y_l
    return out


def _check_landmark_indices(lm: np.ndarray, k: int, n: int) -> np.ndarray:
    """``landmarks`` given as indices: ValueError naming what is wrong (an index out of range,
    a repeated index, too few) and what is accepted."""
    accepted = f"landmarks must be at least n_components + 1 = {k + 1} distinct indices in [0, {n})"
    out = lm[(lm < 0) | (lm >= n)]
    if out.size:
        raise ValueError(
            f"landmarks holds {out.size} index(es) outside [0, {n}) (X has {n} samples), "
            f"e.g. {int(out[0])}; {accepted}"
        )
    values, counts = np.unique(lm, return_counts=True)
    if (counts > 1).any():
        rep = values[counts > 1]
        raise ValueError(
            f"landmarks repeats index {int(rep[0])} ({int(counts[counts > 1][0])} times; "
            f"{rep.size} repeated index(es) in all): each landmark must appear once; "
            f"{accepted} (np.unique(landmarks) drops the repeats)"
        )
    if lm.size < k + 1:
        raise ValueError(
            f"landmarks holds {lm.size} index(es) but n_components={k} needs at least {k + 1}; "
            f"{accepted}"
        )
    return lm


class MDS(EmbeddingMixin, BaseEstimator):
    """Multidimensional scaling: classical start, metric SMACOF refinement, landmarks.

    Without landmarks: the ``n x n`` dissimilarities (Euclidean distances of ``X``, or ``X``
    itself with ``dissimilarity="precomputed"``), a start (classical MDS, or random), then
    metric SMACOF (:func:`smacof`, C++) when ``metric=True``. With ``landmarks``: the same on
    the landmarks only, then every point is placed by landmark-MDS triangulation (de Silva &
    Tenenbaum 2004): ``y_a = -1/2 pinv(Y_L - mean) (delta_a^2 - mean_l delta_l^2)`` from its
    distances to the landmarks, so no ``n x n`` matrix is formed from features (O(n L)
    memory; a precomputed ``X`` is read in its ``n x L`` columns).

    Parameters
    ----------
    n_components : int, default 2
    metric : bool, default True
        True: metric SMACOF from the start; False: the classical (Torgerson) embedding only,
        whatever ``init`` (unlike scikit-learn, where ``metric=False`` means non-metric MDS,
        which geoml does not implement).
    init : {"classical", "random"} or ndarray of shape (n_samples, n_components)
        SMACOF start: classical MDS, uniform random in [0, 1) from ``random_state`` (as
        scikit-learn), or given (of the landmarks, with ``landmarks``; in the units of
        ``X``). Unused with ``metric=False``.
    landmarks : None, int or array of int
        None: all points; an int ``L``: ``L`` points drawn uniformly without replacement
        from ``random_state`` (more than ``n_samples``: every point, with a ``UserWarning``);
        an array: the landmark indices.
    dissimilarity : {"euclidean", "precomputed"}, default "euclidean"
        "precomputed": ``X`` is a dense symmetric non-negative ``(n, n)`` matrix with a zero
        diagonal; a diagonal up to ``1e-8`` of the largest entry (rounding) is read as 0, a
        larger one is refused (scikit-learn ignores the diagonal).
    max_iter : int, default 300
    eps : float, default 1e-6
        SMACOF stopping tolerance (as scikit-learn).
    random_state : None, int or Generator
    n_jobs : int, optional
    verbose : int, default 0
        > 0: stage messages on stderr and SMACOF progress lines.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        float64 for float32 input too (as scikit-learn's ``MDS``; ``fit_transform``
        returns it).
    stress_ : float
        Raw stress of the (landmark) configuration after SMACOF (classical: of the classical
        embedding).
    n_iter_ : int
        SMACOF transforms (0 with ``metric=False``).
    converged_ : bool
    landmarks_ : ndarray of int or None
    eigenvalues_ : ndarray of shape (n_components,) or None
        Classical-MDS eigenvalues (when the start is classical).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.random.default_rng(0).standard_normal((100, 5))
    >>> mds = geoml.MDS(n_components=2, random_state=0).fit(X)
    >>> mds.embedding_.shape, mds.converged_
    ((100, 2), True)
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        metric: bool = True,
        init="classical",
        landmarks=None,
        dissimilarity: str = "euclidean",
        max_iter: int = 300,
        eps: float = 1e-6,
        random_state=None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        self.n_components = n_components
        self.metric = metric
        self.init = init
        self.landmarks = landmarks
        self.dissimilarity = dissimilarity
        self.max_iter = max_iter
        self.eps = eps
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _say(self, msg: str) -> None:
        say(self.verbose, "MDS", msg)

    def fit(self, X, y=None) -> MDS:
        """Fit on ``X`` of shape (n_samples, n_features), or (n, n) dissimilarities with
        ``dissimilarity="precomputed"``."""
        # BLAS on one thread (the distances' GEMMs, the classical start's eigh, the landmark
        # placement): a multi-threaded OpenBLAS splits its work by its thread count, which on
        # its Haswell kernels changes the bits (landmarks: 1.3e-15 between 1 and 2 threads);
        # SMACOF is geoml's OpenMP kernel. On a loaded 2-core machine also faster: n = 3,000
        # with 300 landmarks 0.105 -> 0.034 s
        names_in = self._feature_names_of(X)
        with single_threaded_blas():
            out = self._fit(X)
            self._set_feature_names(names_in)
            return out

    def _fit(self, X) -> MDS:
        if self.dissimilarity not in ("euclidean", "precomputed"):
            raise ValueError(
                f"dissimilarity={self.dissimilarity!r}; choose 'euclidean' or 'precomputed'"
            )
        reject_gpu(X, "X", "MDS")
        pre = self.dissimilarity == "precomputed"
        X = _check_dissimilarities(X, "X") if pre else as_float_array(X, "X")
        if not pre and X.size and float(np.abs(X).max()) > _MAX_ABS:
            raise ValueError(f"X has entries above {_MAX_ABS:g}: rescale it (squares overflow)")
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"MDS needs at least 2 samples; got n_samples = {n}")
        amax = (float(X.max()) if pre else float(np.abs(X).max())) if X.size else 0.0
        shift = int(np.frexp(amax)[1]) if 0.0 < amax < _MIN_ABS else 0
        if shift:  # embedded at scale 2^-shift, scaled back below (exact)
            X = np.ldexp(X, -shift).astype(X.dtype, copy=False)
        k = check_int(self.n_components, "n_components", low=1, high=n - 1, hint=f" ({n} samples)")
        max_iter = check_int(self.max_iter, "max_iter", low=0)
        eps = check_tol(self.eps, "eps", allow_zero=True)
        nt = check_n_jobs(self.n_jobs)
        rng = check_random_state(self.random_state)
        seed = random_seed(rng)
        if not isinstance(self.metric, (bool, np.bool_)):
            raise TypeError(f"metric must be True or False; got {self.metric!r}")
        # the landmark set
        if self.landmarks is None:
            lm = None
        elif isinstance(self.landmarks, (int, np.integer)) and not isinstance(self.landmarks, bool):
            check_int(
                self.landmarks,
                "landmarks",
                low=k + 1,
                hint=f" (n_components + 1 <= landmarks; {n} samples)",
            )
            m = truncate_to_samples(self.landmarks, "landmarks", n, high=n, what="X.shape[0]")
            lm = np.sort(rng.choice(n, size=m, replace=False))
        else:
            lm = np.asarray(self.landmarks)
            if lm.ndim != 1 or lm.dtype.kind not in "iu":
                raise TypeError("landmarks must be None, an int or a 1-D array of indices")
            lm = _check_landmark_indices(lm, k, n)
        # dissimilarities of the points MDS runs on
        if lm is None:
            D = X if pre else np.sqrt(_sq_dists(X, X))
            if not pre:
                np.fill_diagonal(D, 0.0)
                D = 0.5 * (D + D.T)
        else:
            D = X[np.ix_(lm, lm)] if pre else np.sqrt(_sq_dists(X[lm], X[lm]))
            if not pre:
                np.fill_diagonal(D, 0.0)
                D = 0.5 * (D + D.T)
        Y, stress, n_iter, conv = self._embed(D, k, max_iter, eps, rng, seed, nt, shift=shift)
        if lm is not None:
            self._say(f"placing {n} points from {lm.size} landmarks")
            Y = self._triangulate(X, pre, lm, D, Y, nt)
        if shift:  # (the SMACOF step does not depend on the scale of its start)
            Y, stress = np.ldexp(Y, shift), math.ldexp(stress, 2 * shift)
            if self.eigenvalues_ is not None:
                self.eigenvalues_ = np.ldexp(self.eigenvalues_, 2 * shift)
        self.embedding_ = np.ascontiguousarray(Y, dtype=np.float64)
        self.stress_ = float(stress)
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(conv)
        self.landmarks_ = lm
        self.n_features_in_ = X.shape[1]
        return self

    def _embed(self, D, k, max_iter, eps, rng, seed, nt, relax=False, D_iter=None, shift=0):
        """Start (classical / random / given) and SMACOF on the dissimilarities D (over-relaxed
        with ``relax``, see :func:`smacof`); sets ``eigenvalues_``; warns when SMACOF did not
        converge. ``D_iter``: the dissimilarities SMACOF iterates on instead of D (PHATE: D
        rounded to float32), the stress still D's. ``shift``: D is the caller's
        dissimilarities times ``2^-shift`` (:meth:`fit`'s tiny-scale rescaling), so a given
        start is scaled the same way. ``metric=False``: the classical embedding, whatever
        ``init``. Returns (Y, stress, n_iter, converged)."""
        nm = D.shape[0]
        self.eigenvalues_ = None
        init = self.init
        if not self.metric:  # no SMACOF: the classical embedding (init is a SMACOF start)
            init = "classical"
        if isinstance(init, str):
            if init == "classical":
                self._say(f"classical MDS of {nm} points")
                Y0, self.eigenvalues_ = classical_mds(D, k, random_state=seed, n_jobs=self.n_jobs)
            elif init == "random":
                Y0 = rng.uniform(size=(nm, k))
            else:
                raise ValueError(f"init={init!r}; choose 'classical', 'random' or an array")
        else:
            Y0 = as_float_array(init, "init", dtype=np.float64)
            if Y0.shape != (nm, k):
                raise ValueError(f"init must have shape {(nm, k)}; got {Y0.shape}")
            if shift:  # at the scale of D (a start of 1e-160 beside D of 1: squares underflow)
                Y0 = np.ldexp(Y0, -shift)
        if self.metric:
            self._say(f"SMACOF on {nm} points")
            Y, stress, n_iter, conv = _core.smacof(
                D if D_iter is None else D_iter,
                np.ascontiguousarray(Y0),
                max_iter=max_iter,
                eps=eps,
                verbose=bool(self.verbose),
                n_jobs=nt,
                relax=relax,
            )
            if D_iter is not None:  # the stress of Y against D (one pass, no transform)
                stress = _core.smacof(D, Y, max_iter=0, eps=eps, n_jobs=nt)[1]
            conv = bool(conv) or float(stress) == 0.0  # (an exact minimum: see smacof)
            if not conv and max_iter > 0:
                warnings.warn(
                    f"SMACOF did not meet eps={eps:g} in max_iter={max_iter} transforms: the "
                    "embedding is not a stress minimum; raise max_iter",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
        else:
            Y, n_iter, conv = Y0, 0, True
            d = np.sqrt(_sq_dists(Y, Y))
            stress = float(((np.triu(d - D, 1)) ** 2).sum())
        return Y, stress, n_iter, conv

    @staticmethod
    def _triangulate(X, pre, lm, D_ll, Y_l, nt, block: int = 16384):
        """Landmark-MDS placement of every point from its distances to the landmarks."""
        n = X.shape[0]

        def sq(s, e):
            if pre:
                return X[s:e][:, lm].astype(np.float64) ** 2
            return _sq_dists(X[s:e], X[lm])

        return _place(sq, n, lm, D_ll, Y_l, block, n_jobs=nt)

    def _geoml_tags(self) -> dict:
        return {"input_tags.pairwise": self.dissimilarity == "precomputed"}
