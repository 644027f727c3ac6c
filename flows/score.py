"""The nightly scoring flow (Prefect 3): thin tasks over tvau.score.

    check the model's calibration (a model without calibration.json is refused before any video)
    -> list the input prefix (paginated) -> batches of `score.videos_per_batch` videos -> one task per
    batch (the model is loaded once per worker process and kept) -> summary Parquet + HTML report
    -> a Prefect artifact: the flagged videos first, then the counts, drift and the bad files.

Never a task per frame or per clip: a task is a batch of whole videos, so Prefect's bookkeeping
stays negligible next to decoding and the model.

Scaling out: the same flow runs its batch tasks on a Dask cluster through prefect-dask's
DaskTaskRunner (a LocalCluster of `workers` processes, or an existing scheduler's `dask_address`).
Dask rather than Ray: it starts in about a second on two cores from pip-installed wheels, its
LocalCluster is plain processes on loopback, and its workers can declare resources (`GPU=1`) so
that one model-holding worker runs per GPU (`dask worker --resources GPU=1 --nthreads 1`); the
batch task is annotated to need one GPU when the model's device is CUDA.

The model stage also takes a slot of the global concurrency limit `tvau-score-model` (created by
`deploy()`), so several flow runs at once never hold more models than the limit allows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tvau.score.config import ScoreConfig

MODEL_LIMIT = "tvau-score-model"
DEFAULT_CRON = "0 2 * * *"  # 02:00 every night, after the day's footage has landed


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def list_inputs(input_prefix: str, cfg: ScoreConfig) -> list:
    from tvau.score.core import list_videos
    from tvau.score.s3io import make_client

    return list(list_videos(make_client(cfg), input_prefix, cfg))


@task(cache_policy=NO_CACHE)
def score_videos(refs: list, output_prefix: str, model_uri: str, cfg: ScoreConfig,
                 loader: Callable | None = None) -> list[dict]:
    """One batch of videos; failures inside are per-video results, not task failures."""
    from prefect.concurrency.sync import concurrency

    from tvau.config import load_params
    from tvau.score.core import result_dict, score_batch

    params = load_params(Path("params.yaml")) if Path("params.yaml").exists() else None
    with concurrency(MODEL_LIMIT, occupy=1, strict=False):
        results = score_batch(refs, output_prefix, model_uri, cfg, params=params, loader=loader)
    return [result_dict(r) for r in results]


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def summarise(results: list[dict], output_prefix: str, run_date: str, cfg: ScoreConfig,
              report_dir: str | None = None, calibration=None) -> dict:
    from prefect.artifacts import create_markdown_artifact

    from tvau.score.core import VideoResult
    from tvau.score.s3io import make_client
    from tvau.score.summary import write_summary

    res = [VideoResult(**r) for r in results]
    out = write_summary(make_client(cfg), res, output_prefix, run_date, cfg, local_dir=report_dir,
                        calibration=calibration)
    key = "score-night-" + "".join(c if c.isalnum() else "-" for c in run_date.lower())
    create_markdown_artifact(markdown=artifact_markdown(out, run_date), key=key[:100],
                             description=f"Nightly scoring summary {run_date}")
    return {k: v for k, v in out.items() if k != "rows"}


def _cell(text) -> str:
    return str(text or "").replace("|", "/").replace("\n", " ")[:160]


def artifact_markdown(out: dict, run_date: str) -> str:
    """The Prefect artifact: what the report's first screen says, in Markdown."""
    rows = out["rows"]
    flagged = [r for r in rows if r["status"] == "scored" and r["verdict"] == "anomalous"]
    normal = sum(1 for r in rows if r["status"] == "scored" and r["verdict"] != "anomalous")
    mon = out.get("monitoring") or {}
    lines = [f"# Nightly scoring {run_date}", "",
             (f"**{len(flagged)} of {len(flagged) + normal} videos flagged anomalous.** "
             f"Report: `{out['report']}`  "), f"Table: `{out['summary']}`", ""]
    if mon.get("drift"):
        lines += [f"**drift**: {_cell('; '.join(mon['reasons']))}", ""]
    elif mon:
        lines += [f"No drift ({_cell(mon.get('note') or 'flagged rate and score distribution in range')}).", ""]
    lines += ["| # | video | score | threshold | spans (s) | explanation |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(flagged[:50], 1):
        spans = ", ".join(f"{s['start_s']:.1f}-{s['end_s']:.1f}" for s in json.loads(r["spans"]))
        lines.append(f"| {i} | {_cell(r['video'])} | {r['video_score']:.3f} | {r['threshold']:.3f} | {spans} | "
                     f"{_cell(r['explanation'])} |")
    lines += ["", (f"{normal} normal videos. The language model explained {out['escalated_clips']} of "
              f"{out['clips']} clips."), ""]
    bad = [r for r in rows if r["status"] != "scored"]
    if bad:
        lines += ["| not scored | status | reason |", "|---|---|---|"]
        lines += [f"| {_cell(r['video'])} | {r['status']} | {_cell(r['reason'])} |" for r in bad]
    return "\n".join(lines)


def _gpu_annotation(params_path: str):
    """On CUDA, each batch needs one `GPU` resource of a Dask worker: one model per GPU."""
    import contextlib

    from tvau.config import load_params

    if load_params(params_path).model.device.startswith("cuda"):
        import dask

        return dask.annotate(resources={"GPU": 1})
    return contextlib.nullcontext()


def _run_date() -> str:
    from prefect.runtime import flow_run

    start = flow_run.scheduled_start_time  # "now" outside a scheduled run
    try:
        return start.date().isoformat()
    except AttributeError:
        return dt.date.today().isoformat()


@flow(name="score-night", log_prints=True)
def score_night(input_prefix: str, output_prefix: str, model_uri: str | None = None,
                concurrency: int = 1, run_date: str | None = None,
                params_path: str = "params.yaml", report_dir: str | None = None,
                loader: Callable | None = None) -> dict:
    """Score every video under `input_prefix` into `output_prefix`; returns counts and the report
    location. `run_date` defaults to the scheduled start time's date."""
    from tvau.config import load_params
    from tvau.score.core import batches
    from tvau.score.model import check_calibration
    from tvau.score.s3io import check_uri

    log = get_run_logger()
    check_uri(input_prefix, "input")
    check_uri(output_prefix, "output")
    cfg = load_params(params_path).score
    updates = {}
    if model_uri:
        updates["model_uri"] = model_uri
    cfg = ScoreConfig.model_validate({**cfg.model_dump(), **updates})
    calibration = check_calibration(cfg.model_uri)  # CalibrationError names the fix
    run_date = run_date or _run_date()
    # A deployment can name tonight's folder: s3://footage/{date}/ -> s3://footage/2026-11-25/
    input_prefix = input_prefix.replace("{date}", run_date)
    output_prefix = output_prefix.replace("{date}", run_date)
    refs = list_inputs(input_prefix, cfg)
    groups = list(batches(refs, cfg.videos_per_batch))
    log.info("%d videos under %s in %d batches (concurrency %d)", len(refs), input_prefix, len(groups), concurrency)
    with _gpu_annotation(params_path):
        futures = [score_videos.submit(g, output_prefix, cfg.model_uri, cfg, loader) for g in groups]
    results: list[dict] = []
    for fut, group in zip(futures, groups, strict=True):
        try:
            results += fut.result()
        except Exception as exc:  # noqa: BLE001 - a crashed batch is reported per video, never lost
            results += [{"key": r.key, "status": "failed", "output": None,
                         "reason": f"batch failed: {type(exc).__name__}: {exc}", "max_score": None, "clips": 0,
                         "escalated": 0, "frames": 0, "timings": {}, "writes": 0} for r in group]
    summary = summarise(results, output_prefix, run_date, cfg, report_dir, calibration)
    counts = summary["counts"]
    log.info("scored %d, skipped %d (up to date), quarantined %d, failed %d; report %s", counts["scored"],
             counts["skipped"], counts["quarantined"], counts["failed"], summary["report"])
    return {**summary, "results": results, "run_date": run_date}


def task_runner(concurrency: int = 1, dask_address: str | None = None, dask_workers: int | None = None):
    """Threads in this process by default; Dask (an existing scheduler, or a LocalCluster of
    `dask_workers` single-threaded processes, one model each) to go past one process/machine."""
    if dask_address or dask_workers:
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None,
                                              "host": "127.0.0.1"})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=max(1, concurrency))


