"""A synthetic night of an unseen seed, scored by the nightly scorer and measured against its truth.

    python -m benchmarks night [--videos N] [--seed S] [--model MODEL_URI_OR_DIR]

The night is rendered by `tvau synth` with params.yaml's synth section (default 80 videos, seed
2024: params.yaml uses 0 for the training footage and the model, 1000 for the backbone's
pretraining and 1001 for the evaluation holdout; the scorer's demo renders 2026; measure() refuses
the first three), uploaded to the project's S3 server (the one named by AWS_ENDPOINT_URL, else a
`tvau s3-server` on loopback over a temporary folder) and scored with tvau.score.core (the same
per-video code as the Prefect flow, without the flow's server) and the summary of
tvau.score.summary, with params.yaml's score section. The model is --model (or TVAU_BENCH_MODEL):
a registry URI or a trained-model directory with calibration.json; default
models:/tvau@champion from the project's MLflow store.

Truth: frame labels from the dataset reader (tvau.data.open_dataset, UBnormal layout) and each
video's anomaly kind from the synthetic sidecar (tvau.construct.frames.video_kinds). Predictions:
each scored video's manifest (verdict, spans, clips sent to the language model). Figures, each with
a percentile bootstrap interval over videos (tvau.evaluate.bootstrap; params.yaml evaluate's
resamples, confidence and seed):
- recall: anomalous videos flagged / anomalous videos; false-alarm rate: normal videos flagged /
  normal videos (the calibration promised about score.false_alarm_rate on validation footage);
- recall per anomaly kind;
- span temporal IoU per anomalous video: source frames inside any predicted span against the truly
  anomalous frames, their intersection over their union (a missed video counts 0), then the mean;
  also the mean over the flagged anomalous videos only (how well a found anomaly is placed);
- the cascade's share of clips sent to the language model (the summary's escalated / clips).

The table is also written as Markdown to TVAU_BENCH_RESULTS (default benchmarks/results) as
night_cpu_<date>.md (b, c, ... when the day already has one). Environment: TVAU_BENCH_VIDEOS,
TVAU_BENCH_SEED (set by --videos/--seed), TVAU_BENCH_FRAMES and TVAU_BENCH_SIZE: frames and pixels
of each video (default params.yaml synth's, the look of the footage the threshold was fitted on).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import Row

DEFAULT_MODEL = "models:/tvau@champion"
DEFAULT_VIDEOS, DEFAULT_SEED = 80, 2024
BUCKETS = ("footage", "results")
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"  # the project's, wherever this runs from


@dataclass
class Night:
    """What one measured night leaves: the table, the figures, the per-video join of truth and
    manifests, and where the outputs are (so a caller can check them against the manifests)."""

    rows: list[Row]
    figures: dict
    videos: list[dict]
    output_prefix: str
    summary: dict
    setup: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ the night


def check_unseen(seed: int, params) -> None:
    """Refuse a seed the pipeline renders its own footage with: the night must be footage the
    model and its calibration never saw."""
    used = {"seed": params.seed, "evaluate.holdout_seed": params.evaluate.holdout_seed,
            "pretrain.world.seed": params.pretrain.world.seed}
    clash = [k for k, v in used.items() if v == seed]
    if clash:
        raise ValueError(f"seed {seed} is params.yaml {', '.join(clash)}: pick an unseen one (--seed)")


def night_config(synth, videos: int, frames: int | None, size: int | None):
    """params.yaml's synth section (footage like the calibration's: its threshold is fitted on
    that look) with the night's size; frames and pixels only when asked (tests, quick checks)."""
    from tvau.synth.config import SynthConfig

    over = {"videos": videos, "scenes": min(videos, synth.scenes)}
    over |= {k: v for k, v in (("frames", frames), ("size", size)) if v}
    return SynthConfig.model_validate({**synth.model_dump(), **over})


def render(root: Path, synth, seed: int) -> list[Path]:
    """The night's footage (one worker: the machine's cores are shared with training)."""
    from tvau.synth.generate import generate

    generate(root, synth, seed=seed, workers=1, progress=False)
    return sorted(root.rglob("*.mp4"))


@contextlib.contextmanager
def s3_environment(data_dir: Path):
    """The S3 server of AWS_ENDPOINT_URL when one is named (as tvau/score/demo.py), else a fresh
    loopback server whose objects live under data_dir."""
    from tvau.storage import temporary_environ

    if os.environ.get("AWS_ENDPOINT_URL"):
        yield
        return
    from tvau.s3server import running_s3_server

    with running_s3_server(buckets=BUCKETS, data_dir=data_dir) as env, temporary_environ(env):
        yield


