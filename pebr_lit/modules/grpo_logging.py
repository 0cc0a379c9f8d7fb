"""What ``GRPOModule`` logs per training step: the rollouts' rewards and lengths, and the update's diagnostics.

Every name is ``train/<name>``. Per rollout batch (``log_rollouts``): each reward component's mean
(``reward/<component>``, ``reward/total`` on the progress bar), the stage's other per-response values,
the mean within-group reward std, the share of zero-variance groups, the reward failures
(``reward_errors``, a count over all ranks: ``modules.reward_health``), the rollouts that entered an
update, response length (mean, max) and truncation rate. Per step (``log_update``): the loss
diagnostics, buffer and guard counts (``skipped_steps``, ``all_flat_rounds``, ...) averaged over ranks,
and the KL coefficient.

Left out on purpose: validation/test metrics (``modules.grpo``, ``modules.generation_metrics``) and
computing any of these values.
"""

from __future__ import annotations

import lightning as L
import torch


def log_rollouts(
    module: L.LightningModule,
    rewards: dict[str, torch.Tensor],
    logged: dict[str, torch.Tensor],
    lengths: torch.Tensor,
    truncated: torch.Tensor,
    flat: torch.Tensor,
    updated_rows: int,
) -> None:
    """Log the rollout batch: rewards [N] per component, ``logged`` values [N], token ``lengths`` [N],
    ``truncated`` [N], zero-variance flags ``flat`` [B] and the rollouts that entered the update."""
    group = module.sampling.num_samples
    # Each rank holds its own prompts (the same number on every rank): log the ranks' mean.
    synced = {"batch_size": len(flat), "sync_dist": True}
    for name, values in rewards.items():
        module.log(f"train/reward/{name}", values.float().mean(), prog_bar=name == "total", **synced)
    for name, values in logged.items():
        module.log(f"train/{name}", values.float().mean(), **synced)
    total = rewards["total"].float().view(-1, group)  # [B, G]
    module.log("train/reward_std", total.std(dim=1).mean(), **synced)
    module.log("train/zero_variance_groups", flat.float().mean(), **synced)
    module.log("train/reward_errors", float(module.reward_errors), reduce_fx="sum", **synced)  # all ranks together
    module.log("train/updated_rollouts", float(updated_rows), reduce_fx="sum", **synced)  # all ranks together
    module.log("train/response_length/mean", lengths.float().mean(), **synced)
    module.log("train/response_length/max", lengths.float().max(), reduce_fx="max", **synced)
    module.log("train/truncation_rate", truncated.float().mean(), **synced)


def log_update(module: L.LightningModule, stats: dict[str, float], batch: int) -> dict[str, float]:
    """Log ``stats`` averaged over ranks, and the KL coefficient; returns the averaged stats (for callbacks)."""
    stats = mean_over_ranks(module, stats)  # already reduced: logged as is
    for name, value in stats.items():
        module.log(f"train/{name}", value, batch_size=batch)
    module.log("train/kl_coef", float(module.loss.kl_coef), batch_size=batch)
    return stats


def mean_over_ranks(module: L.LightningModule, stats: dict[str, float]) -> dict[str, float]:
    """Loss diagnostics averaged over processes, so callbacks (KL control) act alike on every rank."""
    if not stats or module.trainer.world_size == 1:
        return stats
    values = torch.tensor(list(stats.values()), dtype=torch.float64, device=module.device)  # [S]
    return dict(zip(stats, module.trainer.strategy.reduce(values, reduce_op="mean").tolist()))
