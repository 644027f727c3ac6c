"""The cascade on the synthetic validation split: what escalating only the clips whose
heatmap reaches the level saves, and what it costs in recall. Definitions: tvau/score/cascade.py.

    python -m benchmarks cascade [--model MODEL_URI_OR_DIR] [--data DATASET_DIR]

--model (or TVAU_BENCH_MODEL): a registry URI (models:/tvau@champion) or a trained-model directory;
default: untrained adapters on the tiny backbone (the instrument works, the figures mean nothing).
--data (or TVAU_BENCH_DATA): labelled footage in the UBnormal layout; default data/synth when
`dvc repro` built it, else a small synthetic set made here. The level is params.yaml
score.escalate_level; then the highest level whose recall-drop bound (anomalous clips not
escalated: what the cascade can lose whatever the dialogue says) stays within 2 points, and a sweep. Each figure: value [95% bootstrap interval over
videos]. Recall of the dialogue is printed only when the model answers "yes" to some anomalous
clip; otherwise the row says it cannot be measured (its value is nan), it is never made up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.common import Row


def _pct(f: dict) -> tuple[float, str]:
    """(value in %, "[low, high] %") of a figure; nan when undefined."""
    if f["value"] is None:
        return float("nan"), "undefined"
    if f["low"] is None:
        return 100 * f["value"], "no interval"
    return 100 * f["value"], f"[{100 * f['low']:.1f}, {100 * f['high']:.1f}] %"


def rows_for(f: dict, model_note: str, trained: bool) -> list[Row]:
    level = f["level"]
    head = f"cascade @ {level:g}"
    v, iv = _pct(f["escalation_rate"])
    out = [Row(f"{head}: escalation rate", v, "%", "", None,
               f"{iv}; {f['escalated_clips']}/{f['clips']} clips of {f['videos']} videos; {model_note}")]
    v, iv = _pct(f["heatmap_recall"])
    out.append(Row(f"{head}: anomalous clips escalated (heatmap recall)", v, "%", "", None,
                   f"{iv}; {f['anomalous_clips']} anomalous clips (frame ground truth); the cascade's ceiling"))
    v, iv = _pct(f["escalated_anomalous_share"])
    out.append(Row(f"{head}: anomalous share of escalated clips", v, "%", "", None, iv))
    b = f["recall_drop_bound_points"]
    if b["value"] is not None:
        iv = "no interval" if b["low"] is None else f"[{b['low']:.1f}, {b['high']:.1f}] points"
        out.append(Row(f"{head}: recall drop bound, any dialogue", b["value"], "points", "<= 2",
                       b["value"] <= 2 if trained else None, f"{iv}; = anomalous clips NOT escalated"))
    v, iv = _pct(f["compute_saved"])
    out.append(Row(f"{head}: compute saved (vision + dialogue)", v, "%", "", None,
                   f"{iv}; vs the dialogue on every clip"))
    v, iv = _pct(f["lm_compute_saved"])
    out.append(Row(f"{head}: language-model time saved", v, "%", "", None, iv))
    for key, what in (("yes_rate_anomalous", "anomalous"), ("yes_rate_normal", "normal")):
        v, iv = _pct(f[key])
        out.append(Row(f"{head}: dialogue yes-rate, {what} clips", v, "%", "", None,
                       f"{iv}; first answer starts with 'yes', every clip asked"))
    if f["recall_measurable"]:
        for key, what in (("recall_everywhere", "recall answering everywhere"),
                          ("recall_cascade", "recall through the cascade")):
            v, iv = _pct(f[key])
            out.append(Row(f"{head}: {what}", v, "%", "", None, iv))
        d = f["recall_drop_points"]
        iv = "no interval" if d["low"] is None else f"[{d['low']:.1f}, {d['high']:.1f}] points"
        out.append(Row(f"{head}: recall drop", d["value"], "points", "<= 2",
                       d["value"] <= 2 if trained else None, iv))
    else:
        out.append(Row(f"{head}: recall drop", float("nan"), "points", "<= 2", None,
                       "not measurable: the dialogue answers 'yes' to no anomalous clip"))
    return out


def run() -> list[Row]:
    from benchmarks.bench_score import model_and_loader
    from tvau.config import load_params
    from tvau.score.cascade import bound_level, cascade_figures, clip_table

    cfg = load_params().score
    with tempfile.TemporaryDirectory(prefix="bench_cascade_") as d:
        tmp = Path(d)
        model_uri, loader = model_and_loader(tmp)
        data = os.environ.get("TVAU_BENCH_DATA") or ("data/synth" if Path("data/synth").is_dir() else None)
        if data is None:
            from tvau.synth.config import SynthConfig
            from tvau.synth.generate import generate

            generate(tmp / "synth", SynthConfig(videos=20, frames=96, size=128, scenes=3), seed=5, workers=1,
                     progress=False)
            data = str(tmp / "synth")
        rows = clip_table(model_uri, data, "validation", cfg, loader=loader)
    trained = "TVAU_BENCH_MODEL" in os.environ
    model_note = (f"model {os.environ['TVAU_BENCH_MODEL']}" if trained
                  else "UNTRAINED adapters (instrument check; rerun with --model)")
    out = rows_for(cascade_figures(rows, cfg.escalate_level), model_note, trained)
    best = bound_level(rows, 2.0)
    if best is not None:
        s = cascade_figures(rows, best)
        saved, iv = _pct(s["compute_saved"])
        out.append(Row(f"cascade @ {best:.3g} (highest level with drop bound <= 2): compute saved", saved, "%", "",
                       None, f"{iv}; {s['escalated_clips']}/{s['clips']} escalated; chosen on this split"))
    for level in (0.05, 0.1, 0.2, 0.3, 0.7, 0.9):
        s = cascade_figures(rows, level, n_boot=200)
        esc, _ = _pct(s["escalation_rate"])
        rec, _ = _pct(s["heatmap_recall"])
        saved, _ = _pct(s["compute_saved"])
        drop = s["recall_drop_points"]["value"]
        out.append(Row(f"cascade sweep @ {level:g}: compute saved", saved, "%", "", None,
                       f"{esc:.0f}% escalated, heatmap recall {rec:.0f}% (drop bound {100 - rec:.0f} points), "
                       "recall drop " + ("not measurable" if drop is None else f"{drop:.1f} points")))
    return out
