"""The rollout round, the data one GRPO update works on, and the row arithmetic over its groups.

A ``RolloutRound`` is one rollout batch as the update consumes it: prompts, sampled responses, total
rewards and the rows (rollouts) that enter the update, chosen by an update buffer (``grpo.buffers``).
Without filtering an update is one round; the online filter (``grpo.online_filter``) gathers several,
and its advantages are computed over the kept groups of all rounds together, as over one batch
(``set_advantages``).

Left out on purpose: sampling, rewards and the update itself (``modules.grpo``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pebr_lit.grpo.advantages import AdvantageNormalizer


@dataclass
class RolloutRound:
    """One rollout batch of B prompts x G responses, as the update uses it."""

    prompts: dict[str, torch.Tensor]  # left-padded prompt batch, B rows
    ids: torch.Tensor  # [B*G, R] response token ids
    mask: torch.Tensor  # [B*G, R] 1 on response tokens
    total: torch.Tensor  # [B*G] total reward
    rows: list[int]  # rollouts that enter the update
    engine_logprobs: torch.Tensor | None = None  # [B*G, R] from engines that report them
    advantages: torch.Tensor | None = None  # [B*G]; set before the update
    old: torch.Tensor | None = None  # [B*G, R] log-probs before the update (mini_batches > 1)
    ref: torch.Tensor | None = None  # [B*G, R] reference log-probs


def group_rows(groups: list[int], group_size: int) -> list[int]:
    """Rollout rows of prompt groups ``groups`` (group g holds rows g*G .. g*G+G-1)."""
    return [g * group_size + j for g in groups for j in range(group_size)]


def set_advantages(rounds: list[RolloutRound], estimator: AdvantageNormalizer, group_size: int) -> None:
    """Advantages over the update rows of all ``rounds`` together (as one batch); 0 on rows left out."""
    if not rounds:  # an update with no varied group at all (the filter's cap reached): nothing to normalise
        return
    kept = torch.cat([r.total[r.rows] for r in rounds])  # [K*G]
    values = estimator(kept, group_size) if kept.numel() else kept  # [K*G]
    start = 0
    for r in rounds:
        r.advantages = torch.zeros_like(r.total, dtype=values.dtype)  # [B*G]
        r.advantages[r.rows] = values[start : start + len(r.rows)]
        start += len(r.rows)


def update_rows(rounds: list[RolloutRound], values: list[torch.Tensor]) -> torch.Tensor:
    """The update rows of per-round tensors ``values[i]`` [B*G, R_i] as one [K, max R_i], right-padded with 0."""
    width = max(v.shape[1] for v in values)
    return torch.cat(
        [torch.nn.functional.pad(v[r.rows].float(), (0, width - v.shape[1])) for r, v in zip(rounds, values)]
    )
