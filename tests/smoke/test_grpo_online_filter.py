"""Smoke: GRPO with online filtering on the tiny model: full batches of varied groups, counts logged, exact resume.

The toy reward is the lowercase share of a response, except for questions whose answer is "1" (19
of the world's 64), where every response gets 0.5: their groups are always zero-variance, the
others' practically never (4 random 12-token responses). With 2 prompts per rollout batch, about one
update in two needs a second round.

Left out on purpose: the reward's learning effect (``test_grpo_learning``), the CLI (``test_cli_grpo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.grpo.online_filter import OnlineFilter
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import StageReward

B, G, MAX_ROUNDS = 2, 4, 6
FLAT_ANSWER = "1"


class SomeFlatReward(StageReward):
    """Lowercase share of the response; 0.5 for every response to a question whose answer is FLAT_ANSWER."""

    def __init__(self, signal: float = 1.0) -> None:
        super().__init__(signal=signal)

    def components(
        self, responses: Sequence[str], answers: Sequence[str] = (), **inputs: object
    ) -> dict[str, list[float]]:
        share = [sum(c.islower() for c in r) / len(r) if r else 0.0 for r in responses]
        return {"signal": [0.5 if a == FLAT_ANSWER else s for s, a in zip(share, answers)]}


class _Watch(L.Callback):
    """Prompt qids of every rollout batch; per update: rounds and zero-variance groups seen vs. the logged counts."""

    def __init__(self, crash_at_step: int | None = None) -> None:
        self.batches: list[list[str]] = []
        self.updates: list[dict[str, float]] = []
        self.crash_at_step = crash_at_step
        self._rounds = self._flat = self._done = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._done = pl_module.rollout_batches  # restored when resuming

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append([r.qid for r in batch["records"]])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self._rounds += 1
        self._flat += round(float(metrics["train/zero_variance_groups"]) * B)
        if pl_module.rollout_batches != self._done:  # an update (the filter emptied its buffer)
            self.updates.append(
                {
                    "rounds": self._rounds,
                    "flat": self._flat,
                    "logged_rounds": float(metrics["train/filter_rounds"]),
                    "logged_filtered": float(metrics["train/filtered_groups"]),
                }
            )
            self._rounds, self._flat, self._done = 0, 0, pl_module.rollout_batches
        if self.crash_at_step is not None and trainer.global_step >= self.crash_at_step:
            raise RuntimeError("simulated crash")


def _run(assets, world, steps: int, root=None, crash_at_step=None, ckpt_path=None):
    L.seed_everything(0, verbose=False)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", freeze_vision=False, freeze_projector=False)
    module = GRPOModule(
        policy,
        SomeFlatReward(),
        loss=GRPOLoss(kl_coef=0.0),
        online_filter=OnlineFilter(max_rounds=MAX_ROUNDS),
        sampling=SamplingSettings(num_samples=G, temperature=1.0, top_p=1.0, max_new_tokens=12),
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
        micro_batch_size=16,
    )
    kept: list[torch.Tensor] = []
    update = module._update

    def spy(rounds):  # the groups that enter each update, as [K, G] rewards
        kept.append(torch.cat([r.total[r.rows] for r in rounds]).view(-1, G))
        return update(rounds)

    module._update = spy
    data = PromptDataModule(train_files=[str(world / "train.jsonl")], batch_size=B, epochs=10.0, seed=0)
    checkpoints = [ModelCheckpoint(dirpath=root, save_last=True, every_n_train_steps=1)] if root else []
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        logger=False,
        enable_checkpointing=bool(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=checkpoints,
    )
    watch = _Watch(crash_at_step)
    trainer.callbacks.append(watch)  # after ModelCheckpoint: a crash comes after that step's checkpoint
    try:
        trainer.fit(module, data, ckpt_path=ckpt_path)
    except RuntimeError as err:
        assert "simulated crash" in str(err)
    return module, trainer, watch, kept, data


def test_updates_hold_b_varied_groups_and_log_what_was_filtered(assets, world):
    module, trainer, watch, kept, _ = _run(assets, world, steps=6)
    assert trainer.global_step == 6 and len(kept) == len(watch.updates) == 6
    for groups, update in zip(kept, watch.updates):
        assert not (groups == groups[:, :1]).all(dim=1).any(), f"a zero-variance group was updated on: {groups}"
        if update["rounds"] < MAX_ROUNDS:
            assert groups.shape[0] == B
        assert (update["logged_rounds"], update["logged_filtered"]) == (update["rounds"], update["flat"])
    assert any(u["rounds"] > 1 for u in watch.updates) and sum(u["flat"] for u in watch.updates) > 0
    assert module.rollout_batches == len(watch.batches) == sum(u["rounds"] for u in watch.updates)


@pytest.mark.slow
def test_resume_neither_repeats_nor_skips_rollout_batches(assets, world, tmp_path):
    _, _, crashed, _, data = _run(assets, world, steps=4, root=tmp_path, crash_at_step=2)
    resumed, trainer, after, _, _ = _run(assets, world, steps=4, root=tmp_path, ckpt_path=str(tmp_path / "last.ckpt"))
    assert trainer.global_step == 4
    served = crashed.batches + after.batches
    stream = [[r.qid for r in b["records"]] for b in data.train_stream(0)]  # the stream is a function of its position
    assert served == stream[: len(served)] and resumed.rollout_batches == len(served)


def test_several_processes_are_refused_at_fit_start(policy):
    # Ranks would gather different numbers of rounds and run different numbers of backward passes.
    module = GRPOModule(policy, SomeFlatReward(), loss=GRPOLoss(kl_coef=0.0), online_filter=OnlineFilter())
    module._trainer = SimpleNamespace(world_size=2, global_rank=0, optimizers=[])  # no optimizer: nothing to check
    with pytest.raises(
        ValueError,
        match=r"^GRPOModule\.mask_zero_variance=False, online_filter=OnlineFilter: .*online_filter work on one",
    ):
        module.on_fit_start()


def test_a_learning_rate_schedule_with_the_filter_is_warned_about(policy):
    from pebr_lit.modules.schedules import WarmupConstantDecay

    module = GRPOModule(
        policy,
        SomeFlatReward(),
        loss=GRPOLoss(kl_coef=0.0),
        online_filter=OnlineFilter(),
        scheduler=partial(WarmupConstantDecay, warmup_steps=1),
    )
    module._trainer = SimpleNamespace(world_size=1, global_rank=0, estimated_stepping_batches=40)
    with pytest.warns(UserWarning, match=r"sized for 40 optimizer steps as if every rollout batch made an update"):
        module.configure_optimizers()
