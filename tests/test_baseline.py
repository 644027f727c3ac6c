"""The non-learned baseline: moving pixels score higher than the static background."""

import numpy as np

from tvau.baseline import iter_frame_heatmaps
from tvau.metrics.config import BaselineConfig


def moving_square_video(n=32, size=64, seed=0):
    """A textured static background with sensor noise and a slow lighting drift, and a 10x10
    square crossing it; returns frames (n, size, size, 3) uint8 and the square's masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    texture = 90 + 40 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + rng.normal(0, 8, (size, size))
    frames, masks = [], []
    for t in range(n):
        img = texture + 0.5 * t + rng.normal(0, 3, (size, size))  # drift + noise
        m = np.zeros((size, size), bool)
        x = 4 + int(1.6 * t)
        m[27:37, x : x + 10] = True
        img[m] = 220
        frames.append(np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
        masks.append(m)
    return np.stack(frames), np.stack(masks)


def test_heatmaps_have_frame_shape_and_range():
    frames, _ = moving_square_video(n=8)
    maps = list(iter_frame_heatmaps(frames, BaselineConfig(work_size=32)))
    assert len(maps) == 8
    for h in maps:
        assert h.shape == (64, 64) and h.dtype == np.float32
        assert 0.0 <= h.min() and h.max() <= 1.0


def test_moving_pixels_score_higher_than_static_background():
    frames, masks = moving_square_video()
    maps = np.stack(list(iter_frame_heatmaps(frames, BaselineConfig(work_size=64))))
    # Far from the square's path (rows 27-36 only): the static background.
    background = np.ones(masks.shape[1:], bool)
    background[17:47, :] = False
    for t in range(4, len(frames)):
        moving, static = maps[t][masks[t]].mean(), maps[t][background].mean()
        assert moving > 0.5 > 3 * static, (t, moving, static)


def test_streaming_does_not_need_the_whole_video():
    frames, _ = moving_square_video(n=6)
    produced = []

    def source():
        for i, f in enumerate(frames):
            produced.append(i)
            yield f

    it = iter_frame_heatmaps(source())
    next(it)
    assert produced == [0]  # one frame decoded for the first heatmap
