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
    # an empty batch (a leading axis of 0: no trial) gives an empty batch of matrices, as
    # the matrix functions do; no channel or no sample is still an error
    batch_empty = arr.ndim > 2 and 0 in arr.shape[:-2] and arr.shape[-2] > 0
    arr = as_float_array(arr, "X", ndim=arr.ndim, allow_empty=batch_empty)
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
        Time series (float32/float64), at least 2 samples; an empty batch (a leading axis
        of length 0) gives an empty result of shape (..., n_channels, n_channels).
    estimator : {"scm", "lwf", "oas"}, default "scm"

    Returns
    -------
    ndarray, shape (..., n_channels, n_channels)
        Covariance matrices, in the dtype of ``X`` (computed in float64).

    Raises
    ------
    ValueError
        For an unknown estimator, NaN/inf or fewer than 2 samples, and for a covariance that
        does not fit the dtype: an entry beyond its largest value, or the variance of a
        channel that is not constant below its smallest normal number (float64 data of
        about 1e-155 or less, float32 of about 1e-19 or less).

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
    # trials whose variances leave [2^-400, 2^400] (or under/overflowed) are computed at unit
    # scale, X 2^-e (exact), and their covariance scaled back by 2^2e: the squares of S in
    # the shrinkage underflowed from data of 1e-150 (lwf / oas 36 % / 19 % off) and
    # overflowed from 1e150 (refused), S itself from 1e160. Other trials: the same bits.
    d = S.diagonal(axis1=-2, axis2=-1).max(axis=-1)
    far = ~((d >= 2.0**-400) & (d <= 2.0**400))
    e = np.zeros(d.shape + (1, 1), dtype=np.int64)
    if far.any():  # (frexp(0) = (0, 0): a constant trial stays as it is)
        e[far] = np.frexp(np.abs(Xc[far]).max(axis=(-2, -1)))[1][:, None, None]
        Xc[far] = np.ldexp(Xc[far], -e[far])
        S[far] = (Xc[far] @ Xc[far].swapaxes(-1, -2)) / T
    S = 0.5 * (S + S.swapaxes(-1, -2))
    varies = S.diagonal(axis1=-2, axis2=-1) > 0  # (at unit scale for the scaled trials)

    def back(C):  # the scaled trials' covariances at the data's scale, in X's dtype
        if far.any():
            C[far] = np.ldexp(C[far], 2 * e[far])
        out = check_finite(C.astype(dt), "covariances")
        # a channel that varies but whose variance is not a normal number of the dtype (1e-200
        # data: 1e-400 is 0 in float64; float32 from ~1e-19): zero or subnormal matrices were
        # returned, silently (what the shrinkage adds to the diagonal is at that scale too)
        var = out.diagonal(axis1=-2, axis2=-1)
        small = (var < np.finfo(dt).tiny) & varies
        if small.any():
            i = tuple(int(k) for k in np.argwhere(small)[0][:-1])
            where = f"X[{', '.join(map(str, i))}]" if i else "X"
            raise ValueError(
                f"covariances underflows: the variance of a channel of {where} is below the "
                f"smallest normal {dt} ({np.finfo(dt).tiny:.3g}; input too small); rescale X "
                "(the covariance of c X is c^2 times that of X)"
            )
        return out

    if estimator == "scm" or n == 1:
        return back(S)
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
    return back(out)


def augmented_covariances(X, order: int = 2, lag: int = 1, estimator: str = "scm") -> np.ndarray:
    r"""Augmented (delay-embedding) covariance matrices of "Classification of BCI-EEG based on
    augmented covariance matrix" (Carrara and Papadopoulo), batched.

    Each trial is embedded as in MOABB's ``AugmentedDataset``: ``order`` copies of the channels
    delayed by ``0, lag, ..., (order - 1) lag`` samples, each of length
    ``n_times - order * lag``, stacked along channels; then :func:`covariances`. ``order=1``
    is the trial itself, all ``n_times`` samples (MOABB's and the paper's plain covariance;
    ``lag`` is then unused).

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
        When ``order > 1`` and ``n_times - order * lag < 2``, or for bad parameters.

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
    if order == 1:
        return covariances(arr, estimator)
    T = arr.shape[-1]
    L = T - order * lag
    if L < 2:
        raise ValueError(
            f"order * lag = {order * lag} leaves {L} samples of {T}; at least 2 are needed"
        )
    blocks = [arr[..., p * lag : p * lag + L] for p in range(order)]
    return covariances(np.concatenate(blocks, axis=-2), estimator)
