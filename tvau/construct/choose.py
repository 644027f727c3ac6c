"""The annotator params name (`construct.annotator`), with what it needs loaded.

Its own module because it knows every kind: the LVLM annotator builds on annotators.py, so the
choice cannot live there without an import cycle.
"""

from __future__ import annotations

from tvau.construct.annotators import Annotator, MasksAnnotator, OracleAnnotator
from tvau.construct.config import ConstructConfig


def make_annotator(cfg: ConstructConfig, dataset_root, model_cfg=None) -> Annotator:
    """The annotator named by `cfg.annotator`, with what it needs loaded."""
    if cfg.annotator == "oracle":
        from tvau.construct.sidecar import load_attributes, load_object_names

        return OracleAnnotator(cfg, load_attributes(dataset_root), load_object_names(dataset_root))
    if cfg.annotator == "masks":
        return MasksAnnotator(cfg)
    if cfg.annotator == "lvlm":
        from tvau.construct.lvlm import LVLMAnnotator
        from tvau.model.backbone import load_backbone

        if model_cfg is None:
            raise ValueError("the lvlm annotator needs the model parameters (params.yaml: model)")
        return LVLMAnnotator(cfg, load_backbone(model_cfg))
    raise ValueError(f"unknown annotator {cfg.annotator!r}: expected oracle, masks or lvlm")
