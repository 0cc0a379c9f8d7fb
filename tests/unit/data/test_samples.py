"""Sampling results on disk: torn last lines, corruption, rank shards, merging with dedup and conflicts, locks."""

from __future__ import annotations

import json

import pytest

from pebr_lit.data.samples import (
    append_rows,
    done_qids,
    load_samples,
    make_row,
    merge_samples,
    open_shard,
    read_sample_file,
    shard_path,
    shard_paths,
)
from pebr_lit.data.sources import RecordError


def _line(qid: str, k: int = 1, n: int = 2) -> bytes:
    return (json.dumps(make_row(qid, [1.0] * k + [0.0] * (n - k))) + "\n").encode()


def test_make_row_counts_by_hand():
    row = make_row("q", [1.0, 0.0, 1.0, 1.0], responses=["a", "b", "c", "d"], format_ok=[1.0, 1.0, 0.0, 1.0])
    assert row == {
        "qid": "q",
        "n": 4,
        "n_correct": 3,
        "pass_rate": 0.75,
        "correct": [1, 0, 1, 1],
        "responses": ["a", "b", "c", "d"],
        "format": [1, 1, 0, 1],
    }
    assert "responses" not in make_row("q", [0.0])


def test_shard_names_and_discovery_by_rank(tmp_path):
    base = tmp_path / "samples.jsonl"
    assert shard_path(base, 3) == tmp_path / "samples.rank3.jsonl"
    for name in (
        "samples.rank10.jsonl",
        "samples.rank2.jsonl",
        "samples.rankx.jsonl",
        "other.rank0.jsonl",
        "samples.rank1.json",
    ):
        (tmp_path / name).write_text("")
    assert [p.name for p in shard_paths(base)] == ["samples.rank2.jsonl", "samples.rank10.jsonl"]  # numeric order


@pytest.mark.parametrize("tail", [b'{"qid": "c", "n": 2, "n_corr', _line("c")[:-1], b"\x00\x00\x00"])
def test_a_last_line_without_newline_is_torn_even_if_it_parses(tmp_path, tail):
    path = tmp_path / "s.rank0.jsonl"
    path.write_bytes(_line("a") + _line("b") + tail)
    rows, torn = read_sample_file(path)
    assert [r["qid"] for _, r in rows] == ["a", "b"] and torn == len(tail)
    assert done_qids(tmp_path / "s.jsonl") == {"a", "b"}  # "c" will be sampled again


def test_open_shard_cuts_the_torn_tail_and_appends_after_the_complete_rows(tmp_path):
    path = tmp_path / "s.rank0.jsonl"
    before = _line("a") + _line("b")
    path.write_bytes(before + b'{"qid": "c", "n": 2, "n_corr')
    handle, cut = open_shard(path)
    with handle:
        append_rows(handle, [make_row("c", [1.0, 1.0])])
    assert cut == len(b'{"qid": "c", "n": 2, "n_corr')
    data = path.read_bytes()
    assert data.startswith(before)  # rows written before the kill are untouched
    assert [json.loads(line)["qid"] for line in data.splitlines()] == ["a", "b", "c"]


def test_open_shard_of_a_file_without_any_newline_empties_it(tmp_path):
    path = tmp_path / "s.rank0.jsonl"
    path.write_bytes(b'{"qid": "a"')
    handle, cut = open_shard(path)
    handle.close()
    assert path.read_bytes() == b"" and cut == 11


def test_a_complete_line_that_is_not_a_row_is_an_error_not_skipped(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(_line("a") + b"{not json\n" + _line("b"))
    with pytest.raises(RecordError, match=r"s.jsonl:row 2: complete line that is not JSON"):
        load_samples(path)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"qid": "a", "n": 2, "n_correct": 3}, "n_correct"),
        ({"qid": "a", "n": 0, "n_correct": 0}, "n"),
        ({"qid": "", "n": 1, "n_correct": 0}, "qid"),
        ({"qid": "a", "n": 2, "n_correct": 1.0}, "n_correct"),
    ],
)
def test_invalid_rows_name_file_row_and_field(tmp_path, row, field):
    path = tmp_path / "s.jsonl"
    path.write_bytes(_line("ok") + (json.dumps(row) + "\n").encode())
    with pytest.raises(RecordError, match=rf"s.jsonl:row 2: field '{field}'"):
        load_samples(path)


# -------------------------------------------------------------------------------------- merge
def test_merge_folds_all_shards_in_input_order_and_removes_them(tmp_path):
    base = tmp_path / "samples.jsonl"
    base.write_bytes(_line("q1"))  # merged by an earlier, interrupted run
    shard_path(base, 0).write_bytes(_line("q4") + _line("q0"))
    shard_path(base, 1).write_bytes(_line("q3") + b'{"qid": "q2"')  # torn: q2 is not done
    shard_path(base, 3).write_bytes(_line("q5"))  # left by an earlier run with four processes
    assert done_qids(base) == {"q0", "q1", "q3", "q4", "q5"}
    rows = merge_samples(base, order=["q0", "q1", "q2", "q3", "q4", "q5"])
    assert list(rows) == ["q0", "q1", "q3", "q4", "q5"]
    assert [json.loads(line)["qid"] for line in base.read_text().splitlines()] == list(rows)
    assert shard_paths(base) == []


def test_identical_duplicates_count_once(tmp_path):
    # Killed between replacing the results file and deleting the shards: the shard repeats merged rows.
    base = tmp_path / "samples.jsonl"
    base.write_bytes(_line("a") + _line("b"))
    shard_path(base, 0).write_bytes(_line("b"))
    assert list(merge_samples(base)) == ["a", "b"]
    assert base.read_bytes() == _line("a") + _line("b")


def test_the_same_question_with_different_results_is_an_error_naming_both(tmp_path):
    base = tmp_path / "samples.jsonl"
    shard_path(base, 0).write_bytes(_line("a", k=1))
    shard_path(base, 1).write_bytes(_line("b") + _line("a", k=2))
    with pytest.raises(
        RecordError,
        match=r"samples.rank1.jsonl:row 2: field 'qid': qid 'a' was already sampled "
        r"with a different result at .*samples.rank0.jsonl:row 1",
    ):
        merge_samples(base)
    assert len(shard_paths(base)) == 2 and not base.exists()  # nothing merged, nothing lost


def test_a_shard_being_written_is_neither_reopened_nor_merged(tmp_path):
    base = tmp_path / "samples.jsonl"
    handle, _ = open_shard(shard_path(base, 0))
    with handle:
        append_rows(handle, [make_row("a", [1.0])])
        with pytest.raises(RuntimeError, match="another process is writing this shard"):
            open_shard(shard_path(base, 0))
        with pytest.raises(RuntimeError, match="another process is writing this shard"):
            merge_samples(base)
    assert shard_paths(base) == [shard_path(base, 0)]
    assert list(merge_samples(base)) == ["a"]  # closed: now it merges
