"""Stage 2: object timelines (docs/method.md section 8, step 2).

Links each video's detections into tracks (tvau/construct/tracking.py), then describes each
track's evolution: regions visited in order, displacement, speed, motion state and a trajectory
sentence. Writes track_points.parquet (the linked boxes) and timelines.parquet (one row per
track). Tracks shorter than `min_track_points` are fragments: dropped and counted.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from tqdm import tqdm

from tvau.construct.config import ConstructConfig
from tvau.construct.motion import summarise
from tvau.construct.sentences import sentence
from tvau.construct.tracking import link
from tvau.quality.schemas import table_columns


def _mode(values) -> object:
    return Counter(values).most_common(1)[0][0]


def build_timelines(
    videos: pd.DataFrame, detections: pd.DataFrame, cfg: ConstructConfig, progress: bool = True
) -> tuple[dict[str, pd.DataFrame], dict]:
    """({"track_points", "timelines"}, stats) from stage 1's tables."""
    points_rows, timeline_rows = [], []
    stats = Counter()
    by_video = dict(tuple(detections.groupby("video", sort=False)))
    for v in tqdm(videos.itertuples(index=False), total=len(videos), desc="timelines", disable=not progress):
        dets = by_video.get(v.video)
        if dets is None or dets.empty:
            continue
        dets = dets.sort_values(["frame", "object_id"], kind="stable")
        gate = cfg.match_gate * max(v.width, v.height)
        keys = dets["category"] + ("|" + dets["colors"] if cfg.match_colors else "")
        tid = link(
            dets["frame"].to_numpy(),
            dets[["cx", "cy"]].to_numpy(),
            keys.to_numpy(),
            gate=gate,
            max_gap=cfg.max_gap,
        )
        dets = dets.assign(track_id=tid)
        new_id = 0
        for _, tr in dets.groupby("track_id", sort=True):
            stats["tracks_linked"] += 1
            if len(tr) < cfg.min_track_points:
                stats["tracks_dropped_short"] += 1
                continue
            frames = tr["frame"].to_numpy()
            m = summarise(frames, tr[["cx", "cy"]].to_numpy(), v.width, v.height, v.fps, cfg)
            anom = tr["anomalous"].to_numpy(bool)
            actions = [a for a in tr["action"] if a]
            colors = _mode(tr["colors"])
            category = _mode(tr["category"])
            clothing = _mode(tr["clothing"])
            timeline_rows.append(
                {
                    "video": v.video,
                    "split": v.split,
                    "track_id": new_id,
                    "start": int(frames[0]),
                    "end": int(frames[-1]),
                    "num_points": len(tr),
                    "source_object_id": int(_mode(tr["object_id"])),
                    "category": category,
                    "colors": colors,
                    "clothing": clothing,
                    "regions": json.dumps(m["regions"]),
                    "start_region": m["start_region"],
                    "end_region": m["end_region"],
                    "displacement": m["displacement"],
                    "path_length": m["path_length"],
                    "speed": m["speed"],
                    "motion_state": m["motion_state"],
                    "anomalous": bool(anom.any()),
                    "anomaly_kind": v.anomaly_kind if anom.any() else "",
                    "anomaly_start": int(frames[anom][0]) if anom.any() else -1,
                    "anomaly_end": int(frames[anom][-1]) if anom.any() else -1,
                    "action": _mode(actions) if actions else "",
                    "sentence": sentence(category, colors, clothing, m["regions"], m["motion_state"]),
                }
            )
            stats["tracks_kept"] += 1
            stats["anomalous_tracks"] += int(anom.any())
            pts = tr[["video", "frame", "object_id", "x1", "y1", "x2", "y2", "width", "height", "cx", "cy", "region", "anomalous"]]
            points_rows.append(pts.assign(track_id=new_id))
            new_id += 1
    points_cols = [
        "video", "track_id", "frame", "object_id", "x1", "y1", "x2", "y2", "width", "height",
        "cx", "cy", "region", "anomalous",
    ]
    points = (
        pd.concat(points_rows, ignore_index=True)[points_cols]
        if points_rows
        else pd.DataFrame(columns=points_cols)
    )
    timelines = pd.DataFrame(timeline_rows, columns=table_columns("timelines"))
    return {"track_points": points, "timelines": timelines}, dict(stats)
