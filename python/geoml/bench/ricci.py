"""Ollivier-Ricci curvature: geoml vs GraphRicciCurvature ("OTD"), plus geoml alone at scale.

One process run: (1) the symmetrised 10-NN graph of 10,000 clustered 3-D points (~62k edges)
and (2) a Barabasi-Albert graph BA(5000, 4) (~20k edges), both with geoml and with
GraphRicciCurvature (method "OTD", proc = number of cores); (3) geoml alone on the 10-NN graph
of 200,000 points (~1.2M edges; GraphRicciCurvature's all-pairs matrix would need 320 GB);
(4) 10 Ricci-flow iterations on graph (1); (5) a weighted graph: the union 10-NN graph of
`--n-weighted` clustered 16-D points with distance weights (10,000: ~72k edges), geoml and
GraphRicciCurvature; (6) a directed graph: each of `--n-directed` clustered 16-D points to its
10 nearest neighbours, distance weights (GraphRicciCurvature's DiGraph semantics), both tools;
(7) geoml alone on a weighted 10-NN graph of `--n-weighted-big` 16-D points (140,000: ~1M
edges). Prints time, edges/s, speed-up and max |kappa difference|, and writes JSON.
`--only dims`: weighted 10-NN graphs of `--n-dims` points in each of `--dims` dimensions, both
tools; `--only big`: geoml alone on the union 10-NN graph of `--n-big` 3-D points (1.75M:
~10M edges), time and peak memory.

    python bench/bench_ricci.py            # everything
    python bench/bench_ricci.py --quick    # smaller graphs, no 200k / 1M-edge graphs
    python bench/bench_ricci.py --only dims --out bench/results/ricci_dims.json
    python bench/bench_ricci.py --only big --out bench/results/ricci_big.json
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

import geoml

from ._harness import clustered, machine, print_table, timeit, write_json


def knn_graph(n, seed=0):
    return geoml.knn_graph(clustered(n, 3, seed=seed), 10, mode="connectivity")


def grc_curvature(G, proc):
    from GraphRicciCurvature.OllivierRicci import OllivierRicci

    logging.getLogger("GraphRicciCurvature").setLevel(logging.ERROR)
    o = OllivierRicci(G, method="OTD", proc=proc, verbose="ERROR")
    o.compute_ricci_curvature()
    return o.G


_GRC_REPEATS = None  # --grc-repeats (None: the same repeats as geoml)


def time_grc(G, proc, repeats):
    """GraphRicciCurvature timed as geoml is: its import (networkit, POT, scikit-learn:
    seconds) and one warm-up call on a small induced subgraph of G (a BFS ball: its worker
    pool, lazy imports, caches) happen before the clock starts, then the median of `repeats`
    calls on G, each a user's full call (graph copy, its own processes, curvature).
    Returns (median s, graph)."""
    import itertools

    import GraphRicciCurvature.OllivierRicci  # noqa: F401 (import outside the timing)
    import networkx as nx

    src = next(iter(G.nodes))  # a BFS ball of 300 nodes: connected, the same kind of graph
    ball = [src] + [v for _, v in itertools.islice(nx.bfs_edges(G, src), 299)]
    small = G.subgraph(ball).copy()
    grc_curvature(small, proc)  # warm-up, untimed
    times, H = [], None
    for _ in range(_GRC_REPEATS or repeats):
        t0 = time.perf_counter()
        H = grc_curvature(G, proc)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), H


def _vs_grc(name, G, orc, t, row, repeats, proc):
    """GraphRicciCurvature OTD on networkx ``G`` against geoml's fit ``orc`` (``t`` s, its
    ``row``): the largest curvature difference, the speedup and the goal go into ``row``; the
    reference's own row is returned."""
    t_grc, H = time_grc(G, proc, repeats)
    ref = np.array([H[orc.nodes_[i]][orc.nodes_[j]]["ricciCurvature"] for i, j in orc.edges_])
    diff = float(np.abs(ref - orc.curvature_).max())
    row["max_kappa_diff"] = diff
    row["speedup_vs_grc"] = t_grc / t
    row["goal"] = ">= 100x, diff <= 1e-6: " + (
        "met" if t_grc / t >= 100 and diff <= 1e-6 else "MISSED"
    )
    return {
        "graph": name,
        "tool": "GraphRicciCurvature OTD",
        "edges": len(orc.edges_),
        "time_s": t_grc,
        "edges_per_s": len(orc.edges_) / t_grc,
        "speedup_vs_grc": 1.0,
    }


