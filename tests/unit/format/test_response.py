"""PeBR format: render -> parse round trip, tolerated heading drift, and a parser that never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.format.response import (
    ANSWER_HEADING,
    DESCRIPTION_HEADING,
    IMAGE_SLOT,
    INSTRUCTION,
    RATIONALE_HEADING,
    SECTIONS,
    THINK_HEADING,
    ParsedResponse,
    build_messages,
    build_user_text,
    extract_answer,
    parse_response,
    render_response,
)
from tests.helpers.responses import any_text, texts

# The canonical text written out by hand, line for line as render_response must produce it.
CANONICAL = (
    "### Image Description: Two red circles and a blue square.\n"
    "### Rationales: The question asks about red shapes.\n"
    "### Let's think step by step.\n"
    "### Step 1: The red shapes are the two circles.\n"
    "### Step 2: So there are 2.\n"
    "### The final answer is: 2"
)


def canonical_lines() -> list[str]:
    return CANONICAL.split("\n")


def check_invariants(parsed: ParsedResponse) -> None:
    """What must hold for any input: missing is SECTIONS' subsequence and agrees with the fields."""
    assert isinstance(parsed, ParsedResponse)
    assert list(parsed.missing) == [name for name in SECTIONS if name in parsed.missing]
    assert parsed.is_complete == (not parsed.missing)
    assert ("description" in parsed.missing) == (not parsed.description)
    assert ("rationale" in parsed.missing) == (not parsed.rationale)
    assert ("steps" in parsed.missing) == (not any(parsed.steps))
    assert ("answer" in parsed.missing) == (not parsed.answer)
    assert isinstance(parsed.steps, tuple)


# ------------------------------------------------------------------------------ render and parse
def test_render_writes_the_canonical_text() -> None:
    text = render_response(
        "  Two red circles and a blue square. ",
        "The question asks about red shapes.\n",
        ["The red shapes are the two circles.", " So there are 2."],
        " 2 ",
    )
    assert text == CANONICAL


def test_canonical_text_parses_into_every_section() -> None:
    parsed = parse_response(CANONICAL)
    assert parsed.description == "Two red circles and a blue square."
    assert parsed.rationale == "The question asks about red shapes."
    assert parsed.steps == ("The red shapes are the two circles.", "So there are 2.")
    assert parsed.answer == "2"
    assert parsed.missing == ()
    assert parsed.is_complete


# Section text without '#' cannot contain a heading (every heading starts with '#'), and has a
# non-space character so that it is not empty after the renderer's strip().
section_text = st.text(st.characters(exclude_characters="#", exclude_categories=("Cs",)), min_size=1).filter(
    lambda s: s.strip()
)


@settings(max_examples=150, deadline=None)
@given(section_text, section_text, st.lists(section_text, min_size=1, max_size=5), section_text)
def test_render_then_parse_round_trips(description: str, rationale: str, steps: list[str], answer: str) -> None:
    parsed = parse_response(render_response(description, rationale, steps, answer))
    assert parsed.description == description.strip()
    assert parsed.rationale == rationale.strip()
    assert parsed.steps == tuple(step.strip() for step in steps)
    assert parsed.answer == answer.strip()
    assert parsed.is_complete


# ------------------------------------------------------------------------------ missing sections
@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ({0}, ("description",)),
        ({1}, ("rationale",)),
        ({3, 4}, ("steps",)),  # the think heading alone is not reasoning
        ({5}, ("answer",)),
        ({0, 5}, ("description", "answer")),
        ({1, 3, 4}, ("rationale", "steps")),
        ({0, 1, 2, 3, 4, 5}, SECTIONS),
    ],
)
def test_each_absent_section_is_reported_in_format_order(drop: set[int], missing: tuple[str, ...]) -> None:
    text = "\n".join(line for i, line in enumerate(canonical_lines()) if i not in drop)
    parsed = parse_response(text)
    assert parsed.missing == missing
    assert not parsed.is_complete
    check_invariants(parsed)


