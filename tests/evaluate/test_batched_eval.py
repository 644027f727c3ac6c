"""The batched evaluator gives the one-clip-at-a-time numbers: several clips per vision call and the
dialogues of several videos per LM batch (tiny trained model), pieces scored in spawned workers
equal one pass, and non-overlapping heatmap clips equal overlapping ones."""

from __future__ import annotations

import numpy as np
import pytest


def _score(model, records, params, batch: int):
    from tvau.evaluate.frames import score_records
    from tvau.evaluate.model import ModelScorer

    scorer = ModelScorer(model, model.clip, dialogue_per_video=2, max_new_tokens=6, batch=batch)
    videos = score_records(records, scorer, params.metrics, False)
    return videos, scorer.flush()


def test_batched_model_scorer_equals_one_clip_at_a_time(params, trained, footage):
    from tvau.data import open_dataset
    from tvau.evaluate.frames import select_split
    from tvau.model.trained import load_trained

    records = select_split(open_dataset(footage), "all")
    model = load_trained(trained, params)
    one, d_one = _score(model, records, params, batch=1)
    for batch in (2, 5):  # 2: a video's clips split over calls; 5: dialogues of several videos together
        many, d_many = _score(model, records, params, batch=batch)
        assert [v.name for v in many] == [v.name for v in one]
        for a, b in zip(one, many):
            np.testing.assert_allclose(b.scores, a.scores, rtol=0, atol=1e-5)
            assert np.abs(b.pixels.pos_hist - a.pixels.pos_hist).sum() <= 2 * 10  # a few pixels may change bin
            assert np.array_equal(b.labels, a.labels)
        assert [vars(d) for d in d_many] == [vars(d) for d in d_one]
    assert len(d_one) == 2 * len(records) and any(d.truth for d in d_one) and any(d.target for d in d_one)


def test_pieces_in_spawned_workers_equal_one_pass(params, trained, footage):
    """plan_pieces + piece_scores (evaluate.workers): the sets cut into pieces at a multiple of
    evaluate.batch videos, scored in spawned workers, give the bits of the same pieces scored here
    and of one unbroken pass (model, baseline from the same pass, dialogues)."""
    from tvau.baseline import BaselineScorer
    from tvau.data import open_dataset
    from tvau.evaluate.frames import score_records, select_split
    from tvau.evaluate.run import WorkerJobs, model_scores, piece_scores, plan_pieces
    from tvau.model.trained import load_trained

    records = select_split(open_dataset(footage), "all")
    sizes = [len(records), len(records)]  # the footage twice: as the evaluated split and as a holdout

    def run(workers: int):
        ev = params.evaluate.model_copy(update={"workers": workers, "batch": 2})
        p = params.model_copy(update={"evaluate": ev})
        pieces = plan_pieces(sizes, p)
        assert pieces == [(0, 0, 4), (1, 0, 4)]  # workers 2: 8 videos / 3, rounded up to a multiple of 2
        p3 = p.model_copy(update={"evaluate": ev.model_copy(update={"workers": 3})})
        assert plan_pieces(sizes, p3) == [(0, 0, 2), (0, 2, 4), (1, 0, 2), (1, 2, 4)]
        jobs = WorkerJobs([(piece_scores, (str(trained), str(footage), "all", a, b, p3, None, "t"))
                           for _, a, b in plan_pieces(sizes, p3)], workers)
        assert (jobs.pool is not None) == (workers > 0)
        out = jobs.results()
        return [v for m, _, _, _ in out for v in m], [v for _, b, _, _ in out for v in b], [d for _, _, ds, _ in out for d in ds]

    m_in, b_in, d_in = run(0)
    m_sp, b_sp, d_sp = run(2)
    p2 = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"batch": 2})})
    m_whole, b_whole, d_whole, _, _ = model_scores(load_trained(trained, p2), records + records, p2, {}, False, "x")
    assert len(m_whole) == len(b_whole) == len(d_whole) == 8
    for got in ((m_in, b_in), (m_sp, b_sp)):
        for a_set, b_set in zip((m_whole, b_whole), got):
            assert [v.name for v in a_set] == [v.name for v in b_set]
            for x, y in zip(a_set, b_set):
                assert np.array_equal(x.scores, y.scores) and np.array_equal(x.detections, y.detections)
                assert np.array_equal(x.pixels.pos_hist, y.pixels.pos_hist)
    assert [vars(d) for d in d_sp] == [vars(d) for d in d_in] == [vars(d) for d in d_whole]
    # The baseline measured in the model's pass is the baseline measured on its own.
    alone = score_records(records, BaselineScorer(params.metrics.baseline), params.metrics, False)
    for x, y in zip(alone, b_whole[:4]):
        assert np.array_equal(x.scores, y.scores) and np.array_equal(x.detections, y.detections)
        assert np.array_equal(x.pixels.pos_hist, y.pixels.pos_hist)


