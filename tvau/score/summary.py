"""The nightly summary: one Parquet table and one HTML page an operator reads in a minute.

The page starts with the verdict of the night (flagged videos, the calibrated threshold, drift),
then each flagged video with its anomalous spans, the keyframe at the peak with its heatmap and
path, the explanation as one sentence built from the answers' fields, and links to its overlay
video and manifest; then the normal videos (collapsed); then the quarantined and failed files
with their reasons.

Built from what is in S3 (the manifests and quarantine records of the listed inputs), not from
the run's memory, so a rerun that skipped everything produces the same summary, byte for byte,
and `put_bytes(skip_if_same=True)` then writes nothing. The page is self-contained (images inline
as data: URIs) so it renders the same from S3, from disk or linked from the Prefect artifact; its
links to a video's outputs are relative to the page's place under the output prefix.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from tvau.score import keys
from tvau.score.config import ScoreConfig
from tvau.score.core import VideoResult, _parquet_bytes
from tvau.score.explain import FIELD_COLUMNS
from tvau.score.s3io import get_bytes, get_json, put_bytes
from tvau.score.verdict import Calibration, monitor
from tvau.storage import atomic_path

STYLE = ("<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}"
         ".video{border:1px solid #c00;border-radius:6px;padding:8px 12px;margin:12px 0;display:flex;gap:16px}"
         ".video img{width:256px;flex:none}.drift{background:#fdd;padding:6px 10px;border-left:4px solid #c00}"
         ".ok{background:#efe;padding:6px 10px;border-left:4px solid #393}.q{color:#a60}.f{color:#c00}"
         ".say{font-size:1.1em}</style></head><body>")
MAX_PICTURES = 50  # keyframes inline for the top flagged videos only; the rest are listed
ROW_KEYS = ("video", "status", "verdict", "video_score", "threshold", "spans", "span_count", "explanation",
            *FIELD_COLUMNS, "answers", "max_score", "mean_score", "anomalous_frame_share", "clips",
            "escalated_clips", "peak_time_s", "model_version", "calibration_note", "reason", "record")


def _row(client, r: VideoResult, cfg: ScoreConfig) -> dict:
    """One summary row: a scored video's manifest summary, or a bad file's reason."""
    row = dict.fromkeys(ROW_KEYS)
    row.update(video=r.key, status=r.status, reason=r.reason or "", record=r.output or "", explanation="")
    if r.status in ("scored", "skipped") and r.output:
        m = get_json(client, r.output, cfg) or {}
        s = m.get("summary", {})
        row.update({k: s.get(k) for k in ("verdict", "video_score", "threshold", "max_score", "mean_score",
                                          "anomalous_frame_share", "clips", "escalated_clips", "peak_time_s",
                                          "calibration_note")})
        row.update({k: (s.get("fields") or {}).get(k) for k in FIELD_COLUMNS})
        row.update(explanation=s.get("explanation", ""), span_count=len(s.get("spans") or []),
                   spans=json.dumps(s.get("spans") or [], sort_keys=True),
                   answers=json.dumps(s.get("top_answers") or []),
                   model_version=m.get("model", {}).get("version") or m.get("model", {}).get("digest", "")[:12])
        row["status"] = "scored"  # skipped = scored by an earlier run; the summary is the night's state
        row["reason"] = ""
    elif r.status == "quarantined" and r.output:
        rec = get_json(client, r.output, cfg) or {}
        row["reason"] = rec.get("reason", r.reason or "")
    return row


def _rows(client, results: Sequence[VideoResult], cfg: ScoreConfig) -> list[dict]:
    """Flagged first (highest score first), then normal, failed, quarantined."""
    rows = [_row(client, r, cfg) for r in results]
    rank = {"anomalous": 0, "normal": 1}
    status = {"scored": 0, "failed": 1, "quarantined": 2}
    rows.sort(key=lambda x: (status.get(x["status"], 3), rank.get(x["verdict"], 2), -(x["video_score"] or 0.0),
                             x["video"]))
    return rows


def night_monitor(rows: list[dict], cal: Calibration | None, cfg: ScoreConfig) -> dict | None:
    """The night's flagged rate and score distribution against the calibration (verdict.monitor)."""
    if cal is None:
        return None
    scored = [r for r in rows if r["status"] == "scored" and r["video_score"] is not None]
    return monitor(cal, [r["video_score"] for r in scored], sum(r["verdict"] == "anomalous" for r in scored),
                   cfg.drift_min_videos, cfg.drift_max_psi, cfg.drift_min_p_value)


