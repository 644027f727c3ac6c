"""The main job on the embedded default (`make demo`, or `tvau demo`): the retrain flow end to end,
then one HTML page.

1. The Prefect flow flows/retrain.py (temporary local Prefect server, MLflow on SQLite under
   .tvau/): `dvc repro` of the data stages -> data-quality gate -> training sets -> pretrain the
   embedded backbone -> train AHD -> train RAE -> evaluate -> gates (registry/policy.yaml) -> register -> promote to `champion` when
   every gate passes. DVC skips what is up to date, so a second run is quick.
2. The report page (outputs/demo/report.html) opens with the retrain summary a platform engineer
   reads at a glance (verdict, links to the MLflow and Prefect runs, stage times, each gate, model
   against baseline), then the stage metrics as tables, data quality, the baseline and the
   champion's heatmaps on a validation clip.
3. The nightly scoring flow (flows/score.py) on a synthetic night uploaded to the local S3 server
   (`rclone serve s3` over .tvau/s3), one corrupt file included: heatmaps, scores, explanations,
   manifests, quarantine and the night's HTML summary. A second run writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tvau.config import load_params
from tvau.report import Section, contact_sheet, front_page, outline, overlay, save_png, write_html_report

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "synth"  # the synthesise stage's output (dvc.yaml)
SCALE = 3  # enlargement of the trajectory picture


def _say(msg: str) -> None:
    print(f"[tvau demo] {msg}", flush=True)


def _stage_metrics() -> dict[str, dict]:
    out = {}
    for path in sorted((REPO / "data" / "metrics").glob("*.json")):
        out[path.stem] = json.loads(path.read_text())
    return out


def _frames_and_masks(record, start: int, length: int):
    frames = np.stack(list(record.iter_frames(start, start + length)))
    masks = np.stack(list(record.iter_anomaly_masks(start, start + length)))
    return frames, masks


def baseline_section(records, out: Path, params, evaluation: dict | None = None) -> tuple[Section, dict]:
    """The baseline's overlay on the most anomalous validation video, and its metrics: taken from the
    evaluate stage's report when the flow got that far (no second scoring), else scored here."""
    from tvau.baseline import BaselineScorer, heatmaps

    if evaluation and isinstance(evaluation.get("baseline"), dict):
        metrics = {k: (evaluation["baseline"].get(k) or {}).get("value")
                   for k in ("micro_auc", "macro_auc", "pixel_auroc", "miou", "rbdc", "tbdc")}
        metrics.update(videos=evaluation.get("videos"), frames=evaluation.get("frames"),
                       anomalous_frames=evaluation.get("anomalous_frames"))
    else:
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
    table = {k: metrics.get(k) for k in ("micro_auc", "macro_auc", "pixel_auroc", "miou", "rbdc", "tbdc",
                                         "videos", "frames", "anomalous_frames") if metrics.get(k) is not None}
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


def model_section(records, out: Path, params, model=None, title: str | None = None) -> Section:
    """Heatmaps and a first dialogue turn of `model` (the champion) on one anomalous validation clip;
    without a champion, the untrained model, labelled as such."""
    from tvau.model.tvau import TVAU

    trained = model is not None
    model = model if trained else TVAU.from_params(params)
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
    fields = {"video": rec.name, "clip_start": start, "grid (T', H', W')": str(enc.grid),
              "encode+heatmap+chat seconds": round(seconds, 3),
              "Q: Is there any anomaly in the video?": reply.answer}
    if trained:
        return Section(
            title or "Champion model on a validation clip", fields,
            [("model_overlay.png", "trained AHD heatmap vs ground truth")],
            text="Trained adapters on the frozen backbone: the registered champion (models:/tvau@champion, "
            "loaded back from MLflow), or the newest trained candidate when none passed the gates.",
        )
    return Section(
        "T-VAU model (tiny backbone, untrained adapters)", fields,
        [("model_overlay.png", "AHD heatmap (random init) vs ground truth")],
        text="No trained model was found (the retrain flow did not get as far as training); this shows "
        "the full model path with freshly initialised adapters: one vision pass feeding AHD, RAE and the "
        "language model.",
    )


