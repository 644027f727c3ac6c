"""Clip starts, clip loading and mask pooling against hand-worked cases and torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tvau.data.clips import (
    clip_starts,
    iter_clips,
    load_clip,
    load_clip_masks,
    patch_grid,
    pool_labels,
    pool_masks,
)
from tvau.data.config import ClipConfig
from tvau.data.record import VideoRecord


@dataclass
class ArrayRecord(VideoRecord):
    """An in-memory record: frame t is filled with value t; its mask is a square at column t."""

    def iter_frames(self, start=0, stop=None):
        for t in range(start, min(stop or self.num_frames, self.num_frames)):
            yield np.full((self.height, self.width, 3), t, np.uint8)

    def iter_object_maps(self, start=0, stop=None):
        for t in range(start, min(stop or self.num_frames, self.num_frames)):
            m = np.zeros((self.height, self.width), np.int32)
            m[2:6, t % self.width] = 1
            yield m

    def iter_anomaly_masks(self, start=0, stop=None):
        for m in self.iter_object_maps(start, stop):
            yield m > 0


def _rec(n, h=8, w=16):
    return ArrayRecord("ubnormal", "v", None, None, n, h, w, 24.0, (np.arange(n) % 5 == 0).astype(np.uint8))


def test_clip_starts():
    assert clip_starts(96, 24, 12) == [0, 12, 24, 36, 48, 60, 72]
    assert clip_starts(100, 24, 12) == [0, 12, 24, 36, 48, 60, 72, 76]
    assert clip_starts(100, 24, 12, cover_tail=False) == [0, 12, 24, 36, 48, 60, 72]
    assert clip_starts(24, 24, 12) == [0] and clip_starts(10, 24, 12) == [0] and clip_starts(0) == []
    assert patch_grid(476, 868) == (34, 62)  # the paper's 24x476x868 clip -> 12x34x62 tokens


def test_pool_masks_hand_worked():
    m = np.zeros((4, 4, 6), bool)
    m[0, 0, 0] = True  # frame 0, sampled cell (row 0, col 0)
    m[1, 2, 4] = True  # frame 1 (same pair), sampled cell (row 2 -> 1, col 4 -> 2)
    m[1, 3, 5] = True  # not on a sampled row/column: dropped by the nearest resize
    m[2, 1, 1] = True  # frame 2: row 1 is not sampled
    m[3, 0, 2] = True  # frame 3: (0, 2) -> (0, 1)
    expected = np.array([[[1, 0, 0], [0, 0, 1]],
                         [[0, 1, 0], [0, 0, 0]]], bool)
    np.testing.assert_array_equal(pool_masks(m, 2, 3), expected)
    # The same against torch's nearest interpolation of the pair-OR.
    pairs = torch.from_numpy(m.reshape(2, 2, 4, 6).any(1)).float()[None]
    ref = torch.nn.functional.interpolate(pairs, size=(2, 3), mode="nearest")[0].bool().numpy()
    np.testing.assert_array_equal(pool_masks(m, 2, 3), ref)
    rng = np.random.default_rng(0)
    big = rng.random((24, 50, 70)) > 0.97
    ref = torch.nn.functional.interpolate(torch.from_numpy(big.reshape(12, 2, 50, 70).any(1)).float()[None],
                                          size=(7, 9), mode="nearest")[0].bool().numpy()
    np.testing.assert_array_equal(pool_masks(big, 7, 9), ref)
    assert pool_masks(np.ones((5, 4, 4), bool), 2, 2).shape == (3, 2, 2)  # odd T: last frame alone
    np.testing.assert_array_equal(pool_labels([0, 1, 0, 0, 1]), [True, False, True])


def test_pool_masks_any_keeps_every_marked_patch():
    m = np.zeros((4, 4, 6), bool)  # the hand-worked case above, rule "any"
    m[0, 0, 0] = m[1, 2, 4] = m[1, 3, 5] = m[2, 1, 1] = m[3, 0, 2] = True
    expected = np.array([[[1, 0, 0], [0, 0, 1]],
                         [[1, 1, 0], [0, 0, 0]]], bool)  # (2, 1, 1) is kept in patch (0, 0) now
    np.testing.assert_array_equal(pool_masks(m, 2, 3, rule="any"), expected)
    # Against torch's max pooling of the pair-OR where the patches tile the frame exactly.
    rng = np.random.default_rng(1)
    big = rng.random((24, 48, 72)) > 0.995
    pairs = torch.from_numpy(big.reshape(12, 2, 48, 72).any(1)).float()[None]
    ref = torch.nn.functional.max_pool2d(pairs, kernel_size=8)[0].bool().numpy()
    np.testing.assert_array_equal(pool_masks(big, 6, 9, rule="any"), ref)
    # Uneven patches (50 rows into 7): every marked pixel lands in the patch whose rows hold it.
    odd = rng.random((4, 50, 70)) > 0.99
    want = np.zeros((2, 7, 9), bool)
    for t, y, x in zip(*np.nonzero(odd)):
        i = int(np.searchsorted((np.arange(7) * 50) // 7, y, side="right")) - 1
        j = int(np.searchsorted((np.arange(9) * 70) // 9, x, side="right")) - 1
        want[t // 2, i, j] = True
    np.testing.assert_array_equal(pool_masks(odd, 7, 9, rule="any"), want)
    # A 3x3-px object inside one 16-px patch, off its corner: gone under "nearest", one patch under "any".
    bag = np.zeros((2, 256, 256), bool)
    bag[:, 100:103, 40:43] = True
    assert not pool_masks(bag, 16, 16).any()
    assert np.argwhere(pool_masks(bag, 16, 16, rule="any")).tolist() == [[0, 6, 2]]
    with pytest.raises(ValueError, match="pooling rule"):
        pool_masks(bag, 16, 16, rule="bilinear")


def test_clip_loading_and_iteration():
    rec = _rec(30)
    cfg = ClipConfig(num_frames=8, stride=6, height=4, width=8)
    clips = list(iter_clips(rec, cfg))
    assert [c.start for c in clips] == clip_starts(30, 8, 6) == [0, 6, 12, 18, 22]
    for c in clips:
        frames = load_clip(rec, c.start, 8, 4, 8)
        np.testing.assert_array_equal(c.frames, frames)
        assert c.frames[:, 0, 0, 0].tolist() == list(range(c.start, c.start + 8))
        np.testing.assert_array_equal(c.masks, load_clip_masks(rec, c.start, 8, 4, 8))
        np.testing.assert_array_equal(c.labels, rec.frame_labels[c.start:c.start + 8])
    # A video shorter than a clip: one clip, padded with its last frame.
    short = _rec(5)
    (c,) = list(iter_clips(short, cfg))
    assert c.frames[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert c.labels.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(load_clip(short, 0, 8, 4, 8), c.frames)
