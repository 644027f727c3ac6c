"""`tvau quality ...`: the data-quality gate."""

from __future__ import annotations

import time
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("validate")
def validate(
    construct: Path = typer.Option(Path("data/construct"), "--construct", help="Directory of the construction tables."),
    out: Path = typer.Option(Path("data/quality"), "--out", help="Where report.json and report.md go."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file (params.yaml)."),
    docs: bool = typer.Option(True, "--docs/--no-docs", help="Run the Great Expectations suite and build Data Docs."),
    metrics: Path = typer.Option(None, "--metrics", help="Write the verdict and counts here (JSON)."),
) -> None:
    """Check every table (pandera, cross-table rules, Great Expectations), report the class balance
    and the drops of earlier stages, and build the Data Docs. Exits 1 with a report of every
    failure when any check fails, so `dvc repro` stops before the build stage.

    The previous report is removed before anything else: whatever happens next (a failure, an
    interrupt, a crash), no earlier verdict is left for the build stage to trust."""
    from tvau.config import ParamsError, load_params
    from tvau.quality.tables import format_failures
    from tvau.quality.validate import render_markdown, run_validation
    from tvau.storage import atomic_open, write_json

    for stale in (out / "report.json", out / "report.md"):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        p = load_params(params)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    report = run_validation(construct, p.quality, docs=docs)
    write_json(out / "report.json", report)
    with atomic_open(out / "report.md", "w", encoding="utf-8") as fh:
        fh.write(render_markdown(report))
    if metrics is not None:
        # No wall time here: the metrics file is tracked by DVC and git and must be reproducible.
        write_json(metrics, {"stage": "validate", "passed": report["passed"], "failures": len(report["failures"]),
                             "not_run": len(report["not_run"]), "rows": report["rows"]})
    for s, b in report["balance"].items():
        typer.echo(
            f"{s:>10}: {b['videos']} videos ({b['abnormal_videos']} abnormal), {b['frames']} frames, "
            f"{b['anomalous_frame_share']:.1%} anomalous, targets kept {b.get('targets_kept', 0)}/{b.get('targets', 0)}"
        )
    typer.echo(f"validate: {time.perf_counter() - t0:.1f} s")
    if not report["passed"]:
        typer.echo(format_failures(report["failures"], str(construct)), err=True)
        for n in report["not_run"]:
            typer.echo(f"  not run: {n['check']} [{n['table']}] (needs {', '.join(n['needs'])})", err=True)
        typer.echo(f"data-quality gate FAILED: see {out / 'report.md'} and {p.quality.docs_dir}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"data-quality gate passed; Data Docs in {p.quality.docs_dir}")
