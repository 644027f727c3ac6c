"""registry/policy.yaml -> a typed, validated gate policy (unknown keys and metrics are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from tvau.configbase import Section, read_yaml_mapping

# The metric keys of data/metrics/evaluate.json (tvau/evaluate/report.py): fractions in [0, 1].
METRICS = ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc", "yes_no_accuracy", "bleu4_target",
           "bleu4_trajectory")


def _known(names):
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; known: {list(METRICS)}")
    return names


class ChampionGate(Section):
    metrics: list[str] = Field(default_factory=list)
    tolerance: float = Field(0.02, ge=0.0, le=1.0)

    _check = field_validator("metrics")(_known)


class Policy(Section):
    bound: Literal["low", "value"] = "low"
    minimums: dict[str, float] = Field(default_factory=dict)
    above_majority: list[str] = Field(default_factory=list)
    beats_baseline: list[str] = Field(default_factory=list)
    beats_baseline_holdout: list[str] = Field(default_factory=list)
    champion: ChampionGate = Field(default_factory=ChampionGate)

    @field_validator("minimums")
    @classmethod
    def _minimums(cls, v: dict[str, float]) -> dict[str, float]:
        _known(list(v))
        for k, x in v.items():
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"minimum for {k} must be a fraction in [0, 1], got {x}")
        return v

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
