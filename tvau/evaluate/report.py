"""The evaluation of a trained model beside the baseline: data/metrics/evaluate.json,
per-video tables and plots (data/evaluate/), and `load_eval` for the gates.

evaluate.json:
  {"split", "videos", "frames",
   "model":    {metric: {"value", "low", "high"}},       # low/high: 95% bootstrap over videos
   "baseline": {metric: {"value", "low", "high"}},       # the same videos, null where undefined
   "majority_yes_no": float,                             # accuracy of always answering the majority
   "per_kind": {kind: {"model": {"auc": {...}}, "baseline": {"auc": {...}}}},
   "holdout": {"videos", "frames", "seed", "model": {...}, "baseline": {...}, "majority_yes_no",
               "details": {"field_majority", "field_majority_answered"}, ...},
   "region_method": "components", "notes": [...],
   "calibration": {"threshold", "recall", "false_alarm", ...}}   # tvau/evaluate/calibration.py
metric keys: micro_auc, macro_auc, pixel_auroc, rbdc, tbdc, yes_no_accuracy, bleu4_target,
bleu4_trajectory, all fractions in [0, 1]. The baseline has no dialogue: its dialogue metrics are null.
The model block (and the holdout's) also holds the metrics that look at the words
(tvau/evaluate/words.py), each leaf {"value", "low", "high"}:
   "field_accuracy": {field: ...}, "field_accuracy_answered": {field: ...},   # fields of
                                                       # tvau.metrics.fields.FIELDS
   "distinct_answer_share": {"target": ..., "trajectory": ...}, "looping_answers": {same keys},
   "said_yes": {"normal": ..., kind: ...}

Per-kind AUC: frame micro-AUC over the videos of that anomaly kind together with every normal video
of the split (the kinds come from the synthetic generator's synth_manifest.json; a tree without one
has no per-kind table). No timings are written: DVC tracks these files.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tvau.evaluate import bootstrap as bs
from tvau.evaluate.frames import VideoScores, summarise
from tvau.evaluate.model import DialogueResult
from tvau.evaluate.words import WORD_METRICS, word_metrics

METRICS = ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc", "yes_no_accuracy", "bleu4_target",
           "bleu4_trajectory")
PIXEL_BOOT_BINS = 4096


class EvalFileError(ValueError):
    """An evaluate.json that does not have the contract's shape; the message names the file."""


def video_kinds(root: str | Path) -> dict[str, str | None]:
    """{video: anomaly kind or None} from a synthetic tree's synth_manifest.json ({} otherwise)."""
    f = Path(root) / "synth_manifest.json"
    if not f.is_file():
        return {}
    try:
        return {v["name"]: v.get("kind") for v in json.loads(f.read_text()).get("videos", [])}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return {}


def _per_video_auc(v: VideoScores) -> float:
    from tvau.metrics.frame import macro_auc

    return macro_auc([v.labels], [np.clip(v.scores, 0, 1)])


