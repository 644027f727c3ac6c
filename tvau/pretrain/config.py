"""Parameters of the embedded backbone's pretraining (params.yaml: pretrain). Used by tvau/pretrain.

None of these comes from the paper (the paper freezes a vendor-pretrained Qwen2.5-VL-7B); they are
our choices for a stand-in pretraining that runs in a few minutes on 2 CPU cores. The clip size is
params.yaml clip.height/width (the backbone learns at the resolution T-VAU feeds it).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from tvau.configbase import Section
from tvau.vocab import ANOMALY_KINDS


class PretrainConfig(Section):
    # Seed of the pretraining world (footage, batch order, heads). Must differ from the global
    # `seed` and from every seed used to make T-VAU footage, so no pretraining video is a T-VAU video.
    seed: int = 1000
    # Scene numbers of the pretraining world start above this: its cameras (backgrounds, walkways)
    # are never those of `tvau synth`, whose scenes are numbered 1..synth.scenes.
    scene_offset: int = Field(100, ge=0)
    scenes: int = Field(12, ge=1)  # distinct cameras of the pretraining world
    size: int = Field(256, ge=32)  # rendered frame size in pixels (as synth.size: same people in pixels)
    video_frames: int = Field(24, ge=24)  # frames per rendered video (the builders need >= 24)
    clip_frames: int = Field(8, ge=2)  # frames per training clip (4 temporal patches), even
    # Ordinary activities of this world, drawn per video (tvau.vocab.ANOMALY_KINDS keys: here they
    # are joggers, cyclists, skaters, cars, people lying down, sparring, ball games, jumping, bags put
    # down, groups and people pacing, and no anomaly flag is ever set).
    activities: list[str] = Field(default_factory=lambda: list(ANOMALY_KINDS))
    min_activities: int = Field(2, ge=0)  # activities per video, lower bound (inclusive)
    max_activities: int = Field(4, ge=0)  # activities per video, upper bound (inclusive)
    min_pedestrians: int = Field(1, ge=0)  # passers-by per video, lower bound (inclusive)
    max_pedestrians: int = Field(3, ge=0)  # passers-by per video, upper bound (inclusive)
    noise_sigma: float = Field(3.0, ge=0)  # sensor noise, grey levels (as synth)
    lighting_amplitude: float = Field(0.12, ge=0, lt=1)  # slow brightness change (as synth)
    # A patch is labelled with the object covering most of its pixels (over its two frames) when
    # that object covers at least this share of them; otherwise it is background.
    min_coverage: float = Field(0.1, gt=0, le=1)
    # Width of the pretrained tower (hidden size; its MLP is twice as wide) and its attention heads.
    # The random embedded tiny tower is 32 wide with 2 heads; a wider one costs little on CPU (the
    # tower's time is mostly per-call overhead at these sizes) and has room for what it learns.
    vision_width: int = Field(64, ge=8)
    vision_heads: int = Field(4, ge=1)
    # The training pool: `pool_videos` videos (stream 0) held in memory, steps draw crops from them.
    # During training `fresh_videos` more are rendered (evenly over the steps, by a helper process,
    # on the other core) and replace the oldest, so the tower sees pool_videos + fresh_videos
    # distinct videos. Too few distinct videos and the tower memorises each actor's clothes: with
    # 48 and no fresh ones, held-out accuracy stayed at the majority class while training accuracy
    # climbed to 0.94 (benchmarks/results/backbone_cpu_2026-11-27c.md).
    pool_videos: int = Field(150, ge=1)
    fresh_videos: int = Field(12000, ge=0)
    render_workers: int = Field(1, ge=0)  # helper processes rendering fresh videos (0 = in the training process)
    # Training crops: each sample is one clip of one pool video cut to crop x crop pixels (a multiple
    # of 28, the merge unit) at the clip size, placed at random with a preference for objects, so a
    # step spends its compute on patches with something to learn. 0 (or >= the clip) = whole clip.
    crop: int = Field(112, ge=0)
    batch: int = Field(8, ge=1)  # crops per optimiser step
    steps: int = Field(20000, ge=1)  # optimiser steps
    lr: float = Field(1e-3, gt=0)  # AdamW peak learning rate (linear warm-up, cosine decay)
    warmup: int = Field(50, ge=0)  # warm-up steps
    weight_decay: float = Field(0.05, ge=0)  # AdamW weight decay
    grad_clip: float = Field(1.0, gt=0)  # max gradient norm
    background_weight: float = Field(0.3, gt=0)  # weight of the background class in the category loss
    action_weight: float = Field(1.0, ge=0)  # weight of the per-patch action loss (object patches)
    velocity_weight: float = Field(1.0, ge=0)  # weight of the per-patch velocity regression
    merged_weight: float = Field(0.5, ge=0)  # weight of the labels predicted from merged (LM) tokens
    # The language model (tvau.pretrain.language), after the tower: generic dialogues about
    # `lm_videos` world videos (stream 2; tower and merger frozen), `lm_steps` AdamW steps of
    # `lm_batch` videos (linear warm-up, cosine decay); 0 steps leaves the LM random.
    lm_videos: int = Field(150, ge=1)
    lm_holdout_videos: int = Field(16, ge=1)
    lm_steps: int = Field(300, ge=0)
    lm_batch: int = Field(8, ge=1)
    lm_lr: float = Field(3e-3, gt=0)
    lm_warmup: int = Field(30, ge=0)
    holdout_videos: int = Field(12, ge=1)  # pretraining-world videos (another stream) for the metrics
    # CPU threads while pretraining. Fixed, because float reductions split over another number of
    # threads can differ in the last bit, and the DVC output must be the same bytes every run.
    threads: int = Field(1, ge=1)

    @field_validator("activities")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(ANOMALY_KINDS))
        if unknown:
            raise ValueError(f"unknown activities {unknown}; known: {sorted(ANOMALY_KINDS)}")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> PretrainConfig:
        if self.min_activities > self.max_activities or self.min_pedestrians > self.max_pedestrians:
            raise ValueError("min_activities/min_pedestrians must be <= their max")
        if self.max_activities and not self.activities:
            raise ValueError("activities is empty but max_activities > 0")
        if self.clip_frames % 2 or self.video_frames < self.clip_frames:
            raise ValueError("clip_frames must be even and <= video_frames")
        if self.size % 2:
            raise ValueError("size must be even")
        if self.crop % 28:
            raise ValueError("crop must be a multiple of 28 (the 2x2 merge unit of 14-px patches)")
        if self.vision_width % self.vision_heads or (self.vision_width // self.vision_heads) % 4:
            raise ValueError("vision_width / vision_heads must be a multiple of 4 (the tower's 2-D rotary halves)")
        return self
