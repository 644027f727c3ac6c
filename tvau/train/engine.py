"""DeepSpeed set-up for CPU (one process, gloo) and GPU (the `deepspeed` launcher), one code path.

CPU facts this relies on (DeepSpeed on CPU): the process-group variables must exist
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), else DeepSpeed tries MPI discovery;
DS_ACCELERATOR=cpu selects the CPU accelerator; passing a torch optimizer object (no `optimizer`
block) and switching off the shm comm op avoid JIT-compiling C++ ops (~2 minutes on 2 cores);
ZeRO >= 1 with a non-DeepSpeed optimizer needs zero_allow_untested_optimizer.

GPU: `deepspeed --num_gpus N -m tvau.cli train ahd ...` (or a hostfile for several nodes, see
infra/deepspeed/) sets the variables itself; precision bf16 turns on DeepSpeed's bf16 mode (bf16
weights and activations with fp32 master weights in the optimizer wrapper).
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterable

import torch

from tvau.train.config import StageConfig, TrainConfig


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_gpu() -> bool:
    return torch.cuda.is_available() and os.environ.get("DS_ACCELERATOR", "") != "cpu"


def setup_environment() -> None:
    """Make a plain `python`/`tvau` process a one-rank DeepSpeed job unless a launcher already set
    the process-group variables. Idempotent."""
    if not on_gpu():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(_free_port())
        os.environ["TVAU_PICKED_MASTER_PORT"] = os.environ["MASTER_PORT"]
    import deepspeed.ops

    # No JIT build of the shared-memory all-reduce op on CPU; gloo does the collectives.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def init_distributed() -> tuple[int, int]:
    """(rank, world size) after initialising the process group once (gloo on CPU, nccl on GPU)."""
    setup_environment()
    import deepspeed
    from deepspeed import comm as dist

    if not dist.is_initialized():
        for attempt in range(5):
            try:
                deepspeed.init_distributed(dist_backend="nccl" if on_gpu() else "gloo", verbose=False)
                break
            except torch.distributed.DistNetworkError as exc:
                # A one-process job whose port we picked: another process can take that port between
                # _free_port() closing it and the store binding it (seen with jobs running side by
                # side). Pick another; a launcher's port is its own business, so that error stands.
                picked = os.environ.get("TVAU_PICKED_MASTER_PORT") == os.environ.get("MASTER_PORT")
                if not picked or "EADDRINUSE" not in str(exc) or attempt == 4:
                    raise
                os.environ["MASTER_PORT"] = os.environ["TVAU_PICKED_MASTER_PORT"] = str(_free_port())
    return dist.get_rank(), dist.get_world_size()


def deepspeed_config(cfg: TrainConfig, world: int) -> dict:
    """The DeepSpeed config dict. The optimizer and scheduler are torch objects passed to
    deepspeed.initialize (no `optimizer`/`scheduler` block: that would JIT-compile DeepSpeed's
    fused Adam on CPU), so their state is still saved in DeepSpeed checkpoints."""
    if cfg.grad_accum % world:
        raise ValueError(f"train.grad_accum {cfg.grad_accum} is not divisible by the {world} ranks: "
                         "the global batch must stay micro_batch x grad_accum clips whatever the ranks")
    if cfg.zero_stage == 3 and not on_gpu() and world == 1:
        raise ValueError("train.zero_stage 3 partitions parameters across ranks: use it with the "
                         "deepspeed launcher (several ranks) or on GPU; on one CPU process use 0-2")
    accum = cfg.grad_accum // world
    conf = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch,
        "gradient_accumulation_steps": accum,
        "train_batch_size": cfg.micro_batch * accum * world,
        "gradient_clipping": cfg.gradient_clipping,
        "zero_optimization": {"stage": cfg.zero_stage},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # we log ourselves (rank 0, on_log)
        "wall_clock_breakdown": False,
    }
    if cfg.precision == "bf16":
        conf["bf16"] = {"enabled": True}
    return conf


def lr_lambda(total_steps: int, warmup_fraction: float):
    """Linear warm-up to the peak over warmup_fraction of the steps, then cosine decay to 0."""
    warm = max(1, math.ceil(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if total_steps <= warm:
            return 1.0
        p = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * p))

    return f


def initialize(model: torch.nn.Module, params: Iterable[torch.nn.Parameter], cfg: TrainConfig,
               stage_cfg: StageConfig, total_steps: int, world: int):
    """deepspeed.initialize with a torch AdamW and a LambdaLR schedule over `total_steps`."""
    import deepspeed

    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=stage_cfg.lr, weight_decay=stage_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total_steps, stage_cfg.warmup_fraction))
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=opt, lr_scheduler=sched, config=deepspeed_config(cfg, world),
        dist_init_required=False)
    return engine, optimizer, scheduler
