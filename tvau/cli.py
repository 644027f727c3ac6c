"""The `tvau` command. Each area registers its own sub-commands from a small module that imports
its heavy dependencies (torch, transformers, DVC...) only inside the commands, so `tvau --help`
stays fast."""

from __future__ import annotations

from pathlib import Path

import typer

from tvau.construct.cli import app as construct_app
from tvau.data.cli import app as data_app
from tvau.evaluate.cli import evaluate_cmd
from tvau.metrics.cli import app as metrics_app
from tvau.model.cli import app as model_app
from tvau.pretrain.cli import app as pretrain_app
from tvau.quality.cli import app as quality_app
from tvau.registry.cli import app as registry_app
from tvau.s3server import s3_server
from tvau.score.cli import score
from tvau.stack.cli import app as stack_app
from tvau.synth.cli import synth
from tvau.train.cli import app as train_app

app = typer.Typer(
    help="T-VAU: text-guided fine-grained video anomaly understanding. "
    "Parameters come from params.yaml (see README).",
    no_args_is_help=True,
    add_completion=False,
)
app.command("synth", help="Render a synthetic surveillance dataset in the UBnormal layout.")(synth)
app.command("evaluate", help="Evaluate a trained model beside the baseline, with bootstrap intervals.")(evaluate_cmd)
app.command("s3-server", help="Run an S3-compatible server on loopback (foreground).")(s3_server)
app.command("score", help="Score the videos under an S3 prefix (the nightly flow, run once).")(score)
app.add_typer(pretrain_app, name="pretrain-backbone",
              help="Pretrain the embedded backbone on its own synthetic world: vision, then language.")
app.add_typer(model_app, name="model", help="Inspect and run the T-VAU model.")
app.add_typer(data_app, name="data", help="Read and inspect datasets (UBnormal, ShanghaiTech).")
app.add_typer(metrics_app, name="metrics", help="Evaluation metrics (AUC, RBDC/TBDC, BLEU).")
app.add_typer(construct_app, name="construct", help="Fine-grained annotation construction stages.")
app.add_typer(quality_app, name="quality", help="Data-quality checks (pandera, Great Expectations).")
app.add_typer(stack_app, name="stack", help="PostgreSQL, S3, MLflow and Prefect servers and a worker on loopback.")
app.add_typer(train_app, name="train", help="Train T-VAU: stage 1 AHD, stage 2 RAE + LoRA (DeepSpeed).")
app.add_typer(registry_app, name="registry", help="Registered model versions, gates, champion promotion and rollback.")


@app.command("lineage")
def lineage_cmd(
    uri: str = typer.Argument(..., help="Model URI (models:/tvau@champion, models:/tvau/3) or a scoring "
                              "manifest's S3 URI (s3://bucket/prefix/<video key>/manifest.json; endpoint and "
                              "credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON. A model: model, version, aliases, uri, run_id, "
                                 "git_commit, params, metrics, datasets, footage. A manifest: manifest, format, "
                                 "scored_at, params_hash, code_version, outputs, model, input, training (the "
                                 "model's lineage, null for an unregistered model)."),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Parameters file (registry section)."),
    verify: bool = typer.Option(False, "--verify", help="Also recompute every digest it reaches (each dataset "
                                "file's md5, the footage, the model's artifacts) and name those that differ; "
                                "exit 1 when any does."),
) -> None:
    """Trace a model back to its run, git commit, parameters, DVC datasets and footage (sha256); or a
    scored video's outputs back to its input and the model version that scored it. Datasets are read
    from the DVC cache, or from the working tree when they are committed to git (`cache: false`)."""
    import json

    from tvau.config import ParamsError, load_params
    from tvau.lineage import LineageError, format_text, lineage
    from tvau.registry.tracking import configure

    try:
        cfg = load_params(params).registry
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    root = params.resolve().parent
    try:
        info = lineage(uri, root, connect=lambda: configure(cfg, root), verify=verify)
    except LineageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(info, indent=1) if as_json else format_text(info))
    checked = info.get("verify") or (info.get("training") or {}).get("verify") or {}
    if checked.get("differ"):
        raise typer.Exit(1)


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
