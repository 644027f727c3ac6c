"""RBDC and TBDC (Ramachandra & Jones, WACV 2020) exactly as docs/method.md section 9 specifies.

Inputs
- ground-truth regions: one row per (anomalous track, frame) with an inclusive box x1, y1, x2, y2;
  a track is the set of rows sharing (video, track id);
- detections: (video, frame, x1, y1, x2, y2, score), any number per frame;
- num_frames: all frames of all evaluated videos, normal videos included.

Definition
- IoU uses inclusive pixels: width = x2 - x1 + 1, height = y2 - y1 + 1.
- Detections are swept by descending score, all videos pooled. A detection whose IoU with every
  ground-truth region of its frame is < alpha (or whose frame has none) is a false positive.
  Otherwise every region it matches (IoU >= alpha) that is not yet detected becomes detected; one
  detection may detect several regions. A detection whose matches were all detected before is
  neither a hit nor a false positive.
- RBDR = detected regions / all regions; TBDR = share of tracks with at least beta of their regions
  detected (the count c of a track of n regions qualifies when c / n >= beta); FPR = false
  positives / num_frames (false positives per frame, may exceed 1).
- The curve starts at (0, 0); points with FPR <= 1 are kept; if it never reaches FPR = 1 it is
  extended flat to 1. RBDC and TBDC are the trapezoid areas over FPR in [0, 1].
- Ties: detections with equal scores are one threshold step, and a curve point is recorded after
  each distinct score (equivalently after each detection when scores are distinct). This makes the
  result independent of the order in which tied detections are listed.

Implementation (vectorised; no Python loop over detections): whether a detection is a false
positive does not depend on the order, and a region is detected at the first threshold step of
any detection that matches it, so the sweep reduces to per-region minima of the step index over
matching (detection, region) pairs, found by joining both tables on (video, frame).

Heatmaps become detections through one of three named options (docs/method.md 9 says the paper did not
publish how; results depend on it):
- "components": threshold the heatmap (upsampled to frame size) at each level, take the 8-connected
  components, one box per component (its inclusive bounding box), score = heatmap maximum inside the
  component. Identical boxes from different levels are kept once.
- "boxes": boxes given from elsewhere (a detector; in our evaluation the dataset's object boxes,
  i.e. an oracle detector, which flatters the result), each scored by the heatmap maximum inside it.
- "motion": "boxes" with a real, non-learned detector: the "components" of the background-
  subtraction baseline's heatmap (tvau/baseline.py), each box scored by the evaluated heatmap's
  maximum inside it. The second option of docs/method.md 9 without an oracle: the model decides which
  moving or changed regions are anomalous, the detector only where they are. The baseline itself,
  being that detector, keeps its own "components" rows (tvau/evaluate/frames.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

REGION_OPTIONS = ("components", "boxes", "motion")


@dataclass(frozen=True)
class RegionCurves:
    """The swept curves (before clipping at FPR 1) and their clipped areas."""

    rbdc: float
    tbdc: float
    fpr: np.ndarray  # (G + 1,) false positives per frame after each score step, from 0
    rbdr: np.ndarray  # (G + 1,) region detection rate at the same steps
    tbdr: np.ndarray  # (G + 1,) track detection rate at the same steps
    num_regions: int
    num_tracks: int


def box_iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of boxes a[i] and b[i] (both (N, 4) x1, y1, x2, y2), inclusive pixels."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a + area_b - inter)


def _check_boxes(boxes: np.ndarray, what: str) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what}: boxes must have shape (N, 4), got {boxes.shape}")
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        raise ValueError(f"{what}: box {bad[0]} has x2 < x1 or y2 < y1: {boxes[bad[0]].tolist()}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{what}: boxes contain NaN or infinity")


def _area_under(fpr: np.ndarray, rate: np.ndarray) -> float:
    keep = fpr <= 1.0  # fpr is non-decreasing, so this keeps a prefix that includes (0, 0)
    x, y = fpr[keep], rate[keep]
    if x[-1] < 1.0:
        x, y = np.append(x, 1.0), np.append(y, y[-1])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def _min_steps_per_track(track: np.ndarray, first_step: np.ndarray, beta: float, never: int) -> np.ndarray:
    """Step at which each track reaches its beta share of detected regions (`never` if it does not)."""
    n = np.bincount(track)
    present = n > 0
    # Smallest integer c with c / n >= beta, decided with the same float division a reader would use.
    c = np.ceil(beta * n).astype(np.int64)
    lower = np.maximum(c - 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(present & (lower >= 1) & (lower / np.maximum(n, 1) >= beta), lower, c)
        c = np.where(present & (c / np.maximum(n, 1) < beta), c + 1, c)
    c = np.clip(c, 1, np.maximum(n, 1))
    order = np.lexsort((first_step, track))
    starts = np.concatenate(([0], np.cumsum(n)[:-1]))
    step = np.full(n.shape, never, dtype=np.int64)
    step[present] = first_step[order][starts[present] + c[present] - 1]
    return step[present]


@dataclass(frozen=True)
class RegionSweep:
    """The order-free part of the sweep: which score step each detection falls in and whether it is a
    false positive, and the step at which each region and each track is first detected."""

    steps: int  # G: distinct detection scores (step 0 = the highest); G = "never"
    det_step: np.ndarray  # (D,) step of each detection
    matched: np.ndarray  # (D,) bool: IoU >= alpha with some region of its frame (else a false positive)
    region_step: np.ndarray  # (R,) first step detecting each region, G if none
    track_step: np.ndarray  # (T,) step at which each track reaches its beta share, G if never
    track_video: np.ndarray  # (T,) video id of each track


def region_sweep(
    gt_video: np.ndarray,
    gt_track: np.ndarray,
    gt_frame: np.ndarray,
    gt_boxes: np.ndarray,
    det_video: np.ndarray,
    det_frame: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    alpha: float = 0.1,
    beta: float = 0.1,
    chunk_pairs: int = 4_000_000,
) -> RegionSweep:
    """The sweep of rbdc_tbdc_arrays (same arguments, without num_frames) before any curve is drawn."""
    gt_video = np.asarray(gt_video, dtype=np.int64).ravel()
    gt_track = np.asarray(gt_track, dtype=np.int64).ravel()
    gt_frame = np.asarray(gt_frame, dtype=np.int64).ravel()
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    det_video = np.asarray(det_video, dtype=np.int64).ravel()
    det_frame = np.asarray(det_frame, dtype=np.int64).ravel()
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    det_scores = np.asarray(det_scores, dtype=np.float64).ravel()
    R, D = gt_frame.size, det_frame.size
    if not (gt_video.size == gt_track.size == R == gt_boxes.shape[0]):
        raise ValueError("ground truth: video, track, frame and boxes differ in length")
    if not (det_video.size == D == det_boxes.shape[0] == det_scores.size):
        raise ValueError("detections: video, frame, boxes and scores differ in length")
    if R == 0:
        raise ValueError("RBDC/TBDC are undefined without ground-truth regions")
    if not (0 < alpha <= 1 and 0 < beta <= 1):
        raise ValueError(f"alpha and beta must lie in (0, 1], got {alpha}, {beta}")
    _check_boxes(gt_boxes, "ground truth")
    _check_boxes(det_boxes, "detections")
    if not np.isfinite(det_scores).all():
        raise ValueError("detections: scores contain NaN or infinity")

    # Score steps: step 0 is the highest score; equal scores share a step.
    order = np.argsort(-det_scores, kind="stable")
    sorted_scores = det_scores[order]
    new_step = np.ones(D, dtype=bool)
    new_step[1:] = sorted_scores[1:] != sorted_scores[:-1]
    step = np.empty(D, dtype=np.int64)
    step[order] = np.cumsum(new_step) - 1
    G = int(new_step.sum())
    never = G  # sentinel step: not detected at any threshold

    # Join detections to the regions of their (video, frame).
    span = int(max(gt_frame.max(initial=0), det_frame.max(initial=0))) + 1
    r_key = gt_video * span + gt_frame
    d_key = det_video * span + det_frame
    r_order = np.argsort(r_key, kind="stable")
    r_key_sorted = r_key[r_order]
    lo = np.searchsorted(r_key_sorted, d_key, side="left")
    cnt = np.searchsorted(r_key_sorted, d_key, side="right") - lo

    matched = np.zeros(D, dtype=bool)
    first_step = np.full(R, never, dtype=np.int64)
    cum = np.cumsum(cnt)
    total = int(cum[-1]) if D else 0
    # Chunk boundaries over detections so that each chunk expands to about chunk_pairs pairs.
    cuts = np.searchsorted(cum, np.arange(chunk_pairs, total, chunk_pairs), side="left")
    bounds = np.unique(np.concatenate(([0], cuts + 1, [D]))) if D else np.array([0])
    for a, b in itertools.pairwise(bounds):
        c = cnt[a:b]
        n_pairs = int(c.sum())
        if n_pairs == 0:
            continue
        d = np.repeat(np.arange(a, b), c)
        within = np.arange(n_pairs) - np.repeat(np.cumsum(c) - c, c)
        r = r_order[lo[d] + within]
        hit = box_iou_inclusive(det_boxes[d], gt_boxes[r]) >= alpha
        matched[d[hit]] = True
        np.minimum.at(first_step, r[hit], step[d[hit]])

    # Tracks: renumber (video, track id) to 0..T-1.
    keys, track_idx = np.unique(np.stack([gt_video, gt_track], axis=1), axis=0, return_inverse=True)
    track_step = _min_steps_per_track(track_idx.ravel(), first_step, beta, never)
    return RegionSweep(G, step, matched, first_step, track_step, keys[:, 0])


def curve_areas(fpr: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """_area_under for each row of (n, P) curves (fpr rows non-decreasing, starting at 0)."""
    fpr, rate = np.atleast_2d(fpr), np.atleast_2d(rate)
    keep = fpr <= 1.0  # a prefix of each row, including its first point
    seg = keep[:, 1:]  # segment i -> i+1 lies inside when its right end does
    terms = np.where(seg, (fpr[:, 1:] - fpr[:, :-1]) * (rate[:, 1:] + rate[:, :-1]) / 2, 0.0)
    last = keep.sum(1) - 1
    rows = np.arange(len(fpr))
    x, y = fpr[rows, last], rate[rows, last]
    return terms.sum(1) + np.where(x < 1.0, (1.0 - x) * y, 0.0)


def rbdc_tbdc_arrays(
    gt_video: np.ndarray,
    gt_track: np.ndarray,
    gt_frame: np.ndarray,
    gt_boxes: np.ndarray,
    det_video: np.ndarray,
    det_frame: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    num_frames: int,
    alpha: float = 0.1,
    beta: float = 0.1,
    chunk_pairs: int = 4_000_000,
) -> RegionCurves:
    """RBDC/TBDC of flat arrays. gt_*: (R,), gt_boxes (R, 4); det_*: (D,), det_boxes (D, 4).
    Videos are integer ids shared by both tables; tracks are identified by (video, track id)."""
    if np.asarray(gt_frame).size and num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    sw = region_sweep(gt_video, gt_track, gt_frame, gt_boxes, det_video, det_frame, det_boxes, det_scores,
                      alpha=alpha, beta=beta, chunk_pairs=chunk_pairs)
    G, R, T = sw.steps, sw.region_step.size, sw.track_step.size
    fp_per_step = np.bincount(sw.det_step[~sw.matched], minlength=G)
    regions_per_step = np.bincount(sw.region_step, minlength=G + 1)[:G]
    tracks_per_step = np.bincount(sw.track_step, minlength=G + 1)[:G]

    fpr = np.concatenate(([0.0], np.cumsum(fp_per_step) / num_frames))
    rbdr = np.concatenate(([0.0], np.cumsum(regions_per_step) / R))
    tbdr = np.concatenate(([0.0], np.cumsum(tracks_per_step) / T))
    return RegionCurves(
        rbdc=_area_under(fpr, rbdr),
        tbdc=_area_under(fpr, tbdr),
        fpr=fpr,
        rbdr=rbdr,
        tbdr=tbdr,
        num_regions=R,
        num_tracks=T,
    )


def rbdc_tbdc(
    tracks: Mapping[str, np.ndarray],
    detections: Mapping[str, np.ndarray],
    num_frames: int,
    alpha: float = 0.1,
    beta: float = 0.1,
) -> RegionCurves:
    """RBDC/TBDC of per-video tables in the public formats.

    tracks[video]: (N, 6) rows track_id, frame, x1, y1, x2, y2 (inclusive);
    detections[video]: (M, 6) rows frame, x1, y1, x2, y2, score. Videos present in only one of the
    two mappings are fine (detections in a video without tracks are false positives)."""
    names = sorted(set(tracks) | set(detections))
    vid = {n: i for i, n in enumerate(names)}
    g = [(vid[n], np.asarray(t, dtype=np.float64).reshape(-1, 6)) for n, t in tracks.items()]
    d = [(vid[n], np.asarray(t, dtype=np.float64).reshape(-1, 6)) for n, t in detections.items()]
    g_rows = np.concatenate([t for _, t in g]) if g else np.zeros((0, 6))
    d_rows = np.concatenate([t for _, t in d]) if d else np.zeros((0, 6))
    g_vid = np.concatenate([np.full(len(t), i) for i, t in g]) if g else np.zeros(0, np.int64)
    d_vid = np.concatenate([np.full(len(t), i) for i, t in d]) if d else np.zeros(0, np.int64)
    return rbdc_tbdc_arrays(
        g_vid,
        g_rows[:, 0],
        g_rows[:, 1],
        g_rows[:, 2:6],
        d_vid,
        d_rows[:, 0],
        d_rows[:, 1:5],
        d_rows[:, 5],
        num_frames=num_frames,
        alpha=alpha,
        beta=beta,
    )


def tracks_table(tracks: Sequence) -> np.ndarray:
    """A VideoRecord's tracks (tvau.data.record.Track) as (N, 6) rows track_id, frame, x1, y1, x2, y2."""
    rows = [
        np.column_stack([np.full(len(t.frames), t.track_id), t.frames, t.boxes])
        for t in tracks
        if len(t.frames)
    ]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 6), dtype=np.int64)


