"""AnswerLog: answers appended per process, read back by position and qid, settings guarded."""

from __future__ import annotations

import json

import pytest

from pebr_lit.eval.answer_log import AnswerLog

SETTINGS = {
    "policy": {"source": "m"},
    "sampling": {"do_sample": False},
    "instruction": "x",
    "benchmarks": {"a": {"class": "MathVista", "path": "/data/a", "limit": 2}},
}


def row(index: int, qid: str) -> dict:
    return {"index": index, "qid": qid, "correct": True, "response": f"r{qid}"}


def test_rows_of_every_rank_read_back_by_position(tmp_path):
    AnswerLog(tmp_path, ["a", "b"], rank=0).append(0, [row(0, "q0"), row(2, "q2")])
    AnswerLog(tmp_path, ["a", "b"], rank=1).append(0, [row(1, "q1")])
    AnswerLog(tmp_path, ["a", "b"], rank=1).append(1, [row(0, "p0")])
    loaded = AnswerLog(tmp_path, ["a", "b"]).load([["q0", "q1", "q2"], ["p0"]])
    assert sorted(loaded[0]) == [0, 1, 2] and loaded[0][1]["response"] == "rq1" and list(loaded[1]) == [0]


def test_rows_beyond_the_limit_are_left_and_a_cut_last_line_is_dropped(tmp_path):
    log = AnswerLog(tmp_path, ["a"])
    log.append(0, [row(0, "q0"), row(1, "q1"), row(5, "q5")])
    with open(log.dir / "a.rank0.jsonl", "a") as f:
        f.write('{"index": 2, "qid": "q')
    assert sorted(log.load([["q0", "q1", "q2"]])[0]) == [0, 1]
    log.append(0, [row(2, "q2")])  # the resumed run answers it again, on a line of its own
    assert sorted(log.load([["q0", "q1", "q2"]])[0]) == [0, 1, 2]


def test_a_changed_file_or_a_bad_inner_line_is_an_error(tmp_path):
    log = AnswerLog(tmp_path, ["a"])
    log.append(0, [row(0, "q0")])
    with pytest.raises(ValueError, match=r"a.rank0.jsonl:1: answer for qid 'q0' at position 0.*'other'.*file changed"):
        log.load([["other"]])
    (log.dir / "a.rank0.jsonl").write_text("garbage\n" + json.dumps(row(0, "q0")) + "\n")
    with pytest.raises(ValueError, match=r"a.rank0.jsonl:1: not a JSON answer row"):
        log.load([["q0"]])


def test_settings_are_recorded_and_other_settings_refused(tmp_path):
    log = AnswerLog(tmp_path, ["a"])
    log.check_settings(SETTINGS, write=True)
    log.check_settings(SETTINGS, write=False)
    grown = {**SETTINGS, "benchmarks": {"a": {**SETTINGS["benchmarks"]["a"], "limit": 50}}}
    log.check_settings(grown, write=False)  # a larger limit reuses the answers it has
    with pytest.raises(ValueError, match=r"\(sampling differ; see .*settings.json\)"):
        log.check_settings({**SETTINGS, "sampling": {"do_sample": True}}, write=False)
    moved = {**SETTINGS, "benchmarks": {"a": {**SETTINGS["benchmarks"]["a"], "path": "/data/other"}}}
    with pytest.raises(ValueError, match=r"benchmarks\.a differ"):
        log.check_settings(moved, write=False)
