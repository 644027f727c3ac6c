"""What the language model is asked about a flagged span, and what its answers state.

The questions are the dialogue the model was trained on (tvau/questions.py, in the order of the
phase-B dialogues of tvau/construct/dialogue.py): a question it never saw gets fluent noise ("Yes.
Yes. Yes."). They are asked once per anomalous span, on the clip holding the span's peak, never
on a normal video. The answers are read into fields with the project's one parser
(tvau/metrics/fields.py) and written back as one sentence (fields.describe).
"""

from __future__ import annotations

from tvau.metrics.fields import AnswerFields, describe, parse_dialogue
from tvau.questions import Q_ANOMALY, Q_FROM_TO, Q_MOTION, Q_TARGET

SCORING_QUESTIONS: tuple[str, ...] = (Q_ANOMALY, Q_TARGET, Q_MOTION, Q_FROM_TO)
# The fields the manifest and summary.parquet carry (target = the category the target answer names).
FIELD_COLUMNS: tuple[str, ...] = ("target", "action", "motion_state", "from_region", "to_region")


def answer_fields(turns: list[dict]) -> AnswerFields:
    """The fields of one scoring dialogue ([{"question", "answer"}] in SCORING_QUESTIONS order)."""
    by_q = {t["question"]: t["answer"] for t in turns}
    return parse_dialogue(by_q.get(Q_TARGET), by_q.get(Q_FROM_TO), by_q.get(Q_MOTION))


def explanation(turns: list[dict]) -> dict:
    """A span's explanation: the verbatim turns, the fields (FIELD_COLUMNS plus colour and clothing)
    and the sentence built from them ("" when the answers state nothing readable)."""
    f = answer_fields(turns)
    d = f.as_dict()
    fields = {"target": d.pop("category"), **d}
    return {"turns": turns, "fields": fields, "sentence": describe(f)}


def empty_fields() -> dict:
    """The field columns of a video without an explanation."""
    return dict.fromkeys(FIELD_COLUMNS)
