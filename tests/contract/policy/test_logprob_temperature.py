"""``token_logprobs`` at a temperature T is log softmax(logits / T), entropy included, on the tiny Qwen2.5-VL."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import SamplingSettings
from tests.helpers.manual_logprobs import manual_logprobs

T = 1.2  # the authors' rollout temperature


@pytest.fixture(scope="module")
def scored(policy, world):
    records = load_records(world / "val.jsonl")[:3]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    torch.manual_seed(3)
    rollout = policy.generate(prompts, SamplingSettings(num_samples=2, temperature=T, max_new_tokens=10))
    return records, prompts, rollout


def _score(policy, scored, temperature, chunk_rows=4):
    _, prompts, rollout = scored
    with torch.no_grad():
        return policy.token_logprobs(
            prompts,
            rollout.response_ids,
            rollout.response_mask,
            num_samples=2,
            with_entropy=True,
            chunk_rows=chunk_rows,
            temperature=temperature,
        )


@pytest.mark.parametrize("temperature", [T, 0.7])
def test_logprobs_and_entropy_are_those_of_the_tempered_softmax(policy, scored, temperature):
    records, _, rollout = scored
    logprobs, entropy = _score(policy, scored, temperature)
    for i in range(rollout.response_ids.shape[0]):
        n = int(rollout.response_mask[i].sum())
        want_lp, want_ent = manual_logprobs(policy, records[i // 2], rollout.response_ids[i, :n], temperature)
        torch.testing.assert_close(logprobs[i, :n].double(), want_lp, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(entropy[i, :n].double(), want_ent, atol=1e-4, rtol=1e-4)
        assert (logprobs[i, n:] == 0).all() and (entropy[i, n:] == 0).all()


def test_temperature_changes_the_numbers_and_chunking_does_not(policy, scored):
    mask = scored[2].response_mask.bool()
    tempered, tempered_ent = _score(policy, scored, T)
    plain, plain_ent = _score(policy, scored, 1.0)
    # Ignoring T gives a difference of exactly 0; the tiny model's tokens move by 0.027 nats on average (measured).
    assert (tempered - plain)[mask].abs().mean() > 1e-3
    # A flatter distribution has more entropy: T > 1 raises it at every position.
    assert (tempered_ent[mask] > plain_ent[mask]).all()
    one_row, _ = _score(policy, scored, T, chunk_rows=1)
    torch.testing.assert_close(one_row, tempered, atol=1e-6, rtol=1e-6)
