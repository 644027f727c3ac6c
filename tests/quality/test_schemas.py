"""Deliberately broken tables fail their pandera models, naming the column and the rows; a
failed write leaves nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tvau.quality.tables import DataQualityError, read_table, validate, write_table, write_tables


def videos() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video": ["v_a", "v_b", "v_c"],
            "dataset": ["ubnormal"] * 3,
            "split": ["train", "validation", "test"],
            "source": ["x.mp4"] * 3,
            "num_frames": [3, 3, 3],
            "height": [48] * 3,
            "width": [64] * 3,
            "fps": [24.0] * 3,
            "is_anomalous": [True, False, False],
            "anomalous_frames": [2, 0, 0],
            "anomaly_kind": ["running", "", ""],
        }
    )


def detections() -> pd.DataFrame:
    n = 4
    return pd.DataFrame(
        {
            "video": ["v_a"] * n,
            "frame": [0, 0, 1, 2],
            "object_id": [1, 2, 1, 1],
            "category": ["person", "bicycle", "person", "person"],
            "colors": [json.dumps({"upper": "red"})] * n,
            "clothing": ["coat"] * n,
            "action": ["running", "", "running", "running"],
            "x1": [0, 30, 2, 4], "y1": [0, 10, 0, 0], "x2": [9, 40, 11, 13], "y2": [19, 20, 19, 19],
            "width": [64] * n, "height": [48] * n,
            "cx": [4.5, 35.0, 6.5, 8.5], "cy": [9.5, 15.0, 9.5, 9.5],
            "area": [200, 121, 200, 200],
            "region": ["top-left", "top", "top-left", "top-left"],
            "anomalous": [True, False, True, True],
            "annotator": ["oracle"] * n,
        }
    )


def frames() -> pd.DataFrame:
    return pd.DataFrame({"video": ["v_a"] * 3 + ["v_b"] * 2, "frame": [0, 1, 2, 0, 1], "label": [0, 1, 1, 0, 0],
                         "num_objects": [2, 1, 1, 0, 0]})


def test_valid_tables_pass():
    validate("videos", videos())
    validate("detections", detections())
    validate("frames", frames())


def _failure(exc: DataQualityError, column: str) -> dict:
    hits = [f for f in exc.failures if column in f["columns"]]
    assert hits, f"no failure names column {column!r}:\n{exc}"
    return hits[0]


def test_box_outside_the_frame_names_columns_and_rows():
    df = detections()
    df.loc[2, "x2"] = 64  # width is 64: the last column inside is 63
    with pytest.raises(DataQualityError) as e:
        validate("detections", df)
    f = _failure(e.value, "x2")
    assert f["check"] == "box_inside_frame" and f["num_rows"] == 1
    assert "row 2 (video='v_a', frame=1, object_id=1)" in f["rows"][0]
    assert "x2" in str(e.value) and "row 2" in str(e.value)


def test_nan_names_column_and_row():
    df = detections()
    df["cy"] = df["cy"].astype(float)
    df.loc[3, "cy"] = np.nan
    with pytest.raises(DataQualityError) as e:
        validate("detections", df)
    f = next(f for f in e.value.failures if f["columns"] == ["cy"] and f["check"] == "not_nullable")
    assert f["num_rows"] == 1 and "row 3 (video='v_a', frame=2, object_id=1)" in f["rows"][0]


def test_video_in_two_splits_fails():
    df = pd.concat([videos(), videos().iloc[[0]].assign(split="test")], ignore_index=True)
    with pytest.raises(DataQualityError) as e:
        validate("videos", df)
    f = _failure(e.value, "video")
    assert f["num_rows"] == 2
    assert any("video='v_a', split='train'" in r for r in f["rows"])
    assert any("video='v_a', split='test'" in r for r in f["rows"])


def test_unknown_category_fails():
    df = detections()
    df.loc[1, "category"] = "dragon"
    with pytest.raises(DataQualityError) as e:
        validate("detections", df)
    f = _failure(e.value, "category")
    assert f["check"].startswith("isin") and "'dragon'" in f["failure_cases"][0]
    assert "row 1 (video='v_a', frame=0, object_id=2)" in f["rows"][0]


def test_non_contiguous_frames_fail():
    df = frames().drop(index=1).reset_index(drop=True)  # v_a: 0, 2
    with pytest.raises(DataQualityError) as e:
        validate("frames", df)
    f = _failure(e.value, "frame")
    assert f["check"] == "frames_contiguous" and "video='v_a', frame=2" in f["rows"][0]


def test_every_failure_is_reported_at_once():
    df = detections()
    df.loc[0, "category"] = "dragon"
    df.loc[3, "x2"] = 99
    df.loc[2, "region"] = "upstairs"
    with pytest.raises(DataQualityError) as e:
        validate("detections", df)
    named = {c for f in e.value.failures for c in f["columns"]}
    assert {"category", "x2", "region"} <= named


def test_failed_write_leaves_the_previous_file_untouched(tmp_path):
    path = tmp_path / "detections.parquet"
    write_table("detections", detections(), path)
    before = path.read_bytes()
    bad = detections()
    bad.loc[0, "x1"] = -1
    with pytest.raises(DataQualityError):
        write_table("detections", bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detections.parquet"]  # no temp files left
    # a directory of tables is all or nothing too
    write_tables({"videos": videos(), "frames": frames()}, tmp_path / "ann")
    snap = {p.name: p.read_bytes() for p in (tmp_path / "ann").iterdir()}
    with pytest.raises(DataQualityError):
        write_tables({"videos": videos(), "frames": frames().drop(index=0)}, tmp_path / "ann")
    assert {p.name: p.read_bytes() for p in (tmp_path / "ann").iterdir()} == snap


def test_read_validates_too(tmp_path):
    path = tmp_path / "videos.parquet"
    videos().assign(num_frames=0).to_parquet(path)  # written by someone else, without checks
    with pytest.raises(DataQualityError, match="num_frames"):
        read_table("videos", path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_table("videos", tmp_path / "missing.parquet")
