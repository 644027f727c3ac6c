"""Run every benchmark (or those named on the command line) and print one table.

    python -m benchmarks [NAME ...] [--model MODEL_URI_OR_DIR] [--data DATASET_DIR] [--videos N] [--seed S]

--model / --data set TVAU_BENCH_MODEL / TVAU_BENCH_DATA for the benchmarks that read them (score,
cascade, night): rerun the same measurement on a better model or other footage. --videos / --seed
set TVAU_BENCH_VIDEOS / TVAU_BENCH_SEED: the size and seed of the synthetic night (night)."""

from __future__ import annotations

import importlib
import pkgutil
import sys

from rich.console import Console
from rich.table import Table

import benchmarks
from benchmarks.common import Row

OPTIONS = {"--model": "TVAU_BENCH_MODEL", "--data": "TVAU_BENCH_DATA", "--videos": "TVAU_BENCH_VIDEOS",
           "--seed": "TVAU_BENCH_SEED"}


def _options(argv: list[str]) -> list[str] | None:
    """Set the environment variables of the OPTIONS; the remaining arguments (names), or None
    after printing the problem."""
    import os

    rest = []
    it = iter(argv)
    for a in it:
        opt, eq, val = a.partition("=")
        if opt in OPTIONS:
            val = val if eq else next(it, None)
            if not val:
                print(f"{opt} needs a value", file=sys.stderr)
                return None
            os.environ[OPTIONS[opt]] = val
        else:
            rest.append(a)
    return rest


def main(argv: list[str]) -> int:
    argv = _options(argv)
    if argv is None:
        return 2
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if argv:
        unknown = [a for a in argv if f"bench_{a}" not in names and a not in names]
        if unknown:
            print(f"unknown benchmark(s): {unknown}; available: {[n[6:] for n in names]}", file=sys.stderr)
            return 2
        names = [n for n in names if n in argv or n[6:] in argv]
    table = Table(title="tvau benchmarks")
    for col in ("benchmark", "value", "unit", "target", "ok", "note"):
        table.add_column(col)
    failed = False
    for name in names:
        rows: list[Row] = importlib.import_module(f"benchmarks.{name}").run()
        for r in rows:
            failed |= r.ok is False
            ok = "" if r.ok is None else ("yes" if r.ok else "NO")
            table.add_row(r.benchmark, f"{r.value:.4g}", r.unit, r.target, ok, r.note)
    Console(width=160).print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
