"""Pretrain the embedded tiny Qwen2.5-VL's vision tower and merger on the pretraining world (DVC
stage pretrain_vision), and save the model as an ordinary Hugging Face model directory whose language
model is still random (tvau.pretrain.language trains it next).

Start: the embedded tiny architecture (tvau.model.tiny: same tokenizer) with the tower widened to
`vision.width` and the merger writing `vision.merged_width`-wide tokens (the language model's width),
initialised from `model.tiny_seed`. Trained: `model.visual` (patch embedding, blocks, merger) with
throw-away heads:
- on the last block's output (through one LayerNorm), per patch: category (cross-entropy, background
  down-weighted), action (cross-entropy on object patches), velocity (smooth L1 on object patches),
  appearance (upper and lower colour, top and bottom garment of the object covering the patch);
- on the merged tokens the language model reads, per 2x2 merge unit: the category, action and
  appearance of each of its four patches (so the merger keeps what the tower sees; without the
  appearance here a linear probe read a person's top colour from the merged tokens at 0.195).
Samples: `vision.pool_videos` world videos rendered once, each step `vision.batch` object-weighted
crops of their clips (CropPool); held-out metrics on whole clips of stream 1.

Determinism: one fixed thread count, torch.use_deterministic_algorithms, every random draw seeded
from the config, so the same parameters and code give the same bytes (DVC caches the output), also
when the run is stopped and resumed (tvau.pretrain.checkpoint).
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tvau.pretrain.config import PretrainConfig, VisionConfig, WorldConfig
from tvau.pretrain.world import (
    ACTION_TARGETS,
    APPEARANCE_TARGETS,
    CATEGORY_TARGETS,
    IGNORE,
    patch_targets,
    render_world_video,
    resize_clip,
)

PRETRAIN_FORMAT = "tvau-pretrained-backbone/2"
_APPEARANCE_SIZES = tuple(len(words) for _, words in APPEARANCE_TARGETS)


class Heads(nn.Module):
    """The pretraining heads (discarded after training). The tower's last block output is its
    un-normalised residual stream, so the per-patch heads read it through one LayerNorm (without it
    the heads chase the stream's scale and training oscillates)."""

    def __init__(self, width: int, out_width: int) -> None:
        super().__init__()
        nc, na, nl = len(CATEGORY_TARGETS), len(ACTION_TARGETS), sum(_APPEARANCE_SIZES)
        self.norm = nn.LayerNorm(width)
        self.category_head = nn.Linear(width, nc)
        self.action_head = nn.Linear(width, na)
        self.velocity_head = nn.Linear(width, 2)
        self.appearance_head = nn.Linear(width, nl)
        self.merged = nn.Linear(out_width, 4 * (nc + na + nl))

    def category(self, h: torch.Tensor) -> torch.Tensor:
        return self.category_head(self.norm(h))

    def action(self, h: torch.Tensor) -> torch.Tensor:
        return self.action_head(self.norm(h))

    def velocity(self, h: torch.Tensor) -> torch.Tensor:
        return self.velocity_head(self.norm(h))

    def appearance(self, h: torch.Tensor) -> torch.Tensor:
        return self.appearance_head(self.norm(h))


def _appearance_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the appearance columns of their cross-entropy (so the four weigh as one loss beside
    category and action); `logits` (N, sum of sizes), `targets` (N, 4) with IGNORE where a column
    does not apply. A column with no target in the batch adds 0."""
    total = logits.sum() * 0
    for k, part in enumerate(logits.split(_APPEARANCE_SIZES, dim=-1)):
        t = targets[:, k]
        if (t != IGNORE).any():
            total = total + F.cross_entropy(part, t, ignore_index=IGNORE)
    return total / len(_APPEARANCE_SIZES)


def _sample(video, start: int, frames: np.ndarray, ids: np.ndarray, preprocessor, cfg: VisionConfig):
    """One clip (frames, id maps already at the clip size, or a crop of it) -> pixel patches, its
    grid row and targets in the tower's patch order (t, h/2, w/2, 2, 2)."""
    p, g = preprocessor(np.ascontiguousarray(frames))
    t = patch_targets(video, start, ids, preprocessor.patch_size, preprocessor.temporal_patch_size, cfg.min_coverage)
    m = preprocessor.merge_size
    tg = {}
    for k, v in t.items():
        tq, hq, wq = v.shape[:3]
        v = v.reshape(tq, hq // m, m, wq // m, m, *v.shape[3:]).swapaxes(2, 3)
        tg[k] = torch.from_numpy(np.ascontiguousarray(v).reshape(tq * hq * wq, *v.shape[5:]))
    return p, g, tg


def _collate(samples):
    pix, grids, tgs = zip(*samples)
    return torch.cat(pix), torch.cat(grids), {k: torch.cat([t[k] for t in tgs]) for k in tgs[0]}


def _batch(cfg: VisionConfig, video, height: int, width: int, preprocessor):
    """All clips of one world video, whole -> pixel patches, grid rows and targets, concatenated."""
    frames, ids = resize_clip(video.frames, video.ids, height, width)
    n = cfg.clip_frames
    return _collate([_sample(video, s, frames[s:s + n], ids[s:s + n], preprocessor, cfg)
                     for s in range(0, frames.shape[0] - n + 1, n)])


def _render(world: WorldConfig, stream: int, index: int, height: int, width: int, describe=None):
    """World video `index` of `stream` at the clip size: (labels-only WorldVideo, frames, ids). A pure
    function of its arguments, so rendering it in another process gives the same arrays."""
    import dataclasses

    v = render_world_video(world, stream, index, describe)
    frames, ids = resize_clip(v.frames, v.ids, height, width)
    empty = np.zeros((0,), np.uint8)
    return dataclasses.replace(v, frames=empty, ids=empty), frames, ids


def render_pool(workers: int):
    """`workers` spawned helper processes rendering world videos (None for 0). Spawn, not fork: the
    parent may hold threads (torch, a progress bar) that fork would copy mid-lock."""
    if not workers:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def render_videos(world: WorldConfig, stream: int, count: int, height: int, width: int, pool=None, describe=None):
    """Videos 0..count-1 of `stream` at the clip size (as _render), in order; with `pool`
    (render_pool), its helpers render ahead of the caller."""
    if pool is None:
        for i in range(count):
            yield _render(world, stream, i, height, width, describe)
        return
    yield from pool.map(_render, *zip(*[(world, stream, i, height, width, describe) for i in range(count)]))


class CropPool:
    """The training pool: `vision.pool_videos` world videos (stream 0) at the clip size; a step draws
    `vision.batch` (video, clip, crop) samples. Crops are placed on the 28-px merge grid, each
    position weighted by 1 + the object pixels it holds, so most crops hold people or vehicles.

    `advance(step)` swaps in fresh videos (stream 0, indices after the pool's) for the oldest ones on
    a fixed schedule, floor(fresh_videos * step / steps) by step `step`. Helper processes render them
    ahead of need; each video is a pure function of its index and the swap schedule is fixed, so the
    samples are the same bytes with any number of helpers (0 renders in this process), and a pool
    built at `start_step` (a resumed run) holds the videos an unbroken run holds there."""

    def __init__(self, cfg: PretrainConfig, height: int, width: int, preprocessor, start_step: int = 0) -> None:
        vc, world = cfg.vision, cfg.world
        self.cfg, self.world, self.pre, self.size = vc, world, preprocessor, (height, width)
        self.crop = vc.crop if 0 < vc.crop < min(height, width) else 0
        self.starts = list(range(0, world.video_frames - vc.clip_frames + 1, vc.clip_frames))
        self._futures = {}
        self.swapped = vc.fresh_videos * start_step // max(1, vc.steps)
        # Slot j holds the newest of video j and the fresh videos swapped into it so far.
        slots = list(range(vc.pool_videos))
        for k in range(self.swapped):
            slots[k % vc.pool_videos] = vc.pool_videos + k
        workers = world.render_workers if vc.fresh_videos or vc.pool_videos > 1 else 0
        self._executor = render_pool(workers)
        self._ahead = max(2, 2 * world.render_workers)  # fresh videos requested before they are due
        following = range(vc.pool_videos + self.swapped,
                           min(vc.pool_videos + vc.fresh_videos, vc.pool_videos + self.swapped + self._ahead))
        for i in [*slots, *following]:
            self._request(i)
        # The helpers render the first pool from the front; this process renders from the back
        # whatever no helper has started, so the pool takes both cores too.
        videos = {}
        for i in reversed(slots):
            fut = self._futures.get(i)
            if fut is not None and fut.cancel():
                del self._futures[i]
            videos[i] = self._take(i)
        self.videos = [videos[i] for i in slots]

    def _request(self, index: int) -> None:
        if self._executor is not None and index not in self._futures:
            h, w = self.size
            self._futures[index] = self._executor.submit(_render, self.world, 0, index, h, w)

    def _take(self, index: int):
        fut = self._futures.pop(index, None)
        return fut.result() if fut is not None else _render(self.world, 0, index, *self.size)

    def advance(self, step: int) -> None:
        """Swap in the fresh videos due by `step` (0-based) for the oldest in the pool."""
        cfg = self.cfg
        due = cfg.fresh_videos * step // max(1, cfg.steps)
        while self.swapped < due:
            index = cfg.pool_videos + self.swapped
            self.videos[self.swapped % cfg.pool_videos] = self._take(index)
            self.swapped += 1
            nxt = index + self._ahead
            if nxt < cfg.pool_videos + cfg.fresh_videos:
                self._request(nxt)

    def close(self) -> None:
        if self._executor is not None:
            for f in self._futures.values():
                f.cancel()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor, self._futures = None, {}

    def draw(self, rng: np.random.Generator):
        cfg, out = self.cfg, []
        for _ in range(cfg.batch):
            v, frames, ids = self.videos[int(rng.integers(len(self.videos)))]
            s = self.starts[int(rng.integers(len(self.starts)))]
            f, i = frames[s:s + cfg.clip_frames], ids[s:s + cfg.clip_frames]
            if self.crop:
                c, occ = self.crop, (i > 0).any(0)
                cells = [(y, x) for y in range(0, occ.shape[0] - c + 1, 28) for x in range(0, occ.shape[1] - c + 1, 28)]
                w = np.array([1.0 + occ[y:y + c, x:x + c].sum() for y, x in cells])
                y, x = cells[int(rng.choice(len(cells), p=w / w.sum()))]
                f, i = f[:, y:y + c, x:x + c], i[:, y:y + c, x:x + c]
            out.append(_sample(v, s, f, i, self.pre, cfg))
        return _collate(out)


def _losses(cfg: VisionConfig, visual, heads: Heads, pixels, grid, tg) -> tuple[torch.Tensor, dict]:
    from transformers.vision_utils import get_vision_window_index

    vc = visual.config
    out = visual(pixels, grid_thw=grid)
    window_index, _ = get_vision_window_index(grid, spatial_merge_size=vc.spatial_merge_size,
                                              window_size=vc.window_size, patch_size=vc.patch_size)
    unit = vc.spatial_merge_size ** 2
    # last_hidden_state is in window order: unit i of it is raster unit window_index[i].
    order = (window_index[:, None] * unit + torch.arange(unit)).reshape(-1)
    h = out.last_hidden_state
    cat, act, vel, look = (tg[k][order] for k in ("category", "action", "velocity", "appearance"))
    obj = cat > 0
    weight = torch.ones(len(CATEGORY_TARGETS))
    weight[0] = cfg.background_weight
    l_cat = F.cross_entropy(heads.category(h), cat, weight=weight)
    l_act = F.cross_entropy(heads.action(h)[obj], act[obj]) if obj.any() else h.sum() * 0
    l_vel = F.smooth_l1_loss(heads.velocity(h)[obj], vel[obj]) if obj.any() else h.sum() * 0
    l_look = _appearance_loss(heads.appearance(h), look)
    # Merged tokens (pooler_output) are in raster unit order: targets as they are.
    nc, na = len(CATEGORY_TARGETS), len(ACTION_TARGETS)
    m = heads.merged(out.pooler_output).reshape(-1, nc + na + sum(_APPEARANCE_SIZES))  # a row per patch
    cu, au, lu = tg["category"], tg["action"], tg["appearance"]
    l_m = F.cross_entropy(m[:, :nc], cu, weight=weight) + _appearance_loss(m[:, nc + na:], lu)
    objm = cu > 0
    if objm.any():
        l_m = l_m + F.cross_entropy(m[:, nc:nc + na][objm], au[objm])
    loss = (l_cat + cfg.action_weight * l_act + cfg.velocity_weight * l_vel + cfg.appearance_weight * l_look
            + cfg.merged_weight * l_m)
    with torch.no_grad():
        stats = {"loss": float(loss), "category_loss": float(l_cat), "action_loss": float(l_act),
                 "velocity_loss": float(l_vel), "appearance_loss": float(l_look), "merged_loss": float(l_m)}
        pc, pa, pv = heads.category(h).argmax(-1), heads.action(h).argmax(-1), heads.velocity(h)
        # The merged tokens' reading of the upper colour (column 0), on object patches that have one.
        upper = m[:, nc + na:nc + na + _APPEARANCE_SIZES[0]].argmax(-1)
        has_upper = lu[:, 0] != IGNORE
        stats["_counts"] = {
            "object_patches": int(obj.sum()), "background_patches": int((~obj).sum()),
            "object_category_hits": int((pc[obj] == cat[obj]).sum()),
            "background_hits": int((pc[~obj] == 0).sum()),
            "object_action_hits": int((pa[obj] == act[obj]).sum()),
            "velocity_abs_error": float((pv[obj] - vel[obj]).abs().sum()),
            "merged_upper_color_patches": int(has_upper.sum()),
            "merged_upper_color_hits": int((upper[has_upper] == lu[has_upper, 0]).sum()),
        }
    return loss, stats


def lr_at(peak: float, warmup: int, steps: int, step: int) -> float:
    """Learning rate of step `step` (0-based): linear warm-up to `peak`, then cosine decay to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * p))


def _holdout(cfg: PretrainConfig, visual, heads, height, width, pre) -> dict:
    """Per-patch accuracy on held-out pretraining-world videos (stream 1)."""
    tot: dict[str, float] = {}
    visual.eval()
    with torch.no_grad():
        for i in range(cfg.vision.holdout_videos):
            pixels, grid, tg = _batch(cfg.vision, render_world_video(cfg.world, 1, i), height, width, pre)
            _, st = _losses(cfg.vision, visual, heads, pixels, grid, tg)
            for k, v in st["_counts"].items():
                tot[k] = tot.get(k, 0) + v
    n_obj = max(1, tot["object_patches"])
    return {"holdout_videos": cfg.vision.holdout_videos,
            "holdout_object_patches": int(tot["object_patches"]),
            "holdout_object_category_accuracy": round(tot["object_category_hits"] / n_obj, 4),
            "holdout_background_accuracy": round(tot["background_hits"] / max(1, tot["background_patches"]), 4),
            "holdout_object_action_accuracy": round(tot["object_action_hits"] / n_obj, 4),
            "holdout_velocity_mae": round(tot["velocity_abs_error"] / (2 * n_obj), 4),
            "holdout_merged_upper_color_accuracy": round(
                tot["merged_upper_color_hits"] / max(1, tot["merged_upper_color_patches"]), 4)}


def vision_model(cfg: PretrainConfig, tiny_seed: int, text: dict | None = None):
    """(model, tokenizer): the tiny architecture with the pretraining's tower and merger widths, the
    language model of TINY_TEXT's depth at `vision.merged_width` (or `text`, TINY_TEXT's keys),
    random from `tiny_seed` as tvau.model.tiny."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tvau.model.arch import text_shape, tiny_config
    from tvau.model.attention import apply as apply_attention
    from tvau.model.tiny import build_tiny_tokenizer, token_ids

    vc = cfg.vision
    tok = build_tiny_tokenizer()
    vision = {"hidden_size": vc.width, "intermediate_size": 2 * vc.width, "num_heads": vc.heads,
              "out_hidden_size": vc.merged_width}
    text = text or text_shape(vc.merged_width, 2, vc.merged_width // 16, vc.merged_width // 32, 2)
    config = tiny_config(vocab_size=len(tok), ids=token_ids(tok), vision=vision, text=text)
    torch.manual_seed(tiny_seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    # One attention call per block (tvau.model.attention): transformers' stock vision attention
    # loops over windows in Python, which made each step several times slower on CPU.
    apply_attention(model, "auto")
    return model, tok


def save_model_dir(out_dir, model, tok, record: dict) -> None:
    """The model directory, atomically: weights and config (a stock attention name), tokenizer, the
    preprocessor, and tvau_pretrain.json (`record`: what made it)."""
    from tvau.model.tiny import tiny_preprocessor_config
    from tvau.storage import atomic_dir

    model.eval()
    model.set_attn_implementation({"vision_config": "sdpa"})
    for p in model.parameters():
        p.requires_grad_(False)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "preprocessor_config.json").write_text(json.dumps(tiny_preprocessor_config(), indent=2))
        (tmp / "tvau_pretrain.json").write_text(json.dumps({"format": PRETRAIN_FORMAT, **record}, indent=2,
                                                           sort_keys=True))


@contextmanager
def deterministic_threads(threads: int):
    """Within: `threads` CPU threads, torch's deterministic algorithms and a forked torch RNG; all
    restored after."""
    saved = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])


