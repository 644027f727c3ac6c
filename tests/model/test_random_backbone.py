"""Random-weight backbones built on a device (meta -> to_empty -> init), as the GPU benchmark uses them."""

from __future__ import annotations

import pytest
import torch

from tvau.model.arch import QWEN25VL_7B_PREPROCESSOR, QWEN25VL_7B_VOCAB, qwen25vl_7b_config, tiny_config
from tvau.model.chat import ANOMALY_PAD, Q_ANOMALY, VIDEO_PAD
from tvau.model.clips import synthetic_clip
from tvau.model.config import ModelConfig
from tvau.model.preprocess import VisionPreprocessor
from tvau.model.random_backbone import random_backbone, random_weights
from tvau.model.tiny import build_tiny_tokenizer, tiny_preprocessor_config, token_ids
from tvau.model.tvau import TVAU


def test_tiny_built_on_device_matches_the_loaded_tiny_given_its_weights(tiny_cfg, backbone, model):
    """Same architecture, tokenizer, preprocessor, taps and buffers as load_backbone: once the loaded
    weights are copied in, every output of the composite model is the same."""
    rb = random_backbone("tiny", tiny_cfg, device="cpu")
    ref = backbone.model
    # Non-persistent rotary buffers are not in any state dict: to_empty left garbage, init recomputed them.
    ref_buffers = dict(ref.named_buffers())
    for name, buf in rb.model.named_buffers():
        torch.testing.assert_close(buf, ref_buffers[name], rtol=0, atol=0)
    # Random, finite, initialised like transformers does (normal(0, 0.02) linears, unit norms), not a copy.
    w = rb.model.model.language_model.layers[0].mlp.up_proj.weight
    assert torch.isfinite(w).all() and abs(float(w.std()) - 0.02) < 0.002
    assert torch.equal(rb.model.model.language_model.norm.weight, torch.ones(rb.text_width))
    assert not torch.equal(w, ref.model.language_model.layers[0].mlp.up_proj.weight)
    assert rb.preprocessor == backbone.preprocessor and rb.taps == backbone.taps
    assert rb.model.config.video_token_id == ref.config.video_token_id

    rb.model.load_state_dict({k: v for k, v in ref.state_dict().items() if "lora_" not in k})
    mine = TVAU(rb, tiny_cfg, seed=0)
    clip = synthetic_clip(8, 112, 112)
    a, b = mine.encode(clip), model.encode(clip)
    torch.testing.assert_close(a.vision.video_embeds, b.vision.video_embeds)
    for x, y in zip(a.vision.taps, b.vision.taps):
        torch.testing.assert_close(x, y)
    torch.testing.assert_close(a.logits, b.logits)
    (pa, ea, qa), (pb, eb, qb) = mine._lm_inputs(a, [(Q_ANOMALY, None)]), model._lm_inputs(b, [(Q_ANOMALY, None)])
    assert torch.equal(pa.input_ids, pb.input_ids) and torch.equal(qa, qb)
    torch.testing.assert_close(mine.backbone.logits(ea, qa), model.backbone.logits(eb, qb))


def test_random_weights_follow_the_seed():
    tok = build_tiny_tokenizer()
    config = tiny_config(len(tok), token_ids(tok))
    a = random_weights(config, "cpu", torch.float32, seed=3)
    b = random_weights(config, "cpu", torch.float32, seed=3)
    c = random_weights(config, "cpu", torch.float32, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    qkv = "model.visual.blocks.0.attn.qkv.weight"
    assert not torch.equal(a.get_parameter(qkv), c.get_parameter(qkv))
    assert not a.training


def test_7b_architecture_on_meta_with_the_tiny_tokenizer():
    """The 7B as the GPU benchmark builds it, on the meta device (no memory): 7B shapes, the tiny
    tokenizer's ids inside the 7B table, and the adapter sizes of tvau.model.info's independent count."""
    from tvau.model.info import parameter_counts
    from tvau.model.lora import lora_parameters

    cfg = ModelConfig(backbone="Qwen/Qwen2.5-VL-7B-Instruct")  # the 7B profile: the paper's module sizes
    bb = random_backbone("qwen2.5-vl-7b", cfg, device="meta", dtype="bfloat16")
    hf = bb.model.config
    assert (bb.vision_width, bb.text_width, hf.text_config.num_hidden_layers) == (1280, 3584, 28)
    assert bb.taps == [0, 7, 15, 23, 31] and bb.dtype == torch.bfloat16
    assert bb.model.get_input_embeddings().weight.shape[0] == QWEN25VL_7B_VOCAB
    assert hf.video_token_id == bb.tokenizer.convert_tokens_to_ids(VIDEO_PAD)
    assert bb.table.anomaly_pad == bb.tokenizer.convert_tokens_to_ids(ANOMALY_PAD) < QWEN25VL_7B_VOCAB
    model = TVAU(bb, cfg, seed=0)
    want = parameter_counts(qwen25vl_7b_config(), cfg)
    assert sum(p.numel() for p in model.ahd.parameters()) == want["ahd"] == 24_926_725
    assert sum(p.numel() for p in model.rae.parameters()) == want["rae"]
    assert sum(p.numel() for p in lora_parameters(bb.language_model).values()) == want["lora"]
    assert sum(p.numel() for n, p in bb.model.named_parameters() if "lora_" not in n) == want["backbone"]


def test_7b_preprocessor_keeps_the_paper_frames():
    pre = VisionPreprocessor.from_config(QWEN25VL_7B_PREPROCESSOR)
    assert pre.target_size(476, 868) == (476, 868)
    patches, grid = pre(synthetic_clip(24, 476, 868))
    assert grid.tolist() == [[12, 34, 62]] and patches.shape == (12 * 34 * 62, 3 * 2 * 14 * 14)
    assert VisionPreprocessor.from_config(tiny_preprocessor_config()).max_pixels == 28 * 28 * 1280


def test_bad_requests_are_refused(tmp_path):
    cfg = ModelConfig(backbone="embedded:tiny")
    with pytest.raises(ValueError, match="unknown architecture"):
        random_backbone("qwen2.5-vl-72b", cfg, device="meta")
    with pytest.raises(ValueError, match="dtype"):
        random_backbone("tiny", cfg, device="meta", dtype="int8")
    ids = token_ids(build_tiny_tokenizer())
    with pytest.raises(ValueError, match="outside the 7B"):
        qwen25vl_7b_config(type(ids)(**{**vars(ids), "video": QWEN25VL_7B_VOCAB}))
    (tmp_path / "preprocessor_config.json").write_text('{"image_std": [1, 1, 1]}')
    with pytest.raises(ValueError, match="missing key"):
        VisionPreprocessor.from_dir(tmp_path)
