"""Pixel-level helpers shared by the annotators: objects from id maps, connected components,
colour names from pixels, and the inclusive-box conventions.

Boxes are inclusive (x2 is the last column inside), centroids are the mean pixel coordinate of
the object's pixels, so a centroid always lies inside its box.
"""

from __future__ import annotations

import cv2
import numpy as np

from tvau import vocab

# A representative RGB value per vocabulary colour, for naming the mean colour of a region. The
# generator may draw from its own palette; nearest-neighbour naming tolerates shading and blur.
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "white": (240, 240, 240),
    "gray": (128, 128, 128),
    "red": (210, 35, 35),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 210),
    "purple": (130, 50, 170),
    "pink": (245, 150, 190),
    "brown": (125, 80, 40),
}
assert set(COLOR_RGB) == set(vocab.COLORS), "COLOR_RGB must name every vocab colour"
_NAMES = list(COLOR_RGB)
_RGB = np.asarray([COLOR_RGB[n] for n in _NAMES], dtype=np.float32)  # (C, 3)


def color_name(rgb: np.ndarray) -> str:
    """The vocabulary colour nearest (Euclidean in RGB) to a mean colour (3,)."""
    d = ((_RGB - np.asarray(rgb, dtype=np.float32)[None]) ** 2).sum(1)
    return _NAMES[int(d.argmin())]


def objects_in_id_map(id_map: np.ndarray, min_area: int = 1) -> list[dict]:
    """One dict per object id > 0 in an (H, W) int map: id, inclusive box, centroid, area, and the
    object's pixel coordinates ys, xs (raster order, as np.nonzero gives them)."""
    id_map = np.asarray(id_map)
    flat = id_map.ravel()
    # One pass over the frame for all objects (not one full-frame comparison per id): the object
    # pixels in raster order, stably sorted by id, so each id's run keeps np.nonzero's order.
    where = np.flatnonzero(flat > 0)
    if not where.size:
        return []
    values = flat[where]
    order = np.argsort(values, kind="stable")
    where, values = where[order], values[order]
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    width = id_map.shape[1]
    out = []
    for idx, oid in zip(np.split(where, cuts), values[np.r_[0, cuts]]):
        if len(idx) < min_area:
            continue
        ys, xs = np.divmod(idx, width)
        x1, x2, y1, y2 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        out.append(
            {
                "object_id": int(oid),
                "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                "cx": float(xs.mean()), "cy": float(ys.mean()),
                "area": len(xs),
                "ys": ys, "xs": xs,
            }
        )
    return out


def components(mask: np.ndarray, min_area: int = 1) -> list[dict]:
    """8-connected components of an (H, W) boolean mask, numbered 1.. in OpenCV's scan order,
    in the same dict layout as `objects_in_id_map`."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return []
    objs = objects_in_id_map(labels.astype(np.int32), min_area=min_area)
    for i, o in enumerate(objs, 1):  # renumber densely after dropping small ones
        o["object_id"] = i
    return objs


def mean_color(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> str:
    """Colour name of the mean RGB of the given pixels of an (H, W, 3) frame."""
    return color_name(frame[ys, xs].reshape(-1, 3).mean(0))


def blur_outside(frame: np.ndarray, keep: np.ndarray, sigma: float, dilate: int = 0) -> np.ndarray:
    """The frame with every pixel outside `keep` (H, W bool, dilated by `dilate` px) replaced by
    a Gaussian blur of sigma `sigma`; pixels inside are returned bit-identical."""
    if dilate > 0 and keep.any():
        k = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        keep = cv2.dilate(keep.astype(np.uint8), k).astype(bool)
    blurred = cv2.GaussianBlur(frame, ksize=(0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.where(keep[..., None], frame, blurred)
