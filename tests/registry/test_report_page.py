"""The report's front page: one screen with what ran, each gate, model vs baseline and the links,
rendered by headless Debian `chromium` (installed by `make system-deps`) and checked on the
screenshot and on the DOM chromium built."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.registry.helpers import eval_report
from tvau.registry.gates import check_gates
from tvau.registry.pipeline import RetrainSummary, metrics_table
from tvau.registry.policy import load_policy
from tvau.report import Section, front_page, write_html_report

REPO = Path(__file__).resolve().parents[2]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _gates():
    evaluation = eval_report(rbdc=0.61, baseline=0.6)  # one failing gate: beats_baseline.rbdc
    return evaluation, check_gates(evaluation, load_policy(REPO / "registry" / "policy.yaml"))


def _page(tmp_path: Path) -> Path:
    evaluation, report = _gates()
    summary = RetrainSummary(
        flow_run_id="1b2c", flow_run_url="http://127.0.0.1:4200/runs/flow-run/1b2c", mlflow_run_id="abc123",
        mlflow_run_url="http://127.0.0.1:5000/#/experiments/1/runs/abc123",
        stages=[{"name": n, "cmd": f"dvc repro {n}", "seconds": s, "status": "ok"}
                for n, s in (("data", 41.0), ("quality", 12.5), ("build", 20.0), ("train_ahd", 200.0),
                             ("train_rae", 180.0), ("evaluate", 90.0))],
        gates=report.to_dict(), metrics_table=metrics_table(evaluation), model_version="3", champion_before="2",
        champion_after="2", status="FAILED", error="gates failed", seconds=560.0)
    stage_metrics = {"build": {"clips": 410, "seconds": 19.8, "splits": {"train": 300, "validation": 110}}}
    return write_html_report(tmp_path / "report.html", "tvau demo",
                             [Section("Stage metrics", stage_metrics)], front=front_page(summary.__dict__))


def test_front_page_html_has_gates_stages_links_and_no_raw_json(tmp_path):
    text = _page(tmp_path).read_text()
    assert "class='gates'" in text and "beats_baseline.rbdc" in text and "<td class='fail'>FAIL</td>" in text
    n = len(_gates()[1].gates)
    assert text.count("<td class='pass'>pass</td>") == n - 1  # every other gate, coloured
    assert "http://127.0.0.1:5000/#/experiments/1/runs/abc123" in text and "/runs/flow-run/1b2c" in text
    assert "train_rae" in text and "class='versus'" in text
    assert "<pre>" not in text and '"clips"' not in text  # stage metrics as nested tables, not JSON


def _chromium() -> str:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(exe).exists(), "chromium is missing: run `make system-deps` (apt-get install chromium)"
    return exe


def test_front_page_screenshot_in_headless_chromium(tmp_path):
    page = _page(tmp_path)
    exe = _chromium()
    shot = tmp_path / "shot.png"
    common = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,800", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape == (800, 1280, 3)
    assert img.std() > 20  # not blank
    # the gate table's green and red cells are on the first screen
    green = ((img[..., 1] > 200) & (img[..., 0] < 235) & (img[..., 0] > 200) & (img[..., 2] < 235)).sum()
    red = ((img[..., 0] > 240) & (img[..., 1] < 230) & (img[..., 1] > 200)).sum()
    assert green > 500 and red > 50, (green, red)
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    gate_table = re.search(r"<table class=\"gates\">.*?</table>", dom, re.DOTALL)
    assert gate_table and gate_table.group(0).count("<tr>") == 1 + len(_gates()[1].gates)  # header + gates
