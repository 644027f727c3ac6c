"""`tvau score`: run the nightly scoring flow once over an S3 prefix.

The endpoint and credentials come from AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Exit status: 0 when every input was scored (or was already up to date) or quarantined; 1 when some
video failed (each is listed); 2 for bad arguments.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer


def score(
    input: str = typer.Option(..., "--input", help="S3 prefix of the footage, e.g. s3://footage/2026-11-25/"),
    output: str = typer.Option(..., "--output", help="S3 prefix for the results, e.g. s3://results/nightly/"),
    model: str | None = typer.Option(
        None, "--model", help="Model URI (models:/tvau@champion, runs:/...) or a local trained-model directory "
        "(default: params.yaml score.model_uri)."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Batches scored at once (threads)."),
    run_date: str | None = typer.Option(None, "--run-date", help="Date of the summary (default: the scheduled start)."),
    dask_workers: int | None = typer.Option(None, "--dask-workers", min=1,
                                            help="Fan batches out over a local Dask cluster of N processes."),
    dask_address: str | None = typer.Option(None, "--dask-address", help="Use an existing Dask scheduler."),
    report_dir: Path | None = typer.Option(None, "--report-dir", help="Also write the report here (local)."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file (score section)."),
    as_json: bool = typer.Option(False, "--json", help="Print only a JSON summary on stdout."),
) -> None:
    """Score every video under --input (heatmaps, scores, regions, explanations) into --output."""
    from tvau.config import ParamsError, load_params
    from tvau.score.s3io import check_uri

    try:
        check_uri(input, "--input")
        check_uri(output, "--output")
        load_params(params)
    except (ValueError, ParamsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if model and not model.startswith(("models:/", "runs:/")) and not Path(model).is_dir():
        typer.echo(f"error: --model {model}: no such trained-model directory", err=True)
        raise typer.Exit(code=2)
    from tvau.score.model import check_calibration
    from tvau.score.verdict import CalibrationError

    try:
        check_calibration(model or load_params(params).score.model_uri)
    except (CalibrationError, ValueError) as exc:  # no calibration.json, or a model that cannot be resolved
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # 2 cores: slow first start
    from flows.score import run

    out = run(input, output, model_uri=model, concurrency=concurrency,
              run_date=run_date, params_path=str(params), dask_address=dask_address, dask_workers=dask_workers,
              report_dir=str(report_dir) if report_dir else None)
    failed = [r for r in out["results"] if r["status"] == "failed"]
    if as_json:
        typer.echo(json.dumps({k: out[k] for k in ("counts", "report", "summary", "clips", "escalated_clips",
                                                    "run_date", "flagged", "monitoring")} | {"failed": failed},
                              sort_keys=True))
    else:
        c = out["counts"]
        typer.echo(f"scored {c['scored']}, up to date {c['skipped']}, quarantined {c['quarantined']}, "
                   f"failed {c['failed']}; {out['flagged']} flagged anomalous; {out['escalated_clips']} of "
                   f"{out['clips']} clips explained by the language model")
        mon = out.get("monitoring") or {}
        if mon.get("drift"):
            typer.echo(f"drift: {'; '.join(mon['reasons'])}")
        typer.echo(f"report: {out['report']}")
        if out.get("local_report"):
            typer.echo(f"local report: {out['local_report']}")
    for r in failed:
        print(f"error: {r['key']}: {r['reason']}", file=sys.stderr)
    raise typer.Exit(code=1 if failed else 0)
