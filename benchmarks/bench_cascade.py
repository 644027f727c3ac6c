"""The cascade on the synthetic validation split (issue 8): recall of anomalous clips when the
language model answers only escalated clips vs answering everywhere (target: within 2 points),
and the language-model compute saved. See tvau/score/cascade.py for the definitions.

TVAU_BENCH_MODEL picks the model (default: untrained adapters on the tiny backbone, whose answers
are noise: the figures then only show the instrument works). TVAU_BENCH_DATA picks the labelled
footage (default: data/synth when `dvc repro` built it, else a small synthetic set made here).
The level is params.yaml score.escalate_level; a sweep of levels is printed too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.common import Row


def run() -> list[Row]:
    from benchmarks.bench_score import model_and_loader
    from tvau.config import load_params
    from tvau.score.cascade import cascade_figures, clip_table

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
    f = cascade_figures(rows, cfg.escalate_level)
    trained = "TVAU_BENCH_MODEL" in os.environ
    note = (f"{f['clips']} clips ({f['anomalous_clips']} anomalous), level {cfg.escalate_level}, "
            + ("" if trained else "UNTRAINED adapters: meaningless, rerun with TVAU_BENCH_MODEL"))
    out = [
        Row("cascade: recall answering everywhere", 100 * f["recall_everywhere"], "%", "", None, note),
        Row("cascade: recall through the cascade", 100 * f["recall_cascade"], "%", "", None, note),
        Row("cascade: recall drop", f["recall_drop_points"], "points", "<= 2", f["recall_drop_points"] <= 2
            if trained else None, note),
        Row("cascade: anomalous clips escalated", 100 * f["anomalous_escalated"], "%", "", None,
            "the heatmap stage's own recall (the ceiling of the cascade's)"),
        Row("cascade: LM compute saved", 100 * f["compute_saved"], "%", "", None,
            f"{f['escalated']} of {f['clips']} clips escalated"),
    ]
    for level in (0.3, 0.5, 0.7, 0.9, 0.95, 0.99):
        s = cascade_figures(rows, level)
        out.append(Row(f"cascade sweep: level {level} recall drop", s["recall_drop_points"], "points", "", None,
                       f"saves {100 * s['compute_saved']:.0f}% of LM time, {s['escalated']}/{s['clips']} escalated, "
                       f"{100 * s['anomalous_escalated']:.0f}% of anomalous clips escalated"))
    return out
