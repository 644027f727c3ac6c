"""The per-video verdict: ONE definition of a video's anomaly score, shared by the calibration
(`tvau evaluate`, tvau/evaluate/calibration.py) and the nightly scorer, so the threshold fitted on
validation applies to exactly the number the scorer computes.

    frame score  = frame_peak(the frame's heatmap at the model's input size)   (TVAU.heatmap_frames)
    smoothed     = smooth(frame scores, sigma in seconds x the sampled rate)
    video score  = max(smoothed)
    verdict      = "anomalous" when the video score exceeds the calibrated threshold

The threshold travels with the model as `calibration.json` in its directory (written by
`tvau evaluate --calibration-out` and carried into the registered model by the retrain flow); a
model without one is refused (CalibrationError), never scored against a re-typed number.
Anomalous spans are the runs of sampled frames whose smoothed score exceeds the threshold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = "tvau-calibration/1"


class CalibrationError(ValueError):
    """A model directory without a usable calibration; the message names the fix."""


def frame_peak(frame_heat) -> float:
    """A frame's score: the highest value of its heatmap at the model's input size."""
    return float(np.max(np.asarray(frame_heat)))


def smooth(scores, fps: float, sigma_s: float) -> np.ndarray:
    """Frame scores smoothed over time with a Gaussian of `sigma_s` seconds (at `fps` sampled
    frames per second): one flickering frame is not an event."""
    s = np.asarray(scores, np.float64)
    sigma = sigma_s * fps
    if sigma <= 0 or len(s) < 2:
        return s
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(s, sigma, mode="nearest")


def video_score(scores, fps: float, sigma_s: float) -> float:
    """The per-video score the threshold is fitted on and applied to: max of the smoothed frame scores."""
    s = smooth(scores, fps, sigma_s)
    return float(s.max()) if len(s) else 0.0


def flags(video_scores, threshold: float) -> np.ndarray:
    """Which videos are flagged: strictly above the threshold (the calibration's own rule)."""
    return np.asarray(video_scores, np.float64) > threshold


@dataclass(frozen=True)
class Calibration:
    threshold: float
    false_alarm_rate: float  # the target share of normal videos flagged
    expected_flag_rate: float  # the share of normal validation videos flagged at the threshold
    sigma_s: float
    sampling: dict  # fps, clip_frames, stride of the calibration's frame scores
    # Normal validation videos' scores (histogram edges/shares, quantiles): a night is mostly normal
    # footage, so its scores are compared with those (drift), not with the half-anomalous split.
    reference: dict
    digest: str  # sha256 of the file: a new calibration rescoring the night
    raw: dict

    @classmethod
    def from_dict(cls, d: dict, digest: str) -> Calibration:
        return cls(float(d["threshold"]["value"]), float(d["false_alarm_rate"]),
                   float(d["false_alarm"]["value"]), float(d["video_score"]["smoothing_sigma_s"]),
                   dict(d["sampling"]), dict(d["reference_normal"]), digest, d)


def _fix(model_dir: str | Path) -> str:
    return (f"register it through the retrain flow (python -m flows.retrain) or run `tvau evaluate --model "
            f"{model_dir} --data DATA --calibration-out {Path(model_dir) / CALIBRATION_FILE}`")


def read_calibration(model_dir: str | Path) -> Calibration:
    """The calibration carried by a trained-model directory; CalibrationError (one line, naming the
    fix) when it is missing or unreadable."""
    import hashlib

    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        raise CalibrationError(f"{model_dir}: no {CALIBRATION_FILE}; {_fix(model_dir)}")
    data = path.read_bytes()
    try:
        d = json.loads(data)
        if d.get("format") != CALIBRATION_FORMAT:
            raise KeyError("format")
        return Calibration.from_dict(d, hashlib.sha256(data).hexdigest())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CalibrationError(f"{path}: not a {CALIBRATION_FORMAT} file ({exc}); {_fix(model_dir)}") from None


def sampling_mismatch(cal: Calibration, fps: float, clip_frames: int, stride: int) -> str | None:
    """Why the threshold was not fitted on frame scores sampled like these (None when it was)."""
    want = cal.sampling
    got = {"fps": fps, "clip_frames": clip_frames, "stride": stride}
    diff = [f"{k} {got[k]:g} (calibrated at {want.get(k)})" for k in got
            if want.get(k) is None or not math.isclose(float(want[k]), float(got[k]), rel_tol=1e-3)]
    return ", ".join(diff) or None


def spans(smoothed, threshold: float, source_frames, fps: float, min_frames: int, gap_frames: int) -> list[dict]:
    """Anomalous spans: runs of sampled frames above the threshold, runs separated by fewer than
    `gap_frames` frames merged, runs shorter than `min_frames` dropped except the one holding the
    video's peak (so an anomalous verdict always has a span to look at). Frames are source frames."""
    s = np.asarray(smoothed, np.float64)
    above = [int(i) for i in np.flatnonzero(s > threshold)]
    if not above:
        return []
    runs = [[above[0], above[0]]]
    for i in above[1:]:
        if i - runs[-1][1] - 1 < gap_frames:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    peak = int(np.argmax(s))
    out = []
    for a, b in runs:
        if b - a + 1 < min_frames and not a <= peak <= b:
            continue
        p = a + int(np.argmax(s[a:b + 1]))
        out.append({"start_frame": int(source_frames[a]), "end_frame": int(source_frames[b]),
                    "start_s": round(float(source_frames[a]) / fps, 3), "end_s": round(float(source_frames[b]) / fps, 3),
                    "peak_frame": int(source_frames[p]), "peak_s": round(float(source_frames[p]) / fps, 3),
                    "peak_score": float(s[p]), "sampled_frames": int(b - a + 1), "peak_index": p})
    return out


# ------------------------------------------------------------------------------------ drift


def reference_histogram(scores, bins: int = 5) -> dict:
    """Edges at the quantiles of the validation video scores and each bin's share: what the
    night's scores are compared with (population-stability index). Five bins: a night holds tens of
    videos, and the index's no-drift level grows with the bins (psi_noise)."""
    s = np.sort(np.asarray(scores, np.float64))
    inner = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)[1:-1])) if len(s) else np.zeros(0)
    counts = np.bincount(np.searchsorted(inner, s, side="right"), minlength=len(inner) + 1)
    return {"edges": [float(e) for e in inner], "shares": [float(c) / max(1, len(s)) for c in counts],
            "videos": len(s),
            "quantiles": {f"q{int(q * 100):02d}": float(np.quantile(s, q)) if len(s) else None
                          for q in (0.05, 0.25, 0.5, 0.75, 0.95)}}


