"""The scikit-learn estimator contract, written once for every geoml estimator.

:class:`BaseEstimator` gives ``get_params`` / ``set_params`` (read from the ``__init__``
signature, ``component__param`` keys for nested estimators, ``ValueError`` for an unknown key),
a scikit-learn-style ``__repr__`` (the parameters that differ from their defaults),
``__sklearn_tags__`` and ``__sklearn_is_fitted__``; :class:`EmbeddingMixin`,
:class:`ClusterMixin` and :class:`GraphMixin` add ``fit_transform`` / ``fit_predict``.
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
(``n_components``, ``n_clusters``) is a ``ValueError``.
"""

from __future__ import annotations

import inspect
import math
from collections import defaultdict

__all__ = ["BaseEstimator", "ClusterMixin", "EmbeddingMixin", "GraphMixin", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``.

    Subclasses ``ValueError`` and ``AttributeError``, like ``sklearn.exceptions.NotFittedError``,
    so ``except`` clauses written for either (and scikit-learn's own checks) catch it.
    """


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


class EmbeddingMixin:
    """``fit_transform(X)``: fit, then return ``embedding_``.

    No out-of-sample ``transform`` by default (like scikit-learn's ``SpectralEmbedding`` and
    ``TSNE``). An estimator that can place new points defines its own ``transform(X)``
    (:class:`geoml.PHATE`, :class:`geoml.HeatGeo`: phate's kernel interpolation), which returns
    ``embedding_`` (a copy) for the data given to ``fit``, so that ``fit(X).transform(X)``
    equals ``fit_transform(X)`` as scikit-learn's checks require, and transforms every row on
    its own (a subset or a permutation of ``X`` gives the same rows).
    """

    _transformer = True

    def fit_transform(self, X, y=None):
        """Fit and return ``embedding_`` of shape (n_samples, n_components)."""
        return self.fit(X, y).embedding_


class GraphMixin:
    """``fit_transform(X)``: fit, then return ``graph_``."""

    _transformer = True

    def fit_transform(self, X, y=None):
        """Fit and return ``graph_``."""
        return self.fit(X, y).graph_


class ClusterMixin:
    """``fit_predict(X)``: fit, then return ``labels_``; estimator type "clusterer"."""

    _estimator_type_tag = "clusterer"

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``."""
        return self.fit(X, y).labels_
