"""Group advantages: rewards [B*G] -> advantages [B*G], chosen by ``class_path`` (``GroupMeanStd`` is the authors').

Shapes: ``N = B*G`` responses (B prompts, G responses each, a prompt's G responses contiguous).
``upcast`` (float32 at least) and ``zero_variance_groups`` are shared by the other GRPO pieces.

Left out on purpose: models, rewards and logging; KL estimators (``grpo.kl``), aggregation
(``grpo.aggregation``) and the loss (``grpo.losses``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """``x`` in at least float32: bf16 log-probs lose too much in ``exp`` and in differences."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _grouped(rewards: Tensor, group_size: int) -> Tensor:
    """Check ``rewards`` [B*G] and view it as [B, G], detached: advantages are constants of the gradient."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"grpo: group_size must be an int >= 1 (responses per prompt), got {group_size!r}.")
    if rewards.dim() != 1:
        raise ValueError(
            f"grpo: rewards must be 1-D [B*G], got shape {tuple(rewards.shape)}. Flatten the per-response "
            "rewards so that each prompt's G responses are contiguous."
        )
    if rewards.numel() % group_size:
        raise ValueError(
            f"grpo: rewards has {rewards.numel()} entries, not a multiple of group_size={group_size}. "
            "Pass all G responses of every prompt."
        )
    finite = torch.isfinite(rewards)  # [B*G]
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0])
        raise ValueError(
            f"grpo: rewards[{bad}] is {rewards[bad].item()}; reward functions must return finite floats. "
            "Fix the reward that produced it."
        )
    return upcast(rewards.detach()).view(-1, group_size)  # [B, G]


def zero_variance_groups(rewards: Tensor, group_size: int) -> Tensor:
    """Bool [B]: True where all G rewards of a prompt are exactly equal (always True for G = 1).

    Such a group carries no learning signal; every normaliser gives it exactly zero advantage.
    """
    grouped = _grouped(rewards, group_size)  # [B, G]
    return (grouped == grouped[:, :1]).all(dim=-1)  # [B]


class AdvantageNormalizer(ABC):
    """Maps rewards [B*G] to advantages [B*G]: subtract the group mean, then ``scale``.

    Zero-variance groups (including G = 1) get exactly 0, never NaN.
    """

    def __call__(self, rewards: Tensor, group_size: int) -> Tensor:
        grouped = _grouped(rewards, group_size)  # [B, G]
        flat = (grouped == grouped[:, :1]).all(dim=-1, keepdim=True)  # [B, 1]
        if group_size == 1:  # the std of one sample is undefined; there is no baseline either
            return torch.zeros_like(grouped).view(-1)  # [B*G]
        centered = grouped - grouped.mean(dim=-1, keepdim=True)  # [B, G]
        scaled = self.scale(grouped, centered)  # [B, G]
        return torch.where(flat, torch.zeros_like(scaled), scaled).view(-1)  # [B*G]

    @abstractmethod
    def scale(self, grouped: Tensor, centered: Tensor) -> Tensor:
        """Advantages [B, G] from the rewards [B, G] and the group-centred rewards [B, G] (G >= 2)."""


class GroupMeanStd(AdvantageNormalizer):
    """``(r - mean_g) / (std_g + eps)``: the authors' GRPO advantage.

    ``std_g`` is the unbiased sample std (divisor G - 1, ``torch.std``'s default), as in EasyR1 and
    verl, which the authors' code builds on. With it, ``|A| <= (G - 1) / sqrt(G)`` in every group.

    Args:
        eps: Added to the std before dividing; keeps near-constant groups finite.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        if eps <= 0:
            raise ValueError(f"GroupMeanStd.eps={eps!r}: must be > 0. Use a small positive value such as 1e-6.")
        self.eps = eps

    def scale(self, grouped: Tensor, centered: Tensor) -> Tensor:
        std = grouped.std(dim=-1, keepdim=True)  # [B, 1]; unbiased (G - 1)
        return centered / (std + self.eps)  # [B, G]


class BatchStd(AdvantageNormalizer):
    """``(r - mean_g) / (std_batch + eps)``: group baseline, one scale for the batch (Lite-PPO, TRL "batch").

    ``std_batch`` is the unbiased std of all B*G raw rewards, so groups with a larger spread keep a
    larger advantage instead of every group being stretched to unit variance.

    Args:
        eps: Added to the std before dividing.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        if eps <= 0:
            raise ValueError(f"BatchStd.eps={eps!r}: must be > 0. Use a small positive value such as 1e-6.")
        self.eps = eps

    def scale(self, grouped: Tensor, centered: Tensor) -> Tensor:
        std = grouped.reshape(-1).std()  # []; unbiased over B*G >= 2 rewards
        return centered / (std + self.eps)  # [B, G]


class GroupMeanOnly(AdvantageNormalizer):
    """``r - mean_g`` with no std division (Dr. GRPO): avoids up-weighting near-constant groups."""

    def scale(self, grouped: Tensor, centered: Tensor) -> Tensor:
        return centered  # [B, G]