def upload(client, files: list[Path], input_prefix: str, cfg) -> None:
    """Each video under the input prefix by its name (names are unique across scenes)."""
    from tvau.score.s3io import put_bytes
    from tvau.storage import ensure_bucket

    for b in BUCKETS:
        ensure_bucket(b, client)
    for f in files:
        put_bytes(client, f"{input_prefix}{f.name}", f.read_bytes(), cfg, "video/mp4", skip_if_same=True)


def score(client, input_prefix: str, output_prefix: str, model_uri: str, cfg, params, run_date: str,
          report_dir: Path, calibration) -> tuple[list, dict, dict]:
    """(results, summary, {input key: manifest}): the flow's steps in this process; the summary
    checks drift against the model's calibration, as the flow's does."""
    from tvau.score.core import score_prefix
    from tvau.score.s3io import get_json
    from tvau.score.summary import write_summary

    results = score_prefix(input_prefix, output_prefix, model_uri, cfg, params=params, client=client)
    summary = write_summary(client, results, output_prefix, run_date, cfg, local_dir=report_dir,
                            calibration=calibration)
    manifests = {r.key: get_json(client, r.output, cfg) for r in results if r.status in ("scored", "skipped")}
    return results, summary, manifests


# ------------------------------------------------------------------------------------ truth and join


def truth(root: Path) -> dict[str, dict]:
    """{video name: {"labels": frame labels, "kind": anomaly kind or None}} of the rendered night."""
    from tvau.construct.frames import video_kinds
    from tvau.construct.sidecar import load_attributes
    from tvau.data import open_dataset

    kinds = video_kinds(load_attributes(root))
    return {r.name: {"labels": np.asarray(r.frame_labels, bool), "kind": kinds.get(r.name)}
            for r in open_dataset(root, "ubnormal", load_tracks=False)}


def span_frames(spans: list[dict], num_frames: int) -> np.ndarray:
    """(num_frames,) bool: source frames inside any span (spans' frame ranges are inclusive)."""
    out = np.zeros(num_frames, bool)
    for sp in spans:
        out[max(0, int(sp["start_frame"])): min(num_frames, int(sp["end_frame"]) + 1)] = True
    return out