def _train_steps(cfg: PretrainConfig, visual, heads, opt, params, pool, rng, start: int, history: list,
                 checkpoint, progress: bool) -> None:
    vc = cfg.vision
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=vc.steps, initial=start, desc="pretrain vision", unit="step")
    visual.train()
    for step in range(start, vc.steps):
        pool.advance(step)
        pixels, grid, tg = pool.draw(rng)
        for g in opt.param_groups:
            g["lr"] = lr_at(vc.lr, vc.warmup, vc.steps, step)
        loss, st = _losses(vc, visual, heads, pixels, grid, tg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, vc.grad_clip)
        opt.step()
        history.append({k: v for k, v in st.items() if not k.startswith("_")})
        if (step + 1) % vc.checkpoint_every == 0 and step + 1 < vc.steps:
            checkpoint(step + 1)
        if bar:
            bar.update()
            bar.set_postfix(loss=f"{st['loss']:.3f}")
    if bar:
        bar.close()


def pretrain_vision(out_dir: str | Path, cfg: PretrainConfig, height: int, width: int, tiny_seed: int = 0,
                    progress: bool = True) -> dict:
    """Pretrain the tower and merger; write the model directory `out_dir` atomically. Resumes from
    this configuration's checkpoint when one exists. Returns the metrics (no timings)."""
    from tvau.model.preprocess import VisionPreprocessor
    from tvau.model.tiny import TINY_VERSION, tiny_preprocessor_config
    from tvau.pretrain.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint

    pre = VisionPreprocessor.from_config(tiny_preprocessor_config())
    if pre.target_size(height, width) != (height, width):
        raise ValueError(f"clip size {height}x{width} is not a multiple of {pre.factor} within the pixel "
                         "bounds: the backbone would be pretrained on another size than it is fed")
    settings = {"world": cfg.world.model_dump(), "vision": cfg.vision.model_dump(), "clip": [height, width],
                "tiny_seed": tiny_seed}
    ckpt = checkpoint_path("vision", settings, ["vision", "world", "config"])
    with deterministic_threads(cfg.world.threads):
        model, tok = vision_model(cfg, tiny_seed)
        visual = model.model.visual
        torch.manual_seed(cfg.world.seed)
        heads = Heads(cfg.vision.width, cfg.vision.merged_width)
        params = [*visual.parameters(), *heads.parameters()]
        opt = torch.optim.AdamW(params, lr=cfg.vision.lr, weight_decay=cfg.vision.weight_decay)
        rng = np.random.default_rng([cfg.world.seed, 3])
        start, history = 0, []
        state = load_checkpoint(ckpt)
        if state is not None:
            visual.load_state_dict(state["visual"])
            heads.load_state_dict(state["heads"])
            opt.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["rng"]
            start, history = state["step"], state["history"]

        def checkpoint(step: int) -> None:
            save_checkpoint(ckpt, {"step": step, "visual": visual.state_dict(), "heads": heads.state_dict(),
                                   "optimizer": opt.state_dict(), "rng": rng.bit_generator.state,
                                   "history": history})

        pool = CropPool(cfg, height, width, pre, start_step=start)
        try:
            _train_steps(cfg, visual, heads, opt, params, pool, rng, start, history, checkpoint, progress)
        finally:
            pool.close()
        metrics = _holdout(cfg, visual, heads, height, width, pre)
        tail = history[-max(1, cfg.vision.steps // 10):]
        metrics |= {f"final_{k}": round(float(np.mean([h[k] for h in tail])), 4) for k in tail[0]}
        metrics["steps"] = cfg.vision.steps
        save_model_dir(out_dir, model, tok, {
            "part": "vision", "tiny_version": TINY_VERSION, "tiny_seed": tiny_seed,
            "clip": {"height": height, "width": width},
            "pretrain": {"world": cfg.world.model_dump(), "vision": cfg.vision.model_dump()},
            "categories": list(CATEGORY_TARGETS), "actions": list(ACTION_TARGETS),
            "appearance": {name: list(words) for name, words in APPEARANCE_TARGETS}, "metrics": metrics,
        })
    ckpt.unlink(missing_ok=True)
    return metrics
