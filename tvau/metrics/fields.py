"""Read a generated description into the fields it states, with the project's closed vocabulary.

BLEU rewards shared words; it cannot tell a model that names the right colour from one that repeats
one fluent phrase for every clip. These fields can: each answer is read into what it says about the
anomalous target, and each field is compared with what the reference says.

Fields (`AnswerFields`; None = the answer does not state it):
- category      a word of vocab.CATEGORIES ("person", "car", ...);
- color         the colour words of vocab.COLORS stated, de-duplicated, sorted, joined by " and "
                ("a person in a red jacket and blue jeans" -> "blue and red"): a set, because the
                templates order colours by garment for one look and by name for another;
- clothing      the garment words of the generator's palette (tvau.synth.palette) stated, the same
                way ("jacket and jeans"); a carried bag is not clothing;
- action        a key of vocab.ACTIONS, from its phrase in tvau.construct.sentences.ACTION_PHRASE
                ("lying on the ground" -> "lying") or the action word itself;
- motion_state  a word of vocab.MOTION_STATES, or "moves slightly" (small movement); "walks" is left
                unread, because the templates use it for both "walking" and "cross-region";
- from_region / to_region  words of vocab.REGIONS_3X3 after "from (the)" and "to (the)"; an answer
                that only says "in the R" ("It stays in the left.") has R for both.

Rules, all on the lower-cased text:
1. Words are matched whole (a hyphen joins a word: "top-left" is one region, "skateboarding" is
   not "skateboard"); a longer match is preferred where two start at the same place.
2. Category, action, motion state and regions take their first statement, so repeated phrases
   ("A red car. A red car. A red car.") read as one; colours and garments collect every statement,
   so an answer that names two looks ("A red car. A blue car.") states both and matches neither.
3. Action phrases are read first and blanked out, so that "riding a bicycle" states an action, not
   the category bicycle; "motion state is walking" is blanked out before that, so that it states a
   motion state, not the action walking.
4. Anything outside the vocabulary is ignored: an empty answer, "Yes. Yes. Yes." or a sentence of
   unknown words states nothing (`AnswerFields.empty`).

A dialogue's fields (`parse_dialogue`) come from the answer to the question that asks for them:
category, color, clothing and action from the answer to Q_TARGET, motion_state from Q_MOTION's,
from_region and to_region from Q_FROM_TO's. `describe` writes fields back as one sentence in the
templates' words, for reports and the nightly scorer.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from tvau import vocab
from tvau.construct.sentences import ACTION_PHRASE
from tvau.synth.palette import LOWER_GARMENTS, UPPER_GARMENTS

FIELDS: tuple[str, ...] = (
    "category", "color", "clothing", "action", "motion_state", "from_region", "to_region",
)
GARMENTS: tuple[str, ...] = UPPER_GARMENTS + LOWER_GARMENTS
# Motion phrases of the templates that name a state without its word (sentences.MOTION_VERB).
MOTION_PHRASES: dict[str, str] = {"moves slightly": "small movement"}


@dataclass(frozen=True)
class AnswerFields:
    category: str | None = None
    color: str | None = None
    clothing: str | None = None
    action: str | None = None
    motion_state: str | None = None
    from_region: str | None = None
    to_region: str | None = None

    @property
    def empty(self) -> bool:
        """The answer states no field at all (unparseable)."""
        return all(getattr(self, f) is None for f in FIELDS)

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _words(options) -> re.Pattern:
    """Whole-word alternation, longest option first (rule 1)."""
    alts = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alts})(?![\w-])")


_ACTION_OF = {phrase: action for action, phrase in ACTION_PHRASE.items()} | {a: a for a in vocab.ACTIONS}
_ACTION = _words(_ACTION_OF)
_CATEGORY = _words(vocab.CATEGORIES)
_COLOR = _words(vocab.COLORS)
_GARMENT = _words(GARMENTS)
_STATE_OF = {s: s for s in vocab.MOTION_STATES} | MOTION_PHRASES
_STATE = _words(_STATE_OF)
_STATE_CLAUSE = re.compile(rf"motion state is {_STATE.pattern}")
_REGION = "|".join(re.escape(r) for r in sorted(vocab.REGIONS_3X3, key=len, reverse=True))
_FROM = re.compile(rf"(?<![\w-])from (?:the )?({_REGION})(?![\w-])")
_TO = re.compile(rf"(?<![\w-])to (?:the )?({_REGION})(?![\w-])")
_IN = re.compile(rf"(?<![\w-])in (?:the )?({_REGION})(?![\w-])")


def _norm(text: str | None) -> str:
    return " ".join((text or "").lower().split())


def _first(pattern: re.Pattern, text: str, table: dict[str, str] | None = None) -> str | None:
    m = pattern.search(text)
    if m is None:
        return None
    return table[m.group(0)] if table else m.group(m.lastindex or 0)


def _set_of(pattern: re.Pattern, text: str) -> str | None:
    found = sorted(set(pattern.findall(text)))
    return " and ".join(found) if found else None


def _target(text: str) -> dict[str, str | None]:
    action = _first(_ACTION, text, _ACTION_OF)
    rest = _ACTION.sub(" ", text)  # rule 3
    return {"category": _first(_CATEGORY, rest), "color": _set_of(_COLOR, rest),
            "clothing": _set_of(_GARMENT, rest), "action": action}


def _where(text: str) -> dict[str, str | None]:
    start, end = _first(_FROM, text), _first(_TO, text)
    if start is None and end is None:
        start = end = _first(_IN, text)
    return {"from_region": start, "to_region": end}


def parse_answer(text: str | None) -> AnswerFields:
    """Every field one free-text answer states (the module docstring's rules)."""
    t = _norm(text)
    return AnswerFields(**_target(_STATE_CLAUSE.sub(" ", t)), motion_state=_first(_STATE, t, _STATE_OF), **_where(t))


def parse_dialogue(target_answer: str | None, trajectory_answer: str | None,
                   motion_answer: str | None = None) -> AnswerFields:
    """A dialogue's fields, each from the answer to the question that asks for it."""
    motion = _norm(motion_answer)
    return AnswerFields(**_target(_norm(target_answer)), motion_state=_first(_STATE, motion, _STATE_OF),
                        **_where(_norm(trajectory_answer)))


def field_matches(answer: AnswerFields, reference: AnswerFields) -> dict[str, bool]:
    """Per field: does the answer state what the reference states? A field neither states is right
    (a car has no clothing); an answer that states nothing is wrong in every field."""
    if answer.empty:
        return dict.fromkeys(FIELDS, False)
    return {f: getattr(answer, f) == getattr(reference, f) for f in FIELDS}


def describe(f: AnswerFields) -> str:
    """One sentence from fields, in the templates' words ("" when nothing is stated): 'A person in
    blue and red wearing jacket and jeans, running; its motion state is fast; it moves from the left
    to the middle.'"""
    if f.empty:
        return ""
    cat = f.category
    s = (f"{'an' if cat[0] in 'aeiou' else 'a'} {cat}" if cat else "the anomaly")
    s += (f" in {f.color}" if f.color else "") + (f" wearing {f.clothing}" if f.clothing else "")
    s += f", {ACTION_PHRASE.get(f.action, f.action)}" if f.action else ""
    s += f"; its motion state is {f.motion_state}" if f.motion_state else ""
    if f.from_region is not None and f.from_region == f.to_region:
        s += f"; it stays in the {f.from_region}"
    elif f.from_region or f.to_region:
        s += "; it moves" + (f" from the {f.from_region}" if f.from_region else "") + (
            f" to the {f.to_region}" if f.to_region else "")
    return s[0].upper() + s[1:] + "."


def reference_fields(category: str, colors: dict[str, str], clothing: str, action: str, regions: list[str],
                     motion_state: str) -> AnswerFields:
    """The fields a reference dialogue states, from the structured description it was written from
    (tvau.construct.dialogue.phase_b_anomalous): what parse_dialogue reads from its answers, without
    reading them. Clothing is only written for a person; an action without a phrase is not written."""
    worn = _set_of(_GARMENT, _norm(clothing)) if category == "person" else None
    return AnswerFields(category=category, color=" and ".join(sorted(set(colors.values()))) or None,
                        clothing=worn, action=action if action in ACTION_PHRASE else None,
                        motion_state=motion_state, from_region=regions[0], to_region=regions[-1])


def fields_of(d: dict) -> AnswerFields:
    """AnswerFields from a dict (as_dict's inverse; unknown keys are ignored)."""
    return AnswerFields(**{f.name: d.get(f.name) for f in fields(AnswerFields)})
