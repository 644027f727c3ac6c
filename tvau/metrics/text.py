"""Dialogue metrics (docs/method.md section 9): BLEU-4 and yes/no accuracy.

The paper reports BLEU-4 without naming the implementation, so both common readings are given,
on sacrebleu's 0-100 scale (as the paper's 62.67 / 88.84):
- corpus BLEU-4: sacrebleu.corpus_bleu, one reference per answer, n-gram counts pooled over the
  corpus, brevity penalty over the corpus;
- sentence BLEU-4: the mean over answers of sacrebleu.sentence_bleu with its default
  exponential smoothing (so an answer without a matching 4-gram does not score 0).
Both use the tokenizer named in MetricsConfig.bleu_tokenize (sacrebleu's default "13a").

Yes/no parser (`parse_yes_no`): lower-case the answer, split it into words (runs of letters and
apostrophes), and take the first word that is a yes-word {yes, yeah, yep, yup, true, correct} or a
no-word {no, nope, not, false, none}. "not" and "none" count as no because answers like "There is
not any anomaly" or "None." mean no; "nothing" or "know" are different words and do not match.
An answer with neither is unparsed (None); it is counted as wrong in the accuracy and reported
separately.

Collapse measures (BLEU stays high enough when every answer is the same fluent phrase):
- looping: an answer loops when some word 3-gram occurs in it twice or more ("a person in a red
  jacket a person in a red jacket"; "yes. yes. yes." is one 3-gram and does not, a fourth "yes."
  does); words as above;
- distinct share: distinct answers / answers, answers compared lower-cased with whitespace
  collapsed (1.0: every answer differs; 1/n: one answer for all n).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

YES_WORDS = frozenset({"yes", "yeah", "yep", "yup", "true", "correct"})
NO_WORDS = frozenset({"no", "nope", "not", "false", "none"})
_WORD = re.compile(r"[a-z']+")


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("BLEU of an empty corpus is undefined")


def corpus_bleu4(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU-4 (0-100) of hypotheses against one reference each."""
    import sacrebleu

    _check(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize).score)


def sentence_bleu4(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Mean smoothed (exponential) sentence BLEU-4 (0-100)."""
    import sacrebleu

    _check(hypotheses, references)
    scores = [
        sacrebleu.sentence_bleu(h, [r], smooth_method="exp", tokenize=tokenize).score
        for h, r in zip(hypotheses, references)
    ]
    return float(sum(scores) / len(scores))


def parse_yes_no(answer: str) -> bool | None:
    """True for yes, False for no, None when the answer says neither (see module docstring)."""
    for word in _WORD.findall(answer.lower()):
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
    return None


def loops(answer: str, n: int = 3) -> bool:
    """Does some word n-gram occur twice or more in the answer?"""
    words = _WORD.findall(answer.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) < len(grams)


def distinct_share(answers: Sequence[str]) -> float | None:
    """Distinct answers / answers (None for no answers)."""
    if not answers:
        return None
    return len({" ".join(a.lower().split()) for a in answers}) / len(answers)


@dataclass(frozen=True)
class YesNoResult:
    accuracy: float  # correct / all answers (unparsed answers count as wrong), in [0, 1]
    unparsed: int  # answers in which the parser found neither yes nor no


def yes_no_accuracy(answers: Sequence[str], truths: Sequence[bool | str]) -> YesNoResult:
    """Accuracy of free-text answers against booleans (or reference answers, parsed the same way)."""
    if len(answers) != len(truths):
        raise ValueError(f"{len(answers)} answers but {len(truths)} ground-truth values")
    if not answers:
        raise ValueError("accuracy of no answers is undefined")
    correct = unparsed = 0
    for i, (a, t) in enumerate(zip(answers, truths)):
        truth = parse_yes_no(t) if isinstance(t, str) else bool(t)
        if truth is None:
            raise ValueError(f"ground truth {i} ({t!r}) is neither yes nor no")
        got = parse_yes_no(a)
        unparsed += got is None
        correct += got is truth
    return YesNoResult(accuracy=correct / len(answers), unparsed=unparsed)
