"""The final answer of a response: one rule object shared by the reward graders and the benchmark scorers.

``FinalAnswer(rule, no_section)`` says which text of a response is its final answer, and whether an option
letter written inside it counts as that letter. Two rules, each a named choice:

- ``pebr_lit``: the last non-empty ``### The final answer is:`` section, all of it (headings matched leniently,
  ``format.response.parse_response``); a single option letter written as a sentence ("The answer is B", "(B)",
  "B. 42") is that letter (``choice_letter``).
- ``authors``: the first line of text after the first ``### The final answer is:`` (exact spelling and case) of
  the response after the spaces around ``<``, ``>`` and ``/`` are closed up, as the authors' reward scripts
  read it (cythu/PeBR-R1 ``examples/reward_function/pebr_1.py``); no letter reading: their grader
  (mathruler's ``grade_answer``) alone says whether "(B)" is "B" (it is) or "The answer is B" is "B" (it is not).

Without a final-answer heading, ``no_section`` decides: ``none`` (no answer: nothing to grade, so no grader can
score the whole text; the rule of every training reward) or ``whole_response`` (the stripped response; the
evaluation side's choice, as VLMEvalKit grades the whole prediction, and the authors' scripts' fallback).

``TRAINING``, ``AUTHORS`` and ``EVALUATION`` are the three instances the project uses.

Left out on purpose: grading (``rewards.grading``), option texts (the reward knows no options; the benchmark
scorers match option text in ``eval.answers``) and yes/no or number reading (``eval``).
"""

from __future__ import annotations

import re

from pebr_lit.format.response import parse_response

RULES = ("pebr_lit", "authors")
NO_SECTION = ("none", "whole_response")

# The authors' normalisation: spaces (newlines included) on either side of one of < > / are dropped.
_AROUND_SYMBOL_RE = re.compile(r"\s*([<>/])\s*")
# The authors' answer pattern: case-sensitive, single spaces; '\s*' may cross newlines, so the answer is the
# first line with text after the heading.
_AUTHORS_ANSWER_RE = re.compile(r"### The final answer is:\s*([^\n]*)")

# Wrappers a model puts around a letter: markdown emphasis and code, LaTeX math, \boxed{}, \text{}.
_WRAPPER_RES = (
    re.compile(r"\\boxed\s*\{([^{}]*)\}"),
    re.compile(r"\\(?:text|mathrm|textbf|mathbf)\s*\{([^{}]*)\}"),
)
# The whole answer is one letter, perhaps after a lead-in: "B", "(b)", "[B].", "Option B", "The answer is (B)".
_WHOLE_LETTER_RE = re.compile(
    r"(?:(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|option|choice)(?:\s+is)?(?:\s*:\s*|\s+))?"
    r"(?:\(\s*([a-z])\s*\)|\[\s*([a-z])\s*\]|([a-z]))\s*[.:)]?",
    re.IGNORECASE,
)
# The answer starts with a letter and a delimiter: "B. 42", "(B) 42", "b) 42", "B: 42".
_LEADING_LETTER_RE = re.compile(r"(?:\(\s*([a-z])\s*\)|\[\s*([a-z])\s*\]|([a-z])[.:)])(?=\s)", re.IGNORECASE)
# A letter standing alone: "(b)" any case, or an upper-case letter that is no part of a word, a LaTeX command,
# a hyphenation or a number ("B.5").
_LONE_LETTER_RE = re.compile(r"\(\s*([a-z])\s*\)|(?<![\w'’\\-])([A-Z])(?![\w'’-]|\.\d)", re.IGNORECASE)
# "A"/"I" followed by a lower-case word are English words ("A red circle", "I think"), not options, unless that
# word joins or judges options ("A or B", "A is correct").
_ENGLISH_WORD_AFTER_RE = re.compile(r"\s+(?!(?:or|and|nor|is|vs)\b)[a-z]")
_TRUTH_LETTER_RE = re.compile(r"\(?\s*([a-z])\s*\)?[.]?", re.IGNORECASE)


def close_up_symbols(text: object) -> str:
    """The authors' normalisation: ``text`` with the whitespace around ``<``, ``>`` and ``/`` removed; "" for a
    non-string."""
    return _AROUND_SYMBOL_RE.sub(r"\1", text) if isinstance(text, str) else ""


def _unwrap(text: str) -> str:
    text = text.replace("**", "").replace("__", "").replace("`", "").replace("$", "")
    for _ in range(3):  # \boxed{\text{B}}: a few levels, no more (the input is model output)
        for pattern in _WRAPPER_RES:
            text = pattern.sub(r"\1", text)
    return text.strip().rstrip(".。!").strip()


def _upper(letter: str) -> str:
    """``letter`` upper-cased; a non-ASCII one (case-insensitive matching takes "ſ" for "s", the Kelvin sign for
    "K") becomes U+FFFD, which ``choice_letter`` never returns."""
    return letter.upper() if letter.isascii() else "\ufffd"


