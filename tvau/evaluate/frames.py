"""Evaluate a heatmap scorer on a split (formerly tvau/evaluate.py): frame AUCs, pixel AUROC, mIoU, RBDC/TBDC -> metrics.json.

A scorer is any callable `record -> iterable of (h, w) float heatmaps in [0, 1]`, one per frame in
order; an ndarray (num_frames, h, w) is such an iterable, so a model that returns whole arrays and
the streaming baseline both fit. Maps smaller than the frame are upsampled (bilinear) to the frame
size before anything is measured, as docs/method.md section 4 prescribes for per-frame output.

Choices the paper did not publish (docs/method.md 9), all from MetricsConfig and recorded in the output:
- frame score = maximum over the pixels of the frame's heatmap ("max"; or "mean"), optionally
  smoothed over time with a Gaussian of `temporal_sigma` frames (off by default);
- pixel AUROC over every pixel (or every `pixel_stride`-th row and column) from streamed histograms
  (tvau/metrics/frame.py), so no pixel sampling is needed at our sizes;
- region detections for RBDC/TBDC via the named option `regions` ("components", "boxes" or
  "motion", see tvau/metrics/regions.py); with "boxes" the candidate boxes are the dataset's object
  boxes, with "motion" the baseline's components (the baseline runs in the same pass).

All rates in the result are fractions in [0, 1] (the paper prints percentages). A metric that is
undefined on the split (e.g. AUC without any anomalous frame) is None, with the reason in "notes".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tvau.data.record import VideoRecord
from tvau.metrics.config import MetricsConfig
from tvau.metrics.frame import PixelMetrics, macro_auc, micro_auc
from tvau.metrics.regions import heatmap_to_regions, object_boxes, rbdc_tbdc, tracks_table
from tvau.storage import atomic_open

Scorer = Callable[[VideoRecord], Iterable[np.ndarray]]


def _to_frame_size(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape == (height, width):
        return heat
    import cv2

    return np.clip(cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


class _Measures:
    """One heatmap stream's per-frame measures over a video: pixel statistics, frame scores and
    region rows (frame, x1, y1, x2, y2, score)."""

    def __init__(self, record: VideoRecord, cfg: MetricsConfig, pixels: PixelMetrics | None) -> None:
        self.record, self.cfg, self.pixels = record, cfg, pixels
        self.scores: list[float] = []
        self.regions: list[np.ndarray] = []

    def add(self, t: int, heat: np.ndarray, mask: np.ndarray, option: str, boxes: np.ndarray | None) -> np.ndarray:
        """Measure frame t's heatmap (pixels only when this stream has statistics); returns its
        region rows (n, 5) x1, y1, x2, y2, score."""
        rec, cfg = self.record, self.cfg
        heat = _to_frame_size(heat, rec.height, rec.width)
        if not np.isfinite(heat).all() or heat.min() < 0 or heat.max() > 1:
            raise ValueError(f"{rec.name} frame {t}: heatmap values must be finite and in [0, 1]")
        if self.pixels is not None:
            self.pixels.update(heat, mask)
        self.scores.append(float(heat.max() if cfg.frame_score == "max" else heat.mean()))
        r = heatmap_to_regions(heat, option, levels=cfg.component_levels, boxes=boxes,
                               min_area=cfg.min_region_area, max_regions=cfg.max_regions_per_frame)
        if len(r):
            self.regions.append(np.column_stack([np.full(len(r), t), r]))
        return r

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        s = np.asarray(self.scores, dtype=np.float64)
        if self.cfg.temporal_sigma > 0:
            from scipy.ndimage import gaussian_filter1d

            s = gaussian_filter1d(s, self.cfg.temporal_sigma, mode="nearest")
        return s, (np.concatenate(self.regions) if self.regions else np.zeros((0, 6)))


def _score_streams(
    record: VideoRecord, scorer: Scorer, cfg: MetricsConfig, pixels: PixelMetrics,
    base_pixels: PixelMetrics | None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """One pass over a video: the scorer's measures, and the baseline's when base_pixels is given.
    Region option "motion" needs the baseline's heatmap (its components are the candidate boxes),
    so it runs the baseline in the same pass even when its measures are not wanted."""
    from tvau.baseline import BaselineScorer

    masks = record.iter_anomaly_masks()
    objects = record.iter_object_maps() if cfg.regions == "boxes" else None
    run_base = base_pixels is not None or cfg.regions == "motion"
    base_heats = iter(BaselineScorer(cfg.baseline)(record)) if run_base else None
    model = _Measures(record, cfg, pixels)
    base = _Measures(record, cfg, base_pixels)
    t = -1
    for t, heat in enumerate(scorer(record)):
        if t >= record.num_frames:
            raise ValueError(f"{record.name}: the scorer produced more than {record.num_frames} heatmaps")
        mask = next(masks, None)
        if mask is None:
            raise ValueError(f"{record.name}: the dataset has fewer anomaly masks than frames ({t})")
        boxes = None
        if objects is not None:
            obj = next(objects, None)
            if obj is None:
                raise ValueError(f"{record.name}: the dataset has fewer object maps than frames ({t})")
            boxes = object_boxes(obj)
        option = cfg.regions
        if base_heats is not None:
            bheat = next(base_heats, None)
            if bheat is None:
                raise ValueError(f"{record.name}: the video decoded to fewer frames than it has ({t})")
            # The baseline is the motion detector: under "motion" its rows are its own components.
            found = base.add(t, bheat, mask, "components" if option == "motion" else option, boxes)
            if option == "motion":
                boxes = found[:, :4]
        model.add(t, heat, mask, option, boxes)
    if t + 1 != record.num_frames:
        raise ValueError(
            f"{record.name}: the scorer produced {t + 1} heatmaps for {record.num_frames} frames"
        )
    return model.finish(), (base.finish() if base_pixels is not None else None)


def score_video(
    record: VideoRecord, scorer: Scorer, cfg: MetricsConfig, pixels: PixelMetrics
) -> tuple[np.ndarray, np.ndarray]:
    """Run the scorer over one video. Updates `pixels`; returns frame scores (num_frames,) and
    region detections (n, 6) rows frame, x1, y1, x2, y2, score."""
    return _score_streams(record, scorer, cfg, pixels, None)[0]


def _defined(fn: Callable[[], float], key: str, notes: list[str]) -> float | None:
    try:
        v = fn()
    except ValueError as exc:
        notes.append(f"{key}: {exc}")
        return None
    if np.isnan(v):
        notes.append(f"{key}: undefined on this split")
        return None
    return float(v)


@dataclass
class VideoScores:
    """One video's scored outputs: what every metric (and its bootstrap) is computed from."""

    name: str
    labels: np.ndarray  # (num_frames,) int64 frame labels
    scores: np.ndarray  # (num_frames,) float64 frame scores
    tracks: np.ndarray  # (N, 6) ground-truth regions: track_id, frame, x1, y1, x2, y2
    detections: np.ndarray  # (M, 6) frame, x1, y1, x2, y2, score
    pixels: PixelMetrics  # this video's pixel histograms and confusion counts


