"""A tiny copy of the project for running the real retrain and scoring deployments in a test.

The copy has the project's own dvc.yaml (every stage, unchanged), the code its stages depend on
(tvau/, so DVC hashes the same dependencies), a git history (the MLflow run records its commit)
and a params.yaml that differs from the project's only in sizes: the tests' tiny configuration
(tests/tiny.py) with 2 optimizer steps per training stage, 50 bootstrap resamples, 2 holdout videos
and 8-token answers. With that, `dvc repro evaluate` runs every stage of the real pipeline
(pretrain_vision, pretrain_language, synthesise ... build, synthesise_holdout, train_ahd, train_rae,
evaluate) in about a minute instead of twenty.

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

from tests.tiny import CLIP, MODEL, PRETRAIN, SYNTH, merged

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "synth": SYNTH,
    "clip": CLIP,
    "pretrain": PRETRAIN,
    "model": MODEL,
    "train": {"grad_accum": 1, "ranks": 1, "checkpoint_every": 1000, "log_every": 1,
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


def tiny_params(cache_dir: str | Path) -> dict:
    """The project's params.yaml with the TINY sizes; the tiny backbone comes from `cache_dir`
    (absolute, so the copy reuses the checkout's already-built tiny model)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params = merged(params, TINY)
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
