"""Fixtures of the scoring tests: a trained-model directory of the tiny backbone, a synthetic
night of footage, the real S3 server (rclone) on loopback, and helpers to put files in it.

The code under test loads through tvau.score.model.load_trained_model (tvau.model.trained); the
`loader` fixture hands that same real loader to the functions that take one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvau.s3server import running_s3_server


def write_calibration(model_dir: Path, threshold: float, sigma_s: float = 4 / 24, normal: int = 40,
                      anomalous: int = 40) -> Path:
    """calibration.json fitted by the real fit() on validation scores chosen so that the fitted
    threshold is `threshold`: every normal video scores it, every anomalous one 1.0."""
    from tvau.evaluate.calibration import fit

    block = fit([threshold] * normal + [1.0] * anomalous, [False] * normal + [True] * anomalous, 0.05, sigma_s,
                {"fps": 24.0, "clip_frames": 24, "stride": 24}, 200, 0, 0.95, "validation")
    (model_dir / "calibration.json").write_text(json.dumps(block, indent=2, sort_keys=True))
    return model_dir


def make_model_dir(out: Path, cache_dir: str, seed: int = 0, threshold: float | None = 0.5) -> Path:
    """A trained-model directory of the tiny backbone (random adapters), with a calibration.json
    at `threshold` (None: without one)."""
    from tvau.data.config import ClipConfig
    from tvau.model.config import ModelConfig
    from tvau.model.tvau import TVAU

    cfg = ModelConfig(backbone="embedded:tiny", cache_dir=cache_dir)
    model = TVAU.from_config(cfg, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_adapters(out / "adapters.safetensors")
    card = {"format": "tvau-model/1", "model": cfg.model_dump(mode="json"), "seed": seed,
            "clip": ClipConfig().model_dump(mode="json"), "backbone": cfg.backbone, "backbone_sha256": None}
    (out / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    if threshold is not None:
        write_calibration(out, threshold)
    return out


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    from tvau.model.tiny import ensure_tiny

    cache = tmp_path_factory.mktemp("models")
    ensure_tiny(cache, 0)
    return make_model_dir(tmp_path_factory.mktemp("trained") / "tvau", str(cache))


@pytest.fixture(scope="session")
def night(tmp_path_factory) -> list[Path]:
    """Three short synthetic videos (64x64, 48 frames at 24 fps)."""
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    out = tmp_path_factory.mktemp("night") / "synth"
    generate(out, SynthConfig(videos=3, size=64, frames=48, scenes=2), seed=7, workers=1, progress=False)
    return sorted(out.rglob("*.mp4"))


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with running_s3_server(buckets=("footage", "results"), data_dir=tmp_path_factory.mktemp("s3")) as env:
        yield env


@pytest.fixture
def s3_vars(s3, monkeypatch):
    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    return s3


# ------------------------------------------------------------------ bad inputs and fault injection


def bad_videos(tmp: Path, good: Path) -> dict[str, tuple[bytes, str]]:
    """{key name: (bytes, expected quarantine reason)} for every kind of bad input."""
    import wave

    import numpy as np

    from tvau.video import VideoWriter

    data = good.read_bytes()
    wav = tmp / "audio.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    ffv1 = tmp / "ffv1.mkv"
    with VideoWriter(ffv1, 24, 64, 64, codec="ffv1") as w:
        for _ in range(4):
            w.write(np.zeros((64, 64, 3), np.uint8))
    tiny = tmp / "tiny.mp4"
    with VideoWriter(tiny, 24, 16, 16, codec="mpeg4") as w:
        for _ in range(4):
            w.write(np.zeros((16, 16, 3), np.uint8))
    return {
        "empty.mp4": (b"", "zero bytes"),
        "half.mp4": (data[: len(data) // 2], "truncated"),
        "notes.mp4": (b"These are the night guard's notes, not a video.\n" * 20, "not a video"),
        "audio.mkv": (wav.read_bytes(), "no video stream"),
        "lossless.mkv": (ffv1.read_bytes(), "unsupported codec"),
        "stamp.mp4": (tiny.read_bytes(), "absurd resolution"),
    }


class FaultProxy:
    """An HTTP proxy on loopback between the S3 client and the real server that injects faults:
    `plan(method, path, n)` -> None (forward), "503" (SlowDown answer), "drop" (close without an
    answer) or "cut" (forward, but close the connection half-way through the body)."""

    def __init__(self, upstream: str, plan):
        import http.client
        import http.server
        import threading
        import urllib.parse

        self.upstream = urllib.parse.urlparse(upstream)
        self.plan = plan
        self.count = 0
        self.faults: list[tuple[str, str, str]] = []
        lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    proxy.count += 1
                    n = proxy.count
                fault = proxy.plan(self.command, self.path, n)
                if fault:
                    proxy.faults.append((fault, self.command, self.path))
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "503":
                    msg = b"<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "cut" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def calibrate():
    return write_calibration


@pytest.fixture(scope="session")
def loader():
    from tvau.model.trained import load_trained

    return load_trained


@pytest.fixture(scope="session")
def fault_proxy():
    return FaultProxy


@pytest.fixture(scope="session")
def make_bad_videos():
    return bad_videos
