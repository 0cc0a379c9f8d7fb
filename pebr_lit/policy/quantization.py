"""bitsandbytes 4-bit loading for QLoRA: the ``from_pretrained`` arguments and the CPU layout guard.

On a CPU with AVX512-BF16, bitsandbytes 0.50.2's ``Linear4bit.forward`` repacks its weight into an
inference-only layout the first time it runs in eval mode on an input without grad, i.e. during
``generate``. The repack is kept after the model goes back to train mode, and it is lossy (the absmax
constants are rounded to bfloat16 and double quantisation is undone). ``matmul_4bit`` then takes a
kernel with no autograd for every later forward, whose ``result += bias`` raises "a view of a leaf
Variable that requires grad is being used in an in-place operation" on the next training forward
after a rollout, which is GRPO's exact sequence. A layer without a bias raises nothing, but that kernel
passes no gradient to the layers below it (torch only warns "an autograd kernel was not registered").
``keep_trainable_layout`` turns the repack off, so rollouts and training use the same 4-bit weights
through bitsandbytes' ordinary de-quantise-then-matmul path, which has a backward. CPU sampling is then
slower, because it no longer uses the AVX512-BF16 kernel.

Left out on purpose: LoRA (``policy.lora``), the settings (``policy.settings.QuantizationSettings``),
and the unquantised export (``policy.lora.merged_unquantized``).
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from pebr_lit.policy.settings import _DTYPES, QuantizationSettings


def load_kwargs(q: QuantizationSettings) -> dict[str, Any]:
    """The ``from_pretrained`` arguments that load the base in 4-bit on this process's device."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise ImportError("QLoRA needs bitsandbytes: pip install 'pebr-lit[qlora]'.") from err
    import torch
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=_DTYPES[q.compute_dtype],
    )
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    return {"quantization_config": config, "device_map": {"": device}}


def keep_trainable_layout(model: nn.Module) -> int:
    """Stop every bitsandbytes ``Linear4bit`` in ``model`` from repacking for CPU inference (see top).

    Returns the number of 4-bit layers it changed. The flag is read in ``Linear4bit.forward`` (bitsandbytes
    0.50.2); on CUDA the repack never happens and the flag changes nothing.
    """
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        # Set even where the attribute is missing: a later bitsandbytes that repacks by another route
        # fails tests/smoke/test_qlora_grpo_cpu.py, which trains after real rollouts.
        layer.support_avx512bf16_for_cpu = False
    return len(layers)
