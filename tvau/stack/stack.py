"""`tvau stack`: a production-like set of services on loopback, without Docker.

    PostgreSQL 15 ──┬── MLflow tracking server ── artifacts ──> S3 server (rclone)
                    └── Prefect server ── process work pool ── Prefect worker ── flow runs

Everything lives under one folder (`stack.dir`, default `.tvau/stack/`):

    stack.json        ports and the PostgreSQL OS account (no secrets)
    secrets/          0700: secrets.json, pgpass, aws-credentials (all 0600)
    postgres/data/    the database cluster (owned by the account PostgreSQL runs as)
    s3/               the S3 server's objects: one folder per bucket, one file per object
    prefect/          PREFECT_HOME of the Prefect server and worker
    logs/             one log per service
    run/              one pid file per service (PostgreSQL keeps its own postmaster.pid)

`up` starts what is not running and waits for each service to answer its health check; a
second `up` finds everything healthy and does nothing. `down` stops the services in reverse
order, then sweeps any process still carrying the stack's marker (see tvau.stack.procs).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tvau.stack import procs
from tvau.stack.config import StackConfig
from tvau.stack.secrets import (
    DB_ROLES,
    SUPERUSER,
    Secrets,
    aws_credentials_path,
    ensure_secrets,
    pgpass_path,
    write_client_files,
)
from tvau.storage import write_json

SERVICES = ("postgres", "s3", "mlflow", "prefect", "worker")
WORKER_NAME = "tvau-stack-worker"
REGION = "us-east-1"
# Client-side variables that must not leak from the caller's shell into the stack's services:
# the services get their endpoints and credentials from the stack alone.
_SCRUBBED = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_S3_ENDPOINT_URL",
    "PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_HOME", "PREFECT_PROFILE", "PGPASSWORD", "PGPASSFILE",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL",
)


class StackError(RuntimeError):
    """A service that cannot be started or reached; the message names the log to read."""


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "stack.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pg(self) -> Path:
        return self.root / "postgres"

    @property
    def pgdata(self) -> Path:
        return self.pg / "data"

    @property
    def s3data(self) -> Path:
        return self.root / "s3"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"


def _tool(name: str) -> str:
    """A console script of this environment (venv bin first, then PATH)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"`{name}` not found next to {sys.executable} or on PATH")
    return found


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers themselves bind: connections of a previous run in TIME_WAIT do not make
        # a port busy, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _http_status(url: str, timeout: float = 2.0, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):
        return 0, b""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


