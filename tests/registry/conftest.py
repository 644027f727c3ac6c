"""Fixtures of the registry tests: a real trained-model directory (tests/registry/helpers.py) and a
fresh MLflow store (SQLite + local artifacts) per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.registry.helpers import REPO, write_model_dir
from tvau.registry.config import RegistryConfig


@pytest.fixture(scope="session")
def tiny_cache() -> str:
    """The project's own cache of the embedded tiny backbone (built once per checkout, offline;
    the same directory `tvau model ...` and the demo use), as an absolute path."""
    from tvau.model.config import ModelConfig
    from tvau.model.tiny import ensure_tiny

    cache = (REPO / ModelConfig().cache_dir).resolve()
    ensure_tiny(cache, 0)
    return str(cache)


@pytest.fixture(scope="session")
def model_dir(tiny_cache, tmp_path_factory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("trained") / "tvau", tiny_cache)


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its schema migrated (about 10 s on 2 cores), copied by `store`."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture()
def store(tmp_path, monkeypatch, empty_db) -> RegistryConfig:
    """A fresh MLflow store (SQLite + local artifacts) under tmp_path, made current."""
    from tvau.registry.tracking import configure

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = RegistryConfig(store_dir=str(tmp_path / "mlflow"))
    (tmp_path / "mlflow").mkdir()
    shutil.copy(empty_db, tmp_path / "mlflow" / "mlflow.db")
    configure(cfg, tmp_path)
    return cfg
