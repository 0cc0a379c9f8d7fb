"""MathVista scoring modes: official normalize_extracted_answer + safe_equal, and VLMEvalKit's post_check.

Expected verdicts come from running the released functions on these cases in a scratch folder outside the
repository: ``normalize_extracted_answer`` and ``safe_equal`` of ``lupantech/MathVista``
``evaluation/calculate_score.py`` (commit 53d525874bdde205128e6b160b7357a88277d479, with python-Levenshtein),
and ``post_check`` of ``open-compass/VLMEvalKit`` ``vlmeval/dataset/utils/mathvista.py`` (commit
e8e78f05f3080fe28154f2130321f17951c3be94) on the extraction.
"""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import MathVista
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, BenchmarkItem
from pebr_lit.eval.benchmarks.mathvista_rules import edit_distance
from tests.helpers.benchmark_scoring import ANSWER

CHOICES = ("3/11", "8/11", "6/11", "3/5")


def mc_item() -> BenchmarkItem:
    meta = {"question_type": "multi_choice", "answer_type": "text"}
    return BenchmarkItem("1", "q", "B", (), kind=CHOICE, options=CHOICES, meta=meta)  # answer text "8/11"


def free_item(answer: str, answer_type: str, precision: int | None = None) -> BenchmarkItem:
    meta = {"question_type": "free_form", "answer_type": answer_type}
    if precision is not None:
        meta["precision"] = precision
    return BenchmarkItem("2", "q", answer, (), kind=FREE_FORM, meta=meta)


def score(mode: str, answer: str, item: BenchmarkItem) -> bool:
    return MathVista("x", scoring=mode).score(ANSWER + answer, item)["correct"]


# (answer, official verdict, VLMEvalKit verdict); the truth is option B, "8/11".
@pytest.mark.parametrize(
    ("answer", "official", "vlmevalkit"),
    [
        ("B", True, True),
        ("(B)", True, True),
        ("(b) 8/11", True, True),  # official: the bracketed letter, upper-cased
        ("8/11", True, True),
        ("8/12", True, False),  # official: the closest option by edit distance is 8/11
        ("The answer is B", False, True),  # official: no "(B)", so edit distance picks 3/11
        ("3/5 or 8/11", False, False),  # official: closest is 3/11; VLMEvalKit: two option texts
        ("(B) no, (C)", True, False),  # official: the first bracketed letter; VLMEvalKit: two letters
        ("", False, False),
    ],
)
def test_multiple_choice_follows_normalize_extracted_answer_and_post_check(answer, official, vlmevalkit):
    assert score("official", answer, mc_item()) is official
    assert score("vlmevalkit", answer, mc_item()) is vlmevalkit


def test_official_choice_names_the_option_it_normalised_to():
    assert MathVista("x", scoring="official").score(ANSWER + "8/12", mc_item())["choice"] == "B"


@pytest.mark.parametrize(
    ("answer", "official", "vlmevalkit"),
    [
        ("12", True, True),
        (" 12 ", True, True),
        ("12.0", True, False),  # official: int(float(x)); VLMEvalKit: int("12.0") fails
        ("12.7", True, False),  # official truncates
        ("12 cm", False, False),  # a unit makes it unreadable to both
        ("1,2", False, False),
        ("-12", False, False),
    ],
)
def test_integer_answers(answer, official, vlmevalkit):
    assert score("official", answer, free_item("12", "integer")) is official
    assert score("vlmevalkit", answer, free_item("12", "integer")) is vlmevalkit


@pytest.mark.parametrize(
    ("answer", "official", "vlmevalkit"),
    [
        ("1.5", True, True),
        ("1.50", True, True),
        ("1.46", True, False),  # official rounds to precision 1; VLMEvalKit compares exact floats
        ("1.54", True, False),
        ("1.45", False, False),  # Python's round(1.45, 1) is 1.4 (binary float)
        ("1.55", False, False),
        ("3/2", False, False),  # float("3/2") fails in both
        ("1.5 m", False, False),
    ],
)
def test_float_answers_with_precision(answer, official, vlmevalkit):
    assert score("official", answer, free_item("1.5", "float", 1)) is official
    assert score("vlmevalkit", answer, free_item("1.5", "float", 1)) is vlmevalkit


def test_float_answer_written_with_a_trailing_zero():
    # safe_equal compares strings: str(round(0.6, 2)) is "0.6", never "0.60"; VLMEvalKit compares floats.
    for answer in ("0.6", "0.60"):
        assert not score("official", answer, free_item("0.60", "float", 2))
        assert score("vlmevalkit", answer, free_item("0.60", "float", 2))


LISTS = [("[2007, 2008]", True), ("[2007,2008]", False), ("2007, 2008", False)]


@pytest.mark.parametrize(("answer", "official"), LISTS)
def test_list_answers(answer, official):
    assert score("official", answer, free_item("[2007, 2008]", "list")) is official  # exact text
    assert not score("vlmevalkit", answer, free_item("[2007, 2008]", "list"))  # post_check compares str(None)


DISTANCES = [("", "abc", 3), ("kitten", "sitting", 3), ("8/12", "8/11", 1), ("ab", "ba", 2)]


@pytest.mark.parametrize(("a", "b", "d"), DISTANCES)
def test_edit_distance_is_levenshtein(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


@pytest.mark.parametrize(
    "truncated",
    [
        "Let me compare the fractions. 8/11 is about 0.72 and 3/5 is",
        "First, the shaded part is 8 of the 11 equal parts, so the fraction",
    ],
)
def test_truncated_response_without_an_answer_section(truncated):
    # normalize_extracted_answer maps any text to its closest option: a cut-off response still names 8/11
    # (verdicts from the official function); VLMEvalKit's can_infer finds no single option in it.
    assert score("official", "", mc_item()) is False
    assert MathVista("x", scoring="official").score(truncated, mc_item())["correct"]
    assert not MathVista("x").score(truncated, mc_item())["correct"]


@pytest.mark.parametrize(
    ("response", "item", "correct"),
    [
        # By hand from extract_answer.py's --quick_extract (lupantech/MathVista, read at 0a520c46):
        # re.search(r'The answer is "(.*)"\.', response).group(1) becomes the extraction, on the whole response.
        ('Step 1: ... The answer is "12". \n' + ANSWER + "13", free_item("12", "integer"), True),  # not the section
        ('The answer is "(B)".', mc_item(), True),  # "(B)" -> normalize_extracted_answer reads the letter
        # no period: no quick match, so the whole text is the extraction, which int() cannot read (MathVista: GPT)
        ('The answer is "12"', free_item("12", "integer"), False),
        ('The answer is "1" or "2".', free_item("12", "integer"), False),  # greedy: '1" or "2' -> unreadable
    ],
)
def test_official_quick_extract_follows_extract_answer(response, item, correct):
    assert MathVista("x", scoring="official", quick_extract=True).score(response, item)["correct"] is correct


def test_quick_extract_is_off_by_default_and_needs_the_official_mode():
    response = 'The answer is "12". \n' + ANSWER + "13"
    assert not MathVista("x", scoring="official").score(response, free_item("12", "integer"))["correct"]
    with pytest.raises(ValueError, match="quick_extract=True with scoring='vlmevalkit'"):
        MathVista("x", quick_extract=True)
