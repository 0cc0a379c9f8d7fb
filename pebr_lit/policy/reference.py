"""Reference-policy strategies: how the KL anchor of a GRPO stage is held, scored and moved, chosen by ``class_path``.

- ``DisabledAdapterReference``: a LoRA policy's base model, reached by disabling the adapter; nothing is
  copied, so it cannot be moved by a sync/EMA schedule.
- ``AdapterSnapshotReference``: a LoRA policy's adapter copied into a second, frozen peft adapter named
  ``reference``; the base weights are shared.
- ``ModelCopyReference``: a frozen deep copy of a fully fine-tuned model, optionally on another device;
  under FSDP2 it is sharded like the policy. All FSDP handling of the reference lives here.

``default_reference`` picks one the way ``callbacks.reference.ReferencePolicy`` always has. Every
strategy's life: ``check`` (does it fit this policy?) -> ``build`` (snapshot, before Lightning moves or
shards the policy) -> ``place`` (at fit start) -> ``logprobs`` / ``sync`` / ``ema`` / ``state`` /
``load_state`` -> ``release``.

Left out on purpose: when to sync or average and the checkpoint hooks (the callback), the KL
coefficient (``callbacks.kl_control``) and the KL estimator (``grpo.kl``).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from pebr_lit.policy.fsdp import Sharding, data_parallel_mesh, full_tensor, reshard_all, shard_like, shard_model
from pebr_lit.policy.wrapper import PolicyWrapper

REFERENCE_ADAPTER = "reference"


class ReferenceStrategy(ABC):
    """How the reference is held; subclasses say what is snapshotted and how it is scored."""

    #: Whether a sync/EMA schedule can move this reference (it has weights of its own).
    movable: bool = True

    @abstractmethod
    def check(self, policy: PolicyWrapper) -> None:
        """Raise ``ValueError`` (saying which strategy fits instead) when this one cannot serve ``policy``."""

    @abstractmethod
    def build(self, policy: PolicyWrapper) -> None:
        """Snapshot ``policy`` as the reference (at stage start, after ``init_from``)."""

    @abstractmethod
    def place(self, policy: PolicyWrapper, parallel: Any) -> None:
        """Put the reference where scoring needs it, once Lightning has moved (or sharded) the policy.

        ``parallel``: the trainer's strategy (DDP, FSDP2, ...).
        """

    @abstractmethod
    def logprobs(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Reference per-token log-probs [N, R] of the responses under ``softmax(logits / temperature)``, on
        ``response_ids``'s device (the GRPO module passes its ``logprob_temperature``)."""

    def pairs(self, policy: PolicyWrapper) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(reference tensor, policy tensor) pairs that a schedule moves; none for an immovable reference."""
        return []

    @torch.no_grad()
    def sync(self, policy: PolicyWrapper) -> None:
        """Reference = the current policy."""
        for ref, live in self.pairs(policy):
            ref.copy_(live.to(ref.device))

    @torch.no_grad()
    def ema(self, policy: PolicyWrapper, decay: float) -> None:
        """Reference = decay * reference + (1 - decay) * policy."""
        for ref, live in self.pairs(policy):
            ref.lerp_(live.to(ref.device), 1.0 - decay)

    def state(self, policy: PolicyWrapper) -> list[torch.Tensor]:
        """The reference weights for a checkpoint: whole CPU tensors (a collective under FSDP2: every rank calls)."""
        return [full_tensor(ref.detach()).cpu() for ref, _ in self.pairs(policy)]

    @torch.no_grad()
    def load_state(self, policy: PolicyWrapper, saved: Sequence[torch.Tensor]) -> None:
        """Write weights from ``state`` back, laid out like the reference (after ``place``)."""
        pairs = self.pairs(policy)
        if len(saved) != len(pairs):
            raise ValueError(
                f"{type(self).__name__}: the checkpoint holds {len(saved)} reference tensors but this reference "
                f"has {len(pairs)}. Resume with the policy settings (LoRA or not) the checkpoint was written with."
            )
        for (ref, _), value in zip(pairs, saved):
            ref.copy_(shard_like(value, ref))

    @abstractmethod
    def release(self, policy: PolicyWrapper) -> None:
        """Free what ``build`` made (at the end of fit); the policy is left as it was before ``build``."""


def _need_adapter(strategy: ReferenceStrategy, policy: PolicyWrapper) -> None:
    if not policy.has_adapter:
        raise ValueError(
            f"{type(strategy).__name__}: the policy has no LoRA adapter (full fine-tuning). "
            "Use pebr_lit.policy.reference.ModelCopyReference, or leave ReferencePolicy.strategy unset."
        )


class DisabledAdapterReference(ReferenceStrategy):
    """The base model of a LoRA policy, scored with the adapter disabled; holds no weights of its own."""

    movable = False

    def check(self, policy: PolicyWrapper) -> None:
        _need_adapter(self, policy)

    def build(self, policy: PolicyWrapper) -> None:
        pass  # the frozen base weights already are the reference

    def place(self, policy: PolicyWrapper, parallel: Any) -> None:
        pass  # the base weights move and shard with the policy

    def release(self, policy: PolicyWrapper) -> None:
        pass

    @torch.no_grad()
    def logprobs(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
        temperature: float = 1.0,
    ) -> torch.Tensor:
        with policy.reference():
            return policy.token_logprobs(
                prompts, response_ids, response_mask, prompt_rows=prompt_rows, temperature=temperature
            )[0]


class AdapterSnapshotReference(ReferenceStrategy):
    """A frozen copy of a LoRA policy's adapter, held as a second peft adapter next to the trainable one."""

    def check(self, policy: PolicyWrapper) -> None:
        _need_adapter(self, policy)

    def build(self, policy: PolicyWrapper) -> None:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        model = policy.model
        if REFERENCE_ADAPTER not in model.peft_config:
            model.add_adapter(REFERENCE_ADAPTER, copy.deepcopy(model.peft_config["default"]))
        set_peft_model_state_dict(
            model, get_peft_model_state_dict(model, adapter_name="default"), adapter_name=REFERENCE_ADAPTER
        )
        model.set_adapter("default")  # the trainable one stays active
        self._freeze(policy)

    def place(self, policy: PolicyWrapper, parallel: Any) -> None:
        pass  # the snapshot is part of the policy model: it moves and shards with it

    @staticmethod
    def _freeze(policy: PolicyWrapper) -> None:
        for name, param in policy.model.named_parameters():
            if f".{REFERENCE_ADAPTER}." in name:
                param.requires_grad_(False)
            elif ".default." in name:
                param.requires_grad_(True)

    @torch.no_grad()
    def logprobs(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
        temperature: float = 1.0,
    ) -> torch.Tensor:
        policy.model.set_adapter(REFERENCE_ADAPTER)
        try:
            return policy.token_logprobs(
                prompts, response_ids, response_mask, prompt_rows=prompt_rows, temperature=temperature
            )[0]
        finally:
            policy.model.set_adapter("default")
            self._freeze(policy)  # set_adapter makes the active adapter trainable

    def pairs(self, policy: PolicyWrapper) -> list[tuple[torch.Tensor, torch.Tensor]]:
        params = dict(policy.model.named_parameters())
        return [
            (p, params[n.replace(f".{REFERENCE_ADAPTER}.", ".default.")])
            for n, p in params.items()
            if f".{REFERENCE_ADAPTER}." in n
        ]

    def release(self, policy: PolicyWrapper) -> None:
        if REFERENCE_ADAPTER in policy.model.peft_config:
            policy.model.delete_adapter(REFERENCE_ADAPTER)
            policy.model.set_adapter("default")


