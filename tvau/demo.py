"""The main job on the embedded default (`make demo`, or `tvau demo`): everything that exists of the
pipeline, end to end, on synthetic footage.

1. `dvc repro`: synthesise footage -> frame-wise annotation -> object timelines -> anomaly-focused
   refinement -> data-quality gates (pandera + Great Expectations Data Docs) -> training sets.
   DVC skips what is up to date, so a second run is quick and an interrupted run resumes.
2. The non-learned baseline scored on the validation split: frame AUCs, pixel AUROC, RBDC/TBDC.
3. The T-VAU model (tiny Qwen2.5-VL backbone, AHD/RAE not yet trained) run on one validation clip:
   heatmap overlay and a first dialogue turn, to show the full model path runs.
4. One HTML page linking everything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tvau.config import load_params
from tvau.report import Section, contact_sheet, outline, overlay, save_png, write_html_report

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "synth"  # the synthesise stage's output (dvc.yaml)
SCALE = 3  # enlargement of the trajectory picture


def _say(msg: str) -> None:
    print(f"[tvau demo] {msg}", flush=True)


def run_dvc_repro() -> float:
    """`dvc repro` in the repository, with this interpreter's environment first on PATH so the
    stages' `tvau ...` commands resolve to this installation."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    dvc = shutil.which("dvc", path=env["PATH"])
    if dvc is None:
        raise SystemExit("dvc is not installed in this environment: run `make install` first")
    t0 = time.perf_counter()
    subprocess.run([dvc, "repro"], cwd=REPO, env=env, check=True)
    return time.perf_counter() - t0


def _stage_metrics() -> dict[str, dict]:
    out = {}
    for path in sorted((REPO / "data" / "metrics").glob("*.json")):
        out[path.stem] = json.loads(path.read_text())
    return out


def _frames_and_masks(record, start: int, length: int):
    frames = np.stack(list(record.iter_frames(start, start + length)))
    masks = np.stack(list(record.iter_anomaly_masks(start, start + length)))
    return frames, masks


def baseline_section(records, out: Path, params) -> tuple[Section, dict]:
    from tvau.baseline import BaselineScorer, heatmaps
    from tvau.evaluate import evaluate, write_metrics_json

    metrics = evaluate(records, BaselineScorer(params.metrics.baseline), params.metrics,
                       scorer_name=BaselineScorer.name, progress=sys.stderr.isatty())
    write_metrics_json(metrics, out / "baseline_metrics.json")
    # Overlays: six frames across the most anomalous validation video.
    rec = max(records, key=lambda r: int(r.frame_labels.sum()))
    heat = heatmaps(rec, params.metrics.baseline)
    idx = np.linspace(0, rec.num_frames - 1, 6).round().astype(int)
    wanted = set(idx.tolist())
    frames = [f for i, f in enumerate(rec.iter_frames()) if i in wanted]
    masks = [m for i, m in enumerate(rec.iter_anomaly_masks()) if i in wanted]
    tiles, labels = [], []
    for i, f, m in zip(idx, frames, masks):
        tiles += [overlay(f, heat[i]), outline(f, m)]
        labels += [f"baseline t={i}", f"ground truth t={i}"]
    save_png(out / "baseline_overlay.png", contact_sheet(tiles, labels, cols=4))
    table = {k: metrics[k] for k in ("micro_auc", "macro_auc", "pixel_auroc", "miou", "rbdc", "tbdc")}
    table.update(videos=metrics["videos"], frames=metrics["frames"], anomalous_frames=metrics["anomalous_frames"])
    sec = Section("Baseline on the validation split", table, [("baseline_overlay.png", f"{rec.name}: baseline vs ground truth")],
                  text="Non-learned reference scorer (background subtraction + motion). Rates are fractions.")
    return sec, metrics


