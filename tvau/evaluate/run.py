"""`tvau evaluate` as a plain function: a trained model and the baseline on the same videos, every
metric with its bootstrap interval, per-kind AUC, the never-seen holdout set, tables and plots."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from tvau.baseline import BaselineScorer
from tvau.evaluate.calibration import PeakTee, calibrate
from tvau.evaluate.frames import score_records_with_baseline, select_split
from tvau.evaluate.model import ModelScorer, dialogue_clips, videos_per_dialogue_batch
from tvau.evaluate.references import references_for
from tvau.evaluate.report import (
    METRICS,
    assemble,
    interval_text,
    per_video_rows,
    plot_curves,
    plot_overlays,
    video_kinds,
    word_rows,
)


def model_scores(model, records, params, references: dict, progress: bool, desc: str):
    """(the model's per-video scores, the baseline's on the same videos from the same pass, the
    model's dialogue results, the scorer, each video's (name, fps, frame peaks) for the calibration)."""
    import torch

    ev = params.evaluate
    if ev.threads:
        torch.set_num_threads(ev.threads)
    scorer = ModelScorer(model, model.clip, ev.overlap, ev.dialogue_clips_per_video, ev.max_new_tokens, references,
                         batch=ev.batch, heatmap_stride=ev.heatmap_stride)
    tee = PeakTee(scorer)
    model_v, base_v = score_records_with_baseline(records, tee, params.metrics, progress, desc=desc, lines=True)
    return model_v, base_v, scorer.flush(), scorer, tee.recorded()


def piece_scores(model_ref: str, data: str, split: str, start: int, stop: int, params, references: dict | None,
                 desc: str) -> tuple[list, list, list, list]:
    """model_scores on videos [start, stop) of `split` of `data`, with its own copy of the model (a
    plain function: it runs in a spawned worker, see run_evaluation). The videos go through it in
    the order and batches of one pass, so a piece that starts at a multiple of the videos of one
    dialogue batch (plan_pieces) gives the same bits as that stretch of the whole
    (tests/evaluate/test_batched_eval.py)."""
    import cv2

    from tvau.data import open_dataset
    from tvau.model.trained import load_trained

    cv2.setNumThreads(1)  # the other cores belong to the other processes
    records = select_split(open_dataset(data, "ubnormal"), split)[start:stop]
    model_v, base_v, dialogues, _, peaks = model_scores(load_trained(model_ref, params), records, params,
                                                        references or {}, False, f"{desc} [{start}:{stop}]")
    return model_v, base_v, dialogues, peaks


def plan_pieces(sizes: list[int], params) -> list[tuple[int, int, int]]:
    """(set index, start, stop) pieces covering sets of `sizes` videos, in order. With workers, each
    set is cut into pieces of about total / (workers + 1) videos, rounded up to a multiple of the
    videos whose dialogues are answered in one batch (evaluate.batch // dialogue_clips_per_video:
    the dialogue batches stay those of one pass); the first piece is scored in this process, the
    rest by the workers. One piece per set without workers."""
    ev = params.evaluate
    if ev.workers <= 0:
        return [(i, 0, n) for i, n in enumerate(sizes) if n]
    b = videos_per_dialogue_batch(ev.batch, ev.dialogue_clips_per_video)
    size = -(-sum(sizes) // (ev.workers + 1))
    size = max(b, -(-size // b) * b)
    return [(i, a, min(a + size, n)) for i, n in enumerate(sizes) for a in range(0, n, size)]


class WorkerJobs:
    """Evaluation pieces scored in `workers` spawned processes while the caller scores its own
    piece; with no workers, here, one after the other, when results() is asked for. Spawned, never
    forked: a fork beside Prefect's or MLflow's threads can deadlock, and a worker imports only what
    it needs. results() returns each job's result in submission order."""

    def __init__(self, jobs: list[tuple[Callable, tuple]], workers: int):
        self.jobs, self.pool, self.futures = jobs, None, []
        if jobs and workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"))
            self.futures = [self.pool.submit(fn, *args) for fn, args in jobs]  # they run from now on

    def results(self) -> list:
        try:
            if self.pool is None:
                return [fn(*args) for fn, args in self.jobs]
            return [f.result() for f in self.futures]
        finally:
            self.close()

    def close(self) -> None:
        if self.pool is not None:
            for f in self.futures:
                f.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue().encode()


def _synth_seed(tree: str | Path) -> int | None:
    """The generator seed a synthetic tree was rendered with (synth_manifest.json), else None."""
    try:
        return json.loads((Path(tree) / "synth_manifest.json").read_text()).get("seed")
    except (OSError, json.JSONDecodeError):
        return None


def _check_never_seen(holdout: str | Path, data: str | Path) -> int | None:
    """The holdout tree's seed; ValueError when it is the evaluated tree's seed (the same footage)."""
    seed = _synth_seed(holdout)
    if seed is not None and seed == _synth_seed(data) and Path(holdout).resolve() != Path(data).resolve():
        raise ValueError(f"{holdout}: rendered with seed {seed}, the seed of {data}: not a never-seen set")
    return seed


