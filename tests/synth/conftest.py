"""A tiny generated dataset shared by the synth tests (built once per session)."""

from __future__ import annotations

import pytest

from tvau.synth.config import SynthConfig

# test_generate.py re-renders videos with these exact values: keep both in step.
TINY = SynthConfig(videos=6, size=64, frames=48, scenes=3, anomaly_fraction=0.5,
                   anomaly_mix={"running": 1, "throwing": 1, "bicycle": 1})
SEED = 11


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from tvau.synth.generate import generate

    out = tmp_path_factory.mktemp("synth") / "ds"
    manifest = generate(out, TINY, SEED, workers=1, progress=False)
    return out, manifest
