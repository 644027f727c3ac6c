"""Evaluation parameters (params.yaml: metrics).

Where the paper is silent (docs/method.md section 9: frame score, heatmap -> boxes, BLEU variant), the
default named here is ours and says so; every such choice is recorded in metrics.json.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tvau.configbase import Section


class BaselineConfig(Section):
    """The non-learned reference scorer (tvau/baseline.py). All defaults are ours."""

    work_size: int = (
        128  # longer side (pixels) of the grey frame the baseline works on; output is resized back
    )
    background_window: int = 25  # frames in the running-median background (odd keeps the median a real pixel)
    background_every: int = 2  # push every k-th frame into the median window (cheaper, longer memory)
    motion_weight: float = 1.0  # weight of |frame - previous frame| against |frame - background|
    blur_sigma: float = (
        1.5  # Gaussian pre-smoothing of each grey frame against sensor noise (work-size pixels)
    )
    scale: float = 20.0  # grey-level difference mapped to 0.5: heat = d / (d + scale)


class MetricsConfig(Section):
    rbdc_alpha: float = Field(0.1, gt=0, le=1)  # IoU threshold for a region hit (Ramachandra & Jones 2020)
    tbdc_beta: float = Field(0.1, gt=0, le=1)  # share of a track's regions that must be hit (same paper)
    # Heatmap -> frame score. Not published (docs/method.md 9); "max" over pixels is the obvious default.
    frame_score: Literal["max", "mean"] = "max"
    # Gaussian smoothing of frame scores over time (frames, 0 = off). Not published; off by default.
    temporal_sigma: float = Field(4.0, ge=0)
    # Heatmap -> region detections for RBDC/TBDC (docs/method.md 9: not published, results depend on it).
    # "components": connected components of the heatmap at each level; "boxes": the dataset's
    # object boxes (an oracle detector) scored by the heatmap maximum inside; "motion": the boxes of
    # a non-learned motion detector (the baseline's own components, same levels) scored by the
    # heatmap maximum inside, so model and baseline are judged on the same candidate regions.
    regions: Literal["components", "boxes", "motion"] = "motion"
    component_levels: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)  # thresholds for "components" (ours)
    min_region_area: int = Field(16, ge=1)  # drop components/boxes smaller than this (pixels; ours)
    max_regions_per_frame: int = Field(20, ge=1)  # keep the highest-scoring ones per frame (ours)
    miou_threshold: float = Field(0.5, gt=0, lt=1)  # heatmap >= this is "anomalous" for mIoU (ours)
    pixel_stride: int = Field(1, ge=1)  # pixel AUROC uses every k-th row and column (1 = all pixels)
    auc_bins: int = Field(65536, ge=256)  # score bins of the streaming pixel AUROC (error <= 1/bins)
    bleu_tokenize: str = "13a"  # sacrebleu tokenizer (its default; the paper's BLEU is unpublished)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
