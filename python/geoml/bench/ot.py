"""Optimal transport bench: geoml.ot against POT, side by side in one run.

Sections (issue 4), each with the issue's goal and a met/MISSED column:
  1. n=2000 uniform problem (squared-Euclidean cost of uniform points in the unit square,
     scaled to max 1) at eps in {1e-1, 1e-2, 1e-3}: every POT Sinkhorn method (defaults:
     stopThr=1e-9, numItermax=1000; each run in a child process with a time limit) against
     geoml.ot.sinkhorn run at the marginal error that POT method reached (and at 1e-9).
     Goal: >= 5x faster than the fastest POT method reaching the same marginal error, i.e.
     every row's speedup >= 5 (a POT method over the time limit counts as its limit).
     geoml runs with n_jobs=--geoml-jobs (default: every core, as OpenBLAS does in POT's
     children): an explicit count, which geoml's load-aware default (one thread while any other
     task is runnable) does not lower; idle_seen: the idle cores that default saw (sections 1, 6).
  2. exact EMD at n=2000 and n=5000 against ot.emd (numItermax raised so POT finishes).
     Goal: no slower than ot.emd.
  3. 200,000 problems of size 16x16 (exact, and Sinkhorn at eps=1e-2) against POT in a Python
     loop (POT timed on a subset of the problems and scaled linearly to the full count).
     Goal: >= 50x faster than the loop.
  4. geoml.ot.sinkhorn_points in 3-D: converged against POT's lazy empirical_sinkhorn2 at
     --points-anchor-n points, and the time of one iteration at n=100,000 (memory O(n);
     a converged run there takes several minutes on 2 cores: --points-iters raises it).

  5. linear assignment (issue 18): geoml.ot.linear_assignment against SciPy's
     linear_sum_assignment at n=2000 (dense uniform [0, 1) costs; also integer costs in
     0..99, many ties, and a 2000 x 4000 rectangle), and linear_assignment_batched on 100
     problems of 512 x 512 against a Python loop of SciPy. Goals: >= 3x SciPy at n=2000
     (uniform), >= 5x the loop. Costs must be identical (rel_diff ~ 1e-16).
  6. symmetric scaling (issue 18): geoml.ot.sinkhorn_symmetric(C, a, eps=eps) against POT's
     ot.sinkhorn(a, a, C, eps) (stopThr=1e-9, numItermax=100000, in a child process with the
     --pot-limit) on the section-1 points used on both sides (x = y, uniform a) at
     eps in {1e-1, 1e-2}, n = --sym-n (default 2000); marginal errors measured the same way
     (L1, rows + columns, on the returned plans), the largest plan difference relative to
     max P. Goal: >= 5x POT. --sym-big-n 20000 adds the float32 kernel case: K = exp(-C / eps)
     built in float32 by row blocks (no float64 n x n array), geoml on K (peak extra memory by
     tracemalloc, in units of one n x n float32 array) against POT on the float32 cost.
  7. Sinkhorn-Newton-Sparse (issue 18): geoml.ot.sinkhorn_newton against geoml.ot.sinkhorn
     (twice: the SOR iteration the issue measured, and the Anderson-mixed default), POT's
     sinkhorn_log and regot's sinkhorn_sparse_newton / sinkhorn_ssns (when installed; cold
     start, tol on their gradient norm) on the section-1 problem, n = --newton-n (default
     2000), eps in --newton-eps (default 1e-3,1e-4), tol 1e-9; marginal errors measured the same
     way (L1, rows + columns, on the returned plans), kernel passes (geoml: builds + sweeps +
     evaluations + plan; Sinkhorn: its iterations), cost relative to POT's. Goals at eps 1e-3:
     >= 20x fewer passes and >= 3x less time than geoml.ot.sinkhorn (each variant), no slower
     than regot, cost within 1e-9 of POT's sinkhorn_log (when it finishes within the limit;
     also given: relative to geoml.ot.sinkhorn's converged cost); at 1e-4: converges
     (geoml.ot.sinkhorn is run with --newton-sinkhorn-iters and reports the error it reached).
     POT and regot run in child processes with the --pot-limit.

Usage: python bench/bench_ot.py [--quick] [--repeats R] [--sizes 2000,5000]
                                [--sections 1,2,3,4,5] [--pot-limit S] [--points-iters K]
                                [--assign-n 2000] [--assign-batch 100] [--assign-batch-n 512]
                                [--sym-n 2000] [--sym-big-n 20000]
                                [--newton-n 2000] [--newton-eps 1e-3,1e-4]
                                [--newton-sinkhorn-iters 10000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import geoml
from geoml.ot import _solvers

from ._harness import in_child, machine, print_table, timeit, write_json

POT_METHODS = [
    "sinkhorn",
    "sinkhorn_log",
    "greenkhorn",
    "sinkhorn_stabilized",
    "sinkhorn_epsilon_scaling",
]


def goal(speedup, target):
    """'met' / 'MISSED' for a speedup (a float, or a string '>X' for a lower bound)."""
    if speedup is None:
        return ""
    x = float(str(speedup).lstrip(">"))
    return "met" if x >= target else "MISSED"


def marg_err(P, a, b):
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


def _warm_median(fn, repeats, limit):
    """(median seconds, last value) of ``fn`` timed as geoml is: the median of ``repeats``
    calls after a first (cold) one that is not counted, or that cold call's time when there is
    no time for more within half of ``limit`` (one cold call in a fresh process overstated
    geoml's speed-ups)."""
    import statistics

    times = []
    while True:
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if len(times) > repeats or sum(times) + times[-1] > 0.5 * limit:
            break
    return statistics.median(times[1:] or times), out


def _pot_child(conn, method, a, b, C, eps, repeats=3, limit=25.0):
    import warnings

    import ot

    warnings.simplefilter("ignore")
    t, P = _warm_median(lambda: ot.sinkhorn(a, b, C, eps, method=method), repeats, limit)
    conn.send((t, marg_err(P, a, b), float((P * C).sum()), bool(np.isfinite(P).all())))


def pot_timed(method, a, b, C, eps, limit):
    return in_child(lambda conn: _pot_child(conn, method, a, b, C, eps, 3, limit), limit)


def uniform_problem(n, d=2, seed=0):
    import ot

    rng = np.random.default_rng(seed)
    x, y = rng.random((n, d)), rng.random((n, d))
    C = ot.dist(x, y)
    C /= C.max()
    a = np.full(n, 1.0 / n)
    return a, a.copy(), C


def section_sinkhorn(args, rows_out):
    n = args.sinkhorn_n
    a, b, C = uniform_problem(n)
    print(
        f"\n== 1. Sinkhorn, n={n}, uniform weights, sq-Euclidean cost (max 1); POT limit "
        f"{args.pot_limit:.0f} s per run"
    )
    rows = []
    for eps in args.eps:
        pot_rows = []
        for method in POT_METHODS:
            out = pot_timed(method, a, b, C, eps, args.pot_limit)
            if out is None:
                pot_rows.append(
                    dict(
                        eps=eps,
                        solver=f"POT {method}",
                        time_s=None,
                        marg_err=None,
                        cost=None,
                        note=f">{args.pot_limit:.0f}s",
                    )
                )
            else:
                t, err, cost, finite = out
                pot_rows.append(
                    dict(
                        eps=eps,
                        solver=f"POT {method}",
                        time_s=t,
                        marg_err=err,
                        cost=cost,
                        note="" if finite else "NaN in plan",
                    )
                )
        cache = {}
        idle = []  # the cores geoml's default (load-aware) thread count would have seen

        def geoml_at(tol):
            key = float(f"{tol:.2g}")
            if key not in cache:
                idle.append(geoml._core.idle_cores())
                t, res = timeit(  # warm, as POT is timed (_warm_median)
                    lambda: geoml.ot.sinkhorn(
                        a, b, C, eps, tol=key, max_iter=100000, n_jobs=args.geoml_jobs
                    ),
                    repeats=args.repeats,
                    warmup=1,
                )
                cache[key] = (t, res)
            return cache[key]

        t9, r9 = geoml_at(1e-9)
        rows.append(
            dict(
                eps=eps,
                solver="geoml sinkhorn tol=1e-9",
                time_s=t9,
                marg_err=r9.marginal_error,
                cost=r9.cost,
                n_iter=r9.n_iter,
                threads=args.geoml_jobs,
                idle_seen=min(idle),
            )
        )
        for pr in pot_rows:
            if pr["marg_err"] is not None and np.isfinite(pr["marg_err"]):
                target = max(pr["marg_err"], 1e-9)
                tg, rg = geoml_at(target)
                pr["geoml_time_same_err"] = tg
                pr["geoml_err"] = rg.marginal_error
                pr["speedup"] = pr["time_s"] / tg
            rows.append(pr)
        ok = [r["speedup"] for r in pot_rows if r.get("speedup")]
        timed_out = [r for r in pot_rows if r["time_s"] is None]
        for r in timed_out:  # geoml reached 1e-9 within t9; POT needed more than the limit
            r["speedup"] = f">{args.pot_limit / t9:.0f}"
        for r in pot_rows:
            r["goal_5x"] = goal(r.get("speedup"), 5.0)
        if ok:
            worst = min(ok)
            print(
                f"eps={eps:g}: worst-case speedup over POT methods at equal marginal error: "
                f"{worst:.1f}x (goal >= 5x: {goal(worst, 5.0)})"
            )
    print_table(
        rows,
        [
            "eps",
            "solver",
            "time_s",
            "marg_err",
            "cost",
            "n_iter",
            "threads",
            "idle_seen",
            "geoml_time_same_err",
            "geoml_err",
            "speedup",
            "goal_5x",
            "note",
        ],
    )
    rows_out["sinkhorn"] = rows


def section_emd(args, rows_out):
    import ot

    print("\n== 2. exact EMD (network simplex) vs ot.emd")
    rows = []
    for n in args.sizes:
        a, b, C = uniform_problem(n, seed=1)
        # both warmed up (one untimed call), then the median of the repeats
        tg, rg = timeit(lambda: geoml.ot.emd(a, b, C), repeats=args.repeats, warmup=1)
        tp, P = timeit(lambda: ot.emd(a, b, C, numItermax=10**8), repeats=args.repeats, warmup=1)
        cp = float((P * C).sum())
        rows.append(
            dict(
                n=n,
                geoml_s=tg,
                pot_s=tp,
                speedup=tp / tg,
                goal_1x=goal(tp / tg, 1.0),
                geoml_cost=rg.cost,
                pot_cost=cp,
                rel_diff=abs(rg.cost - cp) / cp,
                pivots=rg.n_iter,
            )
        )
    print_table(
        rows,
        [
            "n",
            "geoml_s",
            "pot_s",
            "speedup",
            "goal_1x",
            "geoml_cost",
            "pot_cost",
            "rel_diff",
            "pivots",
        ],
    )
    rows_out["emd"] = rows


def section_batched(args, rows_out):
    import ot

    B, k = args.batch, 16
    print(
        f"\n== 3. {B} problems of size {k}x{k} (random weights, sq-Euclidean cost of "
        f"2-D points scaled to max 1); POT loop timed on {args.pot_subset} (exact) and "
        f"{args.pot_sinkhorn_subset} (Sinkhorn) problems and scaled"
    )
    rng = np.random.default_rng(2)
    x, y = rng.random((B, k, 2)), rng.random((B, k, 2))
    C = ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)
    C /= C.max(axis=(1, 2), keepdims=True)
    A, Bw = rng.random((B, k)) + 0.1, rng.random((B, k)) + 0.1
    A /= A.sum(1, keepdims=True)
    Bw /= Bw.sum(1, keepdims=True)
    S = min(args.pot_subset, B)
    rows = []
    tg, rg = timeit(lambda: geoml.ot.emd_batched(A, Bw, C), repeats=args.repeats, warmup=1)
    # POT warmed up like geoml (one call of each entry point before the clock starts); its
    # loop is long, so one timed repeat
    ot.emd2(A[0], Bw[0], C[0])
    tp, cp = timeit(
        lambda: np.array([ot.emd2(A[i], Bw[i], C[i]) for i in range(S)]), repeats=1, warmup=0
    )
    tp_full = tp * B / S
    piv = [geoml.ot.emd(A[i], Bw[i], C[i]).n_iter for i in range(min(S, 2000))]
    rows.append(
        dict(
            kind="exact",
            geoml_s=tg,
            pot_loop_s=tp_full,
            speedup=tp_full / tg,
            goal_50x=goal(tp_full / tg, 50.0),
            max_rel_cost_diff=float(np.max(np.abs(rg.cost[:S] - cp) / cp)),
            per_problem_us=1e6 * tg / B,
            pivots_or_iters=float(np.mean(piv)),
        )
    )
    eps = 1e-2
    tg, rg = timeit(
        lambda: geoml.ot.sinkhorn_batched(A, Bw, C, eps), repeats=args.repeats, warmup=1
    )

    S = min(args.pot_sinkhorn_subset, B)

    def pot_loop():
        return np.array([float(ot.sinkhorn2(A[i], Bw[i], C[i], eps)) for i in range(S)])

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ot.sinkhorn2(A[0], Bw[0], C[0], eps)  # warm-up, as geoml's
        tp, cp = timeit(pot_loop, repeats=1, warmup=0)
    tp_full = tp * B / S
    rows.append(
        dict(
            kind=f"sinkhorn eps={eps:g}",
            geoml_s=tg,
            pot_loop_s=tp_full,
            speedup=tp_full / tg,
            goal_50x=goal(tp_full / tg, 50.0),
            max_rel_cost_diff=float(np.max(np.abs(rg.cost[:S] - cp) / cp)),
            per_problem_us=1e6 * tg / B,
            pivots_or_iters=float(rg.n_iter.mean()),
        )
    )
    print_table(
        rows,
        [
            "kind",
            "geoml_s",
            "pot_loop_s",
            "speedup",
            "goal_50x",
            "max_rel_cost_diff",
            "per_problem_us",
            "pivots_or_iters",
        ],
    )
    rows_out["batched"] = rows


