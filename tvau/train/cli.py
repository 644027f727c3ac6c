"""`tvau train ahd|rae`: one stage of training (the DVC stages train_ahd and train_rae call these).

With `train.ranks: 1` this is one DeepSpeed process. With more, and no launcher around it, the command
starts itself again under the `deepspeed` launcher with that many ranks on this machine (gloo on CPU).
On GPUs or several nodes run the launcher yourself, e.g.
    deepspeed --num_gpus 8 --no_local_rank -m tvau.cli train ahd
(the launcher sets RANK/WORLD_SIZE/...; see infra/deepspeed/ for several nodes); train.ranks is then
ignored."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from tvau import cpu

app = typer.Typer(no_args_is_help=True)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def _run(stage: str, data: Path, out: Path, init: Path | None, params_path: Path, checkpoints: Path | None,
         resume: bool, stop_after: int = 0) -> None:
    cpu.pin_cpu_kernels()  # before torch: the same trained bits on any x86-64 CPU (DeepSpeed's ranks inherit it)
    from tvau.config import ParamsError, load_params
    from tvau.model.trained import TrainedModelError
    from tvau.train.data import TrainingDataError

    try:
        params = load_params(params_path)
    except ParamsError as exc:
        _fail(str(exc))
    if not data.is_dir():
        _fail(f"{data}: no such training-set directory (run `dvc repro build`)")
    if not Path(params.train.footage).is_dir():
        _fail(f"{params.train.footage}: no such footage directory (params train.footage)")
    if params.train.ranks > 1 and "WORLD_SIZE" not in os.environ:
        # Read the inputs here first: a bad training set or stage-1 model then fails in one line with
        # status 2, not once per rank between the launcher's log lines.
        from tvau.train.loop import check_init, stage_samples

        try:
            check_init(params, stage, init)
            stage_samples(params.train, stage, data)
        except (TrainingDataError, TrainedModelError, FileNotFoundError) as exc:
            _fail(str(exc))
        args = ["train", stage, "--data", str(data), "--out", str(out), "--params", str(params_path),
                "--resume" if resume else "--no-resume", "--stop-after", str(stop_after)]
        args += ["--init", str(init)] if init is not None else []
        args += ["--checkpoints", str(checkpoints)] if checkpoints is not None else []
        raise typer.Exit(code=_launch(params.train.ranks, args))
    from tvau.train.loop import TrainingStopped, run_stage

    try:
        run_stage(params, stage, data, out, init=init, checkpoint_dir=checkpoints, resume=resume,
                  progress="bar" if sys.stderr.isatty() else "lines", stop_after=stop_after)
    except (TrainingDataError, TrainedModelError, FileNotFoundError) as exc:
        _fail(str(exc))
    except TrainingStopped as stopped:
        if os.environ.get("RANK", "0") == "0":
            typer.echo(str(stopped), err=True)
        raise typer.Exit(code=STOPPED) from None
    if os.environ.get("RANK", "0") == "0":
        typer.echo(f"wrote {out}")


def _launch(ranks: int, args: list[str]) -> int:
    """Run `tvau ARGS` (this command) under the deepspeed launcher with `ranks` local ranks; its exit status.
    Arguments were checked here first, so a user error still fails in one line before any rank starts."""
    import subprocess

    from tvau.train.engine import _free_port, on_gpu

    env = dict(os.environ)
    if not on_gpu():
        env["DS_ACCELERATOR"] = "cpu"
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", str(ranks), "--no_local_rank",
           "--master_port", str(_free_port()), "--module", "tvau.cli", *args]
    return subprocess.run(cmd, env=env, check=False).returncode


STOPPED = 75  # EX_TEMPFAIL: --stop-after ended the run early; rerun to resume
STOP = typer.Option(0, "--stop-after", min=0, help="Stop after this many optimiser steps of this run, leaving a "
                    f"checkpoint (exit status {STOPPED}); the next run resumes there. 0: train to the end.")
DATA = typer.Option(Path("data/train"), "--data", help="Training sets (the output of `tvau construct build`).")
PARAMS = typer.Option(Path("params.yaml"), "--params", help="Parameters file (sections model, clip, train).")
CKPT = typer.Option(None, "--checkpoints", help="Resumable checkpoints (default .tvau/checkpoints/STAGE).")
RESUME = typer.Option(True, "--resume/--no-resume", help="Continue from the newest matching checkpoint.")


@app.command("ahd")
def train_ahd(
    data: Path = DATA,
    out: Path = typer.Option(Path("data/models/ahd"), "--out", help="Trained-model directory to write."),
    params: Path = PARAMS,
    checkpoints: Path | None = CKPT,
    resume: bool = RESUME,
    stop_after: int = STOP,
) -> None:
    """Stage 1: train AHD (pixel cross-entropy on the pooled masks), backbone frozen."""
    _run("ahd", data, out, None, params, checkpoints, resume, stop_after)


@app.command("rae")
def train_rae(
    data: Path = DATA,
    init: Path = typer.Option(Path("data/models/ahd"), "--init", help="The stage-1 trained-model directory."),
    out: Path = typer.Option(Path("data/models/tvau"), "--out", help="Trained-model directory to write."),
    params: Path = PARAMS,
    checkpoints: Path | None = CKPT,
    resume: bool = RESUME,
    stop_after: int = STOP,
) -> None:
    """Stage 2: train RAE + LoRA with AHD frozen, curriculum phase A then phase B."""
    if not init.is_dir():
        _fail(f"{init}: no such stage-1 model directory (run `tvau train ahd` first)")
    _run("rae", data, out, init, params, checkpoints, resume, stop_after)
