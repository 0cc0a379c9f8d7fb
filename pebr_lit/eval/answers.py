"""Benchmark answer matching: option letters, yes/no and free-form numbers, by published rules.

Benchmark adapters call these with a model's response. A response may be a whole PeBR response (its
final-answer section is used, ``format.response.extract_answer``) or just an answer. Pure, no I/O, and no
function raises on model output. The conventions, and where they come from:

- Multiple choice (MMMU, MathVerse, MathVision, WeMath, LogicVista, DynaMath, MathVista; MMStar and AI2D
  use VLMEvalKit's exact ``can_infer`` instead, ``eval.vlmevalkit_rules``): ``extract_choice`` reads the
  chosen letter; precedence on its docstring. Like VLMEvalKit's ``can_infer``, a letter has to be unique
  where it is guessed from the text, and option text counts only in an answer at most twice the options'
  total length; unlike MMMU, no guess is random (no answer is ``None``, which is wrong). LogicVista has
  multi-letter truths ("A, C"): ``match_choice`` then needs exactly that set.
- Yes/no (truth "1"/"0", "yes"/"no"): ``extract_yes_no``; VLMEvalKit's rule plus a leading word
  (HallusionBench grades with VLMEvalKit's exact ``YOrN_Extraction``, ``eval.vlmevalkit_rules``).
- Free form (MathVista, MathVerse, MathVision, DynaMath, MMMU open questions): ``match_free_form``;
  numbers are compared exactly as fractions, rounded (MathVista ``precision``) or within an absolute
  tolerance (DynaMath: 0.001); the rest goes to ``rewards.grading.grade`` (mathruler). Implemented in
  ``eval.numbers`` and re-exported here.

Left out on purpose: LLM-judge extraction (MathVista, MathVerse and VLMEvalKit use GPT to pull the
answer out of free text; optional, in ``eval.judge``, whose readings are graded here), reading
benchmark files (``eval.benchmarks``) and math equivalence itself (``rewards.grading.grade``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from string import ascii_uppercase

from pebr_lit.eval.numbers import (
    ANSWER_MARK,
    clean_answer,
    normalized_answer,
)
from pebr_lit.format.response import extract_answer
from pebr_lit.rewards.grading import grade

Options = Mapping[str, object] | Sequence[object] | str | None
"""``{"A": "12 cm", ...}``; a list of option texts (letters A, B, ... in order); a string of allowed
letters without texts ("ABCD"); or None (any letter A-Z, no text matching)."""

_LETTER_ALONE = re.compile(
    r"(?:(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|option|choice)(?:\s+is)?(?:\s*[:：]\s*|\s+))?"
    r"(?:\(\s*([a-z])\s*\)|\[\s*([a-z])\s*\]|([a-z])\s*[.:)]?)"
)
# "Answer: B", "the answer is (B)", "\boxed{B}": the last one in a response is the model's final word.
_CHOICE_MARK = re.compile(r"\b(?:option|choice|choose|select|pick)\b(?:\s+is)?\s*[:：]?", re.I)
_LEADING_LETTER = re.compile(r"(?:[(\[]\s*([A-Za-z])\s*[)\]]|([A-Za-z])(?:[.:：](?=\s|$)|\)))\s*")
_BRACKETED = re.compile(r"(?<!\w)[(\[]\s*([A-Za-z])\s*[)\]]")
_BARE_UPPER = re.compile(r"(?<![\w'’\\-])([A-Z])(?![\w'’-])")
# "A red circle", "I think": "A"/"I" as English words, not options; "A or B" / "A and B" name option A (a hedge)
_ARTICLE = re.compile(r"\s+(?!(?:or|and)\b)[a-z]")
_WORD = re.compile(r"[a-z]+(?:['’-][a-z]+)*")


def _answer_text(response: object) -> str:
    return clean_answer(extract_answer(response))


def _unique(letters: object) -> str | None:
    found = set(letters)  # type: ignore[call-overload]
    return found.pop() if len(found) == 1 else None


def normalize_letter(text: object) -> str | None:
    """The upper-case option letter when the whole of ``text`` is one ("B", "(b)", "B.", "[B]",
    "\\boxed{B}", "Option B", "Answer: b"), else None. Any case: a lone letter is unambiguous."""
    m = _LETTER_ALONE.fullmatch(normalized_answer(text))
    return next(g for g in m.groups() if g).upper() if m else None


def option_table(options: Options) -> dict[str, str]:
    """``{letter: normalised option text}`` ("" where there is no text) from any ``Options`` form."""
    if isinstance(options, str):
        return {c: "" for c in dict.fromkeys(options.upper()) if c in ascii_uppercase}
    if isinstance(options, Mapping):
        pairs = [(normalize_letter(k), v) for k, v in options.items()]
    elif isinstance(options, Sequence):
        pairs = list(zip(ascii_uppercase, options))
    else:
        return {}
    table: dict[str, str] = {}
    for letter, text in pairs:
        if letter and letter not in table:
            # pandas gives a float NaN for a missing option; numbers in data files are option texts too
            ok = isinstance(text, (str, int, float)) and not (isinstance(text, float) and math.isnan(text))
            table[letter] = normalized_answer(str(text)) if ok else ""
    return table


_INLINE_OPTION = re.compile(r"(?<![^\s;,，；])[(（\[]?([A-Z])[)）\].:：]")


def options_from_text(question: object) -> dict[str, str]:
    """Options written inside a question ("Choices:\\nA:2\\nB:4", "(A) 5 (B) 6", "A. 5 B. 6"), as
    MathVerse, WeMath and LogicVista print them: the last run of letters A, B, C, ... in order; the
    last option's text ends at the line's end. Fewer than two found -> {}."""
    if not isinstance(question, str):
        return {}
    runs: list[list[re.Match[str]]] = []
    for m in _INLINE_OPTION.finditer(question):
        letter = m.group(1)
        if letter == "A":
            runs.append([m])
        elif runs and ord(letter) == ord(runs[-1][-1].group(1)) + 1:
            runs[-1].append(m)
    run = next((r for r in reversed(runs) if len(r) >= 2), [])
    out: dict[str, str] = {}
    for i, m in enumerate(run):
        end = run[i + 1].start() if i + 1 < len(run) else len(question)
        text = question[m.end() : end]
        out[m.group(1)] = (text.split("\n")[0] if i + 1 == len(run) else text).strip(" \t\n;,，；")
    return out


def _text_hit(text: str, table: dict[str, str], prefix: bool) -> str | None:
    """The option whose text is all of (``prefix=False``) or starts (True) ``text``; longest wins."""
    t = normalized_answer(text)
    # As a prefix, an option's text must end at a word's end: option "12" does not start "125 cm".
    hits = [
        (len(o), k)
        for k, o in table.items()
        if o and (t == o or prefix and t.startswith(o) and not t[len(o) : len(o) + 1].isalnum())
    ]
    if not hits:
        return None
    best = max(n for n, _ in hits)
    return _unique(k for n, k in hits if n == best)


# "A or B", "(A) and (C)", "A, B", "A/B", "A vs B": a second option letter right after the first names two.
_HEDGE = re.compile(r"\s*(?:,|/|\bor\b|\band\b|\bvs\b\.?)\s*(?:[(\[]\s*([A-Za-z])\s*[)\]]|([A-Z])(?![\w'’-]))")
HEDGED = "hedged"
"""``_letter_after``'s reading of a marker followed by two option letters: no answer, and no later step runs."""


