"""`tvau data ...` sub-commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("inspect")
def inspect(
    directory: Path = typer.Argument(..., help="Root of the dataset tree."),
    fmt: str = typer.Option("ubnormal", "--format", help="Layout: ubnormal (also our synthetic footage) | shanghaitech."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys: videos, frames, "
                                 "anomalous_frames, tracks, regions, region_words, splits, per_video)."),
    per_video: bool = typer.Option(False, "--per-video", help="Also list every video (table output)."),
) -> None:
    """Read a dataset and print its videos, frames, anomalous frames, tracks and regions.

    Fails with exit code 2 and a message naming the file on a malformed tree (missing annotation
    folder, unreadable PNG, track rows outside the video, ...)."""
    from tvau.data import FORMATS, open_dataset
    from tvau.data.inspect import summarize

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)}, got {fmt!r}", err=True)
        raise typer.Exit(code=2)
    try:
        records = open_dataset(directory, fmt)
    except (ValueError, OSError) as exc:  # DatasetError and VideoError are ValueErrors
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    summary = summarize(records, fmt, str(directory))
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{fmt}: {directory}")
    cols = ("videos", "abnormal_videos", "frames", "anomalous_frames", "tracks", "regions")
    table.add_column("split")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for split, c in summary["splits"].items():
        table.add_row(split, *(str(c[k]) for k in cols))
    table.add_row("all", *(str(summary[k]) for k in cols), style="bold")
    console = Console()
    console.print(table)
    console.print("regions by 3x3 cell: " + ", ".join(f"{w} {n}" for w, n in summary["region_words"].items()))
    if per_video:
        vt = Table()
        for c in ("name", "split", "frames", "anomalous_frames", "tracks", "regions"):
            vt.add_column(c)
        for v in summary["per_video"]:
            vt.add_row(v["name"], str(v["split"]), str(v["frames"]), str(v["anomalous_frames"]),
                       str(v["tracks"]), str(v["regions"]))
        console.print(vt)
