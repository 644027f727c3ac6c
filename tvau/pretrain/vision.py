"""Pretrain the embedded tiny Qwen2.5-VL's vision tower and merger on the pretraining world, and
save the whole model as an ordinary Hugging Face model directory.

Start: the embedded tiny architecture (tvau.model.tiny: same tokenizer, LM and merger shapes) with
the tower widened to `pretrain.vision_width` (the random embedded tower is 32 wide), initialised from
`model.tiny_seed`. Trained: `model.visual` (patch embedding, blocks, merger) with throw-away heads:
- on the last block's output (through one LayerNorm), per patch: category (cross-entropy, background
  down-weighted), action (cross-entropy on object patches), velocity (smooth L1 on object patches);
- on the merged tokens the language model reads, per 2x2 merge unit: the category and action of
  each of its four patches (so the merger keeps what the tower sees).
Samples: `pool_videos` world videos rendered once, each step `batch` object-weighted crops of their
clips (CropPool); held-out metrics on whole clips of another stream.
Then, when `lm_steps` > 0, the language model learns generic dialogues about other world videos
with the tower and merger frozen (tvau.pretrain.language). Targets come from tvau.pretrain.world and
the generator's ground truth; none is an anomaly label.

Determinism: one fixed thread count, torch.use_deterministic_algorithms, every random draw seeded
from the config, so the same parameters and code give the same bytes (DVC caches the output).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tvau.pretrain.config import PretrainConfig
from tvau.pretrain.world import (
    ACTION_TARGETS,
    CATEGORY_TARGETS,
    patch_targets,
    render_world_video,
    resize_clip,
)

PRETRAIN_FORMAT = "tvau-pretrained-backbone/1"


class Heads(nn.Module):
    """The pretraining heads (discarded after training). The tower's last block output is its
    un-normalised residual stream, so the per-patch heads read it through one LayerNorm (without it
    the heads chase the stream's scale and training oscillates)."""

    def __init__(self, width: int, out_width: int) -> None:
        super().__init__()
        nc, na = len(CATEGORY_TARGETS), len(ACTION_TARGETS)
        self.norm = nn.LayerNorm(width)
        self.category_head = nn.Linear(width, nc)
        self.action_head = nn.Linear(width, na)
        self.velocity_head = nn.Linear(width, 2)
        self.merged = nn.Linear(out_width, 4 * (nc + na))

    def category(self, h: torch.Tensor) -> torch.Tensor:
        return self.category_head(self.norm(h))

    def action(self, h: torch.Tensor) -> torch.Tensor:
        return self.action_head(self.norm(h))

    def velocity(self, h: torch.Tensor) -> torch.Tensor:
        return self.velocity_head(self.norm(h))


def _sample(video, start: int, frames: np.ndarray, ids: np.ndarray, preprocessor, cfg: PretrainConfig):
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


def _batch(cfg: PretrainConfig, video, height: int, width: int, preprocessor):
    """All clips of one world video, whole -> pixel patches, grid rows and targets, concatenated."""
    frames, ids = resize_clip(video.frames, video.ids, height, width)
    return _collate([_sample(video, s, frames[s:s + cfg.clip_frames], ids[s:s + cfg.clip_frames], preprocessor, cfg)
                     for s in range(0, frames.shape[0] - cfg.clip_frames + 1, cfg.clip_frames)])


def _render(cfg: PretrainConfig, stream: int, index: int, height: int, width: int):
    """World video `index` of `stream` at the clip size: (labels-only WorldVideo, frames, ids). A pure
    function of its arguments, so rendering it in another process gives the same arrays."""
    import dataclasses

    v = render_world_video(cfg, stream, index)
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


def render_videos(cfg: PretrainConfig, stream: int, count: int, height: int, width: int, pool=None):
    """Videos 0..count-1 of `stream` at the clip size (as _render), in order; with `pool`
    (render_pool), its helpers render ahead of the caller."""
    if pool is None:
        for i in range(count):
            yield _render(cfg, stream, i, height, width)
        return
    yield from pool.map(_render, *zip(*[(cfg, stream, i, height, width) for i in range(count)]))


class CropPool:
    """The training pool: `pool_videos` world videos (stream 0) at the clip size; a step draws `batch`
    (video, clip, crop) samples. Crops are placed on the 28-px merge grid, each position weighted by
    1 + the object pixels it holds, so most crops hold people or vehicles.

    `advance(step)` swaps in fresh videos (stream 0, indices after the pool's) for the oldest ones on
    a fixed schedule, floor(fresh_videos * step / steps) by step `step`. Helper processes render them
    ahead of need; each video is a pure function of its index and the swap schedule is fixed, so the
    samples are the same bytes with any number of helpers (0 renders in this process)."""

    def __init__(self, cfg: PretrainConfig, height: int, width: int, preprocessor) -> None:
        self.cfg, self.pre, self.size = cfg, preprocessor, (height, width)
        self.crop = cfg.crop if 0 < cfg.crop < min(height, width) else 0
        self.starts = list(range(0, cfg.video_frames - cfg.clip_frames + 1, cfg.clip_frames))
        self._futures, self.swapped = {}, 0
        self._executor = render_pool(cfg.render_workers if cfg.fresh_videos or cfg.pool_videos > 1 else 0)
        total = cfg.pool_videos + cfg.fresh_videos
        self._ahead = max(2, 2 * cfg.render_workers)  # fresh videos requested before they are due
        for i in range(min(total, cfg.pool_videos + self._ahead)):
            self._request(i)
        # The helpers render the first pool from the front; this process renders from the back
        # whatever no helper has started, so the pool takes both cores too.
        videos = {}
        for i in reversed(range(cfg.pool_videos)):
            fut = self._futures.get(i)
            if fut is not None and fut.cancel():
                del self._futures[i]
            videos[i] = self._take(i)
        self.videos = [videos[i] for i in range(cfg.pool_videos)]

    def _request(self, index: int) -> None:
        if self._executor is not None and index not in self._futures:
            h, w = self.size
            self._futures[index] = self._executor.submit(_render, self.cfg, 0, index, h, w)

    def _take(self, index: int):
        fut = self._futures.pop(index, None)
        return fut.result() if fut is not None else _render(self.cfg, 0, index, *self.size)

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


def _losses(cfg: PretrainConfig, visual, heads: Heads, pixels, grid, tg) -> tuple[torch.Tensor, dict]:
    from transformers.vision_utils import get_vision_window_index

    vc = visual.config
    out = visual(pixels, grid_thw=grid)
    window_index, _ = get_vision_window_index(grid, spatial_merge_size=vc.spatial_merge_size,
                                              window_size=vc.window_size, patch_size=vc.patch_size)
    unit = vc.spatial_merge_size ** 2
    # last_hidden_state is in window order: unit i of it is raster unit window_index[i].
    order = (window_index[:, None] * unit + torch.arange(unit)).reshape(-1)
    h = out.last_hidden_state
    cat, act, vel = tg["category"][order], tg["action"][order], tg["velocity"][order]
    obj = cat > 0
    weight = torch.ones(len(CATEGORY_TARGETS))
    weight[0] = cfg.background_weight
    l_cat = F.cross_entropy(heads.category(h), cat, weight=weight)
    l_act = F.cross_entropy(heads.action(h)[obj], act[obj]) if obj.any() else h.sum() * 0
    l_vel = F.smooth_l1_loss(heads.velocity(h)[obj], vel[obj]) if obj.any() else h.sum() * 0
    # Merged tokens (pooler_output) are in raster unit order: targets as they are.
    nc, na = len(CATEGORY_TARGETS), len(ACTION_TARGETS)
    m = heads.merged(out.pooler_output).view(-1, unit, nc + na)
    cu, au = tg["category"].view(-1, unit), tg["action"].view(-1, unit)
    l_m = F.cross_entropy(m[..., :nc].reshape(-1, nc), cu.reshape(-1), weight=weight)
    objm = cu.reshape(-1) > 0
    if objm.any():
        l_m = l_m + F.cross_entropy(m[..., nc:].reshape(-1, na)[objm], au.reshape(-1)[objm])
    loss = l_cat + cfg.action_weight * l_act + cfg.velocity_weight * l_vel + cfg.merged_weight * l_m
    with torch.no_grad():
        stats = {"loss": float(loss), "category_loss": float(l_cat), "action_loss": float(l_act),
                 "velocity_loss": float(l_vel), "merged_loss": float(l_m)}
        pc, pa, pv = heads.category(h).argmax(-1), heads.action(h).argmax(-1), heads.velocity(h)
        stats["_counts"] = {
            "object_patches": int(obj.sum()), "background_patches": int((~obj).sum()),
            "object_category_hits": int((pc[obj] == cat[obj]).sum()),
            "background_hits": int((pc[~obj] == 0).sum()),
            "object_action_hits": int((pa[obj] == act[obj]).sum()),
            "velocity_abs_error": float((pv[obj] - vel[obj]).abs().sum()),
        }
    return loss, stats


def lr_at(peak: float, warmup: int, steps: int, step: int) -> float:
    """Learning rate of step `step` (0-based): linear warm-up to `peak`, then cosine decay to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * p))


def _holdout(cfg, visual, heads, height, width, pre) -> dict:
    """Per-patch accuracy on held-out pretraining-world videos (stream 1)."""
    tot: dict[str, float] = {}
    visual.eval()
    with torch.no_grad():
        for i in range(cfg.holdout_videos):
            pixels, grid, tg = _batch(cfg, render_world_video(cfg, 1, i), height, width, pre)
            _, st = _losses(cfg, visual, heads, pixels, grid, tg)
            for k, v in st["_counts"].items():
                tot[k] = tot.get(k, 0) + v
    n_obj = max(1, tot["object_patches"])
    return {"holdout_videos": cfg.holdout_videos,
            "holdout_object_patches": int(tot["object_patches"]),
            "holdout_object_category_accuracy": round(tot["object_category_hits"] / n_obj, 4),
            "holdout_background_accuracy": round(tot["background_hits"] / max(1, tot["background_patches"]), 4),
            "holdout_object_action_accuracy": round(tot["object_action_hits"] / n_obj, 4),
            "holdout_velocity_mae": round(tot["velocity_abs_error"] / (2 * n_obj), 4)}


def pretrain_backbone(out_dir: str | Path, cfg: PretrainConfig, height: int, width: int, tiny_seed: int = 0,
                      progress: bool = True) -> dict:
    """Pretrain and write the model directory `out_dir` atomically. Returns the metrics (no timings)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tvau.model.arch import tiny_config
    from tvau.model.attention import apply as apply_attention
    from tvau.model.preprocess import VisionPreprocessor
    from tvau.model.tiny import TINY_VERSION, build_tiny_tokenizer, tiny_preprocessor_config, token_ids
    from tvau.storage import atomic_dir

    pre = VisionPreprocessor.from_config(tiny_preprocessor_config())
    if pre.target_size(height, width) != (height, width):
        raise ValueError(f"clip size {height}x{width} is not a multiple of {pre.factor} within the pixel "
                         "bounds: the backbone would be pretrained on another size than it is fed")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            tok = build_tiny_tokenizer()
            config = tiny_config(vocab_size=len(tok), ids=token_ids(tok))
            config.vision_config.hidden_size = cfg.vision_width
            config.vision_config.intermediate_size = 2 * cfg.vision_width
            config.vision_config.num_heads = cfg.vision_heads
            torch.manual_seed(tiny_seed)  # initial weights from the embedded backbone's seed, as tvau.model.tiny
            model = Qwen2_5_VLForConditionalGeneration(config).eval()
            # One attention call per block (tvau.model.attention): transformers' stock vision attention
            # loops over windows in Python, which made each step several times slower on CPU.
            apply_attention(model, "auto")
            visual = model.model.visual
            torch.manual_seed(cfg.seed)
            heads = Heads(config.vision_config.hidden_size, config.vision_config.out_hidden_size)
            params = [*visual.parameters(), *heads.parameters()]
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            history = []
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=cfg.steps, desc="pretrain", unit="step")
            pool = CropPool(cfg, height, width, pre)
            rng = np.random.default_rng([cfg.seed, 3])
            visual.train()
            try:
                for step in range(cfg.steps):
                    pool.advance(step)
                    pixels, grid, tg = pool.draw(rng)
                    for g in opt.param_groups:
                        g["lr"] = lr_at(cfg.lr, cfg.warmup, cfg.steps, step)
                    loss, st = _losses(cfg, visual, heads, pixels, grid, tg)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    opt.step()
                    history.append({k: v for k, v in st.items() if not k.startswith("_")})
                    if bar:
                        bar.update()
                        bar.set_postfix(loss=f"{st['loss']:.3f}")
            finally:
                pool.close()
            if bar:
                bar.close()
            metrics = _holdout(cfg, visual, heads, height, width, pre)
            if cfg.lm_steps:
                from tvau.pretrain.language import pretrain_language

                for p in model.parameters():
                    p.requires_grad_(False)
                metrics |= pretrain_language(model, tok, cfg, height, width, progress=progress)
            tail = history[-max(1, cfg.steps // 10):]
            metrics |= {f"final_{k}": round(float(np.mean([h[k] for h in tail])), 4) for k in tail[0]}
            metrics["steps"] = cfg.steps
            model.eval()
            model.set_attn_implementation({"vision_config": "sdpa"})  # saved config: a stock name
            for p in model.parameters():
                p.requires_grad_(False)
            with atomic_dir(out_dir) as tmp:
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                (tmp / "preprocessor_config.json").write_text(json.dumps(tiny_preprocessor_config(), indent=2))
                (tmp / "tvau_pretrain.json").write_text(json.dumps({
                    "format": PRETRAIN_FORMAT, "tiny_version": TINY_VERSION, "tiny_seed": tiny_seed,
                    "clip": {"height": height, "width": width}, "pretrain": cfg.model_dump(),
                    "categories": list(CATEGORY_TARGETS), "actions": list(ACTION_TARGETS), "metrics": metrics,
                }, indent=2, sort_keys=True))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return metrics
