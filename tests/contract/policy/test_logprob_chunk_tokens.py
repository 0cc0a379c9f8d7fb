"""``logprob_chunk_tokens``: log-probs from hidden states, chunked over positions, equal the logits path (+ grads)."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper

CHUNK = 3  # odd, so chunks straddle rows; the batch has 6 rows x <= 10 kept tokens


@pytest.fixture(scope="module")
def lora_policy(assets):
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():  # peft starts B at 0, which would make every adapter gradient but B's zero
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    return policy


@pytest.fixture(scope="module")
def scored(policy, world):
    records = load_records(world / "val.jsonl")[:3]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    torch.manual_seed(5)
    rollout = policy.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=10))
    mask = rollout.response_mask.clone()
    mask[1, 4:] = 0  # padding inside the batch, whatever the sampled lengths: padded positions must stay 0
    mask[4, 7:] = 0
    return prompts, rollout.response_ids, mask


def _run(policy, scored, chunk_tokens, temperature, backward):
    prompts, ids, mask = scored
    policy.logprob_chunk_tokens = chunk_tokens
    policy.model.zero_grad(set_to_none=True)
    try:
        with torch.set_grad_enabled(backward):
            logprobs, entropy = policy.token_logprobs(
                prompts, ids, mask, num_samples=2, with_entropy=True, temperature=temperature
            )
            if backward:
                # Fixed random weights per position: every position's log-prob and entropy reach the gradient.
                gen = torch.Generator().manual_seed(11)
                w_lp, w_ent = torch.randn(ids.shape, generator=gen), torch.randn(ids.shape, generator=gen)
                ((logprobs * w_lp).sum() + (entropy * w_ent).sum()).backward()
    finally:
        policy.logprob_chunk_tokens = None
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    policy.model.zero_grad(set_to_none=True)
    return logprobs.detach(), entropy.detach(), grads


@pytest.mark.parametrize("temperature", [1.0, 1.2])
@pytest.mark.parametrize("which", ["full", "lora"])
def test_same_logprobs_entropy_and_gradients_as_the_logits_path(policy, lora_policy, scored, which, temperature):
    model = policy if which == "full" else lora_policy
    want_lp, want_ent, want_grads = _run(model, scored, None, temperature, backward=True)
    got_lp, got_ent, got_grads = _run(model, scored, CHUNK, temperature, backward=True)
    mask = scored[2].bool()
    torch.testing.assert_close(got_lp, want_lp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_ent, want_ent, atol=1e-5, rtol=1e-5)
    assert (got_lp[~mask] == 0).all() and (got_ent[~mask] == 0).all()
    assert want_grads and got_grads.keys() == want_grads.keys()
    if which == "lora":  # only adapters train; the frozen LM head gets no gradient
        assert all("lora_" in n for n in got_grads)
    else:  # the LM head (tied to the embedding here) is trained through the chunked path too
        assert any("embed_tokens" in n or "lm_head" in n for n in got_grads)
    for name, grad in want_grads.items():
        assert grad.abs().max() > 0, name  # a zero gradient would make the comparison vacuous
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5, rtol=1e-5, msg=name)


def test_no_logits_for_the_whole_batch_are_built(policy, scored):
    """Every tensor any op makes in forward and backward holds at most CHUNK rows of vocabulary-wide values."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    vocab = policy.model.config.text_config.vocab_size
    widest: list[int] = []  # per vocabulary-wide op output: its number of rows (numel / V)

    class Sizes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and t.dim() and t.shape[-1] == vocab and "view" not in str(func):
                    widest.append(t.numel() // vocab)
            return out

    with Sizes():
        _run(policy, scored, CHUNK, 1.0, backward=True)
    kept = int(scored[2].sum())
    assert kept > CHUNK  # else one chunk would be the whole batch and the test vacuous
    # The LM head's weight is [V, D] (D rows counted as V-wide when D == V would not happen here: D << V).
    rows = [n for n in widest if n != policy.model.config.text_config.hidden_size]
    assert rows and max(rows) <= CHUNK, sorted(set(rows))


def test_rejects_a_non_positive_chunk(assets):
    with pytest.raises(ValueError, match="logprob_chunk_tokens"):
        PolicyWrapper(str(assets["vlm"]), dtype="float32", logprob_chunk_tokens=0)


def test_refused_under_fsdp_with_a_message(policy, scored, monkeypatch):
    # The LM head's weight is gathered only inside a sharded root's forward; applying it after would read shards.
    monkeypatch.setattr("pebr_lit.policy.fsdp.is_sharded", lambda model: True)
    with pytest.raises(NotImplementedError, match="logprob_chunk_tokens: null"):
        _run(policy, scored, CHUNK, 1.0, backward=False)


def test_an_entropy_only_logged_keeps_no_graph_and_the_same_value(policy, scored):
    """``entropy_grad=False`` (the loss's entropy_coef is 0): same entropy, no autograd graph behind it."""
    prompts, ids, mask = scored
    lp, ent = policy.token_logprobs(prompts, ids, mask, num_samples=2, with_entropy=True)
    lp2, ent2 = policy.token_logprobs(prompts, ids, mask, num_samples=2, with_entropy=True, entropy_grad=False)
    assert ent.requires_grad and not ent2.requires_grad and lp2.requires_grad
    torch.testing.assert_close(ent2, ent.detach())
    torch.testing.assert_close(lp2, lp)
