"""The optional CUDA module: a device is visible when required, and the self-test kernel runs."""

import os

import numpy as np
import pytest

from geoml import _gpu


def test_gpu_visible_when_required():
    if os.environ.get("GEOML_REQUIRE_GPU") != "1":
        pytest.skip("set GEOML_REQUIRE_GPU=1 on a GPU machine to require the device")
    assert _gpu.cuda_module() is not None, "geoml._cuda was not built"
    assert _gpu.available(), "geoml._cuda is built but sees no GPU"


def test_cuda_module_reports_without_gpu():
    mod = _gpu.cuda_module()
    if mod is None:
        pytest.skip("geoml._cuda not built (no CUDA compiler at build time)")
    assert mod.device_count() >= 0
    assert (
        "90" in mod.archs or os.environ.get("CUDAARCHS") or "CMAKE_CUDA_ARCHITECTURES" in os.environ
    )


@pytest.mark.gpu
def test_selftest_kernel_runs_on_device():
    out = np.asarray(_gpu.cuda_module().selftest(1000, 2.0, 1.0))
    np.testing.assert_array_equal(out, 2.0 * np.arange(1000, dtype=np.float32) + 1.0)
