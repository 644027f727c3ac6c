"""The non-learned reference scorer: background subtraction plus motion magnitude.

Every evaluation table gets a row that needs no training. Per frame, on a grey copy shrunk so that
its longer side is `work_size` pixels:

    frame      = Gaussian blur of the grey frame (sigma `blur_sigma`): averages sensor noise away
                 before differencing (blurring |differences| afterwards would keep the noise's mean)
    background = median of the last `background_window` sampled frames (one every
                 `background_every` frames; causal, so it follows slow changes)
    db, dm     = frame - background, frame - previous frame, each minus its own median over the
                 image, which cancels a global lighting change
    d          = |db| + motion_weight * |dm|
    heat       = d / (d + scale)           in [0, 1), 0.5 where d == scale

and `heat` is resized back to the frame size. The output has the form of the model's
frame-resolution heatmap: one (H, W) float32 map in [0, 1] per frame, here yielded one frame at a
time so a video is never held whole (`heatmaps` stacks them into (num_frames, H, W) for small
videos). What it sees is "something differs from the recent past": it flags every moving person,
not only anomalous ones, which is exactly what makes it a useful floor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

from tvau.data.record import VideoRecord
from tvau.metrics.config import BaselineConfig


def iter_frame_heatmaps(
    frames: Iterable[np.ndarray], cfg: BaselineConfig | None = None
) -> Iterator[np.ndarray]:
    """frames: (H, W, 3) uint8 RGB (or (H, W) grey) arrays -> (H, W) float32 heatmaps in [0, 1]."""
    import cv2

    cfg = cfg or BaselineConfig()
    window: deque[np.ndarray] = deque(maxlen=cfg.background_window)
    background = prev = None
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        H, W = frame.shape[:2]
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        f = min(1.0, cfg.work_size / max(H, W))
        size = (max(1, round(W * f)), max(1, round(H * f)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        if cfg.blur_sigma > 0:
            grey = cv2.GaussianBlur(grey, (0, 0), cfg.blur_sigma)
        if i % cfg.background_every == 0 or background is None:
            window.append(grey)
            background = np.median(np.stack(window), axis=0).astype(np.float32)
        db = grey - background
        d = np.abs(db - np.median(db))
        if prev is not None and cfg.motion_weight > 0:
            dm = grey - prev
            d += cfg.motion_weight * np.abs(dm - np.median(dm))
        prev = grey
        heat = d / (d + cfg.scale)
        if heat.shape != (H, W):
            heat = cv2.resize(heat, (W, H), interpolation=cv2.INTER_LINEAR)
        yield np.clip(heat, 0.0, 1.0).astype(np.float32, copy=False)


class BaselineScorer:
    """Callable scorer: record -> iterator of (H, W) float32 heatmaps, one per frame."""

    name = "baseline-bgsub-motion"

    def __init__(self, cfg: BaselineConfig | None = None) -> None:
        self.cfg = cfg or BaselineConfig()

    def __call__(self, record: VideoRecord) -> Iterator[np.ndarray]:
        return iter_frame_heatmaps(record.iter_frames(), self.cfg)


def heatmaps(record: VideoRecord, cfg: BaselineConfig | None = None) -> np.ndarray:
    """All heatmaps of a (small) video stacked: (num_frames, H, W) float32."""
    maps = list(BaselineScorer(cfg)(record))
    if not maps:
        return np.zeros((0, record.height, record.width), dtype=np.float32)
    return np.stack(maps)
