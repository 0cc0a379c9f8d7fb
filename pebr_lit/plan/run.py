"""RunShape: what a resolved stage config asks of one GPU (stage, precision, adapters, batch and sequence sizes).

``run_shape(config)`` reads the dict ``cli.py <sub> --config ... --print_config`` prints (overlays expanded,
defaults filled in; ``tests/helpers/configs.py::printed_config`` returns the same) and keeps only the
numbers the arithmetic in ``plan.estimate`` needs. Assumptions it makes are named where it makes them.

Left out on purpose: composing the config (``plan.__main__`` runs the CLI) and any arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2}  # auto: Qwen2.5-VL checkpoints are bf16


def _args(node: Any) -> dict[str, Any]:
    """A ``{class_path, init_args}`` node's arguments (plain mappings as they are; null -> {})."""
    if not isinstance(node, dict):
        return {}
    return node.get("init_args", node) or {}


def _name(node: Any) -> str:
    """The class name (last dotted part) of a ``class_path`` node; '' for null."""
    return str(node.get("class_path", "")).rsplit(".", 1)[-1] if isinstance(node, dict) else ""


@dataclass(frozen=True)
class RunShape:
    """One GPU's share of a stage.

    Args:
        kind: ``grpo`` (rollout, log-prob and update phases), ``sft`` (update) or ``predict`` (rollout only).
        model: ``policy.model_name_or_path``.
        weight_bytes: Bytes per stored weight (``policy.dtype``).
        quant: 4-bit base (``policy.quantization``): ``None`` or ``{"double_quant": bool}``.
        lora_r: LoRA rank; 0 = full fine-tuning.
        lora_targets: LoRA target layer names.
        lora_dropout: LoRA dropout probability (0 = no dropout tensors).
        lora_lm_only: Adapters on the language model only.
        train_vision: The vision blocks are trained (full fine-tuning without ``freeze_vision``).
        train_projector: The patch merger is trained (full fine-tuning without ``freeze_projector``).
        checkpointing: ``policy.gradient_checkpointing``.
        max_pixels: Image budget per image (``policy.max_pixels``); 0 = no image.
        prompt_len: Longest prompt in tokens, image tokens included.
        response_len: Longest response (``max_new_tokens``); 0 for SFT, whose sequence is all prompt_len.
        group: Responses per prompt.
        micro_batch: Rows per forward/backward (GRPO ``micro_batch_size``; SFT/predict: the data batch).
        prompts_per_call: Prompts per ``generate`` call.
        prompts_per_gpu: Prompts of one rollout batch on one GPU.
        devices: GPUs the run uses (``trainer.devices`` x ``num_nodes``).
        mixed: ``trainer.precision`` is ``*-mixed`` (autocast over the stored weights).
        fsdp: FSDP2 ``sharding`` settings, or ``None`` without FSDP2.
        reference: ``none``, ``disabled`` (LoRA base), ``adapter`` (a second adapter) or ``copy`` (whole model).
        reference_on_gpu: The reference copy is on the GPU (not ``device: cpu``).
        clip: The CLIP scorer's ``init_args`` (stage 1), or ``None``.
    """

    kind: str
    model: str
    weight_bytes: int
    quant: dict[str, Any] | None
    lora_r: int
    lora_targets: tuple[str, ...]
    lora_lm_only: bool
    train_vision: bool
    train_projector: bool
    checkpointing: bool
    max_pixels: int
    prompt_len: int
    response_len: int
    group: int
    micro_batch: int
    prompts_per_call: int
    prompts_per_gpu: int
    devices: int
    mixed: bool
    fsdp: dict[str, Any] | None
    reference: str
    reference_on_gpu: bool
    clip: dict[str, Any] | None
    #: ``policy.logprob_chunk_tokens``: response tokens per LM-head chunk of the log-prob pass; 0 = whole logits.
    logprob_chunk_tokens: int = 0
    lora_dropout: float = 0.0
    #: The loss weights the entropy (``loss.entropy_coef`` > 0): its autograd graph is kept for backward.
    entropy_grad: bool = False


def _devices(trainer: dict[str, Any], override: int | None) -> int:
    if override is not None:
        return override
    devices = trainer.get("devices", 1)
    if isinstance(devices, list):
        count = len(devices)
    elif isinstance(devices, int) and devices > 0:
        count = devices
    elif isinstance(devices, str) and devices.isdigit():
        count = int(devices)
    else:  # "auto" / -1: whatever the machine has; the planner cannot know, so it plans one GPU
        count = 1
    return count * int(trainer.get("num_nodes", 1) or 1)


