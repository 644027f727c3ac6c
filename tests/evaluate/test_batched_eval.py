"""The batched evaluator gives the one-clip-at-a-time numbers: several clips per vision call and the
dialogues of several videos per LM batch (tiny trained model), and the baseline scored in a spawned
process equals the baseline scored in this one."""

from __future__ import annotations

import numpy as np


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


def test_side_jobs_in_spawned_processes_equal_inline(params, trained, footage):
    """The baseline on two sets and the model on the holdout set, in spawned workers, give the same
    bits as the same jobs run in this process (what evaluate.baseline_process and
    evaluate.holdout_process switch); the holdout's model half, cut into two pieces at a multiple of
    evaluate.batch videos, gives the bits of one unbroken pass in this process."""
    from tvau.data import open_dataset
    from tvau.evaluate.frames import select_split
    from tvau.evaluate.run import holdout_pieces, model_scores, side_jobs
    from tvau.model.trained import load_trained

    sets = [(str(footage), "all", "all"), (str(footage), "validation", "validation")]
    records = select_split(open_dataset(footage), "all")

    def run(spawn: bool):
        ev = params.evaluate.model_copy(update={"baseline_process": spawn, "holdout_process": spawn, "batch": 2})
        p = params.model_copy(update={"evaluate": ev})
        assert holdout_pieces(len(records), p) == ([(0, 2), (2, 4)] if spawn else [(0, 4)])
        jobs = side_jobs(str(trained), sets, str(footage), p, False, pieces=holdout_pieces(len(records), p))
        assert (jobs.pool is not None) == spawn
        out = jobs.results()
        pieces = 2 if spawn else 1
        return ([v for sc, _ in out[:pieces] for v in sc], [d for _, ds in out[:pieces] for d in ds]), out[pieces:]

    (h_inline, d_inline), b_inline = run(False)
    (h_spawned, d_spawned), b_spawned = run(True)
    p2 = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"batch": 2})})
    h_whole, d_whole, _ = model_scores(load_trained(trained, p2), records, p2, {}, False, "holdout")
    assert [v.name for v in h_spawned] == [v.name for v in h_inline] == [v.name for v in h_whole]
    assert len(h_whole) == 4
    for a, b in [(h_whole, h_inline), (h_whole, h_spawned)]:
        for x, y in zip(a, b):
            assert np.array_equal(x.scores, y.scores) and np.array_equal(x.detections, y.detections)
            assert np.array_equal(x.pixels.pos_hist, y.pixels.pos_hist)
    assert [vars(d) for d in d_spawned] == [vars(d) for d in d_inline] == [vars(d) for d in d_whole]
    assert len(d_whole) == 4
    assert [len(s) for s in b_spawned] == [len(s) for s in b_inline] == [4, 2]
    for a_set, b_set in zip(b_inline, b_spawned):
        for a, b in zip(a_set, b_set):
            assert a.name == b.name
            assert np.array_equal(a.scores, b.scores) and np.array_equal(a.detections, b.detections)
