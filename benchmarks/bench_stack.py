"""Start-up time of `tvau stack` (PostgreSQL, S3, MLflow, Prefect, worker): cold (fresh folder:
initdb, schema migrations of MLflow and Prefect, work pool creation), no-op (second `up`), warm
(restart of an existing stack) and `down`. Each is the wall time of the real CLI command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Row

REPO = Path(__file__).resolve().parents[1]


def _timed(*args: str) -> tuple[float, dict | None]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "tvau.cli", "stack", *args], cwd=REPO, capture_output=True,
                       text=True, check=False, timeout=900)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"tvau stack {' '.join(args)} failed: {r.stderr[-2000:]}")
    return elapsed, (json.loads(r.stdout) if "--json" in args else None)


def run() -> list[Row]:
    # Not under a 0700 folder: PostgreSQL runs as an unprivileged account when we are root.
    base = Path(tempfile.mkdtemp(prefix="bench_stack_"))
    base.chmod(0o711)
    opts = ("--dir", str(base / "stack"))
    load = os.getloadavg()[0]
    rows = []
    try:
        cold, up = _timed("up", "--json", *opts)
        per = ", ".join(f"{k} {v:.0f}" for k, v in up["seconds"].items() if k != "total")
        rows.append(Row("stack up, cold (fresh folder)", cold, "s", note=f"per service (s): {per}"))
        noop, _ = _timed("up", "--json", *opts)
        rows.append(Row("stack up, already running (no-op)", noop, "s"))
        down, _ = _timed("down", *opts)
        rows.append(Row("stack down", down, "s"))
        warm, up = _timed("up", "--json", *opts)
        per = ", ".join(f"{k} {v:.0f}" for k, v in up["seconds"].items() if k != "total")
        rows.append(Row("stack up, warm (existing stack)", warm, "s", note=f"per service (s): {per}"))
    finally:
        subprocess.run([sys.executable, "-m", "tvau.cli", "stack", "down", *opts], cwd=REPO,
                       capture_output=True, check=False, timeout=300)
        shutil.rmtree(base, ignore_errors=True)
    cores = os.cpu_count()
    for r in rows:
        r.note = (r.note + "; " if r.note else "") + f"{cores} cores, load average {load:.1f} at start"
    return rows
