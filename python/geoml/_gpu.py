"""Lazy access to the optional CUDA module. Nothing here runs at ``import geoml``.

Where a call runs and moving data there: ``_device.py``."""

from __future__ import annotations

import functools
import importlib
import warnings


@functools.cache
def cuda_module():
    """``geoml._cuda`` if it was built and loads, else ``None`` (warns if built but broken)."""
    try:
        _cuda = importlib.import_module("geoml._cuda")
    except ModuleNotFoundError:
        return None
    except ImportError as exc:  # built, but a shared library is missing
        warnings.warn(
            f"geoml._cuda is built but cannot be loaded: {exc}", RuntimeWarning, stacklevel=2
        )
        return None
    return _cuda


@functools.cache
def device_count() -> int:
    """Number of CUDA devices geoml can use (0 without ``geoml._cuda`` or a driver)."""
    mod = cuda_module()
    return mod.device_count() if mod is not None else 0


def available() -> bool:
    """True when ``geoml._cuda`` is built and a GPU is visible."""
    return device_count() > 0


def require_cuda(what: str):
    """``(cupy, geoml._cuda)`` for a GPU call of ``what``; ``RuntimeError`` saying what is
    missing."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            f"{what} on the GPU needs CuPy: install the CuPy wheel matching your "
            "CUDA (e.g. pip install cupy-cuda13x), or use device='cpu'"
        ) from exc
    mod = cuda_module()
    if mod is None:
        raise RuntimeError(
            f"{what} on the GPU needs geoml._cuda, which this geoml build lacks: "
            "reinstall with a CUDA compiler (GEOML_CUDA=ON), or use device='cpu'"
        )
    if mod.device_count() == 0:
        raise RuntimeError(f"{what} on the GPU: no CUDA device is visible; use device='cpu'")
    return cupy, mod


_TYPESTR = {"<f4": "float32", "<f8": "float64", "<i4": "int32", "<i8": "int64"}


def device_pointer(arr, dtype=None) -> int:
    """Device address of a C-contiguous device array, read from its ``__cuda_array_interface__``.

    Checks the interface's typestr (against ``dtype`` when given) and that the strides describe
    a C-contiguous layout; callers make arrays contiguous (``cupy.ascontiguousarray``) first.
    """
    cai = arr.__cuda_array_interface__
    shape, typestr = tuple(cai["shape"]), cai["typestr"]
    if typestr not in _TYPESTR:
        raise TypeError(f"unsupported device dtype {typestr!r}")
    if dtype is not None and _TYPESTR[typestr] != str(dtype):
        raise TypeError(f"device array has dtype {_TYPESTR[typestr]}, expected {dtype}")
    strides = cai.get("strides")
    if strides is not None:
        item = int(typestr[2:])
        expect, acc = [], item
        for extent in reversed(shape):
            expect.append(acc)
            acc *= extent
        live = [(s, e) for s, e, n in zip(strides, reversed(expect), shape) if n > 1]
        if any(s != e for s, e in live):
            raise ValueError(f"device array is not C-contiguous (strides {strides})")
    return int(cai["data"][0])
