"""Contract-tier fixtures shared across folders."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper


@pytest.fixture(scope="module")
def batch(world, assets):
    """Two validation prompts and 2 sampled responses each (8 tokens) from a fresh float32 tiny policy."""
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    records = load_records(world / "val.jsonl")[:2]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    torch.manual_seed(0)
    rollout = policy.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=8))
    return prompts, rollout
