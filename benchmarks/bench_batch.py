"""Issue 9: the model's per-clip cost before and after the one-call vision attention and batching.

For each configuration (vision attention x batch size) the same synthetic clips go through the whole
first dialogue turn, each part timed on its own (device synchronised at every boundary), median over
the timed repeats after a warm-up, divided by the batch size (per clip):

    vision (one tower call for the batch) | AHD | RAE | LM prefill (left-padded, one call) |
    decode (greedy, one KV cache: tokens/s over all clips) | first turn = the sum | peak memory

"before" = transformers' stock attention (one call per window, in a Python loop) at batch 1, which is
how the model ran before the one-call attention; "after" = model.attn_implementation "auto" at every batch size.
Then one training step per clip (batch 1): stage 1 (vision + AHD backward + AdamW step) and stage 2
(vision + RAE + LoRA through the LM, backward, step) with and without gradient checkpointing. And the
equivalence of the new attention with the stock one at batch 1 (fp32: absolute, else relative).

Default: the tiny architecture on the CPU, 24x112x112 (`python -m benchmarks batch`). On a GPU:

    TVAU_BENCH_ARCH=qwen2.5-vl-7b TVAU_BENCH_DEVICE=cuda python -m benchmarks batch   (benchmarks/device_check.sh)

Environment: TVAU_BENCH_ARCH ('tiny' | 'qwen2.5-vl-7b'; random weights, tvau.model.random_backbone),
TVAU_BENCH_DEVICE, TVAU_BENCH_DTYPE (default bfloat16 on CUDA, float32 on CPU), TVAU_BENCH_CLIP (TxHxW;
default 24x112x112 tiny, 24x476x868 7B), TVAU_BENCH_BATCHES (default 1,2,4,8), TVAU_BENCH_BEFORE
(stock attentions timed at batch 1, default "eager,sdpa"), TVAU_BENCH_REPEATS (default 5) after
TVAU_BENCH_WARMUP (default 1), TVAU_BENCH_NEW_TOKENS (decoded tokens per clip, default 32),
TVAU_BENCH_TRAIN (0 skips the training steps), TVAU_BENCH_RESULTS (folder of the JSON result, default
benchmarks/results; the file is bench_batch_<device>.json).

On a shared CPU the spread between repeats is large: the table gives medians of wall time, plus the
median CPU time this process spent on a turn (less sensitive to other processes' load); the JSON
keeps every sample and the minimum.
CPU peak memory is the peak resident-set growth of the process during the configuration (sampled
every 5 ms, after glibc's malloc_trim; a rough figure, the allocator may still reuse memory it
holds); on CUDA it is torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
import time
from pathlib import Path

from benchmarks.common import Row

GIB = 2**30


def _malloc_trim() -> None:
    """glibc keeps freed heap memory mapped; without trimming, a configuration that follows a larger
    one would show no RSS growth at all. A no-op where there is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


