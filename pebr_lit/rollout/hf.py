"""HFGenerate: the default rollout engine, the policy's own batched Hugging Face ``generate``.

It runs wherever the policy runs (CPU included), samples from the very weights being trained, so
there is nothing to sync and no log-prob gap to check. ``prompts_per_call`` bounds its memory: a rollout
batch is sampled a few prompts at a time (the KV cache of ``prompts_per_call * num_samples`` sequences),
so a single GPU can keep a large rollout batch.

Left out on purpose: sampling itself (``PolicyWrapper.generate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pebr_lit.policy.inputs import images_per_row, select_prompt_rows
from pebr_lit.policy.rollout import Rollout, concat_rollouts
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rollout.base import RolloutEngine


class HFGenerate(RolloutEngine):
    """Rollouts from ``policy.generate`` (images come from ``prompts``; ``records`` is not needed).

    Args:
        prompts_per_call: Prompts sampled per ``generate`` call (each with ``num_samples`` responses); the
            rollout batch is sampled in consecutive chunks of this many and joined. Null = the whole batch at
            once. Sampling is the same either way; only the random draws' order differs.
    """

    def __init__(self, prompts_per_call: int | None = None) -> None:
        if prompts_per_call is not None and prompts_per_call < 1:
            raise ValueError(
                f"HFGenerate.prompts_per_call={prompts_per_call!r}: must be >= 1. "
                "Give the prompts per generate call, e.g. 4, or null for the whole batch at once."
            )
        self.prompts_per_call = prompts_per_call

    def generate(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        records: Sequence[Any],
        sampling: SamplingSettings,
    ) -> Rollout:
        rows = prompts["input_ids"].shape[0]
        step = self.prompts_per_call
        if step is None or step >= rows:
            return policy.generate(prompts, sampling)
        config = policy.model.config
        counts = images_per_row(prompts, config.image_token_id, config.vision_config.spatial_merge_size)
        parts = [
            policy.generate(select_prompt_rows(prompts, range(start, min(start + step, rows)), counts)[0], sampling)
            for start in range(0, rows, step)
        ]
        return concat_rollouts(parts, policy.tokenizer.pad_token_id)
