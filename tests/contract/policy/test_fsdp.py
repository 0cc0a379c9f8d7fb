"""Contract: ``pebr_lit.policy.fsdp.shard_model`` on one gloo process leaves the policy's names and outputs alone.

A one-process FSDP2 "shard" is the whole tensor, so a sharded policy must sample the same greedy
responses and give the same log-probs and gradients as an unsharded copy; what this checks is the
wiring: parameter names, the units FSDP2 gathers, and the calls that bypass ``forward``
(``get_image_features``, ``generate``). Two-process sharding is tests/smoke/test_fsdp.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.fsdp import Sharding, full_tensor, shard_model
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper


@pytest.fixture(scope="module")
def mesh():
    from torch.distributed.device_mesh import init_device_mesh

    if dist.is_initialized():
        pytest.skip("a process group already exists in this test process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield init_device_mesh("cpu", (1,))
    dist.destroy_process_group()


def _policy(assets) -> PolicyWrapper:
    return PolicyWrapper(str(assets["vlm"]), dtype="float32", freeze_vision=False, freeze_projector=False)


def test_sharding_rejects_an_unknown_dtype():
    with pytest.raises(ValueError, match="param_dtype"):
        Sharding(param_dtype="bf16")


def test_shard_model_refuses_a_model_without_blocks(mesh):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="_no_split_modules"):
        shard_model(model, mesh, Sharding())


def test_sharded_policy_samples_and_scores_like_the_plain_one(assets, world, mesh):
    from torch.distributed.fsdp import FSDPModule

    plain, sharded = _policy(assets), _policy(assets)
    names = [n for n, _ in sharded.named_parameters()]
    shard_model(sharded.model, mesh, Sharding())
    assert [n for n, _ in sharded.named_parameters()] == names  # no wrapper prefixes: slim checkpoints keep their keys
    units = [m for m in sharded.model.modules() if isinstance(m, FSDPModule)]
    assert len(units) == 2 + 2 + 1  # 2 decoder layers, 2 vision blocks, the HF model
    shard_model(sharded.model, mesh, Sharding())  # a second configure_model call changes nothing
    assert len([m for m in sharded.model.modules() if isinstance(m, FSDPModule)]) == len(units)

    records = load_records(world / "train.jsonl")[:2]
    prompts = encode_prompts(plain.processor, [r.problem for r in records], [r.load_images() for r in records])
    greedy = SamplingSettings(do_sample=False, max_new_tokens=6)
    a, b = plain.generate(prompts, greedy), sharded.generate(prompts, greedy)
    assert torch.equal(a.response_ids, b.response_ids)
    grads = []
    for policy in (plain, sharded):
        logp, _ = policy.token_logprobs(prompts, a.response_ids, a.response_mask, num_samples=1)  # [2, R]
        logp.sum().backward()
        grads.append({n: full_tensor(p.grad) for n, p in policy.named_parameters()})
        grads[-1]["logp"] = logp.detach()
    for name, value in grads[0].items():
        assert torch.allclose(grads[1][name], value, atol=1e-6, rtol=1e-5), name
    assert grads[0]["model.model.visual.patch_embed.proj.weight"].abs().sum() > 0  # the vision path got gradients
