"""tvau/storage.py: atomic writes never leave half a file or half a directory behind."""

from __future__ import annotations

import hashlib

import pytest

from tvau.storage import (
    atomic_dir,
    atomic_open,
    checksums,
    get_file,
    put_file,
    read_jsonl,
    sha256_file,
    write_jsonl,
)


def test_atomic_open_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("new, half written")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with atomic_open(path) as fh:
        fh.write("new")
    assert path.read_text() == "new"


def test_atomic_dir_swaps_whole_directories(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as d:
        (d / "one").write_text("1")
    with pytest.raises(ValueError), atomic_dir(out) as d:
        (d / "two").write_text("2")
        raise ValueError("crash")
    assert sorted(p.name for p in out.iterdir()) == ["one"]
    with atomic_dir(out) as d:
        (d / "three").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["three"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary siblings left


def test_checksums_and_local_copies(tmp_path):
    src = tmp_path / "s.bin"
    src.write_bytes(b"abc" * 1000)
    assert sha256_file(src) == hashlib.sha256(b"abc" * 1000).hexdigest()
    digest = put_file(src, tmp_path / "copy" / "s.bin")
    assert checksums(tmp_path / "copy") == {"s.bin": digest}
    with pytest.raises(ValueError, match="checksum mismatch"):
        get_file(str(tmp_path / "copy" / "s.bin"), tmp_path / "back.bin", expect_sha256="f" * 64)
    assert not (tmp_path / "back.bin").exists()
    with pytest.raises(FileNotFoundError, match="no such file"):
        get_file(str(tmp_path / "missing"), tmp_path / "x")


def test_jsonl_round_trip_and_bad_line(tmp_path):
    path = tmp_path / "r.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"b": [1, 2]}]) == 2
    assert read_jsonl(path) == [{"a": 1}, {"b": [1, 2]}]
    path.write_text('{"a": 1}\n{broken\n')
    with pytest.raises(ValueError, match=r"r.jsonl:2: not valid JSON"):
        read_jsonl(path)