def section_points(args, rows_out):
    import ot

    print(
        "\n== 4. sinkhorn_points (cost on the fly, O(n) memory), 3-D uniform clouds, "
        f"p=2, eps={args.points_eps:g}, tol={args.points_tol:g} (no annealing)"
    )
    rows = []
    rng = np.random.default_rng(3)
    for n in [args.points_anchor_n, args.points_n]:
        x, y = rng.random((n, 3)), rng.random((n, 3)) + [0.2, 0.0, 0.0]
        iters = 200 if n == args.points_anchor_n else args.points_iters
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the large run may stop on its iteration cap
            if n == args.points_anchor_n:  # warmed up like POT below (one untimed call)
                geoml.ot.sinkhorn_points(
                    x, y, args.points_eps, tol=args.points_tol, max_iter=iters, eps_schedule="none"
                )
            t0 = time.perf_counter()
            r = geoml.ot.sinkhorn_points(
                x, y, args.points_eps, tol=args.points_tol, max_iter=iters, eps_schedule="none"
            )
            tg = time.perf_counter() - t0
        row = dict(
            n=n,
            geoml_s=tg,
            s_per_iter=tg / r.n_iter,
            geoml_cost=r.cost,
            marg_err=r.marginal_error,
            n_iter=r.n_iter,
            converged=r.converged,
        )
        if n == args.points_anchor_n:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ot.bregman.empirical_sinkhorn2(  # warm-up, as geoml's (the same call)
                    x,
                    y,
                    args.points_eps,
                    isLazy=True,
                    batchSize=1000,
                    stopThr=args.points_tol,
                    numIterMax=200,
                )
                t0 = time.perf_counter()
                cp = float(
                    ot.bregman.empirical_sinkhorn2(
                        x,
                        y,
                        args.points_eps,
                        isLazy=True,
                        batchSize=1000,
                        stopThr=args.points_tol,
                        numIterMax=200,
                    )
                )
                tp = time.perf_counter() - t0
            row.update(pot_lazy_s=tp, pot_cost=cp, speedup=tp / tg)
        rows.append(row)
    print_table(
        rows,
        [
            "n",
            "geoml_s",
            "s_per_iter",
            "geoml_cost",
            "marg_err",
            "n_iter",
            "converged",
            "pot_lazy_s",
            "pot_cost",
            "speedup",
        ],
    )
    rows_out["points"] = rows


