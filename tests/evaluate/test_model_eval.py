"""Evaluation of a trained model: metrics against independent computations, bootstrap intervals,
the contract's evaluate.json, and `tvau evaluate` on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tvau.evaluate import bootstrap as bs
from tvau.evaluate.frames import VideoScores
from tvau.evaluate.report import METRICS, EvalFileError, block, load_eval
from tvau.evaluate.words import WORD_METRICS
from tvau.metrics.config import MetricsConfig
from tvau.metrics.fields import FIELDS
from tvau.metrics.frame import PixelMetrics
from tvau.metrics.text import corpus_bleu4


def _random_videos(n: int, seed: int) -> list[VideoScores]:
    """Videos whose anomalous frames score higher on average (AUC about 0.8), with pixel histograms."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = np.zeros(40, np.int64)
        if i % 2 == 0:
            y[10:25] = 1
        s = np.clip(0.4 + 0.25 * y + rng.normal(0, 0.2, 40) + rng.normal(0, 0.1), 0, 1)
        px = PixelMetrics(bins=4096)
        for t in range(0, 40, 8):
            mask = np.zeros((8, 8), bool)
            mask[2:4, 2:4] = bool(y[t])
            px.update(np.clip(s[t] * mask + rng.uniform(0, 0.5, (8, 8)), 0, 1), mask)
        tracks = np.array([[1, t, 2, 2, 5, 5] for t in np.flatnonzero(y)], float).reshape(-1, 6)
        dets = np.array([[t, 2, 2, 5, 5, s[t]] for t in range(40)], float)
        out.append(VideoScores(f"v{i}", y, s, tracks, dets, px))
    return out


class EvalCfg:
    bootstrap, confidence, bootstrap_seed = 300, 0.95, 0


def test_block_matches_sklearn_and_intervals_contain_the_point_and_shrink():
    cfg = MetricsConfig(auc_bins=4096)
    small, large = _random_videos(10, 0), _random_videos(160, 0)
    res, _ = block(small, None, cfg, EvalCfg)
    y = np.concatenate([v.labels for v in small])
    s = np.concatenate([v.scores for v in small])
    assert res["micro_auc"].value == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    per_video = [roc_auc_score(np.r_[0, v.labels, 1], np.r_[0.0, v.scores, 1.0]) for v in small]
    assert res["macro_auc"].value == pytest.approx(np.mean(per_video), abs=1e-12)
    for key in ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc"):
        iv = res[key]
        assert iv.low <= iv.value <= iv.high, key
    big, _ = block(large, None, cfg, EvalCfg)
    width = {k: res[k].high - res[k].low for k in ("micro_auc", "macro_auc", "rbdc")}
    assert all(big[k].high - big[k].low < width[k] for k in width)
    assert res["yes_no_accuracy"].value is None  # no dialogue for a heatmap-only scorer


def test_bleu_from_summed_statistics_is_corpus_bleu():
    hyps = ["a person walks from the left to the right", "a blue bicycle moves fast", "nothing"]
    refs = ["a person walks from the left to the middle", "a blue bicycle, riding a bicycle.", "a car"]
    stats = bs.bleu_stats(hyps, refs, "13a")
    assert bs.bleu_from_stats(stats.sum(0), "13a") == pytest.approx(corpus_bleu4(hyps, refs) / 100, abs=1e-12)
    f = bs.bleu_stat([stats[:2], stats[2:]], "13a")
    both, first_twice = f(np.array([[0, 1], [0, 0]]))
    assert both == pytest.approx(corpus_bleu4(hyps, refs) / 100, abs=1e-12)
    assert first_twice == pytest.approx(corpus_bleu4(hyps[:2] * 2, refs[:2] * 2) / 100, abs=1e-12)


