"""The scikit-learn estimator contract, written once for every geoml estimator.

:class:`BaseEstimator` gives ``get_params`` / ``set_params`` (read from the ``__init__``
signature, ``component__param`` keys for nested estimators, ``ValueError`` for an unknown key),
a scikit-learn-style ``__repr__`` (the parameters that differ from their defaults),
``__sklearn_tags__``, ``__sklearn_is_fitted__`` and scikit-learn's ``feature_names_in_``
bookkeeping (helpers each ``fit`` / ``transform`` / ``predict`` calls); :class:`EmbeddingMixin`,
:class:`ClusterMixin` and :class:`GraphMixin` add ``fit_transform`` / ``fit_predict``, and
:class:`FeaturesOutMixin` (a transformer's) ``get_feature_names_out`` and ``set_output``.
With them ``sklearn.base.clone``, ``Pipeline``, ``GridSearchCV`` and
``sklearn.utils.estimator_checks.check_estimator`` accept geoml's estimators.

geoml does not depend on scikit-learn at run time: importing it would add its import time
(about half a second) and a heavy dependency to ``import geoml`` for a handful of small
methods, so they are written here; ``__sklearn_tags__`` imports scikit-learn inside the method,
and only scikit-learn calls it. The contract is tested against scikit-learn itself
(``tests/test_estimators.py``: ``parametrize_with_checks``, ``clone``, ``Pipeline``,
``GridSearchCV``).

A new estimator subclasses :class:`BaseEstimator` (and a mixin), takes every parameter as an
``__init__`` argument stored unchanged under its own name, validates in ``fit`` (never in
``__init__`` or ``set_params``), ends fitted attributes with ``_``, returns ``self`` from
``fit``, and describes its input in :meth:`BaseEstimator._geoml_tags` when it differs from a
dense ``(n_samples, n_features)`` array. ``fit`` validates ``X`` first (dtype, NaN, shape),
then the parameters that depend on its size; a neighbour count at or above ``n_samples`` is
truncated with :func:`geoml._validation.truncate_to_samples` (a ``UserWarning``, the fitted
value in an attribute such as ``n_neighbors_``), a count that sets the output's shape
(``n_components``, ``n_clusters``) is a ``ValueError``. ``fit`` takes
``names_in = self._feature_names_of(X)`` before converting ``X`` and calls
``self._set_feature_names(names_in)`` before ``return self``; ``transform`` / ``predict``
call ``self._check_feature_names_in(X)`` first; a transformer also derives from
:class:`FeaturesOutMixin`, defines ``_n_features_out`` and returns
``self._wrap_output(result, X)`` (``X`` as given) from ``transform`` / ``fit_transform``.
"""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from collections import defaultdict

import numpy as np

from ._validation import user_stacklevel

