"""What ``GRPOModule`` expects from its callbacks: extra reward terms and the reference policy.

Left out on purpose: the callbacks themselves (``callbacks.length_penalty``, ``callbacks.reference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from pebr_lit.policy.wrapper import PolicyWrapper


@runtime_checkable
class RewardTerm(Protocol):
    """A callback that adds a weighted reward component (e.g. the length penalty)."""

    name: str
    weight: float

    def reward_values(self, texts: Sequence[str], num_tokens: torch.Tensor) -> torch.Tensor:
        """Per-response values [N] in [0, 1]."""


@runtime_checkable
class ReferenceProvider(Protocol):
    """What ``GRPOModule.reference`` must offer (set by the ``ReferencePolicy`` callback)."""

    def logprobs(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
    ) -> torch.Tensor:
        """Reference per-token log-probs [N, R] (no grad)."""
