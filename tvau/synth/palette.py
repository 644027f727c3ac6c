"""Colours and clothing of the synthetic actors.

Every person, normal or anomalous, draws clothing from the same sampler, so that colour never
identifies an anomaly: anomalies must be learned from shape and motion.
"""

from __future__ import annotations

import numpy as np

from tvau.vocab import COLORS

# The RGB each colour word is drawn with (before a small per-object jitter).
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 30),
    "white": (232, 232, 228),
    "gray": (128, 128, 132),
    "red": (196, 34, 36),
    "orange": (236, 128, 30),
    "yellow": (232, 206, 48),
    "green": (44, 146, 58),
    "blue": (34, 72, 196),
    "purple": (118, 46, 158),
    "pink": (236, 140, 178),
    "brown": (118, 72, 36),
}
assert set(COLOR_RGB) == set(COLORS)

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (241, 194, 160), (224, 172, 130), (198, 134, 90), (160, 102, 64), (110, 70, 44),
)
HAIR_RGB: tuple[tuple[int, int, int], ...] = ((30, 24, 20), (70, 46, 28), (140, 100, 60), (200, 180, 130))

UPPER_GARMENTS: tuple[str, ...] = ("t-shirt", "shirt", "jacket", "hoodie", "coat")
LOWER_GARMENTS: tuple[str, ...] = ("trousers", "jeans", "shorts", "skirt")


def jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: int = 12) -> tuple[int, int, int]:
    """The colour with a small random shift per channel: same word, not one exact value."""
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def sample_color(rng: np.random.Generator) -> str:
    return COLORS[int(rng.integers(len(COLORS)))]


def sample_outfit(rng: np.random.Generator) -> dict:
    """A person's look: colour words per part, garment words and the RGB values to draw."""
    upper, lower = sample_color(rng), sample_color(rng)
    top = UPPER_GARMENTS[int(rng.integers(len(UPPER_GARMENTS)))]
    bottom = LOWER_GARMENTS[int(rng.integers(len(LOWER_GARMENTS)))]
    bag = sample_color(rng) if rng.random() < 0.25 else None  # a carried bag (part of the person)
    return {
        "colors": {"upper": upper, "lower": lower},
        "clothing": f"{top} and {bottom}" + (" with a bag" if bag else ""),
        "top": top,
        "bottom": bottom,
        "upper_rgb": jitter(COLOR_RGB[upper], rng),
        "lower_rgb": jitter(COLOR_RGB[lower], rng),
        "skin_rgb": SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        "hair_rgb": HAIR_RGB[int(rng.integers(len(HAIR_RGB)))],
        "bag_rgb": jitter(COLOR_RGB[bag], rng) if bag else None,
        "bag": bag,
    }
