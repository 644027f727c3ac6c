"""The LVLM annotator's plumbing: JSON extraction, schema validation, retries, fallback, failure.

A scripted backbone (answers given in advance) tests the retry logic exactly; the real tiny
backbone (random weights, so its answers are noise) tests the end-to-end plumbing: every attempt
is malformed, the retries happen, and the configured fallback or failure follows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tvau.construct.annotators import FrameInput, TargetInput
from tvau.construct.config import ConstructConfig
from tvau.construct.lvlm import LVLMAnnotator, LVLMAnswerError, extract_json


class ScriptedBackbone:
    """Returns the given answers in order and records every prompt it was asked."""

    def __init__(self, answers: list[str]):
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.shapes: list[tuple] = []

    def generate(self, frames, prompt, max_new_tokens=64):
        self.prompts.append(prompt)
        self.shapes.append(None if frames is None else frames.shape)
        return self.answers.pop(0)


def _frame(h=48, w=64):
    m = np.zeros((h, w), np.int32)
    m[10:20, 5:15] = 1
    img = np.full((h, w, 3), 128, np.uint8)
    return FrameInput("vid", 0, m, m > 0, img)


GOOD = json.dumps({"objects": [{"category": "person", "colors": {"upper": "red"}, "clothing": "coat", "box": [5, 10, 14, 19]}]})


def test_extract_json_from_prose():
    assert extract_json('Sure! {"a": {"b": "}"}} trailing') == {"a": {"b": "}"}}
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("no braces here")
    with pytest.raises(ValueError, match="unterminated"):
        extract_json('{"a": 1')


def test_retries_until_valid_then_parses():
    bb = ScriptedBackbone(["not json", '{"objects": [{"category": "dragon", "box": [0,0,1,1]}]}', "Here: " + GOOD])
    ann = LVLMAnnotator(ConstructConfig(lvlm_max_retries=2, lvlm_frame_stride=1), bb)
    objs = ann.annotate(_frame())
    assert len(bb.prompts) == 3 and "previous answer was invalid" in bb.prompts[1]
    assert bb.shapes[0] == (1, 48, 64, 3)  # one frame as a 1-frame clip
    assert ann.stats["lvlm_retries"] == 2 and ann.stats["lvlm_malformed"] == 2
    assert len(objs) == 1
    o = objs[0]
    assert (o["x1"], o["y1"], o["x2"], o["y2"], o["category"], o["anomalous"]) == (5, 10, 14, 19, "person", True)


def test_box_outside_the_frame_is_malformed():
    bad = json.dumps({"objects": [{"category": "person", "box": [5, 10, 64, 19]}]})  # x2 = width
    bb = ScriptedBackbone([bad])
    ann = LVLMAnnotator(ConstructConfig(lvlm_max_retries=0, lvlm_frame_stride=1, lvlm_fallback="fail"), bb)
    with pytest.raises(LVLMAnswerError, match=r"vid frame 0: the LVLM gave no valid answer in 1 attempt.*not inside the 64x48 frame"):
        ann.annotate(_frame())


def test_fallback_to_masks_is_counted():
    bb = ScriptedBackbone(["garbage"] * 3)
    ann = LVLMAnnotator(ConstructConfig(lvlm_max_retries=2, lvlm_frame_stride=1, lvlm_fallback="masks"), bb)
    objs = ann.annotate(_frame())
    assert ann.stats["lvlm_fallback_frames"] == 1 and ann.stats["lvlm_calls"] == 3
    assert [(o["x1"], o["y1"], o["x2"], o["y2"]) for o in objs] == [(5, 10, 14, 19)]  # from the mask


def test_frame_stride_skips_frames_without_calls():
    bb = ScriptedBackbone([])
    ann = LVLMAnnotator(ConstructConfig(lvlm_frame_stride=4), bb)
    x = _frame()
    x.frame = 3
    assert ann.annotate(x) == [] and bb.prompts == []


@pytest.mark.slow
def test_tiny_backbone_end_to_end_retries_then_falls_back_or_fails():
    from tvau.model.backbone import load_backbone
    from tvau.model.config import ModelConfig

    backbone = load_backbone(ModelConfig(backbone="embedded:tiny"))  # random weights
    cfg = ConstructConfig(lvlm_max_retries=1, lvlm_frame_stride=1, lvlm_max_new_tokens=12)
    ann = LVLMAnnotator(cfg, backbone)
    objs = ann.annotate(_frame(56, 56))
    # random weights: both attempts are malformed; the masks annotator took over, and it is counted
    assert ann.stats["lvlm_calls"] == 2 and ann.stats["lvlm_malformed"] == 2
    assert ann.stats["lvlm_fallback_frames"] == 1 and len(objs) == 1
    # the describer (stage 3) takes the blurred clip and falls back the same way
    t = TargetInput("vid", 1, "person", np.zeros((2, 56, 56, 3), np.uint8), np.ones((2, 56, 56), bool), [0, 1])
    desc = ann.describe(t)
    assert desc.category == "person" and desc.action == "" and ann.stats["lvlm_fallback_targets"] == 1
    # with fallback "fail" the error names the frame and shows what the model said
    strict = LVLMAnnotator(cfg.model_copy(update={"lvlm_fallback": "fail"}), backbone)
    with pytest.raises(LVLMAnswerError, match="vid frame 0: the LVLM gave no valid answer in 2 attempt") as e:
        strict.annotate(_frame(56, 56))
    assert len(e.value.answers) == 2
