"""Learning-rate schedules chosen by ``class_path`` in YAML.

``WarmupConstantDecay`` is the default for SFT: linear warm-up, a constant plateau, and a cosine
decay only over the last steps. On the tiny demo model, decaying while vision is just switching on
slows learning (see the demo notes), so the decay is kept short. ``WarmupCosine`` is the authors'
warm-up SFT schedule (LLaMA-Factory's ``cosine`` with ``warmup_ratio``): linear warm-up over a share
of the run, then cosine decay over all remaining steps.

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


class WarmupCosine(LambdaLR):
    """Linear warm-up over the first ``warmup_fraction`` of the steps, then cosine decay to ``min_ratio``.

    Step ``s`` of ``T`` with ``W = ceil(T * warmup_fraction)`` warm-up steps gets the factor ``s / W`` while
    ``s < W``, then ``min_ratio + (1 - min_ratio) * (1 + cos(pi * (s - W) / (T - W))) / 2``: the Hugging Face
    ``get_cosine_schedule_with_warmup`` curve (warm-up from 0, decay to 0 by default) that the authors' SFT uses.

    Args:
        optimizer: The wrapped optimizer.
        warmup_fraction: Share of all steps spent warming up linearly from 0 (authors' SFT: 0.1).
        min_ratio: Final learning rate as a fraction of the base rate (authors: 0).
        total_steps: Optimizer steps in the run; null = taken from the trainer by the module.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_fraction: float = 0.1,
        min_ratio: float = 0.0,
        total_steps: int | None = None,
    ) -> None:
        if not 0 <= warmup_fraction < 1:
            raise ValueError(
                f"WarmupCosine.warmup_fraction={warmup_fraction!r}: must be in [0, 1). "
                "Give the share of steps spent warming up, e.g. 0.1 (0 = no warm-up)."
            )
        if not 0 <= min_ratio <= 1:
            raise ValueError(
                f"WarmupCosine.min_ratio={min_ratio!r}: must be in [0, 1]. "
                "Give the final learning rate as a fraction of the base rate, e.g. 0 (authors)."
            )
        self.warmup_fraction = warmup_fraction
        self.min_ratio = min_ratio
        self.total_steps = total_steps
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate at optimizer step ``step``."""
        if not self.total_steps:  # not sized yet: LambdaLR asks for step 0 at construction, whose factor no T changes
            return 0.0 if self.warmup_fraction > 0 else 1.0
        warmup = math.ceil(self.total_steps * self.warmup_fraction)
        if step < warmup:
            return step / warmup
        progress = min(1.0, (step - warmup) / max(1, self.total_steps - warmup))
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
