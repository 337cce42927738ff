"""Benchmark of geoml.measures against scikit-dimension, dse-dsmi and dense NumPy.

Cases (each times geoml and its anchor on the same data in one run, median of repeats):

* ``id``: intrinsic dimension of clustered data, n = 100,000, d = 64 (float64), k = 20:
  geoml MLE / TwoNN / GRIDE against scikit-dimension 0.5 ``MLE`` (its own scikit-learn
  neighbours, ``n_neighbors=20``), ``TwoNN`` and ``GRIDE``; ratio and relative difference.
  Goal (issue 17): >= 10x faster. MLE and GRIDE also with ``neighbors="sample"`` (the
  exact-neighbour estimate estimated from 5,000 points searched exactly, what
  ``neighbors="auto"`` does from 50,000 points) and ``"nndescent"`` (approximate neighbours
  corrected on 2,000 points searched exactly): time, recall, ``neighbors_stderr`` and the
  actual difference to the exact value (``z_vs_exact`` in standard errors).
  ``--id-methods mle,gride`` leaves out TwoNN (scikit-dimension's TwoNN is the slow one).
* ``id_local``: per-point estimates at n = 200,000, d = 128 (float32), k = 20: the time of
  ``geoml.knn(X, 20)`` and the extra time of the per-point MLE / TwoNN / GRIDE / lPCA from
  that neighbour list; goal: MLE/TwoNN/GRIDE add <= 10 % to the kNN time.
* ``dse``: diffusion spectral entropy of uniform(0, 1, (N, 256)) with sigma = 10, N = 10,000:
  dse-dsmi (dense ``eigvalsh``) vs geoml exact and SLQ; relative error of SLQ. Goal: SLQ
  within 1 % and >= 20x faster than the reference.
* ``dse_slq``: the SLQ mode against dse-dsmi alone at N = 10,000 (as ``dse`` without geoml's
  exact run, which equals the reference): ratio, relative error, probes.
* ``dse_knn_large``: the sparse kNN kernel (``kernel="knn"``, 15 neighbours, approximate
  NN-descent search) at N = 1,000,000 in 256-D, sigma = 10, on ``--dse-data`` (default
  ``clustered``: 100 Gaussian clusters; ``uniform``: the reference's uniform(0, 1, (N, 256)),
  where NN-descent stalls at low recall): time (goal: under 5 minutes on 2 cores), split into
  the kNN kernel and SLQ, probes, standard error, the search's recall. No anchor (the dense
  reference would need an 8 TB matrix; the kNN kernel is a different quantity, see
  docs/design/measures.md).
* ``dse_knn_exact``: the same kernel at N = 10,000 (exact kNN search): SLQ against the
  dense eigenvalues of that kernel (``method="exact"``); goal: within 1 %.
* ``magnitude``: magnitude of n = 10,000 Gaussian points in R^8 at t = 1: geoml
  (``method="auto"``: CG at this size) vs ``numpy.linalg.solve`` on the same similarity
  matrix.
* ``magnitude_cg``: matrix-free CG vs a dense ``numpy.linalg.solve`` at n = 10,000 (uniform
  unit square at t = 30, 100, 300; Gaussian R^3 at t = 1): time ratio, CG iterations,
  residuals, difference of magnitudes and weights. Goal: >= 10x faster, 1e-8 relative.
* ``magnitude_large``: one CG solve at n = 200,000 (unit square, ``--t-large``, default
  200): time, iterations, peak memory (goal: runs in 24 GiB).

Usage: python bench/bench_measures.py [--quick] [--scale S] [--cases id,dse] [--repeats 3]
[--warmup 1] [--out F] (--quick: sizes / 10; --scale: sizes x S). Every anchor is timed as
geoml is: ``--warmup`` untimed calls, then the median of ``--repeats``. Anchors that are not
installed are skipped (``bench`` extra: scikit-dimension, dse-dsmi).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import geoml
from geoml import measures

from ._harness import clustered, machine, print_table, timeit, write_json

CASES = (
    "id",
    "id_local",
    "dse",
    "dse_slq",
    "dse_knn_large",
    "dse_knn_exact",
    "magnitude",
    "magnitude_cg",
    "magnitude_large",
)


def _rel(a, b):
    return abs(a - b) / abs(b)


def bench_id(n, d, repeats, rows, warmup=1, methods=("mle", "twonn", "gride")):
    """Global ID: geoml exact, geoml ``neighbors="nndescent"`` (the exact-neighbour estimate
    estimated, with ``neighbors_stderr``) and scikit-dimension, every one timed the same way
    (``warmup`` untimed calls, then the median of ``repeats``)."""
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
        if method not in methods:
            continue
        t_g, r = timeit(
            lambda: measures.intrinsic_dimension(X, method, **kw), repeats=repeats, warmup=warmup
        )
        row = {"case": f"id {method} n={n} d={d}", "geoml_s": t_g, "geoml": r.dimension}
        t_r = None
        if skdim is not None:
            t_r, v = timeit(ref, repeats=repeats, warmup=warmup)
            row.update(
                anchor="skdim",
                anchor_s=t_r,
                anchor_value=v,
                speedup=t_r / t_g,
                rel_diff=_rel(r.dimension, v),
            )
        rows.append(row)
        print(row, flush=True)
        if method not in ("mle", "gride"):
            continue
        for mode in ("sample", "nndescent"):  # kNN-bound: the large-n paths
            t_a, ra = timeit(
                lambda m=method, kw=kw, mode=mode: measures.intrinsic_dimension(
                    X, m, neighbors=mode, random_state=0, **kw
                ),
                repeats=repeats,
                warmup=warmup,
            )
            err = ra.dimension - r.dimension
            arow = {
                "case": f"id {method} n={n} d={d}, neighbors={mode!r}",
                "geoml_s": t_a,
                "geoml": ra.dimension,
                "neighbors_stderr": ra.neighbors_stderr,
                "rel_diff_vs_exact": abs(err) / abs(r.dimension),
                "z_vs_exact": err / ra.neighbors_stderr if ra.neighbors_stderr > 0 else None,
                "uncorrected_rel_diff": _rel(ra.uncorrected, r.dimension),
                "recall": ra.recall_.estimate,
                "n_checked": ra.n_checked,
            }
            if t_r is not None:
                arow.update(anchor="skdim", anchor_s=t_r, speedup=t_r / t_a)
            rows.append(arow)
            print(arow, flush=True)


def bench_id_local(n, d, repeats, rows, warmup=1):
    X = clustered(n, d, seed=1)
    t_knn, nb = timeit(lambda: geoml.knn(X, 20), repeats=repeats, warmup=warmup)
    rows.append({"case": f"knn n={n} d={d} k=20", "geoml_s": t_knn})
    for method in ("mle", "twonn", "gride", "lpca"):
        t, _ = timeit(
            lambda m=method: measures.intrinsic_dimension(X, m, local=True, k=20, neighbors=nb),
            repeats=repeats,
            warmup=warmup,
        )
        row = {"case": f"local {method} (from kNN)", "geoml_s": t, "overhead": t / t_knn}
        rows.append(row)
        print(row, flush=True)


def bench_dse(N, repeats, rows, warmup=1):
    X = np.random.default_rng(0).uniform(0, 1, (N, 256))
    t_s, s = timeit(
        lambda: measures.diffusion_spectral_entropy(X, method="slq", random_state=0),
        repeats=repeats,
        warmup=warmup,
    )
    t_e, e = timeit(
        lambda: measures.diffusion_spectral_entropy(X, method="exact"),
        repeats=repeats,
        warmup=warmup,
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
        t_r, v = timeit(lambda: ref(X, max_N=None), repeats=repeats, warmup=warmup)
        row.update(
            anchor="dse-dsmi",
            anchor_s=t_r,
            anchor_value=v,
            speedup=t_r / t_s,
            exact_rel_diff=_rel(e.value, v),
        )
    rows.append(row)
    print(row, flush=True)


def bench_magnitude(n, repeats, rows, warmup=1):
    X = np.random.default_rng(0).normal(size=(n, 8))
    t_g, m = timeit(lambda: measures.magnitude(X, 1.0), repeats=repeats, warmup=warmup)

    def dense():
        from scipy.spatial.distance import cdist

        return np.linalg.solve(np.exp(-cdist(X, X)), np.ones(n)).sum()

    t_r, v = timeit(dense, repeats=repeats, warmup=warmup)
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


def bench_dse_slq(N, repeats, rows, warmup=1):
    """SLQ against the dense reference alone (dse-dsmi's ``eigvalsh``; geoml's exact mode
    equals it to 1e-15, so it is not run again), both timed the same way: time ratio,
    relative error, probes and the standard error."""
    from dse_dsmi import diffusion_spectral_entropy as ref

    X = np.random.default_rng(0).uniform(0, 1, (N, 256))
    t_r, v = timeit(lambda: ref(X, max_N=None), repeats=repeats, warmup=warmup)
    t_s, s = timeit(
        lambda: measures.diffusion_spectral_entropy(X, method="slq", random_state=0),
        repeats=repeats,
        warmup=warmup,
    )
    row = {
        "case": f"dse slq N={N} (vs dse-dsmi)",
        "geoml_s": t_s,
        "geoml": s.value,
        "stderr": s.stderr,
        "n_probes": s.n_probes,
        "converged": s.converged,
        "anchor": "dse-dsmi",
        "anchor_s": t_r,
        "anchor_value": v,
        "speedup": t_r / t_s,
        "rel_err": _rel(s.value, v),
    }
    rows.append(row)
    print(row, flush=True)


def _dse_data(N, data):
    """The DSE inputs: the reference's uniform(0, 1, (N, 256)) (a worst case for the kNN
    search: no structure, NN-descent stalls at low recall), or 100 Gaussian clusters in
    256-D (``_harness.clustered``, float64), a stand-in for representations with structure."""
    if data == "uniform":
        return np.random.default_rng(0).uniform(0, 1, (N, 256))
    return clustered(N, 256, seed=0, dtype="float64")


def _timed_knn_kernel():
    """Wraps ``_dse._knn_kernel`` to record its time (the kNN search and the sparse kernel)
    inside one DSE call; returns (restore, times)."""
    from geoml.measures import _dse

    real, times = _dse._knn_kernel, []

    def timed(*a, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        out = real(*a, **kw)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        return out

    _dse._knn_kernel = timed

    def restore():
        _dse._knn_kernel = real

    return restore, times


def bench_dse_knn_large(N, rows, data="clustered"):
    """One cold run of the sparse kNN-kernel DSE (SLQ) at N points of ``data``; the time split
    into the kNN kernel (search + sparse matrix) and the SLQ part; the search's recall."""
    X = _dse_data(N, data)
    restore, times = _timed_knn_kernel()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        s = measures.diffusion_spectral_entropy(X, method="slq", kernel="knn", random_state=0)
        t_s, c_s = time.perf_counter() - t0, time.process_time() - c0
    finally:
        restore()
    row = {
        "case": f"dse knn kernel slq N={N} {data}",
        "geoml_s": t_s,
        "knn_kernel_s": times[0][0],
        "slq_s": t_s - times[0][0],
        # CPU seconds of the process (all threads): on a loaded machine the wall time is
        # mostly waiting for a core; CPU time is what the work costs
        "cpu_s": c_s,
        "knn_kernel_cpu_s": times[0][1],
        "geoml": s.value,
        "stderr": s.stderr,
        "n_probes": s.n_probes,
        "converged": s.converged,
        "recall": s.recall_.estimate,
        "recall_reached": s.recall_.reached,
    }
    rows.append(row)
    print(row, flush=True)


