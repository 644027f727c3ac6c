"""The validate stage: the gate between construction and training.

Runs, and reports every failure of (lazy throughout, nothing stops at the first problem):
1. each table's pandera model (tvau/quality/schemas.py), read back from disk;
2. cross-table rules no single table can state: every video known, split disjointness (no video
   in two splits across all tables), frame counts and sizes agree with the videos table, frame
   labels agree, the consistency check's drop rate within bounds, abnormal videos per split;
3. the Great Expectations suite, which also renders the HTML Data Docs.
It reports the class balance per split and the drops of every earlier check. The report is
report.json (machine) and report.md (human) in the output directory; `passed` is the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tvau import vocab
from tvau.quality.config import QualityConfig
from tvau.quality.tables import DataQualityError, format_failures, read_table

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


def cross_table_checks(t: dict[str, pd.DataFrame], cfg: QualityConfig) -> list[dict]:
    failures: list[dict] = []
    videos = t.get("videos")
    if videos is None:
        return failures
    known = set(videos["video"])
    vinfo = videos.set_index("video")
    # every video referenced is known
    for name, df in t.items():
        if name == "videos" or "video" not in df.columns:
            continue
        unknown = sorted(set(df["video"]) - known)
        if unknown:
            _fail(failures, name, "video_known", ["video"], [f"video={v!r}" for v in unknown])
    # split disjointness across every table that carries a split
    splits = pd.concat(
        [df[["video", "split"]] for df in t.values() if {"video", "split"} <= set(df.columns)]
    ).drop_duplicates()
    multi = splits.groupby("video")["split"].nunique()
    for v in sorted(multi[multi > 1].index):
        where = sorted(splits.loc[splits["video"] == v, "split"])
        _fail(failures, "*", "split_disjoint", ["video", "split"], [f"video={v!r} in splits {where}"])
    # frames agree with the videos table
    if "frames" in t:
        fr = t["frames"]
        counts = fr.groupby("video").size()
        labels = fr.groupby("video")["label"].sum()
        bad = [
            f"video={v!r}: {counts.get(v, 0)} frame rows, num_frames={vinfo.at[v, 'num_frames']}"
            for v in sorted(known)
            if counts.get(v, 0) != vinfo.at[v, "num_frames"]
        ]
        if bad:
            _fail(failures, "frames", "frames_cover_video", ["video", "frame"], bad)
        bad = [
            f"video={v!r}: {labels.get(v, 0)} labelled frames, anomalous_frames={vinfo.at[v, 'anomalous_frames']}"
            for v in sorted(known)
            if labels.get(v, 0) != vinfo.at[v, "anomalous_frames"]
        ]
        if bad:
            _fail(failures, "frames", "labels_match_video", ["label"], bad)
    # boxes were measured in frames of the video's size, and inside its frame range
    for name in ("detections", "track_points"):
        df = t.get(name)
        if df is None or df.empty:
            continue
        j = df.join(vinfo[["width", "height", "num_frames"]], on="video", rsuffix="_video")
        bad = j[(j["width"] != j["width_video"]) | (j["height"] != j["height_video"]) | (j["frame"] >= j["num_frames"])]
        if len(bad):
            _fail(
                failures, name, "matches_video_size_and_length", ["width", "height", "frame"],
                [f"row {i} (video={r.video!r}, frame={r.frame})" for i, r in bad.head(8).iterrows()], len(bad),
            )
    # the consistency check's drop rate
    tg = t.get("targets")
    if tg is not None and len(tg):
        share = float((~tg["kept"]).mean())
        if share > cfg.max_drop_fraction:
            _fail(
                failures, "targets", "drop_fraction", ["kept", "drop_reason"],
                [f"{share:.1%} of {len(tg)} targets dropped > quality.max_drop_fraction={cfg.max_drop_fraction:.0%}"],
            )
    if cfg.min_abnormal_videos_per_split:
        per = videos[videos["is_anomalous"]].groupby("split").size()
        for s in vocab.SPLITS:
            if per.get(s, 0) < cfg.min_abnormal_videos_per_split:
                _fail(
                    failures, "videos", "abnormal_videos_per_split", ["split", "is_anomalous"],
                    [f"split={s!r}: {per.get(s, 0)} abnormal videos < {cfg.min_abnormal_videos_per_split}"],
                )
    return failures


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


def run_validation(data_dir: Path, cfg: QualityConfig, stage_stats: dict | None = None, docs: bool = True) -> dict:
    """Validate everything under data_dir/{annotations,timelines,refined}; returns the report."""
    tables: dict[str, pd.DataFrame] = {}
    failures: list[dict] = []
    for name, sub in TABLE_DIRS.items():
        try:
            tables[name] = read_table(name, data_dir / sub / f"{name}.parquet")
        except DataQualityError as exc:
            failures += exc.failures
            tables[name] = pd.read_parquet(data_dir / sub / f"{name}.parquet")  # still checked by GX
        except FileNotFoundError as exc:
            _fail(failures, name, "table_exists", [], [str(exc)])
    failures += cross_table_checks(tables, cfg)
    report: dict = {
        "failures": failures,
        "balance": class_balance(tables),
        "rows": {k: len(v) for k, v in tables.items()},
        "drops": stage_stats or {},
    }
    if docs:
        gx = run_suite_safe(tables, cfg)
        report["great_expectations"] = gx
        for name, res in gx.get("tables", {}).items():
            for f in res["failures"]:
                col = f["column"] if isinstance(f["column"], list) else [f["column"]]
                _fail(
                    failures, name, f"gx:{f['expectation']}", [str(c) for c in col],
                    [f"unexpected e.g. {', '.join(f['examples'])}"], f["unexpected_count"] or 0,
                )
    report["passed"] = not failures
    return report


def run_suite_safe(tables: dict[str, pd.DataFrame], cfg: QualityConfig) -> dict:
    from tvau.quality.suite import run_suite

    return run_suite(tables, cfg.docs_dir, cfg.suite_name)


def render_markdown(report: dict) -> str:
    lines = ["# Data-quality report", "", f"**passed: {report['passed']}**", ""]
    if report["failures"]:
        lines += ["## Failures", "", "```", format_failures(report["failures"], "tables"), "```", ""]
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
