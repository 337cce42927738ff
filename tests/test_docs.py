"""Documentation: every public name has an API page, the examples use only public API, and
``geoml demo --plot`` writes a PNG (issue 22)."""

import ast
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import geoml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _public_modules():
    """geoml's public modules, found independently of docs/gen_api.py."""
    mods = ["geoml"]
    for info in pkgutil.walk_packages(geoml.__path__, "geoml."):
        if any(p.startswith("_") for p in info.name.split(".")):
            continue
        if info.name != "geoml.demo" and info.name.split(".")[:2] != ["geoml", "bench"]:
            mods.append(info.name)  # the command line's demo and benchmarks are not API
    return mods


@pytest.fixture(scope="module")
def api_pages(tmp_path_factory):
    path = DOCS / "gen_api.py"
    if not path.exists():  # an installed wheel tested outside the source tree
        pytest.skip("docs/gen_api.py not in this checkout")
    spec = importlib.util.spec_from_file_location("geoml_gen_api", path)
    gen_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_api)
    out = tmp_path_factory.mktemp("api")
    gen_api.write(out)
    pages = {}
    for rst in out.glob("geoml*.rst"):
        text = rst.read_text()
        documented = set()
        block = re.search(r"\.\. autosummary::\n((?:   .*\n|\n)+)", text)
        if block:
            documented = {
                ln.strip() for ln in block.group(1).splitlines() if ln.strip() and ":" not in ln
            }
        linked = dict(re.findall(r"\* - ``[\w.]+\.(\w+)``\n     - :\w+:`([\w.]+)`", text))
        data = set(re.findall(r"^\.\. data:: (\w+)", text, re.M))
        pages[rst.stem] = (documented, linked, data)
    index = (out / "index.rst").read_text()
    return pages, index


def test_every_public_name_has_an_api_page(api_pages):
    pages, index = api_pages
    all_documented = {f"{m}.{n}" for m, (doc, _, _) in pages.items() for n in doc}
    for modname in _public_modules():
        assert modname in pages, f"no API page for the public module {modname}"
        assert f"   {modname}\n" in index + "\n", f"{modname} missing from the API index"
        mod = importlib.import_module(modname)
        documented, linked, data = pages[modname]
        names = getattr(mod, "__all__", None)
        assert names is not None, f"{modname} has no __all__"
        for name in names:
            obj = getattr(mod, name)
            if name in documented:
                assert inspect.getdoc(obj), f"{modname}.{name} has no docstring"
                continue
            if name in data:
                continue
            assert name in linked, f"{modname}.{name} is on no API page"
            target = linked[name]
            if isinstance(obj, types.ModuleType):
                assert target == obj.__name__ and target in pages
            else:
                assert target in all_documented, f"{modname}.{name} links to {target}"
                home, _, attr = target.rpartition(".")
                assert getattr(importlib.import_module(home), attr) is obj


def test_api_pages_document_each_object_once(api_pages):
    pages, _ = api_pages
    seen = {}
    for modname, (documented, _, _) in pages.items():
        mod = importlib.import_module(modname)
        for name in documented:
            key = id(getattr(mod, name))
            assert key not in seen, f"{modname}.{name} is documented twice (also {seen[key]})"
            seen[key] = f"{modname}.{name}"


def test_examples_use_only_public_api():
    scripts = sorted(EXAMPLES.glob("plot_*.py")) if EXAMPLES.exists() else []
    if not scripts:
        pytest.skip("examples/ not in this checkout")
    assert len(scripts) >= 9
    for path in scripts:
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc and doc.splitlines()[1].startswith("==="), f"{path.name}: no gallery title"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("geoml"):
                assert not any(p.startswith("_") for p in node.module.split(".")), path.name
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("geoml"):
                        assert not any(p.startswith("_") for p in alias.name.split("."))
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                assert not (isinstance(base, ast.Name) and base.id in ("geoml", "spd")), (
                    f"{path.name}: private geoml name {node.attr}"
                )


def _run_demo(args, cwd, block_matplotlib=False):
    code = "import sys\n"
    if block_matplotlib:
        code += "sys.modules['matplotlib'] = None\n"  # import matplotlib -> ImportError
    code += f"from geoml.__main__ import main\nsys.exit(main({args!r}))\n"
    env = dict(os.environ, OMP_NUM_THREADS="2", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd, env=env
    ).stdout


def test_demo_plot_writes_png(tmp_path):
    # --plot without a path writes geoml_demo.png in the working directory (an explicit path:
    # test_spectral.py::test_demo_eigenmap_stage and the test below)
    pytest.importorskip("matplotlib")
    stdout = _run_demo(["demo", "--n", "1000", "--plot"], tmp_path)
    assert "figure written to geoml_demo.png" in stdout
    data = (tmp_path / "geoml_demo.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_demo_plot_without_matplotlib_still_runs(tmp_path):
    out = tmp_path / "demo.png"
    stdout = _run_demo(["demo", "--n", "800", "--plot", str(out)], tmp_path, True)
    assert "matplotlib is not installed" in stdout
    assert "[RicciCommunities]" in stdout  # the demo ran to the end
    assert not out.exists()


def test_readme_figure_is_small():
    png = DOCS / "_static" / "demo.png"
    if not (ROOT / "README.md").exists():
        pytest.skip("README.md not in this checkout")
    assert "docs/_static/demo.png" in (ROOT / "README.md").read_text()
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) < 200_000
