"""LoRA through peft: add adapters, unwrap a peft model, name its weights, and merge ``W + alpha/r * B @ A``.

Three callers fold adapters into base weights, each on its own form of the weights:

- a slim checkpoint's state dict (``merge_lora_state``, for ``init_from`` LoRA -> full);
- a live peft model, layer by layer, leaving the adapter in place (``merged_weights``, for a rollout engine);
- a QLoRA model, for export (``merged_unquantized``: peft's ``merge_and_unload`` on a fresh unquantised
  base; a plain LoRA export calls ``merge_and_unload`` in place).

The first two sum in fp32 and round once to the base weight's dtype (``fold``).

Left out on purpose: which base model to load and how (``pebr_lit.policy.wrapper``), checkpoint files
(``pebr_lit.policy.checkpoint``) and on-disk checkpoint names (``pebr_lit.rollout.weights``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from pebr_lit.policy.settings import LoraSettings

_PEFT_PREFIX = "base_model.model."
_LORA_RE = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])\.[^.]+\.weight$")  # <module>.lora_A.<adapter>.weight


def add_lora(model: nn.Module, lora: LoraSettings) -> nn.Module:
    """``model`` wrapped by peft with fresh adapters on ``lora.target_modules``."""
    from peft import LoraConfig, get_peft_model

    names = "|".join(re.escape(t) for t in lora.target_modules)
    # peft treats a string as a full-match regex: this keeps adapters out of the vision tower,
    # whose MLP reuses names such as gate_proj.
    targets: str | list[str] = (
        rf".*language_model.*\.({names})" if lora.language_model_only else list(lora.target_modules)
    )
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets)
    return get_peft_model(model, config)


def unwrap(model: nn.Module) -> nn.Module:
    """The Hugging Face model under any peft wrapper (``model`` itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def canonical_name(name: str) -> str:
    """The Hugging Face parameter name behind a peft-wrapped one."""
    if name.startswith(_PEFT_PREFIX):
        name = name[len(_PEFT_PREFIX) :]
    return name.replace(".base_layer.", ".")


def _lora_delta(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * B @ A`` in fp32: A is [r, in], B is [out, r], the result [out, in]."""
    return (b.float() @ a.float()) * scale  # [out, r] @ [r, in] -> [out, in]


def fold(weight: torch.Tensor, deltas: Iterable[torch.Tensor]) -> torch.Tensor:
    """``weight + sum(deltas)``, summed in fp32 and rounded once to ``weight``'s dtype."""
    total = weight.float()
    for delta in deltas:
        total = total + delta.float()
    return total.to(weight.dtype)


def merge_lora_state(
    state: dict[str, torch.Tensor], scale: float, base: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Fold the LoRA pairs of a state dict into their base weights; canonical names, no adapter entries.

    ``scale`` is alpha / r. ``base`` (canonical names) supplies W where ``state`` holds none, as in a
    slim checkpoint, which keeps only the trained tensors.
    """
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    plain: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        m = _LORA_RE.match(name)
        if m:
            pairs.setdefault(canonical_name(m.group("module")), {})[m.group("ab")] = value
        else:
            plain[canonical_name(name)] = value
    for module, ab in pairs.items():
        key = f"{module}.weight"
        weight = plain.get(key, base.get(key))
        if weight is None:
            raise ValueError(
                f"LoRA weights for {module} but no base weight {key} in the checkpoint or the policy to merge into."
            )
        plain[key] = fold(weight, [_lora_delta(ab["A"], ab["B"], scale)])
    return plain


def _dequantized(module: nn.Module) -> torch.Tensor:
    """A layer's weight, de-quantised when it is a bitsandbytes 4/8-bit parameter."""
    if type(module.weight).__name__ in ("Params4bit", "Int8Params"):
        from peft.utils.integrations import dequantize_module_weight

        return dequantize_module_weight(module)
    return module.weight


def _merged_layer_weight(layer: nn.Module) -> torch.Tensor:
    """What a peft LoRA layer computes with: its base weight plus every active adapter's delta."""
    weight = _dequantized(layer.get_base_layer()).detach()
    if getattr(layer, "merged", False) or getattr(layer, "disable_adapters", False):
        return weight  # already folded in, or switched off: the base weight is what the layer computes
    # peft's get_delta_weight is scale * B @ A with fan-in/out and embedding adapters handled
    active = [n for n in layer.active_adapters if n in layer.lora_A or n in getattr(layer, "lora_embedding_A", {})]
    return fold(weight, (layer.get_delta_weight(n).detach() for n in active))


def merged_weights(model: nn.Module) -> Iterator[tuple[str, Callable[[], torch.Tensor]]]:
    """(in-memory name, getter) of every persistent weight of ``model`` with LoRA folded in.

    Getters merge a LoRA layer only when called, so a caller holds one merged layer at a time and
    the adapter stays live. 4-bit/8-bit weights come de-quantised; tied weights come once.
    """
    from peft.tuners.lora import LoraLayer

    seen: set[int] = set()  # tied parameters are one object: keep the first name (the embedding)
    skip: str | None = None  # the adapter's own modules and the wrapped base layer of a LoRA layer
    for name, module in model.named_modules():
        if skip is not None and name.startswith(skip):
            continue
        if isinstance(module, LoraLayer):
            skip = f"{name}."
            yield f"{name}.weight", functools.partial(_merged_layer_weight, module)
            bias = getattr(module.get_base_layer(), "bias", None)
            if bias is not None:
                yield f"{name}.bias", bias.detach
            continue
        prefix = f"{name}." if name else ""
        for pname, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield prefix + pname, (functools.partial(_dequantized, module) if pname == "weight" else param.detach)
        for bname, buf in module.named_buffers(recurse=False):
            if bname not in module._non_persistent_buffers_set and id(buf) not in seen:
                seen.add(id(buf))
                yield prefix + bname, buf.detach


def merged_unquantized(peft_model: nn.Module, base: nn.Module, lora: LoraSettings) -> nn.Module:
    """``peft_model``'s adapter and trained weights on ``base`` (a fresh unquantised load), merged by peft.

    Folding an update into 4-bit weights would round it away, so a QLoRA export merges on a base
    loaded in the compute dtype instead.
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    trained = {n: p.detach().cpu() for n, p in peft_model.named_parameters() if p.requires_grad}
    fresh = add_lora(base, lora)
    set_peft_model_state_dict(fresh, get_peft_model_state_dict(peft_model))
    with torch.no_grad():  # non-adapter parameters that were trained (e.g. an unfrozen projector)
        params = dict(fresh.named_parameters())
        for name, value in trained.items():
            if "lora_" not in name and name in params:
                params[name].copy_(value)
    return fresh.merge_and_unload()