def compare(name, graph_sparse, G_nx, repeats, with_grc, proc):
    rows = []
    t, orc = timeit(lambda: geoml.OllivierRicci().fit(graph_sparse), repeats=repeats)
    m = len(orc.edges_)
    row = {"graph": name, "tool": "geoml exact", "edges": m, "time_s": t, "edges_per_s": m / t}
    rows.append(row)
    t_lb, _ = timeit(
        lambda: geoml.OllivierRicci(method="lower_bound").fit(graph_sparse), repeats=repeats
    )
    rows.append(
        {
            "graph": name,
            "tool": "geoml lower_bound",
            "edges": m,
            "time_s": t_lb,
            "edges_per_s": m / t_lb,
        }
    )
    if with_grc:
        rows.append(_vs_grc(name, G_nx, orc, t, row, repeats, proc))
    return rows


def weighted_knn_graph(n, d=16, seed=0, symmetrize="union"):
    """10-NN graph of clustered d-D points with distance weights (float64)."""
    A = geoml.knn_graph(
        clustered(n, d, seed=seed).astype(np.float64), 10, mode="distance", symmetrize=symmetrize
    )
    return A.astype(np.float64)


def directed_nx(A):
    """networkx DiGraph of the arcs of a (non-symmetric) sparse matrix, weights = values."""
    import networkx as nx

    C = A.tocoo()
    G = nx.DiGraph()
    G.add_nodes_from(range(A.shape[0]))
    G.add_weighted_edges_from(zip(C.row.tolist(), C.col.tolist(), C.data.tolist()))
    return G


def compare_nx(name, G, repeats, with_grc, proc):
    """geoml exact and GraphRicciCurvature OTD on the same networkx graph (weighted/directed)."""
    rows = []
    t, orc = timeit(lambda: geoml.OllivierRicci().fit(G), repeats=repeats)
    m = len(orc.edges_)
    row = {"graph": name, "tool": "geoml exact", "edges": m, "time_s": t, "edges_per_s": m / t}
    rows.append(row)
    if with_grc:
        rows.append(_vs_grc(name, G, orc, t, row, repeats, proc))
    return rows


def weighted_dims(dims, n, repeats, with_grc, proc):
    """Weighted 10-NN graphs (union, distance weights) of n clustered points in each of `dims`
    dimensions: geoml and GraphRicciCurvature OTD side by side."""
    import networkx as nx

    rows = []
    for d in dims:
        W = weighted_knn_graph(n, d=d)
        rows += compare_nx(
            f"weighted 10-NN graph, {d}-D, n={n}",
            nx.from_scipy_sparse_array(W),
            repeats,
            with_grc,
            proc,
        )
    return rows


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def big_unweighted(n, k=10, n_jobs=2):
    """geoml alone on the union k-NN graph (unweighted) of n clustered 3-D points, built with
    scipy's cKDTree (not timed): time and peak resident memory during the fit (VmRSS sampled
    every 20 ms; the process's peak before the fit is reported too)."""
    import resource
    import threading

    import scipy.sparse as sps
    from scipy.spatial import cKDTree

    X = clustered(n, 3, seed=0).astype(np.float64)
    _, idx = cKDTree(X).query(X, k=k + 1, workers=-1)
    r = np.repeat(np.arange(n, dtype=np.int64), k)
    c = idx[:, 1:].ravel().astype(np.int64)
    del X, idx
    A = sps.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    A = (A + A.T).tocsr()
    A.data[:] = 1.0
    del r, c
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base = _rss_mb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_mb())

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    orc = geoml.OllivierRicci(n_jobs=n_jobs).fit(A)
    t = time.perf_counter() - t0
    done.set()
    th.join()
    m = len(orc.edges_)
    assert np.isfinite(orc.curvature_).all() and orc.converged_.all()
    return [
        {
            "graph": f"{k}-NN graph (union), 3-D, n={n}",
            "tool": f"geoml exact, n_jobs={n_jobs}",
            "edges": m,
            "time_s": t,
            "edges_per_s": m / t,
            "rss_before_fit_mb": round(base, 1),
            "peak_rss_fit_mb": round(peak[0], 1),
            "peak_rss_process_before_fit_mb": round(peak_before, 1),
            "goal": ("< 60 s: " + ("met" if t < 60 else "MISSED"))
            + ("" if m >= 10_000_000 else f" (only {m} edges < 10M)"),
        }
    ]