def trajectory_section(records, out: Path) -> Section:
    """Object timelines of one anomalous validation video (stage 2's output) over its middle frame,
    enlarged SCALE times so the labels can be read."""
    import cv2
    import pandas as pd

    from tvau.report import trajectories

    points = pd.read_parquet(REPO / "data" / "construct" / "timelines" / "track_points.parquet")
    lines = pd.read_parquet(REPO / "data" / "construct" / "timelines" / "timelines.parquet")
    rec = next((r for r in records if r.is_anomalous), records[0])
    tracks, sentences = [], []
    for row in lines[lines.video == rec.name].itertuples():
        p = points[(points.video == rec.name) & (points.track_id == row.track_id)].sort_values("frame")
        tag = row.anomaly_kind if row.anomalous else row.category
        tracks.append((p[["cx", "cy"]].to_numpy() * SCALE, bool(row.anomalous), str(tag)))
        sentences.append(("ANOMALY: " if row.anomalous else "") + row.sentence)
    frame = next(rec.iter_frames(rec.num_frames // 2, rec.num_frames // 2 + 1))
    frame = cv2.resize(frame, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
    save_png(out / "trajectories.png", trajectories(frame, tracks))
    return Section(f"Object timelines: {rec.name}", {"timeline sentences": sentences},
                   [("trajectories.png", "tracked centre paths; red = anomalous target")])


def model_section(records, out: Path, params) -> Section:
    from tvau.model.tvau import TVAU

    model = TVAU.from_params(params)
    rec = next((r for r in records if r.is_anomalous), records[0])
    first = int(np.flatnonzero(rec.frame_labels)[0]) if rec.is_anomalous else 0
    start = max(0, min(first, rec.num_frames - params.clip.num_frames))
    frames, masks = _frames_and_masks(rec, start, params.clip.num_frames)
    import cv2

    clip = np.stack([cv2.resize(f, (params.clip.width, params.clip.height), interpolation=cv2.INTER_AREA)
                     for f in frames])
    t0 = time.perf_counter()
    enc = model.encode(clip)
    heat = model.heatmap_frames(enc).numpy()  # (T, H, W) at clip size
    reply = model.chat(enc, "Is there any anomaly in the video?")
    seconds = time.perf_counter() - t0
    idx = np.linspace(0, len(frames) - 1, 4).round().astype(int)
    tiles, labels = [], []
    for i in idx:
        tiles += [overlay(frames[i], heat[i]), outline(frames[i], masks[i])]
        labels += [f"T-VAU t={start + i}", f"ground truth t={start + i}"]
    save_png(out / "model_overlay.png", contact_sheet(tiles, labels, cols=4))
    np.save(out / "model_heatmap.npy", heat.astype(np.float16))
    return Section(
        "T-VAU model (tiny backbone, untrained adapters)",
        {"video": rec.name, "clip_start": start, "grid (T', H', W')": str(enc.grid),
         "encode+heatmap+chat seconds": round(seconds, 3),
         "Q: Is there any anomaly in the video?": reply.answer},
        [("model_overlay.png", "AHD heatmap (random init) vs ground truth")],
        text="AHD and RAE are not trained yet (training is a later stage of the pipeline); this shows "
        "the full model path: one vision pass feeding AHD, RAE and the language model.",
    )


def main(out: Path = REPO / "outputs" / "demo", repro: bool = True) -> Path:
    from tvau.data import open_dataset
    from tvau.evaluate import select_split

    params = load_params(REPO / "params.yaml")
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    if repro:
        _say("dvc repro: synthesise -> annotate -> timelines -> refine -> validate -> build")
        seconds = run_dvc_repro()
        _say(f"dvc repro finished in {seconds:.0f} s")
    stages = _stage_metrics()
    sections.append(Section("Dataset construction (dvc repro)", stages,
                            text="Per-stage counts from data/metrics/*.json; lineage in dvc.lock."))
    docs = REPO / params.quality.docs_dir
    index = next(iter(sorted(docs.rglob("index.html"))), None) if docs.exists() else None
    if index is not None:
        report_md = REPO / "data" / "quality" / "report.md"
        sections.append(Section("Data quality", links=[
            (os.path.relpath(index, out), "Great Expectations Data Docs"),
            (os.path.relpath(report_md, out), "quality report (every check, class balance, drops)"),
        ] + [  # Data Docs' index lists results with JavaScript from a CDN: link each result page too
            (os.path.relpath(page, out), f"validation result: {page.parent.parent.parent.name}")
            for page in sorted((docs / "validations").rglob("*.html"))
        ]))
    records = select_split(open_dataset(DATA, "ubnormal"), "validation")
    _say(f"scoring the baseline on {len(records)} validation videos")
    sec, metrics = baseline_section(records, out, params)
    sections.append(sec)
    sections.append(trajectory_section(records, out))
    _say("running the T-VAU model on one validation clip")
    sections.append(model_section(records, out, params))
    page = write_html_report(out / "report.html", "tvau demo", sections)
    print()
    _say("results:")
    print(f"  dataset (UBnormal layout) : {DATA}")
    print(f"  training sets             : {REPO / 'data' / 'train'}")
    print(f"  stage metrics             : {REPO / 'data' / 'metrics'}")
    if index is not None:
        print(f"  data docs                 : {index}")
    print(f"  baseline metrics          : {out / 'baseline_metrics.json'}  "
          f"(micro-AUC {100 * (metrics['micro_auc'] or 0):.1f}, RBDC {100 * (metrics['rbdc'] or 0):.1f}, "
          f"TBDC {100 * (metrics['tbdc'] or 0):.1f})")
    print(f"  pictures                  : {out / 'baseline_overlay.png'}, {out / 'trajectories.png'}, "
          f"{out / 'model_overlay.png'}")
    print(f"  report                    : {page}")
    return page


if __name__ == "__main__":
    main()
