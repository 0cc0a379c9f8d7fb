"""Benchmark answer matching: hand-picked cases per convention (the benchmark each comes from is named
beside it) and fuzzed input (any text -> the right type, never an exception)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.eval.answers import (
    extract_choice,
    extract_choices,
    extract_yes_no,
    match_choice,
    match_yes_no,
    normalize_letter,
    option_table,
    options_from_text,
    truth_letters,
)
from pebr_lit.eval.numbers import match_free_form, parse_number
from pebr_lit.format.response import render_response

SHAPES = {"A": "a blue square", "B": "a red circle", "C": "12 cm", "D": "15 cm"}


def pebr(answer: str, description: str = "A red circle and a blue square.") -> str:
    return render_response(description, "Look at the shapes.", ["Compare them."], answer)


# --- normalize_letter / option_table / options_from_text ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(b)", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("[C]", "C"),
        ("\\boxed{C}", "C"),
        ("Option d", "D"),
        ("Answer: a", "A"),
        ("the answer is (B)", "B"),
        ("**B**", "B"),
        ("$B$", "B"),
        ("AB", None),
        ("a red", None),
        ("answerb", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalize_letter(text: object, expected: str | None) -> None:
    assert normalize_letter(text) == expected


def test_option_table_forms() -> None:
    assert option_table(["3", "Red Car", 4.0]) == {"A": "3", "B": "red car", "C": "4.0"}  # MathVista: a list
    assert option_table({"(A)": "x", "b": "y", "10": "z"}) == {"A": "x", "B": "y"}  # keys read as letters
    assert option_table("abcd") == {"A": "", "B": "", "C": "", "D": ""}  # letters only
    assert option_table({"A": float("nan"), "B": None}) == {"A": "", "B": ""}  # pandas' empty cells
    assert option_table(None) == {} and option_table(42) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # MathVerse prints "Choices:" then one "A:text" per line.
        ("Find x.\nChoices:\nA:2\nB:4\nC:6\nD:8", {"A": "2", "B": "4", "C": "6", "D": "8"}),
        # WeMath/LogicVista: inline "A. ... B. ..."; a "C." in the stem starts no run; the line ends the last.
        (
            "Find angle C. Choices: A. 30° B. 60° C. 90°\nAnswer with the letter.",
            {"A": "30°", "B": "60°", "C": "90°"},
        ),
        ("(A) 1 (B) 2", {"A": "1", "B": "2"}),
        ("What is x? (A) only", {}),  # one option is no list
        ("What is x?", {}),
        (None, {}),
    ],
)
def test_options_from_text(question: object, expected: dict[str, str]) -> None:
    assert options_from_text(question) == expected


# --- extract_choice ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # Letter forms (MMMU, MMStar, AI2D, MathVerse, WeMath prompts ask for the letter).
        ("(B)", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("B", "B"),
        ("b", "B"),
        ("(b)", "B"),
        ("**B**", "B"),
        ("Answer: B", "B"),
        ("The answer is B.", "B"),
        ("the answer is (b)", "B"),
        ("\\boxed{B}", "B"),
        ("Option B", "B"),
        ("The answer is b", "B"),
        ("the answer is a", "A"),
        ("the correct option is C", "C"),
        # Option text alone (MathVista's truth is the option text): normalised case and punctuation.
        ("a red circle", "B"),
        ("A Red Circle.", "B"),
        ("12 cm", "C"),
        ("A red circle", "B"),  # the text of B, not the article-looking letter A
        # Letter plus text; the letter wins over contradicting text (VLMEvalKit reads the letter).
        ("B. 12 cm", "B"),
        ("(B) because it is red", "B"),
        ("B. 15 cm", "B"),
        ("B 12 cm", "B"),
        # Answer markers: the last one decides; an option's text after one counts (MMMU, DynaMath).
        ("the answer is a red circle.", "B"),
        ("I think the answer is B because A is too small", "B"),
        ("Answer: B. Option A is wrong.", "B"),
        ("The answer is A because it is blue", "A"),
        # One letter standing alone (VLMEvalKit can_infer_option), one option text inside (can_infer_text).
        ("So (C) it is", "C"),
        ("it is 15 cm long", "D"),
        # Nothing, or more than one: None (MMMU would pick at random; a guess is no answer here).
        ("(A) is wrong and (C) is wrong", None),
        ("A. Because B is too small", None),
        ("", None),
        ("E", None),  # not an option
        ("a circle", None),
        ("A large shape is shown", None),  # "a"/"A" the article, not option A
        ("i think b is right", None),  # a lower-case letter inside a sentence is a word, not a choice
        ("12 cm or 15 cm", None),
    ],
)
def test_extract_choice(response: str, expected: str | None) -> None:
    assert extract_choice(response, SHAPES) == expected


def test_extract_choice_reads_the_final_answer_section() -> None:
    # The description names a "red circle" (option B) and "(A)"; only the answer section counts.
    response = pebr("D", description="(A) is a blue square, beside a red circle.")
    assert extract_choice(response, SHAPES) == "D"


def test_extract_choice_longest_text_and_duplicates() -> None:
    nested = {"A": "red circle", "B": "a red circle"}
    assert extract_choice("it is a red circle", nested) == "B"  # "red circle" lies inside the longer hit
    assert extract_choice("it is the red circle", nested) == "A"
    assert extract_choice("12", ["12", "12"]) is None  # two options with one text: ambiguous
    assert extract_choice("red or blue", ["red", "blue"]) is None


def test_extract_choice_text_before_letter_and_math_equal_texts() -> None:
    # MathVista has options that are letters themselves: the answer "C" is the text of option B.
    assert extract_choice("C", ["B", "C", "D", "E"]) == "B"
    assert extract_choice("0.50", ["1/2", "1/3"]) == "A"  # grade: 0.50 == 1/2
    assert extract_choice("E. coli", ["virus", "fungus", "E. coli", "yeast"]) == "C"  # text, not letter E


def test_extract_choice_options_without_texts() -> None:
    assert extract_choice("The answer is D.", "ABCD") == "D"  # MathVerse: options inside the question
    assert extract_choice("E", "ABCD") is None
    assert extract_choice("F", None) == "F"  # options unknown: any letter
    assert extract_choice("a red circle", None) is None  # and no text to match


# --- match_choice / extract_choices ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "truth", "expected"),
    [
        ("B", "B", True),
        ("(b)", "(B)", True),
        ("a red circle", "b", True),
        ("A", "B", False),
        ("a red circle", "a red circle", True),  # MathVista: the truth is the option's text
        ("B", "15 cm", False),
        ("D", "15 cm", True),
        ("B", "", False),
        ("B", None, False),
        ("B", "Z", False),  # unreadable or foreign truths match nothing
    ],
)
def test_match_choice(response: str, truth: object, expected: bool) -> None:
    assert match_choice(response, SHAPES, truth) is expected


def test_match_choice_mathvista_numbers_as_options() -> None:
    options = ["3", "4", "5"]  # truth "4" is option B's text
    assert truth_letters("4", options) == frozenset("B")
    for response in ("B", "4", pebr("(B)")):
        assert match_choice(response, options, "4") is True
    assert not match_choice("(C)", options, "4")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # LogicVista: several correct letters; all of them and nothing else.
        ("A, C", True),
        ("C and A", True),
        ("(A) (C)", True),
        ("AC", True),
        ("The answers are A and C.", True),
        ("A", False),
        ("A, B, C", False),
        ("C", False),
    ],
)
def test_multi_letter_truth(response: str, expected: bool) -> None:
    assert truth_letters("A, C", "ABCD") == frozenset("AC")
    assert match_choice(response, "ABCD", "A, C") is expected


def test_extract_choices_falls_back_to_one_letter() -> None:
    assert extract_choices("The answer is B.", "ABCD") == frozenset("B")
    assert extract_choices("I think so", "ABCD") == frozenset()


# --- yes/no ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Yes.", "yes"),
        ("yes, it is", "yes"),
        ("NO", "no"),
        ("**Yes**", "yes"),
        ("Answer: No", "no"),
        ("No, there is no yes sign", "no"),  # the first word decides
        ("The answer is yes.", "yes"),  # the word after the last answer marker
        ("There is no dog", "no"),  # only "no" appears as a word (VLMEvalKit's HallusionBench rule)
        ("Maybe yes, maybe no", None),
        ("Yesterday", None),
        ("I can't tell", None),
        ("", None),
        (pebr("Yes", description="There is no cat."), "yes"),  # the answer section, not the description
    ],
)
def test_extract_yes_no(response: str, expected: str | None) -> None:
    assert extract_yes_no(response) == expected


@pytest.mark.parametrize(
    ("response", "truth", "expected"),
    [
        ("Yes.", "1", True),
        ("Yes.", "0", False),
        ("No, it is not", "0", True),  # HallusionBench: "1"/"0"
        ("yes", "Yes", True),
        ("no", "No.", True),
        ("Yes", True, True),
        ("no", 0, True),
        ("no", 0.0, True),
        ("maybe", "1", False),
        ("maybe", "0", False),  # no answer is wrong either way
        ("Yes", "maybe", False),
        ("Yes", None, False),
    ],
)
def test_match_yes_no(response: str, truth: object, expected: bool) -> None:
    assert match_yes_no(response, truth) is expected


# --- free form ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234.5 cm", (Fraction(2469, 2), False, "cm")),
        ("\\frac12", (Fraction(1, 2), False, "")),
        ("-\\frac{3}{4}", (Fraction(-3, 4), False, "")),
        ("3/4", (Fraction(3, 4), False, "")),
        ("50\\%", (50, True, "")),
        ("x = 3", (3, False, "")),
        ("12 cm^2", (12, False, "cm2")),
        ("30^{\\circ}", (30, False, "°")),
        ("5 m/s", (5, False, "m/s")),
        ("−5", (-5, False, "")),
        ("2x", None),
        ("3 pi", None),
        ("1,23", None),
        ("[1, 2]", None),
        ("1/0", None),
        ("3 million", None),
    ],
)
def test_parse_number(text: str, expected: tuple | None) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    ("response", "truth", "kwargs", "expected"),
    [
        # MathVista/MathVerse: units and formatting around a number.
        ("12 cm", "12", {}, True),
        ("12 cm", "12", {"unit_strip": False}, False),
        ("12 cm", "12 cm", {"unit_strip": False}, True),
        ("12 cm", "12 m", {}, True),  # stripped: ignored
        ("12 cm", "12 m", {"unit_strip": False}, False),
        ("1,234,567.5", "1234567.5", {}, True),
        ("$12", "12", {}, True),
        ("x = 3", "3", {}, True),
        ("30°", "30", {}, True),
        ("30^\\circ", "30", {}, True),
        ("−5", "-5", {}, True),
        # MathVista writes percentage answers without "%"; the value reading is accepted too.
        ("50%", "50", {}, True),
        ("50%", "0.5", {}, True),
        ("0.5", "50%", {}, True),
        ("50%", "5", {}, False),
        # Fractions (MathVision, MathVerse).
        ("1/2", "0.5", {}, True),
        ("\\frac{1}{2}", "0.5", {}, True),
        ("2/4", "0.5", {}, True),
        ("1/3", "0.33", {}, False),
        # MathVista's precision: round both sides to that many decimals; NaN (empty cell) = exact.
        ("1.23", "1.2", {"precision": 1}, True),
        ("1.23", "1.2", {}, False),
        ("1.25", "1.3", {"precision": 1.0}, True),
        ("2.675", "2.68", {"precision": 2}, True),
        ("1.23", "1.2", {"precision": float("nan")}, False),
        ("1.23", "1.2", {"precision": "1"}, True),  # a precision read from a text file
        ("12.0", "12", {}, True),
        ("12.7", "12", {}, False),  # MathVista's int() would truncate; no truncation here
        # DynaMath: floats within 0.001, inclusive.
        ("3.143", "3.142", {"tolerance": 0.001}, True),
        ("3.140", "3.142", {"tolerance": 0.001}, False),
        # Answers inside sentences: the last "answer is"/boxed (MMMU's open questions, MathVision).
        ("The answer is 12.", "12", {}, True),
        ("So the area is \\boxed{12} square units", "12", {}, True),
        ("12 apples and 13 pears", "12", {}, False),
        (pebr("12 cm"), "12", {}, True),
        # Not numbers: grading.grade (mathruler).
        ("\\sqrt{12}", "2\\sqrt{3}", {}, True),
        ("[1, 2]", "[1,2]", {}, True),
        ("Red", "red", {}, True),
        ("blue", "red", {}, False),
        ("2x", "2", {}, False),
        ("3 pi", "3", {}, False),
        ("1/0", "0", {}, False),
        ("12", None, {}, False),
        (None, "12", {}, False),
    ],
)
def test_match_free_form(response: object, truth: object, kwargs: dict, expected: bool) -> None:
    assert match_free_form(response, truth, **kwargs) is expected


# --- fuzz: any input -> the right type, no exception -------------------------------------------------------

answer_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="ABCDabcd()[]{}.,:;*$\\ boxedanswerisyesno0123456789/%-", max_size=40),
)
options = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.lists(st.text(max_size=10), max_size=5),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=10), st.floats(), st.none()), max_size=5),
)
anything = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=5), answer_text)


@settings(max_examples=200, deadline=None)
@given(answer_text, options, anything)
def test_choice_functions_never_raise(response: str, opts: object, truth: object) -> None:
    allowed = set(option_table(opts)) or set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # type: ignore[arg-type]
    letter = extract_choice(response, opts)  # type: ignore[arg-type]
    assert letter is None or letter in allowed
    assert extract_choices(response, opts) <= allowed  # type: ignore[arg-type]
    assert isinstance(match_choice(response, opts, truth), bool)  # type: ignore[arg-type]
    assert normalize_letter(response) in {None, *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in options_from_text(response).items())


@settings(max_examples=200, deadline=None)
@given(anything, anything)
def test_yes_no_never_raises(response: object, truth: object) -> None:
    assert extract_yes_no(response) in {None, "yes", "no"}
    assert isinstance(match_yes_no(response, truth), bool)


@settings(max_examples=200, deadline=None)
@given(
    anything,
    anything,
    st.one_of(st.none(), st.floats(), st.integers(-100, 100), st.text(max_size=5)),
    st.booleans(),
    st.one_of(st.none(), st.floats()),
)
def test_free_form_never_raises(
    response: object, truth: object, precision: object, unit_strip: bool, tol: object
) -> None:
    assert isinstance(match_free_form(response, truth, precision, unit_strip, tol), bool)  # type: ignore[arg-type]
    parsed = parse_number(response)
    assert parsed is None or isinstance(parsed.value, Fraction)


@pytest.mark.parametrize(
    "answer",
    [
        "A or B",
        "A and C",
        "The answer is A or B.",
        "The answer is (A) or (C)",
        "Answer: B, C",
        "Answer: C. The answer is A or B.",  # the last marker is the model's last word; an earlier one does not count
        "\\boxed{A or D}",
    ],
)
def test_a_hedge_naming_two_options_is_no_answer(answer) -> None:
    # By hand: two option letters named -> no answer. For the bare hedges this is VLMEvalKit's can_infer_option
    # (two letters counted); after "answer is" VLMEvalKit's own fallback pattern would read the first letter,
    # which pebr-lit's lenient rule deliberately does not (docs/evaluation.md, scoring modes).
    assert extract_choice(answer, SHAPES) is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The answer is A or B or neither.", None),
        ("The answer is B, because C is too small.", "B"),  # a comma then a word: no second option named
        ("The answer is B or (b).", "B"),  # the same letter twice names one option
        ("The answer is A and the rest are wrong", "A"),
    ],
)
def test_a_letter_after_a_marker_is_a_hedge_only_when_another_option_letter_follows(answer, expected) -> None:
    # By hand: a hedge is a second option letter joined to the first by "or"/"and"/","/"/"; a letter later in
    # the sentence is an explanation, and pebr-lit's marker rule reads the letter right after the marker.
    assert extract_choice(answer, SHAPES) == expected
