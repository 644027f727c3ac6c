"""Lineage: model version -> run -> git commit, params -> dataset digests equal to dvc.lock -> footage
files with sha256, in a real git + DVC repository built in tmp (two stages: footage, then an index);
and a scoring manifest on the real S3 server (rclone, loopback) -> outputs, input, that version."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.registry.helpers import eval_report, write_model_dir
from tvau.lineage import LineageError, lineage
from tvau.registry import models
from tvau.registry.gates import check_gates
from tvau.registry.policy import load_policy
from tvau.registry.pyfunc import log_pyfunc
from tvau.registry.tracking import PipelineRun

REPO = Path(__file__).resolve().parents[2]

FOOTAGE = """\
import sys
from pathlib import Path
import numpy as np
from tvau.video import VideoWriter
out = Path(sys.argv[1])
for i in range(2):
    (out / f"Scene{i}").mkdir(parents=True, exist_ok=True)
    with VideoWriter(out / f"Scene{i}" / f"video_{i}.mp4", 8.0, 32, 32) as w:
        for t in range(4):
            w.write(np.full((32, 32, 3), 40 * t + 60 * i, np.uint8))
    (out / f"Scene{i}" / f"video_{i}_annotations.txt").write_text(f"{i}\\n")
"""


def _sh(args, cwd, env=None):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture()
def dvc_repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    (root / "make_footage.py").write_text(FOOTAGE)
    (root / "params.yaml").write_text("seed: 3\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        # a committed output (cache: false), as data/backbone: a fresh clone has no DVC manifest of it
        "pretrain": {"cmd": "mkdir -p data/backbone && echo weights > data/backbone/model.bin",
                     "outs": [{"data/backbone": {"cache": False}}]},
        "synthesise": {"cmd": "python make_footage.py data/synth", "deps": ["make_footage.py"],
                       "params": ["seed"], "outs": ["data/synth"]},
        "index": {"cmd": "find data/synth -type f | sort > data/index.txt", "deps": ["data/synth"],
                  "outs": ["data/index.txt"]},
    }}))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    _sh(["git", "init", "-q"], root)
    _sh([sys.executable, "-m", "dvc", "init", "-q"], root, env)
    _sh([sys.executable, "-m", "dvc", "repro", "-q"], root, env)
    _sh(["git", "add", "-A"], root)
    _sh([*git, "commit", "-qm", "data"], root)
    return root


def test_lineage_resolves_to_dvc_lock_and_footage(store, model_dir, dvc_repo, tmp_path):
    run = PipelineRun.start(store, dvc_repo, name="lineage")
    run.log(params={"seed": 3, "model": {"backbone": "embedded:tiny"}}, metrics={"validation.micro_auc": 0.97})
    run.log_dvc(dvc_repo)
    gates = check_gates(eval_report(), load_policy(REPO / "registry" / "policy.yaml"))
    mv = models.register_candidate(log_pyfunc(model_dir, run.run_id), gates, {"micro_auc": 0.97}, "tvau")
    models.promote("tvau", mv.version, why="lineage test")
    run.finish()

    info = lineage("models:/tvau@champion", dvc_repo)
    lock = yaml.safe_load((dvc_repo / "dvc.lock").read_text())
    expected = {o["path"]: o["md5"] for s in lock["stages"].values() for o in s["outs"]}
    assert {d["path"]: d["digest"] for d in info["datasets"]} == expected
    assert info["version"] == str(mv.version) and info["run_id"] == run.run_id and info["model"] == "tvau"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dvc_repo, capture_output=True, text=True,
                          check=True).stdout.strip()
    assert info["git_commit"] == head
    assert info["params"]["seed"] == "3" and info["params"]["model.backbone"] == "embedded:tiny"
    assert info["metrics"]["validation.micro_auc"] == pytest.approx(0.97)
    # footage: the source stage's video files only, hashed independently from the workspace copy
    videos = sorted(p for p in (dvc_repo / "data" / "synth").rglob("*.mp4"))
    assert [f["path"] for f in info["footage"]] == [str(p.relative_to(dvc_repo)) for p in videos]
    for f, p in zip(info["footage"], videos):
        assert f["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()

    # the CLI prints only JSON with --json, and one error line for an unknown alias
    from tvau.cli import app

    params = dvc_repo / "params.yaml"
    params.write_text(f"seed: 3\nregistry:\n  store_dir: {tmp_path / 'mlflow'}\n")
    r = CliRunner().invoke(app, ["lineage", "models:/tvau@champion", "--json", "--params", str(params)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["datasets"] == info["datasets"]
    r = CliRunner().invoke(app, ["lineage", "models:/tvau@nothing", "--params", str(params)])
    assert r.exit_code == 2 and r.stderr.startswith("error: models:/tvau@nothing") and "Traceback" not in r.output
    with pytest.raises(LineageError, match="cannot trace"):
        lineage("ftp://bucket/manifest.json", dvc_repo)


def test_lineage_on_a_fresh_clone_and_verify(store, model_dir, tiny_cache, dvc_repo, tmp_path):
    """A fresh clone has an empty DVC cache: after `dvc repro` (what `make demo` runs) every dataset
    resolves, the committed one from the working tree; --verify recomputes the digests and names a
    corrupted cache file; a committed output edited by hand is refused naming it."""
    from tvau.cli import app

    run = PipelineRun.start(store, dvc_repo, name="fresh")
    run.log_dvc(dvc_repo)
    gates = check_gates(eval_report(), load_policy(REPO / "registry" / "policy.yaml"))
    mv = models.register_candidate(log_pyfunc(model_dir, run.run_id), gates, {"micro_auc": 0.97}, "tvau")
    run.finish()
    clone = tmp_path / "clone"
    _sh(["git", "clone", "-q", str(dvc_repo), str(clone)], tmp_path)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    _sh([sys.executable, "-m", "dvc", "repro", "-q"], clone, env)
    info = lineage(f"models:/tvau/{mv.version}", clone, verify=True)
    found = {d["path"]: d["found"] for d in info["datasets"]}
    assert found == {"data/backbone": "working tree", "data/synth": "dvc cache", "data/index.txt": "dvc cache"}
    assert len(info["footage"]) == 2 and info["verify"]["checked"] == sum(d["files"] for d in info["datasets"]) + 1
    # registered without the pipeline's identity tags: the artifacts cannot be vouched for, and it says so
    assert [d["expected"] for d in info["verify"]["differ"]] == ["no digest registered"]
    # a cache file whose bytes no longer match its md5 is named
    video = next(d for d in json.loads(Path(_cache_manifest(clone, info, "data/synth")).read_text())
                 if d["relpath"].endswith(".mp4"))
    cached = clone / ".dvc" / "cache" / "files" / "md5" / video["md5"][:2] / video["md5"][2:]
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes() + b"x")
    differ = lineage(f"models:/tvau/{mv.version}", clone, verify=True)["verify"]["differ"]
    assert [d["path"] for d in differ if "md5" in d] == [f"data/synth/{video['relpath']}"]
    params = clone / "params.yaml"
    params.write_text(f"seed: 3\nregistry:\n  store_dir: {tmp_path / 'mlflow'}\n")
    r = CliRunner().invoke(app, ["lineage", f"models:/tvau/{mv.version}", "--verify", "--params", str(params)])
    assert r.exit_code == 1 and f"DIFFERS data/synth/{video['relpath']}" in r.stdout, r.output
    # a version registered as the retrain flow does (its adapters' digest as a tag) with its local
    # backbone bundled: download_model repoints model.json at the bundle, verify reads the logged bytes
    from tvau.model.tiny import ensure_tiny
    from tvau.model.trained import backbone_sha256, model_digest

    backbone = str(ensure_tiny(tiny_cache, 0))
    bundled = write_model_dir(tmp_path / "bundled", tiny_cache, backbone=backbone,
                                       backbone_sha256=backbone_sha256(backbone))
    run = PipelineRun.start(store, dvc_repo, name="bundled")
    run.log_dvc(dvc_repo)
    mv2 = models.register_candidate(log_pyfunc(bundled, run.run_id),
                                    gates, {"micro_auc": 0.97}, "tvau",
                                    identity={"key": "k", "adapters": model_digest(bundled)})
    run.finish()
    cached.write_bytes(cached.read_bytes()[:-1])  # the cache file as it was
    assert lineage(f"models:/tvau/{mv2.version}", clone, verify=True)["verify"]["differ"] == []
    # an edited committed output: neither the cache nor the working tree holds the recorded bytes
    (clone / "data" / "backbone" / "model.bin").write_text("other weights\n")
    with pytest.raises(LineageError, match=r"data/backbone: neither the DVC cache .* nor the working tree"):
        lineage(f"models:/tvau/{mv.version}", clone)


def _cache_manifest(root: Path, info: dict, path: str) -> Path:
    digest = next(d["digest"] for d in info["datasets"] if d["path"] == path)
    return root / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]


MANIFEST_KEYS = {"manifest", "format", "scored_at", "params_hash", "code_version", "outputs", "model", "input",
                 "training"}
MODEL_KEYS = {"model", "version", "aliases", "uri", "run_id", "git_commit", "params", "metrics", "datasets",
              "footage"}


def test_lineage_of_a_scoring_manifest_on_s3(store, model_dir, dvc_repo, tmp_path, monkeypatch):
    """Score a video in S3 with the registered champion, then trace its manifest: outputs (their
    bytes hash as recorded) -> model version -> run -> DVC datasets -> footage, and the input's key,
    size, ETag and sha256 computed here from the uploaded bytes."""
    import numpy as np

    from tvau.cli import app
    from tvau.s3server import running_s3_server
    from tvau.score.config import ScoreConfig
    from tvau.score.core import score_prefix
    from tvau.score.s3io import make_client
    from tvau.video import VideoWriter

    run = PipelineRun.start(store, dvc_repo, name="scored")
    run.log_dvc(dvc_repo)
    gates = check_gates(eval_report(), load_policy(REPO / "registry" / "policy.yaml"))
    from tvau.evaluate.calibration import fit

    calibration = fit([0.5] * 20 + [1.0] * 20, [False] * 20 + [True] * 20, 0.05, 4 / 24,
                      {"fps": 24.0, "clip_frames": 8, "stride": 8}, 50, 0, 0.95, "validation")
    mv = models.register_candidate(log_pyfunc(model_dir, run.run_id, calibration=calibration), gates,
                                   {"micro_auc": 0.97}, "tvau")
    models.promote("tvau", mv.version, why="scoring lineage test")
    run.finish()

    video = tmp_path / "cam.mp4"
    with VideoWriter(video, 24.0, 64, 64) as w:
        for t in range(16):
            w.write(np.full((64, 64, 3), 10 * t, np.uint8))
    data = video.read_bytes()
    params = dvc_repo / "params.yaml"
    params.write_text(f"seed: 3\nregistry:\n  store_dir: {tmp_path / 'mlflow'}\n")
    with running_s3_server(buckets=("footage", "results"), data_dir=tmp_path / "s3") as env:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        cfg = ScoreConfig(escalate_level=1.0, clip_frames=8, stride=8, backoff_s=0.01)
        client = make_client(cfg)
        client.put_object(Bucket="footage", Key="night/cam 1.mp4", Body=data)
        res = score_prefix("s3://footage/night/", "s3://results/out", "models:/tvau@champion", cfg, client=client)
        assert [r.status for r in res] == ["scored"], res
        uri = res[0].output
        info = lineage(uri, dvc_repo)
        assert info["manifest"] == uri and set(info) == MANIFEST_KEYS
        assert info["input"] == {"uri": "s3://footage/night/cam 1.mp4", "bucket": "footage", "key": "night/cam 1.mp4",
                                 "size": len(data), "etag": hashlib.md5(data).hexdigest(),
                                 "sha256": hashlib.sha256(data).hexdigest()}
        assert info["model"]["name"] == "tvau" and info["model"]["version"] == str(mv.version)
        assert info["model"]["run_id"] == run.run_id and info["model"]["uri"] == "models:/tvau@champion"
        assert len(info["outputs"]) == 6
        for o in info["outputs"].values():
            body = client.get_object(Bucket="results", Key=o["uri"].removeprefix("s3://results/"))["Body"].read()
            assert hashlib.sha256(body).hexdigest() == o["sha256"]
        t = info["training"]
        assert set(t) == MODEL_KEYS and t["run_id"] == run.run_id and t["version"] == str(mv.version)
        lock = yaml.safe_load((dvc_repo / "dvc.lock").read_text())
        assert {d["path"]: d["digest"] for d in t["datasets"]} == {o["path"]: o["md5"] for s in lock["stages"].values()
                                                                   for o in s["outs"]}
        videos = sorted((dvc_repo / "data" / "synth").rglob("*.mp4"))
        assert [f["sha256"] for f in t["footage"]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in videos]

        # The CLI: only JSON with --json (stable keys), text naming the chain without it.
        r = CliRunner().invoke(app, ["lineage", uri, "--json", "--params", str(params)])
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert set(out) == MANIFEST_KEYS and set(out["training"]) == MODEL_KEYS and out["input"] == info["input"]
        r = CliRunner().invoke(app, ["lineage", uri, "--params", str(params)])
        assert r.exit_code == 0 and f"version {mv.version}" in r.stdout and hashlib.sha256(data).hexdigest() in r.stdout
        # A missing manifest, a URI that is no manifest's, a JSON that is no manifest, a bucket that does
        # not exist: one line naming the URI, exit 2.
        client.put_object(Bucket="results", Key="out/fake/manifest.json", Body=b'{"format": "other"}')
        for bad in ("s3://results/out/night/nothing.mp4/manifest.json", "s3://results/out/night/",
                    "s3://results/out/fake/manifest.json", "s3://nobucket/x/manifest.json",
                    uri.replace("manifest.json", "dialogue.json"), "s3://"):
            r = CliRunner().invoke(app, ["lineage", bad, "--json", "--params", str(params)])
            assert r.exit_code == 2, (bad, r.output)
            assert r.stdout == "" and r.stderr.startswith(f"error: {bad}") and r.stderr.count("\n") == 1, r.stderr
