"""Paired standard error of the demo's policy comparisons (``pebr_lit.demo.stats``)."""

import json
import math

import pytest

from pebr_lit.demo.stats import paired_difference, read_question_scores


def test_paired_difference_hand_derived():
    # Per-question means: A 0.5, 1, 0; B 1, 1, 0.25 -> d = 0.5, 0, 0.25; mean 0.25;
    # sample variance ((.25)^2 + (.25)^2 + 0) / 2 = 0.0625, sd 0.25; SE = 0.25 / sqrt(3) (derived by hand).
    a = {"q1": [1, 1, 0, 0], "q2": [1, 1, 1, 1], "q3": [0, 0, 0, 0]}
    b = {"q1": [1, 1, 1, 1], "q2": [1, 1, 1, 1], "q3": [1, 0, 0, 0]}
    mean, se, n = paired_difference(a, b)
    assert n == 3
    assert mean == pytest.approx(0.25)
    assert se == pytest.approx(0.25 / math.sqrt(3))


def test_paired_difference_refuses_unmatched_questions():
    with pytest.raises(ValueError, match="'q2'"):
        paired_difference({"q1": [1], "q2": [0]}, {"q1": [1], "q3": [0]})


def test_read_question_scores(tmp_path):
    assert read_question_scores(tmp_path, "accuracy") is None
    answers = tmp_path / "answers"
    answers.mkdir()
    rows = [{"qid": "a", "scores": {"accuracy": [1, 0]}}, {"qid": "b", "scores": {"accuracy": [0, 0]}}]
    (answers / "test.rank0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_question_scores(tmp_path, "accuracy") == {"a": [1.0, 0.0], "b": [0.0, 0.0]}
    assert read_question_scores(tmp_path, "keyword") is None  # not logged at all: the report falls back
    rows.append({"qid": "c", "scores": {"accuracy": [1, 1], "keyword": [0.5, 0.5]}})
    (answers / "test.rank0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"test.rank0.jsonl:1: no scores.keyword"):
        read_question_scores(tmp_path, "keyword")


def test_written_rows_read_back(tmp_path):
    from pebr_lit.modules.question_rows import rows_path, write_question_rows

    path = rows_path(tmp_path, 0)
    write_question_rows(path, ["a", 7], 2, {"accuracy": [1, 0, 0, 0], "reward/keyword": [0.5, 0.5, 1, 0]})
    assert read_question_scores(tmp_path, "reward/keyword") == {"a": [0.5, 0.5], "7": [1.0, 0.0]}
    with pytest.raises(ValueError, match="3 scores, not 2 questions x 2"):
        write_question_rows(path, ["a", "b"], 2, {"accuracy": [1, 0, 0]})
