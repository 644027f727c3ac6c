"""Parameters of the embedded backbone's pretraining (params.yaml: pretrain). Used by tvau/pretrain.

None of these comes from the paper (the paper freezes a vendor-pretrained Qwen2.5-VL-7B); they are
our choices for a stand-in pretraining on 2 CPU cores. Three parts, so that each DVC stage lists only
what it reads: `world` (the footage both stages render), `vision` (the tower and merger: stage
pretrain_vision) and `language` (the language model: stage pretrain_language). The clip size is
params.yaml clip.height/width (the backbone learns at the resolution T-VAU feeds it).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from tvau.configbase import Section
from tvau.data.config import ClipConfig
from tvau.model.config import ModelConfig
from tvau.vocab import ANOMALY_KINDS


class WorldConfig(Section):
    # Seed of the pretraining world (footage, batch order, heads). Must differ from the global
    # `seed` and from every seed used to make T-VAU footage, so no pretraining video is a T-VAU video.
    seed: int = 1000
    # Scene numbers of the pretraining world start above this: its cameras (backgrounds, walkways)
    # are never those of `tvau synth`, whose scenes are numbered 1..synth.scenes.
    scene_offset: int = Field(100, ge=0)
    scenes: int = Field(12, ge=1)  # distinct cameras of the pretraining world
    size: int = Field(256, ge=32)  # rendered frame size in pixels (as synth.size: same people in pixels)
    video_frames: int = Field(24, ge=24)  # frames per rendered video (the builders need >= 24)
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
    render_workers: int = Field(1, ge=0)  # helper processes rendering videos (0 = in the training process)
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
    def _ranges(self) -> WorldConfig:
        if self.min_activities > self.max_activities or self.min_pedestrians > self.max_pedestrians:
            raise ValueError("min_activities/min_pedestrians must be <= their max")
        if self.max_activities and not self.activities:
            raise ValueError("activities is empty but max_activities > 0")
        if self.size % 2:
            raise ValueError("size must be even")
        return self


class VisionConfig(Section):
    # Width of the pretrained tower (hidden size; its MLP is twice as wide) and its attention heads.
    # The random embedded tiny tower is 32 wide with 2 heads.
    width: int = Field(64, ge=8)
    heads: int = Field(4, ge=1)
    # Width of the merged tokens, which is the language model's width (the merger writes into it).
    merged_width: int = Field(128, ge=8)
    clip_frames: int = Field(8, ge=2)  # frames per training clip (4 temporal patches), even
    # A patch is labelled with the object covering most of its pixels (over its two frames) when
    # that object covers at least this share of them; otherwise it is background.
    min_coverage: float = Field(0.1, gt=0, le=1)
    # The training pool: `pool_videos` videos (stream 0) held in memory, steps draw crops from them.
    # During training `fresh_videos` more are rendered (evenly over the steps, by the helpers, on
    # the other core) and replace the oldest, so the tower sees pool_videos + fresh_videos distinct
    # videos (too few and it memorises each actor's clothes: docs/decisions.md).
    pool_videos: int = Field(150, ge=1)
    fresh_videos: int = Field(12000, ge=0)
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
    # Weight of the appearance losses (the object's colours and garments, on every patch it covers):
    # every description names them, and without them the tower discards colour by its last block.
    appearance_weight: float = Field(1.0, ge=0)
    merged_weight: float = Field(0.5, ge=0)  # weight of the labels predicted from merged (LM) tokens
    holdout_videos: int = Field(12, ge=1)  # pretraining-world videos (stream 1) for the metrics
    checkpoint_every: int = Field(500, ge=1)  # steps between resumable checkpoints

    @model_validator(mode="after")
    def _shapes(self) -> VisionConfig:
        if self.clip_frames % 2:
            raise ValueError("vision.clip_frames must be even")
        if self.crop % 28:
            raise ValueError("crop must be a multiple of 28 (the 2x2 merge unit of 14-px patches)")
        if self.width % self.heads or (self.width // self.heads) % 4:
            raise ValueError("vision width / heads must be a multiple of 4 (the tower's 2-D rotary halves)")
        return self


class LanguageConfig(Section):
    # The language model (tvau.pretrain.language), after the tower: generic dialogues about `videos`
    # world videos (stream 2; tower and merger frozen). Its width is vision.merged_width.
    layers: int = Field(4, ge=1)  # decoder layers
    heads: int = Field(8, ge=1)  # attention heads (head dim = merged_width / heads)
    kv_heads: int = Field(4, ge=1)  # key/value heads (grouped-query attention, as the 7B's 28/4)
    mlp_ratio: int = Field(3, ge=1)  # MLP width / model width
    videos: int = Field(800, ge=1)  # training videos (their merged tokens are encoded once)
    holdout_videos: int = Field(40, ge=1)  # held-out videos (stream 3) for the metrics
    steps: int = Field(2000, ge=0)  # AdamW steps of `batch` videos; 0 leaves the LM random
    # Chance that a batch is of 8-frame clips of videos (each with its own dialogue) rather than of
    # whole 24-frame videos as stage 2 feeds: a third of the tokens, so more steps in the time.
    short_share: float = Field(0.75, ge=0, le=1)
    batch: int = Field(8, ge=1)
    lr: float = Field(2e-3, gt=0)  # peak learning rate (linear warm-up, cosine decay)
    warmup: int = Field(100, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(250, ge=1)  # steps between resumable checkpoints
    # CPU threads of this part (fixed, as world.threads). Its videos are rendered and encoded before
    # the first step, so nothing else needs the second core while it trains.
    threads: int = Field(2, ge=1)


class PretrainConfig(Section):
    world: WorldConfig = Field(default_factory=WorldConfig)
    vision: VisionConfig = Field(default_factory=VisionConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)

    @model_validator(mode="after")
    def _fits(self) -> PretrainConfig:
        if self.world.video_frames < self.vision.clip_frames:
            raise ValueError("vision.clip_frames must be <= world.video_frames")
        lm = self.language
        if self.vision.merged_width % lm.heads or lm.heads % lm.kv_heads or (self.vision.merged_width // lm.heads) % 16:
            raise ValueError("vision.merged_width / language.heads must be a multiple of 16 (M-RoPE's three "
                             "sections of its rotary halves), and language.heads a multiple of language.kv_heads")
        return self


class PretrainParams(Section):
    """The params.yaml sections the pretraining stages read, and only those: they load no other
    section's module, so a change to another stage's configuration code does not rerun them."""

    seed: int = 0  # the global seed (tvau.config.Params.seed), which pretrain.world.seed must differ from
    clip: ClipConfig = Field(default_factory=ClipConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
