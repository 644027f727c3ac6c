"""The one record every dataset reader yields (UBnormal, ShanghaiTech, our synthetic footage).

Frames and masks are streamed, never held whole: a record knows where its video lives and how to
decode a frame range. Box coordinates are inclusive pixels (x2 is the last column inside the box),
as in the RBDC/TBDC tooling (docs/method.md section 9).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Track:
    """One anomalous object's boxes over time: the RBDC/TBDC ground truth."""

    track_id: int
    frames: np.ndarray  # (N,) int64, ascending frame indices (0-based)
    boxes: np.ndarray  # (N, 4) int64, x1, y1, x2, y2, inclusive pixel coordinates


@dataclass
class VideoRecord(abc.ABC):
    """A video with its labels. Subclasses implement the streaming methods for their layout."""

    dataset: str  # "ubnormal" | "shanghaitech"
    name: str  # video name as in the dataset (e.g. "abnormal_scene_2_scenario_1")
    split: str | None  # "train" | "validation" | "test", or None for an unsplit tree
    source: Path  # the video file or the frame folder
    num_frames: int
    height: int
    width: int
    fps: float
    frame_labels: np.ndarray  # (num_frames,) uint8, 1 = anomalous frame
    tracks: list[Track] = field(default_factory=list)  # anomalous objects only
    object_names: dict[int, str] = field(default_factory=dict)  # object id -> name, where known

    @property
    def is_anomalous(self) -> bool:
        return bool(self.frame_labels.any())

    @abc.abstractmethod
    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Frames start..stop-1 as (H, W, 3) uint8 RGB arrays, decoded lazily."""

    @abc.abstractmethod
    def iter_object_maps(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Per-frame (H, W) int32 object-id maps (0 = background). Where a dataset has no object
        ids (ShanghaiTech), the anomaly pixel mask as 0/1."""

    @abc.abstractmethod
    def iter_anomaly_masks(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Per-frame (H, W) bool masks of anomalous pixels."""
