"""Command line: ``geoml info`` and ``geoml demo`` (also ``python -m geoml ...``)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser: the family's options pass through
        from .bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="geoml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, compiler, threads, SIMD/BLAS and CUDA facts")
    demo = sub.add_parser("demo", help="run geoml on a generated noisy swiss roll")
    demo.add_argument("--n", type=int, default=20000, help="number of points (default 20000)")
    demo.add_argument("--k", type=int, default=10, help="neighbours per point (default 10)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--plot",
        nargs="?",
        const="geoml_demo.png",
        default=None,
        metavar="PNG",
        help="write a figure of the demo to PNG (default geoml_demo.png; needs matplotlib: "
        "without it the demo runs and says so)",
    )
    sub.add_parser(
        "bench", help="side-by-side benchmarks: geoml bench <family> [--quick] (see geoml bench -h)"
    )
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
        return 0
    from .demo import run_demo

    run_demo(n=args.n, k=args.k, seed=args.seed, plot=args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
