"""Fixtures of the construction and data-quality tests: one tiny generated data set per session, and
the three construction stages run on it once (each test then reads the tables it needs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tvau.construct.config import ConstructConfig

TINY = {"videos": 6, "size": 64, "seed": 3, "frames": 48}


def synthesise(out: Path, videos: int = TINY["videos"], size: int = TINY["size"], seed: int = TINY["seed"],
               frames: int = TINY["frames"]) -> Path:
    """`tvau synth` (the generator's CLI) into `out`."""
    cmd = [sys.executable, "-m", "tvau.cli", "synth", "--out", str(out), "--videos", str(videos),
           "--seed", str(seed), "--size", str(size), "--frames", str(frames), "--workers", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return out


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    return synthesise(tmp_path_factory.mktemp("synth") / "synth")


@pytest.fixture(scope="session")
def cfg() -> ConstructConfig:
    return ConstructConfig()


@pytest.fixture(scope="session")
def records(tiny_synth):
    from tvau.data import open_dataset

    return {r.name: r for r in open_dataset(tiny_synth, "ubnormal")}


@pytest.fixture(scope="session")
def stages(tiny_synth, records, cfg, tmp_path_factory):
    """Run annotate -> timelines -> refine in-process (oracle); returns the tables and stats."""
    from tvau.construct.choose import make_annotator
    from tvau.construct.frames import annotate_dataset, video_kinds
    from tvau.construct.refine import refine_targets
    from tvau.construct.sidecar import load_attributes
    from tvau.construct.timelines import build_timelines
    from tvau.quality.tables import write_tables

    out = tmp_path_factory.mktemp("construct")
    ann = make_annotator(cfg, tiny_synth)
    t1 = annotate_dataset(list(records.values()), ann, cfg, video_kinds(load_attributes(tiny_synth)), progress=False)
    write_tables(t1, out / "annotations", extras={"stats": dict(ann.stats)})
    t2, s2 = build_timelines(t1["videos"], t1["detections"], cfg, progress=False)
    write_tables(t2, out / "timelines", extras={"stats": s2})
    targets, s3 = refine_targets(records, t1["videos"], t2["timelines"], t2["track_points"], ann, cfg, progress=False)
    write_tables({"targets": targets}, out / "refined", extras={"stats": s3})
    return {"dir": out, **t1, **t2, "targets": targets, "timeline_stats": s2, "refine_stats": s3}
