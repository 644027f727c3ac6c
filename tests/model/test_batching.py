"""Issue 9 on the tiny model (fp32, CPU): the one-call vision attention equals transformers' stock
per-window loop, and batches equal one-at-a-time runs (vision, heatmaps, prefill logits, answers,
stage-2 loss)."""

from __future__ import annotations

import pytest
import torch

from tvau.model import attention
from tvau.model.chat import Q_ANOMALY
from tvau.model.clips import synthetic_clip

TOL = 1e-5
# Odd frame sizes: 140x196 -> 10x14 patches -> 5x7 merge units, 84x252 -> 3x9 units; the tiny tower's
# windows are 2x2 units, so the right and bottom windows are ragged (1 or 2 units wide). Frame counts
# 6 and 5 (5 is padded to 6 by repeating the last frame).
CLIPS = [(6, 140, 196, 0), (5, 84, 252, 1), (4, 112, 112, 2)]


@pytest.fixture(scope="module")
def model(tiny_cfg):
    """One model for this module (loading is the slow part on 2 shared cores); tests that switch
    the attention switch it back."""
    from tvau.model.tvau import TVAU

    return TVAU.from_config(tiny_cfg, seed=0)


def _clips():
    return [synthetic_clip(t, h, w, square=12, seed=s) for t, h, w, s in CLIPS]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a.float() - b.float()).abs().max())


def _prefill_logits(model, enc, turns):
    _, embeds, pos = model._lm_inputs(enc, turns)
    return model.backbone.logits(embeds, pos)[0]


def test_auto_is_padded_on_cpu_and_unavailable_choices_are_refused(model):
    assert model.backbone.attn_implementation == attention.REGISTERED["padded"]
    assert model.backbone.model.config.text_config._attn_implementation == "sdpa"  # the LM is left alone
    with pytest.raises(ValueError, match="needs a CUDA device"):
        attention.resolve("varlen", "cpu", torch.bfloat16)
    with pytest.raises(ValueError, match="not one of"):
        attention.resolve("fast", "cpu", torch.float32)


@pytest.mark.parametrize("stock", ["eager", "sdpa"])
def test_one_call_attention_equals_stock_per_window(model, stock):
    """Tapped features, merged tokens, heatmaps and prefill logits of the padded one-call path against
    the stock loop, on clips whose windows are ragged at the edges."""
    clips = _clips()
    turns = [(Q_ANOMALY, None)]
    with torch.no_grad():
        ours = [model.encode(c) for c in clips]
        ours_logits = [_prefill_logits(model, e, turns) for e in ours]
        model.backbone.set_attention(stock)
        try:
            ref = [model.encode(c) for c in clips]
            ref_logits = [_prefill_logits(model, e, turns) for e in ref]
        finally:
            model.backbone.set_attention("auto")
    for a, b, la, lb in zip(ours, ref, ours_logits, ref_logits):
        assert a.grid == b.grid
        for ta, tb in zip(a.vision.taps, b.vision.taps):
            assert _max_diff(ta, tb) < TOL
        assert _max_diff(a.vision.video_embeds, b.vision.video_embeds) < TOL
        assert _max_diff(model.heatmap(a), model.heatmap(b)) < TOL
        assert _max_diff(la, lb) < TOL
    # The edge windows really are ragged: otherwise the padded path would not have been exercised.
    from transformers.vision_utils import get_vision_window_index

    vc = model.backbone.model.config.vision_config
    _, cu = get_vision_window_index(ours[0].vision.grid_thw.cpu(), vc.spatial_merge_size, vc.window_size,
                                    vc.patch_size)
    assert len(set((cu[1:] - cu[:-1]).tolist())) > 1


