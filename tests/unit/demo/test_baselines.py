"""The blind baseline, derived by hand on tiny record lists."""

from __future__ import annotations

import pytest

from pebr_lit.data.records import record_from_dict
from pebr_lit.demo.baselines import blind_baseline


def _r(qid: str, problem: str, answer: str, kind: str = "k") -> object:
    return record_from_dict(
        {"qid": qid, "problem": problem, "answer": answer, "images": ["x.png"], "meta": {"kind": kind}}
    )


def test_majority_per_question_then_per_kind():
    train = [
        _r("a", "How many?", "2"),
        _r("b", "How many?", "2"),
        _r("c", "How many?", "3"),
        _r("d", "Colour?", "red", "c"),
    ]
    # "How many?" -> "2" (2 of 3); "Colour?" -> "red"; an unseen text of kind "c" falls back to kind "c" -> "red".
    test = [
        _r("e", "How many?", "2"),
        _r("f", "How many?", "3"),
        _r("g", "Colour?", "red", "c"),
        _r("h", "Shade?", "red", "c"),
    ]
    assert blind_baseline(train, test) == pytest.approx(3 / 4)


def test_empty_inputs_are_an_error():
    with pytest.raises(ValueError):
        blind_baseline([], [_r("a", "q", "1")])
