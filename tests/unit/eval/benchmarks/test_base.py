"""Benchmark base: unique ids and limit, choice / open / yes-no scoring by hand, image decoding errors."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import HallusionBench, MathVista, MMStar
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, YES_NO, Benchmark, BenchmarkItem
from tests.helpers.benchmark_files import mathvista_row, write_parquet
from tests.helpers.benchmark_scoring import ANSWER


def test_duplicate_ids_and_limit(tmp_path):
    rows = [
        mathvista_row("1", "free_form", "2"),
        mathvista_row("2", "free_form", "3"),
        mathvista_row("1", "free_form", "4"),
    ]
    path = str(write_parquet(tmp_path / "m.parquet", rows))
    with pytest.raises(RecordError, match="duplicate question id '1'"):
        MathVista(path).items()
    assert [i.qid for i in MathVista(str(write_parquet(tmp_path / "n.parquet", rows[:2])), limit=1).items()] == ["1"]


CM = BenchmarkItem("q", "p", "B", (), kind=CHOICE, options=("12 cm", "15 cm", "18 cm", "20 cm"))


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("(B)", True),
        ("B.", True),
        ("b.", False),  # can_infer_option reads upper-case letters only (VLMEvalKit matching_util.py)
        ("The answer is B", True),
        ("Option (B)", True),
        ("I would choose B", True),
        ("\\boxed{\\text{B}}", True),
        ("$\\boxed{B}$", True),
        ("**B**", True),
        ("15 cm", True),
        ("15cm", False),  # can_infer_text wants option "15 cm" as a substring
        ("B: 15cm", True),  # option text, spaces normalised
        ("15", False),  # no math equality in can_infer
        ("B. 18 cm", True),  # letter and contradicting text: the letter counts, as in VLMEvalKit
        ("(C) 18 cm", False),
        ("B and C", False),
        ("(A) is wrong, (B) is right", False),  # two letters named: no answer
    ],
)
def test_choice_scoring_by_hand(answer, correct):
    assert MMStar("x").score(ANSWER + answer, CM)["correct"] is correct


def test_choice_scoring_without_the_answer_heading():
    scored = MMStar("x").score("The ruler shows 15 cm, so the answer is B.", CM)
    assert (scored["choice"], scored["correct"]) == ("B", True)


@pytest.mark.parametrize(
    ("answer", "truth", "correct"),
    [
        ("1/2", "0.5", True),
        ("\\dfrac{1}{2}", "0.5", True),
        ("0.5", "1/2", True),
        ("2/4", "1/2", True),
        ("5 cm", "5", True),
        ("5", "5 cm", True),
        ("6 square units", "6", True),
        ("12 m^2", "12", True),
        ("\\boxed{\\frac{3}{4}}", "0.75", True),
        ("The answer is 7 m/s.", "7", True),
        ("17", "7", False),
        ("-5", "5", False),
        ("0.333", "1/3", False),  # exact unless a precision or tolerance says so
    ],
)
def test_open_answer_scoring_by_hand(answer, truth, correct):
    # The shared free-form rule (``Benchmark.score``); MMMU's own open rules are in test_mmmu_scoring.py.
    item = BenchmarkItem("o", "p", truth, (), kind=FREE_FORM)
    assert Benchmark("x").score(ANSWER + answer, item)["correct"] is correct


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("Yes", True),
        ("yes.", True),
        ("**YES**", False),  # YOrN_Extraction keeps "*": the word is "**yes**" (VLMEvalKit yorn.py)
        ("Yes, the bar for 2019 is taller.", True),
        ("The answer is yes", True),
        ("No, it says yes", False),
        ("Nope", False),
        ("I cannot tell", False),
    ],
)
def test_yes_no_scoring_by_hand(answer, correct):
    item = BenchmarkItem("h", "p", "yes", (), kind=YES_NO)
    assert HallusionBench("x").score(ANSWER + answer, item)["correct"] is correct


def test_item_load_images_names_the_image():
    item = BenchmarkItem("q", "p", "a", (b"not an image",), source="f.parquet:row 3")
    with pytest.raises(RecordError, match=r"f.parquet:row 3: field 'images\[0\]': cannot decode image"):
        item.load_images()
