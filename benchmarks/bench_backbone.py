"""Does the frozen backbone see? AHD trained alone on cached taps, per backbone.

    python -m benchmarks backbone

For each backbone (the random embedded tiny one at the old 112 px and at the clip size, and the
pretrained one of `tvau pretrain-backbone`), T-VAU's own AHD (tvau.model.ahd, params.yaml model
section) is trained on the tapped vision features of a frozen backbone, cached once per backbone and
footage, with the stage-1 loss (2-class cross-entropy on the pooled anomaly masks, AdamW 3e-4), and
scored on held-out footage with:

- frame micro-AUC (frame score = max of the frame's heatmap) with a 95% bootstrap interval over videos;
- pixel AUROC (heatmap bilinearly upsampled to the clip size, against the masks at the clip size);
- clip AUC per anomaly kind: clips (24 frames, stride 24) of that kind holding an anomalous frame
  against every clip without one; clip score = max frame score.

Beside them on the same videos: the non-learned baseline (tvau.baseline) and an upper-bound
reference, a small CNN trained directly on the masks, seeing the same frame pairs (two frames at the
clip size -> one logit per patch, the AHD grid) as the backbone's temporal patch.

Footage: two `tvau synth` sets with their own seeds (AHD/CNN training: TRAIN_SEED, evaluation:
EVAL_SEED; the first TRAIN_USE / EVAL_USE videos of each), disjoint from each other and from the
pretraining world (its own seed and scene numbers). Caches (footage, taps) live in .cache/tvau/bench_backbone; a rerun only trains
and scores. Every random draw is seeded; nothing is tuned on the evaluation set.

Environment knobs (optional): TVAU_BENCH_BACKBONES, comma-separated `ref@size` items, ref being
"random" (embedded:tiny) or a model directory (default "random@112,random@S,data/backbone@S", S =
params clip size, the pretrained one only where the directory exists); TVAU_BENCH_EVAL_VIDEOS,
TVAU_BENCH_EVAL_USE, TVAU_BENCH_TRAIN_VIDEOS, TVAU_BENCH_TRAIN_USE (videos rendered / used; the defaults
fit a shared 2-core machine and give intervals of about +-0.09: for +-0.05 use ~100 evaluation
videos), TVAU_BENCH_AHD_STEPS, TVAU_BENCH_AHD_HIDDEN, TVAU_BENCH_CNN_STEPS, TVAU_BENCH_NO_CNN=1.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import Row

CACHE = Path(".cache/tvau/bench_backbone")
TRAIN_SEED, EVAL_SEED = 11, 12
TRAIN_VIDEOS = int(os.environ.get("TVAU_BENCH_TRAIN_VIDEOS", "40"))  # rendered; the first TRAIN_USE are used
TRAIN_USE = int(os.environ.get("TVAU_BENCH_TRAIN_USE", "16"))
EVAL_VIDEOS = int(os.environ.get("TVAU_BENCH_EVAL_VIDEOS", "40"))  # rendered; the first EVAL_USE are used
EVAL_USE = int(os.environ.get("TVAU_BENCH_EVAL_USE", "24"))
CLIP_FRAMES = 24  # the paper's clip length; clips do not overlap here so each frame is scored once
AHD_STEPS = int(os.environ.get("TVAU_BENCH_AHD_STEPS", "500"))
AHD_BATCH = 2048  # random patch positions per AHD step
# AHD's hidden width here (params: 1024): 256 keeps the probe within minutes on 2 shared cores.
AHD_HIDDEN = int(os.environ.get("TVAU_BENCH_AHD_HIDDEN", "256"))
AHD_LR = 3e-4
CNN_STEPS = int(os.environ.get("TVAU_BENCH_CNN_STEPS", "300"))
CNN_BATCH = 8
BOOTSTRAP = 1000
THREADS = 1  # on a shared machine one thread per process wastes nothing on spin-waits


# --- footage ------------------------------------------------------------------------------------

def footage(seed: int, videos: int) -> Path:
    """A default-parameter `tvau synth` set of `videos` videos with this seed (cached)."""
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    root = CACHE / f"synth-s{seed}-n{videos}"
    if not (root / "synth_manifest.json").exists():
        generate(root, SynthConfig(videos=videos), seed, workers=2, overwrite=True, progress=False)
    return root


@dataclass
class Video:
    name: str
    kind: str | None
    labels: np.ndarray  # (F,) frame labels
    starts: list[int]  # clip starts
    pooled: list[np.ndarray] = field(default_factory=list)  # per clip (T', H', W') bool targets
    masks: list[np.ndarray] = field(default_factory=list)  # per clip packed (T, H, W) masks at clip size


def _records(root: Path, use: int | None = None):
    """The set's records (the first `use` videos of the generator's order, which is random with
    respect to kind and split), sorted by name, and each video's anomaly kind."""
    from tvau.data import open_dataset

    manifest = json.loads((root / "synth_manifest.json").read_text())["videos"]
    keep = {v["name"] for v in manifest[:use]}
    kinds = {v["name"]: v["kind"] for v in manifest}
    recs = [r for r in open_dataset(root, "ubnormal", load_tracks=False, progress=False) if r.name in keep]
    return sorted(recs, key=lambda r: r.name), kinds


