"""pandera models of every table the construction stages write and read.

Tables (all Parquet, a few large files; columns documented on the models):
  videos       one row per video: split, size, frame rate, anomaly label
  frames       one row per frame of every video: frame label, object count
  detections   one row per (video, frame, object): stage 1's structured annotation
  track_points one row per (video, track, frame): stage 2's linked boxes
  timelines    one row per (video, track): stage 2's summary and trajectory sentence
  targets      one row per anomalous target: stage 3's re-description and consistency verdict
  clips        one row per AHD training clip (build stage)
  sft          one row per SFT dialogue record (build stage)

Boxes are inclusive pixels (x2 is the last column inside). A check that relates several columns
is a dataframe check; CHECK_COLUMNS names the columns it concerns so that failure reports can
name them (pandera reports dataframe checks without a column).
"""

from __future__ import annotations

import json

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tvau import vocab

# Check name -> the columns it concerns, for the failure report.
CHECK_COLUMNS: dict[str, tuple[str, ...]] = {
    "box_ordered": ("x1", "x2", "y1", "y2"),
    "box_inside_frame": ("x1", "y1", "x2", "y2", "width", "height"),
    "centroid_inside_box": ("cx", "cy"),
    "frames_contiguous": ("video", "frame"),
    "track_frames_increasing": ("video", "track_id", "frame"),
    "span_ordered": ("start", "end"),
    "points_fit_span": ("num_points", "start", "end"),
    "path_at_least_displacement": ("path_length", "displacement"),
    "anomaly_span_inside_track": ("anomaly_start", "anomaly_end", "start", "end"),
    "clip_inside_video": ("start", "stop", "num_frames"),
    "region_matches_centroid": ("region", "cx", "cy", "width", "height"),
    "kept_iff_no_reason": ("kept", "drop_reason"),
}


def _colors_ok(value: str) -> bool:
    try:
        d = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return False
    return isinstance(d, dict) and all(v in vocab.COLORS for v in d.values())


def _regions_ok(value: str) -> bool:
    try:
        seq = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return False
    return isinstance(seq, list) and len(seq) > 0 and all(r in vocab.REGIONS_3X3 for r in seq)


class _Base(pa.DataFrameModel):
    class Config:
        strict = True  # an unexpected column is an error, not silently carried along
        coerce = True


class _Boxes(_Base):
    """Mixin: inclusive boxes inside a frame of width x height."""

    x1: Series[int] = pa.Field(ge=0)
    y1: Series[int] = pa.Field(ge=0)
    x2: Series[int] = pa.Field(ge=0)
    y2: Series[int] = pa.Field(ge=0)
    width: Series[int] = pa.Field(gt=0)
    height: Series[int] = pa.Field(gt=0)

    @pa.dataframe_check
    def box_ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["x1"] <= df["x2"]) & (df["y1"] <= df["y2"])

    @pa.dataframe_check
    def box_inside_frame(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["x2"] < df["width"]) & (df["y2"] < df["height"])


class Videos(_Base):
    video: Series[str] = pa.Field(unique=True)  # unique: no video in two splits
    dataset: Series[str] = pa.Field(isin=["ubnormal", "shanghaitech"])
    split: Series[str] = pa.Field(isin=list(vocab.SPLITS))
    source: Series[str]
    num_frames: Series[int] = pa.Field(gt=0)
    height: Series[int] = pa.Field(gt=0)
    width: Series[int] = pa.Field(gt=0)
    fps: Series[float] = pa.Field(gt=0)
    is_anomalous: Series[bool]
    anomalous_frames: Series[int] = pa.Field(ge=0)
    anomaly_kind: Series[str] = pa.Field(isin=[""] + list(vocab.ANOMALY_KINDS))


class Frames(_Base):
    video: Series[str]
    frame: Series[int] = pa.Field(ge=0)
    label: Series[int] = pa.Field(isin=[0, 1])
    num_objects: Series[int] = pa.Field(ge=0)

    @pa.dataframe_check
    def frames_contiguous(cls, df: pd.DataFrame) -> Series[bool]:
        """Per video, the frame column read in order is exactly 0, 1, ..., n-1."""
        expected = df.groupby("video", sort=False).cumcount()
        return df["frame"] == expected


