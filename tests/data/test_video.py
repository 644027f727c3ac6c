"""PyAV streaming decode: seeking returns exactly the frames of a sequential decode."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from tvau.video import VideoError, VideoWriter, iter_frames, probe


def test_write_probe_and_seek(tmp_path):
    rng = np.random.default_rng(1)
    # Smooth content (chroma is subsampled 2x2, so pixel noise would not survive encoding).
    base = cv2.resize(rng.integers(0, 255, (8, 12, 3), dtype=np.uint8), (96, 64), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "v.mp4"
    with VideoWriter(path, 24, 96, 64) as w:
        for t in range(60):
            w.write(np.roll(base, 2 * t, axis=1))
        with pytest.raises(ValueError, match="expected"):
            w.write(np.zeros((10, 10, 3), np.uint8))
    info = probe(path)
    assert (info.num_frames, info.height, info.width, info.fps) == (60, 64, 96, 24.0)
    allf = list(iter_frames(path))
    assert len(allf) == 60
    for start, stop in ((0, 5), (37, 45), (55, None), (59, 70)):
        part = list(iter_frames(path, start, stop))
        expect = allf[start:stop]
        assert len(part) == len(expect)
        for a, b in zip(part, expect):
            np.testing.assert_array_equal(a, b)
    # The decoded frames are the written ones up to compression loss, measured against the
    # yuv420p round trip of the same frame (the 2x2 chroma subsampling alone loses more).
    ref = av.VideoFrame.from_ndarray(np.roll(base, 20, axis=1), format="rgb24").reformat(format="yuv420p")
    err = allf[10].astype(float) - ref.to_ndarray(format="rgb24")
    assert np.abs(err).mean() < 5
    # ... and the neighbouring frame (content shifted by 2 pixels) is clearly farther away.
    assert np.abs(allf[11].astype(float) - ref.to_ndarray(format="rgb24")).mean() > 2 * np.abs(err).mean()


def test_unreadable_video(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match=str(bad)):
        probe(bad)
