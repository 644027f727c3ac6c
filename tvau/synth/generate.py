"""Build a synthetic dataset in the UBnormal layout (docs/method.md section 10), plus the sidecars the
annotation pipeline reads (object_names.csv, attributes.jsonl, synth_manifest.json).

    DIR/Scene{N}/{video}.mp4
    DIR/Scene{N}/{video}_annotations/{video}_{frame:04d}_gt.png   object ids, 0 = background
    DIR/Scene{N}/{video}_annotations/{video}_tracks.txt           abnormal videos: id,start,end
    DIR/{abnormal,normal}_{training,validation,test}_video_names.txt
    DIR/object_names.csv, DIR/attributes.jsonl, DIR/synth_manifest.json

Everything is a pure function of (seed, SynthConfig): each video draws from its own random stream,
so the result does not depend on the number of worker processes. The dataset is rendered into a
temporary sibling folder and renamed into place at the end: a crash leaves no half-written DIR.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tvau.synth.config import SynthConfig
from tvau.synth.render import render_video
from tvau.synth.scenarios import plan_video
from tvau.synth.scene import make_scene
from tvau.video import VideoWriter, resolve_codec

GENERATOR_VERSION = "1.0"
SPLIT_FILES = {"train": "training", "validation": "validation", "test": "test"}  # UBnormal file words


@dataclass(frozen=True)
class VideoJob:
    index: int  # position in the dataset (also its random stream)
    name: str  # e.g. abnormal_scene_3_scenario_2
    scene: int  # N of Scene{N}
    kind: str | None  # anomaly kind, None for a normal video
    split: str  # train | validation | test


def plan_dataset(cfg: SynthConfig, seed: int) -> list[VideoJob]:
    """Which video is normal or abnormal, of which kind, in which scene and split."""
    rng = np.random.default_rng([seed, 2])
    n = cfg.videos
    n_abn = round(cfg.anomaly_fraction * n)
    # Kinds by largest remainder, so a 30-video set really holds the requested mix.
    weights = cfg.kind_weights()
    quota = {k: w * n_abn for k, w in weights.items()}
    counts = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: quota[k] - counts[k], reverse=True)[: n_abn - sum(counts.values())]:
        counts[k] += 1
    kinds = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    abnormal = np.zeros(n, bool)
    abnormal[rng.permutation(n)[:n_abn]] = True
    jobs, scenario, it = [], {}, iter(kinds)
    for i in range(n):
        scene = i % cfg.scenes + 1
        tag = "abnormal" if abnormal[i] else "normal"
        scenario[(scene, tag)] = scenario.get((scene, tag), 0) + 1
        name = f"{tag}_scene_{scene}_scenario_{scenario[(scene, tag)]}"
        jobs.append(VideoJob(i, name, scene, next(it) if abnormal[i] else None, ""))
    # Splits: per normal/abnormal, shuffled, train / validation / rest test.
    split_of: dict[int, str] = {}
    for flag in (True, False):
        idx = [j.index for j in jobs if (j.kind is not None) == flag]
        idx = [idx[k] for k in rng.permutation(len(idx))]
        n_tr = round(cfg.train_fraction * len(idx))
        n_va = round(cfg.validation_fraction * len(idx))
        for r, i in enumerate(idx):
            split_of[i] = "train" if r < n_tr else "validation" if r < n_tr + n_va else "test"
    return [VideoJob(j.index, j.name, j.scene, j.kind, split_of[j.index]) for j in jobs]


def _spans(labels: list, visible: np.ndarray) -> list[list]:
    """[start, end, label] inclusive runs of equal labels over visible frames."""
    out: list[list] = []
    for t, lab in enumerate(labels):
        if not visible[t] or lab is None:
            continue
        if out and out[-1][2] == lab and out[-1][1] == t - 1:
            out[-1][1] = t
        else:
            out.append([t, t, lab])
    return out


def build_video(job: VideoJob, cfg: SynthConfig, seed: int, root: Path, codec: str | None = None) -> dict:
    """Render one video and its annotations under root; return its objects and counts. `codec`:
    the encoder resolved once for the whole dataset (default: cfg.codec)."""
    cv2.setNumThreads(1)
    scene = make_scene(job.scene, cfg.size, np.random.default_rng([seed, 0, job.scene]))
    rng = np.random.default_rng([seed, 1, job.index])
    T = cfg.frames
    actors = plan_video(rng, scene, T, job.kind, (cfg.min_pedestrians, cfg.max_pedestrians))
    max_id = max((a.oid for a in actors), default=0)
    pixels = np.zeros((T, max_id + 1), np.int64)
    vdir = root / f"Scene{job.scene}"
    adir = vdir / f"{job.name}_annotations"
    adir.mkdir(parents=True, exist_ok=True)
    with VideoWriter(vdir / f"{job.name}.mp4", cfg.fps, cfg.size, cfg.size, codec or cfg.codec, cfg.crf) as writer:
        for t, (frame, ids) in enumerate(render_video(scene, actors, T, rng, cfg.noise_sigma,
                                                      cfg.lighting_amplitude, pixels)):
            writer.write(frame)
            cv2.imwrite(str(adir / f"{job.name}_{t:04d}_gt.png"), ids, [cv2.IMWRITE_PNG_COMPRESSION, 1])

    objects, tracks = [], []
    for a in actors:
        visible = pixels[:, a.oid] > 0
        if not visible.any():
            continue  # never in view: not an object of this video
        seen_anomalous = np.nonzero(a.anomalous & visible)[0]
        is_anom = seen_anomalous.size > 0
        if is_anom:
            tracks.append((a.oid, int(seen_anomalous[0]), int(seen_anomalous[-1])))
        objects.append({
            "video": job.name, "object_id": a.oid, "category": a.category,
            "colors": dict(a.look["colors"]), "clothing": a.look.get("clothing", ""),
            "anomalous": bool(is_anom), "anomaly_kind": a.anomaly_kind if is_anom else None,
            "actions": _spans(a.action, visible),
        })
    if job.kind is not None:
        if not tracks:
            raise RuntimeError(f"{job.name}: the '{job.kind}' event never came into view")
        with open(adir / f"{job.name}_tracks.txt", "w") as fh:
            fh.writelines(f"{oid},{s},{e}\n" for oid, s, e in tracks)
    labels = np.zeros(T, bool)
    for _, s, e in tracks:
        labels[s:e + 1] = True
    return {"name": job.name, "scene": job.scene, "split": job.split, "kind": job.kind, "frames": T,
            "objects": len(objects), "anomalous_objects": len(tracks),
            "anomalous_frames": int(labels.sum()), "_objects": objects}


def _write_sidecars(root: Path, cfg: SynthConfig, seed: int, jobs: list[VideoJob], results: list[dict],
                    codec: str) -> dict:
    for flag in ("abnormal", "normal"):
        for split, word in SPLIT_FILES.items():
            names = [j.name for j in jobs if j.split == split and (j.kind is not None) == (flag == "abnormal")]
            (root / f"{flag}_{word}_video_names.txt").write_text("".join(f"{n}\n" for n in names))
    with open(root / "object_names.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "object_id", "name"])
        for r in results:
            for o in r["_objects"]:
                w.writerow([o["video"], o["object_id"], o["category"]])
    with open(root / "attributes.jsonl", "w") as fh:
        for r in results:
            for o in r["_objects"]:
                fh.write(json.dumps(o) + "\n")
    videos = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    manifest = {
        "generator": "tvau.synth", "version": GENERATOR_VERSION, "seed": seed,
        "parameters": cfg.model_dump(),
        "codec": codec,  # the encoder used (cfg.codec, or MPEG-4 where H.264 is missing)
        "counts": {"videos": len(videos), "abnormal_videos": sum(v["kind"] is not None for v in videos),
                   "frames": sum(v["frames"] for v in videos),
                   "anomalous_frames": sum(v["anomalous_frames"] for v in videos),
                   "objects": sum(v["objects"] for v in videos),
                   "anomalous_objects": sum(v["anomalous_objects"] for v in videos)},
        "videos": videos,
    }
    (root / "synth_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def generate(out: str | Path, cfg: SynthConfig, seed: int, workers: int | None = None,
             overwrite: bool = False, progress: bool = True) -> dict:
    """Render the dataset into `out` atomically; returns the manifest (also written as JSON)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    codec = resolve_codec(cfg.codec)  # once, in this process: an unknown codec fails before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    jobs = plan_dataset(cfg, seed)
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    try:
        results: list[dict | None] = [None] * len(jobs)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc="synth", unit="video")
        if workers <= 1:
            for j in jobs:
                results[j.index] = build_video(j, cfg, seed, tmp, codec)
                bar and bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futs = {pool.submit(build_video, j, cfg, seed, tmp, codec): j for j in jobs}
                for fut in as_completed(futs):
                    results[futs[fut].index] = fut.result()
                    bar and bar.update()
        if bar:
            bar.close()
        manifest = _write_sidecars(tmp, cfg, seed, jobs, results, codec)  # type: ignore[arg-type]
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
