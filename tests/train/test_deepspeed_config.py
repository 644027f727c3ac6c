"""The DeepSpeed config the trainer builds: batch arithmetic across ranks, and the example files in
infra/deepspeed/ are exactly what it produces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tvau.train.config import TrainConfig
from tvau.train.engine import deepspeed_config, lr_lambda

INFRA = Path(__file__).resolve().parents[2] / "infra" / "deepspeed"


@pytest.mark.parametrize("zero", [2, 3])
def test_infra_examples_are_what_the_trainer_builds(zero):
    built = deepspeed_config(TrainConfig(zero_stage=zero, precision="bf16"), world=8)
    assert json.loads((INFRA / f"zero{zero}.json").read_text()) == built
    assert built["train_batch_size"] == 8 and built["gradient_accumulation_steps"] == 1


def test_global_batch_does_not_depend_on_ranks():
    cfg = TrainConfig(grad_accum=8, micro_batch=2)
    for world in (1, 2, 4, 8):
        c = deepspeed_config(cfg, world)
        assert c["train_batch_size"] == 16 and c["gradient_accumulation_steps"] * world == 8
    with pytest.raises(ValueError, match="not divisible by the 3 ranks"):
        deepspeed_config(cfg, 3)
    assert "optimizer" not in c and "scheduler" not in c  # torch objects: no JIT-compiled ops on CPU


def test_warmup_then_cosine():
    f = lr_lambda(100, 0.1)
    assert [f(0), f(9)] == [0.1, 1.0] and f(10) == 1.0 and f(55) == pytest.approx(0.5) and f(99) < 0.01


def test_one_process_job_survives_its_picked_port_being_taken(tmp_path):
    """Between _free_port() closing the port and the rendezvous store binding it, another process
    can take it (seen with jobs side by side): init_distributed picks another port and goes on."""
    import subprocess
    import sys

    script = (
        "import os, socket\n"
        "from tvau.train import engine\n"
        "engine.setup_environment()\n"
        "port = int(os.environ['MASTER_PORT'])\n"
        "s = socket.socket(); s.bind(('127.0.0.1', port)); s.listen()\n"
        "print(engine.init_distributed(), port, os.environ['MASTER_PORT'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    r = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ranks, blocked, used = r.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    assert ranks == "(0, 1)" and blocked != used
