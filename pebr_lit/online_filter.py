"""Rollout rounds of one GRPO update, and DAPO-style online filtering that gathers them.

A ``RolloutRound`` is one rollout batch as the update consumes it: prompts, sampled responses,
total rewards and the rows (rollouts) that enter the update. Without filtering an update is one
round. With ``OnlineFilter`` (DAPO's dynamic sampling; beyond the paper, whose offline Easy/Medium
split replaces it) a ``FilterBuffer`` keeps only the groups whose rewards differ (a group whose G
rewards are all equal has zero advantage) and gathers rounds, one per training step, until it holds
B such groups, B being the prompts per rollout batch. Surplus groups of the round that completes
the batch are dropped, as in DAPO. After ``max_rounds`` rounds, or at the stream's last batch, the
update uses the groups found so far. Advantages are computed over the kept groups of all rounds
together, as over one batch.

Left out on purpose: sampling, rewards and the update itself (``modules.grpo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pebr_lit.grpo import AdvantageNormalizer


@dataclass
class OnlineFilter:
    """Online filtering of zero-variance groups (DAPO's dynamic sampling), an option of ``GRPOModule``.

    Args:
        max_rounds: Most rollout batches drawn for one update, the first included; when reached, the update uses the non-zero-variance groups found so far (none: no update).
    """

    max_rounds: int = 4

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise ValueError(f"online_filter.max_rounds must be >= 1, got {self.max_rounds}.")


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
    return torch.cat([torch.nn.functional.pad(v[r.rows].float(), (0, width - v.shape[1])) for r, v in zip(rounds, values)])


@dataclass
class FilterBuffer:
    """Rounds gathered for the next update, with the counts logged when it happens."""

    settings: OnlineFilter
    group_size: int
    rounds: list[RolloutRound] = field(default_factory=list)
    kept_groups: int = 0
    filtered_groups: int = 0  # zero-variance groups dropped
    surplus_groups: int = 0  # non-zero-variance groups beyond B, dropped

    def add(self, rollout: RolloutRound, flat: torch.Tensor, last: bool) -> bool:
        """Keep ``rollout``'s groups that are not ``flat`` [B] (bool); True when the update should run now."""
        batch = len(flat)
        varied = [g for g in range(batch) if not bool(flat[g])]
        take = varied[: batch - self.kept_groups]
        self.filtered_groups += batch - len(varied)
        self.surplus_groups += len(varied) - len(take)
        self.kept_groups += len(take)
        rollout.rows = group_rows(take, self.group_size)
        self.rounds.append(rollout)
        return self.kept_groups >= batch or len(self.rounds) >= self.settings.max_rounds or last

    def pop(self) -> tuple[list[RolloutRound], dict[str, float]]:
        """The gathered rounds (those with update rows) and the filter's counts; the buffer is empty after."""
        stats = {"filter_rounds": float(len(self.rounds)), "filtered_groups": float(self.filtered_groups),
                 "filter_surplus_groups": float(self.surplus_groups)}
        rounds = [r for r in self.rounds if r.rows]
        self.rounds, self.kept_groups, self.filtered_groups, self.surplus_groups = [], 0, 0, 0
        return rounds, stats
