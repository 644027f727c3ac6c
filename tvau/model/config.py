"""Parameters of the backbone and the two trained modules (params.yaml: model).

Every default is either the paper's setting (docs/method.md) or, where the paper is silent, our documented
choice; the comment on each field says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from tvau.configbase import Section

# RAE's input per step (ModelConfig.rae_input; tvau.model.rae.RAE.motion computes each).
RaeInput = Literal["probs", "logits", "probs_level"]

# Backbone profiles: the values that depend on which backbone is used, one named set each, so that
# choosing the backbone chooses them (ModelConfig.profile). A key set in params.yaml overrides its profile.
PROFILES: dict[str, dict[str, Any]] = {
    # The paper's Qwen2.5-VL-7B: AHD's per-tap MLP 1280 -> 1024 -> 3584 (24,926,725 parameters with
    # five taps, the paper's "about 25 M"), and the paper's motion cue.
    "qwen2.5-vl-7b": {"ahd_hidden": 1024, "rae_input": "probs"},
    # The embedded tiny Qwen2.5-VL (64-wide tower, docs/decisions.md): an MLP 4x the tower's width keeps
    # stage 1 within the main job's time on 2 cores, and RAE sees the heatmap's level beside its change,
    # since the tiny language model cannot see an anomaly that stays put by itself.
    "embedded": {"ahd_hidden": 256, "rae_input": "probs_level"},
}
ProfileName = Literal["auto", "qwen2.5-vl-7b", "embedded"]
# A backbone directory made by `tvau pretrain-backbone` carries this file: the embedded architecture.
EMBEDDED_MARKER = "tvau_pretrain.json"


def profile_for(backbone: str) -> str:
    """The profile "auto" picks: the embedded one for "embedded:tiny" and for a backbone directory
    made by our pretraining, the paper's 7B one for anything else (a hub id, a vendor directory)."""
    if backbone.startswith("embedded:") or (Path(backbone).expanduser() / EMBEDDED_MARKER).is_file():
        return "embedded"
    return "qwen2.5-vl-7b"


class ModelConfig(Section):
    # "embedded:tiny" builds (once, offline) a tiny Qwen2.5-VL of the real architecture; otherwise a
    # local model directory or a hub id such as "Qwen/Qwen2.5-VL-7B-Instruct".
    backbone: str = "data/backbone"
    # The backbone-specific values (PROFILES): "auto" picks them from the backbone (profile_for).
    profile: ProfileName = "auto"
    dtype: str = "float32"  # float32 | bfloat16 | float16 (backbone only; AHD/RAE always run in fp32)
    device: str = "cpu"
    # Where "embedded:tiny" is written (gitignored). Relative paths are relative to the working dir.
    cache_dir: str = ".cache/tvau/models"
    # Seed of the embedded tiny backbone's random weights. Separate from the global `seed` (which
    # initialises AHD/RAE/LoRA) because the backbone is a fixed reference, like a hub checkpoint.
    tiny_seed: int = 0

    # Attention of the vision tower (tvau/model/attention.py). "auto": the fastest available on the
    # device: torch's varlen flash kernel on CUDA in bf16/fp16 (else flash-attn when installed), one
    # padded SDPA call per block elsewhere. "eager"/"sdpa": transformers' stock loop, one call per
    # window. "varlen" | "flash_attn" | "padded" force one; an unavailable choice is an error.
    attn_implementation: Literal["auto", "eager", "sdpa", "varlen", "flash_attn", "padded"] = "auto"
    # Stage 2 on a large backbone: recompute the language model's layers in the backward pass instead
    # of keeping their activations (less memory, about one more LM forward of time). Applied to the
    # LM when stage 2 is set; it acts in training mode (model.train()).
    gradient_checkpointing: bool = False

    # --- AHD (docs/method.md section 4) ---
    # Tapped vision blocks, 0-based, as indexes of a `tap_reference_depth`-block tower. The paper's text
    # names 0, 7, 15, 31; the author's code also tapped 23, and only the five taps reproduce the
    # paper's ~25 M AHD parameters (four give 19.9 M), so the five are the default.
    taps: tuple[int, ...] = (0, 7, 15, 23, 31)
    # Depth the tap indexes refer to (Qwen2.5-VL-7B: 32). A shallower tower maps them proportionally.
    tap_reference_depth: int = 32
    ahd_hidden: int  # hidden width of each per-tap MLP C -> ahd_hidden -> D (from the profile; paper: 1024)
    logit_scale: float = 100.0  # multiplies the cosine similarity (paper)

    # --- RAE (docs/method.md section 5) ---
    rae_channels: tuple[int, int, int] = (32, 48, 96)  # the three Conv2d widths (not published; default)
    rae_hidden: int = 1024  # hidden width of the region and global MLPs 96 -> 1024 -> D (our choice)
    rae_base_tokens: int = 10  # learnable base tokens per step (paper)
    # Motion cue X[t] = H_c[t+1] - H_c[t] on class probabilities or on logits / logit_scale (not
    # published; probabilities keep the input bounded in [-1, 1]). Both class channels are kept.
    # "probs_level" (ours): channels = the abnormal probability's change and its level at t+1. A
    # difference alone is zero for an anomaly that stays put (a parked car, a lying person, a bag),
    # so the LM of a small backbone, which cannot see such an anomaly itself, got no evidence of it.
    rae_input: RaeInput  # from the profile

    @model_validator(mode="before")
    @classmethod
    def _profile_values(cls, data: Any) -> Any:
        """Fill the backbone-specific keys that were not given from the chosen profile."""
        if not isinstance(data, dict):
            return data
        name = data.get("profile", "auto")
        if name == "auto":
            name = profile_for(str(data.get("backbone", cls.model_fields["backbone"].default)))
        return {**PROFILES.get(name, {}), **data}

    def profile_values(self) -> dict[str, Any]:
        """The values of the backbone-specific keys (those PROFILES sets) in this configuration."""
        return {k: getattr(self, k) for k in PROFILES["qwen2.5-vl-7b"]}

    # --- LoRA on the language model (docs/method.md section 6) ---
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")

    # --- Inputs and dialogue ---
    video_fps: float = 24.0  # frame rate the clip is fed at; sets M-RoPE temporal spacing (paper: 24)
    system_prompt: str = "You are a helpful assistant."  # Qwen2.5-VL's default system turn
    max_new_tokens: int = 64  # default answer length for chat()/generate()

    # --- Ablations (paper table: without AHD / without RAE) ---
    use_ahd: bool = True  # False: no heatmap; RAE (if on) sees an uninformative constant heatmap
    use_rae: bool = True  # False: no anomaly prompt tokens are inserted into the dialogue
