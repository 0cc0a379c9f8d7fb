"""MMMU's answer rules: the official ``eval_utils.py`` parsers and VLMEvalKit's open-question rule, reimplemented.

Official (``MMMU-Benchmark/MMMU`` ``mmmu/utils/eval_utils.py``, read at commit
bb0b95a945998d91dfef37e969e07d49d1139438; behaviour reimplemented here, not copied):
  - ``official_choice`` follows ``parse_multi_choice_response``: strip edge punctuation, then "(X)"
    anywhere, else " X " standing alone, else (only for answers of more than 5 words) the option text;
    several candidates -> the one found last. Where MMMU picks a random letter (nothing found),
    ``None`` is returned (graded wrong), so a score never depends on a seed.
  - ``open_predictions`` follows ``parse_open_response``: the lower-cased answer split into lines, the
    shortest tail after "could be", "so", "is", "thus", "therefore", "final", "answer", "result" (and
    "=" in the last line), plus every number in those tails; each normalised as ``normalize_str`` does
    (a number -> float rounded to 2 decimals, text -> lower case, one character -> padded by a space).
  - ``official_open_correct`` follows ``eval_open``: a float prediction must equal a numeric gold; a
    text prediction is right when a text gold is a *substring* of it.
VLMEvalKit (``open-compass/VLMEvalKit`` ``vlmeval/dataset/utils/multiple_choice.py`` ``MMMU_preproc``, read
at commit e8e78f05f3080fe28154f2130321f17951c3be94): an open question becomes a two-option question,
A = the gold answer text and B = "Other Answers", truth A, then graded by ``can_infer``
(``eval.answers.match_choice``); ``vlmevalkit_open_options`` builds those options.

Left out on purpose: MMMU's random guess and VLMEvalKit's GPT option matcher (``eval.judge`` reads answers,
it does not pick between the gold and "Other Answers"; see docs/evaluation.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_EDGE_PUNCT = (",", ".", "!", "?", ";", ":", "'")
_KEY_WORDS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL = frozenset(":,.!?;'")
# Numbers as eval_utils.extract_numbers finds them: with thousands commas, scientific, plain.
_COMMA_NUMBER = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_SCI_NUMBER = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_PLAIN_NUMBER = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")
OTHER_ANSWERS = "Other Answers"


def official_choice(answer: str, options: Sequence[str]) -> str | None:
    """The letter ``parse_multi_choice_response`` reads from ``answer``; None where MMMU would guess at random."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    text = answer
    for char in _EDGE_PUNCT:
        text = text.strip(char)
    text = f" {text} "
    found = [c for c in letters if f"({c})" in text]
    where = [text.rfind(f"({c})") for c in found]
    if not found:
        found = [c for c in letters if f" {c} " in text]
        where = [text.rfind(f" {c} ") for c in found]
    if not found and len(text.split()) > 5:
        lowered = text.lower()
        found = [c for c, o in zip(letters, options) if str(o).lower() in lowered]
        where = [lowered.rfind(str(options[letters.index(c)]).lower()) for c in found]
    if not found:
        return None
    return found[where.index(max(where))]  # the last one named; the first listed on a tie, as numpy's argmax


def normalize_open(text: str) -> list[float | str]:
    """``normalize_str``: a number (commas dropped) as a float rounded to 2 decimals, else lower-case text,
    a single character padded on either side (" x", "x ") so that it does not match inside words."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        pass
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def _numbers(text: str) -> list[str]:
    return _COMMA_NUMBER.findall(text) + _SCI_NUMBER.findall(text) + _PLAIN_NUMBER.findall(text)


def _key_tails(answer: str) -> list[str]:
    """``get_key_subresponses``: per line, the shortest text after a key word; the whole answer if none."""
    text = answer.strip().strip(".").lower()
    # MMMU also splits at ". " before a capital, but after lower-casing no capital is left: lines only.
    parts = re.split(r"\.\s(?=[A-Z])|\n", text)
    tails = []
    for i, part in enumerate(parts):
        keys = _KEY_WORDS + ("=",) if i == len(parts) - 1 else _KEY_WORDS
        shortest = None
        for key in keys:
            if key in part:
                tail = part.split(key)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # an empty tail is replaced by the next key's
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            tails.append(shortest)
    return tails or [text]


def open_predictions(answer: str) -> list[float | str]:
    """``parse_open_response``: the normalised candidate answers in ``answer`` (tails and the numbers in them)."""
    tails = _key_tails(answer)
    found = tails + [n for tail in tails for n in _numbers(tail)]
    out: list[float | str] = []
    for candidate in found:
        out.extend(c for c in normalize_open(candidate) if c not in out)
    return out


def official_open_correct(golds: Sequence[str], predictions: Sequence[float | str]) -> bool:
    """``eval_open``: a number equals a numeric gold, or a text gold appears inside a text prediction."""
    norm = [n for gold in golds for n in normalize_open(str(gold))]
    for pred in predictions:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in norm):
                return True
        elif any(not isinstance(g, str) and g == pred for g in norm):
            return True
    return False


def vlmevalkit_open_options(gold: str) -> tuple[str, str]:
    """``MMMU_preproc``'s options for an open question: (A) the gold answer as written, (B) "Other Answers"."""
    return (gold, OTHER_ANSWERS)
