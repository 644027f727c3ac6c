"""`tvau model info` / `tvau model heatmap`, and the params.yaml mirror of ModelConfig."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from tvau.cli import app
from tvau.model.config import PROFILES, ModelConfig

ROOT = Path(__file__).resolve().parents[2]


def _params(tmp_path, tiny_cfg) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"seed": 0, "model": {"backbone": tiny_cfg.backbone, "cache_dir": tiny_cfg.cache_dir},
                                 "clip": {"num_frames": 8, "height": 56, "width": 84}}))
    return p


def test_info_7b_on_meta_device(tmp_path, tiny_cfg):
    r = CliRunner().invoke(app, ["model", "info", "--arch", "qwen2.5-vl-7b", "--json",
                                 "--params", str(_params(tmp_path, tiny_cfg))])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    # Independent arithmetic (see tvau/model/info.py): 5 taps x (1280*1024+1024+1024*3584+3584) + 5.
    assert d["ahd"] == 5 * (1280 * 1024 + 1024 + 1024 * 3584 + 3584) + 5
    assert abs(d["ahd"] - 25e6) / 25e6 < 0.01  # paper: about 25 M
    assert abs(d["rae"] - 7.5e6) / 7.5e6 < 0.025  # paper: about 7.5 M
    assert d["lora"] == 28 * 16 * ((3584 + 3584) + (3584 + 512))
    assert 8.2e9 < d["backbone"] < 8.4e9  # Qwen2.5-VL-7B-Instruct: 8.29 B parameters
    assert d["taps"] == [0, 7, 15, 23, 31]


def test_info_configured_tiny_and_bad_arch(tmp_path, tiny_cfg):
    params = str(_params(tmp_path, tiny_cfg))
    r = CliRunner().invoke(app, ["model", "info", "--json", "--params", params])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    assert {"ahd", "rae", "lora", "backbone"} <= set(d) and d["taps"] == [0, 1, 3, 5, 7]
    assert d["lora"] == 2 * 16 * ((64 + 64) + (64 + 32))  # q_proj 64->64, v_proj 64->32 (2 kv heads x 16)
    r = CliRunner().invoke(app, ["model", "info", "--arch", "gpt", "--params", params])
    assert r.exit_code != 0 and "unknown architecture" in r.output


def test_heatmap_command_writes_frame_heatmap(tmp_path, tiny_cfg):
    out = tmp_path / "h" / "heat.npy"
    r = CliRunner().invoke(app, ["model", "heatmap", "--out", str(out), "--params",
                                 str(_params(tmp_path, tiny_cfg))])
    assert r.exit_code == 0, r.output
    h = np.load(out)
    assert h.shape == (8, 56, 84) and h.min() >= 0 and h.max() <= 1


def test_heatmap_on_bad_video_files_is_one_line_exit_2(tmp_path, tiny_cfg, audio_only_mp4):
    """A zero-byte file (was: a PyAV traceback) and an audio-only mp4 (was: IndexError)."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    params = str(_params(tmp_path, tiny_cfg))
    for video, problem in ((empty, "cannot open video"), (audio_only_mp4, "no video stream")):
        r = CliRunner().invoke(app, ["model", "heatmap", "--video", str(video), "--params", params])
        assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(video) in lines[0] and problem in lines[0], r.stderr
        assert r.stdout == ""


def test_info_json_on_a_fresh_cache_prints_only_json(tmp_path):
    """The first run builds the embedded backbone, which imports DeepSpeed (through transformers),
    whose logger writes a warning to stdout: it must not land before the JSON. A real process, so
    the file descriptors are the real ones."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"model": {"backbone": "embedded:tiny", "cache_dir": str(tmp_path / "models")}}))
    res = subprocess.run([sys.executable, "-m", "tvau.cli", "model", "info", "--json", "--params", str(params)],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)  # the whole of stdout is one JSON document
    assert d["arch"] == "embedded:tiny" and (tmp_path / "models").exists()


def test_params_yaml_names_every_model_key_but_the_profiles():
    section = yaml.safe_load((ROOT / "params.yaml").read_text())["model"]
    assert set(section) == set(ModelConfig.model_fields) - set(PROFILES["embedded"])


def test_info_counts_the_7b_with_its_own_profile():
    # The embedded default's sizes (params.yaml) never leak into the paper's 7B: 24,926,725 is AHD's
    # count with the 7B profile's 1024-wide MLPs and five taps (tvau/model/info.py derives it).
    res = subprocess.run([sys.executable, "-m", "tvau.cli", "model", "info", "--arch", "qwen2.5-vl-7b", "--json",
                          "--params", str(ROOT / "params.yaml")], capture_output=True, text=True, check=False, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert (d["ahd"], d["rae"], d["lora"]) == (24_926_725, 7_637_744, 5_046_272)
