"""DAPO-style online filtering: keep the groups whose rewards vary and gather rounds until an update is full.

With ``OnlineFilter`` (DAPO's dynamic sampling; beyond the paper, whose offline Easy/Medium split
replaces it) a ``FilterBuffer`` keeps only the groups whose rewards differ (a group whose G rewards
are all equal has zero advantage) and gathers rounds (``grpo.rounds``), one per training step, until
it holds B such groups, B being the prompts per rollout batch. Surplus groups of the round that
completes the batch are dropped, as in DAPO. After ``max_rounds`` rounds, or at the stream's last
batch, the update uses the groups found so far. ``FilterBuffer`` is one of the update buffers of
``grpo.buffers`` (the others: no filter, and masking flat groups without resampling).

Left out on purpose: sampling, rewards and the update itself (``modules.grpo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pebr_lit.grpo.advantages import AdvantageNormalizer
from pebr_lit.grpo.rounds import RolloutRound, group_rows, set_advantages


@dataclass
class OnlineFilter:
    """Online filtering of zero-variance groups (DAPO's dynamic sampling), an option of ``GRPOModule``.

    Args:
        max_rounds: Most rollout batches drawn for one update, the first included; when reached, the update
            uses the non-zero-variance groups found so far (none: no update).
    """

    max_rounds: int = 4

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise ValueError(
                f"OnlineFilter.max_rounds={self.max_rounds!r}: must be >= 1 (the first rollout batch counts). "
                "Use e.g. 4, or drop online_filter to train on every batch."
            )


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
        stats = {
            "filter_rounds": float(len(self.rounds)),
            "filtered_groups": float(self.filtered_groups),
            "filter_surplus_groups": float(self.surplus_groups),
        }
        rounds = [r for r in self.rounds if r.rows]
        self.rounds, self.kept_groups, self.filtered_groups, self.surplus_groups = [], 0, 0, 0
        return rounds, stats

    def set_advantages(self, rounds: list[RolloutRound], estimator: AdvantageNormalizer) -> None:
        """Advantages over the kept groups of all gathered rounds together, as over one batch."""
        set_advantages(rounds, estimator, self.group_size)
