"""Thin caller of ``geoml.bench.eigsh`` (the same run as ``geoml bench eigsh``).

Options: ``python bench/bench_eigsh.py --help``; what it measures: the docstring of
python/geoml/bench/eigsh.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(run("eigsh", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results"))
