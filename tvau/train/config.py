"""Training parameters of both stages (params.yaml: train). Used by tvau/train/loop.py.

The paper (docs/method.md section 6) publishes AdamW with a peak learning rate of 1e-3 and 10% warm-up
for AHD (batch 1, gradient accumulation 8) and 2e-4 for stage 2 in bf16; epochs, schedules and
weight decay were not published, so those defaults are ours, sized for the embedded tiny backbone
on 2 CPU cores (the main job's budget). On a GPU set `precision: bf16` and launch with `deepspeed`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tvau.configbase import Section


class StageConfig(Section):
    """One training stage's optimisation schedule."""

    lr: float = Field(gt=0)  # peak learning rate (AdamW)
    # Epochs over the stage's training clips; stage 2 runs `epochs` over phase A, then `epochs_b`
    # over phase B (the curriculum). A fractional value stops part-way through the last epoch.
    epochs: float = Field(ge=0)
    # Optimiser steps to run instead of epochs when > 0 (one step = micro_batch x grad_accum clips).
    max_steps: int = Field(0, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)  # linear warm-up share of all steps (paper: 10%)
    weight_decay: float = Field(0.0, ge=0)  # AdamW decoupled weight decay (not published)


class TrainConfig(Section):
    # DeepSpeed ZeRO stage: 0 (plain data parallel), 1 (optimiser states sharded), 2 (+ gradients),
    # 3 (+ parameters; GPU path only: on CPU, one process has nothing to shard).
    zero_stage: Literal[0, 1, 2, 3] = 0
    # fp32 on CPU (bf16 matmuls on CPU are slow and DeepSpeed's bf16 optimiser wrapper is a GPU
    # path); bf16 on GPU as in the paper. fp16 is not offered: it needs loss scaling for no gain here.
    precision: Literal["fp32", "bf16"] = "fp32"
    micro_batch: int = Field(1, ge=1)  # clips per forward/backward (the model runs one clip at a time)
    grad_accum: int = Field(8, ge=1)  # micro-batches per optimiser step (paper: 8 for AHD)
    gradient_clipping: float = Field(1.0, ge=0)  # max global gradient norm, 0 = off (ours)
    ahd: StageConfig = StageConfig(lr=1e-3, epochs=6)  # stage 1 (paper: peak LR 1e-3)
    # Stage 2: RAE + LoRA (paper: LR 2e-4). epochs = phase A, epochs_b = phase B.
    rae: StageConfig = StageConfig(lr=1e-3, epochs=1)
    rae_epochs_b: float = Field(2, ge=0)  # stage-2 epochs over phase B (anomaly-focused dialogues)
    # Stage 2, ours: epochs of a yes/no warm-up (phase Q, before A) on the phase-B clips' first question
    # answered "Yes." or "No." (tvau.train.data.decision_samples), the loss on that first token only.
    # 0 = the paper's curriculum.
    rae_epochs_q: float = Field(4.0, ge=0)
    # Where phase Q goes: "first" (before A), "last" (after B), or "with_b" (its samples shuffled into
    # phase B's, repeated so that they get about rae_epochs_q passes during B's rae_epochs_b).
    rae_q_mode: Literal["first", "last", "with_b"] = "first"
    # Ours: class-balance phase B (its "No" dialogues outnumber its "Yes" ones ~60/40; the minority's
    # repeat, tvau.train.data.balanced). False = the paper's data as built.
    rae_balance_b: bool = True
    # Stage 2: the first token of each answer (the "Yes"/"No" of the anomaly question) counts this many
    # times in the answer loss (tvau.model.tvau.answer_loss). 1 = the paper's plain next-token mean.
    rae_first_token_weight: float = Field(1.0, ge=1)
    # Ours: after stage 2, fit the yes/no decision's threshold on the training clips' first-answer
    # margins (tvau.train.calibrate; the greedy threshold 0 fell on either side of the validation
    # margins from one run to the next). False = plain greedy, the paper's.
    rae_calibrate_decision: bool = True
    checkpoint_every: int = Field(50, ge=0)  # optimiser steps between resumable checkpoints (0 = end only)
    keep_checkpoints: int = Field(2, ge=1)  # newest resumable checkpoints kept on disk
    # Keep each training clip's frozen-backbone features in memory across epochs (the backbone is
    # frozen, so they are constants): stage 1 the tapped maps, stage 2 the merged video tokens and
    # AHD's logits. Clips beyond the budget are recomputed each time they come up.
    cache_features: bool = True
    cache_max_mb: int = Field(2048, ge=0)
    # With the cache on, clips go through the vision tower this many at a time (one encode_videos
    # call; fixed groups of the stage's clips in sorted order, so a clip's features never depend on
    # which step first needed it). 1 = one clip per call; lower it if a group's taps do not fit.
    encode_batch: int = Field(8, ge=1)
    seed: int = 0  # data order, dropout and initialisation of the run (the model seed is params.seed)
    # Footage the clips are cut from (a UBnormal-layout tree, as tvau construct build read it).
    footage: str = "data/synth"
    log_every: int = Field(10, ge=1)  # optimiser steps between log lines / on_log callbacks
    # torch CPU threads (0 = torch's default, one per core). 1 by default: the model's matmuls are
    # tiny, and on a shared 2-core machine two OpenMP threads per process were measured 17x slower
    # than one (spin-waiting under contention); on a GPU this does not matter.
    threads: int = Field(1, ge=0)
    # Data-parallel ranks `tvau train` starts on this machine under the `deepspeed` launcher when no
    # launcher started it (ours). Each rank runs grad_accum / ranks micro-batches of every step with
    # `threads` threads, so the global batch is unchanged; on CPU the ranks first share out the frozen
    # backbone's vision passes (tvau.train.loop.Trainer.share_features). 2 on the embedded default:
    # both cores of the main job's machine. Several GPUs or nodes: run the launcher yourself.
    ranks: int = Field(2, ge=1)
