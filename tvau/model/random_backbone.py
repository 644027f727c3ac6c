"""A Backbone with random weights built straight on a device from a named architecture.

For timing and memory measurements at the paper's scale where no checkpoint can be downloaded (a GPU
machine without network): the module graph, shapes and code paths are those of a loaded
Qwen2.5-VL, only the weights are random. Never use it for anything whose output matters.

    from tvau.model.config import ModelConfig
    from tvau.model.random_backbone import random_backbone
    from tvau.model.tvau import TVAU
    bb = random_backbone("qwen2.5-vl-7b", ModelConfig(), device="cuda", dtype="bfloat16")
    model = TVAU(bb, cfg, seed=0)          # AHD, RAE and LoRA attached as always

How: the model is built on the meta device (no memory, no init), `to_empty` gives it uninitialised
storage on the target device, then transformers' own initialiser (normal(0, 0.02) for linear and
embedding weights, ones for norms, rotary inverse frequencies recomputed) fills it, on the device,
under a fixed seed. So a 7B never exists on the host and is built in seconds on a GPU.

Tokenizer: always the offline tiny one (tvau.model.tiny). For the 7B its special-token ids (all
below ~1100) are written into the 7B config in place of Qwen's (151643...), so the vision and
anomaly tokens are found where the tokenizer puts them; the 7B's 152064-row table is kept, the
rows past the tokenizer are simply never used. Prompt lengths differ from the real tokenizer's
only in the few text tokens (the video and anomaly blocks, which dominate, are identical).
"""

from __future__ import annotations

import os

import torch

from tvau.model.arch import ARCHES, QWEN25VL_7B_PREPROCESSOR, qwen25vl_7b_config, tiny_config
from tvau.model.backbone import DTYPES, Backbone, map_taps
from tvau.model.config import ModelConfig
from tvau.model.preprocess import VisionPreprocessor


def random_weights(hf_config, device: str | torch.device, dtype: torch.dtype, seed: int = 0):
    """A Qwen2_5_VLForConditionalGeneration of `hf_config` with random weights, built on the meta
    device, materialised on `device` in `dtype` (rotary buffers stay float32, as from_pretrained
    leaves them) and initialised there under `seed`. Eval mode."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    device = torch.device(device)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(hf_config, dtype=dtype)
    model.to_empty(device=device)
    # Seed the generator of the device the weights live on, without disturbing the caller's streams.
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked, device_type="cuda"):
        torch.manual_seed(seed)
        model.init_weights()  # every tensor is new after to_empty, so all of them are (re)initialised
    return model.eval()


def random_backbone(arch: str, cfg: ModelConfig, device: str | None = None, dtype: str | None = None,
                    seed: int | None = None) -> Backbone:
    """A frozen Backbone of the named architecture ('tiny' or 'qwen2.5-vl-7b') with random weights on
    `device` (default cfg.device) in `dtype` (default cfg.dtype); `seed` defaults to cfg.tiny_seed.
    The taps, video fps and system prompt come from `cfg` as in load_backbone."""
    from tvau.model.tiny import build_tiny_tokenizer, tiny_preprocessor_config, token_ids

    device = device or cfg.device
    dtype = dtype or cfg.dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    tok = build_tiny_tokenizer()
    ids = token_ids(tok)
    if arch == "tiny":
        hf_config, pre = tiny_config(vocab_size=len(tok), ids=ids), tiny_preprocessor_config()
    elif arch == "qwen2.5-vl-7b":
        hf_config, pre = qwen25vl_7b_config(ids), QWEN25VL_7B_PREPROCESSOR
    else:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHES}")
    if len(tok) > hf_config.text_config.vocab_size:
        raise ValueError(f"the tokenizer's {len(tok)} tokens do not fit the {arch} vocabulary "
                         f"({hf_config.text_config.vocab_size})")
    model = random_weights(hf_config, device, DTYPES[dtype], cfg.tiny_seed if seed is None else seed)
    taps = map_taps(cfg.taps, cfg.tap_reference_depth, len(model.model.visual.blocks))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Backbone(model, tok, VisionPreprocessor.from_config(pre), source=f"random:{arch}", taps=taps,
                    video_fps=cfg.video_fps, system_prompt=cfg.system_prompt,
                    attn_implementation=cfg.attn_implementation)
