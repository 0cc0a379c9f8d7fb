"""MMMU scoring modes: official eval_utils.py rules and VLMEvalKit's MMMU_preproc + can_infer.

Expected verdicts come from running MMMU's own functions (``MMMU-Benchmark/MMMU`` ``mmmu/utils/eval_utils.py``
at commit bb0b95a945998d91dfef37e969e07d49d1139438) on these cases in a scratch folder outside the repository.
"""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import MMMU
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, BenchmarkItem
from pebr_lit.eval.benchmarks.mmmu_rules import official_choice, open_predictions
from tests.helpers.benchmark_scoring import ANSWER


def open_item(answer: str) -> BenchmarkItem:
    return BenchmarkItem("validation_Math_1", "q", answer, (), kind=FREE_FORM)


def choice_item(options: tuple[str, ...], answer: str) -> BenchmarkItem:
    return BenchmarkItem("validation_Art_1", "q", answer, (), kind=CHOICE, options=options)


# eval_open(gold, parse_open_response(answer)): verdicts printed by the official functions.
@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("The speed is 12 m/s.", "12", True),  # a number pulled out of a sentence
        ("12.0", "12", True),  # numbers compare as floats
        ("So the answer is 1,234.", "1234", True),  # thousands comma dropped
        ("x = 3.14159", "3.14", True),  # "=" in the last line; floats rounded to 2 decimals
        ("The answer is 3.456", "3.46", True),
        ("Therefore the cost is $5.50", "5.5", True),
        ("It is Paris, France.", "Paris", True),  # a text gold inside the text tail
        ("I think the result is 2.5e3", "2500", True),  # scientific notation
        ("The value could be 24 or 25", "['24', '24.0']", True),  # any entry of a list answer
        ("So 4\nThe answer is 5", "4", True),  # every line's tail is a candidate: a hedge scores
        ("final answer: 0.333", "1/3", False),  # a fraction gold is text, never a number
        ("\\frac{1}{2}", "0.5", False),  # LaTeX is not read
        ("This is not 8. It is 9", "8", False),  # the tail after the last "is"
        ("Brown", "brown dwarf", False),  # the gold must sit inside the answer, not the reverse
        ("The answer is -0.5", "-.5", True),
    ],
)
def test_official_open_follows_parse_open_response_and_eval_open(answer, gold, correct):
    assert MMMU("x", scoring="official").score(ANSWER + answer, open_item(gold))["correct"] is correct


def test_open_predictions_are_normalised_as_normalize_str():
    assert sorted(map(str, open_predictions("The speed is 12 m/s."))) == ["12 m/s", "12.0"]
    assert open_predictions("a") == [" a", "a "]  # one character padded, as normalize_str does


# parse_multi_choice_response(answer, letters, index2ans); where MMMU guesses at random, None.
@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("(C)", "C"),
        ("The answer is (A), not (B)", "B"),  # bracketed letters first; the last one named wins
        ("A or B", "B"),
        ("Answer: B", "B"),
        ("I choose the option Rococo for this", "B"),  # option text only in answers over 5 words
        ("It is Gothic, not Baroque at all", "A"),  # ... the text found last wins
        ("Rococo", None),  # too short for text matching: MMMU would pick a random letter
        ("b", None),  # letters are case-sensitive
    ],
)
def test_official_choice_follows_parse_multi_choice_response(answer, letter):
    options = ("Baroque", "Rococo", "Gothic")
    assert official_choice(answer, options) == letter
    scored = MMMU("x", scoring="official").score(ANSWER + answer, choice_item(options, "B"))
    assert scored["choice"] == letter and scored["correct"] is (letter == "B")


# VLMEvalKit's MMMU_preproc: options (gold, "Other Answers"), truth A, graded by can_infer (option letters,
# then option text); these verdicts hold for can_infer at open-compass/VLMEvalKit e8e78f05.
@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("12 m/s", "12", True),  # the gold text inside a short answer
        ("12", "['24', '12']", False),  # option A is the list string as written
        ("B", "12", False),  # "B" names "Other Answers"
        ("A", "12", True),
        ("(a)", "12", False),  # a lower-case letter is no option word for can_infer_option
        ("13", "12", False),
        ("Paris", "paris", True),  # text matching ignores case
    ],
)
def test_vlmevalkit_open_follows_mmmu_preproc(answer, gold, correct):
    assert MMMU("x").score(ANSWER + answer, open_item(gold))["correct"] is correct


def test_modes_differ_on_a_sentence_answer():
    item, answer = open_item("1234"), ANSWER + "So the answer is 1,234."
    assert MMMU("x", scoring="official").score(answer, item)["correct"]  # the number 1234.0 is read
    assert not MMMU("x", scoring="vlmevalkit").score(answer, item)["correct"]  # "1234" is not in the text


def test_unknown_scoring_mode_is_refused():
    with pytest.raises(ValueError, match="scoring='mmmu'"):
        MMMU("x", scoring="mmmu")
