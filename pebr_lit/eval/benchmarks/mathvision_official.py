"""MATH-V's own answer rule (evaluation/evaluate.py with utils.py), reimplemented without eval on model text.

Follows ``mathllm/MATH-V`` at commit a1f5cc3add200c0cd080fad463e500f44ef1fb41 (behaviour reimplemented here,
not copied):
  - ``official_answer`` is ``evaluate.py``'s clean-up of a response: a letter from "... B." / "(B)\\n..."
    forms, the number after the last "is ", the text after "the (final|correct) answer is/should be" (up to
    the line's end or ". "), the last ``\\boxed{}``; then ``find_math_answer`` (lower case, the boxed
    content, the part after the last "=", units "km"/"m^3"/"units" and ``\\text`` dropped) and
    ``_strip_string`` (MATH's normaliser: ``\\dfrac`` -> ``\\frac``, degrees, ``\\%`` and "$" dropped,
    "0.5" -> ``\\frac{1}{2}``, "a/b" -> ``\\frac{a}{b}``).
  - ``official_equal`` is ``is_equal``: lower case, the same text; tuples/lists evaluated entry by entry and
    rounded to 2 decimals; else both through ``latex2sympy`` and equal after rounding to 2 decimals.
    MATH-V's ``eval`` has ``from math import *``: ``arithmetic`` here reads the same names (sqrt, pi, e, ...).
  - a response is right when it equals the answer letter or the option text.

Known gaps: MATH-V imports ``latex2sympy2``; pebr-lit uses ``latex2sympy2_extended`` (math-verify's
dependency), whose parse can differ on unusual LaTeX; Python builtins other than abs/round/min/max/pow are
not read.
"""

from __future__ import annotations

import math
import re

from pebr_lit.eval.benchmarks.mathvision_rules import MAX_LATEX_CHARS, Unreadable, arithmetic

_MATH_NAMES = {k: v for k, v in vars(math).items() if not k.startswith("_")}
_MATH_NAMES.update(abs=abs, round=round, min=min, max=max, pow=pow)
_FLAGS = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")
_BOXED = re.compile(r"oxed{(.*)}", re.S)
_FIND_DROPS = (
    ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""),
    ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""), ("{units}", ""), ("units", ""), ("{km}", ""), ("km", ""),
)  # fmt: skip
_STRIP_DROPS = (
    ("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"), ("\\left", ""), ("\\right", ""),
    ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", ""), ("$", ""),
)  # fmt: skip


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sqrt_braces(s: str) -> str:
    """``_fix_sqrt``: "\\sqrt2" -> "\\sqrt{2}" (one character)."""
    head, *rest = s.split("\\sqrt")
    return head + "".join("\\sqrt" + (p if not p or p[0] == "{" else "{" + p[0] + "}" + p[1:]) for p in rest)


def _frac_braces(s: str) -> str:
    """``_fix_fracs``: "\\frac12" -> "\\frac{1}{2}", "\\frac1{2}" -> "\\frac{1}{2}"; unchanged if malformed."""
    head, *rest = s.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if part and part[0] == "{":
            out += part
        elif len(part) < 2:
            return s
        elif part[1] != "{":
            out += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
        else:
            out += "{" + part[0] + "}" + part[1:]
    return out


def _slash_to_frac(s: str) -> str:
    """``_fix_a_slash_b``: "3/4" (integers, written plainly) -> "\\frac{3}{4}"."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


def strip_string(s: str) -> str:
    """``_strip_string``, MATH's answer normaliser."""
    for old, new in _STRIP_DROPS:
        s = s.replace(old, new)
    s = s.split("\\text{ ")[0]  # units after "\text{ "
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    for sep in ("=", "\\approx"):
        if len(s.split(sep)) == 2:
            s = s.split(sep)[-1]
    if "sqrt" in s:
        s = _sqrt_braces(s)
    s = s.replace(" ", "")
    if "sqrt" in s:  # MATH-V fixes fractions only here
        s = _frac_braces(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_to_frac(s)


def find_math_answer(s: str) -> str:
    """``find_math_answer``: the boxed (or whole) answer, cleaned, then ``strip_string``."""
    s = s.lower().replace("{}", "")
    found = _BOXED.findall(s)
    ans = found[-1] if found else s
    if "}" in ans and ("{" not in ans or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1].split("\\approx")[-1]
    ans = ans.replace(" ", "").replace("\\,", "").replace("∞", "\\infty").replace("+\\infty", "\\infty")
    ans = ans.replace("\\\\", "\\").replace("\n", "")
    for old, new in _FIND_DROPS:
        ans = ans.replace(old, new)
    return strip_string(ans)


def official_answer(response: str) -> str:
    """``evaluate.py``'s ``model_answer`` for a response."""
    ans = response.strip()
    for c in "ABCDE":
        ends = ans.endswith((f" {c}.", f" ({c})."))
        if ends or ans.startswith((f"{c}\n", f"({c})\n", f"({c}) {c}\n")):
            ans = c
    if _is_number(ans.split("is ")[-1].rstrip(".")):
        ans = ans.split("is ")[-1].rstrip(".")
    if "oxed{" not in ans:
        for flag in _FLAGS:
            for variant in (flag, flag.replace("the", "The")):
                had = variant in ans
                ans = ans.split(variant)[-1].strip()
                if had:
                    ans = ans.split("\n")[0].split(". ")[0]
    elif ans.count("oxed{") > 1:
        ans = "\\boxed{" + ans.split("oxed{")[-1]
    ans = find_math_answer(ans)
    for c in "abcde":
        ans = ans.replace(f"({c})", c).replace(f"{{{c}}}", c)
    return ans.rstrip(".").lstrip(":").strip()


def _latex_value(text: str) -> float:
    """The value of ``latex2sympy(text)`` rounded to 2 places (MATH-V evaluates its string form; here an AST reader
    does); ``Unreadable`` when any step fails."""
    if len(text) > MAX_LATEX_CHARS:
        raise Unreadable("too long")
    from latex2sympy2_extended import latex2sympy

    try:
        expr = latex2sympy(text)
    except Exception as e:  # noqa: BLE001 - any parse failure is "unreadable", as MATH-V's bare except
        raise Unreadable(str(e)) from None
    try:
        return round(arithmetic(str(expr), _MATH_NAMES), 2)
    except TypeError as e:  # round() of a complex value
        raise Unreadable(str(e)) from None


def _tuple_text(s: str) -> str:
    """``eval_tuple``: "(a, b)" / "[a, b]" with each entry's value rounded to 2 decimals; else ``s``."""
    entries = s[1:-1].split(",")
    if len(s) < 2 or len(entries) < 2 or (s[0], s[-1]) not in (("(", ")"), ("[", "]")):
        return s
    try:
        values = [e if "infty" in e or e in ("a", "-a") else str(_latex_value(e)) for e in entries]
    except Unreadable:
        return s
    return s[0] + ",".join(values) + s[-1]


def official_equal(answer: str, truth: str) -> bool:
    """``is_equal``: same text, same tuple values, or the same ``latex2sympy`` value to 2 decimals."""
    answer, truth = answer.lower(), truth.lower()
    if not answer.replace(" ", "") or not truth.replace(" ", ""):
        return False
    if answer.strip() == truth.strip():
        return True
    answer, truth = _tuple_text(answer), _tuple_text(truth)
    if answer == truth:
        return True
    try:
        return _latex_value(truth) == _latex_value(answer)
    except Unreadable:
        return False
