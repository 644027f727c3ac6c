"""Scoring against the real S3 server (rclone) on loopback, without Prefect: outputs consistent with
their manifests, a rerun writes nothing, a crash then a rerun gives exactly the full set, every kind
of bad file quarantined, awkward keys kept under the output prefix, S3 faults survived."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tvau.score.config import ScoreConfig
from tvau.score.core import OUTPUTS, score_prefix
from tvau.score.s3io import make_client

pytestmark = pytest.mark.services

# Untrained adapters light up every clip; 1.0 keeps the language model out of most tests (speed).
FAST = ScoreConfig(escalate_level=1.0, videos_per_batch=2, backoff_s=0.01)
AWKWARD = "cam 1/ünïcødé+%20&.mp4"


def _upload(client, night, prefix: str, extra: dict[str, bytes] | None = None) -> list[str]:
    names = [f"{v.parent.name}/{v.name}" for v in night]
    for v, name in zip(night, names, strict=True):
        client.put_object(Bucket="footage", Key=f"{prefix}/{name}", Body=v.read_bytes())
    for name, data in (extra or {}).items():
        client.put_object(Bucket="footage", Key=f"{prefix}/{name}", Body=data)
    return names


def _objects(client, bucket: str, prefix: str) -> dict[str, tuple[str, object]]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["ETag"], o["LastModified"])
    return out


def _get(client, key: str, bucket: str = "results") -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def night_run(s3, night, model_dir, tmp_path_factory, loader, make_bad_videos):
    """One scored night: three good videos (one under an awkward key) and every kind of bad file."""
    from tvau.storage import temporary_environ

    with temporary_environ(s3):
        client = make_client(FAST)
        bad = make_bad_videos(tmp_path_factory.mktemp("bad"), night[0])
        extra = {f"bad/{k}": v for k, (v, _) in bad.items()}
        extra[AWKWARD] = night[1].read_bytes()
        extra["notes.txt"] = b"not listed: not a video extension"
        _upload(client, night, "n1", extra)
        import botocore.exceptions

        with pytest.raises(botocore.exceptions.ClientError):  # the server refuses `..` keys itself
            client.put_object(Bucket="footage", Key="n1/x/../../escape.mp4", Body=b"")
        results = score_prefix("s3://footage/n1/", "s3://results/n1", str(model_dir), FAST, loader=loader,
                               client=client)
        yield {"client": client, "results": results, "bad": bad}


def test_every_video_is_scored_or_quarantined_with_its_reason(night_run, night):
    res = {r.key: r for r in night_run["results"]}
    good = [f"n1/{v.parent.name}/{v.name}" for v in night] + [f"n1/{AWKWARD}"]
    assert sorted(r for r in res if res[r].status == "scored") == sorted(good)
    expected = {f"n1/bad/{k}": reason for k, (_, reason) in night_run["bad"].items()}
    assert {k: r.reason for k, r in res.items() if r.status == "quarantined"} == expected
    assert "n1/notes.txt" not in res and not any(".." in k for k in res)
    client = night_run["client"]
    for key, reason in expected.items():
        rec = json.loads(_get(client, f"n1/quarantine/{key}.json"))
        assert rec["reason"] == reason and rec["input"]["key"] == key
        assert not _objects(client, "results", f"n1/{key}/")  # no outputs for a rejected video


def test_outputs_are_consistent_with_their_manifests(night_run, model_dir):
    client = night_run["client"]
    for r in night_run["results"]:
        if r.status != "scored":
            continue
        m = json.loads(_get(client, r.output.removeprefix("s3://results/")))
        src = _get(client, m["input"]["key"], bucket="footage")
        assert m["input"]["sha256"] == hashlib.sha256(src).hexdigest() and m["input"]["size"] == len(src)
        assert m["input"]["etag"] == hashlib.md5(src).hexdigest()  # rclone's ETag is the MD5
        assert m["model"]["digest"] and m["params_hash"] and m["code_version"]["package"]
        assert set(m["outputs"]) == set(OUTPUTS)
        blobs = {}
        for name, o in m["outputs"].items():
            blobs[name] = _get(client, o["uri"].removeprefix("s3://results/"))
            assert hashlib.sha256(blobs[name]).hexdigest() == o["sha256"], name
        npz = np.load(io.BytesIO(blobs["heatmap.npz"]))
        frames = pq.read_table(io.BytesIO(blobs["frames.parquet"])).to_pandas()
        # per-frame score = max of that frame's heatmap upsampled (bilinear) to the model's input size,
        # as `tvau evaluate` scores a frame; recomputed independently from the stored patch heatmap
        import torch

        up = torch.nn.functional.interpolate(torch.from_numpy(npz["heatmap"].astype(np.float32))[:, None],
                                             size=tuple(m["video"]["model_input"]), mode="bilinear",
                                             align_corners=False)
        np.testing.assert_allclose(frames["score"], up.flatten(1).amax(1).numpy(), atol=2e-3)
        assert (frames["frame"].to_numpy() == npz["source_frame"]).all()
        assert npz["heatmap"].shape[1:] == (16, 16)  # 224 / 14: the patch grid
        assert m["summary"]["max_score"] == pytest.approx(float(frames["score"].max()), rel=1e-6)
        assert m["summary"]["sampled_frames"] == len(frames) == 48  # 48 frames at 24 fps sampled at 24
        regions = pq.read_table(io.BytesIO(blobs["regions.parquet"])).to_pandas()
        assert set(regions["frame"]) <= set(frames["frame"]) and (regions["x2"] < 64).all()
        assert blobs["trajectory.png"][:8] == b"\x89PNG\r\n\x1a\n"
        import av

        with av.open(io.BytesIO(blobs["overlay.mp4"])) as c:
            # Real time at overlay_fps 6: every 4th of the frames sampled at 24 fps, played at 6 fps.
            assert c.streams.video[0].average_rate == 6
            assert sum(1 for _ in c.decode(video=0)) == len(frames) // 4 == 12
        d = json.loads(blobs["dialogue.json"])
        assert len(d["clips"]) == m["summary"]["clips"]
        assert all(sp["explanation"] is None for sp in d["spans"]) and m["summary"]["escalated_clips"] == 0  # level 1.0
        # the verdict against the model's calibration (threshold 0.5), from the smoothed scores
        assert m["summary"]["threshold"] == 0.5 and m["model"]["calibration_sha256"]
        assert m["summary"]["video_score"] == pytest.approx(float(frames["smoothed"].max()))
        assert m["summary"]["verdict"] == ("anomalous" if frames["smoothed"].max() > 0.5 else "normal")
        assert bool(frames["flagged"].any()) == (m["summary"]["verdict"] == "anomalous") == bool(d["spans"])


def test_awkward_keys_stay_under_the_output_prefix(night_run):
    keys = set(_objects(night_run["client"], "results", ""))
    assert all(k.startswith("n1/") and ".." not in k.split("/") for k in keys)
    assert "n1/n1/cam%201/%C3%BCn%C3%AFc%C3%B8d%C3%A9%2B%2520%26.mp4/manifest.json" in keys


def test_a_rerun_writes_nothing(night_run, model_dir, loader):
    client = night_run["client"]
    before = _objects(client, "results", "n1/")
    again = score_prefix("s3://footage/n1/", "s3://results/n1", str(model_dir), FAST, loader=loader,
                         client=client)
    assert {r.status for r in again} == {"skipped", "quarantined"}
    assert sum(r.writes for r in again) == 0
    assert _objects(client, "results", "n1/") == before  # same keys, ETags and modification times


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the pipeline catches it."""


