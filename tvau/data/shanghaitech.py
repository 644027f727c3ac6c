"""ShanghaiTech Campus reader (docs/method.md section 10).

    training/videos/{vid}.avi                 normal training videos (split "train")
    testing/frames/{vid}/{NNN}.jpg            test frames, 0-based (split "test")
    testing/test_frame_mask/{vid}.npy         (frames,) 0/1 frame labels
    testing/test_pixel_mask/{vid}.npy         (frames, H, W) 0/1 anomaly pixels (memory-mapped)

ShanghaiTech has no object ids: the object maps are the anomaly masks as 0/1. Tracks for
RBDC/TBDC come from a folder of public track files (`{vid}.txt`, rows track_id,frame,x1,y1,x2,y2)
when one is given; otherwise they are derived here: one track per run of consecutive frames with
anomalous pixels, each region the largest-contour box of that frame's mask (our approximation:
ShanghaiTech ships no tracks of its own). The frame rate is not stored with the frames; 24 fps
is assumed for them (the training videos carry their own).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tvau.data.errors import DatasetError
from tvau.data.record import Track, VideoRecord
from tvau.data.regions import largest_contour_box
from tvau.video import VideoError, iter_frames, probe

FRAME_FPS = 24.0  # assumed rate of the test frame folders (not stored with the dataset)
FRAME_EXTS = (".jpg", ".jpeg", ".png")


@dataclass
class ShanghaiTechVideo(VideoRecord):
    """A training video (.avi): all frames normal."""

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        yield from iter_frames(self.source, start, stop)

    def iter_object_maps(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        for _ in range(max(0, start), stop):
            yield np.zeros((self.height, self.width), np.int32)

    def iter_anomaly_masks(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        for m in self.iter_object_maps(start, stop):
            yield m.astype(bool)


@dataclass
class ShanghaiTechFrames(VideoRecord):
    """A test video stored as a folder of frames with frame and pixel masks."""

    frame_files: tuple = ()  # sorted frame image paths
    pixel_mask: Path | None = None  # the (frames, H, W) .npy

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        for t in range(max(0, start), stop):
            img = cv2.imread(str(self.frame_files[t]), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"{self.frame_files[t]}: unreadable image")
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def _masks(self) -> np.ndarray:
        if self.pixel_mask is None:
            raise DatasetError(f"{self.source}: no pixel mask for {self.name} (testing/test_pixel_mask/{self.name}.npy)")
        return np.load(self.pixel_mask, mmap_mode="r")

    def iter_anomaly_masks(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        arr = self._masks()
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        for t in range(max(0, start), stop):
            yield np.asarray(arr[t]) > 0

    def iter_object_maps(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        for m in self.iter_anomaly_masks(start, stop):
            yield m.astype(np.int32)


def _frame_index(p: Path) -> int | None:
    m = re.search(r"(\d+)$", p.stem)
    return int(m.group(1)) if m else None


def read_track_file(path: Path, num_frames: int | None = None) -> list[Track]:
    """Public track rows `track_id,frame,x1,y1,x2,y2` (inclusive boxes) -> Tracks."""
    rows: dict[int, list] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            vals = [int(float(v)) for v in re.split(r"[,\s]+", line.strip()) if v]
        except ValueError:
            vals = []
        if len(vals) != 6:
            raise DatasetError(f"{path}:{lineno}: expected 'track_id,frame,x1,y1,x2,y2', got {line.strip()!r}")
        tid, t, *box = vals
        if num_frames is not None and not 0 <= t < num_frames:
            raise DatasetError(f"{path}:{lineno}: frame {t} lies outside the video ({num_frames} frames)")
        rows.setdefault(tid, []).append((t, box))
    out = []
    for tid, items in sorted(rows.items()):
        items.sort(key=lambda r: r[0])
        out.append(Track(tid, np.array([r[0] for r in items], np.int64), np.array([r[1] for r in items], np.int64)))
    return out


def tracks_from_masks(rec: ShanghaiTechFrames) -> list[Track]:
    """One track per run of consecutive frames whose mask is non-empty (see module docstring)."""
    tracks: list[Track] = []
    cur_f: list[int] = []
    cur_b: list = []
    for t, m in enumerate(rec.iter_anomaly_masks()):
        box = largest_contour_box(m) if rec.frame_labels[t] or m.any() else None
        if box is not None:
            cur_f.append(t)
            cur_b.append(box)
        elif cur_f:
            tracks.append(Track(len(tracks) + 1, np.array(cur_f, np.int64), np.array(cur_b, np.int64)))
            cur_f, cur_b = [], []
    if cur_f:
        tracks.append(Track(len(tracks) + 1, np.array(cur_f, np.int64), np.array(cur_b, np.int64)))
    return tracks


def read_shanghaitech(root: str | Path, tracks_dir: str | Path | None = None,
                      load_tracks: bool = True) -> list[VideoRecord]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    train_dir, frames_dir = root / "training" / "videos", root / "testing" / "frames"
    if not train_dir.is_dir() and not frames_dir.is_dir():
        raise DatasetError(f"{root}: neither training/videos nor testing/frames: not a ShanghaiTech tree")
    records: list[VideoRecord] = []
    if train_dir.is_dir():
        for path in sorted(train_dir.glob("*.avi")):
            try:
                info = probe(path)
            except VideoError as exc:
                raise DatasetError(str(exc)) from None
            records.append(ShanghaiTechVideo(
                dataset="shanghaitech", name=path.stem, split="train", source=path,
                num_frames=info.num_frames, height=info.height, width=info.width, fps=info.fps,
                frame_labels=np.zeros(info.num_frames, np.uint8)))
    if frames_dir.is_dir():
        for vdir in sorted(d for d in frames_dir.iterdir() if d.is_dir()):
            files = [p for p in vdir.iterdir() if p.suffix.lower() in FRAME_EXTS]
            idx = [_frame_index(p) for p in files]
            if not files or None in idx:
                raise DatasetError(f"{vdir}: expected numbered frame images ({'/'.join(FRAME_EXTS)}), found none or unnumbered ones")
            files = [p for _, p in sorted(zip(idx, files))]
            if sorted(idx) != list(range(len(files))):
                raise DatasetError(f"{vdir}: frame numbers are not 0..{len(files) - 1} without gaps")
            first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
            if first is None:
                raise DatasetError(f"{files[0]}: unreadable image")
            fm = root / "testing" / "test_frame_mask" / f"{vdir.name}.npy"
            if not fm.is_file():
                raise DatasetError(f"{fm}: missing frame labels for test video {vdir.name}")
            try:
                labels = (np.load(fm).reshape(-1) > 0).astype(np.uint8)
            except (ValueError, OSError) as exc:
                raise DatasetError(f"{fm}: unreadable .npy: {exc}") from None
            if labels.size != len(files):
                raise DatasetError(f"{fm}: {labels.size} frame labels for {len(files)} frames in {vdir}")
            pm = root / "testing" / "test_pixel_mask" / f"{vdir.name}.npy"
            if pm.is_file():
                try:
                    shape = np.load(pm, mmap_mode="r").shape
                except (ValueError, OSError) as exc:
                    raise DatasetError(f"{pm}: unreadable .npy: {exc}") from None
                if shape != (len(files), first.shape[0], first.shape[1]):
                    raise DatasetError(f"{pm}: shape {shape}, expected {(len(files), first.shape[0], first.shape[1])}")
            rec = ShanghaiTechFrames(
                dataset="shanghaitech", name=vdir.name, split="test", source=vdir, num_frames=len(files),
                height=first.shape[0], width=first.shape[1], fps=FRAME_FPS, frame_labels=labels,
                frame_files=tuple(files), pixel_mask=pm if pm.is_file() else None)
            if load_tracks:
                tf = Path(tracks_dir) / f"{vdir.name}.txt" if tracks_dir else None
                if tf is not None and tf.is_file():
                    rec.tracks = read_track_file(tf, rec.num_frames)
                elif rec.pixel_mask is not None and labels.any():
                    rec.tracks = tracks_from_masks(rec)
            records.append(rec)
    return records
