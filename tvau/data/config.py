"""Clip sampling parameters (params.yaml: clip)."""

from __future__ import annotations

from tvau.configbase import Section


class ClipConfig(Section):
    num_frames: int = 24  # frames per clip (paper: 24)
    stride: int = 12  # frames between clip starts (paper: 12)
    height: int = 112  # model input height, a multiple of 28 (paper: 476)
    width: int = 112  # model input width, a multiple of 28 (paper: 868)
