"""One attention call per vision block for Qwen2.5-VL's windowed vision tower.

transformers' `Qwen2_5_VLVisionAttention` (5.24) has two branches. If the configured implementation
name contains "flash" (`is_flash_attention_requested`), it calls the attention function ONCE with the
whole packed sequence and `cu_seq_lens_q/k` + `max_length_q/k` (segment boundaries: one segment per
window in windowed blocks, one per frame in full-attention blocks). Otherwise it splits the sequence
at every boundary and calls attention once per window in a Python loop (hundreds of calls per block
on a 7B clip, each after a host sync on `cu_seqlens`). We register our functions through transformers'
AttentionInterface under names containing "flash", so the stock classes take the packed branch and
run unchanged:

- "varlen"     -> torch.nn.attention.varlen.varlen_attn (PyTorch's flash kernel with cu_seqlens;
                  CUDA, fp16/bf16 only);
- "flash_attn" -> flash_attn.flash_attn_varlen_func (the flash-attn package, when installed);
- "padded"     -> one scaled_dot_product_attention call over all segments padded to the longest,
                  keys past each segment's end masked out (any device, any dtype; the CPU path).

"eager" and "sdpa" keep transformers' stock per-window loop (the reference the tests compare with).
"auto" picks the fastest available for the device and dtype (`resolve`).

Only the vision tower gets these names: the language model keeps its own implementation (its
attention is one call per layer already, and a "flash" name there would change its mask handling).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)
CHOICES = ("auto", "eager", "sdpa", "varlen", "flash_attn", "padded")
# Names in transformers' AttentionInterface. They must contain "flash" (see the module docstring).
REGISTERED = {"varlen": "tvau_flash_varlen", "flash_attn": "tvau_flash_attn", "padded": "tvau_flash_padded"}


def _segments(module, query, key, value, kwargs):
    """Common checks; returns (cu_seqlens int32, max_len int). Query/key/value are (1, H, S, d)."""
    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_q is None or (cu_k is not None and cu_k is not cu_q and not torch.equal(cu_q, cu_k)):
        raise ValueError("tvau vision attention needs cu_seq_lens_q (== cu_seq_lens_k): it only serves the "
                         "packed self-attention of the Qwen2.5-VL vision tower")
    if query.shape[0] != 1:
        raise ValueError(f"packed attention expects batch 1, got query {tuple(query.shape)}")
    max_len = kwargs.get("max_length_q")
    if max_len is None:
        max_len = int((cu_q[1:] - cu_q[:-1]).max())
    return cu_q, int(max_len)


def padded_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, **kwargs):
    """All segments in one SDPA call: (1, H, S, d) -> (n, H, Lmax, d) padded, padded keys masked, back
    to (1, S, H, d) (the layout transformers' attention functions return)."""
    cu, lmax = _segments(module, query, key, value, kwargs)
    _, heads, s, d = query.shape
    n = cu.numel() - 1
    q, k, v = query[0], key[0], value[0]  # (H, S, d)
    if n * lmax == s:  # all segments equally long (full-attention blocks; a uniform window grid): a view
        q, k, v = (t.reshape(heads, n, lmax, d).transpose(0, 1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, scale=scaling, dropout_p=dropout)
        return out.permute(0, 2, 1, 3).reshape(1, s, heads, d), None
    cu = cu.to(query.device).long()
    lengths = cu[1:] - cu[:-1]
    steps = torch.arange(lmax, device=query.device)
    valid = steps[None] < lengths[:, None]  # (n, Lmax)
    index = torch.where(valid, cu[:-1, None] + steps[None], 0)  # padded slots read token 0 (masked)
    q, k, v = (t[:, index].transpose(0, 1) for t in (q, k, v))  # (n, H, Lmax, d)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :], scale=scaling,
                                         dropout_p=dropout)
    # Valid slots in row-major order are exactly the tokens 0..S-1 in order (segments are consecutive).
    return out.permute(0, 2, 1, 3)[valid].reshape(1, s, heads, d), None


def _varlen_kwargs() -> set[str]:
    from torch.nn.attention.varlen import varlen_attn

    return set(inspect.signature(varlen_attn).parameters)


def varlen_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, **kwargs):
    """torch's varlen flash kernel: one launch for all segments."""
    from torch.nn.attention.varlen import varlen_attn

    if dropout:
        raise ValueError("varlen vision attention has no dropout (the tower is frozen)")
    cu, lmax = _segments(module, query, key, value, kwargs)
    q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))  # (S, H, d)
    extra = {}
    if scaling is not None:
        if "scale" in _VARLEN_PARAMS:
            extra["scale"] = scaling
        else:  # older torch: no scale argument; its default is d**-0.5, fold the difference into q
            q = q * (scaling * q.shape[-1] ** 0.5)
    out = varlen_attn(q, k, v, cu, cu, lmax, lmax, **extra)
    return out[None], None  # (1, S, H, d)


