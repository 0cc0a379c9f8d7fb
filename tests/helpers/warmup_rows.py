"""Write a warm-up data file in the authors' messages schema with one row per filter rule, and its images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

ANSWER_HEADING = "### The final answer is:"
TARGET = "### Image Description: two dots.\n### Rationales: count them.\n### Let's think step by step.\n"


def target(answer: str, extra: str = "") -> str:
    """A PeBR-format assistant text ending in ``answer``; ``extra`` goes inside the first step."""
    return f"{TARGET}### Step 1: {extra}add.\n{ANSWER_HEADING} {answer}"


def chat(question: str, response: str, images: Any, **fields: Any) -> dict[str, Any]:
    """One row of the authors' schema: a user turn, an assistant turn, the images and any extra fields."""
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
    return {"messages": messages, "images": images, **fields}


def write_images(root: Path) -> None:
    """ok.png 28x28, small.png 27x40, wide.png 40x28, broken.png (not an image); no missing.png."""
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (28, 28), (10, 20, 30)).save(root / "ok.png")
    Image.new("RGB", (27, 40), (10, 20, 30)).save(root / "small.png")
    Image.new("RGB", (40, 28), (10, 20, 30)).save(root / "wide.png")
    (root / "broken.png").write_bytes(b"not a png at all")


# Row n of the file is ROWS[n - 1]; the reason the filter must give it (None = kept).
ROWS: list[tuple[dict[str, Any], str | None]] = [
    (chat("<image>How many dots?", target("2", "Let Me RETHINK it. "), ["ok.png"]), "rethink"),
    (chat("<image>How many dots?", target("2"), ["missing.png"]), "missing_image"),
    (chat("<image>How many dots?", target("2"), ["small.png"]), "small_image"),
    (chat("<image>How many dots?", target("2"), "broken.png"), "unreadable_image"),
    (chat("<image>What is 2+3?", target("5"), ["ok.png"]), None),
    (
        {
            "qid": "rec-1",
            "problem": "How wide is it?",
            "answer": "40",
            "images": ["wide.png"],
            "response": target("forty"),
            "key_words": ["dot"],
        },
        None,
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "<image>Q1"},
                {"role": "assistant", "content": target("1")},
                {"role": "user", "content": "Q2"},
                {"role": "assistant", "content": target("2")},
            ],
            "images": ["ok.png"],
        },
        "multi_turn",
    ),
    (
        {"qid": "rec-2", "problem": "Q", "answer": "1", "images": ["ok.png"], "response": "LET ME RETHINK IT. 1"},
        "rethink",
    ),
]


def write_rows(path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    """Write ``rows`` (default: ``ROWS``) as a JSON list (``.json``) or one object per line (``.jsonl``)."""
    rows = [row for row, _ in ROWS] if rows is None else rows
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path
