"""Move policy weights between stages: slim stage checkpoints and ``init_from`` loading.

A stage checkpoint keeps only the parameters that the stage trains (the frozen base is reloaded
from ``model_name_or_path``), plus a description of the policy. ``load_policy_weights`` starts a
new stage from such a checkpoint, whatever the adapters on either side:

- same layout (LoRA -> LoRA with the same targets, full -> full): copied as is;
- LoRA -> full fine-tuning: the adapter is folded into the base weights (W + alpha/r * B @ A);
- full -> LoRA: the trained weights become the new adapter's base.

Every file is read with ``weights_only=True`` and its weights checked finite (``pebr_lit.ckpt.safe_load``).

Left out on purpose: resuming a stage (Lightning's ``--ckpt_path`` restores optimizer and step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pebr_lit.ckpt.safe_load import CheckpointError, check_finite, load_checkpoint_file, require_state_dict
from pebr_lit.policy.lora import canonical_name, merge_lora_state

POLICY_PREFIX = "policy.model."


def trainable_state_dict(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` that belong to parameters with ``requires_grad``."""
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    return {k: v for k, v in state_dict.items() if k in trainable}


def read_policy_state(
    path: str | Path, what: str = "init_from", check_values: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Policy weights (names relative to the HF model) and the policy description of a checkpoint.

    Read with ``weights_only=True`` (``ckpt.safe_load``); a missing, damaged or unsafe file, one without policy
    weights, or (``check_values``) one holding NaN/inf weights raises ``CheckpointError`` naming ``what=path``.
    ``check_values=False`` maps the tensors instead of reading them: a cheap structure check before a model is built.
    """
    ckpt = load_checkpoint_file(path, what, mmap=not check_values)
    state_dict = require_state_dict(ckpt, path, what)
    state = {k[len(POLICY_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(POLICY_PREFIX)}
    if not state:
        raise CheckpointError(
            f"{what}={str(path)!r} holds no '{POLICY_PREFIX}*' weights; point it at a checkpoint of a pebr-lit stage."
        )
    if check_values:
        check_finite(state.items(), path, what)
    return state, ckpt.get("pebr_policy", {})


def _lora_scale(info: dict[str, Any]) -> float:
    """alpha / r of the LoRA that wrote a checkpoint, from its policy description."""
    lora = info.get("lora") or {}
    if not lora:
        raise ValueError("the checkpoint has LoRA weights but no LoRA settings ('pebr_policy.lora'); cannot merge.")
    return lora["alpha"] / lora["r"]


def load_policy_weights(
    model: nn.Module, path: str | Path, has_adapter: bool, what: str = "init_from"
) -> dict[str, int]:
    """Load a previous stage's policy weights into ``model`` (the HF or peft model).

    Returns counts: ``loaded`` tensors and ``merged_adapters``. Raises on a name that has no place in
    ``model``, naming it, so that a checkpoint of another architecture never loads half-way. ``what``: the setting
    ``path`` came from, named in errors.
    """
    state, info = read_policy_state(path, what)
    target = model.state_dict()
    by_canonical = {canonical_name(k): k for k in target if "lora_" not in k}
    source_has_lora = any("lora_" in k for k in state)
    merged = 0
    if source_has_lora and not has_adapter:
        merged = sum(1 for k in state if ".lora_A." in k)
        # a slim checkpoint holds no frozen base weights: the new policy's own (same base) supply W
        state = merge_lora_state(state, _lora_scale(info), {canonical_name(k): v for k, v in target.items()})
    mapped: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name in target:
            mapped[name] = value
        elif canonical_name(name) in by_canonical:
            mapped[by_canonical[canonical_name(name)]] = value
        else:
            raise ValueError(
                f"{path}: weight {name!r} has no counterpart in the policy. Check that both stages use the "
                f"same base model (checkpoint base: {info.get('source', 'unknown')!r}) and LoRA targets."
            )
    for name, value in mapped.items():
        if target[name].shape != value.shape:
            raise ValueError(
                f"{path}: weight {name!r} has shape {tuple(value.shape)}, "
                f"the policy expects {tuple(target[name].shape)}."
            )
    model.load_state_dict(mapped, strict=False)
    return {"loaded": len(mapped), "merged_adapters": merged}


def slim_checkpoint(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """``on_save_checkpoint`` body: keep trained weights only and record what the policy is."""
    checkpoint["state_dict"] = trainable_state_dict(module, checkpoint["state_dict"])
    checkpoint["pebr_policy"] = module.policy.describe()


def check_checkpoint_keys(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """``on_load_checkpoint`` body: a slim checkpoint loads non-strictly, so refuse unknown names here."""
    if (
        "state_dict" not in checkpoint
    ):  # ModelParallelStrategy loaded the weights itself (pebr_lit.policy.fsdp checks there)
        return
    known = set(module.state_dict())
    unknown = [k for k in checkpoint["state_dict"] if k not in known]
    if unknown:
        raise ValueError(
            f"checkpoint weights {unknown[:3]} (and {max(0, len(unknown) - 3)} more) have no place in this module: "
            "resume with the same policy settings (LoRA on/off, targets) as the run that wrote it."
        )


def init_policy_from(policy: Any, path: str | Path, what: str = "init_from") -> dict[str, int]:
    """Start a stage from a previous stage's checkpoint: load its policy weights into ``policy`` now.

    Called from a module's ``__init__``, so every hook after construction (reference snapshots
    included) sees the stage-start weights, and a later ``--ckpt_path`` resume overrides them.
    """
    from lightning.pytorch.utilities import rank_zero_info

    counts = load_policy_weights(policy.model, path, policy.has_adapter, what)
    rank_zero_info(f"init_from {path}: loaded {counts['loaded']} tensors, merged {counts['merged_adapters']} adapters")
    return counts
