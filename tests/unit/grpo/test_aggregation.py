"""Loss aggregation: token mean and sequence mean on unequal lengths, padding ignored."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.grpo.aggregation import MicroBatchTokenMean, SequenceMean, TokenMean
from tests.helpers.tensors import t


def test_token_mean_and_sequence_mean_on_unequal_lengths() -> None:
    # Row lengths 3 and 1; a third row has no tokens.
    # token-mean: (1 + 2 + 3 + 10) / 4 = 4.   sequence-mean: (mean(1,2,3) = 2, 10) -> (2 + 10) / 2 = 6.
    values = t([[1, 2, 3], [10, 99, 99], [5, 5, 5]])
    mask = t([[1, 1, 1], [1, 0, 0], [0, 0, 0]]).bool()
    assert TokenMean()(values, mask).item() == 4.0
    assert SequenceMean()(values, mask).item() == 6.0
    nothing = torch.zeros_like(mask)
    assert TokenMean()(values, nothing).item() == 0.0 and SequenceMean()(values, nothing).item() == 0.0


@pytest.mark.parametrize("aggregation", [TokenMean(), SequenceMean()])
def test_aggregation_ignores_nan_and_inf_in_padding(aggregation) -> None:
    # values * mask would turn inf * 0 into NaN; the result must equal the clean one: 4 (token) / 6 (sequence).
    mask = t([[1, 1, 1], [1, 0, 0]]).bool()
    clean = t([[1, 2, 3], [10, 0, 0]]).requires_grad_()
    dirty = t([[1, 2, 3], [10, float("nan"), float("inf")]]).requires_grad_()
    a, b = aggregation(clean, mask), aggregation(dirty, mask)
    (a + b).backward()
    assert a.item() == b.item() and torch.equal(clean.grad, dirty.grad)
    assert dirty.grad[1, 1:].tolist() == [0.0, 0.0]


def test_micro_batch_token_mean_weighs_each_micro_batch_once() -> None:
    # Micro-batch a: tokens 1, 2, 3 (mean 2); micro-batch b: token 10 (mean 10); an empty one counts 0 times.
    # Authors (verl): sum of micro means / 2 micro-batches = (2 + 10) / 2 = 6; TokenMean over both: 16 / 4 = 4.
    agg = MicroBatchTokenMean()
    a_values, a_mask = t([[1, 2, 3]]), t([[1, 1, 1]]).bool()
    b_values, b_mask = t([[10, 0, 0]]), t([[1, 0, 0]]).bool()
    empty = torch.zeros_like(b_mask)
    weights = [agg.weight(m) for m in (a_mask, b_mask, empty)]
    assert [int(w) for w in weights] == [1, 1, 0]
    total = sum(weights)
    combined = agg(a_values, a_mask) * weights[0] / total + agg(b_values, b_mask) * weights[1] / total
    assert combined.item() == 6.0
    token = TokenMean()
    shares = [token.weight(m) / (token.weight(a_mask) + token.weight(b_mask)) for m in (a_mask, b_mask)]
    assert (token(a_values, a_mask) * shares[0] + token(b_values, b_mask) * shares[1]).item() == 4.0
