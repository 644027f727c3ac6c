"""Resumable pretraining: a stopped `tvau pretrain-backbone` run continues where it stopped.

Each part (vision, language) saves its whole training state every `checkpoint_every` steps to
.cache/tvau/pretrain/<part>-<key>.pt, written atomically (a kill mid-write leaves the previous one).
The key is a digest of everything the state depends on: the part's parameters and the source of
the modules its training runs, so a checkpoint of other parameters or other code is never resumed
(and editing the language part keeps the vision part's checkpoint). The state holds
the weights, the optimiser's moments, the random generators' states and the step, so the resumed
run takes the same steps on the same samples and writes the same bytes as an unbroken one
(tests/pretrain/test_pretrain.py checks this). The checkpoint is removed once the output is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHECKPOINT_DIR = Path(".cache/tvau/pretrain")


def checkpoint_path(part: str, settings: dict, modules: list[str], root: Path = CHECKPOINT_DIR) -> Path:
    """Where `part`'s checkpoint for these settings (JSON-able) and the source of these tvau.pretrain
    modules (file stems: "vision", "world") lives."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name in sorted(modules):
        f = Path(__file__).parent / f"{name}.py"
        h.update(f.name.encode() + f.read_bytes())
    return Path(os.environ.get("TVAU_PRETRAIN_CHECKPOINTS", root)) / f"{part}-{h.hexdigest()[:16]}.pt"


def save_checkpoint(path: Path, state: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    """The saved state, or None when there is none. Tensors, numbers, strings and containers only
    (weights_only: a checkpoint cannot run code)."""
    import torch

    if not path.exists():
        return None
    return torch.load(path, weights_only=True)
