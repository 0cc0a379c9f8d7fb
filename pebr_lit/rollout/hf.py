"""HFGenerate: the default rollout engine, the policy's own batched Hugging Face ``generate``.

It runs wherever the policy runs (CPU included), samples from the very weights being trained, so
there is nothing to sync and no log-prob gap to check.

Left out on purpose: sampling itself (``PolicyWrapper.generate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pebr_lit.policy.rollout import Rollout
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rollout.base import RolloutEngine


class HFGenerate(RolloutEngine):
    """Rollouts from ``policy.generate`` (images come from ``prompts``; ``records`` is not needed)."""

    def generate(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        records: Sequence[Any],
        sampling: SamplingSettings,
    ) -> Rollout:
        return policy.generate(prompts, sampling)
