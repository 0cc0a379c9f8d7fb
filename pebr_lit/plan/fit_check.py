"""warn_if_over_memory: at fit start on a GPU, warn when the planner's peak exceeds the device's memory.

Called from the GRPO and SFT modules' ``on_fit_start`` (one line each). It reads the run's config from
Lightning's ``SaveConfigCallback`` (present whenever ``cli.py`` launched the run), so it plans exactly what
``python -m pebr_lit.plan --config ...`` prints for the same file. It never raises: a run the planner
cannot read (a model it has no shapes for, a module built outside the CLI) gets a note or nothing.

Left out on purpose: refusing to start (an estimate is not a measurement), and anything on CPU.
"""

from __future__ import annotations

import warnings
from typing import Any

from pebr_lit.plan.memory_plan import MemoryPlan


def warn_if_over_memory(trainer: Any) -> MemoryPlan | None:
    """The plan of the running config on this GPU, with a warning when its peak exceeds the device's memory.

    ``None`` off CUDA or without a config to read (no ``SaveConfigCallback``: the run was not launched by ``cli.py``).
    """
    import torch

    device = getattr(getattr(trainer, "strategy", None), "root_device", None)
    if device is None or device.type != "cuda":
        return None
    from lightning.pytorch.cli import SaveConfigCallback

    saved = next((cb for cb in trainer.callbacks if isinstance(cb, SaveConfigCallback)), None)
    if saved is None:
        return None
    from pebr_lit.plan.estimate import estimate

    config = saved.config.as_dict() if hasattr(saved.config, "as_dict") else dict(saved.config)
    try:
        plan = estimate(config, devices=trainer.world_size)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        warnings.warn(f"pebr_lit.plan: no memory estimate for this run ({err}).", stacklevel=2)
        return None
    plan.gpu_bytes = float(torch.cuda.get_device_properties(device).total_memory)
    if not plan.fits:
        warnings.warn(
            f"pebr_lit.plan (an estimate, not a measurement): this run {plan.verdict()}. "
            "See the table with `python -m pebr_lit.plan --config <this config>` before the run dies of OOM.",
            stacklevel=2,
        )
    return plan