def test_run_evaluation_writes_the_contract_and_matches_an_independent_scoring(params, trained, footage, tmp_path):
    from tvau.data import open_dataset
    from tvau.evaluate.frames import score_records, select_split
    from tvau.evaluate.model import ModelScorer
    from tvau.evaluate.run import run_evaluation
    from tvau.model.trained import load_trained

    res = run_evaluation(str(trained), footage, params, "all", tmp_path / "eval", tmp_path / "evaluate.json",
                         holdout=footage, references=None, progress=False)
    data = load_eval(tmp_path / "evaluate.json")
    assert data["split"] == "all" and data["videos"] == 4 and data["region_method"] == params.metrics.regions
    assert set(data["model"]) == set(METRICS) | set(WORD_METRICS) and set(data["holdout"]["baseline"]) == set(METRICS)
    assert set(data["holdout"]["model"]) == set(data["model"])
    assert set(data["model"]["field_accuracy"]) == set(FIELDS)
    assert data["baseline"]["yes_no_accuracy"]["value"] is None and data["majority_yes_no"] == 0.5
    assert set(data["per_kind"]) <= {"bicycle", "vehicle"} and data["per_kind"]
    # no SFT records given: the references come from the set's own annotations, for every anomalous clip
    # whose target the construction keeps
    assert data["model"]["bleu4_target"]["value"] is not None and data["details"]["field_clips"] > 0
    assert data["details"]["field_clips"] == data["details"]["bleu_sentences"]["bleu4_target"]
    # frame scores computed again, independently of run_evaluation, give the same micro-AUC
    records = select_split(open_dataset(footage), "all")
    model = load_trained(trained, params)
    vids = score_records(records, ModelScorer(model, model.clip, dialogue_per_video=0), params.metrics, False)
    y = np.concatenate([v.labels for v in vids])
    s = np.concatenate([v.scores for v in vids])
    assert res["model"]["micro_auc"]["value"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    names = {p.name for p in (tmp_path / "eval").iterdir()}
    assert {"roc.png", "rbdr_tbdr.png", "per_video.csv", "dialogues.jsonl", "index.html"} <= names
    lines = [json.loads(x) for x in (tmp_path / "eval" / "dialogues.jsonl").read_text().splitlines()]
    assert len(lines) == 4 * params.evaluate.dialogue_clips_per_video
    assert all("ref_fields" in x and "motion" in x for x in lines)
    # Yes-rates per kind and on normal videos partition the dialogue clips and count the yes answers.
    from tvau.metrics.text import parse_yes_no

    rows = [r["dialogue"] for r in data["per_kind"].values()] + [data["details"]["normal_dialogue"]]
    assert sum(r["asked"] for r in rows) == len(lines)
    assert sum(r["yes"] for r in rows) == sum(parse_yes_no(x["answer"]) is True for x in lines)
    assert data["details"]["normal_dialogue"]["asked"] == sum(not x["truth"] for x in lines)
    # a broken file is named
    (tmp_path / "bad.json").write_text(json.dumps({**data, "model": {"micro_auc": 3}}))
    with pytest.raises(EvalFileError, match="bad.json: missing key|bad.json: model"):
        load_eval(tmp_path / "bad.json")


def _tvau(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "tvau.cli", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          check=False)


def test_cli_json_prints_only_json(params, trained, footage, tmp_path):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    res = _tvau("evaluate", "--model", str(trained), "--data", str(footage), "--split", "validation",
                "--params", str(tmp_path / "params.yaml"), "--references", str(tmp_path / "none"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert {*METRICS, "intervals", "baseline", "per_kind"} <= set(out)
    assert out["videos"] == 2 and 0 <= out["micro_auc"] <= 1


@pytest.mark.parametrize("bad", ["model", "data"])
def test_cli_bad_paths_give_one_line_and_exit_2(trained, footage, tmp_path, bad):
    model = str(tmp_path / "missing-model") if bad == "model" else str(trained)
    data = str(tmp_path / "missing-data") if bad == "data" else str(footage)
    res = _tvau("evaluate", "--model", model, "--data", data, "--json")
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing-" in lines[0] and "Traceback" not in res.stderr
