"""Teacher noise in SFT targets: only the response changes, at the set rates, reproducibly."""

from __future__ import annotations

import pytest

from pebr_lit.demo.synthetic import make_record
from pebr_lit.demo.teacher import (
    TeacherNoise,
    can_slip,
    slipped_answer,
    terse_description,
)
from pebr_lit.format.response import parse_response


@pytest.mark.parametrize("answer,slipped", [("3", "4"), ("0", "1"), ("11", "12")])
def test_a_slipped_count_is_off_by_one(answer, slipped):
    assert slipped_answer(answer) == slipped


@pytest.mark.parametrize("answer", ["yes", "red", "circle"])
def test_only_counts_slip(answer):
    assert not can_slip(answer)
    with pytest.raises(ValueError, match="only counting answers slip"):
        slipped_answer(answer)


def test_terse_description():
    assert terse_description(1) == "There is one shape."
    assert terse_description(4) == "There are four shapes."


def test_rates_are_checked():
    with pytest.raises(ValueError, match="slip must be in"):
        TeacherNoise(slip=1.5)


def test_noise_changes_only_the_response_and_matches_its_rates():
    noise = TeacherNoise(terse=0.3, slip=0.25)
    terse = slip = counts = 0
    n = 400
    for i in range(n):
        clean, _ = make_record(i)
        noisy, _ = make_record(i, teacher=noise)
        for field in ("problem", "answer", "description", "key_words", "images"):
            assert noisy[field] == clean[field], field
        flags = noisy["meta"]["teacher"]
        parsed = parse_response(noisy["response"])
        if flags["terse"]:
            terse += 1
            assert parsed.description == terse_description(len(clean["meta"]["objects"]))
        else:
            assert parsed.description == clean["description"]
        counts += can_slip(clean["answer"])
        if flags["slip"]:
            slip += 1
            assert parsed.answer == slipped_answer(clean["answer"]) != clean["answer"]
        else:
            assert parsed.answer == clean["answer"]
        assert make_record(i, teacher=noise)[0] == noisy  # reproducible
    # Binomial(n, p): 3 standard deviations are ~28 terse records (n=400) and < 22 slips (n = counting answers < 400).
    assert abs(terse - 0.3 * n) < 28 and abs(slip - 0.25 * counts) < 22 and counts > 100
    assert "teacher" not in make_record(0)[0]["meta"]
