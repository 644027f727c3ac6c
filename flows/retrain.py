"""The retraining flow (Prefect 3): data -> quality gate -> training sets -> train AHD -> train RAE ->
evaluate -> gates -> register -> promote when the policy allows.

Only wiring lives here: every task is a thin wrapper over a plain function in tvau/registry/
(tested without Prefect). Each stage is a subprocess (`dvc repro <stage>` by default), so DVC skips
what is up to date and dvc.lock pins data, params, code, adapters and metrics together.

Retries: none on the stages (a failed DVC stage fails the same way again; DVC resumes from the last
finished stage on the next run) and none on registration (a version is reused only once it is
registered, so a retry after a half-done registration could still add one); two on the MLflow logging of a stage (a tracking server or SQLite lock can be briefly busy).
Caching: NO_CACHE everywhere: DVC decides what is up to date, not Prefect.

Run it:  python -m flows.retrain            (one run, temporary local Prefect server)
         python -m flows.retrain --serve    (this machine runs the deployment on its cron schedule)
         prefect deploy --all               (prefect.yaml: a deployment for a work pool)
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tvau.config import load_params
from tvau.registry import models, pipeline
from tvau.registry.pipeline import RetrainSummary, StageSpec
from tvau.registry.tracking import PipelineRun, flatten

CRON = "0 2 * * *"  # nightly at 02:00 (the deployment in prefect.yaml says the same)


class GatesFailed(RuntimeError):
    """The candidate failed at least one gate; the message is the gate report (markdown)."""


@task(cache_policy=NO_CACHE)
def run_stage(spec: StageSpec, root: str, timeout_s: float) -> pipeline.StageResult:
    return pipeline.run_stage(spec, root, timeout_s)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def log_stage(run: PipelineRun, spec: StageSpec, result: pipeline.StageResult, root: str) -> str:
    metrics = pipeline.read_metrics_files(root, spec.metrics)
    return run.stage(spec.name, params={"cmd": " ".join(spec.cmd)}, metrics=metrics,
                     artifacts=[Path(root) / a for a in spec.artifacts], seconds=result.seconds)


@task(cache_policy=NO_CACHE)
def gate(root: str, eval_json: str, policy: str, model_name: str):
    return pipeline.gate_candidate(root, eval_json, policy, model_name)


@task(cache_policy=NO_CACHE)
def register(run: PipelineRun, root: str, params: dict[str, Any], model_dir: str, evaluation: dict[str, Any],
             report, model_name: str, bundle_backbone_mb: float):
    return pipeline.register_or_reuse(run, root, params, model_dir, evaluation, report, model_name,
                                      bundle_backbone_mb)


@task(cache_policy=NO_CACHE)
def promote(model_name: str, version: str, who: str, why: str) -> dict[str, Any]:
    return models.promote(model_name, version, who=who, why=why)


def _flow_run_links() -> tuple[str | None, str | None]:
    from prefect.runtime import flow_run

    rid = flow_run.id
    url = flow_run.ui_url
    if not (url and url.startswith("http")):  # no PREFECT_UI_URL: the address of `prefect server start`
        url = f"http://127.0.0.1:4200/runs/flow-run/{rid}" if rid else None
    return (str(rid) if rid else None), url


def _publish(summary: RetrainSummary, report_md: str | None) -> None:
    """Prefect artifacts: the gate report (markdown), model vs baseline (table), the MLflow run (link)."""
    link = f"\n\nMLflow run: [{summary.mlflow_run_id}]({summary.mlflow_run_url})" if summary.mlflow_run_url else ""
    if report_md:
        create_markdown_artifact(report_md + link, key="gate-report", description="tvau retrain: gate report")
    if summary.metrics_table:
        create_table_artifact(summary.metrics_table, key="model-vs-baseline",
                              description="validation metrics with 95% intervals; holdout = unseen seed")
    create_table_artifact([{k: v for k, v in s.items() if k != "cmd"} for s in summary.stages], key="stage-times",
                          description="wall time of each stage (s)")
    if summary.mlflow_run_url:
        create_link_artifact(summary.mlflow_run_url, link_text="MLflow parent run", key="mlflow-run")


@flow(name="tvau-retrain", log_prints=True)
def retrain(root: str = ".", params_path: str = "params.yaml", stages: list[StageSpec] | None = None,
            promote_when_passed: bool | None = None, summary_path: str | None = None) -> dict[str, Any]:
    """One retraining run. `stages` replaces the default `dvc repro` stages (e.g. a subset, or a
    tiny configuration); `promote_when_passed` overrides params.yaml registry.auto_promote."""
    logger = get_run_logger()
    t0 = time.perf_counter()
    root = str(Path(root).resolve())
    params = load_params(Path(root) / params_path)
    cfg = params.registry
    stages = stages if stages is not None else pipeline.default_stages()
    summary = RetrainSummary()
    summary.flow_run_id, summary.flow_run_url = _flow_run_links()
    out = Path(summary_path) if summary_path else Path(root) / ".tvau" / "runs" / (summary.flow_run_id or "local") / "summary.json"
    run = PipelineRun.start(cfg, root, name=f"retrain {summary.flow_run_id or ''}".strip(),
                            tags={"prefect.flow_run_id": summary.flow_run_id or "",
                                  "prefect.flow_run_url": summary.flow_run_url or ""})
    summary.mlflow_run_id, summary.mlflow_run_url = run.run_id, run.url()
    summary.tracking_uri = cfg.resolved_tracking_uri(root)
    champion = models.version_by_alias(cfg.model_name, models.CHAMPION)
    summary.champion_before = str(champion.version) if champion else None
    report_md = None
    try:
        for spec in stages:
            logger.info("stage %s: %s", spec.name, " ".join(spec.cmd))
            result = run_stage.with_options(name=f"stage-{spec.name}", retries=spec.retries)(
                spec, root, cfg.stage_timeout_s)
            summary.stages.append({"name": spec.name, "cmd": " ".join(spec.cmd),
                                   "seconds": round(result.seconds, 1), "status": "ok"})
            log_stage(run, spec, result, root)
        evaluation, report = gate(root, cfg.eval_json, cfg.policy, cfg.model_name)
        report_md = report.to_markdown("tvau retrain gate report")
        summary.gates, summary.evaluation = report.to_dict(), evaluation
        summary.metrics_table = pipeline.metrics_table(evaluation)
        mv, summary.model_reused = register(
            run, root, flatten(params.model_dump(mode="json")) | {"registry": params.registry.model_dump()},
            cfg.model_dir, evaluation, report, cfg.model_name, cfg.bundle_backbone_mb)
        summary.model_version = str(mv.version)
        if summary.model_reused:
            print(f"model version {mv.version} reused: same adapters, data, code and evaluation "
                  f"(tag {models.KEY_TAG}); nothing registered")
        allowed = cfg.auto_promote if promote_when_passed is None else promote_when_passed
        if report.passed and allowed and summary.champion_before != summary.model_version:
            promote(cfg.model_name, str(mv.version), who=f"prefect:{summary.flow_run_id or 'local'}",
                    why=f"retrain flow run {summary.flow_run_id}: all {len(report.gates)} gates passed")
            summary.promoted = True
        champion = models.version_by_alias(cfg.model_name, models.CHAMPION)
        summary.champion_after = str(champion.version) if champion else None
        if not report.passed:
            raise GatesFailed(report_md)
        summary.status = "COMPLETED"
        run.finish("FINISHED")
        return asdict(summary)
    except BaseException as exc:
        summary.status, summary.error = "FAILED", str(exc)[-8000:]
        if not summary.stages or summary.stages[-1]["status"] == "ok":
            done = {s["name"] for s in summary.stages}
            failed = next((s for s in stages if s.name not in done), None)
            if failed is not None and not isinstance(exc, GatesFailed):
                summary.stages.append({"name": failed.name, "cmd": " ".join(failed.cmd), "seconds": None,
                                       "status": "failed"})
        try:
            run.finish("FAILED")
        except Exception as log_exc:  # noqa: BLE001 - keep the original error; the MLflow run stays RUNNING
            logger.warning("could not mark MLflow run %s failed: %s", run.run_id, log_exc)
        raise
    finally:
        summary.seconds = round(time.perf_counter() - t0, 1)
        summary.write(out)
        _publish(summary, report_md if report_md else (f"# tvau retrain FAILED\n\n```\n{summary.error}\n```\n"
                                                       if summary.error else None))
        logger.info("summary: %s", out)


def serve() -> None:
    """Run the deployment on this machine on its cron schedule (needs `prefect server start` or a
    PREFECT_API_URL: a temporary server does not schedule)."""
    retrain.serve(name="nightly", cron=CRON, parameters={"root": os.getcwd(), "params_path": "params.yaml"})


if __name__ == "__main__":
    import sys

    if "--serve" in sys.argv:
        serve()
    else:
        retrain()