def score_records(
    records: Sequence[VideoRecord], scorer: Scorer, cfg: MetricsConfig, progress: bool = True, desc: str = "evaluate",
    lines: bool = False,
) -> list[VideoScores]:
    """Run the scorer over every record, keeping per-video results (for intervals over videos).
    lines: without a progress bar, one stderr line per 10 videos (logs of DVC stages)."""
    return _score_records(records, scorer, cfg, progress, desc, lines, False)[0]


def score_records_with_baseline(
    records: Sequence[VideoRecord], scorer: Scorer, cfg: MetricsConfig, progress: bool = True, desc: str = "evaluate",
    lines: bool = False,
) -> tuple[list[VideoScores], list[VideoScores]]:
    """score_records for the scorer and the baseline (tvau/baseline.py) in one pass over each video:
    (scorer's results, baseline's results). Under region option "motion" the scorer needs the
    baseline's heatmap anyway; measuring both from the one pass costs the baseline once."""
    return _score_records(records, scorer, cfg, progress, desc, lines, True)


def _score_records(records, scorer, cfg, progress, desc, lines, with_baseline):
    import sys

    from tqdm import tqdm

    out, base = [], []
    for i, rec in enumerate(tqdm(records, desc=desc, unit="video", disable=not progress)):
        if lines and not progress and i % 10 == 0:
            print(f"{desc}: video {i + 1}/{len(records)}", file=sys.stderr, flush=True)
        pixels = PixelMetrics(bins=cfg.auc_bins, threshold=cfg.miou_threshold, stride=cfg.pixel_stride)
        bpix = PixelMetrics(bins=cfg.auc_bins, threshold=cfg.miou_threshold, stride=cfg.pixel_stride) \
            if with_baseline else None
        (s, d), b = _score_streams(rec, scorer, cfg, pixels, bpix)
        labels, tracks = np.asarray(rec.frame_labels, dtype=np.int64), tracks_table(rec.tracks)
        out.append(VideoScores(rec.name, labels, s, tracks, d, pixels))
        if b is not None:
            base.append(VideoScores(rec.name, labels, b[0], tracks, b[1], bpix))
    return out, base


