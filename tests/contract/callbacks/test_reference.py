"""ReferencePolicy: the reference stays the stage-start policy while the live policy moves."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from callbacks.reference import ReferencePolicy
from pebr_lit.policy.reference import (
    REFERENCE_ADAPTER,
    AdapterSnapshotReference,
    DisabledAdapterReference,
    ModelCopyReference,
)
from pebr_lit.policy.settings import LoraSettings
from pebr_lit.policy.wrapper import PolicyWrapper


def _scores(policy, batch):
    prompts, rollout = batch
    with torch.no_grad():
        return policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)[0]


def _reference_scores(callback, policy, batch):
    prompts, rollout = batch
    return callback.logprobs(policy, prompts, rollout.response_ids, rollout.response_mask, [0, 0, 1, 1])


def _perturb(policy, name_part: str, scale: float = 0.3):
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if name_part in name and p.requires_grad:
                p.add_(torch.randn_like(p) * scale)


def _attach(callback, policy):
    module = SimpleNamespace(policy=policy, reference=None)
    callback.setup(None, module, "fit")
    return module


@pytest.mark.parametrize("lora_start", ["zero", "trained"])
def test_lora_reference_is_the_stage_start_adapter(assets, batch, lora_start):
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    if lora_start == "trained":
        _perturb(policy, "lora_B")  # as if init_from loaded a previous stage's adapter
    start = _scores(policy, batch)
    callback = ReferencePolicy()
    module = _attach(callback, policy)
    assert module.reference is callback
    assert isinstance(callback.strategy, DisabledAdapterReference if lora_start == "zero" else AdapterSnapshotReference)
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    _perturb(policy, "lora_")
    assert not torch.allclose(_scores(policy, batch), start)
    torch.testing.assert_close(_reference_scores(callback, policy, batch), start, atol=1e-5, rtol=1e-5)
    # Scoring the reference must leave the trainable set exactly as it was.
    assert {n for n, p in policy.model.named_parameters() if p.requires_grad} == trainable


def test_full_model_reference_is_a_frozen_copy(assets, batch):
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    start = _scores(policy, batch)
    callback = ReferencePolicy()
    _attach(callback, policy)
    assert isinstance(callback.strategy, ModelCopyReference)
    assert not any(p.requires_grad for p in callback.strategy.model.parameters())
    _perturb(policy, "language_model")
    torch.testing.assert_close(_reference_scores(callback, policy, batch), start, atol=1e-5, rtol=1e-5)


def test_sync_and_ema_move_the_reference(assets, batch):
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    synced = ReferencePolicy(sync_every=2)
    module = _attach(synced, policy)
    _perturb(policy, "language_model")
    moved = _scores(policy, batch)
    synced.on_train_batch_end(SimpleNamespace(global_step=1), module, None, None, 0)
    assert not torch.allclose(_reference_scores(synced, policy, batch), moved)
    synced.on_train_batch_end(SimpleNamespace(global_step=2), module, None, None, 0)
    torch.testing.assert_close(_reference_scores(synced, policy, batch), moved, atol=1e-5, rtol=1e-5)

    ema = ReferencePolicy(ema_decay=0.75)
    module = _attach(ema, policy)
    ref_param = next(ema.strategy.model.parameters()).clone()
    live_param = next(policy.model.parameters())
    with torch.no_grad():
        live_param.add_(1.0)
    ema.on_train_batch_end(SimpleNamespace(global_step=1), module, None, None, 0)
    # 0.75 * ref + 0.25 * (ref + 1) = ref + 0.25
    torch.testing.assert_close(next(ema.strategy.model.parameters()), ref_param + 0.25)


def test_an_explicit_strategy_is_used_and_checked_against_the_policy(assets, batch):
    # A zero adapter would default to the disabled adapter; the configured snapshot is used instead.
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    start = _scores(policy, batch)
    callback = ReferencePolicy(strategy=AdapterSnapshotReference())
    module = _attach(callback, policy)
    assert type(callback.strategy) is AdapterSnapshotReference
    assert REFERENCE_ADAPTER in policy.model.peft_config
    _perturb(policy, "lora_")
    torch.testing.assert_close(_reference_scores(callback, policy, batch), start, atol=1e-5, rtol=1e-5)
    callback.teardown(None, module, "fit")  # frees the snapshot adapter
    assert module.reference is None and REFERENCE_ADAPTER not in policy.model.peft_config

    full = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    with pytest.raises(ValueError, match="DisabledAdapterReference: the policy has no LoRA adapter"):
        _attach(ReferencePolicy(strategy=DisabledAdapterReference()), full)


def test_strategy_by_class_path():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(ReferencePolicy, "reference")
    strategy = {"class_path": "pebr_lit.policy.reference.ModelCopyReference", "init_args": {"device": "cpu"}}
    config = parser.parse_object({"reference": {"sync_every": 4, "strategy": strategy}})
    callback = parser.instantiate(config).reference
    assert type(callback.strategy) is ModelCopyReference and callback.strategy.device == "cpu"
    assert callback.sync_every == 4


def test_resume_restores_the_scheduled_reference_and_refuses_another_strategy(assets, batch):
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    start = _scores(policy, batch)
    first = ReferencePolicy(sync_every=1)
    _attach(first, policy)
    state = first.state_dict()
    assert state["strategy"] == "ModelCopyReference"
    saved = {**state, "reference": [t.clone() for t in state["reference"]]}  # CPU tensors alias the weights

    _perturb(policy, "language_model")  # the resumed run starts from a policy that has moved
    resumed = ReferencePolicy(sync_every=1)
    module = _attach(resumed, policy)
    resumed.load_state_dict(saved)
    resumed.on_fit_start(SimpleNamespace(strategy=None), module)
    torch.testing.assert_close(_reference_scores(resumed, policy, batch), start, atol=1e-5, rtol=1e-5)

    other = ReferencePolicy(sync_every=1)
    module = _attach(other, policy)
    other.load_state_dict({**saved, "strategy": "AdapterSnapshotReference"})
    with pytest.raises(ValueError, match="held by AdapterSnapshotReference"):
        other.on_fit_start(SimpleNamespace(strategy=None), module)


def test_explicit_strategies_reject_settings_they_cannot_honour():
    with pytest.raises(ValueError, match="DisabledAdapterReference: holds no weights"):
        ReferencePolicy(sync_every=2, strategy=DisabledAdapterReference())
    with pytest.raises(ValueError, match="device='cpu'.*ModelCopyReference"):
        ReferencePolicy(device="cpu", strategy=ModelCopyReference())


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError):
        ReferencePolicy(sync_every=0)
    with pytest.raises(ValueError):
        ReferencePolicy(ema_decay=1.0)
    with pytest.raises(ValueError):
        ReferencePolicy(sync_every=2, ema_decay=0.5)
