"""The policy's weights as an inference engine loads them: LoRA folded in, in checkpoint names.

A rollout engine holds a plain (un-adapted, un-quantised) copy of the model, so what it receives
after each optimizer step is the *merged* model: every LoRA-wrapped layer as ``W + scale * B @ A``
(computed per layer, the adapter stays live in the trainer), 4-bit QLoRA base weights de-quantised
to their compute dtype, everything else as is, tied weights once, under the names a Hugging Face
checkpoint of this model uses on disk (transformers 5 renames some modules in memory, e.g.
``model.language_model.*`` is ``model.*`` on disk; the engine loads on-disk names).

Left out on purpose: sending the weights anywhere (the engines in ``sglang``).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from pebr_lit.policy.wrapper import PolicyWrapper

WEIGHTS_INDEX = "model.safetensors.index.json"


def hf_model(policy: PolicyWrapper) -> nn.Module:
    """The Hugging Face model under any peft wrapper."""
    return policy.model.get_base_model() if hasattr(policy.model, "get_base_model") else policy.model


def _weight(module: nn.Module) -> torch.Tensor:
    """A layer's weight, de-quantised when it is a bitsandbytes 4/8-bit parameter."""
    if type(module.weight).__name__ in ("Params4bit", "Int8Params"):
        from peft.utils.integrations import dequantize_module_weight

        return dequantize_module_weight(module)
    return module.weight


def _merged_lora_weight(layer: nn.Module) -> torch.Tensor:
    base = layer.get_base_layer()
    weight = _weight(base).detach()
    if getattr(layer, "merged", False) or getattr(layer, "disable_adapters", False):
        return weight  # already folded in, or switched off: the base weight is what the layer computes
    total = weight.float()
    for name in layer.active_adapters:
        if name in layer.lora_A or name in getattr(layer, "lora_embedding_A", {}):
            total = total + layer.get_delta_weight(name).detach().float()  # scale * B @ A, fan-in/out handled by peft
    return total.to(weight.dtype)  # one rounding to the base dtype, after the fp32 sum


def _in_memory_weights(model: nn.Module) -> Iterator[tuple[str, Callable[[], torch.Tensor]]]:
    """(in-memory name, getter) of every persistent weight; getters merge LoRA only when called."""
    from peft.tuners.lora import LoraLayer

    seen: set[int] = set()  # tied parameters are one object: keep the first name (the embedding)
    skip: str | None = None  # the adapter's own modules and the wrapped base layer of a LoRA layer
    for name, module in model.named_modules():
        if skip is not None and name.startswith(skip):
            continue
        if isinstance(module, LoraLayer):
            skip = f"{name}."
            yield f"{name}.weight", functools.partial(_merged_lora_weight, module)
            bias = getattr(module.get_base_layer(), "bias", None)
            if bias is not None:
                yield f"{name}.bias", bias.detach
            continue
        prefix = f"{name}." if name else ""
        for pname, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield prefix + pname, (functools.partial(_weight, module) if pname == "weight" else param.detach)
        for bname, buf in module.named_buffers(recurse=False):
            if bname not in module._non_persistent_buffers_set and id(buf) not in seen:
                seen.add(id(buf))
                yield prefix + bname, buf.detach


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
    model = hf_model(policy)
    weights = list(_in_memory_weights(model))
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
    config = copy.deepcopy(hf_model(policy).config)
    if hasattr(config, "quantization_config"):  # the written weights are de-quantised
        del config.quantization_config
    config.save_pretrained(out)
    return out
