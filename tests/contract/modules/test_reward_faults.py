"""Contract: broken rewards and flat groups under ``Trainer.fit`` on the tiny model: counted, never trained on, stopped.

- A reward of 3e38 let past the range check overflows the group mean: the NaN loss is skipped (weights
  unchanged, nothing non-finite saved in ``last.ckpt``) and the run stops after N skipped steps in a row.
- A reward of 3e38 or NaN under the default checks scores 0, is counted as ``train/reward_errors`` and
  never reaches the loss (the weights train on and stay finite), or stops the run past ``max_error_share``.
- A grader returning NaN counts every answer wrong (NaN is truthy), not right.
- A step that makes a weight non-finite is undone (AdamW state too) and the run trains on.
- Every group flat under ``mask_zero_variance`` or ``online_filter``: counted, no update, no crash, and the
  stage stops after ``max_batches_without_update`` rollout batches with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.grpo.online_filter import OnlineFilter
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.modules.reward_health import RewardChecks
from pebr_lit.modules.step_guard import StepGuard, TrainingStopped
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.rules import AuthorsRules
from pebr_lit.rewards.stages import ReasoningReward, StageReward

G = 4


class Rowwise(StageReward):
    """``odd`` on every odd response of the batch, ``even`` on the others (so each group of 4 holds two of each)."""

    def __init__(self, odd: float, even: float = 0.0) -> None:
        super().__init__(signal=1.0)
        self.odd, self.even = odd, even

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        return {"signal": [self.odd if i % 2 else self.even for i in range(len(responses))]}


class Spy(L.Callback):
    """The logged metrics after every training batch."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.metrics.append({k: float(v) for k, v in trainer.callback_metrics.items()})


class OverflowOnce(torch.optim.AdamW):
    """AdamW whose second step leaves one weight infinite (an update that overflowed)."""

    calls = 0

    def step(self, closure=None):
        out = super().step(closure)
        type(self).calls += 1
        if type(self).calls == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = math.inf
        return out


def fit(assets, world, reward, steps: int, root=None, optimizer=None, **module_kwargs):
    L.seed_everything(0, verbose=False)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    module = GRPOModule(
        policy,
        reward,
        loss=GRPOLoss(kl_coef=0.0),
        sampling=SamplingSettings(num_samples=G, temperature=1.0, top_p=1.0, max_new_tokens=4),
        optimizer=optimizer or partial(torch.optim.AdamW, lr=1e-3),
        micro_batch_size=G,
        **module_kwargs,
    )
    start = {n: p.detach().clone() for n, p in module.policy.named_parameters() if p.requires_grad}
    spy = Spy()
    callbacks = [spy] + ([ModelCheckpoint(dirpath=root, save_last=True, every_n_train_steps=1)] if root else [])
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        logger=False,
        enable_checkpointing=bool(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    data = PromptDataModule(train_files=[str(world / "train.jsonl")], batch_size=1, seed=0)
    stopped = None
    try:
        trainer.fit(module, data)
    except TrainingStopped as err:
        stopped = str(err)
    return module, trainer, spy, start, stopped


def weights(module) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in module.policy.named_parameters() if p.requires_grad}


def test_a_3e38_reward_past_the_range_check_is_skipped_never_saved_and_stops_the_run(assets, world, tmp_path):
    module, trainer, spy, start, stopped = fit(
        assets,
        world,
        Rowwise(3e38),
        steps=5,
        root=tmp_path,
        reward_checks=RewardChecks(check_range=False),
        step_guard=StepGuard(max_skipped_in_a_row=2),
    )
    assert stopped is not None and "2 optimizer steps in a row skipped" in stopped
    assert "the first one: loss is not finite (gradient norm nan)" in stopped
    assert module._step_guard.skipped == 2 and trainer.global_step == 1  # the second skip stopped its step
    assert all(torch.equal(w, start[n]) for n, w in weights(module).items())
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert saved and all(bool(torch.isfinite(v).all()) for v in saved.values() if v.is_floating_point())
    assert spy.metrics[0]["train/skipped_steps"] == 1.0
    # The skipped step's NaN loss statistics are not logged or handed to callbacks (KL control would turn NaN).
    assert "train/policy_loss" not in spy.metrics[0] and "train/ratio_mean" not in spy.metrics[0]
    assert math.isnan(spy.metrics[0]["train/grad_norm"]) and "policy_loss" not in module.last_stats


