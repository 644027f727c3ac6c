"""`tvau lineage MODEL_URI [--json]`: from a registered model back to the footage it was trained on.

    model version --(MLflow)--> run --> git commit, params, metrics
                                    --> datasets (MLflow inputs; digest = the DVC hash in dvc.lock)
                                    --> footage files (DVC's manifest of the source dataset) with sha256

The run's own copy of dvc.lock (artifact dvc/dvc.lock) says which stages are sources (no DVC-tracked
dependency): their outputs are the raw footage. Each footage file is read from the DVC cache by its
md5 (so the answer describes exactly the bytes trained on, whatever the workspace holds now) and
hashed with sha256. A dataset whose bytes are not in the cache (an output committed to git with
`cache: false`, such as the pretrained backbone) is found in the working tree when DVC's own hash of
it equals the recorded one; each dataset says where its bytes were found. `verify=True` recomputes
every digest it reaches: each file's md5 against DVC's record, and the model version's artifacts
against the digest registered with it.

A nightly scoring manifest on S3 (`s3://bucket/prefix/<video key>/manifest.json`, written by
tvau.score.core) is traced one step further back from its outputs:

    outputs (sha256 each) --> model version (name, version, digest) --> run --> datasets --> footage
                          --> the scored input (key, size, ETag, sha256)

The S3 endpoint and credentials come from the standard AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY variables. A manifest scored with a plain model directory (no registry
version) stops at the model digest: its `training` is null.

Entry point: `lineage(uri)`; it dispatches on the URI's scheme (`SCHEMES`).
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
    """models:/NAME@ALIAS, models:/NAME/VERSION -> ModelVersion (tvau.registry.resolve)."""
    from tvau.registry.resolve import model_version

    try:
        return model_version(uri)
    except ValueError as exc:
        raise LineageError(str(exc)) from None


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


def _from_cache(repo, path: str, digest: str) -> list[tuple[str, Path, str]] | None:
    """[(relpath, file, md5)] of DVC output `path` with hash `digest` in the DVC cache, or None when
    the cache lacks its manifest or a file (a fresh clone before `dvc pull`, or `cache: false`)."""
    to_path = repo.cache.local.oid_to_path
    if digest.endswith(".dir"):  # a directory: DVC's manifest lists each file's md5
        manifest = Path(to_path(digest))
        if not manifest.is_file():
            return None
        files = [(f"{path}/{f['relpath']}", Path(to_path(f["md5"])), f["md5"]) for f in json.loads(manifest.read_text())]
    else:
        files = [(path, Path(to_path(digest)), digest)]
    return files if all(f.is_file() for _, f, _ in files) else None


def _from_workspace(repo, root: Path, path: str, digest: str) -> tuple[list[tuple[str, Path, str]] | None, str | None]:
    """([(relpath, file, md5)] or None, the working tree's DVC hash): the files of `path` in the working
    tree when DVC's own hash of them equals `digest` (an output committed to git, `cache: false`)."""
    from dvc_data.hashfile.build import build

    target = root / path
    if not target.exists():
        return None, None
    _, _, obj = build(repo.cache.local, str(target), repo.fs, "md5", dry_run=True, ignore=repo.dvcignore)
    got = obj.hash_info.value
    if got != digest:
        return None, got
    if not target.is_dir():
        return [(path, target, got)], got
    return [(f"{path}/{'/'.join(key)}", target.joinpath(*key), hi.value) for key, _, hi in obj], got


def _dataset_files(repo, root: Path, path: str, digest: str, commit: str | None) -> tuple[str, list[tuple[str, Path, str]]]:
    """(where the bytes are: "dvc cache" | "working tree", [(relpath, file, md5)]) of one dataset."""
    files = _from_cache(repo, path, digest)
    if files is not None:
        return "dvc cache", files
    files, got = _from_workspace(repo, root, path, digest)
    if files is not None:
        return "working tree", files
    now = f"the working tree holds {got}" if got else "the working tree has no such path"
    raise LineageError(f"{path}: neither the DVC cache under {root} nor the working tree holds {digest} ({now}); "
                       f"run `dvc pull`, or check out commit {commit or '(unknown)'}")


def _resolve_datasets(root: Path, datasets: list[dict], sources: set[str], commit: str | None,
                      verify: bool) -> tuple[list[dict], list[dict]]:
    """Find every dataset's bytes (recording where) and list the footage of the source datasets with
    sha256. `verify`: recompute each file's md5 against the hash DVC recorded for it."""
    from dvc.repo import Repo
    from dvc_data.hashfile.hash import file_md5  # DVC's own content hash, the one dvc.lock records

    from tvau.storage import sha256_file

    footage, differ = [], []
    with Repo(str(root)) as repo:
        for d in datasets:
            d["found"], files = _dataset_files(repo, root, d["path"], d["digest"], commit)
            d["files"] = len(files)
            if verify:
                differ += [{"path": rel, "expected_md5": md5, "md5": got} for rel, f, md5 in files
                           if (got := file_md5(str(f))) != md5]
            if d["stage"] in sources:
                footage += [{"path": rel, "sha256": sha256_file(f)} for rel, f, _ in files
                            if Path(rel).suffix.lower() in FOOTAGE_SUFFIXES]
    return sorted(footage, key=lambda f: f["path"]), differ


def _verify_model(uri: str, version) -> list[dict]:
    """Download the version's artifacts and recompute their digest against the one registered with it
    (tag tvau.adapters_digest; a version registered without one differs from nothing, and says so)."""
    import tempfile

    from mlflow.exceptions import MlflowException

    from tvau.model.trained import model_digest
    from tvau.registry.resolve import logged_model_dir

    want = (version.tags or {}).get("tvau.adapters_digest")
    what = f"{uri} (adapters and model.json as logged)"
    with tempfile.TemporaryDirectory(prefix="tvau-verify-") as tmp:
        try:
            got = model_digest(logged_model_dir(uri, tmp))
        except (ValueError, OSError, MlflowException) as exc:
            return [{"path": what, "expected": want, "got": f"cannot read the artifacts: {exc}"}]
    if want is None:
        return [{"path": what, "expected": "no digest registered", "got": got}]
    return [] if got == want else [{"path": what, "expected": want, "got": got}]


def model_lineage(uri: str, root: str | Path = ".", connect: Callable[[], Any] | None = None,
                  verify: bool = False) -> dict[str, Any]:
    """The lineage of a registered model (models:/NAME@ALIAS or models:/NAME/VERSION). `connect`
    points MLflow at the store first (None: the caller already did). `verify` recomputes every digest
    it can reach (dataset files, footage, the model's artifacts) and lists those that differ."""
    from mlflow.exceptions import MlflowException

    from tvau.registry.tracking import GIT_COMMIT_TAG, client

    if connect is not None:
        connect()
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
    commit = run.data.tags.get(GIT_COMMIT_TAG)
    footage, differ = _resolve_datasets(root, datasets, _source_stages(lock), commit, verify)
    info = {
        "model": mv.name, "version": str(mv.version), "aliases": sorted(mv.aliases or []), "uri": uri,
        "run_id": run.info.run_id, "git_commit": commit,
        "params": dict(sorted(run.data.params.items())), "metrics": dict(sorted(run.data.metrics.items())),
        "datasets": datasets, "footage": footage,
    }
    if verify:
        info["verify"] = {"differ": differ + _verify_model(uri, mv),
                          "checked": sum(d["files"] for d in datasets) + 1}
    return info


def manifest_lineage(uri: str, root: str | Path = ".", connect: Callable[[], Any] | None = None,
                     verify: bool = False) -> dict[str, Any]:
    """The lineage of a scored video: its manifest's outputs and input, and the model version's
    training lineage (model_lineage) when it was scored with a registered version. The registry is
    only reached (`connect`) once the manifest has been read."""
    from tvau.score.config import ScoreConfig
    from tvau.score.core import read_manifest
    from tvau.score.s3io import S3Error, make_client
    from tvau.storage import split_s3

    try:
        _, key = split_s3(uri)
    except ValueError:
        key = ""
    if key.rsplit("/", 1)[-1] != "manifest.json":
        raise LineageError(f"{uri}: expected s3://bucket/prefix/<video key>/manifest.json")
    # Few attempts: a lineage query is interactive, a dead endpoint should answer in seconds.
    cfg = ScoreConfig(max_attempts=2, backoff_s=0.1, read_timeout_s=10)
    try:
        m = read_manifest(uri, make_client(cfg), cfg)
    except ValueError as exc:  # missing, unreadable or not a manifest
        raise LineageError(str(exc)) from None
    except S3Error as exc:
        raise LineageError(f"{uri}: cannot read the manifest ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - botocore's configuration errors (no credentials, bad endpoint)
        raise LineageError(f"{uri}: cannot read the manifest ({type(exc).__name__}: {exc})") from None
    model = m.get("model") or {}
    training = None
    if model.get("name") and model.get("version"):
        version_uri = f"models:/{model['name']}/{model['version']}"
        try:
            training = model_lineage(version_uri, root, connect, verify)
        except LineageError as exc:
            raise LineageError(f"{uri}: {exc}") from None
        if model.get("run_id") and training["run_id"] != model["run_id"]:
            raise LineageError(f"{uri}: scored by run {model['run_id']} but {version_uri} is now run "
                               f"{training['run_id']} (the registry was rebuilt?)")
    return {
        "manifest": uri,
        "format": m.get("format"),
        "scored_at": m.get("scored_at"),
        "params_hash": m.get("params_hash"),
        "code_version": m.get("code_version"),
        "outputs": m.get("outputs") or {},
        "model": {k: model.get(k) for k in ("uri", "name", "version", "run_id", "digest")},
        "input": {k: (m.get("input") or {}).get(k) for k in ("uri", "bucket", "key", "size", "etag", "sha256")},
        "training": training,
    }


# URI scheme -> resolver.
SCHEMES: dict[str, Callable[..., dict[str, Any]]] = {"models:/": model_lineage, "s3://": manifest_lineage}


def lineage(uri: str, root: str | Path = ".", connect: Callable[[], Any] | None = None,
            verify: bool = False) -> dict[str, Any]:
    """Trace `uri`; `connect()` points MLflow at the store when the chain reaches the registry;
    `verify` recomputes the digests it reaches (info["verify"]["differ"] lists those that differ)."""
    for prefix, resolver in SCHEMES.items():
        if uri.startswith(prefix):
            return resolver(uri, Path(root), connect, verify)
    raise LineageError(f"{uri}: cannot trace this kind of URI (known: {', '.join(SCHEMES)})")


def _format_model(info: dict[str, Any]) -> list[str]:
    lines = [f"model     {info['model']} version {info['version']} ({', '.join(info['aliases']) or 'no alias'})",
             f"run       {info['run_id']}", f"commit    {info['git_commit']}", "datasets (DVC hash):"]
    lines += [f"  {d['digest']}  {d['path']}  [{d['stage']}; {d['files']} files in the {d['found']}]"
              for d in info["datasets"]]
    lines.append(f"footage ({len(info['footage'])} files, sha256):")
    lines += [f"  {f['sha256']}  {f['path']}" for f in info["footage"]]
    if "verify" in info:
        v = info["verify"]
        lines.append(f"verify    {v['checked']} digests recomputed, {len(v['differ'])} differ")
        lines += [f"  DIFFERS {d['path']}: recorded {d.get('expected_md5', d.get('expected'))}, "
                  f"now {d.get('md5', d.get('got'))}" for d in v["differ"]]
    return lines


def format_text(info: dict[str, Any]) -> str:
    if "manifest" not in info:
        return "\n".join(_format_model(info))
    inp, mdl = info["input"], info["model"]
    lines = [f"manifest  {info['manifest']}", f"scored    {info['scored_at']}  params {info['params_hash']}",
             "outputs (sha256):"]
    lines += [f"  {o.get('sha256')}  {o.get('uri')}" for _, o in sorted(info["outputs"].items())]
    lines += [f"input     {inp['uri']}", f"          {inp['size']} bytes  ETag {inp['etag']}  sha256 {inp['sha256']}",
              f"scored by {mdl['uri']} (digest {mdl['digest']})"]
    if info["training"] is None:
        lines.append("training  unknown: scored with a model directory, not a registered version")
    else:
        lines += _format_model(info["training"])
    return "\n".join(lines)
