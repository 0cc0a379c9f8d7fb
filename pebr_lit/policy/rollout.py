"""``Rollout``: what the policy's ``generate`` returns, sampled responses with their token ids and masks.

Left out on purpose: how they are sampled (``policy.wrapper``, ``rollout`` engines) and scored (``rewards``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Rollout:
    """Sampled responses; row ``i`` answers prompt ``i // num_samples``.

    Prompts are left-padded and responses right-padded, so every response starts at column P.
    """

    prompt_ids: torch.Tensor  # [B*n, P]
    prompt_mask: torch.Tensor  # [B*n, P]
    response_ids: torch.Tensor  # [B*n, R]
    response_mask: torch.Tensor  # [B*n, R], 1 up to and including the end-of-turn token
    texts: list[str]  # B*n decoded responses, special tokens removed
    truncated: torch.Tensor  # [B*n] bool, no end-of-turn token within max_new_tokens
    num_samples: int
