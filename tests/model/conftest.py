"""Fixtures of the model tests: one tiny backbone directory per session, fresh models per test."""

from __future__ import annotations

import pytest

from tvau.model.config import ModelConfig


@pytest.fixture(scope="session")
def tiny_cfg(tmp_path_factory) -> ModelConfig:
    """A ModelConfig whose embedded tiny backbone is built once into a session temp dir."""
    from tvau.model.tiny import ensure_tiny

    cache = tmp_path_factory.mktemp("models")
    ensure_tiny(cache, 0)
    return ModelConfig(backbone="embedded:tiny", cache_dir=str(cache))


@pytest.fixture(scope="session")
def backbone(tiny_cfg):
    """A shared, read-only backbone (tests that modify weights load their own)."""
    from tvau.model.backbone import load_backbone

    return load_backbone(tiny_cfg)


@pytest.fixture()
def model(tiny_cfg):
    from tvau.model.tvau import TVAU

    return TVAU.from_config(tiny_cfg, seed=0)
