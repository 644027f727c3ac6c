"""Does appearance reach the language model? A linear probe of a person's top colour, per backbone.

    python -m benchmarks probe
    TVAU_BENCH_PROBE_BACKBONES=data/backbone,/tmp/other TVAU_BENCH_PROBE_VIDEOS=80 python -m benchmarks probe

Footage: the pretraining world (tvau.pretrain.world, params.yaml pretrain.world) rendered in memory
from random stream 4, which no pretraining stage reads (streams 0-3 are its training and held-out
videos), so no probe video was ever trained on. Each whole world video (24 frames, params.yaml
clip.num_frames) is resized to the clip size (params.yaml clip.height/width) as T-VAU's loader does.

Samples: one per person per video, labelled with the person's upper colour (11 words,
tvau.vocab.COLORS). The person's patches are the cells of the backbone's patch grid (2 frames x 14 x
14 pixels) where it is the dominant object, by the rule of the pretraining targets
(tvau.pretrain.world.patch_targets, pretrain.vision.min_coverage); a person owning no patch is not a
sample. Its features, from one pass of the frozen vision tower over the clip:
1. merged tokens: the mean of the language model's input tokens (VisionOutput.video_embeds) over the
   2x2 merge units that hold any of its patches;
2. / 3. the first and the last tapped block (params.yaml model.taps mapped onto the tower): the mean of
   the pre-merger features over its patches;
4. mean RGB: the mean colour of its pixels at the clip size (a non-learned reference; it mixes the
   top with the trousers, skin and hair, so it is well below 1).
Beside them, the majority-class rate: the share of the test samples that have their most common label
(what a constant answer could at best score).

Probe: standardised features and a multinomial logistic regression (scikit-learn, lbfgs, seeded),
fitted on the persons of the first 75% of the videos and tested on those of the rest: no video is on
both sides. Accuracy has a 95% percentile bootstrap interval over test videos (tvau.evaluate.bootstrap,
1000 resamples, ratio of correct to asked persons). The merged-token row has the target >= 0.75: a
language model reading such tokens could name most tops. Features live in memory only; every draw is
seeded, so a rerun prints the same table.

Environment knobs (optional): TVAU_BENCH_PROBE_BACKBONES, comma-separated model directories (default
data/backbone); TVAU_BENCH_PROBE_VIDEOS, videos rendered (default 40: 30 fit, 10 test, about 5
persons each, so intervals of about +-0.1; about 15 s per backbone on one core).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from benchmarks.common import Row

BACKBONES = [s.strip() for s in os.environ.get("TVAU_BENCH_PROBE_BACKBONES", "data/backbone").split(",") if s.strip()]
VIDEOS = int(os.environ.get("TVAU_BENCH_PROBE_VIDEOS", "40"))
STREAM = 4  # the pretraining world's random stream no pretraining stage reads
FIT_SHARE = 0.75  # the first 75% of the videos fit the probe, the rest test it
TARGET = 0.75  # merged-token accuracy a describing language model needs
BOOTSTRAP = 1000
SEED = 0
BATCH = 4  # clips per encode_videos call: bounds the tower's activations
THREADS = 1  # a shared 2-core machine: one thread wastes nothing on spin-waits
PATCH, TEMPORAL, MERGE = 14, 2, 2  # the Qwen2.5-VL patch grid and its 2x2 merge unit
SOURCES = ("merged", "first_tap", "last_tap", "rgb")


@dataclass
class Samples:
    video: np.ndarray  # (N,) index of the sample's video
    label: np.ndarray  # (N,) upper colour, index into tvau.vocab.COLORS
    features: dict[str, np.ndarray]  # SOURCES name -> (N, C) float64


# --- footage and samples -------------------------------------------------------------------------

@lru_cache(maxsize=4)
def footage(videos: int, height: int, width: int, stream: int = STREAM) -> tuple:
    """((world video, frames, ids), ...) at the clip size, rendered once per process (all backbones
    see the same footage)."""
    from tvau.config import load_params
    from tvau.pretrain.world import render_world_video, resize_clip

    world = load_params("params.yaml").pretrain.world
    out = []
    for i in range(videos):
        v = render_world_video(world, stream, i)
        out.append((v, *resize_clip(v.frames, v.ids, height, width)))
    return tuple(out)


def dominant_ids(ids: np.ndarray, min_coverage: float, patch: int = PATCH, temporal: int = TEMPORAL) -> np.ndarray:
    """(T', H', W') id of the object covering most of each patch (0 where none covers
    `min_coverage` of it): the rule of tvau.pretrain.world.patch_targets, which returns the targets
    but not the id, and two persons of one colour must stay two samples."""
    T, H, W = ids.shape
    tq, hq, wq = T // temporal, H // patch, W // patch
    cells = ids[: tq * temporal, : hq * patch, : wq * patch].reshape(tq, temporal, hq, patch, wq, patch)
    cells = cells.transpose(0, 2, 4, 1, 3, 5).reshape(tq, hq, wq, -1)
    best = np.zeros((tq, hq, wq), np.int64)
    best_count = np.zeros((tq, hq, wq), np.int64)
    for oid in np.unique(cells):  # ascending: a tie keeps the lower id, as patch_targets
        if oid == 0:
            continue
        c = (cells == oid).sum(-1)
        better = c > best_count
        best[better], best_count[better] = oid, c[better]
    best[best_count < min_coverage * cells.shape[-1]] = 0
    return best


def persons(video) -> list[int]:
    """Object ids of the video's persons that have an upper colour."""
    from tvau.pretrain.world import CATEGORY_TARGETS

    return [oid for oid in range(1, len(video.category))
            if CATEGORY_TARGETS[video.category[oid]] == "person" and video.appearance[oid, 0] >= 0]


