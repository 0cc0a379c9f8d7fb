"""Reference strategies on the tiny model, each alone: what it scores, what a schedule moves, what it frees."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.policy.reference import (
    REFERENCE_ADAPTER,
    AdapterSnapshotReference,
    DisabledAdapterReference,
    ModelCopyReference,
    default_reference,
)
from pebr_lit.policy.settings import LoraSettings
from pebr_lit.policy.wrapper import PolicyWrapper

ROWS = [0, 0, 1, 1]  # 2 prompts x 2 samples


def _full(assets) -> PolicyWrapper:
    return PolicyWrapper(str(assets["vlm"]), dtype="float32")


def _lora(assets, trained: bool) -> PolicyWrapper:
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    if trained:
        _perturb(policy, "lora_B")  # as if init_from loaded a previous stage's adapter
    return policy


def _perturb(policy, name_part: str, scale: float = 0.3):
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if name_part in name and p.requires_grad:
                p.add_(torch.randn_like(p) * scale)


def _scores(policy, batch):
    prompts, rollout = batch
    with torch.no_grad():
        return policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, prompt_rows=ROWS)[0]


def _ref(strategy, policy, batch):
    prompts, rollout = batch
    return strategy.logprobs(policy, prompts, rollout.response_ids, rollout.response_mask, ROWS)


def _trainable(policy) -> set[str]:
    return {n for n, p in policy.model.named_parameters() if p.requires_grad}


def test_disabled_adapter_scores_the_base_model_whatever_the_adapter_holds(assets, batch):
    base = _scores(_full(assets), batch)  # the same weights without any adapter
    policy = _lora(assets, trained=True)
    assert not torch.allclose(_scores(policy, batch), base)
    strategy = DisabledAdapterReference()
    strategy.check(policy)
    strategy.build(policy)
    torch.testing.assert_close(_ref(strategy, policy, batch), base, atol=1e-5, rtol=1e-5)
    assert not strategy.movable and strategy.pairs(policy) == [] and strategy.state(policy) == []


def test_adapter_snapshot_keeps_syncs_averages_and_releases(assets, batch):
    policy = _lora(assets, trained=True)
    trainable = _trainable(policy)
    start = _scores(policy, batch)
    strategy = AdapterSnapshotReference()
    strategy.build(policy)
    assert _trainable(policy) == trainable  # the snapshot is frozen, the live adapter still trains
    _perturb(policy, "lora_")
    moved = _scores(policy, batch)
    assert not torch.allclose(moved, start)
    torch.testing.assert_close(_ref(strategy, policy, batch), start, atol=1e-5, rtol=1e-5)
    assert _trainable(policy) == trainable  # scoring the reference switched adapters and back
    strategy.sync(policy)
    torch.testing.assert_close(_ref(strategy, policy, batch), moved, atol=1e-5, rtol=1e-5)

    ref, live = strategy.pairs(policy)[0]
    assert f".{REFERENCE_ADAPTER}." in _name(policy, ref) and _name(policy, live).replace(
        ".default.", f".{REFERENCE_ADAPTER}."
    ) == _name(policy, ref)
    before = ref.clone()
    with torch.no_grad():
        live.add_(1.0)
    strategy.ema(policy, decay=0.5)
    torch.testing.assert_close(ref, before + 0.5)  # 0.5 * ref + 0.5 * (ref + 1), as ref == live after the sync

    strategy.release(policy)
    assert REFERENCE_ADAPTER not in policy.model.peft_config
    assert not any(f".{REFERENCE_ADAPTER}." in n for n, _ in policy.model.named_parameters())
    assert _trainable(policy) == trainable


def _name(policy, tensor) -> str:
    return next(n for n, p in policy.model.named_parameters() if p is tensor)


def test_model_copy_is_frozen_on_its_device_and_round_trips_its_state(assets, batch):
    policy = _full(assets)
    start = _scores(policy, batch)
    strategy = ModelCopyReference(device="cpu")
    strategy.build(policy)
    strategy.place(policy, parallel=None)  # no FSDP: the copy stays on its device
    assert not any(p.requires_grad for p in strategy.model.parameters())
    assert {p.device.type for p in strategy.model.parameters()} == {"cpu"}
    _perturb(policy, "language_model")
    torch.testing.assert_close(_ref(strategy, policy, batch), start, atol=1e-5, rtol=1e-5)

    saved = [t.clone() for t in strategy.state(policy)]  # CPU tensors alias the weights, like any state_dict
    assert len(saved) == len(list(policy.model.parameters()))
    strategy.sync(policy)
    assert not torch.allclose(_ref(strategy, policy, batch), start)
    strategy.load_state(policy, saved)
    torch.testing.assert_close(_ref(strategy, policy, batch), start, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="2 reference tensors"):
        strategy.load_state(policy, saved[:2])

    strategy.release(policy)
    assert strategy.model is None


def test_each_strategy_refuses_a_policy_it_does_not_fit(assets):
    full, lora = _full(assets), _lora(assets, trained=False)
    for strategy in (DisabledAdapterReference(), AdapterSnapshotReference()):
        strategy.check(lora)
        with pytest.raises(ValueError, match="no LoRA adapter.*ModelCopyReference"):
            strategy.check(full)
    ModelCopyReference().check(full)
    with pytest.raises(ValueError, match="AdapterSnapshotReference"):
        ModelCopyReference().check(lora)


@pytest.mark.parametrize(
    ("policy_kind", "scheduled", "expected"),
    [
        ("full", False, ModelCopyReference),
        ("full", True, ModelCopyReference),
        ("zero", False, DisabledAdapterReference),
        ("zero", True, AdapterSnapshotReference),  # a schedule needs weights to move
        ("trained", False, AdapterSnapshotReference),
    ],
)
def test_default_reference_follows_the_policy(assets, policy_kind, scheduled, expected):
    policy = _full(assets) if policy_kind == "full" else _lora(assets, trained=policy_kind == "trained")
    strategy = default_reference(policy, scheduled, device="cpu")
    assert type(strategy) is expected
    if expected is ModelCopyReference:
        assert strategy.device == "cpu"
