"""Batched model calls in scoring on the tiny model: `clips_per_call` clips through the
vision tower in one call and several clips' dialogues decoded together give the same heatmaps
(float tolerance) and the same answers as one clip at a time, and scoring through the real S3
server explains each anomalous span once, on its peak clip."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tvau.score.config import ScoreConfig
from tvau.score.core import score_prefix
from tvau.score.media import iter_sampled_clips
from tvau.score.model import ClipModel, get_model
from tvau.score.s3io import make_client

TOL = 1e-5
# 8-frame clips at 12 fps: 24 sampled frames per test video -> 3 clips, so a call of 4 spans a whole video.
SHORT = {"clip_frames": 8, "stride": 8, "backoff_s": 0.01, "sample_fps": 12.0}
QUESTIONS = ("Is there any anomaly in the video?", "What is its motion state?")


@pytest.fixture(scope="module")
def clips(night, model_dir, loader):
    loaded = get_model(str(model_dir), None, loader)
    cfg = ScoreConfig(**SHORT)
    out = [c.frames for v in night[:2] for c in iter_sampled_clips(v, cfg, loaded.input_size, 24.0)]
    assert len(out) == 6
    return loaded, out


def test_batched_heatmaps_and_dialogues_equal_one_clip_at_a_time(clips):
    loaded, frames = clips
    one, four = ClipModel(loaded, 1), ClipModel(loaded, 4)
    calls = []
    encode_batch = loaded.model.encode_batch

    def counting(group):
        calls.append(len(group))
        return encode_batch(group)

    loaded.model.encode_batch = counting  # instance attribute: only this test's model object
    try:
        enc4, heat4 = four.heatmaps(frames)
    finally:
        del loaded.model.encode_batch
    assert calls == [4, 2]  # 6 clips, 4 per call: two vision calls, not six
    enc1, heat1 = one.heatmaps(frames)
    for a, b, ea, eb in zip(heat4, heat1, enc4, enc1, strict=True):
        assert a.shape == b.shape and a.dtype == np.float32
        assert float(np.abs(a - b).max()) < TOL
        assert float((ea.vision.video_embeds - eb.vision.video_embeds).abs().max()) < TOL
    # Dialogues: three escalated clips decoded together, two turns each, against one by one.
    esc = [enc4[0], enc4[2], enc4[5]]
    together = four.ask(esc, QUESTIONS, max_new_tokens=4)
    alone = [one.ask([e], QUESTIONS, max_new_tokens=4)[0] for e in [enc1[0], enc1[2], enc1[5]]]
    assert together == alone
    assert all([t["question"] for t in d] == list(QUESTIONS) for d in together)
    assert any(t["answer"] for d in together for t in d)  # something was actually decoded
    assert four.timer.clips == 6 and four.timer.escalated == 3 and four.timer.frames == 6 * 8


def test_clips_per_call_must_be_positive(clips):
    with pytest.raises(ValueError, match="clips_per_call"):
        ClipModel(clips[0], 0)


def _get(client, key: str) -> bytes:
    return client.get_object(Bucket="results", Key=key)["Body"].read()


def test_explanations_are_asked_on_each_span_peak_clip_only(s3_vars, night, model_dir, loader):
    """Two videos of three clips each, flagged (the test calibration's threshold is 0.5 and the
    untrained adapters light up every clip): the language model is asked the trained dialogue once
    per span, on the clip holding the span's peak, and 4 clips per call give what 1 per call gives."""
    from tvau.score.explain import SCORING_QUESTIONS

    client = make_client(ScoreConfig(**SHORT))
    for v in night[:2]:
        client.put_object(Bucket="footage", Key=f"b1/{v.name}", Body=v.read_bytes())
    runs = {}
    for per_call in (4, 1):
        cfg = ScoreConfig(**SHORT, escalate_level=0.0, max_new_tokens=3, clips_per_call=per_call)
        res = score_prefix("s3://footage/b1/", f"s3://results/b1-{per_call}", str(model_dir), cfg, loader=loader,
                           client=client)
        assert {r.status for r in res} == {"scored"} and {r.verdict for r in res} == {"anomalous"}
        runs[per_call] = {}
        for r in res:
            d = json.loads(_get(client, f"b1-{per_call}/{r.key}/dialogue.json"))
            assert d["spans"] and r.escalated == len({sp["clip"] for sp in d["spans"]}) < len(d["clips"]) + 1
            for sp in d["spans"]:
                holding = [c for c in d["clips"] if c["start_frame"] <= sp["peak_frame"] <= c["end_frame"]]
                assert sp["clip"] == max(holding, key=lambda c: c["max_score"])["clip"]
                assert [t["question"] for t in sp["explanation"]["turns"]] == list(SCORING_QUESTIONS)
            heat = np.load(io.BytesIO(_get(client, f"b1-{per_call}/{r.key}/heatmap.npz")))["heatmap"]
            runs[per_call][r.key] = (d, heat)
    for key, (d4, h4) in runs[4].items():
        d1, h1 = runs[1][key]
        assert [sp["explanation"]["turns"] for sp in d4["spans"]] == [sp["explanation"]["turns"] for sp in d1["spans"]]
        # heatmap.npz is float16: equal up to its rounding
        np.testing.assert_allclose(h4.astype(np.float32), h1.astype(np.float32), atol=1e-3)
