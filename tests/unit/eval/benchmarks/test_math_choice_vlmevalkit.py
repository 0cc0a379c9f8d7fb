"""MathVista, MathVision and MMMU multiple choice under ``scoring: vlmevalkit``: VLMEvalKit's exact ``can_infer``.

VLMEvalKit grades these choice questions with ``can_infer`` (MathVista's and MathVision's ``post_check``, MMMU's
``mcq_vanilla_eval`` under ``exact_matching``; open-compass/VLMEvalKit e8e78f05). Expected verdicts by hand from
``can_infer_option`` / ``can_infer_text`` (vlmeval/utils/matching_util.py) on these strings: one upper-case option
letter as a word among the last four words (after ``.()[],:;!*#{}`` become spaces), else "answer is X", else one
option text inside an answer at most twice the options' total length. ``official`` modes are unchanged.
"""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import MMMU, MathVision, MathVista
from pebr_lit.eval.benchmarks.base import CHOICE, BenchmarkItem
from tests.helpers.benchmark_scoring import ANSWER

OPTIONS = ("3/11", "8/11", "12", "7")
ITEM = BenchmarkItem("q1", "Which?", "B", (), kind=CHOICE, options=OPTIONS, meta={"question_type": "multi_choice"})


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("B", True),
        ("(B) 8/11", True),
        ("The answer is B", True),
        ("8/11", True),  # can_infer_text: the one option text inside a short answer
        ("(b)", False),  # a lower-case letter is no option word, and no "answer is"
        ("Answer: B. Option A is wrong.", False),  # two letters counted; "Answer:" is not "answer is"
        ("B is right because the others are all wrong", False),  # the letter is not among the last four words
        ("I pick 8/11 over 3/11 here for sure", False),  # two option texts inside
    ],
)
@pytest.mark.parametrize("adapter", [MathVista, MathVision, MMMU])
def test_vlmevalkit_mode_reads_choices_with_can_infer(adapter, answer, correct) -> None:
    assert adapter("x").score(ANSWER + answer, ITEM)["correct"] is correct
