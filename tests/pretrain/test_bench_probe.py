"""The appearance probe (benchmarks/bench_probe.py): each person's features are its own and carry its
own colour label, the probe never sees a test video, and the table has its five rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks import bench_probe as bp
from tests.tiny import PRETRAIN, merged
from tvau.pretrain.config import PretrainConfig
from tvau.pretrain.world import CATEGORY_TARGETS, IGNORE, WorldVideo, patch_targets
from tvau.synth.palette import COLOR_RGB
from tvau.vocab import COLORS

# The tests' tiny pretraining (tests/tiny.py), rendered in this process, on whole 56-px frames.
TINY = PretrainConfig.model_validate(merged(PRETRAIN, {"world": {"render_workers": 0}, "vision": {"crop": 0}}))
SIZE = 112  # probe clips: a 4x4 grid of merge units
VIDEOS = 4


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    from tvau.model.backbone import load_backbone
    from tvau.model.config import ModelConfig
    from tvau.pretrain.vision import pretrain_vision

    out = tmp_path_factory.mktemp("probe") / "backbone"
    with pytest.MonkeyPatch.context() as mp:  # no checkpoint in the working copy's cache
        mp.setenv("TVAU_PRETRAIN_CHECKPOINTS", str(out.parent / "ckpt"))
        pretrain_vision(out, TINY, 56, 56, progress=False)
    return load_backbone(ModelConfig(backbone=str(out)))


def _painted_video() -> tuple[WorldVideo, np.ndarray, np.ndarray]:
    """Four frames of 56x56 pixels (a 2x4x4 patch grid): person 3 (red top) fills the top-left
    merge unit, a car 2 (blue body) the top-right one, person 1 (green top) the bottom row, each
    painted in its label's palette colour; ids out of order so an id/row mix-up shows."""
    person, car = CATEGORY_TARGETS.index("person"), CATEGORY_TARGETS.index("car")
    ids = np.zeros((4, 56, 56), np.uint8)
    ids[:, :28, :28], ids[:, :28, 28:], ids[:, 28:42, :] = 3, 2, 1
    appearance = np.full((4, 4), IGNORE)
    appearance[1, 0], appearance[2, 0], appearance[3, 0] = (COLORS.index(c) for c in ("green", "blue", "red"))
    frames = np.zeros((4, 56, 56, 3), np.uint8)
    for oid in (1, 2, 3):
        frames[ids == oid] = COLOR_RGB[COLORS[appearance[oid, 0]]]
    video = WorldVideo(frames=frames, ids=ids, category=np.array([0, person, car, person]),
                       action=np.zeros((4, 4), np.int64), velocity=np.zeros((4, 4, 2), np.float32),
                       appearance=appearance)
    return video, frames, ids


def test_each_person_gets_its_own_features_and_colour():
    video, frames, ids = _painted_video()
    # Features that say where they come from: a tap cell holds (t, h, w, tap), a merged token its
    # raster index, so a sample's mean tells which cells and units it averaged.
    grid = np.stack(np.meshgrid(np.arange(2), np.arange(4), np.arange(4), indexing="ij"), -1).astype(np.float32)
    taps = [torch.from_numpy(np.concatenate([grid, np.full((2, 4, 4, 1), k, np.float32)], -1)) for k in (0, 1)]
    vis = SimpleNamespace(taps=taps, video_embeds=torch.arange(8, dtype=torch.float32)[:, None])
    samples = bp.video_samples(video, frames, ids, vis, min_coverage=0.1)
    assert [COLORS[label] for label, _ in samples] == ["green", "red"]  # persons only: the car is no sample
    (_, green), (_, red) = samples
    np.testing.assert_allclose(red["rgb"], COLOR_RGB["red"])
    np.testing.assert_allclose(green["rgb"], COLOR_RGB["green"])
    np.testing.assert_allclose(red["first_tap"], [0.5, 0.5, 0.5, 0])  # patches (0..1, 0..1, 0..1)
    np.testing.assert_allclose(red["last_tap"], [0.5, 0.5, 0.5, 1])
    np.testing.assert_allclose(red["merged"], [(0 + 4) / 2])  # unit (0, 0) of both temporal patches
    # Person 1 owns patch row 2 (pixel rows 28..41; row 3 is background): the bottom two merge
    # units of each temporal patch.
    np.testing.assert_allclose(green["first_tap"][:3], [0.5, 2, 1.5])
    np.testing.assert_allclose(green["merged"], [(2 + 3 + 6 + 7) / 4])


def test_dominant_ids_follow_the_pretraining_targets():
    video, _, ids = bp.footage(1, SIZE, SIZE)[0]
    owner = bp.dominant_ids(ids, 0.1)
    targets = patch_targets(video, 0, ids, 14, 2, 0.1)
    assert np.array_equal(video.category[owner], targets["category"])
    assert np.array_equal(video.appearance[owner][owner > 0], targets["appearance"][owner > 0])


def test_rendered_persons_carry_their_colour_and_fit_never_sees_a_test_video(backbone):
    clips = bp.footage(VIDEOS, SIZE, SIZE)
    s = bp.collect(backbone, clips, 0.1)
    assert len(s.label) >= VIDEOS  # world videos hold one person or more
    assert s.features["first_tap"].shape[1] == backbone.vision_width
    assert s.features["merged"].shape[1] == backbone.text_width
    # Each sample's mean colour is that of a person of its own video with its label, recomputed here.
    for v, label, rgb in zip(s.video, s.label, s.features["rgb"]):
        video, frames, ids = clips[v]
        own = [frames[ids == oid].mean(0) for oid in range(1, len(video.category))
               if CATEGORY_TARGETS[video.category[oid]] == "person" and video.appearance[oid, 0] == label]
        assert any(np.allclose(rgb, o) for o in own)
    # A person's pixels are its top, trousers, skin and hair: the top's palette colour is nearer
    # its mean than the other colours are, on average.
    palette = np.array([COLOR_RGB[c] for c in COLORS], np.float64)
    dist = np.linalg.norm(s.features["rgb"][:, None] - palette[None], axis=-1)
    own_dist = dist[np.arange(len(s.label)), s.label]
    assert own_dist.mean() < dist.mean()
    fit, test = bp.split(s.video, VIDEOS)
    assert fit.any() and test.any() and not (fit & test).any() and (fit | test).all()
    assert not set(s.video[fit]) & set(s.video[test])
    assert s.video[fit].max() < s.video[test].min()  # the first videos fit, the later ones test


def test_probe_reads_a_separable_source_and_reports_five_rows():
    rng = np.random.default_rng(0)
    videos, per = 8, 6
    label = rng.integers(0, len(COLORS), videos * per)
    onehot = np.eye(len(COLORS))[label] + 0.01 * rng.standard_normal((len(label), len(COLORS)))
    noise = rng.standard_normal((len(label), 5))
    samples = bp.Samples(video=np.repeat(np.arange(videos), per), label=label,
                         features={"merged": onehot, "first_tap": noise, "last_tap": noise, "rgb": noise})
    result = bp.evaluate(samples, videos)
    assert (result["fit_videos"], result["test_videos"]) == (6, 2) and result["test"] == 2 * per
    assert result["merged"].value == 1.0 and result["merged"].low == 1.0
    result["taps"] = (0, 7)
    rows = bp.rows_for("dir", result, 1.0)
    assert [r.ok for r in rows] == [True, None, None, None, None]
    assert rows[0].target == ">= 0.75" and "tap block 7" in rows[2].benchmark
