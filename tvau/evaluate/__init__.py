"""Evaluation: heatmap scorers on a split (frames.py), the trained model and its dialogue
(model.py), bootstrap intervals over videos (bootstrap.py), the contract's evaluate.json and its
plots (report.py), and `tvau evaluate` (cli.py).

The names of the former tvau/evaluate.py module stay importable from here (loaded lazily, so that
params parsing, which imports tvau.evaluate.config, does not pull in scikit-learn).
"""

from __future__ import annotations

_FRAMES = ("Scorer", "evaluate", "score_video", "select_split", "write_metrics_json")


def __getattr__(name: str):
    if name in _FRAMES:
        from tvau.evaluate import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'tvau.evaluate' has no attribute {name!r}")


__all__ = list(_FRAMES)
