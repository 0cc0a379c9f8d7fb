"""Per-response PeBR reward components: keyword, format, length, CLIP-from-similarity and accuracy.

Every function takes strings/numbers and returns a float in [0, 1]; any model output (empty, huge,
malformed, not a string) gives a finite reward, never an exception. The stage combinations are in
``rewards.stages``, the graders behind the accuracy reward in ``rewards.grading``.

Left out on purpose: the CLIP model (``clip.scorers`` computes the image-description similarity, which
comes in here as a number), tokenisation (token counts come in as numbers), logging and I/O.

These are ``rewards.rules.PebrLitRules``, the default rule set; ``rewards.rules.AuthorsRules`` runs the
authors' rules (``rewards.authors``) instead. Where this file and the authors' code
(``examples/reward_function/pebr_1.py`` in cythu/PeBR-R1) differ:
- keyword scope: paper = the description section, authors = the whole response (``description_only``).
- keyword matching: authors = case-insensitive substring ("red" counts inside "considered"); here by
  default a whole word, case-insensitive, whose last word may take a plural "s"/"es" ("circle" matches
  "circles", "red" does not match "considered" or "bored"); ``whole_word=False`` matches substrings.
  Scripts without spaces between words (CJK) are matched as substrings either way.
- keyword counting: case- and space-variants of a keyword count once here; the authors count every
  entry, and give a record without keywords 0 where ``PebrLitRules`` extracts them from its teacher description.
- format: authors check that the four headings exist; here each of description, rationale, a step and
  the answer must also be non-empty (``format.response.parse_response``), so bare headings earn nothing.
- clip: authors let a negative similarity give a negative reward (s / 0.4); here it gives 0, so every
  reward stays in [0, 1]. A response without a description gets 0 (authors score the empty caption).
- accuracy: authors grade the first line after the first final-answer heading (the whole response when it is
  absent); here the whole last final-answer section, no answer without one, plus option letters ("The answer
  is B" == "B"): ``format.final_answer.TRAINING``, the rule the benchmark scorers read sections by too.
- the authors also close up the spaces around ``<``, ``>`` and ``/`` before scoring; this file does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from pebr_lit.format.final_answer import TRAINING, FinalAnswer
from pebr_lit.format.response import parse_response
from pebr_lit.rewards.grading import grade, verdict

Grader = Callable[[str, str], bool]
"""``grader(prediction, truth) -> bool``; chosen in YAML by import path
(``pebr_lit.rewards.grading.math_verify_grade``)."""


# Words any description uses, which say nothing about a particular image.
STOPWORDS = frozenset(
    "a an the and or but nor of to in on at by for with from into onto over under above below as is are was "
    "were be been being am it its it's this that these those there here their them they he she his her him we "
    "our you your i me my some any each every all both either neither no not only also very so than then too "
    "can could may might must shall should will would do does did has have had having which who whom whose what "
    "where when while how why if else about against between through during before after up down out off again "
    "further once same other such own just one's image picture photo photograph shows shown showing depicts "
    "depicted depicting contains containing appears appear seems visible see seen can't there's".split()
)


_TOKEN_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


_CJK_START = 0x2E80  # from here on, scripts are written without spaces between words


def _needs_boundary(char: str) -> bool:
    return char.isalnum() and ord(char) < _CJK_START


@lru_cache(maxsize=4096)
def _keyword_pattern(keyword: str, whole_word: bool) -> re.Pattern[str] | None:
    words = keyword.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)  # "traffic light" also matches "traffic\nlight"
    if not whole_word:
        return re.compile(body, re.IGNORECASE)
    # A boundary is any character but a letter or digit ("_" separates words, as in extract_keywords).
    head = r"(?<![^\W_])" if _needs_boundary(words[0][0]) else ""
    last = words[-1][-1]
    tail = (r"(?:e?s)?(?![^\W_])" if last.isalpha() else r"(?![^\W_])") if _needs_boundary(last) else ""
    return re.compile(head + body + tail, re.IGNORECASE)


def keyword_reward(
    response: str, key_words: Sequence[str], description_only: bool = True, whole_word: bool = True
) -> float:
    """Fraction of the distinct keywords found (case-insensitively) in the response; no keywords -> 0.

    Args:
        response: the policy's full response.
        key_words: the sample's keywords; case- and space-variants count once, empty ones are ignored.
        description_only: search only the description section (paper); False searches the whole
            response (authors' code). A response without a description then scores 0.
        whole_word: match whole words (plural "s"/"es" allowed on the last word); False matches any
            substring, as the authors do.
    """
    if isinstance(key_words, str):  # a bare string is one keyword, not a list of characters
        key_words = [key_words]
    # Deduplicated by case-folded form, matched in the first-seen spelling: folding can change a word's
    # letters ("ß" -> "ss"), which IGNORECASE matching does not undo.
    unique: dict[str, str] = {}
    for k in key_words:
        if isinstance(k, str) and k.strip():
            unique.setdefault(" ".join(k.split()).casefold(), " ".join(k.split()))
    if not unique:
        return 0.0
    text = (parse_response(response).description or "") if description_only else response
    if not isinstance(text, str) or not text:
        return 0.0
    hits = sum(1 for k in unique.values() if (p := _keyword_pattern(k, whole_word)) is not None and p.search(text))
    return hits / len(unique)


def extract_keywords(description: str, max_keywords: int = 10) -> list[str]:
    """Keywords for a record that has none: lower-cased content words of ``description``, in order of
    first appearance, without stopwords, single letters or repeats. Deterministic, no model."""
    if max_keywords < 0:
        raise ValueError(f"extract_keywords: max_keywords={max_keywords} is negative; use 0 or more.")
    if not isinstance(description, str):
        return []
    tokens = _TOKEN_RE.findall(description.lower())
    words = [w for w in tokens if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return list(dict.fromkeys(words))[:max_keywords]


def format_reward(response: str) -> float:
    """1 when description, rationale, at least one step and the final answer are all present and non-empty."""
    return 1.0 if parse_response(response).is_complete else 0.0


def length_reward(num_tokens: float, target: int = 512) -> float:
    """1 for a response of at most ``target`` tokens, else ``target / num_tokens``; NaN counts -> 0."""
    if target <= 0:
        raise ValueError(f"length_reward: target={target} tokens must be positive.")
    if math.isnan(num_tokens):
        return 0.0
    return 1.0 if num_tokens <= target else target / num_tokens


def clip_reward_from_similarity(similarity: float, threshold: float = 0.4) -> float:
    """1 when the cosine similarity reaches ``threshold``, else ``max(0, s) / threshold``; NaN -> 0.

    The authors give negative similarities a negative reward; they are clamped to 0 here so the reward
    stays in [0, 1] (a random or failed CLIP score should not push the policy around).
    """
    if not threshold > 0:
        raise ValueError(f"clip_reward_from_similarity: threshold={threshold} must be positive.")
    s = float(similarity)
    if math.isnan(s):
        return 0.0
    return 1.0 if s >= threshold else max(0.0, s) / threshold


def accuracy_reward(response: str, answer: str, grader: Grader = grade, final_answer: FinalAnswer = TRAINING) -> float:
    """1 when the final answer (``final_answer.extract``: by default the last answer section) matches ``answer``
    under ``grader`` or names the same option letter (``FinalAnswer.letter_matches``), else 0. No answer section
    is no answer: 0 under every grader, which never sees the response. A grader that raises, or returns no
    verdict (NaN, a number outside [0, 1], not a number: ``grading.verdict``), counts as wrong."""
    try:
        prediction = final_answer.extract(response)
        if prediction is None:
            return 0.0
        return 1.0 if verdict(grader(prediction, answer)) or final_answer.letter_matches(prediction, answer) else 0.0
    except Exception:
        return 0.0


def clip_text(response: str) -> str:
    """The text the CLIP scorer compares with the image: the description section, or "" when absent."""
    return parse_response(response).description or ""
