"""VLMEvalKit's rule-based answer readers: ``can_infer`` for multiple choice, ``YOrN_Extraction`` for yes/no.

Written from reading VLMEvalKit (open-compass/VLMEvalKit at commit e8e78f05f3080fe28154f2130321f17951c3be94):
``vlmeval/utils/matching_util.py`` (``can_infer_option``, ``can_infer_text``, ``can_infer``),
``vlmeval/dataset/utils/yorn.py`` (``YOrN_Extraction``) and ``vlmeval/smp/misc.py`` (``process_punctuation``).
Under VLMEvalKit's ``exact_matching`` policy (no judge model) a multiple-choice prediction that ``can_infer``
cannot read is graded as option "Z" (wrong), and a yes/no prediction that ``YOrN_Extraction`` cannot read is
"Unknown" (wrong). The behaviour kept here, rule by rule:

- ``can_infer_option``: the punctuation ``.()[],:;!*#{}`` becomes spaces and the text is split on whitespace; when
  exactly one option letter is a token, it is the answer if its first occurrence is among the last four tokens;
  when no option letter is a token but "Z" is, the answer is "Z"; failing both, "answer is X" / "correct answer
  is **X**" (any case, X one of A-D) names X. Refusal phrases ("Cannot determine the answer", ...) give "Z".
- ``can_infer_text``: only when the prediction is at most twice as long as all option texts together, the one
  option whose lower-cased text is a substring of the lower-cased prediction; none or several -> no answer.
- ``YOrN_Extraction``: lower-case, ``process_punctuation``, split on whitespace; "yes" without "no" -> Yes, "no"
  without "yes" -> No, else Unknown. ``process_punctuation`` deletes a punctuation mark where it touches a
  space somewhere in the text (or any "digit,digit" occurs) and turns it into a space otherwise, then deletes
  periods not beside a digit - only the first 32, as VLMEvalKit passes ``re.UNICODE`` (32) as ``sub``'s count.

Left out on purpose: the GPT judge that VLMEvalKit asks when these rules fail (``eval.judge``), the
``VERBOSE`` environment switch that makes ``can_infer_option`` refuse "A" in long texts (off by default),
LEGO's sequence reader, and which text is graded (the adapters pass the final-answer section).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REFUSED = "Z"
"""VLMEvalKit's letter for "no option": a refusal, or an answer naming Z; never a correct answer."""

_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_OPTION_PUNCT = str.maketrans(dict.fromkeys(".()[],:;!*#{}", " "))
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_YORN_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_LONE_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def choice_dict(options: Mapping[str, object] | tuple[object, ...] | list[object]) -> dict[str, str]:
    """``{letter: option text}`` as VLMEvalKit's ``build_choices`` makes it: options A, B, ... in order; an empty
    or missing option (a NaN cell in its TSVs) is no option at all."""
    pairs = options.items() if isinstance(options, Mapping) else zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", options)
    return {str(k): str(v) for k, v in pairs if v is not None and str(v).strip() and str(v).lower() != "nan"}


def can_infer_option(answer: str, choices: Mapping[str, str]) -> str | None:
    """The option letter named in ``answer`` by VLMEvalKit's letter rule (module docstring), "Z", or None."""
    if "Failed to obtain answer via API" in answer:
        return None
    if any(phrase in answer for phrase in _REFUSALS):
        return REFUSED
    tokens = answer.translate(_OPTION_PUNCT).split()
    named = [c for c in choices if c in tokens]
    if len(named) == 1 and tokens.index(named[0]) > len(tokens) - 5:
        return named[0]
    if not named and REFUSED in tokens:
        return REFUSED
    m = _ANSWER_IS.search(answer)
    if m and m.group(1).upper() in choices:
        return m.group(1).upper()
    return None


def can_infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """The one option whose text appears in a short ``answer`` (at most twice the options' total length), or None."""
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    found = [k for k, v in choices.items() if str(v).lower() in answer]
    return found[0] if len(found) == 1 else None


def can_infer(answer: object, choices: Mapping[str, str]) -> str | None:
    """VLMEvalKit's ``can_infer``: the letter rule, then the text rule; None when neither reads an option."""
    text = str(answer)
    return can_infer_option(text, choices) or can_infer_text(text, choices)


def process_punctuation(text: str) -> str:
    """VLMEvalKit's ``process_punctuation`` (module docstring), which ``YOrN_Extraction`` applies first."""
    out = text
    glued_numbers = _DIGIT_COMMA_DIGIT.search(text) is not None
    for p in _YORN_PUNCT:
        touches_space = p + " " in text or " " + p in text
        out = out.replace(p, "" if touches_space or glued_numbers else " ")
    return _LONE_PERIOD.sub("", out, count=re.UNICODE)  # VLMEvalKit's call passes re.UNICODE (32) as the count


def yorn_extraction(output: object) -> str | None:
    """VLMEvalKit's ``YOrN_Extraction``: "yes", "no", or None (its "Unknown")."""
    words = process_punctuation(str(output).lower()).split()
    if ("yes" in words) != ("no" in words):
        return "yes" if "yes" in words else "no"
    return None