def _clip_cfg(size: int):
    """Non-overlapping clips at `size`, with params.yaml's rule for pooling masks to patch targets."""
    from tvau.config import load_params
    from tvau.data.config import ClipConfig

    return ClipConfig(num_frames=CLIP_FRAMES, stride=CLIP_FRAMES, height=size, width=size, cover_tail=True,
                      mask_pooling=load_params("params.yaml").clip.mask_pooling)


# --- backbone taps -------------------------------------------------------------------------------

def _backbone_cfg(ref: str):
    from tvau.config import load_params

    m = load_params("params.yaml").model
    return m.model_copy(update={"backbone": "embedded:tiny" if ref == "random" else ref, "device": "cpu",
                                "dtype": "float32"})


def _fingerprint(ref: str) -> str:
    if ref == "random":
        from tvau.model.tiny import TINY_VERSION

        return f"random-v{TINY_VERSION}-s{_backbone_cfg(ref).tiny_seed}"
    from tvau.storage import sha256_file

    return "dir-" + sha256_file(Path(ref) / "model.safetensors")[:12]


def encode_set(ref: str, root: Path, size: int, with_frames: bool = False, use: int | None = None):
    """Taps (n_clips, n_taps, T', H', W', C) float16 and the videos with pooled targets and packed
    masks, cached per backbone, set and size; the clip frames (n_clips, T, H, W, 3) uint8 are cached
    per set and size on the first pass and returned when `with_frames`."""
    import torch

    from tvau.data.clips import iter_clips, pool_masks

    name = root.name + (f"-use{use}" if use else "")
    key = f"{_fingerprint(ref)}-{name}-{size}"
    clip_cfg = _clip_cfg(size)  # reads params.yaml once, not once per video
    rule = clip_cfg.mask_pooling
    f_taps, f_meta = CACHE / f"taps-{key}.npy", CACHE / f"videos-{name}-{size}-{rule}.npz"
    f_frames = CACHE / f"frames-{name}-{size}.npy"
    if not (f_taps.exists() and f_meta.exists() and f_frames.exists()):
        torch.set_num_threads(THREADS)
        from tvau.model.backbone import load_backbone

        recs, kinds = _records(root, use)
        bb = load_backbone(_backbone_cfg(ref))
        taps, videos = [], []
        tmp_frames = CACHE / f"frames-{name}-{size}.tmp{os.getpid()}.npy"
        CACHE.mkdir(parents=True, exist_ok=True)
        frames = None if f_frames.exists() else np.lib.format.open_memmap(
            tmp_frames, "w+", np.uint8,
            (sum(len(_starts(r)) for r in recs), CLIP_FRAMES, size, size, 3))
        for rec in recs:
            v = Video(rec.name, kinds.get(rec.name), np.asarray(rec.frame_labels, np.uint8), [])
            for clip in iter_clips(rec, clip_cfg):
                out = bb.encode_video(clip.frames)
                if frames is not None:
                    frames[len(taps)] = clip.frames
                taps.append(np.stack([t.numpy().astype(np.float16) for t in out.taps]))
                _, h, w = (int(x) for x in out.grid_thw[0])
                v.starts.append(clip.start)
                v.pooled.append(pool_masks(clip.masks, h, w, rule=rule))
                v.masks.append(np.packbits(clip.masks, axis=-1))
            videos.append(v)
        from tvau.storage import atomic_path

        with atomic_path(f_taps) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.stack(taps))
        with atomic_path(f_meta) as tmp, open(tmp, "wb") as fh:
            _save_videos(fh, videos)
        if frames is not None:
            frames.flush()
            del frames
            os.replace(tmp_frames, f_frames)
    return (np.load(f_taps, mmap_mode="r"), _load_videos(f_meta),
            np.load(f_frames, mmap_mode="r") if with_frames else None)


