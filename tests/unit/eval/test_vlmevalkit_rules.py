"""VLMEvalKit's rule readers on cases written here; each expected verdict is what the official function returned.

Verdicts came from running VLMEvalKit's own functions (open-compass/VLMEvalKit at commit
e8e78f05f3080fe28154f2130321f17951c3be94) on these exact strings, outside this repository:
``vlmeval/utils/matching_util.py`` ``can_infer`` (False shown here as None) and
``vlmeval/dataset/utils/yorn.py`` ``YOrN_Extraction`` with ``vlmeval/smp/misc.py`` ``process_punctuation``
("Unknown" shown as None).
"""

from __future__ import annotations

import random

import pytest

from pebr_lit.eval.cutoffs import response_counts
from pebr_lit.eval.vlmevalkit_rules import can_infer, choice_dict, process_punctuation, yorn_extraction
from tests.helpers.benchmark_scoring import ANSWER

OPTIONS = {"A": "a red square", "B": "a blue circle", "C": "a green triangle", "D": "nothing"}
LONG_MENTION = (
    "Looking at the figure, the shape in the middle looks round and its colour seems to be blue, like a blue "
    "circle, but the outline"
)  # a response cut off before its answer: longer than twice the options' 48 characters


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("The answer is B.", "B"),
        ("D.", "D"),
        ("Option D: nothing", "D"),
        # choice text instead of a letter: can_infer_text, within its length limit
        ("a blue circle", "B"),
        ("Answer: a blue circle", "B"),
        ("The image shows a blue circle on a white background.", "B"),  # a sentence answer, short enough
        ("A blue circle", "A"),  # the capital article is a token "A": can_infer_option reads option A
        ("the answer is a blue circle", "A"),  # its "answer is X" pattern ignores case and reads "a"
        ("Blue circle", None),  # no option's whole text inside
        # hedged answers naming two options
        ("B or C", None),
        ("It is either B or C, most likely C", None),
        ("a blue circle or a red square", None),
        ("The correct answer is **B**. Because A and C are wrong.", "B"),  # several letters, then "answer is **B**"
        # a letter far from the end is not an answer; a long response's option text earns nothing
        ("B is tempting but looking closer at the figure I think it is wrong overall", None),
        ("B is right, so B", None),  # a repeated letter: its first occurrence must be among the last four tokens
        ("I pick B, so B", "B"),
        (LONG_MENTION, None),
        # LaTeX and markdown: the punctuation .()[],:;!*#{} becomes spaces, "$" and "\\" do not
        ("\\boxed{B}", "B"),
        ("$\\text{(B)}$", "B"),
        ("\\(\\mathrm{B}\\)", "B"),
        ("$B$", None),
        ("**C**", "C"),
        ("the answer is **c**", "C"),
        # letters are upper case only; refusals and "Z" are option Z
        ("b.", None),
        ("b", None),
        ("Cannot determine the answer", "Z"),
        ("None of them, Z", "Z"),
        ("", None),
    ],
)
def test_can_infer_matches_vlmevalkit(answer, expected):
    """Follows VLMEvalKit ``can_infer`` (``can_infer_option`` then ``can_infer_text``)."""
    assert can_infer(answer, OPTIONS) == expected


def test_can_infer_text_limit_is_twice_the_options_length():
    """``can_infer_text``: option text counts in a prediction of at most 2 x the options' total length (48 here)."""
    padded = "a blue circle " + "x" * (96 - len("a blue circle "))
    assert len(padded) == 96 and can_infer(padded, OPTIONS) == "B"
    assert can_infer(padded + "x", OPTIONS) is None


def test_choice_dict_drops_missing_options_as_vlmevalkit_build_choices_does():
    assert choice_dict(("cat", "dog", "", None)) == {"A": "cat", "B": "dog"}
    assert choice_dict({"A": "1", "B": "nan"}) == {"A": "1"}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Yes", "yes"),
        ("yes.", "yes"),
        ("YES!", "yes"),
        ("(yes)", "yes"),
        ("yes-", "yes"),
        ("Yes, the bar is taller.", "yes"),  # a sentence answer
        ("The answer is no", "no"),
        ("It is not. No.", "no"),
        ("No. 1,000 people", "no"),  # "digit,digit" makes every punctuation mark vanish instead of spacing
        ("\\text{No}", "no"),  # LaTeX: "\\", "{" and "}" are punctuation here
        ("$\\boxed{\\text{Yes}}$", "yes"),
        ("No, it says yes", None),  # both words: Unknown
        ("Yes; no doubt", None),
        ("yes/no", None),
        ("no-one would say yes", None),
        ("**YES**", None),  # "*" is not punctuation here: the word is "**yes**"
        ("Nope", None),
        ("I cannot tell", None),
    ],
)
def test_yorn_extraction_matches_vlmevalkit(output, expected):
    """Follows VLMEvalKit ``YOrN_Extraction`` (HallusionBench's rule-based reading)."""
    assert yorn_extraction(output) == expected


def test_process_punctuation_removes_at_most_32_lone_periods():
    """``process_punctuation`` passes ``re.UNICODE`` (32) as ``sub``'s count: the 33rd lone period stays."""
    assert process_punctuation("a." * 33) == "a" * 32 + "a."


def test_response_counts_reports_cut_off_and_headless_responses():
    rows = [
        {"truncated": True, "correct": True, "response": "I see a blue circle and"},
        {"truncated": True, "correct": False, "response": ANSWER[:40]},
        {"truncated": False, "correct": True, "response": ANSWER + "B"},
        {"correct": False, "response": ANSWER + "C"},  # an old answer log without the flag
    ]
    assert response_counts(rows) == {
        "truncated": 0.5,
        "truncated_n": 2,
        "truncated_correct": 1,
        "no_answer_section": 2,
    }


def test_rules_never_raise_on_any_text():
    rng = random.Random(0)
    alphabet = "ABCDZabyesno .,;:()[]{}*#$\\/-_!?\n1,0\u00e9\u4e2d"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        assert can_infer(text, OPTIONS) in (None, "A", "B", "C", "D", "Z")
        assert can_infer(text, {}) in (None, "Z")
        assert yorn_extraction(text) in (None, "yes", "no")
