"""Fixtures of the registry tests: a real trained-model directory (untrained weights: these tests
exercise the registry path, not model quality), evaluate.json files of the contract's shape, and a
fresh MLflow store (SQLite + local artifacts) per test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tvau.registry.config import RegistryConfig

REPO = Path(__file__).resolve().parents[2]

METRICS = ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc", "yes_no_accuracy", "bleu4_target",
           "bleu4_trajectory")
# Small clips keep each forward pass in the tens of milliseconds on the tiny backbone.
CLIP = {"num_frames": 4, "stride": 2, "height": 56, "width": 56, "cover_tail": True, "temporal_patch": 2}


def write_model_dir(out: Path, cache_dir: str, seed: int = 0, backbone: str = "embedded:tiny",
                    backbone_sha256: str | None = None) -> Path:
    """A trained-model directory in the format of tvau/model/trained.py, from TVAU.save_adapters of
    a freshly initialised model: real weights and a real file, not a trained model."""
    from tvau.model.config import ModelConfig
    from tvau.model.tvau import TVAU

    cfg = ModelConfig(cache_dir=cache_dir, backbone=backbone)
    model = TVAU.from_config(cfg, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_adapters(out / "adapters.safetensors")
    (out / "model.json").write_text(json.dumps({
        "format": "tvau-model/1", "model": cfg.model_dump(mode="json"), "seed": seed, "clip": CLIP,
        "backbone": cfg.backbone, "backbone_sha256": backbone_sha256}))
    return out


def eval_report(model: float = 0.97, baseline: float = 0.6, width: float = 0.03, holdout_model: float | None = None,
                majority: float = 0.5, **overrides: float | None) -> dict:
    """An evaluate.json of the contract's shape: every model metric `model` +- width, every baseline
    metric `baseline`; `overrides` set one model metric's point value (None = missing)."""
    def block(v: float, w: float) -> dict:
        return {m: {"value": v, "low": max(0.0, v - w), "high": min(1.0, v + w)} for m in METRICS}

    m = block(model, width)
    for k, v in overrides.items():
        m[k] = {"value": v, "low": None if v is None else max(0.0, v - width),
                "high": None if v is None else min(1.0, v + width)}
    hm = block(model if holdout_model is None else holdout_model, width)
    return {"split": "validation", "videos": 120, "frames": 11520, "model": m, "baseline": block(baseline, width),
            "majority_yes_no": majority, "per_kind": {}, "holdout": {"model": hm, "baseline": block(baseline, width)},
            "region_method": "components"}


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
