"""Clip sampling parameters (params.yaml: clip). Used by tvau/data/clips.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tvau.configbase import Section

# How pixel masks become patch targets (ClipConfig.mask_pooling; tvau.data.clips.pool_masks reads the
# names from here, so the rule list has one source).
MaskPooling = Literal["nearest", "any"]


class ClipConfig(Section):
    num_frames: int = Field(24, ge=1)  # frames per clip (paper: 24)
    stride: int = Field(12, ge=1)  # frames between clip starts (paper: 12)
    height: int = Field(224, ge=1)  # model input height, a multiple of 28 (paper: 476)
    width: int = Field(224, ge=1)  # model input width, a multiple of 28 (paper: 868)
    # Add a last clip ending at the final frame when the stride grid stops short of it, so every
    # frame is scored (ours; the paper does not say how it covers a video's tail).
    cover_tail: bool = True
    # Frames per temporal token when pooling masks to the patch grid (Qwen2.5-VL: 2, docs/method.md 2).
    temporal_patch: int = Field(2, ge=1)
    # How a frame pair's pixel mask becomes one patch's training target (tvau.data.clips.pool_masks).
    # "nearest": the paper's rule (docs/method.md section 4), one sampled pixel per patch. "any" (ours): the
    # patch is anomalous when any of its pixels is, in either frame. At our scale (16-px patches of
    # 256-px frames) "nearest" left 82% of an abandoned bag's anomalous frame pairs, 58% of a thrown
    # ball's and 24% of a fallen person's with no anomalous patch at all, so AHD was taught that
    # those objects are normal.
    mask_pooling: MaskPooling = "any"
