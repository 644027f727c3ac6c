"""The `stack:` section of params.yaml: where `tvau stack` keeps its services and how it reaches them.

Ports default to 0: a free port is picked at the first `tvau stack up` and remembered in the stack's
state file, so later starts (and every client) keep the same URLs. A non-zero port is used as given.
"""

from __future__ import annotations

from pydantic import Field

from tvau.configbase import Section


class StackPorts(Section):
    postgres: int = Field(0, ge=0, le=65535)  # PostgreSQL 15 (backend of MLflow and Prefect)
    s3: int = Field(0, ge=0, le=65535)  # rclone's S3-compatible server
    mlflow: int = Field(0, ge=0, le=65535)  # MLflow tracking server (UI + REST + artifact proxy)
    prefect: int = Field(0, ge=0, le=65535)  # Prefect server (UI + API)
    worker: int = Field(0, ge=0, le=65535)  # the Prefect worker's health-check endpoint


class StackConfig(Section):
    # Everything the stack writes (database cluster, S3 objects, logs, pid files, secrets) lives
    # under this folder, inside the project's working area.
    dir: str = ".tvau/stack"
    # Loopback only: nothing is exposed to the network. Platform teams use infra/docker-compose.yml.
    host: str = "127.0.0.1"
    ports: StackPorts = Field(default_factory=StackPorts)
    # PostgreSQL refuses to run as root. When `tvau stack up` runs as root, the database server
    # runs as this unprivileged account (created with useradd if it does not exist); otherwise it
    # runs as the invoking user and this is ignored.
    postgres_os_user: str = "tvau-stack"
    bucket: str = "tvau"  # S3 bucket of the stack; MLflow's artifacts go under s3://<bucket>/mlflow
    work_pool: str = "tvau-process"  # Prefect process work pool served by the stack's worker
    worker_poll_seconds: float = Field(5.0, gt=0)  # how often the worker asks for scheduled runs
    prefect_ui: bool = True  # serve the Prefect UI (the MLflow UI is always served)
    start_timeout_s: float = Field(300.0, gt=0)  # per service: give up waiting for health after this
