"""The DVC pipeline (dvc.yaml) end to end, in a scratch copy of the project with tiny parameters:
`dvc repro` twice (the second does nothing), a changed parameter reruns exactly its dependants,
and `dvc push` / `dvc pull` through the default local remote and through S3 against the project's
own S3 server on loopback."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tiny import CLIP, PRETRAIN, SYNTH, merged
from tvau.s3server import running_s3_server

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment's bin: tvau and dvc live here
STAGES = ["pretrain_vision", "pretrain_language", "synthesise", "annotate", "timelines", "refine", "validate", "build"]

pytestmark = [pytest.mark.slow, pytest.mark.services]


def _dvc(repo: Path, *args: str, env: dict | None = None, expect_fail: bool = False) -> str:
    e = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    res = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, capture_output=True, text=True,
                         env={**e, **(env or {})}, check=False)
    if expect_fail:
        assert res.returncode != 0, f"dvc {' '.join(args)} was expected to fail:\n{res.stdout}"
    else:
        assert res.returncode == 0, f"dvc {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


def _set_param(repo: Path, dotted: str, value) -> None:
    p = yaml.safe_load((repo / "params.yaml").read_text())
    node = p
    *parents, leaf = dotted.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def _digest_tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A scratch project: dvc.yaml, the code the stages depend on, tiny params, `dvc init`."""
    repo = tmp_path_factory.mktemp("dvcrepo")
    # Only the dataset stages: training and evaluation have their own tests (tests/train,
    # tests/evaluate) and would make this one take minutes.
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    pipeline["stages"] = {k: v for k, v in pipeline["stages"].items() if k in STAGES}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    shutil.copy(ROOT / ".dvcignore", repo)
    shutil.copytree(ROOT / "tvau", repo / "tvau", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # The tests' tiny sizes (tests/tiny.py), with one fresh pretraining video rendered by the helper
    # process, so the determinism check below covers it. The footage keeps the project's anomaly mix
    # and scenes (its walkers are what the quality gate's checks below act on), at SYNTH's size and
    # count, 48 frames long.
    params["synth"] = {**params["synth"], "frames": 48,
                       **{k: SYNTH[k] for k in ("videos", "size", "train_fraction", "validation_fraction")}}
    params["clip"] = {**params["clip"], "height": CLIP["height"], "width": CLIP["width"]}
    params["pretrain"] = merged(params["pretrain"], merged(PRETRAIN, {"vision": {"fresh_videos": 1}}))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _dvc(repo, "init", "--no-scm", "-q")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the project's remotes
    _dvc(repo, "config", "core.no_scm", "true")  # a scratch copy, not a git checkout
    return repo


def test_repro_is_incremental_and_param_changes_rerun_exactly_their_dependants(repo):
    out = _dvc(repo, "repro")
    assert _ran(out) == STAGES
    assert (repo / "dvc.lock").exists() and (repo / "data" / "quality" / "data_docs" / "index.html").exists()
    # Every output and metrics file is deterministic: running every stage again gives the same
    # dvc.lock (no timings, no timestamps), so a fresh clone reproduces the committed lock.
    lock = (repo / "dvc.lock").read_text()
    metrics = _digest_tree(repo / "data" / "metrics")
    assert _ran(_dvc(repo, "repro", "--force")) == STAGES
    assert (repo / "dvc.lock").read_text() == lock
    assert _digest_tree(repo / "data" / "metrics") == metrics
    assert "up to date" in _dvc(repo, "status")
    train = _digest_tree(repo / "data" / "train")
    timelines = _digest_tree(repo / "data" / "construct" / "timelines")
    assert any(k.startswith("sft/phase_b_") for k in train) and "clips.parquet" in train

    out = _dvc(repo, "repro")
    assert _ran(out) == [] and "Data and pipelines are up to date" in out

    # clip.stride is read by build only
    _set_param(repo, "clip.stride", 8)
    assert _ran(_dvc(repo, "repro")) == ["build"]
    assert _digest_tree(repo / "data" / "train") != train

    # blur_sigma is read by refine only; with the oracle describer the targets table comes out
    # identical, so DVC rightly finds validate and build up to date
    _set_param(repo, "construct.blur_sigma", 3.0)
    assert _ran(_dvc(repo, "repro")) == ["refine"]

    # max_drop_fraction is read by validate only; its report does not change, so build stays
    _set_param(repo, "quality.max_drop_fraction", 0.5)
    assert _ran(_dvc(repo, "repro")) == ["validate"]

    # fast_speed = 0.05 calls every walker "fast": timelines and refine rerun, the consistency
    # check now drops walkers described as walking... and the gate stops the pipeline before
    # build, whose output stays exactly as it was
    train = _digest_tree(repo / "data" / "train")
    _set_param(repo, "quality.max_drop_fraction", 0.0)
    _set_param(repo, "construct.fast_speed", 0.05)
    res = _dvc(repo, "repro", expect_fail=True)
    assert _ran(res) == ["timelines", "refine", "validate"]
    assert "drop_fraction" in res and "failed to reproduce 'validate'" in res
    assert _digest_tree(repo / "data" / "train") == train

    # back to the original values: DVC's run cache restores the earlier outputs of timelines,
    # refine and validate (whose failed report is replaced by the passing one) without running
    # anything, and build, never touched, is up to date
    _set_param(repo, "construct.fast_speed", 0.3)
    _set_param(repo, "quality.max_drop_fraction", 0.5)
    res = _dvc(repo, "repro")
    assert _ran(res) == []
    assert re.findall(r"Stage '([\w-]+)' is cached", res) == ["timelines", "refine", "validate"]
    assert _digest_tree(repo / "data" / "train") == train
    assert _digest_tree(repo / "data" / "construct" / "timelines") == timelines
    assert "up to date" in _dvc(repo, "status")


def test_push_and_pull_through_local_and_s3_remotes(repo):
    if not (repo / "dvc.lock").exists():
        _dvc(repo, "repro")
    before = _digest_tree(repo / "data" / "train")

    # default remote: a local directory
    _dvc(repo, "push")
    assert any((repo / ".dvc" / "local-storage").rglob("*"))

    with running_s3_server(buckets=("tvau",)) as env:
        out = _dvc(repo, "push", "-r", "s3", env=env)
        assert re.search(r"\d+ files? pushed", out), out
        # lose the cache and an output, then get them back from S3 only
        shutil.rmtree(repo / ".dvc" / "cache")
        shutil.rmtree(repo / "data" / "train")
        _dvc(repo, "pull", "-r", "s3", env=env)
        assert _digest_tree(repo / "data" / "train") == before
        assert "up to date" in _dvc(repo, "status", env=env)
