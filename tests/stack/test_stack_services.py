"""The production-like stack end to end, for real: `tvau stack up` (PostgreSQL, rclone S3, MLflow,
Prefect server, process work pool, worker) -> a registered model whose artifact lands in S3 ->
a deployment registered with `prefect deploy` and run by the worker -> `down` -> `up` -> every
run, model version and object still there -> no generated secret in any log, artifact, MLflow
param or command line -> `down` leaves no process behind."""

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
import uuid
from pathlib import Path

import pytest

from tvau.stack import procs
from tvau.stack.stack import SERVICES

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# The deployments this test registers (with `prefect deploy --all --prefect-file ...`) and runs,
# with their parameters. Integration: point PREFECT_FILE at the project's prefect.yaml and list
# its retrain and nightly-scoring deployments here.
PREFECT_FILE = HERE / "prefect.yaml"
DEPLOYMENTS = {"stack-probe/probe": {"marker": f"probe-{uuid.uuid4().hex[:8]}"}}
MODEL_NAME = "tvau-stack-test"


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


def _run_deployment(name: str, parameters: dict, env: dict) -> str:
    r = _prefect(
        "deployment", "run", name, "--params", json.dumps(parameters),
        "--watch", "--watch-interval", "1", "--watch-timeout", "240", env=env,
    )
    m = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout)
    assert m, r.stdout
    return m.group(1)