def section_assignment(args, rows_out):
    from scipy.optimize import linear_sum_assignment

    print("\n== 5. linear assignment vs scipy.optimize.linear_sum_assignment")
    rng = np.random.default_rng(7)
    n = args.assign_n
    rows = []
    problems = [
        ("uniform", rng.random((n, n)), 3.0),
        ("int 0..99", rng.integers(0, 100, (n, n)).astype(float), None),
        ("uniform rect", rng.random((n, 2 * n)), None),
    ]
    for name, C, target in problems:
        tg, (rg, cg) = timeit(lambda C=C: geoml.ot.linear_assignment(C), repeats=args.repeats)
        ts, (rs, cs) = timeit(lambda C=C: linear_sum_assignment(C), repeats=args.repeats)
        costg, costs = C[rg, cg].sum(), C[rs, cs].sum()
        rows.append(
            dict(
                problem=f"{name} {C.shape[0]}x{C.shape[1]}",
                geoml_s=tg,
                scipy_s=ts,
                speedup=ts / tg,
                goal=goal(ts / tg, target) if target else "",
                rel_diff=abs(costg - costs) / max(abs(costs), 1.0),
                same_pairs=bool(np.array_equal(cg, cs)),
            )
        )
    B, nb = args.assign_batch, args.assign_batch_n
    Cs = rng.random((B, nb, nb))
    tg, res = timeit(lambda: geoml.ot.linear_assignment_batched(Cs), repeats=args.repeats)
    t1, res1 = timeit(
        lambda: geoml.ot.linear_assignment_batched(Cs, n_jobs=1), repeats=args.repeats
    )
    ts, ref = timeit(lambda: [linear_sum_assignment(C) for C in Cs], repeats=args.repeats)
    ref_cost = np.array([C[r, c].sum() for C, (r, c) in zip(Cs, ref)])
    for label, t, r in (("all threads", tg, res), ("n_jobs=1", t1, res1)):
        rows.append(
            dict(
                problem=f"batched {B} x {nb}x{nb} ({label})",
                geoml_s=t,
                scipy_s=ts,
                speedup=ts / t,
                goal=goal(ts / t, 5.0) if label == "all threads" else "",
                rel_diff=float(np.max(np.abs(r.cost - ref_cost) / ref_cost)),
                same_pairs=bool(all(np.array_equal(r.col_ind[k], ref[k][1]) for k in range(B))),
            )
        )
    print_table(
        rows, ["problem", "geoml_s", "scipy_s", "speedup", "goal", "rel_diff", "same_pairs"]
    )
    rows_out["assignment"] = rows


