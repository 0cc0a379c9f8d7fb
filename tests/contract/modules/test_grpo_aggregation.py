"""GRPOModule's update: TokenMean is independent of micro_batch_size, MicroBatchTokenMean (the authors') is not.

One rollout batch, one optimizer step, the same seed: with TokenMean every response token weighs the same
however the rollouts are split into backward passes, so micro-batches of 1 and of 4 give the same weights
(to float rounding); with MicroBatchTokenMean each micro-batch's token mean weighs the same, so responses of
unequal length move the weights differently under the two splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import lightning as L
import pytest
import torch

from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.grpo.aggregation import MicroBatchTokenMean, TokenMean
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import StageReward
from pebr_lit.rollout import HFGenerate


class LengthReward(StageReward):
    """Toy reward: the response's character count, so rewards (and advantages) vary within each group."""

    def __init__(self, chars: float = 1.0) -> None:
        super().__init__(chars=chars)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        return {"chars": [float(len(r)) for r in responses]}

    def value_range(self, name: str) -> tuple[float, float]:
        return (0.0, float("inf"))  # a count, not a [0, 1] reward: declared, so the reward checks accept it


class CutLengths(HFGenerate):
    """The untrained tiny model rarely ends a response early; cut row i after 3 * (1 + i % 4) tokens instead
    (``equal``: every row after 6)."""

    def __init__(self, equal: bool = False) -> None:
        super().__init__()
        self.equal = equal

    def generate(self, policy, prompts, records, sampling):
        rollout = super().generate(policy, prompts, records, sampling)
        rows = range(rollout.response_mask.shape[0])
        keep = torch.tensor([6 if self.equal else 3 * (1 + i % 4) for i in rows])  # [N]
        columns = torch.arange(rollout.response_mask.shape[1])  # [R]
        rollout.response_mask = rollout.response_mask * (columns < keep[:, None])  # [N, R]
        return rollout


def _trained(assets, world, aggregation, micro: int, equal: bool = False) -> dict[str, torch.Tensor]:
    L.seed_everything(0, verbose=False)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    module = GRPOModule(
        policy,
        LengthReward(),
        loss=GRPOLoss(kl_coef=0.0, aggregation=aggregation),
        sampling=SamplingSettings(num_samples=4, temperature=1.0, top_p=1.0, max_new_tokens=12),
        optimizer=partial(torch.optim.SGD, lr=1.0),  # SGD: the step is the gradient itself, no Adam normalising
        micro_batch_size=micro,
        gradient_clip_val=None,
        rollout_engine=CutLengths(equal),
    )
    data = PromptDataModule(train_files=[str(world / "train.jsonl")], batch_size=2, seed=0)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, data)
    return {k: v.detach().clone() for k, v in policy.named_parameters() if v.requires_grad}


@pytest.fixture(scope="module")
def token_mean_runs(assets, world):
    return _trained(assets, world, TokenMean(), 1), _trained(assets, world, TokenMean(), 4)


def test_token_mean_does_not_depend_on_the_micro_batch_size(token_mean_runs):
    one, four = token_mean_runs
    assert all(torch.allclose(one[k], four[k], atol=1e-6) for k in one)


def test_micro_batch_token_mean_does(assets, world, token_mean_runs):
    one, four = _trained(assets, world, MicroBatchTokenMean(), 1), _trained(assets, world, MicroBatchTokenMean(), 4)
    gap = max((one[k] - four[k]).abs().max().item() for k in one)
    moved = max((one[k] - token_mean_runs[0][k]).abs().max().item() for k in one)
    assert gap > 1e-4, "per-micro-batch means of unequal lengths should weigh tokens differently"
    assert moved > 1e-4, "with micro-batches of one response it differs from TokenMean too (sequence means)"


def test_micro_batch_token_mean_is_a_mean_over_micro_batches(assets, world):
    # Equal lengths: every micro-batch holds as many tokens, so the mean of micro-batch means is the token
    # mean; a sum over micro-batches (no division by their number) would step 8 times as far.
    micro = _trained(assets, world, MicroBatchTokenMean(), 1, equal=True)
    token = _trained(assets, world, TokenMean(), 1, equal=True)
    assert all(torch.allclose(micro[k], token[k], atol=1e-6) for k in micro)
