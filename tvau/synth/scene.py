"""A fixed camera: the textured background, the walkable area, perspective and lighting.

All videos of one scene share the background (the camera does not move); lighting and noise
change per frame. Coordinates are image pixels, y down; "foot" points are where actors touch the
ground. Perspective: things near the top of the frame are farther away and drawn smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Paving colours (RGB) of the walkway, and grass base colours.
PAVING = ((150, 150, 146), (182, 168, 140), (160, 96, 80), (120, 120, 124))
GRASS = ((70, 118, 52), (92, 128, 60), (60, 100, 56))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of shape (size, size, channels): a coarse grid upsampled."""
    coarse = rng.uniform(-1, 1, (cells, cells, channels)).astype(np.float32)
    out = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return out.reshape(size, size, channels)


@dataclass
class Scene:
    index: int  # the N of Scene{N} (1-based)
    size: int  # frame width = height, pixels
    background: np.ndarray  # (size, size, 3) uint8 RGB, without lighting or noise
    walk_mask: np.ndarray  # (size, size) bool, the paved area actors walk on
    layout: str  # "horizontal" | "vertical" | "plaza"
    centerline: np.ndarray  # (2, 2) float: entry and exit of the main walkway (outside the frame)
    half_width: float  # half the walkway width at the bottom of the frame, pixels
    shadow: np.ndarray  # (2*size, 2*size) float32 cloud-shadow gain map, slid over the frame

    def persp(self, y: float) -> float:
        """Scale of an object whose foot is at row y (1.0 at the bottom of the frame)."""
        return 0.5 + 0.5 * float(np.clip(y, -0.2 * self.size, 1.2 * self.size)) / self.size

    def person_height(self, y: float) -> float:
        """Height in pixels of an average adult standing at row y."""
        return 0.22 * self.size * self.persp(y)

    def _lateral(self, p: np.ndarray) -> np.ndarray:
        d = self.centerline[1] - self.centerline[0]
        return np.array([-d[1], d[0]]) / np.linalg.norm(d)

    def sample_route(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Entry and exit points (outside the frame) of a plausible walk across the scene."""
        s = self.size
        if self.layout == "plaza":
            # Open paved square in the lower part: from one edge to another, never the same edge.
            def edge_point(e: int) -> np.ndarray:
                t = rng.uniform(0.1, 0.9)
                lo = 0.45 * s
                pts = (np.array([-0.08 * s, lo + t * (0.55 * s)]),  # left
                       np.array([1.08 * s, lo + t * (0.55 * s)]),  # right
                       np.array([t * s, 1.1 * s]))  # bottom
                return pts[e]
            a, b = rng.choice(3, size=2, replace=False)
            return edge_point(int(a)), edge_point(int(b))
        a, b = self.centerline
        off = rng.uniform(-0.7, 0.7) * self.half_width * self._lateral(a)
        off2 = off + rng.uniform(-0.2, 0.2) * self.half_width * self._lateral(a)
        p, q = a + off * self.persp(a[1]), b + off2 * self.persp(b[1])
        return (p, q) if rng.random() < 0.5 else (q, p)

    def sample_spot(self, rng: np.random.Generator, margin: float = 0.2) -> np.ndarray:
        """A point on the paved area, away from the frame border (for events that stay put)."""
        ys, xs = np.nonzero(self.walk_mask)
        lo, hi = margin * self.size, (1 - margin) * self.size
        keep = (xs > lo) & (xs < hi) & (ys > max(lo, 0.35 * self.size)) & (ys < hi + 0.1 * self.size)
        if not keep.any():
            keep = np.ones_like(xs, dtype=bool)
        i = int(rng.integers(int(keep.sum())))
        return np.array([xs[keep][i], ys[keep][i]], dtype=np.float64)

    def lighting(self, rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
        """(frames,) global gain: a slow drift plus a sine (clouds, auto-exposure), mean ~1."""
        t = np.arange(frames) / max(frames - 1, 1)
        phase, drift = rng.uniform(0, 2 * np.pi), rng.uniform(-1, 1)
        cycles = rng.uniform(0.5, 1.5)
        g = 1 + amplitude * (0.5 * drift * (2 * t - 1) + 0.5 * np.sin(2 * np.pi * cycles * t + phase))
        return g.astype(np.float32)


def make_scene(index: int, size: int, rng: np.random.Generator) -> Scene:
    s = size
    layout = ("horizontal", "vertical", "plaza")[(index - 1) % 3]
    grass = np.array(GRASS[int(rng.integers(len(GRASS)))], np.float32)
    bg = grass + 26 * _smooth_noise(rng, s, 6) + 14 * _smooth_noise(rng, s, 24) \
        + 8 * rng.standard_normal((s, s, 1), dtype=np.float32)
    bg = np.repeat(bg, 3, axis=2) if bg.shape[2] == 1 else bg
    bg = grass[None, None] * 0 + bg  # (s, s, 3)

    mask = np.zeros((s, s), np.uint8)
    if layout == "horizontal":
        y0, y1 = rng.uniform(0.55, 0.8, 2) * s
        center = np.array([[-0.1 * s, y0], [1.1 * s, y1]])
    elif layout == "vertical":
        x0, x1 = rng.uniform(0.3, 0.45) * s, rng.uniform(0.45, 0.7) * s
        center = np.array([[x0, -0.1 * s], [x1, 1.1 * s]])
    else:
        center = np.array([[-0.1 * s, 0.72 * s], [1.1 * s, 0.72 * s]])
    half = rng.uniform(0.09, 0.13) * s
    if layout == "plaza":
        top = rng.uniform(0.36, 0.42) * s
        cv2.fillPoly(mask, [np.array([[0, top], [s, top - 0.04 * s], [s, s], [0, s]], np.int32)], 1)
    else:
        ts = np.linspace(0, 1, 24)[:, None]
        pts = center[0] + ts * (center[1] - center[0])
        d = center[1] - center[0]
        n = np.array([-d[1], d[0]]) / np.linalg.norm(d)
        w = np.array([half * (0.5 + 0.5 * np.clip(p[1], 0, s) / s) for p in pts])[:, None]
        poly = np.concatenate([pts + n * w, (pts - n * w)[::-1]])
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)

    # Paving: base colour, tile joints, wear. Drawn on a layer, then pasted where mask is set.
    pave = np.array(PAVING[int(rng.integers(len(PAVING)))], np.float32)
    layer = pave + 18 * _smooth_noise(rng, s, 10) + 7 * rng.standard_normal((s, s, 1), dtype=np.float32)
    layer = np.broadcast_to(layer, (s, s, 3)).copy()
    tile = max(4, int(s * rng.uniform(0.035, 0.06)))
    joints = np.zeros((s, s), np.uint8)
    for k in range(0, 2 * s, tile):
        cv2.line(joints, (k, 0), (k - s // 3, s), 1, 1)  # oblique joints read as perspective
    for k in range(0, s, max(3, int(tile * 0.7))):
        cv2.line(joints, (0, k), (s, k), 1, 1)
    layer[joints.astype(bool)] *= 0.82
    m = mask.astype(bool)
    bg[m] = layer[m]
    edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
    bg[edge] = bg[edge] * 0.6 + 0.4 * 210  # curb stones

    # Static furniture on the grass: bushes/trees seen from above, benches, lamp posts.
    for _ in range(int(rng.integers(3, 7))):
        c = rng.uniform(0, s, 2)
        if mask[int(min(c[1], s - 1)), int(min(c[0], s - 1))]:
            continue
        r = int(rng.uniform(0.03, 0.07) * s)
        col = tuple(float(v) for v in (np.array(GRASS[0]) * rng.uniform(0.45, 0.7)))
        cv2.circle(bg, (int(c[0]), int(c[1])), r, col, -1)
    for _ in range(int(rng.integers(1, 3))):
        x, y = rng.uniform(0.1, 0.9) * s, rng.uniform(0.15, 0.4) * s
        w, h = 0.09 * s, 0.02 * s
        cv2.rectangle(bg, (int(x), int(y)), (int(x + w), int(y + h)), (100, 64, 40), -1)  # bench
    for _ in range(int(rng.integers(1, 3))):
        x, y = rng.uniform(0.05, 0.95) * s, rng.uniform(0.2, 0.5) * s
        cv2.line(bg, (int(x), int(y)), (int(x), int(y - 0.18 * s)), (70, 70, 76), max(1, s // 128))
        cv2.circle(bg, (int(x), int(y - 0.18 * s)), max(1, s // 96), (230, 226, 190), -1)

    # Far area (top of the frame) is hazier: blend towards a sky-ish grey.
    fade = np.clip(1 - np.arange(s) / (0.35 * s), 0, 1)[:, None, None] * 0.35
    bg = bg * (1 - fade) + fade * np.array([176, 182, 190], np.float32)
    shadow = 1 - 0.18 * np.clip(_smooth_noise(rng, 2 * s, 5)[..., 0], 0, 1)
    return Scene(index=index, size=s, background=np.clip(bg, 0, 255).astype(np.uint8),
                 walk_mask=mask.astype(bool), layout=layout, centerline=center, half_width=half,
                 shadow=shadow.astype(np.float32))
