"""docs/results.md from the pipeline's metrics files, so the published figures are never typed by hand.

    python -m tvau.results --out docs/results.md          # rewrite the page
    python -m tvau.results --out docs/results.md --check  # exit 1 when the page is out of date

Reads `data/metrics/*.json` (the DVC stages' metrics: evaluate, pretrain_vision, pretrain_backbone and the data
stages' counts) and renders Markdown tables. The output depends only on those files: no timestamps,
no paths outside the label given, keys in a fixed order, so the page changes exactly when a metric
does. A missing file is one line saying so; the rest of the page is still rendered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

COMMAND = "python -m tvau.results --out docs/results.md"

# The data stages in pipeline order: (metrics file stem, title).
DATA_STAGES = (
    ("synth", "Synthetic footage"),
    ("annotate", "Frame-wise annotation"),
    ("timelines", "Object timelines"),
    ("refine", "Anomaly-focused refinement"),
    ("validate", "Data-quality gate"),
    ("build", "Training sets"),
)

# Headline metrics in the order people read them; any other metric in the file follows.
METRIC_ORDER = (
    "micro_auc",
    "macro_auc",
    "pixel_auroc",
    "rbdc",
    "tbdc",
    "yes_no_accuracy",
    "bleu4_target",
    "bleu4_trajectory",
)
METRIC_NAMES = {
    "micro_auc": "frame micro-AUC",
    "macro_auc": "frame macro-AUC",
    "pixel_auroc": "pixel AUROC",
    "rbdc": "RBDC",
    "tbdc": "TBDC",
    "yes_no_accuracy": "yes/no accuracy",
    "bleu4_target": "BLEU-4 target",
    "bleu4_trajectory": "BLEU-4 trajectory",
}


def fmt(value: Any, digits: int = 3) -> str:
    """One table cell: n/a for a missing value, thousands separators for counts, fixed decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    return f"`{value}`"


