"""Benchmark prompts and options: VLMEvalKit's multiple-choice prompt, MathVista's "Choices:" block, inline options.

Left out on purpose: splitting options out of question text itself (``eval.answers.options_from_text``),
the format instruction placed before each prompt (``format``) and reading files (``benchmarks.tables``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.answers import options_from_text

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GLUED_LABEL = re.compile(r"(?<=[:：?？.])(?=[(（]A[)）])")


def inline_options(text: str) -> tuple[str, ...]:
    """Option texts written inside a question ("Options: A: x, B: y", "Choices:\\nA:2\\nB:4"); () if none.

    A first label glued to the text before it ("choice:(A) 2", "stable?(A) A", as in some DynaMath and
    LogicVista questions) is read too."""
    return tuple(options_from_text(_GLUED_LABEL.sub(" ", text)).values())


def with_choices(question: str, options: Iterable[str]) -> str:
    """``question`` followed by "Choices:" and "(A) option" lines (MathVista's and MATH-V's convention),
    unless the question already writes its options in."""
    options = list(options)
    if not options or inline_options(question):
        return question
    return question + "\nChoices:\n" + "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))


def mcq_prompt(question: str, options: Iterable[str], hint: str | None = None, select_line: bool = True) -> str:
    """VLMEvalKit's multiple-choice prompt: optional hint, the question, lettered options, a selection line."""
    options = list(options)
    text = f"Hint: {hint}\n" if hint else ""
    text += f"Question: {question}\n"
    if options:
        text += "Options:\n" + "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(options))
        if select_line:
            text += "Please select the correct answer from the options above."
    return text.rstrip()


def letter_of(index: int, source: str, column: str, count: int) -> str:
    """Option letter of a 0-based answer index; out of range is an error naming the column."""
    if not 0 <= index < count:
        raise RecordError(
            source, f"answer index {index} outside the {count} options", "Check the file is the released one", column
        )
    return LETTERS[index]
