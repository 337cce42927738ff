"""Result tuples with extra attributes."""

from __future__ import annotations


class ExtraFields:
    """Mixin (first base) of a ``NamedTuple`` subclass whose instances carry extra attributes
    outside the tuple (``recall_``, ...): ``_replace`` keeps them, where the ``NamedTuple``
    method builds a bare instance without them. ``copy``, ``deepcopy`` and ``pickle`` keep
    them already (they copy the instance ``__dict__``)."""

    __slots__ = ()

    def _replace(self, /, **kwargs):
        out = super()._replace(**kwargs)
        out.__dict__.update(self.__dict__)
        return out
