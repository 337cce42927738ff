"""Intrinsic-dimension estimators on one exact kNN pass: MLE, TwoNN, GRIDE and local PCA."""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import NamedTuple

import numpy as np

from .._results import ExtraFields
from .._validation import (
    as_float_array,
    check_bool,
    check_int,
    check_n_jobs,
    user_stacklevel,
    validate_random_state,
)

__all__ = ["ApproxIntrinsicDimension", "IntrinsicDimension", "intrinsic_dimension"]

_METHODS = ("mle", "twonn", "gride", "lpca")
_RULES = ("FO", "ratio", "maxgap", "participation_ratio", "Kaiser", "broken_stick")
_COMBS = ("mle", "mean", "median")
_DEFAULT_K = 20  # scikit-dimension's MLE default (and geoml's default neighbourhood size)
_CHUNK_ELEMS = 2**23  # local PCA: gathered neighbourhoods per chunk (k * d * points)
_NEIGHBOR_MODES = ("exact", "sample", "nndescent", "auto")
# neighbors="auto": "sample" from this many points (MLE and GRIDE, global); below it the
# exact search takes under ~2 s on 2 cores at d = 64.
_AUTO_APPROX_N = 50_000


class IntrinsicDimension(NamedTuple):
    """Result of :func:`intrinsic_dimension`.

    Attributes
    ----------
    dimension : float
        The global estimate.
    stderr : float
        Its standard error where the estimator has one (TwoNN with ``fit="mle"``: ``d /
        sqrt(n_used - 2)`` from the Pareto likelihood; GRIDE: the inverse square root of the
        observed Fisher information); ``nan`` otherwise. It treats the ratios as independent,
        which holds for the model, not exactly for ratios of neighbouring points.
    pointwise : ndarray of shape (n_samples,) or None
        Per-point estimates with ``local=True`` (``nan`` where a point has a zero neighbour
        distance; for TwoNN / GRIDE also where one of its k neighbours has one), else None.
    n_used : int
        Points (or ratios) that entered the global estimate, after the duplicate and
        discard rules.
    """

    dimension: float
    stderr: float
    pointwise: np.ndarray | None
    n_used: int


class ApproxIntrinsicDimension(ExtraFields, IntrinsicDimension):
    """:class:`IntrinsicDimension` (same fields) of ``neighbors="nndescent"`` or ``"auto"``,
    with the error of the approximate neighbour search.

    ``dimension`` estimates the exact-neighbour value (what ``neighbors="exact"`` returns);
    ``stderr`` keeps its meaning (the estimator's own statistical error), computed on the
    neighbours at hand (the approximate lists, or for ``"sample"`` the checked points alone,
    as is ``n_used``). Extra attributes:

    * ``neighbors_stderr``: standard error of ``dimension`` against the exact-neighbour value
      (0 when the exact search ran).
    * ``uncorrected``: the plug-in estimate on the approximate neighbours (``"sample"``: on
      the checked points alone).
    * ``recall_``: the search's :class:`geoml.RecallEstimate`.
    * ``n_checked``: points whose neighbours were searched exactly for the correction.
    """

    neighbors_stderr: float
    uncorrected: float
    recall_: object
    n_checked: int


def _approx_result(res, neighbors_stderr, uncorrected, recall, n_checked):
    out = ApproxIntrinsicDimension(*res)
    out.neighbors_stderr = float(neighbors_stderr)
    out.uncorrected = float(uncorrected)
    out.recall_ = recall
    out.n_checked = int(n_checked)
    return out


# ----------------------------------------------------------------------------- checks


def _check_fraction(value, name, *, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r}")
    value = float(value)
    ok = (0.0 < value < 1.0) if low_open else (0.0 <= value < 1.0)
    if not ok:
        raise ValueError(f"{name}={value} must be in {'(0, 1)' if low_open else '[0, 1)'}")
    return value


