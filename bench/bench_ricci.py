"""Thin caller of ``geoml.bench.ricci`` (the same run as ``geoml bench ricci``).

Options: ``python bench/bench_ricci.py --help``; what it measures: the docstring of
python/geoml/bench/ricci.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("ricci", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
