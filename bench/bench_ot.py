"""Thin caller of ``geoml.bench.ot`` (the same run as ``geoml bench ot``).

Options: ``python bench/bench_ot.py --help``; what it measures: the docstring of
python/geoml/bench/ot.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("ot", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