def block(videos: Sequence[VideoScores], dialogues: dict[str, list[DialogueResult]] | None, metrics_cfg,
          eval_cfg, seed_salt: int = 0) -> tuple[dict[str, bs.Interval], dict]:
    """Every metric with its interval for one scorer on one set of videos."""
    point = summarise(videos, metrics_cfg)
    draws = bs.resamples(len(videos), eval_cfg.bootstrap, eval_cfg.bootstrap_seed + seed_salt)
    conf = eval_cfg.confidence
    labels, scores = [v.labels for v in videos], [v.scores for v in videos]
    pos = np.stack([bs.coarse_hist(v.pixels.pos_hist, PIXEL_BOOT_BINS) for v in videos])
    neg = np.stack([bs.coarse_hist(v.pixels.neg_hist, PIXEL_BOOT_BINS) for v in videos])
    frames = [len(v.labels) for v in videos]
    a, b = metrics_cfg.rbdc_alpha, metrics_cfg.tbdc_beta
    out = {
        "micro_auc": bs.interval(point["micro_auc"], bs.micro_auc_stat(labels, scores), draws, conf),
        "macro_auc": bs.interval(point["macro_auc"], bs.mean_stat([_per_video_auc(v) for v in videos]), draws, conf),
        "pixel_auroc": bs.interval(point["pixel_auroc"], bs.pixel_auroc_stat(pos, neg), draws, conf),
        "rbdc": bs.interval(point["rbdc"], bs.region_stat([v.tracks for v in videos], [v.detections for v in videos],
                                                          frames, "rbdc", a, b), draws, conf),
        "tbdc": bs.interval(point["tbdc"], bs.region_stat([v.tracks for v in videos], [v.detections for v in videos],
                                                          frames, "tbdc", a, b), draws, conf),
    }
    extra: dict[str, Any] = {"notes": point["notes"], "miou": point["miou"]}
    if dialogues is None:
        out |= {k: bs.Interval(None, None, None) for k in ("yes_no_accuracy", "bleu4_target", "bleu4_trajectory")}
        return out, extra
    from tvau.metrics.text import parse_yes_no

    per = [dialogues.get(v.name, []) for v in videos]
    correct = np.array([sum(parse_yes_no(d.answer) is d.truth for d in ds) for ds in per])
    asked = np.array([len(ds) for ds in per])
    acc = float(correct.sum() / asked.sum()) if asked.sum() else None
    out["yes_no_accuracy"] = bs.interval(acc, bs.ratio_stat(correct, asked), draws, conf)
    yes = sum(d.truth for ds in per for d in ds)
    extra["majority_yes_no"] = float(max(yes, asked.sum() - yes) / asked.sum()) if asked.sum() else None
    extra["unparsed_yes_no"] = int(sum(parse_yes_no(d.answer) is None for ds in per for d in ds))
    tok = metrics_cfg.bleu_tokenize
    for key, hyp, ref in (("bleu4_target", "target", "ref_target"), ("bleu4_trajectory", "trajectory", "ref_trajectory")):
        pairs = [[(getattr(d, hyp) or "", getattr(d, ref)) for d in ds if getattr(d, ref)] for ds in per]
        stats = [bs.bleu_stats([h for h, _ in p], [r for _, r in p], tok) for p in pairs]
        n = sum(len(p) for p in pairs)
        if n == 0:
            out[key] = bs.Interval(None, None, None)
            extra["notes"] = [*extra["notes"], f"{key}: no refined-description references for these videos"]
            continue
        from tvau.metrics.text import corpus_bleu4

        value = corpus_bleu4([h for p in pairs for h, _ in p], [r for p in pairs for _, r in p], tok) / 100.0
        out[key] = bs.interval(value, bs.bleu_stat(stats, tok), draws, conf)
        extra[f"{key}_sentences"] = n
    return out, extra


def _yes_rate(dialogues: dict[str, list[DialogueResult]] | None, names: Sequence[str]) -> dict | None:
    """How often the dialogue answered yes to Q_ANOMALY on the clips of these videos (None: no
    dialogue was run). Per anomaly kind this is the dialogue's recall for that kind, which matters
    for kinds a frame pair cannot show (loitering, crowd gathering): RAE sees the whole clip."""
    if dialogues is None:
        return None
    from tvau.metrics.text import parse_yes_no

    ds = [d for n in names for d in dialogues.get(n, [])]
    yes = sum(parse_yes_no(d.answer) is True for d in ds)
    return {"asked": len(ds), "yes": yes, "yes_rate": yes / len(ds) if ds else None}


