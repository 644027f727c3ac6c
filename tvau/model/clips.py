"""Small clip helpers for the model's commands, tests and benchmark: a synthetic clip, and the first
clip of a video file (PyAV). Dataset-grade decoding lives in tvau.data; this is only for quick runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_clip(num_frames: int = 24, height: int = 112, width: int = 112, square: int = 20,
                   seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a noisy gray background and a bright square moving left to right."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(90, 130, size=(num_frames, height, width, 3), dtype=np.uint8)
    y = height // 2 - square // 2
    for t in range(num_frames):
        x = round(t * (width - square) / max(1, num_frames - 1))
        clip[t, y:y + square, x:x + square] = 250
    return clip


def read_clip(path: str | Path, num_frames: int, size: tuple[int, int]) -> np.ndarray:
    """The first `num_frames` frames of a video, resized to size = (height, width): (T, H, W, 3) uint8.
    Decoding (and its errors naming the file) is tvau.video's."""
    import cv2

    from tvau.video import iter_frames

    frames = [cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA)
              for f in iter_frames(path, 0, num_frames)]
    if not frames:
        raise ValueError(f"{path}: no video frames")
    return np.stack(frames)
