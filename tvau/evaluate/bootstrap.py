"""Percentile bootstrap intervals over videos for every metric.

Videos, not frames or pixels, are the unit that was sampled (frames of one video are strongly
correlated), so each resample draws videos with replacement and recomputes the metric from that
draw's per-video statistics, which are computed once:
- micro-AUC: frame labels and scores concatenated (scikit-learn's roc_auc_score, as the point value);
- macro-AUC: the mean of the per-video padded AUCs;
- pixel AUROC: the per-video score histograms summed (coarsened to `pixel_bins` bins for speed: the
  interval's ends move by at most 1/pixel_bins; the point value keeps the full histogram);
- RBDC/TBDC: the swept curves over the drawn videos, a duplicated video counting as a new one;
- yes/no accuracy: correct and asked counts summed; BLEU-4: sacrebleu's per-sentence n-gram
  statistics summed (exactly corpus BLEU of the drawn sentences).
A resample where a metric is undefined (e.g. no anomalous frame drawn) is left out of that metric's
interval; the number used is kept in `n`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None
    n: int = 0  # resamples where the metric was defined

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}


def resamples(n_videos: int, n: int, seed: int) -> np.ndarray:
    """(n, n_videos) indexes of videos drawn with replacement (seeded: reproducible files)."""
    return np.random.default_rng(seed).integers(0, n_videos, size=(n, n_videos))


def interval(value: float | None, stat: Callable[[np.ndarray], float | None], draws: np.ndarray,
             confidence: float = 0.95) -> Interval:
    """Percentile interval of stat(indexes) over the draws (None where the point value is None)."""
    if value is None:
        return Interval(None, None, None, 0)
    vals = []
    for idx in draws:
        try:
            v = stat(idx)
        except ValueError:
            v = None
        if v is not None and np.isfinite(v):
            vals.append(v)
    if not vals:
        return Interval(float(value), None, None, 0)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(np.asarray(vals), [a, 1 - a])
    return Interval(float(value), float(lo), float(hi), len(vals))


# --- per-metric statistics of a draw -------------------------------------------------------------

def micro_auc_stat(labels: Sequence[np.ndarray], scores: Sequence[np.ndarray]):
    from tvau.metrics.frame import micro_auc

    return lambda idx: micro_auc([labels[i] for i in idx], [scores[i] for i in idx])


def mean_stat(values: np.ndarray):
    values = np.asarray(values, dtype=np.float64)
    return lambda idx: float(values[idx].mean())


def ratio_stat(num: np.ndarray, den: np.ndarray):
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)

    def f(idx):
        d = den[idx].sum()
        return float(num[idx].sum() / d) if d else None

    return f


def coarse_hist(h: np.ndarray, bins: int) -> np.ndarray:
    """Sum groups of adjacent bins: (…, B) -> (…, bins); B must be a multiple of bins."""
    h = np.asarray(h)
    if h.shape[-1] % bins:
        bins = h.shape[-1]
    return h.reshape(*h.shape[:-1], bins, h.shape[-1] // bins).sum(-1)


def pixel_auroc_stat(pos: np.ndarray, neg: np.ndarray):
    """pos, neg: (videos, bins) histograms."""
    from tvau.metrics.frame import auc_from_histograms

    return lambda idx: auc_from_histograms(pos[idx].sum(0), neg[idx].sum(0))


def region_stat(tracks: Sequence[np.ndarray], dets: Sequence[np.ndarray], frames: Sequence[int], which: str,
                alpha: float, beta: float):
    """RBDC or TBDC of a draw; each drawn position is its own video id."""
    from tvau.metrics.regions import rbdc_tbdc_arrays

    tracks = [np.asarray(t, np.float64).reshape(-1, 6) for t in tracks]
    dets = [np.asarray(d, np.float64).reshape(-1, 6) for d in dets]

    def f(idx):
        g = np.concatenate([tracks[i] for i in idx])
        d = np.concatenate([dets[i] for i in idx])
        gv = np.concatenate([np.full(len(tracks[i]), k) for k, i in enumerate(idx)])
        dv = np.concatenate([np.full(len(dets[i]), k) for k, i in enumerate(idx)])
        c = rbdc_tbdc_arrays(gv, g[:, 0], g[:, 1], g[:, 2:6], dv, d[:, 0], d[:, 1:5], d[:, 5],
                             num_frames=int(sum(frames[i] for i in idx)), alpha=alpha, beta=beta)
        return c.rbdc if which == "rbdc" else c.tbdc

    return f


def bleu_stats(hyps: Sequence[str], refs: Sequence[str], tokenize: str) -> np.ndarray:
    """sacrebleu's per-sentence statistics (sys_len, ref_len, matches 1-4, totals 1-4)."""
    from sacrebleu.metrics import BLEU

    if not hyps:
        return np.zeros((0, 10), np.int64)
    return np.asarray(BLEU(tokenize=tokenize)._extract_corpus_statistics(list(hyps), [list(refs)]), np.int64)


def bleu_from_stats(stats: np.ndarray, tokenize: str) -> float:
    """Corpus BLEU-4 as a fraction in [0, 1] from summed per-sentence statistics."""
    from sacrebleu.metrics import BLEU

    return float(BLEU(tokenize=tokenize)._compute_score_from_stats(list(map(int, stats))).score) / 100.0


def bleu_stat(per_video: Sequence[np.ndarray], tokenize: str):
    """per_video[i]: (sentences_i, 10) statistics; a video without sentences adds nothing."""
    sums = np.stack([s.sum(0) if len(s) else np.zeros(10, np.int64) for s in per_video])
    counts = np.array([len(s) for s in per_video])

    def f(idx):
        if counts[idx].sum() == 0:
            return None
        return bleu_from_stats(sums[idx].sum(0), tokenize)

    return f
