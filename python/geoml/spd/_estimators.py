"""Estimators on SPD matrices with the scikit-learn contract: MDM and TangentSpace."""

from __future__ import annotations

import warnings

import numpy as np

from .._base import BaseEstimator, FeaturesOutMixin, not_fitted_error
from .._validation import as_float_array, check_bool, check_n_jobs, finite_sum, user_stacklevel
from . import _linalg
from ._distance import check_metric, distance
from ._mean import _ADVICE, mean, mean_logeuclid, mean_riemann, mean_wasserstein
from ._tangent import tangent_space, untangent_space

_EST_METRICS = ("riemann", "logeuclid", "wasserstein", "euclid")


def _step_metrics(metric, steps: tuple[str, str]) -> tuple[str, str]:
    """pyRiemann's ``check_metric``: one metric for both steps (a string), or a dict naming
    the metric of each step (MDM: ``"mean"`` and ``"distance"``; TangentSpace: ``"mean"`` and
    ``"map"``)."""
    if isinstance(metric, dict):
        missing = [k for k in steps if k not in metric]
        extra = sorted(map(repr, set(metric) - set(steps)))
        if missing or extra:
            raise ValueError(
                f"a metric dict must have the keys {list(steps)}; got {list(metric)}"
                + (f" (unknown: {', '.join(extra)})" if extra else "")
            )
        first, second = (check_metric(metric[k], _EST_METRICS) for k in steps)
        return first, second
    if not isinstance(metric, str):
        raise TypeError(
            f"metric must be a string or a dict with the keys {list(steps)}; got {metric!r}"
        )
    metric = check_metric(metric, _EST_METRICS)
    return metric, metric


def _check_spd_input(X, est, *, fitted: bool):
    """SPD matrices (n_samples, n, n), or 2-D (n_samples, n_features) read as the diagonal
    SPD matrices ``diag(exp(x))`` (the log-Euclidean coordinates of diagonal matrices)."""
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        raise TypeError("X is a sparse matrix; a dense array is expected here")
    arr = np.asarray(X)
    if arr.ndim == 2:
        arr = as_float_array(arr, "X", ndim=2)
        n_in = arr.shape[1]
    elif arr.ndim == 3:
        arr = as_float_array(arr, "X", ndim=3)
        if arr.shape[1] != arr.shape[2]:
            raise ValueError(f"X must hold square matrices (n_samples, n, n); got {arr.shape}")
        n_in = arr.shape[1]
    else:
        raise ValueError(
            "X must be SPD matrices of shape (n_samples, n, n) or a 2-D array "
            f"(n_samples, n_features); got shape {arr.shape}. Reshape your data"
        )
    if fitted and arr.ndim != est._ndim:
        what = ("SPD matrices (n_samples, n, n)", "2-D input (n_samples, n_features)")
        raise ValueError(
            f"X has shape {arr.shape}, but {type(est).__name__} was fitted on "
            f"{what[est._ndim == 2]}; give X in that form (one matrix C as C[None])"
        )
    if fitted and n_in != est.n_features_in_:
        raise ValueError(
            f"X has {n_in} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input (and {est._ndim}-D input)"
        )
    if arr.ndim == 2:
        with np.errstate(over="ignore"):
            d = np.exp(arr.astype(np.float64))
        if not np.isfinite(d).all():
            raise ValueError("2-D X is read as diag(exp(x)); exp(x) overflows")
        out = np.zeros(arr.shape + (arr.shape[1],), dtype=np.float64)
        idx = np.arange(arr.shape[1])
        out[:, idx, idx] = d
        return out, n_in, 2
    return arr, n_in, 3


def _check_fitted(est):
    """geoml's NotFittedError before fit; when scikit-learn is installed, one that is also
    ``sklearn.exceptions.NotFittedError`` (its classifier checks catch that class)."""
    if est.__sklearn_is_fitted__():
        return
    try:
        from sklearn.exceptions import NotFittedError as SkNotFitted
    except ImportError:  # pragma: no cover
        est._check_is_fitted()
        return
    from .._base import NotFittedError

    class _NotFitted(NotFittedError, SkNotFitted):
        pass

    _NotFitted.__name__ = _NotFitted.__qualname__ = "NotFittedError"
    raise _NotFitted(f"this {type(est).__name__} is not fitted yet; call fit(X, y) first")