def _letter_after(tail: str, table: dict[str, str], allowed: set[str]) -> str | None:
    """The option named at the start of ``tail`` (the text after an answer marker); ``HEDGED`` when a second
    allowed letter follows it ("The answer is A or B." names two options, as ``can_infer_option``'s count sees it;
    VLMEvalKit's later "answer is X" pattern reads A there instead: a documented difference)."""
    tail = tail[:200].split("\n")[0].lstrip(" \t\"'`")
    if m := re.match(r"[(\[]\s*([A-Za-z])\s*[)\]]", tail):
        letter = m.group(1).upper()
    elif m := re.match(r"([A-Z])(?![\w'’-])", tail):
        letter = m.group(1)
        if letter in "AI" and _ARTICLE.match(tail, 1):  # "the answer is a red circle", capitalised
            letter = _text_hit(tail, table, prefix=True) or letter
            if letter not in "AI":
                return letter if letter in allowed else None
    elif hit := _text_hit(tail, table, prefix=True):
        return hit
    elif m := re.match(r"([a-z])\s*(?:[.,;:!?)}\]]|$)", tail):  # "the answer is b." but not "is a red"
        letter = m.group(1).upper()
    else:
        return None
    if (h := _HEDGE.match(tail, m.end())) and (other := (h.group(1) or h.group(2)).upper()) != letter:
        if other in allowed:
            return HEDGED
    return letter if letter in allowed else None


