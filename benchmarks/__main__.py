"""Run every benchmark (or those named on the command line) and print one table."""

from __future__ import annotations

import importlib
import pkgutil
import sys

from rich.console import Console
from rich.table import Table

import benchmarks
from benchmarks.common import Row


def main(argv: list[str]) -> int:
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
