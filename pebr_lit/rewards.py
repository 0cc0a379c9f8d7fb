"""Pure PeBR rewards: per-response component rewards and the weighted stage-1/stage-2 combinations.

Every function takes strings/numbers and returns a float in [0, 1]; any model output (empty, huge,
malformed, not a string) gives a finite reward, never an exception. The stage classes turn a batch of
per-sample inputs into float tensors ``[N]``: the weighted ``total`` plus every component, so each one
can be logged on its own (``train/reward/keyword``, ...).

Left out on purpose: the CLIP model (``clip_score`` computes the image-description similarity, which
comes in here as a number), tokenisation (token counts come in as numbers), logging and I/O.

Where the paper and the authors' code (``examples/reward_function/pebr_1.py`` in cythu/PeBR-R1) differ:
- keyword scope: paper = the description section, authors = the whole response (``description_only``).
- keyword matching: authors = case-insensitive substring ("red" counts inside "considered"); here by
  default a whole word, case-insensitive, whose last word may take a plural "s"/"es" ("circle" matches
  "circles", "red" does not match "considered" or "bored"); ``whole_word=False`` gives the authors' rule.
  Scripts without spaces between words (CJK) are matched as substrings either way.
- format: authors check that the four headings exist; here each of description, rationale, a step and
  the answer must also be non-empty (``format.parse_response``), so bare headings earn nothing.
- clip: authors let a negative similarity give a negative reward (s / 0.4); here it gives 0, so every
  reward stays in [0, 1]. A response without a description gets 0 (authors score the empty caption).
- accuracy: authors grade the first line after the first final-answer heading; here the whole last
  final-answer section (``format.extract_answer``), plus multiple-choice letters ("(B)" == "B").
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch

from pebr_lit.eval.answers import choice_letter_match
from pebr_lit.eval.grading import grade, normalize
from pebr_lit.format import extract_answer, parse_response

Grader = Callable[[str, str], bool]
"""``grader(prediction, truth) -> bool``; chosen in YAML by import path (``pebr_lit.rewards.math_verify_grade``)."""

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
_MATH_VERIFY_TIMEOUT_S = 3  # per parse and per comparison; sympy can take forever on towers like 9^9^9


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


def accuracy_reward(response: str, answer: str, grader: Grader = grade) -> float:
    """1 when the final answer (``format.extract_answer``) matches ``answer`` under ``grader`` or as the
    same multiple-choice letter, else 0. A grader that raises counts as wrong."""
    try:
        prediction = extract_answer(response)
        return 1.0 if grader(prediction, answer) or choice_letter_match(prediction, answer) else 0.0
    except Exception:
        return 0.0


def clip_text(response: str) -> str:
    """The text the CLIP scorer compares with the image: the description section, or "" when absent."""
    return parse_response(response).description or ""


class StageReward:
    """Weighted sum of per-sample components; ``__call__`` returns ``{"total": [N], <component>: [N], ...}``."""

    #: True when the caller must pass ``clip_similarity`` (and so run a CLIP scorer).
    needs_clip: bool = False

    def __init__(self, **weights: float) -> None:
        for name, w in weights.items():
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"{type(self).__name__}: weight {name}={w} must be finite and >= 0.")
        if not any(weights.values()):
            raise ValueError(f"{type(self).__name__}: all weights are 0; give at least one a positive weight.")
        self.weights = dict(weights)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        """Per-sample values of every weighted component, each in [0, 1]."""
        raise NotImplementedError

    def __call__(
        self,
        responses: Sequence[str],
        answers: Sequence[str] | None = None,
        key_words: Sequence[Sequence[str]] | None = None,
        num_tokens: Sequence[float] | torch.Tensor | None = None,
        clip_similarity: Sequence[float] | torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Score a batch. Each given sequence has one entry per response (ground truth, keywords,
        response token counts, CLIP image-description cosine similarities)."""
        given = {
            "answers": answers, "key_words": key_words, "num_tokens": num_tokens, "clip_similarity": clip_similarity,
        }  # fmt: skip
        for name, values in given.items():
            if values is not None and len(values) != len(responses):
                raise ValueError(
                    f"{type(self).__name__}: {name} has {len(values)} entries for {len(responses)} responses; "
                    "pass one per response."
                )
        parts = {k: torch.tensor(v, dtype=torch.float32) for k, v in self.components(responses, **given).items()}
        total = torch.zeros(len(responses))  # [N]
        for name, weight in self.weights.items():
            total = total + weight * parts[name]  # [N]
        return {"total": total, **parts}


