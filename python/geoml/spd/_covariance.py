"""Covariance matrices of multichannel time series: sample, Ledoit-Wolf and OAS estimators,
and the augmented (delay-embedding) covariance."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_int
from ._linalg import check_finite

ESTIMATORS = ("scm", "lwf", "oas")


def _check_x(X):
    arr = np.asarray(X)
    if arr.ndim < 2:
        raise ValueError(f"X must have shape (..., n_channels, n_times); got shape {arr.shape}")
    arr = as_float_array(arr, "X", ndim=arr.ndim)
    if arr.shape[-1] < 2:
        raise ValueError(f"X needs at least 2 time samples; got shape {arr.shape}")
    return arr


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def covariances(X, estimator: str = "scm") -> np.ndarray:
    r"""Covariance matrices of multichannel time series, batched over leading axes.

    Every estimator centres each channel over time first (pyRiemann's ``covariances`` with
    ``estimator="scm"``, ``"lwf"``, ``"oas"``, which call scikit-learn's estimators on
    ``X[i].T``):

    - ``"scm"``: sample covariance :math:`\frac{1}{T} X_c X_c^T` (divided by ``T``);
    - ``"lwf"``: Ledoit-Wolf shrinkage towards :math:`\mu I`, :math:`\mu = \mathrm{tr}(S)/n`
      (scikit-learn's ``ledoit_wolf``);
    - ``"oas"``: oracle approximating shrinkage (scikit-learn's ``oas``).

    Parameters
    ----------
    X : array_like, shape (..., n_channels, n_times)
        Time series (float32/float64), at least 2 samples.
    estimator : {"scm", "lwf", "oas"}, default "scm"

    Returns
    -------
    ndarray, shape (..., n_channels, n_channels)
        Covariance matrices, in the dtype of ``X`` (computed in float64).

    Raises
    ------
    ValueError
        For an unknown estimator, NaN/inf or fewer than 2 samples.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import covariances
    >>> X = np.array([[[1.0, -1.0, 1.0, -1.0], [2.0, 0.0, 2.0, 0.0]]])
    >>> covariances(X)
    array([[[1., 1.],
            [1., 1.]]])
    """
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(
            f"estimator={estimator!r} is not one of {', '.join(map(repr, ESTIMATORS))}"
        )
    arr = _check_x(X)
    dt = arr.dtype
    Xc = arr.astype(np.float64)
    Xc = Xc - Xc.mean(axis=-1, keepdims=True)
    n, T = Xc.shape[-2], Xc.shape[-1]
    S = (Xc @ Xc.swapaxes(-1, -2)) / T
    S = 0.5 * (S + S.swapaxes(-1, -2))
    check_finite(S, "covariances")
    if estimator == "scm" or n == 1:
        return S.astype(dt)
    tr = np.trace(S, axis1=-2, axis2=-1)
    mu = tr / n
    if estimator == "lwf":
        X2 = Xc**2
        # scikit-learn's ledoit_wolf_shrinkage (one block), per matrix
        beta_ = np.sum(np.sum(X2, axis=-2) ** 2, axis=-1)  # sum_t ||x_t||^4
        delta_ = np.sum(S**2, axis=(-2, -1))
        beta = (beta_ / T - delta_) / (n * T)
        delta = (delta_ - 2.0 * mu * tr + n * mu**2) / n
        beta = np.minimum(beta, delta)
        shrink = np.where(beta == 0, 0.0, beta / delta)
    else:  # oas, scikit-learn >= 1.3
        alpha = np.mean(S**2, axis=(-2, -1))
        num = alpha + mu**2
        den = (T + 1.0) * (alpha - mu**2 / n)
        shrink = np.where(den == 0, 1.0, np.minimum(num / den, 1.0))
    out = (1.0 - shrink)[..., None, None] * S
    idx = np.arange(n)
    out[..., idx, idx] += (shrink * mu)[..., None]
    return check_finite(out, "covariances").astype(dt)


def augmented_covariances(X, order: int = 2, lag: int = 1, estimator: str = "scm") -> np.ndarray:
    r"""Augmented (delay-embedding) covariance matrices of "Classification of BCI-EEG based on
    augmented covariance matrix" (Carrara and Papadopoulo), batched.

    Each trial is embedded as in MOABB's ``AugmentedDataset``: ``order`` copies of the channels
    delayed by ``0, lag, ..., (order - 1) lag`` samples, each of length
    ``n_times - order * lag``, stacked along channels; then :func:`covariances`.

    Parameters
    ----------
    X : array_like, shape (..., n_channels, n_times)
        Time series.
    order : int, default 2
        Embedding dimension (>= 1).
    lag : int, default 1
        Delay between copies, in samples (>= 1).
    estimator : {"scm", "lwf", "oas"}, default "scm"

    Returns
    -------
    ndarray, shape (..., order * n_channels, order * n_channels)

    Raises
    ------
    ValueError
        When ``n_times - order * lag < 2``, or for bad parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import augmented_covariances
    >>> X = np.random.default_rng(0).standard_normal((5, 3, 100))
    >>> augmented_covariances(X, order=4, lag=2).shape
    (5, 12, 12)
    """
    order = check_int(order, "order", low=1)
    lag = check_int(lag, "lag", low=1)
    arr = _check_x(X)
    T = arr.shape[-1]
    L = T - order * lag
    if L < 2:
        raise ValueError(
            f"order * lag = {order * lag} leaves {L} samples of {T}; at least 2 are needed"
        )
    blocks = [arr[..., p * lag : p * lag + L] for p in range(order)]
    return covariances(np.concatenate(blocks, axis=-2), estimator)
