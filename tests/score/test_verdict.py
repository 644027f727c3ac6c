"""The calibrated verdict: one per-video score shared by `tvau evaluate` and the scorer, the threshold
fitted for a false-alarm rate with its bootstrap interval, anomalous spans, drift, and the scoring
questions being those the model was trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tvau.evaluate.calibration import fit, threshold_for
from tvau.score.verdict import (
    Calibration,
    CalibrationError,
    monitor,
    psi,
    read_calibration,
    reference_histogram,
    spans,
    video_score,
)


def _fit(normal, anomalous, rate=0.05):
    scores = list(normal) + list(anomalous)
    truth = [False] * len(normal) + [True] * len(anomalous)
    return fit(scores, truth, rate, 4 / 24, {"fps": 24.0, "clip_frames": 24, "stride": 24}, 300, 0, 0.95, "validation")


def test_threshold_flags_at_most_the_target_share_of_normal_videos():
    rng = np.random.default_rng(0)
    normal, anomalous = rng.uniform(0, 0.8, 100), rng.uniform(0.5, 1.0, 60)
    c = _fit(normal, anomalous)
    t = c["threshold"]["value"]
    assert (normal > t).sum() == 5 and (normal >= t).sum() == 6  # floor(0.05 x 100) strictly above
    assert c["false_alarm"]["value"] == pytest.approx(0.05) and c["recall"]["value"] == pytest.approx(
        (anomalous > t).mean())
    for k in ("threshold", "recall", "false_alarm"):
        assert c[k]["low"] <= c[k]["value"] <= c[k]["high"] and c[k]["low"] < c[k]["high"]
    assert (c["normal_videos"], c["anomalous_videos"]) == (100, 60)
    assert threshold_for([0.3, 0.1, 0.2], 0.05) == 0.3  # too few normals for one false alarm: their maximum
    with pytest.raises(ValueError, match="no normal video"):
        _fit([], [0.9])


def test_spans_merge_short_gaps_drop_short_runs_and_keep_the_peak():
    s = np.zeros(100)
    s[10:30] = 0.8  # a long run ...
    s[32:40] = 0.8  # ... and one after a 2-frame gap: merged
    s[60:62] = 0.7  # too short: dropped
    s[80:83] = 0.95  # too short, but it holds the video's peak: kept
    src = np.arange(100) * 2  # every other source frame was sampled
    got = spans(s, 0.5, src, 24.0, min_frames=6, gap_frames=3)
    assert [(g["start_frame"], g["end_frame"]) for g in got] == [(20, 78), (160, 164)]
    assert got[0]["sampled_frames"] == 30 and got[1]["peak_score"] == 0.95
    assert got[0]["start_s"] == pytest.approx(20 / 24, abs=1e-3) and got[1]["end_s"] == pytest.approx(164 / 24, abs=1e-3)
    assert spans(s, 0.99, src, 24.0, 6, 3) == []
    assert [g["start_frame"] for g in spans(s, 0.5, src, 24.0, 6, 1)][:2] == [20, 64]  # a gap of 2 is not < 1


def test_video_score_is_the_max_of_the_smoothed_frame_scores():
    flicker = np.zeros(48)
    flicker[20] = 1.0
    assert video_score(flicker, 24.0, 0.0) == 1.0
    assert video_score(flicker, 24.0, 4 / 24) < 0.15  # one flickering frame is not an event
    steady = np.zeros(48)
    steady[10:40] = 0.9
    assert video_score(steady, 24.0, 4 / 24) == pytest.approx(0.9, abs=1e-3)


def test_calibration_file_is_required_and_checked(tmp_path):
    with pytest.raises(CalibrationError, match=r"no calibration.json; .*--calibration-out") as e:
        read_calibration(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "calibration.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CalibrationError, match="not a tvau-calibration/1 file"):
        read_calibration(tmp_path)
    (tmp_path / "calibration.json").write_text(json.dumps(_fit([0.1, 0.2, 0.3] * 10, [0.9] * 10)))
    cal = read_calibration(tmp_path)
    assert cal.threshold == 0.3 and cal.sigma_s == pytest.approx(4 / 24) and len(cal.digest) == 64


def test_psi_and_drift():
    rng = np.random.default_rng(1)
    ref = reference_histogram(rng.uniform(0, 1, 150))
    assert psi(ref, rng.uniform(0, 1, 200)) < 0.1
    assert psi(ref, rng.uniform(0.8, 1, 200)) > 1.0
    cal = Calibration.from_dict(_fit(rng.uniform(0, 0.8, 100), rng.uniform(0.5, 1, 50)), "d" * 64)
    calm = monitor(cal, list(rng.uniform(0, 0.8, 40)), 2, 20, 0.25, 0.01)
    assert calm["judged"] and not calm["drift"] and calm["expected_flag_rate"] == pytest.approx(0.05)
    hot = monitor(cal, list(rng.uniform(0.7, 1, 40)), 30, 20, 0.25, 0.01)
    assert hot["drift"] and len(hot["reasons"]) == 2  # too many flags, and the scores moved
    few = monitor(cal, [0.95, 0.97], 2, 20, 0.25, 0.01)
    assert not few["judged"] and not few["drift"] and "too few" in few["note"]


def test_scoring_questions_are_the_trained_dialogue():
    """Every question asked at night is asked, in the same order, by the phase-B dialogues the
    model was trained on (tvau/construct/dialogue.py)."""
    from tvau.construct.dialogue import phase_b_anomalous
    from tvau.score.explain import SCORING_QUESTIONS

    target = {"described_category": "person", "described_colors": {"top": "red"}, "described_clothing": "jacket",
              "described_action": "running", "regions": ["left", "middle"], "motion_state": "fast"}
    msgs, _ = phase_b_anomalous(target, [])
    trained = [m["content"] for m in msgs if m["role"] == "user"]
    assert list(SCORING_QUESTIONS) == trained[: len(SCORING_QUESTIONS)]


def test_scorer_and_evaluation_compute_the_same_video_score(s3_vars, night, model_dir, loader):
    """The scorer's per-video score of a video equals the one the calibration is fitted on (the
    evaluation's heatmaps through PeakTee): one function, the same sampling."""
    from tvau.data import open_dataset
    from tvau.evaluate.calibration import PeakTee
    from tvau.evaluate.model import ModelScorer
    from tvau.score.config import ScoreConfig
    from tvau.score.core import score_prefix
    from tvau.score.model import get_model
    from tvau.score.s3io import make_client

    record = next(r for r in open_dataset(night[0].parent.parent, "ubnormal") if r.name == night[0].stem)
    loaded = get_model(str(model_dir), None, loader)
    tee = PeakTee(ModelScorer(loaded.model, loaded.model.clip, dialogue_per_video=0, batch=3))
    for _ in tee(record):
        pass
    cal = loaded.require_calibration()
    expected = video_score(tee.peaks[record.name], tee.fps[record.name], cal.sigma_s)
    cfg = ScoreConfig(escalate_level=1.0, backoff_s=0.01)
    client = make_client(cfg)
    client.put_object(Bucket="footage", Key=f"same/{night[0].name}", Body=night[0].read_bytes())
    (res,) = score_prefix("s3://footage/same/", "s3://results/same", str(model_dir), cfg, loader=loader,
                          client=client)
    assert res.video_score == pytest.approx(expected, abs=1e-5)
    assert len(tee.peaks[record.name]) == record.num_frames


