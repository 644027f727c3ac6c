"""Output keys derived from input keys, safely.

An input key is attacker-controlled text (whoever can write to the footage bucket chooses it). Its
outputs must land under the output prefix whatever it contains: each `/`-separated segment is
percent-encoded (everything but letters, digits and `-_.~`), segments made only of dots (`.`,
`..`) have their dots encoded too, and an empty segment (`a//b`) becomes `%2F`, which an encoded
segment can never otherwise contain. The mapping is injective, so two input keys never share
outputs, and the result has no `..` segment, so no S3 client or filesystem-backed server
resolves it outside the prefix. Very long segments are shortened with a hash (filesystems limit a
name to 255 bytes).
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

MAX_SEGMENT = 200


def _segment(seg: str) -> str:
    if seg == "":
        return "%2F"
    if set(seg) == {"."}:
        return "%2E" * len(seg)
    enc = quote(seg, safe="-_.~")
    if len(enc) > MAX_SEGMENT:
        digest = hashlib.sha256(seg.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        enc = enc[:150].rstrip("%0123456789ABCDEF") + "~" + digest
    return enc


def safe_relative(key: str) -> str:
    """The encoded form of a relative key: only [A-Za-z0-9-_.~%/], no empty or dot-only segments."""
    return "/".join(_segment(s) for s in key.split("/"))


def join_prefix(prefix: str, *parts: str) -> str:
    """Join an output prefix (no trailing slash needed) and already-safe parts."""
    base = prefix.rstrip("/")
    tail = "/".join(p.strip("/") for p in parts if p)
    return f"{base}/{tail}" if base else tail


def video_output_prefix(output_prefix: str, rel_key: str) -> str:
    """`<output prefix>/<safe video key>`: where a video's outputs and manifest.json go."""
    return join_prefix(output_prefix, safe_relative(rel_key))


def quarantine_key(output_prefix: str, rel_key: str) -> str:
    """`<output prefix>/quarantine/<safe video key>.json`."""
    return join_prefix(output_prefix, "quarantine", safe_relative(rel_key) + ".json")
