"""Nightly scoring, through the real S3 server on loopback:

- throughput: source frames per second of wall time for a small synthetic night, and the share of
  wall time spent outside the model (listing, download, decode, outputs, uploads): goal < 25%;
- peak memory of a scoring process for a 10-second and a 10-minute synthetic video: ratio < 1.5.

The model is TVAU_BENCH_MODEL (a registry URI or a trained-model directory) or, by default, the
tiny embedded backbone with untrained adapters (speed and memory do not depend on training).
Threads: torch uses what it finds (2 cores here). The cascade's recall is bench_cascade.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Row

CHILD = "--memory-child"


def model_and_loader(tmp: Path):
    """(model URI, loader): TVAU_BENCH_MODEL with the contract's loader, or an untrained tiny model
    directory. Until tvau.model.trained is merged, a local reader of the same directory format."""
    uri = os.environ.get("TVAU_BENCH_MODEL")
    try:
        import tvau.model.trained  # noqa: F401

        loader = None  # tvau.score.model.load_trained_model, the contract's loader
    except ImportError:
        loader = _fallback_loader
    if uri:
        return uri, loader
    return str(_untrained_model_dir(tmp / "model")), loader


def _untrained_model_dir(out: Path) -> Path:
    from tvau.config import load_params
    from tvau.model.tvau import TVAU

    p = load_params()
    model = TVAU.from_params(p)
    out.mkdir(parents=True, exist_ok=True)
    model.save_adapters(out / "adapters.safetensors")
    card = {"format": "tvau-model/1", "model": p.model.model_dump(mode="json"), "seed": p.seed,
            "clip": p.clip.model_dump(mode="json"), "backbone": p.model.backbone, "backbone_sha256": None}
    (out / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    # The scorer refuses a model without a calibration. A threshold of 0 flags every video, so each
    # span's peak clip goes to the language model: the scorer's most expensive path.
    from tvau.evaluate.calibration import fit

    sampling = {"fps": p.score.sample_fps, "clip_frames": p.score.clip_frames, "stride": p.score.stride}
    block = fit([0.0] * 20 + [1.0] * 20, [False] * 20 + [True] * 20, p.score.false_alarm_rate,
                p.metrics.temporal_sigma / p.model.video_fps, sampling, 200, 0, 0.95, "validation")
    (out / "calibration.json").write_text(json.dumps(block, indent=2, sort_keys=True))
    return out


def _fallback_loader(path: str, params=None):
    from tvau.data.config import ClipConfig
    from tvau.model.config import ModelConfig
    from tvau.model.tvau import TVAU

    card = json.loads((Path(path) / "model.json").read_text())
    model = TVAU.from_config(ModelConfig.model_validate(card["model"]), seed=int(card["seed"]))
    model.load_adapters(Path(path) / "adapters.safetensors")
    model.set_stage("frozen")
    model.eval()
    model.clip = ClipConfig.model_validate(card["clip"])
    return model


def _write_video(path: Path, seconds: float, fps: float = 24.0, size: int = 64) -> int:
    """A moving square over noise (cheap to render at any length), streamed to the encoder."""
    import numpy as np

    from tvau.video import VideoWriter

    n = int(seconds * fps)
    rng = np.random.default_rng(0)
    noise = rng.integers(90, 130, size=(8, size, size, 3), dtype=np.uint8)
    with VideoWriter(path, fps, size, size) as w:
        for t in range(n):
            f = noise[t % 8].copy()
            x = (t * 2) % (size - 12)
            f[size // 2 - 6: size // 2 + 6, x: x + 12] = 240
            w.write(f)
    return n


def _night(tmp: Path) -> tuple[list[Path], int, int]:
    """A synthetic night: 4 videos of 192 frames (8 s at 24 fps -> 96 sampled frames, 4 clips each,
    so one model call holds `clips_per_call` clips of one video)."""
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    videos, frames, size = 4, 192, 128
    generate(tmp / "night", SynthConfig(videos=videos, frames=frames, size=size, scenes=2), seed=11, workers=1,
             progress=False)
    return sorted((tmp / "night").rglob("*.mp4")), frames, size


def _throughput(model_uri: str, loader, tmp: Path) -> list[Row]:
    """Two nights through the real S3 server: the vision path only (level 1.0: the cost of every
    clip), and the dialogue on every clip (level 0.0: the cascade's worst case), each at one clip
    per model call and at params.yaml's `clips_per_call`."""
    from tvau.config import load_params
    from tvau.s3server import running_s3_server
    from tvau.score.core import score_prefix
    from tvau.score.explain import SCORING_QUESTIONS
    from tvau.score.model import get_model
    from tvau.score.s3io import make_client
    from tvau.storage import temporary_environ

    files, frames, size = _night(tmp)
    base = load_params().score
    rows: list[Row] = []
    with running_s3_server(buckets=("footage", "results"), data_dir=tmp / "s3") as env, temporary_environ(env):
        client = make_client(base)
        for f in files:
            client.put_object(Bucket="footage", Key=f"night/{f.name}", Body=f.read_bytes())
        get_model(model_uri, None, loader)  # load once, outside the timing (one load per worker per night)
        # One untimed video first: torch's first calls (kernel selection, allocator growth) and the
        # server's first requests would otherwise be charged to whichever setting runs first.
        warm = base.model_copy(update={"escalate_level": 0.0, "max_new_tokens": 2})
        score_prefix(f"s3://footage/night/{files[0].name}", "s3://results/warmup", model_uri, warm, loader=loader,
                     client=client)
        for level, what in ((1.0, "vision only"), (0.0, "dialogue on every flagged span")):
            for per_call in sorted({1, base.clips_per_call}):
                cfg = base.model_copy(update={"escalate_level": level, "clips_per_call": per_call})
                out = f"s3://results/bench-{level}-{per_call}"
                t0 = time.perf_counter()
                res = score_prefix("s3://footage/night/", out, model_uri, cfg, loader=loader, client=client)
                wall = time.perf_counter() - t0
                assert all(r.status == "scored" for r in res), [(r.key, r.status, r.reason) for r in res]
                vision = sum(r.timings.get("vision_s", 0) for r in res)
                language = sum(r.timings.get("language_s", 0) for r in res)
                outside = 1 - (vision + language) / wall
                clips, esc = sum(r.clips for r in res), sum(r.escalated for r in res)
                note = (f"{len(files)} videos x {frames} frames @ {size}px 24 fps, sampled {cfg.sample_fps} fps, "
                        f"{clips} clips, {esc} escalated, {per_call} clip(s)/call, CPU")
                tag = f"score ({what}, {per_call}/call)"
                rows.append(Row(f"{tag}: throughput (source frames)", len(files) * frames / wall, "frames/s", "",
                                None, note))
                rows.append(Row(f"{tag}: vision tower + AHD per clip", 1000 * vision / clips, "ms", "", None, ""))
                if esc:
                    rows.append(Row(f"{tag}: dialogue per escalated clip", 1000 * language / esc, "ms", "", None,
                                    f"{len(SCORING_QUESTIONS)} questions, up to {cfg.max_new_tokens} tokens each"))
                if level == 1.0:
                    rows.append(Row(f"{tag}: wall time outside the model", 100 * outside, "%", "< 25 %",
                                    outside < 0.25, "list + download + decode + outputs + upload"))
    return rows


def _memory(model_uri: str, loader, tmp: Path) -> list[Row]:
    from tvau.s3server import running_s3_server

    short, long = tmp / "short.mp4", tmp / "long.mp4"
    _write_video(short, 10)
    _write_video(long, 600)
    out = {}
    with running_s3_server(buckets=("footage", "results"), data_dir=tmp / "s3m") as env:
        import boto3

        c = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="x",
                         aws_secret_access_key="y", region_name="us-east-1")
        for f in (short, long):
            c.put_object(Bucket="footage", Key=f"mem/{f.name}", Body=f.read_bytes())
        for f in (short, long):
            cmd = [sys.executable, "-m", "benchmarks.bench_score", CHILD, f"mem/{f.name}", model_uri,
                   "1" if loader is not None else "0"]
            res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, check=False)
            if res.returncode != 0:
                raise RuntimeError(f"memory child failed: {res.stderr[-2000:]}")
            out[f.name] = json.loads(res.stdout.strip().splitlines()[-1])
    s, lg = out["short.mp4"], out["long.mp4"]
    ratio = lg["peak_mb"] / s["peak_mb"]
    note = "peak RSS while scoring (model resident, load peak excluded), 64px 24 fps, sampled 12 fps"
    return [
        Row("score: peak memory, 10 s video", s["peak_mb"], "MB", "", None,
            f"{s['frames']} analysed frames; process peak incl. load {s['process_peak_mb']:.0f} MB"),
        Row("score: peak memory, 10 min video", lg["peak_mb"], "MB", "", None,
            f"{lg['frames']} analysed frames; process peak incl. load {lg['process_peak_mb']:.0f} MB"),
        Row("score: peak memory ratio 10 min / 10 s", ratio, "x", "< 1.5", ratio < 1.5, note),
        Row("score: peak above the loaded model, 10 min", lg["peak_mb"] - lg["loaded_mb"], "MB", "", None,
            f"10 s: {s['peak_mb'] - s['loaded_mb']:.1f} MB (RSS after loading: {lg['loaded_mb']:.0f} MB)"),
    ]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def _child(key: str, model_uri: str, use_fallback: str) -> None:
    import resource

    from tvau.score.config import ScoreConfig
    from tvau.score.core import list_videos, score_batch
    from tvau.score.model import get_model
    from tvau.score.s3io import make_client

    loader = _fallback_loader if use_fallback == "1" else None
    cfg = ScoreConfig(escalate_level=1.0, sample_fps=12.0)  # the rate the note names, not params.yaml's
    get_model(model_uri, None, loader)
    loaded_mb = _status_mb("VmRSS")
    # Loading the weights peaks above the steady state; reset the high-water mark (Linux >= 4.0:
    # "5" to clear_refs resets VmHWM) so the scoring's own peak is what is measured.
    Path("/proc/self/clear_refs").write_text("5")
    client = make_client(cfg)
    refs = [r for r in list_videos(client, "s3://footage/mem/", cfg) if r.key == key]
    res = score_batch(refs, "s3://results/mem", model_uri, cfg, loader=loader, client=client)
    assert res[0].status == "scored", res
    peak = _status_mb("VmHWM")
    print(json.dumps({"peak_mb": peak, "loaded_mb": loaded_mb, "frames": res[0].frames,
                      "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench_score_") as d:
        tmp = Path(d)
        model_uri, loader = model_and_loader(tmp)
        rows = _throughput(model_uri, loader, tmp)
        rows += _memory(model_uri, loader, tmp)
    return rows


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == CHILD:
    _child(*sys.argv[2:5])