def per_kind(model_v: Sequence[VideoScores], base_v: Sequence[VideoScores], kinds: dict[str, str | None],
             eval_cfg, dialogues: dict[str, list[DialogueResult]] | None = None) -> dict[str, dict]:
    """Per anomaly kind: frame micro-AUC of its videos against every normal video (model and
    baseline, with intervals) and, when dialogues are given, the yes-rate on that kind's clips."""
    from tvau.metrics.frame import micro_auc

    known = [k for k in sorted({kinds.get(v.name) for v in model_v} - {None})]
    normal = [i for i, v in enumerate(model_v) if kinds.get(v.name) is None and v.name in kinds]
    out = {}
    for j, kind in enumerate(known):
        idx = [i for i, v in enumerate(model_v) if kinds.get(v.name) == kind] + normal
        draws = bs.resamples(len(idx), eval_cfg.bootstrap, eval_cfg.bootstrap_seed + 100 + j)
        row = {}
        for name, vids in (("model", model_v), ("baseline", base_v)):
            labels = [vids[i].labels for i in idx]
            scores = [vids[i].scores for i in idx]
            try:
                value = micro_auc(labels, scores)
            except ValueError:
                value = None
            row[name] = {"auc": bs.interval(value, bs.micro_auc_stat(labels, scores), draws,
                                            eval_cfg.confidence).as_dict()}
        row["videos"] = len(idx) - len(normal)
        row["dialogue"] = _yes_rate(dialogues, [model_v[i].name for i in idx[:row["videos"]]])
        out[kind] = row
    return out


def assemble(model_v, base_v, dialogues: list[DialogueResult], kinds: dict, params, split: str) -> dict:
    """The contract's evaluation dict for one set of videos (without the holdout block)."""
    by_video: dict[str, list[DialogueResult]] = defaultdict(list)
    for d in dialogues:
        by_video[d.video].append(d)
    m, mx = block(model_v, by_video, params.metrics, params.evaluate)
    b, bx = block(base_v, None, params.metrics, params.evaluate)
    w, wx = word_metrics([v.name for v in model_v], by_video, kinds, params.evaluate)
    return {
        "split": split,
        "videos": len(model_v),
        "frames": int(sum(len(v.labels) for v in model_v)),
        "model": {k: m[k].as_dict() for k in METRICS} | w,
        "baseline": {k: b[k].as_dict() for k in METRICS},
        "majority_yes_no": mx.get("majority_yes_no"),
        "per_kind": per_kind(model_v, base_v, kinds, params.evaluate, by_video),
        "region_method": params.metrics.regions,
        "details": {
            "model_miou": mx["miou"], "baseline_miou": bx["miou"], "dialogue_clips": len(dialogues),
            "unparsed_yes_no": mx.get("unparsed_yes_no"), "bootstrap": params.evaluate.bootstrap,
            "normal_dialogue": _yes_rate(by_video, [v.name for v in model_v if kinds.get(v.name) is None]),
            "confidence": params.evaluate.confidence,
            "bleu_sentences": {k: mx.get(f"{k}_sentences", 0) for k in ("bleu4_target", "bleu4_trajectory")},
        } | wx,
        "notes": [f"model {n}" for n in mx["notes"]] + [f"baseline {n}" for n in bx["notes"]],
    }


def flat(result: dict) -> dict:
    """The one flat object `tvau evaluate --json` prints: metric values of the model at top level,
    plus intervals, baseline values, per-kind AUCs and, when present, the holdout block."""
    out: dict[str, Any] = {k: result["model"][k]["value"] for k in METRICS}
    out |= {"split": result["split"], "videos": result["videos"], "frames": result["frames"],
            "intervals": {k: [result["model"][k]["low"], result["model"][k]["high"]] for k in METRICS},
            "baseline": {k: result["baseline"][k]["value"] for k in METRICS},
            "baseline_intervals": {k: [result["baseline"][k]["low"], result["baseline"][k]["high"]] for k in METRICS},
            "majority_yes_no": result["majority_yes_no"],
            "per_kind": {k: {"model": v["model"]["auc"]["value"], "baseline": v["baseline"]["auc"]["value"]}
                         for k, v in result["per_kind"].items()},
            "region_method": result["region_method"]}
    out |= word_values(result["model"])
    if "calibration" in result:
        c = result["calibration"]
        out["calibration"] = {"threshold": c["threshold"]["value"], "recall": c["recall"]["value"],
                              "false_alarm_rate": c["false_alarm_rate"]}
    if "holdout" in result:
        out["holdout"] = {s: {k: result["holdout"][s][k]["value"] for k in METRICS} for s in ("model", "baseline")}
        out["holdout"]["model"] |= word_values(result["holdout"]["model"])
    return out


