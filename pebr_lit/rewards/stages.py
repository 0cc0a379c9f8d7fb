"""The stage rewards: a batch of per-sample inputs -> weighted ``total`` plus every component as tensors ``[N]``.

``PerceptionReward`` (stage 1: CLIP + keyword + format + length, accuracy logged) and
``ReasoningReward`` (stage 2: accuracy + format), each chosen by ``class_path``; each component is
returned so it can be logged on its own (``train/reward/keyword``, ...). What each component means is
the reward's ``rules`` (``rewards.rules``: ``PebrLitRules`` by default, or ``AuthorsRules``).

Left out on purpose: the per-response functions (``rewards.components``, ``rewards.authors``), the
graders (``rewards.grading``), the CLIP model (the similarity comes in as a number), logging and I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from pebr_lit.rewards.components import Grader, length_reward
from pebr_lit.rewards.rules import PebrLitRules, RewardRules


class StageReward:
    """Weighted sum of per-sample components; ``__call__`` returns ``{"total": [N], <component>: [N], ...}``."""

    #: Inputs beyond responses, answers, keywords and token counts that the caller must compute and pass
    #: (a stage module that cannot provide them is refused at construction, ``GRPOModule.provides``).
    extra_inputs: tuple[str, ...] = ()
    #: True when the caller must pass ``clip_similarity`` (and so run a CLIP scorer); follows ``extra_inputs``.
    needs_clip: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.needs_clip = "clip_similarity" in cls.extra_inputs

    def __init__(self, rules: RewardRules | None = None, **weights: float) -> None:
        #: How responses are read into components; also asked by the stage module for the records' keywords
        #: (``GRPOModule.score``) and the CLIP text (``PerceptionGRPO``).
        self.rules = rules if rules is not None else PebrLitRules()
        for name, w in weights.items():
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(
                    f"{type(self).__name__}.{name}={w!r}: a reward weight must be finite and >= 0. "
                    "Use 0 to turn the component off."
                )
        if not any(weights.values()):
            raise ValueError(
                f"{type(self).__name__}.{'/'.join(weights)}=0: all weights are 0, so every response would score 0. "
                "Give at least one component a positive weight."
            )
        self.weights = dict(weights)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        """Per-sample values of every weighted component, each in [0, 1] (``AuthorsRules``' CLIP reward
        may be negative, down to ``-1 / clip_threshold``)."""
        raise NotImplementedError

    def value_range(self, name: str) -> tuple[float, float]:
        """The documented (lowest, highest) value of component ``name``; a value outside it is a failed reward
        (``modules.reward_health``). [0, 1] unless a stage says otherwise."""
        return (0.0, 1.0)

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
            "answers": answers,
            "key_words": key_words,
            "num_tokens": num_tokens,
            "clip_similarity": clip_similarity,
        }
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

    extra_inputs = ("clip_similarity",)

    def __init__(
        self,
        clip: float = 0.4,
        keyword: float = 0.4,
        format: float = 0.1,
        length: float = 0.1,
        accuracy: float = 0.0,
        rules: RewardRules | None = None,
        clip_threshold: float = 0.4,
        target_length: int = 512,
        grader: Grader | None = None,
    ) -> None:
        """
        Args:
            clip: weight of the CLIP image-description reward.
            keyword: weight of the keyword reward.
            format: weight of the format reward.
            length: weight of the length reward.
            accuracy: weight of accuracy (paper: 0; it is computed and returned regardless).
            rules: how each component reads a response; null = ``PebrLitRules()`` (``rewards.rules``; its
                ``description_only`` and ``whole_word`` set the keyword scope and matching), or ``AuthorsRules``.
            clip_threshold: similarity at and above which the CLIP reward is 1 (paper: 0.4).
            target_length: response tokens up to which the length reward is 1 (paper: 512).
            grader: answer grader for the accuracy component; null = the rules' own (``PebrLitRules``: ``grade``,
                ``AuthorsRules``: ``mathruler_grade``).
        """
        super().__init__(rules, clip=clip, keyword=keyword, format=format, length=length, accuracy=accuracy)
        if not clip_threshold > 0:
            raise ValueError(
                f"PerceptionReward.clip_threshold={clip_threshold!r}: must be positive. Use the paper's 0.4."
            )
        if target_length <= 0:
            raise ValueError(
                f"PerceptionReward.target_length={target_length!r}: must be a positive token count. "
                "Use the paper's 512."
            )
        self.clip_threshold, self.target_length = clip_threshold, target_length
        self.grader = grader if grader is not None else self.rules.default_grader()

    def value_range(self, name: str) -> tuple[float, float]:
        """[0, 1], except the CLIP reward under rules that keep negative similarities (``RewardRules.clip_range``)."""
        return self.rules.clip_range(self.clip_threshold) if name == "clip" else (0.0, 1.0)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        names = ("answers", "key_words", "num_tokens", "clip_similarity")
        for name in names:
            _require("PerceptionReward", name, inputs[name])
        answers, key_words, num_tokens, sims = (inputs[k] for k in names)
        sims = sims.tolist() if isinstance(sims, torch.Tensor) else list(sims)
        lengths = num_tokens.tolist() if isinstance(num_tokens, torch.Tensor) else list(num_tokens)
        rules, tau = self.rules, self.clip_threshold
        return {
            "clip": [rules.clip(s, tau, has_text=bool(rules.clip_text(r))) for r, s in zip(responses, sims)],
            "keyword": [rules.keyword(r, k) for r, k in zip(responses, key_words)],
            "format": [rules.format(r) for r in responses],
            "length": [length_reward(n, self.target_length) for n in lengths],
            "accuracy": [rules.accuracy(r, a, self.grader) for r, a in zip(responses, answers)],
        }


class ReasoningReward(StageReward):
    """Stage 2: ``accuracy·accuracy + format·format``."""

    def __init__(
        self,
        accuracy: float = 0.9,
        format: float = 0.1,
        grader: Grader | None = None,
        rules: RewardRules | None = None,
    ) -> None:
        """
        Args:
            accuracy: weight of answer accuracy (paper: 0.9).
            format: weight of the format reward (paper: 0.1).
            grader: answer grader; null = the rules' own (``PebrLitRules``: ``pebr_lit.rewards.grading.grade``,
                mathruler after light normalisation; ``AuthorsRules``: ``pebr_lit.rewards.grading.mathruler_grade``,
                mathruler alone), or e.g. ``pebr_lit.rewards.grading.math_verify_grade``.
            rules: how accuracy and format read a response; null = ``PebrLitRules()``, or ``AuthorsRules``.
        """
        super().__init__(rules, accuracy=accuracy, format=format)
        self.grader = grader if grader is not None else self.rules.default_grader()

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        _require("ReasoningReward", "answers", inputs["answers"])
        return {
            "accuracy": [self.rules.accuracy(r, a, self.grader) for r, a in zip(responses, inputs["answers"])],
            "format": [self.rules.format(r) for r in responses],
        }