def _column_warning():
    try:
        from sklearn.exceptions import DataConversionWarning
    except ImportError:  # pragma: no cover
        DataConversionWarning = UserWarning
    return DataConversionWarning


def _check_y(y, n):
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().",
            _column_warning(),
            stacklevel=user_stacklevel(),
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array; got an array of shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"X and y have different numbers of samples ({n} and {y.shape[0]})")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity")
        if (y != np.round(y)).any():
            raise ValueError("Unknown label type: continuous. Classification needs discrete labels")
    if y.dtype.kind == "c":
        raise ValueError("Unknown label type: complex")
    return y


def _check_weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "fiub":  # (strings were read as numbers, "1" as 1.0)
        raise TypeError(f"sample_weight must hold real numbers; got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},); got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    if not (w > 0).any():  # (not w.sum(): finite weights may sum to inf)
        raise ValueError("the sample weights are all zero")
    return w


def _raise_for_bad_matrix(X3, n_jobs) -> None:
    """On an error path only: the ``ValueError`` of the first matrix of ``X3`` that is not
    SPD, named by its index in ``X`` (a class mean named it by its index within the class,
    ``X[20]`` for ``X[40]``; the distances of ``predict`` as ``A[i]``); returns when every
    matrix is SPD."""
    _, status = _linalg.funm(X3, func="sqrt", n_jobs=_linalg.jobs(n_jobs))
    _linalg.raise_status(status, "X")


def _mean(X, metric, weights, n_jobs, who):
    """The ``metric`` mean of ``X`` for the estimator named ``who`` (which has no ``max_iter``
    or ``tol``: a mean that stops short says so, not "increase max_iter or tol")."""
    if weights is not None and not (weights > 0).any():
        raise ValueError("the sample weights of a class are all zero")
    if metric == "logeuclid":
        return mean_logeuclid(X, weights, n_jobs=n_jobs)
    if metric == "euclid":  # the weighted arithmetic mean (pyRiemann's mean_euclid)
        return mean(X, weights, metric="euclid", n_jobs=n_jobs)
    token = _ADVICE.set(
        f"{who} has no max_iter or tol: the mean is the last iterate of mean_{metric} with its "
        "defaults"
    )
    try:
        if metric == "riemann":
            return mean_riemann(X, weights, n_jobs=n_jobs).mean
        # its default tol, relative for matrices of small scale (an absolute 1e-10 left
        # the means of covariances of 1e-20 0.1 % off: the first step was below it)
        return mean_wasserstein(X, weights, n_jobs=n_jobs).mean
    finally:
        _ADVICE.reset(token)


class MDM(FeaturesOutMixin, BaseEstimator):
    """Minimum distance to mean classifier on SPD matrices (pyRiemann's ``MDM``).

    ``fit`` computes the mean of each class under ``metric`` (weighted by ``sample_weight``);
    ``predict`` assigns each matrix to the class of the nearest mean, ``transform`` returns the
    distances to the means and ``predict_proba`` the softmax of minus the squared distances,
    as pyRiemann does. A class mean that stops short of its ``tol`` (ill-conditioned
    matrices) is a :class:`geoml.spd.ConvergenceWarning`, as pyRiemann warns.

    2-D input ``(n_samples, n_features)`` is read as the diagonal SPD matrices
    ``diag(exp(x))``, on which the affine-invariant and log-Euclidean MDM are the Euclidean
    nearest centroid in ``x``.

    Parameters
    ----------
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"} or dict, default "riemann"
        Metric of the means and the distances: one metric for both, or (as pyRiemann) a dict
        ``{"mean": ..., "distance": ...}``, e.g. the log-Euclidean means (fast) with the
        affine-invariant distances. ``"euclid"``: the (weighted) arithmetic means and the
        Frobenius distances :math:`\\|X - C\\|_F`, as pyRiemann's ``MDM(metric="euclid")``.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    covmeans_ : ndarray, shape (n_classes, n, n)
        The class means.
    n_features_in_ : int
        ``n`` of the fitted matrices (or the number of columns of 2-D input).

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import MDM
    >>> X = np.stack([np.diag([1.0, 2.0]), np.diag([1.1, 2.0]), np.diag([5.0, 0.5]),
    ...               np.diag([5.0, 0.6])])
    >>> MDM().fit(X, [0, 0, 1, 1]).predict(np.stack([np.diag([4.0, 0.5])]))
    array([1])
    """

    _estimator_type_tag = "classifier"
    _transformer = True  # transform: the distances to the class means

    def __init__(self, metric: str | dict = "riemann", n_jobs=None):
        self.metric = metric
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the class means.

        Parameters
        ----------
        X : array_like, shape (n_samples, n, n) or (n_samples, n_features)
            SPD matrices (or 2-D input, see the class notes).
        y : array_like, shape (n_samples,)
            Class labels.
        sample_weight : array_like, shape (n_samples,), optional

        Returns
        -------
        self
        """
        names_in = self._feature_names_of(X)
        metric, _ = _step_metrics(self.metric, ("mean", "distance"))
        check_n_jobs(self.n_jobs)
        n_jobs = self.n_jobs
        X3, n_in, ndim = _check_spd_input(X, self, fitted=False)
        y = _check_y(y, X3.shape[0])
        w = _check_weights(sample_weight, X3.shape[0])
        classes, inv = np.unique(y, return_inverse=True)
        means = []
        for k in range(len(classes)):
            sel = inv == k
            try:
                means.append(_mean(X3[sel], metric, None if w is None else w[sel], n_jobs, "MDM"))
            except ValueError as err:
                _raise_for_bad_matrix(X3, n_jobs)
                if str(err).startswith("X["):  # an index within the class
                    raise ValueError(
                        f"the matrices of class {classes[k]!r} (X[y == {classes[k]!r}]): {err}"
                    ) from err
                raise
        self.classes_ = classes
        self.covmeans_ = np.stack(means)
        self.n_features_in_ = int(n_in)
        self._ndim = ndim
        self._set_feature_names(names_in)
        return self

    def transform(self, X):
        """Distances to the class means.

        Parameters
        ----------
        X : array_like, shape (n_samples, n, n) or (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes)
        """
        X_in = X
        self._check_feature_names_in(X)
        return self._wrap_output(self._distances(X), X_in)

    def _distances(self, X):
        """``transform`` without the ``set_output`` container (``predict`` uses it)."""
        _check_fitted(self)
        X3, _, _ = _check_spd_input(X, self, fitted=True)
        _, metric = _step_metrics(self.metric, ("mean", "distance"))
        check_n_jobs(self.n_jobs)
        n_jobs = self.n_jobs
        C = self.covmeans_.astype(X3.dtype)
        try:
            d = [distance(X3, C[k], metric, n_jobs=n_jobs) for k in range(len(C))]
        except ValueError:
            _raise_for_bad_matrix(X3, n_jobs)  # "X[i]" (distance names it "A[i]")
            raise
        return np.stack(d, axis=1).astype(np.float64)

    @property
    def _n_features_out(self) -> int:
        if not hasattr(self, "classes_"):
            raise not_fitted_error(self)
        return len(self.classes_)

    def fit_transform(self, X, y, sample_weight=None):
        """``fit(X, y, sample_weight).transform(X)``."""
        return self.fit(X, y, sample_weight).transform(X)

    def predict(self, X):
        """The class of the nearest mean.

        Parameters
        ----------
        X : array_like, shape (n_samples, n, n) or (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        self._check_feature_names_in(X)
        _check_fitted(self)
        return self.classes_[np.argmin(self._distances(X), axis=1)]

    def predict_proba(self, X):
        """Softmax of minus the squared distances to the class means (pyRiemann's).

        Parameters
        ----------
        X : array_like, shape (n_samples, n, n) or (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes)
        """
        self._check_feature_names_in(X)
        d2 = -(self._distances(X) ** 2)
        d2 -= d2.max(axis=1, keepdims=True)
        e = np.exp(d2)
        return e / e.sum(axis=1, keepdims=True)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y`` (weighted by ``sample_weight``)."""
        self._check_feature_names_in(X)  # here: the warning points at the caller
        _check_fitted(self)
        y = np.asarray(y).ravel()
        pred = self.classes_[np.argmin(self._distances(X), axis=1)]
        correct = (pred == y).astype(np.float64)
        w = _check_weights(sample_weight, len(correct))
        if w is not None:
            w = finite_sum(w)[0]  # (finite weights summing to inf: scaled first)
        return float(np.average(correct, weights=w))


def _check_tsupdate(tsupdate) -> bool:
    """``tsupdate`` as a bool (a string or None was read by its truth value)."""
    return check_bool(tsupdate, "tsupdate")


class TangentSpace(FeaturesOutMixin, BaseEstimator):
    """Tangent-space vectorisation of SPD matrices (pyRiemann's ``TangentSpace``).

    ``fit`` computes the mean of the training matrices (``reference_``) under ``metric`` (a
    :class:`geoml.spd.ConvergenceWarning` when it stops short of its ``tol``);
    ``transform`` maps matrices to the tangent space at ``reference_`` and vectorises them
    (:func:`geoml.spd.tangent_space`: the upper triangle, off-diagonal entries times
    :math:`\\sqrt 2`), ready for any vector classifier. 2-D input is read as in :class:`MDM`.

    Parameters
    ----------
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"} or dict, default "riemann"
        Metric of the mean and of the logarithmic map (:func:`geoml.spd.log_map`), as
        pyRiemann's ``TangentSpace(metric=metric)``: one metric for both, or a dict
        ``{"mean": ..., "map": ...}``. ``"euclid"``: the reference point is the (weighted)
        arithmetic mean :math:`C` and a matrix maps to ``upper(X - C)`` (the map is
        :math:`X - C`, its inverse :math:`T + C`, which need not be SPD), as pyRiemann's
        ``TangentSpace(metric="euclid")``.
    tsupdate : bool, default False
        Re-centre at the mean of the matrices given to ``transform`` (unsupervised adaptation).
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Attributes
    ----------
    reference_ : ndarray, shape (n, n)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import TangentSpace
    >>> X = np.stack([np.diag([1.0, 4.0]), np.diag([4.0, 1.0])])
    >>> np.round(TangentSpace().fit_transform(X), 6)
    array([[-0.693147,  0.      ,  0.693147],
           [ 0.693147,  0.      , -0.693147]])
    """

    _transformer = True

    def __init__(self, metric: str | dict = "riemann", tsupdate: bool = False, n_jobs=None):
        self.metric = metric
        self.tsupdate = tsupdate
        self.n_jobs = n_jobs

    def _map_metric(self):
        return _step_metrics(self.metric, ("mean", "map"))[1]

    def fit(self, X, y=None, sample_weight=None):
        """Fit the reference point (the mean of ``X``).

        Parameters
        ----------
        X : array_like, shape (n_samples, n, n) or (n_samples, n_features)
        y : ignored
        sample_weight : array_like, shape (n_samples,), optional

        Returns
        -------
        self
        """
        names_in = self._feature_names_of(X)
        metric, _ = _step_metrics(self.metric, ("mean", "map"))
        _check_tsupdate(self.tsupdate)
        check_n_jobs(self.n_jobs)
        n_jobs = self.n_jobs
        X3, n_in, ndim = _check_spd_input(X, self, fitted=False)
        w = _check_weights(sample_weight, X3.shape[0])
        self.reference_ = _mean(X3, metric, w, n_jobs, "TangentSpace")
        self.n_features_in_ = int(n_in)
        self._ndim = ndim
        self._set_feature_names(names_in)
        return self

    def transform(self, X):
        """Tangent vectors at ``reference_``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n, n) or (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n (n + 1) / 2)
        """
        X_in = X
        self._check_feature_names_in(X)
        _check_fitted(self)
        X3, _, _ = _check_spd_input(X, self, fitted=True)
        check_n_jobs(self.n_jobs)
        n_jobs = self.n_jobs
        ref = self.reference_
        if _check_tsupdate(self.tsupdate):
            metric = _step_metrics(self.metric, ("mean", "map"))[0]
            ref = _mean(X3, metric, None, n_jobs, "TangentSpace")
        return self._wrap_output(
            tangent_space(X3, ref.astype(X3.dtype), self._map_metric(), n_jobs=n_jobs), X_in
        )

    @property
    def _n_features_out(self) -> int:
        if not hasattr(self, "reference_"):
            raise not_fitted_error(self)
        n = self.reference_.shape[0]
        return n * (n + 1) // 2

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X, y, sample_weight).transform(X)``."""
        return self.fit(X, y, sample_weight).transform(X)

    def inverse_transform(self, X):
        """SPD matrices of tangent vectors at ``reference_``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n (n + 1) / 2)

        Returns
        -------
        ndarray, shape (n_samples, n, n)
        """
        _check_fitted(self)
        return untangent_space(X, self.reference_, self._map_metric(), n_jobs=self.n_jobs)
