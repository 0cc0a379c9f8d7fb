"""The annotation tasks: teacher prompts for ``description``, ``keywords`` and ``response``; reading the replies.

Each prompt is a template file (``prompts/<task>.txt``; a ``--prompts`` folder overrides them file by file)
filled with ``str.format``: ``{problem}`` (the question, image marks removed), ``{description}``,
``{max_keywords}`` and ``{instruction}`` (the PeBR format instruction, ``format.response.INSTRUCTION``).
The record's images come first in the user turn as base64 data URLs, or at the question's image marks
when it has exactly one per image. A warm-up ``response`` is accepted only when it has all four PeBR
sections and its final answer grades correct against the record's answer under the training rules
(``rewards.rules.PebrLitRules`` with ``rewards.grading.grade``), so SFT never learns a wrong answer.

Left out on purpose: sending, caching and retrying (``annotate.client``/``annotate.run``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pebr_lit.format.response import IMAGE_SLOT, INSTRUCTION

TASKS = ("description", "keywords", "response")
PROMPTS_DIR = Path(__file__).parent / "prompts"


@dataclass(frozen=True)
class Prompts:
    """The three prompt templates' text."""

    description: str
    keywords: str
    response: str


def load_prompts(folder: str | Path | None = None) -> Prompts:
    """The shipped templates, each replaced by ``<folder>/<task>.txt`` where that file exists."""
    texts = {}
    for task in TASKS:
        own = Path(folder) / f"{task}.txt" if folder else None
        path = own if own is not None and own.is_file() else PROMPTS_DIR / f"{task}.txt"
        texts[task] = path.read_text(encoding="utf-8").strip()
    return Prompts(**texts)


def fill(template: str, name: str, **values: Any) -> str:
    """``template.format(**values)``; an unknown placeholder is a clear error naming the template."""
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(
            f"prompt template {name}.txt: bad placeholder ({e}). Use only {{problem}}, {{description}}, "
            "{max_keywords} and {instruction}; write literal braces as {{ and }}."
        ) from None


def user_turn(text: str, image_urls: list[str]) -> list[dict[str, Any]]:
    """One OpenAI user message: images at the text's image marks when there is one per image, else first."""
    parts = text.split(IMAGE_SLOT)
    content: list[dict[str, Any]] = []
    image = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    if len(parts) - 1 == len(image_urls) and image_urls:
        for i, part in enumerate(parts):
            if i:
                content.append(image[i - 1])
            if part.strip():
                content.append({"type": "text", "text": part})
    else:
        content = [*image, {"type": "text", "text": text.replace(IMAGE_SLOT, "")}]
    return [{"role": "user", "content": content}]


def description_messages(problem: str, image_urls: list[str], prompts: Prompts) -> list[dict[str, Any]]:
    text = fill(prompts.description, "description", problem=problem.replace(IMAGE_SLOT, "").strip())
    return user_turn(text, image_urls) if image_urls else [{"role": "user", "content": text}]


def keywords_messages(description: str, max_keywords: int, prompts: Prompts) -> list[dict[str, Any]]:
    text = fill(prompts.keywords, "keywords", description=description.strip(), max_keywords=max_keywords)
    return [{"role": "user", "content": text}]


def response_messages(problem: str, image_urls: list[str], prompts: Prompts) -> list[dict[str, Any]]:
    text = fill(prompts.response, "response", problem=problem.strip(), instruction=INSTRUCTION)
    return user_turn(text, image_urls)


def parse_description(text: str) -> str:
    """The reply itself, stripped; ``ValueError`` when empty."""
    if not text.strip():
        raise ValueError("empty description")
    return text.strip()


def parse_keywords(text: str, max_keywords: int) -> list[str]:
    """A JSON list of strings (in a code fence or not), else one keyword per line or comma; ``ValueError`` if none."""
    body = re.sub(r"^```\w*\s*|\s*```$", "", text.strip())
    words: list[str] = []
    try:
        value = json.loads(body)
        if isinstance(value, list):
            words = [str(w) for w in value if isinstance(w, (str, int, float))]
    except ValueError:
        pass
    if not words:
        words = [w for w in re.split(r"[\n,;]", body) if w.strip()]
    words = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", w).strip().strip("\"'").strip() for w in words]
    unique = list(dict.fromkeys(w for w in words if w))
    if not unique:
        raise ValueError("no keywords in the reply")
    return unique[:max_keywords]


def check_response(text: str, answer: str) -> str | None:
    """None when ``text`` is a complete PeBR answer whose final answer grades correct, else why not
    (``bad_format`` or ``wrong_answer``)."""
    from pebr_lit.rewards.grading import grade
    from pebr_lit.rewards.rules import PebrLitRules

    rules = PebrLitRules()
    if rules.format(text) < 1.0:
        return "bad_format"
    return None if rules.accuracy(text, answer, grade) >= 1.0 else "wrong_answer"
