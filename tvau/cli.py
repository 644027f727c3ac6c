"""The `tvau` command. Each area registers its own sub-commands from a small module that imports
its heavy dependencies (torch, transformers, DVC...) only inside the commands, so `tvau --help`
stays fast."""

from __future__ import annotations

from pathlib import Path

import typer

from tvau.construct.cli import app as construct_app
from tvau.data.cli import app as data_app
from tvau.metrics.cli import app as metrics_app
from tvau.model.cli import app as model_app
from tvau.quality.cli import app as quality_app
from tvau.s3server import s3_server
from tvau.score.cli import score
from tvau.synth.cli import synth

app = typer.Typer(
    help="T-VAU: text-guided fine-grained video anomaly understanding. "
    "Parameters come from params.yaml (see README).",
    no_args_is_help=True,
    add_completion=False,
)
app.command("synth", help="Render a synthetic surveillance dataset in the UBnormal layout.")(synth)
app.command("s3-server", help="Run an S3-compatible server on loopback (foreground).")(s3_server)
app.command("score", help="Score the videos under an S3 prefix (the nightly flow, run once).")(score)
app.add_typer(model_app, name="model", help="Inspect and run the T-VAU model.")
app.add_typer(data_app, name="data", help="Read and inspect datasets (UBnormal, ShanghaiTech).")
app.add_typer(metrics_app, name="metrics", help="Evaluation metrics (AUC, RBDC/TBDC, BLEU).")
app.add_typer(construct_app, name="construct", help="Fine-grained annotation construction stages.")
app.add_typer(quality_app, name="quality", help="Data-quality checks (pandera, Great Expectations).")


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", help="Where the report and images go."),
    repro: bool = typer.Option(True, "--repro/--no-repro", help="Run `dvc repro` first (skips what is up to date)."),
) -> None:
    """The main job on the embedded default: build the annotated synthetic dataset with DVC, score
    the baseline, run the T-VAU model on a clip, and write an HTML report."""
    from tvau.demo import main

    main(out.resolve(), repro=repro)


if __name__ == "__main__":
    app()
