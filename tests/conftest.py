"""Shared test configuration: the `gpu` marker and the GPU-presence guarantee."""
import os

import pytest


def _gpu_ready() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    from geoml import _gpu

    return _gpu.available()


def pytest_collection_modifyitems(config, items):
    if _gpu_ready():
        return
    if os.environ.get("GEOML_REQUIRE_GPU") == "1":
        # A device run must never skip silently: fail each GPU test instead.
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU, CuPy and geoml._cuda")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=[0, 1, 2])
def rng(request):
    """A NumPy Generator; tests using it run on three seeds."""
    import numpy as np

    return np.random.default_rng(request.param)
