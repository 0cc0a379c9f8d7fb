"""FSDP2 for the policy: which submodules ``fully_shard`` wraps, and the strategy that carries the settings.

Under Lightning's ``ModelParallelStrategy`` the modules' ``configure_model`` hook calls
``shard_for_strategy``: every decoder layer and vision block (the HF model's ``_no_split_modules``)
becomes its own FSDP2 unit, then the HF model itself (embeddings, final norm, LM head, patch
embedding, merger) becomes the root unit. Parameter names do not change under FSDP2, so slim
checkpoints and ``init_from`` see the same keys as without it; ``get_image_features`` (called on
the HF model outside its ``forward``) is registered as an FSDP forward method so that the root's
parameters are gathered for it. ``FSDP2Strategy`` is ``ModelParallelStrategy`` with pure data
parallelism over all processes, one-file checkpoints by default, and the sharding options below;
with a plain ``ModelParallelStrategy`` the defaults of ``Sharding`` apply.

Left out on purpose: tensor parallelism (``tensor_parallel_size`` stays 1), activation
checkpointing (``PolicyWrapper.gradient_checkpointing`` applies under FSDP as without it), and any
model-specific layer plan beyond ``_no_split_modules``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

from pebr_lit.ckpt.safe_load import check_finite, load_checkpoint_file, require_state_dict
from pebr_lit.policy.checkpoint import check_checkpoint_keys
from pebr_lit.policy.lora import unwrap
from pebr_lit.policy.settings import _DTYPES


@dataclass
class Sharding:
    """How ``fully_shard`` is applied to the policy.

    Args:
        reshard_after_forward: Free each layer's gathered weights after its forward (ZeRO-3); false keeps
            them until backward (ZeRO-2: faster, more memory).
        param_dtype: Compute dtype of the gathered weights (e.g. bfloat16 over float32 shards); null = as stored.
        reduce_dtype: Dtype of the gradient reduce-scatter; null = param_dtype.
        cpu_offload: Keep sharded weights, gradients and optimizer state on the CPU (the optimizer steps there).
        gather_for_generate: Keep every layer gathered for a whole ``generate`` call (one all-gather per
            layer instead of one per layer and new token; peak memory = the whole unsharded model).
    """

    reshard_after_forward: bool = True
    param_dtype: str | None = None
    reduce_dtype: str | None = None
    cpu_offload: bool = False
    gather_for_generate: bool = True

    def __post_init__(self) -> None:
        for field in ("param_dtype", "reduce_dtype"):
            value = getattr(self, field)
            if value is not None and value not in _DTYPES:
                raise ValueError(f"Sharding.{field}={value!r}: unknown dtype. Use null or one of {sorted(_DTYPES)}.")

    def fsdp_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``fully_shard`` other than the mesh."""
        from torch.distributed.fsdp import (
            CPUOffloadPolicy,
            MixedPrecisionPolicy,
            OffloadPolicy,
        )

        mp = MixedPrecisionPolicy(
            param_dtype=_DTYPES[self.param_dtype] if self.param_dtype else None,
            reduce_dtype=_DTYPES[self.reduce_dtype] if self.reduce_dtype else None,
        )
        return {"mp_policy": mp, "offload_policy": CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy()}


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(unwrap(model), FSDPModule)


