"""QLoRA training on CUDA: 4-bit load, sampling, and GRPO-/SFT-like steps that move the adapters only.

The CUDA half of the QLoRA contract: bitsandbytes' CUDA kernels, bfloat16 compute and gradient
checkpointing. On the CPU, ``tests/contract/policy/test_qlora_cpu.py`` covers loading, a backward after
``generate``, log-probs and the merged export, and ``tests/smoke/test_qlora_grpo_cpu.py`` a QLoRA GRPO fit.
Skipped without a CUDA device (``tests/conftest.py``).

Left out on purpose: throughput and memory figures (``benchmarks/``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from pebr_lit.data.collate import encode_prompts, encode_sft
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings, QuantizationSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper

pytestmark = pytest.mark.gpu
bnb = pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install 'pebr-lit[qlora]')")

LORA = LoraSettings(r=4, alpha=8, dropout=0.0)
NUM_SAMPLES = 2


def _qlora(assets, gradient_checkpointing: bool = False) -> PolicyWrapper:
    torch.manual_seed(0)  # same adapter initialisation for every policy built here
    return PolicyWrapper(
        str(assets["vlm"]),
        dtype="bfloat16",
        lora=LORA,
        quantization=QuantizationSettings(compute_dtype="bfloat16"),
        gradient_checkpointing=gradient_checkpointing,
    )


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@pytest.fixture(scope="module")
def records(world):
    return load_records(world / "train.jsonl")[:2]


def _snapshot(policy: PolicyWrapper) -> dict[str, torch.Tensor]:
    """Every parameter, the packed 4-bit ones included (as their uint8 storage)."""
    return {n: p.detach().clone() for n, p in policy.model.named_parameters()}


def _check_only_adapters_moved(
    policy: PolicyWrapper, before: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]
) -> None:
    lora = {n for n in before if "lora_" in n}
    assert set(grads) == lora and len(lora) == 28  # 7 targets x 2 decoder layers x (A, B)
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert all(grads[n].abs().sum() > 0 for n in lora if "lora_B" in n)  # B starts at 0; dL/dB does not
    after = dict(policy.model.named_parameters())
    for name, value in before.items():
        moved = not torch.equal(after[name].detach(), value)
        assert moved == ("lora_B" in name), name  # dL/dA = B^T(...) = 0 on a first step: A stays put


def _optimizer(policy: PolicyWrapper) -> torch.optim.Optimizer:
    # No weight decay: it would move lora_A, whose first gradient is exactly zero, and blur the check.
    return torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)


def _grads(policy: PolicyWrapper) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in policy.model.named_parameters() if p.grad is not None}


def test_loads_4bit_on_cuda(assets):
    policy = _qlora(assets)
    assert policy.device.type == "cuda"
    four_bit = [
        m for n, m in policy.model.named_modules() if isinstance(m, bnb.nn.Linear4bit) and "language_model" in n
    ]
    assert len(four_bit) == 14 and all(
        m.weight.device.type == "cuda" and m.weight.dtype == torch.uint8 for m in four_bit
    )
    assert all(m.weight.quant_state.quant_type == "nf4" for m in four_bit)
    assert all(p.requires_grad == ("lora_" in n) for n, p in policy.model.named_parameters())


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_generate_then_policy_gradient_step(assets, records, gradient_checkpointing):
    """GRPO's order of operations: sample, then backward through the log-probs of the samples."""
    policy = _qlora(assets, gradient_checkpointing)
    assert policy.model.is_gradient_checkpointing == gradient_checkpointing
    prompts = _to(
        encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records]),
        policy.device,
    )
    rollout = policy.generate(prompts, SamplingSettings(num_samples=NUM_SAMPLES, max_new_tokens=16))
    assert rollout.response_ids.device.type == "cuda" and len(rollout.texts) == len(records) * NUM_SAMPLES
    assert policy.model.training, "generate must restore training mode"

    before = _snapshot(policy)
    optimizer = _optimizer(policy)
    logprobs, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=NUM_SAMPLES)
    mask = rollout.response_mask.float()  # [B*n, R]
    # A REINFORCE-shaped surrogate with fixed +-1 advantages: enough to push every adapter.
    advantages = torch.tensor([1.0, -1.0] * len(records), device=policy.device)[:, None]  # [B*n, 1]
    loss = -(advantages * logprobs * mask).sum() / mask.sum()
    assert torch.isfinite(loss) and logprobs.requires_grad
    loss.backward()
    grads = _grads(policy)
    optimizer.step()
    _check_only_adapters_moved(policy, before, grads)

    # The adapter moved, the frozen 4-bit base did not: reference log-probs still equal a fresh base's.
    with torch.no_grad():
        trained, _ = policy.token_logprobs(
            prompts, rollout.response_ids, rollout.response_mask, num_samples=NUM_SAMPLES
        )
        with policy.reference():
            reference, _ = policy.token_logprobs(
                prompts, rollout.response_ids, rollout.response_mask, num_samples=NUM_SAMPLES
            )
    assert not torch.allclose(trained, reference)
    fresh = _qlora(assets)
    with torch.no_grad(), fresh.reference():
        fresh_reference, _ = fresh.token_logprobs(
            prompts, rollout.response_ids, rollout.response_mask, num_samples=NUM_SAMPLES
        )
    torch.testing.assert_close(reference, fresh_reference, atol=1e-3, rtol=1e-3)


def test_sft_step_with_and_without_checkpointing(assets, records):
    """One supervised step with images; gradient checkpointing changes memory, not the loss."""
    losses = {}
    for gradient_checkpointing in (False, True):
        policy = _qlora(assets, gradient_checkpointing)
        batch = encode_sft(
            policy.processor,
            [r.problem for r in records],
            [r.load_images() for r in records],
            [r.response for r in records],
            max_length=192,
        )
        batch.pop("num_truncated")
        batch = _to(batch, policy.device)
        before = _snapshot(policy)
        optimizer = _optimizer(policy)
        loss = policy(**batch, use_cache=False).loss
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
        grads = _grads(policy)
        optimizer.step()
        _check_only_adapters_moved(policy, before, grads)
        losses[gradient_checkpointing] = loss.detach().float()
        del policy, optimizer
    # Identical weights and inputs; bf16 kernels may differ in the last bits between the two graphs.
    torch.testing.assert_close(losses[True], losses[False], atol=1e-2, rtol=1e-2)
