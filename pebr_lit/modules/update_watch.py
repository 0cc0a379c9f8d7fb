"""UpdateWatch: count rollout batches without a learning signal, and stop a GRPO stage that trains on nothing.

Per rollout batch ``GRPOModule`` reports its zero-variance groups and how many optimizer steps were
applied (not skipped by ``modules.step_guard``). The watch counts

- ``all_flat_rounds``: rollout batches in which every group's rewards were all equal (no advantage
  anywhere: with ``mask_zero_variance`` or ``online_filter`` such a batch adds nothing to an update,
  without them its update has zero policy gradient); the first is warned about;
- ``empty_updates``: updates that came due with no group to train on (``online_filter`` reached
  ``max_rounds`` without a varied group, ``mask_zero_variance`` on an all-flat batch): nothing is updated;
- ``batches_without_update``: rollout batches since the last applied optimizer step; at
  ``max_batches_without_update`` the stage stops (``TrainingStopped``) saying why and what to change.

Left out on purpose: deciding which groups enter an update (``grpo.buffers``), skipped steps
(``modules.step_guard`` stops after its own count), logging (the module logs the counts).
"""

from __future__ import annotations

import warnings

import torch

from pebr_lit.modules.step_guard import TrainingStopped


class UpdateWatch:
    """Counts all-flat rollout batches, empty updates and batches since the last applied optimizer step."""

    def __init__(self, max_batches_without_update: int) -> None:
        """
        Args:
            max_batches_without_update: Rollout batches in a row without an applied optimizer step that stop the
                stage; 0 = never stop.
        """
        self.max_batches_without_update = max_batches_without_update
        self.all_flat_rounds = 0
        self.empty_updates = 0
        self.batches_without_update = 0
        self._flat_in_a_row = 0  # all-flat batches among the batches without update

    def observe(self, flat: torch.Tensor, due: bool, rows: int, applied_steps: int, owner: str) -> dict[str, float]:
        """Count one rollout batch with zero-variance flags ``flat`` [B] (bool); ``due``: an update came due,
        ``rows``: rollouts that entered it, ``applied_steps``: optimizer steps it applied (not skipped).
        Returns the counts to log as ``train/<name>``."""
        all_flat = bool(flat.all())
        if all_flat:
            self.all_flat_rounds += 1
            if self.all_flat_rounds == 1:
                warnings.warn(
                    f"{owner}: every group of this rollout batch has equal rewards (no learning signal; counted as "
                    "train/all_flat_rounds). Many such batches mean the questions are all too easy or too hard for "
                    "the policy, or the reward cannot tell responses apart (see train/reward_errors).",
                    stacklevel=3,
                )
        if due and not rows:
            self.empty_updates += 1
        if applied_steps:
            self.batches_without_update, self._flat_in_a_row = 0, 0
        else:
            self.batches_without_update += 1
            self._flat_in_a_row += int(all_flat)
        limit = self.max_batches_without_update
        if limit and self.batches_without_update >= limit:
            raise TrainingStopped(
                f"{owner}: no optimizer step in the last {self.batches_without_update} rollout batches "
                f"(max_batches_without_update={limit}); {self._flat_in_a_row} of them had equal rewards in every "
                "group. The stage is training on nothing: check train/reward_errors and train/reward_std (a broken "
                "or constant reward), move to questions the policy sometimes solves (data tiers, difficulty "
                "sampling), raise online_filter.max_rounds, or raise max_batches_without_update (0 = never stop)."
            )
        return {
            "all_flat_rounds": float(self.all_flat_rounds),
            "empty_updates": float(self.empty_updates),
            "batches_without_update": float(self.batches_without_update),
        }
