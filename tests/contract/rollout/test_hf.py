"""HFGenerate, the default rollout engine, is exactly the policy's own generate."""

from __future__ import annotations

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