def video_samples(video, frames: np.ndarray, ids: np.ndarray, vis, min_coverage: float) -> list[tuple[int, dict]]:
    """(label, {source: feature}) per person of one clip that owns a patch. `vis` is the clip's
    VisionOutput; `frames`, `ids` the clip at the size it was encoded."""
    owner = dominant_ids(ids, min_coverage)
    first, last = vis.taps[0].numpy(), vis.taps[-1].numpy()
    if owner.shape != first.shape[:3]:
        raise ValueError(f"patch grid {owner.shape} of the ids is not the tower's {first.shape[:3]}")
    _, hq, wq = owner.shape
    merged = vis.video_embeds.float().numpy()  # raster order of (T', H'/2, W'/2) merge units
    out = []
    for oid in persons(video):
        t, h, w = np.nonzero(owner == oid)
        if not len(t):
            continue
        units = np.unique((t * (hq // MERGE) + h // MERGE) * (wq // MERGE) + w // MERGE)
        feats = {"merged": merged[units].mean(0), "first_tap": first[t, h, w].mean(0),
                 "last_tap": last[t, h, w].mean(0), "rgb": frames[ids == oid].mean(0)}
        out.append((int(video.appearance[oid, 0]), {k: np.asarray(v, np.float64) for k, v in feats.items()}))
    return out


def collect(bb, clips, min_coverage: float) -> Samples:
    """The samples of every (world video, frames, ids) of `clips` through the backbone `bb`."""
    rows: list[tuple[int, int, dict]] = []
    for start in range(0, len(clips), BATCH):
        chunk = clips[start:start + BATCH]
        for k, ((video, frames, ids), vis) in enumerate(zip(chunk, bb.encode_videos([f for _, f, _ in chunk]))):
            rows += [(start + k, label, f) for label, f in video_samples(video, frames, ids, vis, min_coverage)]
    return Samples(video=np.array([r[0] for r in rows], np.int64), label=np.array([r[1] for r in rows], np.int64),
                   features={s: np.stack([r[2][s] for r in rows]) if rows else np.zeros((0, 0)) for s in SOURCES})


def split(video: np.ndarray, videos: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, test) bool masks of the samples: the persons of the first FIT_SHARE of the `videos`
    fit (at least one video on each side), the rest test; a video is never on both sides."""
    n_fit = min(videos - 1, max(1, int(FIT_SHARE * videos)))
    return video < n_fit, video >= n_fit


# --- probe and interval --------------------------------------------------------------------------

def probe_hits(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """(n_test,) bool: whether a linear probe fitted on (x_fit, y_fit) names each test label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_fit)) < 2:  # one colour to learn: the probe can only say it
        return y_test == y_fit[0]
    # lbfgs fits the multinomial (softmax) loss for several classes.
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=SEED))
    return clf.fit(x_fit, y_fit).predict(x_test) == y_test


