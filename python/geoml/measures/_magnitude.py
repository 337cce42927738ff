"""Metric-space magnitude: weighting vectors, the magnitude function and its dimension profile."""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np

from .._validation import (
    as_float_array,
    blas_for_dense,
    check_bool,
    check_int,
    check_n_jobs,
    check_tol,
    reject_gpu,
    user_stacklevel,
)

__all__ = ["MagnitudeResult", "magnitude", "magnitude_dimension", "weighting_vector"]

_AUTO_CG = 2000  # method="auto": Cholesky up to this many points, conjugate gradients above


class MagnitudeResult(NamedTuple):
    """Result of :func:`magnitude` and :func:`weighting_vector` with ``return_info=True``.

    Attributes
    ----------
    value : float or ndarray of shape (len(t),)
        The magnitude(s).
    weights : ndarray of shape (n_samples,) or (n_samples, len(t))
        The weighting vector(s).
    method : str
        ``"cholesky"`` or ``"cg"``.
    n_iter : ndarray of shape (len(t),)
        Conjugate-gradient iterations per scale (0 for Cholesky; on a stored float32 ``Z``,
        the inner iterations, not counting the 2-5 float64 residual products).
    residual : ndarray of shape (len(t),)
        CG: the relative residual ``||1 - Z w|| / ||1||`` per scale, recomputed from ``w``
        (0.0 for Cholesky, which does not compute it). The magnitude's error is at most
        ``||w|| ||1 - Z w||``.
    converged : bool
        False when a scale's residual stayed above ``10 rtol`` (a ``RuntimeWarning`` is
        issued too).
    """

    value: object
    weights: np.ndarray
    method: str
    n_iter: np.ndarray
    residual: np.ndarray
    converged: bool


def _scales(t, name="t"):
    """(scales as a float64 array (n_t,), whether ``t`` was a scalar). Numbers only: a string
    ("1"), a bool or a sequence of them was converted by NumPy quietly (``t="1"`` gave an
    array result); a 0-d array is a scalar."""
    scalar = (isinstance(t, numbers.Real) and not isinstance(t, (bool, np.bool_))) or (
        isinstance(t, np.ndarray) and t.ndim == 0
    )
    bad = TypeError(f"{name} must be a positive number or a sequence of them; got {t!r}")
    if isinstance(t, (bool, np.bool_, str, bytes)) or t is None:
        raise bad
    try:
        raw = t if isinstance(t, np.ndarray) else np.asarray(t, dtype=object)
        if raw.dtype.kind not in "iuf" and not all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in raw.ravel()
        ):
            raise bad
        ts = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise bad from None
    if ts.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence; got shape {ts.shape}")
    ts = ts.reshape(-1)
    if ts.size == 0:
        raise ValueError(f"{name} is empty")
    ok = np.isfinite(ts) & (ts > 0)
    if not ok.all():
        v = float(ts[~ok][0])
        raise ValueError(f"{name} must hold positive finite scales; got {v!r}")
    return ts, scalar


def _points(X, metric):
    if metric not in ("euclidean", "precomputed"):
        raise ValueError(f"metric={metric!r}; choose 'euclidean' or 'precomputed'")
    reject_gpu(X, "X", "magnitude")
    return as_float_array(X, "X", dtype=np.float64)


def _distances(X, metric):
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


def _check_cg_points(X):
    """The checks the dense path makes through its distance matrix: distances that overflow,
    duplicate points (a singular Z)."""
    with np.errstate(over="ignore", invalid="ignore"):
        span = float(np.sum(np.ptp(X, axis=0) ** 2))
    if not np.isfinite(span):
        raise ValueError("X is too large: its distances overflow float64 (rescale X)")
    if np.unique(X, axis=0).shape[0] < X.shape[0]:
        raise ValueError(
            "the similarity matrix exp(-t D) is not positive definite (duplicate points): "
            "its magnitude is not defined by a weighting from this solver; remove duplicates"
        )


class _Solver(NamedTuple):
    method: str
    rtol: float
    max_iter: int
    n_jobs: int


