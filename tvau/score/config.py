"""Nightly scoring parameters (params.yaml: score). Used by tvau/score and flows/score.py.

The analysis rate (sampled fps, clip length, stride) and the cascade level are the cost controls:
halving the sampled fps halves the vision-tower work, and only clips whose heatmap reaches
`escalate_level` are handed to the language model.

The verdict's threshold is not a parameter here: it is fitted at evaluation time for
`false_alarm_rate` and travels with the model (calibration.json, tvau/score/verdict.py). The
questions are not either: the scorer asks the dialogue the model was trained on (tvau/score/explain.py).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tvau.configbase import Section


class ScoreConfig(Section):
    # Registry URI (resolved by tvau.registry) or a local trained-model directory.
    model_uri: str = "models:/tvau@champion"
    # --- analysis rate ---
    sample_fps: float = Field(24.0, gt=0)  # frames per second analysed (never more than the video has)
    clip_frames: int = Field(24, ge=2)  # sampled frames per clip fed to the vision tower
    stride: int = Field(24, ge=1)  # sampled frames between clip starts (<= clip_frames: every frame is seen)
    # --- cascade ---
    # A flagged span's peak clip goes to the language model only when its heatmap maximum reaches
    # this level too (1.0: no explanations at all, e.g. in tests).
    escalate_level: float = Field(0.3, ge=0, le=1)
    max_new_tokens: int = Field(48, ge=1)
    clips_per_call: int = Field(4, ge=1)  # clips handed to the model together (batched entry points)
    # --- verdict (threshold: calibration.json of the model) ---
    # Share of normal validation videos the fitted threshold may flag (read by `tvau evaluate`).
    false_alarm_rate: float = Field(0.05, gt=0, lt=1)
    min_span_frames: int = Field(6, ge=1)  # sampled frames; shorter spans dropped (the peak's span is kept)
    span_gap_frames: int = Field(12, ge=0)  # gaps shorter than this (sampled frames) join two spans
    # --- drift (the night against the validation distribution) ---
    drift_min_videos: int = Field(20, ge=1)  # fewer videos: a rate or a histogram of them means nothing
    # PSI above 0.25 is the conventional "major shift"; the night's sampling noise is added to it
    # (tvau.score.verdict.psi_noise), as a night of tens of videos has a sizeable PSI by chance alone.
    drift_max_psi: float = Field(0.25, gt=0)
    # Flagged count whose chance under normal footage at the calibrated rate is below this: not chance.
    drift_min_p_value: float = Field(0.01, gt=0, lt=1)
    # --- outputs ---
    region_levels: tuple[float, ...] = (0.5, 0.7, 0.9)  # heatmap levels of the scored regions
    min_region_area: int = Field(16, ge=1)  # in source-frame pixels
    max_regions_per_frame: int = Field(5, ge=1)
    overlay_fps: float = Field(6.0, gt=0)  # overlay video: the footage in real time, about this many frames/s
    trajectory_level: float = Field(0.5, ge=0, le=1)  # frames whose top region reaches it draw the path
    # --- batching and inputs ---
    videos_per_batch: int = Field(4, ge=1)  # videos per Prefect task (never a task per clip or frame)
    extensions: tuple[str, ...] = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")  # keys listed as videos
    codecs: tuple[str, ...] = ("h264", "hevc", "mpeg4", "vp8", "vp9", "av1", "mjpeg")  # accepted decoders
    min_side: int = Field(32, ge=1)  # smaller frames are quarantined ("absurd resolution")
    max_side: int = Field(4096, ge=1)  # larger frames are quarantined
    max_frames: int = Field(2_000_000, ge=1)  # declared frame count beyond this is absurd (~23 h at 24 fps)
    # --- S3 faults ---
    max_attempts: int = Field(6, ge=1)  # per request (botocore standard retries, and our streaming retries)
    backoff_s: float = Field(0.2, ge=0)  # first back-off of our own retries; doubles up to 5 s, with jitter
    read_timeout_s: float = Field(30.0, gt=0)
    chunk_bytes: int = Field(1 << 20, ge=1024)  # streaming download chunk (bounded memory)

    @model_validator(mode="after")
    def _stride_within_clip(self) -> ScoreConfig:
        if self.stride > self.clip_frames:
            raise ValueError(f"stride ({self.stride}) must not exceed clip_frames ({self.clip_frames}): "
                             "frames between clips would never be analysed")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")
        return self
