"""The retraining pipeline as plain functions (flows/retrain.py wraps each in a Prefect task).

Stages run as subprocesses in the repository (`dvc repro <stage>` by default), so each one is exactly
what `dvc repro` would do by hand, DVC skips what is up to date, and dvc.lock pins the result.
Then: gate the candidate (data/metrics/evaluate.json + registry/policy.yaml + the champion's
metrics), log everything to one parent MLflow run (a child run per stage), register the candidate,
and promote it when the policy allows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tvau.registry.gates import GateReport, check_gates, read_eval
from tvau.registry.policy import load_policy


@dataclass(frozen=True)
class StageSpec:
    name: str
    cmd: list[str]  # run in the repository root; "dvc" resolves to this environment's dvc
    metrics: list[str] = field(default_factory=list)  # JSON files logged as the stage's MLflow metrics
    artifacts: list[str] = field(default_factory=list)  # files/directories logged as its artifacts
    retries: int = 0  # only where a retry can help (e.g. a stage that pulls from a remote)


def default_stages() -> list[StageSpec]:
    """data -> quality gate -> training sets -> backbone pretraining -> train AHD -> train RAE ->
    evaluate (dvc.yaml's stages). Pretraining comes after the gate, so bad data costs no minutes of it;
    DVC skips it whenever its params and code are unchanged (it never reads the footage)."""
    m = "data/metrics/"
    return [
        StageSpec("data", ["dvc", "repro", "refine"], [m + "annotate.json", m + "timelines.json", m + "refine.json"]),
        StageSpec("quality", ["dvc", "repro", "validate"], [m + "validate.json"],
                  ["data/quality/report.md", "data/quality/report.json", "data/quality/data_docs"]),
        StageSpec("build", ["dvc", "repro", "build"], [m + "build.json"]),
        StageSpec("pretrain", ["dvc", "repro", "pretrain_language"], [m + "pretrain_vision.json",
                                                                     m + "pretrain_backbone.json"]),
        StageSpec("train_ahd", ["dvc", "repro", "train_ahd"], [m + "train_ahd.json"]),
        StageSpec("train_rae", ["dvc", "repro", "train_rae"], [m + "train_rae.json"]),
        StageSpec("evaluate", ["dvc", "repro", "evaluate"], [m + "evaluate.json"], ["data/evaluate"]),
    ]


class StageFailed(RuntimeError):
    """A stage's command failed; the message ends with the tail of its output."""


@dataclass
class StageResult:
    name: str
    cmd: list[str]
    seconds: float
    output_tail: str


def stage_env() -> dict[str, str]:
    """This interpreter's bin directory first on PATH, so `dvc` and the stages' `tvau ...` commands
    are this installation's."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_stage(spec: StageSpec, root: str | Path, timeout_s: float | None = None) -> StageResult:
    root = Path(root)
    env = stage_env()
    exe = shutil.which(spec.cmd[0], path=env["PATH"]) or spec.cmd[0]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([exe, *spec.cmd[1:]], cwd=root, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)  # the exit status is checked below
    except subprocess.TimeoutExpired:
        raise StageFailed(f"stage {spec.name}: `{' '.join(spec.cmd)}` ran past {timeout_s} s") from None
    except FileNotFoundError:
        raise StageFailed(f"stage {spec.name}: command not found: {spec.cmd[0]}") from None
    seconds = time.perf_counter() - t0
    tail = (proc.stdout + proc.stderr)[-4000:]
    if proc.returncode != 0:
        extra = ""
        if spec.name == "quality":  # the data-quality gate: say which checks failed
            report = root / "data" / "quality" / "report.md"
            if report.is_file():
                extra = "\n\n" + report.read_text()[-6000:]
        raise StageFailed(f"stage {spec.name}: `{' '.join(spec.cmd)}` exited {proc.returncode}\n{tail}{extra}")
    return StageResult(spec.name, spec.cmd, seconds, tail)


def read_metrics_files(root: str | Path, files: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in files:
        p = Path(root) / f
        if p.is_file():
            try:
                out[p.stem] = json.loads(p.read_text())
            except json.JSONDecodeError:
                continue  # a stage's own file; the stage already succeeded, so do not fail the run
    return out


METRIC_ORDER = ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc", "yes_no_accuracy", "bleu4_target",
                "bleu4_trajectory")


def metrics_table(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Model beside baseline, one row per metric, with the 95% intervals (validation and holdout)."""
    rows = []
    hold = evaluation.get("holdout") or {}
    for m in METRIC_ORDER:
        mod, base = (evaluation.get("model") or {}).get(m), (evaluation.get("baseline") or {}).get(m)
        if mod is None and base is None:
            continue
        hm, hb = (hold.get("model") or {}).get(m) or {}, (hold.get("baseline") or {}).get(m) or {}
        rows.append({"metric": m, "model": _r(mod, "value"), "model_low": _r(mod, "low"),
                     "model_high": _r(mod, "high"), "baseline": _r(base, "value"),
                     "holdout_model": _r(hm, "value"), "holdout_baseline": _r(hb, "value")})
    return rows


def _r(entry: dict | None, key: str) -> float | None:
    v = (entry or {}).get(key)
    return round(float(v), 4) if isinstance(v, (int, float)) else None


def gate_candidate(root: str | Path, eval_json: str, policy_path: str, model_name: str
                   ) -> tuple[dict[str, Any], GateReport]:
    """Read the evaluation report and the policy, look up the champion, check every gate."""
    from tvau.registry.models import champion_metrics

    root = Path(root)
    evaluation = read_eval(root / eval_json)
    policy = load_policy(root / policy_path)
    return evaluation, check_gates(evaluation, policy, champion_metrics(model_name))


CODE_FILES = ("params.yaml", "dvc.yaml", "registry/policy.yaml")  # besides the tvau package and flows/


def _tree_digest(files: list[tuple[str, Path]]) -> str:
    from tvau.storage import sha256_file

    h = hashlib.sha256()
    for name, path in sorted(files):
        h.update(f"{name}\0{sha256_file(path)}\n".encode())
    return h.hexdigest()


def code_digest(root: str | Path) -> str:
    """sha256 over the code and configuration that make and judge a model: every .py file of the
    installed tvau package (the one the stages run) and of <root>/flows, plus params.yaml, dvc.yaml
    and the gate policy. Content only (no paths outside the package, no timestamps, no git state)."""
    import tvau

    root = Path(root)
    pkg = Path(tvau.__file__).resolve().parent
    files = [(f"tvau/{p.relative_to(pkg)}", p) for p in pkg.rglob("*.py") if "__pycache__" not in p.parts]
    if (root / "flows").is_dir():
        files += [(f"flows/{p.relative_to(root / 'flows')}", p) for p in (root / "flows").rglob("*.py")
                  if "__pycache__" not in p.parts]
    files += [(f, root / f) for f in CODE_FILES if (root / f).is_file()]
    return _tree_digest(files)


def candidate_identity(root: str | Path, model_dir: str | Path, eval_json: str | Path) -> dict[str, str]:
    """What makes two retrain runs' candidates the same model version: the adapters (sha256 of the
    adapters and model.json, tvau.model.trained.model_digest), the data (every DVC output hash in
    dvc.lock, the same digests the run logs as MLflow datasets), the code (code_digest) and the
    evaluation the gates read (its sha256). `key` hashes the four."""
    from tvau.model.trained import model_digest
    from tvau.registry.tracking import dvc_outputs
    from tvau.storage import sha256_file

    root = Path(root)
    lock = root / "dvc.lock"
    outs = {o.path: o.digest for o in dvc_outputs(lock)} if lock.is_file() else {}
    ident = {"adapters": model_digest(root / model_dir),
             "data": hashlib.sha256(json.dumps(outs, sort_keys=True).encode()).hexdigest(),
             "code": code_digest(root),
             "evaluation": sha256_file(root / eval_json)}
    ident["key"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    return ident


def register_or_reuse(run, root: str | Path, params: dict[str, Any], model_dir: str, evaluation: dict[str, Any],
                      report: GateReport, model_name: str, bundle_backbone_mb: float):
    """Log params, metrics, dvc.lock + datasets and the gate report to the parent run `run`
    (tracking.PipelineRun), then register the model version (tagged with the verdict and its
    candidate identity; `challenger` if it passed) -- or, when a version with the same identity and
    verdict exists (models.find_candidate), reuse it: no second upload, no new version; the run is
    tagged `tvau.reused_version`. Returns (ModelVersion, reused)."""
    from tvau.registry import models
    from tvau.registry.pyfunc import log_pyfunc

    root = Path(root)
    eval_json = params["registry"]["eval_json"]
    identity = candidate_identity(root, model_dir, eval_json)
    run.log(params=params, metrics={"gates_passed": float(report.passed),
                                    "validation": {k: v for k, v in evaluation.items()
                                                   if k in ("model", "baseline", "holdout", "majority_yes_no")}})
    run.log_dvc(root)
    tmp = root / ".tvau" / "tmp" / run.run_id
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "gates.md").write_text(report.to_markdown())
    (tmp / "gates.json").write_text(json.dumps(report.to_dict(), indent=1))
    run.log(artifacts=[tmp / "gates.md", tmp / "gates.json", root / eval_json], artifact_dir="gates")
    existing = models.find_candidate(model_name, identity, report.passed)
    if existing is not None:
        run.tag({"tvau.reused_version": str(existing.version), models.KEY_TAG: identity["key"]})
        return existing, True
    # The evaluation's calibration travels inside the logged model directory (calibration.json):
    # nightly scoring reads its threshold from the model it downloads, never from a typed number.
    uri = log_pyfunc(root / model_dir, run.run_id, root=root, bundle_backbone_mb=bundle_backbone_mb,
                     calibration=evaluation.get("calibration"))
    values = {m: (v or {}).get("value") for m, v in (evaluation.get("model") or {}).items()}
    return models.register_candidate(uri, report, values, model_name, pipeline_run=run.run_id, identity=identity), False


@dataclass
class RetrainSummary:
    """What one retrain run did; written to <out>/summary.json and read by the report page."""

    flow_run_id: str | None = None
    flow_run_url: str | None = None
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None
    tracking_uri: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)  # {name, cmd, seconds, status}
    gates: dict[str, Any] | None = None
    metrics_table: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    model_version: str | None = None
    model_reused: bool = False  # same adapters, data, code and evaluation as model_version: not registered again
    promoted: bool = False
    champion_before: str | None = None
    champion_after: str | None = None
    status: str = "RUNNING"  # COMPLETED | FAILED
    error: str | None = None
    seconds: float | None = None

    def write(self, path: str | Path) -> Path:
        from tvau.storage import write_json

        write_json(path, asdict(self))
        return Path(path)