def _check_solver(method, rtol, max_iter, n_jobs, return_info=False):
    if method not in ("auto", "cholesky", "cg"):
        raise ValueError(f"method={method!r}; choose 'auto', 'cholesky' or 'cg'")
    return_info = check_bool(return_info, "return_info")
    return _Solver(
        method,
        check_tol(rtol, "rtol"),
        check_int(max_iter, "max_iter", low=1),
        check_n_jobs(n_jobs),
    )


def _solve(X, metric, ts, solver):
    """(W (n, len(ts)), method, n_iter, residual, converged) for points or distances X."""
    m = ts.size
    method = solver.method
    if method == "auto":
        method = "cg" if metric == "euclidean" and X.shape[0] > _AUTO_CG else "cholesky"
    if method == "cg" and metric != "euclidean":
        raise ValueError("method='cg' needs metric='euclidean' (points, not a distance matrix)")
    if method == "cholesky":
        # BLAS (the distances, the Cholesky factorisations) on one thread up to 1,024 points:
        # the same bits for any BLAS thread count (a multi-threaded OpenBLAS splits its work
        # by its thread count, which on its Haswell kernels changes the bits: 2e-15 at
        # n = 1,000); above, the BLAS's own threads (faster on an idle machine)
        with blas_for_dense(len(X)):
            W = _weights(_distances(X, metric), ts)
        return W, "cholesky", np.zeros(m, np.int64), np.zeros(m), True
    from ._magnitude_cg import weights_cg

    _check_cg_points(X)
    W, info = weights_cg(X, ts, rtol=solver.rtol, max_iter=solver.max_iter, n_jobs=solver.n_jobs)
    ok = bool(info.converged.all())
    if not ok:
        bad = ~info.converged
        warnings.warn(
            f"magnitude: conjugate gradients did not reach rtol={solver.rtol:g} within "
            f"max_iter={solver.max_iter} at t={ts[bad].tolist()} (relative residuals "
            f"{info.residual[bad].tolist()}); returned with converged=False",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return W, "cg", info.n_iter, info.residual, ok


def _result(X, t, metric, solver):
    ts, scalar = _scales(t)
    X = _points(X, metric)
    W, method, n_iter, res, ok = _solve(X, metric, ts, solver)
    m = W.sum(axis=0)
    return MagnitudeResult(
        float(m[0]) if scalar else m, W[:, 0] if scalar else W, method, n_iter, res, ok
    )


def weighting_vector(
    X,
    t,
    *,
    metric: str = "euclidean",
    method: str = "auto",
    rtol: float = 1e-10,
    max_iter: int = 1000,
    n_jobs: int | None = None,
    return_info: bool = False,
):
    """Weighting vector of a finite metric space at scale ``t``: ``w`` with ``Z w = 1``,
    ``Z_ij = exp(-t d(x_i, x_j))``.

    ``Z`` is positive definite for distinct points of a Euclidean space (a metric of
    negative type). Solved by a dense Cholesky factorisation, or by matrix-free
    preconditioned conjugate gradients (see :func:`magnitude`).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or (n_samples, n_samples) distances
        Points (``metric="euclidean"``) or a symmetric distance matrix with a zero diagonal
        (``metric="precomputed"``). Computed in float64; no NaN/inf.
    t : float or sequence of float
        Positive scale(s).
    metric : {"euclidean", "precomputed"}
    method : {"auto", "cholesky", "cg"}
        ``"cholesky"``: dense ``Z`` and its Cholesky factor per scale (O(n^3) flops, n x n
        memory; any metric). ``"cg"``: conjugate gradients (Euclidean only; no n x n
        matrix, except a float32 one from 1024 to 16,384 points at small and mid scales).
        ``"auto"``: Cholesky up to 2000 points or for a precomputed metric, CG above.
    rtol : float
        CG: stop when ``||1 - Z w|| <= rtol ||1||`` (default 1e-10).
    max_iter : int
        CG: iterations per scale at most (default 1000).
    n_jobs : int, optional
        Threads of the CG products (default: all, load-aware). The Cholesky path runs on one
        BLAS thread up to 1,024 points (the same bits for any thread count), on the BLAS's
        own threads above (their count can change the last bits).
    return_info : bool
        Return a :class:`MagnitudeResult` (value, weights, method, iterations, residuals,
        converged) instead of the weights.

    Returns
    -------
    ndarray of shape (n_samples,) for a scalar ``t``, else (n_samples, len(t))
        Or a :class:`MagnitudeResult` with ``return_info=True``.

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
    solver = _check_solver(method, rtol, max_iter, n_jobs, return_info)
    res = _result(X, t, metric, solver)
    return res if return_info else res.weights


def magnitude(
    X,
    t,
    *,
    metric: str = "euclidean",
    method: str = "auto",
    rtol: float = 1e-10,
    max_iter: int = 1000,
    n_jobs: int | None = None,
    return_info: bool = False,
):
    """Magnitude of a finite metric space: the sum of its weighting vector at scale ``t``.

    ``Mag(tX) = sum_i w_i`` with ``exp(-t D) w = 1`` (Leinster). Two points at distance d:
    ``2 / (1 + exp(-t d))``; n evenly spaced points on a line with step h:
    ``1 + (n - 1) tanh(t h / 2)``.

    ``method="cholesky"`` factors the dense ``Z`` per scale (O(n^3)). ``"cg"`` (Euclidean
    points): conjugate gradients whose products ``Z v`` are computed by fused distance
    tiles in C++ (SIMD, OpenMP; every scale's product in one pass over the pairs,
    O(n^2 (d + len(t))) per iteration, O(n (d + len(t))) memory), preconditioned by a
    Vecchia approximation of ``Z^-1`` (each point regressed on its 30 nearest earlier
    points of a random ordering: a sparse inverse Cholesky factor, O(30 n) memory per
    scale). From 1024 to 16,384 points, at scales where few distance tiles could be
    skipped, ``Z`` is stored in float32 (``4 n^2`` bytes, one scale at a time; 400 MB at
    n = 10,000): CG on it, refined by float64 residuals from the fused products until the
    residual meets rtol and the estimated error of the weights is below rtol of them. The
    solve stops at ``||1 - Z w|| <= rtol ||1||``; the true residual is checked at the end
    and a miss warns and sets ``converged=False``. The result does not depend on the thread
    count.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or (n_samples, n_samples) distances
        As in :func:`weighting_vector`.
    t : float or sequence of float
        Positive scale(s).
    metric : {"euclidean", "precomputed"}
    method : {"auto", "cholesky", "cg"}
        As in :func:`weighting_vector`.
    rtol, max_iter, n_jobs, return_info :
        As in :func:`weighting_vector`.

    Returns
    -------
    float for a scalar ``t``, else ndarray of shape (len(t),)
        Or a :class:`MagnitudeResult` with ``return_info=True``.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> bool(np.isclose(geoml.magnitude(X, 0.5), 2 / (1 + np.exp(-2.5))))
    True
    >>> Y = np.random.default_rng(0).uniform(size=(3000, 2))
    >>> r = geoml.magnitude(Y, 20.0, method="cg", return_info=True)
    >>> bool(r.converged and r.residual[0] < 1e-9)
    True
    """
    solver = _check_solver(method, rtol, max_iter, n_jobs, return_info)
    res = _result(X, t, metric, solver)
    return res if return_info else res.value


def magnitude_dimension(
    X,
    ts,
    *,
    h: float | None = None,
    metric: str = "euclidean",
    method: str = "auto",
    rtol: float = 1e-10,
    max_iter: int = 1000,
    n_jobs: int | None = None,
):
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
    method, rtol, max_iter, n_jobs :
        As in :func:`magnitude` (all ``2 len(ts)`` scales solved together). With CG, a
        miss warns; the profile's error is then not bounded.

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
    solver = _check_solver(method, rtol, max_iter, n_jobs)
    X = _points(X, metric)
    both = np.concatenate([ts * np.exp(-h), ts * np.exp(h)])
    mags = _solve(X, metric, both, solver)[0].sum(axis=0)
    lo, hi = np.log(mags[: ts.size]), np.log(mags[ts.size :])
    return (hi - lo) / (2 * h)
