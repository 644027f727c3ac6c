"""`tvau pretrain-backbone vision|language`: pretrain the embedded backbone in two parts (the DVC
stages pretrain_vision and pretrain_language; README). Each part resumes from its checkpoint when a
run was stopped (tvau.pretrain.checkpoint)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Pretrain the embedded tiny Qwen2.5-VL: its vision tower, then its language model.",
                  no_args_is_help=True)

_PARAMS = typer.Option(Path("params.yaml"), "--params", help="Parameters file (pretrain, clip, model.tiny_seed).")
_METRICS = typer.Option(None, "--metrics", help="Also write the held-out metrics here (JSON, no timings, so "
                        "DVC sees the same file for the same output).")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")


def _params(params: Path):
    """The sections the pretraining reads (PretrainParams), kernels pinned; or exit 2 with one line."""
    from tvau import cpu
    from tvau.configbase import ParamsError, load_sections
    from tvau.pretrain.config import PretrainParams

    cpu.pin_cpu_kernels()  # before torch: the same pretrained bits on any x86-64 CPU
    try:
        p = load_sections(params, PretrainParams, declared_only=True)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if p.pretrain.world.seed == p.seed:
        typer.echo(f"error: {params}: pretrain.world.seed ({p.seed}) equals the global seed: the pretraining "
                   "world must not be the footage T-VAU is trained and evaluated on", err=True)
        raise typer.Exit(code=2)
    return p


@app.command("vision")
def vision_cmd(
    out: Path = typer.Option(Path("data/backbone_vision"), "--out", help="Model directory to write (atomically)."),
    metrics: Path | None = _METRICS, params: Path = _PARAMS, progress: bool = _PROGRESS,
) -> None:
    """Pretrain the vision tower and merger on a synthetic world where running, riding, lying,
    sparring, ... are ordinary (generic per-patch targets: category, action, velocity, colours and
    garments; never anomaly labels). The language model of the written directory is still random."""
    from tvau.pretrain.vision import pretrain_vision
    from tvau.storage import write_json

    p = _params(params)
    try:
        m = pretrain_vision(out, p.pretrain, p.clip.height, p.clip.width, p.model.tiny_seed, progress=progress)
    except ValueError as exc:
        typer.echo(f"error: {params}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if metrics is not None:
        write_json(metrics, {"stage": "pretrain_vision", **m})
    typer.echo(f"wrote {out}: held-out object-patch category accuracy {m['holdout_object_category_accuracy']:.3f}, "
               f"action {m['holdout_object_action_accuracy']:.3f}, "
               f"top colour from the merged tokens {m['holdout_merged_upper_color_accuracy']:.3f}")


@app.command("language")
def language_cmd(
    vision: Path = typer.Option(Path("data/backbone_vision"), "--vision", help="The vision part's model directory."),
    out: Path = typer.Option(Path("data/backbone"), "--out", help="Model directory to write (atomically)."),
    metrics: Path | None = _METRICS, params: Path = _PARAMS, progress: bool = _PROGRESS,
) -> None:
    """Teach the language model generic dialogues about world videos (what is there, what colour,
    what is X doing, from where to where), the tower frozen, and write the embedded backbone."""
    from tvau.pretrain.language import pretrain_language
    from tvau.storage import write_json

    p = _params(params)
    if not (vision / "config.json").is_file():
        typer.echo(f"error: {vision}: not a model directory (run `tvau pretrain-backbone vision` first)", err=True)
        raise typer.Exit(code=2)
    try:
        m = pretrain_language(vision, out, p.pretrain, p.clip.height, p.clip.width, p.model.tiny_seed,
                              progress=progress)
    except ValueError as exc:
        typer.echo(f"error: {params}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if metrics is not None:
        write_json(metrics, {"stage": "pretrain_language", **m})
    fa, const = m["lm_holdout_field_accuracy"], m["lm_holdout_field_constant"]
    typer.echo(f"wrote {out}: held-out generic answers (a constant answer): "
               + ", ".join(f"{k} {v:.3f} ({const[k]:.3f})" for k, v in fa.items()))
