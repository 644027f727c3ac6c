"""A tiny copy of the project for running the real retrain and scoring deployments in a test.

The copy has the project's own dvc.yaml (every stage, unchanged), the code its stages depend on
(tvau/, so DVC hashes the same dependencies), a git history (the MLflow run records its commit)
and a params.yaml that differs from the project's only in sizes: 4 videos of 64 px and 24 frames,
8-frame 56-px clips, a backbone pretrained for 2 steps on a 64-px world, adapters 64 wide, 2 optimizer steps per training stage, 50 bootstrap
resamples, 2 holdout videos, 8-token answers. With that, `dvc repro evaluate` runs every stage of
the real pipeline (pretrain_vision, pretrain_language, synthesise ... build, synthesise_holdout, train_ahd, train_rae, evaluate) in
about a minute instead of twenty.

Its registry/policy.yaml is NOT the project's: a model trained for two steps on four videos
cannot pass the real gates (and must not). The test policy keeps one gate of each kind that the
tiny model clears whatever it learnt (minimums of 0, the champion tolerance at 1), so the flow
goes the whole way: gates -> register -> promote -> champion. registry/policy.yaml is untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "synth": {"videos": 4, "size": 64, "frames": 24, "scenes": 2, "anomaly_fraction": 0.5, "train_fraction": 0.5,
              "validation_fraction": 0.5, "anomaly_mix": {"bicycle": 1, "vehicle": 1}},
    "clip": {"num_frames": 8, "stride": 8, "height": 56, "width": 56},
    "pretrain": {"world": {"size": 64},
                 "vision": {"steps": 2, "warmup": 1, "clip_frames": 4, "pool_videos": 2, "fresh_videos": 1, "batch": 2,
                            "holdout_videos": 1, "width": 32, "heads": 2, "merged_width": 64},
                 "language": {"layers": 1, "heads": 4, "kv_heads": 2, "videos": 2, "holdout_videos": 1, "steps": 2,
                              "batch": 2, "threads": 1}},
    "model": {"ahd_hidden": 64, "rae_hidden": 64, "rae_channels": [8, 8, 8], "max_new_tokens": 8},
    "train": {"grad_accum": 1, "checkpoint_every": 1000, "log_every": 1,
              "ahd": {"epochs": 1, "max_steps": 2}, "rae": {"epochs": 1, "max_steps": 2}, "rae_epochs_b": 1},
    "evaluate": {"bootstrap": 50, "max_new_tokens": 8, "overlays": 1, "holdout_videos": 2},
    "metrics": {"min_region_area": 4},
    "score": {"max_new_tokens": 8, "clip_frames": 8, "stride": 8},
}

TEST_POLICY = """\
# TEST policy of the stack's integration test (tests/stack/tiny_project.py): one gate of each kind,
# set so that a model trained for two steps on four videos passes them. Never the project's policy.
bound: value
minimums: {micro_auc: 0.0, pixel_auroc: 0.0}
above_majority: []
beats_baseline: []
beats_baseline_holdout: []
champion: {metrics: [micro_auc], tolerance: 1.0}
"""


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k) or {}, v) if isinstance(v, dict) and v and isinstance(base.get(k), dict) else v
    return out


def tiny_params(cache_dir: str | Path) -> dict:
    """The project's params.yaml with the TINY sizes; the tiny backbone comes from `cache_dir`
    (absolute, so the copy reuses the checkout's already-built tiny model)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params = _merge(params, TINY)
    params["model"]["cache_dir"] = str(Path(cache_dir).resolve())
    return params


def make_tiny_project(dest: Path, cache_dir: str | Path) -> Path:
    """Create the tiny project at `dest` (git + DVC initialised, one commit) and return it."""
    dest.mkdir(parents=True)
    shutil.copy(REPO / "dvc.yaml", dest)
    shutil.copy(REPO / ".dvcignore", dest)
    shutil.copytree(REPO / "tvau", dest / "tvau", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "params.yaml").write_text(yaml.safe_dump(tiny_params(cache_dir), sort_keys=False))
    (dest / "registry").mkdir()
    (dest / "registry" / "policy.yaml").write_text(TEST_POLICY)
    (dest / ".gitignore").write_text("/data\n/.tvau\n")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    git = ["git", "-c", "user.name=tvau-test", "-c", "user.email=tvau-test@localhost"]
    for cmd in (["git", "init", "-q"], [str(Path(sys.executable).parent / "dvc"), "init", "-q"],
                ["git", "add", "-A"], [*git, "commit", "-qm", "tiny copy of the project"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return dest
