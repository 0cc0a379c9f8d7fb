"""HFGenerate, the default rollout engine, is exactly the policy's own generate, whole or in prompt chunks."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.rollout import HFGenerate


def test_hf_generate_gives_the_policys_rollout(policy, world):
    records = load_records(world / "val.jsonl")[:3]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    sampling = SamplingSettings(num_samples=2, max_new_tokens=10)
    torch.manual_seed(7)
    expected = policy.generate(prompts, sampling)
    engine = HFGenerate()
    engine.sync_weights(policy)  # nothing to send: it samples from the weights being trained
    torch.manual_seed(7)
    got = engine.generate(policy, prompts, records, sampling)
    for field in ("prompt_ids", "prompt_mask", "response_ids", "response_mask", "truncated"):
        assert torch.equal(getattr(got, field), getattr(expected, field)), field
    assert got.texts == expected.texts and got.num_samples == 2
    assert getattr(got, "logprobs", None) is None, "no engine log-probs: the module must skip the gap check"
    torch.manual_seed(8)
    other = engine.generate(policy, prompts, records, sampling)
    assert not torch.equal(other.response_ids, expected.response_ids) or other.texts != expected.texts, (
        "the seed should matter"
    )


def test_prompts_per_call_samples_in_chunks_and_joins_them(policy, world):
    # Greedy decoding makes each row's response independent of which other rows share its generate call,
    # so the chunked rollout (2 + 2 + 1 prompts) must equal the whole-batch one token for token.
    records = load_records(world / "val.jsonl")[:5]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    sampling = SamplingSettings(num_samples=1, max_new_tokens=12, do_sample=False)
    whole = HFGenerate().generate(policy, prompts, records, sampling)
    calls = []
    original = policy.generate

    def spy(p, s):
        calls.append(p["input_ids"].shape[0])
        return original(p, s)

    policy.generate = spy
    try:
        chunked = HFGenerate(prompts_per_call=2).generate(policy, prompts, records, sampling)
    finally:
        del policy.generate
    assert calls == [2, 2, 1]
    assert chunked.texts == whole.texts and chunked.num_samples == 1
    for field in ("prompt_ids", "prompt_mask", "truncated"):
        assert torch.equal(getattr(chunked, field), getattr(whole, field)), field
    # Response widths may differ per chunk; up to each row's mask the tokens agree and the rest is padding.
    width = whole.response_ids.shape[1]
    assert torch.equal(chunked.response_mask[:, :width], whole.response_mask)
    assert not chunked.response_mask[:, width:].any()
    assert torch.equal(chunked.response_ids[:, :width] * whole.response_mask, whole.response_ids * whole.response_mask)


def test_prompts_per_call_must_be_positive():
    with pytest.raises(ValueError, match=r"HFGenerate\.prompts_per_call=0"):
        HFGenerate(prompts_per_call=0)
