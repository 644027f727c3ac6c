"""The per-video decision threshold, fitted on the evaluated split for a target false-alarm rate.

The nightly scorer says "anomalous" or "normal" per video; that needs a threshold on the per-video
score fitted where the truth is known. The score is tvau.score.verdict.video_score (the one
function the scorer uses too) of the frame peaks recorded while `tvau evaluate` scores the split
(PeakTee), so the two cannot drift apart. The threshold lets at most `false_alarm_rate` of the
normal videos through (a video is flagged when its score is strictly above it); its interval, and
the recall and false-alarm rate at it, are percentile bootstraps over videos (tvau.evaluate.bootstrap).

The block goes into evaluate.json (`calibration`) and, as calibration.json, into the model
directory the scorer loads (`tvau evaluate --calibration-out`, and the retrain flow's registration).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from tvau.evaluate import bootstrap as bs
from tvau.score.verdict import CALIBRATION_FORMAT, flags, frame_peak, reference_histogram, video_score


class PeakTee:
    """Wraps a heatmap scorer (record -> frame heatmaps at the model's input size) and records each
    frame's peak per video on the way, for the calibration; the heatmaps pass through unchanged."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.peaks: dict[str, list[float]] = {}
        self.fps: dict[str, float] = {}

    def __call__(self, record) -> Iterator[np.ndarray]:
        peaks = self.peaks.setdefault(record.name, [])
        self.fps[record.name] = float(record.fps)
        for heat in self.scorer(record):
            peaks.append(frame_peak(heat))
            yield heat

    def recorded(self) -> list[tuple[str, float, list[float]]]:
        """(video, fps, frame peaks) of every video seen: what calibrate() reads."""
        return [(name, self.fps[name], self.peaks[name]) for name in self.peaks]


def threshold_for(normal_scores, false_alarm_rate: float) -> float:
    """The lowest threshold that flags at most floor(rate x normal videos) normal videos."""
    s = np.sort(np.asarray(normal_scores, np.float64))[::-1]
    if not len(s):
        return math.nan
    return float(s[min(math.floor(false_alarm_rate * len(s) + 1e-9), len(s) - 1)])


def _threshold_stat(scores: np.ndarray, anomalous: np.ndarray, rate: float) -> bs.Stat:
    def per_draw(draws: np.ndarray) -> np.ndarray:
        out = []
        for row in np.atleast_2d(draws):
            normal = scores[row][~anomalous[row]]
            out.append(threshold_for(normal, rate) if len(normal) else np.nan)
        return np.asarray(out, np.float64)

    return per_draw


def fit(video_scores: Sequence[float], anomalous: Sequence[bool], false_alarm_rate: float, sigma_s: float,
        sampling: dict, n_boot: int, seed: int, confidence: float, split: str) -> dict:
    """The calibration block (the module docstring) from per-video scores and truths."""
    scores = np.asarray(video_scores, np.float64)
    truth = np.asarray(anomalous, bool)
    if not (~truth).any():
        raise ValueError(f"{split}: no normal video to fit the threshold on")
    thr = threshold_for(scores[~truth], false_alarm_rate)
    flagged = flags(scores, thr).astype(np.float64)
    draws = bs.resamples(len(scores), n_boot, seed)
    recall = flagged[truth].mean() if truth.any() else None
    return {
        "format": CALIBRATION_FORMAT,
        "split": split,
        "false_alarm_rate": false_alarm_rate,
        "threshold": bs.interval(thr, _threshold_stat(scores, truth, false_alarm_rate), draws, confidence).as_dict(),
        "recall": bs.interval(recall, bs.ratio_stat(flagged * truth, truth.astype(np.float64)), draws,
                              confidence).as_dict(),
        "false_alarm": bs.interval(float(flagged[~truth].mean()), bs.ratio_stat(flagged * ~truth, (~truth) * 1.0),
                                   draws, confidence).as_dict(),
        "normal_videos": int((~truth).sum()),
        "anomalous_videos": int(truth.sum()),
        "confidence": confidence,
        "bootstrap": n_boot,
        "video_score": {"frame": "max of the frame's heatmap at the model's input size",
                        "smoothing_sigma_s": sigma_s, "aggregate": "max over the video"},
        "sampling": sampling,
        "reference": reference_histogram(scores),  # every video of the split
        "reference_normal": reference_histogram(scores[~truth]),  # what drift is measured against
    }


def calibrate(peaks: Sequence[tuple[str, float, list[float]]], labels: dict[str, np.ndarray], params, clip,
              split: str) -> dict:
    """The calibration block of an evaluated split from PeakTee.recorded() of every piece: each
    video's score from its peaks, its truth from the frame labels (any anomalous frame). The
    smoothing is metrics.temporal_sigma frames at the split's frame rate, in seconds so that the
    scorer applies it at its own sampled rate."""
    seen = {name: (fps, p) for name, fps, p in peaks}
    names = [n for n in labels if n in seen]
    fps = float(np.median([seen[n][0] for n in names])) if names else 0.0
    sigma_s = params.metrics.temporal_sigma / fps if fps else 0.0
    scores = [video_score(seen[n][1], seen[n][0], sigma_s) for n in names]
    truth = [bool(np.asarray(labels[n]).any()) for n in names]
    ev = params.evaluate
    stride = ev.heatmap_stride or clip.num_frames
    sampling = {"fps": fps, "clip_frames": int(clip.num_frames), "stride": int(stride)}
    return fit(scores, truth, params.score.false_alarm_rate, sigma_s, sampling, ev.bootstrap, ev.bootstrap_seed,
               ev.confidence, split)