def word_values(model_block: dict) -> dict:
    """{metric: {key: value}} of the word metrics in a model block (those present)."""
    return {k: {q: v["value"] for q, v in model_block[k].items()} for k in WORD_METRICS if k in model_block}


def interval_text(v: dict | None) -> str | None:
    """An evaluate.json figure as 'value [low, high]' (the value alone without an interval; None
    without a value)."""
    if not v or v["value"] is None:
        return None
    return f"{v['value']:.3f}" + (f" [{v['low']:.3f}, {v['high']:.3f}]" if v["low"] is not None else "")


def word_rows(model_block: dict, holdout_block: dict | None = None, details: dict | None = None) -> list[dict]:
    """The word metrics as table rows (metric, key, value [interval], the holdout's, and for the
    field accuracies what one constant answer scores on the same clips: details' field_majority*)."""
    constant = {"field_accuracy": (details or {}).get("field_majority") or {},
                "field_accuracy_answered": (details or {}).get("field_majority_answered") or {}}
    rows = []
    for k in WORD_METRICS:
        for q, v in (model_block.get(k) or {}).items():
            row = {"metric": k, "of": q, "model": interval_text(v)}
            if details is not None:
                c = constant.get(k, {}).get(q)
                row["a constant answer"] = None if c is None else f"{c:.3f}"
            if holdout_block is not None:
                row["holdout"] = interval_text((holdout_block.get(k) or {}).get(q))
            rows.append(row)
    return rows


