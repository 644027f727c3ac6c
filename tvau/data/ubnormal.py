"""UBnormal reader (docs/method.md section 10); also reads our synthetic footage (same layout).

    Scene{N}/{video}.mp4
    Scene{N}/{video}_annotations/{video}_{frame:04d}_gt.png   object ids per frame (0 = background)
    Scene{N}/{video}_annotations/{video}_tracks.txt           abnormal: object_id,start,end (inclusive)
    Scene{N}/{video}_annotations/{video}_new_tracks.txt       if present, replaces tracks.txt
    {abnormal,normal}_{training,validation,test}_video_names.txt   split lists (optional)
    object_names.csv                                           video,object_id,name (optional)

Frame labels follow from the track spans; anomaly masks are the anomalous objects' pixels inside
their spans; the RBDC/TBDC tracks are the largest-contour box of each anomalous object per frame.
Frames stream from the mp4 (PyAV) and id maps from the PNGs, one frame at a time.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tvau.data.errors import DatasetError
from tvau.data.record import Track, VideoRecord
from tvau.data.regions import largest_contour_box
from tvau.video import VideoError, iter_frames, probe

NAME_RE = re.compile(r"^(abnormal|normal)_scene_(\d+)_scenario_(\d+)(_.+)?$")
SPLIT_WORDS = {"training": "train", "validation": "validation", "test": "test"}


def _natural(s: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def read_id_map(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """One object-ID PNG as (H, W) int32; a clear error if it cannot be used."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing object-ID map")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: unreadable PNG (not an image, or truncated)")
    if img.ndim == 3:
        if not all(np.array_equal(img[..., 0], img[..., k]) for k in range(1, img.shape[2])):
            raise DatasetError(f"{path}: expected a single-channel object-ID map, got {img.shape[2]} different channels")
        img = img[..., 0]
    if shape is not None and img.shape != shape:
        raise DatasetError(f"{path}: size {img.shape[1]}x{img.shape[0]} differs from the video's {shape[1]}x{shape[0]}")
    return img.astype(np.int32)


