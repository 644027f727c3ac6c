"""`tvau lineage MODEL_URI [--json]`: from a registered model back to the footage it was trained on.

    model version --(MLflow)--> run --> git commit, params, metrics
                                    --> datasets (MLflow inputs; digest = the DVC hash in dvc.lock)
                                    --> footage files (DVC's manifest of the source dataset) with sha256

The run's own copy of dvc.lock (artifact dvc/dvc.lock) says which stages are sources (no DVC-tracked
dependency): their outputs are the raw footage. Each footage file is read from the DVC cache by its
md5 (so the answer describes exactly the bytes trained on, whatever the workspace holds now) and
hashed with sha256.

Entry point: `lineage(uri)`; it dispatches on the URI's scheme (`SCHEMES`), so other kinds of
artifact (e.g. a nightly scoring manifest on S3) can be traced by adding a resolver there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

FOOTAGE_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


class LineageError(ValueError):
    """The URI cannot be traced; the message says where the chain breaks."""


def _model_version(uri: str):
    """models:/NAME@ALIAS, models:/NAME/VERSION -> ModelVersion."""
    from mlflow.exceptions import MlflowException

    from tvau.registry.tracking import client

    body = uri.removeprefix("models:/")
    c = client()
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            return c.get_model_version_by_alias(name, alias)
        name, _, version = body.partition("/")
        if not version:
            raise LineageError(f"{uri}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
        return c.get_model_version(name, version)
    except MlflowException as exc:
        raise LineageError(f"{uri}: not in the registry ({exc.message})") from None


def _source_stages(lock: dict) -> set[str]:
    """Stages none of whose dependencies is another stage's output: the raw data's entry points."""
    stages = lock.get("stages") or {}
    outs = {o["path"].rstrip("/") for s in stages.values() for o in s.get("outs") or []}
    src = set()
    for name, body in stages.items():
        deps = {d["path"].rstrip("/") for d in body.get("deps") or []}
        if not any(d == o or d.startswith(o + "/") for d in deps for o in outs):
            src.add(name)
    return src


def _footage(root: Path, path: str, digest: str) -> list[dict[str, Any]]:
    """Footage files of the DVC output `path` with hash `digest`, read from the DVC cache."""
    from dvc.repo import Repo

    from tvau.storage import sha256_file

    with Repo(str(root)) as repo:
        to_path = repo.cache.local.oid_to_path
        if digest.endswith(".dir"):  # a directory: DVC's manifest lists each file's md5
            manifest = Path(to_path(digest))
            if not manifest.is_file():
                raise LineageError(f"{path}: the DVC cache under {root} has no manifest {digest} (run `dvc pull`)")
            paths = [(f"{path}/{f['relpath']}", to_path(f["md5"])) for f in json.loads(manifest.read_text())
                     if Path(f["relpath"]).suffix.lower() in FOOTAGE_SUFFIXES]
        else:
            paths = [(path, to_path(digest))]
    out = []
    for rel, cached in paths:
        if not Path(cached).is_file():
            raise LineageError(f"{rel}: not in the DVC cache under {root} (run `dvc pull`)")
        out.append({"path": rel, "sha256": sha256_file(cached)})
    return sorted(out, key=lambda f: f["path"])


def model_lineage(uri: str, root: str | Path = ".") -> dict[str, Any]:
    """The lineage of a registered model (models:/NAME@ALIAS or models:/NAME/VERSION)."""
    from mlflow.exceptions import MlflowException

    from tvau.registry.tracking import GIT_COMMIT_TAG, client

    root = Path(root).resolve()
    mv = _model_version(uri)
    if not mv.run_id:
        raise LineageError(f"{uri}: version {mv.version} has no run (registered by hand?)")
    c = client()
    run = c.get_run(mv.run_id)
    datasets = []
    for di in run.inputs.dataset_inputs if run.inputs else []:
        tags = {t.key: t.value for t in di.tags}
        datasets.append({"path": di.dataset.name, "digest": di.dataset.digest,
                         "stage": tags.get("tvau.dvc_stage", tags.get("mlflow.data.context")),
                         "source": json.loads(di.dataset.source).get("uri") if di.dataset.source else None})
    datasets.sort(key=lambda d: d["path"])
    try:
        lock_file = Path(c.download_artifacts(run.info.run_id, "dvc/dvc.lock"))
        lock = yaml.safe_load(lock_file.read_text()) or {}
    except (MlflowException, OSError):
        raise LineageError(f"{uri}: run {run.info.run_id} has no dvc/dvc.lock artifact") from None
    sources = _source_stages(lock)
    footage = []
    for d in datasets:
        if d["stage"] in sources:
            footage += _footage(root, d["path"], d["digest"])
    return {
        "model": mv.name, "version": str(mv.version), "aliases": sorted(mv.aliases or []), "uri": uri,
        "run_id": run.info.run_id, "git_commit": run.data.tags.get(GIT_COMMIT_TAG),
        "params": dict(sorted(run.data.params.items())), "metrics": dict(sorted(run.data.metrics.items())),
        "datasets": datasets, "footage": footage,
    }


# URI scheme -> resolver. Scoring (S) adds "s3://" for a nightly scoring manifest.
SCHEMES: dict[str, Callable[[str, Path], dict[str, Any]]] = {"models:/": model_lineage}


def lineage(uri: str, root: str | Path = ".") -> dict[str, Any]:
    for prefix, resolver in SCHEMES.items():
        if uri.startswith(prefix):
            return resolver(uri, Path(root))
    raise LineageError(f"{uri}: cannot trace this kind of URI (known: {', '.join(SCHEMES)})")


def format_text(info: dict[str, Any]) -> str:
    lines = [f"model     {info['model']} version {info['version']} ({', '.join(info['aliases']) or 'no alias'})",
             f"run       {info['run_id']}", f"commit    {info['git_commit']}", "datasets (DVC hash):"]
    lines += [f"  {d['digest']}  {d['path']}  [{d['stage']}]" for d in info["datasets"]]
    lines.append(f"footage ({len(info['footage'])} files, sha256):")
    lines += [f"  {f['sha256']}  {f['path']}" for f in info["footage"]]
    return "\n".join(lines)
