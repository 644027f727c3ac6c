"""S3 access for scoring: paginated listing, resumable streaming download, retried uploads.

Two layers of retries, because they cover different failures:
- botocore's "standard" retry mode (max_attempts from params) retries whole requests that fail
  with throttling (SlowDown, 503), 5xx or connection errors before any body byte arrived;
- a dropped connection in the middle of a streamed body surfaces only while we read it, after
  botocore returned: `stream_to_file` resumes from the last byte received with a Range request,
  with exponential back-off and jitter, and checks the ETag did not change meanwhile.
Error answers that survive botocore's retries are final (not retried again: that would multiply
the waits). A request that still fails raises S3Error naming the key; the caller reports the video.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tvau.score.config import ScoreConfig
from tvau.storage import is_s3, split_s3


class S3Error(RuntimeError):
    """An S3 request that failed after every retry; the message names the object."""


@dataclass(frozen=True)
class ObjectRef:
    """A listed input object."""

    bucket: str
    key: str
    size: int
    etag: str  # without quotes

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def make_client(cfg: ScoreConfig | None = None):
    """A boto3 S3 client from the standard AWS_* variables, with botocore's standard retry mode
    (throttling, 5xx and connection errors retried with exponential back-off)."""
    from botocore.config import Config

    from tvau.storage import s3_client

    cfg = cfg or ScoreConfig()
    conf = Config(
        retries={"mode": "standard", "max_attempts": cfg.max_attempts},
        connect_timeout=10, read_timeout=cfg.read_timeout_s,
        s3={"addressing_style": "path"},  # loopback servers have no virtual-host DNS
        # Only send/verify checksums where the protocol requires them: S3-compatible servers
        # (rclone) do not all implement the newer CRC trailers.
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
        max_pool_connections=16,
    )
    return s3_client(conf)


def _retrying(what: str, fn: Callable[[], Any], cfg: ScoreConfig) -> Any:
    """Call fn, retrying with back-off what botocore cannot: a body that breaks while we read it.

    An error answer (ClientError) has already been through botocore's own retries (throttling
    and 5xx included), so it is final here: retrying it again would multiply the waits."""
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError as Urllib3Error

    delay = cfg.backoff_s
    for attempt in range(1, cfg.max_attempts + 1):
        try:
            return fn()
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise S3Error(f"{what}: {err.get('Code') or exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode')}"
                          f": {err.get('Message', exc)}") from exc
        except (BotoCoreError, OSError, Urllib3Error) as exc:
            if attempt == cfg.max_attempts:
                raise S3Error(f"{what}: {type(exc).__name__}: {exc}") from exc
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def is_not_found(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    cause = exc.__cause__ if isinstance(exc, S3Error) else exc
    if isinstance(cause, ClientError):
        err = cause.response.get("Error", {})
        return err.get("Code") in ("404", "NoSuchKey", "NotFound") or \
            cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
    return False


def list_objects(client, uri: str, cfg: ScoreConfig) -> Iterator[ObjectRef]:
    """Every object under an s3:// prefix, page by page (1,000 keys a page; memory stays flat)."""
    bucket, prefix = split_s3(uri)
    token: str | None = None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
        if token:
            kwargs["ContinuationToken"] = token
        page = _retrying(f"list s3://{bucket}/{prefix}", lambda kw=kwargs: client.list_objects_v2(**kw), cfg)
        for obj in page.get("Contents", []):
            yield ObjectRef(bucket, obj["Key"], int(obj["Size"]), obj.get("ETag", "").strip('"'))
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")
        if not token:
            raise S3Error(f"list s3://{bucket}/{prefix}: truncated page without a continuation token")


