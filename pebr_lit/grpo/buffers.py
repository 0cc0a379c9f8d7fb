"""Update buffers: which groups of each rollout round enter the GRPO update, and when the update runs.

``GRPOModule`` hands every round (``grpo.rounds``) to one buffer and updates on what ``pop`` returns
once ``add`` says the update is due; the buffer also sets the advantages of the rows it returns.
Three buffers, chosen by the module's arguments:

- ``PassThrough`` (default): every group of every round; an update per round.
- ``MaskZeroVariance`` (``mask_zero_variance``): groups whose rewards are all equal are left out of the
  update, nothing is resampled; advantages over the whole round, as without the mask.
- ``FilterBuffer`` (``online_filter``, ``grpo.online_filter``): rounds are gathered until B groups vary.

Left out on purpose: sampling, rewards and the update itself (``modules.grpo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from pebr_lit.grpo.advantages import AdvantageNormalizer
from pebr_lit.grpo.online_filter import FilterBuffer, OnlineFilter
from pebr_lit.grpo.rounds import RolloutRound, group_rows


class UpdateBuffer(Protocol):
    """What ``GRPOModule`` needs from a buffer."""

    #: Rounds held for the next update; their number is the rollout batches an update consumes.
    rounds: list[RolloutRound]

    def add(self, rollout: RolloutRound, flat: torch.Tensor, last: bool) -> bool:
        """Hold ``rollout``, setting its update rows from ``flat`` [B] (bool, zero-variance groups); True when due."""

    def pop(self) -> tuple[list[RolloutRound], dict[str, float]]:
        """The held rounds that have update rows, and counts to log as ``train/<name>``; the buffer is empty after."""

    def set_advantages(self, rounds: list[RolloutRound], estimator: AdvantageNormalizer) -> None:
        """Set ``advantages`` [B*G] of every round in ``rounds`` (as returned by ``pop``)."""


@dataclass
class PassThrough:
    """No filtering: every group of a round enters the update, which runs on every round."""

    group_size: int
    rounds: list[RolloutRound] = field(default_factory=list)

    def keep(self, flat: torch.Tensor) -> list[int]:
        """Groups of a round with zero-variance flags ``flat`` [B] that enter the update."""
        return list(range(len(flat)))

    def add(self, rollout: RolloutRound, flat: torch.Tensor, last: bool) -> bool:
        rollout.rows = group_rows(self.keep(flat), self.group_size)
        self.rounds.append(rollout)
        return True

    def pop(self) -> tuple[list[RolloutRound], dict[str, float]]:
        rounds = [r for r in self.rounds if r.rows]
        self.rounds = []
        return rounds, {}

    def set_advantages(self, rounds: list[RolloutRound], estimator: AdvantageNormalizer) -> None:
        for r in rounds:  # over the whole round, left-out groups included: a batch-level estimator sees all B groups
            r.advantages = estimator(r.total, self.group_size)  # [B*G]


@dataclass
class MaskZeroVariance(PassThrough):
    """Groups whose G rewards are all equal (zero advantage) are left out of the update; no resampling."""

    def keep(self, flat: torch.Tensor) -> list[int]:
        return [g for g in range(len(flat)) if not bool(flat[g])]


def update_buffer(online_filter: OnlineFilter | None, mask_zero_variance: bool, group_size: int) -> UpdateBuffer:
    """The buffer for ``GRPOModule``'s ``online_filter`` / ``mask_zero_variance`` (the filter drops flat groups too)."""
    if online_filter is not None:
        return FilterBuffer(online_filter, group_size)
    return MaskZeroVariance(group_size) if mask_zero_variance else PassThrough(group_size)
