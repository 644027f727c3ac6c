"""The `registry:` section of params.yaml: where MLflow keeps runs and models, and the gate policy."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tvau.configbase import Section


class RegistryConfig(Section):
    # MLflow tracking URI. Empty = SQLite in the project's working area (.tvau/, gitignored); the
    # MLFLOW_TRACKING_URI environment variable overrides both (e.g. http://mlflow.internal:5000).
    tracking_uri: str = ""
    store_dir: str = ".tvau/mlflow"  # mlflow.db and artifacts/ when tracking_uri is empty
    experiment: str = "tvau-retrain"  # one MLflow experiment for every pipeline run
    model_name: str = "tvau"  # the registered model (aliases `challenger` and `champion`)
    policy: str = "registry/policy.yaml"  # the gates a candidate must pass (tvau/registry/policy.py)
    # Promote a candidate that passes every gate to `champion` at the end of the retrain flow. Off =
    # it stays `challenger` until someone runs `tvau registry promote`.
    auto_promote: bool = True
    eval_json: str = "data/metrics/evaluate.json"  # the evaluate stage's metrics file (the gates' input)
    model_dir: str = "data/models/tvau"  # the train_rae stage's trained-model directory
    # A local backbone directory up to this size (MB) is bundled into the registered model, so the
    # model serves anywhere (e.g. the pretrained tiny data/backbone); larger ones are referenced.
    bundle_backbone_mb: float = Field(2048.0, ge=0.0)
    # Per-stage timeout of the retrain flow's subprocesses (seconds): a hung stage fails the run.
    stage_timeout_s: int = Field(4 * 3600, ge=1)

    def resolved_tracking_uri(self, root: str | Path = ".") -> str:
        """MLFLOW_TRACKING_URI, else tracking_uri, else sqlite:///<root>/<store_dir>/mlflow.db."""
        import os

        env = os.environ.get("MLFLOW_TRACKING_URI", "")
        if env:
            return env
        if self.tracking_uri:
            return self.tracking_uri
        db = (Path(root) / self.store_dir / "mlflow.db").resolve()
        return f"sqlite:///{db}"

    def artifact_root(self, root: str | Path = ".") -> Path | None:
        """Local artifact directory for the default SQLite store; None when a server decides."""
        import os

        if os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri:
            return None
        return (Path(root) / self.store_dir / "artifacts").resolve()
