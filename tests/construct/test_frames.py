"""Stage 1: frame-wise structured annotation (oracle and masks annotators)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tvau import vocab
from tvau.construct.annotators import FrameInput, MasksAnnotator
from tvau.construct.config import ConstructConfig
from tvau.construct.frames import assign_split
from tvau.construct.pixels import COLOR_RGB
from tvau.construct.sidecar import load_attributes


def test_oracle_boxes_match_the_object_maps(stages, records):
    """Boxes and centroids recomputed independently from the id maps of a few frames."""
    dets: pd.DataFrame = stages["detections"]
    checked = 0
    for rec in list(records.values())[:3]:
        for f, m in enumerate(rec.iter_object_maps(0, 6)):
            got = dets[(dets.video == rec.name) & (dets.frame == f)].set_index("object_id")
            ids = sorted(int(i) for i in np.unique(m) if i > 0)
            assert sorted(got.index) == ids
            for oid in ids:
                ys, xs = np.where(m == oid)
                row = got.loc[oid]
                assert (row.x1, row.y1, row.x2, row.y2) == (xs.min(), ys.min(), xs.max(), ys.max())
                assert row.area == len(xs)
                assert row.cx == pytest.approx(xs.mean()) and row.cy == pytest.approx(ys.mean())
                assert row.region == vocab.region_of(xs.mean(), ys.mean(), rec.width, rec.height)
                checked += 1
    assert checked > 10


def test_oracle_attributes_and_anomaly_flags_follow_ground_truth(stages, records, tiny_synth):
    attrs = load_attributes(tiny_synth)
    dets: pd.DataFrame = stages["detections"]
    for r in dets.sample(200, random_state=0).itertuples():
        a = attrs[(r.video, r.object_id)]
        assert r.category == a.category
        assert json.loads(r.colors) == a.colors
        assert r.action == a.action_at(r.frame)
    # the anomalous flag is exactly "overlaps the anomaly mask in this frame"
    rec = next(r for r in records.values() if r.is_anomalous)
    d = dets[dets.video == rec.name]
    for f, (m, a) in enumerate(zip(rec.iter_object_maps(), rec.iter_anomaly_masks())):
        for r in d[d.frame == f].itertuples():
            assert r.anomalous == bool(a[m == r.object_id].any())


def test_videos_and_frames_tables(stages, records):
    videos, frames = stages["videos"], stages["frames"]
    assert sorted(videos.video) == sorted(records)
    for v in videos.itertuples():
        rec = records[v.video]
        assert v.num_frames == rec.num_frames and v.split == assign_split(rec.name, rec.split, ConstructConfig())
        fr = frames[frames.video == v.video]
        assert fr.frame.tolist() == list(range(rec.num_frames))  # contiguous
        assert fr.label.tolist() == rec.frame_labels.tolist()
    assert set(videos.split) <= set(vocab.SPLITS)


def test_unsplit_videos_get_a_stable_hashed_split():
    cfg = ConstructConfig(val_fraction=0.2, test_fraction=0.2)
    names = [f"video_{i}" for i in range(400)]
    got = [assign_split(n, None, cfg) for n in names]
    assert got == [assign_split(n, None, cfg) for n in names]  # stable
    share = pd.Series(got).value_counts(normalize=True)
    assert abs(share["test"] - 0.2) < 0.07 and abs(share["validation"] - 0.2) < 0.07
    assert assign_split("x", "training", cfg) == "train"
    with pytest.raises(ValueError, match="unknown split"):
        assign_split("x", "holdout", cfg)


def test_masks_annotator_connected_components():
    """Two blobs in a 0/1 mask (ShanghaiTech style) -> two boxes with measured colours."""
    mask = np.zeros((40, 60), np.int32)
    mask[5:15, 4:10] = 1  # 10 x 6 blob
    mask[20:30, 40:55] = 1  # 10 x 15 blob
    mask[35, 0] = 1  # 1 px: below min_area
    img = np.zeros((40, 60, 3), np.uint8)
    img[5:15, 4:10] = COLOR_RGB["red"]
    img[20:30, 40:55] = COLOR_RGB["blue"]
    ann = MasksAnnotator(ConstructConfig(min_area=4))
    objs = ann.annotate(FrameInput("v", 0, mask, mask > 0, img))
    boxes = sorted((o["x1"], o["y1"], o["x2"], o["y2"], o["colors"]["body"], o["area"]) for o in objs)
    assert boxes == [(4, 5, 9, 14, "red", 60), (40, 20, 54, 29, "blue", 150)]
    assert all(o["category"] == "person" and o["anomalous"] for o in objs)


def test_masks_annotator_runs_through_stages_one_and_two(records, tiny_synth):
    """The ShanghaiTech path (no attributes) on generated footage: valid tables, pixel colours."""
    from tvau.construct.choose import make_annotator
    from tvau.construct.frames import annotate_dataset
    from tvau.construct.timelines import build_timelines
    from tvau.quality.tables import validate

    cfg = ConstructConfig(annotator="masks", match_colors=False)
    ann = make_annotator(cfg, tiny_synth)
    recs = list(records.values())[:2]
    t = annotate_dataset(recs, ann, cfg, progress=False)
    for name, df in t.items():
        validate(name, df)
    assert (t["detections"].annotator == "masks").all() and ann.stats["objects"] == len(t["detections"]) > 0
    assert t["detections"].colors.map(lambda c: set(json.loads(c)) == {"body"}).all()
    tables, stats = build_timelines(t["videos"], t["detections"], cfg, progress=False)
    validate("timelines", tables["timelines"])
    assert stats["tracks_kept"] > 0
