"""Dialogue metrics that look at the words: what the answers state, and whether they collapsed.

BLEU-4 rewards shared n-grams, so a model that answers every clip with the same fluent phrase keeps
a fair score. These metrics (tvau.metrics.fields, tvau.metrics.text) go into evaluate.json's model
block beside it, each {value, low, high}: the percentile bootstrap over videos of bootstrap.py
(ratio_stat: the drawn videos' counts summed), low/high null where no interval is drawn.

- field_accuracy[field]: over every anomalous dialogue clip that has a reference, the share whose
  answers state the reference's value of the field (tvau.metrics.fields.field_matches). A clip
  answered anything but "yes" to the first question is wrong in every field, and so is one whose
  answers state no field at all: no clip is left out for answering badly. Clips without a reference
  (the build stage skipped their target) are not scored, and counted in `field_clips`;
- field_accuracy_answered[field]: the same on the anomalous clips answered "yes" only (what the
  descriptions are worth when the model does describe);
- distinct_answer_share[question]: distinct answers / answers on the anomalous clips, for the
  target and the trajectory question (value only: duplicating a video in a resample duplicates its
  answers, so the share has no bootstrap of this kind);
- looping_answers[question]: the share of those answers in which a word 3-gram occurs twice or more;
- said_yes["normal"]: the share of normal clips answered "yes" (false alarms); said_yes[kind]: the
  share of that anomaly kind's anomalous clips answered "yes" (its recall), resampling the kind's
  videos (kinds from synth_manifest.json; vocab.ANOMALY_KINDS has no kind "normal").

Beside them, in the details: field_majority and field_majority_answered[field], what one constant
answer (the most common reference value on those clips) would score. Most anomalies are people, so
a model that says "a person" to every clip reads about 0.6 on category: a field accuracy means
something only above its majority rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from tvau.evaluate import bootstrap as bs
from tvau.evaluate.model import DialogueResult
from tvau.metrics.fields import FIELDS, AnswerFields, field_matches, fields_of, parse_dialogue
from tvau.metrics.text import distinct_share, loops, parse_yes_no

WORD_METRICS = ("field_accuracy", "field_accuracy_answered", "distinct_answer_share", "looping_answers",
                "said_yes")
QUESTIONS = ("target", "trajectory")  # the answers scored for collapse (the BLEU-scored ones)


def reference_of(d: DialogueResult) -> AnswerFields | None:
    """The reference's fields: the structured ones its record carries, else read from its answers."""
    if d.ref_target is None:
        return None
    if d.ref_fields:
        return fields_of(d.ref_fields)
    return parse_dialogue(d.ref_target, d.ref_trajectory, d.ref_motion)


def clip_fields(d: DialogueResult) -> tuple[dict[str, bool], bool] | None:
    """(per-field right or wrong, answered yes) for an anomalous clip with a reference, else None."""
    ref = reference_of(d) if d.truth else None
    if ref is None:
        return None
    said_yes = parse_yes_no(d.answer) is True
    if not said_yes:
        return dict.fromkeys(FIELDS, False), False
    return field_matches(parse_dialogue(d.target, d.trajectory, d.motion), ref), True


def _majority(refs: list[AnswerFields]) -> dict[str, float | None]:
    """Per field: the share of `refs` holding its most common value (None: no clip)."""
    if not refs:
        return dict.fromkeys(FIELDS)
    return {f: Counter(getattr(r, f) for r in refs).most_common(1)[0][1] / len(refs) for f in FIELDS}


def _ratio(num: np.ndarray, den: np.ndarray, draws: np.ndarray, conf: float) -> dict:
    value = float(num.sum() / den.sum()) if den.sum() else None
    return bs.interval(value, bs.ratio_stat(num, den), draws, conf).as_dict()


def word_metrics(names: Sequence[str], dialogues: dict[str, list[DialogueResult]], kinds: dict[str, str | None],
                 eval_cfg, seed_salt: int = 0) -> tuple[dict, dict]:
    """(model-block entries, details) for the videos `names` (in the order of the other metrics)."""
    conf = eval_cfg.confidence
    draws = bs.resamples(len(names), eval_cfg.bootstrap, eval_cfg.bootstrap_seed + seed_salt)
    per = [dialogues.get(n, []) for n in names]
    scored = [[c for c in map(clip_fields, ds) if c is not None] for ds in per]
    n_all = np.array([len(s) for s in scored], float)
    n_yes = np.array([sum(yes for _, yes in s) for s in scored], float)
    out: dict[str, dict] = {"field_accuracy": {}, "field_accuracy_answered": {}}
    for f in FIELDS:
        right = np.array([sum(m[f] for m, _ in s) for s in scored], float)  # a "no" clip is wrong: right only if yes
        out["field_accuracy"][f] = _ratio(right, n_all, draws, conf)
        out["field_accuracy_answered"][f] = _ratio(right, n_yes, draws, conf)
    answers = {q: [[getattr(d, q) or "" for d in ds if d.truth] for ds in per] for q in QUESTIONS}
    out["distinct_answer_share"] = {q: {"value": distinct_share([a for v in answers[q] for a in v]), "low": None,
                                        "high": None} for q in QUESTIONS}
    out["looping_answers"] = {q: _ratio(np.array([sum(map(loops, v)) for v in answers[q]], float),
                                        np.array([len(v) for v in answers[q]], float), draws, conf)
                              for q in QUESTIONS}
    yes_normal = np.array([sum(parse_yes_no(d.answer) is True for d in ds if not d.truth) for ds in per], float)
    normal = np.array([sum(not d.truth for d in ds) for ds in per], float)
    out["said_yes"] = {"normal": _ratio(yes_normal, normal, draws, conf)}
    for j, kind in enumerate(sorted({kinds.get(n) for n in names} - {None})):
        idx = [i for i, n in enumerate(names) if kinds.get(n) == kind]
        yes = np.array([sum(parse_yes_no(d.answer) is True for d in per[i] if d.truth) for i in idx], float)
        asked = np.array([sum(d.truth for d in per[i]) for i in idx], float)
        kdraws = bs.resamples(len(idx), eval_cfg.bootstrap, eval_cfg.bootstrap_seed + seed_salt + 200 + j)
        out["said_yes"][kind] = _ratio(yes, asked, kdraws, conf)
    refs = [(reference_of(d), parse_yes_no(d.answer) is True) for ds in per for d in ds if d.truth]
    details = {"field_clips": int(n_all.sum()), "field_clips_answered_yes": int(n_yes.sum()),
               "field_majority": _majority([r for r, _ in refs if r is not None]),
               "field_majority_answered": _majority([r for r, yes in refs if r is not None and yes]),
               "anomalous_clips_without_reference": int(sum(d.truth and d.ref_target is None for ds in per for d in ds))}
    return out, details
