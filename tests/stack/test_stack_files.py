"""The stack's pieces that need no running service: secrets files, process bookkeeping, the CLI's
answers on a stack that never started, the compose file and the Kubernetes job templates."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tvau.stack import procs
from tvau.stack.secrets import SecretsError, ensure_secrets, write_client_files

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tvau.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_secrets_are_private_stable_and_refused_when_readable(tmp_path):
    s = ensure_secrets(tmp_path)
    d = tmp_path / "secrets"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "secrets.json").stat().st_mode) == 0o600
    assert len(set(s.values())) == 5  # all different
    assert ensure_secrets(tmp_path) == s  # generated once, then reused
    write_client_files(tmp_path, s, "127.0.0.1", 5433)
    pgpass = (d / "pgpass").read_text().splitlines()
    assert f"127.0.0.1:5433:mlflow:mlflow:{s.mlflow_db}" in pgpass
    assert stat.S_IMODE((d / "pgpass").stat().st_mode) == 0o600  # libpq ignores a looser one
    assert stat.S_IMODE((d / "aws-credentials").stat().st_mode) == 0o600
    (d / "secrets.json").chmod(0o644)
    with pytest.raises(SecretsError, match="readable by other users"):
        ensure_secrets(tmp_path)


def test_cli_refuses_readable_secrets_with_one_line(tmp_path):
    ensure_secrets(tmp_path / "st")
    secret_file = tmp_path / "st" / "secrets" / "secrets.json"
    secret_file.chmod(0o640)
    r = _cli("stack", "up", "--dir", str(tmp_path / "st"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and str(secret_file) in r.stderr and "chmod 600" in r.stderr
    assert "Traceback" not in r.stderr


def test_status_and_env_of_a_stack_never_started(tmp_path):
    r = _cli("stack", "status", "--json", "--dir", str(tmp_path / "none"))
    assert r.returncode == 1
    st = json.loads(r.stdout)  # --json: nothing but JSON on stdout
    assert set(st["services"]) == {"postgres", "s3", "mlflow", "prefect", "worker"}
    assert all(s["healthy"] is False and s["url"] is None for s in st["services"].values())
    r = _cli("stack", "env", "--dir", str(tmp_path / "none"))
    assert r.returncode == 2 and "never been started" in r.stderr and r.stdout == ""


def test_processes_are_found_by_marker_and_stopped_as_a_group(tmp_path):
    env = {**os.environ, procs.MARKER: str(tmp_path)}
    # A parent that starts a child: stopping the group must take both.
    proc = procs.spawn(
        ["sh", "-c", "sleep 60 & sleep 60; wait"], env=env, log=tmp_path / "x.log",
        pidfile=tmp_path / "x.pid", cwd=tmp_path,
    )
    assert procs.read_pid(tmp_path / "x.pid") == proc.pid
    deadline = time.monotonic() + 10
    while len(procs.marked(tmp_path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(procs.marked(tmp_path)) == 3  # sh and its two sleeps
    assert procs.marked(tmp_path / "other") == []
    procs.stop_groups([proc.pid], timeout=5)
    proc.wait(5)
    assert procs.marked(tmp_path) == []
    assert not procs.alive(proc.pid)


def test_compose_file_describes_the_stack_without_secrets():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    assert {"postgres", "s3", "mlflow", "prefect-server", "worker"} <= set(compose["services"])
    assert set(compose["secrets"]) == {"postgres_password", "mlflow_db_password", "prefect_db_password",
                                      "aws_credentials"}
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for key in (svc.get("environment") or {}):
            assert not any(w in key for w in ("PASSWORD", "SECRET", "ACCESS_KEY")) or key.endswith("_FILE"), key
    mlflow = " ".join(compose["services"]["mlflow"]["command"])
    assert "postgresql+psycopg2://mlflow@postgres" in mlflow and "--artifacts-destination s3://tvau/mlflow" in mlflow
    gpu = compose["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def test_compose_file_validates_with_the_docker_client(tmp_path):
    """`docker compose config` where the Compose v2 plugin exists, and the standalone
    docker-compose (Debian 12's 1.29) where that exists. `make test` installs the latter when
    neither is there (Makefile: system-deps), so a missing client is a failure, not a skip."""
    clients = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 check=False).returncode == 0:
        clients.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        clients.append(["docker-compose"])
    assert clients, "no Docker Compose client: run `make system-deps` (installs Debian's docker-compose)"
    # A copy with stand-in secret files, so the check never needs (or reads) real ones.
    infra = tmp_path / "infra"
    shutil.copytree(INFRA, infra, ignore=shutil.ignore_patterns("secrets"))
    (infra / "secrets").mkdir()
    for name in ("postgres_password", "mlflow_db_password", "prefect_db_password", "aws_credentials"):
        (infra / "secrets" / name).write_text("stand-in\n")
    for client in clients:
        r = subprocess.run([*client, "-f", str(infra / "docker-compose.yml"), "--profile", "gpu", "config"],
                           capture_output=True, text=True, check=False, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "worker-gpu" in r.stdout and "stand-in" not in r.stdout


@pytest.mark.parametrize("kind,gpus", [("train", 8), ("score", 1)])
def test_kubernetes_job_templates_request_gpus(kind, gpus):
    from prefect.server.schemas.actions import WorkPoolCreate
    from prefect.utilities.templating import apply_values

    template = json.loads((INFRA / "k8s" / f"{kind}-gpu-job-template.json").read_text())
    # What the Prefect server checks when the pool is created (every placeholder is declared).
    WorkPoolCreate(name=f"tvau-{kind}-gpu", type="kubernetes", base_job_template=template)
    props = template["variables"]["properties"]
    defaults = {k: v["default"] for k, v in props.items() if "default" in v}
    job = apply_values(template["job_configuration"], defaults)
    container = job["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
    assert container["envFrom"][0]["secretRef"]["name"] == "tvau-s3-credentials"
    assert not any(k.startswith(("AWS_SECRET", "AWS_ACCESS")) for k in job["env"])
    # Overriding per deployment (job_variables) changes the request.
    job = apply_values(template["job_configuration"], {**defaults, "gpu_count": 2})
    assert job["job_manifest"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == 2