def load_eval(path: str | Path) -> dict:
    """Read and check an evaluate.json (for the gates). Raises EvalFileError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvalFileError(f"{path}: no such evaluation file (run `tvau evaluate` or `dvc repro evaluate`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EvalFileError(f"{path}: expected an object at the top level")
    for key in ("split", "videos", "frames", "model", "baseline", "majority_yes_no", "per_kind", "region_method"):
        if key not in data:
            raise EvalFileError(f"{path}: missing key {key!r}")
    blocks = [("model", data["model"]), ("baseline", data["baseline"])]
    if "holdout" in data:
        blocks += [(f"holdout.{s}", data["holdout"].get(s)) for s in ("model", "baseline")]
    for name, blk in blocks:
        if not isinstance(blk, dict):
            raise EvalFileError(f"{path}: {name} must be an object of metrics")
        for m in METRICS:
            v = blk.get(m)
            if not isinstance(v, dict) or set(v) != {"value", "low", "high"}:
                raise EvalFileError(f"{path}: {name}.{m} must be {{value, low, high}}, got {v!r}")
            for part, x in v.items():
                if x is not None and not (isinstance(x, (int, float)) and 0.0 <= x <= 1.0):
                    raise EvalFileError(f"{path}: {name}.{m}.{part} = {x!r} is not a fraction in [0, 1]")
    return data


# --- the per-video table and the pictures ---------------------------------------------------------

def per_video_rows(model_v, base_v, kinds: dict, split_of: dict) -> list[dict]:
    rows = []
    for mv, bv in zip(model_v, base_v):
        rows.append({"video": mv.name, "split": split_of.get(mv.name), "kind": kinds.get(mv.name),
                     "frames": len(mv.labels), "anomalous_frames": int(mv.labels.sum()),
                     "model_auc": round(_per_video_auc(mv), 6), "baseline_auc": round(_per_video_auc(bv), 6),
                     "model_max": round(float(mv.scores.max()), 6), "baseline_max": round(float(bv.scores.max()), 6)})
    return rows


def plot_curves(model_v, base_v, metrics_cfg, out_dir: Path) -> list[tuple[str, str]]:
    """ROC (frames pooled) and RBDR/TBDR against false positives per frame, model and baseline on the
    same axes. Returns (file name, caption) pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    from tvau.metrics.regions import rbdc_tbdc
    from tvau.storage import atomic_path

    made = []
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, vids, style in (("T-VAU", model_v, "-"), ("baseline", base_v, "--")):
        y = np.concatenate([v.labels for v in vids])
        s = np.concatenate([v.scores for v in vids])
        if 0 < y.sum() < y.size:
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, style, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    ax.set_xlabel("false positive rate (frames)")
    ax.set_ylabel("true positive rate")
    ax.set_title("Frame ROC")
    ax.legend(loc="lower right")
    with atomic_path(out_dir / "roc.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    made.append(("roc.png", "Frame-level ROC, T-VAU and the baseline"))

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for name, vids, style in (("T-VAU", model_v, "-"), ("baseline", base_v, "--")):
        try:
            c = rbdc_tbdc({v.name: v.tracks for v in vids}, {v.name: v.detections for v in vids},
                          int(sum(len(v.labels) for v in vids)), metrics_cfg.rbdc_alpha, metrics_cfg.tbdc_beta)
        except ValueError:
            continue
        keep = c.fpr <= 1.0
        for ax, rate, label in ((axes[0], c.rbdr, "RBDR"), (axes[1], c.tbdr, "TBDR")):
            x, y = c.fpr[keep], rate[keep]
            if x[-1] < 1.0:  # the metric extends the curve flat to one false positive per frame: so does the plot
                x, y = np.append(x, 1.0), np.append(y, y[-1])
            ax.plot(x, y, style, label=f"{name} ({label[0]}BDC {c.rbdc if label == 'RBDR' else c.tbdc:.3f})")
    for ax, label in zip(axes, ("RBDR", "TBDR")):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("false positives per frame")
        ax.set_ylabel(label)
        ax.legend(loc="lower right", fontsize=8)
    with atomic_path(out_dir / "rbdr_tbdr.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    made.append(("rbdr_tbdr.png", "Region and track detection rate against false positives per frame"))
    return made


def plot_overlays(records: dict, model_scorer, base_scorer, rows: list[dict], k: int, out_dir: Path) -> list:
    """Best and worst anomalous videos by the model's per-video AUC: the most anomalous frame with the
    ground truth outlined, the model's heatmap and the baseline's, side by side."""
    from tvau.report import contact_sheet, outline, overlay, save_png

    anomalous = sorted((r for r in rows if r["anomalous_frames"]), key=lambda r: r["model_auc"])
    if not anomalous or k == 0:
        return []
    made = []
    for tag, chosen in (("worst", anomalous[:k]), ("best", anomalous[::-1][:k])):
        images, labels = [], []
        for r in chosen:
            rec = records[r["video"]]
            lab = np.asarray(rec.frame_labels)
            span = np.flatnonzero(lab)
            t = int(span[len(span) // 2])
            frame = next(rec.iter_frames(t, t + 1))
            mask = next(rec.iter_anomaly_masks(t, t + 1))
            model_scorer.dialogue_per_video = 0  # pictures only: no dialogue
            # Both scorers stream frames in order: stop at frame t (nothing after it is needed).
            mh = next(itertools.islice(model_scorer(rec), t, None))
            bh = next(itertools.islice(base_scorer(rec), t, None))
            images += [outline(frame, mask), outline(overlay(frame, mh), mask), outline(overlay(frame, bh), mask)]
            labels += [f"{r['video'][:26]} t={t}", f"T-VAU AUC {r['model_auc']:.2f}", f"baseline {r['baseline_auc']:.2f}"]
        name = f"overlays_{tag}.png"
        save_png(out_dir / name, contact_sheet(images, labels, cols=3))
        made.append((name, f"{tag} videos: frame (ground truth outlined), T-VAU heatmap, baseline heatmap"))
    return made