class Detections(_Boxes):
    video: Series[str]
    frame: Series[int] = pa.Field(ge=0)
    object_id: Series[int] = pa.Field(ge=1)  # the annotator's id within the frame (GT id, component)
    category: Series[str] = pa.Field(isin=list(vocab.CATEGORIES))
    colors: Series[str]  # JSON {part: colour}, colours from vocab.COLORS
    clothing: Series[str]  # free words, "" when unknown
    action: Series[str] = pa.Field(isin=[""] + list(vocab.ACTIONS))  # "" when not described
    cx: Series[float]
    cy: Series[float]
    area: Series[int] = pa.Field(gt=0)
    region: Series[str] = pa.Field(isin=list(vocab.REGIONS_3X3))
    anomalous: Series[bool]  # the object overlaps the anomaly mask in this frame
    annotator: Series[str] = pa.Field(isin=["oracle", "masks", "lvlm"])

    @pa.check("colors", name="colors_in_vocabulary")
    def colors_in_vocabulary(cls, s: Series[str]) -> Series[bool]:
        return s.map(_colors_ok).astype(bool)

    @pa.dataframe_check
    def centroid_inside_box(cls, df: pd.DataFrame) -> Series[bool]:
        return df["cx"].between(df["x1"], df["x2"]) & df["cy"].between(df["y1"], df["y2"])


class TrackPoints(_Boxes):
    video: Series[str]
    track_id: Series[int] = pa.Field(ge=0)
    frame: Series[int] = pa.Field(ge=0)
    object_id: Series[int] = pa.Field(ge=1)
    cx: Series[float]
    cy: Series[float]
    region: Series[str] = pa.Field(isin=list(vocab.REGIONS_3X3))
    anomalous: Series[bool]

    @pa.dataframe_check
    def track_frames_increasing(cls, df: pd.DataFrame) -> Series[bool]:
        """Within a track, rows are in strictly increasing frame order (a monotonic timeline)."""
        prev = df.groupby(["video", "track_id"], sort=False)["frame"].shift(1)
        return prev.isna() | (df["frame"] > prev)

    @pa.dataframe_check
    def region_matches_centroid(cls, df: pd.DataFrame) -> Series[bool]:
        words = vocab.regions_of(df["cx"].to_numpy(), df["cy"].to_numpy(), df["width"].to_numpy(),
                                 df["height"].to_numpy())
        return pd.Series(words == df["region"].to_numpy(), index=df.index)


class Timelines(_Base):
    video: Series[str]
    split: Series[str] = pa.Field(isin=list(vocab.SPLITS))
    track_id: Series[int] = pa.Field(ge=0)
    start: Series[int] = pa.Field(ge=0)
    end: Series[int] = pa.Field(ge=0)
    num_points: Series[int] = pa.Field(ge=1)
    source_object_id: Series[int] = pa.Field(ge=1)  # the annotator id most often linked here
    category: Series[str] = pa.Field(isin=list(vocab.CATEGORIES))
    colors: Series[str]
    clothing: Series[str]
    regions: Series[str]  # JSON list of 3x3 words, in visiting order, repeats collapsed
    start_region: Series[str] = pa.Field(isin=list(vocab.REGIONS_3X3))
    end_region: Series[str] = pa.Field(isin=list(vocab.REGIONS_3X3))
    displacement: Series[float] = pa.Field(ge=0)  # pixels, first to last centroid
    path_length: Series[float] = pa.Field(ge=0)  # pixels, sum of steps
    speed: Series[float] = pa.Field(ge=0)  # frame sizes (max(H, W)) per second, path-based
    motion_state: Series[str] = pa.Field(isin=list(vocab.MOTION_STATES))
    anomalous: Series[bool]
    anomaly_kind: Series[str] = pa.Field(isin=[""] + list(vocab.ANOMALY_KINDS))
    anomaly_start: Series[int] = pa.Field(ge=-1)  # -1 when the track is never anomalous
    anomaly_end: Series[int] = pa.Field(ge=-1)
    action: Series[str] = pa.Field(isin=[""] + list(vocab.ACTIONS))  # most frequent described action
    sentence: Series[str] = pa.Field(str_length={"min_value": 1})

    @pa.check("regions", name="regions_in_vocabulary")
    def regions_in_vocabulary(cls, s: Series[str]) -> Series[bool]:
        return s.map(_regions_ok).astype(bool)

    @pa.check("colors", name="colors_in_vocabulary")
    def colors_in_vocabulary(cls, s: Series[str]) -> Series[bool]:
        return s.map(_colors_ok).astype(bool)

    @pa.dataframe_check
    def span_ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["start"] <= df["end"]

    @pa.dataframe_check
    def points_fit_span(cls, df: pd.DataFrame) -> Series[bool]:
        return df["num_points"] <= df["end"] - df["start"] + 1

    @pa.dataframe_check
    def path_at_least_displacement(cls, df: pd.DataFrame) -> Series[bool]:
        return df["path_length"] + 1e-6 >= df["displacement"]

    @pa.dataframe_check
    def anomaly_span_inside_track(cls, df: pd.DataFrame) -> Series[bool]:
        none = (df["anomaly_start"] == -1) & (df["anomaly_end"] == -1) & ~df["anomalous"]
        inside = (
            df["anomalous"]
            & (df["start"] <= df["anomaly_start"])
            & (df["anomaly_start"] <= df["anomaly_end"])
            & (df["anomaly_end"] <= df["end"])
        )
        return none | inside


