"""Write the API reference pages (``docs/api/*.rst``) from the public names of geoml.

Every public module of geoml (no leading underscore; found by walking the package, so a new
subpackage appears without editing this file) gets a page listing every name of its
``__all__`` in an ``autosummary`` table, each with a page generated from its docstring. An
object re-exported by several modules (``geoml.MDM`` is ``geoml.spd.MDM``) gets one page, in
the first module of ``MODULES`` order that exports it; the others link to it. ``conf.py`` runs
this at each build; ``tests/test_docs.py`` checks that every public name is covered.

Run by hand: ``python docs/gen_api.py [outdir]`` (default ``docs/api``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import types
from pathlib import Path

# Page order and titles; a public module not named here is appended with its docstring's
# first line as title.
MODULES = {
    "geoml.neighbors": "kNN search and kNN graphs",
    "geoml.spectral": "Spectral: eigensolver, Laplacians, embeddings, clustering",
    "geoml.diffusion": "Diffusion geometry: heat kernels, MDS, HeatGeo",
    "geoml.ot": "Optimal transport and linear assignment",
    "geoml.curvature": "Ricci curvature of graphs",
    "geoml.curvature.compat": "GraphRicciCurvature drop-in",
    "geoml.lowrank": "Low-rank decompositions",
    "geoml.measures": "Measures of data geometry",
    "geoml.spd": "SPD matrices",
    "geoml.dask": "Dask: beyond one machine",
}
# Public-looking modules that are not API: the command line's demo and benchmarks (with their
# submodules).
EXCLUDE = {"geoml.demo", "geoml.bench"}


def public_modules() -> list[str]:
    """Names of geoml's public modules (no ``_`` in any part), ``MODULES`` order first."""
    import geoml

    found = []
    for info in pkgutil.walk_packages(geoml.__path__, "geoml."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if any(info.name == e or info.name.startswith(e + ".") for e in EXCLUDE):
            continue
        found.append(info.name)
    ordered = [m for m in MODULES if m in found]
    return ordered + sorted(m for m in found if m not in MODULES)


def _names(mod) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is None:  # a public module without __all__: its public, locally defined names
        names = [
            n
            for n, v in vars(mod).items()
            if not n.startswith("_")
            and not isinstance(v, types.ModuleType)
            and getattr(v, "__module__", "").startswith(mod.__name__)
        ]
    return list(names)


def _title(name: str, mod) -> str:
    if name in MODULES:
        return MODULES[name]
    doc = inspect.getdoc(mod) or name
    return doc.strip().splitlines()[0].rstrip(".")


def plan() -> dict:
    """``{module: [(name, canonical_fullname or None), ...]}``, top-level ``geoml`` last.

    ``canonical`` is None where the page documents the object itself; otherwise the full
    name of the page that does (the object is re-exported).
    """
    import geoml

    home: dict[int, str] = {}
    out: dict[str, list] = {}
    for modname in [*public_modules(), "geoml"]:
        mod = importlib.import_module(modname)
        rows = []
        for name in _names(mod):
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType):
                rows.append((name, obj.__name__))
                continue
            if isinstance(obj, (str, int, float)):  # __version__ and constants: documented inline
                rows.append((name, "data"))
                continue
            key = id(obj)
            if key in home:
                rows.append((name, home[key]))
            else:
                home[key] = f"{modname}.{name}"
                rows.append((name, None))
        out[modname] = rows
    assert "geoml" in out and geoml is not None
    return out


def _underline(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def write(outdir: Path) -> list[Path]:
    """Write ``index.rst`` and one page per module into ``outdir``; return the pages."""
    outdir.mkdir(parents=True, exist_ok=True)
    pages = []
    p = plan()
    for modname, rows in p.items():
        mod = importlib.import_module(modname)
        title = "geoml (top level)" if modname == "geoml" else f"{modname}: {_title(modname, mod)}"
        lines = [f".. _api-{modname}:\n", _underline(title, "="), ""]
        lines += [
            f".. automodule:: {modname}",
            "   :no-members:",
            "",
            f".. currentmodule:: {modname}",
            "",
        ]
        own = [n for n, c in rows if c is None]
        if own:
            lines += [".. autosummary::", "   :toctree: generated/", "   :nosignatures:", ""]
            lines += [f"   {n}" for n in own]
            lines.append("")
        data = [n for n, c in rows if c == "data"]
        for n in data:
            lines += [f".. data:: {n}", f"   :value: {getattr(mod, n)!r}", ""]
        links = [(n, c) for n, c in rows if c not in (None, "data")]
        if links:
            lines += [
                _underline("Re-exported here", "-"),
                f"These names are importable from ``{modname}``; each is documented once, "
                "where it is defined:",
                "",
                ".. list-table::",
                "   :header-rows: 1",
                "",
                "   * - name",
                "     - documented as",
            ]
            for n, c in links:
                role = "mod" if isinstance(getattr(mod, n), types.ModuleType) else "obj"
                lines += [f"   * - ``{modname}.{n}``", f"     - :{role}:`{c}`"]
            lines.append("")
        path = outdir / f"{modname}.rst"
        path.write_text("\n".join(lines))
        pages.append(path)
    index = [
        ".. _api:\n",
        _underline("API reference", "="),
        "",
        "Every public name of geoml, generated from the docstrings (numpydoc). The top-level "
        "``geoml`` namespace re-exports the most used names of each family.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    index += [f"   {m}" for m in ["geoml", *[m for m in p if m != "geoml"]]]
    (outdir / "index.rst").write_text("\n".join(index) + "\n")
    return pages


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "api"
    for page in write(target):
        print(page)
