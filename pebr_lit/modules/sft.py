"""Warm-up SFT: teach the policy the PeBR answer format (description, rationale, steps, answer).

Training is next-token cross-entropy on the assistant turn only; a step whose gradient norm is not
finite is skipped and counted (``train/skipped_steps``). Validation and test generate an
answer per held-out question and log ``val/format_rate`` (all four sections present) and
``val/accuracy`` (final answer graded against the ground truth), both by ``modules.generation_metrics``
as in the GRPO stages; ``predict`` returns responses graded the same way, for sampling. How a response
is graded is ``rules`` with ``grader`` (``rewards.rules``; a null grader is the rules' own): ``PebrLitRules``
and ``grade`` by default; ``AuthorsRules`` (with its ``mathruler_grade``) is the authors' sampling script
(``pebr_sample.py``), and then
validation grades that way too, so the accuracy watched during SFT is the one that makes the tiers.
A grader that raises or returns no verdict (NaN) grades the answer wrong, is counted as
``<split>/grader_errors`` and warned about once, with the answer (``modules.reward_health.CheckedGrader``).

Left out on purpose: data loading (``SFTDataModule``), moving weights between stages
(``pebr_lit.policy.checkpoint``), and any RL.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from pebr_lit.data.batches import batch_size_of
from pebr_lit.modules.generation_metrics import GenerationMetrics, grade_responses
from pebr_lit.modules.reward_health import CheckedGrader
from pebr_lit.modules.schedules import build_optimization
from pebr_lit.modules.step_guard import StepGuard
from pebr_lit.plan.fit_check import warn_if_over_memory
from pebr_lit.policy.checkpoint import check_checkpoint_keys, init_policy_from, slim_checkpoint
from pebr_lit.policy.fsdp import shard_for_strategy
from pebr_lit.policy.precision import check_update_precision
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.components import Grader
from pebr_lit.rewards.rules import PebrLitRules, RewardRules


class SFTModule(L.LightningModule):
    """Supervised warm-up of a ``PolicyWrapper`` on PeBR-format targets.

    Args:
        policy: The policy to train (model, processor, LoRA/QLoRA settings).
        optimizer: Optimizer factory; receives the trainable parameters.
        scheduler: Learning-rate schedule factory (stepped every optimizer step); null = constant.
        init_from: Lightning checkpoint of an earlier stage whose policy weights start this one.
        eval_sampling: How validation/test/predict generate; null = greedy, up to 256 new tokens.
        rules: How validation/test/predict grade format and accuracy; null = ``PebrLitRules()``
            (``pebr_lit.rewards.rules.AuthorsRules``: the authors' sampling rule).
        grader: Answer grader of validation/test/predict accuracy; null = the rules' own (``AuthorsRules``:
            ``mathruler_grade``, the authors').
    """

    def __init__(
        self,
        policy: PolicyWrapper,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
        eval_sampling: SamplingSettings | None = None,
        rules: RewardRules | None = None,
        grader: Grader | None = None,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.init_from = init_from
        self.eval_sampling = eval_sampling or SamplingSettings(do_sample=False, max_new_tokens=256)
        self.strict_loading = False  # checkpoints hold trained weights only; see check_checkpoint_keys
        if init_from:  # at construction, so a later --ckpt_path resume overrides it
            init_policy_from(self.policy, init_from)
        self.rules = rules if rules is not None else PebrLitRules()
        self.grader = grader if grader is not None else self.rules.default_grader()
        # A grader that raises or returns no verdict (NaN) counts as wrong and is counted (modules.reward_health).
        self._checked_grader = CheckedGrader(self.grader)
        self._grader_warned = False
        self.generation_metrics = GenerationMetrics(
            length_name="response_tokens", rules=self.rules, grader=self._checked_grader
        )

    # ------------------------------------------------------------------------------------- set-up
    @property
    def processor(self) -> Any:
        """The policy's processor, for the DataModule (``data.contracts.ProcessorSource``; linked by ``cli.py``)."""
        return self.policy.processor

    def configure_optimizers(self) -> Any:
        steps = self.trainer.estimated_stepping_batches
        return build_optimization(self.policy.parameters(), self.optimizer_factory, self.scheduler_factory, steps)

    def on_fit_start(self) -> None:
        warn_if_over_memory(self.trainer)  # the planner's peak vs this GPU, before an OOM an hour in
        check_update_precision(self.trainer.optimizers, allow=self.policy.allow_low_precision_updates)
        self._step_guard = StepGuard()

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        """Skip a step whose gradient norm is not finite (``modules.step_guard``), else clip as Lightning does."""
        norm = self._step_guard.check(optimizer, type(self).__name__)
        self.log("train/grad_norm", norm, batch_size=1)  # before clipping
        self.log("train/skipped_steps", float(self._step_guard.skipped), batch_size=1)
        if torch.isfinite(norm):
            self._step_guard.passed()  # ends a run of skipped steps (3 in a row stop the run: TrainingStopped)
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        slim_checkpoint(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_checkpoint_keys(self, checkpoint)

    def configure_model(self) -> None:
        """Shard the policy with FSDP2 under a ``ModelParallelStrategy`` (``pebr_lit.policy.fsdp``); no-op otherwise."""
        shard_for_strategy(self.policy.model, self.trainer.strategy)

    # ----------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        num_truncated = batch.pop("num_truncated")
        labels = batch["labels"]  # [B, L]
        loss = self.policy(**batch, use_cache=False).loss
        n = batch_size_of(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/target_tokens", (labels != -100).sum().float() / n, batch_size=n)
        self.log("train/truncated", num_truncated.float() / n, batch_size=n)
        return loss

    # ------------------------------------------------------------------------- generation and eval
    def _generate(self, batch: dict[str, Any]) -> tuple[list[str], torch.Tensor]:
        rollout = self.policy.generate(batch["prompts"], self.eval_sampling)
        return rollout.texts, rollout.response_mask.sum(dim=1)

    def _evaluate(self, batch: dict[str, Any], split: str) -> None:
        texts, lengths = self._generate(batch)
        answers = [r.answer for r in batch["records"] for _ in range(self.eval_sampling.num_samples)]
        self.generation_metrics.log(self, split, texts, answers, lengths)
        failures = self._grader_failures(split)
        self.log(f"{split}/grader_errors", float(failures), reduce_fx="sum", batch_size=1, sync_dist=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        texts, _ = self._generate(batch)
        n = self.eval_sampling.num_samples
        rows = []
        for i, record in enumerate(batch["records"]):
            responses = texts[i * n : (i + 1) * n]
            scores = grade_responses(responses, [record.answer] * n, self.rules, self._checked_grader)
            rows.append(
                {
                    "qid": record.qid,
                    "responses": responses,
                    "correct": scores["accuracy"],
                    "format": scores["format_rate"],
                }
            )
        self._grader_failures("predict")
        return rows

    def _grader_failures(self, split: str) -> int:
        """Grader failures since the last call (each graded as wrong); the first of the run is warned about."""
        failures = list(self._checked_grader.failures)
        self._checked_grader.failures.clear()
        if failures and not self._grader_warned:
            self._grader_warned = True
            warnings.warn(
                f"{type(self).__name__}: the grader failed on {len(failures)} {split} response(s), graded as wrong "
                f"(counted as val/grader_errors, test/grader_errors): {failures[0]}",
                stacklevel=3,
            )
        return len(failures)
