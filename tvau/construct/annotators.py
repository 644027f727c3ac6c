"""Pluggable annotators for stage 1 (per frame, per object) and stage 3 (re-describe a target).

Three kinds, chosen by params `construct.annotator` (tvau/construct/choose.py makes the one named):
  oracle  ground truth: object-id maps give boxes, the generator's sidecar gives category,
          colours, clothing and the action at each frame. The reference for synthetic data.
  masks   masks alone (ShanghaiTech): connected components of the mask give boxes, the mean
          pixel colour gives a colour, the category is a configured default, actions are unknown.
  lvlm    the backbone prompted for JSON (tvau/construct/lvlm.py), for users with a real LVLM.

Every annotator counts what it could not do (unknown categories, retries, fallbacks) in `stats`,
which the stage writes to its metrics file: nothing is skipped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tvau import vocab
from tvau.construct.config import ConstructConfig
from tvau.construct.pixels import components, mean_color, objects_in_id_map
from tvau.construct.sidecar import ObjectAttributes


@dataclass
class Description:
    """What a describer says about one anomalous target (stage 3)."""

    category: str
    colors: dict[str, str] = field(default_factory=dict)
    clothing: str = ""
    action: str = ""  # a vocab.ACTIONS word, "" when the describer says nothing about motion


@dataclass
class FrameInput:
    """Everything an annotator may look at for one frame."""

    video: str
    frame: int
    id_map: np.ndarray  # (H, W) int32, 0 = background (ShanghaiTech: the anomaly mask)
    anomaly: np.ndarray  # (H, W) bool
    image: np.ndarray | None  # (H, W, 3) uint8 RGB, None when the annotator needs no pixels


@dataclass
class TargetInput:
    """Everything a describer may look at for one anomalous target (stage 3)."""

    video: str
    source_object_id: int
    category: str  # the object's category from stage 1/2
    frames: np.ndarray  # (K, H, W, 3) uint8, background blurred outside the anomaly mask
    masks: np.ndarray  # (K, H, W) bool, the target's anomaly mask in those frames
    frame_indices: list[int]


class Annotator:
    name = "base"
    needs_images = False  # whether stage 1 must decode frames for it

    def __init__(self, cfg: ConstructConfig):
        self.cfg = cfg
        self.stats: Counter = Counter()

    def annotate(self, x: FrameInput) -> list[dict]:
        """Objects in one frame: dicts with object_id, category, colors (dict), clothing, action,
        x1, y1, x2, y2 (inclusive), cx, cy, area, anomalous."""
        raise NotImplementedError

    def describe(self, t: TargetInput) -> Description:
        raise NotImplementedError


def _anomalous(anomaly: np.ndarray, obj: dict) -> bool:
    return bool(anomaly[obj["ys"], obj["xs"]].any())


def _strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("ys", "xs")}


class OracleAnnotator(Annotator):
    """Ground truth plus the attribute sidecar. Objects with no attributes take their category
    from the UBnormal names table, else "person" only for datasets where unnamed ids are people
    (UBnormal's convention); a name outside the vocabulary is skipped and counted."""

    name = "oracle"

    def __init__(
        self,
        cfg: ConstructConfig,
        attributes: dict[tuple[str, int], ObjectAttributes],
        names: dict[tuple[str, int], str],
    ):
        super().__init__(cfg)
        self.attributes = attributes
        self.names = names

    def _attrs(self, video: str, oid: int) -> ObjectAttributes | None:
        a = self.attributes.get((video, oid))
        if a is not None:
            return a
        name = self.names.get((video, oid), "person")
        if name not in vocab.CATEGORIES:
            return None
        return ObjectAttributes(category=name)

    def annotate(self, x: FrameInput) -> list[dict]:
        out = []
        for obj in objects_in_id_map(x.id_map, min_area=1):
            a = self._attrs(x.video, obj["object_id"])
            if a is None:
                self.stats["skipped_unknown_category"] += 1
                continue
            self.stats["objects"] += 1
            out.append(
                _strip(obj)
                | {
                    "category": a.category,
                    "colors": dict(a.colors),
                    "clothing": a.clothing,
                    "action": a.action_at(x.frame),
                    "anomalous": _anomalous(x.anomaly, obj),
                }
            )
        return out

    def describe(self, t: TargetInput) -> Description:
        a = self._attrs(t.video, t.source_object_id)
        if a is None:
            return Description(category=t.category)
        actions = Counter(a.action_at(f) for f in t.frame_indices)
        actions.pop("", None)
        action = actions.most_common(1)[0][0] if actions else ""
        return Description(a.category, dict(a.colors), a.clothing, action)


class MasksAnnotator(Annotator):
    """Connected components of the (binary) object map; colours measured from the pixels."""

    name = "masks"
    needs_images = True

    def annotate(self, x: FrameInput) -> list[dict]:
        out = []
        for obj in components(x.id_map > 0, min_area=self.cfg.min_area):
            colors = {"body": mean_color(x.image, obj["ys"], obj["xs"])} if x.image is not None else {}
            self.stats["objects"] += 1
            out.append(
                _strip(obj)
                | {
                    "category": self.cfg.masks_category,
                    "colors": colors,
                    "clothing": "",
                    "action": "",
                    "anomalous": _anomalous(x.anomaly, obj),
                }
            )
        return out

    def describe(self, t: TargetInput) -> Description:
        # Pixels inside the mask are untouched by the blur: measure the colour there.
        sel = t.masks
        if sel.any():
            rgb = t.frames[sel].reshape(-1, 3).mean(0)
            from tvau.construct.pixels import color_name

            colors = {"body": color_name(rgb)}
        else:
            colors = {}
        return Description(category=t.category, colors=colors)