def _pot_sym_child(conn, a, C, eps, repeats=3, limit=25.0):
    import warnings

    import ot

    warnings.simplefilter("ignore")
    conn.send(
        _warm_median(
            lambda: ot.sinkhorn(a, a, C, eps, stopThr=1e-9, numItermax=100000), repeats, limit
        )
    )


def pot_sym_timed(a, C, eps, limit):
    """(seconds, plan) of ot.sinkhorn(a, a, C, eps) in a child process, None past ``limit``."""
    return in_child(lambda conn: _pot_sym_child(conn, a, C, eps, 3, limit), limit)


def _sym_row(label, n, eps, tg, res, pot, a, limit):
    P = res.plan
    row = dict(
        problem=label,
        n=n,
        eps=eps,
        geoml_s=tg,
        n_iter=res.n_iter,
        geoml_err=marg_err(P.astype(np.float64), a, a),
    )
    if pot == "skipped":
        row.update(pot_s="skipped", speedup=None, pot_err=None, plan_diff=None)
    elif pot is None:
        row.update(pot_s=f">{limit:g}", speedup=f">{limit / tg:.1f}", pot_err=None, plan_diff=None)
    else:
        tp, Pp = pot
        row.update(
            pot_s=tp,
            speedup=tp / tg,
            pot_err=marg_err(Pp.astype(np.float64), a, a),
            plan_diff=float(np.abs(Pp - P).max() / max(float(np.abs(Pp).max()), 1e-300)),
        )
    row["goal"] = goal(row["speedup"], 5.0)
    return row


