"""Thin caller of ``geoml.bench.lowrank`` (the same run as ``geoml bench lowrank``).

Options: ``python bench/bench_lowrank.py --help``; what it measures: the docstring of
python/geoml/bench/lowrank.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("lowrank", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