def temporal_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of two frame sets (1 when both are empty: nothing to find, none said)."""
    union = np.logical_or(pred, true).sum()
    return float(np.logical_and(pred, true).sum() / union) if union else 1.0


def join(results: list, manifests: dict, gt: dict[str, dict]) -> list[dict]:
    """One row per rendered video: truth beside what the scorer said (status when not scored)."""
    by_name = {Path(r.key).stem: r for r in results}
    rows = []
    for name, t in sorted(gt.items()):
        r = by_name.get(name)
        m = manifests.get(r.key) if r is not None else None
        s = (m or {}).get("summary") or {}
        anomalous = bool(t["labels"].any())
        pred = span_frames(s.get("spans") or [], len(t["labels"]))
        rows.append({"video": name, "kind": t["kind"], "anomalous": anomalous,
                     "status": "missing" if r is None else ("scored" if m else r.status),
                     "flagged": s.get("verdict") == "anomalous", "video_score": s.get("video_score"),
                     "iou": temporal_iou(pred, t["labels"]) if anomalous else None,
                     "clips": int(s.get("clips") or 0), "escalated": int(s.get("escalated_clips") or 0)})
    return rows


# ------------------------------------------------------------------------------------ figures


def _ratio(num: np.ndarray, den: np.ndarray, draws: np.ndarray, confidence: float):
    """sum(num) / sum(den) with its bootstrap interval over the drawn videos (None when den is 0)."""
    from tvau.evaluate.bootstrap import interval, ratio_stat

    value = float(num.sum() / den.sum()) if den.sum() else None
    return interval(value, ratio_stat(num, den), draws, confidence)


def figures(videos: list[dict], n_boot: int, seed: int, confidence: float) -> dict:
    """Every figure of the module docstring over the scored videos, all on the same resamples."""
    from tvau.evaluate.bootstrap import resamples

    v = [x for x in videos if x["status"] == "scored"]
    f = lambda key: np.asarray([float(x[key] or 0) for x in v])
    anom, flag = f("anomalous"), f("flagged")
    normal, iou = 1 - anom, f("iou")
    draws = resamples(len(v), n_boot, seed) if v else np.zeros((0, 0), np.int64)
    kinds = sorted({x["kind"] for x in v if x["anomalous"] and x["kind"]})
    kind = lambda k: np.asarray([float(x["anomalous"] and x["kind"] == k) for x in v])
    return {
        "videos": len(v), "anomalous": int(anom.sum()), "normal": int(normal.sum()),
        "flagged_anomalous": int((flag * anom).sum()), "flagged_normal": int((flag * normal).sum()),
        "not_scored": len(videos) - len(v), "clips": int(f("clips").sum()), "escalated": int(f("escalated").sum()),
        "recall": _ratio(flag * anom, anom, draws, confidence),
        "false_alarm_rate": _ratio(flag * normal, normal, draws, confidence),
        "kinds": {k: (_ratio(flag * kind(k), kind(k), draws, confidence), int(kind(k).sum())) for k in kinds},
        "iou": _ratio(iou * anom, anom, draws, confidence),
        "iou_flagged": _ratio(iou * anom * flag, anom * flag, draws, confidence),
        "escalation": _ratio(f("escalated"), f("clips"), draws, confidence),
    }


# ------------------------------------------------------------------------------------ table


def _pct(iv) -> tuple[float, str]:
    """(value in %, "[low, high] %"); nan and "undefined" when the figure is."""
    if iv.value is None:
        return float("nan"), "undefined"
    if iv.low is None:
        return 100 * iv.value, "no interval"
    return 100 * iv.value, f"[{100 * iv.low:.1f}, {100 * iv.high:.1f}] %"


def _row(name: str, iv, note: str, target: str = "") -> Row:
    value, span = _pct(iv)
    return Row(f"night: {name}", value, "%", target, None, f"{span}; {note}")


def rows_for(fig: dict, setup: dict, monitoring: dict | None) -> list[Row]:
    """The table: verdicts, kinds, spans, cascade, drift (values in %, intervals in the note)."""
    a, n = fig["anomalous"], fig["normal"]
    far = setup["false_alarm_target"]
    out = [
        Row("night: videos scored", fig["videos"], "videos", "", None,
            f"{a} anomalous, {n} normal, {fig['not_scored']} not scored; {setup['describe']}"),
        _row("video recall", fig["recall"], f"{fig['flagged_anomalous']}/{a} anomalous videos flagged"),
        _row("video false-alarm rate", fig["false_alarm_rate"], f"{fig['flagged_normal']}/{n} normal videos "
             f"flagged; threshold {setup['threshold']:.4g}", f"~{100 * far:g} % (calibrated)"),
    ]
    for k, (iv, count) in fig["kinds"].items():
        out.append(_row(f"recall, {k}", iv, f"{count} video{'s' * (count != 1)}"))
    out += [
        _row("span temporal IoU", fig["iou"], f"mean over {a} anomalous videos (missed = 0)"),
        _row("span temporal IoU, flagged only", fig["iou_flagged"],
             f"mean over {fig['flagged_anomalous']} flagged anomalous videos"),
        _row("clips sent to the language model", fig["escalation"],
             f"{fig['escalated']}/{fig['clips']} clips (span peaks at or above the escalate level)"),
    ]
    return out + [_drift_row(monitoring)]


def _drift_row(mon: dict | None) -> Row:
    """The night's own drift check, as the summary gave it (value: 1 = drift)."""
    if not mon:
        return Row("night: drift check", float("nan"), "", "", None, "no monitoring in the summary")
    psi = "n/a" if mon["psi"] is None else f"{mon['psi']:.3f}"
    why = "; ".join(mon["reasons"]) or (mon["note"] or "flagged rate and score distribution in range")
    return Row("night: drift check", float(mon["drift"]), "drift", "", None,
               f"PSI {psi} (limit {mon['psi_limit']:.3f}), flagged-rate p {mon['flag_rate_p_value']:.3g}; {why}")


# ------------------------------------------------------------------------------------ Markdown


def _about(setup: dict) -> list[str]:
    """The lines saying what was run: footage, model, scoring settings, intervals."""
    model = (f"- Model: `{setup['model']}` (version {setup['version']}, digest {setup['digest'][:12]}); "
             f"calibrated threshold {setup['threshold']:.4g} for a false-alarm rate of "
             f"{100 * setup['false_alarm_target']:g} %.")
    scoring = (f"- Scoring: params.yaml `score` (sample {setup['sample_fps']:g} fps, escalate level "
               f"{setup['escalate_level']:g}); code {setup['commit']}.")
    boot = (f"- Intervals: {100 * setup['confidence']:g} % percentile bootstrap over videos, "
            f"{setup['n_boot']} resamples.")
    return [f"`{setup['command']}`", "", f"- Night: {setup['describe']}.", model, scoring, boot]


