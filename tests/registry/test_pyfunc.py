"""The registered model as an MLflow pyfunc: `mlflow.pyfunc.load_model("models:/tvau@champion")`
scores a clip, `download_model` returns the trained-model directory, and `mlflow models serve`
answers a REST request on loopback (a real server on a free port). Untrained weights: the scores
are checked against the model run directly, not for quality."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.registry.helpers import eval_report, write_model_dir
from tvau.registry import models
from tvau.registry.gates import check_gates
from tvau.registry.policy import load_policy
from tvau.registry.pyfunc import log_pyfunc
from tvau.registry.tracking import PipelineRun

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def champion(store, model_dir, tmp_path):
    report = eval_report()
    run = PipelineRun.start(store, tmp_path, name="pyfunc")
    uri = log_pyfunc(model_dir, run.run_id)
    gates = check_gates(report, load_policy(REPO / "registry" / "policy.yaml"))
    mv = models.register_candidate(uri, gates, {"micro_auc": 0.97}, "tvau")
    models.promote("tvau", mv.version, why="test")
    run.finish()
    return mv


def _direct_scores(model_dir: Path, clip: np.ndarray) -> np.ndarray:
    """The same model built by hand from model.json + adapters, run directly."""
    from tvau.model.config import ModelConfig
    from tvau.model.tvau import TVAU

    meta = json.loads((model_dir / "model.json").read_text())
    m = TVAU.from_config(ModelConfig.model_validate(meta["model"]), meta["seed"])
    m.load_adapters(model_dir / "adapters.safetensors")
    return m.heatmap_frames(clip).flatten(1).amax(1).numpy()


def _clip(seed=0):
    clip = np.random.default_rng(seed).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    clip[:, 10:30, 20:40] = 255  # a bright block so the heatmap is not flat noise
    return clip


def test_pyfunc_load_by_alias_scores_a_clip(champion, model_dir):
    import mlflow

    from tvau.registry.resolve import download_model

    m = mlflow.pyfunc.load_model("models:/tvau@champion")
    assert m.metadata.get_model_info().signature.inputs.to_dict()[0]["tensor-spec"]["dtype"] == "uint8"
    clip = _clip()
    out = m.predict(clip[None])
    assert out["frame_scores"].shape == (1, 4)
    assert out["heatmap"].shape[0] == 1 and out["heatmap"].ndim == 4
    np.testing.assert_allclose(out["frame_scores"][0], _direct_scores(model_dir, clip), rtol=1e-5, atol=1e-6)
    # the trained-model directory behind the alias, for tvau.model.trained.load_trained
    local = download_model("models:/tvau@champion")
    assert (local / "adapters.safetensors").read_bytes() == (model_dir / "adapters.safetensors").read_bytes()
    assert json.loads((local / "model.json").read_text()) == json.loads((model_dir / "model.json").read_text())
    with pytest.raises(ValueError, match="models:/tvau@nope"):
        download_model("models:/tvau@nope")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.services
def test_mlflow_models_serve_answers_rest(champion, model_dir, store, tmp_path):
    port = _free_port()
    # mlflow's server execs `uvicorn` by name: the environment's bin directory must be on PATH, as it
    # is for a user in an activated venv (make test calls .venv/bin/pytest without activating).
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, MLFLOW_TRACKING_URI=store.resolved_tracking_uri(tmp_path), PATH=path)
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed in the finally below, after the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/tvau@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not come up in 150 s"
            time.sleep(1)
        clip = _clip(1)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                     data=json.dumps({"inputs": clip[None].tolist()}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            body = json.loads(r.read())
        scores = np.asarray(body["predictions"]["frame_scores"], np.float32)
        np.testing.assert_allclose(scores[0], _direct_scores(model_dir, clip), rtol=1e-5, atol=1e-6)
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=b'{"inputs": [[1, 2]]}',
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=60)
        assert 400 <= err.value.code < 500
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_local_backbone_travels_with_the_model(store, tiny_cache, tmp_path, monkeypatch):
    """A model trained on a local backbone directory (relative to the training checkout) loads and
    scores from anywhere: the backbone is bundled and checked against backbone_sha256."""
    import shutil

    import mlflow

    from tvau.model.tiny import ensure_tiny
    from tvau.registry.resolve import download_model
    from tvau.storage import sha256_file

    train_root = tmp_path / "checkout"
    shutil.copytree(ensure_tiny(tiny_cache, 0), train_root / "data" / "backbone")
    digest = sha256_file(train_root / "data" / "backbone" / "model.safetensors")
    monkeypatch.chdir(train_root)  # model.json says "data/backbone", relative to the checkout
    mdir = write_model_dir(train_root / "data" / "models" / "tvau", tiny_cache, seed=1,
                                    backbone="data/backbone", backbone_sha256=digest)
    run = PipelineRun.start(store, train_root, name="bundled")
    uri = log_pyfunc(mdir, run.run_id, root=train_root)
    gates = check_gates(eval_report(), load_policy(REPO / "registry" / "policy.yaml"))
    mv = models.register_candidate(uri, gates, {}, "tvau")
    run.finish()
    clip = _clip(2)
    expected = _direct_scores(mdir, clip)

    elsewhere = tmp_path / "serving"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "data/backbone" does not exist here
    out = mlflow.pyfunc.load_model(f"models:/tvau/{mv.version}").predict(clip[None])
    np.testing.assert_allclose(out["frame_scores"][0], expected, rtol=1e-5, atol=1e-6)
    local = download_model(f"models:/tvau/{mv.version}")
    meta = json.loads((local / "model.json").read_text())
    assert Path(meta["backbone"]).is_absolute() and Path(meta["model"]["backbone"]).is_dir()
    assert sha256_file(Path(meta["backbone"]) / "model.safetensors") == digest
