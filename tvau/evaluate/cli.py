"""`tvau evaluate`: a trained model beside the baseline on a split, with intervals (tvau/evaluate/run.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from tvau import cpu


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def evaluate_cmd(
    model: str = typer.Option(..., "--model", help="Trained-model directory, or models:/NAME@ALIAS, runs:/ID/PATH."),
    data: Path = typer.Option(..., "--data", help="Any UBnormal-layout tree (ours or the real dataset)."),
    split: str | None = typer.Option(None, "--split", help="validation | test | all (default: params evaluate.split)."),
    holdout: Path | None = typer.Option(None, "--holdout", help="Also evaluate every video of this never-seen tree."),
    references: Path | None = typer.Option(Path("data/train/sft"), "--references",
                                           help="Phase-B SFT records used as references for the footage they were built "
                                                "from (matched by footage digest); other videos get "
                                                "references from their own set's annotations."),
    out: Path | None = typer.Option(None, "--out", help="Write tables, dialogues and plots to this directory."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Write the contract's evaluate.json here."),
    calibration_out: Path | None = typer.Option(
        None, "--calibration-out", help="Also write the per-video threshold (evaluate.json's calibration block) "
        "here, e.g. MODEL_DIR/calibration.json: the file nightly scoring reads from the model directory."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file (metrics, evaluate)."),
    as_json: bool = typer.Option(False, "--json", help="Print one flat JSON object (only JSON on stdout)."),
) -> None:
    """Frame micro/macro-AUC, pixel AUROC, RBDC/TBDC, yes/no accuracy and BLEU-4 of a trained model
    and of the baseline on the same videos, each with a 95% bootstrap interval over videos."""
    cpu.pin_cpu_kernels()  # before torch: the same metrics bits on any x86-64 CPU
    from tvau.config import ParamsError, load_params
    from tvau.model.trained import TrainedModelError, read_card

    try:
        p = load_params(params)
    except ParamsError as exc:
        _fail(str(exc))
    if split is not None and split not in ("validation", "test", "all"):
        _fail(f"--split must be validation, test or all, got {split!r}")
    if not model.startswith(("models:/", "runs:/")):
        try:
            read_card(model)
        except TrainedModelError as exc:
            _fail(str(exc))
    for path, what in ((data, "--data"), (holdout, "--holdout")):
        if path is not None and not path.is_dir():
            _fail(f"{path}: no such dataset folder ({what})")
    from tvau.evaluate.run import run_evaluation

    try:
        model_dir = model
        if model.startswith(("models:/", "runs:/")):
            # Entry points sit above the registry (tests/test_layers.py); evaluation sees a directory.
            from tvau.registry.resolve import download_model

            model_dir = str(download_model(model))
        result = run_evaluation(model_dir, data, p, split, out, metrics, holdout, references,
                                progress=sys.stderr.isatty(), calibration_out=calibration_out)
    except (ValueError, OSError) as exc:  # DatasetError, TrainedModelError, bad splits...
        _fail(str(exc))
    from tvau.evaluate.report import METRICS, flat

    if as_json:
        typer.echo(json.dumps(flat(result)))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{model} on {data} ({result['split']}: {result['videos']} videos, {result['frames']} frames)")
    for c in ("metric", "T-VAU", "95% interval", "baseline", "95% interval "):
        t.add_column(c)

    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    for k in METRICS:
        m, b = result["model"][k], result["baseline"][k]
        t.add_row(k, fmt(m["value"]), f"[{fmt(m['low'])}, {fmt(m['high'])}]", fmt(b["value"]),
                  f"[{fmt(b['low'])}, {fmt(b['high'])}]")
    Console(stderr=False).print(t)
    if result["per_kind"]:
        kt = Table(title="frame micro-AUC per anomaly kind (kind's videos + all normal videos)")
        for c in ("kind", "videos", "T-VAU", "baseline", "dialogue said yes"):
            kt.add_column(c)
        for kind, row in result["per_kind"].items():
            d = row.get("dialogue")
            kt.add_row(kind, str(row["videos"]), fmt(row["model"]["auc"]["value"]), fmt(row["baseline"]["auc"]["value"]),
                       f"{d['yes']}/{d['asked']}" if d else "n/a")
        Console().print(kt)
    c = result["calibration"]
    typer.echo(f"calibration: threshold {fmt(c['threshold']['value'])} [{fmt(c['threshold']['low'])}, "
               f"{fmt(c['threshold']['high'])}] at false-alarm rate {c['false_alarm_rate']}; recall "
               f"{fmt(c['recall']['value'])} [{fmt(c['recall']['low'])}, {fmt(c['recall']['high'])}] "
               f"({c['anomalous_videos']} anomalous, {c['normal_videos']} normal videos)")
    for note in result["notes"]:
        typer.echo(f"note: {note}", err=True)