def stream_to_file(client, ref: ObjectRef, dst: Path, cfg: ScoreConfig) -> str:
    """Copy an object into `dst` chunk by chunk (memory: one chunk) and return its sha256.

    A connection dropped mid-body is resumed from the byte where it stopped (Range request,
    If-Match on the listed ETag so a replaced object is never stitched onto the old one)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError as Urllib3Error

    h = hashlib.sha256()
    got = 0
    delay = cfg.backoff_s
    failures = 0
    with open(dst, "wb") as out:
        while got < ref.size:
            kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
            if got:
                kwargs["Range"] = f"bytes={got}-"
            if ref.etag:
                kwargs["IfMatch"] = f'"{ref.etag}"'
            try:
                body = client.get_object(**kwargs)["Body"]
                try:
                    for chunk in body.iter_chunks(cfg.chunk_bytes):
                        out.write(chunk)
                        h.update(chunk)
                        got += len(chunk)
                finally:
                    body.close()
                if got < ref.size:  # the server closed the body early: treat as a drop
                    raise OSError(f"body ended at byte {got} of {ref.size}")
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code == "PreconditionFailed" or status == 412:
                    raise S3Error(f"{ref.uri}: the object changed while it was read (ETag differs)") from exc
                # An error answer already went through botocore's retries: final.
                raise S3Error(f"{ref.uri}: download failed at byte {got}: {code or status}") from exc
            except (BotoCoreError, OSError, Urllib3Error) as exc:
                failures += 1
                if failures >= cfg.max_attempts:
                    raise S3Error(f"{ref.uri}: download failed at byte {got}: {exc}") from exc
            else:
                continue
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
    if got != ref.size:
        raise S3Error(f"{ref.uri}: got {got} bytes, listing said {ref.size}")
    return h.hexdigest()


def put_bytes(client, uri: str, data: bytes, cfg: ScoreConfig, content_type: str = "application/octet-stream",
              skip_if_same: bool = False) -> bool:
    """PUT one object (whole: S3 never shows a half-written object). With skip_if_same, an object
    whose ETag already equals the data's MD5 is left alone (so reruns write nothing). Returns
    whether a PUT happened."""
    bucket, key = split_s3(uri)
    if skip_if_same:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        head = head_object(client, uri, cfg)
        if head is not None and head.get("ETag", "").strip('"') == md5 and head.get("ContentLength") == len(data):
            return False
    _retrying(f"put {uri}", lambda: client.put_object(Bucket=bucket, Key=key, Body=data,
                                                      ContentType=content_type), cfg)
    return True


def put_file(client, uri: str, path: Path, cfg: ScoreConfig, content_type: str = "application/octet-stream") -> None:
    data = Path(path).read_bytes()  # outputs are small (heatmaps, tables, a short overlay video)
    put_bytes(client, uri, data, cfg, content_type)


def head_object(client, uri: str, cfg: ScoreConfig) -> dict | None:
    bucket, key = split_s3(uri)
    try:
        return _retrying(f"head {uri}", lambda: client.head_object(Bucket=bucket, Key=key), cfg)
    except S3Error as exc:
        if is_not_found(exc):
            return None
        raise


def get_bytes(client, uri: str, cfg: ScoreConfig) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    bucket, key = split_s3(uri)

    def _get():
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    try:
        return _retrying(f"get {uri}", _get, cfg)
    except S3Error as exc:
        if is_not_found(exc):
            return None
        raise


def get_json(client, uri: str, cfg: ScoreConfig) -> dict | None:
    data = get_bytes(client, uri, cfg)
    if data is None:
        return None
    try:
        obj = json.load(io.BytesIO(data))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # an unreadable record counts as absent: the video is done again
    return obj if isinstance(obj, dict) else None


def delete_object(client, uri: str, cfg: ScoreConfig) -> None:
    bucket, key = split_s3(uri)
    _retrying(f"delete {uri}", lambda: client.delete_object(Bucket=bucket, Key=key), cfg)


def check_uri(uri: str, what: str) -> str:
    if not is_s3(uri):
        raise ValueError(f"{what}: expected an s3://bucket/prefix URI, got {uri!r}")
    split_s3(uri)
    return uri
