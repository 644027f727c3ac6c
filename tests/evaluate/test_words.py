"""The metrics that look at the words (tvau/evaluate/words.py) on a hand-made set with known answers."""

import pytest

from tvau.evaluate.config import EvaluateConfig
from tvau.evaluate.model import DialogueResult
from tvau.evaluate.words import word_metrics
from tvau.metrics.fields import FIELDS

REF = {"ref_target": "A red car, driving.", "ref_motion": "fast", "ref_trajectory": "It moves from the left to the right."}
RIGHT = {"target": "A red car, driving.", "motion": "It moves fast: its motion state is fast.",
         "trajectory": "It moves from the left to the right."}


def _set():
    a1 = DialogueResult("a", 0, True, "Yes. The anomaly is a car.", **RIGHT, **REF)
    a2 = DialogueResult("a", 24, True, "No.", **RIGHT, **REF)  # right words, but it said no: wrong in every field
    b1 = DialogueResult("b", 0, True, "Yes.", target="Yes. Yes. Yes. Yes.", motion="", trajectory="", **REF)  # unreadable
    b2 = DialogueResult("b", 24, False, "Yes.")  # a normal clip answered yes
    b3 = DialogueResult("b", 48, True, "Yes.", **RIGHT)  # no reference: not scored for fields
    c1 = DialogueResult("c", 0, False, "No.")
    blue = DialogueResult("d", 0, True, "Yes.", **(RIGHT | {"target": "A blue car, driving."}), **REF)
    return {"a": [a1, a2], "b": [b1, b2, b3], "c": [c1], "d": [blue]}, {"a": "vehicle", "b": "running", "c": None,
                                                                         "d": "vehicle"}


def test_field_accuracy_counts_no_and_unreadable_answers_as_wrong():
    dialogues, kinds = _set()
    out, details = word_metrics(["a", "b", "c", "d"], dialogues, kinds, EvaluateConfig(bootstrap=200))
    # scored: a1 (all right), a2 (said no), b1 (unreadable), d (all right but the colour)
    assert {k: v for k, v in details.items() if not k.startswith("field_majority")} == {
        "field_clips": 4, "field_clips_answered_yes": 3, "anomalous_clips_without_reference": 1}
    for f in FIELDS:
        want = 1 / 4 if f == "color" else 2 / 4
        v = out["field_accuracy"][f]
        assert v["value"] == pytest.approx(want) and 0 <= v["low"] <= v["value"] <= v["high"] <= 1
        assert out["field_accuracy_answered"][f]["value"] == pytest.approx(want * 4 / 3)


def test_a_constant_answer_is_scored_beside_the_fields():
    """Three of four referenced clips are a red car going left to right and one a person: a model
    that always says "a red car" would score 0.75 on category, which is what the details report."""
    dialogues, kinds = _set()
    person = DialogueResult("e", 0, True, "Yes.", **RIGHT, ref_target="A person in a green coat, running.",
                            ref_motion="fast", ref_trajectory="It moves from the left to the right.")
    dialogues["e"], kinds["e"] = [person], "running"
    _, details = word_metrics(list(dialogues), dialogues, kinds, EvaluateConfig(bootstrap=20))
    # referenced clips: a1, a2, b1, d (cars), e (person); answered yes: a1, b1, d, e
    assert details["field_majority"]["category"] == pytest.approx(4 / 5)
    assert details["field_majority_answered"]["category"] == pytest.approx(3 / 4)
    assert details["field_majority"]["from_region"] == 1.0  # every reference starts in the left


def test_collapse_and_said_yes():
    dialogues, kinds = _set()
    out, _ = word_metrics(["a", "b", "c", "d"], dialogues, kinds, EvaluateConfig(bootstrap=200))
    # target answers of the 5 anomalous clips: the right one three times, "Yes. Yes. Yes. Yes.", the blue car
    assert out["distinct_answer_share"]["target"] == {"value": pytest.approx(3 / 5), "low": None, "high": None}
    assert out["distinct_answer_share"]["trajectory"]["value"] == pytest.approx(2 / 5)  # the right one and ""
    assert out["looping_answers"]["target"]["value"] == pytest.approx(1 / 5)
    assert out["looping_answers"]["trajectory"]["value"] == 0
    assert out["said_yes"]["normal"]["value"] == pytest.approx(1 / 2)  # b2 yes, c1 no
    assert out["said_yes"]["vehicle"]["value"] == pytest.approx(2 / 3)  # a1, d yes; a2 no
    assert out["said_yes"]["running"]["value"] == pytest.approx(1.0)  # b1 and b3
    assert set(out["said_yes"]) == {"normal", "vehicle", "running"}


def test_structured_reference_fields_are_preferred_to_reading_the_reference():
    dialogues, kinds = _set()
    d = dialogues["d"][0]
    d.ref_fields = {"category": "car", "color": "blue", "clothing": None, "action": "driving", "motion_state": "fast",
                    "from_region": "left", "to_region": "right"}
    out, _ = word_metrics(["d"], {"d": [d]}, kinds, EvaluateConfig(bootstrap=50))
    assert all(out["field_accuracy"][f]["value"] == 1.0 for f in FIELDS)


def test_the_report_shows_the_constant_answer_beside_each_field():
    from tvau.evaluate.report import word_rows

    dialogues, kinds = _set()
    out, details = word_metrics(list(dialogues), dialogues, kinds, EvaluateConfig(bootstrap=20))
    rows = {(r["metric"], r["of"]): r for r in word_rows(out, None, details)}
    assert rows[("field_accuracy_answered", "category")]["a constant answer"] == "1.000"  # every reference is a car
    assert rows[("looping_answers", "target")]["a constant answer"] is None
