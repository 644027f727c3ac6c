"""The stack's credentials: generated once, kept in files only the user can read.

Nothing secret is ever put in code, on a command line (visible to every user in `ps`), in a URL
that gets logged, or in an MLflow parameter. Servers and clients read them from files instead:
PostgreSQL passwords from a libpq password file (PGPASSFILE, honoured by psycopg2 for MLflow and
by asyncpg for Prefect), S3 keys from an AWS shared-credentials file (AWS_SHARED_CREDENTIALS_FILE,
honoured by boto3 for MLflow, DVC and our own code). Only rclone gets its keys through its
environment (RCLONE_AUTH_KEY), which other users cannot read.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

DB_ROLES = ("mlflow", "prefect")  # one role and one database per service
SUPERUSER = "postgres"


class SecretsError(RuntimeError):
    """A secrets file that cannot be trusted or read."""


@dataclass(frozen=True)
class Secrets:
    postgres_superuser: str
    mlflow_db: str
    prefect_db: str
    s3_access_key: str
    s3_secret_key: str

    def values(self) -> list[str]:
        return list(asdict(self).values())

    def db_password(self, role: str) -> str:
        return {"postgres": self.postgres_superuser, "mlflow": self.mlflow_db, "prefect": self.prefect_db}[role]


def _write_private(path: Path, text: str) -> None:
    """Write `path` as 0600 from the first byte (never briefly world-readable), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"{path}: readable by other users (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )


def secrets_dir(stack_dir: Path) -> Path:
    return stack_dir / "secrets"


def ensure_secrets(stack_dir: Path) -> Secrets:
    """Load the stack's secrets, generating them on first use."""
    d = secrets_dir(stack_dir)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    path = d / "secrets.json"
    if path.exists():
        _check_private(path)
        try:
            return Secrets(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise SecretsError(f"{path}: not a valid stack secrets file ({exc.__class__.__name__})") from None
    new = Secrets(
        postgres_superuser=_secrets.token_urlsafe(24),
        mlflow_db=_secrets.token_urlsafe(24),
        prefect_db=_secrets.token_urlsafe(24),
        # Access keys look like AWS ones (upper-case alphanumerics); the secret is random.
        s3_access_key="TVAU" + _secrets.token_hex(8).upper(),
        s3_secret_key=_secrets.token_urlsafe(30),
    )
    _write_private(path, json.dumps(asdict(new), indent=2) + "\n")
    return new


def pgpass_path(stack_dir: Path) -> Path:
    return secrets_dir(stack_dir) / "pgpass"


def aws_credentials_path(stack_dir: Path) -> Path:
    return secrets_dir(stack_dir) / "aws-credentials"


def write_client_files(stack_dir: Path, s: Secrets, host: str, pg_port: int) -> None:
    """(Re)write the libpq password file and the AWS credentials file for the current port."""
    # token_urlsafe never yields ':' or '\\', the two characters .pgpass would need escaped.
    lines = [f"{host}:{pg_port}:{role}:{role}:{s.db_password(role)}" for role in DB_ROLES]
    lines.append(f"{host}:{pg_port}:*:{SUPERUSER}:{s.postgres_superuser}")
    _write_private(pgpass_path(stack_dir), "\n".join(lines) + "\n")
    _write_private(
        aws_credentials_path(stack_dir),
        f"[default]\naws_access_key_id = {s.s3_access_key}\naws_secret_access_key = {s.s3_secret_key}\n",
    )