def test_non_overlapping_heatmap_clips_give_the_overlapping_heatmaps_and_the_same_dialogues(params, trained, footage):
    """evaluate.heatmap_stride: a frame pair's heatmap does not depend on the clip it is cut from
    (the vision tower attends within each temporal patch), so clips at stride num_frames give the
    heatmaps of clips at half that stride, at half the vision passes; the dialogue clips stay on the
    clip-stride grid. A stride that breaks the frame pairs (odd) does change them: the check can fail."""
    from tvau.data import open_dataset
    from tvau.evaluate.frames import select_split
    from tvau.evaluate.model import ModelScorer
    from tvau.model.trained import load_trained

    records = select_split(open_dataset(footage), "all")
    model = load_trained(trained, params)
    model.ahd.logit_scale = 1.0  # the 4-step model's heat saturates at x100; unsaturated, it shows the input
    L = model.clip.num_frames
    overlapping = model.clip.model_copy(update={"stride": L // 2})

    def run(stride: int):
        scorer = ModelScorer(model, overlapping, dialogue_per_video=1, max_new_tokens=6, batch=3, heatmap_stride=stride)
        calls = []
        encode = model.encode_batch
        model.encode_batch = lambda frames: calls.append(len(frames)) or encode(frames)
        try:
            heats = [np.stack(list(scorer(r))) for r in records]
        finally:
            del model.encode_batch
        return heats, scorer.flush(), sum(calls)

    ref, d_ref, clips_ref = run(L // 2)  # the clip stride of `overlapping`
    fast, d_fast, clips_fast = run(L)
    assert clips_fast < clips_ref
    assert min(h.std() for h in ref) > 1e-3  # heatmaps that vary, so equality says something
    for a, b in zip(ref, fast):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    assert [vars(d) for d in d_fast] == [vars(d) for d in d_ref] and len(d_ref) == len(records)
    odd, _, _ = run(L // 2 + 1)  # clips that start on odd frames pair the frames differently
    assert max(np.abs(a - b).max() for a, b in zip(ref, odd)) > 1e-3


@pytest.mark.parametrize("clips_per_video", [2, 3])
def test_several_dialogue_clips_per_video_still_split_into_pieces_of_one_pass(params, trained, footage,
                                                                              clips_per_video):
    """evaluate.dialogue_clips_per_video > 1 keeps the workers: a dialogue batch holds whole videos
    (batch // clips per video of them; before, with batch 4 and 3 clips per video, a batch of 4 clips
    straddled videos 1 and 2), the pieces are cut at multiples of that, and the pieces give the
    dialogues and scores of one unbroken pass."""
    from tvau.data import open_dataset
    from tvau.evaluate.frames import select_split
    from tvau.evaluate.model import dialogue_clips
    from tvau.evaluate.run import model_scores, piece_scores, plan_pieces
    from tvau.model.trained import load_trained

    records = select_split(open_dataset(footage), "all")
    assert all(len(dialogue_clips(r, params.clip, clips_per_video)) == clips_per_video for r in records)
    ev = params.evaluate.model_copy(update={"batch": 4, "dialogue_clips_per_video": clips_per_video, "workers": 3})
    p = params.model_copy(update={"evaluate": ev})
    pieces = plan_pieces([len(records)], p)
    per_batch = 4 // clips_per_video  # 2 videos (4 clips) or 1 video (3 clips) per dialogue batch
    assert pieces == [(0, a, a + per_batch) for a in range(0, len(records), per_batch)]
    out = [piece_scores(str(trained), str(footage), "all", a, b, p, None, "t") for _, a, b in pieces]
    model = load_trained(trained, p)
    asked: list[int] = []  # clips per dialogue batch of the whole pass
    dialogue_batch = model.dialogue_batch

    def counting(clips, questions, **kw):
        asked.append(len(clips))
        return dialogue_batch(clips, questions, **kw)

    model.dialogue_batch = counting
    m_whole, _, d_whole, _, _ = model_scores(model, records, p, {}, False, "x")
    assert asked == [per_batch * clips_per_video] * (len(records) // per_batch)
    assert len(d_whole) == clips_per_video * len(records)
    assert [vars(d) for _, _, ds, _ in out for d in ds] == [vars(d) for d in d_whole]
    for x, y in zip(m_whole, [v for m, _, _, _ in out for v in m]):
        assert x.name == y.name and np.array_equal(x.scores, y.scores)
