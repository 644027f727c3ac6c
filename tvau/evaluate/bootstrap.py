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

Every statistic is computed for all resamples at once from the (resamples, videos) matrix of how
often each video was drawn: a video drawn k times is k copies of itself, so every count it adds to
a metric is multiplied by k. This is the same statistic as concatenating the drawn videos and
recomputing the metric per resample (tests/evaluate/test_bootstrap.py checks it against exactly
that), without 1000 calls into scikit-learn per metric. Stats return an array with one value per
resample, NaN where the metric is undefined on that resample.
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


Stat = Callable[[np.ndarray], np.ndarray]  # (resamples, videos) draws -> (resamples,) values, NaN = undefined
CHUNK = 128  # resamples per vectorised block: bounds the (resamples, frames or steps) temporaries


def resamples(n_videos: int, n: int, seed: int) -> np.ndarray:
    """(n, n_videos) indexes of videos drawn with replacement (seeded: reproducible files)."""
    return np.random.default_rng(seed).integers(0, n_videos, size=(n, n_videos))


def draw_counts(draws: np.ndarray, n_videos: int) -> np.ndarray:
    """(resamples, n_videos) float64: how many times each video was drawn in each resample."""
    draws = np.atleast_2d(np.asarray(draws, dtype=np.int64))
    n = draws.shape[0]
    flat = (np.arange(n)[:, None] * n_videos + draws).ravel()
    return np.bincount(flat, minlength=n * n_videos).reshape(n, n_videos).astype(np.float64)