def markdown(rows: list[Row], setup: dict) -> str:
    """The result file: what was run, how to rerun it, and the table."""
    cell = lambda s: str(s).replace("|", "/")
    lines = [f"# A synthetic night against truth, CPU, {setup['date']}", "", *_about(setup), "",
             "| benchmark | value | unit | target | note |", "|---|---|---|---|---|"]
    lines += [f"| {cell(r.benchmark)} | {r.value:.4g} | {r.unit} | {cell(r.target)} | {cell(r.note)} |" for r in rows]
    return "\n".join(lines) + "\n"


def write_markdown(text: str, out_dir: Path, date: str) -> Path:
    """night_cpu_<date>.md, or ...b.md, c.md when the day already has one (never overwritten)."""
    from tvau.storage import atomic_path

    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        path = out_dir / f"night_cpu_{date}{suffix}.md"
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            return path
    raise FileExistsError(f"{out_dir}: too many night results for {date}")


# ------------------------------------------------------------------------------------ entry points


def _setup(model_uri: str, loaded_manifest: dict | None, cal, cfg, ev, synth, seed: int, date: str) -> dict:
    """What the result file says about the run (model identity from a manifest: what was used)."""
    mdl = (loaded_manifest or {}).get("model") or {}
    commit = ((loaded_manifest or {}).get("code_version") or {}).get("git_commit") or "unknown"
    return {"date": date, "model": model_uri, "version": mdl.get("version") or "-", "digest": mdl.get("digest") or "-",
            "threshold": cal.threshold, "false_alarm_target": cal.false_alarm_rate, "sample_fps": cfg.sample_fps,
            "escalate_level": cfg.escalate_level, "commit": commit[:12], "confidence": ev.confidence,
            "n_boot": ev.bootstrap,
            "describe": f"tvau synth seed {seed}, {synth.videos} videos x {synth.frames} frames @ {synth.size} px",
            "command": f"python -m benchmarks night --videos {synth.videos} --seed {seed} --model {model_uri}"}


def measure(work: Path, model_uri: str, videos: int = DEFAULT_VIDEOS, seed: int = DEFAULT_SEED,
            frames: int | None = None, size: int | None = None, cfg=None, params=None, ev=None,
            run_date: str | None = None) -> Night:
    """Render, upload, score and measure one night under `work` (the S3 server is AWS_ENDPOINT_URL's
    when set, so a caller can read the outputs afterwards). cfg: a ScoreConfig (default
    params.yaml's); ev: the bootstrap's settings (default params.yaml evaluate)."""
    from tvau.config import load_params
    from tvau.score.model import check_calibration
    from tvau.score.s3io import make_client

    p = load_params(PARAMS)
    check_unseen(seed, p)
    calibration = check_calibration(model_uri)  # before rendering: a model without one gives no verdicts
    cfg, ev = cfg or p.score, ev or p.evaluate
    run_date = run_date or dt.date.today().isoformat()
    synth = night_config(p.synth, videos, frames, size)
    files = render(work / "night", synth, seed)
    input_prefix, output_prefix = f"s3://footage/night-s{seed}-v{videos}/", f"s3://results/night-s{seed}-v{videos}"
    with s3_environment(work / "s3"):
        client = make_client(cfg)
        upload(client, files, input_prefix, cfg)
        results, summary, manifests = score(client, input_prefix, output_prefix, model_uri, cfg, params, run_date,
                                            work / "report", calibration)
    videos_rows = join(results, manifests, truth(work / "night"))
    fig = figures(videos_rows, ev.bootstrap, ev.bootstrap_seed, ev.confidence)
    setup = _setup(model_uri, next(iter(manifests.values()), None), calibration, cfg, ev, synth, seed, run_date)
    return Night(rows_for(fig, setup, summary.get("monitoring")), fig, videos_rows, output_prefix,
                 {k: v for k, v in summary.items() if k != "rows"}, setup)


def run() -> list[Row]:
    from tvau.config import load_params

    env = os.environ.get
    model_uri = env("TVAU_BENCH_MODEL") or DEFAULT_MODEL
    with tempfile.TemporaryDirectory(prefix="bench_night_") as d:
        night = measure(Path(d), model_uri, int(env("TVAU_BENCH_VIDEOS") or DEFAULT_VIDEOS),
                        int(env("TVAU_BENCH_SEED") or DEFAULT_SEED), int(env("TVAU_BENCH_FRAMES") or 0) or None,
                        int(env("TVAU_BENCH_SIZE") or 0) or None, params=load_params(PARAMS))
    out_dir = Path(env("TVAU_BENCH_RESULTS") or Path(__file__).parent / "results")
    path = write_markdown(markdown(night.rows, night.setup), out_dir, night.setup["date"])
    return night.rows + [Row("night: results written", len(night.rows), "rows", note=str(path))]
