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


# ------------------------------------------------------------- codecs: no silent fallback


def test_unknown_codec_is_an_error_not_a_silent_mpeg4(tmp_path):
    path = tmp_path / "v.mp4"
    with pytest.raises(VideoError, match="'libx246'"):
        VideoWriter(path, 24, 64, 64, codec="libx246")  # a typo of libx264
    assert not path.exists()


def test_default_h264_falls_back_to_mpeg4_saying_so(tmp_path, monkeypatch, capsys):
    # A PyAV build without libx264 (simulated: only the availability answer changes; the MPEG-4
    # encoder that then writes the file is the real one).
    import tvau.video

    monkeypatch.setattr(tvau.video, "has_encoder", lambda name: name != "libx264")
    path = tmp_path / "v.mp4"
    with VideoWriter(path, 24, 64, 48) as w:
        assert w.codec == "mpeg4"
        for _ in range(3):
            w.write(np.full((48, 64, 3), 128, np.uint8))
    assert "no H.264 encoder" in capsys.readouterr().err
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"
    assert probe(path).num_frames == 3
    # only the default falls back: any other missing encoder stays an error
    monkeypatch.setattr(tvau.video, "has_encoder", lambda name: False)
    with pytest.raises(VideoError, match="'libx264'"):
        VideoWriter(tmp_path / "w.mp4", 24, 64, 48)


def test_available_codec_is_used_as_named(tmp_path):
    with VideoWriter(tmp_path / "v.mp4", 24, 64, 48, codec="mpeg4") as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
    with VideoWriter(tmp_path / "x.mp4", 24, 64, 48) as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
    assert w.codec == "libx264"


def test_audio_only_and_empty_files_are_video_errors(tmp_path, audio_only_mp4):
    audio = audio_only_mp4
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (audio, empty):
        with pytest.raises(VideoError, match=str(path)):
            list(iter_frames(path))


def test_shared_single_thread_converters_give_pyav_s_own_pixels(tmp_path):
    """The writer's and the decoder's reused one-thread swscale contexts produce exactly what PyAV's
    per-frame conversions (frame.reformat / to_ndarray(format=...)) produce."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(6)]
    with VideoWriter(tmp_path / "v.mp4", 8.0, 80, 48) as w:
        for f in frames:
            yuv_own = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p").to_ndarray()
            yuv_ours = w._rgb_to_yuv.reformat(av.VideoFrame.from_ndarray(f, format="rgb24"), format="yuv420p",
                                              threads=1).to_ndarray()
            assert np.array_equal(yuv_own, yuv_ours)
            w.write(f)
    with av.open(str(tmp_path / "v.mp4")) as c:
        own = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
    ours = list(iter_frames(tmp_path / "v.mp4"))
    assert len(ours) == len(own) == 6 and all(np.array_equal(a, b) for a, b in zip(own, ours))
