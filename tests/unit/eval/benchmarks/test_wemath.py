"""WeMath adapter: the four-dimensional metric by hand and the JSON layout."""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks import WeMath
from pebr_lit.eval.benchmarks.wemath import four_dimensional, step_accuracies
from tests.helpers.benchmark_files import write_json, write_png
from tests.helpers.benchmark_scoring import ANSWER


def test_wemath_four_dimensional_metric_by_hand():
    def row(pid, key, ok):
        return {"correct": ok, "meta": {"problem_id": pid, "key": key}}

    rows = [
        row("P1", "2steps_1", True),
        row("P1", "2steps_2", True),
        row("P1", "2steps_multi", False),  # IG
        row("P2", "3steps_1", False),
        row("P2", "3steps_2", True),
        row("P2", "3steps_3", True),
        row("P2", "3steps_multi", True),  # RM strict, CM loose
        row("P3", "2steps_1", True),
    ]  # incomplete: left out
    m = four_dimensional(rows)
    assert (m["problems"], m["IG"], m["IK"], m["CM_strict"], m["CM_loose"], m["RM_strict"], m["RM_loose"]) == (
        2,
        1,
        0,
        0,
        1,
        1,
        0,
    )
    assert m["score_strict"] == pytest.approx((2 - 0.5 * 1 - 1 - 0) / 2)  # 0.25
    assert m["score_loose"] == pytest.approx((2 - 0.5 * 1 - 0 - 0) / 2)  # 0.75
    assert (m["RM_strict_rate"], m["RM_loose_rate"], m["IG_rate"]) == (1.0, 0.0, 0.5)
    # accuracy.py (We-Math/We-Math evaluation/accuracy.py, read): S1 over sub-questions of problems with their
    # "_1" row: P1 1,2 + P2 1,2,3 + P3 1 = 5 right of 6; S2 over 2-step composites: P1 wrong; S3: P2 right.
    # A composite without its first sub-question (P4) is not joined in, so S2 stays 0.
    steps = step_accuracies([*rows, row("P4", "2steps_multi", True)])
    assert steps == {"s1_accuracy": pytest.approx(5 / 6), "s2_accuracy": 0.0, "s3_accuracy": 1.0}


def test_wemath_json_layout(tmp_path):
    write_png(tmp_path / "testmini" / "a.png")
    path = write_json(
        tmp_path / "testmini.json",
        [
            {
                "ID": "P1",
                "split": "testmini",
                "knowledge concept": "angles",
                "question": "What is x?",
                "option": "A. 9cm; B. 12cm; C. 15cm; D. 18cm; E. No correct answer",
                "answer": "B",
                "image_path": "testmini/a.png",
                "key": "2steps_1",
                "question number": 1,
                "knowledge concept description": "d",
            }
        ],
    )
    (item,) = WeMath(str(path)).items()
    assert item.qid == "P1_2steps_1" and item.options[-1] == "No correct answer"
    assert item.problem == "Question: What is x?\nOptions:\nA. 9cm\nB. 12cm\nC. 15cm\nD. 18cm\nE. No correct answer"
    assert WeMath(str(path)).score(ANSWER + "12cm", item)["correct"]
