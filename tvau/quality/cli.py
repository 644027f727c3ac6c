"""`tvau quality ...`: the data-quality gate."""

from __future__ import annotations

import json
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
    metrics: Path = typer.Option(None, "--metrics", help="Write timing and counts here (JSON)."),
) -> None:
    """Check every table (pandera, cross-table rules, Great Expectations), report the class balance
    and the drops of earlier stages, and build the Data Docs. Exits 1 with a report of every
    failure when any check fails, so `dvc repro` stops before the build stage."""
    from tvau.config import load_params
    from tvau.quality.tables import format_failures
    from tvau.quality.validate import render_markdown, run_validation
    from tvau.storage import atomic_open, write_json

    t0 = time.perf_counter()
    p = load_params(params)
    stage_stats = {}
    for sub in ("annotations", "timelines", "refined"):
        f = construct / sub / "stats.json"
        if f.exists():
            stage_stats[sub] = json.loads(f.read_text())
    report = run_validation(construct, p.quality, stage_stats, docs=docs)
    write_json(out / "report.json", report)
    with atomic_open(out / "report.md", "w", encoding="utf-8") as fh:
        fh.write(render_markdown(report))
    if metrics is not None:
        write_json(metrics, {"stage": "validate", "seconds": round(time.perf_counter() - t0, 2),
                             "passed": report["passed"], "failures": len(report["failures"]), "rows": report["rows"]})
    for s, b in report["balance"].items():
        typer.echo(
            f"{s:>10}: {b['videos']} videos ({b['abnormal_videos']} abnormal), {b['frames']} frames, "
            f"{b['anomalous_frame_share']:.1%} anomalous, targets kept {b.get('targets_kept', 0)}/{b.get('targets', 0)}"
        )
    if not report["passed"]:
        typer.echo(format_failures(report["failures"], str(construct)), err=True)
        typer.echo(f"data-quality gate FAILED: see {out / 'report.md'} and {p.quality.docs_dir}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"data-quality gate passed; Data Docs in {p.quality.docs_dir}")
