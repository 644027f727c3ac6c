"""Stage 1: frame-wise structured annotation (docs/method.md section 8, step 1).

Per frame and object: category, attributes (colours, clothing), inclusive box, centroid, 3x3
region, and whether it overlaps the anomaly mask. Writes three tables into one directory:
videos.parquet, frames.parquet, detections.parquet (tvau/quality/schemas.py documents them).
"""

from __future__ import annotations

import hashlib
import json
from itertools import repeat

import pandas as pd
from tqdm import tqdm

from tvau import vocab
from tvau.construct.annotators import Annotator, FrameInput
from tvau.construct.config import ConstructConfig
from tvau.data.record import VideoRecord

# Reader split names -> ours (readers already use these; kept for tolerance of "training").
_SPLIT_ALIASES = {"training": "train", "val": "validation", "testing": "test"}


def assign_split(name: str, split: str | None, cfg: ConstructConfig) -> str:
    """The reader's split when it has one, else a stable hash of the name decides, so a video
    always lands in the same split whatever else is in the data set."""
    if split:
        split = _SPLIT_ALIASES.get(split, split)
        if split not in vocab.SPLITS:
            raise ValueError(f"video {name!r}: unknown split {split!r} (expected {vocab.SPLITS})")
        return split
    u = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < cfg.test_fraction:
        return "test"
    if u < cfg.test_fraction + cfg.val_fraction:
        return "validation"
    return "train"


def annotate_video(rec: VideoRecord, annotator: Annotator) -> tuple[list[dict], list[dict]]:
    """(frame rows, detection rows) of one video, streaming its maps, masks and frames."""
    maps = rec.iter_object_maps()
    masks = rec.iter_anomaly_masks()
    images = rec.iter_frames() if annotator.needs_images else repeat(None)
    frame_rows, det_rows = [], []
    n = 0
    for f, (id_map, anomaly, image) in enumerate(zip(maps, masks, images)):
        if id_map.shape != (rec.height, rec.width):
            raise ValueError(
                f"{rec.source}: frame {f} object map is {id_map.shape}, the video is "
                f"{rec.height}x{rec.width}"
            )
        objs = annotator.annotate(FrameInput(rec.name, f, id_map, anomaly.astype(bool), image))
        for o in objs:
            det_rows.append(
                {
                    "video": rec.name,
                    "frame": f,
                    "object_id": int(o["object_id"]),
                    "category": o["category"],
                    "colors": json.dumps(o["colors"], sort_keys=True),
                    "clothing": o["clothing"],
                    "action": o["action"],
                    "x1": o["x1"], "y1": o["y1"], "x2": o["x2"], "y2": o["y2"],
                    "width": rec.width,
                    "height": rec.height,
                    "cx": float(o["cx"]),
                    "cy": float(o["cy"]),
                    "area": int(o["area"]),
                    "region": vocab.region_of(o["cx"], o["cy"], rec.width, rec.height),
                    "anomalous": bool(o["anomalous"]),
                    "annotator": annotator.name,
                }
            )
        label = int(rec.frame_labels[f]) if f < len(rec.frame_labels) else 0
        frame_rows.append({"video": rec.name, "frame": f, "label": label, "num_objects": len(objs)})
        n += 1
    if n != rec.num_frames:
        raise ValueError(f"{rec.source}: the record says {rec.num_frames} frames, the maps hold {n}")
    return frame_rows, det_rows


def video_row(rec: VideoRecord, split: str, kind: str) -> dict:
    return {
        "video": rec.name,
        "dataset": rec.dataset,
        "split": split,
        "source": str(rec.source),
        "num_frames": int(rec.num_frames),
        "height": int(rec.height),
        "width": int(rec.width),
        "fps": float(rec.fps),
        "is_anomalous": bool(rec.is_anomalous),
        "anomalous_frames": int(rec.frame_labels.sum()),
        "anomaly_kind": kind,
    }


def annotate_dataset(
    records: list[VideoRecord],
    annotator: Annotator,
    cfg: ConstructConfig,
    kinds: dict[str, str] | None = None,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Run stage 1 over every record: {"videos", "frames", "detections"} tables."""
    kinds = kinds or {}
    videos, frames, dets = [], [], []
    for rec in tqdm(sorted(records, key=lambda r: r.name), desc="annotate", disable=not progress):
        split = assign_split(rec.name, rec.split, cfg)
        videos.append(video_row(rec, split, kinds.get(rec.name, "") if rec.is_anomalous else ""))
        fr, dr = annotate_video(rec, annotator)
        frames += fr
        dets += dr
    det_cols = [
        "video", "frame", "object_id", "category", "colors", "clothing", "action", "x1", "y1",
        "x2", "y2", "width", "height", "cx", "cy", "area", "region", "anomalous", "annotator",
    ]
    return {
        "videos": pd.DataFrame(videos),
        "frames": pd.DataFrame(frames, columns=["video", "frame", "label", "num_objects"]),
        "detections": pd.DataFrame(dets, columns=det_cols),
    }


def video_kinds(attributes) -> dict[str, str]:
    """{video: anomaly kind} from the sidecar (the first anomalous object's kind)."""
    out: dict[str, str] = {}
    for (video, _), a in sorted(attributes.items()):
        if a.anomalous and a.anomaly_kind and video not in out:
            out[video] = a.anomaly_kind
    return out
