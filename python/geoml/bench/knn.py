"""Exact kNN graph (k = 15) of clustered float32 data: geoml vs faiss-cpu, sklearn, pynndescent.

Each size times every tool on the same data in this one process (warm-up, repeats, median) and
prints time, the ratio to faiss IndexFlatL2, and accuracy (max |distance - exact| for exact tools,
recall@k for pynndescent). pynndescent's first call (numba JIT included) is timed separately.

    python bench/bench_knn.py                      # n=50,000 d=64 and n=200,000 d=128
    python bench/bench_knn.py --sizes 20000x32 --repeats 1
    python bench/bench_knn.py --dtype float64 --sizes 100000x64 --k 20 --tools sklearn

With ``--dtype float64`` the data are float64 (faiss, float32 only, is left out): geoml's float64
search (float32 screen, each row certified in float64) against scikit-learn's float64 brute force.

On a GPU (``--device cuda``, default n=1,000,000 d=128 k=15, float32, exact): geoml on CuPy
arrays against CuPy (tiled matmul + argpartition) and PyTorch (tiled ``torch.cdist`` + ``topk``),
with the achieved fraction of the GEMM floor (2 n^2 d flops over the measured float32 matmul
rate). The peers materialise a tile of the distance matrix per query block, so they are timed
on the first ``--peer-queries`` queries (against all n points) and scaled by n / peer-queries.

    python bench/bench_knn.py --device cuda
    python bench/bench_knn.py --device cuda --sizes 200000x128 --repeats 1 --quick

Approximate section (``--approx``): the kNN graph (k = 15, each point's neighbours among the
others) of float32 data, "clustered" (Gaussian blobs, full intrinsic dimension) and "manifold"
(an 8-dimensional latent space mapped nonlinearly into d dimensions), optionally "blobs"
(Gaussian blobs of 20,000 points: high intrinsic dimension, larger than a cell): geoml
``knn(method="nndescent")`` at several ``target_recall`` values, pynndescent (numba JIT timed
separately, on a small first call), hnswlib (build + query of every point, per ``ef``),
faiss HNSW (per ``efSearch``) and IVF (per ``nprobe``), and geoml's exact search. Every
configuration runs in its own subprocess (peak RSS from ``getrusage``, and the growth over the
loaded data); recall is tie-aware, on 1,000 points searched exactly. Prints, per tool, the
fastest configuration with recall >= ``--min-recall`` and its ratio to geoml; writes the JSON
and (with matplotlib) the recall-time plot to ``bench/results``.

    python bench/bench_knn.py --approx --sizes 1000000x128 --datasets clustered,manifold  # issue
    python bench/bench_knn.py --approx --sizes 200000x128 --exact                         # vs exact
    python bench/bench_knn.py --approx --sizes 50000x128 --exact                          # quick
    python bench/bench_knn.py --approx --sizes 200000x64 --datasets blobs --tools geoml,pynndescent

``method="auto"`` section (``--auto``): the kNN lists (k = 15, each point's neighbours among the
others) of float32 data, "gaussian" (isotropic, intrinsic dimension d), "clustered" (100
Gaussian blobs), "swissroll" (a 2-D swiss roll rotated into d dimensions, noise 0.05) and
optionally "manifold" (8-D latent space, as above): geoml ``knn`` with ``method="exact"``,
``"nndescent"`` and ``"auto"`` (``random_state=0``, default ``target_recall=0.99``), scikit-learn's
``NearestNeighbors`` (the algorithm it picks) and pynndescent, in one process (warm-up, repeats,
median; pynndescent's warm-up call also compiles). Prints recall@k of every tool against the
exact lists (tie-aware, every point), the route auto took (``recall_.method``, and the
NN-descent iterations it paid for before an exact fallback), auto / best of exact and
nndescent, and each tool / auto. Default n = 20,000 at d = 8, 32, 128; ``--full`` runs
n = 20,000, 50,000, 100,000 x d = 8, 32, 128. Every tool runs on ``--n-jobs`` threads (default
geoml's count when the run starts, which a loaded machine caps; scikit-learn also under
``threadpool_limits``).

    python bench/bench_knn.py --auto --n-jobs 1                       # n=20,000, d=8,32,128
    python bench/bench_knn.py --auto --sizes 50000x128 --datasets gaussian
    python bench/bench_knn.py --auto --full --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import geoml

from ..neighbors._knn import _auto_budget
from . import _harness
from ._harness import clustered, machine, print_table, timeit, write_json


def recall(idx, ref):
    hits = sum(len(set(a) & set(b)) for a, b in zip(idx.tolist(), ref.tolist()))
    return hits / ref.size


def run_size(n, d, k, repeats, tools, dtype="float32"):
    X = clustered(n, d, seed=0, dtype=dtype)
    rows = []
    t, (idx, dist) = timeit(lambda: geoml.knn(X, k), repeats=repeats)
    ref_idx, ref_dist = idx, dist
    rows.append({"tool": "geoml.knn", "time_s": t, "max_dist_err": 0.0, "recall": 1.0})
    t, _ = timeit(lambda: geoml.knn_graph(X, k), repeats=repeats)
    rows.append({"tool": "geoml.knn_graph (csr, union)", "time_s": t})

    # exact float64 check of geoml on a sample of rows
    sample = np.random.default_rng(1).choice(n, size=min(n, 200), replace=False)
    Xd = X.astype(np.float64)
    sq = (Xd**2).sum(1)  # float64 expanded form, in (200, n) memory
    D = np.sqrt(np.maximum(sq[sample, None] + sq[None, :] - 2 * Xd[sample] @ Xd.T, 0))
    D[np.arange(len(sample)), sample] = np.inf
    exact = np.sort(D, axis=1)[:, :k]
    rows[0]["max_dist_err"] = float(np.abs(ref_dist[sample] - exact).max())

    if "faiss" in tools and dtype == "float32":
        import faiss

        faiss.omp_set_num_threads(geoml._core.max_threads())

        def faiss_run():
            index = faiss.IndexFlatL2(d)
            index.add(X)
            Dq, Iq = index.search(X, k + 1)
            return Iq[:, 1:], np.sqrt(np.maximum(Dq[:, 1:], 0))

        t, (fi, fd) = timeit(faiss_run, repeats=repeats)
        rows.append(
            {
                "tool": "faiss IndexFlatL2",
                "time_s": t,
                "max_dist_err": float(np.abs(fd[sample] - exact).max()),
                "recall": recall(fi, ref_idx),
            }
        )
    if "sklearn" in tools:
        from sklearn.neighbors import NearestNeighbors

        def sk_run():
            nn = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=-1).fit(X)
            return nn.kneighbors(return_distance=True)

        t, (sd, si) = timeit(sk_run, repeats=1 if n > 100_000 else repeats, warmup=0)
        rows.append(
            {
                "tool": "sklearn NearestNeighbors (brute)",
                "time_s": t,
                "max_dist_err": float(np.abs(sd[sample] - exact).max()),
                "recall": recall(si, ref_idx),
            }
        )
    if "pynndescent" in tools:
        import pynndescent

        t0 = time.perf_counter()
        pi, _ = pynndescent.NNDescent(X, n_neighbors=k + 1, random_state=0).neighbor_graph
        t_first = time.perf_counter() - t0
        rows.append(
            {
                "tool": "pynndescent first call (JIT)",
                "time_s": t_first,
                "recall": recall(pi[:, 1:], ref_idx),
            }
        )
        t, (pi, _) = timeit(
            lambda: pynndescent.NNDescent(X, n_neighbors=k + 1, random_state=0).neighbor_graph,
            repeats=repeats,
            warmup=0,
        )
        rows.append(
            {
                "tool": "pynndescent warm (approx.)",
                "time_s": t,
                "recall": recall(pi[:, 1:], ref_idx),
            }
        )
    base = next((r["time_s"] for r in rows if r["tool"].startswith("faiss")), None)
    for r in rows:
        r["n"], r["d"], r["k"] = n, d, k
        r["ratio_to_faiss"] = r["time_s"] / base if base else None
    return rows


# ---------------------------------------------------------------- GPU
def gpu_name(cp) -> str:
    return cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"].decode()


def matmul_rate(cp, sync, d):
    """Best measured float32 matmul rate (flop/s): square 8192^3 and the kNN shape (inner d)."""
    rates = {}
    for name, (a, b, c) in {
        "square_8192": (8192, 8192, 8192),
        f"knn_shape_inner{d}": (16384, d, 16384),
    }.items():
        A = cp.random.standard_normal((a, b), dtype=cp.float32)
        B = cp.random.standard_normal((b, c), dtype=cp.float32)
        t, _ = timeit(lambda: A @ B, repeats=5, sync=sync)
        rates[name] = 2.0 * a * b * c / t
    return rates


def cupy_knn(cp, X, k, rows):
    """Exact kNN of the first `rows` points among all, CuPy style: per query tile a float32
    matmul gives ||x||^2 - 2 x.y, argpartition keeps k + 1, a sort orders them."""
    n = X.shape[0]
    tile = max(1, min(rows, (1 << 29) // n))  # at most 2 GiB of scores per tile
    sq = (X * X).sum(1)
    out_i, out_d = [], []
    for q0 in range(0, rows, tile):
        Q = X[q0 : q0 + tile]
        D = sq[None, :] - 2.0 * (Q @ X.T)
        D[cp.arange(Q.shape[0]), cp.arange(q0, q0 + Q.shape[0])] = cp.inf  # exclude self
        part = cp.argpartition(D, k, axis=1)[:, :k]
        dp = cp.take_along_axis(D, part, axis=1)
        order = cp.argsort(dp, axis=1)
        idx = cp.take_along_axis(part, order, axis=1)
        dist = cp.sqrt(
            cp.maximum(cp.take_along_axis(dp, order, axis=1) + sq[q0 : q0 + tile, None], 0)
        )
        out_i.append(idx)
        out_d.append(dist)
    return cp.concatenate(out_i), cp.concatenate(out_d)


def torch_knn(torch, Xt, k, rows):
    """Exact kNN of the first `rows` points among all with torch.cdist + topk per query tile."""
    n = Xt.shape[0]
    tile = max(1, min(rows, (1 << 29) // n))
    out_i, out_d = [], []
    for q0 in range(0, rows, tile):
        Q = Xt[q0 : q0 + tile]
        D = torch.cdist(Q, Xt)
        D[
            torch.arange(Q.shape[0], device=Q.device),
            torch.arange(q0, q0 + Q.shape[0], device=Q.device),
        ] = float("inf")
        dist, idx = torch.topk(D, k, dim=1, largest=False, sorted=True)
        out_i.append(idx)
        out_d.append(dist)
    return torch.cat(out_i), torch.cat(out_d)


def run_size_cuda(n, d, k, repeats, tools, peer_queries):
    import cupy as cp

    sync = cp.cuda.get_current_stream().synchronize
    X = cp.asarray(clustered(n, d, seed=0))
    rates = matmul_rate(cp, sync, d)
    rate = max(rates.values())
    floor_s = 2.0 * n * n * d / rate
    rows = []
    t, (idx, dist) = timeit(lambda: geoml.knn(X, k), repeats=repeats, sync=sync)
    gi, gd = idx.get(), dist.get()
    rows.append({"tool": "geoml.knn (cupy in/out)", "time_s": t, "measured_on": n})
    t_graph, _ = timeit(lambda: geoml.knn_graph(X, k), repeats=repeats, sync=sync)
    rows.append({"tool": "geoml.knn_graph (cupyx csr, union)", "time_s": t_graph, "measured_on": n})

    # exact float64 reference (difference form, on the device) for a sample of the peers' queries
    sample = np.random.default_rng(1).choice(min(n, peer_queries), size=min(n, 200), replace=False)
    Xd = X.astype(cp.float64)
    exact = np.empty((len(sample), k))
    for r, i in enumerate(sample.tolist()):
        Di = cp.sqrt(((Xd - Xd[i]) ** 2).sum(1))
        Di[i] = cp.inf
        exact[r] = cp.sort(Di)[:k].get()
    del Xd
    rows[0]["max_dist_err"] = float(np.abs(gd[sample] - exact).max())
    rows[0]["recall"] = 1.0

    m = min(n, peer_queries)
    scale = n / m
    if "cupy" in tools:
        t, (ci, cd) = timeit(lambda: cupy_knn(cp, X, k, m), repeats=repeats, sync=sync)
        ci, cd = ci.get(), cd.get()
        rows.append(
            {
                "tool": "CuPy matmul + argpartition",
                "time_s": t * scale,
                "measured_on": m,
                "max_dist_err": float(np.abs(cd[sample] - exact).max()),
                "recall": recall(ci, gi[:m]),
            }
        )
        cp.get_default_memory_pool().free_all_blocks()
    if "torch" in tools:
        try:
            import torch
        except ImportError:
            print("torch not installed: PyTorch peer skipped")
        else:
            Xt = torch.as_tensor(X, device="cuda")
            tsync = torch.cuda.synchronize
            t, (ti, td) = timeit(lambda: torch_knn(torch, Xt, k, m), repeats=repeats, sync=tsync)
            ti, td = ti.cpu().numpy(), td.cpu().numpy()
            rows.append(
                {
                    "tool": "PyTorch cdist + topk",
                    "time_s": t * scale,
                    "measured_on": m,
                    "max_dist_err": float(np.abs(td[sample] - exact).max()),
                    "recall": recall(ti, gi[:m]),
                }
            )
            del Xt
            torch.cuda.empty_cache()
    base = rows[0]["time_s"]
    for r in rows:
        r["n"], r["d"], r["k"] = n, d, k
        r["ratio_to_geoml"] = r["time_s"] / base
        r["gemm_floor_fraction"] = floor_s / r["time_s"]
    return rows, {"matmul_rate_flops": rates, "gemm_floor_s": floor_s}


def main_cuda(args):
    if not geoml._gpu.available():
        raise SystemExit(
            "--device cuda needs a visible GPU, CuPy and geoml._cuda (built with GEOML_CUDA=ON)"
        )
    import cupy as cp

    tools = set(args.tools.split(",")) if args.tools else set()
    name = gpu_name(cp)
    info = {**machine(), "gpu": name}
    print(info)
    all_rows, floors = [], {}
    sizes = args.sizes or ("200000x128" if args.quick else "1000000x128")
    for size in sizes.split(","):
        n, d = (int(v) for v in size.lower().split("x"))
        rows, floor = run_size_cuda(n, d, args.k, args.repeats, tools, args.peer_queries)
        floors[size] = floor
        print(
            f"\nn={n} d={d} k={args.k} float32 clustered exact, {name}, median of "
            f"{args.repeats}; float32 matmul {max(floor['matmul_rate_flops'].values()) / 1e12:.1f}"
            f" TFLOP/s -> GEMM floor {floor['gemm_floor_s']:.3g} s; peers timed on "
            f"{min(n, args.peer_queries)} queries and scaled to n"
        )
        print_table(
            rows,
            ["tool", "time_s", "ratio_to_geoml", "gemm_floor_fraction", "max_dist_err", "recall"],
        )
        all_rows += rows
    safe = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
    write_json(
        f"knn_cuda_{safe}",
        {"rows": all_rows, "floors": floors, "gpu": name, "args": vars(args)},
        args.out,
    )


# ------------------------------------------------------------------ approximate section


def manifold(n, d, *, latent=8, seed=0):
    """n points of an 8-dimensional latent Gaussian mapped by tanh(Z A) into d dimensions."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, latent))
    A = rng.normal(size=(latent, d)) / np.sqrt(latent)
    return (np.tanh(Z @ A) + 0.01 * rng.normal(size=(n, d))).astype(np.float32)


