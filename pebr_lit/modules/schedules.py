"""Learning-rate schedules chosen by ``class_path`` in YAML.

``WarmupConstantDecay`` is the default for SFT: linear warm-up, a constant plateau, and a cosine
decay only over the last steps. On the tiny demo model, decaying while vision is just switching on
slows learning (see the demo notes), so the decay is kept short.

Left out on purpose: anything the torch schedulers already do well (use them by ``class_path``).
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupConstantDecay(LambdaLR):
    """Linear warm-up, then constant, then cosine decay to ``min_ratio`` over the last steps.

    Args:
        optimizer: The wrapped optimizer.
        warmup_steps: Steps of linear warm-up from 0 to the base learning rate.
        decay_fraction: Share of all steps, at the end, spent in cosine decay (0 = no decay).
        min_ratio: Final learning rate as a fraction of the base rate.
        total_steps: Optimizer steps in the run; null = taken from the trainer by the module.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        decay_fraction: float = 0.1,
        min_ratio: float = 0.1,
        total_steps: int | None = None,
    ) -> None:
        if warmup_steps < 0:
            raise ValueError(f"WarmupConstantDecay.warmup_steps={warmup_steps!r}: must be >= 0. Use 0 for no warm-up.")
        if not 0 <= decay_fraction <= 1:
            raise ValueError(
                f"WarmupConstantDecay.decay_fraction={decay_fraction!r}: must be in [0, 1]. "
                "Give the share of steps spent decaying, e.g. 0.1 (0 = constant after warm-up)."
            )
        if not 0 <= min_ratio <= 1:
            raise ValueError(
                f"WarmupConstantDecay.min_ratio={min_ratio!r}: must be in [0, 1]. "
                "Give the final learning rate as a fraction of the base rate, e.g. 0.1."
            )
        self.warmup_steps = warmup_steps
        self.decay_fraction = decay_fraction
        self.min_ratio = min_ratio
        self.total_steps = total_steps
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate at optimizer step ``step``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if not self.total_steps or self.decay_fraction == 0:
            return 1.0
        decay_steps = max(1, round(self.total_steps * self.decay_fraction))
        start = self.total_steps - decay_steps
        if step < start:
            return 1.0
        progress = min(1.0, (step - start) / decay_steps)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimization(params, optimizer_factory, scheduler_factory, total_steps: float) -> object:
    """``configure_optimizers`` result from factories; sizes schedules that take ``total_steps=None``.

    ``total_steps`` is the run's optimizer-step count as the trainer estimates it (``inf`` when the
    data stream has no length, in which case such a schedule needs an explicit ``total_steps``).
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: unfreeze something or add lora settings to the policy.")
    optimizer = optimizer_factory(params)
    if scheduler_factory is None:
        return optimizer
    scheduler = scheduler_factory(optimizer)
    if getattr(scheduler, "total_steps", 0) is None:  # schedules that size themselves to the run
        if not math.isfinite(total_steps):
            raise ValueError("the run's length is unknown (a streaming data module): set the scheduler's total_steps.")
        scheduler.total_steps = int(total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
