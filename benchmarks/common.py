"""The row every benchmark returns, and the table printer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    benchmark: str  # what was measured, e.g. "synth 60 videos @256"
    value: float  # the measurement
    unit: str  # "s", "ms", "MB", "videos/s", ...
    target: str = ""  # the target, e.g. "< 60 s", or "" when there is none
    ok: bool | None = None  # whether the target is met; None when there is no target
    note: str = ""  # how it was run (cores, sizes)
