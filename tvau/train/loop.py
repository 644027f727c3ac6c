"""One DeepSpeed trainer for both T-VAU stages (docs/method.md section 6).

    stage "ahd" (1): AHD only, pixel cross-entropy against the pooled masks (tvau.model.ahd.ahd_loss);
    stage "rae" (2): RAE + LoRA with AHD frozen, next-token loss on the assistant answers
                     (TVAU.dialogue_loss), curriculum phase A (holistic narratives) then phase B
                     (anomaly-focused dialogues).

The backbone is frozen: its vision pass runs under no_grad (Backbone.encode_video), once per clip
for every consumer, and because its outputs are constants they are cached per clip across epochs
(train.cache_features): stage 1 keeps the tapped maps, stage 2 the merged video tokens and AHD's
logits (AHD is frozen in stage 2). Nothing that no gradient needs is kept.

Resumable: every train.checkpoint_every optimiser steps (and at the end) a DeepSpeed checkpoint
(trainable weights, optimiser, scheduler) plus the step, the torch RNG state and the log so far;
data order is a function of (seed, stage, phase, epoch), so a killed run restarted with the same
inputs reaches the same adapters as an uninterrupted one. A checkpoint made for other inputs
(parameters, data, code stage) is never resumed: its fingerprint differs.

Ranks: micro-batches of a step are dealt round-robin to the ranks (each runs grad_accum / world of
them; DeepSpeed averages), so the global batch is the same whatever the number of ranks. Only rank 0
logs (`on_log(step, metrics)`, e.g. MLflow) and writes the trained-model directory; every rank joins
checkpoints and the final save (ZeRO-3 gathers the adapters first: consolidated, never a shard).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tvau.model.ahd import ahd_loss
from tvau.train.data import (
    ClipReader,
    TrainingDataError,
    ahd_samples,
    balanced,
    decision_samples,
    epoch_order,
    sft_samples,
)

OnLog = Callable[[int, dict[str, Any]], None]
STAGE_IDS = {"ahd": 1, "rae": 2}
LOG_FILE = "train_log.jsonl"
SUMMARY_FILE = "train.json"


class TrainingStopped(Exception):
    """run_stage(stop_after=N) stopped after N steps of this run, leaving a checkpoint to resume from."""

    def __init__(self, step: int, total: int, checkpoints: Path):
        super().__init__(f"stopped after step {step}/{total}; checkpoint in {checkpoints} (rerun to resume)")
        self.step, self.total, self.checkpoints = step, total, checkpoints


@dataclass(frozen=True)
class Item:
    phase: str  # "ahd" | "Q" | "A" | "B"
    index: int  # sample index within its phase
    epoch: float  # position in epochs of that phase (for logging)


def schedule(sizes: dict[str, int], epochs: dict[str, float], seed: int, stage_id: int, batch: int,
             max_steps: int = 0) -> list[list[Item]]:
    """The whole run as a list of steps, each a list of `batch` items (micro-batch x grad_accum):
    phases in order, each `epochs` passes in a fresh seeded order; a fractional epoch stops part-way.
    With max_steps > 0 the last phase is repeated or the list cut to exactly that many steps."""
    items: list[Item] = []
    phases = list(sizes)
    for k, ph in enumerate(phases):
        n, e = sizes[ph], epochs[ph]
        want = math.ceil(e * n) if e > 0 else 0
        if k == len(phases) - 1 and max_steps:
            want = max(want, max_steps * batch - len(items))
        if want and n == 0:
            raise ValueError(f"phase {ph!r} has no samples to train on")
        got, ep = 0, 0
        while got < want:
            for j, idx in enumerate(epoch_order(n, seed, stage_id, k, ep)):
                if got >= want:
                    break
                items.append(Item(ph, int(idx), ep + (j + 1) / n))
                got += 1
            ep += 1
    steps = len(items) // batch
    if max_steps:
        steps = min(steps, max_steps)
    if steps == 0:
        raise ValueError(f"the run has fewer than one step: {len(items)} clips for a batch of {batch} "
                         "(raise the epochs or lower micro_batch x grad_accum)")
    return [items[s * batch:(s + 1) * batch] for s in range(steps)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_digest() -> str:
    """sha256 over the source of the code a run depends on (tvau/train, tvau/model, tvau/data)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(p for d in ("train", "model", "data") for p in (root / d).rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def fingerprint(params, stage: str, data_dir: Path, init: Path | None, world: int) -> str:
    """Identity of a run's inputs (parameters, data, stage-1 adapters, code, ranks): a checkpoint
    resumes only a run with the same fingerprint."""
    from tvau.model.trained import backbone_sha256

    h = {"code": code_digest(),
        "stage": stage, "world": world, "seed": params.seed,
        "model": params.model.model_dump(mode="json"), "clip": params.clip.model_dump(mode="json"),
        "train": params.train.model_dump(mode="json"),
        # A local backbone (data/backbone) is named by its path, which stays the same when the
        # pretraining stage rewrites it: its weights are part of the identity, or a run would resume
        # a checkpoint trained on other features.
        "backbone_sha256": backbone_sha256(params.model.backbone),
    }
    manifest = data_dir / "manifest.json"
    h["data"] = _sha(manifest.read_bytes()) if manifest.exists() else str(data_dir.resolve())
    if init is not None:
        h["init"] = _sha((init / "adapters.safetensors").read_bytes())
    return _sha(json.dumps(h, sort_keys=True).encode())[:16]


class FeatureCache:
    """Per-clip constants of the frozen backbone, kept up to a memory budget."""

    def __init__(self, enabled: bool, max_mb: int):
        self.enabled, self.budget = enabled, max_mb * 2**20
        self.used = 0
        self.store: dict[str, Any] = {}
        self.hits = self.misses = 0

    @staticmethod
    def _nbytes(value) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        if isinstance(value, (list, tuple)):
            return sum(FeatureCache._nbytes(v) for v in value)
        return sum(FeatureCache._nbytes(v) for v in vars(value).values()
                   if isinstance(v, (torch.Tensor, list, tuple))) if hasattr(value, "__dict__") else 0

    def put(self, key: str, value) -> None:
        """Keep `value` (computed beside another clip's) if the budget allows."""
        size = self._nbytes(value)
        if self.enabled and self.used + size <= self.budget:
            self.store[key] = value
            self.used += size

    def get(self, key: str, make: Callable[[], Any]):
        if key in self.store:
            self.hits += 1
            return self.store[key]
        self.misses += 1
        value = make()
        size = self._nbytes(value)
        if self.enabled and self.used + size <= self.budget:
            self.store[key] = value
            self.used += size
        return value


def check_init(params, stage: str, init: Path | None) -> None:
    """Stage 2 starts from a stage-1 model trained with these model and clip parameters."""
    if stage != "rae":
        return
    if init is None:
        raise ValueError("stage 2 (rae) starts from a stage-1 model: pass init=<trained AHD dir>")
    from tvau.model.trained import ADAPTERS, TrainedModelError, card_configs, read_card
    from tvau.model.tvau import ADAPTER_CONFIG_KEYS, read_adapter_meta

    card = read_card(init)
    model = params.model.model_dump(mode="json")
    mcfg, clip = card_configs(init, card)  # validated: a key added since stage 1 counts at its default
    same = mcfg.model_dump(mode="json") == model and clip.model_dump(mode="json") == params.clip.model_dump(mode="json")
    if not same:
        raise TrainingDataError(f"{init / 'model.json'}: trained with other model/clip parameters than "
                                "params.yaml (rerun stage 1)")
    # The weights' own header must agree too (a directory assembled by hand, or a partial copy).
    try:
        meta = read_adapter_meta(init / ADAPTERS)
    except ValueError as exc:
        raise TrainedModelError(str(exc)) from None
    diff = {k: (meta.get(k), model[k]) for k in ADAPTER_CONFIG_KEYS if meta.get(k) != model[k]}
    if diff:
        raise TrainedModelError(f"{init / ADAPTERS}: made for other model parameters than params.yaml: {diff} "
                                "(file, params; rerun stage 1)")


def stage_samples(cfg, stage: str, data_dir: Path) -> tuple[dict[str, list], dict[str, float]]:
    """(samples per phase, in training order; epochs per phase) of a stage, read from the training
    sets (TrainingDataError names a missing or malformed file)."""
    if stage == "ahd":
        return {"ahd": ahd_samples(data_dir)}, {"ahd": cfg.ahd.epochs}
    samples = {"A": sft_samples(data_dir, "A"), "B": sft_samples(data_dir, "B")}
    epochs = {"A": cfg.rae.epochs, "B": cfg.rae_epochs_b}
    q = decision_samples(samples["B"])  # balanced on its own, whatever rae_balance_b says
    if cfg.rae_balance_b:
        samples["B"] = balanced(samples["B"])
    if cfg.rae_epochs_q:  # the yes/no phase (absent at 0: A and B alone, in the paper's order)
        mode = cfg.rae_q_mode
        if mode == "with_b":  # Q's samples shuffled into B's, repeated for ~rae_epochs_q passes
            reps = max(1, round(cfg.rae_epochs_q / cfg.rae_epochs_b)) if cfg.rae_epochs_b else 1
            samples["B"] = samples["B"] + q * reps
        else:
            samples = {**samples, "Q": q} if mode == "last" else {"Q": q, **samples}
            epochs["Q"] = cfg.rae_epochs_q
    return samples, epochs


class Trainer:
    """The state of one stage's run. Use run_stage()."""

    def __init__(self, params, stage: str, data_dir: Path, init: Path | None, progress: bool, model=None):
        from tvau.model.tvau import TVAU
        from tvau.train.engine import init_distributed

        if stage not in STAGE_IDS:
            raise ValueError(f"unknown stage {stage!r}; expected 'ahd' or 'rae'")
        self.params, self.stage, self.cfg = params, stage, params.train
        self.rank, self.world = init_distributed()
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        torch.manual_seed(self.cfg.seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.model = model if model is not None else TVAU.from_params(params)
        check_init(params, stage, init)
        if stage == "rae":
            self.model.load_adapters(init / "adapters.safetensors")
        self.model.set_stage(stage)
        self.reader = ClipReader(self.cfg.footage, params.clip)
        self.samples, epochs = stage_samples(self.cfg, stage, data_dir)
        self.stage_cfg = self.cfg.ahd if stage == "ahd" else self.cfg.rae
        self.batch = self.cfg.micro_batch * self.cfg.grad_accum
        self.steps = schedule({k: len(v) for k, v in self.samples.items()}, epochs, self.cfg.seed,
                              STAGE_IDS[stage], self.batch, self.stage_cfg.max_steps)
        # ZeRO-3 on several ranks partitions the frozen backbone too, so its forward is a series of
        # collectives (all-gathers) that every rank must run in the same order: a cache hit on one
        # rank and a miss on another desynchronise them (gloo: "collective mismatch"; worse, equal
        # sizes could exchange the wrong shards). There each rank recomputes the vision pass.
        self.cache = FeatureCache(self.cfg.cache_features and not (self.cfg.zero_stage == 3 and self.world > 1),
                                  self.cfg.cache_max_mb)
        self.chunk_of, self.groups = self._chunks()
        self.progress = progress and self.rank == 0
        self.anchors = self.model.backbone.anchors()

    # --- the frozen parts, once per clip ---
    def _constants(self, vis):
        """What a step needs from one clip's vision pass: the taps (stage 1), or the merged tokens and
        AHD's logits (stage 2, where AHD is frozen too)."""
        from tvau.model.backbone import VisionOutput
        from tvau.model.tvau import ClipEncoding

        if self.stage == "ahd":
            return vis.taps
        with torch.no_grad():
            logits = self.model.ahd(vis.taps, self.anchors) if self.model.use_ahd else None
        slim = VisionOutput(vis.video_embeds, [], vis.grid_thw, vis.frame_size, vis.num_frames)
        return ClipEncoding(slim, logits)

    def _chunks(self) -> tuple[dict[str, list[tuple[str, str, int]]], list[list[tuple[str, str, int]]]]:
        """Every clip of the stage in a fixed order, cut into groups of train.encode_batch: a clip's vision
        pass is always run together with the same group (one encode_videos call), so its features are
        the same bits whichever step (or rank) first needs it, and a resumed run equals an
        uninterrupted one. Returns (group of each clip key, the groups in order)."""
        clips = sorted({(s.video, s.start) for samples in self.samples.values() for s in samples})
        out: dict[str, list[tuple[str, str, int]]] = {}
        groups = []
        n = self.cfg.encode_batch
        for i in range(0, len(clips), n):
            group = [(f"{v}@{t}", v, t) for v, t in clips[i:i + n]]
            groups.append(group)
            for key, _, _ in group:
                out[key] = group
        return out, groups

    def _encode_group(self, group) -> dict:
        visions = self.model.backbone.encode_videos([self.reader(v, t) for _, v, t in group])
        return {k: self._constants(vis) for (k, _, _), vis in zip(group, visions)}

    def share_features(self) -> None:
        """Several CPU ranks with the cache on: before the first step, rank r runs the vision pass of
        clip groups r, r + world, ... and every rank receives every group's features (gloo
        all_gather_object, one round of `world` groups at a time, so memory holds one round beyond
        the cache). Without it each rank encoded every clip it was dealt, and since the ranks meet at
        each optimiser step, one rank's encoding stalled the other: two ranks were slower than one.
        The groups are the one-process groups, so the features are the same bits. GPUs skip this
        (each rank's vision pass is fast on its own device and NCCL gathers need device tensors)."""
        from tvau.train.engine import on_gpu

        if self.world == 1 or not self.cache.enabled or on_gpu():
            return
        import torch.distributed as tdist

        for i in range(0, len(self.groups), self.world):
            todo = [g for g in self.groups[i:i + self.world] if any(k not in self.cache.store for k, _, _ in g)]
            mine = self._encode_group(todo[self.rank]) if self.rank < len(todo) else {}
            shared: list = [None] * self.world
            tdist.all_gather_object(shared, mine)
            for part in shared:
                for k, v in part.items():
                    self.cache.put(k, v)

    def calibrate(self) -> dict:
        """Fit the yes/no threshold (tvau.train.calibrate) on this stage's phase-B clips, one margin per
        clip (balancing repeats some), truth from each clip's first answer."""
        from tvau.train.calibrate import calibrate_decision

        truth: dict[tuple[str, int], bool] = {}
        for s in self.samples["B"]:
            truth.setdefault((s.video, s.start), s.turns[0][1].startswith("Yes"))
        keys = sorted(truth)
        encs = [self._features(v, t) for v, t in keys]
        return calibrate_decision(self.model, encs, [truth[k] for k in keys], self.cfg.encode_batch,
                                  rank=self.rank, world=self.world)

    def _features(self, video: str, start: int):
        key = f"{video}@{start}"
        if not self.cache.enabled:  # nothing kept: one clip at a time
            return self._constants(self.model.backbone.encode_video(self.reader(video, start)))

        def make():
            values = self._encode_group(self.chunk_of[key])
            for k, value in values.items():
                if k != key and k not in self.cache.store:
                    self.cache.put(k, value)
            return values[key]

        return self.cache.get(key, make)

    def loss(self, item: Item) -> torch.Tensor:
        s = self.samples[item.phase][item.index]
        feats = self._features(s.video, s.start)
        if self.stage == "ahd":
            logits = self.model.ahd(feats, self.anchors)
            return ahd_loss(logits, torch.from_numpy(s.target))
        # Phase Q's samples (the yes/no decision) train the first answer token alone.
        return self.model.dialogue_loss(feats, list(s.turns), self.cfg.rae_first_token_weight,
                                        first_token_only=s.first_token_only)

    def train_mode(self) -> None:
        """Only the trained modules leave eval mode (LoRA's dropout included); the frozen backbone
        stays in eval mode."""
        self.model.eval()
        if self.stage == "ahd":
            self.model.ahd.train()
        else:
            self.model.rae.train()
            for name, m in self.model.backbone.language_model.named_modules():
                if "lora_dropout" in name:
                    m.train()


class MicroBatchLoss(torch.nn.Module):
    """What the DeepSpeed engine runs forward: the mean loss of one micro-batch.

    The loss goes through `engine(items)`, never through the model's parts directly: DeepSpeed's
    forward is where ZeRO-3 counts micro-steps (`clear_backward_seen_flag` advances its
    micro_step_id; DeepSpeed 0.19.8). Without it every backward of an accumulation window was
    taken as the first and OVERWROTE the gradient partition instead of adding to it, so a ZeRO-3
    step used only the last micro-batch of each rank (with two ranks and grad_accum 8: a
    different gradient, 4.5e-3 off the one-process adapters after three Adam steps)."""

    def __init__(self, trainer: Trainer):
        super().__init__()
        self.model = trainer.model  # a submodule: DeepSpeed sees (and ZeRO partitions) its parameters
        self.trainer = trainer

    def forward(self, items: list[Item]) -> torch.Tensor:
        return torch.stack([self.trainer.loss(it) for it in items]).mean()


def _gathered(model, zero_stage: int):
    """Context that makes every adapter tensor whole on every rank (ZeRO-3 partitions them)."""
    import contextlib

    if zero_stage != 3:
        return contextlib.nullcontext()
    import deepspeed

    params = [p for n, p in model.named_parameters() if n.startswith(("ahd.", "rae.")) or "lora_" in n]
    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def _resume(engine, ckpt_root: Path, fingerprint_: str, tr: Trainer) -> tuple[int, list[dict]]:
    """(the step to start at, the log so far): from the run's latest checkpoint, else (0, [])."""
    if not (ckpt_root / "latest").exists():
        return 0, []
    _, client = engine.load_checkpoint(str(ckpt_root), load_module_strict=False)
    if client is None or client.get("fingerprint") != fingerprint_:
        raise RuntimeError(f"{ckpt_root}: checkpoint does not match this run")
    torch.set_rng_state(client["torch_rng"][tr.rank])  # one state per rank
    if tr.rank == 0:
        print(f"resuming {tr.stage} from {ckpt_root} at step {client['step']}/{len(tr.steps)}", flush=True)
    return int(client["step"]), list(client["log"])


def _save_checkpoint(engine, ckpt_root: Path, step: int, log: list[dict], fingerprint_: str, tr: Trainer) -> None:
    """A resumable checkpoint at `step`, keeping the newest train.keep_checkpoints."""
    from deepspeed import comm as dist

    # Every rank's RNG state (dropout masks differ per rank): DeepSpeed writes the client state from
    # rank 0 only, so with one state every rank resumed with rank 0's and drew other masks than an
    # uninterrupted run would have.
    rngs: list = [None] * tr.world
    if tr.world > 1:
        import torch.distributed as tdist

        tdist.all_gather_object(rngs, torch.get_rng_state())
    else:
        rngs = [torch.get_rng_state()]
    engine.save_checkpoint(str(ckpt_root), tag=f"step{step:06d}", exclude_frozen_parameters=True,
                           client_state={"step": step, "log": log, "fingerprint": fingerprint_, "torch_rng": rngs})
    dist.barrier()
    if tr.rank == 0:  # prune old checkpoints (rank 0 only; all ranks share the directory)
        tags = sorted(p.name for p in ckpt_root.glob("step*") if p.is_dir())
        for old in tags[:-tr.cfg.keep_checkpoints]:
            shutil.rmtree(ckpt_root / old, ignore_errors=True)


def _optimiser_step(engine, tr: Trainer, items: list) -> float:
    """One optimiser step over `items`, this rank taking every world-th micro-batch; the mean loss of
    all ranks' micro-batches."""
    from deepspeed import comm as dist

    size = tr.cfg.micro_batch
    total = torch.zeros(())
    mbs = [items[i:i + size] for i in range(0, len(items), size)]
    for k, mb in enumerate(mbs):
        if k % tr.world != tr.rank:
            continue
        loss = engine(mb)
        engine.backward(loss)
        engine.step()  # DeepSpeed updates at the gradient-accumulation boundary
        total += loss.detach().float()
    if tr.world > 1:
        dist.all_reduce(total)
    return float(total) / len(mbs)


def _write_model(tr: Trainer, out_dir: Path, log: list[dict], fingerprint_: str) -> dict:
    """Freeze the model, calibrate stage 2's decision when asked, and write the trained-model directory
    with its training log and summary; returns the summary."""
    from deepspeed import comm as dist

    from tvau.model.trained import save_trained

    cfg = tr.cfg
    tr.model.set_stage("frozen")
    tr.model.eval()
    calibration = tr.calibrate() if tr.stage == "rae" and cfg.rae_calibrate_decision else None
    summary = {
        "stage": tr.stage, "steps": len(tr.steps), "clips_per_step": tr.batch, "world_size": tr.world,
        "samples": {k: len(v) for k, v in tr.samples.items()}, "final_loss": log[-1]["loss"] if log else None,
        "first_loss": log[0]["loss"] if log else None, "fingerprint": fingerprint_,
        "deepspeed": {"zero_stage": cfg.zero_stage, "precision": cfg.precision},
    }
    if calibration is not None:
        summary["decision_calibration"] = calibration
    with _gathered(tr.model, cfg.zero_stage):
        if tr.rank == 0:
            save_trained(tr.model, out_dir, tr.params, extra_files={
                LOG_FILE: "".join(json.dumps(e) + "\n" for e in log).encode(),
                SUMMARY_FILE: (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode(),
            })
    dist.barrier()
    return summary


def run_stage(params, stage: str, data_dir: str | Path = "data/train", out_dir: str | Path | None = None, *,
              init: str | Path | None = None, checkpoint_dir: str | Path | None = None, resume: bool = True,
              on_log: OnLog | None = None, progress: str = "bar", model=None, stop_after: int = 0) -> Path:
    """Train one stage and write the trained-model directory `out_dir` (default data/models/ahd or
    data/models/tvau) with the adapters, model.json, the training log and a summary (no timings:
    DVC tracks these files). `init` is the stage-1 directory for stage 2. `model`: an already loaded
    TVAU built from the same params (default: built here); it is trained in place. progress: "bar"
    (a progress bar), "lines" (one line per log interval on stderr, for logs without a terminal) or
    "off". stop_after > 0: after that many optimiser steps of this run, checkpoint and raise
    TrainingStopped (a time-boxed slot on a preemptible machine; the next run resumes there).
    Returns out_dir."""
    from tqdm import tqdm

    from tvau.train.engine import initialize

    if progress not in ("bar", "lines", "off"):
        raise ValueError(f"progress {progress!r}: expected 'bar', 'lines' or 'off'")
    data_dir = Path(data_dir)
    out_dir = Path(out_dir or ("data/models/ahd" if stage == "ahd" else "data/models/tvau"))
    init = Path(init) if init is not None else None
    tr = Trainer(params, stage, data_dir, init, progress == "bar", model)
    cfg, total = tr.cfg, len(tr.steps)
    fp = fingerprint(params, stage, data_dir, init, tr.world)
    ckpt_root = Path(checkpoint_dir or Path(".tvau/checkpoints") / stage) / fp
    engine, _, scheduler = initialize(MicroBatchLoss(tr), tr.model.trainable_parameters(), cfg, tr.stage_cfg,
                                      total, tr.world)
    start, log = _resume(engine, ckpt_root, fp, tr) if resume else (0, [])
    tr.share_features()
    tr.train_mode()
    bar = tqdm(total=total, initial=start, desc=f"train {stage}", unit="step", disable=not tr.progress)
    for done in range(start + 1, total + 1):
        items = tr.steps[done - 1]
        lr = float(scheduler.get_last_lr()[0])  # the rate this step's update uses
        entry = {"step": done, "loss": _optimiser_step(engine, tr, items), "lr": lr,
                 "phase": items[-1].phase, "epoch": round(items[-1].epoch, 4)}
        log.append(entry)
        bar.update(1)
        bar.set_postfix(loss=f"{entry['loss']:.4f}")
        if tr.rank == 0 and (done % cfg.log_every == 0 or done == total):
            if progress == "lines":
                print(f"{stage} step {done}/{total} loss {entry['loss']:.4f} lr {lr:.3g} "
                      f"phase {entry['phase']} epoch {entry['epoch']}", file=sys.stderr, flush=True)
            if on_log is not None:
                on_log(done, {k: v for k, v in entry.items() if k != "step"})
        stop = bool(stop_after) and done - start >= stop_after and done < total
        if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == total or stop:
            _save_checkpoint(engine, ckpt_root, done, log, fp, tr)
        if stop:
            bar.close()
            raise TrainingStopped(done, total, ckpt_root)
    bar.close()
    summary = _write_model(tr, out_dir, log, fp)
    if tr.rank == 0 and progress != "off":
        print(f"{stage}: {total} steps, loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}; "
              f"feature cache {tr.cache.hits} hits / {tr.cache.misses} misses; wrote {out_dir}", file=sys.stderr, flush=True)
    return out_dir


__all__ = ["Item", "OnLog", "TrainingStopped", "check_init", "fingerprint", "run_stage", "schedule", "stage_samples"]
