"""WeMath's and MathVerse's scoring modes.

WeMath official: verdicts from running the two answer lines of ``load_and_process_data`` in ``We-Math/We-Math``
``evaluation/four_dimensional_metrics.py`` (commit a57a0e83fc40d6ce1448926fe6495e57132e7b80) with pandas on these
cases in a scratch folder outside the repository. MathVerse: the exact match of ``score_answer_s2.py``
``match_answer(quick_match=True)`` (``ZrrSkywalker/MathVerse`` commit 937b090597aeafb8e82b35d310a4bc5b9e2ea29d) and
VLMEvalKit's ``post_check_score`` (``vlmeval/dataset/utils/mathverse.py``, commit e8e78f05), read by hand.
"""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import MathVerse, WeMath
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, BenchmarkItem
from tests.helpers.benchmark_scoring import ANSWER

WEMATH = BenchmarkItem("2steps_1_2steps_1", "q", "B", (), kind=CHOICE, options=("9cm", "12cm", "15cm"))


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("B. 12cm", "B"),  # the first character counts
        ("Answer: B", "B"),
        ("<Answer>: B", "B"),  # "<", ">" and ":" removed
        ("...B", "B"),
        ("Answer:B\nAnswer: C", "C"),  # the text after the last "Answer"
        ("The answer is B", None),  # "answer" in lower case does not split; "T" is no option letter
        ("Answer: (B)", None),  # "(" is not removed
        ("b", None),
        ("12cm", None),  # no option text matching
    ],
)
def test_wemath_official_follows_four_dimensional_metrics(answer, letter):
    scored = WeMath("x", scoring="official").score(ANSWER + answer, WEMATH)
    assert scored["choice"] == letter and scored["correct"] is (letter == "B")


def test_wemath_vlmevalkit_reads_letters_and_option_text():
    assert WeMath("x").score(ANSWER + "The answer is B", WEMATH)["correct"]
    assert WeMath("x").score(ANSWER + "12cm", WEMATH)["correct"]  # can_infer's option-text step


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        # By hand from VLMEvalKit's can_infer (vlmeval/utils/matching_util.py, e8e78f05), which mcq_vanilla_eval
        # calls under exact_matching: one option letter as a word (after '.()[],:;!*#{}' become spaces) among the
        # last four words; else "answer is X" (any case, A-D); else one option text in a short answer.
        ("(B)", "B"),
        ("The answer is b.", "B"),  # no upper-case letter word; its "answer is X" pattern ignores case
        ("The answer is A or B.", "A"),  # two letters counted, then "answer is A": VLMEvalKit reads the hedge as A
        ("A 12cm ruler", "A"),  # "A" is a letter word among the last four: A, not option B's text
        ("It is 12cm long.", "B"),  # no letter; option text inside an answer under twice the options' length
        ("Comparing 9cm with 12cm, the length is 12cm", None),  # two option texts
    ],
)
def test_wemath_vlmevalkit_is_can_infer_exactly(answer, letter):
    scored = WeMath("x").score(ANSWER + answer, WEMATH)
    assert scored["choice"] == letter and scored["correct"] is (letter == "B")


def test_wemath_row_without_split_options_is_read_by_letter():
    unsplit = BenchmarkItem("p_2steps_1", "q", "B", (), kind=CHOICE, options=())
    assert WeMath("x").score(ANSWER + "B", unsplit)["correct"]
    assert not WeMath("x").score(ANSWER + "C", unsplit)["correct"]


@pytest.mark.parametrize("mode", ["vlmevalkit", "official"])
def test_mathverse_exact_match_scores_in_both_modes(mode):
    # A multiple-choice truth that is no letter (testmini has "False"): only the exact match, the scorers' rule
    # part, credits it; the letter matcher does not.
    odd = BenchmarkItem("1", "q", "False", (), kind=CHOICE)
    assert MathVerse("x", scoring=mode).score(ANSWER + "False", odd)["correct"]
    assert not MathVerse("x", scoring=mode).score(ANSWER + "True", odd)["correct"]
    free = BenchmarkItem("2", "q", "2\\sqrt{3}", (), kind=FREE_FORM)
    assert MathVerse("x", scoring=mode).score(ANSWER + " 2\\sqrt{3} ", free)["correct"]
    # Beyond the exact match, the rule-based stand-in for the GPT judgement (same in both modes).
    assert MathVerse("x", scoring=mode).score(ANSWER + "2 \\sqrt{3}", free)["correct"]
    assert not MathVerse("x", scoring=mode).score(ANSWER + "3\\sqrt{2}", free)["correct"]
