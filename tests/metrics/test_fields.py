"""The field parser (tvau.metrics.fields) on the dialogue templates and on degenerate answers."""

import itertools

import pytest

from tvau.construct.dialogue import phase_b_anomalous
from tvau.metrics.fields import (
    FIELDS,
    AnswerFields,
    describe,
    field_matches,
    parse_answer,
    parse_dialogue,
    reference_fields,
)

LOOKS = [  # (category, colors, clothing)
    ("person", {"upper": "red", "lower": "blue"}, "jacket and jeans"),
    ("person", {"upper": "gray", "lower": "gray"}, "t-shirt and shorts with a bag"),
    ("person", {"body": "pink"}, "hoodie and skirt"),
    ("person", {}, "coat and trousers"),
    ("person", {}, ""),
    ("bicycle", {"body": "green"}, ""),
    ("car", {"body": "white", "roof": "black"}, ""),
    ("bag", {"body": "brown"}, ""),
]
MOVES = [(["left"], "static"), (["top-left", "top", "middle"], "cross-region"), (["bottom", "right", "bottom"], "fast"),
         (["bottom-right", "middle"], "small movement")]
ACTIONS = ["running", "dropped", "riding", "skateboarding", "lying", ""]


@pytest.mark.parametrize(("look", "move", "action"), list(itertools.product(LOOKS, MOVES, ACTIONS)))
def test_reference_answers_read_back_to_their_structured_fields(look, move, action):
    category, colors, clothing = look
    regions, state = move
    _, answers = phase_b_anomalous({"described_category": category, "described_colors": colors,
                                    "described_clothing": clothing, "described_action": action,
                                    "regions": regions, "motion_state": state}, [])
    got = parse_dialogue(answers["target"], answers["trajectory"], f"It moves: its motion state is {answers['motion']}.")
    assert got == reference_fields(category, colors, clothing, action, regions, state)


def test_a_full_answer_reads_into_every_field():
    f = parse_dialogue("A person in a red jacket and blue jeans, running.",
                       "It moves from the top-left to the middle through the top.",
                       "It moves fast: its motion state is fast.")
    assert f == AnswerFields("person", "blue and red", "jacket and jeans", "running", "fast", "top-left", "middle")


@pytest.mark.parametrize("text", ["", None, "Yes.", "Yes. Yes. Yes.", "No. There is no anomaly in the video.",
                                  "A magenta unicorn galloping in the kitchen.", ": : ."])
def test_answers_that_state_nothing_are_empty(text):
    f = parse_answer(text)
    assert f.empty and f == AnswerFields()


def test_a_phrase_repeated_five_times_reads_as_once():
    once = "A person in a red jacket and blue jeans, running."
    assert parse_answer(" ".join([once] * 5)) == parse_answer(once)
    assert parse_answer("It stays in the left. " * 5) == AnswerFields(from_region="left", to_region="left")


def test_degenerate_fragments_keep_what_they_state():
    assert parse_answer(": in a person in a brown trousers.") == AnswerFields("person", "brown", "trousers")
    assert parse_answer("A person in red.") == AnswerFields("person", "red")  # a colour but no clothing
    assert parse_answer("Jeans.") == AnswerFields(clothing="jeans")  # clothing but no colour or category
    assert parse_answer("It moves from the left.") == AnswerFields(from_region="left")


def test_whole_words_and_action_phrases():
    # "riding a bicycle" is an action, not the category; "skateboarding" is not "skateboard"
    assert parse_answer("A person, riding a bicycle.") == AnswerFields("person", action="riding")
    assert parse_answer("Skateboarding.") == AnswerFields(action="skateboarding")
    assert parse_answer("It moves from the top-left to the top.").to_region == "top"
    assert parse_answer("A person, left unattended.").action == "dropped"
    assert parse_answer("It moves slightly: its motion state is small movement.").motion_state == "small movement"
    assert parse_answer("It walks.").motion_state is None  # "walks" is both walking and cross-region


def test_first_statement_wins_but_colours_collect_every_statement():
    f = parse_answer("A red car. A blue bicycle.")
    assert f.category == "car" and f.color == "blue and red"
    assert parse_answer("It moves from the left to the right. It moves from the top to the bottom.") == AnswerFields(
        from_region="left", to_region="right")


def test_field_matches():
    ref = AnswerFields("car", "white", None, "driving", "fast", "left", "right")
    assert field_matches(AnswerFields(), ref) == dict.fromkeys(FIELDS, False)  # unparseable: all wrong
    got = field_matches(AnswerFields("car", "red", None, "driving", None, "left", "right"), ref)
    assert got == {"category": True, "color": False, "clothing": True, "action": True, "motion_state": False,
                   "from_region": True, "to_region": True}


@pytest.mark.parametrize("f", [AnswerFields("person", "blue and red", "jacket and jeans", "running", "fast", "left",
                                            "middle"),
                               AnswerFields("bag", "brown", None, "dropped", "static", "top", "top"),
                               AnswerFields(motion_state="walking"), AnswerFields(to_region="bottom-left")])
def test_describe_reads_back_to_the_same_fields(f):
    s = describe(f)
    assert s[0].isupper() and s.endswith(".") and parse_answer(s) == f


def test_describe_nothing():
    assert describe(AnswerFields()) == ""
