"""The main job's reproduction check: which changes are the machine's (put back, tree stays clean)
and which are a developer's (kept), and metric-by-metric comparison with the committed evaluation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tvau.reproduce import TOLERANCE, check, compare_metrics, machine_only_changes


def _lock(train_out: str = "a1", eval_out: str = "e1", lr: float = 0.001, code: str = "c1") -> dict:
    return {"schema": "2.0", "stages": {
        "build": {"cmd": "tvau construct build", "deps": [{"path": "tvau/construct", "md5": "b0"}],
                  "outs": [{"path": "data/train", "md5": "t1"}]},
        "train_ahd": {"cmd": "tvau train ahd", "params": {"params.yaml": {"train.ahd.lr": lr}},
                      "deps": [{"path": "data/train", "md5": "t1"}, {"path": "tvau/train", "md5": code}],
                      "outs": [{"path": "data/models/ahd", "md5": train_out}]},
        "evaluate": {"cmd": "tvau evaluate", "deps": [{"path": "data/models/ahd", "md5": train_out}],
                     "outs": [{"path": "data/evaluate", "md5": eval_out}]},
    }}


def test_outputs_that_changed_with_the_committed_inputs_are_the_machines():
    assert machine_only_changes(_lock(), _lock()) == ([], [])
    # training gave other bytes; evaluation changed only through that output
    assert machine_only_changes(_lock(), _lock(train_out="a2", eval_out="e2")) == (["train_ahd", "evaluate"], [])
    # a parameter or a code dependency changed: a developer's run, to be committed
    assert machine_only_changes(_lock(), _lock(train_out="a2", lr=0.002))[1] == ["train_ahd", "evaluate"]
    assert machine_only_changes(_lock(), _lock(train_out="a2", code="c2"))[1] == ["train_ahd", "evaluate"]


def test_metrics_reproduce_inside_the_committed_interval():
    committed = {"model": {"micro_auc": {"value": 0.90, "low": 0.85, "high": 0.95},
                           "distinct": {"value": 0.50, "low": None, "high": None}},
                 "details": {"clips": {"value": 3}}}
    current = {"model": {"micro_auc": {"value": 0.96, "low": 0.9, "high": 0.99},
                         "distinct": {"value": 0.50 + TOLERANCE / 2, "low": None, "high": None}}}
    rows = {r["metric"]: r for r in compare_metrics(committed, current)}
    assert set(rows) == {"model.micro_auc", "model.distinct"}  # details are not figures
    assert not rows["model.micro_auc"]["reproduced"] and rows["model.distinct"]["reproduced"]
    assert abs(rows["model.micro_auc"]["difference"] - 0.06) < 1e-12


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=root, check=True,
                   capture_output=True)


def _status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True).stdout


def test_check_puts_back_what_only_the_machine_changed(tmp_path):
    root = tmp_path / "repo"
    (root / "data" / "metrics").mkdir(parents=True)
    evaluation = {"model": {"yes_no_accuracy": {"value": 0.85, "low": 0.80, "high": 0.90}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(_lock()))
    (root / "data" / "metrics" / "evaluate.json").write_text(json.dumps(evaluation))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "run")
    # this machine's training gave other bytes, and yes/no 0.84 (inside the interval)
    (root / "dvc.lock").write_text(yaml.safe_dump(_lock(train_out="a2", eval_out="e2")))
    evaluation["model"]["yes_no_accuracy"]["value"] = 0.84
    (root / "data" / "metrics" / "evaluate.json").write_text(json.dumps(evaluation))
    result = check(root, tmp_path / "kept")
    assert result["restored"] and result["reproduced"] == result["compared"] == 1
    assert _status(root) == ""
    kept = json.loads((tmp_path / "kept" / "data" / "metrics" / "evaluate.json").read_text())
    assert kept["model"]["yes_no_accuracy"]["value"] == 0.84
    # a changed parameter is a developer's run: nothing is put back
    (root / "dvc.lock").write_text(yaml.safe_dump(_lock(train_out="a2", lr=0.002)))
    result = check(root, tmp_path / "kept2")
    assert not result["restored"] and sorted(result["developer_changed"]) == ["evaluate", "train_ahd"]
    assert "dvc.lock" in _status(root)
