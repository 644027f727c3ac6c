"""Metric speed: RBDC/TBDC at the issue's scale (1,000,000 detections x 100,000 ground-truth regions,
target < 30 s on one core), plus pixel-AUROC throughput at the paper's frame size."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Row


def _rbdc_inputs(n_det: int = 1_000_000, n_tracks: int = 10_000, track_len: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    videos, frames_per_video = 100, 2_000
    # Ground truth: 10,000 tracks of 10 frames, 100 videos x 2,000 frames -> 100,000 regions.
    t_video = rng.integers(0, videos, n_tracks)
    t_start = rng.integers(0, frames_per_video - track_len, n_tracks)
    t_xy = rng.integers(0, 800, (n_tracks, 2))
    gv = np.repeat(t_video, track_len)
    gt = np.repeat(np.arange(n_tracks), track_len)
    gf = np.repeat(t_start, track_len) + np.tile(np.arange(track_len), n_tracks)
    step = np.cumsum(rng.integers(-3, 4, (n_tracks * track_len, 2)), axis=0) % 40
    gxy = np.repeat(t_xy, track_len, axis=0) + step
    gb = np.hstack([gxy, gxy + rng.integers(20, 80, (len(gxy), 2))])
    # Detections: 40% jittered copies of ground-truth boxes, 60% random boxes in random frames.
    n_near = int(0.4 * n_det)
    pick = rng.integers(0, len(gv), n_near)
    near = gb[pick] + rng.integers(-15, 16, (n_near, 4))
    near[:, 2:] = np.maximum(near[:, 2:], near[:, :2])
    n_far = n_det - n_near
    fxy = rng.integers(0, 850, (n_far, 2))
    far = np.hstack([fxy, fxy + rng.integers(10, 100, (n_far, 2))])
    dv = np.concatenate([gv[pick], rng.integers(0, videos, n_far)])
    df = np.concatenate([gf[pick], rng.integers(0, frames_per_video, n_far)])
    db = np.vstack([near, far])
    ds = np.concatenate([rng.beta(5, 2, n_near), rng.beta(2, 5, n_far)])
    return (gv, gt, gf, gb, dv, df, db, ds), videos * frames_per_video


def run() -> list[Row]:
    from threadpoolctl import threadpool_limits

    from tvau.metrics.frame import PixelMetrics
    from tvau.metrics.regions import rbdc_tbdc_arrays

    rows = []
    args, num_frames = _rbdc_inputs()
    with threadpool_limits(1):
        t0 = time.perf_counter()
        res = rbdc_tbdc_arrays(*args, num_frames=num_frames)
        dt = time.perf_counter() - t0
    rows.append(
        Row(
            "RBDC/TBDC 1M detections x 100k regions",
            dt,
            "s",
            "< 30 s",
            dt < 30,
            f"1 thread; 200k frames; RBDC {res.rbdc:.3f} TBDC {res.tbdc:.3f}",
        )
    )

    rng = np.random.default_rng(1)
    heat = rng.random((20, 476, 868), dtype=np.float32)
    mask = rng.random((20, 476, 868)) < 0.05
    acc = PixelMetrics()
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for h, m in zip(heat, mask):
            acc.update(h, m)
        acc.auroc()
        dt = time.perf_counter() - t0
    rows.append(
        Row(
            "pixel AUROC + mIoU, 476x868 frames",
            len(heat) / dt,
            "frames/s",
            "",
            None,
            "1 thread; streaming histograms, every pixel",
        )
    )
    return rows
