"""Stage 3: anomaly-focused refinement (docs/method.md section 8, step 3).

For each anomalous target (a timeline that overlaps the anomaly mask):
1. render the frames of its anomalous span with the background outside the target's anomaly
   mask Gaussian-blurred (`construct.blur_sigma`), so the describer sees the target only;
2. have the annotator describe the target again (category, colours, clothing, action);
3. check the description against what was measured: the described category against the
   object's category, the described action's motion level against the measured motion state
   over the span (tvau/construct/motion.py). Contradictory targets are dropped, never silently:
   they stay in targets.parquet with kept=False and a drop_reason, and are counted in the stats.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
from tqdm import tqdm

from tvau import vocab
from tvau.construct.annotators import Annotator, Description, TargetInput
from tvau.construct.config import ConstructConfig
from tvau.construct.motion import ACTION_LEVEL, MOTION_LEVEL, contradicts, summarise
from tvau.construct.pixels import blur_outside
from tvau.construct.sentences import ACTION_PHRASE, appearance, trajectory
from tvau.data.record import VideoRecord
from tvau.quality.schemas import table_columns


def sample_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """Up to k frames spread evenly over the given ascending frame indices."""
    if len(frames) <= k:
        return frames
    return frames[np.linspace(0, len(frames) - 1, k).round().astype(int)]


def render_target(
    rec: VideoRecord, points: pd.DataFrame, frames: np.ndarray, cfg: ConstructConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(blurred frames (K, H, W, 3) uint8, target masks (K, H, W) bool) at the given frames.

    The target mask is the anomaly mask inside the target's box in that frame, so another
    anomalous object elsewhere in the frame is blurred like the background."""
    want = {int(f): i for i, f in enumerate(frames)}
    boxes = points.set_index("frame").loc[frames, ["x1", "y1", "x2", "y2"]].to_numpy()
    lo, hi = int(frames.min()), int(frames.max()) + 1
    out_f = np.zeros((len(frames), rec.height, rec.width, 3), np.uint8)
    out_m = np.zeros((len(frames), rec.height, rec.width), bool)
    for f, img, mask in zip(range(lo, hi), rec.iter_frames(lo, hi), rec.iter_anomaly_masks(lo, hi)):
        i = want.get(f)
        if i is None:
            continue
        x1, y1, x2, y2 = boxes[i]
        keep = np.zeros_like(mask, dtype=bool)
        keep[y1 : y2 + 1, x1 : x2 + 1] = mask[y1 : y2 + 1, x1 : x2 + 1]
        out_f[i] = blur_outside(img, keep, cfg.blur_sigma, cfg.blur_dilate)
        out_m[i] = keep
    return out_f, out_m


def check(desc: Description, category: str, measured: str, cfg: ConstructConfig) -> str:
    """The cross-modal consistency verdict: "" when consistent, else the reason to drop."""
    reasons = []
    if desc.category != category:
        reasons.append(f"category: described {desc.category!r}, the object is {category!r}")
    if desc.action and desc.action not in vocab.ACTIONS:
        reasons.append(f"motion: described action {desc.action!r} is not in vocab.ACTIONS")
    elif contradicts(desc.action, measured, cfg.motion_tolerance):
        reasons.append(
            f"motion: described {desc.action!r} (level {ACTION_LEVEL[desc.action]}) but measured "
            f"{measured!r} (level {MOTION_LEVEL[measured]})"
        )
    return "; ".join(reasons)


def describe_text(desc: Description, regions: list[str], measured: str) -> str:
    """The refined, anomaly-focused description used by phase B."""
    look = appearance(desc.category if desc.category in vocab.CATEGORIES else "person", desc.colors, desc.clothing)
    doing = f" is {ACTION_PHRASE[desc.action]} and" if desc.action in ACTION_PHRASE else ""
    s = f"{look}{doing} {trajectory(regions, measured)}."
    return s[0].upper() + s[1:]


def refine_targets(
    records: dict[str, VideoRecord],
    videos: pd.DataFrame,
    timelines: pd.DataFrame,
    points: pd.DataFrame,
    annotator: Annotator,
    cfg: ConstructConfig,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """(targets table, stats). `records` maps video name -> its VideoRecord (for pixels)."""
    fps = videos.set_index("video")["fps"].to_dict()
    rows, stats = [], Counter()
    targets = timelines[timelines["anomalous"]]
    pts_by_track = dict(tuple(points.groupby(["video", "track_id"], sort=False)))
    for t in tqdm(targets.itertuples(index=False), total=len(targets), desc="refine", disable=not progress):
        rec = records.get(t.video)
        if rec is None:
            raise ValueError(f"timelines name video {t.video!r}, which the footage does not contain")
        p = pts_by_track[(t.video, t.track_id)]
        span = p[(p["frame"] >= t.anomaly_start) & (p["frame"] <= t.anomaly_end)]
        anom_frames = span.loc[span["anomalous"], "frame"].to_numpy()
        frames = sample_frames(anom_frames, cfg.refine_frames)
        imgs, masks = render_target(rec, span, frames, cfg)
        desc = annotator.describe(
            TargetInput(t.video, int(t.source_object_id), t.category, imgs, masks, [int(f) for f in frames])
        )
        m = summarise(span["frame"].to_numpy(), span[["cx", "cy"]].to_numpy(), rec.width, rec.height, fps[t.video], cfg)
        reason = check(desc, t.category, m["motion_state"], cfg)
        stats["targets"] += 1
        if reason:
            stats["dropped"] += 1
            for part in reason.split("; "):
                stats[f"dropped_{part.split(':')[0]}"] += 1
        rows.append(
            {
                "video": t.video,
                "split": t.split,
                "track_id": int(t.track_id),
                "anomaly_start": int(t.anomaly_start),
                "anomaly_end": int(t.anomaly_end),
                "category": t.category,
                "measured_motion": m["motion_state"],
                "start_region": m["start_region"],
                "end_region": m["end_region"],
                "described_category": desc.category,
                "described_colors": json.dumps(desc.colors, sort_keys=True),
                "described_clothing": desc.clothing,
                "described_action": desc.action,
                "description": describe_text(desc, m["regions"], m["motion_state"]),
                "anomaly_kind": t.anomaly_kind,
                "mask_pixels": int(masks.sum()),
                "kept": not reason,
                "drop_reason": reason,
            }
        )
    stats["kept"] = stats["targets"] - stats["dropped"]
    return pd.DataFrame(rows, columns=table_columns("targets")), dict(stats)
