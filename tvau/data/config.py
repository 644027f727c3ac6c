"""Clip sampling parameters (params.yaml: clip). Used by tvau/data/clips.py."""

from __future__ import annotations

from pydantic import Field

from tvau.configbase import Section


class ClipConfig(Section):
    num_frames: int = Field(24, ge=1)  # frames per clip (paper: 24)
    stride: int = Field(12, ge=1)  # frames between clip starts (paper: 12)
    height: int = Field(112, ge=1)  # model input height, a multiple of 28 (paper: 476)
    width: int = Field(112, ge=1)  # model input width, a multiple of 28 (paper: 868)
    # Add a last clip ending at the final frame when the stride grid stops short of it, so every
    # frame is scored (ours; the paper does not say how it covers a video's tail).
    cover_tail: bool = True
    # Frames per temporal token when pooling masks to the patch grid (Qwen2.5-VL: 2, METHOD.md 2).
    temporal_patch: int = Field(2, ge=1)
