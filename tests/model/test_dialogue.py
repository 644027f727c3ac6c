"""TVAU.dialogue_batch on the tiny model (fp32, CPU): a whole dialogue in one KV cache answers every turn
as a full prefill of the same token ids would, with left padding, rows that stop early, rows that
run to max_new_tokens and rows dropped after the first turn."""

from __future__ import annotations

import itertools

import pytest
import torch

from tvau.model.chat import Prompt
from tvau.model.clips import synthetic_clip
from tvau.questions import Q_ANOMALY, Q_FROM_TO, Q_MOTION, Q_TARGET

QUESTIONS = (Q_ANOMALY, Q_TARGET, Q_MOTION, Q_FROM_TO)
CLIPS = [(6, 140, 196, 0), (5, 84, 252, 1), (4, 112, 112, 2)]  # three prompt lengths: real left padding
N_NEW = 8


@pytest.fixture(scope="module")
def model(tiny_cfg):
    """One model for this module (loading is the slow part on shared cores); tests that change a
    weight or the decision offset restore it."""
    from tvau.model.tvau import TVAU

    return TVAU.from_config(tiny_cfg, seed=0)


@pytest.fixture(scope="module")
def encs(model):
    with torch.no_grad():
        return model.encode_batch([synthetic_clip(t, h, w, square=12, seed=s) for t, h, w, s in CLIPS])


def _reference(model, enc, ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy answer after a full, unbatched prefill of the token sequence `ids` (the clip's first
    prompt followed by answers and turns), with the clip's video and RAE tokens in place."""
    bb = model.backbone
    input_ids = torch.tensor([ids])
    prompt = Prompt(input_ids=input_ids, mm_token_type_ids=(input_ids == bb.table.video).int() * 2,
                    labels=torch.full_like(input_ids, -100),
                    anomaly_positions=(input_ids[0] == bb.table.anomaly_pad).nonzero().flatten(),
                    video_positions=(input_ids[0] == bb.table.video).nonzero().flatten())
    embeds = bb.embed(prompt, enc.vision.video_embeds, model.anomaly_tokens(enc))
    return bb.greedy_tokens_batch(embeds, bb.position_ids(prompt, enc.vision.grid_thw), max_new_tokens)[0]


def _check_against_full_prefills(model, enc, turns, max_new_tokens: int) -> None:
    """Every turn after the first equals a full prefill of the conversation so far, built from the
    dialogue's own generated ids."""
    ids = model._lm_inputs(enc, [(turns[0].history[0][0], None)])[0].input_ids[0].tolist()
    for prev, turn in itertools.pairwise(turns):
        ids = ids + prev.tokens + model.backbone.next_turn_ids(turn.history[-1][0])
        assert turn.tokens == _reference(model, enc, ids, max_new_tokens)


def test_next_turn_ids_follow_the_chat_layout(model, encs):
    """First prompt + an answer's ids + next_turn_ids is build_prompt's two-turn conversation."""
    answer = "yes, a person is running"
    first = model._lm_inputs(encs[0], [(Q_ANOMALY, None)])[0].input_ids[0].tolist()
    both = model._lm_inputs(encs[0], [(Q_ANOMALY, answer), (Q_TARGET, None)])[0].input_ids[0].tolist()
    tok = model.backbone.tokenizer
    answer_ids = tok.encode(answer, add_special_tokens=False)
    assert both == first + answer_ids + model.backbone.next_turn_ids(Q_TARGET)
    assert model.backbone.next_turn_ids(Q_TARGET)[0] == model.backbone.table.im_end


@pytest.mark.parametrize("offset", [None, 0.0])
def test_dialogue_equals_full_prefills_and_chat_batch_on_the_first_turn(model, encs, offset):
    """All rows go on: the first turn is chat_batch's (with the calibrated yes/no bias too), every later
    turn a full prefill's, and a batch of three answers as each clip alone."""
    model.decision_offset = offset
    try:
        batch = model.dialogue_batch(encs, QUESTIONS, max_new_tokens=N_NEW)
        first = model.chat_batch(encs, Q_ANOMALY, max_new_tokens=N_NEW)
        single = [model.dialogue_batch([e], QUESTIONS, max_new_tokens=N_NEW)[0] for e in encs]
    finally:
        model.decision_offset = None
    assert [d[0].answer for d in batch] == [r.answer for r in first]
    if offset is not None:
        assert all(d[0].tokens[0] in model.yes_no_ids() for d in batch)
    for enc, turns, alone, chat in zip(encs, batch, single, first):
        assert [t.tokens for t in turns] == [t.tokens for t in alone]
        assert [q for q, _ in turns[-1].history] == list(QUESTIONS)
        assert [a for _, a in turns[-1].history] == [t.answer for t in turns]
        assert all(torch.equal(t.heatmap, chat.heatmap) for t in turns)
        _check_against_full_prefills(model, enc, turns, N_NEW)
    assert any(t.tokens for d in batch for t in d[1:])


def test_rows_that_stop_early_and_rows_that_are_dropped(model, encs):
    """A random tiny model never says <|im_end|> by itself, so its lm_head row is made a slightly longer
    copy of the row of a token that clip 0 emits after its first step and another clip never emits:
    clip 0 stops early (its cache keeps masked filler slots) while another runs to max_new_tokens.
    Only clips 0 and 2 go on: each of their turns still equals a full prefill of its own ids."""
    bb = model.backbone
    with torch.no_grad():
        plain = [t[0].tokens for t in model.dialogue_batch(encs, QUESTIONS[:1], max_new_tokens=N_NEW)]
    k, stop = next((k, t) for k, t in enumerate(plain[0])
                   if k > 0 and t not in plain[0][:k] and any(t not in s for s in plain[1:]))
    head = bb.model.lm_head.weight
    saved = head[bb.table.im_end].clone()
    asked = []
    with torch.no_grad():
        head[bb.table.im_end] = head[stop] * 1.01
        try:
            batch = model.dialogue_batch(encs, QUESTIONS, max_new_tokens=N_NEW,
                                         follow_up=lambda first: asked.append(first) or [2, 0])
            lengths = [len(d[0].tokens) for d in batch]
            assert lengths[0] == k and max(lengths) == N_NEW  # clip 0 stopped at step k + 1, another did not
            assert len(asked) == 1 and [r.answer for r in asked[0]] == [d[0].answer for d in batch]
            assert [len(d) for d in batch] == [4, 1, 4]
            for i in (0, 2):
                _check_against_full_prefills(model, encs[i], batch[i], N_NEW)
            assert any(len(t.tokens) < N_NEW for t in batch[0][1:] + batch[2][1:])  # stops in later turns too
        finally:
            head[bb.table.im_end] = saved


def test_no_follow_up_and_bad_rows(model, encs):
    out = model.dialogue_batch(encs[:2], QUESTIONS, max_new_tokens=2, follow_up=lambda _: [])
    assert [len(d) for d in out] == [1, 1]
    assert model.dialogue_batch([], QUESTIONS) == []
    with pytest.raises(ValueError, match="follow_up named rows"):
        model.dialogue_batch(encs[:2], QUESTIONS, max_new_tokens=2, follow_up=lambda _: [2])
