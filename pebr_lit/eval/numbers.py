"""Free-form benchmark answers: numbers (fractions, percents, units, precision, tolerance) and math.

``match_free_form`` is pebr-lit's lenient free-form rule: ``Benchmark.score``'s default and MathVerse's stand-in
for its scorers' GPT judgement (MathVista, MathVision, DynaMath and MMMU follow their scorers' own rules, in
``eval.benchmarks.*_rules``); see ``pebr_lit.eval.answers`` for the conventions and the multiple-choice and
yes/no rules. Pure, no I/O,
never raises on model output.

Left out on purpose: option letters and yes/no (``answers``); math equivalence itself (``rewards.grading``).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import NamedTuple

from pebr_lit.format.response import extract_answer
from pebr_lit.rewards.grading import grade, normalize

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
#: "answer is", "Answer:", "\\boxed{": where a stated final answer begins inside free text.
ANSWER_MARK = re.compile(r"\banswers?\b\s*(?:is|are|would\s+be|should\s+be|=)?\s*[:：]?|\\boxed\s*\{", re.I)


def clean_answer(text: str) -> str:
    """Markdown bold, '$' math delimiters and ``\\text{...}`` wrappers removed; case kept."""
    return _WRAPPERS.sub(r"\1", text.replace("*", "").replace("\\$", "").replace("$", "")).strip()


def normalized_answer(text: object) -> str:
    """``clean_answer`` then ``rewards.grading.normalize``; "" for a non-string."""
    return normalize(clean_answer(text)) if isinstance(text, str) else ""


_NUMBER = re.compile(
    r"(?P<fs>[+-]?)\\[dt]?frac\s*(?:\{\s*(?P<fn>[+-]?\d+(?:\.\d+)?)\s*\}\s*\{\s*(?P<fd>\d+(?:\.\d+)?)\s*\}"
    r"|(?P<n1>\d)(?P<d1>\d))"  # \frac12
    r"|(?P<sn>[+-]?\d+(?:\.\d+)?)\s*/\s*(?P<sd>\d+(?:\.\d+)?)(?![\d.])"
    r"|(?P<dec>[+-]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|[+-]?\.\d+)"
)
_PERCENT = re.compile(r"(?:\\?%|percent\b)\s*")
# Words after a number that are not units: they change its value or make it an expression.
_NOT_UNITS = frozenset("pi π e i x y z n k sqrt thousand hundred million billion trillion".split())
_ONE_LETTER_UNITS = frozenset("mgshljwv")  # metres, grams, seconds, hours, litres, joules, watts, volts
_UNIT_TOKEN = r"(?:°[^\W\d_]*|[^\W\d_]+[23]?)"
_UNIT = re.compile(rf"{_UNIT_TOKEN}(?: ?[/·] ?{_UNIT_TOKEN}| {_UNIT_TOKEN})*")
_MAX_GRADED = 500  # characters; a longer candidate is a whole reasoning text, and sympy on it only costs time


class _Number(NamedTuple):
    value: Fraction
    percent: bool
    unit: str  # canonical unit text, "" for none


def _unit(rest: str) -> str | None:
    """``rest`` (the text after a number) as a canonical unit ("cm2", "°", "m/s"), "" for nothing,
    None when it is not a unit (an expression, a sentence with digits, "pi", a variable)."""
    u = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree", "°", rest)
    u = re.sub(r"\^\s*\{?\s*([23])\s*\}?", r"\1", u).replace("²", "2").replace("³", "3")
    u = " ".join(u.replace("\\cdot", "·").replace("\\", " ").split())
    if not u:
        return ""
    words = re.findall(r"[^\W\d_]+", u)
    if len(u) > 40 or len(words) > 4 or not _UNIT.fullmatch(u) or any(w in _NOT_UNITS for w in words):
        return None
    if any(len(w) == 1 and w not in _ONE_LETTER_UNITS for w in words):  # "2 x", "3 a": not units
        return None
    return u


def parse_number(text: object) -> _Number | None:
    """``text`` as an exact number with an optional percent sign and unit ("1,234.5 cm", "\\frac{1}{2}",
    "3/4", "50\\%", "x = 3", "$12"); None when it is anything else (expressions, lists, sentences)."""
    s = normalized_answer(text).replace("−", "-").replace("\\!", "").replace("\\,", "").replace("{,}", ",")
    s = re.sub(r"^[a-z]\w{0,3}\s*=\s*(?=[^=]*$)", "", s)  # "x = 3", "ab = 5 cm"
    s = re.sub(r"^(?:€|£|¥|usd)\s*", "", s)  # '$' went with the math delimiters
    if len(s) > 100 or not (m := _NUMBER.match(s)):
        return None
    g = m.groupdict()
    if g["dec"] is not None:
        value = Fraction(g["dec"].replace(",", ""))
    else:
        num, den = (g["fn"] or g["n1"], g["fd"] or g["d1"]) if g["fd"] or g["d1"] else (g["sn"], g["sd"])
        if Fraction(den) == 0:
            return None
        value = Fraction(num) / Fraction(den) * (-1 if g["fs"] == "-" else 1)
    rest = s[m.end() :].strip()
    percent = bool(p := _PERCENT.match(rest))
    unit = _unit(rest[p.end() :] if p else rest)
    return None if unit is None else _Number(value, percent, unit)


def _round(x: Fraction, digits: int) -> Fraction:
    """Half away from zero on the exact value (Python's float ``round``, which MathVista uses, agrees
    except at exact halves that binary floats cannot hold: 2.675 -> 2.68 here, 2.67 there)."""
    scale = Fraction(10) ** digits
    return math.floor(abs(x) * scale + Fraction(1, 2)) / scale * (1 if x >= 0 else -1)


def _numbers_match(p: _Number, t: _Number, digits: int | None, tolerance: Fraction | None) -> bool:
    # A percent sign may be read either way: "50%" matches "50" (MathVista writes percentage answers
    # without the sign) and "0.5" (its value).
    for a in {p.value, p.value / 100} if p.percent else {p.value}:
        for b in {t.value, t.value / 100} if t.percent else {t.value}:
            if a == b or digits is not None and _round(a, digits) == _round(b, digits):
                return True
            if tolerance is not None and abs(a - b) <= tolerance:
                return True
    return False


def _finite(value: object) -> float | None:
    """A finite float from a number or numeric string (data files differ), else None."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth < 0:
            return text[begin:i]
    return None