def extract_choice(response: object, options: Options) -> str | None:
    """The upper-case letter of the option the response chose, or None (no answer, or ambiguous).

    Precedence, first hit wins (on the final-answer section when there is one):
    1. the whole answer is one option's text (normalised: case, spaces, '$', ``\\text``): that option.
       First, because MathVista's options can themselves be letters or names.
    2. the whole answer is a letter: "B", "(b)", "B.", "\\boxed{B}", "**B**", "Option B", "Answer: B".
    3. it starts with a letter and a delimiter and names no other letter: "B. 12 cm", "(B) 12 cm",
       "b) 12" (the letter wins over contradicting text, as in VLMEvalKit); or "B 12 cm" when the rest
       is option B's text.
    4. the whole answer is math-equal to exactly one option's text (``grade``: "0.50" == "1/2").
    5. the last answer marker ("answer is", "Answer:", "\\boxed{") followed by "(b)", "B", an option's
       text ("the answer is a red circle") or a lower-case letter before punctuation ("is b.");
       then "option/choice/choose/select" followed by a letter, if only one letter is named so. A second
       option letter joined to the first ("The answer is A or B.", "Answer: B, C") after the last marker is a
       hedge: no answer, and no later step runs (two options named; VLMEvalKit's exact ``can_infer``, used by the
       ``vlmevalkit`` modes of MMStar, AI2D and WeMath, reads A there through its "answer is X" pattern).
    6. exactly one distinct letter stands alone in the answer: "(B)" any case, or upper-case "B"
       (VLMEvalKit's rule); "A"/"I" followed by a lower-case word are English words, not options.
    7. option texts found in the answer as whole words: one left after dropping those inside a longer
       found text (MMMU's text fallback; "a red circle" beats "red circle"); several -> None. Only in an
       answer at most twice the options' total length (VLMEvalKit's ``can_infer_text`` limit).
    Letters outside ``options`` never count; lower-case "a" inside a sentence never is option A.
    """
    table = option_table(options)
    allowed = set(table) or set(ascii_uppercase)
    return next((c for c in _choice_candidates(_answer_text(response), table, allowed) if c in allowed), None)


def _choice_candidates(text: str, table: dict[str, str], allowed: set[str]) -> Iterator[str | None]:
    """``extract_choice``'s steps, lazily, in precedence order."""
    if not text:
        return
    yield _text_hit(text, table, prefix=False)
    yield normalize_letter(text)
    yield _leading(text, table)
    if len(text) <= 100:  # a long text is no option's value; sympy on it only costs time
        yield _unique(k for k, o in table.items() if o and grade(text, o))
    for m in reversed(list(ANSWER_MARK.finditer(text))):
        if (letter := _letter_after(text[m.end() :], table, allowed)) == HEDGED:
            return  # the model's last word names two options: no answer
        yield letter
    named = (_letter_after(text[m.end() :], table, allowed) for m in _CHOICE_MARK.finditer(text))
    yield _unique(filter(None, named))  # a hedge after "option" names two: not unique
    yield _unique(_letters_standing_alone(text) & allowed)
    yield _text_inside(text, table)


def _leading(text: str, table: dict[str, str]) -> str | None:
    if m := _LEADING_LETTER.match(text):
        letter = (m.group(1) or m.group(2)).upper()
        others = _letters_standing_alone(text[m.end() :]) & set(table or ascii_uppercase)
        return letter if others <= {letter} else None  # "(A) is wrong, (C) is right" names two
    if (m := re.match(r"([A-Z])\s+(\S.*)", text, re.S)) and table.get(m.group(1)) == normalized_answer(m.group(2)):
        return m.group(1)
    return None


def _letters_standing_alone(text: str) -> set[str]:
    found = {m.group(1).upper() for m in _BRACKETED.finditer(text)}
    for m in _BARE_UPPER.finditer(text):
        if not (m.group(1) in "AI" and _ARTICLE.match(text, m.end())):
            found.add(m.group(1))
    return found


