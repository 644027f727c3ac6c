"""Frame- and pixel-level metrics (docs/method.md section 9).

- micro-AUC: ROC-AUC over the frames of all videos pooled (scikit-learn's roc_auc_score).
- macro-AUC, UBnormal convention: per video, the labels become [0] + labels + [1] and the scores
  [0] + scores + [1], so that a video with a single class still has an AUC; the mean over videos.
  Scores must therefore lie in [0, 1] (heatmap-derived scores do).
- pixel AUROC: ROC-AUC over every pixel of every frame. A benchmark split holds billions of pixels,
  so it is computed from score histograms accumulated frame by frame (PixelMetrics): ties inside a
  bin count one half, exactly as roc_auc_score counts tied scores, so the result is exact when the
  scores are quantised to the bins and within 1/bins of the exact value otherwise.
- mIoU (our definition; the paper reports none): threshold the heatmap at `threshold` (default
  0.5), then, as in semantic segmentation, accumulate intersection and union over all pixels of all
  frames for each of the two classes (anomalous, normal) and average the two IoUs. A class with an
  empty union over the whole set (e.g. no anomalous pixel predicted nor annotated) is left out of
  the mean. `iou_anomalous` alone is reported too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score


def _check_pair(labels: np.ndarray, scores: np.ndarray, what: str) -> None:
    if labels.shape != scores.shape:
        raise ValueError(f"{what}: labels {labels.shape} and scores {scores.shape} differ in shape")
    if not np.isfinite(scores).all():
        raise ValueError(f"{what}: scores contain NaN or infinity")


def micro_auc(labels: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> float:
    """ROC-AUC over all frames of all videos pooled. labels[i], scores[i]: (num_frames_i,)."""
    if len(labels) != len(scores):
        raise ValueError(f"micro-AUC: {len(labels)} label arrays but {len(scores)} score arrays")
    for i, (y, s) in enumerate(zip(labels, scores)):
        _check_pair(np.asarray(y), np.asarray(s), f"micro-AUC video {i}")
    y = np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in labels])
    s = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in scores])
    if y.min(initial=0) == y.max(initial=0):
        raise ValueError("micro-AUC is undefined: all frames carry the same label")
    return float(roc_auc_score(y, s))


def macro_auc(labels: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> float:
    """Mean per-video ROC-AUC, each video padded with a (label 0, score 0) and a (label 1, score 1)
    frame (UBnormal convention). labels[i], scores[i]: (num_frames_i,), scores in [0, 1]."""
    if len(labels) != len(scores):
        raise ValueError(f"macro-AUC: {len(labels)} label arrays but {len(scores)} score arrays")
    if not labels:
        raise ValueError("macro-AUC of no videos is undefined")
    aucs = []
    for i, (y, s) in enumerate(zip(labels, scores)):
        y = np.asarray(y, dtype=np.int64).ravel()
        s = np.asarray(s, dtype=np.float64).ravel()
        _check_pair(y, s, f"macro-AUC video {i}")
        if s.size and (s.min() < 0 or s.max() > 1):
            raise ValueError(f"macro-AUC video {i}: scores must lie in [0, 1] for the 0/1 padding")
        aucs.append(roc_auc_score(np.concatenate(([0], y, [1])), np.concatenate(([0.0], s, [1.0]))))
    return float(np.mean(aucs))


def auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC-AUC from per-bin counts of positives and negatives (bins in ascending score order):
    P(score_pos > score_neg) + 0.5 P(equal bin)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC is undefined: only one class present")
    neg_below = np.cumsum(neg) - neg  # negatives in strictly lower bins
    return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))


@dataclass
class PixelMetrics:
    """Streams (heatmap, mask) frames into pixel AUROC histograms and mIoU confusion counts.

    heatmap: (H, W) float in [0, 1]; mask: (H, W) bool, True = anomalous pixel. `stride` keeps every
    k-th row and column for the AUROC only (mIoU always uses every pixel)."""

    bins: int = 65536
    threshold: float = 0.5
    stride: int = 1
    pos_hist: np.ndarray = field(init=False)
    neg_hist: np.ndarray = field(init=False)
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __post_init__(self) -> None:
        self.pos_hist = np.zeros(self.bins, dtype=np.int64)
        self.neg_hist = np.zeros(self.bins, dtype=np.int64)

    def update(self, heatmap: np.ndarray, mask: np.ndarray) -> None:
        if heatmap.shape != mask.shape:
            raise ValueError(f"heatmap {heatmap.shape} and mask {mask.shape} differ in shape")
        mask = mask.astype(bool, copy=False)
        pred = heatmap >= self.threshold
        tp = int(np.count_nonzero(pred & mask))
        n_pred, n_mask = int(np.count_nonzero(pred)), int(np.count_nonzero(mask))
        self.tp += tp
        self.fp += n_pred - tp
        self.fn += n_mask - tp
        self.tn += mask.size - n_pred - n_mask + tp
        h = heatmap[:: self.stride, :: self.stride]
        m = mask[:: self.stride, :: self.stride]
        if h.size and (not np.isfinite(h).all() or h.min() < 0 or h.max() > 1):
            raise ValueError("heatmap values must be finite and lie in [0, 1]")
        idx = np.minimum((h * self.bins).astype(np.int64), self.bins - 1)
        pos = np.bincount(idx[m], minlength=self.bins)
        self.pos_hist += pos
        self.neg_hist += np.bincount(idx.ravel(), minlength=self.bins) - pos

    def auroc(self) -> float:
        return auc_from_histograms(self.pos_hist, self.neg_hist)

    def iou_anomalous(self) -> float:
        union = self.tp + self.fp + self.fn
        return float(self.tp / union) if union else float("nan")

    def miou(self) -> float:
        ious = []
        if self.tp + self.fp + self.fn:
            ious.append(self.tp / (self.tp + self.fp + self.fn))
        if self.tn + self.fp + self.fn:
            ious.append(self.tn / (self.tn + self.fp + self.fn))
        return float(np.mean(ious)) if ious else float("nan")


def pixel_auroc(heatmaps: np.ndarray, masks: np.ndarray, bins: int = 65536) -> float:
    """Pixel AUROC of in-memory arrays (T, H, W); streaming users call PixelMetrics directly."""
    acc = PixelMetrics(bins=bins)
    for h, m in zip(heatmaps, masks):
        acc.update(h, m)
    return acc.auroc()


def miou(heatmaps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> float:
    """mIoU of in-memory arrays (T, H, W) as defined in the module docstring."""
    acc = PixelMetrics(bins=256, threshold=threshold)
    for h, m in zip(heatmaps, masks):
        acc.update(h, m)
    return acc.miou()
