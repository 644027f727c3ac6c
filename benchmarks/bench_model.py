"""Forward time of the T-VAU model per 24-frame clip and the share spent in AHD + RAE.

Forward = one vision pass (taps + merged tokens) + AHD + RAE + the LM prefill over the first dialogue
question (inputs_embeds, M-RoPE positions, lm_head over the whole prompt). Each part is timed
separately, median of the timed runs after a warm-up, in one process. No target: the issue asks for
the numbers.

Default: the tiny embedded backbone on the CPU, 24x112x112 (what `python -m benchmarks model` prints).

At the paper's scale, with environment variables (nothing is downloaded: random weights, see
tvau.model.random_backbone):

    TVAU_BENCH_ARCH=qwen2.5-vl-7b TVAU_BENCH_DEVICE=cuda TVAU_BENCH_DTYPE=bfloat16 python -m benchmarks model

- TVAU_BENCH_ARCH: 'tiny' or 'qwen2.5-vl-7b'; builds the architecture with random weights on the device.
- TVAU_BENCH_DEVICE: 'cpu' (default) or 'cuda'. On CUDA every part boundary is synchronised and the
  peak of torch.cuda.max_memory_allocated over the timed forwards is reported.
- TVAU_BENCH_DTYPE: backbone dtype (default bfloat16 on CUDA, float32 on CPU; AHD/RAE stay fp32).
- TVAU_BENCH_CLIP: TxHxW of the synthetic clip (default 24x476x868: the paper's 868x476 frames,
  patch grid 12x34x62, 6324 video tokens).
- TVAU_BENCH_REPEATS: timed runs (default 10), after TVAU_BENCH_WARMUP warm-up runs (default 2).
- TVAU_BENCH_JSON: if set, a path where every timed sample and the setup are written as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from benchmarks.common import Row

REPEATS = 10  # tiny default
PAPER_CLIP = "24x476x868"


def _time_forward(model, clip, repeats: int, warmup: int, sync) -> tuple[dict[str, list[float]], dict]:
    """Per-part wall times in ms over `repeats` forwards after `warmup` untimed ones. `sync` waits for
    the device (a no-op on CPU) so that each part's kernels are counted in that part."""
    import torch

    from tvau.model.chat import Q_ANOMALY
    from tvau.model.tvau import ClipEncoding

    bb = model.backbone
    parts: dict[str, list[float]] = {"vision": [], "ahd": [], "rae": [], "lm": []}
    shape: dict = {}

    def once(record: bool) -> None:
        with torch.no_grad():
            sync()
            t0 = time.perf_counter()
            vis = bb.encode_video(clip)
            sync()
            t1 = time.perf_counter()
            logits = model.ahd(vis.taps, bb.anchors())
            sync()
            t2 = time.perf_counter()
            enc = ClipEncoding(vis, logits)
            tokens = model.anomaly_tokens(enc)
            sync()
            t3 = time.perf_counter()
            prompt = bb.prompt([(Q_ANOMALY, None)], vis.grid_thw, num_anomaly_tokens=tokens.shape[0])
            out = bb.logits(bb.embed(prompt, vis.video_embeds, tokens), bb.position_ids(prompt, vis.grid_thw))
            sync()
            t4 = time.perf_counter()
        shape.update(grid=enc.grid, patches=int(vis.grid_thw.prod()), video_tokens=int(vis.video_embeds.shape[0]),
                     anomaly_tokens=int(tokens.shape[0]), prompt_tokens=int(prompt.input_ids.shape[1]),
                     finite=bool(torch.isfinite(out).all()) and bool(torch.isfinite(logits).all()))
        if record:
            for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[k].append(dt * 1000)

    for _ in range(warmup):
        once(False)
    for _ in range(repeats):
        once(True)
    return parts, shape


def _run_tiny_default() -> list[Row]:
    import torch

    from tvau.config import load_params
    from tvau.model.clips import synthetic_clip
    from tvau.model.tvau import TVAU

    p = load_params()
    cfg = p.model
    if cfg.backbone != "embedded:tiny":  # this benchmark is about the tiny default
        cfg = cfg.model_copy(update={"backbone": "embedded:tiny"})
    model = TVAU.from_config(cfg, p.seed)
    parts, _ = _time_forward(model, synthetic_clip(24, 112, 112), REPEATS, 1, lambda: None)
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