def flash_attn_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, **kwargs):
    """The flash-attn package's varlen kernel (when installed)."""
    from flash_attn import flash_attn_varlen_func

    cu, lmax = _segments(module, query, key, value, kwargs)
    q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))  # (S, H, d)
    out = flash_attn_varlen_func(q, k, v, cu, cu, lmax, lmax, dropout_p=dropout, softmax_scale=scaling,
                                 causal=False)
    return out[None], None


_FUNCTIONS = {"varlen": varlen_attention, "flash_attn": flash_attn_attention, "padded": padded_attention}
_VARLEN_PARAMS: set[str] = set()


def varlen_available() -> bool:
    try:
        _VARLEN_PARAMS.update(_varlen_kwargs())
    except ImportError:
        return False
    return True


@functools.cache
def _varlen_runs(device: str, dtype: torch.dtype) -> bool:
    """One tiny call: "auto" must not pick a kernel that this torch build or card cannot run (the
    prototype API has changed between torch releases). Explicit "varlen" fails loudly instead."""
    try:
        q = torch.randn(16, 2, 64, device=device, dtype=dtype)
        cu = torch.tensor([0, 5, 16], device=device, dtype=torch.int32)
        out, _ = varlen_attention(None, *(q.transpose(0, 1)[None],) * 3, scaling=0.125, cu_seq_lens_q=cu,
                                  cu_seq_lens_k=cu, max_length_q=11, max_length_k=11)
        return bool(torch.isfinite(out).all())
    except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:  # not usable here
        log.warning("torch varlen_attn is present but does not run here (%s); using another kernel",
                    str(exc).splitlines()[0])
        return False


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def register() -> None:
    """Register our functions in transformers' global AttentionInterface (idempotent)."""
    from transformers import AttentionInterface

    for key, name in REGISTERED.items():
        AttentionInterface.register(name, _FUNCTIONS[key])


def resolve(choice: str, device: torch.device | str, dtype: torch.dtype) -> str:
    """`model.attn_implementation` -> the name to put in the vision config. Refuses a choice that
    cannot run here (a clear error beats a silent slow fallback)."""
    if choice not in CHOICES:
        raise ValueError(f"model.attn_implementation: {choice!r} is not one of {list(CHOICES)}")
    cuda = torch.device(device).type == "cuda"
    half = dtype in (torch.float16, torch.bfloat16)
    if choice == "auto":
        if cuda and half and varlen_available() and _varlen_runs(str(torch.device(device)), dtype):
            choice = "varlen"
        elif cuda and half and flash_attn_available():
            choice = "flash_attn"
        else:
            choice = "padded"
    if choice in ("eager", "sdpa"):
        return choice
    if choice in ("varlen", "flash_attn"):
        ok = varlen_available() if choice == "varlen" else flash_attn_available()
        if not (cuda and half and ok):
            raise ValueError(f"model.attn_implementation: {choice!r} needs a CUDA device, float16/bfloat16 and "
                             f"{'torch.nn.attention.varlen' if choice == 'varlen' else 'the flash-attn package'}; "
                             f"have device {device}, {dtype}, available={ok}")
    register()
    return REGISTERED[choice]


def apply(model, choice: str) -> str:
    """Set the vision tower of a Qwen2_5_VLForConditionalGeneration to `choice`; returns the
    transformers name now in its vision config. The language model is left as it is. Our names also
    install tvau.model.vision_fast's patch embedding and rotary; "eager"/"sdpa" restore the stock ones."""
    p = model.model.visual.patch_embed.proj.weight
    name = resolve(choice, p.device, p.dtype)
    model.set_attn_implementation({"vision_config": name})
    if model.model.visual.config._attn_implementation != name:
        raise RuntimeError(f"transformers did not take vision attention {name!r}")
    from tvau.model.vision_fast import install

    # Our one-call attention comes with the faster patch embedding and rotary (tvau.model.vision_fast);
    # the stock names keep the stock classes whole, the reference that tests compare with.
    install(model, name not in ("eager", "sdpa"))
    return name
