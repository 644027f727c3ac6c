"""Output keys derived from input keys: injective, inside the prefix, never a `..` segment."""

from __future__ import annotations

import posixpath

from tvau.score.keys import quarantine_key, safe_relative, video_output_prefix

NASTY = ["a/b.mp4", "a//b.mp4", "../../etc/passwd.mp4", "x/./y.mp4", "x/../y.mp4", "..", ".", "...",
         "sp ace/ünï+%20&?#.mp4", "a%2Fb.mp4", "a/b.mp4/", "/lead.mp4", "a\\..\\b.mp4", "x" * 600 + ".mp4",
         "x" * 601 + ".mp4", "%2E%2E/q.mp4", "%2F/a.mp4"]


def test_every_output_key_stays_under_the_prefix():
    for key in NASTY:
        out = video_output_prefix("s3://results/nightly", key)
        rel = out.removeprefix("s3://results/nightly/")
        assert out.startswith("s3://results/nightly/") and rel
        segs = rel.split("/")
        assert all(s and s not in (".", "..") for s in segs), key
        assert all(len(s) <= 200 for s in segs)
        assert posixpath.normpath("/root/" + rel).startswith("/root/")
        assert set(rel) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%/")
        assert quarantine_key("s3://results/nightly", key).startswith("s3://results/nightly/quarantine/")


def test_the_mapping_is_injective():
    outs = [safe_relative(k) for k in NASTY]
    assert len(set(outs)) == len(NASTY)
    assert safe_relative("a b.mp4") == "a%20b.mp4" and safe_relative("a%20b.mp4") == "a%2520b.mp4"
    assert safe_relative("..") == "%2E%2E" and safe_relative("a//b") == "a/%2F/b"
