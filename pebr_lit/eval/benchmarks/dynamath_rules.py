"""DynaMath's answer rules: the official opensource_json_eval.py and VLMEvalKit's DynaMath_auxeval, reimplemented.

Both scorers expect a JSON reply whose "short answer" key holds the answer. pebr-lit's PeBR prompt replaces
DynaMath's JSON instruction, so the final-answer section is the short answer (a section that is itself a
JSON object with a "short answer" key is read as the scorers read it).

Official (``DynaMath/DynaMath`` ``evaluation/opensource_json_eval.py``, read at commit
598c3c3d732422d29580e9ecf8f2a7928a068fdd; behaviour reimplemented here, not copied), ``official_correct``:
  - float: the first space-separated word of the answer as a number ("2π" is 2 x pi), right within 0.001;
  - multiple choice: a one-character answer must equal the truth letter (case-sensitive); a longer one is
    right when the truth letter is within its first 3 characters ("(B) 12", "B. 12");
  - other types: right when the truth text appears inside the answer.
VLMEvalKit (``open-compass/VLMEvalKit`` ``vlmeval/dataset/dynamath.py`` ``preprocess``/``parse_answer``/
``DynaMath_auxeval``, read at commit e8e78f05f3080fe28154f2130321f17951c3be94), ``vlmevalkit_correct``:
  - backslashes are dropped and the text is cut to its outermost "{...}" when it has one;
  - float: as above (unparseable -> its GPT step; without a judge, wrong);
  - multiple choice: a one-character answer upper-cased, else the one letter of A-E that the upper-cased
    text contains (any word counts: "THE" holds E); none or several -> GPT step, and without a judge, right
    when the truth letter is within the first 3 characters, upper-cased;
  - other types: right when the *answer* appears inside the truth text (the reverse of the official test;
    so an empty answer is right there).

Left out on purpose: the official fallback for a reply that is not JSON (its last line minus its last
character, written for JSON replies) and the scorers' GPT prompts (``eval.judge`` reads answers instead).
"""

from __future__ import annotations

import json
import math

TOLERANCE = 0.001


def _short_answer(text: str) -> str:
    """The "short answer" of a JSON answer, else the text itself."""
    try:
        data = json.loads(text, strict=False)
    except ValueError:
        return text
    return str(data["short answer"]) if isinstance(data, dict) and "short answer" in data else text


def _float(answer: str) -> float | None:
    """``transfer`` on the first word: a number, or a number before "π" times pi; None if unreadable."""
    word = answer if answer.isdigit() else answer.split(" ")[0]
    try:
        if "π" in word:
            return float(word.split("π")[0]) * math.pi
        return float(word)
    except ValueError:
        return None


def _float_correct(answer: str, truth: str) -> bool:
    value = _float(answer)
    try:
        return value is not None and abs(value - float(truth)) <= TOLERANCE
    except ValueError:
        return False


def official_correct(answer: str, truth: str, answer_type: str) -> bool:
    """``opensource_json_eval.py``'s verdict for the short answer ``answer``."""
    answer = _short_answer(answer)
    if answer_type == "float":
        return _float_correct(answer, truth)
    if answer_type == "multiple choice":
        return answer == truth if len(answer) == 1 else truth in answer[:3]
    return truth in answer


def _cut_to_braces(text: str) -> str:
    """VLMEvalKit's ``preprocess``: the outermost "{...}" without backslashes, when there is one."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1].replace("\\", "") if 0 <= start < end else text.replace("\\", "")


def vlmevalkit_correct(answer: str, truth: str, answer_type: str) -> bool:
    """``DynaMath_auxeval``'s verdict without its GPT step (an unparseable answer is then judged by rule)."""
    text = _cut_to_braces(answer)
    short = _short_answer(text)
    if answer_type == "float":
        return _float_correct(short, truth)
    if answer_type == "multiple choice":
        if len(short) == 1:
            return short.upper() == truth
        letters = [c for c in "ABCDE" if c in short.upper()]
        if len(letters) == 1:
            return letters[0] == truth
        return truth in text[:3].upper()  # no parse: the truth letter at the start of the reply
    return short.lower() in truth.lower()