__all__ = [
    "BaseEstimator",
    "ClusterMixin",
    "EmbeddingMixin",
    "FeaturesOutMixin",
    "GraphMixin",
    "NotFittedError",
]


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``.

    Subclasses ``ValueError`` and ``AttributeError``, like ``sklearn.exceptions.NotFittedError``,
    so ``except`` clauses written for either (and scikit-learn's own checks) catch it.
    """


def not_fitted_error(est, what: str = "") -> NotFittedError:
    """geoml's :class:`NotFittedError` for ``est``; when scikit-learn is imported, one that is
    also ``sklearn.exceptions.NotFittedError`` (its checks catch that class)."""
    msg = f"this {type(est).__name__} is not fitted yet; call fit first{what}"
    if "sklearn" not in sys.modules:
        return NotFittedError(msg)
    from sklearn.exceptions import NotFittedError as SkNotFitted

    class _NotFitted(NotFittedError, SkNotFitted):
        pass

    _NotFitted.__name__ = _NotFitted.__qualname__ = "NotFittedError"
    return _NotFitted(msg)


# Feature names (scikit-learn's ``feature_names_in_`` contract) -------------------------------
# Written here, numpy only, with scikit-learn's messages (``sklearn.utils.validation.
# _get_feature_names`` / ``_check_feature_names``): geoml does not import scikit-learn or
# pandas; a DataFrame is recognised by its ``columns``.


def _get_feature_names(X):
    """The column names of a DataFrame (pandas, polars, ... : an object with ``columns`` that
    is not an array) as an object array when they are all strings, else None; mixed string
    and non-string names are a ``TypeError`` (scikit-learn's rule)."""
    if isinstance(X, np.ndarray) or not hasattr(X, "columns") or hasattr(X, "toarray"):
        return None
    try:
        names = np.asarray(list(X.columns), dtype=object)
    except TypeError:
        return None
    if names.ndim != 1 or len(names) == 0:
        return None
    types = sorted(t.__qualname__ for t in {type(v) for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. "
            "If you want feature names to be stored and validated, you must convert "
            "them all to strings, by using X.columns = X.columns.astype(str) for "
            "example. Otherwise you can remove feature / column names from your input "
            "data, or convert them all to a non-string data type."
        )
    if len(types) == 1 and types[0] == "str":
        return names
    return None


def _check_feature_names(est, X, *, reset: bool) -> None:
    """scikit-learn's ``_check_feature_names``: ``reset`` (fit) stores or removes
    ``feature_names_in_``; otherwise a ``UserWarning`` when only one of fit and ``X`` had
    names, a ``ValueError`` when they differ."""
    names = _get_feature_names(X)
    if reset:
        if names is not None:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
        return
    fitted = getattr(est, "feature_names_in_", None)
    cls = type(est).__name__
    if fitted is None and names is None:
        return
    if (names is None) != (fitted is None):  # only one of fit and X had names
        msg = (
            f"X has feature names, but {cls} was fitted without feature names"
            if fitted is None
            else f"X does not have valid feature names, but {cls} was fitted with feature names"
        )
        warnings.warn(msg, UserWarning, stacklevel=user_stacklevel())
        return
    if len(fitted) != len(names) or np.any(fitted != names):
        message = "The feature names should match those that were passed during fit.\n"
        fitted_set, names_set = set(fitted), set(names)
        unexpected = sorted(names_set - fitted_set)
        missing = sorted(fitted_set - names_set)

        def add_names(names):
            output = ""
            max_n_names = 5
            for i, name in enumerate(names):
                if i >= max_n_names:
                    output += "- ...\n"
                    break
                output += f"- {name}\n"
            return output

        if unexpected:
            message += "Feature names unseen at fit time:\n"
            message += add_names(unexpected)
        if missing:
            message += "Feature names seen at fit time, yet now missing:\n"
            message += add_names(missing)
        if not missing and not unexpected:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)


def _is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


class BaseEstimator:
    """Parameters, ``repr`` and scikit-learn tags of a geoml estimator (see the module notes)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` parameter names, sorted (``*args`` is refused, like scikit-learn)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(
                    f"{cls.__name__}.__init__ takes *{p.name}; estimators list "
                    "every parameter in their signature"
                )
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict:
        """Parameters of this estimator, by name.

        Parameters
        ----------
        deep : bool, default True
            Also return the parameters of parameters that are estimators, as
            ``"<parameter>__<its parameter>"``.
        """
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params) -> BaseEstimator:
        """Set parameters (``name=value``, or ``"<parameter>__<its parameter>"=value`` for a
        nested estimator) and return ``self``. An unknown name is a ``ValueError``; values are
        checked by ``fit``."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested = defaultdict(dict)
        for key, value in params.items():
            key, delim, sub_key = key.partition("__")
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {self}. Valid "
                    f"parameters are: {self._get_param_names()!r}."
                )
            if delim:
                nested[key][sub_key] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub_params in nested.items():
            valid[key].set_params(**sub_params)
        return self

    def _changed_params(self) -> dict:
        """The parameters whose value differs from the ``__init__`` default, in signature
        order."""
        sig = inspect.signature(type(self).__init__).parameters
        out = {}
        for name, p in sig.items():
            if name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            value = getattr(self, name)
            default = p.default
            if value is default or (_is_nan(value) and _is_nan(default)):
                continue
            if repr(value) != repr(default):
                out[name] = value
        return out

    def __repr__(self) -> str:
        name = type(self).__name__
        items = [f"{k}={v!r}" for k, v in self._changed_params().items()]
        line = f"{name}({', '.join(items)})"
        if len(line) <= 88:
            return line
        pad = " " * (len(name) + 1)
        lines, cur = [], ""
        for item in items:
            if cur and len(pad) + len(cur) + len(item) + 2 > 88:
                lines.append(cur + ",")
                cur = item
            else:
                cur = f"{cur}, {item}" if cur else item
        lines.append(cur)
        return f"{name}(" + ("\n" + pad).join(lines) + ")"

    def __sklearn_is_fitted__(self) -> bool:
        """True once ``fit`` has set a fitted attribute (a public name ending in ``_``)."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_is_fitted(self, what: str = "") -> None:
        """``NotFittedError`` (an ``AttributeError`` and ``ValueError``) before ``fit``."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) first{what}"
            )

    # feature names (scikit-learn's feature_names_in_) -------------------------------------
    # Called explicitly by each method (a wrapper would add a frame and move every warning's
    # stacklevel off the caller): ``fit`` takes the names of its input first
    # (``_feature_names_of``: the mixed-names TypeError before any work) and stores them on
    # success; ``transform`` / ``predict`` check their input's against them.

    @staticmethod
    def _feature_names_of(X):
        """The string column names of a DataFrame ``X`` (object array), else None."""
        return _get_feature_names(X)

    def _set_feature_names(self, names) -> None:
        """Store ``feature_names_in_`` (from :meth:`_feature_names_of`), or remove it (None)."""
        if names is not None:
            self.feature_names_in_ = names
        elif "feature_names_in_" in vars(self):
            del self.feature_names_in_

    def _check_feature_names_in(self, X) -> None:
        """scikit-learn's warnings and errors for ``X``'s names against ``fit``'s (nothing
        before ``fit``: the method's own ``NotFittedError`` comes first). Call it from the
        public method itself (the warning points at that method's caller)."""
        if self.__sklearn_is_fitted__():
            _check_feature_names(self, X, reset=False)

    # scikit-learn tags -------------------------------------------------------------------
    _estimator_type_tag: str | None = None  # "clusterer" for clusterers
    _transformer: bool = False  # transformer tags (fit_transform output in the input's family)

    def _geoml_tags(self) -> dict:
        """Tag changes as ``{"input_tags.sparse": True, "non_deterministic": False, ...}``
        (dotted names of ``sklearn.utils.Tags`` fields); override per estimator."""
        return {}

    def __sklearn_tags__(self):
        """scikit-learn's ``Tags`` for this estimator (imports scikit-learn: only scikit-learn
        calls this)."""
        from sklearn.utils import Tags, TargetTags, TransformerTags

        tags = Tags(
            estimator_type=self._estimator_type_tag,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags() if self._transformer else None,
            regressor_tags=None,
            classifier_tags=None,
        )
        for key, value in self._geoml_tags().items():
            obj = tags
            *path, last = key.split(".")
            for part in path:
                obj = getattr(obj, part)
            if not hasattr(obj, last):
                raise AttributeError(f"{type(self).__name__}._geoml_tags: no tag {key!r}")
            setattr(obj, last, value)
        return tags


