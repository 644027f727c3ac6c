"""The registry's gates: a pure function of the evaluation report, the policy and the champion's
metrics. No MLflow, no files: `check_gates(evaluation, policy, champion) -> GateReport`.

`evaluation` is data/metrics/evaluate.json (tvau/evaluate/report.py): {"model": {metric: {"value", "low",
"high"}}, "baseline": {...}, "majority_yes_no": float, "holdout": {"model": ..., "baseline": ...}}; the
model blocks also nest the word metrics, {group: {key: {"value", "low", "high"}}}, named "group.key".
A missing or null number fails its gate (and says so): a gate never passes on absent evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tvau.registry.policy import LOWER_IS_BETTER, Policy


@dataclass(frozen=True)
class Gate:
    name: str  # stable identifier, also the MLflow tag suffix of a failed gate (gate_failed.<name>)
    passed: bool
    value: float | None  # what was compared
    threshold: float | None  # what it was compared against
    detail: str  # one readable line


@dataclass
class GateReport:
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": [g.name for g in self.failed],
                "gates": [asdict(g) for g in self.gates]}

    def to_markdown(self, title: str = "Gate report") -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failed)} of {len(self.gates)} gates)"
        lines = [f"# {title}: {verdict}", "", "| gate | result | value | threshold | detail |",
                 "| --- | --- | --- | --- | --- |"]
        for g in self.gates:
            lines.append(f"| `{g.name}` | {'pass' if g.passed else '**FAIL**'} | {_fmt(g.value)} | "
                         f"{_fmt(g.threshold)} | {g.detail} |")
        return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


class EvalReportError(ValueError):
    """An evaluation report that cannot be gated; the message names the file and the problem."""


def read_eval(path: str | Path) -> dict[str, Any]:
    """Read an evaluate.json through the evaluation's own reader (it checks the whole contract);
    numbers may be null: those gates fail."""
    from tvau.evaluate.report import EvalFileError, load_eval

    try:
        return load_eval(Path(path))
    except EvalFileError as exc:
        raise EvalReportError(str(exc)) from None


def _num(block: dict | None, metric: str, end: str) -> float | None:
    entry = block
    for part in metric.split("."):  # "group.key" names a nested word metric
        entry = entry.get(part) if isinstance(entry, dict) else None
    if isinstance(entry, dict):
        v = entry.get(end)
    else:  # tolerate a bare number for "value"
        v = entry if end == "value" else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def check_gates(evaluation: dict[str, Any], policy: Policy,
                champion: dict[str, float] | None = None) -> GateReport:
    """Every gate of `policy` on `evaluation`; `champion` = the current champion's point metrics
    ({metric: value}) or None when there is none yet."""
    report = GateReport()
    add = report.gates.append
    b = policy.bound
    model, baseline = evaluation.get("model"), evaluation.get("baseline")

    for metric, minimum in policy.minimums.items():
        v = _num(model, metric, b)
        add(Gate(f"min.{metric}", v is not None and v >= minimum, v, minimum,
                 f"model {metric} ({b}) >= {minimum}" if v is not None else f"model {metric} ({b}) missing"))

    # A maximum's conservative end is the top of the interval: "bound: low" asks for the high end.
    top = "high" if b == "low" else "value"
    for metric, maximum in policy.maximums.items():
        v = _num(model, metric, top)
        add(Gate(f"max.{metric}", v is not None and v <= maximum, v, maximum,
                 f"model {metric} ({top}) <= {maximum}" if v is not None else f"model {metric} ({top}) missing"))

    majority = evaluation.get("majority_yes_no")
    majority = float(majority) if isinstance(majority, (int, float)) else None
    for metric in policy.above_majority:
        v = _num(model, metric, b)
        ok = v is not None and majority is not None and v > majority
        add(Gate(f"above_majority.{metric}", ok, v, majority,
                 f"model {metric} ({b}) > majority-class rate" if majority is not None
                 else "majority-class rate missing from the report"))

    for split, metrics, m_block, b_block in (
        ("validation", policy.beats_baseline, model, baseline),
        ("holdout", policy.beats_baseline_holdout, (evaluation.get("holdout") or {}).get("model"),
         (evaluation.get("holdout") or {}).get("baseline")),
    ):
        prefix = "beats_baseline" if split == "validation" else "beats_baseline_holdout"
        for metric in metrics:
            v, ref = _num(m_block, metric, b), _num(b_block, metric, "value")
            ok = v is not None and ref is not None and v > ref
            detail = (f"model {metric} ({b}) > baseline on the {split} set" if v is not None and ref is not None
                      else f"{metric} missing for the model or the baseline on the {split} set")
            add(Gate(f"{prefix}.{metric}", ok, v, ref, detail))

    # Point values on both sides, as for the champion: the question is whether what the model learnt
    # carries over to videos of a seed it never saw, and a shortfall beyond the tolerance says it did not.
    holdout, within = (evaluation.get("holdout") or {}).get("model"), policy.holdout_within.tolerance
    for metric in policy.holdout_within.metrics:
        v, ref = _num(holdout, metric, "value"), _num(model, metric, "value")
        if v is None or ref is None:
            add(Gate(f"holdout_within.{metric}", False, v, None,
                     f"{metric} missing on the validation or the holdout set"))
        elif metric in LOWER_IS_BETTER:
            add(Gate(f"holdout_within.{metric}", v <= ref + within, v, ref + within,
                     f"holdout {metric} <= validation {ref:.4f} + tolerance {within}"))
        else:
            add(Gate(f"holdout_within.{metric}", v >= ref - within, v, ref - within,
                     f"holdout {metric} >= validation {ref:.4f} - tolerance {within}"))

    tol = policy.champion.tolerance
    for metric in policy.champion.metrics:
        v = _num(model, metric, "value")
        if champion is None:
            add(Gate(f"champion.{metric}", True, v, None, "no champion yet: nothing to compare with"))
            continue
        ref = champion.get(metric)
        if ref is None:
            add(Gate(f"champion.{metric}", True, v, None, f"the champion has no {metric}: not compared"))
            continue
        ok = v is not None and v >= ref - tol
        add(Gate(f"champion.{metric}", ok, v, ref - tol,
                 f"model {metric} >= champion {ref:.4f} - tolerance {tol}"))
    return report
