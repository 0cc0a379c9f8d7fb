"""MathVision scoring modes: VLMEvalKit's mathv.py ``is_equal``, and MATH-V's own evaluate.py rule.

Expected verdicts come from running, on these cases in a scratch folder outside the repository, ``is_equal`` of
``open-compass/VLMEvalKit`` ``vlmeval/dataset/utils/mathv.py`` (commit e8e78f05f3080fe28154f2130321f17951c3be94, with
latex2sympy2_extended) and the per-answer block of ``mathllm/MATH-V`` ``evaluation/evaluate.py`` with its
``utils.py`` (``find_math_answer``, ``is_equal``; commit a1f5cc3add200c0cd080fad463e500f44ef1fb41, with latex2sympy2).
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


# (response, truth, option text of the truth or "", MATH-V's model_answer, verdict)
OFFICIAL = [
    ("The answer is 12.", "12", "", "12", True),
    ("So the area is 12 cm", "12", "", "sotheareais12cm", False),  # no marker: the whole text, spaces removed
    ("\\boxed{\\frac{1}{2}}", "0.5", "", "\\frac{1}{2}", True),
    ("\\boxed{\\dfrac{3}{4}}", "3/4", "", "\\frac{3}{4}", True),
    ("x = 5", "5", "", "5", True),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", "", "2\\sqrt{2}", True),  # latex2sympy values
    ("The answer is 1.414", "\\sqrt{2}", "", "1.414", True),  # equal after rounding to 2 decimals
    ("The answer is 3.145", "3.14", "", "3.145", False),  # round(3.145, 2) is 3.15
    ("\\boxed{45^\\circ}", "45", "", "45", True),
    ("The answer is 12 km", "12", "", "12", True),  # "km" dropped
    ("\\boxed{10\\%}", "10", "", "10", True),
    ("\\boxed{\\pi}", "3.14", "", "\\pi", True),  # math's pi, as MATH-V's "from math import *"
    ("\\boxed{(1.004, 2)}", "(1,2)", "", "(1.004,2)", False),  # tuples compare as rounded text
    ("The answer is (1, 2)", "(1,2)", "", "(1,2)", True),
    ("\\boxed{1}\\boxed{2}", "2", "", "2", True),  # the last box
    ("The correct answer is (B).", "B", "12", "b", True),
    ("B\nbecause ...", "B", "12", "b", True),
    ("So it is 12.", "B", "12", "12", True),  # the option text
    ("It is C.", "C", "x", "c", True),
    ("I think C. Since ...", "C", "x", "ithinkc.since", False),
    ("", "0", "", "", False),
]


@pytest.mark.parametrize(("response", "truth", "value", "model_answer", "correct"), OFFICIAL)
def test_official_follows_math_v_evaluate(response, truth, value, model_answer, correct):
    # With an option text, the truth is a letter of three options whose text at that letter is ``value``.
    options = tuple(value if "ABC"[i] == truth else f"other {i}" for i in range(3)) if value else ()
    item = BenchmarkItem("1", "q", truth, (), kind=CHOICE if options else FREE_FORM, options=options)
    scored = MathVision("x", scoring="official").score(ANSWER + response, item)
    assert (scored["prediction"], scored["correct"]) == (model_answer, correct)
