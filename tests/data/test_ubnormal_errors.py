"""Malformed UBnormal trees give the documented error, naming the file; `tvau data inspect`
prints it and exits with code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tvau.cli import app
from tvau.data import DatasetError, open_dataset


def _abnormal(root):
    video = min(root.glob("Scene*/abnormal_*.mp4"))
    return video, video.parent / f"{video.stem}_annotations"


def _inspect(root, *extra):
    return CliRunner().invoke(app, ["data", "inspect", "--format", "ubnormal", str(root), *extra])


def test_inspect_json_counts(ub_tree):
    res = _inspect(ub_tree, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    recs = open_dataset(ub_tree, "ubnormal")
    assert out["videos"] == 4 == len(recs)
    assert out["frames"] == sum(r.num_frames for r in recs) == 120
    assert out["anomalous_frames"] == sum(int(r.frame_labels.sum()) for r in recs) > 0
    assert out["tracks"] == sum(len(r.tracks) for r in recs) >= 2
    assert out["regions"] == sum(len(t.frames) for r in recs for t in r.tracks)
    assert sum(out["region_words"].values()) == out["regions"]
    assert sum(s["videos"] for s in out["splits"].values()) == 4
    table = _inspect(ub_tree)
    assert table.exit_code == 0 and "anomalous" in table.output


def test_missing_annotation_folder(ub_copy):
    _video, adir = _abnormal(ub_copy)
    for f in adir.iterdir():
        f.unlink()
    adir.rmdir()
    with pytest.raises(DatasetError, match="missing annotation folder") as err:
        open_dataset(ub_copy, "ubnormal")
    assert str(adir) in str(err.value)
    res = _inspect(ub_copy)
    assert res.exit_code == 2 and "missing annotation folder" in res.output and adir.name in res.output


def test_unreadable_png(ub_copy):
    video, adir = _abnormal(ub_copy)
    start = int((adir / f"{video.stem}_tracks.txt").read_text().split(",")[1])
    bad = adir / f"{video.stem}_{start:04d}_gt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(DatasetError, match="unreadable PNG") as err:
        open_dataset(ub_copy, "ubnormal")
    assert str(bad) in str(err.value)
    res = _inspect(ub_copy, "--json")
    assert res.exit_code == 2 and bad.name in res.output


def test_track_rows_outside_the_video(ub_copy):
    video, adir = _abnormal(ub_copy)
    tracks = adir / f"{video.stem}_tracks.txt"
    tracks.write_text(tracks.read_text() + "9,10,30\n")  # 30 frames: the last index is 29
    with pytest.raises(DatasetError, match="outside the video") as err:
        open_dataset(ub_copy, "ubnormal")
    assert f"{tracks}:" in str(err.value) and "9,10,30" in str(err.value)
    tracks.write_text("1,5\n")
    with pytest.raises(DatasetError, match="expected 'object_id,start_frame,end_frame'"):
        open_dataset(ub_copy, "ubnormal")
    res = _inspect(ub_copy)
    assert res.exit_code == 2 and tracks.name in res.output


def test_missing_png_and_missing_tracks(ub_copy):
    video, adir = _abnormal(ub_copy)
    (adir / f"{video.stem}_0007_gt.png").unlink()
    with pytest.raises(DatasetError, match=r"missing object-ID maps for 1 of 30 frames \(first: .*_0007_gt.png\)"):
        open_dataset(ub_copy, "ubnormal")
    (adir / f"{video.stem}_0007_gt.png").write_bytes((adir / f"{video.stem}_0006_gt.png").read_bytes())
    (adir / f"{video.stem}_tracks.txt").unlink()
    with pytest.raises(DatasetError, match="missing tracks file for abnormal video"):
        open_dataset(ub_copy, "ubnormal")


def test_new_tracks_replace_tracks_and_unsplit_tree(ub_copy):
    video, adir = _abnormal(ub_copy)
    oid, start, _ = (int(v) for v in (adir / f"{video.stem}_tracks.txt").read_text().split(","))
    (adir / f"{video.stem}_new_tracks.txt").write_text(f"{oid},{start + 1},{start + 2}\n")
    for f in ub_copy.glob("*_video_names.txt"):
        f.unlink()
    recs = {r.name: r for r in open_dataset(ub_copy, "ubnormal")}
    rec = recs[video.stem]
    assert rec.frame_labels.nonzero()[0].tolist() == [start + 1, start + 2]
    assert all(r.split is None for r in recs.values())
    assert [t.track_id for t in rec.tracks] == [oid] and rec.tracks[0].frames.tolist() == [start + 1, start + 2]


def test_not_a_tree(tmp_path):
    with pytest.raises(DatasetError, match="no Scene"):
        open_dataset(tmp_path, "ubnormal")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        open_dataset(tmp_path, "avenue")