@pytest.mark.parametrize("bad", [3e38, math.nan])
def test_a_3e38_or_nan_reward_is_counted_scores_0_and_the_weights_train_on(bad, assets, world):
    module, trainer, spy, start, stopped = fit(
        assets, world, Rowwise(bad, even=0.5), steps=2, reward_checks=RewardChecks(max_error_share=1.0)
    )
    assert stopped is None and trainer.global_step == 2 and module._step_guard.skipped == 0
    assert [m["train/reward_errors"] for m in spy.metrics] == [2.0, 2.0]  # the two odd responses of each batch
    assert [m["train/reward/total"] for m in spy.metrics] == [0.25, 0.25]  # 0.5 on the even ones, 0 on the bad
    now = weights(module)
    assert all(bool(torch.isfinite(w).all()) for w in now.values())
    assert any(not torch.equal(w, start[n]) for n, w in now.items())


def test_too_many_reward_failures_stop_the_first_step_naming_the_first(assets, world):
    with pytest.warns(UserWarning, match=r"a reward failed and scored 0 .*Rowwise\.signal = nan"):
        module, trainer, _, start, stopped = fit(assets, world, Rowwise(math.nan), steps=2)
    assert stopped is not None and stopped.startswith("GRPOModule: 2 reward failures on 4 responses in this step (50%")
    assert "the first: Rowwise.signal = nan (range [0, 1]) on response" in stopped
    assert trainer.global_step == 0 and all(torch.equal(w, start[n]) for n, w in weights(module).items())


def test_a_grader_returning_nan_marks_answers_wrong_not_right(assets, world):
    # The tiny model writes no answer heading, and without one no rule set asks the grader (no answer, 0); the
    # authors' scripts' named fallback grades the whole text, so the grader sees every response.
    reward = ReasoningReward(grader=lambda prediction, truth: math.nan, rules=AuthorsRules(no_section="whole_response"))
    _, trainer, spy, _, stopped = fit(assets, world, reward, steps=1, reward_checks=RewardChecks(max_error_share=1.0))
    assert stopped is None and trainer.global_step == 1
    assert spy.metrics[0]["train/reward/accuracy"] == 0.0 and spy.metrics[0]["train/reward_errors"] == G


def test_a_step_that_makes_a_weight_infinite_is_undone_and_training_goes_on(assets, world):
    OverflowOnce.calls = 0
    with pytest.warns(UserWarning, match=r"updated weights are not finite .*weights and optimizer state restored"):
        module, trainer, spy, _, stopped = fit(
            assets, world, Rowwise(1.0), steps=3, optimizer=partial(OverflowOnce, lr=1e-3)
        )
    assert stopped is None and trainer.global_step == 3 and module._step_guard.skipped == 1
    assert all(bool(torch.isfinite(w).all()) for w in weights(module).values())
    assert [m["train/skipped_steps"] for m in spy.metrics] == [0.0, 1.0, 1.0]
    state = trainer.optimizers[0].state
    assert {int(s["step"]) for s in state.values()} == {2}  # steps 1 and 3; the undone one left no trace


@pytest.mark.parametrize("buffer", ["mask_zero_variance", "online_filter"])
def test_all_flat_groups_are_counted_and_a_stage_without_updates_stops(buffer, assets, world):
    options = {"mask_zero_variance": True} if buffer == "mask_zero_variance" else {"online_filter": OnlineFilter(2)}
    with pytest.warns(UserWarning, match=r"every group of this rollout batch has equal rewards"):
        module, trainer, spy, start, stopped = fit(
            assets, world, Rowwise(0.5, even=0.5), steps=3, max_batches_without_update=2, **options
        )
    assert stopped is not None and "no optimizer step in the last 2 rollout batches" in stopped
    assert "2 of them had equal rewards in every group" in stopped and "max_batches_without_update" in stopped
    watch = module._watch
    assert (watch.all_flat_rounds, watch.empty_updates) == (2, 2 if buffer == "mask_zero_variance" else 1)
    assert spy.metrics[0]["train/all_flat_rounds"] == 1.0 and spy.metrics[0]["train/batches_without_update"] == 1.0
    assert trainer.global_step == 0 and all(torch.equal(w, start[n]) for n, w in weights(module).items())


def test_the_no_update_limit_must_cover_the_filter_rounds(policy):
    with pytest.raises(ValueError, match=r"^GRPOModule\.max_batches_without_update=3: must be 0 .*max_rounds=4"):
        GRPOModule(policy, Rowwise(1.0), online_filter=OnlineFilter(4), max_batches_without_update=3)