def run_flow(summary_path: Path) -> bool:
    """The retrain flow with a temporary local Prefect server (its state under .tvau/prefect unless
    PREFECT_HOME says otherwise). Returns whether it completed."""
    os.environ.setdefault("PREFECT_HOME", str(REPO / ".tvau" / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect creates only the last level
    # the temporary server's first start takes longer than Prefect's 20 s default on 2 cores
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from flows.retrain import retrain

    state = retrain(root=str(REPO), summary_path=str(summary_path), return_state=True)
    return not state.is_failed()


def _champion(params):
    """The registered champion as a TVAU, or None when there is none."""
    from tvau.registry import models
    from tvau.registry.pyfunc import load_model_dir
    from tvau.registry.resolve import download_model
    from tvau.registry.tracking import configure

    configure(params.registry, REPO)
    if models.version_by_alias(params.registry.model_name, models.CHAMPION) is None:
        return None
    return load_model_dir(download_model(f"models:/{params.registry.model_name}@{models.CHAMPION}"))


def main(out: Path = REPO / "outputs" / "demo", repro: bool = True) -> Path:
    """Run the flow (unless repro=False: then only rebuild the page from the last run), write the
    report, then score a synthetic night from the local S3 server. Exits with status 1 after writing
    the page when a stage of the flow failed; a candidate that only failed its gates is registered,
    not promoted, said so on the page and here, and the night is scored with that version."""
    from tvau.data import open_dataset
    from tvau.evaluate import select_split

    params = load_params(REPO / "params.yaml")
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "retrain_summary.json"
    ok = True
    if repro:
        _say("retrain flow: data -> quality gate -> training sets -> pretrain backbone -> train AHD -> train RAE "
             "-> evaluate -> gates -> register")
        t0 = time.perf_counter()
        ok = run_flow(summary_path)
        _say(f"retrain flow {'completed' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s")
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    sections = []
    if repro:
        from tvau.reproduce import check, section

        reproduction = check(REPO, out / "reproduction")
        _say(f"reproduction: {reproduction['status']}"
             + (f"; {reproduction['reproduced']} of {reproduction['compared']} metrics reproduced"
                if reproduction.get("compared") else ""))
        sections.append(section(reproduction))
    stages = _stage_metrics()
    if stages:
        sections.append(Section("Stage metrics (dvc metrics show)", stages,
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
    metrics = {}
    if DATA.exists():
        records = select_split(open_dataset(DATA, "ubnormal"), "validation")
        evaluation = summary.get("evaluation")
        if not evaluation:
            _say(f"scoring the baseline on {len(records)} validation videos")
        sec, metrics = baseline_section(records, out, params, evaluation)
        sections.append(sec)
        sections.append(trajectory_section(records, out))
        model, title = _champion(params), "Champion model on a validation clip"
        candidate = REPO / params.registry.model_dir
        if model is None and (candidate / "model.json").is_file():  # trained, but not promoted
            from tvau.registry.pyfunc import load_model_dir

            model, title = load_model_dir(candidate), "Trained candidate (not champion) on a validation clip"
        _say("running the " + ("trained" if model is not None else "untrained") + " model on one validation clip")
        sections.append(model_section(records, out, params, model, title))
    page = write_html_report(out / "report.html", "tvau demo", sections, front=front_page(summary))
    print()
    _say("results:")
    print(f"  retrain summary           : {summary_path}")
    if summary.get("mlflow_run_id"):
        print(f"  MLflow run                : {summary['mlflow_run_id']} ({summary.get('tracking_uri')})")
        reused = "reused: same adapters, data, code and evaluation; " if summary.get("model_reused") else ""
        print(f"  model version             : {summary.get('model_version')} "
              f"({reused}champion {summary.get('champion_before')} -> {summary.get('champion_after')})")
    print(f"  stage metrics             : {REPO / 'data' / 'metrics'}")
    if index is not None:
        print(f"  data docs                 : {index}")
    if metrics.get("micro_auc") is not None:
        print(f"  baseline                  : "
              f"(micro-AUC {100 * (metrics['micro_auc'] or 0):.1f}, RBDC {100 * (metrics['rbdc'] or 0):.1f}, "
              f"TBDC {100 * (metrics['tbdc'] or 0):.1f})")
    print(f"  report                    : {page}")
    gated_out = not ok and summary.get("model_version") and summary.get("gates") is not None
    if not ok and not gated_out:
        _say(f"the retrain flow failed: {(summary.get('error') or '').splitlines()[0] if summary.get('error') else ''}")
        raise SystemExit(1)
    if gated_out:  # the pipeline ran; the candidate is registered but did not pass its gates
        failed = summary["gates"].get("failed") or []
        _say(f"gates failed ({', '.join(failed) or 'see the report'}): version {summary['model_version']} "
             f"is {'registered (reused)' if summary.get('model_reused') else 'registered'}, not promoted "
             "(registry/policy.yaml)")
    night_model = _night_model(params, summary)
    if night_model is not None:
        from tvau.score.demo import score_night
        from tvau.score.verdict import CalibrationError

        _say(f"nightly scoring: a synthetic night (one corrupt file) through the local S3 server, model {night_model}")
        try:
            score_night(night_model, out_dir=out / "score", params_path=str(REPO / "params.yaml"),
                        s3_data_dir=REPO / ".tvau" / "s3")
        except CalibrationError as exc:  # a version registered before calibrations travelled with models
            _say(f"nightly scoring skipped: {exc}")
    return page


def _night_model(params, summary: dict) -> str | None:
    """The model the demo's night is scored with: the champion, else the version this run registered
    (so the scoring path runs even when the gates kept the candidate from promotion)."""
    from tvau.registry import models

    name = params.registry.model_name
    if models.version_by_alias(name, models.CHAMPION) is not None:
        return f"models:/{name}@{models.CHAMPION}"
    if summary.get("model_version"):
        return f"models:/{name}/{summary['model_version']}"
    return None


if __name__ == "__main__":
    main()
