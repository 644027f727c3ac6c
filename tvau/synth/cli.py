"""`tvau synth`: render a synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def synth(
    out: Path = typer.Option(..., "--out", help="Output directory (UBnormal layout)."),
    videos: int = typer.Option(60, "--videos", help="Number of videos."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same dataset."),
    size: int = typer.Option(256, "--size", help="Frame width and height in pixels."),
) -> None:
    raise typer.Exit(code=2)  # filled in by the generator work (issue 3)