class Stack:
    def __init__(self, cfg: StackConfig, project_dir: Path | None = None, echo: Callable[[str], None] = print):
        self.cfg = cfg
        self.project_dir = (project_dir or Path.cwd()).resolve()
        root = Path(cfg.dir)
        self.layout = Layout((root if root.is_absolute() else self.project_dir / root).resolve())
        self.echo = echo

    # ------------------------------------------------------------------ state, ports, URLs

    def _state(self) -> dict:
        try:
            return json.loads(self.layout.state.read_text())
        except (OSError, ValueError):
            return {}

    def ports(self) -> dict[str, int | None]:
        """Ports in use: the configured ones, else those remembered from the last `up`."""
        remembered = self._state().get("ports", {})
        return {s: getattr(self.cfg.ports, s) or remembered.get(s) for s in SERVICES}

    def urls(self) -> dict[str, str | None]:
        p, h = self.ports(), self.cfg.host
        return {
            "postgres": p["postgres"] and f"postgresql://{h}:{p['postgres']}",
            "s3": p["s3"] and f"http://{h}:{p['s3']}",
            "mlflow": p["mlflow"] and f"http://{h}:{p['mlflow']}",
            "prefect": p["prefect"] and f"http://{h}:{p['prefect']}/api",
            "worker": p["worker"] and f"http://{h}:{p['worker']}/health",
        }

    def client_env(self) -> dict[str, str]:
        """What a client (a shell, a flow run, a test) needs to use the stack. No secret in it:
        the S3 keys stay in the credentials file that AWS_SHARED_CREDENTIALS_FILE points at."""
        u = self.urls()
        if not all(u.values()):
            raise StackError(f"the stack in {self.layout.root} has never been started (`tvau stack up`)")
        return {
            "MLFLOW_TRACKING_URI": u["mlflow"],
            "PREFECT_API_URL": u["prefect"],
            "AWS_ENDPOINT_URL": u["s3"],
            "MLFLOW_S3_ENDPOINT_URL": u["s3"],
            "AWS_SHARED_CREDENTIALS_FILE": str(aws_credentials_path(self.layout.root)),
            "AWS_DEFAULT_REGION": REGION,
        }

    def _resolve_ports(self) -> dict[str, int]:
        remembered = self._state().get("ports", {})
        chosen: dict[str, int] = {}
        holders = []  # keep picked ports bound until all are picked, so no two services share one
        try:
            for s in SERVICES:
                want = getattr(self.cfg.ports, s)
                old = remembered.get(s)
                if want:
                    chosen[s] = want
                elif old and (self._running(s) or _port_free(self.cfg.host, old)):
                    chosen[s] = old
                else:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.bind((self.cfg.host, 0))
                    holders.append(sock)
                    chosen[s] = sock.getsockname()[1]
                    if old:
                        self.echo(f"note: port {old} of {s} is taken by another program; using {chosen[s]}")
        finally:
            for sock in holders:
                sock.close()
        return chosen

    # ------------------------------------------------------------------ processes

    def _pid(self, service: str) -> int | None:
        if service == "postgres":
            # The postmaster's own pid file: first line is its pid.
            try:
                return int((self.layout.pgdata / "postmaster.pid").read_text().splitlines()[0])
            except (OSError, ValueError, IndexError):
                return None
        return procs.read_pid(self.layout.pidfile(service))

    def _running(self, service: str) -> bool:
        return procs.carries_marker(self._pid(service), self.layout.root)

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            {
                procs.MARKER: str(self.layout.root),
                "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # ------------------------------------------------------------------ health

    def _pg_ready(self, port: int) -> bool:
        r = subprocess.run(
            ["pg_isready", "-q", "-h", self.cfg.host, "-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-t", "2"],
            capture_output=True, check=False,
        )
        return r.returncode == 0

    def _s3_client(self, secrets: Secrets, port: int):
        import boto3  # heavy: import on use
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.cfg.host}:{port}",
            aws_access_key_id=secrets.s3_access_key,
            aws_secret_access_key=secrets.s3_secret_key,
            region_name=REGION,
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def _s3_ready(self, port: int, secrets: Secrets | None) -> bool:
        if secrets is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3_client(secrets, port).list_buckets()  # a signed request: proves the keys work
            return True
        except (BotoCoreError, ClientError):
            return False

    def _worker_ready(self, port: int, prefect_port: int | None) -> bool:
        if _http_status(f"http://{self.cfg.host}:{port}/health")[0] != 200 or not prefect_port:
            return False
        # ...and the server sees it polling the pool.
        code, body = _http_status(
            f"http://{self.cfg.host}:{prefect_port}/api/work_pools/{self.cfg.work_pool}/workers/filter", data=b"{}"
        )
        if code != 200:
            return False
        return any(w.get("name") == WORKER_NAME and w.get("status") == "ONLINE" for w in json.loads(body))

    def _probe(self, service: str, ports: dict, secrets: Secrets | None) -> bool:
        port = ports[service]
        if not port:
            return False
        h = self.cfg.host
        if service == "postgres":
            return self._pg_ready(port)
        if service == "s3":
            return self._s3_ready(port, secrets)
        if service == "mlflow":
            return _http_status(f"http://{h}:{port}/health")[0] == 200
        if service == "prefect":
            return _http_status(f"http://{h}:{port}/api/health")[0] == 200
        return self._worker_ready(port, ports.get("prefect"))

    def _load_secrets(self) -> Secrets | None:
        path = self.layout.root / "secrets" / "secrets.json"
        return ensure_secrets(self.layout.root) if path.exists() else None

    def status(self) -> dict:
        """{"dir", "services": {name: {"url", "healthy", "pid"}}, "healthy"} — cheap, starts nothing."""
        ports, urls = self.ports(), self.urls()
        secrets = self._load_secrets()
        services = {}
        for s in SERVICES:
            pid = self._pid(s)
            running = procs.carries_marker(pid, self.layout.root)
            services[s] = {
                "url": urls[s],
                "healthy": bool(running and self._probe(s, ports, secrets)),
                "pid": pid if running else None,
                "log": str(self.layout.log(s)),
            }
        if ports["mlflow"]:
            services["mlflow"]["ui"] = f"http://{self.cfg.host}:{ports['mlflow']}"
        if ports["prefect"] and self.cfg.prefect_ui:
            services["prefect"]["ui"] = f"http://{self.cfg.host}:{ports['prefect']}"
        services["worker"]["work_pool"] = self.cfg.work_pool
        services["s3"]["bucket"] = self.cfg.bucket
        return {
            "dir": str(self.layout.root),
            "healthy": all(v["healthy"] for v in services.values()),
            "services": services,
        }

    def _wait(self, service: str, ports: dict, secrets: Secrets, proc: subprocess.Popen | None) -> float:
        t0 = time.monotonic()
        deadline = t0 + self.cfg.start_timeout_s
        while time.monotonic() < deadline:
            if self._probe(service, ports, secrets):
                return time.monotonic() - t0
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"{service} exited with status {proc.returncode} while starting; "
                    f"see {self.layout.log(service)}:\n{_tail(self.layout.log(service))}"
                )
            time.sleep(0.3)
        raise StackError(
            f"{service} did not become healthy within {self.cfg.start_timeout_s:.0f} s; "
            f"see {self.layout.log(service)}:\n{_tail(self.layout.log(service))}"
        )

    # ------------------------------------------------------------------ PostgreSQL

    def _pg_account(self) -> str | None:
        """The OS account PostgreSQL runs as: None (ourselves) unless we are root."""
        if os.geteuid() != 0:
            return None
        name = self.cfg.postgres_os_user
        try:
            pwd.getpwnam(name)
        except KeyError:
            self.echo(f"creating the unprivileged system account '{name}' for PostgreSQL (it refuses to run as root)")
            r = subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin", name],
                capture_output=True, text=True, check=False,
            )
            if r.returncode != 0:
                raise StackError(f"useradd {name} failed: {r.stderr.strip()}") from None
        return name

    def _pg_run(self, argv: list[str], account: str | None, timeout: float) -> subprocess.CompletedProcess:
        env = self._base_env()
        env.update({"LC_ALL": "C.UTF-8", "HOME": str(self.layout.pg)})
        return subprocess.run(
            argv, env=env, cwd=self.layout.pg, capture_output=True, text=True, timeout=timeout, check=False,
            **procs.as_user(account),
        )

    def _start_postgres(self, port: int, secrets: Secrets) -> None:
        L = self.layout
        account = self._pg_account()
        L.pg.mkdir(parents=True, exist_ok=True)
        log = L.log("postgres")
        log.touch()
        if account is not None:
            pw = pwd.getpwnam(account)
            for p in (L.pg, log):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(L.pg, 0o700)
        if not (L.pgdata / "PG_VERSION").exists():
            # The superuser password goes to initdb through a file only the account can read.
            pwfile = L.pg / ".pwfile"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.postgres_superuser + "\n")
            if account is not None:
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            try:
                r = self._pg_run(
                    ["initdb", "-D", str(L.pgdata), "-U", SUPERUSER, "--pwfile", str(pwfile),
                     "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"],
                    account, timeout=self.cfg.start_timeout_s,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if r.returncode != 0:
                who = f"as '{account}' " if account else ""
                raise StackError(
                    f"initdb {who}failed for {L.pgdata} (every folder above it must be searchable by "
                    f"that account): {r.stderr.strip()}"
                )
        options = (
            f"-c listen_addresses={self.cfg.host} -c port={port} -c unix_socket_directories='' "
            "-c password_encryption=scram-sha-256"
        )
        r = self._pg_run(
            ["pg_ctl", "-D", str(L.pgdata), "-l", str(log), "-o", options, "-w",
             "-t", str(int(self.cfg.start_timeout_s)), "start"],
            account, timeout=self.cfg.start_timeout_s + 10,
        )
        if r.returncode != 0:
            raise StackError(f"pg_ctl start failed: {r.stderr.strip()}; see {log}:\n{_tail(log)}")

    def _bootstrap_databases(self, port: int, secrets: Secrets) -> None:
        """One role and one database per service; passwords sent as SCRAM verifiers, so the
        plain text never reaches the server (nor its log, whatever its log settings)."""
        import psycopg2
        from psycopg2 import sql
        from psycopg2.extensions import encrypt_password

        conn = psycopg2.connect(
            host=self.cfg.host, port=port, user=SUPERUSER, password=secrets.postgres_superuser, dbname="postgres",
            connect_timeout=10,
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for role in DB_ROLES:
                    verifier = encrypt_password(secrets.db_password(role), role, conn, "scram-sha-256")
                    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
                    verb = "ALTER" if cur.fetchone() else "CREATE"
                    cur.execute(
                        sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), [verifier]
                    )
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [role])
                    if not cur.fetchone():
                        cur.execute(
                            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(role), sql.Identifier(role))
                        )
        finally:
            conn.close()

    def _stop_postgres(self) -> None:
        if not self._running("postgres"):
            return
        account = None
        if os.geteuid() == 0:
            account = pwd.getpwuid(self.layout.pgdata.stat().st_uid).pw_name
        r = self._pg_run(["pg_ctl", "-D", str(self.layout.pgdata), "-m", "fast", "-w", "-t", "60", "stop"],
                         account, timeout=90)
        if r.returncode != 0:
            self.echo(f"warning: pg_ctl stop: {r.stderr.strip()}")

    # ------------------------------------------------------------------ the other services

    def s3_server_command(self, port: int, secrets: Secrets) -> tuple[list[str], dict[str, str]]:
        """How the S3 server is run: the one place that knows. The keys go through the
        environment, never the command line (which `ps` shows to every user).

        The project's own `tvau s3-server` runs rclone once it has `--data-dir` (and takes the
        key pair from TVAU_S3_ACCESS_KEY / TVAU_S3_SECRET_KEY); until then rclone is run
        directly, with the pair in RCLONE_AUTH_KEY as one CSV field (rclone reads list-valued
        variables as CSV)."""
        import inspect

        from tvau import s3server

        config = self.layout.root / "rclone.conf"
        config.touch()  # an empty config: rclone needs no remote to serve a local folder
        env = {"RCLONE_CONFIG": str(config)}
        if "data_dir" in inspect.signature(s3server.s3_server).parameters:
            argv = [
                sys.executable, "-m", "tvau.cli", "s3-server", "--port", str(port),
                "--data-dir", str(self.layout.s3data), "--bucket", self.cfg.bucket,
            ]
            env.update({"TVAU_S3_ACCESS_KEY": secrets.s3_access_key, "TVAU_S3_SECRET_KEY": secrets.s3_secret_key})
            return argv, env
        argv = [_tool("rclone"), "serve", "s3", "--addr", f"{self.cfg.host}:{port}", str(self.layout.s3data)]
        env["RCLONE_AUTH_KEY"] = f'"{secrets.s3_access_key},{secrets.s3_secret_key}"'
        return argv, env

    def _service_command(self, service: str, ports: dict, secrets: Secrets) -> tuple[list[str], dict[str, str]]:
        h, L = self.cfg.host, self.layout
        s3_url = f"http://{h}:{ports['s3']}"
        aws = {
            "AWS_SHARED_CREDENTIALS_FILE": str(aws_credentials_path(L.root)),
            "AWS_DEFAULT_REGION": REGION,
        }
        prefect_env = {
            "PREFECT_HOME": str(L.prefect_home),
            "PREFECT_API_URL": f"http://{h}:{ports['prefect']}/api",
        }
        if service == "s3":
            return self.s3_server_command(ports["s3"], secrets)
        if service == "mlflow":
            argv = [
                _tool("mlflow"), "server",
                # No password in the URI: psycopg2 reads it from PGPASSFILE. The driver is explicit:
                # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3.
                "--backend-store-uri", f"postgresql+psycopg2://mlflow@{h}:{ports['postgres']}/mlflow",
                "--artifacts-destination", f"s3://{self.cfg.bucket}/mlflow",
                "--host", h, "--port", str(ports["mlflow"]), "--workers", "1",
            ]
            env = {
                **aws,
                "PGPASSFILE": str(pgpass_path(L.root)),
                "MLFLOW_S3_ENDPOINT_URL": s3_url,
                # The job runner (huey consumers) is for GenAI evaluation jobs we do not use; off,
                # it is two processes fewer to start and to stop.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            }
            return argv, env
        if service == "prefect":
            argv = [
                _tool("prefect"), "server", "start", "--host", h, "--port", str(ports["prefect"]),
                "--analytics-off", "--ui" if self.cfg.prefect_ui else "--no-ui",
            ]
            env = {
                **prefect_env,
                "PGPASSFILE": str(pgpass_path(L.root)),
                "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                    f"postgresql+asyncpg://prefect@{h}:{ports['postgres']}/prefect",
            }
            return argv, env
        if service == "worker":
            argv = [
                _tool("prefect"), "worker", "start", "--pool", self.cfg.work_pool, "--type", "process",
                "--name", WORKER_NAME, "--with-healthcheck",
                # The worker creates the pool (with the process type's default job template) on
                # its first start; Prefect's own path, one CLI process fewer than `work-pool create`.
                "--create-pool-if-not-found",
            ]
            env = {
                **prefect_env,
                **aws,
                "PREFECT_WORKER_WEBSERVER_HOST": h,
                "PREFECT_WORKER_WEBSERVER_PORT": str(ports["worker"]),
                "PREFECT_WORKER_QUERY_SECONDS": str(self.cfg.worker_poll_seconds),
                # What the flow runs it starts inherit: the stack's services, as clients.
                "MLFLOW_TRACKING_URI": f"http://{h}:{ports['mlflow']}",
                # Registry calls (models:/ URIs) follow MLFLOW_REGISTRY_URI when it is set: a stale
                # one inherited by the worker sent the scoring flow's champion lookup to another store.
                "MLFLOW_REGISTRY_URI": f"http://{h}:{ports['mlflow']}",
                # The checkout the flow runs work in: prefect.yaml's pull step reads it at run time
                # from this environment (the folder `tvau stack up` ran in, unless already set).
                "TVAU_REPO": os.environ.get("TVAU_REPO") or str(self.project_dir),
                "AWS_ENDPOINT_URL": s3_url,
                "MLFLOW_S3_ENDPOINT_URL": s3_url,
            }
            return argv, env
        raise ValueError(service)

    def _spawn(self, service: str, ports: dict, secrets: Secrets) -> subprocess.Popen:
        argv, extra = self._service_command(service, ports, secrets)
        env = {**self._base_env(), **extra}
        return procs.spawn(
            argv, env=env, log=self.layout.log(service), pidfile=self.layout.pidfile(service),
            cwd=self.project_dir,
        )

    # ------------------------------------------------------------------ up / down

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with open(self.layout.root / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def up(self) -> dict:
        """Start whatever is not running; return {"started": [...], "seconds": {...}, "status": ...}.
        If a service fails to start, everything is stopped again (no half-up stack, no strays)
        and the StackError names the log to read."""
        with self._locked():
            try:
                return self._up()
            except BaseException:
                self._down()
                raise

    def _up(self) -> dict:
        t_all = time.monotonic()
        L = self.layout
        for d in (L.logs, L.run, L.s3data, L.prefect_home):
            d.mkdir(parents=True, exist_ok=True)
        secrets = ensure_secrets(L.root)
        ports = self._resolve_ports()
        write_json(L.state, {"ports": ports})
        write_client_files(L.root, secrets, self.cfg.host, ports["postgres"])
        healthy = {s: self._running(s) and self._probe(s, ports, secrets) for s in SERVICES}
        started: list[str] = []
        seconds: dict[str, float] = {}
        if all(healthy.values()):
            return {"started": [], "seconds": {}, "status": self.status()}

        t0 = time.monotonic()
        if not healthy["postgres"]:
            if not self._running("postgres"):
                self._start_postgres(ports["postgres"], secrets)
                started.append("postgres")
            self._wait("postgres", ports, secrets, None)
        # Idempotent, and run whenever something is to start: an `up` interrupted between the
        # database start and this step must not leave MLflow or Prefect without their roles.
        self._bootstrap_databases(ports["postgres"], secrets)
        seconds["postgres"] = time.monotonic() - t0

        def start_and_wait(names: list[str]) -> None:
            # Spawn together, then wait: MLflow and Prefect migrate their schemas in parallel.
            t0 = time.monotonic()
            launched = {}
            for s in names:
                if healthy[s]:
                    continue
                if self._running(s):  # alive but not answering: restart it
                    procs.stop_group(self._pid(s))
                launched[s] = self._spawn(s, ports, secrets)
                started.append(s)
            for s, proc in launched.items():
                self._wait(s, ports, secrets, proc)
                seconds[s] = time.monotonic() - t0

        start_and_wait(["s3"])
        if "s3" in started or not healthy["s3"]:
            from tvau.storage import ensure_bucket

            ensure_bucket(self.cfg.bucket, self._s3_client(secrets, ports["s3"]))
        start_and_wait(["mlflow", "prefect"])
        start_and_wait(["worker"])
        seconds["total"] = time.monotonic() - t_all
        return {"started": started, "seconds": seconds, "status": self.status()}

    def down(self) -> dict:
        """Stop everything; return {"seconds": {...}, "strays": [pids swept up by the marker]}."""
        with self._locked():
            return self._down()

    def _down(self) -> dict:
        seconds = {}
        # The worker first (no new flow runs), then the servers together, the database last.
        for name, group in (("worker", ["worker"]), ("servers", ["prefect", "mlflow", "s3"])):
            t0 = time.monotonic()
            pids = [p for p in (self._pid(s) for s in group) if procs.carries_marker(p, self.layout.root)]
            procs.stop_groups(pids)
            for s in group:
                self.layout.pidfile(s).unlink(missing_ok=True)
            seconds[name] = time.monotonic() - t0
        t0 = time.monotonic()
        self._stop_postgres()
        seconds["postgres"] = time.monotonic() - t0
        t0 = time.monotonic()
        strays = procs.stop_marked(self.layout.root)
        seconds["sweep"] = time.monotonic() - t0
        return {"seconds": seconds, "strays": strays}
