"""DynaMath scoring modes: the official opensource_json_eval.py rule and VLMEvalKit's DynaMath_auxeval.

Expected verdicts come from running, in a scratch folder outside the repository, VLMEvalKit's ``DynaMath_auxeval``
(``open-compass/VLMEvalKit`` ``vlmeval/dataset/dynamath.py`` at commit e8e78f05f3080fe28154f2130321f17951c3be94,
its GPT step answering something unparseable) and the per-row verdict block of ``DynaMath/DynaMath``
``evaluation/opensource_json_eval.py`` (commit 598c3c3d732422d29580e9ecf8f2a7928a068fdd) with the answer as the
JSON "short answer".
"""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import DynaMath
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, BenchmarkItem
from tests.helpers.benchmark_scoring import ANSWER

CASES = [
    # (answer_type, truth, answer, official, vlmevalkit)
    ("float", "3.5", "3.5", True, True),
    ("float", "3.5", "3.5004", True, True),  # within 0.001
    ("float", "3.5", "3.502", False, False),
    ("float", "3.5", "3.5 cm", True, True),  # the first word is read
    ("float", "3.5", "The answer is 3.5", False, False),  # ... so a sentence is unreadable
    ("float", "3.5", "7/2", False, False),
    ("float", "6.283", "2π", True, True),  # "2π" is 2 x pi
    ("multiple choice", "B", "B", True, True),
    ("multiple choice", "B", "b", False, True),  # official: case-sensitive
    ("multiple choice", "B", "(B) 12", True, True),  # official: the letter in the first 3 characters
    ("multiple choice", "B", "Option B", False, True),  # VLMEvalKit: the one letter of A-E in "OPTION B"
    ("multiple choice", "B", "The answer is B", False, False),  # VLMEvalKit: "THE" holds an E too
    ("multiple choice", "B", '{"short answer": "B"}', True, True),  # a JSON reply is read as the scorers read it
    ("text", "yes", "yes", True, True),
    ("text", "yes", "Yes", False, True),  # official: case-sensitive
    ("text", "yes", "yes, it is", True, False),  # official: truth inside the answer; VLMEvalKit: the reverse
    ("text", "yes", "y", False, True),
]


@pytest.mark.parametrize(("answer_type", "truth", "answer", "official", "vlmevalkit"), CASES)
def test_dynamath_modes_follow_their_scorers(answer_type, truth, answer, official, vlmevalkit):
    kind = CHOICE if answer_type == "multiple choice" else FREE_FORM
    item = BenchmarkItem("1_v1", "q", truth, (), kind=kind, meta={"answer_type": answer_type, "seed": "1"})
    assert DynaMath("x", scoring="official").score(ANSWER + answer, item)["correct"] is official
    assert DynaMath("x").score(ANSWER + answer, item)["correct"] is vlmevalkit
