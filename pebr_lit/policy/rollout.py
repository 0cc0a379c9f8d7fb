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


def concat_rollouts(parts: list[Rollout], pad_id: int) -> Rollout:
    """One ``Rollout`` of ``parts`` (consecutive prompt chunks sampled alike), responses right-padded with ``pad_id``.

    The parts share the prompt width P (chunks of one left-padded batch); their response widths may differ.
    """
    if len({p.num_samples for p in parts}) != 1 or len({p.prompt_ids.shape[1] for p in parts}) != 1:
        raise ValueError("concat_rollouts: the parts differ in num_samples or prompt width; sample them alike.")
    width = max(p.response_ids.shape[1] for p in parts)

    def padded(t: torch.Tensor, value: int) -> torch.Tensor:  # [n, R_i] -> [n, width]
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    return Rollout(
        prompt_ids=torch.cat([p.prompt_ids for p in parts]),  # [N, P]
        prompt_mask=torch.cat([p.prompt_mask for p in parts]),  # [N, P]
        response_ids=torch.cat([padded(p.response_ids, pad_id) for p in parts]),  # [N, R]
        response_mask=torch.cat([padded(p.response_mask, 0) for p in parts]),  # [N, R]
        texts=[t for p in parts for t in p.texts],
        truncated=torch.cat([p.truncated for p in parts]),  # [N]
        num_samples=parts[0].num_samples,
    )
