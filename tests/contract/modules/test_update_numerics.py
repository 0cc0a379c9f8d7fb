"""Contract: SFT and GRPO under ``Trainer.fit`` on the tiny model: precision check, bf16 autocast, skipped steps.

- The fit-start check (``pebr_lit.policy.precision``) refuses weights that ``bf16-true`` converts to
  bfloat16 at lr 1e-6, and ``policy.allow_low_precision_updates`` lets such a run go ahead with a warning.
- ``bf16-mixed`` with LoRA over a bfloat16 base (the single-GPU LoRA/QLoRA setting): every forward of
  the training step runs under bfloat16 autocast (GRPO: the rollout's ``generate`` and the log-prob
  passes too; SFT with automatic optimisation), the adapters stay fp32 and move at lr 1e-6.
- A step whose gradients hold a NaN or inf (made so by a callback after backward) leaves the weights and
  the AdamW state bitwise as they were, is counted in ``train/skipped_steps``, and still counts as a
  step; the next step trains again. NaN gradients at every SFT step stop the run after 3 in a row.
"""

from __future__ import annotations

import copy
import math
from functools import partial

import lightning as L
import pytest
import torch

from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.data.sft_datamodule import SFTDataModule
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.modules.reasoning import ReasoningGRPO
from pebr_lit.modules.sft import SFTModule
from pebr_lit.modules.step_guard import TrainingStopped
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from tests.helpers.ddp_probe import text_value

LORA = LoraSettings(r=4, alpha=8, dropout=0.0)


class HashReward(L.Callback):
    """A ``RewardTerm`` whose value hashes the response text, so groups vary and GRPO gets gradients."""

    name, weight = "hash", 1.0

    def reward_values(self, texts, num_tokens) -> torch.Tensor:
        return torch.tensor([text_value(t) for t in texts])