def _starts(rec) -> list[int]:
    from tvau.data.clips import clip_starts

    return clip_starts(rec.num_frames, CLIP_FRAMES, CLIP_FRAMES, True)


def _save_videos(path, videos: list[Video]) -> None:
    arrays = {}
    for i, v in enumerate(videos):
        arrays[f"{i}_labels"] = v.labels
        arrays[f"{i}_starts"] = np.asarray(v.starts)
        arrays[f"{i}_pooled"] = np.stack(v.pooled)
        arrays[f"{i}_masks"] = np.stack(v.masks)
    meta = json.dumps([[v.name, v.kind] for v in videos])
    np.savez(path, meta=np.array(meta), **arrays)


def _load_videos(path: Path) -> list[Video]:
    z = np.load(path)
    out = []
    for i, (name, kind) in enumerate(json.loads(str(z["meta"]))):
        out.append(Video(name, kind, z[f"{i}_labels"], z[f"{i}_starts"].tolist(), list(z[f"{i}_pooled"]),
                         list(z[f"{i}_masks"])))
    return out


# --- heads: AHD on taps, CNN on frame pairs ------------------------------------------------------

def _slices(videos: list[Video]):
    """(clip index, t') of every temporal slice, and the pooled targets stacked per clip."""
    pooled = np.stack([p for v in videos for p in v.pooled])  # (n_clips, T', H', W')
    idx = np.array([(c, t) for c in range(pooled.shape[0]) for t in range(pooled.shape[1])])
    return idx, pooled


def train_ahd(ref: str, taps, videos: list[Video], seed: int = 0):
    """AHD (tvau.model.ahd, hidden width AHD_HIDDEN) trained with the stage-1 loss on random
    tokens of the cached train taps (AHD maps each position on its own, so a batch of random
    positions is an unbiased sample of the per-patch mean loss). Returns clip taps -> heatmaps."""
    import torch

    from tvau.model.ahd import AHD, ahd_loss
    from tvau.model.backbone import load_backbone

    torch.set_num_threads(THREADS)
    cfg = _backbone_cfg(ref)
    bb = load_backbone(cfg)
    anchors = bb.anchors()
    torch.manual_seed(seed)
    n_taps, width = taps.shape[1], taps.shape[-1]
    ahd = AHD(width, bb.text_width, n_taps, AHD_HIDDEN, cfg.logit_scale)
    opt = torch.optim.AdamW(ahd.parameters(), lr=AHD_LR)
    tokens = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(taps), 1, -2)).reshape(-1, n_taps, width))
    target = torch.from_numpy(np.stack([p for v in videos for p in v.pooled]).reshape(-1))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(AHD_STEPS):
        i = torch.randint(0, len(tokens), (AHD_BATCH,), generator=gen)
        x = tokens[i].float()  # (B, L, C) -> per tap (B, 1, 1, C): AHD's (T', H', W', C) layout
        logits = ahd([x[:, k, None, None] for k in range(n_taps)], anchors)
        loss = ahd_loss(logits, target[i][:, None, None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ahd.eval()

    def score(taps_eval) -> list[np.ndarray]:
        out = []
        with torch.no_grad():
            for c in range(taps_eval.shape[0]):
                x = torch.from_numpy(np.asarray(taps_eval[c], dtype=np.float32))
                out.append(torch.softmax(ahd(list(x), anchors), dim=1)[:, 1].numpy())
        return out
    return score


def _cnn(grid: tuple[int, int]):
    """Frame pair (two frames and their difference, 9 channels) -> one logit per patch of `grid`."""
    import torch
    from torch import nn

    def block(i, o, s):
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1), nn.BatchNorm2d(o), nn.ReLU())

    class PairCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(block(9, 32, 2), block(32, 48, 2), block(48, 64, 2), block(64, 96, 1),
                                      nn.AdaptiveAvgPool2d(tuple(grid)), block(96, 96, 1), block(96, 96, 1),
                                      nn.Conv2d(96, 1, 1))

        def forward(self, a, b):  # a, b: (B, 3, H, W) in [0, 1]
            return self.body(torch.cat([a, b, b - a], 1))[:, 0]

    return PairCNN()