def _score_sets(model_ref, model, sets: list, refs: dict, params, progress: bool) -> tuple[list[tuple], object]:
    """Per evaluated set: (model scores, baseline scores, dialogues, peaks), and the first piece's
    scorer (for the overlays). The sets are cut into pieces (plan_pieces); the first is scored here,
    the rest by evaluate.workers worker processes at the same time."""
    pieces = plan_pieces([len(recs) for _, _, _, recs in sets], params)
    jobs = [(piece_scores, (str(model_ref), sets[i][0], sets[i][1], a, b, params, refs, sets[i][2]))
            for i, a, b in pieces[1:]]
    side = WorkerJobs(jobs, params.evaluate.workers)
    try:
        # The first piece is the start of the evaluated split (plan_pieces keeps the order).
        model_v, base_v, dialogues, scorer, peaks = model_scores(model, sets[0][3][:pieces[0][2]], params, refs,
                                                                 progress, sets[0][1])
        done = [(model_v, base_v, dialogues, peaks)] + side.results()
    finally:
        side.close()
    per_set = [([], [], [], []) for _ in sets]
    for (i, _, _), parts in zip(pieces, done):
        for acc, part in zip(per_set[i], parts):
            acc.extend(part)
    return per_set, scorer


def _interval_cells(block: dict, keys=None) -> dict[str, str]:
    """interval_text per metric of an evaluate.json block ('n/a' without a value)."""
    return {k: interval_text(v) or "n/a" for k, v in block.items() if keys is None or k in keys}


def _write_outputs(out_dir, result: dict, scored: tuple, records: list, scorer, kinds: dict, params) -> None:
    """The evaluation directory: per-video table, dialogues, curves, overlays and index.html."""
    from tvau.report import Section, write_html_report
    from tvau.storage import atomic_dir

    model_v, base_v, dialogues, _ = scored
    rows = per_video_rows(model_v, base_v, kinds, {r.name: r.split for r in records})
    with atomic_dir(out_dir) as tmp:
        (tmp / "per_video.csv").write_bytes(_csv(rows))
        (tmp / "dialogues.jsonl").write_text("".join(json.dumps(vars(d)) + "\n" for d in dialogues))
        images = plot_curves(model_v, base_v, params.metrics, tmp)
        images += plot_overlays({r.name: r for r in records}, scorer, BaselineScorer(params.metrics.baseline), rows,
                                params.evaluate.overlays, tmp)
        write_html_report(tmp / "index.html", f"Evaluation of {result['model_ref']} on {result['split']}", [
            Section("T-VAU (95% bootstrap interval over videos)", table=_interval_cells(result["model"], METRICS)),
            Section("Baseline, same videos", table=_interval_cells(result["baseline"])),
            Section("What the answers state (fields of the reference, collapse, said yes)",
                    rows=word_rows(result["model"], (result.get("holdout") or {}).get("model"), result["details"]),
                    text="Field accuracy counts a clip answered no, or answered with no readable field, "
                         "as wrong in every field (tvau/evaluate/words.py); a field accuracy means "
                         "something only above what a constant answer scores on the same clips."),
            Section("Curves and overlays", images=images),
        ])


def run_evaluation(model_ref: str, data: str | Path, params, split: str | None = None, out_dir: str | Path | None = None,
                   metrics_path: str | Path | None = None, holdout: str | Path | None = None,
                   references: str | Path | None = "data/train/sft", progress: bool = True,
                   calibration_out: str | Path | None = None) -> dict:
    """Evaluate `model_ref` (a trained-model directory; `tvau evaluate` downloads a models:/ or
    runs:/ URI first) on `split` of the UBnormal-layout tree `data`, and on the never-seen tree
    `holdout` when given. The dialogue references come from the SFT records in `references` of the
    same footage, else from each set's own annotations (tvau/evaluate/references.py). Writes
    `out_dir` (tables, dialogues, plots, index.html) and `metrics_path` (evaluate.json) when given;
    returns the evaluation dict. Its `calibration` block (tvau/evaluate/calibration.py) is also
    written to `calibration_out` when given."""
    from tvau.data import open_dataset
    from tvau.evaluate.frames import write_metrics_json
    from tvau.model.trained import load_trained

    split = split or params.evaluate.split
    holdout_seed = _check_never_seen(holdout, data) if holdout is not None else None
    records = select_split(open_dataset(data, "ubnormal"), split)
    model = load_trained(model_ref, params)
    # The evaluated sets: (data, split, label, records). Their references are keyed by footage digest,
    # so one dict serves both sets (tvau/evaluate/references.py).
    sets = [(str(data), split, split, records)]
    if holdout is not None:
        sets.append((str(holdout), "all", "holdout", select_split(open_dataset(holdout, "ubnormal"), "all")))
    k = params.evaluate.dialogue_clips_per_video
    refs: dict = {}
    for set_data, _, _, recs in sets:
        starts = {r.name: dialogue_clips(r, model.clip, k) for r in recs} if k else {}
        refs |= references_for(recs, set_data, references, starts, model.clip, params, progress)
    per_set, scorer = _score_sets(model_ref, model, sets, refs, params, progress)
    kinds = video_kinds(data)
    result = assemble(*per_set[0][:3], kinds, params, split)
    result["model_ref"] = str(model_ref)
    result["calibration"] = calibrate(per_set[0][3], {r.name: r.frame_labels for r in records}, params, model.clip,
                                      split)
    if holdout is not None:
        h = assemble(*per_set[1][:3], video_kinds(holdout), params, "all")
        result["holdout"] = {"videos": h["videos"], "frames": h["frames"], "seed": holdout_seed, "model": h["model"],
                             "baseline": h["baseline"], "majority_yes_no": h["majority_yes_no"],
                             "per_kind": h["per_kind"], "notes": h["notes"],
                             "details": {k: h["details"][k] for k in ("field_majority", "field_majority_answered")}}
    if out_dir is not None:
        _write_outputs(out_dir, result, per_set[0], records, scorer, kinds, params)
    if metrics_path is not None:
        write_metrics_json(result, metrics_path)
    if calibration_out is not None:
        write_metrics_json(result["calibration"], calibration_out)
    return result