def _dataset(name, n, d):
    """The approximate section's data sets (float32, seed 0).

    clustered: 100 Gaussian blobs (full intrinsic dimension d, 10,000 points each at 10^6);
    manifold: an 8-dimensional latent space mapped by tanh into d dimensions, with noise;
    blobs: Gaussian blobs of 20,000 points each (n / 20,000 blobs, at least one), the Dask
    bench's shape: blobs of high intrinsic dimension larger than the clustered start's cells.
    """
    if name == "clustered":
        return clustered(n, d, seed=0)
    if name == "manifold":
        return manifold(n, d, seed=0)
    if name == "blobs":
        return clustered(n, d, n_clusters=max(1, n // 20000), seed=0)
    raise SystemExit(f"unknown data set {name!r}: choose clustered, manifold or blobs")


def _peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM): getrusage's ru_maxrss keeps the parent's high-water
    mark across fork + exec, VmHWM belongs to the new address space."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _worker(tool, path, k, params):
    """One configuration in this (fresh) process -> dict with neighbours saved beside path."""
    X = np.load(path)
    base = _rss_bytes()
    n, d = X.shape
    nt = geoml._core.max_threads()
    out = {"tool": tool, **params}
    points = []  # (label, seconds, indices) for every configuration this run times
    cpu0 = time.process_time()
    if tool == "geoml-nndescent":
        t = time.perf_counter()
        res = geoml.knn(X, k, method="nndescent", target_recall=params["target"], random_state=0)
        points.append((f"target {params['target']}", time.perf_counter() - t, res.indices))
        out["estimate"] = res.recall_.estimate
        out["n_iter"] = res.recall_.n_iter
    elif tool == "geoml-exact":
        t = time.perf_counter()
        res = geoml.knn(X, k)
        points.append(("exact", time.perf_counter() - t, res.indices))
    elif tool == "pynndescent":
        import pynndescent

        t = time.perf_counter()
        pynndescent.NNDescent(X[:2000], n_neighbors=k + 1, random_state=0, n_jobs=nt)
        out["jit_s"] = time.perf_counter() - t
        cpu0 = time.process_time()  # the JIT is reported apart
        t = time.perf_counter()
        idx, _ = pynndescent.NNDescent(
            X, n_neighbors=k + 1, random_state=0, n_jobs=nt
        ).neighbor_graph
        points.append(("default", time.perf_counter() - t, idx[:, 1:]))
    elif tool == "hnswlib":
        import hnswlib

        t = time.perf_counter()
        index = hnswlib.Index(space="l2", dim=d)
        index.init_index(max_elements=n, ef_construction=params["efc"], M=params["M"])
        index.set_num_threads(nt)
        index.add_items(X)
        build = time.perf_counter() - t
        out["build_s"] = build
        for ef in params["ef"]:
            index.set_ef(ef)
            t = time.perf_counter()
            idx, _ = index.knn_query(X, k=k + 1)
            points.append((f"ef {ef}", build + time.perf_counter() - t, idx[:, 1:]))
    elif tool in ("faiss-hnsw", "faiss-ivf"):
        import faiss

        faiss.omp_set_num_threads(nt)
        t = time.perf_counter()
        if tool == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(d, params["M"])
            index.hnsw.efConstruction = params["efc"]
            index.add(X)
        else:
            nlist = params["nlist"]
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
            index.train(X[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
            index.add(X)
        build = time.perf_counter() - t
        out["build_s"] = build
        for v in params["search"]:
            if tool == "faiss-hnsw":
                index.hnsw.efSearch = v
            else:
                index.nprobe = v
            t = time.perf_counter()
            _, idx = index.search(X, k + 1)
            points.append(
                (
                    f"{'ef' if tool == 'faiss-hnsw' else 'nprobe'} {v}",
                    build + time.perf_counter() - t,
                    idx[:, 1:],
                )
            )
    else:
        raise SystemExit(f"unknown tool {tool}")
    out["cpu_s"] = time.process_time() - cpu0  # all threads, the whole configuration
    peak = _peak_rss_bytes()
    out["peak_rss_mb"] = peak / 2**20
    out["extra_rss_mb"] = (peak - base) / 2**20
    out["points"] = []
    for j, (label, sec, idx) in enumerate(points):
        f = f"{path}.{tool}.{j}.npy"
        np.save(f, np.asarray(idx, dtype=np.int64))
        out["points"].append({"config": label, "time_s": sec, "indices": f})
    return out


def _drop_self(idx, rows):
    """(m, k+1) lists of the rows themselves -> (m, k) without the row (or the last entry)."""
    out = np.empty((idx.shape[0], idx.shape[1] - 1), dtype=idx.dtype)
    for r, (row, i) in enumerate(zip(idx, rows)):
        keep = row[row != i]
        out[r] = keep[: out.shape[1]]
    return out


def _recall(X, sample, kth, idx, chunk=8192):
    """Tie-aware recall of the sampled rows' lists (``idx`` holds every row's list): a
    neighbour counts when it is no farther (float64) than the true k-th neighbour ``kth``
    (one per sampled row); the row itself and -1 entries never count."""
    hits = 0
    for s in range(0, len(sample), chunk):
        at = np.asarray(sample[s : s + chunk])
        rows = idx[at]
        ok = (rows >= 0) & (rows != at[:, None])
        Xs = X[at].astype(np.float64)
        D = np.sqrt(((X[np.where(ok, rows, 0)].astype(np.float64) - Xs[:, None, :]) ** 2).sum(-1))
        hits += int(((kth[s : s + chunk, None] * (1 + 1e-5) + 1e-6 >= D) & ok).sum())
    return hits / (len(sample) * idx.shape[1])


def main_approx(args):
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    k = args.k
    tools = args.tools.split(",")
    results, rows = [], []
    tmp = Path(tempfile.mkdtemp(prefix="geoml_knn_approx_"))
    print(machine())
    for n, d in sizes:
        for ds in args.datasets.split(","):
            X = _dataset(ds, n, d)
            path = str(tmp / f"{ds}_{n}x{d}.npy")
            np.save(path, X)
            sample = np.random.default_rng(1).choice(n, size=min(n, 1000), replace=False)
            ref = geoml.knn(X, k + 1, Y=X[sample])
            truth = _drop_self(ref.indices, sample)
            Xs64 = X[sample].astype(np.float64)
            kth = np.sqrt(((X[truth[:, -1]].astype(np.float64) - Xs64) ** 2).sum(-1))
            configs = []
            if args.exact:
                configs.append(("geoml-exact", {}))
            for tool in tools:
                if tool == "geoml":
                    configs += [("geoml-nndescent", {"target": t}) for t in args.targets]
                elif tool == "pynndescent":
                    configs.append(("pynndescent", {}))
                elif tool == "hnswlib":
                    configs.append(("hnswlib", {"M": 16, "efc": 100, "ef": args.hnsw_ef}))
                elif tool == "faiss-hnsw":
                    configs.append(
                        ("faiss-hnsw", {"M": 16, "efc": 100, "search": [16, 24, 32, 48, 64, 96]})
                    )
                elif tool == "faiss-ivf":
                    nlist = int(4 * np.sqrt(n))
                    configs.append(("faiss-ivf", {"nlist": nlist, "search": [4, 8, 16, 32, 64]}))
            for tool, params in configs:
                cmd = [
                    sys.executable,
                    "-m",
                    "geoml.bench.knn",
                    "--approx-worker",
                    tool,
                    "--data",
                    path,
                    "--k",
                    str(k),
                    "--params",
                    json.dumps(params),
                ]
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{tool} {params}: over --timeout {args.timeout} s, skipped", flush=True)
                    rows.append(
                        {"dataset": ds, "n": n, "d": d, "tool": tool, "timed_out_s": args.timeout}
                    )
                    continue
                if proc.returncode != 0:
                    print(f"{tool} failed: {proc.stderr[-2000:]}")
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                for pt in res.pop("points"):
                    idx = np.load(pt["indices"])
                    os.remove(pt["indices"])
                    row = {
                        "dataset": ds,
                        "n": n,
                        "d": d,
                        **res,
                        "config": pt["config"],
                        "time_s": pt["time_s"],
                        "recall": _recall(X, sample, kth, idx),
                    }
                    row.pop("target", None)
                    row.pop("ef", None), row.pop("search", None)
                    if tool.startswith("geoml"):
                        row["mem_bound_mb"] = (2.5 * n * k * 12) / 2**20
                    rows.append(row)
                    print(
                        {
                            key: (round(v, 4) if isinstance(v, float) else v)
                            for key, v in row.items()
                        },
                        flush=True,
                    )
            os.remove(path)
            # the fastest configuration of each tool that reaches the recall goal
            here = [r for r in rows if r["dataset"] == ds and r["n"] == n and r["d"] == d]
            best = {}
            for r in here:
                if r.get("recall", 0.0) >= args.min_recall and (
                    r["tool"] not in best or r["time_s"] < best[r["tool"]]["time_s"]
                ):
                    best[r["tool"]] = r
            ours = best.get("geoml-nndescent")
            table = []
            for _tool, r in sorted(best.items(), key=lambda kv: kv[1]["time_s"]):
                table.append(
                    {**r, "ratio_to_geoml": r["time_s"] / ours["time_s"] if ours else None}
                )
            print(
                f"\n{ds} n={n} d={d} k={k}: fastest configuration with recall >= {args.min_recall}"
            )
            if not table:
                print("(none reached it)")
            print_table(
                table,
                [
                    "tool",
                    "config",
                    "time_s",
                    "ratio_to_geoml",
                    "recall",
                    "peak_rss_mb",
                    "extra_rss_mb",
                    "jit_s",
                ],
            )
            results += table
            # written after every data set, so a long run cut short keeps what it measured
            write_json("knn_approx", {"rows": rows, "best": results, "args": vars(args)}, args.out)
    payload = {"rows": rows, "best": results, "args": vars(args)}
    name = args.out or None
    write_json("knn_approx", payload, name)
    try:
        _plot(rows, args.plot or str(_harness.RESULTS / "knn_approx.png"))
    except ImportError:
        print("matplotlib not installed: no plot")


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "recall" in r]  # timed-out configurations have no point
    groups = sorted({(r["dataset"], r["n"], r["d"]) for r in rows})
    if not groups:
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, (ds, n, d) in zip(axes[0], groups):
        for tool in sorted({r["tool"] for r in rows}):
            pts = sorted(
                (r["recall"], r["time_s"])
                for r in rows
                if r["tool"] == tool and (r["dataset"], r["n"], r["d"]) == (ds, n, d)
            )
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=tool)
        ax.set_xlabel("recall@15")
        ax.set_ylabel("time (s), build + all queries")
        ax.set_yscale("log")
        ax.set_title(f"{ds}, n={n:,}, d={d}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


# ------------------------------------------------------------------ method="auto" section


def gaussian(n, d, *, seed=0):
    """n points of an isotropic standard Gaussian in d dimensions (float32)."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def swissroll(n, d, *, noise=0.05, seed=0):
    """A 2-D swiss roll (3 coordinates) padded with zeros to d, rotated by a random orthogonal
    matrix (so every coordinate carries it), plus isotropic noise of ``noise`` in all d."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    S = np.zeros((n, max(d, 3)))
    S[:, 0], S[:, 1], S[:, 2] = t * np.cos(t), 21.0 * rng.random(n), t * np.sin(t)
    S = S[:, :d] if d < 3 else S
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (S @ Q + noise * rng.standard_normal((n, d))).astype(np.float32)


def _auto_dataset(name, n, d):
    """The auto section's data sets (float32, seed 0): gaussian (intrinsic dimension d),
    clustered (100 Gaussian blobs, :func:`clustered`), swissroll (intrinsic dimension 2 in d),
    manifold (8-dimensional latent space mapped by tanh, :func:`manifold`)."""
    if name == "gaussian":
        return gaussian(n, d)
    if name == "clustered":
        return clustered(n, d, seed=0)
    if name == "swissroll":
        return swissroll(n, d)
    if name == "manifold":
        return manifold(n, d)
    raise SystemExit(f"unknown data set {name!r}: choose gaussian, clustered, swissroll, manifold")


def run_auto(ds, n, d, k, repeats, tools, nt):
    """One data set and shape: geoml exact / nndescent / auto and the anchors, same data, same
    process (warm-up, ``repeats``, median), every tool on ``nt`` threads; recall@k of each
    against the exact lists."""
    X = _auto_dataset(ds, n, d)
    rows = []

    def geoml_run(method):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = geoml.knn(X, k, method=method, random_state=0, n_jobs=nt)
        return res, any(issubclass(w.category, RuntimeWarning) for w in caught)

    t, (ex, _) = timeit(lambda: geoml_run("exact"), repeats=repeats)
    every = np.arange(n)
    kth = np.sqrt(((X[ex.indices[:, -1]].astype(np.float64) - X.astype(np.float64)) ** 2).sum(-1))
    rows.append({"tool": "geoml exact", "time_s": t, "recall": _recall(X, every, kth, ex.indices)})
    for method in ("nndescent", "auto"):
        t, (res, warned) = timeit(lambda m=method: geoml_run(m), repeats=repeats)
        rec = res.recall_
        rows.append(
            {
                "tool": f"geoml {method}",
                "time_s": t,
                "recall": _recall(X, every, kth, res.indices),
                "route": rec.method,
                "n_iter": rec.n_iter,
                "recall_estimate": rec.estimate,
                "warned": warned,
            }
        )
    if "sklearn" in tools:
        from sklearn.neighbors import NearestNeighbors
        from threadpoolctl import threadpool_limits

        fit = {}

        def sk_run():  # (brute: OpenMP / BLAS threads, capped at nt like the others)
            with threadpool_limits(limits=nt):
                nn = NearestNeighbors(n_neighbors=k, n_jobs=nt).fit(X)
                fit["algorithm"] = nn._fit_method
                return nn.kneighbors(return_distance=True)

        t, (_, si) = timeit(sk_run, repeats=repeats)
        rows.append(
            {
                "tool": f"sklearn NearestNeighbors ({fit['algorithm']})",
                "time_s": t,
                "recall": _recall(X, every, kth, si),
            }
        )
    if "pynndescent" in tools:
        import pynndescent

        def pynn_run():
            return pynndescent.NNDescent(
                X, n_neighbors=k + 1, random_state=0, n_jobs=nt
            ).neighbor_graph

        # the warm-up call also compiles (numba JIT, cached across sizes in this process)
        t, (pi, _) = timeit(pynn_run, repeats=repeats)
        pi = _drop_self(pi, np.arange(n))
        rows.append({"tool": "pynndescent", "time_s": t, "recall": _recall(X, every, kth, pi)})
    by = {r["tool"]: r["time_s"] for r in rows}
    t_auto = by["geoml auto"]
    best_geoml = min(by["geoml exact"], by["geoml nndescent"])
    budget = _auto_budget(n, d)
    for r in rows:
        r.update(dataset=ds, n=n, d=d, k=k, auto_budget=round(budget, 2))
        r["ratio_to_auto"] = r["time_s"] / t_auto
    auto = next(r for r in rows if r["tool"] == "geoml auto")
    auto["auto_over_best_geoml"] = t_auto / best_geoml
    return rows


def main_auto(args):
    from geoml.neighbors._knn import _AUTO_MIN_N, _MAX_ITER

    print(machine())
    print(
        f"auto: exact below {_AUTO_MIN_N} points; budget B = n (0.3 + 0.0115 d) / 1e4 "
        f"NN-descent iterations: B < 2 exact, B <= {_MAX_ITER} NN-descent within B then exact, "
        "beyond NN-descent alone"
    )
    if args.full:
        sizes = [(n, d) for n in (20000, 50000, 100000) for d in (8, 32, 128)]
    else:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    tools = set(args.tools.split(",")) if args.tools else set()
    nt = args.n_jobs or geoml._core.max_threads()
    print(f"threads: {nt} for every tool (geoml n_jobs, sklearn n_jobs + threadpool, pynndescent)")
    rows, summary = [], []
    for n, d in sizes:
        for ds in args.datasets.split(","):
            here = run_auto(ds, n, d, args.k, args.repeats, tools, nt)
            rows += here
            by = {r["tool"]: r for r in here}
            a = by["geoml auto"]
            line = {
                "dataset": ds,
                "n": n,
                "d": d,
                "B": a["auto_budget"],
                "exact_s": by["geoml exact"]["time_s"],
                "nndescent_s": by["geoml nndescent"]["time_s"],
                "nnd_recall": by["geoml nndescent"]["recall"],
                "auto_s": a["time_s"],
                "auto_recall": a["recall"],
                "route": a["route"] + (f" ({a['n_iter']} it.)" if a["n_iter"] else ""),
                "auto/best": a["auto_over_best_geoml"],
            }
            for r in here:
                if r["tool"].startswith("sklearn"):
                    line["sklearn/auto"] = r["ratio_to_auto"]
                    line["sklearn_alg"] = r["tool"].split("(")[1].rstrip(")")
                elif r["tool"] == "pynndescent":
                    line["pynnd/auto"] = r["ratio_to_auto"]
                    line["pynnd_recall"] = r["recall"]
            summary.append(line)
            print(f"\n{ds} n={n} d={d} k={args.k} float32, median of {args.repeats}", flush=True)
            print_table(
                here,
                ["tool", "time_s", "ratio_to_auto", "recall", "route", "n_iter", "warned"],
            )
            # written after every data set, so a long run cut short keeps what it measured
            payload = {"rows": rows, "summary": summary, "threads": nt, "args": vars(args)}
            write_json("knn_auto", payload, args.out)
    print("\nsummary (times in s; ratios of medians)")
    print_table(summary, list(summary[0]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes",
        default=None,
        help="comma list of NxD (default cpu: 50000x64,200000x128; cuda: 1000000x128)",
    )
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="cpu exact")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--tools", default=None, help="default cpu: faiss,sklearn,pynndescent; cuda: cupy,torch"
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument(
        "--peer-queries",
        type=int,
        default=16384,
        help="cuda: queries the CuPy/PyTorch peers are timed on (scaled to n)",
    )
    ap.add_argument("--quick", action="store_true", help="cuda: n=200,000 by default")
    ap.add_argument(
        "--out",
        default=None,
        help="JSON path (default bench/results/knn_cpu.json or knn_cuda_<gpu>.json)",
    )
    ap.add_argument("--approx", action="store_true", help="approximate kNN section")
    ap.add_argument(
        "--datasets",
        default=None,
        help="approx: data sets (clustered, manifold, blobs: Gaussian blobs of 20,000 points; "
        "default clustered,manifold); auto: gaussian, clustered, swissroll, manifold (default "
        "gaussian,clustered,swissroll)",
    )
    ap.add_argument(
        "--auto",
        action="store_true",
        help="method='auto' section: exact / nndescent / auto against sklearn and pynndescent",
    )
    ap.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="auto: threads for every tool (default geoml's, capped by the machine's load)",
    )
    ap.add_argument(
        "--full",
        action="store_true",
        help="auto: the full grid, n in 20000,50000,100000 x d in 8,32,128 (overrides --sizes)",
    )
    ap.add_argument("--exact", action="store_true", help="approx: also time geoml's exact search")
    ap.add_argument(
        "--targets",
        default="0.9,0.95,0.98,0.99",
        help="approx: geoml target_recall values (the recall-time curve)",
    )
    ap.add_argument("--min-recall", type=float, default=0.98, help="approx: recall goal")
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="approx: seconds one configuration (one subprocess) may take before it is skipped",
    )
    ap.add_argument(
        "--hnsw-ef",
        default="16,24,32,48,64,96,128",
        help="approx: hnswlib ef values queried after one build",
    )
    ap.add_argument("--plot", default=None, help="approx: plot path (default bench/results)")
    ap.add_argument("--approx-worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.approx_worker:
        print(json.dumps(_worker(args.approx_worker, args.data, args.k, json.loads(args.params))))
        return None
    if args.auto:
        if args.sizes is None:
            args.sizes = "20000x8,20000x32,20000x128"
        if args.datasets is None:
            args.datasets = "gaussian,clustered,swissroll"
        if args.tools is None:
            args.tools = "sklearn,pynndescent"
        return main_auto(args)
    if args.approx:
        if args.datasets is None:
            args.datasets = "clustered,manifold"
        args.targets = [float(t) for t in args.targets.split(",")]
        args.hnsw_ef = [int(v) for v in args.hnsw_ef.split(",")]
        if args.sizes is None:
            args.sizes = "1000000x128"
        if args.tools is None:
            args.tools = "geoml,pynndescent,hnswlib,faiss-hnsw,faiss-ivf"
        return main_approx(args)
    if args.device == "cuda":
        if args.tools is None:
            args.tools = "cupy,torch"
        return main_cuda(args)
    if args.sizes is None:
        args.sizes = "50000x64,200000x128"
    if args.tools is None:
        args.tools = "faiss,sklearn,pynndescent"
    tools = set(args.tools.split(",")) if args.tools else set()
    print(machine())
    all_rows = []
    for size in args.sizes.split(","):
        n, d = (int(v) for v in size.lower().split("x"))
        rows = run_size(n, d, args.k, args.repeats, tools, args.dtype)
        print(f"\nn={n} d={d} k={args.k} {args.dtype} clustered, median of {args.repeats}")
        print_table(rows, ["tool", "time_s", "ratio_to_faiss", "max_dist_err", "recall"])
        all_rows += rows
    write_json("knn_cpu", {"rows": all_rows, "args": vars(args)}, args.out)


if __name__ == "__main__":
    main()
