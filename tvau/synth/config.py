"""Synthetic footage parameters (params.yaml: synth).

None of these numbers comes from the paper: the generator is ours. Defaults are chosen so
that `tvau synth` builds a 60-video set at 256x256 in about a minute on 2 cores, and so that every
clip sampler (24 frames, stride 12) sees several clips per video.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from tvau.configbase import Section
from tvau.vocab import ANOMALY_KINDS


class SynthConfig(Section):
    videos: int = Field(210, ge=1)  # number of videos (UBnormal-sized sets are ~540; 60 is our demo size)
    size: int = Field(256, ge=32)  # frame width and height in pixels; even, for yuv420p H.264
    scenes: int = Field(6, ge=1)  # distinct fixed cameras (Scene{N}); videos are spread round-robin
    frames: int = Field(96, ge=24)  # frames per video (4 s at 24 fps: 7 clips of 24, stride 12)
    fps: float = Field(24.0, gt=0)  # frame rate written to the mp4 (the paper feeds clips at 24 fps)
    anomaly_fraction: float = Field(0.5, ge=0, le=1)  # share of videos that hold one anomaly event
    # Relative weight of each anomaly kind (tvau.vocab.ANOMALY_KINDS keys); empty = all kinds equal.
    anomaly_mix: dict[str, float] = Field(default_factory=dict)
    min_pedestrians: int = Field(2, ge=0)  # normal walkers per video, lower bound (inclusive)
    max_pedestrians: int = Field(5, ge=0)  # normal walkers per video, upper bound (inclusive)
    train_fraction: float = Field(0.2, ge=0, le=1)  # share of each of normal/abnormal videos in train
    validation_fraction: float = Field(0.7143, ge=0, le=1)  # share in validation; the rest is test
    noise_sigma: float = Field(3.0, ge=0)  # sensor noise, grey levels (std of additive Gaussian)
    lighting_amplitude: float = Field(0.12, ge=0, lt=1)  # slow global brightness change, +- share
    # PyAV encoder. A name this build lacks is an error; only the default libx264 falls back (to
    # mpeg4, with a warning, recorded as `codec` in the manifest and the stage metrics).
    codec: str = "libx264"
    crf: int = Field(20, ge=0, le=51)  # H.264 constant rate factor (lower = better quality, bigger files)

    @field_validator("size")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("size must be even (yuv420p video needs even dimensions)")
        return v

    @field_validator("anomaly_mix")
    @classmethod
    def _known_kinds(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(ANOMALY_KINDS))
        if unknown:
            raise ValueError(f"unknown anomaly kinds {unknown}; known: {sorted(ANOMALY_KINDS)}")
        if any(w < 0 for w in v.values()) or (v and sum(v.values()) <= 0):
            raise ValueError("anomaly_mix weights must be >= 0 with a positive sum")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> SynthConfig:
        if self.min_pedestrians > self.max_pedestrians:
            raise ValueError("min_pedestrians must be <= max_pedestrians")
        if self.train_fraction + self.validation_fraction > 1:
            raise ValueError("train_fraction + validation_fraction must be <= 1")
        return self

    def kind_weights(self) -> dict[str, float]:
        """Normalised weight per anomaly kind, in ANOMALY_KINDS order (zero weights dropped)."""
        raw = self.anomaly_mix or {k: 1.0 for k in ANOMALY_KINDS}
        total = sum(raw.values())
        return {k: raw[k] / total for k in ANOMALY_KINDS if raw.get(k, 0) > 0}
