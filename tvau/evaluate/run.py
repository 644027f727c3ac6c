"""`tvau evaluate` as a plain function: a trained model and the baseline on the same videos, every
metric with its bootstrap interval, per-kind AUC, the never-seen holdout set, tables and plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tvau.evaluate.frames import score_records, select_split
from tvau.evaluate.model import ModelScorer, read_references
from tvau.evaluate.report import assemble, per_video_rows, plot_curves, plot_overlays, video_kinds


def score_set(model, records, params, references: dict, progress: bool, desc: str):
    """(model per-video scores, baseline per-video scores, dialogue results, the model scorer)."""
    import torch

    from tvau.baseline import BaselineScorer

    if params.evaluate.threads:
        torch.set_num_threads(params.evaluate.threads)
    scorer = ModelScorer(model, model.clip, params.evaluate.overlap, params.evaluate.dialogue_clips_per_video,
                         params.evaluate.max_new_tokens, references)
    model_v = score_records(records, scorer, params.metrics, progress, desc=f"{desc} T-VAU", lines=True)
    base = BaselineScorer(params.metrics.baseline)
    base_v = score_records(records, base, params.metrics, progress, desc=f"{desc} baseline", lines=True)
    return model_v, base_v, scorer.dialogues, scorer, base


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
    model_v, base_v, dialogues, scorer, base = score_set(model, records, params, refs, progress, split)
    result = assemble(model_v, base_v, dialogues, kinds, params, split)
    result["model_ref"] = str(model_ref)
    if hold_records is not None:
        h_model, h_base, h_dial, _, _ = score_set(model, hold_records, params, {}, progress, "holdout")
        h = assemble(h_model, h_base, h_dial, video_kinds(holdout), params, "all")
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
