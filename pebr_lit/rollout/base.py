"""The rollout-engine interface: sample responses for a prompt batch, take the policy's new weights.

``RolloutEngine`` is what ``GRPOModule`` talks to; ``EngineRollout`` is a ``Rollout`` that also
carries the engine's own log-probs of the tokens it sampled, and ``logprob_gap`` compares those
with the trainer's (an engine serving stale or differently processed weights shows up there). The
comparison only means something when both are of the same distribution, ``softmax(logits / T)``
at one T: ``choose_logprob_temperature`` asks the engine for the trainer's T and says which T it gives.

Left out on purpose: the engines themselves (``hf``, ``sglang``) and the weight format they load
(``weights``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pebr_lit.policy.rollout import Rollout
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper


@dataclass
class EngineRollout(Rollout):
    """A ``Rollout`` from an external engine, with the engine's log-probs when it returned them."""

    logprobs: torch.Tensor | None = None  # [B*n, R] per sampled token; 0 on padding, NaN where the engine gave none


class RolloutEngine(ABC):
    """Samples GRPO rollouts for a ``PolicyWrapper`` and follows its weights as they train."""

    #: Mean |engine - trainer| log-prob gap (nats per token) above which the module warns.
    logprob_tolerance: float = 0.05

    @abstractmethod
    def generate(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        records: Sequence[Any],
        sampling: SamplingSettings,
    ) -> Rollout:
        """``sampling.num_samples`` responses per left-padded prompt; ``records[i]`` holds prompt i's images."""

    def choose_logprob_temperature(self, temperature: float, sampling: SamplingSettings) -> float | None:
        """Ask for log-probs of ``softmax(logits / temperature)`` on rollouts sampled with ``sampling``.

        Returns the temperature of the log-probs the engine will report (``temperature`` if it can
        follow, another if it cannot), or None when it reports none. Called once, before the engine
        starts; the default engine reports none.
        """
        return None

    # Optional hooks: engines without weights or resources of their own keep these no-ops.
    def sync_weights(self, policy: PolicyWrapper) -> None:  # noqa: B027
        """Make the engine sample from ``policy``'s current weights (called after each update)."""

    def close(self) -> None:  # noqa: B027
        """Release the engine's resources; the next call starts it again if it needs to."""


def logprob_gap(engine: torch.Tensor, trainer: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Max and mean |engine - trainer| over the response tokens where the engine gave a log-prob.

    ``engine``, ``trainer`` and ``mask`` are ``[N, R]``; returns ``{}`` when no token can be compared.
    """
    engine = engine.to(trainer.device).float()
    known = mask.to(trainer.device).bool() & torch.isfinite(engine)  # [N, R]
    if not known.any():
        return {}
    diff = (engine - trainer.detach().float()).abs()[known]  # [K]
    return {"max": float(diff.max()), "mean": float(diff.mean())}
