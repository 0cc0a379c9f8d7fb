"""The authors' reward rules (``rewards.authors``): hand-derived values for every component and corner case
of the authors' scripts, the plain mathruler grader, and fuzzed input (any text -> a finite value in range)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pebr_lit.rewards import authors, components
from pebr_lit.rewards.grading import grade, mathruler_grade
from tests.helpers.responses import SCENE, full, keyword_lists, texts

ALL_HEADINGS = "### Image Description: {d} ### Rationales: {r} ### Step 1: {s} ### The final answer is: {a}"


def exact(prediction: str, truth: str) -> bool:
    """A grader that shows exactly which prediction and truth the rule hands over."""
    return prediction == truth


# --------------------------------------------------------------------------------------- normalise
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x < 3", "x<3"),
        ("a / b", "a/b"),
        ("1 /\n 2", "1/2"),  # newlines are whitespace too
        ("< / >", "</>"),
        ("x  >= 2", "x>= 2"),  # only spaces touching < > / go: the one after '=' stays
        ("no symbols  here", "no symbols  here"),
        (None, ""),
    ],
)
def test_normalise_closes_up_spaces_around_angle_brackets_and_slashes(text, expected) -> None:
    assert authors.normalise(text) == expected


# ----------------------------------------------------------------------------------------- keyword
@pytest.mark.parametrize(
    ("response", "key_words", "expected"),
    [
        ("The artist considered it.", ["red"], 1.0),  # a substring: "red" inside "considered"
        (full("A square", rationale="Green is absent."), ["green", "square"], 1.0),  # the rationale counts
        ("no headings at all, a red cat", ["RED", "Cat"], 1.0),  # anywhere, case-insensitive
        ("a red cat", ["red", "Red", "dog"], 2 / 3),  # not deduplicated: red twice found, dog not: 2/3
        ("a red cat", ["red", "dog", "bird", "fish"], 1 / 4),
        ("a red cat", [], 0.0),  # no keywords -> 0
        ("a red cat", [""], 1.0),  # "" is a substring of every text, as in the authors' script
        ("a red cat", [3, "red"], 0.5),  # a non-string keyword is not found (the authors' script would raise)
        ("a red cat", "red", 1.0),  # a bare string is one keyword, not its letters
        ("ratio a / b", ["a/b"], 1.0),  # the response is normalised: "ratio a/b"
        ("ratio a/b", ["a / b"], 0.0),  # the keyword is not: "a / b" is not in "ratio a/b"
        (None, ["red"], 0.0),
    ],
)
def test_keyword(response, key_words, expected) -> None:
    assert authors.keyword_reward(response, key_words) == pytest.approx(expected)


# ------------------------------------------------------------------------------------------ format
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (full(), 1.0),
        ("Intro. " + ALL_HEADINGS.format(d="x", r="y", s="z", a="3"), 1.0),  # headings mid-line count
        (ALL_HEADINGS.format(d="", r="", s="", a=""), 1.0),  # every section empty: still 1
        ("### The final answer is: 3 ### Step 1: ### Rationales: ### Image Description:", 1.0),  # any order
        ("###image description: ###RATIONALES: ###step1: ###the final answer is:", 1.0),  # any case, no spaces
        (ALL_HEADINGS.format(d="x", r="y", s="z", a="3").replace("Step 1:", "Step 2:"), 0.0),  # Step 1 needed
        (ALL_HEADINGS.format(d="x", r="y", s="z", a="3").replace("Step 1:", "Step 10:"), 0.0),  # "1" then ":"
        (ALL_HEADINGS.format(d="x", r="y", s="z", a="3").replace("Image Description", "Image  Description"), 0.0),
        (ALL_HEADINGS.format(d="x", r="y", s="z", a="3").replace("### Rationales:", ""), 0.0),
        ("", 0.0),
        (None, 0.0),
    ],
)
def test_format(response, expected) -> None:
    assert authors.format_reward(response) == expected


def test_format_empty_sections_differ_from_pebr_lit() -> None:
    bare = "\n".join(["### Image Description:", "### Rationales:", "### Step 1:", "### The final answer is:"])
    assert authors.format_reward(bare) == 1.0 and components.format_reward(bare) == 0.0


# ---------------------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("### The final answer is: 3\nbecause 1 + 2 = 3", "3"),  # only the first line
        ("### The final answer is: 4\n### Step 1: no\n### The final answer is: 3", "4"),  # the FIRST heading
        ("### The final answer is:\n\n  3\nmore", "3"),  # the heading's whitespace runs over blank lines
        ("### The final answer is:   ", ""),  # nothing after it: an empty answer, not the whole text
        ("steps ### The final answer is: 5", "5"),  # mid-line
        ("### The final answer is: x < 3", "x<3"),  # normalised first
        ("### The final answer is: 1 /\n 2", "1/2"),  # the newline around '/' goes, so both parts are one line
        ("### the final answer is: 3", "### the final answer is: 3"),  # case-sensitive: absent -> whole text
        ("###  The final answer is: 3", "###  The final answer is: 3"),  # two spaces: absent
        ("  just 3 \n", "just 3"),  # no heading: the whole response, stripped
        (None, ""),
    ],
)
def test_extract_answer(response, expected) -> None:
    assert authors.extract_answer(response) == expected


def test_accuracy_grades_the_first_answer_line_with_the_given_grader() -> None:
    assert authors.accuracy_reward("### The final answer is: 3\n4", "3", exact) == 1.0
    assert authors.accuracy_reward("### The final answer is: x < 3", "x<3", exact) == 1.0
    assert authors.accuracy_reward("### The final answer is: x<3", "x < 3", exact) == 0.0  # the truth is not normalised
    assert authors.accuracy_reward("### The final answer is: 3", " 3 \n", exact) == 1.0  # only stripped
    # First heading "4" is wrong; pebr-lit takes the last answer section, "3".
    restated = full(answer="4") + "\n### The final answer is: 3"
    assert authors.accuracy_reward(restated, "3", grade) == 0.0
    assert components.accuracy_reward(restated, "3", grade) == 1.0


def test_accuracy_has_no_letter_matching() -> None:
    # "B) 42 apples" is option B to pebr-lit's letter rule; to the grader it is neither "B" nor a number.
    response = full(answer="B) 42 apples")
    assert authors.accuracy_reward(response, "B", grade) == 0.0
    assert components.accuracy_reward(response, "B", grade) == 1.0


def test_accuracy_never_raises() -> None:
    def broken(prediction: str, truth: str) -> bool:
        raise RuntimeError("grader crashed")

    assert authors.accuracy_reward(full(), "3", broken) == 0.0
    assert authors.accuracy_reward(full(), None, exact) == 0.0  # type: ignore[arg-type]
    assert authors.accuracy_reward(None, "3", exact) == 0.0


def test_mathruler_grade_is_grade_answer_alone() -> None:
    assert mathruler_grade("1/2", "0.5") and mathruler_grade("3", "3.0")
    # pebr-lit's grade drops a trailing period and markdown bold first; mathruler alone does not.
    assert not mathruler_grade("B.", "B") and grade("B.", "B")
    assert not mathruler_grade("**4**", "4") and grade("**4**", "4")
    # mathruler's own normal forms of two empty strings are equal; grade refuses an empty prediction.
    assert mathruler_grade("", "") and not grade("", "")
    assert not mathruler_grade(None, "3") and not mathruler_grade("3", None)


# ---------------------------------------------------------------------------------------- CLIP text
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (full(), SCENE),
        ("no sections here", ""),
        ("### Image Description: a red square\n### The final answer is: 3", ""),  # no rationale heading: ""
        ("### Image Description:\n### Rationales: why", ""),  # an empty caption
        ("### Image Description: a cat / dog < here ### Rationales: r", "a cat/dog<here"),  # normalised
        ("###image description: A\n### Step 1: B\n###RATIONALES: C", "A\n### Step 1: B"),  # up to the rationale
        ("### Image Description: A ### Rationales: B ### Rationales: C", "A"),  # the first rationale after it
    ],
)
def test_clip_text(response, expected) -> None:
    assert authors.clip_text(response) == expected


def test_clip_text_without_rationale_differs_from_pebr_lit() -> None:
    text = "### Image Description: a red square\n### The final answer is: 3"
    assert authors.clip_text(text) == "" and components.clip_text(text) == "a red square"


# -------------------------------------------------------------------------------------- CLIP reward
@pytest.mark.parametrize(
    ("similarity", "expected"),
    [
        (0.4, 1.0),
        (0.9, 1.0),
        (0.2, 0.5),
        (0.0, 0.0),
        (-0.2, -0.5),  # negative similarity kept: -0.2 / 0.4
        (-1.0, -2.5),  # the lowest: -1 / 0.4
        (-1.0000001, -2.5),  # float rounding below -1 is floored
        (math.nan, 0.0),  # a failed score
        (math.inf, 0.0),
        (-math.inf, 0.0),
    ],
)
def test_clip_reward(similarity, expected) -> None:
    assert authors.clip_reward_from_similarity(similarity) == pytest.approx(expected)


def test_clip_reward_threshold() -> None:
    assert authors.clip_reward_from_similarity(-0.25, threshold=0.5) == pytest.approx(-0.5)
    assert authors.clip_reward_from_similarity(0.3, threshold=0.3) == 1.0
    with pytest.raises(ValueError, match="threshold"):
        authors.clip_reward_from_similarity(0.3, threshold=0.0)


# --------------------------------------------------------------------------------------------- fuzz
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(texts, keyword_lists)
def test_fuzz_keyword(text: str, key_words: list[str]) -> None:
    value = authors.keyword_reward(text, key_words)
    assert math.isfinite(value) and 0.0 <= value <= 1.0


@FUZZ
@given(texts)
def test_fuzz_format_answer_and_caption(text: str) -> None:
    assert authors.format_reward(text) in (0.0, 1.0)
    assert "\n" not in authors.extract_answer(text) or "### The final answer is:" not in authors.normalise(text)
    assert isinstance(authors.clip_text(text), str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.one_of(st.text(max_size=10), st.sampled_from(["3", "B", "(C)", "1/2", "x<3"])))
def test_fuzz_accuracy(text: str, truth: str) -> None:
    assert authors.accuracy_reward(text, truth, grade) in (0.0, 1.0)
    assert authors.accuracy_reward(text, truth, mathruler_grade) in (0.0, 1.0)


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-3, 1.0))
def test_fuzz_clip(similarity: float, threshold: float) -> None:
    value = authors.clip_reward_from_similarity(similarity, threshold)
    assert math.isfinite(value) and -1.0 / threshold <= value <= 1.0
