"""Clip sampling and mask pooling (docs/method.md sections 2 and 4).

The model sees clips of `num_frames` frames (paper: 24) starting every `stride` frames (paper: 12),
resized to (height, width). Ground-truth masks are pooled to the backbone's patch grid T'xH'xW':
logical OR over each pair of frames (the vision tower's temporal patch is 2 frames), then a
nearest-neighbour resize of the (H, W) mask to (H', W') with source index floor(i * H / H') (the
convention of torch.nn.functional.interpolate(mode="nearest")).

Short videos: a video shorter than one clip gives one clip at 0, padded by repeating its last
frame. With cover_tail=True (default) a last clip is added so that every frame is covered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import get_args

import cv2
import numpy as np

from tvau.data.config import ClipConfig, MaskPooling
from tvau.data.record import VideoRecord


def clip_starts(num_frames: int, length: int = 24, stride: int = 12, cover_tail: bool = True) -> list[int]:
    """Start frames of the clips of a video: 0, stride, 2*stride, ... while a clip fits; plus
    num_frames - length when the last regular clip stops before the end (cover_tail)."""
    if num_frames <= 0:
        return []
    if length <= 0 or stride <= 0:
        raise ValueError("length and stride must be positive")
    if num_frames <= length:
        return [0]
    starts = list(range(0, num_frames - length + 1, stride))
    if cover_tail and starts[-1] + length < num_frames:
        starts.append(num_frames - length)
    return starts


def patch_grid(height: int, width: int, patch_size: int = 14) -> tuple[int, int]:
    """(H', W') of the backbone's patch grid for frames of height x width (paper: 476x868 -> 34x62)."""
    return height // patch_size, width // patch_size


def _resize(img: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    if img.shape[:2] == (height, width):
        return img
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_LINEAR)
    return cv2.resize(img, (width, height), interpolation=interp)


def _padded(items: list[np.ndarray], length: int) -> np.ndarray:
    if not items:
        raise ValueError("empty clip")
    items = items + [items[-1]] * (length - len(items))
    return np.stack(items)


def load_clip(record: VideoRecord, start: int, length: int, height: int, width: int) -> np.ndarray:
    """(length, height, width, 3) uint8 RGB frames start..start+length-1, padded at the end by
    repeating the last frame where the video is shorter."""
    frames = [_resize(f, height, width) for f in record.iter_frames(start, start + length)]
    return _padded(frames, length)


def load_clip_masks(record: VideoRecord, start: int, length: int, height: int | None = None,
                    width: int | None = None) -> np.ndarray:
    """(length, height, width) bool anomaly masks (nearest resize), padded like load_clip."""
    h, w = height or record.height, width or record.width
    masks = [_resize(m.astype(np.uint8), h, w, nearest=True).astype(bool)
             for m in record.iter_anomaly_masks(start, start + length)]
    return _padded(masks, length)


def nearest_indices(src: int, dst: int) -> np.ndarray:
    """Source index of each of dst output cells: floor(i * src / dst)."""
    return np.minimum((np.arange(dst) * src) // dst, src - 1)


def pool_masks(masks: np.ndarray, grid_h: int, grid_w: int, temporal_patch: int = 2,
               rule: str = "nearest") -> np.ndarray:
    """(T, H, W) bool -> (ceil(T / temporal_patch), grid_h, grid_w) bool: OR over each group of
    temporal_patch frames (an odd last frame is its own group), then per patch either the pixel at
    its top-left corner (rule "nearest", the paper's nearest resize) or the OR of all its pixels
    (rule "any"; ClipConfig.mask_pooling says why). Patch (i, j) spans rows floor(i H / grid_h) to
    floor((i + 1) H / grid_h) - 1, and likewise for columns."""
    masks = np.asarray(masks).astype(bool)
    if masks.ndim != 3:
        raise ValueError(f"expected (T, H, W) masks, got shape {masks.shape}")
    if rule not in get_args(MaskPooling):
        raise ValueError(f"unknown mask pooling rule {rule!r} ({' | '.join(get_args(MaskPooling))})")
    T, H, W = masks.shape
    pad = (-T) % temporal_patch
    if pad:
        masks = np.concatenate([masks, np.zeros((pad, H, W), bool)])
    pairs = masks.reshape(-1, temporal_patch, H, W).any(axis=1)
    rows, cols = nearest_indices(H, grid_h), nearest_indices(W, grid_w)
    if rule == "nearest" or H < grid_h or W < grid_w:  # a patch smaller than a pixel has one pixel
        return pairs[:, rows][:, :, cols]
    return np.logical_or.reduceat(np.logical_or.reduceat(pairs, rows, axis=1), cols, axis=2)


def pool_labels(labels: np.ndarray, temporal_patch: int = 2) -> np.ndarray:
    """(T,) 0/1 frame labels -> (ceil(T / temporal_patch),) by OR over each frame group."""
    labels = np.asarray(labels).astype(bool)
    pad = (-labels.size) % temporal_patch
    return np.concatenate([labels, np.zeros(pad, bool)]).reshape(-1, temporal_patch).any(axis=1)


@dataclass
class Clip:
    video: str
    start: int  # first frame (inclusive); frames start..start+len-1, padded past the video's end
    frames: np.ndarray  # (T, height, width, 3) uint8 RGB
    masks: np.ndarray | None  # (T, height, width) bool anomaly masks, if requested
    labels: np.ndarray  # (T,) uint8 frame labels (padding repeats the last label)


def iter_clips(record: VideoRecord, cfg: ClipConfig | None = None, with_masks: bool = True,
               cover_tail: bool | None = None) -> Iterator[Clip]:
    """Every clip of a video in order, decoding each frame once (a sliding window over the
    stream), resized to (cfg.height, cfg.width)."""
    cfg = cfg or ClipConfig()
    L, H, W = cfg.num_frames, cfg.height, cfg.width
    starts = clip_starts(record.num_frames, L, cfg.stride, cfg.cover_tail if cover_tail is None else cover_tail)
    if not starts:
        return
    need = set(starts)
    frames: deque = deque(maxlen=L)
    masks: deque = deque(maxlen=L)
    mask_it = record.iter_anomaly_masks() if with_masks else None
    labels = np.asarray(record.frame_labels, np.uint8)
    pending = sorted(need)
    t = -1
    for t, frame in enumerate(record.iter_frames()):
        frames.append(_resize(frame, H, W))
        if mask_it is not None:
            masks.append(_resize(next(mask_it).astype(np.uint8), H, W, nearest=True).astype(bool))
        while pending and (pending[0] + L - 1 == t):
            s = pending.pop(0)
            yield Clip(record.name, s, np.stack(frames), np.stack(masks) if with_masks else None,
                       labels[s:s + L].copy())
    # A video shorter than one clip (or whose decoder returned fewer frames than announced).
    for s in pending:
        n = t + 1 - s
        if n <= 0:
            break
        fr = list(frames)[-n:]
        ms = list(masks)[-n:] if with_masks else None
        lab = labels[s:s + n]
        lab = np.concatenate([lab, np.repeat(lab[-1:], L - lab.size)]) if lab.size else np.zeros(L, np.uint8)
        yield Clip(record.name, s, _padded(fr, L), _padded(ms, L) if with_masks else None, lab)
