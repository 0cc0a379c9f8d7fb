"""PerceptionGRPO: stage 1 of PeBR-R1, GRPO on Easy questions with perception rewards.

Binds the stage-1 reward: ``0.4 * clip + 0.4 * keyword + 0.1 * format`` from ``PerceptionReward``
plus ``0.1 * length`` from the ``LengthPenalty`` callback (so that removing the callback is the
paper's length ablation); accuracy is computed and logged with weight 0. The CLIP part lives here,
in the ``reward_inputs`` hook of ``GRPOModule``: the similarity of every response's CLIP text (the
reward's ``rules.clip_text``: the description section, or the authors' caption) to its image is the
reward's ``clip_similarity`` input, its raw value is logged as ``<split>/clip_similarity``
(never rewarded; 0 where scoring failed), and the scorer's failures are counted in
``last_stats["clip_failures"]``. A text-only record (no image) is not scored: its similarity is NaN, so its
CLIP reward is 0; such responses are counted in ``last_stats["clip_text_only"]`` and their share is logged
as ``<split>/clip_text_only``.

Left out on purpose: everything else (the shared loop is ``GRPOModule``), the CLIP models (``clip.scorers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from pebr_lit.clip.scorers import SimilarityScorer
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.modules.grpo_hooks import ExtraInputs
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import PerceptionReward, StageReward


class PerceptionGRPO(GRPOModule):
    """Stage-1 GRPO. Arguments as ``GRPOModule``; ``reward`` defaults to PerceptionReward(length=0)
    because the ``LengthPenalty`` callback supplies the length component.

    Args:
        clip_scorer: Image-description similarity model behind the reward's CLIP component.
    """

    #: Tier(s) a ``TieredDataModule`` serves this stage when its ``tiers`` is null (``data.contracts.TierDefaults``).
    default_tiers = ("easy",)
    provides = ("clip_similarity",)

    def __init__(
        self, policy: PolicyWrapper, clip_scorer: SimilarityScorer, reward: StageReward | None = None, **kwargs: Any
    ) -> None:
        reward = reward or PerceptionReward(length=0.0)
        if getattr(reward, "needs_clip", False) and clip_scorer is None:
            raise ValueError(
                f"{type(self).__name__}.clip_scorer=None: the reward {type(reward).__name__} has a CLIP component. "
                "Set model.init_args.clip_scorer (e.g. pebr_lit.clip.scorers.ClipScorer)."
            )
        super().__init__(policy=policy, reward=reward, **kwargs)
        self.clip_scorer = clip_scorer

    def reward_inputs(self, texts: list[str], records: list[Any]) -> ExtraInputs:
        """The responses' CLIP similarity to their image, when the reward has a CLIP component."""
        if not getattr(self.reward, "needs_clip", False):
            return ExtraInputs()
        # A text-only record has no image to score: only the others go to the scorer.
        scored = [i for i, r in enumerate(records) if r.images]
        text_only = torch.tensor([0.0 if r.images else 1.0 for r in records])  # [N]
        everyone, records, texts = len(records), [records[i] for i in scored], [texts[i] for i in scored]
        # records repeat once per rollout: decode each distinct record's image once.
        decoded = {id(r): r.load_images()[0] for r in {id(r): r for r in records}.values()}
        before = self.clip_scorer.failures
        captions = [self.reward.rules.clip_text(t) for t in texts]  # the rules say which text CLIP compares
        similarity = self.clip_scorer.similarity([decoded[id(r)] for r in records], captions)
        return ExtraInputs(
            reward={"clip_similarity": _on_every_row(similarity, scored, everyone)},  # [N], NaN without an image
            logged={
                "clip_similarity": torch.nan_to_num(_on_every_row(similarity, scored, everyone), nan=0.0),
                "clip_text_only": text_only,
            },  # each [N]
            stats={
                "clip_failures": float(self.clip_scorer.failures - before),
                "clip_text_only": float(text_only.sum()),
            },
        )


def _on_every_row(values: torch.Tensor, rows: Sequence[int], n: int) -> torch.Tensor:
    """``values`` [len(rows)] placed at ``rows`` of a float32 CPU tensor [n] that is NaN elsewhere."""
    out = torch.full((n,), math.nan)  # [n]
    out[torch.tensor(rows, dtype=torch.long)] = values.float().cpu()
    return out
