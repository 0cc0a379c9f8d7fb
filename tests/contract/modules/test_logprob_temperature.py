"""GRPOModule scores current, old-policy and reference log-probs at one temperature: the sampling one by default."""

from __future__ import annotations

import math
import re

import lightning as L
import pytest
import torch

from callbacks.reference import ReferencePolicy
from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import ReasoningReward

T = 1.2  # the authors' rollout temperature


def _one_step(assets, world, logprob_temperature):
    """One GRPO step (two optimizer steps, KL on) of a fresh tiny policy; every token_logprobs call recorded."""
    L.seed_everything(0, verbose=False)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    calls: list[tuple[str, float, torch.Tensor]] = []
    score = policy.token_logprobs

    def spy(*args, **kwargs):
        out = score(*args, **kwargs)
        kind = "reference" if kwargs.get("model") is not None else "current" if kwargs.get("with_entropy") else "old"
        calls.append((kind, kwargs.get("temperature", 1.0), out[0].detach().clone()))
        return out

    policy.token_logprobs = spy  # ModelCopyReference scores through the policy's method with its own model
    module = GRPOModule(
        policy,
        ReasoningReward(),
        loss=GRPOLoss(kl_coef=0.01),
        sampling=SamplingSettings(num_samples=2, temperature=T, top_p=0.99, max_new_tokens=6),
        mini_batches=2,  # old-policy log-probs are computed (with 1 they are the current ones, detached)
        micro_batch_size=8,
        logprob_temperature=logprob_temperature,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,  # optimizer steps: the one rollout batch's two
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ReferencePolicy()],
    )
    trainer.fit(module, PromptDataModule(train_files=[str(world / "train.jsonl")], batch_size=2, seed=0))
    return module, calls


@pytest.mark.parametrize(("logprob_temperature", "expected"), [(None, T), (1.0, 1.0)], ids=["default", "pinned-1"])
def test_every_log_prob_of_a_step_uses_one_temperature(assets, world, logprob_temperature, expected):
    module, calls = _one_step(assets, world, logprob_temperature)
    assert module.logprob_temperature == expected
    assert {kind for kind, _, _ in calls} == {"old", "reference", "current"}
    assert {temperature for _, temperature, _ in calls} == {expected}
    (old,) = [out for kind, _, out in calls if kind == "old"]  # [4, R], all rows in one micro-batch
    (ref,) = [out for kind, _, out in calls if kind == "reference"]
    current = [out for kind, _, out in calls if kind == "current"]  # one [2, R] per optimizer step
    # The reference is a copy of the policy at stage start, the old policy is the policy before the
    # update: same weights, same temperature -> same numbers. A reference at another T would differ by
    # ~0.03 nats per token (tests/contract/policy/test_logprob_temperature.py).
    torch.testing.assert_close(ref, old, atol=1e-5, rtol=1e-5)
    # The first optimizer step's rollouts are scored before any update: ratio exp(current - old) = 1.
    torch.testing.assert_close(current[0], old[: current[0].shape[0]], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_a_temperature_that_is_not_finite_and_positive_is_refused(policy, bad):
    with pytest.raises(
        ValueError, match="^" + re.escape(f"GRPOModule.logprob_temperature={bad!r}: must be a finite number > 0.")
    ):
        GRPOModule(policy, ReasoningReward(), logprob_temperature=bad)


def test_the_default_follows_the_sampling_temperature(policy):
    sampling = SamplingSettings(num_samples=4, temperature=0.8)
    assert GRPOModule(policy, ReasoningReward(), sampling=sampling).logprob_temperature == 0.8
    assert GRPOModule(policy, ReasoningReward()).logprob_temperature == 1.2  # sampling: null = the authors' 1.2
    assert GRPOModule(policy, ReasoningReward(), sampling=sampling, logprob_temperature=1.0).logprob_temperature == 1.0
