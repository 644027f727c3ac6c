"""The vectorised bootstrap equals the literal one: concatenate the drawn videos (a video drawn twice is
two videos) and recompute each metric with the public metric functions, resample by resample."""

from __future__ import annotations

import numpy as np
import pytest

from tvau.evaluate import bootstrap as bs
from tvau.metrics.frame import auc_from_histograms, micro_auc
from tvau.metrics.regions import rbdc_tbdc_arrays
from tvau.metrics.text import corpus_bleu4


def _videos(n: int, seed: int):
    """Frame labels/scores with ties (scores rounded to 0.05) and some single-class videos; regions and
    detections with tied scores, some videos without ground truth or without detections."""
    rng = np.random.default_rng(seed)
    labels, scores, tracks, dets, frames = [], [], [], [], []
    for i in range(n):
        f = int(rng.integers(8, 20))
        y = np.zeros(f, np.int64)
        if i % 3 == 0:
            y[f // 3: f // 3 + 5] = 1
        s = np.round(np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, f), 0, 1) * 20) / 20
        labels.append(y)
        scores.append(s)
        frames.append(f)
        t = [[k, fr, 10 + 3 * k, 10, 30 + 3 * k, 30] for k in (1, 2) for fr in np.flatnonzero(y)] if y.any() else []
        tracks.append(np.asarray(t, np.float64).reshape(-1, 6))
        nd = int(rng.integers(0, 3 * f)) if i % 5 else 0
        fr = rng.integers(0, f, nd)
        x = rng.integers(0, 40, nd)
        d = np.column_stack([fr, x, x // 2, x + rng.integers(5, 30, nd), x // 2 + 20,
                             np.round(rng.uniform(0, 1, nd) * 10) / 10])
        dets.append(d.reshape(-1, 6))
    return labels, scores, tracks, dets, frames


def _literal(stat_of_idx, draws):
    out = []
    for idx in draws:
        try:
            v = stat_of_idx(idx)
        except ValueError:
            v = None
        out.append(np.nan if v is None else v)
    return np.asarray(out, np.float64)


def test_vectorised_statistics_equal_the_per_resample_recomputation():
    labels, scores, tracks, dets, frames = _videos(9, 0)
    draws = bs.resamples(len(labels), 200, 3)
    # a resample of only normal videos: micro-AUC and RBDC undefined there
    draws[0] = [1, 2, 4, 5, 7, 8, 1, 2, 4]

    got = bs.micro_auc_stat(labels, scores)(draws)
    want = _literal(lambda idx: micro_auc([labels[i] for i in idx], [scores[i] for i in idx]), draws)
    assert np.isnan(got[0]) and np.isnan(want[0])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)

    per_video = np.array([float(np.mean(s)) for s in scores])
    np.testing.assert_allclose(bs.mean_stat(per_video)(draws), [per_video[i].mean() for i in draws], atol=1e-12)

    num, den = np.array([1, 0, 2, 1, 0, 0, 3, 1, 0]), np.array([1, 0, 2, 2, 0, 1, 3, 1, 0])
    want = _literal(lambda idx: num[idx].sum() / den[idx].sum() if den[idx].sum() else None, draws)
    np.testing.assert_allclose(bs.ratio_stat(num, den)(draws), want, atol=1e-12)

    rng = np.random.default_rng(1)
    pos = rng.integers(0, 5, (9, 64)) * (np.arange(9) % 3 == 0)[:, None]
    neg = rng.integers(0, 50, (9, 64))
    want = _literal(lambda idx: auc_from_histograms(pos[idx].sum(0), neg[idx].sum(0)), draws)
    np.testing.assert_allclose(bs.pixel_auroc_stat(pos, neg)(draws), want, atol=1e-12)

    def regions(idx, which):
        g = np.concatenate([tracks[i] for i in idx])
        d = np.concatenate([dets[i] for i in idx])
        gv = np.concatenate([np.full(len(tracks[i]), k) for k, i in enumerate(idx)])
        dv = np.concatenate([np.full(len(dets[i]), k) for k, i in enumerate(idx)])
        c = rbdc_tbdc_arrays(gv, g[:, 0], g[:, 1], g[:, 2:6], dv, d[:, 0], d[:, 1:5], d[:, 5],
                             num_frames=int(sum(frames[i] for i in idx)), alpha=0.1, beta=0.3)
        return c.rbdc if which == "rbdc" else c.tbdc

    for which in ("rbdc", "tbdc"):
        got = bs.region_stat(tracks, dets, frames, which, 0.1, 0.3)(draws)
        want = _literal(lambda idx, w=which: regions(idx, w), draws)
        assert np.isnan(want[0]) and np.isfinite(want).sum() > 150 and np.nanstd(want) > 0.01
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_intervals_leave_out_undefined_resamples_and_bleu_sums_statistics():
    labels = [np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])]
    scores = [np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.5, 0.5, 0.5, 0.5])]
    draws = np.array([[0, 1], [1, 1], [0, 0], [1, 0]])
    iv = bs.interval(1.0, bs.micro_auc_stat(labels, scores), draws, 0.95)
    assert iv.n == 3  # [1, 1]: one class only
    assert bs.interval(None, bs.micro_auc_stat(labels, scores), draws).as_dict() == {"value": None, "low": None,
                                                                                      "high": None}
    hyps = ["a person walks from the left to the right", "a blue bicycle moves fast", "nothing"]
    refs = ["a person walks from the left to the middle", "a blue bicycle, riding a bicycle.", "a car"]
    stats = bs.bleu_stats(hyps, refs, "13a")
    f = bs.bleu_stat([stats[:2], stats[2:], stats[:0]], "13a")
    got = f(np.array([[0, 1, 2], [0, 0, 2], [2, 2, 2]]))
    assert got[0] == pytest.approx(corpus_bleu4(hyps, refs) / 100, abs=1e-12)
    assert got[1] == pytest.approx(corpus_bleu4(hyps[:2] * 2, refs[:2] * 2) / 100, abs=1e-12)
    assert np.isnan(got[2])  # no sentence drawn