class FeaturesOutMixin:
    """``get_feature_names_out`` with scikit-learn's ``ClassNamePrefixFeaturesOutMixin``
    names (``"<class name, lower case><i>"`` for each output column) and ``set_output``
    (``transform="default"``, ``"pandas"`` or ``"polars"``, as ``sklearn.base.
    TransformerMixin`` gives it: the ``transform`` and ``fit_transform`` output, a DataFrame
    whose columns are these names, the input's index kept).

    The estimator defines ``_n_features_out`` (the output's width), raising
    :class:`NotFittedError` before ``fit``.
    """

    _sklearn_auto_wrap_output_keys = frozenset({"transform"})

    def get_feature_names_out(self, input_features=None):
        """Output feature names, ``"<class name, lower case>0"``, ``"...1"``, ...

        Parameters
        ----------
        input_features : array_like of str, optional
            Checked against ``feature_names_in_`` (when fitted on a DataFrame) and
            ``n_features_in_``; not used otherwise.

        Returns
        -------
        ndarray of str objects, shape (n_features_out,)
        """
        n_out = self._n_features_out
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and not np.array_equal(fitted, input_features):
                raise ValueError("input_features is not equal to feature_names_in_")
            n_in = getattr(self, "n_features_in_", None)
            if n_in is not None and len(input_features) != n_in:
                raise ValueError(
                    "input_features should have length equal to number of features "
                    f"({n_in}), got {len(input_features)}"
                )
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(n_out)], dtype=object)

    def _wrap_output(self, out, X):
        """``out`` (``transform`` / ``fit_transform``'s result for the input ``X``) in the
        container set by ``set_output`` or scikit-learn's ``transform_output``. The wrapping
        is scikit-learn's own, so pandas or polars is imported by scikit-learn; without
        scikit-learn imported nothing can have configured it and ``out`` is returned."""
        if "sklearn" not in sys.modules:
            return out
        from sklearn.utils._set_output import _get_output_config, _wrap_data_with_container

        dense = _get_output_config("transform", self)["dense"]
        if dense == "default":
            return out
        if getattr(out, "ndim", 2) != 2:
            raise ValueError(
                f"{type(self).__name__} returns an array of shape {out.shape}; {dense} output "
                "needs a 2-D result: use set_output(transform='default')"
            )
        return _wrap_data_with_container("transform", out, X, self)

    def set_output(self, *, transform=None):
        """Set the container of ``transform`` and ``fit_transform``'s output.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None
            ``"default"``: the estimator's own output; ``"pandas"`` / ``"polars"``: a
            DataFrame (needs scikit-learn and that library; sparse output cannot be one);
            None: unchanged.

        Returns
        -------
        self
        """
        if transform is None:
            return self
        if transform not in ("default", "pandas", "polars"):
            raise ValueError(
                f"transform must be 'default', 'pandas', 'polars' or None; got {transform!r}"
            )
        if transform != "default":
            import sklearn  # noqa: F401  (the wrapping is scikit-learn's)
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self