def _require(stage: str, name: str, values: object) -> None:
    if values is None:
        raise ValueError(f"{stage}: `{name}` is required (one entry per response); the caller must pass it.")


class PerceptionReward(StageReward):
    """Stage 1: ``clip·clip + keyword·keyword + format·format + length·length`` (+ accuracy, logged at weight 0)."""

    needs_clip = True

    def __init__(
        self,
        clip: float = 0.4,
        keyword: float = 0.4,
        format: float = 0.1,
        length: float = 0.1,
        accuracy: float = 0.0,
        description_only: bool = True,
        whole_word: bool = True,
        clip_threshold: float = 0.4,
        target_length: int = 512,
        grader: Grader = grade,
    ) -> None:
        """
        Args:
            clip: weight of the CLIP image-description reward.
            keyword: weight of the keyword reward.
            format: weight of the format reward.
            length: weight of the length reward.
            accuracy: weight of accuracy (paper: 0; it is computed and returned regardless).
            description_only: keywords searched in the description only (paper) or the whole response (authors).
            whole_word: whole-word keyword matching; False = substring, as the authors' code.
            clip_threshold: similarity at and above which the CLIP reward is 1 (paper: 0.4).
            target_length: response tokens up to which the length reward is 1 (paper: 512).
            grader: answer grader for the accuracy component.
        """
        super().__init__(clip=clip, keyword=keyword, format=format, length=length, accuracy=accuracy)
        if not clip_threshold > 0 or target_length <= 0:
            raise ValueError(
                f"PerceptionReward: clip_threshold={clip_threshold} and target_length={target_length} must be positive."
            )
        self.description_only, self.whole_word = description_only, whole_word
        self.clip_threshold, self.target_length, self.grader = clip_threshold, target_length, grader

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        names = ("answers", "key_words", "num_tokens", "clip_similarity")
        for name in names:
            _require("PerceptionReward", name, inputs[name])
        answers, key_words, num_tokens, sims = (inputs[k] for k in names)
        sims = sims.tolist() if isinstance(sims, torch.Tensor) else list(sims)
        lengths = num_tokens.tolist() if isinstance(num_tokens, torch.Tensor) else list(num_tokens)
        # The similarity of an absent description is CLIP's score for "", which says nothing about the image.
        tau, scope, whole = self.clip_threshold, self.description_only, self.whole_word
        return {
            "clip": [clip_reward_from_similarity(s, tau) if clip_text(r) else 0.0 for r, s in zip(responses, sims)],
            "keyword": [keyword_reward(r, k, scope, whole) for r, k in zip(responses, key_words)],
            "format": [format_reward(r) for r in responses],
            "length": [length_reward(n, self.target_length) for n in lengths],
            "accuracy": [accuracy_reward(r, a, self.grader) for r, a in zip(responses, answers)],
        }


class ReasoningReward(StageReward):
    """Stage 2: ``accuracy·accuracy + format·format``."""

    def __init__(self, accuracy: float = 0.9, format: float = 0.1, grader: Grader = grade) -> None:
        """
        Args:
            accuracy: weight of answer accuracy (paper: 0.9).
            format: weight of the format reward (paper: 0.1).
            grader: answer grader: ``pebr_lit.eval.grading.grade`` (mathruler, the authors') or
                ``pebr_lit.rewards.math_verify_grade``.
        """
        super().__init__(accuracy=accuracy, format=format)
        self.grader = grader

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        _require("ReasoningReward", "answers", inputs["answers"])
        return {
            "accuracy": [accuracy_reward(r, a, self.grader) for r, a in zip(responses, inputs["answers"])],
            "format": [format_reward(r) for r in responses],
        }
