"""The composite model: shapes, anomaly prompt positions, freezing, ablations, chat, adapter files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tvau.model.ahd import ahd_loss, pool_masks
from tvau.model.clips import synthetic_clip
from tvau.model.tvau import TVAU

Q0 = "Is there any anomaly in the video?"


def _clip(t=24, h=112, w=112, seed=0):
    return synthetic_clip(t, h, w, seed=seed)


def _backbone_snapshot(model):
    return {n: p.detach().clone() for n, p in model.backbone.named_parameters() if "lora_" not in n}


@pytest.mark.parametrize("frames,size,grid", [(24, (112, 112), (12, 8, 8)), (23, (84, 140), (12, 6, 10)),
                                              (7, (100, 150), (4, 8, 10))])
def test_forward_shapes_and_ranges(model, frames, size, grid):
    clip = _clip(frames, *size)
    enc = model.encode(clip)
    assert enc.grid == grid and enc.logits.shape == (grid[0], 2, grid[1], grid[2])
    torch.testing.assert_close(torch.softmax(enc.logits, 1).sum(1), torch.ones(grid))
    h = model.heatmap(enc)
    assert h.shape == grid and h.min() >= 0 and h.max() <= 1
    hf = model.heatmap_frames(enc)
    assert hf.shape == (frames, *size) and hf.min() >= 0 and hf.max() <= 1
    torch.testing.assert_close(hf[0], hf[1])  # one temporal slice covers two frames
    p, embeds, pos = model._lm_inputs(enc, [(Q0, None)])
    assert embeds.shape == (1, p.input_ids.shape[1], model.backbone.text_width)
    assert pos.shape == (3, 1, p.input_ids.shape[1])
    assert model.backbone.logits(embeds, pos).shape[:2] == (1, p.input_ids.shape[1])


def test_anomaly_prompt_positions_are_exact_and_filled(model):
    enc = model.encode(_clip())
    t = enc.grid[0]
    prompt, embeds, _ = model._lm_inputs(enc, [(Q0, None)])
    table = model.backbone.table
    assert table.anomaly_pad != table.video and table.anomaly_pad != model.backbone.model.config.video_token_id
    ids = prompt.input_ids[0]
    assert int((ids == table.anomaly_pad).sum()) == (t - 1) * 20 == 220
    assert prompt.anomaly_positions.numel() == 220
    assert int((ids == table.video).sum()) == 12 * 8 * 8 // 4
    # the block sits right after the video, between its start and end tokens
    start = int((ids == table.anomaly_start).nonzero())
    end = int((ids == table.anomaly_end).nonzero())
    assert ids[start - 1] == table.vision_end and end - start - 1 == 220
    with torch.no_grad():
        torch.testing.assert_close(embeds[0, prompt.anomaly_positions], model.anomaly_tokens(enc))
        torch.testing.assert_close(embeds[0, prompt.video_positions], enc.vision.video_embeds)


def test_ablation_switches(model):
    clip = _clip(8, 56, 56)
    model.use_rae = False
    enc = model.encode(clip)
    p, _, _ = model._lm_inputs(enc, [(Q0, None)])
    assert p.anomaly_positions.numel() == 0 and (p.input_ids == model.backbone.table.anomaly_start).sum() == 0
    assert model.chat(enc, Q0, max_new_tokens=3).heatmap is not None
    model.use_rae, model.use_ahd = True, False
    enc = model.encode(clip)
    assert enc.logits is None
    with pytest.raises(RuntimeError, match="AHD is switched off"):
        model.heatmap(enc)
    p, _, _ = model._lm_inputs(enc, [(Q0, None)])
    assert p.anomaly_positions.numel() == 3 * 20
    r = model.chat(enc, Q0, max_new_tokens=3)
    assert r.heatmap is None and isinstance(r.answer, str)


def test_stage1_trains_only_ahd(model):
    model.set_stage("ahd")
    model.train()
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.ahd.parameters()}
    before, rae_before = _backbone_snapshot(model), {k: v.clone() for k, v in model.rae.state_dict().items()}
    ahd_before = {k: v.clone() for k, v in model.ahd.state_dict().items()}
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3)
    clip = _clip()
    masks = np.zeros((24, 112, 112), bool)
    masks[:, 40:70, 30:60] = True
    enc = model.encode(clip)
    loss = ahd_loss(enc.logits, pool_masks(masks, enc.grid))
    loss.backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == n.startswith("ahd."), n
    opt.step()
    after = _backbone_snapshot(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(rae_before[k], v) for k, v in model.rae.state_dict().items())
    assert any(not torch.equal(ahd_before[k], v) for k, v in model.ahd.state_dict().items())


def test_stage2_trains_only_rae_and_lora(model):
    model.set_stage(2)
    model.train()
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("rae.") or "lora_" in n for n in names)
    assert any("lora_" in n for n in names) and any(n.startswith("rae.") for n in names)
    before = _backbone_snapshot(model)
    ahd_before = {k: v.clone() for k, v in model.ahd.state_dict().items()}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=2e-4)
    loss = model.dialogue_loss(_clip(), [(Q0, "Yes. A person running moves from left to right.")])
    loss.backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == (n in names), n
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in lora_before)  # B gets gradient at B = 0
    opt.step()
    after = _backbone_snapshot(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(ahd_before[k], v) for k, v in model.ahd.state_dict().items())
    assert any(not torch.equal(lora_before[n], model.get_parameter(n)) for n in lora_before)
    with pytest.raises(ValueError, match="unknown stage"):
        model.set_stage("lm")


def test_vision_runs_once_per_clip_and_chat_keeps_history(model):
    calls = []
    hook = model.backbone.visual.register_forward_hook(lambda *a: calls.append(1))
    try:
        enc = model.encode(_clip(8, 56, 56))
        r1 = model.chat(enc, Q0, max_new_tokens=4)
        r2 = model.chat(enc, "What is its motion state?", history=r1.history, max_new_tokens=4)
    finally:
        hook.remove()
    assert len(calls) == 1
    assert r1.history == [(Q0, r1.answer)]
    assert r2.history == [(Q0, r1.answer), ("What is its motion state?", r2.answer)]
    p, _, _ = model._lm_inputs(enc, [*r1.history, ("What is its motion state?", None)])
    ids = p.input_ids[0]
    tb = model.backbone.table
    assert int((ids == tb.im_start).sum()) == 1 + 2 * 2  # system + (user, assistant) x 2
    assert int((ids == tb.video).sum()) == 4 * 4 * 4 // 4  # the clip appears once, in the first turn
    text = model.backbone.tokenizer.decode(ids)
    assert Q0 in text and "What is its motion state?" in text and r1.answer in text
    # The second answer depends on the history: asking without it sees a different prompt.
    p_alone, _, _ = model._lm_inputs(enc, [("What is its motion state?", None)])
    assert p_alone.input_ids.shape[1] < p.input_ids.shape[1]
    with pytest.raises(ValueError, match="reserved"):
        model.chat(enc, "where is <|video_pad|>?", max_new_tokens=2)


def test_adapter_round_trip_reproduces_outputs(tiny_cfg, tmp_path):
    a = TVAU.from_config(tiny_cfg, seed=0)
    with torch.no_grad():  # make every adapter tensor non-trivial (LoRA B starts at zero)
        g = torch.Generator().manual_seed(7)
        for n, p in a.named_parameters():
            if n.startswith(("ahd.", "rae.")) or "lora_" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    path = a.save_adapters(tmp_path / "adapters.safetensors")
    assert [x.name for x in tmp_path.iterdir()] == ["adapters.safetensors"]
    b = TVAU.from_config(tiny_cfg, seed=1)
    clip = _clip(8, 56, 56)
    turns = [(Q0, "Yes, a person running.")]
    with torch.no_grad():
        assert not torch.equal(a.heatmap(clip), b.heatmap(clip))
        b.load_adapters(path)
        assert torch.equal(a.heatmap(clip), b.heatmap(clip))
        assert torch.equal(a.dialogue_loss(clip, turns), b.dialogue_loss(clip, turns))
    assert a.chat(clip, Q0, max_new_tokens=5).answer == b.chat(clip, Q0, max_new_tokens=5).answer


def test_adapter_file_errors_name_the_file(tiny_cfg, model, tmp_path):
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors"):
        model.load_adapters(bad)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        model.load_adapters(tmp_path / "missing.safetensors")
    other = TVAU.from_config(tiny_cfg.model_copy(update={"rae_hidden": 64}))
    path = other.save_adapters(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="other.safetensors.*rae_hidden"):
        model.load_adapters(path)


def test_answer_loss_weights_the_first_token_of_each_answer():
    """Hand-worked: two answers (tokens 3, 4 and token 5) after a prompt; with weight w the first
    token of each answer (3 and 5) counts w times in the mean, and w = 1 is plain cross-entropy."""
    from tvau.model.chat import answer_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 9)
    labels = torch.tensor([[-100, -100, 3, 4, -100, 5], [-100, -100, -100, -100, 7, 8]])
    logp = torch.log_softmax(logits, dim=-1)
    # position t predicts labels[t + 1]
    nll = {(0, 1): -logp[0, 1, 3], (0, 2): -logp[0, 2, 4], (0, 4): -logp[0, 4, 5],
           (1, 3): -logp[1, 3, 7], (1, 4): -logp[1, 4, 8]}
    firsts = {(0, 1), (0, 4), (1, 3)}
    for w in (1.0, 4.0):
        weights = {k: (w if k in firsts else 1.0) for k in nll}
        expect = sum(weights[k] * v for k, v in nll.items()) / sum(weights.values())
        assert torch.allclose(answer_loss(logits, labels, w), expect, atol=1e-6), w
    # first_token_only (the yes/no phase): the mean over the first tokens alone
    only = sum(v for k, v in nll.items() if k in firsts) / len(firsts)
    assert torch.allclose(answer_loss(logits, labels, first_token_only=True), only, atol=1e-6)
    assert torch.allclose(answer_loss(logits, labels, 4.0, first_token_only=True), only, atol=1e-6)
    assert torch.allclose(answer_loss(logits, labels), F.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100))


def test_decision_offset_moves_only_the_first_answer_and_round_trips(tiny_cfg, model, tmp_path):
    """TVAU.decision_offset (a calibrated decision) restricts the first token of the opening Q_ANOMALY
    answer to "Yes"/"No" and adds the offset to "No"'s logit; nothing else changes, and None (the
    paper's plain greedy) biases nothing."""
    clip = model.encode(_clip(8, 56, 56))
    ids = model.yes_no_ids()
    assert ids is not None
    margin = float(model.decision_margins([clip])[0])
    with torch.no_grad():  # the margin is the greedy first step's logit difference, computed independently
        _, embeds, pos = model._lm_inputs(clip, [(Q0, None)])
        last = model.backbone.logits(embeds, pos)[0, -1]
    assert margin == pytest.approx(float(last[ids[0]] - last[ids[1]]), abs=1e-4)
    assert model.decision_offset is None and model._decision_bias([Q0], [None]) is None
    # The random tiny LM's own greedy first token is some other word: the restriction is what decides.
    assert int(last.argmax()) not in ids
    follow = "What is its motion state?"
    plain_follow = model.chat(clip, follow, history=[(Q0, "Yes.")], max_new_tokens=4).answer
    for offset, want in ((margin - 0.5, ids[0]), (margin + 0.5, ids[1]), (1e4, ids[1]), (-1e4, ids[0])):
        model.decision_offset = offset
        tokens = model.backbone.greedy_tokens_batch(embeds, pos, 1, first_logit_bias=model._decision_bias([Q0], [None]))
        assert tokens[0][0] == want, offset  # "Yes" exactly when margin > offset
        assert model.chat(clip, follow, history=[(Q0, "Yes.")], max_new_tokens=4).answer == plain_follow
    model.decision_offset = 1e4
    assert model.chat(clip, Q0, max_new_tokens=3).answer.startswith("No")
    model.decision_offset = 0.25
    path = model.save_adapters(tmp_path / "adapters.safetensors")
    other = TVAU.from_config(tiny_cfg, seed=1)
    other.load_adapters(path)
    assert other.decision_offset == 0.25
    model.decision_offset = None
    other.load_adapters(model.save_adapters(tmp_path / "plain.safetensors"))
    assert other.decision_offset is None
