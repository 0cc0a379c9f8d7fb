"""MathVista's answer rules: the official ``calculate_score.py`` and VLMEvalKit's ``post_check``, reimplemented.

Official (``lupantech/MathVista`` ``evaluation/``, read at commit 53d525874bdde205128e6b160b7357a88277d479;
behaviour reimplemented here, not copied):
  - ``extract_answer.py`` takes the response itself when it is already an option text, an integer or a
    float, and otherwise asks GPT to extract the answer. pebr-lit grades the final-answer section as that
    extraction (the PeBR format asks the model to state its answer there); with a judge configured
    (``eval.judge``), the judge's reading is graded the same way.
  - ``official_normalize`` follows ``normalize_extracted_answer``: multiple choice -> the letter in "(X)"
    or a bare capital letter names an option, anything else becomes the option *closest by edit distance*
    (so every answer names some option); integer -> ``str(int(float(x)))``; float ->
    ``str(round(float(x), precision))``; list -> the text as is; anything unreadable -> None.
  - ``official_correct`` follows ``safe_equal``: the normalised string equals the answer string exactly
    (so "0.60" as an answer can never be matched by a float; "[2007,2008]" differs from "[2007, 2008]").
VLMEvalKit (``open-compass/VLMEvalKit`` ``vlmeval/dataset/utils/mathvista.py`` ``post_check``, read at commit
e8e78f05f3080fe28154f2130321f17951c3be94): multiple choice -> ``can_infer`` (exact: ``eval.vlmevalkit_rules``)
against the answer letter; integer -> Python ``int(x) == int(answer)``; float -> ``float(x) ==
float(answer)`` (exact, no precision rounding); any other answer type is never right, because
``post_check`` compares ``str(None)`` with the answer (a list answer scores 0 in VLMEvalKit).

``QUICK_EXTRACT`` is ``extract_answer.py``'s ``--quick_extract`` rule (off by default there and in
``MathVista``): the first 'The answer is "X".' in the response (``.*`` greedy, one line) gives X.

Left out on purpose: the GPT extraction prompts of both (``eval.judge`` writes its own).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_BRACKETED_LETTER = re.compile(r"\(([a-zA-Z])\)")
QUICK_EXTRACT = re.compile(r'The answer is "(.*)"\.')


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1), as ``Levenshtein.distance``."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def official_normalize(
    extraction: str, choices: Sequence[str], question_type: str, answer_type: str | None, precision: float | None
) -> str | None:
    """``normalize_extracted_answer``: the extraction as the string ``safe_equal`` compares; None if unreadable."""
    text = extraction.strip()
    if question_type == "multi_choice":
        if letters := _BRACKETED_LETTER.findall(text):
            text = letters[0].upper()
        labels = [chr(ord("A") + i) for i in range(len(choices))]
        if text in labels:
            return choices[labels.index(text)]
        distances = [edit_distance(text, c) for c in choices]
        return choices[distances.index(min(distances))]  # the first of the closest
    try:
        if answer_type == "integer":
            return str(int(float(text)))
        if answer_type == "float":
            return str(round(float(text), int(precision)))  # type: ignore[arg-type]  # None -> unreadable
    except (TypeError, ValueError, OverflowError):
        return None
    # "list" (and a free-form "text" answer, which MathVista's code leaves unhandled): the text as is.
    return extraction


def official_correct(prediction: str | None, answer: str) -> bool:
    """``safe_equal``: exact equality of the normalised prediction and the answer string."""
    return prediction == answer


def vlmevalkit_number_correct(answer_text: str, answer: str, answer_type: str | None) -> bool:
    """``post_check`` for free-form questions: Python ``int`` or ``float`` equality; other types never right."""
    convert = {"integer": int, "float": float}.get(answer_type or "")
    if convert is None:
        return False  # post_check compares str(None) with the answer
    try:
        return convert(answer_text) == convert(answer)
    except (ValueError, OverflowError):
        return False
