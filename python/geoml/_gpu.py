"""Lazy access to the optional CUDA module. Nothing here runs at ``import geoml``."""
from __future__ import annotations

import functools
import importlib
import warnings


@functools.lru_cache(maxsize=None)
def cuda_module():
    """``geoml._cuda`` if it was built and loads, else ``None`` (warns if built but broken)."""
    try:
        _cuda = importlib.import_module("geoml._cuda")
    except ModuleNotFoundError:
        return None
    except ImportError as exc:  # built, but a shared library is missing
        warnings.warn(f"geoml._cuda is built but cannot be loaded: {exc}", RuntimeWarning,
                      stacklevel=2)
        return None
    return _cuda


@functools.lru_cache(maxsize=None)
def device_count() -> int:
    """Number of CUDA devices geoml can use (0 without ``geoml._cuda`` or a driver)."""
    mod = cuda_module()
    return mod.device_count() if mod is not None else 0


def available() -> bool:
    """True when ``geoml._cuda`` is built and a GPU is visible."""
    return device_count() > 0
