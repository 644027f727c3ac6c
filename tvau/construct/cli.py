"""`tvau construct ...`: the annotation construction stages, as run by dvc.yaml.

Each command reads its parameters from params.yaml (only the keys dvc.yaml lists for it), writes
its output directory atomically (validated tables plus stats.json), prints its wall time, and
writes its counts to a metrics file that DVC shows (`dvc metrics show`) but does not cache (no
timings there: the file is tracked, and must come out the same on every run).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)

PARAMS = typer.Option(Path("params.yaml"), "--params", help="Parameters file (params.yaml).")
DATA = typer.Option(Path("data/synth"), "--data", help="Footage root (UBnormal or ShanghaiTech layout).")
CONSTRUCT = typer.Option(Path("data/construct"), "--construct", help="Directory of the construction tables.")


@contextlib.contextmanager
def _stage(name: str, metrics: Path | None) -> Iterator[dict]:
    """Run one stage's body: a readable error (exit 1) instead of a traceback for bad input, then
    the counts the body put in the yielded dict go to the metrics file and, with the wall time,
    to the terminal."""
    from tvau.quality.tables import DataQualityError

    t0 = time.perf_counter()
    stats: dict = {}
    try:
        yield stats
    except (DataQualityError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    if metrics is not None:
        from tvau.storage import write_json

        # No wall time in the file: DVC and git track it, and it must come out the same every run.
        write_json(metrics, {"stage": name, **stats})
    typer.echo(f"{name}: {stats} in {time.perf_counter() - t0:.1f} s")


def _records(data: Path, dataset: str) -> dict:
    from tvau.data import open_dataset

    if not data.exists():
        raise typer.BadParameter(f"{data}: no such footage directory", param_hint="--data")
    return {r.name: r for r in open_dataset(data, dataset)}


def _load_params(path: Path):
    """params.yaml, or one line naming the file and the problem (exit 2)."""
    from tvau.config import ParamsError, load_params

    try:
        return load_params(path)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


@app.command("annotate")
def annotate(
    data: Path = DATA,
    out: Path = typer.Option(Path("data/construct/annotations"), "--out", help="Output directory."),
    params: Path = PARAMS,
    metrics: Path = typer.Option(None, "--metrics", help="Write timing and counts here (JSON)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Stage 1: frame-wise structured annotation -> videos, frames, detections tables."""
    from tvau.construct.choose import make_annotator
    from tvau.construct.frames import annotate_dataset, video_kinds
    from tvau.construct.sidecar import load_attributes
    from tvau.quality.tables import write_tables

    p = _load_params(params)
    with _stage("annotate", metrics) as stats:
        records = _records(data, p.construct.dataset)
        annotator = make_annotator(p.construct, data, p.model)
        tables = annotate_dataset(
            list(records.values()), annotator, p.construct, video_kinds(load_attributes(data)), progress
        )
        stats.update(videos=len(tables["videos"]), frames=len(tables["frames"]),
                     detections=len(tables["detections"]), **dict(annotator.stats))
        write_tables(tables, out, extras={"stats": stats})


@app.command("timelines")
def timelines(
    annotations: Path = typer.Option(Path("data/construct/annotations"), "--annotations", help="Stage 1 output."),
    out: Path = typer.Option(Path("data/construct/timelines"), "--out", help="Output directory."),
    params: Path = PARAMS,
    metrics: Path = typer.Option(None, "--metrics", help="Write timing and counts here (JSON)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Stage 2: link objects across frames -> track_points and timelines tables."""
    from tvau.construct.timelines import build_timelines
    from tvau.quality.tables import read_tables, write_tables

    p = _load_params(params)
    with _stage("timelines", metrics) as stats:
        t = read_tables(annotations, ["videos", "detections"])
        tables, counts = build_timelines(t["videos"], t["detections"], p.construct, progress)
        stats.update(counts)
        write_tables(tables, out, extras={"stats": stats})


@app.command("refine")
def refine(
    data: Path = DATA,
    construct: Path = CONSTRUCT,
    out: Path = typer.Option(Path("data/construct/refined"), "--out", help="Output directory."),
    params: Path = PARAMS,
    metrics: Path = typer.Option(None, "--metrics", help="Write timing and counts here (JSON)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Stage 3: blur the background, re-describe each anomalous target, drop contradictions."""
    from tvau.construct.choose import make_annotator
    from tvau.construct.refine import refine_targets
    from tvau.quality.tables import read_tables, write_tables

    p = _load_params(params)
    with _stage("refine", metrics) as stats:
        a = read_tables(construct / "annotations", ["videos"])
        tl = read_tables(construct / "timelines", ["timelines", "track_points"])
        records = _records(data, p.construct.dataset)
        annotator = make_annotator(p.construct, data, p.model)
        targets, counts = refine_targets(
            records, a["videos"], tl["timelines"], tl["track_points"], annotator, p.construct, progress
        )
        stats.update(counts, **dict(annotator.stats))
        write_tables({"targets": targets}, out, extras={"stats": stats})
    for r in targets.loc[~targets["kept"]].itertuples():
        typer.echo(f"  dropped {r.video} track {r.track_id}: {r.drop_reason}")


# The tables the build stage reads; the quality report must have passed for exactly these bytes.
BUILD_TABLES = ["videos", "timelines", "track_points", "targets"]


@app.command("build")
def build(
    data: Path = DATA,
    construct: Path = CONSTRUCT,
    report: Path = typer.Option(Path("data/quality/report.json"), "--report", help="The validate stage's report."),
    out: Path = typer.Option(Path("data/train"), "--out", help="Output directory."),
    params: Path = PARAMS,
    metrics: Path = typer.Option(None, "--metrics", help="Write timing and counts here (JSON)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Build AHD supervision (pooled-mask shards) and SFT dialogues (phase A, B) per split.

    Refuses to run unless the quality report passed for exactly the tables it reads (their
    SHA-256 digests are in the report); the previous output stays as it was."""
    from tvau.construct.build import build_training_sets, write_manifest
    from tvau.quality.validate import GateError, UnreadableReport, load_report, read_gated_tables
    from tvau.storage import atomic_dir

    p = _load_params(params)
    try:
        verdict = load_report(report)
    except UnreadableReport as exc:  # bad input: exit 2
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except GateError as exc:
        _fail(RuntimeError(f"{exc}; {out} is left untouched"))
    with _stage("build", metrics) as stats:
        tables = read_gated_tables(construct, verdict, BUILD_TABLES, report)  # stale: an error
        records = _records(data, p.construct.dataset)
        with atomic_dir(out) as tmp:
            stats.update(build_training_sets(records, tables, p.clip, p.construct, Path(tmp), progress))
            write_manifest(Path(tmp), stats)
