"""The vision tower's fast forwards (tvau.model.vision_fast) against the stock pieces they replace,
and the uint8 patch reordering of the preprocessor against normalising first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

from tvau.model import vision_fast
from tvau.model.preprocess import VisionPreprocessor


def _vision_rotary(seq: int, head_dim: int, seed: int = 0):
    """cos/sin as the stock tower builds them: `cat((freqs, freqs))` of per-position angles."""
    g = torch.Generator().manual_seed(seed)
    freqs = torch.rand(seq, head_dim // 2, generator=g) * 10
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def test_rotary_is_bit_identical_to_stock_and_has_the_same_gradient():
    seq, heads, d = 37, 4, 16
    cos, sin = _vision_rotary(seq, d)
    qkv = torch.randn(seq, 3, heads, d, requires_grad=True)
    ref_q, ref_k = qwen.apply_rotary_pos_emb_vision(qkv[:, 0], qkv[:, 1], cos, sin)
    fast = vision_fast._rotate(qkv[:, :2], cos, sin)
    assert fast is not None
    assert torch.equal(fast[:, 0], ref_q) and torch.equal(fast[:, 1], ref_k)
    w = torch.randn(seq, 2, heads, d)
    (g_ref,) = torch.autograd.grad((torch.stack((ref_q, ref_k), 1) * w).sum(), qkv)
    (g_fast,) = torch.autograd.grad((fast * w).sum(), qkv)
    assert torch.allclose(g_fast, g_ref, atol=1e-6)
    assert g_fast[:, 2].abs().sum() == 0  # v is not rotated


def test_rotary_declines_what_it_does_not_cover():
    seq, heads, d = 5, 2, 8
    cos, sin = _vision_rotary(seq, d)
    qk = torch.randn(seq, 2, heads, d)
    assert vision_fast._rotate(qk.bfloat16(), cos, sin) is None  # half precision: the stock float32 path
    uneven = cos.clone()
    uneven[:, -1] += 1  # halves differ: not the vision rotary's layout
    assert vision_fast._rotate(qk, uneven, sin) is None


def test_linear_patch_conv_equals_conv3d_with_gradients():
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 24, kernel_size=(2, 14, 14), stride=(2, 14, 14), bias=False)
    x = torch.randn(50, 3, 2, 14, 14, requires_grad=True)
    ref = conv(x)
    (gx_ref, gw_ref) = torch.autograd.grad((ref * ref).sum(), (x, conv.weight))
    conv.__class__ = vision_fast.LinearPatchConv3d
    out = conv(x)
    assert out.shape == ref.shape == (50, 24, 1, 1, 1)
    assert torch.allclose(out, ref, atol=1e-5)
    (gx, gw) = torch.autograd.grad((out * out).sum(), (x, conv.weight))
    assert torch.allclose(gx, gx_ref, atol=1e-4) and torch.allclose(gw, gw_ref, rtol=1e-4, atol=1e-3)
    # An input larger than one kernel is a real convolution: the stock path, same result as stock.
    big = torch.randn(2, 3, 4, 28, 28)
    expected = F.conv3d(big, conv.weight, None, stride=(2, 14, 14))
    assert conv(big).shape == (2, 24, 2, 2, 2)
    assert torch.allclose(conv(big), expected, atol=1e-5)


def test_install_keeps_the_state_dict_and_restores_stock_classes(backbone):
    model = backbone.model
    keys = list(model.state_dict())
    visual = model.model.visual
    assert backbone.attn_implementation.startswith("tvau_flash")  # "auto" on CPU: ours, with the fast classes
    assert type(visual.patch_embed.proj) is vision_fast.LinearPatchConv3d
    assert all(type(b.attn).__name__ == "FastRotaryVisionAttention" for b in visual.blocks)
    try:
        backbone.set_attention("sdpa")
        assert type(visual.patch_embed.proj) is nn.Conv3d
        assert all(type(b.attn) is qwen.Qwen2_5_VLVisionAttention for b in visual.blocks)
        assert list(model.state_dict()) == keys
    finally:
        backbone.set_attention("auto")
    assert type(visual.patch_embed.proj) is vision_fast.LinearPatchConv3d


def _normalise_first(pre: VisionPreprocessor, frames: np.ndarray) -> torch.Tensor:
    """The processor's order written out independently: rescale and normalise every pixel, then
    pad, cut and flatten the patches (float32 throughout)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = (x / 255.0 - torch.tensor(pre.mean).view(1, 3, 1, 1)) / torch.tensor(pre.std).view(1, 3, 1, 1)
    tp, p, m = pre.temporal_patch_size, pre.patch_size, pre.merge_size
    if pad := -x.shape[0] % tp:
        x = torch.cat([x, x[-1:].repeat(pad, 1, 1, 1)])
    t, _, h, w = x.shape
    rows = []
    for a in range(t // tp):
        for bh in range(h // (p * m)):
            for bw in range(w // (p * m)):
                for i in range(m):
                    for j in range(m):
                        y0, x0 = (bh * m + i) * p, (bw * m + j) * p
                        rows.append(x[a * tp:(a + 1) * tp, :, y0:y0 + p, x0:x0 + p].permute(1, 0, 2, 3).reshape(-1))
    return torch.stack(rows)


@pytest.mark.parametrize("frames", [4, 3])  # 3: the last frame is repeated to fill the temporal patch
def test_preprocessor_patches_are_bit_identical_to_normalising_first(frames):
    pre = VisionPreprocessor(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711))
    clip = np.random.default_rng(1).integers(0, 256, (frames, 56, 84, 3), dtype=np.uint8)
    patches, grid = pre(clip)
    assert grid.tolist() == [[2, 4, 6]]
    assert torch.equal(patches, _normalise_first(pre, clip))
