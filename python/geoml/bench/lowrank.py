"""Benchmark of geoml.lowrank against TensorLy (Tucker) and scikit-learn (randomized SVD).

Issue 6's problems, all timed in one run (median of repeats, ratios side by side):

* ``tucker3``: 200 x 200 x 200 tensor of multilinear rank (10, 10, 10) + 1 % noise (float64);
  TensorLy ``tucker`` with ``init="svd"`` and ``init="random"`` vs every geoml method.
* ``tucker4``: 400 x 300 x 200 x 20 tensor of rank (20, 15, 10, 5) + 1 % noise (float32 by
  default: 1.9 GB instead of 3.8 GB, as TensorLy's SVD init holds several copies).
* ``svd_dense``: 20,000 x 2,000 matrix of rank 50 + noise, k = 50: geoml vs scikit-learn
  ``randomized_svd`` (both ``n_iter="auto"``).
* ``svd_sparse``: 10^6 x 10^4 sparse matrix with 10^7 non-zeros (uniform values), k = 20.

Goals (issue 6): each geoml Tucker method reaches TensorLy's relative error (within 1e-4
relative, vs the better TensorLy init) at least 3x faster than TensorLy's faster init;
randomized_svd at least 1.5x faster than scikit-learn's at the same error (1e-4 relative).

Usage: python bench/bench_lowrank.py [--quick] [--sizes tucker3,svd_dense] [--repeats 3]

Threads: every tool uses SciPy/NumPy's OpenBLAS and geoml its OpenMP threads as configured by
the environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS; both recorded in the JSON). On a
shared, loaded machine, threaded BLAS timings are erratic; ``OPENBLAS_NUM_THREADS=1
OMP_NUM_THREADS=1`` gives a stable per-core comparison.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

import geoml

from ._harness import machine, print_table, timeit, write_json

CASES = ("tucker3", "tucker4", "svd_dense", "svd_sparse")


def low_rank_tensor(shape, ranks, noise, dtype, seed=0):
    """Random orthonormal factors and Gaussian core, unit norm, plus `noise` relative noise;
    built in `dtype` throughout (the 4-way float32 tensor never exists in float64)."""
    rng = np.random.default_rng(seed)
    T = rng.standard_normal(ranks).astype(dtype)
    for n, (I, r) in enumerate(zip(shape, ranks)):
        U = np.linalg.qr(rng.standard_normal((I, r)))[0].astype(dtype)
        T = np.moveaxis(np.tensordot(U, T, axes=(1, n)), 0, n)
    T = np.ascontiguousarray(T)
    T /= np.linalg.norm(T)
    E = rng.standard_normal(shape, dtype=dtype)
    E *= noise / np.linalg.norm(E)
    T += E
    return T


def bench_tucker(name, shape, ranks, dtype, repeats, rows, tl_svd_init=True):
    from tensorly.decomposition import tucker as tl_tucker

    T = low_rank_tensor(shape, ranks, 0.01, dtype)
    label = f"{name} {'x'.join(map(str, shape))} r={ranks} {np.dtype(dtype).name}"
    print(f"\n{label}")
    big = T.size > 10**8  # one timed run each (no warm-up) for the 4-way tensor

    def err_of(core, factors):  # same (blocked, float64) error formula for every tool
        return geoml.TuckerTensor(np.asarray(core), [np.asarray(U) for U in factors]).rel_error(T)

    tl_rows = []
    for init in (["svd"] if tl_svd_init else []) + ["random"]:
        reps, warm = (1, 0) if (init == "svd" or big) else (repeats, 1)
        t, res = timeit(
            lambda: tl_tucker(T, rank=list(ranks), init=init, random_state=0),
            repeats=reps,
            warmup=warm,
        )
        tl_rows.append(
            {
                "case": name,
                "tool": "tensorly",
                "method": f"tucker init={init}",
                "time_s": t,
                "rel_error": err_of(*res),
            }
        )
        print(tl_rows[-1])
    t_fast = min(r["time_s"] for r in tl_rows)
    e_ref = min(r["rel_error"] for r in tl_rows)
    for r in tl_rows:
        r["speedup"] = t_fast / r["time_s"]
        r["err_vs_tl"] = r["rel_error"] / e_ref - 1
        rows.append(r)
    for method in ("hooi", "hosvd", "st_hosvd", "randomized"):
        t, tt = timeit(
            lambda: geoml.tucker(T, ranks, method=method, random_state=0),
            repeats=1 if big else repeats,
            warmup=0 if big else 1,
        )
        err = tt.rel_error(T)
        sp_ = t_fast / t
        rows.append(
            {
                "case": name,
                "tool": "geoml",
                "method": method,
                "time_s": t,
                "rel_error": err,
                "speedup": sp_,
                "err_vs_tl": err / e_ref - 1,
                "goal": "met" if sp_ >= 3 and err <= e_ref * (1 + 1e-4) else "MISSED",
            }
        )
        print(rows[-1])
    T = None  # free the tensor before the next case


def svd_error(A, normA2, U, s, Vt):
    """||A - U diag(s) Vt||_F / ||A||_F for orthonormal U, Vt, without forming U s Vt."""
    AV = A @ Vt.T  # (m, k)
    cross = float(np.sum(s * np.einsum("ij,ij->j", U, AV)))
    return float(np.sqrt(max(normA2 - 2 * cross + float(np.sum(s * s)), 0.0) / normA2))


def bench_svd(name, A, k, repeats, rows):
    from sklearn.utils.extmath import randomized_svd as sk_rsvd

    normA2 = float(A.multiply(A).sum()) if sp.issparse(A) else float(np.vdot(A, A))
    kind = f"sparse nnz={A.nnz:.3g}" if sp.issparse(A) else "dense"
    print(f"\n{name} {A.shape[0]}x{A.shape[1]} {kind} k={k}")
    t_sk, res_sk = timeit(lambda: sk_rsvd(A, k, random_state=0), repeats=repeats)
    print(f"sklearn {t_sk:.3f} s")
    e_sk = svd_error(A, normA2, *res_sk)
    rows.append(
        {
            "case": name,
            "tool": "sklearn",
            "method": "randomized_svd",
            "time_s": t_sk,
            "rel_error": e_sk,
            "speedup": 1.0,
            "err_vs_tl": 0.0,
        }
    )
    t, res = timeit(lambda: geoml.randomized_svd(A, k, random_state=0), repeats=repeats)
    e = svd_error(A, normA2, *res)
    rows.append(
        {
            "case": name,
            "tool": "geoml",
            "method": "randomized_svd",
            "time_s": t,
            "rel_error": e,
            "speedup": t_sk / t,
            "err_vs_tl": e / e_sk - 1,
            "goal": "met" if t_sk / t >= 1.5 and e <= e_sk * (1 + 1e-4) else "MISSED",
        }
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", default=",".join(CASES), help=f"comma-separated problems to run, from {CASES}"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small versions of every problem (a smoke test; not for the README)",
    )
    ap.add_argument(
        "--dtype4",
        default="float32",
        choices=["float32", "float64"],
        help="dtype of the 4-way tensor",
    )
    ap.add_argument(
        "--tl-svd-init",
        default="tucker3",
        choices=["all", "tucker3", "none"],
        help="where to also time TensorLy's slow init='svd' (default: 3-way only; "
        "on the 4-way tensor it takes many minutes)",
    )
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/lowrank.json)")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.sizes.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            ap.error(f"unknown problem {c!r}; choose from {CASES}")
    info = machine()
    print(
        info, {v: os.environ.get(v, "(unset)") for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    )
    rows: list[dict] = []
    q = args.quick
    t0 = time.perf_counter()
    if "tucker3" in cases:
        n = 60 if q else 200
        bench_tucker(
            "tucker3",
            (n, n, n),
            (10, 10, 10),
            np.float64,
            args.repeats,
            rows,
            args.tl_svd_init in ("all", "tucker3"),
        )
    if "tucker4" in cases:
        shape = (80, 60, 40, 20) if q else (400, 300, 200, 20)
        bench_tucker(
            "tucker4",
            shape,
            (20, 15, 10, 5),
            np.dtype(args.dtype4).type,
            args.repeats,
            rows,
            args.tl_svd_init == "all",
        )
    if "svd_dense" in cases:
        m, n, r = (4000, 400, 50) if q else (20000, 2000, 50)
        rng = np.random.default_rng(1)
        A = (rng.standard_normal((m, r)) * np.geomspace(100, 10, r)) @ rng.standard_normal((r, n))
        A += rng.standard_normal((m, n))
        bench_svd("svd_dense", A, 50, args.repeats, rows)
        del A
    if "svd_sparse" in cases:
        m, n, nnz = (10**5, 10**3, 10**6) if q else (10**6, 10**4, 10**7)
        rng = np.random.default_rng(2)  # uniform positions (duplicates summed) and values
        A = sp.csr_matrix(
            (rng.random(nnz), (rng.integers(0, m, nnz), rng.integers(0, n, nnz))), shape=(m, n)
        )
        bench_svd("svd_sparse", A, 20, args.repeats, rows)
        del A
    print()
    cols = ["case", "tool", "method", "time_s", "speedup", "rel_error", "err_vs_tl", "goal"]
    print(
        "speedup: vs TensorLy's faster init (tucker) or scikit-learn (svd); err_vs_tl: "
        "rel_error / reference rel_error - 1 (reference: better TensorLy init, or sklearn)"
    )
    print_table(rows, cols)
    print(f"total bench time {time.perf_counter() - t0:.0f} s")
    env = {v: os.environ.get(v, "(unset)") for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    write_json(
        "lowrank" if not q else "lowrank_quick",
        {"args": vars(args), "env": env, "rows": rows},
        args.out,
    )


if __name__ == "__main__":
    main()
