"""`tvau s3-server`: an S3-compatible server on loopback (moto's standalone server).

A real HTTP server in its own thread of this process, not an in-process mock: clients (boto3,
dvc-s3, s5cmd...) reach it over TCP through `AWS_ENDPOINT_URL`. Its state lives in memory for as
long as the process runs. The command prints one line `endpoint: http://127.0.0.1:PORT` once the
server answers requests, so a parent process can wait for that line; `running_s3_server()` does
exactly that and is what the tests (and batch scoring) use.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import typer

HOST = "127.0.0.1"
# moto accepts any credentials; these are the values clients are told to use.
DEFAULT_ACCESS_KEY = "testing"
DEFAULT_SECRET_KEY = "testing"
ENDPOINT_RE = re.compile(r"^endpoint: (http://[\d.]+:\d+)\s*$")


def _wait_until_serving(endpoint: str, timeout: float) -> None:
    """Poll until the server answers an HTTP request (any status), or raise."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2) as resp:
                resp.read()
            return
        except urllib.error.HTTPError:
            return  # an HTTP error status is still an answer
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"S3 server at {endpoint} did not answer within {timeout:.0f} s: {last}")


def _create_buckets(endpoint: str, buckets: list[str]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=DEFAULT_ACCESS_KEY,
        aws_secret_access_key=DEFAULT_SECRET_KEY,
        region_name="us-east-1",
    )
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)


def s3_server(
    port: int = typer.Option(
        9000, "--port", help="TCP port on 127.0.0.1 (0 picks a free port; the endpoint line says which)."
    ),
    bucket: list[str] = typer.Option(
        [], "--bucket", help="Create this bucket at start-up (repeatable; names need 3+ characters)."
    ),
) -> None:
    """Run moto's standalone S3 server on 127.0.0.1 in the foreground until Ctrl-C / SIGTERM.

    Prints `endpoint: http://127.0.0.1:PORT` once it accepts requests. Point clients at it with
    AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing.
    State is kept in memory and is lost when the server stops."""
    import contextlib
    import io

    from moto.moto_server.werkzeug_app import (  # heavy: import on use
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # What moto's ThreadedMotoServer does, but binding in this thread: a busy port must be an
    # error here, not a hang (werkzeug exits on a failed bind, which would only end a thread).
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            server = make_server(
                HOST, port, DomainDispatcherApplication(create_backend_app), threaded=True,
                request_handler=MotoRequestHandler,
            )
    except (OSError, SystemExit) as exc:
        reason = err.getvalue().strip().splitlines()[0] if err.getvalue().strip() else str(exc)
        typer.echo(f"error: cannot listen on {HOST}:{port}: {reason}", err=True)
        raise typer.Exit(code=1) from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://{HOST}:{server.server_address[1]}"
    _wait_until_serving(endpoint, timeout=30)
    if bucket:
        _create_buckets(endpoint, bucket)

    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # The one line a parent process waits for; then a human-readable hint on stderr.
    print(f"endpoint: {endpoint}", flush=True)
    print(
        f"export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={DEFAULT_ACCESS_KEY} "
        f"AWS_SECRET_ACCESS_KEY={DEFAULT_SECRET_KEY}   # Ctrl-C stops the server",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    server.shutdown()
    thread.join(5)


@contextlib.contextmanager
def running_s3_server(
    port: int = 0, buckets: tuple[str, ...] = (), timeout: float = 60.0
) -> Iterator[dict[str, str]]:
    """Start `tvau s3-server` as a subprocess and yield the client environment for it:
    {"AWS_ENDPOINT_URL": ..., "AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...,
    "AWS_DEFAULT_REGION": ...}. The server is terminated (and its state lost) on exit."""
    cmd = [sys.executable, "-m", "tvau.cli", "s3-server", "--port", str(port)]
    for b in buckets:
        cmd += ["--bucket", b]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    endpoint: str | None = None
    result: dict[str, str] = {}

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
                f"`{' '.join(cmd)}` printed no endpoint within {timeout:.0f} s "
                f"(exit code {proc.poll()})"
            )
        result = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        yield result
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
