"""Measured motion of a track (stage 2) and the motion implied by a described action (stage 3).

Speeds are in frame sizes per second: pixels / max(H, W) / seconds, so the thresholds in
params.yaml mean the same at 64 px and at 856 px. Centroids are smoothed with a short moving
average first: a standing person's mask wobbles by a pixel or so as the limbs move, which would
otherwise add up to a walking-sized path length.
"""

from __future__ import annotations

import math

import numpy as np

from tvau import vocab
from tvau.construct.config import ConstructConfig

SMOOTH = 5  # frames in the centroid moving average
STEP_SECONDS = 0.25  # path length is measured between points this far apart in time
MIN_RUN = 3  # a 3x3 region visited for fewer consecutive points is boundary jitter, not a visit

# Ordinal motion levels: 0 still, 1 moving in place, 2 moving along, 3 fast. The consistency
# check compares a described action's level with the measured state's level (our scale).
MOTION_LEVEL: dict[str, int] = {
    "static": 0,
    "small movement": 1,
    "walking": 2,
    "cross-region": 2,
    "fast": 3,
}
ACTION_LEVEL: dict[str, int] = {
    "standing": 0, "lying": 0, "dropped": 0,
    "loitering": 1, "gathering": 1, "fighting": 1, "throwing": 1, "falling": 1, "jumping": 1,
    "walking": 2,
    "running": 3, "riding": 3, "skateboarding": 3, "driving": 3, "flying": 3,
}
assert set(MOTION_LEVEL) == set(vocab.MOTION_STATES)
assert set(ACTION_LEVEL) == set(vocab.ACTIONS)


def smooth(points: np.ndarray, window: int = SMOOTH) -> np.ndarray:
    """Centred moving average of (N, 2) points whose window shrinks symmetrically at the ends
    (half-width min(window // 2, i, N-1-i)), so straight uniform motion is left exactly as it is
    and the first and last points stay put."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 3 or window <= 1:
        return pts
    i = np.arange(n)
    h = np.minimum(window // 2, np.minimum(i, n - 1 - i))
    c = np.concatenate([np.zeros((1, 2)), np.cumsum(pts, axis=0)])
    return (c[i + h + 1] - c[i - h]) / (2 * h + 1)[:, None]


def regions_visited(regions: list[str], min_run: int = MIN_RUN) -> list[str]:
    """Regions in visiting order, repeats collapsed, runs shorter than `min_run` points dropped
    (unless that would drop everything)."""
    runs: list[list] = []
    for r in regions:
        if runs and runs[-1][0] == r:
            runs[-1][1] += 1
        else:
            runs.append([r, 1])
    kept = [r for r, n in runs if n >= min_run] or [max(runs, key=lambda x: x[1])[0]]
    out: list[str] = []
    for r in kept:
        if not out or out[-1] != r:
            out.append(r)
    return out


def motion_state(speed: float, start_region: str, end_region: str, cfg: ConstructConfig) -> str:
    """One of vocab.MOTION_STATES from a mean speed (frame sizes per second) and the regions."""
    if speed < cfg.static_speed:
        return "static"
    if speed < cfg.small_speed:
        return "small movement"
    if speed >= cfg.fast_speed:
        return "fast"
    return "cross-region" if start_region != end_region else "walking"


def summarise(
    frames: np.ndarray, centroids: np.ndarray, width: int, height: int, fps: float, cfg: ConstructConfig
) -> dict:
    """Motion summary of one track (or a span of it): frames (N,) ascending, centroids (N, 2).

    Returns regions (list), start_region, end_region, displacement and path_length (pixels),
    speed (frame sizes per second) and motion_state."""
    pts = smooth(np.asarray(centroids, dtype=np.float64))
    # Path length over quarter-second steps: per-frame steps would add up the residual jitter.
    k = max(1, round(fps * STEP_SECONDS))
    idx = np.unique(np.r_[np.arange(0, len(pts), k), len(pts) - 1]) if len(pts) else np.zeros(0, int)
    coarse = pts[idx]
    regs = [vocab.region_of(x, y, width, height) for x, y in np.asarray(centroids)]
    visited = regions_visited(regs)
    # math.hypot and math.fsum give the same bits on every CPU; np.linalg.norm of one vector goes
    # through BLAS, whose AVX2 and AVX-512 kernels round the last bit differently.
    path = math.fsum(math.hypot(dx, dy) for dx, dy in np.diff(coarse, axis=0))
    disp = math.hypot(*(pts[-1] - pts[0])) if len(pts) > 1 else 0.0
    seconds = (int(frames[-1]) - int(frames[0])) / fps if len(frames) > 1 else 0.0
    speed = path / max(width, height) / seconds if seconds > 0 else 0.0
    state = motion_state(speed, visited[0], visited[-1], cfg)
    return {
        "regions": visited,
        "start_region": visited[0],
        "end_region": visited[-1],
        "displacement": disp,
        "path_length": max(path, disp),
        "speed": speed,
        "motion_state": state,
    }


def contradicts(action: str, measured: str, tolerance: int) -> bool:
    """Whether a described action and a measured motion state disagree by more than `tolerance`
    levels. An empty action (the describer said nothing about motion) never contradicts."""
    if not action:
        return False
    return abs(ACTION_LEVEL[action] - MOTION_LEVEL[measured]) > tolerance
