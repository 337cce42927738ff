"""Diffusion spectral entropy (DSE) and mutual information (DSMI), after the dse-dsmi package."""

from __future__ import annotations

import contextlib
import math
import numbers
import random
from typing import NamedTuple

import numpy as np

from .._results import ExtraFields
from .._validation import (
    as_float_array,
    blas_for_dense,
    check_int,
    check_n_jobs,
    check_random_state,
    random_seed,
    reject_gpu,
    single_threaded_blas,
    validate_random_state,
)
from ._entropy import SpectralMeasure, _check_method, _check_rtol
from ._slq_entropy import slq_entropy

__all__ = [
    "DiffusionMutualInformation",
    "KNNSpectralMeasure",
    "diffusion_spectral_entropy",
    "diffusion_spectral_mutual_information",
]

_AUTO_EXACT = 2000  # "auto": dense eigenvalues up to this many points
_DENSE_BYTES = 2**30  # SLQ keeps the N x N float32 kernel when it fits, else recomputes tiles
_TILE_ELEMS = 2**22  # rows per kernel tile: tile * N <= this
_KNN_EXACT_BELOW = 20_000  # geoml.knn(method="auto") is exact below this
_SMALL_N = 3000  # SLQ below this many points: BLAS held to one thread
_KERNEL_F32 = True  # SLQ: the dense kernel stored (and multiplied) in float32
_DEFLATE_EXTRA = 32  # SLQ deflates a block of rank min(n_features + 32, 512, N / 4)
_DEFLATE_MAX = 512
_BLOCK_ELEMS = 2**24


class DiffusionMutualInformation(NamedTuple):
    """Result of :func:`diffusion_spectral_mutual_information`.

    Attributes
    ----------
    value : float
        DSMI in bits.
    stderr : float
        Standard error from the SLQ estimates of the entropies it sums (0.0 when every
        entropy was exact); the random subsets' own sampling spread is not included.
    labels : ndarray of shape (n_samples,)
        The class of each sample (the labels, the bins of a continuous scalar, or the
        spectral clusters of a continuous vector).
    """

    value: float
    stderr: float
    labels: np.ndarray


