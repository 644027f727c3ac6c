"""`tvau pretrain-backbone`: pretrain the embedded backbone (the DVC stage pretrain_backbone; README)."""

from __future__ import annotations

from pathlib import Path

import typer


def pretrain_backbone_cmd(
    out: Path = typer.Option(Path("data/backbone"), "--out", help="Model directory to write (atomically)."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Also write the held-out accuracies here "
                                        "(JSON, no timings, so DVC sees the same file for the same output)."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file (pretrain, clip, model.tiny_seed)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Pretrain the embedded tiny Qwen2.5-VL's vision tower and merger on a synthetic world where
    running, riding, lying, sparring, ... are ordinary (generic per-patch targets, never anomaly
    labels), and save it as a model directory that `model.backbone` can name."""
    from tvau.config import ParamsError, load_params
    from tvau.pretrain.train import pretrain_backbone
    from tvau.storage import write_json

    try:
        p = load_params(params)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if p.pretrain.seed == p.seed:
        typer.echo(f"error: {params}: pretrain.seed ({p.pretrain.seed}) equals the global seed: the pretraining "
                   "world must not be the footage T-VAU is trained and evaluated on", err=True)
        raise typer.Exit(code=2)
    try:
        m = pretrain_backbone(out, p.pretrain, p.clip.height, p.clip.width, p.model.tiny_seed, progress=progress)
    except ValueError as exc:
        typer.echo(f"error: {params}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if metrics is not None:
        write_json(metrics, {"stage": "pretrain_backbone", **m})
    typer.echo(f"wrote {out}: held-out object-patch category accuracy {m['holdout_object_category_accuracy']:.3f}, "
               f"action accuracy {m['holdout_object_action_accuracy']:.3f}")
