"""Are the synthetic anomalies learnable from motion/shape rather than from colour?

An object-level probe on a freshly generated set. Every (video, object_id) track is read back from
the rendered footage and its object-ID maps (not from the generator's internal state), and
summarised twice:

    colour        mean/std of R, G, B, mean S and V, an 8-bin hue histogram of chromatic pixels
                  and the achromatic share, pooled over the object's pixels in every used frame
    motion/shape  centroid speed (median, p90, max, mean; in object heights per frame), vertical
                  motion, straightness of the path, share of static frames, bounding-box aspect
                  ratio and its change, fill ratio, area (in height^2) and its change, height
                  change. No colour at all.

Used frames: those where the object is visible; for an anomalous object only the frames of its
span in {video}_tracks.txt. Two off-the-shelf classifiers (standardised logistic regression,
histogram gradient boosting; default settings, nothing tuned) are fit on the train-split objects
and scored with ROC-AUC on the validation+test objects, once over all objects and once over people
only (cars, bicycles, balls, bags and skateboards appear only as anomalies, so their appearance
legitimately differs; people are where a colour shortcut would be a generator bug).

If the generator is sound, colour-only AUROC on people stays near chance (< 0.65, the target) while
motion/shape is clearly higher. The numbers are measured, never tuned to meet the target.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import Row

VIDEOS = 120  # twice the default set: ~ 500 objects, ~ 120 anomalous, for a steadier AUROC
SEED = 0
HUE_BINS = 8
MIN_FRAMES = 3  # a track needs >= 3 used frames for speeds and changes to mean anything
STATIC = 0.02  # a step slower than 2% of the object's height per frame counts as static
# Leave out frames where the object touches the frame edge: normal walkers enter and leave the
# picture, so their truncated boxes would make "box changes near the border" a cue for normality.
DROP_BORDER = True
BOOTSTRAP = 500  # resamples of the evaluation objects for the 95% interval in the notes

COLOUR_NAMES = (["mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "mean_s", "mean_v"]
                + [f"hue_{k}" for k in range(HUE_BINS)] + ["achromatic"])
MOTION_NAMES = ["speed_med", "speed_p90", "speed_max", "speed_mean", "vy_mean", "vy_absmean", "vy_std",
                "straightness", "static_frac", "aspect_med", "aspect_std", "aspect_range", "fill_med",
                "area_med", "area_cv", "dlog_area_max", "height_cv"]


# --- per-frame measurements ---------------------------------------------------------------------

def _frame_stats(frame: np.ndarray, ids: np.ndarray) -> dict[int, np.ndarray]:
    """Per object id in this frame: [count, sum r,g,b, sum r2,g2,b2, sum s, sum v, hue bins...,
    achromatic count, sum x, sum y, x1, y1, x2, y2]. Only object pixels are touched (objects cover
    a few percent of a frame), with one bincount per column."""
    W = ids.shape[1]
    pos = np.flatnonzero(ids)
    if pos.size == 0:
        return {}
    lab = ids.ravel()[pos].astype(np.int64)
    n = int(lab.max()) + 1
    rgb = frame.reshape(-1, 3)[pos].astype(np.float64)
    hsv = cv2.cvtColor(frame.reshape(-1, 1, 3)[pos], cv2.COLOR_RGB2HSV).reshape(-1, 3)  # H 0..179
    ys, xs = np.divmod(pos, W)
    count = np.bincount(lab, minlength=n)
    cols = [count]
    cols += [np.bincount(lab, rgb[:, c], n) for c in range(3)]
    cols += [np.bincount(lab, rgb[:, c] ** 2, n) for c in range(3)]
    cols += [np.bincount(lab, hsv[:, c].astype(np.float64), n) for c in (1, 2)]
    chromatic = (hsv[:, 1] >= 60) & (hsv[:, 2] >= 40)
    hbin = np.where(chromatic, hsv[:, 0].astype(np.int64) * HUE_BINS // 180, HUE_BINS)
    hist = np.bincount(lab * (HUE_BINS + 1) + hbin, minlength=n * (HUE_BINS + 1)).reshape(n, HUE_BINS + 1)
    cols += [hist[:, k] for k in range(HUE_BINS + 1)]
    cols += [np.bincount(lab, xs.astype(np.float64), n), np.bincount(lab, ys.astype(np.float64), n)]
    big = np.iinfo(np.int64).max
    box = np.stack([np.full(n, big), np.full(n, big), np.full(n, -1), np.full(n, -1)], 1)
    np.minimum.at(box[:, 0], lab, xs)
    np.minimum.at(box[:, 1], lab, ys)
    np.maximum.at(box[:, 2], lab, xs)
    np.maximum.at(box[:, 3], lab, ys)
    table = np.concatenate([np.stack(cols, 1).astype(np.float64), box.astype(np.float64)], 1)
    return {int(oid): table[oid] for oid in np.nonzero(count[1:])[0] + 1}


def _video_tracks(args) -> list[dict]:
    """All object tracks of one video: per used frame the measurements of _frame_stats."""
    rec, spans = args
    cv2.setNumThreads(1)
    span_of = {oid: (s, e) for oid, s, e in spans}
    per: dict[int, list] = {}
    seen: set[int] = set()
    for t, (frame, ids) in enumerate(zip(rec.iter_frames(), rec.iter_object_maps())):
        for oid, row in _frame_stats(frame, ids).items():
            seen.add(oid)
            if oid in span_of and not span_of[oid][0] <= t <= span_of[oid][1]:
                continue  # anomalous object outside its anomalous span
            x1, y1, x2, y2 = row[-4:]
            if DROP_BORDER and (x1 == 0 or y1 == 0 or x2 == rec.width - 1 or y2 == rec.height - 1):
                continue  # cut by the frame edge: its box and area are not the object's
            per.setdefault(oid, []).append(np.concatenate([[t], row]))
    width = 1 + (1 + 3 + 3 + 2 + HUE_BINS + 1 + 2 + 4)  # t + the _frame_stats row
    return [{"video": rec.name, "split": rec.split, "object_id": oid, "anomalous": oid in span_of,
             "category": rec.object_names.get(oid, "?"),
             "frames": np.stack(per[oid]) if oid in per else np.zeros((0, width))}
            for oid in sorted(seen)]


# --- per-track features -------------------------------------------------------------------------

def colour_features(fr: np.ndarray) -> np.ndarray:
    """Pooled pixel statistics of one track; fr is its (N, 1 + len(row)) per-frame table."""
    tot = fr[:, 1:].sum(0)
    n = tot[0]
    mean = tot[1:4] / n
    std = np.sqrt(np.maximum(tot[4:7] / n - mean ** 2, 0))
    sv = tot[7:9] / n
    hist = tot[9:9 + HUE_BINS + 1] / n
    return np.concatenate([mean, std, sv, hist])


def motion_features(fr: np.ndarray) -> np.ndarray:
    """Centroid motion and box/area shape of one track; no colour enters."""
    t = fr[:, 0]
    n = fr[:, 1]
    k = 10 + HUE_BINS + 1  # first column after the hue histogram
    cx, cy = fr[:, k] / n, fr[:, k + 1] / n
    x1, y1, x2, y2 = fr[:, k + 2], fr[:, k + 3], fr[:, k + 4], fr[:, k + 5]
    w, h = x2 - x1 + 1, y2 - y1 + 1
    hm = float(np.median(h))
    step = np.diff(t) == 1  # consecutive frames only
    dx, dy = np.diff(cx)[step] / hm, np.diff(cy)[step] / hm
    v = np.hypot(dx, dy)
    if v.size == 0:
        v = dx = dy = np.zeros(1)
    path = v.sum()
    net = np.hypot(cx[-1] - cx[0], cy[-1] - cy[0]) / hm
    aspect = w / h
    area = n / hm ** 2
    dlog = np.abs(np.diff(np.log(n)))[step] if step.any() else np.zeros(1)
    return np.array([
        np.median(v), np.percentile(v, 90), v.max(), v.mean(),
        dy.mean(), np.abs(dy).mean(), dy.std(),
        net / path if path > 0 else 0.0, (v < STATIC).mean(),
        np.median(aspect), aspect.std(), aspect.max() - aspect.min(), np.median(n / (w * h)),
        np.median(area), area.std() / area.mean(), dlog.max(), h.std() / hm,
    ])


def object_table(root: Path, workers: int = 1) -> list[dict]:
    """Every object of a UBnormal-layout tree with its colour and motion features; objects with
    fewer than MIN_FRAMES usable frames get None for both (the caller drops and counts them)."""
    from tvau.data import open_dataset

    records = open_dataset(root, "ubnormal", load_tracks=False)
    kinds = {}
    sidecar = root / "attributes.jsonl"
    if sidecar.exists():  # our generator's per-object sidecar: only used to break results down by kind
        for line in sidecar.read_text().splitlines():
            o = json.loads(line)
            kinds[(o["video"], o["object_id"])] = o.get("anomaly_kind")
    jobs = [(r, r.spans) for r in records]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            tracks = [tr for out in pool.map(_video_tracks, jobs) for tr in out]
    else:
        tracks = [tr for j in jobs for tr in _video_tracks(j)]
    for tr in tracks:
        tr["kind"] = kinds.get((tr["video"], tr["object_id"])) if tr["anomalous"] else None
        usable = len(tr["frames"]) >= MIN_FRAMES  # same objects in every feature set
        tr["colour"] = colour_features(tr["frames"]) if usable else None
        tr["motion"] = motion_features(tr["frames"]) if usable else None
    return tracks


# --- probes -------------------------------------------------------------------------------------

def classifiers():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {"logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
            "hgb": lambda: HistGradientBoostingClassifier(random_state=0)}


def probe_auc(Xtr, ytr, Xte, yte, make) -> tuple[float, np.ndarray]:
    from sklearn.metrics import roc_auc_score

    model = make().fit(Xtr, ytr)
    score = model.predict_proba(Xte)[:, 1]
    return float(roc_auc_score(yte, score)), score


def bootstrap_ci(y: np.ndarray, score: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            vals.append(roc_auc_score(y[i], score[i]))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def feature_sets(tracks: list[dict]) -> dict[str, np.ndarray]:
    cats = sorted({tr["category"] for tr in tracks})
    onehot = np.array([[tr["category"] == c for c in cats] for tr in tracks], np.float64)
    return {"colour": np.stack([tr["colour"] for tr in tracks]),
            "motion/shape": np.stack([tr["motion"] for tr in tracks]),
            "category": onehot}


def run() -> list[Row]:
    from sklearn.metrics import roc_auc_score

    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    workers = min(2, os.cpu_count() or 1)
    cfg = SynthConfig(videos=VIDEOS)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_learnability_") as tmp:
        generate(Path(tmp) / "ds", cfg, seed=SEED, workers=workers, progress=False)
        t_gen = time.perf_counter() - t0
        tracks = object_table(Path(tmp) / "ds", workers=workers)
    t_feat = time.perf_counter() - t0 - t_gen
    short = [tr for tr in tracks if tr["motion"] is None]
    dropped = f"{sum(tr['anomalous'] for tr in short)}/{sum(not tr['anomalous'] for tr in short)}"
    tracks = [tr for tr in tracks if tr["motion"] is not None]
    y = np.array([tr["anomalous"] for tr in tracks], int)
    train = np.array([tr["split"] == "train" for tr in tracks])
    person = np.array([tr["category"] == "person" for tr in tracks])
    feats = feature_sets(tracks)

    rows = []
    for subset, keep in (("all objects", np.ones(len(tracks), bool)), ("people only", person)):
        tr_i, te_i = keep & train, keep & ~train
        counts = (f"train {y[tr_i].sum()}/{(1 - y[tr_i]).sum()}, "
                  f"eval {y[te_i].sum()}/{(1 - y[te_i]).sum()} anomalous/normal")
        for fname, X in feats.items():
            if fname == "category" and subset == "people only":
                continue  # one category: nothing to learn
            for cname, make in classifiers().items():
                auc, score = probe_auc(X[tr_i], y[tr_i], X[te_i], y[te_i], make)
                lo, hi = bootstrap_ci(y[te_i], score)
                target, ok = "", None
                if fname == "colour" and subset == "people only":
                    target, ok = "< 0.65 (no colour cue)", auc < 0.65
                rows.append(Row(f"learnability: {fname} -> anomalous ({subset}, {cname})", auc, "AUROC",
                                target, ok, f"95% CI {lo:.2f}-{hi:.2f}; {counts}"))
    # Per anomaly kind: that kind's anomalous eval objects against all normal eval objects, using
    # the all-objects models (logistic regression). Few objects per kind: read as a rough guide.
    kinds = np.array([tr["kind"] or "" for tr in tracks])
    scores = {f: probe_auc(X[train], y[train], X[~train], y[~train], classifiers()["logreg"])[1]
              for f, X in feats.items() if f != "category"}
    yev, kev = y[~train], kinds[~train]
    for kind in sorted(set(kev) - {""}):
        sel = (yev == 0) | (kev == kind)
        aucs = {f: roc_auc_score(yev[sel], s[sel]) for f, s in scores.items()}
        rows.append(Row(f"learnability: {kind}: motion/shape (logreg, all-objects model)", aucs["motion/shape"],
                        "AUROC", "", None, f"colour {aucs['colour']:.2f}; {int((kev == kind).sum())} anomalous "
                        f"vs {int((yev == 0).sum())} normal eval objects"))
    note = (f"{VIDEOS} videos x {cfg.frames} frames @ {cfg.size}px, seed {SEED}, {workers} workers; "
            f"{len(tracks)} tracks kept; {dropped} anomalous/normal dropped (< {MIN_FRAMES} usable frames)")
    rows.append(Row("learnability: generate set", t_gen, "s", "", None, note))
    rows.append(Row("learnability: read back + features", t_feat, "s", "", None, note))
    return rows
