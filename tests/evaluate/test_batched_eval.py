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
    """The baseline on two sets and the model on the holdout set, each in a spawned worker, give the
    same bits as the same jobs run in this process (what evaluate.baseline_process and
    evaluate.holdout_process switch)."""
    from tvau.evaluate.run import side_jobs

    sets = [(str(footage), "all", "all"), (str(footage), "validation", "validation")]

    def run(spawn: bool):
        ev = params.evaluate.model_copy(update={"baseline_process": spawn, "holdout_process": spawn})
        jobs = side_jobs(str(trained), sets, str(footage), params.model_copy(update={"evaluate": ev}), False)
        assert (jobs.pool is not None) == spawn
        return jobs.results()

    inline, spawned = run(False), run(True)
    (h_inline, d_inline), (h_spawned, d_spawned) = inline[0], spawned[0]
    assert [v.name for v in h_spawned] == [v.name for v in h_inline] and len(h_inline) == 4
    for a, b in zip(h_inline, h_spawned):
        assert np.array_equal(a.scores, b.scores) and np.array_equal(a.detections, b.detections)
        assert np.array_equal(a.pixels.pos_hist, b.pixels.pos_hist)
    assert [vars(d) for d in d_spawned] == [vars(d) for d in d_inline] and len(d_inline) == 4
    assert [len(s) for s in spawned[1:]] == [len(s) for s in inline[1:]] == [4, 2]
    for a_set, b_set in zip(inline[1:], spawned[1:]):
        for a, b in zip(a_set, b_set):
            assert a.name == b.name
            assert np.array_equal(a.scores, b.scores) and np.array_equal(a.detections, b.detections)
