"""Evaluation parameters (params.yaml: evaluate). Used by tvau/evaluate/model.py and report.py.

Metric definitions (frame score, region method, BLEU tokenizer...) stay in params `metrics`; this
section says which videos are scored, how the intervals are drawn, and the never-seen holdout set.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tvau.configbase import Section


class EvaluateConfig(Section):
    split: Literal["validation", "test", "all"] = "validation"  # default split of `tvau evaluate`
    bootstrap: int = Field(1000, ge=10)  # bootstrap resamples of the videos for every interval
    confidence: float = Field(0.95, gt=0, lt=1)  # interval coverage (percentile bootstrap)
    bootstrap_seed: int = 0  # the resampling is seeded so metrics files are reproducible
    # Dialogue metrics: clips per video that get the multi-turn dialogue (greedy decoding is the
    # slow part on CPU). Chosen deterministically: the clips with most anomalous frames first.
    dialogue_clips_per_video: int = Field(3, ge=0)
    max_new_tokens: int = Field(48, ge=1)  # answer length cap per dialogue turn
    overlays: int = Field(3, ge=0)  # best and worst videos shown as heatmap overlays (each)
    # The never-seen holdout set: synthesised by DVC stage `synthesise_holdout` with this seed
    # (must differ from params.seed) and these many videos, all of them evaluated.
    holdout_seed: int = 1001
    holdout_videos: int = Field(150, ge=2)
    # How overlapping clips' heatmaps combine on a frame covered by several clips.
    overlap: Literal["mean", "max"] = "mean"
    threads: int = Field(1, ge=0)  # torch CPU threads (0 = torch default); see train.threads
    # Clips per vision call, and dialogue clips (of as many videos) per LM batch; the numbers do not
    # depend on it beyond float rounding (tests/evaluate/test_batched_eval.py).
    batch: int = Field(8, ge=1)
    # Frames between the clips whose heatmaps are scored; 0 = clip.num_frames (no overlap). Exact:
    # a frame pair's heatmap does not depend on the clip it is cut from (tvau/evaluate/model.py), so
    # the training stride (12 of 24) only computed each heatmap twice. Dialogue clips keep clip.stride.
    heatmap_stride: int = Field(0, ge=0)
    # Spawned worker processes that score pieces of the evaluated sets (model and baseline in one
    # pass per video) while this process scores the first piece; 0 = all here, one after the other.
    # The same numbers either way: pieces start at a multiple of `batch` videos, so the dialogue
    # batches are those of one pass (tests/evaluate/test_batched_eval.py).
    workers: int = Field(2, ge=0)