def write_summary(client, results: Sequence[VideoResult], output_prefix: str, run_date: str, cfg: ScoreConfig,
                  local_dir: str | Path | None = None, calibration: Calibration | None = None) -> dict:
    """Write `<output>/summary/<run_date>/summary.parquet` and `report.html` (only when their
    content changed); optionally a local copy of both. Returns their URIs, counts, the rows and the
    drift check (`monitoring`, also in the page and as summary.parquet's metadata)."""
    rows = _rows(client, results, cfg)
    mon = night_monitor(rows, calibration, cfg)
    cols = {k: [r[k] for r in rows] for k in ROW_KEYS}
    parquet = _parquet_table(cols, mon)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("scored", "skipped", "quarantined", "failed")}
    clips = sum(r["clips"] or 0 for r in rows)
    escalated = sum(r["escalated_clips"] or 0 for r in rows)
    safe_date = keys.safe_relative(run_date)
    page = _html(client, rows, output_prefix, run_date, safe_date, cfg, clips, escalated, mon)
    base = keys.join_prefix(output_prefix, "summary", safe_date)
    wrote = put_bytes(client, f"{base}/summary.parquet", parquet, cfg, "application/vnd.apache.parquet",
                      skip_if_same=True)
    wrote += put_bytes(client, f"{base}/report.html", page.encode(), cfg, "text/html", skip_if_same=True)
    out = {"summary": f"{base}/summary.parquet", "report": f"{base}/report.html", "counts": counts,
           "clips": clips, "escalated_clips": escalated, "writes": int(wrote), "rows": rows,
           "flagged": sum(r["verdict"] == "anomalous" for r in rows), "monitoring": mon}
    if local_dir is not None:
        local = Path(local_dir)
        with atomic_path(local / "summary.parquet") as tmp:
            tmp.write_bytes(parquet)
        with atomic_path(local / "report.html") as tmp:
            tmp.write_text(page, encoding="utf-8")
        out["local_report"] = str(local / "report.html")
    return out


