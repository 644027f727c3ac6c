"""Checking an input video before the model sees it, and streaming it as sampled clips.

`inspect_video` names why a file is unusable (zero bytes, truncated, not a video, no video stream,
unsupported codec, absurd resolution) so it can be quarantined with that reason; decoding errors
found later (a file that opens but breaks half-way) are reported as "truncated" too.

`iter_sampled_clips` decodes one frame at a time (tvau.video.iter_frames), keeps the frames the
analysis rate asks for, resizes them to the model's input size and yields clips from a sliding
window: memory is one clip of model-size frames whatever the video's length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvau.score.config import ScoreConfig

# Leading bytes of containers we know: a file that starts like one but cannot be opened is
# a truncated (or damaged) video rather than "not a video".
_SIGNATURES = (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba", b"\x47")


class BadVideo(ValueError):
    """An input that cannot be scored; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


REASONS = ("zero bytes", "truncated", "not a video", "no video stream", "unsupported codec",
           "absurd resolution")


@dataclass(frozen=True)
class VideoMeta:
    width: int
    height: int
    fps: float
    num_frames: int  # as declared by the container (0 when unknown)
    codec: str
    duration_s: float | None


def _looks_like_container(head: bytes) -> bool:
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return True  # ISO BMFF (mp4, mov, m4v)
    return any(head.startswith(s) for s in _SIGNATURES[:-1])


def inspect_video(path: str | Path, cfg: ScoreConfig) -> VideoMeta:
    """Open the container and check its first video stream; raise BadVideo with a reason."""
    import av

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise BadVideo("zero bytes", "the object is empty")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        head = path.open("rb").read(16)
        if _looks_like_container(head):
            raise BadVideo("truncated", f"the container cannot be opened ({exc})") from None
        raise BadVideo("not a video", f"not a known video container ({exc})") from None
    with container:
        streams = container.streams.video
        if not streams:
            kinds = sorted({s.type for s in container.streams})
            raise BadVideo("no video stream", f"streams present: {', '.join(kinds) or 'none'}")
        st = streams[0]
        ctx = st.codec_context
        codec = (ctx.name if ctx is not None else None) or "unknown"
        if codec not in cfg.codecs:
            raise BadVideo("unsupported codec", f"codec {codec!r} is not one of {list(cfg.codecs)}")
        w, h = int(st.width or 0), int(st.height or 0)
        if not (cfg.min_side <= w <= cfg.max_side and cfg.min_side <= h <= cfg.max_side):
            raise BadVideo("absurd resolution", f"{w}x{h} is outside [{cfg.min_side}, {cfg.max_side}] per side")
        rate = st.average_rate or st.base_rate
        fps = float(rate) if rate else 0.0
        if not (0 < fps <= 1000):
            raise BadVideo("absurd resolution", f"frame rate {fps} is not usable")
        n = int(st.frames or 0)
        if n > cfg.max_frames:
            raise BadVideo("absurd resolution", f"{n} frames declared (limit {cfg.max_frames})")
        dur = float(st.duration * st.time_base) if st.duration and st.time_base else None
        return VideoMeta(w, h, fps, n, codec, dur)


def sample_indices_rule(src_fps: float, target_fps: float):
    """Which source frames the analysis rate keeps: frame i is kept when it is the first one
    to reach the next sampling instant (all of them when target >= source)."""
    step = max(1.0, src_fps / target_fps)
    nxt = 0.0

    def keep(i: int) -> bool:
        nonlocal nxt
        if i + 1e-9 >= nxt:
            nxt += step
            return True
        return False

    return keep, min(src_fps, target_fps)


@dataclass
class SampledClip:
    index: int  # clip number in the video
    start: int  # first sampled-frame index
    frames: np.ndarray  # (L, H, W, 3) uint8 at the model's input size (tail padded)
    source_frames: list[int]  # source frame index of each real (unpadded) frame
    new_from: int  # frames[new_from:] are seen for the first time (earlier ones overlap the last clip)


def iter_sampled_clips(path: str | Path, cfg: ScoreConfig, size: tuple[int, int], src_fps: float,
                       keep_frame=None, stats: dict | None = None) -> Iterator[SampledClip]:
    """Clips of cfg.clip_frames sampled frames every cfg.stride, resized to size = (H, W).

    A last clip ending at the final frame is added when the stride grid stops short of it; a
    video shorter than one clip gives one clip padded with its last frame. `keep_frame(i, rgb)`
    is called for every sampled source frame (at source resolution) so callers can keep a
    thumbnail without a second decode. `stats["decoded"]` counts the decoded source frames."""
    import cv2

    from tvau.video import VideoError, iter_frames

    L, S = cfg.clip_frames, cfg.stride
    H, W = size
    keep, _ = sample_indices_rule(src_fps, cfg.sample_fps)
    window: deque = deque(maxlen=L)
    src_idx: deque = deque(maxlen=L)
    n = 0  # sampled frames so far
    next_start = 0
    emitted_end = 0  # sampled frames already covered by emitted clips
    clip_no = 0
    stats = {} if stats is None else stats
    stats["decoded"] = 0
    try:
        for i, frame in enumerate(iter_frames(path)):
            stats["decoded"] = i + 1
            if not keep(i):
                continue
            if keep_frame is not None:
                keep_frame(i, frame)
            interp = cv2.INTER_AREA if frame.shape[0] > H else cv2.INTER_LINEAR
            window.append(cv2.resize(frame, (W, H), interpolation=interp) if frame.shape[:2] != (H, W) else frame)
            src_idx.append(i)
            n += 1
            if n == next_start + L:
                yield SampledClip(clip_no, next_start, np.stack(window), list(src_idx), emitted_end - next_start)
                emitted_end = n
                clip_no += 1
                next_start += S
    except VideoError as exc:
        raise BadVideo("truncated", f"decoding stopped after {n} sampled frames: {exc}") from None
    if n == 0:
        raise BadVideo("truncated", "no frame could be decoded")
    if emitted_end < n:  # the tail: the last L frames (or the whole short video, padded)
        start = max(0, n - L)
        frames = list(window)[-(n - start):]
        frames += [frames[-1]] * (L - len(frames))
        yield SampledClip(clip_no, start, np.stack(frames), list(src_idx)[-(n - start):], emitted_end - start)
