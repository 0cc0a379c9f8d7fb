"""LengthPenalty: the stage-1 length reward as a removable callback (the paper's Fig. 5 ablation).

Adds a reward component ``length`` = 1 if a response has at most ``target_tokens`` tokens, else
``target_tokens / tokens``, weighted by ``weight`` into the total reward. The GRPO module collects
every callback that has ``name``, ``weight`` and ``reward_values`` (its ``RewardTerm`` hook).
Removing this callback from the config removes the penalty and nothing else.

Left out on purpose: the reward formula itself (``pebr_lit.rewards.components.length_reward``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning.pytorch.callbacks import Callback

from pebr_lit.rewards.components import length_reward


class LengthPenalty(Callback):
    """Reward short-enough responses.

    Args:
        weight: Weight of the length component in the total reward (authors: 0.1).
        target_tokens: Longest response that gets the full reward (authors: 512).
    """

    name = "length"

    def __init__(self, weight: float = 0.1, target_tokens: int = 512) -> None:
        if weight < 0:
            raise ValueError(
                f"LengthPenalty.weight={weight!r}: must be >= 0. Use the authors' 0.1, or 0 to turn it off."
            )
        if target_tokens < 1:
            raise ValueError(f"LengthPenalty.target_tokens={target_tokens!r}: must be >= 1. Use the authors' 512.")
        self.weight = weight
        self.target_tokens = target_tokens

    def reward_values(self, texts: Sequence[str], num_tokens: torch.Tensor) -> torch.Tensor:
        """Per-response length reward [N] from token counts [N]."""
        return torch.tensor([length_reward(float(n), self.target_tokens) for n in num_tokens.tolist()])