def free_form_candidates(response: object) -> list[str]:
    """What may be the answer in a response: the final-answer section (or whole text), the last
    ``\\boxed{}`` in it, and the rest of the line after its last "answer is"/"Answer:"."""
    text = extract_answer(response)
    found = [text, _last_boxed(text)]
    marks = [m for m in ANSWER_MARK.finditer(text) if not m.group().startswith("\\")]
    if marks:
        found.append(text[marks[-1].end() :].split("\n")[0])
    return [c for c in dict.fromkeys(found) if c and c.strip()]


def match_free_form(
    response: object,
    truth: object,
    precision: float | None = None,
    unit_strip: bool = True,
    tolerance: float | None = None,
) -> bool:
    """True when any ``free_form_candidates`` of the response matches ``truth``.

    Args:
        response: the model's response or answer.
        truth: the ground-truth answer text.
        precision: decimals to round both numbers to before comparing (MathVista's ``precision``;
            "2" and 2.0 work too); None or NaN (pandas' empty cell) compares exact values.
        unit_strip: ignore units ("12 cm" == "12", "12 cm" == "12 m"); False requires the same unit
            spelling on both sides ("12 cm" != "12"; no synonyms).
        tolerance: also accept numbers at most this far apart (DynaMath: 0.001).

    Numbers (decimals, thousands separators, ``a/b``, ``\\frac{a}{b}``, percents, units) are compared
    exactly as fractions ("2/4" == "0.5", unlike mathruler's rule for unreduced fractions); anything
    else, or a side that is no plain number ("\\sqrt{2}", "3 million"), goes to ``rewards.grading.grade``.
    """
    places, tol = _finite(precision), _finite(tolerance)
    digits = None if places is None else max(-30, min(30, int(places)))  # 10**big would never finish
    tol = None if tol is None else Fraction(repr(tol))
    if not isinstance(truth, str):
        return False
    gold = parse_number(truth)
    for candidate in free_form_candidates(response):
        pred = parse_number(candidate)
        if pred is not None and gold is not None:
            same_unit = unit_strip or pred.unit == gold.unit
            if same_unit and _numbers_match(pred, gold, digits, tol):
                return True
        elif len(candidate) <= _MAX_GRADED and grade(candidate, truth):
            return True
    return False