def run(input_prefix: str, output_prefix: str, model_uri: str | None = None, concurrency: int = 1, run_date: str | None = None, params_path: str = "params.yaml",
        dask_address: str | None = None, dask_workers: int | None = None, report_dir: str | None = None,
        loader: Callable | None = None) -> dict:
    """Run the flow once with the chosen task runner (what `tvau score` calls)."""
    runner = task_runner(concurrency, dask_address, dask_workers)
    return score_night.with_options(task_runner=runner)(
        input_prefix, output_prefix, model_uri=model_uri, concurrency=concurrency,
        run_date=run_date, params_path=params_path, report_dir=report_dir, loader=loader)


def deploy(input_prefix: str, output_prefix: str, model_uri: str = "models:/tvau@champion",
           cron: str = DEFAULT_CRON, model_slots: int = 1, name: str = "nightly"):
    """Register the nightly deployment (cron schedule, one run at a time) and the global
    concurrency limit of the model stage in the current Prefect server; returns its id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=MODEL_LIMIT, limit=model_slots))
        except ObjectAlreadyExists:
            pass
    dep = score_night.to_deployment(
        name=name, cron=cron, concurrency_limit=1,
        parameters={"input_prefix": input_prefix, "output_prefix": output_prefix, "model_uri": model_uri})
    return dep.apply()
