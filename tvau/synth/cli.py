"""`tvau synth`: render a synthetic dataset in the UBnormal layout."""

from __future__ import annotations

from pathlib import Path

import typer


def _mix(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, _, w = part.partition("=")
        try:
            out[k.strip()] = float(w) if w else 1.0
        except ValueError:
            raise typer.BadParameter(f"weight of {k!r} is not a number: {w!r}") from None
    return out


def synth(
    out: Path = typer.Option(..., "--out", help="Output directory (UBnormal layout); written atomically."),
    videos: int | None = typer.Option(None, "--videos", help="Number of videos (default: params.yaml synth.videos)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed; same seed, same dataset (default: params.yaml seed)."),
    size: int | None = typer.Option(None, "--size", help="Frame width and height in pixels, even (default: params.yaml synth.size)."),
    scenes: int | None = typer.Option(None, "--scenes", help="Distinct fixed cameras (default: params.yaml synth.scenes)."),
    frames: int | None = typer.Option(None, "--frames", help="Frames per video, >= 24 (default: params.yaml synth.frames)."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of the mp4 files (default: params.yaml synth.fps)."),
    anomaly_fraction: float | None = typer.Option(None, "--anomaly-fraction", help="Share of abnormal videos (default: params.yaml synth.anomaly_fraction)."),
    anomaly_mix: str | None = typer.Option(None, "--anomaly-mix", help="Kinds and weights, e.g. 'running=2,falling=1,vehicle' "
                                           "(kinds: tvau.vocab.ANOMALY_KINDS) (default: params.yaml synth.anomaly_mix; empty = all kinds equal)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: CPU count). Does not change the output."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists (swapped in only when complete)."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file (synth section and seed)."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Write the counts and the video codec used here (JSON)."),
) -> None:
    """Render fixed-camera surveillance videos with pedestrians and anomaly events, with
    object-ID PNGs, tracks, split lists, object names, attributes and a manifest."""
    import time

    from pydantic import ValidationError

    from tvau.config import ParamsError, load_params
    from tvau.synth.generate import generate
    from tvau.video import VideoError

    try:
        p = load_params(params)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    overrides = {k: v for k, v in {"videos": videos, "size": size, "scenes": scenes, "frames": frames, "fps": fps,
                                     "anomaly_fraction": anomaly_fraction}.items() if v is not None}
    if anomaly_mix is not None:
        overrides["anomaly_mix"] = _mix(anomaly_mix)
    try:
        cfg = type(p.synth).model_validate({**p.synth.model_dump(), **overrides})
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'synth'}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid synth parameters: {msgs}", err=True)
        raise typer.Exit(code=2) from None
    seed = p.seed if seed is None else seed
    t0 = time.perf_counter()
    try:
        manifest = generate(out, cfg, seed, workers=workers, overwrite=overwrite)
    except (FileExistsError, VideoError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    c = manifest["counts"]
    if metrics is not None:
        from tvau.storage import write_json

        # The codec used is part of what the footage is (byte-identical per seed and codec); no
        # wall time here, the file is tracked and must reproduce.
        write_json(metrics, {"stage": "synthesise", "codec": manifest["codec"], **c})
    typer.echo(f"wrote {out}: {c['videos']} videos ({c['abnormal_videos']} abnormal), {c['frames']} frames, "
               f"{c['anomalous_frames']} anomalous, {c['anomalous_objects']} anomalous objects, {manifest['codec']} "
               f"in {time.perf_counter() - t0:.1f} s")