@dataclass
class UBnormalRecord(VideoRecord):
    annotations: Path | None = None  # the {video}_annotations folder
    spans: list = field(default_factory=list)  # [(object_id, start, end)] inclusive, anomalous objects

    def png(self, t: int) -> Path:
        return self.annotations / f"{self.name}_{t:04d}_gt.png"

    def _range(self, start: int, stop: int | None) -> range:
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        return range(max(0, start), stop)

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        yield from iter_frames(self.source, start, stop)

    def iter_object_maps(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        for t in self._range(start, stop):
            yield read_id_map(self.png(t), (self.height, self.width))

    def anomalous_ids(self, t: int) -> list[int]:
        return [oid for oid, s, e in self.spans if s <= t <= e]

    def iter_anomaly_masks(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        for t in self._range(start, stop):
            ids = self.anomalous_ids(t)
            if not ids:
                yield np.zeros((self.height, self.width), bool)
            else:
                yield np.isin(read_id_map(self.png(t), (self.height, self.width)), ids)


def _read_spans(path: Path, num_frames: int, video: str) -> list[tuple[int, int, int]]:
    spans = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[,\s]+", line) if p]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            vals = []
        if len(vals) != 3 or any(v != int(v) for v in vals):
            raise DatasetError(f"{path}:{lineno}: expected 'object_id,start_frame,end_frame' (integers), got {line!r}")
        oid, s, e = (int(v) for v in vals)
        if not (0 <= s <= e < num_frames):
            raise DatasetError(f"{path}:{lineno}: track row {oid},{s},{e} lies outside the video "
                               f"{video} ({num_frames} frames, valid 0..{num_frames - 1}, start <= end)")
        spans.append((oid, s, e))
    return spans


def _read_splits(folder: Path) -> dict[str, str] | None:
    files = [(folder / f"{flag}_{word}_video_names.txt", split)
             for flag in ("abnormal", "normal") for word, split in SPLIT_WORDS.items()]
    if not any(f.exists() for f, _ in files):
        return None
    out: dict[str, str] = {}
    for f, split in files:
        if not f.exists():
            continue
        for line in f.read_text().splitlines():
            name = Path(line.strip()).stem if line.strip().endswith(".mp4") else line.strip()
            if not name:
                continue
            if name in out and out[name] != split:
                raise DatasetError(f"{f}: video {name} is also listed in the {out[name]} split (splits must be disjoint)")
            out[name] = split
    return out


def read_object_names(path: Path) -> dict[str, dict[int, str]]:
    """{video: {object_id: name}} from object_names.csv; empty when the file is absent."""
    if not path.exists():
        return {}
    out: dict[str, dict[int, str]] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"video", "object_id", "name"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: expected the header 'video,object_id,name', got {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            try:
                out.setdefault(row["video"], {})[int(row["object_id"])] = row["name"]
            except (TypeError, ValueError):
                raise DatasetError(f"{path}:{lineno}: object_id must be an integer, got {row['object_id']!r}") from None
    return out


def compute_tracks(rec: UBnormalRecord) -> list[Track]:
    """RBDC/TBDC tracks: per anomalous object, the largest-contour box in each frame of its span
    where it is visible (frames where it is fully occluded have no region)."""
    per_obj: dict[int, tuple[list, list]] = {oid: ([], []) for oid, _, _ in rec.spans}
    frames = sorted({t for _, s, e in rec.spans for t in range(s, e + 1)})
    for t in frames:
        ids = read_id_map(rec.png(t), (rec.height, rec.width))
        for oid, s, e in rec.spans:
            if s <= t <= e:
                box = largest_contour_box(ids == oid)
                if box is not None:
                    per_obj[oid][0].append(t)
                    per_obj[oid][1].append(box)
    return [Track(oid, np.asarray(fr, np.int64), np.asarray(bx, np.int64).reshape(-1, 4))
            for oid, (fr, bx) in per_obj.items() if fr]


def read_ubnormal(root: str | Path, splits_dir: str | Path | None = None, load_tracks: bool = True,
                  progress: bool = False) -> list[UBnormalRecord]:
    """All videos of a UBnormal-layout tree, sorted by scene and name. Split lists are read from
    splits_dir (default: root); without any, every video has split None. load_tracks=False skips
    the per-frame PNG pass that builds the RBDC/TBDC boxes (records then have tracks=[])."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    scenes = sorted((d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"Scene\d+", d.name)),
                    key=lambda d: int(d.name[5:]))
    if not scenes:
        raise DatasetError(f"{root}: no Scene{{N}} folders: not a UBnormal-layout tree")
    splits = _read_splits(Path(splits_dir) if splits_dir else root)
    names = read_object_names(root / "object_names.csv")
    videos = [v for d in scenes for v in sorted(d.glob("*.mp4"), key=lambda p: _natural(p.name))]
    if not videos:
        raise DatasetError(f"{root}: no videos (Scene*/*.mp4)")
    it = videos
    if progress:
        from tqdm import tqdm
        it = tqdm(videos, desc="read ubnormal", unit="video")
    records = []
    for path in it:
        name = path.stem
        m = NAME_RE.match(name)
        if m is None:
            raise DatasetError(f"{path}: video name does not follow '(abnormal|normal)_scene_N_scenario_K[_suffix]'")
        adir = path.parent / f"{name}_annotations"
        if not adir.is_dir():
            raise DatasetError(f"{adir}: missing annotation folder for video {path}")
        try:
            info = probe(path)
        except VideoError as exc:
            raise DatasetError(str(exc)) from None
        present = {int(f[len(name) + 1:-7]) for f in os.listdir(adir)
                   if f.startswith(name + "_") and f.endswith("_gt.png") and f[len(name) + 1:-7].isdigit()}
        missing = [t for t in range(info.num_frames) if t not in present]
        if missing:
            raise DatasetError(f"{adir}: missing object-ID maps for {len(missing)} of {info.num_frames} frames "
                               f"(first: {name}_{missing[0]:04d}_gt.png)")
        tracks_file = adir / f"{name}_new_tracks.txt"
        if not tracks_file.exists():
            tracks_file = adir / f"{name}_tracks.txt"
        if tracks_file.exists():
            spans = _read_spans(tracks_file, info.num_frames, name)
        elif m.group(1) == "abnormal":
            raise DatasetError(f"{tracks_file}: missing tracks file for abnormal video {name}")
        else:
            spans = []
        labels = np.zeros(info.num_frames, np.uint8)
        for _, s, e in spans:
            labels[s:e + 1] = 1
        rec = UBnormalRecord(
            dataset="ubnormal", name=name, split=None if splits is None else splits.get(name),
            source=path, num_frames=info.num_frames, height=info.height, width=info.width, fps=info.fps,
            frame_labels=labels, object_names=names.get(name, {}), annotations=adir, spans=spans)
        if load_tracks:
            rec.tracks = compute_tracks(rec)
        records.append(rec)
    return records
