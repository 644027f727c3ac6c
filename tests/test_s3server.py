"""`tvau s3-server`: a real S3-compatible HTTP server on loopback, started as a subprocess.

The `s3_env` fixture is the one batch scoring reuses (see tests/conftest.py or copy it): it yields
the client environment {AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...}.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tvau.s3server import running_s3_server
from tvau.storage import ensure_bucket, get_file, put_file, s3_client

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def s3_env():
    with running_s3_server(buckets=("tvau",)) as env:
        yield env


@pytest.fixture
def s3_vars(s3_env, monkeypatch):
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    return s3_env


def test_endpoint_is_loopback_and_answers(s3_env):
    assert s3_env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    host, port = s3_env["AWS_ENDPOINT_URL"][len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=5):
        pass


def test_put_and_get_with_checksums_through_the_standard_variables(s3_vars, tmp_path):
    client = s3_client()  # configured from AWS_ENDPOINT_URL & co.
    assert "tvau" in {b["Name"] for b in client.list_buckets()["Buckets"]}
    ensure_bucket("tvau-extra")
    ensure_bucket("tvau-extra")  # idempotent
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(200_000))
    digest = put_file(src, "s3://tvau-extra/a/blob.bin")
    head = client.head_object(Bucket="tvau-extra", Key="a/blob.bin")
    assert head["ContentLength"] == 200_000 and head["Metadata"]["sha256"] == digest
    dst = get_file("s3://tvau-extra/a/blob.bin", tmp_path / "out" / "blob.bin", expect_sha256=digest)
    assert dst.read_bytes() == src.read_bytes()
    with pytest.raises(ValueError, match="checksum mismatch"):
        get_file("s3://tvau-extra/a/blob.bin", tmp_path / "bad.bin", expect_sha256="0" * 64)
    assert not (tmp_path / "bad.bin").exists()  # a failed download leaves nothing behind


def test_busy_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "-m", "tvau.cli", "s3-server", "--port", str(port)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert res.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in res.stderr
