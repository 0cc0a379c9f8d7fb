"""GRPO policy losses and the composed GRPO objective: pure tensor math, returning a scalar plus diagnostics.

``ClippedSurrogate`` is the authors' PPO clip (eps_low 0.2, eps_high 0.3, dual-clip c = 3);
``GRPOLoss`` adds the KL-to-reference term and an optional entropy bonus, aggregates with a chosen
``Aggregation`` and returns detached diagnostics. Shapes: ``N = B*G`` responses, ``L`` tokens.

Left out on purpose: logging (the module logs the returned dict), computing log-probs or entropy
(``policy``), advantages (``pebr_lit.grpo``), and the KL-coefficient schedule (a callback sets
``GRPOLoss.kl_coef``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from pebr_lit.grpo.advantages import upcast
from pebr_lit.grpo.aggregation import Aggregation, TokenMean
from pebr_lit.grpo.kl import K3, KLEstimator


class PolicyLoss(ABC):
    """Per-token policy-gradient loss from current and rollout-time log-probs and advantages."""

    @abstractmethod
    def __call__(
        self, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss [N, L] and detached per-token diagnostics [N, L] (``GRPOLoss`` averages them over ``mask``).

        Args: logprobs [N, L] (carries the gradient), old_logprobs [N, L], advantages [N], bool mask [N, L].
        A diagnostic named ``ratio`` is also reported as its max and min.
        """


