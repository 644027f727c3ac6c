"""The validate stage: the gate between construction and training.

Runs, and reports every failure of (lazy throughout, nothing stops at the first problem):
1. each table's pandera model (tvau/quality/schemas.py), read back from disk;
2. cross-table rules no single table can state: every video known, split disjointness (no video
   in two splits across all tables), frame counts and sizes agree with the videos table, frame
   labels agree, the consistency check's drop rate within bounds, abnormal videos per split;
3. the Great Expectations suite, which also renders the HTML Data Docs.
It reports the class balance per split and the drops of every earlier check. The report is
report.json (machine) and report.md (human) in the output directory; `passed` is the verdict.

The gate fails closed: a table that cannot be read or fails its model is a failure, and every
cross-table check that needs it is listed under `not_run` instead of running on bad data (or
crashing). The report records the SHA-256 of every table it read (`inputs`), and the build stage
reads only tables whose bytes match a passing report (`read_gated_tables`), so a table edited
after validation, or a stale report, cannot let unchecked data through.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tvau import vocab
from tvau.quality.config import QualityConfig
from tvau.quality.tables import (
    DataQualityError,
    format_failures,
    load_parquet,
    read_table,
    validate,
)

TABLE_DIRS = {
    "videos": "annotations",
    "frames": "annotations",
    "detections": "annotations",
    "track_points": "timelines",
    "timelines": "timelines",
    "targets": "refined",
}


def _fail(failures: list[dict], table: str, check: str, columns: list[str], rows: list[str], n: int | None = None):
    failures.append(
        {
            "table": table,
            "check": check,
            "columns": columns,
            "num_rows": len(rows) if n is None else n,
            "rows": rows[:8],
            "failure_cases": [""] * min(len(rows), 8),
        }
    )


# Tables that carry a split column: the split-disjointness check needs every one of them.
SPLIT_TABLES = ("videos", "timelines", "targets")


def cross_table_checks(
    t: dict[str, pd.DataFrame], cfg: QualityConfig, failed: set[str] = frozenset()
) -> tuple[list[dict], list[dict]]:
    """The rules that span tables, over tables that passed their own models. A rule whose tables
    include one in `failed` (unreadable, missing or failing its model) is not run: it is returned
    in the second list, {"check", "table", "needs"}, so the report says what was not checked.
    Returns (failures, not_run)."""
    failures: list[dict] = []
    not_run: list[dict] = []

    def can_run(check: str, table: str, needs: tuple[str, ...]) -> bool:
        missing = sorted(n for n in needs if n in failed or n not in t)
        if missing:
            not_run.append({"check": check, "table": table, "needs": missing})
        return not missing

    videos = t.get("videos")
    known = set(videos["video"]) if videos is not None else set()
    vinfo = videos.set_index("video") if videos is not None else None
    # every video referenced is known
    for name in TABLE_DIRS:
        if name != "videos" and can_run("video_known", name, ("videos", name)):
            unknown = sorted(set(t[name]["video"]) - known)
            if unknown:
                _fail(failures, name, "video_known", ["video"], [f"video={v!r}" for v in unknown])
    # split disjointness across every table that carries a split
    if can_run("split_disjoint", "*", SPLIT_TABLES):
        splits = pd.concat([t[n][["video", "split"]] for n in SPLIT_TABLES]).drop_duplicates()
        multi = splits.groupby("video")["split"].nunique()
        for v in sorted(multi[multi > 1].index):
            where = sorted(splits.loc[splits["video"] == v, "split"])
            _fail(failures, "*", "split_disjoint", ["video", "split"], [f"video={v!r} in splits {where}"])
    # frames agree with the videos table
    if can_run("frames_cover_video", "frames", ("videos", "frames")):
        counts = t["frames"].groupby("video").size()
        bad = [
            f"video={v!r}: {counts.get(v, 0)} frame rows, num_frames={vinfo.at[v, 'num_frames']}"
            for v in sorted(known)
            if counts.get(v, 0) != vinfo.at[v, "num_frames"]
        ]
        if bad:
            _fail(failures, "frames", "frames_cover_video", ["video", "frame"], bad)
    if can_run("labels_match_video", "frames", ("videos", "frames")):
        labels = t["frames"].groupby("video")["label"].sum()
        bad = [
            f"video={v!r}: {labels.get(v, 0)} labelled frames, anomalous_frames={vinfo.at[v, 'anomalous_frames']}"
            for v in sorted(known)
            if labels.get(v, 0) != vinfo.at[v, "anomalous_frames"]
        ]
        if bad:
            _fail(failures, "frames", "labels_match_video", ["label"], bad)
    # boxes were measured in frames of the video's size, and inside its frame range
    for name in ("detections", "track_points"):
        if not can_run("matches_video_size_and_length", name, ("videos", name)) or t[name].empty:
            continue
        df = t[name]
        j = df.join(vinfo[["width", "height", "num_frames"]], on="video", rsuffix="_video")
        bad = j[(j["width"] != j["width_video"]) | (j["height"] != j["height_video"]) | (j["frame"] >= j["num_frames"])]
        if len(bad):
            _fail(
                failures, name, "matches_video_size_and_length", ["width", "height", "frame"],
                [f"row {i} (video={r.video!r}, frame={r.frame})" for i, r in bad.head(8).iterrows()], len(bad),
            )
    # the consistency check's drop rate
    if can_run("drop_fraction", "targets", ("targets",)) and len(t["targets"]):
        tg = t["targets"]
        share = float((~tg["kept"]).mean())
        if share > cfg.max_drop_fraction:
            _fail(
                failures, "targets", "drop_fraction", ["kept", "drop_reason"],
                [f"{share:.1%} of {len(tg)} targets dropped > quality.max_drop_fraction={cfg.max_drop_fraction:.0%}"],
            )
    if cfg.min_abnormal_videos_per_split and can_run("abnormal_videos_per_split", "videos", ("videos",)):
        per = videos[videos["is_anomalous"]].groupby("split").size()
        for s in vocab.SPLITS:
            if per.get(s, 0) < cfg.min_abnormal_videos_per_split:
                _fail(
                    failures, "videos", "abnormal_videos_per_split", ["split", "is_anomalous"],
                    [f"split={s!r}: {per.get(s, 0)} abnormal videos < {cfg.min_abnormal_videos_per_split}"],
                )
    return failures, not_run


def class_balance(t: dict[str, pd.DataFrame]) -> dict:
    """Per split: videos, abnormal videos, frames, anomalous frames and their share; targets kept."""
    out: dict = {}
    v = t.get("videos")
    if v is None:
        return out
    for s in vocab.SPLITS:
        vs = v[v["split"] == s]
        frames = int(vs["num_frames"].sum())
        anom = int(vs["anomalous_frames"].sum())
        row = {
            "videos": len(vs),
            "abnormal_videos": int(vs["is_anomalous"].sum()),
            "frames": frames,
            "anomalous_frames": anom,
            "anomalous_frame_share": round(anom / frames, 4) if frames else 0.0,
            "anomaly_kinds": {k: int(n) for k, n in vs.loc[vs["anomaly_kind"] != "", "anomaly_kind"].value_counts().sort_index().items()},
        }
        tg = t.get("targets")
        if tg is not None:
            ts = tg[tg["split"] == s]
            row["targets"] = len(ts)
            row["targets_kept"] = int(ts["kept"].sum())
        out[s] = row
    return out


def table_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / TABLE_DIRS[name] / f"{name}.parquet"


def read_stage_stats(data_dir: Path) -> tuple[dict, list[dict]]:
    """The stats.json of each construction stage (the drops the report shows); an unreadable one
    is a failure of the report, not a crash."""
    stats: dict = {}
    failures: list[dict] = []
    for sub in sorted(set(TABLE_DIRS.values())):
        f = Path(data_dir) / sub / "stats.json"
        if not f.exists():
            continue
        try:
            stats[sub] = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            _fail(failures, f"{sub}/stats.json", "readable_json", [], [f"{f}: not valid JSON: {exc}"])
    return stats, failures


def run_validation(data_dir: Path, cfg: QualityConfig, stage_stats: dict | None = None, docs: bool = True) -> dict:
    """Validate everything under data_dir/{annotations,timelines,refined}; returns the report.

    `stage_stats`: the earlier stages' drops; None reads each stage's stats.json (an unreadable
    one is a failure)."""
    tables: dict[str, pd.DataFrame] = {}  # passed their models: the cross-table checks use these
    readable: dict[str, pd.DataFrame] = {}  # could be read at all: Great Expectations sees these
    inputs: dict[str, dict] = {}
    failures: list[dict] = []
    failed: set[str] = set()
    if stage_stats is None:
        stage_stats, stats_failures = read_stage_stats(data_dir)
        failures += stats_failures
    for name in TABLE_DIRS:
        path = table_path(data_dir, name)
        try:
            raw, digest = load_parquet(name, path)
        except DataQualityError as exc:
            failures += exc.failures
            failed.add(name)
            continue
        except FileNotFoundError as exc:
            _fail(failures, name, "table_exists", [], [str(exc)])
            failed.add(name)
            continue
        inputs[name] = {"path": str(path.relative_to(data_dir)), "sha256": digest}
        readable[name] = raw
        try:
            tables[name] = validate(name, raw, where=f"{path} (read)")
        except DataQualityError as exc:
            failures += exc.failures
            failed.add(name)
    cross, not_run = cross_table_checks(tables, cfg, failed)
    failures += cross
    report: dict = {
        "failures": failures,
        "not_run": not_run,
        "balance": class_balance(tables),
        "rows": {k: len(v) for k, v in readable.items()},
        "drops": stage_stats,
        "inputs": inputs,
    }
    if docs:
        from tvau.quality.suite import run_suite

        gx = run_suite(readable, cfg.docs_dir, cfg.suite_name)
        report["great_expectations"] = gx
        for name, res in gx.get("tables", {}).items():
            for f in res["failures"]:
                col = f["column"] if isinstance(f["column"], list) else [f["column"]]
                _fail(
                    failures, name, f"gx:{f['expectation']}", [str(c) for c in col],
                    [f"unexpected e.g. {', '.join(f['examples'])}"], f["unexpected_count"] or 0,
                )
    report["passed"] = not failures and not not_run
    return report


class GateError(ValueError):
    """The quality report does not let the caller through (missing, unreadable, failed, or not
    about these tables)."""


class UnreadableReport(GateError):
    """The report file is not valid JSON (bad input rather than a verdict)."""


def load_report(path: Path) -> dict:
    """A quality report that passed, or GateError naming the file and why not."""
    path = Path(path)
    if not path.exists():
        raise GateError(f"{path}: no quality report; run `tvau quality validate` first")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableReport(f"{path}: the quality report is not valid JSON ({exc}); run `tvau quality validate` again") from None
    if not isinstance(report, dict) or report.get("passed") is not True:
        raise GateError(f"{path}: the data-quality gate failed")
    if not isinstance(report.get("inputs"), dict):
        raise GateError(f"{path}: the quality report records no table digests; run `tvau quality validate` again")
    return report


def read_gated_tables(data_dir: Path, report: dict, names: list[str], report_path: Path | str = "report") -> dict[str, pd.DataFrame]:
    """Read and validate tables, each only if its bytes are exactly those the passing `report`
    recorded (same place under data_dir, same SHA-256); otherwise GateError / StaleTableError."""
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        entry = report["inputs"].get(name)
        path = table_path(data_dir, name)
        if not isinstance(entry, dict) or entry.get("path") != str(path.relative_to(data_dir)):
            raise GateError(f"{report_path}: the quality report does not cover table '{name}' ({path})")
        out[name] = read_table(name, path, expect_sha256=entry.get("sha256"))
    return out


def render_markdown(report: dict) -> str:
    lines = ["# Data-quality report", "", f"**passed: {report['passed']}**", ""]
    if report["failures"]:
        lines += ["## Failures", "", "```", format_failures(report["failures"], "tables"), "```", ""]
    if report.get("not_run"):
        lines += ["## Checks not run (a table they need failed)", ""]
        lines += [f"- {n['check']} [{n['table']}]: needs {', '.join(n['needs'])}" for n in report["not_run"]]
        lines.append("")
    lines += ["## Class balance", "", "| split | videos | abnormal | frames | anomalous frames | share | targets kept |", "|---|---|---|---|---|---|---|"]
    for s, b in report["balance"].items():
        lines.append(
            f"| {s} | {b['videos']} | {b['abnormal_videos']} | {b['frames']} | {b['anomalous_frames']} | "
            f"{b['anomalous_frame_share']:.1%} | {b.get('targets_kept', '-')}/{b.get('targets', '-')} |"
        )
    lines += ["", "## Dropped or skipped by earlier checks", "", "```", json.dumps(report["drops"], indent=2, sort_keys=True), "```"]
    if "great_expectations" in report:
        lines += ["", f"Data Docs: {report['great_expectations'].get('docs_index')}"]
    return "\n".join(lines) + "\n"
