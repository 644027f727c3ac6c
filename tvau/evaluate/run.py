"""`tvau evaluate` as a plain function: a trained model and the baseline on the same videos, every
metric with its bootstrap interval, per-kind AUC, the never-seen holdout set, tables and plots."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from tvau.baseline import BaselineScorer
from tvau.evaluate.frames import score_records, select_split
from tvau.evaluate.model import ModelScorer, read_references
from tvau.evaluate.report import assemble, per_video_rows, plot_curves, plot_overlays, video_kinds


def baseline_scores(data: str, split: str, metrics_cfg, progress: bool = False, desc: str = "",
                    threads: int = 0) -> list:
    """The baseline's per-video scores on `split` of `data` (a plain function: it runs in a spawned
    process beside the model, see run_evaluation). threads > 0 caps OpenCV's threads."""
    from tvau.data import open_dataset

    if threads:
        import cv2

        cv2.setNumThreads(threads)
    records = select_split(open_dataset(data, "ubnormal"), split)
    return score_records(records, BaselineScorer(metrics_cfg.baseline), metrics_cfg, progress,
                         desc=f"{desc} baseline", lines=True)


def model_scores(model, records, params, references: dict, progress: bool, desc: str):
    """(the model's per-video scores, its dialogue results, the scorer)."""
    import torch

    if params.evaluate.threads:
        torch.set_num_threads(params.evaluate.threads)
    scorer = ModelScorer(model, model.clip, params.evaluate.overlap, params.evaluate.dialogue_clips_per_video,
                         params.evaluate.max_new_tokens, references, batch=params.evaluate.batch)
    model_v = score_records(records, scorer, params.metrics, progress, desc=f"{desc} T-VAU", lines=True)
    return model_v, scorer.flush(), scorer


def holdout_model_scores(model_ref: str, holdout: str, params, start: int = 0, stop: int | None = None
                         ) -> tuple[list, list]:
    """The model's per-video scores and dialogues on videos [start, stop) of the holdout set (a plain
    function: it runs in a spawned process beside the validation half, see run_evaluation). Loads its
    own copy of the model. The videos go through it in the same order as in one process, and a piece
    that starts at a multiple of evaluate.batch videos has the same dialogue batches (one dialogue
    clip per video, answered `batch` videos at a time), so the pieces give the same bits as the whole
    (tests/evaluate/test_batched_eval.py)."""
    from tvau.data import open_dataset
    from tvau.model.trained import load_trained

    records = select_split(open_dataset(holdout, "ubnormal"), "all")[start:stop]
    model_v, dialogues, _ = model_scores(load_trained(model_ref, params), records, params, {}, False, "holdout")
    return model_v, dialogues