def _default_name(args):
    """JSON name without --out: a partial or --quick run must not overwrite the full results."""
    return (
        "ricci_cpu"
        + ("" if args.only == "all" else f"_{args.only}")
        + ("_quick" if args.quick else "")
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small graphs, skip the 200k graph")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-grc", action="store_true", help="skip GraphRicciCurvature")
    ap.add_argument(
        "--grc-repeats",
        type=int,
        default=None,
        help="timed GraphRicciCurvature calls per graph (median; default: --repeats)",
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--n-weighted", type=int, default=None, help="weighted case (10000)")
    ap.add_argument("--n-directed", type=int, default=None, help="directed case (10000)")
    ap.add_argument(
        "--n-weighted-big", type=int, default=None, help="geoml-only weighted case (140000)"
    )
    ap.add_argument(
        "--only",
        choices=["all", "weighted", "directed", "dims", "big"],
        default="all",
        help="run only the weighted or the directed cases, the weighted graphs of --dims "
        "dimensions, or the big unweighted graph (--n-big; not part of 'all')",
    )
    ap.add_argument("--dims", default="2,8,16,32,64", help="dimensions of --only dims")
    ap.add_argument("--n-dims", type=int, default=5000, help="points of --only dims")
    ap.add_argument(
        "--n-big", type=int, default=1_750_000, help="points of --only big (>= 10M edges)"
    )
    ap.add_argument("--k-big", type=int, default=10, help="neighbours of --only big")
    args = ap.parse_args(argv)
    global _GRC_REPEATS
    _GRC_REPEATS = args.grc_repeats
    import networkx as nx

    proc = os.cpu_count()
    print(machine())
    n_small = 2000 if args.quick else 10_000
    rows = []
    n_w = args.n_weighted or (1000 if args.quick else 10_000)
    n_d = args.n_directed or (1000 if args.quick else 10_000)
    if args.only in ("all", "weighted"):
        W = weighted_knn_graph(n_w)
        rows += compare_nx(
            f"weighted 10-NN graph, 16-D, n={n_w}",
            nx.from_scipy_sparse_array(W),
            args.repeats,
            not args.no_grc,
            proc,
        )
        n_big = args.n_weighted_big or (0 if args.quick else 140_000)
        if n_big:
            Wb = weighted_knn_graph(n_big)
            t, orc = timeit(lambda: geoml.OllivierRicci().fit(Wb), repeats=1, warmup=0)
            m = len(orc.edges_)
            rows.append(
                {
                    "graph": f"weighted 10-NN graph, 16-D, n={n_big}",
                    "tool": "geoml exact",
                    "edges": m,
                    "time_s": t,
                    "edges_per_s": m / t,
                    "goal": "< 60 s: " + ("met" if t < 60 else "MISSED"),
                }
            )
    if args.only in ("all", "directed"):
        D = weighted_knn_graph(n_d, symmetrize=None)
        rows += compare_nx(
            f"directed weighted 10-NN graph, 16-D, n={n_d}",
            directed_nx(D),
            args.repeats,
            not args.no_grc,
            proc,
        )
    if args.only == "dims":
        dims = [int(v) for v in args.dims.split(",")]
        rows += weighted_dims(dims, args.n_dims, args.repeats, not args.no_grc, proc)
    if args.only == "big":
        rows += big_unweighted(args.n_big, args.k_big)
    if args.only != "all":
        print_table(
            rows,
            [
                "graph",
                "tool",
                "edges",
                "time_s",
                "edges_per_s",
                "speedup_vs_grc",
                "max_kappa_diff",
                "peak_rss_fit_mb",
                "goal",
            ],
        )
        write_json(_default_name(args), {"rows": rows, "args": vars(args)}, args.out)
        return
    A = knn_graph(n_small)
    rows += compare(
        f"10-NN graph, n={n_small}",
        A,
        nx.from_scipy_sparse_array(A),
        args.repeats,
        not args.no_grc,
        proc,
    )
    B = nx.barabasi_albert_graph(1000 if args.quick else 5000, 4, seed=0)
    rows += compare(
        "BA(5000, 4)" if not args.quick else "BA(1000, 4)",
        B,
        B,
        args.repeats,
        not args.no_grc,
        proc,
    )
    if not args.quick:
        big = knn_graph(200_000)
        t, orc = timeit(lambda: geoml.OllivierRicci().fit(big), repeats=1, warmup=0)
        m = len(orc.edges_)
        rows.append(
            {
                "graph": "10-NN graph, n=200000",
                "tool": "geoml exact",
                "edges": m,
                "time_s": t,
                "edges_per_s": m / t,
                "goal": "< 60 s: " + ("met" if t < 60 else "MISSED"),
            }
        )
    t, flow = timeit(lambda: geoml.RicciFlow(n_iter=10, delta=0).fit(A), repeats=1, warmup=0)
    rows.append(
        {
            "graph": f"10-NN graph, n={n_small}",
            "tool": "geoml RicciFlow, 10 iterations",
            "edges": len(flow.edges_),
            "time_s": t,
            "edges_per_s": 11 * len(flow.edges_) / t,
            "goal": ("< 30 s: " + ("met" if t < 30 else "MISSED")) if not args.quick else "",
        }
    )
    print(
        "\nOllivier-Ricci curvature (alpha=0.5, exp_power=2), "
        f"median of {args.repeats} for geoml and of {args.grc_repeats or args.repeats} for "
        "GraphRicciCurvature (imported and warmed up on a small subgraph first)"
    )
    print_table(
        rows,
        [
            "graph",
            "tool",
            "edges",
            "time_s",
            "edges_per_s",
            "speedup_vs_grc",
            "max_kappa_diff",
            "goal",
        ],
    )
    write_json(_default_name(args), {"rows": rows, "args": vars(args)}, args.out)


if __name__ == "__main__":
    main()
