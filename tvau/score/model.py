"""The model side of scoring: loading a trained model once per worker, its identity for manifests,
and the clip-level calls of the cascade.

Loading goes through ONE function, `load_trained_model`, which calls
`tvau.model.trained.load_trained` (the directory training writes). `ClipModel` is
the only place that calls the model, through its batched entry points: up to `clips_per_call`
clips go through the vision tower and AHD in one `TVAU.encode_batch` call, and the dialogues of
up to `clips_per_call` escalated clips are decoded together, one `TVAU.chat_batch` call per
question (one left-padded prefill and one KV cache for all of them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tvau.model.trained import model_digest
from tvau.score.verdict import Calibration, CalibrationError, read_calibration


def load_trained_model(path: str, params=None):
    """A frozen, eval-mode TVAU from a local trained-model directory (the contract's loader)."""
    from tvau.model.trained import load_trained

    return load_trained(path, params)


@dataclass
class LoadedModel:
    model: object  # tvau.model.tvau.TVAU
    uri: str  # as asked for (models:/tvau@champion, or a path)
    local_dir: str
    name: str | None  # registered model name, None for a plain directory
    version: str | None  # registry version, None for a plain directory
    run_id: str | None  # MLflow run that produced it, when known
    digest: str  # sha256 over adapters + model.json: what "the same model" means for skipping
    input_size: tuple[int, int]  # (height, width) the adapters were trained at
    calibration: Calibration | None = None  # the model directory's calibration.json
    calibration_error: str | None = None  # why there is none (the message names the fix)

    def identity(self) -> dict:
        return {"uri": self.uri, "name": self.name, "version": self.version, "run_id": self.run_id,
                "digest": self.digest, "local_dir": self.local_dir,
                "calibration_sha256": self.calibration.digest if self.calibration else None}

    def require_calibration(self) -> Calibration:
        """The calibration nightly verdicts need; CalibrationError naming the fix without one."""
        if self.calibration is None:
            raise CalibrationError(self.calibration_error or f"{self.uri}: no calibration")
        return self.calibration


def check_calibration(uri: str) -> Calibration:
    """Resolve `uri` and read its calibration without loading the model: a night is refused
    before any video is touched when the model cannot give verdicts."""
    local, *_ = resolve_model_dir(uri)
    return read_calibration(local)


def _registry_metadata(uri: str) -> tuple[str | None, str | None, str | None]:
    """(name, version, run id) of a models:/ or runs:/ URI, from MLflow; (None, ...) when unknown."""
    if uri.startswith("runs:/"):
        return None, None, uri[len("runs:/"):].split("/", 1)[0]
    from tvau.registry.resolve import model_version

    try:
        mv = model_version(uri)
    except Exception:  # noqa: BLE001 - identity is informative; the digest is what skipping uses
        return None, None, None
    return mv.name, str(mv.version), mv.run_id


def resolve_model_dir(uri: str) -> tuple[Path, str | None, str | None, str | None]:
    """A local trained-model directory for a registry URI or a path, plus registry identity."""
    if uri.startswith(("models:/", "runs:/")):
        from tvau.registry.resolve import download_model

        local = Path(download_model(uri))
        name, version, run_id = _registry_metadata(uri)
        return local, name, version, run_id
    local = Path(uri).expanduser()
    if not local.is_dir():
        raise ValueError(f"{uri}: no such trained-model directory")
    return local.resolve(), None, None, None


_CACHE: dict[tuple[str, str], LoadedModel] = {}
_LOCK = threading.Lock()


def get_model(uri: str, params=None, loader: Callable | None = None) -> LoadedModel:
    """The model for `uri`, loaded once per process (a Dask worker or thread pool reuses it)."""
    local, name, version, run_id = resolve_model_dir(uri)
    digest = model_digest(local)  # the registry's notion of "the same model" (tvau.model.trained)
    key = (str(local), digest)
    with _LOCK:
        if key not in _CACHE:
            model = (loader or load_trained_model)(str(local), params)
            clip = getattr(model, "clip", None) or (params.clip if params is not None else None)
            if clip is None:
                from tvau.data.config import ClipConfig

                clip = ClipConfig()
            _CACHE[key] = LoadedModel(model, uri, str(local), name, version, run_id, digest,
                                      (int(clip.height), int(clip.width)))
        loaded = _CACHE[key]
        # Read on every call: the calibration can be replaced (`tvau evaluate --calibration-out`)
        # without changing the model's weights.
        try:
            loaded.calibration, loaded.calibration_error = read_calibration(local), None
        except CalibrationError as exc:
            loaded.calibration, loaded.calibration_error = None, str(exc)
        return loaded


@dataclass
class ModelTimer:
    vision_s: float = 0.0  # vision tower + AHD (every clip)
    language_s: float = 0.0  # dialogue (escalated clips only)
    clips: int = 0
    escalated: int = 0
    frames: int = 0


def chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass
class ClipModel:
    """Cascade calls on groups of clips, `clips_per_call` at a time through the batched model."""

    loaded: LoadedModel
    clips_per_call: int = 4
    timer: ModelTimer = field(default_factory=ModelTimer)

    def __post_init__(self):
        if self.clips_per_call < 1:
            raise ValueError(f"clips_per_call must be >= 1, got {self.clips_per_call}")

    def heatmaps(self, clips: Sequence[np.ndarray]) -> tuple[list, list[np.ndarray]]:
        """Encodings and patch-resolution heatmaps (T', H', W') float32 of each clip: one vision
        tower + AHD call per `clips_per_call` clips."""
        import torch

        t0 = time.perf_counter()
        model = self.loaded.model
        encs, heats = [], []
        with torch.inference_mode():
            for group in chunks(list(clips), self.clips_per_call):
                got = model.encode_batch(group)
                encs += got
                heats += [model.heatmap(e).numpy().astype(np.float32) for e in got]
        self.timer.vision_s += time.perf_counter() - t0
        self.timer.clips += len(clips)
        self.timer.frames += sum(len(c) for c in clips)
        return encs, heats

    def frame_maps(self, encs: Sequence) -> list[np.ndarray]:
        """Each clip's per-frame heatmaps at the model's input size (T, H, W): what a frame's score
        is taken from (tvau.score.verdict.frame_peak), exactly as `tvau evaluate` takes it."""
        import torch

        t0 = time.perf_counter()
        with torch.inference_mode():
            out = [self.loaded.model.heatmap_frames(e).numpy().astype(np.float32) for e in encs]
        self.timer.vision_s += time.perf_counter() - t0
        return out

    def ask(self, encs: Sequence, questions: Sequence[str], max_new_tokens: int) -> list[list[dict]]:
        """The questions as one multi-turn dialogue per clip: [[{"question", "answer"}, ...], ...].
        The dialogues of `clips_per_call` clips advance together, one batched turn per question."""
        import torch

        t0 = time.perf_counter()
        out: list[list[dict]] = []
        with torch.inference_mode():
            for group in chunks(list(encs), self.clips_per_call):
                histories: list[list[tuple[str, str]]] = [[] for _ in group]
                turns: list[list[dict]] = [[] for _ in group]
                for q in questions:
                    results = self.loaded.model.chat_batch(group, q, histories, max_new_tokens=max_new_tokens)
                    for k, r in enumerate(results):
                        histories[k] = r.history
                        turns[k].append({"question": q, "answer": r.answer})
                out += turns
        self.timer.language_s += time.perf_counter() - t0
        self.timer.escalated += len(encs)
        return out
