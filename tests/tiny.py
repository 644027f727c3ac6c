"""The tests' one tiny configuration: sizes at which the real components (synthesis, the backbone's
pretraining, both training stages, evaluation) run in seconds on 2 cores. A test that needs another
value overrides that key with `merged` and says why beside it.

Each constant is a params.yaml section (or part of one) as plain data, so a test can validate it into
its config class, merge it over the project's params.yaml, or write it to a scratch project.
"""

from __future__ import annotations

from typing import Any

# Four 64-px videos, one train and one validation video of each class (the project's fractions are
# sized for 210 videos).
SYNTH: dict[str, Any] = {"videos": 4, "size": 64, "frames": 24, "scenes": 2, "anomaly_fraction": 0.5,
                         "train_fraction": 0.5, "validation_fraction": 0.5,
                         "anomaly_mix": {"bicycle": 1, "vehicle": 1}}

# 8-frame 56-px clips: a grid of T'=4 and 4x4 patches.
CLIP: dict[str, Any] = {"num_frames": 8, "stride": 8, "height": 56, "width": 56}

# Adapters 64 wide over the embedded tiny backbone; short generated answers.
MODEL: dict[str, Any] = {"backbone": "embedded:tiny", "ahd_hidden": 64, "rae_hidden": 64, "rae_channels": [8, 8, 8],
                         "max_new_tokens": 8}

# The backbone's pretraining: two optimiser steps of a 32-wide tower (the embedded tiny tower's
# widths) and of a one-layer language model at the merger's width, on 56-px clips of a 128-px world.
PRETRAIN: dict[str, Any] = {
    "world": {"size": 128, "threads": 1},
    "vision": {"steps": 2, "warmup": 1, "clip_frames": 4, "pool_videos": 2, "fresh_videos": 0, "batch": 2,
               "holdout_videos": 1, "width": 32, "heads": 2, "merged_width": 64},
    "language": {"layers": 1, "heads": 4, "kv_heads": 2, "videos": 2, "holdout_videos": 1, "steps": 2, "batch": 2,
                 "warmup": 1, "threads": 1},
}


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over`'s keys replaced, nested dictionaries merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
