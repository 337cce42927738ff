"""SPD geometry bench: geoml.spd against pyRiemann (0.12) and POT, side by side in one run.

Sections (issue 20), each with the issue's goal and a met/MISSED column:
  1. --n-matrices (default 100,000) SPD matrices of --dim x --dim (default 22 x 22), float64:
     distance to one reference matrix (affine-invariant), sqrtm, logm and the affine-invariant
     (Karcher) mean, against pyRiemann's distance_riemann, sqrtm, logm and mean_riemann.
     Goal: >= 20x faster than pyRiemann.
  2. the Bures-Wasserstein barycenter of --bw-matrices (default 1,000) matrices of --dim x
     --dim against POT's ot.gaussian.bures_wasserstein_barycenter (its fixed point at its
     default eps=1e-7, timed), both from POT's start; geoml runs its default
     (Alvarez-Esteban's fixed point, tol 1e-10). Goal: >= 10x faster than POT.

Accuracy columns: the largest difference to the anchor, relative to the largest entry (for
the BW barycenter: to POT's fixed point run to eps=1e-14, untimed; POT's default result is
~2.6e-8 from it).

Usage: python bench/bench_spd.py [--quick] [--repeats R] [--n-matrices N] [--dim n]
                                 [--bw-matrices M] [--sections 1,2] [--out PATH]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import geoml.spd as gs

from ._harness import machine, print_table, timeit, write_json


def goal(speedup, target):
    return "met" if speedup >= target else "MISSED"


def spd_batch(rng, B, n):
    """Well-conditioned SPD matrices (covariances of 4n samples + 0.1 I), as EEG covariances."""
    X = rng.standard_normal((B, n, 4 * n))
    C = X @ X.swapaxes(1, 2) / (4 * n)
    C += 0.1 * np.eye(n)
    return 0.5 * (C + C.swapaxes(1, 2))


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def section_matrices(args, rows):
    import pyriemann.utils.base as pb
    import pyriemann.utils.distance as pdist
    import pyriemann.utils.mean as pmean

    rng = np.random.default_rng(0)
    X = spd_batch(rng, args.n_matrices, args.dim)
    C = spd_batch(rng, 1, args.dim)[0]
    cases = [
        ("distance to reference", lambda: gs.distance(X, C), lambda: pdist.distance_riemann(X, C)),
        ("sqrtm", lambda: gs.sqrtm(X), lambda: pb.sqrtm(X)),
        ("logm", lambda: gs.logm(X), lambda: pb.logm(X)),
        ("mean_riemann", lambda: gs.mean_riemann(X).mean, lambda: pmean.mean_riemann(X)),
    ]
    for name, ours, theirs in cases:
        t_g, out_g = timeit(ours, repeats=args.repeats)
        # pyRiemann timed exactly as geoml: one warm-up call, then the median of the repeats
        t_p, out_p = timeit(theirs, repeats=args.repeats)
        sp = t_p / t_g
        rows.append(
            {
                "section": 1,
                "case": f"{name} ({args.n_matrices} x {args.dim}x{args.dim})",
                "geoml_s": t_g,
                "anchor": "pyRiemann",
                "anchor_s": t_p,
                "speedup": sp,
                "max_rel_diff": rel(np.asarray(out_g).reshape(np.shape(out_p)), out_p),
                "goal": ">= 20x",
                "met": goal(sp, 20),
            }
        )
        print_table(rows[-1:], list(rows[-1]))


def section_bw(args, rows):
    from ot.gaussian import bures_wasserstein_barycenter

    rng = np.random.default_rng(1)
    X = spd_batch(rng, args.bw_matrices, args.dim)
    m = np.zeros((args.bw_matrices, args.dim))
    init = np.mean(X * (1.0 / len(X)), axis=0)  # POT's start

    def pot():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bures_wasserstein_barycenter(m, X)[1]

    t_g, out_g = timeit(lambda: gs.mean_wasserstein(X, init=init).mean, repeats=args.repeats)
    t_p, _ = timeit(pot, repeats=args.repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_p = bures_wasserstein_barycenter(m, X, eps=1e-14, num_iter=5000)[1]
    sp = t_p / t_g
    rows.append(
        {
            "section": 2,
            "case": f"BW barycenter ({args.bw_matrices} x {args.dim}x{args.dim})",
            "geoml_s": t_g,
            "anchor": "POT",
            "anchor_s": t_p,
            "speedup": sp,
            "max_rel_diff": rel(out_g, out_p),
            "goal": ">= 10x",
            "met": goal(sp, 10),
        }
    )
    print_table(rows[-1:], list(rows[-1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-matrices", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=22)
    ap.add_argument("--bw-matrices", type=int, default=1000)
    ap.add_argument("--sections", default="1,2")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/spd.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_matrices, args.bw_matrices, args.repeats = 2000, 100, 1
    info = machine()
    print(info)
    rows = []
    sections = {int(s) for s in args.sections.split(",")}
    if 1 in sections:
        section_matrices(args, rows)
    if 2 in sections:
        section_bw(args, rows)
    print()
    print_table(rows, list(rows[0]))
    write_json("spd", {"args": vars(args), "rows": rows}, args.out)


if __name__ == "__main__":
    main()
