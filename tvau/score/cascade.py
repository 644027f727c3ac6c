"""What the cascade saves and what it costs, measured on labelled footage.

Every clip of the split is cut exactly as nightly scoring cuts it and goes through the same batched
calls (`ClipModel`, `clips_per_call` clips per call): the vision tower + AHD give the clip's heatmap
maximum, and the language model holds the scoring dialogue (every question of the trained dialogue,
tvau.score.explain.SCORING_QUESTIONS,
`score.max_new_tokens`) with EVERY clip, timed, so that "answering everywhere" is measured, not
assumed. A clip is anomalous when any of its frames is in the ground truth (the frame labels that
the synthetic renderer derives from its anomaly masks). At level L a clip is escalated when its
heatmap maximum reaches L.

Measurable with any model:
- escalation rate: escalated clips / clips;
- heatmap recall: anomalous clips escalated / anomalous clips (the cascade's ceiling: a clip that
  is not escalated is never answered), and the anomalous share of the escalated clips;
- compute saved: 1 - time of (vision on every clip + dialogue on escalated clips) / time of
  (vision + dialogue on every clip), and the language model's share alone;
- the dialogue's yes-rate (first answer starts with "yes") on anomalous and on normal clips.
- a bound on the recall drop that holds for ANY dialogue: an anomalous clip the cascade loses is
  one the heatmap did not escalate, so drop <= 100 * (1 - heatmap recall) points. `bound_level`
  is the highest level whose bound stays within the issue's 2 points on this split (the level to
  put in params.yaml, chosen on validation).

Measurable only when the model says "yes" to some anomalous clip: recall answering everywhere
(anomalous clips answered "yes") vs through the cascade (escalated AND "yes"), and the drop in
points (issue target: <= 2). Otherwise those figures are None and `recall_measurable` is False.

Intervals: percentile bootstrap over videos (tvau.evaluate.bootstrap), videos being what was
sampled. The level is chosen on the validation split, never on test. Rerun on any model with
`python -m benchmarks cascade --model models:/tvau@champion` (or a trained-model directory).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tvau.score.config import ScoreConfig
from tvau.score.explain import SCORING_QUESTIONS
from tvau.score.media import iter_sampled_clips
from tvau.score.model import ClipModel, get_model


def is_yes(answer: str) -> bool:
    """The answer's first word is "yes" (quotes and punctuation around it ignored)."""
    return re.match(r"\W*yes\b", answer.lower()) is not None


def clip_table(model_uri: str, data_dir: str | Path, split: str = "validation", cfg: ScoreConfig | None = None,
               loader: Callable | None = None, params=None) -> list[dict]:
    """One row per clip: video, clip, anomalous, heat_max, answer (first turn), answer_yes,
    vision_s and lm_s (each call's time shared equally by the clips in it)."""
    from tvau.data import open_dataset

    cfg = cfg or ScoreConfig()
    loaded = get_model(model_uri, params, loader)
    cm = ClipModel(loaded, cfg.clips_per_call)
    records = [r for r in open_dataset(data_dir, "ubnormal", load_tracks=False) if split in (r.split, "all")]
    if not records:
        raise ValueError(f"{data_dir}: no videos in split {split!r}")
    rows = []

    def run(rec, labels, group) -> None:
        t0 = time.perf_counter()
        encs, heats = cm.heatmaps([c.frames for c in group])
        t1 = time.perf_counter()
        dialogues = cm.ask(encs, SCORING_QUESTIONS, cfg.max_new_tokens)  # answering everywhere
        t2 = time.perf_counter()
        for c, h, turns in zip(group, heats, dialogues, strict=True):
            rows.append({"video": rec.name, "clip": c.index, "anomalous": bool(labels[c.source_frames].any()),
                         "heat_max": float(h.max()), "answer": turns[0]["answer"],
                         "answer_yes": is_yes(turns[0]["answer"]),
                         "vision_s": (t1 - t0) / len(group), "lm_s": (t2 - t1) / len(group)})

    for rec in records:
        labels = np.asarray(rec.frame_labels, bool)
        group: list = []
        for clip in iter_sampled_clips(rec.source, cfg, loaded.input_size, rec.fps):
            group.append(clip)
            if len(group) == cfg.clips_per_call:
                run(rec, labels, group)
                group = []
        if group:
            run(rec, labels, group)
    return rows


def bound_level(rows: Sequence[dict], max_drop_points: float = 2.0) -> float | None:
    """The highest level at which at least (100 - max_drop_points)% of the anomalous clips are
    escalated (so the cascade loses at most max_drop_points of recall, whatever the dialogue
    answers); None without anomalous clips."""
    heat = np.sort([r["heat_max"] for r in rows if r["anomalous"]])[::-1]
    if not len(heat):
        return None
    need = int(np.ceil(len(heat) * (1 - max_drop_points / 100) - 1e-9))  # clips that must reach the level
    return float(heat[max(need, 1) - 1])


