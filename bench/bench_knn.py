"""Exact kNN graph (k = 15) of clustered float32 data: geoml vs faiss-cpu, scikit-learn, pynndescent.

Each size times every tool on the same data in this one process (warm-up, repeats, median) and
prints time, the ratio to faiss IndexFlatL2, and accuracy (max |distance - exact| for exact tools,
recall@k for pynndescent). pynndescent's first call (numba JIT included) is timed separately.

    python bench/bench_knn.py                      # n=50,000 d=64 and n=200,000 d=128
    python bench/bench_knn.py --sizes 20000x32 --repeats 1
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import geoml
from _harness import clustered, machine, print_table, timeit, write_json


def recall(idx, ref):
    hits = sum(len(set(a) & set(b)) for a, b in zip(idx.tolist(), ref.tolist()))
    return hits / ref.size


def run_size(n, d, k, repeats, tools):
    X = clustered(n, d, seed=0)
    rows = []
    t, (idx, dist) = timeit(lambda: geoml.knn(X, k), repeats=repeats)
    ref_idx, ref_dist = idx, dist
    rows.append({"tool": "geoml.knn", "time_s": t, "max_dist_err": 0.0, "recall": 1.0})
    t, _ = timeit(lambda: geoml.knn_graph(X, k), repeats=repeats)
    rows.append({"tool": "geoml.knn_graph (csr, union)", "time_s": t})

    # exact float64 check of geoml on a sample of rows
    sample = np.random.default_rng(1).choice(n, size=min(n, 200), replace=False)
    Xd = X.astype(np.float64)
    D = np.sqrt(((Xd[sample, None, :] - Xd[None]) ** 2).sum(-1))
    D[np.arange(len(sample)), sample] = np.inf
    exact = np.sort(D, axis=1)[:, :k]
    rows[0]["max_dist_err"] = float(np.abs(ref_dist[sample] - exact).max())

    if "faiss" in tools:
        import faiss

        faiss.omp_set_num_threads(geoml._core.max_threads())

        def faiss_run():
            index = faiss.IndexFlatL2(d)
            index.add(X)
            Dq, Iq = index.search(X, k + 1)
            return Iq[:, 1:], np.sqrt(np.maximum(Dq[:, 1:], 0))

        t, (fi, fd) = timeit(faiss_run, repeats=repeats)
        rows.append({"tool": "faiss IndexFlatL2", "time_s": t,
                     "max_dist_err": float(np.abs(fd[sample] - exact).max()),
                     "recall": recall(fi, ref_idx)})
    if "sklearn" in tools:
        from sklearn.neighbors import NearestNeighbors

        def sk_run():
            nn = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=-1).fit(X)
            return nn.kneighbors(return_distance=True)

        t, (sd, si) = timeit(sk_run, repeats=1 if n > 100_000 else repeats, warmup=0)
        rows.append({"tool": "sklearn NearestNeighbors (brute)", "time_s": t,
                     "max_dist_err": float(np.abs(sd[sample] - exact).max()),
                     "recall": recall(si, ref_idx)})
    if "pynndescent" in tools:
        import pynndescent

        t0 = time.perf_counter()
        pi, _ = pynndescent.NNDescent(X, n_neighbors=k + 1, random_state=0).neighbor_graph
        t_first = time.perf_counter() - t0
        rows.append({"tool": "pynndescent first call (JIT)", "time_s": t_first,
                     "recall": recall(pi[:, 1:], ref_idx)})
        t, (pi, _) = timeit(lambda: pynndescent.NNDescent(X, n_neighbors=k + 1,
                                                          random_state=0).neighbor_graph,
                            repeats=repeats, warmup=0)
        rows.append({"tool": "pynndescent warm (approx.)", "time_s": t,
                     "recall": recall(pi[:, 1:], ref_idx)})
    base = next((r["time_s"] for r in rows if r["tool"].startswith("faiss")), None)
    for r in rows:
        r["n"], r["d"], r["k"] = n, d, k
        r["ratio_to_faiss"] = r["time_s"] / base if base else None
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50000x64,200000x128", help="comma list of NxD")
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tools", default="faiss,sklearn,pynndescent")
    ap.add_argument("--device", default="cpu", choices=["cpu"],
                    help="cpu (GPU benches come with the CUDA kernels)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/knn_cpu.json)")
    args = ap.parse_args()
    tools = set(args.tools.split(",")) if args.tools else set()
    print(machine())
    all_rows = []
    for size in args.sizes.split(","):
        n, d = (int(v) for v in size.lower().split("x"))
        rows = run_size(n, d, args.k, args.repeats, tools)
        print(f"\nn={n} d={d} k={args.k} float32 clustered, median of {args.repeats}")
        print_table(rows, ["tool", "time_s", "ratio_to_faiss", "max_dist_err", "recall"])
        all_rows += rows
    write_json("knn_cpu", {"rows": all_rows, "args": vars(args)}, args.out)


if __name__ == "__main__":
    main()
