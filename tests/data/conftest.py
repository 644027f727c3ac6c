"""A tiny generated UBnormal-layout tree, and a writable copy of it per test."""

from __future__ import annotations

import shutil

import pytest

from tvau.synth.config import SynthConfig

SMALL = SynthConfig(videos=4, size=64, frames=30, scenes=2, anomaly_fraction=0.5,
                    anomaly_mix={"falling": 1, "vehicle": 1})


@pytest.fixture(scope="session")
def ub_tree(tmp_path_factory):
    from tvau.synth.generate import generate

    out = tmp_path_factory.mktemp("ub") / "ds"
    generate(out, SMALL, 5, workers=1, progress=False)
    return out


@pytest.fixture
def ub_copy(ub_tree, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(ub_tree, dst)
    return dst
