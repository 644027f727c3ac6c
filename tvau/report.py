"""Pictures and pages people look at: heatmap overlays, contact sheets, and an HTML report.

Everything is written atomically (temp file, then rename) so a crashed run never leaves a
half-written image or page behind.
"""

from __future__ import annotations

import html
import json
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


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return f"<pre>{html.escape(json.dumps(value, indent=1, default=str))}</pre>"
    return html.escape(str(value))


def write_html_report(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """A single self-contained page (images are linked by relative path)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        (
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
            "figure{display:inline-block;margin:6px}img{max-width:100%}pre{margin:0}</style></head><body>"
        ),
        f"<h1>{html.escape(title)}</h1>",
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.heading)}</h2>")
        if sec.text:
            parts.append(f"<p>{html.escape(sec.text)}</p>")
        if sec.table:
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in sec.table.items())
            parts.append(f"<table>{rows}</table>")
        if sec.links:
            items = "".join(f"<li><a href='{html.escape(h)}'>{html.escape(t)}</a></li>" for h, t in sec.links)
            parts.append(f"<ul>{items}</ul>")
        for src, caption in sec.images:
            parts.append(
                f"<figure><img src='{html.escape(src)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return _write_bytes(Path(path), "\n".join(parts).encode())
