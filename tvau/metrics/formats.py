"""Reading the public RBDC/TBDC text formats: one file per video, the file stem is the video name.

- tracks:     rows `track_id,frame,x1,y1,x2,y2` (integers; inclusive box; 0-based frame)
- detections: rows `frame,x1,y1,x2,y2,score` (box coordinates may be fractional)

Commas separate fields (spaces around them are allowed). Blank lines and lines starting with '#'
are skipped, and a first line naming the columns (e.g. `track_id,frame,x1,y1,x2,y2`) is accepted
as a header. Anything else that is not a valid row is an error naming the file and the line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

TRACK_COLUMNS = ("track_id", "frame", "x1", "y1", "x2", "y2")
DETECTION_COLUMNS = ("frame", "x1", "y1", "x2", "y2", "score")
SUFFIXES = (".txt", ".csv")


class FormatError(ValueError):
    """A malformed tracks/detections file; the message names the file and line."""


def _parse_file(path: Path, columns: tuple[str, ...], integer: bool) -> np.ndarray:
    rows = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if not rows and [f.lower() for f in fields] == list(columns):
            continue  # header
        where = f"{path}:{lineno}"
        if len(fields) != len(columns):
            raise FormatError(
                f"{where}: expected {len(columns)} fields {','.join(columns)}, got {len(fields)}: {raw!r}"
            )
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise FormatError(f"{where}: not a number in {raw!r} (expected {','.join(columns)})") from None
        if not all(math.isfinite(v) for v in values):
            raise FormatError(f"{where}: NaN or infinite value in {raw!r}")
        if integer and not all(v == int(v) for v in values):
            raise FormatError(f"{where}: {','.join(columns)} must be integers, got {raw!r}")
        named = dict(zip(columns, values))
        if named["frame"] < 0 or named["frame"] != int(named["frame"]):
            raise FormatError(
                f"{where}: frame must be a non-negative integer, got {fields[columns.index('frame')]}"
            )
        if named["x2"] < named["x1"] or named["y2"] < named["y1"]:
            raise FormatError(f"{where}: box has x2 < x1 or y2 < y1: {raw!r}")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(columns))


def _read_dir(folder: Path, columns: tuple[str, ...], integer: bool, what: str) -> dict[str, np.ndarray]:
    if not folder.is_dir():
        raise FormatError(f"{folder}: {what} folder does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise FormatError(f"{folder}: no {what} files (*.txt or *.csv, one per video)")
    out: dict[str, np.ndarray] = {}
    for p in files:
        if p.stem in out:
            raise FormatError(f"{p}: a second {what} file for video {p.stem!r}")
        out[p.stem] = _parse_file(p, columns, integer)
    return out


def read_tracks_dir(folder: str | Path) -> dict[str, np.ndarray]:
    """video name -> (N, 6) rows track_id, frame, x1, y1, x2, y2."""
    return _read_dir(Path(folder), TRACK_COLUMNS, integer=True, what="tracks")


def read_detections_dir(folder: str | Path) -> dict[str, np.ndarray]:
    """video name -> (M, 6) rows frame, x1, y1, x2, y2, score."""
    return _read_dir(Path(folder), DETECTION_COLUMNS, integer=False, what="detections")
