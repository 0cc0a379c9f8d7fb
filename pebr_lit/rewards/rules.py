"""Reward rule sets: how one response is read into keyword, format, accuracy and CLIP values, chosen in YAML.

A stage reward (``rewards.stages``) weighs the components; a rule set says what each component means.
Two sets, chosen by ``class_path`` wherever a ``rules`` argument is taken (the stage rewards, and
``SFTModule`` for difficulty sampling):

- ``pebr_lit.rewards.rules.PebrLitRules`` (the default): ``rewards.components``, the paper's rules made
  robust (keywords in the description as whole words, missing keywords extracted from the record's
  teacher description; every section non-empty for format; the last answer section plus option letters
  for accuracy; negative similarities and absent descriptions give CLIP reward 0).
- ``pebr_lit.rewards.rules.AuthorsRules``: ``rewards.authors``, the authors' reward scripts value for
  value (substring keywords anywhere, no extraction; headings anywhere; the first answer line after
  ``< > /`` spacing is closed up, no letters; the empty caption scored; negative CLIP rewards), except that
  a response without an answer heading has no answer unless ``no_section="whole_response"``.

Which text is the final answer is each set's ``final_answer`` (``format.final_answer.FinalAnswer``), a named
choice rather than a property of the grader: with either grader, no heading means no answer.

Left out on purpose: the component functions themselves (``rewards.components``, ``rewards.authors``),
the weights and the length reward (``rewards.stages``), the graders (``rewards.grading``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pebr_lit.format.final_answer import NO_SECTION, RULES, FinalAnswer
from pebr_lit.rewards import authors, components
from pebr_lit.rewards.components import Grader
from pebr_lit.rewards.grading import grade, mathruler_grade


def _answer_rule(owner: str, final_answer: str, no_section: str) -> FinalAnswer:
    """The ``FinalAnswer`` of a rule set; an unknown value is refused naming the rule set's argument."""
    for name, value, allowed in (("final_answer", final_answer, RULES), ("no_section", no_section, NO_SECTION)):
        if value not in allowed:
            raise ValueError(f"{owner}.{name}={value!r}: unknown. Use one of {list(allowed)}.")
    return FinalAnswer(final_answer, no_section)


class RewardRules:
    """How a response is scored component by component; every method takes any input and never raises."""

    def record_keywords(self, key_words: Sequence[str], description: str | None) -> list[str]:
        """The keywords a record is scored against, from its ``key_words`` and its teacher ``description``."""
        raise NotImplementedError

    def keyword(self, response: str, key_words: Sequence[str]) -> float:
        """Keyword reward of ``response`` for the record's keywords (``record_keywords``)."""
        raise NotImplementedError

    def format(self, response: str) -> float:
        """Format reward, 0 or 1."""
        raise NotImplementedError

    def accuracy(self, response: str, answer: str, grader: Grader) -> float:
        """1 when the response's final answer matches ``answer`` under ``grader``, else 0."""
        raise NotImplementedError

    def default_grader(self) -> Grader:
        """The grader a reward or module uses with these rules when its own ``grader`` is null."""
        raise NotImplementedError

    def clip_text(self, response: str) -> str:
        """The text the CLIP scorer compares with the image."""
        raise NotImplementedError

    def clip(self, similarity: float, threshold: float, has_text: bool) -> float:
        """CLIP reward from the cosine ``similarity`` of the image and ``clip_text`` (NaN when scoring failed);
        ``has_text`` says whether that text was non-empty."""
        raise NotImplementedError

    def clip_range(self, threshold: float) -> tuple[float, float]:
        """The (lowest, highest) value ``clip`` can give at ``threshold``."""
        return (0.0, 1.0)

    def __repr__(self) -> str:
        public = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in public.items())})"


