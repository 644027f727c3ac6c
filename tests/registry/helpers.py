"""Helpers of the registry tests: a real trained-model directory (untrained weights: these tests
exercise the registry path, not model quality) and evaluate.json files of the contract's shape."""

from __future__ import annotations

import json
from pathlib import Path

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
