"""GRPO building blocks as pure tensor math: group advantages, per-token KL estimators, aggregations.

Shapes: ``N = B*G`` responses (B prompts, G responses each, a prompt's G responses contiguous),
``L`` response tokens. Every piece is a small class chosen by ``class_path`` in YAML; the policy
loss and the composed ``GRPOLoss`` live in ``pebr_lit.grpo_losses``.

Left out on purpose: models, log-prob computation, logging, I/O, and normalising by a token count
gathered across micro-batches or ranks (the training module scales the loss for that).
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
            raise ValueError(f"GroupMeanStd: eps must be > 0, got {eps}.")
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
            raise ValueError(f"BatchStd: eps must be > 0, got {eps}.")
        self.eps = eps

    def scale(self, grouped: Tensor, centered: Tensor) -> Tensor:
        std = grouped.reshape(-1).std()  # []; unbiased over B*G >= 2 rewards
        return centered / (std + self.eps)  # [B, G]


class GroupMeanOnly(AdvantageNormalizer):
    """``r - mean_g`` with no std division (Dr. GRPO): avoids up-weighting near-constant groups."""

    def scale(self, grouped: Tensor, centered: Tensor) -> Tensor:
        return centered  # [B, G]


class KLEstimator(ABC):
    """Per-token estimate of KL(pi || ref) from tokens sampled from the policy pi (Schulman's k1/k2/k3).

    With ``d = log pi(x) - log ref(x)`` for a sampled token x. Returns the same shape as the inputs,
    in at least float32.
    """

    @abstractmethod
    def __call__(self, logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
        """Estimates [N, L] from policy log-probs [N, L] and reference log-probs [N, L]."""


class K1(KLEstimator):
    """``d``: unbiased, but negative for some tokens and high-variance."""

    def __call__(self, logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
        return upcast(logprobs) - upcast(ref_logprobs)  # [N, L]


class K2(KLEstimator):
    """``d^2 / 2``: always >= 0, low variance, biased (its gradient is that of the reverse-KL surrogate)."""

    def __call__(self, logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
        return 0.5 * (upcast(logprobs) - upcast(ref_logprobs)).square()  # [N, L]


class K3(KLEstimator):
    """``exp(-d) + d - 1``: unbiased, always >= 0, low variance; the authors' "low_var_kl".

    Clamped as verl/EasyR1 do: ``-d`` to [-log_ratio_clamp, log_ratio_clamp] before ``exp`` and the
    result to at most ``max_value``; a clamped token passes no gradient. Computed as
    ``expm1(-d) - (-d)``, which keeps the value accurate and >= 0 for tiny ``d``.

    Args:
        log_ratio_clamp: Bound on ``|log ref - log pi|`` before exponentiating (verl: 20).
        max_value: Upper bound on the per-token estimate (verl: 10).
    """

    def __init__(self, log_ratio_clamp: float = 20.0, max_value: float = 10.0) -> None:
        if log_ratio_clamp <= 0 or max_value <= 0:
            raise ValueError(f"K3: log_ratio_clamp and max_value must be > 0, got {log_ratio_clamp}, {max_value}.")
        self.log_ratio_clamp = log_ratio_clamp
        self.max_value = max_value

    def __call__(self, logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
        log_ratio = upcast(ref_logprobs) - upcast(logprobs)  # [N, L]; log(ref / pi) = -d
        log_ratio = log_ratio.clamp(-self.log_ratio_clamp, self.log_ratio_clamp)  # [N, L]
        return (torch.expm1(log_ratio) - log_ratio).clamp(0.0, self.max_value)  # [N, L]


class Aggregation(ABC):
    """Reduces per-token values [N, L] over the tokens where ``mask`` is True to a scalar.

    Masked-out positions are excluded with ``where``, so NaN/inf there never reach the result or
    its gradient. An all-masked batch gives 0.
    """

    @abstractmethod
    def __call__(self, values: Tensor, mask: Tensor) -> Tensor:
        """Scalar [] from values [N, L] and a bool mask [N, L]."""

    @abstractmethod
    def weight(self, mask: Tensor) -> Tensor:
        """The denominator this aggregation divides by for ``mask`` [N, L] (a 0-d count).

        Splitting a batch into micro-batches and scaling each micro-batch's result by
        ``weight(micro_mask) / weight(batch_mask)`` reproduces the whole-batch result exactly.
        """


class TokenMean(Aggregation):
    """Sum over all response tokens in the batch / their number: the authors' "token-mean".

    Every token weighs the same, so longer responses weigh more in total.
    """

    def __call__(self, values: Tensor, mask: Tensor) -> Tensor:
        total = torch.where(mask, values, 0.0).sum()  # []
        return total / mask.sum().clamp(min=1)  # []

    def weight(self, mask: Tensor) -> Tensor:
        return mask.sum()  # []: response tokens


class SequenceMean(Aggregation):
    """Mean over each response's tokens, then mean over responses that have at least one token.

    Every response weighs the same whatever its length (the original GRPO formulation).
    """

    def __call__(self, values: Tensor, mask: Tensor) -> Tensor:
        lengths = mask.sum(dim=-1)  # [N]
        per_sequence = torch.where(mask, values, 0.0).sum(dim=-1) / lengths.clamp(min=1)  # [N]
        return per_sequence.sum() / (lengths > 0).sum().clamp(min=1)  # []

    def weight(self, mask: Tensor) -> Tensor:
        return (mask.sum(dim=-1) > 0).sum()  # []: responses with at least one token
