"""StepGuard: skip an optimizer step whose loss, gradient norm or updated weights are not finite; stop after N in a row.

Three checks, in the order a step meets them:

- the loss (the caller says whether every micro-batch loss of the step was finite) and the global L2
  norm of the gradients, before any clipping: when either is NaN or infinite the guard drops every
  gradient (``grad = None``), so the optimizer step that follows finds nothing to update: torch's
  optimizers leave a parameter without a gradient alone, weights and state alike (zeroing the
  gradients would not do: AdamW would still move every weight by its momentum and weight decay);
- the updated weights (``before_update`` / ``after_update``, used by ``GRPOModule``): with
  ``restore_weights`` the trainable weights and the optimizer state are copied to CPU memory before
  the step and copied back when a weight comes out of it non-finite; without it such a step stops
  the run at once, before anything can be saved.

A skipped step still runs, so Lightning's step count, the learning-rate schedule and step-based
checkpoints advance as if it had been taken; it is counted (``skipped``, logged as
``train/skipped_steps``) and warned about once, naming its cause. ``max_skipped_in_a_row`` skipped steps
in a row stop the run (``TrainingStopped``) with the first cause of that run of skips: the weights are
then still the last finite ones, and the stop comes inside the training step, before any checkpoint of
that step is written.

All ranks decide alike: under DDP the gradients have been all-reduced by then (a NaN on one rank is
a NaN on all; the caller reduces its loss flag), and under FSDP2 the norms of sharded (DTensor)
gradients and weights are the whole model's on every rank.

Left out on purpose: gradient clipping itself (the modules clip the finite steps as before), fp16 loss
scaling (Lightning's GradScaler skips its own overflow steps), and what makes a loss non-finite
(``modules.reward_health`` keeps broken rewards out of it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from pebr_lit.policy.fsdp import full_tensor


class TrainingStopped(RuntimeError):
    """A run stopped by one of its guards (skipped steps, broken rewards, no updates); the message says what to do."""


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    if not tensors:
        return torch.zeros(())
    return full_tensor(torch.nn.utils.get_total_norm(tensors, error_if_nonfinite=False)).float()


def gradient_norm(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """Global L2 norm of the gradients of ``params`` (a collective under FSDP2: call on every rank); 0 if none."""
    return _norm([p.grad for p in params if p.grad is not None])


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of ``t``: the local shard of an FSDP2 DTensor, a plain tensor as it is."""
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


class StepGuard:
    """Skips (and counts) optimizer steps whose loss, gradient norm or updated weights are not finite.

    Args:
        max_skipped_in_a_row: Skipped steps in a row that stop the run (``TrainingStopped``); 0 = never stop.
        restore_weights: Copy the trainable weights and optimizer state to CPU before each step and put them
            back when the step makes a weight non-finite (costs their size in CPU memory and a copy per step:
            small with LoRA); false = such a step stops the run at once instead.
    """

    def __init__(self, max_skipped_in_a_row: int = 3, restore_weights: bool = True) -> None:
        if isinstance(max_skipped_in_a_row, bool) or max_skipped_in_a_row < 0:
            raise ValueError(
                f"StepGuard.max_skipped_in_a_row={max_skipped_in_a_row!r}: must be an int >= 0. "
                "Use e.g. 3 (0 never stops the run)."
            )
        self.max_skipped_in_a_row = max_skipped_in_a_row
        self.restore_weights = restore_weights
        #: Steps skipped so far in this process's run.
        self.skipped = 0
        #: Steps skipped since the last step that was applied.
        self.in_a_row = 0
        #: Why the first step of the current run of skips was skipped.
        self.first_cause: str | None = None
        self._snapshot: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._stateless: list[torch.Tensor] = []  # parameters the optimizer had no state for before the step

    # --------------------------------------------------------------------------- before the step
    def check(self, optimizer: torch.optim.Optimizer, owner: str, loss_finite: bool = True) -> torch.Tensor:
        """The gradient norm of ``optimizer``'s parameters; a non-finite one, or ``loss_finite=False``, drops
        their gradients (see top) and counts a skipped step."""
        params = _params(optimizer)
        norm = gradient_norm(params)
        finite = bool(torch.isfinite(norm))
        if finite and loss_finite:
            return norm
        for p in params:
            p.grad = None
        cause = f"gradient norm is {float(norm)}"
        if not loss_finite:
            cause = f"loss is not finite (gradient norm {float(norm)})"
        self._skip(cause, owner)
        return norm

    def passed(self) -> None:
        """The step was applied (callers without ``after_update``): ends a run of skips."""
        self.in_a_row, self.first_cause = 0, None

    def before_update(self, optimizer: torch.optim.Optimizer) -> None:
        """Copy (to CPU) the weights and optimizer state that ``optimizer.step()`` will change (``restore_weights``)."""
        if not self.restore_weights:
            return
        pairs, self._stateless = [], []
        for p in _params(optimizer):
            if p.grad is None:  # left alone by the step
                continue
            pairs.append((p, _local(p.detach()).to("cpu", copy=True)))
            if not optimizer.state.get(p):
                self._stateless.append(p)
            for value in optimizer.state.get(p, {}).values():
                if isinstance(value, torch.Tensor):
                    pairs.append((value, _local(value).to("cpu", copy=True)))
        self._snapshot = pairs

    # ---------------------------------------------------------------------------- after the step
    @torch.no_grad()
    def after_update(self, optimizer: torch.optim.Optimizer, owner: str) -> bool:
        """True when every updated weight is finite; else the step is undone (or the run stopped) and counted."""
        norm = _norm([p.detach() for p in _params(optimizer)])
        if bool(torch.isfinite(norm)):
            self._snapshot = None
            self.passed()
            return True
        cause = f"the updated weights are not finite (weight norm {float(norm)})"
        if self._snapshot is None:
            raise TrainingStopped(
                f"{owner}: {cause} and StepGuard.restore_weights is false, so they cannot be put back; stopping "
                "before they are saved. Lower the learning rate, check the rewards, or set restore_weights: true."
            )
        for target, saved in self._snapshot:
            _local(target).copy_(saved)
        for p in self._stateless:  # its first step: the state it created goes too
            optimizer.state.pop(p, None)
        self._snapshot, self._stateless = None, []
        self._skip(cause + "; weights and optimizer state restored", owner)
        return False

    def _skip(self, cause: str, owner: str) -> None:
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row == 1:
            self.first_cause = cause
        if self.skipped == 1:
            warnings.warn(
                f"{owner}: {cause}, skipping this optimizer step (weights and optimizer state unchanged; counted "
                "as train/skipped_steps). Many such steps point at a too-high learning rate, a reward on the wrong "
                "scale or a low-precision overflow.",
                stacklevel=3,
            )
        if self.max_skipped_in_a_row and self.in_a_row >= self.max_skipped_in_a_row:
            raise TrainingStopped(
                f"{owner}: {self.in_a_row} optimizer steps in a row skipped (StepGuard.max_skipped_in_a_row="
                f"{self.max_skipped_in_a_row}); the first one: {self.first_cause}. The weights are the last "
                "finite ones and nothing of these steps was saved. Lower the learning rate, check that every "
                "reward is finite and in [0, 1] (train/reward_errors), or resume from the last checkpoint."
            )


def _params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]
