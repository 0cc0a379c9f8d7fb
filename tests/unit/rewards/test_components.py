"""Reward components: hand-derived keyword, format, length, CLIP and accuracy rewards, and fuzzed input
(any text -> a finite reward in range)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pebr_lit.rewards.components import (
    STOPWORDS,
    accuracy_reward,
    clip_reward_from_similarity,
    clip_text,
    extract_keywords,
    format_reward,
    keyword_reward,
    length_reward,
)
from pebr_lit.rewards.grading import math_verify_grade
from tests.helpers.responses import SCENE, full, in_unit, keyword_lists, texts


@pytest.mark.parametrize(
    ("key_words", "expected"),
    [
        (["red", "circle", "two"], 1.0),  # "circle" matches "circles" (plural allowed on the last word)
        (["red", "square", "triangle", "green"], 0.5),  # 2 of 4
        (["RED", "Blue"], 1.0),  # case-insensitive
        (["red", "Red", " red "], 1.0),  # one distinct keyword, found: 1/1, not 3/3 by luck
        (["red", "Red", "green"], 0.5),  # distinct {red, green}: 1/2 (the authors would count 2/3)
        (["circles"], 1.0),  # a plural keyword matches its own plural form in the text
        (["blue circles"], 1.0),  # several words, matched as a phrase
        (["red square two"], 0.0),  # not contiguous in the text
        ([], 0.0),  # no keywords -> 0 (authors: guard against 0/0)
        (["", "  "], 0.0),  # only empty keywords: same as none
    ],
)
def test_keyword_whole_words_in_description(key_words: list[str], expected: float) -> None:
    assert keyword_reward(full(), key_words) == pytest.approx(expected)


def test_keyword_plural_keyword_does_not_match_singular_text() -> None:
    # The plural suffix is optional on the text side only: keyword "circles" vs text "one circle" -> 0.
    assert keyword_reward(full("one red circle"), ["circles"]) == 0.0
    assert keyword_reward(full("three boxes"), ["box"]) == 1.0  # "es" plural


def test_keyword_whole_word_versus_substring() -> None:
    text = full("The artist considered a bored cat.")
    # Whole-word (default): "red" is neither "considered" nor "bored"; "cat" is a word.
    assert keyword_reward(text, ["red", "cat"]) == 0.5
    # Substring (authors' code): "red" occurs inside "considered": 2/2.
    assert keyword_reward(text, ["red", "cat"], whole_word=False) == 1.0
    # Digits and symbols keep their boundaries: "3.5" is not inside "13.5".
    assert keyword_reward(full("a bar of 13.5 cm"), ["3.5"]) == 0.0
    assert keyword_reward(full("a bar of 3.5 cm"), ["3.5"]) == 1.0


def test_keyword_scope_description_or_whole_response() -> None:
    # "green" only in the rationale, "red" in the description.
    text = full("A red square", rationale="Green is absent.")
    assert keyword_reward(text, ["red", "green"]) == 0.5  # paper: description only
    assert keyword_reward(text, ["red", "green"], description_only=False) == 1.0  # authors: whole response
    # No description section: nothing to search under the paper's scope; the whole text under the authors'.
    assert keyword_reward("red circle", ["red"]) == 0.0
    assert keyword_reward("red circle", ["red"], description_only=False) == 1.0


def test_keyword_spaceless_scripts_match_as_substrings() -> None:
    assert keyword_reward(full("图中有一只黑猫"), ["猫", "狗"]) == 0.5


def test_keyword_bare_string_is_one_keyword() -> None:
    assert keyword_reward(full(), "red") == 1.0  # not the characters r, e, d


def test_extract_keywords_synthetic_description() -> None:
    description = (
        "There are three shapes. From left to right: a large red circle, a small blue square and a small blue triangle."
    )
    # Stopwords gone (there, are, from, to, a, and), repeats gone (small, blue), order of first mention;
    # max_keywords=10 cuts the 11th, "triangle".
    assert extract_keywords(description) == [
        "three",
        "shapes",
        "left",
        "right",
        "large",
        "red",
        "circle",
        "small",
        "blue",
        "square",
    ]
    assert extract_keywords(description, max_keywords=3) == ["three", "shapes", "left"]
    assert extract_keywords("The image shows 3 dogs, a cat's toy and x.") == ["3", "dogs", "cat's", "toy"]
    assert extract_keywords(None) == []  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_keywords"):
        extract_keywords("a", max_keywords=-1)


def test_extracted_keywords_all_match_their_own_description() -> None:
    description = "Two green triangles sit above a yellow star; the star is larger."
    words = extract_keywords(description)
    assert words == ["two", "green", "triangles", "sit", "yellow", "star", "larger"]
    assert keyword_reward(full(description), words) == 1.0


def test_format_complete_and_each_section_missing() -> None:
    assert format_reward(full()) == 1.0
    complete = full()
    lines = complete.split("\n")
    # Lines: description, rationale, think heading, step 1, step 2, answer.
    assert format_reward("\n".join(lines[1:])) == 0.0  # no description
    assert format_reward("\n".join(lines[:1] + lines[2:])) == 0.0  # no rationale
    assert format_reward("\n".join(lines[:3] + lines[5:])) == 0.0  # no steps
    assert format_reward("\n".join(lines[:5])) == 0.0  # no final answer
    assert format_reward("\n".join(lines[:2] + lines[3:])) == 1.0  # the think heading is not required
    # Headings present but the description empty: 0 here (the authors' heading check would give 1).
    assert format_reward(full(description=" ")) == 0.0
    assert format_reward("") == 0.0


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [(0, 1.0), (511, 1.0), (512, 1.0), (513, 512 / 513), (1024, 0.5), (2048, 0.25), (math.inf, 0.0), (math.nan, 0.0)],
)
def test_length(tokens: float, expected: float) -> None:
    assert length_reward(tokens) == pytest.approx(expected)


def test_length_other_target_and_bad_target() -> None:
    assert length_reward(300, target=100) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="target"):
        length_reward(10, target=0)


@pytest.mark.parametrize(
    ("similarity", "expected"),
    [(0.4, 1.0), (0.9, 1.0), (0.2, 0.5), (0.1, 0.25), (0.0, 0.0), (-0.3, 0.0), (math.nan, 0.0), (math.inf, 1.0)],
)
def test_clip_reward(similarity: float, expected: float) -> None:
    assert clip_reward_from_similarity(similarity) == pytest.approx(expected)


def test_clip_reward_threshold_and_text() -> None:
    assert clip_reward_from_similarity(0.25, threshold=0.5) == pytest.approx(0.5)
    assert clip_reward_from_similarity(torch.tensor(0.2)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="threshold"):
        clip_reward_from_similarity(0.3, threshold=0.0)
    assert clip_text(full()) == SCENE
    assert clip_text("no sections here") == ""


@pytest.mark.parametrize(
    ("answer_text", "truth", "expected"),
    [
        ("3", "3.0", 1.0),
        ("3.0", "3", 1.0),
        ("4", "3", 0.0),
        ("red", "Red", 1.0),
        ("(B)", "B", 1.0),
        ("B.", "B", 1.0),
        ("B) 42 apples", "B", 1.0),
        ("B: 42", "B", 1.0),
        ("**B**", "B", 1.0),
        ("B", "(B)", 1.0),
        ("(C)", "B", 0.0),
        ("A large red circle", "A", 0.0),  # an article, not option A
        ("B.5", "B", 0.0),
    ],
)
def test_accuracy_final_answer_section(answer_text: str, truth: str, expected: float) -> None:
    assert accuracy_reward(full(answer=answer_text), truth) == expected


def test_accuracy_without_heading_has_no_answer_and_never_raises() -> None:
    assert accuracy_reward("  3 ", "3") == 0.0  # no heading: no answer, even when the whole text is right
    assert accuracy_reward("  3 ", "3", grader=math_verify_grade) == 0.0
    assert accuracy_reward("The answer is 3", "3") == 0.0
    assert accuracy_reward(None, "3") == 0.0  # type: ignore[arg-type]
    assert accuracy_reward(full(), None) == 0.0  # type: ignore[arg-type]

    def broken(prediction: str, truth: str) -> bool:
        raise RuntimeError("grader crashed")

    assert accuracy_reward(full(), "3", grader=broken) == 0.0


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(texts, keyword_lists, st.booleans(), st.booleans())
def test_fuzz_keyword(text: str, key_words: list[str], description_only: bool, whole_word: bool) -> None:
    assert in_unit(keyword_reward(text, key_words, description_only, whole_word))


@FUZZ
@given(texts, st.integers(0, 30))
def test_fuzz_extract_keywords(text: str, max_keywords: int) -> None:
    words = extract_keywords(text, max_keywords)
    assert len(words) <= max_keywords and len(set(words)) == len(words)
    assert all(w == w.lower() and w not in STOPWORDS for w in words)
    assert extract_keywords(text, max_keywords) == words
    if words:
        assert keyword_reward(text, words, description_only=False) == 1.0  # its own words are all found


@FUZZ
@given(texts)
def test_fuzz_format_and_clip_text(text: str) -> None:
    assert format_reward(text) in (0.0, 1.0)
    assert isinstance(clip_text(text), str)


@FUZZ
@given(st.one_of(st.integers(-10, 10**9), st.floats(allow_nan=True, allow_infinity=True)), st.integers(1, 4096))
def test_fuzz_length(tokens: float, target: int) -> None:
    assert in_unit(length_reward(tokens, target))


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-3, 1.0))
def test_fuzz_clip(similarity: float, threshold: float) -> None:
    assert in_unit(clip_reward_from_similarity(similarity, threshold))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.one_of(st.text(max_size=10), st.sampled_from(["3", "B", "(C)", "1/2", "red"])))
def test_fuzz_accuracy(text: str, truth: str) -> None:
    assert accuracy_reward(text, truth) in (0.0, 1.0)
    assert accuracy_reward(text, truth, grader=math_verify_grade) in (0.0, 1.0)
