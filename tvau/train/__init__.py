"""DeepSpeed training of T-VAU's two stages (AHD, then RAE + LoRA) on the frozen backbone.

    from tvau.train import run_stage
    run_stage(params, "ahd", "data/train", "data/models/ahd")
    run_stage(params, "rae", "data/train", "data/models/tvau", init="data/models/ahd")
"""

from __future__ import annotations


def run_stage(*args, **kwargs):
    """See tvau.train.loop.run_stage (imported lazily: DeepSpeed and torch are heavy)."""
    from tvau.train.loop import run_stage as _run

    return _run(*args, **kwargs)


__all__ = ["run_stage"]
