"""The trained-model directory: what training writes, the registry uploads, and the
evaluator and the scorer load.

    DIR/adapters.safetensors   AHD + RAE + LoRA weights, consolidated (never a ZeRO shard),
                               written by TVAU.save_adapters
    DIR/model.json             {"format": "tvau-model/1", "model": <params.model>, "seed": int,
                                "clip": <params.clip>, "backbone": <reference as in params>,
                                "backbone_sha256": <a local backbone's weights
                                (backbone_sha256: single file or shards), else null>}

A trained T-VAU is the backbone reference plus these adapters; the backbone itself is never copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_FORMAT = "tvau-model/1"
ADAPTERS = "adapters.safetensors"
MODEL_JSON = "model.json"


class TrainedModelError(ValueError):
    """A path or URI that is not a usable trained-model directory; the message names it."""


def backbone_sha256(reference: str) -> str | None:
    """Identity of a local backbone directory's weights (None for embedded:/hub references, whose
    identity is the reference string itself and, for the tiny one, its seed in params; and None for
    a directory without safetensors weights):
    - one `model.safetensors`: its sha256;
    - sharded weights (`model.safetensors.index.json` beside `model-0000x-of-0000n.safetensors`, as
      the 7B ships): sha256 over the index's bytes, then each shard's name and sha256 in name order,
      so swapping, editing or dropping any shard changes it."""
    import hashlib

    from tvau.storage import sha256_file

    if reference.startswith("embedded:"):
        return None
    path = Path(reference).expanduser()
    single, index = path / "model.safetensors", path / "model.safetensors.index.json"
    if single.is_file():
        return sha256_file(single)
    if not index.is_file():
        return None
    h = hashlib.sha256(index.read_bytes())
    for shard in sorted(path.glob("*.safetensors")):
        h.update(f"\n{shard.name} {sha256_file(shard)}".encode())
    return h.hexdigest()


def model_digest(model_dir: str | Path) -> str:
    """sha256 over the adapters and model.json of a trained-model directory: what "the same model"
    means (the registry's candidate identity; the nightly scorer's skip test uses the same recipe)."""
    import hashlib

    from tvau.storage import sha256_file

    model_dir = Path(model_dir)
    h = hashlib.sha256()
    for name in (ADAPTERS, MODEL_JSON):
        f = model_dir / name
        if not f.is_file():
            raise TrainedModelError(f"{model_dir}: not a trained-model directory (no {name})")
        h.update(name.encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def model_card(model, params) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "model": params.model.model_dump(mode="json"),
        "seed": int(params.seed),
        "clip": params.clip.model_dump(mode="json"),
        "backbone": params.model.backbone,
        "backbone_sha256": backbone_sha256(params.model.backbone),
    }


def save_trained(model, out_dir: str | Path, params, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write `model`'s adapters and model.json into `out_dir` as one atomic directory swap.
    `extra_files` (name -> bytes) go in beside them (e.g. the training log)."""
    from tvau.storage import atomic_dir

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_adapters(tmp / ADAPTERS)
        (tmp / MODEL_JSON).write_text(json.dumps(model_card(model, params), indent=2, sort_keys=True) + "\n")
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
    return out_dir


def read_card(model_dir: str | Path) -> dict[str, Any]:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise TrainedModelError(f"{model_dir}: no such trained-model directory")
    card_path = model_dir / MODEL_JSON
    if not card_path.is_file():
        raise TrainedModelError(f"{card_path}: missing (not a trained-model directory)")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainedModelError(f"{card_path}: not valid JSON ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != MODEL_FORMAT:
        got = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise TrainedModelError(f"{card_path}: format {got!r} is not {MODEL_FORMAT!r}")
    for key in ("model", "seed", "clip", "backbone"):
        if key not in card:
            raise TrainedModelError(f"{card_path}: missing key {key!r}")
    if not (model_dir / ADAPTERS).is_file():
        raise TrainedModelError(f"{model_dir / ADAPTERS}: missing")
    return card


def card_configs(model_dir: str | Path, card: dict[str, Any]):
    """(ModelConfig, ClipConfig) of a card read by read_card, validated: a key added to either section
    since the card was written reads as its default."""
    from pydantic import ValidationError

    from tvau.data.config import ClipConfig
    from tvau.model.config import ModelConfig

    try:
        return ModelConfig.model_validate(card["model"]), ClipConfig.model_validate(card["clip"])
    except ValidationError as exc:
        raise TrainedModelError(f"{Path(model_dir) / MODEL_JSON}: invalid model or clip section ({exc})") from None


def load_trained(model_dir: str | Path, params=None):
    """A frozen, eval-mode TVAU from a local trained-model directory. A `models:/` or `runs:/` URI
    is the registry's to download first (tvau.registry.resolve.download_model): the model layer
    never imports the registry.

    The architecture, seed and backbone come from model.json; `params`, when given, may override
    only where the model runs (model.device, model.dtype, model.cache_dir, model.max_new_tokens) —
    never what the adapters were trained for."""
    if str(model_dir).startswith(("models:/", "runs:/")):
        raise TrainedModelError(f"{model_dir}: a registry URI; download it first (tvau.registry.resolve.download_model)")
    from tvau.config import Params
    from tvau.model.tvau import TVAU

    model_dir = Path(model_dir).expanduser()
    card = read_card(model_dir)
    mcfg, clip = card_configs(model_dir, card)
    if params is not None:
        runtime = {k: getattr(params.model, k) for k in ("device", "dtype", "cache_dir", "max_new_tokens")}
        mcfg = mcfg.model_copy(update=runtime)
    expect = card.get("backbone_sha256")
    if expect:
        got = backbone_sha256(mcfg.backbone)
        if got is not None and got != expect:
            raise TrainedModelError(f"{model_dir / MODEL_JSON}: backbone {mcfg.backbone} has sha256 {got[:12]}..., "
                                    f"the adapters were trained on {expect[:12]}...")
    model = TVAU.from_config(mcfg, seed=int(card["seed"]))
    try:
        model.load_adapters(model_dir / ADAPTERS)
    except (ValueError, FileNotFoundError) as exc:
        raise TrainedModelError(str(exc)) from None
    model.set_stage("frozen")
    model.eval()
    model.clip = clip  # the clip geometry the adapters were trained at (scorers cut clips with it)
    model.params = Params(model=mcfg, clip=clip, seed=int(card["seed"])) if params is None else \
        params.model_copy(update={"model": mcfg, "clip": clip, "seed": int(card["seed"])})
    return model
