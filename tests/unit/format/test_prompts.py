"""Prompts: the instruction and Jinja-template prompts, and image markers placing each image where it stands."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest

from pebr_lit.format.prompts import IMAGE_MARKER, InstructionPrompt, TemplatePrompt
from pebr_lit.format.response import IMAGE_SLOT, INSTRUCTION, ImageCountError, build_messages, build_user_text

IMAGE = {"type": "image"}


def text(t: str) -> dict:
    return {"type": "text", "text": t}


def template(tmp_path: Path, body: str, name: str = "format.jinja") -> str:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------------- rendering
def test_instruction_prompt_is_todays_user_text() -> None:
    question = "How many circles?"
    assert InstructionPrompt().text(question) == build_user_text(question) == f"{INSTRUCTION}\n\n{question}"
    assert InstructionPrompt("Be brief.").text(question) == "Be brief.\n\n" + question
    # no marker in the text: the images come first, exactly as build_messages has always put them
    assert InstructionPrompt().messages(question, 2) == build_messages(question, 2)


def test_template_is_stripped_then_rendered_with_the_question_as_content(tmp_path: Path) -> None:
    # Leading/trailing blank lines are the file's, not the prompt's: EasyR1 strips the file text first.
    path = template(tmp_path, "\n\nRules go first.\nQuestion: {{ content }}\n\n")
    prompt = TemplatePrompt(path)
    assert prompt.text("What is 2+2?") == "Rules go first.\nQuestion: What is 2+2?"
    assert prompt.messages("What is 2+2?", 1) == [
        {"role": "user", "content": [IMAGE, text("Rules go first.\nQuestion: What is 2+2?")]}
    ]


def test_template_filters_apply_to_the_question(tmp_path: Path) -> None:
    prompt = TemplatePrompt(template(tmp_path, "Answer this. {{ content | trim }}"))
    assert prompt.text("  padded question \n") == "Answer this. padded question"


def test_template_describes_path_and_a_hash_of_its_bytes(tmp_path: Path) -> None:
    body = "Think first.\n{{ content }}\n"
    path = template(tmp_path, body)
    described = TemplatePrompt(path).describe()
    assert described == {
        "class": "pebr_lit.format.prompts.TemplatePrompt",
        "image_marker": IMAGE_MARKER,
        "template": path,
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
    }
    assert InstructionPrompt("x").describe()["instruction"] == "x"


def test_template_prompt_survives_pickling_for_dataloader_workers(tmp_path: Path) -> None:
    prompt = TemplatePrompt(template(tmp_path, "T: {{ content }}"))
    prompt.text("warm the compiled template")
    copy = pickle.loads(pickle.dumps(prompt))
    assert copy.text("q?") == prompt.text("q?") == "T: q?"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (None, "no such file"),
        ("Only rules, no question.", "never uses {{ content }}"),
        ("{{ question }}", "never uses {{ content }}"),
        ("{% if content %}", "Jinja syntax error at line 1"),
    ],
)
def test_bad_template_is_refused_at_construction_naming_the_file(tmp_path: Path, body: str | None, problem: str):
    path = tmp_path / "bad.jinja"
    if body is not None:
        path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        TemplatePrompt(str(path))
    message = str(info.value)
    assert message.startswith(f"TemplatePrompt.template={str(path)!r}: ") and problem in message


def test_an_empty_marker_is_refused() -> None:
    with pytest.raises(ValueError, match=r"InstructionPrompt.image_marker='': an empty marker"):
        InstructionPrompt(image_marker="")


# --------------------------------------------------------------------------------------- markers
def test_one_marker_puts_the_image_where_it_stands(tmp_path: Path) -> None:
    prompt = TemplatePrompt(template(tmp_path, "Rules.\n{{ content }}"))
    assert prompt.messages("<image>\nWhat is shown?", 1)[0]["content"] == [
        text("Rules.\n"),
        IMAGE,
        text("\nWhat is shown?"),
    ]


def test_two_markers_put_image_k_at_marker_k_and_leave_no_marker_text() -> None:
    content = InstructionPrompt("").messages("Left <image> right <image>", 2)[0]["content"]
    assert content == [text("Left "), IMAGE, text(" right "), IMAGE]  # a marker at the end leaves no empty part
    assert all("<image>" not in part.get("text", "") for part in content)


def test_the_default_instruction_prompt_places_markers_too() -> None:
    content = InstructionPrompt().messages("<image> How many?", 1)[0]["content"]
    assert content == [text(INSTRUCTION + "\n\n"), IMAGE, text(" How many?")]


def test_without_a_marker_setting_the_marker_stays_text() -> None:
    content = InstructionPrompt("", image_marker=None).messages("<image> How many?", 1)[0]["content"]
    assert content == [IMAGE, text("<image> How many?")]


def test_a_custom_marker(tmp_path: Path) -> None:
    prompt = TemplatePrompt(template(tmp_path, "{{ content }}"), image_marker="[IMG]")
    assert prompt.messages("a [IMG] b <image>", 1)[0]["content"] == [text("a "), IMAGE, text(" b <image>")]


def test_benchmark_image_slots_still_place_images_under_a_template(tmp_path: Path) -> None:
    prompt = TemplatePrompt(template(tmp_path, "Rules.\n{{ content }}"))
    assert prompt.messages(f"Compare {IMAGE_SLOT} with {IMAGE_SLOT}.", 2)[0]["content"] == [
        text("Rules.\nCompare "),
        IMAGE,
        text(" with "),
        IMAGE,
        text("."),
    ]


@pytest.mark.parametrize(("question", "images", "counted"), [("<image> and <image>", 1, 2), ("<image>", 0, 1)])
def test_marker_count_must_match_the_images(question: str, images: int, counted: int) -> None:
    with pytest.raises(ImageCountError, match=rf"{counted} image marker\(s\) '<image>' for {images} image"):
        InstructionPrompt().messages(question, images)