def section_symmetric(args, rows_out):
    import tracemalloc

    print("\n== 6. symmetric scaling: geoml.ot.sinkhorn_symmetric vs ot.sinkhorn(a, a, C, eps)")
    rows = []
    n = args.sym_n
    rng = np.random.default_rng(0)
    x = rng.random((n, 2))
    C = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    C /= C.max()
    a = np.full(n, 1.0 / n)
    for eps in (1e-1, 1e-2):
        idle = geoml._core.idle_cores()
        tg, res = timeit(
            lambda eps=eps: geoml.ot.sinkhorn_symmetric(
                C, a, eps=eps, tol=1e-9, n_jobs=args.geoml_jobs
            ),
            repeats=args.repeats,
        )
        pot = pot_sym_timed(a, C, eps, args.pot_limit)
        rows.append(_sym_row("cost float64", n, eps, tg, res, pot, a, args.pot_limit))
        rows[-1].update(threads=args.geoml_jobs, idle_seen=idle)
    if args.sym_big_n:
        nb, eps = args.sym_big_n, 1e-1
        xb = np.random.default_rng(1).random((nb, 2))
        sq = (xb**2).sum(1)
        K = np.empty((nb, nb), dtype=np.float32)
        C32 = np.empty((nb, nb), dtype=np.float32)
        for i0 in range(0, nb, 1000):  # float32 by row blocks: no float64 n x n array
            blk = np.maximum(
                sq[i0 : i0 + 1000, None] + sq[None, :] - 2 * xb[i0 : i0 + 1000] @ xb.T, 0
            )
            C32[i0 : i0 + 1000] = blk / 2.0  # max squared distance in the unit square
            K[i0 : i0 + 1000] = np.exp(-C32[i0 : i0 + 1000].astype(np.float64) / eps)
        C32 = np.minimum(C32, C32.T)  # exactly symmetric (rounding of the block products)
        K = np.minimum(K, K.T)
        ab = np.full(nb, 1.0 / nb)
        tracemalloc.start()
        # one cold run (no warm-up: a second plan would stay alive and count in the peak)
        tg, res = timeit(
            lambda: geoml.ot.sinkhorn_symmetric(K, ab, tol=1e-9, n_jobs=args.geoml_jobs),
            repeats=1,
            warmup=0,
        )
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del K
        pot = pot_sym_timed(ab, C32, eps, args.pot_limit) if args.sym_big_pot else "skipped"
        row = _sym_row("kernel float32", nb, eps, tg, res, pot, ab, args.pot_limit)
        row["peak_extra_nn32"] = peak / (4.0 * nb * nb)
        rows.append(row)
    print_table(
        rows,
        [
            "problem",
            "n",
            "eps",
            "geoml_s",
            "pot_s",
            "speedup",
            "goal",
            "n_iter",
            "threads",
            "idle_seen",
            "geoml_err",
            "pot_err",
            "plan_diff",
            "peak_extra_nn32",
        ],
    )
    rows_out["symmetric"] = rows