class Poison(L.Callback):
    """Puts ``value`` into one gradient after each backward of optimizer step ``at``; snapshots around that step."""

    def __init__(self, at: int, value: float) -> None:
        self.at, self.value = at, value
        self.before: tuple | None = None
        self.after: tuple | None = None

    @staticmethod
    def _snapshot(trainer, pl_module) -> tuple:
        weights = {n: p.detach().clone() for n, p in pl_module.policy.named_parameters() if p.requires_grad}
        return weights, copy.deepcopy(trainer.optimizers[0].state_dict()["state"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at:
            self.before = self._snapshot(trainer, pl_module)

    def on_after_backward(self, trainer, pl_module) -> None:
        if trainer.global_step == self.at:
            grad = next(p.grad for p in pl_module.policy.parameters() if p.grad is not None)
            grad.view(-1)[0] = self.value

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at + 1:  # the poisoned step has been taken (or skipped)
            self.after = self._snapshot(trainer, pl_module)


class Autocast(L.Callback):
    """Records, for every forward of the policy model in training, whether bf16 autocast is on and the logits dtype."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, bool, torch.dtype]] = set()

    def setup(self, trainer, pl_module, stage) -> None:
        policy = pl_module.policy
        generate = policy.generate

        def recording_generate(*args, **kwargs):
            self.seen.add(("generate", torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
            return generate(*args, **kwargs)

        policy.generate = recording_generate
        policy.model.register_forward_hook(self._record)

    def _record(self, module, args, output) -> None:
        if module.training:
            on = torch.is_autocast_enabled("cpu")
            self.seen.add(("forward", on, torch.get_autocast_dtype("cpu") if on else output.logits.dtype))
            self.seen.add(("logits", True, output.logits.dtype))


def adamw(lr: float):
    return partial(torch.optim.AdamW, lr=lr, weight_decay=0.01)


def build(kind: str, assets, world, lr: float, **policy_kwargs):
    policy = PolicyWrapper(str(assets["vlm"]), **{"dtype": "float32", **policy_kwargs})
    files = {"train_files": [str(world / "train.jsonl")], "processor": policy.processor}
    if kind == "sft":
        return SFTModule(policy=policy, optimizer=adamw(lr)), SFTDataModule(batch_size=2, max_length=160, **files)
    module = ReasoningGRPO(
        policy=policy,
        optimizer=adamw(lr),
        loss=GRPOLoss(kl_coef=0.0),
        sampling=SamplingSettings(num_samples=2, max_new_tokens=6),
        micro_batch_size=4,
    )
    return module, PromptDataModule(batch_size=2, **files)


def fit(module, data, precision: str, steps: int, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[HashReward(), *callbacks],
    )
    trainer.fit(module, data)
    return trainer


@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_bf16_true_weights_at_lr_1e_6_are_refused_unless_allowed(kind, assets, world):
    module, data = build(kind, assets, world, lr=1e-6)
    with pytest.raises(ValueError, match=r"^AdamW\.lr=1e-06: .*bfloat16.*bf16-mixed"):
        fit(module, data, "bf16-true", steps=1)
    module, data = build(kind, assets, world, lr=1e-6, allow_low_precision_updates=True)
    with pytest.warns(UserWarning, match="allow_low_precision_updates: true"):
        assert fit(module, data, "bf16-true", steps=1).global_step == 1


@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_bf16_mixed_lora_on_a_bf16_base_trains_at_lr_1e_6_under_autocast(kind, assets, world):
    torch.manual_seed(0)
    module, data = build(kind, assets, world, lr=1e-6, dtype="bfloat16", lora=LORA)
    trainable = {n: p.detach().clone() for n, p in module.policy.named_parameters() if p.requires_grad}
    frozen = {p.dtype for p in module.policy.parameters() if not p.requires_grad}
    assert {p.dtype for p in trainable.values()} == {torch.float32} and frozen == {torch.bfloat16}
    autocast = Autocast()
    fit(module, data, "bf16-mixed", steps=3, callbacks=[autocast])
    expected = {("forward", True, torch.bfloat16), ("logits", True, torch.bfloat16)}
    if kind == "grpo":
        expected.add(("generate", True, torch.bfloat16))  # the rollout samples under the same autocast
    assert autocast.seen == expected
    params = dict(module.policy.named_parameters())
    assert all(params[n].dtype == torch.float32 for n in trainable)  # still fp32 after Lightning's setup
    changed = sum(int((params[n] != value).sum()) for n, value in trainable.items())
    assert changed / sum(v.numel() for v in trainable.values()) > 0.9  # B from step 1, A from step 2 (B != 0)


@pytest.mark.parametrize(("kind", "value"), [("sft", math.nan), ("grpo", math.inf)])
def test_a_non_finite_step_leaves_weights_and_adamw_state_alone(kind, value, assets, world):
    module, data = build(kind, assets, world, lr=1e-3, freeze_vision=False, freeze_projector=False)
    poison = Poison(at=1, value=value)
    with pytest.warns(UserWarning, match="gradient norm is (nan|inf), skipping this optimizer step"):
        trainer = fit(module, data, "32-true", steps=3, callbacks=[poison])
    assert trainer.global_step == 3  # the skipped step still counts
    (w0, s0), (w1, s1) = poison.before, poison.after
    assert all(torch.equal(w1[n], w0[n]) for n in w0)
    assert s0 and all(torch.equal(s1[i][k], s0[i][k]) for i in s0 for k in s0[i])  # step, exp_avg, exp_avg_sq
    assert all(int(s["step"]) == 1 for s in s1.values())  # one real step before the poisoned one
    final = dict(module.policy.named_parameters())
    assert any(not torch.equal(final[n], w1[n]) for n in w1)  # the step after trains again
    assert float(trainer.callback_metrics["train/skipped_steps"]) == 1.0


class PoisonAll(L.Callback):
    """Puts a NaN into one gradient after every backward."""

    def on_after_backward(self, trainer, pl_module) -> None:
        next(p.grad for p in pl_module.policy.parameters() if p.grad is not None).view(-1)[0] = math.nan


def test_sft_stops_after_three_skipped_steps_in_a_row(assets, world):
    module, data = build("sft", assets, world, lr=1e-3)
    start = {n: p.detach().clone() for n, p in module.policy.named_parameters() if p.requires_grad}
    stop = r"^SFTModule: 3 optimizer steps in a row skipped \(StepGuard\.max_skipped_in_a_row=3\); the first one: grad"
    with pytest.warns(UserWarning, match="gradient norm is nan"), pytest.raises(TrainingStopped, match=stop):
        fit(module, data, "32-true", steps=6, callbacks=[PoisonAll()])
    assert module._step_guard.skipped == 3
    assert all(torch.equal(p, start[n]) for n, p in module.policy.named_parameters() if p.requires_grad)
