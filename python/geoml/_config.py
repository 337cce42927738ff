"""``geoml.show_config()``: what was built and what this machine offers."""

from __future__ import annotations

import os
import sys

from . import _core, _gpu


def config() -> dict:
    """Build and run-time facts as a dict (what :func:`show_config` prints)."""
    import numpy
    import scipy

    info = {
        "geoml": _core.__version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "compiler": _core.compiler(),
        "openmp": bool(_core.openmp),
        "threads": _core.max_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "simd": _core.simd_isa(),
        "simd_vnni": _core.simd_vnni(),
        "blas": "none: kNN distances come from geoml's own SIMD micro-kernel "
        f"({_core.simd_isa()}), no BLAS call",
    }
    mod = _gpu.cuda_module()
    info["cuda_module"] = mod is not None
    if mod is not None:
        rt, drv = mod.runtime_version(), mod.driver_version()
        info["cuda_runtime"] = f"{rt // 1000}.{rt % 1000 // 10}"
        info["cuda_driver"] = f"{drv // 1000}.{drv % 1000 // 10}" if drv else "none"
        info["cuda_archs"] = mod.archs
        n = mod.device_count()
        gpus = []
        for i in range(n):
            dev = mod.device_info(i)
            cc = "".join(str(v) for v in dev["compute_capability"])
            gpus.append(f"{dev['name']} (sm_{cc}, {dev['total_memory'] / 2**30:.0f} GiB)")
        info["gpus"] = gpus
    return info


def show_config() -> None:
    """Print geoml's version, compiler, threads, SIMD/BLAS use, CUDA build and visible GPUs.

    Examples
    --------
    >>> import geoml
    >>> geoml.show_config()  # doctest: +ELLIPSIS
    geoml ...
    """
    info = config()
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "gpus":
            value = ", ".join(value) if value else "none visible"
        print(f"{key:<{width}}  {value}")