def test_one_attention_call_per_block_for_a_batch(model):
    """The vision tower over three clips calls the attention function once per block (the stock
    loop calls it once per window and frame)."""
    from transformers import AttentionInterface

    name = attention.REGISTERED["padded"]
    calls = []

    def counting(module, *args, **kwargs):
        calls.append(kwargs["cu_seq_lens_q"].numel() - 1)
        return attention.padded_attention(module, *args, **kwargs)

    AttentionInterface.register(name, counting)
    try:
        model.backbone.encode_videos(_clips())
    finally:
        AttentionInterface.register(name, attention.padded_attention)
    depth = len(model.backbone.visual.blocks)
    assert len(calls) == depth
    assert max(calls) > 20  # each call covers dozens of windows/frames from all three clips


def test_batched_vision_and_heatmaps_equal_single(model):
    clips = _clips()
    with torch.no_grad():
        batch = model.encode_batch(clips)
        single = [model.encode(c) for c in clips]
    heat_batch = model.heatmap_batch(clips)
    for b, s, hb in zip(batch, single, heat_batch):
        assert b.grid == s.grid and b.vision.frame_size == s.vision.frame_size
        assert b.vision.num_frames == s.vision.num_frames
        for tb, ts in zip(b.vision.taps, s.vision.taps):
            assert _max_diff(tb, ts) < TOL
        assert _max_diff(b.vision.video_embeds, s.vision.video_embeds) < TOL
        assert _max_diff(hb, model.heatmap(s)) < TOL
        assert _max_diff(model.anomaly_tokens(b), model.anomaly_tokens(s)) < TOL
    # Stacked RAE over clips of one grid size equals RAE per clip (motion cues never cross clips).
    same = [batch[0], batch[0], batch[2]]
    for got, enc in zip(model.anomaly_tokens_batch(same), same):
        assert _max_diff(got, model.anomaly_tokens(enc)) < TOL


def test_chat_batch_equals_one_at_a_time(model):
    """Different clip sizes, questions and histories (so prompt lengths differ and left padding is
    real): token-for-token the same answers, and the same prefill logits on every real position."""
    clips = _clips()
    questions = [Q_ANOMALY, "Describe the environment.", "How does it move?"]
    histories = [None, [(Q_ANOMALY, "yes, a person is running fast")], None]
    n_new = 12
    with torch.no_grad():
        encs = model.encode_batch(clips)
        batch = model.chat_batch(encs, questions, histories, max_new_tokens=n_new)
        single = [model.chat(c, q, history=h, max_new_tokens=n_new) for c, q, h in zip(clips, questions, histories)]
        assert [r.answer for r in batch] == [r.answer for r in single]
        assert any(len(r.answer) > 0 for r in batch)
        for r, s, q, h in zip(batch, single, questions, histories):
            assert r.history == [*(h or []), (q, r.answer)]
            assert _max_diff(r.heatmap, s.heatmap) < TOL
        # The left-padded prefill itself.
        convs = [[*(h or []), (q, None)] for q, h in zip(questions, histories)]
        prompts, embeds, mask, pos = model._lm_batch(encs, convs)
        assert len({p.input_ids.shape[1] for p in prompts}) == 3
        out = model.backbone.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos,
                                            use_cache=False)
        logits = model.backbone.model.lm_head(out.last_hidden_state)
        for i, (enc, conv) in enumerate(zip(encs, convs)):
            ref = _prefill_logits(model, enc, conv)
            assert _max_diff(logits[i, logits.shape[1] - ref.shape[0]:], ref) < TOL


