"""How much the cascade saves and what it costs in recall, measured on labelled footage.

For every clip of the split (cut exactly as nightly scoring cuts them), the vision tower + AHD give
the clip's heatmap maximum, and the language model answers the first question ("Is there any
anomaly in the video?") for EVERY clip, timed. A clip is anomalous when any of its frames is.

- answering everywhere: recall = share of anomalous clips the model answers "yes" for;
- cascade at level L: only clips whose heatmap maximum reaches L are asked; the others count as
  "no". Recall = share of anomalous clips both escalated and answered "yes";
- compute saved = 1 - (language-model time on escalated clips / on all clips).

The level is chosen on the validation split (never on test). With untrained adapters the answers
are noise and the numbers mean nothing; the measurement is one command (`python -m benchmarks
cascade`, TVAU_BENCH_MODEL=models:/tvau@champion) to rerun on the trained model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tvau.score.config import ScoreConfig
from tvau.score.media import iter_sampled_clips
from tvau.score.model import ClipModel, get_model


def is_yes(answer: str) -> bool:
    return answer.strip().lower().lstrip("\"'").startswith("yes")


def clip_table(model_uri: str, data_dir: str | Path, split: str = "validation", cfg: ScoreConfig | None = None,
               loader: Callable | None = None, params=None, max_new_tokens: int = 4) -> list[dict]:
    """One row per clip: video, clip, anomalous, heat_max, answer_yes, lm_s."""
    from tvau.data import open_dataset

    cfg = cfg or ScoreConfig()
    loaded = get_model(model_uri, params, loader)
    cm = ClipModel(loaded)
    question = cfg.questions[0]
    records = [r for r in open_dataset(data_dir, "ubnormal", load_tracks=False) if split in (r.split, "all")]
    if not records:
        raise ValueError(f"{data_dir}: no videos in split {split!r}")
    rows = []
    for rec in records:
        labels = np.asarray(rec.frame_labels, bool)
        for clip in iter_sampled_clips(rec.source, cfg, loaded.input_size, rec.fps):
            encs, heats = cm.heatmaps([clip.frames])
            t0 = time.perf_counter()
            turns = cm.ask(encs, [question], max_new_tokens)[0]
            rows.append({"video": rec.name, "clip": clip.index,
                         "anomalous": bool(labels[clip.source_frames].any()),
                         "heat_max": float(heats[0].max()), "answer_yes": is_yes(turns[0]["answer"]),
                         "lm_s": time.perf_counter() - t0})
    return rows


def cascade_figures(rows: Sequence[dict], level: float) -> dict:
    """Recall answering everywhere vs through the cascade at `level`, and the compute saved."""
    anom = [r for r in rows if r["anomalous"]]
    esc = [r["heat_max"] >= level for r in rows]
    lm_all = sum(r["lm_s"] for r in rows)
    lm_esc = sum(r["lm_s"] for r, e in zip(rows, esc, strict=True) if e)
    n_anom = len(anom)
    recall_all = sum(r["answer_yes"] for r in anom) / n_anom if n_anom else float("nan")
    recall_cascade = (sum(r["answer_yes"] and r["heat_max"] >= level for r in anom) / n_anom) if n_anom \
        else float("nan")
    heat_recall = sum(r["heat_max"] >= level for r in anom) / n_anom if n_anom else float("nan")
    return {"level": level, "clips": len(rows), "anomalous_clips": n_anom, "escalated": int(sum(esc)),
            "anomalous_escalated": heat_recall,
            "recall_everywhere": recall_all, "recall_cascade": recall_cascade,
            "recall_drop_points": 100 * (recall_all - recall_cascade),
            "compute_saved": 1 - lm_esc / lm_all if lm_all else 0.0,
            "clips_saved": 1 - sum(esc) / len(rows) if rows else 0.0}
