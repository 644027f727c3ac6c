"""Faster forwards for two stock pieces of Qwen2.5-VL's vision tower, same weights, same numbers.

Profiling `Backbone.encode_videos` on CPU (8 clips of 24x224x224, one thread, the embedded backbone)
showed two avoidable costs beside the matmuls and attention itself:

- the patch embedding is a Conv3d whose kernel equals its stride and covers each input patch whole,
  so it is one matrix product; oneDNN's 3-D convolution spent 15% of the pass on it;
- the vision rotary embedding (`apply_rotary_pos_emb_vision`) builds `rotate_half` with a negation and
  a concatenation per tensor, for q and k separately: about a fifth of the pass in `cat`, `neg`, `mul`.

`install(model, True)` swaps the classes of those modules for subclasses below (no new parameters,
state-dict keys unchanged, so a saved model is a stock model); `install(model, False)` puts the stock
classes back. tvau.model.attention.apply installs them with its own one-call attention and removes them
for the stock "eager"/"sdpa" choices, which stay the reference the tests compare with.

Numbers: the rotary path computes exactly the stock expression's terms (`q1*c - q2*s` equals
`q1*c + (-q2)*s` bit for bit), so it is bit-identical; the patch embedding sums the same products in
another order (a matmul instead of a convolution kernel), so it agrees to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearPatchConv3d(nn.Conv3d):
    """A Conv3d with kernel == stride applied to inputs exactly one kernel large: `F.linear` on the
    flattened patches. Any other input shape takes the stock convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patchify = (tuple(x.shape[2:]) == tuple(self.kernel_size) == tuple(self.stride) and self.groups == 1
                    and self.padding in ((0, 0, 0), "valid") and tuple(self.dilation) == (1, 1, 1))
        if not patchify:
            return super().forward(x)
        n = x.shape[0]
        out = F.linear(x.reshape(n, -1), self.weight.reshape(self.out_channels, -1), self.bias)
        return out.view(n, self.out_channels, 1, 1, 1)


def _rotate(qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor | None:
    """Rotary embedding of q and k together. qk (S, 2, H, d); cos/sin (S, d) with equal halves (the
    vision rotary's `cat((freqs, freqs))`). None when that structure does not hold (stock path then)."""
    half = qk.shape[-1] // 2
    if qk.dtype != torch.float32 or cos.dtype != torch.float32 or sin.dtype != torch.float32:
        return None  # the stock path computes in float32 and casts back: keep it for half precision
    c, s = cos[:, :half], sin[:, :half]
    if not (torch.equal(c, cos[:, half:]) and torch.equal(s, sin[:, half:])):
        return None
    c, s = c[:, None, None, :], s[:, None, None, :]
    x1, x2 = qk[..., :half], qk[..., half:]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


def _attention_class():
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as m

    class FastRotaryVisionAttention(m.Qwen2_5_VLVisionAttention):
        """The stock vision attention with q and k rotated in one pass (`_rotate`). Only the packed
        ("flash"-named) attention functions are served here: tvau.model.attention installs this class
        together with them, and the stock per-window loop stays with the stock class."""

        def forward(self, hidden_states, cu_seqlens, position_embeddings=None, max_seqlen=None, **kwargs):
            if not m.is_flash_attention_requested(self.config):
                return super().forward(hidden_states, cu_seqlens, position_embeddings, max_seqlen, **kwargs)
            seq = hidden_states.shape[0]
            qkv = self.qkv(hidden_states).reshape(seq, 3, self.num_heads, -1)
            cos, sin = position_embeddings
            qk = _rotate(qkv[:, :2], cos, sin)
            if qk is None:
                q, k = m.apply_rotary_pos_emb_vision(qkv[:, 0], qkv[:, 1], cos, sin)
            else:
                q, k = qk.unbind(1)
            q, k, v = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, qkv[:, 2]))  # (1, H, S, d)
            attention = m.ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                                m.eager_attention_forward)
            max_seqlen = m.get_max_seqlen(cu_seqlens, self.config, kwargs={"max_seqlen": max_seqlen})
            out, _ = attention(self, q, k, v, attention_mask=None, scaling=self.scaling,
                               dropout=0.0 if not self.training else self.attention_dropout,
                               cu_seq_lens_q=cu_seqlens, cu_seq_lens_k=cu_seqlens, max_length_q=max_seqlen,
                               max_length_k=max_seqlen, is_causal=False, **kwargs)
            return self.proj(out.reshape(seq, -1).contiguous())

    return m.Qwen2_5_VLVisionAttention, FastRotaryVisionAttention


_CLASSES: tuple | None = None


def install(model, on: bool) -> None:
    """Swap the vision tower's patch embedding and attention classes of a
    Qwen2_5_VLForConditionalGeneration to the fast ones (`on`) or back to stock."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _attention_class()
    stock_attn, fast_attn = _CLASSES
    visual = model.model.visual
    visual.patch_embed.proj.__class__ = LinearPatchConv3d if on else nn.Conv3d
    for block in visual.blocks:
        block.attn.__class__ = fast_attn if on else stock_attn
