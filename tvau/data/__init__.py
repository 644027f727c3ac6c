"""Dataset readers: every format yields tvau.data.record.VideoRecord objects.

    records = open_dataset("data/synth", "ubnormal")      # also reads our synthetic footage
    records = open_dataset("/data/shanghaitech", "shanghaitech")
"""

from __future__ import annotations

from pathlib import Path

from tvau.data.errors import DatasetError
from tvau.data.record import Track, VideoRecord

FORMATS = ("ubnormal", "shanghaitech")


def open_dataset(root: str | Path, format: str = "ubnormal", load_tracks: bool = True,
                 **options) -> list[VideoRecord]:
    """Read a dataset tree. format: "ubnormal" (options: splits_dir, progress) or "shanghaitech"
    (options: tracks_dir). load_tracks=False skips building the RBDC/TBDC boxes."""
    if format == "ubnormal":
        from tvau.data.ubnormal import read_ubnormal
        return read_ubnormal(root, load_tracks=load_tracks, **options)
    if format == "shanghaitech":
        from tvau.data.shanghaitech import read_shanghaitech
        return read_shanghaitech(root, load_tracks=load_tracks, **options)
    raise DatasetError(f"unknown dataset format {format!r}; expected one of {FORMATS}")


__all__ = ["FORMATS", "DatasetError", "Track", "VideoRecord", "open_dataset"]
