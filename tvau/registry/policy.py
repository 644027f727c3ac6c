"""registry/policy.yaml -> a typed, validated gate policy (unknown keys and metrics are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from tvau.configbase import Section, read_yaml_mapping
from tvau.metrics.fields import FIELDS
from tvau.vocab import ANOMALY_KINDS

# The metric keys of data/metrics/evaluate.json (tvau/evaluate/report.py): fractions in [0, 1].
METRICS = ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc", "yes_no_accuracy", "bleu4_target",
           "bleu4_trajectory")

# The nested word metrics of the model block, {group: {key: {value, low, high}}}, named "group.key" in
# a policy. tvau/evaluate/words.py owns them; it imports torch, so its question keys are restated here
# (tests/registry/test_gates.py checks these sets against what it produces). Only the model blocks
# carry them (not the baseline, not the champion's tags): only minimums, maximums and holdout_within
# take them.
QUESTIONS = ("target", "trajectory")  # tvau.evaluate.words.QUESTIONS
NESTED: dict[str, tuple[str, ...]] = {
    "field_accuracy": FIELDS,
    "field_accuracy_answered": FIELDS,
    "distinct_answer_share": QUESTIONS,
    "looping_answers": QUESTIONS,
    "said_yes": ("normal", *ANOMALY_KINDS),
}
NESTED_METRICS = tuple(f"{group}.{key}" for group, keys in NESTED.items() for key in keys)
# The shares where less is better (repeated phrases, false alarms): a holdout may not exceed them by
# more than its tolerance, where every other metric may not fall short by more.
LOWER_IS_BETTER = ("looping_answers.target", "looping_answers.trajectory", "said_yes.normal")


def _known(names):
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; known: {list(METRICS)}")
    return names


def _known_nested(names):
    bad = [m for m in names if m not in METRICS and m not in NESTED_METRICS]
    if bad:
        dotted = "; ".join(f"{group}.{{{', '.join(keys)}}}" for group, keys in NESTED.items())
        raise ValueError(f"unknown metric(s) {bad}; known: {list(METRICS)}, and the dotted {dotted}")
    return names


def _fractions(v: dict[str, float], what: str) -> dict[str, float]:
    _known_nested(list(v))
    for k, x in v.items():
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{what} for {k} must be a fraction in [0, 1], got {x}")
    return v


class ChampionGate(Section):
    metrics: list[str] = Field(default_factory=list)
    tolerance: float = Field(0.02, ge=0.0, le=1.0)

    _check = field_validator("metrics")(_known)


class HoldoutWithin(Section):
    metrics: list[str] = Field(default_factory=list)
    tolerance: float = Field(0.03, ge=0.0, le=1.0)

    _check = field_validator("metrics")(_known_nested)


class Policy(Section):
    bound: Literal["low", "value"] = "low"
    minimums: dict[str, float] = Field(default_factory=dict)
    maximums: dict[str, float] = Field(default_factory=dict)
    above_majority: list[str] = Field(default_factory=list)
    beats_baseline: list[str] = Field(default_factory=list)
    beats_baseline_holdout: list[str] = Field(default_factory=list)
    holdout_within: HoldoutWithin = Field(default_factory=HoldoutWithin)
    champion: ChampionGate = Field(default_factory=ChampionGate)

    @field_validator("minimums")
    @classmethod
    def _minimums(cls, v: dict[str, float]) -> dict[str, float]:
        return _fractions(v, "minimum")

    @field_validator("maximums")
    @classmethod
    def _maximums(cls, v: dict[str, float]) -> dict[str, float]:
        return _fractions(v, "maximum")

    @field_validator("above_majority", "beats_baseline", "beats_baseline_holdout")
    @classmethod
    def _lists(cls, v: list[str]) -> list[str]:
        return _known(v)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the problem."""


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: no such policy file")
    raw = read_yaml_mapping(path, PolicyError)
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{path}: invalid policy: {problems}") from None
