"""Compatibility shim: the harness is ``geoml.bench._harness`` (shipped with the package).

A script in bench/ that still does ``from _harness import ...`` gets the same helpers, writing
its JSON to bench/results/. New bench code goes in python/geoml/bench/<family>.py with a thin
bench/bench_<family>.py caller (CONTRIBUTING.md, step 6).
"""

from pathlib import Path

from geoml.bench import _harness
from geoml.bench._harness import clustered, machine, print_table, timeit, write_json

_harness.RESULTS = Path(__file__).resolve().parent / "results"
RESULTS = _harness.RESULTS

__all__ = ["RESULTS", "clustered", "machine", "print_table", "timeit", "write_json"]
