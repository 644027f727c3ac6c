"""The LVLM annotator: prompt the backbone for JSON, validate it against a schema, retry when the
answer is malformed, and fall back (counted) or fail with the last answers when it never is.

The paper's annotation prompts were not published (docs/method.md section 8); these are ours. The
schema is strict: categories, colours and actions must be vocabulary words and boxes must lie
inside the frame, so a hallucinated word is a malformed answer, not a new class.
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tvau import vocab
from tvau.construct.annotators import (
    Annotator,
    Description,
    FrameInput,
    MasksAnnotator,
    TargetInput,
)
from tvau.construct.config import ConstructConfig

Category = Literal[vocab.CATEGORIES]  # type: ignore[valid-type]
Colour = Literal[vocab.COLORS]  # type: ignore[valid-type]
Action = Literal[("",) + vocab.ACTIONS]  # type: ignore[valid-type]


class LVLMObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Category
    colors: dict[str, Colour] = Field(default_factory=dict)
    clothing: str = ""
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 inclusive pixels


class LVLMFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    objects: list[LVLMObject]


class LVLMTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Category
    colors: dict[str, Colour] = Field(default_factory=dict)
    clothing: str = ""
    action: Action = ""


class BoxesInside(BaseModel):
    """Validation context: the frame size the boxes must fit."""

    width: int
    height: int
    objects: list[LVLMObject]

    @model_validator(mode="after")
    def _inside(self):
        for i, o in enumerate(self.objects):
            x1, y1, x2, y2 = o.box
            if not (0 <= x1 <= x2 < self.width and 0 <= y1 <= y2 < self.height):
                raise ValueError(f"objects[{i}].box {list(o.box)} is not inside the {self.width}x{self.height} frame")
        return self


FRAME_PROMPT = (
    "You annotate one frame of a surveillance video ({width}x{height} pixels). List every person "
    "and object as JSON only, no prose: "
    '{{"objects": [{{"category": C, "colors": {{"part": colour}}, "clothing": "words", '
    '"box": [x1, y1, x2, y2]}}]}}. C is one of: {categories}. Colours are from: {colors}. '
    "Boxes are inclusive pixel coordinates inside the frame."
)
TARGET_PROMPT = (
    "The background of this clip is blurred; the sharp region is the anomalous target. Describe it "
    'as JSON only: {{"category": C, "colors": {{"part": colour}}, "clothing": "words", "action": A}}. '
    "C is one of: {categories}. Colours are from: {colors}. A is one of: {actions}."
)
RETRY_SUFFIX = "\nYour previous answer was invalid ({error}). Answer with the JSON object only."


class LVLMAnswerError(RuntimeError):
    """Every attempt gave a malformed answer. `answers` holds each raw answer."""

    def __init__(self, message: str, answers: list[str]):
        super().__init__(message)
        self.answers = answers


def extract_json(text: str) -> object:
    """The first balanced {...} block in `text`, parsed (models often wrap JSON in prose)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the answer")
    depth = 0
    in_str = esc = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return json.loads(text[start : i + 1])
    raise ValueError("unterminated JSON object in the answer")


class LVLMAnnotator(Annotator):
    """`backbone` is anything with generate(frames (T, H, W, 3) uint8 | None, prompt, max_new_tokens)
    -> str (tvau.model.backbone.Backbone)."""

    name = "lvlm"
    needs_images = True

    def __init__(self, cfg: ConstructConfig, backbone):
        super().__init__(cfg)
        self.backbone = backbone
        self.fallback = MasksAnnotator(cfg)

    def _ask(self, frames: np.ndarray, prompt: str, parse, where: str):
        """Ask up to 1 + max_retries times; returns parse(answer) or raises LVLMAnswerError."""
        answers: list[str] = []
        error = ""
        for attempt in range(self.cfg.lvlm_max_retries + 1):
            p = prompt if attempt == 0 else prompt + RETRY_SUFFIX.format(error=error[:200])
            self.stats["lvlm_calls"] += 1
            if attempt:
                self.stats["lvlm_retries"] += 1
            answer = self.backbone.generate(frames, p, max_new_tokens=self.cfg.lvlm_max_new_tokens)
            answers.append(answer)
            try:
                return parse(answer)
            except ValidationError as exc:
                error = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:3]
                )
                self.stats["lvlm_malformed"] += 1
            except ValueError as exc:  # JSONDecodeError is a ValueError
                error = str(exc).splitlines()[0]
                self.stats["lvlm_malformed"] += 1
        raise LVLMAnswerError(
            f"{where}: the LVLM gave no valid answer in {len(answers)} attempt(s); last error: "
            f"{error}; last answer: {answers[-1][:200]!r}",
            answers,
        )

    def annotate(self, x: FrameInput) -> list[dict]:
        if x.frame % self.cfg.lvlm_frame_stride:
            return []  # not a sampled frame; the tracker bridges the gap
        h, w = x.id_map.shape
        prompt = FRAME_PROMPT.format(
            width=w, height=h, categories=", ".join(vocab.CATEGORIES), colors=", ".join(vocab.COLORS)
        )

        def parse(answer: str) -> list[LVLMObject]:
            frame = LVLMFrame.model_validate(extract_json(answer))
            return BoxesInside(width=w, height=h, objects=frame.objects).objects

        try:
            objects = self._ask(x.image[None], prompt, parse, f"{x.video} frame {x.frame}")
        except LVLMAnswerError:
            if self.cfg.lvlm_fallback == "fail":
                raise
            self.stats["lvlm_fallback_frames"] += 1
            return self.fallback.annotate(x)
        out = []
        for i, o in enumerate(objects, 1):
            x1, y1, x2, y2 = o.box
            out.append(
                {
                    "object_id": i,
                    "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                    "cx": (x1 + x2) / 2.0, "cy": (y1 + y2) / 2.0,
                    "area": (x2 - x1 + 1) * (y2 - y1 + 1),
                    "category": o.category,
                    "colors": dict(o.colors),
                    "clothing": o.clothing,
                    "action": "",
                    "anomalous": bool(x.anomaly[y1 : y2 + 1, x1 : x2 + 1].any()),
                }
            )
        self.stats["objects"] += len(out)
        return out

    def describe(self, t: TargetInput) -> Description:
        prompt = TARGET_PROMPT.format(
            categories=", ".join(vocab.CATEGORIES),
            colors=", ".join(vocab.COLORS),
            actions=", ".join(vocab.ACTIONS),
        )

        def parse(answer: str) -> LVLMTarget:
            return LVLMTarget.model_validate(extract_json(answer))

        try:
            d = self._ask(t.frames, prompt, parse, f"{t.video} target {t.source_object_id}")
        except LVLMAnswerError:
            if self.cfg.lvlm_fallback == "fail":
                raise
            self.stats["lvlm_fallback_targets"] += 1
            return self.fallback.describe(t)
        return Description(d.category, dict(d.colors), d.clothing, d.action)
