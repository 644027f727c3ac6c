"""`tvau s3-server`: a real S3-compatible HTTP server (rclone serve s3) on loopback, started as a
subprocess: objects survive a restart, explicit credentials are enforced, `..` keys are refused.

The `s3_env` fixture is the one batch scoring reuses (see tests/conftest.py or copy it): it yields
the client environment {AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...}.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import botocore.exceptions
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
    # rclone answers with Go-canonical header names (x-amz-meta-sha256 -> "Sha256"), and keeps user
    # metadata in memory only: nothing may rely on it durably (scoring hashes the bytes itself).
    meta = {k.lower(): v for k, v in head["Metadata"].items()}
    assert head["ContentLength"] == 200_000 and meta["sha256"] == digest
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


def _client(env):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")


def test_objects_are_files_that_survive_a_restart(tmp_path):
    data = tmp_path / "s3data"
    with running_s3_server(buckets=("footage",), data_dir=data) as env:
        c = _client(env)
        c.put_object(Bucket="footage", Key="2026-11-25/cam 1/a+b%.mp4", Body=b"video bytes")
        with pytest.raises(botocore.exceptions.ClientError):  # `..` never reaches the filesystem
            c.put_object(Bucket="footage", Key="x/../../escape.bin", Body=b"no")
    assert (data / "footage" / "2026-11-25" / "cam 1" / "a+b%.mp4").read_bytes() == b"video bytes"
    assert not any(p.name == "escape.bin" for p in tmp_path.rglob("*"))
    with running_s3_server(data_dir=data) as env:  # a new server process, the same directory
        body = _client(env).get_object(Bucket="footage", Key="2026-11-25/cam 1/a+b%.mp4")["Body"].read()
    assert body == b"video bytes"


def test_explicit_credentials_are_enforced(tmp_path):
    with running_s3_server(buckets=("tvau",), data_dir=tmp_path / "d", credentials=("scorer", "s3cr3t-key")) as env:
        assert env["AWS_ACCESS_KEY_ID"] == "scorer"
        assert [b["Name"] for b in _client(env).list_buckets()["Buckets"]] == ["tvau"]
        wrong = {**env, "AWS_SECRET_ACCESS_KEY": "not-the-key"}
        with pytest.raises(botocore.exceptions.ClientError):
            _client(wrong).list_buckets()


def test_bad_bucket_name_is_a_clear_error(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "tvau.cli", "s3-server", "--port", "0", "--data-dir", str(tmp_path),
         "--bucket", "../up"], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "not a valid bucket name" in res.stderr and "Traceback" not in res.stderr
    assert not Path(tmp_path.parent / "up").exists()
