"""Local and S3 paths behind one small interface: atomic writes, checksums, and the S3 client.

Why atomic writes: a stage that dies half-way must never leave a truncated table where the next
stage (or a human) would read it. Every file is written to a temporary sibling and renamed into
place with `os.replace`, which is atomic on one filesystem; a directory is built beside its
destination and swapped in only when complete.

S3 clients take the endpoint and credentials from the standard variables (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), so the same code talks to AWS, to a MinIO, or to the
project's own `tvau s3-server` on loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20  # bytes read at a time when hashing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it vanishes.

    Use it for writers that want a file name (pyarrow, numpy, cv2)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """`open()` that only replaces `path` once the block finishes without an exception."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; on success it replaces `path` whole.

    The old directory (if any) is moved aside first and removed only after the new one is in
    place, so at every instant either the complete old or the complete new directory exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            old.rmdir()
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Atomic, deterministic JSON (sorted keys), so unchanged content gives unchanged bytes."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")


def write_jsonl(path: str | Path, rows: list[dict]) -> int:
    """Atomic JSON Lines; returns the number of rows written."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False, default=_json_default))
            fh.write("\n")
    return len(rows)


def read_jsonl(path: str | Path) -> list[dict]:
    """Read JSON Lines; a malformed line is an error naming the file and the line number."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
    return rows


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays end up in records; make them plain JSON without importing numpy.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def checksums(root: str | Path) -> dict[str, str]:
    """{relative path: sha256} for every file under `root`, sorted, for manifests."""
    root = Path(root)
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------------------------- S3


def is_s3(uri: str | Path) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b')."""
    if not is_s3(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if len(bucket) < 3:
        raise ValueError(f"{uri!r}: S3 bucket names have at least 3 characters")
    return bucket, key


def s3_client(config=None):
    """A boto3 S3 client configured from the standard AWS_* environment variables; `config` is an
    optional botocore Config (retries, timeouts)."""
    import boto3  # heavy: import on use

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=config,
    )


@contextlib.contextmanager
def temporary_environ(updates: dict[str, str]) -> Iterator[None]:
    """Set environment variables (e.g. an S3 server's AWS_* client variables) for the block and
    restore the previous values, unset ones included, afterwards."""
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ensure_bucket(bucket: str, client=None) -> None:
    """Create `bucket` if it does not exist (idempotent)."""
    client = client or s3_client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def put_file(local: str | Path, uri: str, client=None) -> str:
    """Upload a file to an s3:// URI or copy it atomically to a local path; returns its sha256."""
    digest = sha256_file(local)
    if is_s3(uri):
        bucket, key = split_s3(uri)
        (client or s3_client()).upload_file(
            str(local), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}}
        )
    else:
        with atomic_path(uri) as tmp:
            shutil.copyfile(local, tmp)
    return digest


def get_file(uri: str, local: str | Path, client=None, expect_sha256: str | None = None) -> Path:
    """Download an s3:// URI (or copy a local path) to `local`, atomically; verify the checksum
    when one is given, and refuse to keep a file that does not match it."""
    local = Path(local)
    with atomic_path(local) as tmp:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            (client or s3_client()).download_file(bucket, key, str(tmp))
        else:
            if not Path(uri).exists():
                raise FileNotFoundError(f"{uri}: no such file")
            shutil.copyfile(uri, tmp)
        if expect_sha256 is not None:
            got = sha256_file(tmp)
            if got != expect_sha256:
                raise ValueError(f"{uri}: checksum mismatch (expected {expect_sha256}, got {got})")
    return local
