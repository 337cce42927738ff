"""Metric-space magnitude: weighting vectors, the magnitude function and its dimension profile."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, reject_gpu

__all__ = ["magnitude", "magnitude_dimension", "weighting_vector"]


def _scales(t, name="t"):
    scalar = isinstance(t, numbers.Real) and not isinstance(t, bool)
    if isinstance(t, bool):
        raise TypeError(f"{name} must be a positive number or a sequence of them; got {t!r}")
    try:
        ts = np.asarray(t, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a positive number or a sequence of them; got {t!r}"
        ) from None
    if ts.size == 0:
        raise ValueError(f"{name} is empty")
    if not (np.isfinite(ts).all() and (ts > 0).all()):
        raise ValueError(f"{name} must hold positive finite scales; got {t!r}")
    return ts, scalar


def _distances(X, metric):
    if metric not in ("euclidean", "precomputed"):
        raise ValueError(f"metric={metric!r}; choose 'euclidean' or 'precomputed'")
    reject_gpu(X, "X", "magnitude")
    X = as_float_array(X, "X", dtype=np.float64)
    if metric == "precomputed":
        if X.shape[0] != X.shape[1]:
            raise ValueError(f"a precomputed distance matrix must be square; got {X.shape}")
        if (X < 0).any() or np.abs(X - X.T).max() > 1e-12 * max(np.abs(X).max(), 1.0):
            raise ValueError("a precomputed distance matrix must be symmetric and non-negative")
        if np.any(np.diagonal(X) != 0):
            raise ValueError("a precomputed distance matrix must have a zero diagonal")
        return X
    from scipy.spatial.distance import cdist

    with np.errstate(over="ignore", invalid="ignore"):
        D = cdist(X, X)
    if not np.isfinite(D).all():
        raise ValueError("X is too large: its distances overflow float64 (rescale X)")
    return D


def _weights(D, ts):
    """Weighting vectors (n, len(ts)): the solutions of ``exp(-t D) w = 1`` by Cholesky."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    n = D.shape[0]
    W = np.empty((n, ts.size))
    ones = np.ones(n)
    for j, t in enumerate(ts):
        with np.errstate(over="ignore"):
            Z = np.exp(-t * D)  # t d beyond float64: exp(-inf) = 0, the true value
        try:
            c = cho_factor(Z, lower=True, overwrite_a=True, check_finite=False)
        except LinAlgError:
            raise ValueError(
                f"the similarity matrix exp(-t D) at t={t:g} is not positive definite "
                "(duplicate points, or a precomputed metric that is not of negative type): "
                "its magnitude is not defined by a weighting from this solver; remove "
                "duplicates or use larger scales"
            ) from None
        W[:, j] = cho_solve(c, ones, check_finite=False)
    return W


def weighting_vector(X, t, *, metric: str = "euclidean") -> np.ndarray:
    """Weighting vector of a finite metric space at scale ``t``: ``w`` with ``Z w = 1``,
    ``Z_ij = exp(-t d(x_i, x_j))``.

    Solved by a dense Cholesky factorisation (O(n^3), n x n memory): ``Z`` is positive
    definite for distinct points of a Euclidean space (a metric of negative type).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or (n_samples, n_samples) distances
        Points (``metric="euclidean"``) or a symmetric distance matrix with a zero diagonal
        (``metric="precomputed"``). Computed in float64; no NaN/inf.
    t : float or sequence of float
        Positive scale(s).
    metric : {"euclidean", "precomputed"}

    Returns
    -------
    ndarray of shape (n_samples,) for a scalar ``t``, else (n_samples, len(t))

    Raises
    ------
    ValueError
        When ``Z`` is not positive definite (duplicate points, or a precomputed metric not
        of negative type), with bad scales, or a bad distance matrix.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> w = geoml.measures.weighting_vector(np.array([[0.0], [1.0], [2.0]]), 1.0)
    >>> q = np.exp(-1.0)
    >>> np.allclose(w, [1 / (1 + q), (1 - q) / (1 + q), 1 / (1 + q)])
    True
    """
    ts, scalar = _scales(t)
    W = _weights(_distances(X, metric), ts)
    return W[:, 0] if scalar else W


def magnitude(X, t, *, metric: str = "euclidean"):
    """Magnitude of a finite metric space: the sum of its weighting vector at scale ``t``.

    ``Mag(tX) = sum_i w_i`` with ``exp(-t D) w = 1`` (Leinster), by dense Cholesky
    (O(n^3) per scale). Two points at distance d: ``2 / (1 + exp(-t d))``; n evenly spaced
    points on a line with step h: ``1 + (n - 1) tanh(t h / 2)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or (n_samples, n_samples) distances
        As in :func:`weighting_vector`.
    t : float or sequence of float
        Positive scale(s).
    metric : {"euclidean", "precomputed"}

    Returns
    -------
    float for a scalar ``t``, else ndarray of shape (len(t),)

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> bool(np.isclose(geoml.magnitude(X, 0.5), 2 / (1 + np.exp(-2.5))))
    True
    """
    ts, scalar = _scales(t)
    m = _weights(_distances(X, metric), ts).sum(axis=0)
    return float(m[0]) if scalar else m


def magnitude_dimension(X, ts, *, h: float | None = None, metric: str = "euclidean"):
    """Magnitude dimension profile: ``d log Mag(tX) / d log t`` at the scales ``ts``.

    Central differences in ``log t`` with step ``h`` (default: the smallest gap of
    ``log ts``, or 1e-3 for one scale), as magnipy's ``magnitude_dimension_profile_exact``
    with given scales: ``(log Mag(t e^h) - log Mag(t e^-h)) / (2 h)``.

    Parameters
    ----------
    X : array-like
        As in :func:`magnitude`.
    ts : sequence of float
        Positive scales, increasing.
    h : float, optional
        Step in ``log t`` (positive).
    metric : {"euclidean", "precomputed"}

    Returns
    -------
    ndarray of shape (len(ts),)

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.linspace(0, 1, 400)[:, None]  # a segment: dimension 1 at mid scales
    >>> prof = geoml.measures.magnitude_dimension(X, [20.0, 40.0, 80.0])
    >>> bool(np.all(np.abs(prof - 1) < 0.1))
    True
    """
    ts, _ = _scales(ts, "ts")
    if ts.size > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be increasing")
    if h is None:
        h = float(np.min(np.diff(np.log(ts)))) if ts.size > 1 else 1e-3
    elif isinstance(h, bool) or not isinstance(h, numbers.Real) or not (0 < float(h) < 1e3):
        raise ValueError(f"h must be a positive number; got {h!r}")
    h = float(h)
    D = _distances(X, metric)
    lo = np.log(_weights(D, ts * np.exp(-h)).sum(axis=0))
    hi = np.log(_weights(D, ts * np.exp(h)).sum(axis=0))
    return (hi - lo) / (2 * h)