class _RssPeak:
    """Peak growth of this process's resident set while the block runs (CPU memory)."""

    def __enter__(self):
        _malloc_trim()  # hand freed heap back to the OS, so the growth counts this block's own peak
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _watch(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def gib(self) -> float:
        return (self.peak - self.base) / GIB


class _Memory:
    def __init__(self, cuda: bool):
        self.cuda = cuda

    def __enter__(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.rss = _RssPeak().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.gib = torch.cuda.max_memory_allocated() / GIB
        else:
            self.rss.__exit__(*exc)
            self.gib = self.rss.gib


def _turn(model, clips, new_tokens: int, sync) -> tuple[dict[str, float], int, float]:
    """One first dialogue turn for a batch of clips: wall seconds per part (whole batch), tokens
    decoded, and this process's CPU seconds for the whole turn (all its threads)."""
    import torch

    from tvau.model.chat import Q_ANOMALY
    from tvau.model.tvau import ClipEncoding

    bb = model.backbone
    stamps: list[float] = []

    def lm_done(*_):
        sync()
        stamps.append(time.perf_counter())

    with torch.no_grad():
        sync()
        c0 = time.process_time()
        t0 = time.perf_counter()
        vis = bb.encode_videos(clips)
        sync()
        t1 = time.perf_counter()
        logits = model.ahd_batch(vis)
        sync()
        t2 = time.perf_counter()
        encs = [ClipEncoding(v, h) for v, h in zip(vis, logits)]
        tokens = model.anomaly_tokens_batch(encs)
        sync()
        t3 = time.perf_counter()
        _, emb, mask, pos = model._lm_batch(encs, [[(Q_ANOMALY, None)]] * len(clips), tokens)
        hook = bb.language_model.register_forward_hook(lm_done)  # the first LM call is the prefill
        try:
            out = bb.greedy_tokens_batch(emb, pos, new_tokens, mask if len(clips) > 1 else None)
        finally:
            hook.remove()
        sync()
        t5 = time.perf_counter()
        cpu = time.process_time() - c0
    t4 = stamps[0]
    return ({"vision": t1 - t0, "ahd": t2 - t1, "rae": t3 - t2, "prefill": t4 - t3, "decode": t5 - t4},
            sum(len(o) for o in out), cpu)


def _measure(model, plan: dict[str, tuple[str, int]], clips, new_tokens, repeats, warmup, sync, cuda) -> dict:
    """Time every configuration of `plan` (name -> (attention, batch)). Round robin: each repeat runs
    every configuration once, so load from other processes on a shared machine hits all of them alike."""
    import torch

    bb = model.backbone
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in plan}
    decoded: dict[str, list[int]] = {name: [] for name in plan}
    cpu_ms: dict[str, list[float]] = {name: [] for name in plan}
    peak: dict[str, float] = dict.fromkeys(plan, 0.0)
    failed: dict[str, str] = {}
    for r in range(warmup + repeats):
        for name, (att, b) in plan.items():
            if name in failed:
                continue
            bb.set_attention(att)
            try:
                with _Memory(cuda) as mem:
                    parts, n, cpu = _turn(model, clips[:b], new_tokens, sync)
            except torch.cuda.OutOfMemoryError as exc:  # a batch too large for the card: report, go on
                failed[name] = f"out of memory: {str(exc).splitlines()[0]}"
                torch.cuda.empty_cache()
                continue
            if r < warmup:
                continue
            peak[name] = max(peak[name], mem.gib)
            for k, v in parts.items():
                samples[name].setdefault(k, []).append(v * 1000 / b)  # ms per clip
            decoded[name].append(n)
            cpu_ms[name].append(cpu * 1000 / b)
    out = {}
    for name, (att, b) in plan.items():
        if name in failed:
            out[name] = {"attention": att, "batch": b, "error": failed[name]}
            continue
        med = {k: statistics.median(v) for k, v in samples[name].items()}
        tok_s = statistics.median(n / (d * b / 1000) for n, d in zip(decoded[name], samples[name]["decode"]))
        out[name] = {"attention": bb.attn_implementation if att == "auto" else att, "batch": b,
                     "median_ms_per_clip": med, "samples_ms_per_clip": samples[name],
                     "decode_tokens_per_s": tok_s, "tokens_decoded": decoded[name],
                     "first_turn_ms_per_clip": sum(med.values()), "peak_gib": peak[name],
                     "min_ms_per_clip": {k: min(v) for k, v in samples[name].items()},
                     "process_cpu_ms_per_clip": statistics.median(cpu_ms[name]), "process_cpu_samples": cpu_ms[name]}
    return out


def _train_step(model, clip, stage: str, opt, target) -> None:
    from tvau.model.ahd import ahd_loss
    from tvau.model.chat import Q_ANOMALY

    enc = model.encode(clip)
    if stage == "ahd":
        loss = ahd_loss(enc.logits, target)
    else:
        answer = "Yes. A person is running from the left to the middle of the scene."
        loss = model.dialogue_loss(enc, [(Q_ANOMALY, answer)])
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _train_steps(model, clip, repeats, warmup, sync, cuda) -> dict:
    """Milliseconds per training step (batch 1): stage 1, stage 2 without/with gradient checkpointing;
    round robin over the three like _measure."""
    import numpy as np
    import torch

    grid = model.encode(clip).grid
    target = torch.from_numpy(np.random.default_rng(0).random(grid) > 0.9)
    cfg0 = model.cfg
    plan = {"stage1": ("ahd", False), "stage2": ("rae", False), "stage2_ckpt": ("rae", True)}
    opts = {}
    for name, (stage, _) in plan.items():
        model.set_stage(stage)
        opts[name] = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    times: dict[str, list[float]] = {name: [] for name in plan}
    peak = dict.fromkeys(plan, 0.0)
    failed: dict[str, str] = {}
    for r in range(warmup + repeats):
        for name, (stage, ckpt) in plan.items():
            model.cfg = cfg0.model_copy(update={"gradient_checkpointing": ckpt})
            model.set_stage(stage)
            model.train()
            if name in failed:
                continue
            try:
                with _Memory(cuda) as mem:
                    sync()
                    t0 = time.perf_counter()
                    _train_step(model, clip, stage, opts[name], target)
                    sync()
                    dt = (time.perf_counter() - t0) * 1000
            except torch.cuda.OutOfMemoryError as exc:
                failed[name] = f"out of memory: {str(exc).splitlines()[0]}"
                opts[name].zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                continue
            if r >= warmup:
                times[name].append(dt)
                peak[name] = max(peak[name], mem.gib)
    model.cfg = cfg0
    model.set_stage("frozen")
    model.eval()
    return {name: {"error": failed[name]} if name in failed else
            {"median_ms": statistics.median(times[name]), "samples_ms": times[name], "peak_gib": peak[name]}
            for name in plan}


def _equivalence(model, clip, stock: str) -> dict:
    """max |new - stock| at batch 1 on tapped features, merged tokens, heatmap and the last prefill
    logits (and each relative to the stock value's largest magnitude)."""
    import torch

    from tvau.model.chat import Q_ANOMALY

    bb = model.backbone

    def run():
        with torch.no_grad():
            enc = model.encode(clip)
            _, emb, pos = model._lm_inputs(enc, [(Q_ANOMALY, None)])
            h = bb.language_model(inputs_embeds=emb, position_ids=pos, use_cache=False).last_hidden_state
            last = bb.model.lm_head(h[:, -1]).float()
            return {"taps": torch.stack([t.flatten() for t in enc.vision.taps]).float(),
                    "video_embeds": enc.vision.video_embeds.float(),
                    "heatmap": model.heatmap(enc).float(), "last_logits": last}

    ours = run()
    bb.set_attention(stock)
    try:
        ref = run()
    finally:
        bb.set_attention(model.cfg.attn_implementation)
    out = {}
    for k in ours:
        diff = float((ours[k].cpu() - ref[k].cpu()).abs().max())
        scale = float(ref[k].abs().max())
        out[k] = {"max_abs": diff, "max_rel": diff / scale if scale else diff}
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run() -> list[Row]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from tvau.config import load_params
    from tvau.model.clips import synthetic_clip
    from tvau.model.random_backbone import random_backbone
    from tvau.model.tvau import TVAU

    arch = os.environ.get("TVAU_BENCH_ARCH", "tiny")
    device = os.environ.get("TVAU_BENCH_DEVICE", "cpu")
    cuda = torch.device(device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError(f"TVAU_BENCH_DEVICE={device} but torch {torch.__version__} sees no CUDA device")
    dtype = os.environ.get("TVAU_BENCH_DTYPE", "bfloat16" if cuda else "float32")
    spec = os.environ.get("TVAU_BENCH_CLIP", "24x112x112" if arch == "tiny" else "24x476x868")
    t, h, w = (int(v) for v in spec.lower().split("x"))
    batches = [int(b) for b in os.environ.get("TVAU_BENCH_BATCHES", "1,2,4,8").split(",")]
    before = [a for a in os.environ.get("TVAU_BENCH_BEFORE", "eager,sdpa").split(",") if a]
    repeats = int(os.environ.get("TVAU_BENCH_REPEATS", "5"))
    warmup = int(os.environ.get("TVAU_BENCH_WARMUP", "1"))
    new_tokens = int(os.environ.get("TVAU_BENCH_NEW_TOKENS", "32"))
    train = os.environ.get("TVAU_BENCH_TRAIN", "1") != "0"
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    p = load_params()
    cfg = p.model.model_copy(update={"device": device, "dtype": dtype, "attn_implementation": "auto"})
    model = TVAU(random_backbone(arch, cfg, seed=cfg.tiny_seed), cfg, p.seed)
    bb = model.backbone
    after = bb.attn_implementation
    clips = [synthetic_clip(t, h, w, seed=i) for i in range(max(batches))]
    where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"

    # "before": the stock per-window loop, one clip at a time (the code before the one-call attention); "after": auto.
    plan = {f"before {att} b1": (att, 1) for att in before} | {f"after b{b}": ("auto", b) for b in batches}
    configs = _measure(model, plan, clips, new_tokens, repeats, warmup, sync, cuda)
    bb.set_attention("auto")
    equiv = _equivalence(model, clips[0], before[0] if before else "sdpa")
    training = _train_steps(model, clips[0], repeats, warmup, sync, cuda) if train else {}

    out_dir = Path(os.environ.get("TVAU_BENCH_RESULTS", Path(__file__).parent / "results"))
    from tvau.storage import atomic_path

    slug = _slug(torch.cuda.get_device_name()) if cuda else f"cpu-{torch.get_num_threads()}threads"
    path = out_dir / f"bench_batch_{arch}_{slug}.json"
    with atomic_path(path) as tmp:  # written first: the figures survive a failure in the table below
        tmp.write_text(json.dumps({
            "arch": arch, "device": device, "device_name": where, "dtype": dtype, "clip": [t, h, w],
            "repeats": repeats, "warmup": warmup, "new_tokens": new_tokens, "torch": torch.__version__,
            "attention_after": after, "configs": configs, "training": training, "equivalence": equiv,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "note": "ms per clip; medians of the timed repeats (round robin over configurations)",
        }, indent=2))

    setup = (f"{arch} random weights, {dtype}, clips {t}x{h}x{w}, {new_tokens} new tokens, median of {repeats} "
             f"after {warmup} warm-up (round robin), {where}")
    rows = [Row(f"batch benchmark ({arch}, {device})", float(len(configs)), "configs", note=setup)]
    done = {n: c for n, c in configs.items() if "error" not in c}
    afters = {n: c for n, c in done.items() if n.startswith("after")}
    for n, c in configs.items():
        if "error" in c:
            rows.append(Row(f"{n}: FAILED", float("nan"), "", note=c["error"]))
    if not afters:
        return rows
    best = min(afters, key=lambda n: afters[n]["first_turn_ms_per_clip"])
    best_heat = min(afters, key=lambda n: afters[n]["median_ms_per_clip"]["vision"] + afters[n]["median_ms_per_clip"]["ahd"])
    for n, c in done.items():
        if n in afters and n not in ("after b1", best, best_heat, "after b8"):
            continue
        m = c["median_ms_per_clip"]
        rows.append(Row(f"{n}{' (best)' if n == best else ''}: first turn / clip", c["first_turn_ms_per_clip"], "ms",
                        note=f"vision {m['vision']:.1f} | AHD {m['ahd']:.2f} | RAE {m['rae']:.2f} | "
                             f"prefill {m['prefill']:.1f} ms/clip | decode {c['decode_tokens_per_s']:.0f} tok/s "
                             f"| peak {c['peak_gib']:.2f} GiB | attention {c['attention']}"
                             + ("" if cuda else f" | process CPU {c['process_cpu_ms_per_clip']:.0f} ms/clip")))
    # The GPU goals (the 7B architecture only; the tiny numbers are the CPU before/after).
    goal = arch == "qwen2.5-vl-7b"
    vis_n = min(afters, key=lambda n: afters[n]["median_ms_per_clip"]["vision"])
    vis_best = afters[vis_n]["median_ms_per_clip"]["vision"]
    heat = afters[best_heat]["median_ms_per_clip"]
    clips_s = 1000 / (heat["vision"] + heat["ahd"])
    rows.append(Row("  vision tower / clip (after, best batch)", vis_best, "ms", "<= 120" if goal else "",
                    (vis_best <= 120) if goal else None, note=vis_n))
    rows.append(Row("  heatmap path (vision + AHD)", clips_s, "clips/s", ">= 6" if goal else "",
                    (clips_s >= 6) if goal else None, note=best_heat))
    if "after b8" in afters:
        ft8 = afters["after b8"]["first_turn_ms_per_clip"]
        rows.append(Row("  first turn / clip at batch 8", ft8, "ms", "<= 400" if goal else "",
                        (ft8 <= 400) if goal else None, note=f"{new_tokens} new tokens per clip"))
    peak = max(c["peak_gib"] for c in afters.values())
    rows.append(Row("  peak memory (after, any batch)", peak, "GiB", "<= 40" if goal else "",
                    (peak <= 40) if goal else None, note="CUDA max allocated" if cuda else "CPU RSS growth"))
    for n, c in done.items():
        if n.startswith("before"):
            m, a = c["median_ms_per_clip"], afters[best]["median_ms_per_clip"]
            rows.append(Row(f"  speed-up {n} -> {best}: first turn", c["first_turn_ms_per_clip"]
                            / afters[best]["first_turn_ms_per_clip"], "x",
                            note=f"vision {m['vision'] / a['vision']:.2f}x"))
    for k, v in training.items():
        if "error" in v:
            rows.append(Row(f"train step / clip: {k}: FAILED", float("nan"), "", note=v["error"]))
        else:
            rows.append(Row(f"train step / clip: {k}", v["median_ms"], "ms",
                            note=f"peak {v['peak_gib']:.2f} GiB, batch 1"))
    fp32 = dtype == "float32"
    for k, v in equiv.items():
        val = v["max_abs"] if fp32 else v["max_rel"]
        target = "< 1e-5 abs" if fp32 else "< 5e-2 rel"
        rows.append(Row(f"  new vs stock attention: {k}", val, "abs" if fp32 else "rel", target,
                        val < (1e-5 if fp32 else 5e-2), note=f"max abs {v['max_abs']:.3g}, batch 1"))
    rows.append(Row("  results written", len(configs), "configs", note=str(path)))
    return rows