def _neighbors(X, kmax, neighbors, n_jobs):
    """(distances float64 (n, kmax), indices (n, kmax)) from one geoml.knn pass or the
    precomputed pair, self excluded, each row sorted."""
    n = X.shape[0]
    if neighbors is None:
        from ..neighbors import knn

        idx, dist = knn(X, kmax, exclude_self=True, n_jobs=n_jobs)
        return np.asarray(dist, dtype=np.float64), idx
    if not isinstance(neighbors, tuple) or len(neighbors) != 2:
        raise TypeError(
            "neighbors must be a KNNResult or an (indices, distances) tuple as geoml.knn returns"
        )
    idx, dist = np.asarray(neighbors[0]), np.asarray(neighbors[1])
    if idx.ndim != 2 or dist.shape != idx.shape or idx.shape[0] != n:
        raise ValueError(
            f"neighbors must hold (indices, distances) of shape (n_samples={n}, k); got "
            f"{idx.shape} and {dist.shape}"
        )
    if idx.shape[1] < kmax:
        raise ValueError(f"neighbors has {idx.shape[1]} columns; this estimate needs {kmax}")
    if idx.dtype.kind not in "iu" or (idx.size and (idx.min() < 0 or idx.max() >= n)):
        raise ValueError("neighbors indices must be integers in [0, n_samples)")
    if (idx == np.arange(n)[:, None]).any():  # (its distance 0 broke the ratios / the MLE)
        raise ValueError(
            "neighbors list a point as its own neighbour: pass geoml.knn(X, k) with its "
            "default exclude_self, or drop the first column of a search that includes it"
        )
    dist = as_float_array(dist, "neighbor distances", dtype=np.float64)
    if (dist < 0).any() or (np.diff(dist, axis=1) < 0).any():
        raise ValueError("neighbor distances must be non-negative and sorted along each row")
    return dist[:, :kmax], idx[:, :kmax]


