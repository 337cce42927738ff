"""Thin caller of ``geoml.bench.knn`` (the same run as ``geoml bench knn``).

Options: ``python bench/bench_knn.py --help``; what it measures: the docstring of
python/geoml/bench/knn.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("knn", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