def test_evaluate_writes_the_calibration_the_scorer_reads(s3_vars, night, model_dir, loader, tmp_path):
    """`tvau evaluate`'s calibration block (evaluate.json and --calibration-out) is fitted on the
    same per-video score the scorer computes: with one normal video, the threshold is its score."""
    import shutil

    from tvau.config import load_params
    from tvau.evaluate.run import run_evaluation
    from tvau.score.config import ScoreConfig
    from tvau.score.core import score_prefix
    from tvau.score.s3io import make_client

    params = load_params("params.yaml")
    params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={
        "workers": 0, "bootstrap": 50, "dialogue_clips_per_video": 0, "holdout_videos": 0})})
    model = tmp_path / "tvau"
    shutil.copytree(model_dir, model)
    (model / "calibration.json").unlink()
    res = run_evaluation(str(model), night[0].parent.parent, params, "all", None, tmp_path / "evaluate.json",
                         references=None, progress=False, calibration_out=model / "calibration.json")
    block = json.loads((tmp_path / "evaluate.json").read_text())["calibration"]
    assert block == res["calibration"] == json.loads((model / "calibration.json").read_text())
    assert (block["normal_videos"], block["anomalous_videos"]) == (1, 2)
    normal = next(v for v in night if v.name.startswith("normal"))
    cfg = ScoreConfig(escalate_level=1.0, backoff_s=0.01)
    client = make_client(cfg)
    client.put_object(Bucket="footage", Key=f"cal/{normal.name}", Body=normal.read_bytes())
    (got,) = score_prefix("s3://footage/cal/", "s3://results/cal", str(model), cfg, loader=loader, client=client)
    assert got.video_score == pytest.approx(block["threshold"]["value"], abs=1e-5)


def test_a_flagged_video_without_a_sentence_says_why():
    from tvau.score.summary import _unexplained

    assert "not asked" in _unexplained({"answers": "[]"})
    turns = [{"question": "Is there any anomaly in the video?", "answer": "Yes."},
             {"question": "Describe the anomaly target's features.", "answer": "Yes."},
             {"question": "From where to where does it move?", "answer": "It walks in a bag."}]
    said = _unexplained({"answers": json.dumps(turns)})
    assert "nothing readable" in said and "It walks in a bag." in said and "not asked" not in said
