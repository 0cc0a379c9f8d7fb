"""The PeBR response format: the instruction that asks for it, a renderer and a parser.

A PeBR answer has four ``###`` sections in order: image description, rationales, step-by-step
thinking (``### Step 1:``, ``### Step 2:``, ...), and the final answer. ``parse_response`` splits
any string into those parts and lists what is missing; it never raises on model output.

Left out on purpose: grading answers (``pebr_lit.eval``/rewards), which text is the final answer for training
or evaluation (``format.final_answer``) and tokenisation (``policy``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DESCRIPTION_HEADING = "### Image Description:"
RATIONALE_HEADING = "### Rationales:"
THINK_HEADING = "### Let's think step by step."
ANSWER_HEADING = "### The final answer is:"

#: Marks where an image goes inside a question (``build_messages``); without marks the images come first.
#: Chosen to occur in no benchmark text; it never reaches the tokenizer.
IMAGE_SLOT = "<|pebr_image|>"

#: Section names as reported in ``ParsedResponse.missing``.
SECTIONS = ("description", "rationale", "steps", "answer")

INSTRUCTION = (
    "Answer the question about the image in this format. "
    f"First describe the image after '{DESCRIPTION_HEADING}'. "
    f"Then explain what matters for the question after '{RATIONALE_HEADING}'. "
    f"Then write '{THINK_HEADING}' and reason in numbered steps, each after '### Step N:'. "
    f"Finally write '{ANSWER_HEADING}' followed by the bare answer."
)

# Headings are matched case-insensitively, tolerating missing '#'s and extra spaces, because small
# or early-training models drift; the canonical spelling above is what the renderer writes. A name
# must not run on into a letter, so "### Image descriptions" is no heading (it would leave "s" behind).
_HEADING_RE = re.compile(
    r"^[ \t]*#{1,6}[ \t]*(?P<name>image\s+description|rationales?|let'?s\s+think\s+step\s+by\s+step\.?"
    r"|step\s*(?P<num>\d+)|the\s+final\s+answer\s+is)(?![^\W\d_])[ \t]*:?[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)


class ImageCountError(ValueError):
    """A prompt marks another number of image places than its row has images; ``problem`` and ``fix`` apart,
    so that the data layer can name the row and field (``data.collate``)."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}: {fix}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (ImageCountError, (self.problem, self.fix))


def build_user_text(question: str, instruction: str = INSTRUCTION) -> str:
    """The user turn's text: the format instruction placed before the question, as in the paper."""
    return f"{instruction}\n\n{question}" if instruction else question


def build_messages(question: str, num_images: int = 1, instruction: str = INSTRUCTION) -> list[dict[str, Any]]:
    """A chat in the Hugging Face multimodal message format: the images first, then the user text;
    or, when the question holds ``IMAGE_SLOT`` marks (exactly one per image), image ``k`` at mark ``k``
    between text parts (MMMU's interleaved "<image k>" questions). Empty text parts are dropped."""
    text = build_user_text(question, instruction)
    slots = text.count(IMAGE_SLOT)
    if not slots:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(num_images)]
        content.append({"type": "text", "text": text})
        return [{"role": "user", "content": content}]
    if slots != num_images:
        raise ImageCountError(
            f"the question holds {slots} image slot(s) {IMAGE_SLOT!r} for {num_images} image(s)",
            "write one slot per image in prompt order, or none to put every image first.",
        )
    content = []
    for i, part in enumerate(text.split(IMAGE_SLOT)):
        if i:
            content.append({"type": "image"})
        if part:
            content.append({"type": "text", "text": part})
    return [{"role": "user", "content": content}]


def render_response(description: str, rationale: str, steps: list[str] | tuple[str, ...], answer: str) -> str:
    """Write a complete response in the canonical PeBR format (used for SFT targets)."""
    lines = [f"{DESCRIPTION_HEADING} {description.strip()}", f"{RATIONALE_HEADING} {rationale.strip()}", THINK_HEADING]
    lines += [f"### Step {i}: {step.strip()}" for i, step in enumerate(steps, start=1)]
    lines.append(f"{ANSWER_HEADING} {answer.strip()}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedResponse:
    """The sections found in a response; ``None``/empty where absent."""

    description: str | None = None
    rationale: str | None = None
    steps: tuple[str, ...] = ()
    answer: str | None = None
    #: Names from ``SECTIONS`` that are absent or empty, in format order.
    missing: tuple[str, ...] = field(default=SECTIONS)

    @property
    def is_complete(self) -> bool:
        """True when every section is present and non-empty."""
        return not self.missing


def parse_response(text: Any) -> ParsedResponse:
    """Split ``text`` into PeBR sections. Never raises; a non-string is treated as empty.

    The first occurrence of each heading wins, except the final answer, where the last non-empty one wins
    (models sometimes restate it). A section's text runs to the next recognised heading.
    """
    if not isinstance(text, str):
        return ParsedResponse()
    matches = list(_HEADING_RE.finditer(text))
    description = rationale = answer = None
    steps: list[str] = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        name = m.group("name").lower()
        if name.startswith("image"):
            if description is None:
                description = body
        elif name.startswith("rationale"):
            if rationale is None:
                rationale = body
        elif m.group("num") is not None:
            if answer is None:  # steps after the final answer are not reasoning
                steps.append(body)
        elif name.startswith("the"):
            if body or answer is None:  # a cut-off repeat heading keeps the earlier answer
                answer = body
    found = {
        "description": bool(description),
        "rationale": bool(rationale),
        "steps": any(steps),
        "answer": bool(answer),
    }
    return ParsedResponse(
        description=description,
        rationale=rationale,
        steps=tuple(steps),
        answer=answer,
        missing=tuple(name for name in SECTIONS if not found[name]),
    )


def extract_answer(text: Any) -> str:
    """The evaluation side's final answer (``format.final_answer.EVALUATION``): the last non-empty answer section
    ("" for an empty one), or the whole stripped response when the heading is absent, as VLMEvalKit grades the
    whole prediction. Training rewards read ``final_answer.TRAINING`` instead, which gives no answer there."""
    from pebr_lit.format.final_answer import EVALUATION  # final_answer builds on parse_response above

    answer = EVALUATION.extract(text)
    return answer if answer is not None else ""