def shard_model(model: nn.Module, mesh: Any, sharding: Sharding) -> None:
    """Apply FSDP2 to ``model`` (an HF VLM, optionally peft-wrapped) in place: blocks first, then the HF model."""
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    hf = unwrap(model)
    if is_sharded(hf):
        return  # configure_model runs once per trainer call (fit, then validate/test)
    names = set(getattr(hf, "_no_split_modules", None) or [])
    blocks = [m for m in hf.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(
            f"pebr_lit.policy.fsdp: {type(hf).__name__} lists no decoder-layer/vision-block classes "
            "in _no_split_modules "
            f"({sorted(names)}) that occur in the model, so FSDP2 would gather the whole model at once. "
            "Use a Qwen2-VL / Qwen2.5-VL checkpoint, or set the model class's _no_split_modules."
        )
    kwargs = {"mesh": mesh, **sharding.fsdp_kwargs()}
    for block in blocks:
        fully_shard(block, reshard_after_forward=sharding.reshard_after_forward, **kwargs)
    # Root unit: FSDP2 keeps a root's weights gathered from forward to backward on its own.
    fully_shard(hf, **kwargs)
    # Both run the vision tower outside the root's forward (PolicyWrapper: one pass per image, reused
    # by its G rollouts; generate: before prefill), which would otherwise see the patch embedding and
    # merger as shards. Registering generate also makes the HF model FSDP2's root (the first to run).
    register_fsdp_forward_method(hf, "get_image_features")
    register_fsdp_forward_method(hf, "generate")
    if sharding.gather_for_generate:
        _keep_gathered_during(hf, "generate", blocks, sharding.reshard_after_forward)


def _keep_gathered_during(
    root: nn.Module, method_name: str, blocks: list[nn.Module], reshard_after_forward: bool
) -> None:
    """Gather each block once per ``method_name`` call instead of once per forward (per new token in generate)."""
    inner = getattr(root, method_name)

    @functools.wraps(inner)
    def gathered(*args: Any, **kwargs: Any) -> Any:
        for block in blocks:
            block.set_reshard_after_forward(False, recurse=False)
        try:
            return inner(*args, **kwargs)
        finally:
            for block in blocks:
                block.set_reshard_after_forward(reshard_after_forward, recurse=False)
                block.reshard()

    setattr(root, method_name, gathered)


def data_parallel_mesh(strategy: Any) -> Any:
    """The 1-D data-parallel mesh of a ``ModelParallelStrategy``; None for any other strategy."""
    if not isinstance(strategy, ModelParallelStrategy):
        return None
    mesh = strategy.device_mesh
    if mesh["tensor_parallel"].size() != 1:
        raise ValueError(
            f"pebr_lit.policy.fsdp shards data-parallel only, but the strategy has tensor_parallel_size="
            f"{mesh['tensor_parallel'].size()}: set trainer.strategy to pebr_lit.policy.fsdp.FSDP2Strategy "
            "or ModelParallelStrategy with tensor_parallel_size: 1 and data_parallel_size: <number of processes>."
        )
    return mesh["data_parallel"]


def shard_for_strategy(model: nn.Module, strategy: Any) -> bool:
    """``configure_model`` body: shard ``model`` when the strategy is a ``ModelParallelStrategy``; True if sharded."""
    mesh = data_parallel_mesh(strategy)
    if mesh is None:
        return False
    shard_model(model, mesh, getattr(strategy, "sharding", None) or Sharding())
    return True


def reshard_all(model: nn.Module) -> None:
    """Drop gathered weights of every FSDP unit (after writing to the shards outside an optimizer step)."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


class FSDP2Strategy(ModelParallelStrategy):
    """FSDP2 data parallelism over every process, with pebr-lit's checkpoint layout and sharding options.

    Args:
        sharding: How the policy is sharded; null = Sharding() (ZeRO-3, dtypes as stored, no offload).
        save_distributed_checkpoint: Write one folder of shards per checkpoint instead of one file
            gathered on rank 0. ``init_from`` reads one file only: keep false unless resuming only.
        process_group_backend: torch.distributed backend; null = nccl on GPUs, gloo on CPUs.
    """

    def __init__(
        self,
        sharding: Sharding | None = None,
        save_distributed_checkpoint: bool = False,
        process_group_backend: str | None = None,
    ) -> None:
        super().__init__(
            data_parallel_size="auto",
            tensor_parallel_size=1,
            save_distributed_checkpoint=save_distributed_checkpoint,
            process_group_backend=process_group_backend,
        )
        self.sharding = sharding or Sharding()

    def setup_environment(self) -> None:
        # ModelParallelStrategy's "auto" means one data-parallel group per node; here all processes are.
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> dict[str, Any]:
        # The parent loads weights non-strictly and drops "state_dict" before on_load_checkpoint, so a
        # checkpoint of another layout would load half-way silently: refuse unknown names (and NaN/inf) first.
        path = Path(self.broadcast(checkpoint_path))
        if path.is_file():
            ckpt = load_checkpoint_file(path, "ckpt_path", mmap=True)
            check_finite(require_state_dict(ckpt, path, "ckpt_path").items(), path, "ckpt_path")
            check_checkpoint_keys(self.lightning_module, ckpt)
        loaded = super().load_checkpoint(path, weights_only=True)  # never unpickle code, whatever the caller asks
        # This strategy restores after setup, but configure_optimizers (estimated_stepping_batches) has
        # already built the train loader from the module's pre-restore state, and PromptDataModule
        # starts its stream at the restored ``rollout_batches``: have the fit loop build it again.
        self.lightning_module.trainer.fit_loop._combined_loader = None
        return loaded


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor behind an FSDP2 shard (a collective: call on every rank); plain tensors as they are."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def shard_like(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``value`` (the same whole tensor on every rank) laid out like ``target`` (an FSDP2 shard or a plain tensor)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not isinstance(target, DTensor):
        return value.to(target.device)
    return distribute_tensor(value.to(target.dtype), target.device_mesh, target.placements)