def bench_dse_knn_exact(N, rows, data="clustered"):
    """SLQ against the dense eigenvalues of the same sparse kNN kernel (``method="exact"``,
    O(N^3)) at N = 10,000 (exact kNN search below 20,000 points): relative error (goal
    1 %), standard error, both times (one cold call each)."""
    X = _dse_data(N, data)
    t0 = time.perf_counter()
    s = measures.diffusion_spectral_entropy(X, method="slq", kernel="knn", random_state=0)
    t_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    e = measures.diffusion_spectral_entropy(X, method="exact", kernel="knn")
    t_e = time.perf_counter() - t0
    row = {
        "case": f"dse knn kernel slq vs exact N={N} {data}",
        "geoml_s": t_s,
        "geoml": s.value,
        "stderr": s.stderr,
        "exact_s": t_e,
        "exact": e.value,
        "rel_err": _rel(s.value, e.value),
        "z": (s.value - e.value) / s.stderr,
        "converged": s.converged,
    }
    rows.append(row)
    print(row, flush=True)


def _uniform_square(n, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 2))


def bench_magnitude_cg(n, repeats, rows, warmup=1):
    """Matrix-free CG (Vecchia-preconditioned) against a dense ``numpy.linalg.solve`` on the
    same similarity matrix, on uniform points in the unit square (t = 30, 100, 300: t times
    the point spacing 0.3-3 at n = 10,000) and Gaussian points in R^3 (t = 1); iterations,
    relative difference of the magnitudes and of the weights."""
    from scipy.spatial.distance import cdist

    for name, X, ts in (
        ("uniform square", _uniform_square(n), (30.0, 100.0, 300.0)),
        ("gaussian R^3", np.random.default_rng(1).normal(size=(n, 3)), (1.0,)),
    ):
        D = cdist(X, X)
        for t in ts:

            def dense(t=t):
                return np.linalg.solve(np.exp(-t * cdist(X, X)), np.ones(n))

            t_r, w_ref = timeit(dense, repeats=repeats, warmup=warmup)
            t_g, r = timeit(
                lambda t=t: measures.weighting_vector(X, t, method="cg", return_info=True),
                repeats=repeats,
                warmup=warmup,
            )
            w = r.weights
            row = {
                "case": f"magnitude cg {name} n={n} t={t:g}",
                "geoml_s": t_g,
                "geoml": float(w.sum()),
                "n_iter": int(r.n_iter[0]),
                "residual": float(r.residual[0]),
                "converged": r.converged,
                "anchor": "np.solve",
                "anchor_s": t_r,
                "anchor_value": float(w_ref.sum()),
                "speedup": t_r / t_g,
                "rel_diff": _rel(float(w.sum()), float(w_ref.sum())),
                "weights_rel_diff": float(np.abs(w - w_ref).max() / np.abs(w_ref).max()),
                "anchor_residual": float(np.linalg.norm(1 - np.exp(-t * D) @ w_ref) / np.sqrt(n)),
            }
            rows.append(row)
            print(row, flush=True)
        del D