class PebrLitRules(RewardRules):
    """pebr-lit's rules (``rewards.components``): every value in [0, 1]."""

    def __init__(self, description_only: bool = True, whole_word: bool = True, final_answer: str = "pebr_lit") -> None:
        """
        Args:
            description_only: search keywords in the description section only (paper); False searches the
                whole response.
            whole_word: match keywords as whole words (a plural "s"/"es" allowed); False matches substrings.
            final_answer: which text is the final answer (``format.final_answer``): ``pebr_lit`` (the last answer
                section, option letters read, as the benchmark scorers read sections) or ``authors`` (the first
                line after the first answer heading, no letters). Either way no heading, no answer.
        """
        self.description_only, self.whole_word, self.final_answer = description_only, whole_word, final_answer
        self._answer = _answer_rule("PebrLitRules", final_answer, "none")

    def record_keywords(self, key_words: Sequence[str], description: str | None) -> list[str]:
        """The record's keywords, or, when it has none, content words of its teacher description."""
        return list(key_words) or components.extract_keywords(description or "")

    def keyword(self, response: str, key_words: Sequence[str]) -> float:
        """Fraction of the distinct keywords found (``components.keyword_reward``)."""
        return components.keyword_reward(response, key_words, self.description_only, self.whole_word)

    def format(self, response: str) -> float:
        """All four sections present and non-empty (``components.format_reward``)."""
        return components.format_reward(response)

    def accuracy(self, response: str, answer: str, grader: Grader) -> float:
        """The ``final_answer`` rule's answer under ``grader``, or a matching option letter; 0 without an answer
        heading (``components.accuracy_reward``)."""
        return components.accuracy_reward(response, answer, grader, self._answer)

    def default_grader(self) -> Grader:
        """``grading.grade``: mathruler after light normalisation ("B." and "**4**" match "B" and "4")."""
        return grade

    def clip_text(self, response: str) -> str:
        """The parsed description section, "" when absent (``components.clip_text``)."""
        return components.clip_text(response)

    def clip(self, similarity: float, threshold: float, has_text: bool) -> float:
        """``max(0, s) / threshold`` capped at 1; 0 without a description, since CLIP's score for ""
        says nothing about the image."""
        return components.clip_reward_from_similarity(similarity, threshold) if has_text else 0.0


class AuthorsRules(RewardRules):
    """The authors' rules (``rewards.authors``); the CLIP reward lies in [-1 / threshold, 1], the rest in [0, 1]."""

    def __init__(self, final_answer: str = "authors", no_section: str = "whole_response") -> None:
        """
        Args:
            final_answer: which text is the final answer (``format.final_answer``): ``authors`` (the first line
                after the first exact answer heading, no letters) or ``pebr_lit`` (the last section, letters read).
            no_section: without an answer heading, ``whole_response`` (grade the whole stripped response, as the
                authors' scripts do: the default, so that their numbers are comparable; a grader that searches text,
                ``math_verify_grade``, can then score a response that never answered) or ``none`` (no answer: 0
                under every grader, as pebr-lit's rules).
        """
        self.final_answer, self.no_section = final_answer, no_section
        self._answer = _answer_rule("AuthorsRules", final_answer, no_section)

    def record_keywords(self, key_words: Sequence[str], description: str | None) -> list[str]:
        """The record's keywords as given; none stays none (keyword reward 0), nothing is extracted."""
        return list(key_words)

    def keyword(self, response: str, key_words: Sequence[str]) -> float:
        """Share of the keywords (repeats counted) that are substrings anywhere (``authors.keyword_reward``)."""
        return authors.keyword_reward(response, key_words)

    def format(self, response: str) -> float:
        """The four headings anywhere (``authors.format_reward``)."""
        return authors.format_reward(response)

    def accuracy(self, response: str, answer: str, grader: Grader) -> float:
        """The ``final_answer`` rule's answer (authors': the first line after the first answer heading, no letter
        matching) under ``grader``, the truth stripped (``authors.accuracy_reward``)."""
        return authors.accuracy_reward(response, answer, grader, self._answer)

    def default_grader(self) -> Grader:
        """``grading.mathruler_grade``: mathruler's ``grade_answer`` alone, as the authors' scripts call it."""
        return mathruler_grade

    def clip_text(self, response: str) -> str:
        """The caption between the description and rationale headings, "" when absent (``authors.clip_text``)."""
        return authors.clip_text(response)

    def clip(self, similarity: float, threshold: float, has_text: bool) -> float:
        """``s / threshold`` capped at 1, negative kept; the empty caption is scored like any other."""
        return authors.clip_reward_from_similarity(similarity, threshold)

    def clip_range(self, threshold: float) -> tuple[float, float]:
        """``[-1 / threshold, 1]``: a cosine is never below -1."""
        return (-1.0 / threshold, 1.0)
