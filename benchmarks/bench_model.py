"""Forward time of the tiny T-VAU model per 24-frame 112x112 clip and the share spent in AHD + RAE.

Forward = one vision pass (taps + merged tokens) + AHD + RAE + the LM prefill over the first dialogue
question (inputs_embeds, M-RoPE positions). Each part is timed separately, median of REPEATS runs
after a warm-up, in one process on the machine's CPU threads. No target: the issue asks for the numbers.
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks.common import Row

REPEATS = 10


def run() -> list[Row]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from tvau.config import load_params
    from tvau.model.chat import Q_ANOMALY
    from tvau.model.clips import synthetic_clip
    from tvau.model.tvau import TVAU, ClipEncoding

    p = load_params()
    cfg = p.model
    if cfg.backbone != "embedded:tiny":  # this benchmark is about the tiny default
        cfg = cfg.model_copy(update={"backbone": "embedded:tiny"})
    model = TVAU.from_config(cfg, p.seed)
    clip = synthetic_clip(24, 112, 112)
    bb = model.backbone
    parts: dict[str, list[float]] = {"vision": [], "ahd": [], "rae": [], "lm": []}

    def once(record: bool) -> None:
        with torch.no_grad():
            t0 = time.perf_counter()
            vis = bb.encode_video(clip)
            t1 = time.perf_counter()
            logits = model.ahd(vis.taps, bb.anchors())
            t2 = time.perf_counter()
            enc = ClipEncoding(vis, logits)
            tokens = model.anomaly_tokens(enc)
            t3 = time.perf_counter()
            prompt = bb.prompt([(Q_ANOMALY, None)], vis.grid_thw, num_anomaly_tokens=tokens.shape[0])
            bb.logits(bb.embed(prompt, vis.video_embeds, tokens), bb.position_ids(prompt, vis.grid_thw))
            t4 = time.perf_counter()
        if record:
            for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[k].append(dt * 1000)

    once(False)
    for _ in range(REPEATS):
        once(True)
    med = {k: statistics.median(v) for k, v in parts.items()}
    total = sum(med.values())
    share = 100 * (med["ahd"] + med["rae"]) / total
    note = f"tiny, 24x112x112, median of {REPEATS}, {torch.get_num_threads()} threads"
    return [
        Row("model forward per clip (tiny)", total, "ms", note=note),
        Row("  AHD + RAE share", share, "%", note=f"AHD {med['ahd']:.1f} ms + RAE {med['rae']:.1f} ms"),
        Row("  vision tower (once per clip)", med["vision"], "ms", note="8 blocks, 768 patches"),
        Row("  LM prefill", med["lm"], "ms", note="2 layers, system + 192 video + 220 anomaly tokens"),
    ]