def _newton_child(conn, solver, a, b, C, eps):
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    if solver == "POT sinkhorn_log":
        import ot

        P = ot.sinkhorn(a, b, C, eps, method="sinkhorn_log", stopThr=1e-9, numItermax=1_000_000)
        it = None
    else:
        import regot

        fn = getattr(regot, solver.split()[-1])
        res = fn(np.asfortranarray(C), a, b, eps, tol=1e-9, max_iter=10_000)
        P, it = np.asarray(res.plan), int(res.niter)
    t = time.perf_counter() - t0
    conn.send((t, marg_err(P, a, b), float((P * C).sum()), it))


def _newton_timed(solver, a, b, C, eps, limit):
    return in_child(lambda conn: _newton_child(conn, solver, a, b, C, eps), limit)


def section_newton(args, rows_out):
    """Section 7: Sinkhorn-Newton-Sparse against Sinkhorn, POT sinkhorn_log and regot."""
    n = args.newton_n
    a, b, C = uniform_problem(n)
    print(
        f"\n== 7. Sinkhorn-Newton-Sparse, n={n}, section-1 problem, tol 1e-9; POT / regot "
        f"limit {args.pot_limit:.0f} s per run"
    )
    try:
        import regot  # noqa: F401

        others = ["POT sinkhorn_log", "regot sinkhorn_sparse_newton", "regot sinkhorn_ssns"]
    except ImportError:
        others = ["POT sinkhorn_log"]
        print("(regot not installed: pip install regot)")
    rows = []
    for eps in args.newton_eps:
        tn, rn = timeit(
            lambda: geoml.ot.sinkhorn_newton(a, b, C, eps, tol=1e-9),
            repeats=args.repeats,
            warmup=0,
        )
        rows.append(
            dict(
                eps=eps,
                solver="geoml sinkhorn_newton",
                time_s=tn,
                marg_err=rn.marginal_error,
                cost=rn.cost,
                passes=rn.n_passes,
                n_iter=rn.n_iter,
                n_cg=rn.n_cg,
                converged=rn.converged,
            )
        )
        iters = args.newton_sinkhorn_iters if eps < 1e-3 else 1_000_000
        # "today's Sinkhorn" of issue 18 is the SOR iteration (anderson=False); the default
        # sinkhorn mixes (Anderson, session 19) and needs about half the passes
        sk_rows = {}
        for label, anderson in (("geoml sinkhorn (SOR)", False), ("geoml sinkhorn", True)):
            ts, rs = timeit(
                lambda: _solvers._sinkhorn(
                    a,
                    b,
                    C,
                    eps,
                    -1.0,
                    iters,
                    1e-9,
                    None,
                    "auto",
                    None,
                    "sinkhorn",
                    anderson=anderson,
                ),
                repeats=1 if eps < 1e-3 else args.repeats,
                warmup=0,
            )
            sk_rows[label] = dict(
                eps=eps,
                solver=label,
                time_s=ts,
                marg_err=rs.marginal_error,
                cost=rs.cost,
                passes=rs.n_iter,
                n_iter=rs.n_iter,
                converged=rs.converged,
                pass_ratio=rs.n_iter / rn.n_passes,
                speedup=ts / tn,
            )
            rows.append(sk_rows[label])
        ref_cost = None
        for solver in others:
            out = _newton_timed(solver, a, b, C, eps, args.pot_limit)
            if out is None:
                rows.append(dict(eps=eps, solver=solver, note=f">{args.pot_limit:.0f}s"))
                continue
            t, err, cost, it = out
            if solver.startswith("POT"):
                ref_cost = cost
            rows.append(
                dict(
                    eps=eps,
                    solver=solver,
                    time_s=t,
                    marg_err=err,
                    cost=cost,
                    n_iter=it,
                    converged=bool(err <= 1e-9),
                    speedup=t / tn,
                )
            )
        for r in rows:
            if r["eps"] == eps and ref_cost and r.get("cost") is not None:
                r["cost_rel_pot"] = abs(r["cost"] - ref_cost) / abs(ref_cost)
            if r["eps"] == eps and rs.converged and r.get("cost") is not None:
                r["cost_rel_sinkhorn"] = abs(r["cost"] - rs.cost) / abs(rs.cost)
        if eps >= 1e-3:
            for label, sk in sk_rows.items():
                print(
                    f"eps={eps:g}: passes {rn.n_passes} vs {label} {sk['passes']} "
                    f"({sk['pass_ratio']:.1f}x, goal >= 20x: {goal(sk['pass_ratio'], 20.0)}), "
                    f"time {sk['speedup']:.1f}x (goal >= 3x: {goal(sk['speedup'], 3.0)})"
                )
    print_table(
        rows,
        [
            "eps",
            "solver",
            "time_s",
            "marg_err",
            "cost",
            "cost_rel_pot",
            "cost_rel_sinkhorn",
            "passes",
            "n_iter",
            "n_cg",
            "converged",
            "pass_ratio",
            "speedup",
            "note",
        ],
    )
    rows_out["newton"] = rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, short limits")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="2000,5000", help="EMD sizes")
    ap.add_argument("--sections", default="1,2,3,4,5,6")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--pot-limit",
        type=float,
        default=25.0,
        help="seconds allowed to each POT Sinkhorn run of section 1",
    )
    ap.add_argument(
        "--points-iters",
        type=int,
        default=1,
        help="iterations of the n=100,000 point-cloud run (section 4)",
    )
    ap.add_argument("--assign-n", type=int, default=2000, help="section 5 problem size")
    ap.add_argument("--assign-batch", type=int, default=100, help="section 5 batch count")
    ap.add_argument("--assign-batch-n", type=int, default=512, help="section 5 batch size")
    ap.add_argument(
        "--geoml-jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="sections 1 and 6: geoml's n_jobs (default: every core, as OpenBLAS uses for "
        "POT; an explicit count, so not lowered by geoml's load-aware default; 0: that default)",
    )
    ap.add_argument("--sym-n", type=int, default=2000, help="section 6 problem size")
    ap.add_argument(
        "--sym-big-n", type=int, default=0, help="section 6 float32 kernel size (0: skip)"
    )
    ap.add_argument(
        "--sym-big-pot",
        type=int,
        default=1,
        help="section 6: also run POT at --sym-big-n (0: skip; it needs ~3 n x n float32)",
    )
    ap.add_argument("--newton-n", type=int, default=2000, help="section 7 problem size")
    ap.add_argument("--newton-eps", default="1e-3,1e-4", help="section 7 eps values")
    ap.add_argument(
        "--newton-sinkhorn-iters",
        type=int,
        default=10_000,
        help="section 7: geoml.ot.sinkhorn's budget at eps < 1e-3",
    )
    args = ap.parse_args(argv)
    args.newton_eps = [float(e) for e in args.newton_eps.split(",")]
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.sinkhorn_n = 2000
    args.eps = [1e-1, 1e-2, 1e-3]
    args.batch, args.pot_subset, args.pot_sinkhorn_subset = 200_000, 20_000, 2_000
    args.points_n, args.points_anchor_n = 100_000, 2_000
    args.points_eps, args.points_tol = 1e-1, 1e-2
    if args.quick:
        args.sinkhorn_n, args.pot_limit, args.repeats = 500, 10.0, 1
        args.sizes = [min(s, 1000) for s in args.sizes]
        args.batch, args.pot_subset, args.pot_sinkhorn_subset = 20_000, 2_000, 500
        args.points_n, args.points_anchor_n = 10_000, 1_000
        args.assign_n, args.assign_batch, args.assign_batch_n = 500, 20, 256
        args.sym_n = min(args.sym_n, 500)
        args.newton_n = min(args.newton_n, 500)
    sections = {int(s) for s in args.sections.split(",")}
    print(machine())
    out = {}
    if 1 in sections:
        section_sinkhorn(args, out)
    if 2 in sections:
        section_emd(args, out)
    if 3 in sections:
        section_batched(args, out)
    if 4 in sections:
        section_points(args, out)
    if 5 in sections:
        section_assignment(args, out)
    if 6 in sections:
        section_symmetric(args, out)
    if 7 in sections:
        section_newton(args, out)
    # The default JSON is named after the sections run (ot.json for all of them, ot_s2_5.json
    # for --sections 2,5): a partial run must not overwrite the full results.
    name = "ot"
    if sections != {int(s) for s in ap.get_default("sections").split(",")}:
        name += "_s" + "_".join(str(s) for s in sorted(sections))
    write_json(
        name + ("_quick" if args.quick else ""), {"args": vars(args), "results": out}, args.out
    )


if __name__ == "__main__":
    main()
