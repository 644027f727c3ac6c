"""Sentence templates: appearance phrases, trajectory sentences and dialogue answers.

The paper's annotators were LVLMs/LLMs with unpublished prompts (docs/method.md section 8); these
templates produce the same kind of content ("moves from left to middle", "almost static") from
the structured annotation, deterministically, with the 3x3 region words of docs/method.md section 7.
"""

from __future__ import annotations

import json

MOTION_VERB: dict[str, str] = {
    "static": "stays almost static",
    "small movement": "moves slightly",
    "walking": "walks",
    "cross-region": "walks",
    "fast": "moves fast",
}
ACTION_PHRASE: dict[str, str] = {
    "walking": "walking", "standing": "standing still", "running": "running",
    "jumping": "jumping", "falling": "falling down", "lying": "lying on the ground",
    "fighting": "fighting", "riding": "riding a bicycle", "skateboarding": "skateboarding",
    "throwing": "throwing an object", "flying": "flying through the air", "driving": "driving",
    "dropped": "left unattended", "loitering": "loitering", "gathering": "gathering with others",
}


def _a(word: str) -> str:
    """The indefinite article for a following word."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _colors(colors: dict[str, str] | str) -> dict[str, str]:
    return json.loads(colors) if isinstance(colors, str) else dict(colors)


def appearance(category: str, colors: dict[str, str] | str, clothing: str = "") -> str:
    """'a person in a red jacket and blue jeans', 'a green bicycle', 'a person'."""
    c = _colors(colors)
    if category == "person":
        items = [s.strip() for s in clothing.split(" with ")[0].split(" and ") if s.strip()]
        extra = clothing.split(" with ", 1)[1] if " with " in clothing else ""
        if "upper" in c and "lower" in c and len(items) == 2:
            text = f"a person in {_a(c['upper'])} {c['upper']} {items[0]} and {c['lower']} {items[1]}"
        elif c:
            text = "a person in " + " and ".join(dict.fromkeys(c.values())) + " clothes"
            if clothing:
                text += f" ({clothing})"
            extra = ""
        elif clothing:
            text, extra = f"a person wearing {clothing}", ""
        else:
            text = "a person"
        return text + (f" with {extra}" if extra else "")
    words = list(dict.fromkeys(c.values()))
    phrase = f"{' and '.join(words)} {category}" if words else category
    return f"{_a(phrase)} {phrase}"


def trajectory(regions: list[str] | str, motion_state: str) -> str:
    """'moves fast from the left to the middle', 'stays almost static in the top-right'."""
    regs = json.loads(regions) if isinstance(regions, str) else list(regions)
    verb = MOTION_VERB[motion_state]
    if len(regs) == 1 or regs[0] == regs[-1] and len(regs) <= 2:
        return f"{verb} in the {regs[0]}"
    via = regs[1:-1]
    if regs[0] == regs[-1]:
        return f"{verb} from the {regs[0]} through the " + ", the ".join(via) + " and back"
    text = f"{verb} from the {regs[0]} to the {regs[-1]}"
    if via:
        text += " through the " + ", the ".join(via)
    return text


def sentence(category: str, colors, clothing: str, regions, motion_state: str) -> str:
    """One trajectory sentence for a timeline."""
    s = f"{appearance(category, colors, clothing)} {trajectory(regions, motion_state)}."
    return s[0].upper() + s[1:]


def from_to(regions: list[str] | str) -> str:
    """Answer to 'From where to where does it move?'."""
    regs = json.loads(regions) if isinstance(regions, str) else list(regions)
    if len(regs) == 1:
        return f"It stays in the {regs[0]}."
    text = f"It moves from the {regs[0]} to the {regs[-1]}"
    if len(regs) > 2:
        text += " through the " + ", the ".join(regs[1:-1])
    return text + "."
