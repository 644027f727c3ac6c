"""Generator speed: the issue's target is a 60-video set at 256x256 in about a minute on 2 cores.

Also times reading the set back (UBnormal reader with RBDC boxes) and iterating its clips."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import Row


def run() -> list[Row]:
    from tvau.data import open_dataset
    from tvau.data.clips import iter_clips
    from tvau.data.config import ClipConfig
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    cfg = SynthConfig()  # 60 videos, 256x256, 96 frames
    workers = min(2, os.cpu_count() or 1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        t0 = time.perf_counter()
        manifest = generate(tmp / "ds", cfg, seed=0, workers=workers, progress=False)
        gen_s = time.perf_counter() - t0
        frames = manifest["counts"]["frames"]
        t0 = time.perf_counter()
        records = open_dataset(tmp / "ds", "ubnormal")
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_clips = sum(1 for r in records[:10] for _ in iter_clips(r, ClipConfig()))
        clip_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in (tmp / "ds").rglob("*") if p.is_file()) / 1e6
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    note = f"{cfg.videos} videos x {cfg.frames} frames @ {cfg.size}px, {workers} workers"
    return [
        Row("synth: generate default set", gen_s, "s", "<= ~60 s", gen_s <= 75, note),
        Row("synth: frames rendered+encoded per second", frames / gen_s, "frames/s", "", None, note),
        Row("synth: dataset size on disk", size_mb, "MB", "", None, "mp4 + PNG id maps + sidecars"),
        Row("data: read UBnormal tree (with RBDC boxes)", read_s, "s", "", None, f"{len(records)} videos"),
        Row("data: iter_clips (24 frames, stride 12, 112px)", n_clips / clip_s, "clips/s", "", None, "10 videos"),
    ]