class ClippedSurrogate(PolicyLoss):
    """PPO clipped surrogate with separate low/high ranges (DAPO clip-higher) and dual-clip (Ye et al. 2020).

    With ``r = exp(logprobs - old_logprobs)`` and advantage A, per token (verl/EasyR1 semantics):
    ``loss = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))``; for A < 0 only, dual-clip then caps
    it at ``-A c`` (reached when r > c), so a token the policy now likes far more than at rollout
    cannot dominate a negative update. Capped and clipped tokens pass no gradient.

    Args:
        eps_low: Lower clip range: the ratio's floor is ``1 - eps_low`` (binds for A < 0).
        eps_high: Upper clip range: the ratio's ceiling is ``1 + eps_high`` (binds for A > 0).
        dual_clip_c: Dual-clip constant c > 1 for negative advantages; null turns dual-clip off.
        log_ratio_clamp: Bound on ``|logprobs - old_logprobs|`` before ``exp`` (verl: 20), against overflow.
    """

    def __init__(
        self,
        eps_low: float = 0.2,
        eps_high: float = 0.3,
        dual_clip_c: float | None = 3.0,
        log_ratio_clamp: float = 20.0,
    ) -> None:
        if not 0 <= eps_low < 1:
            raise ValueError(f"ClippedSurrogate.eps_low={eps_low!r}: must be in [0, 1). Use the paper's 0.2.")
        if eps_high < 0:
            raise ValueError(
                f"ClippedSurrogate.eps_high={eps_high!r}: must be >= 0. Use 0.2 (symmetric) or 0.28-0.3 (clip-higher)."
            )
        if dual_clip_c is not None and dual_clip_c <= 1:
            raise ValueError(
                f"ClippedSurrogate.dual_clip_c={dual_clip_c!r}: must be > 1 (a cap below ratio 1 would cut ordinary "
                "updates). Use e.g. 3.0, or null to turn dual-clip off."
            )
        if log_ratio_clamp <= 0:
            raise ValueError(f"ClippedSurrogate.log_ratio_clamp={log_ratio_clamp!r}: must be > 0. Use verl's 20.")
        self.eps_low = eps_low
        self.eps_high = eps_high
        self.dual_clip_c = dual_clip_c
        self.log_ratio_clamp = log_ratio_clamp

    def __call__(
        self, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        # Masked positions get log-ratio 0 by `where`, so garbage there never turns into NaN grads.
        log_ratio = torch.where(mask, upcast(logprobs) - upcast(old_logprobs), 0.0)  # [N, L]
        ratio = log_ratio.clamp(-self.log_ratio_clamp, self.log_ratio_clamp).exp()  # [N, L]
        adv = upcast(advantages)[:, None]  # [N, 1]
        unclipped = -adv * ratio  # [N, L]
        clipped = -adv * ratio.clamp(1 - self.eps_low, 1 + self.eps_high)  # [N, L]
        loss = torch.maximum(unclipped, clipped)  # [N, L]
        was_clipped = clipped > unclipped  # [N, L]; only when the clip removes the gradient
        negative = adv < 0  # [N, 1]
        if self.dual_clip_c is None:
            dual = torch.zeros_like(was_clipped)  # [N, L]
        else:
            cap = -adv * self.dual_clip_c  # [N, 1]; > 0 where A < 0
            dual = negative & (loss > cap)  # [N, L]
            loss = torch.where(negative, torch.minimum(loss, cap), loss)  # [N, L]
        ratio = ratio.detach()  # [N, L]
        diagnostics = {
            "ratio": ratio,  # [N, L]
            "clip_fraction": was_clipped.float(),  # [N, L]
            "clip_fraction_low": (was_clipped & (ratio < 1)).float(),  # [N, L]; A < 0, r < 1 - eps_low
            "clip_fraction_high": (was_clipped & (ratio > 1)).float(),  # [N, L]; A > 0, r > 1 + eps_high
            "dual_clip_fraction": dual.float(),  # [N, L]
        }
        return loss, diagnostics


class GRPOLoss:
    """``policy_loss + kl_coef * KL(pi || ref) - entropy_coef * entropy``, each aggregated the same way.

    ``kl_coef`` is a plain attribute and the hook for KL control: a callback may assign
    ``loss.kl_coef`` between steps. Returns the scalar loss and a dict of detached 0-d float
    tensors: ``policy_loss``, ``kl`` (only with ``ref_logprobs``), ``entropy`` (only with
    ``entropy``), the policy loss's diagnostics averaged over response tokens (for
    ``ClippedSurrogate``: ``clip_fraction``, ``clip_fraction_low``, ``clip_fraction_high``,
    ``dual_clip_fraction``), ``ratio_mean``, ``ratio_max``, ``ratio_min`` and ``approx_kl``, the
    k3 estimate of KL(pi_old || pi) from the rollout tokens, ``mean(r - 1 - log r)`` (>= 0).

    Args:
        policy_loss: Per-token policy loss; null = ``ClippedSurrogate()`` (0.2 / 0.3 / dual-clip 3).
        kl: Per-token KL(pi || ref) estimator; null = ``K3()`` (the authors' low-variance estimator).
        kl_coef: Weight of the KL term (authors: 0.01); 0 keeps KL as a diagnostic only.
        aggregation: Reduction of per-token terms to a scalar; null = ``TokenMean()`` (authors' token-mean).
        entropy_coef: Weight of the entropy bonus (authors: 0); > 0 needs ``entropy`` at call time.
    """

    def __init__(
        self,
        policy_loss: PolicyLoss | None = None,
        kl: KLEstimator | None = None,
        kl_coef: float = 0.01,
        aggregation: Aggregation | None = None,
        entropy_coef: float = 0.0,
    ) -> None:
        if kl_coef < 0:
            raise ValueError(
                f"GRPOLoss.kl_coef={kl_coef!r}: must be >= 0. Use e.g. 0.01, or 0 to train without a KL term."
            )
        if entropy_coef < 0:
            raise ValueError(
                f"GRPOLoss.entropy_coef={entropy_coef!r}: must be >= 0 (it rewards entropy). "
                "Use 0 to turn the bonus off."
            )
        self.policy_loss = policy_loss if policy_loss is not None else ClippedSurrogate()
        self.kl = kl if kl is not None else K3()
        self.kl_coef = kl_coef
        self.aggregation = aggregation if aggregation is not None else TokenMean()
        self.entropy_coef = entropy_coef

    def __call__(
        self,
        logprobs: Tensor,
        old_logprobs: Tensor,
        ref_logprobs: Tensor | None,
        advantages: Tensor,
        mask: Tensor,
        entropy: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss [] and diagnostics from log-probs [N, L] (``old``/``ref`` are treated as constants),
        advantages [N], a response mask [N, L] (bool or 0/1) and optional per-token entropy [N, L]."""
        mask = mask.bool()  # [N, L]
        _check_shapes(logprobs, old_logprobs, ref_logprobs, advantages, mask, entropy)
        if ref_logprobs is None and self.kl_coef != 0:
            raise ValueError(
                f"GRPOLoss: kl_coef is {self.kl_coef} but ref_logprobs is None; pass the reference "
                "policy's log-probs or set kl_coef to 0."
            )
        if entropy is None and self.entropy_coef != 0:
            raise ValueError(
                f"GRPOLoss: entropy_coef is {self.entropy_coef} but entropy is None; pass the "
                "per-token entropy or set entropy_coef to 0."
            )
        logprobs = torch.where(mask, upcast(logprobs), 0.0)  # [N, L]; garbage at padding -> 0
        old_logprobs = torch.where(mask, upcast(old_logprobs.detach()), 0.0)  # [N, L]

        per_token, token_stats = self.policy_loss(logprobs, old_logprobs, advantages, mask)  # [N, L]
        policy_loss = self.aggregation(per_token, mask)  # []
        loss = policy_loss  # []
        stats = {"policy_loss": policy_loss.detach()}
        if ref_logprobs is not None:
            ref_logprobs = torch.where(mask, upcast(ref_logprobs.detach()), 0.0)  # [N, L]
            kl = self.aggregation(self.kl(logprobs, ref_logprobs), mask)  # []
            loss = loss + self.kl_coef * kl  # []
            stats["kl"] = kl.detach()
        if entropy is not None:
            ent = self.aggregation(torch.where(mask, upcast(entropy), 0.0), mask)  # []
            loss = loss - self.entropy_coef * ent  # []
            stats["entropy"] = ent.detach()

        token_mean = TokenMean()
        for name, value in token_stats.items():
            stats["ratio_mean" if name == "ratio" else name] = token_mean(value.detach(), mask)  # []
        if "ratio" in token_stats and mask.numel():
            # Filling padding with the mean leaves the max/min over response tokens unchanged.
            filled = torch.where(mask, token_stats["ratio"].detach(), stats["ratio_mean"])  # [N, L]
            stats["ratio_max"], stats["ratio_min"] = filled.max(), filled.min()  # [], []
        with torch.no_grad():
            log_r = (logprobs - old_logprobs).clamp(-20.0, 20.0)  # [N, L]; 0 at padding
            stats["approx_kl"] = token_mean(torch.expm1(log_r) - log_r, mask)  # []
        return loss, stats


def _check_shapes(
    logprobs: Tensor,
    old_logprobs: Tensor,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    entropy: Tensor | None,
) -> None:
    """Raise a ValueError naming the argument whose shape does not fit logprobs [N, L] / advantages [N]."""
    if logprobs.dim() != 2:
        raise ValueError(f"GRPOLoss: logprobs must be [N, L] (responses x tokens), got {tuple(logprobs.shape)}.")
    expected = tuple(logprobs.shape)
    named = {"old_logprobs": old_logprobs, "ref_logprobs": ref_logprobs, "mask": mask, "entropy": entropy}
    for name, tensor in named.items():
        if tensor is not None and tuple(tensor.shape) != expected:
            raise ValueError(
                f"GRPOLoss: {name} has shape {tuple(tensor.shape)} but logprobs has {expected}; "
                "pad or slice them to the same response tokens."
            )
    if tuple(advantages.shape) != expected[:1]:
        raise ValueError(
            f"GRPOLoss: advantages must be one value per response [N={expected[0]}], got "
            f"{tuple(advantages.shape)}; pass sequence-level advantages, not per-token ones."
        )