def interval(stat: Any) -> str:
    """`value [low, high]` of a {value, low, high} record; n/a when it has no value."""
    if not isinstance(stat, dict) or stat.get("value") is None:
        return "n/a"
    text = fmt(stat["value"])
    if stat.get("low") is not None and stat.get("high") is not None:
        text += f" [{fmt(stat['low'])}, {fmt(stat['high'])}]"
    return text


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Sorted (dotted key, value) pairs of a nested dictionary."""
    out: list[tuple[str, Any]] = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, dict):
            out += flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def load(metrics_dir: Path, stem: str) -> dict[str, Any] | None:
    path = metrics_dir / f"{stem}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def absent(label: str, stem: str) -> list[str]:
    return [f"`{label}/{stem}.json` is absent.", ""]


def _is_figure(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value


def metric_keys(*sides: Any) -> list[str]:
    """The single figures ({value, low, high}) of the sides, METRIC_ORDER first; the grouped word
    metrics (a figure per field, question or kind) have their own tables (words_section)."""
    keys = [k for k in METRIC_ORDER if any(isinstance(s, dict) and _is_figure(s.get(k)) for s in sides)]
    for side in sides:
        if isinstance(side, dict):
            keys += [k for k, v in side.items() if k not in keys and _is_figure(v)]
    return keys


def words_section(model: dict[str, Any], details: dict[str, Any] | None = None) -> list[str]:
    """What the generated answers state, read into fields (tvau/metrics/fields.py): field accuracy on
    every anomalous clip and on those answered yes, beside what one constant answer scores there
    (details' field_majority*), degenerate output, and who was said yes to."""
    lines: list[str] = []
    fields_all, fields_yes = model.get("field_accuracy") or {}, model.get("field_accuracy_answered") or {}
    if fields_all or fields_yes:
        details = details or {}
        const_all, const_yes = details.get("field_majority") or {}, details.get("field_majority_answered") or {}
        rows = [[f, interval(fields_all.get(f)), fmt(const_all.get(f)), interval(fields_yes.get(f)), fmt(const_yes.get(f))]
                for f in sorted(fields_all.keys() | fields_yes.keys())]
        lines += table(["field", "all anomalous clips", "a constant answer", "clips answered yes", "a constant answer"],
                       rows) + [""]
    distinct, looping = model.get("distinct_answer_share") or {}, model.get("looping_answers") or {}
    if distinct or looping:
        rows = [[q, interval(distinct.get(q)), interval(looping.get(q))] for q in sorted(distinct.keys() | looping.keys())]
        lines += table(["question", "distinct answers / clips", "answers that loop"], rows) + [""]
    said = model.get("said_yes") or {}
    if said:
        lines += table(["clips of", "said yes"], [[k, interval(said[k])] for k in sorted(said)]) + [""]
    return lines


def calibration_section(block: dict[str, Any] | None) -> list[str]:
    """The per-video verdict's threshold (fitted on validation for a false-alarm rate) and what it gives."""
    if not block:
        return []
    rows = [[key, interval(value) if _is_figure(value) else fmt(value)] for key, value in sorted(block.items())
            if not isinstance(value, (list, dict)) or _is_figure(value)]
    return ["## Calibration of the per-video verdict", ""] + table(["key", "value"], rows) + [""]


def model_vs_baseline(block: dict[str, Any]) -> list[str]:
    model, baseline = block.get("model") or {}, block.get("baseline") or {}
    rows = [
        [METRIC_NAMES.get(k, k), interval(model.get(k)), interval(baseline.get(k))]
        for k in metric_keys(model, baseline)
    ]
    lines = table(["metric", "T-VAU", "baseline"], rows)
    if block.get("majority_yes_no") is not None:
        lines += ["", f"A constant yes/no answer scores {fmt(block['majority_yes_no'])}."]
    return lines


def per_kind(kinds: dict[str, Any]) -> list[str]:
    rows = []
    for kind in sorted(kinds):
        entry = kinds[kind] or {}
        dialogue = entry.get("dialogue") or {}
        said = "n/a"
        if dialogue.get("asked"):
            said = f"{fmt(dialogue.get('yes'))} of {fmt(dialogue['asked'])}"
        rows.append(
            [
                kind,
                fmt(entry.get("videos")),
                interval((entry.get("model") or {}).get("auc")),
                interval((entry.get("baseline") or {}).get("auc")),
                said,
            ]
        )
    return table(["kind", "videos", "T-VAU frame AUC", "baseline frame AUC", "answered yes"], rows)


def notes(items: Any) -> list[str]:
    if not items:
        return []
    return ["", "Notes:", ""] + [f"- {item}" for item in items]


def evaluate_section(data: dict[str, Any] | None, label: str) -> list[str]:
    lines = ["## Evaluation", ""]
    if data is None:
        return lines + absent(label, "evaluate")
    intro = (
        f"Split `{data.get('split', 'n/a')}`: {fmt(data.get('videos'))} videos, {fmt(data.get('frames'))}"
        f" frames; regions `{data.get('region_method', 'n/a')}`. Each figure is the point value and its"
        " 95% bootstrap interval over videos."
    )
    lines += [intro, ""]
    lines += model_vs_baseline(data)
    words = words_section(data.get("model") or {}, data.get("details"))
    if words:
        lines += ["", "### What the answers state", ""] + words
    details = data.get("details") or {}
    if details:
        lines += ["", "### Details", ""]
        shown = ("field_majority.", "field_majority_answered.")  # already beside the field accuracies
        rows = [[key, fmt(value)] for key, value in flatten(details) if not key.startswith(shown)]
        lines += table(["key", "value"], rows)
    if data.get("per_kind"):
        lines += ["", "### Per anomaly kind", ""] + per_kind(data["per_kind"])
    lines += notes(data.get("notes"))
    holdout = data.get("holdout")
    if holdout:
        seed = holdout.get("seed", "n/a")
        intro = f"Seed {seed}: {fmt(holdout.get('videos'))} videos, {fmt(holdout.get('frames'))} frames, never trained on."
        lines += ["", "## Holdout (unseen seed)", "", intro, ""]
        lines += model_vs_baseline(holdout)
        words = words_section(holdout.get("model") or {}, holdout.get("details"))
        if words:
            lines += ["", "### What the answers state (holdout)", ""] + words
        if holdout.get("per_kind"):
            lines += ["", "### Per anomaly kind (holdout)", ""] + per_kind(holdout["per_kind"])
        lines += notes(holdout.get("notes"))
    return lines + [""] + calibration_section(data.get("calibration"))


def key_value_section(
    title: str, stem: str, data: dict[str, Any] | None, label: str, digits: int
) -> list[str]:
    lines = [title, ""]
    if data is None:
        return lines + absent(label, stem)
    rows = [[key, fmt(value, digits)] for key, value in flatten(data) if key != "stage"]
    return lines + table(["key", "value"], rows) + [""]


def render(metrics_dir: Path, label: str = "data/metrics") -> str:
    """The whole page for the metrics files in `metrics_dir`; `label` is how the page names that folder."""
    metrics_dir = Path(metrics_dir)
    lines = [
        "# Results",
        "",
        f"Generated from `{label}/*.json` by `{COMMAND}`; do not edit by hand.",
        "The method is in [method.md](method.md), the choices behind these figures in",
        "[decisions.md](decisions.md).",
        "",
    ]
    lines += evaluate_section(load(metrics_dir, "evaluate"), label)
    lines += key_value_section("## Embedded backbone pretraining: vision", "pretrain_vision",
                               load(metrics_dir, "pretrain_vision"), label, 4)
    lines += key_value_section("## Embedded backbone pretraining: language", "pretrain_backbone",
                               load(metrics_dir, "pretrain_backbone"), label, 4)
    lines += ["## Data stages", ""]
    for stem, title in DATA_STAGES:
        lines += key_value_section(f"### {title} (`{stem}`)", stem, load(metrics_dir, stem), label, 3)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tvau.results", description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", default="data/metrics", help="folder of the metrics files")
    parser.add_argument("--out", help="write the page here (default: stdout)")
    parser.add_argument("--check", action="store_true", help="only compare with --out; exit 1 if it differs")
    args = parser.parse_args(argv)
    text = render(Path(args.metrics), label=args.metrics.rstrip("/"))
    if args.check:
        if not args.out:
            parser.error("--check needs --out")
        current = Path(args.out).read_text() if Path(args.out).is_file() else None
        if current != text:
            print(f"{args.out} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if not args.out:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
