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


# ---------------------------------------------------------------- the gate fails closed
#
# Each case starts from a copy of the construction tables that passes, so the only problem is the
# one planted. "No traceback" = the command ended through typer's Exit, not an uncaught exception.


@pytest.fixture
def fresh(stages, tmp_path):
    root = tmp_path
    shutil.copytree(stages["dir"], root / "construct")
    (root / "params.yaml").write_text(yaml.safe_dump({"quality": {"docs_dir": str(root / "docs")}}))
    return root


def _validate_cmd(root, *extra):
    return CliRunner().invoke(
        app,
        ["quality", "validate", "--construct", str(root / "construct"), "--out", str(root / "quality"),
         "--params", str(root / "params.yaml"), *extra],
    )


def _clean_exit(res, code):
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output


def _report(root):
    return json.loads((root / "quality" / "report.json").read_text())


def _checks(report):
    return {(f["table"], f["check"]) for f in report["failures"]}


def _not_run(report):
    return {(n["check"], n["table"]) for n in report["not_run"]}


def _passing(root):
    res = _validate_cmd(root, "--no-docs")
    _clean_exit(res, 0)
    assert _report(root)["passed"]


def test_box_outside_frame_and_dropped_column_fail_closed_and_build_refuses(fresh, tiny_synth):
    """The issue's reproduction: after a passing validation, a box outside the frame and the
    `height` column dropped from detections. Was: KeyError traceback, report still `passed: true`,
    build exit 0 on the bad tables."""
    root = fresh
    _passing(root)
    det_path = root / "construct" / "annotations" / "detections.parquet"
    det = pd.read_parquet(det_path)
    det.loc[3, "x2"] = det.loc[3, "width"] + 5
    det.drop(columns=["height"]).to_parquet(det_path)
    res = _validate_cmd(root)  # with the Great Expectations suite: it must not crash either
    _clean_exit(res, 1)
    report = _report(root)
    assert report["passed"] is False
    assert any(f["table"] == "detections" and "height" in f["columns"] for f in report["failures"])
    # the cross-table rules that need detections are reported as not run, the others ran
    assert ("video_known", "detections") in _not_run(report)
    assert ("matches_video_size_and_length", "detections") in _not_run(report)
    assert ("matches_video_size_and_length", "track_points") not in _not_run(report)
    assert "not run: matches_video_size_and_length [detections]" in res.output
    res = _build(root, tiny_synth)
    _clean_exit(res, 1)
    assert "gate failed" in res.output and not (root / "train").exists()


def test_missing_num_frames_column_is_a_failure_not_a_crash(fresh):
    root = fresh
    path = root / "construct" / "annotations" / "videos.parquet"
    pd.read_parquet(path).drop(columns=["num_frames"]).to_parquet(path)
    res = _validate_cmd(root, "--no-docs")
    _clean_exit(res, 1)
    report = _report(root)
    assert any(f["table"] == "videos" and "num_frames" in f["columns"] for f in report["failures"])
    # every cross-table rule reads the videos table: none of them ran
    assert {c for c, _ in _not_run(report)} >= {
        "video_known", "split_disjoint", "frames_cover_video", "labels_match_video",
        "matches_video_size_and_length"}


def test_duplicate_video_row_is_a_failure_not_a_crash(fresh):
    root = fresh
    path = root / "construct" / "annotations" / "videos.parquet"
    v = pd.read_parquet(path)
    pd.concat([v, v.iloc[[0]]], ignore_index=True).to_parquet(path)
    res = _validate_cmd(root, "--no-docs")
    _clean_exit(res, 1)
    report = _report(root)
    assert any(f["table"] == "videos" and "video" in f["columns"] for f in report["failures"])
    assert ("frames_cover_video", "frames") in _not_run(report)


def test_corrupt_parquet_is_a_failure_naming_the_file(fresh):
    root = fresh
    path = root / "construct" / "timelines" / "track_points.parquet"
    path.write_bytes(path.read_bytes()[: 200])  # truncated: not Parquet any more
    res = _validate_cmd(root, "--no-docs")
    _clean_exit(res, 1)
    report = _report(root)
    assert ("track_points", "readable_parquet") in _checks(report)
    assert "track_points.parquet" in res.output
    assert ("matches_video_size_and_length", "track_points") in _not_run(report)
    assert "track_points" not in report["inputs"]


def test_corrupt_stats_json_is_a_failure_not_a_crash(fresh):
    root = fresh
    (root / "construct" / "refined" / "stats.json").write_text('{"targets": 3,')
    res = _validate_cmd(root, "--no-docs")
    _clean_exit(res, 1)
    assert ("refined/stats.json", "readable_json") in _checks(_report(root))


