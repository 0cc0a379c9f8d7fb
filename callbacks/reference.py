"""ReferencePolicy: the KL anchor of a GRPO stage, by default the policy as it was at stage start.

At ``setup`` (after ``init_from`` has loaded the previous stage, before any ``--ckpt_path`` resume)
the callback snapshots the policy and hands itself to the module as ``module.reference``:

- LoRA policy whose adapter is still zero: the reference is the base model, reached by disabling the
  adapter; nothing is copied.
- LoRA policy with a trained adapter (e.g. stage 2 continuing stage 1's adapter): the adapter is
  copied into a second, frozen adapter named ``reference``; the base is shared.
- Full fine-tuning: a frozen copy of the model (optionally kept on another device, e.g. ``cpu``).
  Under FSDP2 (``ModelParallelStrategy``) the copy is sharded like the policy at ``on_fit_start``.

Optional schedules: a hard sync to the current policy every ``sync_every`` optimizer steps, or an
exponential moving average. With either, the reference weights are saved in checkpoints so that a
resumed run continues from the same reference; the static default is rebuilt from ``init_from``.

Left out on purpose: the KL coefficient (``KLController``) and the KL estimator (``GRPOLoss``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from pebr_lit.policy.fsdp import (
    Sharding,
    data_parallel_mesh,
    full_tensor,
    reshard_all,
    shard_like,
    shard_model,
)

REFERENCE_ADAPTER = "reference"


class ReferencePolicy(Callback):
    """Provide reference log-probs for the KL term.

    Args:
        sync_every: Copy the current policy into the reference every N optimizer steps; null = never.
        ema_decay: After each step, reference = decay * reference + (1 - decay) * policy; null = off.
        device: Device for a full-model reference copy (e.g. ``cpu`` to save GPU memory); null = the policy's.
    """

    def __init__(
        self, sync_every: int | None = None, ema_decay: float | None = None, device: str | None = None
    ) -> None:
        if sync_every is not None and sync_every < 1:
            raise ValueError(f"sync_every must be >= 1 or null, got {sync_every}.")
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) or null, got {ema_decay}.")
        if sync_every is not None and ema_decay is not None:
            raise ValueError("choose one of sync_every and ema_decay.")
        self.sync_every = sync_every
        self.ema_decay = ema_decay
        self.device = device
        self.mode = ""  # "disabled_adapter" | "adapter" | "copy"
        self.copy: torch.nn.Module | None = None
        self._restored: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------------------- snapshots
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._module = pl_module
        if stage != "fit" or self.mode:
            return
        policy = pl_module.policy
        if policy.has_adapter:
            lora_b = [p for n, p in policy.model.named_parameters() if "lora_B" in n and REFERENCE_ADAPTER not in n]
            if all(bool((p == 0).all()) for p in lora_b) and self.sync_every is None and self.ema_decay is None:
                self.mode = "disabled_adapter"
            else:
                self._add_reference_adapter(policy.model)
                self.mode = "adapter"
        else:
            self.copy = copy.deepcopy(policy.model).eval().requires_grad_(False)
            if self.device:
                self.copy.to(self.device)
            self.mode = "copy"
        pl_module.reference = self

    @staticmethod
    def _add_reference_adapter(model: torch.nn.Module) -> None:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        if REFERENCE_ADAPTER not in model.peft_config:
            model.add_adapter(REFERENCE_ADAPTER, copy.deepcopy(model.peft_config["default"]))
        set_peft_model_state_dict(
            model, get_peft_model_state_dict(model, adapter_name="default"), adapter_name=REFERENCE_ADAPTER
        )
        model.set_adapter("default")  # the trainable one stays active
        for name, param in model.named_parameters():
            if f".{REFERENCE_ADAPTER}." in name:
                param.requires_grad_(False)

    def _pairs(self, policy: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(reference tensor, policy tensor) pairs that schedules move."""
        if self.mode == "copy":
            assert self.copy is not None
            return list(zip(self.copy.parameters(), policy.model.parameters()))
        params = dict(policy.model.named_parameters())
        return [
            (p, params[n.replace(f".{REFERENCE_ADAPTER}.", ".default.")])
            for n, p in params.items()
            if f".{REFERENCE_ADAPTER}." in n
        ]

    # ----------------------------------------------------------------------------------- hook
    @torch.no_grad()
    def logprobs(
        self,
        policy: Any,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
    ) -> torch.Tensor:
        """Reference per-token log-probs [N, R] of the responses."""
        if self.mode == "disabled_adapter":
            with policy.reference():
                return policy.token_logprobs(prompts, response_ids, response_mask, prompt_rows=prompt_rows)[0]
        if self.mode == "adapter":
            policy.model.set_adapter(REFERENCE_ADAPTER)
            try:
                return policy.token_logprobs(prompts, response_ids, response_mask, prompt_rows=prompt_rows)[0]
            finally:
                policy.model.set_adapter("default")
                for name, param in policy.model.named_parameters():  # set_adapter re-enables grads
                    if f".{REFERENCE_ADAPTER}." in name:
                        param.requires_grad_(False)
                    elif ".default." in name:
                        param.requires_grad_(True)
        assert self.copy is not None
        device = next(self.copy.parameters()).device
        moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in prompts.items()}
        out = policy.token_logprobs(
            moved, response_ids.to(device), response_mask.to(device), prompt_rows=prompt_rows, model=self.copy
        )[0]
        return out.to(response_ids.device)

    # ------------------------------------------------------------------------------ schedules
    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.ema_decay is not None:
            for ref, live in self._pairs(pl_module.policy):
                ref.lerp_(live.to(ref.device), 1.0 - self.ema_decay)
            self._reshard()
        elif self.sync_every is not None and trainer.global_step % self.sync_every == 0:
            for ref, live in self._pairs(pl_module.policy):
                ref.copy_(live.to(ref.device))
            self._reshard()

    def _reshard(self) -> None:
        # An FSDP2 root keeps the weights it gathered for a no-grad forward: drop them after writing the shards.
        if self.copy is not None:
            reshard_all(self.copy)

    def state_dict(self) -> dict[str, Any]:
        if self.sync_every is None and self.ema_decay is None:
            return {}
        # full_tensor: whole tensors under FSDP2 (every rank calls state_dict), so any layout can resume.
        return {
            "mode": self.mode,
            "reference": [full_tensor(ref.detach()).cpu() for ref, _ in self._pairs(self._module.policy)],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict.get("reference")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        mesh = data_parallel_mesh(trainer.strategy)
        if self.copy is not None and mesh is not None:  # setup ran before configure_model sharded the policy
            if self.device is not None:
                raise ValueError(
                    f"ReferencePolicy(device={self.device!r}) does not combine with FSDP: "
                    "the reference copy is sharded like the policy. Remove `device`, "
                    "or offload both with FSDP2Strategy(sharding: {cpu_offload: true})."
                )
            shard_model(self.copy, mesh, getattr(trainer.strategy, "sharding", None) or Sharding())
        elif self.copy is not None and self.device is None:  # setup ran before Lightning moved the policy
            self.copy.to(pl_module.device)
        if self._restored is not None:
            with torch.no_grad():
                for (ref, _), saved in zip(self._pairs(pl_module.policy), self._restored):
                    ref.copy_(shard_like(saved, ref))
            self._restored = None
            self._reshard()
