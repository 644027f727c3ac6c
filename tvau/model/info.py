"""Parameter counts per module, from an architecture config alone (meta device: no weights, no memory).

Expected on Qwen2.5-VL-7B with its profile (tvau.model.config.PROFILES; all exact, computed here):
- AHD: per tap C*1024 + 1024 + 1024*D + D = 1280*1024 + 1024 + 1024*3584 + 3584 = 4,985,344; five taps
  plus the five fusion logits: 24,926,725 (paper: "about 25 M"). With the four taps of the paper's
  text (0, 7, 15, 31) it would be 19,941,380, which is why five is our default (see ModelConfig.taps).
- RAE: convs 2->32->48->96 (56,048) + two MLPs 96->1024->3584 (7,545,856) + 10 base tokens (35,840)
  = 7,637,744 (paper: "about 7.5 M"; the paper's MLP/conv widths were not published, ours give +1.8 %).
- LoRA r=16 on q_proj (3584->3584) and v_proj (3584->512) of 28 layers: 5,046,272.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tvau.model.arch import ARCHES, qwen25vl_7b_config
from tvau.model.config import PROFILES, ModelConfig


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def arch_config(arch: str | None, cfg: ModelConfig):
    """The HF config of a named architecture, or (arch None) of the configured backbone. Only a
    configured hub id reads the network, and then only its config.json."""
    from transformers import AutoConfig

    if arch == "qwen2.5-vl-7b":
        return qwen25vl_7b_config()
    if arch == "tiny" or (arch is None and cfg.backbone == "embedded:tiny"):
        from tvau.model.tiny import ensure_tiny

        return AutoConfig.from_pretrained(ensure_tiny(cfg.cache_dir, cfg.tiny_seed), local_files_only=True)
    if arch is not None:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHES}")
    path = Path(cfg.backbone).expanduser()
    if path.is_dir():
        return AutoConfig.from_pretrained(path, local_files_only=True)
    from huggingface_hub import hf_hub_download

    return AutoConfig.from_pretrained(Path(hf_hub_download(cfg.backbone, "config.json")).parent)


def parameter_counts(hf_config, cfg: ModelConfig) -> dict:
    """Counts for backbone + AHD + RAE + LoRA built on the meta device."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tvau.model.ahd import AHD
    from tvau.model.backbone import map_taps
    from tvau.model.lora import inject_lora, lora_parameters
    from tvau.model.rae import RAE

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(hf_config)
        vc, tc = hf_config.vision_config, hf_config.text_config
        taps = map_taps(cfg.taps, cfg.tap_reference_depth, vc.depth)
        ahd = AHD(vc.hidden_size, tc.hidden_size, len(taps), cfg.ahd_hidden, cfg.logit_scale)
        rae = RAE(tc.hidden_size, cfg.rae_channels, cfg.rae_hidden, cfg.rae_base_tokens, cfg.rae_input)
    backbone = _numel(model)
    vision = _numel(model.model.visual)
    inject_lora(model.model.language_model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
    lora = sum(p.numel() for p in lora_parameters(model.model.language_model).values())
    n_ahd, n_rae = _numel(ahd), _numel(rae)
    return {
        "ahd": n_ahd,
        "rae": n_rae,
        "lora": lora,
        "backbone": backbone,
        "backbone_vision": vision,
        "backbone_language": backbone - vision,
        "trainable": n_ahd + n_rae + lora,
        "adapter_mb_fp32": round((n_ahd + n_rae + lora) * 4 / 2**20, 2),
        "taps": taps,
        "vision_depth": vc.depth,
        "vision_width": vc.hidden_size,
        "text_width": tc.hidden_size,
        "text_layers": tc.num_hidden_layers,
        "prompt_tokens_per_step": rae.tokens_per_step,
    }


# The backbone profile (tvau.model.config.PROFILES) each named architecture is built with.
ARCH_PROFILES = {"tiny": "embedded", "qwen2.5-vl-7b": "qwen2.5-vl-7b"}


def for_arch(arch: str, cfg: ModelConfig) -> ModelConfig:
    """`cfg` with the named architecture's profile values in place of the configured backbone's
    (keys given explicitly in params.yaml, other than the profile's own, are kept)."""
    own = {k: v for k, v in cfg.model_dump().items() if k in cfg.model_fields_set and k != "profile"}
    profile_keys = set(PROFILES[ARCH_PROFILES[arch]])
    return ModelConfig.model_validate({**{k: v for k, v in own.items() if k not in profile_keys},
                                       "profile": ARCH_PROFILES[arch]})


def info(arch: str | None, cfg: ModelConfig) -> dict:
    if arch in ARCH_PROFILES:
        cfg = for_arch(arch, cfg)
    counts = parameter_counts(arch_config(arch, cfg), cfg)
    return {"arch": arch or cfg.backbone, **counts}


def format_json(d: dict) -> str:
    return json.dumps(d, indent=2)
