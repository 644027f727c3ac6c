"""The production-like stack end to end, for real: `tvau stack up` (PostgreSQL, rclone S3, MLflow,
Prefect server, process work pool, worker) -> `prefect deploy --all` of the project's prefect.yaml
-> the worker runs the retrain deployment (every DVC stage of the real pipeline, on a tiny copy of
the project: tests/stack/tiny_project.py) -> the model lands in the MLflow server's registry
(PostgreSQL) with its artifacts in S3 and becomes champion -> the worker runs the nightly scoring
deployment, which reads `models:/tvau@champion` from there and scores footage in S3 -> `down` ->
`up` -> every run, model version, flow run, deployment and object still there -> no generated
secret in any log, artifact, MLflow param or command line -> `down` leaves no process behind.

The deployments are registered exactly as prefect.yaml declares them; each run overrides only the
parameters that point it at the tiny copy (`prefect deployment run --params`): the retrain run's
`root`, the scoring run's `params_path` (the tiny copy's sizes) and `run_date` (so the test
knows tonight's folder). Everything else (entrypoints, pull step, work pool, the scoring prefixes
`s3://tvau/footage/{date}/` -> `s3://tvau/scores/{date}/`, `models:/tvau@champion`) is the
project's own."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.stack import tiny_project as tiny
from tvau.stack import procs
from tvau.stack.stack import SERVICES

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

RETRAIN = "tvau-retrain/nightly"
SCORE = "score-night/nightly"
RUN_DATE = "2026-11-27"  # the scoring run's date: its folder under the deployment's {date} prefixes
MODEL = "tvau"  # registry.model_name of the project (and of the tiny copy)


def _cli(*args: str, env: dict | None = None, check: bool = True, timeout: float = 400) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "tvau.cli", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"tvau {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def _prefect(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    prefect = Path(sys.executable).parent / "prefect"
    r = subprocess.run(
        [str(prefect), "--no-prompt", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert r.returncode == 0, f"prefect {' '.join(args)} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _get_json(url: str, data: dict | None = None):
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _s3_client(env: dict):
    import boto3

    creds = configparser.ConfigParser()
    creds.read(env["AWS_SHARED_CREDENTIALS_FILE"])
    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=creds["default"]["aws_access_key_id"],
        aws_secret_access_key=creds["default"]["aws_secret_access_key"],
    )


def _keys(s3, prefix: str) -> list[str]:
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tvau", Prefix=prefix)
            for o in page.get("Contents", [])]


@pytest.fixture()
def stack_dir():
    # Not pytest's tmp_path: its parent is 0700 and PostgreSQL runs as another account when the
    # tests run as root; every folder above the cluster must be searchable by that account.
    base = Path(tempfile.mkdtemp(prefix="tvau-stack-test-"))
    base.chmod(0o711)
    d = base / "stack"
    params = base / "params.yaml"
    # Poll often: the test waits for the worker to pick its runs up.
    params.write_text("stack:\n  worker_poll_seconds: 1.0\n  prefect_ui: false\n  start_timeout_s: 240\n")
    try:
        yield d, params
    finally:
        _cli("stack", "down", "--dir", str(d), "--params", str(params), check=False)
        shutil.rmtree(base, ignore_errors=True)


def _status(d: Path, params: Path) -> tuple[int, dict]:
    r = _cli("stack", "status", "--json", "--dir", str(d), "--params", str(params), check=False)
    return r.returncode, json.loads(r.stdout)


def _run_deployment(name: str, parameters: dict, env: dict, api: str) -> dict:
    r = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deployment", "run", name,
         "--params", json.dumps(parameters), "--watch", "--watch-interval", "1", "--watch-timeout", "400"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=450, check=False,
    )
    m = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout)
    assert m, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    fr = _get_json(f"{api}/flow_runs/{m.group(1)}")
    if fr["state_type"] != "COMPLETED":  # say why: the flow run's own log lines
        logs = _get_json(f"{api}/logs/filter", {"logs": {"flow_run_id": {"any_": [fr["id"]]}}, "limit": 200})
        text = "\n".join(rec["message"] for rec in logs)[-6000:]
        raise AssertionError(f"{name}: {fr['state_type']} {fr['state'].get('message')}\n{text}")
    return fr


def test_stack_runs_the_project_deployments_and_keeps_everything_across_a_restart(stack_dir):
    from tvau.model.config import ModelConfig
    from tvau.model.tiny import ensure_tiny

    d, params = stack_dir
    opts = ("--dir", str(d), "--params", str(params))
    timings = {}
    # The tiny copy of the project that the retrain deployment runs on (its tiny backbone is the
    # checkout's own cache, built once per checkout).
    t0 = time.monotonic()
    cache = (REPO / ModelConfig().cache_dir).resolve()
    ensure_tiny(cache, 0)
    project = tiny.make_tiny_project(d.parent / "project", cache)
    timings["tiny_project"] = time.monotonic() - t0

    # -- cold start: every service started and healthy. The caller's shell carries a stale
    # MLFLOW_REGISTRY_URI (as a user's might, and as earlier tests leave through
    # mlflow.set_registry_uri): the services and the flow runs must not inherit it.
    stale = dict(os.environ, MLFLOW_REGISTRY_URI=f"sqlite:///{d.parent / 'stale-registry.db'}")
    t0 = time.monotonic()
    up = json.loads(_cli("stack", "up", "--json", *opts, env=stale).stdout)
    timings["cold_up"] = time.monotonic() - t0
    assert up["started"] == list(SERVICES)
    rc, st = _status(d, params)
    assert rc == 0 and st["healthy"]
    for name in SERVICES:
        assert st["services"][name]["healthy"] is True, name
        assert st["services"][name]["url"].startswith(("http://127.0.0.1:", "postgresql://127.0.0.1:")), name
    pids = {n: s["pid"] for n, s in st["services"].items()}

    secrets_dir = d / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for f in secrets_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    secrets = json.loads((secrets_dir / "secrets.json").read_text())
    assert len(secrets) == 5 and all(len(v) >= 16 for v in secrets.values())

    # -- a second `up` is a no-op: nothing started, same processes
    again = json.loads(_cli("stack", "up", "--json", *opts, env=stale).stdout)
    assert again["started"] == []
    assert {n: s["pid"] for n, s in again["status"]["services"].items()} == pids

    # -- a service that died is restarted by `up`, and only that one
    os.killpg(pids["worker"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.alive(pids["worker"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    rc, st = _status(d, params)
    assert rc == 1 and st["services"]["worker"]["healthy"] is False and st["services"]["mlflow"]["healthy"]
    again = json.loads(_cli("stack", "up", "--json", *opts, env=stale).stdout)
    assert again["started"] == ["worker"] and again["status"]["healthy"]

    client = json.loads(_cli("stack", "env", "--json", *opts).stdout)
    assert not any(v in json.dumps(client) for v in secrets.values())
    # Inherited MLFLOW_* variables are dropped: earlier tests in this process set MLFLOW_REGISTRY_URI
    # (mlflow.set_registry_uri exports it), which would send a client's registry calls elsewhere.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {**inherited, **client, "PREFECT_HOME": str(d.parent / "client-prefect-home")}
    api = client["PREFECT_API_URL"]

    # -- the project's deployments, registered as prefect.yaml declares them
    t0 = time.monotonic()
    _prefect("deploy", "--all", "--prefect-file", str(REPO / "prefect.yaml"), env=env)
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    for dep in declared:
        flow_name = "score-night" if dep["entrypoint"].startswith("flows/score.py") else "tvau-retrain"
        got = _get_json(f"{api}/deployments/name/{flow_name}/{dep['name']}")
        assert got["work_pool_name"] == "tvau-process" and got["parameters"] == dep["parameters"]
        assert got["pull_steps"] == declared_pull(), got["pull_steps"]
    timings["deploy"] = time.monotonic() - t0

    # -- retraining through the worker: every stage of the real pipeline on the tiny copy
    t0 = time.monotonic()
    fr_retrain = _run_deployment(RETRAIN, {"root": str(project)}, env, api)
    timings["retrain_run"] = time.monotonic() - t0
    assert fr_retrain["work_pool_name"] == "tvau-process"
    summary = json.loads((project / ".tvau" / "runs" / fr_retrain["id"] / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["data", "quality", "build", "pretrain", "train_ahd", "train_rae",
                                                       "evaluate"]
    assert summary["status"] == "COMPLETED" and summary["promoted"] and summary["gates"]["passed"]
    assert summary["tracking_uri"] == client["MLFLOW_TRACKING_URI"]  # the stack's server, not SQLite
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert {"pretrain_vision", "pretrain_language", "synthesise", "validate", "train_ahd", "train_rae", "evaluate"} <= set(lock["stages"])

    from mlflow import MlflowClient

    mlc = MlflowClient(tracking_uri=client["MLFLOW_TRACKING_URI"], registry_uri=client["MLFLOW_TRACKING_URI"])
    champion = mlc.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == summary["model_version"] and champion.tags["gates"] == "passed"
    parent = mlc.get_run(summary["mlflow_run_id"])
    assert parent.info.status == "FINISHED" and champion.run_id == parent.info.run_id
    assert parent.data.tags.get("prefect.flow_run_id") == fr_retrain["id"]
    # the pyfunc's adapters are an object in S3 (through the MLflow server's artifact proxy),
    # byte-identical to what train_rae wrote
    s3 = _s3_client(client)
    adapters = (project / "data" / "models" / "tvau" / "adapters.safetensors").read_bytes()
    # (one model logged in the experiment; the download through models:/tvau@champion after the
    # restart below checks that the registry points at this object)
    exp_keys = _keys(s3, f"mlflow/{parent.info.experiment_id}/")
    (key,) = [k for k in exp_keys if k.endswith("adapters.safetensors")]
    assert s3.get_object(Bucket="tvau", Key=key)["Body"].read() == adapters
    assert (d / "s3" / "tvau" / key).read_bytes() == adapters  # rclone keeps it as a plain file
    # the gate report is an artifact of the parent run
    assert f"mlflow/{parent.info.experiment_id}/{parent.info.run_id}/artifacts/gates/gates.json" in exp_keys

    # -- nightly scoring through the worker, with the champion read from the stack's registry
    footage = f"footage/{RUN_DATE}/"
    video = min((project / "data" / "synth").rglob("*.mp4"))
    s3.upload_file(str(video), "tvau", footage + "cam1/" + video.name)
    s3.put_object(Bucket="tvau", Key=footage + "cam2/broken.mp4", Body=b"not a video at all")
    t0 = time.monotonic()
    fr_score = _run_deployment(SCORE, {"params_path": str(project / "params.yaml"), "run_date": RUN_DATE}, env, api)
    timings["score_run"] = time.monotonic() - t0
    scores = _keys(s3, f"scores/{RUN_DATE}/")
    manifests = [k for k in scores if k.endswith("manifest.json")]
    assert len(manifests) == 1 and "cam1" in manifests[0], scores
    manifest = json.loads(s3.get_object(Bucket="tvau", Key=manifests[0])["Body"].read())
    assert manifest["model"]["uri"] == "models:/tvau@champion"
    assert (manifest["model"]["name"], manifest["model"]["version"], manifest["model"]["run_id"]) == (
        MODEL, champion.version, parent.info.run_id)
    (quarantined,) = [k for k in scores if "/quarantine/" in k]
    record = json.loads(s3.get_object(Bucket="tvau", Key=quarantined)["Body"].read())
    assert record["input"]["key"] == footage + "cam2/broken.mp4" and record["reason"] == "not a video"
    assert any("/summary/" in k for k in scores), scores

    # No secret on any command line of the stack's processes (visible to every user in `ps`).
    cmdlines = b"\n".join(Path(f"/proc/{p}/cmdline").read_bytes() for p in procs.marked(d.resolve()))
    assert cmdlines and not any(v.encode() in cmdlines for v in secrets.values())

    # -- down: nothing left running
    t0 = time.monotonic()
    _cli("stack", "down", *opts)
    timings["down"] = time.monotonic() - t0
    assert procs.marked(d.resolve()) == []
    rc, st = _status(d, params)
    assert rc == 1 and not any(s["healthy"] for s in st["services"].values())

    # -- warm start: runs, registry, flow runs, deployments and objects all still there
    t0 = time.monotonic()
    up = json.loads(_cli("stack", "up", "--json", *opts, env=stale).stdout)
    timings["warm_up"] = time.monotonic() - t0
    assert up["started"] == list(SERVICES) and up["status"]["healthy"]
    t0 = time.monotonic()
    client2 = json.loads(_cli("stack", "env", "--json", *opts).stdout)
    assert client2 == client  # same URLs after a restart: the ports are remembered
    mlc = MlflowClient(tracking_uri=client["MLFLOW_TRACKING_URI"], registry_uri=client["MLFLOW_TRACKING_URI"])
    assert mlc.get_run(parent.info.run_id).data.params == parent.data.params
    assert mlc.get_model_version_by_alias(MODEL, "champion").version == champion.version
    # As a scoring job would: a fresh client process that only has the stack's environment.
    script = (
        "import sys, mlflow; "
        f"print(mlflow.artifacts.download_artifacts('models:/{MODEL}@champion', dst_path=sys.argv[1]))"
    )
    dl = subprocess.run(
        [sys.executable, "-c", script, str(d.parent / "dl")],
        env=env, cwd=d.parent, capture_output=True, text=True, timeout=120, check=False,
    )
    assert dl.returncode == 0, dl.stderr[-3000:]
    got = Path(dl.stdout.strip().splitlines()[-1])
    assert [p.read_bytes() for p in got.rglob("adapters.safetensors")] == [adapters]
    s3 = _s3_client(client)
    assert s3.get_object(Bucket="tvau", Key=key)["Body"].read() == adapters
    assert _keys(s3, f"scores/{RUN_DATE}/") == scores
    for name, fr in ((RETRAIN, fr_retrain), (SCORE, fr_score)):
        assert _get_json(f"{api}/flow_runs/{fr['id']}")["state_type"] == "COMPLETED"
        assert _get_json(f"{api}/deployments/name/{name}")["work_pool_name"] == "tvau-process"
    timings["checks_after_restart"] = time.monotonic() - t0

    # -- no generated secret anywhere: logs, S3 objects (artifacts), the database files, MLflow
    # params, and what the flow runs wrote in the project (summaries, DVC outputs, metrics)
    needles = [v.encode() for v in secrets.values()]
    scanned = 0
    for f in [*d.rglob("*"), *project.rglob("*")]:
        if f.is_file() and secrets_dir not in f.parents and ".git" not in f.relative_to(d.parent).parts:
            data = f.read_bytes()
            scanned += 1
            assert not any(n in data for n in needles), f"a secret appears in {f}"
    assert scanned > 50 and any(d.joinpath("logs").iterdir())
    all_runs = mlc.search_runs([e.experiment_id for e in mlc.search_experiments()])
    assert len(all_runs) >= 7  # the parent run and one child per stage
    for r in all_runs:
        assert not any(v in json.dumps(r.data.params) for v in secrets.values())

    # -- down again: no stray process, a second down is harmless
    _cli("stack", "down", *opts)
    _cli("stack", "down", *opts)
    assert procs.marked(d.resolve()) == []
    print(f"stack timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}")


def declared_pull() -> list:
    """prefect.yaml's pull step as the server stores it: still templated, resolved by the flow run."""
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["pull"]