def _reference(config: dict[str, Any], lora: bool, init_from: Any) -> tuple[str, bool]:
    """The ``ReferencePolicy`` strategy of the run: ``callbacks.reference``'s automatic choice, or the named one."""
    for cb in config.get("trainer", {}).get("callbacks") or []:
        if _name(cb) != "ReferencePolicy":
            continue
        args = _args(cb)
        named = _name(args.get("strategy"))
        device = args.get("device") or _args(args.get("strategy")).get("device")
        on_gpu = device is None or not str(device).startswith("cpu")
        if named:
            return {"DisabledAdapterReference": "disabled", "AdapterSnapshotReference": "adapter"}.get(
                named, "copy"
            ), on_gpu
        scheduled = args.get("sync_every") is not None or args.get("ema_decay") is not None
        if not lora:
            return "copy", on_gpu
        # A LoRA stage started from a trained adapter (init_from) or with a schedule snapshots the adapter.
        return ("adapter" if init_from or scheduled else "disabled"), on_gpu
    return "none", False


def run_shape(config: dict[str, Any], devices: int | None = None, subcommand: str = "fit") -> RunShape:
    """The ``RunShape`` of a resolved config (``--print_config``'s dict); ``devices`` overrides the trainer's."""
    trainer = config.get("trainer") or {}
    model = config.get("model") or {}
    margs, data = _args(model), _args(config.get("data"))
    policy = _args(margs.get("policy"))
    lora = policy.get("lora")
    grpo = "sampling" in margs and "micro_batch_size" in margs
    kind = "predict" if subcommand == "predict" else ("grpo" if grpo else "sft")
    n = _devices(trainer, devices)
    strategy = trainer.get("strategy")
    fsdp = _args(strategy).get("sharding") if _name(strategy) == "FSDP2Strategy" else None
    if fsdp is not None:
        fsdp = {"reshard_after_forward": True, "cpu_offload": False, "gather_for_generate": True, **fsdp}
    max_pixels = int(policy.get("max_pixels") or 0)
    if kind == "grpo":
        sampling = margs.get("sampling") or {}
        per_gpu = max(1, -(-int(data.get("batch_size", 8)) // n))  # batch_size counts all GPUs together
        ppc = _args(margs.get("rollout_engine")).get("prompts_per_call") or per_gpu
        prompt, response = int(data.get("max_prompt_length") or 2048), int(sampling.get("max_new_tokens", 512))
        group, micro, ppc = int(sampling.get("num_samples", 8)), int(margs.get("micro_batch_size", 8)), int(ppc)
    elif kind == "predict":
        sampling = margs.get("eval_sampling") or {}
        per_gpu = int(data.get("eval_batch_size") or data.get("batch_size") or 1)
        prompt, response = int(data.get("max_length") or 2048), int(sampling.get("max_new_tokens", 256))
        group, micro, ppc = int(sampling.get("num_samples", 1)), per_gpu, per_gpu
    else:  # SFT: data.batch_size is per GPU; max_length bounds prompt + target together
        per_gpu = int(data.get("batch_size") or 1)
        prompt, response, group, micro, ppc = int(data.get("max_length") or 2048), 0, 1, per_gpu, per_gpu
    reference, ref_gpu = _reference(config, lora is not None, margs.get("init_from")) if kind == "grpo" else ("none", 0)
    quant = policy.get("quantization")
    return RunShape(
        kind=kind,
        model=str(policy.get("model_name_or_path", "")),
        weight_bytes=DTYPE_BYTES.get(str(policy.get("dtype", "auto")), 2),
        quant={"double_quant": bool(quant.get("double_quant", True))} if quant else None,
        lora_r=int(lora["r"]) if lora else 0,
        lora_targets=tuple(lora.get("target_modules") or ()) if lora else (),
        lora_lm_only=bool(lora.get("language_model_only", True)) if lora else True,
        lora_dropout=float(lora.get("dropout", 0.05)) if lora else 0.0,  # LoraSettings' default
        train_vision=lora is None and not policy.get("freeze_vision", True),
        train_projector=lora is None and not policy.get("freeze_projector", True),
        checkpointing=bool(policy.get("gradient_checkpointing", False)),
        logprob_chunk_tokens=int(policy.get("logprob_chunk_tokens") or 0),
        max_pixels=max_pixels,
        prompt_len=prompt,
        response_len=response,
        group=group,
        micro_batch=micro,
        prompts_per_call=min(ppc, per_gpu),
        prompts_per_gpu=per_gpu,
        devices=n,
        mixed=str(trainer.get("precision", "")).endswith("mixed"),
        fsdp=fsdp,
        reference=reference,
        reference_on_gpu=bool(ref_gpu),
        clip=_args(margs.get("clip_scorer")) if margs.get("clip_scorer") else None,
        entropy_grad=float(_args(margs.get("loss")).get("entropy_coef") or 0) > 0,
    )