def bench_magnitude_large(n, t, rows):
    """One matrix-free CG solve at n points of the unit square (no n x n matrix): time,
    iterations, residual and the peak resident memory of the process."""
    import resource

    X = _uniform_square(n, seed=2)
    t0 = time.perf_counter()
    r = measures.magnitude(X, t, method="cg", return_info=True)
    el = time.perf_counter() - t0
    row = {
        "case": f"magnitude cg uniform square n={n} t={t:g}",
        "geoml_s": el,
        "geoml": r.value,
        "n_iter": int(r.n_iter[0]),
        "residual": float(r.residual[0]),
        "converged": r.converged,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    rows.append(row)
    print(row, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes / 10 (a smoke run)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--warmup", type=int, default=1, help="untimed calls before the repeats (every side)"
    )
    ap.add_argument(
        "--t-large", type=float, default=200.0, help="scale of the magnitude_large case"
    )
    ap.add_argument("--id-methods", default="mle,twonn,gride", help="estimators of the id case")
    ap.add_argument(
        "--dse-data",
        default="clustered",
        help="data of the dse_knn_* cases: clustered (100 Gaussian clusters in 256-D) and/or "
        "uniform (the reference's uniform(0, 1, (N, 256)): a worst case for the kNN search)",
    )
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/measures.json)")
    args = ap.parse_args(argv)
    f = (10 if args.quick else 1) / args.scale
    rows: list[dict] = []
    print(machine())
    t0 = time.perf_counter()
    for case in args.cases.split(","):
        if case == "id":
            bench_id(
                int(100_000 / f),
                64,
                args.repeats,
                rows,
                args.warmup,
                tuple(args.id_methods.split(",")),
            )
        elif case == "id_local":
            bench_id_local(int(200_000 / f), 128, args.repeats, rows, args.warmup)
        elif case == "dse":
            bench_dse(int(10_000 / f), args.repeats, rows, args.warmup)
        elif case == "magnitude":
            bench_magnitude(int(10_000 / f), args.repeats, rows, args.warmup)
        elif case == "dse_slq":
            bench_dse_slq(int(10_000 / f), args.repeats, rows, args.warmup)
        elif case == "dse_knn_large":
            for data in args.dse_data.split(","):
                bench_dse_knn_large(int(1_000_000 / f), rows, data)
        elif case == "dse_knn_exact":
            for data in args.dse_data.split(","):
                bench_dse_knn_exact(int(10_000 / f), rows, data)
        elif case == "magnitude_cg":
            bench_magnitude_cg(int(10_000 / f), args.repeats, rows, args.warmup)
        elif case == "magnitude_large":
            bench_magnitude_large(int(200_000 / f), args.t_large, rows)
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
        "rel_diff_vs_exact",
        "neighbors_stderr",
        "z_vs_exact",
        "recall",
        "rel_err",
        "stderr",
        "speedup_vs_exact",
        "n_iter",
        "residual",
        "weights_rel_diff",
        "knn_kernel_s",
        "slq_s",
        "peak_rss_gib",
    ]
    print_table(rows, cols)
    print(f"total {time.perf_counter() - t0:.1f} s")
    write_json("measures", {"rows": rows, "args": vars(args)}, args.out)


if __name__ == "__main__":
    main()
