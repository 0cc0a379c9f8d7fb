"""Warm-up filter: one row per rule with exact counts, the authors' rule order, the written records, --strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pebr_lit.data.records import load_records
from pebr_lit.data.sources import RecordError
from pebr_lit.data.warmup_filter import (
    RULES,
    UNCONVERTIBLE,
    WarmupFilter,
    default_qid,
    filter_files,
    image_problem,
    summary_path,
)
from tests.helpers.warmup_rows import ROWS, chat, target, write_images, write_rows


@pytest.fixture
def images(tmp_path: Path) -> Path:
    write_images(tmp_path / "images")
    return tmp_path / "images"


def _check(row, images: Path, rule: WarmupFilter | None = None, source: str = "f.json:row 1"):
    return (rule or WarmupFilter()).check(row, source, images)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_one_row_per_rule_gives_the_exact_counts_and_records(images, tmp_path, suffix):
    data = write_rows(tmp_path / "raw" / f"sft{suffix}")
    out = tmp_path / "out" / "sft.jsonl"
    summary = filter_files([data], out, image_root=images)

    # ROWS: 1 rethink (messages, mixed case), 2 missing, 3 27x40, 4 broken file, 5 kept, 6 kept record,
    # 7 two exchanges, 8 rethink (a record's response, upper case): 8 read, 2 kept, 6 dropped.
    expected = dict.fromkeys((*RULES, *UNCONVERTIBLE), 0)
    expected.update(rethink=2, missing_image=1, small_image=1, unreadable_image=1, multi_turn=1)
    assert (summary["rows"], summary["kept"], summary["dropped"]) == (8, 2, 6)
    assert summary["dropped_by_reason"] == expected
    assert [e["source"] for e in summary["examples"]["rethink"]] == [f"{data}:row 1", f"{data}:row 8"]
    assert summary["examples"]["rethink"][1]["field"] == "response"
    assert summary["examples"]["small_image"][0]["problem"] == "27x40 px is under 28 px"
    assert summary["examples"]["multi_turn"][0]["field"] == "messages"
    assert json.loads(summary_path(out).read_text()) == summary
    assert summary_path(out) == tmp_path / "out" / "sft.summary.json"

    first, second = load_records(out, image_root=images)  # the images stay outside the output folder
    assert first.qid == "sft-5"  # no id: "<file stem>-<row>"
    assert first.problem == "<image>What is 2+3?"  # the marker stays where it stands
    assert first.response == target("5")
    assert first.answer == "5"  # parsed from the response's final-answer section
    assert first.images == (str(images / "ok.png"),)
    assert (first.key_words, first.meta) == ((), {})
    assert second.qid == "rec-1"
    assert second.problem == "How wide is it?"
    assert second.answer == "40"  # a given answer wins over the response's "forty"
    assert second.response == target("forty")
    assert second.images == (str(images / "wide.png"),)
    assert second.key_words == ("dot",)


def test_every_fixture_row_gets_its_declared_reason(images):
    for n, (row, reason) in enumerate(ROWS, start=1):
        result = _check(row, images, source=f"sft.json:row {n}")
        assert getattr(result, "reason", None) == reason, (n, result)


@pytest.mark.parametrize("phrase", ["let me rethink it", "LET ME RETHINK IT", "Let me ReThInK it"])
def test_rethink_matches_in_any_case_as_a_substring(images, phrase):
    row = chat("<image>Q", target("2", f"Hmm, {phrase}.."), ["ok.png"])
    assert _check(row, images).reason == "rethink"


def test_rethink_is_checked_in_the_assistant_turn_only(images):
    row = chat("<image>Let me rethink it: what is shown?", target("2"), ["ok.png"])
    assert _check(row, images).answer == "2"


def test_the_phrase_list_is_an_option_and_can_be_empty(images):
    row = chat("<image>Q", target("2", "Wait, let me rethink it. "), ["ok.png"])
    assert _check(row, images, WarmupFilter(phrases=["wait,"])).problem == "assistant text holds 'wait,'"
    assert _check(row, images, WarmupFilter(phrases=[])).qid == "f-1"
    with pytest.raises(ValueError, match=r"WarmupFilter.phrases=\['  '\]: an empty phrase matches every row"):
        WarmupFilter(phrases=["  "])


def test_rules_run_in_the_authors_order_and_the_first_failing_image_wins(images):
    # rethink before images; per image in order, missing before size.
    both = chat("<image>Q", target("2", "let me rethink it "), ["missing.png"])
    assert _check(both, images).reason == "rethink"
    missing_then_small = chat("<image><image>Q", target("2"), ["missing.png", "small.png"])
    assert (_check(missing_then_small, images).reason, _check(missing_then_small, images).field) == (
        "missing_image",
        "images[0]",
    )
    ok_then_small = chat("<image><image>Q", target("2"), ["ok.png", "small.png"])
    assert (_check(ok_then_small, images).reason, _check(ok_then_small, images).field) == ("small_image", "images[1]")
    # An image rule drops a row even when it could not have been converted (two exchanges here).
    clean = chat("<image>Q", target("2"), ["small.png"])
    multi = {"messages": [*clean["messages"], *clean["messages"]], "images": ["small.png"]}
    assert _check(multi, images).reason == "small_image"


def test_min_image_side_is_strict_below_and_an_option(images):
    assert image_problem(str(images / "ok.png"), 28) is None  # 28x28: not under 28
    assert image_problem(str(images / "wide.png"), 29) == ("small_image", "40x28 px is under 29 px")
    assert image_problem(str(images / "small.png"), 27) is None
    row = chat("<image>Q", target("2"), ["small.png"])
    assert _check(row, images, WarmupFilter(min_image_side=27)).images == (str(images / "small.png"),)
    with pytest.raises(ValueError, match=r"WarmupFilter.min_image_side=-1: must be >= 0"):
        WarmupFilter(min_image_side=-1)


def test_images_are_checked_from_bytes_and_directories_count_as_unreadable(images, tmp_path):
    (tmp_path / "images" / "folder.png").mkdir()
    assert image_problem(str(images / "folder.png"), 28)[0] == "unreadable_image"
    assert image_problem((images / "small.png").read_bytes(), 28) == ("small_image", "27x40 px is under 28 px")
    assert image_problem(b"junk", 28)[0] == "unreadable_image"
    assert image_problem(Image.new("RGB", (28, 30)), 28) is None


def test_strict_raises_a_record_error_naming_file_row_and_field(images, tmp_path):
    data = write_rows(tmp_path / "sft.json")
    out = tmp_path / "out.jsonl"
    with pytest.raises(RecordError) as caught:
        filter_files([data], out, WarmupFilter(strict=True), image_root=images)
    assert str(caught.value).startswith(f"{data}:row 7: field 'messages': 2 user, 2 assistant and 0 system turns. ")
    assert not out.exists() and not summary_path(out).exists()  # nothing half-written


def test_strict_still_drops_and_counts_rows_that_fail_a_rule(images, tmp_path):
    data = write_rows(tmp_path / "sft.json", [row for row, reason in ROWS if reason not in UNCONVERTIBLE])
    summary = filter_files([data], tmp_path / "out.jsonl", WarmupFilter(strict=True), image_root=images)
    assert (summary["rows"], summary["kept"], summary["dropped"]) == (7, 2, 5)


def test_duplicate_ids_are_counted_after_the_first_kept_row(images, tmp_path):
    row = chat("<image>Q", target("2"), ["ok.png"], id=7)
    data = write_rows(tmp_path / "sft.jsonl", [row, row, {**row, "id": 8}])
    summary = filter_files([data], tmp_path / "out.jsonl", image_root=images)
    assert summary["dropped_by_reason"]["duplicate_qid"] == 1
    assert summary["examples"]["duplicate_qid"][0]["problem"] == f"duplicate qid '7' (first at {data}:row 1)"
    assert [r.qid for r in load_records(tmp_path / "out.jsonl", image_root=images)] == ["7", "8"]
    with pytest.raises(RecordError, match=r"row 2: field 'qid': duplicate qid '7'"):
        filter_files([data], tmp_path / "out.jsonl", WarmupFilter(strict=True), image_root=images)


def test_image_paths_default_to_the_input_folder_and_stay_relative_inside_the_output_folder(tmp_path):
    write_images(tmp_path / "images")
    data = write_rows(tmp_path / "sft.json", [chat("<image>Q", target("2"), ["images/ok.png"])])
    out = tmp_path / "sft.filtered.jsonl"
    filter_files([data], out)
    assert json.loads(out.read_text())["images"] == ["images/ok.png"]
    assert load_records(out)[0].images == (str(tmp_path / "images" / "ok.png"),)
    assert summary_path(out).name == "sft.filtered.summary.json"


def test_default_qid_is_the_file_stem_and_row():
    assert default_qid("/data/mix/sft_cot.jsonl:row 12") == "sft_cot-12"
    assert default_qid("<dict>") == "<dict>"
