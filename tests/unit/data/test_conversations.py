"""Conversations: which chat rows convert to records, and the reason and field named for those that do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pebr_lit.data.warmup_filter import WarmupFilter
from tests.helpers.warmup_rows import chat, target, write_images

USER = {"role": "user", "content": "<image>Q"}
ASSISTANT = {"role": "assistant", "content": target("2")}
SYSTEM = {"role": "system", "content": "You are careful."}


@pytest.fixture
def images(tmp_path: Path) -> Path:
    write_images(tmp_path / "images")
    return tmp_path / "images"


def _drop(row, images: Path):
    result = WarmupFilter().check(row, "f.json:row 3", images)
    return result.reason, result.field


@pytest.mark.parametrize(
    ("row", "reason", "field"),
    [
        ([1, 2], "unknown_schema", None),
        ({"conversations": [{"from": "human", "value": "Q"}], "images": ["ok.png"]}, "unknown_schema", None),
        ({"messages": [USER, ASSISTANT], "problem": "Q", "images": ["ok.png"]}, "unknown_schema", "problem"),
        ({"messages": [USER, ASSISTANT], "images": ["ok.png"], "image": "ok.png"}, "unknown_schema", "images"),
        ({"messages": "hi", "images": ["ok.png"]}, "bad_messages", "messages"),
        (
            {"messages": [USER, {"role": "assistant", "content": [{"type": "text"}]}]},
            "bad_messages",
            "messages[1].content",
        ),
        ({"messages": [{"role": "tool", "content": "x"}, ASSISTANT]}, "bad_messages", "messages[0].role"),
        ({"messages": [ASSISTANT, USER], "images": ["ok.png"]}, "bad_messages", "messages"),
        ({"messages": [USER, SYSTEM, ASSISTANT], "images": ["ok.png"]}, "bad_messages", "messages"),
        ({"messages": [ASSISTANT], "images": ["ok.png"]}, "no_user_turn", "messages"),
        ({"messages": [SYSTEM, USER], "images": ["ok.png"]}, "no_assistant_turn", "messages"),
        ({"messages": [USER, ASSISTANT, USER, ASSISTANT], "images": ["ok.png"]}, "multi_turn", "messages"),
        ({"messages": [SYSTEM, SYSTEM, USER, ASSISTANT], "images": ["ok.png"]}, "multi_turn", "messages"),
        (chat("<image>Q", "   ", ["ok.png"]), "no_response", "messages[1].content"),
        (
            {"qid": "a", "problem": "Q", "answer": "1", "images": ["ok.png"], "response": None},
            "no_response",
            "response",
        ),
        (chat("<image><image>Q", target("2"), ["ok.png"]), "image_marker_mismatch", "messages[0].content"),
        ({"messages": [SYSTEM, USER, ASSISTANT]}, "image_marker_mismatch", "messages[1].content"),
        (chat("<image>Q", "It is 2.", ["ok.png"]), "no_answer", "messages[1].content"),
        (chat("<image>Q", target(""), ["ok.png"]), "no_answer", "messages[1].content"),
        ({"qid": "a", "problem": "Q", "images": ["ok.png"], "response": "It is 1."}, "no_answer", "response"),
        (chat("Q", target("2"), []), "text_only", "images"),
        ({"messages": [{"role": "user", "content": "Q"}, ASSISTANT]}, "text_only", "images"),
        (chat("<image>Q", target("2"), [None]), "invalid_row", "images[0]"),
        (chat("   ", target("2"), ["ok.png"]), "invalid_row", "messages[0].content"),
        (chat("<image>Q", target("2"), ["ok.png"], id=1, qid=2), "invalid_row", "qid"),
        ({"qid": "a", "answer": "1", "images": ["ok.png"], "response": target("1")}, "invalid_row", "problem"),
    ],
)
def test_unconvertible_rows_name_their_reason_and_field(images, row, reason, field):
    assert _drop(row, images) == (reason, field)


def test_a_system_turn_goes_to_meta_and_extra_fields_are_kept(images):
    row = {"messages": [SYSTEM, USER, ASSISTANT], "images": "ok.png", "source": "mmcot", "meta": {"split": "a"}}
    record = WarmupFilter().check(row, "f.json:row 3", images)
    assert record.meta == {"split": "a", "system": "You are careful.", "source": "mmcot"}
    assert (record.qid, record.problem, record.answer) == ("f-3", "<image>Q", "2")


def test_an_answer_field_replaces_a_missing_final_answer(images):
    record = WarmupFilter().check(chat("<image>Q", "It is 7.", ["ok.png"], answer=7), "f.json:row 1", images)
    assert (record.answer, record.response) == ("7", "It is 7.")


def test_the_last_non_empty_final_answer_is_the_answer(images):
    response = f"{target('3')}\n### The final answer is: 4"
    assert WarmupFilter().check(chat("<image>Q", response, ["ok.png"]), "f.json:row 1", images).answer == "4"


def test_markers_may_be_absent_or_one_per_image(images):
    assert WarmupFilter().check(chat("Q", target("2"), ["ok.png", "wide.png"]), "f.json:row 1", images).answer == "2"
    two = chat("<image>A <image>B", target("2"), ["ok.png", "wide.png"])
    assert WarmupFilter().check(two, "f.json:row 1", images).problem == "<image>A <image>B"
