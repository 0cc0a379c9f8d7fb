"""MathVision scoring: VLMEvalKit's mathv.py ``is_equal`` for free-form answers; MATH-V's own rule refused for now.

Expected verdicts come from running ``is_equal`` of ``open-compass/VLMEvalKit`` ``vlmeval/dataset/utils/mathv.py``
(commit e8e78f05f3080fe28154f2130321f17951c3be94, with latex2sympy2_extended) on these cases in a scratch folder
outside the repository.
"""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import MathVision
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, BenchmarkItem
from pebr_lit.eval.benchmarks.mathvision_rules import arithmetic
from tests.helpers.benchmark_scoring import ANSWER


@pytest.mark.parametrize(
    ("answer", "truth", "correct"),
    [
        ("12", "12", True),
        ("12.0", "12", True),  # as Python arithmetic
        ("1/2", "0.5", True),
        ("\\frac{1}{2}", "0.5", True),  # through latex2sympy
        ("\\dfrac{3}{4}", "0.75", True),
        ("12^\\circ", "12", True),
        ("2^3", "8", True),  # LaTeX power ...
        ("2^3", "1", True),  # ... and Python XOR: both readings count
        (" Yes ", "yes", True),  # lower-cased and stripped
        ("1,000", "1000", True),
        ("3.0000001", "3", True),  # within 1e-6
        ("\\infty", "\\infty", True),  # the same text
        ("12 cm", "12", False),  # a unit: no reading succeeds
        ("\\sqrt{2}", "1.41421356", False),  # SymPy prints sqrt(2), which eval cannot read there
        ("\\frac{\\pi}{2}", "\\pi/2", False),  # pi/2 unreadable too: equal values, scored wrong
        ("x=3", "3", False),
        ("(1, 2)", "(1,2)", False),
        ("0.333", "1/3", False),
        ("10\\%", "10", False),
        ("", "0", False),
    ],
)
def test_free_form_follows_mathv_is_equal(answer, truth, correct):
    item = BenchmarkItem("1", "q", truth, (), kind=FREE_FORM)
    assert MathVision("x").score(ANSWER + answer, item)["correct"] is correct


def test_multiple_choice_by_letter_or_option_text():
    item = BenchmarkItem("1", "q", "B", (), kind=CHOICE, options=("2 cm", "3 cm", "4 cm"))
    assert MathVision("x").score(ANSWER + "B", item)["correct"]
    assert MathVision("x").score(ANSWER + "3 cm", item)["correct"]
    assert not MathVision("x").score(ANSWER + "A", item)["correct"]


def test_model_text_is_never_executed():
    assert arithmetic("2**3 - 1") == 7
    for text in ("__import__('os')", "abs(-2)", "9**9**9", "(1, 2)", "1/0"):
        with pytest.raises(ValueError):
            arithmetic(text)


def test_official_mode_is_refused_until_implemented():
    with pytest.raises(ValueError, match=r"scoring='official'.*\['vlmevalkit'\]"):
        MathVision("x", scoring="official")
