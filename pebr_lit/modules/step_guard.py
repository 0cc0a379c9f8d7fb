"""StepGuard: skip an optimizer step whose gradient norm is not finite (as the authors' trainer does).

The guard measures the global L2 norm of the gradients an optimizer is about to apply, before any
clipping. When it is NaN or infinite it drops every gradient (``grad = None``), so the optimizer
step that follows finds nothing to update: torch's optimizers leave a parameter without a gradient
alone, weights and state alike (zeroing the gradients would not do: AdamW would still move every
weight by its momentum and weight decay). The step itself still runs, so Lightning's step count,
the learning-rate schedule and step-based checkpoints advance as if it had been taken.

All ranks decide alike: under DDP the gradients have been all-reduced by then (a NaN on one rank is
a NaN on all), and under FSDP2 the norm of the sharded (DTensor) gradients is the whole model's norm
on every rank.

Left out on purpose: gradient clipping itself (the modules clip the finite steps as before) and
fp16 loss scaling (Lightning's GradScaler skips its own overflow steps).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from pebr_lit.policy.fsdp import full_tensor


def gradient_norm(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """Global L2 norm of the gradients of ``params`` (a collective under FSDP2: call on every rank); 0 if none."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return full_tensor(torch.nn.utils.get_total_norm(grads, error_if_nonfinite=False)).float()


class StepGuard:
    """Counts the optimizer steps skipped for a non-finite gradient norm; warns on the first one."""

    def __init__(self) -> None:
        #: Steps skipped so far in this process's run.
        self.skipped = 0

    def check(self, optimizer: torch.optim.Optimizer, owner: str) -> torch.Tensor:
        """The gradient norm of ``optimizer``'s parameters; a non-finite one drops their gradients (see top)."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norm = gradient_norm(params)
        if bool(torch.isfinite(norm)):
            return norm
        for p in params:
            p.grad = None
        self.skipped += 1
        if self.skipped == 1:
            warnings.warn(
                f"{owner}: gradient norm is {float(norm)}, skipping this optimizer step (weights and optimizer "
                "state unchanged; counted as train/skipped_steps). Many such steps point at a too-high learning "
                "rate or a low-precision overflow.",
                stacklevel=2,
            )
        return norm
