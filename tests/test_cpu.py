"""tvau/cpu.py: training and evaluation compute with AVX2 kernels, so a model's heatmaps are the same
bits on an AVX-512 machine as on an AVX2-only one."""

from __future__ import annotations

import os
import subprocess
import sys

from tvau.cpu import PINNED

# Build the tiny model, run AHD on a fixed clip and print the capability and the heatmap's digest.
HEATMAP = """
import hashlib, sys
import numpy as np
if sys.argv[1] == "pinned":
    from tvau.cpu import pin_cpu_kernels
    pin_cpu_kernels()  # what `tvau train` and `tvau evaluate` do first
import torch
from tvau.model.config import ModelConfig
from tvau.model.tiny import ensure_tiny
from tvau.model.tvau import TVAU
torch.set_num_threads(1)
ensure_tiny(sys.argv[2], 0)
model = TVAU.from_config(ModelConfig(backbone="embedded:tiny", cache_dir=sys.argv[2]), seed=0)
clip = np.random.default_rng(0).integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)
heat = model.heatmap_frames(model.encode(clip)).detach().numpy()
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(heat.tobytes()).hexdigest())
"""

# An AVX2-only x86-64 machine, as far as the libraries can be told: ATen, MKL, oneDNN, numpy, OpenBLAS.
AVX2_MACHINE = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"}


def _run(mode: str, cache: str, extra: dict[str, str]) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PINNED and k not in AVX2_MACHINE} | extra
    res = subprocess.run([sys.executable, "-c", HEATMAP, mode, cache], capture_output=True, text=True, env=env,
                         check=False)
    assert res.returncode == 0, res.stderr
    capability, digest = res.stdout.split()[-2:]
    return capability, digest


def test_commands_compute_as_an_avx2_machine(tmp_path):
    cache = str(tmp_path / "models")
    pinned = _run("pinned", cache, {})
    assert pinned[0] == "AVX2"
    assert _run("plain", cache, AVX2_MACHINE) == pinned
    native = _run("plain", cache, {})
    if native[0] != "AVX2":  # this machine has faster kernels, which round differently: the pin matters
        assert native[1] != pinned[1]


def test_training_and_evaluation_commands_pin_before_anything_else(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from tvau import cpu
    from tvau.cli import app

    calls = []
    monkeypatch.setattr(cpu, "pin_cpu_kernels", lambda: calls.append("pinned"))
    missing = str(tmp_path / "missing")
    for args in (["train", "ahd", "--data", missing, "--params", missing],
                 ["evaluate", "--model", missing, "--data", missing, "--params", missing]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and calls == ["pinned"], (args, result.output)
        calls.clear()


def test_a_variable_set_by_the_user_wins():
    code = "import os; from tvau.cpu import pin_cpu_kernels; pin_cpu_kernels(); print(os.environ['ATEN_CPU_CAPABILITY'])"
    env = {k: v for k, v in os.environ.items() if k not in PINNED} | {"ATEN_CPU_CAPABILITY": "default"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert res.stdout.strip() == "default"