def test_old_report_is_invalidated_before_validation_starts(fresh, tiny_synth):
    """A validation that cannot even start (a broken params file) leaves no passing report behind."""
    root = fresh
    _passing(root)
    good = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text("quality: {max_drop_fraction: 7}\n")
    res = _validate_cmd(root, "--no-docs")
    _clean_exit(res, 2)
    assert "max_drop_fraction" in res.output
    assert not (root / "quality" / "report.json").exists()
    (root / "params.yaml").write_text(good)
    res = _build(root, tiny_synth)
    _clean_exit(res, 1)
    assert "no quality report" in res.output and not (root / "train").exists()


def test_build_on_a_corrupt_report_is_one_line_exit_2(fresh, tiny_synth):
    root = fresh
    _passing(root)
    report = root / "quality" / "report.json"
    report.write_text(report.read_text()[:50])
    res = _build(root, tiny_synth)
    _clean_exit(res, 2)
    assert str(report) in res.output and "not valid JSON" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (root / "train").exists()


def test_build_refuses_tables_the_report_did_not_vouch_for(fresh, tiny_synth):
    """A table rewritten after a passing validation (here: same rows, other bytes) is refused by
    name; so is a report from before digests were recorded."""
    root = fresh
    _passing(root)
    path = root / "construct" / "refined" / "targets.parquet"
    pd.read_parquet(path).to_parquet(path, compression="gzip")
    res = _build(root, tiny_synth)
    _clean_exit(res, 1)
    assert "targets.parquet" in res.output and "changed since the quality report" in res.output
    assert not (root / "train").exists()
    _passing(root)  # validated again: now the report covers these bytes
    report = _report(root)
    del report["inputs"]
    (root / "quality" / "report.json").write_text(json.dumps(report))
    res = _build(root, tiny_synth)
    _clean_exit(res, 1)
    assert "records no table digests" in res.output and not (root / "train").exists()


# ------------------------------------------------- every cross-table rule, one planted violation each


def _tables(stages) -> dict[str, pd.DataFrame]:
    return {n: stages[n].copy() for n in ("videos", "frames", "detections", "track_points", "timelines", "targets")}


def _rules(tables, **cfg) -> set[tuple[str, str]]:
    from tvau.quality.config import QualityConfig
    from tvau.quality.validate import cross_table_checks

    failures, not_run = cross_table_checks(tables, QualityConfig(**cfg))
    assert not_run == []
    return {(f["table"], f["check"]) for f in failures}


def test_clean_tables_break_no_cross_table_rule(stages):
    assert _rules(_tables(stages)) == set()


def test_rule_video_known(stages):
    t = _tables(stages)
    t["timelines"] = pd.concat([t["timelines"], t["timelines"].iloc[[0]].assign(video="v_ghost")], ignore_index=True)
    assert _rules(t) == {("timelines", "video_known")}


def test_rule_frames_cover_video(stages):
    t = _tables(stages)
    fr = t["frames"]
    last = fr[(fr["video"] == fr["video"].iloc[0]) & (fr["label"] == 0)].index[-1]  # an unlabelled frame
    t["frames"] = fr.drop(index=last)
    assert _rules(t) == {("frames", "frames_cover_video")}


def test_rule_labels_match_video(stages):
    t = _tables(stages)
    t["frames"].loc[t["frames"].index[t["frames"]["label"] == 0][0], "label"] = 1
    assert _rules(t) == {("frames", "labels_match_video")}


@pytest.mark.parametrize("column", ["width", "height", "frame"])
def test_rule_matches_video_size_and_length(stages, column):
    t = _tables(stages)
    for name in ("detections", "track_points"):
        df = t[name]
        v = t["videos"].set_index("video").loc[df.at[0, "video"]]
        df.loc[0, column] = {"width": v.width * 2, "height": v.height + 1, "frame": v.num_frames}[column]
        assert _rules(t) == {(name, "matches_video_size_and_length")}
        t[name] = stages[name].copy()


def test_rule_abnormal_videos_per_split(stages):
    v = stages["videos"]
    per = v[v["is_anomalous"]].groupby("split").size().reindex(["train", "validation", "test"], fill_value=0)
    t = _tables(stages)
    assert _rules(t, min_abnormal_videos_per_split=int(per.min())) == set()
    failures = _rules(t, min_abnormal_videos_per_split=int(per.min()) + 1)
    assert failures == {("videos", "abnormal_videos_per_split")}