def _parse_clip(spec: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise ValueError(f"TVAU_BENCH_CLIP={spec!r}: expected TxHxW, e.g. {PAPER_CLIP}") from None
    return t, h, w


def _run_arch(arch: str) -> list[Row]:
    import torch

    from tvau.config import load_params
    from tvau.model.clips import synthetic_clip
    from tvau.model.random_backbone import random_backbone
    from tvau.model.tvau import TVAU

    device = os.environ.get("TVAU_BENCH_DEVICE", "cpu")
    cuda = torch.device(device).type == "cuda"
    dtype = os.environ.get("TVAU_BENCH_DTYPE", "bfloat16" if cuda else "float32")
    t, h, w = _parse_clip(os.environ.get("TVAU_BENCH_CLIP", PAPER_CLIP))
    repeats = int(os.environ.get("TVAU_BENCH_REPEATS", "10"))
    warmup = int(os.environ.get("TVAU_BENCH_WARMUP", "2"))
    if cuda and not torch.cuda.is_available():
        raise RuntimeError(f"TVAU_BENCH_DEVICE={device} but torch {torch.__version__} sees no CUDA device")

    p = load_params()
    cfg = p.model.model_copy(update={"device": device, "dtype": dtype})
    t_build = time.perf_counter()
    model = TVAU(random_backbone(arch, cfg, seed=cfg.tiny_seed), cfg, p.seed)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    t_build = time.perf_counter() - t_build
    weights_gib = torch.cuda.memory_allocated() / 2**30 if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    parts, shape = _time_forward(model, synthetic_clip(t, h, w), repeats, warmup, sync)
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else None

    med = {k: statistics.median(v) for k, v in parts.items()}
    total = sum(med.values())
    share = 100 * (med["ahd"] + med["rae"]) / total
    vc, tc = model.backbone.model.config.vision_config, model.backbone.model.config.text_config
    where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    setup = (f"{arch} random weights, {dtype}, {t}x{h}x{w} (grid {'x'.join(map(str, shape['grid']))}), "
             f"median of {repeats} after {warmup} warm-up, {where}")
    spread = {k: (min(v), max(v)) for k, v in parts.items()}
    rows = [
        Row(f"model forward per clip ({arch}, {device})", total, "ms", note=setup),
        Row("  AHD + RAE share", share, "%", note=f"AHD {med['ahd']:.1f} ms + RAE {med['rae']:.1f} ms"),
        Row("  vision tower (once per clip)", med["vision"], "ms",
            note=f"{vc.depth} blocks x {vc.hidden_size}, {shape['patches']} patches, "
                 f"{len(model.backbone.taps)} taps, attention {vc._attn_implementation}"),
        Row("  AHD", med["ahd"], "ms", note=f"fp32, {len(model.backbone.taps)} taps -> H_c {tuple(shape['grid'])}"),
        Row("  RAE", med["rae"], "ms", note=f"fp32, {shape['anomaly_tokens']} prompt tokens"),
        Row("  LM prefill", med["lm"], "ms",
            note=f"{tc.num_hidden_layers} layers x {tc.hidden_size}, {shape['prompt_tokens']} tokens "
                 f"({shape['video_tokens']} video + {shape['anomaly_tokens']} anomaly), lm_head on all"),
    ]
    if cuda:
        rows += [
            Row("  GPU memory: weights + adapters", weights_gib, "GiB", note="torch.cuda.memory_allocated after build"),
            Row("  GPU memory: peak during forward", peak_gib, "GiB", note="torch.cuda.max_memory_allocated"),
        ]
    rows.append(Row("  build (random init on device)", t_build, "s",
                    note="outputs finite" if shape["finite"] else "NON-FINITE outputs (random weights)"))
    if out := os.environ.get("TVAU_BENCH_JSON"):
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({
            "arch": arch, "device": device, "device_name": where, "dtype": dtype, "clip": [t, h, w],
            "repeats": repeats, "warmup": warmup, "torch": torch.__version__, "shape": shape,
            "attention": {"vision": vc._attn_implementation, "text": tc._attn_implementation},
            "median_ms": med, "total_ms": total, "ahd_rae_share_pct": share, "min_max_ms": spread,
            "samples_ms": parts, "weights_gib": weights_gib, "peak_gib": peak_gib, "build_s": t_build,
        }, indent=2))
        os.replace(tmp, path)
    return rows


def run() -> list[Row]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    arch = os.environ.get("TVAU_BENCH_ARCH")
    return _run_arch(arch) if arch else _run_tiny_default()
