"""Per-token KL estimators between the policy and the reference (k1, k2, k3), chosen by ``class_path``.

Shapes: log-probs ``[N, L]`` for N responses of L tokens; estimates come back in the same shape, in
at least float32.

Left out on purpose: computing log-probs (``policy``), the KL coefficient's schedule (a callback) and
how per-token values are averaged (``grpo.aggregation``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from pebr_lit.grpo.advantages import upcast


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
        if log_ratio_clamp <= 0:
            raise ValueError(f"K3.log_ratio_clamp={log_ratio_clamp!r}: must be > 0. Use verl's 20.")
        if max_value <= 0:
            raise ValueError(f"K3.max_value={max_value!r}: must be > 0. Use verl's 10.")
        self.log_ratio_clamp = log_ratio_clamp
        self.max_value = max_value

    def __call__(self, logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
        log_ratio = upcast(ref_logprobs) - upcast(logprobs)  # [N, L]; log(ref / pi) = -d
        log_ratio = log_ratio.clamp(-self.log_ratio_clamp, self.log_ratio_clamp)  # [N, L]
        return (torch.expm1(log_ratio) - log_ratio).clamp(0.0, self.max_value)  # [N, L]
