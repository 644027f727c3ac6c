"""Where the main job's evaluation and data stages spent their time, before and after:

- bootstrap: every metric's 95% interval over 1,000 resamples of 60 videos x 96 frames, the way
  `tvau evaluate` does it now (one pass over draw counts) against the per-resample recomputation
  it replaced (measured for micro-AUC alone: scikit-learn once per resample);
- region detections of one 256x256 heatmap (4 levels; per-component maximum by one ufunc pass
  against scipy.ndimage.maximum);
- decoding one 256x256 frame to RGB (one reused single-thread swscale context against PyAV's
  per-frame conversion), and finding the objects of one id map (one pass against one comparison
  per id). Outputs are identical in each pair (tests/evaluate/test_bootstrap.py,
  tests/data/test_video.py; the others checked by value below);
- the model's heatmaps of four 96-frame videos, clips on the training grid (stride 12 of 24) against
  non-overlapping clips (evaluate.heatmap_stride 0): the same heatmaps, checked below,
  for about half the vision passes. Model: TVAU_BENCH_MODEL (--model), else data/models/tvau when
  the main job has made it, else untrained adapters on params' backbone (timing only).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Row


def _videos(n: int = 60, frames: int = 96, seed: int = 0):
    from tvau.evaluate.frames import VideoScores
    from tvau.metrics.frame import PixelMetrics

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = np.zeros(frames, np.int64)
        if i % 2 == 0:
            y[30:60] = 1
        s = np.clip(0.4 + 0.2 * y + rng.normal(0, 0.2, frames), 0, 1)
        px = PixelMetrics(bins=65536)
        px.pos_hist[:] = rng.integers(0, 50, 65536) * (i % 2 == 0)
        px.neg_hist[:] = rng.integers(0, 5000, 65536)
        tracks = np.array([[1, t, 20, 20, 60, 60] for t in np.flatnonzero(y)], float).reshape(-1, 6)
        nd = frames * 8
        x = rng.integers(0, 200, nd)
        dets = np.column_stack([rng.integers(0, frames, nd), x, x // 2, x + 40, x // 2 + 40, rng.uniform(0, 1, nd)])
        out.append(VideoScores(f"v{i}", y, s, tracks, dets, px))
    return out


def _timed(f, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - t) / repeat


def run() -> list[Row]:
    import av
    import cv2

    from tvau.construct.pixels import objects_in_id_map
    from tvau.evaluate import bootstrap as bs
    from tvau.evaluate.report import block
    from tvau.metrics.config import MetricsConfig
    from tvau.metrics.frame import micro_auc
    from tvau.metrics.regions import _finish, components_to_regions
    from tvau.video import VideoWriter, iter_frames

    rows = []
    videos = _videos()

    class Cfg:
        bootstrap, confidence, bootstrap_seed = 1000, 0.95, 0

    rows.append(Row("bootstrap: every metric, 60 videos, 1000 resamples", _timed(
        lambda: block(videos, None, MetricsConfig(), Cfg)), "s", note="vectorised over draw counts"))
    labels, scores = [v.labels for v in videos], [v.scores for v in videos]
    draws = bs.resamples(len(videos), 1000, 0)
    vec = _timed(lambda: bs.micro_auc_stat(labels, scores)(draws))
    loop = _timed(lambda: [micro_auc([labels[i] for i in d], [scores[i] for i in d]) for d in draws])
    rows.append(Row("bootstrap micro-AUC, 1000 resamples: per-resample sklearn", loop, "s", note="before"))
    rows.append(Row("bootstrap micro-AUC, 1000 resamples: draw counts", vec, "s", note=f"after ({loop / vec:.0f}x)"))

    rng = np.random.default_rng(0)
    heat = cv2.GaussianBlur(rng.random((256, 256)).astype(np.float32), (0, 0), 3)
    heat = (heat - heat.min()) / (heat.max() - heat.min())
    levels = (0.3, 0.5, 0.7, 0.9)

    def scipy_regions():
        from scipy import ndimage

        boxes, sc = [], []
        for level in levels:
            n, lab, st, _ = cv2.connectedComponentsWithStats((heat >= level).astype(np.uint8), connectivity=8)
            if n > 1:
                boxes.append(np.column_stack([st[1:, 0], st[1:, 1], st[1:, 0] + st[1:, 2] - 1, st[1:, 1] + st[1:, 3] - 1]))
                sc.append(np.asarray(ndimage.maximum(heat, lab, index=np.arange(1, n)), np.float64))
        return _finish(np.concatenate(boxes), np.concatenate(sc), 16, 20)

    assert np.array_equal(scipy_regions(), components_to_regions(heat, levels))
    rows.append(Row("regions of a 256x256 heatmap: scipy maximum", 1e3 * _timed(scipy_regions, 50), "ms", note="before"))
    rows.append(Row("regions of a 256x256 heatmap: one ufunc pass", 1e3 * _timed(
        lambda: components_to_regions(heat, levels), 50), "ms", note="after, same regions"))

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        with VideoWriter(path, 24.0, 256, 256) as w:
            for _ in range(96):
                w.write(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))

        def pyav_own():
            with av.open(str(path)) as c:
                return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

        before, after = _timed(pyav_own, 3), _timed(lambda: list(iter_frames(path)), 3)
    rows.append(Row("decode 96 frames @256 to RGB: per-frame conversion", before, "s", note="before (includes decoding)"))
    rows.append(Row("decode 96 frames @256 to RGB: one swscale context", after, "s", note="after, same pixels"))

    ids = np.zeros((256, 256), np.int32)
    for k in range(1, 8):
        y, x = rng.integers(0, 200, 2)
        ids[y:y + 40, x:x + 20] = k

    def per_id():
        out = []
        u = np.unique(ids)
        for oid in u[u > 0]:
            ys, xs = np.nonzero(ids == oid)
            out.append((int(oid), xs.mean(), ys.mean(), len(xs)))
        return out

    assert per_id() == [(o["object_id"], o["cx"], o["cy"], o["area"]) for o in objects_in_id_map(ids)]
    rows.append(Row("objects of a 256x256 id map (7 ids): one comparison per id", 1e3 * _timed(per_id, 200), "ms",
                    note="before"))
    rows.append(Row("objects of a 256x256 id map (7 ids): one pass", 1e3 * _timed(
        lambda: objects_in_id_map(ids), 200), "ms", note="after, same objects"))
    rows += _heatmap_stride_rows()
    return rows


def _heatmap_stride_rows() -> list[Row]:
    import os
    import tempfile
    from pathlib import Path

    import torch

    from tvau.config import load_params
    from tvau.data import open_dataset
    from tvau.evaluate.frames import select_split
    from tvau.evaluate.model import ModelScorer
    from tvau.model.trained import load_trained
    from tvau.model.tvau import TVAU

    torch.set_num_threads(1)
    p = load_params()
    ref = os.environ.get("TVAU_BENCH_MODEL") or ("data/models/tvau" if Path("data/models/tvau").is_dir() else None)
    if ref and ref.startswith(("models:/", "runs:/")):
        from tvau.registry.resolve import download_model

        ref = str(download_model(ref))
    model = load_trained(ref, p) if ref else TVAU.from_params(p).eval()
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        data = "data/synth" if Path("data/synth").is_dir() else None
        if data is None:
            from tvau.synth.config import SynthConfig
            from tvau.synth.generate import generate

            data = str(Path(tmp) / "synth")
            generate(data, SynthConfig(videos=8, frames=96, size=256, scenes=2), seed=5, workers=1, progress=False)
        records = select_split(open_dataset(data, "ubnormal"), "all")[:4]
        out = {}
        for stride in (model.clip.stride, model.clip.num_frames):
            calls: list[int] = []
            encode = model.encode_batch
            model.encode_batch = lambda frames, _e=encode, _c=calls: _c.append(len(frames)) or _e(frames)
            scorer = ModelScorer(model, model.clip, dialogue_per_video=0, heatmap_stride=stride)
            t = time.perf_counter()
            try:
                heats = [np.stack(list(scorer(r))) for r in records]
            finally:
                del model.encode_batch
            out[stride] = ((time.perf_counter() - t) / len(records), sum(calls), heats)
    (slow, n_slow, h_slow), (fast, n_fast, h_fast) = out[model.clip.stride], out[model.clip.num_frames]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(h_slow, h_fast))
    what = f"model heatmaps, {len(records)} videos @{model.clip.height}"
    src = ref or "untrained adapters"
    return [
        Row(f"{what}: clips at stride {model.clip.stride} (training grid)", slow, "s/video",
            note=f"before; {n_slow} clips; {src}"),
        Row(f"{what}: clips at stride {model.clip.num_frames} (heatmap_stride 0)", fast, "s/video",
            note=f"after, {n_fast} clips, {slow / fast:.1f}x; max |heatmap difference| {diff:.1e}"),
    ]
