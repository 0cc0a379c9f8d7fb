"""Text-only rows (``images: []``): kept, skipped and counted, or refused, as ``text_only`` says; and a
prompt whose image markers do not match its row's images is an error naming the row and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pebr_lit.data.collate import check_prompts, user_messages
from pebr_lit.data.records import load_records
from pebr_lit.data.sources import RecordError
from pebr_lit.data.text_only import SHOWN, TEXT_ONLY_DEFAULT, check_text_only, load_split
from pebr_lit.format.prompts import InstructionPrompt


def row(qid: str, images: list) -> dict:
    return {"qid": qid, "problem": f"question {qid}", "answer": "1", "images": images}


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """Rows 1..6: q0 has an image, q1..q5 are text-only except q3."""
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    rows = [row("q0", ["a.png"]), row("q1", []), row("q2", []), row("q3", ["a.png"]), row("q4", []), row("q5", [])]
    path = tmp_path / "rl.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_keep_loads_text_only_rows_as_records_without_images(pool: Path):
    loaded = load_split([str(pool)], None, "keep")
    assert [r.qid for r in loaded.records] == ["q0", "q1", "q2", "q3", "q4", "q5"]
    assert [len(r.images) for r in loaded.records] == [1, 0, 0, 1, 0, 0]
    assert loaded.text_only == tuple(f"{pool}:row {n}" for n in (2, 3, 5, 6))


def test_skip_drops_counts_and_warns_once_with_the_first_rows(pool: Path):
    with pytest.warns(UserWarning) as caught:
        loaded = load_split([str(pool)], None, "skip", split="fit")
    assert [r.qid for r in loaded.records] == ["q0", "q3"]
    assert len(loaded.text_only) == 4
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("fit: skipped 4 text-only row(s)") and "text_only: skip" in message
    shown = [f"{pool}:row {n}" for n in (2, 3, 5, 6)]
    assert all(s in message for s in shown[:SHOWN]) and shown[SHOWN] not in message and message.endswith(", ...")


def test_limit_counts_kept_records_and_only_rows_read_up_to_them(pool: Path):
    # skip, limit 1: q0 is the first kept record, and no text-only row was read before it.
    assert load_split([str(pool)], None, "skip", limit=1).text_only == ()
    with pytest.warns(UserWarning, match="skipped 2 text-only"):
        loaded = load_split([str(pool)], None, "skip", limit=2)  # q0, (q1, q2 skipped), q3
    assert [r.qid for r in loaded.records] == ["q0", "q3"]
    kept = load_split([str(pool)], None, "keep", limit=3)
    assert [r.qid for r in kept.records] == ["q0", "q1", "q2"] and len(kept.text_only) == 2


def test_error_refuses_the_first_text_only_row_naming_the_option(pool: Path):
    with pytest.raises(RecordError) as info:
        load_split([str(pool)], None, "error")
    message = str(info.value)
    # Every text-only row is named in the one message, not only the first.
    assert message.startswith(f"4 problem(s) in {pool}: 4 bad row(s) of 6 read\n")
    for n in (2, 3, 5, 6):
        assert f"\n  {pool}:row {n}: field 'images': empty list (a text-only row)\n" in message
    assert "text_only: keep" in message and "skip" in message
    with pytest.raises(RecordError, match="text_only"):  # the low-level loader refuses them by default too
        load_records(pool)


def test_the_default_keeps_them_as_the_authors_do():
    assert TEXT_ONLY_DEFAULT == "keep"


def test_an_unknown_choice_names_the_owner_and_the_choices():
    with pytest.raises(ValueError, match=r"^SFTDataModule.text_only='drop': not a choice\. Use one of"):
        check_text_only("SFTDataModule", "drop")


def test_a_marker_mismatch_in_a_row_names_file_row_and_field_problem():
    with pytest.raises(RecordError) as info:
        user_messages(InstructionPrompt(), "<image> vs <image>", 1, "data/rl.jsonl:row 7")
    message = str(info.value)
    assert message.startswith("data/rl.jsonl:row 7: field 'problem': the prompt holds 2 image marker(s) '<image>'")
    assert info.value.field == "problem" and message.endswith(".") and info.value.fix.startswith("Write one")


def test_check_prompts_finds_a_text_only_row_that_marks_an_image(pool: Path, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**row("t", []), "problem": "<image> what?"}) + "\n", encoding="utf-8")
    records = load_split([str(pool), str(bad)], None, "keep").records
    with pytest.raises(RecordError, match=rf"^{bad}:row 1: field 'problem': the prompt holds 1 image marker.*for 0"):
        check_prompts(records, InstructionPrompt())
    check_prompts(records[:-1], InstructionPrompt())  # the others are fine
