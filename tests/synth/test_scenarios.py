"""Anomalies are told apart by motion and shape, never by colour (planning only: no rendering)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tvau.synth.scenarios import plan_video
from tvau.synth.scene import make_scene
from tvau.vocab import ANOMALY_KINDS, COLORS


def _plans(n_per_kind=12, size=128, frames=72):
    scenes = [make_scene(i, size, np.random.default_rng(i)) for i in (1, 2, 3)]
    out = []
    for k, kind in enumerate(ANOMALY_KINDS):
        for i in range(n_per_kind):
            rng = np.random.default_rng([k, i])
            out.append((kind, scenes[i % 3], plan_video(rng, scenes[i % 3], frames, kind, (2, 4))))
    return out


def test_colours_of_anomalous_people_follow_the_normal_distribution():
    normal, anomalous = Counter(), Counter()
    for _, _, actors in _plans():
        for a in actors:
            if a.category != "person":
                continue
            for c in a.look["colors"].values():
                (anomalous if a.anomalous.any() else normal)[c] += 1
    assert set(anomalous) <= set(normal) <= set(COLORS)
    pn = np.array([normal[c] for c in COLORS], float) / sum(normal.values())
    pa = np.array([anomalous[c] for c in COLORS], float) / sum(anomalous.values())
    assert sum(anomalous.values()) > 150
    assert 0.5 * np.abs(pn - pa).sum() < 0.2  # total variation distance


def test_every_kind_produces_a_visible_event_and_motion_cues():
    speeds = {"normal": [], "running": [], "bicycle": [], "vehicle": []}
    tilt_fall = []
    for kind, scene, actors in _plans(n_per_kind=6):
        anom = [a for a in actors if a.anomalous.any()]
        assert anom and all(a.anomaly_kind == kind for a in anom)
        for a in actors:
            v = np.hypot(np.diff(a.x), np.diff(a.y)) / np.array([scene.persp(y) for y in a.y[1:]])
            both = a.present[1:] & a.present[:-1]
            if not a.anomalous.any() and a.category == "person":
                moving = both & (v > 0)
                speeds["normal"] += list(v[moving])
            elif kind in speeds and a.category in ("person", "bicycle", "car"):
                speeds[kind] += list(v[both & a.anomalous[1:]])
            if kind == "falling" and a.anomalous.any():
                tilt_fall.append(a.pose["tilt"][a.anomalous].max())
    walk = np.median(speeds["normal"])
    for kind in ("running", "bicycle", "vehicle"):
        assert np.median(speeds[kind]) > 2 * walk, kind
    assert min(tilt_fall) > 1.4  # fallers end up lying (pi/2)
