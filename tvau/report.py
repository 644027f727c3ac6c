"""Pictures and pages people look at: heatmap overlays, contact sheets, and an HTML report.

Everything is written atomically (temp file, then rename) so a crashed run never leaves a
half-written image or page behind.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tvau.storage import atomic_path


def overlay(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0,1] heatmap (any size; resized to the frame) over an (H, W, 3) uint8 RGB frame,
    in the JET colour map, weighted by the heat itself so cold areas show the frame unchanged."""
    h, w = frame.shape[:2]
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    weight = (alpha * heat)[..., None]
    return (frame.astype(np.float32) * (1 - weight) + colour.astype(np.float32) * weight).astype(np.uint8)


def outline(frame: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """Draw the contours of a boolean (H, W) mask on a copy of an RGB frame: ground truth stays
    readable next to a heatmap overlay, whatever the colours underneath."""
    out = np.ascontiguousarray(frame.copy())
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, 1)
    return out


def trajectories(frame: np.ndarray, tracks: Sequence[tuple[np.ndarray, bool, str]]) -> np.ndarray:
    """Object timelines drawn over a frame: the 3x3 position grid, each track's centre path
    (anomalous red, normal green) with a dot at its start and an arrow at its end, and its label.

    tracks: (points (N, 2) float x, y in frame pixels, anomalous, label)."""
    out = np.ascontiguousarray(frame.copy())
    h, w = out.shape[:2]
    for k in (1, 2):  # the grid behind the region words
        cv2.line(out, (k * w // 3, 0), (k * w // 3, h - 1), (255, 255, 255), 1)
        cv2.line(out, (0, k * h // 3), (w - 1, k * h // 3), (255, 255, 255), 1)
    for points, anomalous, label in tracks:
        pts = np.asarray(points, np.float32).round().astype(np.int32)
        if len(pts) == 0:
            continue
        colour = (230, 30, 30) if anomalous else (40, 200, 60)
        cv2.polylines(out, [pts.reshape(-1, 1, 2)], False, colour, 1 if not anomalous else 2)
        cv2.circle(out, tuple(int(v) for v in pts[0]), 3, colour, -1)
        if len(pts) > 1:
            tail, head = pts[max(0, len(pts) - 6)], pts[-1]
            length = max(1.0, float(np.hypot(*(head - tail))))
            cv2.arrowedLine(out, tuple(int(v) for v in tail), tuple(int(v) for v in head), colour, 2,
                            tipLength=min(0.6, 6.0 / length))  # a head of about 6 px whatever the step
        if label:
            x, y = (int(v) for v in pts[0])
            cv2.putText(out, label[:24], (min(x + 4, w - 90), max(y - 6, 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        colour, 1)
    return out


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str] = (), cols: int = 6) -> np.ndarray:
    """Tile equally sized RGB images in a grid, each with an optional caption strip."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    h, w = images[0].shape[:2]
    strip = 14 if labels else 0
    rows = (len(images) + cols - 1) // cols
    sheet = np.full((rows * (h + strip), min(cols, len(images)) * w, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y, x = r * (h + strip), c * w
        sheet[y + strip : y + strip + h, x : x + w] = cv2.resize(img, (w, h))
        if labels:
            cv2.putText(sheet, labels[i][:40], (x + 2, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    return sheet


def _write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError(f"{path}: could not encode image of shape {rgb.shape}")
    return _write_bytes(Path(path), buf.tobytes())


@dataclass
class Section:
    """One block of the HTML report: a heading, optional key/value table, images, free text."""

    heading: str
    table: dict[str, Any] = field(default_factory=dict)
    images: list[tuple[str, str]] = field(default_factory=list)  # (path relative to the page, caption)
    text: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (href relative to the page, text)
    rows: list[dict[str, Any]] = field(default_factory=list)  # a table with one column per key


def _cell(value: Any) -> str:
    """A value as table-cell HTML: numbers rounded, mappings as nested key/value tables, lists of
    mappings as row tables, other lists comma-separated (people read tables, not JSON)."""
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return html.escape(str(value))
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        if not value:
            return ""
        inner = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in value.items())
        return f"<table class='nested'>{inner}</table>"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            return rows_table(list(value))
        if any(isinstance(v, str) and len(v) > 40 for v in value):  # sentences: one per line
            return "<br>".join(_cell(v) for v in value)
        return html.escape(", ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in value))
    return html.escape(str(value))


def rows_table(rows: Sequence[dict[str, Any]], cls: str = "", cell_class=None) -> str:
    """A header row of the union of keys, then one row per mapping. `cell_class(key, value)` may
    return a CSS class for a cell (e.g. pass/fail colouring)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            klass = cell_class(c, v) if cell_class else None
            cells.append(f"<td class='{klass}'>{_cell(v)}</td>" if klass else f"<td>{_cell(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f" class='{html.escape(cls)}'" if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ccc;padding:2px 7px;text-align:left;"
    "vertical-align:top;font-size:14px}thead th{background:#f0f0f0}table.nested td,table.nested th{font-size:12px}"
    "figure{display:inline-block;margin:6px}img{max-width:100%}pre{margin:0}"
    ".pass{background:#dff3df;color:#145214;font-weight:bold}.fail{background:#fbdcdc;color:#8a1111;font-weight:bold}"
    ".badge{display:inline-block;padding:2px 12px;border-radius:4px;color:#fff;font-weight:bold}"
    ".badge.pass{background:#1e7b1e;color:#fff}.badge.fail{background:#b3261e;color:#fff}"
    ".front{display:grid;grid-template-columns:1fr 1fr;gap:4px 24px;border-bottom:2px solid #888;padding-bottom:8px}"
    ".front h2{font-size:17px;margin:6px 0 2px}.front .wide{grid-column:1 / span 2}.meta td,.meta th{font-size:13px}"
)


def write_html_report(path: str | Path, title: str, sections: Sequence[Section], front: str = "") -> Path:
    """A single self-contained page (images are linked by relative path). `front`: HTML shown first
    (e.g. the retrain summary from `front_page`)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        front,
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.heading)}</h2>")
        if sec.text:
            parts.append(f"<p>{html.escape(sec.text)}</p>")
        if sec.table:
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in sec.table.items())
            parts.append(f"<table>{rows}</table>")
        if sec.rows:
            parts.append(rows_table(sec.rows))
        if sec.links:
            items = "".join(f"<li><a href='{html.escape(h)}'>{html.escape(t)}</a></li>" for h, t in sec.links)
            parts.append(f"<ul>{items}</ul>")
        for src, caption in sec.images:
            parts.append(
                f"<figure><img src='{html.escape(src)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return _write_bytes(Path(path), "\n".join(parts).encode())


def _link(url: str | None, text: str | None = None) -> str:
    if not url:
        return "n/a"
    return f"<a href='{html.escape(url)}'>{html.escape(text or url)}</a>"


def front_page(summary: dict[str, Any]) -> str:
    """The screen a platform engineer reads first: verdict, links to the MLflow and Prefect runs,
    what ran (stages, times), each gate passed/failed, model against baseline. `summary` is a
    tvau.registry.pipeline.RetrainSummary as a dict (its summary.json)."""
    ok = summary.get("status") == "COMPLETED"
    gates = summary.get("gates") or {}
    verdict = "PASSED" if gates.get("passed") else ("FAILED" if gates else "NOT GATED")
    badge = f"<span class='badge {'pass' if ok else 'fail'}'>run {html.escape(str(summary.get('status')))}</span> "
    badge += f"<span class='badge {'pass' if gates.get('passed') else 'fail'}'>gates {verdict}</span>"
    champ = f"{summary.get('champion_before') or 'none'} &rarr; {summary.get('champion_after') or 'none'}"
    meta = {
        "Prefect flow run": _link(summary.get("flow_run_url"), summary.get("flow_run_id")),
        "MLflow run": _link(summary.get("mlflow_run_url"), summary.get("mlflow_run_id")),
        "model version": html.escape(str(summary.get("model_version") or "not registered")
                                     + (" (reused: same adapters, data, code and evaluation)"
                                        if summary.get("model_reused") else "")),
        "champion": champ + (" (promoted)" if summary.get("promoted") else ""),
        "wall time": f"{summary.get('seconds') or 0:.0f} s",
    }
    meta_html = "<table class='meta' id='links'>" + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in meta.items()) + "</table>"

    def status_class(key, value):
        if key in ("status", "result"):
            return "pass" if value in ("ok", "pass") else "fail"
        return None

    stages = [{"stage": s.get("name"), "status": s.get("status"),
               "seconds": "–" if s.get("seconds") is None else f"{s['seconds']:.0f}"}
              for s in summary.get("stages") or []]
    gate_rows = [{"gate": g["name"], "result": "pass" if g["passed"] else "FAIL", "value": g.get("value"),
                  "threshold": g.get("threshold")} for g in gates.get("gates") or []]
    def num(v):
        return "–" if v is None else f"{v:.3f}"

    table = [{"metric": r["metric"],
              "model [95% interval]": f"{num(r.get('model'))} [{num(r.get('model_low'))}, {num(r.get('model_high'))}]",
              "baseline": num(r.get("baseline")),
              "model - baseline": "–" if r.get("model") is None or r.get("baseline") is None
              else f"{r['model'] - r['baseline']:+.3f}",
              "holdout model": num(r.get("holdout_model")), "holdout baseline": num(r.get("holdout_baseline"))}
             for r in summary.get("metrics_table") or []]
    parts = [
        "<div class='front' id='front'>",
        f"<div class='wide'>{badge}</div>",
        (f"<div><h2>Run</h2>{meta_html}<h2>What ran</h2>"
        f"{rows_table(stages, 'stages', status_class) if stages else '<p>no stage ran</p>'}</div>"),
        f"<div><h2>Gates</h2>{rows_table(gate_rows, 'gates', status_class) if gate_rows else '<p>not gated</p>'}</div>",
        ("<div class='wide'><h2>Model vs baseline (validation, 95% interval; holdout = unseen seed)</h2>"
        f"{rows_table(table, 'versus') if table else '<p>no evaluation</p>'}</div>"),
    ]
    if summary.get("error") and not gates:
        parts.append(f"<div class='wide'><h2>Error</h2><pre>{html.escape(summary['error'][-1500:])}</pre></div>")
    parts.append("</div>")
    return "".join(parts)
