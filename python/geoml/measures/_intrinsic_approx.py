"""Large-n intrinsic dimension: MLE and GRIDE on approximate (NN-descent) neighbours, corrected
towards the exact-neighbour estimate with a standard error (a difference estimator on points
searched exactly)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._validation import check_int, random_seed


def exact_rows(X, S, kmax, n_jobs):
    """Exact neighbours (self excluded) of the rows ``S`` of X: ``(distances float64 (m,
    kmax), indices (m, kmax))``, rows sorted. The point itself is removed from its list by
    index (a duplicate of it stays, at distance 0)."""
    from ..neighbors import knn

    idx, dist = knn(X, kmax + 1, Y=X[S], n_jobs=n_jobs)
    self_at = idx == S[:, None]
    none = ~self_at.any(axis=1)  # more than kmax + 1 copies of the point: drop the last one
    self_at[none, -1] = True
    keep = ~self_at
    m = S.size
    return (
        np.asarray(dist, dtype=np.float64)[keep].reshape(m, kmax),
        idx[keep].reshape(m, kmax),
    )


def approx_neighbors(X, kmax, target_recall, n_check, random_state, n_jobs):
    """NN-descent graph of X and the exact neighbours of ``n_check`` random points.

    Returns ``(dist_ap (n, kmax) float64, recall_, S, dist_ex (m, kmax) float64)``. The
    search's own ``RuntimeWarning`` for a missed ``target_recall`` is not repeated: the
    estimate is corrected with the exact rows and carries the error of that correction."""
    from ..neighbors import knn

    n = X.shape[0]
    rng = np.random.default_rng(random_seed(random_state))
    seed = int(rng.integers(2**31 - 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "approximate kNN: measured recall", RuntimeWarning)
        res = knn(
            X,
            kmax,
            method="nndescent",
            target_recall=target_recall,
            random_state=seed,
            n_jobs=n_jobs,
        )
    m = min(n_check, n)
    S = np.sort(rng.choice(n, size=m, replace=False))
    dist_ex, _ = exact_rows(X, S, kmax, n_jobs)
    return np.asarray(res.distances, dtype=np.float64), res.recall_, S, dist_ex


def _totals(full, samp_ex, samp_ap, n):
    """Difference estimator of the exact totals ``sum_i c_i^exact`` (columns of ``full``,
    the approximate contributions of all n points) from a simple random sample of m points
    with both contributions: ``T = sum(full) + n mean(ex - ap)``, and its covariance (with the
    finite-population correction; 0 when every point is checked)."""
    m = samp_ex.shape[0]
    delta = samp_ex - samp_ap
    T = full.sum(axis=0) + n * delta.mean(axis=0)
    if m >= n or m < 2:
        return T, np.zeros((full.shape[1], full.shape[1]))
    cov = np.atleast_2d(np.cov(delta, rowvar=False, ddof=1))
    # Few non-zero differences (a search that is right almost everywhere) make the sample
    # variance unreliable, down to 0 when the checked points hold none of the wrong ones.
    # Floor each variance at (c + 3) / m times the mean square of a non-zero difference
    # (c of them, centred; with fewer than 5, twice the variance of the contributions stands
    # in): (c + 3) / m bounds the fraction of differing points (rule of three at c = 0).
    # Differences at rounding level (the approximate search and the exact one compute the
    # same distance in different orders) count as zero.
    scale = np.abs(samp_ex).mean(axis=0) + np.abs(full).mean(axis=0)
    nz = np.abs(delta) > 1e-9 * scale
    c = nz.sum(axis=0)
    dc = np.where(nz, delta - delta.mean(axis=0), 0.0)
    ms = (dc**2).sum(axis=0) / np.maximum(c, 1)
    tau2 = np.where(c >= 5, ms, np.maximum(ms, 2 * full.var(axis=0)))
    floor = (c + 3) / m * tau2
    var = np.diag(cov).copy()
    f = np.where(var < floor, np.sqrt(floor / np.where(var > 0, var, 1.0)), 1.0)
    cov = cov * np.outer(f, f)
    zero = var <= 0  # no variance at all: the floor alone
    cov[zero, :] = 0.0
    cov[:, zero] = 0.0
    cov[zero, zero] = floor[zero]
    return T, cov * (n * n / m) * (1 - m / n)


def mle_corrected(dist_ap, dist_ex, S, unbiased, comb, n=None):
    """MacKay-Ghahramani (``comb="mle"``) or mean MLE of the exact neighbours, estimated:
    returns ``(value, stderr)``. ``dist_ap`` None (with ``n``): from the checked points
    alone."""
    from ._intrinsic import _mle_pointwise

    n = dist_ap.shape[0] if dist_ap is not None else n

    def contrib(dist):
        pw, ok = _mle_pointwise(dist, unbiased)
        c = ok.astype(float)
        with np.errstate(divide="ignore"):
            v = np.where(ok, 1.0 / pw, 0.0) if comb == "mle" else np.where(ok, pw, 0.0)
        return np.column_stack([c, v])

    ex = contrib(dist_ex)
    if dist_ap is None:  # sampled queries alone: no approximate list, contributions 0
        full = np.zeros((n, 2))
    else:
        full = contrib(dist_ap)
    T, cov = _totals(full, ex, full[S], n)
    C, V = T
    if not (np.all(np.isfinite(T)) and C > 0 and V > 0):
        raise ValueError(
            "the corrected MLE is undefined (every checked point has tied or zero neighbour "
            "distances); use neighbors='exact' or a larger k"
        )
    if comb == "mle":
        value, grad = C / V, np.array([1.0 / V, -C / V**2])
    else:
        value, grad = V / C, np.array([-V / C**2, 1.0 / C])
    return float(value), float(math.sqrt(max(grad @ cov @ grad, 0.0)))


def _gride_psi(d, L, kept, a, n2):
    """Per-ratio score terms of GRIDE at d and their derivative in d (0 where not kept)."""
    Lk = np.where(kept, L, 1.0)
    with np.errstate(over="ignore"):
        g = Lk / -np.expm1(-d * Lk)
        dg = -((Lk / (2 * np.sinh(d * Lk / 2))) ** 2)
    psi = np.where(kept, 1.0 / d + a * g - (n2 - 1) * Lk, 0.0)
    dpsi = np.where(kept, -1.0 / d**2 + a * dg, 0.0)
    return psi, dpsi


def gride_corrected(dist_ap, dist_ex, S, n1, n2, n=None):
    """GRIDE of the exact neighbours, estimated: the root of the exact total score, estimated
    by the difference estimator at every d, and its standard error (delta method). The ratio
    filter ``q50 + 20 (q95 - q50)`` uses the approximate ratios' quantiles for both sides
    (``dist_ap`` None, with ``n``: from the checked points alone, and their quantiles).
    Returns ``(value, stderr)``."""
    from scipy.optimize import brentq

    def log_mu(dist):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(dist[:, n2 - 1] / dist[:, n1 - 1])

    L_ex = log_mu(dist_ex)
    if dist_ap is None:
        q_src = L_ex  # quantiles of the filter from the checked points
    else:
        n = dist_ap.shape[0]
        L_ap = log_mu(dist_ap)
        q_src = L_ap
    ok_q = np.isfinite(q_src) & (q_src > 0)
    if ok_q.sum() < 2:
        raise ValueError("fewer than 2 ratios left to estimate the dimension")
    q95, q50 = np.percentile(np.exp(q_src[ok_q]), [95, 50])
    if dist_ap is None:
        L_ap = np.full(n, np.nan)  # no approximate ratios: contributions 0
    ok_ap = np.isfinite(L_ap) & (L_ap > 0)
    thr = math.log(20 * (q95 - q50) + q50)
    with np.errstate(invalid="ignore"):
        kept_ap = ok_ap & (L_ap < thr)
        kept_ex = np.isfinite(L_ex) & (L_ex > 0) & (L_ex < thr)
    a = n2 - n1 - 1
    m = S.size
    scale = n / m

    only = dist_ap is None

    def score(d):
        ex, _ = _gride_psi(d, L_ex, kept_ex, a, n2)
        if only:  # no approximate contributions (all 0): no work over the n points
            return scale * ex.sum() - 1.0 / d
        full, _ = _gride_psi(d, L_ap, kept_ap, a, n2)
        return full.sum() + scale * (ex - full[S]).sum() - 1.0 / d

    hi = 1.0
    while score(hi) > 0:
        hi *= 2
        if hi > 1e6:
            raise ValueError("the corrected GRIDE score has no root; use neighbors='exact'")
    lo = 1e-8
    if score(lo) < 0:
        raise ValueError("the corrected GRIDE score has no root; use neighbors='exact'")
    d = brentq(score, lo, hi, xtol=1e-12, rtol=1e-12)
    full, dfull = _gride_psi(d, L_ap, kept_ap, a, n2)
    ex, dex = _gride_psi(d, L_ex, kept_ex, a, n2)
    slope = dfull.sum() + scale * (dex - dfull[S]).sum() + 1.0 / d**2
    _, cov = _totals(full[:, None], ex[:, None], full[S][:, None], n)
    return float(d), float(math.sqrt(max(cov[0, 0], 0.0)) / abs(slope))


def sampled_rows(X, kmax, n_check, random_state, n_jobs):
    """The exact neighbours of ``n_check`` random points (no search of the others):
    ``(S, dist_ex)``."""
    n = X.shape[0]
    rng = np.random.default_rng(random_seed(random_state))
    S = np.sort(rng.choice(n, size=min(n_check, n), replace=False))
    return S, exact_rows(X, S, kmax, n_jobs)[0]


def check_options(target_recall, n_check, mode):
    from ..neighbors._knn import _check_method

    target = _check_method("nndescent", target_recall)
    if n_check is None:
        n_check = 2000 if mode == "nndescent" else 5000
    return target, check_int(n_check, "n_check", low=2)
