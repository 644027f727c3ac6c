"""The gates are a pure function: evaluate.json + policy + champion metrics -> report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.registry.helpers import eval_report
from tvau.registry.gates import EvalReportError, check_gates, read_eval
from tvau.registry.policy import PolicyError, load_policy

REPO = Path(__file__).resolve().parents[2]


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


# --- nested word metrics ("group.key"), maximums and holdout_within ---

def _leaf(v: float | None, width: float = 0.03) -> dict:
    return {"value": v, "low": None if v is None else max(0.0, v - width),
            "high": None if v is None else min(1.0, v + width)}


def word_report(holdout: dict[str, float | None] | None = None, **leaves: dict) -> dict:
    """eval_report() with the word metrics nested in both model blocks: every leaf 0.9 +- 0.03 but
    looping_answers 0.01 (exactly [0, 0.02]); `leaves` replace model leaves ("group__key" = leaf dict),
    `holdout` sets holdout point values by dotted name (None = missing)."""
    from tvau.registry.policy import NESTED

    def block() -> dict:
        return {g: {k: _leaf(0.01, 0.01) if g == "looping_answers" else _leaf(0.9) for k in keys}
                for g, keys in NESTED.items()}

    r = eval_report()
    r["model"] |= block()
    r["holdout"]["model"] |= block()
    for name, leaf in leaves.items():
        g, k = name.split("__")
        r["model"][g][k] = leaf
    for name, v in (holdout or {}).items():
        g, _, k = name.rpartition(".")
        (r["holdout"]["model"][g] if g else r["holdout"]["model"])[k] = _leaf(v)
    return r


def _policy(tmp_path, text: str):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return load_policy(p)


def test_policy_parses_dotted_names_maximums_and_holdout_within(tmp_path):
    p = _policy(tmp_path, "minimums: {bleu4_target: 0.4, field_accuracy_answered.category: 0.85}\n"
                          "maximums: {looping_answers.target: 0.02}\n"
                          "holdout_within: {metrics: [yes_no_accuracy, said_yes.normal], tolerance: 0.05}\n")
    assert p.minimums == {"bleu4_target": 0.4, "field_accuracy_answered.category": 0.85}
    assert p.maximums == {"looping_answers.target": 0.02}
    assert p.holdout_within.metrics == ["yes_no_accuracy", "said_yes.normal"]
    assert p.holdout_within.tolerance == 0.05
    assert _policy(tmp_path, "{}\n").holdout_within.tolerance == 0.03  # the default


@pytest.mark.parametrize("text,match", [
    # an unknown key of a known group, and an unknown group: both name every known metric
    ("minimums: {field_accuracy.colour: 0.5}\n", r"field_accuracy\.colour.*known.*micro_auc.*field_accuracy\.\{category, color"),
    ("maximums: {loops.target: 0.1}\n", r"loops\.target.*known.*looping_answers\.\{target, trajectory\}"),
    ("holdout_within: {metrics: [said_yes.walking]}\n", r"said_yes\.walking.*said_yes\.\{normal, running"),
    ("maximums: {looping_answers.target: 2}\n", "maximum for looping_answers.target must be a fraction"),
    # the baseline and the champion carry no word metrics: their gates take the flat names only
    ("beats_baseline: [said_yes.normal]\n", r"said_yes\.normal"),
    ("champion: {metrics: [field_accuracy.category]}\n", r"field_accuracy\.category"),
    ("holdout_within: {tolerance: 0.03, metric: [micro_auc]}\n", r"holdout_within\.metric: Extra"),
])
def test_policy_rejects_unknown_dotted_names(tmp_path, text, match):
    with pytest.raises(PolicyError, match=match):
        _policy(tmp_path, text)


@pytest.mark.parametrize("leaf,passed", [
    ({"value": 0.9, "low": 0.85, "high": 0.95}, True),  # equal to the minimum passes
    ({"value": 0.9, "low": 0.8499, "high": 0.95}, False),
    ({"value": 0.9, "low": None, "high": None}, False),  # no interval: no evidence
])
def test_dotted_minimum_compares_the_low_end(tmp_path, leaf, passed):
    p = _policy(tmp_path, "minimums: {field_accuracy_answered.category: 0.85}\n")
    (g,) = check_gates(word_report(field_accuracy_answered__category=leaf), p).gates
    assert (g.name, g.passed) == ("min.field_accuracy_answered.category", passed)
    assert g.detail == ("model field_accuracy_answered.category (low) >= 0.85" if leaf["low"] is not None
                        else "model field_accuracy_answered.category (low) missing")


@pytest.mark.parametrize("bound,leaf,passed,value", [
    ("low", {"value": 0.01, "low": 0.0, "high": 0.02}, True, 0.02),  # equal to the maximum passes
    ("low", {"value": 0.01, "low": 0.0, "high": 0.0201}, False, 0.0201),  # the upper end decides...
    ("value", {"value": 0.01, "low": 0.0, "high": 0.05}, True, 0.01),  # ... unless the policy asks for points
    ("value", {"value": 0.021, "low": 0.0, "high": 0.05}, False, 0.021),
    ("low", {"value": 0.01, "low": None, "high": None}, False, None),
])
def test_maximum_compares_the_upper_end_under_bound_low(tmp_path, bound, leaf, passed, value):
    p = _policy(tmp_path, f"bound: {bound}\nmaximums: {{looping_answers.trajectory: 0.02}}\n")
    (g,) = check_gates(word_report(looping_answers__trajectory=leaf), p).gates
    assert (g.name, g.passed, g.value, g.threshold) == ("max.looping_answers.trajectory", passed, value, 0.02)
    end = "high" if bound == "low" else "value"
    assert g.detail == (f"model looping_answers.trajectory ({end}) <= 0.02" if value is not None
                        else f"model looping_answers.trajectory ({end}) missing")


def test_holdout_within_tolerance(tmp_path):
    p = _policy(tmp_path, "holdout_within: {metrics: [yes_no_accuracy, field_accuracy_answered.action], "
                          "tolerance: 0.03}\n")
    # validation point values: yes_no_accuracy 0.97 (eval_report), field_accuracy_answered.action 0.9
    edge = check_gates(word_report({"yes_no_accuracy": 0.97 - 0.03, "field_accuracy_answered.action": 0.9 - 0.03}), p)
    assert edge.passed
    g = edge.gates[1]
    assert (g.name, g.value, g.threshold) == ("holdout_within.field_accuracy_answered.action", 0.9 - 0.03,
                                              0.9 - 0.03)
    assert g.detail == "holdout field_accuracy_answered.action >= validation 0.9000 - tolerance 0.03"
    drop = check_gates(word_report({"field_accuracy_answered.action": 0.86}), p)
    assert [g.name for g in drop.failed] == ["holdout_within.field_accuracy_answered.action"]


def test_holdout_within_fails_on_a_missing_value(tmp_path):
    p = _policy(tmp_path, "holdout_within: {metrics: [said_yes.crowd]}\n")
    for report in (word_report({"said_yes.crowd": None}), word_report(said_yes__crowd=_leaf(None))):
        (g,) = check_gates(report, p).gates
        assert not g.passed and g.detail == "said_yes.crowd missing on the validation or the holdout set"
    no_holdout = word_report()
    del no_holdout["holdout"]
    assert not check_gates(no_holdout, p).passed


def test_holdout_within_a_lower_is_better_share_may_not_rise(tmp_path):
    p = _policy(tmp_path, "holdout_within: {metrics: [looping_answers.target], tolerance: 0.03}\n")
    assert check_gates(word_report({"looping_answers.target": 0.0}), p).passed  # fewer loops: fine
    assert check_gates(word_report({"looping_answers.target": 0.01 + 0.03}), p).passed
    (g,) = check_gates(word_report({"looping_answers.target": 0.05}), p).gates
    assert not g.passed and g.threshold == pytest.approx(0.04)
    assert g.detail == "holdout looping_answers.target <= validation 0.0100 + tolerance 0.03"


def test_nested_key_sets_agree_with_the_evaluation():
    """policy.NESTED restates tvau/evaluate/words.py's key sets (it imports torch): they must agree,
    and every word metric of the committed report must be nameable in a policy."""
    from tvau.evaluate.config import EvaluateConfig
    from tvau.evaluate.model import DialogueResult
    from tvau.evaluate.words import QUESTIONS, WORD_METRICS, word_metrics
    from tvau.registry.policy import LOWER_IS_BETTER, NESTED, NESTED_METRICS
    from tvau.registry.policy import QUESTIONS as POLICY_QUESTIONS
    from tvau.vocab import ANOMALY_KINDS

    assert tuple(NESTED) == WORD_METRICS and POLICY_QUESTIONS == QUESTIONS
    assert set(LOWER_IS_BETTER) <= set(NESTED_METRICS)
    # one video per anomaly kind (an anomalous clip with a reference, and a normal clip): every key there is
    ref = {"ref_target": "A red car, driving.", "ref_motion": "fast", "ref_trajectory": "It moves from the left to the right."}
    dialogues = {k: [DialogueResult(k, 0, True, "Yes.", target="A red car.", trajectory="To the right.", **ref),
                     DialogueResult(k, 24, False, "No.")] for k in ANOMALY_KINDS}
    out, _ = word_metrics(list(ANOMALY_KINDS), dialogues, {k: k for k in ANOMALY_KINDS}, EvaluateConfig(bootstrap=20))
    assert {g: set(v) for g, v in out.items()} == {g: set(keys) for g, keys in NESTED.items()}

    committed = read_eval(REPO / "data" / "metrics" / "evaluate.json")
    for block in (committed["model"], committed["holdout"]["model"]):
        named = {f"{g}.{k}" for g in WORD_METRICS for k in block.get(g, {})}
        assert named and named <= set(NESTED_METRICS)


def test_committed_policy_gates_the_committed_report(policy):
    """Every gate of the committed policy resolves its metrics in the committed report (a gate that
    reads a missing number fails with "missing", which would hide a renamed metric)."""
    committed = read_eval(REPO / "data" / "metrics" / "evaluate.json")
    report = check_gates(committed, policy, champion=None)
    assert report.gates and not [g.name for g in report.gates if "missing" in g.detail]
    # a champion far ahead on micro_auc fails exactly that comparison
    ahead = {"micro_auc": 0.999}
    assert "champion.micro_auc" in [g.name for g in check_gates(committed, policy, champion=ahead).failed]
