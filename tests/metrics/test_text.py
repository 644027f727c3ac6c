"""BLEU-4 against sacrebleu and hand-worked values; the yes/no parser."""

import math

import pytest
import sacrebleu

from tvau.metrics.text import corpus_bleu4, parse_yes_no, sentence_bleu4, yes_no_accuracy


def test_corpus_bleu_hand_worked_brevity_penalty():
    # All n-gram precisions are 1; the hypothesis has 6 tokens against 7: BP = exp(1 - 7/6).
    got = corpus_bleu4(["the cat sat on the mat"], ["the cat sat on the mat today"])
    assert got == pytest.approx(100 * math.exp(1 - 7 / 6), abs=1e-6)
    assert corpus_bleu4(["a man runs to the left ."], ["a man runs to the left ."]) == pytest.approx(100.0)


def test_corpus_bleu_matches_sacrebleu():
    hyps = ["a person in red runs from left to right", "nobody is there", "a car drives on the walkway"]
    refs = [
        "a person in red runs from the left to the middle",
        "no one is there",
        "a white car on the walkway",
    ]
    assert corpus_bleu4(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)


def test_sentence_bleu_is_smoothed_mean():
    hyps = ["a man falls", "the bicycle moves from top to bottom"]
    refs = ["a woman falls down", "the bicycle moves from top-left to bottom"]
    expected = sum(sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs)) / 2
    assert sentence_bleu4(hyps, refs) == pytest.approx(expected)
    # No 4-gram matches in "a man falls": unsmoothed BLEU would be 0, smoothed is positive.
    assert sacrebleu.corpus_bleu(["a man falls"], [["a woman falls down"]]).score == 0.0
    assert sentence_bleu4(["a man falls"], ["a woman falls down"]) > 0


def test_bleu_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu4(["a", "b"], ["a"])


@pytest.mark.parametrize(
    "answer, parsed",
    [
        ("Yes, a person is running.", True),
        ("yes", True),
        ("No.", False),
        ("There is not any anomaly in the video.", False),
        ("None.", False),
        ("Yeah, someone falls down at the left.", True),
        ("I know nothing about it", None),
        ("NO anomaly, everything is normal. Yes really.", False),
        ("", None),
    ],
)
def test_parse_yes_no(answer, parsed):
    assert parse_yes_no(answer) is parsed


def test_yes_no_accuracy_counts_unparsed_as_wrong():
    res = yes_no_accuracy(["Yes, running.", "No.", "Hmm.", "yes"], [True, False, True, "No, nothing."])
    assert res.accuracy == pytest.approx(0.5) and res.unparsed == 1


def test_looping_answers_repeat_a_word_3gram():
    from tvau.metrics.text import loops

    assert loops("A person in a red jacket. A person in a red jacket.")
    assert loops("Yes. Yes. Yes. Yes.")
    assert not loops("Yes. Yes. Yes.")  # one 3-gram only
    assert not loops("A person in a red jacket and blue jeans, running.")
    assert not loops("") and not loops("in a person in a")  # "in a" twice is a 2-gram


def test_distinct_share_counts_answers_up_to_case_and_spacing():
    from tvau.metrics.text import distinct_share

    assert distinct_share(["A red car.", "a  red car.", "A blue car.", "A red car."]) == pytest.approx(2 / 4)
    assert distinct_share(["x"] * 5) == pytest.approx(1 / 5)
    assert distinct_share([]) is None
