"""`tvau model ...` sub-commands. Heavy imports (torch, transformers) happen inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

app = typer.Typer(no_args_is_help=True)

def _user_error(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _load_params(path: Path):
    from tvau.config import ParamsError, load_params

    try:
        return load_params(path)
    except ParamsError as exc:
        _user_error(str(exc))


PARAMS_OPT = typer.Option(Path("params.yaml"), "--params", help="Parameters file (model section is used).")


@app.command("info")
def info_cmd(
    arch: str | None = typer.Option(
        None, "--arch", help="Architecture to count instead of the configured backbone: 'tiny' or "
        "'qwen2.5-vl-7b' (built on the meta device: no weights, no network)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (keys ahd, rae, lora, backbone, ...)."),
    params: Path = PARAMS_OPT,
) -> None:
    """Parameter counts per module: AHD, RAE, LoRA and the frozen backbone."""
    import contextlib

    from tvau.jsonout import stdout_to_stderr
    from tvau.model.info import format_json, info

    p = _load_params(params)
    with stdout_to_stderr() if as_json else contextlib.nullcontext():
        try:
            d = info(arch, p.model)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--arch") from None
    if as_json:
        typer.echo(format_json(d))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"T-VAU parameters: {d['arch']}")
    t.add_column("module")
    t.add_column("parameters", justify="right")
    for k in ("ahd", "rae", "lora", "trainable", "backbone", "backbone_vision", "backbone_language"):
        t.add_row(k, f"{d[k]:,}")
    Console().print(t)
    typer.echo(f"taps {d['taps']} of {d['vision_depth']} vision blocks; adapters {d['adapter_mb_fp32']} MB (fp32)")


@app.command("heatmap")
def heatmap_cmd(
    video: Path | None = typer.Option(None, "--video", help="Video file to read the first clip from "
                                         "(default: a synthetic clip with a moving bright square)."),
    out: Path | None = typer.Option(None, "--out", help="Write the (T, H, W) frame heatmap here (.npy)."),
    question: str | None = typer.Option(None, "--ask", help="Also ask the model this question."),
    params: Path = PARAMS_OPT,
) -> None:
    """Run the configured T-VAU model on one clip and print heatmap statistics."""
    import time

    import numpy as np

    from tvau.model.clips import read_clip, synthetic_clip
    from tvau.model.tvau import TVAU

    p = _load_params(params)
    try:
        clip = (read_clip(video, p.clip.num_frames, (p.clip.height, p.clip.width)) if video
                else synthetic_clip(p.clip.num_frames, p.clip.height, p.clip.width))
    except ValueError as exc:  # VideoError included: the message names the file
        _user_error(str(exc))
    model = TVAU.from_params(p)
    t0 = time.perf_counter()
    enc = model.encode(clip)
    frames = model.heatmap_frames(enc).numpy()
    dt = time.perf_counter() - t0
    grid = model.heatmap(enc)
    typer.echo(f"clip {clip.shape} -> grid {tuple(grid.shape)}; heatmap min {grid.min():.3f} "
               f"mean {grid.mean():.3f} max {grid.max():.3f}; {dt * 1000:.0f} ms")
    if question:
        typer.echo(f"Q: {question}\nA: {model.chat(enc, question).answer}")
    if out:
        from tvau.storage import atomic_path

        with atomic_path(out) as tmp, open(tmp, "wb") as fh:  # a file object: np.save adds no suffix
            np.save(fh, frames.astype(np.float32))
        typer.echo(f"wrote {out}")
