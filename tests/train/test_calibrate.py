"""The yes/no threshold fit (tvau.train.calibrate.fit_threshold): hand-worked cases and a brute-force
check against scikit-learn's balanced accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from tvau.train.calibrate import fit_threshold


def test_hand_worked_threshold():
    # margins sorted: -2 (no), -1 (no), 0.5 (yes), 1 (no), 3 (yes). Greedy (threshold 0) says yes to
    # 0.5, 1, 3: recall 1, specificity 2/3, balanced 5/6. Threshold 2 (between 1 and 3): recall 1/2,
    # specificity 1: 3/4. Threshold -0.25 (between -1 and 0.5) is 5/6 like 0, and 0 is nearer 0.
    t, b = fit_threshold(np.array([-2.0, -1.0, 0.5, 1.0, 3.0]), np.array([False, False, True, False, True]))
    assert b == pytest.approx(5 / 6)
    assert t == 0.0  # greedy is already best: kept
    # All margins positive (greedy says "Yes" to everything, balanced accuracy 1/2): the fit moves
    # the threshold between the classes, to the midpoint of 1.5 (no) and 2.5 (yes).
    t, b = fit_threshold(np.array([1.0, 1.5, 2.5, 3.0]), np.array([False, False, True, True]))
    assert (t, b) == (2.0, 1.0)


def test_threshold_is_optimal_against_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random(40) < 0.4
        y[:2] = [True, False]
        m = rng.normal(size=40) + 1.5 * y + rng.normal()  # informative, with a random bias
        t, b = fit_threshold(m, y)
        assert balanced_accuracy_score(y, m > t) == pytest.approx(b)
        grid = np.concatenate([np.sort(m) - 1e-9, np.sort(m) + 1e-9])
        assert b >= max(balanced_accuracy_score(y, m > g) for g in grid) - 1e-12


def test_needs_both_answers_and_equal_shapes():
    with pytest.raises(ValueError, match="both answers"):
        fit_threshold(np.array([0.1, 0.2]), np.array([True, True]))
    with pytest.raises(ValueError, match="shapes"):
        fit_threshold(np.array([0.1, 0.2]), np.array([True]))