def video_interval(hits: np.ndarray, video: np.ndarray, videos: list[int]):
    """sum(hits) / samples with a 95% bootstrap interval over `videos` (tvau.evaluate.bootstrap)."""
    from tvau.evaluate.bootstrap import interval, ratio_stat, resamples

    num = np.array([hits[video == v].sum() for v in videos], np.float64)
    den = np.array([(video == v).sum() for v in videos], np.float64)
    value = float(num.sum() / den.sum()) if den.sum() else None
    return interval(value, ratio_stat(num, den), resamples(len(videos), BOOTSTRAP, SEED))


def evaluate(samples: Samples, n_videos: int) -> dict:
    """{source or "majority": Interval} of the test videos, and the sample counts."""
    fit, test = split(samples.video, n_videos)
    test_videos = np.flatnonzero(split(np.arange(n_videos), n_videos)[1]).tolist()  # with or without persons
    out: dict = {"fit": int(fit.sum()), "test": int(test.sum()), "fit_videos": n_videos - len(test_videos),
                 "test_videos": len(test_videos)}
    y_fit, y_test = samples.label[fit], samples.label[test]
    for s in SOURCES:
        x = samples.features[s]
        out[s] = video_interval(probe_hits(x[fit], y_fit, x[test], y_test), samples.video[test], test_videos)
    majority = np.bincount(y_test).argmax() if len(y_test) else -1
    out["majority"] = video_interval(y_test == majority, samples.video[test], test_videos)
    return out


# --- benchmark -----------------------------------------------------------------------------------

def measure(ref: str, videos: int) -> tuple[dict, float]:
    """evaluate() of backbone directory `ref` on `videos` world videos, and the seconds it took."""
    import torch

    from tvau.config import load_params
    from tvau.model.backbone import load_backbone

    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    params = load_params("params.yaml")
    cfg = params.model.model_copy(update={"backbone": ref, "device": "cpu", "dtype": "float32"})
    bb = load_backbone(cfg)
    clips = footage(videos, params.clip.height, params.clip.width)
    samples = collect(bb, clips, params.pretrain.vision.min_coverage)
    result = evaluate(samples, videos)
    result["taps"] = (bb.taps[0], bb.taps[-1])
    return result, time.perf_counter() - t0


def _note(iv, result: dict, extra: str = "") -> str:
    ci = f"95% [{iv.low:.2f}, {iv.high:.2f}]" if iv.low is not None else "no interval"
    counts = f"{result['fit']}/{result['test']} persons, {result['fit_videos']}/{result['test_videos']} videos"
    return f"{ci}; fit/test: {counts}{extra}"


def rows_for(ref: str, result: dict, seconds: float) -> list[Row]:
    first, last = result["taps"]
    names = {"merged": "merged tokens (LM input)", "first_tap": f"tap block {first}", "last_tap": f"tap block {last}",
             "rgb": "mean RGB (reference)", "majority": "majority class (test)"}
    rows = []
    for key, name in names.items():
        iv = result[key]
        value = float("nan") if iv.value is None else iv.value
        target, ok = ("", None)
        if key == "merged":
            target, ok = f">= {TARGET}", iv.value is not None and iv.value >= TARGET
        extra = f"; {seconds:.0f} s on {THREADS} core" if key == "majority" else ""
        rows.append(Row(f"probe colour {ref}: {name}", value, "accuracy", target, ok, _note(iv, result, extra)))
    return rows


def run() -> list[Row]:
    from pathlib import Path

    rows = []
    for ref in BACKBONES:
        if not (Path(ref) / "config.json").is_file():
            rows.append(Row(f"probe colour {ref}", float("nan"), "accuracy", note="no model directory (skipped)"))
            continue
        result, seconds = measure(ref, VIDEOS)
        rows += rows_for(ref, result, seconds)
    return rows
