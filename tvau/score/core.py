"""Nightly scoring, as plain functions (flows/score.py only wires them into Prefect tasks).

    refs = list_videos(client, "s3://footage/2026-11-25/", cfg)        # paginated
    for batch in batches(refs, cfg.videos_per_batch):                   # one task per batch
        results = score_batch(batch, output_prefix, model_uri, cfg)
    write_summary(...)                                                  # Parquet + HTML ranking

Per video, under `<output>/<safe input key>/` (the whole key, so nights never collide): heatmap.npz (patch resolution, float16),
frames.parquet (per-frame scores, smoothed scores and whether each frame is flagged), regions.parquet
(scored region detections), trajectory.png (the keyframe at the peak with its heatmap and the path),
overlay.mp4, dialogue.json (every clip's score, the spans and their explanations) and, LAST,
manifest.json (the verdict, its spans with their explanation fields, and (input key, size, ETag, sha256; model name,
version, run id, digest, calibration; parameter hash; code version; timings; sha256 of every
output). The verdict is tvau/score/verdict.py's, against the model's calibration.json. A video
counts as done only when its manifest exists and matches the input (ETag and size from the
listing) and the model digest and parameter hash, so a crash at any point leaves at worst some
outputs without a manifest, which the next run overwrites. Rejected inputs get
`<output>/quarantine/<safe video key>.json` with a `reason`, and the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from tvau.score import keys
from tvau.score import verdict as vd
from tvau.score.config import ScoreConfig
from tvau.score.explain import SCORING_QUESTIONS, empty_fields, explanation
from tvau.score.media import BadVideo, inspect_video, iter_sampled_clips, sample_indices_rule
from tvau.score.model import ClipModel, LoadedModel, get_model
from tvau.score.s3io import (
    ObjectRef,
    S3Error,
    delete_object,
    get_bytes,
    get_json,
    list_objects,
    make_client,
    put_bytes,
    stream_to_file,
)

MANIFEST_FORMAT = "tvau-score/1"
QUARANTINE_FORMAT = "tvau-quarantine/1"
OUTPUTS = ("heatmap.npz", "frames.parquet", "regions.parquet", "trajectory.png", "overlay.mp4", "dialogue.json")


@dataclass
class VideoResult:
    key: str  # the input key
    status: str  # scored | skipped | quarantined | failed
    output: str | None = None  # manifest or quarantine record URI
    reason: str | None = None  # quarantine reason or failure message
    max_score: float | None = None
    verdict: str | None = None  # anomalous | normal (scored videos)
    video_score: float | None = None  # the calibrated per-video score (tvau/score/verdict.py)
    clips: int = 0
    escalated: int = 0
    frames: int = 0
    timings: dict = field(default_factory=dict)
    writes: int = 0  # objects PUT for this video (0 for a skip)


# ------------------------------------------------------------------------------------ identity


@lru_cache(maxsize=1)
def code_version() -> dict:
    """Package version and, inside a git checkout, the commit (and whether it had local edits)."""
    import tvau

    out = {"package": getattr(tvau, "__version__", "0"), "git_commit": None, "git_dirty": None}
    root = Path(__file__).resolve().parents[2]
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                           text=True, timeout=10, check=True).stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "tvau", "flows"],
                                cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout
        out["git_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def params_hash(cfg: ScoreConfig, input_size: tuple[int, int], calibration: str | None = None) -> str:
    """What changes the outputs besides the model and the input: the score section minus the
    knobs that only affect how we talk to S3, plus the model's input size and its calibration's
    digest (a new threshold rescoring the night)."""
    skip = {"max_attempts", "backoff_s", "read_timeout_s", "chunk_bytes", "videos_per_batch", "model_uri",
            "clips_per_call"}
    d = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in skip}
    d["input_size"] = list(input_size)
    d["calibration"] = calibration
    d["questions"] = list(SCORING_QUESTIONS)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ planning


def list_videos(client, input_prefix: str, cfg: ScoreConfig) -> Iterator[ObjectRef]:
    """Objects under the prefix whose names end in a video extension (case-insensitive)."""
    exts = tuple(e.lower() for e in cfg.extensions)
    for ref in list_objects(client, input_prefix, cfg):
        if ref.key.lower().endswith(exts) and not ref.key.endswith("/"):
            yield ref


def batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for it in items:
        batch.append(it)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _input_record(ref: ObjectRef, rel: str, sha256: str | None) -> dict:
    return {"uri": ref.uri, "bucket": ref.bucket, "key": ref.key, "size": ref.size, "etag": ref.etag,
            "sha256": sha256}


def manifest_matches(manifest: dict | None, ref: ObjectRef, model_digest: str, phash: str) -> bool:
    if not manifest or manifest.get("format") != MANIFEST_FORMAT:
        return False
    inp, mdl = manifest.get("input", {}), manifest.get("model", {})
    return (inp.get("etag") == ref.etag and inp.get("size") == ref.size and mdl.get("digest") == model_digest
            and manifest.get("params_hash") == phash)


def quarantine_matches(record: dict | None, ref: ObjectRef, phash: str) -> bool:
    if not record or record.get("format") != QUARANTINE_FORMAT:
        return False
    inp = record.get("input", {})
    return inp.get("etag") == ref.etag and inp.get("size") == ref.size and record.get("params_hash") == phash


# ------------------------------------------------------------------------------------ one video


class _Accumulator:
    """Per sampled frame: the mean heatmap over the clips covering it. Frames are released in
    order once no later clip can cover them, so only about one clip's frames are pending."""

    def __init__(self):
        self.pending: dict[int, list] = {}  # sampled idx -> [model-size frame, heat sum, count, src idx]

    def add(self, clip, heat: np.ndarray, temporal_patch: int, maps: np.ndarray) -> None:
        """heat: the clip's patch heatmap (T', h, w); maps: its frames' heatmaps at the input size."""
        real = len(clip.source_frames)
        for j in range(real):
            h = heat[min(j // temporal_patch, heat.shape[0] - 1)]
            m = maps[min(j, maps.shape[0] - 1)]
            idx = clip.start + j
            slot = self.pending.get(idx)
            if slot is None:
                self.pending[idx] = [clip.frames[j], h.astype(np.float64), 1, clip.source_frames[j],
                                     m.astype(np.float64)]
            else:
                slot[1] = slot[1] + h
                slot[2] += 1
                slot[4] = slot[4] + m

    def release(self, before: int | None) -> list[tuple[int, int, np.ndarray, np.ndarray, float]]:
        """(sampled idx, source idx, frame, mean heat, frame score) for pending frames < before (all
        if None); the frame score is verdict.frame_peak of the mean input-size heatmap, as
        `tvau evaluate` averages overlapping clips before scoring a frame."""
        ready = sorted(i for i in self.pending if before is None or i < before)
        out = []
        for i in ready:
            frame, hsum, cnt, src, msum = self.pending.pop(i)
            out.append((i, src, frame, (hsum / cnt).astype(np.float32), vd.frame_peak(np.clip(msum / cnt, 0, 1))))
        return out


def _frame_regions(heat: np.ndarray, src_size: tuple[int, int], cfg: ScoreConfig) -> np.ndarray:
    import cv2

    from tvau.metrics.regions import heatmap_to_regions

    h, w = src_size
    up = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return heatmap_to_regions(np.clip(up, 0, 1), "components", cfg.region_levels, min_area=cfg.min_region_area,
                              max_regions=cfg.max_regions_per_frame)


def _parquet_bytes(columns: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, compression="zstd")
    return buf.getvalue()


def _png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError("could not encode the trajectory image")
    return buf.tobytes()


def _trajectory_image(background: np.ndarray | None, src_size: tuple[int, int], points: list[tuple[float, float]],
                      label: str) -> np.ndarray:
    """The anomaly's path (centres of the top region of each frame above the level) over the
    frame where the score peaked, at source resolution capped at 512 px."""
    import cv2

    from tvau.report import trajectories

    h, w = src_size
    scale = min(1.0, 512 / max(h, w))
    dh, dw = max(1, round(h * scale)), max(1, round(w * scale))
    bg = np.full((dh, dw, 3), 64, np.uint8) if background is None else cv2.resize(background, (dw, dh))
    pts = np.asarray(points, np.float32).reshape(-1, 2) * scale
    return trajectories(bg, [(pts, True, label)] if len(pts) else [])


def score_video(
    ref: ObjectRef,
    output_prefix: str,
    loaded: LoadedModel,
    cfg: ScoreConfig,
    client,
    work_dir: Path,
    now: Callable[[], str] | None = None,
) -> VideoResult:
    """Score one video (or skip / quarantine it). Raises S3Error when S3 keeps failing."""
    t_start = time.perf_counter()
    # Outputs are named after the whole input key (not the part below the listed prefix), so the
    # nights of different dates never share an output folder.
    rel = ref.key
    out_prefix = keys.video_output_prefix(output_prefix, rel)
    manifest_uri = f"{out_prefix}/manifest.json"
    quarantine_uri = keys.quarantine_key(output_prefix, rel)
    phash = params_hash(cfg, loaded.input_size, loaded.require_calibration().digest)
    now = now or (lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    manifest = get_json(client, manifest_uri, cfg)
    if manifest_matches(manifest, ref, loaded.digest, phash):
        done = manifest.get("summary", {})
        return VideoResult(rel, "skipped", manifest_uri, max_score=done.get("max_score"), verdict=done.get("verdict"),
                           video_score=done.get("video_score"), clips=done.get("clips", 0),
                           escalated=done.get("escalated_clips", 0))
    record = get_json(client, quarantine_uri, cfg)
    if quarantine_matches(record, ref, phash):
        return VideoResult(rel, "quarantined", quarantine_uri, reason=record.get("reason"))

    def quarantine(reason: str, detail: str, sha: str | None) -> VideoResult:
        rec = {"format": QUARANTINE_FORMAT, "input": _input_record(ref, rel, sha), "reason": reason,
               "detail": detail, "params_hash": phash, "code_version": code_version(), "at": now()}
        put_bytes(client, quarantine_uri, json.dumps(rec, indent=2, sort_keys=True).encode(), cfg,
                  "application/json")
        return VideoResult(rel, "quarantined", quarantine_uri, reason=reason, writes=1,
                           timings={"total_s": time.perf_counter() - t_start})

    if ref.size == 0:
        return quarantine("zero bytes", "the object is empty", hashlib.sha256(b"").hexdigest())

    timings: dict[str, float] = {}
    fd, spool_name = tempfile.mkstemp(prefix="video-", suffix=Path(ref.key).suffix[:8], dir=work_dir)
    os.close(fd)
    spool = Path(spool_name)
    try:
        t0 = time.perf_counter()
        sha = stream_to_file(client, ref, spool, cfg)
        timings["download_s"] = time.perf_counter() - t0
        try:
            meta = inspect_video(spool, cfg)
            result = _analyse(spool, meta, loaded, cfg, timings)
        except BadVideo as bad:
            return quarantine(bad.reason, bad.detail, sha)
    finally:
        spool.unlink(missing_ok=True)

    # Upload the outputs, then the manifest: the manifest is what marks the video done.
    t0 = time.perf_counter()
    files: dict[str, bytes] = result.pop("files")
    outputs = {}
    for name in OUTPUTS:
        data = files[name]
        put_bytes(client, f"{out_prefix}/{name}", data, cfg, _content_type(name))
        outputs[name] = {"uri": f"{out_prefix}/{name}", "sha256": hashlib.sha256(data).hexdigest(),
                         "size": len(data)}
    timings["write_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    manifest = {
        "format": MANIFEST_FORMAT,
        "input": _input_record(ref, rel, sha),
        "model": {k: v for k, v in loaded.identity().items() if k != "local_dir"},
        "params_hash": phash,
        "params": cfg.model_dump(mode="json"),
        "code_version": code_version(),
        "video": result["video"],
        "summary": result["summary"],
        "outputs": outputs,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "scored_at": now(),
    }
    put_bytes(client, manifest_uri, json.dumps(manifest, indent=2, sort_keys=True).encode(), cfg, "application/json")
    writes = len(OUTPUTS) + 1
    if record is not None:  # the key was quarantined before and is good now
        delete_object(client, quarantine_uri, cfg)
    s = result["summary"]
    return VideoResult(rel, "scored", manifest_uri, max_score=s["max_score"], verdict=s["verdict"],
                       video_score=s["video_score"], clips=s["clips"],
                       escalated=s["escalated_clips"], frames=s["sampled_frames"], timings=manifest["timings"],
                       writes=writes)


def _content_type(name: str) -> str:
    return {"npz": "application/octet-stream", "parquet": "application/vnd.apache.parquet", "png": "image/png",
            "mp4": "video/mp4", "json": "application/json"}[name.rsplit(".", 1)[-1]]


def _analyse(path: Path, meta, loaded: LoadedModel, cfg: ScoreConfig, timings: dict) -> dict:
    """Decode, score every frame, give the verdict and its spans, explain each span, and build
    every output file in memory (they are small)."""
    cal = loaded.require_calibration()
    t_decode = time.perf_counter()
    cm = ClipModel(loaded, cfg.clips_per_call)
    frames = _frame_pass(path, meta, loaded, cfg, cm)
    fps = meta.fps
    smoothed = vd.smooth(frames.scores, frames.eff_fps, cal.sigma_s)
    v_score = float(smoothed.max()) if len(smoothed) else 0.0
    verdict = "anomalous" if vd.flags([v_score], cal.threshold)[0] else "normal"
    spans = (vd.spans(smoothed, cal.threshold, frames.src_index, fps, cfg.min_span_frames, cfg.span_gap_frames)
             if verdict == "anomalous" else [])
    asked = _explain_spans(path, meta, loaded, cfg, cm, spans, frames.clip_rows)
    timings["vision_s"] = cm.timer.vision_s
    timings["language_s"] = cm.timer.language_s
    timings["decode_and_outputs_s"] = time.perf_counter() - t_decode - cm.timer.vision_s - cm.timer.language_s

    t0 = time.perf_counter()
    top = max(spans, key=lambda sp: sp["peak_score"]) if spans else None
    top_exp = (top or {}).get("explanation") or {}
    mismatch = vd.sampling_mismatch(cal, frames.eff_fps, cfg.clip_frames, cfg.stride)
    files = _output_files(frames, smoothed, cal.threshold, meta, top_exp.get("sentence", ""))
    files["dialogue.json"] = json.dumps({"questions": list(SCORING_QUESTIONS), "escalate_level": cfg.escalate_level,
                                         "clips": frames.clip_rows, "spans": spans}, indent=2,
                                        sort_keys=True).encode()
    timings["decode_and_outputs_s"] += time.perf_counter() - t0
    scores = frames.scores
    summary = {
        "verdict": verdict,
        "video_score": v_score,
        "threshold": cal.threshold,
        "false_alarm_rate": cal.false_alarm_rate,
        "calibration_note": f"sampled unlike the calibration: {mismatch}" if mismatch else None,
        "spans": [{k: v for k, v in sp.items() if k != "peak_index"} for sp in spans],
        "max_score": float(max(scores)) if scores else 0.0,
        "mean_score": float(np.mean(scores)) if scores else 0.0,
        "anomalous_frame_share": float(np.mean(smoothed > cal.threshold)) if scores else 0.0,
        "clips": len(frames.clip_rows), "escalated_clips": asked, "sampled_frames": len(scores),
        "regions": len(frames.regions),
        "peak_time_s": (top["peak_s"] if top else
                        float(frames.src_index[int(np.argmax(smoothed))] / fps) if scores else None),
        "explanation": top_exp.get("sentence", ""),
        "fields": top_exp.get("fields") or empty_fields(),
        "top_answers": top_exp.get("turns", []),
    }
    video = {"width": meta.width, "height": meta.height, "fps": meta.fps, "declared_frames": meta.num_frames,
             "codec": meta.codec, "sampled_fps": frames.eff_fps, "model_input": list(loaded.input_size)}
    return {"files": files, "summary": summary, "video": video}


@dataclass
class _Frames:
    """What the frame pass leaves: per sampled frame its source index, score and heatmap; the
    clips; the regions; the trajectory points; the keyframe (the highest-scoring frame) and the
    overlay video."""

    eff_fps: float
    src_index: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    heat: list[np.ndarray] = field(default_factory=list)
    clip_rows: list[dict] = field(default_factory=list)
    region_rows: list[np.ndarray] = field(default_factory=list)
    path_points: list[tuple[float, float]] = field(default_factory=list)
    keyframe: tuple[float, np.ndarray | None, np.ndarray | None] = (-1.0, None, None)
    overlay: bytes = b""
    src_size: tuple[int, int] = (0, 0)

    @property
    def regions(self) -> np.ndarray:
        return np.concatenate(self.region_rows) if self.region_rows else np.zeros((0, 6))


def _frame_pass(path: Path, meta, loaded: LoadedModel, cfg: ScoreConfig, cm: ClipModel) -> _Frames:
    """Decode at the analysis rate and run the vision tower + AHD on every clip, clips_per_call at
    a time; frames are finished (overlay, regions, score) as soon as no later clip covers them."""
    from tvau.report import overlay
    from tvau.video import VideoWriter

    tp = int(loaded.model.backbone.preprocessor.temporal_patch_size)  # frames per heatmap slice
    H, W = loaded.input_size
    _, eff_fps = sample_indices_rule(meta.fps, cfg.sample_fps)
    out = _Frames(eff_fps, src_size=(meta.height, meta.width))
    acc = _Accumulator()
    work = Path(tempfile.mkdtemp(prefix="outputs-", dir=path.parent))
    # The overlay plays the footage in real time at about overlay_fps: every k-th analysed frame. (Writing
    # every analysed frame, slowed down, was two thirds of the time spent outside the model.)
    overlay_every = max(1, round(eff_fps / cfg.overlay_fps))
    writer = VideoWriter(work / "overlay.mp4", eff_fps / overlay_every, W, H)

    def finish(ready) -> None:
        for _, src, frame, heat, score in ready:
            if len(out.heat) % overlay_every == 0:
                writer.write(overlay(frame, heat))
            out.heat.append(heat.astype(np.float16))
            out.src_index.append(src)
            out.scores.append(score)
            regs = _frame_regions(heat, out.src_size, cfg)
            if len(regs):
                out.region_rows.append(np.column_stack([np.full(len(regs), src), regs]))
                if regs[0, 4] >= cfg.trajectory_level:
                    x1, y1, x2, y2 = regs[0, :4]
                    out.path_points.append(((x1 + x2) / 2, (y1 + y2) / 2))
            if score > out.keyframe[0]:
                out.keyframe = (score, frame, heat)

    def run(group) -> None:
        encs, heats = cm.heatmaps([c.frames for c in group])  # one vision call for the group
        for c, h, maps in zip(group, heats, cm.frame_maps(encs), strict=True):
            acc.add(c, h, tp, maps)
            out.clip_rows.append({"clip": c.index, "start_frame": c.source_frames[0],
                                  "end_frame": c.source_frames[-1], "start_s": c.source_frames[0] / meta.fps,
                                  "end_s": c.source_frames[-1] / meta.fps, "first_sampled": c.start,
                                  "sampled": len(c.source_frames), "max_score": float(h.max())})
            finish(acc.release(c.start + cfg.stride))  # frames before the next clip's start are final

    try:
        stats: dict = {}
        pending: list = []
        for clip in iter_sampled_clips(path, cfg, (H, W), meta.fps, stats=stats):
            pending.append(clip)
            if len(pending) == cfg.clips_per_call:
                run(pending)
                pending = []
        if pending:
            run(pending)
        finish(acc.release(None))
        if meta.num_frames and stats["decoded"] < 0.9 * meta.num_frames:
            raise BadVideo("truncated", f"{stats['decoded']} of {meta.num_frames} declared frames could be decoded")
        writer.close()
        out.overlay = (work / "overlay.mp4").read_bytes()
    finally:
        writer.close()
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    return out


def _peak_clip(span: dict, clip_rows: list[dict]) -> dict:
    """The clip holding the span's peak frame (the highest-scoring one where clips overlap)."""
    i = span["peak_index"]
    holding = [c for c in clip_rows if c["first_sampled"] <= i < c["first_sampled"] + c["sampled"]]
    return max(holding, key=lambda c: c["max_score"])


def _explain_spans(path: Path, meta, loaded: LoadedModel, cfg: ScoreConfig, cm: ClipModel, spans: list[dict],
                   clip_rows: list[dict]) -> int:
    """Ask the trained dialogue once per span on its peak clip (when that clip's heatmap reaches
    escalate_level); each span gets `clip` and `explanation`. The peak clips are decoded again
    (only flagged videos pay it), so no encoding is held while the video streams. Returns the
    number of clips asked."""
    want: dict[int, list[dict]] = {}
    for sp in spans:
        clip = _peak_clip(sp, clip_rows)
        sp["clip"], sp["clip_max_score"], sp["explanation"] = clip["clip"], clip["max_score"], None
        if clip["max_score"] >= cfg.escalate_level:
            want.setdefault(clip["clip"], []).append(sp)
    if not want:
        return 0
    clips = [c for c in iter_sampled_clips(path, cfg, loaded.input_size, meta.fps) if c.index in want]
    encs, _ = cm.heatmaps([c.frames for c in clips])
    for c, turns in zip(clips, cm.ask(encs, SCORING_QUESTIONS, cfg.max_new_tokens), strict=True):
        for sp in want[c.index]:
            sp["explanation"] = explanation(turns)
    return len(clips)


def _output_files(frames: _Frames, smoothed: np.ndarray, threshold: float, meta, label: str) -> dict[str, bytes]:
    """heatmap.npz, frames.parquet, regions.parquet, trajectory.png (the keyframe with its heatmap
    and the path) and overlay.mp4."""
    from tvau.report import overlay

    heat_arr = np.stack(frames.heat) if frames.heat else np.zeros((0, 1, 1), np.float16)
    buf = io.BytesIO()
    np.savez_compressed(buf, heatmap=heat_arr, source_frame=np.asarray(frames.src_index, np.int64),
                        fps=np.float64(meta.fps), sampled_fps=np.float64(frames.eff_fps),
                        frame_size=np.asarray(frames.src_size, np.int64))
    regions = frames.regions
    src_arr = np.asarray(frames.src_index, np.int64)
    frames_pq = _parquet_bytes({"frame": src_arr, "time_s": src_arr / meta.fps, "score": np.asarray(frames.scores),
                                "smoothed": smoothed, "flagged": smoothed > threshold})
    regions_pq = _parquet_bytes({
        "frame": regions[:, 0].astype(np.int64), "time_s": regions[:, 0] / meta.fps,
        "x1": regions[:, 1].astype(np.int64), "y1": regions[:, 2].astype(np.int64),
        "x2": regions[:, 3].astype(np.int64), "y2": regions[:, 4].astype(np.int64), "score": regions[:, 5]})
    _, frame, heat = frames.keyframe
    background = None if frame is None else overlay(frame, heat)
    traj = _png_bytes(_trajectory_image(background, frames.src_size, frames.path_points, label[:24]))
    return {"heatmap.npz": buf.getvalue(), "frames.parquet": frames_pq, "regions.parquet": regions_pq,
            "trajectory.png": traj, "overlay.mp4": frames.overlay}


# ------------------------------------------------------------------------------------ batches


def score_batch(
    refs: Sequence[ObjectRef],
    output_prefix: str,
    model_uri: str,
    cfg: ScoreConfig,
    params=None,
    loader: Callable | None = None,
    client=None,
    work_dir: str | Path | None = None,
) -> list[VideoResult]:
    """Score a batch of videos with one model load per process; a video that fails (S3 faults
    beyond the retries, an unexpected error) is reported as failed and the batch goes on."""
    loaded = get_model(model_uri, params, loader)
    client = client or make_client(cfg)
    results = []
    with tempfile.TemporaryDirectory(prefix="tvau-score-", dir=work_dir) as tmp:
        for ref in refs:
            try:
                results.append(score_video(ref, output_prefix, loaded, cfg, client, Path(tmp)))
            except S3Error as exc:
                results.append(VideoResult(ref.key, "failed",
                                           reason=str(exc)))
            except Exception as exc:  # noqa: BLE001 - one broken video must not stop the night
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                results.append(VideoResult(ref.key, "failed",
                                           reason=tb))
    return results


def result_dict(r: VideoResult) -> dict:
    return asdict(r)


def score_prefix(input_prefix: str, output_prefix: str, model_uri: str, cfg: ScoreConfig, params=None,
                 loader: Callable | None = None, client=None) -> list[VideoResult]:
    """Everything in one process, without Prefect (tests, benchmarks)."""
    client = client or make_client(cfg)
    out: list[VideoResult] = []
    for batch in batches(list_videos(client, input_prefix, cfg), cfg.videos_per_batch):
        out += score_batch(batch, output_prefix, model_uri, cfg, params, loader, client)
    return out



def read_manifest(uri: str, client=None, cfg: ScoreConfig | None = None) -> dict:
    """A scored video's manifest (for `tvau lineage s3://.../manifest.json`: output -> model
    version -> run -> data -> footage). Raises ValueError when it is missing or not a manifest,
    S3Error when S3 keeps failing."""
    cfg = cfg or ScoreConfig()
    data = get_bytes(client or make_client(cfg), uri, cfg)
    if data is None:
        raise ValueError(f"{uri}: no such object (no manifest: not scored, or a wrong key)")
    try:
        m = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        m = None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{uri}: not a scoring manifest ({MANIFEST_FORMAT})")
    return m
