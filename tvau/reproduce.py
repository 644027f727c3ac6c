"""Did the main job reproduce the committed run on this machine? Bytes first, then metrics.

After `dvc repro`, the working tree's `dvc.lock` and `data/metrics/*.json` are compared with the
committed ones (git HEAD):

- **bytes**: stage by stage. A stage whose outputs changed although its command, parameters and
  dependencies are the committed ones (a dependency may differ only by being another changed
  output) changed because this machine computes differently: training on another CPU is not
  bit-identical. When every changed stage is of that kind, the tracked files are put back as
  committed (so `git status` stays clean) and this run's copies are kept beside the report. A stage
  whose code or parameters differ from the commit is a developer's change: nothing is put back.
- **metrics**: every figure of `evaluate.json` (validation and holdout, model and baseline) against
  the committed one. A figure reproduces when it lies inside the committed 95% interval, or, for a
  figure without one, within `TOLERANCE` of the committed value.

Entry point: `check(root, keep_dir)`; `section(result)` renders it for the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

TRACKED = ("dvc.lock", "data/metrics")  # what the main job writes that git tracks
EVALUATION = "data/metrics/evaluate.json"
TOLERANCE = 0.01  # a figure without an interval reproduces within this absolute difference


def _git(root: Path, *args: str) -> str | None:
    res = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return res.stdout if res.returncode == 0 else None


def _committed(root: Path, path: str) -> str | None:
    return _git(root, "show", f"HEAD:{path}")


def _outs(stage: dict) -> dict[str, str]:
    return {o["path"]: o.get("md5", "") for o in stage.get("outs") or []}


def machine_only_changes(committed: dict, current: dict) -> tuple[list[str], list[str]]:
    """(stages whose outputs changed with the committed inputs, stages changed by code, params or new
    data): from two parsed dvc.lock files. A stage counts as the machine's when its command and
    parameters are as committed and every dependency that differs is an output of a stage already
    counted as the machine's (found by repeating until nothing moves, whatever the stages' order)."""
    old, new = committed.get("stages") or {}, current.get("stages") or {}
    changed = [name for name, stage in new.items() if old.get(name) != stage]
    drifted: set[str] = set()  # output paths whose bytes differ from the commit
    machine: list[str] = []
    moved = True
    while moved:
        moved = False
        for name in changed:
            if name not in machine and _same_inputs(old.get(name), new[name], drifted):
                machine.append(name)
                drifted |= {p for p, md5 in _outs(new[name]).items() if _outs(old[name]).get(p) != md5}
                moved = True
    return machine, [name for name in changed if name not in machine]


def _same_inputs(before: dict | None, stage: dict, drifted: set[str]) -> bool:
    if before is None or before.get("cmd") != stage.get("cmd") or before.get("params") != stage.get("params"):
        return False
    deps_old = {d["path"]: d.get("md5") for d in before.get("deps") or []}
    deps_new = {d["path"]: d.get("md5") for d in stage.get("deps") or []}
    return deps_old.keys() == deps_new.keys() and all(deps_old[p] == md5 or p in drifted for p, md5 in deps_new.items())


def _figures(block: dict, prefix: str = "") -> dict[str, dict]:
    """Dotted name -> {value, low, high} of every interval-shaped figure under `block`."""
    out = {}
    for key, value in block.items():
        if isinstance(value, dict) and "value" in value and isinstance(value.get("value"), (int, float)):
            out[prefix + key] = value
        elif isinstance(value, dict) and key not in ("details", "notes"):
            out |= _figures(value, f"{prefix}{key}.")
    return out


def compare_metrics(committed: dict, current: dict) -> list[dict[str, Any]]:
    """One row per figure present in both evaluations: committed value and interval, this run's value,
    and whether it reproduces (inside the committed interval, else within TOLERANCE)."""
    old, new = _figures(committed), _figures(current)
    rows = []
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        low, high = a.get("low"), a.get("high")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            ok, rule = low <= b["value"] <= high, "inside the committed 95% interval"
        else:
            ok, rule = abs(b["value"] - a["value"]) <= TOLERANCE, f"within {TOLERANCE} of the committed value"
        rows.append({"metric": name, "committed": a["value"], "interval": [low, high], "this run": b["value"],
                     "difference": b["value"] - a["value"], "reproduced": ok, "rule": rule})
    return rows


def check(root: Path, keep_dir: Path) -> dict[str, Any]:
    """Compare the working tree with HEAD; put the tracked files back when only the machine changed
    them (keeping this run's copies under keep_dir). Returns what the report shows."""
    root = Path(root)
    lock_text = _committed(root, "dvc.lock")
    if lock_text is None:
        return {"status": "no git commit to compare with"}
    current_lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    machine, developer = machine_only_changes(yaml.safe_load(lock_text) or {}, current_lock)
    eval_text = _committed(root, EVALUATION)
    rows = []
    if eval_text and (root / EVALUATION).is_file():
        rows = compare_metrics(json.loads(eval_text), json.loads((root / EVALUATION).read_text()))
    result = {"machine_changed": machine, "developer_changed": developer, "metrics": rows,
              "reproduced": sum(r["reproduced"] for r in rows), "compared": len(rows), "restored": False}
    if developer:
        result["status"] = f"code, parameters or data changed in {', '.join(developer)}: a new run to commit"
    elif machine:
        _keep_and_restore(root, keep_dir)
        result |= {"restored": True, "kept": str(keep_dir),
                   "status": f"{', '.join(machine)} gave other bytes on this machine with the committed inputs"}
    else:
        result["status"] = "byte for byte as committed"
    return result


def _keep_and_restore(root: Path, keep_dir: Path) -> None:
    """Copy this run's tracked files to keep_dir, then check the committed ones out again."""
    keep_dir.mkdir(parents=True, exist_ok=True)
    for rel in TRACKED:
        src = root / rel
        if src.is_dir():
            shutil.copytree(src, keep_dir / rel, dirs_exist_ok=True)
        elif src.is_file():
            (keep_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, keep_dir / rel)
    _git(root, "checkout", "HEAD", "--", *TRACKED)


def section(result: dict[str, Any]):
    """The report's section: the verdict in a line, then one row per figure."""
    from tvau.report import Section

    text = f"Bytes: {result['status']}."
    if result.get("restored"):
        text += (f" dvc.lock and data/metrics were put back as committed (git status stays clean); "
                 f"this run's copies are in {result['kept']}.")
    if result.get("compared"):
        text += (f" Metrics: {result['reproduced']} of {result['compared']} figures reproduced (a figure "
                 f"reproduces inside the committed 95% interval, or within {TOLERANCE} where it has none).")
    rows = [{"metric": r["metric"], "committed": r["committed"], "interval": r["interval"],
             "this run": r["this run"], "difference": r["difference"],
             "reproduced": "yes" if r["reproduced"] else "NO"} for r in result.get("metrics") or []]
    return Section("Reproduction of the committed run", text=text, rows=rows)
