"""Annotation construction parameters (params.yaml: construct).

docs/method.md section 8 describes the three stages; only the tracking gate is a published (thesis)
value. Every other number here is our documented default, chosen for the synthetic footage and
meant to be tuned per dataset: none of them is the paper's setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tvau.configbase import Section


class ConstructConfig(Section):
    # --- stage 1: frame-wise structured annotation -------------------------------------------
    # Who annotates each frame: "oracle" (object-id maps + the generator's attribute sidecar),
    # "masks" (connected components of the masks, for ShanghaiTech), "lvlm" (the backbone, JSON).
    annotator: Literal["oracle", "masks", "lvlm"] = "oracle"
    # Reader of the footage under data/: "ubnormal" (also our synthetic layout) | "shanghaitech".
    dataset: Literal["ubnormal", "shanghaitech"] = "ubnormal"
    # Connected components smaller than this many pixels are noise, not objects (our default).
    min_area: int = Field(4, ge=1)
    # Category the masks annotator gives every component: masks carry no class (our default;
    # ShanghaiTech's anomalous targets are mostly people).
    masks_category: str = "person"
    # LVLM annotator: annotate every k-th frame (LVLM calls are expensive; the tracker bridges
    # the gaps), attempts after a malformed answer, token budget, and what to do when every
    # attempt failed: "masks" annotates that frame from the masks instead (counted), "fail" stops.
    lvlm_frame_stride: int = Field(4, ge=1)
    lvlm_max_retries: int = Field(2, ge=0)
    lvlm_max_new_tokens: int = Field(160, ge=8)
    lvlm_fallback: Literal["masks", "fail"] = "masks"

    # --- stage 2: object timelines -------------------------------------------------------------
    # Hungarian matching gate on centroid distance, as a fraction of max(H, W) (thesis: 1/10).
    match_gate: float = Field(0.1, gt=0)
    # Also require equal described colours to link two detections (ours, not the thesis'): with
    # attribute annotators it prevents identity swaps where people pass close by; turn it off for
    # colours measured from pixels (the masks annotator), which flicker with shading.
    match_colors: bool = True
    # Frames a track may go unseen (occlusion, LVLM stride) and still be continued (our default).
    max_gap: int = Field(8, ge=0)
    # Tracks with fewer points are dropped as fragments, and counted (our default).
    min_track_points: int = Field(3, ge=1)
    # Motion-state thresholds on the mean speed, in frame sizes (max(H, W)) per second (ours; the
    # generator walks at 0.07-0.27 and runs at 0.21-0.72 frame sizes/s, depending on perspective):
    # below static_speed "static", below small_speed "small movement", at or above fast_speed
    # "fast"; otherwise "cross-region" when the start and end 3x3 regions differ, else "walking".
    static_speed: float = Field(0.02, ge=0)
    small_speed: float = Field(0.05, ge=0)
    fast_speed: float = Field(0.3, gt=0)

    # --- stage 3: anomaly-focused refinement ---------------------------------------------------
    # Gaussian blur of the background outside the anomaly mask (the paper's values are not
    # published): sigma in pixels, and the mask is dilated by this many pixels first so the
    # target's outline stays sharp.
    blur_sigma: float = Field(6.0, gt=0)
    blur_dilate: int = Field(2, ge=0)
    # Frames of the anomalous span shown to the describer (uniformly sampled).
    refine_frames: int = Field(8, ge=1)
    # Consistency check: the described action's motion level may differ from the measured motion
    # state's level by at most this many steps (levels in tvau/construct/motion.py).
    motion_tolerance: int = Field(1, ge=0)

    # --- build: training sets ------------------------------------------------------------------
    # Vision patch size of the backbone, for pooling masks to the patch grid (Qwen2.5-VL: 14).
    patch_size: int = Field(14, ge=1)
    # AHD clips per .npz shard (a few large files, not one per clip).
    shard_clips: int = Field(512, ge=1)
    # Videos without an official split (split is None) go to validation / test with these
    # shares, by a stable hash of the video name (our default).
    val_fraction: float = Field(0.15, ge=0, lt=1)
    test_fraction: float = Field(0.15, ge=0, lt=1)
