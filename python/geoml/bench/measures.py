"""Benchmark of geoml.measures against scikit-dimension, dse-dsmi and dense NumPy.

Cases (each times geoml and its anchor on the same data in one run, median of repeats):

* ``id``: intrinsic dimension of clustered data, n = 100,000, d = 64 (float64), k = 20:
  geoml MLE / TwoNN / GRIDE against scikit-dimension 0.5 ``MLE`` (its own scikit-learn
  neighbours, ``n_neighbors=20``), ``TwoNN`` and ``GRIDE``; ratio and relative difference.
  Goal (issue 17): >= 10x faster.
* ``id_local``: per-point estimates at n = 200,000, d = 128 (float32), k = 20: the time of
  ``geoml.knn(X, 20)`` and the extra time of the per-point MLE / TwoNN / GRIDE / lPCA from
  that neighbour list; goal: MLE/TwoNN/GRIDE add <= 10 % to the kNN time.
* ``dse``: diffusion spectral entropy of uniform(0, 1, (N, 256)) with sigma = 10, N = 10,000:
  dse-dsmi (dense ``eigvalsh``) vs geoml exact and SLQ; relative error of SLQ. Goal: SLQ
  within 1 % and >= 20x faster than the reference.
* ``magnitude``: magnitude of n = 10,000 Gaussian points in R^8 at t = 1: geoml (Cholesky)
  vs ``numpy.linalg.solve`` on the same similarity matrix.

Usage: python bench/bench_measures.py [--quick] [--scale S] [--cases id,dse] [--repeats 3]
[--out F] (--quick: sizes / 10; --scale: sizes x S). Anchors that are not installed are
skipped (``bench`` extra: scikit-dimension, dse-dsmi).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import geoml
from geoml import measures

from ._harness import clustered, machine, print_table, timeit, write_json

CASES = ("id", "id_local", "dse", "magnitude")


def _rel(a, b):
    return abs(a - b) / abs(b)


def bench_id(n, d, repeats, rows):
    X = clustered(n, d, seed=0, dtype="float64")  # skdim computes in float64
    try:
        import skdim
    except ImportError:
        skdim = None
    for method, kw, ref in (
        ("mle", {"k": 20}, lambda: skdim.id.MLE().fit(X, n_neighbors=20).dimension_),
        ("twonn", {}, lambda: skdim.id.TwoNN().fit(X).dimension_),
        ("gride", {}, lambda: skdim.id.GRIDE().fit(X).dimension_),
    ):
        t_g, r = timeit(lambda: measures.intrinsic_dimension(X, method, **kw), repeats=repeats)
        row = {"case": f"id {method} n={n} d={d}", "geoml_s": t_g, "geoml": r.dimension}
        if skdim is not None:
            t_r, v = timeit(ref, repeats=1, warmup=0)
            row.update(
                anchor="skdim",
                anchor_s=t_r,
                anchor_value=v,
                speedup=t_r / t_g,
                rel_diff=_rel(r.dimension, v),
            )
        rows.append(row)
        print(row, flush=True)


def bench_id_local(n, d, repeats, rows):
    X = clustered(n, d, seed=1)
    t_knn, nb = timeit(lambda: geoml.knn(X, 20), repeats=repeats)
    rows.append({"case": f"knn n={n} d={d} k=20", "geoml_s": t_knn})
    for method in ("mle", "twonn", "gride", "lpca"):
        t, _ = timeit(
            lambda m=method: measures.intrinsic_dimension(X, m, local=True, k=20, neighbors=nb),
            repeats=repeats,
        )
        row = {"case": f"local {method} (from kNN)", "geoml_s": t, "overhead": t / t_knn}
        rows.append(row)
        print(row, flush=True)


def bench_dse(N, repeats, rows):
    X = np.random.default_rng(0).uniform(0, 1, (N, 256))
    t_s, s = timeit(
        lambda: measures.diffusion_spectral_entropy(X, method="slq", random_state=0),
        repeats=repeats,
    )
    t_e, e = timeit(
        lambda: measures.diffusion_spectral_entropy(X, method="exact"), repeats=1, warmup=0
    )
    rows.append({"case": f"dse exact N={N}", "geoml_s": t_e, "geoml": e.value})
    row = {
        "case": f"dse slq N={N}",
        "geoml_s": t_s,
        "geoml": s.value,
        "stderr": s.stderr,
        "rel_err": _rel(s.value, e.value),
        "speedup_vs_exact": t_e / t_s,
    }
    try:
        from dse_dsmi import diffusion_spectral_entropy as ref
    except ImportError:
        ref = None
    if ref is not None:
        t_r, v = timeit(lambda: ref(X, max_N=None), repeats=1, warmup=0)
        row.update(
            anchor="dse-dsmi",
            anchor_s=t_r,
            anchor_value=v,
            speedup=t_r / t_s,
            exact_rel_diff=_rel(e.value, v),
        )
    rows.append(row)
    print(row, flush=True)


def bench_magnitude(n, repeats, rows):
    X = np.random.default_rng(0).normal(size=(n, 8))
    t_g, m = timeit(lambda: measures.magnitude(X, 1.0), repeats=repeats)

    def dense():
        from scipy.spatial.distance import cdist

        return np.linalg.solve(np.exp(-cdist(X, X)), np.ones(n)).sum()

    t_r, v = timeit(dense, repeats=1, warmup=0)
    row = {
        "case": f"magnitude n={n} t=1",
        "geoml_s": t_g,
        "geoml": m,
        "anchor": "np.solve",
        "anchor_s": t_r,
        "speedup": t_r / t_g,
        "rel_diff": _rel(m, v),
    }
    rows.append(row)
    print(row, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes / 10 (a smoke run)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/measures.json)")
    args = ap.parse_args(argv)
    f = (10 if args.quick else 1) / args.scale
    rows: list[dict] = []
    print(machine())
    t0 = time.perf_counter()
    for case in args.cases.split(","):
        if case == "id":
            bench_id(int(100_000 / f), 64, args.repeats, rows)
        elif case == "id_local":
            bench_id_local(int(200_000 / f), 128, args.repeats, rows)
        elif case == "dse":
            bench_dse(int(10_000 / f), args.repeats, rows)
        elif case == "magnitude":
            bench_magnitude(int(10_000 / f), args.repeats, rows)
        else:
            raise SystemExit(f"unknown case {case!r}; choose from {CASES}")
    cols = [
        "case",
        "geoml_s",
        "anchor",
        "anchor_s",
        "speedup",
        "overhead",
        "rel_diff",
        "rel_err",
        "stderr",
        "speedup_vs_exact",
    ]
    print_table(rows, cols)
    print(f"total {time.perf_counter() - t0:.1f} s")
    write_json("measures", {"rows": rows, "args": vars(args)}, args.out)


if __name__ == "__main__":
    main()
