"""The cascade measurement (tvau/score/cascade.py): figures against counts done by hand, recall left
undefined (never invented) when the dialogue never says "yes", and the clip table of a real
labelled synthetic set through the batched model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tvau.score.cascade import bound_level, cascade_figures, clip_table, is_yes
from tvau.score.config import ScoreConfig


def _row(video, anomalous, heat, yes, vision=1.0, lm=3.0):
    return {"video": video, "clip": 0, "anomalous": anomalous, "heat_max": heat, "answer": "yes" if yes else "no",
            "answer_yes": yes, "vision_s": vision, "lm_s": lm}


ROWS = [
    _row("a", True, 0.9, True), _row("a", True, 0.4, True), _row("a", False, 0.2, False),
    _row("b", True, 0.8, False), _row("b", False, 0.7, True, lm=5.0), _row("b", False, 0.1, False),
    _row("c", False, 0.3, False), _row("c", True, 0.95, True),
]


def test_figures_against_hand_counts():
    f = cascade_figures(ROWS, 0.5, n_boot=200)
    # escalated (heat >= 0.5): a0, b0, b1, c1 -> 4 of 8; anomalous: a0, a1, b0, c1 -> 4, of which 3 escalated
    assert (f["clips"], f["anomalous_clips"], f["escalated_clips"], f["videos"]) == (8, 4, 4, 3)
    assert f["escalation_rate"]["value"] == pytest.approx(4 / 8)
    assert f["heatmap_recall"]["value"] == pytest.approx(3 / 4)
    assert f["escalated_anomalous_share"]["value"] == pytest.approx(3 / 4)
    # yes among anomalous: a0, a1, c1 (3 of 4); among normal: b1 (1 of 4)
    assert f["yes_rate_anomalous"]["value"] == pytest.approx(3 / 4)
    assert f["yes_rate_normal"]["value"] == pytest.approx(1 / 4)
    assert f["recall_measurable"]
    assert f["recall_everywhere"]["value"] == pytest.approx(3 / 4)
    assert f["recall_cascade"]["value"] == pytest.approx(2 / 4)  # a1 (heat 0.4) is never asked
    assert f["recall_drop_points"]["value"] == pytest.approx(25.0)
    # the bound (anomalous clips not escalated: a1) holds, and is reached here since a1 says yes
    assert f["recall_drop_bound_points"]["value"] == pytest.approx(25.0)
    lm_all, lm_esc, vision = 7 * 3.0 + 5.0, 3 * 3.0 + 5.0, 8 * 1.0
    assert f["lm_compute_saved"]["value"] == pytest.approx(1 - lm_esc / lm_all)
    assert f["compute_saved"]["value"] == pytest.approx(1 - (vision + lm_esc) / (vision + lm_all))
    for key in ("escalation_rate", "heatmap_recall", "compute_saved", "recall_drop_points"):
        lo, v, hi = f[key]["low"], f[key]["value"], f[key]["high"]
        assert lo is not None and lo <= v + 1e-9 and v <= hi + 1e-9, key
    assert f["heatmap_recall"]["low"] < f["heatmap_recall"]["high"]  # videos differ: the interval is not a point


def test_bound_level_keeps_the_drop_bound():
    # anomalous maxima 0.95, 0.9, 0.8, 0.4: every one must stay escalated for a 2-point bound
    assert bound_level(ROWS, 2.0) == pytest.approx(0.4)
    assert bound_level(ROWS, 25.0) == pytest.approx(0.8)  # one of four may be lost
    for drop in (2.0, 25.0):
        f = cascade_figures(ROWS, bound_level(ROWS, drop), n_boot=10)
        assert f["recall_drop_bound_points"]["value"] <= drop
        assert f["recall_drop_points"]["value"] <= f["recall_drop_bound_points"]["value"]
    assert bound_level([r for r in ROWS if not r["anomalous"]]) is None


def test_recall_is_undefined_when_the_dialogue_never_says_yes():
    silent = [{**r, "answer_yes": False, "answer": "no"} for r in ROWS]
    f = cascade_figures(silent, 0.5, n_boot=50)
    assert not f["recall_measurable"]
    for key in ("recall_everywhere", "recall_cascade", "recall_drop_points"):
        assert f[key] == {"value": None, "low": None, "high": None}
    assert f["yes_rate_anomalous"]["value"] == 0.0 and f["heatmap_recall"]["value"] == pytest.approx(3 / 4)
    assert is_yes(' "Yes, a person falls') and is_yes("yes") and not is_yes("no") and not is_yes("yesterday")


def test_clip_table_of_a_labelled_set_through_the_batched_model(night, model_dir, loader):
    from tvau.data import open_dataset
    from tvau.score.model import ClipModel, get_model

    root = night[0].parent.parent
    cfg = ScoreConfig(clip_frames=8, stride=8, clips_per_call=2, max_new_tokens=2, sample_fps=12.0)
    rows = clip_table(str(model_dir), root, "all", cfg, loader=loader)
    records = {r.name: r for r in open_dataset(root, "ubnormal", load_tracks=False)}
    assert sorted({r["video"] for r in rows}) == sorted(records) and len(rows) == 3 * len(records)
    # anomalous = any labelled frame among the clip's sampled frames (every other frame: 24 -> 12 fps)
    for r in rows:
        labels = np.asarray(records[r["video"]].frame_labels, bool)
        assert r["anomalous"] == bool(labels[16 * r["clip"]: 16 * r["clip"] + 16: 2].any())
        assert r["vision_s"] > 0 and r["lm_s"] > 0 and isinstance(r["answer"], str)
    assert any(r["anomalous"] for r in rows) and not all(r["anomalous"] for r in rows)
    # the heatmap maxima are those of one clip at a time
    from tvau.score.media import iter_sampled_clips

    loaded = get_model(str(model_dir), None, loader)
    name = min(records)
    clips = [c.frames for c in iter_sampled_clips(records[name].source, cfg, loaded.input_size, records[name].fps)]
    _, heats = ClipModel(loaded, 1).heatmaps(clips)
    got = [r["heat_max"] for r in rows if r["video"] == name]
    assert all(math.isclose(a, float(h.max()), abs_tol=1e-5) for a, h in zip(got, heats, strict=True))
    f = cascade_figures(rows, 0.5, n_boot=20)
    assert f["clips"] == len(rows)
