"""Registration, aliases and promotion history of the registered model (default name `tvau`).

- A candidate is always registered (so a failing one can be inspected), tagged `gates=passed|failed`
  and `gate_failed.<gate>=<detail>` for each failed gate, and its validation metrics as `metric.<m>`.
- Registration is idempotent: the version carries its candidate identity (tag `tvau.candidate_key`,
  tvau.registry.pipeline.candidate_identity: adapters, data, code and evaluation digests); a later
  run with the same identity and the same verdict reuses that version instead of adding one.
- A passing candidate gets alias `challenger`. A failing one gets no alias and `promote` refuses it.
- `promote` moves `champion`. Aliases keep no history, so each move is also written down twice:
  tags on the promoted version (`promoted_at/by/reason`, `replaced_version`), and one registered-model
  tag per event, `champion_history.<seq>` = JSON {seq, action, version, previous, who, when, why}:
  the ordered history that `tvau registry list` shows and `rollback` reads.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import dataclass
from typing import Any

from tvau.registry.gates import GateReport

CHAMPION, CHALLENGER = "champion", "challenger"
KEY_TAG = "tvau.candidate_key"
IDENTITY_TAGS = ("adapters", "data", "code", "evaluation")  # tvau.<part>_digest tags beside the key
HISTORY_PREFIX = "champion_history."


class RegistryError(ValueError):
    """A registry operation that cannot be done (unknown version, failed gates, no history...)."""


def _client():
    from tvau.registry.tracking import client

    return client()


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return os.environ.get("TVAU_USER") or getpass.getuser()
    except OSError:
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def find_candidate(name: str, identity: dict[str, str] | None, passed: bool):
    """The newest version of `name` registered with this candidate identity and the same gate verdict,
    or None. (The verdict can differ for the same candidate only through the champion comparison;
    a changed verdict is a new version, so every version's verdict stays what it was.)"""
    from mlflow.exceptions import MlflowException

    if not identity:
        return None
    c = _client()
    try:
        found = c.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    verdict = "passed" if passed else "failed"
    same = [mv for mv in found if mv.tags.get(KEY_TAG) == identity["key"] and mv.tags.get("gates") == verdict]
    if not same:
        return None
    return c.get_model_version(name, max(same, key=lambda mv: int(mv.version)).version)


def register_candidate(model_uri: str, report: GateReport, metrics: dict[str, float | None], name: str = "tvau",
                       pipeline_run: str | None = None, identity: dict[str, str] | None = None):
    """Register `model_uri` as a new version of `name` with its gate verdict (and its candidate
    identity, for find_candidate); alias `challenger` only if every gate passed. Returns the ModelVersion."""
    import mlflow

    tags = {"gates": "passed" if report.passed else "failed"}
    if identity:
        tags[KEY_TAG] = identity["key"]
        tags |= {f"tvau.{k}_digest": identity[k] for k in IDENTITY_TAGS if k in identity}
    for g in report.failed:
        tags[f"gate_failed.{g.name}"] = g.detail[:4900]
    for k, v in metrics.items():
        if v is not None:
            tags[f"metric.{k}"] = f"{float(v):.6f}"
    if pipeline_run:
        tags["pipeline_run"] = pipeline_run
    mv = mlflow.register_model(model_uri, name, tags=tags)
    c = _client()
    if report.passed:
        c.set_registered_model_alias(name, CHALLENGER, mv.version)
    return c.get_model_version(name, mv.version)


def version_by_alias(name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def champion_metrics(name: str = "tvau") -> dict[str, float] | None:
    """The current champion's registered validation metrics, or None when there is no champion."""
    mv = version_by_alias(name, CHAMPION)
    if mv is None:
        return None
    return {k.removeprefix("metric."): float(v) for k, v in mv.tags.items() if k.startswith("metric.")}


def history(name: str = "tvau") -> list[dict[str, Any]]:
    """Champion moves, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        rm = _client().get_registered_model(name)
    except MlflowException:
        return []
    events = [json.loads(v) for k, v in rm.tags.items() if k.startswith(HISTORY_PREFIX)]
    return sorted(events, key=lambda e: e["seq"])


def _version(name: str, version: str | int):
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"model {name!r} has no version {version}") from None


def promote(name: str, version: str | int, who: str | None = None, why: str = "", action: str = "promote"
            ) -> dict[str, Any]:
    """Move `champion` to `version` (which must have passed its gates) and record the move."""
    c = _client()
    mv = _version(name, version)
    if mv.tags.get("gates") != "passed":
        failed = sorted(k.removeprefix("gate_failed.") for k in mv.tags if k.startswith("gate_failed."))
        raise RegistryError(f"model {name!r} version {mv.version} did not pass its gates "
                            f"({', '.join(failed) or 'no gate verdict recorded'}): it cannot be champion")
    current = version_by_alias(name, CHAMPION)
    previous = str(current.version) if current is not None else None
    if previous == str(mv.version):
        raise RegistryError(f"model {name!r} version {mv.version} is already the champion")
    event = {"seq": len(history(name)) + 1, "action": action, "version": str(mv.version), "previous": previous,
             "who": _who(who), "when": _now(), "why": why}
    c.set_registered_model_alias(name, CHAMPION, mv.version)
    c.set_registered_model_tag(name, f"{HISTORY_PREFIX}{event['seq']:05d}", json.dumps(event))
    for key, value in (("promoted_at", event["when"]), ("promoted_by", event["who"]),
                       ("promoted_reason", why), ("replaced_version", previous or "none")):
        c.set_model_version_tag(name, mv.version, key, value)
    if previous is not None:
        c.set_model_version_tag(name, previous, "replaced_by", mv.version)
        c.set_model_version_tag(name, previous, "replaced_at", event["when"])
    challenger = version_by_alias(name, CHALLENGER)
    if challenger is not None and challenger.version == mv.version:
        c.delete_registered_model_alias(name, CHALLENGER)
    return event


def rollback(name: str = "tvau", who: str | None = None, why: str = "", to: str | int | None = None
             ) -> dict[str, Any]:
    """Make the champion before the current one champion again (or version `to`)."""
    current = version_by_alias(name, CHAMPION)
    if current is None:
        raise RegistryError(f"model {name!r} has no champion to roll back")
    if to is None:
        moves = [e for e in history(name) if e["version"] == str(current.version)]
        if not moves or moves[-1]["previous"] is None:
            raise RegistryError(f"model {name!r}: version {current.version} replaced no earlier champion; "
                                "name the version to roll back to")
        to = moves[-1]["previous"]
    return promote(name, to, who=who, why=why or f"rollback from version {current.version}", action="rollback")


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: list[str]
    gates: str
    failed_gates: list[str]
    created: str
    run_id: str
    metrics: dict[str, float]


def list_versions(name: str = "tvau") -> list[VersionRow]:
    c = _client()
    rows = []
    for mv in c.search_model_versions(f"name='{name}'"):
        mv = c.get_model_version(name, mv.version)  # search results may omit aliases
        rows.append(VersionRow(
            version=str(mv.version), aliases=sorted(mv.aliases or []), gates=mv.tags.get("gates", "unknown"),
            failed_gates=sorted(k.removeprefix("gate_failed.") for k in mv.tags if k.startswith("gate_failed.")),
            created=dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(timespec="seconds"),
            run_id=mv.run_id or "",
            metrics={k.removeprefix("metric."): float(v) for k, v in mv.tags.items() if k.startswith("metric.")},
        ))
    return sorted(rows, key=lambda r: int(r.version))