class CrashingClient:
    def __init__(self, client, puts_before_crash: int):
        self._c, self.left = client, puts_before_crash

    def put_object(self, **kw):
        if self.left == 0:
            raise Crash()
        self.left -= 1
        return self._c.put_object(**kw)

    def __getattr__(self, name):
        return getattr(self._c, name)


def test_a_crash_then_a_rerun_gives_exactly_the_full_set(s3_vars, night, model_dir, loader):
    client = make_client(FAST)
    names = _upload(client, night, "n2")
    # 7 objects per video (6 outputs + manifest): die in the middle of the second video's outputs
    with pytest.raises(Crash):
        score_prefix("s3://footage/n2/", "s3://results/n2", str(model_dir), FAST, loader=loader,
                     client=CrashingClient(client, 7 + 3))
    partial = _objects(client, "results", "n2/")
    assert sum(k.endswith("manifest.json") for k in partial) == 1 and len(partial) == 10
    rerun = score_prefix("s3://footage/n2/", "s3://results/n2", str(model_dir), FAST, loader=loader,
                         client=client)
    assert sorted((r.key, r.status) for r in rerun) == sorted(
        [(f"n2/{names[0]}", "skipped")] + [(f"n2/{n}", "scored") for n in names[1:]])
    full = _objects(client, "results", "n2/")
    assert set(full) == {f"n2/n2/{n}/{o}" for n in names for o in (*OUTPUTS, "manifest.json")}
    first = f"n2/n2/{names[0]}/manifest.json"
    assert full[first] == partial[first]  # untouched


