"""The authors' reward rules as pure functions: keyword, format, accuracy, CLIP caption and CLIP reward.

Each function reproduces one component of the authors' reward scripts (cythu/PeBR-R1,
``examples/reward_function/pebr_1.py``, ``pebr_2.py``, ``pebr_sample.py``), value for value, including
the parts pebr-lit's own rules (``rewards.components``) change on purpose:

- every component first closes up the spaces around ``<``, ``>`` and ``/`` (``normalise``), as the
  authors do to the whole response before scoring it;
- keyword: each keyword (not deduplicated) counts when its lower-cased form is a substring of the
  lower-cased response, anywhere ("red" inside "considered", or in the rationale); no keywords -> 0;
- format: the four headings occur anywhere, in any order, sections may be empty;
- accuracy: the first line after the first ``### The final answer is:`` (exactly that spelling and
  case), graded as is: no multiple-choice letter matching (``format.final_answer``, rule ``authors``). The
  scripts grade the whole stripped response when the heading is absent; here by default such a response
  has no answer (0 under every grader, as in pebr-lit's rules), ``AuthorsRules(no_section="whole_response")``
  restores the scripts' fallback;
- CLIP caption: the text between the description and rationale headings, "" when absent (and "" is
  scored like any caption);
- CLIP reward: ``s / threshold`` below the threshold, negative similarities kept (so negative rewards).

Where the authors' script would raise (a non-string response, a keyword that is not a string, a
similarity that failed), these give the component's failure value instead (0, or "" for the caption).

Left out on purpose: the rule-set classes chosen in YAML (``rewards.rules``), the CLIP model, the
length reward (the same rule as ``rewards.components.length_reward``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from pebr_lit.format.final_answer import AUTHORS, FinalAnswer, close_up_symbols
from pebr_lit.rewards.components import Grader
from pebr_lit.rewards.grading import verdict

_SCRIPTS = FinalAnswer("authors", "whole_response")


# Anywhere, case-insensitive, any run of whitespace (none too) after the '###'.
_HEADING_RES = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (r"###\s*Image Description:", r"###\s*Rationales:", r"###\s*Step\s*1:", r"###\s*The final answer is:")
)

# The leftmost description heading up to the first rationale heading after it, across lines, any case.
_CAPTION_RE = re.compile(r"###\s*Image Description:\s*(.*?)###\s*Rationales:", re.IGNORECASE | re.DOTALL)


def normalise(response: object) -> str:
    """The response with the whitespace around ``<``, ``>`` and ``/`` removed ("x < 3" -> "x<3"); "" for a
    non-string (``format.final_answer.close_up_symbols``)."""
    return close_up_symbols(response)


def keyword_reward(response: object, key_words: Sequence[str] | str) -> float:
    """Share of ``key_words`` whose lower-cased form occurs in the lower-cased normalised response.

    Every entry counts, repeats included (["red", "red", "blue"] with only red present gives 2/3); an
    empty string occurs everywhere, so it counts as found; a non-string entry counts as not found; a
    bare string is one keyword. No keywords -> 0.
    """
    if isinstance(key_words, str):
        key_words = [key_words]
    if not key_words:
        return 0.0
    text = normalise(response).lower()
    return sum(1 for k in key_words if isinstance(k, str) and k.lower() in text) / len(key_words)


def format_reward(response: object) -> float:
    """1 when the description, rationale, ``Step 1`` and final-answer headings all occur somewhere, else 0."""
    text = normalise(response)
    return 1.0 if all(p.search(text) for p in _HEADING_RES) else 0.0


def extract_answer(response: object) -> str:
    """The authors' scripts' answer: the first line of text after the first ``### The final answer is:`` of the
    normalised response, stripped; the whole stripped normalised response when that heading is absent
    (``format.final_answer.FinalAnswer("authors", "whole_response")``)."""
    return _SCRIPTS.extract(response) or ""


def accuracy_reward(response: object, answer: object, grader: Grader, final_answer: FinalAnswer = AUTHORS) -> float:
    """1 when ``grader(final_answer.extract(response), answer.strip())`` holds (or, under a ``pebr_lit`` rule, the
    answer names the truth's letter), else 0 (also when the grader raises or gives no verdict: NaN, a number
    outside [0, 1], not a number; ``grading.verdict``). By default (``AUTHORS``) a
    response without the answer heading has no answer and scores 0 whatever the grader; pass
    ``FinalAnswer("authors", "whole_response")`` to grade its whole text, as the authors' scripts do."""
    if not isinstance(answer, str):
        return 0.0
    try:
        prediction, truth = final_answer.extract(response), answer.strip()
        if prediction is None:
            return 0.0
        # letter_matches is False under the authors' rule; True only for a pebr-lit rule's letter.
        return 1.0 if verdict(grader(prediction, truth)) or final_answer.letter_matches(prediction, truth) else 0.0
    except Exception:  # a grader crash on model output is a wrong answer, never a failed step
        return 0.0


def clip_text(response: object) -> str:
    """The caption CLIP compares with the image: the stripped text between the first description heading
    and the next rationale heading of the normalised response; "" when either is missing."""
    match = _CAPTION_RE.search(normalise(response))
    return match.group(1).strip() if match else ""


def clip_reward_from_similarity(similarity: float, threshold: float = 0.4) -> float:
    """1 when the cosine similarity reaches ``threshold``, else ``s / threshold``, negative s kept.

    The range is [-1 / threshold, 1]: a cosine is never below -1, and the floor only absorbs rounding.
    A failed similarity (NaN or infinite) gives 0, as the authors give 0 when scoring raises.
    """
    if not threshold > 0:
        raise ValueError(f"clip_reward_from_similarity: threshold={threshold} must be positive.")
    s = float(similarity)
    if not math.isfinite(s):
        return 0.0
    return 1.0 if s >= threshold else max(s, -1.0) / threshold
