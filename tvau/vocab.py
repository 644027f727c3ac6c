"""The closed vocabularies shared by the generator, the annotation stages, the prompts and the
dialogue: one place, so that a word means the same thing everywhere.

Sources: event classes and the 3x3 position words are the paper's (docs/method.md sections 3 and 7);
motion states follow the thesis' timeline wording (docs/method.md section 8).
"""

from __future__ import annotations

import numpy as np

# The 12 event classes of the anchor prompt set (docs/method.md section 3), in the paper's order.
EVENT_CLASSES: tuple[str, ...] = (
    "person running",
    "people fighting",
    "person loitering",
    "person jumping",
    "object being thrown",
    "crowd gathering",
    "person riding bicycle",
    "person skateboarding",
    "person falling down",
    "abandoned object",
    "vehicle on walkway",
    "anomaly",
)

# Anomaly kinds the synthetic generator renders (keys) -> the event class each one illustrates.
ANOMALY_KINDS: dict[str, str] = {
    "running": "person running",
    "fighting": "people fighting",
    "loitering": "person loitering",
    "jumping": "person jumping",
    "throwing": "object being thrown",
    "crowd": "crowd gathering",
    "bicycle": "person riding bicycle",
    "skateboard": "person skateboarding",
    "falling": "person falling down",
    "abandoned": "abandoned object",
    "vehicle": "vehicle on walkway",
}

# Object categories that can appear in a frame annotation.
CATEGORIES: tuple[str, ...] = ("person", "bicycle", "skateboard", "car", "bag", "ball")

# Colour names used in attributes (the generator draws from these; annotators must use them).
COLORS: tuple[str, ...] = (
    "black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
)

# What a person or object is doing according to the generator (ground truth, per frame span).
ACTIONS: tuple[str, ...] = (
    "walking", "standing", "running", "jumping", "falling", "lying", "fighting", "riding",
    "skateboarding", "throwing", "flying", "driving", "dropped", "loitering", "gathering",
)

# Measured motion states of an object timeline (docs/method.md section 8).
MOTION_STATES: tuple[str, ...] = ("static", "small movement", "walking", "fast", "cross-region")

# The 3x3 grid position words (docs/method.md section 7), row-major from the top-left cell.
REGIONS_3X3: tuple[str, ...] = (
    "top-left", "top", "top-right",
    "left", "middle", "right",
    "bottom-left", "bottom", "bottom-right",
)

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def regions_of(cx, cy, width, height) -> np.ndarray:
    """The 3x3 grid words for points (cx, cy) in frames of the given sizes (arrays broadcast)."""
    col = np.clip((3 * np.asarray(cx, dtype=np.float64) / width).astype(np.int64), 0, 2)
    row = np.clip((3 * np.asarray(cy, dtype=np.float64) / height).astype(np.int64), 0, 2)
    return np.asarray(REGIONS_3X3)[3 * row + col]


def region_of(cx: float, cy: float, width: int, height: int) -> str:
    """The 3x3 grid word for a point (cx, cy) in a frame of the given size."""
    return str(regions_of(cx, cy, width, height))
