"""Packaging: version, configuration report, CLI, no GPU import at `import geoml`, doctests."""

import doctest
import importlib
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import geoml


def test_version_single_source():
    from importlib.metadata import version

    assert geoml.__version__ == version("geoml")


def test_show_config(capsys):
    geoml.show_config()
    out = capsys.readouterr().out
    for key in ("geoml", "compiler", "openmp", "threads", "simd", "blas", "cuda_module"):
        assert key in out
    assert geoml.__version__ in out


def test_cli_info_and_demo():
    env = dict(os.environ, OMP_NUM_THREADS="2")
    out = subprocess.run(
        [sys.executable, "-m", "geoml", "info"], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "compiler" in out and "OMP_NUM_THREADS  2" in out
    out = subprocess.run(
        [sys.executable, "-m", "geoml", "demo", "--n", "3000"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert "knn_graph" in out and "connected component" in out
    assert "[OllivierRicci]" in out and "adjusted Rand index" in out


def test_import_does_not_load_cupy_or_cuda():
    code = (
        "import sys, geoml, numpy as np; geoml.knn_graph(np.random.rand(50, 3), 3); "
        "print('cupy' in sys.modules, 'geoml._cuda' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]


PUBLIC_MODULES = [
    "geoml.neighbors",
    "geoml._config",
    "geoml.spectral",
    "geoml.ot",
    "geoml.curvature",
    "geoml.lowrank",
    "geoml.measures",
    "geoml.spd",
    "geoml.diffusion",
]


def _with_submodules(name):
    """The module, and for a package (spectral, lowrank) every module inside it."""
    mod = importlib.import_module(name)
    mods = [mod]
    for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
        if "gpu" not in info.name:  # device modules import CuPy
            mods.append(importlib.import_module(f"{name}.{info.name}"))
    return mods


# NumPy's default print options: the examples' outputs are written for them (a package that
# another test imports may change them globally, e.g. dadapy sets precision=2 on import)
_DEFAULT_PRINT = dict(
    precision=8,
    threshold=1000,
    edgeitems=3,
    linewidth=75,
    suppress=False,
    nanstr="nan",
    infstr="inf",
    sign="-",
    floatmode="maxprec",
    legacy=False,
)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_doctests(name):
    attempted = failed = 0
    for mod in _with_submodules(name):
        with np.printoptions(**_DEFAULT_PRINT):
            flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            result = doctest.testmod(mod, optionflags=flags)
        attempted, failed = attempted + result.attempted, failed + result.failed
    assert attempted > 0, f"{name} has no doctest examples"
    assert failed == 0
