"""Render a planned video: background, actors far to near, lighting, sensor noise.

Yields (frame, id_map) per frame and fills `pixels[t, oid]`, the number of pixels each object
covers in each frame after occlusion: the ground truth the sidecars and tracks are built from.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tvau.synth.actors import DRAW, Actor, Canvas
from tvau.synth.scene import Scene


def _depth(a: Actor, t: int) -> float:
    g = a.pose.get("ground") if a.category == "ball" else None
    return float(g[t]) if g is not None else float(a.y[t])


def _height(scene: Scene, a: Actor, t: int) -> float:
    return scene.person_height(_depth(a, t)) * a.size


def render_video(scene: Scene, actors: list[Actor], frames: int, rng: np.random.Generator,
                 noise_sigma: float, lighting_amplitude: float,
                 pixels: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Frames (H, W, 3) uint8 RGB and id maps (H, W) uint8. `pixels`, if given, is a (frames,
    max_id + 1) int array that receives per-object pixel counts."""
    s = scene.size
    gain = scene.lighting(rng, frames, lighting_amplitude)
    # The cloud shadow drifts across the frame: a window sliding over a map twice the frame size.
    drift = rng.uniform(-1, 1, 2)
    drift = drift / (np.linalg.norm(drift) + 1e-9) * rng.uniform(0.2, 0.6) * s / frames
    origin = rng.uniform(0, s, 2)
    for t in range(frames):
        frame = scene.background.copy()
        ids = np.zeros((s, s), np.uint8)
        canvas = Canvas(frame, ids)
        live = [a for a in actors if a.present[t]]
        live.sort(key=lambda a: (_depth(a, t), a.layer))
        for a in live:
            DRAW[a.category](canvas, a, t, _height(scene, a, t))
        ox, oy = (origin + drift * t).astype(int) % s
        light = gain[t] * scene.shadow[oy:oy + s, ox:ox + s, None]
        out = frame.astype(np.float32) * light
        if noise_sigma > 0:
            out += rng.standard_normal((s, s, 3), dtype=np.float32) * noise_sigma
        np.clip(out, 0, 255, out=out)
        if pixels is not None:
            pixels[t] = np.bincount(ids.ravel(), minlength=pixels.shape[1])[: pixels.shape[1]]
        yield out.astype(np.uint8), ids
