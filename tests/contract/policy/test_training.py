"""PolicyWrapper training contract: SFT-like steps with images, with and without gradient checkpointing.

Gradient checkpointing recomputes activations in backward; it must change memory only, never the
loss or the gradients. LoRA must route every gradient to the adapters.

Left out on purpose: 4-bit (QLoRA) training (``test_qlora_cpu.py``, ``tests/smoke/test_qlora_grpo_cpu.py``,
and with checkpointing ``tests/gpu/test_qlora_gpu.py``).
"""

from __future__ import annotations

import pytest
import torch

from pebr_lit.data.collate import IGNORE_INDEX, encode_sft
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings
from pebr_lit.policy.wrapper import PolicyWrapper

LORA = LoraSettings(r=4, alpha=8, dropout=0.0)  # no dropout: two forwards must be comparable


@pytest.fixture(scope="module")
def batch(assets, world):
    records = load_records(world / "train.jsonl")[:2]
    processor = PolicyWrapper(str(assets["vlm"]), dtype="float32").processor
    out = encode_sft(
        processor,
        [r.problem for r in records],
        [r.load_images() for r in records],
        [r.response for r in records],
        max_length=160,  # ~104 prompt tokens (16 image tokens) + the first ~56 target tokens: enough for a loss
    )
    out.pop("num_truncated")
    assert "pixel_values" in out and (out["labels"] != IGNORE_INDEX).any()
    return out


def _step(policy: PolicyWrapper, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward/backward; returns the loss and the gradient of every parameter that got one."""
    policy.model.zero_grad(set_to_none=True)
    loss = policy(**batch, use_cache=False).loss
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def test_gradient_checkpointing_keeps_loss_and_grads(assets, batch):
    plain = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    checkpointed = PolicyWrapper(str(assets["vlm"]), dtype="float32", gradient_checkpointing=True)
    assert checkpointed.model.is_gradient_checkpointing and not plain.model.is_gradient_checkpointing
    assert checkpointed.model.training, "checkpointing only acts in training mode"
    for (na, a), (nb, b) in zip(plain.model.named_parameters(), checkpointed.model.named_parameters()):
        assert na == nb and torch.equal(a, b), "both policies must start from the same weights"

    loss, grads = _step(checkpointed, batch)
    expected_loss, expected_grads = _step(plain, batch)
    assert torch.isfinite(loss) and loss > 0
    torch.testing.assert_close(loss, expected_loss)
    # The vision tower is frozen by default: only language-model (and lm_head) weights get gradients.
    assert set(grads) == set(expected_grads) == {n for n, p in plain.model.named_parameters() if p.requires_grad}
    assert not any(".visual." in n for n in grads)
    lm = [n for n in grads if "language_model.layers." in n]
    assert len(lm) > 0 and all(grads[n].abs().sum() > 0 for n in lm)
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_lora_step_trains_adapters_only(assets, batch, gradient_checkpointing):
    torch.manual_seed(0)
    policy = PolicyWrapper(
        str(assets["vlm"]), dtype="float32", lora=LORA, gradient_checkpointing=gradient_checkpointing
    )
    assert policy.model.is_gradient_checkpointing == gradient_checkpointing  # survives the peft wrapper
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    loss, grads = _step(policy, batch)
    assert torch.isfinite(loss)
    lora = {n for n in before if "lora_" in n}
    assert set(grads) == lora and len(lora) == 28  # 7 targets x 2 decoder layers x (A, B)
    # B starts at zero, so dL/dA = B^T (...) = 0 on the first step, while dL/dB = (...) (A x)^T is not.
    assert all(grads[n].abs().sum() > 0 for n in lora if "lora_B" in n)
    assert all(grads[n].abs().sum() == 0 for n in lora if "lora_A" in n)

    torch.optim.SGD([p for p in policy.model.parameters() if p.requires_grad], lr=0.1).step()
    for name, p in policy.model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == ("lora_B" in name), name  # A's gradient was zero: it stays put too
    _, grads = _step(policy, batch)  # now B != 0, so A learns as well
    assert all(grads[n].abs().sum() > 0 for n in lora if "lora_A" in n)


def test_lora_with_checkpointing_matches_without(assets, batch):
    def trained_adapter(gradient_checkpointing: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(0)  # same adapter initialisation for both
        policy = PolicyWrapper(
            str(assets["vlm"]), dtype="float32", lora=LORA, gradient_checkpointing=gradient_checkpointing
        )
        with torch.no_grad():
            for name, p in policy.model.named_parameters():
                if "lora_B" in name:
                    p.fill_(0.01)  # a non-zero B, so both A and B get gradients
        return _step(policy, batch)

    loss, grads = trained_adapter(True)
    expected_loss, expected_grads = trained_adapter(False)
    torch.testing.assert_close(loss, expected_loss)
    assert set(grads) == set(expected_grads)
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)
