"""LoRA on the language model through peft (docs/method.md section 6: rank 16, alpha 32, dropout 0.05,
q_proj and v_proj). Injected in place (no PeftModel wrapper) so the backbone keeps its structure;
only the LLM is targeted, never the vision tower (its fused `qkv` would not match anyway)."""

from __future__ import annotations

import torch
from torch import nn


def inject_lora(language_model: nn.Module, r: int, alpha: int, dropout: float, targets: tuple[str, ...]) -> None:
    """Add LoRA adapters (B = 0 at start, so outputs are unchanged until trained). r = 0: no LoRA."""
    if r <= 0:
        return
    from peft import LoraConfig, inject_adapter_in_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none")
    inject_adapter_in_model(cfg, language_model)
    if not any("lora_" in n for n, _ in language_model.named_parameters()):
        raise ValueError(f"no module of the language model matches the LoRA targets {list(targets)}")


def lora_parameters(module: nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in module.named_parameters() if "lora_" in n}