def holdout_pieces(videos: int, params) -> list[tuple[int, int]]:
    """[start, stop) video ranges of the holdout's model half: two, cut at a multiple of
    evaluate.batch videos (see holdout_model_scores), when it runs in worker processes and the
    dialogue batches allow it; one otherwise. As one piece, the 80-video holdout finished about 45 s
    after the validation half while a core idled; in two, the evaluation is about CPU-bound
    (212 -> 202 s in one A/B on 2 cores, the same bits)."""
    ev = params.evaluate
    b = max(1, ev.batch) * max(1, ev.dialogue_clips_per_video)
    cut = (videos // 2) // b * b if ev.dialogue_clips_per_video <= 1 else 0
    if not ev.holdout_process or cut <= 0 or cut >= videos:
        return [(0, videos)]
    return [(0, cut), (cut, videos)]


class SideJobs:
    """Evaluation jobs run beside the validation set's model half: the baseline on each evaluated set
    (evaluate.baseline_process) and the model on the holdout set (evaluate.holdout_process), in spawned
    worker processes (one per kind of job, so two cores both work), else here one after the other.
    Spawned, never forked: a fork beside Prefect's or MLflow's threads can deadlock, and a worker
    imports only what it needs. `results()` returns each job's result in submission order."""

    def __init__(self, jobs: list[tuple[bool, Callable, tuple]], progress: bool):
        """jobs: (in a worker?, function, arguments) each."""
        self.jobs, self.progress = jobs, progress
        self.pool = self.futures = None
        workers = sum(1 for spawn, _, _ in jobs if spawn)
        if workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(min(2, workers), mp_context=multiprocessing.get_context("spawn"))
            # Submitted now, run while the caller scores the validation set.
            self.futures = {i: self.pool.submit(fn, *args) for i, (spawn, fn, args) in enumerate(jobs) if spawn}

    def results(self) -> list:
        try:
            return [self.futures[i].result() if self.futures and i in self.futures else fn(*args)
                    for i, (_, fn, args) in enumerate(self.jobs)]
        finally:
            self.close()

    def close(self) -> None:
        if self.pool is not None:
            for f in self.futures.values():
                f.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def side_jobs(model_ref: str, sets: list[tuple[str, str, str]], holdout: str | None, params,
              progress: bool, pieces: list[tuple[int, int]] = ()) -> SideJobs:
    """The model on `holdout` in `pieces` (holdout_pieces()), then the baseline on each of `sets`
    ((data, split, label) each). results(): one (scores, dialogues) per piece, then one list of
    baseline scores per set."""
    ev = params.evaluate
    # One OpenCV thread in a baseline worker: the other core belongs to the model.
    jobs = [(ev.baseline_process, baseline_scores,
             (d, s, params.metrics, progress and not ev.baseline_process, desc, 1 if ev.baseline_process else 0))
            for d, s, desc in sets]
    if holdout is not None:
        # The holdout's model half goes first: it is the longest work.
        jobs[:0] = [(ev.holdout_process, holdout_model_scores, (model_ref, holdout, params, a, b))
                    for a, b in pieces]
    return SideJobs(jobs, progress)


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue().encode()


def run_evaluation(model_ref: str, data: str | Path, params, split: str | None = None, out_dir: str | Path | None = None,
                   metrics_path: str | Path | None = None, holdout: str | Path | None = None,
                   references: str | Path | None = "data/train/sft", progress: bool = True) -> dict:
    """Evaluate `model_ref` (trained-model directory or models:/ runs:/ URI) on `split` of the
    UBnormal-layout tree `data`. Writes `out_dir` (tables, dialogues, plots, index.html) and
    `metrics_path` (evaluate.json) when given; returns the evaluation dict."""
    from tvau.data import open_dataset
    from tvau.evaluate.frames import write_metrics_json
    from tvau.model.trained import load_trained
    from tvau.report import Section, write_html_report
    from tvau.storage import atomic_dir

    split = split or params.evaluate.split
    records = select_split(open_dataset(data, "ubnormal"), split)
    hold_records = select_split(open_dataset(holdout, "ubnormal"), "all") if holdout is not None else None
    model = load_trained(model_ref, params)
    refs = read_references(references)
    kinds = video_kinds(data)
    sets = [(str(data), split, split)] + ([(str(holdout), "all", "holdout")] if hold_records is not None else [])
    pieces = holdout_pieces(len(hold_records), params) if hold_records is not None else []
    side = side_jobs(str(model_ref), sets, str(holdout) if hold_records is not None else None, params, progress,
                     pieces=pieces)
    try:
        model_v, dialogues, scorer = model_scores(model, records, params, refs, progress, split)
        done = side.results()
    finally:
        side.close()
    h_model = [v for scores, _ in done[:len(pieces)] for v in scores]
    h_dial = [d for _, dials in done[:len(pieces)] for d in dials]
    base_sets = done[len(pieces):]
    base_v = base_sets[0]
    base = BaselineScorer(params.metrics.baseline)
    result = assemble(model_v, base_v, dialogues, kinds, params, split)
    result["model_ref"] = str(model_ref)
    if hold_records is not None:
        h = assemble(h_model, base_sets[1], h_dial, video_kinds(holdout), params, "all")
        seed = None
        try:
            seed = json.loads((Path(holdout) / "synth_manifest.json").read_text()).get("seed")
        except (OSError, json.JSONDecodeError):
            pass
        train_seed = None
        try:
            train_seed = json.loads((Path(data) / "synth_manifest.json").read_text()).get("seed")
        except (OSError, json.JSONDecodeError):
            pass
        if seed is not None and seed == train_seed and Path(holdout).resolve() != Path(data).resolve():
            raise ValueError(f"{holdout}: rendered with seed {seed}, the seed of {data}: not a never-seen set")
        result["holdout"] = {"videos": h["videos"], "frames": h["frames"], "seed": seed, "model": h["model"],
                             "baseline": h["baseline"], "majority_yes_no": h["majority_yes_no"],
                             "per_kind": h["per_kind"], "notes": h["notes"]}
    if out_dir is not None:
        split_of = {r.name: r.split for r in records}
        rows = per_video_rows(model_v, base_v, kinds, split_of)
        with atomic_dir(out_dir) as tmp:
            (tmp / "per_video.csv").write_bytes(_csv(rows))
            (tmp / "dialogues.jsonl").write_text("".join(json.dumps(vars(d)) + "\n" for d in dialogues))
            images = plot_curves(model_v, base_v, params.metrics, tmp)
            images += plot_overlays({r.name: r for r in records}, scorer, base, rows, params.evaluate.overlays, tmp)
            table = {k: (f"{v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" if v["low"] is not None else
                         ("n/a" if v["value"] is None else f"{v['value']:.3f}"))
                     for k, v in result["model"].items()}
            btable = {k: (f"{v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" if v["low"] is not None else "n/a")
                      for k, v in result["baseline"].items()}
            write_html_report(tmp / "index.html", f"Evaluation of {model_ref} on {split}", [
                Section("T-VAU (95% bootstrap interval over videos)", table=table),
                Section("Baseline, same videos", table=btable),
                Section("Curves and overlays", images=images),
            ])
    if metrics_path is not None:
        write_metrics_json(result, metrics_path)
    return result
