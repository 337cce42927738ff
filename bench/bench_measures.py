"""Thin caller of ``geoml.bench.measures`` (the same run as ``geoml bench measures``).

Options: ``python bench/bench_measures.py --help``; what it measures: the docstring of
python/geoml/bench/measures.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("measures", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
