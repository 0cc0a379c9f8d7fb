"""Answer grading shared by the accuracy reward, SFT validation and benchmark evaluation.

``grade`` compares a predicted answer with the ground truth: exact after light normalisation
(case, surrounding punctuation, a trailing period), then ``mathruler``'s math-aware comparison
(the authors' grader: ``1/2`` equals ``0.5``, ``\\frac{1}{2}`` equals ``0.5``). It never raises, and
on the main thread the math-aware part is cut off after ``time_limit_s`` (sympy can be led into
unbounded work by adversarial model output); elsewhere only the input guards below apply.
``mathruler_grade`` is ``grade_answer`` alone, as the authors' reward scripts call it (the
``AuthorsRules`` recipe); ``math_verify_grade`` uses Hugging Face ``math-verify`` instead.

Left out on purpose: benchmark-specific conventions such as option texts (``eval`` adapters) and which text
of a response is its final answer (``format.final_answer``, which also reads option letters).
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
from collections.abc import Iterator

from pebr_lit.format.final_answer import TRAINING

_STRIP = " \t\n\r.。,;:!\"'`*$"
#: A leading '.' is a decimal point (".5" is 0.5, not 5), so only the trailing side drops it.
_LEAD_STRIP = _STRIP.replace(".", "")


def verdict(value: object) -> bool | None:
    """A grader's return value as correct (True) or wrong (False): a bool, or a real number in [0, 1] (non-zero
    is correct, as ``bool`` reads it); None for anything else: NaN, infinities, numbers outside [0, 1], None,
    strings, objects. NaN is truthy in Python, so reading a grader's value with ``bool`` would call it correct."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) or value is None:
        return None
    try:
        number = float(value)  # numpy and one-element torch values too
    except (TypeError, ValueError, RuntimeError):
        return None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        return None
    return number != 0.0


def normalize(text: str) -> str:
    """Lower-case, collapse spaces, drop surrounding quotes/punctuation and ``\\boxed{...}``."""
    text = text.strip()
    boxed = re.fullmatch(r"\\boxed\{(.*)\}", text, flags=re.DOTALL)
    if boxed:
        text = boxed.group(1)
    return re.sub(r"\s+", " ", text.rstrip(_STRIP).lstrip(_LEAD_STRIP)).lower()


class _TimedOut(BaseException):
    """Not an Exception, so ``except Exception`` blocks inside sympy/mathruler cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``_TimedOut`` after ``seconds`` of wall time (a SIGALRM timer; main thread on Unix only)."""
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def grade(prediction: object, truth: object, time_limit_s: float = 2.0) -> bool:
    """True when ``prediction`` matches ``truth``; any failure or timeout inside the grader counts as wrong."""
    if not isinstance(prediction, str) or not isinstance(truth, str):
        return False
    pred, gold = normalize(prediction), normalize(truth)
    if not pred:
        return False
    if pred == gold:
        return True
    if "!" in pred:  # sympy evaluates factorials eagerly: "(99999999)!+1/2" never returns
        return False
    try:
        from mathruler.grader import grade_answer

        # mathruler refuses '^' towers such as 9^9^9 but not the same tower written with '**',
        # which sympy then computes forever; spelling power as '^' lets its guard apply.
        with _time_limit(time_limit_s):
            return bool(grade_answer(pred.replace("**", "^"), gold.replace("**", "^")))
    except (Exception, _TimedOut):  # the grader parses arbitrary model output with sympy; never let that crash a step
        return False


def mathruler_grade(prediction: object, truth: object, time_limit_s: float = 2.0) -> bool:
    """``mathruler``'s ``grade_answer`` as the authors call it, with nothing added: no normalisation of
    ours first (so "B." is not "B", and "" equals ""); a non-string, a crash or a timeout (main thread
    only, as ``grade``) counts as wrong. ``grade`` accepts a superset of what this accepts."""
    if not isinstance(prediction, str) or not isinstance(truth, str):
        return False
    try:
        from mathruler.grader import grade_answer

        with _time_limit(time_limit_s):
            return bool(grade_answer(prediction, truth))
    except (Exception, _TimedOut):  # arbitrary model output goes through sympy; a crash is a wrong answer
        return False


_MATH_VERIFY_TIMEOUT_S = 3  # per parse and per comparison; sympy can take forever on towers like 9^9^9


def math_verify_grade(prediction: str, truth: str) -> bool:
    """Grade with Hugging Face ``math-verify`` (after an exact match on normalised text); never raises.

    math-verify times out with SIGALRM, which works only in the main thread; off it, only the exact match
    counts (sympy without a timeout may never return).
    """
    if not isinstance(prediction, str) or not isinstance(truth, str) or not normalize(prediction):
        return False
    if normalize(prediction) == normalize(truth):
        return True
    try:
        from math_verify import parse, verify

        if threading.current_thread() is not threading.main_thread():
            return False
        t = _MATH_VERIFY_TIMEOUT_S
        gold, pred = parse(truth, parsing_timeout=t), parse(prediction, parsing_timeout=t)
        return bool(gold and pred and verify(gold, pred, timeout_seconds=t))
    except Exception:  # arbitrary model output goes through sympy; a crash is a wrong answer
        return False


def choice_letter_match(prediction: str | None, truth: str) -> bool:
    """True when ``truth`` is a single option letter and the final answer ``prediction`` names that letter
    ("(B)", "B. 42", "The answer is B"): pebr-lit's letter rule (``format.final_answer.choice_letter``; the reward
    knows no options, so no text matching)."""
    return TRAINING.letter_matches(prediction, truth)