def psi(reference: dict, scores) -> float | None:
    """Population-stability index of `scores` against the reference histogram (None without scores).
    Empty bins count as 0.5 video on both sides, so one night's empty bin does not explode it."""
    s = np.asarray(scores, np.float64)
    if not len(s):
        return None
    edges = np.asarray(reference["edges"], np.float64)
    expected = np.asarray(reference["shares"], np.float64)
    got = np.bincount(np.searchsorted(edges, s, side="right"), minlength=len(expected)).astype(np.float64)
    eps_a, eps_e = 0.5 / len(s), 0.5 / max(1, len(expected) * 10)
    actual = np.maximum(got / len(s), eps_a)
    expected = np.maximum(expected, eps_e)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_noise(reference: dict, videos: int) -> float:
    """The index's expected value without any drift, from sampling alone: about (bins - 1) x
    (1/night + 1/reference) videos (the index is a symmetric divergence of two histograms, chi-square
    like under no change). Forty normal videos against 75 give about 0.15 over five bins."""
    bins = len(reference["shares"])
    return (bins - 1) * (1 / max(1, videos) + 1 / max(1, reference.get("videos", 0) or 1))


def flag_rate_p_value(flagged: int, videos: int, expected: float) -> float:
    """P(at least `flagged` of `videos` flagged) if every video were normal footage flagged at the
    calibration's rate: small = more flags than normal footage explains."""
    from scipy.stats import binom

    return float(binom.sf(flagged - 1, videos, min(max(expected, 1e-9), 1.0))) if videos else 1.0


def monitor(cal: Calibration, video_scores, flagged: int, min_videos: int, max_psi: float,
            min_p_value: float) -> dict:
    """The night against the calibration: flagged rate beside the expected rate, PSI, and whether
    either is out of range ("drift"); a night below `min_videos` videos is not judged."""
    n = len(video_scores)
    p = flag_rate_p_value(flagged, n, cal.expected_flag_rate)
    index = psi(cal.reference, video_scores)
    limit = max_psi + psi_noise(cal.reference, n)  # drift beyond what sampling alone gives
    judged = n >= min_videos
    reasons = []
    if judged and p < min_p_value:
        reasons.append(f"{flagged} of {n} videos flagged, normal footage would give about "
                       f"{cal.expected_flag_rate:.1%} (p = {p:.2g})")
    if judged and index is not None and index > limit:
        reasons.append(f"population-stability index {index:.2f} of the video scores against normal validation "
                       f"videos (above {limit:.2f}: {max_psi} plus {limit - max_psi:.2f} of sampling noise)")
    return {"videos": n, "flagged": flagged, "flag_rate": flagged / n if n else None,
            "expected_flag_rate": cal.expected_flag_rate, "target_false_alarm_rate": cal.false_alarm_rate,
            "flag_rate_p_value": p, "psi": index, "psi_limit": limit, "judged": judged, "drift": bool(reasons), "reasons": reasons,
            "note": None if judged else f"{n} videos: too few to judge drift (needs {min_videos})"}