@pytest.mark.parametrize(("index", "name"), [(0, "description"), (1, "rationale"), (3, "steps"), (5, "answer")])
def test_a_heading_with_an_empty_body_counts_as_missing(index: int, name: str) -> None:
    lines = canonical_lines()
    if name == "steps":
        lines[3], lines[4] = "### Step 1:", "### Step 2:   "
    else:
        lines[index] = lines[index].split(":")[0] + ":  "
    parsed = parse_response("\n".join(lines))
    assert parsed.missing == (name,)


def test_one_non_empty_step_is_enough() -> None:
    parsed = parse_response("### Step 1:\n### Step 2: it is 3")
    assert parsed.steps == ("", "it is 3")
    assert "steps" not in parsed.missing


# ------------------------------------------------------------------------------ heading drift
# The parser's contract (comment above _HEADING_RE): case-insensitive, one to six '#'s, any spaces
# around the name and the colon. It does not accept reworded headings or lines without any '#'.
@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("###image description: a", "description", "a"),
        ("## Image   Description : a", "description", "a"),
        ("# IMAGE DESCRIPTION a", "description", "a"),
        ("   ###### image description:a", "description", "a"),
        ("### Rationale: b", "rationale", "b"),
        ("##rationales : b", "rationale", "b"),
        ("## Step 2: c", "steps", ("c",)),
        ("### step2 c", "steps", ("c",)),
        ("#STEP 10: c", "steps", ("c",)),
        ("### THE FINAL ANSWER IS 4", "answer", "4"),
        ("##  the  final answer is:4", "answer", "4"),
        ("### The final answer is: \n\n  4  \n", "answer", "4"),
    ],
)
def test_drifted_headings_are_recognised(text: str, field: str, value: object) -> None:
    assert getattr(parse_response(text), field) == value


@pytest.mark.parametrize(
    "text",
    [
        "### Final answer is: 4",  # reworded: 'The' dropped
        "### Final Answer: 4",
        "The final answer is: 4",  # no '#': prose, not a heading
        "Step 1: look",
        "so far ### Step 1: look",  # a heading starts a line
        "### Image descriptions: a",  # the name runs on into a letter
        "### The final answer isn't clear",
        "### Stepwise 1: look",
    ],
)
def test_reworded_or_inline_headings_are_not_headings(text: str) -> None:
    assert parse_response(text) == ParsedResponse()


def test_think_heading_ends_the_rationale() -> None:
    parsed = parse_response("### Rationales: r\n#  let's Think step by step\nnot a step\n### Step 1: s")
    assert parsed.rationale == "r"
    assert parsed.steps == ("s",)


# ------------------------------------------------------------------------------ repeated sections
def test_last_final_answer_wins() -> None:
    parsed = parse_response(CANONICAL + "\n### The final answer is: 3")
    assert parsed.answer == "3"


def test_first_description_and_rationale_win() -> None:
    parsed = parse_response(CANONICAL + "\n### Image Description: late\n### Rationales: late")
    assert parsed.description == "Two red circles and a blue square."
    assert parsed.rationale == "The question asks about red shapes."


def test_steps_after_the_final_answer_are_ignored() -> None:
    parsed = parse_response(CANONICAL + "\n### Step 3: an afterthought\n### Step 4: another")
    assert parsed.steps == ("The red shapes are the two circles.", "So there are 2.")
    assert parsed.answer == "2"  # the answer body stops at the next heading


def test_steps_after_an_answer_only_response_do_not_count() -> None:
    parsed = parse_response("### The final answer is: 2\n### Step 1: why")
    assert parsed.steps == ()
    assert parsed.missing == ("description", "rationale", "steps")


# ------------------------------------------------------------------------------ non-text input
@pytest.mark.parametrize("value", [None, "", "   \n\t", 42, 3.5, b"### Step 1: x", ["### Step 1: x"], {"text": "x"}])
def test_empty_or_non_string_input_is_all_missing(value: object) -> None:
    parsed = parse_response(value)
    assert parsed == ParsedResponse()
    assert parsed.missing == SECTIONS
    assert not parsed.is_complete


