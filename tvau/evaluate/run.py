"""`tvau evaluate` as a plain function: a trained model and the baseline on the same videos, every
metric with its bootstrap interval, per-kind AUC, the never-seen holdout set, tables and plots."""

from __future__ import annotations

import csv
import io
import json
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


class BaselineJobs:
    """The baseline's scores of each evaluated set: computed in one spawned worker process while the
    model is scored here (evaluate.baseline_process), else here afterwards. Spawned, never forked: a
    fork beside Prefect's or MLflow's threads can deadlock, and the worker imports only what it needs."""

    def __init__(self, jobs: list[tuple[str, str, str]], params, progress: bool):
        self.jobs, self.params, self.progress = jobs, params, progress
        self.pool = self.futures = None
        if params.evaluate.baseline_process:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            # One worker thread for OpenCV there: this process keeps the other core for the model.
            self.futures = [self.pool.submit(baseline_scores, d, s, params.metrics, False, desc, 1)
                            for d, s, desc in jobs]

    def results(self) -> list[list]:
        if self.pool is None:
            return [baseline_scores(d, s, self.params.metrics, self.progress, desc) for d, s, desc in self.jobs]
        try:
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
    jobs = [(str(data), split, split)] + ([(str(holdout), "all", "holdout")] if hold_records is not None else [])
    baseline = BaselineJobs(jobs, params, progress)
    try:
        model_v, dialogues, scorer = model_scores(model, records, params, refs, progress, split)
        if hold_records is not None:
            h_model, h_dial, _ = model_scores(model, hold_records, params, {}, progress, "holdout")
        base_sets = baseline.results()
    finally:
        baseline.close()
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