class ModelCopyReference(ReferenceStrategy):
    """A frozen deep copy of a fully fine-tuned policy model; sharded like the policy under FSDP2.

    Args:
        device: Device for the copy (e.g. ``cpu`` to save GPU memory); null = the policy's. Not with FSDP2.
    """

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self.model: torch.nn.Module | None = None

    def check(self, policy: PolicyWrapper) -> None:
        if policy.has_adapter:
            raise ValueError(
                "ModelCopyReference: the policy has a LoRA adapter, so a whole-model copy would duplicate the "
                "frozen base. Use pebr_lit.policy.reference.AdapterSnapshotReference (or DisabledAdapterReference "
                "for the base model), or leave ReferencePolicy.strategy unset."
            )

    def build(self, policy: PolicyWrapper) -> None:
        self.model = copy.deepcopy(policy.model).eval().requires_grad_(False)
        if self.device:
            self.model.to(self.device)

    def place(self, policy: PolicyWrapper, parallel: Any) -> None:
        assert self.model is not None
        mesh = data_parallel_mesh(parallel)
        if mesh is not None:  # built before configure_model sharded the policy
            if self.device is not None:
                raise ValueError(
                    f"ModelCopyReference.device={self.device!r}: does not combine with FSDP, the reference copy "
                    "is sharded like the policy. Remove `device`, or offload both with "
                    "FSDP2Strategy(sharding: {cpu_offload: true})."
                )
            shard_model(self.model, mesh, getattr(parallel, "sharding", None) or Sharding())
        elif self.device is None:  # built before Lightning moved the policy
            self.model.to(policy.device)

    @torch.no_grad()
    def logprobs(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        prompt_rows: Sequence[int],
        temperature: float = 1.0,
    ) -> torch.Tensor:
        assert self.model is not None
        device = next(self.model.parameters()).device
        moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in prompts.items()}
        out = policy.token_logprobs(
            moved,
            response_ids.to(device),
            response_mask.to(device),
            prompt_rows=prompt_rows,
            model=self.model,
            temperature=temperature,
        )[0]
        return out.to(response_ids.device)

    def pairs(self, policy: PolicyWrapper) -> list[tuple[torch.Tensor, torch.Tensor]]:
        assert self.model is not None
        return list(zip(self.model.parameters(), policy.model.parameters()))

    # An FSDP2 root keeps the weights it gathered for a no-grad forward: drop them after writing the shards.
    def sync(self, policy: PolicyWrapper) -> None:
        super().sync(policy)
        reshard_all(self.model)

    def ema(self, policy: PolicyWrapper, decay: float) -> None:
        super().ema(policy, decay)
        reshard_all(self.model)

    def load_state(self, policy: PolicyWrapper, saved: Sequence[torch.Tensor]) -> None:
        super().load_state(policy, saved)
        reshard_all(self.model)

    def release(self, policy: PolicyWrapper) -> None:
        self.model = None


def default_reference(policy: PolicyWrapper, scheduled: bool, device: str | None = None) -> ReferenceStrategy:
    """The strategy for ``policy`` when none is configured.

    LoRA with a still-zero adapter and no sync/EMA schedule (``scheduled``): the disabled adapter; LoRA
    otherwise: an adapter snapshot; full fine-tuning: a model copy on ``device``.
    """
    if not policy.has_adapter:
        return ModelCopyReference(device=device)
    lora_b = [p for n, p in policy.model.named_parameters() if "lora_B" in n and REFERENCE_ADAPTER not in n]
    if all(bool((p == 0).all()) for p in lora_b) and not scheduled:
        return DisabledAdapterReference()
    return AdapterSnapshotReference()
