"""Loss aggregation: per-token values ``[N, L]`` + mask -> one scalar (token mean, per micro-batch, or sequence mean).

Left out on purpose: normalising by a token count gathered across micro-batches or ranks (the
training module passes the weights for that), and the per-token terms themselves (``grpo.losses``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


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


class MicroBatchTokenMean(TokenMean):
    """Token mean within each micro-batch, then the plain mean over micro-batches: the authors' trainer.

    verl's actor divides each micro-batch's token-mean loss by the number of micro-batches and
    accumulates, so a token in a micro-batch of short responses weighs more than one in a micro-batch
    of long ones, and results depend on ``micro_batch_size``. ``TokenMean`` weighs every token of the
    optimizer step the same; this class reproduces the authors' weighting where that matters.
    """

    def weight(self, mask: Tensor) -> Tensor:
        return mask.any().to(torch.long)  # []: a micro-batch with tokens counts once, whatever its size
