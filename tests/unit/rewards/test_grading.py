"""Answer grading: hand-picked matches and non-matches, and a grader that never raises or hangs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.rewards.components import accuracy_reward
from pebr_lit.rewards.grading import choice_letter_match, grade, math_verify_grade, normalize
from tests.helpers.responses import full


@pytest.mark.parametrize(
    ("prediction", "truth"),
    [
        ("3", "3.0"),  # mathruler: an integral float is the integer
        ("1/2", "0.5"),  # sympy: 1/2 - 0.5 == 0
        ("\\frac{1}{2}", "0.5"),
        ("0.5", "1/2"),
        (".5", "0.5"),  # a leading '.' is a decimal point
        ("0.5", ".5"),
        ("Red.", "red"),  # case and a trailing period
        ("yes", "Yes."),
        ("\\boxed{4}", "4"),
        ("4", "\\boxed{4}"),
        ("$4$", "4"),
        ("**4**", "4"),  # markdown bold
        ("'B'", "b"),
        ("  two   red\ncircles ", "Two red circles"),  # inner spaces collapse
        ("\\text{red}", "red"),
        ("1,000", "1000"),
        ("(1,2)", "(1, 2)"),
        ("x**2", "x^2"),  # '**' is still power after it is spelled '^'
    ],
)
def test_equivalent_answers_match(prediction: str, truth: str) -> None:
    assert grade(prediction, truth) is True


@pytest.mark.parametrize(
    ("prediction", "truth"),
    [
        ("3", "4"),
        ("red", "blue"),
        ("A", "B"),
        ("", ""),  # an empty prediction is wrong even against an empty truth
        ("", "4"),
        (" .. ", ""),  # only punctuation: empty after normalisation
        (".5", "5"),  # 0.5 is not 5
        ("3.5", "3"),
        ("1/3", "0.33"),
        ("\\boxed{3}", "4"),
    ],
)
def test_different_answers_do_not_match(prediction: str, truth: str) -> None:
    assert grade(prediction, truth) is False


@pytest.mark.parametrize(
    ("prediction", "truth"),
    [(None, "4"), ("4", None), (4, "4"), ("4", 4), (4.0, 4.0), (["4"], "4"), (b"4", "4"), (None, None)],
)
def test_non_string_inputs_are_wrong(prediction: object, truth: object) -> None:
    assert grade(prediction, truth) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  \\boxed{Red  Car} ", "red car"),
        ('"Yes!"', "yes"),
        ("4.", "4"),
        (".5", ".5"),
        ("-.5.", "-.5"),  # the trailing period goes, the decimal point stays
        ("$x$", "x"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_exponent_towers_and_big_factorials_do_not_hang() -> None:
    # sympy would compute 9**(9**9) or 99999999! eagerly and never return; a subprocess with a
    # deadline turns a hang into a failure instead of a frozen test run.
    code = (
        "from pebr_lit.rewards.grading import grade\n"
        "for p in ['9**9**9', '2**99999999', '(99999999)!+1/2']:\n"
        "    assert grade(p, '1/2') is False, p\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


math_text = st.text(alphabet="0123456789.,/+-*^()!{}\\ abcfrxqt$", max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=30), math_text), st.one_of(st.text(max_size=30), math_text))
def test_grade_of_any_text_is_a_bool(prediction: str, truth: str) -> None:
    assert isinstance(grade(prediction, truth), bool)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30).filter(lambda s: normalize(s)))
def test_a_non_empty_answer_matches_itself(text: str) -> None:
    assert grade(text, text) is True


def test_sympy_blowups_are_cut_off_by_the_time_limit():
    # Found by fuzzing: these pass the input guards and make sympy work without end. Run in a
    # subprocess so a regression fails this test instead of hanging the suite.
    import subprocess
    import sys

    code = (
        "import time; from pebr_lit.rewards.grading import grade; t = time.time(); "
        "r = [grade(x, '1/2', time_limit_s=1.0) for x in ('ff(99999999,99999999)', 'rf(9,99999999)')]; "
        "print(r, round(time.time() - t, 1))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result, seconds = out.stdout.rsplit("]", 1)
    assert result == "[False, False" and float(seconds) < 10


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