def train_cnn(frames, videos: list[Video], seed: int = 0):
    """The upper-bound reference: a CNN trained directly on the pooled masks, on frame pairs."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    grid = tuple(int(g) for g in videos[0].pooled[0].shape[1:])
    net = _cnn(grid)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    idx, pooled = _slices(videos)
    rng = np.random.default_rng(seed)
    pos = pooled.reshape(len(pooled), pooled.shape[1], -1).any(-1)
    w = np.where(pos[idx[:, 0], idx[:, 1]], 3.0, 1.0)  # show anomalous slices more often
    w /= w.sum()

    def pair(fr, t):
        x = torch.from_numpy(np.ascontiguousarray(fr[2 * t: 2 * t + 2])).float().div(255).permute(0, 3, 1, 2)
        return x[0], x[1]

    net.train()
    for _ in range(CNN_STEPS):
        pick = idx[rng.choice(len(idx), CNN_BATCH, replace=False, p=w)]
        ab = [pair(frames[c], t) for c, t in pick]
        a, b = torch.stack([p[0] for p in ab]), torch.stack([p[1] for p in ab])
        y = torch.from_numpy(np.stack([pooled[c, t] for c, t in pick])).float()
        loss = F.binary_cross_entropy_with_logits(net(a, b), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()

    def score(frames_eval) -> list[np.ndarray]:
        out = []
        with torch.no_grad():
            for c in range(frames_eval.shape[0]):
                fr = np.asarray(frames_eval[c])
                ab = [pair(fr, t) for t in range(fr.shape[0] // 2)]
                a, b = torch.stack([p[0] for p in ab]), torch.stack([p[1] for p in ab])
                out.append(torch.sigmoid(net(a, b)).numpy())
        return out
    return score


# --- scoring ---------------------------------------------------------------------------------------

def _frame_maps(grid_heat: np.ndarray, size: int, frames: int):
    """(T', H', W') patch heatmap -> (frames, size, size) as TVAU.heatmap_frames does it."""
    import torch
    import torch.nn.functional as F

    h = torch.from_numpy(np.asarray(grid_heat, np.float32))[:, None]
    up = F.interpolate(h, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return up.repeat_interleave(2, dim=0)[:frames].clamp(0, 1).numpy()


@dataclass
class Scores:
    frame: list[np.ndarray]  # per video (F,) frame scores
    pixel_auroc: float


def score_model(heat: list[np.ndarray], videos: list[Video], size: int) -> Scores:
    """Per clip patch heatmaps (in the order of the videos' clips) -> frame scores, pixel AUROC."""
    from tvau.metrics.frame import PixelMetrics

    pm = PixelMetrics(bins=4096)
    frame, c = [], 0
    for v in videos:
        s = np.zeros(len(v.labels))
        for start, packed in zip(v.starts, v.masks):
            maps = _frame_maps(heat[c], size, CLIP_FRAMES)
            masks = np.unpackbits(packed, axis=-1, count=size).astype(bool)
            n = min(CLIP_FRAMES, len(v.labels) - start)
            s[start:start + n] = maps[:n].reshape(n, -1).max(1)
            for t in range(n):
                pm.update(maps[t], masks[t])
            c += 1
        frame.append(s)
    return Scores(frame, pm.auroc())


def score_baseline(root: Path, videos: list[Video], size: int) -> Scores:
    import cv2

    from tvau.baseline import iter_frame_heatmaps
    from tvau.metrics.frame import PixelMetrics

    recs, _ = _records(root, EVAL_USE)
    by_name = {r.name: r for r in recs}
    pm = PixelMetrics(bins=4096)
    frame = []
    for v in videos:
        s = []
        masks = np.concatenate([np.unpackbits(p, axis=-1, count=size).astype(bool) for p in v.masks])
        for t, h in enumerate(iter_frame_heatmaps(by_name[v.name].iter_frames())):
            s.append(float(h.max()))
            pm.update(np.clip(cv2.resize(h, (size, size), interpolation=cv2.INTER_LINEAR), 0, 1), masks[t])
        frame.append(np.asarray(s))
    return Scores(frame, pm.auroc())


def micro_ci(videos: list[Video], frame: list[np.ndarray], seed: int = 0) -> tuple[float, float, float]:
    from sklearn.metrics import roc_auc_score

    from tvau.metrics.frame import micro_auc

    labels = [v.labels for v in videos]
    value = micro_auc(labels, frame)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(videos), len(videos))
        y = np.concatenate([labels[k] for k in i])
        if y.min() != y.max():
            vals.append(roc_auc_score(y, np.concatenate([frame[k] for k in i])))
    return value, float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def per_kind(videos: list[Video], frame: list[np.ndarray] | None = None,
             clip_scores: list[float] | None = None) -> dict[str, tuple[float, int]]:
    """Clip AUC per anomaly kind: (auc, number of positive clips). Clip score = max frame score, or
    the given per-clip scores (in the videos' clip order)."""
    from sklearn.metrics import roc_auc_score

    neg, pos = [], {}
    it = iter(clip_scores) if clip_scores is not None else None
    for i, v in enumerate(videos):
        for start in v.starts:
            sl = slice(start, start + CLIP_FRAMES)
            score = float(next(it)) if it is not None else float(frame[i][sl].max())
            if v.labels[sl].any():
                pos.setdefault(v.kind, []).append(score)
            else:
                neg.append(score)
    out = {}
    for kind, p in sorted(pos.items()):
        y = np.r_[np.zeros(len(neg)), np.ones(len(p))]
        out[kind] = (float(roc_auc_score(y, np.r_[neg, p])), len(p))
    return out


def _clip_features(heat: np.ndarray) -> np.ndarray:
    """What RAE's input holds about a clip, summarised: the heatmap (T', H', W') and its temporal
    differences X[t] = H[t+1] - H[t] (docs/method.md section 5)."""
    m = heat.reshape(heat.shape[0], -1).max(1)
    d = np.abs(np.diff(heat, axis=0)).reshape(heat.shape[0] - 1, -1)
    return np.array([m.max(), m.mean(), m.std(), heat.mean(), np.percentile(heat, 99),
                     d.max(), d.mean(), d.max(1).mean(), (heat > 0.5).mean()])


def temporal_probe(train_heat, train_videos, eval_heat, eval_videos) -> dict[str, tuple[float, int]]:
    """A clip-level yes/no classifier (standardised logistic regression) on the heatmap and its
    temporal differences, trained on the train clips' labels: per-kind clip AUC on the eval clips.
    A proxy for what the dialogue's yes/no (RAE + LoRA) can add over the heatmap's max."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def labels(videos):
        return np.array([v.labels[s:s + CLIP_FRAMES].any() for v in videos for s in v.starts], int)

    X = np.stack([_clip_features(h) for h in train_heat])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, labels(train_videos))
    p = clf.predict_proba(np.stack([_clip_features(h) for h in eval_heat]))[:, 1]
    return per_kind(eval_videos, clip_scores=list(p))


def time_encode(ref: str, size: int, repeats: int = 3) -> float:
    """Median seconds for one vision pass over a 24-frame clip at size x size (THREADS threads)."""
    import torch

    from tvau.model.backbone import load_backbone
    from tvau.model.clips import synthetic_clip

    torch.set_num_threads(THREADS)
    bb = load_backbone(_backbone_cfg(ref))
    clip = synthetic_clip(CLIP_FRAMES, size, size)
    bb.encode_video(clip)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bb.encode_video(clip)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# --- the benchmark --------------------------------------------------------------------------------

def _backbones(size: int) -> list[tuple[str, int]]:
    spec = os.environ.get("TVAU_BENCH_BACKBONES")
    if spec:
        items = [s.strip().rsplit("@", 1) for s in spec.split(",") if s.strip()]
        return [(r, int(z)) for r, z in items]
    out = [("random", 112), ("random", size)]
    if (Path("data/backbone") / "model.safetensors").exists():
        out.append(("data/backbone", size))
    return out


def evaluate_all() -> dict:
    from tvau.config import load_params

    size = load_params("params.yaml").clip.height
    train_root, eval_root = footage(TRAIN_SEED, TRAIN_VIDEOS), footage(EVAL_SEED, EVAL_VIDEOS)
    results: dict = {"setup": {"train": f"synth seed {TRAIN_SEED}, first {TRAIN_USE} of {TRAIN_VIDEOS} videos",
                               "eval": f"synth seed {EVAL_SEED}, first {EVAL_USE} of {EVAL_VIDEOS} videos",
                               "ahd_steps": AHD_STEPS, "ahd_batch_tokens": AHD_BATCH,
                               "ahd_hidden": AHD_HIDDEN, "cnn_steps": CNN_STEPS}, "rows": {}}
    ev_videos = None
    for ref, sz in _backbones(size):
        tr_taps, tr_videos, _ = encode_set(ref, train_root, sz, use=TRAIN_USE)
        ev_taps, ev_videos_sz, _ = encode_set(ref, eval_root, sz, use=EVAL_USE)
        score = train_ahd(ref, tr_taps, tr_videos)
        ev_heat = score(ev_taps)
        s = score_model(ev_heat, ev_videos_sz, sz)
        name = f"AHD on {'random tiny' if ref == 'random' else ref} @{sz}"
        results["rows"][name] = _summary(ev_videos_sz, s) | {
            "encode_s_per_clip": time_encode(ref, sz),
            "per_kind_temporal_probe": temporal_probe(score(tr_taps), tr_videos, ev_heat, ev_videos_sz)}
        if sz == size:
            ev_videos = ev_videos_sz
    if ev_videos is None:
        _, ev_videos, _ = encode_set("random", eval_root, size, use=EVAL_USE)
    results["rows"]["baseline (background subtraction)"] = _summary(ev_videos, score_baseline(eval_root, ev_videos, size))
    if not os.environ.get("TVAU_BENCH_NO_CNN"):
        _, tr_videos, tr_frames = encode_set("random", train_root, size, with_frames=True, use=TRAIN_USE)
        _, ev_videos, ev_frames = encode_set("random", eval_root, size, with_frames=True, use=EVAL_USE)
        score = train_cnn(tr_frames, tr_videos)
        results["rows"][f"reference: CNN on masks, frame pairs @{size}"] = _summary(
            ev_videos, score_model(score(ev_frames), ev_videos, size))
    return results


def _summary(videos: list[Video], s: Scores) -> dict:
    value, lo, hi = micro_ci(videos, s.frame)
    return {"micro_auc": value, "low": lo, "high": hi, "pixel_auroc": s.pixel_auroc,
            "per_kind": per_kind(videos, s.frame)}


def run() -> list[Row]:
    res = evaluate_all()
    rows = []
    base = res["rows"]["baseline (background subtraction)"]["micro_auc"]
    for name, r in res["rows"].items():
        is_pre = name.startswith("AHD on data/")
        rows.append(Row(f"backbone: {name}: frame micro-AUC", r["micro_auc"], "AUC",
                        ">= 0.80 and >= baseline + 0.10" if is_pre else "",
                        (r["micro_auc"] >= 0.8 and r["micro_auc"] >= base + 0.1) if is_pre else None,
                        f"95% CI {r['low']:.3f}-{r['high']:.3f}; {res['setup']['eval']}"))
        rows.append(Row(f"backbone: {name}: pixel AUROC", r["pixel_auroc"], "AUC",
                        ">= 0.95" if is_pre else "", (r["pixel_auroc"] >= 0.95) if is_pre else None, ""))
        if "encode_s_per_clip" in r:
            rows.append(Row(f"backbone: {name}: encode", r["encode_s_per_clip"], "s/clip", "", None,
                            f"{CLIP_FRAMES} frames, {THREADS} threads, shared machine"))
        kinds = "; ".join(f"{k} {a:.2f} (n={n})" for k, (a, n) in r["per_kind"].items())
        rows.append(Row(f"backbone: {name}: clip AUC per kind (min)",
                        min(a for a, _ in r["per_kind"].values()), "AUC", "", None, kinds))
        if "per_kind_temporal_probe" in r:
            tp = r["per_kind_temporal_probe"]
            rows.append(Row(f"backbone: {name}: clip AUC per kind, heatmap+temporal-difference probe (min)",
                            min(a for a, _ in tp.values()), "AUC", "", None,
                            "; ".join(f"{k} {a:.2f}" for k, (a, _) in tp.items())))
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "results.json").write_text(json.dumps(res, indent=1, default=float))
    return rows


if __name__ == "__main__":
    print(json.dumps(evaluate_all(), indent=1, default=float))