class Targets(_Base):
    video: Series[str]
    split: Series[str] = pa.Field(isin=list(vocab.SPLITS))
    track_id: Series[int] = pa.Field(ge=0)
    anomaly_start: Series[int] = pa.Field(ge=0)
    anomaly_end: Series[int] = pa.Field(ge=0)
    category: Series[str] = pa.Field(isin=list(vocab.CATEGORIES))  # the object's (stage 1/2)
    measured_motion: Series[str] = pa.Field(isin=list(vocab.MOTION_STATES))  # over the span
    start_region: Series[str] = pa.Field(isin=list(vocab.REGIONS_3X3))
    end_region: Series[str] = pa.Field(isin=list(vocab.REGIONS_3X3))
    described_category: Series[str]  # what the describer said; may be out of vocabulary
    described_colors: Series[str]
    described_clothing: Series[str]
    described_action: Series[str]  # "" when the describer gave no motion
    description: Series[str]
    anomaly_kind: Series[str] = pa.Field(isin=[""] + list(vocab.ANOMALY_KINDS))
    mask_pixels: Series[int] = pa.Field(ge=0)  # anomaly pixels shown to the describer
    kept: Series[bool]
    drop_reason: Series[str]  # "" when kept

    @pa.dataframe_check
    def kept_iff_no_reason(cls, df: pd.DataFrame) -> Series[bool]:
        return df["kept"] == (df["drop_reason"] == "")


class Clips(_Base):
    clip_id: Series[int] = pa.Field(ge=0, unique=True)
    video: Series[str]
    split: Series[str] = pa.Field(isin=list(vocab.SPLITS))
    start: Series[int] = pa.Field(ge=0)
    stop: Series[int] = pa.Field(gt=0)  # exclusive
    num_frames: Series[int] = pa.Field(gt=0)  # of the video
    anomalous_frames: Series[int] = pa.Field(ge=0)
    shard: Series[str]
    row: Series[int] = pa.Field(ge=0)  # index inside the shard

    @pa.dataframe_check
    def clip_inside_video(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["start"] < df["stop"]) & (df["stop"] <= df["num_frames"])


class Sft(_Base):
    id: Series[str] = pa.Field(unique=True)
    phase: Series[str] = pa.Field(isin=["A", "B"])
    video: Series[str]
    split: Series[str] = pa.Field(isin=list(vocab.SPLITS))
    start: Series[int] = pa.Field(ge=0)
    stop: Series[int] = pa.Field(gt=0)
    anomalous: Series[bool]
    turns: Series[int] = pa.Field(ge=1)


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "videos": Videos,
    "frames": Frames,
    "detections": Detections,
    "track_points": TrackPoints,
    "timelines": Timelines,
    "targets": Targets,
    "clips": Clips,
    "sft": Sft,
}

# Columns that identify a row in a failure report, per table.
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "videos": ("video", "split"),
    "frames": ("video", "frame"),
    "detections": ("video", "frame", "object_id"),
    "track_points": ("video", "track_id", "frame"),
    "timelines": ("video", "track_id"),
    "targets": ("video", "track_id"),
    "clips": ("clip_id", "video"),
    "sft": ("id",),
}


def table_columns(name: str) -> list[str]:
    """The columns of table `name` in schema order (for building empty tables)."""
    return list(SCHEMAS[name].to_schema().columns)
