"""What ``GRPOModule`` expects from its callbacks and stages: reward terms, the reference policy, stage inputs.

A stage (``modules.perception``) supplies what its reward needs beyond the shared inputs (answers,
keywords, token counts) through one hook, ``StageInputs.reward_inputs``, which ``GRPOModule``
implements with no extras.

Left out on purpose: the callbacks themselves (``callbacks.length_penalty``, ``callbacks.reference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from pebr_lit.policy.wrapper import PolicyWrapper


@runtime_checkable
class RewardTerm(Protocol):
    """A callback that adds a weighted reward component (e.g. the length penalty)."""

    name: str
    weight: float

    def reward_values(self, texts: Sequence[str], num_tokens: torch.Tensor) -> torch.Tensor:
        """Per-response values [N] in [0, 1]."""


@runtime_checkable
class ReferenceProvider(Protocol):
    """What ``GRPOModule.reference`` must offer (set by the ``ReferencePolicy`` callback)."""

    def logprobs(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Reference per-token log-probs [N, R] under ``softmax(logits / temperature)`` (no grad)."""


@dataclass
class ExtraInputs:
    """What a stage adds to the scoring of N responses (``StageInputs.reward_inputs``)."""

    #: Extra keyword arguments of the stage reward, one entry per response (e.g. ``clip_similarity``).
    reward: dict[str, Any] = field(default_factory=dict)
    #: Per-response values [N] logged as ``<split>/<name>`` beside the rewards, never summed into them.
    logged: dict[str, torch.Tensor] = field(default_factory=dict)
    #: Counts merged into ``GRPOModule.last_stats`` for callbacks (e.g. ``clip_failures``); not logged.
    stats: dict[str, float] = field(default_factory=dict)


class StageInputs(Protocol):
    """The stage hook of ``GRPOModule``: called on every batch scored, in training, validation and test."""

    def reward_inputs(self, texts: Sequence[str], records: Sequence[Any]) -> ExtraInputs:
        """Extra inputs for responses ``texts`` [N] to ``records`` [N] (a prompt's record repeats per sample)."""
