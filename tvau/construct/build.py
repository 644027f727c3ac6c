"""Build the training sets from the validated tables: AHD supervision and SFT dialogues.

Output directory (one DVC output, a few large files):
  clips.parquet                  one row per clip (video, split, start, stop, shard, row)
  ahd/{split}-{k:03d}.npz        masks (N, T', H', W') uint8: the anomaly masks pooled to the
                                 patch grid (logical OR over each frame pair, nearest resize to
                                 H' = clip.height / patch, W' = clip.width / patch; docs/method.md
                                 section 4); frame_labels (N, T) uint8; clip_id (N,) int64
  sft/phase_a_{split}.jsonl      holistic narratives (tvau/construct/dialogue.py)
  sft/phase_b_{split}.jsonl      anomaly-focused dialogues from the kept refined targets; every
                                 record names its footage by `footage_sha256` (footage_digest),
                                 an anomalous one its reference `answers.fields`
  sft.parquet                    one row per SFT record (validated: ids unique, splits...)
  manifest.json                  counts and SHA-256 of every file
Clips follow params `clip` (num_frames, stride) through tvau/data/clips.py, the same sampler and
pooling the trainer uses: starts 0, stride, ... plus one covering the tail; a video shorter than
one clip gives one clip padded by repeating its last frame.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from tvau import vocab
from tvau.construct import dialogue
from tvau.construct.config import ConstructConfig
from tvau.construct.motion import summarise
from tvau.data.clips import clip_starts, patch_grid, pool_masks
from tvau.data.config import ClipConfig
from tvau.data.record import VideoRecord


def _objects_in(points: pd.DataFrame, timelines: pd.DataFrame, start: int, stop: int, width, height, fps, cfg):
    """Per timeline with at least 2 points inside [start, stop): its look and clip-local motion."""
    inside = points[(points["frame"] >= start) & (points["frame"] < stop)]
    out = []
    for tid, p in inside.groupby("track_id", sort=True):
        if len(p) < 2:
            continue
        t = timelines.loc[tid]
        m = summarise(p["frame"].to_numpy(), p[["cx", "cy"]].to_numpy(), width, height, fps, cfg)
        out.append(
            {
                "track_id": int(tid),
                "category": t["category"],
                "colors": t["colors"],
                "clothing": t["clothing"],
                "regions": m["regions"],
                "motion_state": m["motion_state"],
                "anomalous_points": int(p["anomalous"].sum()),
            }
        )
    return out


def footage_digest(source: str | Path) -> str:
    """SHA-256 of a video's footage: of the file, or, for a frame folder, of its files' names and
    digests. SFT records carry it so that a reference is only ever matched to the footage it was
    built from (video names recur in every synthetic set)."""
    from tvau.storage import checksums, sha256_file

    p = Path(source)
    if not p.is_dir():
        return sha256_file(p)
    h = hashlib.sha256()
    for name, digest in checksums(p).items():
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def phase_b(objs: list[dict], anomalous: bool, targets: pd.DataFrame) -> tuple[list[dict], dict] | str:
    """One clip's phase-B dialogue (messages, reference answers) from its objects (_objects_in) and
    its video's refined targets (indexed by track id), or why it has none: an anomalous clip is
    described by its object with most anomalous points, if that object's refined target was kept.
    The answers of an anomalous clip carry `fields`, what they state (tvau.metrics.fields)."""
    from tvau.metrics.fields import reference_fields

    if not anomalous:
        return dialogue.phase_b_normal(objs)
    cands = [o for o in objs if o["anomalous_points"] > 0]
    if not cands:
        return "no_target_in_clip"
    main = max(cands, key=lambda o: o["anomalous_points"])
    if main["track_id"] not in targets.index:
        return "no_refined_target"
    t = targets.loc[main["track_id"]]
    if not bool(t["kept"]):
        return "dropped_target"
    target = {"described_category": t["described_category"], "described_colors": t["described_colors"],
              "described_clothing": t["described_clothing"], "described_action": t["described_action"],
              "regions": main["regions"], "motion_state": main["motion_state"]}
    msgs, answers = dialogue.phase_b_anomalous(target, [o for o in objs if o["track_id"] != main["track_id"]])
    colors = json.loads(t["described_colors"]) if isinstance(t["described_colors"], str) else t["described_colors"]
    fields = reference_fields(t["described_category"], colors, t["described_clothing"], t["described_action"],
                              main["regions"], main["motion_state"])
    return msgs, answers | {"fields": fields.as_dict()}


def build_training_sets(
    records: dict[str, VideoRecord],
    tables: dict[str, pd.DataFrame],
    clip: ClipConfig,
    cfg: ConstructConfig,
    out_dir: Path,
    progress: bool = True,
) -> dict:
    """Write everything into `out_dir` (a fresh directory); returns the stats."""
    videos, timelines, points, targets = (
        tables["videos"], tables["timelines"], tables["track_points"], tables["targets"],
    )
    grid_h, grid_w = patch_grid(clip.height, clip.width, cfg.patch_size)
    if grid_h < 1 or grid_w < 1:
        raise ValueError(f"clip {clip.height}x{clip.width} is smaller than one {cfg.patch_size}-px patch")
    stats: Counter = Counter()
    clip_rows, sft_rows = [], []
    shards: dict[str, dict[str, list]] = {s: {"masks": [], "frame_labels": [], "clip_id": []} for s in vocab.SPLITS}
    sft: dict[tuple[str, str], list[dict]] = {(p, s): [] for p in "AB" for s in vocab.SPLITS}
    tl_by_video = {v: t.set_index("track_id") for v, t in timelines.groupby("video")}
    pts_by_video = dict(tuple(points.groupby("video")))
    tg_by_video = {v: t.set_index("track_id") for v, t in targets.groupby("video")}
    clip_id = 0
    for v in tqdm(videos.itertuples(index=False), total=len(videos), desc="build", disable=not progress):
        rec = records[v.video]
        masks = np.stack(list(rec.iter_anomaly_masks())).astype(bool)  # (N, H, W)
        labels = rec.frame_labels.astype(np.uint8)
        tl = tl_by_video.get(v.video, pd.DataFrame())
        pts = pts_by_video.get(v.video, pd.DataFrame(columns=points.columns))
        tg = tg_by_video.get(v.video, pd.DataFrame())
        digest = footage_digest(rec.source)
        for start in clip_starts(v.num_frames, clip.num_frames, clip.stride):
            stop = min(v.num_frames, start + clip.num_frames)
            m, lab = masks[start:stop], labels[start:stop]
            if stop - start < clip.num_frames:  # a short video's only clip: repeat the last frame
                reps = clip.num_frames - (stop - start)
                m = np.concatenate([m, m[-1:].repeat(reps, 0)])
                lab = np.concatenate([lab, lab[-1:].repeat(reps)])
            pooled = pool_masks(m, grid_h, grid_w, clip.temporal_patch, clip.mask_pooling).astype(np.uint8)
            shard = shards[v.split]
            shard["masks"].append(pooled)
            shard["frame_labels"].append(lab)
            shard["clip_id"].append(clip_id)
            clip_rows.append(
                {
                    "clip_id": clip_id, "video": v.video, "split": v.split, "start": start, "stop": stop,
                    "num_frames": v.num_frames, "anomalous_frames": int(labels[start:stop].sum()),
                    "shard": "", "row": 0,
                }
            )
            clip_id += 1
            stats[f"clips_{v.split}"] += 1
            # ---- SFT records for this clip
            objs = _objects_in(pts, tl, start, stop, v.width, v.height, v.fps, cfg) if len(tl) else []
            base = {"video": v.video, "split": v.split, "source": v.source, "footage_sha256": digest,
                    "start": start, "stop": stop}
            anomalous = bool(labels[start:stop].any())
            rec_a = base | {"id": f"A-{v.video}-{start:06d}", "phase": "A", "anomalous": anomalous,
                            "messages": dialogue.phase_a(objs)}
            sft[("A", v.split)].append(rec_a)
            b = phase_b(objs, anomalous, tg)
            if isinstance(b, str):
                stats[f"phase_b_skipped_{b}"] += 1
                continue
            msgs, answers = b
            sft[("B", v.split)].append(
                base | {"id": f"B-{v.video}-{start:06d}", "phase": "B", "anomalous": anomalous,
                        "messages": msgs, "answers": answers}
            )

    from tvau.quality.tables import validate
    from tvau.storage import write_jsonl

    (out_dir / "ahd").mkdir(parents=True, exist_ok=True)
    (out_dir / "sft").mkdir(parents=True, exist_ok=True)
    clips = pd.DataFrame(clip_rows).set_index("clip_id", drop=False)
    for split, shard in shards.items():
        n = len(shard["clip_id"])
        for k, lo in enumerate(range(0, n, cfg.shard_clips)):
            hi = min(n, lo + cfg.shard_clips)
            name = f"ahd/{split}-{k:03d}.npz"
            ids = np.asarray(shard["clip_id"][lo:hi], dtype=np.int64)
            np.savez_compressed(
                out_dir / name,
                masks=np.stack(shard["masks"][lo:hi]),
                frame_labels=np.stack(shard["frame_labels"][lo:hi]),
                clip_id=ids,
            )
            clips.loc[ids, "shard"] = name
            clips.loc[ids, "row"] = np.arange(hi - lo)
    clips = validate("clips", clips.reset_index(drop=True), where=out_dir / "clips.parquet")
    clips.to_parquet(out_dir / "clips.parquet", index=False)
    for (phase, split), rows in sft.items():
        write_jsonl(out_dir / "sft" / f"phase_{phase.lower()}_{split}.jsonl", rows)
        stats[f"sft_{phase}_{split}"] = len(rows)
        for r in rows:
            sft_rows.append(
                {k: r[k] for k in ("id", "phase", "video", "split", "start", "stop", "anomalous")}
                | {"turns": len(r["messages"]) // 2}
            )
    index = validate("sft", pd.DataFrame(sft_rows), where=out_dir / "sft.parquet")
    index.to_parquet(out_dir / "sft.parquet", index=False)
    stats["grid"] = f"{grid_h}x{grid_w}"
    return dict(stats)


def write_manifest(out_dir: Path, stats: dict) -> None:
    from tvau.storage import checksums, write_json

    write_json(out_dir / "manifest.json", {"stats": stats, "files": checksums(out_dir)})
