"""The gates are a pure function: evaluate.json + policy + champion metrics -> report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tvau.registry.gates import EvalReportError, check_gates, read_eval
from tvau.registry.policy import PolicyError, load_policy

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("registry_conftest", Path(__file__).with_name("conftest.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
eval_report = _helpers.eval_report


@pytest.fixture(scope="module")
def policy():
    return load_policy(REPO / "registry" / "policy.yaml")


def test_project_policy_has_the_issue_thresholds(policy):
    assert policy.bound == "low"
    assert policy.minimums == {"micro_auc": 0.75, "pixel_auroc": 0.93, "yes_no_accuracy": 0.80}
    assert policy.above_majority == ["yes_no_accuracy"]
    assert policy.beats_baseline == policy.beats_baseline_holdout == ["micro_auc", "rbdc", "tbdc"]
    assert policy.champion.tolerance > 0


def test_good_candidate_passes_every_gate(policy):
    r = check_gates(eval_report(), policy, champion=None)
    assert r.passed and not r.failed
    names = {g.name for g in r.gates}
    assert {"min.micro_auc", "min.pixel_auroc", "min.yes_no_accuracy", "above_majority.yes_no_accuracy",
            "beats_baseline.rbdc", "beats_baseline_holdout.tbdc", "champion.micro_auc"} <= names


@pytest.mark.parametrize("report,failed", [
    # the point value clears 0.75 but the interval's lower bound (0.74) does not
    (eval_report(micro_auc=0.77), {"min.micro_auc"}),
    (eval_report(pixel_auroc=0.95), {"min.pixel_auroc"}),  # low 0.92 < 0.93
    (eval_report(yes_no_accuracy=0.86, majority=0.9), {"above_majority.yes_no_accuracy"}),
    (eval_report(rbdc=0.62, baseline=0.6), {"beats_baseline.rbdc"}),  # low 0.59 < baseline 0.6
    (eval_report(holdout_model=0.55), {"beats_baseline_holdout.micro_auc", "beats_baseline_holdout.rbdc",
                                       "beats_baseline_holdout.tbdc"}),
    (eval_report(tbdc=None), {"beats_baseline.tbdc"}),  # missing evidence fails
])
def test_each_gate_fails_on_its_own(policy, report, failed):
    r = check_gates(report, policy, champion=None)
    assert not r.passed
    assert {g.name for g in r.failed} == failed
    for g in r.failed:
        assert g.detail


def test_champion_tolerance(policy):
    tol = policy.champion.tolerance
    ok = check_gates(eval_report(model=0.97), policy, champion={"micro_auc": 0.97 + tol / 2})
    assert ok.passed
    bad = check_gates(eval_report(model=0.97), policy, champion={"micro_auc": 0.97 + 2 * tol})
    assert {g.name for g in bad.failed} == {"champion.micro_auc"}
    g = bad.failed[0]
    assert g.threshold == pytest.approx(0.97 + tol)
    md = bad.to_markdown()
    assert "FAILED" in md and "champion.micro_auc" in md and "**FAIL**" in md


def test_policy_loader_rejects_bad_files(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("minimums: {micro_acu: 0.7}\n")
    with pytest.raises(PolicyError, match=r"p\.yaml.*micro_acu"):
        load_policy(bad)
    bad.write_text("minimums: {micro_auc: 75}\n")
    with pytest.raises(PolicyError, match="fraction"):
        load_policy(bad)
    bad.write_text("gates: []\n")
    with pytest.raises(PolicyError, match="gates"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="no such policy"):
        load_policy(tmp_path / "missing.yaml")


def test_read_eval_errors_name_the_file(tmp_path):
    p = tmp_path / "evaluate.json"
    p.write_text("{not json")
    with pytest.raises(EvalReportError, match="evaluate.json: not valid JSON"):
        read_eval(p)
    no_baseline = eval_report()
    del no_baseline["baseline"]
    p.write_text(json.dumps(no_baseline))
    with pytest.raises(EvalReportError, match="baseline"):
        read_eval(p)
    p.write_text(json.dumps(eval_report()))
    assert read_eval(p)["model"]["micro_auc"]["value"] == 0.97
