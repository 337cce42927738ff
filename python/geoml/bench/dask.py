"""geoml on Dask: 2 worker processes x 1 thread against 1 process x 2 threads (issue 21).

Sections, each timed on the same data in one run:
  "single"   : the single-machine geoml function, n_jobs=2 (one process, two OpenMP threads);
  "threads"  : geoml.dask on the threaded scheduler, 2 threads (one process; sections 1-3);
  "cluster"  : geoml.dask on a distributed.LocalCluster of 2 worker processes x 1 thread.
Reported: median time, overhead = cluster / single - 1 (issue's target: <= 25 %), the bytes
moved between the worker processes per call ("moved": the sum of the workers'
transfer_incoming_log, i.e. worker-to-worker fetches) against the cost model of
docs/design/scale-out.md ("model"), the bytes the workers sent in all, results gathered by the
client included ("sent_with_results": transfer_outgoing_bytes_total), and the peak resident
memory of the largest worker (ru_maxrss; a fresh cluster for each section).
  1. "exact"  : exact kNN graph of clustered float32 data, --n-exact x --d; on the cluster
                with the ring schedule (model: gdask._ring_moves for where the chunks are)
                and with Dask's own placement (schedule="dask"; model: knn_bytes);
  2. "approx" : approximate kNN graph (geoml.dask method="nndescent" against geoml.knn_graph
                method="nndescent"), --n x --d, with the measured recall of both
                (issue: 2,000,000 x 64, k=15);
  3. "ot"     : --B small OT problems of --s x --s points in 2-D: exact and Sinkhorn from
                costs, and from point clouds (costs computed in the tasks) (issue: 10^6);
  4. "orc"    : Ollivier-Ricci curvature of the union 10-NN graph of --orc-n clustered 3-D
                points (1,750,000 points: 10.1M edges; issue: 10^7 edges).

Default sizes are small (a smoke run of about a minute). The issue's sizes (one repeat):
  python bench/bench_dask.py --n 2000000 --B 1000000 --orc-n 1750000 --repeats 1 \
      --warmup 0 --sections approx,ot,orc --out bench/results/dask_full.json
and the exact kNN section at a size that runs in minutes (exact 2,000,000 x 64 takes about
30 min single-machine; it is what "approx" replaces):
  python bench/bench_dask.py --n-exact 200000 --repeats 1 --sections exact

Usage: python bench/bench_dask.py [--n N] [--n-exact N] [--d D] [--k K] [--chunk ROWS]
          [--partition-size P] [--overlap O] [--B B] [--s S] [--ot-chunk P] [--orc-n N]
          [--edge-chunk E] [--repeats R] [--sections exact,approx,ot,orc] [--out PATH]
"""

from __future__ import annotations

import argparse
import resource
import uuid
import warnings

import dask
import dask.array as da
import numpy as np

import geoml
import geoml.dask as gdask

from ._harness import clustered, print_table, timeit, write_json

SECTIONS = ("exact", "approx", "ot", "orc")
W = 2  # worker processes