# ---------------------------------------------------------------- heatmap -> region detections


def _finish(boxes: np.ndarray, scores: np.ndarray, min_area: int, max_regions: int) -> np.ndarray:
    """(n, 5) rows x1, y1, x2, y2, score: large enough, de-duplicated, best max_regions kept."""
    if boxes.size == 0:
        return np.zeros((0, 5), dtype=np.float64)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep = area >= min_area
    out = np.column_stack([boxes[keep].astype(np.float64), scores[keep].astype(np.float64)])
    if out.shape[0] == 0:
        return np.zeros((0, 5), dtype=np.float64)
    # Identical boxes (the same component at several levels) are kept once, with the best score.
    out = out[np.lexsort((-out[:, 4], out[:, 3], out[:, 2], out[:, 1], out[:, 0]))]
    first = np.ones(len(out), dtype=bool)
    first[1:] = np.any(out[1:, :4] != out[:-1, :4], axis=1)
    out = out[first]
    return out[np.argsort(-out[:, 4], kind="stable")[:max_regions]]


def components_to_regions(
    heatmap: np.ndarray, levels: Sequence[float], min_area: int = 16, max_regions: int = 20
) -> np.ndarray:
    """Option "components". heatmap: (H, W) in [0, 1] at frame resolution. Returns (n, 5)."""
    import cv2

    heat = np.asarray(heatmap, dtype=np.float32)
    boxes, scores = [], []
    for level in levels:
        binary = heat >= level
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.view(np.uint8), connectivity=8)
        if n <= 1:
            continue
        x, y, w, h = (stats[1:, i] for i in range(4))
        boxes.append(np.column_stack([x, y, x + w - 1, y + h - 1]))
        # Maximum per component over its own pixels (the pixels at or above the level): one unbuffered
        # ufunc pass (scipy.ndimage.maximum sorts every pixel of the frame by label, ~10x slower).
        best = np.full(n - 1, -np.inf, dtype=np.float32)
        np.maximum.at(best, labels[binary] - 1, heat[binary])
        scores.append(best.astype(np.float64))
    if not boxes:
        return np.zeros((0, 5), dtype=np.float64)
    return _finish(np.concatenate(boxes), np.concatenate(scores), min_area, max_regions)


