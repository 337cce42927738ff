"""geoml on Dask: 2 worker processes x 1 thread against 1 process x 2 threads (issue 21).

Sections, each timed three ways on the same data in one run:
  "single"   : the single-machine geoml function, n_jobs=2 (one process, two OpenMP threads);
  "threads"  : geoml.dask on the threaded scheduler, 2 threads (one process);
  "cluster"  : geoml.dask on a distributed.LocalCluster of 2 worker processes x 1 thread.
Reported: median time, overhead = cluster / single - 1 (issue's target: <= 25 %), the bytes
the model of docs/design/scale-out.md predicts to move between processes, and the workers'
resident memory (the largest worker's, as last sampled by the scheduler, after the section).
  1. exact kNN graph of clustered data, n x d (issue: 2,000,000 x 64, k=15);
  2. batched small OT: B problems of size s x s, exact and Sinkhorn (issue: 10^6 problems).

Default sizes are small (a smoke run of seconds). The issue's sizes:
  python bench/bench_dask.py --n 2000000 --d 64 --chunk 250000 --B 1000000 --repeats 1
(about an hour on 2 cores: the kNN graph dominates).

Usage: python bench/bench_dask.py [--n N] [--d D] [--k K] [--chunk ROWS] [--B B] [--s S]
                                  [--ot-chunk P] [--repeats R] [--sections 1,2] [--out PATH]
"""

from __future__ import annotations

import argparse
import uuid

import dask
import dask.array as da
import numpy as np

import geoml
import geoml.dask as gdask

from ._harness import clustered, print_table, timeit, write_json


def knn_bytes(n: int, d: int, k: int, chunk: int, itemsize: int) -> float:
    """Model: every data chunk travels to the tasks of every other query chunk (worst case,
    no locality: P (P - 1) chunks of chunk*d), plus P * P candidate lists of chunk*k*(8 + 8)."""
    P = -(-n // chunk)
    return P * (P - 1) * chunk * d * itemsize + P * P * chunk * k * 16


def _fresh(X):
    """X under new task keys: a repeat must not reuse results the scheduler still holds
    (a release is asynchronous; re-requesting the same pure keys at once can hit memory)."""
    return X.map_blocks(np.asarray, name="fresh-" + uuid.uuid4().hex, dtype=X.dtype)


def _worker_memory(client) -> float:
    info = client.scheduler_info()["workers"]
    return max(w["metrics"]["memory"] for w in info.values()) / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--B", type=int, default=20000)
    ap.add_argument("--s", type=int, default=16)
    ap.add_argument("--ot-chunk", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sections", default="1,2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sections = {int(s) for s in args.sections.split(",")}

    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster, set_as_default=False)
    rows = []
    try:
        if 1 in sections:
            X = clustered(args.n, args.d, seed=0)
            Xd = da.from_array(X, chunks=(args.chunk, -1))
            t1, G1 = timeit(lambda: geoml.knn_graph(X, args.k, n_jobs=2), repeats=args.repeats)
            with dask.config.set(scheduler="threads", num_workers=2):
                t2, G2 = timeit(lambda: gdask.knn_graph(_fresh(Xd), args.k), repeats=args.repeats)
            Xc = client.persist(Xd)  # data on the workers, as if read there (e.g. from Zarr)
            with client.as_current():
                t3, G3 = timeit(lambda: gdask.knn_graph(_fresh(Xc), args.k), repeats=args.repeats)
            # rows whose graph row differs (float32 near-ties at the k-th neighbour, where the
            # single-machine score selection may keep a slightly farther point)
            diff = int(max(np.unique((G1 != G).nonzero()[0]).size for G in (G2, G3)))
            rows.append(
                {
                    "section": f"knn_graph {args.n}x{args.d} k={args.k} chunk={args.chunk}",
                    "single_s": t1,
                    "threads_s": t2,
                    "cluster_s": t3,
                    "overhead": t3 / t1 - 1,
                    "model_MiB": knn_bytes(args.n, args.d, args.k, args.chunk, 4) / 2**20,
                    "worker_rss_MiB": _worker_memory(client),
                    "rows_differing": diff,
                }
            )
        if 2 in sections:
            rng = np.random.default_rng(1)
            a = rng.dirichlet(np.ones(args.s), args.B)
            b = rng.dirichlet(np.ones(args.s), args.B)
            C = rng.random((args.B, args.s, args.s))
            A, Bd, Cd = (
                da.from_array(x, chunks=(args.ot_chunk,) + (-1,) * (x.ndim - 1)) for x in (a, b, C)
            )
            for name, single, dist in [
                ("emd_batched", geoml.ot.emd_batched, gdask.emd_batched),
                (
                    "sinkhorn_batched eps=1e-2",
                    lambda *x, **kw: geoml.ot.sinkhorn_batched(*x, 1e-2, **kw),
                    lambda *x, **kw: gdask.sinkhorn_batched(*x, 1e-2, **kw),
                ),
            ]:
                t1, r1 = timeit(lambda: single(a, b, C, n_jobs=2), repeats=args.repeats)
                with dask.config.set(scheduler="threads", num_workers=2):
                    t2, r2 = timeit(lambda: dist(_fresh(A), Bd, Cd), repeats=args.repeats)
                Ac, Bc, Cc = client.persist([A, Bd, Cd])
                with client.as_current():
                    t3, r3 = timeit(lambda: dist(_fresh(Ac), Bc, Cc), repeats=args.repeats)
                rows.append(
                    {
                        "section": f"{name} B={args.B} {args.s}x{args.s}",
                        "single_s": t1,
                        "threads_s": t2,
                        "cluster_s": t3,
                        "overhead": t3 / t1 - 1,
                        "model_MiB": args.B * 8 * 4 / 2**20,  # results back to the client
                        "worker_rss_MiB": _worker_memory(client),
                        "rows_differing": int(max((r1.cost != r.cost).sum() for r in (r2, r3))),
                    }
                )
    finally:
        client.close()
        cluster.close()
    cols = ["section", "single_s", "threads_s", "cluster_s", "overhead", "model_MiB"]
    print_table(rows, cols + ["worker_rss_MiB", "rows_differing"])
    write_json("dask", {"args": vars(args), "rows": rows}, args.out)


if __name__ == "__main__":
    main()
