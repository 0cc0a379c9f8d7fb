"""GRPOModule: the shared GRPO loop of both RL stages (rollout -> rewards -> advantages -> update).

Per training step: B prompts -> G sampled responses each -> per-response reward components (the
stage's ``StageReward`` plus any ``RewardTerm`` callbacks) -> group-normalised advantages -> one or
more optimizer steps over the rollouts, each accumulated over micro-batches whose losses are weighted
so that the sum equals the whole mini-batch's loss (under DDP: the mini-batch of all ranks
together, so DDP's gradient average is the single-process gradient). Each rank rolls out and scores
whole groups of its own prompts; train metrics are logged as means over ranks. Log-probs reuse
each image's vision features across its G rollouts; the current, old-policy and reference log-probs
(and the entropy) are all of ``softmax(logits / logprob_temperature)``, by default the rollouts'
sampling temperature, the distribution that drew them (the authors' rule; ``logprob_temperature: 1.0``
scores under the model's own distribution). Like the authors' trainer, no log-prob is renormalised
for top-p. The reference policy for the KL term comes
from the ``ReferencePolicy`` callback through ``self.reference``; the KL coefficient lives on
``self.loss.kl_coef``. Rollouts come from ``self.rollout_engine`` (default: the policy's own HF
generate), which receives the policy's weights after each rollout batch's optimizer steps; when it
returns its own log-probs, their gap to the trainer's is logged as ``train/engine_logprob_diff/*``.
Every round goes through one update buffer (``grpo.buffers``): all groups (default), the varied
ones only (``mask_zero_variance``), or gathered over rollout batches until B groups vary (``online_filter``).
A stage adds reward inputs of its own through the ``reward_inputs`` hook (``modules.grpo_hooks``);
validation and test log format rate and accuracy through ``modules.generation_metrics``, as SFT does.
A reward that raises or gives a NaN, infinite or out-of-range value scores 0 there and is counted
(``modules.reward_health``, ``train/reward_errors``); a step with a non-finite loss, gradient norm or
updated weight is skipped (``modules.step_guard``); all-flat rounds and rollout batches without an
update are counted and stop a stage that trains on nothing (``modules.update_watch``). What is logged
per step is ``modules.grpo_logging``; the engine/trainer log-prob gap ``modules.engine_gap``.

Left out on purpose: the reward definitions (``pebr_lit.rewards``), stage-specific inputs such as
CLIP (``modules.perception``), the loss maths (``grpo``, ``grpo.losses``), reference snapshots, KL
schedules and the length penalty (``callbacks/``), the rollout engines (``pebr_lit.rollout``), what a checkpoint
holds for an exact resume (``pebr_lit.resume``: random streams, stage identity).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from pebr_lit.grpo.advantages import AdvantageNormalizer, GroupMeanStd, zero_variance_groups
from pebr_lit.grpo.buffers import update_buffer
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.grpo.online_filter import OnlineFilter
from pebr_lit.grpo.rounds import RolloutRound
from pebr_lit.modules.engine_gap import engine_gap, engine_logprobs_comparable
from pebr_lit.modules.generation_metrics import GenerationMetrics, grade_responses
from pebr_lit.modules.grpo_hooks import ExtraInputs, ReferenceProvider, RewardTerm
from pebr_lit.modules.grpo_logging import log_rollouts, log_update
from pebr_lit.modules.question_rows import rows_path, write_question_rows
from pebr_lit.modules.reward_health import RewardChecks, RewardHealth
from pebr_lit.modules.schedules import build_optimization
from pebr_lit.modules.step_guard import StepGuard
from pebr_lit.modules.update_watch import UpdateWatch
from pebr_lit.plan.fit_check import warn_if_over_memory
from pebr_lit.policy.checkpoint import check_checkpoint_keys, init_policy_from, slim_checkpoint
from pebr_lit.policy.precision import check_update_precision
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.resume.checkpoint_state import load_resume_state, save_resume_state
from pebr_lit.resume.identity import init_identity
from pebr_lit.resume.rng import RandomStream
from pebr_lit.rewards.stages import StageReward
from pebr_lit.rollout import HFGenerate, RolloutEngine


class GRPOModule(L.LightningModule):
    """GRPO on a ``PolicyWrapper`` with a pluggable reward, loss and advantage estimator.

    Args:
        policy: The policy (model, processor, LoRA/QLoRA settings).
        reward: Per-response reward with its components (stage 1: PerceptionReward, stage 2: ReasoningReward).
        loss: Policy loss + KL + entropy; null = GRPOLoss() (clip 0.2/0.3, dual-clip 3, k3 KL 0.01, token-mean).
        advantage: Advantage estimator; null = GroupMeanStd() ((r - mean) / std within each group).
        sampling: Rollout sampling; null = 8 samples, temperature 1.2, top-p 0.99, 512 new tokens (authors).
        eval_sampling: Validation/test generation; null = greedy, 512 new tokens.
        optimizer: Optimizer factory; receives the trainable parameters.
        scheduler: Learning-rate schedule factory, stepped every optimizer step; null = constant.
        init_from: Lightning checkpoint of the previous stage whose policy weights start this one.
        mini_batches: Optimizer steps per rollout batch (rollouts split evenly); 1 = fully on-policy.
        micro_batch_size: Rollouts per forward/backward pass (memory knob; results do not depend on it).
        mask_zero_variance: Leave groups whose rewards are all equal out of the update entirely.
        online_filter: Gather rollout batches until B groups have unequal rewards (DAPO; beyond the paper); null = off.
        gradient_clip_val: Max gradient norm per optimizer step; null = no clipping.
        rollout_engine: Where rollouts are sampled; null = HFGenerate() (the policy's own generate, CPU or GPU).
        logprob_temperature: T of the softmax(logits / T) that policy, old-policy and reference log-probs use;
            null = sampling.temperature (the authors'), 1.0 = the model's own distribution. No top-p renormalising.
        reward_checks: How failed rewards (raised, non-finite, out of range) are counted and when they stop the run;
            null = RewardChecks() (stop when over 25% of a step's rewards fail; ``modules.reward_health``).
        step_guard: Skips steps with a non-finite loss, gradient norm or updated weight; null = StepGuard() (weights
            restored, stop after 3 skipped in a row; ``modules.step_guard``).
        max_batches_without_update: Rollout batches in a row without an applied optimizer step that stop the stage
            (all-flat groups, an online filter that finds nothing; ``modules.update_watch``); 0 = never stop.
    """

    #: Extra reward inputs this stage's ``reward_inputs`` hook computes (``StageReward.extra_inputs``).
    provides: tuple[str, ...] = ()

    def __init__(
        self,
        policy: PolicyWrapper,
        reward: StageReward,
        loss: GRPOLoss | None = None,
        advantage: AdvantageNormalizer | None = None,
        sampling: SamplingSettings | None = None,
        eval_sampling: SamplingSettings | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
        mini_batches: int = 1,
        micro_batch_size: int = 8,
        mask_zero_variance: bool = False,
        online_filter: OnlineFilter | None = None,
        gradient_clip_val: float | None = 1.0,
        rollout_engine: RolloutEngine | None = None,
        logprob_temperature: float | None = None,
        reward_checks: RewardChecks | None = None,
        step_guard: StepGuard | None = None,
        max_batches_without_update: int = 10,
    ) -> None:
        super().__init__()
        missing = [name for name in getattr(reward, "extra_inputs", ()) if name not in self.provides]
        if missing:
            raise ValueError(
                f"{type(self).__name__}.reward={type(reward).__name__}: needs {', '.join(missing)}, which this stage "
                "does not compute. Use the stage module that provides it (e.g. PerceptionGRPO for clip_similarity)."
            )
        if mini_batches < 1:
            raise ValueError(
                f"{type(self).__name__}.mini_batches={mini_batches!r}: must be >= 1. "
                "Use 1 for one optimizer update per rollout batch."
            )
        if micro_batch_size < 1:
            raise ValueError(
                f"{type(self).__name__}.micro_batch_size={micro_batch_size!r}: must be >= 1. "
                "Give the responses per forward/backward pass, e.g. 4 (lower it if memory runs out)."
            )
        rounds = online_filter.max_rounds if online_filter is not None else 1
        if max_batches_without_update and not max_batches_without_update >= rounds:
            raise ValueError(
                f"{type(self).__name__}.max_batches_without_update={max_batches_without_update!r}: must be 0 (never "
                f"stop) or at least online_filter.max_rounds={rounds}, the batches one update may gather. Use e.g. 10."
            )
        self.policy = policy
        self.reward = reward
        self.reward_health = RewardHealth(reward, reward_checks or RewardChecks())
        self.step_guard = step_guard or StepGuard()
        self.max_batches_without_update = max_batches_without_update
        self.loss = loss if loss is not None else GRPOLoss()
        self.advantage = advantage if advantage is not None else GroupMeanStd()
        self.sampling = sampling or SamplingSettings(num_samples=8, temperature=1.2, top_p=0.99, max_new_tokens=512)
        if self.sampling.num_samples < 2:
            raise ValueError(
                f"{type(self).__name__}.sampling.num_samples={self.sampling.num_samples!r}: GRPO needs >= 2, since "
                "advantages compare responses within a group. Set sampling.num_samples to 4 or 8."
            )
        self.eval_sampling = eval_sampling or SamplingSettings(do_sample=False, max_new_tokens=512)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.mini_batches = mini_batches
        self.micro_batch_size = micro_batch_size
        self.mask_zero_variance = mask_zero_variance
        self.online_filter = online_filter
        self._buffer = update_buffer(online_filter, mask_zero_variance, self.sampling.num_samples)
        self.gradient_clip_val = gradient_clip_val
        self.rollout_engine = rollout_engine if rollout_engine is not None else HFGenerate()
        if logprob_temperature is not None and not (math.isfinite(logprob_temperature) and logprob_temperature > 0):
            raise ValueError(
                f"{type(self).__name__}.logprob_temperature={logprob_temperature!r}: must be a finite number > 0. "
                "Use null for the sampling temperature (the authors' rule) or 1.0 for the model's own distribution."
            )
        #: T of the softmax(logits / T) behind every log-prob and the entropy of the loss.
        self.logprob_temperature = float(
            logprob_temperature if logprob_temperature is not None else self.sampling.temperature
        )
        self._engine_gap_on = engine_logprobs_comparable(self)
        self.generation_metrics = GenerationMetrics(length_name="response_length", rules=reward.rules)
        #: False until the engine holds the policy's weights (it starts from its own copy; init_from and resume
        #: change ours).
        self._engine_synced = False
        self.automatic_optimization = False
        self.strict_loading = False  # slim checkpoints: see check_checkpoint_keys
        #: Set by the ReferencePolicy callback; None = no reference (KL term must then be off).
        self.reference: ReferenceProvider | None = None
        #: Rollout batches whose update is done; the data stream resumes after this many (saved in checkpoints;
        #: read by ``PromptDataModule``: ``data.contracts.RolloutProgress``).
        self.rollout_batches = 0
        #: Detached statistics of the last training step (for callbacks such as KL control); a step
        #: without an update (an online-filter round that only gathered groups) has no loss statistics.
        self.last_stats: dict[str, float] = {}
        #: The random state every training step samples from, saved in checkpoints (``pebr_lit.resume.rng``).
        self.random_stream = RandomStream()
        #: Reward failures of the last scored batch (``modules.reward_health``), logged as ``<split>/reward_errors``.
        self.reward_errors = 0
        if init_from:
            init_policy_from(self.policy, init_from)
        #: ``init_from`` and its file hash, part of the stage identity a resume is checked against.
        self.stage_init = init_identity(init_from)

    # ------------------------------------------------------------------------------------- set-up
    @property
    def processor(self) -> Any:
        """The policy's processor, for the DataModule (``data.contracts.ProcessorSource``; linked by ``cli.py``)."""
        return self.policy.processor

    def configure_optimizers(self) -> Any:
        steps = self.trainer.estimated_stepping_batches
        if self.online_filter is not None and self.scheduler_factory is not None:
            # The schedule advances per optimizer step, and rounds that only gather groups make none.
            warnings.warn(
                f"online_filter with a learning-rate schedule: the schedule is sized for {steps} optimizer "
                "steps as if every rollout batch made an update; filtering makes fewer, so it will not reach its "
                "end. Set the scheduler's total_steps to the updates you expect, or use a constant rate.",
                stacklevel=2,
            )
        return build_optimization(self.policy.parameters(), self.optimizer_factory, self.scheduler_factory, steps)

    def on_fit_start(self) -> None:
        warn_if_over_memory(self.trainer)  # the planner's peak vs this GPU, before an OOM an hour in
        check_update_precision(self.trainer.optimizers, allow=self.policy.allow_low_precision_updates)
        # Fresh counters per fit: skipped steps (non-finite loss, gradient or weights), batches without an update.
        self._step_guard = StepGuard(self.step_guard.max_skipped_in_a_row, self.step_guard.restore_weights)
        self._watch = UpdateWatch(self.max_batches_without_update)
        if self.loss.kl_coef > 0 and self.reference is None:
            raise ValueError(
                f"{type(self).__name__}.loss.kl_coef={self.loss.kl_coef!r}: needs a reference policy. Add the callback "
                "callbacks.reference.ReferencePolicy to trainer.callbacks, or set loss.kl_coef: 0."
            )
        if (self.mask_zero_variance or self.online_filter) and self.trainer.world_size > 1:
            # Dropped groups differ per rank, so ranks would run different numbers of backward passes
            # and DDP's gradient all-reduce would wait forever for the rank that ran fewer.
            raise ValueError(
                f"{type(self).__name__}.mask_zero_variance={self.mask_zero_variance!r}, "
                f"online_filter={type(self.online_filter).__name__ if self.online_filter else None}: "
                f"mask_zero_variance and online_filter work on one process only, this run has "
                f"{self.trainer.world_size}. Turn them off or set trainer.devices: 1."
            )
        if self.trainer.world_size > 1:
            # seed_everything gives every rank the same seed, so all ranks would draw the same sampling
            # noise (identical rollouts wherever their prompts look alike). The weights are already
            # synced from rank 0 by now, so only the rollouts see this offset.
            torch.manual_seed(torch.initial_seed() + self.trainer.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        slim_checkpoint(self, checkpoint)
        checkpoint["rollout_batches"] = self.rollout_batches
        save_resume_state(self, checkpoint)  # sampling random states, stage identity

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_checkpoint_keys(self, checkpoint)
        load_resume_state(self, checkpoint)  # refuses another init_from/base/reference; restores random states
        self.rollout_batches = int(checkpoint.get("rollout_batches", 0))

    def configure_model(self) -> None:
        """Shard the policy with FSDP2 under a ``ModelParallelStrategy`` (``pebr_lit.policy.fsdp``); no-op otherwise."""
        from pebr_lit.policy.fsdp import shard_for_strategy

        shard_for_strategy(self.policy.model, self.trainer.strategy)

    # ------------------------------------------------------------------------------------ rewards
    def reward_inputs(self, texts: list[str], records: list[Any]) -> ExtraInputs:
        """The stage hook (``modules.grpo_hooks.StageInputs``): reward inputs beyond the shared ones; none here."""
        return ExtraInputs()

    def score(
        self, texts: list[str], records: list[Any], num_tokens: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Reward components [N] with their weighted ``total``, and the stage's other logged values [N], for
        responses ``texts`` to ``records``."""
        extra = self.reward_inputs(texts, records)
        self.last_stats.update(extra.stats)
        inputs = {
            "answers": [r.answer for r in records],
            "key_words": [self.reward.rules.record_keywords(r.key_words, r.description) for r in records],
            "num_tokens": num_tokens.cpu(),
            **extra.reward,
        }
        # A reward that raises, or gives NaN/inf/out-of-range values, scores 0 there and is counted, never trained on.
        if self.reward_health.reward is not self.reward:  # the stage reward was replaced after construction
            self.reward_health = RewardHealth(self.reward, self.reward_health.checks)
        rewards, report = self.reward_health.score(texts, inputs, self._reward_terms(), num_tokens.cpu())
        training = self._trainer is not None and self.trainer.training
        self.reward_health.finish(report, len(texts), type(self).__name__, training=training)
        self.reward_errors = report.errors
        return {k: v.to(self.device) for k, v in rewards.items()}, {
            k: v.to(self.device) for k, v in extra.logged.items()
        }

    def _reward_terms(self) -> list[RewardTerm]:
        callbacks = self.trainer.callbacks if self._trainer is not None else []
        return [cb for cb in callbacks if isinstance(cb, RewardTerm)]

    # ----------------------------------------------------------------------------------- training
    @property
    def _entropy_in_loss(self) -> bool:
        """The loss weights the entropy (a loss without ``entropy_coef`` is assumed to)."""
        return bool(getattr(self.loss, "entropy_coef", 1.0))

    def _logprobs(
        self, prompts: dict[str, torch.Tensor], ids: torch.Tensor, mask: torch.Tensor, rows: list[int], **kw: Any
    ):
        group = self.sampling.num_samples
        return self.policy.token_logprobs(
            prompts,
            ids[rows],
            mask[rows],
            prompt_rows=[r // group for r in rows],
            temperature=self.logprob_temperature,
            **kw,
        )

    @torch.no_grad()
    def _frozen_logprobs(self, prompts, ids, mask, rows: list[int], reference: bool) -> torch.Tensor:
        out = torch.zeros(ids.shape, device=ids.device)  # [N, R]
        group = self.sampling.num_samples
        for start in range(0, len(rows), self.micro_batch_size):
            chunk = rows[start : start + self.micro_batch_size]
            if reference:
                assert self.reference is not None
                out[chunk] = self.reference.logprobs(
                    self.policy, prompts, ids[chunk], mask[chunk], [r // group for r in chunk], self.logprob_temperature
                )
            else:
                out[chunk] = self._logprobs(prompts, ids, mask, chunk)[0]
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Sampling draws from the stage's own random stream, so a resumed run draws what an uninterrupted one did.
        with self.random_stream.active(self.device):
            self._training_step(batch)

    def _training_step(self, batch: dict[str, Any]) -> None:
        prompts, records = batch["prompts"], batch["records"].records
        group = self.sampling.num_samples
        self.last_stats = {}
        if not self._engine_synced:
            self.rollout_engine.sync_weights(self.policy)
            self._engine_synced = True
        rollout = self.rollout_engine.generate(self.policy, prompts, records, self.sampling)
        ids, mask = rollout.response_ids, rollout.response_mask  # [N, R], [N, R]
        lengths = mask.sum(dim=1)  # [N]
        rewards, logged = self.score(rollout.texts, [r for r in records for _ in range(group)], lengths)
        flat = zero_variance_groups(rewards["total"], group)  # [B]
        current = RolloutRound(
            prompts, ids, mask, total=rewards["total"], rows=[], engine_logprobs=getattr(rollout, "logprobs", None)
        )
        rounds, buffer_stats, done = [], {}, 0
        if self._buffer.add(current, flat, last=bool(batch.get("stream_last", False))):  # else: wait for more rounds
            done = len(self._buffer.rounds)
            rounds, buffer_stats = self._buffer.pop()
        stats = self._learn(rounds) if rounds else {}
        updated = sum(len(r.rows) for r in rounds)
        watch = self._watch.observe(flat, done > 0, updated, int(stats.pop("applied_steps", 0)), type(self).__name__)
        self.rollout_batches += done
        log_rollouts(self, rewards, logged, lengths, rollout.truncated, flat, updated)
        stats = {**stats, **buffer_stats, **watch, "skipped_steps": float(self._step_guard.skipped)}
        self.last_stats.update(log_update(self, stats, len(flat)))

    def _learn(self, rounds: list[RolloutRound]) -> dict[str, float]:
        """Advantages, frozen log-probs and the update over ``rounds``; returns the loss (and engine-gap) stats."""
        self._buffer.set_advantages(rounds, self.advantage)
        for r in rounds:
            rows = (r.prompts, r.ids, r.mask, r.rows)
            r.old = self._frozen_logprobs(*rows, reference=False) if self.mini_batches > 1 else None
            r.ref = self._frozen_logprobs(*rows, reference=True) if self.reference is not None else None
        gap = engine_gap(self, rounds) if rounds[0].engine_logprobs is not None and self._engine_gap_on else {}
        return {**self._update(rounds), **gap}

    def _update(self, rounds: list[RolloutRound]) -> dict[str, float]:
        optimizer = self.optimizers()
        scheduler = self.lr_schedulers()
        items = [(r, row) for r in rounds for row in r.rows]  # the rollouts of this update, in order
        per_step = -(-len(items) // self.mini_batches)  # ceil: rollouts per optimizer step
        minis = [items[i : i + per_step] for i in range(0, len(items), per_step)]
        totals: dict[str, float] = {}  # diagnostics averaged over optimizer steps
        applied, grad_norm = 0, 0.0
        for mini in minis:
            parts = [(r, [row for owner, row in mini if owner is r]) for r in rounds]  # per round: its rows here
            parts = [(r, rows) for r, rows in parts if rows]
            # Summed per micro-batch, as the shares below are: equal to the whole mini-batch's weight for additive
            # weights (token or response counts), and the number of micro-batches for MicroBatchTokenMean.
            mini_weight = sum(
                self.loss.aggregation.weight(r.mask[rows[s : s + self.micro_batch_size]].bool())
                for r, rows in parts
                for s in range(0, len(rows), self.micro_batch_size)
            ).float()  # []
            if self.trainer.world_size > 1:
                # DDP averages gradients over ranks; dividing by the ranks' mean weight turns that
                # average into the gradient of the global mini-batch (all ranks' tokens / their total).
                mini_weight = self.trainer.strategy.reduce(mini_weight, reduce_op="mean")
            mini_weight = mini_weight.clamp(min=1)
            optimizer.zero_grad()
            loss_finite = torch.ones((), device=self.device)  # [] 1 while every micro-batch loss is finite
            step_totals: dict[str, float] = {}  # this optimizer step's diagnostics, kept if it is applied
            for r, rows in parts:
                for start in range(0, len(rows), self.micro_batch_size):
                    micro = rows[start : start + self.micro_batch_size]
                    logp, entropy = self._logprobs(  # [m, R] x2; the entropy's gradient only when the loss uses it
                        r.prompts, r.ids, r.mask, micro, with_entropy=True, entropy_grad=self._entropy_in_loss
                    )
                    loss, step_stats = self.loss(
                        logp,
                        r.old[micro] if r.old is not None else logp.detach(),
                        r.ref[micro] if r.ref is not None else None,
                        r.advantages[micro],
                        r.mask[micro],
                        entropy,
                    )
                    share = self.loss.aggregation.weight(r.mask[micro].bool()) / mini_weight
                    loss_finite = loss_finite * torch.isfinite(loss.detach()).float()
                    self.manual_backward(loss * share)
                    for name, value in step_stats.items():
                        step_totals[name] = step_totals.get(name, 0.0) + float(value) * float(share) / len(minis)
            if self.trainer.world_size > 1:  # every rank skips alike
                loss_finite = self.trainer.strategy.reduce(loss_finite, reduce_op="min")  # [] NaN on one rank: all
            owner = type(self).__name__
            norm = self._step_guard.check(optimizer, owner, bool(loss_finite))  # not finite: gradients dropped
            ok = bool(torch.isfinite(norm)) and bool(loss_finite)
            if self.gradient_clip_val is not None and ok:
                self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
            if ok:
                self._step_guard.before_update(optimizer)
            optimizer.step()  # a skipped step changes nothing but still counts, as in the authors' trainer
            if ok and self._step_guard.after_update(optimizer, owner):  # else: non-finite weights, undone
                applied += 1
                for name, value in step_totals.items():  # a skipped step's (NaN) loss must not reach KL control
                    totals[name] = totals.get(name, 0.0) + value
            if scheduler is not None:
                scheduler.step()
            grad_norm += float(norm) / len(minis)  # before clipping, skipped steps included
        self.rollout_engine.sync_weights(self.policy)  # the next rollout batch samples from the updated policy
        if applied < len(minis):  # averages over the applied steps only; none applied: no loss statistics
            totals = {k: v * len(minis) / applied for k, v in totals.items()} if applied else {}
        return {**totals, "grad_norm": grad_norm, "applied_steps": float(applied)}

    def teardown(self, stage: str) -> None:
        self.rollout_engine.close()
        self._engine_synced = False  # a restarted engine loads its start checkpoint again

    # --------------------------------------------------------------------------------- evaluation
    def _evaluate(self, batch: dict[str, Any], split: str) -> None:
        records = batch["records"].records
        rollout = self.policy.generate(batch["prompts"], self.eval_sampling)
        expanded = [r for r in records for _ in range(self.eval_sampling.num_samples)]
        lengths = rollout.response_mask.sum(dim=1)  # [N]
        rewards, logged = self.score(rollout.texts, expanded, lengths)
        self.generation_metrics.log(self, split, rollout.texts, [r.answer for r in expanded], lengths)
        if split == "test":  # per-question rows for paired comparisons of two policies (demo.stats)
            gm = self.generation_metrics
            graded = grade_responses(rollout.texts, [r.answer for r in expanded], gm.rules, gm.grader)
            per_answer = {**graded, **{f"reward/{k}": v.float().tolist() for k, v in rewards.items()}}
            path = rows_path(self.trainer.log_dir or self.trainer.default_root_dir, self.global_rank)
            write_question_rows(path, [r.qid for r in records], self.eval_sampling.num_samples, per_answer)
        # float: Lightning 2.6 mean-syncs an integer batch-size sum and floors it when ranks saw
        # different numbers of records (Lightning issue #21859); a float sum stays exact.
        size = float(len(expanded))
        for name, values in rewards.items():
            self.log(f"{split}/reward/{name}", values.float().mean(), batch_size=size, sync_dist=True)
        for name, values in logged.items():
            self.log(f"{split}/{name}", values.float().mean(), batch_size=size, sync_dist=True)
        self.log(f"{split}/questions", float(len(records)), reduce_fx="sum", batch_size=1, sync_dist=True)
        self.log(f"{split}/reward_errors", float(self.reward_errors), reduce_fx="sum", batch_size=1, sync_dist=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        path = rows_path(self.trainer.log_dir or self.trainer.default_root_dir, self.global_rank)
        path.unlink(missing_ok=True)  # a rerun writes its rows afresh, never beside an earlier run's

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")