def score_boxes(
    heatmap: np.ndarray, boxes: np.ndarray, min_area: int = 1, max_regions: int = 20
) -> np.ndarray:
    """Option "boxes": each inclusive box (n, 4) scored by the heatmap maximum inside. Returns (n, 5)."""
    heat = np.asarray(heatmap)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    H, W = heat.shape
    b = boxes.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, W - 1)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, H - 1)
    scores = np.array([heat[y1 : y2 + 1, x1 : x2 + 1].max() for x1, y1, x2, y2 in b], dtype=np.float64)
    return _finish(boxes, scores, min_area, max_regions)


def object_boxes(object_map: np.ndarray) -> np.ndarray:
    """Inclusive bounding boxes (n, 4) of every non-zero id of an (H, W) object-id map."""
    from scipy import ndimage

    ids = np.unique(object_map)
    ids = ids[ids != 0]
    if ids.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    # Relabel to 1..n so find_objects does not allocate up to the largest id.
    labels = np.searchsorted(ids, object_map).astype(np.int32) + 1
    labels[object_map == 0] = 0
    slices = ndimage.find_objects(labels)
    return np.array([[s[1].start, s[0].start, s[1].stop - 1, s[0].stop - 1] for s in slices], dtype=np.int64)


def heatmap_to_regions(
    heatmap: np.ndarray,
    option: str,
    levels: Sequence[float] = (0.3, 0.5, 0.7, 0.9),
    boxes: np.ndarray | None = None,
    min_area: int = 16,
    max_regions: int = 20,
) -> np.ndarray:
    """Dispatch on the named option; returns (n, 5) rows x1, y1, x2, y2, score."""
    if option == "components":
        return components_to_regions(heatmap, levels, min_area, max_regions)
    if option in ("boxes", "motion"):
        if boxes is None:
            raise ValueError(f'region option "{option}" needs boxes to score')
        return score_boxes(heatmap, boxes, min_area, max_regions)
    raise ValueError(f"unknown region option {option!r}; choose one of {REGION_OPTIONS}")
