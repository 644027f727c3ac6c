"""Streaming video decode and encode with PyAV (no system ffmpeg needed).

Frames are RGB uint8 arrays of shape (H, W, 3). Decoding is lazy: a caller that wants frames
100..123 of a long video never holds more than one decoded frame at a time, and a start beyond the
first frames seeks to the nearest keyframe instead of decoding from the beginning.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Self

import av
import numpy as np
from av.video.reformatter import VideoReformatter


class VideoError(ValueError):
    """A video file that cannot be opened or decoded (the message names the file), or an encoder
    this FFmpeg build does not have."""


DEFAULT_CODEC = "libx264"  # H.264, the default of VideoWriter and of params.yaml synth.codec
FALLBACK_CODEC = "mpeg4"  # MPEG-4 part 2: built into every FFmpeg, used only in place of the default


def has_encoder(name: str) -> bool:
    """Whether this PyAV/FFmpeg build can encode with `name`."""
    try:
        av.Codec(name, "w")
    except ValueError:  # av.codec.codec.UnknownCodecError
        return False
    return True


def resolve_codec(codec: str) -> str:
    """The encoder to write `codec` with: the codec itself when this build has it; MPEG-4 in place
    of the default H.264 when libx264 is missing (said on stderr: output is byte-identical for a
    given seed per codec, not across codecs). Any other missing encoder, a typo included, is an
    error rather than a silent change of format."""
    if has_encoder(codec):
        return codec
    if codec == DEFAULT_CODEC and has_encoder(FALLBACK_CODEC):
        print(f"warning: this PyAV/FFmpeg build has no H.264 encoder ({DEFAULT_CODEC}); "
              f"writing MPEG-4 ({FALLBACK_CODEC}) instead", file=sys.stderr, flush=True)
        return FALLBACK_CODEC
    raise VideoError(f"video codec {codec!r}: no such encoder in this PyAV/FFmpeg build "
                     f"(use {DEFAULT_CODEC!r}, or {FALLBACK_CODEC!r})")


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    height: int
    width: int
    fps: float


def _open(path: Path):
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"{path}: cannot open video: {exc}") from None


def probe(path: str | Path) -> VideoInfo:
    """Frame count, size and frame rate. Uses the container's frame count when it has one and
    otherwise counts packets (demuxing only, no decoding)."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or 25
        n = int(stream.frames or 0)
        if n <= 0:
            n = sum(1 for p in container.demux(stream) if p.size)
        return VideoInfo(num_frames=n, height=stream.height, width=stream.width, fps=float(rate))


def _frame_index(frame: av.VideoFrame, stream, fps: float) -> int | None:
    if frame.pts is None or stream.time_base is None:
        return None
    t0 = stream.start_time or 0
    return round(float((frame.pts - t0) * stream.time_base) * fps)


def iter_frames(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Frames start..stop-1 (0-based, stop exclusive) as (H, W, 3) uint8 RGB arrays."""
    path = Path(path)
    if stop is not None and stop <= start:
        return
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.base_rate or 25)
        seeked = False
        if start > 0 and stream.time_base is not None:
            # Seek to the keyframe at or before `start`; frame indices then come from pts.
            target = int((stream.start_time or 0) + start / fps / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
                seeked = True
            except av.FFmpegError:
                seeked = False
        yield from _decode(container, stream, fps, start, stop, seeked, path)


def _decode(container, stream, fps, start, stop, seeked, path) -> Iterator[np.ndarray]:
    # One yuv->rgb converter for the video, on one thread: a frame's own to_ndarray(format=...) builds a
    # new swscale context per frame with automatic threads (a thread pool per frame, 20x slower; same
    # pixels).
    to_rgb = VideoReformatter()
    count = 0
    try:
        for frame in container.decode(stream):
            idx = _frame_index(frame, stream, fps) if seeked else count
            if idx is None:  # no timestamps after a seek: start again without seeking
                container.seek(0, stream=stream)
                yield from _decode(container, stream, fps, start, stop, False, path)
                return
            if seeked and count == 0 and idx > start:  # the seek overshot: decode from the start
                container.seek(0, stream=stream, backward=True)
                yield from _decode(container, stream, fps, start, stop, False, path)
                return
            count += 1
            if idx < start:
                continue
            if stop is not None and idx >= stop:
                return
            yield to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: decoding failed: {exc}") from None


class VideoWriter:
    """Encode RGB frames to a video file (H.264 in mp4 by default; yuv420p, constant frame rate).

    Usage: `with VideoWriter(path, fps, width, height) as w: w.write(frame)`. `threads=1` keeps
    the encoder bit-exact between runs (x264 with several threads is not guaranteed to be). The
    encoder actually used is `self.codec` (see resolve_codec: only the default falls back)."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int,
                 codec: str = DEFAULT_CODEC, crf: int = 20, threads: int = 1) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.codec = resolve_codec(codec)  # before opening: a bad codec leaves no file behind
        self._container = av.open(str(self.path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream(self.codec, rate=rate)
        s = self._stream
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        if s.codec_context.name == "libx264":
            # Bit-exact between runs only with one thread and without macroblock-tree rate control
            # (mbtree made some 64x64 videos differ between identical runs in our tests).
            s.options = {"crf": str(crf), "preset": "veryfast", "threads": str(threads),
                         "x264-params": f"threads={threads}:lookahead-threads=1:mbtree=0"}
        else:
            s.codec_context.bit_rate = max(200_000, width * height * 24 // 2)  # ~0.5 bit/pixel
        s.codec_context.thread_count = threads
        self._tb, self._n = Fraction(1, 1) / rate, 0
        # One reformatter for the whole file: it keeps its swscale context between frames of the same
        # size (a frame's own .reformat() builds a new one per frame), and one thread: swscale's automatic
        # threads start a pool per context and spin under load (about 20x slower at 256 px; same bytes).
        self._rgb_to_yuv = VideoReformatter()

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected ({self.height}, {self.width}, 3) uint8, got {frame.shape} {frame.dtype}")
        # Convert to yuv420p ourselves and re-wrap the planes in a fresh frame: a frame that the
        # encoder converts internally can carry uninitialised padding, which made x264's output
        # differ between identical runs (seen with 64x64 frames).
        yuv = self._rgb_to_yuv.reformat(av.VideoFrame.from_ndarray(frame, format="rgb24"), format="yuv420p",
                                       threads=1).to_ndarray()
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        # Explicit timestamps: left unset, the encoder sees none and its rate control is not
        # reproducible between runs.
        vf.pts, vf.time_base = self._n, self._tb
        self._n += 1
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