def _text_inside(text: str, table: dict[str, str]) -> str | None:
    # VLMEvalKit's can_infer_text limit: option text counts only in an answer at most twice as long as all the
    # option texts together, so a long (or cut-off) response that mentions an option gets no credit for it.
    if len(text) > 2 * sum(len(o) for o in table.values()):
        return None
    t = normalized_answer(text)
    hits = {k: o for k, o in table.items() if o and re.search(rf"(?<![\w.]){re.escape(o)}(?!\w|\.\d)", t)}
    return _unique(k for k, o in hits.items() if not any(o != p and o in p for p in hits.values()))


def extract_choices(response: object, options: Options) -> frozenset[str]:
    """All letters chosen, for multi-answer questions (LogicVista): a whole answer (or the text after
    the last answer marker) that lists only letters ("A, C", "(A) and (C)", "AC"); else
    ``extract_choice``'s single letter; else empty."""
    allowed = set(option_table(options)) or set(ascii_uppercase)
    text = _answer_text(response)
    marks = list(ANSWER_MARK.finditer(text))
    for candidate in [text] + ([text[marks[-1].end() :].split("\n")[0]] if marks else []):
        c = candidate.strip().rstrip(".").strip("{} ")
        parts = [p for p in re.split(r"\s*(?:[,;/&]|\band\b|\s)\s*", c) if p]
        if len(parts) > 26:  # a sentence, not a list of letters
            continue
        if len(parts) == 1 and re.fullmatch(r"[A-Z]{2,}", c):  # "AC"; a lone letter is extract_choice's job
            parts = list(c)
        letters = [normalize_letter(p) for p in parts]
        if len(parts) >= 2 and all(x in allowed for x in letters):
            return frozenset(letters)  # type: ignore[arg-type]
    single = extract_choice(response, options)
    return frozenset({single}) if single else frozenset()


def truth_letters(truth: object, options: Options) -> frozenset[str]:
    """The correct letters from a truth given as an option's text (MathVista), a letter ("B", "(B)"),
    or several letters ("A, C": LogicVista); empty when none can be read."""
    table = option_table(options)
    if isinstance(truth, str) and (hit := _text_hit(truth, table, prefix=False)):
        return frozenset({hit})
    if letter := normalize_letter(truth):
        return frozenset({letter})
    return extract_choices(truth, options) if isinstance(truth, str) else frozenset()


def match_choice(response: object, options: Options, truth_letter: object) -> bool:
    """True when the response chose exactly the correct option(s) (see ``truth_letters``)."""
    truth = truth_letters(truth_letter, options)
    if len(truth) == 1:
        return extract_choice(response, options) in truth
    return bool(truth) and extract_choices(response, options) == truth


def extract_yes_no(response: object) -> str | None:
    """ "yes", "no" or None. Precedence: the answer's first word if yes/no ("No, the sign says yes" ->
    no); else the first word after the last answer marker ("The answer is yes"); else the one of yes/no
    that appears as a word, if only one does (VLMEvalKit's HallusionBench rule); both or neither -> None."""
    text = _answer_text(response).lower()
    words = _WORD.findall(text)
    if words and words[0] in ("yes", "no"):
        return words[0]
    for m in reversed(list(ANSWER_MARK.finditer(text))):
        after = _WORD.findall(text[m.end() : m.end() + 40])
        if after and after[0] in ("yes", "no"):
            return after[0]
    return _unique(w for w in words if w in ("yes", "no"))


_TRUTH_YES_NO = dict.fromkeys(("1", "1.0", "yes", "true"), "yes") | dict.fromkeys(("0", "0.0", "no", "false"), "no")


def match_yes_no(response: object, truth: object) -> bool:
    """True when the response's yes/no equals ``truth``: "1"/"0" (HallusionBench), "yes"/"no",
    "true"/"false", 1/0 or a bool, any case. An unreadable truth matches nothing."""
    gold = _TRUTH_YES_NO.get(normalized_answer(truth if isinstance(truth, str) else str(truth)))
    return gold is not None and extract_yes_no(response) == gold


# --- the accuracy reward's letter rule ---------------------------------------------------------------------
