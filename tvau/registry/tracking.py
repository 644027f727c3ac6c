"""MLflow tracking for one pipeline run: a parent run, one child run per stage, the DVC lineage.

Everything goes through `MlflowClient` with explicit run ids, never the fluent "active run": the
active run is per thread and Prefect runs tasks in worker threads.

Datasets: every output that `dvc.lock` records becomes an MLflow input of the parent run, a
`MetaDataset` whose digest IS the DVC hash (md5, or "<md5>.dir" for a directory: 36 characters,
exactly MLflow's column width), so `tvau lineage` can check a model's data against `dvc.lock`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tvau.registry.config import RegistryConfig

GIT_COMMIT_TAG = "mlflow.source.git.commit"  # the tag MLflow itself uses for the commit
PARENT_TAG = "mlflow.parentRunId"
STAGE_TAG = "tvau.stage"
PIPELINE_TAG = "tvau.pipeline_run"


def configure(cfg: RegistryConfig, root: str | Path = ".") -> str:
    """Point MLflow (tracking and registry) at the configured store and make sure the experiment
    exists, with its artifacts under the project's working area for the default SQLite store.
    Returns the experiment id."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = cfg.resolved_tracking_uri(root)
    # Decided before set_tracking_uri, which also exports MLFLOW_TRACKING_URI (for subprocesses).
    art = cfg.artifact_root(root)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    if exp is not None:
        return exp.experiment_id
    location = None
    if art is not None:
        art.mkdir(parents=True, exist_ok=True)
        location = art.as_uri()
    try:
        return client.create_experiment(cfg.experiment, artifact_location=location)
    except Exception:  # created meanwhile by a concurrent run
        exp = client.get_experiment_by_name(cfg.experiment)
        if exp is None:
            raise
        return exp.experiment_id


def client():
    import mlflow
    from mlflow.tracking import MlflowClient

    return MlflowClient(mlflow.get_tracking_uri(), mlflow.get_registry_uri())


