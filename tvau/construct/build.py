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


def _clip_targets(masks: np.ndarray, labels: np.ndarray, start: int, stop: int, clip: ClipConfig,
                  grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(pooled patch masks, frame labels) of frames start..stop of a video; a short video's only clip
    repeats its last frame up to clip.num_frames."""
    m, lab = masks[start:stop], labels[start:stop]
    if stop - start < clip.num_frames:
        reps = clip.num_frames - (stop - start)
        m = np.concatenate([m, m[-1:].repeat(reps, 0)])
        lab = np.concatenate([lab, lab[-1:].repeat(reps)])
    return pool_masks(m, grid[0], grid[1], clip.temporal_patch, clip.mask_pooling).astype(np.uint8), lab


def _clip_dialogues(base: dict, objs: list[dict], anomalous: bool, targets: pd.DataFrame) -> tuple[dict, dict | str]:
    """The clip's SFT records: phase A's, and phase B's (or why phase B skips the clip)."""
    rec_a = base | {"id": f"A-{base['video']}-{base['start']:06d}", "phase": "A", "anomalous": anomalous,
                    "messages": dialogue.phase_a(objs)}
    b = phase_b(objs, anomalous, targets)
    if isinstance(b, str):
        return rec_a, b
    msgs, answers = b
    return rec_a, base | {"id": f"B-{base['video']}-{base['start']:06d}", "phase": "B", "anomalous": anomalous,
                          "messages": msgs, "answers": answers}


def _write_ahd_shards(out_dir: Path, shards: dict, clip_rows: list[dict], shard_clips: int) -> None:
    """AHD's targets as ahd/<split>-<k>.npz shards of `shard_clips` clips, and clips.parquet saying
    which shard and row holds each clip."""
    from tvau.quality.tables import validate

    (out_dir / "ahd").mkdir(parents=True, exist_ok=True)
    clips = pd.DataFrame(clip_rows).set_index("clip_id", drop=False)
    for split, shard in shards.items():
        n = len(shard["clip_id"])
        for k, lo in enumerate(range(0, n, shard_clips)):
            hi = min(n, lo + shard_clips)
            name = f"ahd/{split}-{k:03d}.npz"
            ids = np.asarray(shard["clip_id"][lo:hi], dtype=np.int64)
            np.savez_compressed(out_dir / name, masks=np.stack(shard["masks"][lo:hi]),
                                frame_labels=np.stack(shard["frame_labels"][lo:hi]), clip_id=ids)
            clips.loc[ids, "shard"] = name
            clips.loc[ids, "row"] = np.arange(hi - lo)
    clips = validate("clips", clips.reset_index(drop=True), where=out_dir / "clips.parquet")
    clips.to_parquet(out_dir / "clips.parquet", index=False)


def _write_sft(out_dir: Path, sft: dict[tuple[str, str], list[dict]], stats: Counter) -> None:
    """The dialogues as sft/phase_<a|b>_<split>.jsonl, and their index sft.parquet."""
    from tvau.quality.tables import validate
    from tvau.storage import write_jsonl

    (out_dir / "sft").mkdir(parents=True, exist_ok=True)
    index = []
    for (phase, split), rows in sft.items():
        write_jsonl(out_dir / "sft" / f"phase_{phase.lower()}_{split}.jsonl", rows)
        stats[f"sft_{phase}_{split}"] = len(rows)
        index += [{k: r[k] for k in ("id", "phase", "video", "split", "start", "stop", "anomalous")}
                  | {"turns": len(r["messages"]) // 2} for r in rows]
    validate("sft", pd.DataFrame(index), where=out_dir / "sft.parquet").to_parquet(out_dir / "sft.parquet", index=False)


def build_training_sets(
    records: dict[str, VideoRecord],
    tables: dict[str, pd.DataFrame],
    clip: ClipConfig,
    cfg: ConstructConfig,
    out_dir: Path,
    progress: bool = True,
) -> dict:
    """Write everything into `out_dir` (a fresh directory): per clip of every video, AHD's pooled
    mask targets (shards) and the SFT dialogues of phases A and B; returns the stats."""
    videos, timelines, points, targets = (
        tables["videos"], tables["timelines"], tables["track_points"], tables["targets"],
    )
    grid = patch_grid(clip.height, clip.width, cfg.patch_size)
    if grid[0] < 1 or grid[1] < 1:
        raise ValueError(f"clip {clip.height}x{clip.width} is smaller than one {cfg.patch_size}-px patch")
    stats: Counter = Counter()
    clip_rows = []
    shards: dict[str, dict[str, list]] = {s: {"masks": [], "frame_labels": [], "clip_id": []} for s in vocab.SPLITS}
    sft: dict[tuple[str, str], list[dict]] = {(p, s): [] for p in "AB" for s in vocab.SPLITS}
    tl_by_video = {v: t.set_index("track_id") for v, t in timelines.groupby("video")}
    pts_by_video = dict(tuple(points.groupby("video")))
    tg_by_video = {v: t.set_index("track_id") for v, t in targets.groupby("video")}
    for v in tqdm(videos.itertuples(index=False), total=len(videos), desc="build", disable=not progress):
        rec = records[v.video]
        masks = np.stack(list(rec.iter_anomaly_masks())).astype(bool)  # (N, H, W)
        labels = rec.frame_labels.astype(np.uint8)
        tl = tl_by_video.get(v.video, pd.DataFrame())
        pts = pts_by_video.get(v.video, pd.DataFrame(columns=points.columns))
        digest = footage_digest(rec.source)
        for start in clip_starts(v.num_frames, clip.num_frames, clip.stride):
            stop = min(v.num_frames, start + clip.num_frames)
            pooled, lab = _clip_targets(masks, labels, start, stop, clip, grid)
            clip_id = len(clip_rows)
            for key, value in (("masks", pooled), ("frame_labels", lab), ("clip_id", clip_id)):
                shards[v.split][key].append(value)
            clip_rows.append({"clip_id": clip_id, "video": v.video, "split": v.split, "start": start, "stop": stop,
                              "num_frames": v.num_frames, "anomalous_frames": int(labels[start:stop].sum()),
                              "shard": "", "row": 0})
            stats[f"clips_{v.split}"] += 1
            objs = _objects_in(pts, tl, start, stop, v.width, v.height, v.fps, cfg) if len(tl) else []
            base = {"video": v.video, "split": v.split, "source": v.source, "footage_sha256": digest,
                    "start": start, "stop": stop}
            rec_a, rec_b = _clip_dialogues(base, objs, bool(labels[start:stop].any()),
                                           tg_by_video.get(v.video, pd.DataFrame()))
            sft[("A", v.split)].append(rec_a)
            if isinstance(rec_b, str):
                stats[f"phase_b_skipped_{rec_b}"] += 1
            else:
                sft[("B", v.split)].append(rec_b)
    _write_ahd_shards(out_dir, shards, clip_rows, cfg.shard_clips)
    _write_sft(out_dir, sft, stats)
    stats["grid"] = f"{grid[0]}x{grid[1]}"
    return dict(stats)


def write_manifest(out_dir: Path, stats: dict) -> None:
    from tvau.storage import checksums, write_json

    write_json(out_dir / "manifest.json", {"stats": stats, "files": checksums(out_dir)})
