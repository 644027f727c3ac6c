"""tvau.evaluate.frames.evaluate(): a perfect scorer scores 1 everywhere, the baseline beats chance, metrics.json is atomic."""

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from tvau.baseline import BaselineScorer
from tvau.data.record import Track, VideoRecord
from tvau.evaluate import evaluate, select_split, write_metrics_json
from tvau.metrics.config import BaselineConfig, MetricsConfig


@dataclass
class MemoryRecord(VideoRecord):
    """A VideoRecord held in memory (tests only)."""

    frames: np.ndarray = field(default=None)  # (T, H, W, 3) uint8
    objects: np.ndarray = field(default=None)  # (T, H, W) int32
    anomalous_ids: tuple = ()

    def iter_frames(self, start=0, stop=None):
        yield from self.frames[start:stop]

    def iter_object_maps(self, start=0, stop=None):
        yield from self.objects[start:stop]

    def iter_anomaly_masks(self, start=0, stop=None):
        for m in self.objects[start:stop]:
            yield np.isin(m, self.anomalous_ids)


def make_record(name, anomalous, split="validation", n=24, size=48, seed=0):
    """Static textured scene with noise; a walking (slow) person everywhere, and in anomalous videos
    a fast square (the anomaly) from frame 8 on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    texture = 100 + 30 * np.sin(xx / 4.0 + seed) * np.cos(yy / 6.0)
    frames = np.zeros((n, size, size, 3), np.uint8)
    objects = np.zeros((n, size, size), np.int32)
    labels = np.zeros(n, np.uint8)
    boxes, tframes = [], []
    for t in range(n):
        img = texture + rng.normal(0, 2, (size, size))
        if anomalous and t >= 8:
            x = 2 + 2 * (t - 8)
            objects[t, 30:38, x : x + 8] = 5
            img[30:38, x : x + 8] = 230
            labels[t] = 1
            boxes.append([x, 30, x + 7, 37])
            tframes.append(t)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)[..., None]
    tracks = [Track(5, np.array(tframes), np.array(boxes))] if anomalous else []
    return MemoryRecord(
        dataset="ubnormal",
        name=name,
        split=split,
        source=None,
        num_frames=n,
        height=size,
        width=size,
        fps=24.0,
        frame_labels=labels,
        tracks=tracks,
        frames=frames,
        objects=objects,
        anomalous_ids=(5,),
    )


@pytest.fixture(scope="module")
def records():
    return [make_record(f"v{i}", anomalous=i % 2 == 0, seed=i) for i in range(4)] + [
        make_record("t0", anomalous=True, split="train", seed=9)
    ]


def oracle(record):
    """Heatmap = the ground-truth mask itself: every metric must be perfect."""
    return (m.astype(np.float32) for m in record.iter_anomaly_masks())


@pytest.mark.parametrize("regions", ["components", "boxes"])
def test_perfect_scorer_scores_one(records, regions):
    val = select_split(records, "validation")
    m = evaluate(val, oracle, MetricsConfig(regions=regions, min_region_area=4), progress=False)
    assert m["videos"] == 4 and m["frames"] == 96 and m["anomalous_frames"] == 32
    for key in ("micro_auc", "macro_auc", "pixel_auroc", "miou", "rbdc", "tbdc"):
        assert m[key] == pytest.approx(1.0), key
    assert m["gt_regions"] == 32 and m["gt_tracks"] == 2


def test_low_resolution_heatmaps_are_upsampled(records):
    val = select_split(records, "validation")

    def coarse(record):  # 24x24 maps for 48x48 frames
        return (m[::2, ::2].astype(np.float32) for m in record.iter_anomaly_masks())

    m = evaluate(val, coarse, MetricsConfig(), progress=False)
    assert m["micro_auc"] == pytest.approx(1.0) and m["pixel_auroc"] > 0.95


def test_baseline_beats_chance(records, tmp_path):
    val = select_split(records, "validation")
    m = evaluate(
        val,
        BaselineScorer(BaselineConfig(work_size=48)),
        MetricsConfig(),
        scorer_name="baseline",
        progress=False,
    )
    assert m["micro_auc"] > 0.9 and m["pixel_auroc"] > 0.9 and m["rbdc"] > 0.3
    path = write_metrics_json(m, tmp_path / "out" / "metrics.json")
    assert json.loads(path.read_text())["micro_auc"] == m["micro_auc"]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left


def test_wrong_number_of_heatmaps_is_an_error(records):
    with pytest.raises(ValueError, match="v0: the scorer produced 23 heatmaps for 24 frames"):
        evaluate(records[:1], lambda r: np.zeros((23, 48, 48), np.float32), progress=False)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        evaluate(records[:1], lambda r: np.full((24, 48, 48), 2.0, np.float32), progress=False)


def test_undefined_metrics_are_none_with_a_note(records):
    normal = [r for r in records if not r.is_anomalous]
    m = evaluate(normal, oracle, MetricsConfig(), progress=False)
    assert m["micro_auc"] is None and m["rbdc"] is None
    assert any(n.startswith("micro_auc") for n in m["notes"])
    assert m["macro_auc"] == pytest.approx(1.0)  # padding keeps macro-AUC defined


def test_select_split_names_the_splits_present(records):
    assert [r.name for r in select_split(records, "train")] == ["t0"]
    assert len(select_split(records, "all")) == 5
    with pytest.raises(ValueError, match="splits present"):
        select_split(records, "test")


def test_temporal_sigma_smooths_frame_scores_with_a_normalised_gaussian(records):
    """metrics.temporal_sigma: a scorer whose maps peak at 1.0 on one frame and are 0 elsewhere gives
    frame scores equal to a hand-built Gaussian kernel (weights exp(-k^2 / 2 sigma^2) for |k| <= 4 sigma,
    normalised to sum 1), centred on that frame; sigma 0 leaves the scores as they are."""
    from tvau.evaluate.frames import score_video
    from tvau.metrics.frame import PixelMetrics

    rec = records[0]
    spike = 10

    def one_frame(record):
        for t in range(record.num_frames):
            yield np.full((record.height, record.width), 1.0 if t == spike else 0.0, np.float32)

    sigma = 2.0
    k = np.arange(-8, 9)
    w = np.exp(-k ** 2 / (2 * sigma ** 2))
    w /= w.sum()
    expected = np.zeros(rec.num_frames)
    expected[spike - 8:spike + 9] = w  # frame 10 is more than 8 frames from both ends: no edge effect
    for s, want in ((0.0, (np.arange(rec.num_frames) == spike).astype(float)), (sigma, expected)):
        cfg = MetricsConfig(temporal_sigma=s)
        scores, _ = score_video(rec, one_frame, cfg, PixelMetrics(bins=cfg.auc_bins))
        np.testing.assert_allclose(scores, want, atol=1e-12)


def test_motion_regions_are_the_baselines_boxes_scored_by_the_heatmap(records):
    """Region option "motion": the detections are the baseline's components (its own heatmap, the
    configured levels), each box scored by the evaluated heatmap's maximum inside it, computed here
    independently; in the paired pass the baseline keeps its own "components" rows and numbers."""
    from tvau.evaluate.frames import score_records, score_records_with_baseline, score_video
    from tvau.metrics.frame import PixelMetrics
    from tvau.metrics.regions import components_to_regions

    cfg = MetricsConfig(regions="motion", min_region_area=4)
    rec = records[0]
    maps = np.random.default_rng(3).uniform(0, 1, (rec.num_frames, rec.height, rec.width)).astype(np.float32)
    _, det = score_video(rec, lambda r: iter(maps), cfg, PixelMetrics(bins=cfg.auc_bins))
    want = []
    for t, b in enumerate(BaselineScorer(cfg.baseline)(rec)):
        for x1, y1, x2, y2, _ in components_to_regions(b, cfg.component_levels, 4, cfg.max_regions_per_frame):
            x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
            want.append([t, x1, y1, x2, y2, float(maps[t, y1:y2 + 1, x1:x2 + 1].max())])
    want = np.array(want)
    assert len(want) >= rec.num_frames // 2  # the moving square and noise give boxes on most frames
    assert np.array_equal(det[np.lexsort(det.T[::-1])], want[np.lexsort(want.T[::-1])])

    val = select_split(records, "validation")
    model_v, base_v = score_records_with_baseline(val, lambda r: iter(maps[: r.num_frames]), cfg, False)
    alone = score_records(val, BaselineScorer(cfg.baseline), cfg.model_copy(update={"regions": "components"}), False)
    for x, y in zip(alone, base_v):
        assert np.array_equal(x.scores, y.scores) and np.array_equal(x.detections, y.detections)
        assert np.array_equal(x.pixels.pos_hist, y.pixels.pos_hist)
    assert np.array_equal(model_v[0].detections, det)