def interval(value: float | None, stat: Stat, draws: np.ndarray, confidence: float = 0.95) -> Interval:
    """Percentile interval of stat over the draws (None where the point value is None)."""
    if value is None:
        return Interval(None, None, None, 0)
    vals = np.asarray(stat(draws), dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return Interval(float(value), None, None, 0)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(vals, [a, 1 - a])
    return Interval(float(value), float(lo), float(hi), int(vals.size))


def _chunked(draws: np.ndarray, n_videos: int, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """f(counts) over blocks of CHUNK resamples, concatenated."""
    draws = np.atleast_2d(draws)
    return np.concatenate([f(draw_counts(draws[i:i + CHUNK], n_videos)) for i in range(0, len(draws), CHUNK)]
                          or [np.zeros(0)])


# --- per-metric statistics of the draws ------------------------------------------------------------

def _pair_matrix(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """(videos, videos) M with M[v, u] = sum over score levels of pos[v] * (neg[u] strictly below +
    half neg[u] at the level). AUC = P(pos > neg) + 0.5 P(tie) is bilinear in the videos' counts, so a
    resample drawing video v c[v] times has numerator c M c and denominator (c . n_pos) (c . n_neg)."""
    below = np.cumsum(neg, axis=1) - neg
    return pos @ (below + 0.5 * neg).T


def _auc_from_pairs(m: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> Stat:
    def f(c: np.ndarray) -> np.ndarray:
        p, n = c @ n_pos, c @ n_neg
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = ((c @ m) * c).sum(1) / (p * n)
        return np.where((p > 0) & (n > 0), auc, np.nan)

    return lambda draws: _chunked(draws, len(n_pos), f)


def micro_auc_stat(labels: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> Stat:
    """Frame micro-AUC of each resample: P(score_pos > score_neg) + 0.5 P(tie) over the pooled drawn
    frames (exactly what roc_auc_score computes), from each video's positive and negative frame
    counts per distinct score of the whole set (_pair_matrix)."""
    n_videos = len(labels)
    y = np.concatenate([np.asarray(a, np.int64).ravel() for a in labels]) if n_videos else np.zeros(0, np.int64)
    s = np.concatenate([np.asarray(a, np.float64).ravel() for a in scores]) if n_videos else np.zeros(0)
    vid = np.concatenate([np.full(np.asarray(a).size, i) for i, a in enumerate(labels)]) if n_videos else y
    levels, level = np.unique(s, return_inverse=True)
    pos = np.zeros((n_videos, len(levels)))
    neg = np.zeros((n_videos, len(levels)))
    np.add.at(pos, (vid[y == 1], level[y == 1]), 1)
    np.add.at(neg, (vid[y != 1], level[y != 1]), 1)
    return _auc_from_pairs(_pair_matrix(pos, neg), pos.sum(1), neg.sum(1))


def mean_stat(values: np.ndarray) -> Stat:
    """Mean of a per-video value over the drawn videos."""
    values = np.asarray(values, dtype=np.float64)
    return lambda draws: _chunked(draws, len(values), lambda c: (c @ values) / c.sum(1))


def ratio_stat(num: np.ndarray, den: np.ndarray) -> Stat:
    """sum(num) / sum(den) over the drawn videos (undefined when the denominator is 0)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)

    def f(c: np.ndarray) -> np.ndarray:
        d = c @ den
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, (c @ num) / d, np.nan)

    return lambda draws: _chunked(draws, len(num), f)


def coarse_hist(h: np.ndarray, bins: int) -> np.ndarray:
    """Sum groups of adjacent bins: (…, B) -> (…, bins); B must be a multiple of bins."""
    h = np.asarray(h)
    if h.shape[-1] % bins:
        bins = h.shape[-1]
    return h.reshape(*h.shape[:-1], bins, h.shape[-1] // bins).sum(-1)


def pixel_auroc_stat(pos: np.ndarray, neg: np.ndarray) -> Stat:
    """pos, neg: (videos, bins) histograms; the AUROC of the drawn videos' summed histograms
    (auc_from_histograms), through _pair_matrix."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    return _auc_from_pairs(_pair_matrix(pos, neg), pos.sum(1), neg.sum(1))


def region_stat(tracks: Sequence[np.ndarray], dets: Sequence[np.ndarray], frames: Sequence[int], which: str,
                alpha: float, beta: float) -> Stat:
    """RBDC or TBDC of each resample, each drawn copy of a video its own video. A copy's detections and
    regions behave as the original's (matching never crosses videos), so the sweep over all videos
    is done once (tvau.metrics.regions.region_sweep) and a resample's curves are the per-video counts
    per score step, multiplied by the draw counts; steps whose scores were not drawn add a repeated
    curve point, which adds no area."""
    from tvau.metrics.regions import curve_areas, region_sweep

    tracks = [np.asarray(t, np.float64).reshape(-1, 6) for t in tracks]
    dets = [np.asarray(d, np.float64).reshape(-1, 6) for d in dets]
    n_videos = len(tracks)
    g = np.concatenate(tracks) if tracks else np.zeros((0, 6))
    d = np.concatenate(dets) if dets else np.zeros((0, 6))
    gv = np.concatenate([np.full(len(t), k) for k, t in enumerate(tracks)]) if tracks else np.zeros(0, np.int64)
    dv = np.concatenate([np.full(len(x), k) for k, x in enumerate(dets)]) if dets else np.zeros(0, np.int64)
    frames = np.asarray(frames, np.float64)
    if not len(g):  # no ground-truth region in any video: undefined on every resample
        return lambda draws: np.full(len(np.atleast_2d(draws)), np.nan)
    sw = region_sweep(gv, g[:, 0], g[:, 1], g[:, 2:6], dv, d[:, 0], d[:, 1:5], d[:, 5], alpha=alpha, beta=beta)
    G = sw.steps
    # (videos, steps) counts: false positives, regions first detected, tracks reaching beta, per step.
    fp = np.zeros((n_videos, G + 1))
    np.add.at(fp, (dv[~sw.matched].astype(np.int64), sw.det_step[~sw.matched]), 1)
    rg = np.zeros((n_videos, G + 1))
    np.add.at(rg, (gv.astype(np.int64), sw.region_step), 1)
    tr = np.zeros((n_videos, G + 1))
    np.add.at(tr, (sw.track_video, sw.track_step), 1)
    n_regions, n_tracks = rg.sum(1), tr.sum(1)
    rate = rg if which == "rbdc" else tr
    total = n_regions if which == "rbdc" else n_tracks
    # Between two steps where the rate rises the curve is flat, and a flat run's inner points add no
    # area (nor move the flat extension at FPR 1): keep each rising step, the step before it and the
    # last step. The counts are cumulated per video first (cumsum commutes with the draw weights).
    rise = np.flatnonzero(rate[:, :G].any(0))
    keep = np.unique(np.concatenate([rise, rise - 1, [G - 1]])) if G else np.zeros(0, np.int64)
    keep = keep[keep >= 0]
    cum_fp = np.cumsum(fp[:, :G], axis=1)[:, keep]
    cum_rate = np.cumsum(rate[:, :G], axis=1)[:, keep]

    def f(c: np.ndarray) -> np.ndarray:
        fpr = (c @ cum_fp) / (c @ frames)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            y = (c @ cum_rate) / (c @ total)[:, None]
        zero = np.zeros((len(c), 1))
        area = curve_areas(np.hstack([zero, fpr]), np.hstack([zero, y]))
        return np.where(c @ n_regions > 0, area, np.nan)

    return lambda draws: _chunked(draws, n_videos, f)


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


def bleu_stat(per_video: Sequence[np.ndarray], tokenize: str) -> Stat:
    """per_video[i]: (sentences_i, 10) statistics; a video without sentences adds nothing. The drawn
    statistics are summed for all resamples at once; sacrebleu turns each sum into a score."""
    sums = np.stack([s.sum(0) if len(s) else np.zeros(10, np.int64) for s in per_video]).astype(np.float64)
    counts = np.array([len(s) for s in per_video], np.float64)

    def f(c: np.ndarray) -> np.ndarray:
        tot, n = np.rint(c @ sums).astype(np.int64), c @ counts
        return np.array([bleu_from_stats(t, tokenize) if k > 0 else np.nan for t, k in zip(tot, n)])

    return lambda draws: _chunked(draws, len(per_video), f)
