"""The nightly summary: one Parquet table and one HTML page ranking the night's videos by anomaly
score, with each video's trajectory image and the model's explanation.

Built from what is in S3 (the manifests and quarantine records of the listed inputs), not from
the run's memory, so a rerun that skipped everything produces the same summary, byte for byte,
and `put_bytes(skip_if_same=True)` then writes nothing. The page is self-contained (images inline
as data: URIs) so it renders the same from S3, from disk or linked from the Prefect artifact.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

from tvau.score import keys
from tvau.score.config import ScoreConfig
from tvau.score.core import VideoResult, _parquet_bytes
from tvau.score.s3io import get_bytes, get_json, put_bytes
from tvau.storage import atomic_path

STYLE = ("<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}"
         "td.x{max-width:420px}"
         "img{max-width:256px}.q{color:#a60}.f{color:#c00}</style></head><body>")
MAX_PICTURES = 50  # the page shows images for the top videos only; the table lists all


def _rows(client, results: Sequence[VideoResult], output_prefix: str, cfg: ScoreConfig) -> list[dict]:
    rows = []
    for r in results:
        row = {"video": r.key, "status": r.status, "max_score": None, "mean_score": None,
               "anomalous_frame_share": None, "clips": None, "escalated_clips": None, "explanation": "",
               "peak_time_s": None, "model_version": None, "reason": r.reason or "", "record": r.output or ""}
        if r.status in ("scored", "skipped") and r.output:
            m = get_json(client, r.output, cfg) or {}
            s = m.get("summary", {})
            row.update(max_score=s.get("max_score"), mean_score=s.get("mean_score"),
                       anomalous_frame_share=s.get("anomalous_frame_share"), clips=s.get("clips"),
                       escalated_clips=s.get("escalated_clips"), explanation=s.get("explanation", ""),
                       peak_time_s=s.get("peak_time_s"),
                       model_version=m.get("model", {}).get("version") or m.get("model", {}).get("digest", "")[:12])
            row["status"] = "scored"  # skipped = scored by an earlier run; the summary is the night's state
            row["reason"] = ""
        elif r.status == "quarantined" and r.output:
            rec = get_json(client, r.output, cfg) or {}
            row["reason"] = rec.get("reason", r.reason or "")
        rows.append(row)
    rank = {"scored": 0, "failed": 1, "quarantined": 2}
    rows.sort(key=lambda x: (rank.get(x["status"], 3), -(x["max_score"] or 0.0), x["video"]))
    return rows


def write_summary(client, results: Sequence[VideoResult], output_prefix: str, run_date: str, cfg: ScoreConfig,
                  local_dir: str | Path | None = None) -> dict:
    """Write `<output>/summary/<run_date>/summary.parquet` and `report.html` (only when their
    content changed); optionally a local copy of both. Returns their URIs and counts."""
    rows = _rows(client, results, output_prefix, cfg)
    cols = {k: [r[k] for r in rows] for k in rows[0]} if rows else {"video": []}
    parquet = _parquet_bytes(cols)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("scored", "skipped", "quarantined", "failed")}
    clips = sum(r["clips"] or 0 for r in rows)
    escalated = sum(r["escalated_clips"] or 0 for r in rows)
    page = _html(client, rows, output_prefix, run_date, cfg, clips, escalated)
    base = keys.join_prefix(output_prefix, "summary", keys.safe_relative(run_date))
    wrote = put_bytes(client, f"{base}/summary.parquet", parquet, cfg, "application/vnd.apache.parquet",
                      skip_if_same=True)
    wrote += put_bytes(client, f"{base}/report.html", page.encode(), cfg, "text/html", skip_if_same=True)
    out = {"summary": f"{base}/summary.parquet", "report": f"{base}/report.html", "counts": counts,
           "clips": clips, "escalated_clips": escalated, "writes": int(wrote), "rows": rows}
    if local_dir is not None:
        local = Path(local_dir)
        with atomic_path(local / "summary.parquet") as tmp:
            tmp.write_bytes(parquet)
        with atomic_path(local / "report.html") as tmp:
            tmp.write_text(page, encoding="utf-8")
        out["local_report"] = str(local / "report.html")
    return out


def _html(client, rows: list[dict], output_prefix: str, run_date: str, cfg: ScoreConfig, clips: int,
          escalated: int) -> str:
    esc = html.escape
    scored = [r for r in rows if r["status"] == "scored"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Nightly scoring {esc(run_date)}</title>",
        STYLE,
        f"<h1>Nightly scoring {esc(run_date)}</h1>",
        (f"<p>{len(scored)} videos scored, {sum(r['status'] == 'quarantined' for r in rows)} quarantined, "
         f"{sum(r['status'] == 'failed' for r in rows)} failed. Cascade: {escalated} of {clips} clips reached "
         f"the heatmap level {cfg.escalate_level} and were explained by the language model.</p>"),
        f"<p>Outputs under <code>{esc(output_prefix)}</code>. Ranked by the highest per-frame anomaly score.</p>",
        ("<table><tr><th>#</th><th>video</th><th>score</th><th>escalated clips</th><th>trajectory</th>"
         "<th>explanation</th></tr>"),
    ]
    for i, r in enumerate(scored, 1):
        img = ""
        if i <= MAX_PICTURES:
            data = get_bytes(client, r["record"].rsplit("/", 1)[0] + "/trajectory.png", cfg)
            if data:
                img = f"<img alt='trajectory' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        parts.append(
            f"<tr><td>{i}</td><td>{esc(r['video'])}<br><small>{esc(r['record'])}</small></td>"
            f"<td>{r['max_score']:.3f}</td><td>{r['escalated_clips']} / {r['clips']}</td><td>{img}</td>"
            f"<td class='x'>{esc((r['explanation'] or '(not escalated)')[:600])}</td></tr>")
    parts.append("</table>")
    bad = [r for r in rows if r["status"] != "scored"]
    if bad:
        parts.append("<h2>Not scored</h2><table><tr><th>video</th><th>status</th><th>reason</th></tr>")
        for r in bad:
            cls = "q" if r["status"] == "quarantined" else "f"
            parts.append(f"<tr class='{cls}'><td>{esc(r['video'])}</td><td>{esc(r['status'])}</td>"
                         f"<td>{esc(r['reason'])}</td></tr>")
        parts.append("</table>")
    # Lets a headless browser report how many pictures really decoded (the render check's hook).
    parts.append("<script>window.addEventListener('load',()=>{document.body.dataset.images="
                 "[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;});</script>")
    parts.append(f"<script type='application/json' id='summary'>{esc(json.dumps({'run_date': run_date}))}"
                 "</script></body></html>")
    return "\n".join(parts)
