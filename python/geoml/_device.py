"""Where a call runs and how its data gets there: the one place for device placement.

``resolve_device`` / ``compute_side`` decide between the CPU and the GPU, ``on_device``
validates an array on the side that computes, ``move`` carries arrays and CSR matrices across,
``xp`` names the array module of an array. CuPy is imported only when a device array or
``device="cuda"`` asks for it: ``import geoml`` never loads it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import _gpu
from ._validation import as_float_array, is_device_object, is_gpu_array

__all__ = ["DEVICES", "compute_side", "move", "on_device", "resolve_device", "xp"]

DEVICES = ("auto", "cpu", "cuda")


def _check_device(device) -> None:
    if device not in DEVICES:
        raise ValueError(f"device={device!r}; choose 'auto', 'cpu' or 'cuda'")


def resolve_device(device, *arrays) -> str:
    """``"cpu"`` or ``"cuda"``: where a call runs.

    ``"auto"`` follows the input (CuPy / ``__cuda_array_interface__`` arrays run on the GPU),
    ``"cpu"`` and ``"cuda"`` force a device; the result type always follows the input type.
    Mixing host and device arrays in one call is a ``TypeError``.
    """
    _check_device(device)
    kinds = {is_gpu_array(a) for a in arrays if a is not None}
    if len(kinds) > 1:
        raise TypeError(
            "the array arguments mix GPU (CuPy) and host (NumPy) arrays; pass all "
            "of them on the same side (cupy.asarray(...) or .get())"
        )
    if device == "auto":
        return "cuda" if True in kinds else "cpu"
    return device


def compute_side(device, X, who: str) -> tuple[bool, str]:
    """``(gpu_in, where)`` for an estimator's ``fit``: whether ``X`` (array or sparse matrix)
    is on the device, and where the fit runs (``RuntimeError`` if that is a GPU geoml cannot
    use)."""
    _check_device(device)
    gpu_in = is_device_object(X)
    where = ("cuda" if gpu_in else "cpu") if device == "auto" else device
    if where == "cuda":
        _gpu.require_cuda(who)
    return gpu_in, where


def xp(a):
    """The array module of ``a``: CuPy for device arrays (imported only then), else NumPy."""
    if is_gpu_array(a):
        import cupy

        return cupy
    return np


def move(obj, to_gpu: bool):
    """``obj`` (array or CSR matrix) on the device (``to_gpu``) or the host; no copy if there."""
    on_gpu = is_device_object(obj)
    if on_gpu == to_gpu:
        return obj
    if not to_gpu:
        return obj.get()
    if sp.issparse(obj):
        import cupyx.scipy.sparse as csp

        return csp.csr_matrix(obj)
    import cupy

    return cupy.asarray(obj)


def on_device(X, where: str, name: str, *, allow_empty: bool = False):
    """Validated float array of ``X`` on the compute side ``where`` ("cpu" or "cuda")."""
    if where == "cuda":
        cp, _ = _gpu.require_cuda("geoml")
        from ._neighbors_gpu import as_device_float_array

        return as_device_float_array(X, name, cp, allow_empty=allow_empty)
    if is_gpu_array(X):
        import cupy

        X = cupy.asarray(X).get()
    return as_float_array(X, name, allow_empty=allow_empty)
