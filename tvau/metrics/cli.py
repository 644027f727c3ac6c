"""`tvau metrics ...` sub-commands. Heavy imports (cv2, scipy, sklearn) happen inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def _metrics_config(params: Path):
    from tvau.config import ParamsError, load_params

    try:
        return load_params(params).metrics
    except ParamsError as exc:
        _fail(str(exc))


@app.command("rbdc-tbdc")
def rbdc_tbdc_cmd(
    tracks: Path = typer.Option(
        ...,
        "--tracks",
        help="Folder of ground-truth track files, one per video "
        "(stem = video name), rows track_id,frame,x1,y1,x2,y2 (inclusive boxes).",
    ),
    detections: Path = typer.Option(
        ...,
        "--detections",
        help="Folder of detection files, one per video (stem = video name), rows frame,x1,y1,x2,y2,score.",
    ),
    num_frames: int = typer.Option(
        ...,
        "--num-frames",
        help="Frames of ALL evaluated videos (normal ones "
        "included): the false-positive rate is false positives per frame.",
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", help="IoU threshold (default: params.yaml metrics.rbdc_alpha)."
    ),
    beta: float | None = typer.Option(
        None, "--beta", help="Track share (default: params.yaml metrics.tbdc_beta)."
    ),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file."),
    as_json: bool = typer.Option(False, "--json", help='Print {"rbdc": ..., "tbdc": ...}.'),
) -> None:
    """RBDC and TBDC (Ramachandra & Jones 2020) from per-video text files.

    Both are areas in [0, 1] under the detection-rate vs false-positives-per-frame curve over FPR in
    [0, 1]; tvau/metrics/regions.py states the exact definition."""
    from tvau.metrics.formats import FormatError, read_detections_dir, read_tracks_dir
    from tvau.metrics.regions import rbdc_tbdc

    cfg = _metrics_config(params)
    try:
        gt = read_tracks_dir(tracks)
        det = read_detections_dir(detections)
        res = rbdc_tbdc(
            gt,
            det,
            num_frames,
            alpha=cfg.rbdc_alpha if alpha is None else alpha,
            beta=cfg.tbdc_beta if beta is None else beta,
        )
    except (FormatError, ValueError) as exc:
        _fail(str(exc))
    unknown = sorted(set(det) - set(gt))
    if unknown and not as_json:
        typer.echo(
            f"note: {len(unknown)} detection file(s) without a tracks file (all false positives), "
            f"e.g. {unknown[0]}",
            err=True,
        )
    if as_json:
        typer.echo(json.dumps({"rbdc": res.rbdc, "tbdc": res.tbdc}))
    else:
        typer.echo(
            f"RBDC {res.rbdc:.4f}\nTBDC {res.tbdc:.4f}\n"
            f"({res.num_regions} regions, {res.num_tracks} tracks, {num_frames} frames)"
        )


@app.command("evaluate-baseline")
def evaluate_baseline_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset root (e.g. the output of `tvau synth`)."),
    fmt: str = typer.Option("ubnormal", "--format", help="Dataset layout: ubnormal | shanghaitech."),
    split: str = typer.Option("validation", "--split", help="train | validation | test | all."),
    regions: str | None = typer.Option(
        None,
        "--regions",
        help="Heatmap -> boxes option: components | boxes (default: params.yaml metrics.regions).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the metrics here (JSON, atomic)."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N videos of the split."),
) -> None:
    """Evaluate the non-learned baseline scorer on one split of a dataset.

    Prints micro/macro frame AUC, pixel AUROC, mIoU, RBDC and TBDC (percent); --json prints every
    field, --out writes metrics.json."""
    from tvau.baseline import BaselineScorer
    from tvau.data import open_dataset
    from tvau.evaluate import evaluate, select_split, write_metrics_json

    cfg = _metrics_config(params)
    if regions is not None:
        if regions not in ("components", "boxes"):
            _fail(f"--regions must be components or boxes, got {regions!r}")
        cfg = cfg.model_copy(update={"regions": regions})
    try:
        records = select_split(open_dataset(data, fmt), split)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if limit is not None:
        records = records[:limit]
    try:
        metrics = evaluate(
            records,
            BaselineScorer(cfg.baseline),
            cfg,
            scorer_name=BaselineScorer.name,
            progress=sys.stderr.isatty(),
        )
    except ValueError as exc:
        _fail(str(exc))
    metrics["split"] = split
    metrics["data"] = str(data)
    if out is not None:
        write_metrics_json(metrics, out)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{BaselineScorer.name}, split {split}")
    table.add_column("metric")
    table.add_column("value (%)", justify="right")
    for key in ("micro_auc", "macro_auc", "pixel_auroc", "miou", "rbdc", "tbdc"):
        v = metrics[key]
        table.add_row(key, "n/a" if v is None else f"{100 * v:.1f}")
    Console().print(table)
    typer.echo(
        f"{data}: {metrics['videos']} videos, {metrics['frames']} frames "
        f"({metrics['anomalous_frames']} anomalous); regions {cfg.regions!r}: "
        f"{metrics['detections']} detections"
    )
    for note in metrics["notes"]:
        typer.echo(f"note: {note}", err=True)
