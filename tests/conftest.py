"""Shared test configuration: the `gpu` marker, the GPU-presence guarantee, the hypothesis
profiles of the fuzz tests and the `isa` fixture (each SIMD kernel this CPU can run)."""

import os

import pytest

from geoml import _core

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the fuzz tests skip themselves without hypothesis
    pass
else:
    # HYPOTHESIS_PROFILE picks one: "ci" (default; sized for a 2-core CI runner), "quick"
    # (a smoke run) or "fuzz" (a long local search). deadline=None: the first call of a kernel
    # may spin up OpenMP threads, and a loaded machine must not make a test flaky.
    _health = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    # ci and quick replay the same examples on every run (derandomize: a red CI is reproducible
    # and never a lucky draw); the fuzz profile explores, with hypothesis's example database.
    settings.register_profile(
        "ci",
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_health,
        print_blob=True,
    )
    settings.register_profile(
        "quick",
        max_examples=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_health,
        print_blob=True,
    )
    settings.register_profile(
        "fuzz", max_examples=1000, deadline=None, suppress_health_check=_health, print_blob=True
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


# The SIMD kernels this CPU can execute, the best first (tests/test_simd.py has its own list,
# vector ISAs against generic).
ISAS = [
    isa
    for isa in ("avx512", "avx2", "generic")
    if isa == "generic"
    or {"avx512": 2, "avx2": 1}[isa] <= {"avx512": 2, "avx2": 1, "generic": 0}[_core.simd_isa()]
]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run a test with each SIMD kernel this CPU can execute (automatic detection restored
    afterwards)."""
    _core.set_simd_isa(request.param)
    yield request.param
    _core.set_simd_isa("auto")
