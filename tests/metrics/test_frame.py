"""Frame- and pixel-level metrics against scikit-learn and hand-worked values."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tvau.metrics.frame import PixelMetrics, auc_from_histograms, macro_auc, micro_auc, miou, pixel_auroc


def test_micro_auc_is_sklearn_on_pooled_frames():
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 2, n) for n in (30, 50, 7)]
    scores = [rng.random(n) for n in (30, 50, 7)]
    expected = roc_auc_score(np.concatenate(labels), np.concatenate(scores))
    assert micro_auc(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_micro_auc_single_class_is_an_error():
    with pytest.raises(ValueError, match="same label"):
        micro_auc([np.zeros(5)], [np.random.rand(5)])


def test_macro_auc_hand_worked_padding():
    # A: padded labels 0 0 0 1 1 1, scores 0 .1 .4 .35 .8 1 -> 8 of 9 pairs ordered -> 8/9.
    # B (all normal): the padded 1 (score 1) beats all four negatives -> 1.
    # C (all anomalous): the padded 0 (score 0) is below all three positives -> 1.
    # D (normal, one score 1.0): positive 1.0 vs negatives 0, 1.0 (tie: 1/2), .2 -> 2.5/3.
    labels = [np.array([0, 0, 1, 1]), np.array([0, 0, 0]), np.array([1, 1]), np.array([0, 0])]
    scores = [
        np.array([0.1, 0.4, 0.35, 0.8]),
        np.array([0.2, 0.3, 0.9]),
        np.array([0.5, 0.5]),
        np.array([1.0, 0.2]),
    ]
    assert macro_auc(labels, scores) == pytest.approx((8 / 9 + 1 + 1 + 2.5 / 3) / 4, abs=1e-12)


def test_macro_auc_rejects_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        macro_auc([np.array([0, 1])], [np.array([0.2, 1.5])])


def test_histogram_auc_exact_on_binned_scores_and_close_otherwise():
    rng = np.random.default_rng(1)
    bins = 256
    y = rng.random((6, 20, 20)) < 0.2
    # Quantised to bin centres: ties inside a bin are real ties, so the result is exact.
    k = np.minimum(rng.integers(0, bins, y.shape) + 40 * y, bins - 1)
    q = (k + 0.5) / bins
    assert pixel_auroc(q, y, bins=bins) == pytest.approx(roc_auc_score(y.ravel(), q.ravel()), abs=1e-12)
    # Continuous scores: within 1/bins.
    c = np.clip(rng.random(y.shape) + 0.3 * y, 0, 1)
    assert abs(pixel_auroc(c, y, bins=4096) - roc_auc_score(y.ravel(), c.ravel())) < 1 / 4096


def test_auc_from_histograms_single_class_is_an_error():
    with pytest.raises(ValueError, match="one class"):
        auc_from_histograms(np.zeros(4), np.ones(4))


def test_miou_hand_worked():
    # frame 1: pred TT/FF vs mask TF/FF -> tp 1, fp 1, tn 2; frame 2: pred none, mask one -> fn 1, tn 3.
    heat = np.array([[[0.9, 0.6], [0.1, 0.0]], [[0.2, 0.2], [0.2, 0.4]]])
    mask = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 1]]], dtype=bool)
    assert miou(heat, mask, threshold=0.5) == pytest.approx((1 / 3 + 5 / 7) / 2)
    acc = PixelMetrics(bins=256)
    for h, m in zip(heat, mask):
        acc.update(h, m)
    assert acc.iou_anomalous() == pytest.approx(1 / 3)


def test_pixel_metrics_rejects_out_of_range_heatmap():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PixelMetrics(bins=256).update(np.full((2, 2), 1.5), np.zeros((2, 2), bool))
