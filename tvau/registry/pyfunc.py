"""The trained-model directory (tvau/model/trained.py: adapters.safetensors + model.json) as an MLflow pyfunc.

The adapters travel as an artifact (a few MB for the tiny model, tens of MB on the 7B). The backbone
travels only when it is a local directory no larger than `bundle_backbone_mb` (e.g. the pretrained
tiny backbone `data/backbone`): a path relative to the training checkout means nothing on a serving
machine. Otherwise the model's config names it (`backbone`, plus its sha256 when it was a local
directory) and the serving side loads it exactly as training did (embedded:tiny is rebuilt offline,
a hub id comes from the hub cache). A bundled backbone is checked against `backbone_sha256`.

Input (the signature): a batch of clips, uint8 tensor (clips, frames, height, width, 3), RGB. Clips
of another frame size are resized to the model's clip size. Output: {"frame_scores": (clips,
frames) float32 in [0, 1] (the frame's highest heatmap value), "heatmap": (clips, T', H', W')
float32 on the patch grid}.

    m = mlflow.pyfunc.load_model("models:/tvau@champion")
    out = m.predict(clips)          # or: mlflow models serve -m models:/tvau@champion --env-manager local
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from tvau.model.trained import MODEL_FORMAT, TrainedModelError, read_card
from tvau.score.verdict import CALIBRATION_FILE  # the per-video threshold, inside the model directory

ARTIFACT_KEY = "trained_model"  # the pyfunc artifact holding the trained-model directory
BACKBONE_KEY = "backbone"  # the pyfunc artifact holding a bundled local backbone directory


def load_model_dir(path: str | Path):
    """A frozen, eval-mode TVAU from a trained-model directory (tvau.model.trained is the one loader
    of that format; reading model.json first gives a clear error for a directory that is not one)."""
    from tvau.model.trained import load_trained

    read_card(path)
    return load_trained(str(path))


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    inputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1, 3), "clips")])
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1, -1), "frame_scores"),
                      TensorSpec(np.dtype(np.float32), (-1, -1, -1, -1), "heatmap")])
    return ModelSignature(inputs=inputs, outputs=outputs)


class TVAUPyfunc(mlflow.pyfunc.PythonModel):
    """Scores clips with the trained model (loaded once per process in load_context)."""

    def load_context(self, context) -> None:
        path = Path(context.artifacts[ARTIFACT_KEY])
        self.meta = read_card(path)
        if BACKBONE_KEY in context.artifacts:
            path = with_bundled_backbone(path, Path(context.artifacts[BACKBONE_KEY]), self.meta)
        self.model = load_model_dir(path)
        clip = self.meta.get("clip") or {}
        self.size = (int(clip.get("height", 0)), int(clip.get("width", 0)))

    def _clip(self, clip: np.ndarray) -> np.ndarray:
        h, w = self.size
        if h and w and clip.shape[1:3] != (h, w):
            import cv2

            clip = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in clip])
        return np.ascontiguousarray(clip, dtype=np.uint8)

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        if isinstance(model_input, dict):  # {"clips": array} from a named-tensor request
            model_input = model_input.get("clips", next(iter(model_input.values())))
        clips = np.asarray(model_input)
        if clips.ndim == 4:
            clips = clips[None]
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"expected clips of shape (clips, frames, height, width, 3), got {clips.shape}")
        scores, heats = [], []
        for clip in clips:
            enc = self.model.encode(self._clip(clip))
            frames = self.model.heatmap_frames(enc)
            scores.append(frames.flatten(1).amax(1).numpy().astype(np.float32))
            heats.append(self.model.heatmap(enc).numpy().astype(np.float32))
        return {"frame_scores": np.stack(scores), "heatmap": np.stack(heats)}


def with_bundled_backbone(model_dir: Path, backbone: Path, meta: dict[str, Any]) -> Path:
    """A copy of the trained-model directory whose model.json points at the bundled backbone
    (absolute path), after checking the backbone's weights are the ones trained against."""
    import shutil
    import tempfile

    from tvau.model.trained import backbone_sha256

    want = meta.get("backbone_sha256")
    got = backbone_sha256(str(backbone))
    if want and got is not None and got != want:
        raise TrainedModelError(f"{backbone}: bundled backbone weights do not match backbone_sha256 in model.json")
    out = Path(tempfile.mkdtemp(prefix="tvau-model-"))
    shutil.copy2(model_dir / "adapters.safetensors", out / "adapters.safetensors")
    if (model_dir / CALIBRATION_FILE).is_file():  # the verdict's threshold travels with the model
        shutil.copy2(model_dir / CALIBRATION_FILE, out / CALIBRATION_FILE)
    patched = dict(meta)
    patched["model"] = dict(meta["model"], backbone=str(backbone.resolve()))
    patched["backbone"] = str(backbone.resolve())
    (out / "model.json").write_text(json.dumps(patched))
    return out


def _local_backbone(meta: dict[str, Any], root: Path, max_mb: float) -> Path | None:
    ref = str(meta.get("backbone") or "")
    if not ref or ref.startswith("embedded:"):
        return None
    path = Path(ref) if Path(ref).is_absolute() else root / ref
    if not path.is_dir():
        return None  # a hub id
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path if size <= max_mb else None


def with_calibration(model_dir: str | Path, calibration: dict) -> Path:
    """A copy of the trained-model directory holding `calibration` as calibration.json (the DVC
    output itself is left as DVC made it)."""
    import shutil
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="tvau-model-")) / Path(model_dir).name
    shutil.copytree(model_dir, out)
    (out / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2, sort_keys=True) + "\n")
    return out


def log_pyfunc(model_dir: str | Path, run_id: str, name: str = "model", root: str | Path = ".",
               bundle_backbone_mb: float = 2048, calibration: dict | None = None) -> str:
    """Log a trained-model directory as a pyfunc model in run `run_id` (a local backbone directory
    up to `bundle_backbone_mb` MB travels with it; `calibration`, evaluate.json's block, travels as
    calibration.json inside the model directory); returns the model URI."""
    import mlflow

    meta = read_card(model_dir)
    config = {"backbone": meta.get("backbone"), "backbone_sha256": meta.get("backbone_sha256"),
              "seed": meta.get("seed"), "model": meta.get("model"), "clip": meta.get("clip")}
    # `tvau` brings everything the model needs; a pinned list avoids MLflow's slow requirement
    # inference (it would import and probe the model). Serving here uses --env-manager local.
    from importlib.metadata import PackageNotFoundError, version

    try:
        reqs = [f"tvau=={version('tvau')}"]
    except PackageNotFoundError:
        reqs = ["tvau"]
    if calibration is not None:
        import shutil

        copy = with_calibration(model_dir, calibration)
        try:
            return log_pyfunc(copy, run_id, name, root, bundle_backbone_mb)
        finally:
            shutil.rmtree(copy.parent, ignore_errors=True)
    artifacts = {ARTIFACT_KEY: str(Path(model_dir).resolve())}
    backbone = _local_backbone(meta, Path(root), bundle_backbone_mb)
    if backbone is not None:
        artifacts[BACKBONE_KEY] = str(backbone.resolve())
    config["backbone_bundled"] = backbone is not None
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name=name, python_model=TVAUPyfunc(), artifacts=artifacts,
            signature=signature(), model_config=config, pip_requirements=reqs,
            metadata={"tvau_format": MODEL_FORMAT, "backbone": str(meta.get("backbone"))},
        )
    return info.model_uri