def _lone_letters(text: str) -> set[str]:
    found = set()
    for m in _LONE_LETTER_RE.finditer(text):
        if m.group(1):
            found.add(_upper(m.group(1)))
        elif m.group(2).isupper() and not (m.group(2) in "AI" and _ENGLISH_WORD_AFTER_RE.match(text, m.end())):
            found.add(_upper(m.group(2)))
    return found


def choice_letter(answer: object) -> str | None:
    """The upper-case option letter a final answer names, or None (pebr-lit's letter rule). First hit wins:

    1. the whole answer is a letter, any case, perhaps wrapped ("**B**", "$\\boxed{B}$", "(b)", "[B].") or after a
       lead-in ("Option B", "Answer: B", "The answer is (B)");
    2. it starts with a letter and a delimiter ("B. 42", "(B) 42", "b) 42", "B: 42") and names no other letter;
    3. exactly one distinct letter stands alone in it: "(b)" any case, or an upper-case letter ("I choose B
       here"); "A"/"I" before a lower-case word are English words (but not before "or", "and", "nor", "is",
       "vs": "A or B" names two letters), "B.5" is no letter.
    Several letters named ("A or B", "(A) is wrong, (C) is right") give None.
    """
    letter = _choice_letter(answer) if isinstance(answer, str) else None
    return letter if letter is not None and letter.isascii() else None  # only A-Z are option letters


def _choice_letter(answer: str) -> str | None:
    text = _unwrap(answer)
    if m := _WHOLE_LETTER_RE.fullmatch(text):
        return _upper(next(g for g in m.groups() if g))
    if m := _LEADING_LETTER_RE.match(text):
        letter = _upper(next(g for g in m.groups() if g))
        return letter if _lone_letters(text[m.end() :]) <= {letter} else None
    letters = _lone_letters(text)
    return letters.pop() if len(letters) == 1 else None


def truth_letter(truth: object) -> str | None:
    """The upper-case letter when a ground truth is one option letter ("B", "(b)", "B."), else None."""
    if not isinstance(truth, str):
        return None
    m = _TRUTH_LETTER_RE.fullmatch(truth.strip())
    return m.group(1).upper() if m and m.group(1).isascii() else None


class FinalAnswer:
    """Which text of a response is its final answer, and whether a letter inside it counts (module docstring)."""

    def __init__(self, rule: str = "pebr_lit", no_section: str = "none") -> None:
        """
        Args:
            rule: ``pebr_lit`` (the last non-empty answer section, letters read) or ``authors`` (the first line
                after the first exact answer heading, after ``close_up_symbols``; no letter reading).
            no_section: without an answer heading, ``none`` (no answer; training) or ``whole_response`` (the
                stripped response; evaluation, and the authors' scripts).
        """
        for name, value, allowed in (("rule", rule, RULES), ("no_section", no_section, NO_SECTION)):
            if value not in allowed:
                raise ValueError(f"FinalAnswer.{name}={value!r}: unknown. Use one of {list(allowed)}.")
        self.rule, self.no_section = rule, no_section

    def extract(self, response: object) -> str | None:
        """The final answer of ``response`` (stripped; "" for an empty section), or None when it has no answer
        heading and ``no_section`` is ``none``. Never raises; a non-string has no section."""
        if self.rule == "authors":
            text = close_up_symbols(response)
            m = _AUTHORS_ANSWER_RE.search(text)
            section = m.group(1).strip() if m else None
        else:
            text = response if isinstance(response, str) else ""
            section = parse_response(response).answer
        if section is not None:
            return section
        return text.strip() if self.no_section == "whole_response" else None

    def letter_matches(self, answer: str | None, truth: object) -> bool:
        """True when ``truth`` is one option letter and ``answer`` (an ``extract`` result) names that letter
        under this rule (``choice_letter``; the authors' rule reads no letters, so always False for it)."""
        if self.rule != "pebr_lit" or answer is None:
            return False
        gold = truth_letter(truth)
        return gold is not None and choice_letter(answer) == gold

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FinalAnswer) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((self.rule, self.no_section))

    def __repr__(self) -> str:
        return f"FinalAnswer(rule={self.rule!r}, no_section={self.no_section!r})"


#: Every pebr-lit training reward and metric: the last answer section, letters read; no section, no answer.
TRAINING = FinalAnswer("pebr_lit", "none")
#: ``AuthorsRules``' default: the authors' answer line; no section, no answer (their scripts grade the whole text).
AUTHORS = FinalAnswer("authors", "none")
#: Benchmark scoring (``format.response.extract_answer``): pebr-lit's section, else the whole response.
EVALUATION = FinalAnswer("pebr_lit", "whole_response")