def test_s3_faults_are_retried_and_a_video_that_keeps_failing_is_reported(s3, night, model_dir, monkeypatch, loader,
                                                                         fault_proxy):
    client = make_client(FAST)  # direct, for setup and checks
    import os

    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    names = _upload(client, night, "n3")
    hopeless = names[2]

    def plan(method, path, n):
        if method == "GET" and path.startswith(f"/footage/n3/{hopeless}"):
            return "503"  # this video's bytes can never be read
        # each fault costs a back-off of up to a second or so: a few of each kind, not dozens
        if n % 9 == 0:
            return "503"
        if n % 13 == 0:
            return "drop"
        if method == "GET" and n % 5 == 0:
            return "cut"
        return None

    with fault_proxy(s3["AWS_ENDPOINT_URL"], plan) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        assert os.environ["AWS_ENDPOINT_URL"] == proxy.endpoint
        cfg = FAST.model_copy(update={"max_attempts": 4})  # botocore's back-off grows fast: keep the test short
        faulty = make_client(cfg)
        res = {r.key: r for r in score_prefix("s3://footage/n3/", "s3://results/n3", str(model_dir), cfg,
                                              loader=loader, client=faulty)}
    kinds = {f for f, _, _ in proxy.faults}
    assert kinds == {"503", "drop", "cut"}
    assert res[f"n3/{names[0]}"].status == res[f"n3/{names[1]}"].status == "scored"
    failed = res[f"n3/{hopeless}"]
    assert failed.status == "failed" and ("SlowDown" in failed.reason or "503" in failed.reason)
    for n in names[:2]:  # what got through the faults is whole and matches its manifest
        m = json.loads(_get(client, f"n3/n3/{n}/manifest.json"))
        for o in m["outputs"].values():
            assert hashlib.sha256(_get(client, o["uri"].removeprefix("s3://results/"))).hexdigest() == o["sha256"]
    assert not _objects(client, "results", f"n3/n3/{hopeless}/")  # the failed video left nothing


def test_lineage_of_a_manifest_scored_with_a_model_directory(night_run, s3_vars, model_dir):
    """`tvau lineage s3://.../manifest.json` for a model directory: the chain stops at the model's
    digest (no registry version, no run), the input is the footage as uploaded."""
    from tvau.lineage import format_text, lineage

    client = night_run["client"]
    r = next(r for r in night_run["results"] if r.status == "scored")
    info = lineage(r.output)
    src = _get(client, r.key, bucket="footage")
    assert info["input"]["key"] == r.key and info["input"]["sha256"] == hashlib.sha256(src).hexdigest()
    assert info["input"]["size"] == len(src) and info["input"]["etag"] == hashlib.md5(src).hexdigest()
    assert info["model"]["uri"] == str(model_dir) and info["model"]["version"] is None and info["training"] is None
    assert set(info["outputs"]) == set(OUTPUTS)
    assert "not a registered version" in format_text(info)
