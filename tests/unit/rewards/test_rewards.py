"""Rewards: hand-derived values for every component and both stage totals, and fuzzed input (any text ->
a finite reward in range)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pebr_lit.format.response import render_response
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
from pebr_lit.rewards.grading import choice_letter_match, math_verify_grade
from pebr_lit.rewards.stages import PerceptionReward, ReasoningReward, StageReward

SCENE = "A red square and two blue circles"


def full(description: str = SCENE, answer: str = "3", rationale: str = "Count the shapes.") -> str:
    return render_response(description, rationale, ["Look at each shape.", "There are 3."], answer)


# --- keyword -----------------------------------------------------------------------------------------------


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


# --- format, length, clip ----------------------------------------------------------------------------------


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


# --- accuracy ----------------------------------------------------------------------------------------------


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


def test_accuracy_without_heading_uses_whole_text_and_never_raises() -> None:
    assert accuracy_reward("  3 ", "3") == 1.0
    assert accuracy_reward("The answer is 3", "3") == 0.0  # no heading: the whole text is the prediction
    assert accuracy_reward(None, "3") == 0.0  # type: ignore[arg-type]
    assert accuracy_reward(full(), None) == 0.0  # type: ignore[arg-type]

    def broken(prediction: str, truth: str) -> bool:
        raise RuntimeError("grader crashed")

    assert accuracy_reward(full(), "3", grader=broken) == 0.0


@pytest.mark.parametrize(
    ("prediction", "truth", "expected"),
    [("\\frac{1}{2}", "0.5", True), ("$3$", "3.0", True), ("red", "Red.", True), ("3", "4", False), ("", "", False)],
)
def test_math_verify_grader(prediction: str, truth: str, expected: bool) -> None:
    assert math_verify_grade(prediction, truth) is expected
    assert accuracy_reward(full(answer=prediction), truth, grader=math_verify_grade) == float(expected)


def test_choice_letter_needs_a_letter_truth() -> None:
    assert choice_letter_match("B) 3", "B") is True
    assert choice_letter_match("3", "3") is False  # not a letter: left to the grader


# --- stage combinations ------------------------------------------------------------------------------------


def test_perception_total_by_hand() -> None:
    responses = [full(), "3"]
    out = PerceptionReward()(
        responses,
        answers=["3", "3"],
        key_words=[["red", "circle", "green", "two"], ["red"]],
        num_tokens=[1024, 100],
        clip_similarity=torch.tensor([0.2, 0.9]),
    )
    # Response 0: clip 0.2/0.4 = 0.5; keywords red, circle(s), two of 4 = 0.75; format 1; length 512/1024 = 0.5.
    #   total = 0.4*0.5 + 0.4*0.75 + 0.1*1 + 0.1*0.5 = 0.2 + 0.3 + 0.1 + 0.05 = 0.65 (accuracy 1, weight 0).
    # Response 1: no description -> clip 0 despite s=0.9, keyword 0; format 0; length 1: total 0.1; accuracy 1.
    assert set(out) == {"total", "clip", "keyword", "format", "length", "accuracy"}
    assert out["total"].tolist() == pytest.approx([0.65, 0.1])
    assert out["clip"].tolist() == [0.5, 0.0]
    assert out["keyword"].tolist() == [0.75, 0.0]
    assert out["format"].tolist() == [1.0, 0.0]
    assert out["length"].tolist() == [0.5, 1.0]
    assert out["accuracy"].tolist() == [1.0, 1.0]
    assert out["total"].dtype == torch.float32 and out["total"].shape == (2,)


def test_perception_options_reach_the_components() -> None:
    text = full("The artist considered it.", rationale="Red everywhere.")
    kwargs = dict(answers=["0"], key_words=[["red"]], num_tokens=[10], clip_similarity=[0.1])
    assert PerceptionReward()([text], **kwargs)["keyword"].item() == 0.0
    authors = PerceptionReward(description_only=False, whole_word=False, clip_threshold=0.2, accuracy=0.5)
    out = authors([text], **kwargs)
    # keyword 1 (substring anywhere); clip 0.1/0.2 = 0.5; format 1; length 1; accuracy 0 ("3" vs "0").
    assert out["keyword"].item() == 1.0
    assert out["total"].item() == pytest.approx(0.4 * 0.5 + 0.4 * 1 + 0.1 + 0.1 + 0.5 * 0)


def test_reasoning_total_by_hand() -> None:
    out = ReasoningReward()([full(), "3", full(answer="4")], answers=["3", "3", "3"])
    # full & right: 0.9 + 0.1 = 1.0; bare right answer, no format: 0.9; full & wrong: 0.1.
    assert out["total"].tolist() == pytest.approx([1.0, 0.9, 0.1])
    assert set(out) == {"total", "accuracy", "format"}
    assert not ReasoningReward.needs_clip and PerceptionReward.needs_clip


def test_stage_rewards_check_their_inputs_and_weights() -> None:
    with pytest.raises(ValueError, match="keyword=-0.1"):
        PerceptionReward(keyword=-0.1)
    with pytest.raises(ValueError, match="all weights are 0"):
        ReasoningReward(accuracy=0.0, format=0.0)
    with pytest.raises(ValueError, match="clip_similarity"):
        PerceptionReward()(["x"], answers=["1"], key_words=[[]], num_tokens=[1])
    with pytest.raises(ValueError, match="answers has 1 entries for 2 responses"):
        ReasoningReward()(["x", "y"], answers=["1"])


def test_stage_rewards_are_chosen_by_class_path() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--reward", type=StageReward)
    cfg = parser.parse_object(
        {
            "reward": {
                "class_path": "pebr_lit.rewards.stages.ReasoningReward",
                "init_args": {"accuracy": 0.8, "grader": "pebr_lit.rewards.grading.math_verify_grade"},
            }
        }
    )
    reward = parser.instantiate_classes(cfg).reward
    assert isinstance(reward, ReasoningReward) and reward.grader is math_verify_grade
    assert reward.weights == {"accuracy": 0.8, "format": 0.1}


# --- fuzz: any text -> a finite reward in range --------------------------------------------------------------

HEADINGS = [
    "### Image Description:",
    "### Rationales:",
    "### Let's think step by step.",
    "### Step 1:",
    "### Step 2:",
    "### The final answer is:",
    "###",
    "\n",
    " ",
]
texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(HEADINGS), st.text(max_size=40)), max_size=12).map("".join),
)
similarities = st.one_of(st.floats(-2, 2), st.just(math.nan))
keyword_lists = st.one_of(st.lists(st.text(max_size=12), max_size=6), st.text(max_size=12))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def in_unit(x: float) -> bool:
    return math.isfinite(x) and 0.0 <= x <= 1.0


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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, keyword_lists, st.integers(0, 5000), similarities), max_size=4))
def test_fuzz_stage_totals_within_weight_sum(rows: list[tuple[str, list[str], int, float]]) -> None:
    responses = [r[0] for r in rows]
    perception = PerceptionReward(accuracy=0.2)
    out = perception(
        responses,
        answers=["3"] * len(rows),
        key_words=[r[1] for r in rows],
        num_tokens=[r[2] for r in rows],
        clip_similarity=[r[3] for r in rows],
    )
    reasoning = ReasoningReward()(responses, answers=["3"] * len(rows))
    for result, stage in ((out, perception), (reasoning, ReasoningReward())):
        total = result["total"]
        assert total.shape == (len(rows),) and bool(torch.isfinite(total).all())
        assert bool((total >= 0).all()) and bool((total <= sum(stage.weights.values()) + 1e-6).all())
        for name in stage.weights:
            assert all(in_unit(v) for v in result[name].tolist())
