"""One instruction set for the floating-point kernels, so pretraining, training and evaluation give
the same bits on any x86-64 machine: their DVC outputs (and so dvc.lock) reproduce across CPUs.

PyTorch picks its CPU kernels by the best instruction set it finds, and its AVX-512 and AVX2
kernels round differently: the same heatmap differs in the last bits between the two (checked in
tests/test_cpu.py). `tvau train`, `tvau evaluate` and `tvau pretrain-backbone` therefore ask for
AVX2, which every x86-64 server of the last decade has: ATen's own kernels (ATEN_CPU_CAPABILITY),
MKL in its conditional-numerical-reproducibility mode (MKL_CBWR, same results on any AVX2 CPU) and
oneDNN (ONEDNN_MAX_CPU_ISA). A variable already set in the environment wins, so a user can opt out.
"""

from __future__ import annotations

import os
import platform

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu_kernels() -> None:
    """Set PINNED in this process's environment (before torch is imported; children inherit it)."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        for key, value in PINNED.items():
            os.environ.setdefault(key, value)