def knn_bytes(n: int, d: int, k: int, chunk: int, itemsize: int, workers: int = W) -> float:
    """Model, exact kNN with Dask's placement (schedule="dask"; the ring schedule's model is
    gdask._ring_moves) (one task per unordered chunk pair, data spread evenly over the
    workers): every chunk is copied once to every other worker that runs a task needing it
    (all of them once there are more pairs than workers), (W - 1) n d itemsize; each chunk
    receives P candidate lists (one per chunk, n k (8 + 8) bytes in all per list set), a
    fraction (W - 1) / W of them made on another worker than the merge's."""
    P = -(-n // chunk)
    return (workers - 1) * n * d * itemsize + (workers - 1) / workers * P * n * k * 16


def approx_bytes(
    n: int, d: int, k: int, memberships: int, itemsize: int, workers: int = W
) -> float:
    """Model, approximate kNN: the shuffle sends every point to its one or two lists of the
    top split (``memberships`` in all: rows and int64 row numbers), the parts' lists go back
    to the rows' chunks (an int64 row number, then per candidate an int64 index, a float64
    distance and a score of itemsize), each a fraction (W - 1) / W across workers; the
    k-means sample and the checked points' rows (a few MiB) are gathered by the client."""
    f = (workers - 1) / workers
    return f * memberships * (d * itemsize + 8) + f * memberships * (8 + k * (16 + itemsize))


def ot_bytes(B: int, m: int, n: int, d: int, points: bool, workers: int = W) -> float:
    """Model, batched OT: a task runs where its largest input chunk is (C, or the clouds x);
    the other inputs' chunks (a, b; or y, a, b), persisted independently, are on another
    worker with probability (W - 1) / W; results go to the client (not counted)."""
    other = n * d + m + n if points else m + n
    return (workers - 1) / workers * B * other * 8


def orc_bytes(n: int, nnz: int, m: int, workers: int = W) -> float:
    """Model, ORC: the CSR structure (indptr int64, indices int32/64), the edge list (two
    int64 per edge) and the lengths (float64 per entry) sent from the client to every
    worker once; nothing between workers (each task reads its edges' neighbourhoods)."""
    return workers * (8 * (n + 1) + 8 * nnz + 16 * m + 8 * nnz)


def _fresh(X):
    """X under new task keys: a repeat must not reuse results the scheduler still holds."""
    return X.map_blocks(np.asarray, name="fresh-" + uuid.uuid4().hex, dtype=X.dtype)


def _moved(client) -> tuple[int, int]:
    """(bytes the workers received from each other, bytes the workers sent in all, to each
    other and to the client's gathers) so far, all workers together: the sum of the workers'
    transfer_incoming_log (worker-to-worker fetches only) and transfer_outgoing_bytes_total."""

    def counts(dask_worker):
        incoming = sum(e["total"] for e in dask_worker.transfer_incoming_log)
        return incoming, dask_worker.transfer_outgoing_bytes_total

    out = client.run(counts)
    return tuple(int(sum(v[i] for v in out.values())) for i in (0, 1))


def _peak_rss(client) -> float:
    """Largest worker's peak resident memory since its start, MiB."""
    peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return max(peak.values()) / 1024


def _on_cluster(client, fn, args):
    """(median s, last value, bytes moved per call) of fn on the cluster."""
    before = _moved(client)
    with client.as_current():
        t, out = timeit(fn, repeats=args.repeats, warmup=args.warmup)
    after = _moved(client)
    calls = args.repeats + args.warmup
    return t, out, [(a - b) / calls for a, b in zip(after, before, strict=True)]


def _row(section, t1, t2, t3, moved, model, client, **extra):
    return {
        "section": section,
        "single_s": t1,
        "threads_s": t2,
        "cluster_s": t3,
        "overhead": t3 / t1 - 1,
        "moved_MiB": moved[0] / 2**20,
        "model_MiB": model / 2**20,
        "sent_with_results_MiB": moved[1] / 2**20,
        "worker_peak_MiB": _peak_rss(client),
        **extra,
    }


def section_exact(args, client):
    X = clustered(args.n_exact, args.d, seed=0)
    Xd = da.from_array(X, chunks=(args.chunk_exact, -1))
    t1, G1 = timeit(
        lambda: geoml.knn_graph(X, args.k, n_jobs=2), repeats=args.repeats, warmup=args.warmup
    )
    with dask.config.set(scheduler="threads", num_workers=2):
        t2, G2 = timeit(
            lambda: gdask.knn_graph(_fresh(Xd), args.k), repeats=args.repeats, warmup=args.warmup
        )
    from distributed import wait

    Xc = client.persist(Xd)  # data on the workers, as if read there (e.g. from Zarr)
    with client.as_current():
        wait(Xc)

    def placed():  # the same chunks under new keys, each made where its chunk already is
        Xf = client.persist(_fresh(Xc))
        wait(Xf)
        return Xf

    # ring schedule (the default on a client) and Dask's own placement
    t3, G3, moved = _on_cluster(
        client, lambda: gdask.knn_graph(placed(), args.k, schedule="ring"), args
    )
    t4, G4, moved4 = _on_cluster(
        client, lambda: gdask.knn_graph(placed(), args.k, schedule="dask"), args
    )
    # rows whose graph row differs (float32 near-ties at the k-th neighbour)
    diff = int(max(np.unique((G1 != G).nonzero()[0]).size for G in (G2, G3, G4)))
    # the ring plan's prediction for where the chunks are (gdask._ring_moves)
    _, homes, _ = gdask._ring_homes(client, list(Xc.to_delayed().ravel()))
    plan = gdask._ring_plan(homes, W)
    parts = gdask._ring_moves(homes, plan, list(Xc.chunks[0]), args.d, 4, args.k)
    model = sum(parts.values())
    name = f"exact knn_graph {args.n_exact}x{args.d} k={args.k} chunk={args.chunk_exact}"
    return _row(
        name,
        t1,
        t2,
        t3,
        moved,
        model,
        client,
        rows_differing=diff,
        model_parts_MiB={k: v / 2**20 for k, v in parts.items()},
        dask_placement_s=t4,
        dask_placement_overhead=t4 / t1 - 1,
        dask_placement_moved_MiB=moved4[0] / 2**20,
        dask_placement_model_MiB=knn_bytes(args.n_exact, args.d, args.k, args.chunk_exact, 4)
        / 2**20,
    )


def section_approx(args, client):
    X = clustered(args.n, args.d, seed=0)
    Xd = da.from_array(X, chunks=(args.chunk, -1))
    kw = {"method": "nndescent", "random_state": 0}
    dkw = {**kw, "partition_size": args.partition_size, "overlap": args.overlap}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the recall is reported
        t1, G1 = timeit(
            lambda: geoml.knn_graph(X, args.k, n_jobs=2, **kw),
            repeats=args.repeats,
            warmup=args.warmup,
        )
        with dask.config.set(scheduler="threads", num_workers=2):
            t2, G2 = timeit(
                lambda: gdask.knn_graph(_fresh(Xd), args.k, **dkw),
                repeats=args.repeats,
                warmup=args.warmup,
            )
        Xc = client.persist(Xd)
        t3, G3, moved = _on_cluster(
            client, lambda: gdask.knn_graph(_fresh(Xc), args.k, **dkw), args
        )
    same = bool((G2 != G3).nnz == 0)  # same random_state: same graph on either scheduler
    model = approx_bytes(args.n, args.d, args.k, G3.partition_["memberships"], 4)
    name = (
        f"approx knn_graph {args.n}x{args.d} k={args.k} chunk={args.chunk} "
        f"lists={args.partition_size or 8192} overlap={args.overlap}"
    )
    return _row(
        name,
        t1,
        t2,
        t3,
        moved,
        model,
        client,
        recall_single=G1.recall_.estimate,
        recall_dask=G3.recall_.estimate,
        recall_dask_interval=[G3.recall_.low, G3.recall_.high],
        same_graph_threads_cluster=same,
        partition=G3.partition_,
        rows_differing_from_single=int(np.unique((G1 != G3).nonzero()[0]).size),
    )


def section_ot(args, client):
    rows = []
    rng = np.random.default_rng(1)
    B, s = args.B, args.s
    x = rng.normal(size=(B, s, 2))
    y = rng.normal(size=(B, s, 2)) + 0.3
    a = rng.dirichlet(np.ones(s), B)
    b = rng.dirichlet(np.ones(s), B)
    C = gdask.point_cloud_costs(x, y)
    ch = args.ot_chunk
    A, Bd, Cd, Xd, Yd = (
        da.from_array(v, chunks=(ch,) + (-1,) * (v.ndim - 1)) for v in (a, b, C, x, y)
    )
    eps = 0.5
    cases = [
        (
            "emd_batched",
            lambda: geoml.ot.emd_batched(a, b, C, n_jobs=2),
            lambda A, Bd, Cd, Xd, Yd: gdask.emd_batched(_fresh(A), Bd, Cd),
        ),
        (
            f"sinkhorn_batched eps={eps:g}",
            lambda: geoml.ot.sinkhorn_batched(a, b, C, eps, n_jobs=2),
            lambda A, Bd, Cd, Xd, Yd: gdask.sinkhorn_batched(_fresh(A), Bd, Cd, eps),
        ),
        (
            "emd_batched_points",
            lambda: geoml.ot.emd_batched(a, b, gdask.point_cloud_costs(x, y), n_jobs=2),
            lambda A, Bd, Cd, Xd, Yd: gdask.emd_batched_points(_fresh(Xd), Yd, a=A, b=Bd),
        ),
    ]
    Ac, Bc, Cc, Xc, Yc = client.persist([A, Bd, Cd, Xd, Yd])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, single, dist in cases:
            model = ot_bytes(B, s, s, 2, "points" in name)
            t1, r1 = timeit(single, repeats=args.repeats, warmup=args.warmup)
            with dask.config.set(scheduler="threads", num_workers=2):
                t2, r2 = timeit(
                    lambda: dist(A, Bd, Cd, Xd, Yd), repeats=args.repeats, warmup=args.warmup
                )
            t3, r3, moved = _on_cluster(client, lambda: dist(Ac, Bc, Cc, Xc, Yc), args)
            rows.append(
                _row(
                    f"{name} B={B} {s}x{s}",
                    t1,
                    t2,
                    t3,
                    moved,
                    model,
                    client,
                    differing=int(max((r1.cost != r.cost).sum() for r in (r2, r3))),
                )
            )
    return rows


def orc_graph(n: int, k: int = 10):
    """Union k-NN graph (unweighted CSR) of n clustered 3-D points (scipy's cKDTree)."""
    import scipy.sparse as sps
    from scipy.spatial import cKDTree

    X = clustered(n, 3, seed=0).astype(np.float64)
    _, idx = cKDTree(X).query(X, k=k + 1, workers=-1)
    r = np.repeat(np.arange(n, dtype=np.int64), k)
    A = sps.coo_matrix((np.ones(n * k), (r, idx[:, 1:].ravel())), shape=(n, n)).tocsr()
    A = (A + A.T).tocsr()
    A.data[:] = 1.0
    return A


def section_orc(args, client):
    A = orc_graph(args.orc_n)
    m = A.nnz // 2
    t1, k1 = timeit(
        lambda: geoml.OllivierRicci(n_jobs=2).fit(A).curvature_,
        repeats=args.repeats,
        warmup=args.warmup,
    )
    t3, k3, moved = _on_cluster(
        client, lambda: gdask.ollivier_ricci(A, edge_chunk=args.edge_chunk), args
    )
    return _row(
        f"ollivier_ricci {m} edges edge_chunk={args.edge_chunk or 'auto'}",
        t1,
        float("nan"),
        t3,
        moved,
        0.0,
        client,
        client_to_workers_model_MiB=orc_bytes(A.shape[0], A.nnz, m) / 2**20,
        differing=int((k1 != k3).sum()),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000, help="points, approximate kNN")
    ap.add_argument("--n-exact", type=int, default=20_000, help="points, exact kNN")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--chunk", type=int, default=None, help="rows per chunk (approx: n / 8)")
    ap.add_argument("--chunk-exact", type=int, default=None, help="exact: n / 4 by default")
    ap.add_argument(
        "--partition-size", type=int, default=None, help="approx: points per list (8192)"
    )
    ap.add_argument("--overlap", type=float, default=1.05, help="approx: d2 <= overlap d1")
    ap.add_argument("--B", type=int, default=20_000)
    ap.add_argument("--s", type=int, default=8)
    ap.add_argument("--ot-chunk", type=int, default=None, help="problems per task (B / 8)")
    ap.add_argument("--orc-n", type=int, default=50_000)
    ap.add_argument("--edge-chunk", type=int, default=None, help="edges per task (default: auto)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls before the repeats")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    args.chunk = args.chunk or -(-args.n // 8)
    args.chunk_exact = args.chunk_exact or -(-args.n_exact // 4)
    args.ot_chunk = args.ot_chunk or -(-args.B // 8)
    sections = args.sections.split(",")
    for s in sections:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; choose from {','.join(SECTIONS)}")

    from distributed import Client, LocalCluster

    rows = []
    for s in SECTIONS:
        if s not in sections:
            continue
        # a fresh cluster per section: per-section peak memory, no data left over
        cluster = LocalCluster(
            n_workers=W, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster, set_as_default=False)
        try:
            out = globals()[f"section_{s}"](args, client)
        finally:
            client.close()
            cluster.close()
        out = out if isinstance(out, list) else [out]
        rows += out
        print_table(out, list(out[0]))
    cols = ["section", "single_s", "threads_s", "cluster_s", "overhead", "moved_MiB"]
    print_table(rows, cols + ["model_MiB", "worker_peak_MiB"])
    default = "dask" if sections == list(SECTIONS) else "dask_" + "_".join(sections)
    write_json(default, {"args": vars(args), "rows": rows}, args.out)


if __name__ == "__main__":
    main()
