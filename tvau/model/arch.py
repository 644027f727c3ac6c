"""The two Qwen2.5-VL architectures we know by name: the offline tiny one and the paper's 7B.

Both are plain `Qwen2_5_VLConfig`s: the tiny one keeps every structural feature of the real tower
(patch 14, temporal patch 2, 2x2 merge, windowed attention with full-attention blocks, M-RoPE) at
toy widths, so that code paths (window order, merge order, rope index) are exercised for real.
"""

from __future__ import annotations

from dataclasses import dataclass

ARCHES = ("tiny", "qwen2.5-vl-7b")


@dataclass(frozen=True)
class TokenIds:
    """Ids of the special tokens the config must know about."""

    bos: int
    eos: int  # <|im_end|>: ends an assistant turn
    pad: int
    vision_start: int
    vision_end: int
    image: int
    video: int


# Qwen2.5-VL-7B-Instruct's config.json values (public model card / config on the hub).
QWEN25VL_7B_IDS = TokenIds(
    bos=151643, eos=151645, pad=151643, vision_start=151652, vision_end=151653, image=151655, video=151656
)


QWEN25VL_7B_VOCAB = 152064  # rows of the 7B's embedding table and lm_head (more than its 151665 tokens)

# Qwen2.5-VL-7B-Instruct's preprocessor_config.json (the video pixel bounds and CLIP normalisation).
QWEN25VL_7B_PREPROCESSOR = {
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "min_pixels": 3136, "max_pixels": 12845056,
}


def qwen25vl_7b_config(ids: TokenIds = QWEN25VL_7B_IDS):
    """Qwen2.5-VL-7B-Instruct: vision 32 blocks x 1280, LLM 28 layers x 3584 (docs/method.md section 2).

    `ids` are the special-token ids the config points at (default: the 7B tokenizer's). Another
    tokenizer's ids can be given (tvau.model.random_backbone pairs the 7B shapes with the offline
    tiny tokenizer); they must lie inside the 7B's QWEN25VL_7B_VOCAB-row table."""
    from transformers import Qwen2_5_VLConfig

    bad = {k: v for k, v in vars(ids).items() if not 0 <= v < QWEN25VL_7B_VOCAB}
    if bad:
        raise ValueError(f"token ids {bad} are outside the 7B's {QWEN25VL_7B_VOCAB}-token vocabulary")
    return Qwen2_5_VLConfig(
        vision_config={
            "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
            "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "tokens_per_second": 2, "window_size": 112, "out_hidden_size": 3584,
            "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu",
        },
        text_config={
            "vocab_size": QWEN25VL_7B_VOCAB, "hidden_size": 3584, "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
            "bos_token_id": ids.bos, "eos_token_id": ids.eos, "pad_token_id": None,
        },
        image_token_id=ids.image, video_token_id=ids.video,
        vision_start_token_id=ids.vision_start, vision_end_token_id=ids.vision_end,
        tie_word_embeddings=False,
    )


# The tiny architecture. 8 vision blocks so that the paper's taps (0, 7, 15, 23, 31 of 32) map to
# distinct blocks (0, 1, 3, 5, 7), and full attention on 1, 3, 5, 7 (the 7B's 7, 15, 23, 31 scaled).
# window_size 56 px = 2x2 merge units = 4x4 patches, so a 112x112 frame holds 4 windows and the
# window reordering is non-trivial (with the 7B's 112 px it would be a single window).
TINY_VISION = {
    "depth": 8, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "in_channels": 3,
    "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "tokens_per_second": 2,
    "window_size": 56, "out_hidden_size": 64, "fullatt_block_indexes": [1, 3, 5, 7], "hidden_act": "silu",
}
TINY_TEXT = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
    # head_dim 16 -> 8 rotary frequencies split over (t, h, w) like the 7B's 16/24/24 of 64.
    "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
}


def text_shape(width: int, layers: int, heads: int, kv_heads: int, mlp_ratio: int) -> dict:
    """TINY_TEXT at another size. M-RoPE splits each head's rotary frequencies 1/4 (time), 3/8
    (height), 3/8 (width), as the 7B's 16/24/24 of 64; the head dim must be a multiple of 16."""
    half = width // heads // 2
    if width % heads or half % 8:
        raise ValueError(f"language width {width} / {heads} heads must be a multiple of 16")
    return dict(TINY_TEXT, hidden_size=width, intermediate_size=mlp_ratio * width, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv_heads,
                rope_parameters=dict(TINY_TEXT["rope_parameters"], mrope_section=[half // 4, 3 * half // 8, 3 * half // 8]))


def tiny_config(vocab_size: int, ids: TokenIds, vision: dict | None = None, text: dict | None = None):
    """The tiny architecture; `vision` and `text` override TINY_VISION's and TINY_TEXT's keys (the
    pretrained embedded backbone is wider: tvau.pretrain)."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        vision_config=dict(TINY_VISION, **(vision or {})),
        text_config=dict(TINY_TEXT, **(text or {}), vocab_size=vocab_size, bos_token_id=ids.bos, eos_token_id=ids.eos,
                         pad_token_id=ids.pad),
        image_token_id=ids.image, video_token_id=ids.video,
        vision_start_token_id=ids.vision_start, vision_end_token_id=ids.vision_end,
        tie_word_embeddings=False,
    )
