"""ReasoningGRPO: stage 2 of PeBR-R1, GRPO on Medium questions with ``0.9 * accuracy + 0.1 * format``.

Left out on purpose: everything else (the shared loop is ``GRPOModule``); it starts from the stage-1
policy through ``init_from``.
"""

from __future__ import annotations

from typing import Any

from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import ReasoningReward, StageReward


class ReasoningGRPO(GRPOModule):
    """Stage-2 GRPO. Arguments as ``GRPOModule``; ``reward`` defaults to ReasoningReward()."""

    #: Tier(s) a ``TieredDataModule`` serves this stage when its ``tiers`` is null (``data.contracts.TierDefaults``).
    default_tiers = ("medium",)

    def __init__(self, policy: PolicyWrapper, reward: StageReward | None = None, **kwargs: Any) -> None:
        super().__init__(policy=policy, reward=reward or ReasoningReward(), **kwargs)
