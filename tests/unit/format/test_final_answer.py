"""FinalAnswer: which text is a response's final answer under each rule, the letter a final answer names, and
fuzzing (never raises; no section gives None in training)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from pebr_lit.format.final_answer import (
    AUTHORS,
    EVALUATION,
    TRAINING,
    FinalAnswer,
    choice_letter,
    close_up_symbols,
    truth_letter,
)
from pebr_lit.format.response import extract_answer, parse_response
from pebr_lit.rewards.rules import AuthorsRules, PebrLitRules
from tests.helpers.responses import full, texts

SCRIPTS = FinalAnswer("authors", "whole_response")
TWO_SECTIONS = "### The final answer is: 4\n### Step 1: again\n### The final answer is: 3"


@pytest.mark.parametrize(
    ("response", "training", "authors", "evaluation", "scripts"),
    [
        (full(answer="3"), "3", "3", "3", "3"),
        ("  3 ", None, None, "3", "3"),  # no heading: no answer in training; the whole text in evaluation
        ("The answer is 3", None, None, "The answer is 3", "The answer is 3"),
        (TWO_SECTIONS, "3", "4", "3", "4"),  # pebr-lit: the last section; the authors: the first
        ("### The final answer is: 3\nbecause 1 + 2", "3\nbecause 1 + 2", "3", "3\nbecause 1 + 2", "3"),
        ("## the final answer is 3", "3", None, "3", "## the final answer is 3"),  # lenient vs exact heading
        ("### The final answer is:   ", "", "", "", ""),  # an empty section is an empty answer, not a missing one
        ("### The final answer is: 3\n### The final answer is:", "3", "3", "3", "3"),  # a cut-off repeat
        ("### The final answer is: x < 3", "x < 3", "x<3", "x < 3", "x<3"),  # the authors close up '<' first
        (None, None, None, "", ""),
    ],
)
def test_extract_by_rule(response, training, authors, evaluation, scripts) -> None:
    assert TRAINING.extract(response) == training
    assert AUTHORS.extract(response) == authors
    assert EVALUATION.extract(response) == evaluation
    assert SCRIPTS.extract(response) == scripts


def test_extract_answer_is_the_evaluation_rule() -> None:
    for response in (full(answer="(B)"), "  B ", TWO_SECTIONS, None, ""):
        assert extract_answer(response) == (EVALUATION.extract(response) or "")


def test_unknown_rule_or_fallback_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"^FinalAnswer\.rule='pebr': unknown\. Use one of \['pebr_lit', 'authors'\]"):
        FinalAnswer("pebr")
    with pytest.raises(ValueError, match=r"^AuthorsRules\.no_section='whole': unknown\. Use one of \['none', "):
        AuthorsRules(no_section="whole")
    with pytest.raises(ValueError, match=r"^PebrLitRules\.final_answer='author'"):
        PebrLitRules(final_answer="author")
    assert FinalAnswer() == TRAINING and repr(AUTHORS) == "FinalAnswer(rule='authors', no_section='none')"


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(B)", "B"),
        ("[B].", "B"),
        ("**B**", "B"),
        ("$\\boxed{B}$", "B"),
        ("\\boxed{\\text{B}}", "B"),
        ("Option B", "B"),
        ("Answer: B", "B"),
        ("The answer is B", "B"),
        ("The correct answer is (B).", "B"),
        ("B. 42", "B"),
        ("(B) 42", "B"),
        ("b) 42 apples", "B"),
        ("B: 42", "B"),
        ("I choose B here", "B"),  # "I" before a lower-case word is the pronoun
        ("It is option B, 42.", "B"),
        ("A is correct", "A"),
        ("A large red circle", None),  # an article, not option A
        ("A or B", None),  # hedged: two letters
        ("(A) is wrong, (C) is right", None),
        ("B. not A", None),  # leads with B, then names A
        ("B.5", None),  # a number, no letter
        ("42", None),
        ("x = 3", None),  # lower-case x standing alone is a variable, not a letter
        ("\u017f", None),  # long s: "s" to case-insensitive matching, no option letter
        ("The answer is \u212a", None),  # the Kelvin sign
        ("", None),
        (None, None),
    ],
)
def test_choice_letter(answer, letter) -> None:
    assert choice_letter(answer) == letter


@pytest.mark.parametrize(
    ("truth", "letter"), [("B", "B"), ("(b)", "B"), (" C. ", "C"), ("42", None), ("AB", None), ("\u017f", None)]
)
def test_truth_letter(truth, letter) -> None:
    assert truth_letter(truth) == letter


def test_letters_are_read_under_the_pebr_lit_rule_only() -> None:
    assert TRAINING.letter_matches("The answer is B", "B") and EVALUATION.letter_matches("(B) 42", "(B)")
    assert not TRAINING.letter_matches("The answer is B", "C") and not TRAINING.letter_matches(None, "B")
    assert not AUTHORS.letter_matches("The answer is B", "B")  # the authors' grader alone decides


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(texts)
def test_fuzz_extract_never_raises_and_training_has_no_answer_without_a_section(text: str) -> None:
    pebr, authors = TRAINING.extract(text), AUTHORS.extract(text)
    assert (pebr is None) == (parse_response(text).answer is None)
    assert (authors is None) == ("### The final answer is:" not in close_up_symbols(text))
    assert pebr is None or isinstance(pebr, str)
    assert authors is None or "\n" not in authors
    assert isinstance(EVALUATION.extract(text), str) and isinstance(SCRIPTS.extract(text), str)
    if pebr is not None:
        assert EVALUATION.extract(text) == pebr
    for letter in (choice_letter(pebr), choice_letter(text)):
        assert letter is None or (len(letter) == 1 and letter.isupper() and letter.isascii())
    assert not AUTHORS.letter_matches(authors, "B")