def test_chat_batch_stops_each_answer_at_its_own_end(model):
    """Answers that end at different steps: each is cut where it stopped, the others go on. A random
    tiny model never says <|im_end|> by itself, so its lm_head row is made a slightly longer copy of
    the row of a token that clip 0 emits after its first step and another clip never emits: from then
    on <|im_end|> wins wherever that token would have (same model for the batch and the single runs)."""
    bb = model.backbone
    clips = _clips()
    n_new = 10
    with torch.no_grad():
        encs = model.encode_batch(clips)
        seqs = [bb.greedy_tokens_batch(*model._lm_inputs(e, [(Q_ANOMALY, None)])[1:], n_new)[0] for e in encs]
        k, stop = next((k, t) for k, t in enumerate(seqs[0])
                       if k > 0 and t not in seqs[0][:k] and any(t not in s for s in seqs[1:]))
        head = bb.model.lm_head.weight
        saved = head[bb.table.im_end].clone()
        head[bb.table.im_end] = head[stop] * 1.01
        try:
            batch = model.chat_batch(encs, Q_ANOMALY, max_new_tokens=n_new)
            single = [model.chat(e, Q_ANOMALY, max_new_tokens=n_new) for e in encs]
            lengths = [len(bb.greedy_tokens_batch(*model._lm_inputs(e, [(Q_ANOMALY, None)])[1:], n_new)[0])
                       for e in encs]
        finally:
            head[bb.table.im_end] = saved
    assert [r.answer for r in batch] == [r.answer for r in single]
    assert lengths[0] == k and max(lengths) == n_new  # clip 0 stopped at step k + 1, another did not


def test_dialogue_loss_batch_and_gradient_checkpointing(tiny_cfg):
    """Stage 2: the batched loss is the answer-token-weighted mean of the single losses, and with
    gradient checkpointing the loss and every trainable gradient are unchanged."""
    from tvau.model.lora import lora_parameters
    from tvau.model.tvau import TVAU

    clips = _clips()[:2]
    convs = [[(Q_ANOMALY, "yes, a person running")],
             [(Q_ANOMALY, "no"), ("Describe the environment.", "a quiet street with trees")]]
    results = {}
    for ckpt in (False, True):
        m = TVAU.from_config(tiny_cfg.model_copy(update={"gradient_checkpointing": ckpt}), seed=0)
        m.set_stage("rae")
        m.train()
        lm = m.backbone.language_model
        assert lm.is_activation_checkpointing == ckpt
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():  # B = 0 at start would leave LoRA's A without gradient
            for name, p in lora_parameters(lm).items():
                if "lora_B" in name:
                    p.normal_(0, 0.02, generator=gen)
        for mod in m.modules():  # deterministic: LoRA dropout off, checkpointing still active in train mode
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        encs = m.encode_batch(clips)
        loss = m.dialogue_loss_batch(encs, convs)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad and p.grad is not None}
        results[ckpt] = (loss.item(), grads)
        if not ckpt:
            with torch.no_grad():
                singles = [float(m.dialogue_loss(e, c)) for e, c in zip(encs, convs)]
                ns = [int((m._lm_inputs(e, c)[0].labels != -100).sum()) for e, c in zip(encs, convs)]
                expect = sum(s * n for s, n in zip(singles, ns)) / sum(ns)
            assert abs(loss.item() - expect) < TOL
        m.set_stage("frozen")
        assert not lm.is_activation_checkpointing
    (l0, g0), (l1, g1) = results[False], results[True]
    assert abs(l0 - l1) < TOL
    assert set(g0) == set(g1) and any(n.startswith("rae.") for n in g0) and any("lora" in n for n in g0)
    for n in g0:
        assert _max_diff(g0[n], g1[n]) < TOL, n


def test_varlen_wrapper_layout_on_the_meta_device():
    """The CUDA kernels cannot run here; torch's fake (meta) implementation of varlen_attn checks
    that our wrapper hands it (S, H, d) tensors with int32 cu_seqlens and returns transformers'
    (1, S, H, d) layout."""
    if not attention.varlen_available():
        pytest.fail("torch 2.13 ships torch.nn.attention.varlen; it is missing from this install")
    q = torch.empty(1, 2, 16, 80, device="meta", dtype=torch.bfloat16)
    cu = torch.tensor([0, 5, 16], device="meta", dtype=torch.int32)
    out, _ = attention.varlen_attention(None, q, q, q, scaling=80 ** -0.5, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
                                        max_length_q=11, max_length_k=11)
    assert out.shape == (1, 16, 2, 80) and out.dtype == torch.bfloat16
