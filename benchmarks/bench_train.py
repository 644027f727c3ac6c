"""Training step time per clip on this machine, the default params' model and clip size:

- the frozen vision pass of one clip (paid once per clip per run: the features are cached);
- stage 1: AHD forward + backward + DeepSpeed step share, from cached taps;
- stage 2: RAE + LoRA forward + backward + step share on a 5-turn phase-B dialogue, from a cached
  clip encoding; and one greedy dialogue turn (evaluation).
Each through the real DeepSpeed engine (one process, params train.zero_stage / precision / threads).
Run: python -m benchmarks train
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Row

REPEAT = 16


def _time(fn, n: int = REPEAT) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def run() -> list[Row]:
    import torch

    from tvau.config import load_params
    from tvau.construct.dialogue import phase_b_anomalous
    from tvau.model.ahd import ahd_loss
    from tvau.model.chat import Q_ANOMALY
    from tvau.model.tvau import TVAU
    from tvau.train.engine import init_distributed, initialize

    p = load_params()
    if p.train.threads:
        torch.set_num_threads(p.train.threads)
    _, world = init_distributed()
    c = p.clip
    frames = np.random.default_rng(0).integers(0, 255, (c.num_frames, c.height, c.width, 3), dtype=np.uint8)
    model = TVAU.from_params(p)
    note = f"{c.num_frames}x{c.height}x{c.width} clip, {p.model.backbone}, {torch.get_num_threads()} thread(s)"
    vision = _time(lambda: model.backbone.encode_video(frames), 8)
    enc = model.encode(frames)
    rows = [Row("vision pass (frozen, once per clip)", vision * 1e3, "ms", note=note)]

    model.set_stage("ahd")
    engine, _, _ = initialize(model, model.trainable_parameters(), p.train, p.train.ahd, 1000, world)
    anchors = model.backbone.anchors()
    t, h, w = enc.grid
    target = torch.zeros(t, h, w, dtype=torch.bool)
    target[:, h // 3:h // 2, w // 3:w // 2] = True

    def step1():
        engine.backward(ahd_loss(model.ahd(enc.vision.taps, anchors), target))
        engine.step()

    rows.append(Row("stage 1 step per clip (cached taps)", _time(step1) * 1e3, "ms", note=note))

    model.set_stage("rae")
    engine2, _, _ = initialize(model, model.trainable_parameters(), p.train, p.train.rae, 1000, world)
    msgs, _ = phase_b_anomalous({"described_category": "person", "described_colors": {}, "described_clothing": "",
                                 "described_action": "running", "regions": ["left", "middle"],
                                 "motion_state": "fast"}, [])
    turns = [(q["content"], a["content"]) for q, a in zip(msgs[::2], msgs[1::2])]
    with torch.no_grad():
        enc2 = type(enc)(enc.vision, model.ahd(enc.vision.taps, anchors))

    def step2():
        engine2.backward(model.dialogue_loss(enc2, turns))
        engine2.step()

    rows.append(Row("stage 2 step per clip (5-turn dialogue)", _time(step2) * 1e3, "ms", note=note))
    model.set_stage("frozen")
    chat = _time(lambda: model.chat(enc2, Q_ANOMALY, max_new_tokens=p.evaluate.max_new_tokens), 4)
    rows.append(Row("dialogue turn (greedy decoding)", chat * 1e3, "ms",
                    note=f"up to {p.evaluate.max_new_tokens} new tokens; " + note))
    return rows
