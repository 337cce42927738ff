"""``geoml bench compare a.json b.json``: two runs of a bench side by side.

Every list of row dicts in the JSON (``rows``, ``results`` -> section -> rows, ...) is a table;
tables are paired by their path in the two files and rows by their identifying fields (strings,
integers and booleans, e.g. tool, graph, n; not ``goal``-like verdicts). For each pair of rows and
each number both carry, the two values and their ratio b/a are printed; a time (a field named
``time...`` or ending in ``_s``) that moved by more than ``--threshold`` is marked slower/faster.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

# Fields that describe a verdict or a note, not which case a row is.
_NOT_KEYS = {"note", "notes", "status", "converged", "warning", "verdict", "speedup"}
# Numeric fields that are parameters of the case (sizes, eps...), not measurements.
_PARAMS = {"n", "m", "d", "k", "N", "eps", "alpha", "t", "tol", "sigma", "rank", "batch"}
_PARAMS |= {"threads", "n_jobs", "n_threads", "dim", "size", "p", "q", "nodes"}


def _tables(obj, path=()):
    """Yield (path, rows) for every non-empty list of dicts inside ``obj``."""
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in ("machine", "args"):
                yield from _tables(v, (*path, str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _tables(v, (*path, str(i)))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _key(row: dict) -> tuple:
    """The fields that say which case a row is: its labels (strings other than verdicts such as
    ``goal_5x: met``) and its size/parameter numbers."""
    return tuple(
        (k, v)
        for k, v in row.items()
        if (
            isinstance(v, str)
            and k not in _NOT_KEYS
            and not k.startswith("goal")
            and v not in ("met", "MISSED")
        )
        or (k in _PARAMS and _is_number(v))
    )


def _index(rows: list[dict]) -> dict:
    """Rows by (key, occurrence of that key): repeated keys pair up in order."""
    out, seen = {}, {}
    for r in rows:
        k = _key(r)
        seen[k] = seen.get(k, 0) + 1
        out[(k, seen[k])] = r
    return out


def _is_time(field: str) -> bool:
    return field.startswith("time") or field.endswith("_s")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def compare(a: dict, b: dict, *, threshold: float = 0.1) -> list[dict]:
    """Matched numbers of two bench JSON payloads: a list of dicts (table, row, field, a, b,
    ratio, flag)."""
    out = []
    tables_b = dict(_tables(b))
    for path, rows_a in _tables(a):
        rows_b = tables_b.get(path)
        if rows_b is None:
            continue
        index_b = _index(rows_b)
        for (key, occ), ra in _index(rows_a).items():
            rb = index_b.get((key, occ))
            if rb is None:
                continue
            keys = dict(key)
            label = ", ".join(f"{k}={v}" if k in _PARAMS else str(v) for k, v in key)
            for field, va in ra.items():
                vb = rb.get(field)
                if not (_is_number(va) and _is_number(vb)) or field in keys:
                    continue
                ratio = vb / va if va else math.nan
                flag = ""
                if _is_time(field) and math.isfinite(ratio):
                    if ratio > 1 + threshold:
                        flag = "slower"
                    elif ratio < 1 / (1 + threshold):
                        flag = "faster"
                out.append(
                    {
                        "table": "/".join(path),
                        "row": label,
                        "field": field,
                        "a": va,
                        "b": vb,
                        "b/a": ratio,
                        "flag": flag,
                    }
                )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="geoml bench compare", description=__doc__.splitlines()[0])
    ap.add_argument("a", help="first run (JSON written by a bench)")
    ap.add_argument("b", help="second run")
    ap.add_argument(
        "--threshold", type=float, default=0.1, help="relative change of a time to flag (0.1)"
    )
    ap.add_argument("--all", action="store_true", help="show every number, not only times")
    args = ap.parse_args(argv)
    a = json.loads(Path(args.a).read_text())
    b = json.loads(Path(args.b).read_text())
    from ._harness import print_table

    ma, mb = a.get("machine", {}), b.get("machine", {})
    print("machine:")
    print_table(
        [{"fact": k, "a": ma.get(k), "b": mb.get(k)} for k in dict.fromkeys([*ma, *mb])],
        ["fact", "a", "b"],
    )
    rows = compare(a, b, threshold=args.threshold)
    shown = rows if args.all else [r for r in rows if _is_time(r["field"])]
    print()
    if not shown:
        print("no matching rows with times in the two files")
        return 0
    print_table(
        [{**r, "a": _fmt(r["a"]), "b": _fmt(r["b"])} for r in shown],
        ["table", "row", "field", "a", "b", "b/a", "flag"],
    )
    slower = sum(r["flag"] == "slower" for r in shown)
    faster = sum(r["flag"] == "faster" for r in shown)
    print(
        f"\n{len(shown)} numbers compared: {slower} slower, {faster} faster "
        f"(b against a, threshold {args.threshold:.0%})"
    )
    return 0
