"""PerceptionGRPO: stage 1 of PeBR-R1, GRPO on Easy questions with perception rewards.

Binds the stage-1 reward: ``0.4 * clip + 0.4 * keyword + 0.1 * format`` from ``PerceptionReward``
plus ``0.1 * length`` from the ``LengthPenalty`` callback (so that removing the callback is the
paper's length ablation); accuracy is computed and logged with weight 0.

Left out on purpose: everything else (the shared loop is ``GRPOModule``).
"""

from __future__ import annotations

from typing import Any

from pebr_lit.clip.scorers import SimilarityScorer
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import PerceptionReward, StageReward


class PerceptionGRPO(GRPOModule):
    """Stage-1 GRPO. Arguments as ``GRPOModule``; ``reward`` defaults to PerceptionReward(length=0)
    because the ``LengthPenalty`` callback supplies the length component."""

    #: Tier(s) a ``TieredDataModule`` serves this stage when its ``tiers`` is null (``data.contracts.TierDefaults``).
    default_tiers = ("easy",)

    def __init__(
        self, policy: PolicyWrapper, clip_scorer: SimilarityScorer, reward: StageReward | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            policy=policy, reward=reward or PerceptionReward(length=0.0), clip_scorer=clip_scorer, **kwargs
        )
