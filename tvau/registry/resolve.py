"""`models:/...` or `runs:/...` URI -> a local trained-model directory (tvau/model/trained.py).

Callers that accept a URI (`tvau evaluate --model`, the nightly scorer, the demo) download it here,
then load the directory with `tvau.model.trained.load_trained`, which takes directories only: the
model layer does not import the registry. The registered artifact is a pyfunc model whose artifact
`trained_model` is the trained-model directory (adapters.safetensors + model.json).
"""

from __future__ import annotations

from pathlib import Path

import yaml


def use_store(root: str | Path = ".") -> str:
    """Point MLflow at the project's store (MLFLOW_TRACKING_URI > params.yaml registry.tracking_uri >
    SQLite under .tvau/) unless the caller already did; returns the URI."""
    import mlflow

    from tvau.config import load_params

    params = load_params(Path(root) / "params.yaml")
    uri = params.registry.resolved_tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def model_version(uri: str):
    """models:/NAME@ALIAS or models:/NAME/VERSION -> its MLflow ModelVersion; ValueError naming the
    URI when it has neither form or the registry does not hold it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    body = uri.removeprefix("models:/")
    name, sep, ref = body.partition("@") if "@" in body else body.partition("/")
    if body == uri or not (name and ref):
        raise ValueError(f"{uri}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    try:
        if sep == "@":
            return MlflowClient().get_model_version_by_alias(name, ref)
        return MlflowClient().get_model_version(name, ref)
    except MlflowException as exc:
        raise ValueError(f"{uri}: not in the registry ({exc.message})") from None


def _artifacts(uri: str, dst: str | Path | None) -> tuple[Path, dict]:
    """Download `uri`'s MLflow model: (its local directory, its python_function artifacts)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    from tvau.model.trained import TrainedModelError
    from tvau.registry.pyfunc import ARTIFACT_KEY

    if not (uri.startswith(("models:/", "runs:/"))):
        raise ValueError(f"{uri}: expected a models:/ or runs:/ URI")
    if not is_tracking_uri_set():  # nobody configured a store (API or MLFLOW_TRACKING_URI): ours
        use_store()
    if dst is not None:
        Path(dst).mkdir(parents=True, exist_ok=True)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=None if dst is None else str(dst)))
    except MlflowException as exc:
        raise ValueError(f"{uri}: cannot download the model ({exc.message})") from None
    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        raise TrainedModelError(f"{uri}: not an MLflow model (no MLmodel file)")
    spec = yaml.safe_load(mlmodel.read_text()) or {}
    arts = ((spec.get("flavors") or {}).get("python_function") or {}).get("artifacts") or {}
    if not arts.get(ARTIFACT_KEY):
        raise TrainedModelError(f"{uri}: not a tvau model (no '{ARTIFACT_KEY}' artifact)")
    return local, arts


def logged_model_dir(uri: str, dst: str | Path | None = None) -> Path:
    """The trained-model directory of `uri` exactly as it was logged: the bytes its registered
    digest was taken of (download_model may point its model.json at a bundled backbone)."""
    from tvau.registry.pyfunc import ARTIFACT_KEY

    local, arts = _artifacts(uri, dst)
    return local / arts[ARTIFACT_KEY]["path"]


def download_model(uri: str, dst: str | Path | None = None) -> Path:
    """Download the model at `uri` (e.g. models:/tvau@champion, models:/tvau/3, runs:/<id>/model)
    and return its trained-model directory, ready to load. `dst`: where to download (default: a new
    temp dir)."""
    from tvau.model.trained import read_card
    from tvau.registry.pyfunc import ARTIFACT_KEY, BACKBONE_KEY, with_bundled_backbone

    local, arts = _artifacts(uri, dst)
    path = local / arts[ARTIFACT_KEY]["path"]
    meta = read_card(path)  # fails clearly if the download is incomplete
    if BACKBONE_KEY in arts:  # the backbone travelled with the model: point model.json at it
        return with_bundled_backbone(path, local / arts[BACKBONE_KEY]["path"], meta)
    return path
