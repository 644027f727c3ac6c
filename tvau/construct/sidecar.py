"""The synthetic generator's attribute sidecar: what each object is, wears and does.

Files at the dataset root (the generator's fixed contract):
  attributes.jsonl   one JSON object per (video, object_id): category, colors {part: colour},
                     clothing, anomalous, anomaly_kind (vocab.ANOMALY_KINDS key or null),
                     actions [[start, end, action], ...] (inclusive frame spans)
  object_names.csv   video,object_id,name (UBnormal's table of non-person objects)
Real UBnormal has only the names table; ShanghaiTech has neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tvau import vocab


@dataclass(frozen=True)
class ObjectAttributes:
    category: str
    colors: dict[str, str] = field(default_factory=dict)
    clothing: str = ""
    anomalous: bool = False
    anomaly_kind: str = ""  # "" when normal
    actions: tuple[tuple[int, int, str], ...] = ()  # inclusive spans

    def action_at(self, frame: int) -> str:
        """The action at `frame`, "" outside every span."""
        for start, end, action in self.actions:
            if start <= frame <= end:
                return action
        return ""


def _clothing_text(value) -> str:
    # The generator's clothing may be a word, a list of words or {item: colour}; keep it as words.
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " and ".join(f"{c} {item}" if c else str(item) for item, c in value.items())
    if isinstance(value, (list, tuple)):
        return " and ".join(str(v) for v in value)
    return str(value)


def load_attributes(root: str | Path) -> dict[tuple[str, int], ObjectAttributes]:
    """{(video, object_id): attributes}; empty when the dataset has no sidecar. A malformed line
    or an out-of-vocabulary word is an error naming the file and the line."""
    path = Path(root) / "attributes.jsonl"
    out: dict[tuple[str, int], ObjectAttributes] = {}
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
                key = (str(row["video"]), int(row["object_id"]))
                category = str(row["category"])
                colors = {str(k): str(v) for k, v in (row.get("colors") or {}).items()}
                actions = tuple((int(s), int(e), str(a)) for s, e, a in row.get("actions") or [])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{where}: malformed attribute record: {exc}") from None
            if category not in vocab.CATEGORIES:
                raise ValueError(f"{where}: category {category!r} not in vocab.CATEGORIES")
            bad = [c for c in colors.values() if c not in vocab.COLORS]
            if bad:
                raise ValueError(f"{where}: colours {bad} not in vocab.COLORS")
            bad = [a for _, _, a in actions if a not in vocab.ACTIONS]
            if bad:
                raise ValueError(f"{where}: actions {bad} not in vocab.ACTIONS")
            kind = row.get("anomaly_kind") or ""
            if kind and kind not in vocab.ANOMALY_KINDS:
                raise ValueError(f"{where}: anomaly_kind {kind!r} not in vocab.ANOMALY_KINDS")
            out[key] = ObjectAttributes(
                category=category,
                colors=colors,
                clothing=_clothing_text(row.get("clothing")),
                anomalous=bool(row.get("anomalous", False)),
                anomaly_kind=kind,
                actions=actions,
            )
    return out


def load_object_names(root: str | Path) -> dict[tuple[str, int], str]:
    """{(video, object_id): name} from object_names.csv (parsed by the UBnormal reader); empty when absent."""
    from tvau.data.ubnormal import read_object_names

    return {(video, oid): name.strip() for video, names in read_object_names(Path(root) / "object_names.csv").items()
            for oid, name in names.items()}
