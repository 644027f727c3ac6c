"""Stage 3: background blur, re-description and the cross-modal consistency check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from tvau.construct.annotators import OracleAnnotator
from tvau.construct.motion import ACTION_LEVEL, MOTION_LEVEL
from tvau.construct.pixels import blur_outside
from tvau.construct.refine import refine_targets, render_target
from tvau.construct.sidecar import load_attributes, load_object_names


def test_blur_leaves_the_anomaly_region_intact():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)  # texture: blur must change it
    keep = np.zeros((64, 80), bool)
    keep[20:40, 30:50] = True
    out = blur_outside(frame, keep, sigma=4.0, dilate=0)
    assert np.array_equal(out[keep], frame[keep])  # bit-identical inside
    outside = ~keep
    assert np.abs(out[outside].astype(int) - frame[outside]).mean() > 30  # really blurred outside
    # dilation keeps a sharp ring of 2 px around the mask as well
    out2 = blur_outside(frame, keep, sigma=4.0, dilate=2)
    ring = np.zeros_like(keep)
    ring[18:42, 28:52] = True
    assert np.array_equal(out2[ring], frame[ring])


def test_rendered_targets_keep_their_pixels(stages, records, cfg):
    tl, pts = stages["timelines"], stages["track_points"]
    t = tl[tl.anomalous].iloc[0]
    rec = records[t.video]
    p = pts[(pts.video == t.video) & (pts.track_id == t.track_id) & pts.anomalous]
    frames = p.frame.to_numpy()[:4]
    imgs, masks = render_target(rec, p, frames, cfg)
    originals = [next(rec.iter_frames(int(f), int(f) + 1)) for f in frames]
    for img, m, orig in zip(imgs, masks, originals):
        assert m.any()
        assert np.array_equal(img[m], orig[m])
        assert not np.array_equal(img[~m], orig[~m])


def test_refine_keeps_consistent_oracle_targets(stages):
    s = stages["refine_stats"]
    targets: pd.DataFrame = stages["targets"]
    assert s["targets"] == len(targets) == stages["timelines"].anomalous.sum()
    assert s["kept"] + s.get("dropped", 0) == s["targets"]
    assert (targets.drop_reason == "").equals(targets.kept)
    assert (targets.mask_pixels > 0).all()


def test_planted_contradictions_are_dropped_and_counted(stages, records, cfg, tiny_synth):
    tl = stages["timelines"]
    kept = stages["targets"][stages["targets"].kept]
    assert len(kept) >= 2, "the tiny set needs two consistent targets to plant contradictions in"
    attrs = load_attributes(tiny_synth)
    motion_target, category_target = kept.iloc[0], kept.iloc[1]
    # 1. motion: describe an action two or more levels away from what was measured
    measured = MOTION_LEVEL[motion_target.measured_motion]
    wrong_action = "lying" if measured >= 2 else "running"
    assert abs(ACTION_LEVEL[wrong_action] - measured) >= 2
    oid = int(tl[(tl.video == motion_target.video) & (tl.track_id == motion_target.track_id)].source_object_id.iloc[0])
    key = (motion_target.video, oid)
    attrs[key] = dataclasses.replace(attrs[key], actions=((0, 10_000, wrong_action),))
    # 2. category: the describer calls the target a car
    oid2 = int(tl[(tl.video == category_target.video) & (tl.track_id == category_target.track_id)].source_object_id.iloc[0])
    key2 = (category_target.video, oid2)
    attrs[key2] = dataclasses.replace(attrs[key2], category="car")
    ann = OracleAnnotator(cfg, attrs, load_object_names(tiny_synth))
    videos = stages["videos"]
    targets, stats = refine_targets(records, videos, tl, stages["track_points"], ann, cfg, progress=False)
    dropped = targets[~targets.kept].set_index(["video", "track_id"])
    assert stats["dropped"] == len(dropped) == stages["refine_stats"].get("dropped", 0) + 2
    assert stats["dropped_motion"] >= 1 and stats["dropped_category"] >= 1
    r1 = dropped.loc[(motion_target.video, motion_target.track_id)]
    assert r1.drop_reason.startswith("motion:") and wrong_action in r1.drop_reason
    r2 = dropped.loc[(category_target.video, category_target.track_id)]
    assert "category: described 'car'" in r2.drop_reason
    assert len(targets) == len(stages["targets"])  # dropped rows stay in the table, flagged
