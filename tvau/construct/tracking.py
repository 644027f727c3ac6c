"""Linking per-frame detections into tracks: Hungarian matching on centroid distance with a gate
(docs/method.md section 8; the thesis gated at max(H, W) / 10).

Each open track predicts where its object is now from a constant-velocity model, so two people
whose paths cross keep their identities (the nearest *predicted* position, not the nearest last
position, wins), and a track survives up to `max_gap` frames without a detection, so an object
hidden behind another (occlusion) or skipped by a strided annotator is picked up again. Matches
are only allowed between detections with the same identity key (the category, and optionally the
described colours: see `construct.match_colors`), and never beyond the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e12  # cost of a forbidden pair (different category or beyond the gate)


@dataclass
class _Open:
    track_id: int
    category: object  # identity key
    last_frame: int
    pos: np.ndarray  # (2,) last centroid
    vel: np.ndarray  # (2,) pixels per frame, smoothed
    seen: int = 1

    def predict(self, frame: int) -> np.ndarray:
        return self.pos + self.vel * (frame - self.last_frame)


def link(
    frames: np.ndarray,
    centroids: np.ndarray,
    categories: np.ndarray,
    gate: float,
    max_gap: int,
    smoothing: float = 0.5,
) -> np.ndarray:
    """Track ids for N detections of one video.

    frames (N,) int frame index of each detection; centroids (N, 2) float (cx, cy);
    categories (N,) hashable identity keys (category, or category and colours); gate: largest allowed distance (pixels) between a track's predicted
    position and a detection; max_gap: frames a track may go undetected. Returns (N,) int64 track
    ids numbered 0.. in order of first appearance."""
    frames = np.asarray(frames, dtype=np.int64)
    centroids = np.asarray(centroids, dtype=np.float64).reshape(-1, 2)
    categories = np.asarray(categories, dtype=object)
    ids = np.full(len(frames), -1, dtype=np.int64)
    open_tracks: list[_Open] = []
    next_id = 0
    for f in np.unique(frames):
        det = np.nonzero(frames == f)[0]
        # close tracks that have been unseen for longer than the gap allows
        open_tracks = [t for t in open_tracks if f - t.last_frame <= max_gap + 1]
        matched_det: set[int] = set()
        if open_tracks and len(det):
            pred = np.stack([t.predict(f) for t in open_tracks])  # (T, 2)
            cost = np.linalg.norm(pred[:, None, :] - centroids[det][None, :, :], axis=-1)  # (T, D)
            same = np.array([[t.category == categories[d] for d in det] for t in open_tracks])
            cost = np.where(same & (cost <= gate), cost, INFEASIBLE)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] >= INFEASIBLE:
                    continue
                t, d = open_tracks[r], det[c]
                step = (centroids[d] - t.pos) / (f - t.last_frame)
                t.vel = step if t.seen == 1 else smoothing * t.vel + (1 - smoothing) * step
                t.pos, t.last_frame, t.seen = centroids[d].copy(), int(f), t.seen + 1
                ids[d] = t.track_id
                matched_det.add(int(d))
        for d in det:
            if int(d) in matched_det:
                continue
            open_tracks.append(
                _Open(next_id, categories[d], int(f), centroids[d].copy(), np.zeros(2))
            )
            ids[d] = next_id
            next_id += 1
    return ids
