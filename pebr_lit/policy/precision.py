"""Fit-start check: can the optimizer's updates survive the dtype the trained weights are stored in?

An Adam-type step moves a weight by at most about ``lr`` (the update ``lr * m / (sqrt(v) + eps)`` is
normalised; the first step is exactly ``lr * sign(g)``). Rounding to nearest keeps a move only when it
is at least half an ulp of the weight, and half an ulp of ``|w|`` is at most ``|w| * eps / 2``
(``eps = torch.finfo(dtype).eps``: 2^-7 for bfloat16, 2^-10 for float16, 2^-23 for float32). So every
weight with ``|w| >= 2 * lr / eps`` keeps its value, step after step. The check refuses when that
bound falls below ``TYPICAL_WEIGHT`` = 0.01 (below the spread of a trained transformer's linear
weights, std ~0.02; norm weights are ~1), i.e. when ``lr < 0.01 * eps / 2``: 3.9e-5 for bfloat16
(at the authors' lr of 1e-6 every weight above 2.6e-4 is frozen), 4.9e-6 for float16, 6e-10 for float32.

What is checked is what the optimizer updates: the trainable parameters of each param group, in
the dtype they are stored in (under FSDP2 the local shards: fp32 with ``sharding.param_dtype:
bfloat16`` gathers bf16 copies for compute only; under ``bf16-true`` Lightning has converted the
whole module, LoRA adapters included), and the group's configured rate (a schedule's
``initial_lr``, so a warm-up starting near 0 does not hide the peak rate).

Left out on purpose: optimizers that are not normalised (SGD's step is ``lr * g``, which this rule
does not bound) and weights that sit near zero (they do move; LoRA's B starts at zero): the check is
a guard against the common mistake, not a simulation; ``allow_low_precision_updates`` skips it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

#: Weight magnitude whose updates must survive rounding (see the module docstring).
TYPICAL_WEIGHT = 0.01


def smallest_kept_update(dtype: torch.dtype, magnitude: float = TYPICAL_WEIGHT) -> float:
    """Half an ulp of a weight of ``magnitude`` stored in ``dtype`` (upper bound): smaller moves round away."""
    return magnitude * torch.finfo(dtype).eps / 2


def _configured_lr(group: dict) -> float:
    return float(max(group.get("initial_lr", group["lr"]), group["lr"]))


def check_update_precision(optimizers: Iterable[torch.optim.Optimizer], allow: bool = False) -> list[str]:
    """Refuse (``ValueError``) an optimizer whose rate is below what its trained weights' dtype can hold.

    With ``allow`` the same findings are warned about instead. Returns them (one line each; empty = fine).
    """
    found: list[str] = []
    for optimizer in optimizers:
        name = type(optimizer).__name__
        for index, group in enumerate(optimizer.param_groups):
            lr = _configured_lr(group)
            dtypes = {p.dtype for p in group["params"] if p.requires_grad and p.is_floating_point()}
            for dtype in sorted(dtypes, key=str):
                kept = smallest_kept_update(dtype)
                if lr < kept:
                    count = sum(1 for p in group["params"] if p.requires_grad and p.dtype == dtype)
                    found.append(
                        f"{name}.lr={lr:g}: param group {index} trains {count} tensors stored in "
                        f"{str(dtype).removeprefix('torch.')}, which rounds away any step below half an ulp "
                        f"({kept:.2g} for a weight of {TYPICAL_WEIGHT}), so an Adam step of ~lr leaves almost every "
                        "weight unchanged."
                    )
    if not found:
        return found
    fix = (
        "Keep fp32 master weights: trainer.precision bf16-mixed (full fine-tuning with policy.dtype float32; "
        "LoRA/QLoRA keep fp32 adapters over a bfloat16 or 4-bit base), or under FSDP2 trainer.precision 32-true "
        "with policy.dtype float32 and strategy sharding.param_dtype bfloat16 (reduce_dtype float32); "
        "set policy.allow_low_precision_updates: true to train as configured anyway."
    )
    if allow:
        warnings.warn(" ".join(found) + " Training anyway (policy.allow_low_precision_updates: true).", stacklevel=2)
        return found
    raise ValueError(" ".join(found) + " " + fix)