# ------------------------------------------------------------------------------ fuzz
HEADING_PIECES = [
    DESCRIPTION_HEADING,
    RATIONALE_HEADING,
    THINK_HEADING,
    ANSWER_HEADING,
    "### Step 1:",
    "## step 7",
    "#image description",
    "###### THE FINAL ANSWER IS",
    "### Final answer:",
    "###",
    "#",
    ":",
    "\n",
    "",
]
pieces = st.one_of(st.sampled_from(HEADING_PIECES), st.text(max_size=20))
joiners = st.sampled_from(["\n", " ", "", "\n\n", "\r\n"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), any_text, texts))
def test_any_text_parses_without_raising(text: str) -> None:
    # Lone surrogates and control characters included (``tests.helpers.responses.any_text``).
    check_invariants(parse_response(text))
    answer = extract_answer(text)
    assert isinstance(answer, str) and (parse_response(text).answer is not None or answer == text.strip())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(pieces, joiners), max_size=30))
def test_interleaved_headings_and_junk_parse_without_raising(parts: list[tuple[str, str]]) -> None:
    text = "".join(piece + joiner for piece, joiner in parts)
    parsed = parse_response(text)
    check_invariants(parsed)
    assert isinstance(extract_answer(text), str)


# ------------------------------------------------------------------------------ extract_answer
def test_extract_answer_takes_the_answer_section() -> None:
    assert extract_answer(CANONICAL) == "2"


def test_extract_answer_falls_back_to_the_whole_stripped_text() -> None:
    assert extract_answer("  42 \n") == "42"
    assert extract_answer("### Step 1: it is 42") == "### Step 1: it is 42"


def test_extract_answer_of_an_empty_answer_section_is_empty() -> None:
    # The heading is present, so there is no fallback: grading "### The final answer is:" would be
    # grading the format, not an answer.
    assert extract_answer("### Step 1: it is 42\n### The final answer is:  ") == ""


@pytest.mark.parametrize("value", [None, 42, b"42"])
def test_extract_answer_of_a_non_string_is_empty(value: object) -> None:
    assert extract_answer(value) == ""


# ------------------------------------------------------------------------------ prompt
def test_instruction_names_every_heading() -> None:
    for heading in (DESCRIPTION_HEADING, RATIONALE_HEADING, THINK_HEADING, ANSWER_HEADING, "### Step N:"):
        assert heading in INSTRUCTION


def test_user_text_puts_the_instruction_before_the_question() -> None:
    question = "How many red circles are there?"
    assert build_user_text(question) == INSTRUCTION + "\n\n" + question
    assert build_user_text(question, instruction="Be brief.") == "Be brief.\n\n" + question
    assert build_user_text(question, instruction="") == question


@pytest.mark.parametrize("num_images", [0, 1, 3])
def test_messages_hold_images_then_the_user_text(num_images: int) -> None:
    question = "What colour is the square?"
    messages = build_messages(question, num_images=num_images)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    content = messages[0]["content"]
    assert content[:num_images] == [{"type": "image"}] * num_images
    assert content[num_images:] == [{"type": "text", "text": build_user_text(question)}]
    text = content[-1]["text"]
    assert text.index(INSTRUCTION) < text.index(question)


def test_image_slots_put_each_image_where_the_question_names_it() -> None:
    question = f"Question: {IMAGE_SLOT} shows a cell; {IMAGE_SLOT} shows it later.\nOptions:\nA. {IMAGE_SLOT}"
    content = build_messages(question, num_images=3, instruction="Be brief.")[0]["content"]
    assert content == [
        {"type": "text", "text": "Be brief.\n\nQuestion: "},
        {"type": "image"},
        {"type": "text", "text": " shows a cell; "},
        {"type": "image"},
        {"type": "text", "text": " shows it later.\nOptions:\nA. "},
        {"type": "image"},  # a slot at the very end leaves no empty text part behind
    ]


@pytest.mark.parametrize("num_images", [1, 3])
def test_image_slots_must_match_the_images(num_images: int) -> None:
    with pytest.raises(ValueError, match=rf"2 image slot\(s\).*for {num_images} image"):
        build_messages(f"{IMAGE_SLOT} and {IMAGE_SLOT}?", num_images=num_images)


def test_cut_off_repeated_answer_heading_keeps_the_earlier_answer():
    text = "### Image Description: d\n### The final answer is: 7\n### The final answer is:"
    assert parse_response(text).answer == "7"
