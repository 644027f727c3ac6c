"""Two ranks (gloo, under the `deepspeed` launcher) train the same adapters as one process.

ZeRO-3 on two ranks, with gradient accumulation (4 micro-batches per rank per step) and the
feature cache on: the two bugs this pins were both there. (1) The trainer computed the loss
outside DeepSpeed's engine forward, where ZeRO-3 counts micro-steps, so each micro-step
overwrote the gradient partition: a step used only the last micro-batch of each rank (adapters
4.5e-3 off after three Adam steps). (2) A feature-cache hit on one rank and a miss on the other
desynchronised ZeRO-3's all-gathers of the partitioned frozen backbone (gloo aborted with a
collective mismatch).

Tolerance 1e-5 (absolute, on every adapter tensor): the ranks sum the micro-batch gradients in
another order than one process (4 + 4, then a reduce-scatter, against 8 in a row), a float32
rounding difference of ~1e-7 relative that Adam's first steps pass on nearly unchanged: 7.3e-7
measured for ZeRO-3 and 3.7e-8 for ZeRO-2 after 3 steps. 1e-5 is ten times that and 450 times
smaller than the bug's effect. The logged losses must agree to 1e-6.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from tests.train.fixtures import tiny_params
from tvau.train import run_stage

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_launcher_env() -> dict[str, str]:
    """This process's environment without the process-group variables an in-process run_stage set, so a
    `tvau train` subprocess sees no launcher around it."""
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TVAU_PICKED_MASTER_PORT")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_zero3_on_two_ranks_matches_one_process(model_cache, footage, train_set, tmp_path):
    two_ranks = tiny_params(model_cache, footage, zero_stage=3, grad_accum=8, cache_features=True,
                            ahd={"lr": 0.01, "epochs": 1, "max_steps": 2, "warmup_fraction": 0.0})
    one = two_ranks.model_copy(update={"train": two_ranks.train.model_copy(update={"zero_stage": 0})})
    ref = run_stage(one, "ahd", train_set, tmp_path / "one", checkpoint_dir=tmp_path / "ck1", progress="off")

    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(two_ranks.model_dump(mode="json")))
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):  # set by run_stage above
        env.pop(k, None)
    r = subprocess.run(
        [str(BIN / "deepspeed"), "--num_gpus", "2", "--no_local_rank", "--master_port", str(_free_port()),
         "--module", "tvau.cli", "train", "ahd", "--params", str(p), "--data", str(train_set),
         "--out", str(tmp_path / "two"), "--checkpoints", str(tmp_path / "ck2"), "--no-resume"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    summary = json.loads((tmp_path / "two" / "train.json").read_text())
    assert summary["world_size"] == 2 and summary["deepspeed"]["zero_stage"] == 3

    a, b = load_file(ref / "adapters.safetensors"), load_file(tmp_path / "two" / "adapters.safetensors")
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)  # gathered, not a shard
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, f"two ranks differ from one process by {worst:.3g}"
    assert _losses(tmp_path / "two") == pytest.approx(_losses(ref), abs=1e-6)


def test_train_ranks_relaunches_itself_and_shares_the_vision_passes(model_cache, footage, train_set, tmp_path):
    """`train.ranks: 2` with no launcher around `tvau train` (stage 2): the command starts itself under
    the deepspeed launcher, the two ranks share out the frozen vision passes before the first step (no
    feature-cache miss afterwards on rank 0), the adapters equal one process's (1e-5, as above), and
    stage 2's yes/no threshold, fitted from margins computed half on each rank, equals one process's.
    LoRA dropout is off here: each rank draws its own masks (as any data-parallel job does), so with
    dropout two ranks train other adapters than one process by design."""
    two = tiny_params(model_cache, footage, ranks=2, grad_accum=4, encode_batch=2, rae_calibrate_decision=True,
                      ahd={"lr": 0.01, "epochs": 1, "max_steps": 2, "warmup_fraction": 0.0},
                      rae={"lr": 0.01, "epochs": 1, "max_steps": 2, "warmup_fraction": 0.0})
    two = two.model_copy(update={"model": two.model.model_copy(update={"lora_dropout": 0.0})})
    one = two.model_copy(update={"train": two.train.model_copy(update={"ranks": 1})})
    ref_ahd = run_stage(one, "ahd", train_set, tmp_path / "one_ahd", checkpoint_dir=tmp_path / "ck1", progress="off")
    ref = run_stage(one, "rae", train_set, tmp_path / "one", init=ref_ahd, checkpoint_dir=tmp_path / "ck2",
                    progress="off")

    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(two.model_dump(mode="json")))
    env = _no_launcher_env()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # Stage 2 only (from the one-process stage 1): the sharing code is the same for both stages, and
    # each launch of two ranks costs about half a minute of the suite.
    out = tmp_path / "two"
    r = subprocess.run([str(BIN / "tvau"), "train", "rae", "--params", str(p), "--data", str(train_set),
                        "--out", str(out), "--checkpoints", str(tmp_path / "ck_two"), "--no-resume",
                        "--init", str(ref_ahd)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                       check=False)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert json.loads((out / "train.json").read_text())["world_size"] == 2
    assert "/ 0 misses" in log, log[-2000:]  # every clip came from the shared rounds
    a, b = load_file(ref / "adapters.safetensors"), load_file(out / "adapters.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, f"two ranks differ from one process by {worst:.3g}"
    cal_one = json.loads((ref / "train.json").read_text())["decision_calibration"]
    cal_two = json.loads((tmp_path / "two" / "train.json").read_text())["decision_calibration"]
    assert cal_two["clips"] == cal_one["clips"] and cal_two["yes"] == cal_one["yes"]
    assert cal_two["offset"] == pytest.approx(cal_one["offset"], abs=1e-4)
    assert cal_two["train_balanced_accuracy"] == cal_one["train_balanced_accuracy"]


def test_train_ranks_reports_a_bad_training_set_in_one_line_before_any_rank_starts(model_cache, footage, train_set,
                                                                                    tmp_path):
    """With train.ranks 2 the inputs are read before the launcher starts: a malformed SFT file is one
    `error:` line naming it, status 2, and no launcher output (which would repeat it per rank)."""
    import shutil

    broken = tmp_path / "train"
    shutil.copytree(train_set, broken)
    (broken / "sft" / "phase_b_train.jsonl").write_text('{"video": "v", "start": 0, "messages": [}\n')
    params = tiny_params(model_cache, footage, ranks=2)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    env = _no_launcher_env()
    ahd = run_stage(params.model_copy(update={"train": params.train.model_copy(update={"ranks": 1})}), "ahd",
                    train_set, tmp_path / "ahd", checkpoint_dir=tmp_path / "ck", progress="off")
    r = subprocess.run([str(BIN / "tvau"), "train", "rae", "--params", str(p), "--data", str(broken),
                        "--init", str(ahd), "--out", str(tmp_path / "out")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "phase_b_train.jsonl:1" in lines[0], r.stderr
    assert "launch" not in r.stdout + r.stderr and not (tmp_path / "out").exists()


def test_two_ranks_stopped_and_resumed_train_the_uninterrupted_adapters(model_cache, footage, train_set, tmp_path):
    """Stage 2 with LoRA dropout on two ranks: a run stopped after 3 steps (`--stop-after 3`, status 75,
    a checkpoint at step 3) and rerun resumes to the same adapter bytes as an uninterrupted run. Each
    rank draws its own dropout masks, so each rank's RNG state must come back; DeepSpeed writes the
    client state from rank 0 only, and with one saved state rank 1 resumed with rank 0's."""
    params = tiny_params(model_cache, footage, ranks=2, grad_accum=4, checkpoint_every=2,
                         rae={"lr": 0.01, "epochs": 1, "max_steps": 5, "warmup_fraction": 0.0})
    assert params.model.lora_dropout > 0
    one = params.model_copy(update={"train": params.train.model_copy(update={"ranks": 1})})
    ahd = run_stage(one, "ahd", train_set, tmp_path / "ahd", checkpoint_dir=tmp_path / "ck_ahd", progress="off")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    env = _no_launcher_env()

    def train(out: str, ck: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "tvau"), "train", "rae", "--params", str(p), "--data", str(train_set),
                               "--init", str(ahd), "--out", str(tmp_path / out), "--checkpoints", str(tmp_path / ck),
                               *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                              check=False)

    whole = train("whole", "ck_whole")
    assert whole.returncode == 0, (whole.stdout + whole.stderr)[-3000:]
    stopped = train("resumed", "ck_resumed", "--stop-after", "3")
    assert stopped.returncode == 75, (stopped.stdout + stopped.stderr)[-3000:]
    assert "stopped after step 3/5" in stopped.stderr and not (tmp_path / "resumed").exists()
    resumed = train("resumed", "ck_resumed")
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert "at step 3/5" in resumed.stdout + resumed.stderr  # resumed, not restarted
    for name in ("adapters.safetensors", "train_log.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