def _parquet_table(cols: dict, mon: dict | None) -> bytes:
    """The rows, with the night's monitoring as the table's metadata (key b"tvau.monitoring")."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if mon is None:
        return _parquet_bytes(cols)
    table = pa.table(cols).replace_schema_metadata({b"tvau.monitoring": json.dumps(mon, sort_keys=True).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


# ------------------------------------------------------------------------------------ the page


def _clock(t: float | None) -> str:
    if t is None:
        return "?"
    m, s = divmod(float(t), 60)
    return f"{int(m)}:{s:04.1f}"


def _href(row: dict, output_prefix: str, depth: int, name: str) -> str:
    """A link from summary/<date>/report.html to one of the video's outputs (keys are stored
    percent-encoded, so the '%' of the key is itself encoded in the link)."""
    folder = row["record"].removeprefix(output_prefix.rstrip("/") + "/").rsplit("/", 1)[0]
    return "../" * depth + quote(folder, safe="/-_.~") + "/" + name


def _monitor_html(mon: dict | None) -> str:
    esc = html.escape
    if mon is None:
        return "<p class='drift'>No calibration was given to the summary: drift not checked.</p>"
    rate = "n/a" if mon["flag_rate"] is None else f"{mon['flag_rate']:.1%}"
    psi = "n/a" if mon["psi"] is None else f"{mon['psi']:.2f}"
    facts = (f"flagged rate {rate} ({mon['flagged']} of {mon['videos']}); normal footage is flagged at about "
             f"{mon['expected_flag_rate']:.1%} (target {mon['target_false_alarm_rate']:.0%}); population-stability "
             f"index of the video scores against validation {psi}")
    if mon["drift"]:
        return f"<p class='drift' id='drift'><b>drift</b>: {esc('; '.join(mon['reasons']))}. {esc(facts)}.</p>"
    if not mon["judged"]:
        return f"<p class='ok' id='drift'>{esc(mon['note'])}. {esc(facts)}.</p>"
    return f"<p class='ok' id='drift'>no drift: {esc(facts)}.</p>"


def _spans_html(spans: list[dict]) -> str:
    items = [f"<li>{_clock(sp['start_s'])}&ndash;{_clock(sp['end_s'])} (frames {sp['start_frame']}&ndash;"
             f"{sp['end_frame']}), peak {sp['peak_score']:.3f} at {_clock(sp['peak_s'])}</li>" for sp in spans]
    return "<ul class='spans'>" + "".join(items) + "</ul>"


def _unexplained(r: dict) -> str:
    """Why a flagged video has no sentence: its peak clip was not asked (under score.escalate_level),
    or it was and the answers state nothing the vocabulary can read (then they are shown verbatim)."""
    turns = json.loads(r["answers"] or "[]")
    if not turns:
        return "<i>no explanation: the span's peak clip was below score.escalate_level, not asked</i>"
    said = " / ".join(f"“{t['answer']}”" for t in turns[1:]) or f"“{turns[0]['answer']}”"
    return f"<i>the answers state nothing readable:</i> {html.escape(said)}"


def _flagged_html(client, r: dict, i: int, output_prefix: str, depth: int, cfg: ScoreConfig) -> str:
    esc = html.escape
    img = ""
    if i <= MAX_PICTURES:
        data = get_bytes(client, r["record"].rsplit("/", 1)[0] + "/trajectory.png", cfg)
        if data:
            img = f"<img alt='keyframe at the peak' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
    say = esc(r["explanation"]) if r["explanation"] else _unexplained(r)
    note = f"<p class='q'>{esc(r['calibration_note'])}</p>" if r["calibration_note"] else ""
    return (f"<div class='video flagged'>{img}<div><h3>{i}. {esc(r['video'])}</h3>"
            f"<p>score {r['video_score']:.3f} &gt; threshold {r['threshold']:.3f}</p>"
            f"<p class='say'>{say}</p>{_spans_html(json.loads(r['spans']))}{note}"
            f"<p><a href='{esc(_href(r, output_prefix, depth, 'overlay.mp4'))}'>overlay.mp4</a> &middot; "
            f"<a href='{esc(_href(r, output_prefix, depth, 'manifest.json'))}'>manifest.json</a> &middot; "
            f"<small>{esc(r['record'])}</small></p></div></div>")


def _html(client, rows: list[dict], output_prefix: str, run_date: str, safe_date: str, cfg: ScoreConfig, clips: int,
          escalated: int, mon: dict | None) -> str:
    esc = html.escape
    depth = 1 + safe_date.count("/") + 1  # summary/<date>/ -> the output prefix
    flagged = [r for r in rows if r["status"] == "scored" and r["verdict"] == "anomalous"]
    normal = [r for r in rows if r["status"] == "scored" and r["verdict"] != "anomalous"]
    bad = [r for r in rows if r["status"] != "scored"]
    thr = next((r["threshold"] for r in rows if r["threshold"] is not None), None)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Nightly scoring {esc(run_date)}</title>", STYLE,
        f"<h1>Nightly scoring {esc(run_date)}</h1>",
        (f"<p class='say' id='verdict'><b>{len(flagged)} of {len(flagged) + len(normal)} videos flagged anomalous</b>"
         + (f" (per-video score above the calibrated threshold {thr:.3f})" if thr is not None else "")
         + f"; {len(bad)} not scored. The language model explained {escalated} of {clips} clips.</p>"),
        _monitor_html(mon),
        f"<h2>Flagged videos ({len(flagged)})</h2>",
    ]
    parts += [_flagged_html(client, r, i, output_prefix, depth, cfg) for i, r in enumerate(flagged, 1)] or [
        "<p>None.</p>"]
    parts.append(f"<h2>Normal videos ({len(normal)})</h2><details id='normal'><summary>{len(normal)} videos below "
                 "the threshold</summary><ul>")
    parts += [f"<li>{esc(r['video'])}: score {r['video_score']:.3f}</li>" for r in normal]
    parts.append("</ul></details>")
    parts.append(f"<h2>Quarantined and failed ({len(bad)})</h2>")
    if bad:
        parts.append("<table><tr><th>video</th><th>status</th><th>reason</th></tr>")
        for r in bad:
            cls = "q" if r["status"] == "quarantined" else "f"
            parts.append(f"<tr class='{cls}'><td>{esc(r['video'])}</td><td>{esc(r['status'])}</td>"
                         f"<td>{esc(r['reason'])}</td></tr>")
        parts.append("</table>")
    parts.append(f"<p><small>Outputs under <code>{esc(output_prefix)}</code>.</small></p>")
    # Lets a headless browser report how many pictures really decoded (the render check's hook).
    parts.append("<script>window.addEventListener('load',()=>{document.body.dataset.images="
                 "[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;});</script>")
    parts.append(f"<script type='application/json' id='summary'>{esc(json.dumps({'run_date': run_date}))}"
                 "</script></body></html>")
    return "\n".join(parts)
