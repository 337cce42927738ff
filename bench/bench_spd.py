"""Thin caller of ``geoml.bench.spd`` (the same run as ``geoml bench spd``).

Options: ``python bench/bench_spd.py --help``; what it measures: the docstring of
python/geoml/bench/spd.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("spd", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
