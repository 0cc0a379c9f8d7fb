"""The policy's weights as an inference engine loads them: LoRA folded in, in checkpoint names.

A rollout engine holds a plain (un-adapted, un-quantised) copy of the model, so what it receives
after each optimizer step is the *merged* model: every LoRA-wrapped layer as ``W + scale * B @ A``
(computed per layer, the adapter stays live in the trainer), 4-bit QLoRA base weights de-quantised
to their compute dtype, everything else as is, tied weights once, under the names a Hugging Face
checkpoint of this model uses on disk (transformers 5 renames some modules in memory, e.g.
``model.language_model.*`` is ``model.*`` on disk; the engine loads on-disk names).

Left out on purpose: sending the weights anywhere (the engines in ``sglang``) and the merge itself
(``pebr_lit.policy.lora.merged_weights``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from pebr_lit.policy.lora import merged_weights, unwrap
from pebr_lit.policy.wrapper import PolicyWrapper

WEIGHTS_INDEX = "model.safetensors.index.json"


def checkpoint_names(model: nn.Module, names: list[str]) -> dict[str, str]:
    """In-memory parameter name -> the name ``save_pretrained`` writes for it.

    Uses the same reverse conversion ``save_pretrained`` applies (transformers 5.19, pinned). Only
    renamings are supported: a model whose checkpoint format fuses or splits tensors is refused.
    """
    from transformers.core_model_loading import revert_weight_conversion

    probes = {n: torch.empty(0) for n in names}  # renaming keeps tensor identity, so ids map names back
    reverted = revert_weight_conversion(model, dict(probes))
    by_id = {id(t): new for new, t in reverted.items()}
    missing = [n for n in names if id(probes[n]) not in by_id]
    if missing or len(reverted) != len(names):
        raise NotImplementedError(
            f"{type(model).__name__}'s checkpoint format converts tensors (not just renames them), e.g. {missing[:3]}; "
            "weight sync to a rollout engine supports renamed checkpoints only (Qwen2-VL / Qwen2.5-VL are)."
        )
    return {n: by_id[id(probes[n])] for n in names}


def engine_weights(policy: PolicyWrapper) -> Iterator[tuple[str, torch.Tensor]]:
    """(checkpoint name, tensor) for every weight of the merged policy, one layer at a time, on its device."""
    model = unwrap(policy.model)
    weights = list(merged_weights(model))
    mapping = checkpoint_names(model, [n for n, _ in weights])
    for name, get in weights:
        yield mapping[name], get().detach()


def save_engine_weights(policy: PolicyWrapper, out_dir: str | Path, shard_bytes: int = 2 << 30) -> Path:
    """Write the merged policy as a safetensors checkpoint (shards + index + config.json) into ``out_dir``.

    Earlier shards in ``out_dir`` are removed first; tensors go to the CPU one shard at a time.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.safetensors"):
        old.unlink()
    weight_map: dict[str, str] = {}
    shard: dict[str, torch.Tensor] = {}
    size = total = 0

    def flush() -> None:
        nonlocal shard, size
        if shard:
            filename = f"model-{len(set(weight_map.values())) + 1:05d}.safetensors"
            save_file(shard, str(out / filename), metadata={"format": "pt"})
            weight_map.update({k: filename for k in shard})
            shard, size = {}, 0

    for name, tensor in engine_weights(policy):
        nbytes = tensor.numel() * tensor.element_size()
        if shard and size + nbytes > shard_bytes:
            flush()
        shard[name] = tensor.detach().to("cpu").contiguous()
        size, total = size + nbytes, total + nbytes
    flush()
    (out / WEIGHTS_INDEX).write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    )
    config = copy.deepcopy(unwrap(policy.model).config)
    if hasattr(config, "quantization_config"):  # the written weights are de-quantised
        del config.quantization_config
    config.save_pretrained(out)
    return out