def _share(num: np.ndarray, den: np.ndarray) -> float | None:
    d = den.sum()
    return float(num.sum() / d) if d else None


def cascade_figures(rows: Sequence[dict], level: float, n_boot: int = 1000, seed: int = 0) -> dict:
    """The figures of the module docstring at `level`, each with a 95% bootstrap interval over videos."""
    from tvau.evaluate.bootstrap import interval, resamples

    videos = sorted({r["video"] for r in rows})
    per = {v: [r for r in rows if r["video"] == v] for v in videos}

    def counts(pred: Callable[[dict], bool]) -> np.ndarray:
        return np.asarray([sum(bool(pred(r)) for r in per[v]) for v in videos], np.float64)

    def times(key: str, pred: Callable[[dict], bool] = lambda r: True) -> np.ndarray:
        return np.asarray([sum(r[key] for r in per[v] if pred(r)) for v in videos], np.float64)

    esc = lambda r: r["heat_max"] >= level
    c = {
        "clips": counts(lambda r: True), "anom": counts(lambda r: r["anomalous"]),
        "normal": counts(lambda r: not r["anomalous"]), "esc": counts(esc),
        "anom_esc": counts(lambda r: r["anomalous"] and esc(r)),
        "yes": counts(lambda r: r["answer_yes"]),
        "anom_yes": counts(lambda r: r["anomalous"] and r["answer_yes"]),
        "normal_yes": counts(lambda r: not r["anomalous"] and r["answer_yes"]),
        "anom_yes_esc": counts(lambda r: r["anomalous"] and r["answer_yes"] and esc(r)),
        "vision": times("vision_s"), "lm": times("lm_s"), "lm_esc": times("lm_s", esc),
    }

    def share_of(num: str, den: str) -> Callable[[np.ndarray], float | None]:
        return lambda i: _share(c[num][i], c[den][i])

    f_escalation = share_of("esc", "clips")
    f_heat_recall = share_of("anom_esc", "anom")  # anomalous clips escalated / anomalous clips
    f_esc_precision = share_of("anom_esc", "esc")
    f_yes = share_of("yes", "clips")
    f_yes_anom = share_of("anom_yes", "anom")
    f_yes_normal = share_of("normal_yes", "normal")
    f_recall_all = f_yes_anom  # the dialogue's recall when asked everywhere is its yes-rate on anomalous clips
    f_recall_cascade = share_of("anom_yes_esc", "anom")  # asked only where escalated

    def f_saved(i):
        total = c["vision"][i].sum() + c["lm"][i].sum()
        return 1 - (c["vision"][i].sum() + c["lm_esc"][i].sum()) / total if total else None

    def f_lm_saved(i):
        lm = c["lm"][i].sum()
        return 1 - c["lm_esc"][i].sum() / lm if lm else None

    def f_bound(i):
        r = f_heat_recall(i)
        return None if r is None else 100 * (1 - r)

    def f_drop(i):
        a, b = f_recall_all(i), f_recall_cascade(i)
        return None if a is None else 100 * (a - b)

    everything = np.arange(len(videos))
    draws = resamples(len(videos), n_boot, seed) if videos else np.zeros((0, 0), int)
    measurable = bool(c["anom_yes"].sum() > 0)

    def per_draw(f):
        # tvau.evaluate.bootstrap's Stat contract: (resamples, videos) draws -> one value per
        # resample (NaN where undefined). The figures here are cheap sums, so one call per resample.
        return lambda d: np.array([np.nan if (v := f(row)) is None else v for row in np.atleast_2d(d)], np.float64)

    def fig(f, only_if: bool = True) -> dict:
        return interval(f(everything) if only_if else None, per_draw(f), draws).as_dict()

    return {
        "level": level, "videos": len(videos), "clips": int(c["clips"].sum()),
        "anomalous_clips": int(c["anom"].sum()), "escalated_clips": int(c["esc"].sum()),
        "escalation_rate": fig(f_escalation),
        "heatmap_recall": fig(f_heat_recall),  # anomalous clips escalated / anomalous clips
        "escalated_anomalous_share": fig(f_esc_precision),
        "recall_drop_bound_points": fig(f_bound),  # holds for any dialogue
        "compute_saved": fig(f_saved),  # vision + dialogue
        "lm_compute_saved": fig(f_lm_saved),  # dialogue alone
        "yes_rate": fig(f_yes), "yes_rate_anomalous": fig(f_yes_anom), "yes_rate_normal": fig(f_yes_normal),
        "recall_measurable": measurable,
        "recall_everywhere": fig(f_recall_all, measurable),
        "recall_cascade": fig(f_recall_cascade, measurable),
        "recall_drop_points": fig(f_drop, measurable),
    }