def test_stack_up_run_restart_down(stack_dir):
    d, params = stack_dir
    opts = ("--dir", str(d), "--params", str(params))
    timings = {}

    # -- cold start: every service started and healthy
    t0 = time.monotonic()
    up = json.loads(_cli("stack", "up", "--json", *opts).stdout)
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
    again = json.loads(_cli("stack", "up", "--json", *opts).stdout)
    assert again["started"] == []
    assert {n: s["pid"] for n, s in again["status"]["services"].items()} == pids

    # -- a service that died is restarted by `up`, and only that one
    os.killpg(pids["worker"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.alive(pids["worker"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    rc, st = _status(d, params)
    assert rc == 1 and st["services"]["worker"]["healthy"] is False and st["services"]["mlflow"]["healthy"]
    again = json.loads(_cli("stack", "up", "--json", *opts).stdout)
    assert again["started"] == ["worker"] and again["status"]["healthy"]

    client = json.loads(_cli("stack", "env", "--json", *opts).stdout)
    assert not any(v in json.dumps(client) for v in secrets.values())
    # TVAU_REPO: the project's prefect.yaml sets each flow run's working directory from it.
    # Inherited MLFLOW_* variables are dropped: earlier tests in this process set MLFLOW_REGISTRY_URI
    # (mlflow.set_registry_uri exports it), which would send a client's registry calls elsewhere.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {**inherited, **client, "PREFECT_HOME": str(d.parent / "client-prefect-home"), "TVAU_REPO": str(REPO)}

    # -- a registered model version whose artifact goes through the MLflow server into S3
    t0 = time.monotonic()
    from mlflow import MlflowClient

    mlc = MlflowClient(tracking_uri=client["MLFLOW_TRACKING_URI"], registry_uri=client["MLFLOW_TRACKING_URI"])
    exp = mlc.create_experiment("stack-test")
    run = mlc.create_run(exp)
    mlc.log_param(run.info.run_id, "lr", "0.001")
    payload = os.urandom(4096)
    local = d.parent / "weights.bin"
    local.write_bytes(payload)
    mlc.log_artifact(run.info.run_id, str(local), artifact_path="model")
    mlc.set_terminated(run.info.run_id)
    mlc.create_registered_model(MODEL_NAME)
    mv = mlc.create_model_version(MODEL_NAME, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    mlc.set_registered_model_alias(MODEL_NAME, "champion", mv.version)

    s3 = _s3_client(client)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tvau", Prefix="mlflow/").get("Contents", [])]
    (key,) = [k for k in keys if k.endswith(f"{run.info.run_id}/artifacts/model/weights.bin")]
    assert s3.get_object(Bucket="tvau", Key=key)["Body"].read() == payload
    assert (d / "s3" / "tvau" / key).read_bytes() == payload  # rclone keeps it as a plain file

    timings["registry"] = time.monotonic() - t0
    # -- deployments registered against the stack's Prefect server and run by its worker
    t0 = time.monotonic()
    _prefect("deploy", "--all", "--prefect-file", str(PREFECT_FILE), env=env)
    api = client["PREFECT_API_URL"]
    flow_runs = {}
    for name, parameters in DEPLOYMENTS.items():
        fr_id = _run_deployment(name, parameters, env)
        fr = _get_json(f"{api}/flow_runs/{fr_id}")
        assert fr["state_type"] == "COMPLETED", fr["state"]
        assert fr["work_pool_name"] == "tvau-process"
        flow_runs[name] = fr_id
    if "stack-probe/probe" in DEPLOYMENTS:
        # The flow run (a process of the worker) reached the MLflow server and, through it, S3.
        marker = DEPLOYMENTS["stack-probe/probe"]["marker"]
        (probe,) = mlc.search_runs(
            [mlc.get_experiment_by_name("stack-probe").experiment_id], f"params.marker = '{marker}'"
        )
        assert (d / "s3" / "tvau" / "mlflow" / probe.info.experiment_id / probe.info.run_id
                / "artifacts" / "probe" / "marker.txt").read_text().strip().endswith(marker)

    timings["deploy_and_run"] = time.monotonic() - t0
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

    # -- warm start: runs, registry, deployments and objects all still there
    t0 = time.monotonic()
    up = json.loads(_cli("stack", "up", "--json", *opts).stdout)
    timings["warm_up"] = time.monotonic() - t0
    assert up["started"] == list(SERVICES) and up["status"]["healthy"]
    t0 = time.monotonic()
    client2 = json.loads(_cli("stack", "env", "--json", *opts).stdout)
    assert client2 == client  # same URLs after a restart: the ports are remembered
    mlc = MlflowClient(tracking_uri=client["MLFLOW_TRACKING_URI"], registry_uri=client["MLFLOW_TRACKING_URI"])
    assert mlc.get_run(run.info.run_id).data.params == {"lr": "0.001"}
    assert mlc.get_model_version_by_alias(MODEL_NAME, "champion").version == mv.version
    # As a scoring job would: a fresh client process that only has the stack's environment.
    script = (
        "import sys, mlflow; "
        f"print(mlflow.artifacts.download_artifacts('models:/{MODEL_NAME}@champion', dst_path=sys.argv[1]))"
    )
    dl = subprocess.run(
        [sys.executable, "-c", script, str(d.parent / "dl")],
        env=env, cwd=d.parent, capture_output=True, text=True, timeout=120, check=False,
    )
    assert dl.returncode == 0, dl.stderr[-3000:]
    got = dl.stdout.strip().splitlines()[-1]
    assert (Path(got) / "weights.bin").read_bytes() == payload
    assert _s3_client(client).get_object(Bucket="tvau", Key=key)["Body"].read() == payload
    for name, fr_id in flow_runs.items():
        assert _get_json(f"{api}/flow_runs/{fr_id}")["state_type"] == "COMPLETED"
        flow_name, dep_name = name.split("/")
        assert _get_json(f"{api}/deployments/name/{flow_name}/{dep_name}")["work_pool_name"] == "tvau-process"

    timings["checks_after_restart"] = time.monotonic() - t0
    # -- no generated secret anywhere: logs, S3 objects (artifacts), the database files, MLflow params
    needles = [v.encode() for v in secrets.values()]
    scanned = 0
    for f in d.rglob("*"):
        if f.is_file() and secrets_dir not in f.parents:
            data = f.read_bytes()
            scanned += 1
            assert not any(n in data for n in needles), f"a secret appears in {f}"
    assert scanned > 50 and any(d.joinpath("logs").iterdir())
    all_runs = mlc.search_runs([e.experiment_id for e in mlc.search_experiments()])
    assert len(all_runs) >= 2
    for r in all_runs:
        assert not any(v in json.dumps(r.data.params) for v in secrets.values())

    # -- down again: no stray process, a second down is harmless
    _cli("stack", "down", *opts)
    _cli("stack", "down", *opts)
    assert procs.marked(d.resolve()) == []
    print(f"stack timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
