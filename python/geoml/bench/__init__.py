"""Side-by-side benchmarks, shipped with the package: ``geoml bench <family> [--quick] ...``.

Each family module (``geoml.bench.knn``, ``geoml.bench.eigsh``, ...) times geoml and the tools it
replaces (the anchors) on the same data in one run (warm-up, repeats, median), prints the table
and the machine facts, and writes JSON: ``--out PATH``, else ``<results>/<name>.json`` where
``<results>`` is ``--results-dir``, ``$GEOML_BENCH_RESULTS`` or ``./geoml-bench-results``. The
anchors come from the ``bench`` extra (``pip install "geoml[bench]"``); one that is not installed
is named in a note before the run, and the family skips its rows where it can. Two runs compare
with ``geoml bench compare a.json b.json``. The repository's ``bench/bench_<family>.py`` scripts
call the same code (and write to ``bench/results/``).

``import geoml`` does not import this package, and importing it imports no family module and no
anchor: ``main`` imports the family it runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

# family -> (what it measures, anchors as (import name, pip name))
FAMILIES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "knn": (
        "exact and approximate kNN graphs",
        (
            ("sklearn", "scikit-learn"),
            ("faiss", "faiss-cpu"),
            ("pynndescent", "pynndescent"),
            ("hnswlib", "hnswlib"),
        ),
    ),
    "eigsh": (
        "Lanczos eigensolver, Laplacian eigenmaps, spectral embedding",
        (("sklearn", "scikit-learn"), ("pyamg", "pyamg"), ("ot", "POT")),
    ),
    "ot": ("optimal transport and linear assignment", (("ot", "POT"),)),
    "ricci": (
        "Ollivier-Ricci curvature and Ricci flow",
        (("networkx", "networkx"), ("GraphRicciCurvature", "GraphRicciCurvature")),
    ),
    "lowrank": (
        "randomized SVD, Tucker, CP",
        (("tensorly", "tensorly"), ("sklearn", "scikit-learn")),
    ),
    "measures": (
        "intrinsic dimension, spectral entropies, magnitude",
        (("skdim", "scikit-dimension"), ("dse_dsmi", "dse-dsmi")),
    ),
    "spd": ("SPD-matrix geometry", (("pyriemann", "pyriemann"), ("ot", "POT"))),
    "diffusion": (
        "heat kernels, MDS, HeatGeo, PHATE",
        (("sklearn", "scikit-learn"), ("heatgeo", "heatgeo"), ("phate", "phate")),
    ),
    "dask": ("the Dask layer", (("dask", "dask[array]"), ("distributed", "distributed"))),
}

USAGE = """\
usage: geoml bench <family> [--quick] [--results-dir DIR] [family options ...]
       geoml bench compare A.json B.json [--threshold 0.1]
       geoml bench list

families: {families}
`geoml bench <family> --help` lists a family's options (the same as bench/bench_<family>.py).
"""


def missing_anchors(family: str) -> list[str]:
    """The pip names of ``family``'s anchors that are not installed (nothing is imported)."""
    return [pip for mod, pip in FAMILIES[family][1] if importlib.util.find_spec(mod) is None]


def run(family: str, argv: list[str] | None = None, results_dir: str | Path | None = None) -> int:
    """Run ``family``'s bench with command-line arguments ``argv``; exit status."""
    if family not in FAMILIES:
        raise ValueError(f"unknown bench family {family!r}; expected one of {sorted(FAMILIES)}")
    from . import _harness

    if results_dir is not None:
        _harness.RESULTS = Path(results_dir)
    argv = list(argv or [])
    if not {"-h", "--help"} & set(argv):
        missing = missing_anchors(family)
        if missing:
            print(
                f"note: not installed, so not measured: {', '.join(missing)} "
                '(pip install "geoml[bench]")'
            )
    try:
        mod = importlib.import_module(f"{__name__}.{family}")
        rc = mod.main(argv)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {m for m, _ in FAMILIES[family][1]}:
            print(
                f"geoml bench {family}: this run needs {exc.name}, which is not installed "
                '(pip install "geoml[bench]")',
                file=sys.stderr,
            )
            return 2
        raise
    return int(rc or 0)


def main(argv: list[str] | None = None) -> int:
    """``geoml bench ...`` (``python -m geoml.bench ...``): a family, ``compare`` or ``list``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = USAGE.format(families=", ".join(FAMILIES))
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "list":
        for name, (what, anchors) in FAMILIES.items():
            print(f"{name:10s} {what}; anchors: {', '.join(pip for _, pip in anchors)}")
        return 0
    if cmd == "compare":
        from ._compare import main as compare_main

        return compare_main(rest)
    if cmd not in FAMILIES:
        print(f"geoml bench: unknown family {cmd!r}\n\n{usage}", file=sys.stderr)
        return 2
    results_dir = None
    if "--results-dir" in rest:
        i = rest.index("--results-dir")
        if i + 1 >= len(rest):
            print("geoml bench: --results-dir needs a directory", file=sys.stderr)
            return 2
        results_dir = rest[i + 1]
        rest = rest[:i] + rest[i + 2 :]
    return run(cmd, rest, results_dir)
