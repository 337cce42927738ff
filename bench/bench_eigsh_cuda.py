"""GPU eigsh: 16 largest eigenpairs of N = D^-1/2 W D^-1/2 (the smallest of L = I - N) of kNN
graphs at 10x bench_eigsh's CPU sizes: geoml's GPU Lanczos vs cupyx.scipy.sparse.linalg.eigsh.

Graphs (float64, 0/1 union-symmetrised kNN connectivity built on the GPU with geoml.knn_graph):
  swissroll: 3-D noisy swiss roll, n = 2,000,000, 10-NN
  clustered: 64-D clustered points (bench._harness.clustered), n = 1,000,000, 15-NN
Both solvers run on the same cupyx CSR matrix N with which="LA" and tol = 1e-6; the table
shows the time (median of --repeats, device synchronised), the largest computed residual
||N u - theta u|| and the ratio cupyx time / geoml time (> 1: geoml faster). Results go to
bench/results/eigsh_cuda_<gpu>.json.

    python bench/bench_eigsh_cuda.py
    python bench/bench_eigsh_cuda.py --quick          # n = 200,000 and 100,000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import clustered, machine, print_table, timeit, write_json  # noqa: E402

K = 16
TOL = 1e-6


def normalized_adjacency(W, cp, csp):
    d = cp.asarray(W.sum(axis=1)).ravel()
    dm = csp.diags(1.0 / cp.sqrt(cp.maximum(d, 1e-300)))
    return (dm @ W @ dm).tocsr()


def residuals(N, w, U, cp):
    U = U / cp.linalg.norm(U, axis=0)
    return float(cp.linalg.norm(N @ U - U * w, axis=0).max())


def run(kind, n, repeats, cp, csp):
    import geoml
    from geoml import _spectral_gpu
    from geoml.demo import swiss_roll

    if kind == "swissroll":
        X, k = swiss_roll(n, seed=0, dtype=np.float64)[0], 10
    else:
        X, k = clustered(n, 64, seed=0, dtype="float64"), 15
    sync = cp.cuda.get_current_stream().synchronize
    t0 = time.perf_counter()
    W = geoml.knn_graph(cp.asarray(X), k, mode="connectivity")
    sync()
    t_graph = time.perf_counter() - t0
    N = normalized_adjacency(W, cp, csp)
    v0 = cp.asarray(np.random.default_rng(0).normal(size=n))
    rows = []
    t, out = timeit(lambda: _spectral_gpu.eigsh(N, K, which="LA", tol=TOL, v0=v0),
                    repeats=repeats, warmup=0, sync=sync)
    w, U, n_iter, _, conv, n_mv, _ = out
    rows.append({"solver": "geoml GPU Lanczos", "time_s": t, "max_residual": residuals(N, w, U, cp),
                 "matvecs": n_mv, "converged": conv})
    from cupyx.scipy.sparse.linalg import eigsh

    t, (w, U) = timeit(lambda: eigsh(N, k=K, which="LA", tol=TOL, v0=v0), repeats=repeats,
                       warmup=0, sync=sync)
    rows.append({"solver": "cupyx eigsh (LA)", "time_s": t, "max_residual": residuals(N, w, U, cp)})
    for r in rows:
        r.update(graph=kind, n=n, k_nn=k, ratio=r["time_s"] / rows[0]["time_s"])
    return rows, t_graph


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000000,1000000", help="swissroll n, clustered n")
    ap.add_argument("--quick", action="store_true", help="--sizes 200000,100000")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import geoml

    if not geoml._gpu.available():
        raise SystemExit("needs a visible GPU, CuPy and geoml._cuda (built with GEOML_CUDA=ON)")
    import cupy as cp
    import cupyx.scipy.sparse as csp

    name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"].decode()
    print({**machine(), "gpu": name})
    sizes = [int(s) for s in ("200000,100000" if args.quick else args.sizes).split(",")]
    all_rows = []
    for kind, n in zip(("swissroll", "clustered"), sizes):
        rows, t_graph = run(kind, n, args.repeats, cp, csp)
        print(f"\n{kind} n={n}: {K} largest of D^-1/2 W D^-1/2, tol {TOL}, {name} "
              f"(kNN graph on the GPU: {t_graph:.3g} s)")
        print_table(rows, ["solver", "time_s", "ratio", "max_residual", "matvecs", "converged"])
        all_rows += rows
    safe = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
    write_json(f"eigsh_cuda_{safe}", {"rows": all_rows, "gpu": name, "args": vars(args)},
               args.out)


if __name__ == "__main__":
    main()
