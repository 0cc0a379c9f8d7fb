"""ReferencePolicy: the KL anchor of a GRPO stage, by default the policy as it was at stage start.

At ``setup`` (after ``init_from`` has loaded the previous stage, before any ``--ckpt_path`` resume)
the callback builds a reference strategy (``pebr_lit.policy.reference``) and hands itself to the
module as ``module.reference``. Unless ``strategy`` names one, it is chosen from the policy:

- LoRA policy whose adapter is still zero: the base model, reached by disabling the adapter
  (``DisabledAdapterReference``); nothing is copied.
- LoRA policy with a trained adapter (e.g. stage 2 continuing stage 1's adapter), or any LoRA policy
  with a schedule: a second, frozen adapter copied from the trained one (``AdapterSnapshotReference``).
- Full fine-tuning: a frozen copy of the model (``ModelCopyReference``), optionally on ``device``;
  under FSDP2 it is sharded like the policy at ``on_fit_start``.

Optional schedules: a hard sync to the current policy every ``sync_every`` optimizer steps, or an
exponential moving average. With either, the reference weights are saved in checkpoints so that a
resumed run continues from the same reference; the static default is rebuilt from ``init_from``.

Left out on purpose: how each reference is held and scored (the strategies), the KL coefficient
(``KLController``) and the KL estimator (``GRPOLoss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from pebr_lit.policy.reference import ReferenceStrategy, default_reference


class ReferencePolicy(Callback):
    """Provide reference log-probs for the KL term.

    Args:
        sync_every: Copy the current policy into the reference every N optimizer steps; null = never.
        ema_decay: After each step, reference = decay * reference + (1 - decay) * policy; null = off.
        device: Device for a full-model reference copy (e.g. ``cpu`` to save GPU memory); null = the policy's.
            Only when ``strategy`` is unset (otherwise give it to ``ModelCopyReference``).
        strategy: How the reference is held (a ``pebr_lit.policy.reference`` class, by ``class_path``);
            null = chosen from the policy as above. Not the trainer's parallel strategy.
    """

    def __init__(
        self,
        sync_every: int | None = None,
        ema_decay: float | None = None,
        device: str | None = None,
        strategy: ReferenceStrategy | None = None,
    ) -> None:
        if sync_every is not None and sync_every < 1:
            raise ValueError(f"ReferencePolicy.sync_every={sync_every}: must be >= 1. Set it >= 1 or null.")
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ReferencePolicy.ema_decay={ema_decay}: must be in [0, 1). Set it in [0, 1) or null.")
        if sync_every is not None and ema_decay is not None:
            raise ValueError("ReferencePolicy: sync_every and ema_decay are both set. Choose one of them.")
        if strategy is not None and device is not None:
            raise ValueError(
                f"ReferencePolicy.device={device!r}: only applies to the automatic choice. "
                f"Set the device in the strategy's init_args ({type(strategy).__name__}) instead."
            )
        if strategy is not None and not strategy.movable and (sync_every is not None or ema_decay is not None):
            raise ValueError(
                f"ReferencePolicy.strategy={type(strategy).__name__}: holds no weights, so sync_every/ema_decay "
                "cannot move it. Use AdapterSnapshotReference, or drop the schedule."
            )
        self.sync_every = sync_every
        self.ema_decay = ema_decay
        self.device = device
        self.strategy = strategy
        self._configured = strategy
        self._built = False
        self._restored: dict[str, Any] | None = None

    @property
    def _scheduled(self) -> bool:
        return self.sync_every is not None or self.ema_decay is not None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._module = pl_module
        if stage != "fit" or self._built:
            return
        policy = pl_module.policy
        if self.strategy is None:
            self.strategy = default_reference(policy, self._scheduled, self.device)
        self.strategy.check(policy)
        self.strategy.build(policy)
        self._built = True
        pl_module.reference = self

    @torch.no_grad()
    def logprobs(
        self,
        policy: Any,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Reference per-token log-probs [N, R] of the responses under ``softmax(logits / temperature)``."""
        assert self.strategy is not None, "ReferencePolicy.logprobs before setup"
        return self.strategy.logprobs(policy, prompts, response_ids, response_mask, prompt_rows, temperature)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        assert self.strategy is not None
        if self.ema_decay is not None:
            self.strategy.ema(pl_module.policy, self.ema_decay)
        elif self.sync_every is not None and trainer.global_step % self.sync_every == 0:
            self.strategy.sync(pl_module.policy)

    def state_dict(self) -> dict[str, Any]:
        if not self._scheduled or self.strategy is None:
            return {}
        return {"strategy": type(self.strategy).__name__, "reference": self.strategy.state(self._module.policy)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict if state_dict.get("reference") is not None else None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert self.strategy is not None
        self.strategy.place(pl_module.policy, trainer.strategy)
        if self._restored is not None:
            saved = self._restored.get("strategy")  # absent in checkpoints from before the strategy classes
            if saved is not None and saved != type(self.strategy).__name__:
                raise ValueError(
                    f"ReferencePolicy.strategy={type(self.strategy).__name__}: the checkpoint's reference was "
                    f"held by {saved}. Resume with the same policy settings and ReferencePolicy.strategy."
                )
            self.strategy.load_state(pl_module.policy, self._restored["reference"])
            self._restored = None

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Frees the copy (or the extra adapter); a later fit takes a new stage-start snapshot.
        if stage == "fit" and self._built and self.strategy is not None:
            self.strategy.release(pl_module.policy)
            self.strategy, self._built = self._configured, False
            pl_module.reference = None
