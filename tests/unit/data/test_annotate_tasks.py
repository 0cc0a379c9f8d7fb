"""annotate's pure parts: image data URLs with the resize limit, reading replies, grading warm-up answers, config."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from pebr_lit.data.annotate.__main__ import main
from pebr_lit.data.annotate.images import image_data_url
from pebr_lit.data.annotate.tasks import check_response, load_prompts, parse_keywords, response_messages, user_turn
from pebr_lit.data.images import decode_data_url
from pebr_lit.data.records import write_records
from pebr_lit.format.response import IMAGE_SLOT, INSTRUCTION, render_response


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_small_png_is_sent_as_it_is_and_a_large_one_shrunk(tmp_path):
    small = _png((40, 30))
    assert decode_data_url(image_data_url(small, max_side=64)) == small  # the file's own bytes
    url = image_data_url(_png((400, 100)), max_side=64)
    assert url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(decode_data_url(url))).size == (64, 16)  # aspect kept: 400:100 -> 64:16
    (tmp_path / "a.bmp").write_bytes(b"")
    Image.new("RGB", (10, 10)).save(tmp_path / "a.bmp")  # BMP: not every API reads it, so re-encoded
    assert image_data_url(str(tmp_path / "a.bmp"), max_side=None).startswith("data:image/jpeg;base64,")


def test_parse_keywords_forms():
    assert parse_keywords('["red bus", "two trees"]', 12) == ["red bus", "two trees"]
    assert parse_keywords('```json\n["a", "b", "a"]\n```', 12) == ["a", "b"]  # fenced, deduplicated
    assert parse_keywords("1. red bus\n2. two trees\n- sky", 2) == ["red bus", "two trees"]  # list marks, capped
    with pytest.raises(ValueError):
        parse_keywords("  \n ", 5)


def test_check_response_needs_format_and_the_right_answer():
    good = render_response("Two circles.", "Count.", ["Two."], "2")
    assert check_response(good, "2") is None
    assert check_response(good, "3") == "wrong_answer"
    assert check_response("The answer is 2.", "2") == "bad_format"  # no PeBR sections: no SFT target


def test_response_prompt_places_images_at_marks():
    prompts = load_prompts()
    messages = response_messages(f"Compare {IMAGE_SLOT} and {IMAGE_SLOT}.", ["data:a", "data:b"], prompts)
    kinds = [part["type"] for part in messages[0]["content"]]
    assert kinds == ["text", "image_url", "text", "image_url", "text"]
    assert messages[0]["content"][0]["text"].startswith(INSTRUCTION)
    # no marks: images first, then the text
    assert [p["type"] for p in user_turn("plain", ["data:a"])[0]["content"]] == ["image_url", "text"]


def test_own_prompt_folder_overrides_one_template(tmp_path):
    (tmp_path / "description.txt").write_text("Say what you see. {problem}")
    prompts = load_prompts(tmp_path)
    assert prompts.description == "Say what you see. {problem}" and "{description}" in prompts.keywords


def test_config_file_with_a_teacher_file_and_dry_run(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "0.png")
    write_records([{"qid": "a", "problem": "How many?", "answer": "1", "images": ["0.png"]}], tmp_path / "r.jsonl")
    (tmp_path / "teacher.yaml").write_text("model: m\nbase_url: http://127.0.0.1:9/v1\napi_key_env: null\n")
    config = {
        "records": [str(tmp_path / "r.jsonl")],
        "out": str(tmp_path / "out"),
        "teacher": "teacher.yaml",
        "tasks": ["response"],
        "dry_run": True,
    }
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    main(["--config", str(tmp_path / "run.yaml")])  # port 9 is closed: a dry run must not even probe
    printed = capsys.readouterr().out
    assert "qid a" in printed and INSTRUCTION in printed and "nothing sent" in printed