def git_commit(root: str | Path = ".") -> str | None:
    """HEAD of the checkout, or None outside git. A dirty tree is recorded separately."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty(root: str | Path = ".") -> bool | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             capture_output=True, text=True, check=True)
        return bool(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: MLflow params and metrics are flat."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class DvcOutput:
    stage: str
    path: str
    digest: str  # md5 or "<md5>.dir", as in dvc.lock
    size: int | None
    nfiles: int | None


def dvc_outputs(lock_path: str | Path) -> list[DvcOutput]:
    """Every output recorded in dvc.lock (stage order)."""
    lock = yaml.safe_load(Path(lock_path).read_text()) or {}
    outs = []
    for stage, body in (lock.get("stages") or {}).items():
        for o in body.get("outs") or []:
            digest = o.get("md5") or o.get("etag") or o.get("checksum")
            if digest:
                outs.append(DvcOutput(stage, o["path"], str(digest), o.get("size"), o.get("nfiles")))
    return outs


def _metric_items(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _params_items(params: dict[str, Any]) -> dict[str, str]:
    # MLflow caps a param value at 6000 characters; ours are short. Lists become JSON.
    return {k: (json.dumps(v) if isinstance(v, (list, tuple)) else str(v)) for k, v in flatten(params).items()}


@dataclass
class PipelineRun:
    """One parent MLflow run for one pipeline run; `stage()` adds a child run per stage."""

    run_id: str
    experiment_id: str

    @classmethod
    def start(cls, cfg: RegistryConfig, root: str | Path = ".", name: str | None = None,
              tags: dict[str, str] | None = None) -> PipelineRun:
        exp = configure(cfg, root)
        all_tags = {PIPELINE_TAG: "true", "mlflow.source.name": "flows/retrain.py",
                    "mlflow.source.type": "JOB", "mlflow.user": os.environ.get("USER", "unknown")}
        commit = git_commit(root)
        if commit:
            all_tags[GIT_COMMIT_TAG] = commit
            all_tags["tvau.git_dirty"] = str(git_dirty(root)).lower()
        all_tags |= tags or {}
        run = client().create_run(exp, run_name=name, tags=all_tags)
        return cls(run.info.run_id, exp)

    def stage(self, name: str, params: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
              artifacts: list[str | Path] | None = None, seconds: float | None = None,
              status: str = "FINISHED") -> str:
        """A finished child run for one stage: its params, numeric metrics (nested keys flattened),
        artifacts (files or directories) and wall time. Returns the child run id."""
        c = client()
        tags = {PARENT_TAG: self.run_id, STAGE_TAG: name}
        commit = c.get_run(self.run_id).data.tags.get(GIT_COMMIT_TAG)
        if commit:
            tags[GIT_COMMIT_TAG] = commit
        run = c.create_run(self.experiment_id, run_name=name, tags=tags)
        rid = run.info.run_id
        self.log(rid, params=params, metrics=metrics, artifacts=artifacts)
        if seconds is not None:
            c.log_metric(rid, "seconds", float(seconds))
        c.set_terminated(rid, status)
        return rid

    def log(self, run_id: str | None = None, params: dict[str, Any] | None = None,
            metrics: dict[str, Any] | None = None, artifacts: list[str | Path] | None = None,
            artifact_dir: str | None = None) -> None:
        from mlflow.entities import Metric, Param

        c = client()
        rid = run_id or self.run_id
        now = int(time.time() * 1000)
        p = [Param(k, v) for k, v in _params_items(params or {}).items()]
        m = [Metric(k, v, now, 0) for k, v in _metric_items(metrics or {}).items()]
        for i in range(0, max(len(p), len(m)), 100):  # log_batch takes at most 100 params per call
            c.log_batch(rid, metrics=m[i:i + 100], params=p[i:i + 100])
        for a in artifacts or []:
            a = Path(a)
            if a.is_dir():
                c.log_artifacts(rid, str(a), artifact_path=(f"{artifact_dir}/" if artifact_dir else "") + a.name)
            elif a.is_file():
                c.log_artifact(rid, str(a), artifact_path=artifact_dir)

    def log_dvc(self, root: str | Path = ".") -> list[DvcOutput]:
        """dvc.lock and params.yaml as artifacts, every DVC output as a dataset input of the parent
        run (digest = DVC hash)."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        root = Path(root)
        lock = root / "dvc.lock"
        if not lock.is_file():
            return []
        self.log(artifacts=[lock, root / "params.yaml", root / "dvc.yaml"], artifact_dir="dvc")
        outs = dvc_outputs(lock)
        inputs = []
        for o in outs:
            with warnings.catch_warnings():
                # MLflow registers the local-file source class twice ("" and "file" schemes) and warns
                # that the path "can be interpreted in multiple ways": both are the same local source.
                warnings.filterwarnings("ignore", message="The specified dataset source")
                source = resolve_dataset_source(str((root / o.path).resolve()))
            ds = MetaDataset(source, name=o.path, digest=o.digest)
            inputs.append(DatasetInput(ds._to_mlflow_entity(), tags=[
                InputTag("mlflow.data.context", o.stage), InputTag("tvau.dvc_stage", o.stage)]))
        if inputs:
            client().log_inputs(self.run_id, datasets=inputs)
        return outs

    def tag(self, tags: dict[str, str]) -> None:
        c = client()
        for k, v in tags.items():
            c.set_tag(self.run_id, k, v)

    def finish(self, status: str = "FINISHED") -> None:
        client().set_terminated(self.run_id, status)

    def url(self) -> str:
        return run_url(self.run_id, self.experiment_id)


def run_url(run_id: str, experiment_id: str) -> str:
    """Link to the run in the MLflow UI (MLFLOW_UI_URL, default the local `mlflow ui` address);
    for the default SQLite store the UI is `mlflow ui --backend-store-uri sqlite:///...`."""
    base = os.environ.get("MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