def merge_pixels(videos: Sequence[VideoScores], cfg: MetricsConfig) -> PixelMetrics:
    """The split's pixel statistics: the per-video histograms and counts summed."""
    total = PixelMetrics(bins=cfg.auc_bins, threshold=cfg.miou_threshold, stride=cfg.pixel_stride)
    for v in videos:
        total.pos_hist += v.pixels.pos_hist
        total.neg_hist += v.pixels.neg_hist
        total.tp, total.fp, total.fn, total.tn = (total.tp + v.pixels.tp, total.fp + v.pixels.fp,
                                                  total.fn + v.pixels.fn, total.tn + v.pixels.tn)
    return total


def evaluate(
    records: Sequence[VideoRecord],
    scorer: Scorer,
    cfg: MetricsConfig | None = None,
    scorer_name: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """All metrics of `scorer` over `records` (one split). Returns a JSON-ready dict."""
    cfg = cfg or MetricsConfig()
    if not records:
        raise ValueError("nothing to evaluate: the split holds no videos")
    return summarise(score_records(records, scorer, cfg, progress), cfg, scorer_name)


def summarise(videos: Sequence[VideoScores], cfg: MetricsConfig, scorer_name: str = "") -> dict[str, Any]:
    """The metrics dict of evaluate() from per-video results."""
    labels = [v.labels for v in videos]
    scores = [v.scores for v in videos]
    tracks = {v.name: v.tracks for v in videos}
    dets = {v.name: v.detections for v in videos}
    pixels = merge_pixels(videos, cfg)
    notes: list[str] = []
    num_frames = int(sum(len(y) for y in labels))
    curves = None
    try:
        curves = rbdc_tbdc(tracks, dets, num_frames, alpha=cfg.rbdc_alpha, beta=cfg.tbdc_beta)
    except ValueError as exc:
        notes.append(f"rbdc/tbdc: {exc}")
    return {
        "scorer": scorer_name,
        "videos": len(videos),
        "frames": num_frames,
        "anomalous_frames": int(sum(int(y.sum()) for y in labels)),
        "micro_auc": _defined(lambda: micro_auc(labels, scores), "micro_auc", notes),
        "macro_auc": _defined(lambda: macro_auc(labels, scores), "macro_auc", notes),
        "pixel_auroc": _defined(pixels.auroc, "pixel_auroc", notes),
        "miou": _defined(pixels.miou, "miou", notes),
        "iou_anomalous": _defined(pixels.iou_anomalous, "iou_anomalous", notes),
        "rbdc": None if curves is None else curves.rbdc,
        "tbdc": None if curves is None else curves.tbdc,
        "gt_regions": 0 if curves is None else curves.num_regions,
        "gt_tracks": 0 if curves is None else curves.num_tracks,
        "detections": int(sum(len(d) for d in dets.values())),
        "settings": {
            "frame_score": cfg.frame_score,
            "temporal_sigma": cfg.temporal_sigma,
            "regions": cfg.regions,
            "component_levels": list(cfg.component_levels),
            "min_region_area": cfg.min_region_area,
            "max_regions_per_frame": cfg.max_regions_per_frame,
            "rbdc_alpha": cfg.rbdc_alpha,
            "tbdc_beta": cfg.tbdc_beta,
            "miou_threshold": cfg.miou_threshold,
            "pixel_stride": cfg.pixel_stride,
            "auc_bins": cfg.auc_bins,
        },
        "notes": notes,
    }


def write_metrics_json(metrics: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (temp file in the same folder, then rename): a reader never sees half a file."""
    path = Path(path)
    with atomic_open(path, "w") as fh:
        json.dump(metrics, fh, indent=2, sort_keys=False)
        fh.write("\n")
    return path


def select_split(records: Iterable[VideoRecord], split: str | None) -> list[VideoRecord]:
    """Records of one split ("all" or None: every record)."""
    records = list(records)
    if split in (None, "all"):
        return records
    chosen = [r for r in records if r.split == split]
    if not chosen:
        found = sorted({str(r.split) for r in records})
        raise ValueError(f"no videos in split {split!r}; splits present: {found}")
    return chosen