class EmbeddingMixin(FeaturesOutMixin):
    """``fit_transform(X)``: fit, then return ``embedding_``.

    No out-of-sample ``transform`` by default (like scikit-learn's ``SpectralEmbedding`` and
    ``TSNE``). An estimator that can place new points defines its own ``transform(X)``
    (:class:`geoml.PHATE`, :class:`geoml.HeatGeo`: phate's kernel interpolation), which returns
    ``embedding_`` (a copy) for the data given to ``fit``, so that ``fit(X).transform(X)``
    equals ``fit_transform(X)`` as scikit-learn's checks require, and transforms every row on
    its own (a subset or a permutation of ``X`` gives the same rows).
    """

    _transformer = True

    @property
    def _n_features_out(self) -> int:
        if getattr(self, "embedding_", None) is None:
            raise not_fitted_error(self)
        return int(self.embedding_.shape[1])

    def fit_transform(self, X, y=None):
        """Fit and return ``embedding_`` of shape (n_samples, n_components)."""
        return self._wrap_output(self.fit(X, y).embedding_, X)


class GraphMixin(FeaturesOutMixin):
    """``fit_transform(X)``: fit, then return ``graph_`` (sparse, one column per fitted
    sample: ``get_feature_names_out`` names them as scikit-learn's ``KNeighborsTransformer``
    does; a DataFrame output is a ``ValueError``, as there)."""

    _transformer = True

    @property
    def _n_features_out(self) -> int:
        if getattr(self, "graph_", None) is None:
            raise not_fitted_error(self)
        return int(self.graph_.shape[1])

    def fit_transform(self, X, y=None):
        """Fit and return ``graph_``."""
        return self._wrap_output(self.fit(X, y).graph_, X)


class ClusterMixin:
    """``fit_predict(X)``: fit, then return ``labels_``; estimator type "clusterer"."""

    _estimator_type_tag = "clusterer"

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``."""
        return self.fit(X, y).labels_