def _warn_dropped(count, what):
    if count:
        warnings.warn(
            f"intrinsic_dimension: {count} point(s) dropped: {what} (duplicate points)",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


# ----------------------------------------------------------------------------- MLE


def _mle_pointwise(dist, unbiased):
    """Levina-Bickel per point: (k - 1) / sum_j log(R_k / R_j) over the k neighbour
    distances (k - 2 with ``unbiased``), scikit-dimension's ``_maxLikPointwiseDimEst``."""
    k = dist.shape[1]
    kfac = k - 2 if unbiased else k - 1
    ok = dist[:, 0] > 0
    out = np.full(dist.shape[0], np.nan)
    D = dist[ok]
    s = np.log(D[:, -1:] / D).sum(axis=1)
    with np.errstate(divide="ignore"):
        out[ok] = kfac / s
    return out, ok


def _mle(dist, unbiased, comb):
    pw, ok = _mle_pointwise(dist, unbiased)
    _warn_dropped(int((~ok).sum()), "a zero distance among the k neighbours (MLE)")
    good = pw[ok]
    if good.size == 0:
        raise ValueError("every point has a zero neighbour distance; the MLE is undefined")
    inv = float(np.mean(1.0 / good))
    if comb == "mle":
        value = 1.0 / inv if inv > 0 else math.inf  # MacKay & Ghahramani: mean of inverses
    elif comb == "mean":
        value = float(np.mean(good))
    else:
        value = float(np.median(good))
    if not math.isfinite(value):
        raise ValueError(
            "the MLE is infinite: the k neighbour distances of (too many) points are all "
            "equal (log-ratios 0); use a larger k"
        )
    return float(value), math.nan, pw, int(good.size)


# ----------------------------------------------------------------------------- TwoNN


def _twonn_global(mu_all, discard_fraction, fit):
    """scikit-dimension's TwoNN on the ratios r2 / r1 (non-finite ones dropped)."""
    finite = np.isfinite(mu_all)
    _warn_dropped(int((~finite).sum()), "zero distance to the nearest neighbour (TwoNN)")
    mu_f = mu_all[finite]
    N = mu_f.size
    n_keep = int(N * (1 - discard_fraction))
    if n_keep < 2:
        raise ValueError("fewer than 2 ratios left to estimate the dimension")
    mu = np.sort(mu_f)[:n_keep]
    log_mu = np.log(mu)
    if not log_mu[-1] > 0:
        raise ValueError(
            "every kept ratio r2 / r1 is 1 (tied neighbour distances, e.g. a regular grid): "
            "TwoNN is undefined; lower discard_fraction or use method='gride' with n1 > 1"
        )
    if fit == "mle":
        d = (n_keep - 1) / (np.sum(log_mu) + (N - n_keep) * log_mu[-1])
        se = d / math.sqrt(n_keep - 2) if n_keep > 2 else math.nan
    else:
        if n_keep == N:
            raise ValueError(
                "fit='linear' needs discard_fraction > 0 (with 1 / n_samples or more): the "
                "largest ratio has F_emp = 1 and -log(1 - F_emp) is infinite"
            )
        y = -np.log(1.0 - np.arange(1, n_keep + 1) / N)
        d = float(np.dot(log_mu, y) / np.dot(log_mu, log_mu))  # least squares through 0
        se = math.nan
    return float(d), float(se), n_keep


# ----------------------------------------------------------------------------- GRIDE


def _gride_score(d, log_mu, n1, n2, N):
    return (
        (N - 1) / d
        + (n2 - n1 - 1) * np.sum(log_mu / -np.expm1(-d * log_mu))
        - (n2 - 1) * np.sum(log_mu)
    )


def _gride_global(log_mu_all, n1, n2):
    from scipy.optimize import brentq

    ok = np.isfinite(log_mu_all) & (log_mu_all > 0)
    _warn_dropped(int((~ok).sum()), f"zero or tied distances to neighbours {n1} and {n2} (GRIDE)")
    log_mu = log_mu_all[ok]
    if log_mu.size < 2:
        raise ValueError("fewer than 2 ratios left to estimate the dimension")
    q95, q50 = np.percentile(np.exp(log_mu), [95, 50])
    log_mu = log_mu[np.exp(log_mu) < 20 * (q95 - q50) + q50]
    N = log_mu.size
    if N < 2:
        raise ValueError("fewer than 2 ratios left to estimate the dimension")
    hi = 1.0
    while _gride_score(hi, log_mu, n1, n2, N) > 0:
        hi *= 2
    d = brentq(_gride_score, 1e-8, hi, args=(log_mu, n1, n2, N), xtol=1e-12, rtol=1e-12)
    info = N / d**2 + (n2 - n1 - 1) * np.sum((log_mu / (2 * np.sinh(d * log_mu / 2))) ** 2)
    return float(d), float(1.0 / math.sqrt(info)), N


def _gride_rows(L, n1, n2):
    """GRIDE root for every row of ``L`` (m, r) of log-ratios (all > 0): bisection on the
    decreasing score, vectorised over rows, to machine precision."""
    m, r = L.shape
    a = n2 - n1 - 1
    s1 = (n2 - 1) * L.sum(axis=1)

    def score(d):
        with np.errstate(over="ignore"):
            t = (L / -np.expm1(-d[:, None] * L)).sum(axis=1) if a else 0.0
        return (r - 1) / d + a * t - s1

    lo = np.full(m, 1e-8)
    hi = np.ones(m)
    for _ in range(60):  # bracket: score(hi) <= 0
        pos = score(hi) > 0
        if not pos.any():
            break
        hi[pos] *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        pos = score(mid) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
        if np.all(hi - lo <= 1e-13 * hi):
            break
    return 0.5 * (lo + hi)


def _local_ratio_estimates(log_mu, idx, n1, n2):
    """Per point: the ratio estimator (TwoNN MLE when (n1, n2) = (1, 2), else GRIDE) on the
    log-ratios of the point and its neighbours (one kNN pass, reused)."""
    n = log_mu.size
    L = np.concatenate([log_mu[:, None], log_mu[idx]], axis=1)
    ok = np.isfinite(L).all(axis=1) & (L > 0).all(axis=1)
    out = np.full(n, np.nan)
    if (n1, n2) == (1, 2):
        r = L.shape[1]
        out[ok] = (r - 1) / L[ok].sum(axis=1)
    elif ok.any():
        out[ok] = _gride_rows(L[ok], n1, n2)
    return out


# ----------------------------------------------------------------------------- local PCA


def _pca_spectra(X, rows_idx, n_jobs=None, fused=True):
    """Covariance eigenvalues (ddof=1), descending, of each neighbourhood ``X[rows_idx[i]]``:
    min(k, D) values per row, as scikit-learn's ``PCA().explained_variance_``. The small
    symmetric eigenproblems go to geoml.spd's batched, threaded solver (Householder + QL);
    any it reports unconverged are redone by LAPACK. ``k <= D`` (``fused``): one C++ pass,
    ``_pca_spectra_fused``."""
    from .. import _core

    nt = check_n_jobs(n_jobs)
    m, k = rows_idx.shape
    D = X.shape[1]
    if fused and 2 <= k <= D:
        return _pca_spectra_fused(X, rows_idx, nt)
    p = min(k, D)
    out = np.empty((m, p))
    step = max(1, _CHUNK_ELEMS // max(1, k * D))
    X64 = np.asarray(X, dtype=np.float64)  # once, not per gathered neighbourhood
    starts = range(0, m, step)
    if nt == 0:  # OpenMP's default (OMP_NUM_THREADS, else the cores, capped under load)
        workers = _core.max_threads()
    else:
        workers = (os.cpu_count() or 1) if nt == -1 else nt
    workers = min(workers, len(starts))

    def chunk(s):
        Y = X64[rows_idx[s : s + step]]
        Y -= Y.mean(axis=1, keepdims=True)
        if k <= D:
            G = Y @ Y.transpose(0, 2, 1)
        else:
            G = Y.transpose(0, 2, 1) @ Y
        G /= k - 1
        ev, _, status = _core.spd_eigh(
            G, vectors=False, sym_tol=1e-8, n_jobs=1 if workers > 1 else nt
        )
        bad = status != 0
        if bad.any():
            ev[bad] = np.linalg.eigvalsh(G[bad])
        out[s : s + step] = np.maximum(ev[:, ::-1], 0.0)

    if workers <= 1:
        for s in starts:
            chunk(s)
    else:  # chunks on nt threads (NumPy's gather, centring, batched products and the
        # eigensolver release the GIL); each chunk's result does not depend on the count
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(chunk, starts))
    return out


def _pca_spectra_fused(X, rows_idx, nt):
    """The ``k <= D`` case in one C++ pass (``_core.local_gram_eigvalsh``): per point the k
    neighbour rows gathered (float64), centred, their k x k Gram / (k - 1) and its eigenvalues
    by geoml.spd's batched solver, 256 points at a time per thread (no gathered
    ``(m, k, D)`` array, no float64 copy of X); rows it reports unconverged are redone by
    LAPACK."""
    from .. import _core

    idx = np.ascontiguousarray(rows_idx, dtype=np.int64)
    ev, status = _core.local_gram_eigvalsh(X, idx, n_jobs=nt)
    bad = np.flatnonzero(status != 0)
    if bad.size:
        Y = np.asarray(X, dtype=np.float64)[idx[bad]]
        Y -= Y.mean(axis=1, keepdims=True)
        ev[bad] = np.linalg.eigvalsh(Y @ Y.transpose(0, 2, 1) / (idx.shape[1] - 1))
    return np.maximum(ev[:, ::-1], 0.0)


def _global_spectrum(X):
    from .._validation import single_threaded_blas

    n, D = X.shape
    Y = X.astype(np.float64)
    Y = Y - Y.mean(axis=0)
    # one BLAS thread: threaded OpenBLAS took 0.97 s for this 50,000 x 128 Gram where one
    # thread takes 0.056 s (measured on the 2-core machine; per-point lPCA adds it to the kNN)
    with single_threaded_blas():
        G = Y.T @ Y if n >= D else Y @ Y.T
        ev = np.linalg.eigvalsh(G / (n - 1))[::-1]
    return np.maximum(ev, 0.0)[None, :]


_PCA_RANGE = 2.0**400


def _pca_scaled(X):
    """X scaled by a power of two (exact) when its largest magnitude lies outside
    ``[2^-400, 2^400]``, else X itself. Every lPCA rule depends on the covariance spectrum
    only up to a factor; the covariances' squares underflowed from data of ~1e-160 (every
    eigenvalue 0: dimension 0, or nan) and overflowed from ~1e160 (float64)."""
    big = float(np.abs(X).max())
    if big == 0.0 or 1.0 / _PCA_RANGE <= big <= _PCA_RANGE:
        return X
    return X * np.asarray(2.0 ** -int(np.frexp(big)[1]), dtype=X.dtype)


def _pca_rule(ev, rule, alpha):
    """scikit-dimension's lPCA rules on the rows of ``ev`` (descending eigenvalues)."""
    m, p = ev.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule == "FO":
            return (ev > alpha * ev[:, :1]).sum(axis=1).astype(float)
        if rule == "maxgap":
            gaps = ev[:, :-1] / ev[:, 1:]
            if p < 2:
                return np.ones(m)
            gaps = np.where(np.isnan(gaps), -np.inf, gaps)
            return (np.argmax(gaps, axis=1) + 1).astype(float)
        if rule == "ratio":
            c = np.cumsum(ev, axis=1)
            return ((c / c[:, -1:]) < alpha).sum(axis=1) + 1.0
        if rule == "participation_ratio":
            return ev.sum(axis=1) ** 2 / (ev**2).sum(axis=1)
        if rule == "Kaiser":
            return (ev > ev.mean(axis=1, keepdims=True)).sum(axis=1).astype(float)
        # broken stick: first i with bs[i] > share[i] (0 when there is none, as for an
        # all-zero spectrum: a neighbourhood of duplicates)
        bs = np.cumsum((1.0 / np.arange(1, p + 1))[::-1])[::-1] / p
        share = ev / ev.sum(axis=1, keepdims=True)
    above = bs[None, :] > share
    return np.where(above.any(axis=1), np.argmax(above, axis=1), 0).astype(float)


# ----------------------------------------------------------------------------- large n


def _approx_estimate(X, method, mode, target_recall, n_check, random_state, *, k, comb,
                     unbiased, n1, n2, n_jobs):  # fmt: skip
    """Global MLE / GRIDE of the exact neighbours, estimated from ``n_check`` points searched
    exactly: alone (``mode="sample"``) or as the correction of the estimate on NN-descent
    neighbours (``"nndescent"``); see ``_intrinsic_approx``."""
    from . import _intrinsic_approx as _ap

    n = X.shape[0]
    if method == "mle":
        if k < 3 and unbiased:
            raise ValueError("unbiased=True needs k >= 3")
        kmax = k
    else:
        n1 = check_int(n1, "n1", low=1)
        n2 = 2 * n1 if n2 is None else check_int(n2, "n2", low=n1 + 1)
        if n2 > n - 1:
            raise ValueError(f"n2={n2} needs at least n2 + 1 = {n2 + 1} samples; X has {n}")
        kmax = n2
    if mode == "sample":
        from ..neighbors import RecallEstimate

        S, dist_ex = _ap.sampled_rows(X, kmax, n_check, random_state, n_jobs)
        m = S.size
        rec = RecallEstimate(1.0, 1.0, 1.0, m, target_recall, True, "exact", 0)
        if method == "mle":
            value, nse = _ap.mle_corrected(None, dist_ex, S, bool(unbiased), comb, n=n)
            plug, se, _, used = _mle(dist_ex, bool(unbiased), comb)
        else:
            value, nse = _ap.gride_corrected(None, dist_ex, S, n1, n2, n=n)
            with np.errstate(divide="ignore", invalid="ignore"):
                L = np.log(dist_ex[:, n2 - 1] / dist_ex[:, n1 - 1])
            plug, se, used = _gride_global(L, n1, n2)
        res = IntrinsicDimension(value, se, None, used)
        return _approx_result(res, nse, plug, rec, m)
    dist_ap, recall, S, dist_ex = _ap.approx_neighbors(
        X, kmax, target_recall, n_check, random_state, n_jobs
    )
    if method == "mle":
        plug, se, _, used = _mle(dist_ap, bool(unbiased), comb)
        value, nse = _ap.mle_corrected(dist_ap, dist_ex, S, bool(unbiased), comb)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            plug, se, used = _gride_global(np.log(dist_ap[:, n2 - 1] / dist_ap[:, n1 - 1]), n1, n2)
        value, nse = _ap.gride_corrected(dist_ap, dist_ex, S, n1, n2)
    res = IntrinsicDimension(value, se, None, used)
    return _approx_result(res, nse, plug, recall, S.size)


# ----------------------------------------------------------------------------- public


def intrinsic_dimension(
    X,
    method: str = "mle",
    *,
    k: int | None = None,
    local: bool = False,
    neighbors=None,
    comb: str = "mle",
    unbiased: bool = False,
    discard_fraction: float = 0.1,
    fit: str = "linear",
    n1: int = 1,
    n2: int | None = None,
    rule: str = "FO",
    alpha: float = 0.05,
    target_recall: float = 0.9,
    n_check: int | None = None,
    random_state=None,
    n_jobs: int | None = None,
) -> IntrinsicDimension:
    """Intrinsic dimension of a point cloud, globally and (``local=True``) per point.

    Every estimator except global local-PCA reads one exact kNN pass (:func:`geoml.knn`,
    self excluded); ``local=True`` reuses it for the per-point estimates. Conventions and
    defaults are scikit-dimension 0.5's (``skdim.id.MLE``, ``TwoNN``, ``GRIDE``, ``lPCA``):
    with the same neighbours and parameters the global estimates agree to rounding.

    - ``"mle"``: Levina & Bickel per point, ``d_i = (k - 1) / sum_j log(R_k / R_j)`` over its
      k neighbour distances (``k - 2`` with ``unbiased``), combined by MacKay & Ghahramani's
      inverse average ``1 / mean(1 / d_i)`` (``comb="mle"``), or mean / median.
    - ``"twonn"``: Facco et al. on ``mu = r2 / r1``: the ``1 - discard_fraction`` smallest
      ratios, fitted by the line through the origin of ``-log(1 - F_emp)`` against
      ``log mu`` (``fit="linear"``) or by the censored Pareto MLE (``fit="mle"``, with a
      standard error).
    - ``"gride"``: Denti et al.'s likelihood of ``mu = r_{n2} / r_{n1}`` (``n2 = 2 n1`` by
      default), the root of its score, with ratios above ``q50 + 20 (q95 - q50)`` discarded
      and ``(N - 1) log d`` in the likelihood (DADApy's conventions); standard error from the
      observed Fisher information.
    - ``"lpca"``: the eigenvalues of the covariance (``ddof=1``; ``min(n, D)`` of them) of the
      whole cloud (global) or of each point's k neighbours (local, the point itself not
      included, as scikit-dimension's ``asPointwise``), reduced by ``rule``: ``"FO"``
      (eigenvalues above ``alpha`` times the largest), ``"ratio"`` (components needed for a
      fraction ``alpha`` of the variance), ``"maxgap"``, ``"participation_ratio"``,
      ``"Kaiser"``, ``"broken_stick"``.

    Local TwoNN / GRIDE (a geoml convention; the references have no one-pass local form):
    the same likelihood on the ratios of the point and its k neighbours, no discard.

    Duplicates: a zero neighbour distance makes a log-ratio infinite. Such points are
    dropped from the global estimate with a ``RuntimeWarning`` giving their count (TwoNN and
    GRIDE as scikit-dimension; for MLE scikit-dimension keeps them and returns 0, geoml drops
    them), and their local estimate is ``nan``. Local TwoNN / GRIDE pool the ratios of a
    point's k neighbours too, so their estimate is ``nan`` for every point with such a
    duplicate among its neighbours as well (with many duplicates, most points).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        float32 or float64 (distances are turned into estimates in float64); no NaN/inf.
    method : {"mle", "twonn", "gride", "lpca"}
    k : int, optional
        Neighbours per point, ``k < n_samples``: MLE (default 20) and every local estimate
        (default 20). Global TwoNN uses 2 and global GRIDE ``n2`` neighbours.
    local : bool
        Also return per-point estimates (``pointwise``).
    neighbors : {None, "exact", "sample", "nndescent", "auto"} or (indices, distances), optional
        None or ``"exact"``: one exact search. A precomputed :func:`geoml.knn` result of X
        (self excluded, rows sorted) with at least as many columns as needed is used instead
        of a new search. The large-n modes (global MLE with ``comb`` ``"mle"``/``"mean"``, and
        global GRIDE) estimate the exact-neighbour value with a standard error
        ``neighbors_stderr`` (an :class:`ApproxIntrinsicDimension` is returned):
        ``"sample"``: the exact neighbours (among all n points) of ``n_check`` random points
        (default 5000; cost ``n_check n D`` instead of ``n^2 D / 2``), the totals of the
        estimator extrapolated from them (a ratio / Z-estimator of a simple random sample,
        delta-method standard error with the finite-population correction);
        ``"nndescent"``: approximate neighbours of every point (:func:`geoml.knn` with
        ``method="nndescent"``) corrected by the exact neighbours of ``n_check`` random points
        (default 2000): the approximate total plus ``n`` times the mean exact-minus-approximate
        contribution (a difference estimator; its variance is floored for a search that is
        right almost everywhere, see ``docs/design/measures.md``); tighter than ``"sample"``
        where the search is good. ``"auto"``: ``"sample"`` from 50,000 points for those
        estimators, else exact (``neighbors_stderr = 0``).
    comb : {"mle", "mean", "median"}
        MLE: how the per-point estimates are combined.
    unbiased : bool
        MLE: ``k - 2`` in place of ``k - 1``.
    discard_fraction : float
        TwoNN: fraction of the largest ratios left out, in [0, 1) (default 0.1).
    fit : {"linear", "mle"}
        TwoNN: regression (Facco et al.) or censored maximum likelihood.
    n1, n2 : int
        GRIDE neighbour orders, ``1 <= n1 < n2`` (``n2`` defaults to ``2 n1``).
    rule : str
        lPCA rule (see above).
    alpha : float
        lPCA ``"FO"`` and ``"ratio"`` threshold in (0, 1) (scikit-dimension's default 0.05).
    target_recall : float in (0, 1]
        ``neighbors="nndescent"``/``"auto"``: recall the approximate search iterates towards
        (default 0.9; a missed target only widens ``neighbors_stderr``).
    n_check : int, optional
        Points searched exactly: 5000 for ``"sample"``, 2000 for ``"nndescent"``.
    random_state : None, int or Generator
        Seed of the approximate search and of the checked points.
    n_jobs : int, optional
        Threads of the kNN search.

    Returns
    -------
    IntrinsicDimension or ApproxIntrinsicDimension
        ``dimension``, ``stderr``, ``pointwise`` (n_samples,) or None, ``n_used`` (and, for
        ``neighbors="nndescent"``/``"auto"``, ``neighbors_stderr``, ``uncorrected``,
        ``recall_``, ``n_checked``).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> rng = np.random.default_rng(0)
    >>> X = np.zeros((2000, 5))
    >>> X[:, :2] = rng.uniform(size=(2000, 2))
    >>> est = geoml.intrinsic_dimension(X, "twonn", fit="mle")
    >>> bool(abs(est.dimension - 2) < 0.2), bool(est.stderr < 0.1)
    (True, True)

    Approximate neighbours at large n, with the error against the exact estimate:

    >>> Z = rng.normal(size=(4000, 6))
    >>> est = geoml.intrinsic_dimension(Z, "mle", neighbors="nndescent", random_state=0)
    >>> exact = geoml.intrinsic_dimension(Z, "mle")
    >>> bool(abs(est.dimension - exact.dimension) <= 4 * est.neighbors_stderr + 1e-9)
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method={method!r}; choose one of {_METHODS}")
    validate_random_state(random_state)
    mode = None
    if isinstance(neighbors, str):
        if neighbors not in _NEIGHBOR_MODES:
            raise ValueError(f"neighbors={neighbors!r}; choose one of {_NEIGHBOR_MODES}")
        mode, neighbors = neighbors, None
    X = as_float_array(X, "X")
    n = X.shape[0]
    if n < 3:
        raise ValueError(f"X has {n} sample(s); intrinsic_dimension needs at least 3")
    local = check_bool(local, "local")
    unbiased = check_bool(unbiased, "unbiased")
    check_n_jobs(n_jobs)
    need_k = method == "mle" or local
    if k is None:
        k = _DEFAULT_K if need_k else None
        if k is not None and k >= n:
            k = n - 1
    if k is not None:
        k = check_int(
            k,
            "k",
            low=2,
            high=n - 1,
            hint=f" (neighbours; X has n_samples={n})",
        )
    pointwise = None
    if mode in ("sample", "nndescent", "auto"):
        from . import _intrinsic_approx as _ap

        target_recall, n_check = _ap.check_options(target_recall, n_check, mode)
        supported = method in ("mle", "gride") and not local and comb != "median"
        if mode != "auto" and not supported:
            raise ValueError(
                f"neighbors={mode!r} is for the global MLE (comb 'mle' or 'mean') and GRIDE "
                f"estimates; got method={method!r}, local={local}, comb={comb!r}: use "
                "neighbors='exact'"
            )
        kw = dict(k=k, comb=comb, unbiased=unbiased, n1=n1, n2=n2, n_jobs=n_jobs)
        if mode == "auto" and (not supported or n < _AUTO_APPROX_N):
            res = intrinsic_dimension(
                X, method, local=local, discard_fraction=discard_fraction, fit=fit,
                rule=rule, alpha=alpha, **kw,
            )  # fmt: skip
            from ..neighbors import RecallEstimate

            rec = RecallEstimate(1.0, 1.0, 1.0, n, target_recall, True, "exact", 0)
            return _approx_result(res, 0.0, res.dimension, rec, n)
        mode = "sample" if mode == "auto" else mode
        return _approx_estimate(X, method, mode, target_recall, n_check, random_state, **kw)

    if method == "mle":
        if comb not in _COMBS:
            raise ValueError(f"comb={comb!r}; choose one of {_COMBS}")
        if k < 3 and unbiased:
            raise ValueError("unbiased=True needs k >= 3")
        dist, _ = _neighbors(X, k, neighbors, n_jobs)
        value, se, pw, used = _mle(dist, bool(unbiased), comb)
        return IntrinsicDimension(value, se, pw if local else None, used)

    if method in ("twonn", "gride"):
        if method == "twonn":
            discard_fraction = _check_fraction(discard_fraction, "discard_fraction")
            if fit not in ("linear", "mle"):
                raise ValueError(f"fit={fit!r}; choose 'linear' or 'mle'")
            a, b = 1, 2
        else:
            a = check_int(n1, "n1", low=1)
            b = 2 * a if n2 is None else check_int(n2, "n2", low=a + 1)
            if b > n - 1:
                raise ValueError(f"n2={b} needs at least n2 + 1 = {b + 1} samples; X has {n}")
        kmax = max(b, k) if local else b
        dist, idx = _neighbors(X, kmax, neighbors, n_jobs)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = dist[:, b - 1] / dist[:, a - 1]
        if method == "twonn":
            value, se, used = _twonn_global(ratio, discard_fraction, fit)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                value, se, used = _gride_global(np.log(ratio), a, b)
        if local:
            with np.errstate(divide="ignore", invalid="ignore"):
                pointwise = _local_ratio_estimates(np.log(ratio), idx[:, :k], a, b)
        return IntrinsicDimension(value, se, pointwise, used)

    if rule not in _RULES:
        raise ValueError(f"rule={rule!r}; choose one of {_RULES}")
    alpha = _check_fraction(alpha, "alpha", low_open=True)
    if not local and neighbors is not None:  # unused by the global estimate, but checked
        _neighbors(X, 1, neighbors, n_jobs)
    X = _pca_scaled(X)
    ev = _global_spectrum(X)
    value = float(_pca_rule(ev, rule, alpha)[0])
    if local:
        _, idx = _neighbors(X, k, neighbors, n_jobs)
        pointwise = _pca_rule(_pca_spectra(X, idx, n_jobs), rule, alpha)
    return IntrinsicDimension(value, math.nan, pointwise, n)
