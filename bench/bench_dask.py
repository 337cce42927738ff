"""Thin caller of ``geoml.bench.dask`` (the same run as ``geoml bench dask``).

Options: ``python bench/bench_dask.py --help``; what it measures: the docstring of
python/geoml/bench/dask.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("dask", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
