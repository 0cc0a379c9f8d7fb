"""``ChunkStats``: a chunk's token log-prob and entropy, with the closed-form backward, against autograd."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.policy.chunked_head import ChunkStats


def _reference(hidden, weight, bias, ids, temperature):
    logits = torch.nn.functional.linear(hidden, weight, bias) / temperature  # [c, V]
    logp = logits.log_softmax(-1)  # [c, V]
    return logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1)  # [c], [c]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("with_bias", [False, True])
def test_gradcheck_in_float64(temperature, with_bias):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)  # [c, D]
    weight = torch.randn(11, 4, dtype=torch.float64, generator=gen, requires_grad=True)  # [V, D]
    bias = torch.randn(11, dtype=torch.float64, generator=gen, requires_grad=True) if with_bias else None
    ids = torch.randint(0, 11, (5,), generator=gen)
    inputs = (hidden, weight, bias, ids, temperature, True)
    assert torch.autograd.gradcheck(lambda *a: ChunkStats.apply(*a), inputs)


def test_same_values_and_gradients_as_autograd_through_the_logits():
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(6, 8, generator=gen, requires_grad=True)  # [c, D]
    weight = torch.randn(50, 8, generator=gen, requires_grad=True)  # [V, D]
    ids = torch.randint(0, 50, (6,), generator=gen)
    g_lp, g_ent = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
    got = ChunkStats.apply(hidden, weight, None, ids, 1.3, True)
    ((got[0] * g_lp).sum() + (got[1] * g_ent).sum()).backward()
    got_grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    want = _reference(hidden, weight, None, ids, 1.3)
    ((want[0] * g_lp).sum() + (want[1] * g_ent).sum()).backward()
    for a, b in zip((*got, *got_grads), (*want, hidden.grad, weight.grad)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_without_entropy_only_the_log_prob_has_a_gradient():
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(3, 4, generator=gen, requires_grad=True)
    weight = torch.randn(9, 4, generator=gen)
    ids = torch.randint(0, 9, (3,), generator=gen)
    token, entropy = ChunkStats.apply(hidden, weight, None, ids, 1.0, False)
    assert (entropy == 0).all()
    token.sum().backward()
    want = torch.autograd.grad(_reference(hidden, weight, None, ids, 1.0)[0].sum(), hidden)[0]
    torch.testing.assert_close(hidden.grad, want)
