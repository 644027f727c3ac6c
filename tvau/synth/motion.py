"""Scripted motion: an actor follows a list of steps (walk to a point at some speed, or hold still)
and we record its foot position for every frame of the video.

Speeds are in "walking units": 1.0 is an average walk, scaled by perspective, so a person far away
moves fewer pixels per frame. Simulation is time-invariant, which lets a builder anchor an event:
simulate once from frame 0, find when a step begins, then shift the start so it begins at frame ta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tvau.synth.scene import Scene

WALK_SPEED = 0.0085  # frame sizes per frame at perspective 1.0 (about 1.4 m/s for a 1.7 m person)


@dataclass
class Motion:
    x: np.ndarray  # (T,) foot x
    y: np.ndarray  # (T,) foot y
    present: np.ndarray  # (T,) bool
    speed: np.ndarray  # (T,) speed factor of the step being executed (0 while holding)
    step: np.ndarray  # (T,) int index of the current step, -1 where absent
    face: np.ndarray  # (T,) +1 right / -1 left (kept while holding)
    step_start: list  # absolute frame at which each step began (None if never reached)


def simulate(scene: Scene, p0, steps: list, start: int, frames: int) -> Motion:
    """steps: ("move", (x, y), speed_factor) or ("hold", n_frames or None for the rest)."""
    T = frames
    x, y = np.zeros(T), np.zeros(T)
    present, speed = np.zeros(T, bool), np.zeros(T)
    step_of, face = np.full(T, -1, np.int64), np.ones(T, np.int8)
    starts: list = [None] * len(steps)
    pos = np.asarray(p0, np.float64).copy()
    t, cur_face = start, 1
    for i, st in enumerate(steps):
        if t >= T:
            break
        starts[i] = t
        if st[0] == "move":
            target, v = np.asarray(st[1], np.float64), float(st[2])
            d = target - pos
            if abs(d[0]) > 1e-6:
                cur_face = 1 if d[0] > 0 else -1
            while t < T:
                if t >= 0:
                    x[t], y[t], present[t], speed[t], step_of[t], face[t] = pos[0], pos[1], True, v, i, cur_face
                t += 1
                d = target - pos
                dist = float(np.hypot(*d))
                stride = v * WALK_SPEED * scene.size * scene.persp(pos[1])
                if dist <= stride:
                    pos = target.copy()
                    break
                pos = pos + d / dist * stride
        else:
            n = st[1] if st[1] is not None else T - t
            for _ in range(n):
                if t >= T:
                    break
                if t >= 0:
                    x[t], y[t], present[t], speed[t], step_of[t], face[t] = pos[0], pos[1], True, 0.0, i, cur_face
                t += 1
    return Motion(x, y, present, speed, step_of, face, starts)


def anchored(scene: Scene, p0, steps: list, anchor_step: int, ta: int, frames: int) -> Motion:
    """Simulate so that step `anchor_step` begins exactly at frame ta."""
    probe = simulate(scene, p0, steps, 0, frames + 4000)
    k = probe.step_start[anchor_step]
    if k is None:  # the script never gets there (should not happen with finite moves)
        raise RuntimeError("anchor step never reached")
    return simulate(scene, p0, steps, ta - k, frames)
