"""Stage 2: motion summaries, motion states, regions and trajectory sentences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tvau import vocab
from tvau.construct.config import ConstructConfig
from tvau.construct.motion import contradicts, regions_visited, summarise
from tvau.construct.sentences import sentence

CFG = ConstructConfig()  # static < 0.02, small < 0.05, fast >= 0.3 frame sizes / s


def _line(x0, y0, vx, vy, n=48):
    f = np.arange(n)
    return f, np.stack([x0 + vx * f, y0 + vy * f], axis=1)


def test_speed_is_path_length_per_second_in_frame_sizes():
    f, xy = _line(10, 50, 1.0, 0.0)  # 1 px / frame at 24 fps in a 100 px frame
    m = summarise(f, xy, 100, 100, 24.0, CFG)
    assert m["speed"] == pytest.approx(1.0 * 24 / 100, rel=1e-6)
    assert m["displacement"] == pytest.approx(47.0)
    assert m["path_length"] == pytest.approx(47.0)


@pytest.mark.parametrize(
    "vx, start_x, expected",
    [
        (0.0, 50, "static"),
        (0.12, 40, "small movement"),  # 0.029 frame sizes / s
        (0.6, 36, "walking"),  # 0.144 / s, stays in the middle column
        (0.6, 10, "cross-region"),  # 0.144 / s, left -> middle
        (2.0, 5, "fast"),  # 0.48 / s
    ],
)
def test_motion_states(vx, start_x, expected):
    f, xy = _line(start_x, 50, vx, 0.0)
    assert summarise(f, xy, 100, 100, 24.0, CFG)["motion_state"] == expected


def test_jitter_does_not_make_a_standing_person_walk():
    rng = np.random.default_rng(0)
    f = np.arange(48)
    xy = np.array([50.0, 50.0]) + rng.normal(0, 0.4, (48, 2))  # a wobbling mask centroid
    assert summarise(f, xy, 100, 100, 24.0, CFG)["motion_state"] == "static"


def test_regions_visited_debounces_boundary_jitter():
    seq = ["left"] * 5 + ["middle", "left", "middle"] + ["middle"] * 6 + ["right"] * 4
    assert regions_visited(seq) == ["left", "middle", "right"]
    assert regions_visited(["top"] * 2) == ["top"]


def test_contradiction_levels():
    assert contradicts("running", "static", 1)
    assert contradicts("standing", "fast", 1)
    assert not contradicts("running", "cross-region", 1)
    assert not contradicts("", "fast", 0)  # nothing described, nothing contradicted
    assert contradicts("walking", "fast", 0) and not contradicts("walking", "fast", 1)


def test_sentences_use_region_words():
    s = sentence("person", {"upper": "red", "lower": "blue"}, "jacket and jeans", ["left", "middle"], "fast")
    assert s == "A person in a red jacket and blue jeans moves fast from the left to the middle."
    assert sentence("bicycle", {"frame": "orange"}, "", ["top"], "static") == (
        "An orange bicycle stays almost static in the top."
    )


def test_timelines_table(stages):
    tl = stages["timelines"]
    pts = stages["track_points"]
    assert len(tl) == stages["timeline_stats"]["tracks_kept"] > 0
    for t in tl.itertuples():
        p = pts[(pts.video == t.video) & (pts.track_id == t.track_id)]
        assert p.frame.is_monotonic_increasing and p.frame.iloc[0] == t.start and p.frame.iloc[-1] == t.end
        regs = json.loads(t.regions)
        assert regs[0] == t.start_region and regs[-1] == t.end_region
        assert set(regs) <= set(vocab.REGIONS_3X3) and t.motion_state in vocab.MOTION_STATES
        assert t.sentence.endswith(".")
    # the anomalous timelines are exactly those overlapping the anomaly mask
    assert tl.anomalous.sum() == stages["timeline_stats"]["anomalous_tracks"] > 0


# What an AVX2-only x86-64 machine computes with: numpy without its AVX-512 kernels, OpenBLAS's
# Haswell kernels. Where this machine has AVX-512, the two runs below take different code paths.
AVX2_ONLY = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"}


SUMMARISE_MANY = """
import hashlib, numpy as np
from tvau.construct.config import ConstructConfig
from tvau.construct.motion import summarise
rng, h = np.random.default_rng(0), hashlib.sha256()
for _ in range(500):
    n = int(rng.integers(4, 96))
    pts = np.cumsum(rng.normal(0, 3, (n, 2)), axis=0) + rng.uniform(20, 200, 2)
    m = summarise(np.arange(n), pts, 256, 256, 24.0, ConstructConfig())
    h.update(repr((m["displacement"], m["path_length"], m["speed"], m["motion_state"])).encode())
print(h.hexdigest())
"""


def test_motion_summaries_are_the_same_bits_on_avx2_and_avx512():
    """The timelines stage's numbers do not depend on the CPU's vector instructions, so dvc.lock
    reproduces on any x86-64 machine: 500 random tracks summarised natively and as an AVX2-only
    machine would (a norm through BLAS differed in the last bit on about 6% of real tracks)."""
    import os
    import subprocess
    import sys

    digests = []
    for extra in ({}, AVX2_ONLY):
        env = {k: v for k, v in os.environ.items() if k not in AVX2_ONLY} | extra
        res = subprocess.run([sys.executable, "-c", SUMMARISE_MANY], capture_output=True, text=True, env=env, check=False)
        assert res.returncode == 0, res.stderr
        digests.append(res.stdout.strip())
    assert len(digests[0]) == 64 and digests[0] == digests[1]
