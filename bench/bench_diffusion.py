"""Thin caller of ``geoml.bench.diffusion`` (the same run as ``geoml bench diffusion``).

Options: ``python bench/bench_diffusion.py --help``; what it measures: the docstring of
python/geoml/bench/diffusion.py. JSON goes to bench/results/ unless --out is given.
"""

import sys
from pathlib import Path

from geoml.bench import run

if __name__ == "__main__":
    sys.exit(
        run("diffusion", sys.argv[1:], results_dir=Path(__file__).resolve().parent / "results")
    )
