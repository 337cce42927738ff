"""Shared bench helpers: timing (warm-up, repeats, median), machine facts, table and JSON.

Every bench script times geoml and the anchor tools on the same data in one process run and
reports ratios: absolute times on shared machines are noise, ratios measured side by side are not.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Where write_json puts <name>.json when no --out is given: $GEOML_BENCH_RESULTS, else
# ./geoml-bench-results; the repository's bench/bench_<family>.py scripts set bench/results.
RESULTS = Path(os.environ.get("GEOML_BENCH_RESULTS") or "geoml-bench-results")


def timeit(fn, *, repeats: int = 3, warmup: int = 1, sync=None):
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed; return (median s, last value).

    ``sync`` (e.g. a device synchronise) is called before each clock read.
    """
    out = None
    for _ in range(warmup):
        out = fn()
        if sync:
            sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def in_child(fn, timeout: float, on_timeout=None):
    """``fn(conn)`` in a forked process: what it sends on ``conn``, or ``on_timeout`` (the
    process killed) when nothing comes within ``timeout`` seconds. For anchors that may run
    far past their limit or hang."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=fn, args=(child,))
    proc.start()
    if parent.poll(timeout):
        out = parent.recv()
        proc.join()
        return out
    proc.kill()
    proc.join()
    return on_timeout


def machine() -> dict:
    """CPU, cores, versions: printed above each table and stored in the JSON."""
    import numpy
    import scipy

    import geoml

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "geoml_threads": geoml._core.max_threads(),
        "simd": geoml._core.simd_isa(),
        "simd_vnni": geoml._core.simd_vnni(),  # the float64 kNN's int16 screen
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "geoml": geoml.__version__,
    }


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows (dicts) as an aligned text table with the given columns."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if (abs(v) < 1e-3 or abs(v) >= 1e4) and v != 0 else f"{v:.4g}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def write_json(name: str, payload: dict, out: str | None = None) -> Path:
    """Write ``payload`` (plus machine facts) to ``out`` or RESULTS/<name>.json."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {path}")
    return path


def clustered(n: int, d: int, *, n_clusters: int = 100, seed: int = 0, dtype="float32"):
    """Clustered data of shape (n, d): Gaussian blobs with random centres and spreads."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_clusters, d))
    spread = rng.uniform(0.5, 1.5, size=n_clusters)
    lab = rng.integers(0, n_clusters, size=n)
    X = centres[lab] + spread[lab, None] * rng.normal(size=(n, d))
    return X.astype(dtype)
