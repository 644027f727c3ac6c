"""The validate stage as a gate: passes on good tables with Data Docs; on a broken table it fails
with a readable report of every failure, and the build stage refuses, leaving its output as is."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tvau.cli import app


@pytest.fixture(scope="module")
def workdir(stages, tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    shutil.copytree(stages["dir"], root / "construct")
    (root / "params.yaml").write_text(yaml.safe_dump({"quality": {"docs_dir": str(root / "docs")}}))
    return root


def _validate(root):
    return CliRunner().invoke(
        app,
        ["quality", "validate", "--construct", str(root / "construct"), "--out", str(root / "quality"),
         "--params", str(root / "params.yaml")],
    )


def _build(root, tiny_synth):
    return CliRunner().invoke(
        app,
        ["construct", "build", "--data", str(tiny_synth), "--construct", str(root / "construct"),
         "--report", str(root / "quality" / "report.json"), "--out", str(root / "train"),
         "--params", str(root / "params.yaml"), "--no-progress"],
    )


@pytest.mark.slow
def test_gate_passes_then_blocks_a_broken_table(workdir, tiny_synth):
    root = workdir
    res = _validate(root)
    assert res.exit_code == 0, res.output
    report = json.loads((root / "quality" / "report.json").read_text())
    assert report["passed"] and report["great_expectations"]["success"]
    assert (root / "docs" / "index.html").exists()
    assert set(report["balance"]) == {"train", "validation", "test"}
    assert "refined" in report["drops"] and "targets" in report["drops"]["refined"]
    assert "Class balance" in (root / "quality" / "report.md").read_text()

    res = _build(root, tiny_synth)
    assert res.exit_code == 0, res.output
    built = {p.relative_to(root / "train"): p.read_bytes() for p in (root / "train").rglob("*") if p.is_file()}

    # break two tables on disk, as a bad upstream edit would: a box outside the frame and a video
    # listed in two splits
    det_path = root / "construct" / "annotations" / "detections.parquet"
    det = pd.read_parquet(det_path)
    det.loc[5, "x2"] = det.loc[5, "width"] + 3
    det.to_parquet(det_path)
    tl_path = root / "construct" / "timelines" / "timelines.parquet"
    tl = pd.read_parquet(tl_path)
    victim = tl.video.iloc[0]
    other = next(s for s in ("train", "validation", "test") if s != tl.split.iloc[0])
    tl.loc[tl.video == victim, "split"] = other
    tl.to_parquet(tl_path)

    res = _validate(root)
    assert res.exit_code == 1
    out = res.output
    assert "box_inside_frame" in out and "x2" in out and "row 5" in out
    assert "split_disjoint" in out and victim in out
    assert "gx:expect_column_pair_values_a_to_be_greater_than_b" in out  # GX saw the box as well
    report = json.loads((root / "quality" / "report.json").read_text())
    assert not report["passed"] and len(report["failures"]) >= 3

    res = _build(root, tiny_synth)
    assert res.exit_code == 1 and "gate failed" in res.output
    after = {p.relative_to(root / "train"): p.read_bytes() for p in (root / "train").rglob("*") if p.is_file()}
    assert after == built  # nothing downstream was overwritten
