"""The generator's output, read back by the UBnormal reader, matches what was drawn."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import ndimage

from tvau import vocab
from tvau.data import open_dataset
from tvau.synth.config import SynthConfig
from tvau.synth.generate import plan_dataset
from tvau.synth.render import render_video
from tvau.synth.scenarios import plan_video
from tvau.synth.scene import make_scene

# Must match tests/synth/conftest.py (the session fixture builds this dataset).
TINY = SynthConfig(videos=6, size=64, frames=48, scenes=3, anomaly_fraction=0.5,
                   anomaly_mix={"running": 1, "throwing": 1, "bicycle": 1})
SEED = 11


def _redraw(job):
    """Render a video again in memory, exactly as build_video does."""
    scene = make_scene(job.scene, TINY.size, np.random.default_rng([SEED, 0, job.scene]))
    rng = np.random.default_rng([SEED, 1, job.index])
    actors = plan_video(rng, scene, TINY.frames, job.kind, (TINY.min_pedestrians, TINY.max_pedestrians))
    pixels = np.zeros((TINY.frames, max(a.oid for a in actors) + 1), np.int64)
    drawn = list(render_video(scene, actors, TINY.frames, rng, TINY.noise_sigma, TINY.lighting_amplitude, pixels))
    return scene, actors, pixels, drawn


def _largest_component_box(mask):
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    if n > 1 and sizes[order[0]] < 1.5 * sizes[order[1]]:
        return None  # two similar components: "largest" is ambiguous, skip this frame
    ys, xs = np.nonzero(lab == order[0] + 1)
    return [xs.min(), ys.min(), xs.max(), ys.max()]


def test_layout_and_splits(tiny_dataset):
    root, manifest = tiny_dataset
    jobs = plan_dataset(TINY, SEED)
    assert manifest["counts"]["videos"] == 6 and manifest["counts"]["abnormal_videos"] == 3
    listed = {}
    for flag in ("abnormal", "normal"):
        for word in ("training", "validation", "test"):
            for name in (root / f"{flag}_{word}_video_names.txt").read_text().split():
                assert name.startswith(flag + "_") and name not in listed
                listed[name] = word
    assert set(listed) == {j.name for j in jobs}
    for j in jobs:
        assert (root / f"Scene{j.scene}" / f"{j.name}.mp4").is_file()
        adir = root / f"Scene{j.scene}" / f"{j.name}_annotations"
        assert len(list(adir.glob(f"{j.name}_*_gt.png"))) == TINY.frames
        assert (adir / f"{j.name}_tracks.txt").exists() == (j.kind is not None)
    recs = open_dataset(root, "ubnormal")
    assert {r.name: r.split for r in recs} == {n: {"training": "train"}.get(w, w) for n, w in listed.items()}


def test_read_back_matches_drawing(tiny_dataset):
    root, _ = tiny_dataset
    recs = {r.name: r for r in open_dataset(root, "ubnormal")}
    attrs = [json.loads(line) for line in (root / "attributes.jsonl").read_text().splitlines()]
    checked_boxes = 0
    for job in plan_dataset(TINY, SEED):
        rec = recs[job.name]
        scene, actors, pixels, drawn = _redraw(job)
        assert (rec.num_frames, rec.height, rec.width, rec.fps) == (TINY.frames, 64, 64, TINY.fps)
        # Object-ID PNGs are exactly the drawn id maps; decoded frames are the drawn frames up to
        # compression loss; objects sit where their ids are (they differ from the bare background).
        decoded = list(rec.iter_frames())
        assert len(decoded) == TINY.frames
        for t, (ids_map, (frame, ids)) in enumerate(zip(rec.iter_object_maps(), drawn)):
            np.testing.assert_array_equal(ids_map, ids)
            err = decoded[t].astype(float) - frame
            assert 10 * np.log10(255 ** 2 / np.mean(err ** 2)) > 26, (job.name, t)
        on = np.stack([d[1] for d in drawn]) > 0
        diff = np.abs(np.stack(decoded).astype(float) - scene.background).mean(-1)
        if on.any():
            assert diff[on].mean() > diff[~on].mean() + 10
        # Labels and masks from the drawn anomaly flags, independently of the reader.
        expected_labels = np.zeros(TINY.frames, np.uint8)
        anomalous_ids = {}
        for a in actors:
            seen = np.nonzero(a.anomalous & (pixels[:, a.oid] > 0))[0]
            if seen.size:
                expected_labels[seen[0]:seen[-1] + 1] = 1
                anomalous_ids[a.oid] = (seen[0], seen[-1])
        np.testing.assert_array_equal(rec.frame_labels, expected_labels)
        assert bool(expected_labels.any()) == (job.kind is not None)
        for t, mask in enumerate(rec.iter_anomaly_masks()):
            live = [o for o, (s, e) in anomalous_ids.items() if s <= t <= e]
            np.testing.assert_array_equal(mask, np.isin(drawn[t][1], live))
        # Tracks: one per anomalous object, boxes = largest 8-connected component of its pixels.
        assert {tr.track_id for tr in rec.tracks} == set(anomalous_ids)
        for tr in rec.tracks:
            s, e = anomalous_ids[tr.track_id]
            visible = [t for t in range(s, e + 1) if pixels[t, tr.track_id] > 0]
            assert tr.frames.tolist() == visible
            for t, box in zip(tr.frames, tr.boxes):
                ref = _largest_component_box(drawn[t][1] == tr.track_id)
                if ref is not None:
                    assert box.tolist() == [int(v) for v in ref]
                    checked_boxes += 1
        # Sidecar: one entry per visible object, vocabulary words only, anomaly kind = the video's.
        mine = [o for o in attrs if o["video"] == job.name]
        assert {o["object_id"] for o in mine} == {a.oid for a in actors if pixels[:, a.oid].any()}
        for o in mine:
            assert o["category"] in vocab.CATEGORIES
            assert set(o["colors"].values()) <= set(vocab.COLORS)
            assert set(o["colors"]) == ({"upper", "lower"} if o["category"] == "person" else {"body"})
            assert all(act in vocab.ACTIONS and 0 <= s <= e < TINY.frames for s, e, act in o["actions"])
            assert o["anomalous"] == (o["object_id"] in anomalous_ids)
            assert o["anomaly_kind"] == (job.kind if o["anomalous"] else None)
            assert o["anomaly_kind"] is None or o["anomaly_kind"] in vocab.ANOMALY_KINDS
    assert checked_boxes > 20


def test_object_names_table(tiny_dataset):
    root, _ = tiny_dataset
    with open(root / "object_names.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    attrs = [json.loads(line) for line in (root / "attributes.jsonl").read_text().splitlines()]
    assert [(r["video"], int(r["object_id"]), r["name"]) for r in rows] == \
        [(a["video"], a["object_id"], a["category"]) for a in attrs]
    recs = open_dataset(root, "ubnormal", load_tracks=False)
    bikes = [r for r in recs if "bicycle" in r.object_names.values()]
    assert all(r.is_anomalous for r in bikes)


def test_same_seed_same_dataset_any_workers(tiny_dataset, tmp_path):
    from tvau.synth.generate import generate

    root, manifest = tiny_dataset
    again = tmp_path / "again"
    manifest2 = generate(again, TINY, SEED, workers=2, progress=False)
    assert manifest2 == manifest
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:  # byte-identical, videos included (the encoder runs single-threaded)
        assert (root / f).read_bytes() == (again / f).read_bytes(), f
    other = generate(tmp_path / "other", TINY, SEED + 1, workers=1, progress=False)
    assert other["videos"] != manifest["videos"] or \
        (tmp_path / "other" / "attributes.jsonl").read_text() != (root / "attributes.jsonl").read_text()


def test_existing_output_is_kept_and_crash_leaves_nothing(tiny_dataset, tmp_path, monkeypatch):
    from tvau.synth import generate as gen

    root, _ = tiny_dataset
    with pytest.raises(FileExistsError, match="already exists"):
        gen.generate(root, TINY, SEED, progress=False)
    calls = {"n": 0}
    real = gen.build_video

    def flaky(job, cfg, seed, out, codec=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(job, cfg, seed, out, codec)

    monkeypatch.setattr(gen, "build_video", flaky)
    target = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="disk full"):
        gen.generate(target, TINY, SEED, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []  # no dataset, no temporary folder
    # --overwrite of a complete dataset that crashes: the old one stays as it was.
    (target / "marker").parent.mkdir()
    (target / "marker").write_text("old")
    calls["n"] = 0
    with pytest.raises(RuntimeError):
        gen.generate(target, TINY, SEED, workers=1, overwrite=True, progress=False)
    assert [p.name for p in target.iterdir()] == ["marker"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_codec_typo_is_refused_and_the_codec_used_is_recorded(tmp_path, tiny_dataset):
    """`synth.codec: libx246` used to exit 0 with MPEG-4 files; now it is one line, exit 2, and
    nothing is written. The codec actually used is in the manifest and in the stage metrics."""
    import yaml
    from typer.testing import CliRunner

    from tvau.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"synth": {"codec": "libx246"}}))
    out = tmp_path / "ds"
    res = CliRunner().invoke(app, ["synth", "--out", str(out), "--params", str(params), "--videos", "2",
                                   "--size", "64", "--frames", "24", "--workers", "1"])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert "'libx246'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [params]
    _, manifest = tiny_dataset
    assert manifest["codec"] == "libx264"
    params.write_text(yaml.safe_dump({"synth": {"codec": "mpeg4"}}))
    metrics = tmp_path / "m" / "synth.json"
    res = CliRunner().invoke(app, ["synth", "--out", str(out), "--params", str(params), "--videos", "2",
                                   "--size", "64", "--frames", "24", "--workers", "1", "--metrics", str(metrics)])
    assert res.exit_code == 0, res.output
    m = json.loads(metrics.read_text())
    assert m["codec"] == "mpeg4" and m["videos"] == 2 and "seconds" not in m
    assert json.loads((out / "synth_manifest.json").read_text())["codec"] == "mpeg4"