def _check_sigma_t(sigma, t):
    for name, v in (("sigma", sigma), ("t", t)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a positive number; got {v!r}")
        if not (math.isfinite(float(v)) and float(v) > 0):
            raise ValueError(f"{name}={v} must be a positive finite number")
    return float(sigma), float(t)


def _check_common(X, method, rtol, sigma, t, n_jobs, name: str):
    """The checks that DSE and DSMI share: ``(X, rtol, sigma, t)``, X as float64 on the host."""
    _check_method(method)
    rtol = _check_rtol(rtol)
    sigma, t = _check_sigma_t(sigma, t)
    check_n_jobs(n_jobs)
    reject_gpu(X, "X", name)
    X = as_float_array(X, "X", dtype=np.float64)
    return X, rtol, sigma, t


def _check_kernel(kernel, n_neighbors):
    if kernel not in ("dense", "knn"):
        raise ValueError(f"kernel={kernel!r} is not supported; use 'dense' or 'knn'")
    return kernel, check_int(n_neighbors, "n_neighbors", low=1)


def _scaled(X, sigma):
    """``X / sigma`` (the kernel is ``exp(-||x - y||^2 / (2 sigma^2))`` up to a constant
    factor, which cancels in ``K``) and its squared row norms; ``ValueError`` when they
    overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        Xs = X / sigma
        sq = np.einsum("ij,ij->i", Xs, Xs)
    if not (np.isfinite(Xs).all() and np.isfinite(sq).all() and sq.max() <= 1e300):
        raise ValueError(
            "X / sigma is too large: its squared distances overflow float64 (rescale X or "
            "raise sigma)"
        )
    return Xs, sq


def _gaussian_tile(Xs, sq, rows):
    """Rows ``rows`` of ``G = exp(-||x - y||^2 / 2)`` on the scaled points (float64); the
    reference's factor ``1 / (sigma sqrt(2 pi))`` is left out (it cancels in ``K``)."""
    D2 = sq[rows, None] + sq[None, :] - 2.0 * (Xs[rows] @ Xs.T)
    np.maximum(D2, 0.0, out=D2)
    idx = np.arange(D2.shape[0])
    D2[idx, np.arange(rows.start, rows.stop)] = 0.0
    D2 *= -0.5
    np.exp(D2, out=D2)
    return D2


def _kernel(X, sigma):
    """The reference's anisotropic kernel K = D^-1/2 G D^-1/2 (dense, float64) and the
    degrees D = G 1 (of the unscaled G / (sigma sqrt(2 pi)), up to that factor)."""
    Xs, sq = _scaled(X, sigma)
    G = _gaussian_tile(Xs, sq, slice(0, X.shape[0]))
    deg = G.sum(axis=1)
    dinv = 1.0 / np.sqrt(deg)
    G *= dinv[:, None]
    G *= dinv[None, :]
    return G, deg


def _kernel32(X, sigma):
    """The same K for the SLQ products, stored in float32: entries computed in float64 from
    the centred points by row tiles of about ``_TILE_ELEMS`` values, each tile only for the
    columns from its first row on (the other half mirrored: half the distance products and
    exponentials), then rounded (relative error ``6e-8`` per entry, far below the SLQ
    tolerance); the degrees are summed in float64."""
    N = X.shape[0]
    Xs, sq = _scaled(X - X.mean(axis=0), sigma)
    K = np.empty((N, N), dtype=np.float32)
    deg = np.zeros(N)
    step = max(1, _TILE_ELEMS // N)
    for s in range(0, N, step):
        e = min(s + step, N)
        D2 = Xs[s:e] @ Xs[s:].T  # becomes -||x - y||^2 / 2 in place, then its exp
        D2 -= 0.5 * sq[s:e, None]
        D2 -= 0.5 * sq[None, s:]
        np.minimum(D2, 0.0, out=D2)
        blk = D2[:, : e - s]
        blk[...] = 0.5 * (blk + blk.T)
        np.fill_diagonal(blk, 0.0)
        np.exp(D2, out=D2)
        deg[s:e] += D2.sum(axis=1)
        deg[e:] += D2[:, e - s :].sum(axis=0)
        K[s:e, s:] = D2
        K[e:, s:e] = D2[:, e - s :].T
    dinv = 1.0 / np.sqrt(deg)
    for s in range(0, N, step):
        r = slice(s, min(s + step, N))
        K[r] *= (dinv[r, None] * dinv[None, :]).astype(np.float32)
    return K, deg


def _dse_exact(X, sigma, t):
    """dse-dsmi 1.1 ``diffusion_spectral_entropy`` (default options), term by term."""
    K, _ = _kernel(X, sigma)
    return _spectrum_entropy(K, t)


def _knn_kernel(X, sigma, k, random_state, n_jobs):
    """Sparse kNN version of the kernel: ``W_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` on the
    edges of the symmetrised kNN graph (j among the k nearest of i, or i of j), ``W_ii = 1``,
    0 elsewhere; ``K = D^-1/2 W D^-1/2``. Returns (K as float64 CSR, degrees, the search's
    RecallEstimate: None for the exact search), K and the degrees in reverse Cuthill-McKee
    order of the graph (a symmetric permutation of the points)."""
    import scipy.sparse as sp

    from .. import _core
    from ..neighbors import knn

    N = X.shape[0]
    k = min(k, N - 1)
    # approximate search (N >= 20,000) on float32 points: half the memory traffic
    Xk = X if N < _KNN_EXACT_BELOW else X.astype(np.float32)
    res = knn(Xk, k, method="auto", random_state=random_state, n_jobs=n_jobs)
    recall = getattr(res, "recall_", None)
    del Xk
    w = np.exp(-0.5 * (res.distances.astype(np.float64) / sigma) ** 2)
    rows = np.repeat(np.arange(N, dtype=np.int64), k)
    W = sp.csr_matrix((w.ravel(), (rows, res.indices.ravel())), shape=(N, N))
    W = (W.maximum(W.T) + sp.identity(N, format="csr")).tocsr()
    deg = np.asarray(W.sum(axis=1)).ravel()
    dinv = 1.0 / np.sqrt(deg)
    K = (sp.diags(dinv) @ W @ sp.diags(dinv)).tocsr()
    # reverse Cuthill-McKee order (the spectrum, and so the entropy, is invariant under a
    # symmetric permutation): neighbours get nearby rows, so the SLQ block products read
    # rows of the probe block from cache instead of memory (5x per product at N = 100,000 on
    # clustered data; 0.03 s of ordering, a third of SciPy's reverse_cuthill_mckee)
    perm = _core.rcm_components(K.indptr, K.indices)[0]
    K = K[perm][:, perm].tocsr()
    deg = deg[perm]
    K.sort_indices()
    if K.indices.dtype != K.indptr.dtype:
        K.indices = K.indices.astype(K.indptr.dtype)
    return K, deg, recall


def _dse_slq(X, sigma, t, rtol, n_probes, random_state, kernel, n_neighbors, n_jobs):
    """SLQ estimate of the same entropy: the known top pair (1, D^1/2 1) deflated, then (dense
    kernel) a block of the dominant eigen-directions taken out of the probes (``deflate``)."""
    N = X.shape[0]
    rng = check_random_state(random_state)
    K = Ks = Xs = sq = tiles = recall = None
    dense = False
    if kernel == "knn":
        from ..spectral._slq import _csr_block_product

        nt = check_n_jobs(n_jobs)
        Ks, deg, recall = _knn_kernel(X, sigma, n_neighbors, rng, n_jobs)
    else:
        Xs, sq = _scaled(X, sigma)
        step = max(1, _TILE_ELEMS // N)
        tiles = [slice(s, min(s + step, N)) for s in range(0, N, step)]
        dense = (4 if _KERNEL_F32 else 8) * N * N <= _DENSE_BYTES
        if dense:
            K, deg = _kernel32(X, sigma) if _KERNEL_F32 else _kernel(X, sigma)
        else:
            deg = np.empty(N)
            for r in tiles:
                deg[r] = _gaussian_tile(Xs, sq, r).sum(axis=1)
    dinv = 1.0 / np.sqrt(deg)
    v = np.sqrt(deg)  # K D^1/2 1 = D^-1/2 G 1 = D^1/2 1: the top eigenvector, eigenvalue 1
    v /= np.linalg.norm(v)

    def matmat(B, out):
        if Ks is not None:
            _csr_block_product(Ks, np.ascontiguousarray(B), out, nt)
        elif dense and K.dtype == np.float32:
            out[...] = K @ B.astype(np.float32)
        elif dense:
            np.matmul(K, B, out=out)
        else:
            Bs = B * dinv[:, None]
            for r in tiles:
                out[r] = _gaussian_tile(Xs, sq, r) @ Bs
            out *= dinv[:, None]
        # out -= v (v^T B), in place (BLAS rank-1 update of out^T; no N x m temporary)
        dger(-1.0, v @ B, v, a=out.T, overwrite_a=1)

    from scipy.linalg.blas import dger

    def g(x):
        return np.abs(x) ** t

    if t == 1.0 and kernel == "dense":
        # K is positive semi-definite: sum |l| = tr K = G_ii sum 1 / D_ii (top pair included)
        S_exact = float((dinv**2).sum())
    else:
        S_exact = None  # t != 1, or the kNN kernel (not positive semi-definite)
    # small problems: threaded BLAS only loses (100 ms -> 1 s on a busy 2-core machine)
    blas = single_threaded_blas() if N < _SMALL_N else contextlib.nullcontext()
    with blas:
        H, se, m, _, ok = slq_entropy(
            matmat,
            N,
            g,
            deflate=_deflate_rank(N, X.shape[1]) if kernel == "dense" else 0,
            S_exact=S_exact,
            S_extra=1.0,
            T_extra=0.0,
            rtol=rtol,
            n_probes=n_probes,
            random_state=rng,
            what="diffusion_spectral_entropy",
            # the kNN kernel: Lanczos steps stop on the entropy's own move (see slq_entropy)
            step_rule="entropy" if kernel == "knn" else "totals",
        )
    return H / math.log(2.0), se / math.log(2.0), m, ok, recall


def _deflate_rank(N, d):
    """Rank of the deflated block: the Gaussian kernel's dominant eigenvalues are the constant
    and the ``d`` linear terms of its Taylor expansion (El Karoui 2010), then a bulk; at most
    2^24 values per block."""
    r = min(d + _DEFLATE_EXTRA, _DEFLATE_MAX, N // 4, _BLOCK_ELEMS // max(N, 1))
    return r if r >= 8 else 0


def _spectrum_entropy(K, t):
    ev = np.abs(np.linalg.eigvalsh(K)) ** t
    p = ev / ev.sum() + np.finfo(float).eps
    return float(-np.sum(p * np.log2(p)))


def _dse(
    X, sigma, t, method, rtol, n_probes, random_state, kernel="dense", n_neighbors=15, n_jobs=None
):
    N = X.shape[0]
    if method == "auto":
        method = "exact" if N <= _AUTO_EXACT else "slq"
    if method == "exact" or N < 3:
        if kernel == "knn" and N >= 3:
            rs = check_random_state(random_state)
            K, _, recall = _knn_kernel(X, sigma, n_neighbors, rs, n_jobs)
            with blas_for_dense(N):
                H = _spectrum_entropy(K.toarray(), t)
            return _with_recall(SpectralMeasure(H, 0.0, "exact", 0, True), recall, N)
        # BLAS (the kernel's GEMM, LAPACK's eigenvalues) on one thread up to 1,024 points: a
        # multi-threaded OpenBLAS splits its work by its thread count, which on its Haswell
        # kernels changes the bits (4e-15 at N = 1,000 between 1 and 2 threads); above, the
        # BLAS's own threads (one thread was 2x slower at N = 3,000 on a quiet 2-core machine)
        with blas_for_dense(N):
            H = _dse_exact(X, sigma, t)
        return SpectralMeasure(H, 0.0, "exact", 0, True)
    H, se, m, ok, recall = _dse_slq(
        X, sigma, t, rtol, n_probes, random_state, kernel, n_neighbors, n_jobs
    )
    res = SpectralMeasure(H, se, "slq", m, ok)
    return _with_recall(res, recall, N) if kernel == "knn" else res


class KNNSpectralMeasure(ExtraFields, SpectralMeasure):
    """:class:`SpectralMeasure` (same fields) of ``kernel="knn"``, with the kNN search's
    measured recall in ``recall_`` (a :class:`geoml.RecallEstimate`; its ``reached`` is False,
    and a ``RuntimeWarning`` was issued, when the approximate search stopped below its
    target: the kernel, and so the entropy, then rests on partly wrong neighbours)."""

    recall_: object


def _with_recall(res, recall, n):
    from ..neighbors import RecallEstimate

    out = KNNSpectralMeasure(*res)
    if recall is None:  # the exact search (below 20,000 points)
        recall = RecallEstimate(1.0, 1.0, 1.0, n, 1.0, True, "exact", 0)
    out.recall_ = recall
    return out


def diffusion_spectral_entropy(
    X,
    *,
    sigma: float = 10.0,
    t: float = 1,
    method: str = "auto",
    rtol: float = 1e-2,
    n_probes: int | None = None,
    kernel: str = "dense",
    n_neighbors: int = 15,
    random_state=None,
    n_jobs: int | None = None,
) -> SpectralMeasure:
    """Diffusion spectral entropy (Liao et al. 2023) of a point cloud, in bits.

    The definition of the reference package ``dse-dsmi`` 1.1 (``diffusion_spectral_entropy``
    with its defaults): the Gaussian kernel ``G = exp(-||x - y||^2 / (2 sigma^2)) /
    (sigma sqrt(2 pi))`` on all pairs, the anisotropic normalisation
    ``K = D^-1/2 G D^-1/2`` (``D`` the row sums; ``K`` has the eigenvalues of the diffusion
    matrix ``D^-1 G``), ``p_i = |l_i|^t / sum_j |l_j|^t`` over all N eigenvalues (the
    package keeps the top eigenvalue 1, although the paper drops it; geoml follows the
    code), ``eps`` (float64) added to each ``p_i``, and ``-sum p log2 p``. The reference
    subsamples to 10,000 points; geoml uses every point.

    ``method="exact"``: dense eigenvalues (O(N^3), N x N memory), equal to the reference to
    rounding. ``"slq"``: stochastic Lanczos quadrature of ``tr |K'|^t`` and
    ``tr |K'|^t log |K'|^t`` on the same probes, ``K' = K - v v^T`` with the known top
    eigenpair ``(1, v = D^1/2 1 / ||D^1/2 1||)`` deflated (``tr K`` itself is exact for
    ``t = 1``); the kernel is kept dense when it fits in 1 GiB and recomputed by row tiles
    otherwise (no N x N matrix); the ``eps`` terms (at most ``6e-14 N`` bits) are left out.
    The dominant eigen-directions (a block of rank ``min(n_features + 32, 512, N / 4)``
    from one block product with a Gaussian block) are taken out of the probes and their
    part of the traces computed by a block Gauss quadrature (Hutch++-style variance
    reduction, see ``docs/design/measures.md``). The result carries a delta-method standard
    error. ``"auto"``: exact up to N = 2000.

    ``kernel="knn"`` is a different, sparse quantity for large N (not the reference's): the
    Gaussian weights only on the edges of the symmetrised ``n_neighbors``-NN graph
    (``geoml.knn(method="auto")``: approximate NN-descent above 20,000 points), 1 on the
    diagonal, the same normalisation and entropy. It is not positive semi-definite, so
    ``sum |l|^t`` is estimated too. For data where sigma is large against the neighbour
    distances the dense kernel is nearly constant and the two entropies differ widely.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Representations (computed in float64). No NaN/inf.
    sigma : float
        Kernel bandwidth (default 10, the reference's).
    t : float
        Diffusion time: the power of the eigenvalues (default 1).
    method : {"auto", "exact", "slq"}
    rtol : float
        SLQ target relative accuracy (default 1e-2).
    n_probes : int, optional
        SLQ: fixed number of probes (default adaptive, at most 512).
    kernel : {"dense", "knn"}
        The reference's dense Gaussian kernel (default), or its sparse kNN version.
    n_neighbors : int
        Neighbours per point of the ``"knn"`` kernel (default 15).
    random_state : int, Generator or None
        SLQ probes (and the approximate kNN search).
    n_jobs : int, optional
        Threads of the kNN search and sparse products (``kernel="knn"``); the dense
        products run on NumPy's BLAS threads: one up to 1,024 points (the same bits for any
        thread count), the BLAS's own above (their count can change the last bits).

    Returns
    -------
    SpectralMeasure
        ``value`` (bits), ``stderr``, ``method``, ``n_probes``, ``converged``.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.random.default_rng(0).uniform(size=(200, 16))
    >>> dse = geoml.diffusion_spectral_entropy(X, method="exact")
    >>> bool(0.0 < dse.value < np.log2(200))
    True
    """
    X, rtol, sigma, t = _check_common(
        X, method, rtol, sigma, t, n_jobs, "diffusion_spectral_entropy"
    )
    if n_probes is not None:
        n_probes = check_int(n_probes, "n_probes", low=2)
    kernel, n_neighbors = _check_kernel(kernel, n_neighbors)
    validate_random_state(random_state)
    return _dse(X, sigma, t, method, rtol, n_probes, random_state, kernel, n_neighbors, n_jobs)


def _labels(y, n, discrete, n_clusters):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D; got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} samples; X has {n}")
    if discrete is None:
        discrete = y.ndim == 1 and y.dtype.kind in "iubUS"  # (strings: only class names)
    if discrete:
        if y.ndim != 1:
            raise ValueError("discrete=True needs y of shape (n_samples,) or (n_samples, 1)")
        return y
    yf = as_float_array(y.reshape(n, -1), "y", dtype=np.float64)
    if yf.shape[1] == 1:
        v = yf[:, 0]
        span = v.max() - v.min()
        if span == 0:
            return np.zeros(n, dtype=np.int64)
        v = (v - v.min()) / span
        return np.digitize(v, bins=np.linspace(0, 1, n_clusters + 1)[:-1])
    try:
        from sklearn.cluster import SpectralClustering
    except ImportError as e:  # pragma: no cover
        raise ImportError(
            "a continuous multi-dimensional y is clustered with scikit-learn's "
            "SpectralClustering (as the reference); install scikit-learn or pass labels"
        ) from e
    op = SpectralClustering(
        n_clusters=n_clusters,
        affinity="nearest_neighbors",
        assign_labels="cluster_qr",
        random_state=0,
    ).fit(yf)
    return op.labels_


def diffusion_spectral_mutual_information(
    X,
    y,
    *,
    sigma: float = 10.0,
    t: float = 1,
    discrete: bool | None = None,
    n_clusters: int = 10,
    n_repetitions: int = 5,
    random_state=0,
    method: str = "auto",
    rtol: float = 1e-2,
    kernel: str = "dense",
    n_neighbors: int = 15,
    n_jobs: int | None = None,
) -> DiffusionMutualInformation:
    """Diffusion spectral mutual information ``DSMI(X; y)`` in bits (Liao et al. 2023).

    The reference's estimator (``dse-dsmi`` 1.1): for each class ``b`` of ``y`` (sorted),
    ``DSE(X | y = b)`` against the mean of ``n_repetitions`` DSEs of random subsets of X of
    the same size, weighted by the class frequencies:
    ``DSMI = sum_b p(b) [mean_r DSE(X*_r) - DSE(X | y = b)]``. The random subsets are drawn
    as the reference draws them (Python's ``random.sample`` on ``range(n)``, re-seeded with
    ``random_state`` for every class), so an integer ``random_state`` reproduces the
    reference exactly. Classes: ``y`` itself when it is discrete (1-D integer, bool or
    string; or ``discrete=True``), the ``n_clusters`` equal-width bins of a continuous scalar, or
    scikit-learn's ``SpectralClustering(n_clusters, affinity="nearest_neighbors",
    assign_labels="cluster_qr", random_state=0)`` of a continuous vector.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_ref)
    sigma, t : float
        As in :func:`diffusion_spectral_entropy`.
    discrete : bool, optional
        Whether ``y`` holds class labels (default: inferred, 1-D integer, bool or string).
    n_clusters : int
        Bins or clusters of a continuous ``y``.
    n_repetitions : int
        Random subsets per class (default 5).
    random_state : int, Generator or None
        Seed of the random subsets (default 0, the reference's).
    method, rtol, kernel, n_neighbors :
        As in :func:`diffusion_spectral_entropy`, for every entropy computed.
    n_jobs : int, optional
        As in :func:`diffusion_spectral_entropy`.

    Returns
    -------
    DiffusionMutualInformation
        ``value`` (bits), ``stderr``, ``labels`` (n_samples,).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> X = rng.normal(size=(100, 8)) + 20.0 * y[:, None]
    >>> mi = geoml.diffusion_spectral_mutual_information(X, y)
    >>> bool(mi.value > 0)
    True
    """
    X, rtol, sigma, t = _check_common(
        X, method, rtol, sigma, t, n_jobs, "diffusion_spectral_mutual_information"
    )
    n = X.shape[0]
    n_clusters = check_int(n_clusters, "n_clusters", low=1)
    n_repetitions = check_int(n_repetitions, "n_repetitions", low=1)
    if discrete is not None and not isinstance(discrete, (bool, np.bool_)):
        raise TypeError(f"discrete must be a bool or None; got {discrete!r}")
    # None or an int: the seed of every class's search and of the resampling, as given (a
    # NumPy integer as a Python int: random.Random refuses it); a generator: one draw
    if validate_random_state(random_state) is None:
        seed = None
    elif isinstance(random_state, numbers.Integral):
        seed = int(random_state)
    else:
        seed = random_seed(random_state)
    kernel, n_neighbors = _check_kernel(kernel, n_neighbors)
    opts = {"kernel": kernel, "n_neighbors": n_neighbors, "n_jobs": n_jobs}
    labels = _labels(y, n, discrete, n_clusters)
    classes, counts = np.unique(labels, return_counts=True)
    mi, var = 0.0, 0.0
    for c, cnt in zip(classes, counts):
        cond = _dse(X[labels == c], sigma, t, method, rtol, None, seed, **opts)
        rnd = random.Random(seed) if seed is not None else random.Random()
        reps = []
        for _ in range(n_repetitions):
            inds = np.array(rnd.sample(range(n), k=int(cnt)))
            reps.append(_dse(X[inds], sigma, t, method, rtol, None, seed, **opts))
        w = cnt / n
        mi += w * (np.mean([r.value for r in reps]) - cond.value)
        var += w**2 * (cond.stderr**2 + sum(r.stderr**2 for r in reps) / n_repetitions**2)
    return DiffusionMutualInformation(float(mi), math.sqrt(var), labels)
